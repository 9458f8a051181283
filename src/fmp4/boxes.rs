// SPDX-License-Identifier: MIT OR Apache-2.0
//! MP4 boxes: writing helpers, sample descriptions and sample tables.

use super::track::Tables;
use super::{Codec, TrackSpec};

pub(super) fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
pub(super) fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
pub(super) fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// A box: size, type, then what `body` writes.
pub(super) fn bx(b: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let at = b.len();
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(kind);
    body(b);
    let size = u32::try_from(b.len() - at).unwrap_or(u32::MAX);
    b[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box (version and flags first).
pub(super) fn fbx(
    b: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    bx(b, kind, |b| {
        put32(b, (u32::from(version) << 24) | (flags & 0x00FF_FFFF));
        body(b)
    })
}

pub(super) const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Times and a duration: version 1 (64-bit) when the duration needs it.
pub(super) fn times(
    b: &mut Vec<u8>,
    wide: bool,
    created: u64,
    mid: impl FnOnce(&mut Vec<u8>),
    duration: u64,
) {
    if wide {
        put64(b, created);
        put64(b, created);
        mid(b);
        put64(b, duration);
    } else {
        let c = u32::try_from(created).unwrap_or(0);
        put32(b, c);
        put32(b, c);
        mid(b);
        put32(b, duration as u32);
    }
}

pub(super) fn wide(d: u64) -> u8 {
    u8::from(d > u64::from(u32::MAX))
}

/// An MPEG-4 descriptor: tag, length, body.
pub(super) fn descriptor(b: &mut Vec<u8>, tag: u8, body: &[u8]) {
    b.push(tag);
    let len = body.len() as u32;
    // Four length bytes, the form every reader takes.
    b.extend_from_slice(&[
        0x80 | ((len >> 21) & 0x7F) as u8,
        0x80 | ((len >> 14) & 0x7F) as u8,
        0x80 | ((len >> 7) & 0x7F) as u8,
        (len & 0x7F) as u8,
    ]);
    b.extend_from_slice(body);
}

pub(super) fn esds(b: &mut Vec<u8>, asc: &[u8]) {
    fbx(b, b"esds", 0, 0, |b| {
        let mut dsi = Vec::new();
        descriptor(&mut dsi, 0x05, asc);
        let mut dcd = vec![0x40, 0x15, 0, 0, 0];
        dcd.extend_from_slice(&[0; 8]); // max and average bitrate: unknown
        dcd.extend_from_slice(&dsi);
        let mut es = vec![0, 0, 0]; // ES_ID 0, no flags
        descriptor(&mut es, 0x04, &dcd);
        descriptor(&mut es, 0x06, &[0x02]);
        descriptor(b, 0x03, &es);
    });
}

pub(super) fn sample_entry(b: &mut Vec<u8>, spec: &TrackSpec) {
    let visual = |b: &mut Vec<u8>, kind: &[u8; 4], cfg_kind: &[u8; 4], cfg: &[u8]| {
        bx(b, kind, |b| {
            b.extend_from_slice(&[0; 6]);
            put16(b, 1); // data reference index
            b.extend_from_slice(&[0; 16]);
            put16(b, spec.width.min(0xFFFF) as u16);
            put16(b, spec.height.min(0xFFFF) as u16);
            put32(b, 0x0048_0000);
            put32(b, 0x0048_0000);
            put32(b, 0);
            put16(b, 1); // frame count
            b.extend_from_slice(&[0; 32]); // compressor name
            put16(b, 0x0018);
            put16(b, 0xFFFF);
            bx(b, cfg_kind, |b| b.extend_from_slice(cfg));
        })
    };
    match &spec.codec {
        Codec::H264 { avcc } => visual(b, b"avc1", b"avcC", avcc),
        Codec::H265 { hvcc, hev1 } => {
            let kind = if *hev1 { b"hev1" } else { b"hvc1" };
            visual(b, kind, b"hvcC", hvcc)
        }
        Codec::Aac { asc } => bx(b, b"mp4a", |b| {
            b.extend_from_slice(&[0; 6]);
            put16(b, 1);
            b.extend_from_slice(&[0; 8]);
            put16(b, spec.channels.clamp(1, 0xFFFF) as u16);
            put16(b, 16);
            put32(b, 0);
            put32(
                b,
                if spec.rate <= 0xFFFF {
                    spec.rate << 16
                } else {
                    0
                },
            );
            esds(b, asc);
        }),
    }
}

/// Run-length entries (count, value) of `values`.
pub(super) fn runs(values: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

pub(super) fn empty_tables(b: &mut Vec<u8>) {
    fbx(b, b"stts", 0, 0, |b| put32(b, 0));
    fbx(b, b"stsc", 0, 0, |b| put32(b, 0));
    fbx(b, b"stsz", 0, 0, |b| {
        put32(b, 0);
        put32(b, 0)
    });
    fbx(b, b"stco", 0, 0, |b| put32(b, 0));
}

/// `stts` or `ctts`: (count, value) runs.
fn run_table(b: &mut Vec<u8>, kind: &[u8; 4], values: &[u32]) {
    fbx(b, kind, 0, 0, |b| {
        let r = runs(values);
        put32(b, r.len() as u32);
        for (n, v) in r {
            put32(b, n);
            put32(b, v);
        }
    });
}

pub(super) fn sample_tables(b: &mut Vec<u8>, t: &Tables) {
    run_table(b, b"stts", &t.durations);
    if t.ctos.iter().any(|c| *c != 0) {
        run_table(b, b"ctts", &t.ctos);
    }
    if t.syncs.len() < t.sizes.len() {
        fbx(b, b"stss", 0, 0, |b| {
            put32(b, t.syncs.len() as u32);
            for s in &t.syncs {
                put32(b, *s);
            }
        });
    }
    fbx(b, b"stsc", 0, 0, |b| {
        let mut entries: Vec<(u32, u32)> = Vec::new();
        for (i, (_, n)) in t.chunks.iter().enumerate() {
            if entries.last().is_none_or(|(_, last)| last != n) {
                entries.push((i as u32 + 1, *n));
            }
        }
        put32(b, entries.len() as u32);
        for (first, n) in entries {
            put32(b, first);
            put32(b, n);
            put32(b, 1);
        }
    });
    fbx(b, b"stsz", 0, 0, |b| {
        put32(b, 0);
        put32(b, t.sizes.len() as u32);
        for s in &t.sizes {
            put32(b, *s);
        }
    });
    if t.chunks.iter().any(|(o, _)| *o > u64::from(u32::MAX)) {
        fbx(b, b"co64", 0, 0, |b| {
            put32(b, t.chunks.len() as u32);
            for (o, _) in &t.chunks {
                put64(b, *o);
            }
        });
    } else {
        fbx(b, b"stco", 0, 0, |b| {
            put32(b, t.chunks.len() as u32);
            for (o, _) in &t.chunks {
                put32(b, *o as u32);
            }
        });
    }
}
