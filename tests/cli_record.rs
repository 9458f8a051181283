// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord record` with real servers and publishers on loopback: an
//! RTMP publisher (ffmpeg `-bf 2`) through nginx-rtmp that disconnects and
//! comes back, an SRT caller that pauses, and bad input. The binary runs as
//! a child process, stopped with SIGINT; its JSON lines, exit code, index
//! and files are checked (every file at packet level with ffprobe).

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::packets::*;
use common::servers::*;
use common::*;

const SECS: u32 = 10;
const GOP: u64 = 30;

/// `liverecord record ARGS`, running; stdout lines collected.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(cli::BIN)
            .arg("record")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run liverecord");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().expect("stderr");
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = e.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running {
            child,
            lines,
            stderr,
        }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}"))
            })
            .collect()
    }

    /// Waits (bounded) until a stdout line satisfies `cond`.
    fn wait_line(&self, timeout: Duration, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.messages().iter().any(&cond) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no {what} within {timeout:?}; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// SIGINT, then the exit code (bounded).
    fn interrupt(mut self, timeout: Duration) -> (i32, Vec<serde_json::Value>, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let t0 = Instant::now();
        let code = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s.code().unwrap_or(-1);
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "liverecord did not exit within {timeout:?} of SIGINT; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let err = self.stderr.lock().unwrap().clone();
        (code, self.messages(), err)
    }
}

fn field<'a>(m: &'a serde_json::Value, f: &str) -> &'a str {
    m[f].as_str().unwrap_or_default()
}

/// The checks of a recording across one reconnect: exit 0 after SIGINT,
/// MP4 files in exactly 2 sessions, one playlist with one DISCONTINUITY and
/// ENDLIST, every file correct at packet level, and the video frames of the
/// MP4s = frames published minus at most one GOP per connection.
fn check_reconnect(
    td: &TestDir,
    code: i32,
    msgs: &[serde_json::Value],
    stderr: &str,
    published: u64,
) {
    assert_eq!(code, 0, "exit code after SIGINT; stderr:\n{stderr}");
    assert!(
        stderr.contains("disconnected") || stderr.contains("connected"),
        "the reconnect is not logged:\n{stderr}"
    );
    let index = read_index(&td.index_path());
    let closed: Vec<&serde_json::Value> = msgs
        .iter()
        .filter(|m| field(m, "message") == "liverecordsink-file-closed")
        .collect();
    assert_eq!(
        closed.len(),
        index.len(),
        "file-closed lines on stdout != index records"
    );
    let mp4: Vec<&serde_json::Value> = closed
        .iter()
        .copied()
        .filter(|m| field(m, "format") == "mp4")
        .collect();
    let mut sessions: Vec<u64> = mp4
        .iter()
        .filter_map(|m| m["session-id"].as_u64())
        .collect();
    sessions.sort();
    sessions.dedup();
    assert_eq!(
        sessions.len(),
        2,
        "MP4 sessions: {sessions:?}; stderr:\n{stderr}"
    );
    let mut problems = Vec::new();
    let mut video = 0;
    for m in &mp4 {
        let loc = PathBuf::from(field(m, "location"));
        let (probe, p) = file_problems(&loc);
        problems.extend(p);
        if let Some(probe) = probe {
            video += probe.video().len() as u64;
        }
    }
    let hls: Vec<&serde_json::Value> = closed
        .iter()
        .copied()
        .filter(|m| field(m, "format") == "hls")
        .collect();
    assert_eq!(hls.len(), 1, "one playlist: {hls:#?}");
    let (pl, _, p) = playlist_problems(Path::new(field(hls[0], "location")));
    problems.extend(p);
    let pl = pl.expect("playlist");
    assert!(pl.endlist, "no ENDLIST:\n{}", pl.text);
    assert_eq!(pl.discontinuities(), 1, "{}", pl.text);
    assert!(
        problems.is_empty(),
        "problems:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        video + 2 * GOP >= published && video <= published,
        "video frames in the MP4s: {video}; published {published} (at most one GOP lost per connection)"
    );
    assert!(
        leftovers(&td.rec_dir()).is_empty(),
        "{:?}",
        leftovers(&td.rec_dir())
    );
}

fn sets(td: &TestDir) -> Vec<String> {
    vec![
        format!("location={}", td.default_location()),
        format!("index-location={}", td.index_path().display()),
        "formats=mp4+hls".into(),
        "record-interval=5".into(),
        "hls-segment-duration=2".into(),
        "hls-resume-timeout=30".into(),
    ]
}

/// `liverecord record URL --stream-id ID` with the reconnect tests' settings.
fn record_url(td: &TestDir, url: &str, id: &str) -> Running {
    let mut args = vec![url.to_string(), "--stream-id".into(), id.to_string()];
    for s in sets(td) {
        args.push("--set".into());
        args.push(s);
    }
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    Running::start(&args)
}

