// SPDX-License-Identifier: MIT OR Apache-2.0
//! Scripted timelines: media encoded once per test process, pushed into a
//! `liverecordsink` from the test's own source pads with rewritten
//! timestamps, so that a test decides exactly what the element sees: gaps,
//! backward jumps, DISCONT flags, EOS, new STREAM_STARTs, caps changes and
//! real-time pacing.
//!
//! The element sits in a pipeline in PLAYING; two unparented source pads
//! feed its `video` and `audio` request pads through one unbounded `queue`
//! each. One thread (the test's) pushes video and audio interleaved by
//! timestamp, video leading by up to 100 ms, the way a demuxer followed by
//! queues would deliver them.
//!
//! Every wait is bounded. A missing element fails the test with the Debian
//! package to install.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::common::{ffprobe, init, require_elements, test_source_pad, Recording, TestDir};

pub const SECOND: u64 = 1_000_000_000;

/// Nanoseconds from seconds.
pub fn ns(secs: f64) -> u64 {
    (secs * 1e9).round() as u64
}

// ---------------------------------------------------------------- encoding

/// One encoded stream: its caps and its buffers, in decoding order, with
/// their original flags (keyframes are buffers without DELTA_UNIT).
pub struct Encoded {
    pub caps: gst::Caps,
    pub frames: Vec<gst::Buffer>,
    /// Frame rate as a fraction `num/den` frames per second (for audio:
    /// 48000/1024).
    pub rate: (u64, u64),
}

impl Encoded {
    /// Timestamp of frame `i` of a run that starts at `start` (ns).
    pub fn ts(&self, start: u64, i: u64) -> u64 {
        let (num, den) = (u128::from(self.rate.0), u128::from(self.rate.1));
        start + ((u128::from(i) * u128::from(SECOND) * den + num / 2) / num) as u64
    }

    /// Number of frames whose timestamps fall in `[0, dur)`.
    pub fn frames_in(&self, dur: u64) -> u64 {
        // The smallest n with ts(0, n) >= dur.
        let mut n = (u128::from(dur) * u128::from(self.rate.0)
            / (u128::from(SECOND) * u128::from(self.rate.1))) as u64;
        while self.ts(0, n) < dur {
            n += 1;
        }
        while n > 0 && self.ts(0, n - 1) >= dur {
            n -= 1;
        }
        n
    }

    pub fn is_key(&self, i: usize) -> bool {
        !self.frames[i]
            .flags()
            .contains(gst::BufferFlags::DELTA_UNIT)
    }

    /// The width and height in the caps.
    pub fn size(&self) -> (i32, i32) {
        let s = self.caps.structure(0).expect("empty caps");
        (
            s.get::<i32>("width").expect("no width in caps"),
            s.get::<i32>("height").expect("no height in caps"),
        )
    }
}

