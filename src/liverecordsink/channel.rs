// SPDX-License-Identifier: MIT OR Apache-2.0
//! One recording channel (one format): its timeline, its open files and,
//! for HLS, its playlists. It decides, under the state lock, which file a
//! frame goes to and which files open or end; the data path carries that
//! out without the lock.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::hlsrun::{HlsChannel, Run};
use super::props::Config;
use super::stream::{PerStream, Stream};
use super::writer::Writer;
use crate::format::Format;
use crate::naming;
use crate::record::FileMeta;
use crate::rotation::{CloseReason, Key, LeadAction, Timeline};
use crate::session::{wall_at, Anchor};
use crate::template::TemplateVars;

/// What an open file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An MP4, FLV or AAC file.
    File,
    /// An HLS segment of playlist `run`, with its sequence number, after a
    /// break or not.
    Segment {
        run: u64,
        seq: u64,
        discontinuity: bool,
    },
}

/// One open file of a channel.
pub struct OpenFile {
    pub key: Key,
    pub kind: FileKind,
    /// Built without the state lock once every stream of the file has data
    /// or is known absent (see `pending.rs`).
    pub writer: Option<Writer>,
    /// Frames taken before the writer runs, in arrival order.
    pub held: Vec<(Stream, gst::Buffer)>,
    /// The writer is being built and fed what was held.
    pub starting: bool,
    /// Frames of each stream go straight into the writer (its held frames
    /// have all been fed).
    pub flowing: PerStream<bool>,
    pub session: u64,
    pub index: u64,
    pub part_path: PathBuf,
    pub audio_only: bool,
    pub start_rt: u64,
    /// Subtracted from running times to give the file's timestamps (signed:
    /// a first DTS may lie before the segment start).
    pub base_rt: i64,
    pub end_rt: u64,
    pub start_wall: DateTime<Utc>,
    pub frames: PerStream<u64>,
    /// The streams the file holds.
    pub has: PerStream<bool>,
    pub caps_sent: PerStream<bool>,
    /// The caps of each stream's first frame in the file (a caps change
    /// that matters starts a new file): the writer is built with them.
    pub caps: PerStream<Option<gst::Caps>>,
    pub eos_wanted: PerStream<bool>,
    pub eos_sent: PerStream<bool>,
    /// The writer has written everything.
    pub drained: bool,
    pub reason: Option<CloseReason>,
    /// Where the lead cut this file (the next file's start).
    pub cut_rt: Option<u64>,
    /// What `file-opened` announces when the writer starts (HLS: the
    /// playlist, for its first segment only).
    pub announce: Option<PathBuf>,
}

impl OpenFile {
    /// Marks the inputs of `streams` finished and returns the writer pads
    /// that must now get EOS.
    pub fn finish(&mut self, streams: &[Stream], reason: Option<CloseReason>) -> Vec<gst::Pad> {
        if self.reason.is_none() {
            self.reason = reason;
        }
        for s in streams {
            self.eos_wanted[*s] = true;
        }
        self.take_eos_pads()
    }

    /// The writer pads that were asked for EOS and did not get it yet
    /// (none before the writer has taken every held frame).
    pub fn take_eos_pads(&mut self) -> Vec<gst::Pad> {
        let mut pads = Vec::new();
        for s in Stream::ALL {
            if !self.flowing[s] {
                continue;
            }
            if let Some(pad) = self.writer_pad(s) {
                if self.eos_wanted[s] && !self.eos_sent[s] {
                    self.eos_sent[s] = true;
                    pads.push(pad);
                }
            }
        }
        pads
    }

    /// The writer's input for `stream`, once the writer runs.
    pub fn writer_pad(&self, stream: Stream) -> Option<gst::Pad> {
        let w = self.writer.as_ref()?;
        match stream {
            Stream::Video => w.video.clone(),
            Stream::Audio => w.audio.clone(),
        }
    }

    pub fn meta(&self) -> FileMeta {
        FileMeta {
            session: self.session,
            index: self.index,
            start_rt: self.start_rt,
            start_wall: self.start_wall,
            video_frames: self.frames.video,
            audio_frames: self.frames.audio,
        }
    }
}

/// A buffer on its way into a running writer.
pub struct Push {
    pub chan: usize,
    pub pad: gst::Pad,
    pub caps: Option<gst::Caps>,
    pub buffer: gst::Buffer,
}

/// Work decided under the state lock and carried out after releasing it.
#[derive(Default)]
pub struct Plan {
    pub eos: Vec<gst::Pad>,
    pub opens: Vec<(usize, Key)>,
    pub pushes: Vec<Push>,
    pub request_keyframe: bool,
}

