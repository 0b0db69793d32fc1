//! Opening a damaged store: C_Initialize on a store directory whose files are fuzzed bytes,
//! a provisioned store with fuzzed byte-level damage (bit flips, overwrites, truncation,
//! deleted files), or one whose records (sled framing intact) hold fuzzed values.
//!
//! Properties:
//! - C_Initialize returns CKR_OK or CKR_DEVICE_ERROR, never CKR_GENERAL_ERROR (a panic that
//!   escaped the store's own guard) and never crashes the process;
//! - a refused store is left as it was: every file that existed keeps its bytes (sled's
//!   snapshot index, the holder file and a `conf` too short to hold sled's settings aside);
//! - an opened one can be used: token info, a session, a User login, a search, reads — every
//!   call returns a PKCS#11 code, CKR_DEVICE_ERROR allowed for damaged records;
//! - no silent loss: when a store with byte-level damage opens while its commit file is the
//!   template's (so the store knows what it acknowledged: every object of the template), every
//!   object record of the template is in the store, byte for byte, and the User's search finds
//!   as many objects as the template holds.
//!
//! sled itself panics on some damage and key4c's Store::open catches that by design: this
//! target's panic hook lets panics raised inside sled unwind (to that guard) and aborts on any
//! other.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::Once;

use key4c_fuzz::gen::Reader;
use key4c_fuzz::*;
use key4c_pkcs11::store::records::{decode, TokenRecord};
use libfuzzer_sys::fuzz_target;

/// Names a raw-bytes store may have (sled's files, key4c's holder file).
const NAMES: [&str; 6] = [
    "conf",
    "db",
    "snap.0000000000000000",
    "snap.00000000000000a0",
    "blobs/1",
    "key4c.holder",
];

fn panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_sled = info.location().is_some_and(|l| {
                l.file().contains("/sled-") || l.file().contains("/crossbeam-epoch-")
            });
            if !in_sled {
                default(info);
                std::process::abort();
            }
        }));
    });
}

fn snapshot(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_name() == key4c_pkcs11::store::QUEUE_DIR {
            // Who waits for the store (its ticket counter moves at every open): no data.
        } else if entry.path().is_dir() {
            snapshot(&entry.path(), &format!("{name}/"), out);
        } else if !name.starts_with("snap.") && name != key4c_pkcs11::store::HOLDER_FILE {
            out.insert(name, std::fs::read(entry.path()).unwrap_or_default());
        }
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path());
            }
        }
    }
    v.sort();
    v
}

fn copy_template(to: &Path) {
    let from = &env().template;
    for f in files(from) {
        let rel = f.strip_prefix(from).expect("inside");
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        key4c_pkcs11::eintr::copy(&f, &target).expect("copy");
    }
}

/// Byte-level damage to the template's files.
fn damage_bytes(r: &mut Reader, store: &Path) {
    copy_template(store);
    let n = r.u8() % 8 + 1;
    for _ in 0..n {
        let all = files(store);
        if all.is_empty() {
            return;
        }
        let f = &all[r.u8() as usize % all.len()];
        let mut bytes = std::fs::read(f).unwrap_or_default();
        let at = |r: &mut Reader, len: usize| {
            if len == 0 {
                0
            } else {
                (r.u16() as usize | ((r.u8() as usize) << 16)) % len
            }
        };
        match r.u8() % 6 {
            0 => {
                let i = at(r, bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << (r.u8() % 8);
                }
            }
            1 => {
                let i = at(r, bytes.len());
                for (k, v) in r.bytes().into_iter().enumerate() {
                    if let Some(b) = bytes.get_mut(i + k) {
                        *b = v;
                    }
                }
            }
            2 => {
                let i = at(r, bytes.len());
                bytes.truncate(i);
            }
            3 => {
                let i = at(r, bytes.len());
                let n = r.u16() as usize;
                let end = (i + n).min(bytes.len());
                bytes[i..end].fill(0);
            }
            4 => bytes.extend_from_slice(&r.bytes()),
            _ => {
                let _ = std::fs::remove_file(f);
                continue;
            }
        }
        std::fs::write(f, bytes).expect("write");
    }
}

