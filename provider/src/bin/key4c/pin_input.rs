//! Reading PINs: from a file, an environment variable, or a prompt without echo on a
//! terminal, never from the command line (where `ps` and shell history would show them).
//! Every copy is zeroized when dropped.

use std::io::IsTerminal;
use std::path::Path;

use key4c_pkcs11::token::pin_policy;
use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// A PIN in memory, wiped when dropped.
pub type Pin = Zeroizing<Vec<u8>>;

/// Where one PIN comes from: its name in messages, its file option and its variable.
pub struct PinSpec {
    /// "SO PIN", "User PIN", "new SO PIN".
    pub what: &'static str,
    /// The option that names a file holding it.
    pub flag: &'static str,
    /// The environment variable that holds it.
    pub env: &'static str,
}

/// The SO PIN.
pub const SO_PIN: PinSpec = PinSpec {
    what: "SO PIN",
    flag: "--so-pin-file",
    env: "KEY4C_SO_PIN",
};

/// The User PIN.
pub const USER_PIN: PinSpec = PinSpec {
    what: "User PIN",
    flag: "--user-pin-file",
    env: "KEY4C_USER_PIN",
};

/// The SO PIN that replaces the current one.
pub const NEW_SO_PIN: PinSpec = PinSpec {
    what: "new SO PIN",
    flag: "--new-so-pin-file",
    env: "KEY4C_NEW_SO_PIN",
};

/// Reads one PIN: the file if given, else the environment variable, else a prompt when
/// stdin is a terminal (asked twice when `confirm`, for a PIN being set).
pub fn read(spec: &PinSpec, file: Option<&Path>, confirm: bool) -> Result<Pin> {
    let pin = if let Some(path) = file {
        let mut bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| CliError::io(&format!("read the {} file", spec.what), path, e))?,
        );
        // One line ending, as `echo` writes it, is not part of the PIN.
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(CliError::new(format!(
                "the {} file {} is empty",
                spec.what,
                path.display()
            )));
        }
        bytes
    } else if let Some(value) = std::env::var_os(spec.env) {
        use std::os::unix::ffi::OsStringExt;
        let bytes = Zeroizing::new(value.into_vec());
        if bytes.is_empty() {
            return Err(CliError::new(format!("{} is set but empty", spec.env)));
        }
        bytes
    } else if std::io::stdin().is_terminal() {
        let first = prompt(&format!("{}: ", spec.what))?;
        if confirm {
            let again = prompt(&format!("{} again: ", spec.what))?;
            if *first != *again {
                return Err(CliError::new(format!(
                    "the two {}s you typed differ",
                    spec.what
                )));
            }
        }
        if first.is_empty() {
            return Err(CliError::new(format!("no {} was typed", spec.what)));
        }
        first
    } else {
        return Err(CliError::new(format!(
            "no {} given: name a file with {}, set {}, or run on a terminal to type it",
            spec.what, spec.flag, spec.env
        )));
    };
    Ok(pin)
}

fn prompt(text: &str) -> Result<Pin> {
    let typed = Zeroizing::new(
        rpassword::prompt_password(text)
            .map_err(|e| CliError::new(format!("cannot read the PIN from the terminal: {e}")))?,
    );
    Ok(Zeroizing::new(typed.as_bytes().to_vec()))
}

/// Checks a PIN about to be set against rules 1 to 5 of the policy, in words.
pub fn check_policy(what: &str, pin: &[u8]) -> Result<()> {
    pin_policy::check(pin).map_err(|v| {
        CliError::new(format!(
            "the {what} is not allowed by the PIN policy: {}",
            v.explain()
        ))
    })
}
