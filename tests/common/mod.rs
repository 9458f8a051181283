// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared helpers of the integration tests: plugin registration, pipelines
//! with bounded waits, frame counting probes, ffprobe and index checks.
//!
//! Every wait is bounded. A missing GStreamer element or a missing ffprobe
//! fails the test with the Debian package to install: tests never skip.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use gst::prelude::*;

static INIT: Once = Once::new();

/// Initialises GStreamer and registers the plugin statically, once.
pub fn init() {
    INIT.call_once(|| {
        gst::init().expect("gst::init failed");
        gstliverecord::plugin_register_static().expect("plugin_register_static failed");
    });
}

/// The Debian package that provides a GStreamer element.
pub fn debian_package(element: &str) -> &'static str {
    match element {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "avenc_aac" => "gstreamer1.0-libav",
        "h264parse" | "h265parse" | "mpegtsmux" | "tsdemux" => "gstreamer1.0-plugins-bad",
        "aacparse" | "mp4mux" | "qtdemux" | "flvmux" | "matroskamux" => "gstreamer1.0-plugins-good",
        "videotestsrc" | "audiotestsrc" | "videoconvert" | "audioconvert" | "appsrc" => {
            "gstreamer1.0-plugins-base"
        }
        _ => "gstreamer1.0-plugins-base, -good, -bad, -ugly and gstreamer1.0-libav",
    }
}

/// Fails the test, naming the Debian package, if an element is missing.
/// A test's own source pad, answering the LATENCY query as a live source
/// while `live` is set (the element gives up a silent stream only when its
/// upstream is live).
pub fn test_source_pad(name: &str, live: Arc<std::sync::atomic::AtomicBool>) -> gst::Pad {
    gst::Pad::builder(gst::PadDirection::Src)
        .name(name)
        .query_function(move |pad, parent, query| match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                q.set(
                    live.load(Ordering::SeqCst),
                    gst::ClockTime::ZERO,
                    gst::ClockTime::NONE,
                );
                true
            }
            _ => gst::Pad::query_default(pad, parent, query),
        })
        .build()
}

pub fn require_elements(elements: &[&str]) {
    init();
    let missing: Vec<String> = elements
        .iter()
        .filter(|e| gst::ElementFactory::find(e).is_none())
        .map(|e| format!("{e} (apt-get install {})", debian_package(e)))
        .collect();
    assert!(
        missing.is_empty(),
        "GStreamer elements needed by this test are missing: {}",
        missing.join(", ")
    );
}

/// The elements of the usual test pipelines.
pub const AV_ELEMENTS: &[&str] = &[
    "videotestsrc",
    "audiotestsrc",
    "x264enc",
    "h264parse",
    "avenc_aac",
    "aacparse",
    "mp4mux",
    "queue",
];

// ------------------------------------------------------------------ pipelines

/// H.264 from videotestsrc: 320x240 at 30 fps, a keyframe every 30 frames.
pub fn video_branch(num_buffers: Option<u32>, live: bool) -> String {
    let nb = num_buffers.map_or(String::new(), |n| format!(" num-buffers={n}"));
    format!(
        "videotestsrc is-live={live}{nb} pattern=ball \
         ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc key-int-max=30 bframes=0 speed-preset=ultrafast tune=zerolatency \
         ! h264parse"
    )
}

/// AAC from audiotestsrc: 48 kHz stereo, 1024 samples per buffer.
pub fn audio_branch(num_buffers: Option<u32>, live: bool) -> String {
    let nb = num_buffers.map_or(String::new(), |n| format!(" num-buffers={n}"));
    format!(
        "audiotestsrc is-live={live}{nb} samplesperbuffer=1024 \
         ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse"
    )
}

/// Number of 1024-sample buffers at 48 kHz covering `secs` seconds.
pub fn audio_buffers_for(secs: f64) -> u32 {
    (secs * 48000.0 / 1024.0).ceil() as u32
}

