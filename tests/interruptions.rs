// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interruptions and sessions (SPEC §6, §3 `interruption-gap`,
//! `idle-timeout`, `min-file-duration`), with scripted timelines: the test
//! pushes pre-encoded H.264 and AAC into the element from its own pads and
//! decides every timestamp, flag and event. Every output is checked with
//! ffprobe; every frame pushed is found in exactly one file.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::scripted::*;
use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn reasons(closed: &[gst::Structure]) -> Vec<String> {
    closed.iter().map(|c| get_str(c, "reason")).collect()
}

fn sessions(closed: &[gst::Structure]) -> Vec<u64> {
    closed.iter().map(|c| get_u64(c, "session-id")).collect()
}

fn loc(c: &gst::StructureRef) -> PathBuf {
    PathBuf::from(get_str(c, "location"))
}

/// The files under `rec/` are exactly the closed locations, and no `.part`
/// is left.
fn assert_files_are(td: &TestDir, closed: &[gst::Structure]) {
    let all = files_under(&td.rec_dir());
    assert!(
        with_ext(&all, "part").is_empty(),
        ".part files left: {all:?}"
    );
    let mut want: Vec<PathBuf> = closed.iter().map(|c| loc(c)).collect();
    want.sort();
    assert_eq!(all, want, "files on disk != closed locations");
}

/// Each file lasts `want` seconds (±`tol`), by its file-closed `duration`
/// and by ffprobe.
fn assert_durations(closed: &[gst::Structure], want: &[f64], tol: f64) {
    assert_eq!(closed.len(), want.len());
    for (c, w) in closed.iter().zip(want) {
        let msg = get_u64(c, "duration") as f64 / 1e9;
        let probe = duration(&loc(c));
        assert!(
            (msg - w).abs() <= tol && (probe - w).abs() <= tol,
            "{}: duration {msg} s in file-closed, {probe} s by ffprobe; want {w} s (±{tol})",
            loc(c).display()
        );
    }
}

/// Each file has video and audio, starts with a keyframe, and its audio
/// starts within one audio frame of its video (SPEC §4).
fn assert_av_files(closed: &[gst::Structure]) {
    for c in closed {
        let l = loc(c);
        assert_starts_with_keyframe(&l);
        let p = packets(&l);
        assert_eq!(p.streams, ["video", "audio"], "{}: streams", l.display());
        let t = stream_start_times(&l);
        let (v, a) = (t["video"], t["audio"]);
        assert!(
            (v - a).abs() <= 1024.0 / 48000.0 + 0.001,
            "{}: video starts at {v} s, audio at {a} s",
            l.display()
        );
    }
}

/// Each file holds exactly the frames of one run: none moved across the
/// interruption (the file-closed counts, which `check_frames` matches
/// against ffprobe).
fn assert_runs(closed: &[gst::Structure], runs: &[Pushed]) {
    let got: Vec<Pushed> = closed
        .iter()
        .map(|c| Pushed {
            video: get_u64(c, "video-frames"),
            audio: get_u64(c, "audio-frames"),
        })
        .collect();
    assert_eq!(got, runs, "frames per file != frames per run pushed");
}

fn assert_no_errors(s: &Scripted) {
    assert!(
        s.r.errors().is_empty(),
        "errors on the bus: {:?}",
        s.r.errors()
    );
}

/// The checks of a recording that ends in a new session: EOS, then the
/// files, their reasons, two different sessions, durations, A/V alignment
/// and the frames of each run in its own file.
fn finish_two_sessions(
    s: &mut Scripted,
    td: &TestDir,
    want_reasons: [&str; 2],
    want_durations: [f64; 2],
    runs: [Pushed; 2],
) -> Vec<gst::Structure> {
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_eq!(closed.len(), 2, "file-closed messages: {closed:#?}");
    assert_files_are(td, &closed);
    assert_eq!(reasons(&closed), want_reasons);
    let ss = sessions(&closed);
    assert_ne!(ss[0], ss[1], "both files are in session {}", ss[0]);
    assert_durations(&closed, &want_durations, 0.3);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
    assert_runs(&closed, &runs);
    closed
}