/// A lead frame: its running time, whether it is a keyframe, and whether
/// the channel's follower has ended.
#[derive(Clone, Copy)]
pub struct LeadFrame {
    pub rt: u64,
    pub keyframe: bool,
    pub follower_done: bool,
}

/// Where a file opens: the session and its wall-clock anchor, and the
/// frame's running times.
pub struct OpenAt {
    pub session: u64,
    pub anchor: Anchor,
    pub rt: u64,
    /// Signed: B-frames' DTS may lie before the segment start.
    pub dts_rt: Option<i64>,
}

pub struct Channel {
    pub format: Format,
    pub lead: Stream,
    pub follower: Option<Stream>,
    pub timeline: Timeline,
    pub files: Vec<OpenFile>,
    pub next_index: u64,
    /// Playlists, for the HLS channel.
    pub hls: Option<HlsChannel>,
    /// A writer failed (disk full, unwritable path): the channel records
    /// no more.
    pub failed: bool,
    /// HLS: the latest H.264/H.265 parameter sets, for segments whose
    /// keyframe comes without them (shared by the segments' writers).
    pub param_sets: std::sync::Arc<std::sync::Mutex<crate::annexb::ParamSetKeeper>>,
}

impl Channel {
    pub fn new(
        format: Format,
        lead: Stream,
        follower: Option<Stream>,
        cfg: &Config,
        next_index: u64,
    ) -> Self {
        let hls = format == Format::Hls;
        Channel {
            format,
            lead,
            follower,
            // HLS has no duration cap: its timeline cuts segments.
            timeline: Timeline::new(Some(if hls {
                cfg.hls_segment_ns
            } else {
                cfg.interval_ns
            })),
            hls: hls.then(HlsChannel::default),
            files: Vec::new(),
            next_index,
            failed: false,
            param_sets: Default::default(),
        }
    }

    pub fn file_mut(&mut self, key: Key) -> Option<&mut OpenFile> {
        self.files.iter_mut().find(|f| f.key == key)
    }

    pub fn streams(&self) -> Vec<Stream> {
        std::iter::once(self.lead).chain(self.follower).collect()
    }

    /// Whether the channel writes `stream`.
    pub fn writes(&self, stream: Stream) -> bool {
        match stream {
            Stream::Video => self.lead == stream && self.format.holds_video(),
            Stream::Audio => self.lead == stream || self.follower == Some(stream),
        }
    }

    /// Routes a lead frame. `open_at` gives where a file opening now
    /// starts. Returns the file that takes the frame.
    pub fn route_lead(
        &mut self,
        cfg: &Config,
        frame: LeadFrame,
        open_at: &mut dyn FnMut() -> OpenAt,
        plan: &mut Plan,
    ) -> Option<Key> {
        let LeadFrame {
            rt,
            keyframe,
            follower_done,
        } = frame;
        let d = self.timeline.on_lead(rt, keyframe);
        if let Some(h) = self.hls.as_mut().filter(|_| keyframe) {
            // A keyframe that opens a file (after a break or at the start)
            // begins a new GOP measure: a break is not a GOP.
            if let LeadAction::Open(_) = d.action {
                h.last_key = None;
            }
            h.note_keyframe(rt);
        }
        plan.request_keyframe |= d.request_keyframe && self.lead == Stream::Video;
        let lead_streams = |ch: &Channel| {
            let mut streams = vec![ch.lead];
            if follower_done {
                streams.extend(ch.follower);
            }
            streams
        };
        if let Some(k) = d.finished_lead {
            // Lead frames reached a break: the file's lead part ends.
            let streams = lead_streams(self);
            if follower_done {
                self.timeline.follower_ended();
            }
            if let Some(f) = self.file_mut(k) {
                plan.eos
                    .extend(f.finish(&streams, Some(CloseReason::Interrupted)));
            }
        }
        match d.action {
            LeadAction::Drop => None,
            LeadAction::Write(k) => Some(k),
            LeadAction::Open(k) => {
                self.open(cfg, k, open_at());
                Some(k)
            }
            LeadAction::Rotate {
                close,
                reason,
                open,
            } => {
                let streams = lead_streams(self);
                if let Some(f) = self.file_mut(close) {
                    f.cut_rt = Some(rt);
                    plan.eos.extend(f.finish(&streams, Some(reason)));
                }
                if follower_done {
                    self.timeline.follower_ended();
                }
                self.open(cfg, open, open_at());
                Some(open)
            }
        }
    }

