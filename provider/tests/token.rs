//! The Key4C V3 token through the built `.so`: identity, sessions, login, PIN policy,
//! lockout and its durability, the store (spec sections 1-4 and 7).

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;
use std::ptr::null_mut;

const PIN_FLAGS: CK_FLAGS = CKF_USER_PIN_COUNT_LOW
    | CKF_USER_PIN_FINAL_TRY
    | CKF_USER_PIN_LOCKED
    | CKF_SO_PIN_COUNT_LOW
    | CKF_SO_PIN_FINAL_TRY
    | CKF_SO_PIN_LOCKED;

#[test]
fn identity_before_and_after_init_token() {
    isolated("identity_before_and_after_init_token", "", || {
        if let Some(step) = step() {
            // Another process sees the same slot and serial.
            let lib = Lib::load();
            lib.init();
            assert_eq!(
                format!("{}:{}", lib.slot(), text(&lib.token_info().serialNumber)),
                step
            );
            return;
        }
        let lib = Lib::load();
        lib.init();
        let info = lib.token_info();
        assert_eq!(text(&info.model), "Key4C V3");
        assert_eq!(text(&info.manufacturerID), "Key4C Emulator");
        assert_eq!((info.ulMinPinLen, info.ulMaxPinLen), (9, 255));
        assert_eq!(
            (info.hardwareVersion.major, info.hardwareVersion.minor),
            (3, 0)
        );
        assert_eq!(
            (info.firmwareVersion.major, info.firmwareVersion.minor),
            (3, 0)
        );
        assert_eq!(
            info.flags,
            CKF_RNG | CKF_LOGIN_REQUIRED | CKF_CLOCK_ON_TOKEN
        );
        let serial = text(&info.serialNumber);
        assert_eq!(serial.len(), 16);
        assert!(
            serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{serial}"
        );
        // Present but not initialised: no session can be opened.
        assert_eq!(lib.open(true), Err(CKR_TOKEN_NOT_RECOGNIZED));
        let mut slot_info = CK_SLOT_INFO::default();
        assert_rv!(
            call!(lib, C_GetSlotInfo, lib.slot(), &mut slot_info),
            CKR_OK
        );
        assert_eq!(slot_info.flags, CKF_TOKEN_PRESENT);
        assert_rv!(
            call!(lib, C_GetSlotInfo, lib.slot() + 1, &mut slot_info),
            CKR_SLOT_ID_INVALID
        );
        assert_rv!(
            call!(lib, C_GetTokenInfo, lib.slot(), null_mut()),
            CKR_ARGUMENTS_BAD
        );

        let slot = lib.slot();
        lib.provision();
        let info = lib.token_info();
        assert_eq!(
            lib.slot(),
            slot,
            "the slot ID never changes with C_InitToken"
        );
        assert_eq!(text(&info.label), "key4c test");
        assert_eq!(
            text(&info.serialNumber),
            serial,
            "the serial is the service's, kept"
        );
        assert_eq!(
            info.flags,
            CKF_RNG
                | CKF_LOGIN_REQUIRED
                | CKF_CLOCK_ON_TOKEN
                | CKF_TOKEN_INITIALIZED
                | CKF_USER_PIN_INITIALIZED
        );
        let time = text(&info.utcTime);
        assert_eq!(time.len(), 16);
        assert!(time.starts_with("20") && time.ends_with("00"));
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);

        // Another process sees the same slot and serial.
        assert!(run_step(
            "identity_before_and_after_init_token",
            &format!("{slot}:{serial}")
        )
        .success());
    });
}

#[test]
fn configured_identity() {
    isolated(
        "configured_identity",
        "manufacturer = \"Acme Labs\"\nhardware_version = \"3.2\"\nfirmware_version = \"4.1\"\nslot_id = 42",
        || {
            let lib = Lib::load();
            lib.init();
            assert_eq!(lib.slot(), 42);
            let info = lib.token_info();
            assert_eq!(text(&info.manufacturerID), "Acme Labs");
            assert_eq!((info.hardwareVersion.major, info.hardwareVersion.minor), (3, 2));
            assert_eq!((info.firmwareVersion.major, info.firmwareVersion.minor), (4, 1));
            let mut li = CK_INFO::default();
            assert_rv!(call!(lib, C_GetInfo, &mut li), CKR_OK);
            assert_eq!(text(&li.manufacturerID), "Acme Labs");
        },
    );
}

