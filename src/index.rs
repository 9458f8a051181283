// SPDX-License-Identifier: MIT OR Apache-2.0
//! The JSON Lines recording index (SPEC §8).
//!
//! Each closed file is appended as one JSON object per line, with the same
//! kebab-case fields as the `liverecordsink-file-closed` message, except that
//! `duration` is in seconds (a JSON number with millisecond precision). The
//! index is also read back at start ([`scan`]) so that session and file
//! numbers continue across restarts.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

/// One line of the index: a closed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IndexRecord {
    pub stream_id: String,
    pub session_id: u64,
    pub index: u64,
    pub format: String,
    /// The final path.
    pub location: String,
    /// ISO 8601 UTC with microseconds, see [`iso8601`].
    pub start_time: String,
    /// Nanoseconds.
    pub start_running_time: u64,
    pub file_id: String,
    pub end_time: String,
    /// Seconds, rounded to milliseconds, see [`seconds_ms`].
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_url: Option<String>,
    /// For a file made from other files (`liverecord splice` and `trim`,
    /// `reason` `spliced` or `trimmed`): the `file-id`s of its sources, in
    /// order. Empty, and left out of the JSON, for recorded files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_file_ids: Vec<String>,
    /// Absent for a recording; `deleted` for the record that retention
    /// (`storage-period`) deleted the recording with this `file-id`;
    /// `uploaded` for the record that it was uploaded (`object-key`,
    /// `object-url`, `etag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Set on an `uploaded` record when the local file was then deleted
    /// (`upload-delete-local`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_deleted: bool,
}

impl IndexRecord {
    /// The record as one JSON line, including the trailing `\n`.
    pub fn to_line(&self) -> serde_json::Result<String> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }
}

fn with_path(path: &Path, e: impl std::fmt::Display, kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, format!("{}: {e}", path.display()))
}

/// Appends one JSON line to `path`, creating parent directories, then fsyncs.
///
/// The line is written with a single `write_all` on a file opened in append
/// mode, under an exclusive `flock` shared by every appender. Errors name
/// the path.
pub fn append(path: &Path, rec: &IndexRecord) -> io::Result<()> {
    let line = rec
        .to_line()
        .map_err(|e| with_path(path, e, io::ErrorKind::InvalidData))?;

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| with_path(parent, &e, e.kind()))?;
    }

    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| with_path(path, &e, e.kind()))?;
    // Appenders (the close path, the delivery and retention threads, other
    // processes) take turns: a half-written line of another must not look
    // like a cut one. Closing the file releases the lock.
    // SAFETY: flock on a file descriptor we own, for the file's lifetime.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(with_path(path, &e, e.kind()));
    }
    // A process that died mid-append left a line without its newline: end
    // that line first, so that this record stays a line of its own (the cut
    // line is skipped by readers).
    let line = if ends_cut(&mut file).map_err(|e| with_path(path, &e, e.kind()))? {
        format!("\n{line}")
    } else {
        line
    };
    file.write_all(line.as_bytes())
        .map_err(|e| with_path(path, &e, e.kind()))?;
    file.sync_all().map_err(|e| with_path(path, &e, e.kind()))
}

/// Whether `file` is not empty and does not end with a newline.
fn ends_cut(file: &mut fs::File) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Where numbering continues after a restart, from [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The session id for the next session (1 if the stream has no records).
    pub next_session: u64,
    /// Per format, the next file index. Formats without records are absent.
    pub next_index: HashMap<String, u64>,
    /// Lines that could not be parsed and were ignored.
    pub skipped_lines: usize,
    /// Records of this stream that were read.
    pub records: usize,
}

impl Default for Resume {
    /// Sessions and indexes start at 1.
    fn default() -> Self {
        Resume {
            next_session: 1,
            next_index: HashMap::new(),
            skipped_lines: 0,
            records: 0,
        }
    }
}

impl Resume {
    /// The next file index for `format`, 1 if it has none.
    pub fn next_index_for(&self, format: &str) -> u64 {
        self.next_index.get(format).copied().unwrap_or(1)
    }
}

