// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every clock wait of the element, on the pipeline clock while PLAYING:
//! the idle timeout (no data on any pad) and the HLS resume timeout (a
//! playlist waiting for data after a break). Each is a single-shot clock id
//! whose callback hops to the element's async thread.

use std::sync::atomic::Ordering;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::datapath::send_eos;
use super::imp::{LiveRecordSink, CAT};
use super::state::State;
use crate::rotation::CloseReason;

/// Runs `f` on the element's async thread when `clock` reaches `target`.
fn at_time(
    imp: &LiveRecordSink,
    clock: &gst::Clock,
    target: gst::ClockTime,
    f: fn(&LiveRecordSink, usize),
    arg: usize,
) -> Option<gst::SingleShotClockId> {
    let id = clock.new_single_shot_id(target);
    let weak = imp.obj().downgrade();
    id.wait_async(move |_, _, _| {
        if let Some(obj) = weak.upgrade() {
            obj.call_async(move |obj| f(obj.imp(), arg));
        }
    })
    .ok()
    .map(|_| id)
}

impl LiveRecordSink {
    /// Data arrived (under the state lock): the idle timer restarts from now.
    pub(super) fn data_arrived(&self, state: &mut State) {
        let c = &mut state.clocking;
        if let Some(clock) = &c.clock {
            c.last_data = Some(clock.time());
            if c.idle_id.is_none() {
                self.schedule_idle(state);
            }
        }
    }

    fn schedule_idle(&self, state: &mut State) {
        let Some(last) = state.clocking.last_data else {
            return;
        };
        if state.cfg.idle_ns == 0 {
            return;
        }
        let target = last + gst::ClockTime::from_nseconds(state.cfg.idle_ns);
        self.schedule_idle_at(state, target);
    }

    /// Runs `idle_check` when the pipeline clock reaches `target`.
    fn schedule_idle_at(&self, state: &mut State, target: gst::ClockTime) {
        let Some(clock) = state.clocking.clock.clone() else {
            return;
        };
        state.clocking.idle_id = at_time(self, &clock, target, |imp, _| imp.idle_check(), 0);
    }

    /// Starts (PLAYING, with the pipeline clock) or stops the timers.
    pub(super) fn set_clock(&self, clock: Option<gst::Clock>) {
        let mut guard = self.lock_state();
        let Some(state) = guard.as_mut() else { return };
        if let Some(id) = state.clocking.idle_id.take() {
            id.unschedule();
        }
        state.clocking.last_data = clock.as_ref().map(|c| c.time());
        state.clocking.clock = clock;
        if state.recording() {
            self.schedule_idle(state);
        }
    }

    /// The idle timer fired: interrupt if no data came since.
    fn idle_check(&self) {
        let eos;
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.clocking.idle_id = None;
            let (Some(clock), Some(last)) =
                (state.clocking.clock.clone(), state.clocking.last_data)
            else {
                return;
            };
            let idle = gst::ClockTime::from_nseconds(state.cfg.idle_ns);
            let now = clock.time();
            if now < last + idle {
                self.schedule_idle(state);
                return;
            }
            let open = state
                .channels
                .iter()
                .any(|c| !c.files.is_empty() || c.timeline.lead_key().is_some());
            if !open {
                return;
            }
            if self.waiters.load(Ordering::SeqCst) > 0 && !state.lead_stalled {
                // Audio is waiting for video that stopped: let it into the
                // open file first, then close (shortly, on the next check).
                state.lead_stalled = true;
                self.notify();
                self.schedule_idle_at(state, now + gst::ClockTime::from_mseconds(20));
                return;
            }
            gst::info!(CAT, imp = self, "No data for {}: interruption", idle);
            let resume = state.breaks.idle_break();
            state.stats.interruptions += 1;
            state.sessions.next();
            eos = state.close_all_now(CloseReason::Interrupted);
            for ci in 0..state.channels.len() {
                self.hls_break(state, ci, resume, CloseReason::Interrupted);
            }
        }
        self.notify();
        send_eos(eos);
        let _ = self.start_ready();
        self.finish_playlists();
    }

    /// An interruption on an HLS channel: the playlist ends now (resume
    /// timeout 0) or waits for data to resume, with a clock wait for the
    /// timeout.
    pub(super) fn hls_break(
        &self,
        state: &mut State,
        ci: usize,
        gap_start: u64,
        reason: CloseReason,
    ) {
        let resume_ns = state.cfg.hls_resume_ns;
        let target = state
            .clocking
            .last_data
            .map(|t| t + gst::ClockTime::from_nseconds(resume_ns));
        let clock = state.clocking.clock.clone();
        let Some(hls) = state.channels.get_mut(ci).and_then(|c| c.hls.as_mut()) else {
            return;
        };
        // The break is not a GOP.
        hls.last_key = None;
        if resume_ns == 0 {
            hls.close_open(reason);
            return;
        }
        if hls.open_run_mut().is_none() || hls.break_start.is_some() {
            return;
        }
        hls.break_start = Some(gap_start);
        if let (Some(clock), Some(target)) = (clock, target) {
            hls.expiry = at_time(self, &clock, target, LiveRecordSink::hls_expired, ci);
        }
    }

    /// The resume timeout expired with no data: the playlist ends now.
    fn hls_expired(&self, ci: usize) {
        {
            let mut guard = self.lock_state();
            let Some(hls) = guard
                .as_mut()
                .and_then(|s| s.channels.get_mut(ci))
                .and_then(|c| c.hls.as_mut())
            else {
                return;
            };
            hls.expiry = None;
            if hls.break_start.is_none() {
                return;
            }
            gst::info!(CAT, imp = self, "HLS resume timeout expired");
            hls.close_open(CloseReason::HlsTimeout);
        }
        self.finish_playlists();
    }
}
