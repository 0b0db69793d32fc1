//! The check of sled's log before sled opens it.
//!
//! sled 0.34's recovery reads its log (`db`) from the last snapshot on and stops at the first
//! message that fails its checksum, taking it for the torn tail of an interrupted write: it then
//! overwrites everything after that point with zeros, and zeroes every segment its recovered
//! state does not use. A bit flip in the middle of the log therefore silently drops every later
//! write, acknowledged or not, and destroys them on disk before the caller can look. Hence this
//! check, made on the raw files, read-only, while sled is not running: it walks every message
//! of every segment (the same format and checksums as `sled::pagecache::logger::read_message`),
//! finds every copy of the commit record ([`super::commit`]), and compares what it found with
//! the number of writes the store acknowledged.
//!
//! - A checksum failure (or any damage) *before* the first message that holds the acknowledged
//!   commit number, in a segment sled would replay, is damage that recovery would turn into
//!   silent loss: [`Verdict::Damaged`].
//! - No copy of the acknowledged commit number anywhere: acknowledged writes are gone
//!   ([`Verdict::Damaged`]).
//! - Damage only after it is what a crash leaves (an interrupted, unacknowledged write), or
//!   damage in a segment recovery does not replay: [`Verdict::Suspicious`], and the store is
//!   first opened on a copy to see what sled makes of it.
//! - Nothing of the kind: [`Verdict::Clean`]; sled's recovery has nothing to cut.
//!
//! The functions here are pure over bytes (fuzzed by `fuzz_targets/store_log.rs`).

use super::commit;

/// Length of a segment header (`sled::pagecache::SEG_HEADER_LEN`).
const SEG_HEADER_LEN: usize = 20;
/// Longest message header (`sled::pagecache::MAX_MSG_HEADER_LEN`): no message starts closer
/// than this to the end of a segment.
const MAX_MSG_HEADER_LEN: usize = 32;

/// sled's message kinds (`sled::pagecache::MessageKind`).
mod kind {
    pub const CORRUPTED: u8 = 0;
    pub const CAP: u8 = 2;
    pub const BATCH_MANIFEST: u8 = 3;
    pub const BLOB_META: u8 = 7;
    pub const BLOB_NODE: u8 = 9;
    pub const BLOB_LINK: u8 = 11;
    pub const MAX: u8 = 11;
}

/// What a blob file referenced from the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    /// Present and its checksum matches.
    Intact,
    /// Absent (sled skips such a pointer).
    Missing,
    /// Present but damaged.
    Damaged,
}

/// Why the walk through a segment stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// A message whose checksum does not match.
    Checksum,
    /// A message header that cannot be a message (kind, length).
    Header,
    /// Zeros (sled's "corrupted" marker) followed by data.
    Hole,
    /// The file ends inside the segment.
    Short,
    /// A blob file that fails its checksum.
    Blob,
    /// An intact message of an older use of the segment (left behind when it was reused).
    Stale,
    /// An intact message of a newer use of the segment whose header was not written yet.
    Future,
}

impl BreakKind {
    /// Bytes that changed after they were written: never the state a crash leaves in a segment
    /// recovery replays, before a write that was acknowledged.
    fn is_damage(self) -> bool {
        !matches!(self, BreakKind::Stale | BreakKind::Future)
    }

    fn describe(self) -> &'static str {
        match self {
            BreakKind::Checksum => "a message fails its checksum",
            BreakKind::Header => "a message header is invalid",
            BreakKind::Hole => "a zeroed region is followed by data",
            BreakKind::Short => "the file ends inside a message",
            BreakKind::Blob => "a blob file fails its checksum",
            BreakKind::Stale => "a message of an older use of the segment",
            BreakKind::Future => "a message of a newer use of the segment",
        }
    }
}

/// One place where the log stops making sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Position in log order (sled's LSN).
    pub lsn: i64,
    /// LSN of the segment it is in.
    pub segment_lsn: i64,
    /// Offset in the `db` file.
    pub offset: u64,
    /// What is wrong.
    pub kind: BreakKind,
}

/// One copy of the commit record found in an intact message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Position in log order of the message that holds it.
    pub lsn: i64,
    /// Its sequence number.
    pub seq: u64,
}

