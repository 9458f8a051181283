// SPDX-License-Identifier: MIT OR Apache-2.0
//! HLS (SPEC §7): resume within `hls-resume-timeout` (one playlist with
//! `#EXT-X-DISCONTINUITY`), expiry (a new playlist; `file-closed` at the
//! expiry on the pipeline clock, with no more data), `mp4+hls`, and real
//! clients: ffprobe, ffmpeg and hls.js in headless Chromium.
//!
//! The timelines are scripted (tests/common/scripted.rs): pre-encoded H.264
//! (320x240, 30 fps, a keyframe every second) and AAC (48 kHz, 1024 samples a
//! frame) pushed with the test's own timestamps. Every segment is checked
//! alone: PAT and PMT first (bytes), ffprobe opens it and sees both streams,
//! its first video packet is a keyframe, and its packets are counted: every
//! frame pushed is in exactly one segment.
//!
//! Every wait is bounded. Missing tools fail the test with what to install:
//! `apt-get install ffmpeg`, and for the browser test
//! `bash scripts/install-browser-deps.sh` (Debian's chromium, and hls.js and
//! playwright-core from tests/browser/package-lock.json).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hls_check::*;
use common::packets::decoded_video_frames;
use common::process::{run_bounded, NODE_PKG};
use common::scripted::*;
use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A finished recording: its directory, its messages in posting order and
/// what was pushed.
struct Recorded {
    td: TestDir,
    msgs: Vec<gst::Structure>,
    pushed: Pushed,
}

impl Recorded {
    fn closed(&self) -> Vec<&gst::Structure> {
        named(&self.msgs, "liverecordsink-file-closed")
    }

    fn closed_hls(&self) -> Vec<&gst::Structure> {
        self.closed()
            .into_iter()
            .filter(|c| get_str(c, "format") == "hls")
            .collect()
    }
}

