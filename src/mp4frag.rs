// SPDX-License-Identifier: MIT OR Apache-2.0
//! Counting the samples of a fragmented MP4 from its boxes (crash recovery
//! measures a leftover from its contents). qtdemux stops such a file at the
//! duration its `moov` announced for the first fragment, so the count is
//! read here: the tracks and their time scales from `moov`, then every
//! `moof`'s `trun` sample counts and durations.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Samples and duration per kind of track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// The longest track's duration.
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Track {
    video: bool,
    audio: bool,
    timescale: u32,
    default_duration: u32,
    samples: u64,
    ticks: u64,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The boxes in `b`: (type, body).
fn boxes(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let size32 = be32(b, pos)? as usize;
        let kind = b.get(pos + 4..pos + 8)?;
        let (size, header) = match size32 {
            1 => {
                let s = u64::from_be_bytes(b.get(pos + 8..pos + 16)?.try_into().ok()?);
                (usize::try_from(s).ok()?, 16)
            }
            0 => (b.len() - pos, 8),
            s => (s, 8),
        };
        if size < header || pos.checked_add(size)? > b.len() {
            return None;
        }
        let body = &b[pos + header..pos + size];
        pos += size;
        Some((kind, body))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(b).find(|(k, _)| *k == kind).map(|(_, body)| body)
}

fn read_trak(trak: &[u8]) -> Option<(u32, Track)> {
    let tkhd = child(trak, b"tkhd")?;
    let id = if tkhd.first()? == &1 {
        be32(tkhd, 20)?
    } else {
        be32(tkhd, 12)?
    };
    let mdia = child(trak, b"mdia")?;
    let mdhd = child(mdia, b"mdhd")?;
    let timescale = if mdhd.first()? == &1 {
        be32(mdhd, 20)?
    } else {
        be32(mdhd, 12)?
    };
    let handler = child(mdia, b"hdlr")?.get(8..12)?;
    // Samples described in `moov` itself (mp4mux's first fragment).
    let (mut samples, mut ticks) = (0u64, 0u64);
    if let Some(stbl) = child(mdia, b"minf").and_then(|m| child(m, b"stbl")) {
        if let Some(stts) = child(stbl, b"stts") {
            let n = be32(stts, 4).unwrap_or(0) as usize;
            for i in 0..n {
                let (Some(c), Some(d)) = (be32(stts, 8 + i * 8), be32(stts, 12 + i * 8)) else {
                    break;
                };
                samples += u64::from(c);
                ticks += u64::from(c) * u64::from(d);
            }
        }
    }
    Some((
        id,
        Track {
            video: handler == b"vide",
            audio: handler == b"soun",
            timescale,
            samples,
            ticks,
            ..Track::default()
        },
    ))
}

/// Sets the duration a fragmented MP4 announces (`mvhd` and `mvex/mehd`,
/// in place, same field widths) to `duration_ns`: a reader that trusts
/// `mehd` (qtdemux) otherwise stops after the first fragment. Returns
/// whether anything was patched.
pub fn patch_duration(b: &mut [u8], duration_ns: u64) -> bool {
    let Some((moov_at, moov_len)) = find(b, 0, b.len(), b"moov") else {
        return false;
    };
    let moov_end = moov_at + moov_len;
    let Some((mvhd_at, _)) = find(b, moov_at + 8, moov_end, b"mvhd") else {
        return false;
    };
    let body = mvhd_at + 8;
    let v1 = b.get(body) == Some(&1);
    let (ts_at, dur_at) = if v1 {
        (body + 20, body + 24)
    } else {
        (body + 12, body + 16)
    };
    let Some(timescale) = be32(b, ts_at).filter(|t| *t > 0) else {
        return false;
    };
    let ticks = (u128::from(duration_ns) * u128::from(timescale) / 1_000_000_000) as u64;
    let put = |b: &mut [u8], at: usize, wide: bool| -> bool {
        let bytes: Vec<u8> = if wide {
            ticks.to_be_bytes().to_vec()
        } else {
            u32::try_from(ticks)
                .unwrap_or(u32::MAX)
                .to_be_bytes()
                .to_vec()
        };
        match b.get_mut(at..at + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(&bytes);
                true
            }
            None => false,
        }
    };
    let mut patched = put(b, dur_at, v1);
    if let Some((mvex_at, mvex_len)) = find(b, moov_at + 8, moov_end, b"mvex") {
        if let Some((mehd_at, _)) = find(b, mvex_at + 8, mvex_at + mvex_len, b"mehd") {
            let body = mehd_at + 8;
            let wide = b.get(body) == Some(&1);
            patched |= put(b, body + 4, wide);
        }
    }
    patched
}

