// SPDX-License-Identifier: MIT OR Apache-2.0
//! Recording callbacks (issue 12, first part): a real HTTP receiver on
//! 127.0.0.1 (`tests/common/receiver.py`), started by the test and stopped
//! by its PID.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::receiver::{header, Receiver};
use common::*;
use gst::prelude::*;
use gstliverecord::signing::WebhookSecret;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Records 3 s (record-interval=1) with callbacks to a receiver that fails
/// its first 2 requests (HTTP 500, then a dropped connection): every closed
/// file gets exactly one delivered callback whose body is its index record
/// plus `"event":"file-closed"`, signed (Standard Webhooks) so that it
/// verifies with the secret and not with another; the failed attempts
/// carried the same `webhook-id` as the delivery; the outbox is empty.
#[test]
fn signed_callbacks_survive_a_failing_receiver() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let rx = Receiver::start(td.path(), 2);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 \
         {} ! queue ! rec.video {} ! queue ! rec.audio",
        video_branch(Some(90), true),
        audio_branch(Some(audio_buffers_for(3.0)), true)
    ));
    r.set_location(&td);
    r.rec.set_property("callback-url", rx.url().as_str());
    r.rec.set_property("callback-secret", SECRET);
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let closed = r.closed();
    assert!(closed.len() >= 3, "{closed:#?}");
    let reqs = rx.wait_delivered(closed.len(), Duration::from_secs(60));
    r.stop();

    let records = read_index(&td.index_path());
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let wrong = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let delivered: Vec<&serde_json::Value> =
        reqs.iter().filter(|q| q["outcome"] == "200").collect();
    assert_eq!(
        delivered.len(),
        closed.len(),
        "one delivery per file: {reqs:#?}"
    );
    for q in &delivered {
        let body = q["body"].as_str().unwrap();
        let id = header(q, "webhook-id");
        let ts: i64 = header(q, "webhook-timestamp").parse().unwrap();
        let sig = header(q, "webhook-signature");
        assert!(
            secret.verify(id, ts, body.as_bytes(), sig),
            "bad signature: {q}"
        );
        assert!(
            !wrong.verify(id, ts, body.as_bytes(), sig),
            "a wrong secret verified"
        );
        let mut json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(body).unwrap();
        assert_eq!(json.remove("event"), Some("file-closed".into()), "{body}");
        let rec = records
            .iter()
            .find(|r| r.get("file-id") == json.get("file-id"))
            .unwrap_or_else(|| panic!("no index record for {body}"));
        assert_eq!(&json, rec, "the body is the index record");
        assert_eq!(id, format!("{}.file-closed", rec_str(rec, "file-id")));
    }
    // The failed attempts were retried with the same id.
    for q in reqs.iter().filter(|q| q["outcome"] != "200") {
        let id = header(q, "webhook-id");
        assert!(
            delivered.iter().any(|d| header(d, "webhook-id") == id),
            "{id} failed and was never delivered"
        );
    }
    assert_eq!(reqs.len(), closed.len() + 2, "{reqs:#?}");
    let outbox = td.path().join("outbox/live");
    let left: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(left.is_empty(), "jobs left in the outbox: {left:?}");
}

/// Tencent signing: `t`, `sign = md5(key + t)` and `event_type` 100 in the
/// body; the receiver recomputes the sign.
#[test]
fn tencent_signed_callback() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let rx = Receiver::start(td.path(), 0);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec {} ! queue ! rec.video",
        video_branch(Some(30), true)
    ));
    r.set_location(&td);
    r.rec.set_property("callback-url", rx.url().as_str());
    r.rec.set_property_from_str("callback-signing", "tencent");
    r.rec.set_property("callback-secret", "mykey");
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let reqs = rx.wait_delivered(1, Duration::from_secs(30));
    r.stop();
    let body: serde_json::Value = serde_json::from_str(reqs[0]["body"].as_str().unwrap()).unwrap();
    let t = body["t"].as_i64().expect("no t");
    assert_eq!(body["event_type"], 100);
    assert_eq!(
        body["sign"],
        gstliverecord::signing::tencent_sign("mykey", t)
    );
    assert_eq!(body["event"], "file-closed");
    let now = chrono::Utc::now().timestamp();
    assert!(
        t > now && t <= now + 600,
        "t {t} is not about 10 min ahead of {now}"
    );
}

/// Bad callback settings are errors at READY→PAUSED.
#[test]
fn bad_callback_settings_are_clear_errors() {
    init();
    let cases = [
        (
            "callback-url",
            "ftp://x/y",
            "is not an http:// or https:// URL",
        ),
        ("callback-secret", "whsec_!!", "whsec_"),
        ("callback-signing", "tencent", "needs callback-secret"),
        ("outbox-location", "/proc/nope/outbox", "/proc/nope/outbox"),
    ];
    for (prop, value, needle) in cases {
        let e = refused_at_paused(&[("callback-url", "http://127.0.0.1:9/x"), (prop, value)]);
        assert!(e.contains(needle), "{prop}={value}: {e}");
    }
}

