// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where files are cut and which file each frame goes to, for one recording
//! channel. Plain Rust with no GStreamer types, so it can be unit-tested.
//!
//! One stream *leads*: video when the channel records video, otherwise audio.
//! Only the lead cuts files, and only on keyframes (every audio frame is a
//! keyframe). The other stream *follows*: a follower frame goes to the file
//! whose time span `[start, end)` contains its running time. A file's span is
//! closed when the lead cuts; its follower part is complete once a follower
//! frame at or after `end` arrives, or the follower ends.
//!
//! All times are running times in nanoseconds.

use std::collections::VecDeque;

/// Identifies one file of one channel while it is open.
pub type Key = u64;

/// Why a file was closed (SPEC §8 `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Interval,
    Interrupted,
    Eos,
    CapsChanged,
    SplitRequested,
    Stopped,
    HlsTimeout,
    /// For crash recovery of leftover `.part` files (SPEC §9), not yet built.
    #[allow(dead_code)]
    Recovered,
    Error,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Interval => "interval",
            CloseReason::Interrupted => "interrupted",
            CloseReason::Eos => "eos",
            CloseReason::CapsChanged => "caps-changed",
            CloseReason::SplitRequested => "split-requested",
            CloseReason::Stopped => "stopped",
            CloseReason::HlsTimeout => "hls-timeout",
            CloseReason::Recovered => "recovered",
            CloseReason::Error => "error",
        }
    }
}

/// What to do with a lead frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadAction {
    /// A delta frame with no file to go to: drop it.
    Drop,
    /// Append to the current file.
    Write(Key),
    /// Open a new file starting with this keyframe (no file was open).
    Open(Key),
    /// Close `close` (its lead part ends here) and open `open` with this keyframe.
    Rotate {
        close: Key,
        reason: CloseReason,
        open: Key,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeadDecision {
    pub action: LeadAction,
    /// Ask upstream for a keyframe (sent once per wait).
    pub request_keyframe: bool,
    /// A file whose lead part ended at a break before this frame.
    pub finished_lead: Option<Key>,
}

/// Where a follower frame goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowerRoute {
    /// The file that takes the frame, if any.
    pub target: Option<Key>,
    /// Files whose follower part is now complete (oldest first).
    pub finished: Vec<Key>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    key: Key,
    start: u64,
    end: Option<u64>,
}

/// The rotation state of one channel.
#[derive(Debug)]
pub struct Timeline {
    interval: Option<u64>,
    /// The file taking lead frames. `end` is set when a break was detected
    /// elsewhere: lead frames before it still belong to the file.
    lead: Option<Span>,
    /// Files still taking follower frames, oldest first. Only the last one
    /// may be open-ended.
    spans: VecDeque<Span>,
    next_key: Key,
    split_pending: bool,
    /// A split cuts no earlier than this: follower frames up to here were
    /// already written to the current file.
    split_after: u64,
    /// End of the latest follower frame routed to an open-ended file.
    follower_pos: u64,
    keyframe_requested: bool,
    /// Half a lead frame: a keyframe this close before the interval is a
    /// cut (timestamps jitter around round thresholds).
    tolerance: u64,
}

impl Timeline {
    /// `interval` is the maximum file duration in ns; `None` never cuts on time.
    pub fn new(interval: Option<u64>) -> Self {
        Timeline {
            interval,
            lead: None,
            spans: VecDeque::new(),
            next_key: 1,
            split_pending: false,
            split_after: 0,
            follower_pos: 0,
            keyframe_requested: false,
            tolerance: 0,
        }
    }

    /// The file taking lead frames with no break pending, if any.
    pub fn current(&self) -> Option<Key> {
        self.lead.filter(|s| s.end.is_none()).map(|s| s.key)
    }

    /// The file taking lead frames, even with a break pending.
    pub fn lead_key(&self) -> Option<Key> {
        self.lead.map(|s| s.key)
    }

    /// Close the current file at the next keyframe (`split-now`).
    /// Returns true when a keyframe should be requested upstream.
    pub fn request_split(&mut self) -> bool {
        if self.current().is_none() {
            return false;
        }
        self.split_pending = true;
        // Follower frames already written stay in this file: the cut comes
        // after them, so that the next file's audio starts with its video.
        self.split_after = self.follower_pos;
        !std::mem::replace(&mut self.keyframe_requested, true)
    }