/// Record-level damage through sled itself: the framing stays valid, the values do not.
fn damage_records(r: &mut Reader, store: &Path) {
    copy_template(store);
    let db = match sled::open(store) {
        Ok(db) => db,
        Err(e) => panic!("the template store does not open: {e}"),
    };
    let n = r.u8() % 4 + 1;
    for _ in 0..n {
        let tree = match r.u8() % 3 {
            0 => (*db).clone(),
            1 => db.open_tree(b"objects").expect("tree"),
            _ => db.open_tree(b"audit").expect("tree"),
        };
        let keys: Vec<Vec<u8>> = tree.iter().keys().flatten().map(|k| k.to_vec()).collect();
        let key = match r.u8() % 4 {
            0 => r.bytes(),
            _ if !keys.is_empty() => keys[r.u8() as usize % keys.len()].clone(),
            _ => b"token".to_vec(),
        };
        match r.u8() % 4 {
            0 => {
                tree.remove(key).expect("remove");
            }
            1 => {
                // Flip bits of the stored value.
                let mut v = tree
                    .get(&key)
                    .ok()
                    .flatten()
                    .map(|v| v.to_vec())
                    .unwrap_or_default();
                if !v.is_empty() {
                    let i = r.u16() as usize % v.len();
                    v[i] ^= r.u8() | 1;
                }
                tree.insert(key, v).expect("insert");
            }
            _ => {
                tree.insert(key, r.long_bytes(4096)).expect("insert");
            }
        }
    }
    db.flush().expect("flush");
    drop(db);
    wait_released(store);
}

/// Raw files, every byte from the fuzzer.
fn raw_files(r: &mut Reader, store: &Path) {
    std::fs::create_dir_all(store).expect("mkdir");
    let n = r.u8() % 4 + 1;
    for _ in 0..n {
        let name = NAMES[r.u8() as usize % NAMES.len()];
        let path = store.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, r.long_bytes(1 << 16)).expect("write");
    }
}

/// Object records: key -> value, as sled holds them.
type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// The `objects` tree of a store, read with sled on a copy (sled writes when it opens).
fn objects_of(store: &Path) -> Records {
    let tmp = tempfile::tempdir().expect("temp dir");
    for f in files(store) {
        let rel = f.strip_prefix(store).expect("inside");
        let name = rel.to_string_lossy();
        if name.ends_with(".sock") {
            continue;
        }
        let target = tmp.path().join(rel);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        key4c_pkcs11::eintr::copy(&f, &target).expect("copy");
    }
    let db = sled::Config::new()
        .path(tmp.path())
        .open()
        .expect("sled opens a store key4c opened");
    let tree = db.open_tree(b"objects").expect("objects tree");
    let out = tree
        .iter()
        .map(|e| {
            let (k, v) = e.expect("an object record");
            (k.to_vec(), v.to_vec())
        })
        .collect();
    drop(tree);
    drop(db);
    out
}

/// The template's object records and its commit file (read once).
fn reference() -> &'static (Records, Vec<u8>) {
    static REF: std::sync::OnceLock<(Records, Vec<u8>)> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        let t = &env().template;
        let objects = objects_of(t);
        assert!(!objects.is_empty(), "the template has no objects");
        let commit = std::fs::read(t.join(key4c_pkcs11::store::commit::COMMIT_FILE))
            .expect("the template's commit file");
        (objects, commit)
    })
}

/// Uses an opened store a little; returns how many objects the User's search found (`None`
/// when a call on the way failed, as it may on damaged records).
fn probe() -> Option<usize> {
    let mut info = CK_TOKEN_INFO::default();
    let rv = call!(C_GetTokenInfo, 0, &mut info);
    check_damaged("C_GetTokenInfo", rv);
    let mut h = 0;
    let rv = call!(
        C_OpenSession,
        0,
        CKF_SERIAL_SESSION | CKF_RW_SESSION,
        null_mut(),
        None,
        &mut h
    );
    check_damaged("C_OpenSession", rv);
    if rv != CKR_OK {
        return None;
    }
    // (A tampered KDF iteration count is filtered out before: see slow_kdf.)
    let rv = login(h, CKU_USER, USER_PIN);
    check_damaged("C_Login", rv);
    let logged_in = rv == CKR_OK;
    let mut t = Template::default();
    let rv = call!(C_FindObjectsInit, h, t.ptr(), t.len());
    check_damaged("C_FindObjectsInit", rv);
    let mut count = None;
    if rv == CKR_OK {
        let mut found = [0 as CK_OBJECT_HANDLE; 32];
        let mut n = 0;
        let rv = call!(C_FindObjects, h, found.as_mut_ptr(), 32, &mut n);
        check_damaged("C_FindObjects", rv);
        if rv == CKR_OK && logged_in {
            count = Some(n as usize);
        }
        let _ = call!(C_FindObjectsFinal, h);
        for &o in &found[..n as usize] {
            for ty in [
                CKA_LABEL,
                CKA_VALUE,
                CKA_EC_POINT,
                CKA_MODULUS,
                CKA_PRIVATE_EXPONENT,
            ] {
                let mut out = Out::with_len(1024);
                let mut a = CK_ATTRIBUTE {
                    type_: ty,
                    pValue: out.ptr() as CK_VOID_PTR,
                    ulValueLen: 1024,
                };
                let rv = call!(C_GetAttributeValue, h, o, &mut a, 1);
                check_damaged("C_GetAttributeValue", rv);
                out.ul = a.ulValueLen;
                out.check(
                    "C_GetAttributeValue",
                    if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
                        CKR_ATTRIBUTE_SENSITIVE
                    } else {
                        rv
                    },
                );
            }
            let mut m = Mech::plain(CKM_ECDSA);
            let rv = call!(C_SignInit, h, m.ptr(), o);
            check_damaged("C_SignInit", rv);
        }
    }
    count
}