#[test]
fn bad_config_fails_initialize_cleanly() {
    isolated(
        "bad_config_fails_initialize_cleanly",
        "pin_retry_limit = 16",
        || {
            let lib = Lib::load();
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_GENERAL_ERROR);
            let mut info = CK_INFO::default();
            assert_rv!(
                call!(lib, C_GetInfo, &mut info),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
        },
    );
}

/// Reads pin-vectors.tsv: (PIN bytes, expected CKR).
fn pin_vectors() -> Vec<(Vec<u8>, CK_RV)> {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(here.join("tests/data/pin-vectors.tsv")).expect("vectors");
    // The repo's copy must be the spec's own, when the spec is beside the checkout.
    if let Ok(spec) = std::fs::read_to_string(here.join("../../shared/spec/pin-vectors.tsv")) {
        assert_eq!(
            spec, text,
            "tests/data/pin-vectors.tsv differs from shared/spec"
        );
    }
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (pin, want) = line.split_once('\t').expect("tab");
        let pin = decode_pin(pin);
        let want = match want {
            "CKR_OK" => CKR_OK,
            "CKR_PIN_LEN_RANGE" => CKR_PIN_LEN_RANGE,
            "CKR_PIN_INVALID" => CKR_PIN_INVALID,
            "CKR_PIN_TOO_WEAK" => CKR_PIN_TOO_WEAK,
            other => panic!("unknown expectation {other}"),
        };
        out.push((pin, want));
    }
    assert!(out.len() >= 27);
    out
}

fn decode_pin(s: &str) -> Vec<u8> {
    if s == "(empty)" {
        return Vec::new();
    }
    if let Some((ch, n)) = s.split_once('*') {
        if let (1, Ok(n)) = (ch.len(), n.parse::<usize>()) {
            return ch.as_bytes().repeat(n);
        }
    }
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).expect("hex"));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn pin_vectors_apply_to_every_way_of_setting_a_pin() {
    isolated(
        "pin_vectors_apply_to_every_way_of_setting_a_pin",
        "",
        || {
            let vectors = pin_vectors();
            let lib = Lib::load();
            lib.init();
            // C_InitToken (first time): failures leave the token uninitialised.
            for (pin, want) in vectors.iter().filter(|(_, w)| *w != CKR_OK) {
                assert_rv!(lib.init_token(pin, "v"), *want);
                assert_eq!(lib.flags() & CKF_TOKEN_INITIALIZED, 0);
            }
            lib.provision();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
            // C_InitPIN by the SO, and C_SetPIN of the SO PIN.
            let mut so_pin = SO_PIN.to_vec();
            for (pin, want) in &vectors {
                assert_rv!(lib.init_pin(h, pin), *want);
                assert_rv!(lib.set_pin(h, &so_pin, pin), *want);
                if *want == CKR_OK {
                    so_pin = pin.clone();
                }
                // A policy failure never counts.
                assert_eq!(lib.flags() & PIN_FLAGS, 0);
            }
            // Rule 6: the new PIN equals the role's current one.
            assert_rv!(lib.set_pin(h, &so_pin, &so_pin), CKR_PIN_INVALID);
            let user_now = vectors
                .iter()
                .rev()
                .find(|(_, w)| *w == CKR_OK)
                .unwrap()
                .0
                .clone();
            assert_rv!(lib.init_pin(h, &user_now), CKR_PIN_INVALID);
            assert_rv!(lib.logout(h), CKR_OK);
            assert_rv!(lib.login(h, CKU_USER, &user_now), CKR_OK);
            assert_rv!(lib.logout(h), CKR_OK);
            assert_rv!(lib.login(h, CKU_SO, &so_pin), CKR_OK);
        },
    );
}

#[test]
fn user_lockout_and_so_unlock() {
    isolated("user_lockout_and_so_unlock", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.open_rw();
        for n in 1..=4 {
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
            let want = CKF_USER_PIN_COUNT_LOW | if n == 4 { CKF_USER_PIN_FINAL_TRY } else { 0 };
            assert_eq!(lib.flags() & PIN_FLAGS, want, "after {n} failures");
        }
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
        assert_eq!(
            lib.flags() & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED
        );
        // Locked: the right PIN is refused too, without counting.
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
        // The SO resets the User PIN: lock and counter cleared.
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(lib.init_pin(h, OTHER_PIN), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_eq!(lib.flags() & PIN_FLAGS, 0);
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_PIN_INCORRECT);
        assert_rv!(lib.login(h, CKU_USER, OTHER_PIN), CKR_OK);
        // A correct PIN reset the counter.
        assert_eq!(lib.flags() & PIN_FLAGS, 0);
    });
}

