// SPDX-License-Identifier: MIT OR Apache-2.0
//! HLS checks (SPEC §7, §8): a strict reading of the media playlist
//! (RFC 8216), byte-level MPEG-TS checks of every segment (PAT and PMT
//! first), ffprobe checks (each segment opens alone, starts with a keyframe,
//! frames counted), the `hls-segment-added` messages and the playlist's
//! `file-closed` against the files (the `file-opened`/`file-closed` pairs and
//! the index: `announce.rs`), and ffprobe and ffmpeg reading a playlist
//! (bounded runs: `process.rs`).
//!
//! Every wait is bounded; a missing tool fails the test with the package to
//! install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::common::process::{run_bounded, FFMPEG_PKG};
use crate::common::{
    assert_starts_with_keyframe, ffprobe_streams, get_str, get_u64, packets, parse_time,
};

// ------------------------------------------------------------------ playlist

/// One media segment of a playlist, with the tags before its URI.
#[derive(Debug, Clone)]
pub struct Segment {
    pub uri: String,
    /// The segment file, next to the playlist.
    pub path: PathBuf,
    /// `#EXTINF` in seconds.
    pub extinf: f64,
    pub program_date_time: Option<DateTime<FixedOffset>>,
    pub discontinuity: bool,
}

/// A media playlist, read strictly.
#[derive(Debug, Clone)]
pub struct Playlist {
    pub path: PathBuf,
    pub text: String,
    pub target_duration: u64,
    pub media_sequence: Option<u64>,
    pub playlist_type: Option<String>,
    pub endlist: bool,
    pub segments: Vec<Segment>,
}

impl Playlist {
    pub fn discontinuities(&self) -> usize {
        self.segments.iter().filter(|s| s.discontinuity).count()
    }

    /// Sum of `#EXTINF`, in seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.extinf).sum()
    }

    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }
}

/// Rounds seconds to the nearest integer, half up (RFC 8216 §4.3.3.1).
pub fn rounded(secs: f64) -> u64 {
    (secs + 0.5).floor() as u64
}

/// Reads a media playlist. Fails the test on any line it does not
/// understand, a repeated playlist tag, or a segment without `#EXTINF`.
pub fn parse_playlist(path: &Path) -> Playlist {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the playlist {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let ctx = |what: &str| format!("{}: {what}\n--- playlist ---\n{text}", path.display());
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "{}", ctx("no #EXTM3U first"));
    let mut target = None;
    let mut media_sequence = None;
    let mut playlist_type = None;
    let mut endlist = false;
    let mut segments = Vec::new();
    let (mut extinf, mut pdt, mut disc) = (None, None, false);
    let once = |seen: bool, tag: &str| {
        assert!(!seen, "{}", ctx(&format!("{tag} appears twice")));
    };
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        assert!(!endlist, "{}", ctx("lines after #EXT-X-ENDLIST"));
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            once(target.is_some(), "#EXT-X-TARGETDURATION");
            assert!(
                segments.is_empty(),
                "{}",
                ctx("#EXT-X-TARGETDURATION after a segment")
            );
            target = Some(v.parse::<u64>().unwrap_or_else(|_| {
                panic!("{}", ctx("#EXT-X-TARGETDURATION is not a decimal integer"))
            }));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            once(media_sequence.is_some(), "#EXT-X-MEDIA-SEQUENCE");
            assert!(
                segments.is_empty(),
                "{}",
                ctx("#EXT-X-MEDIA-SEQUENCE after a segment")
            );
            media_sequence = Some(
                v.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{}", ctx("bad #EXT-X-MEDIA-SEQUENCE"))),
            );
        } else if let Some(v) = line.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
            once(playlist_type.is_some(), "#EXT-X-PLAYLIST-TYPE");
            playlist_type = Some(v.to_string());
        } else if line == "#EXT-X-ENDLIST" {
            endlist = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            assert!(!disc, "{}", ctx("two #EXT-X-DISCONTINUITY for one segment"));
            disc = true;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            assert!(
                pdt.is_none(),
                "{}",
                ctx("two #EXT-X-PROGRAM-DATE-TIME for one segment")
            );
            pdt = Some(parse_time(v));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            assert!(extinf.is_none(), "{}", ctx("two #EXTINF for one segment"));
            let d = v.split(',').next().unwrap_or("");
            extinf = Some(
                d.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{}", ctx(&format!("bad #EXTINF {v:?}")))),
            );
        } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" || line.starts_with("#EXT-X-VERSION:") {
        } else if line.starts_with('#') {
            assert!(
                !line.starts_with("#EXT"),
                "{}",
                ctx(&format!("unexpected tag {line}"))
            );
        } else {
            let d = extinf
                .take()
                .unwrap_or_else(|| panic!("{}", ctx(&format!("segment {line} without #EXTINF"))));
            assert!(
                !line.contains('/') && !line.contains("://"),
                "{}",
                ctx(&format!(
                    "segment URI {line} is not a file name next to the playlist"
                ))
            );
            segments.push(Segment {
                uri: line.to_string(),
                path: dir.join(line),
                extinf: d,
                program_date_time: pdt.take(),
                discontinuity: std::mem::take(&mut disc),
            });
        }
    }
    assert!(
        extinf.is_none() && pdt.is_none() && !disc,
        "{}",
        ctx("tags after the last segment")
    );
    Playlist {
        path: path.to_path_buf(),
        target_duration: target.unwrap_or_else(|| panic!("{}", ctx("no #EXT-X-TARGETDURATION"))),
        media_sequence,
        playlist_type,
        endlist,
        segments,
        text,
    }
}

