//! Crash safety: a worker process is killed with SIGKILL at random points while it generates
//! token key pairs, creates token objects, changes the SO PIN, or fails logins. The worker
//! acknowledges every call the module completed by appending a line to a file and syncing it
//! before it goes on. After each kill the store is opened again and checked:
//! - it opens (C_Initialize = CKR_OK);
//! - every acknowledged object is there, once, intact (values equal, key pairs still sign and
//!   verify together); an unacknowledged one is either absent or intact too;
//! - no half-object: no public key without its private half, nor the other way round;
//! - an acknowledged PIN change holds (the old PIN or, if the change was durable but not yet
//!   acknowledged, the new one opens — exactly one of them);
//! - the PIN counters on disk are never lower than the failures acknowledged, and a
//!   acknowledged lock holds.
//!
//! Kill points are random (seed printed; KEY4C_TEST_SEED replays), some during start-up,
//! most in the middle of the work. Counts are printed as `REPORT` lines.
//!
//! C_GenerateKeyPair writes both halves in one atomic sled batch, so a half pair after a kill
//! fails the test like every other finding.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// SO PINs the PIN-change worker cycles through (all valid under the policy).
const SO_PINS: [&[u8]; 6] = [
    SO_PIN,
    b"Key4C-Pin.9x",
    b"Us3r#Pin.9k",
    b"Ab1!cD2@e",
    b"Hello World 7!",
    b"(Tr0ub4dor);",
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    KeyGen,
    Create,
    SetPin,
    BadLogin,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KeyGen => "keygen",
            Kind::Create => "create",
            Kind::SetPin => "setpin",
            Kind::BadLogin => "badlogin",
        }
    }

    fn from_env() -> Kind {
        match std::env::var("KEY4C_TEST_KIND").as_deref() {
            Ok("keygen") => Kind::KeyGen,
            Ok("create") => Kind::Create,
            Ok("setpin") => Kind::SetPin,
            _ => Kind::BadLogin,
        }
    }
}

// ---------------------------------------------------------------- the worker (child) side

/// Appends one acknowledgement and makes it durable before the worker goes on.
struct Ack(std::fs::File);

impl Ack {
    fn open() -> Ack {
        let path = std::env::var("KEY4C_TEST_ACK").expect("KEY4C_TEST_ACK");
        Ack(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("ack file"))
    }