/// Waits for EOS on the bus, at most `timeout`; `None` if none came.
/// An error fails the test.
fn pop_eos(s: &Scripted, timeout: Duration) -> Option<Duration> {
    let bus = s.r.pipeline.bus().unwrap();
    let t0 = Instant::now();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    )?;
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("pipeline failed: {} ({:?})", e.error(), e.debug());
    }
    Some(t0.elapsed())
}

/// 10 s of AV, a 10 s hole in the timestamps, 10 s more: two files of
/// 10 s (not 20), in two sessions.
#[test]
fn timestamp_gap_splits_sessions() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |_| {});
    let a = s.push_secs(0.0, 10.0);
    let b = s.push_secs(20.0, 10.0);
    let closed = finish_two_sessions(&mut s, &td, ["interrupted", "eos"], [10.0, 10.0], [a, b]);
    assert_eq!(
        closed
            .iter()
            .map(|c| get_u64(c, "start-running-time"))
            .collect::<Vec<_>>(),
        [0, 20 * SECOND],
        "start running times"
    );
}

/// A DISCONT flag without a hole in the timestamps is packet loss, not an
/// interruption: one file.
#[test]
fn discont_flag_alone_is_not_an_interruption() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |_| {});
    s.push_run(Run {
        discont_at: Some(5 * SECOND + SECOND / 2),
        ..Run::secs(0.0, 10.0)
    });
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1, "file-closed messages: {closed:#?}");
    assert_files_are(&td, &closed);
    assert_eq!(reasons(&closed), ["eos"]);
    assert_durations(&closed, &[10.0], 0.3);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
}

/// EOS, then a new STREAM_START with more data (a source that restarted,
/// timestamps from 0 again), then EOS: two files in two sessions, the
/// second finalised after the second EOS, and EOS on the bus at the end.
#[test]
fn stream_start_after_eos_records_a_new_session() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |_| {});
    let a = s.push_secs(0.0, 5.0);
    s.eos();
    // SPEC §6: after EOS the element finalises every file and posts EOS.
    let first_eos = pop_eos(&s, TIMEOUT);
    eprintln!("first EOS on the bus: {first_eos:?} after the first EOS event");
    let closed = wait_messages(&s.r, "liverecordsink-file-closed", 1, TIMEOUT);
    assert_eq!(reasons(&closed), ["eos"]);
    assert!(
        first_eos.is_some(),
        "no EOS message on the bus within {TIMEOUT:?} of EOS on every pad, though the first file was finalised"
    );

    assert!(
        s.stream_start(),
        "the element refused STREAM_START, caps or segment after EOS"
    );
    let b = s.push_secs(0.0, 5.0);
    // The second recording is open, and not finalised before its EOS.
    wait_messages(&s.r, "liverecordsink-file-opened", 2, TIMEOUT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.r.closed().len(),
        1,
        "the second file was closed before the second EOS: {:#?}",
        s.r.closed()
    );
    s.eos();
    // The second file is finalised, then EOS reaches the bus (it is posted
    // after the last file-closed, so 10 s more is plenty).
    let t = Instant::now();
    wait_messages(&s.r, "liverecordsink-file-closed", 2, TIMEOUT);
    let closed_after = t.elapsed();
    let second_eos = pop_eos(&s, Duration::from_secs(10));
    eprintln!(
        "second file closed {closed_after:?} after the second EOS event; EOS on the bus: {second_eos:?}"
    );
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_files_are(&td, &closed);
    assert_eq!(reasons(&closed), ["eos", "eos"]);
    let ss = sessions(&closed);
    assert_ne!(ss[0], ss[1], "both files are in session {}", ss[0]);
    assert_durations(&closed, &[5.0, 5.0], 0.3);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
    assert_runs(&closed, &[a, b]);
    // Checked last, so that the files are verified whatever happens here.
    assert!(
        second_eos.is_some(),
        "both files were finalised, but no EOS message reached the bus within 10 s of the \
         second file-closed (SPEC §6: after EOS the element finalises every file and posts EOS)"
    );
}