/// The checks of SPEC §7 on a finished playlist: EVENT, ENDLIST,
/// MEDIA-SEQUENCE 0, PROGRAM-DATE-TIME on every segment, no rounded EXTINF
/// above TARGETDURATION, segments named `<playlist stem>_<seq:05>.ts` in
/// order, every one on disk, no `.part` or `.tmp` left beside them, and
/// PROGRAM-DATE-TIME advancing by EXTINF between discontinuities.
pub fn check_finished_playlist(pl: &Playlist) {
    let ctx = |what: String| {
        format!(
            "{}: {what}\n--- playlist ---\n{}",
            pl.path.display(),
            pl.text
        )
    };
    assert_eq!(
        pl.playlist_type.as_deref(),
        Some("EVENT"),
        "{}",
        ctx("not #EXT-X-PLAYLIST-TYPE:EVENT".into())
    );
    assert!(pl.endlist, "{}", ctx("no #EXT-X-ENDLIST".into()));
    assert_eq!(
        pl.media_sequence,
        Some(0),
        "{}",
        ctx("#EXT-X-MEDIA-SEQUENCE:0 missing".into())
    );
    assert!(!pl.segments.is_empty(), "{}", ctx("no segment".into()));
    assert!(
        !pl.segments[0].discontinuity,
        "{}",
        ctx("the first segment is marked discontinuous".into())
    );
    let stem = pl
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("playlist name is not UTF-8");
    for (i, s) in pl.segments.iter().enumerate() {
        assert!(
            s.program_date_time.is_some(),
            "{}",
            ctx(format!("segment {} lacks #EXT-X-PROGRAM-DATE-TIME", s.uri))
        );
        assert!(
            s.extinf > 0.0,
            "{}",
            ctx(format!("segment {} has EXTINF {}", s.uri, s.extinf))
        );
        assert!(
            rounded(s.extinf) <= pl.target_duration,
            "{}",
            ctx(format!(
                "segment {}: EXTINF {} rounds to {} > TARGETDURATION {}",
                s.uri,
                s.extinf,
                rounded(s.extinf),
                pl.target_duration
            ))
        );
        assert_eq!(
            s.uri,
            format!("{stem}_{i:05}.ts"),
            "{}",
            ctx("segment names are not <playlist>_<seq:05>.ts in order".into())
        );
        assert!(
            s.path.is_file(),
            "{}",
            ctx(format!("segment {} is not on disk", s.path.display()))
        );
    }
    let dir = pl.path.parent().unwrap_or(Path::new("."));
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(stem) && (n.ends_with(".part") || n.ends_with(".tmp")))
        .collect();
    assert!(
        left.is_empty(),
        "{}",
        ctx(format!("unfinished files left: {left:?}"))
    );
}

