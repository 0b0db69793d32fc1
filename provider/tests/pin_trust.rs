//! The PIN counters the token promises (issue 12, spec section 3), through the built module:
//! count first, verify second, failing closed when the count cannot be made durable (a full
//! disk); the retry limit belongs to the token, not to a process's configuration; and a PIN
//! wrapped at an older KDF cost still opens and is rewrapped at the configured one when it
//! changes.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::time::Duration;

use common::*;
use key4c_pkcs11::store::records::{decode_token, TokenRecord};

/// The six PIN-state token flags.
const PIN_FLAGS: CK_FLAGS = CKF_SO_PIN_COUNT_LOW
    | CKF_SO_PIN_FINAL_TRY
    | CKF_SO_PIN_LOCKED
    | CKF_USER_PIN_COUNT_LOW
    | CKF_USER_PIN_FINAL_TRY
    | CKF_USER_PIN_LOCKED;

/// Takes every byte left on the filesystem of `dir` into the file `dir/filler`.
fn fill(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).expect("create the filler");
    let big = vec![0x5a; 64 * 1024];
    while f.write_all(&big).is_ok() {}
    let small = [0x5a; 512];
    while matches!(f.write(&small), Ok(n) if n > 0) {}
}

/// The audit log's events as `event subject outcome`.
fn audit_events(store: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(store.join("audit.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            format!("{} {} {}", s("event"), s("subject"), s("outcome"))
        })
        .collect()
}

/// The events about PIN attempts that failed (wrong or locked).
fn pin_failures(store: &Path) -> Vec<String> {
    audit_events(store)
        .into_iter()
        .filter(|e| e.contains("CKR_PIN_") || e.starts_with("pin.lock"))
        .collect()
}

/// The token record as the store holds it.
fn token_on_disk(store: &Path) -> TokenRecord {
    let db = sled::open(store).expect("open the store with sled");
    decode_token(&db.get(b"token").unwrap().expect("token record")).expect("decode")
}

fn finalize(lib: &Lib) {
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
}

/// Count first, verify second, on a full disk (limit 3). Two wrong SO PINs are counted while
/// there is space (C_InitToken's and C_Login's). Then the disk fills and the store can make
/// nothing durable: every PIN check, wrong or right, User or SO, C_Login (SO, User,
/// CKU_CONTEXT_SPECIFIC), C_SetPIN's old PIN or C_InitToken, answers CKR_DEVICE_ERROR
/// without trying the PIN (the right one does not log in), the flags stay the store's, and
/// the audit log gets no failure. After space is back, a new process
/// sees exactly what the callers were told: 2 SO failures (count low, final try), nothing
/// more. (Before: the wrong SO PIN on the full disk locked the SO PIN in memory only, the right
/// one was then refused as locked, and the audit log said so while the store did not.)
#[test]
fn a_full_disk_fails_closed_and_the_count_is_what_callers_were_told() {
    const NAME: &str = "a_full_disk_fails_closed_and_the_count_is_what_callers_were_told";
    match step().as_deref() {
        Some("full") => return on_a_full_disk(),
        Some("after") => return after_space_is_back(),
        _ => {}
    }
    isolated(
        NAME,
        "pin_retry_limit = 3\nallow_user_set_pin = true",
        || {
            let mnt = store_dir().parent().unwrap().join("small");
            let Some(fs) = SmallFs::mount_required(&mnt, "2m") else {
                return;
            };
            let store = fs.path.join("store");
            let logs = store_dir().parent().unwrap().to_path_buf();
            let run = |step: &str| {
                let out = run_step_limited(
                    NAME,
                    step,
                    &[
                        ("KEY4C_STORE", store.display().to_string()),
                        (
                            "KEY4C_LOG_FILE",
                            logs.join(format!("{step}.log")).display().to_string(),
                        ),
                    ],
                    Duration::from_secs(300),
                )
                .expect("the step finished");
                assert!(
                    out.status.success(),
                    "step {step}: {}\n{}\n{}\nlog:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    std::fs::read_to_string(logs.join(format!("{step}.log"))).unwrap_or_default()
                );
            };
            run("full");
            let two_wrong = ["login SO CKR_PIN_INCORRECT", "login SO CKR_PIN_INCORRECT"];
            assert_eq!(pin_failures(&store), two_wrong);
            std::fs::remove_file(fs.path.join("filler")).unwrap();
            run("after");
            assert_eq!(pin_failures(&store), two_wrong);
            let on_disk = token_on_disk(&store);
            assert_eq!((on_disk.so.failures, on_disk.so.locked), (0, false));
            assert_eq!((on_disk.user.failures, on_disk.user.locked), (0, false));
            drop(fs);
        },
    );
}