#[test]
fn so_lockout_counts_every_way_of_giving_the_so_pin() {
    isolated(
        "so_lockout_counts_every_way_of_giving_the_so_pin",
        "",
        || {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            // C_InitToken's SO PIN counts.
            assert_rv!(lib.init_token(WRONG_PIN, "x"), CKR_PIN_INCORRECT);
            assert_eq!(lib.flags() & PIN_FLAGS, CKF_SO_PIN_COUNT_LOW);
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
            assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
            assert_eq!(
                lib.flags() & PIN_FLAGS,
                0,
                "a correct PIN resets the counter"
            );
            // C_SetPIN's old PIN counts.
            assert_rv!(lib.set_pin(h, WRONG_PIN, OTHER_PIN), CKR_PIN_INCORRECT);
            assert_rv!(lib.set_pin(h, WRONG_PIN, OTHER_PIN), CKR_PIN_INCORRECT);
            assert_rv!(lib.logout(h), CKR_OK);
            assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
            assert_eq!(lib.flags() & PIN_FLAGS, CKF_SO_PIN_COUNT_LOW);
            assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
            assert_eq!(
                lib.flags() & PIN_FLAGS,
                CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY
            );
            assert_rv!(lib.close(h), CKR_OK);
            assert_rv!(lib.init_token(WRONG_PIN, "x"), CKR_PIN_LOCKED);
            assert_eq!(
                lib.flags() & PIN_FLAGS,
                CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED
            );
            assert_rv!(lib.init_token(SO_PIN, "x"), CKR_PIN_LOCKED);
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_PIN_LOCKED);
            // The User is unaffected.
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        },
    );
}

#[test]
fn retry_limit_is_configurable() {
    isolated("retry_limit_is_configurable", "pin_retry_limit = 2", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.open_rw();
        assert_eq!(lib.flags() & PIN_FLAGS, 0);
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
        assert_eq!(
            lib.flags() & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
        );
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
    });
}

#[test]
fn failure_count_survives_sigkill_and_is_seen_by_the_next_process() {
    const NAME: &str = "failure_count_survives_sigkill_and_is_seen_by_the_next_process";
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            // Four processes each give one wrong PIN and are killed right after the call.
            for n in 1..=4 {
                let status = run_step(NAME, "wrong-then-kill");
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(libc::SIGKILL), "step {n}: {status}");
            }
            assert!(run_step(NAME, "check-final-try").success());
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
        }
        Some("wrong-then-kill") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        Some("check-final-try") => {
            let lib = Lib::load();
            lib.init();
            assert_eq!(
                lib.flags() & PIN_FLAGS,
                CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
            );
        }
        Some(other) => panic!("unknown step {other}"),
    });
}

