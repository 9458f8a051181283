// SPDX-License-Identifier: MIT OR Apache-2.0
//! Uploads to S3-compatible storage (issue 12): a real S3 server (`s3s-fs`,
//! which checks SigV4 signatures) on 127.0.0.1, and a fault-injecting proxy
//! in front of it that counts requests (`tests/common/s3.rs`). Every
//! object is compared byte for byte (sha256) with the local file.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::receiver::{header, Receiver};
use common::s3::{S3Proxy, S3Server, ACCESS_KEY, SECRET_KEY};
use common::*;
use gst::prelude::*;
use sha2::Digest;

const UPLOAD_URL: &str = "s3://recordings/vod/{stream_id}/{path}";

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn set_upload(r: &Recording, endpoint: &str) {
    r.rec.set_property("upload-url", UPLOAD_URL);
    r.rec.set_property("upload-endpoint", endpoint);
    r.rec.set_property("upload-access-key", ACCESS_KEY);
    r.rec.set_property("upload-secret-key", SECRET_KEY);
}

/// 1 s of near-lossless noise (about 15 MB: 3 parts of 5 MiB) recorded as
/// one MP4 uploaded through `proxy` with 5 MiB parts.
fn noise_recording(td: &TestDir, proxy: &S3Proxy) -> Recording {
    let r = Recording::launch(
        "liverecordsink name=rec videotestsrc num-buffers=30 pattern=snow \
         ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! x264enc pass=quant quantizer=4 speed-preset=ultrafast key-int-max=15 \
         ! h264parse ! queue ! rec.video",
    );
    r.set_location(td);
    set_upload(&r, &proxy.endpoint());
    r.rec.set_property("upload-part-size", 5u32);
    r
}

