//! The token's errors, and the one place where each becomes a `CK_RV`.

use pkcs11_sys::*;

/// Everything a token operation can fail with. Variants are named after the PKCS#11 return
/// codes they map to, so the mapping in [`Error::ckr`] is 1:1 and a reader finds every CKR
/// decision by searching for the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("action prohibited")]
    ActionProhibited,
    #[error("attribute read-only")]
    AttributeReadOnly,
    #[error("attribute sensitive")]
    AttributeSensitive,
    #[error("attribute type invalid")]
    AttributeTypeInvalid,
    #[error("attribute value invalid")]
    AttributeValueInvalid,
    #[error("curve not supported")]
    CurveNotSupported,
    #[error("data invalid")]
    DataInvalid,
    #[error("data length out of range")]
    DataLenRange,
    #[error("domain parameters invalid")]
    DomainParamsInvalid,
    #[error("encrypted data invalid")]
    EncryptedDataInvalid,
    #[error("encrypted data length out of range")]
    EncryptedDataLenRange,
    #[error("key function not permitted")]
    KeyFunctionNotPermitted,
    #[error("key handle invalid")]
    KeyHandleInvalid,
    #[error("key indigestible")]
    KeyIndigestible,
    #[error("key not wrappable")]
    KeyNotWrappable,
    #[error("key size out of range")]
    KeySizeRange,
    #[error("key type inconsistent")]
    KeyTypeInconsistent,
    #[error("key unextractable")]
    KeyUnextractable,
    #[error("mechanism parameter invalid")]
    MechanismParamInvalid,
    #[error("object handle invalid")]
    ObjectHandleInvalid,
    #[error("operation active")]
    OperationActive,
    #[error("signature invalid")]
    SignatureInvalid,
    #[error("signature length out of range")]
    SignatureLenRange,
    #[error("template incomplete")]
    TemplateIncomplete,
    #[error("template inconsistent")]
    TemplateInconsistent,
    #[error("unwrapping key handle invalid")]
    UnwrappingKeyHandleInvalid,
    #[error("unwrapping key type inconsistent")]
    UnwrappingKeyTypeInconsistent,
    #[error("wrapped key invalid")]
    WrappedKeyInvalid,
    #[error("wrapped key length out of range")]
    WrappedKeyLenRange,
    #[error("wrapping key handle invalid")]
    WrappingKeyHandleInvalid,
    #[error("wrapping key type inconsistent")]
    WrappingKeyTypeInconsistent,
    #[error("arguments bad")]
    ArgumentsBad,
    #[error("buffer too small")]
    BufferTooSmall,
    /// CKR_BUFFER_TOO_SMALL for an output whose exact length the caller learns.
    #[error("buffer too small: {0} bytes needed")]
    OutputTooSmall(usize),
    #[error("cryptoki not initialized")]
    CryptokiNotInitialized,
    #[error("cryptoki already initialized")]
    CryptokiAlreadyInitialized,
    #[error("cannot use the supplied locking functions")]
    CantLock,
    #[error("device error: {0}")]
    DeviceError(String),
    #[error("function not supported")]
    FunctionNotSupported,
    #[error("function not parallel")]
    FunctionNotParallel,
    #[error("general error: {0}")]
    GeneralError(String),
    #[error("mechanism invalid")]
    MechanismInvalid,
    #[error("no event")]
    NoEvent,
    #[error("operation not initialized")]
    OperationNotInitialized,
    #[error("PIN incorrect")]
    PinIncorrect,
    #[error("PIN invalid")]
    PinInvalid,
    #[error("PIN length out of range")]
    PinLenRange,
    #[error("PIN locked")]
    PinLocked,
    #[error("PIN too weak")]
    PinTooWeak,
    #[error("random seed not supported")]
    RandomSeedNotSupported,
    #[error("session exists")]
    SessionExists,
    #[error("session handle invalid")]
    SessionHandleInvalid,
    #[error("parallel sessions not supported")]
    SessionParallelNotSupported,
    #[error("session is read-only")]
    SessionReadOnly,
    #[error("a read-only session exists")]
    SessionReadOnlyExists,
    #[error("a read/write SO session exists")]
    SessionReadWriteSoExists,
    #[error("slot ID invalid")]
    SlotIdInvalid,
    #[error("token not present")]
    TokenNotPresent,
    #[error("token not recognized (not initialized)")]
    TokenNotRecognized,
    #[error("user already logged in")]
    UserAlreadyLoggedIn,
    #[error("another user already logged in")]
    UserAnotherAlreadyLoggedIn,
    #[error("user not logged in")]
    UserNotLoggedIn,
    #[error("user PIN not initialized")]
    UserPinNotInitialized,
    #[error("user type invalid")]
    UserTypeInvalid,
}