#[test]
fn sessions_states_and_handles() {
    isolated("sessions_states_and_handles", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let mut h = 0;
        assert_rv!(
            call!(lib, C_OpenSession, lib.slot(), 0, null_mut(), None, &mut h),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_rv!(
            call!(
                lib,
                C_OpenSession,
                lib.slot() + 1,
                CKF_SERIAL_SESSION,
                null_mut(),
                None,
                &mut h
            ),
            CKR_SLOT_ID_INVALID
        );
        assert_rv!(
            call!(
                lib,
                C_OpenSession,
                lib.slot(),
                CKF_SERIAL_SESSION,
                null_mut(),
                None,
                null_mut()
            ),
            CKR_ARGUMENTS_BAD
        );
        let ro = lib.open(false).unwrap();
        let rw = lib.open_rw();
        assert_ne!(ro, rw);
        assert_eq!(lib.state(ro), CKS_RO_PUBLIC_SESSION);
        assert_eq!(lib.state(rw), CKS_RW_PUBLIC_SESSION);
        let info = lib.token_info();
        assert_eq!((info.ulSessionCount, info.ulRwSessionCount), (2, 1));
        // The SO cannot log in while a read-only session exists.
        assert_rv!(lib.login(rw, CKU_SO, SO_PIN), CKR_SESSION_READ_ONLY_EXISTS);
        assert_rv!(lib.logout(rw), CKR_USER_NOT_LOGGED_IN);
        assert_rv!(lib.login(ro, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(lib.state(ro), CKS_RO_USER_FUNCTIONS);
        assert_eq!(lib.state(rw), CKS_RW_USER_FUNCTIONS);
        assert_rv!(
            lib.login(rw, CKU_USER, USER_PIN),
            CKR_USER_ALREADY_LOGGED_IN
        );
        assert_rv!(
            lib.login(rw, CKU_SO, SO_PIN),
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN
        );
        assert_rv!(lib.login(rw, 7, USER_PIN), CKR_USER_TYPE_INVALID);
        assert_rv!(
            lib.login(rw, CKU_CONTEXT_SPECIFIC, USER_PIN),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_rv!(
            call!(lib, C_Login, rw, CKU_USER, null_mut(), 5),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(lib.logout(ro), CKR_OK);
        assert_rv!(
            lib.login(rw, CKU_CONTEXT_SPECIFIC, USER_PIN),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_rv!(lib.close(ro), CKR_OK);
        assert_rv!(lib.close(ro), CKR_SESSION_HANDLE_INVALID);
        assert_rv!(lib.login(rw, CKU_SO, SO_PIN), CKR_OK);
        assert_eq!(lib.state(rw), CKS_RW_SO_FUNCTIONS);
        assert_eq!(lib.open(false), Err(CKR_SESSION_READ_WRITE_SO_EXISTS));
        let rw2 = lib.open_rw();
        assert_eq!(lib.state(rw2), CKS_RW_SO_FUNCTIONS);
        assert_rv!(
            lib.login(rw, CKU_USER, USER_PIN),
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN
        );
        // Closing the last session logs out.
        assert_rv!(lib.close(rw), CKR_OK);
        assert_eq!(lib.state(rw2), CKS_RW_SO_FUNCTIONS);
        assert_rv!(lib.close(rw2), CKR_OK);
        let again = lib.open_rw();
        assert_eq!(lib.state(again), CKS_RW_PUBLIC_SESSION);
        assert!(again > rw2, "handles are never reused");
        // C_CloseAllSessions closes and logs out.
        assert_rv!(lib.login(again, CKU_USER, USER_PIN), CKR_OK);
        let other = lib.open(false).unwrap();
        assert_rv!(
            call!(lib, C_CloseAllSessions, lib.slot() + 1),
            CKR_SLOT_ID_INVALID
        );
        assert_rv!(call!(lib, C_CloseAllSessions, lib.slot()), CKR_OK);
        assert_rv!(lib.close(other), CKR_SESSION_HANDLE_INVALID);
        let mut si = CK_SESSION_INFO::default();
        assert_rv!(
            call!(lib, C_GetSessionInfo, again, &mut si),
            CKR_SESSION_HANDLE_INVALID
        );
        let s = lib.open(false).unwrap();
        assert_eq!(lib.state(s), CKS_RO_PUBLIC_SESSION);
        assert_rv!(call!(lib, C_GetSessionInfo, s, &mut si), CKR_OK);
        assert_eq!(
            (si.slotID, si.flags, si.ulDeviceError),
            (lib.slot(), CKF_SERIAL_SESSION, 0)
        );
        assert_rv!(
            call!(lib, C_GetSessionInfo, s, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    });
}

#[test]
fn user_pin_not_initialized_and_init_pin_rules() {
    isolated("user_pin_not_initialized_and_init_pin_rules", "", || {
        let lib = Lib::load();
        lib.init();
        assert_rv!(lib.init_token(SO_PIN, "t"), CKR_OK);
        assert_eq!(lib.flags() & CKF_USER_PIN_INITIALIZED, 0);
        let h = lib.open_rw();
        assert_rv!(
            lib.login(h, CKU_USER, USER_PIN),
            CKR_USER_PIN_NOT_INITIALIZED
        );
        assert_rv!(lib.init_pin(h, USER_PIN), CKR_USER_NOT_LOGGED_IN);
        assert_rv!(call!(lib, C_InitPIN, h, null_mut(), 0), CKR_ARGUMENTS_BAD);
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(lib.init_pin(h, USER_PIN), CKR_OK);
        assert_ne!(lib.flags() & CKF_USER_PIN_INITIALIZED, 0);
        // C_InitToken with a session open.
        assert_rv!(lib.init_token(SO_PIN, "t"), CKR_SESSION_EXISTS);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        assert_rv!(lib.init_pin(h, OTHER_PIN), CKR_USER_NOT_LOGGED_IN);
    });
}

#[test]
fn set_pin_is_for_the_so_only_by_default() {
    isolated("set_pin_is_for_the_so_only_by_default", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let ro = lib.open(false).unwrap();
        assert_rv!(lib.set_pin(ro, USER_PIN, OTHER_PIN), CKR_SESSION_READ_ONLY);
        assert_rv!(lib.close(ro), CKR_OK);
        let h = lib.open_rw();
        assert_rv!(lib.set_pin(h, USER_PIN, OTHER_PIN), CKR_USER_NOT_LOGGED_IN);
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        assert_rv!(lib.set_pin(h, USER_PIN, OTHER_PIN), CKR_USER_NOT_LOGGED_IN);
        assert_rv!(
            call!(lib, C_SetPIN, h, null_mut(), 0, null_mut(), 0),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(lib.logout(h), CKR_OK);
        // The SO changes the SO PIN.
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(lib.set_pin(h, SO_PIN, OTHER_PIN), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_PIN_INCORRECT);
        assert_rv!(lib.login(h, CKU_SO, OTHER_PIN), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        // The User PIN did not change.
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
    });
}

#[test]
fn self_service_set_pin_when_configured() {
    isolated(
        "self_service_set_pin_when_configured",
        "allow_user_set_pin = true",
        || {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.open_rw();
            // Public session: changes the User PIN (standard PKCS#11).
            assert_rv!(lib.set_pin(h, USER_PIN, OTHER_PIN), CKR_OK);
            assert_rv!(lib.set_pin(h, USER_PIN, SO_PIN), CKR_PIN_INCORRECT);
            assert_eq!(lib.flags() & CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_COUNT_LOW);
            assert_rv!(lib.login(h, CKU_USER, OTHER_PIN), CKR_OK);
            assert_rv!(lib.set_pin(h, OTHER_PIN, OTHER_PIN), CKR_PIN_INVALID);
            assert_rv!(lib.set_pin(h, OTHER_PIN, b"weakpin12"), CKR_PIN_TOO_WEAK);
            assert_rv!(lib.set_pin(h, OTHER_PIN, USER_PIN), CKR_OK);
            assert_rv!(lib.logout(h), CKR_OK);
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            assert_rv!(lib.logout(h), CKR_OK);
            // The SO PIN is untouched and still works.
            assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        },
    );
}

#[test]
fn reinit_token_wipes_the_user_pin_and_keeps_the_so_pin() {
    isolated(
        "reinit_token_wipes_the_user_pin_and_keeps_the_so_pin",
        "",
        || {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
            assert_rv!(lib.close(h), CKR_OK);
            assert_rv!(lib.init_token(SO_PIN, "second life"), CKR_OK);
            let info = lib.token_info();
            assert_eq!(text(&info.label), "second life");
            assert_eq!(info.flags & (CKF_USER_PIN_INITIALIZED | PIN_FLAGS), 0);
            let h = lib.open_rw();
            assert_rv!(
                lib.login(h, CKU_USER, USER_PIN),
                CKR_USER_PIN_NOT_INITIALIZED
            );
            assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
            assert_rv!(lib.init_pin(h, USER_PIN), CKR_OK);
            assert_rv!(
                call!(lib, C_InitToken, lib.slot(), null_mut(), 0, null_mut()),
                CKR_ARGUMENTS_BAD
            );
        },
    );
}

/// Two processes use one token at once: the store moves to whichever needs it, and each sees
/// what the other wrote (objects, PIN failure counts) before deciding anything.
#[test]
fn two_processes_share_the_token() {
    const NAME: &str = "two_processes_share_the_token";
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            // While this process has the token open (and a session logged in), another one
            // opens it, logs in, creates an object and fails two User logins.
            assert!(run_step(NAME, "second").success());
            let found = lib.find(h, &[(CKA_LABEL, A::S(b"made by the second process"))]);
            assert_eq!(found.len(), 1, "the other process's object");
            let info = lib.token_info();
            assert_eq!(info.flags & CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_COUNT_LOW);
            // Three more wrong PINs here lock the User PIN: five in all, in two processes.
            let s = lib.open_rw();
            assert_rv!(call!(lib, C_Logout, h), CKR_OK);
            for _ in 0..2 {
                assert_rv!(lib.login(s, CKU_USER, b"Wrong#Pin.123"), CKR_PIN_INCORRECT);
            }
            assert_rv!(lib.login(s, CKU_USER, b"Wrong#Pin.123"), CKR_PIN_LOCKED);
            assert_rv!(lib.login(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
            // The other process sees the lock too.
            assert!(run_step(NAME, "sees-lock").success());
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        Some("second") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            lib.create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_DATA)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_LABEL, A::S(b"made by the second process")),
                    (CKA_VALUE, A::S(b"shared")),
                ],
            )
            .expect("create");
            assert_rv!(call!(lib, C_Logout, h), CKR_OK);
            for _ in 0..2 {
                assert_rv!(lib.login(h, CKU_USER, b"Wrong#Pin.123"), CKR_PIN_INCORRECT);
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        Some("sees-lock") => {
            let lib = Lib::load();
            lib.init();
            let info = lib.token_info();
            assert_eq!(info.flags & CKF_USER_PIN_LOCKED, CKF_USER_PIN_LOCKED);
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
        }
        Some(other) => panic!("unknown step {other}"),
    });
}

/// Two processes creating token objects at the same time: the store goes back and forth, and
/// afterwards every object either created is there exactly once.
#[test]
fn two_processes_write_at_the_same_time() {
    const NAME: &str = "two_processes_write_at_the_same_time";
    const EACH: usize = 25;
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            let ok = std::thread::scope(|s| {
                let a = s.spawn(|| run_step(NAME, "writer-a").success());
                let b = s.spawn(|| run_step(NAME, "writer-b").success());
                a.join().unwrap() && b.join().unwrap()
            });
            assert!(ok, "a writer failed");
            for writer in ["writer-a", "writer-b"] {
                let found = lib.find(h, &[(CKA_APPLICATION, A::S(writer.as_bytes()))]);
                assert_eq!(found.len(), EACH, "{writer}'s objects seen here");
            }
            let all = lib.find(h, &[(CKA_CLASS, A::U(CKO_DATA))]);
            assert_eq!(all.len(), 2 * EACH);
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        Some(writer) => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
            for i in 0..EACH {
                let label = format!("{writer} {i}");
                lib.create(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_DATA)),
                        (CKA_TOKEN, A::B(true)),
                        (CKA_APPLICATION, A::S(writer.as_bytes())),
                        (CKA_LABEL, A::S(label.as_bytes())),
                    ],
                )
                .expect("create");
                // Paced, so the two writers overlap.
                std::thread::sleep(std::time::Duration::from_millis(3));
                // Each sees its own objects at once, and never one twice.
                let mine = lib.find(h, &[(CKA_APPLICATION, A::S(writer.as_bytes()))]);
                assert_eq!(mine.len(), i + 1, "{writer} after {i}");
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
    });
}

/// C_SetAttributeValue in one process racing C_DestroyObject in another never brings a destroyed
/// object back: the setter's write and its look-up of the object happen under one hold of the
/// store (seen before: the setter looked the object up, the destroyer took the store and deleted
/// it, then the setter took the store back and wrote the object again).
#[test]
fn set_attribute_racing_destroy_never_resurrects_an_object() {
    const NAME: &str = "set_attribute_racing_destroy_never_resurrects_an_object";
    const OBJECTS: usize = 30;
    let label = |i: usize| format!("race {i}");
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            let h = lib.user_session();
            for i in 0..OBJECTS {
                lib.create(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_DATA)),
                        (CKA_TOKEN, A::B(true)),
                        (CKA_LABEL, A::S(label(i).as_bytes())),
                        (CKA_APPLICATION, A::S(b"0")),
                    ],
                )
                .expect("create");
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            let (setter, destroyer) = std::thread::scope(|s| {
                let setter = s.spawn(|| run_step(NAME, "setter").success());
                let destroyer = s.spawn(|| run_step(NAME, "destroyer").success());
                (setter.join().unwrap(), destroyer.join().unwrap())
            });
            assert!(
                setter && destroyer,
                "setter ok: {setter}, destroyer ok: {destroyer}"
            );
            // A process that starts now reads the store as it is on disk.
            let lib = Lib::load();
            lib.init();
            let h = lib.user_session();
            let left: Vec<usize> = (0..OBJECTS)
                .filter(|&i| {
                    !lib.find(h, &[(CKA_LABEL, A::S(label(i).as_bytes()))])
                        .is_empty()
                })
                .collect();
            assert_eq!(
                left,
                Vec::<usize>::new(),
                "destroyed objects back in the store"
            );
        }
        Some("setter") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.user_session();
            let handles: Vec<CK_OBJECT_HANDLE> = (0..OBJECTS)
                .map(|i| lib.find(h, &[(CKA_LABEL, A::S(label(i).as_bytes()))])[0])
                .collect();
            std::fs::write(store_dir().parent().unwrap().join("ready"), b"").unwrap();
            let mut alive = handles;
            let mut n = 0u64;
            let done = store_dir().parent().unwrap().join("destroyed");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            // Until every object is gone, or (a resurrected one never goes) the destroyer is done.
            while !alive.is_empty() && !done.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the destroyer never finished"
                );
                n += 1;
                let value = n.to_string();
                alive.retain(|&o| {
                    let rv = lib.set_attrs(h, o, &[(CKA_APPLICATION, A::S(value.as_bytes()))]);
                    assert!(
                        rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID,
                        "C_SetAttributeValue: {}",
                        ckr_name(rv)
                    );
                    rv == CKR_OK
                });
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        Some("destroyer") => {
            // Done, even when failing: the setter waits for it.
            struct Done;
            impl Drop for Done {
                fn drop(&mut self) {
                    let _ = std::fs::write(store_dir().parent().unwrap().join("destroyed"), b"");
                }
            }
            let _done = Done;
            let lib = Lib::load();
            lib.init();
            let h = lib.user_session();
            let ready = store_dir().parent().unwrap().join("ready");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !ready.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the setter never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for i in 0..OBJECTS {
                std::thread::sleep(std::time::Duration::from_millis(10));
                let found = lib.find(h, &[(CKA_LABEL, A::S(label(i).as_bytes()))]);
                assert_eq!(found.len(), 1, "{} before its destroy", label(i));
                assert_rv!(call!(lib, C_DestroyObject, h, found[0]), CKR_OK);
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        Some(other) => panic!("unknown step {other}"),
    });
}

