// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HLS media playlist of one recording (RFC 8216), built with m3u8-rs.
//!
//! - `#EXT-X-PLAYLIST-TYPE:EVENT` while recording, `#EXT-X-ENDLIST` at close.
//! - `#EXT-X-TARGETDURATION` is fixed when the first segment is added and
//!   never changes: it covers the segment target plus the longest GOP seen,
//!   because a segment is cut at the first keyframe at or after its target.
//! - Every segment carries `#EXT-X-PROGRAM-DATE-TIME`; a segment after a break
//!   carries `#EXT-X-DISCONTINUITY`.

use chrono::{DateTime, Utc};
use m3u8_rs::{MediaPlaylist, MediaPlaylistType, MediaSegment};

const SECOND: u64 = 1_000_000_000;

/// Rounds nanoseconds to whole seconds, half up, as EXTINF is compared to
/// the target duration (RFC 8216 §4.3.3.1).
pub fn rounded_secs(ns: u64) -> u64 {
    ns.saturating_add(SECOND / 2) / SECOND
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    uri: String,
    duration_ns: u64,
    discontinuity: bool,
    program_date_time: DateTime<Utc>,
}

/// What was added to the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    pub sequence: u64,
    pub discontinuity: bool,
    /// The segment is longer than the target duration allows (a GOP longer
    /// than any seen when the target was fixed).
    pub over_target: bool,
}

#[derive(Debug, Clone)]
pub struct Playlist {
    segment_target_ns: u64,
    longest_gop_ns: u64,
    target_duration: Option<u64>,
    segments: Vec<Segment>,
    ended: bool,
}

impl Playlist {
    /// `segment_target_ns` is `hls-segment-duration`.
    pub fn new(segment_target_ns: u64) -> Self {
        Playlist {
            segment_target_ns,
            longest_gop_ns: 0,
            target_duration: None,
            segments: Vec::new(),
            ended: false,
        }
    }

    /// A keyframe interval of the stream, before the target is fixed.
    pub fn note_gop(&mut self, gop_ns: u64) {
        self.longest_gop_ns = self.longest_gop_ns.max(gop_ns);
    }

    pub fn target_duration(&self) -> Option<u64> {
        self.target_duration
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    #[cfg(test)]
    pub fn discontinuities(&self) -> usize {
        self.segments.iter().filter(|s| s.discontinuity).count()
    }

    /// Sum of the segment durations: the media duration, without breaks.
    pub fn duration_ns(&self) -> u64 {
        self.segments.iter().map(|s| s.duration_ns).sum()
    }

    /// Appends a segment. `discontinuity` marks a segment that follows a
    /// break; it is ignored on the first segment.
    pub fn add_segment(
        &mut self,
        uri: &str,
        duration_ns: u64,
        program_date_time: DateTime<Utc>,
        discontinuity: bool,
    ) -> Added {
        let target = *self.target_duration.get_or_insert_with(|| {
            let worst = self.segment_target_ns.saturating_add(self.longest_gop_ns);
            rounded_secs(worst).max(rounded_secs(duration_ns)).max(1)
        });
        let discontinuity = discontinuity && !self.segments.is_empty();
        self.segments.push(Segment {
            uri: uri.to_string(),
            duration_ns,
            discontinuity,
            program_date_time,
        });
        Added {
            sequence: (self.segments.len() - 1) as u64,
            discontinuity,
            over_target: rounded_secs(duration_ns) > target,
        }
    }

    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The playlist text.
    pub fn render(&self) -> Vec<u8> {
        let playlist = MediaPlaylist {
            version: Some(3),
            target_duration: self.target_duration.unwrap_or_else(|| {
                rounded_secs(self.segment_target_ns.saturating_add(self.longest_gop_ns)).max(1)
            }),
            media_sequence: 0,
            segments: self
                .segments
                .iter()
                .map(|s| MediaSegment {
                    uri: s.uri.clone(),
                    // Millisecond precision.
                    duration: ((s.duration_ns / 1_000_000) as f64 / 1000.0) as f32,
                    discontinuity: s.discontinuity,
                    program_date_time: Some(s.program_date_time.fixed_offset()),
                    ..Default::default()
                })
                .collect(),
            end_list: self.ended,
            playlist_type: Some(MediaPlaylistType::Event),
            independent_segments: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = playlist.write_to(&mut out);
        insert_media_sequence(out)
    }
}

/// A playlist left open by a crash, made final (crash recovery): the
/// segments it lists, then `extra` (uri, duration) segments found complete
/// on disk after them, and `#EXT-X-ENDLIST`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub text: Vec<u8>,
    /// Every segment's uri, in order.
    pub uris: Vec<String>,
    pub duration_ns: u64,
}

/// Ends the playlist `existing` (`None`: it was never written) with `extra`
/// appended. Their program date times follow the last listed segment's (or
/// `start` for a new playlist).
pub fn recover(
    existing: Option<&[u8]>,
    extra: &[(String, u64)],
    segment_target_ns: u64,
    start: DateTime<Utc>,
) -> Result<Recovered, String> {
    let mut pl = match existing {
        Some(bytes) => m3u8_rs::parse_media_playlist_res(bytes)
            .map_err(|e| format!("the playlist does not parse: {e}"))?,
        None => MediaPlaylist {
            version: Some(3),
            target_duration: rounded_secs(segment_target_ns).max(1),
            playlist_type: Some(MediaPlaylistType::Event),
            independent_segments: true,
            ..Default::default()
        },
    };
    let ns = |d: f32| (f64::from(d) * 1e9).round() as u64;
    let mut next_pdt = pl
        .segments
        .last()
        .and_then(|s| {
            Some(
                s.program_date_time?.to_utc()
                    + chrono::Duration::nanoseconds(ns(s.duration) as i64),
            )
        })
        .unwrap_or(start);
    for (uri, d) in extra {
        pl.segments.push(MediaSegment {
            uri: uri.clone(),
            duration: ((d / 1_000_000) as f64 / 1000.0) as f32,
            program_date_time: Some(next_pdt.fixed_offset()),
            ..Default::default()
        });
        next_pdt += chrono::Duration::nanoseconds(*d as i64);
        pl.target_duration = pl.target_duration.max(rounded_secs(*d));
    }
    pl.end_list = true;
    let mut out = Vec::new();
    let _ = pl.write_to(&mut out);
    Ok(Recovered {
        text: insert_media_sequence(out),
        uris: pl.segments.iter().map(|s| s.uri.clone()).collect(),
        duration_ns: pl.segments.iter().map(|s| ns(s.duration)).sum(),
    })
}

/// m3u8-rs leaves out `#EXT-X-MEDIA-SEQUENCE` when it is 0; it is written
/// explicitly, right after the target duration, so that every player and
/// validator sees it.
fn insert_media_sequence(text: Vec<u8>) -> Vec<u8> {
    let s = String::from_utf8_lossy(&text);
    if s.contains("#EXT-X-MEDIA-SEQUENCE") {
        return text;
    }
    let mut out = String::with_capacity(s.len() + 32);
    for line in s.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("#EXT-X-TARGETDURATION") {
            out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n");
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 1, 2, 3).unwrap()
    }

