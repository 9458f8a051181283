// SPDX-License-Identifier: MIT OR Apache-2.0
//! The durable outbox of delivery jobs (issue 12): one small JSON file per
//! job (a callback, an upload), written
//! atomically before the job is announced, deleted only after success; a
//! job that gives up moves to `failed/`. Plus the retry policy: which
//! outcomes are retried, exponential backoff with jitter, `Retry-After`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fsio;

/// One delivery job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Job {
    /// Stable across retries and restarts: the idempotency key
    /// (`webhook-id` of a callback).
    pub id: String,
    /// `callback` or `upload`.
    pub kind: String,
    /// What is delivered (a callback's body, an upload's file and key).
    pub payload: serde_json::Value,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// Unix milliseconds before which the job is not tried again.
    #[serde(default)]
    pub not_before_ms: u64,
    /// The last error, for `failed/` and the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The order jobs were made in ([`next_seq`]): uploads go in this
    /// order (a segment before the playlist that lists it).
    #[serde(default)]
    pub seq: u64,
}

impl Job {
    /// A new job, numbered after every job made before it.
    pub fn new(id: String, kind: &str, payload: serde_json::Value) -> Job {
        Job {
            id,
            kind: kind.into(),
            payload,
            attempts: 0,
            not_before_ms: 0,
            last_error: None,
            seq: next_seq(),
        }
    }
}

/// Increasing numbers, across restarts too (Unix nanoseconds, bumped past
/// the last one given).
pub fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(l) => last = l,
        }
    }
}

/// A spool directory of jobs.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