/// Runs `desc ! appsink name=out` to EOS (bounded) and keeps caps and buffers.
fn encode(desc: &str, elements: &[&str], rate: (u64, u64)) -> Encoded {
    require_elements(elements);
    let full = format!("{desc} ! appsink name=out sync=false");
    let pipeline = gst::parse::launch(&full)
        .unwrap_or_else(|e| panic!("cannot parse '{full}': {e}"))
        .downcast::<gst::Pipeline>()
        .expect("not a pipeline");
    let sink = pipeline
        .by_name("out")
        .expect("no appsink")
        .downcast::<gst_app::AppSink>()
        .expect("not an appsink");
    pipeline
        .set_state(gst::State::Playing)
        .unwrap_or_else(|_| panic!("cannot encode with '{full}'"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut caps = None;
    let mut frames = Vec::new();
    let bus = pipeline.bus().unwrap();
    loop {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                let _ = pipeline.set_state(gst::State::Null);
                panic!(
                    "encoding with '{full}' failed: {} ({:?})",
                    e.error(),
                    e.debug()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "encoding with '{full}' did not finish within 120 s"
        );
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            Some(sample) => {
                if caps.is_none() {
                    caps = sample.caps_owned();
                }
                if let Some(b) = sample.buffer_owned() {
                    frames.push(b);
                }
            }
            None if sink.is_eos() => break,
            None => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let caps = caps.unwrap_or_else(|| panic!("'{full}' produced no caps"));
    assert!(!frames.is_empty(), "'{full}' produced no buffers");
    Encoded { caps, frames, rate }
}

fn h264(width: u32, height: u32, secs: u32) -> Encoded {
    let e = encode(
        &format!(
            "videotestsrc num-buffers={} pattern=ball \
             ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 \
             ! x264enc key-int-max=30 bframes=0 speed-preset=ultrafast tune=zerolatency \
             ! h264parse ! video/x-h264,stream-format=avc,alignment=au",
            secs * 30
        ),
        &["videotestsrc", "x264enc", "h264parse", "appsink"],
        (30, 1),
    );
    assert!(
        e.is_key(0),
        "the encoded H.264 does not start with a keyframe"
    );
    e
}

/// 12 s of H.264, 320x240 at 30 fps, a keyframe every 30 frames.
pub fn h264_320x240() -> &'static Encoded {
    static E: OnceLock<Encoded> = OnceLock::new();
    E.get_or_init(|| h264(320, 240, 12))
}

/// 4 s of H.264, 640x360 at 30 fps, a keyframe every 30 frames.
pub fn h264_640x360() -> &'static Encoded {
    static E: OnceLock<Encoded> = OnceLock::new();
    E.get_or_init(|| h264(640, 360, 4))
}

/// 4 s of H.265, 320x240 at 30 fps, a keyframe every 30 frames.
pub fn h265_320x240() -> &'static Encoded {
    static E: OnceLock<Encoded> = OnceLock::new();
    E.get_or_init(|| {
        let e = encode(
            "videotestsrc num-buffers=120 pattern=ball \
             ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
             ! x265enc key-int-max=30 speed-preset=ultrafast tune=zerolatency \
             ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au",
            &["videotestsrc", "x265enc", "h265parse", "appsink"],
            (30, 1),
        );
        assert!(
            e.is_key(0),
            "the encoded H.265 does not start with a keyframe"
        );
        e
    })
}

/// 12 s of AAC, 48 kHz stereo, 1024 samples per frame.
pub fn aac() -> &'static Encoded {
    static E: OnceLock<Encoded> = OnceLock::new();
    E.get_or_init(|| {
        encode(
            "audiotestsrc num-buffers=563 samplesperbuffer=1024 \
             ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse \
             ! audio/mpeg,mpegversion=4,stream-format=raw",
            &["audiotestsrc", "avenc_aac", "aacparse", "appsink"],
            (48000, 1024),
        )
    })
}

// ------------------------------------------------------------------ feeding

/// One of the test's source pads, linked to an element pad.
struct Feed {
    pad: gst::Pad,
    enc: &'static Encoded,
    /// Where the next run reads in `enc` (always a keyframe for video).
    stream_id: String,
    pushed: u64,
    last_push: Option<Instant>,
}

impl Feed {
    fn push(&mut self, buf: gst::Buffer, what: &str, r: &Recording) {
        if let Err(e) = self.pad.push(buf) {
            panic!(
                "pushing {what} into {} failed: {e:?}; bus errors: {:?}",
                self.pad
                    .peer()
                    .map(|p| p.name().to_string())
                    .unwrap_or_default(),
                r.errors()
            );
        }
        self.pushed += 1;
        self.last_push = Some(Instant::now());
    }

    fn event(&self, ev: gst::Event) -> bool {
        self.pad.push_event(ev)
    }

    fn start_stream(&self, id: &str) -> bool {
        let a = self.event(gst::event::StreamStart::builder(id).build());
        let b = self.event(gst::event::Caps::new(&self.enc.caps));
        let c = self.event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        a && b && c
    }
}

/// Which streams a run pushes, and how.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Running time of the first frame, in ns.
    pub start: u64,
    /// Length of the run, in ns: frames with timestamps in
    /// `[start, start + duration)` are pushed.
    pub duration: u64,
    /// Set DISCONT on the first video and the first audio frame at or after
    /// this running time (ns).
    pub discont_at: Option<u64>,
}

impl Run {
    pub fn secs(start: f64, duration: f64) -> Run {
        Run {
            start: ns(start),
            duration: ns(duration),
            discont_at: None,
        }
    }
}

/// What one run pushed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    pub video: u64,
    pub audio: u64,
}

