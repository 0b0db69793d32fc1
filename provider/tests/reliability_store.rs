//! Store faults: a bit-flipped or truncated sled log, a read-only store directory, a full disk.
//! Whatever the damage, C_Initialize answers (CKR_OK or CKR_DEVICE_ERROR with a log line) within
//! a time limit, nothing panics or hangs, and a refused store is left as it was. (A store from
//! a newer format version: tests/store.rs.)
//!
//! Every open of a damaged store runs in its own process with a time limit (a hang fails the
//! test instead of stalling it), and reports what it saw on stdout:
//! `RV <code>`, then for an opened store one `OBJ <label> <value hex>` per object.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

/// These tests open copies of one reference store again and again, which is what a restore
/// from a copy looks like (store::rollback): that check is off here.
const COPIES: &str = "restore_check = false";

/// How long one open of a damaged store may take.
const OPEN_LIMIT: Duration = Duration::from_secs(20);

/// Objects of the reference store: (label, value). Data objects, readable by the User.
fn objects() -> Vec<(String, Vec<u8>)> {
    (0..40)
        .map(|i| {
            let label = format!("obj-{i:02}");
            let value: Vec<u8> = (0..64).map(|k| (i * 7 + k * 13) as u8).collect();
            (label, value)
        })
        .collect()
}

/// Provisions the token in the isolated store and adds the reference objects, one durable
/// write each, then closes the module.
fn build_reference_store() {
    let lib = Lib::load();
    lib.init();
    lib.provision();
    let h = lib.user_session();
    for (label, value) in objects() {
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
        .expect("create");
    }
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
}

/// The child side of every open: C_Initialize on `KEY4C_STORE`, and what it finds.
fn open_and_report() {
    let lib = Lib::load();
    let rv = call!(lib, C_Initialize, null_mut());
    println!("\n@@RV {}", ckr_name(rv));
    if rv != CKR_OK {
        return;
    }
    let info = lib.token_info();
    println!(
        "@@TOKEN {} {}",
        text(&info.serialNumber),
        info.flags & CKF_TOKEN_INITIALIZED != 0
    );
    let h = match lib.open(true) {
        Ok(h) => h,
        Err(rv) => {
            println!("@@OPEN {}", ckr_name(rv));
            return;
        }
    };
    let rv = lib.login(h, CKU_USER, USER_PIN);
    println!("@@LOGIN {}", ckr_name(rv));
    let mut t = Tpl::new(&[]);
    let rv = call!(lib, C_FindObjectsInit, h, t.ptr(), 0);
    println!("@@FIND {}", ckr_name(rv));
    if rv == CKR_OK {
        let mut found = vec![0 as CK_OBJECT_HANDLE; 1000];
        let mut n = 0;
        let rv = call!(lib, C_FindObjects, h, found.as_mut_ptr(), 1000, &mut n);
        println!("@@FOUND {} {n}", ckr_name(rv));
        for &o in &found[..n as usize] {
            let (rv, _) = lib.attr_rv(h, o, CKA_CLASS);
            if rv != CKR_OK {
                println!("@@READ {}", ckr_name(rv));
                continue;
            }
            if lib.attr(h, o, CKA_CLASS) != ul(CKO_DATA) {
                continue;
            }
            let label = String::from_utf8_lossy(&lib.attr(h, o, CKA_LABEL)).to_string();
            let value = lib.attr(h, o, CKA_VALUE);
            println!("@@OBJ {label} {}", hex(&value));
        }
    }
    let rv = call!(lib, C_Finalize, null_mut());
    println!("@@FINALIZE {}", ckr_name(rv));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What one open of a store saw.
#[derive(Debug)]
struct Seen {
    rv: String,
    /// Serial number and whether the token is initialised.
    token: Option<(String, bool)>,
    objects: BTreeMap<String, String>,
    stdout: String,
    log: String,
}

/// Opens `store` in a child process (within OPEN_LIMIT).
fn open_in_child(test: &str, store: &Path) -> Result<Seen, String> {
    open_in_child_as(test, "open", store)
}

/// [`open_in_child`] as the step `step` of the test.
fn open_in_child_as(test: &str, step: &str, store: &Path) -> Result<Seen, String> {
    // Beside the store, in a directory any user may write (the read-only test drops root).
    let logs = store.parent().unwrap().join("logs");
    let _ = std::fs::create_dir_all(&logs);
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777));
    }
    let log = logs.join(format!(
        "{}.log",
        store.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&log);
    let out = run_step_limited(
        test,
        step,
        &[
            ("KEY4C_STORE", store.display().to_string()),
            ("KEY4C_LOG_FILE", log.display().to_string()),
        ],
        OPEN_LIMIT,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "the opening process died ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut seen = Seen {
        rv: String::new(),
        token: None,
        objects: BTreeMap::new(),
        stdout: stdout.clone(),
        log: std::fs::read_to_string(&log).unwrap_or_default(),
    };
    for line in stdout.lines() {
        let Some((_, line)) = line.split_once("@@") else {
            continue;
        };
        let mut parts = line.split(' ');
        match parts.next() {
            Some("RV") => seen.rv = parts.next().unwrap_or("").to_string(),
            Some("TOKEN") => {
                let serial = parts.next().unwrap_or("").to_string();
                seen.token = Some((serial, parts.next() == Some("true")));
            }
            Some("OBJ") => {
                let label = parts.next().unwrap_or("").to_string();
                let value = parts.next().unwrap_or("").to_string();
                seen.objects.insert(label, value);
            }
            _ => {}
        }
    }
    Ok(seen)
}

