//! Storage: one sled database per token, opened by one process at a time and handed between
//! processes on request ([`lease`]).
//!
//! Layout (default tree): `format` → the store's layout version, `service` → [`ServiceRecord`],
//! `token` → [`TokenRecord`] (absent until the first C_InitToken), `commit` → the commit
//! counter ([`commit`]). Token objects live in the `objects` tree, and a copy of them for fast
//! starts in [`objects_cache`]. The audit log is a file of its own ([`audit`]); stores of
//! layout 1 kept it in the tree `audit` and are moved over once opened and read without error
//! ([`OpenStore::upgrade`]).
//!
//! Every write that must survive a crash is one sled transaction that also raises the commit
//! counter, flushed, then recorded in the side file `commit`, before the caller learns it
//! succeeded.
//!
//! Opening: with sled's lock held and before sled runs, the raw log is checked against the
//! side file ([`log_check`]): damage that sled's recovery would turn into silently dropped
//! writes refuses the store untouched; damage that looks like an interrupted write is first
//! recovered on a copy. Once sled has opened the store, its commit counter must be at least the
//! side file's.

pub mod access;
pub mod audit;
pub mod commit;
pub mod holder;
mod lease;
pub mod log_check;
pub mod objects_cache;
pub mod queue;
pub mod records;
pub mod rollback;

pub use holder::HOLDER_FILE;
pub use lease::{Lease, Store};
pub use queue::QUEUE_DIR;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::crypto::master_key::{MAX_KDF_ITERATIONS, MIN_KDF_ITERATIONS};
use access::Access;
use audit::{AuditFile, AUDIT_FILE};
use commit::{SideError, SideFile, COMMIT_FILE};
use log_check::Verdict;
use records::{
    decode, decode_token, encode, AuditRecord, DecodeError, ServiceRecord, TokenRecord,
    PIN_RETRY_LIMITS,
};

const KEY_FORMAT: &[u8] = b"format";
const KEY_SERVICE: &[u8] = b"service";
const KEY_TOKEN: &[u8] = b"token";
const KEY_COMMIT: &[u8] = b"commit";
/// The objects' generation: a new random number (top bit set, so it is never a commit number)
/// in every write that changes the `objects` tree, what the objects cache is stamped with. A
/// write of the token record alone (every PIN attempt) leaves it, and so the cache, as it is.
const KEY_OBJECTS_GENERATION: &[u8] = b"objects_generation";
const TREE_OBJECTS: &[u8] = b"objects";
/// The journal of object changes, in the default tree: under `change/<commit>` (big-endian),
/// the IDs of the object records that write changed (8 bytes each), or `*` when it changed
/// all of them (re-initialisation). Written in the write's own transaction, the last
/// [`JOURNAL_LEN`] kept: a process whose view is older reloads only the objects changed since,
/// when the journal has every write in between; a gap (pruned, or written by a key4c from
/// before the journal) means a full reload.
const CHANGE_PREFIX: &[u8] = b"change/";
const JOURNAL_LEN: u64 = 4096;
/// Layout 1's audit log.
const TREE_AUDIT: &[u8] = b"audit";
/// The store's layout, recorded under `format`. 1: the audit log in the tree `audit`;
/// 2: in [`AUDIT_FILE`].
const STORE_LAYOUT: u32 = 2;
/// How long opening a store waits for this same process's previous instance to release it.
const OWN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a process waits for the store by default ([`StoreOptions::wait`]).
pub const DEFAULT_STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Who may read it.
    pub access: Access,
    /// This user's state directory, where the newest commit seen of each token is kept
    /// ([`rollback`]); `None`: a restored store is not noticed.
    pub state_dir: Option<PathBuf>,
    /// Open a store older than the newest commit seen (the SO accepting a deliberate restore).
    pub accept_restore: bool,
    /// How long a call waits for the store while other processes have it or queue for it.
    pub wait: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            access: Access::default(),
            state_dir: None,
            accept_restore: false,
            wait: DEFAULT_STORE_WAIT,
        }
    }
}

/// Why the store cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Other processes have the store and this one could not have it in time.
    #[error(
        "the store {path} could not be had: {detail} (README, \"One token, several processes\")"
    )]
    Locked {
        /// Store directory.
        path: PathBuf,
        /// Who holds it, what could be seen of them, and what to do.
        detail: String,
    },
    /// Written by a newer key4c: refused, left untouched.
    #[error("the store {path} was written by a newer key4c: {detail}; upgrade key4c, the store was not modified")]
    Newer {
        /// Store directory.
        path: PathBuf,
        /// What was newer.
        detail: String,
    },
    /// Damaged: refused, left untouched.
    #[error("the store {path} is corrupt ({detail}); it was not modified. Restore it from a backup or move it away to start a new token")]
    Corrupt {
        /// Store directory.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Open to more users than the configuration allows: refused before anything is read.
    #[error("the store {path} is refused: {detail}")]
    Access {
        /// Store directory.
        path: PathBuf,
        /// What is open to whom, and the fix.
        detail: String,
    },
    /// Older than what this user has seen of it: put back from a copy.
    #[error("the store {path} holds write #{seq}, but this user has seen write #{seen} of it: it was restored from an earlier copy, which also rolls the PIN failure counters back. Nothing in it was changed. If the restore was deliberate, the SO accepts it with `key4c store accept-restore`")]
    RolledBack {
        /// Store directory.
        path: PathBuf,
        /// The store's commit number.
        seq: u64,
        /// The newest one seen.
        seen: u64,
    },
    /// An I/O failure (permissions, disk full, ...).
    #[error("store {path}: {detail}")]
    Io {
        /// Store directory.
        path: PathBuf,
        /// The failure.
        detail: String,
    },
}

