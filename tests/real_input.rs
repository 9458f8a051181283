// SPDX-License-Identifier: MIT OR Apache-2.0
//! Issue 9: correct recordings of what real sources send. One test per item
//! of the issue, each pushing pre-encoded media into a `liverecordsink` from
//! the test's own source pads (through one unbounded queue per pad, as a
//! demuxer followed by queues would deliver them), with the timestamps,
//! segments, caps and events that real sources produce: x264enc with
//! B-frames, flvdemux's segment that starts at the first PTS, video without
//! durations, ADTS caps arriving late, silent or stopping audio, released
//! pads, untimestamped and zero-length buffers, backward jumps, EOS from a
//! source that disconnects, keyframes jittered before a cut.
//!
//! Every output is checked at packet level (tests/common/packets.rs): the
//! first video packet is a keyframe, PTS ≥ DTS, DTS strictly increasing per
//! stream, no discard flag (except mp4mux's AAC priming edit list), no empty
//! track, every video frame decodes, `ffmpeg -v error -f null` prints
//! nothing; frame counts across files match the frames pushed; where the
//! input timing is known, each frame's PTS in a file is its input PTS minus
//! one offset per file, the same for audio and video.
//!
//! Each test runs in a child process bounded by a timeout
//! (tests/common/isolate.rs): a deadlocked or spinning element fails its
//! test instead of hanging the binary. Every bus wait is bounded.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use common::hls_check::ffprobe_playlist;
use common::isolate::in_child;
use common::packets::*;
use common::process::run_bounded;
use common::scripted::{aac, h264_320x240, wait_for, wait_messages, Encoded};
use common::*;
use gst::prelude::*;

/// The bound of one test's child process.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// The bound of a bus wait for EOS at the end of a recording.
const EOS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping (a state change to READY or NULL) may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}

// ================================================================== media

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }
    fn idx(self) -> usize {
        self as usize
    }
}

type Segment = gst::FormattedSegment<gst::ClockTime>;

/// One stream as a real element produced it: its caps, its segment and its
/// buffers with their own timestamps and flags.
#[derive(Clone)]
struct Media {
    caps: gst::Caps,
    segment: Segment,
    bufs: Vec<gst::Buffer>,
}

impl Media {
    fn describe(&self, n: usize) -> String {
        let mut s = format!(
            "caps {}\nsegment start {:?} base {:?} time {:?}\n",
            self.caps,
            self.segment.start(),
            self.segment.base(),
            self.segment.time()
        );
        for b in self.bufs.iter().take(n) {
            s.push_str(&format!(
                "  pts {:?} dts {:?} dur {:?} {:?}\n",
                b.pts(),
                b.dts(),
                b.duration(),
                b.flags()
            ));
        }
        s
    }
}

/// Runs `desc`, whose appsinks are named after `sinks`, to EOS (bounded) and
/// keeps the caps, the segment and the buffers each appsink received.
fn capture(desc: &str, sinks: &[&str]) -> Vec<Media> {
    init();
    let pipeline = gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("cannot parse '{desc}': {e}"))
        .downcast::<gst::Pipeline>()
        .expect("not a pipeline");
    let apps: Vec<gst_app::AppSink> = sinks
        .iter()
        .map(|n| {
            let s = pipeline
                .by_name(n)
                .unwrap_or_else(|| panic!("no appsink {n} in '{desc}'"))
                .downcast::<gst_app::AppSink>()
                .expect("not an appsink");
            s.set_property("sync", false);
            s
        })
        .collect();
    pipeline
        .set_state(gst::State::Playing)
        .unwrap_or_else(|_| panic!("cannot run '{desc}'"));
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got: Vec<(Option<gst::Caps>, Option<Segment>, Vec<gst::Buffer>)> =
        sinks.iter().map(|_| (None, None, Vec::new())).collect();
    let mut done = vec![false; sinks.len()];
    while done.iter().any(|d| !d) {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                let _ = pipeline.set_state(gst::State::Null);
                panic!("'{desc}' failed: {} ({:?})", e.error(), e.debug());
            }
        }
        assert!(
            Instant::now() < deadline,
            "'{desc}' did not finish within 120 s"
        );
        for (i, app) in apps.iter().enumerate() {
            if done[i] {
                continue;
            }
            match app.try_pull_sample(gst::ClockTime::from_mseconds(20)) {
                Some(sample) => {
                    let g = &mut got[i];
                    if g.0.is_none() {
                        g.0 = sample.caps_owned();
                    }
                    if g.1.is_none() {
                        g.1 = sample
                            .segment()
                            .and_then(|s| s.clone().downcast::<gst::ClockTime>().ok());
                    }
                    if let Some(b) = sample.buffer_owned() {
                        g.2.push(b);
                    }
                }
                None if app.is_eos() => done[i] = true,
                None => {}
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    got.into_iter()
        .zip(sinks)
        .map(|((caps, seg, bufs), n)| {
            assert!(!bufs.is_empty(), "'{desc}': no buffer at {n}");
            Media {
                caps: caps.unwrap_or_else(|| panic!("'{desc}': no caps at {n}")),
                segment: seg.unwrap_or_else(|| panic!("'{desc}': no segment at {n}")),
                bufs,
            }
        })
        .collect()
}

/// `n` frames of 320x240 test video at 30 fps.
fn video_src(n: u32) -> String {
    format!(
        "videotestsrc num-buffers={n} pattern=ball \
         ! video/x-raw,format=I420,width=320,height=240,framerate=30/1"
    )
}
/// x264enc with two B-frames between references (as OBS and ffmpeg send),
/// closed GOPs of 30 frames.
const X264_BFRAMES: &str = "x264enc bframes=2 b-adapt=false key-int-max=30 \
     speed-preset=superfast";
/// `n` AAC frames (1024 samples, 48 kHz stereo), not yet parsed.
fn audio_src(n: u32) -> String {
    format!(
        "audiotestsrc num-buffers={n} samplesperbuffer=1024 \
         ! audio/x-raw,rate=48000,channels=2 ! avenc_aac"
    )
}

/// 4 s of H.264 with B-frames, straight from x264enc ! h264parse.
fn x264_bframes() -> &'static Media {
    static M: OnceLock<Media> = OnceLock::new();
    M.get_or_init(|| {
        require_elements(&["videotestsrc", "x264enc", "h264parse", "appsink"]);
        let m = capture(
            &format!(
                "{} ! {X264_BFRAMES} ! h264parse \
                 ! video/x-h264,stream-format=avc,alignment=au ! appsink name=v",
                video_src(120)
            ),
            &["v"],
        )
        .remove(0);
        assert!(
            m.bufs.iter().any(|b| b.pts() != b.dts()),
            "x264enc bframes=2 gave no B-frames (PTS always = DTS):\n{}",
            m.describe(10)
        );
        m
    })
}

/// 4 s of H.264 with B-frames and AAC as a real publisher sends them
/// (ffmpeg `-bf 2` into FLV, as OBS or `ffmpeg -f flv rtmp://…`), demuxed by
/// flvdemux as `rtmp2src ! flvdemux` gives them: the segment starts at the
/// first video PTS, so the first DTS values lie before the segment start
/// (and the first audio frames end before it).
fn flv_av() -> &'static (Media, Media) {
    static M: OnceLock<(Media, Media)> = OnceLock::new();
    M.get_or_init(|| {
        require_elements(&["flvdemux", "h264parse", "aacparse", "appsink"]);
        let dir = tempfile::tempdir().expect("no temp dir");
        let flv = dir.path().join("in.flv");
        let mut cmd = std::process::Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "4", "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-g", "30", "-bf", "2", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-f", "flv"])
            .arg(&flv);
        let out = run_bounded(
            cmd,
            Duration::from_secs(60),
            "install ffmpeg (apt-get install ffmpeg)",
        );
        assert!(
            out.status.success(),
            "ffmpeg could not write the FLV: {}",
            out.stderr
        );
        let mut m = capture(
            &format!(
                "filesrc location={} ! flvdemux name=d \
                 d.video ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
                 ! appsink name=v \
                 d.audio ! queue ! aacparse ! appsink name=a",
                flv.display()
            ),
            &["v", "a"],
        );
        let a = m.pop().unwrap();
        let v = m.pop().unwrap();
        assert!(
            v.bufs.iter().any(|b| b.pts() != b.dts()),
            "no B-frames after flvdemux:\n{}",
            v.describe(10)
        );
        assert!(
            key_time(&v.segment, &v.bufs[0]) < 0,
            "flvdemux gave no DTS before the segment start (the case of issue 9 item 1):\n{}",
            v.describe(10)
        );
        (v, a)
    })
}