    fn say(&mut self, line: &str) {
        writeln!(self.0, "{line}").expect("ack");
        self.0.sync_data().expect("sync ack");
    }
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The value an object of this label has: anything found under the label must equal it.
fn value_of(label: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(48);
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes().cycle().take(48) {
        x = (x ^ b as u64).wrapping_mul(0x100_0000_01b3);
        v.push((x >> 24) as u8);
    }
    v
}

fn worker() {
    let kind = Kind::from_env();
    let round = env_u64("KEY4C_TEST_ROUND");
    let mut ack = Ack::open();
    let lib = Lib::load();
    lib.init();
    match kind {
        Kind::KeyGen => {
            let h = lib.user_session();
            for i in 0.. {
                let alg = match i % 10 {
                    9 => "rsa",
                    3 | 6 => "ed",
                    _ => "ec",
                };
                let label = format!("r{round}-k{i}-{alg}");
                let (p, _) = generate_pair(&lib, h, alg, &label).expect("C_GenerateKeyPair");
                let public = public_value(&lib, h, p, alg);
                ack.say(&format!("pair {label} {}", hex(&public)));
            }
        }
        Kind::Create => {
            let h = lib.user_session();
            for i in 0.. {
                let secret = i % 2 == 1;
                let label = format!("r{round}-o{i}-{}", if secret { "aes" } else { "data" });
                let value = value_of(&label);
                let rv = if secret {
                    lib.create(
                        h,
                        &[
                            (CKA_CLASS, A::U(CKO_SECRET_KEY)),
                            (CKA_KEY_TYPE, A::U(CKK_AES)),
                            (CKA_TOKEN, A::B(true)),
                            (CKA_LABEL, A::S(label.as_bytes())),
                            (CKA_VALUE, A::S(&value[..32])),
                            (CKA_SENSITIVE, A::B(false)),
                            (CKA_EXTRACTABLE, A::B(true)),
                        ],
                    )
                } else {
                    lib.create(
                        h,
                        &[
                            (CKA_CLASS, A::U(CKO_DATA)),
                            (CKA_TOKEN, A::B(true)),
                            (CKA_PRIVATE, A::B(true)),
                            (CKA_LABEL, A::S(label.as_bytes())),
                            (CKA_VALUE, A::S(&value)),
                        ],
                    )
                };
                rv.unwrap_or_else(|rv| panic!("C_CreateObject: {}", ckr_name(rv)));
                ack.say(&format!("obj {label}"));
            }
        }
        Kind::SetPin => {
            let mut idx = env_u64("KEY4C_TEST_PIN") as usize;
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_SO, SO_PINS[idx]), CKR_OK);
            loop {
                let next = (idx + 1) % SO_PINS.len();
                assert_rv!(lib.set_pin(h, SO_PINS[idx], SO_PINS[next]), CKR_OK);
                idx = next;
                ack.say(&format!("pin {idx}"));
            }
        }
        Kind::BadLogin => {
            let h = lib.open_rw();
            let (mut user, mut so) = (0, 0);
            for i in 0.. {
                // User failures until the lock, SO failures up to one short of it.
                let as_so = i % 2 == 1 && so < 4;
                if !as_so && user >= 5 {
                    if so >= 4 {
                        break;
                    }
                    continue;
                }
                let role = if as_so { CKU_SO } else { CKU_USER };
                let rv = lib.login(h, role, WRONG_PIN);
                let who = if as_so { "so" } else { "user" };
                match rv {
                    CKR_PIN_INCORRECT => ack.say(&format!("fail {who}")),
                    CKR_PIN_LOCKED => ack.say(&format!("locked {who}")),
                    rv => panic!("C_Login with a wrong PIN: {}", ckr_name(rv)),
                }
                if as_so {
                    so += 1;
                } else {
                    user += 1;
                }
            }
            // All done: wait to be killed like the others.
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn generate_pair(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    alg: &str,
    label: &str,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
    let (mech, mut public) = match alg {
        "rsa" => (
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            Tpl::new(&[
                (CKA_TOKEN, A::B(true)),
                (CKA_LABEL, A::S(label.as_bytes())),
                (CKA_ID, A::S(label.as_bytes())),
                (CKA_MODULUS_BITS, A::U(2048)),
            ]),
        ),
        "ed" => (
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            Tpl::new(&[
                (CKA_TOKEN, A::B(true)),
                (CKA_LABEL, A::S(label.as_bytes())),
                (CKA_ID, A::S(label.as_bytes())),
                (CKA_EC_PARAMS, A::S(ED25519)),
            ]),
        ),
        _ => (
            CKM_EC_KEY_PAIR_GEN,
            Tpl::new(&[
                (CKA_TOKEN, A::B(true)),
                (CKA_LABEL, A::S(label.as_bytes())),
                (CKA_ID, A::S(label.as_bytes())),
                (CKA_EC_PARAMS, A::S(P256)),
            ]),
        ),
    };
    let mut private = Tpl::new(&[
        (CKA_TOKEN, A::B(true)),
        (CKA_LABEL, A::S(label.as_bytes())),
        (CKA_ID, A::S(label.as_bytes())),
    ]);
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut p, mut q) = (0, 0);
    let rv = call!(
        lib,
        C_GenerateKeyPair,
        h,
        &mut m,
        public.ptr(),
        public.len(),
        private.ptr(),
        private.len(),
        &mut p,
        &mut q
    );
    if rv == CKR_OK {
        Ok((p, q))
    } else {
        Err(rv)
    }
}

/// The public value that identifies a key pair: EC point or modulus.
fn public_value(lib: &Lib, h: CK_SESSION_HANDLE, public: CK_OBJECT_HANDLE, alg: &str) -> Vec<u8> {
    lib.attr(
        h,
        public,
        if alg == "rsa" {
            CKA_MODULUS
        } else {
            CKA_EC_POINT
        },
    )
}

// ---------------------------------------------------------------- the checking (parent) side

fn alg_of(label: &str) -> &str {
    label.rsplit('-').next().unwrap_or("ec")
}

/// Signs with `private` and verifies with `public`: the two halves belong together and the
/// private key's material opens.
fn pair_works(
    lib: &Lib,
    h: CK_SESSION_HANDLE,
    private: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
    alg: &str,
) -> Result<(), String> {
    let mech = match alg {
        "rsa" => CKM_SHA256_RSA_PKCS,
        "ed" => CKM_EDDSA,
        _ => CKM_ECDSA,
    };
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut data = [0x5au8; 32];
    let rv = call!(lib, C_SignInit, h, &mut m, private);
    if rv != CKR_OK {
        return Err(format!("C_SignInit: {}", ckr_name(rv)));
    }
    let mut sig = vec![0u8; 512];
    let mut len = sig.len() as CK_ULONG;
    let rv = call!(
        lib,
        C_Sign,
        h,
        data.as_mut_ptr(),
        32,
        sig.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(format!("C_Sign: {}", ckr_name(rv)));
    }
    let rv = call!(lib, C_VerifyInit, h, &mut m, public);
    if rv != CKR_OK {
        return Err(format!("C_VerifyInit: {}", ckr_name(rv)));
    }
    let rv = call!(
        lib,
        C_Verify,
        h,
        data.as_mut_ptr(),
        32,
        sig.as_mut_ptr(),
        len
    );
    if rv != CKR_OK {
        return Err(format!("C_Verify: {}", ckr_name(rv)));
    }
    Ok(())
}

/// Counts of one crash test.
#[derive(Default)]
struct Counts {
    kills: usize,
    kills_mid_work: usize,
    exited_before_kill: usize,
    acked: usize,
    unacked_but_durable: usize,
    findings: Vec<String>,
}

fn acks(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The exact PIN counters on disk: (SO failures, User failures, User locked).
fn counters_on_disk(store: &Path) -> (u32, u32, bool, bool) {
    let db = sled::open(store).expect("open the store with sled");
    let bytes = db.get(b"token").unwrap().expect("token record");
    let t: key4c_pkcs11::store::records::TokenRecord =
        key4c_pkcs11::store::records::decode(&bytes).expect("decode the token record");
    (t.so.failures, t.user.failures, t.user.locked, t.so.locked)
}

fn crash_test(name: &str, kind: Kind, rounds: usize) {
    let start = Instant::now();
    let mut rng = Rng::new(test_seed(name));
    let dir = store_dir().parent().unwrap().to_path_buf();
    let lib = Lib::load();
    lib.init();
    lib.provision();
    // A sealed key made before any kill: it must keep working whatever happens to the PINs.
    let h = lib.user_session();
    lib.create(
        h,
        &[
            (CKA_CLASS, A::U(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, A::U(CKK_AES)),
            (CKA_TOKEN, A::B(true)),
            (CKA_LABEL, A::S(b"before")),
            (CKA_VALUE, A::S(&[7u8; 32])),
        ],
    )
    .expect("create");
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    let mut counts = Counts::default();
    let mut so_pin = 0usize;
    let mut user_pin: &[u8] = USER_PIN;
    for round in 0..rounds {
        let ack_path = dir.join(format!("ack-{round}"));
        let mut child = spawn_step(
            name,
            "worker",
            &[
                ("KEY4C_TEST_KIND", kind.name().to_string()),
                ("KEY4C_TEST_ROUND", round.to_string()),
                ("KEY4C_TEST_ACK", ack_path.display().to_string()),
                ("KEY4C_TEST_PIN", so_pin.to_string()),
            ],
        );
        // One kill in five at any time from the start (C_Initialize, login, first call);
        // the others once the work runs, after a random part of a few operations.
        let spawned = Instant::now();
        let mid_work = rng.below(5) != 0;
        if mid_work {
            // Wait for a random number of completed operations, then kill a random part of
            // the way into the next one (operation time measured on the worker's own acks).
            let target = 1 + rng.below(match kind {
                Kind::KeyGen => 8,
                Kind::Create => 40,
                Kind::SetPin => 20,
                Kind::BadLogin => 8,
            }) as usize;
            let mut first: Option<Instant> = None;
            let mut n = 0;
            while n < target && spawned.elapsed() < Duration::from_secs(30) {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the {} worker died by itself: {status}", kind.name());
                }
                n = acks(&ack_path).len();
                if n > 0 && first.is_none() {
                    first = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            let per_op = match (first, n) {
                (Some(t), n) if n > 1 => t.elapsed() / (n as u32 - 1),
                _ => Duration::from_millis(5),
            };
            std::thread::sleep(Duration::from_micros(
                rng.below(per_op.as_micros().max(1) as u64),
            ));
        } else {
            std::thread::sleep(Duration::from_millis(rng.below(250)));
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(
                    status.success(),
                    "the {} worker failed: {status}",
                    kind.name()
                );
                counts.exited_before_kill += 1;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                counts.kills += 1;
                if mid_work {
                    counts.kills_mid_work += 1;
                }
            }
        }
        let acked = acks(&ack_path);
        counts.acked += acked.len();
        // Counters first, with sled directly, before any login resets them.
        if kind == Kind::BadLogin {
            let (so, user, user_locked, so_locked) = counters_on_disk(&store_dir());
            let user_fails = acked.iter().filter(|l| l.ends_with(" user")).count() as u32;
            let so_fails = acked.iter().filter(|l| l.ends_with(" so")).count() as u32;
            assert!(
                user >= user_fails && user <= user_fails + 1,
                "round {round}: User counter on disk {user}, acknowledged failures {user_fails}"
            );
            assert!(
                so >= so_fails && so <= so_fails + 1,
                "round {round}: SO counter on disk {so}, acknowledged failures {so_fails}"
            );
            assert_eq!(
                user_locked,
                user >= 5,
                "round {round}: lock bit vs counter {user}"
            );
            if acked.iter().any(|l| l == "locked user") {
                assert!(user_locked, "round {round}: an acknowledged lock was lost");
            }
            assert!(!so_locked, "round {round}: the SO was locked");
            counts.unacked_but_durable += (user - user_fails + so - so_fails) as usize;
        }
        let rv = call!(lib, C_Initialize, null_mut());
        assert!(
            rv == CKR_OK,
            "round {round}: the store does not open after a kill: {}",
            ckr_name(rv)
        );
        match kind {
            Kind::KeyGen => check_pairs(&lib, round, &acked, &mut counts),
            Kind::Create => check_objects(&lib, round, &acked, &mut counts),
            Kind::SetPin => {
                let acked_idx = acked
                    .last()
                    .map(|l| l.trim_start_matches("pin ").parse::<usize>().unwrap())
                    .unwrap_or(so_pin);
                let h = lib.open_rw();
                let rv = lib.login(h, CKU_SO, SO_PINS[acked_idx]);
                so_pin = if rv == CKR_OK {
                    acked_idx
                } else {
                    assert_rv!(rv, CKR_PIN_INCORRECT);
                    // The change in flight was durable, its acknowledgement not yet written.
                    let next = (acked_idx + 1) % SO_PINS.len();
                    let rv = lib.login(h, CKU_SO, SO_PINS[next]);
                    assert!(
                        rv == CKR_OK,
                        "round {round}: neither the acknowledged SO PIN nor the next one opens: {}",
                        ckr_name(rv)
                    );
                    counts.unacked_but_durable += 1;
                    next
                };
                assert_rv!(lib.logout(h), CKR_OK);
                // The User and the keys sealed under the master key are unaffected.
                assert_rv!(lib.login(h, CKU_USER, USER_PIN), CKR_OK);
                let found = lib.find(h, &[(CKA_LABEL, A::S(b"before"))]);
                assert_eq!(found.len(), 1);
                let mut m = CK_MECHANISM {
                    mechanism: CKM_AES_KEY_WRAP_PAD,
                    pParameter: null_mut(),
                    ulParameterLen: 0,
                };
                assert_rv!(call!(lib, C_EncryptInit, h, &mut m, found[0]), CKR_OK);
                let mut data = [1u8; 20];
                let mut out = [0u8; 64];
                let mut len = 64;
                assert_rv!(
                    call!(
                        lib,
                        C_Encrypt,
                        h,
                        data.as_mut_ptr(),
                        20,
                        out.as_mut_ptr(),
                        &mut len
                    ),
                    CKR_OK
                );
                assert_rv!(lib.close(h), CKR_OK);
            }
            Kind::BadLogin => {
                // Reset both counters for the next round: a correct SO login, and the SO
                // sets a new User PIN (which also unlocks it).
                let h = lib.open_rw();
                assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
                user_pin = if user_pin == USER_PIN {
                    OTHER_PIN
                } else {
                    USER_PIN
                };
                assert_rv!(lib.init_pin(h, user_pin), CKR_OK);
                assert_rv!(lib.close(h), CKR_OK);
                assert_eq!(
                    lib.flags()
                        & (CKF_USER_PIN_COUNT_LOW | CKF_SO_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED),
                    0
                );
            }
        }
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    }
    eprintln!(
        "REPORT {name}: {} kill points ({} mid-work, {} at start-up), {} worker(s) done before the kill, \
         {} acknowledged operations checked, {} durable but unacknowledged, {:.1}s",
        counts.kills,
        counts.kills_mid_work,
        counts.kills - counts.kills_mid_work,
        counts.exited_before_kill,
        counts.acked,
        counts.unacked_but_durable,
        start.elapsed().as_secs_f64()
    );
    for f in &counts.findings {
        eprintln!("REPORT   {f}");
    }
    if !counts.findings.is_empty() {
        panic!("{}", counts.findings.join("\n"));
    }
}

/// Key pairs after a kill: acknowledged ones whole and working, no half pair anywhere.
fn check_pairs(lib: &Lib, round: usize, acked: &[String], counts: &mut Counts) {
    let h = lib.user_session();
    let prefix = format!("r{round}-");
    let mut by_label: BTreeMap<String, (Vec<CK_OBJECT_HANDLE>, Vec<CK_OBJECT_HANDLE>)> =
        BTreeMap::new();
    for (class, is_public) in [(CKO_PUBLIC_KEY, true), (CKO_PRIVATE_KEY, false)] {
        for o in lib.find(h, &[(CKA_CLASS, A::U(class)), (CKA_TOKEN, A::B(true))]) {
            let label = String::from_utf8_lossy(&lib.attr(h, o, CKA_LABEL)).to_string();
            let e = by_label.entry(label).or_default();
            if is_public {
                e.0.push(o);
            } else {
                e.1.push(o);
            }
        }
    }
    for line in acked {
        let mut parts = line.split(' ');
        let (_, label, public_hex) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let (pubs, privs) = by_label
            .get(label)
            .unwrap_or_else(|| panic!("round {round}: acknowledged key pair {label} is gone"));
        assert!(
            pubs.len() == 1 && privs.len() == 1,
            "round {round}: acknowledged key pair {label}: {} public, {} private",
            pubs.len(),
            privs.len()
        );
        let alg = alg_of(label);
        assert_eq!(
            hex(&public_value(lib, h, pubs[0], alg)),
            public_hex,
            "round {round}: {label} changed"
        );
        pair_works(lib, h, privs[0], pubs[0], alg).unwrap_or_else(|e| {
            panic!("round {round}: acknowledged key pair {label} no longer works: {e}")
        });
    }
    for (label, (pubs, privs)) in &by_label {
        if !label.starts_with(&prefix) || acked.iter().any(|l| l.split(' ').nth(1) == Some(label)) {
            continue;
        }
        match (pubs.len(), privs.len()) {
            (1, 1) => {
                counts.unacked_but_durable += 1;
                pair_works(lib, h, privs[0], pubs[0], alg_of(label))
                    .unwrap_or_else(|e| panic!("round {round}: unacknowledged pair {label} is broken: {e}"));
            }
            (p, q) => counts.findings.push(format!(
                "round {round}: half a key pair after a kill: {label} has {p} public and {q} private key(s)"
            )),
        }
    }
    // Clean up this round's keys (half pairs included) so the store stays small.
    for (label, (pubs, privs)) in by_label {
        if label.starts_with(&prefix) {
            for o in pubs.into_iter().chain(privs) {
                assert_rv!(call!(lib, C_DestroyObject, h, o), CKR_OK);
            }
        }
    }
    assert_rv!(lib.close(h), CKR_OK);
}

/// Objects after a kill: acknowledged ones there once with their values; others intact.
fn check_objects(lib: &Lib, round: usize, acked: &[String], counts: &mut Counts) {
    let h = lib.user_session();
    let prefix = format!("r{round}-");
    let mut found: BTreeMap<String, Vec<CK_OBJECT_HANDLE>> = BTreeMap::new();
    for class in [CKO_DATA, CKO_SECRET_KEY] {
        for o in lib.find(h, &[(CKA_CLASS, A::U(class)), (CKA_TOKEN, A::B(true))]) {
            let label = String::from_utf8_lossy(&lib.attr(h, o, CKA_LABEL)).to_string();
            if label.starts_with(&prefix) {
                found.entry(label).or_default().push(o);
            }
        }
    }
    for line in acked {
        let label = line.trim_start_matches("obj ");
        let handles = found
            .get(label)
            .unwrap_or_else(|| panic!("round {round}: acknowledged object {label} is gone"));
        assert_eq!(
            handles.len(),
            1,
            "round {round}: {label} is there {} times",
            handles.len()
        );
    }
    for (label, handles) in &found {
        assert_eq!(
            handles.len(),
            1,
            "round {round}: {label} is there {} times",
            handles.len()
        );
        let want = value_of(label);
        let want = if label.ends_with("-aes") {
            &want[..32]
        } else {
            &want[..]
        };
        assert_eq!(
            lib.attr(h, handles[0], CKA_VALUE),
            want,
            "round {round}: {label} has another value"
        );
        if !acked.iter().any(|l| l.trim_start_matches("obj ") == label) {
            counts.unacked_but_durable += 1;
        }
        assert_rv!(call!(lib, C_DestroyObject, h, handles[0]), CKR_OK);
    }
    assert_rv!(lib.close(h), CKR_OK);
}

#[test]
fn killed_during_key_generation() {
    const NAME: &str = "killed_during_key_generation";
    if step().as_deref() == Some("worker") {
        return worker();
    }
    isolated_reporting(NAME, "", || crash_test(NAME, Kind::KeyGen, scaled(60)));
}

#[test]
fn killed_during_object_creation() {
    const NAME: &str = "killed_during_object_creation";
    if step().as_deref() == Some("worker") {
        return worker();
    }
    isolated_reporting(NAME, "", || crash_test(NAME, Kind::Create, scaled(50)));
}

#[test]
fn killed_during_so_pin_change() {
    const NAME: &str = "killed_during_so_pin_change";
    if step().as_deref() == Some("worker") {
        return worker();
    }
    isolated_reporting(NAME, "", || crash_test(NAME, Kind::SetPin, scaled(50)));
}

#[test]
fn killed_during_failed_logins() {
    const NAME: &str = "killed_during_failed_logins";
    if step().as_deref() == Some("worker") {
        return worker();
    }
    isolated_reporting(NAME, "", || crash_test(NAME, Kind::BadLogin, scaled(50)));
}