/// Waits (bounded) until `n` upload-done messages were posted.
fn wait_uploads(r: &Recording, n: usize, timeout: Duration) -> Vec<gst::Structure> {
    let deadline = Instant::now() + timeout;
    loop {
        let done = r.messages_named("liverecordsink-upload-done");
        if done.len() >= n {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{n} uploads not done within {timeout:?} ({} done); failures: {:?}; errors: {:?}",
            done.len(),
            r.messages_named("liverecordsink-delivery-failed"),
            r.errors()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The index's recordings (no `event`) and its `uploaded` lines by file-id.
fn index_uploads(td: &TestDir) -> (Vec<Record>, HashMap<String, Vec<Record>>) {
    let all = read_index(&td.index_path());
    let recordings: Vec<Record> = all
        .iter()
        .filter(|r| r.get("event").is_none())
        .cloned()
        .collect();
    let mut uploaded: HashMap<String, Vec<Record>> = HashMap::new();
    for r in all
        .iter()
        .filter(|r| r.get("event").and_then(|e| e.as_str()) == Some("uploaded"))
    {
        uploaded
            .entry(rec_str(r, "file-id"))
            .or_default()
            .push(r.clone());
    }
    (recordings, uploaded)
}

/// Every recording of the index was uploaded exactly once, byte for byte;
/// HLS playlists with every segment they list, next to them.
fn assert_all_uploaded(td: &TestDir, server: &S3Server) -> usize {
    let (recordings, uploaded) = index_uploads(td);
    assert!(!recordings.is_empty());
    for rec in &recordings {
        let id = rec_str(rec, "file-id");
        let ups = uploaded.get(&id).cloned().unwrap_or_default();
        assert_eq!(ups.len(), 1, "{id}: uploaded lines {ups:#?}");
        let up = &ups[0];
        let key = rec_str(up, "object-key");
        assert!(!rec_str(up, "etag").is_empty(), "{up:?}");
        assert!(
            rec_str(up, "object-url").ends_with(&key.replace(' ', "%20")),
            "{up:?}"
        );
        let local = std::fs::read(rec_str(rec, "location")).expect("local file");
        let remote = server
            .object(&key)
            .unwrap_or_else(|| panic!("no object {key}; have {:?}", server.keys()));
        assert_eq!(
            sha(&remote),
            sha(&local),
            "{key} differs from the local file"
        );
        if rec_str(rec, "format") != "hls" {
            assert_eq!(rec_u64(up, "size"), local.len() as u64);
        } else {
            let text = String::from_utf8(local).unwrap();
            let dir = Path::new(&key).parent().unwrap().to_path_buf();
            let local_dir = PathBuf::from(rec_str(rec, "location"))
                .parent()
                .unwrap()
                .to_path_buf();
            let segs: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect();
            assert!(!segs.is_empty(), "{text}");
            for s in segs {
                let k = dir.join(s).to_string_lossy().into_owned();
                let remote = server
                    .object(&k)
                    .unwrap_or_else(|| panic!("no segment {k}"));
                let local = std::fs::read(local_dir.join(s)).unwrap();
                assert_eq!(sha(&remote), sha(&local), "{k}");
            }
        }
    }
    recordings.len()
}

fn outbox_jobs(td: &TestDir) -> Vec<serde_json::Value> {
    std::fs::read_dir(td.path().join("outbox/live"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// 3 s of live H.264 + AAC as mp4+hls, record-interval=1: every MP4 and
/// the playlist (and each of its segments) arrive with the same bytes; the
/// index has one `uploaded` line per recording; `upload-done` carries the
/// object key, URL, size and ETag; `playback-url` (`{object_url}`) points
/// at the object.
#[test]
fn closed_files_are_uploaded_with_the_same_bytes() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let proxy = S3Proxy::start(td.path(), server.port);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 formats=mp4+hls hls-segment-duration=1 \
         {} ! queue ! rec.video {} ! queue ! rec.audio",
        video_branch(Some(90), true),
        audio_branch(Some(audio_buffers_for(3.0)), true)
    ));
    r.set_location(&td);
    set_upload(&r, &proxy.endpoint());
    r.rec.set_property("playback-url-template", "{object_url}");
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let closed = r.closed();
    assert!(closed.len() >= 4, "3 MP4s and a playlist: {closed:#?}");
    let done = wait_uploads(&r, closed.len(), Duration::from_secs(60));
    r.stop();
    assert_eq!(done.len(), closed.len(), "{done:#?}");
    for d in &done {
        assert_fields(d, &["object-key", "object-url", "etag", "size", "file-id"]);
        let c = closed
            .iter()
            .find(|c| get_str(c, "file-id") == get_str(d, "file-id"))
            .expect("an upload of a closed file");
        assert_eq!(get_str(c, "playback-url"), get_str(d, "object-url"));
        assert!(get_str(d, "object-key").starts_with("vod/live/"), "{d}");
    }
    assert_eq!(assert_all_uploaded(&td, &server), closed.len());
    assert!(outbox_jobs(&td).is_empty(), "{:?}", outbox_jobs(&td));
    // Segments go as they are added, each followed by the playlist.
    let puts: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT")
        .map(|s| s.path.clone())
        .collect();
    let segs: Vec<usize> = (0..puts.len())
        .filter(|&i| puts[i].ends_with(".ts"))
        .collect();
    let lists: Vec<usize> = (0..puts.len())
        .filter(|&i| puts[i].ends_with(".m3u8"))
        .collect();
    eprintln!(
        "PUTs: {} segments, {} playlist versions, {} in all",
        segs.len(),
        lists.len(),
        puts.len()
    );
    assert!(segs.len() >= 3, "{puts:?}");
    assert!(
        lists.len() >= 2,
        "the playlist is uploaded as it grows: {puts:?}"
    );
    assert!(lists[0] < *segs.last().unwrap(), "{puts:?}");
    assert!(
        lists.last() > segs.last(),
        "the playlist goes after its last segment: {puts:?}"
    );
}

/// The S3 server is down while 3 files close and comes back 5 s after it
/// stopped: every file arrives, none twice (one `upload-done` and one
/// `uploaded` line each), nothing gives up.
#[test]
fn files_closed_during_an_s3_outage_arrive_once() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let mut server = S3Server::start(&td.path().join("s3"));
    let endpoint = server.endpoint();
    server.stop();
    let stopped = Instant::now();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 {} ! queue ! rec.video",
        video_branch(Some(90), true),
    ));
    r.set_location(&td);
    set_upload(&r, &endpoint);
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let closed = r.closed();
    assert!(closed.len() >= 3, "{closed:#?}");
    assert!(r.messages_named("liverecordsink-upload-done").is_empty());
    std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
    server.restart();
    let done = wait_uploads(&r, closed.len(), Duration::from_secs(90));
    // Time for a duplicate to show up, if there were one.
    std::thread::sleep(Duration::from_secs(2));
    let done_after = r.messages_named("liverecordsink-upload-done");
    r.stop();
    assert_eq!(done_after.len(), done.len(), "an upload was done twice");
    let mut keys: Vec<String> = done.iter().map(|d| get_str(d, "object-key")).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), closed.len());
    assert!(r
        .messages_named("liverecordsink-delivery-failed")
        .is_empty());
    assert_eq!(assert_all_uploaded(&td, &server), closed.len());
    eprintln!(
        "outage: {} files closed while S3 was down, {} uploads done once each after it came back",
        closed.len(),
        done.len()
    );
}

