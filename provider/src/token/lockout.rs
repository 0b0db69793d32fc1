//! Failed-authentication counting and the PIN-state token flags (spec section 3).
//!
//! Count first, verify second: an attempt is counted ([`count_attempt`]) and made durable
//! before the PIN is tried, and a correct PIN then resets the counter ([`accept`]).

use pkcs11_sys::*;

use crate::store::records::PinRecord;

/// What a counted attempt means should the PIN turn out wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The limit not yet reached: CKR_PIN_INCORRECT.
    Incorrect,
    /// This attempt reached the limit: CKR_PIN_LOCKED from now on.
    NowLocked,
}

/// Counts one attempt on `pin` against `limit` before the PIN is tried: one more failure, and
/// locked when that reaches the limit. A locked record must not be passed here: a locked PIN
/// is refused without counting.
pub fn count_attempt(pin: &mut PinRecord, limit: u32) -> Attempt {
    pin.failures = pin.failures.saturating_add(1);
    if pin.failures >= limit {
        pin.locked = true;
        Attempt::NowLocked
    } else {
        Attempt::Incorrect
    }
}

/// The counted attempt was the right PIN: the counter is reset (and the lock the count
/// set, if it reached the limit, undone).
pub fn accept(pin: &mut PinRecord) {
    pin.failures = 0;
    pin.locked = false;
}

/// The PIN_COUNT_LOW / PIN_FINAL_TRY / PIN_LOCKED flags of one role. With a limit the SO
/// lowered below the failures already counted, the next attempt is the final one.
pub fn pin_flags(pin: &PinRecord, limit: u32, so: bool) -> CK_FLAGS {
    let (low, final_try, locked) = if so {
        (
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        )
    } else {
        (
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        )
    };
    let mut flags = 0;
    if pin.failures >= 1 {
        flags |= low;
    }
    if pin.locked {
        flags |= locked;
    } else if pin.failures.saturating_add(1) >= limit {
        flags |= final_try;
    }
    flags
}

/// Attempts left before the lock (0 when locked; at least 1 otherwise, also under a limit
/// the SO lowered below the failures already counted).
pub fn attempts_left(pin: &PinRecord, limit: u32) -> u32 {
    if pin.locked {
        0
    } else {
        limit.saturating_sub(pin.failures).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_lock_and_flags_follow() {
        let mut pin = PinRecord::default();
        assert_eq!(pin_flags(&pin, 5, false), 0);
        for n in 1..=3 {
            assert_eq!(count_attempt(&mut pin, 5), Attempt::Incorrect);
            assert_eq!(pin.failures, n);
            assert_eq!(pin_flags(&pin, 5, false), CKF_USER_PIN_COUNT_LOW);
            assert_eq!(attempts_left(&pin, 5), 5 - n);
        }
        assert_eq!(count_attempt(&mut pin, 5), Attempt::Incorrect);
        assert_eq!(
            pin_flags(&pin, 5, true),
            CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY
        );
        assert_eq!(count_attempt(&mut pin, 5), Attempt::NowLocked);
        assert!(pin.locked);
        assert_eq!(attempts_left(&pin, 5), 0);
        assert_eq!(
            pin_flags(&pin, 5, true),
            CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED
        );
    }

    #[test]
    fn a_correct_pin_undoes_its_count_and_limit_one_is_final_from_the_start() {
        let mut pin = PinRecord::default();
        count_attempt(&mut pin, 5);
        assert_eq!(count_attempt(&mut pin, 5), Attempt::Incorrect);
        accept(&mut pin);
        assert_eq!(pin, PinRecord::default());
        assert_eq!(pin_flags(&pin, 1, false), CKF_USER_PIN_FINAL_TRY);
        // The count of the attempt that reaches the limit locks before the PIN is tried; the
        // right PIN undoes it.
        assert_eq!(count_attempt(&mut pin, 1), Attempt::NowLocked);
        assert!(pin.locked);
        accept(&mut pin);
        assert_eq!(pin, PinRecord::default());
    }

    #[test]
    fn a_limit_lowered_below_the_count_leaves_one_final_try() {
        let mut pin = PinRecord::default();
        for _ in 0..4 {
            count_attempt(&mut pin, 5);
        }
        assert_eq!(
            pin_flags(&pin, 3, false),
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
        );
        assert_eq!(attempts_left(&pin, 3), 1);
        assert_eq!(count_attempt(&mut pin, 3), Attempt::NowLocked);
    }
}
