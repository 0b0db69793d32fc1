//! The pre-open check of sled's log (`key4c_pkcs11::store::log_check`) on arbitrary bytes: a
//! `db` file, a commit number and a snapshot LSN from the fuzzer, half the time laid over a
//! well-formed segment header so the message walk is reached. Properties: no panic, and a
//! verdict that refuses names where.
#![no_main]

use key4c_pkcs11::store::log_check::{judge, scan, Blob, Verdict};
use libfuzzer_sys::fuzz_target;

const SEGMENT: usize = 512;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let acked = match data[0] % 3 {
        0 => None,
        _ => Some(u64::from(data[1])),
    };
    let replay_from = i64::from(data[2]) * SEGMENT as i64;
    let blob_state = data[3];
    let mut db = data[4..].to_vec();
    if data[0] & 0x80 != 0 && db.len() >= 20 {
        // A valid header for segment `data[4]` at offset 0.
        let lsn = i64::from(data[4] % 4) * SEGMENT as i64;
        let mut h = [0u8; 20];
        h[4..12].copy_from_slice(&(lsn ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
        h[12..20].copy_from_slice(&((lsn - 1) ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
        let crc = crc32fast::hash(&h[4..20]) ^ 0xFFFF_FFFF;
        h[..4].copy_from_slice(&crc.to_le_bytes());
        db[..20].copy_from_slice(&h);
    }
    let blob = |_: i64| match blob_state % 3 {
        0 => Blob::Intact,
        1 => Blob::Missing,
        _ => Blob::Damaged,
    };
    let s = scan(&db, SEGMENT, &blob);
    match judge(&s, replay_from, SEGMENT, acked) {
        Verdict::Clean => {}
        Verdict::Suspicious(why) | Verdict::Damaged(why) => assert!(!why.is_empty()),
    }
});
