// SPDX-License-Identifier: MIT OR Apache-2.0
//! The streaming-thread glue: a buffer on a sink pad becomes a [`Plan`]
//! under the state lock (`State::plan_buffer`), and the plan is carried
//! out with no lock held: EOS to the files that end, writers built for the
//! files that open, buffers pushed into writers.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::channel::Plan;
use super::imp::{LiveRecordSink, CAT};
use super::state::State;
use super::stream::Stream;
use super::writer::{file_segment, Writer, WriterSpec};
use crate::fsio;
use crate::rotation::{CloseReason, Key};

/// How long audio may wait for video to reach its running time before it is
/// routed without knowing whether video will cut there.
const FOLLOWER_WAIT_LIMIT: Duration = Duration::from_secs(3);

/// An error found under the state lock, posted after releasing it.
enum Refused {
    Flow(gst::FlowError),
    Error(gst::ErrorMessage, gst::FlowError),
    Ok,
}

impl LiveRecordSink {
    /// The chain function of both sink pads. Called without locks.
    pub(super) fn sink_chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let stream = Stream::from_pad(pad);
        let Some(ts) = buffer.pts().or(buffer.dts()) else {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                [
                    "A {} buffer has no timestamp: liverecordsink needs timestamped, parsed streams (h264parse, aacparse)",
                    stream.name()
                ]
            );
            return Err(gst::FlowError::Error);
        };

        if buffer.size() == 0 {
            // Nothing to record: muxers write broken packets for these.
            gst::debug!(
                CAT,
                imp = self,
                "Dropping an empty {} buffer",
                stream.name()
            );
            if let Some(state) = self.lock_state().as_mut() {
                state.stats.frames_dropped += 1;
            }
            return Ok(gst::FlowSuccess::Ok);
        }
        let mut buffer = buffer;
        let mut waited = Duration::ZERO;
        let mut adjusted: Option<u64> = None;
        let planned = loop {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                break Err(Refused::Flow(gst::FlowError::Flushing));
            };
            let rt = match adjusted {
                Some(a) => a,
                None => match self.admit(state, stream, ts, &buffer) {
                    Ok((rt, fill)) => {
                        if let Some(d) = fill {
                            buffer
                                .make_mut()
                                .set_duration(gst::ClockTime::from_nseconds(d));
                        }
                        adjusted = Some(rt);
                        rt
                    }
                    Err(r) => break Err(r),
                },
            };
            if stream == Stream::Audio && state.follower_must_wait(rt) {
                if waited < FOLLOWER_WAIT_LIMIT {
                    let start = Instant::now();
                    drop(self.wait(guard, Duration::from_millis(100)));
                    waited += start.elapsed();
                    continue;
                }
                gst::warning!(
                    CAT,
                    imp = self,
                    "Video did not reach audio at {} within {:?}; routing audio without it",
                    gst::ClockTime::from_nseconds(rt),
                    FOLLOWER_WAIT_LIMIT
                );
                state.lead_stalled = true;
            }
            break Ok(state.plan_buffer(stream, buffer, rt));
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(Refused::Ok) => return Ok(gst::FlowSuccess::Ok),
            Err(Refused::Flow(e)) => return Err(e),
            Err(Refused::Error(msg, e)) => {
                self.post_error_message(msg);
                return Err(e);
            }
        };
        self.notify();
        self.execute(pad, stream, plan)
    }

    /// Checks a buffer's input (under the state lock) and gives the running
    /// time the data path uses (the input's offset applied, interruptions
    /// detected, the idle timer fed) and the duration to give a frame that
    /// has none.
    fn admit(
        &self,
        state: &mut State,
        stream: Stream,
        ts: gst::ClockTime,
        buffer: &gst::Buffer,
    ) -> Result<(u64, Option<u64>), Refused> {
        if state.flushing || state.stopping {
            return Err(Refused::Flow(gst::FlowError::Flushing));
        }
        let input = &state.inputs[stream];
        if !input.active {
            return Err(Refused::Ok);
        }
        if input.caps.is_none() {
            return Err(Refused::Error(
                gst::error_msg!(
                    gst::CoreError::Negotiation,
                    ["{} data arrived before caps", stream.name()]
                ),
                gst::FlowError::NotNegotiated,
            ));
        }
        let Some(segment) = &input.segment else {
            return Err(Refused::Error(
                gst::error_msg!(
                    gst::StreamError::Format,
                    ["{} data arrived before a segment", stream.name()]
                ),
                gst::FlowError::Error,
            ));
        };
        let Some(rt) = segment.to_running_time(ts).map(|t| t.nseconds()) else {
            gst::debug!(
                CAT,
                imp = self,
                "Dropping {} buffer outside segment",
                stream.name()
            );
            state.stats.frames_dropped += 1;
            return Err(Refused::Ok);
        };
        let decode = buffer
            .dts()
            .and_then(|d| segment.to_running_time_full(d))
            .map_or(
                i64::try_from(rt).unwrap_or(i64::MAX),
                super::state::signed_ns,
            );
        // A frame without a duration lasts what the caps' frame rate says,
        // else as long as the previous frame.
        let input = &state.inputs[stream];
        let fill = buffer.duration().is_none().then(|| {
            input
                .frame_duration
                .or_else(|| input.last_pts.map(|p| rt.abs_diff(p)).filter(|d| *d > 0))
        });
        let fill = fill.flatten();
        let dur = buffer
            .duration()
            .map(|d| d.nseconds())
            .or(fill)
            .unwrap_or(0);
        let (time, reset) = self.track_input(state, stream, rt, dur);
        let offset =
            i64::try_from(time).unwrap_or(i64::MAX) - i64::try_from(rt).unwrap_or(i64::MAX);
        let decode = decode.saturating_add(offset);
        let input = &mut state.inputs[stream];
        input.last_pts = Some(rt);
        if reset {
            input.last_decode = None;
        }
        // Time that steps back by less than the interruption gap: frames
        // that would decode before frames already written are dropped, so
        // that timestamps in a file never go back.
        if input.last_decode.is_some_and(|last| decode <= last) {
            gst::debug!(
                CAT,
                imp = self,
                "Dropping a {} frame that goes back in time",
                stream.name()
            );
            state.stats.frames_dropped += 1;
            return Err(Refused::Ok);
        }
        input.last_decode = Some(decode);
        Ok((time, fill))
    }

    /// Applies the input's offset to a running time, detects interruptions
    /// (gaps, backward jumps, announced breaks) and feeds the idle timer.
    /// Returns the running time, and whether the input crossed a break.
    fn track_input(&self, state: &mut State, stream: Stream, raw: u64, dur: u64) -> (u64, bool) {
        let seen = state.breaks.observe(stream.idx(), raw, dur);
        if let Some(b) = seen.new_break {
            gst::info!(
                CAT,
                imp = self,
                "{}: interruption ({}) at {}, files resume at {}",
                stream.name(),
                b.reason.as_str(),
                gst::ClockTime::from_nseconds(b.gap_start),
                gst::ClockTime::from_nseconds(b.resume)
            );
            self.break_at(state, b.resume, b.gap_start, b.reason);
        } else if let Some(resume) = seen.crossed {
            gst::debug!(
                CAT,
                imp = self,
                "{} crossed the break at {}",
                stream.name(),
                gst::ClockTime::from_nseconds(resume)
            );
        }
        self.data_arrived(state);
        (
            seen.time,
            seen.new_break.is_some() || seen.crossed.is_some(),
        )
    }

    /// An interruption at `resume`: every file takes the frames before it and
    /// closes; the session ends.
    fn break_at(&self, state: &mut State, resume: u64, gap_start: u64, reason: CloseReason) {
        let mut any = false;
        for ci in 0..state.channels.len() {
            let ch = &mut state.channels[ci];
            if let Some(k) = ch.timeline.interrupt_at(resume) {
                any = true;
                if let Some(f) = ch.file_mut(k) {
                    f.reason.get_or_insert(reason);
                }
            }
            self.hls_break(state, ci, gap_start, reason);
        }
        if any {
            state.stats.interruptions += 1;
        }
        // A break before anything was recorded does not end a session.
        if any || state.sessions.started() {
            state.sessions.next();
        }
    }

    /// Carries out a plan. Called without locks.
    fn execute(
        &self,
        pad: &gst::Pad,
        stream: Stream,
        plan: Plan,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        send_eos(plan.eos);
        for (ci, key) in plan.opens {
            self.start_writer(ci, key)?;
        }
        if plan.request_keyframe {
            gst::debug!(CAT, imp = self, "Requesting a keyframe upstream");
            request_keyframe(pad);
        }
        for push in plan.pushes {
            let target = if push.pad.is_some() {
                push.pad
            } else {
                let mut guard = self.lock_state();
                guard.as_mut().and_then(|s| {
                    let f = s.channels.get_mut(push.chan)?.file_mut(push.key)?;
                    let pad = f.writer_pad(push.stream)?;
                    f.caps_sent[push.stream] = true;
                    Some(pad)
                })
            };
            let Some(target) = target else { continue };
            if let Some(caps) = push.caps {
                target.push_event(gst::event::Caps::new(&caps));
                target.push_event(file_segment());
            }
            match target.push(push.buffer) {
                Ok(_) | Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {}
                Err(gst::FlowError::NotNegotiated) => {
                    let (format, caps) = {
                        let guard = self.lock_state();
                        let s = guard.as_ref();
                        (
                            s.and_then(|s| s.channels.get(push.chan))
                                .map_or("?", |c| c.format.name()),
                            s.and_then(|s| s.inputs[stream].caps.clone()),
                        )
                    };
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        [
                            "The {} format cannot take {} caps {}",
                            format,
                            stream.name(),
                            caps.map(|c| c.to_string()).unwrap_or_default()
                        ]
                    );
                    return Err(gst::FlowError::NotNegotiated);
                }
                Err(e) => {
                    gst::error!(CAT, imp = self, "Writer returned {e:?}");
                    return Err(e);
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Builds and starts the writer of a file decided under the lock.
    /// Called without locks.
    fn start_writer(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        let (name, format, part_path, video, audio, frag) = {
            let guard = self.lock_state();
            let Some(state) = guard.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            let ch = state.channels.get(ci).ok_or(gst::FlowError::Error)?;
            let f = ch
                .files
                .iter()
                .find(|f| f.key == key)
                .ok_or(gst::FlowError::Error)?;
            let caps = |s: Stream| f.has[s].then(|| state.inputs[s].caps.clone());
            (
                format!("writer-{}-{:05}-{}", ch.format.name(), f.index, key),
                ch.format,
                f.part_path.clone(),
                caps(Stream::Video),
                caps(Stream::Audio),
                state.cfg.mp4_fragment_ms,
            )
        };
        let caps_sent = (
            video.as_ref().is_some_and(|c| c.is_some()),
            audio.as_ref().is_some_and(|c| c.is_some()),
        );

        let result = fsio::prepare_part(&part_path).and_then(|_| {
            let writer = Writer::build(WriterSpec {
                name,
                format,
                part_path: &part_path,
                video,
                audio,
                mp4_fragment_ms: frag,
            })
            .map_err(|e| e.to_string())?;
            self.obj()
                .add(&writer.bin)
                .map_err(|e| format!("cannot add writer: {e}"))?;
            if let Err(e) = writer.start() {
                let _ = self.obj().remove(&writer.bin);
                return Err(e.to_string());
            }
            Ok(writer)
        });
        let writer = match result {
            Ok(w) => w,
            Err(msg) => {
                self.writer_not_started(ci, key);
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot record {}: {}", part_path.display(), msg)
                );
                return Err(gst::FlowError::Error);
            }
        };

        let (eos, opened) = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                writer.shutdown();
                return Err(gst::FlowError::Flushing);
            };
            let stream_id = state.cfg.recorder.stream_id.clone();
            let ch = state.channels.get_mut(ci).ok_or(gst::FlowError::Error)?;
            let format = ch.format;
            let f = ch.file_mut(key).ok_or(gst::FlowError::Error)?;
            f.caps_sent.video = caps_sent.0;
            f.caps_sent.audio = caps_sent.1;
            f.writer = Some(writer);
            // Closed while it was being built (stop, EOS): drain it now.
            let eos = f.take_eos_pads();
            let opened = f.announce.take().map(|location| {
                super::messages::file_opened(
                    &stream_id,
                    format.name(),
                    &f.meta(),
                    &location.to_string_lossy(),
                )
            });
            (eos, opened)
        };
        self.notify();
        send_eos(eos);
        if let Some(s) = opened {
            self.post(s);
        }
        Ok(())
    }

    /// `split-now`: the lead cuts at its next keyframe. Called without locks.
    pub(super) fn split_now(&self) {
        let request = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let mut request = false;
            for ch in &mut state.channels {
                request |= ch.timeline.request_split() && ch.lead == Stream::Video;
            }
            request
        };
        self.notify();
        if request {
            if let Some(pad) = self.obj().static_pad("video") {
                request_keyframe(&pad);
            }
        }
    }
}

/// Sends EOS into writer inputs.
pub(super) fn send_eos(pads: Vec<gst::Pad>) {
    for p in pads {
        p.push_event(gst::event::Eos::new());
    }
}

/// Asks upstream of `pad` for a keyframe with its headers.
fn request_keyframe(pad: &gst::Pad) {
    pad.push_event(
        gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build(),
    );
}
