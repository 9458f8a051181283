// SPDX-License-Identifier: MIT OR Apache-2.0
//! Retention (`storage-period`): which indexed recordings are due for
//! deletion, which files each one is, and the empty folders left behind.
//!
//! Only what the index lists for this stream is ever deleted: a file that is
//! open (not indexed yet), another stream's file, or a file the index does
//! not name is never touched. Each deletion is itself appended to the index
//! (`event: deleted`), so a recording is deleted once and the index tells
//! what exists.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::index::IndexRecord;

/// The `event` of a deletion record.
pub const DELETED: &str = "deleted";

/// The records of `stream_id` whose end time is older than `now - period`
/// and that were not deleted yet, oldest first.
pub fn due<'a>(
    records: &'a [IndexRecord],
    stream_id: &str,
    now: DateTime<Utc>,
    period: chrono::Duration,
) -> Vec<&'a IndexRecord> {
    let deleted: HashSet<&str> = records
        .iter()
        .filter(|r| r.event.as_deref() == Some(DELETED))
        .map(|r| r.file_id.as_str())
        .collect();
    let cutoff = now - period;
    let mut due: Vec<&IndexRecord> = records
        .iter()
        .filter(|r| r.stream_id == stream_id && r.event.is_none())
        .filter(|r| !deleted.contains(r.file_id.as_str()))
        .filter(|r| {
            DateTime::parse_from_rfc3339(&r.end_time).is_ok_and(|end| end.to_utc() < cutoff)
        })
        .collect();
    due.sort_by(|a, b| a.end_time.cmp(&b.end_time));
    due
}

/// The files of a recording: the file itself, or for HLS the segments its
/// playlist lists (`playlist` is the playlist's text) and then the playlist.
pub fn files_of(record: &IndexRecord, playlist: Option<&[u8]>) -> Vec<PathBuf> {
    let location = PathBuf::from(&record.location);
    let mut files = Vec::new();
    if record.format == "hls" {
        let dir = location.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(Ok(pl)) = playlist.map(m3u8_rs::parse_media_playlist_res) {
            for s in pl.segments {
                // Only plain file names next to the playlist (as written).
                let name = Path::new(&s.uri);
                if name.components().count() == 1 && !s.uri.contains("..") {
                    files.push(dir.join(name));
                }
            }
        }
    }
    files.push(location);
    files
}

/// Removes `dir` and its parents while they are empty, stopping at `root`
/// (never removed) or at the first folder outside it. Both are made
/// absolute first. Returns the folders removed.
pub fn remove_empty_dirs(dir: &Path, root: &Path) -> Vec<PathBuf> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let root = abs(root);
    let mut removed = Vec::new();
    let mut cur = abs(dir);
    while cur != root && cur.starts_with(&root) {
        if std::fs::remove_dir(&cur).is_err() {
            break;
        }
        removed.push(cur.clone());
        match cur.parent() {
            Some(p) => cur = p.to_path_buf(),
            None => break,
        }
    }
    removed
}

/// How often retention runs for `period`: a quarter of it, 1 s to 60 s.
pub fn check_interval(period: std::time::Duration) -> std::time::Duration {
    (period / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(stream: &str, id: &str, end: DateTime<Utc>, event: Option<&str>) -> IndexRecord {
        IndexRecord {
            stream_id: stream.into(),
            session_id: 1,
            index: 1,
            format: "mp4".into(),
            location: format!("/r/{id}.mp4"),
            start_time: crate::index::iso8601(end),
            start_running_time: 0,
            file_id: id.into(),
            end_time: crate::index::iso8601(end),
            duration: 1.0,
            size: 1,
            video_frames: 1,
            audio_frames: 0,
            reason: "interval".into(),
            playback_url: None,
            source_file_ids: vec![],
            event: event.map(String::from),
            object_key: None,
            object_url: None,
            etag: None,
            local_deleted: false,
        }
    }

    #[test]
    fn due_takes_old_undeleted_records_of_this_stream_only() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let old = now - chrono::Duration::seconds(100);
        let new = now - chrono::Duration::seconds(5);
        let records = vec![
            rec("cam", "a", old, None),
            rec("cam", "b", old, None),
            rec("cam", "b", now, Some(DELETED)),
            rec("other", "c", old, None),
            rec("cam", "d", new, None),
        ];
        let due = due(&records, "cam", now, chrono::Duration::seconds(60));
        let ids: Vec<&str> = due.iter().map(|r| r.file_id.as_str()).collect();
        assert_eq!(ids, ["a"]);
    }

    #[test]
    fn files_of_a_playlist_are_its_segments_then_itself() {
        let mut r = rec("cam", "p", Utc::now(), None);
        r.format = "hls".into();
        r.location = "/r/x/p.m3u8".into();
        let text = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\np_00000.ts\n#EXTINF:2,\n../evil.ts\n#EXT-X-ENDLIST\n";
        let files = files_of(&r, Some(text));
        assert_eq!(
            files,
            [
                PathBuf::from("/r/x/p_00000.ts"),
                PathBuf::from("/r/x/p.m3u8")
            ]
        );
    }

    #[test]
    fn empty_dirs_are_removed_up_to_the_root() {
        let td = tempfile::tempdir().unwrap();
        let root = td.path().join("rec");
        let deep = root.join("cam/2026/12");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join("cam/keep")).unwrap();
        let removed = remove_empty_dirs(&deep, &root);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!root.join("cam/2026").exists());
        assert!(root.join("cam/keep").exists(), "a non-empty folder stays");
        assert!(root.exists(), "the root stays");
        // Outside the root: nothing.
        let outside = td.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        assert!(remove_empty_dirs(&outside, &root).is_empty());
        assert!(outside.exists());
    }
}
