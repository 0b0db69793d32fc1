//! Real PKCS#11 consumers drive the built module, each checked by an independent party:
//! - OpenSSL 3 with the PKCS#11 engine (libp11) signs with token keys; plain OpenSSL verifies;
//! - GnuTLS's p11tool and p11-kit list the token and its objects, p11-kit through a module
//!   config file;
//! - `p11-kit server` shares the token with clients loading p11-kit-client.so;
//! - the own test suites of python-pkcs11 (scripts/interop-python-pkcs11) and of the Rust
//!   `cryptoki` crate (scripts/interop-cryptoki).
//!
//! The tools come from `scripts/install-deps`. A missing tool fails the test in CI (env `CI`
//! set) and prints `SKIPPED` elsewhere.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SO: &str = "So-Pin.2024x";
const USER: &str = "Us3r#Pin.9k";

/// The path of an executable on PATH.
fn which(tool: &str) -> Option<PathBuf> {
    require::which(tool)
}

/// True when every requirement is there; a missing one fails the test in CI and is reported
/// as SKIPPED elsewhere (`require::check`, the workspace's one rule).
fn present(_test: &str, missing: &[String]) -> bool {
    let needs: Vec<require::Need> = missing
        .iter()
        .map(|m| require::custom(m, false, "scripts/install-deps installs it"))
        .collect();
    require::check(&needs)
}

fn tools(_test: &str, names: &[&str]) -> bool {
    let needs: Vec<require::Need> = names
        .iter()
        .map(|t| require::tool(t, "scripts/install-deps installs it"))
        .collect();
    require::check(&needs)
}

/// Runs a command; returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let (success, text) = run(cmd);
    assert!(success, "{what} failed:\n{text}");
    text
}

fn pkcs11_tool(args: &[&str]) -> String {
    ok(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args(args))
}

fn openssl(args: &[&str]) -> (bool, String) {
    run(Command::new("openssl").args(args))
}

/// Initialises the token with `label` and the User PIN (the store of the running isolated
/// test).
fn provision(label: &str) {
    pkcs11_tool(&["--init-token", "--label", label, "--so-pin", SO]);
    pkcs11_tool(&["--init-pin", "--so-pin", SO, "--pin", USER]);
}

/// Generates a key pair on the token; returns nothing (pkcs11-tool prints the objects).
fn keypair(key_type: &str, id: &str, label: &str) {
    pkcs11_tool(&[
        "--login",
        "--pin",
        USER,
        "--keypairgen",
        "--key-type",
        key_type,
        "--id",
        id,
        "--label",
        label,
    ]);
}

/// The public key with this id, as a PEM file in `dir`; returns its path.
fn public_pem(dir: &Path, id: &str) -> String {
    let der = dir.join(format!("{id}.pub.der")).display().to_string();
    let pem = dir.join(format!("{id}.pub.pem")).display().to_string();
    pkcs11_tool(&["--read-object", "--type", "pubkey", "--id", id, "-o", &der]);
    let (converted, text) = openssl(&[
        "pkey", "-pubin", "-inform", "DER", "-in", &der, "-out", &pem,
    ]);
    assert!(converted, "{text}");
    pem
}

