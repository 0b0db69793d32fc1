//! Who may read a store: its owner alone (the default), or the members of its group
//! (`store_access = "group"`).
//!
//! Why it matters: whoever can copy the directory can try PINs on the copy offline, restore the
//! copy to roll the PIN counters back, and attack the wrapped master key with no module at all.
//! So the directory is made 0700 (0770 shared) and every file and socket in it 0600 (0660), by
//! explicit modes rather than the umask; and a store found open to more than that is refused
//! before anything in it is read, the way ssh refuses a private key with loose permissions.
//!
//! sled writes files of its own at moments no caller can wrap (a snapshot at every open, blob
//! files for large values) with the process's umask, and a socket gets its mode only after it
//! is bound. Those hold no data (a snapshot is an index of the log) or are unreachable while
//! the directory is private, and a process killed at the wrong instant can leave one loose: they
//! are tightened, not refused. Everything that holds data is refused when loose.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use serde::Deserialize;

use super::StoreError;

/// Who may read the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The owner alone: directory 0700, files and sockets 0600.
    #[default]
    Private,
    /// The owner and the directory's group: 0770 and 0660.
    Group,
}

impl Access {
    /// The mode of the store directory (and of sled's `blobs` directory).
    pub fn dir_mode(self) -> u32 {
        match self {
            Access::Private => 0o700,
            Access::Group => 0o770,
        }
    }

    /// The mode of every file and socket in the store.
    pub fn file_mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Group => 0o660,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Access::Private => "private",
            Access::Group => "group",
        }
    }
}

/// Creates the store directory `path` with the access's mode (its parents with the default
/// mode), or leaves an existing one as it is for [`check`] to judge.
pub fn create_dir(path: &Path, access: Access) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new()
        .mode(access.dir_mode())
        .create(path)
    {
        Ok(()) => std::fs::set_permissions(path, Permissions::from_mode(access.dir_mode())),
        // Another process made it a moment ago.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Options that create a file in the store: never looser than the store's mode, even for the
/// moment before [`restrict`] sets it exactly (another process may be checking the store).
pub fn create_options(access: Access) -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).mode(access.file_mode());
    options
}

/// Gives a file or socket this process just made in the store its mode.
pub fn restrict(path: &Path, access: Access) -> std::io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(access.file_mode()))
}

/// Refuses a store open to more users than `access` allows (the directory, or any file that
/// holds data); tightens sled's snapshots and blobs and the processes' sockets (module doc).
pub fn check(path: &Path, access: Access) -> Result<(), StoreError> {
    let io = |what: &Path, e: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        detail: format!("cannot read the permissions of {}: {e}", what.display()),
    };
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if access == Access::Private && meta.uid() != me {
        return Err(StoreError::Access {
            path: path.to_path_buf(),
            detail: format!(
                "the store directory belongs to user {}, not to this user ({me}); a private store is used by its owner only (store_access = \"group\" shares one through its group)",
                meta.uid()
            ),
        });
    }
    let loose = |what: &Path, mode: u32, allowed: u32| {
        StoreError::Access {
        path: path.to_path_buf(),
        detail: format!(
            "{} has mode {:04o}, open to {}, where a {} store allows {allowed:04o}: run `chmod {allowed:o} {}`, or `chmod -R {} {}` for the whole store",
            what.display(),
            mode & 0o7777,
            if mode & 0o007 != 0 { "every user" } else { "its group" },
            access.name(),
            what.display(),
            if access == Access::Private { "go-rwx" } else { "o-rwx" },
            path.display()
        ),
    }
    };
    let dir_mode = meta.mode();
    if dir_mode & 0o777 & !access.dir_mode() != 0 {
        return Err(loose(path, dir_mode, access.dir_mode()));
    }
    check_files(path, access, &loose, &io)
}