/// The two trees of a durable write's transaction: default, objects.
type Trees = (TransactionalTree, TransactionalTree);
/// What a durable write's body may fail with inside the transaction.
type TxError = ConflictableTransactionError<()>;

/// How many cores this process may use (asked once: the answer reads cgroup files).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The process in which sled first ran (0 before): a forked child inherits it.
static SLED_STARTED_IN: AtomicU32 = AtomicU32::new(0);

/// The store as this process has it open: sled, its trees and the commit counter. Used through
/// [`Store`], which opens it when needed and lets go of it when another process asks.
pub struct OpenStore {
    path: PathBuf,
    access: Access,
    /// The newest commit this user has seen of the token, kept outside the store.
    seen: rollback::Seen,
    db: sled::Db,
    objects: sled::Tree,
    /// The audit log, opened at the first event this process records.
    audit: Mutex<Option<AuditFile>>,
    /// The commit number of the last write applied to sled. Held while a write is applied, so
    /// numbers follow the order of the log.
    seq: Mutex<u64>,
    /// The side file: the number of the last write known durable.
    side: Mutex<SideFile>,
}

impl OpenStore {
    /// Opens (creating if absent) the store in `path` as `options` say.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<OpenStore, StoreError> {
        let access = options.access;
        let io = |detail: String| StoreError::Io {
            path: path.to_path_buf(),
            detail,
        };
        // sled's thread pool does not survive fork(): in a child of a process that used it,
        // sled waits forever for threads the child does not have.
        let me = std::process::id();
        match SLED_STARTED_IN.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {}
            Err(pid) if pid == me => {}
            Err(pid) => {
                return Err(io(format!(
                    "this process was forked from process {pid}, which had opened a store: sled cannot run in a forked child; initialise the module in a new program (exec) instead"
                )))
            }
        }
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        access::create_dir(path, access).map_err(|e| io(io_sentence(&e, "creating", path)))?;
        access::check(path, access)?;
        // sled's lock, held while its files are checked: nobody writes them meanwhile.
        let lock = lock_log(path)?;
        let side = match SideFile::read(path) {
            Ok(None) => None,
            Ok(Some(Ok(side))) => Some(side),
            Ok(Some(Err(SideError::Damaged(d)))) => return Err(corrupt(d)),
            Ok(Some(Err(SideError::Newer(v)))) => {
                return Err(StoreError::Newer {
                    path: path.to_path_buf(),
                    detail: format!("commit file format {v}"),
                })
            }
            Err(e) => return Err(io(format!("cannot read {COMMIT_FILE}: {e}"))),
        };
        let acknowledged = side.map(|(seq, _)| seq);
        remove_cut_snapshots(path);
        let started = std::time::Instant::now();
        let verdict = check_log(path, acknowledged)?;
        log::debug!(
            "store {}: log checked in {:?}: {verdict:?}",
            path.display(),
            started.elapsed()
        );
        match verdict {
            Verdict::Clean => {}
            Verdict::Damaged(d) => return Err(corrupt(d)),
            Verdict::Suspicious(why) => {
                log::warn!(
                    "store {}: {why}; recovering it on a copy first",
                    path.display()
                );
                verify_on_copy(path, acknowledged).map_err(|d| corrupt(format!("{why}; {d}")))?;
            }
        }
        drop(lock);
        let checked = started.elapsed();
        let db = open_sled(path)?;
        let sled_opened = started.elapsed();
        access::restrict_sled_files(path, access);
        let objects = db.open_tree(TREE_OBJECTS).map_err(|e| io(e.to_string()))?;
        let recorded = match db.get(KEY_COMMIT).map_err(|e| io(e.to_string()))? {
            Some(v) => Some(
                commit::decode_record(&v)
                    .ok_or_else(|| corrupt("the commit record is damaged".into()))?,
            ),
            None => None,
        };
        let is_new = db.is_empty() && objects.is_empty();
        let side = match (side, recorded) {
            (Some((acked, slot)), Some(seq)) if seq >= acked => {
                SideFile::open(path, acked, slot).map_err(|e| io(e.to_string()))?
            }
            (Some((acked, _)), Some(seq)) => {
                return Err(corrupt(format!(
                    "{} missing: the log is damaged (it ends at write #{seq}, the store acknowledged #{acked})",
                    log_check::acknowledged_writes(acked - seq)
                )))
            }
            (Some((0, slot)), None) if is_new => {
                SideFile::open(path, 0, slot).map_err(|e| io(e.to_string()))?
            }
            (Some((acked, _)), None) => {
                return Err(corrupt(format!(
                    "the log holds none of the store's {acked} acknowledged writes: the log is damaged"
                )))
            }
            (None, Some(_)) => {
                return Err(corrupt(format!(
                    "its commit file {COMMIT_FILE} is missing: acknowledged writes cannot be checked"
                )))
            }
            // A new store, or one written before the commit counter: it starts at 0, durably,
            // before anything else is written.
            (None, None) => SideFile::create(path, 0, access)
                .map_err(|e| io(io_sentence(&e, "creating", &path.join(COMMIT_FILE))))?,
        };
        let mut store = OpenStore {
            path: path.to_path_buf(),
            access,
            seen: rollback::Seen::new(None, [0; 16]),
            db,
            objects,
            audit: Mutex::new(None),
            seq: Mutex::new(recorded.unwrap_or(0)),
            side: Mutex::new(side),
        };
        store.check_or_create_format(is_new)?;
        store.seen = rollback::Seen::new(options.state_dir.as_deref(), store.service()?.uuid);
        let seq = store.seq();
        match store.seen.newest() {
            Some(seen) if seen > seq && !options.accept_restore => {
                return Err(StoreError::RolledBack {
                    path: path.to_path_buf(),
                    seq,
                    seen,
                })
            }
            Some(seen) if seen > seq => log::warn!(
                "store {}: holds write #{seq}, write #{seen} was seen: opened to accept the restore",
                path.display()
            ),
            _ => store.seen.record(seq),
        }
        if recorded.is_none() && !is_new {
            // Written before the commit counter: from now on it is counted.
            store.write_durable(|_| Ok(()))?;
        }
        holder::write(path, access);
        log::debug!(
            "store {}: opened in {:?} (log checked after {checked:?}, sled opened after {sled_opened:?})",
            path.display(),
            started.elapsed()
        );
        Ok(store)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The commit number of the last write.
    pub fn seq(&self) -> u64 {
        *self.seq.lock()
    }

    fn check_or_create_format(&self, is_new: bool) -> Result<(), StoreError> {
        match self.get(KEY_FORMAT)? {
            Some(bytes) => {
                let version: u32 = self.decode(KEY_FORMAT, &bytes)?;
                match version {
                    1 | STORE_LAYOUT => Ok(()),
                    0 => Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: "store format 0".into(),
                    }),
                    _ => Err(StoreError::Newer {
                        path: self.path.clone(),
                        detail: format!(
                            "store format {version}, this key4c reads up to {STORE_LAYOUT}"
                        ),
                    }),
                }
            }
            None if is_new => {
                let uuid = crate::crypto::random_array::<16>()
                    .map_err(|_| self.io("the random generator failed".into()))?;
                let uuid = *uuid::Builder::from_random_bytes(uuid)
                    .into_uuid()
                    .as_bytes();
                let service = encode(&ServiceRecord {
                    uuid,
                    api_key_sha256: None,
                })
                .map_err(|e| self.io(e))?;
                let format = encode(&STORE_LAYOUT).map_err(|e| self.io(e))?;
                self.write_durable(|(d, _)| {
                    d.insert(KEY_SERVICE, service.clone())?;
                    d.insert(KEY_FORMAT, format.clone())?;
                    Ok(())
                })
            }
            None => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "it has data but no format record".into(),
            }),
        }
    }

    /// Brings a store of an older layout to the current one. Called once the token has been
    /// read whole without error: a store refused as damaged is left as it was.
    pub fn upgrade(&self) -> Result<(), StoreError> {
        let version: u32 = match self.get(KEY_FORMAT)? {
            Some(bytes) => self.decode(KEY_FORMAT, &bytes)?,
            None => STORE_LAYOUT,
        };
        if version == 1 {
            self.move_audit_log()
        } else {
            self.drop_audit_tree()
        }
    }

    /// Moves a layout-1 store's audit log out of sled into [`AUDIT_FILE`], then records
    /// layout 2. Interrupted, it is done again: events already in the file are not copied twice.
    fn move_audit_log(&self) -> Result<(), StoreError> {
        let tree = self
            .db
            .open_tree(TREE_AUDIT)
            .map_err(|e| self.sled_error(e))?;
        let mut text = Vec::new();
        for entry in tree.iter() {
            let (_, bytes) = entry.map_err(|e| self.sled_error(e))?;
            let record: AuditRecord = self.decode(TREE_AUDIT, &bytes)?;
            text.extend(audit::line(&record).map_err(|e| self.io(e.to_string()))?);
        }
        let file = self.path.join(AUDIT_FILE);
        let existing = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.io(format!("cannot read {AUDIT_FILE}: {e}"))),
        };
        if !text.is_empty() && !existing.starts_with(&text) {
            text.extend_from_slice(&existing);
            let moving = self.path.join(format!("{AUDIT_FILE}.moving"));
            let write = || -> std::io::Result<()> {
                let mut f = access::create_options(self.access)
                    .write(true)
                    .truncate(true)
                    .open(&moving)?;
                access::restrict(&moving, self.access)?;
                std::io::Write::write_all(&mut f, &text)?;
                f.sync_all()?;
                std::fs::rename(&moving, &file)?;
                std::fs::File::open(&self.path)?.sync_all()
            };
            write()
                .map_err(|e| self.io(format!("cannot move the audit log to {AUDIT_FILE}: {e}")))?;
        }
        let format = encode(&STORE_LAYOUT).map_err(|e| self.io(e))?;
        self.write_durable(|(d, _)| {
            d.insert(KEY_FORMAT, format.clone())?;
            Ok(())
        })?;
        log::info!(
            "store {}: audit log moved to {AUDIT_FILE} (store layout {STORE_LAYOUT})",
            self.path.display()
        );
        drop(tree);
        self.drop_audit_tree()
    }

    /// Removes layout 1's audit tree when a move to [`AUDIT_FILE`] stopped after recording the
    /// new layout.
    fn drop_audit_tree(&self) -> Result<(), StoreError> {
        if self.db.tree_names().iter().any(|n| n == TREE_AUDIT) {
            self.db
                .drop_tree(TREE_AUDIT)
                .map_err(|e| self.sled_error(e))?;
            self.flush()?;
        }
        Ok(())
    }

    /// Applies `body` and the next commit number as one sled transaction, makes it durable,
    /// then records the number in the side file. Audit events appended before it are made
    /// durable first: no change is in the store without its event.
    fn write_durable<R>(
        &self,
        body: impl Fn(&Trees) -> Result<R, TxError>,
    ) -> Result<R, StoreError> {
        self.write_changes_durable(Changed::Nothing, body)
    }

    /// [`Self::write_durable`] of a write that changes object records, journaled with it.
    fn write_changes_durable<R>(
        &self,
        changed: Changed<'_>,
        body: impl Fn(&Trees) -> Result<R, TxError>,
    ) -> Result<R, StoreError> {
        let (seq, out) = {
            let mut last = self.seq.lock();
            let seq = *last + 1;
            let record = commit::encode_record(seq);
            if let Some(audit) = self.audit.lock().as_mut() {
                audit.sync().map_err(|e| {
                    self.io(io_sentence(&e, "writing", &self.path.join(AUDIT_FILE)))
                })?;
            }
            let out = (&*self.db as &sled::Tree, &self.objects)
                .transaction(|trees| {
                    let out = body(trees)?;
                    trees.0.insert(KEY_COMMIT, &record[..])?;
                    trees.0.insert(&change_key(seq)[..], changed.encode())?;
                    if seq > JOURNAL_LEN {
                        trees.0.remove(&change_key(seq - JOURNAL_LEN)[..])?;
                    }
                    Ok(out)
                })
                .map_err(|e: sled::transaction::TransactionError<()>| match e {
                    sled::transaction::TransactionError::Storage(e) => {
                        self.io(sled_sentence(&e, "writing", &self.path.join("db")))
                    }
                    sled::transaction::TransactionError::Abort(()) => {
                        self.io("the write was aborted".into())
                    }
                })?;
            *last = seq;
            (seq, out)
        };
        self.flush()?;
        self.side.lock().record(seq).map_err(|e| {
            self.io(format!(
                "the write is durable but {COMMIT_FILE} could not record it: {}",
                io_sentence(&e, "writing", &self.path.join(COMMIT_FILE))
            ))
        })?;
        self.seen.record(seq);
        Ok(out)
    }

    /// Accepts the store as it is after a deliberate restore: its commit number becomes the
    /// newest this user has seen.
    pub fn accept_restore(&self) -> Result<(), StoreError> {
        let seq = self.seq();
        self.seen.reset(seq).map_err(|e| {
            self.io(format!(
                "cannot record write #{seq} as the newest seen: {e}"
            ))
        })
    }

    /// The service record (created with the store).
    pub fn service(&self) -> Result<ServiceRecord, StoreError> {
        let bytes = self.get(KEY_SERVICE)?.ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            detail: "the service record is missing".into(),
        })?;
        self.decode(KEY_SERVICE, &bytes)
    }

    /// Replaces the service record durably.
    pub fn put_service_durable(&self, service: &ServiceRecord) -> Result<(), StoreError> {
        let bytes = encode(service).map_err(|e| self.io(e))?;
        self.write_durable(|(d, _)| {
            d.insert(KEY_SERVICE, bytes.clone())?;
            Ok(())
        })
    }

    /// Appends one audit record; durable once the next durable write (every caller's own)
    /// returns.
    pub fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.with_audit(|audit| audit.append(record))
    }

    /// Appends one audit record and makes it durable.
    pub fn append_audit_durable(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.with_audit(|audit| {
            audit.append(record)?;
            audit.sync()
        })
    }

    fn with_audit(
        &self,
        f: impl FnOnce(&mut AuditFile) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let mut audit = self.audit.lock();
        let file =
            match audit.as_mut() {
                Some(file) => file,
                None => audit.insert(AuditFile::open(&self.path, self.access).map_err(|e| {
                    self.io(io_sentence(&e, "opening", &self.path.join(AUDIT_FILE)))
                })?),
            };
        f(file).map_err(|e| self.io(io_sentence(&e, "writing", &self.path.join(AUDIT_FILE))))
    }

    /// The token record, `None` before the first C_InitToken.
    pub fn token(&self) -> Result<Option<TokenRecord>, StoreError> {
        let Some(bytes) = self.get(KEY_TOKEN)? else {
            return Ok(None);
        };
        let token = decode_token(&bytes).map_err(|e| self.decode_error(KEY_TOKEN, e))?;
        if let Some(limit) = token.pin_retry_limit {
            if !PIN_RETRY_LIMITS.contains(&limit) {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!(
                        "record \"token\": PIN retry limit {limit} is outside {}..={}",
                        PIN_RETRY_LIMITS.start(),
                        PIN_RETRY_LIMITS.end()
                    ),
                });
            }
        }
        // A tampered cost would make every login run for hours: refuse it like any damage.
        for pin in [&token.so, &token.user] {
            if let Some(w) = &pin.wrapped_master_key {
                if !(MIN_KDF_ITERATIONS..=MAX_KDF_ITERATIONS).contains(&w.iterations) {
                    return Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: format!(
                            "record \"token\": KDF iteration count {} is outside {MIN_KDF_ITERATIONS}..={MAX_KDF_ITERATIONS}",
                            w.iterations
                        ),
                    });
                }
            }
        }
        Ok(Some(token))
    }

    /// Writes the token record and makes it durable before returning.
    pub fn put_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let bytes = encode(token).map_err(|e| self.io(e))?;
        let generation = self.new_generation()?;
        self.write_durable(|(d, _)| {
            d.insert(KEY_TOKEN, bytes.clone())?;
            // A store from before the generation gets one, so the cache survives PIN attempts.
            if d.get(KEY_OBJECTS_GENERATION)?.is_none() {
                d.insert(KEY_OBJECTS_GENERATION, &generation[..])?;
            }
            Ok(())
        })
    }

    /// A new objects generation ([`KEY_OBJECTS_GENERATION`]), big-endian.
    fn new_generation(&self) -> Result<[u8; 8], StoreError> {
        let mut generation = crate::crypto::random_array::<8>()
            .map_err(|_| self.io("the random generator failed".into()))?;
        generation[0] |= 0x80;
        Ok(generation)
    }

    /// What the objects cache is stamped with: the objects' generation, or for a store that
    /// has none yet (written before it existed) the commit number.
    pub fn objects_generation(&self) -> Result<u64, StoreError> {
        match self.get(KEY_OBJECTS_GENERATION)? {
            Some(v) => {
                v.as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        path: self.path.clone(),
                        detail: "the objects generation is not 8 bytes".into(),
                    })
            }
            None => Ok(self.seq()),
        }
    }

    /// Re-initialises the token: every object removed and the new token record written, as one
    /// durable unit.
    pub fn reinit_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let bytes = encode(token).map_err(|e| self.io(e))?;
        let keys = self
            .objects
            .iter()
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sled_error(e))?;
        let generation = self.new_generation()?;
        self.write_changes_durable(Changed::All, |(d, o)| {
            for key in &keys {
                o.remove(key)?;
            }
            d.insert(KEY_TOKEN, bytes.clone())?;
            d.insert(KEY_OBJECTS_GENERATION, &generation[..])?;
            Ok(())
        })
    }

    /// A new, never used object record key.
    pub fn new_object_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(|e| self.io(e.to_string()))
    }

    /// Decodes every object record and hands it to `f`. Returns how many. Loading the objects
    /// is most of a cold start, so it runs as a pipeline: this thread reads the records out of
    /// sled while a second one decodes them and runs `f` (on one core, or when no thread can
    /// be started, this thread does both).
    pub fn for_each_object<T, F>(&self, f: F) -> Result<usize, StoreError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(u64, T) + Sync,
    {
        self.each_object(f, None)
    }

    /// [`OpenStore::for_each_object`], then writes the objects cache ([`objects_cache`]) of
    /// what it read, stamped with the store's `uuid` (called when there was no usable cache).
    pub fn load_objects<T, F>(&self, uuid: [u8; 16], f: F) -> Result<usize, StoreError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(u64, T) + Sync,
    {
        let seq = self.objects_generation()?;
        let mut read = Vec::new();
        let n = self.each_object(f, Some(&mut read))?;
        let stamp = objects_cache::Stamp { uuid, seq };
        if n < objects_cache::CACHE_FROM {
            objects_cache::remove(&self.path);
        } else if self.objects_generation()? == seq {
            // (Written only when no write of the objects came in between: the records are
            // then the store's of this generation.)
            let started = std::time::Instant::now();
            let records = read.iter().map(|(k, v)| {
                let id = <[u8; 8]>::try_from(k.as_ref()).unwrap_or_default();
                (u64::from_be_bytes(id), v.as_ref())
            });
            match objects_cache::write(&self.path, stamp, records, self.access) {
                Ok(()) => log::debug!(
                    "store {}: objects cache written in {:?}",
                    self.path.display(),
                    started.elapsed()
                ),
                Err(e) => log::warn!(
                    "store {}: cannot write {}: {e}",
                    self.path.display(),
                    objects_cache::OBJECTS_CACHE
                ),
            }
        }
        Ok(n)
    }

    fn each_object<T, F>(
        &self,
        f: F,
        mut keep: Option<&mut Vec<(sled::IVec, sled::IVec)>>,
    ) -> Result<usize, StoreError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(u64, T) + Sync,
    {
        const BATCH: usize = 256;
        let decode_all = |batch: Vec<(sled::IVec, sled::IVec)>| -> Result<usize, StoreError> {
            for (key, bytes) in &batch {
                let id = <[u8; 8]>::try_from(key.as_ref()).map_err(|_| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: "an object key is not 8 bytes".into(),
                })?;
                f(u64::from_be_bytes(id), self.decode(b"object", bytes)?);
            }
            Ok(batch.len())
        };
        let mut records = self.objects.iter();
        let mut next_batch = || -> Result<Vec<_>, StoreError> {
            let mut batch = Vec::with_capacity(BATCH);
            for entry in records.by_ref().take(BATCH) {
                batch.push(entry.map_err(|e| self.sled_error(e))?);
            }
            if let Some(keep) = keep.as_mut() {
                keep.extend(batch.iter().cloned());
            }
            Ok(batch)
        };
        let in_this_thread = |mut batch: Vec<_>, next: &mut dyn FnMut() -> Result<Vec<_>, _>| {
            let mut n = 0;
            while !batch.is_empty() {
                n += decode_all(batch)?;
                batch = next()?;
            }
            Ok(n)
        };
        let first = next_batch()?;
        if first.len() < BATCH || cores() < 2 {
            return in_this_thread(first, &mut next_batch);
        }
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<_>>(64);
        let receive = Mutex::new(receive);
        let receive = &receive;
        std::thread::scope(|scope| {
            // Takes batches until none is left; the reader joins in once it has read all. After
            // an error it still takes (and drops) every batch: a reader blocked on a full
            // channel would otherwise wait for ever.
            let decode_batches = move || {
                let mut n = 0;
                let mut failed = None;
                loop {
                    // The lock only while taking a batch, not while decoding it.
                    let Ok(batch) = receive.lock().recv() else {
                        return failed.map_or(Ok(n), Err);
                    };
                    if failed.is_none() {
                        match decode_all(batch) {
                            Ok(k) => n += k,
                            Err(e) => failed = Some(e),
                        }
                    }
                }
            };
            let decoder = std::thread::Builder::new()
                .name("key4c-load".into())
                .spawn_scoped(scope, decode_batches);
            let Ok(decoder) = decoder else {
                return in_this_thread(first, &mut next_batch);
            };
            let mut batch = first;
            let read = loop {
                // The receiver lives until the end of this function: sending cannot fail.
                if batch.is_empty() || send.send(batch).is_err() {
                    break Ok(());
                }
                match next_batch() {
                    Ok(b) => batch = b,
                    Err(e) => break Err(e),
                }
            };
            drop(send);
            let here = if read.is_ok() {
                decode_batches()
            } else {
                Ok(0)
            };
            let there = decoder
                .join()
                .map_err(|_| self.io("the thread loading the objects failed".into()))?;
            read?;
            Ok(here? + there?)
        })
    }

    /// Writes one object record and makes it durable before returning.
    pub fn put_object_durable<T: serde::Serialize>(
        &self,
        id: u64,
        record: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(record).map_err(|e| self.io(e))?;
        let generation = self.new_generation()?;
        self.write_changes_durable(Changed::Objects(&[id]), |(d, o)| {
            o.insert(&id.to_be_bytes(), bytes.clone())?;
            d.insert(KEY_OBJECTS_GENERATION, &generation[..])?;
            Ok(())
        })
    }

    /// Writes several object records in one atomic batch, flushed before returning: after a
    /// crash either all of them are in the store or none is.
    pub fn put_objects_durable<T: serde::Serialize>(
        &self,
        records: &[(u64, T)],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, record) in records {
            batch.insert(&id.to_be_bytes(), encode(record).map_err(|e| self.io(e))?);
        }
        let ids: Vec<u64> = records.iter().map(|(id, _)| *id).collect();
        let generation = self.new_generation()?;
        self.write_changes_durable(Changed::Objects(&ids), |(d, o)| {
            o.apply_batch(&batch)?;
            d.insert(KEY_OBJECTS_GENERATION, &generation[..])?;
            Ok(())
        })
    }

    /// Deletes one object record durably.
    pub fn delete_object_durable(&self, id: u64) -> Result<(), StoreError> {
        let generation = self.new_generation()?;
        self.write_changes_durable(Changed::Objects(&[id]), |(d, o)| {
            o.remove(&id.to_be_bytes())?;
            d.insert(KEY_OBJECTS_GENERATION, &generation[..])?;
            Ok(())
        })
    }

    /// The IDs of the object records changed by the writes after commit `since`, when the
    /// journal has every one of them; `None`: reload everything.
    pub fn changed_since(&self, since: u64) -> Result<Option<Vec<u64>>, StoreError> {
        let now = self.seq();
        if since >= now {
            return Ok(Some(Vec::new()));
        }
        if now - since >= JOURNAL_LEN {
            return Ok(None);
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut next = since + 1;
        for entry in self
            .db
            .range(&change_key(since + 1)[..]..=&change_key(now)[..])
        {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let seq = key
                .strip_prefix(CHANGE_PREFIX)
                .and_then(|k| k.try_into().ok())
                .map(u64::from_be_bytes);
            if seq != Some(next) || value.as_ref() == b"*" || value.len() % 8 != 0 {
                return Ok(None);
            }
            ids.extend(
                value
                    .chunks_exact(8)
                    .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())),
            );
            next += 1;
        }
        Ok((next == now + 1).then(|| ids.into_iter().collect()))
    }

    /// One object record, `None` when there is none under `id`.
    pub fn object<T: serde::de::DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        match self
            .objects
            .get(id.to_be_bytes())
            .map_err(|e| self.sled_error(e))?
        {
            Some(bytes) => self
                .decode(format!("object {id}").as_bytes(), &bytes)
                .map(Some),
            None => Ok(None),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.db.get(key).map_err(|e| self.sled_error(e))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map_err(|e| self.io(sled_sentence(&e, "writing", &self.path.join("db"))))?;
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        decode(bytes).map_err(|e| self.decode_error(key, e))
    }

    fn decode_error(&self, key: &[u8], e: DecodeError) -> StoreError {
        let what = String::from_utf8_lossy(key);
        match e {
            DecodeError::Newer(v) => StoreError::Newer {
                path: self.path.clone(),
                detail: format!("record {what:?} has format {v}"),
            },
            DecodeError::Corrupt(d) => StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("record {what:?}: {d}"),
            },
        }
    }

    fn io(&self, detail: String) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            detail,
        }
    }

    /// A failed sled read: damage it found is corruption, anything else I/O.
    fn sled_error(&self, e: sled::Error) -> StoreError {
        match e {
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("sled cannot read a page: {e}"),
            },
            e => self.io(sled_sentence(&e, "reading", &self.path.join("db"))),
        }
    }
}

