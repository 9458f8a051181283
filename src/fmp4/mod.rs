// SPDX-License-Identifier: MIT OR Apache-2.0
//! The crash-safe MP4 writer of the lean path (issue 14): the same file
//! layout as mp4mux's `fragment-mode=first-moov-then-finalise`, written by
//! the element itself, without a muxer thread.
//!
//! While recording: `ftyp`, a `moov` describing the tracks (no samples),
//! then per fragment one `mdat` holding its samples followed by the `moof`
//! that describes them (absolute data offsets). A leftover of a killed
//! process is therefore readable up to its last whole `moof`
//! (`crate::salvage` cuts at whole boxes, `crate::mp4frag` counts them).
//!
//! On [`Mp4Writer::finish`] the last fragment is written, a complete `moov`
//! (sample tables pointing into the fragments' `mdat`s, edit lists that keep
//! the streams in sync) is appended, and the first `moov`'s header is
//! overwritten with `free` + an `mdat` header covering everything up to the
//! new `moov`: a normal MP4 whose first `moov` and `moof`s are opaque data.
//!
//! Each fragment reaches the file with one write. Pure: no GStreamer types.

use std::io::{self, Seek, SeekFrom, Write};

use crate::tsmux::Track;

mod boxes;
#[cfg(test)]
mod tests;
mod track;

use boxes::*;
use track::{Edit, Held, Tables, TrackState};

/// The time scale of the movie and of video tracks.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;
/// Where the first `moov` starts: right after the 32-byte `ftyp`.
const MOOV_AT: u64 = 32;

/// What a track holds, from its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// `avcC` (`codec_data` of `stream-format=avc`).
    H264 { avcc: Vec<u8> },
    /// `hvcC`; `hev1` when parameter sets may be in band.
    H265 { hvcc: Vec<u8>, hev1: bool },
    /// AudioSpecificConfig (`codec_data` of raw AAC).
    Aac { asc: Vec<u8> },
}

/// One track's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub codec: Codec,
    /// Video: pixels; audio: 0.
    pub width: u32,
    pub height: u32,
    /// Audio: sample rate (the track's time scale) and channels.
    pub rate: u32,
    pub channels: u32,
}

/// One frame, times in nanoseconds from the file's start.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub dts_ns: u64,
    pub pts_ns: u64,
    pub duration_ns: Option<u64>,
    pub keyframe: bool,
    pub data: &'a [u8],
}

/// Makes written data durable (a file's `sync_data`).
pub trait SyncData {
    fn sync_data(&self) -> io::Result<()>;
}

impl SyncData for std::fs::File {
    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

impl SyncData for io::Cursor<Vec<u8>> {
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one MP4 file to `out` (see the module docs).
pub struct Mp4Writer<W: Write + Seek + SyncData> {
    out: W,
    /// Video first when present (track 1), then audio (track 2).
    tracks: Vec<TrackState>,
    fragment_ns: u64,
    /// Start of the fragment being collected, in ns.
    frag_start_ns: Option<u64>,
    /// Bytes written (the next write's offset).
    pos: u64,
    started: bool,
    /// A write failed: the file's end is unknown, nothing more is written.
    failed: bool,
    sequence: u32,
    /// Seconds since 1904 (MP4 creation time).
    created: u64,
    buf: Vec<u8>,
}

/// What replaces the first `moov`'s header when the file is finished:
/// `free` and an `mdat` header covering the `span` bytes up to the final
/// `moov`, or a 64-bit `mdat` header when the span needs it.
fn media_head(span: u64) -> Vec<u8> {
    let mut head = Vec::with_capacity(16);
    if span - 8 <= u64::from(u32::MAX) {
        put32(&mut head, 8);
        head.extend_from_slice(b"free");
        put32(&mut head, (span - 8) as u32);
        head.extend_from_slice(b"mdat");
    } else {
        put32(&mut head, 1);
        head.extend_from_slice(b"mdat");
        put64(&mut head, span);
    }
    head
}

impl<W: Write + Seek + SyncData> Mp4Writer<W> {
    /// A writer of a file with these tracks; each track's description comes
    /// with [`Mp4Writer::describe`] before its first sample. `created`:
    /// seconds since 1970.
    pub fn new(out: W, video: bool, audio: bool, fragment_ns: u64, created: u64) -> Self {
        let track = |t: Track, is_video: bool| TrackState {
            id: 0,
            is_video,
            track: t,
            spec: None,
            timescale: VIDEO_TIMESCALE,
            first_dts: None,
            first_cto: 0,
            held: None,
            comp_end: 0,
            spare: Vec::new(),
            frag: Vec::new(),
            frag_samples: Vec::new(),
            frag_dts: 0,
            all: Tables::default(),
        };
        let mut tracks = Vec::new();
        if video {
            tracks.push(track(Track::Video, true));
        }
        if audio {
            tracks.push(track(Track::Audio, false));
        }
        Mp4Writer {
            out,
            tracks,
            fragment_ns: fragment_ns.max(1),
            frag_start_ns: None,
            pos: 0,
            started: false,
            failed: false,
            sequence: 0,
            // 66 years and 17 leap days from 1904 to 1970.
            created: created + 2_082_844_800,
            buf: Vec::new(),
        }
    }

