// SPDX-License-Identifier: MIT OR Apache-2.0
//! The writers of the lean path (issue 14): per stream `[parser]` ending in
//! a bare sink pad (no sink element, no queue) whose chain function hands
//! each frame to an [`Output`] (the element's own MPEG-TS or MP4 writer) on
//! the pushing thread. No muxer thread, no GStreamer buffer per packet, and
//! few writes: each output writes in batches (a fragment, or at most
//! [`WRITE_BEHIND_BYTES`] / [`WRITE_BEHIND_NS`] of TS), and whatever is left
//! once every stream ended; then the writer's bin posts EOS.
//!
//! An output's error becomes an element error of the writer's bin, reported
//! by the element naming the file, like filesink's.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::writer::{internal_pad, Writer, WriterError, WriterSpec};
use crate::tsmux::Track;

/// TS written at least when this much is waiting…
pub const WRITE_BEHIND_BYTES: usize = 64 * 1024;
/// …or when the waiting frames span this much media time.
pub const WRITE_BEHIND_NS: u64 = 200_000_000;

/// Why an output refused a frame.
#[derive(Debug)]
pub enum OutError {
    Io(io::Error),
    /// The frame cannot be written (no timestamp, no codec description).
    Format(String),
}

impl From<io::Error> for OutError {
    fn from(e: io::Error) -> Self {
        OutError::Io(e)
    }
}

/// One frame as the outputs take it; times in ns from the file's start.
pub struct InFrame<'a> {
    pub track: Track,
    pub pts_ns: u64,
    pub dts_ns: Option<u64>,
    pub duration_ns: Option<u64>,
    pub keyframe: bool,
    pub data: &'a [u8],
    /// The caps of the frame (codec description).
    pub caps: Option<&'a gst::CapsRef>,
}

/// A file format written by the element itself.
pub trait Output: Send + 'static {
    fn frame(&mut self, f: &InFrame<'_>) -> Result<(), OutError>;
    /// Every stream ended: what is left goes to the file.
    fn finish(&mut self) -> io::Result<()>;
}

/// One stream's chain in front of its output pad.
pub struct Chain {
    pub track: Track,
    /// The input caps.
    pub caps: gst::Caps,
    pub parser: Option<&'static str>,
    /// H.264/H.265 parameter sets in front of every keyframe (HLS).
    pub repeat_params: bool,
    /// What the output takes.
    pub out_caps: gst::Caps,
}

struct Shared {
    out: Box<dyn Output>,
    /// Streams that have not ended yet.
    open: usize,
    /// Each stream's current caps (video, audio).
    caps: [Option<gst::Caps>; 2],
}

fn built(e: impl std::fmt::Display) -> WriterError {
    WriterError::Build(e.to_string())
}

/// Posts an output's error on the writer's bin (the element turns it into
/// its own error naming the file).
fn report(sink: &gst::Bin, path: &Path, e: OutError) {
    match e {
        OutError::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) => gst::element_error!(
            sink,
            gst::ResourceError::NoSpaceLeft,
            ("No space left on the resource."),
            ["Error while writing to file \"{}\": {}", path.display(), e]
        ),
        OutError::Io(e) => gst::element_error!(
            sink,
            gst::ResourceError::Write,
            ("Error while writing to file \"{}\".", path.display()),
            ["{}", e]
        ),
        OutError::Format(why) => {
            gst::element_error!(sink, gst::StreamError::Mux, ["{}: {}", path.display(), why])
        }
    }
}

/// One frame of `track` into the output, on the pushing thread.
fn on_buffer(
    bin: &gst::Bin,
    shared: &Mutex<Shared>,
    track: Track,
    path: &Path,
    buffer: &gst::BufferRef,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let Some(pts) = buffer.pts().or(buffer.dts()) else {
        report(
            bin,
            path,
            OutError::Format("a frame without timestamp cannot be written".into()),
        );
        return Err(gst::FlowError::Error);
    };
    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
    let mut guard = shared.lock().map_err(|_| gst::FlowError::Error)?;
    let sh = &mut *guard;
    let frame = InFrame {
        track,
        pts_ns: pts.nseconds(),
        dts_ns: buffer.dts().map(|d| d.nseconds()),
        duration_ns: buffer.duration().map(|d| d.nseconds()),
        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        data: map.as_slice(),
        caps: sh.caps[track.index()].as_deref(),
    };
    if let Err(e) = sh.out.frame(&frame) {
        drop(guard);
        report(bin, path, e);
        return Err(gst::FlowError::Error);
    }
    Ok(gst::FlowSuccess::Ok)
}

/// A stream ended; the last one to end finishes the file, then the bin
/// posts EOS: the element closes the file.
fn on_eos(bin: &gst::Bin, shared: &Mutex<Shared>, path: &Path) {
    let Ok(mut guard) = shared.lock() else { return };
    guard.open = guard.open.saturating_sub(1);
    if guard.open > 0 {
        return;
    }
    let finished = guard.out.finish();
    drop(guard);
    if let Err(e) = finished {
        report(bin, path, OutError::Io(e));
    }
    let _ = bin.post_message(gst::message::Eos::builder().src(bin).build());
}