/// One sentence for an I/O failure, as a user reads it: "no space left on device while writing
/// /path/db" (never a debug dump of nested error types).
pub(crate) fn io_sentence(e: &std::io::Error, doing: &str, path: &Path) -> String {
    use std::io::ErrorKind;
    let what = match (e.kind(), e.raw_os_error()) {
        (ErrorKind::StorageFull, _) | (_, Some(libc::ENOSPC)) => "no space left on device".into(),
        (ErrorKind::QuotaExceeded, _) | (_, Some(libc::EDQUOT)) => "disk quota exceeded".into(),
        (ErrorKind::PermissionDenied, _) => "permission denied".into(),
        (ErrorKind::ReadOnlyFilesystem, _) => "read-only file system".into(),
        _ => {
            // std's text is "Message (os error N)": the message alone, as a clause.
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_lowercase().chain(chars).collect::<String>()
            })
        }
    };
    format!("{what} while {doing} {}", path.display())
}

/// [`io_sentence`] for sled's errors (sled wraps the I/O error it met).
fn sled_sentence(e: &sled::Error, doing: &str, path: &Path) -> String {
    match e {
        sled::Error::Io(e) => io_sentence(e, doing, path),
        e => e.to_string(),
    }
}

/// Opens sled on `path`, waiting for this process's previous instance to let go of it.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    // sled panics on some kinds of damage; a damaged store is an error, never a crash.
    let open = || {
        catch_unwind(AssertUnwindSafe(|| {
            sled::Config::new()
                .path(path)
                .flush_every_ms(None)
                .mode(sled::Mode::LowSpace)
                .open()
        }))
    };
    let is_lock = |e: &std::io::Error| {
        e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
    };
    let deadline = std::time::Instant::now() + OWN_LOCK_WAIT;
    let opened = loop {
        let opened = open();
        let own = matches!(&opened, Ok(Err(sled::Error::Io(e))) if is_lock(e)) && held_by_us(path);
        if !own || std::time::Instant::now() >= deadline {
            break opened;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e))) if is_lock(&e) => Err(locked(path)),
        Ok(Err(sled::Error::Io(e))) => Err(StoreError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Ok(Err(e)) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(_) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the database could not be read".into(),
        }),
    }
}

