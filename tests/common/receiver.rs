// SPDX-License-Identifier: MIT OR Apache-2.0
//! The recording-callback receiver of the tests (`receiver.py`, a Python
//! `http.server` on 127.0.0.1), started by the test and killed by its PID.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process;

/// The receiver process; killed on drop.
pub struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// Starts a receiver whose first `fail_first` requests fail, on a free
    /// port.
    pub fn start(dir: &Path, fail_first: u32) -> Receiver {
        Receiver::start_on(dir, fail_first, 0)
    }

    /// The same on `port` (0: a free one).
    pub fn start_on(dir: &Path, fail_first: u32, port: u16) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/receiver.py");
        let port_file = dir.join("receiver.port");
        let log = dir.join("receiver.jsonl");
        let child = process::spawn(
            Command::new("python3")
                .arg(&script)
                .arg(&port_file)
                .arg(&log)
                .arg(fail_first.to_string())
                .arg(port.to_string())
                .stdin(Stdio::null()),
            "install python3 (apt-get install python3)",
        );
        let mut r = Receiver {
            child,
            port: 0,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.port == 0 {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                r.port = p.trim().parse().unwrap_or(0);
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not start in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/recording", self.port)
    }

    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (at most `timeout`) until `n` requests got a 200.
    pub fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.requests();
            if all.iter().filter(|r| r["outcome"] == "200").count() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{n} callbacks not delivered within {timeout:?}: {all:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn header<'a>(req: &'a serde_json::Value, name: &str) -> &'a str {
    req["headers"]
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
}