    fn allocate(&mut self, start: u64) -> Key {
        let key = self.next_key;
        self.next_key += 1;
        let span = Span {
            key,
            start,
            end: None,
        };
        self.spans.push_back(span);
        self.lead = Some(span);
        self.keyframe_requested = false;
        self.split_pending = false;
        key
    }

    fn set_span_end(&mut self, key: Key, end: u64) {
        if let Some(s) = self.spans.iter_mut().find(|s| s.key == key) {
            s.end = Some(s.end.map_or(end, |e| e.min(end)));
        }
    }

    /// A break (interruption) at running time `resume`: the current file
    /// takes the frames before it, on every stream, and none after it. The
    /// next lead keyframe at or after `resume` opens a new file.
    pub fn interrupt_at(&mut self, resume: u64) -> Option<Key> {
        self.split_pending = false;
        self.keyframe_requested = false;
        let lead = self.lead.as_mut()?;
        lead.end = Some(lead.end.map_or(resume, |e| e.min(resume)));
        let key = lead.key;
        self.set_span_end(key, resume);
        Some(key)
    }

    /// The lead's frame duration: cuts are made up to half a frame before
    /// the interval.
    pub fn set_frame_duration(&mut self, ns: u64) {
        self.tolerance = ns / 2;
    }

    /// Decide what happens to a lead frame at running time `ts`.
    pub fn on_lead(&mut self, ts: u64, keyframe: bool) -> LeadDecision {
        let mut finished_lead = None;
        if let Some(Span {
            key,
            end: Some(end),
            ..
        }) = self.lead
        {
            if ts < end {
                return LeadDecision {
                    action: LeadAction::Write(key),
                    request_keyframe: false,
                    finished_lead: None,
                };
            }
            finished_lead = Some(key);
            self.lead = None;
        }

        let Some(cur) = self.lead else {
            if keyframe {
                let key = self.allocate(ts);
                return LeadDecision {
                    action: LeadAction::Open(key),
                    request_keyframe: false,
                    finished_lead,
                };
            }
            let request_keyframe = !std::mem::replace(&mut self.keyframe_requested, true);
            return LeadDecision {
                action: LeadAction::Drop,
                request_keyframe,
                finished_lead,
            };
        };

        let due = self
            .interval
            .is_some_and(|iv| ts.saturating_sub(cur.start) + self.tolerance >= iv);
        let reason = if self.split_pending && ts >= self.split_after {
            Some(CloseReason::SplitRequested)
        } else if due {
            Some(CloseReason::Interval)
        } else {
            None
        };
        match reason {
            // A keyframe at the very start of the file never cuts it again.
            Some(reason) if keyframe && ts > cur.start => {
                self.set_span_end(cur.key, ts);
                let open = self.allocate(ts);
                LeadDecision {
                    action: LeadAction::Rotate {
                        close: cur.key,
                        reason,
                        open,
                    },
                    request_keyframe: false,
                    finished_lead,
                }
            }
            Some(_) => {
                let request_keyframe = !std::mem::replace(&mut self.keyframe_requested, true);
                LeadDecision {
                    action: LeadAction::Write(cur.key),
                    request_keyframe,
                    finished_lead,
                }
            }
            None => LeadDecision {
                action: LeadAction::Write(cur.key),
                request_keyframe: false,
                finished_lead,
            },
        }
    }

    /// Route a follower frame at `ts`. Frames before the first file, or in a
    /// break, are not taken (`target` is `None`).
    pub fn route_follower(&mut self, ts: u64) -> FollowerRoute {
        let mut route = FollowerRoute::default();
        while let Some(front) = self.spans.front().copied() {
            match front.end {
                Some(end) if ts >= end => {
                    route.finished.push(front.key);
                    self.spans.pop_front();
                }
                _ => break,
            }
        }
        let front = self.spans.front().filter(|s| ts >= s.start).copied();
        route.target = front.map(|s| s.key);
        if front.is_some_and(|s| s.end.is_none()) {
            self.follower_pos = self.follower_pos.max(ts);
        }
        route
    }

