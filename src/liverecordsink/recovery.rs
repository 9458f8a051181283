// SPDX-License-Identifier: MIT OR Apache-2.0
//! Crash recovery at start (READY→PAUSED, after the stream's lock is taken,
//! before anything is recorded): every recording the journal lists as open
//! (`crate::journal`) that was not finished is made final through the same
//! after-close steps as any file:
//!
//! - a file's `.part` is cut back to its last complete unit
//!   (`crate::salvage`), measured from its contents (`measure.rs`), renamed
//!   to its final name and indexed with `reason=recovered`; one that cannot
//!   be read is set aside as `NAME.EXT.broken` and announced with
//!   `file-discarded`, never indexed;
//! - an HLS playlist gets the complete segments found after its last listed
//!   one (a readable `.ts.part` included) and `#EXT-X-ENDLIST`, and is
//!   indexed with `reason=recovered`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gst::subclass::prelude::*;

use super::failures::set_aside;
use super::finaliser::{render, Closed};
use super::imp::{LiveRecordSink, CAT};
use super::measure::{measure, Measured};
use super::props::Config;
use crate::format::Format;
use crate::index::Resume;
use crate::journal::{self, Entry, Kind};
use crate::record::{Ending, FileMeta};
use crate::{fsio, hls, naming, readable, salvage};

/// How long reading one leftover may take.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(30);

fn format_named(name: &str) -> Option<Format> {
    Format::ALL.into_iter().find(|f| f.name() == name)
}

fn meta_of(e: &Entry, m: &Measured) -> FileMeta {
    let start_wall = DateTime::parse_from_rfc3339(&e.start_time)
        .map(|t| t.to_utc())
        .unwrap_or_else(|_| Utc::now());
    FileMeta {
        session: e.session_id,
        index: e.index,
        start_rt: e.start_running_time,
        start_wall,
        video_frames: m.video_frames,
        audio_frames: m.audio_frames,
    }
}

/// A leftover file made readable and measured, or why it is not readable.
fn salvage_file(part: &Path, format: Format) -> Result<Measured, String> {
    let len = salvage::truncate_to_complete(part, format)
        .map_err(|e| format!("{}: {e}", part.display()))?;
    if len == 0 {
        return Err("nothing complete was written".into());
    }
    readable::check(part, format)?;
    if format == Format::Mp4 {
        // qtdemux stops a fragmented leftover at its first fragment: the
        // boxes are counted instead, and the announced duration fixed.
        return match crate::mp4frag::measure_and_fix(part) {
            Ok(Some(c)) if c.video_frames + c.audio_frames > 0 => Ok(Measured {
                video_frames: c.video_frames,
                audio_frames: c.audio_frames,
                duration_ns: c.duration_ns,
            }),
            Ok(_) => Err("no frame can be read".into()),
            Err(e) => Err(format!("{}: {e}", part.display())),
        };
    }
    measure(part, MEASURE_TIMEOUT)
}

