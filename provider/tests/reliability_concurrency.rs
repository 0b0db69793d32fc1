//! Concurrency: many threads × sessions signing, verifying, finding, generating keys,
//! logging in and out, opening and closing sessions at once; C_Initialize racing C_Finalize;
//! C_Finalize while other threads are inside calls; fork() while threads work.
//!
//! Every call's return code must be one the specification allows for it in that situation
//! (the `ALLOWED_*` lists below). Every test runs under a watchdog: a deadlock or a hang
//! aborts the test process, which fails the test. Counts are printed as `REPORT` lines.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

// The return codes each call may give in these tests. Every thread uses only its own
// sessions; the login state is shared by all of them (PKCS#11 section 5.6), so any call that
// needs the User may find another thread logged it out, and C_Login may find it logged in.
// A private key is invisible while nobody is logged in: its handle is then invalid.
const ALLOWED_OPEN: &[CK_RV] = &[CKR_OK];
const ALLOWED_CLOSE: &[CK_RV] = &[CKR_OK];
const ALLOWED_LOGIN: &[CK_RV] = &[CKR_OK, CKR_USER_ALREADY_LOGGED_IN];
const ALLOWED_LOGOUT: &[CK_RV] = &[CKR_OK, CKR_USER_NOT_LOGGED_IN];
const ALLOWED_SIGN_INIT: &[CK_RV] = &[CKR_OK, CKR_USER_NOT_LOGGED_IN, CKR_KEY_HANDLE_INVALID];
const ALLOWED_SIGN: &[CK_RV] = &[CKR_OK];
const ALLOWED_VERIFY_INIT: &[CK_RV] = &[CKR_OK];
const ALLOWED_VERIFY: &[CK_RV] = &[CKR_OK];
const ALLOWED_FIND_INIT: &[CK_RV] = &[CKR_OK];
const ALLOWED_FIND: &[CK_RV] = &[CKR_OK];
const ALLOWED_FIND_FINAL: &[CK_RV] = &[CKR_OK];
const ALLOWED_KEYGEN: &[CK_RV] = &[CKR_OK, CKR_USER_NOT_LOGGED_IN, CKR_SESSION_READ_ONLY];
const ALLOWED_DESTROY: &[CK_RV] = &[
    CKR_OK,
    CKR_USER_NOT_LOGGED_IN,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_SESSION_READ_ONLY,
];
const ALLOWED_INFO: &[CK_RV] = &[CKR_OK];
const ALLOWED_RANDOM: &[CK_RV] = &[CKR_OK];
// Around C_Initialize / C_Finalize, every call may also find the module not initialised, and
// a session of an earlier initialisation is no longer valid.
const ALLOWED_INITIALIZE: &[CK_RV] = &[CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED];
const ALLOWED_FINALIZE: &[CK_RV] = &[CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED];

/// Counts calls by name.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<&'static str, u64>>);

impl Tally {
    fn check(&self, what: &'static str, rv: CK_RV, allowed: &[CK_RV]) -> CK_RV {
        expect_rv(what, rv, allowed);
        *self.0.lock().unwrap().entry(what).or_default() += 1;
        rv
    }

    fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }

    fn report(&self, name: &str, threads: usize, start: Instant) {
        let map = self.0.lock().unwrap();
        let calls: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "REPORT {name}: {threads} threads, {} calls in {:.1}s: {}",
            map.values().sum::<u64>(),
            start.elapsed().as_secs_f64(),
            calls.join(", ")
        );
    }
}

fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// Makes a token key pair (EC P-256 or Ed25519) labelled `label`.
fn key_pair(lib: &Lib, h: CK_SESSION_HANDLE, label: &str, ed: bool, token: bool) -> CK_RV {
    let (m, params) = if ed {
        (CKM_EC_EDWARDS_KEY_PAIR_GEN, ED25519)
    } else {
        (CKM_EC_KEY_PAIR_GEN, P256)
    };
    let mut public = Tpl::new(&[
        (CKA_TOKEN, A::B(token)),
        (CKA_LABEL, A::S(label.as_bytes())),
        (CKA_EC_PARAMS, A::S(params)),
    ]);
    let mut private = Tpl::new(&[
        (CKA_TOKEN, A::B(token)),
        (CKA_LABEL, A::S(label.as_bytes())),
    ]);
    let mut m = mech(m);
    let (mut p, mut q) = (0, 0);
    call!(
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
    )
}