    #[test]
    fn recover_ends_an_open_playlist_with_the_segments_found() {
        let mut pl = Playlist::new(2 * SECOND);
        pl.add_segment("a_00000.ts", 2 * SECOND, t0(), false);
        let open = pl.render();
        let r = recover(
            Some(&open),
            &[("a_00001.ts".into(), 1_500_000_000)],
            2 * SECOND,
            t0(),
        )
        .unwrap();
        assert_eq!(r.uris, ["a_00000.ts", "a_00001.ts"]);
        assert_eq!(r.duration_ns, 3_500_000_000);
        let text = String::from_utf8(r.text).unwrap();
        assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0"), "{text}");
        assert!(text.contains("2026-11-24T01:02:05"), "PDT follows: {text}");
        // Never written: a new playlist of what was found.
        let r = recover(None, &[("a_00000.ts".into(), SECOND)], 2 * SECOND, t0()).unwrap();
        assert_eq!(r.uris, ["a_00000.ts"]);
        assert!(recover(Some(b"garbage"), &[], SECOND, t0()).is_err());
    }

    #[test]
    fn event_playlist_with_discontinuity_and_endlist() {
        let mut p = Playlist::new(6 * SECOND);
        p.note_gop(SECOND);
        let a = p.add_segment("a_00000.ts", 6 * SECOND, t0(), false);
        assert_eq!(a.sequence, 0);
        assert!(!a.discontinuity);
        p.add_segment(
            "a_00001.ts",
            4 * SECOND,
            t0() + chrono::Duration::seconds(6),
            false,
        );
        let c = p.add_segment(
            "a_00002.ts",
            6_500_000_000,
            t0() + chrono::Duration::seconds(20),
            true,
        );
        assert!(c.discontinuity);
        assert!(!c.over_target);
        let text = String::from_utf8(p.render()).unwrap();
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert!(text.contains("#EXT-X-TARGETDURATION:7"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0"));
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 3);
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-24T01:02:03.000Z"));
        assert!(text.contains("#EXTINF:6.5,"));
        assert!(!text.contains("#EXT-X-ENDLIST"));
        p.end();
        let text = String::from_utf8(p.render()).unwrap();
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"));
        assert_eq!(p.duration_ns(), 16_500_000_000);
        assert_eq!(p.discontinuities(), 1);
        // The library parses what was written.
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 3);
        assert_eq!(parsed.target_duration, 7);
        assert!(parsed.end_list);
    }

    #[test]
    fn target_never_changes_and_flags_long_segments() {
        let mut p = Playlist::new(2 * SECOND);
        p.add_segment("s0.ts", 2 * SECOND, t0(), false);
        assert_eq!(p.target_duration(), Some(2));
        let long = p.add_segment("s1.ts", 3 * SECOND, t0(), false);
        assert!(long.over_target);
        assert_eq!(p.target_duration(), Some(2));
        // 2.4 s rounds to 2: within the target.
        assert!(
            !p.add_segment("s2.ts", 2_400_000_000, t0(), false)
                .over_target
        );
    }

    #[test]
    fn discontinuity_needs_a_previous_segment() {
        let mut p = Playlist::new(6 * SECOND);
        assert!(!p.add_segment("s0.ts", SECOND, t0(), true).discontinuity);
    }

    #[test]
    fn rounding() {
        assert_eq!(rounded_secs(6_499_999_999), 6);
        assert_eq!(rounded_secs(6_500_000_000), 7);
    }
}
