// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading MP4 files without decoding: `filesrc ! qtdemux ! appsink` per
//! stream. [`probe`] reads only the header (streams, caps, duration);
//! [`Reader`] hands out every frame in file order, with its timestamps as
//! running time (so the edit list that mp4mux writes for a stream that
//! starts late is applied).
//!
//! Every wait is bounded: a pipeline that neither produces nor fails within
//! [`STALL`] is an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::error::{Error, Result};

/// How long a pipeline may go without progress before it is an error.
pub const STALL: Duration = Duration::from_secs(30);

/// The two kinds of streams the app handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video = 0,
    Audio = 1,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }

    fn of_pad(name: &str) -> Option<Kind> {
        if name.starts_with("video") {
            Some(Kind::Video)
        } else if name.starts_with("audio") {
            Some(Kind::Audio)
        } else {
            None
        }
    }
}

/// What [`probe`] found in a file.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Caps of the first video and audio stream, by [`Kind`].
    pub caps: [Option<gst::Caps>; 2],
    /// Media duration in ns, if the demuxer knows it.
    pub duration: Option<u64>,
}

impl Probe {
    pub fn has(&self, k: Kind) -> bool {
        self.caps[k as usize].is_some()
    }
}

/// One compressed frame, timestamps in running time (ns, may be negative
/// for a DTS before the start).
pub struct Frame {
    pub kind: Kind,
    pub buffer: gst::Buffer,
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub key: bool,
}

enum Item {
    Frame(Frame),
    Eos(Kind),
}

fn signed_ns(v: Option<gst::Signed<gst::ClockTime>>) -> Option<i64> {
    match v? {
        gst::Signed::Positive(t) => i64::try_from(t.nseconds()).ok(),
        gst::Signed::Negative(t) => i64::try_from(t.nseconds()).ok().map(|n| -n),
    }
}

fn frame_of(kind: Kind, sample: &gst::Sample) -> Option<Frame> {
    let buffer = sample.buffer_owned()?;
    let seg = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())?;
    let pts = signed_ns(buffer.pts().and_then(|t| seg.to_running_time_full(t)));
    let dts = signed_ns(buffer.dts().and_then(|t| seg.to_running_time_full(t)));
    let (pts, dts) = match (pts, dts) {
        (Some(p), Some(d)) => (p, d),
        (Some(p), None) => (p, p),
        (None, Some(d)) => (d, d),
        (None, None) => return None,
    };
    let duration = buffer
        .duration()
        .map_or(0, |d| i64::try_from(d.nseconds()).unwrap_or(0));
    let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    Some(Frame {
        kind,
        buffer,
        pts,
        dts,
        duration,
        key,
    })
}

/// Fails with the package to install if an element is missing.
pub fn require(factory: &str) -> Result<()> {
    if gst::ElementFactory::find(factory).is_some() {
        return Ok(());
    }
    let pkg = match factory {
        "qtdemux" | "mp4mux" | "flvmux" => "gstreamer1.0-plugins-good",
        "appsrc" | "appsink" => "gstreamer1.0-plugins-base",
        _ => "gstreamer1.0-plugins-base and -good",
    };
    Err(Error::failed(format!(
        "the GStreamer element {factory} is missing: apt-get install {pkg}"
    )))
}

fn make(factory: &str) -> Result<gst::Element> {
    require(factory)?;
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| Error::failed(format!("cannot create {factory}: {e}")))
}

/// The first error on a bus, as text, if any.
pub fn bus_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(match e.debug() {
            Some(d) => format!("{} ({d})", e.error()),
            None => e.error().to_string(),
        }),
        _ => None,
    }
}

/// `filesrc ! qtdemux`, each wanted stream to an appsink whose samples go
/// to `tx`; other streams to fakesinks.
struct Demux {
    pipeline: gst::Pipeline,
    qtdemux: gst::Element,
    /// The qtdemux pads linked to appsinks.
    pads: Arc<Mutex<Vec<(Kind, gst::Pad)>>>,
    /// Set when qtdemux has added all its pads.
    all_pads: Arc<AtomicBool>,
}