/// 10 s of audio and video from running time 0, nothing for 10 s, then 10 s
/// more from running time 20 s, then EOS; pushed as fast as the element
/// takes them (PLAYING, default idle timeout), with `formats` and
/// `hls-resume-timeout` (s).
fn record_gap_timeline(td: TestDir, formats: &str, resume: u32) -> Recorded {
    let mut s = Scripted::new(&td, true, true, |e| {
        e.set_property_from_str("formats", formats);
        e.set_property("hls-resume-timeout", resume);
    });
    s.push_secs(0.0, 10.0);
    s.push_secs(20.0, 10.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    let pushed = s.pushed();
    let errors = s.r.errors();
    assert!(errors.is_empty(), "bus errors: {errors:?}");
    let msgs = s.r.messages();
    drop(s);
    Recorded { td, msgs, pushed }
}

/// The recording of test 1 (`formats=hls`, `hls-resume-timeout=30`), made
/// once and shared with the client tests. It is made in
/// `target/tmp/hls-shared-<pid>-XXXXXX` (cargo's `CARGO_TARGET_TMPDIR`) and
/// removed when the last of its `USERS` tests is done with it. When only
/// some of them run (a filter), it outlives the process: the next run of
/// this file removes every `hls-shared-<pid>-*` whose process is gone, so at
/// most one stays, under `target/`, never in the system temp dir.
const USERS: usize = 5;
static SHARED: Mutex<(Option<Arc<Recorded>>, usize)> = Mutex::new((None, 0));
const SHARED_PREFIX: &str = "hls-shared-";

struct SharedRef(Arc<Recorded>);

impl Drop for SharedRef {
    fn drop(&mut self) {
        let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        if g.1 >= USERS {
            g.0 = None;
        }
    }
}

/// Removes the shared recordings left by test processes that are gone.
fn remove_stale_shared(base: &Path) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SHARED_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn shared_gap_recording() -> SharedRef {
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if g.0.is_none() {
        // A panic here poisons nothing: the next test records again.
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_shared(base);
        let td = TestDir::new_in(base, &format!("{SHARED_PREFIX}{}-", std::process::id()));
        g.0 = Some(Arc::new(record_gap_timeline(td, "hls", 30)));
    }
    SharedRef(g.0.clone().unwrap())
}

fn the_playlist(r: &Recorded) -> PathBuf {
    let closed = r.closed_hls();
    assert_eq!(closed.len(), 1, "one HLS playlist expected: {closed:#?}");
    PathBuf::from(get_str(closed[0], "location"))
}

/// Every file in `dir` belongs to one of the playlists (the playlist or one
/// of its segments) or is an MP4 in `mp4s`.
fn assert_only_these_files(dir: &Path, playlists: &[&Playlist], mp4s: &[PathBuf]) {
    let mut expected: Vec<PathBuf> = mp4s.to_vec();
    for pl in playlists {
        expected.push(pl.path.clone());
        expected.extend(pl.segment_paths());
    }
    expected.sort();
    let mut all = files_under(dir);
    all.retain(|p| !p.to_string_lossy().ends_with(".lock"));
    assert_eq!(all, expected, "files in {}", dir.display());
}

// --------------------------------------------------------------------- tests

/// Test 1: a 10 s break within a 30 s resume timeout keeps one playlist,
/// with one DISCONTINUITY, every frame, every segment decodable alone.
#[test]
fn resume_within_timeout_keeps_one_playlist_with_discontinuity() {
    let r = shared_gap_recording();
    let r = &*r.0;
    let closed = check_announcements(&r.msgs, &r.td.index_path());
    assert_eq!(closed.len(), 1, "exactly one file-closed: {closed:#?}");
    let c = &closed[0];
    assert_eq!(get_str(c, "format"), "hls");
    assert_eq!(get_str(c, "reason"), "eos", "{c}");
    assert_eq!(read_index(&r.td.index_path()).len(), 1, "one index record");

    let (pl, probes) = check_hls_recording(&r.msgs, c, true, true);
    let table = describe(&pl, &probes);
    assert_eq!(
        pl.text.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "exactly one #EXT-X-DISCONTINUITY:{table}\n{}",
        pl.text
    );
    assert_discontinuities_at(&pl, &probes, &[20.0]);
    for tag in [
        "#EXT-X-ENDLIST",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-MEDIA-SEQUENCE:",
        "#EXT-X-TARGETDURATION:",
    ] {
        assert!(pl.text.contains(tag), "no {tag}:\n{}", pl.text);
    }
    assert_eq!(
        pl.text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
        pl.segments.len(),
        "PROGRAM-DATE-TIME on every segment:\n{}",
        pl.text
    );
    // The break falls between the 10 s before and the 10 s after it.
    let at = pl.segments.iter().position(|s| s.discontinuity).unwrap();
    let before: f64 = pl.segments[..at].iter().map(|s| s.extinf).sum();
    let after: f64 = pl.segments[at..].iter().map(|s| s.extinf).sum();
    assert!(
        (before - 10.0).abs() < 0.1 && (after - 10.0).abs() < 0.1,
        "media before/after the DISCONTINUITY: {before} s / {after} s, 10 s each expected:{table}"
    );
    // 6 s segments cut at keyframes: 6 + 4 on each side.
    assert_eq!(pl.segments.len(), 4, "segments:{table}");
    let (v, a) = sum_frames(&probes);
    assert_eq!(
        (v, a),
        (r.pushed.video, r.pushed.audio),
        "frames (video, audio) in the segments != frames pushed:{table}"
    );
    // The media duration, never the wall time with the break.
    let d = get_u64(c, "duration") as f64 / 1e9;
    assert!((d - 20.0).abs() < 0.1, "file-closed duration {d} s");
    assert_only_these_files(&r.td.rec_dir(), &[&pl], &[]);
}

/// Test 1b: a live stream pauses for 3 s: longer than `interruption-gap`
/// (2 s), shorter than `idle-timeout` (5 s), so the break is seen when data
/// comes back, by the running-time gap. Within the 30 s resume timeout the
/// playlist goes on, and the DISCONTINUITY stands right before the first
/// segment after the break, not before the segment that the break closed.
#[test]
fn live_gap_seen_on_resume_marks_the_right_segment() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |e| {
        e.set_property_from_str("formats", "hls");
        e.set_property("hls-resume-timeout", 30u32);
        e.set_property("hls-segment-duration", 1u32);
    });
    s.live = true;
    s.push_secs(0.0, 2.5);
    s.push_secs(5.5, 2.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    let pushed = s.pushed();
    let msgs = s.r.messages();
    let errors = s.r.errors();
    drop(s);
    assert!(errors.is_empty(), "bus errors: {errors:?}");
    let closed = check_announcements(&msgs, &td.index_path());
    assert_eq!(closed.len(), 1, "one playlist: {closed:#?}");
    assert_eq!(get_str(&closed[0], "reason"), "eos");
    let (pl, probes) = check_hls_recording(&msgs, &closed[0], true, true);
    assert_eq!(pl.discontinuities(), 1, "{}", pl.text);
    assert_discontinuities_at(&pl, &probes, &[5.5]);
    assert_eq!(
        sum_frames(&probes),
        (pushed.video, pushed.audio),
        "frames (video, audio) in the segments != frames pushed:{}",
        describe(&pl, &probes)
    );
    assert_only_these_files(&td.rec_dir(), &[&pl], &[]);
}

