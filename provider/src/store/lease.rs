//! One store, several processes. sled opens a store in one process at a time, so the store
//! moves between the processes that use it: the process that has it open (the *holder*) keeps
//! it, at no cost while nobody else asks, until another one asks for it on the holder's socket
//! `key4c-<instance>.sock` in the store directory; the holder lets go of it between two
//! operations and the asking process opens it.
//!
//! Fair: processes that want the store queue for it ([`queue`]) and only the first in the
//! queue asks the holder, so the store goes round in the order it was asked for. A holder
//! first runs the operation it opened the store for, then the operations of its own that had
//! already started (a batch), and hands over: its threads that want the store afterwards
//! queue again, behind the processes that asked before them.
//!
//! Robust: the holder's socket is served by one thread that polls every connection with a
//! deadline, so silent connections cost nothing and a request whose asker has gone (it gave
//! up, or died) is dropped before the store is let go for nobody.
//!
//! What each process keeps in memory (token record, objects) follows the store's commit
//! number: a process that reopens the store after others wrote to it is *stale* and reloads
//! before it decides anything ([`Store::lease`] and the token's sync points); a process that
//! does not hold the store sees that others wrote from the side file ([`Store::moved`]).

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};

use super::audit::AuditLog;
use super::commit::SideFile;
use super::holder::{self, HolderState};
use super::queue::{StillWaiting, Ticket};
use super::records::{AuditRecord, ServiceRecord, TokenRecord};
use super::{locked, wait_released, OpenStore, StoreError, StoreOptions};

/// How long a process whose holder has no socket waits before concluding that what holds
/// sled's lock is not a key4c sharing the store (a key4c that is just starting has not
/// written its name or opened its socket yet).
const NO_SOCKET_WAIT: Duration = Duration::from_secs(1);
/// How long a holder keeps the store for the operation it opened it for, at most.
const FIRST_LEASE_WAIT: Duration = Duration::from_secs(2);
/// A holder that is asked for the store keeps it while it uses it, for this long shared by
/// the processes in the queue (a slice of `SLICE / queued`, at least [`MIN_SLICE`]): its next
/// operations cost no handover (one costs 10-16 ms), and with many processes queued the
/// slices shrink so that the round stays short.
const SLICE: Duration = Duration::from_millis(80);
const MIN_SLICE: Duration = Duration::from_millis(2);
/// A holder that has not used the store for this long hands it over without waiting for the
/// end of its slice.
const IDLE: Duration = Duration::from_millis(1);
/// How long a connection to the holder's socket may stay silent before it is closed.
const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// How long a new operation of a holder that was asked for the store waits for the handover
/// before it runs anyway (it may hold a lock an operation in flight needs).
const BEHIND_HANDOVER_WAIT: Duration = Duration::from_millis(50);
/// Connections the holder keeps open at once; beyond, the oldest silent one is closed.
const MAX_CONNECTIONS: usize = 512;
/// The request on a holder's socket, and its answer.
const RELEASE: u8 = b'R';
const RELEASED: u8 = b'K';

thread_local! {
    /// Leases this thread holds (of any store): a nested one never waits behind a handover.
    static LEASES: Cell<usize> = const { Cell::new(0) };
}

/// A token store, opened by this process now or later, as needed.
pub struct Store {
    shared: Arc<Shared>,
    listener: Option<Listener>,
}

struct Shared {
    path: PathBuf,
    options: StoreOptions,
    open: RwLock<Option<Opened>>,
    /// Whether `open` holds the store: read where taking the lock would cost (C_FindObjectsInit)
    /// or wait (the listener, while this process waits for the store).
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
    /// The first lease since the store was opened has ended: the operation it was opened
    /// for ran, and the store may be handed over.
    served: AtomicBool,
    /// Leases alive now.
    in_use: AtomicUsize,
    /// When the last lease ended, in microseconds after `since`.
    last_used: AtomicU64,
}

impl Opened {
    fn new(store: OpenStore) -> Opened {
        Opened {
            store,
            since: Instant::now(),
            served: AtomicBool::new(false),
            in_use: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
        }
    }

    /// Whether this process may be asked to hand the store over now: it ran the operation it
    /// opened the store for, and then either had it for its slice or stopped using it.
    fn may_hand_over(&self, slice: Duration) -> bool {
        if !self.served.load(Ordering::Acquire) {
            return false;
        }
        let held = self.since.elapsed();
        let idle = self.in_use.load(Ordering::Acquire) == 0
            && held.as_micros() as u64
                >= self.last_used.load(Ordering::Acquire) + IDLE.as_micros() as u64;
        held >= slice || idle
    }
}