/// Copies the store `from` to `to`.
fn copy_store(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for (rel, bytes) in files_under(from) {
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
    make_private(to);
}

/// The files of a store that hold its data: everything but sled's snapshot index and the
/// holder file, which are rewritten on every open by design.
fn data_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("snap.") && k != key4c_pkcs11::store::HOLDER_FILE)
        .collect()
}

/// Where the log file's records end: the last nonzero byte of `db` (sled preallocates).
fn used_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

/// The outcome of one damaged open, classified.
#[derive(Debug, Default)]
struct Tally {
    /// The reference token's serial number.
    serial: String,
    /// The log line of one refusal.
    sample_log: String,
    refused: usize,
    refused_modified: Vec<String>,
    intact: usize,
    lost: Vec<String>,
    /// Opened as a brand-new, uninitialised token (another serial): everything gone.
    replaced: Vec<String>,
    /// Opened (CKR_OK) with the data files changed by the open.
    rewritten: usize,
    altered: Vec<String>,
    failures: Vec<String>,
}

impl Tally {
    fn add(
        &mut self,
        what: &str,
        store: &Path,
        before: &BTreeMap<String, Vec<u8>>,
        seen: Result<Seen, String>,
    ) {
        let reference: BTreeMap<String, String> =
            objects().into_iter().map(|(l, v)| (l, hex(&v))).collect();
        match seen {
            Err(e) => self.failures.push(format!("{what}: {e}")),
            Ok(seen) if seen.rv == "CKR_DEVICE_ERROR" => {
                self.refused += 1;
                if !seen.log.contains(&store.display().to_string()) {
                    self.failures.push(format!(
                        "{what}: refused without a log line naming the store: {:?}",
                        seen.log
                    ));
                }
                let after = data_files(store);
                let changed: std::collections::BTreeSet<&String> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|k| before.get(*k) != after.get(*k))
                    .collect();
                if !changed.is_empty() {
                    self.refused_modified.push(format!("{what}: {changed:?}"));
                }
                if std::env::var_os("KEY4C_TEST_VERBOSE").is_some() {
                    eprintln!(
                        "REPORT   refused {what}: {}",
                        seen.log.lines().last().unwrap_or("")
                    );
                }
                if self.sample_log.is_empty() {
                    self.sample_log = format!("{what}: {}", seen.log.lines().last().unwrap_or(""));
                }
            }
            Ok(seen) if seen.rv == "CKR_OK" => {
                if data_files(store) != *before {
                    self.rewritten += 1;
                }
                if let Some((serial, initialized)) = &seen.token {
                    if !initialized || *serial != self.serial {
                        self.replaced.push(format!(
                            "{what}: serial {serial}, initialised {initialized}"
                        ));
                    }
                }
                let missing: Vec<&String> = reference
                    .keys()
                    .filter(|k| !seen.objects.contains_key(*k))
                    .collect();
                let wrong: Vec<&String> = seen
                    .objects
                    .iter()
                    .filter(|(k, v)| reference.get(*k) != Some(v))
                    .map(|(k, _)| k)
                    .collect();
                if !wrong.is_empty() {
                    self.altered.push(format!("{what}: {wrong:?}"));
                }
                if missing.is_empty() {
                    self.intact += 1;
                } else {
                    self.lost.push(format!(
                        "{what}: {} of {} objects gone",
                        missing.len(),
                        reference.len()
                    ));
                }
            }
            Ok(seen) => self.failures.push(format!(
                "{what}: C_Initialize returned {}:\n{}",
                seen.rv, seen.stdout
            )),
        }
    }
}