fn check_files(
    dir: &Path,
    access: Access,
    loose: &dyn Fn(&Path, u32, u32) -> StoreError,
    io: &dyn Fn(&Path, std::io::Error) -> StoreError,
) -> Result<(), StoreError> {
    use std::os::unix::fs::FileTypeExt;
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        // lstat: a link is judged as a link, never followed out of the store.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Gone since it was listed: the process holding the store renamed or removed it
            // (sled's snapshot in the making, a socket).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path, e)),
        };
        let kind = meta.file_type();
        let mode = meta.mode();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if mode & 0o777 & !access.dir_mode() != 0 {
                if name == "blobs" {
                    tighten(&path, access.dir_mode());
                } else {
                    return Err(loose(&path, mode, access.dir_mode()));
                }
            }
            check_files(&path, access, loose, io)?;
            continue;
        }
        if mode & 0o777 & !access.file_mode() == 0 {
            continue;
        }
        let made_by_sled_at_run_time =
            name.starts_with("snap.") || dir.file_name().is_some_and(|d| d == "blobs");
        if kind.is_socket() || made_by_sled_at_run_time {
            tighten(&path, access.file_mode());
        } else {
            return Err(loose(&path, mode, access.file_mode()));
        }
    }
    Ok(())
}

fn tighten(path: &Path, mode: u32) {
    match std::fs::set_permissions(path, Permissions::from_mode(mode)) {
        Ok(()) => log::debug!("{}: mode set to {mode:04o}", path.display()),
        // Another user's socket in a shared store: its owner tightens it.
        Err(e) => log::debug!("cannot set the mode of {}: {e}", path.display()),
    }
}

/// Gives sled's files the access's modes right after sled opened the store (sled creates them
/// with the umask).
pub fn restrict_sled_files(path: &Path, access: Access) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if name == "blobs" && meta.is_dir() {
            tighten(&entry.path(), access.dir_mode());
            restrict_sled_files(&entry.path(), access);
        } else if meta.is_file() && meta.mode() & 0o777 != access.file_mode() {
            tighten(&entry.path(), access.file_mode());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_with_explicit_modes_whatever_the_umask() {
        let top = tempfile::tempdir().unwrap();
        let private = top.path().join("a/b/store");
        create_dir(&private, Access::Private).unwrap();
        assert_eq!(mode(&private), 0o700);
        let shared = top.path().join("shared");
        create_dir(&shared, Access::Group).unwrap();
        assert_eq!(mode(&shared), 0o770);
        let file = shared.join("f");
        std::fs::write(&file, b"x").unwrap();
        restrict(&file, Access::Group).unwrap();
        assert_eq!(mode(&file), 0o660);
        check(&shared, Access::Group).unwrap();
    }

    #[test]
    fn loose_directory_or_data_file_is_refused_with_the_fix() {
        let top = tempfile::tempdir().unwrap();
        let store = top.path().join("store");
        create_dir(&store, Access::Private).unwrap();
        std::fs::write(store.join("db"), b"x").unwrap();
        restrict(&store.join("db"), Access::Private).unwrap();
        check(&store, Access::Private).unwrap();

        std::fs::set_permissions(store.join("db"), Permissions::from_mode(0o644)).unwrap();
        let e = check(&store, Access::Private).unwrap_err().to_string();
        assert!(e.contains("db has mode 0644, open to every user, where a private store allows 0600: run `chmod 600 "), "{e}");
        assert!(e.contains("or `chmod -R go-rwx "), "{e}");
        std::fs::set_permissions(store.join("db"), Permissions::from_mode(0o600)).unwrap();

        std::fs::set_permissions(&store, Permissions::from_mode(0o750)).unwrap();
        let e = check(&store, Access::Private).unwrap_err().to_string();
        assert!(e.contains("has mode 0750, open to its group, where a private store allows 0700: run `chmod 700 "), "{e}");
        // The same directory is fine for a group-shared store.
        check(&store, Access::Group).unwrap();
    }

    #[test]
    fn snapshots_and_blobs_are_tightened_not_refused() {
        let top = tempfile::tempdir().unwrap();
        let store = top.path().join("store");
        create_dir(&store, Access::Private).unwrap();
        let snap = store.join("snap.0000000000001234");
        std::fs::write(&snap, b"x").unwrap();
        std::fs::set_permissions(&snap, Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(store.join("blobs")).unwrap();
        std::fs::set_permissions(store.join("blobs"), Permissions::from_mode(0o755)).unwrap();
        let blob = store.join("blobs/17");
        std::fs::write(&blob, b"x").unwrap();
        std::fs::set_permissions(&blob, Permissions::from_mode(0o644)).unwrap();
        check(&store, Access::Private).unwrap();
        assert_eq!(mode(&snap), 0o600);
        assert_eq!(mode(&store.join("blobs")), 0o700);
        assert_eq!(mode(&blob), 0o600);
    }
}
