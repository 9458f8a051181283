// SPDX-License-Identifier: MIT OR Apache-2.0
//! A swappable source in front of a `liverecordsink`: the example for
//! application writers who record across publisher reconnects.
//!
//! A network source ends when its publisher leaves (rtmp2src sends EOS) or
//! fails (connection refused, reset). The recording must not end with it:
//! the sink runs with `eos-action=interrupt`, so an EOS on its pads closes
//! the open files at once (a new session follows) and is not forwarded,
//! and the application builds a new source and links it to the same sink
//! pads. The sink sees a new STREAM_START and records on; HLS continues its
//! playlist after a discontinuity within `hls-resume-timeout`.
//!
//! A source is `SRC ! parsebin` per stream, where SRC is picked by scheme:
//! `rtmp2src` (rtmp://), `srtsrc` (srt://), `rtspsrc` (rtsp://: one RTP
//! pad per stream, each to its own parsebin, which depayloads) and
//! `urisourcebin` for anything else (file://, http://). parsebin demuxes
//! (flvdemux, tsdemux, qtdemux…) and parses (h264parse, aacparse…), so the
//! sink gets parsed video and audio. Each parsed stream goes through a
//! `queue` (a demuxer feeds both pads from one thread; the sink may hold one
//! stream back while it waits for the other).
//!
//! Data and EOS are watched with pad probes on the links into the sink; the
//! application's main loop polls [`Watch`] and rebuilds the source.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;

/// What the streaming threads report to the main loop.
#[derive(Debug, Default)]
pub struct Watch {
    /// Every linked stream of this source reached EOS.
    pub ended: bool,
    /// Bytes that entered the sink, in total.
    pub bytes: u64,
    /// When the first buffer entered the sink.
    pub first_data: Option<Instant>,
    /// Frames without any timestamp, dropped before the sink.
    pub untimed: u64,
    /// Streams linked to the sink and those that reached EOS.
    linked: u32,
    eos: u32,
}

/// One generation of the source: its elements in the pipeline.
pub struct Source {
    pub elements: Arc<Mutex<Vec<gst::Element>>>,
    pub watch: Arc<Mutex<Watch>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The element reading `url`.
fn source_element(url: &str, name: &str) -> Result<gst::Element, String> {
    let scheme = url.split_once("://").map_or("file", |(s, _)| s);
    let (factory, prop) = match scheme {
        "rtmp" | "rtmps" => ("rtmp2src", "location"),
        "srt" => ("srtsrc", "uri"),
        "rtsp" | "rtsps" => ("rtspsrc", "location"),
        _ => ("urisourcebin", "uri"),
    };
    let e = gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| {
            format!("GStreamer element {factory} is missing: install gstreamer1.0-plugins-bad and -good")
        })?;
    e.set_property(prop, url);
    Ok(e)
}

impl Source {
    /// Builds the source for `url` in `pipeline`, linked to `rec`'s `video`
    /// and `audio` pads as its streams appear, and starts it.
    pub fn start(
        pipeline: &gst::Pipeline,
        rec: &gst::Element,
        url: &str,
        generation: u64,
    ) -> Result<Source, String> {
        let src = source_element(url, &format!("source-{generation}"))?;
        let source = Source {
            elements: Arc::new(Mutex::new(vec![src.clone()])),
            watch: Arc::new(Mutex::new(Watch::default())),
        };
        pipeline
            .add(&src)
            .map_err(|e| format!("cannot add the source: {e}"))?;
        let ctx = Ctx {
            pipeline: pipeline.downgrade(),
            rec: rec.downgrade(),
            elements: source.elements.clone(),
            watch: source.watch.clone(),
        };
        if let Some(pad) = src.static_pad("src") {
            ctx.parse(&pad);
        }
        src.connect_pad_added(move |_, pad| ctx.parse(pad));
        src.sync_state_with_parent()
            .map_err(|e| format!("cannot start the source: {e}"))?;
        Ok(source)
    }

    /// Whether `obj` is one of this source's elements (or inside one).
    pub fn owns(&self, obj: &gst::Object) -> bool {
        lock(&self.elements).iter().any(|e| {
            obj == e.upcast_ref::<gst::Object>()
                || obj.has_as_ancestor(e.upcast_ref::<gst::Object>())
        })
    }