/// One bit flipped at evenly spread offsets of the log (and of `conf`), each opened in its
/// own process. Findings are printed as a table; the test fails on a hang, a crash, a code
/// other than CKR_OK / CKR_DEVICE_ERROR, a refusal without a log line, a changed value, an
/// object silently missing (sled's recovery stops at the first bad checksum and drops every
/// later write: key4c's pre-open check must refuse that), or a refused store that changed.
/// Builds the reference store in two healthy states: as the last process left it (A), and
/// after one more open and close (B: sled has rewritten its snapshot index); damage behaves
/// differently in each. Returns (A, B, a scratch path for damaged copies, a tally that knows
/// the reference token's serial).
fn reference_stores(name: &str) -> (PathBuf, PathBuf, PathBuf, Tally) {
    build_reference_store();
    let state_b = store_dir();
    let state_a = state_b.parent().unwrap().join("state-a");
    copy_store(&state_b, &state_a);
    let work = state_b.parent().unwrap().join("damaged");
    let reference = open_in_child(name, &state_b).expect("open the reference store");
    assert_eq!(
        reference.objects.len(),
        objects().len(),
        "{}",
        reference.stdout
    );
    let tally = Tally {
        serial: reference.token.expect("token info").0,
        ..Tally::default()
    };
    (state_a, state_b, work, tally)
}

#[test]
fn bit_flips_in_the_store() {
    const NAME: &str = "bit_flips_in_the_store";
    if step().as_deref() == Some("open") {
        return open_and_report();
    }
    isolated_reporting(NAME, COPIES, || {
        let (state_a, state_b, work, mut tally) = reference_stores(NAME);
        let mut rng = Rng::new(test_seed(NAME));
        let flips = scaled(48);
        let start = Instant::now();
        for i in 0..flips {
            let (state, pristine) = if i % 2 == 0 {
                ("A", &state_a)
            } else {
                ("B", &state_b)
            };
            let db = std::fs::read(pristine.join("db")).unwrap();
            let used = used_len(&db);
            // Evenly spread over the used part of the log, jittered; the last few hit conf.
            let (file, offset) = if i + 2 >= flips {
                let conf = std::fs::read(pristine.join("conf")).unwrap();
                ("conf", rng.below(conf.len() as u64) as usize)
            } else {
                let span = used / flips;
                ("db", i * span + rng.below(span.max(1) as u64) as usize)
            };
            let bit = rng.below(8) as u8;
            copy_store(pristine, &work);
            let path = work.join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[offset] ^= 1 << bit;
            std::fs::write(&path, &bytes).unwrap();
            let before = data_files(&work);
            let seen = open_in_child(NAME, &work);
            tally.add(
                &format!("{state}: {file}[{offset}] bit {bit}"),
                &work,
                &before,
                seen,
            );
        }
        report(NAME, flips, &tally, start);
    });
}