/// A 1 s recording of near-lossless noise (about 15 MB) with 5 MiB parts goes
/// as a multipart upload. Parts from 3 on fail (HTTP 503) and the element
/// is stopped: the job keeps the upload id and parts 1-2 (ListParts on the
/// server agrees). After a restart, with the server healthy, the upload
/// resumes at part 3: parts 1 and 2 are never sent again. Callbacks
/// (file-closed, upload-done) pending at the stop are delivered too.
#[test]
fn a_multipart_upload_resumes_after_a_stop() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let proxy = S3Proxy::start(td.path(), server.port);
    proxy.set_mode("fail-parts-from:3");
    let cb_port = servers::free_tcp_port();
    let launch = || {
        let r = noise_recording(&td, &proxy);
        r.rec
            .set_property("callback-url", format!("http://127.0.0.1:{cb_port}/cb"));
        r.rec
            .set_property_from_str("callback-events", "file-closed+upload-done");
        r
    };
    let r = launch();
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let first = rec_path(&r.closed()[0]);
    let size = std::fs::metadata(&first).unwrap().len();
    assert!(size > 10 << 20, "the file is {size} bytes, want 3 parts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy
        .seen()
        .iter()
        .any(|s| s.status == 503 && s.query["partNumber"] == "3")
    {
        assert!(
            Instant::now() < deadline,
            "part 3 never tried: {:?}",
            proxy.seen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r.stop();

    let jobs = outbox_jobs(&td);
    let upload = jobs
        .iter()
        .find(|j| j["kind"] == "upload")
        .expect("the upload waits in the outbox");
    let mp = &upload["payload"]["multipart"];
    assert_eq!(mp["etags"].as_array().unwrap().len(), 2, "{upload}");
    let key = upload["payload"]["key"].as_str().unwrap().to_string();
    let client = server.client();
    let parts = client
        .list_parts(&key, mp["upload-id"].as_str().unwrap())
        .unwrap();
    assert_eq!(parts, [1, 2], "the server holds parts 1 and 2");
    assert_eq!(
        jobs.iter().filter(|j| j["kind"] == "callback").count(),
        1,
        "the file-closed callback waits: {jobs:#?}"
    );

    proxy.set_mode("pass");
    let rx = Receiver::start_on(td.path(), 0, cb_port);
    let r = launch();
    r.play();
    r.wait_eos(Duration::from_secs(60));
    // The first file's upload (resumed) and the second file's.
    wait_uploads(&r, 2, Duration::from_secs(60));
    // file-closed and upload-done of both files.
    let reqs = rx.wait_delivered(4, Duration::from_secs(60));
    r.stop();

    let seen = proxy.seen();
    let puts = |n: &str| {
        seen.iter()
            .filter(|s| s.method == "PUT" && s.path.ends_with(&key) && s.query["partNumber"] == n)
            .map(|s| s.status)
            .collect::<Vec<u16>>()
    };
    assert_eq!(puts("1"), [200], "part 1 sent once: {seen:?}");
    assert_eq!(puts("2"), [200], "part 2 sent once: {seen:?}");
    assert_eq!(puts("3").last(), Some(&200), "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|s| s.method == "POST"
                && s.path.ends_with(&key)
                && s.query.get("uploads").is_some())
            .count(),
        1,
        "one multipart upload created for {key}"
    );
    assert_all_uploaded(&td, &server);
    let mut events: Vec<String> = reqs
        .iter()
        .filter(|q| q["outcome"] == "200")
        .map(|q| header(q, "webhook-id").to_string())
        .collect();
    events.sort();
    let n = events.len();
    events.dedup();
    assert_eq!(n, events.len(), "a callback delivered twice");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.ends_with(".upload-done"))
            .count(),
        2,
        "{events:?}"
    );
}

