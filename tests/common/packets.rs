// SPDX-License-Identifier: MIT OR Apache-2.0
//! Packet-level checks of recorded files, the ones that catch what players
//! suffer (see shared/notes/real-ingest.md):
//!
//! - `ffprobe -show_packets`: the first video packet is a keyframe; PTS ≥ DTS;
//!   DTS strictly increasing per stream; no `D` (discard) flag, except on the
//!   first audio packets of an MP4 (the AAC priming edit list mp4mux may
//!   write); no empty track;
//! - every video packet decodes (`ffprobe -count_frames`);
//! - `ffmpeg -v error -i FILE -f null -` prints nothing;
//! - each frame's PTS in a file is its input PTS minus one offset per file
//!   (per playlist for HLS), the same offset for audio and video.
//!
//! The checks collect problems as text instead of failing at the first one,
//! so that a failing test names everything wrong with its files. Every
//! subprocess is bounded by a timeout.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::hls_check::{parse_playlist, Playlist};
use crate::common::process::run_bounded;
use crate::common::{files_under, get_str, get_u64, Recording};

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const FFMPEG_PKG: &str = "install ffmpeg (apt-get install ffmpeg)";

/// One packet as ffprobe reads it (times in seconds).
#[derive(Debug, Clone)]
pub struct Pkt {
    pub kind: String,
    pub pts: Option<f64>,
    pub dts: Option<f64>,
    pub duration: Option<f64>,
    pub flags: String,
    pub size: u64,
}

impl Pkt {
    pub fn is_key(&self) -> bool {
        self.flags.contains('K')
    }
    pub fn is_discard(&self) -> bool {
        self.flags.contains('D')
    }
}

/// The streams and packets of one file, in file order.
#[derive(Debug, Clone)]
pub struct Probe {
    pub path: PathBuf,
    /// Codec type of every stream, by stream index.
    pub streams: Vec<String>,
    pub packets: Vec<Pkt>,
    /// What `ffprobe -v error` printed while reading (should be nothing).
    pub stderr: String,
    /// For an MP4: its tracks as stored (sample counts, edit lists).
    pub mp4: Option<Vec<Mp4Track>>,
}

impl Probe {
    pub fn of(&self, kind: &str) -> Vec<&Pkt> {
        self.packets.iter().filter(|p| p.kind == kind).collect()
    }
    pub fn video(&self) -> Vec<&Pkt> {
        self.of("video")
    }
    pub fn audio(&self) -> Vec<&Pkt> {
        self.of("audio")
    }
    pub fn has(&self, kind: &str) -> bool {
        self.streams.iter().any(|s| s == kind)
    }

    fn mp4_track(&self, kind: &str) -> Option<&Mp4Track> {
        self.mp4.as_ref()?.iter().find(|t| t.kind == kind)
    }

    /// Frames of `kind` stored in the file: the MP4 sample count (ffprobe
    /// may hide samples outside an edit list), else the packets read.
    pub fn stored(&self, kind: &str) -> u64 {
        match self.mp4_track(kind) {
            Some(t) => t.samples,
            None => self.of(kind).len() as u64,
        }
    }

    /// Stored frames of `kind` before the first one ffprobe shows (hidden
    /// by an edit list that starts later: AAC priming).
    pub fn hidden_lead(&self, kind: &str) -> u64 {
        let Some(t) = self.mp4_track(kind) else {
            return 0;
        };
        let hidden = t.samples.saturating_sub(self.of(kind).len() as u64);
        match t.edit_media_time {
            Some(m) if m > 0 => hidden.min(1 + (m as u64).saturating_sub(1) / 1024),
            _ => 0,
        }
    }
}

/// One track of an MP4 as stored: what ffprobe may not show.
#[derive(Debug, Clone)]
pub struct Mp4Track {
    /// `video`, `audio` or the handler type.
    pub kind: String,
    /// Samples in the sample table (`stsz`), or in the fragments (`trun`).
    pub samples: u64,
    /// The media time of the first edit (`elst`), in the media timescale.
    pub edit_media_time: Option<i64>,
}

