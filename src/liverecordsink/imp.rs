// SPDX-License-Identifier: MIT OR Apache-2.0
//! GObject glue of `liverecordsink`: properties, pads, the data path and the
//! finalisation of files.
//!
//! Lock order: `settings`, then `finishing`, then `hls_write`, then `state`. The `state` lock is never held while
//! pushing data or events, posting messages, emitting signals or changing the
//! state of a writer. Streams wait for each other on `cond`, paired with
//! `state`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::hlsrun::{Finished, HlsChannel, Run};
use super::writer::{file_segment, format_accepts, required_elements, Writer, WriterSpec};
use super::{Formats, RecordType};
use crate::breaks::Tracker;
use crate::format::{Format, PART_SUFFIX};
use crate::index::{self, IndexRecord};
use crate::rotation::{CloseReason, Key, LeadAction, Timeline};
use crate::template::{sanitize_component, LocationTemplate, TemplateVars};

mod hls;
use hls::open_segment;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "liverecordsink",
        gst::DebugColorFlags::empty(),
        Some("Live stream recorder"),
    )
});

const DEFAULT_LOCATION: &str = "recordings/{stream_id}/{stream_id}_{start:%Y%m%dT%H%M%SZ}_{index}";
const DEFAULT_STREAM_ID: &str = "live";
const DEFAULT_FORMATS: Formats = Formats::MP4;
const DEFAULT_RECORD_TYPE: RecordType = RecordType::Av;
const DEFAULT_RECORD_INTERVAL: u32 = 7200;
const MAX_RECORD_INTERVAL: u32 = 7200;
const DEFAULT_MP4_FRAGMENT_DURATION: u32 = 1000;
const DEFAULT_PLAYBACK_URL_TEMPLATE: &str = "";
const DEFAULT_INDEX_LOCATION: &str = "recordings/index.jsonl";
const DEFAULT_INTERRUPTION_GAP: u32 = 2000;
const DEFAULT_IDLE_TIMEOUT: u32 = 5000;
const DEFAULT_MIN_FILE_DURATION: u32 = 0;
const DEFAULT_HLS_RESUME_TIMEOUT: u32 = 0;
const MAX_HLS_RESUME_TIMEOUT: u32 = 1800;
const DEFAULT_HLS_SEGMENT_DURATION: u32 = 6;

/// How long audio may wait for video to reach its running time before it is
/// routed without knowing whether video will cut there.
const FOLLOWER_WAIT_LIMIT: Duration = Duration::from_secs(3);
/// How long stopping waits for muxers to finalise their files.
const FINALISE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Settings {
    location: String,
    stream_id: String,
    formats: Formats,
    record_type: RecordType,
    record_interval: u32,
    mp4_fragment_duration: u32,
    playback_url_template: String,
    index_location: String,
    interruption_gap: u32,
    idle_timeout: u32,
    min_file_duration: u32,
    hls_resume_timeout: u32,
    hls_segment_duration: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: DEFAULT_LOCATION.into(),
            stream_id: DEFAULT_STREAM_ID.into(),
            formats: DEFAULT_FORMATS,
            record_type: DEFAULT_RECORD_TYPE,
            record_interval: DEFAULT_RECORD_INTERVAL,
            mp4_fragment_duration: DEFAULT_MP4_FRAGMENT_DURATION,
            playback_url_template: DEFAULT_PLAYBACK_URL_TEMPLATE.into(),
            index_location: DEFAULT_INDEX_LOCATION.into(),
            interruption_gap: DEFAULT_INTERRUPTION_GAP,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_file_duration: DEFAULT_MIN_FILE_DURATION,
            hls_resume_timeout: DEFAULT_HLS_RESUME_TIMEOUT,
            hls_segment_duration: DEFAULT_HLS_SEGMENT_DURATION,
        }
    }
}

/// The settings validated at start; shared by the data path and finalisation.
#[derive(Debug)]
struct Config {
    template: LocationTemplate,
    /// Raw stream id, as set by the user (messages and index).
    stream_id: String,
    /// Path-safe stream id (file names).
    safe_stream_id: String,
    formats: Vec<Format>,
    record_type: RecordType,
    interval_ns: u64,
    mp4_fragment_ms: u32,
    playback_url_template: Option<String>,
    index_path: Option<PathBuf>,
    gap_ns: u64,
    idle_ns: u64,
    min_file_ns: u64,
    hls_resume_ns: u64,
    hls_segment_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Video = 0,
    Audio = 1,
}

impl Stream {
    fn from_pad(pad: &gst::Pad) -> Stream {
        if pad.name().starts_with("video") {
            Stream::Video
        } else {
            Stream::Audio
        }
    }
    fn name(self) -> &'static str {
        match self {
            Stream::Video => "video",
            Stream::Audio => "audio",
        }
    }
}

#[derive(Debug, Default)]
struct Input {
    /// The pad exists and its stream is recorded (record-type).
    active: bool,
    caps: Option<gst::Caps>,
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    eos: bool,
    /// Highest running time seen.
    position: Option<u64>,
    stream_id: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    files_closed: u64,
    bytes_written: u64,
    video_frames: u64,
    audio_frames: u64,
    frames_dropped: u64,
    interruptions: u64,
}

/// One open file of a channel.
struct OpenFile {
    key: Key,
    writer: Option<Writer>,
    session: u64,
    index: u64,
    part_path: PathBuf,
    audio_only: bool,
    start_rt: u64,
    /// Subtracted from running times to give the file's timestamps.
    base_rt: u64,
    end_rt: u64,
    start_wall: DateTime<Utc>,
    frames: [u64; 2],
    has: [bool; 2],
    caps_sent: [bool; 2],
    eos_wanted: [bool; 2],
    eos_sent: [bool; 2],
    drained: bool,
    reason: Option<CloseReason>,
    /// The HLS playlist this segment belongs to, the segment's sequence
    /// number, and whether it follows a break.
    run: Option<u64>,
    seq: u64,
    discontinuity: bool,
    /// Where the lead cut this file (the next file's start).
    cut_rt: Option<u64>,
    /// What `file-opened` announces when the writer starts (HLS: the
    /// playlist, for its first segment only).
    announce: Option<PathBuf>,
}

impl OpenFile {
    /// Marks the inputs of `streams` finished and returns the writer pads
    /// that must now get EOS.
    fn finish(&mut self, streams: &[Stream], reason: Option<CloseReason>) -> Vec<gst::Pad> {
        if self.reason.is_none() {
            self.reason = reason;
        }
        for s in streams {
            self.eos_wanted[*s as usize] = true;
        }
        self.take_eos_pads()
    }

    fn take_eos_pads(&mut self) -> Vec<gst::Pad> {
        let Some(w) = &self.writer else {
            return Vec::new();
        };
        let mut pads = Vec::new();
        for (s, pad) in [(Stream::Video, &w.video), (Stream::Audio, &w.audio)] {
            let i = s as usize;
            if let Some(pad) = pad {
                if self.eos_wanted[i] && !self.eos_sent[i] {
                    self.eos_sent[i] = true;
                    pads.push(pad.clone());
                }
            }
        }
        pads
    }
}

struct Channel {
    format: Format,
    lead: Stream,
    follower: Option<Stream>,
    timeline: Timeline,
    files: Vec<OpenFile>,
    next_index: u64,
    /// Playlists, for the HLS channel.
    hls: Option<HlsChannel>,
}

impl Channel {
    fn file_mut(&mut self, key: Key) -> Option<&mut OpenFile> {
        self.files.iter_mut().find(|f| f.key == key)
    }
    fn streams(&self) -> Vec<Stream> {
        std::iter::once(self.lead).chain(self.follower).collect()
    }
}

struct State {
    cfg: Arc<Config>,
    inputs: [Input; 2],
    channels: Vec<Channel>,
    session: u64,
    anchor: Option<(u64, DateTime<Utc>)>,
    /// The anchor of the previous session: wall-clock times never go back.
    prev_anchor: Option<(u64, DateTime<Utc>)>,
    stats: Stats,
    flushing: bool,
    stopping: bool,
    /// Every input reached EOS: EOS goes downstream once all files are closed.
    eos: bool,
    eos_pushed: bool,
    /// Files taken out of their channel and being finalised right now.
    finalizing: usize,
    /// Video stopped advancing while audio waited for it; stop waiting until
    /// it moves again.
    lead_stalled: bool,
    /// Interruptions seen in running time, and the inputs' offsets.
    breaks: Tracker,
    /// Pipeline clock while PLAYING, for the idle timeout.
    clock: Option<gst::Clock>,
    last_data: Option<gst::ClockTime>,
    idle_id: Option<gst::SingleShotClockId>,
}

