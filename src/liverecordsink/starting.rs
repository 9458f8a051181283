// SPDX-License-Identifier: MIT OR Apache-2.0
//! Starting a file's writer once the file is ready (`pending.rs`): built
//! with the caps received, fed the frames held so far in their order, then
//! fed directly. Called without locks.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::datapath::send_eos;
use super::imp::{LiveRecordSink, CAT};
use super::stream::Stream;
use super::writer::{Writer, WriterSpec};
use crate::fsio;
use crate::rotation::Key;

impl LiveRecordSink {
    /// Starts the writers of every file that is ready. Called without locks.
    pub(super) fn start_ready(&self) -> Result<(), gst::FlowError> {
        let ready = match self.lock_state().as_mut() {
            Some(state) => state.take_ready(),
            None => return Ok(()),
        };
        self.start_writers(ready)
    }

    /// Starts the writers of `files` (marked `starting` under the lock).
    pub(super) fn start_writers(&self, files: Vec<(usize, Key)>) -> Result<(), gst::FlowError> {
        let mut result = Ok(());
        for (ci, key) in files {
            // Every file gets its writer, even after one failed.
            if let Err(e) = self.start_writer(ci, key) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Builds and starts the writer of a ready file, then feeds it what was
    /// held.
    fn start_writer(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        let (name, format, part_path, video, audio, frag) = {
            let guard = self.lock_state();
            let Some(state) = guard.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            let ch = state.channels.get(ci).ok_or(gst::FlowError::Error)?;
            let f = ch
                .files
                .iter()
                .find(|f| f.key == key)
                .ok_or(gst::FlowError::Error)?;
            // The caps of the file's own frames, not the input's latest.
            let caps = |s: Stream| f.has[s].then(|| f.caps[s].clone());
            (
                format!("writer-{}-{:05}-{}", ch.format.name(), f.index, key),
                ch.format,
                f.part_path.clone(),
                caps(Stream::Video),
                caps(Stream::Audio),
                state.cfg.mp4_fragment_ms,
            )
        };
        if video.is_none() && audio.is_none() {
            // No stream sent anything to this file: there is no file.
            gst::debug!(CAT, imp = self, "{name}: no data, no file");
            self.drop_unstarted(ci, key, false);
            self.finish_playlists();
            self.maybe_forward_eos();
            return Ok(());
        }
        let caps_sent = (
            video.as_ref().is_some_and(|c| c.is_some()),
            audio.as_ref().is_some_and(|c| c.is_some()),
        );

        let result = fsio::prepare_part(&part_path).and_then(|_| {
            let writer = Writer::build(WriterSpec {
                name,
                format,
                part_path: &part_path,
                video,
                audio,
                mp4_fragment_ms: frag,
            })
            .map_err(|e| e.to_string())?;
            self.obj()
                .add(&writer.bin)
                .map_err(|e| format!("cannot add writer: {e}"))?;
            if let Err(e) = writer.start() {
                let _ = self.obj().remove(&writer.bin);
                return Err(e.to_string());
            }
            Ok(writer)
        });
        let writer = match result {
            Ok(w) => w,
            Err(msg) => {
                self.writer_not_started(ci, key);
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot record {}: {}", part_path.display(), msg)
                );
                return Err(gst::FlowError::Error);
            }
        };
        {
            let mut guard = self.lock_state();
            let Some(state) = guard.as_mut() else {
                writer.shutdown();
                return Err(gst::FlowError::Flushing);
            };
            let ch = state.channels.get_mut(ci).ok_or(gst::FlowError::Error)?;
            let f = ch.file_mut(key).ok_or(gst::FlowError::Error)?;
            f.caps_sent.video = caps_sent.0;
            f.caps_sent.audio = caps_sent.1;
            f.writer = Some(writer);
        }
        self.feed_held(ci, key)
    }

    /// Pushes the held frames into a started writer, in order, until none is
    /// left; then frames go straight in, and the EOS asked for meanwhile
    /// (the file was cut or closed) is sent.
    fn feed_held(&self, ci: usize, key: Key) -> Result<(), gst::FlowError> {
        loop {
            let batch = {
                let mut guard = self.lock_state();
                let Some(state) = guard.as_mut() else {
                    return Err(gst::FlowError::Flushing);
                };
                let stream_id = state.cfg.recorder.stream_id.clone();
                let ch = state.channels.get_mut(ci).ok_or(gst::FlowError::Error)?;
                let format = ch.format;
                let failed = ch.failed;
                let f = ch.file_mut(key).ok_or(gst::FlowError::Error)?;
                if failed {
                    // The channel failed (a full disk) while this file was
                    // starting: it records nothing more, and never opened.
                    let writer = f.writer.take();
                    drop(guard);
                    if let Some(w) = writer {
                        w.shutdown();
                        let _ = self.obj().remove(&w.bin);
                        let _ = std::fs::remove_file(&w.part_path);
                    }
                    self.drop_unstarted(ci, key, false);
                    return Ok(());
                }
                if f.held.is_empty() {
                    f.flowing = true;
                    f.starting = false;
                    let eos = f.take_eos_pads();
                    let opened = f.announce.take().map(|location| {
                        super::messages::file_opened(
                            &stream_id,
                            format.name(),
                            &f.meta(),
                            &location.to_string_lossy(),
                        )
                    });
                    drop(guard);
                    self.notify();
                    send_eos(eos);
                    if let Some(s) = opened {
                        self.post(s);
                    }
                    return Ok(());
                }
                let pads = (f.writer_pad(Stream::Video), f.writer_pad(Stream::Audio));
                (std::mem::take(&mut f.held), pads)
            };
            self.notify();
            let (held, (video, audio)) = batch;
            for (stream, buffer) in interleave(held) {
                let pad = match stream {
                    Stream::Video => &video,
                    Stream::Audio => &audio,
                };
                let Some(pad) = pad else { continue };
                match pad.push(buffer) {
                    Ok(_) | Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {}
                    Err(e) => {
                        gst::warning!(CAT, imp = self, "Writer refused a held frame: {e:?}");
                    }
                }
            }
        }
    }
}

/// Held frames in the order a muxer needs them: each stream's own order
/// kept, the streams merged by decode time. A muxer takes a frame only once
/// every input has one, and the held frames are fed from one thread: fed
/// as they arrived (all the video, then the audio that came later), the
/// muxer's video queue would fill up before any audio reached it.
fn interleave(held: Vec<(Stream, gst::Buffer)>) -> Vec<(Stream, gst::Buffer)> {
    use std::collections::VecDeque;
    let n = held.len();
    let (mut video, mut audio): (VecDeque<_>, VecDeque<_>) =
        held.into_iter().partition(|(s, _)| *s == Stream::Video);
    let key = |b: &gst::Buffer| b.dts_or_pts().map(|t| t.nseconds());
    let mut out = Vec::with_capacity(n);
    loop {
        let take_video = match (video.front(), audio.front()) {
            (Some((_, v)), Some((_, a))) => match (key(v), key(a)) {
                (Some(v), Some(a)) => v <= a,
                _ => true,
            },
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_video {
            video.pop_front()
        } else {
            audio.pop_front()
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(dts: u64) -> gst::Buffer {
        let mut b = gst::Buffer::new();
        b.get_mut()
            .unwrap()
            .set_dts(gst::ClockTime::from_mseconds(dts));
        b
    }

    #[test]
    fn held_frames_interleave_by_decode_time() {
        gst::init().unwrap();
        let held = vec![
            (Stream::Video, buf(0)),
            (Stream::Video, buf(33)),
            (Stream::Video, buf(66)),
            (Stream::Audio, buf(10)),
            (Stream::Audio, buf(31)),
        ];
        let got: Vec<(Stream, u64)> = interleave(held)
            .into_iter()
            .map(|(s, b)| (s, b.dts().unwrap().mseconds()))
            .collect();
        assert_eq!(
            got,
            [
                (Stream::Video, 0),
                (Stream::Audio, 10),
                (Stream::Audio, 31),
                (Stream::Video, 33),
                (Stream::Video, 66)
            ]
        );
    }
}
