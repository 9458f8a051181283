// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HLS channel of the element: segments opening in playlists, breaks
//! and their resume timeout, segments added in order, playlists ending.
//! The playlist model itself is `crate::hls`; the channel state is
//! `super::super::hlsrun`.

use super::*;

impl LiveRecordSink {
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
            .last_data
            .map(|t| t + gst::ClockTime::from_nseconds(resume_ns));
        let clock = state.clock.clone();
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
            let id = clock.new_single_shot_id(target);
            let weak = self.obj().downgrade();
            let res = id.wait_async(move |_, _, _| {
                if let Some(obj) = weak.upgrade() {
                    obj.call_async(move |obj| obj.imp().hls_expired(ci));
                }
            });
            if res.is_ok() {
                hls.expiry = Some(id);
            }
        }
    }

    /// The resume timeout expired with no data: the playlist ends now.
    pub(super) fn hls_expired(&self, ci: usize) {
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

    /// Ends every playlist that is closing and has all its segments.
    pub(super) fn finish_playlists(&self) {
        // Taking and ending playlists is one step for one thread at a time,
        // so that they end (and are indexed) in recording order.
        let _order = lock(&self.finishing);
        let done: Vec<(Run, Format, Arc<Config>)> = {
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
            self.finish_run(run, &cfg, format);
        }
        if n > 0 {
            if let Some(state) = self.lock_state().as_mut() {
                state.finalizing -= n;
            }
            self.notify();
            self.maybe_forward_eos();
        }
    }

    /// Writes ENDLIST, indexes and announces one playlist.
    pub(super) fn finish_run(&self, mut run: Run, cfg: &Config, format: Format) {
        let reason = run.closing.unwrap_or(CloseReason::Eos);
        if run.playlist.is_empty() {
            let _ = std::fs::remove_file(&run.path);
            return;
        }
        run.playlist.end();
        let bytes = run.playlist.render();
        let duration = run.playlist.duration_ns();
        let mut location = run.path.clone();
        let result = (|| -> Result<(), String> {
            {
                let _w = lock(&self.hls_write);
                crate::hls::write_atomic(&run.path, &bytes).map_err(|e| e.to_string())?;
            }
            if cfg.template.uses_end() {
                let end = wall_at((run.start_rt, run.start_wall), run.start_rt + duration);
                let base = cfg.template.render(&TemplateVars {
                    stream_id: &cfg.safe_stream_id,
                    session: run.session,
                    index: run.index,
                    format: format.name(),
                    start: run.start_wall,
                    end: Some(end),
                });
                let target = with_extension(&base, format.extension(false));
                if target != run.path && !target.exists() {
                    std::fs::rename(&run.path, &target).map_err(|e| {
                        format!(
                            "cannot rename {} to {}: {e}",
                            run.path.display(),
                            target.display()
                        )
                    })?;
                    location = target;
                }
            }
            Ok(())
        })();
        if let Err(msg) = result {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ["Cannot finish the playlist {}: {}", run.path.display(), msg]
            );
            return;
        }
        let size = run.size + bytes.len() as u64;
        let meta = FileMeta {
            session: run.session,
            index: run.index,
            start_rt: run.start_rt,
            start_wall: run.start_wall,
            frames: run.frames,
        };
        let loc = location.to_string_lossy().into_owned();
        let record = make_record(cfg, format, &meta, &loc, size, duration, reason);
        self.index_and_announce(cfg, &record, duration);
    }

    /// Adds a finished segment to its playlist and rewrites the playlist.
    pub(super) fn close_segment(&self, ci: usize, file: OpenFile) {
        let Some(run_id) = file.run else { return };
        let part = file.part_path.clone();
        let final_path = part.with_extension("");
        let result = (|| -> Result<u64, String> {
            let f = std::fs::File::open(&part).map_err(|e| io_error(&part, &e))?;
            f.sync_all().map_err(|e| io_error(&part, &e))?;
            let size = f.metadata().map_err(|e| io_error(&part, &e))?.len();
            std::fs::rename(&part, &final_path).map_err(|e| {
                format!(
                    "cannot rename {} to {}: {e}",
                    part.display(),
                    final_path.display()
                )
            })?;
            Ok(size)
        })();
        let size = match result {
            Ok(size) => size,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot finish the segment {}: {}", part.display(), msg]
                );
                0
            }
        };
        let uri = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let done = Finished {
            uri,
            path: final_path,
            // EXTINF runs to the next segment's start, so that the
            // durations add up to the timeline.
            duration: file
                .cut_rt
                .unwrap_or(file.end_rt)
                .saturating_sub(file.start_rt),
            program_date_time: file.start_wall,
            discontinuity: file.discontinuity,
            size,
            frames: file.frames,
        };
        let w = lock(&self.hls_write);
        let (added, written) = {
            let mut guard = self.lock_state();
            let Some(run) = guard
                .as_mut()
                .and_then(|s| s.channels.get_mut(ci))
                .and_then(|c| c.hls.as_mut())
                .and_then(|h| h.run_mut(run_id))
            else {
                return;
            };
            // Segments are listed in sequence order, whatever order their
            // writers finish in.
            let added = run.add_in_order(file.seq, done);
            // The playlist cannot end before these segments are announced.
            run.announcing += 1;
            let written = (!added.is_empty()).then(|| {
                (
                    run.playlist.render(),
                    run.path.clone(),
                    run.playlist.target_duration(),
                )
            });
            (added, written)
        };
        if let Some((bytes, playlist, target)) = written {
            self.announce_segments(w, added, &bytes, &playlist, target);
        } else {
            drop(w);
        }
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

    /// Writes the playlist (under `w`, the playlist write lock), then posts
    /// `hls-segment-added` for the segments just added, with no lock held.
    pub(super) fn announce_segments(
        &self,
        w: MutexGuard<'_, ()>,
        added: Vec<(crate::hls::Added, Finished)>,
        bytes: &[u8],
        playlist: &Path,
        target: Option<u64>,
    ) {
        if let Err(e) = crate::hls::write_atomic(playlist, bytes) {
            drop(w);
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ["Cannot write the playlist: {}", e]
            );
            return;
        }
        drop(w);
        for (added, seg) in added {
            if added.over_target {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    [
                        "HLS segment {} lasts {:.3} s, longer than the playlist's target duration {} s: keyframes are further apart than when the playlist started",
                        seg.uri,
                        seg.duration as f64 / 1e9,
                        target.unwrap_or(0)
                    ]
                );
            }
            self.post(
                gst::Structure::builder("liverecordsink-hls-segment-added")
                    .field("location", seg.path.to_string_lossy().as_ref())
                    .field("playlist", playlist.to_string_lossy().as_ref())
                    .field("duration", gst::ClockTime::from_nseconds(seg.duration))
                    .field("sequence", added.sequence)
                    .field("discontinuity", added.discontinuity)
                    .field("size", seg.size)
                    .build(),
            );
        }
    }
}

