// SPDX-License-Identifier: MIT OR Apache-2.0
//! Issue 9, end to end with real components on loopback
//! (shared/notes/real-ingest.md):
//!
//! - nginx with libnginx-mod-rtmp, ffmpeg publishing 10 s with B-frames
//!   (`-bf 2`, as OBS does) over RTMP, read by `rtmp2src ! flvdemux !
//!   h264parse / aacparse ! liverecordsink formats=mp4+hls`;
//! - ffmpeg as an SRT caller sending MPEG-TS to `srtsrc mode=listener !
//!   tsdemux ! h264parse / aacparse` (ADTS, caps after video started).
//!
//! Both: every file correct at packet level (tests/common/packets.rs), and
//! the video frames recorded are the frames ffmpeg published, minus at most
//! one GOP (30 frames). Each test runs in a child process bounded by a
//! timeout; servers and publishers are stopped by PID when dropped.

mod common;

use std::time::Duration;

use common::isolate::in_child;
use common::packets::*;
use common::servers::*;
use common::*;
use gst::prelude::*;

const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
const SECS: u32 = 10;
const GOP: u64 = 30;

/// Stops the recording (NULL), waiting at most 10 s (on another thread);
/// a stop that hangs fails the test (and the recording is leaked, so that
/// its drop does not block again).
fn stop_bounded(r: Recording) -> Recording {
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = r.pipeline.clone();
    std::thread::spawn(move || {
        let _ = tx.send(p2.set_state(gst::State::Null));
    });
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let msgs = summary(&r.messages());
        std::mem::forget(r);
        panic!("stopping the recording did not return within 10 s; messages: {msgs}");
    }
    r
}

/// Waits for ffmpeg to finish publishing; it must have sent about SECS of
/// frames. `logs`: the server's, for the failure message.
fn publish(publisher: Publisher, logs: impl Fn() -> String) -> Published {
    let published = publisher.wait(Duration::from_secs(u64::from(SECS) + 30));
    eprintln!(
        "ffmpeg published {} frames ({}): {}",
        published.frames,
        published.status,
        published.stderr.trim()
    );
    assert!(
        published.frames >= u64::from(SECS) * 30 - GOP,
        "ffmpeg published only {} frames: {}\n{}",
        published.frames,
        published.stderr,
        logs()
    );
    published
}

/// The checks common to both: no error, every MP4 and HLS file correct,
/// frames recorded = frames published minus at most one GOP, audio about as
/// long as the video.
fn check(r: &Recording, published: u64) {
    assert!(
        r.errors().is_empty(),
        "errors on the bus: {:#?}",
        r.errors()
    );
    // 48 kHz AAC, 1024 samples a frame: 1.5625 audio frames per video frame.
    let audio_for = |v: u64| (v as f64 * 1.5625) as u64;
    assert_recording(
        r,
        &["mp4", "hls"],
        &Expect {
            min_video: Some(published.saturating_sub(GOP)),
            max_video: Some(published),
            min_audio: Some(audio_for(published.saturating_sub(2 * GOP))),
            ..Default::default()
        },
    );
}

/// nginx-rtmp + ffmpeg `-bf 2` publishing 10 s → rtmp2src ! flvdemux →
/// liverecordsink formats=mp4+hls. rtmp2src sends EOS when the publisher
/// leaves: EOS reaches the bus, every file is finalised and correct.
#[test]
fn rtmp_from_nginx_with_bframes() {
    if in_child("rtmp_from_nginx_with_bframes", CHILD_TIMEOUT, &[]) {
        return;
    }
    require_elements(&["rtmp2src", "flvdemux", "h264parse", "aacparse", "queue"]);
    let nginx = Nginx::start();
    let url = nginx.url("cam");
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "rtmp2src location={url} ! flvdemux name=d \
         d.video ! queue ! h264parse ! rec.video \
         d.audio ! queue ! aacparse ! rec.audio \
         liverecordsink name=rec formats=mp4+hls record-interval=4 hls-segment-duration=2"
    ));
    r.set_location(&td);
    r.play();
    // rtmp2src plays the stream before it is published (nginx waits).
    std::thread::sleep(Duration::from_millis(1000));
    let published = publish(Publisher::rtmp(&url, SECS), || nginx.logs());
    match r.wait_end(Duration::from_secs(20)) {
        End::Eos => {}
        End::Error(e) => panic!("the recording failed: {e}\nnginx: {}", nginx.logs()),
    }
    let r = stop_bounded(r);
    check(&r, published.frames);
}

/// ffmpeg as an SRT caller (MPEG-TS, `-bf 2`) → srtsrc mode=listener !
/// tsdemux → h264parse / aacparse (ADTS, whose caps come after video
/// started) → liverecordsink formats=mp4+hls. srtsrc does not send EOS when
/// the caller leaves: the test sends EOS to the pipeline once ffmpeg is
/// done; every file is finalised and correct.
#[test]
fn srt_caller_mpegts_adts() {
    if in_child("srt_caller_mpegts_adts", CHILD_TIMEOUT, &[]) {
        return;
    }
    require_elements(&["srtsrc", "tsdemux", "h264parse", "aacparse", "queue"]);
    let port = free_udp_port();
    let td = TestDir::new();
    let r = Recording::launch(&format!(
        "srtsrc uri=\"srt://127.0.0.1:{port}?mode=listener\" keep-listening=true \
         ! tsdemux name=d \
         queue name=vq ! h264parse ! rec.video \
         queue name=aq ! aacparse ! rec.audio \
         liverecordsink name=rec formats=mp4+hls record-interval=4 hls-segment-duration=2"
    ));
    r.set_location(&td);
    let demux = r.pipeline.by_name("d").unwrap();
    let vq = r.pipeline.by_name("vq").unwrap();
    let aq = r.pipeline.by_name("aq").unwrap();
    demux.connect_pad_added(move |_, pad| {
        let name = pad.name();
        let q = if name.starts_with("video") {
            &vq
        } else if name.starts_with("audio") {
            &aq
        } else {
            return;
        };
        let sink = q.static_pad("sink").unwrap();
        if !sink.is_linked() {
            if let Err(e) = pad.link(&sink) {
                eprintln!("cannot link {name}: {e:?}");
            }
        }
    });
    r.play();
    std::thread::sleep(Duration::from_millis(500));
    let published = publish(Publisher::srt_caller(port, SECS), String::new);
    // What SRT still delivers, then EOS from the application.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        r.pipeline.send_event(gst::event::Eos::new()),
        "the pipeline refused EOS"
    );
    match r.wait_end(Duration::from_secs(20)) {
        End::Eos => {}
        End::Error(e) => panic!("the recording failed: {e}"),
    }
    let r = stop_bounded(r);
    check(&r, published.frames);
}
