// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interruptions seen in the running time of the inputs (SPEC §6). Plain
//! Rust, no GStreamer types.
//!
//! Each input's running time is checked against its previous buffer: a jump
//! forward or backward larger than the interruption gap is a *break*, and so
//! is a break announced by an event (a new stream, new caps). A break is one
//! event for every input: the first input to see it defines it, and another
//! input that then crosses the same point adopts it instead of making a
//! second one.
//!
//! Time only moves forward: when a source restarts with earlier timestamps,
//! an offset is added to that input's running times (and to the other
//! inputs' when they cross the same break), so that the recording's time
//! continues after everything already seen.

use std::collections::VecDeque;

use crate::rotation::CloseReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Break {
    epoch: u64,
    /// Running time (after offsets) where the next files start.
    resume: u64,
    /// The offset inputs adopt when they cross this break, if it changed.
    offset: Option<i64>,
}

#[derive(Debug, Default, Clone)]
struct Input {
    /// Running time and end of the last buffer, after the offset.
    last: Option<(u64, u64)>,
    offset: i64,
    /// The last break this input has crossed.
    epoch: u64,
    /// A break announced by an event, applied at the next buffer.
    pending: Option<CloseReason>,
}

/// A break seen by this buffer, which starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewBreak {
    /// Where the next files start (after offsets).
    pub resume: u64,
    /// Where data stopped: the end of the latest buffer on any input.
    pub gap_start: u64,
    pub reason: CloseReason,
}

/// What a buffer's running time tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The running time the data path uses (after offsets).
    pub time: u64,
    pub new_break: Option<NewBreak>,
    /// The buffer crossed a break another input reported (at this resume).
    pub crossed: Option<u64>,
}

fn apply(rt: u64, offset: i64) -> u64 {
    (i128::from(rt) + i128::from(offset)).clamp(0, i128::from(u64::MAX)) as u64
}

#[derive(Debug, Clone)]
pub struct Tracker {
    gap: u64,
    inputs: Vec<Input>,
    epoch: u64,
    /// The latest breaks, oldest first: an input that lags behind the
    /// others may cross several of them after they were reported.
    history: VecDeque<Break>,
    /// The furthest end of any buffer seen, on any input, restarts
    /// included: a break resumes after it.
    furthest: Option<u64>,
}

/// How many breaks an input may lag behind and still adopt them.
const HISTORY: usize = 32;

impl Tracker {
    /// `gap` is `interruption-gap` in ns.
    pub fn new(inputs: usize, gap: u64) -> Self {
        Tracker {
            gap,
            inputs: vec![Input::default(); inputs],
            epoch: 0,
            history: VecDeque::new(),
            furthest: None,
        }
    }

    /// A signed running time of `input` (a DTS before the segment start)
    /// with its offset applied.
    pub fn adjust_signed(&self, input: usize, rt: i64) -> i64 {
        self.inputs
            .get(input)
            .map_or(rt, |i| rt.saturating_add(i.offset))
    }

    /// Whether `input` has had data since it started.
    pub fn has_data(&self, input: usize) -> bool {
        self.inputs.get(input).is_some_and(|i| i.last.is_some())
    }

    /// The furthest end of any buffer seen so far, on any input (not only
    /// the latest buffers: a small step back, or an input that restarted,
    /// must not let a break resume before data already written).
    pub fn max_end(&self) -> Option<u64> {
        self.furthest
    }

    /// A break announced by an event: it applies at the input's next buffer.
    pub fn announce(&mut self, input: usize, reason: CloseReason) {
        if let Some(i) = self.inputs.get_mut(input) {
            i.pending = Some(reason);
        }
    }

    /// The input restarts after EOS: its next buffer is not compared with
    /// its last one.
    pub fn restart(&mut self, input: usize) {
        if let Some(i) = self.inputs.get_mut(input) {
            i.last = None;
        }
    }

    /// Every input ended (every file is closed): time starts afresh, as at
    /// the very start, for whichever input comes back first. (Otherwise the
    /// first input back would be moved after the old data and the second,
    /// crossing that break, would not.)
    pub fn all_ended(&mut self) {
        self.furthest = None;
    }

    /// A break found by the idle timeout: the next files start after the
    /// latest data. Returns where.
    pub fn idle_break(&mut self) -> u64 {
        let resume = self.max_end().unwrap_or(0);
        self.epoch += 1;
        self.history.push_back(Break {
            epoch: self.epoch,
            resume,
            offset: None,
        });
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        resume
    }

    /// Tracks a buffer of `input` at running time `raw` lasting `dur`.
    #[cfg(test)]
    pub fn observe(&mut self, input: usize, raw: u64, dur: u64) -> Seen {
        self.observe_decoding(input, raw, dur, 0)
    }