/// 12 s of AAC as ADTS (`stream-format=adts`), as aacparse gives it after
/// tsdemux.
fn adts() -> &'static Media {
    static M: OnceLock<Media> = OnceLock::new();
    M.get_or_init(|| {
        require_elements(&["audiotestsrc", "avenc_aac", "aacparse", "appsink"]);
        capture(
            &format!(
                "{} ! aacparse ! audio/mpeg,mpegversion=4,stream-format=adts ! appsink name=a",
                audio_src(563)
            ),
            &["a"],
        )
        .remove(0)
    })
}

/// Frames of `enc` for `[start, start + dur)` seconds: PTS = DTS = start +
/// i / rate, with durations, flags as encoded (the media loops from its
/// first frame, a keyframe).
fn retimed(enc: &Encoded, start: f64, dur: f64) -> Vec<gst::Buffer> {
    let n = enc.frames_in(ns(dur));
    let s = ns(start);
    (0..n)
        .map(|i| {
            let src = &enc.frames[(i as usize) % enc.frames.len()];
            let t = enc.ts(s, i);
            let next = enc.ts(s, i + 1);
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
            }
            b
        })
        .collect()
}

fn video(start: f64, dur: f64) -> Vec<gst::Buffer> {
    retimed(h264_320x240(), start, dur)
}

fn audio(start: f64, dur: f64) -> Vec<gst::Buffer> {
    retimed(aac(), start, dur)
}

/// ADTS frames for `[start, start + dur)`, retimed like [`retimed`].
fn adts_audio(start: f64, dur: f64) -> Vec<gst::Buffer> {
    let m = adts();
    let enc = Encoded {
        caps: m.caps.clone(),
        frames: m.bufs.clone(),
        rate: (48000, 1024),
    };
    retimed(&enc, start, dur)
}

fn default_segment() -> Segment {
    Segment::new()
}

/// The running time (signed, ns) of a buffer's DTS, else PTS.
fn key_time(seg: &Segment, b: &gst::BufferRef) -> i64 {
    let t = b
        .dts()
        .or(b.pts())
        .expect("untimestamped buffer in a timeline");
    match seg.to_running_time_full(t) {
        Some(gst::Signed::Positive(t)) => t.nseconds() as i64,
        Some(gst::Signed::Negative(t)) => -(t.nseconds() as i64),
        None => panic!("no running time for {t} in {seg:?}"),
    }
}

/// Video and audio interleaved by running time (DTS), video leading by up
/// to 100 ms, as a demuxer would deliver them.
fn interleave(
    v: Vec<gst::Buffer>,
    vseg: &Segment,
    a: Vec<gst::Buffer>,
    aseg: &Segment,
) -> Vec<(Kind, gst::Buffer)> {
    let lead = 100_000_000i64;
    let mut out = Vec::with_capacity(v.len() + a.len());
    let (mut vi, mut ai) = (v.into_iter().peekable(), a.into_iter().peekable());
    loop {
        let take_video = match (vi.peek(), ai.peek()) {
            (Some(vb), Some(ab)) => key_time(vseg, vb) < key_time(aseg, ab) + lead,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_video {
            out.push((Kind::Video, vi.next().unwrap()));
        } else {
            out.push((Kind::Audio, ai.next().unwrap()));
        }
    }
    out
}

// ==================================================================== rig

/// One of the test's source pads, feeding an element pad through a queue.
struct Input {
    src: gst::Pad,
    queue: gst::Element,
    sink: gst::Pad,
    segment: Segment,
    /// Running time (s, signed) of the PTS of every buffer pushed.
    pts: Vec<f64>,
    /// Number of buffers pushed.
    pushed: u64,
}

/// A `liverecordsink` alone in a PLAYING pipeline, fed from the test's own
/// source pads; the test sends every event itself.
struct Rig {
    r: Option<Recording>,
    inputs: [Option<Input>; 2],
    /// Push each buffer when the pipeline clock reaches its running time.
    live: bool,
    /// What the source pads answer to the LATENCY query (`live`, as of the
    /// latest push).
    live_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: u32,
}

/// Sets a state, waiting at most `timeout`, on another thread. `Err` names
/// what happened when it does not return in time (the thread is left
/// blocked).
fn set_state_within(
    element: &gst::Element,
    state: gst::State,
    timeout: Duration,
) -> Result<Duration, String> {
    let (tx, rx) = mpsc::channel();
    let e = element.clone();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let r = e.set_state(state);
        let _ = tx.send(r.map(|_| ()).map_err(|e| format!("{e:?}")));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(t0.elapsed()),
        // A failed state change still returned.
        Ok(Err(e)) => {
            eprintln!("set_state({state:?}) returned {e} after {:?}", t0.elapsed());
            Ok(t0.elapsed())
        }
        Err(_) => Err(format!(
            "set_state({state:?}) did not return within {timeout:?}"
        )),
    }
}

impl Rig {
    /// The element (named `rec`) with its location and index in `td`,
    /// `configure`d, its `video` and/or `audio` pads requested and linked,
    /// the pipeline in PLAYING. No event is sent yet.
    fn new(td: &TestDir, video: bool, audio: bool, configure: impl FnOnce(&gst::Element)) -> Rig {
        Rig::at(
            &td.default_location(),
            &td.index_path(),
            video,
            audio,
            configure,
        )
    }

    fn at(
        location: &str,
        index: &Path,
        video: bool,
        audio: bool,
        configure: impl FnOnce(&gst::Element),
    ) -> Rig {
        init();
        require_elements(&["mp4mux", "flvmux", "mpegtsmux", "h264parse", "aacparse"]);
        // Encode before the pipeline runs: encoding takes wall time that the
        // element's idle timer would otherwise see.
        if video {
            h264_320x240();
        }
        if audio {
            aac();
        }
        let pipeline = gst::Pipeline::with_name("rig");
        let rec = gst::ElementFactory::make("liverecordsink")
            .name("rec")
            .build()
            .expect("liverecordsink is not registered");
        pipeline.add(&rec).unwrap();
        let r = Recording::with(pipeline, rec);
        r.rec.set_property("location", location);
        r.rec
            .set_property("index-location", index.to_str().unwrap());
        configure(&r.rec);
        let live_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mk = |kind: Kind| -> Input {
            let sink = r
                .rec
                .request_pad_simple(kind.name())
                .unwrap_or_else(|| panic!("liverecordsink gave no {} pad", kind.name()));
            let queue = gst::ElementFactory::make("queue")
                .name(format!("rig-{}-queue", kind.name()))
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
                .unwrap_or_else(|e| panic!("cannot link to the {} pad: {e:?}", kind.name()));
            let src = test_source_pad(&format!("rig-{}", kind.name()), live_flag.clone());
            src.link(&queue.static_pad("sink").unwrap()).unwrap();
            src.set_active(true).unwrap();
            Input {
                src,
                queue,
                sink,
                segment: default_segment(),
                pts: Vec::new(),
                pushed: 0,
            }
        };
        let inputs = [
            video.then(|| mk(Kind::Video)),
            audio.then(|| mk(Kind::Audio)),
        ];
        let rig = Rig {
            r: Some(r),
            inputs,
            live: false,
            live_flag,
            generation: 0,
        };
        rig.r().play();
        rig
    }