/// A new STREAM_START with a different stream id, without EOS and without
/// a hole in the timestamps (SPEC §6): the file closes as `interrupted` and
/// a new session starts.
#[test]
fn new_stream_id_is_an_interruption() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |_| {});
    let a = s.push_secs(0.0, 5.0);
    assert!(
        s.stream_start(),
        "the element refused a new STREAM_START, caps or segment"
    );
    let b = s.push_secs(5.0, 5.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_eq!(closed.len(), 2, "file-closed messages: {closed:#?}");
    assert_files_are(&td, &closed);
    // Frames first: the most telling check when the two STREAM_STARTs are
    // taken as two interruptions.
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
    assert_runs(&closed, &[a, b]);
    assert_eq!(reasons(&closed), ["interrupted", "eos"]);
    let ss = sessions(&closed);
    assert_ne!(ss[0], ss[1], "both files are in session {}", ss[0]);
    assert_durations(&closed, &[5.0, 5.0], 0.3);
    assert_av_files(&closed);
}

/// A live source that stops: with idle-timeout=1000 the file is closed
/// within 1.5 s of the last buffer, not when data resumes; resumed data
/// (timestamps continuing in real time) opens a new file.
#[test]
fn idle_timeout_closes_at_once_and_data_resumes() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |rec| {
        rec.set_property("idle-timeout", 1000u32);
    });
    s.live = true;

    let t0 = s.running_time() + 50_000_000;
    let first = s.push_run(Run {
        start: t0,
        duration: 3 * SECOND,
        discont_at: None,
    });
    let last = s.last_push().unwrap();
    let seen = wait_for(Duration::from_secs(10), || !s.r.closed().is_empty());
    let after = last.elapsed();
    assert!(
        seen,
        "no file-closed within 10 s of the last buffer; messages: {:#?}",
        s.r.messages()
    );
    eprintln!("file-closed {after:?} after the last buffer");
    assert!(
        after <= Duration::from_millis(1500),
        "file-closed came {after:?} after the last buffer, want at most 1.5 s (idle-timeout=1000 ms)"
    );
    assert_eq!(reasons(&s.r.closed()), ["interrupted"]);
    assert_eq!(s.r.opened().len(), 1);

    // Data resumes 2.5 s after it stopped, timestamps continuing in real time.
    let resume_at = last + Duration::from_millis(2500);
    std::thread::sleep(resume_at.saturating_duration_since(Instant::now()));
    let t1 = s.running_time();
    let second = s.push_run(Run {
        start: t1,
        duration: 2 * SECOND,
        discont_at: None,
    });
    wait_messages(
        &s.r,
        "liverecordsink-file-opened",
        2,
        Duration::from_secs(5),
    );
    assert_eq!(
        s.r.closed().len(),
        1,
        "the resumed file closed early: {:#?}",
        s.r.closed()
    );
    s.live = false;
    finish_two_sessions(
        &mut s,
        &td,
        ["interrupted", "eos"],
        [3.0, 2.0],
        [first, second],
    );
}

/// The idle timeout on a `TestClock` (deterministic; the real-time test is
/// `idle_timeout_closes_at_once_and_data_resumes`): the idle timer is one
/// clock id at the last data + 1 s; just before it nothing closes, at it the
/// file closes with reason `interrupted`; resumed data opens a new file.
#[test]
fn idle_timeout_on_the_pipeline_clock() {
    let td = TestDir::new();
    let clock = test_clock();
    let mut s = Scripted::with_clock(&td, true, true, clock.upcast_ref(), |rec| {
        rec.set_property("idle-timeout", 1000u32);
    });
    let first = s.push_secs(0.0, 3.0);
    s.sync();
    wait_messages(
        &s.r,
        "liverecordsink-file-opened",
        1,
        Duration::from_secs(10),
    );
    // Every frame arrived at clock time 0: the timer is due at 1 s.
    let idle = gst::ClockTime::from_seconds(1);
    wait_pending_at(&clock, idle, Duration::from_secs(10));

    let before = idle - gst::ClockTime::from_mseconds(1);
    assert_eq!(advance_to(&clock, before), 0, "a clock id fired before 1 s");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        s.r.closed().is_empty(),
        "file-closed before the idle timeout: {:#?}",
        s.r.closed()
    );

    // At the expiry (and a stalled lead may ask for one more 20 ms check).
    advance_to(&clock, idle);
    let limit = idle + gst::ClockTime::from_mseconds(100);
    let seen = run_clock_until(&clock, limit, Duration::from_secs(10), || {
        !s.r.closed().is_empty()
    });
    assert!(
        seen,
        "no file-closed at the idle timeout (clock at {}); messages: {:#?}",
        clock.time(),
        s.r.messages()
    );
    assert_eq!(reasons(&s.r.closed()), ["interrupted"]);
    assert_eq!(s.r.opened().len(), 1);

    // Data resumes 2.5 s after it stopped, timestamps continuing.
    advance_to(&clock, gst::ClockTime::from_mseconds(5500));
    let t1 = s.running_time();
    assert_eq!(t1, ns(5.5), "running time on the test clock");
    let second = s.push_run(Run {
        start: t1,
        duration: 2 * SECOND,
        discont_at: None,
    });
    wait_messages(
        &s.r,
        "liverecordsink-file-opened",
        2,
        Duration::from_secs(10),
    );
    assert_eq!(
        s.r.closed().len(),
        1,
        "the resumed file closed early: {:#?}",
        s.r.closed()
    );
    finish_two_sessions(
        &mut s,
        &td,
        ["interrupted", "eos"],
        [3.0, 2.0],
        [first, second],
    );
}

