// SPDX-License-Identifier: MIT OR Apache-2.0
//! Uploads to S3-compatible storage (issue 12): requests signed by
//! `rusty-s3` (SigV4 presigned URLs), sent with blocking `ureq`; no async
//! runtime. An upload advances one request at a time ([`S3::step`]) so the
//! delivery thread can persist the job between parts: a multipart upload
//! resumes after a restart from its first missing part.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use rusty_s3::actions::{CreateMultipartUpload, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde::{Deserialize, Serialize};

use crate::index::IndexRecord;
use crate::outbox::{self, Verdict};
use crate::s3target::Target;

/// How long a signed request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(3600);
/// S3's limits: parts of at least 5 MiB (but the last), at most 10,000.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// A multipart upload in progress, kept in the job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Multipart {
    pub upload_id: String,
    pub part_size: u64,
    /// ETags of the parts done, part 1 first.
    pub etags: Vec<String>,
    /// The file's size when the upload began: a file that changed since
    /// is uploaded again from the start.
    #[serde(default)]
    pub size: u64,
}

/// The payload of an upload job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UploadJob {
    /// The local file.
    pub path: String,
    pub key: String,
    /// What to upload instead of the file's current bytes (a snapshot of
    /// a playlist as it was when a segment was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The recording, for a final file or playlist: it gets an `uploaded`
    /// index line and `upload-done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<IndexRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<Multipart>,
}

/// The result of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The object is complete.
    Done {
        etag: String,
        size: u64,
    },
    /// One step done (multipart created, a part uploaded): persist the job
    /// and go on.
    Progress,
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    GiveUp(String),
}

/// A client for one bucket.
pub struct S3 {
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
}

/// S3 error codes that come with a 4xx status but pass: retried.
const TRANSIENT_CODES: [&str; 4] = [
    "RequestTimeout",
    "OperationAborted",
    "SlowDown",
    "InternalError",
];

fn fail(what: &str, status: Option<u16>, body: &str, retry_after: Option<Duration>) -> Attempt {
    let error = match status {
        Some(s) => format!(
            "{what}: HTTP {s} {}",
            body.chars().take(300).collect::<String>()
        ),
        None => format!("{what}: {body}"),
    };
    let transient = TRANSIENT_CODES
        .iter()
        .any(|c| body.contains(&format!("<Code>{c}</Code>")));
    match outbox::verdict(status) {
        Verdict::GiveUp if !transient => Attempt::GiveUp(error),
        _ => Attempt::Retry { error, retry_after },
    }
}

/// A response: status, ETag header, Retry-After, body text.
struct Reply {
    status: u16,
    etag: Option<String>,
    retry_after: Option<Duration>,
    body: String,
}

impl S3 {
    /// A client for `target` with these credentials.
    pub fn new(
        target: &Target,
        key_id: &str,
        secret: &str,
        token: Option<&str>,
    ) -> Result<S3, String> {
        let endpoint: url::Url = target
            .endpoint
            .parse()
            .map_err(|e| format!("upload-endpoint '{}': {e}", target.endpoint))?;
        let style = if target.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            target.bucket.clone(),
            target.region.clone(),
        )
        .map_err(|e| format!("bucket '{}' at {}: {e}", target.bucket, target.endpoint))?;
        let creds = match token {
            Some(t) => Credentials::new_with_token(key_id, secret, t),
            None => Credentials::new(key_id, secret),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(S3 {
            bucket,
            creds,
            agent,
        })
    }

    fn send(&self, method: &str, url: &url::Url, body: &[u8]) -> Result<Reply, String> {
        let url = url.as_str();
        // A body may take 60 s plus 64 KiB/s: slow links finish big parts,
        // a stalled one is given up.
        let send_for = Some(Duration::from_secs(60 + body.len() as u64 / 65_536));
        let result = match method {
            "PUT" => self
                .agent
                .put(url)
                .config()
                .timeout_send_body(send_for)
                .build()
                .send(body),
            "POST" => self
                .agent
                .post(url)
                .config()
                .timeout_send_body(send_for)
                .build()
                .send(body),
            "DELETE" => self.agent.delete(url).call(),
            _ => self.agent.get(url).call(),
        };
        let mut resp = result.map_err(|e| e.to_string())?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let retry_after = header("retry-after").and_then(|v| outbox::retry_after(&v));
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Ok(Reply {
            status,
            etag,
            retry_after,
            body,
        })
    }

