// SPDX-License-Identifier: MIT OR Apache-2.0
//! The element's state while it runs (created at READY→PAUSED, dropped at
//! PAUSED→READY): inputs, channels, sessions, counters, and the decisions
//! taken under the state lock for each buffer.

use std::sync::Arc;

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
    /// The session in which the latest EOS came.
    pub eos_session: u64,
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
    /// Pipeline clock time of the latest buffer, and since when buffers
    /// have been arriving without a pause (live pipelines: how long a
    /// stream has been silent while another went on).
    pub last_arrival: Option<gst::ClockTime>,
    pub flowing_since: Option<gst::ClockTime>,
    /// Live only: the stream stopped sending while the others went on
    /// (`pending.rs`). Files go on without it until it sends again.
    pub gone: bool,
}

impl Input {
    /// Whether files of session `session` go on without this stream: it is
    /// not recorded, was given up, or ended (EOS) in that session or later.
    /// A stream that ended in an earlier session may restart with the
    /// others: files of a new session wait for it.
    pub fn absent_for(&self, session: u64) -> bool {
        !self.active || self.gone || (self.eos && self.eos_session >= session)
    }

    /// Forgets what the previous stream of this input did.
    pub fn restart(&mut self) {
        self.position = None;
        self.last_pts = None;
        self.last_decode = None;
        self.flowing_since = None;
        self.last_arrival = None;
        self.gone = false;
    }
}

/// The pipeline clock while PLAYING, for the timers (`timers.rs`).
#[derive(Default)]
pub struct Clocking {
    pub clock: Option<gst::Clock>,
    pub last_data: Option<gst::ClockTime>,
    pub idle_id: Option<gst::SingleShotClockId>,
}

pub struct State {
    pub cfg: Arc<Config>,
    /// One writer per stream: held from start to stop.
    pub lock: Option<crate::lockfile::StreamLock>,
    /// Retention's thread, stopped when the state is dropped.
    pub retention: Option<super::retainer::Retainer>,
    /// The callbacks' delivery thread, stopped when the state is dropped.
    pub delivery: Option<super::deliverer::Deliverer>,
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
    /// Video waits for a file's audio to start (non-live): audio must not
    /// wait for video then.
    pub lead_blocked: bool,
    /// Whether upstream is live (a LATENCY query at the first buffer):
    /// only live streams are given up after silence on the clock.
    pub live: Option<bool>,
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
            lock: None,
            retention: None,
            delivery: None,
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
            lead_blocked: false,
            live: None,
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
        if self.lead_blocked {
            return false;
        }
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
            video_can_cut && video.position.is_none_or(|p| p <= rt)
        })
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
        let caps = self.inputs[stream].caps.clone();
        let cfg = self.cfg.clone();
        let follower_eos = |s: Option<Stream>, inputs: &PerStream<Input>| {
            s.is_none_or(|f| inputs[f].eos || inputs[f].gone)
        };
        let mut written = false;
        let mut targets = Vec::with_capacity(self.channels.len());

        for ci in 0..self.channels.len() {
            if self.channels[ci].failed {
                continue;
            }
            let follower_done = follower_eos(self.channels[ci].follower, &self.inputs);
            let sessions = &mut self.sessions;
            let ch = &mut self.channels[ci];
            if let Some(d) = dur.filter(|_| ch.lead == stream) {
                ch.timeline.set_frame_duration(d);
            }
            let target = if ch.lead == stream {
                let mut open_at = || OpenAt {
                    session: sessions.number,
                    anchor: sessions.anchor_at(rt, Utc::now()),
                    rt,
                    dts_rt,
                };
                let frame = LeadFrame {
                    rt,
                    keyframe,
                    follower_done,
                };
                ch.route_lead(&cfg, frame, &mut open_at, &mut plan)
            } else if ch.follower == Some(stream) {
                ch.route_follower(stream, rt, &mut plan)
            } else {
                None
            };
            let Some(key) = target else { continue };
            written = true;
            // A file takes a stream it holds, until that stream's part ends
            // (a stream given up and back: it joins the next file).
            let Some(file) = ch
                .file_mut(key)
                .filter(|f| f.has[stream] && !f.eos_wanted[stream])
            else {
                continue;
            };
            if file.frames[stream] == 0 {
                file.caps[stream] = caps.clone();
            }
            file.frames[stream] += 1;
            file.end_rt = file.end_rt.max(end_rt);
            let pad = file.flowing[stream]
                .then(|| file.writer_pad(stream))
                .flatten();
            let send_caps = pad.is_some() && !file.caps_sent[stream];
            if send_caps {
                file.caps_sent[stream] = true;
            }
            targets.push((ci, key, pad, send_caps, file.base_rt));
        }

        // The last target takes the buffer itself (no copy when upstream
        // gave up its reference); the others get a shallow copy.
        let n = targets.len();
        let mut owned = Some(buffer);
        for (i, (chan, key, pad, send_caps, base)) in targets.into_iter().enumerate() {
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
            match pad {
                Some(pad) => plan.pushes.push(Push {
                    chan,
                    pad,
                    caps: if send_caps { caps.clone() } else { None },
                    buffer: out,
                }),
                // Held until the writer runs.
                None => {
                    if let Some(f) = self.channels.get_mut(chan).and_then(|c| c.file_mut(key)) {
                        f.held.push((stream, out));
                    }
                }
            }
        }
        plan.opens = self.take_ready();

        if written {
            match stream {
                Stream::Video => self.stats.video_frames += 1,
                Stream::Audio => self.stats.audio_frames += 1,
            }
        } else {
            gst::debug!(
                super::imp::CAT,
                "Dropping a {} frame at {}: no file takes it",
                stream.name(),
                gst::ClockTime::from_nseconds(rt)
            );
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