impl Error {
    /// The PKCS#11 return code for this error.
    pub fn ckr(&self) -> CK_RV {
        match self {
            Error::ActionProhibited => CKR_ACTION_PROHIBITED,
            Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::DomainParamsInvalid => CKR_DOMAIN_PARAMS_INVALID,
            Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::KeyIndigestible => CKR_KEY_INDIGESTIBLE,
            Error::KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
            Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
            Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
            Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            Error::TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            Error::TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            Error::UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            Error::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
            Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            Error::WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
            Error::WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::BufferTooSmall | Error::OutputTooSmall(_) => CKR_BUFFER_TOO_SMALL,
            Error::CryptokiNotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::CryptokiAlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::CantLock => CKR_CANT_LOCK,
            Error::DeviceError(_) => CKR_DEVICE_ERROR,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            Error::GeneralError(_) => CKR_GENERAL_ERROR,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::NoEvent => CKR_NO_EVENT,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::PinIncorrect => CKR_PIN_INCORRECT,
            Error::PinInvalid => CKR_PIN_INVALID,
            Error::PinLenRange => CKR_PIN_LEN_RANGE,
            Error::PinLocked => CKR_PIN_LOCKED,
            Error::PinTooWeak => CKR_PIN_TOO_WEAK,
            Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
            Error::SessionExists => CKR_SESSION_EXISTS,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
            Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
            Error::TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
        }
    }
}