    /// The follower ended: every file with a closed span is complete on the
    /// follower side. The open file keeps taking lead frames.
    pub fn follower_ended(&mut self) -> Vec<Key> {
        let mut done = Vec::new();
        while let Some(front) = self.spans.front().copied() {
            if front.end.is_some() {
                done.push(front.key);
                self.spans.pop_front();
            } else {
                break;
            }
        }
        done
    }

    /// End everything now (EOS, stop, idle): every file still open is
    /// returned, oldest first, and the next lead keyframe opens a new file.
    pub fn close_all(&mut self) -> Vec<Key> {
        self.split_pending = false;
        self.keyframe_requested = false;
        let mut keys: Vec<Key> = self.spans.drain(..).map(|s| s.key).collect();
        if let Some(l) = self.lead.take() {
            if !keys.contains(&l.key) {
                keys.push(l.key);
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_half_a_frame_early_cuts() {
        let s = 1_000_000_000u64;
        let mut t = Timeline::new(Some(5 * s));
        t.set_frame_duration(s / 30);
        assert!(matches!(t.on_lead(0, true).action, LeadAction::Open(_)));
        // tsdemux jitter: a keyframe at 4.984 s on a 5 s interval.
        assert!(matches!(
            t.on_lead(4_984_000_000, true).action,
            LeadAction::Rotate {
                reason: CloseReason::Interval,
                ..
            }
        ));
        // More than half a frame early is not due.
        let mut t = Timeline::new(Some(5 * s));
        t.set_frame_duration(s / 30);
        t.on_lead(0, true);
        assert!(matches!(
            t.on_lead(4_900_000_000, true).action,
            LeadAction::Write(_)
        ));
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn no_file_before_first_keyframe() {
        let mut t = Timeline::new(Some(20 * S));
        let d = t.on_lead(0, false);
        assert_eq!(d.action, LeadAction::Drop);
        assert!(d.request_keyframe);
        // Only one keyframe request per wait.
        assert!(!t.on_lead(S / 30, false).request_keyframe);
        assert_eq!(t.on_lead(S, true).action, LeadAction::Open(1));
        assert_eq!(t.current(), Some(1));
    }

    #[test]
    fn cut_at_first_keyframe_at_or_after_interval() {
        let mut t = Timeline::new(Some(20 * S));
        assert_eq!(t.on_lead(0, true).action, LeadAction::Open(1));
        assert_eq!(t.on_lead(19 * S, true).action, LeadAction::Write(1));
        // Interval reached on a delta frame: keep writing, ask for a keyframe once.
        let d = t.on_lead(20 * S, false);
        assert_eq!(d.action, LeadAction::Write(1));
        assert!(d.request_keyframe);
        assert!(!t.on_lead(20 * S + 1, false).request_keyframe);
        let d = t.on_lead(21 * S, true);
        assert_eq!(
            d.action,
            LeadAction::Rotate {
                close: 1,
                reason: CloseReason::Interval,
                open: 2
            }
        );
        assert_eq!(t.current(), Some(2));
        // Exactly at the interval cuts too.
        assert!(matches!(
            t.on_lead(41 * S, true).action,
            LeadAction::Rotate {
                close: 2,
                open: 3,
                ..
            }
        ));
    }

    #[test]
    fn no_interval_means_no_cut() {
        let mut t = Timeline::new(None);
        t.on_lead(0, true);
        assert_eq!(t.on_lead(10_000 * S, true).action, LeadAction::Write(1));
    }

    #[test]
    fn split_cuts_at_next_keyframe() {
        let mut t = Timeline::new(Some(7200 * S));
        assert!(!t.request_split(), "nothing to split before a file");
        t.on_lead(0, true);
        assert!(t.request_split());
        assert_eq!(t.on_lead(S / 2, false).action, LeadAction::Write(1));
        assert_eq!(
            t.on_lead(S, true).action,
            LeadAction::Rotate {
                close: 1,
                reason: CloseReason::SplitRequested,
                open: 2
            }
        );
        assert_eq!(t.on_lead(2 * S, true).action, LeadAction::Write(2));
    }

    #[test]
    fn followers_route_by_running_time() {
        let mut t = Timeline::new(Some(10 * S));
        // Audio before the first file is dropped.
        assert_eq!(t.route_follower(0).target, None);
        t.on_lead(S, true);
        assert_eq!(t.route_follower(S / 2).target, None);
        assert_eq!(t.route_follower(S).target, Some(1));
        t.on_lead(11 * S, true); // rotate: 1 = [1, 11), 2 = [11, ..)
                                 // Late audio still goes to the old file.
        let r = t.route_follower(10 * S);
        assert_eq!(r.target, Some(1));
        assert!(r.finished.is_empty());
        let r = t.route_follower(11 * S);
        assert_eq!(r.target, Some(2));
        assert_eq!(r.finished, vec![1]);
    }

    #[test]
    fn several_closed_spans_finish_in_order() {
        let mut t = Timeline::new(Some(S));
        t.on_lead(0, true);
        t.on_lead(S, true);
        t.on_lead(2 * S, true);
        let r = t.route_follower(2 * S + 1);
        assert_eq!(r.finished, vec![1, 2]);
        assert_eq!(r.target, Some(3));
    }

    #[test]
    fn follower_end_and_close_all() {
        let mut t = Timeline::new(Some(S));
        t.on_lead(0, true);
        t.on_lead(S, true);
        assert_eq!(t.follower_ended(), vec![1]);
        assert_eq!(t.current(), Some(2));
        assert_eq!(t.close_all(), vec![2]);
        assert_eq!(t.current(), None);
        let d = t.on_lead(3 * S, false);
        assert_eq!(d.action, LeadAction::Drop);
        assert!(d.request_keyframe);
        assert_eq!(t.on_lead(4 * S, true).action, LeadAction::Open(3));
    }

    #[test]
    fn reasons_are_kebab_case() {
        assert_eq!(CloseReason::CapsChanged.as_str(), "caps-changed");
        assert_eq!(CloseReason::SplitRequested.as_str(), "split-requested");
        assert_eq!(CloseReason::HlsTimeout.as_str(), "hls-timeout");
    }

    #[test]
    fn break_detected_on_the_lead() {
        let mut t = Timeline::new(Some(7200 * S));
        t.on_lead(0, true);
        // Video jumps from 10 s to 20 s: break at 20 s.
        assert_eq!(t.interrupt_at(20 * S), Some(1));
        let d = t.on_lead(20 * S, true);
        assert_eq!(d.finished_lead, Some(1));
        assert_eq!(d.action, LeadAction::Open(2));
        // Audio from before the gap still goes to file 1.
        assert_eq!(t.route_follower(9 * S).target, Some(1));
        let r = t.route_follower(20 * S);
        assert_eq!(r.finished, vec![1]);
        assert_eq!(r.target, Some(2));
    }

    #[test]
    fn break_detected_on_the_follower() {
        let mut t = Timeline::new(Some(7200 * S));
        t.on_lead(0, true);
        // Audio jumps first: video before the break still goes to file 1.
        assert_eq!(t.interrupt_at(20 * S), Some(1));
        let r = t.route_follower(20 * S);
        assert_eq!(r.finished, vec![1]);
        assert_eq!(r.target, None);
        let d = t.on_lead(10 * S - 1, false);
        assert_eq!(d.action, LeadAction::Write(1));
        assert_eq!(d.finished_lead, None);
        // A delta frame after the break is dropped; a keyframe opens file 2.
        let d = t.on_lead(20 * S, false);
        assert_eq!(d.action, LeadAction::Drop);
        assert_eq!(d.finished_lead, Some(1));
        assert_eq!(t.on_lead(20 * S + 1, true).action, LeadAction::Open(2));
        assert_eq!(t.route_follower(20 * S + 2).target, Some(2));
    }

    #[test]
    fn break_without_file_is_nothing() {
        let mut t = Timeline::new(None);
        assert_eq!(t.interrupt_at(S), None);
        assert_eq!(t.on_lead(2 * S, true).action, LeadAction::Open(1));
    }

    #[test]
    fn split_comes_after_follower_frames_already_written() {
        let mut t = Timeline::new(None);
        t.on_lead(0, true);
        // Audio ran ahead to 3.5 s before the split request.
        assert_eq!(t.route_follower(3_500_000_000).target, Some(1));
        t.request_split();
        // The keyframe at 3.2 s would cut behind audio already written.
        assert_eq!(t.on_lead(3_200_000_000, true).action, LeadAction::Write(1));
        assert!(matches!(
            t.on_lead(4_200_000_000, true).action,
            LeadAction::Rotate {
                reason: CloseReason::SplitRequested,
                ..
            }
        ));
    }
}