fn mp4_boxes(b: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 8 <= b.len() {
        let mut size = u32::from_be_bytes(b[off..off + 4].try_into().unwrap()) as u64;
        let typ = String::from_utf8_lossy(&b[off + 4..off + 8]).into_owned();
        let mut hdr = 8usize;
        if size == 1 && off + 16 <= b.len() {
            size = u64::from_be_bytes(b[off + 8..off + 16].try_into().unwrap());
            hdr = 16;
        } else if size == 0 {
            size = (b.len() - off) as u64;
        }
        let end = off.saturating_add(size as usize).min(b.len());
        if size < hdr as u64 {
            break;
        }
        out.push((typ, &b[off + hdr..end]));
        off = end;
    }
    out
}

fn child<'a>(b: &'a [u8], name: &str) -> Option<&'a [u8]> {
    mp4_boxes(b)
        .into_iter()
        .find(|(t, _)| t == name)
        .map(|(_, p)| p)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes(s.try_into().unwrap()))
}

/// The tracks of an MP4 file (sample counts and first edit), read from its
/// boxes. `None` when it is no MP4 with a `moov`.
pub fn mp4_tracks(path: &Path) -> Option<Vec<Mp4Track>> {
    let data = std::fs::read(path).ok()?;
    let top = mp4_boxes(&data);
    let moov = top.iter().find(|(t, _)| t == "moov")?.1;
    let mut tracks = Vec::new();
    let mut ids = Vec::new();
    for (t, trak) in mp4_boxes(moov) {
        if t != "trak" {
            continue;
        }
        let tkhd = child(trak, "tkhd")?;
        let id = if tkhd.first() == Some(&1) {
            be32(tkhd, 20)?
        } else {
            be32(tkhd, 12)?
        };
        let mdia = child(trak, "mdia")?;
        let hdlr = child(mdia, "hdlr")?;
        let kind = match hdlr.get(8..12)? {
            b"vide" => "video".to_string(),
            b"soun" => "audio".to_string(),
            other => String::from_utf8_lossy(other).into_owned(),
        };
        let stbl = child(child(mdia, "minf")?, "stbl")?;
        let samples = child(stbl, "stsz").and_then(|s| be32(s, 8)).unwrap_or(0) as u64;
        let edit_media_time = child(trak, "edts")
            .and_then(|e| child(e, "elst"))
            .and_then(|e| {
                if be32(e, 4)? == 0 {
                    return None;
                }
                if e[0] == 1 {
                    e.get(16..24)
                        .map(|s| i64::from_be_bytes(s.try_into().unwrap()))
                } else {
                    be32(e, 12).map(|v| v as i32 as i64)
                }
            });
        ids.push(id);
        tracks.push(Mp4Track {
            kind,
            samples,
            edit_media_time,
        });
    }
    // Fragments (a file not finalised): count the trun samples per track.
    for (t, moof) in &top {
        if t != "moof" {
            continue;
        }
        for (tt, traf) in mp4_boxes(moof) {
            if tt != "traf" {
                continue;
            }
            let Some(id) = child(traf, "tfhd").and_then(|h| be32(h, 4)) else {
                continue;
            };
            let n: u64 = mp4_boxes(traf)
                .into_iter()
                .filter(|(x, _)| x == "trun")
                .filter_map(|(_, r)| be32(r, 4))
                .map(u64::from)
                .sum();
            if let Some(i) = ids.iter().position(|x| *x == id) {
                tracks[i].samples += n;
            }
        }
    }
    Some(tracks)
}

