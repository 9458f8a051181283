// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord trim` on a recording made by the element (the start snaps to
//! the keyframe at or before --from, the end is --to), and the error cases
//! of `splice` and `trim`: message, exit code, no output and no `.part`.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cli::*;
use common::*;

const TIMEOUT: Duration = Duration::from_secs(120);
const FRAME: f64 = 1.0 / 30.0;

fn s(p: &Path) -> &str {
    p.to_str().expect("path not UTF-8")
}

/// One 6 s A/V file (30 fps, a keyframe every 30 frames) of stream `cam1`,
/// or three 2 s files with `interval` 2.
fn record(td: &TestDir, interval: u32) -> Vec<Record> {
    require_elements(AV_ELEMENTS);
    let r = Recording::launch_av(
        td,
        &format!("stream-id=cam1 record-interval={interval}"),
        180,
        6.0,
    );
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    read_index(&td.index_path())
}

fn loc(r: &Record) -> PathBuf {
    PathBuf::from(rec_str(r, "location"))
}

/// Trims `input` and checks the output against the input's packets: the
/// video starts at the keyframe at `start` s (at or before `from`) and ends
/// before `to`; the audio covers [start, to). Returns the command's output.
fn trim_and_check(
    td: &TestDir,
    input: &Path,
    from: &str,
    to: &str,
    start: f64,
    to_s: f64,
) -> Output {
    let out = td
        .path()
        .join(format!("trim-{from}-{to}.mp4").replace(':', "_"));
    let index = td.index_path();
    let o = liverecord_ok(&[
        "trim",
        s(input),
        "-o",
        s(&out),
        "--from",
        from,
        "--to",
        to,
        "--index",
        s(&index),
    ]);
    assert!(!part_of(&out).exists());
    assert_decodes(&out);
    for (kind, what) in [("v", "video"), ("a", "audio")] {
        let src = packets_of(input, kind);
        let hashes = packet_hashes(input, kind);
        let eps = 1e-4;
        let want: Vec<String> = src
            .iter()
            .zip(&hashes)
            .filter(|(p, _)| p.pts >= start - eps && p.pts < to_s - eps)
            .map(|(_, h)| h.clone())
            .collect();
        assert_eq!(
            packet_hashes(&out, kind),
            want,
            "{what}: frames of {from}..{to}"
        );
        let pk = packets_of(&out, kind);
        assert_monotonic(&pk, what);
        if kind == "v" {
            assert!(
                pk[0].key && pk[0].pts.abs() < 1e-6,
                "first video packet {:?}",
                pk[0]
            );
            let got = span(&pk);
            assert!(
                (got - (to_s - start)).abs() <= FRAME,
                "video span {got} s, want {} s (±1 frame)",
                to_s - start
            );
        }
    }
    let (_, tags) = format_info(&out);
    let comment = tags["comment"].as_str().unwrap_or_default();
    assert!(
        comment.contains(&format!("starts at {start:.3} s")),
        "{tags}"
    );
    assert!(
        o.stdout.contains(&format!("start: {start:.3} s")),
        "{}",
        o.stdout
    );
    let rec = read_index(&index).pop().expect("no index line");
    assert_eq!(rec_str(&rec, "reason"), "trimmed");
    assert_eq!(rec_str(&rec, "location"), s(&out));
    assert_eq!(
        rec_u64(&rec, "video-frames"),
        packets_of(&out, "v").len() as u64
    );
    assert_eq!(
        rec_u64(&rec, "audio-frames"),
        packets_of(&out, "a").len() as u64
    );
    o
}

#[test]
fn trim_snaps_to_the_keyframe_before() {
    let td = TestDir::new();
    let recs = record(&td, 60);
    assert_eq!(recs.len(), 1);
    let input = loc(&recs[0]);
    // 2.5 s snaps to the keyframe at 2.0 s; the end is 4.2 s: 66 frames.
    trim_and_check(&td, &input, "2.5", "4.2", 2.0, 4.2);
    let rec = read_index(&td.index_path()).pop().unwrap();
    assert_eq!(rec_u64(&rec, "video-frames"), 66);
    assert_eq!(
        rec["source-file-ids"],
        serde_json::json!([rec_str(&recs[0], "file-id")])
    );
    let t0 = parse_time(&rec_str(&recs[0], "start-time"));
    let t = parse_time(&rec_str(&rec, "start-time"));
    assert_eq!(
        (t - t0).num_milliseconds(),
        2000,
        "start-time of the trimmed file"
    );
    // On a keyframe, HH:MM:SS form.
    trim_and_check(&td, &input, "00:00:03.000", "00:00:05.5", 3.0, 5.5);
    // Before the first keyframe boundary.
    trim_and_check(&td, &input, "0.9", "1", 0.0, 1.0);
}

