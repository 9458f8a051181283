// SPDX-License-Identifier: MIT OR Apache-2.0
//! Writing the output: one `appsrc` per stream into mp4mux (or flvmux) and
//! a filesink on the `.part` path. Frames go in already timestamped; no
//! parser and no encoder sits in between, so the output holds the input's
//! compressed frames unchanged.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::error::{Error, Result};
use crate::reader::{bus_error, require, Kind, STALL};

/// The output container, from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Flv,
}

impl Container {
    /// `.flv` gives FLV; anything else MP4.
    pub fn for_path(p: &Path) -> Container {
        match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("flv") => Container::Flv,
            _ => Container::Mp4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Flv => "flv",
        }
    }
    fn factory(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Flv => "flvmux",
        }
    }
    fn pad_template(self, k: Kind) -> &'static str {
        match (self, k) {
            (Container::Mp4, Kind::Video) => "video_%u",
            (Container::Mp4, Kind::Audio) => "audio_%u",
            (Container::Flv, Kind::Video) => "video",
            (Container::Flv, Kind::Audio) => "audio",
        }
    }
}

/// Bytes an appsrc may hold before the writer waits for the muxer.
const MAX_QUEUED: u64 = 32 * 1024 * 1024;

/// The output pipeline.
pub struct Writer {
    part: PathBuf,
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    srcs: [Option<gst_app::AppSrc>; 2],
}

fn failed(part: &Path, what: impl std::fmt::Display) -> Error {
    Error::failed(format!("writing {} failed: {what}", part.display()))
}

/// Checks that the container can hold the caps, before anything is written.
pub fn check_caps(container: Container, kind: Kind, caps: &gst::CapsRef) -> Result<()> {
    require(container.factory())?;
    let Some(factory) = gst::ElementFactory::find(container.factory()) else {
        return Ok(());
    };
    let templ = factory
        .static_pad_templates()
        .into_iter()
        .find(|t| t.name_template() == container.pad_template(kind));
    if let Some(t) = templ {
        if !t.caps().can_intersect(caps) {
            return Err(Error::input(format!(
                "{} output cannot hold this {} stream: {} (on GStreamer 1.22 {} takes {})",
                container.name().to_uppercase(),
                kind.name(),
                crate::reader::describe_caps(caps),
                container.factory(),
                t.caps()
            )));
        }
    }
    Ok(())
}

impl Writer {
    /// Builds and starts the pipeline writing `part`. `caps` has the caps of
    /// each stream to write, by [`Kind`]. `tags` go into the container's
    /// metadata.
    pub fn new(
        part: &Path,
        container: Container,
        caps: &[Option<gst::Caps>; 2],
        tags: &gst::TagList,
    ) -> Result<Writer> {
        for f in ["appsrc", "filesink", container.factory()] {
            require(f)?;
        }
        let pipeline = gst::Pipeline::new();
        let mux = gst::ElementFactory::make(container.factory())
            .build()
            .map_err(|e| failed(part, e))?;
        if container == Container::Flv {
            mux.set_property("streamable", false);
        }
        if let Some(setter) = mux.dynamic_cast_ref::<gst::TagSetter>() {
            setter.merge_tags(tags, gst::TagMergeMode::Replace);
        }
        let sink = gst::ElementFactory::make("filesink")
            .property("location", part.to_string_lossy().as_ref())
            .build()
            .map_err(|e| failed(part, e))?;
        pipeline
            .add_many([&mux, &sink])
            .and_then(|()| mux.link(&sink))
            .map_err(|e| failed(part, e))?;
        let mut srcs: [Option<gst_app::AppSrc>; 2] = [None, None];
        for kind in [Kind::Video, Kind::Audio] {
            let Some(c) = &caps[kind as usize] else {
                continue;
            };
            check_caps(container, kind, c)?;
            let src = gst_app::AppSrc::builder()
                .caps(c)
                .format(gst::Format::Time)
                .is_live(false)
                .block(false)
                .max_bytes(MAX_QUEUED * 2)
                .build();
            pipeline.add(&src).map_err(|e| failed(part, e))?;
            let templ = mux
                .pad_template(container.pad_template(kind))
                .ok_or_else(|| failed(part, "the muxer has no pad for this stream"))?;
            let mux_pad = mux
                .request_pad(&templ, None, None)
                .ok_or_else(|| failed(part, "the muxer gave no pad"))?;
            let src_pad = src
                .static_pad("src")
                .ok_or_else(|| failed(part, "no src pad"))?;
            src_pad.link(&mux_pad).map_err(|e| failed(part, e))?;
            srcs[kind as usize] = Some(src);
        }
        let bus = pipeline.bus().ok_or_else(|| failed(part, "no bus"))?;
        let w = Writer {
            part: part.to_owned(),
            pipeline,
            bus,
            srcs,
        };
        if w.pipeline.set_state(gst::State::Playing).is_err() {
            let e = bus_error(&w.bus).unwrap_or_else(|| "cannot start".to_owned());
            return Err(failed(part, e));
        }
        Ok(w)
    }

    fn check_bus(&self) -> Result<()> {
        match bus_error(&self.bus) {
            Some(e) => Err(failed(&self.part, e)),
            None => Ok(()),
        }
    }

    /// Queues one frame for the muxer; waits (bounded) while the muxer is
    /// behind.
    pub fn push(&self, kind: Kind, buffer: gst::Buffer) -> Result<()> {
        let Some(src) = &self.srcs[kind as usize] else {
            return Err(failed(
                &self.part,
                format!("no {} stream in this output", kind.name()),
            ));
        };
        let deadline = Instant::now() + STALL;
        while src.current_level_bytes() > MAX_QUEUED {
            self.check_bus()?;
            if Instant::now() > deadline {
                return Err(failed(&self.part, "the muxer stalled"));
            }
            thread::sleep(Duration::from_millis(2));
        }
        if src.push_buffer(buffer).is_err() {
            self.check_bus()?;
            return Err(failed(&self.part, "the muxer refused a frame"));
        }
        Ok(())
    }

    /// Ends every stream and waits (bounded) until the muxer has written
    /// the file.
    pub fn finish(self) -> Result<()> {
        for src in self.srcs.iter().flatten() {
            let _ = src.end_of_stream();
        }
        let timeout = Duration::from_secs(120);
        let msg = self.bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg {
            None => Err(failed(&self.part, "the muxer did not finish within 120 s")),
            Some(m) => match m.view() {
                gst::MessageView::Error(e) => Err(failed(&self.part, e.error())),
                _ => Ok(()),
            },
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