fn num(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Reads every packet of a file with ffprobe (bounded). `Err` with
/// ffprobe's words when it cannot read the file.
pub fn probe(path: &Path) -> Result<Probe, String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-show_entries",
        "stream=index,codec_type:packet=stream_index,pts_time,dts_time,duration_time,flags,size",
        "-of",
        "json",
    ])
    .arg(path);
    let out = run_bounded(cmd, TOOL_TIMEOUT, FFMPEG_PKG);
    if !out.status.success() {
        return Err(format!(
            "ffprobe cannot read it ({}): {}",
            out.status,
            out.stderr.trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("bad ffprobe JSON: {e}: {}", out.stdout))?;
    let mut streams = Vec::new();
    for s in v["streams"].as_array().cloned().unwrap_or_default() {
        let i = s["index"].as_u64().unwrap_or(0) as usize;
        if streams.len() <= i {
            streams.resize(i + 1, String::new());
        }
        streams[i] = s["codec_type"].as_str().unwrap_or("?").to_string();
    }
    let packets = v["packets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let i = p["stream_index"].as_u64().unwrap_or(0) as usize;
            Pkt {
                kind: streams.get(i).cloned().unwrap_or_else(|| "?".into()),
                pts: num(&p["pts_time"]),
                dts: num(&p["dts_time"]),
                duration: num(&p["duration_time"]),
                flags: p["flags"].as_str().unwrap_or("").to_string(),
                size: num(&p["size"]).unwrap_or(0.0) as u64,
            }
        })
        .collect();
    Ok(Probe {
        path: path.to_path_buf(),
        streams,
        packets,
        stderr: out.stderr.trim().to_string(),
        mp4: if is_mp4(path) { mp4_tracks(path) } else { None },
    })
}

/// `ffmpeg -v error -i FILE -enc_time_base -1 -f null -`: `None` when it
/// exits 0 and prints nothing, else what it printed. The decoded frames
/// keep the file's own time base (90 kHz in MPEG-TS): in ffmpeg's default,
/// the nominal frame rate, two frames of a live source whose timestamps
/// jitter by a few ms can land in the same tick and ffmpeg reports a
/// non-increasing DTS that the file does not have.
pub fn decode_errors(path: &Path) -> Option<String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i"]).arg(path).args([
        "-enc_time_base",
        "-1",
        "-f",
        "null",
        "-",
    ]);
    let out = run_bounded(cmd, TOOL_TIMEOUT, FFMPEG_PKG);
    if out.status.success() && out.stderr.trim().is_empty() {
        None
    } else {
        Some(format!(
            "{}: {}",
            out.status,
            first_lines(out.stderr.trim(), 4)
        ))
    }
}

/// The number of video frames ffprobe decodes from a file.
pub fn decoded_video_frames(path: &Path) -> Result<u64, String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
    ])
    .arg(path);
    let out = run_bounded(cmd, TOOL_TIMEOUT, FFMPEG_PKG);
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, out.stderr.trim()));
    }
    // MPEG-TS lists the stream under its program too: the first number.
    out.stdout
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .ok_or_else(|| format!("no frame count from ffprobe: {:?}", out.stdout))
}

/// The first `n` lines of `s`, saying how many more there were.
pub fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() <= n {
        return s.to_string();
    }
    format!(
        "{}\n    … ({} more lines)",
        lines[..n].join("\n"),
        lines.len() - n
    )
}

fn is_mp4(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("mp4" | "m4a")
    )
}

