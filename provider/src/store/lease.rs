//! One store, several processes. sled opens a store in one process at a time, so the store
//! moves between processes that use it: the process that has it open keeps it (no cost at
//! all while nobody else asks) until another one asks for it on the holder's socket
//! `key4c-<pid>.sock` in the store directory; the holder then lets go of it between two
//! operations and the asking process opens it.
//!
//! What each process keeps in memory (token record, objects) follows the store's commit
//! number: a process that reopens the store after others wrote to it is *stale* and reloads
//! before it decides anything ([`Store::lease`] and the token's sync points); a process that
//! does not hold the store sees that others wrote from the side file ([`Store::moved`]).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};

use super::audit::AuditLog;
use super::commit::SideFile;
use super::records::{AuditRecord, ServiceRecord, TokenRecord};
use super::{read_holder_pid, wait_released, OpenStore, StoreError, StoreOptions};

/// How long a process waits for the holder to let go of the store.
const ASK_WAIT: Duration = Duration::from_secs(10);
/// How long a holder may take to answer at all.
const NO_ANSWER_WAIT: Duration = Duration::from_secs(1);
/// A process that just opened the store keeps it at least this long, so that the operation it
/// opened it for runs before it is asked away again.
const KEEP_AT_LEAST: Duration = Duration::from_millis(20);
/// The request on a holder's socket, and its answer.
const RELEASE: u8 = b'R';
const RELEASED: u8 = b'K';

/// A token store, opened by this process now or later, as needed.
pub struct Store {
    shared: Arc<Shared>,
    listener: Option<Listener>,
}

struct Shared {
    path: PathBuf,
    options: StoreOptions,
    open: RwLock<Option<Opened>>,
    /// Whether `open` holds the store: read where taking the lock would cost (C_FindObjectsInit).
    held: AtomicBool,
    /// The commit number this process's view of the store (token record, objects) matches.
    synced: AtomicU64,
    /// This process reopened the store after other processes wrote to it and has not
    /// reloaded since.
    stale: AtomicBool,
}

struct Opened {
    store: OpenStore,
    since: Instant,
}

/// While a lease lives, this process keeps the store open: what it read stays true until
/// what it writes.
pub struct Lease<'a> {
    open: MappedRwLockReadGuard<'a, Opened>,
}