/// What a walk through the log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Intact segments: (LSN, file offset, the highest LSN sled had made stable when it wrote
    /// the segment header).
    pub segments: Vec<(i64, u64, i64)>,
    /// Every copy of the commit record, in log order.
    pub commits: Vec<Commit>,
    /// Commit records found after a break (by their own checksum alone), at the break's LSN.
    pub beyond: Vec<Commit>,
    /// Where segments stop making sense, in log order.
    pub breaks: Vec<Break>,
    /// File offsets of segments whose header is damaged while the segment holds data.
    pub damaged_headers: Vec<u64>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// sled's recovery will find everything that was written: open it.
    Clean,
    /// sled's recovery will cut something that looks unacknowledged: see on a copy first.
    Suspicious(String),
    /// Acknowledged writes are missing or would be dropped: refuse.
    Damaged(String),
}

/// Parses sled's `conf` file: the segment size, if the file is intact and names a valid one.
pub fn segment_size_from_conf(conf: &[u8]) -> Option<usize> {
    let (text, crc) = conf.split_at(conf.len().checked_sub(4)?);
    if crc32fast::hash(text).to_le_bytes() != crc {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let size: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: "))?
        .trim()
        .parse()
        .ok()?;
    (size.is_power_of_two() && (256..=1 << 24).contains(&size)).then_some(size)
}

/// The LSN from which sled's recovery replays the log, from the names of the snapshot files
/// (`snap.<stable LSN, 16 hex digits>`; sled takes the greatest name), rounded down to its
/// segment.
pub fn replay_from<'a>(names: impl Iterator<Item = &'a str>, segment_size: usize) -> i64 {
    let newest = names
        .filter(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
        .max();
    let lsn = newest
        .and_then(|n| i64::from_str_radix(&n["snap.".len()..], 16).ok())
        .unwrap_or(0)
        .max(0);
    lsn / segment_size as i64 * segment_size as i64
}

/// sled's varint (`sled::serialization`, `impl Serialize for u64`).
fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let first = *buf.get(*at)?;
    let (value, len) = match first {
        0..=240 => (u64::from(first), 1),
        241..=248 => (
            240 + 256 * (u64::from(first) - 241) + u64::from(*buf.get(*at + 1)?),
            2,
        ),
        249 => (
            2288 + 256 * u64::from(*buf.get(*at + 1)?) + u64::from(*buf.get(*at + 2)?),
            3,
        ),
        other => {
            let n = other as usize - 247;
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(buf.get(*at + 1..*at + 1 + n)?);
            (u64::from_le_bytes(le), n + 1)
        }
    };
    *at += len;
    Some(value)
}

/// A segment header: (LSN, highest stable LSN) if its checksum matches.
fn segment_header(bytes: &[u8]) -> Option<(i64, i64)> {
    let h: &[u8; SEG_HEADER_LEN] = bytes.get(..SEG_HEADER_LEN)?.try_into().ok()?;
    let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) ^ 0xFFFF_FFFF;
    if crc32fast::hash(&h[4..20]) != crc {
        return None;
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i..i + 8]);
        i64::from_le_bytes(b) ^ 0x7FFF_FFFF_FFFF_FFFF
    };
    Some((word(4), word(12)))
}

/// Walks every segment of the log `db`. `blob` tells what the blob file of an ID holds.
pub fn scan(db: &[u8], segment_size: usize, blob: &(dyn Fn(i64) -> Blob + Sync)) -> Scan {
    let mut out = Scan::default();
    if !segment_size.is_power_of_two() || segment_size < 256 {
        return out;
    }
    // sled counts a trailing partial segment only when its header fits.
    let count = db.len() / segment_size + usize::from(db.len() % segment_size >= SEG_HEADER_LEN);
    let mut seen = std::collections::BTreeMap::new();
    for idx in 0..count {
        let base = idx * segment_size;
        let end = (base + segment_size).min(db.len());
        let region = &db[base..end];
        match segment_header(region) {
            Some((lsn, stable))
                if lsn >= 0
                    && lsn % segment_size as i64 == 0
                    && seen.insert(lsn, base).is_none() =>
            {
                out.segments.push((lsn, base as u64, stable));
            }
            // Never written, zeroed by sled, or cut off: nothing in it.
            _ if region.iter().all(|&b| b == 0) => {}
            _ => out.damaged_headers.push(base as u64),
        }
    }
    // A trailing fragment too short for a header holds nothing either.
    let tail = count * segment_size;
    if tail < db.len() && db[tail..].iter().any(|&b| b != 0) {
        out.damaged_headers.push(tail as u64);
    }
    out.segments.sort_unstable();
    // Segments are walked independently: on two cores a 40 MB log is checked in half the
    // time (this walk is on the path of every C_Initialize).
    let threads = super::cores().min(4);
    // A thread pays off for a log of tens of MB, not for a few segments.
    let at_least = (8 << 20) / segment_size;
    let per_thread = out.segments.len().div_ceil(threads).max(at_least).max(1);
    let walk = |segments: &[(i64, u64, i64)]| {
        let mut part = Scan::default();
        for &(lsn, base, _) in segments {
            walk_segment(db, base as usize, lsn, segment_size, blob, &mut part);
        }
        part
    };
    let segments = out.segments.clone();
    let mut chunks = segments.chunks(per_thread);
    let first = chunks.next().unwrap_or_default();
    let parts: Vec<Scan> = std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .map(|chunk| {
                std::thread::Builder::new()
                    .name("key4c-log-check".into())
                    .spawn_scoped(scope, move || walk(chunk))
                    // No thread to spare: this one walks that part too.
                    .map_err(|_| chunk)
            })
            .collect();
        let mut parts = vec![walk(first)];
        for other in others {
            parts.push(match other {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                Err(chunk) => walk(chunk),
            });
        }
        parts
    });
    for part in parts {
        out.commits.extend(part.commits);
        out.beyond.extend(part.beyond);
        out.breaks.extend(part.breaks);
    }
    out.commits.sort_by_key(|c| c.lsn);
    out.breaks.sort_by_key(|b| b.lsn);
    out
}

