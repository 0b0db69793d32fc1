//! Names of PKCS#11 return values (`CKR_*`), for reports.

use cryptoki::error::{Error, Rv, RvError};
use cryptoki_sys::CK_RV;

/// Every `CKR_*` code that cryptoki-sys defines, with its name.
const NAMES: &[(CK_RV, &str)] = &[
    (cryptoki_sys::CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"),
    (
        cryptoki_sys::CKR_AEAD_DECRYPT_FAILED,
        "CKR_AEAD_DECRYPT_FAILED",
    ),
    (cryptoki_sys::CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"),
    (
        cryptoki_sys::CKR_ATTRIBUTE_READ_ONLY,
        "CKR_ATTRIBUTE_READ_ONLY",
    ),
    (
        cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE,
        "CKR_ATTRIBUTE_SENSITIVE",
    ),
    (
        cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID,
        "CKR_ATTRIBUTE_TYPE_INVALID",
    ),
    (
        cryptoki_sys::CKR_ATTRIBUTE_VALUE_INVALID,
        "CKR_ATTRIBUTE_VALUE_INVALID",
    ),
    (cryptoki_sys::CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"),
    (cryptoki_sys::CKR_CANCEL, "CKR_CANCEL"),
    (cryptoki_sys::CKR_CANT_LOCK, "CKR_CANT_LOCK"),
    (
        cryptoki_sys::CKR_CRYPTOKI_ALREADY_INITIALIZED,
        "CKR_CRYPTOKI_ALREADY_INITIALIZED",
    ),
    (
        cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED,
        "CKR_CRYPTOKI_NOT_INITIALIZED",
    ),
    (
        cryptoki_sys::CKR_CURVE_NOT_SUPPORTED,
        "CKR_CURVE_NOT_SUPPORTED",
    ),
    (cryptoki_sys::CKR_DATA_INVALID, "CKR_DATA_INVALID"),
    (cryptoki_sys::CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"),
    (cryptoki_sys::CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"),
    (cryptoki_sys::CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"),
    (cryptoki_sys::CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"),
    (
        cryptoki_sys::CKR_DOMAIN_PARAMS_INVALID,
        "CKR_DOMAIN_PARAMS_INVALID",
    ),
    (
        cryptoki_sys::CKR_ENCRYPTED_DATA_INVALID,
        "CKR_ENCRYPTED_DATA_INVALID",
    ),
    (
        cryptoki_sys::CKR_ENCRYPTED_DATA_LEN_RANGE,
        "CKR_ENCRYPTED_DATA_LEN_RANGE",
    ),
    (
        cryptoki_sys::CKR_EXCEEDED_MAX_ITERATIONS,
        "CKR_EXCEEDED_MAX_ITERATIONS",
    ),
    (
        cryptoki_sys::CKR_FIPS_SELF_TEST_FAILED,
        "CKR_FIPS_SELF_TEST_FAILED",
    ),
    (cryptoki_sys::CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"),
    (cryptoki_sys::CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"),
    (
        cryptoki_sys::CKR_FUNCTION_NOT_PARALLEL,
        "CKR_FUNCTION_NOT_PARALLEL",
    ),
    (
        cryptoki_sys::CKR_FUNCTION_NOT_SUPPORTED,
        "CKR_FUNCTION_NOT_SUPPORTED",
    ),
    (cryptoki_sys::CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"),
    (cryptoki_sys::CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"),
    (cryptoki_sys::CKR_HOST_MEMORY, "CKR_HOST_MEMORY"),
    (
        cryptoki_sys::CKR_INFORMATION_SENSITIVE,
        "CKR_INFORMATION_SENSITIVE",
    ),
    (cryptoki_sys::CKR_KEY_CHANGED, "CKR_KEY_CHANGED"),
    (cryptoki_sys::CKR_KEY_EXHAUSTED, "CKR_KEY_EXHAUSTED"),
    (
        cryptoki_sys::CKR_KEY_FUNCTION_NOT_PERMITTED,
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
    ),
    (
        cryptoki_sys::CKR_KEY_HANDLE_INVALID,
        "CKR_KEY_HANDLE_INVALID",
    ),
    (cryptoki_sys::CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE"),
    (cryptoki_sys::CKR_KEY_NEEDED, "CKR_KEY_NEEDED"),
    (cryptoki_sys::CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED"),
    (cryptoki_sys::CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"),
    (cryptoki_sys::CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"),
    (
        cryptoki_sys::CKR_KEY_TYPE_INCONSISTENT,
        "CKR_KEY_TYPE_INCONSISTENT",
    ),
    (cryptoki_sys::CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"),
    (
        cryptoki_sys::CKR_LIBRARY_LOAD_FAILED,
        "CKR_LIBRARY_LOAD_FAILED",
    ),
    (cryptoki_sys::CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"),
    (
        cryptoki_sys::CKR_MECHANISM_PARAM_INVALID,
        "CKR_MECHANISM_PARAM_INVALID",
    ),
    (cryptoki_sys::CKR_MUTEX_BAD, "CKR_MUTEX_BAD"),
    (cryptoki_sys::CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED"),
    (
        cryptoki_sys::CKR_NEED_TO_CREATE_THREADS,
        "CKR_NEED_TO_CREATE_THREADS",
    ),
    (cryptoki_sys::CKR_NEW_PIN_MODE, "CKR_NEW_PIN_MODE"),
    (cryptoki_sys::CKR_NEXT_OTP, "CKR_NEXT_OTP"),
    (cryptoki_sys::CKR_NO_EVENT, "CKR_NO_EVENT"),
    (
        cryptoki_sys::CKR_OBJECT_HANDLE_INVALID,
        "CKR_OBJECT_HANDLE_INVALID",
    ),
    (cryptoki_sys::CKR_OK, "CKR_OK"),
    (cryptoki_sys::CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"),
    (
        cryptoki_sys::CKR_OPERATION_CANCEL_FAILED,
        "CKR_OPERATION_CANCEL_FAILED",
    ),
    (
        cryptoki_sys::CKR_OPERATION_NOT_INITIALIZED,
        "CKR_OPERATION_NOT_INITIALIZED",
    ),
    (
        cryptoki_sys::CKR_OPERATION_NOT_VALIDATED,
        "CKR_OPERATION_NOT_VALIDATED",
    ),
    (
        cryptoki_sys::CKR_PARAMETER_SET_NOT_SUPPORTED,
        "CKR_PARAMETER_SET_NOT_SUPPORTED",
    ),
    (cryptoki_sys::CKR_PENDING, "CKR_PENDING"),
    (cryptoki_sys::CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"),
    (cryptoki_sys::CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"),
    (cryptoki_sys::CKR_PIN_INVALID, "CKR_PIN_INVALID"),
    (cryptoki_sys::CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"),
    (cryptoki_sys::CKR_PIN_LOCKED, "CKR_PIN_LOCKED"),
    (cryptoki_sys::CKR_PIN_TOO_WEAK, "CKR_PIN_TOO_WEAK"),
    (
        cryptoki_sys::CKR_PUBLIC_KEY_INVALID,
        "CKR_PUBLIC_KEY_INVALID",
    ),
    (cryptoki_sys::CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG"),
    (
        cryptoki_sys::CKR_RANDOM_SEED_NOT_SUPPORTED,
        "CKR_RANDOM_SEED_NOT_SUPPORTED",
    ),
    (
        cryptoki_sys::CKR_SAVED_STATE_INVALID,
        "CKR_SAVED_STATE_INVALID",
    ),
    (
        cryptoki_sys::CKR_SEED_RANDOM_REQUIRED,
        "CKR_SEED_RANDOM_REQUIRED",
    ),
    (
        cryptoki_sys::CKR_SESSION_ASYNC_NOT_SUPPORTED,
        "CKR_SESSION_ASYNC_NOT_SUPPORTED",
    ),
    (cryptoki_sys::CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"),
    (cryptoki_sys::CKR_SESSION_COUNT, "CKR_SESSION_COUNT"),
    (cryptoki_sys::CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"),
    (
        cryptoki_sys::CKR_SESSION_HANDLE_INVALID,
        "CKR_SESSION_HANDLE_INVALID",
    ),
    (
        cryptoki_sys::CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
    ),
    (cryptoki_sys::CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"),
    (
        cryptoki_sys::CKR_SESSION_READ_ONLY_EXISTS,
        "CKR_SESSION_READ_ONLY_EXISTS",
    ),
    (
        cryptoki_sys::CKR_SESSION_READ_WRITE_SO_EXISTS,
        "CKR_SESSION_READ_WRITE_SO_EXISTS",
    ),
    (cryptoki_sys::CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"),
    (
        cryptoki_sys::CKR_SIGNATURE_LEN_RANGE,
        "CKR_SIGNATURE_LEN_RANGE",
    ),
    (cryptoki_sys::CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"),
    (cryptoki_sys::CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE"),
    (
        cryptoki_sys::CKR_TEMPLATE_INCOMPLETE,
        "CKR_TEMPLATE_INCOMPLETE",
    ),
    (
        cryptoki_sys::CKR_TEMPLATE_INCONSISTENT,
        "CKR_TEMPLATE_INCONSISTENT",
    ),
    (
        cryptoki_sys::CKR_TOKEN_NOT_INITIALIZED,
        "CKR_TOKEN_NOT_INITIALIZED",
    ),
    (cryptoki_sys::CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"),
    (
        cryptoki_sys::CKR_TOKEN_NOT_RECOGNIZED,
        "CKR_TOKEN_NOT_RECOGNIZED",
    ),
    (
        cryptoki_sys::CKR_TOKEN_RESOURCE_EXCEEDED,
        "CKR_TOKEN_RESOURCE_EXCEEDED",
    ),
    (
        cryptoki_sys::CKR_TOKEN_WRITE_PROTECTED,
        "CKR_TOKEN_WRITE_PROTECTED",
    ),
    (
        cryptoki_sys::CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
    ),
    (
        cryptoki_sys::CKR_UNWRAPPING_KEY_SIZE_RANGE,
        "CKR_UNWRAPPING_KEY_SIZE_RANGE",
    ),
    (
        cryptoki_sys::CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
        "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
    ),
    (
        cryptoki_sys::CKR_USER_ALREADY_LOGGED_IN,
        "CKR_USER_ALREADY_LOGGED_IN",
    ),
    (
        cryptoki_sys::CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
    ),
    (
        cryptoki_sys::CKR_USER_NOT_LOGGED_IN,
        "CKR_USER_NOT_LOGGED_IN",
    ),
    (
        cryptoki_sys::CKR_USER_PIN_NOT_INITIALIZED,
        "CKR_USER_PIN_NOT_INITIALIZED",
    ),
    (
        cryptoki_sys::CKR_USER_TOO_MANY_TYPES,
        "CKR_USER_TOO_MANY_TYPES",
    ),
    (cryptoki_sys::CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"),
    (
        cryptoki_sys::CKR_WRAPPED_KEY_INVALID,
        "CKR_WRAPPED_KEY_INVALID",
    ),
    (
        cryptoki_sys::CKR_WRAPPED_KEY_LEN_RANGE,
        "CKR_WRAPPED_KEY_LEN_RANGE",
    ),
    (
        cryptoki_sys::CKR_WRAPPING_KEY_HANDLE_INVALID,
        "CKR_WRAPPING_KEY_HANDLE_INVALID",
    ),
    (
        cryptoki_sys::CKR_WRAPPING_KEY_SIZE_RANGE,
        "CKR_WRAPPING_KEY_SIZE_RANGE",
    ),
    (
        cryptoki_sys::CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
    ),
];

/// The name of a return value: `CKR_PIN_INCORRECT`, or `CKR_0x...` for an unknown code.
pub fn name(rv: CK_RV) -> String {
    if let Some((_, n)) = NAMES.iter().find(|(c, _)| *c == rv) {
        return (*n).to_string();
    }
    if rv >= cryptoki_sys::CKR_VENDOR_DEFINED {
        return format!(
            "CKR_VENDOR_DEFINED+0x{:x}",
            rv - cryptoki_sys::CKR_VENDOR_DEFINED
        );
    }
    format!("CKR_0x{rv:x}")
}

/// The numeric code of a cryptoki error value.
pub fn code_of(e: RvError) -> Option<CK_RV> {
    match e {
        RvError::VendorDefined(c) | RvError::UnknownErrorCode(c) => Some(c),
        _ => NAMES
            .iter()
            .map(|(c, _)| *c)
            .find(|c| Rv::from(*c) == Rv::Error(e)),
    }
}

/// A short name for any cryptoki error: the `CKR_*` name for a PKCS#11 error, else a phrase.
pub fn error_name(e: &Error) -> String {
    match e {
        Error::Pkcs11(rv, _) => code_of(*rv).map(name).unwrap_or_else(|| format!("{rv:?}")),
        Error::NullFunctionPointer => "function missing from the module's function list".into(),
        other => other.to_string(),
    }
}

/// True for the return values that mean "this module does not do that" rather than a failure.
pub fn is_not_supported(e: &Error) -> bool {
    match e {
        Error::NullFunctionPointer | Error::NotSupported => true,
        Error::Pkcs11(rv, _) => matches!(
            rv,
            RvError::FunctionNotSupported
                | RvError::MechanismInvalid
                | RvError::CurveNotSupported
                | RvError::KeySizeRange
                | RvError::DomainParamsInvalid
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(name(cryptoki_sys::CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
        assert_eq!(
            code_of(RvError::AttributeSensitive),
            Some(cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE)
        );
        assert_eq!(name(0x8000_0001), "CKR_VENDOR_DEFINED+0x1");
    }
}
