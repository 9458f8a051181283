// SPDX-License-Identifier: MIT OR Apache-2.0
//! Records a synthetic live stream (videotestsrc + audiotestsrc, encoded to
//! H.264 + AAC) with `liverecordsink` into `recordings/`, and prints every
//! `liverecordsink-*` message as one JSON line: this is how an application
//! hooks its recording callbacks.
//!
//! Usage: cargo run --release --example demo -- [SECONDS] [RECORD_INTERVAL]
//! (defaults: 25 s of stream, 10 s files).

use std::time::{Duration, Instant};

use gst::prelude::*;

use gstliverecord::json::message_json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(25);
    let interval: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);

    gst::init()?;
    gstliverecord::plugin_register_static()?;

    for (element, package) in [
        ("x264enc", "gstreamer1.0-plugins-ugly"),
        ("avenc_aac", "gstreamer1.0-libav"),
        ("h264parse", "gstreamer1.0-plugins-bad"),
        ("mp4mux", "gstreamer1.0-plugins-good"),
    ] {
        if gst::ElementFactory::find(element).is_none() {
            return Err(
                format!("GStreamer element {element} is missing: install {package}").into(),
            );
        }
    }

    let pipeline = gst::parse::launch(&format!(
        "liverecordsink name=rec stream-id=demo record-interval={interval} \
           location=recordings/{{stream_id}}/{{stream_id}}_{{start:%Y%m%dT%H%M%SZ}}_{{index}} \
           index-location=recordings/index.jsonl \
           playback-url-template=https://vod.example.com/{{path}} \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
           ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=60 bitrate=1500 \
           ! h264parse ! queue ! rec.video \
         audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=2 \
           ! avenc_aac ! aacparse ! queue ! rec.audio"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;

    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    pipeline.set_state(gst::State::Playing)?;
    eprintln!("demo: recording {seconds} s into recordings/ ({interval} s files)…");

    let started = Instant::now();
    let mut eos_sent = false;
    let deadline = Duration::from_secs(seconds + 60);
    let result = loop {
        if !eos_sent && started.elapsed() >= Duration::from_secs(seconds) {
            eprintln!("demo: sending EOS");
            pipeline.send_event(gst::event::Eos::new());
            eos_sent = true;
        }
        if started.elapsed() > deadline {
            break Err("timed out waiting for EOS".to_string());
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    if s.name().starts_with("liverecordsink-") {
                        println!("{}", message_json(s));
                    }
                }
            }
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "error from {}: {} ({})",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error(),
                    e.debug().unwrap_or_default()
                ))
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    match result {
        Ok(()) => {
            eprintln!("demo: done; see recordings/ and recordings/index.jsonl");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
