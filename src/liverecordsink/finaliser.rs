// SPDX-License-Identifier: MIT OR Apache-2.0
//! The close path: every file, HLS segment and playlist is made final here,
//! the same way:
//!
//! drain (the writer has written everything) → fsync → name → rename →
//! the after-close steps ([`AFTER_CLOSE`]: index, counters, message).
//!
//! Later steps (callbacks, uploads, retention) are added to that list, not
//! as branches. Messages are queued in order and posted with no lock held
//! (see `messages::Effects`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::channel::{FileKind, OpenFile};
use super::datapath::send_eos;
use super::failures::set_aside;
use super::hlsrun::{Finished, Run};
use super::imp::{LiveRecordSink, CAT};
use super::props::Config;
use super::{jobs, messages};
use crate::format::Format;
use crate::hls::Added;
use crate::index::{self, IndexRecord};
use crate::record::{Ending, FileMeta};
use crate::rotation::{CloseReason, Key};
use crate::session::wall_at;
use crate::template::TemplateVars;
use crate::{fsio, naming, readable};

/// How long stopping waits for muxers to finalise their files.
const FINALISE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the close path made of a recording; the after-close steps act on it.
pub(super) enum Closed {
    /// A final file or playlist.
    Recording { record: IndexRecord, duration: u64 },
    /// A file that is not kept, and why.
    Discarded {
        record: IndexRecord,
        duration: u64,
        why: String,
    },
    /// Segments just listed in their playlist, which was rewritten.
    Segments {
        added: Vec<(Added, Finished)>,
        playlist: PathBuf,
        target: Option<u64>,
        /// The playlist as just written.
        text: Vec<u8>,
    },
}

/// One after-close step. Called without locks.
type AfterClose = fn(&LiveRecordSink, &Config, &Closed);

/// The after-close steps, in order: the index and the delivery jobs are
/// written before the message is posted.
const AFTER_CLOSE: &[AfterClose] = &[index_step, jobs::delivery_step, count_step, announce_step];

/// Appends a final recording to the index (fsynced).
fn index_step(imp: &LiveRecordSink, cfg: &Config, closed: &Closed) {
    let (Closed::Recording { record, .. }, Some(path)) = (closed, &cfg.index_path) else {
        return;
    };
    if let Err(e) = index::append(path, record) {
        gst::element_imp_error!(
            imp,
            gst::ResourceError::Write,
            ["Cannot append to the index: {}", e]
        );
    }
}

/// Counts a final recording in `stats`.
fn count_step(imp: &LiveRecordSink, _cfg: &Config, closed: &Closed) {
    let Closed::Recording { record, .. } = closed else {
        return;
    };
    if let Some(state) = imp.lock_state().as_mut() {
        state.stats.files_closed += 1;
        state.stats.bytes_written += record.size;
    }
}

/// Queues the message of a recording: file-closed, file-discarded or
/// hls-segment-added.
fn announce_step(imp: &LiveRecordSink, _cfg: &Config, closed: &Closed) {
    match closed {
        Closed::Recording { record, duration } => {
            gst::info!(
                CAT,
                imp = imp,
                "Closed {} ({})",
                record.location,
                record.reason
            );
            imp.queue_post(messages::file_record(
                "liverecordsink-file-closed",
                record,
                *duration,
                None,
            ));
        }
        Closed::Discarded {
            record,
            duration,
            why,
        } => {
            gst::info!(CAT, imp = imp, "Discarded {}: {}", record.location, why);
            imp.queue_post(messages::file_record(
                "liverecordsink-file-discarded",
                record,
                *duration,
                Some(why),
            ));
        }
        Closed::Segments {
            added,
            playlist,
            target,
            ..
        } => {
            let playlist = playlist.to_string_lossy();
            for (a, seg) in added {
                if a.over_target {
                    gst::element_imp_warning!(
                        imp,
                        gst::StreamError::Format,
                        [
                            "HLS segment {} lasts {:.3} s, longer than the playlist's target duration {} s: keyframes are further apart than when the playlist started",
                            seg.uri,
                            seg.duration as f64 / 1e9,
                            target.unwrap_or(0)
                        ]
                    );
                }
                imp.queue_post(messages::segment_added(
                    &seg.path.to_string_lossy(),
                    &playlist,
                    seg.duration,
                    a.sequence,
                    a.discontinuity,
                    seg.size,
                ));
            }
        }
    }
}

