// SPDX-License-Identifier: MIT OR Apache-2.0
//! Retention glue (`storage-period`): a thread of its own (never the
//! streaming thread) runs a pass at start and then every
//! `retention::check_interval`; it stops when the state is dropped. The
//! policy is in `crate::retention`.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use gst::glib;
use gst::subclass::prelude::*;

use super::imp::{LiveRecordSink, CAT};
use super::messages;
use super::props::Config;
use crate::index;
use crate::retention::{self, DELETED};

/// The running retention thread; dropping it stops and joins the thread.
pub struct Retainer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Retainer {
    fn drop(&mut self) {
        let (flag, cond) = &*self.stop;
        if let Ok(mut stop) = flag.lock() {
            *stop = true;
        }
        cond.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread itself may drop the last reference to the element
            // (and so this): it then ends on its own, unjoined.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl LiveRecordSink {
    /// Starts retention if `storage-period` is set. Called without locks.
    pub(super) fn start_retention(&self, cfg: Arc<Config>) -> Option<Retainer> {
        let period = cfg.storage_period?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let weak: glib::WeakRef<super::LiveRecordSink> = self.obj().downgrade();
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("liverecord-retention".into())
            .spawn(move || loop {
                match weak.upgrade() {
                    Some(obj) => obj.imp().retention_pass(&cfg, period),
                    None => return,
                }
                let (flag, cond) = &*s;
                let Ok(guard) = flag.lock() else { return };
                let wait = retention::check_interval(period);
                let Ok((guard, _)) = cond.wait_timeout_while(guard, wait, |stop| !*stop) else {
                    return;
                };
                if *guard {
                    return;
                }
            })
            .ok()?;
        Some(Retainer {
            stop,
            thread: Some(thread),
        })
    }

    /// Deletes what is due; each deletion is indexed, then announced.
    fn retention_pass(&self, cfg: &Config, period: std::time::Duration) {
        let Some(index_path) = &cfg.index_path else {
            return;
        };
        let records = match index::read(index_path) {
            Ok(c) => c.records,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                gst::warning!(CAT, imp = self, "Retention cannot read the index: {e}");
                return;
            }
        };
        let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
        let root = cfg.template.fixed_root();
        let due = retention::due(
            &records,
            &cfg.recorder.stream_id,
            chrono::Utc::now(),
            period,
        );
        for r in due {
            let playlist = (r.format == "hls")
                .then(|| std::fs::read(&r.location).ok())
                .flatten();
            let files = retention::files_of(r, playlist.as_deref());
            let failed: Vec<String> = files
                .iter()
                .filter_map(|f| match std::fs::remove_file(f) {
                    Ok(()) => None,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => Some(format!("{}: {e}", f.display())),
                })
                .collect();
            if !failed.is_empty() {
                // Not recorded as deleted: the next pass tries again.
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ["Retention cannot delete {}", failed.join("; ")]
                );
                continue;
            }
            let mut deleted = r.clone();
            deleted.event = Some(DELETED.into());
            if let Err(e) = index::append(index_path, &deleted) {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ["Retention cannot append to the index: {}", e]
                );
            }
            if let Some(dir) = files.last().and_then(|f| f.parent()) {
                retention::remove_empty_dirs(dir, &root);
            }
            gst::info!(CAT, imp = self, "Retention deleted {}", r.location);
            let duration = (r.duration * 1e9).round().max(0.0) as u64;
            self.post(messages::file_record(
                "liverecordsink-file-deleted",
                &deleted,
                duration,
                None,
            ));
            if let Some(d) = &cfg.delivery {
                let jobs = self.record_callbacks(
                    d,
                    super::CallbackEvents::FILE_DELETED,
                    "file-deleted",
                    &deleted,
                );
                self.enqueue(d, jobs, &deleted.location);
            }
        }
    }
}