/// The fixture: token keys made once, found again by every thread by label.
struct Keys {
    ec: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    ed: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    hmac: CK_OBJECT_HANDLE,
}

fn make_keys(lib: &Lib) -> Keys {
    let h = lib.user_session();
    assert_rv!(key_pair(lib, h, "c-ec", false, true), CKR_OK);
    assert_rv!(key_pair(lib, h, "c-ed", true, true), CKR_OK);
    lib.create(
        h,
        &[
            (CKA_CLASS, A::U(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, A::U(CKK_GENERIC_SECRET)),
            (CKA_TOKEN, A::B(true)),
            (CKA_LABEL, A::S(b"c-hmac")),
            (CKA_VALUE, A::S(&[0x33; 32])),
        ],
    )
    .expect("hmac key");
    let one = |class, label: &[u8]| {
        let f = lib.find(h, &[(CKA_CLASS, A::U(class)), (CKA_LABEL, A::S(label))]);
        assert_eq!(f.len(), 1);
        f[0]
    };
    let keys = Keys {
        ec: (one(CKO_PRIVATE_KEY, b"c-ec"), one(CKO_PUBLIC_KEY, b"c-ec")),
        ed: (one(CKO_PRIVATE_KEY, b"c-ed"), one(CKO_PUBLIC_KEY, b"c-ed")),
        hmac: one(CKO_SECRET_KEY, b"c-hmac"),
    };
    assert_rv!(lib.close(h), CKR_OK);
    keys
}

/// One thread's random work for `run_for`.
fn worker(lib: &Lib, keys: &Keys, tally: &Tally, seed: u64, run_for: Duration) {
    let mut rng = Rng::new(seed);
    let mut sessions: Vec<(CK_SESSION_HANDLE, bool)> = Vec::new();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < run_for {
        i += 1;
        if sessions.is_empty() {
            let rw = rng.below(2) == 0;
            let h = lib
                .open(rw)
                .map_err(|rv| tally.check("C_OpenSession", rv, ALLOWED_OPEN))
                .unwrap();
            tally.check("C_OpenSession", CKR_OK, ALLOWED_OPEN);
            sessions.push((h, rw));
        }
        let (h, rw) = sessions[rng.below(sessions.len() as u64) as usize];
        match rng.below(20) {
            0 if sessions.len() < 4 => {
                let rw = rng.below(2) == 0;
                let h = lib
                    .open(rw)
                    .map_err(|rv| tally.check("C_OpenSession", rv, ALLOWED_OPEN))
                    .unwrap();
                tally.check("C_OpenSession", CKR_OK, ALLOWED_OPEN);
                sessions.push((h, rw));
            }
            1 => {
                let k = rng.below(sessions.len() as u64) as usize;
                let (h, _) = sessions.swap_remove(k);
                tally.check("C_CloseSession", lib.close(h), ALLOWED_CLOSE);
            }
            2..=4 => {
                tally.check("C_Login", lib.login(h, CKU_USER, USER_PIN), ALLOWED_LOGIN);
            }
            5 => {
                tally.check("C_Logout", lib.logout(h), ALLOWED_LOGOUT);
            }
            6..=10 => {
                let (private, public, m) = match rng.below(3) {
                    0 => (keys.ec.0, keys.ec.1, CKM_ECDSA_SHA256),
                    1 => (keys.ed.0, keys.ed.1, CKM_EDDSA),
                    _ => (keys.hmac, keys.hmac, CKM_SHA256_HMAC),
                };
                let mut m = mech(m);
                let rv = tally.check(
                    "C_SignInit",
                    call!(lib, C_SignInit, h, &mut m, private),
                    ALLOWED_SIGN_INIT,
                );
                if rv != CKR_OK {
                    continue;
                }
                let mut data = i.to_le_bytes();
                let mut sig = [0u8; 128];
                let mut len = sig.len() as CK_ULONG;
                tally.check(
                    "C_Sign",
                    call!(
                        lib,
                        C_Sign,
                        h,
                        data.as_mut_ptr(),
                        8,
                        sig.as_mut_ptr(),
                        &mut len
                    ),
                    ALLOWED_SIGN,
                );
                // The HMAC key is secret: verifying with it needs the User too.
                let rv = call!(lib, C_VerifyInit, h, &mut m, public);
                let allowed = if public == keys.hmac {
                    ALLOWED_SIGN_INIT
                } else {
                    ALLOWED_VERIFY_INIT
                };
                if tally.check("C_VerifyInit", rv, allowed) == CKR_OK {
                    tally.check(
                        "C_Verify",
                        call!(
                            lib,
                            C_Verify,
                            h,
                            data.as_mut_ptr(),
                            8,
                            sig.as_mut_ptr(),
                            len
                        ),
                        ALLOWED_VERIFY,
                    );
                }
            }
            11..=13 => {
                let label: &[u8] = match rng.below(3) {
                    0 => b"c-ec",
                    1 => b"c-ed",
                    _ => b"w-tmp",
                };
                let mut t = Tpl::new(&[(CKA_LABEL, A::S(label))]);
                tally.check(
                    "C_FindObjectsInit",
                    call!(lib, C_FindObjectsInit, h, t.ptr(), t.len()),
                    ALLOWED_FIND_INIT,
                );
                let mut found = [0 as CK_OBJECT_HANDLE; 8];
                let mut n = 0;
                tally.check(
                    "C_FindObjects",
                    call!(lib, C_FindObjects, h, found.as_mut_ptr(), 8, &mut n),
                    ALLOWED_FIND,
                );
                tally.check(
                    "C_FindObjectsFinal",
                    call!(lib, C_FindObjectsFinal, h),
                    ALLOWED_FIND_FINAL,
                );
                // The public halves are always visible.
                if label != b"w-tmp" {
                    assert!(n >= 1, "a public key was not found");
                }
            }
            14 | 15 => {
                // A key pair: mostly session objects, one in four on the token (durable
                // writes under load), destroyed again.
                let token = rng.below(4) == 0;
                let rv = tally.check(
                    "C_GenerateKeyPair",
                    key_pair(lib, h, "w-tmp", rng.below(2) == 0, token),
                    ALLOWED_KEYGEN,
                );
                if token && rv == CKR_OK && !rw {
                    panic!("a token key pair was made in a read-only session");
                }
                if rv == CKR_OK {
                    let mut t = Tpl::new(&[(CKA_LABEL, A::S(b"w-tmp"))]);
                    if call!(lib, C_FindObjectsInit, h, t.ptr(), t.len()) == CKR_OK {
                        let mut found = [0 as CK_OBJECT_HANDLE; 64];
                        let mut n = 0;
                        let _ = call!(lib, C_FindObjects, h, found.as_mut_ptr(), 64, &mut n);
                        let _ = call!(lib, C_FindObjectsFinal, h);
                        for &o in &found[..n as usize] {
                            tally.check(
                                "C_DestroyObject",
                                call!(lib, C_DestroyObject, h, o),
                                ALLOWED_DESTROY,
                            );
                        }
                    }
                }
            }
            16 | 17 => {
                let mut info = CK_TOKEN_INFO::default();
                tally.check(
                    "C_GetTokenInfo",
                    call!(lib, C_GetTokenInfo, lib.slot(), &mut info),
                    ALLOWED_INFO,
                );
                let mut s = CK_SESSION_INFO::default();
                tally.check(
                    "C_GetSessionInfo",
                    call!(lib, C_GetSessionInfo, h, &mut s),
                    ALLOWED_INFO,
                );
            }
            _ => {
                let mut buf = [0u8; 64];
                tally.check(
                    "C_GenerateRandom",
                    call!(lib, C_GenerateRandom, h, buf.as_mut_ptr(), 64),
                    ALLOWED_RANDOM,
                );
            }
        }
    }
    for (h, _) in sessions {
        tally.check("C_CloseSession", lib.close(h), ALLOWED_CLOSE);
    }
}

#[test]
fn threads_and_sessions_under_load() {
    const NAME: &str = "threads_and_sessions_under_load";
    isolated_reporting(NAME, "", || {
        let _dog = watchdog(NAME, Duration::from_secs(120));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let keys = make_keys(&lib);
        let seed = test_seed(NAME);
        let threads = 8;
        let run_for = Duration::from_secs(scaled(6) as u64);
        let tally = Tally::default();
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (lib, keys, tally) = (&lib, &keys, &tally);
                s.spawn(move || worker(lib, keys, tally, seed + t as u64, run_for));
            }
        });
        tally.report(NAME, threads, start);
        assert!(tally.total() > 1000, "too little work done");
        // The token is still whole: the fixture keys are there, before and after a restart.
        let h = lib.user_session();
        assert_eq!(lib.find(h, &[(CKA_LABEL, A::S(b"c-ec"))]).len(), 2);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        lib.init();
        let h = lib.user_session();
        assert_eq!(lib.find(h, &[(CKA_LABEL, A::S(b"c-ec"))]).len(), 2);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

/// C_Finalize then C_Initialize straight away, after writes: the store must open again every
/// time (the module, not the application, waits for the store to be released).
#[test]
fn initialize_right_after_finalize() {
    const NAME: &str = "initialize_right_after_finalize";
    isolated_reporting(NAME, "", || {
        let _dog = watchdog(NAME, Duration::from_secs(120));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        let rounds = scaled(60);
        let start = Instant::now();
        let mut refused = 0;
        for round in 0..rounds {
            let rv = call!(lib, C_Initialize, null_mut());
            if rv == CKR_DEVICE_ERROR {
                refused += 1;
                // Let the earlier instance go, to count every round.
                let t = Instant::now();
                while call!(lib, C_Initialize, null_mut()) != CKR_OK {
                    assert!(
                        t.elapsed() < Duration::from_secs(10),
                        "the store never came back"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                assert_rv!(rv, CKR_OK);
            }
            let h = lib.user_session();
            lib.create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_DATA)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_LABEL, A::S(format!("round {round}").as_bytes())),
                    (CKA_VALUE, A::S(&[round as u8; 100])),
                ],
            )
            .expect("create");
            if round % 10 == 9 {
                // A re-initialisation clears the objects tree: the heaviest write.
                assert_rv!(lib.close(h), CKR_OK);
                assert_rv!(lib.init_token(SO_PIN, "key4c test"), CKR_OK);
                let h = lib.open_rw();
                assert_rv!(lib.login(h, CKU_SO, SO_PIN), CKR_OK);
                assert_rv!(lib.init_pin(h, USER_PIN), CKR_OK);
            }
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }
        eprintln!(
            "REPORT {NAME}: {rounds} C_Finalize + C_Initialize pairs in {:.1}s, {refused} refused with CKR_DEVICE_ERROR",
            start.elapsed().as_secs_f64()
        );
        assert_eq!(
            refused, 0,
            "C_Initialize right after C_Finalize failed {refused} times of {rounds}"
        );
    });
}