/// With `tx` `None` (a probe), every stream goes to a fakesink: nothing
/// waits on a channel, so stopping the pipeline never blocks.
fn demux(path: &Path, want: [bool; 2], tx: Option<SyncSender<Item>>) -> Result<Demux> {
    gst::init().map_err(|e| Error::failed(format!("cannot initialise GStreamer: {e}")))?;
    for f in ["filesrc", "qtdemux", "appsink", "fakesink"] {
        require(f)?;
    }
    let pipeline = gst::Pipeline::new();
    let src = make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let qtdemux = make("qtdemux")?;
    pipeline
        .add_many([&src, &qtdemux])
        .and_then(|()| src.link(&qtdemux))
        .map_err(|e| Error::failed(format!("cannot build the reader: {e}")))?;
    let pads: Arc<Mutex<Vec<(Kind, gst::Pad)>>> = Arc::new(Mutex::new(Vec::new()));
    let all_pads = Arc::new(AtomicBool::new(false));
    let flag = all_pads.clone();
    qtdemux.connect_no_more_pads(move |_| flag.store(true, Ordering::SeqCst));
    let weak = pipeline.downgrade();
    let pads2 = pads.clone();
    qtdemux.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let kind = Kind::of_pad(&pad.name());
        let Ok(mut pads) = pads2.lock() else {
            return;
        };
        let taken = |k: Kind| pads.iter().any(|(kk, _)| *kk == k);
        let sink: gst::Element = match (kind, &tx) {
            (Some(k), None) if !taken(k) => {
                pads.push((k, pad.clone()));
                match gst::ElementFactory::make("fakesink")
                    .property("sync", false)
                    .build()
                {
                    Ok(s) => s,
                    Err(_) => return,
                }
            }
            (Some(k), Some(tx)) if want[k as usize] && !taken(k) => {
                let appsink = gst_app::AppSink::builder().sync(false).build();
                // No preroll: qtdemux has one streaming thread, which a
                // prerolling sink would block before the other sink gets
                // data (B-frame files start with a DTS before zero).
                appsink.set_property("async", false);
                let tx_sample = tx.clone();
                let tx_eos = tx.clone();
                appsink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |s| {
                            let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            let Some(frame) = frame_of(k, &sample) else {
                                return Err(gst::FlowError::Error);
                            };
                            tx_sample
                                .send(Item::Frame(frame))
                                .map_err(|_| gst::FlowError::Flushing)?;
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .eos(move |_| {
                            let _ = tx_eos.send(Item::Eos(k));
                        })
                        .build(),
                );
                pads.push((k, pad.clone()));
                appsink.upcast()
            }
            _ => match gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
            {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        if pipeline.add(&sink).is_err() {
            return;
        }
        if let Some(sinkpad) = sink.static_pad("sink") {
            let _ = pad.link(&sinkpad);
        }
        let _ = sink.sync_state_with_parent();
    });
    Ok(Demux {
        pipeline,
        qtdemux,
        pads,
        all_pads,
    })
}

fn input_error(path: &Path, what: &str) -> Error {
    Error::input(format!("cannot read {}: {what}", path.display()))
}

