// SPDX-License-Identifier: MIT OR Apache-2.0
//! Unit tests of the MP4 writer.

use super::*;
use crate::tsmux::Track;
use std::io::Cursor;

fn video() -> TrackSpec {
    TrackSpec {
        codec: Codec::H264 {
            avcc: vec![1, 0x64, 0, 0x1f, 0xff, 0xe0, 0],
        },
        width: 640,
        height: 360,
        rate: 0,
        channels: 0,
    }
}

fn audio() -> TrackSpec {
    TrackSpec {
        codec: Codec::Aac {
            asc: vec![0x11, 0x90],
        },
        width: 0,
        height: 0,
        rate: 48_000,
        channels: 2,
    }
}

fn boxes(b: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= b.len() {
        let mut size = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let mut head = 8;
        if size == 1 {
            size = u64::from_be_bytes(b[pos + 8..pos + 16].try_into().unwrap()) as usize;
            head = 16;
        }
        let kind = String::from_utf8_lossy(&b[pos + 4..pos + 8]).into_owned();
        out.push((kind, pos + head, pos + size));
        pos += size;
    }
    out
}

fn find<'a>(b: &'a [u8], path: &[&str]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let (_, from, to) = boxes(b).into_iter().find(|(k, _, _)| k == first)?;
    let body = &b[from..to];
    if rest.is_empty() {
        Some(body)
    } else {
        find(body, rest)
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// 3 s of 30 fps video (keyframe every second, B-frame reordering:
/// PTS 2 frames after DTS) and 48 kHz AAC starting at the first PTS.
fn record(w: &mut Mp4Writer<Cursor<Vec<u8>>>, seconds: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let frame = 1_000_000_000 / 30;
    let cto = 2 * frame;
    let aframe = 1024 * 1_000_000_000 / 48_000;
    let (mut vs, mut as_) = (Vec::new(), Vec::new());
    let mut a = 0u64;
    for i in 0..seconds * 30 {
        let dts = i * frame;
        let data = vec![(i % 251) as u8; 100 + i as usize];
        w.push(
            Track::Video,
            &Sample {
                dts_ns: dts,
                pts_ns: dts + cto,
                duration_ns: Some(frame),
                keyframe: i % 30 == 0,
                data: &data,
            },
        )
        .unwrap();
        vs.push(data);
        while cto + a * aframe < dts + frame {
            let t = cto + a * aframe;
            let data = vec![(a % 13) as u8 + 100; 20 + (a % 7) as usize];
            w.push(
                Track::Audio,
                &Sample {
                    dts_ns: t,
                    pts_ns: t,
                    duration_ns: Some(aframe),
                    keyframe: true,
                    data: &data,
                },
            )
            .unwrap();
            as_.push(data);
            a += 1;
        }
    }
    (vs, as_)
}

fn writer() -> Mp4Writer<Cursor<Vec<u8>>> {
    let mut w = Mp4Writer::new(Cursor::new(Vec::new()), true, true, 1_000_000_000, 0);
    w.describe(Track::Video, video()).unwrap();
    w.describe(Track::Audio, audio()).unwrap();
    w
}

#[test]
fn while_recording_whole_fragments_are_readable() {
    let mut w = writer();
    record(&mut w, 3);
    let b = w.out.get_ref().clone();
    let kinds: Vec<String> = boxes(&b).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(&kinds[..4], ["ftyp", "moov", "mdat", "moof"]);
    // Fragments of a second: two written, the third still collected.
    assert_eq!(kinds.iter().filter(|k| *k == "moof").count(), 2);
    let c = crate::mp4frag::count(&b).unwrap();
    assert_eq!(c.video_frames, 60);
    assert!((89..=92).contains(&c.audio_frames), "{c:?}");
    assert!(find(&b, &["moov", "mvex", "trex"]).is_some());
}

#[test]
fn finished_file_is_a_normal_mp4_whose_tables_point_at_the_samples() {
    let mut w = writer();
    let (vs, as_) = record(&mut w, 3);
    w.finish().unwrap();
    let b = w.out.into_inner();
    let top = boxes(&b);
    let kinds: Vec<&str> = top.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["ftyp", "free", "mdat", "moov"]);
    let moov = find(&b, &["moov"]).unwrap();
    let traks: Vec<&[u8]> = boxes(moov)
        .into_iter()
        .filter(|(k, _, _)| k == "trak")
        .map(|(_, f, t)| &moov[f..t])
        .collect();
    assert_eq!(traks.len(), 2);
    for (trak, samples) in traks.iter().zip([&vs, &as_]) {
        let stbl = find(trak, &["mdia", "minf", "stbl"]).unwrap();
        let stsz = find(stbl, &["stsz"]).unwrap();
        assert_eq!(be32(stsz, 8) as usize, samples.len());
        let stco = find(stbl, &["stco"]).unwrap();
        let stsc = find(stbl, &["stsc"]).unwrap();
        // Walk chunks: every sample's bytes are where the tables say.
        let chunks = be32(stco, 4) as usize;
        let entries: Vec<(u32, u32)> = (0..be32(stsc, 4) as usize)
            .map(|i| (be32(stsc, 8 + i * 12), be32(stsc, 12 + i * 12)))
            .collect();
        let mut n = 0usize;
        for c in 0..chunks {
            let per = entries
                .iter()
                .rev()
                .find(|(first, _)| *first as usize <= c + 1)
                .unwrap()
                .1;
            let mut off = be32(stco, 8 + c * 4) as usize;
            for _ in 0..per {
                let size = be32(stsz, 12 + n * 4) as usize;
                assert_eq!(&b[off..off + size], samples[n].as_slice(), "sample {n}");
                off += size;
                n += 1;
            }
        }
        assert_eq!(n, samples.len());
    }
    // Video: keyframes listed, composition offsets kept, and the edit
    // starts at the first PTS; audio starts there too: no empty edit.
    let vstbl = find(traks[0], &["mdia", "minf", "stbl"]).unwrap();
    assert_eq!(be32(find(vstbl, &["stss"]).unwrap(), 4), 3);
    assert!(find(vstbl, &["ctts"]).is_some());
    let velst = find(traks[0], &["edts", "elst"]).unwrap();
    assert_eq!((be32(velst, 4), be32(velst, 12)), (1, 6000));
    assert_eq!(be32(velst, 8), 270_000, "the whole 3 s of video");
    let aelst = find(traks[1], &["edts", "elst"]).unwrap();
    assert_eq!((be32(aelst, 4), be32(aelst, 12)), (1, 0));
    let astbl = find(traks[1], &["mdia", "minf", "stbl"]).unwrap();
    assert!(
        find(astbl, &["stss"]).is_none(),
        "every audio frame is a sync sample"
    );
    assert_eq!(be32(find(astbl, &["stts"]).unwrap(), 12), 1024);
}

