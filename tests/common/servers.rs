// SPDX-License-Identifier: MIT OR Apache-2.0
//! Real servers and publishers on loopback for the end-to-end tests
//! (shared/notes/real-ingest.md): nginx with libnginx-mod-rtmp in a temp
//! dir on a free port, and ffmpeg publishing a test pattern over RTMP (FLV)
//! or SRT (MPEG-TS).
//!
//! Each process is stopped by its PID when its handle drops (nginx: SIGQUIT,
//! then SIGKILL to the master and its workers by PID). Every wait is bounded.
//! A missing program fails the test with the Debian package to install.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const NGINX_PACKAGES: &str = "nginx libnginx-mod-rtmp";
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Fails the test, naming the Debian package, if `program` cannot run.
pub fn require_program(program: &str, version_arg: &str, package: &str) {
    match Command::new(program)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{program} is not installed: apt-get install {package}")
        }
        Err(e) => panic!("cannot run {program}: {e} (package {package})"),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot bind a TCP port on 127.0.0.1")
        .port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago (SRT runs on UDP).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("cannot bind a UDP port on 127.0.0.1")
        .port()
}

/// Sends `signal` (e.g. "QUIT", "KILL") to one process by its PID.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The PIDs of the children of `pid` (nginx's workers).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may contain spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Waits at most `timeout` for `child` to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

// ------------------------------------------------------------------ nginx

/// nginx with the RTMP module, serving `rtmp://127.0.0.1:PORT/live/NAME`
/// (`live on; record off`) from a temp dir.
pub struct Nginx {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    /// Starts nginx and waits (at most 10 s) until its port accepts.
    pub fn start() -> Nginx {
        require_program("nginx", "-v", NGINX_PACKAGES);
        assert!(
            Path::new(RTMP_MODULE).is_file(),
            "{RTMP_MODULE} is missing: apt-get install {NGINX_PACKAGES}"
        );
        let dir = tempfile::Builder::new()
            .prefix("liverecord-nginx-")
            .tempdir()
            .expect("cannot create a temp dir");
        let d = dir.path().display().to_string();
        // A few tries: the free port can be taken between probing and binding.
        let mut last_logs = String::new();
        for _ in 0..3 {
            let port = free_tcp_port();
            let conf = format!(
                "daemon off;\n\
                 master_process on;\n\
                 worker_processes 1;\n\
                 pid {d}/nginx.pid;\n\
                 error_log {d}/error.log info;\n\
                 load_module {RTMP_MODULE};\n\
                 events {{ worker_connections 128; }}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{port}; \
                 application live {{ live on; record off; }} }} }}\n"
            );
            std::fs::write(dir.path().join("nginx.conf"), conf).expect("cannot write nginx.conf");
            let _ = std::fs::remove_file(dir.path().join("error.log"));
            let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let mut child = Command::new("nginx")
                .args(["-p", &d, "-c", &format!("{d}/nginx.conf"), "-e"])
                .arg(format!("{d}/error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start nginx ({NGINX_PACKAGES}): {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            let accepted = loop {
                if TcpStream::connect_timeout(
                    &format!("127.0.0.1:{port}").parse().unwrap(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    break true;
                }
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                if exited || Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if accepted {
                return Nginx {
                    child: Some(child),
                    dir,
                    port,
                };
            }
            last_logs = logs_in(dir.path());
            stop_nginx(&mut child);
            if !last_logs.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not accept connections within 10 s:\n{last_logs}");
    }

    /// `rtmp://127.0.0.1:PORT/live/NAME`
    pub fn url(&self, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{name}", self.port)
    }

    /// nginx's stderr and error log.
    pub fn logs(&self) -> String {
        logs_in(self.dir.path())
    }

    /// Stops nginx by its PID: SIGQUIT (graceful), at most 5 s, then
    /// SIGKILL to the master and its workers.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_nginx(&mut child);
        }
    }
}

fn logs_in(dir: &Path) -> String {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let log = read("error.log");
    format!(
        "--- stderr ---\n{}\n--- error.log (last 3000 chars) ---\n{}",
        read("stderr.log"),
        &log[log.len().saturating_sub(3000)..]
    )
}

fn stop_nginx(child: &mut Child) {
    let pid = child.id();
    let workers = children_of(pid);
    signal(pid, "QUIT");
    if !wait_exit(child, Duration::from_secs(5)) {
        let _ = child.kill();
        let _ = wait_exit(child, Duration::from_secs(5));
    }
    // Workers of a master killed hard would keep the port.
    for w in workers {
        if Path::new(&format!("/proc/{w}")).exists() {
            signal(w, "KILL");
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----------------------------------------------------------------- ffmpeg

/// An ffmpeg publishing a live test pattern (testsrc2 640x360 at 30 fps,
/// a 440 Hz sine at 48 kHz) in real time (`-re`), H.264 with B-frames
/// (`-bf 2`, a keyframe every 30 frames) and AAC.
pub struct Publisher {
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    pub what: String,
}

/// What a publisher did.
#[derive(Debug)]
pub struct Published {
    /// Video frames ffmpeg sent (its last `frame=` progress line).
    pub frames: u64,
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

impl Publisher {
    fn start(secs: u32, format: &str, url: &str) -> Publisher {
        require_program("ffmpeg", "-version", "ffmpeg");
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "warning",
            "-nostats",
        ])
        .args(["-progress", "pipe:1"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-f", format, url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let what = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panic!("ffmpeg is not installed: apt-get install ffmpeg")
            }
            panic!("cannot start {what}: {e}")
        });
        let stdout = Some(drain(child.stdout.take().unwrap()));
        let stderr = Some(drain(child.stderr.take().unwrap()));
        Publisher {
            child: Some(child),
            stdout,
            stderr,
            what,
        }
    }

    /// Publishes `secs` seconds to an RTMP URL, as FLV.
    pub fn rtmp(url: &str, secs: u32) -> Publisher {
        Publisher::start(secs, "flv", url)
    }

    /// Publishes `secs` seconds of MPEG-TS as an SRT caller to a listener on
    /// `127.0.0.1:port`.
    pub fn srt_caller(port: u16, secs: u32) -> Publisher {
        Publisher::start(
            secs,
            "mpegts",
            &format!("srt://127.0.0.1:{port}?mode=caller"),
        )
    }

    /// Whether ffmpeg is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits at most `timeout` for ffmpeg to finish; kills it and fails the
    /// test past that. Returns the frames it sent.
    pub fn wait(mut self, timeout: Duration) -> Published {
        let mut child = self.child.take().expect("publisher already waited for");
        if !wait_exit(&mut child, timeout) {
            let _ = child.kill();
            let _ = wait_exit(&mut child, Duration::from_secs(5));
            let err = self.stderr.take().map(|h| h.join().unwrap_or_default());
            panic!(
                "{} did not finish within {timeout:?}; killed. stderr: {}",
                self.what,
                err.unwrap_or_default()
            );
        }
        let status = child.wait().expect("wait failed");
        let out = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let frames = out
            .lines()
            .filter_map(|l| l.strip_prefix("frame="))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or_else(|| {
                panic!(
                    "{}: no frame= progress line ({status}); stdout: {out}\nstderr: {stderr}",
                    self.what
                )
            });
        Published {
            frames,
            status,
            stderr,
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = wait_exit(&mut c, Duration::from_secs(5));
        }
    }
}

/// The directory of a path, for messages.
pub fn dir_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}