/// The packet rules on an already read file; problems as text.
pub fn packet_problems(p: &Probe) -> Vec<String> {
    let mut out = Vec::new();
    let name = p.path.display();
    for kind in &p.streams {
        if p.packets.iter().all(|q| &q.kind != kind) {
            out.push(format!("{name}: an empty {kind} track (no packet)"));
        }
    }
    if let Some(tracks) = &p.mp4 {
        for t in tracks {
            let seen = p.of(&t.kind).len() as u64;
            // mp4mux's AAC edit list may hide one audio frame from readers
            // (shared/notes/real-ingest.md); nothing else may be hidden.
            let allowed = if t.kind == "audio" { 1 } else { 0 };
            if t.samples > seen + allowed {
                out.push(format!(
                    "{name}: {} of {} stored {} frames are hidden from readers (edit list)",
                    t.samples - seen,
                    t.samples,
                    t.kind
                ));
            }
        }
    }
    let video = p.video();
    if p.has("video") {
        match video.first() {
            Some(first) if !first.is_key() => out.push(format!(
                "{name}: the first video packet is not a keyframe (flags {:?})",
                first.flags
            )),
            _ => {}
        }
    }
    for kind in ["video", "audio"] {
        let pk = p.of(kind);
        let mut prev: Option<f64> = None;
        let mut bad_order = Vec::new();
        let mut pts_before_dts = Vec::new();
        let mut discard = Vec::new();
        let mut no_ts = 0;
        for (i, q) in pk.iter().enumerate() {
            match (q.pts, q.dts) {
                (Some(pts), Some(dts)) => {
                    if pts + 1e-6 < dts {
                        pts_before_dts.push(format!("#{i} pts {pts:.6} < dts {dts:.6}"));
                    }
                }
                _ => no_ts += 1,
            }
            if let Some(dts) = q.dts {
                if let Some(pr) = prev {
                    if dts <= pr + 1e-7 {
                        bad_order.push(format!("#{i} dts {dts:.6} after {pr:.6}"));
                    }
                }
                prev = Some(dts);
            }
            if q.is_discard() {
                // mp4mux's AAC priming edit list may hide the first audio
                // frame(s); nothing else may be discarded.
                let priming = kind == "audio" && is_mp4(&p.path) && i < 2;
                if !priming {
                    discard.push(format!(
                        "#{i} (pts {:?}, dts {:?}, flags {})",
                        q.pts, q.dts, q.flags
                    ));
                }
            }
        }
        let few = |v: &[String]| {
            let mut s = v.iter().take(6).cloned().collect::<Vec<_>>().join("; ");
            if v.len() > 6 {
                s.push_str(&format!("; … ({} in all)", v.len()));
            }
            s
        };
        if no_ts > 0 {
            out.push(format!("{name}: {no_ts} {kind} packets without PTS or DTS"));
        }
        if !pts_before_dts.is_empty() {
            out.push(format!(
                "{name}: {kind} PTS < DTS: {}",
                few(&pts_before_dts)
            ));
        }
        if !bad_order.is_empty() {
            out.push(format!(
                "{name}: {kind} DTS not strictly increasing: {}",
                few(&bad_order)
            ));
        }
        if !discard.is_empty() {
            out.push(format!(
                "{name}: {kind} packets flagged discard (D): {}",
                few(&discard)
            ));
        }
    }
    out
}

/// Everything wrong with one media file (MP4, FLV, AAC or a TS segment):
/// unreadable, the packet rules, frames that do not decode, and any word
/// from `ffmpeg -v error`. Returns the probe when ffprobe could read it.
pub fn file_problems(path: &Path) -> (Option<Probe>, Vec<String>) {
    let mut out = Vec::new();
    let name = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => {
            return (None, vec![format!("{name}: an empty (0-byte) file")]);
        }
        Ok(_) => {}
        Err(e) => return (None, vec![format!("{name}: {e}")]),
    }
    let probe = match probe(path) {
        Ok(p) => p,
        Err(e) => {
            // Still say whether it decodes, for the report.
            out.push(format!("{name}: {e}"));
            if let Some(d) = decode_errors(path) {
                out.push(format!("{name}: ffmpeg -v error: {d}"));
            }
            return (None, out);
        }
    };
    if !probe.stderr.is_empty() {
        out.push(format!("{name}: ffprobe -v error says: {}", probe.stderr));
    }
    out.extend(packet_problems(&probe));
    let nv = probe.video().len() as u64;
    if probe.has("video") {
        match decoded_video_frames(path) {
            Ok(n) if n != nv => out.push(format!(
                "{name}: {n} of {nv} video frames decode (ffprobe -count_frames)"
            )),
            Ok(_) => {}
            Err(e) => out.push(format!("{name}: cannot count decoded frames: {e}")),
        }
    }
    if let Some(d) = decode_errors(path) {
        out.push(format!("{name}: ffmpeg -v error -f null: {d}"));
    }
    (Some(probe), out)
}

/// Checks every file; fails the test listing every problem of every file.
/// Returns the probes in the order given.
pub fn assert_files_ok(paths: &[PathBuf]) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        let (probe, pr) = file_problems(p);
        problems.extend(pr);
        if let Some(probe) = probe {
            probes.push(probe);
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in the recorded files:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    probes
}

