// SPDX-License-Identifier: MIT OR Apache-2.0
//! The delivery thread: callbacks and uploads from the durable outbox
//! (`crate::outbox`). The after-close steps write jobs before anything is
//! announced; this thread (never the streaming thread, no async runtime)
//! delivers them — those left by an earlier run too — and deletes each only
//! after success. 408, 429, 5xx and network errors are retried with
//! exponential backoff and jitter (honouring `Retry-After`); other
//! statuses, or `delivery-max-attempts` failures in a row, give up: the job
//! moves to `failed/` (a multipart upload is aborted) and
//! `liverecordsink-delivery-failed` is posted.
//!
//! Uploads go one at a time in the order they were made (a segment before
//! the playlist that lists it): while the first waits for a retry, later
//! uploads wait too. Callbacks do not wait for uploads.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::glib;
use gst::subclass::prelude::*;

use super::delivery_props::{Callbacks, Delivery, Signer};
use super::imp::{LiveRecordSink, CAT};
use super::jobs;
use super::props::Config;
use crate::outbox::{self, Job, Outbox, Verdict};
use crate::s3client::{Attempt, UploadJob, S3};

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// At stop, jobs due are tried once more for at most this long.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What the thread is told.
#[derive(Default)]
struct Signal {
    woken: bool,
    /// Stop after one more pass over the jobs due, not past this instant.
    stop_by: Option<Instant>,
}

type Wake = Arc<(Mutex<Signal>, Condvar)>;

/// The running delivery thread; dropping it makes one last pass over the
/// jobs due (at most [`DRAIN`], so that what was just closed goes out
/// before an application exits; nothing waits for a backoff), then stops
/// and joins it (a request in flight finishes first, bounded by the HTTP
/// timeouts). What is left is delivered at the next start.
pub struct Deliverer {
    wake: Wake,
    thread: Option<JoinHandle<()>>,
}

