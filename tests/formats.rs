// SPDX-License-Identifier: MIT OR Apache-2.0
//! Recording channels (SPEC §3 `formats`, `record-type`, §2, §4, §8): MP4,
//! FLV and AAC side by side, audio-only MP4 (`.m4a`), and a format that
//! cannot hold the input's caps. Real encoders, non-live; every output is
//! checked with ffprobe and every frame is found in exactly one file of
//! each channel.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(180);

fn loc(c: &gst::StructureRef) -> PathBuf {
    PathBuf::from(get_str(c, "location"))
}

/// Groups structures by their `format` field, each group sorted by index.
fn by_format(list: Vec<gst::Structure>) -> BTreeMap<String, Vec<gst::Structure>> {
    let mut m: BTreeMap<String, Vec<gst::Structure>> = BTreeMap::new();
    for s in list {
        m.entry(get_str(&s, "format")).or_default().push(s);
    }
    for v in m.values_mut() {
        v.sort_by_key(|s| get_u64(s, "index"));
    }
    m
}

/// Sets the pipeline to NULL on another thread and fails the test if that
/// takes longer than `timeout`.
fn stop_bounded(r: &Recording, timeout: Duration) {
    let p = r.pipeline.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let res = p.set_state(gst::State::Null);
        let _ = tx.send(res.is_ok());
    });
    match rx.recv_timeout(timeout) {
        Ok(ok) => assert!(ok, "cannot set the pipeline to NULL"),
        Err(_) => panic!("setting the pipeline to NULL hung for more than {timeout:?}"),
    }
}

