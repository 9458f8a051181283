// SPDX-License-Identifier: MIT OR Apache-2.0
//! One status line per stream on a terminal: state, bitrate, the current
//! file and its duration, files closed. Nothing when stdout or stderr is
//! not a terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Whether status lines are drawn.
pub fn enabled() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

pub struct Line {
    id: String,
    last_bytes: u64,
    last_at: Instant,
    kbps: f64,
    current: Option<(String, Instant)>,
    closed: u64,
}

impl Line {
    pub fn new(id: &str) -> Line {
        Line {
            id: id.to_string(),
            last_bytes: 0,
            last_at: Instant::now(),
            kbps: 0.0,
            current: None,
            closed: 0,
        }
    }

    /// Total bytes that entered the recorder so far.
    pub fn bytes(&mut self, total: u64) {
        let dt = self.last_at.elapsed().as_secs_f64();
        if dt >= 1.0 {
            let delta = total.saturating_sub(self.last_bytes);
            self.kbps = delta as f64 * 8.0 / 1000.0 / dt;
            self.last_bytes = total;
            self.last_at = Instant::now();
        } else if total < self.last_bytes {
            self.last_bytes = total;
        }
    }

    pub fn message(&mut self, s: &gst::StructureRef) {
        let loc = s.get::<String>("location").unwrap_or_default();
        match s.name().as_str() {
            "liverecordsink-file-opened" => self.current = Some((loc, Instant::now())),
            "liverecordsink-file-closed" => {
                self.closed += 1;
                if self
                    .current
                    .as_ref()
                    .is_some_and(|(c, _)| c.trim_end_matches(".part") == loc.as_str())
                {
                    self.current = None;
                }
            }
            _ => {}
        }
    }

    pub fn render(&mut self, phase: &str) -> String {
        let file = match &self.current {
            Some((f, t)) => format!(
                "{} ({:.0} s)",
                f.rsplit('/').next().unwrap_or(f),
                t.elapsed().as_secs_f64()
            ),
            None => "-".into(),
        };
        format!(
            "{}: {phase}, {:.0} kb/s, file {file}, {} closed",
            self.id, self.kbps, self.closed
        )
    }
}

static DRAWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Redraws the status lines in place on stderr.
pub fn draw(lines: &[String]) {
    let mut err = std::io::stderr().lock();
    let drawn = DRAWN.swap(lines.len(), std::sync::atomic::Ordering::SeqCst);
    if drawn > 0 {
        let _ = write!(err, "\x1b[{drawn}A");
    }
    for l in lines {
        let _ = writeln!(err, "\r\x1b[2K{l}");
    }
    let _ = err.flush();
}

/// Leaves the last status lines as they are, on their own lines.
pub fn clear() {
    DRAWN.store(0, std::sync::atomic::Ordering::SeqCst);
}