/// A source restarted with timestamps 30 s earlier: a new file, no error,
/// every frame kept.
#[test]
fn backward_timestamps_start_a_new_file() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |_| {});
    let a = s.push_secs(0.0, 40.0);
    let b = s.push_secs(10.0, 10.0);
    finish_two_sessions(&mut s, &td, ["interrupted", "eos"], [40.0, 10.0], [a, b]);
}

/// A resolution change (new caps, new encoded frames) closes the file with
/// `caps-changed` and opens one at the new resolution.
#[test]
fn caps_change_starts_a_new_file() {
    let td = TestDir::new();
    let big = h264_640x360();
    let mut s = Scripted::new(&td, true, true, |_| {});
    let a = s.push_secs(0.0, 5.0);
    assert!(s.set_video(big), "the element refused the new caps");
    let b = s.push_secs(5.0, 5.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_eq!(closed.len(), 2, "file-closed messages: {closed:#?}");
    assert_files_are(&td, &closed);
    assert_eq!(reasons(&closed), ["caps-changed", "eos"]);
    assert_eq!(video_size(&loc(&closed[0])), (320, 240));
    assert_eq!(video_size(&loc(&closed[1])), (640, 360));
    assert_durations(&closed, &[5.0, 5.0], 0.3);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
    assert_runs(&closed, &[a, b]);
}

/// With min-file-duration=2000, a 1 s recording cut by a gap is deleted
/// and announced with `file-discarded`; the 5 s one is kept.
#[test]
fn short_file_is_discarded() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |rec| {
        rec.set_property("min-file-duration", 2000u32);
    });
    let short = s.push_secs(0.0, 1.0);
    let long = s.push_secs(5.0, 5.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let discarded = s.r.messages_named("liverecordsink-file-discarded");
    assert_eq!(
        discarded.len(),
        1,
        "file-discarded messages: {discarded:#?}"
    );
    let d = &discarded[0];
    assert_fields(
        d,
        &["stream-id", "session-id", "index", "format", "duration"],
    );
    assert!(
        d.has_field("discard-reason"),
        "file-discarded has no discard-reason: {d}"
    );
    let dloc = get_str(d, "location");
    assert!(
        !Path::new(&dloc).exists(),
        "the discarded file is still there: {dloc}"
    );
    let dd = get_u64(d, "duration") as f64 / 1e9;
    assert!((dd - 1.0).abs() <= 0.3, "discarded duration {dd} s");
    assert_eq!(
        (get_u64(d, "video-frames"), get_u64(d, "audio-frames")),
        (short.video, short.audio),
        "frames of the discarded file"
    );

    let closed = s.r.closed();
    assert_eq!(closed.len(), 1, "file-closed messages: {closed:#?}");
    assert_files_are(&td, &closed);
    assert_eq!(reasons(&closed), ["eos"]);
    assert_durations(&closed, &[5.0], 0.3);
    assert_av_files(&closed);
    check_frames(&closed, long.video, long.audio);
    let index = read_index(&td.index_path());
    assert_eq!(index.len(), 1, "index records: {index:#?}");
    assert_eq!(
        rec_str(&index[0], "location"),
        get_str(&closed[0], "location")
    );
    assert_ne!(
        get_u64(d, "session-id"),
        get_u64(&closed[0], "session-id"),
        "the gap did not end the session"
    );
}

