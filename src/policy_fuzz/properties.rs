// SPDX-License-Identifier: MIT OR Apache-2.0
//! The properties checked on every random timeline.

use proptest::prelude::*;

use super::timelines::*;
use super::*;

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(4000))]

    /// Neither the policy ([`Tracker`], [`Timeline`]) nor the model panics
    /// on any timeline (overflow checks are on in tests), and every buffer
    /// gets exactly one outcome.
    #[test]
    fn no_panic(sc in scenario(any_interval())) {
        let evs = events(&sc);
        let buffers = evs.iter().filter(|e| matches!(e, Ev::Frame(..))).count();
        let mut sim = Sim::new(sc.setup);
        sim.run(evs);
        prop_assert_eq!(sim.log.len(), buffers);
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Every accepted frame (one that passed the checks before the policy)
    /// lands in exactly one file, or is one the policy may drop:
    /// - a lead frame is dropped only when it is a delta frame with no file
    ///   to go to ([`Timeline::on_lead`] returns `LeadAction::Drop`): a lead
    ///   keyframe always lands;
    /// - a follower frame is dropped only when no file that still takes the
    ///   follower has a span `[start, end)` holding it
    ///   ([`Timeline::route_follower`]: before the first file, or in a break).
    ///
    /// The per-file counts add up to the frames written.
    #[test]
    fn every_accepted_frame_lands_in_exactly_one_file(sc in scenario(any_interval())) {
        let sim = simulate(&sc);
        prop_assume!(sim.restart_absorbed.is_none());
        let mut counted: BTreeMap<Key, [u64; 2]> = BTreeMap::new();
        for (i, l) in sim.log.iter().enumerate() {
            match l.outcome {
                Outcome::NotAccepted(_) => {}
                Outcome::Written(k) => counted.entry(k).or_default()[l.st.idx()] += 1,
                Outcome::Lost(k) => prop_assert!(
                    false,
                    "frame {i} ({:?} at {}) routed to file {k}, which no longer takes it", l.st, l.ts
                ),
                Outcome::PolicyDrop if l.st == sim.lead => prop_assert!(
                    !l.key, "lead keyframe {i} at {} dropped", l.ts
                ),
                Outcome::PolicyDrop => prop_assert!(
                    l.holder.is_none(),
                    "{:?} frame {i} at {} dropped while file {:?} held it", l.st, l.ts, l.holder
                ),
            }
        }
        for (k, f) in &sim.files {
            prop_assert_eq!(counted.get(k).copied().unwrap_or_default(), f.frames, "file {}", k);
        }
        let written: u64 = sim.files.values().map(|f| f.frames[0] + f.frames[1]).sum();
        let logged = sim.log.iter().filter(|l| matches!(l.outcome, Outcome::Written(_))).count();
        prop_assert_eq!(written, logged as u64);
    }

    /// Every file's first video frame is a keyframe ([`Timeline::on_lead`]
    /// opens files only with `LeadAction::Open` / `Rotate`, on a keyframe).
    #[test]
    fn every_file_starts_with_a_keyframe(sc in scenario(any_interval())) {
        let sim = simulate(&sc);
        prop_assume!(sim.restart_absorbed.is_none());
        for (k, f) in &sim.files {
            prop_assert_ne!(f.first_video_key, Some(false), "file {} starts with a delta frame", k);
            if f.has[0] {
                prop_assert!(f.frames[0] > 0, "file {} opened by a video keyframe has no video", k);
            }
        }
    }

    /// Files are never reopened: a key is opened once, and once a stream's
    /// part of a file ended (`OpenFile::finish`: after a cut, a break, EOS,
    /// `close_all`), the policy never routes that stream to it again.
    #[test]
    fn no_file_is_reopened(sc in scenario(any_interval())) {
        let sim = simulate(&sc);
        prop_assume!(sim.restart_absorbed.is_none());
        prop_assert!(sim.reopened.is_empty(), "keys opened twice: {:?}", sim.reopened);
        for l in &sim.log {
            if let Outcome::Lost(k) = l.outcome {
                prop_assert!(false, "{:?} frame at {} routed to file {k} after its part ended", l.st, l.ts);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// With a record interval, no file is longer than the interval plus one
    /// GOP. [`Timeline::on_lead`] cuts at the first keyframe at or after
    /// `start + interval` (less half a frame): every keyframe written into a
    /// file after its first is less than the interval from its start, so
    /// every lead frame ends less than `interval + gop` after the start,
    /// where `gop` is the longest time in that file from a keyframe to the
    /// end of a lead frame after it.
    ///
    /// Lead frames written while a break is pending (after
    /// [`Timeline::interrupt_at`], before the lead reached the break) are not
    /// cut on the interval: the doc of `Timeline::lead` says they still
    /// belong to the file. For those the contract is that they lie before the
    /// break (`ts < end`).
    #[test]
    fn files_are_at_most_interval_plus_one_gop(sc in scenario((1000u64..=10_000).prop_map(Some))) {
        let sim = simulate(&sc);
        prop_assume!(sim.restart_absorbed.is_none());
        let interval = sc.setup.interval.unwrap_or(u64::MAX);
        for (k, f) in &sim.files {
            prop_assert!(
                f.lead_extent - f.start <= interval + f.gop,
                "file {} from {} runs to {}: longer than {} + gop {}",
                k, f.start, f.lead_extent, interval, f.gop
            );
            for (ts, end) in &f.under_break {
                prop_assert!(ts < end, "file {} took lead frame {} after its break at {}", k, ts, end);
            }
        }
    }

    /// Audio routed to a file lies within that file's span `[start, end)`
    /// (the module doc of `rotation.rs`, [`Timeline::route_follower`]):
    /// - as the span stood when the frame was routed, always;
    /// - before the lead's later cut (`on_lead` returning
    ///   `LeadAction::Rotate`), when `follower_must_wait` let the frame
    ///   through (not after giving up waiting, `lead_stalled`), unless the
    ///   cutting keyframe started before the end of the video already seen
    ///   (`Input::position`). `plan_buffer` assumes "the next cut can only
    ///   come at or after the end of this frame"; video time that steps back
    ///   (within the interruption gap, past the decode check), or a duration
    ///   guessed too long (B-frames without durations: `admit` takes the PTS
    ///   distance to the previous frame in decode order) breaks that, and
    ///   audio up to `position` then lies after the cut (by less than the
    ///   step back).
    ///
    /// - before the end a later break set ([`Timeline::interrupt_at`]),
    ///   always: a break resumes at or after [`Tracker::max_end`], the
    ///   furthest end of any buffer seen.
    #[test]
    fn audio_lies_in_its_file_span(sc in scenario(any_interval())) {
        let sim = simulate(&sc);
        prop_assume!(sim.restart_absorbed.is_none());
        if sim.follower != Some(St::A) {
            return Ok(());
        }
        for l in sim.log.iter().filter(|l| l.st == St::A) {
            let Outcome::Written(k) = l.outcome else { continue };
            let f = &sim.files[&k];
            prop_assert!(l.ts >= f.start, "audio at {} in file {} starting at {}", l.ts, k, f.start);
            prop_assert!(
                l.end_then.is_none_or(|e| l.ts < e),
                "audio at {} routed to file {} that ended at {:?}", l.ts, k, l.end_then
            );
            prop_assert!(
                f.broken.is_none_or(|e| l.ts < e),
                "audio at {} in file {} broken later at {:?}", l.ts, k, f.broken
            );
            if l.protected && !f.cut_behind_video {
                prop_assert!(
                    f.cut.is_none_or(|e| l.ts < e),
                    "audio at {} in file {} cut later at {:?}", l.ts, k, f.cut
                );
            }
        }
    }
}