/// A store held by a process that does not hand it over (here: this test holding sled's lock
/// itself) gives a clear error naming the store.
#[test]
fn store_held_and_not_handed_over_is_a_clear_error() {
    const NAME: &str = "store_held_and_not_handed_over_is_a_clear_error";
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let lib = Lib::load();
            lib.init();
            lib.provision();
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            use std::os::fd::AsRawFd;
            let db = std::fs::File::open(store_dir().join("db")).unwrap();
            assert_eq!(unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX) }, 0);
            assert!(run_step(NAME, "expect-held").success());
            drop(db);
            assert!(run_step(NAME, "expect-free").success());
        }
        Some("expect-held") => {
            let log = store_dir().parent().unwrap().join("held.log");
            std::env::set_var("KEY4C_LOG_FILE", &log);
            let lib = Lib::load();
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.contains(&store_dir().display().to_string()), "{text}");
            // Holding sled's lock without a key4c socket: not a key4c that shares the store.
            let db = store_dir().join("db");
            assert!(
                text.contains(&format!(
                    "sled's lock on {} is held by a process that does not answer on a key4c socket",
                    db.display()
                )),
                "{text}"
            );
            assert!(text.contains("the holder file names process "), "{text}");
            assert!(
                text.contains(&format!("`fuser {}`", db.display())),
                "{text}"
            );
        }
        Some("expect-free") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        }
        Some(other) => panic!("unknown step {other}"),
    });
}

#[test]
fn random_generation() {
    isolated("random_generation", "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.open(false).unwrap();
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        assert_rv!(call!(lib, C_GenerateRandom, h, a.as_mut_ptr(), 64), CKR_OK);
        assert_rv!(call!(lib, C_GenerateRandom, h, b.as_mut_ptr(), 64), CKR_OK);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 64]);
        assert_rv!(
            call!(lib, C_GenerateRandom, h, null_mut(), 4),
            CKR_ARGUMENTS_BAD
        );
        assert_rv!(
            call!(lib, C_GenerateRandom, h + 100, a.as_mut_ptr(), 4),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_rv!(call!(lib, C_GenerateRandom, h, a.as_mut_ptr(), 0), CKR_OK);
    });
}