/// The log cut at evenly spread lengths (a torn tail, a lost page).
#[test]
fn truncated_store() {
    const NAME: &str = "truncated_store";
    if step().as_deref() == Some("open") {
        return open_and_report();
    }
    isolated_reporting(NAME, COPIES, || {
        build_reference_store();
        let state_b = store_dir();
        let state_a = state_b.parent().unwrap().join("state-a");
        copy_store(&state_b, &state_a);
        let work = state_b.parent().unwrap().join("damaged");
        let mut tally = Tally::default();
        let reference = open_in_child(NAME, &state_b).expect("open the reference store");
        assert_eq!(
            reference.objects.len(),
            objects().len(),
            "{}",
            reference.stdout
        );
        tally.serial = reference.token.expect("token info").0;
        let cuts = scaled(16);
        let start = Instant::now();
        for i in 0..cuts {
            let (state, pristine) = if i % 2 == 0 {
                ("A", &state_a)
            } else {
                ("B", &state_b)
            };
            let used = used_len(&std::fs::read(pristine.join("db")).unwrap());
            let len = used * i / cuts;
            copy_store(pristine, &work);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(work.join("db"))
                .unwrap();
            f.set_len(len as u64).unwrap();
            drop(f);
            let before = data_files(&work);
            let seen = open_in_child(NAME, &work);
            tally.add(
                &format!("{state}: db cut to {len} of {used}"),
                &work,
                &before,
                seen,
            );
        }
        report(NAME, cuts, &tally, start);
    });
}

fn report(name: &str, n: usize, tally: &Tally, start: Instant) {
    eprintln!(
        "REPORT {name}: {n} damaged stores in {:.1}s: {} refused (CKR_DEVICE_ERROR), {} opened intact, \
         {} opened with objects missing ({} of them as a new empty token with another serial), \
         {} opened and rewritten by sled, {} refused but modified by sled",
        start.elapsed().as_secs_f64(),
        tally.refused,
        tally.intact,
        tally.lost.len(),
        tally.replaced.len(),
        tally.rewritten,
        tally.refused_modified.len()
    );
    if !tally.sample_log.is_empty() {
        eprintln!("REPORT   a refusal's log line: {}", tally.sample_log);
    }
    for r in &tally.replaced {
        eprintln!("REPORT   replaced by a new token: {r}");
    }
    for l in &tally.lost {
        eprintln!("REPORT   silent loss: {l}");
    }
    for m in &tally.refused_modified {
        eprintln!("REPORT   refused but modified: {m}");
    }
    assert!(tally.failures.is_empty(), "{}", tally.failures.join("\n"));
    assert!(
        tally.altered.is_empty(),
        "objects read back with other values: {:?}",
        tally.altered
    );
    assert!(
        tally.lost.is_empty(),
        "damaged stores opened with objects silently missing: {:?}",
        tally.lost
    );
    assert!(
        tally.replaced.is_empty(),
        "damaged stores silently replaced by new tokens: {:?}",
        tally.replaced
    );
    assert!(
        tally.refused_modified.is_empty(),
        "refused stores were modified: {:?}",
        tally.refused_modified
    );
}

