//! The commit counter: what the store has acknowledged, kept where sled cannot lose it.
//!
//! Every durable write raises a sequence number. The new number is written inside sled, as the
//! `commit` record of the default tree, in the same atomic transaction as the data; once sled
//! has flushed, it is also written to the side file [`COMMIT_FILE`] next to sled's files. When
//! the store is opened, sled's number must be at least the side file's: a smaller one means
//! sled's recovery dropped writes the store had acknowledged (a damaged log), and the store is
//! refused. A larger one is a crash between sled's flush and the side file's write: fine.
//!
//! The `commit` record is not a `records` record: its bytes ([`encode_record`]) start with a
//! fixed 12-byte marker so that the pre-open check of sled's log ([`super::log_check`]) can find
//! every copy of it in the raw log without decoding sled's pages.
//!
//! The side file holds two slots, 512 bytes apart (two disk sectors), written alternately in
//! place and synced with `fdatasync`: a write torn by a power cut damages one slot and the other
//! still holds the previous number (which sled's number then exceeds, as after any crash). An
//! in-place write needs no new disk block, so it still works on a full disk; one `fdatasync`
//! is the whole cost.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The side file in the store directory.
pub const COMMIT_FILE: &str = "commit";

/// The marker that starts the sled value of the commit record.
pub const RECORD_MAGIC: [u8; 12] = *b"\x8bk4c-commit\x01";
/// Length of the sled value of the commit record: marker, sequence number, CRC-32.
pub const RECORD_LEN: usize = 24;

const SIDE_MAGIC: [u8; 8] = *b"K4Ccommt";
const SIDE_VERSION: u32 = 1;
const SLOT_LEN: usize = 24;
const SLOT_STRIDE: usize = 512;
/// Length of a complete side file.
pub const SIDE_LEN: usize = SLOT_STRIDE + SLOT_LEN;

/// The sled value of the commit record for `seq`.
pub fn encode_record(seq: u64) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..12].copy_from_slice(&RECORD_MAGIC);
    out[12..20].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..20]);
    out[20..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The sequence number of a commit record value, `None` unless it is exactly one intact record.
pub fn decode_record(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != RECORD_LEN || bytes[..12] != RECORD_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[20..24].try_into().ok()?);
    if crc32fast::hash(&bytes[..20]) != crc {
        return None;
    }
    Some(u64::from_le_bytes(bytes[12..20].try_into().ok()?))
}

/// Every intact commit record value inside `bytes` (a page of sled's log).
pub fn find_records(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(&RECORD_MAGIC))
        .find_iter(bytes)
        .filter_map(move |at| decode_record(bytes.get(at..at + RECORD_LEN)?))
}

/// Why the side file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideError {
    /// Neither slot is intact.
    Damaged(String),
    /// Written by a newer key4c.
    Newer(u32),
}

fn encode_slot(seq: u64) -> [u8; SLOT_LEN] {
    let mut out = [0u8; SLOT_LEN];
    out[..8].copy_from_slice(&SIDE_MAGIC);
    out[8..12].copy_from_slice(&SIDE_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..20]);
    out[20..].copy_from_slice(&crc.to_le_bytes());
    out
}

enum Slot {
    Intact(u64),
    Newer(u32),
    Damaged,
}

fn decode_slot(bytes: &[u8]) -> Slot {
    let Some(slot) = bytes.get(..SLOT_LEN) else {
        return Slot::Damaged;
    };
    let crc = u32::from_le_bytes([slot[20], slot[21], slot[22], slot[23]]);
    if slot[..8] != SIDE_MAGIC || crc32fast::hash(&slot[..20]) != crc {
        return Slot::Damaged;
    }
    let version = u32::from_le_bytes([slot[8], slot[9], slot[10], slot[11]]);
    if version != SIDE_VERSION {
        return Slot::Newer(version);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&slot[12..20]);
    Slot::Intact(u64::from_le_bytes(seq))
}

/// Decodes a side file: the highest sequence number of its intact slots, and which slot holds
/// it.
pub fn decode_side(bytes: &[u8]) -> Result<(u64, usize), SideError> {
    let slots = [
        decode_slot(bytes),
        decode_slot(bytes.get(SLOT_STRIDE..).unwrap_or(&[])),
    ];
    let mut best: Option<(u64, usize)> = None;
    for (i, slot) in slots.iter().enumerate() {
        match *slot {
            Slot::Intact(seq) if best.is_none_or(|(b, _)| seq > b) => best = Some((seq, i)),
            Slot::Intact(_) | Slot::Damaged => {}
            // A newer key4c changed the format: refuse rather than guess.
            Slot::Newer(v) => return Err(SideError::Newer(v)),
        }
    }
    best.ok_or_else(|| {
        SideError::Damaged(format!(
            "the commit file ({} bytes) has no intact record",
            bytes.len()
        ))
    })
}

/// The open side file: where the next number goes.
#[derive(Debug)]
pub struct SideFile {
    file: File,
    /// The number the file holds.
    last: u64,
    /// The slot that holds it.
    slot: usize,
}

