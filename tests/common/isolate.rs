// SPDX-License-Identifier: MIT OR Apache-2.0
//! Runs a test's body in a child process (the test binary itself, with
//! `--exact NAME`), bounded by a timeout: a deadlocked or spinning element
//! cannot hang or slow down the rest of the test binary, since the child is
//! killed at the timeout. The child's output is part of the failure message.
//!
//! ```ignore
//! #[test]
//! fn my_test() {
//!     if isolate::in_child("my_test", Duration::from_secs(60), &[]) {
//!         return; // the parent: the child ran the body and passed
//!     }
//!     // the body, run in the child
//! }
//! ```

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child to the name of the test it runs.
pub const CHILD_ENV: &str = "LIVERECORD_TEST_CHILD";

/// In the parent: runs `name` in a child process with `env` added, waits at
/// most `timeout` (then kills it), fails the test if the child failed, and
/// returns true. In the child: returns false, so the caller runs the body.
pub fn in_child(name: &str, timeout: Duration, env: &[(&str, String)]) -> bool {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return false;
    }
    let exe = std::env::current_exe().expect("no current exe");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .expect("cannot start the test binary as a child");
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
    let mut killed = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait failed") {
            break st;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            killed = true;
            break child.wait().expect("wait failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
    // The child's panic message, and what it printed before it.
    let (before, panic_msg) = match err.find("panicked at") {
        Some(i) => (&err[..i], err[i..].to_string()),
        None => (err.as_str(), String::new()),
    };
    if killed {
        panic!(
            "{name}: did not finish within {timeout:?} (hung or spinning): killed.\n\
             --- child stderr (last 4000 chars) ---\n{}\n--- child stdout (last 2000 chars) ---\n{}",
            tail(&err, 4000),
            tail(&out, 2000)
        );
    }
    assert!(
        status.success(),
        "{name} failed in its child process ({status}, after {:?}):\n{}\n--- child stderr before that (last 2000 chars) ---\n{}",
        started.elapsed(),
        if panic_msg.is_empty() {
            "(no panic message)".to_string()
        } else {
            head(&panic_msg, 8000)
        },
        tail(before, 2000)
    );
    // A wrong name would run no test at all: that must not pass.
    assert!(
        out.contains("1 passed"),
        "{name}: the child process ran no test (is the name right?):\n{}",
        tail(&out, 2000)
    );
    // Show the child's diagnostics with the parent's output.
    eprint!("{}", tail(&err, 3000));
    true
}

fn head(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    format!("{}…", &s[..i])
}

fn tail(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    format!("…{}", &s[i..])
}
