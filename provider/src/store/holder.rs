//! Who holds a store, and why a holder does not hand it over.
//!
//! Processes are told apart by a random *instance ID* made once per process, not by PID: two
//! containers sharing a store volume may both run their application as PID 1, and a PID seen
//! from another PID namespace names some other process or none. The holder file records the
//! instance (which names the holder's socket) and, for the error messages only, the PID, the
//! user, the program and the PID namespace: `/proc/<pid>` is consulted only when the asking
//! process is in the same PID namespace, where that PID is the holder.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::access::{self, Access};

/// File in the store directory naming the process that has the store open.
pub const HOLDER_FILE: &str = "key4c.holder";

/// This process's instance ID: 16 hex digits, made on first use and made again in a child
/// created by `fork()` (which must not pass for its parent).
pub fn instance() -> String {
    static ID: Mutex<Option<(u32, String)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut id = ID.lock();
    match &*id {
        Some((made_in, id)) if *made_in == pid => id.clone(),
        _ => {
            let bytes: [u8; 8] = crate::crypto::random_array().unwrap_or_else(|_| {
                // No randomness: the PID and the time still tell this process apart locally.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                (nanos ^ (u64::from(pid) << 40)).to_be_bytes()
            });
            let made: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            *id = Some((pid, made.clone()));
            made
        }
    }
}

/// The socket on which the process of instance `instance` answers requests for the store.
pub fn socket_path(store: &Path, instance: &str) -> PathBuf {
    store.join(format!("key4c-{instance}.sock"))
}

/// What the holder file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub exe: String,
    /// Absent in holder files written before instance IDs.
    pub instance: Option<String>,
    pub uid: Option<u32>,
    /// `pid:[<inode>]`, as `/proc/self/ns/pid` reads.
    pub pid_namespace: Option<String>,
}

impl Holder {
    /// Whether the holder is this process (a previous instance of the store in it).
    pub fn is_this_process(&self) -> bool {
        self.instance.as_deref() == Some(instance().as_str())
    }

    /// Whether `/proc/<pid>` here is the holder: same PID namespace.
    fn pid_is_meaningful_here(&self) -> bool {
        match (&self.pid_namespace, pid_namespace()) {
            (Some(theirs), Some(ours)) => *theirs == ours,
            _ => false,
        }
    }

    /// "process 1234 (/usr/bin/python3)", with the user when it is not this one.
    pub fn describe(&self) -> String {
        let mut text = format!("process {} ({})", self.pid, self.exe);
        let me = unsafe { libc::geteuid() };
        if let Some(uid) = self.uid.filter(|&uid| uid != me) {
            text.push_str(&format!(" of user {uid}"));
        }
        if self.pid_namespace.is_some() && !self.pid_is_meaningful_here() {
            text.push_str(" in another PID namespace (container)");
        }
        text
    }

    /// What can be seen of the holder from here: stopped, gone, or nothing particular.
    pub fn state(&self) -> HolderState {
        if !self.pid_is_meaningful_here() {
            return HolderState::Unknown;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // The state follows the command name, which is in parentheses and may hold any
            // character: it is the first field after the last ')'.
            Ok(stat) => match stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
            {
                Some("T") | Some("t") => HolderState::Stopped,
                Some("Z") | Some("X") => HolderState::Gone,
                _ => HolderState::Running,
            },
            Err(_) => HolderState::Gone,
        }
    }
}

/// What [`Holder::state`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderState {
    /// In another PID namespace: nothing to see.
    Unknown,
    Running,
    /// Stopped by a signal (SIGSTOP, Ctrl-Z) or a debugger.
    Stopped,
    /// No such process any more.
    Gone,
}

/// This process's PID namespace, `pid:[<inode>]`.
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.display().to_string())
}

/// What the holder file (and a queue ticket) says of this process. The first line is what
/// key4c wrote before instance IDs, so that older readers still find the PID.
pub fn describe_this_process() -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let mut text = format!(
        "pid {} ({exe})\ninstance {}\nuid {}\n",
        std::process::id(),
        instance(),
        unsafe { libc::geteuid() }
    );
    if let Some(ns) = pid_namespace() {
        text.push_str(&format!("pidns {ns}\n"));
    }
    text
}

/// Names this process as the holder.
pub fn write(path: &Path, access: Access) {
    let text = describe_this_process();
    let file = path.join(HOLDER_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = access::create_options(access)
            .write(true)
            .truncate(true)
            .open(&file)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        access::restrict(&file, access)
    };
    if let Err(e) = write() {
        log::debug!("cannot write the holder file in {}: {e}", path.display());
    }
}

/// The holder file of the store in `path`, `None` when absent or unreadable.
pub fn read(path: &Path) -> Option<Holder> {
    parse(&std::fs::read_to_string(path.join(HOLDER_FILE)).ok()?)
}

