// SPDX-License-Identifier: MIT OR Apache-2.0
//! Durable file operations: every recording is made final the same way
//! (fsync the file, rename it, fsync its directory), and small files are
//! written atomically (temporary file, fsync, rename). Errors name the path.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `path: error`, for messages.
pub fn io_error(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

/// Creates the directories of `path`.
pub fn create_parent(path: &Path) -> Result<(), String> {
    match parent(path) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e)),
        None => Ok(()),
    }
}

/// Creates (or truncates) the `.part` file a writer will write, and its
/// directories, so that an unwritable path is reported before the writer starts.
pub fn prepare_part(path: &Path) -> Result<(), String> {
    create_parent(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map(|_| ())
        .map_err(|e| io_error(path, &e))
}

/// Fsyncs the directory holding `path`, so that a rename in it is durable.
pub fn sync_dir_of(path: &Path) {
    if let Some(dir) = parent(path) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Fsyncs `path` and returns its size.
pub fn sync_file(path: &Path) -> Result<u64, String> {
    let f = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    f.sync_all().map_err(|e| io_error(path, &e))?;
    Ok(f.metadata().map_err(|e| io_error(path, &e))?.len())
}

/// Makes a written file final: fsync, rename to `target` (creating its
/// directories), fsync the directory. Returns the size.
pub fn commit(part: &Path, target: &Path) -> Result<u64, String> {
    let size = rename_synced(part, target)?;
    sync_dir_of(target);
    Ok(size)
}

/// [`commit`] without the fsync of the directory, for a file whose
/// directory another write fsyncs right after (an HLS segment, then its
/// playlist): until then a crash may undo the rename, never the data.
pub fn rename_synced(part: &Path, target: &Path) -> Result<u64, String> {
    let size = sync_file(part)?;
    if part != target {
        create_parent(target)?;
        std::fs::rename(part, target).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                part.display(),
                target.display()
            )
        })?;
    }
    Ok(size)
}

/// Makes a written file final under the first free name that `name(n)`
/// gives (n = 0, 1, …), never replacing a file: a name taken meanwhile by
/// another thread is skipped. Returns the name and the size.
pub fn commit_unique(part: &Path, name: impl Fn(u64) -> PathBuf) -> Result<(PathBuf, u64), String> {
    let size = sync_file(part)?;
    for n in 0..10_000 {
        let target = name(n);
        if target.exists() {
            continue;
        }
        create_parent(&target)?;
        match std::fs::hard_link(part, &target) {
            Ok(()) => {
                std::fs::remove_file(part).map_err(|e| io_error(part, &e))?;
                sync_dir_of(&target);
                return Ok((target, size));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links here (some filesystems): rename, which the
            // check above makes safe unless a name is taken at this instant.
            Err(_) => {
                std::fs::rename(part, &target).map_err(|e| {
                    format!(
                        "cannot rename {} to {}: {e}",
                        part.display(),
                        target.display()
                    )
                })?;
                sync_dir_of(&target);
                return Ok((target, size));
            }
        }
    }
    Err(format!("no free name for {}", part.display()))
}

/// The temporary name [`write_atomic`] writes first.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsynced, then renamed over `path`. The temporary file is
/// removed if anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), io_error(path, &e));
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(named(e));
    }
    sync_dir_of(path);
    Ok(())
}

/// Replaces the contents of `path` with `bytes`: atomically when it can;
/// when the disk is full (no room for a temporary copy), in place over the
/// existing file, which then keeps its blocks.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match write_atomic(path, bytes) {
        Err(e) if is_disk_full(&e) && path.exists() => {
            let named = |e: std::io::Error| std::io::Error::new(e.kind(), io_error(path, &e));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(named)?;
            f.write_all(bytes).map_err(named)?;
            f.set_len(bytes.len() as u64).map_err(named)?;
            f.sync_all().map_err(named)
        }
        other => other,
    }
}

/// Whether an I/O error is a full disk (ENOSPC, EDQUOT).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_reports_size() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("a.mp4.part");
        prepare_part(&part).unwrap();
        std::fs::write(&part, b"12345").unwrap();
        let target = dir.path().join("sub/a.mp4");
        assert_eq!(commit(&part, &target).unwrap(), 5);
        assert!(!part.exists());
        assert_eq!(std::fs::read(&target).unwrap(), b"12345");
    }

    #[test]
    fn commit_unique_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let name = |n: u64| dir.path().join(format!("a-{n}.mp4"));
        std::fs::write(name(0), b"old").unwrap();
        let part = dir.path().join("a.mp4.part");
        std::fs::write(&part, b"new").unwrap();
        let (target, size) = commit_unique(&part, name).unwrap();
        assert_eq!((target, size), (name(1), 3));
        assert_eq!(std::fs::read(name(0)).unwrap(), b"old");
        assert!(!part.exists());
    }

    #[test]
    fn errors_name_the_path() {
        let e = commit(
            Path::new("/nonexistent/x.part"),
            Path::new("/nonexistent/x"),
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/x.part"), "{e}");
        let e = prepare_part(Path::new("/proc/nope/x.part")).unwrap_err();
        assert!(e.contains("/proc/nope"), "{e}");
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.m3u8");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
        assert!(write_atomic(&dir.path().join("no/such/dir.m3u8"), b"x").is_err());
        assert!(!tmp_path(&dir.path().join("no/such/dir.m3u8")).exists());
    }
}