/// Flips the lowest bit of the last byte of a file.
fn flip_last_bit(path: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// The libp11 engine's shared object (Debian `libengine-pkcs11-openssl`).
fn pkcs11_engine() -> Option<PathBuf> {
    let (_, dir) = openssl(&["version", "-e"]);
    let dir = dir
        .trim()
        .strip_prefix("ENGINESDIR: ")?
        .trim_matches('"')
        .to_string();
    let path = Path::new(&dir).join("pkcs11.so");
    path.exists().then_some(path)
}

// ---- 1. OpenSSL 3 with the PKCS#11 engine.

#[test]
fn openssl_engine_signs_with_token_keys() {
    let name = "openssl_engine_signs_with_token_keys";
    if std::env::var_os("KEY4C_TEST_CHILD").is_none() {
        let mut missing = Vec::new();
        if which("openssl").is_some() && pkcs11_engine().is_none() {
            missing.push("OpenSSL's pkcs11 engine (libengine-pkcs11-openssl)".to_string());
        }
        if !tools(name, &["openssl", "pkcs11-tool"]) || !present(name, &missing) {
            return;
        }
    }
    isolated(name, "", || {
        let dir = tempfile::tempdir().unwrap();
        let path = |f: &str| dir.path().join(f).display().to_string();
        provision("engine ci");
        keypair("EC:prime256v1", "01", "ec-p256");
        keypair("rsa:2048", "02", "rsa-2048");
        let data = path("data");
        std::fs::write(
            &data,
            b"signed by the token through OpenSSL's pkcs11 engine",
        )
        .unwrap();
        // '#' in the PIN is percent-encoded in the URI (RFC 7512).
        let key = |object: &str, pin: &str| {
            format!("pkcs11:token=engine%20ci;object={object};type=private?pin-value={pin}")
        };
        let pin = USER.replace('#', "%23");
        let engine = |args: &[&str]| {
            run(Command::new("openssl")
                .args(args)
                .env("PKCS11_MODULE_PATH", module_path()))
        };

        // (label, key id, extra `openssl dgst` options)
        let pss: &[&str] = &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ];
        let cases: &[(&str, &str, &[&str])] = &[
            ("ec-p256", "01", &[]),
            ("rsa-2048", "02", &[]),
            ("rsa-2048", "02", pss),
        ];
        for (i, (object, id, options)) in cases.iter().enumerate() {
            let pem = public_pem(dir.path(), id);
            let sig = path(&format!("{i}.sig"));
            let uri = key(object, &pin);
            let mut args = vec![
                "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri,
            ];
            args.extend(options.iter());
            args.extend(["-out", &sig, &data]);
            let (signed, text) = engine(&args);
            assert!(signed, "openssl {args:?}:\n{text}");
            let mut verify = vec!["dgst", "-sha256"];
            verify.extend(options.iter());
            verify.extend(["-verify", &pem, "-signature", &sig, &data]);
            let (valid, text) = openssl(&verify);
            assert!(
                valid && text.contains("Verified OK"),
                "{object} {options:?}: {text}"
            );
            flip_last_bit(&sig);
            let (valid, text) = openssl(&verify);
            assert!(
                !valid && text.contains("Verification failure"),
                "a flipped bit passed ({object} {options:?}): {text}"
            );
        }

        // pkeyutl over a digest (CKM_ECDSA on the hash), verified by pkeyutl.
        let digest = path("data.sha256");
        let (hashed, text) = openssl(&["dgst", "-sha256", "-binary", "-out", &digest, &data]);
        assert!(hashed, "{text}");
        let sig = path("pkeyutl.sig");
        let uri = key("ec-p256", &pin);
        let (signed, text) = engine(&[
            "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-inkey", &uri, "-sign", "-in",
            &digest, "-out", &sig,
        ]);
        assert!(signed, "{text}");
        let pem = path("01.pub.pem");
        let verify = [
            "pkeyutl", "-verify", "-pubin", "-inkey", &pem, "-in", &digest, "-sigfile", &sig,
        ];
        let (valid, text) = openssl(&verify);
        assert!(
            valid && text.contains("Signature Verified Successfully"),
            "{text}"
        );
        flip_last_bit(&sig);
        let (valid, text) = openssl(&verify);
        assert!(
            !valid && text.contains("Signature Verification Failure"),
            "{text}"
        );

        // A wrong PIN in the URI: no signature, and the token counts the failure.
        let bad = path("bad.sig");
        let wrong = key("ec-p256", "Wr0ng-Pin.x");
        let (signed, text) = engine(&[
            "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", &wrong, "-out",
            &bad, &data,
        ]);
        assert!(!signed, "signed with a wrong PIN: {text}");
        assert!(std::fs::metadata(&bad).map(|m| m.len()).unwrap_or(0) == 0);
        let slots = pkcs11_tool(&["-L"]);
        assert!(slots.contains("user PIN count low"), "{slots}");
    });
}

// ---- 2. GnuTLS p11tool and p11-kit.

/// Runs `cmd` as `nobody` when this process is root: p11-kit skips the user's module configs
/// in a process running as root.
fn as_unprivileged(cmd: &str, args: &[&str], home: &Path) -> (bool, String) {
    let mut c = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            cmd,
        ]);
        c
    } else {
        Command::new(cmd)
    };
    c.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("P11_KIT_SERVER_ADDRESS");
    run(&mut c)
}