#[test]
fn audio_that_starts_later_gets_an_empty_edit() {
    let mut w = writer();
    let frame = 1_000_000_000 / 30;
    for i in 0..30u64 {
        let s = Sample {
            dts_ns: i * frame,
            pts_ns: i * frame,
            duration_ns: None,
            keyframe: i == 0,
            data: &[1, 2, 3],
        };
        w.push(Track::Video, &s).unwrap();
        let t = 500_000_000 + i * 21_333_333;
        let s = Sample {
            dts_ns: t,
            pts_ns: t,
            duration_ns: None,
            keyframe: true,
            data: &[4],
        };
        w.push(Track::Audio, &s).unwrap();
    }
    w.finish().unwrap();
    let b = w.out.into_inner();
    let moov = find(&b, &["moov"]).unwrap();
    let audio = boxes(moov)
        .into_iter()
        .filter(|(k, _, _)| k == "trak")
        .nth(1)
        .map(|(_, f, t)| &moov[f..t])
        .unwrap();
    let elst = find(audio, &["edts", "elst"]).unwrap();
    assert_eq!(be32(elst, 4), 2);
    assert_eq!(
        (be32(elst, 8), be32(elst, 12)),
        (45_000, u32::MAX),
        "0.5 s empty"
    );
    assert_eq!(be32(elst, 24), 0);
}

#[test]
fn frames_without_a_description_are_refused_and_empty_files_stay_empty() {
    let mut w = Mp4Writer::new(Cursor::new(Vec::new()), true, false, 1_000_000_000, 0);
    let s = Sample {
        dts_ns: 0,
        pts_ns: 0,
        duration_ns: None,
        keyframe: true,
        data: &[0],
    };
    assert!(w.push(Track::Video, &s).is_err());
    assert!(w.push(Track::Audio, &s).is_err());
    w.finish().unwrap();
    assert!(w.out.get_ref().is_empty());
}

