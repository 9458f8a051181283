// SPDX-License-Identifier: MIT OR Apache-2.0
//! Crash safety (SPEC §3 `mp4-fragment-duration`, §4): a recorder killed with
//! SIGKILL leaves a `.part` that is playable up to its last fragment.
//!
//! This runs the plugin the way users load it: `gst-launch-1.0` with
//! `GST_PLUGIN_PATH` pointing at the cdylib that cargo builds with the tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `target/<profile>`, derived from this test binary
/// (`target/<profile>/deps/<test>-<hash>`).
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is not in target/<profile>/deps")
        .to_path_buf();
    let so = dir.join("libgstliverecord.so");
    assert!(
        so.exists(),
        "{} does not exist: run cargo build first (cargo test builds the cdylib with the tests)",
        so.display()
    );
    dir
}

/// Kills the child if the test fails before it does.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn sigkill_leaves_readable_part() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let plugins = plugin_dir();
    let td = TestDir::new();
    let log = td.path().join("gst-launch.log");
    let location = td.default_location();
    let index = td.index_path();

    let pipeline = format!(
        "{} ! liverecordsink name=rec mp4-fragment-duration=1000",
        video_branch(None, true)
    );
    let mut args: Vec<String> = pipeline.split_whitespace().map(String::from).collect();
    args.push(format!("location={location}"));
    args.push(format!("index-location={}", index.display()));

    // Bounded below: the test waits at most 60 s for the .part, then about
    // 4.5 s, and kills the child (ChildGuard kills it on any failure).
    let child = process::spawn(
        Command::new("gst-launch-1.0")
            .args(&args)
            .env("GST_PLUGIN_PATH", &plugins)
            // A private registry: no stale cache, no interference with others.
            .env("GST_REGISTRY", td.path().join("registry.bin"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(td.path().join("gst-launch.err")).unwrap()),
        process::GST_TOOLS_PKG,
    );
    let mut child = ChildGuard(child);
    let logs = || {
        format!(
            "\nstdout: {}\nstderr: {}",
            read_log(&log),
            read_log(&td.path().join("gst-launch.err"))
        )
    };

    // Wait for the .part, then let it grow for about 4 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let part = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("gst-launch-1.0 exited early ({status}):{}", logs());
        }
        if let Some(p) = with_ext(&files_under(&td.rec_dir()), "part")
            .into_iter()
            .next()
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no .part file within 60 s:{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let size_at_open = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(4500));
    if let Some(status) = child.0.try_wait().unwrap() {
        panic!("gst-launch-1.0 exited early ({status}):{}", logs());
    }
    let size = std::fs::metadata(&part).unwrap().len();
    assert!(
        size > size_at_open,
        "{} did not grow in 4.5 s ({size_at_open} -> {size} bytes)",
        part.display()
    );

    child.0.kill().expect("cannot kill gst-launch-1.0");
    child.0.wait().unwrap();

    let files = files_under(&td.rec_dir());
    assert_eq!(
        with_ext(&files, "part"),
        std::slice::from_ref(&part),
        "exactly the .part must remain: {files:?}"
    );
    assert!(
        with_ext(&files, "mp4").is_empty(),
        "a final .mp4 appeared although the recorder was killed: {files:?}"
    );

    let p = packets(&part);
    assert!(
        p.video > 30,
        "{}: only {} video packets after ~4 s of recording",
        part.display(),
        p.video
    );
    let span = video_packets_span(&part);
    assert!(span >= 2.0, "{}: only {span} s of video", part.display());
    assert_starts_with_keyframe(&part);
    eprintln!(
        "killed: {} has {} video packets, {span:.2} s",
        part.display(),
        p.video
    );
}