/// While a lease lives, this process keeps the store open: what it read stays true until
/// what it writes.
pub struct Lease<'a> {
    open: MappedRwLockReadGuard<'a, Opened>,
}

impl Lease<'_> {
    fn new(open: MappedRwLockReadGuard<'_, Opened>) -> Lease<'_> {
        LEASES.with(|n| n.set(n.get() + 1));
        open.in_use.fetch_add(1, Ordering::AcqRel);
        Lease { open }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let open = &self.open;
        open.last_used
            .store(open.since.elapsed().as_micros() as u64, Ordering::Release);
        open.in_use.fetch_sub(1, Ordering::AcqRel);
        open.served.store(true, Ordering::Release);
        LEASES.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

impl Store {
    /// Opens (creating if absent) the store in `path`; when another process has it open,
    /// queues for it and asks that process to let go of it.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let (store, ticket) = open_in_turn(path, &options)?;
        let synced = store.seq();
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            options,
            open: RwLock::new(Some(Opened::new(store))),
            held: AtomicBool::new(true),
            synced: AtomicU64::new(synced),
            stale: AtomicBool::new(false),
        });
        let listener = Listener::start(&shared);
        // Only now may the next in the queue ask this process for the store.
        drop(ticket);
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
            let nested = LEASES.with(|n| n.get()) > 0;
            // A new operation waits while a handover this process agreed to is under way
            // (parking_lot's fair read), so the store is not kept from the asker for ever;
            // a nested one, or one that waited long enough, goes ahead.
            let guard = if nested {
                self.shared.open.read_recursive()
            } else {
                match self.shared.open.try_read_for(BEHIND_HANDOVER_WAIT) {
                    Some(guard) => guard,
                    None => self.shared.open.read_recursive(),
                }
            };
            if let Ok(open) = RwLockReadGuard::try_map(guard, Option::as_ref) {
                return Ok(Lease::new(open));
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
            let (store, ticket) = open_in_turn(&self.shared.path, &self.shared.options)?;
            if store.seq() != self.shared.synced.load(Ordering::Acquire) {
                self.shared.stale.store(true, Ordering::Release);
            }
            log::debug!(
                "store {}: opened again at write #{}",
                self.shared.path.display(),
                store.seq()
            );
            *open = Some(Opened::new(store));
            self.shared.held.store(true, Ordering::Release);
            drop(ticket);
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

    /// The commit number this process's view matches ([`Store::mark_synced`]).
    pub fn synced(&self) -> u64 {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// The object records changed since commit `since`, when the store's journal has every
    /// write since ([`OpenStore::changed_since`]); `None`: reload everything.
    pub fn changed_since(&self, since: u64) -> Result<Option<Vec<u64>>, StoreError> {
        self.with(|s| s.changed_since(since))
    }

    /// One object record.
    pub fn object<T: serde::de::DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        self.with(|s| s.object(id))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
    }
}

/// Opens the store when this process's turn comes: queues, then (first in the queue) asks
/// the holder to let go of it. The ticket is returned to be dropped once the store is
/// recorded as held, when the next in the queue may ask for it.
fn open_in_turn(path: &Path, options: &StoreOptions) -> Result<(OpenStore, Ticket), StoreError> {
    let started = Instant::now();
    let deadline = started + options.wait;
    let io = |detail: String| StoreError::Io {
        path: path.to_path_buf(),
        detail,
    };
    super::access::create_dir(path, options.access)
        .map_err(|e| io(super::io_sentence(&e, "creating", path)))?;
    super::access::check(path, options.access)?;
    let ticket = Ticket::take(path, options.access, deadline)
        .map_err(|e| io(format!("cannot queue for the store: {e}")))?;
    if let Err(waiting) = ticket.wait_turn(deadline) {
        return Err(gave_up_in_queue(path, options, &waiting));
    }
    let turn = started.elapsed();
    let mut no_socket_since: Option<Instant> = None;
    // When another key4c holds the store, asking first saves a failing open.
    let mut ask_first =
        holder::read(path).is_some_and(|h| h.instance.is_some() && !h.is_this_process());
    loop {
        let asking_first = std::mem::take(&mut ask_first);
        let opened = if asking_first {
            Err(locked(path))
        } else {
            OpenStore::open(path, options)
        };
        match opened {
            Err(StoreError::Locked { .. }) => {}
            Ok(store) => {
                log::debug!(
                    "store {}: had it {:?} after asking ({turn:?} in the queue)",
                    path.display(),
                    started.elapsed()
                );
                if started.elapsed() > Duration::from_secs(1) {
                    log::info!(
                        "store {}: waited {:?} for the store",
                        path.display(),
                        started.elapsed()
                    );
                }
                return Ok((store, ticket));
            }
            Err(e) => return Err(e),
        }
        let locked = |detail: String| StoreError::Locked {
            path: path.to_path_buf(),
            detail,
        };
        match ask_to_release(path, deadline) {
            Asked::Released | Asked::HungUp => {
                no_socket_since = None;
                continue;
            }
            Asked::Refused(why) => {
                return Err(locked(format!(
                    "it is held by {}; {why}",
                    holder::describe(path)
                )))
            }
            Asked::NoAnswer => {
                return Err(locked(holder_did_not_answer(path, options.wait)));
            }
            // The holder named has ended: its socket went with it, and the store is free.
            Asked::NoSocket if asking_first => continue,
            Asked::NoSocket => {
                let since = *no_socket_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= NO_SOCKET_WAIT || Instant::now() >= deadline {
                    return Err(locked(not_a_sharing_holder(path)));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if Instant::now() >= deadline {
            return Err(locked(holder_did_not_answer(path, options.wait)));
        }
    }
}

/// What asking the holder for the store came to.
enum Asked {
    /// It let go of it.
    Released,
    /// It closed the connection without answering (it ended, or was finalised): try again.
    HungUp,
    /// Nothing answered before the deadline.
    NoAnswer,
    /// No socket to ask, or nobody listening on it.
    NoSocket,
    /// This user may not use the holder's socket: why, in a sentence.
    Refused(String),
}

/// Asks the process named by the store's holder file to let go of the store.
fn ask_to_release(path: &Path, deadline: Instant) -> Asked {
    let Some(holder) = holder::read(path) else {
        return Asked::NoSocket;
    };
    if holder.is_this_process() {
        // This process's previous instance: OpenStore::open already waited for it.
        return Asked::NoSocket;
    }
    let socket = match &holder.instance {
        Some(instance) => holder::socket_path(path, instance),
        // Written by a key4c from before instance IDs, which named its socket by PID.
        None => holder::socket_path(path, &holder.pid.to_string()),
    };
    let mut stream = match crate::eintr::retry(|| UnixStream::connect(&socket)) {
        Ok(stream) => stream,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            return Asked::Refused(holder::refused(&socket, &e))
        }
        Err(_) => return Asked::NoSocket,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Asked::NoAnswer;
    }
    if stream.set_read_timeout(Some(left)).is_err() || stream.write_all(&[RELEASE]).is_err() {
        return Asked::HungUp;
    }
    let mut answer = [0u8; 1];
    match crate::eintr::retry(|| stream.read(&mut answer)) {
        Ok(1) if answer[0] == RELEASED => Asked::Released,
        Ok(_) => Asked::HungUp,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Asked::NoAnswer
        }
        Err(_) => Asked::HungUp,
    }
}

/// The holder, and what can be seen of it, for an error message.
fn holder_now(path: &Path) -> String {
    let Some(holder) = holder::read(path) else {
        return "another process".into();
    };
    let pid = holder.pid;
    match holder.state() {
        HolderState::Stopped => format!(
            "{}, which is stopped (SIGSTOP, Ctrl-Z or a debugger): continue it (`kill -CONT {pid}`) or end it",
            holder.describe()
        ),
        HolderState::Gone => format!("{}, which has ended", holder.describe()),
        HolderState::Running | HolderState::Unknown => holder.describe(),
    }
}

fn holder_did_not_answer(path: &Path, wait: Duration) -> String {
    format!(
        "it is held by {}, and the holder did not hand it over within the wait of {} ms (store_wait_ms)",
        holder_now(path),
        wait.as_millis()
    )
}

fn not_a_sharing_holder(path: &Path) -> String {
    format!(
        "sled's lock on {} is held by a process that does not answer on a key4c socket, so not a key4c sharing the store (the holder file names {}); `fuser {}` names it",
        path.join("db").display(),
        holder_now(path),
        path.join("db").display()
    )
}

fn gave_up_in_queue(path: &Path, options: &StoreOptions, waiting: &StillWaiting) -> StoreError {
    let first = match &waiting.head {
        Some(head) if head.state() == HolderState::Stopped => format!(
            "; the first of them, {}, is stopped (SIGSTOP, Ctrl-Z or a debugger): continue it (`kill -CONT {}`) or end it",
            head.describe(),
            head.pid
        ),
        Some(head) => format!("; the first of them is {}", head.describe()),
        None => String::new(),
    };
    StoreError::Locked {
        path: path.to_path_buf(),
        detail: format!(
            "{} waiting for it before this one and the wait of {} ms (store_wait_ms) ran out{first}; the store is held by {}. Raise store_wait_ms, or have fewer processes write at the same time",
            match waiting.ahead {
                1 => "1 process was".to_string(),
                n => format!("{n} processes were"),
            },
            options.wait.as_millis(),
            holder_now(path)
        ),
    }
}

/// The thread that answers other processes' requests for the store.
struct Listener {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(shared: &Arc<Shared>) -> Option<Listener> {
        holder::remove_dead_sockets(&shared.path);
        let socket = holder::socket_path(&shared.path, &holder::instance());
        let _ = std::fs::remove_file(&socket);
        let bound = UnixListener::bind(&socket).and_then(|l| {
            super::access::restrict(&socket, shared.options.access)?;
            l.set_nonblocking(true)?;
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
                .spawn(move || serve(&shared, &listener, &stop))
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
        // Wakes the thread out of poll().
        let _ = crate::eintr::retry(|| UnixStream::connect(&self.socket));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A connection to the holder's socket.
struct Connection {
    stream: UnixStream,
    since: Instant,
    asked: bool,
}

/// Serves the socket: every connection at once, none for longer than [`REQUEST_WAIT`] without
/// a request; a request is answered once the store is let go of.
fn serve(shared: &Shared, listener: &UnixListener, stop: &AtomicBool) {
    let mut connections: Vec<Connection> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let mut polled: Vec<libc::pollfd> = std::iter::once(listener.as_raw_fd())
            .chain(connections.iter().map(|c| c.stream.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // EINTR and timeouts alike: look at everything again.
        unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, 200) };
        if stop.load(Ordering::Acquire) {
            break;
        }
        for (connection, polled) in connections.iter_mut().zip(&polled[1..]) {
            if polled.revents != 0 && !connection.asked {
                connection.asked = read_request(&mut connection.stream);
                if !connection.asked {
                    // Closed, or sent something else: done with it.
                    connection.since = Instant::now() - REQUEST_WAIT;
                }
            }
        }
        connections.retain(|c| c.asked || c.since.elapsed() < REQUEST_WAIT);
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if connections.len() >= MAX_CONNECTIONS {
                if let Some(oldest) = connections.iter().position(|c| !c.asked) {
                    connections.remove(oldest);
                }
            }
            connections.push(Connection {
                stream,
                since: Instant::now(),
                asked: false,
            });
        }
        if connections.iter().any(|c| c.asked) {
            let (asked, silent): (Vec<_>, Vec<_>) = connections.drain(..).partition(|c| c.asked);
            connections = silent;
            release(shared, asked);
        }
    }
}

/// Reads a request from a connection polled as readable; says whether it is one.
fn read_request(stream: &mut UnixStream) -> bool {
    let mut request = [0u8; 1];
    matches!(stream.read(&mut request), Ok(1) if request[0] == RELEASE)
}

/// Whether the asker is still waiting on its connection (it has neither closed it nor died).
fn still_asking(stream: &UnixStream) -> bool {
    let mut byte = 0u8;
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0 || (n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock)
}

/// Answers requests: once the operation the store was opened for has run, closes the store
/// after the operations in flight, waits until sled has let go of it, then says so to the
/// askers still waiting. Nobody waiting: the store stays.
fn release(shared: &Shared, mut askers: Vec<Connection>) {
    if shared.held.load(Ordering::Acquire) {
        let asked = Instant::now();
        let queued = super::queue::waiting(&shared.path).max(1);
        let slice = (SLICE / queued as u32).max(MIN_SLICE);
        while asked.elapsed() < FIRST_LEASE_WAIT {
            let may = match shared.open.try_read_recursive() {
                Some(open) => open.as_ref().is_none_or(|o| o.may_hand_over(slice)),
                None => false,
            };
            if may {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        askers.retain(|c| still_asking(&c.stream));
        if askers.is_empty() {
            log::debug!(
                "store {}: a request for the store was given up before it was answered",
                shared.path.display()
            );
            return;
        }
        let in_flight = Instant::now();
        let mut open = shared.open.write();
        if let Some(o) = open.take() {
            shared.held.store(false, Ordering::Release);
            let seq = o.store.seq();
            if !shared.stale.load(Ordering::Acquire) {
                // Every write since this process last synchronised was its own.
                shared.synced.store(seq, Ordering::Release);
            }
            let closing = Instant::now();
            drop(o);
            let closed = closing.elapsed();
            let released = wait_released(&shared.path);
            log::debug!(
                "store {}: handed over to another process at write #{seq} ({:?} after the request, {queued} waiting: slice {:?}, operations in flight {:?}, closing {closed:?}, sled let go {:?} later)",
                shared.path.display(),
                asked.elapsed(),
                in_flight - asked,
                closing - in_flight,
                closing.elapsed() - closed
            );
            if !released {
                return;
            }
        }
    }
    for mut asker in askers {
        let _ = asker.stream.set_nonblocking(false);
        let _ = asker.stream.write_all(&[RELEASED]);
    }
}