/// formats=mp4+flv+aac with record-interval=10 over 20 s of AV: two files
/// per channel, each channel with its own frames, messages and index
/// records.
#[test]
fn mp4_flv_and_aac_channels_side_by_side() {
    require_elements(AV_ELEMENTS);
    require_elements(&["flvmux"]);
    let td = TestDir::new();
    let r = Recording::launch_av(&td, "formats=mp4+flv+aac record-interval=10", 600, 20.0);
    let video = r.count_pad("video");
    let audio = r.count_pad("audio");
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    assert!(r.errors().is_empty(), "errors: {:?}", r.errors());
    assert_eq!(video.count(), 600, "video frames pushed into the element");
    let (pv, pa) = (video.count(), audio.count());

    // Files on disk: two per channel, no .part.
    let all = files_under(&td.rec_dir());
    assert!(with_ext(&all, "part").is_empty(), ".part left: {all:?}");
    for ext in ["mp4", "flv", "aac"] {
        assert_eq!(
            with_ext(&all, ext).len(),
            2,
            "want two .{ext} files: {all:?}"
        );
    }
    assert_eq!(all.len(), 6, "unexpected files: {all:?}");

    let opened = by_format(r.opened());
    let closed = by_format(r.closed());
    let mut records: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for rec in read_index(&td.index_path()) {
        records
            .entry(rec_str(&rec, "format"))
            .or_default()
            .push(rec);
    }
    assert_eq!(
        closed.keys().collect::<Vec<_>>(),
        ["aac", "flv", "mp4"],
        "file-closed formats"
    );
    for (format, want_video) in [("mp4", pv), ("flv", pv), ("aac", 0)] {
        let cl = &closed[format];
        let op = opened.get(format).cloned().unwrap_or_default();
        let recs = records.get(format).cloned().unwrap_or_default();
        assert_eq!(cl.len(), 2, "{format}: file-closed messages: {cl:#?}");
        assert_eq!(op.len(), 2, "{format}: file-opened messages: {op:#?}");
        assert_eq!(recs.len(), 2, "{format}: index records: {recs:#?}");
        assert_eq!(
            cl.iter().map(|c| get_str(c, "reason")).collect::<Vec<_>>(),
            ["interval", "eos"],
            "{format}: reasons"
        );
        for (c, o) in cl.iter().zip(&op) {
            assert_fields(c, CLOSED_FIELDS);
            assert_fields(o, OPENED_FIELDS);
            let l = loc(c);
            assert_eq!(
                l.extension().and_then(|e| e.to_str()),
                Some(format),
                "{format}: extension of {}",
                l.display()
            );
            assert!(l.exists(), "{} does not exist", l.display());
            assert_eq!(get_u64(o, "index"), get_u64(c, "index"));
            assert_eq!(
                get_u64(o, "start-running-time"),
                get_u64(c, "start-running-time")
            );
            // Its own index record.
            let rec = recs
                .iter()
                .find(|r| rec_u64(r, "index") == get_u64(c, "index"))
                .unwrap_or_else(|| panic!("{format}: no index record for {c}"));
            assert_eq!(rec_str(rec, "location"), get_str(c, "location"));
            assert_eq!(rec_str(rec, "reason"), get_str(c, "reason"));
            for f in ["size", "video-frames", "audio-frames"] {
                assert_eq!(rec_u64(rec, f), get_u64(c, f), "{format}: index {f}");
            }
            assert_eq!(
                get_u64(c, "size"),
                std::fs::metadata(&l).unwrap().len(),
                "{format}: size of {}",
                l.display()
            );
            let d = duration(&l);
            assert!(
                (d - 10.0).abs() <= 0.5,
                "{format}: {} lasts {d} s, want 10 s",
                l.display()
            );
            let p = packets(&l);
            if format == "aac" {
                assert_eq!(p.streams, ["audio"], "{}: streams", l.display());
            } else {
                assert_eq!(p.streams, ["video", "audio"], "{}: streams", l.display());
                assert_starts_with_keyframe(&l);
            }
        }
        // Every frame in exactly one file of this channel.
        check_frames(cl, want_video, pa);
    }
    // The channels cut at the same keyframe.
    let starts = |f: &str| -> Vec<u64> {
        closed[f]
            .iter()
            .map(|c| get_u64(c, "start-running-time"))
            .collect()
    };
    assert_eq!(starts("mp4"), starts("flv"), "mp4 and flv cuts");
    assert_eq!(starts("mp4"), starts("aac"), "mp4 and aac cuts");
    // file-id is unique across channels.
    let mut ids: Vec<String> = closed
        .values()
        .flatten()
        .map(|c| get_str(c, "file-id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "file-ids are not unique: {ids:?}");
}

/// record-type=audio with formats=mp4 and both pads linked: `.m4a` files
/// without a video stream.
#[test]
fn record_type_audio_gives_m4a() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let r = Recording::launch_av(&td, "formats=mp4 record-type=audio", 150, 5.0);
    let audio = r.count_pad("audio");
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    assert!(r.errors().is_empty(), "errors: {:?}", r.errors());

    let all = files_under(&td.rec_dir());
    let m4a = with_ext(&all, "m4a");
    assert_eq!(m4a.len(), 1, "want one .m4a: {all:?}");
    assert_eq!(all.len(), 1, "unexpected files: {all:?}");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1);
    let c = &closed[0];
    assert_eq!(get_str(c, "reason"), "eos");
    assert_eq!(get_u64(c, "video-frames"), 0);
    let l = loc(c);
    assert!(
        get_str(c, "location").ends_with(".m4a"),
        "not .m4a: {}",
        l.display()
    );
    let p = packets(&l);
    assert_eq!(p.streams, ["audio"], "{}: streams", l.display());
    let d = duration(&l);
    assert!((d - 5.0).abs() <= 0.2, "{} lasts {d} s", l.display());
    check_frames(&closed, 0, audio.count());
}

/// H.265 into formats=flv: an error that names the format and the caps; no
/// file, no panic, no hang.
#[test]
fn flv_refuses_h265_with_a_clear_error() {
    require_elements(&["videotestsrc", "x265enc", "h265parse", "flvmux"]);
    let td = TestDir::new();
    let r = Recording::launch(
        "videotestsrc num-buffers=30 \
         ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x265enc speed-preset=ultrafast tune=zerolatency key-int-max=30 \
         ! h265parse ! liverecordsink name=rec formats=flv",
    );
    r.set_location(&td);
    r.play();
    let end = r.wait_end(Duration::from_secs(60));
    stop_bounded(&r, Duration::from_secs(30));
    let End::Error(text) = end else {
        panic!(
            "H.265 into FLV ended without an error; messages: {:#?}",
            r.messages()
        );
    };
    eprintln!("error: {text}");
    assert!(text.contains("flv"), "the error does not name flv: {text}");
    assert!(
        text.contains("video/x-h265"),
        "the error does not name the caps video/x-h265: {text}"
    );
    assert!(
        r.closed().is_empty() && r.opened().is_empty(),
        "files were announced: {:#?}",
        r.messages()
    );
    let all = files_under(&td.rec_dir());
    assert!(all.is_empty(), "files were written: {all:?}");
}