    fn r(&self) -> &Recording {
        self.r.as_ref().unwrap()
    }

    fn rec(&self) -> &gst::Element {
        &self.r().rec
    }

    fn input(&mut self, kind: Kind) -> &mut Input {
        self.inputs[kind.idx()]
            .as_mut()
            .unwrap_or_else(|| panic!("no {} input", kind.name()))
    }

    /// STREAM_START (a new stream id), caps and `segment` on one pad.
    fn start(&mut self, kind: Kind, caps: &gst::Caps, segment: &Segment) {
        self.generation += 1;
        let id = format!("rig/{}/{}", kind.name(), self.generation);
        let inp = self.input(kind);
        inp.segment = segment.clone();
        let ok = inp
            .src
            .push_event(gst::event::StreamStart::builder(&id).build())
            && inp.src.push_event(gst::event::Caps::new(caps))
            && inp.src.push_event(gst::event::Segment::new(segment));
        assert!(
            ok,
            "the element refused STREAM_START, caps or segment on {}",
            kind.name()
        );
    }

    /// [`Rig::start`] with the usual H.264 / AAC caps and a segment from 0.
    fn start_plain(&mut self) {
        for kind in [Kind::Video, Kind::Audio] {
            if self.inputs[kind.idx()].is_some() {
                let caps = match kind {
                    Kind::Video => h264_320x240().caps.clone(),
                    Kind::Audio => aac().caps.clone(),
                };
                self.start(kind, &caps, &default_segment());
            }
        }
    }

    /// The pipeline's running time now, in ns.
    fn running_time(&self) -> u64 {
        let p = &self.r().pipeline;
        let clock = p.clock().expect("the pipeline has no clock");
        let base = p.base_time().expect("the pipeline has no base time");
        clock.time().saturating_sub(base).nseconds()
    }

    /// Pushes one buffer (in live mode, when the pipeline clock reaches its
    /// running time).
    fn push(&mut self, kind: Kind, buf: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let live = self.live;
        self.live_flag
            .store(live, std::sync::atomic::Ordering::SeqCst);
        let now = if live { self.running_time() as i64 } else { 0 };
        let inp = self.input(kind);
        if live && (buf.dts().is_some() || buf.pts().is_some()) {
            let t = key_time(&inp.segment, &buf);
            if t > now {
                std::thread::sleep(Duration::from_nanos((t - now) as u64));
            }
        }
        let pts = buf
            .pts()
            .and_then(|p| inp.segment.to_running_time_full(p))
            .map(|s| match s {
                gst::Signed::Positive(t) => secs(t.nseconds()),
                gst::Signed::Negative(t) => -secs(t.nseconds()),
            });
        let res = inp.src.push(buf);
        if res.is_ok() {
            inp.pushed += 1;
            if let Some(p) = pts {
                inp.pts.push(p);
            }
        }
        res
    }

    /// Pushes a timeline; any refused push fails the test.
    fn push_all(&mut self, items: Vec<(Kind, gst::Buffer)>) {
        for (kind, b) in items {
            if let Err(e) = self.push(kind, b) {
                panic!(
                    "pushing {} into the element failed: {e:?}; bus errors: {:?}",
                    kind.name(),
                    self.r().errors()
                );
            }
        }
    }

    fn push_kind(&mut self, kind: Kind, bufs: Vec<gst::Buffer>) {
        self.push_all(bufs.into_iter().map(|b| (kind, b)).collect());
    }

    fn eos(&mut self, kind: Kind) {
        let inp = self.input(kind);
        assert!(
            inp.src.push_event(gst::event::Eos::new()),
            "the element refused EOS on {}",
            kind.name()
        );
    }

    fn eos_all(&mut self) {
        for kind in [Kind::Video, Kind::Audio] {
            if self.inputs[kind.idx()].is_some() {
                self.eos(kind);
            }
        }
    }

    fn pushed(&self, kind: Kind) -> u64 {
        self.inputs[kind.idx()].as_ref().map_or(0, |i| i.pushed)
    }

    /// Running times (s) of the PTS of every buffer pushed on `kind`.
    fn input_pts(&self, kind: Kind) -> Vec<f64> {
        self.inputs[kind.idx()]
            .as_ref()
            .map_or(Vec::new(), |i| i.pts.clone())
    }

    /// Waits (at most 10 s) until the queue in front of `kind` is empty.
    fn wait_drained(&self, kind: Kind) -> bool {
        let Some(inp) = self.inputs[kind.idx()].as_ref() else {
            return true;
        };
        wait_for(Duration::from_secs(10), || {
            inp.queue.property::<u32>("current-level-buffers") == 0
        })
    }

    /// Releases the element's `kind` pad (after its queue drained), as an
    /// application that removes a source does. The input's counters stay.
    fn release(&mut self, kind: Kind) {
        assert!(
            self.wait_drained(kind),
            "the {} queue did not drain within 10 s",
            kind.name()
        );
        let rec = self.rec().clone();
        let inp = self.input(kind);
        let qsrc = inp.queue.static_pad("src").unwrap();
        let _ = qsrc.unlink(&inp.sink);
        rec.release_request_pad(&inp.sink);
    }

    /// Waits at most `timeout` for EOS or an error on the bus.
    fn wait_end(&self, timeout: Duration) -> Option<End> {
        let bus = self.r().pipeline.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )?;
        Some(match msg.view() {
            gst::MessageView::Error(e) => End::Error(format!(
                "{} ({})",
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            )),
            _ => End::Eos,
        })
    }

    /// EOS on the bus within `timeout`; an error or no EOS fails the test.
    fn expect_eos(&self, timeout: Duration, after: &str) {
        match self.wait_end(timeout) {
            Some(End::Eos) => {}
            Some(End::Error(e)) => panic!("pipeline failed: {e}"),
            None => panic!(
                "no EOS on the bus within {timeout:?} after {after}; messages: {}; errors: {:?}",
                summary(&self.r().messages()),
                self.r().errors()
            ),
        }
    }

    /// Stops the pipeline (NULL); fails the test if that takes more than
    /// `STOP_TIMEOUT`.
    fn stop(&self) -> Duration {
        let d = set_state_within(
            self.r().pipeline.upcast_ref(),
            gst::State::Null,
            STOP_TIMEOUT,
        )
        .unwrap_or_else(|e| {
            panic!(
                "stopping the recording: {e}; messages: {}",
                summary(&self.r().messages())
            )
        });
        eprintln!("stopping took {d:?}");
        d
    }

    /// Waits (at most `timeout`) until the element has taken every buffer
    /// pushed so far: the queues in front of it are empty. Stopping the
    /// pipeline drops what is still queued.
    fn wait_taken(&self, timeout: Duration) {
        let empty = || {
            self.inputs
                .iter()
                .flatten()
                .all(|i| i.queue.property::<u32>("current-level-buffers") == 0)
        };
        assert!(
            wait_for(timeout, empty),
            "the element did not take the buffers pushed within {timeout:?}; messages: {}",
            summary(&self.r().messages())
        );
    }

    /// Every frame pushed on both pads is recorded, each at its input PTS
    /// (minus one offset per file).
    fn expect_everything(&self) -> Expect {
        Expect {
            video: Some(self.pushed(Kind::Video)),
            audio: Some(self.pushed(Kind::Audio)),
            video_pts: Some(self.input_pts(Kind::Video)),
            audio_pts: Some(self.input_pts(Kind::Audio)),
            ..Default::default()
        }
    }

    fn stats(&self) -> gst::Structure {
        self.rec().property::<gst::Structure>("stats")
    }

    fn stat(&self, f: &str) -> u64 {
        let s = self.stats();
        s.get::<u64>(f)
            .or_else(|_| s.get::<u32>(f).map(u64::from))
            .or_else(|_| s.get::<i64>(f).map(|v| v as u64))
            .unwrap_or_else(|_| panic!("stats has no integer {f}: {s}"))
    }

    fn assert_no_errors(&self) {
        assert!(
            self.r().errors().is_empty(),
            "errors on the bus: {:#?}",
            self.r().errors()
        );
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let Some(r) = self.r.take() else { return };
        // Bounded: a deadlocked element must not hang the test process.
        match set_state_within(r.pipeline.upcast_ref(), gst::State::Null, STOP_TIMEOUT) {
            Ok(_) => {
                for inp in self.inputs.iter().flatten() {
                    let _ = inp.src.set_active(false);
                }
                drop(r);
            }
            Err(e) => {
                eprintln!("Rig drop: {e}; leaking the pipeline");
                std::mem::forget(r);
            }
        }
    }
}