impl State {
    fn end_session(&mut self) {
        if let Some(a) = self.anchor.take() {
            self.prev_anchor = Some(a);
        }
    }
}

/// The session's wall-clock anchor, set by its first file: the wall clock
/// now, or later if the previous session's media time says so (data pushed
/// faster than real time), so that wall-clock times never go back.
fn anchor_at(
    anchor: &mut Option<(u64, DateTime<Utc>)>,
    prev: Option<(u64, DateTime<Utc>)>,
    rt: u64,
) -> (u64, DateTime<Utc>) {
    *anchor.get_or_insert_with(|| {
        let now = Utc::now();
        let floor = prev.map(|p| wall_at(p, rt)).filter(|w| *w > now);
        (rt, floor.unwrap_or(now))
    })
}

/// A buffer on its way into a writer.
struct Push {
    chan: usize,
    key: Key,
    stream: Stream,
    /// The writer's input, when the writer already runs.
    pad: Option<gst::Pad>,
    caps: Option<gst::Caps>,
    buffer: gst::Buffer,
}

/// Work decided under the state lock and carried out after releasing it.
#[derive(Default)]
struct Plan {
    eos: Vec<gst::Pad>,
    opens: Vec<(usize, Key)>,
    pushes: Vec<Push>,
    request_keyframe: bool,
}

pub struct LiveRecordSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    cond: Condvar,
    /// Threads waiting on `cond` (counted under `state`): the per-buffer
    /// path only wakes anyone when someone waits.
    waiters: AtomicUsize,
    /// Serialises playlist writes, so that the newest render lands last.
    /// Taken before `state`.
    hls_write: Mutex<()>,
    /// Serialises the ending of playlists (see `finish_playlists`). Taken
    /// before `hls_write`; held while a playlist's file-closed is posted,
    /// which only the element's own finalisation paths wait for.
    finishing: Mutex<()>,
    /// Internal source pad feeding a fakesink, which takes EOS once every file
    /// is finalised so that the bin posts EOS only then.
    eos_pad: OnceLock<gst::Pad>,
}

#[glib::object_subclass]
impl ObjectSubclass for LiveRecordSink {
    const NAME: &'static str = "GstLiveRecordSink";
    type Type = super::LiveRecordSink;
    type ParentType = gst::Bin;

    fn new() -> Self {
        LiveRecordSink {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            cond: Condvar::new(),
            waiters: AtomicUsize::new(0),
            hls_write: Mutex::new(()),
            finishing: Mutex::new(()),
            eos_pad: OnceLock::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wall_at(anchor: (u64, DateTime<Utc>), rt: u64) -> DateTime<Utc> {
    let delta = rt as i128 - anchor.0 as i128;
    let delta = delta.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    anchor.1 + chrono::Duration::nanoseconds(delta)
}

fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn io_error(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// Caps the pads offer, in order of preference for the chosen formats.
fn sink_caps(stream: Stream, formats: Formats) -> gst::Caps {
    let wants_bytestream =
        formats.contains(Formats::HLS) && !formats.intersects(Formats::MP4 | Formats::FLV);
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("new caps are writable");
        match stream {
            Stream::Video => {
                let h264 = |f: &str| {
                    gst::Structure::builder("video/x-h264")
                        .field("stream-format", f)
                        .field("alignment", "au")
                        .build()
                };
                let h265 = |f: &str| {
                    gst::Structure::builder("video/x-h265")
                        .field("stream-format", f)
                        .field("alignment", "au")
                        .build()
                };
                let order: &[(&str, &str)] = if wants_bytestream {
                    &[("byte-stream", "byte-stream"), ("avc", "hvc1")]
                } else {
                    &[("avc", "hvc1"), ("byte-stream", "byte-stream")]
                };
                for (a, b) in order {
                    caps.append_structure(h264(a));
                    caps.append_structure(h265(b));
                    if *b == "hvc1" {
                        caps.append_structure(h265("hev1"));
                    }
                }
            }
            Stream::Audio => {
                let aac = |f: &str| {
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", gst::List::new([4i32, 2i32]))
                        .field("stream-format", f)
                        .build()
                };
                if wants_bytestream || formats == Formats::AAC {
                    caps.append_structure(aac("adts"));
                    caps.append_structure(aac("raw"));
                } else {
                    caps.append_structure(aac("raw"));
                    caps.append_structure(aac("adts"));
                }
                caps.append_structure(
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", 1i32)
                        .field("layer", 3i32)
                        .build(),
                );
                caps.append_structure(gst::Structure::new_empty("audio/x-opus"));
            }
        }
    }
    caps
}

impl LiveRecordSink {
    fn lock_state(&self) -> MutexGuard<'_, Option<State>> {
        lock(&self.state)
    }

    /// Wakes the threads waiting on `cond`, if any.
    fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.cond.notify_all();
        }
    }

