//! The audit log: the file `audit.jsonl` in the store directory, one JSON object per security
//! event and line, appended and never rewritten.
//!
//! It is not in sled: a token's history only grows (every key generated or deleted adds to
//! it), and in sled it grew the log that sled replays and pages through at every start: on a
//! token of 10,000 objects that had seen 30,000 key pairs come and go, 124,000 events made the
//! log 38.8 MB instead of 4.2 MB and doubled the time sled takes to open it.
//!
//! Durability: an event is appended before the state change it reports, and synced before that
//! change is made durable ([`AuditFile::sync`] in the store's durable write), so after a crash
//! no change is in the store without its event. A line cut short by a crash is ended by the
//! next process that opens the file, and reading skips it and says so.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::access::Access;
use super::records::AuditRecord;

/// The audit log's file name in the store directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// The audit log opened for appending, by the process that holds the store.
pub struct AuditFile {
    file: File,
    /// Appended since the last sync.
    unsynced: bool,
}

impl AuditFile {
    /// Opens (creating if absent) the audit log in the store directory `dir`.
    pub fn open(dir: &Path, access: Access) -> std::io::Result<AuditFile> {
        let path = dir.join(AUDIT_FILE);
        let file = super::access::create_options(access)
            .read(true)
            .append(true)
            .open(&path)?;
        let meta = file.metadata()?;
        if meta.mode() & 0o777 != access.file_mode() {
            // Just made (with the umask): the store's mode.
            super::access::restrict(&path, access)?;
        }
        let len = meta.len();
        let mut audit = AuditFile {
            file,
            unsynced: false,
        };
        if len > 0 {
            let mut last = [0u8];
            audit.file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                // A record cut short by a crash: the next one starts on a line of its own.
                audit.write(b"\n")?;
            }
        }
        Ok(audit)
    }

    /// Appends one event; durable once [`AuditFile::sync`] returns.
    pub fn append(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        self.write(&line(record)?)
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // One write call per line: with O_APPEND the line lands whole at the end.
        (&self.file).write_all(bytes)?;
        self.unsynced = true;
        Ok(())
    }

    /// Makes every appended event durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }
}

impl Drop for AuditFile {
    fn drop(&mut self) {
        // Events that no durable write followed (the store handed over, C_Finalize).
        if let Err(e) = self.sync() {
            log::warn!("cannot sync the audit log: {e}");
        }
    }
}

/// One event as its line of the file, newline included.
pub fn line(record: &AuditRecord) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// The audit log as read from its file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuditLog {
    /// Every event, oldest first.
    pub records: Vec<AuditRecord>,
    /// Lines that are not an event (cut short by a crash, or damaged): skipped.
    pub damaged: usize,
}

/// Reads the audit log of the store directory `dir` (empty when there is none). Needs no
/// hold on the store: the holder only appends whole lines.
pub fn read(dir: &Path) -> std::io::Result<AuditLog> {
    let bytes = match std::fs::read(dir.join(AUDIT_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditLog::default()),
        Err(e) => return Err(e),
    };
    Ok(parse(&bytes))
}

/// The events in the bytes of an audit log file. A last line without its newline is being
/// written (or was cut by a crash that nobody has opened the store after): not counted.
pub fn parse(bytes: &[u8]) -> AuditLog {
    let mut log = AuditLog::default();
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return log,
    };
    for line in complete.split(|&b| b == b'\n') {
        match serde_json::from_slice::<AuditRecord>(line) {
            Ok(record) => log.records.push(record),
            Err(_) => log.damaged += 1,
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> AuditRecord {
        AuditRecord {
            time: format!("2026-11-27T00:00:{n:02}Z"),
            event: "login".into(),
            subject: "User \"quoted\"\nnewline".into(),
            outcome: "CKR_PIN_INCORRECT".into(),
        }
    }

    /// Opens the log in `dir` as a new process would, appends `events`, closes it.
    fn append(dir: &Path, events: &[u32]) {
        let mut audit = AuditFile::open(dir, Access::Private).unwrap();
        for n in events {
            audit.append(&event(*n)).unwrap();
        }
    }

    #[test]
    fn appended_events_read_back_in_order_with_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &[1, 2]);
        let bytes = std::fs::read(dir.path().join(AUDIT_FILE)).unwrap();
        let first = br#"{"time":"2026-11-27T00:00:01Z","event":"login","subject":"User \"quoted\"\nnewline","outcome":"CKR_PIN_INCORRECT"}"#;
        assert_eq!(&bytes[..first.len()], first);
        assert_eq!(bytes[first.len()], b'\n');
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 2);
        let log = read(dir.path()).unwrap();
        assert_eq!(log.records, vec![event(1), event(2)]);
        assert_eq!(log.damaged, 0);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped_and_the_next_event_kept() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &[1]);
        // A crash in the middle of the second line.
        let path = dir.path().join(AUDIT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"time":"2026-11-27T00:00:02Z","ev"#);
        std::fs::write(&path, &bytes).unwrap();
        // Not yet ended: the cut line is not counted (it may be being written).
        let log = read(dir.path()).unwrap();
        assert_eq!((log.records.len(), log.damaged), (1, 0));
        append(dir.path(), &[3]);
        let log = read(dir.path()).unwrap();
        assert_eq!(log.records, vec![event(1), event(3)]);
        assert_eq!(log.damaged, 1);
    }

    #[test]
    fn no_file_is_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), AuditLog::default());
        assert_eq!(parse(b"no newline at all"), AuditLog::default());
    }
}
