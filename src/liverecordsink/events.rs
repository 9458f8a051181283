// SPDX-License-Identifier: MIT OR Apache-2.0
//! Events and queries on the sink pads: caps (policy in `caps.rs`),
//! segments, flushing, STREAM_START (restarts and new streams) and EOS.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::caps::{format_accepts, same_media, sink_caps};
use super::datapath::send_eos;
use super::failures::retire_channel;
use super::imp::{LiveRecordSink, CAT};
use super::stream::Stream;
use super::writer::file_segment;
use super::EosAction;
use crate::rotation::CloseReason;

impl LiveRecordSink {
    /// The event function of both sink pads. Called without locks.
    pub(super) fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let stream = Stream::from_pad(pad);
        match event.view() {
            EventView::Caps(c) => self.caps_event(stream, c.caps_owned()),
            EventView::Segment(s) => {
                let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ["{} segment is not in TIME format", stream.name()]
                    );
                    return false;
                };
                if let Some(state) = self.lock_state().as_mut() {
                    state.inputs[stream].segment = Some(segment);
                }
                true
            }
            EventView::Eos(_) => {
                self.input_eos(stream);
                true
            }
            EventView::FlushStart(_) => {
                if let Some(state) = self.lock_state().as_mut() {
                    state.flushing = true;
                }
                self.notify();
                true
            }
            EventView::FlushStop(_) => {
                if let Some(state) = self.lock_state().as_mut() {
                    state.flushing = false;
                    let input = &mut state.inputs[stream];
                    input.segment = None;
                    input.last_pts = None;
                    input.last_decode = None;
                }
                true
            }
            EventView::StreamStart(ss) => {
                self.stream_start(stream, ss.stream_id());
                true
            }
            EventView::Gap(_) | EventView::Tag(_) => true,
            _ => {
                if event.is_serialized() {
                    true
                } else {
                    gst::Pad::event_default(pad, Some(&*self.obj()), event)
                }
            }
        }
    }

    /// New caps: a change in what a file depends on after data is an
    /// interruption. A channel whose format cannot hold them stops (its
    /// files close, a warning names it) while the others record on; caps
    /// that no channel can hold are refused with an error.
    fn caps_event(&self, stream: Stream, caps: gst::Caps) -> bool {
        let (refused, all_refused, eos, unstarted) = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                return false;
            };
            let input = &state.inputs[stream];
            let mut refused = Vec::new();
            let mut writing = 0;
            if input.active {
                for (ci, ch) in state.channels.iter().enumerate() {
                    if !ch.writes(stream) || ch.failed {
                        continue;
                    }
                    writing += 1;
                    if let Err(why) = format_accepts(ch.format, &caps) {
                        refused.push((ci, ch.format.name(), why));
                    }
                }
            }
            let all_refused = !refused.is_empty() && refused.len() == writing;
            let (mut eos, mut unstarted) = (Vec::new(), Vec::new());
            if !all_refused {
                for (ci, _, _) in &refused {
                    if let Some(ch) = state.channels.get_mut(*ci) {
                        let (e, u) = retire_channel(ch, CloseReason::CapsChanged);
                        eos.extend(e);
                        unstarted.extend(u.into_iter().map(|k| (*ci, k)));
                    }
                }
                let had_data = state.breaks.has_data(stream.idx());
                let input = &mut state.inputs[stream];
                // Caps before any data, or caps that differ only in fields
                // the files do not depend on, are not a new file.
                let changed = input
                    .caps
                    .as_ref()
                    .is_some_and(|old| !same_media(old, &caps));
                let breaks = changed && input.active && had_data;
                input.frame_duration = frame_duration(&caps);
                input.caps = Some(caps.clone());
                if breaks {
                    gst::info!(CAT, imp = self, "{} caps changed: new file", stream.name());
                    state
                        .breaks
                        .announce(stream.idx(), CloseReason::CapsChanged);
                }
            }
            (refused, all_refused, eos, unstarted)
        };
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        if all_refused {
            let (_, format, why) = &refused[0];
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("The {} format cannot record {}: {}", format, name, why),
                ["caps: {}", caps]
            );
            return false;
        }
        send_eos(eos);
        for (ci, k) in unstarted {
            self.drop_unstarted(ci, k, false);
        }
        for (_, format, why) in &refused {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "The {} format cannot record {}: {}; its recording stops, the other formats go on",
                    format,
                    name,
                    why
                ),
                ["caps: {}", caps]
            );
        }
        if !refused.is_empty() {
            self.notify();
            self.finish_playlists();
        }
        true
    }

    /// STREAM_START: after EOS, recording resumes in a new session; a new
    /// stream id is an interruption.
    fn stream_start(&self, stream: Stream, id: &str) {
        let mut restart_eos = false;
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let input = &mut state.inputs[stream];
            if input.eos {
                // A source that restarts after EOS: record again, in a new session.
                gst::info!(CAT, imp = self, "{} restarted after EOS", stream.name());
                input.eos = false;
                input.restart();
                state.breaks.restart(stream.idx());
                // The other stream flowed on through this one's EOS into the
                // open files, in which this stream's part has ended: the
                // restart is an interruption (new files, a new session), or
                // its data would have no file to go to. (Both at EOS in this
                // session, restarting one after the other, is one restart.)
                let ended_in = state.inputs[stream].eos_session;
                let others_running = Stream::ALL.iter().any(|s| {
                    let other = &state.inputs[*s];
                    *s != stream && other.active && !other.eos && other.eos_session != ended_in
                });
                if others_running {
                    state
                        .breaks
                        .announce(stream.idx(), CloseReason::Interrupted);
                }
                if state.eos {
                    state.eos = false;
                    restart_eos = std::mem::replace(&mut state.eos_pushed, false);
                }
            } else if input.stream_id.as_deref().is_some_and(|old| old != id) && input.active {
                gst::info!(
                    CAT,
                    imp = self,
                    "{} stream changed to {id}: interruption",
                    stream.name()
                );
                state
                    .breaks
                    .announce(stream.idx(), CloseReason::Interrupted);
            }
            state.inputs[stream].stream_id = Some(id.to_string());
        }
        if restart_eos {
            self.restart_eos_sink(id);
        }
    }

    /// Un-EOSes the bin after a restart: the internal sink takes a new stream.
    fn restart_eos_sink(&self, id: &str) {
        let Some(pad) = self.eos_pad.get() else {
            return;
        };
        // A sink drops everything after EOS until it is flushed.
        pad.push_event(gst::event::FlushStart::new());
        pad.push_event(gst::event::FlushStop::new(false));
        pad.push_event(
            gst::event::StreamStart::builder(&format!("{}/eos/{}", self.obj().name(), id)).build(),
        );
        pad.push_event(file_segment());
    }

    /// EOS on one input: its part of the current files ends; when every
    /// input has ended, every file closes and EOS follows once they are final.
    pub(super) fn input_eos(&self, stream: Stream) {
        let mut eos = Vec::new();
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.inputs[stream].eos = true;
            state.inputs[stream].eos_session = state.sessions.number;
            for ch in &mut state.channels {
                let mut ended = Vec::new();
                if ch.follower == Some(stream) {
                    ended.extend(ch.timeline.follower_ended());
                }
                if ch.lead == stream || ch.follower == Some(stream) {
                    // The current file keeps taking the follower until it ends.
                    ended.extend(ch.timeline.current());
                }
                for k in ended {
                    if let Some(f) = ch.file_mut(k) {
                        eos.extend(f.finish(&[stream], None));
                    }
                }
            }
            let all_eos = state.inputs.iter().all(|(_, i)| !i.active || i.eos);
            if all_eos && state.cfg.eos_action == EosAction::Interrupt {
                // A publisher left: like an idle timeout, files close now and
                // HLS may resume when a new stream starts.
                gst::info!(
                    CAT,
                    imp = self,
                    "All inputs ended: interruption (eos-action=interrupt)"
                );
                let resume = state.breaks.idle_break();
                state.breaks.all_ended();
                state.stats.interruptions += 1;
                state.sessions.next();
                eos.extend(state.close_all_now(CloseReason::Interrupted));
                for ci in 0..state.channels.len() {
                    self.hls_break(state, ci, resume, CloseReason::Interrupted);
                }
                for (_, i) in state.inputs.iter_mut() {
                    i.position = None;
                }
            } else if all_eos {
                state.stats.interruptions += 1;
                gst::info!(CAT, imp = self, "All inputs ended: finalising files");
                eos.extend(state.close_all_now(CloseReason::Eos));
                state.breaks.all_ended();
                state.eos = true;
                // A restart may begin again from any running time.
                for (_, i) in state.inputs.iter_mut() {
                    i.position = None;
                }
                state.sessions.next();
            }
        }
        self.notify();
        send_eos(eos);
        // Files that waited for this stream start without it.
        let _ = self.start_ready();
        self.finish_playlists();
        self.maybe_forward_eos();
    }

    /// A pad was released while recording: its stream ends as at EOS, and
    /// nothing waits for it any more.
    pub(super) fn input_released(&self, stream: Stream) {
        gst::info!(
            CAT,
            imp = self,
            "{} pad released: its stream ends",
            stream.name()
        );
        self.input_eos(stream);
        if let Some(state) = self.lock_state().as_mut() {
            state.inputs[stream].active = false;
        }
        self.notify();
        self.maybe_forward_eos();
    }

    /// Sends EOS downstream (to the internal fakesink) once every input has
    /// ended and every file is finalised, so that the bin posts EOS then,
    /// after every file's message.
    pub(super) fn maybe_forward_eos(&self) {
        let push = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let done = state.eos && !state.eos_pushed && state.all_finalised();
            if done {
                state.eos_pushed = true;
            }
            done
        };
        if !push {
            return;
        }
        if let Some(pad) = self.eos_pad.get().cloned() {
            gst::info!(CAT, imp = self, "All files finalised: posting EOS");
            self.effects.queue(Box::new(move || {
                pad.push_event(gst::event::Eos::new());
            }));
            self.effects.run();
        }
    }

    /// The query function of both sink pads: caps for the chosen formats.
    pub(super) fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let formats = self.settings().formats;
                let caps = sink_caps(Stream::from_pad(pad), formats);
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

/// The duration of one frame from the caps' frame rate, if it has one.
fn frame_duration(caps: &gst::CapsRef) -> Option<u64> {
    let f = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    let (n, d) = (
        u64::try_from(f.numer()).ok()?,
        u64::try_from(f.denom()).ok()?,
    );
    (n > 0).then(|| d.saturating_mul(1_000_000_000) / n)
}