/// The element stops with callbacks pending (the receiver is down): the
/// jobs stay in the outbox, and the next start delivers them, once each.
#[test]
fn pending_callbacks_are_delivered_after_a_restart() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let record = |url: &str, rx: Option<&Receiver>, before: usize| {
        let r = Recording::launch(&format!(
            "liverecordsink name=rec record-interval=1 {} ! queue ! rec.video",
            video_branch(Some(60), true)
        ));
        r.set_location(&td);
        r.rec.set_property("callback-url", url);
        r.rec.set_property("callback-secret", SECRET);
        r.play();
        r.wait_eos(Duration::from_secs(60));
        let closed = r.closed();
        // Stopping stops the delivery thread: wait for it first.
        let reqs = rx.map(|rx| rx.wait_delivered(before + closed.len(), Duration::from_secs(60)));
        r.stop();
        (closed, reqs.unwrap_or_default())
    };
    // Nothing listens on port 9 of 127.0.0.1 (discard is not served here).
    let (first, _) = record("http://127.0.0.1:9/recording", None, 0);
    let jobs = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let outbox = td.path().join("outbox/live");
    assert_eq!(jobs(&outbox), first.len(), "every job waits in the outbox");

    let rx = Receiver::start(td.path(), 0);
    let (second, reqs) = record(&rx.url(), Some(&rx), first.len());
    let mut ids: Vec<&str> = reqs.iter().map(|q| header(q, "webhook-id")).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a callback delivered twice");
    assert_eq!(n, first.len() + second.len());
    // Give the thread a moment to delete the last job file after its 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs(&outbox) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(jobs(&outbox), 0);
}

/// `callback-events=segment-added`: one callback per HLS segment (its
/// location, playlist, sequence, duration), and no file-closed callback.
#[test]
fn callback_events_choose_what_is_called_back() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let rx = Receiver::start(td.path(), 0);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec formats=hls hls-segment-duration=1 {} ! queue ! rec.video",
        video_branch(Some(90), false)
    ));
    r.set_location(&td);
    r.rec.set_property("callback-url", rx.url().as_str());
    r.rec
        .set_property_from_str("callback-events", "segment-added");
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let segments = r.messages_named("liverecordsink-hls-segment-added");
    assert!(segments.len() >= 3, "{segments:#?}");
    let reqs = rx.wait_delivered(segments.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    r.stop();
    let bodies: Vec<serde_json::Value> = rx
        .requests()
        .iter()
        .map(|q| serde_json::from_str(q["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies.len(), segments.len(), "{reqs:#?}");
    for (s, b) in segments.iter().zip(&bodies) {
        assert_eq!(b["event"], "segment-added");
        assert_eq!(b["location"], get_str(s, "location"));
        assert_eq!(b["playlist"], get_str(s, "playlist"));
        assert_eq!(b["sequence"], get_u64(s, "sequence"));
        assert_eq!(b["stream-id"], "live");
    }
}

/// `callback-events=file-deleted`: retention's deletions are called back
/// with the deleted record and `"event":"file-deleted"`.
#[test]
fn retention_deletions_are_called_back() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let first = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 {} ! queue ! rec.video",
        video_branch(Some(60), false)
    ));
    first.set_location(&td);
    first.play();
    first.wait_eos(Duration::from_secs(60));
    let old = first.closed();
    first.stop();
    assert!(old.len() >= 2, "{old:#?}");
    std::thread::sleep(Duration::from_millis(1500));
    let rx = Receiver::start(td.path(), 0);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec storage-period=1 {} ! queue ! rec.video",
        video_branch(Some(15), false)
    ));
    r.set_location(&td);
    r.rec.set_property("callback-url", rx.url().as_str());
    r.rec
        .set_property_from_str("callback-events", "file-deleted");
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let reqs = rx.wait_delivered(old.len(), Duration::from_secs(30));
    let deleted = r.messages_named("liverecordsink-file-deleted");
    r.stop();
    let mut ids: Vec<String> = reqs
        .iter()
        .map(|q| {
            let b: serde_json::Value = serde_json::from_str(q["body"].as_str().unwrap()).unwrap();
            assert_eq!(b["event"], "file-deleted", "{b}");
            b["file-id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    // The old files, and maybe this run's own once older than 1 s: one
    // callback per file-deleted message posted by then.
    let mut want: Vec<String> = deleted.iter().map(|c| get_str(c, "file-id")).collect();
    want.sort();
    assert!(
        ids.len() <= want.len() && ids.iter().all(|i| want.contains(i)),
        "{ids:?} {want:?}"
    );
    for c in &old {
        assert!(ids.contains(&get_str(c, "file-id")), "{ids:?}");
    }
}

/// Two recorders (streams `a` and `b`) sharing one index and one outbox:
/// each stream's jobs live in its own outbox folder, so every file is
/// called back exactly once (each delivery thread takes only its own).
#[test]
fn streams_sharing_an_outbox_deliver_each_callback_once() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let rx = Receiver::start(td.path(), 0);
    let launch = |id: &str| {
        let r = Recording::launch(&format!(
            "liverecordsink name=rec record-interval=1 {} ! queue ! rec.video",
            video_branch(Some(90), true)
        ));
        r.set_location(&td);
        r.rec.set_property("stream-id", id);
        r.rec.set_property("callback-url", rx.url().as_str());
        r
    };
    let (a, b) = (launch("a"), launch("b"));
    a.play();
    b.play();
    a.wait_eos(Duration::from_secs(60));
    b.wait_eos(Duration::from_secs(60));
    let files = a.closed().len() + b.closed().len();
    assert!(files >= 6, "{files} files");
    let reqs = rx.wait_delivered(files, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    a.stop();
    b.stop();
    let all = rx.requests();
    let mut ids: Vec<&str> = all.iter().map(|q| header(q, "webhook-id")).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(n, ids.len(), "a callback delivered twice: {all:#?}");
    assert_eq!(n, files, "{reqs:#?}");
    for s in ["a", "b"] {
        assert!(td.path().join("outbox").join(s).is_dir(), "no outbox/{s}");
    }
}