/// Test 2: the same 10 s break with a 5 s resume timeout: two playlists,
/// no DISCONTINUITY, the first closed with reason hls-timeout.
#[test]
fn break_longer_than_resume_timeout_starts_a_new_playlist() {
    let r = record_gap_timeline(TestDir::new(), "hls", 5);
    let closed = check_announcements(&r.msgs, &r.td.index_path());
    assert_eq!(closed.len(), 2, "two playlists expected: {closed:#?}");
    let records = read_index(&r.td.index_path());
    let reasons: Vec<String> = records.iter().map(|x| rec_str(x, "reason")).collect();
    assert_eq!(reasons, ["hls-timeout", "eos"], "index reasons in order");
    // In posting order.
    let msg_reasons: Vec<String> = r.closed().iter().map(|c| get_str(c, "reason")).collect();
    assert_eq!(
        msg_reasons,
        ["hls-timeout", "eos"],
        "file-closed reasons in order"
    );
    let mut pls = Vec::new();
    let (mut v, mut a) = (0, 0);
    for c in &closed {
        let (pl, probes) = check_hls_recording(&r.msgs, c, true, true);
        assert_eq!(
            pl.discontinuities(),
            0,
            "no DISCONTINUITY expected:\n{}",
            pl.text
        );
        assert!(
            (pl.duration() - 10.0).abs() < 0.1,
            "each playlist holds 10 s:{}",
            describe(&pl, &probes)
        );
        let (pv, pa) = sum_frames(&probes);
        v += pv;
        a += pa;
        pls.push((pl, probes));
    }
    assert_ne!(
        pls[0].0.path, pls[1].0.path,
        "the second playlist must be a new file"
    );
    assert_ne!(
        get_u64(&closed[0], "session-id"),
        get_u64(&closed[1], "session-id"),
        "an expired break ends the session"
    );
    assert_eq!(
        (v, a),
        (r.pushed.video, r.pushed.audio),
        "frames (video, audio) in all segments != frames pushed"
    );
    assert_only_these_files(&r.td.rec_dir(), &[&pls[0].0, &pls[1].0], &[]);
}