    /// Stops the source and takes it out of the pipeline; the sink pads it
    /// fed are unlinked. Called from the main loop.
    pub fn stop(self, pipeline: &gst::Pipeline) {
        let elements = std::mem::take(&mut *lock(&self.elements));
        for e in &elements {
            let _ = e.set_state(gst::State::Null);
        }
        for e in &elements {
            let _ = pipeline.remove(e);
        }
    }
}

/// What the streaming-thread callbacks need.
#[derive(Clone)]
struct Ctx {
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    rec: gst::glib::WeakRef<gst::Element>,
    elements: Arc<Mutex<Vec<gst::Element>>>,
    watch: Arc<Mutex<Watch>>,
}

impl Ctx {
    /// A source pad (a stream, or an RTP stream): `parsebin` behind it.
    fn parse(&self, pad: &gst::Pad) {
        let Some(pipeline) = self.pipeline.upgrade() else {
            return;
        };
        let Ok(parsebin) = gst::ElementFactory::make("parsebin").build() else {
            eprintln!("liverecord: GStreamer element parsebin is missing: install gstreamer1.0-plugins-base");
            return;
        };
        if pipeline.add(&parsebin).is_err() {
            return;
        }
        lock(&self.elements).push(parsebin.clone());
        let ctx = self.clone();
        parsebin.connect_pad_added(move |_, p| ctx.link(p));
        let _ = parsebin.sync_state_with_parent();
        if let Some(sink) = parsebin.static_pad("sink") {
            if let Err(e) = pad.link(&sink) {
                eprintln!("liverecord: cannot link {} to parsebin: {e:?}", pad.name());
            }
        }
    }

    /// A parsed stream: through a queue to the sink's pad of its kind; a
    /// second stream of a kind goes to a fakesink.
    fn link(&self, pad: &gst::Pad) {
        let (Some(pipeline), Some(rec)) = (self.pipeline.upgrade(), self.rec.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let kind = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let target = if kind.starts_with("video/") {
            rec.static_pad("video")
        } else if kind.starts_with("audio/") {
            rec.static_pad("audio")
        } else {
            None
        }
        .filter(|p| !p.is_linked());
        let make = |f: &str| gst::ElementFactory::make(f).build().ok();
        let Some(target) = target else {
            // Not recorded: consumed, so that the demuxer does not stop.
            if let Some(sink) = make("fakesink") {
                sink.set_property("sync", false);
                sink.set_property("async", false);
                if pipeline.add(&sink).is_ok() {
                    lock(&self.elements).push(sink.clone());
                    let _ = sink.sync_state_with_parent();
                    if let Some(s) = sink.static_pad("sink") {
                        let _ = pad.link(&s);
                    }
                }
            }
            return;
        };
        let Some(queue) = make("queue") else { return };
        // Up to 20 s of media: the sink may hold one stream while it waits
        // for the other to start.
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 20_000_000_000u64);
        if pipeline.add(&queue).is_err() {
            return;
        }
        lock(&self.elements).push(queue.clone());
        let _ = queue.sync_state_with_parent();
        let (Some(qsink), Some(qsrc)) = (queue.static_pad("sink"), queue.static_pad("src")) else {
            return;
        };
        if pad.link(&qsink).is_err() || qsrc.link(&target).is_err() {
            eprintln!("liverecord: cannot link a {kind} stream to the recorder");
            return;
        }
        lock(&self.watch).linked += 1;
        let watch = self.watch.clone();
        qsrc.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let mut w = lock(&watch);
                match &info.data {
                    // Some sources (rtspsrc before its first RTCP sync)
                    // give the first frames no timestamp; the sink would
                    // stop with an error: they are dropped here, counted.
                    Some(gst::PadProbeData::Buffer(b))
                        if b.pts().is_none() && b.dts().is_none() =>
                    {
                        w.untimed += 1;
                        return gst::PadProbeReturn::Drop;
                    }
                    Some(gst::PadProbeData::Buffer(b)) => {
                        w.bytes += b.size() as u64;
                        w.first_data.get_or_insert_with(Instant::now);
                    }
                    Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                        w.eos += 1;
                        if w.eos >= w.linked {
                            w.ended = true;
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
}