    /// Waits on `cond` (the guard is the `state` lock) for at most `timeout`.
    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Option<State>>,
        timeout: Duration,
    ) -> MutexGuard<'a, Option<State>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let (g, _) = self
            .cond
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        g
    }

    // ---------------------------------------------------------------- start

    fn validate(&self, s: &Settings) -> Result<Config, gst::ErrorMessage> {
        let template = LocationTemplate::parse(&s.location).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ["Invalid location '{}': {}", s.location, e]
            )
        })?;
        if s.stream_id.is_empty() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ["stream-id must not be empty"]
            ));
        }
        if s.record_interval == 0 || s.record_interval > MAX_RECORD_INTERVAL {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                [
                    "record-interval must be 1 to {} seconds, not {}",
                    MAX_RECORD_INTERVAL,
                    s.record_interval
                ]
            ));
        }
        let formats: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| {
                s.formats.contains(match f {
                    Format::Mp4 => Formats::MP4,
                    Format::Flv => Formats::FLV,
                    Format::Aac => Formats::AAC,
                    Format::Hls => Formats::HLS,
                })
            })
            .collect();
        if formats.is_empty() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ["formats is empty: choose at least one of mp4, flv, aac, hls"]
            ));
        }
        for f in &formats {
            for e in required_elements(*f) {
                if gst::ElementFactory::find(e).is_none() {
                    return Err(gst::error_msg!(
                        gst::CoreError::MissingPlugin,
                        [
                            "The GStreamer element '{}' needed for {} recording is missing: install gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad and gstreamer1.0-plugins-ugly",
                            e,
                            f.name()
                        ]
                    ));
                }
            }
        }
        let playback_url_template = Some(s.playback_url_template.clone()).filter(|t| !t.is_empty());
        if let Some(t) = &playback_url_template {
            check_playback_template(t).map_err(|p| {
                gst::error_msg!(
                    gst::ResourceError::Settings,
                    [
                        "Unknown placeholder {{{}}} in playback-url-template; known: {{path}} {{filename}} {{stream_id}} {{format}} {{file_id}}",
                        p
                    ]
                )
            })?;
        }
        Ok(Config {
            template,
            safe_stream_id: sanitize_component(&s.stream_id),
            stream_id: s.stream_id.clone(),
            formats,
            record_type: s.record_type,
            interval_ns: u64::from(s.record_interval) * 1_000_000_000,
            mp4_fragment_ms: s.mp4_fragment_duration,
            playback_url_template,
            index_path: Some(PathBuf::from(&s.index_location))
                .filter(|p| !p.as_os_str().is_empty()),
            gap_ns: u64::from(s.interruption_gap) * 1_000_000,
            idle_ns: u64::from(s.idle_timeout) * 1_000_000,
            min_file_ns: u64::from(s.min_file_duration) * 1_000_000,
            hls_resume_ns: u64::from(s.hls_resume_timeout) * 1_000_000_000,
            hls_segment_ns: u64::from(s.hls_segment_duration) * 1_000_000_000,
        })
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let cfg = self.validate(&settings)?;
        let resume = match &cfg.index_path {
            Some(p) => index::scan(p, &cfg.stream_id).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["Cannot read the index {}: {}", p.display(), e]
                )
            })?,
            None => index::Resume::default(),
        };

        let obj = self.obj();
        let has_video = obj.static_pad("video").is_some();
        let has_audio = obj.static_pad("audio").is_some();
        let video = has_video && cfg.record_type != RecordType::Audio;
        let audio = has_audio && cfg.record_type != RecordType::Video;

        let mut inputs: [Input; 2] = Default::default();
        inputs[Stream::Video as usize].active = video;
        inputs[Stream::Audio as usize].active = audio;

        let mut channels = Vec::new();
        for f in &cfg.formats {
            if !f.holds_video() && !audio {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    [
                        "The {} format records audio only, but no audio is recorded (link the audio pad, and use record-type av or audio)",
                        f.name()
                    ]
                ));
            }
            // Video leads every channel when it is recorded, even the
            // audio-only ones, so that all channels cut at the same keyframes.
            let (lead, follower) = match (video, audio) {
                (true, true) => (Stream::Video, Some(Stream::Audio)),
                (true, false) => (Stream::Video, None),
                (false, _) => (Stream::Audio, None),
            };
            channels.push(Channel {
                format: *f,
                lead,
                follower,
                // HLS has no duration cap: its timeline cuts segments.
                timeline: Timeline::new(Some(if *f == Format::Hls {
                    cfg.hls_segment_ns
                } else {
                    cfg.interval_ns
                })),
                hls: (*f == Format::Hls).then(HlsChannel::default),
                files: Vec::new(),
                next_index: resume.next_index_for(f.name()),
            });
        }

        if let Some(pad) = self.eos_pad.get() {
            let _ = pad.set_active(true);
            let _ = pad.store_sticky_event(
                &gst::event::StreamStart::builder(&format!("{}/eos", obj.name())).build(),
            );
            let _ = pad.store_sticky_event(&gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()));
        }

        gst::info!(
            CAT,
            imp = self,
            "Starting: stream {} session {} formats {:?}",
            cfg.stream_id,
            resume.next_session,
            cfg.formats
        );
        let gap_ns = cfg.gap_ns;
        *self.lock_state() = Some(State {
            cfg: Arc::new(cfg),
            inputs,
            channels,
            session: resume.next_session,
            anchor: None,
            prev_anchor: None,
            stats: Stats::default(),
            flushing: false,
            stopping: false,
            eos: false,
            eos_pushed: false,
            finalizing: 0,
            lead_stalled: false,
            breaks: Tracker::new(2, gap_ns),
            clock: None,
            last_data: None,
            idle_id: None,
        });
        Ok(())
    }

    /// Finalises every open file with `reason=stopped` and waits for them.
    fn stop(&self) {
        let eos;
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.stopping = true;
            eos = self.close_all_now(state, CloseReason::Stopped);
        }
        self.notify();
        for pad in eos {
            pad.push_event(gst::event::Eos::new());
        }

        let deadline = Instant::now() + FINALISE_TIMEOUT;
        loop {
            // Finalise what has drained, here, so that nothing is left behind.
            let drained = {
                let mut guard = self.lock_state();
                let Some(state) = guard.as_mut() else { return };
                let mut list = Vec::new();
                let mut remaining = 0;
                let late = Instant::now() >= deadline;
                for (ci, ch) in state.channels.iter_mut().enumerate() {
                    for f in &mut ch.files {
                        remaining += 1;
                        if f.drained || late {
                            if !f.drained {
                                // Kept as written: readable up to its last fragment.
                                f.reason = Some(CloseReason::Error);
                            }
                            list.push((ci, f.key));
                        }
                    }
                }
                if remaining == 0 && state.finalizing == 0 {
                    // Every segment is written: every playlist ends now.
                    let mut runs = false;
                    for h in state.channels.iter_mut().filter_map(|c| c.hls.as_mut()) {
                        for r in &mut h.runs {
                            runs = true;
                            r.in_flight = 0;
                            r.closing.get_or_insert(CloseReason::Stopped);
                        }
                    }
                    if !runs {
                        break;
                    }
                    drop(guard);
                    self.finish_playlists();
                    continue;
                }
                if list.is_empty() {
                    let timeout = deadline.saturating_duration_since(Instant::now());
                    drop(self.wait(guard, timeout.min(Duration::from_millis(200))));
                    continue;
                }
                list
            };
            if Instant::now() >= deadline {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Close,
                    [
                        "Muxers did not finalise within {:?}; keeping the files as written",
                        FINALISE_TIMEOUT
                    ]
                );
            }
            for (ci, key) in drained {
                self.finalize(ci, key);
            }
        }
    }

    // ------------------------------------------------------------ data path

    fn sink_chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stream = Stream::from_pad(pad);
        let Some(ts) = buffer.pts().or(buffer.dts()) else {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                [
                    "A {} buffer has no timestamp: liverecordsink needs timestamped, parsed streams (h264parse, aacparse)",
                    stream.name()
                ]
            );
            return Err(gst::FlowError::Error);
        };

        let mut waited = Duration::ZERO;
        let mut adjusted: Option<u64> = None;
        let plan = loop {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if state.flushing || state.stopping {
                return Err(gst::FlowError::Flushing);
            }
            let input = &state.inputs[stream as usize];
            if !input.active {
                return Ok(gst::FlowSuccess::Ok);
            }
            if input.caps.is_none() {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["{} data arrived before caps", stream.name()]
                );
                return Err(gst::FlowError::NotNegotiated);
            }
            let Some(segment) = &input.segment else {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ["{} data arrived before a segment", stream.name()]
                );
                return Err(gst::FlowError::Error);
            };
            let Some(rt) = segment.to_running_time(ts).map(|t| t.nseconds()) else {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Dropping {} buffer outside segment",
                    stream.name()
                );
                state.stats.frames_dropped += 1;
                return Ok(gst::FlowSuccess::Ok);
            };
            let rt = match adjusted {
                Some(a) => a,
                None => {
                    let dur = buffer.duration().map_or(0, |d| d.nseconds());
                    let a = self.track_input(state, stream, rt, dur);
                    adjusted = Some(a);
                    a
                }
            };

            if stream == Stream::Audio && self.follower_must_wait(state, rt) {
                if waited < FOLLOWER_WAIT_LIMIT {
                    let start = Instant::now();
                    drop(self.wait(guard, Duration::from_millis(100)));
                    waited += start.elapsed();
                    continue;
                }
                gst::warning!(
                    CAT,
                    imp = self,
                    "Video did not reach audio at {} within {:?}; routing audio without it",
                    gst::ClockTime::from_nseconds(rt),
                    FOLLOWER_WAIT_LIMIT
                );
                state.lead_stalled = true;
            }
            break self.plan_buffer(state, stream, buffer, rt);
        };
        self.notify();
        self.execute(pad, stream, plan)
    }

    /// Applies the input's offset to a running time, detects interruptions
    /// (gaps, backward jumps, announced breaks) and feeds the idle timer.
    /// Returns the running time the data path uses.
    fn track_input(&self, state: &mut State, stream: Stream, raw: u64, dur: u64) -> u64 {
        let seen = state.breaks.observe(stream as usize, raw, dur);
        if let Some(b) = seen.new_break {
            gst::info!(
                CAT,
                imp = self,
                "{}: interruption ({}) at {}, files resume at {}",
                stream.name(),
                b.reason.as_str(),
                gst::ClockTime::from_nseconds(b.gap_start),
                gst::ClockTime::from_nseconds(b.resume)
            );
            self.break_at(state, b.resume, b.gap_start, b.reason);
        } else if let Some(resume) = seen.crossed {
            gst::debug!(
                CAT,
                imp = self,
                "{} crossed the break at {}",
                stream.name(),
                gst::ClockTime::from_nseconds(resume)
            );
        }
        if let Some(clock) = &state.clock {
            state.last_data = Some(clock.time());
            if state.idle_id.is_none() {
                self.schedule_idle(state);
            }
        }
        seen.time
    }

    /// An interruption at `resume`: every file takes the frames before it and
    /// closes; the session ends.
    fn break_at(&self, state: &mut State, resume: u64, gap_start: u64, reason: CloseReason) {
        let mut any = false;
        for ci in 0..state.channels.len() {
            let ch = &mut state.channels[ci];
            if let Some(k) = ch.timeline.interrupt_at(resume) {
                any = true;
                if let Some(f) = ch.file_mut(k) {
                    f.reason.get_or_insert(reason);
                }
            }
            self.hls_break(state, ci, gap_start, reason);
        }
        if any {
            state.stats.interruptions += 1;
        }
        // A break before anything was recorded does not end a session.
        if any || state.anchor.is_some() {
            state.session += 1;
            state.end_session();
        }
    }

    fn schedule_idle(&self, state: &mut State) {
        let Some(last) = state.last_data else { return };
        if state.cfg.idle_ns == 0 {
            return;
        }
        self.schedule_idle_at(
            state,
            last + gst::ClockTime::from_nseconds(state.cfg.idle_ns),
        );
    }

    /// Runs `idle_check` when the pipeline clock reaches `target`.
    fn schedule_idle_at(&self, state: &mut State, target: gst::ClockTime) {
        let Some(clock) = &state.clock else { return };
        let id = clock.new_single_shot_id(target);
        let weak = self.obj().downgrade();
        let res = id.wait_async(move |_, _, _| {
            if let Some(obj) = weak.upgrade() {
                obj.call_async(|obj| obj.imp().idle_check());
            }
        });
        if res.is_ok() {
            state.idle_id = Some(id);
        }
    }

    /// Starts (PLAYING, with the pipeline clock) or stops the idle timer.
    fn set_idle_clock(&self, clock: Option<gst::Clock>) {
        let mut guard = self.lock_state();
        let Some(state) = guard.as_mut() else { return };
        if let Some(id) = state.idle_id.take() {
            id.unschedule();
        }
        state.last_data = clock.as_ref().map(|c| c.time());
        state.clock = clock;
        let open = state.channels.iter().any(|c| !c.files.is_empty());
        if open {
            self.schedule_idle(state);
        }
    }

    /// The idle timer fired: interrupt if no data came since.
    fn idle_check(&self) {
        let eos;
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.idle_id = None;
            let (Some(clock), Some(last)) = (state.clock.clone(), state.last_data) else {
                return;
            };
            let idle = gst::ClockTime::from_nseconds(state.cfg.idle_ns);
            let now = clock.time();
            if now < last + idle {
                self.schedule_idle(state);
                return;
            }
            let open = state
                .channels
                .iter()
                .any(|c| !c.files.is_empty() || c.timeline.lead_key().is_some());
            if !open {
                return;
            }
            if self.waiters.load(Ordering::SeqCst) > 0 && !state.lead_stalled {
                // Audio is waiting for video that stopped: let it into the
                // open file first, then close (shortly, on the next check).
                state.lead_stalled = true;
                self.notify();
                self.schedule_idle_at(state, now + gst::ClockTime::from_mseconds(20));
                return;
            }
            gst::info!(CAT, imp = self, "No data for {}: interruption", idle);
            let resume = state.breaks.idle_break();
            state.stats.interruptions += 1;
            state.session += 1;
            state.end_session();
            eos = self.close_all_now(state, CloseReason::Interrupted);
            for ci in 0..state.channels.len() {
                self.hls_break(state, ci, resume, CloseReason::Interrupted);
            }
        }
        self.notify();
        for p in eos {
            p.push_event(gst::event::Eos::new());
        }
        self.finish_playlists();
    }

    /// Closes every open file at once. HLS playlists end too, unless the
    /// interruption may be resumed (the caller decides).
    fn close_all_now(&self, state: &mut State, reason: CloseReason) -> Vec<gst::Pad> {
        let mut eos = Vec::new();
        for ch in &mut state.channels {
            ch.timeline.close_all();
            let streams = ch.streams();
            for f in &mut ch.files {
                eos.extend(f.finish(&streams, Some(reason)));
            }
            if let Some(h) = ch.hls.as_mut() {
                if reason != CloseReason::Interrupted {
                    h.close_open(reason);
                }
            }
        }
        eos
    }

    /// Whether audio at `rt` must wait for video to pass it.
    fn follower_must_wait(&self, state: &State, rt: u64) -> bool {
        let video = &state.inputs[Stream::Video as usize];
        state.channels.iter().any(|ch| {
            if ch.follower != Some(Stream::Audio) {
                return false;
            }
            // After video's EOS, audio with no file to go to waits (boundedly)
            // for video to restart: the two pads restart independently.
            let video_can_cut = video.active
                && !state.lead_stalled
                && (!video.eos || ch.timeline.lead_key().is_none());
            // Audio never runs ahead of video: a cut (on the interval, or
            // at any time for split-now) can then always be placed so that
            // the next file's audio starts with its first video frame.
            if video_can_cut && video.position.is_none_or(|p| p < rt) {
                return true;
            }
            // The file this frame belongs to is still being set up.
            ch.files
                .iter()
                .any(|f| f.writer.is_none() && rt >= f.start_rt && f.eos_wanted == [false, false])
        })
    }

    fn plan_buffer(&self, state: &mut State, stream: Stream, buffer: gst::Buffer, rt: u64) -> Plan {
        let mut plan = Plan::default();
        let mut targets = Vec::with_capacity(state.channels.len());
        let keyframe =
            stream == Stream::Audio || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let dts_rt = buffer
            .dts()
            .zip(state.inputs[stream as usize].segment.as_ref())
            .and_then(|(d, seg)| seg.to_running_time(d))
            .map(|t| state.breaks.adjust(stream as usize, t.nseconds()));
        let input = &mut state.inputs[stream as usize];
        let end_rt = rt + buffer.duration().map(|d| d.nseconds()).unwrap_or(0);
        if stream == Stream::Video {
            // The next cut can only come at or after the end of this frame.
            input.position = Some(input.position.map_or(end_rt, |p| p.max(end_rt)));
            state.lead_stalled = false;
        }
        let caps = input.caps.clone();
        let cfg = state.cfg.clone();
        let mut written = false;

        for (ci, ch) in state.channels.iter_mut().enumerate() {
            let target = if ch.lead == stream {
                let d = ch.timeline.on_lead(rt, keyframe);
                if let Some(h) = ch.hls.as_mut().filter(|_| keyframe) {
                    // GOP lengths fix the playlist's target duration. A
                    // keyframe that opens a file after a break (or at the
                    // start) begins a new measure: a break is not a GOP.
                    if let LeadAction::Open(_) = d.action {
                        h.last_key = None;
                    }
                    if let (Some(last), Some(run)) = (h.last_key, h.runs.last_mut()) {
                        run.playlist.note_gop(rt.saturating_sub(last));
                    }
                    h.last_key = Some(rt);
                }
                plan.request_keyframe |= d.request_keyframe && stream == Stream::Video;
                let follower_done = ch.follower.is_none_or(|f| state.inputs[f as usize].eos);
                if let Some(k) = d.finished_lead {
                    // Lead frames reached a break: the file's lead part ends.
                    let mut streams = vec![ch.lead];
                    if follower_done {
                        streams.extend(ch.follower);
                        ch.timeline.follower_ended();
                    }
                    if let Some(f) = ch.file_mut(k) {
                        plan.eos
                            .extend(f.finish(&streams, Some(CloseReason::Interrupted)));
                    }
                }
                match d.action {
                    LeadAction::Drop => None,
                    LeadAction::Write(k) => Some(k),
                    LeadAction::Open(k) => {
                        let anchor = anchor_at(&mut state.anchor, state.prev_anchor, rt);
                        open_file(&cfg, state.session, anchor, ch, k, rt, dts_rt);
                        plan.opens.push((ci, k));
                        Some(k)
                    }
                    LeadAction::Rotate {
                        close,
                        reason,
                        open,
                    } => {
                        let mut streams = vec![ch.lead];
                        if follower_done {
                            streams.extend(ch.follower);
                        }
                        if let Some(f) = ch.file_mut(close) {
                            f.cut_rt = Some(rt);
                            plan.eos.extend(f.finish(&streams, Some(reason)));
                        }
                        if follower_done {
                            ch.timeline.follower_ended();
                        }
                        let anchor = anchor_at(&mut state.anchor, state.prev_anchor, rt);
                        open_file(&cfg, state.session, anchor, ch, open, rt, dts_rt);
                        plan.opens.push((ci, open));
                        Some(open)
                    }
                }
            } else if ch.follower == Some(stream) {
                let route = ch.timeline.route_follower(rt);
                for k in route.finished {
                    if let Some(f) = ch.file_mut(k) {
                        plan.eos.extend(f.finish(&[stream], None));
                    }
                }
                route.target
            } else {
                None
            };

            let Some(key) = target else { continue };
            written = true;
            let Some(file) = ch.file_mut(key).filter(|f| f.has[stream as usize]) else {
                continue;
            };
            file.frames[stream as usize] += 1;
            file.end_rt = file.end_rt.max(end_rt);
            let send_caps = !file.caps_sent[stream as usize];
            if send_caps && file.writer.is_some() {
                file.caps_sent[stream as usize] = true;
            }
            let pad = file.writer.as_ref().and_then(|w| match stream {
                Stream::Video => w.video.clone(),
                Stream::Audio => w.audio.clone(),
            });
            targets.push((ci, key, pad, send_caps, file.base_rt));
        }

        // The last target takes the buffer itself (no copy when upstream
        // gave up its reference); the others get a shallow copy.
        let n = targets.len();
        let mut owned = Some(buffer);
        for (i, (chan, key, pad, send_caps, base)) in targets.into_iter().enumerate() {
            let Some(mut out) = (if i + 1 == n {
                owned.take()
            } else {
                owned.clone()
            }) else {
                break;
            };
            {
                let b = out.make_mut();
                b.set_pts(gst::ClockTime::from_nseconds(rt.saturating_sub(base)));
                b.set_dts(dts_rt.map(|d| gst::ClockTime::from_nseconds(d.saturating_sub(base))));
            }
            plan.pushes.push(Push {
                chan,
                key,
                stream,
                pad,
                caps: if send_caps { caps.clone() } else { None },
                buffer: out,
            });
        }

        if written {
            match stream {
                Stream::Video => state.stats.video_frames += 1,
                Stream::Audio => state.stats.audio_frames += 1,
            }
        } else {
            state.stats.frames_dropped += 1;
        }
        plan
    }

    /// Carries out a plan with no lock held.
    fn execute(
        &self,
        pad: &gst::Pad,
        stream: Stream,
        plan: Plan,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        for p in plan.eos {
            p.push_event(gst::event::Eos::new());
        }
        for (ci, key) in plan.opens {
            self.start_writer(ci, key)?;
        }
        if plan.request_keyframe {
            gst::debug!(CAT, imp = self, "Requesting a keyframe upstream");
            pad.push_event(
                gst_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build(),
            );
        }
        for push in plan.pushes {
            let target = if push.pad.is_some() {
                push.pad
            } else {
                let mut guard = self.lock_state();
                guard.as_mut().and_then(|s| {
                    let f = s.channels.get_mut(push.chan)?.file_mut(push.key)?;
                    let w = f.writer.as_ref()?;
                    let pad = match push.stream {
                        Stream::Video => w.video.clone(),
                        Stream::Audio => w.audio.clone(),
                    }?;
                    f.caps_sent[push.stream as usize] = true;
                    Some(pad)
                })
            };
            let Some(target) = target else { continue };
            if let Some(caps) = push.caps {
                target.push_event(gst::event::Caps::new(&caps));
                target.push_event(file_segment());
            }
            match target.push(push.buffer) {
                Ok(_) | Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {}
                Err(gst::FlowError::NotNegotiated) => {
                    let caps = {
                        let guard = self.lock_state();
                        guard
                            .as_ref()
                            .and_then(|s| s.inputs[stream as usize].caps.clone())
                    };
                    let format = self.channel_format(push.chan);
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        [
                            "The {} format cannot take {} caps {}",
                            format,
                            stream.name(),
                            caps.map(|c| c.to_string()).unwrap_or_default()
                        ]
                    );
                    return Err(gst::FlowError::NotNegotiated);
                }
                Err(e) => {
                    gst::error!(CAT, imp = self, "Writer returned {e:?}");
                    return Err(e);
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn channel_format(&self, ci: usize) -> &'static str {
        self.lock_state()
            .as_ref()
            .and_then(|s| s.channels.get(ci))
            .map(|c| c.format.name())
            .unwrap_or("?")
    }

    /// Builds and starts the writer of a file decided under the lock.
    fn start_writer(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        let (spec_name, format, part_path, video, audio, frag) = {
            let guard = self.lock_state();
            let Some(state) = guard.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            let Some(ch) = state.channels.get(ci) else {
                return Err(gst::FlowError::Error);
            };
            let Some(f) = ch.files.iter().find(|f| f.key == key) else {
                return Err(gst::FlowError::Error);
            };
            let caps = |s: Stream| f.has[s as usize].then(|| state.inputs[s as usize].caps.clone());
            (
                format!("writer-{}-{:05}-{}", ch.format.name(), f.index, key),
                ch.format,
                f.part_path.clone(),
                caps(Stream::Video),
                caps(Stream::Audio),
                state.cfg.mp4_fragment_ms,
            )
        };

        let result = prepare_part(&part_path).and_then(|_| {
            let writer = Writer::build(WriterSpec {
                name: spec_name,
                format,
                part_path: &part_path,
                video: video.clone(),
                audio: audio.clone(),
                mp4_fragment_ms: frag,
            })
            .map_err(|e| e.to_string())?;
            self.obj()
                .add(&writer.bin)
                .map_err(|e| format!("cannot add writer: {e}"))?;
            if let Err(e) = writer.start() {
                let _ = self.obj().remove(&writer.bin);
                return Err(e.to_string());
            }
            Ok(writer)
        });

        let writer = match result {
            Ok(w) => w,
            Err(msg) => {
                {
                    let mut guard = self.lock_state();
                    if let Some(ch) = guard.as_mut().and_then(|s| s.channels.get_mut(ci)) {
                        let failed = ch.files.iter().position(|f| f.key == key);
                        if let Some(f) = failed.map(|i| ch.files.remove(i)) {
                            // A segment that never started still takes its
                            // place in the playlist order, as a skipped one.
                            if let (Some(id), Some(h)) = (f.run, ch.hls.as_mut()) {
                                if let Some(run) = h.run_mut(id) {
                                    run.add_in_order(f.seq, Finished::failed());
                                }
                            }
                        }
                        ch.timeline.close_all();
                    }
                }
                self.notify();
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot record {}: {}", part_path.display(), msg)
                );
                return Err(gst::FlowError::Error);
            }
        };

        let (eos, msg) = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                writer.shutdown();
                return Err(gst::FlowError::Flushing);
            };
            let cfg = state.cfg.clone();
            let Some(ch) = state.channels.get_mut(ci) else {
                return Err(gst::FlowError::Error);
            };
            let format = ch.format;
            let Some(f) = ch.file_mut(key) else {
                return Err(gst::FlowError::Error);
            };
            f.caps_sent = [
                video.as_ref().is_some_and(|c| c.is_some()),
                audio.as_ref().is_some_and(|c| c.is_some()),
            ];
            f.writer = Some(writer);
            // Closed while it was being built (stop, EOS): drain it now.
            let eos = f.take_eos_pads();
            let msg = f.announce.take().map(|location| {
                file_structure("liverecordsink-file-opened", &cfg, format, f)
                    .field("location", location.to_string_lossy().as_ref())
                    .build()
            });
            (eos, msg)
        };
        self.notify();
        for p in eos {
            p.push_event(gst::event::Eos::new());
        }
        if let Some(msg) = msg {
            self.post(msg);
        }
        Ok(())
    }

    fn post(&self, s: gst::Structure) {
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    // --------------------------------------------------------------- events

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let stream = Stream::from_pad(pad);
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let mut guard = self.lock_state();
                let Some(state) = guard.as_mut() else {
                    return false;
                };
                if state.inputs[stream as usize].active {
                    for ch in &state.channels {
                        let writes = match stream {
                            Stream::Video => ch.lead == stream && ch.format.holds_video(),
                            Stream::Audio => ch.lead == stream || ch.follower == Some(stream),
                        };
                        if !writes {
                            continue;
                        }
                        if let Err(why) = format_accepts(ch.format, &caps) {
                            let format = ch.format.name();
                            let name = caps
                                .structure(0)
                                .map(|s| s.name().to_string())
                                .unwrap_or_default();
                            drop(guard);
                            gst::element_imp_error!(
                                self,
                                gst::StreamError::Format,
                                ("The {} format cannot record {}: {}", format, name, why),
                                ["caps: {}", caps]
                            );
                            return false;
                        }
                    }
                }
                let had_data = state.breaks.has_data(stream as usize);
                let input = &mut state.inputs[stream as usize];
                // Caps before any data, or caps that differ only in fields
                // the files do not depend on, are not a new file.
                let changed = input
                    .caps
                    .as_ref()
                    .is_some_and(|old| !same_media(old, &caps));
                let breaks = changed && input.active && had_data;
                input.caps = Some(caps);
                if breaks {
                    gst::info!(CAT, imp = self, "{} caps changed: new file", stream.name());
                    state
                        .breaks
                        .announce(stream as usize, CloseReason::CapsChanged);
                }
                true
            }
            EventView::Segment(s) => {
                let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ["{} segment is not in TIME format", stream.name()]
                    );
                    return false;
                };
                if let Some(state) = self.lock_state().as_mut() {
                    state.inputs[stream as usize].segment = Some(segment);
                }
                true
            }
            EventView::Eos(_) => {
                self.input_eos(stream);
                true
            }
            EventView::FlushStart(_) => {
                if let Some(state) = self.lock_state().as_mut() {
                    state.flushing = true;
                }
                self.notify();
                true
            }
            EventView::FlushStop(_) => {
                if let Some(state) = self.lock_state().as_mut() {
                    state.flushing = false;
                    state.inputs[stream as usize].segment = None;
                }
                true
            }
            EventView::StreamStart(ss) => {
                self.stream_start(stream, ss.stream_id());
                true
            }
            EventView::Gap(_) | EventView::Tag(_) => true,
            _ => {
                if event.is_serialized() {
                    true
                } else {
                    gst::Pad::event_default(pad, Some(&*self.obj()), event)
                }
            }
        }
    }

    fn stream_start(&self, stream: Stream, id: &str) {
        let mut restart_eos = false;
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let input = &mut state.inputs[stream as usize];
            if input.eos {
                // A source that restarts after EOS: record again, in a new session.
                gst::info!(CAT, imp = self, "{} restarted after EOS", stream.name());
                input.eos = false;
                input.position = None;
                state.breaks.restart(stream as usize);
                if state.eos {
                    state.eos = false;
                    restart_eos = std::mem::replace(&mut state.eos_pushed, false);
                }
            } else if input.stream_id.as_deref().is_some_and(|old| old != id) && input.active {
                gst::info!(
                    CAT,
                    imp = self,
                    "{} stream changed to {id}: interruption",
                    stream.name()
                );
                state
                    .breaks
                    .announce(stream as usize, CloseReason::Interrupted);
            }
            state.inputs[stream as usize].stream_id = Some(id.to_string());
        }
        if restart_eos {
            // Un-EOS the bin: the internal sink takes a new stream.
            if let Some(pad) = self.eos_pad.get() {
                // A sink drops everything after EOS until it is flushed.
                pad.push_event(gst::event::FlushStart::new());
                pad.push_event(gst::event::FlushStop::new(false));
                pad.push_event(
                    gst::event::StreamStart::builder(&format!("{}/eos/{}", self.obj().name(), id))
                        .build(),
                );
                pad.push_event(file_segment());
            }
        }
    }

    fn input_eos(&self, stream: Stream) {
        let mut eos = Vec::new();
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.inputs[stream as usize].eos = true;
            for ch in &mut state.channels {
                if ch.lead == stream {
                    // The current file keeps taking the follower until it ends.
                    if let Some(k) = ch.timeline.current() {
                        if let Some(f) = ch.file_mut(k) {
                            eos.extend(f.finish(&[stream], None));
                        }
                    }
                } else if ch.follower == Some(stream) {
                    for k in ch.timeline.follower_ended() {
                        if let Some(f) = ch.file_mut(k) {
                            eos.extend(f.finish(&[stream], None));
                        }
                    }
                    if let Some(k) = ch.timeline.current() {
                        if let Some(f) = ch.file_mut(k) {
                            eos.extend(f.finish(&[stream], None));
                        }
                    }
                }
            }
            let all_eos = state.inputs.iter().all(|i| !i.active || i.eos);
            if all_eos {
                gst::info!(CAT, imp = self, "All inputs ended: finalising files");
                eos.extend(self.close_all_now(state, CloseReason::Eos));
                state.eos = true;
                // A restart may begin again from any running time.
                for i in &mut state.inputs {
                    i.position = None;
                }
                state.session += 1;
                state.end_session();
            }
        }
        self.notify();
        for p in eos {
            p.push_event(gst::event::Eos::new());
        }
        self.finish_playlists();
        self.maybe_forward_eos();
    }

    /// Sends EOS downstream (to the internal fakesink) once every input has
    /// ended and every file is finalised, so that the bin posts EOS then.
    fn maybe_forward_eos(&self) {
        let push = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let done = state.eos
                && !state.eos_pushed
                && state.finalizing == 0
                && state.channels.iter().all(|c| {
                    c.files.is_empty() && c.hls.as_ref().is_none_or(|h| h.runs.is_empty())
                });
            if done {
                state.eos_pushed = true;
            }
            done
        };
        if push {
            if let Some(pad) = self.eos_pad.get() {
                gst::info!(CAT, imp = self, "All files finalised: posting EOS");
                pad.push_event(gst::event::Eos::new());
            }
        }
    }

    // --------------------------------------------------------- finalisation

    /// Called (on a muxer's streaming thread) when a writer has written
    /// everything.
    fn writer_drained(&self, ci: usize, key: Key) {
        let stopping = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            if let Some(f) = state.channels.get_mut(ci).and_then(|c| c.file_mut(key)) {
                f.drained = true;
            }
            state.stopping
        };
        self.notify();
        if !stopping {
            // Not on the streaming thread: the writer is shut down from here.
            self.obj().call_async(move |obj| {
                obj.imp().finalize(ci, key);
                obj.imp().maybe_forward_eos();
            });
        }
    }

    /// The channel and key of the file whose writer is or contains `src`.
    fn writer_of(&self, src: &gst::Object) -> Option<(usize, Key)> {
        let guard = self.lock_state();
        let state = guard.as_ref()?;
        for (ci, ch) in state.channels.iter().enumerate() {
            for f in &ch.files {
                let Some(w) = &f.writer else { continue };
                if src == w.bin.upcast_ref::<gst::Object>() || src.has_as_ancestor(&w.bin) {
                    return Some((ci, f.key));
                }
            }
        }
        None
    }

    /// Marks the file whose writer contains `src` as failed and finalises it.
    fn writer_failed(&self, src: &gst::Object) {
        let Some((ci, key)) = self.writer_of(src) else {
            return;
        };
        let stopping = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            if let Some(f) = state.channels.get_mut(ci).and_then(|c| c.file_mut(key)) {
                f.reason = Some(CloseReason::Error);
            }
            state.stopping
        };
        if !stopping {
            gst::warning!(
                CAT,
                imp = self,
                "A writer failed: finalising its file as written"
            );
        }
        self.writer_drained(ci, key);
    }

    /// Closes one file: stops its writer, fsyncs, renames, indexes, announces.
    fn finalize(&self, ci: usize, key: Key) {
        let (file, cfg, format) = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let cfg = state.cfg.clone();
            let Some(ch) = state.channels.get_mut(ci) else {
                return;
            };
            let Some(pos) = ch.files.iter().position(|f| f.key == key) else {
                return;
            };
            let file = ch.files.remove(pos);
            let format = ch.format;
            state.finalizing += 1;
            (file, cfg, format)
        };
        self.notify();
        if let Some(w) = &file.writer {
            w.shutdown();
            let _ = self.obj().remove(&w.bin);
        }
        if file.run.is_some() {
            self.close_segment(ci, file);
        } else {
            self.close_file(file, &cfg, format);
        }
        if let Some(state) = self.lock_state().as_mut() {
            state.finalizing -= 1;
        }
        self.notify();
        self.finish_playlists();
    }

    /// Stops the writer, fsyncs, renames, indexes and announces one file.
    fn close_file(&self, file: OpenFile, cfg: &Config, format: Format) {
        let reason = file.reason.unwrap_or(CloseReason::Eos);
        let duration = file.end_rt.saturating_sub(file.start_rt);
        let end_wall = wall_at(
            (file.start_rt, file.start_wall),
            file.end_rt.max(file.start_rt),
        );

        if duration < cfg.min_file_ns {
            let part = file.part_path.to_string_lossy().into_owned();
            let size = std::fs::metadata(&file.part_path).map_or(0, |m| m.len());
            if let Err(e) = std::fs::remove_file(&file.part_path) {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot delete the short file {}: {}", part, e]
                );
            }
            let record = make_record(cfg, format, &file.meta(), &part, size, duration, reason);
            let why = format!(
                "shorter than min-file-duration ({} ms < {} ms)",
                duration / 1_000_000,
                cfg.min_file_ns / 1_000_000
            );
            gst::info!(CAT, imp = self, "Discarded {}: {}", part, why);
            self.post(
                record_structure("liverecordsink-file-discarded", &record, duration)
                    .field("discard-reason", why)
                    .build(),
            );
            return;
        }

        let result = (|| -> Result<(PathBuf, u64), String> {
            let f =
                std::fs::File::open(&file.part_path).map_err(|e| io_error(&file.part_path, &e))?;
            f.sync_all().map_err(|e| io_error(&file.part_path, &e))?;
            let size = f
                .metadata()
                .map_err(|e| io_error(&file.part_path, &e))?
                .len();
            drop(f);
            let base = cfg.template.render(&TemplateVars {
                stream_id: &cfg.safe_stream_id,
                session: file.session,
                index: file.index,
                format: format.name(),
                start: file.start_wall,
                end: Some(end_wall),
            });
            let ext = format.extension(file.audio_only);
            let mut target = with_extension(&base, ext);
            let mut n = 1;
            while target.exists() {
                let mut s = base.as_os_str().to_os_string();
                s.push(format!("-{n}"));
                target = with_extension(Path::new(&s), ext);
                n += 1;
            }
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
            }
            std::fs::rename(&file.part_path, &target).map_err(|e| {
                format!(
                    "cannot rename {} to {}: {e}",
                    file.part_path.display(),
                    target.display()
                )
            })?;
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok((target, size))
        })();

        let (location, size) = match result {
            Ok(v) => v,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot finalise {}: {}", file.part_path.display(), msg]
                );
                return;
            }
        };

        let location_str = location.to_string_lossy().into_owned();
        let record = make_record(
            cfg,
            format,
            &file.meta(),
            &location_str,
            size,
            duration,
            reason,
        );
        self.index_and_announce(cfg, &record, duration);
    }

    /// Appends the record to the index (fsynced), then posts `file-closed`.
    fn index_and_announce(&self, cfg: &Config, record: &IndexRecord, duration: u64) {
        if let Some(path) = &cfg.index_path {
            if let Err(e) = index::append(path, record) {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot append to the index: {}", e]
                );
            }
        }
        if let Some(state) = self.lock_state().as_mut() {
            state.stats.files_closed += 1;
            state.stats.bytes_written += record.size;
        }
        gst::info!(
            CAT,
            imp = self,
            "Closed {} ({})",
            record.location,
            record.reason
        );
        self.post(record_structure("liverecordsink-file-closed", record, duration).build());
    }

    // -------------------------------------------------------------- signals

    fn split_now(&self) {
        let request = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let mut request = false;
            for ch in &mut state.channels {
                request |= ch.timeline.request_split() && ch.lead == Stream::Video;
            }
            request
        };
        self.notify();
        if request {
            if let Some(pad) = self.obj().static_pad("video") {
                pad.push_event(
                    gst_video::UpstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build(),
                );
            }
        }
    }

    fn stats(&self) -> gst::Structure {
        let guard = self.lock_state();
        let st = guard.as_ref().map(|s| s.stats.clone()).unwrap_or_default();
        gst::Structure::builder("liverecordsink-stats")
            .field("files-closed", st.files_closed)
            .field("bytes-written", st.bytes_written)
            .field("video-frames", st.video_frames)
            .field("audio-frames", st.audio_frames)
            .field("frames-dropped", st.frames_dropped)
            .field("interruptions", st.interruptions)
            .build()
    }
}

