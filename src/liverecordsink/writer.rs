// SPDX-License-Identifier: MIT OR Apache-2.0
//! One file being written: a bin of `[parser] ! muxer ! filesink`
//! fed through internal source pads that the element pushes into (HLS
//! segments of H.264/H.265 with AAC/MP3: `tswriter.rs`).
//!
//! The writer bin has a locked state: it runs in PLAYING from creation to
//! finalisation, whatever the element's own state, so that stopping the
//! pipeline can still drain and finalise it.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use crate::format::Format;

/// Media each muxer input may hold (see `Writer::build`).
const MUX_QUEUE_TIME: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// What a writer is asked to hold.
pub struct WriterSpec<'a> {
    pub name: String,
    pub format: Format,
    pub part_path: &'a Path,
    /// `Some(caps)` when the file has a video track (caps as currently known).
    pub video: Option<Option<gst::Caps>>,
    pub audio: Option<Option<gst::Caps>>,
    pub mp4_fragment_ms: u32,
    /// HLS: the channel's latest parameter sets (see `crate::annexb`).
    pub param_sets: Option<std::sync::Arc<std::sync::Mutex<crate::annexb::ParamSetKeeper>>>,
}

pub struct Writer {
    pub bin: gst::Bin,
    pub video: Option<gst::Pad>,
    pub audio: Option<gst::Pad>,
    pub part_path: PathBuf,
    /// A push never waits for the other stream (no muxer collecting both
    /// inputs): held frames can be fed from the calling thread.
    pub inline_feed: bool,
    /// Pads of the writer outside its bin (the lean writers' output pads).
    pub keep: Vec<gst::Pad>,
}

#[derive(Debug)]
pub enum WriterError {
    MissingElement(&'static str),
    Build(String),
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterError::MissingElement(e) => write!(
                f,
                "GStreamer element '{e}' is missing; install gstreamer1.0-plugins-good, -bad and -ugly"
            ),
            WriterError::Build(s) => f.write_str(s),
        }
    }
}

fn make(factory: &'static str) -> Result<gst::Element, WriterError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| WriterError::MissingElement(factory))
}

/// The GStreamer elements a format needs, to check for them at start.
pub fn required_elements(format: Format) -> &'static [&'static str] {
    match format {
        Format::Mp4 => &["mp4mux", "filesink", "h264parse", "aacparse"],
        Format::Flv => &["flvmux", "filesink", "h264parse", "aacparse"],
        Format::Aac => &["aacparse", "filesink"],
        Format::Hls => &["mpegtsmux", "filesink", "h264parse"],
    }
}

fn parser_for(caps: &gst::Caps) -> Option<&'static str> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "video/x-h264" => Some("h264parse"),
        "video/x-h265" => Some("h265parse"),
        "audio/mpeg" if s.get::<i32>("mpegversion").ok() != Some(1) => Some("aacparse"),
        "audio/mpeg" => Some("mpegaudioparse"),
        "audio/x-opus" => Some("opusparse"),
        _ => None,
    }
}

/// An internal source pad that answers the muxer's queries.
pub(super) fn internal_pad(name: &str, caps: Option<&gst::Caps>) -> gst::Pad {
    let fixed = caps.cloned();
    gst::Pad::builder(gst::PadDirection::Src)
        .name(name)
        .query_function(move |pad, parent, query| match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                q.set(false, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                true
            }
            gst::QueryViewMut::Caps(q) => {
                let caps = pad
                    .sticky_event::<gst::event::Caps>(0)
                    .map(|e| e.caps_owned())
                    .or_else(|| fixed.clone())
                    .unwrap_or_else(gst::Caps::new_any);
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, parent, query),
        })
        .build()
}

/// Writers take timestamps relative to the file start, in a plain TIME segment.
pub fn file_segment() -> gst::Event {
    gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
}

