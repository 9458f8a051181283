// SPDX-License-Identifier: MIT OR Apache-2.0
//! The element's interface (SPEC §2, §3): properties, defaults, units, pads,
//! the `split-now` signal and validation at PAUSED.

mod common;

use std::time::Duration;

use common::*;
use gst::glib;
use gst::prelude::*;
use gstliverecord::{Formats, RecordType};

fn make() -> gst::Element {
    init();
    gst::ElementFactory::make("liverecordsink")
        .build()
        .expect("liverecordsink is not registered")
}

#[test]
fn properties_and_defaults() {
    let e = make();
    let s = |n: &str| e.property::<Option<String>>(n).unwrap_or_default();
    assert_eq!(
        s("location"),
        "recordings/{stream_id}/{stream_id}_{start:%Y%m%dT%H%M%SZ}_{index}"
    );
    assert_eq!(s("stream-id"), "live");
    assert_eq!(s("index-location"), "recordings/index.jsonl");
    assert_eq!(s("playback-url-template"), "");
    assert_eq!(e.property::<u32>("record-interval"), 7200);
    assert_eq!(e.property::<u32>("mp4-fragment-duration"), 1000);
    assert_eq!(e.property::<Formats>("formats"), Formats::MP4);
    assert_eq!(e.property::<RecordType>("record-type"), RecordType::Av);
    assert!(!e.property::<bool>("recording"));
    let stats = e.property::<gst::Structure>("stats");
    for f in [
        "files-closed",
        "bytes-written",
        "video-frames",
        "audio-frames",
        "frames-dropped",
        "interruptions",
    ] {
        assert!(stats.has_field(f), "stats lacks {f}: {stats}");
    }

    let spec = |n: &str| {
        e.find_property(n)
            .unwrap_or_else(|| panic!("no property {n}"))
    };
    // Out-of-range values are accepted by GObject and refused at PAUSED
    // with an error naming the property (tests/real_input.rs), instead of
    // being clamped with a warning; the description states the range.
    let iv = spec("record-interval");
    assert!(iv.blurb().unwrap_or_default().contains("1 to 7200"));
    assert!(!spec("recording")
        .flags()
        .contains(glib::ParamFlags::WRITABLE));
    assert!(!spec("stats").flags().contains(glib::ParamFlags::WRITABLE));

    // gst-inspect states the unit of every time value (SPEC §3).
    for (name, unit) in [
        ("record-interval", "second"),
        ("mp4-fragment-duration", "ms"),
    ] {
        let p = spec(name);
        let text = format!("{} {}", p.nick(), p.blurb().unwrap_or_default());
        assert!(
            text.contains(unit),
            "{name} does not state its unit: {text}"
        );
    }

    // setting formats/record-type by nick works (gst-launch syntax)
    e.set_property_from_str("formats", "mp4+hls");
    assert_eq!(
        e.property::<Formats>("formats"),
        Formats::MP4 | Formats::HLS
    );
    e.set_property_from_str("record-type", "audio");
    assert_eq!(e.property::<RecordType>("record-type"), RecordType::Audio);
}

#[test]
fn request_pads_at_most_one_each() {
    let e = make();
    let templ = |n: &str| {
        e.pad_template(n)
            .unwrap_or_else(|| panic!("no {n} template"))
    };
    let v = e.request_pad_simple("video").expect("no video pad");
    assert_eq!(v.name(), "video");
    assert!(
        e.request_pad(&templ("video"), None, None).is_none(),
        "a second video pad was given"
    );
    let a = e.request_pad_simple("audio").expect("no audio pad");
    assert_eq!(a.name(), "audio");
    assert!(
        e.request_pad(&templ("audio"), None, None).is_none(),
        "a second audio pad was given"
    );
    e.release_request_pad(&v);
    e.release_request_pad(&a);
    assert!(e.static_pad("video").is_none());
    // split-now exists and is harmless when nothing is recorded.
    e.emit_by_name::<()>("split-now", &[]);
}

#[test]
fn empty_stream_id_fails_at_paused() {
    let td = TestDir::new();
    let rec = make();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&rec).unwrap();
    rec.set_property("location", td.default_location().as_str());
    rec.set_property("index-location", td.index_path().to_str().unwrap());
    rec.set_property("stream-id", "");
    let r = Recording::with(pipeline, rec);
    assert!(r.pipeline.set_state(gst::State::Paused).is_err());
    match r.wait_end(Duration::from_secs(10)) {
        End::Error(e) => assert!(e.contains("stream-id"), "error: {e}"),
        End::Eos => panic!("EOS instead of an error"),
    }
}