/// Gives a directory tree to `nobody` (when root), for [`as_unprivileged`].
fn give_to_nobody(dir: &Path) {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let (uid, gid) = (65534, 65534);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
        if d.is_dir() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                stack.push(entry.path());
            }
        }
    }
}

#[test]
fn gnutls_p11tool_and_p11kit_list_the_token() {
    let name = "gnutls_p11tool_and_p11kit_list_the_token";
    if std::env::var_os("KEY4C_TEST_CHILD").is_none() {
        let mut need = vec!["p11tool", "p11-kit", "pkcs11-tool", "openssl"];
        if unsafe { libc::geteuid() } == 0 {
            need.push("setpriv");
        }
        if !tools(name, &need) {
            return;
        }
    }
    isolated(name, "", || {
        let work = tempfile::tempdir().unwrap();
        let module = module_path();
        provision("gnutls ci");
        keypair("EC:prime256v1", "0a", "ec-key");
        let cert = work.path().join("cert.der").display().to_string();
        let key = work.path().join("cert.key").display().to_string();
        let (made, text) = openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=key4c interop",
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            &cert,
        ]);
        assert!(made, "{text}");
        pkcs11_tool(&[
            "--login",
            "--pin",
            USER,
            "--write-object",
            &cert,
            "--type",
            "cert",
            "--id",
            "0b",
            "--label",
            "a-cert",
        ]);

        let p11tool = |args: &[&str], pin: Option<&str>| {
            let mut c = Command::new("p11tool");
            c.arg("--provider").arg(&module).args(args);
            if let Some(pin) = pin {
                c.env("GNUTLS_PIN", pin);
            }
            ok(&mut c)
        };
        let tokens = p11tool(&["--list-tokens"], None);
        for line in [
            "\tURL: pkcs11:model=Key4C%20V3;manufacturer=Key4C%20Emulator;serial=",
            ";token=gnutls%20ci\n",
            "\tLabel: gnutls ci\n",
            "\tFlags: RNG, Requires login\n",
            "\tManufacturer: Key4C Emulator\n",
            "\tModel: Key4C V3\n",
        ] {
            assert!(tokens.contains(line), "no {line:?} in:\n{tokens}");
        }
        assert_eq!(tokens.matches("Token ").count(), 1, "{tokens}");

        // Without login: the public objects only.
        let public = p11tool(&["--list-all", "pkcs11:token=gnutls%20ci"], None);
        assert_eq!(
            public.lines().filter(|l| l.starts_with("Object ")).count(),
            2,
            "{public}"
        );
        assert!(
            public.contains("\tType: Public key (EC/ECDSA-SECP256R1)\n\tLabel: ec-key\n"),
            "{public}"
        );
        assert!(
            public.contains("\tType: X.509 Certificate (EC/ECDSA-SECP256R1)\n"),
            "{public}"
        );
        assert!(public.contains("\tLabel: a-cert\n"), "{public}");
        assert!(public.contains("\tExpires: "), "{public}");
        assert!(!public.contains("Private key"), "{public}");
        // Logged in: the private key too, sensitive and never extractable.
        let all = p11tool(
            &["--login", "--list-all", "pkcs11:token=gnutls%20ci"],
            Some(USER),
        );
        assert!(
            all.contains("\tType: Private key (EC/ECDSA-SECP256R1)\n\tLabel: ec-key\n"),
            "{all}"
        );
        assert!(
            all.contains("CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;"),
            "{all}"
        );
        assert!(
            all.contains(";token=gnutls%20ci;id=%0A;object=ec-key;type=private\n"),
            "{all}"
        );

        // p11-kit: a module config file in the user's config dir registers the module. When
        // root, the listing runs as `nobody` (p11-kit ignores user configs of root), on a copy
        // of the module in a directory `nobody` can read wherever the checkout is.
        let module = work.path().join("libkey4c_pkcs11.so");
        std::fs::copy(module_path(), &module).unwrap();
        let home = work.path().join("home");
        let modules = home.join(".config/pkcs11/modules");
        std::fs::create_dir_all(&modules).unwrap();
        let conf = Path::new(&std::env::var("KEY4C_CONF").unwrap())
            .parent()
            .unwrap()
            .to_path_buf();
        give_to_nobody(&conf);
        give_to_nobody(work.path());
        let (listed, before) = as_unprivileged("p11-kit", &["list-modules"], &home);
        assert!(listed, "{before}");
        assert!(
            !before.contains("Key4C"),
            "listed before registration:\n{before}"
        );
        std::fs::write(
            modules.join("key4c.module"),
            format!("module: {}\n", module.display()),
        )
        .unwrap();
        give_to_nobody(work.path());
        let (listed, after) = as_unprivileged("p11-kit", &["list-modules"], &home);
        assert!(listed, "{after}");
        let entry = after
            .lines()
            .skip_while(|l| !l.starts_with("key4c: "))
            .take_while(|l| l.starts_with("key4c: ") || l.starts_with(' '))
            .collect::<Vec<_>>()
            .join("\n");
        for line in [
            format!("key4c: {}", module.display()),
            "    library-manufacturer: Key4C Emulator".into(),
            "    token: gnutls ci".into(),
            "        manufacturer: Key4C Emulator".into(),
            "        model: Key4C V3".into(),
            "               user-pin-initialized".into(),
            "               token-initialized".into(),
            "               login-required".into(),
        ] {
            assert!(
                entry.contains(&line),
                "no {line:?} in the key4c entry:\n{after}"
            );
        }
        // p11tool without --provider goes through p11-kit's registered modules.
        let (listed, tokens) = as_unprivileged("p11tool", &["--list-tokens"], &home);
        assert!(listed, "{tokens}");
        assert!(
            tokens.contains("\tLabel: gnutls ci\n\tType: Generic token\n"),
            "{tokens}"
        );
    });
}