    /// One request of the upload of `job`: a single PUT when the object
    /// fits in one part, else create / one part / complete.
    pub fn step(&self, job: &mut UploadJob, part_size: u64) -> Attempt {
        let size = match &job.body {
            Some(b) => b.len() as u64,
            None => match std::fs::metadata(&job.path) {
                Ok(m) => m.len(),
                Err(e) => return Attempt::GiveUp(format!("{}: {e}", job.path)),
            },
        };
        let part_size = part_size.max(MIN_PART_SIZE).max(size.div_ceil(MAX_PARTS));
        let key = job.key.clone();
        let Some(mp) = &mut job.multipart else {
            if size <= part_size {
                let bytes = match self.read(job, 0, size) {
                    Ok(b) => b,
                    Err(e) => return Attempt::GiveUp(e),
                };
                let url = self
                    .bucket
                    .put_object(Some(&self.creds), &key)
                    .sign(SIGN_FOR);
                return match self.send("PUT", &url, &bytes) {
                    Ok(r) if (200..300).contains(&r.status) => Attempt::Done {
                        etag: r.etag.unwrap_or_default(),
                        size,
                    },
                    Ok(r) => fail("PUT", Some(r.status), &r.body, r.retry_after),
                    Err(e) => fail("PUT", None, &e, None),
                };
            }
            let url = self
                .bucket
                .create_multipart_upload(Some(&self.creds), &key)
                .sign(SIGN_FOR);
            return match self.send("POST", &url, b"") {
                Ok(r) if (200..300).contains(&r.status) => {
                    match CreateMultipartUpload::parse_response(&r.body) {
                        Ok(c) => {
                            job.multipart = Some(Multipart {
                                upload_id: c.upload_id().to_string(),
                                part_size,
                                etags: Vec::new(),
                                size,
                            });
                            Attempt::Progress
                        }
                        Err(e) => fail("CreateMultipartUpload", None, &e.to_string(), None),
                    }
                }
                Ok(r) => fail(
                    "CreateMultipartUpload",
                    Some(r.status),
                    &r.body,
                    r.retry_after,
                ),
                Err(e) => fail("CreateMultipartUpload", None, &e, None),
            };
        };
        if mp.size != size {
            let (old, id) = (mp.size, mp.upload_id.clone());
            let _ = self.abort(&key, &id);
            job.multipart = None;
            return fail(
                "UploadPart",
                None,
                &format!(
                    "{} changed size ({old} -> {size} bytes): starting over",
                    job.path
                ),
                None,
            );
        }
        let parts = size.div_ceil(mp.part_size).max(1);
        let done = mp.etags.len() as u64;
        if done < parts {
            let offset = done * mp.part_size;
            let len = mp.part_size.min(size - offset);
            let (upload_id, part_size) = (mp.upload_id.clone(), mp.part_size);
            let bytes = match self.read(job, offset, len) {
                Ok(b) => b,
                Err(e) => return Attempt::GiveUp(e),
            };
            let number = (done + 1) as u16;
            let url = self
                .bucket
                .upload_part(Some(&self.creds), &key, number, &upload_id)
                .sign(SIGN_FOR);
            let reply = self.send("PUT", &url, &bytes);
            let Some(mp) = &mut job.multipart else {
                return Attempt::Progress;
            };
            return match reply {
                Ok(r) if (200..300).contains(&r.status) => match r.etag {
                    Some(etag) => {
                        mp.etags.push(etag);
                        Attempt::Progress
                    }
                    None => fail("UploadPart", None, "no ETag in the reply", None),
                },
                Ok(r) if r.status == 404 => {
                    // The upload is gone (aborted or expired): start over.
                    job.multipart = None;
                    let _ = part_size;
                    fail(
                        "UploadPart",
                        None,
                        "the multipart upload is gone, restarting it",
                        None,
                    )
                }
                Ok(r) => fail("UploadPart", Some(r.status), &r.body, r.retry_after),
                Err(e) => fail("UploadPart", None, &e, None),
            };
        }
        let action = self.bucket.complete_multipart_upload(
            Some(&self.creds),
            &key,
            &mp.upload_id,
            mp.etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_FOR);
        let body = self
            .bucket
            .complete_multipart_upload(
                Some(&self.creds),
                &key,
                &mp.upload_id,
                mp.etags.iter().map(String::as_str),
            )
            .body();
        match self.send("POST", &url, body.as_bytes()) {
            Ok(r) if (200..300).contains(&r.status) => {
                match rusty_s3::actions::CompleteMultipartUploadResponse::parse(&r.body) {
                    Ok(c) => Attempt::Done {
                        etag: c.etag().to_string(),
                        size,
                    },
                    // S3 can answer 200 with an error in the body.
                    Err(_) => fail("CompleteMultipartUpload", None, &r.body, None),
                }
            }
            Ok(r) if r.status == 404 => {
                job.multipart = None;
                fail(
                    "CompleteMultipartUpload",
                    None,
                    "the multipart upload is gone, restarting it",
                    None,
                )
            }
            Ok(r) => fail(
                "CompleteMultipartUpload",
                Some(r.status),
                &r.body,
                r.retry_after,
            ),
            Err(e) => fail("CompleteMultipartUpload", None, &e, None),
        }
    }

