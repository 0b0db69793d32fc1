//! Noticing a store restored from a copy.
//!
//! Copying a store's directory and putting the copy back later rolls everything in it back,
//! the PIN failure counters included: copy, guess four PINs, restore, guess four more. No
//! software token can stop that (the copy is the user's own files), but it can notice it for
//! the same user: the newest commit number this user has seen of each token is kept outside
//! the store, in `<state dir>/seen/<service UUID>`, raised after every durable write and at
//! every open. A store whose commit number is below it was put back from a copy, and is
//! refused until the SO accepts the restore (`key4c store accept-restore`).
//!
//! The record is one fixed-width number written in place (one `pwrite` per commit, no file
//! made and renamed), without fsync: it guards against a restore, not a crash (after a power
//! cut the store's own commit file is the durable truth, and the record may lag it, which only
//! lets one restore to that lagging point go unnoticed).

use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// The newest commit number this user has seen of one token.
pub struct Seen {
    /// `None` where the user has no state directory: restores are then not noticed.
    file: Option<PathBuf>,
    /// The highest number this process wrote to or read from the file.
    known: AtomicU64,
    /// The file, opened at the first write.
    open: Mutex<Option<std::fs::File>>,
}

impl Seen {
    /// The record of the token with service `uuid` in `state_dir`.
    pub fn new(state_dir: Option<&Path>, uuid: [u8; 16]) -> Seen {
        let file = state_dir.map(|d| {
            d.join("seen")
                .join(uuid::Uuid::from_bytes(uuid).simple().to_string())
        });
        Seen {
            file,
            known: AtomicU64::new(0),
            open: Mutex::new(None),
        }
    }

    /// The newest commit number recorded, if any.
    pub fn newest(&self) -> Option<u64> {
        let file = self.file.as_ref()?;
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                log::warn!(
                    "cannot read {}: {e}; a restored store goes unnoticed",
                    file.display()
                );
                return None;
            }
        };
        match text.trim().parse::<u64>() {
            Ok(seq) => {
                self.known.fetch_max(seq, Ordering::AcqRel);
                Some(seq)
            }
            Err(_) => {
                log::warn!(
                    "{} is damaged (not a commit number); it is written again at the next write",
                    file.display()
                );
                None
            }
        }
    }

    /// Records that the store is at commit `seq`, when that is newer than what is recorded.
    pub fn record(&self, seq: u64) {
        if self.known.fetch_max(seq, Ordering::AcqRel) >= seq {
            return;
        }
        if let Err(e) = self.write(seq) {
            if let Some(file) = &self.file {
                log::warn!("cannot record the store's commit number in {}: {e}; a restore of the store to an earlier copy may go unnoticed", file.display());
            }
        }
    }

    /// Records `seq` even when it is older: the SO accepted a restore.
    pub fn reset(&self, seq: u64) -> std::io::Result<()> {
        self.known.store(seq, Ordering::Release);
        self.write(seq)
    }

    fn write(&self, seq: u64) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut open = self.open.lock();
        if open.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)?;
            *open = Some(file);
        }
        let Some(file) = open.as_ref() else {
            return Ok(());
        };
        // One fixed-width record written in place: a write per commit costs one pwrite, not a
        // file made and renamed. A write torn by a crash reads as damaged, and is written again
        // at the next commit.
        file.write_all_at(format!("{seq:020}\n").as_bytes(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_newer_numbers_until_reset() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Seen::new(Some(dir.path()), [7; 16]);
        assert_eq!(seen.newest(), None);
        seen.record(5);
        seen.record(3);
        let file = dir.path().join("seen/07070707070707070707070707070707");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "00000000000000000005\n"
        );
        // Another process (a new record over the same file) sees it, and a lower number is kept out.
        let other = Seen::new(Some(dir.path()), [7; 16]);
        assert_eq!(other.newest(), Some(5));
        other.record(4);
        assert_eq!(seen.newest(), Some(5));
        other.reset(2).unwrap();
        assert_eq!(seen.newest(), Some(2));
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(seen.newest(), None);
        assert_eq!(Seen::new(None, [7; 16]).newest(), None);
    }
}