/// A temp dir with `rec/` for recordings and `index.jsonl`.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("liverecord-test-")
                .tempdir()
                .expect("cannot create a temp dir"),
        }
    }
    /// A temp dir in `base` (created if needed), named `<prefix>XXXXXX`.
    pub fn new_in(base: &Path, prefix: &str) -> Self {
        std::fs::create_dir_all(base)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
        TestDir {
            dir: tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(base)
                .unwrap_or_else(|e| panic!("cannot create a temp dir in {}: {e}", base.display())),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rec_dir(&self) -> PathBuf {
        self.path().join("rec")
    }
    pub fn index_path(&self) -> PathBuf {
        self.path().join("index.jsonl")
    }
    /// `<tmp>/rec/{stream_id}_{index}`
    pub fn default_location(&self) -> String {
        format!("{}/{{stream_id}}_{{index}}", self.rec_dir().display())
    }
}

/// A pipeline with its `liverecordsink` (named `rec`) and every
/// `liverecordsink-*` element message posted on its bus.
pub struct Recording {
    pub pipeline: gst::Pipeline,
    pub rec: gst::Element,
    messages: Arc<Mutex<Vec<gst::Structure>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

/// The outcome of waiting for the end of a pipeline.
#[derive(Debug)]
pub enum End {
    Eos,
    Error(String),
}

fn describe_error(msg: &gst::MessageRef) -> Option<String> {
    match msg.view() {
        gst::MessageView::Error(e) => Some(format!(
            "ERROR from {}: {} ({})",
            msg.src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default(),
            e.error(),
            e.debug().map(|d| d.to_string()).unwrap_or_default()
        )),
        _ => None,
    }
}

impl Recording {
    /// Parses `desc`, which must contain a `liverecordsink name=rec`, and
    /// installs the message collector. The pipeline stays in NULL.
    /// `liverecordsink name=rec PROPS` fed by the usual encoded test video
    /// (`video_frames` at 30 fps) and audio (`audio_secs`), non-live, with
    /// its location and index in `td`.
    pub fn launch_av(td: &TestDir, props: &str, video_frames: u32, audio_secs: f64) -> Self {
        let r = Recording::launch(&format!(
            "liverecordsink name=rec {props} \
             {} ! queue ! rec.video \
             {} ! queue ! rec.audio",
            video_branch(Some(video_frames), false),
            audio_branch(Some(audio_buffers_for(audio_secs)), false)
        ));
        r.set_location(td);
        r
    }

    pub fn launch(desc: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(desc)
            .unwrap_or_else(|e| panic!("cannot parse pipeline '{desc}': {e}"))
            .downcast::<gst::Pipeline>()
            .expect("not a pipeline");
        let rec = pipeline
            .by_name("rec")
            .expect("the pipeline has no element named rec");
        Self::with(pipeline, rec)
    }

    pub fn with(pipeline: gst::Pipeline, rec: gst::Element) -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let bus = pipeline.bus().expect("pipeline without bus");
        // A sync handler sees every message, even those that a flushing bus
        // drops when the pipeline goes to NULL.
        let (m, er) = (messages.clone(), errors.clone());
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Element(e) = msg.view() {
                if let Some(s) = e.structure() {
                    if s.name().starts_with("liverecordsink-") {
                        m.lock().unwrap().push(s.to_owned());
                    }
                }
            }
            if let Some(e) = describe_error(msg) {
                er.lock().unwrap().push(e);
            }
            gst::BusSyncReply::Pass
        });
        Recording {
            pipeline,
            rec,
            messages,
            errors,
        }
    }

    pub fn set_location(&self, td: &TestDir) {
        self.rec
            .set_property("location", td.default_location().as_str());
        self.rec
            .set_property("index-location", td.index_path().to_str().unwrap());
    }

    pub fn play(&self) {
        self.pipeline
            .set_state(gst::State::Playing)
            .unwrap_or_else(|_| {
                panic!(
                    "cannot set the pipeline to PLAYING; errors: {:?}",
                    self.errors()
                )
            });
    }

    /// Waits, at most `timeout`, for EOS or an error.
    pub fn wait_end(&self, timeout: Duration) -> End {
        let bus = self.pipeline.bus().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "no EOS or ERROR within {timeout:?}; liverecordsink messages so far: {:#?}",
                    self.messages()
                );
            }
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            if let Some(e) = describe_error(&msg) {
                return End::Error(e);
            }
            return End::Eos;
        }
    }

    /// Waits for EOS; an error fails the test.
    pub fn wait_eos(&self, timeout: Duration) {
        if let End::Error(e) = self.wait_end(timeout) {
            panic!("pipeline failed: {e}");
        }
    }

    /// Watches the bus for `duration`; an error fails the test.
    pub fn run_for(&self, duration: Duration) {
        let bus = self.pipeline.bus().unwrap();
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) {
                if let Some(e) = describe_error(&msg) {
                    panic!("pipeline failed: {e}");
                }
                panic!("unexpected EOS from a live pipeline");
            }
        }
    }

    pub fn stop(&self) {
        self.pipeline
            .set_state(gst::State::Null)
            .expect("cannot set the pipeline to NULL");
    }

    /// Every `liverecordsink-*` message so far.
    pub fn messages(&self) -> Vec<gst::Structure> {
        self.messages.lock().unwrap().clone()
    }

    pub fn messages_named(&self, name: &str) -> Vec<gst::Structure> {
        self.messages()
            .into_iter()
            .filter(|s| s.name() == name)
            .collect()
    }

    pub fn opened(&self) -> Vec<gst::Structure> {
        self.messages_named("liverecordsink-file-opened")
    }

    pub fn closed(&self) -> Vec<gst::Structure> {
        self.messages_named("liverecordsink-file-closed")
    }

    /// Every error posted on the bus so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Counts the buffers entering the element's `video` or `audio` pad.
    pub fn count_pad(&self, pad: &str) -> Counter {
        let pad = self
            .rec
            .static_pad(pad)
            .unwrap_or_else(|| panic!("liverecordsink has no {pad} pad"));
        Counter::attach(&pad)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

/// What a buffer probe saw: the number of buffers and, per buffer, its
/// running time and whether it is a keyframe.
#[derive(Clone)]
pub struct Counter {
    count: Arc<AtomicU64>,
    frames: Arc<Mutex<FrameLog>>,
}

/// (running time in ns, keyframe) of every buffer, in arrival order.
pub type FrameLog = Vec<(Option<u64>, bool)>;

impl Counter {
    pub fn attach(pad: &gst::Pad) -> Counter {
        let c = Counter {
            count: Arc::new(AtomicU64::new(0)),
            frames: Arc::new(Mutex::new(Vec::new())),
        };
        let c2 = c.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |pad, info| {
                let seg = pad
                    .sticky_event::<gst::event::Segment>(0)
                    .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok());
                let mut record = |b: &gst::BufferRef| {
                    c2.count.fetch_add(1, Ordering::SeqCst);
                    let rt = b
                        .pts()
                        .zip(seg.as_ref())
                        .and_then(|(t, s)| s.to_running_time(t))
                        .map(|t| t.nseconds());
                    let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
                    c2.frames.lock().unwrap().push((rt, key));
                };
                match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => record(b),
                    Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(&mut record),
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
        c
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// (running time in ns, keyframe) of every buffer, in arrival order.
    pub fn frames(&self) -> FrameLog {
        self.frames.lock().unwrap().clone()
    }
}

// -------------------------------------------------------------------- ffprobe

/// Runs ffprobe, at most [`process::FFPROBE_TIMEOUT`]; fails the test if it
/// is missing, fails or hangs.
pub fn ffprobe(args: &[&str]) -> String {
    let mut cmd = Command::new("ffprobe");
    cmd.args(args);
    let out = process::run_bounded(cmd, process::FFPROBE_TIMEOUT, process::FFMPEG_PKG);
    assert!(
        out.status.success(),
        "ffprobe {} failed ({}): {}",
        args.join(" "),
        out.status,
        out.stderr
    );
    out.stdout
}

/// Packets per stream type, as ffprobe reads them from a file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packets {
    pub video: u64,
    pub audio: u64,
    /// Codec types of every stream, in order.
    pub streams: Vec<String>,
}

/// The `streams` of `ffprobe -show_entries stream=ENTRIES -of json`, with
/// `-count_packets` first when `count` is set.
pub fn ffprobe_streams(path: &Path, entries: &str, count: bool) -> Vec<serde_json::Value> {
    let show = format!("stream={entries}");
    let mut args = vec!["-v", "error"];
    if count {
        args.push("-count_packets");
    }
    args.extend([
        "-show_entries",
        &show,
        "-of",
        "json",
        path.to_str().unwrap(),
    ]);
    let out = ffprobe(&args);
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bad ffprobe JSON for {}: {e}: {out}", path.display()));
    v["streams"].as_array().cloned().unwrap_or_default()
}

pub fn packets(path: &Path) -> Packets {
    let mut p = Packets::default();
    for s in ffprobe_streams(path, "codec_type,nb_read_packets", true) {
        let kind = s["codec_type"].as_str().unwrap_or("?").to_string();
        let n: u64 = match &s["nb_read_packets"] {
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        };
        match kind.as_str() {
            "video" => p.video += n,
            "audio" => p.audio += n,
            _ => {}
        }
        p.streams.push(kind);
    }
    p
}

/// The container duration in seconds.
pub fn duration(path: &Path) -> f64 {
    let out = ffprobe(&[
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
        path.to_str().unwrap(),
    ]);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {}: {out:?}", path.display()))
}

/// The duration of the video stream, from its packets (first pts to last
/// pts + duration), in seconds.
pub fn video_packets_span(path: &Path) -> f64 {
    let out = ffprobe(&[
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pts_time,duration_time",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ]);
    let mut first = f64::MAX;
    let mut last = f64::MIN;
    for line in out.lines() {
        let mut it = line.split(',');
        let pts: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        let dur: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
        if pts.is_nan() {
            continue;
        }
        first = first.min(pts);
        last = last.max(pts + dur);
    }
    assert!(first <= last, "no video packets in {}", path.display());
    last - first
}

/// The start time of each stream of a file, in seconds, by codec type.
pub fn stream_start_times(path: &Path) -> BTreeMap<String, f64> {
    let out = ffprobe(&[
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,start_time",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ]);
    out.lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            let kind = it.next()?.to_string();
            let t = it.next()?.parse().ok()?;
            Some((kind, t))
        })
        .collect()
}

/// The flags of the first video packet (`K_` for a keyframe).
pub fn first_video_packet_flags(path: &Path) -> String {
    ffprobe(&[
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_packets",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "packet=flags",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ])
    .lines()
    .next()
    .unwrap_or("")
    .trim()
    .to_string()
}

pub fn assert_starts_with_keyframe(path: &Path) {
    let flags = first_video_packet_flags(path);
    assert!(
        flags.starts_with('K'),
        "{} does not start with a keyframe: first video packet flags {flags:?}",
        path.display()
    );
}

// ---------------------------------------------------------------- files

/// Every file below `dir`, recursively, sorted, except the bookkeeping in
/// `.liverecord/` (lock and journal).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                // The stream's lock and journal, not recordings.
                if p.file_name().is_some_and(|n| n == ".liverecord") {
                    continue;
                }
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn with_ext(files: &[PathBuf], ext: &str) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .cloned()
        .collect()
}

// ---------------------------------------------------------- messages, index

/// The fields that `file-opened` must carry (SPEC §8).
pub const OPENED_FIELDS: &[&str] = &[
    "stream-id",
    "session-id",
    "index",
    "format",
    "location",
    "start-time",
    "start-running-time",
];

/// The fields that `file-closed` and every index record must carry (SPEC §8).
pub const CLOSED_FIELDS: &[&str] = &[
    "stream-id",
    "session-id",
    "index",
    "format",
    "location",
    "start-time",
    "start-running-time",
    "file-id",
    "end-time",
    "duration",
    "size",
    "video-frames",
    "audio-frames",
    "reason",
];

pub fn assert_fields(s: &gst::StructureRef, fields: &[&str]) {
    for f in fields {
        assert!(s.has_field(*f), "{} lacks field {f}: {s}", s.name());
    }
}

pub fn get_str(s: &gst::StructureRef, f: &str) -> String {
    s.get::<String>(f)
        .unwrap_or_else(|e| panic!("{}: field {f} is not a string: {e}: {s}", s.name()))
}

pub fn get_u64(s: &gst::StructureRef, f: &str) -> u64 {
    if let Ok(v) = s.get::<u64>(f) {
        return v;
    }
    if let Ok(v) = s.get::<gst::ClockTime>(f) {
        return v.nseconds();
    }
    panic!("{}: field {f} is not a u64: {s}", s.name())
}

pub fn parse_time(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("not an ISO 8601 time {s:?}: {e}"))
}

/// `end - start` in nanoseconds.
pub fn wall_span_ns(start: &str, end: &str) -> i64 {
    (parse_time(end) - parse_time(start))
        .num_nanoseconds()
        .expect("time span overflows")
}

/// ISO 8601 UTC with microseconds, ending in `Z`.
pub fn assert_iso_utc_micros(s: &str) {
    assert!(
        s.ends_with('Z') && s.len() == "2026-11-24T01:02:03.000123Z".len(),
        "not ISO 8601 UTC with microseconds: {s:?}"
    );
    parse_time(s);
}

/// Reads the JSON Lines index.
pub fn read_index(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the index {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("bad index line {l:?}: {e}"))
                .as_object()
                .cloned()
                .unwrap_or_else(|| panic!("index line is not an object: {l}"))
        })
        .collect()
}

pub type Record = serde_json::Map<String, serde_json::Value>;

pub fn rec_str(r: &Record, f: &str) -> String {
    r.get(f)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("index field {f} is not a string: {r:?}"))
        .to_string()
}

