//! The token's errors, and the one place where each becomes a `CK_RV`.

use pkcs11_sys::*;

/// Everything a token operation can fail with. Variants are named after the PKCS#11 return
/// codes they map to, so the mapping in [`Error::ckr`] is 1:1 and a reader finds every CKR
/// decision by searching for the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("arguments bad")]
    ArgumentsBad,
    #[error("buffer too small")]
    BufferTooSmall,
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
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::BufferTooSmall => CKR_BUFFER_TOO_SMALL,
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

/// Result of a token operation.
pub type Result<T> = std::result::Result<T, Error>;