/// Test 3: a live source stops. With idle-timeout=500 ms the element sees
/// the interruption 0.5 s after the last buffer; the 2 s resume timeout runs
/// on the pipeline clock from the last data, so `file-closed` (hls-timeout)
/// comes about 2 s after the last buffer, with no more data. (With an idle
/// timeout longer than the resume timeout the break is only noticed at the
/// idle timeout, and the playlist closes then.)
#[test]
fn live_source_stops_playlist_closes_at_resume_timeout() {
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |e| {
        e.set_property_from_str("formats", "hls");
        e.set_property("hls-resume-timeout", 2u32);
        e.set_property("hls-segment-duration", 1u32);
        e.set_property("idle-timeout", 500u32);
    });
    s.live = true;
    s.push_secs(0.0, 3.0);
    let last = s.last_push().expect("nothing pushed");
    let pushed = s.pushed();
    // While recording: an EVENT playlist without ENDLIST, rewritten after
    // each segment.
    let added = s.r.messages_named("liverecordsink-hls-segment-added");
    assert!(
        added.len() >= 2,
        "1 s segments over 3 s: at least 2 hls-segment-added by now: {added:#?}"
    );
    let growing = parse_playlist(Path::new(&get_str(&added[0], "playlist")));
    assert!(
        !growing.endlist && growing.playlist_type.as_deref() == Some("EVENT"),
        "the playlist being recorded must be EVENT without ENDLIST:\n{}",
        growing.text
    );
    assert!(
        growing.segments.len() >= added.len(),
        "the playlist on disk lists {} segments, {} were announced:\n{}",
        growing.segments.len(),
        added.len(),
        growing.text
    );
    let closed_at = {
        let ok = wait_for(Duration::from_secs(10), || !s.r.closed().is_empty());
        assert!(
            ok,
            "no file-closed within 10 s of the last buffer; messages: {:#?}; errors: {:?}",
            s.r.messages(),
            s.r.errors()
        );
        last.elapsed()
    };
    eprintln!("file-closed came {closed_at:?} after the last buffer");
    let closed = s.r.closed();
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert_eq!(
        get_str(&closed[0], "reason"),
        "hls-timeout",
        "{}",
        closed[0]
    );
    assert!(
        closed_at >= Duration::from_millis(1500) && closed_at <= Duration::from_millis(3500),
        "file-closed came {closed_at:?} after the last buffer; 2 s (1.5 to 3.5 s) expected"
    );
    // Closed for good at that moment: ENDLIST and in the index.
    let loc = PathBuf::from(get_str(&closed[0], "location"));
    assert!(
        parse_playlist(&loc).endlist,
        "no ENDLIST when file-closed was posted"
    );
    assert_eq!(read_index(&td.index_path()).len(), 1);

    // EOS after the expiry changes nothing.
    s.eos();
    s.r.wait_eos(TIMEOUT);
    let msgs = s.r.messages();
    let errors = s.r.errors();
    drop(s);
    assert!(errors.is_empty(), "bus errors: {errors:?}");
    let closed = check_announcements(&msgs, &td.index_path());
    assert_eq!(closed.len(), 1, "one playlist only: {closed:#?}");
    let (pl, probes) = check_hls_recording(&msgs, &closed[0], true, true);
    assert_eq!(pl.discontinuities(), 0);
    assert!(
        pl.segments.len() >= 3,
        "1 s segments over 3 s:{}",
        describe(&pl, &probes)
    );
    assert_eq!(
        sum_frames(&probes),
        (pushed.video, pushed.audio),
        "frames (video, audio) in the segments != frames pushed:{}",
        describe(&pl, &probes)
    );
    assert_only_these_files(&td.rec_dir(), &[&pl], &[]);
}