// ================================================================== tests

/// Item 1: B-frames straight from `x264enc bframes=2 ! h264parse`, recorded
/// to MP4, FLV and HLS with cuts every 2 s. Every file, the first as the
/// others: keyframe first, PTS ≥ DTS, DTS increasing, nothing discarded,
/// every frame decodes, each frame at its input PTS minus the file's offset,
/// audio in sync.
#[test]
fn bframes_from_x264enc() {
    if in_child("bframes_from_x264enc", CHILD_TIMEOUT, &[]) {
        return;
    }
    let m = x264_bframes();
    eprintln!("x264enc output:\n{}", m.describe(8));
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+flv+hls");
        r.set_property("record-interval", 2u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start(Kind::Video, &m.caps, &m.segment);
    rig.start(Kind::Audio, &aac().caps, &default_segment());
    // Audio over the same running times as the video.
    let v0 = key_time(&m.segment, &m.bufs[0]).max(0) as f64 / 1e9;
    let items = interleave(
        m.bufs.clone(),
        &m.segment,
        audio(v0, 4.0),
        &default_segment(),
    );
    rig.push_all(items);
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    assert_recording(rig.r(), &["mp4", "flv", "hls"], &rig.expect_everything());
}

/// Item 1: B-frames after flvdemux (what `rtmp2src ! flvdemux` gives): the
/// segment starts at the first PTS, so the first DTS lie before the
/// segment start (negative running time). Same checks as above.
#[test]
fn bframes_after_flvdemux_dts_before_segment_start() {
    if in_child(
        "bframes_after_flvdemux_dts_before_segment_start",
        CHILD_TIMEOUT,
        &[],
    ) {
        return;
    }
    let (v, a) = flv_av();
    eprintln!("flvdemux video:\n{}", v.describe(8));
    eprintln!("flvdemux audio:\n{}", a.describe(2));
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+flv+hls");
        r.set_property("record-interval", 2u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start(Kind::Video, &v.caps, &v.segment);
    rig.start(Kind::Audio, &a.caps, &a.segment);
    let items = interleave(v.bufs.clone(), &v.segment, a.bufs.clone(), &a.segment);
    rig.push_all(items);
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    // Frames whose PTS lies before the segment start are outside it (the
    // first audio frames): only those may be missing.
    let inside = |kind| -> Vec<f64> {
        rig.input_pts(kind)
            .into_iter()
            .filter(|t| *t >= 0.0)
            .collect()
    };
    let (vin, ain) = (inside(Kind::Video), inside(Kind::Audio));
    eprintln!(
        "video {} pushed, {} inside the segment; audio {} pushed, {} inside",
        rig.pushed(Kind::Video),
        vin.len(),
        rig.pushed(Kind::Audio),
        ain.len()
    );
    assert_recording(
        rig.r(),
        &["mp4", "flv", "hls"],
        &Expect {
            video: Some(vin.len() as u64),
            audio: Some(ain.len() as u64),
            video_pts: Some(vin),
            audio_pts: Some(ain),
            ..Default::default()
        },
    );
}

/// Item 3, the body: 5 s of live video with a silent audio pad (`caps`:
/// whether the audio pad gets STREAM_START, caps and a segment), cut every
/// 2 s, then EOS on both pads. After a bounded wait the element records
/// video only, never an empty audio track: every MP4 and every HLS segment
/// is readable, has one video stream, and every video frame is recorded.
/// Files cut before the end (while audio was silent, not ended) count too.
fn silent_audio_pad(caps: bool) {
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 2u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    if caps {
        rig.start_plain();
    } else {
        rig.start(Kind::Video, &h264_320x240().caps, &default_segment());
    }
    rig.live = true;
    let t0 = secs(rig.running_time()) + 0.1;
    rig.push_kind(Kind::Video, video(t0, 5.0));
    rig.live = false;
    let before_eos = rig.r().closed().len();
    eprintln!("{before_eos} file(s) closed before EOS");
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    assert_recording(
        rig.r(),
        &["mp4", "hls"],
        &Expect {
            video: Some(rig.pushed(Kind::Video)),
            audio: Some(0),
            video_pts: Some(rig.input_pts(Kind::Video)),
            streams: Some(vec!["video"]),
            ..Default::default()
        },
    );
    assert!(
        before_eos >= 1,
        "no file was closed at the 2 s cuts during 5 s of video with a silent audio pad: {}",
        summary(&rig.r().messages())
    );
}

fn release_pad_mid_recording(released: Kind) {
    let kept = match released {
        Kind::Video => Kind::Audio,
        Kind::Audio => Kind::Video,
    };
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 3u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start_plain();
    let items = interleave(
        video(0.0, 4.0),
        &default_segment(),
        audio(0.0, 4.0),
        &default_segment(),
    );
    rig.push_all(items);
    rig.release(released);
    eprintln!("released the {} pad", released.name());
    let more = match kept {
        Kind::Video => video(4.0, 4.0),
        Kind::Audio => audio(4.0, 4.0),
    };
    rig.push_kind(kept, more);
    rig.eos(kept);
    rig.expect_eos(
        EOS_TIMEOUT,
        &format!(
            "EOS on the {} pad, the {} pad having been released",
            kept.name(),
            released.name()
        ),
    );
    rig.stop();
    rig.assert_no_errors();
    assert_recording(rig.r(), &["mp4", "hls"], &rig.expect_everything());
}

/// Item 6b: a location template without `{index}` at minute resolution,
/// cut every second: names collide, and each collision resolves with a
/// suffix in bounded time. Every file is there, distinct and correct.
#[test]
fn template_without_index_collisions_resolve() {
    if in_child(
        "template_without_index_collisions_resolve",
        Duration::from_secs(60),
        &[],
    ) {
        return;
    }
    let td = TestDir::new();
    let loc = format!(
        "{}/{{stream_id}}_{{start:%Y%m%d-%H%M}}",
        td.rec_dir().display()
    );
    let mut rig = Rig::at(&loc, &td.index_path(), true, true, |r| {
        r.set_property("record-interval", 1u32);
    });
    rig.start_plain();
    let items = interleave(
        video(0.0, 5.0),
        &default_segment(),
        audio(0.0, 5.0),
        &default_segment(),
    );
    let t = Instant::now();
    rig.push_all(items);
    rig.eos_all();
    rig.expect_eos(
        EOS_TIMEOUT,
        "EOS on both pads (5 cuts into colliding names)",
    );
    eprintln!("recorded in {:?}", t.elapsed());
    rig.stop();
    rig.assert_no_errors();
    let closed = closed_of(rig.r(), "mp4");
    let mut names: Vec<PathBuf> = closed.iter().map(|c| location(c)).collect();
    assert_eq!(names.len(), 5, "files: {names:?}");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 5, "two files closed under one name: {names:?}");
    for n in &names {
        let f = n.file_name().unwrap().to_string_lossy();
        assert!(
            f.starts_with("live_") && f.ends_with(".mp4"),
            "unexpected name {f}"
        );
    }
    assert_eq!(
        with_ext(&files_under(&td.rec_dir()), "mp4").len(),
        5,
        "files on disk: {:?}",
        files_under(&td.rec_dir())
    );
    assert_recording(
        rig.r(),
        &["mp4"],
        &Expect {
            video: Some(rig.pushed(Kind::Video)),
            audio: Some(rig.pushed(Kind::Audio)),
            ..Default::default()
        },
    );
}

// ------------------------------------------------------------ full disk

const TMPFS_ENV: &str = "LIVERECORD_TEST_TMPFS_DIR";

/// A small tmpfs mounted on a temp dir's `rec/` (the tests run as root),
/// unmounted on drop.
struct SmallDisk {
    td: TestDir,
    mounted: bool,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let td = TestDir::new();
        let rec = td.rec_dir();
        std::fs::create_dir_all(&rec).unwrap();
        let mut cmd = std::process::Command::new("mount");
        cmd.args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&rec);
        let out = run_bounded(cmd, Duration::from_secs(10), "mount (util-linux)");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} (the full-disk tests need root): {}",
            rec.display(),
            out.stderr
        );
        SmallDisk { td, mounted: true }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let rec = self.td.rec_dir();
            let mut cmd = std::process::Command::new("umount");
            cmd.arg(&rec);
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_bounded(cmd, Duration::from_secs(10), "umount")
                    .status
                    .success()
            }))
            .unwrap_or(false);
            if !ok {
                let mut cmd = std::process::Command::new("umount");
                cmd.arg("-l").arg(&rec);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_bounded(cmd, Duration::from_secs(10), "umount")
                }));
            }
        }
    }
}

