//! The admin CLI `key4c`, driven as a user would: the real binary in a temporary store
//! (`kdf_iterations = 1000` for speed), PINs through files and environment variables.
//! Stories: service creation, the service page, PIN changes, the user lock, the SO lock →
//! unlock request → vendor approval → notice (Maildir and SMTP) → login, the holder's failed
//! approval, keys, and the audit log (which never holds a PIN).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine;
use serde_json::Value;

const SO: &str = "So-Pin.2024x";
const USER: &str = "Us3r#Pin.9k";
const NEW_USER: &str = "New-Us3r.Pin";
const NEW_SO: &str = "Key4C-Pin.9x";
const WRONG: &str = "Wr0ng-Pin.x";
const HOLDER: &str = "holder@example.com";

/// One temporary store with its configuration, outbox and vendor directory.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A new store; `extra` is appended to the configuration.
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = |s: &str| dir.path().join(s).display().to_string();
        let config = format!(
            "store = {:?}\nstate_dir = {:?}\nkdf_iterations = 1000\noutbox = {:?}\nvendor_public_key = {:?}\nmail_from = \"key4c-vendor@example.net\"\n{extra}\n",
            p("store"),
            p("state"),
            p("outbox"),
            p("vendor/vendor.pub"),
        );
        std::fs::write(dir.path().join("key4c.toml"), config).expect("write config");
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `key4c --config <this config>`, with no PIN or store from the test's environment.
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_key4c"));
        c.arg("--config").arg(self.path("key4c.toml"));
        for var in [
            "KEY4C_CONF",
            "KEY4C_STORE",
            "KEY4C_SO_PIN",
            "KEY4C_USER_PIN",
            "KEY4C_NEW_SO_PIN",
            "KEY4C_LOG",
        ] {
            c.env_remove(var);
        }
        c.timeout(Duration::from_secs(120));
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run key4c")
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "key4c {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs a command that must fail with one sentence on stderr; returns that sentence.
    fn fail(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "key4c {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_one_sentence(&stderr);
        stderr
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = self.ok(args, env);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{out}"))
    }

    /// `service create` with the usual PINs; returns its JSON.
    fn create(&self) -> Value {
        self.json(
            &["service", "create", "--json", "--label", "cli test"],
            &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", USER)],
        )
    }

    fn show(&self) -> Value {
        self.json(&["service", "show", "--json"], &[])
    }

    /// Five wrong SO PINs: the SO PIN is locked.
    fn lock_so(&self) {
        for left in (1..=4).rev() {
            let e = self.fail(
                &["pin", "set-user"],
                &[("KEY4C_SO_PIN", WRONG), ("KEY4C_USER_PIN", NEW_USER)],
            );
            assert!(e.contains(&format!("{left} attempt")), "{e}");
        }
        let e = self.fail(
            &["pin", "set-user"],
            &[("KEY4C_SO_PIN", WRONG), ("KEY4C_USER_PIN", NEW_USER)],
        );
        assert!(
            e.contains("now locked") && e.contains("unlock request"),
            "{e}"
        );
        assert_eq!(self.show()["token"]["so_pin"]["state"], "locked");
    }

    /// The audit log as JSON.
    fn audit(&self) -> Vec<Value> {
        self.json(&["audit", "--json"], &[])
            .as_array()
            .expect("array")
            .clone()
    }

    /// Neither the audit log nor any file of the store holds any of `pins`.
    fn assert_no_pins(&self, pins: &[&str]) {
        let audit = self.ok(&["audit", "--json"], &[]);
        let text = self.ok(&["audit"], &[]);
        let mut files = vec![self.path("store")];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("read store dir") {
                    files.push(entry.expect("entry").path());
                }
                continue;
            }
            let bytes = std::fs::read(&path).expect("read store file");
            for pin in pins {
                assert!(
                    !bytes.windows(pin.len()).any(|w| w == pin.as_bytes()),
                    "{} holds a PIN",
                    path.display()
                );
            }
        }
        for pin in pins {
            assert!(
                !audit.contains(pin) && !text.contains(pin),
                "the audit log holds {pin}"
            );
        }
    }
}

/// One line, `key4c: ...`, no panic, no Debug dump.
fn assert_one_sentence(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("key4c: "), "{stderr:?}");
    for bad in ["panicked", "RUST_BACKTRACE", "Error {", "Some(", "Err("] {
        assert!(!stderr.contains(bad), "{stderr:?}");
    }
}

fn events(audit: &[Value]) -> Vec<(String, String, String)> {
    audit
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("event"), s("subject"), s("outcome"))
        })
        .collect()
}

fn has_event(audit: &[Value], event: &str, outcome: &str) -> bool {
    events(audit)
        .iter()
        .any(|(e, _, o)| e == event && o.starts_with(outcome))
}

