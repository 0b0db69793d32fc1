//! Calls the kernel interrupted for a signal (EINTR), retried.
//!
//! The module runs inside other people's processes, with their signal handlers and timers: a
//! handler installed without `SA_RESTART` makes a blocking system call fail with EINTR
//! ("Interrupted system call") whenever its signal arrives. std retries it in its reads and
//! writes (`read_exact`, `write_all`, `read_to_end`), `open`, the fsyncs, `wait` and sleeps, but
//! not in `std::fs::copy` (copy_file_range / sendfile), `UnixStream::connect` or a raw `flock`:
//! those go through [`retry`].

use std::io;

/// Calls `f` again for as long as it fails with [`io::ErrorKind::Interrupted`].
pub fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `std::fs::copy`, retried on EINTR (a retry copies the whole file again, truncating first).
pub fn copy(from: &std::path::Path, to: &std::path::Path) -> io::Result<u64> {
    retry(|| std::fs::copy(from, to))
}

/// `flock(fd, op)`, retried on EINTR.
pub fn flock(fd: std::os::fd::RawFd, op: libc::c_int) -> io::Result<()> {
    retry(|| {
        // SAFETY: flock has no memory effects; a bad descriptor is an error, not UB.
        if unsafe { libc::flock(fd, op) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_calls_are_retried_and_other_errors_returned() {
        let mut n = 0;
        let r = retry(|| {
            n += 1;
            if n < 3 {
                Err(io::Error::from_raw_os_error(libc::EINTR))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 3);
        let mut m = 0;
        let r: io::Result<()> = retry(|| {
            m += 1;
            Err(io::Error::from_raw_os_error(libc::EAGAIN))
        });
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EAGAIN));
        assert_eq!(m, 1);
    }
}
