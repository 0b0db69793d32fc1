//! Turning errors into the one-line statuses reports show.

use std::fmt;

use crate::ckr;

/// An error meaning the module does not offer what a scenario needs.
#[derive(Debug)]
pub struct NotSupported(pub String);

impl fmt::Display for NotSupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotSupported {}

/// The PKCS#11 function name of a cryptoki function: `C_SignInit`.
pub fn function_name(f: &cryptoki::context::Function) -> String {
    format!("C_{f:?}")
}

/// A one-line status for a failed step: `not supported: ...` or `failed: ...`.
pub fn status_of(err: &anyhow::Error) -> String {
    if let Some(ns) = err.downcast_ref::<NotSupported>() {
        return format!("not supported: {ns}");
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<cryptoki::error::Error>() {
            let name = ckr::error_name(e);
            let func = match e {
                cryptoki::error::Error::Pkcs11(_, f) => format!(" ({})", function_name(f)),
                _ => String::new(),
            };
            return if ckr::is_not_supported(e) {
                format!("not supported: {name}{func}")
            } else {
                format!("failed: {name}{func}")
            };
        }
    }
    format!("failed: {}", describe(err))
}

/// An error chain on one line, with cryptoki errors as `C_Function returned CKR_NAME` (and
/// without the chain below them, which repeats them).
pub fn describe(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for c in err.chain() {
        match c.downcast_ref::<cryptoki::error::Error>() {
            Some(e @ cryptoki::error::Error::Pkcs11(_, f)) => {
                parts.push(format!(
                    "{} returned {}",
                    function_name(f),
                    ckr::error_name(e)
                ));
                break;
            }
            Some(e) => {
                parts.push(ckr::error_name(e));
                break;
            }
            None => parts.push(c.to_string()),
        }
    }
    parts.join(": ")
}
