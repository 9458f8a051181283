// SPDX-License-Identifier: MIT OR Apache-2.0
//! Stopping a live pipeline without EOS finalises the open file with
//! `reason=stopped` (SPEC §6).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn stop_finalises_with_reason_stopped() {
    require_elements(AV_ELEMENTS);
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "liverecordsink name=rec {} ! queue ! rec.video {} ! queue ! rec.audio",
        video_branch(None, true),
        audio_branch(None, true)
    ));
    r.set_location(&td);
    let video = r.count_pad("video");
    let audio = r.count_pad("audio");
    r.play();
    r.run_for(Duration::from_secs(3));
    // Straight to NULL: no EOS.
    r.stop();
    assert!(r.errors().is_empty(), "errors: {:?}", r.errors());

    let files = files_under(&td.rec_dir());
    assert!(
        with_ext(&files, "part").is_empty(),
        ".part left after stopping: {files:?}"
    );
    let mp4 = with_ext(&files, "mp4");
    assert_eq!(mp4.len(), 1, "files: {files:?}");

    let records = read_index(&td.index_path());
    assert_eq!(records.len(), 1, "index: {records:#?}");
    assert_eq!(rec_str(&records[0], "reason"), "stopped");
    assert_eq!(Path::new(&rec_str(&records[0], "location")), mp4[0]);

    let closed = check_announcements(&r.messages(), &td.index_path());
    assert_eq!(closed.len(), 1);
    assert_eq!(get_str(&closed[0], "reason"), "stopped");

    let d = duration(&mp4[0]);
    assert!(
        (1.5..=4.0).contains(&d),
        "{}: {d} s after ~3 s of recording",
        mp4[0].display()
    );
    assert_starts_with_keyframe(&mp4[0]);
    let p = packets(&mp4[0]);
    assert_eq!(p.streams.len(), 2, "streams: {:?}", p.streams);
    // What the file holds is what the message says; frames that arrived while
    // stopping are refused, never half-written.
    let (v, a) = (
        get_u64(&closed[0], "video-frames"),
        get_u64(&closed[0], "audio-frames"),
    );
    assert_eq!((p.video, p.audio), (v, a), "ffprobe vs file-closed frames");
    assert!(
        v > 30 && v <= video.count(),
        "video {v} of {}",
        video.count()
    );
    assert!(
        a > 30 && a <= audio.count(),
        "audio {a} of {}",
        audio.count()
    );
}
