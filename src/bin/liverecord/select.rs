// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading the index and selecting records from it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gstliverecord::index::{self, IndexRecord};

use crate::error::{Error, Result};
use crate::timearg::parse_record_time;

/// The element's default `index-location`.
pub const DEFAULT_INDEX: &str = "recordings/index.jsonl";

/// The reasons of files made by this app, not recorded.
pub const DERIVED_REASONS: &[&str] = &["spliced", "trimmed"];

/// Reads the index; malformed lines are skipped with a warning on stderr.
/// A record whose `file-id` repeats replaces the earlier one (an upload's
/// `event: uploaded` record adds where the object is); a recording whose
/// last record is a deletion (`event: deleted`) is left out. A missing or
/// unreadable index is a usage error.
pub fn read_index(path: &Path) -> Result<Vec<IndexRecord>> {
    let contents = index::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::usage(format!(
                "no index at {}: pass the recorder's index-location with --index",
                path.display()
            ))
        } else {
            Error::usage(format!("cannot read the index: {e}"))
        }
    })?;
    for s in &contents.skipped {
        eprintln!(
            "liverecord: warning: {}: line {} skipped: {}",
            path.display(),
            s.line,
            s.error
        );
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<IndexRecord> = Vec::new();
    for rec in contents.records {
        match seen.get(&rec.file_id) {
            Some(&i) => out[i] = rec,
            None => {
                seen.insert(rec.file_id.clone(), out.len());
                out.push(rec);
            }
        }
    }
    // A recording deleted by retention (a later `deleted` record) is gone.
    out.retain(|r| r.event.as_deref() != Some("deleted"));
    Ok(out)
}

/// A query on the index. Every set field must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub stream: Option<String>,
    pub session: Option<u64>,
    pub format: Option<String>,
    /// Records that end after this time.
    pub from: Option<DateTime<Utc>>,
    /// Records that start before this time.
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn matches(&self, r: &IndexRecord) -> bool {
        if self.stream.as_ref().is_some_and(|s| *s != r.stream_id)
            || self.session.is_some_and(|s| s != r.session_id)
            || self.format.as_ref().is_some_and(|f| *f != r.format)
        {
            return false;
        }
        if self.from.is_some() || self.to.is_some() {
            let (Some(start), Some(end)) = (
                parse_record_time(&r.start_time),
                parse_record_time(&r.end_time),
            ) else {
                return false;
            };
            if self.from.is_some_and(|f| end <= f) || self.to.is_some_and(|t| start >= t) {
                return false;
            }
        }
        true
    }

    /// The query in words, for messages: `stream cam1, session 2`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.stream {
            parts.push(format!("stream {s}"));
        }
        if let Some(s) = self.session {
            parts.push(format!("session {s}"));
        }
        if let Some(f) = &self.format {
            parts.push(format!("format {f}"));
        }
        if let Some(f) = self.from {
            parts.push(format!("ending after {}", crate::timearg::wall_ms(f)));
        }
        if let Some(t) = self.to {
            parts.push(format!("starting before {}", crate::timearg::wall_ms(t)));
        }
        if parts.is_empty() {
            "any".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Sorts records by stream, session, start time, format and index, so that
/// the records of a session are together and in time order.
pub fn sort(records: &mut [IndexRecord]) {
    records.sort_by(|a, b| {
        let ta = parse_record_time(&a.start_time);
        let tb = parse_record_time(&b.start_time);
        (&a.stream_id, a.session_id, ta, &a.format, a.index).cmp(&(
            &b.stream_id,
            b.session_id,
            tb,
            &b.format,
            b.index,
        ))
    });
}

/// Where a record's file is: its location, relative to the current
/// directory unless absolute (as the element wrote it).
pub fn record_path(r: &IndexRecord) -> PathBuf {
    PathBuf::from(&r.location)
}

/// Whether the record's file is still there.
pub fn exists(r: &IndexRecord) -> bool {
    record_path(r).exists()
}