/// What a closed recording's record needs of it.
struct FileMeta {
    session: u64,
    index: u64,
    start_rt: u64,
    start_wall: DateTime<Utc>,
    frames: [u64; 2],
}

impl OpenFile {
    fn meta(&self) -> FileMeta {
        FileMeta {
            session: self.session,
            index: self.index,
            start_rt: self.start_rt,
            start_wall: self.start_wall,
            frames: self.frames,
        }
    }
}

fn make_record(
    cfg: &Config,
    format: Format,
    file: &FileMeta,
    location: &str,
    size: u64,
    duration: u64,
    reason: CloseReason,
) -> IndexRecord {
    let file_id = index::file_id(
        &cfg.safe_stream_id,
        format.name(),
        file.session,
        file.index,
        file.start_wall,
    );
    let end_wall = wall_at((file.start_rt, file.start_wall), file.start_rt + duration);
    IndexRecord {
        stream_id: cfg.stream_id.clone(),
        session_id: file.session,
        index: file.index,
        format: format.name().to_string(),
        location: location.to_string(),
        start_time: index::iso8601(file.start_wall),
        start_running_time: file.start_rt,
        playback_url: cfg
            .playback_url_template
            .as_ref()
            .map(|t| playback_url(t, location, &cfg.stream_id, format.name(), &file_id)),
        file_id,
        end_time: index::iso8601(end_wall),
        duration: index::seconds_ms(duration),
        size,
        video_frames: file.frames[Stream::Video as usize],
        audio_frames: file.frames[Stream::Audio as usize],
        reason: reason.as_str().to_string(),
        source_file_ids: Vec::new(),
    }
}

