//! The module inside a process full of signals: a SIGALRM handler installed without
//! `SA_RESTART` (so a blocking system call fails with EINTR when the signal comes) and a timer
//! firing every millisecond. The store's recovery on a copy (C_Initialize on a log damaged
//! after its last acknowledged write: `std::fs::copy` of every file) and the handover of the
//! store between two processes (socket connect, accept, read, write, flock) complete, with
//! every object intact.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU64, Ordering};

use key4c_pkcs11::store::log_check::{judge, replay_from, scan, segment_size_from_conf, Verdict};

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// While it runs: SIGUSR1 to this process every few microseconds, from a thread that blocks
/// it itself (so it lands on the threads at work): the millisecond timer alone rarely hits a
/// short system call.
fn spam_sigusr1(stop: &'static std::sync::atomic::AtomicBool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // SAFETY: blocks SIGUSR1 in this thread only; kill to the own process.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, null_mut());
            while !stop.load(Ordering::Relaxed) {
                libc::kill(libc::getpid(), libc::SIGUSR1);
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
        }
    })
}

/// SIGALRM every millisecond and SIGUSR1 on demand, their handler installed without
/// SA_RESTART.
fn start_storm() {
    // SAFETY: a handler that only touches an atomic; sigaction and setitimer with valid,
    // initialised structures.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0; // no SA_RESTART: interrupted calls fail with EINTR
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGALRM, &sa, null_mut()), 0);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, null_mut()), 0);
        let ms = libc::timeval {
            tv_sec: 0,
            tv_usec: 1000,
        };
        let t = libc::itimerval {
            it_interval: ms,
            it_value: ms,
        };
        assert_eq!(libc::setitimer(libc::ITIMER_REAL, &t, null_mut()), 0);
    }
}

fn stop_storm() {
    // SAFETY: a zero timer disarms it.
    unsafe {
        let t: libc::itimerval = std::mem::zeroed();
        assert_eq!(libc::setitimer(libc::ITIMER_REAL, &t, null_mut()), 0);
    }
}

/// What the pre-open check says of the store's files as they are.
fn verdict(store: &Path, db: &[u8]) -> Verdict {
    let conf = std::fs::read(store.join("conf")).expect("conf");
    let seg = segment_size_from_conf(&conf).expect("segment size");
    let names: Vec<String> = std::fs::read_dir(store)
        .expect("store dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let from = replay_from(names.iter().map(String::as_str), seg);
    let side = std::fs::read(store.join("commit")).expect("commit file");
    let (acked, _) = key4c_pkcs11::store::commit::decode_side(&side).expect("commit file");
    judge(
        &scan(db, seg, &|_| key4c_pkcs11::store::log_check::Blob::Intact),
        from,
        seg,
        Some(acked),
    )
}

/// A write cut short: a message header (bad checksum, a data kind, 40 bytes announced)
/// with 4 of its 40 bytes, as a process killed inside `pwrite` leaves it.
const TORN: [u8; 12] = [0xde, 0xad, 0xbe, 0xef, 8, 40, 0, 1, 0x55, 0x55, 0x55, 0x55];

/// Writes the store back as `pristine` was, with a torn write at offset `at` of the log.
fn damaged_store(store: &Path, pristine: &std::collections::BTreeMap<String, Vec<u8>>, at: usize) {
    let _ = std::fs::remove_dir_all(store);
    for (name, bytes) in pristine {
        let path = store.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = bytes.clone();
        if name == "db" {
            bytes.resize(bytes.len().max(at + TORN.len()), 0);
            bytes[at..at + TORN.len()].copy_from_slice(&TORN);
        }
        std::fs::write(&path, bytes).unwrap();
    }
    make_private(store);
}

/// The damage the store must recover from on a copy: a torn write just after the newest
/// segment's last message (never acknowledged), which the check calls Suspicious; without
/// signals the store opens whole.
fn torn_tail(
    lib: &Lib,
    store: &Path,
    pristine: &std::collections::BTreeMap<String, Vec<u8>>,
    want: &[Vec<u8>],
) -> usize {
    let db = &pristine["db"];
    let at = log_end(store, db);
    damaged_store(store, pristine, at);
    let damaged = std::fs::read(store.join("db")).unwrap();
    let v = verdict(store, &damaged);
    assert!(matches!(v, Verdict::Suspicious(_)), "a torn tail: {v:?}");
    assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_OK);
    let h = lib.user_session();
    assert_eq!(
        values(h, lib),
        want,
        "a torn tail, recovered without signals"
    );
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    at
}