/// RTMP through nginx: 10 s published, a 3 s break, 10 s more.
#[test]
fn rtmp_publisher_reconnects() {
    let nginx = Nginx::start();
    let url = nginx.url("cam");
    let td = TestDir::new();
    let run = record_url(&td, &url, "cam");
    std::thread::sleep(Duration::from_millis(1000));
    let a = Publisher::rtmp(&url, SECS).wait(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let b = Publisher::rtmp(&url, SECS).wait(Duration::from_secs(60));
    run.wait_line(Duration::from_secs(20), "second session's file", |m| {
        field(m, "message") == "liverecordsink-file-closed"
            && field(m, "format") == "mp4"
            && m["session-id"].as_u64() == Some(2)
    });
    std::thread::sleep(Duration::from_secs(1));
    let (code, msgs, stderr) = run.interrupt(Duration::from_secs(30));
    eprintln!("published {} + {} frames\n{stderr}", a.frames, b.frames);
    check_reconnect(&td, code, &msgs, &stderr, a.frames + b.frames);
}

/// SRT: a caller (MPEG-TS, ADTS audio) for 10 s, a 5 s pause, 10 s more.
#[test]
fn srt_caller_pauses() {
    let port = free_udp_port();
    let url = format!("srt://127.0.0.1:{port}?mode=listener");
    let td = TestDir::new();
    let run = record_url(&td, &url, "srt");
    std::thread::sleep(Duration::from_millis(1000));
    let a = Publisher::srt_caller(port, SECS).wait(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    let b = Publisher::srt_caller(port, SECS).wait(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let (code, msgs, stderr) = run.interrupt(Duration::from_secs(30));
    eprintln!("published {} + {} frames\n{stderr}", a.frames, b.frames);
    check_reconnect(&td, code, &msgs, &stderr, a.frames + b.frames);
}

/// Bad input: a clear message, a non-zero exit, nothing written.
#[test]
fn bad_input_is_a_clear_error() {
    let td = TestDir::new();
    let loc = format!("location={}", td.default_location());
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["gopher://x/y".into()], 2, "unknown scheme"),
        (
            vec![
                "rtmp://127.0.0.1:1/live/x".into(),
                "--set".into(),
                "no-such=1".into(),
            ],
            2,
            "no property no-such",
        ),
        (
            vec![
                "rtmp://127.0.0.1:1/live/x".into(),
                "--set".into(),
                "record-interval=soon".into(),
            ],
            2,
            "record-interval=soon",
        ),
        (
            vec![
                "rtmp://127.0.0.1:1/live/x".into(),
                "--set".into(),
                "location=/proc/liverecord/{index}".into(),
                "--connect-timeout".into(),
                "5".into(),
            ],
            5,
            "/proc/liverecord",
        ),
        (
            vec![
                "rtmp://127.0.0.1:1/live/x".into(),
                "--set".into(),
                loc.clone(),
                "--connect-timeout".into(),
                "3".into(),
            ],
            6,
            "no data",
        ),
    ];
    for (args, code, needle) in cases {
        let mut all = vec!["record"];
        all.extend(args.iter().map(|s| s.as_str()));
        let o = cli::liverecord(&all);
        assert_eq!(o.code, code, "liverecord {all:?}: {}", o.stderr);
        assert!(
            o.stderr.contains(needle),
            "liverecord {all:?}: stderr lacks {needle:?}: {}",
            o.stderr
        );
    }
    let cfg = td.path().join("bad.toml");
    std::fs::write(&cfg, "[[streams]]\nurl = \"rtmp://x/y\"\nbogus-key = 1\n").unwrap();
    let o = cli::liverecord(&["record", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("bogus-key"), "{}", o.stderr);
    assert!(
        files_under(&td.rec_dir()).is_empty(),
        "{:?}",
        files_under(&td.rec_dir())
    );
}

/// A loopback RTSP server (GstRtspServer through python3-gi), stopped by
/// its PID when dropped.
struct RtspServer {
    child: Child,
}

impl RtspServer {
    fn start(port: u16) -> RtspServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/rtsp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run /usr/bin/python3: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(out).read_line(&mut first);
            let _ = tx.send(first);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        if line.trim() != "ready" {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!(
                "the RTSP server did not start ({line:?}): {err}\n\
                 install python3-gi gir1.2-gst-rtsp-server-1.0 (bash scripts/install-deps.sh)"
            );
        }
        RtspServer { child }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RTSP: the server serves 8 s, is killed, comes back 3 s later and serves
/// 8 s more: two MP4 sessions, one playlist with one DISCONTINUITY, every
/// file correct, and each session holds most of its time.
#[test]
fn rtsp_server_restarts() {
    let port = free_tcp_port();
    let url = format!("rtsp://127.0.0.1:{port}/test");
    let td = TestDir::new();
    let server = RtspServer::start(port);
    let run = record_url(&td, &url, "door");
    std::thread::sleep(Duration::from_secs(8));
    drop(server);
    std::thread::sleep(Duration::from_secs(3));
    let server = RtspServer::start(port);
    run.wait_line(Duration::from_secs(30), "second session's file", |m| {
        field(m, "message") == "liverecordsink-file-opened"
            && field(m, "format") == "mp4"
            && m["session-id"].as_u64() == Some(2)
    });
    std::thread::sleep(Duration::from_secs(8));
    let (code, msgs, stderr) = run.interrupt(Duration::from_secs(30));
    drop(server);
    eprintln!("{stderr}");
    assert_eq!(code, 0, "exit code after SIGINT; stderr:\n{stderr}");
    let mp4: Vec<&serde_json::Value> = msgs
        .iter()
        .filter(|m| {
            field(m, "message") == "liverecordsink-file-closed" && field(m, "format") == "mp4"
        })
        .collect();
    let mut per_session = std::collections::BTreeMap::<u64, u64>::new();
    let mut problems = Vec::new();
    for m in &mp4 {
        let (probe, p) = file_problems(Path::new(field(m, "location")));
        problems.extend(p);
        let v = probe.map_or(0, |p| p.video().len() as u64);
        *per_session
            .entry(m["session-id"].as_u64().unwrap_or(0))
            .or_default() += v;
    }
    assert!(
        problems.is_empty(),
        "problems:\n  {}",
        problems.join("\n  ")
    );
    assert_eq!(
        per_session.len(),
        2,
        "MP4 sessions {per_session:?}; stderr:\n{stderr}"
    );
    for (s, v) in &per_session {
        assert!(
            *v >= 5 * 30,
            "session {s}: only {v} video frames for about 8 s served"
        );
    }
    let hls: Vec<&serde_json::Value> = msgs
        .iter()
        .filter(|m| {
            field(m, "message") == "liverecordsink-file-closed" && field(m, "format") == "hls"
        })
        .collect();
    assert_eq!(hls.len(), 1, "one playlist: {hls:#?}");
    let (pl, _, p) = playlist_problems(Path::new(field(hls[0], "location")));
    assert!(p.is_empty(), "playlist problems:\n  {}", p.join("\n  "));
    let pl = pl.expect("playlist");
    assert!(pl.endlist, "no ENDLIST");
    assert_eq!(pl.discontinuities(), 1, "{}", pl.text);
}

/// A config with three streams (two RTMP through one nginx, one SRT
/// listener), published at once: each stream gets its own files, and each
/// conserves its frames (at most one GOP lost).
#[test]
fn config_with_three_streams() {
    let nginx = Nginx::start();
    let port = free_udp_port();
    let td = TestDir::new();
    let cfg = td.path().join("streams.toml");
    std::fs::write(
        &cfg,
        format!(
            "[defaults]\nformats = \"mp4\"\nrecord-interval = 4\nlocation = \"{loc}\"\nindex-location = \"{idx}\"\n\
             [[streams]]\nurl = \"{a}\"\nstream-id = \"a\"\n\
             [[streams]]\nurl = \"{b}\"\nstream-id = \"b\"\n\
             [[streams]]\nurl = \"srt://127.0.0.1:{port}?mode=listener\"\nstream-id = \"c\"\n",
            loc = td.default_location(),
            idx = td.index_path().display(),
            a = nginx.url("a"),
            b = nginx.url("b"),
        ),
    )
    .unwrap();
    let run = Running::start(&["--config", cfg.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    let pa = Publisher::rtmp(&nginx.url("a"), 8);
    let pb = Publisher::rtmp(&nginx.url("b"), 8);
    let pc = Publisher::srt_caller(port, 8);
    let published = [
        ("a", pa.wait(Duration::from_secs(60)).frames),
        ("b", pb.wait(Duration::from_secs(60)).frames),
        ("c", pc.wait(Duration::from_secs(60)).frames),
    ];
    std::thread::sleep(Duration::from_secs(3));
    let (code, msgs, stderr) = run.interrupt(Duration::from_secs(30));
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let mut problems = Vec::new();
    for (id, sent) in published {
        let mut video = 0;
        for m in msgs.iter().filter(|m| {
            field(m, "message") == "liverecordsink-file-closed" && field(m, "stream-id") == id
        }) {
            let (probe, p) = file_problems(Path::new(field(m, "location")));
            problems.extend(p);
            video += probe.map_or(0, |p| p.video().len() as u64);
        }
        assert!(
            video + GOP >= sent && video <= sent,
            "stream {id}: {video} video frames recorded, {sent} published; stderr:\n{stderr}"
        );
    }
    assert!(
        problems.is_empty(),
        "problems:\n  {}",
        problems.join("\n  ")
    );
}