fn rec_path(s: &gst::StructureRef) -> PathBuf {
    PathBuf::from(get_str(s, "location"))
}

/// Bad upload settings are errors at READY→PAUSED, naming the problem.
#[test]
fn bad_upload_settings_are_clear_errors() {
    init();
    let ok_url = "s3://recordings/{filename}";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("upload-url", "http://x/{filename}")], "s3://"),
        (
            &[("upload-url", "s3://recordings/{nope}/{filename}")],
            "{nope}",
        ),
        (
            &[("upload-url", "s3://recordings/fixed.mp4")],
            "{filename} or {path}",
        ),
        (
            &[("upload-url", "s3://Bad_Bucket/{filename}")],
            "bucket name",
        ),
        (
            &[
                ("upload-url", ok_url),
                ("upload-endpoint", "127.0.0.1:9000"),
            ],
            "upload-endpoint",
        ),
        (
            &[("upload-url", ok_url), ("upload-secret-key", "")],
            "credentials",
        ),
        (
            &[("playback-url-template", "{object_url}")],
            "needs upload-url",
        ),
        (
            &[
                ("upload-url", "s3://recordings/{file_id}/{filename}"),
                ("formats", "hls"),
            ],
            "{file_id}",
        ),
        (
            &[
                ("upload-url", ok_url),
                ("outbox-location", "/proc/nope/outbox"),
            ],
            "/proc/nope/outbox",
        ),
    ];
    for (props, needle) in cases {
        let mut all = vec![
            ("upload-access-key", ACCESS_KEY),
            ("upload-secret-key", SECRET_KEY),
        ];
        all.extend_from_slice(props);
        let e = refused_at_paused(&all);
        assert!(e.contains(needle), "{props:?}: {e}");
    }
}

