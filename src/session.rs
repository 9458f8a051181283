// SPDX-License-Identifier: MIT OR Apache-2.0
//! Sessions and their wall-clock anchor (SPEC §6, §8).
//!
//! A session is one continuous run of publishing. Its first file fixes the
//! *anchor*: a running time and the wall-clock time it stands for. Every
//! wall-clock time of the session is the anchor plus media time, so that
//! `end-time - start-time` equals `duration`. Wall-clock times never go back
//! across sessions, even when media is pushed faster than real time.

use chrono::{DateTime, Utc};

/// A running time (ns) and the wall-clock time it stands for.
pub type Anchor = (u64, DateTime<Utc>);

/// The wall-clock time of running time `rt` on `anchor`.
pub fn wall_at(anchor: Anchor, rt: u64) -> DateTime<Utc> {
    let delta = rt as i128 - anchor.0 as i128;
    let delta = delta.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    anchor.1 + chrono::Duration::nanoseconds(delta)
}

/// Session numbering and the current session's anchor.
#[derive(Debug, Clone)]
pub struct Sessions {
    /// The current (or next) session's number.
    pub number: u64,
    anchor: Option<Anchor>,
    /// The previous session's anchor: wall-clock times never go back.
    prev: Option<Anchor>,
}

impl Sessions {
    /// Numbering continues at `next` (from the index).
    pub fn new(next: u64) -> Self {
        Sessions {
            number: next,
            anchor: None,
            prev: None,
        }
    }

    /// Whether the current session has recorded anything.
    pub fn started(&self) -> bool {
        self.anchor.is_some()
    }

    /// The session's anchor, set by its first file at running time `rt`: the
    /// wall clock `now`, or later if the previous session's media time says
    /// so, so that wall-clock times never go back.
    pub fn anchor_at(&mut self, rt: u64, now: DateTime<Utc>) -> Anchor {
        let prev = self.prev;
        *self.anchor.get_or_insert_with(|| {
            let floor = prev.map(|p| wall_at(p, rt)).filter(|w| *w > now);
            (rt, floor.unwrap_or(now))
        })
    }

    /// Ends the current session: the next file starts session `number + 1`.
    pub fn next(&mut self) {
        self.number += 1;
        if let Some(a) = self.anchor.take() {
            self.prev = Some(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn wall_clock_follows_media_time() {
        let a = (5_000_000_000, t(0));
        assert_eq!(wall_at(a, 7_000_000_000), t(2));
        assert_eq!(wall_at(a, 3_000_000_000), t(-2));
    }

    #[test]
    fn anchor_is_fixed_by_the_first_file() {
        let mut s = Sessions::new(3);
        assert!(!s.started());
        assert_eq!(s.anchor_at(10, t(0)), (10, t(0)));
        assert_eq!(s.anchor_at(99, t(50)), (10, t(0)));
        assert!(s.started());
        s.next();
        assert_eq!(s.number, 4);
        assert!(!s.started());
    }

    #[test]
    fn wall_clock_never_goes_back_across_sessions() {
        let mut s = Sessions::new(1);
        s.anchor_at(0, t(0));
        s.next();
        // Media pushed faster than real time: 100 s of media in 1 s.
        let (rt, wall) = s.anchor_at(100_000_000_000, t(1));
        assert_eq!(rt, 100_000_000_000);
        assert_eq!(wall, t(100));
        s.next();
        // Real time ahead of media: the wall clock wins.
        assert_eq!(s.anchor_at(101_000_000_000, t(500)).1, t(500));
    }
}
