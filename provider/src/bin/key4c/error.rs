//! The CLI's one error type: a sentence for stderr, and the words for the token's errors.

use std::fmt;
use std::path::Path;

use key4c_pkcs11::token::error::ckr_name;
use key4c_pkcs11::token::Error;

/// Why a command failed, as one sentence (printed after `key4c: `).
#[derive(Debug)]
pub struct CliError(String);

/// Result of a command step.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError(message.into())
    }

    /// An I/O failure on `path`: "cannot `what` `path`: `e`".
    pub fn io(what: &str, path: &Path, e: std::io::Error) -> CliError {
        CliError(format!("cannot {what} {}: {e}", path.display()))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CliError {
    fn from(s: String) -> CliError {
        CliError(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> CliError {
        CliError(s.to_string())
    }
}

/// Any token error, in words. PIN errors that need the role and the counter are explained
/// by `context::login` instead.
impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        CliError(describe(&e))
    }
}

/// The words for a token error.
pub fn describe(e: &Error) -> String {
    match e {
        Error::TokenNotRecognized => {
            "the token is not initialised: create the service with `key4c service create`".into()
        }
        Error::TokenNotPresent => {
            "the slot shows no token: the configuration's uuid or api_key does not name this store's service"
                .into()
        }
        Error::UserPinNotInitialized => {
            "no User PIN is set: the SO sets one with `key4c pin set-user`".into()
        }
        Error::PinLocked => "the PIN is locked".into(),
        Error::PinIncorrect => "the PIN is wrong".into(),
        Error::DeviceError(m) | Error::GeneralError(m) => m.clone(),
        other => format!(
            "the token refused the operation: {other} ({})",
            ckr_name(other.ckr())
        ),
    }
}