fn walk_segment(
    db: &[u8],
    base: usize,
    seg_lsn: i64,
    segment_size: usize,
    blob: &(dyn Fn(i64) -> Blob + Sync),
    out: &mut Scan,
) {
    let expected = seg_lsn as u64 / segment_size as u64;
    let file_end = (base + segment_size).min(db.len());
    let mut pos = SEG_HEADER_LEN;
    let stop = |pos: usize, kind: BreakKind, out: &mut Scan| {
        let lsn = seg_lsn.saturating_add(pos as i64);
        out.breaks.push(Break {
            lsn,
            segment_lsn: seg_lsn,
            offset: (base + pos) as u64,
            kind,
        });
        // What sled's recovery would no longer see: commit records further on (each has its
        // own checksum, so a match is one).
        let rest = db.get(base + pos..file_end).unwrap_or_default();
        out.beyond
            .extend(commit::find_records(rest).map(|seq| Commit { lsn, seq }));
    };
    while pos <= segment_size - MAX_MSG_HEADER_LEN {
        let at = base + pos;
        if at >= file_end {
            // The file ends on a message boundary: nothing after it was written.
            return;
        }
        // sled reads a zero-padded 128-byte window for the header.
        let mut window = [0u8; 128];
        let avail = (file_end - at).min(128);
        window[..avail].copy_from_slice(&db[at..at + avail]);
        let kind = window[4];
        let mut cur = 5;
        let (Some(len), Some(segment), Some(_pid)) = (
            varint(&window, &mut cur),
            varint(&window, &mut cur),
            varint(&window, &mut cur),
        ) else {
            return stop(pos, BreakKind::Header, out);
        };
        let header_len = cur;
        let room = (segment_size - pos).saturating_sub(header_len) as u64;
        if len > room {
            return stop(pos, BreakKind::Header, out);
        }
        if kind == kind::CORRUPTED {
            // sled's own marker for "nothing written here": the rest must be empty (sled never
            // zeroes the segment's last byte).
            let rest_end = (base + segment_size - 1).min(file_end);
            if db[at..rest_end.max(at)].iter().any(|&b| b != 0) {
                stop(pos, BreakKind::Hole, out);
            }
            return;
        }
        if kind > kind::MAX {
            return stop(pos, BreakKind::Header, out);
        }
        let body_start = at + header_len;
        let body_end = body_start + len as usize;
        if body_end > file_end {
            return stop(pos, BreakKind::Short, out);
        }
        let body = &db[body_start..body_end];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(body);
        hasher.update(&window[4..header_len]);
        let stored = u32::from_le_bytes([window[0], window[1], window[2], window[3]]);
        if hasher.finalize() ^ 0xFFFF_FFFF != stored {
            return stop(pos, BreakKind::Checksum, out);
        }
        if segment != expected {
            let k = if segment < expected {
                BreakKind::Stale
            } else {
                BreakKind::Future
            };
            return stop(pos, k, out);
        }
        match kind {
            kind::CAP => return,
            kind::BATCH_MANIFEST if body.len() != 8 => {
                return stop(pos, BreakKind::Header, out);
            }
            kind::BLOB_META | kind::BLOB_NODE | kind::BLOB_LINK => {
                let id = body.try_into().map(i64::from_le_bytes);
                match id.map(blob) {
                    Ok(Blob::Intact | Blob::Missing) => {}
                    Ok(Blob::Damaged) => return stop(pos, BreakKind::Blob, out),
                    Err(_) => return stop(pos, BreakKind::Header, out),
                }
            }
            _ => {
                let lsn = seg_lsn.saturating_add(pos as i64);
                out.commits
                    .extend(commit::find_records(body).map(|seq| Commit { lsn, seq }));
            }
        }
        pos += header_len + len as usize;
    }
}

