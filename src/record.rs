// SPDX-License-Identifier: MIT OR Apache-2.0
//! Index records of closed recordings (SPEC §8) and their playback URL.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::index::{self, IndexRecord};
use crate::s3target::Keyer;
use crate::session::wall_at;

/// Placeholders of `playback-url-template`.
pub const PLAYBACK_PLACEHOLDERS: [&str; 6] = [
    "path",
    "filename",
    "stream_id",
    "format",
    "file_id",
    "object_url",
];

/// Who records: the stream and how its URLs are made.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// The stream id as set by the user (messages and index).
    pub stream_id: String,
    /// The path-safe stream id (names and file ids).
    pub safe_stream_id: String,
    pub playback_url_template: Option<String>,
    /// Object keys and URLs when uploads are on (`{object_url}`).
    pub object_urls: Option<Keyer>,
}

/// What a record needs of a closed file.
#[derive(Debug, Clone, Copy)]
pub struct FileMeta {
    pub session: u64,
    pub index: u64,
    pub start_rt: u64,
    pub start_wall: DateTime<Utc>,
    pub video_frames: u64,
    pub audio_frames: u64,
}

/// How a file ended.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub location: &'a str,
    pub size: u64,
    /// Media duration, ns.
    pub duration: u64,
    pub reason: &'a str,
}

impl Recorder {
    /// The index record of a closed file.
    pub fn record(&self, format: &str, file: &FileMeta, end: Ending<'_>) -> IndexRecord {
        let file_id = index::file_id(
            &self.safe_stream_id,
            format,
            file.session,
            file.index,
            file.start_wall,
        );
        let end_wall = wall_at(
            (file.start_rt, file.start_wall),
            file.start_rt + end.duration,
        );
        IndexRecord {
            stream_id: self.stream_id.clone(),
            session_id: file.session,
            index: file.index,
            format: format.to_string(),
            location: end.location.to_string(),
            start_time: index::iso8601(file.start_wall),
            start_running_time: file.start_rt,
            playback_url: self.playback_url_template.as_ref().map(|t| {
                let url = playback_url(t, end.location, &self.stream_id, format, &file_id);
                match &self.object_urls {
                    Some(k) if url.contains("{object_url}") => {
                        url.replace("{object_url}", &k.url(end.location, format, &file_id))
                    }
                    _ => url,
                }
            }),
            file_id,
            end_time: index::iso8601(end_wall),
            duration: index::seconds_ms(end.duration),
            size: end.size,
            video_frames: file.video_frames,
            audio_frames: file.audio_frames,
            reason: end.reason.to_string(),
            source_file_ids: Vec::new(),
            event: None,
            object_key: None,
            object_url: None,
            etag: None,
            local_deleted: false,
        }
    }
}

/// Checks a playback URL template; the error is the unknown placeholder.
pub fn check_playback_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(after.to_string());
        };
        let name = &after[..close];
        if !PLAYBACK_PLACEHOLDERS.contains(&name) {
            return Err(name.to_string());
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills a playback URL template for the file at `path`.
pub fn playback_url(t: &str, path: &str, stream_id: &str, format: &str, file_id: &str) -> String {
    let path = path.trim_start_matches("./");
    let filename = Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    t.replace("{path}", path)
        .replace("{filename}", &filename)
        .replace("{stream_id}", stream_id)
        .replace("{format}", format)
        .replace("{file_id}", file_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn playback_templates() {
        assert!(check_playback_template("https://x/{path}?id={file_id}").is_ok());
        assert_eq!(
            check_playback_template("https://x/{nope}"),
            Err("nope".into())
        );
        assert_eq!(
            check_playback_template("https://x/{path"),
            Err("path".into())
        );
        assert_eq!(
            playback_url(
                "https://v/{path}|{filename}|{stream_id}|{format}",
                "./r/a.mp4",
                "s",
                "mp4",
                "id"
            ),
            "https://v/r/a.mp4|a.mp4|s|mp4"
        );
    }

    #[test]
    fn record_times_add_up() {
        let who = Recorder {
            stream_id: "cam 1".into(),
            safe_stream_id: "cam_1".into(),
            playback_url_template: Some("https://v/{path}".into()),
            object_urls: None,
        };
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let meta = FileMeta {
            session: 2,
            index: 7,
            start_rt: 1_000_000_000,
            start_wall: start,
            video_frames: 300,
            audio_frames: 470,
        };
        let r = who.record(
            "mp4",
            &meta,
            Ending {
                location: "r/a.mp4",
                size: 42,
                duration: 10_000_400_000,
                reason: "interval",
            },
        );
        assert_eq!(r.stream_id, "cam 1");
        assert_eq!(r.start_time, "2026-12-01T10:00:00.000000Z");
        assert_eq!(r.end_time, "2026-12-01T10:00:10.000400Z");
        assert_eq!(r.duration, 10.0);
        assert_eq!(
            r.file_id,
            format!("cam_1-mp4-2-00007-{}", start.timestamp_micros())
        );
        assert_eq!(r.playback_url.as_deref(), Some("https://v/r/a.mp4"));
        assert_eq!((r.video_frames, r.audio_frames, r.size), (300, 470, 42));
    }
}
