// SPDX-License-Identifier: MIT OR Apache-2.0
//! Recording callbacks: the after-close step writes a job to the durable
//! outbox (`crate::outbox`) before `file-closed` is posted; a thread of its
//! own (never the streaming thread, no async runtime) delivers the jobs —
//! those left by an earlier run too — and deletes each only after a 2xx.
//! 408, 429, 5xx and network errors are retried with exponential backoff
//! and jitter (honouring `Retry-After`); other statuses, or
//! [`MAX_ATTEMPTS`], give up: the job moves to `failed/` and
//! `liverecordsink-delivery-failed` is posted.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gst::glib;
use gst::subclass::prelude::*;

use super::imp::{LiveRecordSink, CAT};
use super::props::{Callbacks, Signer};
use crate::index::IndexRecord;
use crate::outbox::{self, Job, Outbox, Verdict};

/// Attempts before a job gives up.
pub const MAX_ATTEMPTS: u32 = 10;
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

type Wake = Arc<(Mutex<(bool, bool)>, Condvar)>;

/// The running delivery thread; dropping it stops and joins it (a request
/// in flight finishes first, bounded by the HTTP timeout).
pub struct Deliverer {
    wake: Wake,
    thread: Option<JoinHandle<()>>,
}

impl Deliverer {
    /// New jobs are waiting.
    pub fn wake(&self) {
        let (m, c) = &*self.wake;
        if let Ok(mut g) = m.lock() {
            g.1 = true;
        }
        c.notify_all();
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        let (m, c) = &*self.wake;
        if let Ok(mut g) = m.lock() {
            g.0 = true;
        }
        c.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The job of a `file-closed` callback: the index record plus `event`.
pub fn file_closed_job(record: &IndexRecord) -> Option<Job> {
    let mut payload = serde_json::to_value(record).ok()?;
    payload
        .as_object_mut()?
        .insert("event".into(), "file-closed".into());
    Some(Job {
        id: format!("{}.file-closed", record.file_id),
        kind: "callback".into(),
        payload,
        attempts: 0,
        not_before_ms: 0,
        last_error: None,
    })
}

/// One POST. Returns the status (None: no response) and `Retry-After`.
fn post(agent: &ureq::Agent, cb: &Callbacks, job: &Job) -> (Option<u16>, Option<Duration>, String) {
    let now = (now_ms() / 1000) as i64;
    let mut payload = job.payload.clone();
    if let Signer::Tencent(key) = &cb.signer {
        let t = now + 600;
        if let Some(o) = payload.as_object_mut() {
            o.insert("t".into(), t.into());
            o.insert("sign".into(), crate::signing::tencent_sign(key, t).into());
            o.insert("event_type".into(), 100.into());
        }
    }
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let headers: Vec<(&str, String)> = match &cb.signer {
        Signer::Webhooks(secret) => secret.headers(&job.id, now, &body).to_vec(),
        Signer::None => vec![("webhook-id", job.id.clone())],
        Signer::Tencent(_) => Vec::new(),
    };
    let mut req = agent
        .post(&cb.url)
        .header("content-type", "application/json");
    for (k, v) in &headers {
        req = req.header(*k, v.as_str());
    }
    match req.send(&body[..]) {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(outbox::retry_after);
            (Some(status), retry, format!("HTTP {status}"))
        }
        Err(e) => (None, None, e.to_string()),
    }
}

impl LiveRecordSink {
    /// Opens the outbox and starts the delivery thread, if callbacks are
    /// configured. An unwritable outbox is an error (at READY→PAUSED).
    pub(super) fn start_delivery(&self, cb: &Callbacks) -> Result<Deliverer, String> {
        let outbox = Outbox::open(&cb.outbox_dir)?;
        let wake: Wake = Arc::new((Mutex::new((false, true)), Condvar::new()));
        let weak: glib::WeakRef<super::LiveRecordSink> = self.obj().downgrade();
        let (ob, w, cb) = (outbox, wake.clone(), cb.clone());
        let thread = std::thread::Builder::new()
            .name("liverecord-delivery".into())
            .spawn(move || deliver_loop(&weak, &ob, &w, &cb))
            .map_err(|e| format!("cannot start the delivery thread: {e}"))?;
        Ok(Deliverer {
            wake,
            thread: Some(thread),
        })
    }
}

fn deliver_loop(
    weak: &glib::WeakRef<super::LiveRecordSink>,
    ob: &Outbox,
    wake: &Wake,
    cb: &Callbacks,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into();
    loop {
        let mut next: Option<u64> = None;
        for job in ob.pending().unwrap_or_default() {
            let Ok(mut job) = job else {
                // An unreadable job file is left for an operator.
                continue;
            };
            if job.kind != "callback" {
                continue;
            }
            if job.not_before_ms > now_ms() {
                next = Some(next.map_or(job.not_before_ms, |n| n.min(job.not_before_ms)));
                continue;
            }
            if wake.0.lock().map_or(true, |g| g.0) {
                return;
            }
            let (status, retry_after, what) = post(&agent, cb, &job);
            job.attempts += 1;
            let verdict = match outbox::verdict(status) {
                Verdict::Retry if job.attempts >= MAX_ATTEMPTS => Verdict::GiveUp,
                v => v,
            };
            match verdict {
                Verdict::Delivered => {
                    let _ = ob.done(&job.id);
                }
                Verdict::Retry => {
                    let wait = outbox::backoff(
                        job.attempts - 1,
                        BACKOFF_BASE,
                        BACKOFF_MAX,
                        &job.id,
                        retry_after,
                    );
                    job.not_before_ms = now_ms() + wait.as_millis() as u64;
                    job.last_error = Some(what);
                    let _ = ob.put(&job);
                    next = Some(next.map_or(job.not_before_ms, |n| n.min(job.not_before_ms)));
                }
                Verdict::GiveUp => {
                    job.last_error = Some(what.clone());
                    let kept = ob.fail(&job).ok();
                    if let Some(obj) = weak.upgrade() {
                        let imp = obj.imp();
                        gst::warning!(CAT, imp = imp, "Callback {} gave up: {}", job.id, what);
                        imp.post(
                            gst::Structure::builder("liverecordsink-delivery-failed")
                                .field("job-id", job.id.as_str())
                                .field("kind", job.kind.as_str())
                                .field("attempts", job.attempts)
                                .field("error", what.as_str())
                                .field(
                                    "location",
                                    kept.map(|p| p.to_string_lossy().into_owned())
                                        .unwrap_or_default(),
                                )
                                .build(),
                        );
                    }
                }
            }
        }
        let wait = next.map_or(Duration::from_secs(60), |n| {
            Duration::from_millis(n.saturating_sub(now_ms()).max(10))
        });
        let (m, c) = &**wake;
        let Ok(g) = m.lock() else { return };
        let Ok((mut g, _)) = c.wait_timeout_while(g, wait, |(stop, woken)| !*stop && !*woken)
        else {
            return;
        };
        if g.0 {
            return;
        }
        g.1 = false;
    }
}