/// Test 3 on a `TestClock` (deterministic; the real-time test is
/// `live_source_stops_playlist_closes_at_resume_timeout`): the idle timeout
/// (500 ms) sees the break, the resume timeout is one clock id at the last
/// data + 2 s; just before it the playlist stays open, at it the playlist
/// closes with reason `hls-timeout`, ENDLIST and its index record.
#[test]
fn resume_timeout_on_the_pipeline_clock() {
    let td = TestDir::new();
    let clock = test_clock();
    let mut s = Scripted::with_clock(&td, true, true, clock.upcast_ref(), |e| {
        e.set_property_from_str("formats", "hls");
        e.set_property("hls-resume-timeout", 2u32);
        e.set_property("hls-segment-duration", 1u32);
        e.set_property("idle-timeout", 500u32);
    });
    s.push_secs(0.0, 3.0);
    s.sync();
    let pushed = s.pushed();
    wait_messages(
        &s.r,
        "liverecordsink-hls-segment-added",
        2,
        Duration::from_secs(10),
    );
    // Every frame arrived at clock time 0: the idle timer is due at 0.5 s.
    let idle = gst::ClockTime::from_mseconds(500);
    wait_pending_at(&clock, idle, Duration::from_secs(10));
    advance_to(&clock, idle);
    // The break: the resume timeout is due 2 s after the last data.
    let expiry = gst::ClockTime::from_seconds(2);
    let limit = idle + gst::ClockTime::from_mseconds(100);
    let armed = run_clock_until(&clock, limit, Duration::from_secs(10), || {
        clock.peek_next_pending_id().map(|id| id.time()) == Some(expiry)
    });
    assert!(
        armed,
        "no resume-timeout clock id at {expiry}; earliest pending: {:?}; messages: {:#?}",
        clock.peek_next_pending_id().map(|id| id.time()),
        s.r.messages()
    );
    assert!(
        s.r.closed().is_empty(),
        "file-closed at the break: {:#?}",
        s.r.closed()
    );

    let before = expiry - gst::ClockTime::from_mseconds(1);
    assert_eq!(advance_to(&clock, before), 0, "a clock id fired before 2 s");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        s.r.closed().is_empty(),
        "file-closed before the resume timeout: {:#?}",
        s.r.closed()
    );

    assert_eq!(advance_to(&clock, expiry), 1, "the expiry did not fire");
    let closed = wait_messages(
        &s.r,
        "liverecordsink-file-closed",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert_eq!(
        get_str(&closed[0], "reason"),
        "hls-timeout",
        "{}",
        closed[0]
    );
    let loc = PathBuf::from(get_str(&closed[0], "location"));
    assert!(
        parse_playlist(&loc).endlist,
        "no ENDLIST when file-closed was posted"
    );
    assert_eq!(read_index(&td.index_path()).len(), 1);

    // EOS after the expiry changes nothing.
    s.eos();
    s.r.wait_eos(TIMEOUT);
    let msgs = s.r.messages();
    let errors = s.r.errors();
    drop(s);
    assert!(errors.is_empty(), "bus errors: {errors:?}");
    let closed = check_announcements(&msgs, &td.index_path());
    assert_eq!(closed.len(), 1, "one playlist only: {closed:#?}");
    let (pl, probes) = check_hls_recording(&msgs, &closed[0], true, true);
    assert_eq!(pl.discontinuities(), 0);
    assert!(
        pl.segments.len() >= 3,
        "1 s segments over 3 s:{}",
        describe(&pl, &probes)
    );
    assert_eq!(
        sum_frames(&probes),
        (pushed.video, pushed.audio),
        "frames (video, audio) in the segments != frames pushed:{}",
        describe(&pl, &probes)
    );
    assert_only_these_files(&td.rec_dir(), &[&pl], &[]);
}