/// A parsed RFC 5322 message: headers (lower-case names) and body.
fn parse_mail(text: &str) -> (BTreeMap<String, String>, String) {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").expect("header/body separator");
    let mut headers = BTreeMap::new();
    let mut last = String::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = headers.get_mut(&last) {
                *v = format!("{v} {}", line.trim());
            }
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        last = name.trim().to_ascii_lowercase();
        headers.insert(last.clone(), value.trim().to_string());
    }
    (headers, body.to_string())
}

/// The single message in the Maildir's new/ (tmp/ must be empty).
fn maildir_message(outbox: &Path) -> String {
    let tmp: Vec<_> = std::fs::read_dir(outbox.join("tmp"))
        .expect("tmp/")
        .collect();
    assert!(tmp.is_empty(), "a message was left in tmp/");
    let new: Vec<PathBuf> = std::fs::read_dir(outbox.join("new"))
        .expect("new/")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    std::fs::read_to_string(&new[0]).expect("read message")
}

#[test]
fn help_on_every_command() {
    let env = Env::new("");
    let commands: &[&[&str]] = &[
        &[],
        &["service"],
        &["service", "create"],
        &["service", "show"],
        &["service", "api-key"],
        &["pin"],
        &["pin", "change-so"],
        &["pin", "set-user"],
        &["pin", "retry-limit"],
        &["unlock"],
        &["unlock", "request"],
        &["unlock", "status"],
        &["unlock", "approve"],
        &["unlock", "reject"],
        &["vendor"],
        &["vendor", "keygen"],
        &["keys"],
        &["keys", "list"],
        &["keys", "generate"],
        &["keys", "delete"],
        &["keys", "export"],
        &["audit"],
        &["demo"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = env.ok(&args, &[]);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
}

#[test]
fn create_checks_both_pins_before_touching_the_store() {
    let env = Env::new("");
    let store = env.path("store");
    let cases = [
        (SO, "Us3r#Pin.1234", "User PIN", "sequential"),
        ("Short1!", USER, "SO PIN", "9 to 255"),
        (SO, "us3r#pin.9k", "User PIN", "upper-case"),
        ("So_Pin.2024x", USER, "SO PIN", "may contain only"),
        (SO, "Us3r#Piiii9", "User PIN", "repeat"),
    ];
    for (so, user, which, rule) in cases {
        let e = env.fail(
            &["service", "create"],
            &[("KEY4C_SO_PIN", so), ("KEY4C_USER_PIN", user)],
        );
        assert!(e.contains(which) && e.contains(rule), "{e}");
        assert!(!store.exists(), "the store was touched");
    }
    // PINs never come from argv: without a file, variable or terminal there is none.
    let e = env.fail(&["service", "create"], &[("KEY4C_USER_PIN", USER)]);
    assert!(
        e.contains("--so-pin-file") && e.contains("KEY4C_SO_PIN"),
        "{e}"
    );
    assert!(!store.exists());
    // Commands other than `create` do not make a store.
    let e = env.fail(&["service", "show"], &[]);
    assert!(e.contains("service create"), "{e}");
    assert!(!store.exists());
}

#[test]
fn create_from_pin_files_and_show_the_service_page() {
    let env = Env::new("");
    let so_file = env.path("so.pin");
    let user_file = env.path("user.pin");
    std::fs::write(&so_file, format!("{SO}\n")).unwrap();
    std::fs::write(&user_file, format!("{USER}\r\n")).unwrap();
    let created = env.json(
        &[
            "service",
            "create",
            "--json",
            "--so-pin-file",
            so_file.to_str().unwrap(),
            "--user-pin-file",
            user_file.to_str().unwrap(),
        ],
        &[],
    );
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let api_key = created["api_key"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&api_key)
        .expect("base64url API key");
    assert_eq!(raw.len(), 32);

    let page = env.show();
    assert_eq!(page["service"]["uuid"], uuid.as_str());
    assert_eq!(page["service"]["serial"], uuid.replace('-', "")[..16]);
    assert_eq!(page["service"]["label"], "key4c");
    let created_at = page["service"]["token_created"].as_str().unwrap();
    assert_eq!(created_at, created["token_created"].as_str().unwrap());
    assert!(created_at.starts_with("20") && created_at.ends_with('Z'));
    assert_eq!(page["hsm"]["model"], "Key4C V3");
    assert_eq!(page["hsm"]["manufacturer"], "Key4C Emulator");
    assert_eq!(page["hsm"]["hardware_version"], "3.0");
    assert_eq!(page["hsm"]["firmware_version"], "3.0");
    assert_eq!(page["hsm"]["pin_length"]["min"], 9);
    assert_eq!(page["hsm"]["pin_length"]["max"], 255);
    assert_eq!(page["token"]["so_pin"]["state"], "normal");
    assert_eq!(page["token"]["user_pin"]["state"], "normal");
    assert_eq!(page["token"]["user_pin"]["attempts_left"], 5);
    assert_eq!(page["token"]["so_unlock_request"], Value::Null);
    assert_eq!(page["api_key"]["issued"], true);
    assert!(
        !page.to_string().contains(&api_key),
        "the page shows the API key"
    );
    let human = env.ok(&["service", "show"], &[]);
    assert!(human.contains("Key4C V3") && human.contains(&uuid) && human.contains("9 ~ 255"));
    assert!(!human.contains(&api_key));

    // One service per store.
    let e = env.fail(
        &["service", "create"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", USER)],
    );
    assert!(e.contains("already exists"), "{e}");

    // A new API key needs the SO PIN and replaces the old one.
    let e = env.fail(&["service", "api-key"], &[("KEY4C_SO_PIN", WRONG)]);
    assert!(e.contains("SO PIN is wrong"), "{e}");
    let again = env.json(&["service", "api-key", "--json"], &[("KEY4C_SO_PIN", SO)]);
    let new_key = again["api_key"].as_str().unwrap();
    assert_ne!(new_key, api_key);

    // The configuration's binding is reported.
    let conf = env.path("key4c.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        format!("{text}uuid = \"{uuid}\"\napi_key = \"{api_key}\"\n"),
    )
    .unwrap();
    let page = env.show();
    assert_eq!(page["config_binding"]["uuid"], "matches");
    assert_eq!(page["config_binding"]["api_key"], "does not match");
    assert_eq!(page["config_binding"]["token_shown_by_module"], false);
    std::fs::write(
        &conf,
        format!("{text}uuid = \"{uuid}\"\napi_key = \"{new_key}\"\n"),
    )
    .unwrap();
    assert_eq!(env.show()["config_binding"]["token_shown_by_module"], true);
    // A configuration naming another service is refused: it is the wrong store.
    std::fs::write(
        &conf,
        format!("{text}uuid = \"00000000-0000-4000-8000-000000000000\"\n"),
    )
    .unwrap();
    let e = env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", USER)]);
    assert!(e.contains("is not the service of the store"), "{e}");
}

#[test]
fn pin_changes_explain_errors_in_words() {
    let env = Env::new("");
    env.create();
    // Policy first: nothing counted.
    let e = env.fail(
        &["pin", "change-so"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_NEW_SO_PIN", "Xy.9-DcBa1")],
    );
    assert!(e.contains("new SO PIN") && e.contains("sequential"), "{e}");
    let e = env.fail(
        &["pin", "change-so"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_NEW_SO_PIN", SO)],
    );
    assert!(e.contains("same as the current"), "{e}");
    assert_eq!(env.show()["token"]["so_pin"]["failures"], 0);
    // A wrong current PIN counts, and says how many attempts are left.
    let e = env.fail(
        &["pin", "change-so"],
        &[("KEY4C_SO_PIN", WRONG), ("KEY4C_NEW_SO_PIN", NEW_SO)],
    );
    assert!(e.contains("SO PIN is wrong: 4 attempts left"), "{e}");
    assert_eq!(env.show()["token"]["so_pin"]["state"], "count low");
    env.ok(
        &["pin", "change-so"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_NEW_SO_PIN", NEW_SO)],
    );
    assert_eq!(env.show()["token"]["so_pin"]["state"], "normal");
    let e = env.fail(
        &["pin", "set-user"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    assert!(e.contains("wrong"), "{e}");
    // The User PIN: rule 6 is checked by the token.
    let e = env.fail(
        &["pin", "set-user"],
        &[("KEY4C_SO_PIN", NEW_SO), ("KEY4C_USER_PIN", USER)],
    );
    assert!(e.contains("new User PIN is the same"), "{e}");
    let out = env.ok(
        &["pin", "reset-user"],
        &[("KEY4C_SO_PIN", NEW_SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    assert!(out.contains("User PIN reset"), "{out}");
    env.ok(&["keys", "list"], &[("KEY4C_USER_PIN", NEW_USER)]);
    assert!(has_event(&env.audit(), "pin.change", "ok"));
    env.assert_no_pins(&[SO, USER, NEW_SO, NEW_USER, WRONG]);
}

#[test]
fn user_lock_then_so_unlocks_with_init_pin() {
    let env = Env::new("");
    env.create();
    for left in (1..=4).rev() {
        let e = env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", WRONG)]);
        assert!(
            e.contains(&format!("User PIN is wrong: {left} attempt")),
            "{e}"
        );
    }
    assert_eq!(env.show()["token"]["user_pin"]["state"], "final try");
    let e = env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", WRONG)]);
    assert!(
        e.contains("now locked") && e.contains("pin set-user"),
        "{e}"
    );
    // Locked: the right PIN does not help, and is not counted.
    let e = env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", USER)]);
    assert!(e.starts_with("key4c: the User PIN is locked"), "{e}");
    let page = env.show();
    assert_eq!(page["token"]["user_pin"]["state"], "locked");
    assert_eq!(page["token"]["user_pin"]["attempts_left"], 0);
    assert_eq!(page["token"]["so_pin"]["state"], "normal");

    let out = env.ok(
        &["pin", "unlock-user"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    assert!(out.contains("unlocked"), "{out}");
    assert_eq!(env.show()["token"]["user_pin"]["state"], "normal");
    env.ok(&["keys", "list"], &[("KEY4C_USER_PIN", NEW_USER)]);
    let e = env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", USER)]);
    assert!(e.contains("4 attempts left"), "{e}");
    let audit = env.audit();
    assert!(has_event(&audit, "pin.lock", "CKR_PIN_LOCKED"));
    assert!(events(&audit)
        .iter()
        .any(|(e, s, o)| e == "pin.init" && s == "User" && o == "ok"));
}

/// The whole SO story: lock, request, vendor approval, notice in the outbox, login works.
#[test]
fn so_lock_request_approve_notice_in_outbox_then_login() {
    let env = Env::new("");
    let uuid = env.create()["uuid"].as_str().unwrap().to_string();
    // Nothing to unlock yet.
    let e = env.fail(&["unlock", "request", "--email", HOLDER], &[]);
    assert!(e.contains("not locked"), "{e}");
    env.lock_so();
    // Locked: the right SO PIN is refused too.
    let e = env.fail(
        &["pin", "set-user"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    assert!(
        e.contains("SO PIN is locked") && e.contains("unlock request"),
        "{e}"
    );
    let status = env.json(&["unlock", "status", "--json"], &[]);
    assert_eq!(status["so_pin"]["state"], "locked");
    assert_eq!(status["request"], Value::Null);

    let e = env.fail(&["unlock", "request", "--email", "not an address"], &[]);
    assert!(e.contains("not an e-mail address"), "{e}");
    env.ok(&["unlock", "request", "--email", HOLDER], &[]);
    let status = env.json(&["unlock", "status", "--json"], &[]);
    assert_eq!(status["so_pin"]["state"], "unlock requested");
    assert_eq!(status["request"]["email"], HOLDER);
    let request_id = status["request"]["id"].as_str().unwrap().to_string();
    assert_eq!(env.show()["token"]["so_pin"]["state"], "unlock requested");

    // The vendor, with its own key pair (vendor.pub is what the configuration names).
    env.ok(
        &[
            "vendor",
            "keygen",
            "--out",
            env.path("vendor").to_str().unwrap(),
        ],
        &[],
    );
    let key = env.path("vendor/vendor.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&key).unwrap().trim().len(),
        64,
        "hex seed"
    );
    let out = env.ok(
        &["unlock", "approve", "--vendor-key", key.to_str().unwrap()],
        &[],
    );
    assert!(out.contains("unlocked") && out.contains("outbox"), "{out}");

    // The notice, as an RFC 5322 message in the Maildir.
    let (headers, body) = parse_mail(&maildir_message(&env.path("outbox")));
    assert_eq!(headers["to"], HOLDER);
    assert_eq!(headers["from"], "key4c-vendor@example.net");
    assert_eq!(headers["subject"], "Key4C SO PIN unlock completed");
    assert!(headers.contains_key("date") && headers.contains_key("message-id"));
    assert!(body.contains("unlocked") && body.contains(&uuid) && body.contains(&request_id));

    let page = env.show();
    assert_eq!(page["token"]["so_pin"]["state"], "normal");
    assert_eq!(page["token"]["so_pin"]["failures"], 0);
    assert_eq!(page["token"]["so_unlock_request"], Value::Null);
    // The SO PIN is unchanged and works again.
    env.ok(
        &["pin", "set-user"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    let e = env.fail(
        &["unlock", "approve", "--vendor-key", key.to_str().unwrap()],
        &[],
    );
    assert!(e.contains("no SO unlock request is pending"), "{e}");

    let audit = env.audit();
    for (event, outcome) in [
        ("pin.lock", "CKR_PIN_LOCKED"),
        ("so.unlock.request", "ok"),
        ("so.unlock.approve", "ok"),
        ("so.unlock.notice.outbox", "ok"),
    ] {
        assert!(has_event(&audit, event, outcome), "{event} {outcome}");
    }
    env.assert_no_pins(&[SO, USER, NEW_USER, WRONG]);
}

/// What the test's SMTP server captured.
struct Captured {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

/// A minimal SMTP server on 127.0.0.1 for one message: EHLO/HELO, MAIL FROM, RCPT TO, DATA,
/// RSET, NOOP, QUIT. Gives up after 60 s.
fn smtp_server() -> (String, mpsc::Receiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Some(c) = smtp_session(stream) {
                        let _ = tx.send(c);
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, rx)
}

fn smtp_session(stream: TcpStream) -> Option<Captured> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    let mut out = stream.try_clone().ok()?;
    let mut reader = BufReader::new(stream);
    let mut captured = Captured {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        data: String::new(),
    };
    let mut done = false;
    out.write_all(b"220 127.0.0.1 test SMTP\r\n").ok()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 127.0.0.1\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            captured.mail_from = line[10..].trim().to_string();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            captured.rcpt_to.push(line[8..].trim().to_string());
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 end with <CRLF>.<CRLF>\r\n").ok()?;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).ok()? == 0 {
                    return None;
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                captured.data.push_str(l);
            }
            done = true;
            b"250 OK queued\r\n"
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = out.write_all(b"221 bye\r\n");
            break;
        } else {
            b"502 not implemented\r\n"
        };
        out.write_all(reply).ok()?;
    }
    done.then_some(captured)
}

#[test]
fn so_unlock_notice_by_smtp_to_a_local_server() {
    let (addr, rx) = smtp_server();
    let env = Env::new(&format!("smtp_server = \"{addr}\""));
    let uuid = env.create()["uuid"].as_str().unwrap().to_string();
    env.lock_so();
    env.ok(&["unlock", "request", "--email", HOLDER], &[]);
    env.ok(
        &[
            "vendor",
            "keygen",
            "--out",
            env.path("vendor").to_str().unwrap(),
        ],
        &[],
    );
    let out = env.ok(
        &[
            "unlock",
            "approve",
            "--vendor-key",
            env.path("vendor/vendor.key").to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.contains("SMTP"), "{out}");
    let captured = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the SMTP server got the notice");
    assert_eq!(captured.mail_from, "<key4c-vendor@example.net>");
    assert_eq!(captured.rcpt_to, vec![format!("<{HOLDER}>")]);
    let (headers, body) = parse_mail(&captured.data);
    assert_eq!(headers["to"], HOLDER);
    assert_eq!(headers["subject"], "Key4C SO PIN unlock completed");
    assert!(body.contains(&uuid));
    // The outbox has it too.
    let (headers, _) = parse_mail(&maildir_message(&env.path("outbox")));
    assert_eq!(headers["to"], HOLDER);
    assert!(has_event(&env.audit(), "so.unlock.notice.smtp", "ok"));
    assert_eq!(env.show()["token"]["so_pin"]["state"], "normal");
}

#[test]
fn smtp_failure_is_reported_after_the_unlock() {
    // A port nobody listens on (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new(&format!("smtp_server = \"127.0.0.1:{port}\""));
    env.create();
    env.lock_so();
    env.ok(&["unlock", "request", "--email", HOLDER], &[]);
    env.ok(
        &[
            "vendor",
            "keygen",
            "--out",
            env.path("vendor").to_str().unwrap(),
        ],
        &[],
    );
    let e = env.fail(
        &[
            "unlock",
            "approve",
            "--vendor-key",
            env.path("vendor/vendor.key").to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("unlocked") && e.contains("SMTP"), "{e}");
    assert_eq!(env.show()["token"]["so_pin"]["state"], "normal");
    assert!(has_event(&env.audit(), "so.unlock.notice.smtp", "failed"));
}

/// The holder cannot approve their own request: a self-made key does not verify.
#[test]
fn holder_cannot_approve_with_a_self_made_key() {
    let env = Env::new("");
    env.create();
    env.lock_so();
    env.ok(&["unlock", "request", "--email", HOLDER], &[]);
    // The vendor's real key (its public half is in the configuration) ...
    env.ok(
        &[
            "vendor",
            "keygen",
            "--out",
            env.path("vendor").to_str().unwrap(),
        ],
        &[],
    );
    // ... and the holder's own.
    env.ok(
        &[
            "vendor",
            "keygen",
            "--out",
            env.path("holder").to_str().unwrap(),
        ],
        &[],
    );
    let forged = env.path("holder/vendor.key");
    let e = env.fail(
        &[
            "unlock",
            "approve",
            "--vendor-key",
            forged.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        e.contains("not the vendor's") && e.contains("audit log"),
        "{e}"
    );
    let e = env.fail(
        &[
            "unlock",
            "approve",
            "--vendor-key",
            env.path("so.pin").to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("cannot read the vendor key"), "{e}");
    assert_eq!(env.show()["token"]["so_pin"]["state"], "unlock requested");
    assert!(!env.path("outbox/new").exists(), "no notice was sent");
    let audit = env.audit();
    assert!(has_event(
        &audit,
        "so.unlock.approve",
        "CKR_SIGNATURE_INVALID"
    ));
    assert!(!has_event(&audit, "so.unlock.approve", "ok"));

    // The vendor rejects: still locked, the request is gone.
    env.ok(
        &[
            "unlock",
            "reject",
            "--vendor-key",
            env.path("vendor/vendor.key").to_str().unwrap(),
        ],
        &[],
    );
    let page = env.show();
    assert_eq!(page["token"]["so_pin"]["state"], "locked");
    assert_eq!(page["token"]["so_unlock_request"], Value::Null);
    assert!(has_event(&env.audit(), "so.unlock.reject", "ok"));
}

/// `openssl pkey -pubin` reads the PEM; returns its text dump.
fn openssl_text(pem: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl rejects {}: {}",
        pem.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn b64url(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_str().expect("string"))
        .expect("base64url")
}

/// The DER of a PEM file.
fn pem_der(pem: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(pem).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn keys_generate_list_export_delete() {
    let env = Env::new("");
    env.create();
    let pin = [("KEY4C_USER_PIN", USER)];
    let e = env.fail(&["keys", "list"], &[]);
    assert!(e.contains("User PIN"), "{e}");
    assert_eq!(
        env.json(&["keys", "list", "--json"], &pin),
        Value::Array(vec![])
    );

    let specs: &[(&str, &[&str], &str, &str)] = &[
        ("ES256", &[], "EC P-256", "key pair"),
        ("es384", &[], "EC P-384", "key pair"),
        ("ES512", &[], "EC P-521", "key pair"),
        ("RS256", &[], "RSA 2048", "key pair"),
        ("PS512", &["--bits", "3072"], "RSA 3072", "key pair"),
        ("EdDSA", &[], "Ed25519", "key pair"),
        ("HS256", &[], "HMAC 256-bit", "secret key"),
        ("HS512", &[], "HMAC 512-bit", "secret key"),
        ("AES-128", &[], "AES-128", "secret key"),
    ];
    let mut ids = BTreeMap::new();
    for (alg, extra, algorithm, kind) in specs {
        let label = format!("jwt-{}", alg.to_ascii_uppercase());
        let mut args = vec![
            "keys", "generate", "--json", "--alg", alg, "--label", &label,
        ];
        args.extend_from_slice(extra);
        let made = env.json(&args, &pin);
        assert_eq!(made["algorithm"], *algorithm);
        assert_eq!(made["kind"], *kind);
        let id = made["id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 40, "a 20-byte CKA_ID");
        ids.insert(label, id);
    }
    // Refusals, in words.
    let e = env.fail(
        &["keys", "generate", "--alg", "ES256", "--label", "jwt-ES256"],
        &pin,
    );
    assert!(e.contains("exists already"), "{e}");
    let e = env.fail(
        &[
            "keys", "generate", "--alg", "HS256", "--bits", "2048", "--label", "x",
        ],
        &pin,
    );
    assert!(e.contains("--bits applies to RS*/PS*"), "{e}");
    let e = env.fail(
        &[
            "keys", "generate", "--alg", "RS256", "--bits", "1024", "--label", "x",
        ],
        &pin,
    );
    assert!(e.contains("2048, 3072 or 4096"), "{e}");
    let with_id = env.json(
        &[
            "keys", "generate", "--json", "--alg", "ES256", "--label", "given-id", "--id", "C0FFEE",
        ],
        &pin,
    );
    assert_eq!(with_id["id"], "c0ffee");

    let list = env.json(&["keys", "list", "--json"], &pin);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), specs.len() + 1);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    for row in list {
        let label = row["label"].as_str().unwrap();
        if let Some(id) = ids.get(label) {
            assert_eq!(row["id"], id.as_str());
        }
        let created = row["created"].as_str().unwrap();
        assert!(created == today || created.len() == 10, "{created}");
    }
    let es256 = list.iter().find(|r| r["label"] == "jwt-ES256").unwrap();
    assert_eq!(es256["kind"], "key pair");
    assert_eq!(es256["jwt_algs"], serde_json::json!(["ES256"]));
    let human = env.ok(&["keys", "list"], &pin);
    assert!(
        human.contains("jwt-PS512") && human.contains("RSA 3072 (RS*/PS*)"),
        "{human}"
    );

    // PEM and JWK of every key pair.
    for (label, want_text, kty, crv) in [
        ("jwt-ES256", "prime256v1", "EC", Some("P-256")),
        ("jwt-ES384", "secp384r1", "EC", Some("P-384")),
        ("jwt-ES512", "secp521r1", "EC", Some("P-521")),
        ("jwt-RS256", "(2048 bit)", "RSA", None),
        ("jwt-PS512", "(3072 bit)", "RSA", None),
        ("jwt-EDDSA", "ED25519", "OKP", Some("Ed25519")),
    ] {
        let pem = env.path(&format!("{label}.pem"));
        env.ok(
            &[
                "keys",
                "export",
                "--label",
                label,
                "--out",
                pem.to_str().unwrap(),
            ],
            &pin,
        );
        assert!(openssl_text(&pem).contains(want_text), "{label}");
        let jwk = env.json(
            &["keys", "export", "--label", label, "--format", "jwk"],
            &pin,
        );
        assert_eq!(jwk["kty"], kty, "{label}");
        assert_eq!(jwk["kid"], ids[label].as_str());
        assert_eq!(jwk["use"], "sig");
        let spki = pem_der(&pem);
        match kty {
            "EC" => {
                assert_eq!(jwk["crv"], crv.unwrap());
                let (x, y) = (b64url(&jwk["x"]), b64url(&jwk["y"]));
                assert_eq!(x.len(), y.len());
                let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
                assert!(
                    spki.ends_with(&point),
                    "{label}: JWK x/y are the PEM's point"
                );
            }
            "OKP" => {
                assert_eq!(jwk["crv"], "Ed25519");
                assert_eq!(jwk["alg"], "EdDSA");
                let x = b64url(&jwk["x"]);
                assert_eq!(x.len(), 32);
                assert!(spki.ends_with(&x));
            }
            _ => {
                assert_eq!(jwk["e"], "AQAB");
                let n = b64url(&jwk["n"]);
                let bits = if label == "jwt-RS256" { 2048 } else { 3072 };
                assert_eq!(n.len() * 8, bits);
                assert!(n[0] & 0x80 != 0, "no leading zero in n");
                assert!(spki.windows(n.len()).any(|w| w == n.as_slice()));
            }
        }
        assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
    }
    // By CKA_ID too; a secret key has no public key.
    let by_id = env.ok(&["keys", "export", "--id", &ids["jwt-ES256"]], &pin);
    assert!(by_id.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{by_id}");
    let e = env.fail(&["keys", "export", "--label", "jwt-HS256"], &pin);
    assert!(e.contains("secret key"), "{e}");

    // Delete: confirmation needed off a terminal; both halves go.
    let e = env.fail(&["keys", "delete", "--label", "jwt-ES256"], &pin);
    assert!(e.contains("--yes"), "{e}");
    let out = env.ok(&["keys", "delete", "--label", "jwt-ES256", "--yes"], &pin);
    assert!(out.contains("key pair"), "{out}");
    env.ok(
        &["keys", "delete", "--id", &ids["jwt-HS256"], "--yes"],
        &pin,
    );
    let e = env.fail(&["keys", "delete", "--label", "jwt-ES256", "--yes"], &pin);
    assert!(e.contains("there is no key labelled"), "{e}");
    let list = env.json(&["keys", "list", "--json"], &pin);
    let labels: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert!(!labels.contains(&"jwt-ES256") && !labels.contains(&"jwt-HS256"));
    assert_eq!(labels.len(), specs.len() - 1);
    let audit = env.audit();
    let generated = events(&audit)
        .iter()
        .filter(|(e, _, _)| e == "key.generate")
        .count();
    assert_eq!(generated, 7 * 2 + 3, "pairs count twice");
    assert!(has_event(&audit, "key.delete", "ok"));
}

/// The token's retry limit is the SO's to change (`pin retry-limit`), audited; the service
/// page and the CLI's wrong-PIN messages show the token's limit, not the configuration's.
#[test]
fn the_so_sets_the_tokens_retry_limit() {
    let env = Env::new("pin_retry_limit = 5");
    env.create();
    assert_eq!(env.show()["token"]["pin_retry_limit"], 5);
    // A wrong SO PIN (or the User's) changes nothing and counts.
    let e = env.fail(&["pin", "retry-limit", "3"], &[("KEY4C_SO_PIN", WRONG)]);
    assert!(e.contains("the SO PIN is wrong: 4 attempts left"), "{e}");
    let e = env.fail(&["pin", "retry-limit", "3"], &[("KEY4C_SO_PIN", USER)]);
    assert!(e.contains("the SO PIN is wrong: 3 attempts left"), "{e}");
    // Outside 1..=15: refused before the store is opened.
    let out = env.run(&["pin", "retry-limit", "16"], &[("KEY4C_SO_PIN", SO)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("16"));
    assert_eq!(env.show()["token"]["so_pin"]["failures"], 2);
    let out = env.ok(&["pin", "retry-limit", "3"], &[("KEY4C_SO_PIN", SO)]);
    assert_eq!(out.trim(), "PIN retry limit changed from 5 to 3.");
    let page = env.show();
    assert_eq!(page["token"]["pin_retry_limit"], 3);
    assert_eq!(page["token"]["user_pin"]["attempts_left"], 3);
    let changes: Vec<_> = events(&env.audit())
        .into_iter()
        .filter(|(e, _, _)| e == "pin.retry_limit")
        .collect();
    assert_eq!(
        changes,
        [("pin.retry_limit".into(), "5 -> 3".into(), "ok".into())]
    );
    // The configuration still says 5: the token's 3 holds, and the page says so.
    let page = env.ok(&["service", "show"], &[]);
    assert!(
        page.contains("pin_retry_limit   5: ignored, the token's own limit (3) counts"),
        "{page}"
    );
    let user = [("KEY4C_USER_PIN", WRONG)];
    let e = env.fail(&["keys", "list"], &user);
    assert!(e.contains("the User PIN is wrong: 2 attempts left"), "{e}");
    let e = env.fail(&["keys", "list"], &user);
    assert!(
        e.contains("1 attempt left: the next wrong one locks it"),
        "{e}"
    );
    let e = env.fail(&["keys", "list"], &user);
    assert!(
        e.contains("after 3 wrong attempts in a row it is now locked"),
        "{e}"
    );
    assert_eq!(env.show()["token"]["user_pin"]["state"], "locked");
}

#[test]
fn audit_shows_the_events_and_never_a_pin() {
    let env = Env::new("");
    env.create();
    env.fail(&["keys", "list"], &[("KEY4C_USER_PIN", WRONG)]);
    env.ok(
        &["keys", "generate", "--alg", "ES256", "--label", "a"],
        &[("KEY4C_USER_PIN", USER)],
    );
    env.ok(
        &["keys", "delete", "--label", "a", "--yes"],
        &[("KEY4C_USER_PIN", USER)],
    );
    env.ok(
        &["pin", "change-so"],
        &[("KEY4C_SO_PIN", SO), ("KEY4C_NEW_SO_PIN", NEW_SO)],
    );
    env.ok(
        &["pin", "set-user"],
        &[("KEY4C_SO_PIN", NEW_SO), ("KEY4C_USER_PIN", NEW_USER)],
    );
    let audit = env.audit();
    let names: Vec<String> = events(&audit).into_iter().map(|(e, _, _)| e).collect();
    for want in [
        "token.init",
        "pin.init",
        "service.api_key",
        "login",
        "key.generate",
        "key.delete",
        "pin.change",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(has_event(&audit, "login", "CKR_PIN_INCORRECT"));
    for r in &audit {
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }
    let text = env.ok(&["audit", "--last", "2"], &[]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("pin.change") && text.contains("pin.init"),
        "{text}"
    );
    env.assert_no_pins(&[SO, USER, NEW_SO, NEW_USER, WRONG]);
}

#[test]
fn errors_are_one_sentence() {
    let env = Env::new("");
    // No store, a bad configuration, a missing file: one sentence each.
    let e = env.fail(&["audit"], &[]);
    assert!(e.contains("no store"), "{e}");
    let bad = Env::new("");
    std::fs::write(bad.path("key4c.toml"), "pin_retry_limt = 3\n").unwrap();
    let e = bad.fail(&["service", "show"], &[]);
    assert!(e.contains("unknown field"), "{e}");
    env.create();
    let e = env.fail(
        &["pin", "set-user", "--so-pin-file", "/nonexistent/so.pin"],
        &[("KEY4C_USER_PIN", USER)],
    );
    assert!(e.contains("cannot read the SO PIN file"), "{e}");
    let e = env.fail(&["unlock", "status", "--store", "/nonexistent/store"], &[]);
    assert!(e.contains("no store at /nonexistent/store"), "{e}");
    let e = env.fail(&["vendor", "keygen", "--out", "/proc/key4c-no"], &[]);
    assert!(e.contains("cannot create"), "{e}");
    let e = env.fail(
        &[
            "unlock",
            "approve",
            "--vendor-key",
            env.path("key4c.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("is not a vendor key"), "{e}");
}

#[test]
fn demo_still_runs() {
    let env = Env::new("");
    let out = env.ok(&["demo"], &[]);
    assert!(out.contains("C_InitPIN: CKR_OK"), "{out}");
    assert!(out.contains("CKR_PIN_LOCKED"), "{out}");
    // Never on a store with a token: its wrong PINs would count.
    env.create();
    let e = env.fail(
        &["demo", "--store", env.path("store").to_str().unwrap()],
        &[],
    );
    assert!(e.contains("holds a token already"), "{e}");
}