// ------------------------------------------------------------------ segments

/// The 188-byte packets of an MPEG-TS file.
fn ts_packets(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(188)
}

/// Checks at byte level that a segment is MPEG-TS (188-byte packets, sync
/// byte 0x47) and opens with a PAT, then the PMT it names, before any
/// elementary stream packet: a player can start decoding at this segment.
pub fn assert_pat_pmt_first(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        !bytes.is_empty() && bytes.len().is_multiple_of(188),
        "{}: {} bytes, not a whole number of 188-byte TS packets",
        path.display(),
        bytes.len()
    );
    let mut pmt_pid = None;
    let mut saw_pmt = false;
    for (n, p) in ts_packets(&bytes).enumerate() {
        assert_eq!(
            p[0],
            0x47,
            "{}: packet {n} lacks the sync byte",
            path.display()
        );
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let pusi = p[1] & 0x40 != 0;
        if n == 0 {
            assert_eq!(
                pid,
                0,
                "{}: the first TS packet is PID {pid:#x}, not the PAT",
                path.display()
            );
        }
        if pid == 0 && pmt_pid.is_none() {
            assert!(pusi, "{}: PAT packet without unit start", path.display());
            // Adaptation field, then pointer field, then the section.
            let afc = (p[3] >> 4) & 0x3;
            let mut off = 4;
            if afc & 0x2 != 0 {
                off += 1 + p[4] as usize;
            }
            off += 1 + p[off] as usize;
            let sec = &p[off..];
            assert_eq!(sec[0], 0x00, "{}: PAT table id", path.display());
            let len = ((usize::from(sec[1] & 0x0f)) << 8) | usize::from(sec[2]);
            // Programs from byte 8 to the CRC.
            let mut i = 8;
            while i + 4 <= 3 + len - 4 {
                let prog = (u16::from(sec[i]) << 8) | u16::from(sec[i + 1]);
                let ppid = (u16::from(sec[i + 2] & 0x1f) << 8) | u16::from(sec[i + 3]);
                if prog != 0 {
                    pmt_pid = Some(ppid);
                    break;
                }
                i += 4;
            }
            assert!(
                pmt_pid.is_some(),
                "{}: the PAT names no program",
                path.display()
            );
            continue;
        }
        if Some(pid) == pmt_pid {
            saw_pmt = true;
            continue;
        }
        if pid == 0 || pid == 0x1fff || pid < 0x10 {
            continue;
        }
        assert!(
            pmt_pid.is_some() && saw_pmt,
            "{}: elementary stream packet (PID {pid:#x}) at packet {n} before the PAT and PMT",
            path.display()
        );
        return;
    }
    panic!("{}: no elementary stream packet", path.display());
}

/// What ffprobe reads from one segment, opened alone.
#[derive(Debug, Clone, Default)]
pub struct SegmentProbe {
    pub video: u64,
    pub audio: u64,
    /// (codec type, codec name) of every stream.
    pub streams: Vec<(String, String)>,
    pub video_start: Option<f64>,
}