/// On a damaged store CKR_DEVICE_ERROR is a fair answer; a panic or a non-PKCS#11 code is not.
fn check_damaged(what: &str, rv: CK_RV) {
    if rv != CKR_DEVICE_ERROR {
        check_rv(what, rv);
    }
}

/// Whether the store's token record asks for a slow KDF (a tampered iteration count).
fn slow_kdf(store: &Path) -> bool {
    let Ok(db) = sled::Config::new().path(store).open() else {
        return false;
    };
    let slow = db
        .get(b"token")
        .ok()
        .flatten()
        .and_then(|v| decode::<TokenRecord>(&v).ok())
        .is_some_and(|t| {
            [&t.so, &t.user].iter().any(|p| {
                p.wrapped_master_key
                    .as_ref()
                    .is_some_and(|w| w.iterations > 100_000)
            })
        });
    drop(db);
    wait_released(store);
    slow
}

fuzz_target!(|data: &[u8]| {
    let store = env().store.clone();
    panic_hook();
    let _ = call!(C_Finalize, null_mut());
    wait_released(&store);
    let _ = std::fs::remove_dir_all(&store);
    let mut r = Reader::new(data);
    // 0: arbitrary files; 1: byte-level damage of a real store (bit flips, overwrites,
    // truncation, deleted files: what sled's recovery must never turn into silent loss);
    // 2: a real store whose records hold fuzzed values.
    let mode = r.u8() % 3;
    match mode {
        0 => raw_files(&mut r, &store),
        1 => damage_bytes(&mut r, &store),
        _ => damage_records(&mut r, &store),
    }
    if mode == 2 && slow_kdf(&store) {
        return;
    }
    make_private(&store);
    let mut before = BTreeMap::new();
    snapshot(&store, "", &mut before);
    let rv = call!(C_Initialize, null_mut());
    assert!(
        rv == CKR_OK || rv == CKR_DEVICE_ERROR,
        "C_Initialize on a damaged store: {}",
        ckr_name(rv)
    );
    if rv == CKR_DEVICE_ERROR {
        let mut after = BTreeMap::new();
        snapshot(&store, "", &mut after);
        // What may change on a refused store: files that were not there (sled creates an
        // empty `db` and `blobs/` before it reads anything), and a `conf` of 8 bytes or
        // fewer, which sled treats as absent and writes anew. Nothing that existed with
        // content is touched.
        let changed: Vec<&String> = before
            .keys()
            .filter(|k| before.get(*k) != after.get(*k))
            .filter(|k| !(k.as_str() == "conf" && before[k.as_str()].len() <= 8))
            .collect();
        let detail: Vec<String> = changed
            .iter()
            .map(|k| {
                let (b, a) = (&before[k.as_str()], after.get(k.as_str()));
                let a = a.map_or(&[][..], |v| &v[..]);
                let first = b.iter().zip(a).position(|(x, y)| x != y);
                format!(
                    "{k}: {} -> {} bytes, first difference at {first:?}",
                    b.len(),
                    a.len()
                )
            })
            .collect();
        assert!(
            changed.is_empty(),
            "a refused store was modified: {detail:?}"
        );
    }
    if rv == CKR_DEVICE_ERROR {
        return;
    }
    let found = probe();
    ok!(call!(C_Finalize, null_mut()));
    // No silent loss: the store kept its commit file, so it knows it acknowledged every
    // template object; having opened, it must hold each of them unchanged.
    let (objects, commit) = reference();
    if mode == 1 && before.get(key4c_pkcs11::store::commit::COMMIT_FILE) == Some(commit) {
        wait_released(&store);
        let got = objects_of(&store);
        for (k, v) in objects {
            assert!(
                got.get(k) == Some(v),
                "a damaged store opened without the acknowledged object {k:02x?} ({})",
                if got.contains_key(k) {
                    "changed"
                } else {
                    "missing"
                }
            );
        }
        if let Some(n) = found {
            assert_eq!(
                n,
                objects.len(),
                "objects the User finds after the store opened"
            );
        }
        if std::env::var_os("KEY4C_FUZZ_TRACE").is_some() {
            eprintln!(
                "store_open: damaged store opened, {} acknowledged objects identical, the User finds {found:?}",
                objects.len()
            );
        }
    }
});
