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
use super::writer::file_segment;
use crate::rotation::CloseReason;

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
            // The stream ends here: no file or muxer waits for it.
            self.input_eos(stream);
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
            if state.live.is_none() {
                drop(guard);
                let live = upstream_is_live(pad);
                gst::debug!(
                    CAT,
                    imp = self,
                    "Upstream of {} is live: {live}",
                    stream.name()
                );
                if let Some(state) = self.lock_state().as_mut() {
                    state.live.get_or_insert(live);
                }
                continue;
            }
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
            if state.flushing || state.stopping {
                break Err(Refused::Flow(gst::FlowError::Flushing));
            }
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
            // Arrival times matter only to give up silent live streams.
            let now = state
                .clocking
                .clock
                .as_ref()
                .filter(|_| state.live == Some(true))
                .map(|c| c.time());
            let gone_before = state.inputs.audio.gone;
            let eos = state.arrived(stream, now);
            if state.inputs.audio.gone && !gone_before {
                gst::warning!(
                    CAT,
                    imp = self,
                    "No audio for {:?} while video goes on: the open files end their audio; files go on without it until it comes back",
                    super::pending::SILENCE
                );
            }
            if let Some(for_other) = state.lead_must_wait(stream, rt).filter(|_| eos.is_empty()) {
                // A file holds enough video while it waits for its audio
                // (wait for audio or its end, as a muxer would), or while
                // its held video is fed. Audio must not wait for video only
                // in the first case: it is what video waits for.
                state.lead_blocked = for_other;
                drop(self.wait(guard, Duration::from_millis(100)));
                continue;
            }
            state.lead_blocked = false;
            let mut plan = state.plan_buffer(stream, buffer, rt);
            plan.eos.extend(eos);
            break Ok(plan);
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
        let decode_lead =
            u64::try_from(i64::try_from(rt).unwrap_or(i64::MAX).saturating_sub(decode))
                .unwrap_or(0);
        let (time, reset) = self.track_input(state, stream, rt, dur, decode_lead);
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
    fn track_input(
        &self,
        state: &mut State,
        stream: Stream,
        raw: u64,
        dur: u64,
        decode_lead: u64,
    ) -> (u64, bool) {
        let seen = state
            .breaks
            .observe_decoding(stream.idx(), raw, dur, decode_lead);
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
        self.start_writers(plan.opens)?;
        if plan.request_keyframe {
            gst::debug!(CAT, imp = self, "Requesting a keyframe upstream");
            request_keyframe(pad);
        }
        for push in plan.pushes {
            let target = push.pad;
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

/// Sends EOS into writer inputs, all at once: a muxer may hold one input's
/// stream lock while it waits for another input, so EOS to one must never
/// wait behind EOS to another.
pub(super) fn send_eos(pads: Vec<gst::Pad>) {
    match pads.len() {
        0 => {}
        1 => {
            for p in pads {
                p.push_event(gst::event::Eos::new());
            }
        }
        _ => std::thread::scope(|s| {
            for p in &pads {
                s.spawn(move || p.push_event(gst::event::Eos::new()));
            }
        }),
    }
}

/// Whether the source upstream of `pad` is live (LATENCY query).
fn upstream_is_live(pad: &gst::Pad) -> bool {
    let mut q = gst::query::Latency::new();
    pad.peer_query(&mut q) && q.result().0
}

/// Asks upstream of `pad` for a keyframe with its headers.
fn request_keyframe(pad: &gst::Pad) {
    pad.push_event(
        gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build(),
    );
}