/// Opens a segment alone with ffprobe: its streams are the expected ones
/// (H.264 320x240 when `video`, AAC 48 kHz stereo when `audio`), it starts
/// with a keyframe, and PAT and PMT come first. Returns the packet counts.
pub fn check_segment(path: &Path, video: bool, audio: bool) -> SegmentProbe {
    assert_pat_pmt_first(path);
    let mut probe = SegmentProbe::default();
    for s in ffprobe_streams(
        path,
        "codec_type,codec_name,width,height,sample_rate,channels,start_time",
        false,
    ) {
        let kind = s["codec_type"].as_str().unwrap_or("?").to_string();
        let codec = s["codec_name"].as_str().unwrap_or("?").to_string();
        match kind.as_str() {
            "video" => {
                assert_eq!(codec, "h264", "{}: video codec", path.display());
                assert_eq!(
                    (s["width"].as_u64(), s["height"].as_u64()),
                    (Some(320), Some(240)),
                    "{}: ffprobe sees no 320x240 video (no SPS/PPS in the segment?): {s}",
                    path.display()
                );
                probe.video_start = s["start_time"].as_str().and_then(|t| t.parse().ok());
            }
            "audio" => {
                assert_eq!(codec, "aac", "{}: audio codec", path.display());
                assert_eq!(
                    (s["sample_rate"].as_str(), s["channels"].as_u64()),
                    (Some("48000"), Some(2)),
                    "{}: ffprobe sees no 48 kHz stereo AAC: {s}",
                    path.display()
                );
            }
            _ => {}
        }
        probe.streams.push((kind, codec));
    }
    let kinds: Vec<&str> = probe.streams.iter().map(|(k, _)| k.as_str()).collect();
    let mut want = Vec::new();
    if video {
        want.push("video");
    }
    if audio {
        want.push("audio");
    }
    let mut sorted = kinds.clone();
    sorted.sort_by_key(|k| if *k == "video" { 0 } else { 1 });
    assert_eq!(sorted, want, "{}: streams", path.display());
    let p = packets(path);
    probe.video = p.video;
    probe.audio = p.audio;
    if video {
        assert!(p.video > 0, "{}: no video packet", path.display());
        assert_starts_with_keyframe(path);
    }
    if audio {
        assert!(p.audio > 0, "{}: no audio packet", path.display());
    }
    probe
}

/// Every segment of a finished playlist checked alone. Returns the probes,
/// in playlist order.
pub fn check_segments(pl: &Playlist, video: bool, audio: bool) -> Vec<SegmentProbe> {
    let probes: Vec<SegmentProbe> = pl
        .segments
        .iter()
        .map(|s| check_segment(&s.path, video, audio))
        .collect();
    probes
}