/// Test 4: `formats=mp4+hls` over the break: the MP4 channel closes at the
/// break (two files), the HLS channel resumes (one playlist); each channel
/// holds every frame.
#[test]
fn mp4_and_hls_channels_both_complete() {
    let r = record_gap_timeline(TestDir::new(), "mp4+hls", 30);
    let closed = check_announcements(&r.msgs, &r.td.index_path());
    let (hls, mp4): (Vec<_>, Vec<_>) = closed.iter().partition(|c| get_str(c, "format") == "hls");
    assert_eq!(hls.len(), 1, "one playlist: {closed:#?}");
    assert_eq!(
        mp4.len(),
        2,
        "two MP4 files (cut at the break): {closed:#?}"
    );

    let (pl, probes) = check_hls_recording(&r.msgs, hls[0], true, true);
    assert_eq!(
        sum_frames(&probes),
        (r.pushed.video, r.pushed.audio),
        "HLS frames (video, audio) != frames pushed:{}",
        describe(&pl, &probes)
    );

    let mut mp4_paths = Vec::new();
    let (mut v, mut a) = (0, 0);
    let mut table = String::new();
    for c in &mp4 {
        let p = PathBuf::from(get_str(c, "location"));
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("mp4"));
        // No {end} and no collision: the .part was named after the file.
        let opened = named(&r.msgs, "liverecordsink-file-opened");
        let o = opened
            .iter()
            .find(|o| get_str(o, "format") == "mp4" && get_u64(o, "index") == get_u64(c, "index"))
            .expect("no file-opened for this MP4");
        assert_eq!(
            get_str(o, "location"),
            format!("{}.part", p.display()),
            "file-opened location is not the closed location + .part"
        );
        assert_starts_with_keyframe(&p);
        let k = packets(&p);
        assert_eq!(
            (k.video, k.audio),
            (get_u64(c, "video-frames"), get_u64(c, "audio-frames")),
            "{}: frames in the file != file-closed",
            p.display()
        );
        table.push_str(&format!(
            "\n  {}: video {} audio {}",
            p.display(),
            k.video,
            k.audio
        ));
        v += k.video;
        a += k.audio;
        mp4_paths.push(p);
    }
    assert_eq!(
        (v, a),
        (r.pushed.video, r.pushed.audio),
        "MP4 frames (video, audio) != frames pushed:{table}"
    );
    mp4_paths.sort();
    assert_only_these_files(&r.td.rec_dir(), &[&pl], &mp4_paths);
    // The HLS channel resumed across the break the MP4 channel was cut at.
    assert_eq!(pl.discontinuities(), 1, "{}", pl.text);
    assert_discontinuities_at(&pl, &probes, &[20.0]);
}

/// The playlist of test 1 keeps its TARGETDURATION to the segment target
/// plus the longest GOP (6 s + 1 s): the 10 s break is no GOP.
#[test]
fn target_duration_is_not_inflated_by_the_break() {
    let r = shared_gap_recording();
    let pl = parse_playlist(&the_playlist(&r.0));
    assert_target_at_most(&pl, 7);
}

/// In the playlist of test 1, consecutive segments abut: each EXTINF is the
/// distance to the next segment in PROGRAM-DATE-TIME and in timestamps, so
/// EXTINF sums do not drift from the media and the wall clock.
#[test]
fn extinf_matches_program_date_time_and_timestamps() {
    let r = shared_gap_recording();
    let pl = parse_playlist(&the_playlist(&r.0));
    let probes = check_segments(&pl, true, true);
    check_timeline(&pl, &probes);
}

/// Test 5: ffprobe and ffmpeg read the whole playlist of test 1 with no
/// error, and ffprobe's duration is the media duration, 20 s.
#[test]
fn ffprobe_and_ffmpeg_read_the_playlist() {
    let r = shared_gap_recording();
    let playlist = the_playlist(&r.0);
    let (duration, v, a) = ffprobe_playlist(&playlist);
    assert!(
        (duration - 20.0).abs() <= 0.5,
        "ffprobe reports {duration} s for the playlist, 20 s expected"
    );
    assert_eq!(
        (v, a),
        (r.0.pushed.video, r.0.pushed.audio),
        "packets (video, audio) ffprobe reads through the playlist != frames pushed"
    );
    assert_ffmpeg_decodes_cleanly(&playlist);
}