// ---- 3. p11-kit server: one token, client processes through p11-kit-client.so.

/// p11-kit's client module (Debian `p11-kit-modules`).
fn p11kit_client() -> Option<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/lib/pkcs11"),
        PathBuf::from("/usr/lib64/pkcs11"),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("pkcs11")));
    }
    dirs.into_iter()
        .map(|d| d.join("p11-kit-client.so"))
        .find(|p| p.exists())
}

/// True once a Unix socket at `path` listens (Linux: `__SO_ACCEPTCON` in /proc/net/unix).
fn listening(path: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let path = path.display().to_string();
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() >= 8
            && fields[7] == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & 0x10000 != 0)
    })
}

/// A running `p11-kit server`, stopped (SIGTERM, then SIGKILL) when dropped, also when the
/// test fails.
struct Server {
    child: Child,
    address: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(socket: &Path, token: &str) -> Server {
        let mut child = Command::new("p11-kit")
            .args(["server", "-f", "--name"])
            .arg(socket)
            .arg("--provider")
            .arg(module_path())
            .arg(format!("pkcs11:token={token}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start p11-kit server");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let mut server = Server {
            child,
            address: String::new(),
            stderr: erx,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.address.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // P11_KIT_SERVER_ADDRESS=unix:path=/...; export P11_KIT_SERVER_ADDRESS;
                    if let Some(rest) = line.strip_prefix("P11_KIT_SERVER_ADDRESS=") {
                        server.address = rest.split(';').next().unwrap().to_string();
                    }
                }
                Err(_) => panic!("p11-kit server printed no address: {}", server.errors()),
            }
        }
        assert_eq!(
            server.address,
            format!("unix:path={}", socket.display()),
            "the address p11-kit server printed"
        );
        // It may print the address between bind() and listen(): wait until the socket
        // listens (a probe connection would start a p11-kit-remote that opens the store).
        while !listening(socket) {
            assert!(
                Instant::now() < deadline,
                "p11-kit server does not listen on {}: {}",
                socket.display(),
                server.errors()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// What the server (and its p11-kit-remote children, our module) wrote to stderr so far.
    fn errors(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SIGNATURES: usize = 200;

fn message(client: &str, i: usize) -> Vec<u8> {
    format!("{client}: message {i}").into_bytes()
}

/// A client process: loads p11-kit-client.so (P11_KIT_SERVER_ADDRESS is set), logs in, and
/// signs SIGNATURES messages (ECDSA P-256 with SHA-256) with the token's key "shared-ec"; writes the signatures (64
/// bytes each, r || s) to KEY4C_TEST_OUT.
fn p11kit_client_signs(client: &str) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    use sha2::Digest;

    let p11 = Pkcs11::new(p11kit_client().expect("p11-kit-client.so")).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slots = p11.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 1, "{client}: slots through p11-kit-client");
    let info = p11.get_token_info(slots[0]).unwrap();
    assert_eq!(info.label(), "shared");
    assert_eq!(info.model(), "Key4C V3");
    let session = p11.open_ro_session(slots[0]).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER.into())))
        .unwrap();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"shared-ec".to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let mut out = Vec::with_capacity(SIGNATURES * 64);
    for i in 0..SIGNATURES {
        // CKM_ECDSA over the SHA-256 digest: p11-kit 0.24's RPC carries no CKM_ECDSA_SHA256
        // (p11-kit-client hides the mechanisms it cannot marshal).
        let digest = sha2::Sha256::digest(message(client, i));
        let sig = session.sign(&Mechanism::Ecdsa, keys[0], &digest).unwrap();
        assert_eq!(sig.len(), 64);
        out.extend_from_slice(&sig);
    }
    session.logout().unwrap();
    drop(session);
    p11.finalize().unwrap();
    std::fs::write(std::env::var("KEY4C_TEST_OUT").unwrap(), out).unwrap();
}

