//! The pre-open check of sled's log (`key4c_pkcs11::store::log_check`), two ways:
//!
//! - **Known damage** (first byte even): a well-formed log is built (1 to 4 segments of
//!   messages in sled's framing, each message holding a commit record with the next sequence
//!   number), the fuzzer picks the acknowledged number, where replay starts, and one bit to
//!   flip (in a segment header, in a message, or in the empty tail of a segment). The check's
//!   report is compared with what was damaged: no damage gives `Clean`; a flipped segment header
//!   gives `Damaged` naming that segment; a flipped message gives a break at exactly that
//!   message's offset and the verdict spec'd in log_check.rs (`Damaged` when it is before the
//!   first intact copy of the acknowledged number in a replayed segment, or when no intact copy
//!   is left; `Suspicious` otherwise); a flip in a segment's empty tail is a break at the tail.
//! - **Arbitrary bytes** (first byte odd): a `db` file, a commit number and a snapshot LSN from
//!   the fuzzer, half the time laid over a well-formed segment header so the message walk is
//!   reached. No panic; a verdict that refuses names where; `Clean` only when nothing is broken
//!   and the acknowledged number is in the log.
#![no_main]

use key4c_pkcs11::store::commit::encode_record;
use key4c_pkcs11::store::log_check::{judge, scan, Blob, Scan, Verdict};
use libfuzzer_sys::fuzz_target;

const SEGMENT: usize = 512;
/// sled's segment header length and the last offset a message may start at.
const SEG_HEADER_LEN: usize = 20;
const LAST_MSG_START: usize = SEGMENT - 32;

