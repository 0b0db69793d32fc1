//! The error type of the mechanisms layer.
//!
//! Each variant maps 1:1 onto a PKCS#11 return value; the token layer does the mapping.
//! A bad input is never reported as [`CryptoError::Internal`]: that variant is kept for
//! failures of the underlying library that the caller could not have caused.

use thiserror::Error;

/// Why a cryptographic operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// The key material is malformed or inconsistent (CKR_KEY_INVALID / CKR_ATTRIBUTE_VALUE_INVALID).
    #[error("key invalid")]
    KeyInvalid,
    /// Well-formed EC parameters naming a curve this layer does not support (CKR_CURVE_NOT_SUPPORTED).
    #[error("curve not supported")]
    CurveNotSupported,
    /// The key is of a size this layer does not support (CKR_KEY_SIZE_RANGE).
    #[error("key size out of range")]
    KeySizeRange,
    /// Plaintext or data to sign has a length the mechanism does not accept (CKR_DATA_LEN_RANGE).
    #[error("data length out of range")]
    DataLenRange,
    /// Plaintext or data to sign is malformed for the mechanism (CKR_DATA_INVALID).
    #[error("data invalid")]
    DataInvalid,
    /// The signature does not verify (CKR_SIGNATURE_INVALID).
    #[error("signature invalid")]
    SignatureInvalid,
    /// The signature has the wrong length (CKR_SIGNATURE_LEN_RANGE).
    #[error("signature length out of range")]
    SignatureLenRange,
    /// Decryption failed: bad padding, bad tag, ciphertext out of range (CKR_ENCRYPTED_DATA_INVALID).
    #[error("encrypted data invalid")]
    EncryptedDataInvalid,
    /// The ciphertext has the wrong length (CKR_ENCRYPTED_DATA_LEN_RANGE).
    #[error("encrypted data length out of range")]
    EncryptedDataLenRange,
    /// Unwrapping failed the integrity check (CKR_WRAPPED_KEY_INVALID).
    #[error("wrapped key invalid")]
    WrappedKeyInvalid,
    /// The wrapped key has an impossible length (CKR_WRAPPED_KEY_LEN_RANGE).
    #[error("wrapped key length out of range")]
    WrappedKeyLenRange,
    /// The mechanism parameters are malformed or unsupported (CKR_MECHANISM_PARAM_INVALID).
    #[error("mechanism parameter invalid")]
    MechanismParamInvalid,
    /// The crypto library failed in a way no input explains (CKR_GENERAL_ERROR / CKR_FUNCTION_FAILED).
    #[error("internal crypto failure: {0}")]
    Internal(&'static str),
}

/// Result of a mechanisms-layer operation.
pub type CryptoResult<T> = Result<T, CryptoError>;