/// The sink pad at the end of a stream's chain: frames go to the output
/// from the pushing thread (no sink element, no queue).
fn output_pad(
    name: &str,
    bin: &gst::Bin,
    shared: &Arc<Mutex<Shared>>,
    track: Track,
    path: &Path,
    accepts: gst::Caps,
) -> gst::Pad {
    let weak = bin.downgrade();
    let (s1, p1) = (shared.clone(), path.to_path_buf());
    let chain = move |_: &gst::Pad, _: Option<&gst::Object>, buffer: gst::Buffer| {
        let bin = weak.upgrade().ok_or(gst::FlowError::Flushing)?;
        on_buffer(&bin, &s1, track, &p1, &buffer)
    };
    let weak = bin.downgrade();
    let (s2, p2) = (shared.clone(), path.to_path_buf());
    let event = move |_: &gst::Pad, _: Option<&gst::Object>, event: gst::Event| {
        match event.view() {
            gst::EventView::Caps(c) => {
                if let Ok(mut sh) = s2.lock() {
                    sh.caps[track.index()] = Some(c.caps_owned());
                }
            }
            gst::EventView::Eos(_) => {
                if let Some(bin) = weak.upgrade() {
                    on_eos(&bin, &s2, &p2);
                }
            }
            _ => {}
        }
        true
    };
    gst::Pad::builder(gst::PadDirection::Sink)
        .name(format!("{name}-out"))
        .chain_function(chain)
        .event_function(event)
        .query_function(move |pad, parent, query| match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&accepts, gst::CapsIntersectMode::First),
                    None => accepts.clone(),
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().can_intersect(&accepts);
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, parent, query),
        })
        .build()
}

fn make(factory: &'static str) -> Result<gst::Element, WriterError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| WriterError::MissingElement(factory))
}

/// Builds the writer of `spec` whose streams go through `chains` into `out`.
pub fn build(
    spec: &WriterSpec<'_>,
    chains: Vec<Chain>,
    out: Box<dyn Output>,
) -> Result<Writer, WriterError> {
    let shared = Arc::new(Mutex::new(Shared {
        out,
        open: chains.len(),
        caps: [None, None],
    }));
    let bin = gst::Bin::with_name(&spec.name);
    let mut writer = Writer {
        bin: bin.clone(),
        video: None,
        audio: None,
        part_path: spec.part_path.to_path_buf(),
        inline_feed: true,
        keep: Vec::new(),
    };
    for chain in chains {
        let name = match chain.track {
            Track::Video => "video",
            Track::Audio => "audio",
        };
        let out = output_pad(
            name,
            &bin,
            &shared,
            chain.track,
            spec.part_path,
            chain.out_caps.clone(),
        );
        out.set_active(true).map_err(built)?;
        let entry = match chain.parser {
            Some(p) => {
                let parser = make(p)?;
                if chain.repeat_params {
                    parser.set_property("config-interval", -1i32);
                }
                bin.add(&parser).map_err(built)?;
                let src = parser
                    .static_pad("src")
                    .ok_or_else(|| built(format!("{p} has no src pad")))?;
                src.link(&out)
                    .map_err(|e| built(format!("cannot link {p} for {name}: {e:?}")))?;
                parser
                    .static_pad("sink")
                    .ok_or_else(|| built(format!("{p} has no sink pad")))?
            }
            None => out.clone(),
        };
        writer.keep.push(out);
        let pad = internal_pad(name, Some(&chain.caps));
        pad.set_active(true).map_err(built)?;
        pad.link(&entry)
            .map_err(|e| built(format!("cannot link {name} input: {e:?}")))?;
        let stream_id = format!("{}/{name}", spec.name);
        let _ = pad.store_sticky_event(&gst::event::StreamStart::builder(&stream_id).build());
        let _ = pad.store_sticky_event(&gst::event::Caps::new(&chain.caps));
        let _ = pad.store_sticky_event(&super::writer::file_segment());
        match chain.track {
            Track::Video => writer.video = Some(pad),
            Track::Audio => writer.audio = Some(pad),
        }
    }
    bin.set_locked_state(true);
    Ok(writer)
}

/// Creates the writer's `.part` file.
pub fn create(spec: &WriterSpec<'_>) -> Result<std::fs::File, WriterError> {
    std::fs::File::create(spec.part_path)
        .map_err(|e| built(format!("cannot create {}: {e}", spec.part_path.display())))
}

/// Whether caps are in MP4's form: `avc`/`hvc1`/`hev1` access units or raw
/// AAC, with `codec_data` (no parser needed for MP4; converted for TS).
pub fn mp4_form(caps: &gst::CapsRef) -> bool {
    caps.structure(0).is_some_and(|s| {
        let format = s.get::<&str>("stream-format").ok();
        let au = s.get::<&str>("alignment").ok() == Some("au");
        let ready = match s.name().as_str() {
            "video/x-h264" => format == Some("avc") && au,
            "video/x-h265" => matches!(format, Some("hvc1" | "hev1")) && au,
            _ => format == Some("raw"),
        };
        ready && s.has_field("codec_data")
    })
}

/// The `codec_data` of caps.
pub fn codec_data(caps: &gst::CapsRef) -> Option<Vec<u8>> {
    let b = caps.structure(0)?.get::<gst::Buffer>("codec_data").ok()?;
    let m = b.map_readable().ok()?;
    Some(m.to_vec())
}

/// The input caps of each present stream, when all are known.
pub fn known_caps(spec: &WriterSpec<'_>) -> Option<Vec<(Track, gst::Caps)>> {
    let mut out = Vec::new();
    for (track, caps) in [(Track::Video, &spec.video), (Track::Audio, &spec.audio)] {
        match caps {
            None => {}
            Some(None) => return None,
            Some(Some(c)) => out.push((track, c.clone())),
        }
    }
    (!out.is_empty()).then_some(out)
}