/// Audio running 1.5 s ahead of video across cuts: the element holds audio
/// back until video decides each cut, and video must never wait inside the
/// muxer for that audio (no deadlock). Every frame lands in exactly one
/// file, and each file's audio starts with its first video frame.
#[test]
fn audio_leading_video_across_cuts() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |r| {
        r.set_property("record-interval", 2u32);
    });
    s.video_lead = -1_500_000_000;
    s.push_secs(0.0, 10.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    // 1 s GOPs: cuts at 2, 4, 6 and 8 s.
    assert_eq!(
        reasons(&closed),
        ["interval", "interval", "interval", "interval", "eos"]
    );
    assert_files_are(&td, &closed);
    assert_durations(&closed, &[2.0, 2.0, 2.0, 2.0, 2.0], 0.1);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
}

/// Audio lagging far behind video (its queue held back) across two
/// interruptions, a gap and a caps change: video reports both breaks before
/// audio reaches either. Audio crosses each break in turn, lands in the
/// file of its own time, and makes no break of its own.
#[test]
fn audio_lagging_video_across_two_breaks() {
    let td = TestDir::new();
    let big = h264_640x360();
    let mut s = Scripted::new(&td, true, true, |_| {});
    // Hold every audio buffer in the audio queue until video is done.
    let held = std::sync::Arc::new((std::sync::Mutex::new(true), std::sync::Condvar::new()));
    let queue_src =
        s.r.pipeline
            .by_name("scripted-audio-queue")
            .and_then(|q| q.static_pad("src"))
            .expect("no audio queue");
    let h = held.clone();
    let probe = queue_src
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let (lock, cv) = &*h;
            let mut g = lock.lock().unwrap();
            let deadline = Instant::now() + TIMEOUT;
            while *g && Instant::now() < deadline {
                g = cv.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
            }
            gst::PadProbeReturn::Ok
        })
        .expect("cannot hold audio");
    // 7 s of video in all: a file waiting for its audio holds at most 8 s
    // before video waits too (as a muxer's queue would).
    let a = s.push_secs(0.0, 2.0);
    let b = s.push_secs(4.5, 1.5);
    assert!(s.set_video(big), "the element refused the new caps");
    let c = s.push_secs(6.0, 1.0);
    let total_video = a.video + b.video + c.video;
    let stats = || s.r.rec.property::<gst::Structure>("stats");
    assert!(
        wait_for(TIMEOUT, || stats().get::<u64>("video-frames").unwrap_or(0)
            >= total_video),
        "video did not run ahead of held audio: {}",
        stats()
    );
    assert_eq!(
        stats().get::<u64>("audio-frames").unwrap_or(0),
        0,
        "audio was not held"
    );
    {
        let (lock, cv) = &*held;
        *lock.lock().unwrap() = false;
        cv.notify_all();
    }
    queue_src.remove_probe(probe);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert_no_errors(&s);

    let closed = check_announcements(&s.r.messages(), &td.index_path());
    assert_eq!(
        reasons(&closed),
        ["interrupted", "caps-changed", "eos"],
        "file-closed messages: {closed:#?}"
    );
    let ss = sessions(&closed);
    assert!(ss[0] < ss[1] && ss[1] < ss[2], "sessions {ss:?}");
    // Files held while audio lagged keep the caps of their own frames.
    assert_eq!(video_size(&loc(&closed[1])), (320, 240));
    assert_eq!(video_size(&loc(&closed[2])), (640, 360));
    assert_files_are(&td, &closed);
    assert_durations(&closed, &[2.0, 1.5, 1.0], 0.3);
    assert_av_files(&closed);
    let p = s.pushed();
    check_frames(&closed, p.video, p.audio);
    assert_runs(&closed, &[a, b, c]);
}