/// Waits until nothing of this process's last instance of the store in `path` holds it any
/// more (sled's own threads can outlive the instance by a moment): after C_Finalize the next
/// process opens the store at once. Bounded by [`OWN_LOCK_WAIT`]; says whether it was released.
pub fn wait_released(path: &Path) -> bool {
    match lock_log(path) {
        Ok(_) => true,
        // Handed over: another process has it now.
        Err(StoreError::Locked { .. }) if !held_by_us(path) => true,
        Err(e) => {
            log::warn!("after C_Finalize: {e}");
            false
        }
    }
}

fn held_by_us(path: &Path) -> bool {
    holder::held_by_us(path)
}

fn locked(path: &Path) -> StoreError {
    StoreError::Locked {
        path: path.to_path_buf(),
        detail: format!("{} holds it", holder::describe(path)),
    }
}

/// Takes sled's lock on the log file (`flock`, as sled does), waiting like [`open_sled`] for
/// this process's previous instance; `None` when there is no log yet. Released on drop.
fn lock_log(path: &Path) -> Result<Option<std::fs::File>, StoreError> {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(path.join("db")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                detail: format!("cannot open db: {e}"),
            })
        }
    };
    let deadline = std::time::Instant::now() + OWN_LOCK_WAIT;
    loop {
        let e = match crate::eintr::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Ok(Some(file)),
            Err(e) => e,
        };
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                detail: format!("cannot lock db: {e}"),
            });
        }
        if !held_by_us(path) || std::time::Instant::now() >= deadline {
            return Err(locked(path));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes what a process killed while sled wrote its snapshot left: sled writes
/// `snap.<LSN>.generating`, syncs it, renames it to `snap.<LSN>`, and reads the greatest
/// `snap.` name, so sled 0.34 would take the cut file for the newest snapshot and fail on it
/// (the store refused as corrupt). The snapshot is only an index of the log: without it sled
/// uses the one before and replays the log from there, as it would had the kill come a moment
/// earlier. Called under sled's lock, before sled runs.
fn remove_cut_snapshots(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => log::warn!(
                    "store {}: removed {name}, a snapshot sled was writing when its process ended",
                    path.display()
                ),
                Err(e) => log::warn!("store {}: cannot remove {name}: {e}", path.display()),
            }
        }
    }
}