#[test]
fn trim_errors() {
    let td = TestDir::new();
    let recs = record(&td, 60);
    let input = loc(&recs[0]);
    let index = td.index_path();
    let out = td.path().join("t.mp4");
    let (i, o, x) = (s(&input), s(&out), s(&index));
    liverecord_fails(
        &[
            "trim", i, "-o", o, "--from", "9", "--to", "12", "--index", x,
        ],
        2,
        &["past the end"],
        &out,
    );
    liverecord_fails(
        &["trim", i, "-o", o, "--from", "3", "--to", "2", "--index", x],
        2,
        &["--from must be before --to"],
        &out,
    );
    liverecord_fails(
        &["trim", i, "-o", o, "--from", "abc", "--index", x],
        2,
        &["invalid media time"],
        &out,
    );
    let missing = td.path().join("nope.mp4");
    liverecord_fails(
        &["trim", s(&missing), "-o", o, "--from", "1", "--index", x],
        4,
        &["does not exist"],
        &out,
    );
    let text = td.path().join("not-a-video.mp4");
    std::fs::write(&text, "hello\n").unwrap();
    liverecord_fails(
        &["trim", s(&text), "-o", o, "--from", "1", "--index", x],
        4,
        &["cannot read", "not-a-video.mp4"],
        &out,
    );
    // Unwritable output: its directory is a regular file.
    let blocker = td.path().join("blocker");
    std::fs::write(&blocker, "x").unwrap();
    let bad = blocker.join("t.mp4");
    liverecord_fails(
        &["trim", i, "-o", s(&bad), "--from", "1", "--index", x],
        5,
        &["cannot write the output", "blocker"],
        &bad,
    );
    // An existing output is kept unless --force.
    std::fs::write(&out, "keep me").unwrap();
    let e = liverecord(&["trim", i, "-o", o, "--from", "1", "--index", x]);
    assert_eq!(e.code, 2, "{e:?}");
    assert!(e.stderr.contains("exists"), "{}", e.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert!(!part_of(&out).exists());
    liverecord_ok(&["trim", i, "-o", o, "--from", "1", "--index", x, "--force"]);
    assert_decodes(&out);
}

#[test]
fn splice_errors() {
    let td = TestDir::new();
    let recs = record(&td, 2);
    assert_eq!(recs.len(), 3);
    let index = td.index_path();
    let out = td.path().join("s.mp4");
    let (o, x) = (s(&out), s(&index));
    // No matching files.
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--session",
            "9",
            "-o",
            o,
        ],
        3,
        &["no MP4 recordings", "session 9"],
        &out,
    );
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "other",
            "--session",
            "1",
            "-o",
            o,
        ],
        3,
        &["no MP4 recordings", "stream other"],
        &out,
    );
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--from",
            "2020-01-01T00:00:00Z",
            "--to",
            "2020-01-02T00:00:00Z",
            "-o",
            o,
        ],
        3,
        &["no MP4 recordings"],
        &out,
    );
    // Usage errors.
    liverecord_fails(
        &["splice", "--index", x, "--stream", "cam1", "-o", o],
        2,
        &["--session"],
        &out,
    );
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--from",
            "yesterday",
            "--to",
            "2020-01-02T00:00:00Z",
            "-o",
            o,
        ],
        2,
        &["invalid time"],
        &out,
    );
    let no_index = td.path().join("missing.jsonl");
    liverecord_fails(
        &[
            "splice",
            "--index",
            s(&no_index),
            "--stream",
            "cam1",
            "--session",
            "1",
            "-o",
            o,
        ],
        2,
        &["no index"],
        &out,
    );
    // Unwritable output.
    let blocker = td.path().join("blocker");
    std::fs::write(&blocker, "x").unwrap();
    let bad = blocker.join("s.mp4");
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--session",
            "1",
            "-o",
            s(&bad),
        ],
        5,
        &["cannot write the output"],
        &bad,
    );
    // HLS/FLV/AAC records only: refused.
    let mut flv = recs[0].clone();
    flv.insert("format".into(), "flv".into());
    flv.insert("session-id".into(), 7.into());
    flv.insert("file-id".into(), "cam1-flv-7".into());
    let mut line = serde_json::to_string(&flv).unwrap();
    line.push('\n');
    let mut text = std::fs::read_to_string(&index).unwrap();
    text.push_str(&line);
    std::fs::write(&index, &text).unwrap();
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--session",
            "7",
            "-o",
            o,
        ],
        3,
        &["found only flv", "MP4 recordings only"],
        &out,
    );
    // A listed file missing on disk.
    let gone = loc(&recs[1]);
    std::fs::remove_file(&gone).unwrap();
    liverecord_fails(
        &[
            "splice",
            "--index",
            x,
            "--stream",
            "cam1",
            "--session",
            "1",
            "-o",
            o,
        ],
        4,
        &["missing on disk", s(&gone)],
        &out,
    );
    let all = read_index(&index);
    assert!(
        all.iter().all(|r| rec_str(r, "reason") != "spliced"),
        "an index line was added"
    );
}