fn segment_header(lsn: i64, stable: i64) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[4..12].copy_from_slice(&(lsn ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
    h[12..20].copy_from_slice(&(stable ^ 0x7FFF_FFFF_FFFF_FFFF).to_le_bytes());
    let crc = crc32fast::hash(&h[4..20]) ^ 0xFFFF_FFFF;
    h[..4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// One message in sled's framing (`read_message`): CRC, kind, varint length, segment number
/// and page ID (all < 241: one byte each), then the body.
fn message(kind: u8, segment: u8, pid: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 241 && segment < 241 && pid < 241);
    let mut m = vec![0, 0, 0, 0, kind, body.len() as u8, segment, pid];
    m.extend_from_slice(body);
    let mut h = crc32fast::Hasher::new();
    h.update(body);
    h.update(&m[4..8]);
    let crc = h.finalize() ^ 0xFFFF_FFFF;
    m[..4].copy_from_slice(&crc.to_le_bytes());
    m
}

struct Msg {
    /// Offset in the file, LSN, segment LSN, length with header, sequence number it holds.
    offset: usize,
    lsn: i64,
    segment_lsn: i64,
    len: usize,
    seq: u64,
}

/// A well-formed log: `segments` segments, each with messages as long as the fuzzer says.
fn build(data: &mut impl Iterator<Item = u8>, segments: usize) -> (Vec<u8>, Vec<Msg>) {
    let mut db = vec![0u8; segments * SEGMENT];
    let mut msgs = Vec::new();
    let mut seq = 0;
    for s in 0..segments {
        let base = s * SEGMENT;
        let lsn = (s * SEGMENT) as i64;
        db[base..base + SEG_HEADER_LEN].copy_from_slice(&segment_header(lsn, lsn - 1));
        let mut pos = SEG_HEADER_LEN;
        let count = data.next().unwrap_or(3) % 6 + 1;
        for _ in 0..count {
            let filler = (data.next().unwrap_or(0) % 48) as usize;
            let mut body = vec![0xA5u8; filler];
            seq += 1;
            body.extend_from_slice(&encode_record(seq));
            let m = message(8, s as u8, 1 + (seq % 200) as u8, &body);
            if pos + m.len() > LAST_MSG_START {
                seq -= 1;
                break;
            }
            db[base + pos..base + pos + m.len()].copy_from_slice(&m);
            msgs.push(Msg {
                offset: base + pos,
                lsn: lsn + pos as i64,
                segment_lsn: lsn,
                len: m.len(),
                seq,
            });
            pos += m.len();
        }
    }
    (db, msgs)
}

fn all_intact(_: i64) -> Blob {
    Blob::Intact
}

fn known_damage(data: &[u8]) {
    let mut it = data.iter().copied();
    let segments = usize::from(it.next().unwrap_or(0) % 4) + 1;
    let (mut db, msgs) = build(&mut it, segments);
    let newest = msgs.last().map_or(0, |m| m.seq);
    let acked = match it.next().unwrap_or(0) {
        0 => None,
        a => Some(u64::from(a) % (newest + 1)),
    };
    let replay_from = i64::from(it.next().unwrap_or(0) % segments as u8) * SEGMENT as i64;
    let what = it.next().unwrap_or(0) % 4;
    let pick = usize::from(it.next().unwrap_or(0)) | usize::from(it.next().unwrap_or(0)) << 8;
    let bit = it.next().unwrap_or(0) % 8;
    let judged = |db: &[u8]| {
        let s = scan(db, SEGMENT, &all_intact);
        let v = judge(&s, replay_from, SEGMENT, acked);
        (s, v)
    };
    match what {
        // No damage: nothing to report.
        0 => {
            let (s, v) = judged(&db);
            assert!(s.breaks.is_empty() && s.damaged_headers.is_empty(), "{s:?}");
            let seqs: Vec<u64> = s.commits.iter().map(|c| c.seq).collect();
            let want: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, want, "commit records found in an intact log");
            assert_eq!(v, Verdict::Clean, "an intact log");
        }
        // A flipped bit in a segment header: that segment is damaged.
        1 => {
            let seg = pick % segments;
            let at = seg * SEGMENT + pick / segments % SEG_HEADER_LEN;
            db[at] ^= 1 << bit;
            let (s, v) = judged(&db);
            assert_eq!(s.damaged_headers, [(seg * SEGMENT) as u64], "{s:?}");
            assert_eq!(
                v,
                Verdict::Damaged(format!(
                    "the header of the log segment at offset {} of db is damaged",
                    seg * SEGMENT
                ))
            );
        }
        // A flipped bit in a message: a break there, and the verdict of log_check.rs.
        2 => {
            let Some(d) = msgs.get(pick % msgs.len().max(1)) else {
                return;
            };
            let at = d.offset + pick / msgs.len() % d.len;
            db[at] ^= 1 << bit;
            let (s, v) = judged(&db);
            expect_break_at(&s, d.segment_lsn, d.offset as u64, d.lsn);
            // What the walk still sees: the copies before the damaged message in its segment,
            // and every other segment.
            let visible = |m: &&Msg| m.segment_lsn != d.segment_lsn || m.lsn < d.lsn;
            match acked {
                None => assert!(matches!(v, Verdict::Suspicious(_)), "{v:?}"),
                Some(a) => {
                    let first = msgs
                        .iter()
                        .filter(visible)
                        .filter(|m| m.seq >= a)
                        .map(|m| m.lsn)
                        .min();
                    match first {
                        None => assert!(matches!(v, Verdict::Damaged(_)), "{v:?}"),
                        Some(f) if d.lsn < f && d.segment_lsn >= replay_from => {
                            let Verdict::Damaged(why) = &v else {
                                panic!("damage before the acknowledged write: {v:?}")
                            };
                            assert!(
                                why.contains(&format!("at offset {} of db", d.offset)),
                                "{why}"
                            );
                        }
                        Some(_) => assert!(matches!(v, Verdict::Suspicious(_)), "{v:?}"),
                    }
                }
            }
        }
        // A flipped bit in the empty tail of a segment: a break at the tail when the walk
        // reaches it (sled's recovery reads the tail only up to the last message start).
        _ => {
            let seg = pick % segments;
            let base = seg * SEGMENT;
            let tail = msgs
                .iter()
                .filter(|m| m.offset / SEGMENT == seg)
                .map(|m| m.offset + m.len)
                .max()
                .unwrap_or(base + SEG_HEADER_LEN);
            let room = base + SEGMENT - tail;
            let at = tail + pick / segments % room;
            db[at] ^= 1 << bit;
            let (s, v) = judged(&db);
            let walked = tail - base <= LAST_MSG_START && at < base + SEGMENT - 1;
            if walked {
                let lsn = (tail) as i64;
                expect_break_at(&s, base as i64, tail as u64, lsn);
                assert!(!matches!(v, Verdict::Clean), "{v:?}");
            } else {
                assert!(s.breaks.is_empty(), "{s:?}");
            }
        }
    }
}

/// The first break of segment `segment_lsn` is at `offset` (LSN `lsn`), and no other segment
/// has one.
fn expect_break_at(s: &Scan, segment_lsn: i64, offset: u64, lsn: i64) {
    assert!(s.damaged_headers.is_empty(), "{s:?}");
    assert_eq!(
        s.breaks.len(),
        1,
        "one damaged place, breaks: {:?}",
        s.breaks
    );
    let b = &s.breaks[0];
    assert_eq!(
        (b.segment_lsn, b.offset, b.lsn),
        (segment_lsn, offset, lsn),
        "break reported at {b:?}"
    );
}

fn arbitrary(data: &[u8]) {
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
        db[..20].copy_from_slice(&segment_header(lsn, lsn - 1));
    }
    let blob = |_: i64| match blob_state % 3 {
        0 => Blob::Intact,
        1 => Blob::Missing,
        _ => Blob::Damaged,
    };
    let s = scan(&db, SEGMENT, &blob);
    for b in &s.breaks {
        assert!((b.offset as usize) < db.len().max(1) + SEGMENT, "{b:?}");
    }
    match judge(&s, replay_from, SEGMENT, acked) {
        Verdict::Clean => {
            // Clean only when nothing is broken, and the acknowledged number is there.
            assert!(s.damaged_headers.is_empty(), "{s:?}");
            match acked {
                None => assert!(s.breaks.is_empty(), "{s:?}"),
                Some(a) => assert!(s.commits.iter().any(|c| c.seq >= a), "{s:?}"),
            }
        }
        Verdict::Suspicious(why) | Verdict::Damaged(why) => assert!(!why.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(b) if b % 2 == 0 => known_damage(&data[1..]),
        Some(_) => arbitrary(&data[1..]),
        None => {}
    }
});