/// Pushes one buffer into an input, without pacing (for use while the rig
/// is shared with a watcher thread).
fn rig_push(
    inputs: &[Option<Input>; 2],
    kind: Kind,
    buf: gst::Buffer,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    inputs[kind.idx()]
        .as_ref()
        .expect("no such input")
        .src
        .push(buf)
}

/// The temp dir the parent prepared (with the tmpfs on `rec/`).
fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var(TMPFS_ENV).expect("run by the parent test"))
}

/// Item 7, the body: records `formats` into a 200 kB tmpfs until it is
/// full. Then: an element error naming the path and the OS error; no file
/// opened after it; every indexed file readable; every other file on the
/// small disk is `NAME.EXT.broken` announced by `file-discarded`; nothing
/// unfinished or empty left.
fn full_disk(formats: &str) {
    let dir = child_dir();
    let rec_dir = dir.join("rec");
    let index = dir.join("index.jsonl");
    let location = format!("{}/{{stream_id}}_{{index}}", rec_dir.display());
    let mut rig = Rig::at(&location, &index, true, true, |r| {
        r.set_property_from_str("formats", formats);
        r.set_property("record-interval", 1u32);
        r.set_property("hls-segment-duration", 1u32);
    });
    rig.start_plain();
    let items = interleave(
        video(0.0, 10.0),
        &default_segment(),
        audio(0.0, 10.0),
        &default_segment(),
    );
    // A watcher notes the files opened when the first error is posted
    // (pushes go through a queue, so errors come on another thread). Late
    // by a few ms at most, so it can only under-count files opened after.
    let done = std::sync::atomic::AtomicBool::new(false);
    let opened_at_error = std::thread::scope(|scope| {
        let r = rig.r.as_ref().unwrap();
        let watcher = scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if !r.errors().is_empty() {
                    return Some(r.opened().len());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            (!r.errors().is_empty()).then(|| r.opened().len())
        });
        for (kind, b) in items {
            // Refused pushes are fine once the writer failed.
            let _ = rig_push(&rig.inputs, kind, b);
        }
        // Let the queues drain into the element.
        std::thread::sleep(Duration::from_secs(2));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().unwrap()
    });
    rig.eos_all();
    let _ = rig.wait_end(Duration::from_secs(5));
    rig.stop();
    let errors = rig.r().errors();
    let msgs = rig.r().messages();
    assert!(
        !errors.is_empty(),
        "no error on the bus while recording 10 s into a 200 kB disk; messages: {}",
        summary(&msgs)
    );
    let mut problems = Vec::new();
    let first = &errors[0];
    if !(first.contains("No space left") || first.contains("os error 28")) {
        problems.push(format!(
            "the first error does not name the OS error (ENOSPC): {first}"
        ));
    }
    if !first.contains(&rec_dir.display().to_string()) {
        problems.push(format!(
            "the first error does not name the file it failed to write (under {}): {first}",
            rec_dir.display()
        ));
    }
    let opened_end = rig.r().opened().len();
    if let Some(n) = opened_at_error {
        if opened_end > n {
            problems.push(format!(
                "{} file(s) opened after the write error ({n} before, {opened_end} at the end)",
                opened_end - n
            ));
        }
    }
    // Indexed files are readable.
    let records = if index.exists() {
        read_index(&index)
    } else {
        Vec::new()
    };
    let mut indexed = Vec::new();
    for rec in &records {
        let loc = PathBuf::from(rec_str(rec, "location"));
        let reason = rec_str(rec, "reason");
        if rec_str(rec, "format") == "hls" {
            let (pl, _, pr) = playlist_problems(&loc);
            problems.extend(pr.into_iter().map(|p| format!("indexed ({reason}): {p}")));
            if let Some(pl) = pl {
                indexed.extend(pl.segment_paths());
            }
        } else {
            let (_, pr) = file_problems(&loc);
            problems.extend(pr.into_iter().map(|p| format!("indexed ({reason}): {p}")));
        }
        indexed.push(loc);
    }
    // Every other file is NAME.EXT.broken, announced.
    let discarded: Vec<String> = msgs
        .iter()
        .filter(|m| m.name() == "liverecordsink-file-discarded")
        .filter_map(|m| m.get::<String>("location").ok())
        .collect();
    for f in files_under(&rec_dir) {
        if indexed.contains(&f) {
            continue;
        }
        let s = f.display().to_string();
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        if !s.ends_with(".broken") {
            problems.push(format!(
                "{s} ({len} bytes) is neither indexed nor kept as .broken"
            ));
        } else {
            if len == 0 {
                problems.push(format!("{s} is an empty .broken file (should be deleted)"));
            }
            let plain = s.trim_end_matches(".broken");
            if !discarded.iter().any(|d| d == &s || d == plain) {
                problems.push(format!("{s} was not announced with file-discarded"));
            }
        }
    }
    problems.extend(
        leftovers(&rec_dir)
            .into_iter()
            .map(|l| format!("left: {l}")),
    );
    assert!(
        problems.is_empty(),
        "after a full disk ({} file(s) opened before the error, {opened_end} in all):\n  {}\nerrors: {errors:#?}\nmessages: {}\nfiles: {:?}",
        opened_at_error.map_or("?".into(), |n| n.to_string()),
        problems.join("\n  "),
        summary(&msgs),
        files_under(&rec_dir)
    );
}

fn full_disk_parent(name: &str) -> bool {
    if std::env::var(TMPFS_ENV).is_ok() {
        return false;
    }
    let disk = SmallDisk::new("200k");
    let ran = in_child(
        name,
        CHILD_TIMEOUT,
        &[(TMPFS_ENV, disk.td.path().display().to_string())],
    );
    drop(disk);
    ran
}

