// SPDX-License-Identifier: MIT OR Apache-2.0
//! The element's state while it runs (created at READY→PAUSED, dropped at
//! PAUSED→READY): inputs, channels, sessions, counters, and the decisions
//! taken under the state lock for each buffer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::channel::{Channel, LeadFrame, OpenAt, Plan, Push};
use super::messages::Stats;
use super::props::Config;
use super::stream::{PerStream, Stream};
use super::RecordType;
use crate::breaks::Tracker;
use crate::index::Resume;
use crate::rotation::CloseReason;
use crate::session::Sessions;

/// One input pad.
#[derive(Debug, Default)]
pub struct Input {
    /// The pad exists and its stream is recorded (record-type).
    pub active: bool,
    pub caps: Option<gst::Caps>,
    pub segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    pub eos: bool,
    /// Highest running time seen (end of the latest frame).
    pub position: Option<u64>,
    pub stream_id: Option<String>,
    /// From the caps' framerate, for frames that come without a duration.
    pub frame_duration: Option<u64>,
    /// Running time of the previous frame, to derive a missing duration.
    pub last_pts: Option<u64>,
    /// Decode time (DTS, else PTS) of the last frame taken: within a file
    /// it never goes back.
    pub last_decode: Option<i64>,
    /// End of the latest frame taken (running time), and when it came.
    pub last_end: Option<u64>,
    pub last_arrival: Option<Instant>,
    /// The stream has had data since it started.
    pub flowed: bool,
    /// The stream stopped (no data while the other went on, an error, no
    /// data at all): files go on without it until its data comes back.
    pub gone: bool,
}

impl Input {
    /// Linked, recorded, and neither ended nor stopped.
    pub fn live(&self) -> bool {
        self.active && !self.eos && !self.gone
    }
}

/// How far (in media time) video may run ahead of audio before audio counts
/// as stopped, and how long a new file waits for audio to start. Muxers
/// hold 10 s of input (writer.rs), so they never block on a stopped stream.
pub const AUDIO_WAIT_NS: u64 = 3_000_000_000;
/// ... and for at least this long on the wall clock, so that a source
/// pushing faster than real time, whose streams arrive unevenly, is not
/// taken for a stopped one.
pub const AUDIO_WAIT_WALL: Duration = Duration::from_secs(1);

/// The pipeline clock while PLAYING, for the timers (`timers.rs`).
#[derive(Default)]
pub struct Clocking {
    pub clock: Option<gst::Clock>,
    pub last_data: Option<gst::ClockTime>,
    pub idle_id: Option<gst::SingleShotClockId>,
}

pub struct State {
    pub cfg: Arc<Config>,
    pub inputs: PerStream<Input>,
    pub channels: Vec<Channel>,
    pub sessions: Sessions,
    pub stats: Stats,
    pub flushing: bool,
    pub stopping: bool,
    /// Every input reached EOS: EOS goes downstream once all files are closed.
    pub eos: bool,
    pub eos_pushed: bool,
    /// Files taken out of their channel and being finalised right now.
    pub finalizing: usize,
    /// Video stopped advancing while audio waited for it; stop waiting until
    /// it moves again.
    pub lead_stalled: bool,
    /// Interruptions seen in running time, and the inputs' offsets.
    pub breaks: Tracker,
    pub clocking: Clocking,
}

