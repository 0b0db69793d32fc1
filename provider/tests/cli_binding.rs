//! The configuration's binding to a service, end to end: `key4c service create` makes the
//! service, then the module (dlopen'ed, each configuration in its own process) shows the
//! token only when the configuration's `uuid` and `api_key` name that service, and logs why
//! when they do not.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

/// C_GetSlotList's count with tokenPresent = `present`.
fn slot_count(lib: &Lib, present: bool) -> CK_ULONG {
    let mut n: CK_ULONG = 0;
    let flag = if present { CK_TRUE } else { CK_FALSE };
    assert_rv!(
        call!(lib, C_GetSlotList, flag, std::ptr::null_mut(), &mut n),
        CKR_OK
    );
    n
}

/// Rewrites the running test's configuration: the isolated store, and `extra`.
fn configure(extra: &str) {
    let conf = std::env::var("KEY4C_CONF").expect("KEY4C_CONF");
    let dir = std::path::Path::new(&conf).parent().expect("conf dir");
    let text = format!(
        "store = {:?}\nkdf_iterations = 1000\nlog_file = {:?}\n{extra}\n",
        store_dir().display().to_string(),
        dir.join("module.log").display().to_string()
    );
    std::fs::write(&conf, text).expect("write config");
}

/// Runs this test again as `step` in a new process (with the same store and configuration),
/// bounded in time: a module that hangs in C_Initialize fails the test instead of stalling it.
fn run_step_bounded(name: &str, step: &str) -> bool {
    // run_step_limited also checks that exactly this one test ran.
    match run_step_limited(name, step, &[], std::time::Duration::from_secs(60)) {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            out.status.success()
        }
        Err(hang) => panic!("step {step:?}: the module hangs: {hang}"),
    }
}

fn module_log() -> String {
    let conf = std::env::var("KEY4C_CONF").expect("KEY4C_CONF");
    let log = std::path::Path::new(&conf)
        .parent()
        .expect("conf dir")
        .join("module.log");
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn wrong_api_key_hides_the_token_and_the_right_one_shows_it() {
    isolated(
        "wrong_api_key_hides_the_token_and_the_right_one_shows_it",
        "",
        || {
            match step().as_deref() {
                None => {}
                Some("hidden") => {
                    let lib = Lib::load();
                    lib.init();
                    assert_eq!(slot_count(&lib, true), 0, "no slot with a token");
                    assert_eq!(slot_count(&lib, false), 1, "the slot itself is there");
                    let mut info = CK_TOKEN_INFO::default();
                    assert_rv!(
                        call!(lib, C_GetTokenInfo, 0, &mut info),
                        CKR_TOKEN_NOT_PRESENT
                    );
                    let mut h = 0;
                    assert_rv!(
                        call!(
                            lib,
                            C_OpenSession,
                            0,
                            CKF_SERIAL_SESSION | CKF_RW_SESSION,
                            std::ptr::null_mut(),
                            None,
                            &mut h
                        ),
                        CKR_TOKEN_NOT_PRESENT
                    );
                    assert_rv!(call!(lib, C_Finalize, std::ptr::null_mut()), CKR_OK);
                    return;
                }
                Some(serial) => {
                    let lib = Lib::load();
                    lib.init();
                    assert_eq!(slot_count(&lib, true), 1);
                    let info = lib.token_info();
                    assert_eq!(text(&info.serialNumber), serial);
                    assert_eq!(text(&info.label), "bound");
                    let h = lib.open_rw();
                    assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
                    assert_rv!(call!(lib, C_Finalize, std::ptr::null_mut()), CKR_OK);
                    return;
                }
            }
            // The service, made with the CLI on this test's store.
            let conf = std::env::var("KEY4C_CONF").expect("KEY4C_CONF");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_key4c"))
                .args([
                    "--config", &conf, "service", "create", "--json", "--label", "bound",
                ])
                .env("KEY4C_SO_PIN", std::str::from_utf8(SO_PIN).unwrap())
                .env("KEY4C_USER_PIN", std::str::from_utf8(USER_PIN).unwrap())
                .env_remove("KEY4C_STORE")
                .output()
                .expect("run key4c");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let uuid = created["uuid"].as_str().unwrap().to_string();
            let api_key = created["api_key"].as_str().unwrap().to_string();
            let serial = uuid.replace('-', "")[..16].to_string();
            let name = "wrong_api_key_hides_the_token_and_the_right_one_shows_it";

            // A wrong API key: no token, and the log says why.
            configure(&format!("uuid = \"{uuid}\"\napi_key = \"not-{api_key}\""));
            assert!(run_step_bounded(name, "hidden"));
            let log = module_log();
            assert!(log.contains("api_key"), "the log names the reason: {log}");
            assert!(!log.contains(&api_key), "the log shows the API key");
            // Another service's uuid with the right key: no token either.
            configure(&format!(
                "uuid = \"00000000-0000-4000-8000-000000000000\"\napi_key = \"{api_key}\""
            ));
            assert!(run_step_bounded(name, "hidden"));
            assert!(module_log().contains("uuid"));
            // The right pair: the token, and the User logs in.
            configure(&format!("uuid = \"{uuid}\"\napi_key = \"{api_key}\""));
            assert!(run_step_bounded(name, &serial));
            // Without a binding the module shows the token too.
            configure("");
            assert!(run_step_bounded(name, &serial));
        },
    );
}