/// Threads calling C_Initialize and C_Finalize at once while others make calls.
#[test]
fn initialize_and_finalize_race() {
    const NAME: &str = "initialize_and_finalize_race";
    isolated_reporting(NAME, "", || {
        let _dog = watchdog(NAME, Duration::from_secs(120));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        let tally = Tally::default();
        let stop = AtomicBool::new(false);
        let seed = test_seed(NAME);
        let run_for = Duration::from_secs(scaled(4) as u64);
        let start = Instant::now();
        std::thread::scope(|s| {
            // Two threads initialise and finalise.
            for t in 0..2 {
                let (lib, tally, stop) = (&lib, &tally, &stop);
                s.spawn(move || {
                    let mut rng = Rng::new(seed + t);
                    while !stop.load(Ordering::Relaxed) {
                        let rv = call!(lib, C_Initialize, null_mut());
                        tally.check("C_Initialize", rv, ALLOWED_INITIALIZE);
                        std::thread::sleep(Duration::from_micros(rng.below(3000)));
                        let rv = call!(lib, C_Finalize, null_mut());
                        tally.check("C_Finalize", rv, ALLOWED_FINALIZE);
                    }
                });
            }
            // Four threads call into the module whatever its state.
            for t in 0..4 {
                let (lib, tally, stop) = (&lib, &tally, &stop);
                s.spawn(move || {
                    let mut rng = Rng::new(seed + 100 + t);
                    let not_init = [CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED];
                    let mut h = None;
                    while !stop.load(Ordering::Relaxed) {
                        match rng.below(5) {
                            0 => {
                                let mut info = CK_INFO::default();
                                tally.check(
                                    "C_GetInfo",
                                    call!(lib, C_GetInfo, &mut info),
                                    &not_init,
                                );
                            }
                            1 => {
                                let mut slots = [0; 2];
                                let mut n = 2;
                                tally.check(
                                    "C_GetSlotList",
                                    call!(lib, C_GetSlotList, CK_TRUE, slots.as_mut_ptr(), &mut n),
                                    &not_init,
                                );
                            }
                            2 => {
                                let mut s = 0;
                                let rv = call!(
                                    lib,
                                    C_OpenSession,
                                    0,
                                    CKF_SERIAL_SESSION,
                                    null_mut(),
                                    None,
                                    &mut s
                                );
                                tally.check("C_OpenSession", rv, &not_init);
                                if rv == CKR_OK {
                                    h = Some(s);
                                }
                            }
                            3 => {
                                if let Some(s) = h {
                                    let mut info = CK_SESSION_INFO::default();
                                    // A session of an earlier initialisation is gone.
                                    tally.check(
                                        "C_GetSessionInfo",
                                        call!(lib, C_GetSessionInfo, s, &mut info),
                                        &[
                                            CKR_OK,
                                            CKR_CRYPTOKI_NOT_INITIALIZED,
                                            CKR_SESSION_HANDLE_INVALID,
                                        ],
                                    );
                                }
                            }
                            _ => {
                                let mut info = CK_TOKEN_INFO::default();
                                tally.check(
                                    "C_GetTokenInfo",
                                    call!(lib, C_GetTokenInfo, 0, &mut info),
                                    &not_init,
                                );
                            }
                        }
                    }
                });
            }
            std::thread::sleep(run_for);
            stop.store(true, Ordering::Relaxed);
        });
        tally.report(NAME, 6, start);
        let _ = call!(lib, C_Finalize, null_mut());
        // The store is whole.
        lib.init();
        let h = lib.user_session();
        assert_rv!(lib.close(h), CKR_OK);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

/// C_Finalize while other threads are inside calls (signing, generating keys, searching):
/// those calls end with their own result or CKR_CRYPTOKI_NOT_INITIALIZED (or, for a session
/// of the finalised instance, CKR_SESSION_HANDLE_INVALID after a new C_Initialize); nothing
/// crashes or hangs, and the store is whole afterwards.
#[test]
fn finalize_while_calls_run() {
    const NAME: &str = "finalize_while_calls_run";
    isolated_reporting(NAME, "", || {
        let _dog = watchdog(NAME, Duration::from_secs(180));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let keys = make_keys(&lib);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        let tally = Tally::default();
        let seed = test_seed(NAME);
        let mut rng = Rng::new(seed);
        let rounds = scaled(15);
        let gone = [CKR_CRYPTOKI_NOT_INITIALIZED, CKR_SESSION_HANDLE_INVALID];
        let in_flight = AtomicU64::new(0);
        // Calls each thread completed before C_Finalize (the floor: at least one per round).
        let done_before: Vec<AtomicU64> = (0..6).map(|_| AtomicU64::new(0)).collect();
        let start = Instant::now();
        for round in 0..rounds {
            lib.init();
            // Handles are valid within one C_Initialize: the key is found again each round.
            // (key4c's handles after a restart follow the order in which the store's objects
            // were decoded, on two threads once there are 256 or more: they change.)
            let keys = {
                let h = lib.user_session();
                let f = lib.find(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_PRIVATE_KEY)),
                        (CKA_LABEL, A::S(b"c-ec")),
                    ],
                );
                assert_eq!(f.len(), 1, "round {round}: the EC key");
                assert_rv!(lib.close(h), CKR_OK);
                Keys {
                    ec: (f[0], keys.ec.1),
                    ..keys
                }
            };
            let stop = AtomicBool::new(false);
            // Threads that opened a session and completed one call: C_Finalize waits for all
            // six, so no thread can quietly find the module finalised before it started.
            let ready = AtomicU64::new(0);
            let finalized = AtomicBool::new(false);
            std::thread::scope(|s| {
                let mut workers = Vec::new();
                for t in 0..6 {
                    let (lib, tally, stop, keys, in_flight) =
                        (&lib, &tally, &stop, &keys, &in_flight);
                    let (gone, ready, finalized) = (&gone, &ready, &finalized);
                    let done_before = &done_before[t as usize];
                    workers.push(s.spawn(move || {
                        let mut rng = Rng::new(seed ^ (round as u64 * 31 + t));
                        // C_Finalize waits for this thread: its session must open.
                        let h = match lib.open(true) {
                            Ok(h) => h,
                            Err(rv) => panic!(
                                "thread {t}, round {round}: C_OpenSession before C_Finalize: {}",
                                ckr_name(rv)
                            ),
                        };
                        let mut first = true;
                        let rv = lib.login(h, CKU_USER, USER_PIN);
                        expect_rv(
                            "C_Login",
                            rv,
                            &[
                                CKR_OK,
                                CKR_USER_ALREADY_LOGGED_IN,
                                CKR_CRYPTOKI_NOT_INITIALIZED,
                            ],
                        );
                        let with = |base: &[CK_RV]| -> Vec<CK_RV> {
                            base.iter().chain(gone.iter()).copied().collect()
                        };
                        while !stop.load(Ordering::Relaxed) {
                            in_flight.fetch_add(1, Ordering::Relaxed);
                            match rng.below(3) {
                                0 => {
                                    let mut m = mech(CKM_ECDSA_SHA256);
                                    let rv = call!(lib, C_SignInit, h, &mut m, keys.ec.0);
                                    tally.check("C_SignInit", rv, &with(ALLOWED_SIGN_INIT));
                                    if rv == CKR_OK {
                                        let mut data = [1u8; 32];
                                        let mut sig = [0u8; 128];
                                        let mut len = 128;
                                        let rv = call!(
                                            lib,
                                            C_Sign,
                                            h,
                                            data.as_mut_ptr(),
                                            32,
                                            sig.as_mut_ptr(),
                                            &mut len
                                        );
                                        tally.check("C_Sign", rv, &with(ALLOWED_SIGN));
                                    }
                                }
                                1 => {
                                    let token = rng.below(3) == 0;
                                    let rv = key_pair(lib, h, "f-tmp", false, token);
                                    tally.check("C_GenerateKeyPair", rv, &with(ALLOWED_KEYGEN));
                                }
                                _ => {
                                    let mut t = Tpl::new(&[(CKA_LABEL, A::S(b"c-ec"))]);
                                    let rv = call!(lib, C_FindObjectsInit, h, t.ptr(), t.len());
                                    tally.check("C_FindObjectsInit", rv, &with(ALLOWED_FIND_INIT));
                                    let mut found = [0; 4];
                                    let mut n = 0;
                                    let rv =
                                        call!(lib, C_FindObjects, h, found.as_mut_ptr(), 4, &mut n);
                                    tally.check(
                                        "C_FindObjects",
                                        rv,
                                        &with(&[CKR_OK, CKR_OPERATION_NOT_INITIALIZED]),
                                    );
                                    let rv = call!(lib, C_FindObjectsFinal, h);
                                    tally.check(
                                        "C_FindObjectsFinal",
                                        rv,
                                        &with(&[CKR_OK, CKR_OPERATION_NOT_INITIALIZED]),
                                    );
                                }
                            }
                            if !finalized.load(Ordering::SeqCst) {
                                done_before.fetch_add(1, Ordering::Relaxed);
                            }
                            if std::mem::take(&mut first) {
                                ready.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }));
                }
                // Every thread is at work before C_Finalize comes (one that ended already
                // failed: the scope reports its panic).
                while ready.load(Ordering::SeqCst) < 6 && !workers.iter().any(|w| w.is_finished()) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
                finalized.store(true, Ordering::SeqCst);
                let rv = call!(lib, C_Finalize, null_mut());
                tally.check("C_Finalize", rv, &[CKR_OK]);
                // Calls go on failing for a moment: then everybody stops.
                std::thread::sleep(Duration::from_millis(rng.below(30)));
                stop.store(true, Ordering::Relaxed);
            });
        }
        tally.report(NAME, 6, start);
        eprintln!("REPORT {NAME}: {rounds} C_Finalize calls with 6 threads inside calls");
        // The floor: every thread completed at least one call in every round before C_Finalize.
        for (t, n) in done_before.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            assert!(
                n >= rounds as u64,
                "thread {t} completed {n} calls before C_Finalize in {rounds} rounds"
            );
        }
        // The store opens and holds the fixture; no half-written temporary pair is left in a
        // state that does not load.
        lib.init();
        let h = lib.user_session();
        assert_eq!(lib.find(h, &[(CKA_LABEL, A::S(b"c-ec"))]).len(), 2);
        let publics = lib
            .find(
                h,
                &[
                    (CKA_LABEL, A::S(b"f-tmp")),
                    (CKA_CLASS, A::U(CKO_PUBLIC_KEY)),
                    (CKA_TOKEN, A::B(true)),
                ],
            )
            .len();
        let privates = lib
            .find(
                h,
                &[
                    (CKA_LABEL, A::S(b"f-tmp")),
                    (CKA_CLASS, A::U(CKO_PRIVATE_KEY)),
                    (CKA_TOKEN, A::B(true)),
                ],
            )
            .len();
        eprintln!("REPORT {NAME}: {publics} public and {privates} private temporary token keys after the rounds");
        // A pair is written in one durable batch: C_Finalize never leaves half of one.
        assert_eq!(
            publics, privates,
            "half key pairs left after C_Finalize during C_GenerateKeyPair"
        );
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}

/// fork() while threads are inside calls: the child sees CKR_CRYPTOKI_NOT_INITIALIZED for
/// every call, its C_Initialize reports the store held (CKR_DEVICE_ERROR) without
/// deadlocking on a lock a parent thread held at the fork; the parent goes on unharmed.
#[test]
fn fork_while_threads_work() {
    const NAME: &str = "fork_while_threads_work";
    isolated_reporting(NAME, "", || {
        let _dog = watchdog(NAME, Duration::from_secs(120));
        let lib = Lib::load();
        lib.init();
        lib.provision();
        let keys = make_keys(&lib);
        let stop = AtomicBool::new(false);
        let tally = Tally::default();
        let seed = test_seed(NAME);
        let forks = scaled(20);
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (lib, keys, tally, stop) = (&lib, &keys, &tally, &stop);
                s.spawn(move || {
                    let mut rng = Rng::new(seed + t);
                    let h = lib.open_rw();
                    let rv = lib.login(h, CKU_USER, USER_PIN);
                    expect_rv("C_Login", rv, ALLOWED_LOGIN);
                    while !stop.load(Ordering::Relaxed) {
                        let mut m = mech(CKM_ECDSA_SHA256);
                        let rv = call!(lib, C_SignInit, h, &mut m, keys.ec.0);
                        tally.check("C_SignInit", rv, &[CKR_OK]);
                        let mut data = [2u8; 32];
                        let mut sig = [0u8; 128];
                        let mut len = 128;
                        let rv = call!(
                            lib,
                            C_Sign,
                            h,
                            data.as_mut_ptr(),
                            32,
                            sig.as_mut_ptr(),
                            &mut len
                        );
                        tally.check("C_Sign", rv, &[CKR_OK]);
                        if rng.below(10) == 0 {
                            tally.check(
                                "C_GenerateKeyPair",
                                key_pair(lib, h, "k-tmp", false, true),
                                &[CKR_OK],
                            );
                        }
                    }
                });
            }
            let mut rng = Rng::new(seed);
            for _ in 0..forks {
                std::thread::sleep(Duration::from_millis(5 + rng.below(40)));
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0);
                if pid == 0 {
                    unsafe { libc::alarm(10) };
                    let mut info = CK_INFO::default();
                    let a = call!(lib, C_GetInfo, &mut info);
                    let mut h = 0;
                    let b = call!(
                        lib,
                        C_OpenSession,
                        0,
                        CKF_SERIAL_SESSION,
                        null_mut(),
                        None,
                        &mut h
                    );
                    let mut m = mech(CKM_ECDSA_SHA256);
                    let c = call!(lib, C_SignInit, 1, &mut m, keys.ec.0);
                    let d = call!(lib, C_Initialize, null_mut());
                    let ok = a == CKR_CRYPTOKI_NOT_INITIALIZED
                        && b == CKR_CRYPTOKI_NOT_INITIALIZED
                        && c == CKR_CRYPTOKI_NOT_INITIALIZED
                        && d == CKR_DEVICE_ERROR;
                    unsafe { libc::_exit(if ok { 0 } else { 1 }) };
                }
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "forked child: status {status} (signal {})",
                    if libc::WIFSIGNALED(status) {
                        libc::WTERMSIG(status)
                    } else {
                        0
                    }
                );
            }
            stop.store(true, Ordering::Relaxed);
        });
        tally.report(NAME, 4, start);
        eprintln!("REPORT {NAME}: {forks} forks while 4 threads signed and generated keys");
        // The parent's store is whole after a restart.
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        lib.init();
        let h = lib.user_session();
        assert_eq!(lib.find(h, &[(CKA_LABEL, A::S(b"c-ec"))]).len(), 2);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    });
}
