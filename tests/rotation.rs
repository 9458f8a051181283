// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interval rotation and `split-now` with real encoders (SPEC §3, §4, §8):
//! files, frame conservation, keyframes, messages and the index, all checked
//! with ffprobe.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(180);

/// The `.mp4`/`.m4a` files, no `.part` left, and nothing else.
fn final_files(td: &TestDir, ext: &str) -> Vec<std::path::PathBuf> {
    let all = files_under(&td.rec_dir());
    assert!(
        with_ext(&all, "part").is_empty(),
        ".part files left after EOS: {all:?}"
    );
    let files = with_ext(&all, ext);
    assert_eq!(files.len(), all.len(), "unexpected files: {all:?}");
    files
}

fn reasons(closed: &[gst::Structure]) -> Vec<String> {
    closed.iter().map(|c| get_str(c, "reason")).collect()
}

fn durations(closed: &[gst::Structure]) -> Vec<f64> {
    closed
        .iter()
        .map(|c| duration(Path::new(&get_str(c, "location"))))
        .collect()
}

fn assert_durations(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "durations {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol,
            "file durations {got:?} s, want {want:?} s (±{tol})"
        );
    }
}

#[test]
fn sixty_five_seconds_in_four_files() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let r = Recording::launch_av(&td, "record-interval=20", 1950, 65.0);
    let video = r.count_pad("video");
    let audio = r.count_pad("audio");
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();

    assert_eq!(video.count(), 1950, "video frames pushed into the element");
    let files = final_files(&td, "mp4");
    assert_eq!(files.len(), 4, "files: {files:?}");

    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(r.opened().len(), 4, "file-opened messages");
    assert_eq!(closed.len(), 4, "file-closed messages");
    assert_eq!(
        reasons(&closed),
        ["interval", "interval", "interval", "eos"],
        "close reasons"
    );
    for c in &closed {
        let loc = get_str(c, "location");
        assert!(files.contains(&loc.clone().into()), "{loc} not on disk");
        assert_starts_with_keyframe(Path::new(&loc));
        let p = packets(Path::new(&loc));
        assert_eq!(p.streams.len(), 2, "{loc}: streams {:?}", p.streams);
    }
    assert_durations(&durations(&closed), &[20.0, 20.0, 20.0, 5.0], 0.5);
    // Keyframes every second: the cuts are exactly at 20, 40 and 60 s.
    let starts: Vec<u64> = closed
        .iter()
        .map(|c| get_u64(c, "start-running-time"))
        .collect();
    assert_eq!(
        starts,
        [0, 20_000_000_000, 40_000_000_000, 60_000_000_000],
        "start running times"
    );
    for c in &closed {
        // The audio at the start of a file lines up with the first video
        // frame within one audio frame (SPEC §4).
        let loc = get_str(c, "location");
        let t = stream_start_times(Path::new(&loc));
        let (v, a) = (t["video"], t["audio"]);
        assert!(
            (v - a).abs() <= 1024.0 / 48000.0 + 0.001,
            "{loc}: video starts at {v} s, audio at {a} s"
        );
    }
    check_frames(&closed, video.count(), audio.count());
}

#[test]
fn video_only_recording() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=5 {} ! rec.video",
        video_branch(Some(360), false)
    ));
    r.set_location(&td);
    let video = r.count_pad("video");
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();

    assert_eq!(video.count(), 360);
    let files = final_files(&td, "mp4");
    assert_eq!(files.len(), 3, "files: {files:?}");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(reasons(&closed), ["interval", "interval", "eos"]);
    for c in &closed {
        let loc = get_str(c, "location");
        assert_starts_with_keyframe(Path::new(&loc));
        let p = packets(Path::new(&loc));
        assert_eq!(p.streams, ["video"], "{loc}: streams");
        assert_eq!(get_u64(c, "audio-frames"), 0);
    }
    assert_durations(&durations(&closed), &[5.0, 5.0, 2.0], 0.2);
    check_frames(&closed, video.count(), 0);
}

