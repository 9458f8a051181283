// SPDX-License-Identifier: MIT OR Apache-2.0
//! When a file's writer starts, and streams that stop.
//!
//! A muxer given a track that never gets a frame writes a broken file (an
//! MP4 whose empty track has no time scale; mpegtsmux fails), and a muxer
//! waits for every track before it writes anything. So a file's writer is
//! built only once every stream the file holds has either sent its first
//! frame to the file or is known absent; until then the file's frames are
//! held in order (`OpenFile::held`). A stream is absent from a file when:
//!
//! - its input is not recorded, has ended (EOS, a released pad, an error)
//!   in the file's session, or was given up (below); a stream that ended in
//!   an earlier session may restart with the others, so the files of a new
//!   session wait for it;
//! - its part of the file ended before it sent anything (the file was cut
//!   or closed first).
//!
//! The writer is then built with the caps actually received, and holds
//! only the streams that have data: never an empty track.
//!
//! Waiting is decided by events, never by how far one streaming thread
//! runs ahead of another: in a non-live pipeline a file waits for its
//! audio as long as it takes (video stops entering after [`HOLD_LIMIT`] of
//! held media, as a muxer would). In a live pipeline (upstream answers the
//! LATENCY query as live), a stream that sends nothing for [`SILENCE`] on
//! the pipeline clock while the lead goes on (arriving with no pause of
//! more than a second) is *given up*: its part of the
//! open files ends, so that no muxer waits for it, and later files start
//! without it until it sends again (it then joins the next file).

use std::time::Duration;

use super::state::State;
use super::stream::Stream;
use crate::rotation::Key;

/// Media a pending file may hold before its lead input waits (below the
/// muxers' own queue, so feeding the held frames never blocks).
pub const HOLD_LIMIT: u64 = 8_000_000_000;

/// Live only: a stream silent this long on the pipeline clock while the
/// lead goes on is given up.
pub const SILENCE: Duration = Duration::from_secs(3);

/// Arrivals further apart than this are a pause of the stream, not flow.
const PAUSE: gst::ClockTime = gst::ClockTime::from_mseconds(1000);

impl State {
    /// The files whose writer can start now: marked `starting`, with the
    /// streams that never came removed. Returns (channel, key) pairs.
    pub fn take_ready(&mut self) -> Vec<(usize, Key)> {
        let mut ready = Vec::new();
        let inputs = &self.inputs;
        for (ci, ch) in self.channels.iter_mut().enumerate() {
            if ch.failed {
                // Its unstarted files are dropped (`writer_failed`).
                continue;
            }
            for f in &mut ch.files {
                if f.starting || f.writer.is_some() {
                    continue;
                }
                let waiting = Stream::ALL.iter().any(|&s| {
                    f.has[s]
                        && f.frames[s] == 0
                        && !f.eos_wanted[s]
                        && !inputs[s].absent_for(f.session)
                });
                if waiting {
                    continue;
                }
                for s in Stream::ALL {
                    if f.frames[s] == 0 {
                        f.has[s] = false;
                    }
                }
                f.starting = true;
                ready.push((ci, f.key));
            }
        }
        ready
    }

    /// Whether a frame of the lead `stream` at `rt` must wait: a file that
    /// is not taking this stream's frames directly yet already holds
    /// [`HOLD_LIMIT`] of media. `Some(true)`: the file waits for another
    /// stream to start (that stream must then not wait for this one);
    /// `Some(false)`: its held frames are still being fed to its writer.
    pub fn lead_must_wait(&self, stream: Stream, rt: u64) -> Option<bool> {
        let mut wait = None;
        for f in self
            .channels
            .iter()
            .filter(|ch| ch.lead == stream && ch.follower.is_some())
            .flat_map(|ch| ch.files.iter())
            .filter(|f| !f.flowing[stream] && rt.saturating_sub(f.start_rt) >= HOLD_LIMIT)
        {
            let pending = f.writer.is_none() && !f.starting;
            wait = Some(wait.unwrap_or(false) || pending);
        }
        wait
    }

    /// A frame of `stream` arrived at clock time `now`; for the lead, in a
    /// live pipeline, a silent follower is given up. Returns the writer
    /// pads that must now get EOS.
    pub fn arrived(&mut self, stream: Stream, now: Option<gst::ClockTime>) -> Vec<gst::Pad> {
        let input = &mut self.inputs[stream];
        let paused = match (input.last_arrival, now) {
            (Some(last), Some(now)) => now.saturating_sub(last) > PAUSE,
            _ => true,
        };
        if paused {
            input.flowing_since = now;
        }
        input.last_arrival = now;
        input.gone = false;
        let Some(now) = now.filter(|_| self.live == Some(true)) else {
            return Vec::new();
        };
        let mut eos = Vec::new();
        for follower in Stream::ALL {
            let f = &self.inputs[follower];
            let leads = self
                .channels
                .iter()
                .any(|ch| ch.lead == stream && ch.follower == Some(follower));
            if !leads || f.absent_for(self.sessions.number) {
                continue;
            }
            // Silent while the lead went on: from the later of the
            // follower's last frame and the lead's return after a pause.
            let since = f.last_arrival.max(self.inputs[stream].flowing_since);
            let silent = since.is_some_and(|t| {
                now.saturating_sub(t) >= gst::ClockTime::from_nseconds(SILENCE.as_nanos() as u64)
            });
            if silent {
                eos.extend(self.give_up(follower));
            }
        }
        eos
    }

    /// `stream` stopped sending: its part of every open file ends.
    fn give_up(&mut self, stream: Stream) -> Vec<gst::Pad> {
        self.inputs[stream].gone = true;
        let mut eos = Vec::new();
        for ch in &mut self.channels {
            if ch.follower != Some(stream) {
                continue;
            }
            let mut ended = ch.timeline.follower_ended();
            ended.extend(ch.timeline.current());
            for k in ended {
                if let Some(f) = ch.file_mut(k) {
                    eos.extend(f.finish(&[stream], None));
                }
            }
        }
        eos
    }
}
