//! The objects cache: a copy of the `objects` tree's records in one file, `objects.cache` in
//! the store directory, so that a cold start reads them while sled is still opening.
//!
//! Loading 10,000 objects out of sled can only start once sled is open (its log checked, its
//! page table rebuilt), and then reads them page by page: the two make up most of a cold
//! start. The cache is read and decoded in a second thread at the same time as sled opens.
//! It is only a copy: it names the store (service UUID) and the objects' generation it was
//! taken at (a number every write of the objects changes, a write of the token record does
//! not), and is used only when both match the store once sled has opened it; any other
//! difference (no file, a damaged one, a write since) and the objects are loaded from sled as
//! always, and the cache is written again from what was loaded. Object records hold key
//! material sealed only, as in sled.
//!
//! Format: magic (16 bytes, with the cache format), service UUID (16), objects generation (u64),
//! record count (u64), then per record the object ID (u64), length (u32) and the record as
//! stored in sled; last, a CRC-32 of everything before it. Integers little-endian. Written to
//! a temporary file and renamed over the old one: a reader sees the old file or the new.

use std::io::Write;
use std::path::Path;

/// The cache's file name in the store directory.
pub const OBJECTS_CACHE: &str = "objects.cache";
/// A store with fewer objects is loaded out of sled fast enough; it gets no cache.
pub const CACHE_FROM: usize = 1000;

const MAGIC: &[u8; 16] = b"key4c objects\x00\x00\x01";
const HEADER: usize = 16 + 16 + 8 + 8;

/// What a cache copies: which store, at which commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The store's service UUID.
    pub uuid: [u8; 16],
    /// The objects' generation the records were read at (`OpenStore::objects_generation`:
    /// it changes with every write of the objects, not with a write of the token record).
    pub seq: u64,
}

/// Reads the cache in `dir` and hands each record's ID and bytes to `f`, in the order they were
/// written. `None` when there is no cache or it is damaged (then `f` may have seen some of
/// it: discard what it built).
pub fn read(dir: &Path, mut f: impl FnMut(u64, &[u8]) -> bool) -> Option<Stamp> {
    let bytes = std::fs::read(dir.join(OBJECTS_CACHE)).ok()?;
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if body.len() < HEADER || &body[..16] != MAGIC || crc32fast::hash(body).to_le_bytes() != crc[..]
    {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or_default());
    let stamp = Stamp {
        uuid: body[16..32].try_into().ok()?,
        seq: u64_at(32),
    };
    let count = u64_at(40);
    let mut at = HEADER;
    for _ in 0..count {
        let id = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
        let len = u32::from_le_bytes(body.get(at + 8..at + 12)?.try_into().ok()?) as usize;
        let record = body.get(at + 12..(at + 12).checked_add(len)?)?;
        if !f(id, record) {
            return None;
        }
        at += 12 + len;
    }
    (at == body.len()).then_some(stamp)
}

/// Reads the cache in `dir`, decoding each record (as [`super::records::decode`]) for `f`.
/// `None` when there is no usable cache (then discard what `f` built).
pub fn load<T: serde::de::DeserializeOwned>(
    dir: &Path,
    mut f: impl FnMut(u64, T),
) -> Option<Stamp> {
    read(dir, |id, bytes| match super::records::decode(bytes) {
        Ok(record) => {
            f(id, record);
            true
        }
        Err(_) => false,
    })
}

/// Writes the cache of `records` (object ID, record bytes) taken at `stamp`.
pub fn write<'a>(
    dir: &Path,
    stamp: Stamp,
    records: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
    access: super::access::Access,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(HEADER + records.len() * 300);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&stamp.uuid);
    out.extend_from_slice(&stamp.seq.to_le_bytes());
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for (id, record) in records {
        let len = u32::try_from(record.len()).map_err(std::io::Error::other)?;
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(record);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    // No fsync: a cache lost or torn by a crash fails its checks and is written again.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{OBJECTS_CACHE}."))
        .tempfile_in(dir)?;
    tmp.write_all(&out)?;
    super::access::restrict(tmp.path(), access)?;
    tmp.persist(dir.join(OBJECTS_CACHE)).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the cache (the store has too few objects for one to help).
pub fn remove(dir: &Path) {
    match std::fs::remove_file(dir.join(OBJECTS_CACHE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::debug!("cannot remove {OBJECTS_CACHE} in {}: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        uuid: [7; 16],
        seq: 42,
    };

    fn written(records: &[(u64, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            STAMP,
            records.iter().copied(),
            crate::store::access::Access::Private,
        )
        .unwrap();
        dir
    }

    /// Object ID and record bytes.
    type Records = Vec<(u64, Vec<u8>)>;

    fn read_all(dir: &Path) -> Option<(Stamp, Records)> {
        let mut seen = Vec::new();
        let stamp = read(dir, |id, r| {
            seen.push((id, r.to_vec()));
            true
        })?;
        Some((stamp, seen))
    }

    #[test]
    fn written_records_read_back_with_their_stamp_and_exact_bytes() {
        let dir = written(&[(1, b"one"), (0x0102_0304_0506_0708, b""), (3, b"three")]);
        let bytes = std::fs::read(dir.path().join(OBJECTS_CACHE)).unwrap();
        assert_eq!(&bytes[..16], b"key4c objects\x00\x00\x01");
        assert_eq!(&bytes[16..32], &[7; 16]);
        assert_eq!(&bytes[32..40], &42u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &3u64.to_le_bytes());
        assert_eq!(&bytes[48..63], b"\x01\0\0\0\0\0\0\0\x03\0\0\0one");
        assert_eq!(bytes.len(), 48 + 15 + 12 + 17 + 4);
        let (stamp, seen) = read_all(dir.path()).unwrap();
        assert_eq!(stamp, STAMP);
        assert_eq!(
            seen,
            vec![
                (1, b"one".to_vec()),
                (0x0102_0304_0506_0708, vec![]),
                (3, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn any_damage_or_truncation_makes_it_unusable() {
        let dir = written(&[(1, b"one"), (2, b"two")]);
        let path = dir.path().join(OBJECTS_CACHE);
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(read_all(dir.path()), None, "bit flipped at {at}");
            std::fs::write(&path, &good[..at]).unwrap();
            assert_eq!(read_all(dir.path()), None, "cut at {at}");
        }
        std::fs::write(&path, &good).unwrap();
        assert!(read_all(dir.path()).is_some());
        // The consumer refusing a record makes the whole cache unusable.
        assert_eq!(read(dir.path(), |id, _| id != 2), None);
        remove(dir.path());
        assert_eq!(read_all(dir.path()), None);
    }
}
