// SPDX-License-Identifier: MIT OR Apache-2.0
//! SPEC §9 in-process: retention (`storage-period`) and the bad-input table
//! (hostile stream ids, templates that cannot name files). Crash recovery
//! and the one-writer lock need a process to kill: `tests/crash.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A live AV recording of `secs` seconds into `location` for `stream`.
fn record(td: &TestDir, location: &str, stream: &str, secs: f64, props: &str) -> Recording {
    let r = Recording::launch(&format!(
        "liverecordsink name=rec record-interval=1 {props} \
         {} ! queue ! rec.video {} ! queue ! rec.audio",
        video_branch(Some((secs * 30.0) as u32), true),
        audio_branch(Some(audio_buffers_for(secs)), true)
    ));
    r.rec.set_property("location", location);
    r.rec.set_property("stream-id", stream);
    r.rec
        .set_property("index-location", td.index_path().to_str().unwrap());
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    r
}

fn locations(records: &[Record], stream: &str, deleted: bool) -> Vec<PathBuf> {
    records
        .iter()
        .filter(|r| rec_str(r, "stream-id") == stream)
        .filter(|r| r.get("event").is_some() == deleted)
        .map(|r| PathBuf::from(rec_str(r, "location")))
        .collect()
}

/// Retention: with `storage-period=1`, the recordings of an earlier run go
/// at start and their emptied session folder with them; recordings of this
/// run go once older than the period, while the open file stays; another
/// stream's files and a foreign file stay; the index records every
/// deletion, each announced by `file-deleted`.
#[test]
fn retention_deletes_old_recordings_and_empty_folders() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let rec = td.rec_dir();
    let location = format!("{}/{{stream_id}}/s{{session}}/{{index}}", rec.display());
    record(&td, &location, "cam", 2.0, "");
    record(&td, &location, "other", 2.0, "");
    std::fs::create_dir_all(rec.join("cam")).unwrap();
    let foreign = rec.join("cam/notes.txt");
    std::fs::write(&foreign, "not a recording").unwrap();
    let first = read_index(&td.index_path());
    let old_cam = locations(&first, "cam", false);
    assert!(old_cam.len() >= 2, "run 1 made {old_cam:?}");
    assert!(old_cam.iter().all(|p| p.starts_with(rec.join("cam/s1"))));
    std::thread::sleep(Duration::from_millis(1500));

    let r = record(&td, &location, "cam", 5.0, "storage-period=1");
    let deleted_msgs = r.messages_named("liverecordsink-file-deleted");
    let records = read_index(&td.index_path());
    let deleted = locations(&records, "cam", true);
    let kept = locations(&records, "cam", false);

    for p in &old_cam {
        assert!(
            deleted.contains(p),
            "{} of the earlier run not deleted",
            p.display()
        );
        assert!(!p.exists(), "{} still exists", p.display());
    }
    assert!(!rec.join("cam/s1").exists(), "the emptied folder s1 stays");
    assert!(foreign.exists(), "a foreign file was deleted");
    for p in locations(&records, "other", false) {
        assert!(p.exists(), "another stream's {} was deleted", p.display());
    }
    assert!(
        deleted.iter().any(|p| p.starts_with(rec.join("cam/s2"))),
        "nothing of the running session was deleted: {deleted:?}"
    );
    // The file open until EOS (the last one) was never deleted.
    let last = r
        .closed()
        .last()
        .map(|c| PathBuf::from(get_str(c, "location")));
    let last = last.expect("no file closed");
    assert!(last.exists(), "the last file {} is gone", last.display());
    assert!(!deleted.contains(&last));
    // The index and the messages tell the same story.
    assert_eq!(deleted_msgs.len(), deleted.len(), "{deleted_msgs:#?}");
    for m in &deleted_msgs {
        let loc = PathBuf::from(get_str(m, "location"));
        assert!(
            deleted.contains(&loc),
            "{} announced, not indexed",
            loc.display()
        );
    }
    for p in kept.iter().filter(|p| !deleted.contains(p)) {
        assert!(
            p.exists(),
            "{} is indexed, not deleted, but missing",
            p.display()
        );
    }
    eprintln!(
        "retention: {} deleted ({} of the earlier run), {} kept",
        deleted.len(),
        old_cam.len(),
        kept.len() - deleted.len()
    );
}