/// A store directory the process may not write: C_Initialize refuses it with
/// CKR_DEVICE_ERROR and a log line, and nothing in it changes. Run as an unprivileged user
/// that owns the store when the tests run as root (root ignores permission bits).
#[test]
fn read_only_store_is_refused() {
    const NAME: &str = "read_only_store_is_refused";
    if step().as_deref() == Some("open") {
        return open_and_report();
    }
    if step().as_deref() == Some("open-unprivileged") {
        // Drop root: permission bits bind only other users.
        unsafe {
            if libc::geteuid() == 0 {
                assert_eq!(libc::setgid(65534), 0, "setgid");
                assert_eq!(libc::setuid(65534), 0, "setuid");
            }
        }
        return open_and_report();
    }
    isolated_reporting(NAME, COPIES, || {
        build_reference_store();
        let store = store_dir();
        let parent = store.parent().unwrap();
        let before = data_files(&store);
        // The unprivileged child reaches the store through its parent and owns it (a private
        // store is used by its owner only); nobody may write it.
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let owner = |uid: &str| {
            let ok = std::process::Command::new("chown")
                .args(["-R", uid])
                .arg(&store)
                .status()
                .unwrap()
                .success();
            // Only root may give a file away; as another user the store stays its own.
            assert!(ok || unsafe { libc::geteuid() } != 0, "chown -R {uid}");
        };
        owner("65534:65534");
        set_mode_recursive(&store, 0o500, 0o400);
        let seen = open_in_child_as(NAME, "open-unprivileged", &store);
        owner("0:0");
        set_mode_recursive(&store, 0o700, 0o600);
        let seen = seen.expect("the open finished");
        assert_eq!(seen.rv, "CKR_DEVICE_ERROR", "{}", seen.stdout);
        assert!(
            seen.log.contains(&store.display().to_string()),
            "log: {}",
            seen.log
        );
        assert_eq!(before, data_files(&store), "the read-only store changed");
        // And it opens again once writable.
        let seen = open_in_child(NAME, &store).expect("open");
        assert_eq!(seen.rv, "CKR_OK", "{}", seen.stdout);
        assert_eq!(seen.objects.len(), objects().len());
    });
}

fn set_mode_recursive(dir: &Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            set_mode_recursive(&p, dir_mode, file_mode);
        } else {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file_mode)).unwrap();
        }
    }
}

/// A full disk: the store on a 2 MiB tmpfs, filled up while the token works. Every call
/// answers (writes fail with CKR_DEVICE_ERROR), nothing panics, a PIN whose attempt cannot be
/// counted is not tried (pin_trust.rs has the exact counts), and once space is back the store
/// opens with every object that was acknowledged.
#[test]
fn disk_full() {
    const NAME: &str = "disk_full";
    match step().as_deref() {
        Some("fill") => return fill_the_disk(),
        Some("open") => return open_and_report(),
        _ => {}
    }
    isolated_reporting(NAME, COPIES, || {
        let mnt = store_dir().parent().unwrap().join("small");
        let Some(fs) = SmallFs::mount_required(&mnt, "2m") else {
            return;
        };
        let store = fs.path.join("store");
        let ack = fs.path.parent().unwrap().join("acked");
        let log = fs.path.parent().unwrap().join("fill.log");
        let out = run_step_limited(
            NAME,
            "fill",
            &[
                ("KEY4C_STORE", store.display().to_string()),
                ("KEY4C_TEST_ACK", ack.display().to_string()),
                ("KEY4C_LOG_FILE", log.display().to_string()),
            ],
            Duration::from_secs(120),
        )
        .expect("the filling process finished");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "filling the disk: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "REPORT disk_full: {}",
            stdout
                .lines()
                .filter_map(|l| l.find("FULL ").map(|i| &l[i..]))
                .collect::<Vec<_>>()
                .join("; ")
        );
        // The failure is one sentence a user can act on, never a debug dump of error types.
        let log = std::fs::read_to_string(&log).unwrap();
        let full = format!("no space left on device while writing {}", store.display());
        assert!(log.contains(&full), "{log}");
        assert!(!log.contains("Custom {") && !log.contains("kind:"), "{log}");
        // Space back: the store opens and has every acknowledged object.
        let acked = std::fs::read_to_string(&ack).unwrap_or_default();
        let free = fs.path.join("filler");
        let _ = std::fs::remove_file(&free);
        let seen = open_in_child(NAME, &store).expect("open after the disk was full");
        assert_eq!(seen.rv, "CKR_OK", "{}\n{}", seen.stdout, seen.log);
        let mut n = 0;
        for line in acked.lines() {
            let (label, value) = line.split_once(' ').unwrap();
            assert_eq!(
                seen.objects.get(label),
                Some(&value.to_string()),
                "acknowledged object {label} after a full disk"
            );
            n += 1;
        }
        assert!(n > 0, "no object was acknowledged before the disk filled");
        drop(fs);
    });
}

