// SPDX-License-Identifier: MIT OR Apache-2.0
//! The delivery properties of `liverecordsink` (callbacks, uploads, the
//! outbox, retry limits): their settings (part of `Settings`, whose
//! `Default` is this struct's), ParamSpecs, and [`Delivery`], the settings
//! validated at READY→PAUSED.

use std::path::PathBuf;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::props::string;
use super::{CallbackEvents, CallbackSigning};
use crate::s3target::{Keyer, Target};

/// The delivery properties as set.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Empty = no callbacks.
    pub callback_url: String,
    pub callback_secret: String,
    /// `standard-webhooks` or `tencent`.
    pub callback_signing: CallbackSigning,
    pub callback_events: CallbackEvents,
    /// Empty = `outbox/` next to the index.
    pub outbox_location: String,
    /// Empty = no uploads.
    pub upload_url: String,
    /// Empty = AWS (`https://s3.<region>.amazonaws.com`).
    pub upload_endpoint: String,
    /// Empty = `AWS_REGION`, else `us-east-1`.
    pub upload_region: String,
    /// Empty = `AWS_ACCESS_KEY_ID`.
    pub upload_access_key: String,
    /// Empty = `AWS_SECRET_ACCESS_KEY`.
    pub upload_secret_key: String,
    pub upload_delete_local: bool,
    /// MiB.
    pub upload_part_size: u32,
    pub delivery_max_attempts: u32,
    /// Seconds.
    pub delivery_max_backoff: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            callback_url: String::new(),
            callback_secret: String::new(),
            callback_signing: CallbackSigning::StandardWebhooks,
            callback_events: CallbackEvents::FILE_CLOSED | CallbackEvents::UPLOAD_DONE,
            outbox_location: String::new(),
            upload_url: String::new(),
            upload_endpoint: String::new(),
            upload_region: String::new(),
            upload_access_key: String::new(),
            upload_secret_key: String::new(),
            upload_delete_local: false,
            upload_part_size: 8,
            delivery_max_attempts: 10,
            delivery_max_backoff: 300,
        }
    }
}

fn string_spec(name: &str, nick: &str, blurb: &str, default: &str) -> glib::ParamSpec {
    glib::ParamSpecString::builder(name)
        .nick(nick)
        .blurb(blurb)
        .default_value(Some(default))
        .mutable_ready()
        .build()
}

/// The ParamSpecs of the delivery properties.
pub fn param_specs() -> Vec<glib::ParamSpec> {
    let d = DeliverySettings::default();
    vec![
        string_spec("callback-url", "Callback URL", "http(s) URL that gets a signed POST (the index record as JSON plus \"event\") for each event of callback-events, delivered from a durable outbox with retries; empty = off", &d.callback_url),
        string_spec("callback-secret", "Callback secret", "standard-webhooks: the signing key as whsec_<base64> (empty = unsigned); tencent: the callback key", &d.callback_secret),
        glib::ParamSpecEnum::builder_with_default("callback-signing", d.callback_signing)
            .nick("Callback signing")
            .blurb("standard-webhooks (webhook-id/-timestamp/-signature headers) or tencent (t and sign=md5(key+t) in the body, event_type 100)")
            .mutable_ready()
            .build(),
        glib::ParamSpecFlags::builder::<CallbackEvents>("callback-events")
            .nick("Callback events")
            .blurb("Which events are called back: file-closed, segment-added (each HLS segment), upload-done, file-deleted (retention)")
            .default_value(d.callback_events)
            .mutable_ready()
            .build(),
        string_spec("outbox-location", "Outbox location", "Directory of pending deliveries, a folder per stream (one JSON file per job, kept until delivered; given-up jobs move to <stream>/failed/); empty = outbox/ next to the index", &d.outbox_location),
        string_spec("upload-url", "Upload URL", "s3://bucket/key-template: every closed file (each HLS segment as it is added, then its playlist) is uploaded there; placeholders {path} (relative to the location's fixed folder) {filename} {stream_id} {format} {file_id}; {filename} or {path} is required; empty = off", &d.upload_url),
        string_spec("upload-endpoint", "Upload endpoint", "http(s)://host[:port] of an S3-compatible server (path-style requests); empty = AWS S3 of upload-region", &d.upload_endpoint),
        string_spec("upload-region", "Upload region", "The SigV4 signing region; empty = $AWS_REGION, else us-east-1", &d.upload_region),
        string_spec("upload-access-key", "Upload access key", "Access key id; empty = $AWS_ACCESS_KEY_ID ($AWS_SESSION_TOKEN is used when set)", &d.upload_access_key),
        string_spec("upload-secret-key", "Upload secret key", "Secret access key; empty = $AWS_SECRET_ACCESS_KEY", &d.upload_secret_key),
        glib::ParamSpecBoolean::builder("upload-delete-local")
            .nick("Delete after upload")
            .blurb("Delete the local file once it is uploaded and indexed as uploaded (HLS: the playlist and its segments, after the final playlist)")
            .default_value(d.upload_delete_local)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("upload-part-size")
            .nick("Upload part size (MiB)")
            .blurb("Files larger than this are uploaded in parts of this size (multipart upload, resumed part by part after a restart); 5 to 5120")
            .minimum(5)
            .maximum(5120)
            .default_value(d.upload_part_size)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("delivery-max-attempts")
            .nick("Delivery attempts")
            .blurb("Attempts of a callback or an upload request before the job gives up (moves to outbox failed/, liverecordsink-delivery-failed)")
            .minimum(1)
            .default_value(d.delivery_max_attempts)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("delivery-max-backoff")
            .nick("Delivery maximum backoff (s)")
            .blurb("Retries wait 1 s, 2 s, 4 s ... (with jitter, or as Retry-After says) up to this many seconds")
            .minimum(1)
            .default_value(d.delivery_max_backoff)
            .mutable_ready()
            .build(),
    ]
}

