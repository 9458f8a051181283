// SPDX-License-Identifier: MIT OR Apache-2.0
//! One track of the MP4 writer: its samples, fragment and `trak`.

use super::boxes::*;
use super::{TrackSpec, VIDEO_TIMESCALE};
use crate::tsmux::Track;

/// A sample whose duration is known once the next one arrives.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) dts: u64,
    pub(super) cto: u32,
    pub(super) key: bool,
    pub(super) duration: Option<u64>,
    pub(super) data: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct Tables {
    pub(super) sizes: Vec<u32>,
    pub(super) durations: Vec<u32>,
    pub(super) ctos: Vec<u32>,
    /// 1-based numbers of the sync samples.
    pub(super) syncs: Vec<u32>,
    /// (file offset, samples) of each chunk (one per fragment).
    pub(super) chunks: Vec<(u64, u32)>,
}

#[derive(Debug)]
pub(super) struct TrackState {
    /// Set when the file's header is written.
    pub(super) id: u32,
    pub(super) is_video: bool,
    pub(super) track: Track,
    pub(super) spec: Option<TrackSpec>,
    pub(super) timescale: u32,
    /// First decode time, in this track's ticks (file time).
    pub(super) first_dts: Option<u64>,
    pub(super) first_cto: u32,
    pub(super) held: Option<Held>,
    /// End of the last presented sample, in ticks from the first decode
    /// time (composition order may differ from decode order).
    pub(super) comp_end: u64,
    /// A held sample's buffer, for the next one.
    pub(super) spare: Vec<u8>,
    /// The fragment being collected: data and (size, duration, cto, key).
    pub(super) frag: Vec<u8>,
    pub(super) frag_samples: Vec<(u32, u32, u32, bool)>,
    /// Decode time of the fragment's first sample, in ticks.
    pub(super) frag_dts: u64,
    pub(super) all: Tables,
}

impl TrackState {
    pub(super) fn ticks(&self, ns: u64) -> u64 {
        ((u128::from(ns) * u128::from(self.timescale) + 500_000_000) / 1_000_000_000) as u64
    }

    /// The held sample, with its duration `dur` ticks, joins the fragment.
    pub(super) fn commit(&mut self, held: Held, dur: u64) {
        if self.frag_samples.is_empty() {
            self.frag_dts = held.dts;
        }
        let dur = u32::try_from(dur).unwrap_or(u32::MAX);
        let size = u32::try_from(held.data.len()).unwrap_or(u32::MAX);
        self.frag.extend_from_slice(&held.data);
        self.frag_samples.push((size, dur, held.cto, held.key));
        // Where this sample's presentation ends, from the first decode time.
        let end =
            held.dts - self.first_dts.unwrap_or(held.dts) + u64::from(held.cto) + u64::from(dur);
        self.comp_end = self.comp_end.max(end);
        // Its buffer holds the next sample.
        self.spare = held.data;
    }
}

/// An edit list entry: (duration in movie ticks, media time or -1 = empty).
pub(super) type Edit = (u64, i64);

pub(super) fn to_movie(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(VIDEO_TIMESCALE) / u128::from(timescale.max(1))) as u64
}

impl TrackState {
    pub(super) fn media_duration(&self) -> u64 {
        self.all.durations.iter().map(|d| u64::from(*d)).sum()
    }

    /// Edits that show this track's first sample at its time relative to
    /// the earliest first presentation time of all tracks (`p0_ns`).
    pub(super) fn edits(&self, p0_ns: u64) -> Vec<Edit> {
        let d0_ns = self.ns(self.first_dts.unwrap_or(0));
        // The edit shows the composition timeline from `media_time` to the
        // end of the last presented sample.
        let shown =
            |media_time: u64| to_movie(self.comp_end.saturating_sub(media_time), self.timescale);
        if d0_ns >= p0_ns {
            let empty = to_movie(self.ticks(d0_ns - p0_ns), self.timescale);
            let mut e = Vec::new();
            if empty > 0 {
                e.push((empty, -1));
            }
            e.push((shown(0), 0));
            e
        } else {
            let skip = self.ticks(p0_ns - d0_ns).min(self.comp_end);
            vec![(shown(skip), skip as i64)]
        }
    }

    pub(super) fn ns(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.timescale.max(1))) as u64
    }

    pub(super) fn first_pts_ns(&self) -> Option<u64> {
        self.first_dts
            .map(|d| self.ns(d + u64::from(self.first_cto)))
    }

    pub(super) fn trak(&self, b: &mut Vec<u8>, created: u64, edits: Option<&[Edit]>) {
        let Some(spec) = &self.spec else { return };
        let media = if edits.is_some() {
            self.media_duration()
        } else {
            0
        };
        let shown: u64 = edits.map_or(0, |e| e.iter().map(|(d, _)| d).sum());
        bx(b, b"trak", |b| {
            fbx(b, b"tkhd", wide(shown), 3, |b| {
                times(
                    b,
                    shown > u64::from(u32::MAX),
                    created,
                    |b| {
                        put32(b, self.id);
                        put32(b, 0)
                    },
                    shown,
                );
                b.extend_from_slice(&[0; 8]);
                put16(b, 0); // layer
                put16(b, 0); // alternate group
                put16(b, if self.is_video { 0 } else { 0x0100 });
                put16(b, 0);
                for m in MATRIX {
                    put32(b, m);
                }
                put32(b, spec.width.min(0xFFFF) << 16);
                put32(b, spec.height.min(0xFFFF) << 16);
            });
            if let Some(edits) = edits {
                bx(b, b"edts", |b| {
                    let v1 = edits
                        .iter()
                        .any(|(d, m)| *d > u64::from(u32::MAX) || *m > i64::from(i32::MAX));
                    fbx(b, b"elst", u8::from(v1), 0, |b| {
                        put32(b, edits.len() as u32);
                        for (d, m) in edits {
                            if v1 {
                                put64(b, *d);
                                put64(b, *m as u64);
                            } else {
                                put32(b, *d as u32);
                                put32(b, *m as i32 as u32);
                            }
                            put32(b, 0x0001_0000);
                        }
                    });
                });
            }
            bx(b, b"mdia", |b| {
                fbx(b, b"mdhd", wide(media), 0, |b| {
                    times(
                        b,
                        media > u64::from(u32::MAX),
                        created,
                        |b| put32(b, self.timescale),
                        media,
                    );
                    put16(b, 0x55C4); // "und"
                    put16(b, 0);
                });
                fbx(b, b"hdlr", 0, 0, |b| {
                    put32(b, 0);
                    b.extend_from_slice(if self.is_video { b"vide" } else { b"soun" });
                    b.extend_from_slice(&[0; 12]);
                    b.extend_from_slice(if self.is_video {
                        b"VideoHandler\0"
                    } else {
                        b"SoundHandler\0"
                    });
                });
                bx(b, b"minf", |b| {
                    if self.is_video {
                        fbx(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                    } else {
                        fbx(b, b"smhd", 0, 0, |b| put32(b, 0));
                    }
                    bx(b, b"dinf", |b| {
                        fbx(b, b"dref", 0, 0, |b| {
                            put32(b, 1);
                            fbx(b, b"url ", 0, 1, |_| {});
                        })
                    });
                    bx(b, b"stbl", |b| {
                        fbx(b, b"stsd", 0, 0, |b| {
                            put32(b, 1);
                            sample_entry(b, spec);
                        });
                        if edits.is_some() {
                            sample_tables(b, &self.all);
                        } else {
                            empty_tables(b);
                        }
                    });
                });
            });
        });
    }
}
