// SPDX-License-Identifier: MIT OR Apache-2.0
//! The writer of an HLS segment on the lean path (issue 14): the parsers
//! make H.264/H.265 an Annex B stream with its parameter sets before every
//! keyframe and AAC ADTS, as for mpegtsmux; then each stream ends in an
//! `appsink` whose callback packetizes the frame (`crate::tsmux`) and
//! writes it to the `.part` with one call, on the pushing thread. No muxer
//! thread, no buffer per 188-byte packet. Streams `tsmux` does not know
//! (Opus) keep the mpegtsmux writer.
//!
//! Frames of the two streams are written in the order they arrive (the
//! element interleaves them by decode time within its hold of audio);
//! every frame reaches the file at once, as with the unbuffered filesink.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::writer::{internal_pad, Writer, WriterError, WriterSpec};
use crate::annexb::{Codec, ParamSetKeeper};
use crate::tsmux::{Frame, StreamKind, Track, TsMuxer};

/// A channel's parameter sets, shared by its segments' writers.
type Keeper = Arc<Mutex<ParamSetKeeper>>;

/// The stream kind `tsmux` writes for these caps, if it knows them.
pub fn kind_of(caps: &gst::Caps) -> Option<StreamKind> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "video/x-h264" => Some(StreamKind::H264),
        "video/x-h265" => Some(StreamKind::H265),
        "audio/mpeg" => match s.get::<i32>("mpegversion").ok()? {
            2 | 4 => Some(StreamKind::AacAdts),
            1 if s.get::<i32>("mpegaudioversion").ok() == Some(1) => Some(StreamKind::Mpeg1Audio),
            1 => Some(StreamKind::Mpeg2Audio),
            _ => None,
        },
        _ => None,
    }
}

/// The kinds of the file's streams when the lean path can write them all
/// (every present stream's caps known and supported).
pub fn native_kinds(spec: &WriterSpec<'_>) -> Option<(Option<StreamKind>, Option<StreamKind>)> {
    let kind = |c: &Option<Option<gst::Caps>>| -> Option<Option<StreamKind>> {
        match c {
            None => Some(None),
            Some(Some(caps)) => kind_of(caps).map(Some),
            Some(None) => None,
        }
    };
    let (v, a) = (kind(&spec.video)?, kind(&spec.audio)?);
    (v.is_some() || a.is_some()).then_some((v, a))
}

/// The open file and its packetizer, shared by the streams' sinks.
struct TsFile {
    file: std::fs::File,
    mux: TsMuxer,
    buf: Vec<u8>,
}

fn make(factory: &'static str) -> Result<gst::Element, WriterError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| WriterError::MissingElement(factory))
}

fn built(e: impl std::fmt::Display) -> WriterError {
    WriterError::Build(e.to_string())
}

/// The parser and output caps in front of a stream's sink.
fn chain_of(kind: StreamKind) -> (Option<&'static str>, gst::Caps) {
    match kind {
        StreamKind::H264 => (
            Some("h264parse"),
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        ),
        StreamKind::H265 => (
            Some("h265parse"),
            gst::Caps::builder("video/x-h265")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        ),
        StreamKind::AacAdts => (
            Some("aacparse"),
            gst::Caps::builder("audio/mpeg")
                .field("stream-format", "adts")
                .build(),
        ),
        StreamKind::Mpeg1Audio | StreamKind::Mpeg2Audio => {
            (None, gst::Caps::builder("audio/mpeg").build())
        }
    }
}

/// Whether video caps are Annex B access units already (no parser needed).
fn annexb_au(caps: &gst::Caps) -> bool {
    caps.structure(0).is_some_and(|s| {
        s.get::<&str>("stream-format").ok() == Some("byte-stream")
            && s.get::<&str>("alignment").ok() == Some("au")
    })
}

