// SPDX-License-Identifier: MIT OR Apache-2.0
//! The lossless join: the frames of one or more MP4 files, each optionally
//! cut to a window of its own media time, written one after the other into
//! one output with continuous timestamps. Nothing is decoded.
//!
//! Rules:
//! - A part starts at its first keyframe, or, with a `from`, at the last
//!   keyframe at or before `from` (its *start*). Frames of other streams
//!   before the start are dropped. An audio-only part starts at the audio
//!   frame at or before `from`.
//! - With a `to`, a stream ends before its first frame (in decoding order)
//!   whose PTS is at or after `to`.
//! - The first part's start goes to output time 0 (plus the decoding delay
//!   of B-frames, if any). Each later part starts where the previous part's
//!   video (or audio, without video) ended; with `keep_gaps`, plus the
//!   wall-clock gap between the two (from the index).
//! - A part never overlaps the previous one: if a stream of the previous
//!   part ends later than the new part's start (the audio of the last
//!   frame, at a session boundary), the whole part moves later by that
//!   much, so that every stream keeps its own A/V alignment.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reader::{compat_key, describe_caps, Frame, Kind, Probe, Reader};
use crate::writer::{Container, Writer};

/// One input file and the window of it to use.
pub struct Part {
    pub path: PathBuf,
    pub probe: Probe,
    /// Media time (ns, from the file's start) where the output should start.
    pub from: Option<i64>,
    /// Media time (ns) where the output should end.
    pub to: Option<i64>,
    /// Wall-clock time of the file's media time 0, if known (index).
    pub start_wall: Option<DateTime<Utc>>,
}

pub struct Options<'a> {
    pub container: Container,
    /// Which streams to write, by [`Kind`].
    pub streams: [bool; 2],
    pub keep_gaps: bool,
    /// The comment for the output's metadata, given the first part's actual
    /// start (ns of media time in that part).
    pub comment: &'a dyn Fn(i64) -> String,
    pub progress: &'a Progress,
}

/// Where one part went in the output.
#[derive(Debug, Clone, Default)]
pub struct PartOut {
    /// Media time (ns) in the part where its output starts (a keyframe).
    pub start: i64,
    /// Media time (ns) in the part where its video (or audio, without
    /// video) output ends: the end of the last frame written.
    pub end: i64,
    /// Output time (ns) of that start.
    pub out_start: i64,
    /// Wall-clock gap kept before the part (ns), with `keep_gaps`.
    pub gap: i64,
    /// Extra shift (ns) so that the previous part's streams do not overlap.
    pub shift: i64,
    pub frames: [u64; 2],
}

/// What the join wrote.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub frames: [u64; 2],
    /// Output media duration (ns): first frame start to last frame end.
    pub duration: u64,
    pub parts: Vec<PartOut>,
}

struct Joiner<'a> {
    opts: &'a Options<'a>,
    out_path: &'a Path,
    writer: Option<Writer>,
    first_caps: [Option<String>; 2],
    last_dts: [Option<i64>; 2],
    last_end: [Option<i64>; 2],
    first_out: Option<i64>,
    max_end: i64,
    next_start: i64,
    prev_end_wall: Option<DateTime<Utc>>,
    progress_base: u64,
    outcome: Outcome,
}

/// The state of one part while it is read.
struct Current {
    /// The part's file, for messages.
    file: String,
    start: i64,
    offset: i64,
    lead: Kind,
    to: Option<i64>,
    done: [bool; 2],
    lead_end: i64,
    out: PartOut,
}

pub fn join(parts: &[Part], out_path: &Path, opts: &Options) -> Result<Outcome> {
    let mut j = Joiner {
        opts,
        out_path,
        writer: None,
        first_caps: [None, None],
        last_dts: [None, None],
        last_end: [None, None],
        first_out: None,
        max_end: 0,
        next_start: 0,
        prev_end_wall: None,
        progress_base: 0,
        outcome: Outcome::default(),
    };
    for part in parts {
        j.part(part)?;
    }
    let writer = j
        .writer
        .take()
        .ok_or_else(|| Error::no_match("nothing to write: no frames in the selected range"))?;
    writer.finish()?;
    let mut outcome = j.outcome;
    outcome.duration = (j.max_end - j.first_out.unwrap_or(0)).max(0) as u64;
    Ok(outcome)
}