/// A `liverecordsink` alone in a pipeline in PLAYING, fed from the test's
/// own source pads.
pub struct Scripted {
    /// The pipeline, the element (`r.rec`) and its messages.
    pub r: Recording,
    video: Option<Feed>,
    audio: Option<Feed>,
    /// Push frames when the pipeline clock reaches their running time.
    pub live: bool,
    /// What the source pads answer to the LATENCY query (`live`, as of the
    /// latest run).
    live_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Number of STREAM_STARTs sent so far, for unique stream ids.
    generation: u32,
    /// How far video timestamps may run ahead of audio ones when pushing
    /// (ns; negative: audio runs ahead of video).
    pub video_lead: i64,
}

impl Scripted {
    /// Builds the pipeline. `configure` sets the element's properties (the
    /// location and index of `td` are set first). The pipeline is set to
    /// PLAYING, then each pad gets STREAM_START, caps and a TIME segment
    /// starting at 0 (so running time = timestamp).
    pub fn new(
        td: &TestDir,
        video: bool,
        audio: bool,
        configure: impl FnOnce(&gst::Element),
    ) -> Scripted {
        Self::build(td, video, audio, None, configure)
    }

    /// As [`Scripted::new`], with `clock` as the pipeline clock (a
    /// `gst_check::TestClock` makes the element's timers deterministic).
    pub fn with_clock(
        td: &TestDir,
        video: bool,
        audio: bool,
        clock: &gst::Clock,
        configure: impl FnOnce(&gst::Element),
    ) -> Scripted {
        Self::build(td, video, audio, Some(clock), configure)
    }

    fn build(
        td: &TestDir,
        video: bool,
        audio: bool,
        clock: Option<&gst::Clock>,
        configure: impl FnOnce(&gst::Element),
    ) -> Scripted {
        init();
        require_elements(&["mp4mux", "h264parse", "aacparse"]);
        // Encode before the pipeline runs: encoding takes wall time that the
        // element's idle timer would otherwise see.
        let venc = video.then(h264_320x240);
        let aenc = audio.then(aac);

        let pipeline = gst::Pipeline::with_name("scripted");
        let rec = gst::ElementFactory::make("liverecordsink")
            .name("rec")
            .build()
            .expect("liverecordsink is not registered");
        pipeline.add(&rec).unwrap();
        let r = Recording::with(pipeline, rec);
        r.set_location(td);
        configure(&r.rec);

        let live_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mk = |kind: &str, enc: Option<&'static Encoded>| -> Option<Feed> {
            let enc = enc?;
            let sink = r
                .rec
                .request_pad_simple(kind)
                .unwrap_or_else(|| panic!("liverecordsink gave no {kind} pad"));
            // An unbounded queue per stream decouples the streams, as in any
            // real pipeline: a muxer inside the element may hold one
            // stream back until the other catches up.
            let queue = gst::ElementFactory::make("queue")
                .name(format!("scripted-{kind}-queue"))
                .property("max-size-buffers", 0u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .build()
                .expect("no queue element");
            r.pipeline.add(&queue).unwrap();
            queue
                .static_pad("src")
                .unwrap()
                .link(&sink)
                .unwrap_or_else(|e| panic!("cannot link to the {kind} pad: {e:?}"));
            let pad = test_source_pad(&format!("scripted-{kind}"), live_flag.clone());
            pad.link(&queue.static_pad("sink").unwrap())
                .unwrap_or_else(|e| panic!("cannot link to the {kind} queue: {e:?}"));
            pad.set_active(true).unwrap();
            Some(Feed {
                pad,
                enc,
                stream_id: String::new(),
                pushed: 0,
                last_push: None,
            })
        };
        let video = mk("video", venc);
        let audio = mk("audio", aenc);

        let mut s = Scripted {
            r,
            video,
            audio,
            live: false,
            live_flag,
            generation: 0,
            video_lead: 100_000_000,
        };
        if let Some(clock) = clock {
            s.r.pipeline.use_clock(Some(clock));
        }
        s.r.play();
        s.stream_start();
        s
    }

    fn feeds_mut(&mut self) -> impl Iterator<Item = &mut Feed> {
        self.video.iter_mut().chain(self.audio.iter_mut())
    }

    /// Sends a new STREAM_START (a stream id not used before), then caps and
    /// a segment, on every pad. Returns whether the element took them all.
    pub fn stream_start(&mut self) -> bool {
        self.generation += 1;
        let g = self.generation;
        let mut ok = true;
        for (kind, f) in [("video", &mut self.video), ("audio", &mut self.audio)] {
            if let Some(f) = f {
                f.stream_id = format!("scripted/{kind}/{g}");
                ok &= f.start_stream(&f.stream_id.clone());
            }
        }
        ok
    }