/// Checks sled's files in `path` before sled opens them ([`log_check`]).
fn check_log(path: &Path, acknowledged: Option<u64>) -> Result<Verdict, StoreError> {
    let io = |what: &str, e: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        detail: format!("cannot read {what}: {e}"),
    };
    let db = match Mapped::open(&path.join("db")) {
        Ok(db) => db,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(match acknowledged {
                Some(n) if n > 0 => Verdict::Damaged(format!(
                    "its log file db is missing ({n} writes were acknowledged)"
                )),
                _ => Verdict::Clean,
            })
        }
        Err(e) => return Err(io("db", e)),
    };
    // The side file is created before the first commit record is written: a log with one and
    // no side file lost its side file, and sled must not run on it.
    if acknowledged.is_none() && commit::find_records(db.bytes()).next().is_some() {
        return Ok(Verdict::Damaged(format!(
            "its commit file {COMMIT_FILE} is missing: acknowledged writes cannot be checked"
        )));
    }
    let segment_size = match std::fs::read(path.join("conf")) {
        Ok(conf) => log_check::segment_size_from_conf(&conf),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("conf", e)),
    };
    let Some(segment_size) = segment_size else {
        if db.bytes().iter().all(|&b| b == 0) {
            // Nothing written yet, unless writes were acknowledged: then the log lost them, and
            // sled must not run (it would write its first segment into the refused store).
            return Ok(match acknowledged {
                Some(n) if n > 0 => Verdict::Damaged(format!(
                    "its log file db holds nothing and its settings file conf is missing or damaged ({n} writes were acknowledged)"
                )),
                _ => Verdict::Clean,
            });
        }
        return Ok(Verdict::Damaged(
            "sled's settings file conf is missing or damaged".into(),
        ));
    };
    let names: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| io("the directory", e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let replay_from = log_check::replay_from(names.iter().map(String::as_str), segment_size);
    let blobs = path.join("blobs");
    let blob = |id: i64| blob_state(&blobs.join(id.to_string()));
    let scan = log_check::scan(db.bytes(), segment_size, &blob);
    Ok(log_check::judge(
        &scan,
        replay_from,
        segment_size,
        acknowledged,
    ))
}

