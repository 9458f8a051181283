// SPDX-License-Identifier: MIT OR Apache-2.0
//! State of an HLS channel: the playlists being recorded (one open, older
//! ones waiting for their last segments) and the pending break, if any.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::stream::PerStream;
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
    pub base_rt: i64,
    pub next_seq: u64,
    /// Segments opened and not yet added to the playlist.
    pub in_flight: usize,
    pub closing: Option<CloseReason>,
    /// Bytes of all segments.
    pub size: u64,
    pub frames: PerStream<u64>,
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
    pub frames: PerStream<u64>,
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
            frames: PerStream::default(),
        }
    }
}

impl Run {
    /// A new playlist; its id is set when it starts ([`HlsChannel::start_run`]).
    pub fn new(
        playlist: Playlist,
        path: PathBuf,
        base: PathBuf,
        (session, index): (u64, u64),
        (start_rt, start_wall): (u64, DateTime<Utc>),
        base_rt: i64,
        audio_only: bool,
    ) -> Run {
        Run {
            id: 0,
            playlist,
            path,
            base,
            session,
            index,
            start_rt,
            start_wall,
            base_rt,
            next_seq: 0,
            in_flight: 0,
            closing: None,
            size: 0,
            frames: PerStream::default(),
            audio_only,
            finished: BTreeMap::new(),
            next_add: 0,
            announcing: 0,
        }
    }

    /// The sequence number of a new segment, in flight until it is added.
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight += 1;
        seq
    }

    /// The `.part` path of segment `seq`: `<base>_<seq>.ts.part`.
    pub fn segment_part(&self, seq: u64) -> PathBuf {
        crate::naming::segment_path(&self.base, seq, true)
    }

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
            self.frames.video += f.frames.video;
            self.frames.audio += f.frames.audio;
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
    /// Starts a new playlist, which takes the next segments.
    pub fn start_run(&mut self, mut run: Run) {
        self.next_id += 1;
        run.id = self.next_id;
        self.runs.push(run);
    }

    /// A lead keyframe at `rt`: GOP lengths fix the playlist's target duration.
    pub fn note_keyframe(&mut self, rt: u64) {
        if let (Some(last), Some(run)) = (self.last_key, self.runs.last_mut()) {
            run.playlist.note_gop(rt.saturating_sub(last));
        }
        self.last_key = Some(rt);
    }

    /// Data resumed at `rt` after a break: within the resume timeout the
    /// open playlist goes on, with a discontinuity (returned); past it, the
    /// playlist closes.
    pub fn resume(&mut self, rt: u64, resume_ns: u64) -> bool {
        let Some(start) = self.break_start else {
            return false;
        };
        let expired = rt.saturating_sub(start) > resume_ns;
        self.cancel_break();
        let Some(run) = self.open_run_mut() else {
            return false;
        };
        if expired {
            run.closing = Some(CloseReason::HlsTimeout);
            false
        } else {
            run.next_seq > 0
        }
    }

    pub fn open_run_mut(&mut self) -> Option<&mut Run> {
        self.runs.iter_mut().rev().find(|r| r.closing.is_none())
    }

    pub fn run(&self, id: u64) -> Option<&Run> {
        self.runs.iter().find(|r| r.id == id)
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
