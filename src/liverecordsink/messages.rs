// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `liverecordsink-*` bus messages (SPEC §8), and the ordered queue
//! through which the element posts them.
//!
//! Every message, and the final EOS, goes through [`Effects`]: effects are
//! queued in order (under a small lock of their own) and run by one thread
//! at a time with no lock held, so that an application's sync bus handler
//! may read `stats` or stop the pipeline, and messages never overtake each
//! other.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::index::{self, IndexRecord};
use crate::record::FileMeta;

/// An effect that must run with no element lock held, in order.
pub type Effect = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    effects: VecDeque<Effect>,
    running: bool,
}

/// Effects (posts, the final EOS) run in the order they were queued.
#[derive(Default)]
pub struct Effects {
    queue: Mutex<Queue>,
}

impl Effects {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an effect; it runs at the next [`Effects::run`].
    pub fn queue(&self, f: Effect) {
        self.lock().effects.push_back(f);
    }

    /// Runs the queued effects unless another thread is running them (it
    /// then runs these too). Call with no element lock held.
    pub fn run(&self) {
        {
            let mut q = self.lock();
            if q.running {
                return;
            }
            q.running = true;
        }
        loop {
            let next = {
                let mut q = self.lock();
                let next = q.effects.pop_front();
                if next.is_none() {
                    q.running = false;
                }
                next
            };
            match next {
                Some(f) => f(),
                None => return,
            }
        }
    }
}

/// `liverecordsink-file-opened`.
pub fn file_opened(
    stream_id: &str,
    format: &str,
    meta: &FileMeta,
    location: &str,
) -> gst::Structure {
    gst::Structure::builder("liverecordsink-file-opened")
        .field("stream-id", stream_id)
        .field("session-id", meta.session)
        .field("index", meta.index)
        .field("format", format)
        .field("location", location)
        .field("start-time", index::iso8601(meta.start_wall))
        .field(
            "start-running-time",
            gst::ClockTime::from_nseconds(meta.start_rt),
        )
        .build()
}

/// The §8 fields of a closed (or discarded) file: `liverecordsink-file-closed`,
/// or `liverecordsink-file-discarded` with its `discard-reason`.
pub fn file_record(
    name: &str,
    r: &IndexRecord,
    duration: u64,
    why: Option<&str>,
) -> gst::Structure {
    let mut s = gst::Structure::builder(name)
        .field("stream-id", &r.stream_id)
        .field("session-id", r.session_id)
        .field("index", r.index)
        .field("format", &r.format)
        .field("location", &r.location)
        .field("start-time", &r.start_time)
        .field(
            "start-running-time",
            gst::ClockTime::from_nseconds(r.start_running_time),
        )
        .field("file-id", &r.file_id)
        .field("end-time", &r.end_time)
        .field("duration", gst::ClockTime::from_nseconds(duration))
        .field("size", r.size)
        .field("video-frames", r.video_frames)
        .field("audio-frames", r.audio_frames)
        .field("reason", &r.reason);
    if let Some(url) = &r.playback_url {
        s = s.field("playback-url", url);
    }
    for (name, value) in [
        ("object-key", &r.object_key),
        ("object-url", &r.object_url),
        ("etag", &r.etag),
    ] {
        if let Some(v) = value {
            s = s.field(name, v);
        }
    }
    if let Some(why) = why {
        s = s.field("discard-reason", why);
    }
    s.build()
}

/// `liverecordsink-hls-segment-added`.
pub fn segment_added(
    location: &str,
    playlist: &str,
    duration: u64,
    sequence: u64,
    discontinuity: bool,
    size: u64,
) -> gst::Structure {
    gst::Structure::builder("liverecordsink-hls-segment-added")
        .field("location", location)
        .field("playlist", playlist)
        .field("duration", gst::ClockTime::from_nseconds(duration))
        .field("sequence", sequence)
        .field("discontinuity", discontinuity)
        .field("size", size)
        .build()
}

/// Counters of the `stats` property.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub files_closed: u64,
    pub bytes_written: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub frames_dropped: u64,
    pub interruptions: u64,
}

impl Stats {
    /// The `stats` structure.
    pub fn structure(&self) -> gst::Structure {
        gst::Structure::builder("liverecordsink-stats")
            .field("files-closed", self.files_closed)
            .field("bytes-written", self.bytes_written)
            .field("video-frames", self.video_frames)
            .field("audio-frames", self.audio_frames)
            .field("frames-dropped", self.frames_dropped)
            .field("interruptions", self.interruptions)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn effects_run_in_order_and_may_queue_more() {
        let effects = Arc::new(Effects::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let (log, inner) = (log.clone(), effects.clone());
            let log2 = log.clone();
            effects.queue(Box::new(move || {
                log.lock().unwrap().push(i);
                // An effect that queues and runs more (a sync handler that
                // stops the element) does not run them out of order.
                inner.queue(Box::new(move || log2.lock().unwrap().push(10 + i)));
                inner.run();
            }));
        }
        effects.run();
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 10, 11, 12]);
    }
}