/// A finished playlist and every segment: each segment passes
/// [`file_problems`]; between discontinuities each segment's first DTS
/// (per stream) is after the previous segment's last; the whole playlist
/// decodes without a word from ffmpeg. Returns the playlist, the segment
/// probes (in playlist order) and the problems.
pub fn playlist_problems(path: &Path) -> (Option<Playlist>, Vec<Probe>, Vec<String>) {
    let mut out = Vec::new();
    if !path.is_file() {
        return (
            None,
            Vec::new(),
            vec![format!("{}: no such playlist", path.display())],
        );
    }
    let pl = parse_playlist(path);
    let mut probes = Vec::new();
    for s in &pl.segments {
        let (probe, pr) = file_problems(&s.path);
        out.extend(pr);
        if let Some(p) = probe {
            probes.push(p);
        }
    }
    if probes.len() == pl.segments.len() {
        for i in 1..probes.len() {
            if pl.segments[i].discontinuity {
                continue;
            }
            for kind in ["video", "audio"] {
                let last = probes[i - 1]
                    .of(kind)
                    .iter()
                    .filter_map(|q| q.dts)
                    .reduce(f64::max);
                let first = probes[i].of(kind).iter().find_map(|q| q.dts);
                if let (Some(l), Some(f)) = (last, first) {
                    if f <= l + 1e-7 {
                        out.push(format!(
                            "{}: {kind} DTS goes back from {l:.6} at the end of {} to {f:.6} at the start of {}",
                            pl.path.display(),
                            pl.segments[i - 1].uri,
                            pl.segments[i].uri
                        ));
                    }
                }
            }
        }
    }
    if let Some(d) = decode_errors(path) {
        out.push(format!("{}: ffmpeg -v error -f null: {d}", path.display()));
    }
    (Some(pl), probes, out)
}

/// [`playlist_problems`] as an assertion.
pub fn assert_playlist_ok(path: &Path) -> (Playlist, Vec<Probe>) {
    let (pl, probes, problems) = playlist_problems(path);
    assert!(
        problems.is_empty(),
        "{} problem(s) in the HLS recording {}:\n  {}",
        problems.len(),
        path.display(),
        problems.join("\n  ")
    );
    (pl.expect("no playlist"), probes)
}

// ------------------------------------------------------------ timestamps

/// Checks that the frames of a run of files keep their timing: the files
/// (in recording order) hold consecutive ranges of `input` (the PTS in
/// seconds of every frame of one stream, in the order the element received
/// them), and in each group of files (one group = one time base: one MP4 or
/// FLV file, or one HLS playlist between discontinuities) every frame's PTS
/// equals its input PTS minus one offset, within `tol` seconds. Returns the
/// problems and the offset of each group.
pub fn pts_offset_problems(
    kind: &str,
    groups: &[Vec<&Probe>],
    input: &[f64],
    tol: f64,
) -> (Vec<String>, Vec<Option<f64>>) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    let mut next = 0usize;
    for group in groups {
        let mut offset: Option<f64> = None;
        let mut worst: Vec<String> = Vec::new();
        let mut max_dev: f64 = 0.0;
        let name = group
            .iter()
            .map(|p| p.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        for probe in group {
            // Frames stored but not shown (an edit list) still consumed
            // their input frames.
            let lead = probe.hidden_lead(kind) as usize;
            let shown = probe.of(kind);
            let stored = (probe.stored(kind) as usize).max(shown.len() + lead);
            let start = next + lead;
            next += stored;
            for (k, q) in shown.iter().enumerate() {
                let i = start + k;
                let Some(inp) = input.get(i) else {
                    out.push(format!(
                        "{name}: more {kind} frames in the files than the {} pushed",
                        input.len()
                    ));
                    return (out, offsets);
                };
                let Some(pts) = q.pts else { continue };
                let o = inp - pts;
                match offset {
                    None => offset = Some(o),
                    Some(first) => {
                        let dev = o - first;
                        if dev.abs() > tol {
                            max_dev = max_dev.max(dev.abs());
                            if worst.len() < 6 {
                                worst.push(format!(
                                    "frame {i} (input pts {inp:.4}) at {pts:.4} in {}, {:+.1} ms off",
                                    probe
                                        .path
                                        .file_name()
                                        .unwrap_or_default()
                                        .to_string_lossy(),
                                    -dev * 1e3
                                ));
                            }
                        }
                    }
                }
            }
        }
        if !worst.is_empty() {
            out.push(format!(
                "{name}: {kind} frames are not at their input PTS minus one offset (up to {:.1} ms off): {}",
                max_dev * 1e3,
                worst.join("; ")
            ));
        }
        offsets.push(offset);
    }
    (out, offsets)
}