impl DeliverySettings {
    /// Sets a delivery property; false if `name` is not one.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let d = DeliverySettings::default();
        match name {
            "callback-url" => self.callback_url = string(value),
            "callback-secret" => self.callback_secret = string(value),
            "callback-signing" => self.callback_signing = value.get().unwrap_or(d.callback_signing),
            "callback-events" => self.callback_events = value.get().unwrap_or(d.callback_events),
            "outbox-location" => self.outbox_location = string(value),
            "upload-url" => self.upload_url = string(value),
            "upload-endpoint" => self.upload_endpoint = string(value),
            "upload-region" => self.upload_region = string(value),
            "upload-access-key" => self.upload_access_key = string(value),
            "upload-secret-key" => self.upload_secret_key = string(value),
            "upload-delete-local" => {
                self.upload_delete_local = value.get().unwrap_or(d.upload_delete_local)
            }
            "upload-part-size" => self.upload_part_size = value.get().unwrap_or(d.upload_part_size),
            "delivery-max-attempts" => {
                self.delivery_max_attempts = value.get().unwrap_or(d.delivery_max_attempts)
            }
            "delivery-max-backoff" => {
                self.delivery_max_backoff = value.get().unwrap_or(d.delivery_max_backoff)
            }
            _ => return false,
        }
        true
    }

    /// The value of a delivery property.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "callback-url" => self.callback_url.to_value(),
            "callback-secret" => self.callback_secret.to_value(),
            "callback-signing" => self.callback_signing.to_value(),
            "callback-events" => self.callback_events.to_value(),
            "outbox-location" => self.outbox_location.to_value(),
            "upload-url" => self.upload_url.to_value(),
            "upload-endpoint" => self.upload_endpoint.to_value(),
            "upload-region" => self.upload_region.to_value(),
            "upload-access-key" => self.upload_access_key.to_value(),
            "upload-secret-key" => self.upload_secret_key.to_value(),
            "upload-delete-local" => self.upload_delete_local.to_value(),
            "upload-part-size" => self.upload_part_size.to_value(),
            "delivery-max-attempts" => self.delivery_max_attempts.to_value(),
            "delivery-max-backoff" => self.delivery_max_backoff.to_value(),
            _ => return None,
        })
    }
}

/// Where and how callbacks go.
#[derive(Debug, Clone)]
pub struct Callbacks {
    pub url: String,
    pub signer: Signer,
    pub events: CallbackEvents,
}

/// How a callback is signed.
#[derive(Debug, Clone)]
pub enum Signer {
    None,
    Webhooks(crate::signing::WebhookSecret),
    Tencent(String),
}

/// Where uploads go.
#[derive(Debug, Clone)]
pub struct Upload {
    pub keys: Keyer,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub delete_local: bool,
    /// Bytes.
    pub part_size: u64,
}

/// The delivery settings validated: present when callbacks or uploads are on.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub outbox_dir: PathBuf,
    pub callbacks: Option<Callbacks>,
    pub upload: Option<Upload>,
    pub max_attempts: u32,
    pub max_backoff: Duration,
}

impl Delivery {
    /// Whether `event` is called back.
    pub fn calls_back(&self, event: CallbackEvents) -> bool {
        self.callbacks
            .as_ref()
            .is_some_and(|c| c.events.contains(event))
    }
}

fn callbacks_of(s: &DeliverySettings) -> Result<Option<Callbacks>, String> {
    if s.callback_url.is_empty() {
        return Ok(None);
    }
    let url = &s.callback_url;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .filter(|r| !r.is_empty() && !r.starts_with('/'));
    if rest.is_none() || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "callback-url '{url}' is not an http:// or https:// URL"
        ));
    }
    let signer = match s.callback_signing {
        CallbackSigning::StandardWebhooks if s.callback_secret.is_empty() => Signer::None,
        CallbackSigning::StandardWebhooks => {
            Signer::Webhooks(crate::signing::WebhookSecret::parse(&s.callback_secret)?)
        }
        CallbackSigning::Tencent if s.callback_secret.is_empty() => {
            return Err("callback-signing=tencent needs callback-secret (the callback key)".into())
        }
        CallbackSigning::Tencent => Signer::Tencent(s.callback_secret.clone()),
    };
    Ok(Some(Callbacks {
        url: url.clone(),
        signer,
        events: s.callback_events,
    }))
}