/// The §8 fields of a closed (or discarded) file, for a bus message.
fn record_structure(name: &str, r: &IndexRecord, duration: u64) -> gst::structure::Builder {
    let mut s = gst::Structure::builder(name)
        .field("stream-id", &r.stream_id)
        .field("session-id", r.session_id)
        .field("index", r.index)
        .field("format", &r.format)
        .field("location", &r.location)
        .field("start-time", &r.start_time)
        .field(
            "start-running-time",
            gst::ClockTime::from_nseconds(r.start_running_time),
        )
        .field("file-id", &r.file_id)
        .field("end-time", &r.end_time)
        .field("duration", gst::ClockTime::from_nseconds(duration))
        .field("size", r.size)
        .field("video-frames", r.video_frames)
        .field("audio-frames", r.audio_frames)
        .field("reason", &r.reason);
    if let Some(url) = &r.playback_url {
        s = s.field("playback-url", url);
    }
    s
}

/// Records a new file in its channel (under the state lock); the writer is
/// built later, without the lock.
fn open_file(
    cfg: &Config,
    session: u64,
    anchor: (u64, DateTime<Utc>),
    ch: &mut Channel,
    key: Key,
    rt: u64,
    dts_rt: Option<u64>,
) {
    let start_wall = wall_at(anchor, rt);
    let has_video = ch.lead == Stream::Video && ch.format.holds_video();
    let has_audio = ch.lead == Stream::Audio || ch.follower == Some(Stream::Audio);
    if ch.hls.is_some() {
        open_segment(
            cfg,
            session,
            start_wall,
            ch,
            key,
            rt,
            dts_rt,
            [has_video, has_audio],
        );
        return;
    }
    let ext = ch.format.extension(!has_video);
    let mut index = ch.next_index;
    let part_path = loop {
        let base = cfg.template.render(&TemplateVars {
            stream_id: &cfg.safe_stream_id,
            session,
            index,
            format: ch.format.name(),
            start: start_wall,
            end: None,
        });
        let part = with_extension(&with_extension(&base, ext), PART_SUFFIX);
        // Names never collide: skip numbers whose files exist.
        if !part.exists() && !with_extension(&base, ext).exists() {
            break part;
        }
        index += 1;
    };
    ch.next_index = index + 1;
    let base_rt = dts_rt.filter(|_| has_video).map_or(rt, |d| d.min(rt));
    let part_path_announce = part_path.clone();
    ch.files.push(OpenFile {
        key,
        writer: None,
        session,
        index,
        part_path,
        audio_only: !has_video,
        start_rt: rt,
        base_rt,
        end_rt: rt,
        start_wall,
        frames: [0, 0],
        has: [has_video, has_audio],
        caps_sent: [false, false],
        eos_wanted: [false, false],
        eos_sent: [false, false],
        drained: false,
        reason: None,
        run: None,
        seq: 0,
        discontinuity: false,
        cut_rt: None,
        announce: Some(part_path_announce),
    });
}

