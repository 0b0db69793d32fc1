//! The store's queue: processes that want the store get it in the order they asked for it.
//!
//! Without a queue, every waiter races for sled's lock when the holder lets go, and one that
//! keeps losing waits for ever. Here each process that wants the store takes a *ticket*: a
//! number from the counter `queue/next` (raised under that file's `flock`) and a file
//! `queue/<number>.<instance>` on which it keeps an exclusive `flock` while it waits. Only the
//! process whose ticket is the lowest live one (the head) asks the holder and opens the
//! store; it drops its ticket once it has, and the next one becomes the head.
//!
//! The kernel keeps the tickets honest: a process that dies loses its `flock`, so a ticket
//! whose lock can be taken belongs to nobody, and whoever finds it removes it. A waiter
//! watches only the ticket just before its own (inotify: it is removed, or closed by a dying
//! process), so a handover wakes one waiter, not all of them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::access::{self, Access};
use super::holder::{self, Holder};

/// The queue's directory in the store directory.
pub const QUEUE_DIR: &str = "queue";
const COUNTER: &str = "next";
/// How often a waiter looks again without being woken: the predecessor may have died in a way
/// inotify does not report (its file system gone), or the watch could not be set.
const LOOK_AGAIN: Duration = Duration::from_millis(100);
/// A ticket file still being made (`.new`) that is older than this was left by a crash.
const LEFTOVER: Duration = Duration::from_secs(60);

/// A place in the queue, given up when dropped.
pub struct Ticket {
    number: u64,
    path: PathBuf,
    dir: PathBuf,
    /// Holds the ticket's `flock` while it lives.
    _file: File,
}

/// Why [`Ticket::wait_turn`] gave up.
#[derive(Debug)]
pub struct StillWaiting {
    /// Live tickets before this one.
    pub ahead: usize,
    /// The first of them, as its ticket file names it.
    pub head: Option<Holder>,
}

impl Ticket {
    /// Takes the next ticket of the store in `store`.
    pub fn take(store: &Path, access: Access, deadline: Instant) -> std::io::Result<Ticket> {
        let dir = store.join(QUEUE_DIR);
        access::create_dir(&dir, access)?;
        let number = next_number(&dir, access, deadline)?;
        let me = holder::instance();
        // Made under a name scanners skip, locked, then given its real name: a scanner never
        // sees a ticket that is not locked yet.
        let making = dir.join(format!(".{me}-{number}.new"));
        let mut file = access::create_options(access)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&making)?;
        access::restrict(&making, access)?;
        crate::eintr::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)?;
        // Only for messages and `key4c store status`: a full disk does not stop the queue.
        let _ = file.write_all(holder::describe_this_process().as_bytes());
        let path = dir.join(ticket_name(number, &me));
        std::fs::rename(&making, &path)?;
        Ok(Ticket {
            number,
            path,
            dir,
            _file: file,
        })
    }

    /// Waits until no live ticket is before this one (this process is the head), or gives up
    /// at `deadline`.
    pub fn wait_turn(&self, deadline: Instant) -> Result<(), StillWaiting> {
        let watch = Watch::new();
        loop {
            let Some((before, before_file)) = self.nearest_live_before() else {
                return Ok(());
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(self.still_waiting());
            }
            let wait = LOOK_AGAIN.min(deadline - now);
            match &watch {
                Some(watch) if watch.watch(&before) => watch.wait(wait),
                _ => std::thread::sleep(wait.min(Duration::from_millis(5))),
            }
            drop(before_file);
        }
    }

    /// The live ticket just before this one, and its file open (so that it can be watched
    /// until it goes); `None` when this one is the head. Removes dead tickets on the way.
    fn nearest_live_before(&self) -> Option<(PathBuf, File)> {
        let mut before: Vec<(u64, PathBuf)> = tickets(&self.dir)
            .into_iter()
            .filter(|(n, _)| *n < self.number)
            .collect();
        before.sort_by_key(|b| std::cmp::Reverse(b.0));
        before
            .into_iter()
            .find_map(|(_, path)| live(&path).map(|file| (path, file)))
    }

    fn still_waiting(&self) -> StillWaiting {
        let mut before: Vec<(u64, PathBuf)> = tickets(&self.dir)
            .into_iter()
            .filter(|(n, _)| *n < self.number)
            .collect();
        before.sort();
        let live: Vec<PathBuf> = before
            .into_iter()
            .filter(|(_, path)| live(path).is_some())
            .map(|(_, path)| path)
            .collect();
        StillWaiting {
            ahead: live.len(),
            head: live
                .first()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|text| holder::parse(&text)),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Removed before its lock goes with the file: nobody takes it for a dead one.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A process in the queue, as `key4c store status` shows it.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its ticket's number: the order of the queue.
    pub number: u64,
    /// What its ticket says of it.
    pub process: Option<Holder>,
}

/// The live tickets of the store in `store`, first in line first (dead ones are removed).
pub fn list(store: &Path) -> Vec<Queued> {
    let mut found = tickets(&store.join(QUEUE_DIR));
    found.sort();
    found
        .into_iter()
        .filter_map(|(number, path)| {
            let file = live(&path)?;
            let mut text = String::new();
            let _ = (&file).read_to_string(&mut text);
            Some(Queued {
                number,
                process: holder::parse(&text),
            })
        })
        .collect()
}