/// Reads what [`describe_this_process`] wrote.
pub fn parse(text: &str) -> Option<Holder> {
    let mut lines = text.lines();
    let first = lines.next()?.strip_prefix("pid ")?;
    let (pid, exe) = first.split_once(' ').unwrap_or((first, ""));
    let mut holder = Holder {
        pid: pid.parse().ok()?,
        exe: exe
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string(),
        instance: None,
        uid: None,
        pid_namespace: None,
    };
    for line in lines {
        match line.split_once(' ') {
            Some(("instance", id)) if is_instance(id) => holder.instance = Some(id.to_string()),
            Some(("uid", uid)) => holder.uid = uid.parse().ok(),
            Some(("pidns", ns)) => holder.pid_namespace = Some(ns.to_string()),
            _ => {}
        }
    }
    Some(holder)
}

/// An instance ID as [`instance`] makes them (what may go into a socket's file name).
fn is_instance(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the process of instance `instance` answers on its socket in the store in `path`.
pub fn answers(path: &Path, instance: &str) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(path, instance)).is_ok()
}

/// Whether the holder file names this process.
pub fn held_by_us(path: &Path) -> bool {
    read(path).is_some_and(|h| h.is_this_process())
}

/// "process 1234 (/usr/bin/python3)", or "another process" without a holder file.
pub fn describe(path: &Path) -> String {
    match read(path) {
        Some(holder) => holder.describe(),
        None => "another process".into(),
    }
}

/// Why connecting to the holder's socket failed, in a sentence a user can act on.
pub fn refused(socket: &Path, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            let me = unsafe { libc::geteuid() };
            match std::fs::symlink_metadata(socket) {
                Ok(meta) => format!(
                    "its socket {} belongs to user {} with mode {:04o}, which this user ({me}) may not use: run every process that shares the store as one user, or share the store through its group (store_access = \"group\")",
                    socket.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
                Err(_) => format!(
                    "its socket {} cannot be used by this user ({me}): {e}",
                    socket.display()
                ),
            }
        }
        _ => format!("its socket {} cannot be reached: {e}", socket.display()),
    }
}

/// Removes the sockets of processes that are gone (a killed process leaves its socket; a
/// socket nobody listens on refuses connections, whatever namespace its owner was in).
pub fn remove_dead_sockets(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let ours = socket_path(path, &instance());
    for entry in entries.flatten() {
        let socket = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let is_ours = name.starts_with("key4c-") && name.ends_with(".sock");
        let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
        if !is_ours || !is_socket || socket == ours {
            continue;
        }
        if let Err(e) = std::os::unix::net::UnixStream::connect(&socket) {
            if e.raw_os_error() == Some(libc::ECONNREFUSED) {
                let _ = std::fs::remove_file(&socket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_what_older_key4c_wrote() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Access::Private);
        let holder = read(dir.path()).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.instance.as_deref(), Some(instance().as_str()));
        assert_eq!(holder.uid, Some(unsafe { libc::geteuid() }));
        assert!(holder.is_this_process());
        assert!(held_by_us(dir.path()));
        assert_eq!(holder.state(), HolderState::Running);

        let old = parse("pid 42 (/usr/bin/pkcs11-tool)\n").unwrap();
        assert_eq!(old.pid, 42);
        assert_eq!(old.exe, "/usr/bin/pkcs11-tool");
        assert_eq!(old.instance, None);
        assert!(!old.is_this_process());
        assert_eq!(old.state(), HolderState::Unknown);
        // An instance that could not be a socket name is ignored.
        assert_eq!(
            parse("pid 1 (x)\ninstance ../../etc\n").unwrap().instance,
            None
        );
    }

    /// EACCES on a holder's socket names its owner and mode (what a user can act on).
    #[test]
    fn a_refused_socket_is_named_with_its_owner_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(dir.path(), "0123456789abcdef");
        let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        access::restrict(&socket, Access::Private).unwrap();
        let me = unsafe { libc::geteuid() };
        let refused_with = |errno| refused(&socket, &std::io::Error::from_raw_os_error(errno));
        assert_eq!(
            refused_with(libc::EACCES),
            format!(
                "its socket {} belongs to user {me} with mode 0600, which this user ({me}) may not use: run every process that shares the store as one user, or share the store through its group (store_access = \"group\")",
                socket.display()
            )
        );
        assert!(refused_with(libc::ECONNREFUSED).starts_with(&format!(
            "its socket {} cannot be reached: ",
            socket.display()
        )));
    }

    #[test]
    fn same_pid_in_another_namespace_is_not_this_process() {
        let other = parse(&format!(
            "pid {} (/app)\ninstance 0123456789abcdef\npidns pid:[1]\n",
            std::process::id()
        ))
        .unwrap();
        assert!(!other.is_this_process());
        assert_eq!(other.state(), HolderState::Unknown);
        assert!(other.describe().contains("in another PID namespace"));
    }
}
