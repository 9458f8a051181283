// SPDX-License-Identifier: MIT OR Apache-2.0
//! What follows a finished upload of a recording (a final file or
//! playlist): an `uploaded` line in the index (object key, URL, ETag), the
//! `liverecordsink-upload-done` message, the `upload-done` callback, and
//! with `upload-delete-local` the local files' deletion — in that order, so
//! the index says where a file is before its local copy goes.

use gst::subclass::prelude::*;

use super::delivery_props::Delivery;
use super::imp::{LiveRecordSink, CAT};
use super::messages;
use super::props::Config;
use super::CallbackEvents;
use crate::index;
use crate::outbox::Outbox;
use crate::retention;
use crate::s3client::UploadJob;

/// The `event` of an upload's index record.
pub const UPLOADED: &str = "uploaded";

impl LiveRecordSink {
    /// An upload finished. An error (the index cannot be written) retries
    /// the job. Called without locks, from the delivery thread.
    pub(super) fn upload_done(
        &self,
        cfg: &Config,
        d: &Delivery,
        (job_id, up): (&str, &UploadJob),
        etag: &str,
        size: u64,
    ) -> Result<(), String> {
        let Some(record) = &up.record else {
            gst::debug!(CAT, imp = self, "Uploaded {} to {}", up.path, up.key);
            return Ok(());
        };
        let Some(upload) = &d.upload else {
            return Ok(());
        };
        let mut rec = record.clone();
        rec.event = Some(UPLOADED.into());
        rec.object_key = Some(up.key.clone());
        rec.object_url = Some(upload.keys.target.object_url(&up.key));
        rec.etag = Some(etag.to_string());
        rec.local_deleted = upload.delete_local;
        if let Some(path) = &cfg.index_path {
            index::append(path, &rec).map_err(|e| format!("cannot append to the index: {e}"))?;
        }
        gst::info!(
            CAT,
            imp = self,
            "Uploaded {} to {} ({} bytes)",
            up.path,
            up.key,
            size
        );
        let duration = (rec.duration * 1e9).round().max(0.0) as u64;
        self.post(messages::file_record(
            "liverecordsink-upload-done",
            &rec,
            duration,
            None,
        ));
        let jobs = self.record_callbacks(d, CallbackEvents::UPLOAD_DONE, "upload-done", &rec);
        self.enqueue(d, jobs, &rec.location);
        if upload.delete_local {
            let playlist = (rec.format == "hls")
                .then(|| std::fs::read(&rec.location).ok())
                .flatten();
            // A file whose own upload waits or gave up stays (an HLS
            // segment that never reached the bucket is not lost).
            let not_uploaded = Outbox::at(&d.outbox_dir).upload_paths(job_id);
            for f in retention::files_of(&rec, playlist.as_deref()) {
                if not_uploaded.contains(f.to_string_lossy().as_ref()) {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Write,
                        ["{} is kept: its own upload has not succeeded", f.display()]
                    );
                    continue;
                }
                match std::fs::remove_file(&f) {
                    Ok(()) => (),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (),
                    Err(e) => gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Write,
                        ["Cannot delete {} after its upload: {}", f.display(), e]
                    ),
                }
            }
        }
        Ok(())
    }
}