    fn read(&self, job: &UploadJob, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        if let Some(b) = &job.body {
            let (o, l) = (offset as usize, len as usize);
            return b
                .as_bytes()
                .get(o..o + l)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("{}: snapshot shorter than expected", job.path));
        }
        let named = |e: std::io::Error| format!("{}: {e}", job.path);
        let mut f = std::fs::File::open(Path::new(&job.path)).map_err(named)?;
        f.seek(SeekFrom::Start(offset)).map_err(named)?;
        let mut buf = Vec::with_capacity(len as usize);
        f.take(len).read_to_end(&mut buf).map_err(named)?;
        if buf.len() as u64 != len {
            return Err(format!("{}: shorter than when the upload began", job.path));
        }
        Ok(buf)
    }

    /// Aborts a multipart upload (best effort, when a job gives up).
    pub fn abort(&self, key: &str, upload_id: &str) -> Result<(), String> {
        let url = self
            .bucket
            .abort_multipart_upload(Some(&self.creds), key, upload_id)
            .sign(SIGN_FOR);
        match self.send("DELETE", &url, b"") {
            Ok(r) if (200..300).contains(&r.status) || r.status == 404 => Ok(()),
            Ok(r) => Err(format!("AbortMultipartUpload: HTTP {}", r.status)),
            Err(e) => Err(e),
        }
    }

    /// The object's bytes (for checks and tests).
    pub fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let url = self
            .bucket
            .get_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let mut resp = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| e.to_string())?;
        if resp.status().as_u16() != 200 {
            return Err(format!("GET {key}: HTTP {}", resp.status().as_u16()));
        }
        resp.body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| e.to_string())
    }

    /// The part numbers already uploaded to a multipart upload.
    pub fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<u16>, String> {
        let url = self
            .bucket
            .list_parts(Some(&self.creds), key, upload_id)
            .sign(SIGN_FOR);
        let r = self.send("GET", &url, b"")?;
        if r.status != 200 {
            return Err(format!("ListParts {key}: HTTP {} {}", r.status, r.body));
        }
        // Only the numbers: servers differ in the other fields they give.
        let mut parts: Vec<u16> = r
            .body
            .split("<PartNumber>")
            .skip(1)
            .filter_map(|s| s.split('<').next()?.trim().parse().ok())
            .collect();
        parts.sort_unstable();
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_s3_errors_are_retried_others_give_up() {
        let retried =
            |status, body: &str| matches!(fail("PUT", status, body, None), Attempt::Retry { .. });
        assert!(retried(
            Some(400),
            "<Error><Code>RequestTimeout</Code></Error>"
        ));
        assert!(retried(
            Some(409),
            "<Error><Code>OperationAborted</Code></Error>"
        ));
        assert!(retried(Some(503), "<Error><Code>SlowDown</Code></Error>"));
        assert!(retried(None, "connection refused"));
        assert!(!retried(
            Some(403),
            "<Error><Code>AccessDenied</Code></Error>"
        ));
        assert!(!retried(
            Some(400),
            "<Error><Code>InvalidArgument</Code></Error>"
        ));
    }
}