/// Whether two caps describe the same media for a file: same codec, stream
/// format, codec data, picture size, sample rate and channels.
fn same_media(a: &gst::CapsRef, b: &gst::CapsRef) -> bool {
    let (Some(a), Some(b)) = (a.structure(0), b.structure(0)) else {
        return a == b;
    };
    a.name() == b.name()
        && [
            "stream-format",
            "codec_data",
            "width",
            "height",
            "rate",
            "channels",
            "mpegversion",
            "layer",
        ]
        .iter()
        .into_iter()
        .all(|f| {
            let v = |s: &gst::StructureRef| s.value(*f).ok().and_then(|v| v.serialize().ok());
            v(a) == v(b)
        })
}

fn prepare_part(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map(|_| ())
        .map_err(|e| io_error(path, &e))
}

fn file_structure(
    name: &str,
    cfg: &Config,
    format: Format,
    f: &OpenFile,
) -> gst::structure::Builder {
    gst::Structure::builder(name)
        .field("stream-id", &cfg.stream_id)
        .field("session-id", f.session)
        .field("index", f.index)
        .field("format", format.name())
        .field("start-time", index::iso8601(f.start_wall))
        .field(
            "start-running-time",
            gst::ClockTime::from_nseconds(f.start_rt),
        )
}

const PLAYBACK_PLACEHOLDERS: [&str; 5] = ["path", "filename", "stream_id", "format", "file_id"];

