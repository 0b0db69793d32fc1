//! Failed-authentication counting and the PIN-state token flags (spec section 3).

use pkcs11_sys::*;

use crate::store::records::PinRecord;

/// What one authentication attempt did to a role's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The PIN was right; the counter is (or was already) zero.
    Accepted,
    /// Wrong, the limit not yet reached: CKR_PIN_INCORRECT.
    Incorrect,
    /// Wrong, and this attempt reached the limit: CKR_PIN_LOCKED from now on.
    NowLocked,
}

/// Records one attempt on `pin` against `limit`; returns what happened. A locked record must
/// not be passed here: a locked PIN is refused without counting.
pub fn record_attempt(pin: &mut PinRecord, correct: bool, limit: u32) -> Attempt {
    if correct {
        pin.failures = 0;
        return Attempt::Accepted;
    }
    pin.failures = pin.failures.saturating_add(1);
    if pin.failures >= limit {
        pin.locked = true;
        Attempt::NowLocked
    } else {
        Attempt::Incorrect
    }
}

/// The PIN_COUNT_LOW / PIN_FINAL_TRY / PIN_LOCKED flags of one role.
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
    } else if pin.failures.saturating_add(1) == limit {
        flags |= final_try;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_lock_and_flags_follow() {
        let mut pin = PinRecord::default();
        assert_eq!(pin_flags(&pin, 5, false), 0);
        for n in 1..=3 {
            assert_eq!(record_attempt(&mut pin, false, 5), Attempt::Incorrect);
            assert_eq!(pin.failures, n);
            assert_eq!(pin_flags(&pin, 5, false), CKF_USER_PIN_COUNT_LOW);
        }
        assert_eq!(record_attempt(&mut pin, false, 5), Attempt::Incorrect);
        assert_eq!(
            pin_flags(&pin, 5, true),
            CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY
        );
        assert_eq!(record_attempt(&mut pin, false, 5), Attempt::NowLocked);
        assert!(pin.locked);
        assert_eq!(
            pin_flags(&pin, 5, true),
            CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED
        );
    }

    #[test]
    fn correct_pin_resets_and_limit_one_is_final_from_the_start() {
        let mut pin = PinRecord::default();
        record_attempt(&mut pin, false, 5);
        assert_eq!(record_attempt(&mut pin, true, 5), Attempt::Accepted);
        assert_eq!(pin.failures, 0);
        assert_eq!(pin_flags(&pin, 1, false), CKF_USER_PIN_FINAL_TRY);
        assert_eq!(record_attempt(&mut pin, false, 1), Attempt::NowLocked);
    }
}
