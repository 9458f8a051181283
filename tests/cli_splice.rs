// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord splice` on recordings made by the element: one session of
//! three files into one MP4 (and FLV), lossless and continuous; a
//! wall-clock range; sessions with a resolution change; a part without
//! audio. Every output is checked with ffprobe and decoded with ffmpeg.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cli::*;
use common::scripted::*;
use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(120);
const FRAME: f64 = 1.0 / 30.0;

/// Records 6 s of A/V (30 fps, a keyframe every second) into three 2 s files
/// of stream `cam1`, session 1. Returns the index records.
fn record_three_files(td: &TestDir) -> Vec<Record> {
    require_elements(AV_ELEMENTS);
    let r = Recording::launch_av(td, "stream-id=cam1 record-interval=2", 180, 6.0);
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    // Records are appended as files finish, not always in time order.
    let mut recs = read_index(&td.index_path());
    recs.sort_by_key(|r| rec_str(r, "start-time"));
    assert_eq!(recs.len(), 3, "index: {recs:#?}");
    assert!(recs.iter().all(|r| rec_u64(r, "session-id") == 1));
    recs
}

fn loc(r: &Record) -> PathBuf {
    PathBuf::from(rec_str(r, "location"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("path not UTF-8")
}

/// The last index line, which the command appended.
fn last_record(td: &TestDir) -> Record {
    read_index(&td.index_path())
        .pop()
        .expect("the index is empty")
}

#[test]
fn splice_one_session_of_three_files() {
    let td = TestDir::new();
    let recs = record_three_files(&td);
    let inputs: Vec<PathBuf> = recs.iter().map(loc).collect();
    let out = td.path().join("out.mp4");
    let index = td.index_path();

    let o = liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "cam1",
        "--session",
        "1",
        "-o",
        s(&out),
    ]);
    assert!(o.stdout.contains("spliced 3 file(s)"), "{}", o.stdout);
    assert!(out.exists() && !part_of(&out).exists());
    assert_decodes(&out);

    for (kind, what) in [("v", "video"), ("a", "audio")] {
        // Every frame of the inputs, bit for bit, in order.
        let want: Vec<String> = inputs.iter().flat_map(|p| packet_hashes(p, kind)).collect();
        let got = packet_hashes(&out, kind);
        assert_eq!(got.len(), want.len(), "{what} packets: output vs inputs");
        assert_eq!(got, want, "{what} packet data differs from the inputs'");
        // Timestamps continuous and monotonic.
        let pk = packets_of(&out, kind);
        assert_monotonic(&pk, what);
        let sum: f64 = inputs.iter().map(|p| span(&packets_of(p, kind))).sum();
        let got = span(&pk);
        assert!(
            (got - sum).abs() <= FRAME,
            "{what} duration {got} s != sum of the inputs' {sum} s (±1 frame)"
        );
        if kind == "v" {
            let max_step = pk
                .windows(2)
                .map(|w| w[1].pts - w[0].pts)
                .fold(0.0, f64::max);
            assert!(
                max_step < FRAME * 1.5,
                "a video gap of {max_step} s in the output"
            );
        }
    }
    let (dur, tags) = format_info(&out);
    let sum: f64 = recs.iter().map(|r| rec_f64(r, "duration")).sum();
    assert!(
        (dur - sum).abs() <= FRAME,
        "output duration {dur} s != sum of the index durations {sum} s (±1 frame)"
    );
    let comment = tags["comment"].as_str().unwrap_or_default();
    assert!(comment.contains("liverecord splice of 3 file(s)"), "{tags}");

    // Its own index line.
    let rec = last_record(&td);
    assert_eq!(rec_str(&rec, "reason"), "spliced");
    assert_eq!(rec_str(&rec, "stream-id"), "cam1");
    assert_eq!(rec_str(&rec, "location"), s(&out));
    assert_eq!(rec_str(&rec, "start-time"), rec_str(&recs[0], "start-time"));
    let ids: Vec<String> = recs.iter().map(|r| rec_str(r, "file-id")).collect();
    assert_eq!(rec["source-file-ids"], serde_json::json!(ids));
    assert_eq!(rec_u64(&rec, "video-frames"), 180);
    let audio_in: u64 = recs.iter().map(|r| rec_u64(r, "audio-frames")).sum();
    assert_eq!(rec_u64(&rec, "audio-frames"), audio_in);
    assert_eq!(packets_of(&out, "a").len() as u64, audio_in);
    assert_eq!(
        rec_u64(&rec, "size"),
        std::fs::metadata(&out).unwrap().len()
    );
    assert!((rec_f64(&rec, "duration") - dur).abs() < 0.002, "{rec:?}");
    let span_ns = wall_span_ns(&rec_str(&rec, "start-time"), &rec_str(&rec, "end-time"));
    assert!((span_ns as f64 / 1e9 - rec_f64(&rec, "duration")).abs() < 0.002);

    // FLV on request, same frames.
    let flv = td.path().join("out.flv");
    liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "cam1",
        "--session",
        "1",
        "-o",
        s(&flv),
    ]);
    assert_decodes(&flv);
    assert_eq!(packets_of(&flv, "v").len(), 180);
    assert_eq!(packets_of(&flv, "a").len() as u64, audio_in);
    assert_monotonic(&packets_of(&flv, "v"), "flv video");
    assert_eq!(rec_str(&last_record(&td), "format"), "flv");
}