/// The name of a PKCS#11 return code (`"CKR_PIN_LOCKED"`), or `"CKR_VENDOR_DEFINED"` /
/// `"CKR_UNKNOWN"` for values the specification does not name.
pub fn ckr_name(rv: CK_RV) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_CANCEL => "CKR_CANCEL",
        CKR_HOST_MEMORY => "CKR_HOST_MEMORY",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_NO_EVENT => "CKR_NO_EVENT",
        CKR_NEED_TO_CREATE_THREADS => "CKR_NEED_TO_CREATE_THREADS",
        CKR_CANT_LOCK => "CKR_CANT_LOCK",
        CKR_ATTRIBUTE_READ_ONLY => "CKR_ATTRIBUTE_READ_ONLY",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_VALUE_INVALID => "CKR_ATTRIBUTE_VALUE_INVALID",
        CKR_ACTION_PROHIBITED => "CKR_ACTION_PROHIBITED",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_DEVICE_MEMORY => "CKR_DEVICE_MEMORY",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        CKR_ENCRYPTED_DATA_LEN_RANGE => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        CKR_AEAD_DECRYPT_FAILED => "CKR_AEAD_DECRYPT_FAILED",
        CKR_FUNCTION_CANCELED => "CKR_FUNCTION_CANCELED",
        CKR_FUNCTION_NOT_PARALLEL => "CKR_FUNCTION_NOT_PARALLEL",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_SIZE_RANGE => "CKR_KEY_SIZE_RANGE",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_KEY_NOT_NEEDED => "CKR_KEY_NOT_NEEDED",
        CKR_KEY_CHANGED => "CKR_KEY_CHANGED",
        CKR_KEY_NEEDED => "CKR_KEY_NEEDED",
        CKR_KEY_INDIGESTIBLE => "CKR_KEY_INDIGESTIBLE",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_KEY_NOT_WRAPPABLE => "CKR_KEY_NOT_WRAPPABLE",
        CKR_KEY_UNEXTRACTABLE => "CKR_KEY_UNEXTRACTABLE",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_INVALID => "CKR_PIN_INVALID",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_PIN_EXPIRED => "CKR_PIN_EXPIRED",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_SESSION_CLOSED => "CKR_SESSION_CLOSED",
        CKR_SESSION_COUNT => "CKR_SESSION_COUNT",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SESSION_PARALLEL_NOT_SUPPORTED => "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        CKR_SESSION_READ_ONLY => "CKR_SESSION_READ_ONLY",
        CKR_SESSION_EXISTS => "CKR_SESSION_EXISTS",
        CKR_SESSION_READ_ONLY_EXISTS => "CKR_SESSION_READ_ONLY_EXISTS",
        CKR_SESSION_READ_WRITE_SO_EXISTS => "CKR_SESSION_READ_WRITE_SO_EXISTS",
        CKR_SIGNATURE_INVALID => "CKR_SIGNATURE_INVALID",
        CKR_SIGNATURE_LEN_RANGE => "CKR_SIGNATURE_LEN_RANGE",
        CKR_TEMPLATE_INCOMPLETE => "CKR_TEMPLATE_INCOMPLETE",
        CKR_TEMPLATE_INCONSISTENT => "CKR_TEMPLATE_INCONSISTENT",
        CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        CKR_TOKEN_NOT_RECOGNIZED => "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_TOKEN_WRITE_PROTECTED => "CKR_TOKEN_WRITE_PROTECTED",
        CKR_UNWRAPPING_KEY_HANDLE_INVALID => "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        CKR_UNWRAPPING_KEY_SIZE_RANGE => "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT => "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_PIN_NOT_INITIALIZED => "CKR_USER_PIN_NOT_INITIALIZED",
        CKR_USER_TYPE_INVALID => "CKR_USER_TYPE_INVALID",
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN => "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        CKR_USER_TOO_MANY_TYPES => "CKR_USER_TOO_MANY_TYPES",
        CKR_WRAPPED_KEY_INVALID => "CKR_WRAPPED_KEY_INVALID",
        CKR_WRAPPED_KEY_LEN_RANGE => "CKR_WRAPPED_KEY_LEN_RANGE",
        CKR_WRAPPING_KEY_HANDLE_INVALID => "CKR_WRAPPING_KEY_HANDLE_INVALID",
        CKR_WRAPPING_KEY_SIZE_RANGE => "CKR_WRAPPING_KEY_SIZE_RANGE",
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT => "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        CKR_RANDOM_SEED_NOT_SUPPORTED => "CKR_RANDOM_SEED_NOT_SUPPORTED",
        CKR_RANDOM_NO_RNG => "CKR_RANDOM_NO_RNG",
        CKR_DOMAIN_PARAMS_INVALID => "CKR_DOMAIN_PARAMS_INVALID",
        CKR_CURVE_NOT_SUPPORTED => "CKR_CURVE_NOT_SUPPORTED",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_SAVED_STATE_INVALID => "CKR_SAVED_STATE_INVALID",
        CKR_INFORMATION_SENSITIVE => "CKR_INFORMATION_SENSITIVE",
        CKR_STATE_UNSAVEABLE => "CKR_STATE_UNSAVEABLE",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_MUTEX_BAD => "CKR_MUTEX_BAD",
        CKR_MUTEX_NOT_LOCKED => "CKR_MUTEX_NOT_LOCKED",
        CKR_NEW_PIN_MODE => "CKR_NEW_PIN_MODE",
        CKR_NEXT_OTP => "CKR_NEXT_OTP",
        CKR_EXCEEDED_MAX_ITERATIONS => "CKR_EXCEEDED_MAX_ITERATIONS",
        CKR_FIPS_SELF_TEST_FAILED => "CKR_FIPS_SELF_TEST_FAILED",
        CKR_LIBRARY_LOAD_FAILED => "CKR_LIBRARY_LOAD_FAILED",
        CKR_PIN_TOO_WEAK => "CKR_PIN_TOO_WEAK",
        CKR_PUBLIC_KEY_INVALID => "CKR_PUBLIC_KEY_INVALID",
        CKR_FUNCTION_REJECTED => "CKR_FUNCTION_REJECTED",
        CKR_TOKEN_RESOURCE_EXCEEDED => "CKR_TOKEN_RESOURCE_EXCEEDED",
        CKR_OPERATION_CANCEL_FAILED => "CKR_OPERATION_CANCEL_FAILED",
        CKR_KEY_EXHAUSTED => "CKR_KEY_EXHAUSTED",
        v if v >= CKR_VENDOR_DEFINED => "CKR_VENDOR_DEFINED",
        _ => "CKR_UNKNOWN",
    }
}

/// Result of a token operation.
pub type Result<T> = std::result::Result<T, Error>;