fn check_playback_template(t: &str) -> Result<(), String> {
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

fn playback_url(t: &str, path: &str, stream_id: &str, format: &str, file_id: &str) -> String {
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

impl ObjectImpl for LiveRecordSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location template")
                    .blurb("Path template without extension. Placeholders: {stream_id} {session} {index} {format} {start:STRFTIME} {end:STRFTIME} (UTC)")
                    .default_value(Some(DEFAULT_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream ID")
                    .blurb("The live stream's code, used in names, messages and the index; made safe for paths")
                    .default_value(Some(DEFAULT_STREAM_ID))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFlags::builder::<Formats>("formats")
                    .nick("Formats")
                    .blurb("Recording channels, one per flag, e.g. mp4+hls")
                    .default_value(DEFAULT_FORMATS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("record-type", DEFAULT_RECORD_TYPE)
                    .nick("Record type")
                    .blurb("Which streams are recorded (audio gives .m4a from mp4)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("record-interval")
                    .nick("Record interval (seconds)")
                    .blurb("Maximum duration of an MP4/FLV/AAC file in seconds; the cut is made at the first keyframe at or after it")
                    .minimum(1)
                    .maximum(MAX_RECORD_INTERVAL)
                    .default_value(DEFAULT_RECORD_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("mp4-fragment-duration")
                    .nick("MP4 fragment duration (ms)")
                    .blurb("Crash-safe MP4: fragment duration in milliseconds (moov first, then fragments, finalised into a normal MP4 on close); 0 = classic MP4, not crash-safe")
                    .maximum(u32::MAX)
                    .default_value(DEFAULT_MP4_FRAGMENT_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("playback-url-template")
                    .nick("Playback URL template")
                    .blurb("Fills playback-url in messages and the index, e.g. https://vod.example.com/{path}; placeholders {path} {filename} {stream_id} {format} {file_id}; empty = none")
                    .default_value(Some(DEFAULT_PLAYBACK_URL_TEMPLATE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("index-location")
                    .nick("Index location")
                    .blurb("JSON Lines index of closed files, appended and fsynced before each file-closed message; empty = off")
                    .default_value(Some(DEFAULT_INDEX_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interruption-gap")
                    .nick("Interruption gap (ms)")
                    .blurb("A running-time jump, forward or backward, larger than this many milliseconds on any pad is an interruption: files close and a new session starts")
                    .default_value(DEFAULT_INTERRUPTION_GAP)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("idle-timeout")
                    .nick("Idle timeout (ms)")
                    .blurb("In PLAYING, no data on any pad for this many milliseconds of pipeline clock is an interruption; files close at once. 0 = off")
                    .default_value(DEFAULT_IDLE_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-file-duration")
                    .nick("Minimum file duration (ms)")
                    .blurb("A closed file shorter than this many milliseconds is deleted and a liverecordsink-file-discarded message is posted. 0 = keep all")
                    .default_value(DEFAULT_MIN_FILE_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("hls-resume-timeout")
                    .nick("HLS resume timeout (seconds)")
                    .blurb("HLS breakpoint resumption: after an interruption shorter than this many seconds the same playlist continues with #EXT-X-DISCONTINUITY; 0 = every interruption starts a new playlist")
                    .maximum(MAX_HLS_RESUME_TIMEOUT)
                    .default_value(DEFAULT_HLS_RESUME_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("hls-segment-duration")
                    .nick("HLS segment duration (seconds)")
                    .blurb("Target HLS segment duration in seconds; segments are cut at the first keyframe at or after it")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_HLS_SEGMENT_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("recording")
                    .nick("Recording")
                    .blurb("True while a file is open")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("files-closed, bytes-written, video-frames, audio-frames (written), frames-dropped, interruptions")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![glib::subclass::Signal::builder("split-now")
                .action()
                .class_handler(|args| {
                    if let Some(Ok(obj)) = args.first().map(|a| a.get::<super::LiveRecordSink>()) {
                        obj.imp().split_now();
                    }
                    None
                })
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "location" => {
                s.location = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "stream-id" => {
                s.stream_id = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "formats" => s.formats = value.get().unwrap_or(DEFAULT_FORMATS),
            "record-type" => s.record_type = value.get().unwrap_or(DEFAULT_RECORD_TYPE),
            "record-interval" => s.record_interval = value.get().unwrap_or(DEFAULT_RECORD_INTERVAL),
            "mp4-fragment-duration" => {
                s.mp4_fragment_duration = value.get().unwrap_or(DEFAULT_MP4_FRAGMENT_DURATION)
            }
            "playback-url-template" => {
                s.playback_url_template = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "index-location" => {
                s.index_location = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "interruption-gap" => {
                s.interruption_gap = value.get().unwrap_or(DEFAULT_INTERRUPTION_GAP)
            }
            "idle-timeout" => s.idle_timeout = value.get().unwrap_or(DEFAULT_IDLE_TIMEOUT),
            "min-file-duration" => {
                s.min_file_duration = value.get().unwrap_or(DEFAULT_MIN_FILE_DURATION)
            }
            "hls-resume-timeout" => {
                s.hls_resume_timeout = value.get().unwrap_or(DEFAULT_HLS_RESUME_TIMEOUT)
            }
            "hls-segment-duration" => {
                s.hls_segment_duration = value.get().unwrap_or(DEFAULT_HLS_SEGMENT_DURATION)
            }
            other => gst::warning!(CAT, imp = self, "Unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "recording" => {
                let guard = self.lock_state();
                guard
                    .as_ref()
                    .is_some_and(|s| s.channels.iter().any(|c| !c.files.is_empty()))
                    .to_value()
            }
            "stats" => self.stats().to_value(),
            name => {
                let s = lock(&self.settings);
                match name {
                    "location" => s.location.to_value(),
                    "stream-id" => s.stream_id.to_value(),
                    "formats" => s.formats.to_value(),
                    "record-type" => s.record_type.to_value(),
                    "record-interval" => s.record_interval.to_value(),
                    "mp4-fragment-duration" => s.mp4_fragment_duration.to_value(),
                    "playback-url-template" => s.playback_url_template.to_value(),
                    "index-location" => s.index_location.to_value(),
                    "interruption-gap" => s.interruption_gap.to_value(),
                    "idle-timeout" => s.idle_timeout.to_value(),
                    "min-file-duration" => s.min_file_duration.to_value(),
                    "hls-resume-timeout" => s.hls_resume_timeout.to_value(),
                    "hls-segment-duration" => s.hls_segment_duration.to_value(),
                    _ => glib::Value::from_type(pspec.value_type()),
                }
            }
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_element_flags(gst::ElementFlags::SINK);
        // fakesink is in GStreamer core; if it cannot be made, start() fails.
        if let Ok(sink) = gst::ElementFactory::make("fakesink")
            .name("eos-sink")
            .property("async", false)
            .property("sync", false)
            .build()
        {
            let pad = gst::Pad::builder(gst::PadDirection::Src)
                .name("eos")
                .build();
            if obj.add(&sink).is_ok() {
                if let Some(sinkpad) = sink.static_pad("sink") {
                    if pad.link(&sinkpad).is_ok() {
                        let _ = self.eos_pad.set(pad);
                    }
                }
            }
        }
    }
}

impl GstObjectImpl for LiveRecordSink {}

impl ElementImpl for LiveRecordSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Live Record Sink",
                "Sink/File",
                "Records live H.264/H.265 + AAC streams to rotating MP4 files with crash safety, bus messages and a JSON Lines index",
                "liverecord developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let all = Formats::MP4 | Formats::HLS;
            [Stream::Video, Stream::Audio]
                .into_iter()
                .filter_map(|s| {
                    gst::PadTemplate::new(
                        s.name(),
                        gst::PadDirection::Sink,
                        gst::PadPresence::Request,
                        &sink_caps(s, all),
                    )
                    .ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let kind = templ.name_template().to_string();
        if let Some(n) = name {
            if n != kind.as_ref() as &str {
                gst::warning!(CAT, imp = self, "Pad name must be '{kind}', not '{n}'");
                return None;
            }
        }
        let obj = self.obj();
        if obj.static_pad(kind.as_ref() as &str).is_some() {
            gst::warning!(CAT, imp = self, "There is already a {kind} pad");
            return None;
        }
        if obj.current_state() > gst::State::Ready {
            gst::warning!(
                CAT,
                imp = self,
                "Pads must be requested before the element starts"
            );
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name(kind.as_ref() as &str)
            .chain_function(|pad, parent, buffer| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .build();
        obj.add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::ReadyToPaused => {
                if let Err(e) = self.start() {
                    self.post_error_message(e);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => self.stop(),
            gst::StateChange::PlayingToPaused => self.set_idle_clock(None),
            _ => {}
        }
        let ret = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToPlaying {
            self.set_idle_clock(self.obj().clock());
        }
        if transition == gst::StateChange::PausedToReady {
            if let Some(pad) = self.eos_pad.get() {
                let _ = pad.set_active(false);
            }
            *self.lock_state() = None;
        }
        if transition == gst::StateChange::ReadyToPaused && ret.is_err() {
            *self.lock_state() = None;
        }
        ret
    }
}

impl LiveRecordSink {
    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let formats = lock(&self.settings).formats;
                let caps = sink_caps(Stream::from_pad(pad), formats);
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

impl BinImpl for LiveRecordSink {
    fn handle_message(&self, msg: gst::Message) {
        match msg.view() {
            // A writer bin posts EOS when its file sink has written
            // everything: the file can be finalised. The bin's own EOS comes
            // from the internal EOS sink, once every file is done.
            gst::MessageView::Eos(_) => {
                if let Some(src) = msg.src() {
                    if let Some((ci, key)) = self.writer_of(src) {
                        self.writer_drained(ci, key);
                        return;
                    }
                }
            }
            // A writer failed (disk full, muxer error): its file will never
            // drain, so it is finalised as written, with reason=error.
            gst::MessageView::Error(_) => {
                if let Some(src) = msg.src() {
                    self.writer_failed(src);
                }
            }
            _ => {}
        }
        self.parent_handle_message(msg)
    }
}