// ------------------------------------------------------------- recordings

/// Timestamps in files: containers round (FLV to 1 ms).
pub const PTS_TOL: f64 = 0.0016;

/// The messages, one line each, for failure messages.
pub fn summary(msgs: &[gst::Structure]) -> String {
    let mut s = String::new();
    for m in msgs {
        let f = |k: &str| {
            m.get::<String>(k)
                .ok()
                .or_else(|| m.get::<u64>(k).ok().map(|v| v.to_string()))
                .or_else(|| m.get::<i32>(k).ok().map(|v| v.to_string()))
                .or_else(|| m.get::<u32>(k).ok().map(|v| v.to_string()))
                .unwrap_or_default()
        };
        s.push_str(&format!(
            "\n  {} {} {} reason={} v={} a={}",
            m.name().trim_start_matches("liverecordsink-"),
            f("format"),
            f("location"),
            f("reason"),
            f("video-frames"),
            f("audio-frames")
        ));
    }
    s
}

/// `file-closed` messages of one format, by index.
pub fn closed_of(r: &Recording, format: &str) -> Vec<gst::Structure> {
    let mut c: Vec<_> = r
        .closed()
        .into_iter()
        .filter(|c| get_str(c, "format") == format)
        .collect();
    c.sort_by_key(|c| get_u64(c, "index"));
    c
}

pub fn location(c: &gst::StructureRef) -> PathBuf {
    PathBuf::from(get_str(c, "location"))
}

/// What a recording is expected to hold, per format.
#[derive(Default, Clone)]
pub struct Expect {
    /// Exactly this many video / audio frames across the files of each
    /// format (`None`: not checked).
    pub video: Option<u64>,
    pub audio: Option<u64>,
    /// At least / at most this many (when not exact).
    pub min_video: Option<u64>,
    pub max_video: Option<u64>,
    pub min_audio: Option<u64>,
    /// Running times (s) of the input PTS, to check each frame's timing.
    pub video_pts: Option<Vec<f64>>,
    pub audio_pts: Option<Vec<f64>>,
    /// The streams every file must have (`["video"]` for video only).
    pub streams: Option<Vec<&'static str>>,
}