/// `gst-launch-1.0` records live video (record-interval=1) with uploads
/// (the S3 proxy answers 503 to everything) and callbacks (nobody listens
/// on the callback port), and is killed with SIGKILL after 4 s, jobs
/// pending. The next run (the S3 server healthy, a receiver on the port)
/// delivers every job: each recording of the index — those closed before
/// the kill, the one recovered from the kill, and the new run's — is
/// uploaded exactly once with the same bytes, and its file-closed and
/// upload-done callbacks are delivered once each.
#[test]
fn jobs_pending_at_a_sigkill_are_delivered_after_a_restart() {
    use std::process::{Command, Stdio};
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let proxy = S3Proxy::start(td.path(), server.port);
    proxy.set_mode("fail-all");
    let cb_port = servers::free_tcp_port();
    let cb_url = format!("http://127.0.0.1:{cb_port}/cb");
    let pipeline = format!(
        "{} ! liverecordsink name=rec record-interval=1",
        video_branch(None, true)
    );
    let mut args: Vec<String> = pipeline.split_whitespace().map(String::from).collect();
    args.extend([
        format!("location={}", td.default_location()),
        format!("index-location={}", td.index_path().display()),
        format!("upload-url={UPLOAD_URL}"),
        format!("upload-endpoint={}", proxy.endpoint()),
        format!("upload-access-key={ACCESS_KEY}"),
        format!("upload-secret-key={SECRET_KEY}"),
        format!("callback-url={cb_url}"),
    ]);
    let err = td.path().join("gst-launch.err");
    let mut child = process::ChildGuard(process::spawn(
        Command::new("gst-launch-1.0")
            .args(&args)
            .env("GST_PLUGIN_PATH", process::plugin_dir())
            .env("GST_REGISTRY", td.path().join("registry.bin"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap()),
        process::GST_TOOLS_PKG,
    ));
    // Wait for the first closed file, then record on for 3 s more.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !td.index_path().exists() {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "gst-launch-1.0 exited early ({status}): {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no file closed within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    child.0.kill().expect("cannot kill gst-launch-1.0");
    child.0.wait().unwrap();
    let before = read_index(&td.index_path()).len();
    let pending = outbox_jobs(&td);
    assert!(
        pending.iter().filter(|j| j["kind"] == "upload").count() >= before
            && pending.iter().filter(|j| j["kind"] == "callback").count() >= before,
        "{before} files closed, jobs pending: {pending:#?}"
    );
    assert!(server.keys().is_empty(), "{:?}", server.keys());
    eprintln!(
        "killed after {before} closed files; {} upload and {} callback jobs pending",
        pending.iter().filter(|j| j["kind"] == "upload").count(),
        pending.iter().filter(|j| j["kind"] == "callback").count()
    );

    proxy.set_mode("pass");
    let rx = Receiver::start_on(td.path(), 0, cb_port);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 {} ! queue ! rec.video",
        video_branch(Some(30), true),
    ));
    r.set_location(&td);
    set_upload(&r, &proxy.endpoint());
    r.rec.set_property("callback-url", cb_url.as_str());
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let recordings = index_uploads(&td).0.len();
    assert!(
        recordings > before,
        "the killed run's open file was recovered and the new run recorded"
    );
    // Every recording's upload-done, then file-closed + upload-done each.
    let deadline = Instant::now() + Duration::from_secs(90);
    while index_uploads(&td).1.len() < recordings {
        assert!(
            Instant::now() < deadline,
            "not every recording uploaded: {:?}",
            index_uploads(&td).1.keys()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reqs = rx.wait_delivered(2 * recordings, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(1));
    r.stop();
    assert_eq!(assert_all_uploaded(&td, &server), recordings);
    let mut ids: Vec<String> = reqs
        .iter()
        .filter(|q| q["outcome"] == "200")
        .map(|q| header(q, "webhook-id").to_string())
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(n, ids.len(), "a callback delivered twice: {ids:?}");
    assert_eq!(n, 2 * recordings, "{ids:?}");
    eprintln!(
        "after the restart: {recordings} recordings uploaded once each, {n} callbacks delivered once each, {} S3 requests refused before",
        proxy.seen().iter().filter(|s| s.status == 503).count()
    );
    let puts: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.status == 200)
        .map(|s| s.path.clone())
        .collect();
    let mut unique = puts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        puts.len(),
        "an object uploaded twice: {puts:?}"
    );
    assert!(outbox_jobs(&td).is_empty(), "{:#?}", outbox_jobs(&td));
}

/// `upload-delete-local`: once uploaded and indexed as uploaded (with
/// `local-deleted`), the local MP4s, the playlist and its segments are
/// deleted; the objects hold the bytes (compared with copies taken before).
#[test]
fn uploaded_files_are_deleted_locally_when_asked() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 formats=mp4+hls hls-segment-duration=1 {} ! queue ! rec.video",
        video_branch(Some(60), false),
    ));
    r.set_location(&td);
    set_upload(&r, &server.endpoint());
    r.rec.set_property("upload-delete-local", true);
    // Hold the uploads until every file is closed, to copy them first.
    let mut server = server;
    server.stop();
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let closed = r.closed();
    let local: Vec<PathBuf> = files_under(&td.rec_dir());
    let copies: HashMap<PathBuf, Vec<u8>> = local
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    assert!(local.len() >= 4, "{local:?}");
    server.restart();
    let done = wait_uploads(&r, closed.len(), Duration::from_secs(60));
    r.stop();
    let left = files_under(&td.rec_dir());
    assert!(left.is_empty(), "local files left after upload: {left:?}");
    let (recordings, uploaded) = index_uploads(&td);
    assert_eq!(recordings.len(), closed.len());
    for rec in &recordings {
        let up = &uploaded[&rec_str(rec, "file-id")][0];
        assert_eq!(up["local-deleted"], true, "{up:?}");
    }
    // Every local file (MP4s, segments, playlist) is in the bucket.
    let keys = server.keys();
    for (path, bytes) in &copies {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let key = keys
            .iter()
            .find(|k| k.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} not uploaded: {keys:?}"));
        assert_eq!(sha(&server.object(key).unwrap()), sha(bytes), "{key}");
    }
    eprintln!(
        "delete-local: {} files deleted after {} uploads",
        copies.len(),
        done.len()
    );
}

