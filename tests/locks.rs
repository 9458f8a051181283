// SPDX-License-Identifier: MIT OR Apache-2.0
//! The lock discipline holds: no element lock is held while a message is
//! posted, so an application's sync bus handler may read `stats` and stop
//! the pipeline from `file-closed` without a deadlock.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn sync_handler_reads_stats_and_stops_the_pipeline_on_file_closed() {
    require_elements(&["videotestsrc", "x264enc", "h264parse", "mp4mux"]);
    let td = TestDir::new();
    init();
    // Live, 1 s files: the first file closes while the pipeline plays.
    let pipeline = gst::parse::launch(&format!(
        "{} ! queue ! liverecordsink name=rec record-interval=1",
        video_branch(None, true)
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let rec = pipeline.by_name("rec").expect("rec");
    rec.set_property("location", td.default_location().as_str());
    rec.set_property("index-location", td.index_path().to_str().unwrap());

    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let handled = Arc::new(AtomicU64::new(0));
    let weak = pipeline.downgrade();
    let rec_weak = rec.downgrade();
    let h = handled.clone();
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        let closed = matches!(msg.view(), gst::MessageView::Element(e)
            if e.structure().is_some_and(|s| s.name() == "liverecordsink-file-closed"));
        if closed && h.fetch_add(1, Ordering::SeqCst) == 0 {
            let stats = rec_weak
                .upgrade()
                .map(|r| r.property::<gst::Structure>("stats"));
            let files = stats
                .and_then(|s| s.get::<u64>("files-closed").ok())
                .unwrap_or(0);
            if let Some(p) = weak.upgrade() {
                let _ = p.set_state(gst::State::Null);
            }
            let _ = done_tx.send(files);
        }
        gst::BusSyncReply::Pass
    });

    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let files = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the sync handler did not read stats and stop the pipeline within 30 s: deadlock");
    assert!(
        files >= 1,
        "stats read in the handler: files-closed {files}"
    );
    // The pipeline really stopped, and everything it recorded is final.
    let (_, state, _) = pipeline.state(gst::ClockTime::from_seconds(10));
    assert_eq!(state, gst::State::Null);
    let all = files_under(&td.rec_dir());
    assert!(with_ext(&all, "part").is_empty(), "left: {all:?}");
    let mp4 = with_ext(&all, "mp4");
    assert!(
        mp4.len() >= 2,
        "the first file and the stopped one: {all:?}"
    );
    let records = read_index(&td.index_path());
    assert_eq!(records.len(), mp4.len(), "index: {records:#?}");
    for f in &mp4 {
        assert_starts_with_keyframe(f);
    }
    let _ = pipeline.set_state(gst::State::Null);
}