fn named(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// A job id as a file name, safe inside the spool (`sanitize_component`).
fn file_name(id: &str) -> String {
    format!("{}.json", crate::template::sanitize_component(id))
}

impl Outbox {
    /// Opens (creating) the spool at `dir` and its `failed/` folder; an
    /// unwritable directory is an error naming it.
    pub fn open(dir: &Path) -> Result<Outbox, String> {
        std::fs::create_dir_all(dir.join("failed")).map_err(|e| named(dir, e))?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"").map_err(|e| named(dir, e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }

    /// The spool at `dir`, opened before by [`Outbox::open`].
    pub fn at(dir: &Path) -> Outbox {
        Outbox {
            dir: dir.to_path_buf(),
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(file_name(id))
    }

    /// Writes (or rewrites) a job durably: temp file, fsync, rename, fsync
    /// of the directory.
    pub fn put(&self, job: &Job) -> Result<PathBuf, String> {
        let path = self.path_of(&job.id);
        let bytes = serde_json::to_vec(job).map_err(|e| named(&path, e))?;
        fsio::write_atomic(&path, &bytes).map_err(|e| named(&path, e))?;
        Ok(path)
    }

    /// Every job waiting, in the order they were made (`seq`, then file
    /// time); unreadable job files are returned as errors (never deleted).
    pub fn pending(&self) -> Result<Vec<Result<Job, String>>, String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(|e| named(&self.dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .map(|p| {
                let t = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect();
        files.sort();
        let mut jobs: Vec<(u64, usize, Result<Job, String>)> = files
            .into_iter()
            .enumerate()
            .map(|(i, (_, p))| {
                let job: Result<Job, String> = std::fs::read(&p)
                    .map_err(|e| named(&p, e))
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| named(&p, e)));
                (job.as_ref().map_or(0, |j| j.seq), i, job)
            })
            .collect();
        jobs.sort_by_key(|(seq, i, _)| (*seq, *i));
        Ok(jobs.into_iter().map(|(_, _, j)| j).collect())
    }

    /// The `path` of every upload job waiting or given up, but `except`:
    /// files that must not be deleted locally.
    pub fn upload_paths(&self, except: &str) -> std::collections::HashSet<String> {
        let failed = Outbox::at(&self.dir.join("failed"));
        [self.pending(), failed.pending()]
            .into_iter()
            .flatten()
            .flatten()
            .flatten()
            .filter(|j| j.kind == "upload" && j.id != except)
            .filter_map(|j| j.payload.get("path")?.as_str().map(String::from))
            .collect()
    }

    /// The job was delivered: its file goes.
    pub fn done(&self, id: &str) -> Result<(), String> {
        let path = self.path_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(named(&path, e)),
        }
    }

    /// The job gave up: it moves to `failed/`, kept for an operator.
    pub fn fail(&self, job: &Job) -> Result<PathBuf, String> {
        self.put(job)?;
        let from = self.path_of(&job.id);
        let to = self.dir.join("failed").join(file_name(&job.id));
        std::fs::rename(&from, &to).map_err(|e| named(&from, e))?;
        Ok(to)
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    GiveUp,
}

/// The verdict for an HTTP status, or `None` for a network error (no
/// response): 2xx delivered; 408, 429, 5xx and network errors retried;
/// other statuses give up.
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        None => Verdict::Retry,
        Some(s) if (200..300).contains(&s) => Verdict::Delivered,
        Some(408) | Some(429) => Verdict::Retry,
        Some(s) if (500..600).contains(&s) => Verdict::Retry,
        Some(_) => Verdict::GiveUp,
    }
}

/// The wait before attempt `attempt + 1`: `base * 2^attempt`, capped at
/// `max`, scaled by a jitter in [0.5, 1.0] derived from `seed` (e.g. the
/// job id), and never less than `retry_after` when the server gave one.
pub fn backoff(
    attempt: u32,
    base: Duration,
    max: Duration,
    seed: &str,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
    let capped = exp.min(max);
    let h = seed
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64 ^ u64::from(attempt), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let jitter = 0.5 + (h % 1000) as f64 / 2000.0;
    let wait = capped.mul_f64(jitter);
    retry_after.map_or(wait, |r| wait.max(r))
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by
/// the receivers this targets, and is ignored).
pub fn retry_after(header: &str) -> Option<Duration> {
    header.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            kind: "callback".into(),
            payload: serde_json::json!({"file-id": id}),
            attempts: 0,
            not_before_ms: 0,
            last_error: None,
            seq: next_seq(),
        }
    }

    #[test]
    fn pending_jobs_come_in_the_order_they_were_made() {
        let td = tempfile::tempdir().unwrap();
        let ob = Outbox::open(td.path()).unwrap();
        let (a, b, c) = (job("z-first"), job("a-second"), job("m-third"));
        // Rewritten out of order (a retry rewrites a job): the order stays.
        for j in [&c, &a, &b, &c] {
            ob.put(j).unwrap();
        }
        let ids: Vec<String> = ob
            .pending()
            .unwrap()
            .into_iter()
            .map(|j| j.unwrap().id)
            .collect();
        assert_eq!(ids, ["z-first", "a-second", "m-third"]);
        assert!(next_seq() > c.seq);
    }

    #[test]
    fn jobs_survive_until_done_and_failures_are_kept() {
        let td = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&td.path().join("outbox")).unwrap();
        ob.put(&job("a")).unwrap();
        ob.put(&job("../b")).unwrap();
        let again = Outbox::open(&td.path().join("outbox")).unwrap();
        let ids: Vec<String> = again
            .pending()
            .unwrap()
            .into_iter()
            .map(|j| j.unwrap().id)
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"../b".to_string()));
        let name = file_name("../b");
        assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        assert!(td.path().join("outbox").join(&name).exists(), "{name}");
        again.done("a").unwrap();
        again.done("a").unwrap();
        let mut j = job("../b");
        j.last_error = Some("404".into());
        let kept = again.fail(&j).unwrap();
        assert!(kept.starts_with(td.path().join("outbox/failed")));
        assert!(again.pending().unwrap().is_empty());
        std::fs::write(td.path().join("outbox/bad.json"), b"{").unwrap();
        let p = again.pending().unwrap();
        assert!(p[0].as_ref().unwrap_err().contains("bad.json"));
    }

    #[test]
    fn an_unwritable_outbox_is_a_clear_error() {
        let e = Outbox::open(Path::new("/proc/nope/outbox")).unwrap_err();
        assert!(e.contains("/proc/nope/outbox"), "{e}");
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Some(200)), Verdict::Delivered);
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(verdict(Some(s)), Verdict::Retry, "{s}");
        }
        assert_eq!(verdict(None), Verdict::Retry);
        for s in [400, 401, 403, 404, 410] {
            assert_eq!(verdict(Some(s)), Verdict::GiveUp, "{s}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let first = backoff(0, base, max, "job", None);
        assert!(first >= base / 2 && first <= base, "{first:?}");
        let late = backoff(20, base, max, "job", None);
        assert!(late <= max && late >= max / 2, "{late:?}");
        assert!(backoff(3, base, max, "job", None) > backoff(0, base, max, "job", None));
        let ra = backoff(0, base, max, "job", Some(Duration::from_secs(30)));
        assert_eq!(ra, Duration::from_secs(30));
        assert_ne!(
            backoff(2, base, max, "a", None),
            backoff(2, base, max, "b", None)
        );
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
