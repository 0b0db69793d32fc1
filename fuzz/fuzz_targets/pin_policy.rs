//! Differential: the module's PIN policy (`token::pin_policy::check`) against an independent
//! reference model of spec section 2 (`key4c_fuzz::model`). Any disagreement is a crash.
#![no_main]

use key4c_fuzz::model::{pin_vectors, pin_verdict, verdict_ckr, PinVerdict};
use key4c_pkcs11::token::pin_policy::{check, check_new_pin, Violation};
use key4c_pkcs11::token::Error;
use libfuzzer_sys::fuzz_target;

/// Once per process: the model and the module agree with the spec's own vectors, so a
/// disagreement found later is the module's (or the spec's) fault, not the model's.
fn check_spec_vectors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A missing vectors file panics: the run fails instead of going on unchecked.
        let vectors = pin_vectors();
        for (pin, want) in vectors {
            let show = String::from_utf8_lossy(&pin).to_string();
            assert_eq!(verdict_ckr(pin_verdict(&pin)), want, "model on {show:?}");
            let module = match check_new_pin(&pin) {
                Ok(()) => "CKR_OK",
                Err(Error::PinLenRange) => "CKR_PIN_LEN_RANGE",
                Err(Error::PinInvalid) => "CKR_PIN_INVALID",
                Err(Error::PinTooWeak) => "CKR_PIN_TOO_WEAK",
                Err(e) => panic!("module on {show:?}: {e:?}"),
            };
            assert_eq!(module, want, "module on {show:?}");
        }
    });
}

fuzz_target!(|pin: &[u8]| {
    check_spec_vectors();
    let want = pin_verdict(pin);
    let got = check(pin);
    let same = matches!(
        (got, want),
        (Ok(()), PinVerdict::Ok)
            | (Err(Violation::Length), PinVerdict::Length)
            | (Err(Violation::Character), PinVerdict::Character)
            | (Err(Violation::MissingClass), PinVerdict::MissingClass)
            | (Err(Violation::Repeated), PinVerdict::Repeated)
            | (Err(Violation::Sequential), PinVerdict::Sequential)
    );
    assert!(
        same,
        "PIN {:?}: module says {got:?}, the spec model {want:?}",
        String::from_utf8_lossy(pin)
    );
    let code = check_new_pin(pin);
    let want_code = match want {
        PinVerdict::Ok => None,
        PinVerdict::Length => Some(Error::PinLenRange),
        PinVerdict::Character => Some(Error::PinInvalid),
        _ => Some(Error::PinTooWeak),
    };
    assert_eq!(code.err(), want_code);
    if let Err(v) = got {
        assert!(!v.explain().is_empty());
    }
});
