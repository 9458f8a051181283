// SPDX-License-Identifier: MIT OR Apache-2.0
//! A real S3-compatible server for the upload tests: `s3s-fs` (it checks
//! SigV4 signatures and stores each object as a plain file under its root)
//! on 127.0.0.1, started by the test and stopped by its PID; and a
//! fault-injecting, request-counting proxy in front of it
//! (`tests/common/s3proxy.py`). Every wait is bounded.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process;
use super::servers::{free_tcp_port, require_program};

pub const ACCESS_KEY: &str = "liverecordtest";
pub const SECRET_KEY: &str = "liverecordtestsecret";
pub const BUCKET: &str = "recordings";
const S3S_MISSING: &str =
    "s3s-fs 0.14.1: run bash scripts/install-s3.sh (cargo install --locked s3s-fs@0.14.1 --features binary)";

fn wait_port(port: u16, up: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_ok();
        if open == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} on port {port} did not {} within 20 s",
            if up { "start" } else { "stop" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `s3s-fs` serving `root` (bucket [`BUCKET`]) on 127.0.0.1.
pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
}

impl S3Server {
    pub fn start(root: &Path) -> S3Server {
        require_program("s3s-fs", "--version", S3S_MISSING);
        std::fs::create_dir_all(root.join(BUCKET)).expect("cannot create the bucket folder");
        let mut s = S3Server {
            child: None,
            port: free_tcp_port(),
            root: root.to_path_buf(),
        };
        s.restart();
        s
    }

    /// Starts the server again, on the same port and root.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the S3 server is running");
        let child = process::spawn(
            Command::new("s3s-fs")
                .args(["--host", "127.0.0.1", "--port"])
                .arg(self.port.to_string())
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&self.root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            S3S_MISSING,
        );
        self.child = Some(child);
        wait_port(self.port, true, "s3s-fs");
    }

    /// Stops the server by its PID (SIGKILL) and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.port, false, "s3s-fs");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client of the bucket, straight to the server (for ListParts).
    pub fn client(&self) -> gstliverecord::s3client::S3 {
        let target = gstliverecord::s3target::Target::parse(
            &format!("s3://{BUCKET}/{{filename}}"),
            &self.endpoint(),
            "us-east-1",
        )
        .expect("the test's bucket URL");
        gstliverecord::s3client::S3::new(&target, ACCESS_KEY, SECRET_KEY, None)
            .expect("an S3 client")
    }

    /// The stored bytes of an object (s3s-fs keeps objects as files).
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.join(BUCKET).join(key)).ok()
    }

    /// Every object key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        let base = self.root.join(BUCKET);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.retain(|k| !k.starts_with('.'));
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: serde_json::Value,
    pub status: u16,
}

/// The proxy in front of an [`S3Server`]; killed by PID on drop.
pub struct S3Proxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
    mode: PathBuf,
}

impl S3Proxy {
    pub fn start(dir: &Path, upstream: u16) -> S3Proxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/s3proxy.py");
        let port_file = dir.join("s3proxy.port");
        let log = dir.join("s3proxy.jsonl");
        let mode = dir.join("s3proxy.mode");
        std::fs::write(&mode, "pass").expect("cannot write the proxy mode");
        let child = process::spawn(
            Command::new("python3")
                .arg(&script)
                .arg(&port_file)
                .arg(&log)
                .arg(&mode)
                .arg(upstream.to_string())
                .stdin(Stdio::null()),
            "install python3 (apt-get install python3)",
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "the S3 proxy did not start in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        S3Proxy {
            child,
            port,
            log,
            mode,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `pass`, `fail-all` or `fail-parts-from:N`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(&self.mode, mode).expect("cannot write the proxy mode");
    }

    pub fn seen(&self) -> Vec<Seen> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Seen {
                method: v["method"].as_str().unwrap_or_default().to_string(),
                path: v["path"].as_str().unwrap_or_default().to_string(),
                query: v["query"].clone(),
                status: v["status"].as_u64().unwrap_or(0) as u16,
            })
            .collect()
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