impl LiveRecordSink {
    pub(super) fn after_close(&self, cfg: &Config, closed: Option<Closed>) {
        if let Some(closed) = closed {
            for step in AFTER_CLOSE {
                step(self, cfg, &closed);
            }
        }
    }

    /// A writer has written everything (called on a muxer's streaming
    /// thread, without locks): the file is finalised from another thread.
    pub(super) fn writer_drained(&self, ci: usize, key: Key) {
        let stopping = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            if let Some(f) = state.channels.get_mut(ci).and_then(|c| c.file_mut(key)) {
                f.drained = true;
            }
            state.stopping
        };
        self.notify();
        if !stopping {
            // Not on the streaming thread: the writer is shut down from here.
            self.obj().call_async(move |obj| {
                obj.imp().finalise(ci, key);
                obj.imp().maybe_forward_eos();
            });
        }
    }

    /// Closes one file or segment whose writer has drained (or must stop):
    /// the close path, then the playlists that can end.
    pub(super) fn finalise(&self, ci: usize, key: Key) {
        let taken = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            let cfg = state.cfg.clone();
            let Some(ch) = state.channels.get_mut(ci) else {
                return;
            };
            let Some(pos) = ch.files.iter().position(|f| f.key == key) else {
                return;
            };
            let file = ch.files.remove(pos);
            let format = ch.format;
            state.finalizing += 1;
            (file, cfg, format)
        };
        let (file, cfg, format) = taken;
        self.notify();
        if let Some(w) = &file.writer {
            w.shutdown();
            let _ = self.obj().remove(&w.bin);
        }
        let closed = match file.kind {
            FileKind::File => self.close_file(&file, &cfg, format),
            FileKind::Segment {
                run,
                seq,
                discontinuity,
            } => self.close_segment(ci, &file, &cfg, run, seq, discontinuity),
        };
        self.after_close(&cfg, closed);
        if let FileKind::Segment { run, .. } = file.kind {
            self.segment_announced(ci, run);
        }
        if let Some(state) = self.lock_state().as_mut() {
            state.finalizing -= 1;
        }
        self.notify();
        self.effects.run();
        self.finish_playlists();
    }

    /// fsync, name and rename one MP4/FLV/AAC file, or discard it.
    fn close_file(&self, file: &OpenFile, cfg: &Config, format: Format) -> Option<Closed> {
        let reason = file.reason.unwrap_or(CloseReason::Eos).as_str();
        let duration = file.end_rt.saturating_sub(file.start_rt);
        let meta = file.meta();
        if duration < cfg.min_file_ns {
            let part = file.part_path.to_string_lossy().into_owned();
            let size = std::fs::metadata(&file.part_path).map_or(0, |m| m.len());
            if let Err(e) = std::fs::remove_file(&file.part_path) {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot delete the short file {}: {}", part, e]
                );
            }
            let ending = Ending {
                location: &part,
                size,
                duration,
                reason,
            };
            return Some(Closed::Discarded {
                record: cfg.recorder.record(format.name(), &meta, ending),
                duration,
                why: format!(
                    "shorter than min-file-duration ({} ms < {} ms)",
                    duration / 1_000_000,
                    cfg.min_file_ns / 1_000_000
                ),
            });
        }
        if let Err(why) = readable::check(&file.part_path, format) {
            // Never indexed as good: kept aside as NAME.EXT.broken (deleted
            // when empty) and announced as discarded.
            let (location, size) = set_aside(&file.part_path);
            let location = location.to_string_lossy();
            let ending = Ending {
                location: &location,
                size,
                duration,
                reason,
            };
            return Some(Closed::Discarded {
                record: cfg.recorder.record(format.name(), &meta, ending),
                duration,
                why: format!("unreadable: {why}"),
            });
        }
        let end_wall = wall_at(
            (file.start_rt, file.start_wall),
            file.end_rt.max(file.start_rt),
        );
        let base = render(cfg, format, &meta, Some(end_wall));
        let ext = format.extension(file.audio_only);
        let committed = fsio::commit_unique(&file.part_path, |n| naming::candidate(&base, ext, n));
        let (target, size) = match committed {
            Ok(done) => done,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot finalise {}: {}", file.part_path.display(), msg]
                );
                return None;
            }
        };
        let location = target.to_string_lossy();
        let ending = Ending {
            location: &location,
            size,
            duration,
            reason,
        };
        Some(Closed::Recording {
            record: cfg.recorder.record(format.name(), &meta, ending),
            duration,
        })
    }

    /// fsync and rename one segment, list it (and any later ones ready) in
    /// its playlist, and rewrite the playlist.
    fn close_segment(
        &self,
        ci: usize,
        file: &OpenFile,
        cfg: &Config,
        run_id: u64,
        seq: u64,
        discontinuity: bool,
    ) -> Option<Closed> {
        let part = &file.part_path;
        let final_path = part.with_extension("");
        // A segment whose writer failed (a full disk) is cut short.
        let readable = match file.reason {
            Some(CloseReason::Error) => Err("its writer failed".to_string()),
            _ => readable::check(part, Format::Hls),
        };
        let size = match readable {
            Err(why) => {
                // Left out of the playlist: players could not read it.
                let (aside, aside_size) = set_aside(part);
                let duration = file.end_rt.saturating_sub(file.start_rt);
                let location = aside.to_string_lossy();
                let record = cfg.recorder.record(
                    Format::Hls.name(),
                    &file.meta(),
                    Ending {
                        location: &location,
                        size: aside_size,
                        duration,
                        reason: CloseReason::Error.as_str(),
                    },
                );
                self.queue_post(messages::file_record(
                    "liverecordsink-file-discarded",
                    &record,
                    duration,
                    Some(&format!("unreadable: {why}")),
                ));
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    [
                        "Segment {} is unreadable ({}): left out of the playlist, kept as {}",
                        part.display(),
                        why,
                        aside.display()
                    ]
                );
                0
            }
            // The playlist's atomic rewrite below fsyncs the folder.
            Ok(()) => fsio::rename_synced(part, &final_path).unwrap_or_else(|msg| {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot finish the segment {}: {}", part.display(), msg]
                );
                0
            }),
        };
        let done = Finished {
            uri: final_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: final_path,
            // EXTINF runs to the next segment's start, so that the
            // durations add up to the timeline.
            duration: file
                .cut_rt
                .unwrap_or(file.end_rt)
                .saturating_sub(file.start_rt),
            program_date_time: file.start_wall,
            discontinuity,
            size,
            frames: file.frames,
        };
        let w = super::imp::lock(&self.hls_write);
        let (added, bytes, playlist, target) = {
            let mut guard = self.lock_state();
            let run = guard
                .as_mut()
                .and_then(|s| s.channels.get_mut(ci))
                .and_then(|c| c.hls.as_mut())
                .and_then(|h| h.run_mut(run_id))?;
            // Segments are listed in sequence order, whatever order their
            // writers finish in.
            let added = run.add_in_order(seq, done);
            // The playlist cannot end before these segments are announced.
            run.announcing += 1;
            if added.is_empty() {
                return None;
            }
            let target = run.playlist.target_duration();
            (added, run.playlist.render(), run.path.clone(), target)
        };
        let written = fsio::write_atomic(&playlist, &bytes);
        drop(w);
        if let Err(e) = written {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ["Cannot write the playlist: {}", e]
            );
            return None;
        }
        Some(Closed::Segments {
            added,
            playlist,
            target,
            text: bytes,
        })
    }

    /// The messages of a segment are queued: its playlist may end.
    fn segment_announced(&self, ci: usize, run_id: u64) {
        let mut guard = self.lock_state();
        if let Some(run) = guard
            .as_mut()
            .and_then(|s| s.channels.get_mut(ci))
            .and_then(|c| c.hls.as_mut())
            .and_then(|h| h.run_mut(run_id))
        {
            run.announcing = run.announcing.saturating_sub(1);
        }
    }

    /// Ends every playlist that is closing and has all its segments.
    pub(super) fn finish_playlists(&self) {
        {
            // Taking and ending playlists is one step for one thread at a
            // time, so that they end (and are indexed and announced) in
            // recording order. Messages are queued here, posted below.
            let _order = super::imp::lock(&self.finishing);
            let done: Vec<(Run, Format, std::sync::Arc<Config>)> = {
                let mut guard = self.lock_state();
                let Some(state) = guard.as_mut() else { return };
                let cfg = state.cfg.clone();
                let mut done = Vec::new();
                for ch in &mut state.channels {
                    let format = ch.format;
                    if let Some(h) = ch.hls.as_mut() {
                        done.extend(
                            h.take_finished()
                                .into_iter()
                                .map(|r| (r, format, cfg.clone())),
                        );
                    }
                }
                state.finalizing += done.len();
                done
            };
            let n = done.len();
            for (run, format, cfg) in done {
                let closed = self.close_playlist(run, &cfg, format);
                self.after_close(&cfg, closed);
            }
            if n == 0 {
                return;
            }
            if let Some(state) = self.lock_state().as_mut() {
                state.finalizing -= n;
            }
        }
        self.notify();
        self.effects.run();
        self.maybe_forward_eos();
    }

    /// Writes ENDLIST (and the `{end}` name) of one playlist.
    fn close_playlist(&self, mut run: Run, cfg: &Config, format: Format) -> Option<Closed> {
        let reason = run.closing.unwrap_or(CloseReason::Eos).as_str();
        if run.playlist.is_empty() {
            let _ = std::fs::remove_file(&run.path);
            return None;
        }
        run.playlist.end();
        let bytes = run.playlist.render();
        let duration = run.playlist.duration_ns();
        let meta = FileMeta {
            session: run.session,
            index: run.index,
            start_rt: run.start_rt,
            start_wall: run.start_wall,
            video_frames: run.frames.video,
            audio_frames: run.frames.audio,
        };
        let result = (|| -> Result<PathBuf, String> {
            {
                let _w = super::imp::lock(&self.hls_write);
                fsio::write_replacing(&run.path, &bytes).map_err(|e| e.to_string())?;
            }
            if !cfg.template.uses_end() {
                return Ok(run.path.clone());
            }
            let end = wall_at((run.start_rt, run.start_wall), run.start_rt + duration);
            let base = render(cfg, format, &meta, Some(end));
            let ext = format.extension(false);
            if naming::with_extension(&base, ext) == run.path {
                return Ok(run.path.clone());
            }
            let (target, _) = fsio::commit_unique(&run.path, |n| naming::candidate(&base, ext, n))?;
            Ok(target)
        })();
        let location = match result {
            Ok(l) => l,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot finish the playlist {}: {}", run.path.display(), msg]
                );
                return None;
            }
        };
        let location = location.to_string_lossy();
        let size = run.size + bytes.len() as u64;
        let ending = Ending {
            location: &location,
            size,
            duration,
            reason,
        };
        Some(Closed::Recording {
            record: cfg.recorder.record(format.name(), &meta, ending),
            duration,
        })
    }

    /// Stopping (PAUSED→READY): finalises every open file with
    /// `reason=stopped` and every playlist, and waits for them (bounded).
    pub(super) fn stop(&self) {
        let eos = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else { return };
            state.stopping = true;
            state.close_all_now(CloseReason::Stopped)
        };
        self.notify();
        send_eos(eos);
        // Files still waiting for a stream start with what they hold.
        let _ = self.start_ready();

        let deadline = Instant::now() + FINALISE_TIMEOUT;
        loop {
            // Finalise what has drained, here, so that nothing is left behind.
            let drained = {
                let mut guard = self.lock_state();
                let Some(state) = guard.as_mut() else { return };
                let mut list = Vec::new();
                let mut remaining = 0;
                let late = Instant::now() >= deadline;
                for (ci, ch) in state.channels.iter_mut().enumerate() {
                    for f in &mut ch.files {
                        remaining += 1;
                        if f.drained || late {
                            if !f.drained {
                                // Kept as written: readable up to its last fragment.
                                f.reason = Some(CloseReason::Error);
                            }
                            list.push((ci, f.key));
                        }
                    }
                }
                if remaining == 0 && state.finalizing == 0 {
                    // Every segment is written: every playlist ends now.
                    let mut runs = false;
                    for h in state.channels.iter_mut().filter_map(|c| c.hls.as_mut()) {
                        for r in &mut h.runs {
                            runs = true;
                            r.in_flight = 0;
                            r.closing.get_or_insert(CloseReason::Stopped);
                        }
                    }
                    if !runs {
                        break;
                    }
                    drop(guard);
                    self.finish_playlists();
                    continue;
                }
                if list.is_empty() {
                    let timeout = deadline.saturating_duration_since(Instant::now());
                    drop(self.wait(guard, timeout.min(Duration::from_millis(200))));
                    continue;
                }
                list
            };
            if Instant::now() >= deadline {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Close,
                    [
                        "Muxers did not finalise within {:?}; keeping the files as written",
                        FINALISE_TIMEOUT
                    ]
                );
            }
            for (ci, key) in drained {
                self.finalise(ci, key);
            }
        }
        self.effects.run();
    }
}

/// The base name of a file at close, `{end}` resolved.
pub(super) fn render(
    cfg: &Config,
    format: Format,
    meta: &FileMeta,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> PathBuf {
    cfg.template.render(&TemplateVars {
        stream_id: &cfg.recorder.safe_stream_id,
        session: meta.session,
        index: meta.index,
        format: format.name(),
        start: meta.start_wall,
        end,
    })
}
