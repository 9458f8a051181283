// SPDX-License-Identifier: MIT OR Apache-2.0
//! Starting a file's writer once the file is ready (`pending.rs`): built
//! with the caps received, fed the frames held so far in their order, then
//! fed directly. Called without locks.

use std::path::PathBuf;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::channel::{Channel, FileKind, OpenFile};
use super::datapath::send_eos;
use super::imp::{LiveRecordSink, CAT};
use super::stream::{PerStream, Stream};
use super::writer::{Writer, WriterSpec};
use crate::fsio;
use crate::journal::{Entry, Kind};
use crate::rotation::Key;

impl LiveRecordSink {
    /// Starts the writers of every file that is ready. Called without locks.
    pub(super) fn start_ready(&self) -> Result<(), gst::FlowError> {
        let ready = match self.lock_state().as_mut() {
            Some(state) => state.take_ready(),
            None => return Ok(()),
        };
        self.start_writers(ready)
    }

    /// Starts the writers of `files` (marked `starting` under the lock).
    pub(super) fn start_writers(&self, files: Vec<(usize, Key)>) -> Result<(), gst::FlowError> {
        let mut result = Ok(());
        for (ci, key) in files {
            // Every file gets its writer, even after one failed.
            if let Err(e) = self.start_writer(ci, key) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Builds and starts the writer of a ready file, then feeds it what was
    /// held.
    fn start_writer(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        let (name, format, part_path, video, audio, frag, journal, param_sets) = {
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
            // The caps of the file's own frames, not the input's latest.
            let caps = |s: Stream| f.has[s].then(|| f.caps[s].clone());
            let journal = journal_entry(ch, f, state.cfg.hls_segment_ns)
                .map(|e| (state.cfg.journal_path.clone(), e));
            (
                format!("writer-{}-{:05}-{}", ch.format.name(), f.index, key),
                ch.format,
                f.part_path.clone(),
                caps(Stream::Video),
                caps(Stream::Audio),
                state.cfg.mp4_fragment_ms,
                journal,
                ch.param_sets.clone(),
            )
        };
        if video.is_none() && audio.is_none() {
            // No stream sent anything to this file: there is no file.
            gst::debug!(CAT, imp = self, "{name}: no data, no file");
            self.drop_unstarted(ci, key, false);
            self.finish_playlists();
            self.maybe_forward_eos();
            return Ok(());
        }
        let caps_sent = (
            video.as_ref().is_some_and(|c| c.is_some()),
            audio.as_ref().is_some_and(|c| c.is_some()),
        );

        // Crash safety: the journal names the file before it exists.
        let journaled = match &journal {
            Some((path, entry)) => {
                fsio::create_parent(path).and_then(|_| crate::journal::append(path, entry))
            }
            None => Ok(()),
        };
        let result = journaled
            .and_then(|_| fsio::prepare_part(&part_path))
            .and_then(|_| {
                let writer = Writer::build(WriterSpec {
                    name,
                    format,
                    part_path: &part_path,
                    video,
                    audio,
                    mp4_fragment_ms: frag,
                    param_sets: Some(param_sets),
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
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                writer.shutdown();
                return Err(gst::FlowError::Flushing);
            };
            let ch = state.channels.get_mut(ci).ok_or(gst::FlowError::Error)?;
            let f = ch.file_mut(key).ok_or(gst::FlowError::Error)?;
            f.caps_sent.video = caps_sent.0;
            f.caps_sent.audio = caps_sent.1;
            f.writer = Some(writer);
        }
        self.feed_held(ci, key)
    }

    /// A started writer: `file-opened` is posted, and each stream's held
    /// frames are fed by a thread of their own (a muxer takes a frame only
    /// once every input has one: one thread feeding both inputs, or the
    /// streaming thread of one stream feeding the other's, could wait for
    /// data only it would bring). The calling streaming thread returns at
    /// once and goes on with its own stream, after the held frames of it.
    fn feed_held(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        let (opened, feeders) = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let stream_id = state.cfg.recorder.stream_id.clone();
            let ch = state.channels.get_mut(ci).ok_or(gst::FlowError::Error)?;
            let format = ch.format;
            let failed = ch.failed;
            let f = ch.file_mut(key).ok_or(gst::FlowError::Error)?;
            if failed {
                // The channel failed (a full disk) while this file was
                // starting: it records nothing more, and never opened.
                let writer = f.writer.take();
                drop(guard);
                if let Some(w) = writer {
                    w.shutdown();
                    let _ = self.obj().remove(&w.bin);
                    let _ = std::fs::remove_file(&w.part_path);
                }
                self.drop_unstarted(ci, key, false);
                return Ok(());
            }
            f.starting = false;
            let inline = f.writer.as_ref().is_some_and(|w| w.inline_feed);
            let opened = f.announce.take().map(|location| {
                super::messages::file_opened(
                    &stream_id,
                    format.name(),
                    &f.meta(),
                    &location.to_string_lossy(),
                )
            });
            let mut feeders = Vec::new();
            for s in Stream::ALL {
                if f.held.iter().any(|(hs, _)| *hs == s) {
                    feeders.push(s);
                } else {
                    f.flowing[s] = true;
                }
            }
            let eos = f.take_eos_pads();
            (opened.map(|o| (o, eos)), (feeders, inline))
        };
        let (feeders, inline) = feeders;
        self.notify();
        if let Some((opened, eos)) = opened {
            send_eos(eos);
            self.post(opened);
        }
        if inline && !feeders.is_empty() {
            // Pushes never wait for the other stream: held frames of both
            // streams go in from here, in the order they were held.
            self.feed(ci, key, None);
            return Ok(());
        }
        for s in feeders {
            let obj = self.obj().clone();
            let spawned = std::thread::Builder::new()
                .name(format!("liverecord-feed-{}", s.name()))
                .spawn(move || obj.imp().feed(ci, key, Some(s)));
            if spawned.is_err() {
                // No thread: fed from here.
                self.feed(ci, key, Some(s));
            }
        }
        Ok(())
    }

    /// Feeds the held frames of a file into its writer, in the order they
    /// were held, until none is left — those of `only`, or of every stream
    /// (a writer that never blocks); then those streams' frames go straight
    /// in, and an EOS asked for meanwhile is sent.
    fn feed(&self, ci: usize, key: Key, only: Option<Stream>) {
        let mine = |s: Stream| only.is_none_or(|o| o == s);
        loop {
            let (batch, pads) = {
                let mut guard = self.lock_state();
                let Some(f) = guard
                    .as_mut()
                    .and_then(|s| s.channels.get_mut(ci))
                    .and_then(|ch| ch.file_mut(key))
                else {
                    return;
                };
                let (batch, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut f.held)
                    .into_iter()
                    .partition(|(s, _)| mine(*s));
                f.held = rest;
                if batch.is_empty() {
                    for s in Stream::ALL.into_iter().filter(|s| mine(*s)) {
                        f.flowing[s] = true;
                    }
                    let eos = f.take_eos_pads();
                    drop(guard);
                    self.notify();
                    send_eos(eos);
                    return;
                }
                let pads = PerStream::new(f.writer_pad(Stream::Video), f.writer_pad(Stream::Audio));
                (batch, pads)
            };
            self.notify();
            for (s, buffer) in batch {
                let Some(pad) = &pads[s] else { continue };
                match pad.push(buffer) {
                    Ok(_) | Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {}
                    Err(e) => {
                        gst::warning!(CAT, imp = self, "Writer refused a held frame: {e:?}");
                    }
                }
            }
        }
    }
}

/// The journal entry of a file whose writer starts: the file itself, or for
/// the first segment of an HLS playlist, the playlist (later segments are
/// found from it).
fn journal_entry(ch: &Channel, f: &OpenFile, segment_ns: u64) -> Option<Entry> {
    let (kind, path, base, session, index) = match f.kind {
        FileKind::File => (Kind::File, f.part_path.clone(), None, f.session, f.index),
        FileKind::Segment { run, seq: 0, .. } => {
            let r = ch.hls.as_ref()?.run(run)?;
            (
                Kind::Playlist,
                r.path.clone(),
                Some(r.base.clone()),
                r.session,
                r.index,
            )
        }
        FileKind::Segment { .. } => return None,
    };
    // Absolute: a restarted recorder may run in another directory.
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    Some(Entry {
        kind,
        format: ch.format.name().to_string(),
        path: abs(path),
        base: base.map(abs),
        audio_only: f.audio_only,
        session_id: session,
        index,
        start_time: crate::index::iso8601(f.start_wall),
        start_running_time: f.start_rt,
        segment_target_ns: segment_ns,
    })
}