/// Child of disk_full: makes objects until writes fail, then probes every writing call.
fn fill_the_disk() {
    use std::io::Write;
    let ack_path = std::env::var("KEY4C_TEST_ACK").unwrap();
    let store = PathBuf::from(std::env::var("KEY4C_STORE").unwrap());
    let lib = Lib::load();
    lib.init();
    lib.provision();
    let h = lib.user_session();
    let mut ack = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ack_path)
        .unwrap();
    // Leave little room: a filler file takes most of what is free.
    let filler = store.parent().unwrap().join("filler");
    let free = unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        let c = std::ffi::CString::new(store.parent().unwrap().display().to_string()).unwrap();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
        s.f_bavail as u64 * s.f_frsize as u64
    };
    let _ = std::fs::write(&filler, vec![0x5a; free.saturating_sub(64 * 1024) as usize]);
    let mut first_failure = None;
    let mut made = 0;
    for i in 0..10_000 {
        let label = format!("full-{i:04}");
        let value = vec![(i % 251) as u8; 200];
        let rv = lib
            .create(
                h,
                &[
                    (CKA_CLASS, A::U(CKO_DATA)),
                    (CKA_TOKEN, A::B(true)),
                    (CKA_PRIVATE, A::B(true)),
                    (CKA_LABEL, A::S(label.as_bytes())),
                    (CKA_VALUE, A::S(&value)),
                ],
            )
            .err()
            .unwrap_or(CKR_OK);
        expect_rv(
            "C_CreateObject on a filling disk",
            rv,
            &[CKR_OK, CKR_DEVICE_ERROR],
        );
        if rv == CKR_OK {
            writeln!(ack, "{label} {}", hex(&value)).unwrap();
            ack.sync_all().unwrap();
            made += 1;
        } else {
            first_failure = Some(i);
            break;
        }
    }
    let Some(at) = first_failure else {
        panic!("the disk never filled");
    };
    println!("FULL after {made} objects (object {at} failed)");
    // Every writing call answers with a code; reads go on.
    let mut pub_t = Tpl::new(&[(CKA_TOKEN, A::B(true)), (CKA_EC_PARAMS, A::S(P256))]);
    let mut priv_t = Tpl::new(&[(CKA_TOKEN, A::B(true))]);
    let mut m = CK_MECHANISM {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (mut p, mut q) = (0, 0);
    let rv = call!(
        lib,
        C_GenerateKeyPair,
        h,
        &mut m,
        pub_t.ptr(),
        pub_t.len(),
        priv_t.ptr(),
        priv_t.len(),
        &mut p,
        &mut q
    );
    expect_rv(
        "C_GenerateKeyPair on a full disk",
        rv,
        &[CKR_OK, CKR_DEVICE_ERROR],
    );
    println!("FULL keygen {}", ckr_name(rv));
    // A wrong PIN on a full disk: count first, verify second. The attempt cannot be counted
    // durably, so the PIN is not tried (CKR_DEVICE_ERROR) and nothing is counted, in the store
    // or in memory; were it counted, it is CKR_PIN_INCORRECT and shows.
    let h2 = lib.open_rw();
    assert_rv!(lib.logout(h), CKR_OK);
    let before = lib.flags() & CKF_USER_PIN_COUNT_LOW;
    assert_eq!(before, 0);
    let rv = lib.login(h2, CKU_USER, WRONG_PIN);
    expect_rv(
        "C_Login with a wrong PIN on a full disk",
        rv,
        &[CKR_PIN_INCORRECT, CKR_DEVICE_ERROR],
    );
    println!("FULL wrong login {}", ckr_name(rv));
    assert_eq!(
        lib.flags() & CKF_USER_PIN_COUNT_LOW != 0,
        rv == CKR_PIN_INCORRECT,
        "the flags do not show what the store holds"
    );
    // The right PIN: not tried either when its attempt cannot be counted (CKR_DEVICE_ERROR,
    // not logged in).
    let rv = lib.login(h2, CKU_USER, USER_PIN);
    expect_rv(
        "C_Login with the right PIN on a full disk",
        rv,
        &[CKR_OK, CKR_DEVICE_ERROR],
    );
    println!("FULL right login {}", ckr_name(rv));
    if rv == CKR_OK {
        assert!(!lib.find(h2, &[(CKA_CLASS, A::U(CKO_DATA))]).is_empty());
    } else {
        assert_eq!(lib.state(h2), CKS_RW_PUBLIC_SESSION);
    }
    let rv = call!(lib, C_Finalize, null_mut());
    expect_rv("C_Finalize on a full disk", rv, &[CKR_OK]);
}