impl State {
    /// The state of a starting element whose pads are `linked`.
    pub fn new(cfg: Config, linked: PerStream<bool>, resume: &Resume) -> Result<State, String> {
        let video = linked.video && cfg.record_type != RecordType::Audio;
        let audio = linked.audio && cfg.record_type != RecordType::Video;
        // Video leads every channel when it is recorded, even the audio-only
        // ones, so that all channels cut at the same keyframes.
        let (lead, follower) = match (video, audio) {
            (true, true) => (Stream::Video, Some(Stream::Audio)),
            (true, false) => (Stream::Video, None),
            (false, _) => (Stream::Audio, None),
        };
        let mut channels = Vec::new();
        for f in &cfg.formats {
            if !f.holds_video() && !audio {
                return Err(format!(
                    "The {} format records audio only, but no audio is recorded (link the audio pad, and use record-type av or audio)",
                    f.name()
                ));
            }
            channels.push(Channel::new(
                *f,
                lead,
                follower,
                &cfg,
                resume.next_index_for(f.name()),
            ));
        }
        let mut inputs: PerStream<Input> = PerStream::default();
        inputs.video.active = video;
        inputs.audio.active = audio;
        let gap_ns = cfg.gap_ns;
        Ok(State {
            cfg: Arc::new(cfg),
            inputs,
            channels,
            sessions: Sessions::new(resume.next_session),
            stats: Stats::default(),
            flushing: false,
            stopping: false,
            eos: false,
            eos_pushed: false,
            finalizing: 0,
            lead_stalled: false,
            breaks: Tracker::new(2, gap_ns),
            clocking: Clocking::default(),
        })
    }

    /// Whether any file is open.
    pub fn recording(&self) -> bool {
        self.channels.iter().any(|c| !c.files.is_empty())
    }

    /// Every input ended and every file and playlist is finalised.
    pub fn all_finalised(&self) -> bool {
        self.finalizing == 0
            && self
                .channels
                .iter()
                .all(|c| c.files.is_empty() && c.hls.as_ref().is_none_or(|h| h.runs.is_empty()))
    }

    /// Closes every open file at once. HLS playlists end too, unless the
    /// interruption may be resumed (`reason` Interrupted: the caller decides).
    pub fn close_all_now(&mut self, reason: CloseReason) -> Vec<gst::Pad> {
        let mut eos = Vec::new();
        for ch in &mut self.channels {
            ch.timeline.close_all();
            let streams = ch.streams();
            for f in &mut ch.files {
                eos.extend(f.finish(&streams, Some(reason)));
            }
            if let Some(h) = ch.hls.as_mut() {
                if reason != CloseReason::Interrupted {
                    h.close_open(reason);
                }
            }
        }
        eos
    }

    /// Whether audio at `rt` must wait for video to pass it.
    pub fn follower_must_wait(&self, rt: u64) -> bool {
        let video = &self.inputs.video;
        self.channels.iter().any(|ch| {
            if ch.follower != Some(Stream::Audio) {
                return false;
            }
            // After video's EOS, audio with no file to go to waits (boundedly)
            // for video to restart: the two pads restart independently.
            let video_can_cut = video.active
                && !self.lead_stalled
                && (!video.eos || ch.timeline.lead_key().is_none());
            // Audio never runs ahead of video: a cut (on the interval, or
            // at any time for split-now) can then always be placed so that
            // the next file's audio starts with its first video frame.
            // Video's position is the end of its latest frame: the next
            // video frame starts there and may cut, so audio at that time
            // waits for it too.
            if video_can_cut && video.position.is_none_or(|p| p <= rt) {
                return true;
            }
            false
        })
    }

    /// After a break, audio is measured again from where files resume, so
    /// that video crossing the break first is not taken for audio stopping.
    pub fn forget_audio_position(&mut self, resume: u64) {
        let a = &mut self.inputs.audio;
        if a.last_end.is_some() {
            a.last_end = Some(resume);
            a.last_arrival = Some(Instant::now());
        }
    }

    /// Whether audio is flowing: a new file can take it at once.
    fn audio_flowing(&self) -> bool {
        let a = &self.inputs.audio;
        a.live() && a.caps.is_some() && a.flowed
    }