impl Store {
    /// Opens (creating if absent) the store in `path`; when another process has it open, asks
    /// that process to let go of it first.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let store = open_asking_holder(path, &options)?;
        let synced = store.seq();
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            options,
            open: RwLock::new(Some(Opened {
                store,
                since: Instant::now(),
            })),
            held: AtomicBool::new(true),
            synced: AtomicU64::new(synced),
            stale: AtomicBool::new(false),
        });
        let listener = Listener::start(&shared);
        Ok(Store { shared, listener })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Keeps the store open in this process until the lease is dropped, opening it first when
    /// another process has it. Afterwards [`Store::is_stale`] says whether to reload.
    pub fn lease(&self) -> Result<Lease<'_>, StoreError> {
        loop {
            if let Ok(open) =
                RwLockReadGuard::try_map(self.shared.open.read_recursive(), Option::as_ref)
            {
                return Ok(Lease { open });
            }
            self.acquire()?;
        }
    }

    /// Whether other processes wrote to the store since this process last reloaded.
    pub fn is_stale(&self) -> bool {
        self.shared.stale.load(Ordering::Acquire)
    }

    /// Whether other processes wrote since this process last reloaded, without opening the
    /// store: from the side file when another process holds it.
    pub fn moved(&self) -> bool {
        if self.is_stale() {
            return true;
        }
        if self.shared.held.load(Ordering::Acquire) {
            return false;
        }
        match SideFile::read(&self.shared.path) {
            Ok(Some(Ok((seq, _)))) => seq != self.shared.synced.load(Ordering::Acquire),
            _ => true,
        }
    }

    /// Records that this process's view now matches commit `seq` (after a reload, under a
    /// lease).
    pub fn mark_synced(&self, seq: u64) {
        self.shared.synced.store(seq, Ordering::Release);
        self.shared.stale.store(false, Ordering::Release);
    }

    /// The commit number the store is at.
    pub fn seq(&self) -> Result<u64, StoreError> {
        self.with(|s| Ok(s.seq()))
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&OpenStore) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        f(&self.lease()?.open.store)
    }

    fn acquire(&self) -> Result<(), StoreError> {
        let mut open = self.shared.open.write();
        if open.is_none() {
            let store = open_asking_holder(&self.shared.path, &self.shared.options)?;
            if store.seq() != self.shared.synced.load(Ordering::Acquire) {
                self.shared.stale.store(true, Ordering::Release);
            }
            log::debug!(
                "store {}: opened again at write #{}",
                self.shared.path.display(),
                store.seq()
            );
            *open = Some(Opened {
                store,
                since: Instant::now(),
            });
            self.shared.held.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Brings a store of an older layout to the current one ([`OpenStore::upgrade`]).
    pub fn upgrade(&self) -> Result<(), StoreError> {
        self.with(|s| s.upgrade())
    }

    /// The service record.
    pub fn service(&self) -> Result<ServiceRecord, StoreError> {
        self.with(|s| s.service())
    }

    /// Replaces the service record durably.
    pub fn put_service_durable(&self, service: &ServiceRecord) -> Result<(), StoreError> {
        self.with(|s| s.put_service_durable(service))
    }

    /// Appends one audit record (durable with the next durable write).
    pub fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.with(|s| s.append_audit(record))
    }

    /// Appends one audit record durably.
    pub fn append_audit_durable(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.with(|s| s.append_audit_durable(record))
    }

    /// The audit log, oldest first: read from its file, whoever holds the store.
    pub fn audit_log(&self) -> Result<AuditLog, StoreError> {
        super::audit::read(&self.shared.path).map_err(|e| StoreError::Io {
            path: self.shared.path.clone(),
            detail: format!("cannot read {}: {e}", super::audit::AUDIT_FILE),
        })
    }

    /// What the objects cache is stamped with ([`OpenStore::objects_generation`]).
    pub fn objects_generation(&self) -> Result<u64, StoreError> {
        self.with(|s| s.objects_generation())
    }

    /// The token record, `None` before the first C_InitToken.
    pub fn token(&self) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|s| s.token())
    }

    /// Writes the token record durably.
    pub fn put_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.with(|s| s.put_token_durable(token))
    }

    /// Re-initialises the token durably (every object removed, the new record written).
    pub fn reinit_token_durable(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.with(|s| s.reinit_token_durable(token))
    }

    /// A new, never used object record key.
    pub fn new_object_id(&self) -> Result<u64, StoreError> {
        self.with(|s| s.new_object_id())
    }

    /// Decodes every object record and hands it to `f`; returns how many.
    pub fn for_each_object<T, F>(&self, f: F) -> Result<usize, StoreError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(u64, T) + Sync,
    {
        self.with(|s| s.for_each_object(f))
    }

    /// Decodes every object record for `f`, then writes the objects cache of them
    /// ([`OpenStore::load_objects`]).
    pub fn load_objects<T, F>(&self, uuid: [u8; 16], f: F) -> Result<usize, StoreError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(u64, T) + Sync,
    {
        self.with(|s| s.load_objects(uuid, f))
    }

    /// Writes one object record durably.
    pub fn put_object_durable<T: serde::Serialize>(
        &self,
        id: u64,
        record: &T,
    ) -> Result<(), StoreError> {
        self.with(|s| s.put_object_durable(id, record))
    }

    /// Writes several object records in one atomic durable batch.
    pub fn put_objects_durable<T: serde::Serialize>(
        &self,
        records: &[(u64, T)],
    ) -> Result<(), StoreError> {
        self.with(|s| s.put_objects_durable(records))
    }

    /// Accepts the store as it is after a deliberate restore ([`OpenStore::accept_restore`]).
    pub fn accept_restore(&self) -> Result<(), StoreError> {
        self.with(|s| s.accept_restore())
    }

    /// Deletes one object record durably.
    pub fn delete_object_durable(&self, id: u64) -> Result<(), StoreError> {
        self.with(|s| s.delete_object_durable(id))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
    }
}