impl SideFile {
    /// Reads the side file of the store in `dir`: `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> io::Result<Option<Result<(u64, usize), SideError>>> {
        match std::fs::read(dir.join(COMMIT_FILE)) {
            Ok(bytes) => Ok(Some(decode_side(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the existing side file for writing, holding `seq` in `slot` (what [`Self::read`]
    /// found).
    pub fn open(dir: &Path, seq: u64, slot: usize) -> io::Result<SideFile> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(COMMIT_FILE))?;
        Ok(SideFile {
            file,
            last: seq,
            slot,
        })
    }

    /// Creates the side file holding `seq` in both slots, durably (the file and its directory
    /// entry), replacing any other.
    pub fn create(dir: &Path, seq: u64, access: super::access::Access) -> io::Result<SideFile> {
        let tmp = dir.join(format!("{COMMIT_FILE}.tmp"));
        let mut bytes = vec![0u8; SIDE_LEN];
        bytes[..SLOT_LEN].copy_from_slice(&encode_slot(seq));
        bytes[SLOT_STRIDE..].copy_from_slice(&encode_slot(seq));
        {
            let file = super::access::create_options(access)
                .write(true)
                .truncate(true)
                .open(&tmp)?;
            super::access::restrict(&tmp, access)?;
            file.write_all_at(&bytes, 0)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(COMMIT_FILE))?;
        File::open(dir)?.sync_all()?;
        SideFile::open(dir, seq, 1)
    }

    /// The number the file holds.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Records that every write up to `seq` is durable in sled. A number not above the one held
    /// is already covered: nothing to write.
    pub fn record(&mut self, seq: u64) -> io::Result<()> {
        if seq <= self.last {
            return Ok(());
        }
        let slot = 1 - self.slot;
        self.file
            .write_all_at(&encode_slot(seq), (slot * SLOT_STRIDE) as u64)?;
        self.file.sync_data()?;
        self.last = seq;
        self.slot = slot;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_damage() {
        let bytes = encode_record(0x0102_0304_0506_0708);
        assert_eq!(decode_record(&bytes), Some(0x0102_0304_0506_0708));
        for i in 0..RECORD_LEN * 8 {
            let mut b = bytes;
            b[i / 8] ^= 1 << (i % 8);
            assert_eq!(decode_record(&b), None, "bit {i}");
        }
        assert_eq!(decode_record(&bytes[..23]), None);
        assert_eq!(decode_record(&[]), None);
        let mut page = vec![7u8; 100];
        page.extend_from_slice(&encode_record(5));
        page.extend_from_slice(&RECORD_MAGIC);
        page.extend_from_slice(&encode_record(9));
        page.extend_from_slice(&encode_record(6)[..20]);
        assert_eq!(find_records(&page).collect::<Vec<_>>(), vec![5, 9]);
    }

    #[test]
    fn side_file_slots() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SideFile::read(dir.path()).unwrap().is_none());
        let mut side =
            SideFile::create(dir.path(), 3, super::super::access::Access::Private).unwrap();
        assert_eq!(SideFile::read(dir.path()).unwrap(), Some(Ok((3, 0))));
        side.record(4).unwrap();
        side.record(4).unwrap();
        side.record(2).unwrap();
        assert_eq!(SideFile::read(dir.path()).unwrap(), Some(Ok((4, 0))));
        side.record(5).unwrap();
        assert_eq!(SideFile::read(dir.path()).unwrap(), Some(Ok((5, 1))));
        assert_eq!(side.last(), 5);
        // A torn write of the newest slot: the other one still answers.
        let path = dir.path().join(COMMIT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT_STRIDE + 13] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(SideFile::read(dir.path()).unwrap(), Some(Ok((4, 0))));
        // Reopened for writing, the next number goes to the damaged slot.
        let mut side = SideFile::open(dir.path(), 4, 0).unwrap();
        side.record(6).unwrap();
        assert_eq!(SideFile::read(dir.path()).unwrap(), Some(Ok((6, 1))));
    }

    #[test]
    fn torn_or_garbage_side_files_are_errors_never_panics() {
        let good = {
            let mut b = vec![0u8; SIDE_LEN];
            b[..SLOT_LEN].copy_from_slice(&encode_slot(7));
            b[SLOT_STRIDE..].copy_from_slice(&encode_slot(8));
            b
        };
        assert_eq!(decode_side(&good), Ok((8, 1)));
        // Every truncation: the first slot alone still answers once it is whole.
        for len in 0..good.len() {
            let r = decode_side(&good[..len]);
            if len >= SLOT_LEN {
                assert_eq!(r, Ok((7, 0)), "len {len}");
            } else {
                assert!(matches!(r, Err(SideError::Damaged(_))), "len {len}");
            }
        }
        // Both slots damaged.
        let mut bad = good.clone();
        bad[3] ^= 1;
        bad[SLOT_STRIDE + 15] ^= 0x80;
        assert!(matches!(decode_side(&bad), Err(SideError::Damaged(_))));
        // Garbage of many lengths.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0, 1, 23, 24, 25, 100, 511, 512, 535, 536, 537, 4096] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert!(matches!(decode_side(&bytes), Err(SideError::Damaged(_))));
        }
        // A newer format is named, not taken for damage.
        let mut newer = encode_slot(1);
        newer[8] = 2;
        let crc = crc32fast::hash(&newer[..20]);
        newer[20..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_side(&newer), Err(SideError::Newer(2)));
    }
}