/// "1 acknowledged write is" / "N acknowledged writes are".
pub fn acknowledged_writes(n: u64) -> String {
    if n == 1 {
        "1 acknowledged write is".into()
    } else {
        format!("{n} acknowledged writes are")
    }
}

fn damaged_at(b: &Break, lost: u64) -> String {
    format!(
        "the log is damaged at offset {} of db ({}): sled's recovery would silently drop every write after it, {lost} of them acknowledged",
        b.offset,
        b.kind.describe(),
    )
}

/// Whether sled's recovery would find a gap in the tail of the log: the segments from the
/// newest stable point on must follow each other (`check_contiguity_in_unstable_tail`).
fn tail_gap(scan: &Scan, replay_from: i64, segment_size: usize) -> Option<i64> {
    let seg = segment_size as i64;
    let replayed = scan.segments.iter().filter(|s| s.0 >= replay_from);
    let stable = replayed
        .clone()
        .map(|s| s.2)
        .fold(replay_from, std::cmp::max);
    let mut expected = (stable / seg * seg).max(0);
    let mut tail: Vec<i64> = replayed.map(|s| s.0).filter(|&l| l >= expected).collect();
    tail.sort_unstable();
    if tail.is_empty() {
        return None;
    }
    for lsn in tail {
        if lsn != expected {
            return Some(expected);
        }
        expected = expected.checked_add(seg)?;
    }
    None
}

/// Judges a scan against the number of writes the store acknowledged (`None`: a store without
/// a commit file, written before the commit counter existed).
pub fn judge(
    scan: &Scan,
    replay_from: i64,
    segment_size: usize,
    acknowledged: Option<u64>,
) -> Verdict {
    if let Some(offset) = scan.damaged_headers.first() {
        return Verdict::Damaged(format!(
            "the header of the log segment at offset {offset} of db is damaged"
        ));
    }
    if let Some(acked) = acknowledged {
        let first_acked = scan
            .commits
            .iter()
            .filter(|c| c.seq >= acked)
            .map(|c| c.lsn)
            .min();
        let Some(first_acked) = first_acked else {
            let newest = scan.commits.iter().map(|c| c.seq).max();
            let cut = scan
                .beyond
                .iter()
                .filter(|c| c.seq >= acked)
                .map(|c| c.lsn)
                .min();
            if let Some(b) = cut.and_then(|lsn| scan.breaks.iter().find(|b| b.lsn == lsn)) {
                return Verdict::Damaged(damaged_at(b, acked - newest.unwrap_or(0)));
            }
            return Verdict::Damaged(match newest {
                Some(n) => format!(
                    "{} missing: the log is damaged (its newest write is #{n}, the store acknowledged #{acked})",
                    acknowledged_writes(acked - n)
                ),
                None => format!(
                    "the log holds none of the store's {acked} acknowledged writes: the log is damaged"
                ),
            });
        };
        if let Some(b) = scan
            .breaks
            .iter()
            .find(|b| b.lsn < first_acked && b.segment_lsn >= replay_from && b.kind.is_damage())
        {
            let before = scan
                .commits
                .iter()
                .filter(|c| c.lsn < b.lsn)
                .map(|c| c.seq)
                .max()
                .unwrap_or(0);
            return Verdict::Damaged(damaged_at(b, acked.saturating_sub(before)));
        }
        // Stale or future messages after the last acknowledged write are what an interrupted
        // write or a reused segment leaves: recovery cuts only them.
        let tail_only = |b: &&Break| b.lsn > first_acked && !b.kind.is_damage();
        if let Some(b) = scan.breaks.iter().find(|b| !tail_only(b)) {
            return Verdict::Suspicious(format!(
                "at offset {} of db, {}",
                b.offset,
                b.kind.describe()
            ));
        }
    } else if let Some(b) = scan.breaks.first() {
        return Verdict::Suspicious(format!(
            "at offset {} of db, {}",
            b.offset,
            b.kind.describe()
        ));
    }
    if let Some(lsn) = tail_gap(scan, replay_from, segment_size) {
        return Verdict::Suspicious(format!("the log segment of LSN {lsn} is missing"));
    }
    Verdict::Clean
}