    /// Files waiting for audio that can start now: audio flows, audio ended
    /// or stopped, the element stops, or the file waited [`AUDIO_WAIT_NS`] of video (then it goes on
    /// without audio, which counts as stopped until its data comes).
    pub fn take_ready(&mut self) -> Vec<(usize, crate::rotation::Key)> {
        let flowing = self.audio_flowing();
        // Audio will not come for a waiting file: not linked, stopped, or
        // every input ended (an EOS of audio alone may be a restart).
        let all_ended = self.inputs.iter().all(|(_, i)| !i.active || i.eos);
        let gone = !self.inputs.audio.active || self.inputs.audio.gone || all_ended;
        let pos = self.inputs.video.position;
        let mut ready = Vec::new();
        let mut timed_out = false;
        for (ci, ch) in self.channels.iter_mut().enumerate() {
            for f in ch.files.iter_mut().filter(|f| f.waiting) {
                let ended = f.eos_wanted.video || f.eos_wanted.audio;
                let late = pos.is_some_and(|p| p.saturating_sub(f.start_rt) >= AUDIO_WAIT_NS)
                    && f.opened.elapsed() >= AUDIO_WAIT_WALL;
                // A file cut while waiting goes on waiting (bounded by
                // `late`): audio may just be slower to arrive than video.
                // A file cut by its interval or split-now goes on waiting;
                // one closed by an interruption, EOS or stopping starts now.
                let cut = matches!(
                    f.reason,
                    Some(CloseReason::Interval | CloseReason::SplitRequested)
                );
                let ended = ended && (self.stopping || all_ended || !cut);
                if !(flowing || gone || ended || late) {
                    continue;
                }
                if !flowing {
                    gst::info!(
                        super::imp::CAT,
                        "File {} goes on without audio (gone {gone}, ended {ended}, late {late}, caps {}, flowed {})",
                        f.key,
                        self.inputs.audio.caps.is_some(),
                        self.inputs.audio.flowed
                    );
                    f.has.audio = false;
                    timed_out |= late;
                }
                f.waiting = false;
                ready.push((ci, f.key));
            }
        }
        if timed_out && self.inputs.audio.active {
            gst::info!(
                super::imp::CAT,
                "No audio within {} ms of video: files go on without it",
                AUDIO_WAIT_NS / 1_000_000
            );
            self.inputs.audio.gone = true;
        }
        ready
    }

    /// Audio stopped while video goes on: the files' audio ends, so that
    /// muxers do not wait for it; later files have no audio until it comes
    /// back.
    fn audio_stopped(&mut self, plan: &mut Plan) {
        gst::info!(
            super::imp::CAT,
            "Audio stopped while video goes on: files go on without it"
        );
        self.inputs.audio.gone = true;
        for ch in &mut self.channels {
            for f in ch.files.iter_mut().filter(|f| f.has.audio) {
                if f.waiting {
                    f.has.audio = false;
                } else {
                    plan.eos.extend(f.finish(&[Stream::Audio], None));
                }
            }
        }
    }