/// Item 8: a source that steps back 1 s (less than `interruption-gap`):
/// within every file DTS never decreases (MP4 and HLS), the playlist's
/// duration matches its media, and frames that were dropped are counted in
/// `stats` (frames recorded + frames-dropped = frames pushed).
#[test]
fn backward_jump_smaller_than_gap() {
    if in_child("backward_jump_smaller_than_gap", CHILD_TIMEOUT, &[]) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 60u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start_plain();
    let seg = default_segment();
    rig.push_all(interleave(video(0.0, 5.0), &seg, audio(0.0, 5.0), &seg));
    rig.push_all(interleave(video(4.0, 4.0), &seg, audio(4.0, 4.0), &seg));
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    let dropped = rig.stat("frames-dropped");
    rig.stop();
    rig.assert_no_errors();
    let mut problems = recording_problems(rig.r(), &["mp4", "hls"], &Expect::default());
    let mp4 = closed_of(rig.r(), "mp4");
    let (mut v, mut a) = (0, 0);
    for c in &mp4 {
        if let Ok(p) = probe(&location(c)) {
            v += p.stored("video");
            a += p.stored("audio");
        }
    }
    let pushed = rig.pushed(Kind::Video) + rig.pushed(Kind::Audio);
    if v + a + dropped != pushed {
        problems.push(format!(
            "mp4: {v} video + {a} audio frames recorded + {dropped} frames-dropped in stats != {pushed} pushed"
        ));
    }
    for c in closed_of(rig.r(), "hls") {
        let loc = location(&c);
        if let Ok(pl) = std::panic::catch_unwind(|| common::hls_check::parse_playlist(&loc)) {
            let (d, _, _) = ffprobe_playlist(&loc);
            if (d - pl.duration()).abs() > 0.1 {
                problems.push(format!(
                    "{}: EXTINF sum {:.3} s, media {d:.3} s",
                    loc.display(),
                    pl.duration()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) after a 1 s backward jump:\n  {}\nmessages: {}",
        problems.len(),
        problems.join("\n  "),
        summary(&rig.r().messages())
    );
}

/// Item 9: zero-length buffers on the audio pad (one before every 5th AAC
/// frame) are dropped before the muxers and counted: HLS segments and MP4
/// decode without a word, every real frame is recorded.
#[test]
fn zero_length_audio_buffers_are_dropped() {
    if in_child("zero_length_audio_buffers_are_dropped", CHILD_TIMEOUT, &[]) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 4u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start_plain();
    let mut a = Vec::new();
    let mut empties = 0u64;
    for (i, b) in audio(0.0, 8.0).into_iter().enumerate() {
        if i % 5 == 2 {
            let mut e = gst::Buffer::new();
            {
                let e = e.get_mut().unwrap();
                e.set_pts(b.pts());
                e.set_dts(b.dts());
            }
            a.push(e);
            empties += 1;
        }
        a.push(b);
    }
    let seg = default_segment();
    rig.push_all(interleave(video(0.0, 8.0), &seg, a, &seg));
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    let dropped = rig.stat("frames-dropped");
    rig.stop();
    rig.assert_no_errors();
    let real_audio = rig.pushed(Kind::Audio) - empties;
    let mut problems = recording_problems(
        rig.r(),
        &["mp4", "hls"],
        &Expect {
            video: Some(rig.pushed(Kind::Video)),
            audio: Some(real_audio),
            ..Default::default()
        },
    );
    if dropped < empties {
        problems.push(format!(
            "stats frames-dropped = {dropped}, but {empties} zero-length buffers were pushed"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with zero-length audio buffers:\n  {}\nmessages: {}",
        problems.len(),
        problems.join("\n  "),
        summary(&rig.r().messages())
    );
}

/// Item 11: a keyframe 16 ms early (4.984 s, tsdemux jitter) on a 5 s
/// record interval and a 5 s HLS segment duration is the cut (half-frame
/// tolerance), not the keyframe one GOP later.
#[test]
fn keyframe_just_before_interval_cuts() {
    if in_child("keyframe_just_before_interval_cuts", CHILD_TIMEOUT, &[]) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 5u32);
        r.set_property("hls-segment-duration", 5u32);
    });
    rig.start_plain();
    let mut v = video(0.0, 8.0);
    assert!(
        !v[150].flags().contains(gst::BufferFlags::DELTA_UNIT),
        "frame 150 is not a keyframe"
    );
    let early = gst::ClockTime::from_nseconds(4_984_000_000);
    {
        let prev_pts = v[149].pts().unwrap();
        let next_pts = v[151].pts().unwrap();
        v[149].make_mut().set_duration(early - prev_pts);
        let b = v[150].make_mut();
        b.set_pts(early);
        b.set_dts(early);
        b.set_duration(next_pts - early);
    }
    let seg = default_segment();
    rig.push_all(interleave(v, &seg, audio(0.0, 8.0), &seg));
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    let mut problems = recording_problems(
        rig.r(),
        &["mp4", "hls"],
        &Expect {
            video: Some(rig.pushed(Kind::Video)),
            audio: Some(rig.pushed(Kind::Audio)),
            ..Default::default()
        },
    );
    let mp4 = closed_of(rig.r(), "mp4");
    let first = mp4.first().map(|c| get_u64(c, "video-frames"));
    if first != Some(150) {
        problems.push(format!(
            "the first MP4 holds {first:?} video frames: want 150 (cut at the keyframe at 4.984 s)"
        ));
    }
    if let Some(h) = closed_of(rig.r(), "hls").first() {
        let pl = common::hls_check::parse_playlist(&location(h));
        if let Some(s) = pl.segments.first() {
            let n = probe(&s.path).map(|p| p.video().len()).unwrap_or(0);
            if n != 150 {
                problems.push(format!(
                    "the first HLS segment holds {n} video frames (EXTINF {}): want 150",
                    s.extinf
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}\nmessages: {}",
        problems.len(),
        problems.join("\n  "),
        summary(&rig.r().messages())
    );
}

/// Item 11: `record-interval=0`, an out-of-range `record-interval=7201`
/// and `interruption-gap=0`, given as strings (as gst-launch does): each is
/// either refused with a clear error naming the property when the element
/// goes to PAUSED, or accepted with a meaning documented in the property's
/// description (`0 = …`). Silently keeping the default is neither.
#[test]
fn zero_and_out_of_range_values_are_errors_or_documented() {
    if in_child(
        "zero_and_out_of_range_values_are_errors_or_documented",
        CHILD_TIMEOUT,
        &[],
    ) {
        return;
    }
    init();
    let td = TestDir::new();
    let mut problems = Vec::new();
    for (prop, value) in [
        ("record-interval", "0"),
        ("record-interval", "7201"),
        ("interruption-gap", "0"),
    ] {
        // As gst-launch-1.0 sets it: from a string, in a launch line.
        let parsed = gst::parse::launch(&format!(
            "liverecordsink name=rec {prop}={value} location=\"{}\" index-location=\"{}\"",
            td.default_location(),
            td.index_path().display()
        ));
        let parsed = match parsed {
            Ok(p) => p,
            // Refusing the value in the launch line, naming it, is clear.
            Err(e) if e.to_string().contains(prop) => {
                eprintln!("{prop}={value}: refused by the launch line: {e}");
                continue;
            }
            Err(e) => {
                problems.push(format!(
                    "a launch line with {prop}={value} fails without naming {prop}: {e}"
                ));
                continue;
            }
        };
        // A launch line of one element gives the element itself.
        let (pipeline, rec) = match parsed.downcast::<gst::Pipeline>() {
            Ok(p) => {
                let rec = p.by_name("rec").unwrap();
                (p, rec)
            }
            Err(e) => {
                let p = gst::Pipeline::new();
                p.add(&e).unwrap();
                (p, e)
            }
        };
        let _pad = rec.request_pad_simple("video");
        let read_back = rec.property_value(prop).get::<u32>().unwrap().to_string();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let res = set_state_within(pipeline.upcast_ref(), gst::State::Paused, STOP_TIMEOUT);
        let bus = pipeline.bus().unwrap();
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = m.view() {
                errors.lock().unwrap().push(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
        }
        let state = pipeline.current_state();
        let _ = set_state_within(pipeline.upcast_ref(), gst::State::Null, STOP_TIMEOUT);
        let errors = errors.lock().unwrap().clone();
        let refused = state < gst::State::Paused && errors.iter().any(|e| e.contains(prop));
        let blurb = rec
            .find_property(prop)
            .and_then(|p| p.blurb().map(|b| b.to_string()))
            .unwrap_or_default();
        eprintln!(
            "{prop}={value}: reads back {read_back}, PAUSED: {res:?} -> {state:?}, errors {errors:?}"
        );
        if refused {
            continue;
        }
        if read_back != value {
            problems.push(format!(
                "{prop}={value} was silently ignored: it reads back {read_back} and PAUSED gave no error naming {prop} (errors: {errors:?})"
            ));
        } else if value == "0" && !(blurb.contains("0 =") || blurb.contains("0 means")) {
            problems.push(format!(
                "{prop}=0 is accepted without an error, but its description does not say what 0 means: {blurb:?}"
            ));
        } else if value != "0" {
            problems.push(format!(
                "{prop}={value} is outside the documented range and was accepted without an error"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Item 2: ADTS audio (`stream-format=adts`, as aacparse gives it after
/// tsdemux) whose pad gets STREAM_START, caps and segment only 1 s after
/// video started. The writers must follow the caps received: no error, every
/// audio frame recorded in MP4, FLV and HLS.
#[test]
fn adts_audio_caps_after_video_started() {
    if in_child("adts_audio_caps_after_video_started", CHILD_TIMEOUT, &[]) {
        return;
    }
    adts();
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+flv+hls");
        r.set_property("record-interval", 2u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    rig.start(Kind::Video, &h264_320x240().caps, &default_segment());
    // 1 s of video alone: the files open without audio caps.
    let v = video(0.0, 5.0);
    let (first, rest) = v.split_at(30);
    rig.push_kind(Kind::Video, first.to_vec());
    rig.start(Kind::Audio, &adts().caps, &default_segment());
    let items = interleave(
        rest.to_vec(),
        &default_segment(),
        adts_audio(1.0, 4.0),
        &default_segment(),
    );
    rig.push_all(items);
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    assert_recording(rig.r(), &["mp4", "flv", "hls"], &rig.expect_everything());
}

/// Item 4: audio stops at 2 s without EOS while video goes on to 16 s,
/// live, into one MP4 (record-interval=60) and HLS segments of 2 s. Video
/// keeps entering the element (the muxers must not wait for the stopped
/// audio: they may hold 10 s), no file is opened beyond the one MP4 and the
/// one playlist, and stopping returns within 10 s. Every file is readable
/// and decodes, without empty audio tracks.
#[test]
fn audio_stops_without_eos_video_goes_on() {
    if in_child("audio_stops_without_eos_video_goes_on", CHILD_TIMEOUT, &[]) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 60u32);
        r.set_property("hls-segment-duration", 2u32);
    });
    let entered = rig.r().count_pad("video");
    rig.start_plain();
    rig.live = true;
    let t0 = secs(rig.running_time()) + 0.1;
    let items = interleave(
        video(t0, 16.0),
        &default_segment(),
        audio(t0, 2.0),
        &default_segment(),
    );
    rig.push_all(items);
    // What entered the element by the time the last frame was pushed (the
    // queue in front of it is unbounded and never blocks the test).
    std::thread::sleep(Duration::from_millis(300));
    let pushed = rig.pushed(Kind::Video);
    let inside = entered.count();
    let opened_mp4 = rig
        .r()
        .opened()
        .iter()
        .filter(|o| get_str(o, "format") == "mp4")
        .count();
    eprintln!("video pushed {pushed}, entered the element {inside}; mp4 files opened {opened_mp4}");
    let stop = set_state_within(
        rig.r().pipeline.upcast_ref(),
        gst::State::Null,
        STOP_TIMEOUT,
    );
    assert!(
        inside + 15 >= pushed,
        "video stalled in front of the element after audio stopped: {inside} of {pushed} frames \
         entered it (0.3 s after the last push); stopping: {stop:?}; messages: {}",
        summary(&rig.r().messages())
    );
    let stop = stop.unwrap_or_else(|e| panic!("after audio stopped without EOS: {e}"));
    eprintln!("stopping took {stop:?}");
    assert!(
        opened_mp4 <= 1,
        "{opened_mp4} MP4 files opened for 16 s of media with record-interval=60: {}",
        summary(&rig.r().messages())
    );
    rig.assert_no_errors();
    assert_recording(
        rig.r(),
        &["mp4", "hls"],
        &Expect {
            min_video: Some(pushed.saturating_sub(30)),
            audio: Some(rig.pushed(Kind::Audio)),
            ..Default::default()
        },
    );
    assert!(
        leftovers(&td.rec_dir()).is_empty(),
        "unfinished files: {:?}",
        leftovers(&td.rec_dir())
    );
}

/// Item 5: `release_request_pad` on the audio pad at 4 s, video goes on to
/// 8 s, then EOS: EOS reaches the bus, every frame pushed is recorded.
#[test]
fn release_audio_pad_while_recording() {
    if in_child("release_audio_pad_while_recording", CHILD_TIMEOUT, &[]) {
        return;
    }
    release_pad_mid_recording(Kind::Audio);
}

/// Item 5: the same with the video pad released; audio records on.
#[test]
fn release_video_pad_while_recording() {
    if in_child("release_video_pad_while_recording", CHILD_TIMEOUT, &[]) {
        return;
    }
    release_pad_mid_recording(Kind::Video);
}

/// Item 3: the audio pad declares AAC (caps, segment) and sends nothing.
#[test]
fn silent_audio_pad_with_caps_records_video_only() {
    if in_child(
        "silent_audio_pad_with_caps_records_video_only",
        CHILD_TIMEOUT,
        &[],
    ) {
        return;
    }
    silent_audio_pad(true);
}

/// Item 3: the audio pad is linked and gets nothing at all, not even caps
/// (a source that announces audio and never sends it).
#[test]
fn silent_audio_pad_without_caps_records_video_only() {
    if in_child(
        "silent_audio_pad_without_caps_records_video_only",
        CHILD_TIMEOUT,
        &[],
    ) {
        return;
    }
    silent_audio_pad(false);
}

/// Item 6: an audio buffer without timestamps, then video goes on (12 s,
/// more than a muxer may hold while it waits for audio): an element error
/// naming the problem, then stopping (READY, then NULL) returns within 10 s
/// each, no `.part` is left, and every indexed file is readable.
#[test]
fn untimestamped_buffer_error_then_stop_returns() {
    if in_child(
        "untimestamped_buffer_error_then_stop_returns",
        CHILD_TIMEOUT,
        &[],
    ) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property("record-interval", 60u32);
    });
    rig.start_plain();
    let seg = default_segment();
    rig.push_all(interleave(video(0.0, 2.0), &seg, audio(0.0, 2.0), &seg));
    let mut bad = aac().frames[0].copy();
    {
        let b = bad.get_mut().unwrap();
        b.set_pts(gst::ClockTime::NONE);
        b.set_dts(gst::ClockTime::NONE);
        b.set_duration(gst::ClockTime::NONE);
    }
    let _ = rig.push(Kind::Audio, bad);
    // Video goes on, as from a live source (the queue in front of the
    // element takes it all).
    for b in video(2.0, 12.0) {
        let _ = rig.push(Kind::Video, b);
    }
    let got_error = wait_for(Duration::from_secs(5), || !rig.r().errors().is_empty());
    // Give the element time to take what video it can.
    std::thread::sleep(Duration::from_millis(500));
    let ready = set_state_within(
        rig.r().pipeline.upcast_ref(),
        gst::State::Ready,
        STOP_TIMEOUT,
    );
    let null = ready.as_ref().ok().map(|_| {
        set_state_within(
            rig.r().pipeline.upcast_ref(),
            gst::State::Null,
            STOP_TIMEOUT,
        )
    });
    assert!(
        got_error,
        "no element error within 5 s of an audio buffer without timestamps; messages: {}",
        summary(&rig.r().messages())
    );
    let errors = rig.r().errors();
    assert!(
        errors.iter().any(|e| e.contains("timestamp")),
        "the error does not say what is wrong (no timestamp): {errors:?}"
    );
    let ready = ready.unwrap_or_else(|e| {
        panic!(
            "after the element error: {e}; errors: {errors:?}; messages: {}",
            summary(&rig.r().messages())
        )
    });
    eprintln!("READY took {ready:?}");
    match null {
        Some(Err(e)) => panic!("after READY: {e}"),
        Some(Ok(d)) => eprintln!("NULL took {d:?}"),
        None => {}
    }
    let left = leftovers(&td.rec_dir());
    assert!(left.is_empty(), "unfinished files after stopping: {left:?}");
    // Every indexed file is readable.
    let mut problems = Vec::new();
    if td.index_path().exists() {
        for rec in read_index(&td.index_path()) {
            let loc = PathBuf::from(rec_str(&rec, "location"));
            if rec_str(&rec, "format") == "hls" {
                problems.extend(playlist_problems(&loc).2);
            } else {
                problems.extend(file_problems(&loc).1);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "indexed files with problems:\n  {}",
        problems.join("\n  ")
    );
}

/// Item 10: `eos-action=interrupt`: EOS on the pads (a publisher that
/// left) closes the MP4 at once, is not forwarded as EOS on the bus; a new
/// STREAM_START with data (the source restarted, timestamps from 0) opens a
/// new MP4 and continues the same HLS playlist after a discontinuity
/// (within `hls-resume-timeout`); `stats.interruptions` counts the EOS.
#[test]
fn eos_action_interrupt() {
    if in_child("eos_action_interrupt", CHILD_TIMEOUT, &[]) {
        return;
    }
    init();
    let probe_elem = gst::ElementFactory::make("liverecordsink").build().unwrap();
    let pspec = probe_elem.find_property("eos-action").unwrap_or_else(|| {
        panic!("liverecordsink has no eos-action property (SPEC §3: enum finish|interrupt)")
    });
    drop(pspec);
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+hls");
        r.set_property_from_str("eos-action", "interrupt");
        r.set_property("record-interval", 60u32);
        r.set_property("hls-segment-duration", 2u32);
        r.set_property("hls-resume-timeout", 10u32);
    });
    rig.start_plain();
    let seg = default_segment();
    rig.push_all(interleave(video(0.0, 3.0), &seg, audio(0.0, 3.0), &seg));
    let first = (rig.pushed(Kind::Video), rig.pushed(Kind::Audio));
    let t = Instant::now();
    rig.eos_all();
    let closed = wait_for(Duration::from_secs(2), || {
        !closed_of(rig.r(), "mp4").is_empty()
    });
    eprintln!("mp4 closed {closed} after {:?}", t.elapsed());
    let end = rig.wait_end(Duration::from_secs(2));
    assert!(
        closed,
        "with eos-action=interrupt, EOS on the pads did not close the MP4 within 2 s: {}",
        summary(&rig.r().messages())
    );
    assert!(
        end.is_none(),
        "with eos-action=interrupt, EOS on the pads reached the bus as {end:?}"
    );
    let reason = get_str(&closed_of(rig.r(), "mp4")[0], "reason");
    assert!(
        reason == "interrupted" || reason == "eos",
        "first MP4 closed with reason {reason}"
    );
    // The source restarts: new STREAM_START, timestamps from 0.
    rig.start_plain();
    rig.push_all(interleave(video(0.0, 3.0), &seg, audio(0.0, 3.0), &seg));
    let second = (
        rig.pushed(Kind::Video) - first.0,
        rig.pushed(Kind::Audio) - first.1,
    );
    wait_messages(
        rig.r(),
        "liverecordsink-file-opened",
        3,
        Duration::from_secs(5),
    );
    rig.wait_taken(Duration::from_secs(10));
    let interruptions = rig.stat("interruptions");
    rig.stop();
    rig.assert_no_errors();
    let mut problems = recording_problems(
        rig.r(),
        &["mp4", "hls"],
        &Expect {
            video: Some(rig.pushed(Kind::Video)),
            audio: Some(rig.pushed(Kind::Audio)),
            ..Default::default()
        },
    );
    let mp4 = closed_of(rig.r(), "mp4");
    let per_file: Vec<(u64, u64)> = mp4
        .iter()
        .map(|c| (get_u64(c, "video-frames"), get_u64(c, "audio-frames")))
        .collect();
    if per_file != [first, second] {
        problems.push(format!(
            "mp4 frames per file {per_file:?}, want {:?}",
            [first, second]
        ));
    }
    let hls = closed_of(rig.r(), "hls");
    if hls.len() != 1 {
        problems.push(format!(
            "{} HLS playlists, want one resumed playlist",
            hls.len()
        ));
    } else {
        let pl = common::hls_check::parse_playlist(&location(&hls[0]));
        if pl.discontinuities() != 1 {
            problems.push(format!(
                "{} discontinuities in the playlist, want 1:\n{}",
                pl.discontinuities(),
                pl.text
            ));
        }
    }
    if interruptions != 1 {
        problems.push(format!(
            "stats interruptions = {interruptions}, want 1 (the EOS)"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with eos-action=interrupt:\n  {}\nmessages: {}",
        problems.len(),
        problems.join("\n  "),
        summary(&rig.r().messages())
    );
}

/// Item 7: HLS into a full disk: no orphaned segment, no `.m3u8.tmp`.
#[test]
fn full_disk_hls() {
    if full_disk_parent("full_disk_hls") {
        return;
    }
    full_disk("hls");
}

/// Item 7: MP4 into a full disk.
#[test]
fn full_disk_mp4() {
    if full_disk_parent("full_disk_mp4") {
        return;
    }
    full_disk("mp4");
}

/// Item 1: video buffers without a duration (common from demuxers and
/// RTP): the last frame of every MP4 must not be discarded; every frame of
/// every file decodes.
#[test]
fn video_without_duration() {
    if in_child("video_without_duration", CHILD_TIMEOUT, &[]) {
        return;
    }
    let td = TestDir::new();
    let mut rig = Rig::new(&td, true, true, |r| {
        r.set_property_from_str("formats", "mp4+flv");
        r.set_property("record-interval", 2u32);
    });
    rig.start_plain();
    let mut v = video(0.0, 5.0);
    for b in &mut v {
        b.make_mut().set_duration(gst::ClockTime::NONE);
    }
    let items = interleave(v, &default_segment(), audio(0.0, 5.0), &default_segment());
    rig.push_all(items);
    rig.eos_all();
    rig.expect_eos(EOS_TIMEOUT, "EOS on both pads");
    rig.stop();
    rig.assert_no_errors();
    assert_recording(rig.r(), &["mp4", "flv"], &rig.expect_everything());
}