/// DER OID of P-256.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Two bits flipped per store: one in the first 64 bytes of the log (sled's segment header and
/// first message) or anywhere in it, the other anywhere in the log or in sled's snapshot
/// index. A flipped segment header once made sled's `Tree::len` loop forever on the pages it
/// could no longer read (the open hung); the same classification as [`bit_flips_in_the_store`].
#[test]
fn two_bit_flips_in_the_store() {
    const NAME: &str = "two_bit_flips_in_the_store";
    if step().as_deref() == Some("open") {
        return open_and_report();
    }
    isolated_reporting(NAME, COPIES, || {
        let (state_a, state_b, work, mut tally) = reference_stores(NAME);
        let mut rng = Rng::new(test_seed(NAME));
        let n = scaled(24);
        let start = Instant::now();
        for i in 0..n {
            let (state, pristine) = if i % 2 == 0 {
                ("A", &state_a)
            } else {
                ("B", &state_b)
            };
            copy_store(pristine, &work);
            let mut what = String::new();
            for flip in 0..2 {
                let snap = std::fs::read_dir(&work)
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .find(|n| n.starts_with("snap."));
                let file = match (flip, &snap) {
                    (1, Some(snap)) if rng.below(4) == 0 => snap.clone(),
                    _ => "db".to_string(),
                };
                let path = work.join(&file);
                let mut bytes = std::fs::read(&path).unwrap();
                let used = if file == "db" {
                    used_len(&bytes)
                } else {
                    bytes.len()
                };
                let offset = if flip == 0 && i % 3 != 2 {
                    rng.below(64) as usize
                } else {
                    rng.below(used as u64) as usize
                };
                let bit = rng.below(8) as u8;
                bytes[offset] ^= 1 << bit;
                std::fs::write(&path, &bytes).unwrap();
                what += &format!(" {file}[{offset}] bit {bit}");
            }
            let before = data_files(&work);
            let seen = open_in_child(NAME, &work);
            tally.add(&format!("{state}:{what}"), &work, &before, seen);
        }
        report(NAME, n, &tally, start);
    });
}

/// What a crash leaves after the last acknowledged write (a torn, unacknowledged write at the
/// tail of the log) is not damage: the store opens with every object (key4c lets sled recover
/// a copy first, then the store), and sled cuts the tail.
#[test]
fn torn_tail_after_the_last_acknowledged_write_opens() {
    const NAME: &str = "torn_tail_after_the_last_acknowledged_write_opens";
    if step().as_deref() == Some("open") {
        return open_and_report();
    }
    isolated_reporting(NAME, COPIES, || {
        build_reference_store();
        let store = store_dir();
        let mut rng = Rng::new(test_seed(NAME));
        let n = scaled(6);
        for i in 0..n {
            let work = store.parent().unwrap().join(format!("torn-{i}"));
            copy_store(&store, &work);
            let path = work.join("db");
            let mut db = std::fs::read(&path).unwrap();
            // Past the end of the last message (which may end in zero bytes), a partial one.
            let at = used_len(&db) + 16;
            let len = 8 + rng.below(200) as usize;
            if db.len() < at + len {
                db.resize(at + len, 0);
            }
            for b in &mut db[at..at + len] {
                *b = rng.below(256) as u8;
            }
            std::fs::write(&path, &db).unwrap();
            let seen = open_in_child(NAME, &work).expect("open a store with a torn tail");
            assert_eq!(seen.rv, "CKR_OK", "{}\n{}", seen.stdout, seen.log);
            assert_eq!(seen.objects.len(), objects().len(), "{}", seen.stdout);
        }
        eprintln!("REPORT {NAME}: {n} stores with a torn tail opened with every object");
    });
}

