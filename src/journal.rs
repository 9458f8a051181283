// SPDX-License-Identifier: MIT OR Apache-2.0
//! The journal of open recordings: what crash recovery starts from.
//!
//! Before a file's `.part` (or an HLS playlist's first segment) is created,
//! one JSON line naming it is appended to the stream's journal and fsynced.
//! At the next start, after the stream's lock is taken, every entry whose
//! recording was not finished is recovered, then the journal is emptied. So
//! recovery only ever touches files this stream's recorder opened under this
//! location: never another stream's, never a file it did not write.
//!
//! Layout, in the location template's fixed root:
//! `.liverecord/<stream key>.lock` and `.liverecord/<stream key>.open`.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::template::{sanitize_component, LocationTemplate};

/// The folder of the bookkeeping files, inside the template's fixed root.
pub const DIR: &str = ".liverecord";

/// What an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A file written as `path` (its `.part`).
    File,
    /// An HLS playlist at `path` whose segments are `<base>_<seq>.ts`.
    Playlist,
}

/// One open recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    pub kind: Kind,
    pub format: String,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    pub audio_only: bool,
    pub session_id: u64,
    pub index: u64,
    /// ISO 8601 UTC.
    pub start_time: String,
    pub start_running_time: u64,
    /// HLS: the segment target, for a playlist that must be made anew.
    #[serde(default)]
    pub segment_target_ns: u64,
}

/// A file-name-safe key for a stream id: the sanitized id, with a hash of
/// the id when sanitizing changed it or it is long (two ids never share a
/// key by sanitizing alike).
pub fn stream_key(stream_id: &str) -> String {
    const MAX: usize = 64;
    let safe = sanitize_component(stream_id);
    if safe == stream_id && safe.len() <= MAX {
        return safe;
    }
    let short: String = safe.chars().take(MAX).collect();
    format!("{short}-{:016x}", fnv1a(stream_id.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The lock file and the journal of a stream recorded with `template`.
pub fn paths(template: &LocationTemplate, stream_id: &str) -> (PathBuf, PathBuf) {
    let dir = template.fixed_root().join(DIR);
    let key = stream_key(stream_id);
    (
        dir.join(format!("{key}.lock")),
        dir.join(format!("{key}.open")),
    )
}

fn named(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Appends `entry` to the journal at `path` and fsyncs it. A line cut short
/// by a crash is ended first.
pub fn append(path: &Path, entry: &Entry) -> Result<(), String> {
    let mut line = serde_json::to_string(entry).map_err(|e| named(path, e))?;
    line.push('\n');
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| named(path, e))?;
    let len = f.metadata().map_err(|e| named(path, e))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| named(path, e))?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| named(path, e))
}

/// The entries of the journal at `path` (none if it does not exist); lines
/// that do not parse (cut short by a crash) are skipped and counted.
pub fn read(path: &Path) -> io::Result<(Vec<Entry>, usize)> {
    let f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(f).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(e) => entries.push(e),
            Err(_) => bad += 1,
        }
    }
    Ok((entries, bad))
}

/// Empties the journal (after recovery).
pub fn clear(path: &Path) -> Result<(), String> {
    crate::fsio::write_replacing(path, b"").map_err(|e| named(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Entry {
        Entry {
            kind: Kind::File,
            format: "mp4".into(),
            path: PathBuf::from(format!("/r/cam_{i:05}.mp4.part")),
            base: None,
            audio_only: false,
            session_id: 1,
            index: i,
            start_time: "2026-12-01T00:00:00.000000Z".into(),
            start_running_time: 0,
            segment_target_ns: 0,
        }
    }

    #[test]
    fn keys_are_safe_and_distinct() {
        assert_eq!(stream_key("cam1"), "cam1");
        let a = stream_key("../../x");
        let b = stream_key("__.._x");
        assert!(!a.contains('/'), "{a}");
        assert_ne!(a, b);
        let long = stream_key(&"y".repeat(5000));
        assert!(long.len() < 100, "{}", long.len());
        assert_ne!(stream_key("a\nb"), stream_key("a_b"));
    }

    #[test]
    fn paths_are_in_the_fixed_root() {
        let t = LocationTemplate::parse("/srv/rec/{stream_id}/{index}").unwrap();
        let (lock, open) = paths(&t, "cam");
        assert_eq!(lock, Path::new("/srv/rec/.liverecord/cam.lock"));
        assert_eq!(open, Path::new("/srv/rec/.liverecord/cam.open"));
    }

    #[test]
    fn append_read_clear_and_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.open");
        assert_eq!(read(&path).unwrap(), (vec![], 0));
        append(&path, &entry(1)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"kind\":\"fi").unwrap();
        drop(f);
        append(&path, &entry(3)).unwrap();
        assert_eq!(read(&path).unwrap(), (vec![entry(1), entry(3)], 1));
        clear(&path).unwrap();
        assert_eq!(read(&path).unwrap(), (vec![], 0));
    }
}