/// Step of the full-disk test: the calls on the full disk.
fn on_a_full_disk() {
    let store = PathBuf::from(std::env::var("KEY4C_STORE").unwrap());
    let lib = Lib::load();
    lib.init();
    lib.provision();
    assert_rv!(lib.init_token(WRONG_PIN, "x"), CKR_PIN_INCORRECT);
    let h = lib.open_rw();
    assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
    let counted = CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY;
    assert_eq!(lib.flags() & PIN_FLAGS, counted);

    // The User makes a session key that needs a context login for every use, then fills
    // what the filler leaves with token objects until the store fails.
    assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
    let p256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut public = Tpl::new(&[(CKA_TOKEN, A::B(false)), (CKA_EC_PARAMS, A::S(p256))]);
    let mut private = Tpl::new(&[
        (CKA_TOKEN, A::B(false)),
        (CKA_SIGN, A::B(true)),
        (CKA_ALWAYS_AUTHENTICATE, A::B(true)),
    ]);
    let mut generate = CK_MECHANISM {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut public_key, mut private_key) = (0, 0);
    assert_rv!(
        call!(
            lib,
            C_GenerateKeyPair,
            h,
            &mut generate,
            public.ptr(),
            public.len(),
            private.ptr(),
            private.len(),
            &mut public_key,
            &mut private_key
        ),
        CKR_OK
    );
    fill(store.parent().unwrap());
    let mut made = 0;
    loop {
        let label = format!("o{made}");
        let rv = lib
            .create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_DATA)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_LABEL, A::S(label.as_bytes())),
                    (CKA_VALUE, A::S(b"v")),
                ],
            )
            .err()
            .unwrap_or(CKR_OK);
        if rv == CKR_DEVICE_ERROR {
            break;
        }
        assert_rv!(rv, CKR_OK);
        made += 1;
        assert!(made < 10_000, "the disk never filled");
    }
    println!("the store failed after {made} more objects");
    // C_Login as CKU_CONTEXT_SPECIFIC, for a signature with that key.
    let mut ecdsa = CK_MECHANISM {
        mechanism: CKM_ECDSA_SHA256,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_rv!(call!(lib, C_SignInit, h, &mut ecdsa, private_key), CKR_OK);
    assert_rv!(
        lib.login(h, CKU_CONTEXT_SPECIFIC, WRONG_PIN),
        CKR_DEVICE_ERROR
    );
    assert_rv!(
        lib.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN),
        CKR_DEVICE_ERROR
    );
    let (mut signature, mut len) = ([0u8; 64], 64);
    assert_rv!(
        call!(
            lib,
            C_Sign,
            h,
            b"data".as_ptr() as *mut u8,
            4,
            signature.as_mut_ptr(),
            &mut len
        ),
        CKR_USER_NOT_LOGGED_IN
    );
    assert_eq!(lib.flags() & PIN_FLAGS, counted);
    // C_SetPIN's old PIN (the User's own change, allowed by the configuration).
    assert_rv!(lib.set_pin(h, WRONG_PIN, OTHER_PIN), CKR_DEVICE_ERROR);
    assert_rv!(lib.set_pin(h, USER_PIN, OTHER_PIN), CKR_DEVICE_ERROR);
    assert_eq!(lib.flags() & PIN_FLAGS, counted);
    assert_rv!(lib.logout(h), CKR_OK);

    // C_Login as the User: the wrong PIN and the right one alike.
    assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_DEVICE_ERROR);
    assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_DEVICE_ERROR);
    assert_eq!(lib.state(h), CKS_RW_PUBLIC_SESSION);
    // C_Login as the SO: its final try cannot be counted, so it is not tried.
    assert_rv!(lib.login(h, CKU_SO, WRONG_PIN), CKR_DEVICE_ERROR);
    assert_eq!(lib.flags() & PIN_FLAGS, counted);
    assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_DEVICE_ERROR);
    assert_eq!(lib.state(h), CKS_RW_PUBLIC_SESSION);
    assert_rv!(lib.close(h), CKR_OK);
    // C_InitToken's SO PIN.
    assert_rv!(lib.init_token(WRONG_PIN, "x"), CKR_DEVICE_ERROR);
    assert_rv!(lib.init_token(SO_PIN, "x"), CKR_DEVICE_ERROR);
    assert_eq!(lib.flags() & PIN_FLAGS, counted);
    assert_eq!(
        pin_failures(&store),
        ["login SO CKR_PIN_INCORRECT", "login SO CKR_PIN_INCORRECT"]
    );
    finalize(&lib);
}

/// Step of the full-disk test: a new process once space is back.
fn after_space_is_back() {
    let lib = Lib::load();
    lib.init();
    assert_eq!(
        lib.flags() & PIN_FLAGS,
        CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY
    );
    let h = lib.open_rw();
    assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_rv!(lib.logout(h), CKR_OK);
    assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(lib.flags() & PIN_FLAGS, 0);
    finalize(&lib);
}

