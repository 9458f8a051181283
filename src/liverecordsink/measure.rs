// SPDX-License-Identifier: MIT OR Apache-2.0
//! Measuring a file from its contents (crash recovery: frame counts and
//! duration are read from the file, not guessed): `filesrc ! parsebin`,
//! every stream counted into a fakesink, bounded in time.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// What a file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Of the longest stream: end of its last frame − start of its first.
    pub duration_ns: u64,
}

#[derive(Default)]
struct Span {
    frames: u64,
    first: Option<u64>,
    end: u64,
}

impl Span {
    fn duration(&self) -> u64 {
        self.first.map_or(0, |f| self.end.saturating_sub(f))
    }
}

#[derive(Default)]
struct Counts {
    video: Span,
    audio: Span,
}

/// Reads every frame of `path`; an error (or no frame at all) means the file
/// is not readable. Bounded by `timeout`.
pub fn measure(path: &Path, timeout: Duration) -> Result<Measured, String> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .map_err(|e| format!("no filesrc: {e}"))?;
    let parse = gst::ElementFactory::make("parsebin")
        .build()
        .map_err(|e| format!("no parsebin (gstreamer1.0-plugins-base): {e}"))?;
    pipeline
        .add_many([&src, &parse])
        .and_then(|_| src.link(&parse))
        .map_err(|e| format!("cannot build the reader: {e}"))?;
    let counts = Arc::new(Mutex::new(Counts::default()));
    let weak = pipeline.downgrade();
    let c = counts.clone();
    parse.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        // No preroll: a sink waiting for it would block the demuxer's one
        // thread before the other stream's sink is linked.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if pipeline.add(&sink).is_err() {
            return;
        }
        let _ = sink.sync_state_with_parent();
        let c = c.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buf) = info.buffer() {
                if let Ok(mut c) = c.lock() {
                    let span = if video { &mut c.video } else { &mut c.audio };
                    span.frames += 1;
                    if let Some(pts) = buf.pts().or(buf.dts()) {
                        let pts = pts.nseconds();
                        span.first = Some(span.first.map_or(pts, |f| f.min(pts)));
                        let end = pts + buf.duration().map_or(0, |d| d.nseconds());
                        span.end = span.end.max(end);
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
        if let Some(sinkpad) = sink.static_pad("sink") {
            let _ = pad.link(&sinkpad);
        }
    });
    let result = run(&pipeline, timeout);
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let c = counts.lock().map_err(|_| "the reader failed".to_string())?;
    if c.video.frames + c.audio.frames == 0 {
        return Err("no frame can be read".into());
    }
    Ok(Measured {
        video_frames: c.video.frames,
        audio_frames: c.audio.frames,
        duration_ns: c.video.duration().max(c.audio.duration()),
    })
}

fn run(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the file cannot be read".to_string())?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("reading took longer than {timeout:?}"));
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        return match msg.view() {
            gst::MessageView::Error(e) => Err(e.error().to_string()),
            _ => Ok(()),
        };
    }
}