/// Test 6: hls.js in headless Chromium plays the playlist of test 1 across
/// its DISCONTINUITY to the end, at 4x, with no fatal error.
#[test]
fn hlsjs_in_chromium_plays_the_playlist_to_the_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = root.join("tests/browser");
    let fix = "run `bash scripts/install-browser-deps.sh` (apt-get install chromium; npm ci in tests/browser)";
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: {fix}"
    );
    for p in [
        "node_modules/hls.js/dist/hls.min.js",
        "node_modules/playwright-core/package.json",
    ] {
        assert!(
            browser.join(p).exists(),
            "tests/browser/{p} is missing: {fix}"
        );
    }
    let r = shared_gap_recording();
    let playlist = the_playlist(&r.0);
    let mut cmd = Command::new("node");
    cmd.current_dir(&browser)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .arg("play.mjs")
        .arg("--dir")
        .arg(playlist.parent().unwrap())
        .arg("--playlist")
        .arg(playlist.file_name().unwrap())
        .args(["--rate", "4", "--timeout-ms", "60000"]);
    let started = Instant::now();
    let out = run_bounded(cmd, Duration::from_secs(120), NODE_PKG);
    let line = out.stdout.lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "play.mjs printed no JSON result ({e}), {}:\nstdout: {}\nstderr: {}",
            out.status, out.stdout, out.stderr
        )
    });
    eprintln!(
        "hls.js in Chromium, {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        line
    );
    let fatal = v["fatalErrors"].as_array().cloned().unwrap_or_default();
    assert!(
        fatal.is_empty(),
        "hls.js fatal errors (MSE H.264/AAC supported: {}): {fatal:#?}\nfull result: {line}",
        v["mseH264Aac"]
    );
    assert_eq!(
        v["ended"].as_bool(),
        Some(true),
        "playback did not reach the end: {line}\nstderr: {}",
        out.stderr
    );
    let duration = v["duration"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (duration - 20.0).abs() <= 1.0,
        "the browser's duration is {duration} s, 20 s (±1) expected: {line}"
    );
    let current = v["currentTime"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (current - duration).abs() <= 0.5,
        "ended at {current} s of {duration} s: {line}"
    );
    assert!(
        out.status.success(),
        "play.mjs: {}: {}",
        out.status,
        out.stderr
    );
}

/// x265 sends its parameter sets (VPS/SPS/PPS) only before its first
/// keyframe. Each later segment starts at a keyframe without them: the
/// writer puts the latest ones in front, so every segment decodes on its
/// own and no frame is lost (before, each later segment was set aside as
/// unreadable: its parser found no valid frame). MP3 audio goes the same
/// lean way. (Closed GOPs, `tune=zerolatency`: with x265's default open
/// GOPs a segment's leading RASL pictures need the previous segment, and a
/// decoder starting there skips them — a property of the stream.)
#[test]
fn h265_segments_decode_alone_when_parameter_sets_come_once() {
    require_elements(&[
        "videotestsrc",
        "x265enc",
        "h265parse",
        "lamemp3enc",
        "mpegaudioparse",
    ]);
    let td = TestDir::new();
    let r = Recording::launch(
        "liverecordsink name=rec formats=hls hls-segment-duration=1 \
         videotestsrc num-buffers=120 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x265enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h265parse ! queue ! rec.video \
         audiotestsrc num-buffers=180 ! lamemp3enc ! mpegaudioparse ! queue ! rec.audio",
    );
    r.set_location(&td);
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let discarded = r.messages_named("liverecordsink-file-discarded");
    let closed = r.closed();
    r.stop();
    assert!(discarded.is_empty(), "{discarded:#?}");
    assert_eq!(closed.len(), 1, "{closed:#?}");
    let playlist = PathBuf::from(get_str(&closed[0], "location"));
    let pl = parse_playlist(&playlist);
    let segments = pl.segment_paths();
    assert!(segments.len() >= 4, "{segments:?}");
    let mut frames = 0;
    for seg in &segments {
        assert_pat_pmt_first(seg);
        assert_starts_with_keyframe(seg);
        let video: Vec<_> = ffprobe_streams(seg, "codec_type,codec_name", false)
            .into_iter()
            .filter(|st| st["codec_type"] == "video")
            .collect();
        assert_eq!(video[0]["codec_name"], "hevc", "{}", seg.display());
        frames += decoded_video_frames(seg).unwrap_or_else(|e| panic!("{}: {e}", seg.display()));
    }
    assert_eq!(frames, 120, "every frame decoded, segment by segment");
    assert_ffmpeg_decodes_cleanly(&playlist);
}