/// How many tickets the queue of the store in `store` holds (live or not: a count for
/// sharing out time, not a decision).
pub fn waiting(store: &Path) -> usize {
    tickets(&store.join(QUEUE_DIR)).len()
}

fn ticket_name(number: u64, instance: &str) -> String {
    format!("{number:016x}.{instance}")
}

/// The tickets in `dir`: number and path (files being made and the counter are skipped).
fn tickets(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') {
            if name.ends_with(".new") {
                remove_leftover(&entry.path());
            }
            continue;
        }
        let Some(number) = name
            .split_once('.')
            .and_then(|(n, _)| u64::from_str_radix(n, 16).ok())
        else {
            continue;
        };
        found.push((number, entry.path()));
    }
    found
}

/// The ticket's file, when a live process holds it; a dead one's is removed.
fn live(path: &Path) -> Option<File> {
    let file = File::open(path).ok()?;
    match crate::eintr::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(file),
        Err(_) => None,
        Ok(()) => {
            // Nobody holds it: its process ended without removing it.
            log::debug!(
                "store queue: {} was left by a process that ended",
                path.display()
            );
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// Removes a ticket file a process was making when it died.
fn remove_leftover(path: &Path) {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > LEFTOVER);
    if old && live(path).is_none() {
        let _ = std::fs::remove_file(path);
    }
}

/// The next ticket number: the counter file raised under its `flock`.
fn next_number(dir: &Path, access: Access, deadline: Instant) -> std::io::Result<u64> {
    let path = dir.join(COUNTER);
    let mut file = access::create_options(access)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)?;
    if std::fs::metadata(&path)?.len() == 0 {
        access::restrict(&path, access)?;
    }
    // Bounded: a process stopped while it holds this lock (a moment) must not hang the rest.
    loop {
        match crate::eintr::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e),
        }
    }
    let mut bytes = [0u8; 8];
    let number = match file.read_exact(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    };
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&(number + 1).to_le_bytes())?;
    // The lock goes with the file.
    Ok(number)
}

/// An inotify instance watching one ticket at a time.
struct Watch {
    fd: OwnedFd,
    current: std::cell::Cell<Option<i32>>,
}

impl Watch {
    fn new() -> Option<Watch> {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        Some(Watch {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            current: std::cell::Cell::new(None),
        })
    }

    /// Watches `ticket` for its removal (a link count change) or its owner closing it (which a
    /// dying process does); says whether the watch is set.
    fn watch(&self, ticket: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        if let Some(old) = self.current.take() {
            unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), old) };
            // Removing a watch queues an IN_IGNORED event, which would wake the next wait at
            // once (and so for ever): drained before the new watch is set.
            self.drain();
        }
        let Ok(name) = std::ffi::CString::new(ticket.as_os_str().as_bytes()) else {
            return false;
        };
        let mask = libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_CLOSE_WRITE;
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), name.as_ptr(), mask) };
        if wd < 0 {
            return false;
        }
        self.current.set(Some(wd));
        true
    }

    /// Waits for an event on the watched ticket, at most `wait`; drains what came.
    fn wait(&self, wait: Duration) {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
        // EINTR is a wake-up like any other: the caller looks again.
        if unsafe { libc::poll(&mut poll, 1, ms) } > 0 {
            self.drain();
        }
    }

    fn drain(&self) {
        let mut events = [0u8; 4096];
        while unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                events.as_mut_ptr().cast(),
                events.len(),
            )
        } > 0
        {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn tickets_are_served_in_the_order_they_were_taken() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ticket::take(dir.path(), Access::Private, soon()).unwrap();
        let second = Ticket::take(dir.path(), Access::Private, soon()).unwrap();
        let third = Ticket::take(dir.path(), Access::Private, soon()).unwrap();
        assert_eq!((first.number, second.number, third.number), (0, 1, 2));
        first.wait_turn(Instant::now()).unwrap();
        let behind = third.wait_turn(Instant::now()).unwrap_err();
        assert_eq!(behind.ahead, 2);
        assert_eq!(behind.head.unwrap().pid, std::process::id());
        // The second waits for the first, and is woken when it goes.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            second.wait_turn(soon()).unwrap();
            tx.send(Instant::now()).unwrap();
            second
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "the second went before the first");
        let first_gone = Instant::now();
        drop(first);
        let turn = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(turn >= first_gone, "the second went before the first");
        let second = waiter.join().unwrap();
        assert_eq!(third.wait_turn(Instant::now()).unwrap_err().ahead, 1);
        drop(second);
        third.wait_turn(Instant::now()).unwrap();
        drop(third);
        let left: Vec<_> = std::fs::read_dir(dir.path().join(QUEUE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec![COUNTER.to_string()]);
    }

    /// A ticket nobody holds (its process died) is skipped and removed.
    #[test]
    fn a_dead_ticket_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mine = Ticket::take(dir.path(), Access::Private, soon()).unwrap();
        let dead = dir
            .path()
            .join(QUEUE_DIR)
            .join(ticket_name(0, "00000000deadbeef"));
        std::fs::write(&dead, "pid 1 (gone)\n").unwrap();
        assert_eq!(mine.number, 0);
        let later = Ticket::take(dir.path(), Access::Private, soon()).unwrap();
        drop(mine);
        // `dead` has number 0 like `mine` had; `later` (1) is now first once `dead` is found dead.
        later.wait_turn(soon()).unwrap();
        assert!(!dead.exists());
    }
}
