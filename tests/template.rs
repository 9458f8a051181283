// SPDX-License-Identifier: MIT OR Apache-2.0
//! Location templates with a real recording (SPEC §5): `{end}` resolved at
//! close, hostile stream ids kept inside, unknown placeholders rejected at
//! PAUSED.

mod common;

use std::path::{Component, Path};
use std::time::Duration;

use chrono::Utc;
use common::*;
use gst::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Records 2 s of video with `location` and `stream-id`; returns the
/// recording after EOS.
fn record_two_seconds(td: &TestDir, location: &str, stream_id: &str) -> Recording {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec {} ! rec.video",
        video_branch(Some(60), false)
    ));
    r.rec.set_property("location", location);
    r.rec.set_property("stream-id", stream_id);
    r.rec
        .set_property("index-location", td.index_path().to_str().unwrap());
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    r
}

#[test]
fn end_placeholder_is_resolved_at_close() {
    let td = TestDir::new();
    let location = format!(
        "{}/{{stream_id}}/{{session}}/{{format}}/{{start:%Y}}/{{index}}_{{end:%H%M%S}}",
        td.rec_dir().display()
    );
    let r = record_two_seconds(&td, &location, "cam1");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1, "file-closed messages: {closed:#?}");
    let c = &closed[0];

    let start = parse_time(&get_str(c, "start-time")).with_timezone(&Utc);
    let end = parse_time(&get_str(c, "end-time")).with_timezone(&Utc);
    let want = td.rec_dir().join(format!(
        "cam1/{}/mp4/{}/{:05}_{}.mp4",
        get_u64(c, "session-id"),
        start.format("%Y"),
        get_u64(c, "index"),
        end.format("%H%M%S"),
    ));
    let got = get_str(c, "location");
    assert_eq!(
        Path::new(&got),
        want,
        "the final name must carry the end time of file-closed"
    );
    assert!(want.exists(), "{} does not exist", want.display());
    assert_eq!(
        files_under(&td.rec_dir()),
        std::slice::from_ref(&want),
        "exactly one file expected"
    );

    // The .part was written in the same directory; its {end} need not be
    // the final one.
    let opened = r.opened();
    let part = get_str(&opened[0], "location");
    assert!(part.ends_with(".mp4.part"), "file-opened location {part}");
    assert_eq!(
        Path::new(&part).parent(),
        want.parent(),
        "the .part and the final file are in different directories"
    );
    assert_starts_with_keyframe(&want);
}

#[test]
fn hostile_stream_id_stays_inside() {
    let td = TestDir::new();
    let base = td.path().join("a/b/rec");
    let location = format!("{}/{{stream_id}}/{{stream_id}}_{{index}}", base.display());
    let r = record_two_seconds(&td, &location, "../../evil");
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1);
    let c = &closed[0];
    // Messages carry the stream id as set; only paths are made safe.
    assert_eq!(get_str(c, "stream-id"), "../../evil");

    let loc = get_str(c, "location");
    let rel = Path::new(&loc)
        .strip_prefix(&base)
        .unwrap_or_else(|_| panic!("{loc} is not under {}", base.display()));
    assert!(
        rel.components().all(|c| matches!(c, Component::Normal(_))),
        "{loc}: the stream id added a non-normal path component"
    );
    assert_eq!(
        rel.components().count(),
        2,
        "{loc}: one directory, one file"
    );
    let canon = std::fs::canonicalize(&loc).unwrap();
    assert!(
        canon.starts_with(std::fs::canonicalize(&base).unwrap()),
        "{} escaped {}",
        canon.display(),
        base.display()
    );
    // Nothing was written anywhere else in the temp dir.
    for f in files_under(td.path()) {
        assert!(
            f.starts_with(&base) || f == td.index_path(),
            "file written outside the template's directory: {}",
            f.display()
        );
    }
    assert!(!td.path().join("a/evil").exists());
}

#[test]
fn unknown_placeholder_fails_at_paused() {
    init();
    let td = TestDir::new();
    let pipeline = gst::Pipeline::new();
    let rec = gst::ElementFactory::make("liverecordsink")
        .name("rec")
        .build()
        .expect("liverecordsink is not registered");
    pipeline.add(&rec).unwrap();
    rec.set_property(
        "location",
        format!("{}/{{stream_id}}_{{nope}}", td.rec_dir().display()).as_str(),
    );
    rec.set_property("index-location", td.index_path().to_str().unwrap());
    let r = Recording::with(pipeline, rec);

    let ret = r.pipeline.set_state(gst::State::Paused);
    assert!(
        ret.is_err(),
        "PAUSED must fail with an unknown placeholder, got {ret:?}"
    );
    match r.wait_end(Duration::from_secs(10)) {
        End::Error(e) => assert!(
            e.contains("nope"),
            "the error does not name the placeholder: {e}"
        ),
        End::Eos => panic!("EOS instead of an error"),
    }
    r.stop();
    assert!(
        files_under(td.path()).is_empty(),
        "files were created: {:?}",
        files_under(td.path())
    );
}

/// `playback-url-template` fills `playback-url` in the message and in the
/// index record, from the final location.
#[test]
fn playback_url_is_filled_from_the_final_location() {
    let td = TestDir::new();
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let r = Recording::launch(&format!(
        "liverecordsink name=rec {} ! rec.video",
        video_branch(Some(30), false)
    ));
    r.rec.set_property(
        "location",
        format!("{}/{{stream_id}}_{{index}}", td.rec_dir().display()),
    );
    r.rec.set_property("stream-id", "cam7");
    r.rec
        .set_property("index-location", td.index_path().to_str().unwrap());
    r.rec.set_property(
        "playback-url-template",
        "https://vod.example.com/{stream_id}/{filename}?id={file_id}",
    );
    r.play();
    r.wait_eos(TIMEOUT);
    r.stop();
    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1);
    let c = &closed[0];
    let want = format!(
        "https://vod.example.com/cam7/cam7_{:05}.mp4?id={}",
        get_u64(c, "index"),
        get_str(c, "file-id")
    );
    assert_eq!(get_str(c, "playback-url"), want);
    let index = read_index(&td.index_path());
    assert_eq!(rec_str(&index[0], "playback-url"), want);
}