#[test]
fn audio_only_pad_recording() {
    require_elements(&["audiotestsrc", "avenc_aac", "aacparse", "mp4mux"]);
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=5 {} ! rec.audio",
        audio_branch(Some(audio_buffers_for(12.0)), false)
    ));
    r.set_location(&td);
    let audio = r.count_pad("audio");
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();

    assert!(audio.count() > 0);
    let files = final_files(&td, "m4a");
    assert_eq!(files.len(), 3, "files: {files:?}");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(reasons(&closed), ["interval", "interval", "eos"]);
    for c in &closed {
        let loc = get_str(c, "location");
        assert!(loc.ends_with(".m4a"), "audio-only file is not .m4a: {loc}");
        let p = packets(Path::new(&loc));
        assert_eq!(p.streams, ["audio"], "{loc}: streams");
        assert_eq!(get_u64(c, "video-frames"), 0);
    }
    assert_durations(&durations(&closed), &[5.0, 5.0, 2.0], 0.2);
    check_frames(&closed, 0, audio.count());
}

#[test]
fn split_now_cuts_at_next_keyframe() {
    require_elements(AV_ELEMENTS);
    const REQUEST_AT: u64 = 3_200_000_000;
    let td = TestDir::new();
    let r = Recording::launch_av(&td, "record-interval=7200", 180, 6.0);
    let video = r.count_pad("video");
    let audio = r.count_pad("audio");

    // Emit split-now from the streaming thread, just before the first video
    // frame at or after 3.2 s enters the element; remember that frame.
    let requested_at = std::sync::Arc::new(std::sync::Mutex::new(None::<u64>));
    {
        let rec = r.rec.clone();
        let requested_at = requested_at.clone();
        let pad = r.rec.static_pad("video").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(b)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let rt = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok())
                .zip(b.pts())
                .and_then(|(s, t)| s.to_running_time(t))
                .map(|t| t.nseconds());
            let mut req = requested_at.lock().unwrap();
            if let Some(rt) = rt.filter(|rt| req.is_none() && *rt >= REQUEST_AT) {
                *req = Some(rt);
                drop(req);
                rec.emit_by_name::<()>("split-now", &[]);
            }
            gst::PadProbeReturn::Ok
        });
    }
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();

    let req = requested_at
        .lock()
        .unwrap()
        .expect("split-now was never emitted");
    let frames = video.frames();
    assert_eq!(frames.len(), 180);
    let first_rt = frames[0].0.expect("video without timestamp");
    // The first keyframe at or after the request (the frame in flight when
    // the request was made counts).
    let cut = frames
        .iter()
        .filter_map(|(rt, key)| rt.filter(|_| *key))
        .find(|rt| *rt >= req)
        .expect("no keyframe after the split request");
    eprintln!(
        "split requested at {req} ns, cut expected at {cut} ns; keyframes at {:?}",
        frames
            .iter()
            .filter(|f| f.1)
            .map(|f| f.0.unwrap())
            .collect::<Vec<_>>()
    );

    let files = final_files(&td, "mp4");
    assert_eq!(files.len(), 2, "files: {files:?}");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(reasons(&closed), ["split-requested", "eos"]);
    let second_start = get_u64(&closed[1], "start-running-time");
    assert_eq!(
        second_start, cut,
        "the second file must start at the first keyframe at or after the request"
    );
    assert_eq!(get_u64(&closed[0], "start-running-time"), first_rt);
    // Duration of the first file: up to the cut, plus at most one audio
    // frame that started before it.
    let d0 = get_u64(&closed[0], "duration");
    let want = cut - first_rt;
    assert!(
        d0 >= want && d0 <= want + 22_000_000,
        "first file duration {d0} ns, want {want} ns (+ at most one audio frame)"
    );
    let v0 = video_packets_span(Path::new(&get_str(&closed[0], "location")));
    assert!(
        (v0 - want as f64 / 1e9).abs() < 0.040,
        "video in the first file spans {v0} s, want {} s",
        want as f64 / 1e9
    );
    for c in &closed {
        assert_starts_with_keyframe(Path::new(&get_str(c, "location")));
    }
    check_frames(&closed, video.count(), audio.count());
}