impl LiveRecordSink {
    /// Recovers what the journal lists as open, then empties it, and makes
    /// numbering continue after every leftover, recovered or set aside (so
    /// no `{index}` is used twice). Called without locks, with the stream's
    /// lock held.
    pub(super) fn recover(&self, cfg: &Config, resume: &mut Resume) -> Result<(), String> {
        let (entries, bad) = journal::read(&cfg.journal_path)
            .map_err(|e| format!("{}: {e}", cfg.journal_path.display()))?;
        if bad > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "{} line(s) of {} cut short by a crash: skipped",
                bad,
                cfg.journal_path.display()
            );
        }
        for e in &entries {
            resume.next_session = resume.next_session.max(e.session_id.saturating_add(1));
            let next = resume.next_index.entry(e.format.clone()).or_insert(1);
            *next = (*next).max(e.index.saturating_add(1));
            let closed = match e.kind {
                Kind::File => self.recover_file(cfg, e),
                Kind::Playlist => self.recover_playlist(cfg, e),
            };
            if let Some(closed) = closed {
                self.after_close(cfg, Some(closed));
            }
        }
        if !entries.is_empty() || bad > 0 {
            journal::clear(&cfg.journal_path)?;
        }
        self.effects.run();
        Ok(())
    }

    fn recover_file(&self, cfg: &Config, e: &Entry) -> Option<Closed> {
        let format = format_named(&e.format)?;
        let part = &e.path;
        if !part.exists() {
            // Finished normally.
            return None;
        }
        gst::info!(CAT, imp = self, "Recovering {}", part.display());
        let ext = format.extension(e.audio_only);
        match salvage_file(part, format) {
            Ok(m) => {
                let meta = meta_of(e, &m);
                let end = crate::session::wall_at(
                    (meta.start_rt, meta.start_wall),
                    meta.start_rt + m.duration_ns,
                );
                let base = render(cfg, format, &meta, Some(end));
                let (target, size) =
                    match fsio::commit_unique(part, |n| naming::candidate(&base, ext, n)) {
                        Ok(t) => t,
                        Err(msg) => {
                            gst::element_imp_warning!(
                                self,
                                gst::ResourceError::Write,
                                ["Cannot recover {}: {}", part.display(), msg]
                            );
                            return None;
                        }
                    };
                let location = target.to_string_lossy();
                let record = cfg.recorder.record(
                    format.name(),
                    &meta,
                    Ending {
                        location: &location,
                        size,
                        duration: m.duration_ns,
                        reason: "recovered",
                    },
                );
                Some(Closed::Recording {
                    record,
                    duration: m.duration_ns,
                })
            }
            Err(why) => Some(self.discard_leftover(cfg, e, format, part, why)),
        }
    }

    /// An unreadable leftover: set aside, announced, never indexed.
    fn discard_leftover(
        &self,
        cfg: &Config,
        e: &Entry,
        format: Format,
        part: &Path,
        why: String,
    ) -> Closed {
        let (aside, size) = set_aside(part);
        gst::warning!(
            CAT,
            imp = self,
            "Leftover {} is not readable ({}): set aside as {}",
            part.display(),
            why,
            aside.display()
        );
        let location = aside.to_string_lossy();
        let record = cfg.recorder.record(
            format.name(),
            &meta_of(e, &Measured::default()),
            Ending {
                location: &location,
                size,
                duration: 0,
                reason: "recovered",
            },
        );
        Closed::Discarded {
            record,
            duration: 0,
            why: format!("not readable after a crash: {why}"),
        }
    }

    fn recover_playlist(&self, cfg: &Config, e: &Entry) -> Option<Closed> {
        let base = e.base.as_ref()?;
        let existing = std::fs::read(&e.path).ok();
        if existing
            .as_deref()
            .is_some_and(|b| String::from_utf8_lossy(b).contains("#EXT-X-ENDLIST"))
        {
            return None;
        }
        gst::info!(
            CAT,
            imp = self,
            "Recovering the playlist {}",
            e.path.display()
        );
        if existing.is_none() && !naming::segment_path(base, 0, true).exists() {
            // Never written (or finished and renamed by an `{end}` template):
            // a playlist is made only around a first segment cut short.
            return None;
        }
        let listed = existing
            .as_deref()
            .and_then(|b| m3u8_rs::parse_media_playlist_res(b).ok())
            .map_or(0, |p| p.segments.len() as u64);
        // Complete segments after the listed ones; a readable `.ts.part`.
        let mut extra = Vec::new();
        let mut measured = std::collections::HashMap::new();
        let mut seq = listed;
        loop {
            let done = naming::segment_path(base, seq, false);
            let part = naming::segment_path(base, seq, true);
            let found = if done.exists() {
                measure(&done, MEASURE_TIMEOUT).map_err(|w| (done.clone(), w))
            } else if part.exists() {
                match salvage_file(&part, Format::Hls) {
                    Ok(m) => fsio::commit(&part, &done).map(|_| m).map_err(|w| (part, w)),
                    Err(w) => Err((part, w)),
                }
            } else {
                break;
            };
            match found {
                Ok(m) => {
                    extra.push((file_name(&done), m.duration_ns));
                    measured.insert(file_name(&done), m);
                }
                Err((path, why)) => {
                    let closed = self.discard_leftover(cfg, e, Format::Hls, &path, why);
                    self.after_close(cfg, Some(closed));
                    break;
                }
            }
            seq += 1;
        }
        if existing.is_none() && extra.is_empty() {
            return None;
        }
        let start = meta_of(e, &Measured::default()).start_wall;
        let rec = match hls::recover(existing.as_deref(), &extra, e.segment_target_ns, start) {
            Ok(r) => r,
            Err(why) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    ["Cannot recover the playlist {}: {}", e.path.display(), why]
                );
                return None;
            }
        };
        // Frames and sizes are measured from the segments themselves.
        let dir = e.path.parent().unwrap_or(Path::new("."));
        let mut total = Measured::default();
        let mut size = rec.text.len() as u64;
        for uri in &rec.uris {
            let seg = dir.join(uri);
            size += std::fs::metadata(&seg).map_or(0, |m| m.len());
            let m = match measured.remove(uri) {
                Some(m) => Ok(m),
                None => measure(&seg, MEASURE_TIMEOUT),
            };
            if let Ok(m) = m {
                total.video_frames += m.video_frames;
                total.audio_frames += m.audio_frames;
            }
        }
        if let Err(err) = fsio::write_replacing(&e.path, &rec.text) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ["Cannot recover the playlist {}: {}", e.path.display(), err]
            );
            return None;
        }
        let location = e.path.to_string_lossy();
        let record = cfg.recorder.record(
            "hls",
            &meta_of(e, &total),
            Ending {
                location: &location,
                size,
                duration: rec.duration_ns,
                reason: "recovered",
            },
        );
        Some(Closed::Recording {
            record,
            duration: rec.duration_ns,
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