/// A file mapped read-only (sled's log: read once, without copying it).
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn open(path: &Path) -> std::io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("the file is too large"))?;
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of a file this function opened; the caller
        // holds sled's lock on it, so no cooperating process changes its length meanwhile.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes until `self` is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmaps exactly what `open` mapped; no slice of it outlives `self`.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// What a blob file holds (`sled::pagecache::blob_io::read_blob`: CRC-32, kind, data).
fn blob_state(path: &Path) -> log_check::Blob {
    match std::fs::read(path) {
        Ok(b) if b.len() >= 5 && crc32fast::hash(&b[4..]).to_le_bytes() == b[..4] => {
            log_check::Blob::Intact
        }
        Ok(_) => log_check::Blob::Damaged,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => log_check::Blob::Missing,
        Err(_) => log_check::Blob::Damaged,
    }
}

/// Lets sled recover a copy of the store in a temporary directory and reads all of it there:
/// the store itself is not touched unless the copy shows nothing acknowledged is lost.
fn verify_on_copy(path: &Path, acknowledged: Option<u64>) -> Result<(), String> {
    let tmp = tempfile::Builder::new()
        .prefix("key4c-verify-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary copy: {e}"))?;
    copy_dir(path, tmp.path()).map_err(|e| format!("cannot make a temporary copy: {e}"))?;
    let seen = catch_unwind(AssertUnwindSafe(|| -> Result<Option<u64>, String> {
        let db = sled::Config::new()
            .path(tmp.path())
            .flush_every_ms(None)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| e.to_string())?;
        for name in db.tree_names() {
            let tree = db.open_tree(name).map_err(|e| e.to_string())?;
            for entry in tree.iter() {
                entry.map_err(|e| e.to_string())?;
            }
        }
        let seq = db.get(KEY_COMMIT).map_err(|e| e.to_string())?;
        Ok(seq.and_then(|v| commit::decode_record(&v)))
    }));
    match seen {
        Err(_) => Err("sled's recovery of a copy failed".into()),
        Ok(Err(e)) => Err(format!("sled's recovery of a copy fails: {e}")),
        Ok(Ok(seq)) => match (acknowledged, seq) {
            (Some(acked), seq) if seq.unwrap_or(0) < acked => Err(format!(
                "{} missing: the log is damaged (sled recovers it up to write #{}, the store acknowledged #{acked})",
                log_check::acknowledged_writes(acked - seq.unwrap_or(0)),
                seq.unwrap_or(0)
            )),
            _ => Ok(()),
        },
    }
}