/// An upload that the server refuses for good (HTTP 403 on part 2 of a
/// multipart upload) gives up at once: the multipart upload is aborted
/// (ListParts finds it gone), the job is kept in `outbox/failed/` with the
/// error, `liverecordsink-delivery-failed` is posted, and the index has no
/// `uploaded` line for the file, whose local copy stays.
#[test]
fn a_refused_upload_gives_up_aborts_and_is_kept() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let proxy = S3Proxy::start(td.path(), server.port);
    proxy.set_mode("deny-parts-from:2");
    let r = noise_recording(&td, &proxy);
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    while r
        .messages_named("liverecordsink-delivery-failed")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "no delivery-failed: {:?}",
            proxy.seen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = r.messages_named("liverecordsink-delivery-failed");
    r.stop();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let f = &failed[0];
    assert_eq!(get_str(f, "kind"), "upload");
    assert!(get_str(f, "error").contains("403"), "{f}");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(get_str(f, "location")).unwrap()).unwrap();
    assert!(
        kept["last-error"].as_str().unwrap().contains("403"),
        "{kept}"
    );
    let upload_id = kept["payload"]["multipart"]["upload-id"].as_str().unwrap();
    let key = kept["payload"]["key"].as_str().unwrap();
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "DELETE" && s.query["uploadId"] == upload_id && s.status < 300),
        "the multipart upload was not aborted: {seen:?}"
    );
    let client = server.client();
    let parts = client.list_parts(key, upload_id);
    assert!(
        parts.as_ref().map_or(true, |p| p.is_empty()),
        "the upload still holds parts: {parts:?}"
    );
    assert!(server.object(key).is_none());
    let (recordings, uploaded) = index_uploads(&td);
    assert_eq!(recordings.len(), 1);
    assert!(uploaded.is_empty());
    assert!(Path::new(&rec_str(&recordings[0], "location")).exists());
    assert!(
        outbox_jobs(&td).is_empty(),
        "the job left the outbox for failed/"
    );
}

/// `upload-delete-local` never deletes a file whose own upload did not
/// succeed: one HLS segment is refused for good (403) and gives up; the
/// playlist's upload then deletes the other segments, the playlist and the
/// MP4s, but keeps that segment, with a warning.
#[test]
fn delete_local_keeps_a_segment_whose_upload_gave_up() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let server = S3Server::start(&td.path().join("s3"));
    let proxy = S3Proxy::start(td.path(), server.port);
    proxy.set_mode("deny-path:_00001.ts");
    let r = Recording::launch(&format!(
        "liverecordsink name=rec formats=hls hls-segment-duration=1 {} ! queue ! rec.video",
        video_branch(Some(90), false),
    ));
    r.set_location(&td);
    set_upload(&r, &proxy.endpoint());
    r.rec.set_property("upload-delete-local", true);
    r.play();
    r.wait_eos(Duration::from_secs(60));
    let done = wait_uploads(&r, 1, Duration::from_secs(60));
    let failed = r.messages_named("liverecordsink-delivery-failed");
    r.stop();
    assert_eq!(done.len(), 1, "the playlist: {done:#?}");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let left = files_under(&td.rec_dir());
    assert_eq!(left.len(), 1, "only the refused segment stays: {left:?}");
    assert!(left[0].to_string_lossy().ends_with("_00001.ts"), "{left:?}");
    let kept = std::fs::read(&left[0]).unwrap();
    assert!(!kept.is_empty());
    assert!(
        !server.keys().iter().any(|k| k.ends_with("_00001.ts")),
        "{:?}",
        server.keys()
    );
}
