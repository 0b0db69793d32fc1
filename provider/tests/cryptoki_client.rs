//! The Rust `cryptoki` crate (what the harness and conformance suite use) drives the module.

mod common;
use common::{isolated, module_path};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{SessionState, UserType};
use cryptoki::types::AuthPin;

fn rv<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn cryptoki_sees_a_key4c_token() {
    isolated("cryptoki_sees_a_key4c_token", "", || {
        let p11 = Pkcs11::new(module_path()).unwrap();
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slots = p11.get_slots_with_token().unwrap();
        assert_eq!(slots.len(), 1);
        let slot = slots[0];
        let info = p11.get_token_info(slot).unwrap();
        assert_eq!(info.model(), "Key4C V3");
        assert!(!info.token_initialized());

        let so = AuthPin::new("So-Pin.2024x".into());
        let user = AuthPin::new("Us3r#Pin.9k".into());
        assert_eq!(
            rv(p11.init_token(slot, &AuthPin::new("short".into()), "x")),
            RvError::PinLenRange
        );
        p11.init_token(slot, &so, "cryptoki").unwrap();
        let session = p11.open_rw_session(slot).unwrap();
        session.login(UserType::So, Some(&so)).unwrap();
        assert_eq!(
            session.get_session_info().unwrap().session_state(),
            SessionState::RwSecurityOfficer
        );
        session.init_pin(&user).unwrap();
        session.logout().unwrap();
        assert_eq!(
            rv(session.login(UserType::User, Some(&AuthPin::new("Wr0ng-Pin.x".into())))),
            RvError::PinIncorrect
        );
        let info = p11.get_token_info(slot).unwrap();
        assert!(info.user_pin_count_low() && !info.user_pin_final_try() && !info.user_pin_locked());
        session.login(UserType::User, Some(&user)).unwrap();
        assert_eq!(
            session.get_session_info().unwrap().session_state(),
            SessionState::RwUser
        );
        assert!(!p11.get_token_info(slot).unwrap().user_pin_count_low());
        assert_eq!(session.generate_random_vec(32).unwrap().len(), 32);
        assert_eq!(rv(session.set_pin(&user, &so)), RvError::UserNotLoggedIn);
        drop(session);
        p11.finalize().unwrap();
    });
}