    /// [`observe`](Self::observe) for a frame decoded `decode_lead` ns
    /// before it is shown (DTS before PTS): after a restart, time continues
    /// so that its decode time, not only its presentation time, comes after
    /// everything already seen.
    pub fn observe_decoding(&mut self, input: usize, raw: u64, dur: u64, decode_lead: u64) -> Seen {
        let gap = self.gap;
        let max_end = self.max_end();
        let Some(inp) = self.inputs.get_mut(input) else {
            return Seen {
                time: raw,
                new_break: None,
                crossed: None,
            };
        };
        let mut time = apply(raw, inp.offset);
        let mut reason = inp.pending.take();
        if reason.is_none() {
            if let Some((last, last_end)) = inp.last {
                let forward = time > last_end.saturating_add(gap);
                let backward = time.saturating_add(gap) < last;
                if forward || backward {
                    reason = Some(CloseReason::Interrupted);
                }
            }
        }
        let mut seen = Seen {
            time,
            new_break: None,
            crossed: None,
        };
        if reason.is_none() {
            // Continuous data that passes where another input resumed after
            // a break (new caps on the other input) has crossed it.
            let from = inp.epoch;
            for b in self.history.iter().filter(|b| b.epoch > from) {
                if b.offset.is_some() || time < b.resume {
                    break;
                }
                inp.epoch = b.epoch;
            }
        }
        if let Some(reason) = reason {
            let last_end = inp.last.map(|(_, e)| e);
            // Another input may have reported this break already: crossing
            // it is the same interruption. An input that lags behind may
            // cross several: the newest one it has not crossed and that
            // fits its data is the one.
            let same = self.history.iter().rev().copied().find(|b| {
                b.epoch > inp.epoch
                    && last_end.is_none_or(|e| e <= b.resume.saturating_add(gap))
                    && apply(raw, b.offset.unwrap_or(inp.offset)).saturating_add(gap) >= b.resume
            });
            if let Some(b) = same {
                inp.epoch = b.epoch;
                if let Some(o) = b.offset {
                    inp.offset = o;
                }
                seen.crossed = Some(b.resume);
            } else {
                // Data from a restarted source continues after everything
                // already seen.
                let (offset, resume) = match max_end {
                    Some(m) if time < m => {
                        let o = (i128::from(m) + i128::from(decode_lead) - i128::from(raw))
                            .clamp(i128::from(i64::MIN), i128::from(i64::MAX))
                            as i64;
                        (Some(o), m)
                    }
                    _ => (None, time),
                };
                self.epoch += 1;
                self.history.push_back(Break {
                    epoch: self.epoch,
                    resume,
                    offset,
                });
                if self.history.len() > HISTORY {
                    self.history.pop_front();
                }
                inp.epoch = self.epoch;
                if let Some(o) = offset {
                    inp.offset = o;
                }
                seen.new_break = Some(NewBreak {
                    resume,
                    gap_start: max_end.unwrap_or(resume),
                    reason,
                });
            }
            time = apply(raw, inp.offset);
            seen.time = time;
        }
        let end = time.saturating_add(dur);
        inp.last = Some((time, end));
        self.furthest = Some(self.furthest.map_or(end, |f| f.max(end)));
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const F: u64 = S / 30;
    const V: usize = 0;
    const A: usize = 1;

    fn tracker() -> Tracker {
        Tracker::new(2, 2 * S)
    }

    /// Found by `policy_fuzz`: a step back within the gap, then a restart,
    /// must resume after the furthest data, not after the latest buffer.
    #[test]
    fn a_break_resumes_after_the_furthest_data() {
        let mut t = tracker();
        t.observe(V, 10 * S, F);
        t.observe(V, 10 * S + F, F);
        // Back by 1 s (< gap): not a break (the element drops it).
        assert!(t.observe(V, 9 * S, F).new_break.is_none());
        let b = t.observe(V, 0, F).new_break.expect("a restart is a break");
        assert_eq!(b.resume, 10 * S + 2 * F);
    }

    /// Both inputs ended and restart from 0 (a publisher reconnect): time
    /// starts afresh, the same for both, whichever comes back first.
    #[test]
    fn after_every_input_ended_time_starts_afresh() {
        let mut t = tracker();
        for n in 0..30 {
            t.observe(V, n * F, F);
            t.observe(A, n * F, F);
        }
        t.all_ended();
        t.restart(V);
        t.restart(A);
        assert_eq!(t.max_end(), None);
        assert_eq!(t.observe(A, 0, F).time, 0);
        assert_eq!(t.observe(V, 0, F).time, 0);
    }

    #[test]
    fn continuous_data_is_no_break() {
        let mut t = tracker();
        for n in 0..100 {
            let s = t.observe(V, n * F, F);
            assert_eq!(s.time, n * F);
            assert_eq!(s.new_break, None);
        }
        // A jump up to the gap is not a break either.
        assert_eq!(t.observe(V, 100 * F + 2 * S, F).new_break, None);
    }

    #[test]
    fn forward_gap_is_one_break_for_both_inputs() {
        let mut t = tracker();
        t.observe(V, 10 * S - F, F);
        t.observe(A, 10 * S - F, F);
        let s = t.observe(V, 20 * S, F);
        assert_eq!(
            s.new_break,
            Some(NewBreak {
                resume: 20 * S,
                gap_start: 10 * S,
                reason: CloseReason::Interrupted
            })
        );
        // Audio crosses the same break: no second one.
        let s = t.observe(A, 20 * S + 1, F);
        assert_eq!(s.new_break, None);
        assert_eq!(s.crossed, Some(20 * S));
        assert_eq!(s.time, 20 * S + 1);
    }

    #[test]
    fn backward_jump_keeps_time_moving_forward() {
        let mut t = tracker();
        t.observe(V, 40 * S - F, F);
        t.observe(A, 40 * S - F, F);
        // The source restarts at 10 s: the recording continues at 40 s.
        let s = t.observe(V, 10 * S, F);
        let b = s.new_break.expect("a break");
        assert_eq!(b.resume, 40 * S);
        assert_eq!(s.time, 40 * S);
        assert_eq!(t.adjust_signed(V, 11 * S as i64), 41 * S as i64);
        // Audio crosses it and takes the same offset.
        let s = t.observe(A, 10 * S, F);
        assert_eq!(s.new_break, None);
        assert_eq!(s.time, 40 * S);
    }

    #[test]
    fn announced_breaks_apply_at_the_next_buffer_once() {
        let mut t = tracker();
        t.observe(V, 5 * S - F, F);
        t.observe(A, 5 * S - F, F);
        t.announce(V, CloseReason::CapsChanged);
        t.announce(A, CloseReason::Interrupted);
        let s = t.observe(V, 5 * S, F);
        assert_eq!(
            s.new_break.map(|b| b.reason),
            Some(CloseReason::CapsChanged)
        );
        assert_eq!(s.time, 5 * S);
        // Video runs on before audio's announced break arrives: same break.
        for n in 1..150 {
            assert_eq!(t.observe(V, 5 * S + n * F, F).new_break, None);
        }
        let s = t.observe(A, 5 * S, F);
        assert_eq!(s.new_break, None);
        assert_eq!(s.crossed, Some(5 * S));
        assert_eq!(s.time, 5 * S);
    }

    #[test]
    fn idle_break_then_resume_is_the_same_interruption() {
        let mut t = tracker();
        t.observe(V, 3 * S - F, F);
        assert_eq!(t.idle_break(), 3 * S);
        // Live timestamps continue after the idle time: crossing the idle
        // break is not a new interruption.
        let s = t.observe(V, 8 * S, F);
        assert_eq!(s.new_break, None);
        assert_eq!(s.crossed, Some(3 * S));
    }

    #[test]
    fn an_input_lagging_across_two_breaks_crosses_each() {
        let mut t = tracker();
        // Video: 0–4 s, a gap, 7–11 s, new caps, 11–13 s; audio lags and
        // sends 0–4 s and 7–11 s only after video reported both breaks.
        for n in 0..120 {
            t.observe(V, n * F, F);
        }
        let a = t.observe(V, 7 * S, F).new_break.expect("the gap");
        assert_eq!(a.resume, 7 * S);
        for n in 1..120 {
            t.observe(V, 7 * S + n * F, F);
        }
        t.announce(V, CloseReason::CapsChanged);
        let b = t.observe(V, 11 * S, F).new_break.expect("the caps change");
        assert_eq!(b.resume, 11 * S);
        for n in 0..200 {
            assert_eq!(t.observe(A, n * S / 50, S / 50).new_break, None);
        }
        let s = t.observe(A, 7 * S, F);
        assert_eq!(s.new_break, None, "audio crosses the gap video reported");
        assert_eq!(s.crossed, Some(7 * S));
        assert_eq!(s.time, 7 * S);
        // Audio continues across the caps change: no jump, no break.
        for n in 1..200 {
            let s = t.observe(A, 7 * S + n * S / 50, S / 50);
            assert_eq!(s.new_break, None);
            assert_eq!(s.time, 7 * S + n * S / 50);
        }
        // A later gap reported by video is crossed by audio too.
        let c = t.observe(V, 20 * S, F).new_break.expect("a later gap");
        let s = t.observe(A, 20 * S + F, F);
        assert_eq!(s.new_break, None);
        assert_eq!(s.crossed, Some(c.resume));
    }

    #[test]
    fn restart_keeps_decode_time_moving_forward() {
        let mut t = tracker();
        t.observe(V, 40 * S - F, F);
        // Restarts at 10 s with its DTS two frames before its PTS.
        let s = t.observe_decoding(V, 10 * S, F, 2 * F);
        assert_eq!(s.new_break.map(|b| b.resume), Some(40 * S));
        // PTS lands two frames after the end of what was seen, DTS on it.
        assert_eq!(s.time, 40 * S + 2 * F);
    }

    #[test]
    fn history_is_bounded() {
        let mut t = tracker();
        for n in 0..(HISTORY as u64 + 10) {
            t.observe(V, n * 10 * S, F);
        }
        assert_eq!(t.history.len(), HISTORY);
    }

    #[test]
    fn restart_forgets_the_last_buffer() {
        let mut t = tracker();
        t.observe(V, 50 * S, F);
        assert!(t.has_data(V));
        t.restart(V);
        assert!(!t.has_data(V));
        assert_eq!(t.observe(V, 0, F).new_break, None);
    }
}