impl Joiner<'_> {
    fn part(&mut self, part: &Part) -> Result<()> {
        let want = [
            self.opts.streams[0] && part.probe.has(Kind::Video),
            self.opts.streams[1] && part.probe.has(Kind::Audio),
        ];
        if want != self.opts.streams {
            let missing = if want[0] { Kind::Audio } else { Kind::Video };
            return Err(Error::input(format!(
                "{} has no {} stream",
                part.path.display(),
                missing.name()
            )));
        }
        self.check_caps(part)?;
        let lead = if want[0] { Kind::Video } else { Kind::Audio };
        let mut reader = Reader::open(&part.path, want)?;
        let mut pending: Vec<Frame> = Vec::new();
        let mut cand: Option<i64> = None;
        let mut decided = false;
        let mut cur: Option<Current> = None;
        while let Some(f) = reader.next_frame()? {
            if let Some(c) = cur.as_mut() {
                self.emit(c, f)?;
                if c.done.iter().zip(want).all(|(d, w)| *d || !w) {
                    break;
                }
                continue;
            }
            if f.kind == lead && !decided {
                let before = part.from.is_some_and(|from| f.pts <= from);
                if f.key && (cand.is_none() || before) {
                    // A new candidate start: forget what came before it.
                    pending.retain(|p| p.kind != lead && p.pts >= f.pts);
                    decided = part.from.is_none_or(|from| f.pts > from);
                    cand = Some(f.pts);
                    pending.push(f);
                } else if cand.is_some() {
                    decided = !before;
                    pending.push(f);
                }
                // A delta frame before any keyframe cannot be decoded: dropped.
            } else {
                pending.push(f);
            }
            let ready = decided
                && cand.is_some_and(|k| {
                    [Kind::Video, Kind::Audio].iter().all(|&s| {
                        !want[s as usize]
                            || s == lead
                            || reader.ended(s)
                            || pending.iter().any(|p| p.kind == s && p.pts >= k)
                    })
                });
            if ready {
                cur = Some(self.start_part(part, lead, cand.unwrap_or(0), &mut pending)?);
            }
        }
        let mut c = match (cur, cand) {
            (Some(c), _) => c,
            (None, Some(k)) => self.start_part(part, lead, k, &mut pending)?,
            (None, None) => {
                return Err(Error::input(format!(
                    "{} has no {} keyframe to start from",
                    part.path.display(),
                    lead.name()
                )))
            }
        };
        drop(reader);
        self.next_start = c.offset + c.lead_end;
        self.prev_end_wall = part
            .start_wall
            .map(|w| w + chrono::Duration::nanoseconds(c.lead_end));
        self.progress_base += (c.lead_end - c.start).max(0) as u64;
        c.out.start = c.start;
        c.out.end = c.lead_end;
        self.outcome.parts.push(c.out);
        Ok(())
    }

    /// Refuses a part whose stream configuration differs from the first
    /// part's (the muxer cannot change it mid-file).
    fn check_caps(&mut self, part: &Part) -> Result<()> {
        for k in [Kind::Video, Kind::Audio] {
            let Some(caps) = part.probe.caps[k as usize].as_ref() else {
                continue;
            };
            let key = compat_key(caps);
            match &self.first_caps[k as usize] {
                None => self.first_caps[k as usize] = Some(key),
                Some(first) if *first != key => {
                    return Err(Error::input(format!(
                        "{}: its {} ({}) differs from the first file's",
                        part.path.display(),
                        k.name(),
                        describe_caps(caps)
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Places the part in the output and writes what was held back.
    fn start_part(
        &mut self,
        part: &Part,
        lead: Kind,
        start: i64,
        pending: &mut Vec<Frame>,
    ) -> Result<Current> {
        let first_of = |k: Kind, pending: &[Frame]| -> Option<(i64, i64)> {
            pending
                .iter()
                .find(|p| p.kind == k && (k == lead || p.pts >= start))
                .map(|p| (p.pts, p.dts))
        };
        let mut gap = 0;
        let base = if self.writer.is_none() {
            // B-frames decode before they show: keep every DTS >= 0.
            let min_dts = pending
                .iter()
                .filter(|p| p.kind == lead)
                .map(|p| p.dts)
                .min()
                .unwrap_or(start);
            (start - min_dts).max(0)
        } else {
            if self.opts.keep_gaps {
                if let (Some(prev), Some(w)) = (self.prev_end_wall, part.start_wall) {
                    let here = w + chrono::Duration::nanoseconds(start);
                    gap = (here - prev).num_nanoseconds().unwrap_or(0).max(0);
                }
            }
            self.next_start + gap
        };
        let planned = base - start;
        let mut offset = planned;
        for k in [Kind::Video, Kind::Audio] {
            if let Some((pts, dts)) = first_of(k, pending) {
                if let Some(end) = self.last_end[k as usize] {
                    offset = offset.max(end - pts);
                }
                if let Some(d) = self.last_dts[k as usize] {
                    offset = offset.max(d + 1 - dts);
                }
            }
        }
        if self.writer.is_none() {
            let caps = [
                self.opts.streams[0]
                    .then(|| part.probe.caps[0].clone())
                    .flatten(),
                self.opts.streams[1]
                    .then(|| part.probe.caps[1].clone())
                    .flatten(),
            ];
            let mut tags = gst::TagList::new();
            {
                let t = tags.make_mut();
                let comment = (self.opts.comment)(start);
                t.add::<gst::tags::Comment>(&comment.as_str(), gst::TagMergeMode::Replace);
                t.add::<gst::tags::Encoder>(&"liverecord", gst::TagMergeMode::Replace);
            }
            self.writer = Some(Writer::new(
                self.out_path,
                self.opts.container,
                &caps,
                &tags,
            )?);
        }
        let mut cur = Current {
            file: part.path.display().to_string(),
            start,
            offset,
            lead,
            to: part.to,
            done: [false, false],
            lead_end: start,
            out: PartOut {
                out_start: start + offset,
                gap,
                shift: offset - planned,
                ..PartOut::default()
            },
        };
        for f in pending.drain(..) {
            self.emit(&mut cur, f)?;
        }
        Ok(cur)
    }

    /// Writes one frame of the current part, or drops it if it is outside
    /// the part's window.
    fn emit(&mut self, c: &mut Current, f: Frame) -> Result<()> {
        let k = f.kind as usize;
        if c.done[k] || f.pts < c.start {
            return Ok(());
        }
        if c.to.is_some_and(|to| f.pts >= to) {
            c.done[k] = true;
            return Ok(());
        }
        let (pts, dts) = (f.pts + c.offset, f.dts + c.offset);
        if self.last_dts[k].is_some_and(|d| dts <= d) || dts < 0 {
            return Err(Error::input(format!(
                "{}: {} decoding timestamps do not increase at {:.3} s of the file \
                 ({:.3} s of the output); the file cannot be copied without re-encoding",
                c.file,
                f.kind.name(),
                f.dts as f64 / 1e9,
                dts as f64 / 1e9
            )));
        }
        let mut buffer = f.buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(pts as u64));
            b.set_dts(gst::ClockTime::from_nseconds(dts as u64));
        }
        let writer = self
            .writer
            .as_ref()
            .ok_or_else(|| Error::failed("internal error: no writer"))?;
        writer.push(f.kind, buffer)?;
        let end = pts + f.duration;
        self.last_dts[k] = Some(dts);
        self.last_end[k] = Some(self.last_end[k].map_or(end, |e| e.max(end)));
        self.first_out = Some(self.first_out.map_or(pts, |s| s.min(pts)));
        self.max_end = self.max_end.max(end);
        self.outcome.frames[k] += 1;
        c.out.frames[k] += 1;
        if f.kind == c.lead {
            c.lead_end = c.lead_end.max(f.pts + f.duration);
            self.opts
                .progress
                .set(self.progress_base + (c.lead_end - c.start).max(0) as u64);
        }
        Ok(())
    }
}