/// The log rolled back to an older copy (a restored backup, a disk that lost its last writes)
/// while the commit file is current: the acknowledged writes it lacks — here a counted PIN
/// failure — are missing, and the store is refused rather than silently forgetting them. A
/// missing or damaged commit file is refused too; an older one (a crash between sled's flush
/// and the commit file's write) is fine.
#[test]
fn rolled_back_log_is_refused() {
    const NAME: &str = "rolled_back_log_is_refused";
    match step().as_deref() {
        Some("open") => return open_and_report(),
        Some("fail") => {
            let lib = Lib::load();
            lib.init();
            let h = lib.open_rw();
            assert_rv!(lib.login(h, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
            assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
            return;
        }
        _ => {}
    }
    isolated_reporting(NAME, COPIES, || {
        use key4c_pkcs11::store::commit::COMMIT_FILE;
        build_reference_store();
        let store = store_dir();
        let parent = store.parent().unwrap().to_path_buf();
        let old = parent.join("old");
        copy_store(&store, &old);
        let out = run_step_limited(
            NAME,
            "fail",
            &[("KEY4C_STORE", store.display().to_string())],
            OPEN_LIMIT,
        )
        .expect("the failed login finished");
        assert!(out.status.success(), "{out:?}");
        let newer = parent.join("newer");
        copy_store(&store, &newer);
        let refused = |dir: &Path, expect: &str| {
            let before = data_files(dir);
            let seen = open_in_child(NAME, dir).expect("open");
            assert_eq!(seen.rv, "CKR_DEVICE_ERROR", "{}\n{}", seen.stdout, seen.log);
            assert!(
                seen.log.contains(&dir.display().to_string()) && seen.log.contains(expect),
                "expected a log line naming the store and {expect:?}: {}",
                seen.log
            );
            assert_eq!(before, data_files(dir), "a refused store changed");
            eprintln!("REPORT {NAME}: {}", seen.log.lines().last().unwrap_or(""));
        };
        // sled's files rolled back, the commit file current.
        let rolled = parent.join("rolled");
        copy_store(&old, &rolled);
        std::fs::copy(newer.join(COMMIT_FILE), rolled.join(COMMIT_FILE)).unwrap();
        refused(&rolled, "acknowledged write is missing");
        // No commit file.
        let missing = parent.join("missing");
        copy_store(&newer, &missing);
        std::fs::remove_file(missing.join(COMMIT_FILE)).unwrap();
        refused(&missing, COMMIT_FILE);
        // Garbage in the commit file.
        let garbage = parent.join("garbage");
        copy_store(&newer, &garbage);
        std::fs::write(garbage.join(COMMIT_FILE), b"not a commit file").unwrap();
        refused(&garbage, "commit file");
        // An older commit file: the newer log covers it.
        let behind = parent.join("behind");
        copy_store(&newer, &behind);
        std::fs::copy(old.join(COMMIT_FILE), behind.join(COMMIT_FILE)).unwrap();
        let seen = open_in_child(NAME, &behind).expect("open");
        assert_eq!(seen.rv, "CKR_OK", "{}\n{}", seen.stdout, seen.log);
        assert_eq!(seen.objects.len(), objects().len());
    });
}