/// Verifies a client's signatures with aws-lc-rs against the public key pkcs11-tool exported
/// (a DER SubjectPublicKeyInfo of P-256), and that a flipped bit is rejected.
fn verify_client(client: &str, spki: &[u8], sigs: &[u8]) {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    assert_eq!(sigs.len(), SIGNATURES * 64, "{client}: signature bytes");
    let point = &spki[spki.len() - 65..];
    assert_eq!(point[0], 4, "an uncompressed P-256 point ends the SPKI");
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
    for (i, sig) in sigs.chunks(64).enumerate() {
        key.verify(&message(client, i), sig)
            .unwrap_or_else(|_| panic!("{client}: signature {i} does not verify"));
    }
    let mut bad = sigs[..64].to_vec();
    bad[63] ^= 1;
    assert!(key.verify(&message(client, 0), &bad).is_err());
}

/// Runs this test binary again for the test `name`, ignored tests included (the common
/// helpers leave them out), with `envs` set and `remove` unset; kills it after `limit`.
/// Returns its output once it passed that one test, else the reason.
fn rerun(
    name: &str,
    envs: &[(&str, String)],
    remove: &[&str],
    limit: Duration,
) -> Result<std::process::Output, String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("re-run the test binary");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = std::process::Output {
        status: status.unwrap_or_default(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match status {
        None => Err(format!(
            "still running after {limit:?} (killed): a hang\n{text}"
        )),
        Some(s) if s.success() => {
            assert_ran_one(name, &output);
            Ok(output)
        }
        Some(s) => Err(format!("{s}\n{text}")),
    }
}

const CHILD_ENV: &str = "KEY4C_TEST_CHILD";
const STEP_ENV: &str = "KEY4C_TEST_STEP";

/// [`isolated`] for a test that may be `#[ignore]`d: `body` runs in a child process with a
/// fresh store and a low KDF cost.
fn isolated_including_ignored(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("key4c.toml");
    let store = dir.path().join("store");
    std::fs::write(
        &conf,
        format!(
            "store = {:?}\nkdf_iterations = 1000\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    let envs = [
        (CHILD_ENV, name.to_string()),
        ("KEY4C_CONF", conf.display().to_string()),
    ];
    if let Err(why) = rerun(
        name,
        &envs,
        &["KEY4C_STORE", STEP_ENV],
        Duration::from_secs(300),
    ) {
        panic!("child test {name} failed: {why}");
    }
}

fn p11kit_server_scenario(name: &'static str, clients: &[&'static str], concurrent: bool) {
    if let Some(client) = step() {
        p11kit_client_signs(&client);
        return;
    }
    if std::env::var_os(CHILD_ENV).is_none() {
        let missing: Vec<String> = p11kit_client()
            .is_none()
            .then(|| "p11-kit-client.so (p11-kit-modules)".to_string())
            .into_iter()
            .collect();
        if !tools(name, &["p11-kit", "pkcs11-tool"]) || !present(name, &missing) {
            return;
        }
    }
    isolated_including_ignored(name, || {
        let work = tempfile::tempdir().unwrap();
        provision("shared");
        keypair("EC:prime256v1", "05", "shared-ec");
        let der = work.path().join("pub.der").display().to_string();
        pkcs11_tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "05",
            "-o",
            &der,
        ]);
        let spki = std::fs::read(&der).unwrap();

        let server = Server::start(&work.path().join("p11kit.sock"), "shared");
        let run_client = |client: &'static str| {
            let out = work.path().join(format!("{client}.sigs"));
            let envs = [
                (STEP_ENV, client.to_string()),
                ("P11_KIT_SERVER_ADDRESS", server.address.clone()),
                ("KEY4C_TEST_OUT", out.display().to_string()),
            ];
            (
                client,
                out,
                rerun(name, &envs, &[], Duration::from_secs(120)),
            )
        };
        let results: Vec<_> = if concurrent {
            std::thread::scope(|s| {
                let handles: Vec<_> = clients
                    .iter()
                    .map(|c| s.spawn(move || run_client(c)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            })
        } else {
            clients.iter().map(|c| run_client(c)).collect()
        };
        for (client, out, result) in results {
            if let Err(why) = result {
                panic!(
                    "client {client} failed: {why}\nserver stderr:\n{}",
                    server.errors()
                );
            }
            verify_client(client, &spki, &std::fs::read(out).unwrap());
        }
        drop(server);
    });
}

