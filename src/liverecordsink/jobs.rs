// SPDX-License-Identifier: MIT OR Apache-2.0
//! The delivery jobs of the after-close steps and of retention: callbacks
//! (`callback-events`) and uploads (a final file or playlist; each HLS
//! segment, then a snapshot of its playlist), written to the durable
//! outbox before anything is announced, then handed to the delivery thread.

use std::path::Path;

use gst::subclass::prelude::*;
use sha2::Digest;

use super::delivery_props::{Delivery, Upload};
use super::finaliser::Closed;
use super::imp::LiveRecordSink;
use super::props::Config;
use super::CallbackEvents;
use crate::index::IndexRecord;
use crate::outbox::{Job, Outbox};
use crate::s3client::UploadJob;

/// A short stable hash of a path, for job ids.
fn path_hash(path: &str) -> String {
    let digest = sha2::Sha256::digest(path.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The callback of `event` with this body (a JSON object) plus `event`.
pub fn callback(event: &str, id: String, body: serde_json::Value) -> Option<Job> {
    let mut payload = body;
    payload
        .as_object_mut()?
        .insert("event".into(), event.into());
    Some(Job::new(id, "callback", payload))
}

/// The callback of `event` for a recording: its index record plus `event`;
/// the id (`webhook-id`) is `<file-id>.<event>`.
pub fn record_callback(event: &str, record: &IndexRecord) -> Option<Job> {
    callback(
        event,
        format!("{}.{event}", record.file_id),
        serde_json::to_value(record).ok()?,
    )
}

/// The upload of a final file or playlist.
pub fn upload_record(up: &Upload, record: &IndexRecord) -> Option<Job> {
    let job = UploadJob {
        path: record.location.clone(),
        key: up
            .keys
            .key(&record.location, &record.format, &record.file_id),
        body: None,
        record: Some(record.clone()),
        multipart: None,
    };
    Some(Job::new(
        format!("{}.upload", record.file_id),
        "upload",
        serde_json::to_value(job).ok()?,
    ))
}

/// The upload of an HLS segment (`{file_id}` is the segment's file stem).
pub fn upload_segment(up: &Upload, segment: &Path) -> Option<Job> {
    let path = segment.to_string_lossy();
    let stem = segment.file_stem()?.to_string_lossy();
    let job = UploadJob {
        path: path.to_string(),
        key: up.keys.key(&path, "hls", &stem),
        body: None,
        record: None,
        multipart: None,
    };
    Some(Job::new(
        format!("seg-{}.upload", path_hash(&path)),
        "upload",
        serde_json::to_value(job).ok()?,
    ))
}

/// The upload of a playlist as just written, `text` (after its segments'
/// uploads). `{file_id}` is the playlist's file stem.
pub fn upload_playlist_snapshot(
    up: &Upload,
    playlist: &Path,
    text: &[u8],
    seq: u64,
) -> Option<Job> {
    let path = playlist.to_string_lossy();
    let stem = playlist.file_stem()?.to_string_lossy();
    let text = String::from_utf8(text.to_vec()).ok()?;
    let job = UploadJob {
        path: path.to_string(),
        key: up.keys.key(&path, "hls", &stem),
        body: Some(text),
        record: None,
        multipart: None,
    };
    Some(Job::new(
        format!("pl-{}-{seq}.upload", path_hash(&path)),
        "upload",
        serde_json::to_value(job).ok()?,
    ))
}

/// Whether an upload job is a playlist snapshot that a later job of the
/// same playlist makes useless.
pub fn superseded(job: &Job, later: &[Job]) -> bool {
    let is_snapshot = |j: &Job| j.kind == "upload" && j.id.starts_with("pl-");
    let path = |j: &Job| j.payload.get("path").cloned();
    is_snapshot(job)
        && later
            .iter()
            .any(|l| l.seq > job.seq && is_snapshot(l) && path(l) == path(job))
}

/// The segment-added callback's body.
pub fn segment_body(
    stream_id: &str,
    location: &str,
    playlist: &str,
    duration_ns: u64,
    sequence: u64,
    discontinuity: bool,
    size: u64,
) -> serde_json::Value {
    serde_json::json!({
        "stream-id": stream_id,
        "location": location,
        "playlist": playlist,
        "duration": crate::index::seconds_ms(duration_ns),
        "sequence": sequence,
        "discontinuity": discontinuity,
        "size": size,
    })
}

/// The id of a segment's callback.
pub fn segment_callback_id(location: &str) -> String {
    format!("seg-{}.segment-added", path_hash(location))
}

/// Queues the deliveries of a closed recording in the durable outbox
/// (before the message is posted) and wakes the delivery thread: the
/// `file-closed` / `segment-added` callbacks and the uploads (each segment,
/// then the playlist as it is now; a final file or playlist).
pub(super) fn delivery_step(imp: &LiveRecordSink, cfg: &Config, closed: &Closed) {
    let Some(d) = &cfg.delivery else { return };
    let mut queued = Vec::new();
    let what = match closed {
        Closed::Recording { record, .. } => {
            queued.extend(imp.record_callbacks(
                d,
                CallbackEvents::FILE_CLOSED,
                "file-closed",
                record,
            ));
            if let Some(up) = &d.upload {
                queued.extend(upload_record(up, record));
            }
            record.location.clone()
        }
        Closed::Segments {
            added,
            playlist,
            text,
            ..
        } => {
            let pl = playlist.to_string_lossy();
            for (a, seg) in added {
                if let Some(up) = &d.upload {
                    queued.extend(upload_segment(up, &seg.path));
                }
                if d.calls_back(CallbackEvents::SEGMENT_ADDED) {
                    let loc = seg.path.to_string_lossy();
                    let body = segment_body(
                        &cfg.recorder.stream_id,
                        &loc,
                        &pl,
                        seg.duration,
                        a.sequence,
                        a.discontinuity,
                        seg.size,
                    );
                    queued.extend(callback("segment-added", segment_callback_id(&loc), body));
                }
            }
            if let (Some(up), Some((a, _))) = (&d.upload, added.last()) {
                queued.extend(upload_playlist_snapshot(up, playlist, text, a.sequence));
            }
            pl.into_owned()
        }
        Closed::Discarded { .. } => return,
    };
    imp.enqueue(d, queued, &what);
}

impl LiveRecordSink {
    /// Writes jobs to the outbox (an error is an element error naming
    /// `what`), then wakes the delivery thread. Called without locks.
    pub(super) fn enqueue(&self, d: &Delivery, jobs: Vec<Job>, what: &str) {
        if jobs.is_empty() {
            return;
        }
        let ob = Outbox::at(&d.outbox_dir);
        for job in &jobs {
            if let Err(e) = ob.put(job) {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ["Cannot queue the {} of {}: {}", job.kind, what, e]
                );
                return;
            }
        }
        self.wake_delivery();
    }

    /// Wakes the delivery thread, if it runs.
    pub(super) fn wake_delivery(&self) {
        if let Some(d) = self.lock_state().as_ref().and_then(|s| s.delivery.as_ref()) {
            d.wake();
        }
    }

    /// The callback jobs of `event` for a record, if configured.
    pub(super) fn record_callbacks(
        &self,
        d: &Delivery,
        event: CallbackEvents,
        name: &str,
        record: &IndexRecord,
    ) -> Vec<Job> {
        if d.calls_back(event) {
            record_callback(name, record).into_iter().collect()
        } else {
            Vec::new()
        }
    }
}