/// The playlist's timeline: between discontinuities, consecutive segments
/// abut, so each segment's `#EXTINF` is the distance to the next segment's
/// start, both in PROGRAM-DATE-TIME and in the media timestamps (first video
/// PTS, ffprobe), within 2 ms. Otherwise EXTINF sums drift from the media
/// and from the wall clock, segment after segment.
pub fn check_timeline(pl: &Playlist, probes: &[SegmentProbe]) {
    let mut problems = Vec::new();
    for i in 1..pl.segments.len() {
        let (prev, s) = (&pl.segments[i - 1], &pl.segments[i]);
        if s.discontinuity {
            continue;
        }
        if let (Some(a), Some(b)) = (prev.program_date_time, s.program_date_time) {
            let step = (b - a).num_microseconds().unwrap() as f64 / 1e6;
            if (step - prev.extinf).abs() > 0.002 {
                problems.push(format!(
                    "PROGRAM-DATE-TIME advances by {step:.3} s from {} to {}, EXTINF of {} is {}",
                    prev.uri, s.uri, prev.uri, prev.extinf
                ));
            }
        }
        if let (Some(a), Some(b)) = (probes[i - 1].video_start, probes[i].video_start) {
            if (b - a - prev.extinf).abs() > 0.002 {
                problems.push(format!(
                    "video of {} starts {:.3} s after that of {}, EXTINF of {} is {}",
                    s.uri,
                    b - a,
                    prev.uri,
                    prev.uri,
                    prev.extinf
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}: segments do not abut:\n  {}\n--- playlist ---\n{}",
        pl.path.display(),
        problems.join("\n  "),
        pl.text
    );
}

/// `#EXT-X-DISCONTINUITY` stands exactly before the first segment whose
/// video starts at or after each of `breaks` (seconds of media timestamps
/// after the first segment's video start), and nowhere else.
pub fn assert_discontinuities_at(pl: &Playlist, probes: &[SegmentProbe], breaks: &[f64]) {
    let t0 = probes[0].video_start.expect("no video start time");
    let starts: Vec<f64> = probes
        .iter()
        .map(|p| p.video_start.expect("no video start time") - t0)
        .collect();
    let mut want: Vec<usize> = breaks
        .iter()
        .map(|b| {
            starts
                .iter()
                .position(|s| *s >= b - 0.05)
                .unwrap_or_else(|| panic!("no segment starts after the break at {b} s"))
        })
        .collect();
    want.dedup();
    let have: Vec<usize> = pl
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.discontinuity)
        .map(|(i, _)| i)
        .collect();
    let table: String = pl
        .segments
        .iter()
        .zip(&starts)
        .map(|(s, t)| {
            format!(
                "\n  {}{} video from {t:.3} s",
                if s.discontinuity { "[DISC] " } else { "" },
                s.uri
            )
        })
        .collect();
    assert_eq!(
        have, want,
        "{}: DISCONTINUITY before segments {have:?}, expected before {want:?} (breaks at {breaks:?} s):{table}",
        pl.path.display()
    );
}

/// `#EXT-X-TARGETDURATION` is no larger than the segment target plus the
/// longest GOP of the stream: a break must not count as a GOP.
pub fn assert_target_at_most(pl: &Playlist, max: u64) {
    assert!(
        pl.target_duration <= max,
        "{}: TARGETDURATION {} > {max} (segment target + longest GOP): a break was measured as a GOP?\n{}",
        pl.path.display(),
        pl.target_duration,
        pl.text
    );
}

/// (video, audio) packets summed over segments.
pub fn sum_frames(probes: &[SegmentProbe]) -> (u64, u64) {
    probes
        .iter()
        .fold((0, 0), |(v, a), p| (v + p.video, a + p.audio))
}

/// A table of the segments, for failure messages.
pub fn describe(pl: &Playlist, probes: &[SegmentProbe]) -> String {
    let mut s = String::new();
    for (seg, p) in pl.segments.iter().zip(probes) {
        s.push_str(&format!(
            "\n  {}{}: EXTINF {} video {} audio {}",
            if seg.discontinuity { "[DISC] " } else { "" },
            seg.uri,
            seg.extinf,
            p.video,
            p.audio
        ));
    }
    s
}

// ------------------------------------------------------- messages and index

/// The messages of one recording, in posting order, by name.
pub fn named<'a>(msgs: &'a [gst::Structure], name: &str) -> Vec<&'a gst::Structure> {
    msgs.iter().filter(|s| s.name() == name).collect()
}

/// Checks the `hls-segment-added` messages of one playlist against the
/// playlist and the files: one per segment, in order, each before the
/// playlist's `file-closed`, with matching location, sequence, discontinuity,
/// duration (to the millisecond of EXTINF) and size.
pub fn check_segment_messages(msgs: &[gst::Structure], pl: &Playlist) {
    let playlist = pl.path.to_string_lossy().into_owned();
    let added: Vec<(usize, &gst::Structure)> = msgs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name() == "liverecordsink-hls-segment-added")
        .filter(|(_, s)| get_str(s, "playlist") == playlist)
        .collect();
    assert_eq!(
        added.len(),
        pl.segments.len(),
        "{playlist}: {} hls-segment-added messages for {} segments: {added:#?}",
        added.len(),
        pl.segments.len()
    );
    let closed_at = msgs.iter().position(|s| {
        s.name() == "liverecordsink-file-closed" && get_str(s, "location") == playlist
    });
    for (seq, ((pos, m), seg)) in added.iter().zip(&pl.segments).enumerate() {
        assert_eq!(
            get_str(m, "location"),
            seg.path.to_string_lossy(),
            "hls-segment-added location: {m}"
        );
        assert_eq!(
            get_u64(m, "sequence"),
            seq as u64,
            "hls-segment-added sequence: {m}"
        );
        assert_eq!(
            m.get::<bool>("discontinuity")
                .expect("no discontinuity field"),
            seg.discontinuity,
            "hls-segment-added discontinuity differs from the playlist: {m}"
        );
        let d = get_u64(m, "duration") as f64 / 1e9;
        assert!(
            (d - seg.extinf).abs() <= 0.0015,
            "hls-segment-added duration {d} s != EXTINF {}: {m}",
            seg.extinf
        );
        let size = std::fs::metadata(&seg.path).unwrap().len();
        assert_eq!(get_u64(m, "size"), size, "hls-segment-added size: {m}");
        if let Some(c) = closed_at {
            assert!(
                *pos < c,
                "hls-segment-added for {} after the playlist's file-closed",
                seg.uri
            );
        }
    }
}