#[test]
fn splice_wall_clock_range() {
    let td = TestDir::new();
    let recs = record_three_files(&td);
    let index = td.index_path();
    let t0 = parse_time(&rec_str(&recs[0], "start-time"));
    let at = |secs: f64| iso((t0 + chrono::Duration::microseconds((secs * 1e6) as i64)).into());
    // From 1.5 s (snaps to the keyframe at 1.0 s) to 4.5 s, across all three files.
    let out = td.path().join("range.mp4");
    let o = liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "cam1",
        "--from",
        &at(1.5),
        "--to",
        &at(4.5),
        "-o",
        s(&out),
    ]);
    assert_decodes(&out);
    let v = packets_of(&out, "v");
    assert_monotonic(&v, "video");
    // Frames 30 (the keyframe at 1.0 s) to 134 (4.467 s): 105 frames.
    assert_eq!(
        v.len(),
        105,
        "video frames from the keyframe at 1.0 s to 4.5 s"
    );
    assert!(v[0].key && v[0].pts.abs() < 1e-6, "first packet {:?}", v[0]);
    let got = span(&v);
    assert!(
        (got - 3.5).abs() <= FRAME,
        "video span {got} s, want 3.5 s (±1 frame)"
    );
    let all_v: Vec<String> = recs
        .iter()
        .flat_map(|r| packet_hashes(&loc(r), "v"))
        .collect();
    assert_eq!(packet_hashes(&out, "v"), all_v[30..135].to_vec());
    // The actual start: reported, in the metadata and in the index.
    assert!(
        o.stdout.contains(&format!("start: {}", &at(1.0)[..23])),
        "{}",
        o.stdout
    );
    let (_, tags) = format_info(&out);
    assert!(
        tags["comment"]
            .as_str()
            .unwrap_or_default()
            .contains("keyframe at 1.000 s"),
        "{tags}"
    );
    let rec = last_record(&td);
    assert_eq!(
        parse_time(&rec_str(&rec, "start-time")),
        parse_time(&at(1.0))
    );
    assert_eq!(rec_u64(&rec, "video-frames"), 105);
}

/// Session 1: 4 s at 320x240; a 3 s gap (session 2): 4 s at 320x240; a
/// resolution change (session 3): 2 s at 640x360. Files of 2 s.
fn record_sessions_with_resolution_change(td: &TestDir) -> Vec<Record> {
    let big = h264_640x360();
    let mut sc = Scripted::new(td, true, true, |rec| {
        rec.set_property("stream-id", "cam1");
        rec.set_property("record-interval", 2u32);
    });
    sc.push_secs(0.0, 4.0);
    sc.push_secs(7.0, 4.0);
    assert!(sc.set_video(big), "the element refused the new caps");
    sc.push_secs(11.0, 2.0);
    sc.eos();
    sc.r.wait_eos(TIMEOUT);
    sc.r.stop();
    drop(sc);
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap();
    // Real-time wall clock: a 3 s gap after session 1, none after session 2.
    relayout_index(&td.index_path(), t0.into(), &[3.0, 0.0]);
    // The element appends records as files finish, not always in time order.
    let mut recs = read_index(&td.index_path());
    recs.sort_by_key(|r| (rec_u64(r, "session-id"), rec_str(r, "start-time")));
    let sessions: Vec<u64> = recs.iter().map(|r| rec_u64(r, "session-id")).collect();
    assert_eq!(sessions, [1, 1, 2, 2, 3], "index: {recs:#?}");
    recs
}