impl Deliverer {
    /// New jobs are waiting.
    pub fn wake(&self) {
        let (m, c) = &*self.wake;
        if let Ok(mut g) = m.lock() {
            g.woken = true;
        }
        c.notify_all();
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        let (m, c) = &*self.wake;
        if let Ok(mut g) = m.lock() {
            g.stop_by = Some(Instant::now() + DRAIN);
        }
        c.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread itself may drop the last reference to the element
            // (and so this): it then ends on its own, unjoined.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Past the stop's deadline: nothing more is tried.
fn stopped(wake: &Wake) -> bool {
    wake.0
        .lock()
        .map_or(true, |g| g.stop_by.is_some_and(|t| Instant::now() >= t))
}

/// Stopping: the pass under way is the last.
fn stopping(wake: &Wake) -> bool {
    wake.0.lock().map_or(true, |g| g.stop_by.is_some())
}

/// What became of a job.
enum Outcome {
    Delivered,
    Retry(String, Option<Duration>),
    GiveUp(String),
    /// The element is stopping: the job stays as it is.
    Stopped,
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

/// What the thread works with.
struct Worker {
    weak: glib::WeakRef<super::LiveRecordSink>,
    cfg: Arc<Config>,
    d: Delivery,
    ob: Outbox,
    s3: Option<S3>,
    http: ureq::Agent,
    wake: Wake,
}

impl LiveRecordSink {
    /// Opens the outbox and starts the delivery thread (callbacks or
    /// uploads are configured). An unwritable outbox is an error.
    pub(super) fn start_delivery(&self, cfg: Arc<Config>) -> Result<Option<Deliverer>, String> {
        let Some(d) = cfg.delivery.clone() else {
            return Ok(None);
        };
        let ob = Outbox::open(&d.outbox_dir)?;
        let s3 = match &d.upload {
            Some(u) => Some(S3::new(
                &u.keys.target,
                &u.access_key,
                &u.secret_key,
                u.session_token.as_deref(),
            )?),
            None => None,
        };
        let wake: Wake = Arc::new((
            Mutex::new(Signal {
                woken: true,
                stop_by: None,
            }),
            Condvar::new(),
        ));
        let worker = Worker {
            weak: self.obj().downgrade(),
            cfg,
            d,
            ob,
            s3,
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(HTTP_TIMEOUT))
                .build()
                .into(),
            wake: wake.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("liverecord-delivery".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the delivery thread: {e}"))?;
        Ok(Some(Deliverer {
            wake,
            thread: Some(thread),
        }))
    }
}

impl Worker {
    fn run(&self) {
        loop {
            let Some((next, delivered)) = self.pass() else {
                return;
            };
            if stopping(&self.wake) {
                // Once more while passes deliver (an upload's upload-done
                // callback is queued during the pass), within the deadline.
                if delivered > 0 {
                    continue;
                }
                return;
            }
            let wait = next.map_or(Duration::from_secs(60), |n| {
                Duration::from_millis(n.saturating_sub(now_ms()).max(10))
            });
            let (m, c) = &*self.wake;
            let Ok(g) = m.lock() else { return };
            let Ok((mut g, _)) = c.wait_timeout_while(g, wait, |s| s.stop_by.is_none() && !s.woken)
            else {
                return;
            };
            // Woken to stop: one more pass, then out.
            g.woken = false;
        }
    }

    /// One pass over the jobs due. None: stopped; else when the next job
    /// is due (Unix ms), if any waits, and how many were delivered.
    fn pass(&self) -> Option<(Option<u64>, usize)> {
        let mut delivered = 0;
        let pending: Vec<Job> = self
            .ob
            .pending()
            .unwrap_or_default()
            .into_iter()
            // An unreadable job file is left for an operator.
            .flatten()
            .collect();
        let mut next: Option<u64> = None;
        let mut uploads_wait = false;
        for (i, job) in pending.iter().enumerate() {
            if stopped(&self.wake) {
                return None;
            }
            let is_upload = job.kind == "upload";
            if is_upload && uploads_wait {
                continue;
            }
            if job.not_before_ms > now_ms() {
                next = Some(next.map_or(job.not_before_ms, |n| n.min(job.not_before_ms)));
                uploads_wait |= is_upload;
                continue;
            }
            if jobs::superseded(job, &pending[i + 1..]) {
                let _ = self.ob.done(&job.id);
                continue;
            }
            let mut job = job.clone();
            let outcome = match (job.kind.as_str(), &self.d.callbacks, &self.s3) {
                ("callback", Some(cb), _) => self.callback(cb, &mut job),
                ("upload", _, Some(s3)) => self.upload(s3, &mut job),
                // Left by a run configured otherwise: kept for later.
                _ => continue,
            };
            match outcome {
                Outcome::Delivered => {
                    let _ = self.ob.done(&job.id);
                    delivered += 1;
                }
                Outcome::Stopped => return None,
                Outcome::Retry(what, retry_after) => {
                    let wait = outbox::backoff(
                        job.attempts.saturating_sub(1),
                        BACKOFF_BASE,
                        self.d.max_backoff,
                        &job.id,
                        retry_after,
                    );
                    job.not_before_ms = now_ms() + wait.as_millis() as u64;
                    gst::debug!(
                        CAT,
                        "{} {} failed ({}), again in {:?}",
                        job.kind,
                        job.id,
                        what,
                        wait
                    );
                    job.last_error = Some(what);
                    let _ = self.ob.put(&job);
                    next = Some(next.map_or(job.not_before_ms, |n| n.min(job.not_before_ms)));
                    uploads_wait |= is_upload;
                }
                Outcome::GiveUp(what) => self.give_up(&mut job, what),
            }
        }
        Some((next, delivered))
    }

    /// A failed attempt: retried, or given up after `max_attempts`.
    fn failed(
        &self,
        job: &mut Job,
        verdict: Verdict,
        what: String,
        ra: Option<Duration>,
    ) -> Outcome {
        job.attempts += 1;
        match verdict {
            Verdict::Retry if job.attempts < self.d.max_attempts => Outcome::Retry(what, ra),
            _ => Outcome::GiveUp(what),
        }
    }

    fn callback(&self, cb: &Callbacks, job: &mut Job) -> Outcome {
        let (status, retry_after, what) = post(&self.http, cb, job);
        match outbox::verdict(status) {
            Verdict::Delivered => Outcome::Delivered,
            v => self.failed(job, v, what, retry_after),
        }
    }

    /// Runs an upload's requests until it is done or fails, persisting the
    /// job after each step (a restart resumes at the next part).
    fn upload(&self, s3: &S3, job: &mut Job) -> Outcome {
        let Ok(mut up) = serde_json::from_value::<UploadJob>(job.payload.clone()) else {
            return Outcome::GiveUp("not an upload job".into());
        };
        let part_size = self.d.upload.as_ref().map_or(0, |u| u.part_size);
        loop {
            if stopped(&self.wake) {
                return Outcome::Stopped;
            }
            let parts_before = up.multipart.as_ref().map_or(0, |m| m.etags.len());
            let attempt = s3.step(&mut up, part_size);
            if let Ok(v) = serde_json::to_value(&up) {
                job.payload = v;
            }
            match attempt {
                Attempt::Progress => {
                    // Failures in a row count until a part is done (not
                    // when an upload is created again and again).
                    if up.multipart.as_ref().map_or(0, |m| m.etags.len()) > parts_before {
                        job.attempts = 0;
                    }
                    if let Err(e) = self.ob.put(job) {
                        return Outcome::Retry(e, None);
                    }
                }
                Attempt::Done { etag, size } => {
                    let Some(obj) = self.weak.upgrade() else {
                        return Outcome::Stopped;
                    };
                    let done = (job.id.as_str(), &up);
                    return match obj.imp().upload_done(&self.cfg, &self.d, done, &etag, size) {
                        Ok(()) => Outcome::Delivered,
                        Err(e) => self.failed(job, Verdict::Retry, e, None),
                    };
                }
                Attempt::Retry { error, retry_after } => {
                    return self.failed(job, Verdict::Retry, error, retry_after)
                }
                Attempt::GiveUp(e) => return self.failed(job, Verdict::GiveUp, e, None),
            }
        }
    }

    fn give_up(&self, job: &mut Job, what: String) {
        if let (Some(s3), Ok(up)) = (
            &self.s3,
            serde_json::from_value::<UploadJob>(job.payload.clone()),
        ) {
            if let Some(mp) = up.multipart.filter(|_| job.kind == "upload") {
                if let Err(e) = s3.abort(&up.key, &mp.upload_id) {
                    gst::warning!(CAT, "Cannot abort the upload of {}: {}", up.key, e);
                }
            }
        }
        job.last_error = Some(what.clone());
        let kept = self.ob.fail(job).ok();
        let Some(obj) = self.weak.upgrade() else {
            return;
        };
        let imp = obj.imp();
        gst::warning!(CAT, imp = imp, "{} {} gave up: {}", job.kind, job.id, what);
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