/// Writes one sample; a write error is an element error of the sink
/// (reported by the element naming the file, like filesink's). Video
/// keyframes without parameter sets get the latest ones (`keeper`).
fn write_sample(
    sink: &gst_app::AppSink,
    shared: &Mutex<TsFile>,
    track: Track,
    path: &Path,
    keeper: Option<&(Codec, Keeper)>,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
    let Some(buffer) = sample.buffer() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let Some(pts) = buffer.pts().or(buffer.dts()) else {
        gst::element_error!(
            sink,
            gst::StreamError::Format,
            [
                "A frame without timestamp cannot be written to {}",
                path.display()
            ]
        );
        return Err(gst::FlowError::Error);
    };
    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let data = match keeper {
        Some((codec, k)) => match k.lock() {
            Ok(mut k) => k.complete(*codec, map.as_slice(), keyframe),
            Err(_) => std::borrow::Cow::Borrowed(map.as_slice()),
        },
        None => std::borrow::Cow::Borrowed(map.as_slice()),
    };
    let frame = Frame {
        track,
        pts_ns: pts.nseconds(),
        dts_ns: buffer.dts().map(|d| d.nseconds()),
        keyframe,
        data: &data,
    };
    let mut guard = shared.lock().map_err(|_| gst::FlowError::Error)?;
    let f = &mut *guard;
    f.buf.clear();
    if let Err(e) = f.mux.write_frame(&mut f.buf, &frame) {
        gst::element_error!(sink, gst::StreamError::Mux, ["{}: {}", path.display(), e]);
        return Err(gst::FlowError::Error);
    }
    if let Err(e) = f.file.write_all(&f.buf) {
        let no_space = e.raw_os_error() == Some(libc::ENOSPC);
        if no_space {
            gst::element_error!(
                sink,
                gst::ResourceError::NoSpaceLeft,
                ("No space left on the resource."),
                ["Error while writing to file \"{}\": {}", path.display(), e]
            );
        } else {
            gst::element_error!(
                sink,
                gst::ResourceError::Write,
                ("Error while writing to file \"{}\".", path.display()),
                ["{}", e]
            );
        }
        return Err(gst::FlowError::Error);
    }
    Ok(gst::FlowSuccess::Ok)
}

/// Builds the writer of a segment whose streams are `kinds`.
pub fn build(
    spec: &WriterSpec<'_>,
    kinds: (Option<StreamKind>, Option<StreamKind>),
) -> Result<Writer, WriterError> {
    let file = std::fs::File::create(spec.part_path)
        .map_err(|e| built(format!("cannot create {}: {e}", spec.part_path.display())))?;
    let shared = Arc::new(Mutex::new(TsFile {
        file,
        mux: TsMuxer::new(kinds.0, kinds.1),
        buf: Vec::with_capacity(64 * 1024),
    }));
    let bin = gst::Bin::with_name(&spec.name);
    let mut writer = Writer {
        bin: bin.clone(),
        video: None,
        audio: None,
        part_path: spec.part_path.to_path_buf(),
        inline_feed: true,
    };
    let streams = [
        (Track::Video, "video", &spec.video, kinds.0),
        (Track::Audio, "audio", &spec.audio, kinds.1),
    ];
    for (track, name, caps, kind) in streams {
        let (Some(Some(caps)), Some(kind)) = (caps, kind) else {
            continue;
        };
        let (mut parser, out_caps) = chain_of(kind);
        let codec = match kind {
            StreamKind::H264 => Some(Codec::H264),
            StreamKind::H265 => Some(Codec::H265),
            _ => None,
        };
        // Annex B access units go straight in: a parser in each segment
        // would drop everything until it saw parameter sets, which some
        // encoders send only once; the writer puts them in front itself.
        let keeper = match (codec, &spec.param_sets) {
            (Some(c), Some(k)) if annexb_au(caps) => {
                parser = None;
                Some((c, k.clone()))
            }
            _ => None,
        };
        let sink = gst_app::AppSink::builder()
            .name(format!("{name}-ts"))
            .caps(&out_caps)
            .sync(false)
            .async_(false)
            .build();
        let (s, path) = (shared.clone(), spec.part_path.to_path_buf());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| write_sample(sink, &s, track, &path, keeper.as_ref()))
                .build(),
        );
        bin.add(&sink).map_err(built)?;
        let entry = match parser {
            Some(p) => {
                let parser = make(p)?;
                if kind == StreamKind::H264 || kind == StreamKind::H265 {
                    parser.set_property("config-interval", -1i32);
                }
                bin.add(&parser).map_err(built)?;
                parser
                    .link(&sink)
                    .map_err(|e| built(format!("cannot link {p} for {name}: {e}")))?;
                parser
                    .static_pad("sink")
                    .ok_or_else(|| built(format!("{p} has no sink pad")))?
            }
            None => sink
                .static_pad("sink")
                .ok_or_else(|| built("appsink has no sink pad"))?,
        };
        let pad = internal_pad(name, Some(caps));
        pad.set_active(true).map_err(built)?;
        pad.link(&entry)
            .map_err(|e| built(format!("cannot link {name} input: {e:?}")))?;
        let stream_id = format!("{}/{name}", spec.name);
        let _ = pad.store_sticky_event(&gst::event::StreamStart::builder(&stream_id).build());
        let _ = pad.store_sticky_event(&gst::event::Caps::new(caps));
        let _ = pad.store_sticky_event(&super::writer::file_segment());
        match track {
            Track::Video => writer.video = Some(pad),
            Track::Audio => writer.audio = Some(pad),
        }
    }
    bin.set_locked_state(true);
    Ok(writer)
}
