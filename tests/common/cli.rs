// SPDX-License-Identifier: MIT OR Apache-2.0
//! Helpers of the `liverecord` app's tests: running the binary and ffmpeg
//! tools with a timeout, packet lists and hashes, index rewriting.
//!
//! Included by the `cli_*` tests with `#[path = "common/cli.rs"] mod cli;`
//! next to `mod common;`. Every subprocess is bounded by a timeout; a
//! missing ffmpeg or ffprobe fails the test with the package to install.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// The app under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_liverecord");

/// Timeout of one `liverecord` run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Timeout of one ffprobe or ffmpeg run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a process did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` with a timeout; panics if it cannot start (naming
/// `install` for a missing program) or does not finish in time.
pub fn run_bounded(program: &str, args: &[&str], timeout: Duration, install: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panic!("{program} not found: {install}")
            }
            panic!("cannot run {program}: {e}")
        });
    let mut out = child.stdout.take().expect("no stdout");
    let mut err = child.stderr.take().expect("no stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait failed") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{program} {} did not finish within {timeout:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Runs `liverecord ARGS`.
pub fn liverecord(args: &[&str]) -> Output {
    run_bounded(BIN, args, CLI_TIMEOUT, "build the liverecord binary")
}

/// Runs `liverecord ARGS` and fails the test unless it exits 0.
pub fn liverecord_ok(args: &[&str]) -> Output {
    let out = liverecord(args);
    assert_eq!(
        out.code,
        0,
        "liverecord {} failed: {}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

/// Runs `liverecord ARGS`, expects exit code `code`, a stderr containing
/// each of `needles`, and neither `out` nor `out.part` on disk.
pub fn liverecord_fails(args: &[&str], code: i32, needles: &[&str], out: &Path) -> Output {
    let o = liverecord(args);
    assert_eq!(
        o.code,
        code,
        "liverecord {}: exit code {} (want {code}); stdout {:?} stderr {:?}",
        args.join(" "),
        o.code,
        o.stdout,
        o.stderr
    );
    for n in needles {
        assert!(
            o.stderr.contains(n),
            "liverecord {}: stderr lacks {n:?}: {}",
            args.join(" "),
            o.stderr
        );
    }
    assert!(!out.exists(), "{} exists after a failure", out.display());
    assert!(
        !part_of(out).exists(),
        "{} exists after a failure",
        part_of(out).display()
    );
    o
}

pub fn part_of(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

const FFMPEG: &str = "apt-get install ffmpeg";

/// ffprobe, bounded; fails the test if it fails.
pub fn probe(args: &[&str]) -> String {
    let o = run_bounded("ffprobe", args, TOOL_TIMEOUT, FFMPEG);
    assert_eq!(o.code, 0, "ffprobe {} failed: {}", args.join(" "), o.stderr);
    o.stdout
}

/// Decodes the whole file; fails the test on any error output.
pub fn assert_decodes(path: &Path) {
    let p = path.to_str().expect("path not UTF-8");
    let o = run_bounded(
        "ffmpeg",
        &["-nostdin", "-v", "error", "-i", p, "-f", "null", "-"],
        TOOL_TIMEOUT,
        FFMPEG,
    );
    assert!(
        o.code == 0 && o.stderr.trim().is_empty(),
        "{} does not decode cleanly (exit {}): {}",
        path.display(),
        o.code,
        o.stderr
    );
}

/// One packet as ffprobe reads it (times in seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub pts: f64,
    pub dts: f64,
    pub duration: f64,
    pub key: bool,
    pub size: u64,
}

/// The packets of the first stream of a type (`v` or `a`), in file order.
pub fn packets_of(path: &Path, stream: &str) -> Vec<Packet> {
    let sel = format!("{stream}:0");
    let out = probe(&[
        "-v",
        "error",
        "-select_streams",
        &sel,
        "-show_entries",
        "packet=pts_time,dts_time,duration_time,flags,size",
        "-of",
        "csv=p=0:nk=1",
        path.to_str().expect("path not UTF-8"),
    ]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
            Packet {
                pts: num(0).unwrap_or(f64::NAN),
                dts: num(1).unwrap_or(f64::NAN),
                duration: num(2).unwrap_or(0.0),
                size: f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
                key: f.get(4).is_some_and(|s| s.starts_with('K')),
            }
        })
        .collect()
}

/// MD5 of every packet's data of the first stream of a type, in file
/// order (`ffmpeg -c copy -f framemd5`): equal lists mean the same frames,
/// bit for bit.
pub fn packet_hashes(path: &Path, stream: &str) -> Vec<String> {
    let map = format!("0:{stream}:0");
    let o = run_bounded(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            path.to_str().expect("path not UTF-8"),
            "-map",
            &map,
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ],
        TOOL_TIMEOUT,
        FFMPEG,
    );
    assert_eq!(
        o.code,
        0,
        "framemd5 of {} failed: {}",
        path.display(),
        o.stderr
    );
    o.stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').next_back().map(|h| h.trim().to_owned()))
        .collect()
}

/// The container's duration and its tags (`comment`, …).
pub fn format_info(path: &Path) -> (f64, serde_json::Value) {
    let out = probe(&[
        "-v",
        "error",
        "-show_entries",
        "format=duration:format_tags",
        "-of",
        "json",
        path.to_str().expect("path not UTF-8"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("bad ffprobe JSON");
    let d = v["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    (d, v["format"]["tags"].clone())
}

/// Asserts DTS strictly increasing and PTS >= DTS.
pub fn assert_monotonic(pk: &[Packet], what: &str) {
    for w in pk.windows(2) {
        assert!(
            w[1].dts > w[0].dts,
            "{what}: DTS not strictly increasing: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    for p in pk {
        assert!(p.pts >= p.dts, "{what}: PTS < DTS in {p:?}");
    }
}

/// End of the last packet minus start of the first (PTS, seconds).
pub fn span(pk: &[Packet]) -> f64 {
    let first = pk.iter().map(|p| p.pts).fold(f64::INFINITY, f64::min);
    let last = pk
        .iter()
        .map(|p| p.pts + p.duration)
        .fold(f64::NEG_INFINITY, f64::max);
    last - first
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Rewrites the wall-clock times of an index as a real-time recorder would
/// have written them: the first session starts at `t0`; within a session a
/// file starts at the session start plus its start-running-time offset;
/// session *i + 1* starts `gaps[i]` seconds after the end-time of session
/// *i*. (Tests push media faster than real time, so the element's own wall
/// times of later sessions overlap earlier ones.) Returns the new records.
pub fn relayout_index(
    path: &Path,
    t0: DateTime<Utc>,
    gaps: &[f64],
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).expect("cannot read the index");
    let mut recs: Vec<serde_json::Map<String, serde_json::Value>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("bad index line"))
        .collect();
    let get = |r: &serde_json::Map<String, serde_json::Value>, f: &str| r[f].as_u64().unwrap_or(0);
    let mut sessions: Vec<u64> = recs.iter().map(|r| get(r, "session-id")).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let mut start = t0;
    for (i, s) in sessions.iter().enumerate() {
        let first_rt = recs
            .iter()
            .filter(|r| get(r, "session-id") == *s)
            .map(|r| get(r, "start-running-time"))
            .min()
            .unwrap_or(0);
        let mut end = start;
        for r in recs.iter_mut().filter(|r| get(r, "session-id") == *s) {
            let off = get(r, "start-running-time") - first_rt;
            let st = start + chrono::Duration::nanoseconds(off as i64);
            let dur = r["duration"].as_f64().unwrap_or(0.0);
            let en = st + chrono::Duration::microseconds((dur * 1e6).round() as i64);
            r.insert("start-time".into(), iso(st).into());
            r.insert("end-time".into(), iso(en).into());
            end = end.max(en);
        }
        let gap = gaps.get(i).copied().unwrap_or(0.0);
        start = end + chrono::Duration::microseconds((gap * 1e6).round() as i64);
    }
    let mut out = String::new();
    for r in &recs {
        out.push_str(&serde_json::to_string(r).expect("JSON"));
        out.push('\n');
    }
    std::fs::write(path, out).expect("cannot write the index");
    recs
}