/// The first box `kind` among the boxes in `b[from..to]`: (offset, size).
fn find(b: &[u8], from: usize, to: usize, kind: &[u8; 4]) -> Option<(usize, usize)> {
    let mut pos = from;
    while pos + 8 <= to {
        let size = be32(b, pos)? as usize;
        if size < 8 || pos + size > to {
            return None;
        }
        if b.get(pos + 4..pos + 8)? == kind {
            return Some((pos, size));
        }
        pos += size;
    }
    None
}

fn read_traf(traf: &[u8], tracks: &mut HashMap<u32, Track>) -> Option<()> {
    let tfhd = child(traf, b"tfhd")?;
    let flags = be32(tfhd, 0)? & 0x00FF_FFFF;
    let id = be32(tfhd, 4)?;
    let track = tracks.get_mut(&id)?;
    // base-data-offset (8 bytes), sample-description-index (4), then
    // default-sample-duration.
    let mut at = 8;
    if flags & 0x01 != 0 {
        at += 8;
    }
    if flags & 0x02 != 0 {
        at += 4;
    }
    let default = if flags & 0x08 != 0 {
        be32(tfhd, at)?
    } else {
        track.default_duration
    };
    for (kind, trun) in boxes(traf) {
        if kind != b"trun" {
            continue;
        }
        let flags = be32(trun, 0)? & 0x00FF_FFFF;
        let count = be32(trun, 4)?;
        let mut at = 8;
        if flags & 0x01 != 0 {
            at += 4;
        }
        if flags & 0x04 != 0 {
            at += 4;
        }
        let per = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|f| flags & **f != 0)
            .count()
            * 4;
        for i in 0..count as usize {
            let d = if flags & 0x100 != 0 {
                be32(trun, at + i * per)?
            } else {
                default
            };
            track.ticks += u64::from(d);
        }
        track.samples += u64::from(count);
    }
    Some(())
}

/// Counts the samples of the fragmented MP4 `b` (whole boxes only). `None`
/// if it has no `moov` with tracks.
pub fn count(b: &[u8]) -> Option<Counted> {
    let moov = child(b, b"moov")?;
    let mut tracks: HashMap<u32, Track> = boxes(moov)
        .filter(|(k, _)| *k == b"trak")
        .filter_map(|(_, t)| read_trak(t))
        .collect();
    if let Some(mvex) = child(moov, b"mvex") {
        for (_, trex) in boxes(mvex).filter(|(k, _)| *k == b"trex") {
            if let (Some(id), Some(d)) = (be32(trex, 4), be32(trex, 12)) {
                if let Some(t) = tracks.get_mut(&id) {
                    t.default_duration = d;
                }
            }
        }
    }
    if tracks.is_empty() {
        return None;
    }
    for (_, moof) in boxes(b).filter(|(k, _)| *k == b"moof") {
        for (_, traf) in boxes(moof).filter(|(k, _)| *k == b"traf") {
            read_traf(traf, &mut tracks);
        }
    }
    let mut c = Counted::default();
    for t in tracks.values() {
        if t.video {
            c.video_frames += t.samples;
        } else if t.audio {
            c.audio_frames += t.samples;
        }
        if t.timescale > 0 {
            let ns = u128::from(t.ticks) * 1_000_000_000 / u128::from(t.timescale);
            c.duration_ns = c.duration_ns.max(ns as u64);
        }
    }
    Some(c)
}