/// Everything wrong with the recording of `formats` (e.g. `["mp4", "hls"]`):
/// every file and HLS playlist passes the packet checks, frame counts match
/// `want`, each frame keeps its input timing, file-closed frame counts match
/// the files. Returns the problems (empty when all is right) and, per
/// format, the probes in recording order.
pub fn recording_problems(r: &Recording, formats: &[&str], want: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    for &format in formats {
        let closed = closed_of(r, format);
        if closed.is_empty() {
            problems.push(format!("no {format} file was closed"));
            continue;
        }
        // Groups of probes sharing one time base: one MP4/FLV file, or the
        // segments of a playlist between discontinuities.
        let mut groups: Vec<Vec<Probe>> = Vec::new();
        for c in &closed {
            let loc = location(c);
            let mut in_file: Vec<Probe> = Vec::new();
            let mut complete = true;
            if format == "hls" {
                let (pl, probes, pr) = playlist_problems(&loc);
                problems.extend(pr);
                match pl {
                    Some(pl) if probes.len() == pl.segments.len() => {
                        let mut group = Vec::new();
                        for (seg, p) in pl.segments.iter().zip(probes) {
                            if seg.discontinuity && !group.is_empty() {
                                groups.push(std::mem::take(&mut group));
                            }
                            in_file.push(p.clone());
                            group.push(p);
                        }
                        if !group.is_empty() {
                            groups.push(group);
                        }
                    }
                    _ => complete = false,
                }
            } else {
                let (probe, pr) = file_problems(&loc);
                problems.extend(pr);
                match probe {
                    Some(p) => {
                        in_file.push(p.clone());
                        groups.push(vec![p]);
                    }
                    None => complete = false,
                }
            }
            // file-closed counts = frames in the file (all segments for HLS).
            if complete {
                let (v, a) = in_file.iter().fold((0u64, 0u64), |(v, a), p| {
                    (v + p.stored("video"), a + p.stored("audio"))
                });
                let (mv, ma) = (get_u64(c, "video-frames"), get_u64(c, "audio-frames"));
                if (mv, ma) != (v, a) {
                    problems.push(format!(
                        "{}: file-closed says {mv} video / {ma} audio frames, the file(s) hold {v} / {a}",
                        loc.display()
                    ));
                }
            }
        }
        let all: Vec<&Probe> = groups.iter().flatten().collect();
        let tv: u64 = all.iter().map(|p| p.stored("video")).sum();
        let ta: u64 = all.iter().map(|p| p.stored("audio")).sum();
        if let Some(w) = want.video {
            if tv != w {
                problems.push(format!(
                    "{format}: {tv} video frames in the files, {w} pushed"
                ));
            }
        }
        if let Some(w) = want.min_video {
            if tv < w {
                problems.push(format!(
                    "{format}: {tv} video frames in the files, want at least {w}"
                ));
            }
        }
        if let Some(w) = want.max_video {
            if tv > w {
                problems.push(format!(
                    "{format}: {tv} video frames in the files, want at most {w}"
                ));
            }
        }
        if let Some(w) = want.min_audio {
            if ta < w {
                problems.push(format!(
                    "{format}: {ta} audio frames in the files, want at least {w}"
                ));
            }
        }
        if let Some(w) = want.audio {
            if ta != w {
                problems.push(format!(
                    "{format}: {ta} audio frames in the files, {w} pushed"
                ));
            }
        }
        if let Some(streams) = &want.streams {
            for p in &all {
                let mut have: Vec<&str> = p.streams.iter().map(String::as_str).collect();
                have.sort();
                let mut w = streams.clone();
                w.sort();
                if have != w {
                    problems.push(format!(
                        "{}: streams {:?}, want {:?}",
                        p.path.display(),
                        p.streams,
                        streams
                    ));
                }
            }
        }
        let grefs: Vec<Vec<&Probe>> = groups.iter().map(|g| g.iter().collect()).collect();
        let mut voff = Vec::new();
        if let Some(inp) = &want.video_pts {
            let (pr, o) = pts_offset_problems("video", &grefs, inp, PTS_TOL);
            problems.extend(pr);
            voff = o;
        }
        if let Some(inp) = &want.audio_pts {
            let (pr, aoff) = pts_offset_problems("audio", &grefs, inp, PTS_TOL);
            problems.extend(pr);
            for (i, (v, a)) in voff.iter().zip(&aoff).enumerate() {
                if let (Some(v), Some(a)) = (v, a) {
                    if (v - a).abs() > PTS_TOL {
                        problems.push(format!(
                            "{}: audio and video are out of sync by {:.1} ms (video shown {:.1} ms {} than in the input)",
                            grefs[i]
                                .iter()
                                .map(|p| p.path.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            (a - v) * 1e3,
                            (a - v).abs() * 1e3,
                            if a > v { "later" } else { "earlier" }
                        ));
                    }
                }
            }
        }
    }
    problems
}

pub fn assert_recording(r: &Recording, formats: &[&str], want: &Expect) {
    let problems = recording_problems(r, formats, want);
    assert!(
        problems.is_empty(),
        "{} problem(s) in the recording:\n  {}\nmessages:{}",
        problems.len(),
        problems.join("\n  "),
        summary(&r.messages())
    );
}

/// Files left on disk that no reader should see: `.part`, `.tmp`, empty.
pub fn leftovers(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter_map(|p| {
            let n = p.file_name()?.to_string_lossy().into_owned();
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            if n.ends_with(".part") || n.ends_with(".tmp") {
                Some(format!("{} (unfinished, {len} bytes)", p.display()))
            } else if len == 0 {
                Some(format!("{} (empty)", p.display()))
            } else {
                None
            }
        })
        .collect()
}