#[test]
fn splice_across_sessions_with_resolution_change() {
    let td = TestDir::new();
    let recs = record_sessions_with_resolution_change(&td);
    let index = td.index_path();
    let out = td.path().join("all.mp4");
    let from = rec_str(&recs[0], "start-time");
    let to = rec_str(&recs[4], "end-time");
    // Refused: the files, their caps, and the groups to splice instead.
    let o = liverecord_fails(
        &[
            "splice",
            "--index",
            s(&index),
            "--stream",
            "cam1",
            "--from",
            &from,
            "--to",
            &to,
            "-o",
            s(&out),
        ],
        4,
        &[
            "codec configuration changes",
            &rec_str(&recs[3], "location"),
            &rec_str(&recs[4], "location"),
            "320x240",
            "640x360",
            "2 compatible groups",
        ],
        &out,
    );
    let groups: Vec<(String, String)> = o
        .stderr
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("--from ")?;
            let (f, rest) = l.split_once(" --to ")?;
            Some((f.to_owned(), rest.split_whitespace().next()?.to_owned()))
        })
        .collect();
    assert_eq!(groups.len(), 2, "group hints: {}", o.stderr);

    // Each suggested group splices and decodes.
    let files_per_group = [&recs[0..4], &recs[4..5]];
    for (i, ((f, t), group)) in groups.iter().zip(files_per_group).enumerate() {
        let out = td.path().join(format!("group{i}.mp4"));
        liverecord_ok(&[
            "splice",
            "--index",
            s(&index),
            "--stream",
            "cam1",
            "--from",
            f,
            "--to",
            t,
            "-o",
            s(&out),
        ]);
        assert_decodes(&out);
        for kind in ["v", "a"] {
            let want: Vec<String> = group
                .iter()
                .flat_map(|r| packet_hashes(&loc(r), kind))
                .collect();
            assert_eq!(
                packet_hashes(&out, kind),
                want,
                "group {i} {kind}: frames differ"
            );
            assert_monotonic(&packets_of(&out, kind), kind);
        }
        let v = packets_of(&out, "v");
        let want = group.len() as f64 * 2.0;
        assert!(
            (span(&v) - want).abs() <= FRAME,
            "group {i}: {} s, want {want} s",
            span(&v)
        );
    }

    // Sessions 1 and 2 with --keep-gaps: the 3 s between them stays.
    let gaps = td.path().join("gaps.mp4");
    let o = liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "cam1",
        "--from",
        &groups[0].0,
        "--to",
        &groups[0].1,
        "--keep-gaps",
        "-o",
        s(&gaps),
    ]);
    assert!(o.stdout.contains("gap kept"), "{}", o.stdout);
    assert_decodes(&gaps);
    let v = packets_of(&gaps, "v");
    assert_eq!(v.len(), 240);
    assert_monotonic(&v, "video");
    assert_monotonic(&packets_of(&gaps, "a"), "audio");
    // The gap: the wall-clock time between the last video frame of session
    // 1 (4.0 s) and session 2's start (its audio end-time, 4.005 s, + 3 s).
    let jump = v[120].pts - v[119].pts - FRAME;
    assert!(
        (jump - 3.0).abs() <= FRAME,
        "gap in the output: {jump} s, want 3 s (±1 frame)"
    );
    assert!((span(&v) - 11.0).abs() <= 2.0 * FRAME, "{} s", span(&v));
}