/// sled's varint (`sled::serialization`), as log_check.rs reads it.
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let first = b[*at];
    let (v, n) = match first {
        0..=240 => (u64::from(first), 1),
        241..=248 => (
            240 + 256 * (u64::from(first) - 241) + u64::from(b[*at + 1]),
            2,
        ),
        249 => (
            2288 + 256 * u64::from(b[*at + 1]) + u64::from(b[*at + 2]),
            3,
        ),
        other => {
            let n = other as usize - 247;
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(&b[*at + 1..*at + 1 + n]);
            (u64::from_le_bytes(le), n + 1)
        }
    };
    *at += n;
    v
}

/// The file offset just after the last message of the log's newest segment.
fn log_end(store: &Path, db: &[u8]) -> usize {
    let conf = std::fs::read(store.join("conf")).expect("conf");
    let seg = segment_size_from_conf(&conf).expect("segment size");
    let s = scan(db, seg, &|_| key4c_pkcs11::store::log_check::Blob::Intact);
    let &(_, base, _) = s.segments.iter().max().expect("a segment");
    let base = base as usize;
    let mut pos = base + 20;
    // Messages: CRC (4), kind (1), length, segment, page ID (varints), body.
    while pos + 32 <= base + seg && pos + 5 < db.len() && db[pos + 4] != 0 {
        let mut at = pos + 5;
        let len = varint(db, &mut at) as usize;
        varint(db, &mut at);
        varint(db, &mut at);
        pos = at + len;
    }
    pos
}

const OBJECTS: usize = 20;

fn value(i: usize) -> Vec<u8> {
    (0..32 * 1024).map(|k| (k * 7 + i * 13) as u8).collect()
}

fn values(h: CK_SESSION_HANDLE, lib: &Lib) -> Vec<Vec<u8>> {
    let mut found = lib.find(h, &[(CKA_CLASS, A::U(CKO_DATA))]);
    found.sort_unstable();
    let mut v: Vec<Vec<u8>> = found.iter().map(|&o| lib.attr(h, o, CKA_VALUE)).collect();
    v.sort();
    v
}

#[test]
fn recovery_and_handover_complete_under_a_signal_storm() {
    const NAME: &str = "recovery_and_handover_complete_under_a_signal_storm";
    // Each round puts the same copy of the store back, as a restore does: not what this test
    // is about (store::rollback).
    isolated_reporting(NAME, "restore_check = false", || {
        if step().as_deref() == Some("other") {
            // The other process: its own storm; takes the store from the parent, writes.
            start_storm();
            let lib = Lib::load();
            lib.init();
            let h = lib.user_session();
            lib.create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_DATA)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_VALUE, A::S(b"from the other process")),
                ],
            )
            .expect("C_CreateObject in the other process");
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            stop_storm();
            assert!(SIGNALS.load(Ordering::Relaxed) > 0, "no signal arrived");
            return;
        }
        let _dog = watchdog(NAME, std::time::Duration::from_secs(300));
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
                    // 32 KiB each: copies long enough for signals to land in them.
                    (CKA_VALUE, A::S(&value(i))),
                ],
            )
            .expect("C_CreateObject");
        }
        let want = values(h, &lib);
        assert_eq!(want.len(), OBJECTS);
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);

        // The store as C_Finalize left it, and where a torn write makes it Suspicious.
        let store = store_dir();
        let pristine = files_under(&store);
        let torn = torn_tail(&lib, &store, &pristine, &want);

        start_storm();
        static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let spammer = spam_sigusr1(&STOP);
        let rounds = scaled(30);
        for round in 0..rounds {
            // The damaged store, again (sled's recovery rewrote the log's tail last round).
            damaged_store(&store, &pristine, torn);
            assert!(
                matches!(
                    verdict(&store, &std::fs::read(store.join("db")).unwrap()),
                    Verdict::Suspicious(_)
                ),
                "round {round}: the store is not on the recovery-on-a-copy path"
            );
            // Recovery on a copy, under the storm: C_Initialize completes with every object.
            assert_rv!(call!(lib, C_Initialize, null_mut()), CKR_OK);
            let h = lib.user_session();
            assert_eq!(values(h, &lib), want, "round {round}");
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        }

        // The handover, under the storm in both processes: this one holds the store (a
        // session open), the other asks for it, writes, and hands it back.
        lib.init();
        let h = lib.user_session();
        assert_eq!(values(h, &lib), want);
        assert!(
            run_step(NAME, "other").success(),
            "the other process failed"
        );
        let mut after = want.clone();
        after.push(b"from the other process".to_vec());
        after.sort();
        assert_eq!(values(h, &lib), after, "after the handover");
        assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
        STOP.store(true, Ordering::Relaxed);
        spammer.join().unwrap();
        stop_storm();
        let n = SIGNALS.load(Ordering::Relaxed);
        assert!(n > 100, "only {n} signals arrived: no storm");
        eprintln!("REPORT {NAME}: {rounds} recoveries on a copy and a handover under {n} signals (SIGALRM every 1 ms, SIGUSR1 every ~20 µs, no SA_RESTART)");
    });
}