    fn slot(&mut self, track: Track) -> io::Result<&mut TrackState> {
        self.tracks
            .iter_mut()
            .find(|t| t.track == track)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no such track in this file")
            })
    }

    /// Describes a track (its first description stays).
    pub fn describe(&mut self, track: Track, spec: TrackSpec) -> io::Result<()> {
        let t = self.slot(track)?;
        if t.spec.is_none() {
            if !t.is_video {
                t.timescale = spec.rate.max(1);
            }
            t.spec = Some(spec);
        }
        Ok(())
    }

    /// Adds one frame (decode order within its track); a fragment that is
    /// long enough is written first.
    pub fn push(&mut self, track: Track, s: &Sample<'_>) -> io::Result<()> {
        self.usable()?;
        let start = *self.frag_start_ns.get_or_insert(s.dts_ns);
        if s.dts_ns >= start.saturating_add(self.fragment_ns) && self.flush()? {
            self.frag_start_ns = Some(s.dts_ns);
        }
        let t = self.slot(track)?;
        if t.spec.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a frame came before its track's description",
            ));
        }
        let dts = t.ticks(s.dts_ns);
        let cto = u32::try_from(t.ticks(s.pts_ns.max(s.dts_ns)) - dts).unwrap_or(u32::MAX);
        if let Some(held) = t.held.take() {
            let dur = dts.saturating_sub(held.dts);
            t.commit(held, dur);
        }
        if t.first_dts.is_none() {
            t.first_dts = Some(dts);
            t.first_cto = cto;
        }
        let mut data = std::mem::take(&mut t.spare);
        data.clear();
        data.extend_from_slice(s.data);
        t.held = Some(Held {
            dts,
            cto,
            key: s.keyframe,
            duration: s.duration_ns,
            data,
        });
        Ok(())
    }

    fn usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to this file failed"));
        }
        Ok(())
    }

    /// Writes `b` at the end of the file; a failure makes the writer unusable.
    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        if let Err(e) = self.out.write_all(b) {
            self.failed = true;
            return Err(e);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes the fragment collected so far, if the header can be written
    /// (every track described). Returns whether it was written.
    fn flush(&mut self) -> io::Result<bool> {
        if self.tracks.iter().all(|t| t.frag_samples.is_empty()) {
            return Ok(true);
        }
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        if !self.started {
            if self.tracks.iter().any(|t| t.spec.is_none()) {
                self.buf = b;
                return Ok(false);
            }
            for (i, t) in self.tracks.iter_mut().enumerate() {
                t.id = i as u32 + 1;
            }
            self.header(&mut b);
        }
        let data: usize = self.tracks.iter().map(|t| t.frag.len()).sum();
        let mdat_at = self.pos + b.len() as u64;
        let size = 8 + data as u64;
        let mut off = if size > u64::from(u32::MAX) {
            put32(&mut b, 1);
            b.extend_from_slice(b"mdat");
            put64(&mut b, size + 8);
            mdat_at + 16
        } else {
            put32(&mut b, size as u32);
            b.extend_from_slice(b"mdat");
            mdat_at + 8
        };
        let mut offsets = Vec::new();
        for t in &mut self.tracks {
            offsets.push(off);
            if !t.frag_samples.is_empty() {
                b.extend_from_slice(&t.frag);
                t.all.chunks.push((off, t.frag_samples.len() as u32));
                for &(size, dur, cto, key) in &t.frag_samples {
                    t.all.sizes.push(size);
                    t.all.durations.push(dur);
                    t.all.ctos.push(cto);
                    if key {
                        t.all.syncs.push(t.all.sizes.len() as u32);
                    }
                }
            }
            off += t.frag.len() as u64;
        }
        self.sequence += 1;
        let seq = self.sequence;
        let tracks = &self.tracks;
        bx(&mut b, b"moof", |b| {
            fbx(b, b"mfhd", 0, 0, |b| put32(b, seq));
            for (t, base) in tracks.iter().zip(&offsets) {
                if t.frag_samples.is_empty() {
                    continue;
                }
                bx(b, b"traf", |b| {
                    fbx(b, b"tfhd", 0, 0x01, |b| {
                        put32(b, t.id);
                        put64(b, *base);
                    });
                    fbx(b, b"tfdt", 1, 0, |b| put64(b, t.frag_dts));
                    let flags = 0x100 | 0x200 | 0x400 | if t.is_video { 0x800 } else { 0 };
                    fbx(b, b"trun", 0, flags, |b| {
                        put32(b, t.frag_samples.len() as u32);
                        for &(size, dur, cto, key) in &t.frag_samples {
                            put32(b, dur);
                            put32(b, size);
                            put32(b, if key { 0x0200_0000 } else { 0x0101_0000 });
                            if t.is_video {
                                put32(b, cto);
                            }
                        }
                    });
                });
            }
        });
        let written = self.append(&b);
        self.buf = b;
        written?;
        self.started = true;
        for t in &mut self.tracks {
            t.frag.clear();
            t.frag_samples.clear();
        }
        Ok(true)
    }

    /// `ftyp` and the first `moov` (tracks, no samples, `mvex`).
    fn header(&mut self, b: &mut Vec<u8>) {
        bx(b, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            put32(b, 0x200);
            b.extend_from_slice(b"isomiso2");
            let hevc = self.tracks.iter().any(|t| {
                matches!(
                    t.spec,
                    Some(TrackSpec {
                        codec: Codec::H265 { .. },
                        ..
                    })
                )
            });
            b.extend_from_slice(if hevc { b"hvc1" } else { b"avc1" });
            b.extend_from_slice(b"mp41");
        });
        debug_assert_eq!(b.len() as u64, MOOV_AT);
        self.moov(b, None);
    }

    /// A `moov`: final (sample tables and edits, from `p0_ns`) or first.
    fn moov(&self, b: &mut Vec<u8>, p0_ns: Option<u64>) {
        let created = self.created;
        let tracks: Vec<&TrackState> = self.tracks.iter().filter(|t| t.spec.is_some()).collect();
        let edits: Vec<Option<Vec<Edit>>> =
            tracks.iter().map(|t| p0_ns.map(|p0| t.edits(p0))).collect();
        let movie: u64 = edits
            .iter()
            .flatten()
            .map(|e| e.iter().map(|(d, _)| d).sum::<u64>())
            .max()
            .unwrap_or(0);
        bx(b, b"moov", |b| {
            fbx(b, b"mvhd", wide(movie), 0, |b| {
                times(
                    b,
                    movie > u64::from(u32::MAX),
                    created,
                    |b| put32(b, VIDEO_TIMESCALE),
                    movie,
                );
                put32(b, 0x0001_0000);
                put16(b, 0x0100);
                b.extend_from_slice(&[0; 10]);
                for m in MATRIX {
                    put32(b, m);
                }
                b.extend_from_slice(&[0; 24]);
                put32(b, tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
            });
            for (t, e) in tracks.iter().zip(&edits) {
                t.trak(b, created, e.as_deref());
            }
            if p0_ns.is_none() {
                bx(b, b"mvex", |b| {
                    for t in &tracks {
                        fbx(b, b"trex", 0, 0, |b| {
                            put32(b, t.id);
                            put32(b, 1);
                            put32(b, 0);
                            put32(b, 0);
                            put32(b, 0);
                        });
                    }
                });
            }
        });
    }

    /// Writes what is left, the final `moov`, and turns the file into a
    /// normal MP4. A file that never had a frame stays empty.
    pub fn finish(&mut self) -> io::Result<()> {
        self.usable()?;
        for t in &mut self.tracks {
            if let Some(held) = t.held.take() {
                let last = t
                    .frag_samples
                    .last()
                    .map(|s| s.1)
                    .or(t.all.durations.last().copied());
                let dur = match held.duration {
                    Some(ns) => t.ticks(ns),
                    None => u64::from(last.unwrap_or(if t.is_video { 3000 } else { 1024 })),
                };
                t.commit(held, dur);
            }
        }
        // Tracks that never got a frame are left out.
        self.tracks.retain(|t| t.first_dts.is_some());
        if self.tracks.is_empty() {
            return Ok(());
        }
        if !self.flush()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a track has no description",
            ));
        }
        let p0 = self
            .tracks
            .iter()
            .filter_map(|t| t.first_pts_ns())
            .min()
            .unwrap_or(0);
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        self.moov(&mut b, Some(p0));
        let moov_at = self.pos;
        let appended = self.append(&b);
        self.buf = b;
        appended?;
        // The final moov is durable before the header that hides the
        // fragments points to it: a crash in between leaves a fragmented
        // file that recovery reads (its first moov).
        let head = media_head(moov_at - MOOV_AT);
        let patched = self
            .out
            .sync_data()
            .and_then(|_| self.out.seek(SeekFrom::Start(MOOV_AT)))
            .and_then(|_| self.out.write_all(&head))
            .and_then(|_| self.out.seek(SeekFrom::Start(self.pos)))
            .and_then(|_| self.out.flush());
        if patched.is_err() {
            self.failed = true;
        }
        patched
    }
}