/// Records a new HLS segment, in the open playlist or in a new one.
#[allow(clippy::too_many_arguments)]
pub(super) fn open_segment(
    cfg: &Config,
    session: u64,
    start_wall: DateTime<Utc>,
    ch: &mut Channel,
    key: Key,
    rt: u64,
    dts_rt: Option<u64>,
    has: [bool; 2],
) {
    let format = ch.format;
    let Some(hls) = ch.hls.as_mut() else { return };
    let mut discontinuity = false;
    if let Some(start) = hls.break_start {
        // Data resumed: within the resume timeout the playlist goes on.
        let expired = rt.saturating_sub(start) > cfg.hls_resume_ns;
        hls.cancel_break();
        if let Some(run) = hls.open_run_mut() {
            if expired {
                run.closing = Some(CloseReason::HlsTimeout);
            } else {
                discontinuity = run.next_seq > 0;
            }
        }
    }
    let mut announce = None;
    if hls.open_run_mut().is_none() {
        let mut index = ch.next_index;
        let base = loop {
            let base = cfg.template.render(&TemplateVars {
                stream_id: &cfg.safe_stream_id,
                session,
                index,
                format: format.name(),
                start: start_wall,
                end: None,
            });
            if !with_extension(&base, format.extension(false)).exists() {
                break base;
            }
            index += 1;
        };
        ch.next_index = index + 1;
        let path = with_extension(&base, format.extension(false));
        announce = Some(path.clone());
        hls.next_id += 1;
        hls.runs.push(Run {
            id: hls.next_id,
            playlist: crate::hls::Playlist::new(cfg.hls_segment_ns),
            path,
            base,
            session,
            index,
            start_rt: rt,
            start_wall,
            base_rt: dts_rt.filter(|_| has[0]).map_or(rt, |d| d.min(rt)),
            next_seq: 0,
            in_flight: 0,
            closing: None,
            size: 0,
            frames: [0, 0],
            audio_only: !has[0],
            finished: Default::default(),
            next_add: 0,
            announcing: 0,
        });
    }
    let Some(run) = hls.open_run_mut() else {
        return;
    };
    let seq = run.next_seq;
    run.next_seq += 1;
    run.in_flight += 1;
    let mut name = run.base.as_os_str().to_os_string();
    name.push(format!("_{seq:05}.ts.{PART_SUFFIX}"));
    ch.files.push(OpenFile {
        key,
        writer: None,
        session: run.session,
        index: run.index,
        part_path: PathBuf::from(name),
        audio_only: run.audio_only,
        start_rt: rt,
        base_rt: run.base_rt,
        end_rt: rt,
        start_wall,
        frames: [0, 0],
        has,
        caps_sent: [false, false],
        eos_wanted: [false, false],
        eos_sent: [false, false],
        drained: false,
        reason: None,
        run: Some(run.id),
        seq,
        discontinuity,
        cut_rt: None,
        announce,
    });
}
