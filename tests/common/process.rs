// SPDX-License-Identifier: MIT OR Apache-2.0
//! External programs (ffprobe, ffmpeg, node, gst-launch-1.0): every run is
//! bounded by a timeout, and a missing program fails the test with the
//! package to install.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to install for ffprobe and ffmpeg.
pub const FFMPEG_PKG: &str = "install ffmpeg (apt-get install ffmpeg)";
/// What to install for gst-launch-1.0.
pub const GST_TOOLS_PKG: &str = "install gstreamer1.0-tools (apt-get install gstreamer1.0-tools)";
/// What to install for node.
pub const NODE_PKG: &str = "install Node.js (apt-get install nodejs npm)";

/// How long one ffprobe run may take.
pub const FFPROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The output of a bounded external run.
#[derive(Debug)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Starts `cmd` (its stdin, stdout and stderr as the caller set them);
/// `missing` names the package to install when the program is not found.
/// The caller bounds the child's life (kill it past a deadline).
pub fn spawn(cmd: &mut Command, missing: &str) -> Child {
    cmd.spawn().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!("{cmd:?}: program not found: {missing}")
        }
        panic!("cannot run {cmd:?}: {e}")
    })
}

/// Runs `cmd` with no stdin, at most `timeout`; kills it and fails the test
/// past that. `missing` names the package to install when the program is not
/// found.
pub fn run_bounded(mut cmd: Command, timeout: Duration, missing: &str) -> Output {
    let what = format!("{cmd:?}");
    let started = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, missing);
    // Drain both pipes in threads, so that a chatty child never blocks.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait failed") {
            break st;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
            panic!(
                "{what} did not finish within {timeout:?}; killed.\nstdout: {out}\nstderr: {err}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// `target/<profile>`, derived from this test binary
/// (`target/<profile>/deps/<test>-<hash>`).
pub fn plugin_dir() -> PathBuf {
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
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