/// The error of a pipeline that cannot start, or `None` if it recorded.
fn start_error(location: &str, stream: &str, index: &Path) -> Option<String> {
    let r = Recording::launch(&format!(
        "liverecordsink name=rec {} ! queue ! rec.video",
        video_branch(Some(15), false)
    ));
    r.rec.set_property("location", location);
    r.rec.set_property("stream-id", stream);
    r.rec
        .set_property("index-location", index.to_str().unwrap());
    let started = r.pipeline.set_state(gst::State::Playing).is_ok();
    let end = started.then(|| r.wait_end(TIMEOUT));
    r.stop();
    match end {
        Some(End::Eos) => None,
        Some(End::Error(e)) => Some(e),
        None => Some(r.errors().join("; ")),
    }
}

/// Bad input, one row per case, each with its documented outcome.
#[test]
fn bad_input_table() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let td = TestDir::new();
    let rec = td.rec_dir();
    let index = td.index_path();
    let loc = format!("{}/{{stream_id}}_{{index}}", rec.display());

    // Hostile and odd stream ids record inside the location, sanitized.
    for id in ["../../x", "/etc/passwd", "a\nb", &"y".repeat(5000)] {
        assert_eq!(start_error(&loc, id, &index), None, "stream-id {id:?}");
    }
    let files = files_under(&rec);
    assert_eq!(with_ext(&files, "mp4").len(), 4, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(&rec)), "{files:?}");
    let ids: Vec<String> = read_index(&index)
        .iter()
        .map(|r| rec_str(r, "stream-id"))
        .collect();
    assert!(
        ids.contains(&"a\nb".to_string()),
        "the index keeps the id as given: {ids:?}"
    );
    assert!(!Path::new("/etc/passwd.mp4").exists());

    let rows: [(&str, &str, &str); 4] = [
        ("", &loc, "stream-id must not be empty"),
        ("cam", &format!("{}/", rec.display()), "names a directory"),
        (
            "cam",
            &format!("{}/{{nope}}", rec.display()),
            "unknown placeholder {nope}",
        ),
        ("cam", "/proc/nope/{index}", "/proc/nope"),
    ];
    for (id, location, needle) in rows {
        let e = start_error(location, id, &index)
            .unwrap_or_else(|| panic!("{location:?} / {id:?} recorded"));
        assert!(e.contains(needle), "{location:?} / {id:?}: {e}");
    }
    let r = Recording::launch(
        "fakesrc num-buffers=0 ! fakesink liverecordsink name=rec storage-period=60",
    );
    r.rec.set_property("index-location", "");
    assert!(r.pipeline.set_state(gst::State::Paused).is_err());
    let e = r.errors().join("; ");
    assert!(e.contains("storage-period needs index-location"), "{e}");
    r.stop();
}

/// A codec change mid-stream (H.264 → H.265) into mp4+flv: FLV cannot hold
/// H.265 on GStreamer 1.22, so the flv channel stops with a warning naming
/// the format and the caps, its file closed and whole; the mp4 channel goes
/// on in a new file; no error, every frame in the MP4s.
#[test]
fn codec_change_stops_only_the_format_that_cannot_hold_it() {
    use common::scripted::*;
    require_elements(&["x265enc", "h265parse", "flvmux", "mp4mux"]);
    let td = TestDir::new();
    let mut s = Scripted::new(&td, true, true, |rec| {
        rec.set_property_from_str("formats", "mp4+flv");
    });
    let first = s.push_secs(0.0, 2.0);
    s.sync();
    assert!(
        s.set_video(h265_320x240()),
        "the element refused H.265 caps"
    );
    let second = s.push_secs(2.0, 2.0);
    s.eos();
    s.r.wait_eos(TIMEOUT);
    s.r.stop();
    assert!(s.r.errors().is_empty(), "errors: {:?}", s.r.errors());
    let closed = common::announce::check_announcements(&s.r.messages(), &td.index_path());
    let of = |f: &str| -> Vec<gst::Structure> {
        closed
            .iter()
            .filter(|c| get_str(c, "format") == f)
            .cloned()
            .collect()
    };
    let (mp4, flv) = (of("mp4"), of("flv"));
    assert_eq!(mp4.len(), 2, "{mp4:#?}");
    assert_eq!(get_str(&mp4[0], "reason"), "caps-changed");
    check_frames(&mp4, first.video + second.video, first.audio + second.audio);
    assert_eq!(flv.len(), 1, "{flv:#?}");
    assert_eq!(get_str(&flv[0], "reason"), "caps-changed");
    check_frames(&flv, first.video, first.audio);
    for c in &closed {
        let (_, problems) = common::packets::file_problems(Path::new(&get_str(c, "location")));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