pub fn rec_u64(r: &Record, f: &str) -> u64 {
    r.get(f)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("index field {f} is not an unsigned integer: {r:?}"))
}

pub fn rec_f64(r: &Record, f: &str) -> f64 {
    r.get(f)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("index field {f} is not a number: {r:?}"))
}

/// Checks that the frame counts of the files (ffprobe), of the file-closed
/// messages and of what entered the element agree exactly.
pub fn check_frames(closed: &[gst::Structure], pushed_video: u64, pushed_audio: u64) {
    let (mut fv, mut fa, mut mv, mut ma) = (0, 0, 0, 0);
    let mut table = String::new();
    for c in closed {
        let loc = get_str(c, "location");
        let p = packets(Path::new(&loc));
        let (v, a) = (get_u64(c, "video-frames"), get_u64(c, "audio-frames"));
        table.push_str(&format!(
            "\n  {loc}: ffprobe video={} audio={}, message video={v} audio={a}",
            p.video, p.audio
        ));
        fv += p.video;
        fa += p.audio;
        mv += v;
        ma += a;
    }
    assert_eq!(
        (fv, fa),
        (pushed_video, pushed_audio),
        "frames in the files (video, audio) != frames pushed into the element:{table}"
    );
    assert_eq!(
        (mv, ma),
        (pushed_video, pushed_audio),
        "frames in file-closed messages (video, audio) != frames pushed:{table}"
    );
    for c in closed {
        let loc = get_str(c, "location");
        let p = packets(Path::new(&loc));
        assert_eq!(
            (p.video, p.audio),
            (get_u64(c, "video-frames"), get_u64(c, "audio-frames")),
            "{loc}: frames in the file != frames in its file-closed message:{table}"
        );
    }
}
/// Sets `props` (in order, from strings) on a recorder in a fresh test
/// folder and asserts that the change to PAUSED fails; returns the errors
/// posted, joined.
pub fn refused_at_paused(props: &[(&str, &str)]) -> String {
    let td = TestDir::new();
    let r = Recording::launch("fakesrc num-buffers=0 ! fakesink liverecordsink name=rec");
    r.set_location(&td);
    for (k, v) in props {
        r.rec.set_property_from_str(k, v);
    }
    assert!(
        r.pipeline.set_state(gst::State::Paused).is_err(),
        "{props:?} was accepted"
    );
    let e = r.errors().join("; ");
    r.stop();
    e
}

pub mod announce;
#[allow(unused_imports)]
pub use announce::check_announcements;
pub mod hls_check;
pub mod isolate;
pub mod packets;
pub mod process;
pub mod receiver;
pub mod s3;
pub mod scripted;
pub mod servers;

/// The index record `rec` carries the same §8 fields as the `file-closed`
/// message `c`; its duration (seconds) matches `dur` (ns) within 1 ms.
pub fn assert_record_matches(rec: &Record, c: &gst::StructureRef, dur: i64) {
    for f in [
        "stream-id",
        "format",
        "location",
        "start-time",
        "file-id",
        "end-time",
        "reason",
    ] {
        assert_eq!(rec_str(rec, f), get_str(c, f), "index/message {f} differ");
    }
    for f in [
        "session-id",
        "start-running-time",
        "size",
        "video-frames",
        "audio-frames",
    ] {
        assert_eq!(rec_u64(rec, f), get_u64(c, f), "index/message {f} differ");
    }
    let rdur = rec_f64(rec, "duration");
    assert!(
        (rdur * 1e9 - dur as f64).abs() <= 1e6,
        "index duration {rdur} s != message duration {dur} ns"
    );
}