/// HLS segments are written behind by at most 200 ms of media (or 64 KiB,
/// far more than 200 ms at this bitrate): while recording, the open
/// `.ts.part` holds every frame the element took but the last few, as the
/// README says (what a kill may lose on top of the pipeline's queues).
#[test]
fn open_segment_trails_its_input_by_at_most_200_ms_of_media() {
    require_elements(&["videotestsrc", "x264enc", "h264parse"]);
    let td = TestDir::new();
    let r = Recording::launch(
        "liverecordsink name=rec formats=hls hls-segment-duration=10 \
         videotestsrc is-live=true num-buffers=120 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency key-int-max=300 bitrate=300 ! h264parse ! rec.video",
    );
    r.set_location(&td);
    let counter = r.count_pad("video");
    r.play();
    assert!(
        wait_for(Duration::from_secs(20), || counter.count() >= 75),
        "the element got {} frames in 20 s",
        counter.count()
    );
    // What the element had taken, then what the file holds.
    let taken = counter.count();
    let part = with_ext(&files_under(td.path()), "part");
    assert_eq!(part.len(), 1, "one open segment: {part:?}");
    let copy = td.path().join("copy.ts");
    std::fs::copy(&part[0], &copy).expect("copy the open segment");
    let written = packets(&copy).video;
    r.wait_eos(Duration::from_secs(30));
    r.stop();
    // 200 ms at 30 fps is 6 frames; one more may be on its way in.
    assert!(
        written <= taken && taken - written <= 7,
        "{taken} frames taken, {written} in the open segment"
    );
    let closed = r.closed();
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert_eq!(get_u64(&closed[0], "video-frames"), 120);
}

/// H.265 in MP4's form (`hvc1` access units with `hvcC`) and raw AAC need
/// no parser: HLS segments get them converted by the element (Annex B with
/// the parameter sets before each keyframe, ADTS), the MP4 files are
/// written by the element's own writer. Every segment decodes alone, and
/// the segments and the MP4 files each hold every frame pushed.
#[test]
fn hvc1_and_raw_aac_are_recorded_without_parsers() {
    require_elements(&[
        "videotestsrc",
        "x265enc",
        "h265parse",
        "audiotestsrc",
        "avenc_aac",
        "aacparse",
    ]);
    let td = TestDir::new();
    let r = Recording::launch(
        "liverecordsink name=rec formats=mp4+hls hls-segment-duration=1 record-interval=2 \
         videotestsrc num-buffers=120 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x265enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h265parse \
         ! video/x-h265,stream-format=hvc1,alignment=au ! queue ! rec.video \
         audiotestsrc num-buffers=180 ! avenc_aac ! aacparse \
         ! audio/mpeg,stream-format=raw ! queue ! rec.audio",
    );
    r.set_location(&td);
    let audio_in = r.count_pad("audio");
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let closed = r.closed();
    r.stop();
    assert!(r.errors().is_empty(), "{:?}", r.errors());
    let of = |format: &str| -> Vec<PathBuf> {
        closed
            .iter()
            .filter(|c| get_str(c, "format") == format)
            .map(|c| PathBuf::from(get_str(c, "location")))
            .collect()
    };
    let playlists = of("hls");
    assert_eq!(playlists.len(), 1, "{closed:#?}");
    let segments = parse_playlist(&playlists[0]).segment_paths();
    assert!(segments.len() >= 4, "{segments:?}");
    let (mut video, mut audio) = (0, 0);
    for seg in &segments {
        assert_pat_pmt_first(seg);
        assert_starts_with_keyframe(seg);
        video += decoded_video_frames(seg).unwrap_or_else(|e| panic!("{}: {e}", seg.display()));
        audio += packets(seg).audio;
    }
    assert_eq!(video, 120, "every video frame decoded, segment by segment");
    assert_eq!(audio, audio_in.count(), "every audio frame in the segments");
    assert_ffmpeg_decodes_cleanly(&playlists[0]);
    let probes = common::packets::assert_files_ok(&of("mp4"));
    let stored = |kind: &str| probes.iter().map(|p| p.stored(kind)).sum::<u64>();
    assert_eq!(stored("video"), 120, "video frames in the MP4 files");
    assert_eq!(
        stored("audio"),
        audio_in.count(),
        "audio frames in the MP4 files"
    );
}