#[test]
fn splice_part_without_audio() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    // Session 1 with audio, then session 2 of the same stream without.
    let r = Recording::launch_av(&td, "stream-id=cam1 record-interval=10", 60, 2.0);
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    drop(r);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec stream-id=cam1 {} ! rec.video",
        video_branch(Some(60), false)
    ));
    r.set_location(&td);
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    drop(r);
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap();
    let mut recs = relayout_index(&td.index_path(), t0.into(), &[1.0]);
    recs.sort_by_key(|r| r["session-id"].as_u64());
    assert_eq!(recs.len(), 2);
    let index = td.index_path();
    let (from, to) = ("2026-12-01T10:00:00Z", "2026-12-01T10:00:10Z");
    let out = td.path().join("mixed.mp4");
    liverecord_fails(
        &[
            "splice",
            "--index",
            s(&index),
            "--stream",
            "cam1",
            "--from",
            from,
            "--to",
            to,
            "-o",
            s(&out),
        ],
        4,
        &[
            "have no audio stream",
            recs[1]["location"].as_str().unwrap(),
            "--video-only",
        ],
        &out,
    );
    liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "cam1",
        "--from",
        from,
        "--to",
        to,
        "--video-only",
        "-o",
        s(&out),
    ]);
    assert_decodes(&out);
    let p = probe(&[
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type",
        "-of",
        "csv=p=0",
        s(&out),
    ]);
    assert_eq!(p.trim(), "video", "streams of the video-only output");
    assert_eq!(packets_of(&out, "v").len(), 120);
    assert_monotonic(&packets_of(&out, "v"), "video");
}

#[test]
fn splice_audio_only_recordings() {
    require_elements(&["audiotestsrc", "avenc_aac", "aacparse", "mp4mux"]);
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec stream-id=radio record-type=audio record-interval=2 {} ! rec.audio",
        audio_branch(Some(audio_buffers_for(5.0)), false)
    ));
    r.set_location(&td);
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    drop(r);
    let mut recs = read_index(&td.index_path());
    recs.sort_by_key(|r| rec_u64(r, "index"));
    assert!(recs.len() >= 2, "index: {recs:#?}");
    let index = td.index_path();
    let out = td.path().join("radio.m4a");
    liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "radio",
        "--session",
        "1",
        "-o",
        s(&out),
    ]);
    assert_decodes(&out);
    let want: Vec<String> = recs
        .iter()
        .flat_map(|r| packet_hashes(&loc(r), "a"))
        .collect();
    assert_eq!(
        packet_hashes(&out, "a"),
        want,
        "audio frames differ from the inputs'"
    );
    let pk = packets_of(&out, "a");
    assert_monotonic(&pk, "audio");
    let sum: f64 = recs.iter().map(|r| span(&packets_of(&loc(r), "a"))).sum();
    assert!(
        (span(&pk) - sum).abs() < 0.022,
        "{} s, want {sum} s",
        span(&pk)
    );
    assert_eq!(rec_u64(&last_record(&td), "video-frames"), 0);
}

/// B-frames (as OBS and ffmpeg send them): files whose DTS start before
/// zero are read and joined with every frame, in order.
#[test]
fn splice_files_with_bframes() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec stream-id=bf record-interval=2 \
         videotestsrc num-buffers=180 pattern=ball \
         ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc key-int-max=30 bframes=2 speed-preset=ultrafast \
         ! h264parse ! queue ! rec.video {} ! queue ! rec.audio",
        audio_branch(Some(audio_buffers_for(6.0)), false)
    ));
    r.set_location(&td);
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    // Records are appended as files finish, not always in time order.
    let mut recs = read_index(&td.index_path());
    recs.sort_by_key(|r| rec_str(r, "start-time"));
    assert_eq!(recs.len(), 3, "index: {recs:#?}");
    let out = td.path().join("bf.mp4");
    let index = td.index_path();
    liverecord_ok(&[
        "splice",
        "--index",
        s(&index),
        "--stream",
        "bf",
        "--session",
        "1",
        "-o",
        s(&out),
    ]);
    assert_decodes(&out);
    let pk = packets_of(&out, "v");
    assert_eq!(pk.len(), 180, "video frames in the output");
    assert_monotonic(&pk, "video");
    let want: Vec<String> = recs
        .iter()
        .flat_map(|r| packet_hashes(&loc(r), "v"))
        .collect();
    assert_eq!(
        packet_hashes(&out, "v"),
        want,
        "video packets differ from the inputs'"
    );
}