/// What a durable write changed among the object records, for the journal.
#[derive(Clone, Copy)]
enum Changed<'a> {
    Nothing,
    Objects(&'a [u64]),
    All,
}

impl Changed<'_> {
    fn encode(self) -> Vec<u8> {
        match self {
            Changed::Nothing => Vec::new(),
            Changed::Objects(ids) => ids.iter().flat_map(|id| id.to_be_bytes()).collect(),
            Changed::All => b"*".to_vec(),
        }
    }
}

fn change_key(seq: u64) -> Vec<u8> {
    [CHANGE_PREFIX, &seq.to_be_bytes()[..]].concat()
}

/// Copies sled's files (not the holder, commit, audit or cache files) from `from` to `to`.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() && name == QUEUE_DIR {
            // Who waits for the store: no part of the data.
        } else if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file()
            && name != HOLDER_FILE
            && ![COMMIT_FILE, AUDIT_FILE, objects_cache::OBJECTS_CACHE]
                .iter()
                .any(|not_sled| name.to_string_lossy().starts_with(not_sled))
        {
            // Regular files only: the processes' sockets (lease.rs) are no part of the data.
            crate::eintr::copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal names exactly the object records each write changed; a re-initialisation,
    /// a gap, or a view older than the journal means a full reload (`None`).
    #[test]
    fn changed_since_names_the_objects_each_write_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpenStore::open(&dir.path().join("store"), &StoreOptions::default()).unwrap();
        let start = store.seq();
        store.put_object_durable(7, &1u64).unwrap();
        store.put_objects_durable(&[(9, 1u64), (3, 1u64)]).unwrap();
        let middle = store.seq();
        store
            .put_service_durable(&store.service().unwrap())
            .unwrap();
        store.delete_object_durable(7).unwrap();
        assert_eq!(store.changed_since(start).unwrap(), Some(vec![3, 7, 9]));
        assert_eq!(store.changed_since(middle).unwrap(), Some(vec![7]));
        assert_eq!(store.changed_since(store.seq()).unwrap(), Some(vec![]));
        assert_eq!(store.object::<u64>(9).unwrap(), Some(1));
        assert_eq!(store.object::<u64>(7).unwrap(), None);
        // A write that is not in the journal (a key4c from before it): everything.
        store.db.remove(change_key(middle + 1)).unwrap();
        assert_eq!(store.changed_since(start).unwrap(), None);
        assert_eq!(store.changed_since(middle + 1).unwrap(), Some(vec![7]));
        let before_reinit = store.seq();
        let token = records::TokenRecord {
            label: [b' '; 32],
            created: "2026-12-03T00:00:00Z".into(),
            so: Default::default(),
            user: Default::default(),
            so_unlock_request: None,
            pin_retry_limit: Some(5),
        };
        store.reinit_token_durable(&token).unwrap();
        assert_eq!(store.changed_since(before_reinit).unwrap(), None);
        // Older than the journal keeps.
        let now = store.seq();
        *store.seq.lock() = now + JOURNAL_LEN;
        assert_eq!(store.changed_since(now).unwrap(), None);
    }

    /// A record that does not decode, early among many: the load stops with the error, and
    /// the reader (which has more batches than the channel holds) does not wait for ever.
    #[test]
    fn for_each_object_reports_a_bad_record_among_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpenStore::open(&dir.path().join("store"), &StoreOptions::default()).unwrap();
        let good: Vec<(u64, u64)> = (1..30_000u64).map(|id| (id, id)).collect();
        store.put_objects_durable(&good).unwrap();
        store.put_object_durable(0, &"not a number").unwrap();
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let seen = std::sync::atomic::AtomicUsize::new(0);
            let result = store.for_each_object(|_, _: u64| {
                seen.fetch_add(1, Ordering::Relaxed);
            });
            let _ = done.send(result);
        });
        let result = wait
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the load returned");
        assert!(
            matches!(&result, Err(StoreError::Corrupt { detail, .. }) if detail.contains("object")),
            "{result:?}"
        );
    }
}