fn env_or(value: &str, var: &str) -> String {
    if value.is_empty() {
        std::env::var(var).unwrap_or_default()
    } else {
        value.to_string()
    }
}

fn upload_of(
    s: &DeliverySettings,
    root: PathBuf,
    safe_stream_id: &str,
) -> Result<Option<Upload>, String> {
    if s.upload_url.is_empty() {
        return Ok(None);
    }
    let mut region = env_or(&s.upload_region, "AWS_REGION");
    if region.is_empty() {
        region = "us-east-1".into();
    }
    let target = Target::parse(&s.upload_url, &s.upload_endpoint, &region)?;
    let access_key = env_or(&s.upload_access_key, "AWS_ACCESS_KEY_ID");
    let secret_key = env_or(&s.upload_secret_key, "AWS_SECRET_ACCESS_KEY");
    if access_key.is_empty() || secret_key.is_empty() {
        return Err("upload-url needs credentials: upload-access-key and upload-secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into());
    }
    crate::s3client::S3::new(&target, &access_key, &secret_key, None)?;
    Ok(Some(Upload {
        keys: Keyer {
            target,
            root,
            stream_id: safe_stream_id.to_string(),
        },
        access_key,
        secret_key,
        session_token: std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .filter(|t| !t.is_empty() && s.upload_access_key.is_empty()),
        delete_local: s.upload_delete_local,
        part_size: u64::from(s.upload_part_size.max(5)) * 1024 * 1024,
    }))
}

/// Validates the delivery settings. `root` is the location template's
/// fixed root (upload keys hold paths relative to it). Each stream has its
/// own folder in the outbox (`journal::stream_key`), so that recorders of
/// several streams sharing an index and an outbox never deliver each
/// other's jobs.
pub fn delivery_of(
    s: &DeliverySettings,
    index_location: &str,
    root: PathBuf,
    stream_id: &str,
) -> Result<Option<Delivery>, String> {
    let safe_stream_id = &crate::template::sanitize_component(stream_id);
    let callbacks = callbacks_of(s)?;
    let upload = upload_of(s, root, safe_stream_id)?;
    if callbacks.is_none() && upload.is_none() {
        return Ok(None);
    }
    let outbox_dir = if !s.outbox_location.is_empty() {
        PathBuf::from(&s.outbox_location)
    } else if !index_location.is_empty() {
        PathBuf::from(index_location)
            .parent()
            .map_or_else(|| PathBuf::from("outbox"), |p| p.join("outbox"))
    } else {
        return Err(
            "callbacks and uploads need outbox-location (or index-location, next to which the outbox goes)"
                .into(),
        );
    };
    let outbox_dir = outbox_dir.join(crate::journal::stream_key(stream_id));
    if upload.as_ref().is_some_and(|u| u.delete_local) && index_location.is_empty() {
        return Err("upload-delete-local needs index-location: the index must tell where each deleted file went".into());
    }
    Ok(Some(Delivery {
        outbox_dir,
        callbacks,
        upload,
        max_attempts: s.delivery_max_attempts.max(1),
        max_backoff: Duration::from_secs(u64::from(s.delivery_max_backoff.max(1))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&mut DeliverySettings)) -> Result<Option<Delivery>, String> {
        let mut s = DeliverySettings::default();
        f(&mut s);
        delivery_of(&s, "rec/index.jsonl", PathBuf::from("rec"), "cam")
    }

    #[test]
    fn off_by_default_and_errors_are_clear() {
        assert!(check(|_| ()).unwrap().is_none());
        let err = |f| check(f).unwrap_err();
        assert!(err(|s| s.callback_url = "ftp://x".into()).contains("callback-url"));
        assert!(err(|s| s.upload_url = "s3://bkt/{nope}".into()).contains("{nope}"));
        assert!(err(|s| {
            s.upload_url = "s3://bkt/{filename}".into();
            s.upload_endpoint = "localhost:9000".into();
        })
        .contains("upload-endpoint"));
        let d = check(|s| {
            s.upload_url = "s3://bkt/v/{filename}".into();
            s.upload_access_key = "ak".into();
            s.upload_secret_key = "sk".into();
            s.upload_region = "eu-west-1".into();
        })
        .unwrap()
        .unwrap();
        assert_eq!(d.outbox_dir, PathBuf::from("rec/outbox/cam"));
        let u = d.upload.unwrap();
        assert_eq!(u.part_size, 8 << 20);
        assert_eq!(
            u.keys.url("rec/cam/a.mp4", "mp4", "id"),
            "https://bkt.s3.eu-west-1.amazonaws.com/v/a.mp4"
        );
    }
}