/// Reads the header of an MP4 file: its streams, their caps and the
/// duration. Bounded by [`STALL`].
pub fn probe(path: &Path) -> Result<Probe> {
    let d = demux(path, [true, true], None)?;
    let result = (|| {
        d.pipeline
            .set_state(gst::State::Paused)
            .map_err(|_| input_error(path, "not a readable MP4 file"))?;
        let bus = d
            .pipeline
            .bus()
            .ok_or_else(|| input_error(path, "no bus"))?;
        let deadline = Instant::now() + STALL;
        // The sinks are added with the pads, after the pipeline reached
        // PAUSED: no ASYNC_DONE to wait for; wait for no-more-pads.
        while !d.all_pads.load(Ordering::SeqCst) {
            if let Some(e) = bus_error(&bus) {
                return Err(input_error(path, &e));
            }
            if Instant::now() > deadline {
                return Err(input_error(path, "timed out reading the header"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // qtdemux sets each pad's caps before adding it. (Waiting for
        // the appsinks to preroll would not work: qtdemux has one streaming
        // thread, which the first prerolled sink blocks.)
        let pads = d
            .pads
            .lock()
            .map_err(|_| input_error(path, "lock poisoned"))?
            .clone();
        let mut caps: [Option<gst::Caps>; 2] = [None, None];
        for (k, pad) in &pads {
            caps[*k as usize] = pad.current_caps();
        }
        if caps.iter().all(Option::is_none) {
            return Err(input_error(path, "no video or audio stream"));
        }
        let duration = d
            .qtdemux
            .query_duration::<gst::ClockTime>()
            .map(|t| t.nseconds());
        Ok(Probe { caps, duration })
    })();
    let _ = d.pipeline.set_state(gst::State::Null);
    result
}

/// Every frame of the wanted streams of a file, in file order.
pub struct Reader {
    path: PathBuf,
    pipeline: gst::Pipeline,
    rx: Option<Receiver<Item>>,
    /// Streams that have not reached EOS yet.
    open: [bool; 2],
}

impl Reader {
    /// Starts reading the streams `want` (by [`Kind`]), which the file must have.
    pub fn open(path: &Path, want: [bool; 2]) -> Result<Reader> {
        let (tx, rx) = mpsc::sync_channel(64);
        let d = demux(path, want, Some(tx))?;
        let r = Reader {
            path: path.to_owned(),
            pipeline: d.pipeline,
            rx: Some(rx),
            open: want,
        };
        r.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| input_error(path, "not a readable MP4 file"))?;
        Ok(r)
    }

    /// Whether stream `k` has ended (or was not wanted).
    pub fn ended(&self, k: Kind) -> bool {
        !self.open[k as usize]
    }

    /// The next frame, or `None` when every stream has ended.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let deadline = Instant::now() + STALL;
        let bus = self.pipeline.bus();
        loop {
            if !self.open.iter().any(|o| *o) {
                return Ok(None);
            }
            let Some(rx) = &self.rx else {
                return Ok(None);
            };
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Item::Frame(f)) => return Ok(Some(f)),
                Ok(Item::Eos(k)) => self.open[k as usize] = false,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(e) = bus.as_ref().and_then(bus_error) {
                        return Err(input_error(&self.path, &e));
                    }
                    if Instant::now() > deadline {
                        return Err(Error::failed(format!(
                            "reading {} stalled for {} s",
                            self.path.display(),
                            STALL.as_secs()
                        )));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(input_error(&self.path, "the reader stopped"))
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Unblock a streaming thread waiting to send, then stop.
        self.rx = None;
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The caps fields that decide whether two files can go into one output
/// without a caps change: the codec, its stream format, its configuration
/// (codec data) and the picture size or sample layout. Frame rate, profile
/// and level strings are left out (qtdemux derives them per file).
pub fn compat_key(caps: &gst::CapsRef) -> String {
    const KEEP: &[&str] = &[
        "stream-format",
        "alignment",
        "width",
        "height",
        "codec_data",
        "streamheader",
        "mpegversion",
        "layer",
        "rate",
        "channels",
        "channel-mapping-family",
    ];
    let Some(s) = caps.structure(0) else {
        return String::new();
    };
    let mut s = s.to_owned();
    s.filter_map_in_place(|name, v| KEEP.contains(&name.as_str().as_ref()).then_some(v));
    s.to_string()
}

/// Caps in short, for messages: `video/x-h264 320x240, codec data 0142c015…`.
pub fn describe_caps(caps: &gst::CapsRef) -> String {
    let Some(s) = caps.structure(0) else {
        return "no caps".to_owned();
    };
    let mut out = s.name().to_string();
    if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
        out.push_str(&format!(" {w}x{h}"));
    }
    if let (Ok(r), Ok(c)) = (s.get::<i32>("rate"), s.get::<i32>("channels")) {
        out.push_str(&format!(" {r} Hz {c} ch"));
    }
    if let Ok(f) = s.get::<&str>("stream-format") {
        out.push_str(&format!(", stream-format {f}"));
    }
    if let Ok(b) = s.get::<gst::Buffer>("codec_data") {
        if let Ok(m) = b.map_readable() {
            let hex: String = m.iter().take(12).map(|b| format!("{b:02x}")).collect();
            let more = if m.len() > 12 { "…" } else { "" };
            out.push_str(&format!(", codec data {hex}{more}"));
        }
    }
    out
}