/// The fields [`scan`] needs; other fields are ignored, so that a record
/// with an odd value elsewhere (or from a newer version) still counts.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ScanFields {
    stream_id: String,
    session_id: u64,
    index: u64,
    format: String,
}

/// Reads the index at `path` and returns where numbering continues for
/// `stream_id`: max(session-id) + 1 and, per format, max(index) + 1.
///
/// A missing file gives [`Resume::default`]. Blank lines are ignored;
/// malformed lines (bad JSON, invalid UTF-8, a line cut short by a crash) are
/// skipped and counted in [`Resume::skipped_lines`]. Other IO errors are
/// returned, naming the path.
pub fn scan(path: &Path, stream_id: &str) -> io::Result<Resume> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Resume::default()),
        Err(e) => return Err(with_path(path, &e, e.kind())),
    };

    let mut resume = Resume::default();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| with_path(path, &e, e.kind()))?;
        if n == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: ScanFields = match serde_json::from_slice(&line) {
            Ok(rec) => rec,
            Err(_) => {
                resume.skipped_lines += 1;
                continue;
            }
        };
        if rec.stream_id != stream_id {
            continue;
        }
        resume.records += 1;
        resume.next_session = resume.next_session.max(rec.session_id.saturating_add(1));
        let next = resume.next_index.entry(rec.format).or_insert(1);
        *next = (*next).max(rec.index.saturating_add(1));
    }
    Ok(resume)
}

/// A line of the index that [`read`] could not take as an [`IndexRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped (the JSON error).
    pub error: String,
}

/// Everything [`read`] found in an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    /// The records, in file order.
    pub records: Vec<IndexRecord>,
    /// Malformed lines (bad JSON, invalid UTF-8, missing fields, a line cut
    /// short by a crash), in file order. Blank lines are not counted.
    pub skipped: Vec<SkippedLine>,
}

/// Reads every record of the index at `path`, skipping malformed lines (the
/// caller decides how to report [`Contents::skipped`]). Errors, a missing
/// file included, name the path.
pub fn read(path: &Path) -> io::Result<Contents> {
    let file = fs::File::open(path).map_err(|e| with_path(path, &e, e.kind()))?;
    let mut contents = Contents::default();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| with_path(path, &e, e.kind()))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<IndexRecord>(&line) {
            Ok(rec) => contents.records.push(rec),
            Err(e) => contents.skipped.push(SkippedLine {
                line: number,
                error: e.to_string(),
            }),
        }
    }
    Ok(contents)
}