    /// EOS on every pad, video first.
    pub fn eos(&mut self) {
        for f in self.feeds_mut() {
            assert!(f.event(gst::event::Eos::new()), "the element refused EOS");
        }
    }

    /// Switches the video to another encoding: a caps event now, and the
    /// next runs use its frames. Returns whether the element took the caps.
    pub fn set_video(&mut self, enc: &'static Encoded) -> bool {
        let f = self.video.as_mut().expect("no video pad");
        f.enc = enc;
        f.event(gst::event::Caps::new(&enc.caps))
    }

    /// The pipeline's running time now, in ns.
    pub fn running_time(&self) -> u64 {
        let p = &self.r.pipeline;
        let clock = p.clock().expect("the pipeline has no clock");
        let base = p.base_time().expect("the pipeline has no base time");
        clock.time().saturating_sub(base).nseconds()
    }

    fn wait_until_running_time(&self, rt: u64) {
        let now = self.running_time();
        if rt > now {
            std::thread::sleep(Duration::from_nanos(rt - now));
        }
    }

    /// Pushes one run of frames on every pad: video from its first keyframe
    /// (looping over the encoded frames, restarting at frame 0, a keyframe),
    /// audio likewise; PTS = DTS = run start + frame index / rate. Video
    /// leads audio by up to `video_lead` (100 ms unless set). In `live` mode each frame is pushed
    /// when the pipeline clock reaches its running time.
    pub fn push_run(&mut self, run: Run) -> Pushed {
        let lead = self.video_lead;
        self.live_flag
            .store(self.live, std::sync::atomic::Ordering::SeqCst);
        let nv = self
            .video
            .as_ref()
            .map_or(0, |f| f.enc.frames_in(run.duration));
        let na = self
            .audio
            .as_ref()
            .map_or(0, |f| f.enc.frames_in(run.duration));
        let (mut iv, mut ia) = (0u64, 0u64);
        let (mut dv, mut da) = (false, false);
        let make = |enc: &Encoded, i: u64, discont: bool| -> (gst::Buffer, u64) {
            let src = &enc.frames[(i as usize) % enc.frames.len()];
            let t = enc.ts(run.start, i);
            let next = enc.ts(run.start, i + 1);
            let mut b = src.copy();
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(t));
                b.set_dts(gst::ClockTime::from_nseconds(t));
                b.set_duration(gst::ClockTime::from_nseconds(next - t));
                b.set_offset(u64::MAX);
                b.set_offset_end(u64::MAX);
                let delta = src.flags().contains(gst::BufferFlags::DELTA_UNIT);
                b.unset_flags(gst::BufferFlags::all());
                if delta {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
                if discont {
                    b.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            (b, t)
        };
        while iv < nv || ia < na {
            let tv = self.video.as_ref().map(|f| f.enc.ts(run.start, iv));
            let ta = self.audio.as_ref().map(|f| f.enc.ts(run.start, ia));
            let video_next =
                iv < nv && (ia >= na || (tv.unwrap() as i128) < ta.unwrap() as i128 + lead as i128);
            let (feed, i, done_flag, what) = if video_next {
                (self.video.as_mut().unwrap(), &mut iv, &mut dv, "video")
            } else {
                (self.audio.as_mut().unwrap(), &mut ia, &mut da, "audio")
            };
            let t = feed.enc.ts(run.start, *i);
            let discont = !*done_flag && run.discont_at.is_some_and(|d| t >= d);
            if discont {
                *done_flag = true;
            }
            let (buf, t) = make(feed.enc, *i, discont);
            *i += 1;
            if self.live {
                self.wait_until_running_time(t);
            }
            let feed = if video_next {
                self.video.as_mut().unwrap()
            } else {
                self.audio.as_mut().unwrap()
            };
            feed.push(buf, what, &self.r);
        }
        Pushed {
            video: nv,
            audio: na,
        }
    }

    /// Returns once the element has taken every frame pushed so far: a
    /// serialized query follows the frames through each stream's queue and
    /// comes back only after the element's chain returned for all of them.
    /// Tests on a `TestClock` call it before moving the clock, so that no
    /// frame arrives (and restarts the idle timer) after the clock moved.
    pub fn sync(&self) {
        for f in [&self.video, &self.audio].into_iter().flatten() {
            let mut q = gst::query::Drain::new();
            // The element does not answer a drain query; only the order
            // matters here, not the answer.
            let _ = f.pad.peer_query(&mut q);
        }
    }

    /// `push_run(Run::secs(start, duration))`.
    pub fn push_secs(&mut self, start: f64, duration: f64) -> Pushed {
        self.push_run(Run::secs(start, duration))
    }

    /// Frames pushed so far (video, audio).
    pub fn pushed(&self) -> Pushed {
        Pushed {
            video: self.video.as_ref().map_or(0, |f| f.pushed),
            audio: self.audio.as_ref().map_or(0, |f| f.pushed),
        }
    }

    /// When the last frame was pushed, on any pad.
    pub fn last_push(&self) -> Option<Instant> {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .filter_map(|f| f.last_push)
            .max()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        let _ = self.r.pipeline.set_state(gst::State::Null);
        for f in [&self.video, &self.audio].into_iter().flatten() {
            let _ = f.pad.set_active(false);
        }
    }
}

// ------------------------------------------------------------------ helpers

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns
/// whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the recording has posted at least `n` messages called
/// `name`; fails the test after `timeout`.
pub fn wait_messages(
    r: &Recording,
    name: &str,
    n: usize,
    timeout: Duration,
) -> Vec<gst::Structure> {
    if !wait_for(timeout, || r.messages_named(name).len() >= n) {
        panic!(
            "{n} {name} message(s) expected within {timeout:?}; messages: {:#?}; errors: {:?}",
            r.messages(),
            r.errors()
        );
    }
    r.messages_named(name)
}

/// Width and height of the first video stream (ffprobe).
pub fn video_size(path: &Path) -> (u32, u32) {
    let out = ffprobe(&[
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ]);
    let mut it = out.trim().split(',');
    let w = it.next().and_then(|s| s.trim().parse().ok());
    let h = it.next().and_then(|s| s.trim().parse().ok());
    match (w, h) {
        (Some(w), Some(h)) => (w, h),
        _ => panic!("no video size for {}: {out:?}", path.display()),
    }
}

// -------------------------------------------------------------- test clock

/// The time of the earliest clock id waiting on `clock`, once there is one;
/// fails the test after `timeout` (wall clock).
pub fn next_pending_time(clock: &gst_check::TestClock, timeout: Duration) -> gst::ClockTime {
    let mut t = None;
    let ok = wait_for(timeout, || {
        t = clock.peek_next_pending_id().map(|id| id.time());
        t.is_some()
    });
    assert!(
        ok,
        "no clock id pending on the test clock within {timeout:?}"
    );
    t.unwrap()
}

/// Waits (at most `timeout`) until the earliest clock id pending on `clock`
/// is due at `want`, and returns it; fails the test otherwise.
pub fn wait_pending_at(clock: &gst_check::TestClock, want: gst::ClockTime, timeout: Duration) {
    let ok = wait_for(timeout, || {
        clock.peek_next_pending_id().map(|id| id.time()) == Some(want)
    });
    assert!(
        ok,
        "no clock id pending at {want} within {timeout:?}; earliest: {:?}, now {}",
        clock.peek_next_pending_id().map(|id| id.time()),
        clock.time()
    );
}

/// A new `TestClock` (GStreamer initialised first, so a test may make its
/// clock before anything else).
pub fn test_clock() -> gst_check::TestClock {
    init();
    gst_check::TestClock::new()
}

/// Sets `clock` to `t` and fires every clock id due by then; returns how
/// many fired.
pub fn advance_to(clock: &gst_check::TestClock, t: gst::ClockTime) -> usize {
    clock.set_time(t);
    let mut n = 0;
    while clock.process_next_clock_id().is_some() {
        n += 1;
    }
    n
}

/// Until `cond` holds (at most `timeout` of wall clock): fires the clock ids
/// that are due and moves `clock` to the next pending one as long as that is
/// at or before `limit`. Returns whether `cond` held.
pub fn run_clock_until(
    clock: &gst_check::TestClock,
    limit: gst::ClockTime,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    wait_for(timeout, || {
        if cond() {
            return true;
        }
        while clock.process_next_clock_id().is_some() {}
        if let Some(id) = clock.peek_next_pending_id() {
            let t = id.time();
            if t > clock.time() && t <= limit {
                advance_to(clock, t);
            }
        }
        cond()
    })
}
