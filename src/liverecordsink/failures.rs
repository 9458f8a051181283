// SPDX-License-Identifier: MIT OR Apache-2.0
//! When writing fails: a writer's error (a full disk, an unwritable file)
//! stops its channel and is reported naming the file; files whose writer
//! never started are dropped; unreadable files are set aside.

use std::path::PathBuf;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::channel::{Channel, FileKind};
use super::datapath::send_eos;
use super::hlsrun::Finished;
use super::imp::LiveRecordSink;
use crate::rotation::{CloseReason, Key};

impl LiveRecordSink {
    /// The channel and key of the file whose writer is or contains `src`.
    pub(super) fn writer_of(&self, src: &gst::Object) -> Option<(usize, Key)> {
        let guard = self.lock_state();
        let state = guard.as_ref()?;
        for (ci, ch) in state.channels.iter().enumerate() {
            for f in &ch.files {
                let Some(w) = &f.writer else { continue };
                if src == w.bin.upcast_ref::<gst::Object>() || src.has_as_ancestor(&w.bin) {
                    return Some((ci, f.key));
                }
            }
        }
        None
    }

    /// Whether `src` is inside one of this element's writer bins.
    pub(super) fn is_writer_element(&self, src: &gst::Object) -> bool {
        let me = self.obj();
        let mut cur = Some(src.clone());
        while let Some(o) = cur {
            let parent = o.parent();
            if o.name().starts_with("writer-")
                && parent.as_ref() == Some(me.upcast_ref::<gst::Object>())
            {
                return true;
            }
            cur = parent;
        }
        false
    }

    /// A writer failed (disk full, muxer error): its channel stops writing
    /// (its other files close, no new ones open), its file is finalised as
    /// written (kept only if readable), and an element error names the file.
    /// Returns whether `src` was a writer.
    pub(super) fn writer_failed(&self, src: &gst::Object, what: &str) -> bool {
        let Some((ci, key)) = self.writer_of(src) else {
            return false;
        };
        let taken = {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                return true;
            };
            let Some(ch) = state.channels.get_mut(ci) else {
                return true;
            };
            let first = !std::mem::replace(&mut ch.failed, true);
            ch.timeline.close_all();
            if let Some(h) = ch.hls.as_mut() {
                h.close_open(CloseReason::Error);
            }
            let streams = ch.streams();
            let mut eos = Vec::new();
            for f in ch.files.iter_mut().filter(|f| f.key != key) {
                eos.extend(f.finish(&streams, Some(CloseReason::Error)));
            }
            let part = ch.file_mut(key).map(|f| {
                f.reason = Some(CloseReason::Error);
                f.part_path.clone()
            });
            // Files whose writer never started have nothing on disk.
            let unstarted: Vec<Key> = ch
                .files
                .iter()
                .filter(|f| f.writer.is_none() && !f.starting)
                .map(|f| f.key)
                .collect();
            (part, eos, first, unstarted)
        };
        let (part, eos, first, unstarted) = taken;
        send_eos(eos);
        for k in unstarted {
            self.drop_unstarted(ci, k, false);
        }
        if first {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                [
                    "Cannot write {}: {}",
                    part.map(|p| p.display().to_string()).unwrap_or_default(),
                    what
                ]
            );
        }
        self.writer_drained(ci, key);
        true
    }

    /// A writer could not start: its file is dropped (a segment keeps its
    /// place in the playlist order, as a skipped one) and the channel waits
    /// for the next keyframe.
    pub(super) fn writer_not_started(&self, ci: usize, key: Key) {
        self.drop_unstarted(ci, key, true);
    }

    /// Drops a file that never got a writer; with `restart`, the channel
    /// waits for the next keyframe.
    pub(super) fn drop_unstarted(&self, ci: usize, key: Key, restart: bool) {
        {
            let mut guard = self.lock_state();
            if let Some(ch) = guard.as_mut().and_then(|s| s.channels.get_mut(ci)) {
                let failed = ch.files.iter().position(|f| f.key == key);
                if let Some(f) = failed.map(|i| ch.files.remove(i)) {
                    if let (FileKind::Segment { run, seq, .. }, Some(h)) = (f.kind, ch.hls.as_mut())
                    {
                        if let Some(run) = h.run_mut(run) {
                            run.add_in_order(seq, Finished::failed());
                        }
                    }
                }
                if restart {
                    ch.timeline.close_all();
                }
            }
        }
        self.notify();
    }
}

/// A channel that cannot go on (its format cannot hold new caps): it stops
/// taking frames, its files close now with `reason`, its playlist ends.
/// Returns the writer pads that must get EOS and the files that never got
/// a writer (to drop, `LiveRecordSink::drop_unstarted`).
pub(super) fn retire_channel(ch: &mut Channel, reason: CloseReason) -> (Vec<gst::Pad>, Vec<Key>) {
    ch.failed = true;
    ch.timeline.close_all();
    if let Some(h) = ch.hls.as_mut() {
        h.close_open(reason);
    }
    let streams = ch.streams();
    let unstarted = ch
        .files
        .iter()
        .filter(|f| f.writer.is_none() && !f.starting)
        .map(|f| f.key)
        .collect();
    let eos = ch
        .files
        .iter_mut()
        .flat_map(|f| f.finish(&streams, Some(reason)))
        .collect();
    (eos, unstarted)
}

/// Sets an unreadable `.part` aside as `NAME.EXT.broken`, or deletes it
/// when empty. Returns where it is (or was) and its size.
pub(super) fn set_aside(part: &std::path::Path) -> (PathBuf, u64) {
    let size = std::fs::metadata(part).map_or(0, |m| m.len());
    if size == 0 {
        let _ = std::fs::remove_file(part);
        return (part.to_path_buf(), 0);
    }
    let aside = part.with_extension("broken");
    match std::fs::rename(part, &aside) {
        Ok(()) => (aside, size),
        Err(_) => (part.to_path_buf(), size),
    }
}
