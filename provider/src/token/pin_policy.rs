//! The Key4C V3 PIN policy (spec section 2), checked whenever a PIN is *set*
//! (C_InitToken, C_InitPIN, C_SetPIN) and never at login.

use super::error::{Error, Result};

/// Shortest PIN the token accepts, in bytes (`ulMinPinLen`).
pub const MIN_PIN_LEN: usize = 9;
/// Longest PIN the token accepts, in bytes (`ulMaxPinLen`).
pub const MAX_PIN_LEN: usize = 255;

const SPECIALS: &[u8] = b"(),.!@#$%^&*-:; ";
const RUN: usize = 4;

/// Which rule of the policy a PIN broke, so the CLI can explain it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Rule 1: length outside 9..=255 bytes.
    Length,
    /// Rule 2: a byte outside the allowed alphabet.
    Character,
    /// Rule 3: missing an upper-case letter, lower-case letter, digit or special.
    MissingClass,
    /// Rule 4: four or more equal characters in a row.
    Repeated,
    /// Rule 5: four or more sequential letters or digits in a row.
    Sequential,
}

impl Violation {
    /// The PKCS#11 error for this violation.
    pub fn error(self) -> Error {
        match self {
            Violation::Length => Error::PinLenRange,
            Violation::Character => Error::PinInvalid,
            Violation::MissingClass | Violation::Repeated | Violation::Sequential => {
                Error::PinTooWeak
            }
        }
    }

    /// One sentence naming the rule, for humans.
    pub fn explain(self) -> &'static str {
        match self {
            Violation::Length => "the PIN must be 9 to 255 characters long",
            Violation::Character => {
                "the PIN may contain only A-Z, a-z, 0-9, space and ( ) , . ! @ # $ % ^ & * - : ;"
            }
            Violation::MissingClass => {
                "the PIN must contain an upper-case letter, a lower-case letter, a digit and a special character"
            }
            Violation::Repeated => "the PIN must not repeat one character 4 or more times in a row",
            Violation::Sequential => {
                "the PIN must not contain 4 or more sequential letters or digits (like 1234, abcd, 4321)"
            }
        }
    }
}

/// Checks rules 1 to 5 of the policy; the first rule broken wins.
pub fn check(pin: &[u8]) -> std::result::Result<(), Violation> {
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) {
        return Err(Violation::Length);
    }
    if !pin
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(b))
    {
        return Err(Violation::Character);
    }
    let has = |f: fn(&u8) -> bool| pin.iter().any(f);
    if !(has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
        && has(u8::is_ascii_digit)
        && has(|b| SPECIALS.contains(b)))
    {
        return Err(Violation::MissingClass);
    }
    let folded: Vec<u8> = pin.iter().map(u8::to_ascii_lowercase).collect();
    if folded.windows(RUN).any(|w| w.iter().all(|&b| b == w[0])) {
        return Err(Violation::Repeated);
    }
    if folded.windows(RUN).any(is_sequence) {
        return Err(Violation::Sequential);
    }
    Ok(())
}

/// Checks rules 1 to 5 and returns the PKCS#11 error of the first broken rule.
pub fn check_new_pin(pin: &[u8]) -> Result<()> {
    check(pin).map_err(Violation::error)
}

/// A window of letters only or digits only, each one up (or each one down) from the last.
fn is_sequence(w: &[u8]) -> bool {
    let same_class = w.iter().all(u8::is_ascii_digit) || w.iter().all(u8::is_ascii_lowercase);
    if !same_class {
        return false;
    }
    let step = |d: i16| w.windows(2).all(|p| p[1] as i16 - p[0] as i16 == d);
    step(1) || step(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order() {
        // Length wins over an invalid character.
        assert_eq!(check(b"_"), Err(Violation::Length));
        // Character wins over weakness.
        assert_eq!(check(b"aaaaaaaa_"), Err(Violation::Character));
        // Missing class wins over a run.
        assert_eq!(check(b"aaaa11111"), Err(Violation::MissingClass));
        assert_eq!(check(b"Aaaa.1xyZ"), Err(Violation::Repeated));
        assert_eq!(check(b"Xy.9-DcBa"), Err(Violation::Sequential));
    }

    #[test]
    fn mixed_letters_and_digits_do_not_form_a_sequence() {
        assert_eq!(check(b"Pw9abc-1Z"), Ok(()));
        assert_eq!(check(b"Pw89ab-1Z"), Ok(()));
        assert_eq!(check(b"Pw yzab-1"), Ok(()));
        // Specials never form a sequence even when adjacent in ASCII.
        assert_eq!(check(b"Pw1 !\"#$x"), Err(Violation::Character));
        assert_eq!(check(b"Pw1()*+xZ"), Err(Violation::Character));
    }

    #[test]
    fn boundaries() {
        let mut pin = b"Ab1!cD2@e".to_vec();
        assert_eq!(check(&pin), Ok(()));
        pin.resize(255, b'x');
        assert_eq!(check(&pin), Err(Violation::Repeated));
        let long: Vec<u8> = b"Ab1!".iter().cycle().take(255).copied().collect();
        assert_eq!(check(&long), Ok(()));
        let too_long: Vec<u8> = b"Ab1!".iter().cycle().take(256).copied().collect();
        assert_eq!(check(&too_long), Err(Violation::Length));
    }
}