/// Opens the store; while another process holds it, asks that process to let go of it.
fn open_asking_holder(path: &Path, options: &StoreOptions) -> Result<OpenStore, StoreError> {
    let deadline = Instant::now() + ASK_WAIT;
    let mut unanswered_since: Option<Instant> = None;
    loop {
        match OpenStore::open(path, options) {
            Err(locked @ StoreError::Locked { .. }) => {
                if Instant::now() >= deadline {
                    return Err(locked);
                }
                if ask_to_release(path, deadline) {
                    unanswered_since = None;
                    continue;
                }
                // A holder that is just starting has not written its name or opened its
                // socket yet; one that never answers is not a key4c that shares the store.
                let since = *unanswered_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= NO_ANSWER_WAIT {
                    return Err(locked);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Asks the process named by the store's holder file to let go of the store; says whether
/// it answered that it did.
fn ask_to_release(path: &Path, deadline: Instant) -> bool {
    let Some(pid) = read_holder_pid(path) else {
        return false;
    };
    if pid == std::process::id() {
        // This process's previous instance: OpenStore::open already waits for it.
        return false;
    }
    let socket = socket_path(path, pid);
    let Ok(mut stream) = crate::eintr::retry(|| UnixStream::connect(&socket)) else {
        return false;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero()
        || stream.set_read_timeout(Some(left)).is_err()
        || stream.write_all(&[RELEASE]).is_err()
    {
        return false;
    }
    let mut answer = [0u8; 1];
    matches!(stream.read_exact(&mut answer), Ok(()) if answer[0] == RELEASED)
}

fn socket_path(path: &Path, pid: u32) -> PathBuf {
    path.join(format!("key4c-{pid}.sock"))
}

/// The thread that answers other processes' requests for the store.
struct Listener {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(shared: &Arc<Shared>) -> Option<Listener> {
        remove_dead_sockets(&shared.path);
        let socket = socket_path(&shared.path, std::process::id());
        let _ = std::fs::remove_file(&socket);
        let bound = UnixListener::bind(&socket).and_then(|l| {
            super::access::restrict(&socket, shared.options.access)?;
            Ok(l)
        });
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                // Without it the store stays with this process until C_Finalize.
                log::warn!(
                    "store {}: cannot listen on {}: {e}; other processes cannot use the store while this one has it",
                    shared.path.display(),
                    socket.display()
                );
                return None;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("key4c-store".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            release(&shared, stream);
                        }
                    }
                })
        };
        match thread {
            Ok(thread) => Some(Listener {
                socket,
                stop,
                thread: Some(thread),
            }),
            Err(e) => {
                log::warn!("cannot start the store's listener thread: {e}");
                let _ = std::fs::remove_file(&socket);
                None
            }
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the thread out of accept().
        let _ = crate::eintr::retry(|| UnixStream::connect(&self.socket));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Answers one request: closes the store between two operations of this process, waits until
/// sled has let go of it, then says so.
fn release(shared: &Shared, mut stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = [0u8; 1];
    if stream.read_exact(&mut request).is_err() || request[0] != RELEASE {
        return;
    }
    let since = shared.open.read().as_ref().map(|o| o.since);
    if let Some(since) = since {
        let kept = since.elapsed();
        if kept < KEEP_AT_LEAST {
            std::thread::sleep(KEEP_AT_LEAST - kept);
        }
    }
    let released = {
        let mut open = shared.open.write();
        match open.take() {
            Some(o) => {
                shared.held.store(false, Ordering::Release);
                let seq = o.store.seq();
                if !shared.stale.load(Ordering::Acquire) {
                    // Every write since this process last synchronised was its own.
                    shared.synced.store(seq, Ordering::Release);
                }
                drop(o);
                log::debug!(
                    "store {}: handed over to another process at write #{seq}",
                    shared.path.display()
                );
                wait_released(&shared.path)
            }
            None => true,
        }
    };
    if released {
        let _ = stream.write_all(&[RELEASED]);
    }
}

/// Removes the sockets of processes that no longer run (killed ones leave theirs behind).
fn remove_dead_sockets(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("key4c-"))
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