/// The retry limit is the token's: 4 wrong User PINs under the limit 5 it was created with,
/// then a process whose configuration says 15 gets one more wrong try, which locks (before:
/// 10 more), and logs one warning naming both values.
#[test]
fn the_token_keeps_its_retry_limit_whatever_a_process_configures() {
    const NAME: &str = "the_token_keeps_its_retry_limit_whatever_a_process_configures";
    if step().as_deref() == Some("fifteen") {
        let lib = Lib::load();
        lib.init();
        assert_eq!(
            lib.flags() & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
        );
        let h = lib.open_rw();
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
        assert_eq!(
            lib.flags() & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED
        );
        finalize(&lib);
        return;
    }
    isolated(NAME, "pin_retry_limit = 5", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let h = lib.open_rw();
        for _ in 0..4 {
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
        }
        finalize(&lib);
        assert_eq!(token_on_disk(&store_dir()).pin_retry_limit, Some(5));
        let dir = store_dir().parent().unwrap().to_path_buf();
        let conf = std::fs::read_to_string(std::env::var("KEY4C_CONF").unwrap()).unwrap();
        let fifteen = dir.join("fifteen.toml");
        std::fs::write(
            &fifteen,
            conf.replace("pin_retry_limit = 5", "pin_retry_limit = 15"),
        )
        .unwrap();
        let log = dir.join("fifteen.log");
        let out = run_step_limited(
            NAME,
            "fifteen",
            &[
                ("KEY4C_CONF", fifteen.display().to_string()),
                ("KEY4C_LOG_FILE", log.display().to_string()),
                ("KEY4C_LOG", "warn".to_string()),
            ],
            Duration::from_secs(120),
        )
        .expect("the step finished");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("pin_retry_limit"))
            .collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(
            warnings[0].contains(
                "pin_retry_limit = 15 in the configuration is ignored: the token's own retry limit is 5"
            ),
            "{text}"
        );
        let on_disk = token_on_disk(&store_dir());
        assert_eq!(on_disk.pin_retry_limit, Some(5));
        assert_eq!((on_disk.user.failures, on_disk.user.locked), (5, true));
    });
}

/// A token record written before the token kept its limit (format 1) takes the limit of the
/// configuration that opens it, and keeps it from its next write on: a later process whose
/// configuration says otherwise does not change it.
#[test]
fn a_format_1_token_record_takes_the_configured_limit_at_its_next_write() {
    const NAME: &str = "a_format_1_token_record_takes_the_configured_limit_at_its_next_write";
    if step().as_deref() == Some("ten") {
        let lib = Lib::load();
        lib.init();
        assert_eq!(lib.flags() & PIN_FLAGS, CKF_USER_PIN_COUNT_LOW);
        let h = lib.open_rw();
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
        assert_eq!(
            lib.flags() & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
        );
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
        finalize(&lib);
        return;
    }
    isolated(NAME, "pin_retry_limit = 3", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        finalize(&lib);
        {
            // The record as key4c wrote it before: format 1, no limit after the body.
            let db = sled::open(store_dir()).unwrap();
            let mut bytes = db.get(b"token").unwrap().unwrap().to_vec();
            // (Record format 3; its token record is format 2's.)
            assert_eq!((bytes[0], &bytes[bytes.len() - 2..]), (3, &[1u8, 3][..]));
            bytes[0] = 1;
            bytes.truncate(bytes.len() - 2);
            db.insert(b"token", bytes).unwrap();
            db.flush().unwrap();
        }
        assert_eq!(token_on_disk(&store_dir()).pin_retry_limit, None);
        lib.init();
        let h = lib.open_rw();
        assert_eq!(lib.flags() & PIN_FLAGS, 0);
        assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
        finalize(&lib);
        let on_disk = token_on_disk(&store_dir());
        assert_eq!(on_disk.pin_retry_limit, Some(3));
        assert_eq!(on_disk.user.failures, 1);
        // A process configured with 10: the token's 3 holds.
        run_step_with_config(
            NAME,
            "ten",
            "ten.toml",
            ("pin_retry_limit = 3", "pin_retry_limit = 10"),
        );
    });
}