    /// Decides where a buffer of `stream` at running time `rt` goes: which
    /// files take it (with their timestamps), which open, which end.
    pub fn plan_buffer(&mut self, stream: Stream, buffer: gst::Buffer, rt: u64) -> Plan {
        let mut plan = Plan::default();
        let keyframe =
            stream == Stream::Audio || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        // Signed running time: B-frames' DTS may lie before the segment
        // start (flvdemux starts its segment at the first PTS).
        let dts_rt = buffer
            .dts()
            .zip(self.inputs[stream].segment.as_ref())
            .and_then(|(d, seg)| seg.to_running_time_full(d))
            .map(|t| self.breaks.adjust_signed(stream.idx(), signed_ns(t)));
        let dur = buffer.duration().map(|d| d.nseconds());
        let end_rt = rt + dur.unwrap_or(0);
        if stream == Stream::Video {
            // The next cut can only come at or after the end of this frame.
            let input = &mut self.inputs.video;
            input.position = Some(input.position.map_or(end_rt, |p| p.max(end_rt)));
            self.lead_stalled = false;
        }
        match stream {
            Stream::Audio => {
                let a = &mut self.inputs.audio;
                a.last_end = Some(a.last_end.map_or(end_rt, |e| e.max(end_rt)));
                a.last_arrival = Some(Instant::now());
                a.flowed = true;
                a.gone = false;
            }
            Stream::Video => {
                let a = &self.inputs.audio;
                let behind = a
                    .last_end
                    .is_some_and(|e| end_rt > e.saturating_add(AUDIO_WAIT_NS));
                let quiet = a
                    .last_arrival
                    .is_none_or(|t| t.elapsed() >= AUDIO_WAIT_WALL);
                if a.live() && behind && quiet {
                    self.audio_stopped(&mut plan);
                }
            }
        }
        let cfg = self.cfg.clone();
        let follower_eos =
            |s: Option<Stream>, inputs: &PerStream<Input>| s.is_none_or(|f| inputs[f].eos);
        let audio = (self.inputs.audio.live(), self.audio_flowing());
        let mut written = false;
        let mut targets = Vec::with_capacity(self.channels.len());

        for ci in 0..self.channels.len() {
            let follower_done = follower_eos(self.channels[ci].follower, &self.inputs);
            let sessions = &mut self.sessions;
            let ch = &mut self.channels[ci];
            if ch.failed {
                continue;
            }
            if let Some(d) = dur.filter(|_| ch.lead == stream) {
                ch.timeline.set_frame_duration(d);
            }
            let target = if ch.lead == stream {
                let mut open_at = || OpenAt {
                    session: sessions.number,
                    anchor: sessions.anchor_at(rt, Utc::now()),
                    rt,
                    dts_rt,
                    audio,
                };
                let frame = LeadFrame {
                    rt,
                    keyframe,
                    follower_done,
                };
                ch.route_lead(&cfg, frame, &mut open_at, &mut plan, ci)
            } else if ch.follower == Some(stream) {
                ch.route_follower(stream, rt, &mut plan)
            } else {
                None
            };
            let Some(key) = target else { continue };
            let writes = ch.writes(stream);
            let Some(file) = ch.file_mut(key) else {
                continue;
            };
            if !file.has[stream] || file.eos_wanted[stream] {
                // A format that does not hold the stream takes no part of
                // it; a file that went on without it drops it.
                written |= !writes;
                continue;
            }
            written = true;
            file.frames[stream] += 1;
            file.end_rt = file.end_rt.max(end_rt);
            targets.push((ci, key, file.base_rt));
        }

        // The last target takes the buffer itself (no copy when upstream
        // gave up its reference); the others get a shallow copy.
        let n = targets.len();
        let mut owned = Some(buffer);
        for (i, (chan, key, base)) in targets.into_iter().enumerate() {
            let Some(mut out) = (if i + 1 == n {
                owned.take()
            } else {
                owned.clone()
            }) else {
                break;
            };
            {
                // Every frame keeps its input PTS and DTS minus the file's base.
                let b = out.make_mut();
                b.set_pts(file_time(i64::try_from(rt).unwrap_or(i64::MAX), base));
                b.set_dts(dts_rt.map(|d| file_time(d, base)));
            }
            let Some(file) = self.channels[chan].file_mut(key) else {
                continue;
            };
            if file.queueing[stream] {
                file.pending[stream].push(out);
            } else if let Some(pad) = file.writer_pad(stream) {
                plan.pushes.push(Push {
                    chan,
                    stream,
                    pad,
                    buffer: out,
                });
            }
        }
        plan.opens.extend(self.take_ready());

        if written {
            match stream {
                Stream::Video => self.stats.video_frames += 1,
                Stream::Audio => self.stats.audio_frames += 1,
            }
        } else {
            self.stats.frames_dropped += 1;
        }
        plan
    }
}

/// Nanoseconds of a signed clock time.
pub fn signed_ns(t: gst::Signed<gst::ClockTime>) -> i64 {
    match t {
        gst::Signed::Positive(t) => i64::try_from(t.nseconds()).unwrap_or(i64::MAX),
        gst::Signed::Negative(t) => -i64::try_from(t.nseconds()).unwrap_or(i64::MAX),
    }
}

/// A running time in a file whose timestamps start at `base`.
fn file_time(rt: i64, base: i64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(rt.saturating_sub(base)).unwrap_or(0))
}
