// SPDX-License-Identifier: MIT OR Apache-2.0
//! The writer of an HLS segment on the lean path (issue 14): the parsers
//! make H.264/H.265 an Annex B stream with its parameter sets before every
//! keyframe and AAC ADTS, as for mpegtsmux; each frame is packetized by
//! `crate::tsmux` and written behind (`appwriter.rs`). Streams `tsmux` does
//! not know (Opus) keep the mpegtsmux writer.
//!
//! Frames of the two streams are written in the order they arrive (the
//! element interleaves them by decode time within its hold of audio).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::appwriter::{self, Chain, InFrame, OutError, Output};
use super::writer::{Writer, WriterError, WriterSpec};
use crate::annexb::{Codec, ParamSetKeeper};
use crate::tsform::{Adts, NalForm};
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

/// What a frame needs before it is packetized.
enum Conv {
    AsIs,
    /// MP4-form H.264/H.265 to Annex B.
    Nal(NalForm),
    /// Raw AAC to ADTS.
    Adts(Adts),
}

/// The conversion that lets a stream in MP4's form (`avc`/`hvc1`/`hev1`
/// access units, raw AAC, with `codec_data`) skip the parser.
fn conversion(caps: &gst::Caps) -> Option<Conv> {
    if !appwriter::mp4_form(caps) {
        return None;
    }
    let data = appwriter::codec_data(caps)?;
    match caps.structure(0)?.name().as_str() {
        "video/x-h264" => NalForm::from_avcc(&data).map(Conv::Nal),
        "video/x-h265" => NalForm::from_hvcc(&data).map(Conv::Nal),
        _ => Adts::from_asc(&data).map(Conv::Adts),
    }
}

/// An open segment: its packetizer and the bytes not written yet.
struct TsOutput {
    conv: [Conv; 2],
    /// A converted frame.
    scratch: Vec<u8>,
    file: std::fs::File,
    mux: TsMuxer,
    buf: Vec<u8>,
    /// PTS of the oldest frame in `buf`.
    buf_since: Option<u64>,
    /// Per track: the codec and channel's parameter sets when the video
    /// goes in without a parser.
    keepers: [Option<(Codec, Keeper)>; 2],
}

impl TsOutput {
    fn write_out(&mut self) -> io::Result<()> {
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        self.buf_since = None;
        r
    }
}

impl Output for TsOutput {
    fn frame(&mut self, f: &InFrame<'_>) -> Result<(), OutError> {
        let slot = f.track.index();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let input = match &self.conv[slot] {
            Conv::AsIs => Some(f.data),
            Conv::Nal(form) => form.to_annexb(f.data, &mut scratch).map(|_| &scratch[..]),
            Conv::Adts(adts) => adts.frame(f.data, &mut scratch).map(|_| &scratch[..]),
        };
        let Some(input) = input else {
            return Err(OutError::Format(
                "a frame does not match its stream's format".into(),
            ));
        };
        let data = match &self.keepers[slot] {
            Some((codec, k)) => match k.lock() {
                Ok(mut k) => k.complete(*codec, input, f.keyframe),
                Err(_) => std::borrow::Cow::Borrowed(input),
            },
            None => std::borrow::Cow::Borrowed(input),
        };
        let frame = Frame {
            track: f.track,
            pts_ns: f.pts_ns,
            dts_ns: f.dts_ns,
            keyframe: f.keyframe,
            data: &data,
        };
        let written = self.mux.write_frame(&mut self.buf, &frame);
        drop(data);
        self.scratch = scratch;
        written.map_err(|e| OutError::Format(e.to_string()))?;
        let since = *self.buf_since.get_or_insert(f.pts_ns);
        if self.buf.len() >= appwriter::WRITE_BEHIND_BYTES
            || f.pts_ns.saturating_sub(since) >= appwriter::WRITE_BEHIND_NS
        {
            self.write_out()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_out()
    }
}

/// The lean writer of a segment, when `tsmux` knows every stream.
pub fn build(spec: &WriterSpec<'_>) -> Option<Result<Writer, WriterError>> {
    let caps = appwriter::known_caps(spec)?;
    let mut kinds = (None, None);
    let mut chains = Vec::new();
    let mut keepers = [None, None];
    let mut conv = [Conv::AsIs, Conv::AsIs];
    for (track, caps) in caps {
        let kind = kind_of(&caps)?;
        let (mut parser, mut out_caps) = chain_of(kind);
        let codec = match kind {
            StreamKind::H264 => Some(Codec::H264),
            StreamKind::H265 => Some(Codec::H265),
            _ => None,
        };
        // Annex B access units go straight in: a parser in each segment
        // would drop everything until it saw parameter sets, which some
        // encoders send only once; the writer puts them in front itself.
        if let (Some(c), Some(k)) = (codec, &spec.param_sets) {
            if annexb_au(&caps) {
                parser = None;
                keepers[0] = Some((c, k.clone()));
            }
        }
        let slot = track.index();
        if let Some(c) = conversion(&caps) {
            if let Conv::Nal(form) = &c {
                // The configuration's parameter sets go in front of
                // keyframes that lack them.
                let k = spec.param_sets.clone().unwrap_or_default();
                if let Ok(mut k) = k.lock() {
                    k.complete(form.codec, &form.params, true);
                }
                keepers[slot] = Some((form.codec, k));
            }
            parser = None;
            out_caps = caps.clone();
            conv[slot] = c;
        }
        match track {
            Track::Video => kinds.0 = Some(kind),
            Track::Audio => kinds.1 = Some(kind),
        }
        chains.push(Chain {
            track,
            caps,
            parser,
            repeat_params: codec.is_some(),
            out_caps,
        });
    }
    let file = match appwriter::create(spec) {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    let out = TsOutput {
        conv,
        scratch: Vec::new(),
        file,
        mux: TsMuxer::new(kinds.0, kinds.1),
        buf: Vec::with_capacity(appwriter::WRITE_BEHIND_BYTES * 2),
        buf_since: None,
        keepers,
    };
    Some(appwriter::build(spec, chains, Box::new(out)))
}