#[test]
fn files_past_4_gib_get_64_bit_offsets_and_mdat() {
    assert_eq!(
        media_head(1000),
        [0, 0, 0, 8, b'f', b'r', b'e', b'e', 0, 0, 0x03, 0xe0, b'm', b'd', b'a', b't']
    );
    let big = 5u64 << 30;
    let head = media_head(big);
    assert_eq!(&head[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
    assert_eq!(u64::from_be_bytes(head[8..16].try_into().unwrap()), big);
    let t = Tables {
        sizes: vec![10, 10],
        durations: vec![1, 1],
        ctos: vec![0, 0],
        syncs: vec![1, 2],
        chunks: vec![(100, 1), (big, 1)],
    };
    let mut b = Vec::new();
    sample_tables(&mut b, &t);
    let kinds: Vec<String> = boxes(&b).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["stts", "stsc", "stsz", "co64"]);
    let co64 = find(&b, &["co64"]).unwrap();
    assert_eq!(u64::from_be_bytes(co64[16..24].try_into().unwrap()), big);
}

/// A file that takes `room` bytes, then fails like a full disk.
struct Full {
    data: Vec<u8>,
    room: usize,
}

impl std::io::Write for Full {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.data.len() + b.len() > self.room {
            let n = self.room - self.data.len();
            self.data.extend_from_slice(&b[..n]);
            if n == 0 {
                return Err(std::io::Error::other("no space left"));
            }
            return Ok(n);
        }
        self.data.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Full {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Ok(self.data.len() as u64)
    }
}

impl SyncData for Full {
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn after_a_failed_write_nothing_more_is_written() {
    let out = Full {
        data: Vec::new(),
        room: 100_000,
    };
    let mut w = Mp4Writer::new(out, true, false, 1_000_000_000, 0);
    w.describe(Track::Video, video()).unwrap();
    let frame = 1_000_000_000 / 30;
    let mut failed = None;
    for i in 0..300u64 {
        let data = vec![7u8; 2000];
        let s = Sample {
            dts_ns: i * frame,
            pts_ns: i * frame,
            duration_ns: None,
            keyframe: i % 30 == 0,
            data: &data,
        };
        if let Err(e) = w.push(Track::Video, &s) {
            failed = Some((i, e));
            break;
        }
    }
    assert!(failed.is_some(), "the disk filled up");
    let len = w.out.data.len();
    assert!(w.finish().is_err(), "no final moov after a failed write");
    let s = Sample {
        dts_ns: 0,
        pts_ns: 0,
        duration_ns: None,
        keyframe: true,
        data: &[1],
    };
    assert!(w.push(Track::Video, &s).is_err());
    assert_eq!(w.out.data.len(), len, "nothing written after the failure");
}

#[test]
fn a_track_left_out_keeps_the_ids_apart_and_hevc_gets_its_brand() {
    // Audio declared but never sent; video is H.265.
    let mut w = Mp4Writer::new(Cursor::new(Vec::new()), true, true, 1_000_000_000, 0);
    let mut spec = video();
    spec.codec = Codec::H265 {
        hvcc: vec![1; 23],
        hev1: false,
    };
    w.describe(Track::Video, spec).unwrap();
    for i in 0..3u64 {
        let s = Sample {
            dts_ns: i * 33_333_333,
            pts_ns: i * 33_333_333,
            duration_ns: None,
            keyframe: i == 0,
            data: &[1, 2],
        };
        w.push(Track::Video, &s).unwrap();
    }
    w.finish().unwrap();
    let b = w.out.into_inner();
    assert_eq!(&b[8..12], b"isom");
    assert_eq!(&b[24..28], b"hvc1");
    let moov = find(&b, &["moov"]).unwrap();
    let mvhd = find(moov, &["mvhd"]).unwrap();
    assert_eq!(be32(mvhd, 96), 2, "next track id");
    let traks = boxes(moov)
        .into_iter()
        .filter(|(k, _, _)| k == "trak")
        .count();
    assert_eq!(traks, 1);
}
