// SPDX-License-Identifier: MIT OR Apache-2.0
//! The output file (written as `OUT.part`, renamed when complete) and its
//! index line.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gstliverecord::index::{self, IndexRecord};

use crate::error::{Error, Result};

/// `OUT.part` while it is written; removed unless [`PartFile::commit`]ted.
pub struct PartFile {
    out: PathBuf,
    part: PathBuf,
    committed: bool,
}

impl PartFile {
    /// Checks the output path and creates `OUT.part`, so that an unwritable
    /// place fails before any work. An existing `OUT` is an error unless
    /// `force`.
    pub fn create(out: &Path, force: bool) -> Result<PartFile> {
        if out.as_os_str().is_empty() {
            return Err(Error::usage("the output path is empty"));
        }
        if out.is_dir() {
            return Err(Error::usage(format!(
                "the output {} is a directory",
                out.display()
            )));
        }
        if out.exists() && !force {
            return Err(Error::usage(format!(
                "the output {} exists (use --force to replace it)",
                out.display()
            )));
        }
        let mut name = out.as_os_str().to_owned();
        name.push(".part");
        let part = PathBuf::from(name);
        fs::File::create(&part).map_err(|e| {
            Error::failed(format!("cannot write the output {}: {e}", part.display()))
        })?;
        Ok(PartFile {
            out: out.to_owned(),
            part,
            committed: false,
        })
    }

    pub fn part(&self) -> &Path {
        &self.part
    }

    /// Fsyncs the `.part`, renames it to the final name and returns its size.
    pub fn commit(mut self) -> Result<u64> {
        let fail = |what: &str, e: std::io::Error| {
            Error::failed(format!("cannot {what} {}: {e}", self.part.display()))
        };
        let f = fs::File::open(&self.part).map_err(|e| fail("open", e))?;
        f.sync_all().map_err(|e| fail("fsync", e))?;
        let size = f.metadata().map_err(|e| fail("stat", e))?.len();
        fs::rename(&self.part, &self.out).map_err(|e| fail("rename", e))?;
        self.committed = true;
        if let Some(dir) = self.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(size)
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.part);
        }
    }
}

/// Fails early if the index cannot be appended to.
pub fn check_index_writable(path: &Path) -> Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| {
            Error::usage(format!(
                "cannot append to the index {}: {e}",
                path.display()
            ))
        })
}

/// What an output is made of, for its index line.
pub struct Derived<'a> {
    pub sources: &'a [&'a IndexRecord],
    pub reason: &'a str,
    pub format: &'a str,
    pub location: &'a Path,
    pub start: DateTime<Utc>,
    /// The first source's start running time plus the cut at its start.
    pub start_running_time: u64,
    pub duration_ns: u64,
    pub size: u64,
    pub frames: [u64; 2],
}

/// The index line of an output. Its `index` is 0 (derived files are not
/// numbered with the recorder's files) and its `file-id` is
/// `{stream}-{format}-{reason}-{session}-{start µs}-{now µs}`.
pub fn derived_record(d: &Derived) -> IndexRecord {
    let first = d.sources.first();
    let stream_id = first.map_or_else(String::new, |r| r.stream_id.clone());
    let session_id = first.map_or(0, |r| r.session_id);
    let end = d.start + chrono::Duration::nanoseconds(d.duration_ns as i64);
    IndexRecord {
        file_id: format!(
            "{stream_id}-{}-{}-{session_id}-{}-{}",
            d.format,
            d.reason,
            d.start.timestamp_micros(),
            Utc::now().timestamp_micros()
        ),
        stream_id,
        session_id,
        index: 0,
        format: d.format.to_owned(),
        location: d.location.to_string_lossy().into_owned(),
        start_time: index::iso8601(d.start),
        start_running_time: d.start_running_time,
        end_time: index::iso8601(end),
        duration: index::seconds_ms(d.duration_ns),
        size: d.size,
        video_frames: d.frames[0],
        audio_frames: d.frames[1],
        reason: d.reason.to_owned(),
        playback_url: None,
        source_file_ids: d.sources.iter().map(|r| r.file_id.clone()).collect(),
        event: None,
        object_key: None,
        object_url: None,
        etag: None,
        local_deleted: false,
    }
}

/// Appends the record; on failure the output is removed, so that an error
/// never leaves a file the index does not know.
pub fn append_or_remove(index_path: &Path, out: &Path, rec: &IndexRecord) -> Result<()> {
    index::append(index_path, rec).map_err(|e| {
        let _ = fs::remove_file(out);
        Error::failed(format!(
            "cannot append to the index ({e}); {} was removed",
            out.display()
        ))
    })
}
