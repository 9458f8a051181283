// SPDX-License-Identifier: MIT OR Apache-2.0
//! One writer per stream: an exclusive `flock` on a lock file per stream and
//! location, held for as long as the element records (SPEC §9).
//!
//! The kernel releases the lock when its holder dies, so the lock of a
//! process killed with SIGKILL never blocks a restart. The file stays in
//! place (removing it would let a second recorder lock a new file while a
//! third still holds the old one); it holds the holder's pid, for the error
//! a second recorder gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StreamLock {
    // Closing the file releases the flock.
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another live process holds it (the message names it).
    Held(String),
    /// The lock file cannot be created or written.
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(m) | LockError::Io(m) => f.write_str(m),
        }
    }
}

/// Takes the lock at `path` (creating it and its directory), or says who
/// holds it. `what` names the stream in the error.
pub fn acquire(path: &Path, what: &str) -> Result<StreamLock, LockError> {
    use LockError::{Held, Io};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Io(format!("Cannot create {}: {e}", dir.display())))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Io(format!("Cannot open the lock file {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own, for the file's lifetime.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("pid {holder}")
            };
            return Err(Held(format!(
                "Another recorder is already writing {what}: the lock {} is held by {holder}",
                path.display()
            )));
        }
        return Err(Io(format!("Cannot lock {}: {e}", path.display())));
    }
    let pid = std::process::id().to_string();
    let written = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(pid.as_bytes()))
        .and_then(|_| file.sync_all());
    if let Err(e) = written {
        return Err(Io(format!(
            "Cannot write the lock file {}: {e}",
            path.display()
        )));
    }
    Ok(StreamLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holder_pid_then_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cam.lock");
        let first = acquire(&path, "stream cam").unwrap();
        // flock locks belong to the open file description: a second open in
        // the same process conflicts just as another process would.
        let LockError::Held(err) = acquire(&path, "stream cam").unwrap_err() else {
            panic!("not refused as held");
        };
        assert!(err.contains("stream cam"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = acquire(&path, "stream cam").unwrap();
        drop(again);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let LockError::Io(err) = acquire(Path::new("/proc/nope/x.lock"), "stream cam").unwrap_err()
        else {
            panic!("not an IO error");
        };
        assert!(err.contains("/proc/nope"), "{err}");
    }
}