/// The full check of one finished HLS playlist of a recording: the playlist
/// itself, every segment alone, the segment messages, and the playlist's
/// `file-closed` (duration = sum of EXTINF, frames = frames in the
/// segments). Returns the playlist and the per-segment probes; the caller
/// checks the timeline ([`check_timeline`]) after its own assertions.
pub fn check_hls_recording(
    msgs: &[gst::Structure],
    closed: &gst::StructureRef,
    video: bool,
    audio: bool,
) -> (Playlist, Vec<SegmentProbe>) {
    let loc = get_str(closed, "location");
    let pl = parse_playlist(Path::new(&loc));
    check_finished_playlist(&pl);
    let probes = check_segments(&pl, video, audio);
    check_segment_messages(msgs, &pl);
    let (v, a) = sum_frames(&probes);
    assert_eq!(
        (
            get_u64(closed, "video-frames"),
            get_u64(closed, "audio-frames")
        ),
        (v, a),
        "{loc}: file-closed frames (video, audio) != frames in the segments:{}",
        describe(&pl, &probes)
    );
    let dur = get_u64(closed, "duration") as f64 / 1e9;
    assert!(
        (dur - pl.duration()).abs() <= 0.001 * pl.segments.len() as f64 + 0.001,
        "{loc}: file-closed duration {dur} s != sum of EXTINF {} s",
        pl.duration()
    );
    (pl, probes)
}

// ----------------------------------------------------------- external tools

/// `ffmpeg -v error -i <playlist> -f null -` decodes everything: exit 0 and
/// an empty stderr.
pub fn assert_ffmpeg_decodes_cleanly(playlist: &Path) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i"])
        .arg(playlist)
        .args(["-f", "null", "-"]);
    let out = run_bounded(cmd, Duration::from_secs(120), FFMPEG_PKG);
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffmpeg -v error -i {} -f null - : {} \nstderr:\n{}",
        playlist.display(),
        out.status,
        out.stderr
    );
}

/// ffprobe reads the whole playlist without a word at `-v error`; returns
/// the duration it reports, and the (video, audio) packets it reads.
pub fn ffprobe_playlist(playlist: &Path) -> (f64, u64, u64) {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-count_packets",
        "-show_entries",
        "format=duration:stream=codec_type,nb_read_packets",
        "-of",
        "json",
    ])
    .arg(playlist);
    let out = run_bounded(cmd, Duration::from_secs(120), FFMPEG_PKG);
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffprobe -v error {}: {}\nstderr:\n{}",
        playlist.display(),
        out.status,
        out.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("bad ffprobe JSON: {e}: {}", out.stdout));
    let duration: f64 = v["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe reports no duration: {}", out.stdout));
    let (mut vp, mut ap) = (0, 0);
    for s in v["streams"].as_array().cloned().unwrap_or_default() {
        let n: u64 = s["nb_read_packets"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match s["codec_type"].as_str() {
            Some("video") => vp += n,
            Some("audio") => ap += n,
            _ => {}
        }
    }
    (duration, vp, ap)
}