impl Writer {
    /// Builds and links the writer. Its bin posts EOS once the file sink has
    /// written everything.
    pub fn build(spec: WriterSpec<'_>) -> Result<Writer, WriterError> {
        let lean = match spec.format {
            Format::Hls => super::tswriter::build(&spec),
            Format::Mp4 if spec.mp4_fragment_ms > 0 => super::mp4writer::build(&spec),
            _ => None,
        };
        if let Some(lean) = lean {
            return lean;
        }
        let bin = gst::Bin::with_name(&spec.name);
        let sink = make("filesink")?;
        sink.set_property("location", spec.part_path.to_string_lossy().as_ref());
        sink.set_property("async", false);
        sink.set_property("sync", false);
        // Crash safety: every buffer reaches the file at once (filesink's
        // default 64 kB buffer held several seconds of FLV or AAC, lost on
        // a kill).
        sink.set_property_from_str("buffer-mode", "unbuffered");
        bin.add(&sink)
            .map_err(|e| WriterError::Build(e.to_string()))?;

        let mux = match spec.format {
            Format::Mp4 => {
                let mux = make("mp4mux")?;
                if spec.mp4_fragment_ms > 0 {
                    mux.set_property("fragment-duration", spec.mp4_fragment_ms);
                    mux.set_property_from_str("fragment-mode", "first-moov-then-finalise");
                }
                Some(mux)
            }
            Format::Flv => {
                let mux = make("flvmux")?;
                mux.set_property("streamable", true);
                Some(mux)
            }
            Format::Hls => Some(make("mpegtsmux")?),
            Format::Aac => None,
        };
        if let Some(mux) = &mux {
            // The muxer's pads may hold this much media before a push
            // blocks, so video never waits inside the muxer for audio that
            // the element holds back until video decides a cut (no queue
            // thread per file is needed).
            if mux.find_property("latency").is_some() {
                mux.set_property("latency", MUX_QUEUE_TIME.nseconds());
            }
            bin.add(mux)
                .map_err(|e| WriterError::Build(e.to_string()))?;
            mux.link(&sink)
                .map_err(|e| WriterError::Build(format!("cannot link muxer to filesink: {e}")))?;
        }

        let mut writer = Writer {
            bin: bin.clone(),
            video: None,
            audio: None,
            part_path: spec.part_path.to_path_buf(),
            inline_feed: false,
            keep: Vec::new(),
        };

        for (kind, caps) in [("video", &spec.video), ("audio", &spec.audio)] {
            let Some(caps) = caps else { continue };
            let pad = internal_pad(kind, caps.as_ref());
            let entry = match &mux {
                Some(mux) => {
                    let templ = match (spec.format, kind) {
                        (Format::Mp4, "video") => "video_%u",
                        (Format::Mp4, _) => "audio_%u",
                        (Format::Flv, k) => k,
                        _ => "sink_%d",
                    };
                    let mux_pad = mux.request_pad_simple(templ).ok_or_else(|| {
                        WriterError::Build(format!(
                            "{} cannot take a {kind} stream",
                            spec.format.name()
                        ))
                    })?;
                    // Parse when the muxer does not take the caps as they are,
                    // e.g. H.264 byte-stream into MP4.
                    // HLS: every segment must decode on its own, so H.264/H.265
                    // parameter sets go in front of every keyframe.
                    let hls_video = spec.format == Format::Hls && kind == "video";
                    let parser = caps.as_ref().and_then(|c| {
                        let tmpl = mux_pad.pad_template_caps();
                        if c.is_subset(&tmpl) && !hls_video {
                            None
                        } else {
                            parser_for(c)
                        }
                    });
                    let mut upstream = mux_pad;
                    if let Some(p) = parser {
                        let parser = make(p)?;
                        if hls_video {
                            parser.set_property("config-interval", -1i32);
                        }
                        bin.add(&parser)
                            .map_err(|e| WriterError::Build(e.to_string()))?;
                        let psrc = parser
                            .static_pad("src")
                            .ok_or_else(|| WriterError::Build(format!("{p} has no src pad")))?;
                        psrc.link(&upstream).map_err(|e| {
                            WriterError::Build(format!("cannot link {p} to muxer: {e:?}"))
                        })?;
                        upstream = parser
                            .static_pad("sink")
                            .ok_or_else(|| WriterError::Build(format!("{p} has no sink pad")))?;
                    }
                    upstream
                }
                None => {
                    // ADTS: aacparse converts to ADTS and writes straight to the file.
                    let parser = make("aacparse")?;
                    bin.add(&parser)
                        .map_err(|e| WriterError::Build(e.to_string()))?;
                    let filter = gst::Caps::builder("audio/mpeg")
                        .field("stream-format", "adts")
                        .build();
                    parser
                        .link_filtered(&sink, &filter)
                        .map_err(|e| WriterError::Build(format!("cannot produce ADTS: {e}")))?;
                    parser
                        .static_pad("sink")
                        .ok_or_else(|| WriterError::Build("aacparse has no sink pad".into()))?
                }
            };
            pad.set_active(true)
                .map_err(|e| WriterError::Build(e.to_string()))?;
            pad.link(&entry)
                .map_err(|e| WriterError::Build(format!("cannot link {kind} input: {e:?}")))?;
            let stream_id = format!("{}/{kind}", spec.name);
            let _ = pad.store_sticky_event(&gst::event::StreamStart::builder(&stream_id).build());
            // Without caps yet, caps and segment go with the first buffer.
            if let Some(c) = caps {
                let _ = pad.store_sticky_event(&gst::event::Caps::new(c));
                let _ = pad.store_sticky_event(&file_segment());
            }
            if kind == "video" {
                writer.video = Some(pad);
            } else {
                writer.audio = Some(pad);
            }
        }

        bin.set_locked_state(true);
        Ok(writer)
    }

    /// Starts the writer after it was added to its parent.
    pub fn start(&self) -> Result<(), WriterError> {
        self.bin
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| {
                WriterError::Build(format!(
                    "cannot start the writer for {}",
                    self.part_path.display()
                ))
            })
    }

    /// Stops the writer and deactivates its input pads. The file is closed
    /// when this returns.
    pub fn shutdown(&self) {
        for pad in [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .chain(&self.keep)
        {
            let _ = pad.set_active(false);
        }
        let _ = self.bin.set_state(gst::State::Null);
    }
}