    /// Routes a follower frame to the file whose span holds it.
    pub fn route_follower(&mut self, stream: Stream, rt: u64, plan: &mut Plan) -> Option<Key> {
        let route = self.timeline.route_follower(rt);
        for k in route.finished {
            if let Some(f) = self.file_mut(k) {
                plan.eos.extend(f.finish(&[stream], None));
            }
        }
        route.target
    }

    /// Records a new file (under the state lock); its writer is built later,
    /// without the lock.
    fn open(&mut self, cfg: &Config, key: Key, at: OpenAt) {
        let start_wall = wall_at(at.anchor, at.rt);
        let has = PerStream::new(self.writes(Stream::Video), self.writes(Stream::Audio));
        // Timestamps in the file start at the first frame's DTS, so that
        // frames decoded before they are shown keep PTS >= DTS.
        let rt = i64::try_from(at.rt).unwrap_or(i64::MAX);
        let base_rt = at.dts_rt.filter(|_| has.video).map_or(rt, |d| d.min(rt));
        let file = |kind, index, part_path, audio_only, base_rt, announce| OpenFile {
            key,
            kind,
            writer: None,
            held: Vec::new(),
            starting: false,
            flowing: PerStream::default(),
            session: at.session,
            index,
            part_path,
            audio_only,
            start_rt: at.rt,
            base_rt,
            end_rt: at.rt,
            start_wall,
            frames: PerStream::default(),
            has,
            caps_sent: PerStream::default(),
            caps: PerStream::default(),
            eos_wanted: PerStream::default(),
            eos_sent: PerStream::default(),
            drained: false,
            reason: None,
            cut_rt: None,
            announce,
        };
        if self.hls.is_some() {
            let Some((run, discontinuity, announce)) =
                self.open_run(cfg, &at, start_wall, base_rt, !has.video)
            else {
                return;
            };
            let seq = run.take_seq();
            let kind = FileKind::Segment {
                run: run.id,
                seq,
                discontinuity,
            };
            let f = file(
                kind,
                run.index,
                run.segment_part(seq),
                run.audio_only,
                run.base_rt,
                announce,
            );
            self.files.push(f);
            return;
        }
        let ext = self.format.extension(!has.video);
        let (index, base) = self.pick_name(cfg, at.session, start_wall, ext);
        let part = naming::part_path(&base, ext);
        self.files.push(file(
            FileKind::File,
            index,
            part.clone(),
            !has.video,
            base_rt,
            Some(part),
        ));
    }

    /// The index and base name of a new file or playlist.
    fn pick_name(
        &mut self,
        cfg: &Config,
        session: u64,
        start: DateTime<Utc>,
        ext: &str,
    ) -> (u64, PathBuf) {
        let format = self.format.name();
        let render = |index| {
            cfg.template.render(&TemplateVars {
                stream_id: &cfg.recorder.safe_stream_id,
                session,
                index,
                format,
                start,
                end: None,
            })
        };
        // A file's `.part` is created when its writer starts, which may be
        // later: the open files' names are taken too.
        let open: Vec<&PathBuf> = self.files.iter().map(|f| &f.part_path).collect();
        let (index, base) = naming::pick_new(
            render,
            cfg.template.uses_index(),
            self.next_index,
            ext,
            |p| p.exists() || open.iter().any(|o| o.as_path() == p),
        );
        self.next_index = index + 1;
        (index, base)
    }

    /// The playlist a new segment goes to: the open one (after a break
    /// within the resume timeout: with a discontinuity), or a new one.
    /// Returns it, the discontinuity, and what `file-opened` announces.
    fn open_run(
        &mut self,
        cfg: &Config,
        at: &OpenAt,
        start_wall: DateTime<Utc>,
        base_rt: i64,
        audio_only: bool,
    ) -> Option<(&mut Run, bool, Option<PathBuf>)> {
        let ext = self.format.extension(false);
        let mut discontinuity = false;
        let mut need_new = true;
        if let Some(h) = self.hls.as_mut() {
            discontinuity = h.resume(at.rt, cfg.hls_resume_ns);
            need_new = h.open_run_mut().is_none();
        }
        let mut announce = None;
        if need_new {
            let (index, base) = self.pick_name(cfg, at.session, start_wall, ext);
            let path = naming::with_extension(&base, ext);
            announce = Some(path.clone());
            if let Some(h) = self.hls.as_mut() {
                h.start_run(Run::new(
                    crate::hls::Playlist::new(cfg.hls_segment_ns),
                    path,
                    base,
                    (at.session, index),
                    (at.rt, start_wall),
                    base_rt,
                    audio_only,
                ));
            }
        }
        let run = self.hls.as_mut()?.open_run_mut()?;
        Some((run, discontinuity, announce))
    }
}