/// A PIN wrapped at an older KDF cost (here 1,000 iterations, standing for the 100,000 of
/// stores made before the default rose) opens under a configuration with another cost, and
/// is rewrapped at the configured cost when it changes: the SO PIN at C_SetPIN, the User PIN
/// at C_InitPIN; a PIN that does not change keeps its cost.
#[test]
fn an_older_kdf_cost_opens_and_is_rewrapped_at_the_next_pin_change() {
    const NAME: &str = "an_older_kdf_cost_opens_and_is_rewrapped_at_the_next_pin_change";
    if step().as_deref() == Some("newer-cost") {
        let lib = Lib::load();
        lib.init();
        let h = lib.open_rw();
        assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
        assert_rv!(lib.set_pin(h, SO_PIN, OTHER_PIN), CKR_OK);
        finalize(&lib);
        let t = token_on_disk(&store_dir());
        let cost = |p: &key4c_pkcs11::store::records::PinRecord| {
            p.wrapped_master_key.as_ref().unwrap().iterations
        };
        assert_eq!((cost(&t.so), cost(&t.user)), (2_000, 1_000));
        lib.init();
        let h = lib.open_rw();
        assert_rv!(lib.login(h, CKU_SO, OTHER_PIN), CKR_OK);
        assert_rv!(lib.init_pin(h, b"N3w-User.Pin"), CKR_OK);
        assert_rv!(lib.logout(h), CKR_OK);
        assert_rv!(lib.login(h, CKU_USER, b"N3w-User.Pin"), CKR_OK);
        finalize(&lib);
        let t = token_on_disk(&store_dir());
        assert_eq!((cost(&t.so), cost(&t.user)), (2_000, 2_000));
        return;
    }
    isolated(NAME, "", || {
        let lib = Lib::load();
        lib.init();
        lib.provision();
        finalize(&lib);
        let t = token_on_disk(&store_dir());
        let so = t.so.wrapped_master_key.unwrap();
        assert_eq!(
            (so.iterations, t.user.wrapped_master_key.unwrap().iterations),
            (1_000, 1_000)
        );
        run_step_with_config(
            NAME,
            "newer-cost",
            "newer.toml",
            ("kdf_iterations = 1000", "kdf_iterations = 2000"),
        );
    });
}

/// Only the SO sets the token's retry limit (the token API the `key4c` CLI uses): not without
/// a login, not as the User, not outside 1..=15; the change is audited and the token's flags
/// follow it.
#[test]
fn only_the_so_sets_the_retry_limit() {
    use key4c_pkcs11::config::Config;
    use key4c_pkcs11::token::{padded, Token};
    isolated("only_the_so_sets_the_retry_limit", "", || {
        let token = Token::open(Config::from_env().unwrap()).unwrap();
        let slot = token.slot_id();
        token.init_token(slot, SO_PIN, &padded("t")).unwrap();
        let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        let h = token.open_session(slot, rw).unwrap();
        let ckr = |r: Result<u32, key4c_pkcs11::token::Error>| r.map_err(|e| e.ckr());
        assert_eq!(
            ckr(token.set_pin_retry_limit(h, 7)),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        token.login(h, CKU_SO, SO_PIN).unwrap();
        token.init_pin(h, USER_PIN).unwrap();
        token.logout(h).unwrap();
        token.login(h, CKU_USER, USER_PIN).unwrap();
        assert_eq!(
            ckr(token.set_pin_retry_limit(h, 7)),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
        token.logout(h).unwrap();
        token.login(h, CKU_SO, SO_PIN).unwrap();
        assert_eq!(ckr(token.set_pin_retry_limit(h, 0)), Err(CKR_ARGUMENTS_BAD));
        assert_eq!(
            ckr(token.set_pin_retry_limit(h, 16)),
            Err(CKR_ARGUMENTS_BAD)
        );
        assert_eq!(ckr(token.set_pin_retry_limit(h, 2)), Ok(5));
        token.logout(h).unwrap();
        assert_eq!(
            token.login(h, CKU_USER, WRONG_PIN).map_err(|e| e.ckr()),
            Err(CKR_PIN_INCORRECT)
        );
        assert_eq!(
            token.token_info(slot).unwrap().flags & PIN_FLAGS,
            CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
        );
        assert_eq!(
            token.login(h, CKU_USER, WRONG_PIN).map_err(|e| e.ckr()),
            Err(CKR_PIN_LOCKED)
        );
        let changes: Vec<String> = token
            .audit_log()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.event == "pin.retry_limit")
            .map(|r| format!("{} {}", r.subject, r.outcome))
            .collect();
        assert_eq!(changes, ["5 -> 2 ok"]);
        assert_eq!(token.service_info().pin_retry_limit, Some(2));
    });
}

/// Runs this test again as `step`, under this test's configuration with one line changed
/// (`from` to `to`), written to `file` beside the store; the step must pass.
fn run_step_with_config(name: &str, step: &str, file: &str, (from, to): (&str, &str)) {
    let conf = std::fs::read_to_string(std::env::var("KEY4C_CONF").unwrap()).unwrap();
    assert!(
        conf.contains(from),
        "{from:?} not in the configuration:\n{conf}"
    );
    let path = store_dir().parent().unwrap().join(file);
    std::fs::write(&path, conf.replace(from, to)).unwrap();
    let out = run_step_limited(
        name,
        step,
        &[("KEY4C_CONF", path.display().to_string())],
        Duration::from_secs(120),
    )
    .expect("the step finished");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
