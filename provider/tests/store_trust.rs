//! Store trust (README "Store"): the store is private to its owner and a loose one is refused;
//! configuration mistakes fail C_Initialize without writing anything; a store put back from an
//! earlier copy is noticed and refused until the SO accepts the restore.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::ptr::null_mut;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every entry under `dir` with its mode and kind ("dir", "file", "socket"), by relative path.
fn modes(dir: &Path) -> Vec<(String, &'static str, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = if kind.is_dir() {
                todo.push(path.clone());
                "dir"
            } else if kind.is_socket() {
                "socket"
            } else {
                "file"
            };
            out.push((name, kind, mode(&path)));
        }
    }
    out.sort();
    out
}

/// A token with a key, objects and audit events: every file the store has.
fn fill_store(lib: &Lib) {
    lib.provision();
    let h = lib.user_session();
    for i in 0..3 {
        lib.create(
            h,
            &[
                (CKA_CLASS, A::U(CKO_DATA)),
                (CKA_TOKEN, A::B(true)),
                (CKA_LABEL, A::S(format!("o{i}").as_bytes())),
                (CKA_VALUE, A::S(&[i as u8; 32])),
            ],
        )
        .expect("create");
    }
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Finding 1: the directory is 0700 and every file and socket in it 0600 whatever the umask;
/// a store open to group or others is refused with one line naming the path, the mode and the
/// fix, and nothing in it is changed.
#[test]
fn store_is_private_and_a_loose_one_is_refused() {
    isolated("store_is_private_and_a_loose_one_is_refused", "", || {
        // A permissive umask, as many hosts have: the modes must not come from it.
        unsafe { libc::umask(0o002) };
        let log = store_dir().parent().unwrap().join("module.log");
        std::env::set_var("KEY4C_LOG_FILE", &log);
        let lib = Lib::load();
        lib.init();
        fill_store(&lib);
        let store = store_dir();
        assert_eq!(mode(&store), 0o700);
        let seen = modes(&store);
        for name in ["db", "conf", "commit", "audit.jsonl", "key4c.holder"] {
            assert!(
                seen.iter().any(|(n, k, _)| n == name && *k == "file"),
                "{name} missing: {seen:?}"
            );
        }
        assert!(seen.iter().any(|(_, k, _)| *k == "socket"), "{seen:?}");
        for (name, kind, m) in &seen {
            let want = if *kind == "dir" { 0o700 } else { 0o600 };
            assert_eq!(*m, want, "{name} ({kind}) has mode {m:04o}");
        }
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);

        // A data file open to every user: refused before anything is read or written.
        chmod(&store.join("db"), 0o644);
        let before = files_under(&store);
        assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
        assert_eq!(files_under(&store), before, "a refused store was changed");
        let text = log_text(&log);
        let want = format!(
            "{}/db has mode 0644, open to every user, where a private store allows 0600: run `chmod 600 {}/db`, or `chmod -R go-rwx {}` for the whole store",
            store.display(),
            store.display(),
            store.display()
        );
        assert!(text.contains(&want), "{text}");
        chmod(&store.join("db"), 0o600);

        // The directory open to its group.
        chmod(&store, 0o750);
        assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
        let want = format!(
            "{} has mode 0750, open to its group, where a private store allows 0700: run `chmod 700 {}`",
            store.display(),
            store.display()
        );
        assert!(log_text(&log).contains(&want), "{}", log_text(&log));
        chmod(&store, 0o700);

        // Fixed as the line says: the token is back, with its objects.
        lib.init();
        let h = lib.user_session();
        assert_eq!(lib.find(h, &[(CKA_CLASS, A::U(CKO_DATA))]).len(), 3);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

/// `store_access = "group"` shares the store with its group: 0770 and 0660, checked the same
/// way (open to others is refused).
#[test]
fn group_access_is_an_explicit_choice() {
    isolated(
        "group_access_is_an_explicit_choice",
        "store_access = \"group\"",
        || {
            unsafe { libc::umask(0o022) };
            let lib = Lib::load();
            lib.init();
            fill_store(&lib);
            let store = store_dir();
            assert_eq!(mode(&store), 0o770);
            for (name, kind, m) in modes(&store) {
                let want = if kind == "dir" { 0o770 } else { 0o660 };
                assert_eq!(m, want, "{name} ({kind}) has mode {m:04o}");
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            chmod(&store.join("commit"), 0o664);
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
            chmod(&store.join("commit"), 0o660);
            lib.init();
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        },
    );
}

/// Finding 4: every invalid value fails C_Initialize with a line naming it; an empty store path
/// writes nothing; a relative one is resolved once and logged as absolute.
#[test]
fn configuration_mistakes_fail_initialize() {
    const NAME: &str = "configuration_mistakes_fail_initialize";
    isolated(NAME, "", || match step().as_deref() {
        None => {
            let dir = store_dir().parent().unwrap().to_path_buf();
            let conf = |name: &str, text: &str| {
                let path = dir.join(name);
                std::fs::write(&path, text).unwrap();
                path.display().to_string()
            };
            let cwd = dir.join("cwd");
            std::fs::create_dir(&cwd).unwrap();
            // (environment, the line the log must hold): each refused at C_Initialize.
            let cases: [(Env, &str); 4] = [
                (
                    vec![("KEY4C_CONF", conf("loud.toml", "log_level = \"loud\"\n"))],
                    "log_level: \"loud\" is not a log level (one of off, error, warn, info, debug, trace, or TARGET=LEVEL)",
                ),
                (
                    vec![("KEY4C_LOG", "loud".into())],
                    "KEY4C_LOG: \"loud\" is not a log level",
                ),
                (
                    vec![("KEY4C_STORE", String::new())],
                    "KEY4C_STORE is set but empty",
                ),
                (
                    vec![("KEY4C_CONF", conf("empty.toml", "store = \"\"\n"))],
                    "store = \"\" names no directory",
                ),
            ];
            for (i, (env, want)) in cases.iter().enumerate() {
                let log = dir.join(format!("case{i}.log"));
                let mut env = env.clone();
                env.push(("KEY4C_LOG_FILE", log.display().to_string()));
                env.push(("KEY4C_TEST_CWD", cwd.display().to_string()));
                let out = run_step_env("refused", &env);
                assert!(
                    out.status.success(),
                    "case {i}: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
                let text = log_text(&log);
                assert!(text.contains(want), "case {i}: {text}");
            }
            // Nothing was written where the process ran.
            assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);

            let log = dir.join("relative.log");
            let env = vec![
                (
                    "KEY4C_CONF",
                    conf(
                        "relative.toml",
                        "store = \"rel/store\"\nkdf_iterations = 1000\n",
                    ),
                ),
                ("KEY4C_LOG_FILE", log.display().to_string()),
                ("KEY4C_TEST_CWD", cwd.display().to_string()),
            ];
            let out = run_step_env("relative", &env);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let want = format!(
                "the store path rel/store is relative: using {}/rel/store",
                cwd.display()
            );
            assert!(log_text(&log).contains(&want), "{}", log_text(&log));
            assert!(cwd.join("rel/store/db").is_file());
        }
        Some(step) => {
            std::env::set_current_dir(std::env::var("KEY4C_TEST_CWD").unwrap()).unwrap();
            let lib = Lib::load();
            if step == "refused" {
                assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_GENERAL_ERROR);
                return;
            }
            lib.init();
            lib.provision();
            // Resolved once: a later change of directory does not move the store.
            std::env::set_current_dir("/").unwrap();
            let h = lib.user_session();
            lib.create(h, &[(CKA_CLASS, A::U(CKO_DATA)), (CKA_TOKEN, A::B(true))])
                .expect("create after chdir");
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
    });
}

type Env = Vec<(&'static str, String)>;

fn run_step_env(step: &str, env: &[(&str, String)]) -> std::process::Output {
    run_step_limited(
        "configuration_mistakes_fail_initialize",
        step,
        env,
        std::time::Duration::from_secs(120),
    )
    .expect("the step finished")
}

/// A copy of the store put back after wrong PINs were counted (the rollback an attacker uses
/// to get fresh guesses) is refused, with the way out; `key4c store accept-restore` with the
/// SO PIN accepts a deliberate restore, and says so in the audit log.
#[test]
fn restored_copy_is_refused_until_the_so_accepts_it() {
    isolated(
        "restored_copy_is_refused_until_the_so_accepts_it",
        "",
        || {
            let dir = store_dir().parent().unwrap().to_path_buf();
            let state = dir.join("state");
            std::env::set_var("KEY4C_STATE_DIR", &state);
            let log = dir.join("module.log");
            std::env::set_var("KEY4C_LOG_FILE", &log);
            let store = store_dir();
            let backup = dir.join("backup");
            let lib = Lib::load();
            lib.init();
            lib.provision();
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            copy(&store, &backup);

            lib.init();
            let h = lib.open_rw();
            for _ in 0..2 {
                assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);

            std::fs::remove_dir_all(&store).unwrap();
            copy(&backup, &store);
            let before = files_under(&store);
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
            let text = log_text(&log);
            assert!(
            text.contains("it was restored from an earlier copy, which also rolls the PIN failure counters back"),
            "{text}"
        );
            assert!(text.contains("`key4c store accept-restore`"), "{text}");
            let after = files_under(&store);
            for name in ["commit", "audit.jsonl"] {
                assert_eq!(after.get(name), before.get(name), "{name} changed");
            }

            let key4c = |pin: &[u8]| {
                std::process::Command::new(env!("CARGO_BIN_EXE_key4c"))
                    .args(["store", "accept-restore"])
                    .env("KEY4C_SO_PIN", String::from_utf8_lossy(pin).as_ref())
                    .output()
                    .unwrap()
            };
            // Only the SO: a wrong SO PIN accepts nothing (and counts).
            let out = key4c(WRONG_PIN);
            assert!(!out.status.success());
            assert!(
                String::from_utf8_lossy(&out.stderr)
                    .contains("the SO PIN is wrong: 4 attempts left"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_DEVICE_ERROR);
            let out = key4c(SO_PIN);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).starts_with("Restore accepted: the store ")
            );

            lib.init();
            // The copy's counters: the two wrong User PINs are gone, as the README warns.
            assert_eq!(lib.flags() & CKF_USER_PIN_COUNT_LOW, 0);
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            let audit = std::fs::read_to_string(store.join("audit.jsonl")).unwrap();
            assert!(
                audit.contains("\"event\":\"store.restore.accept\""),
                "{audit}"
            );
        },
    );
}

/// `cp -a`: the store's modes kept.
fn copy(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}