/// The top-level `moov` and `moof` boxes of the file at `path` (whole
/// boxes, in order; `mdat` bodies are skipped, not read), and the offset of
/// the `moov`.
fn index_boxes(path: &Path) -> io::Result<(Vec<u8>, Option<u64>)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let (mut pos, mut out, mut moov_at) = (0u64, Vec::new(), None);
    while pos + 8 <= len {
        let mut head = [0u8; 8];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut head)?;
        let size = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            1 => {
                let mut big = [0u8; 8];
                f.read_exact(&mut big)?;
                u64::from_be_bytes(big)
            }
            0 => len - pos,
            s => u64::from(s),
        };
        if size < 8 || pos + size > len {
            break;
        }
        if &head[4..8] == b"moov" || &head[4..8] == b"moof" {
            if &head[4..8] == b"moov" && moov_at.is_none() {
                // The first: a final moov appended by a writer killed
                // before it finished is not the one counted.
                moov_at = Some(pos);
            }
            let mut body = vec![0u8; size as usize];
            f.seek(SeekFrom::Start(pos))?;
            f.read_exact(&mut body)?;
            out.extend(body);
        }
        pos += size;
    }
    Ok((out, moov_at))
}

/// Counts the samples of the fragmented MP4 at `path` and makes it announce
/// their duration ([`patch_duration`], written back in place). `None` if it
/// has no `moov` with tracks.
pub fn measure_and_fix(path: &Path) -> io::Result<Option<Counted>> {
    let (boxes, moov_at) = index_boxes(path)?;
    let Some(c) = count(&boxes) else {
        return Ok(None);
    };
    if let (Some(at), Some((moov_in, moov_len))) = (moov_at, find(&boxes, 0, boxes.len(), b"moov"))
    {
        let mut moov = boxes[moov_in..moov_in + moov_len].to_vec();
        if patch_duration(&mut moov, c.duration_ns) {
            let mut f = OpenOptions::new().write(true).open(path)?;
            f.seek(SeekFrom::Start(at))?;
            f.write_all(&moov)?;
            f.sync_all()?;
        }
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn trak(id: u32, handler: &[u8; 4], timescale: u32) -> Vec<u8> {
        let mut tkhd = vec![0u8; 84];
        tkhd[12..16].copy_from_slice(&id.to_be_bytes());
        let mut mdhd = vec![0u8; 24];
        mdhd[12..16].copy_from_slice(&timescale.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(handler);
        let mdia = [bx(b"mdhd", &mdhd), bx(b"hdlr", &hdlr)].concat();
        bx(b"trak", &[bx(b"tkhd", &tkhd), bx(b"mdia", &mdia)].concat())
    }

    fn traf(id: u32, default: Option<u32>, durations: &[u32], count: u32) -> Vec<u8> {
        let mut tfhd = Vec::new();
        let flags: u32 = if default.is_some() { 0x08 } else { 0 };
        tfhd.extend(flags.to_be_bytes());
        tfhd.extend(id.to_be_bytes());
        if let Some(d) = default {
            tfhd.extend(d.to_be_bytes());
        }
        let mut trun = Vec::new();
        let tflags: u32 = if durations.is_empty() {
            0
        } else {
            0x100 | 0x200
        };
        trun.extend(tflags.to_be_bytes());
        trun.extend(count.to_be_bytes());
        for d in durations {
            trun.extend(d.to_be_bytes());
            trun.extend(100u32.to_be_bytes());
        }
        bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"trun", &trun)].concat())
    }

    #[test]
    fn counts_fragments_per_track() {
        let moov = bx(
            b"moov",
            &[trak(1, b"vide", 30_000), trak(2, b"soun", 48_000)].concat(),
        );
        let frag = |n| {
            bx(
                b"moof",
                &[traf(1, Some(1001), &[], n), traf(2, None, &[1024; 3], 3)].concat(),
            )
        };
        let file = [
            bx(b"ftyp", b"isom"),
            moov,
            frag(30),
            bx(b"mdat", &[0; 9]),
            frag(30),
        ]
        .concat();
        let c = count(&file).unwrap();
        assert_eq!(c.video_frames, 60);
        assert_eq!(c.audio_frames, 6);
        assert_eq!(c.duration_ns, 60 * 1001 * 1_000_000_000 / 30_000);
        assert_eq!(count(&bx(b"ftyp", b"isom")), None);
    }
}
