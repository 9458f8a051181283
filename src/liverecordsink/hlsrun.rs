// SPDX-License-Identifier: MIT OR Apache-2.0
//! State of an HLS channel: the playlists being recorded (one open, older
//! ones waiting for their last segments) and the pending break, if any.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::hls::{Added, Playlist};
use crate::rotation::CloseReason;

/// One playlist: one HLS recording.
pub struct Run {
    pub id: u64,
    pub playlist: Playlist,
    /// The `.m3u8` path, as named when the playlist opened.
    pub path: PathBuf,
    /// Segments are `<base>_<sequence>.ts`.
    pub base: PathBuf,
    pub session: u64,
    pub index: u64,
    pub start_rt: u64,
    pub start_wall: DateTime<Utc>,
    /// Subtracted from running times: timestamps run on across segments.
    pub base_rt: u64,
    pub next_seq: u64,
    /// Segments opened and not yet added to the playlist.
    pub in_flight: usize,
    pub closing: Option<CloseReason>,
    /// Bytes of all segments.
    pub size: u64,
    pub frames: [u64; 2],
    pub audio_only: bool,
    /// Written segments waiting for an earlier one, by sequence number.
    pub finished: BTreeMap<u64, Finished>,
    /// The sequence number the playlist takes next.
    pub next_add: u64,
    /// Threads announcing segments of this playlist right now: it ends only
    /// after them, so that its segments' messages come before its own.
    pub announcing: usize,
}

/// A segment whose writer finished (`size` 0: it failed, and is skipped).
pub struct Finished {
    pub uri: String,
    pub path: PathBuf,
    pub duration: u64,
    pub program_date_time: DateTime<Utc>,
    pub discontinuity: bool,
    pub size: u64,
    pub frames: [u64; 2],
}

impl Finished {
    /// A segment whose writer failed: skipped in the playlist.
    pub fn failed() -> Finished {
        Finished {
            uri: String::new(),
            path: PathBuf::new(),
            duration: 0,
            program_date_time: DateTime::<Utc>::MIN_UTC,
            discontinuity: false,
            size: 0,
            frames: [0, 0],
        }
    }
}

impl Run {
    /// Adds the finished segment `seq` and every one after it that is
    /// ready, in sequence order. Returns what was added.
    pub fn add_in_order(&mut self, seq: u64, done: Finished) -> Vec<(Added, Finished)> {
        self.finished.insert(seq, done);
        let mut added = Vec::new();
        while let Some(f) = self.finished.remove(&self.next_add) {
            self.next_add += 1;
            self.in_flight = self.in_flight.saturating_sub(1);
            if f.size == 0 {
                continue;
            }
            let a =
                self.playlist
                    .add_segment(&f.uri, f.duration, f.program_date_time, f.discontinuity);
            self.size += f.size;
            self.frames[0] += f.frames[0];
            self.frames[1] += f.frames[1];
            added.push((a, f));
        }
        added
    }
}

#[derive(Default)]
pub struct HlsChannel {
    pub runs: Vec<Run>,
    /// Running time where data stopped, while the open playlist waits for
    /// data to resume.
    pub break_start: Option<u64>,
    /// Clock wait for the resume timeout.
    pub expiry: Option<gst::SingleShotClockId>,
    /// Running time of the last lead keyframe, to measure GOPs.
    pub last_key: Option<u64>,
    pub next_id: u64,
}

impl HlsChannel {
    pub fn open_run_mut(&mut self) -> Option<&mut Run> {
        self.runs.iter_mut().rev().find(|r| r.closing.is_none())
    }

    pub fn run_mut(&mut self, id: u64) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    /// No more segments go to the open playlist: it ends once its segments
    /// are written.
    pub fn close_open(&mut self, reason: CloseReason) {
        self.cancel_break();
        if let Some(r) = self.open_run_mut() {
            r.closing = Some(reason);
        }
    }

    pub fn cancel_break(&mut self) {
        self.break_start = None;
        if let Some(id) = self.expiry.take() {
            id.unschedule();
        }
    }

    /// Playlists that are closing and have every segment written, oldest
    /// first; a playlist never ends before an older one, so that messages
    /// and index records come in recording order.
    pub fn take_finished(&mut self) -> Vec<Run> {
        let ready = self
            .runs
            .iter()
            .take_while(|r| r.closing.is_some() && r.in_flight == 0 && r.announcing == 0)
            .count();
        self.runs.drain(..ready).collect()
    }
}