/// ISO 8601 UTC with microseconds: `2026-11-24T01:02:03.000123Z`.
pub fn iso8601(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A duration in nanoseconds as seconds, rounded (half up) to milliseconds.
pub fn seconds_ms(ns: u64) -> f64 {
    let ms = ns / 1_000_000 + u64::from(ns % 1_000_000 >= 500_000);
    ms as f64 / 1000.0
}

/// A unique, stable file id:
/// `{stream_id}-{format}-{session}-{index:05}-{start_unix_micros}`.
/// `stream_id` must already be sanitized.
pub fn file_id(
    stream_id: &str,
    format: &str,
    session: u64,
    index: u64,
    start: DateTime<Utc>,
) -> String {
    format!(
        "{stream_id}-{format}-{session}-{index:05}-{}",
        start.timestamp_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 1, 2, 3).unwrap() + chrono::Duration::microseconds(123)
    }

    fn record(stream_id: &str, session: u64, index: u64, format: &str) -> IndexRecord {
        let start = start();
        let end = start + chrono::Duration::milliseconds(61_500);
        IndexRecord {
            stream_id: stream_id.to_owned(),
            session_id: session,
            index,
            format: format.to_owned(),
            location: format!("recordings/{stream_id}/{stream_id}_{index:05}.{format}"),
            start_time: iso8601(start),
            start_running_time: 1_000_000_000,
            file_id: file_id(stream_id, format, session, index, start),
            end_time: iso8601(end),
            duration: seconds_ms(61_500_000_000),
            size: 123_456,
            video_frames: 1845,
            audio_frames: 2882,
            reason: "interval".to_owned(),
            playback_url: None,
            source_file_ids: Vec::new(),
            event: None,
            object_key: None,
            object_url: None,
            etag: None,
            local_deleted: false,
        }
    }

    #[test]
    fn serializes_kebab_case() {
        let rec = record("cam1", 2, 7, "mp4");
        let json = serde_json::to_string(&rec).unwrap();
        for key in [
            "\"stream-id\":\"cam1\"",
            "\"session-id\":2",
            "\"index\":7",
            "\"format\":\"mp4\"",
            "\"location\":",
            "\"start-time\":\"2026-11-24T01:02:03.000123Z\"",
            "\"start-running-time\":1000000000",
            "\"file-id\":",
            "\"end-time\":\"2026-11-24T01:03:04.500123Z\"",
            "\"duration\":61.5",
            "\"size\":123456",
            "\"video-frames\":1845",
            "\"audio-frames\":2882",
            "\"reason\":\"interval\"",
        ] {
            assert!(json.contains(key), "{key} missing in {json}");
        }
        assert!(!json.contains("playback"), "{json}");
        for snake in [
            "stream_id",
            "session_id",
            "video_frames",
            "start_running_time",
        ] {
            assert!(!json.contains(snake), "{snake} in {json}");
        }
        assert!(!json.contains('\n'));

        let back: IndexRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn serializes_playback_url_when_set() {
        let mut rec = record("cam1", 1, 1, "hls");
        rec.playback_url = Some("https://vod.example.com/a.m3u8".to_owned());
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains("\"playback-url\":\"https://vod.example.com/a.m3u8\""));
        let back: IndexRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn deserializes_without_playback_url() {
        let rec = record("cam1", 1, 1, "mp4");
        let value = serde_json::to_value(&rec).unwrap();
        assert!(value.get("playback-url").is_none());
        let back: IndexRecord = serde_json::from_value(value).unwrap();
        assert_eq!(back.playback_url, None);
    }

    #[test]
    fn to_line_is_one_line() {
        let mut rec = record("cam1", 1, 1, "mp4");
        rec.location = "weird\nname\"with quotes".to_owned();
        let line = rec.to_line().unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let back: IndexRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn append_twice_then_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/index.jsonl");
        append(&path, &record("cam1", 1, 1, "mp4")).unwrap();
        append(&path, &record("cam1", 1, 2, "mp4")).unwrap();

        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let second: IndexRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second, record("cam1", 1, 2, "mp4"));

        let resume = scan(&path, "cam1").unwrap();
        assert_eq!(resume.next_session, 2);
        assert_eq!(resume.next_index_for("mp4"), 3);
        assert_eq!(resume.next_index_for("flv"), 1);
        assert_eq!(resume.skipped_lines, 0);
        assert_eq!(resume.records, 2);
    }

    #[test]
    fn append_after_a_cut_line_keeps_both_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        append(&path, &record("cam1", 1, 1, "mp4")).unwrap();
        // The process died in the middle of the second record.
        let cut = record("cam1", 1, 2, "mp4").to_line().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&cut.as_bytes()[..cut.len() / 2]).unwrap();
        drop(f);
        append(&path, &record("cam1", 1, 3, "mp4")).unwrap();

        let contents = read(&path).unwrap();
        let indexes: Vec<u64> = contents.records.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 3], "both whole records are kept");
        assert_eq!(contents.skipped.len(), 1, "the cut line is skipped");
        assert_eq!(contents.skipped[0].line, 2);
        let resume = scan(&path, "cam1").unwrap();
        assert_eq!(resume.next_index_for("mp4"), 4);
        assert_eq!(resume.skipped_lines, 1);
    }

    #[test]
    fn concurrent_appends_are_whole_lines_without_blank_ones() {
        // The close path and the delivery thread append at the same time.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..100 {
                        append(path, &record("cam1", t + 1, i + 1, "mp4")).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\n\n"), "a blank line");
        let contents = read(&path).unwrap();
        assert_eq!(contents.records.len(), 400);
        assert!(contents.skipped.is_empty());
    }

    #[test]
    fn append_relative_file_without_parent() {
        // A bare file name has an empty parent; that must not be an error.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        append(&path, &record("x", 1, 1, "aac")).unwrap();
        assert_eq!(scan(&path, "x").unwrap().next_index_for("aac"), 2);
    }

    #[test]
    fn append_error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where a directory is needed.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("index.jsonl");
        let err = append(&path, &record("cam1", 1, 1, "mp4")).unwrap_err();
        assert!(
            err.to_string().contains(&blocker.display().to_string()),
            "{err}"
        );

        // The index path is a directory.
        let err = append(dir.path(), &record("cam1", 1, 1, "mp4")).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn scan_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let resume = scan(&dir.path().join("nope/index.jsonl"), "cam1").unwrap();
        assert_eq!(resume, Resume::default());
        assert_eq!(resume.next_session, 1);
        assert_eq!(resume.next_index_for("mp4"), 1);
        assert_eq!(resume.skipped_lines, 0);
        assert_eq!(resume.records, 0);
    }

    #[test]
    fn scan_error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        // Reading a directory fails (EISDIR) on read, not on open.
        let err = scan(dir.path(), "cam1").unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn scan_skips_malformed_and_other_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        let mut f = fs::File::create(&path).unwrap();
        let line = |r: IndexRecord| r.to_line().unwrap();
        f.write_all(line(record("cam1", 1, 1, "mp4")).as_bytes())
            .unwrap();
        f.write_all(line(record("cam1", 1, 1, "hls")).as_bytes())
            .unwrap();
        f.write_all(b"not json\n").unwrap();
        f.write_all(b"\n   \n").unwrap();
        f.write_all(b"{\"stream-id\":\"cam1\"}\n").unwrap();
        f.write_all(b"[1,2,3]\n").unwrap();
        f.write_all(b"\xff\xfe\n").unwrap();
        f.write_all(b"{\"stream-id\":\"cam1\",\"session-id\":-1,\"index\":1,\"format\":\"mp4\"}\n")
            .unwrap();
        f.write_all(line(record("cam2", 9, 50, "mp4")).as_bytes())
            .unwrap();
        f.write_all(line(record("cam1", 3, 5, "mp4")).as_bytes())
            .unwrap();
        f.write_all(line(record("cam1", 2, 8, "flv")).as_bytes())
            .unwrap();
        f.write_all(line(record("cam1", 2, 4, "mp4")).as_bytes())
            .unwrap();
        // Minimal record: only the fields scan needs, plus unknown ones.
        f.write_all(
            b"{\"stream-id\":\"cam1\",\"session-id\":1,\"index\":2,\"format\":\"hls\",\"x\":null}\n",
        )
        .unwrap();
        // A line cut short by a crash, without newline.
        let full = line(record("cam1", 99, 99, "mp4"));
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let resume = scan(&path, "cam1").unwrap();
        assert_eq!(resume.next_session, 4);
        assert_eq!(resume.next_index_for("mp4"), 6);
        assert_eq!(resume.next_index_for("flv"), 9);
        assert_eq!(resume.next_index_for("hls"), 3);
        assert_eq!(resume.next_index_for("aac"), 1);
        assert_eq!(resume.skipped_lines, 6);
        assert_eq!(resume.records, 6);

        let other = scan(&path, "cam2").unwrap();
        assert_eq!(other.next_session, 10);
        assert_eq!(other.next_index_for("mp4"), 51);
        assert_eq!(other.next_index_for("hls"), 1);
        assert_eq!(other.records, 1);

        let none = scan(&path, "cam3").unwrap();
        assert_eq!(none.next_session, 1);
        assert!(none.next_index.is_empty());
        assert_eq!(none.skipped_lines, 6);
    }

    #[test]
    fn read_skips_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        let mut f = fs::File::create(&path).unwrap();
        let mut spliced = record("cam1", 1, 0, "mp4");
        spliced.reason = "spliced".to_owned();
        spliced.source_file_ids = vec!["a".to_owned(), "b".to_owned()];
        f.write_all(record("cam1", 1, 1, "mp4").to_line().unwrap().as_bytes())
            .unwrap();
        f.write_all(b"not json\n\n").unwrap();
        f.write_all(b"{\"stream-id\":\"cam1\"}\n").unwrap();
        f.write_all(spliced.to_line().unwrap().as_bytes()).unwrap();
        let full = record("cam1", 1, 2, "mp4").to_line().unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let c = read(&path).unwrap();
        assert_eq!(c.records, vec![record("cam1", 1, 1, "mp4"), spliced]);
        let lines: Vec<usize> = c.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 6]);
        assert!(c.skipped.iter().all(|s| !s.error.is_empty()));

        let err = read(&dir.path().join("nope.jsonl")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }

    #[test]
    fn source_file_ids_only_when_set() {
        let mut rec = record("cam1", 1, 0, "mp4");
        assert!(!rec.to_line().unwrap().contains("source-file-ids"));
        rec.source_file_ids = vec!["x-1".to_owned()];
        let line = rec.to_line().unwrap();
        assert!(line.contains("\"source-file-ids\":[\"x-1\"]"), "{line}");
        let back: IndexRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn scan_saturates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        append(&path, &record("cam1", u64::MAX, u64::MAX, "mp4")).unwrap();
        let resume = scan(&path, "cam1").unwrap();
        assert_eq!(resume.next_session, u64::MAX);
        assert_eq!(resume.next_index_for("mp4"), u64::MAX);
    }

    #[test]
    fn scan_reads_zero_ids_as_start_at_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        append(&path, &record("cam1", 0, 0, "mp4")).unwrap();
        let resume = scan(&path, "cam1").unwrap();
        assert_eq!(resume.next_session, 1);
        assert_eq!(resume.next_index_for("mp4"), 1);
    }

    #[test]
    fn iso8601_format() {
        assert_eq!(iso8601(start()), "2026-11-24T01:02:03.000123Z");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(iso8601(t), "2026-01-02T03:04:05.000000Z");
        let t = t + chrono::Duration::nanoseconds(999_999_999);
        // Truncated to microseconds, never rounded into the next second.
        assert_eq!(iso8601(t), "2026-01-02T03:04:05.999999Z");
        assert_eq!(
            iso8601(DateTime::<Utc>::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        let parsed = DateTime::parse_from_rfc3339(&iso8601(start())).unwrap();
        assert_eq!(parsed.with_timezone(&Utc), start());
    }

    #[test]
    fn seconds_ms_rounding() {
        assert_eq!(seconds_ms(0), 0.0);
        assert_eq!(seconds_ms(1), 0.0);
        assert_eq!(seconds_ms(499_999), 0.0);
        assert_eq!(seconds_ms(500_000), 0.001);
        assert_eq!(seconds_ms(1_000_000), 0.001);
        assert_eq!(seconds_ms(1_234_567_890), 1.235);
        assert_eq!(seconds_ms(1_234_499_999), 1.234);
        assert_eq!(seconds_ms(6_000_000_000), 6.0);
        assert_eq!(seconds_ms(7_200_000_000_000), 7200.0);
        assert_eq!(seconds_ms(59_999_600_000), 60.0);
        assert!(seconds_ms(u64::MAX).is_finite());
        assert_eq!(
            serde_json::to_string(&seconds_ms(1_234_567_890)).unwrap(),
            "1.235"
        );
        assert_eq!(
            serde_json::to_string(&seconds_ms(100_000_000)).unwrap(),
            "0.1"
        );
    }

    #[test]
    fn file_id_format() {
        let id = file_id("cam1", "mp4", 3, 42, start());
        assert_eq!(id, "cam1-mp4-3-00042-1795482123000123");
        assert_eq!(
            file_id("cam1", "hls", 1, 123_456, DateTime::<Utc>::UNIX_EPOCH),
            "cam1-hls-1-123456-0"
        );
        assert_ne!(id, file_id("cam1", "mp4", 3, 43, start()));
        assert_ne!(id, file_id("cam1", "flv", 3, 42, start()));
        assert_eq!(id, file_id("cam1", "mp4", 3, 42, start()));
    }
}