/// Two clients, one after the other, through one server: each signs 200 times; every
/// signature verifies.
#[test]
fn p11kit_server_serves_clients_one_after_another() {
    p11kit_server_scenario(
        "p11kit_server_serves_clients_one_after_another",
        &["client-a", "client-b"],
        false,
    );
}

/// Two clients at the same time through one server, 200 signatures each.
#[test]
fn p11kit_server_two_concurrent_clients() {
    p11kit_server_scenario(
        "p11kit_server_two_concurrent_clients",
        &["client-a", "client-b"],
        true,
    );
}

// ---- 4 and 5: the own test suites of python-pkcs11 and of the `cryptoki` crate.

/// Runs a scripts/interop-* suite against the module; returns its closing counts
/// (passed, failed, skipped) after checking it passed.
fn suite(script: &str, closing: &str) -> (usize, usize, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let start = Instant::now();
    let out = Command::new(root.join("scripts").join(script))
        .arg(module_path())
        .env_remove("KEY4C_CONF")
        .env_remove("KEY4C_STORE")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(closing))
        .unwrap_or_else(|| panic!("no {closing:?} line:\n{stdout}\n{stderr}"));
    let numbers: Vec<usize> = line[closing.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // Shown with the test's result: the suite's own summary and every skip with its reason.
    let mut err = std::io::stderr();
    for l in stdout.lines().filter(|l| {
        l.starts_with("SKIPPED")
            || l.starts_with("EXPECTED FAILURE")
            || l.starts_with("IGNORED")
            || l.starts_with(closing)
    }) {
        let _ = writeln!(err, "{script}: {l}");
    }
    let _ = writeln!(err, "{script}: took {:.0?}", start.elapsed());
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn python_pkcs11_own_test_suite() {
    let name = "python_pkcs11_own_test_suite";
    let venv = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut missing: Vec<String> = Vec::new();
    if !venv {
        missing.push("python3 with venv (python3-venv)".into());
    }
    if !Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        missing.push("SoftHSM2 (softhsm2)".into());
    }
    if !tools(name, &["python3", "pkcs11-tool", "openssl"]) || !present(name, &missing) {
        return;
    }
    let (passed, failed, _skipped) = suite("interop-python-pkcs11", "python-pkcs11 suite: ");
    assert_eq!(failed, 0);
    assert!(
        passed >= 95,
        "python-pkcs11: only {passed} tests passed (95 expected)"
    );
}

#[test]
fn cryptoki_crate_own_test_suite() {
    let name = "cryptoki_crate_own_test_suite";
    if !tools(name, &["cargo", "python3"]) {
        return;
    }
    let (passed, failed, _skipped) = suite("interop-cryptoki", "cryptoki suite: ");
    assert_eq!(failed, 0);
    assert!(
        passed >= 52,
        "cryptoki: only {passed} tests passed (52 expected)"
    );
}
