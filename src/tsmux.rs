// SPDX-License-Identifier: MIT OR Apache-2.0
//! A minimal MPEG-TS packetizer for HLS segments (ISO/IEC 13818-1): one
//! program, a PAT and a PMT, one PES per frame. Pure: bytes in, bytes out.
//!
//! It replaces `mpegtsmux` on the HLS path (issue 14): mpegtsmux makes a
//! GstBuffer per 188-byte packet and wakes its own thread per input
//! buffer, which cost more than the rest of the recording. Here a frame
//! is packetized into one reusable byte vector, written with one call.
//!
//! Timestamps are given in nanoseconds from the playlist's base and are
//! written with the same 3600 s offset as mpegtsmux, in 90 kHz units
//! (33 bits). The PCR rides on the video PID (the audio PID without
//! video), 100 ms before each PES's DTS that carries it; keyframes are
//! marked random-access and preceded by the PAT and PMT, so every segment
//! (which starts on a keyframe) decodes on its own.

/// Added to every timestamp, as mpegtsmux does.
const OFFSET_NS: u64 = 3_600_000_000_000;
/// How far the PCR runs ahead of the decode time.
const PCR_LEAD_NS: u64 = 100_000_000;
const PACKET: usize = 188;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;

/// What an elementary stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Annex B byte-stream, one access unit per frame.
    H264,
    H265,
    /// ADTS frames.
    AacAdts,
    /// MPEG-1 audio (layer 1-3).
    Mpeg1Audio,
    /// MPEG-2 (lower sampling rates) audio.
    Mpeg2Audio,
}

impl StreamKind {
    fn stream_type(self) -> u8 {
        match self {
            StreamKind::H264 => 0x1b,
            StreamKind::H265 => 0x24,
            StreamKind::AacAdts => 0x0f,
            StreamKind::Mpeg1Audio => 0x03,
            StreamKind::Mpeg2Audio => 0x04,
        }
    }

    fn is_video(self) -> bool {
        matches!(self, StreamKind::H264 | StreamKind::H265)
    }
}

/// Which of the program's streams a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

impl Track {
    /// 0 for video, 1 for audio (per-track arrays).
    pub fn index(self) -> usize {
        match self {
            Track::Video => 0,
            Track::Audio => 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Es {
    kind: StreamKind,
    pid: u16,
    cc: u8,
}

/// One frame to write.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub track: Track,
    /// Nanoseconds from the playlist's base.
    pub pts_ns: u64,
    /// Nanoseconds; `None` = the PTS.
    pub dts_ns: Option<u64>,
    pub keyframe: bool,
    pub data: &'a [u8],
}

/// The packetizer of one file.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    video: Option<Es>,
    audio: Option<Es>,
    pat_cc: u8,
    pmt_cc: u8,
    tables_written: bool,
}

/// The MPEG-2 CRC-32 of PSI sections (polynomial 0x04C11DB7, MSB first).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xffff_ffff;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn ticks_90k(ns: u64) -> u64 {
    ((u128::from(ns) + u128::from(OFFSET_NS)) * 90_000 / 1_000_000_000) as u64 & 0x1_ffff_ffff
}

fn put_timestamp(out: &mut Vec<u8>, prefix: u8, t: u64) {
    out.push((prefix << 4) | (((t >> 30) & 0x07) as u8) << 1 | 1);
    out.push(((t >> 22) & 0xff) as u8);
    out.push(((((t >> 15) & 0x7f) as u8) << 1) | 1);
    out.push(((t >> 7) & 0xff) as u8);
    out.push((((t & 0x7f) as u8) << 1) | 1);
}

fn put_pcr(out: &mut Vec<u8>, dts_ns: u64) {
    let ns = u128::from(dts_ns + OFFSET_NS).saturating_sub(u128::from(PCR_LEAD_NS));
    let pcr = (ns * 27_000_000 / 1_000_000_000) as u64;
    let base = (pcr / 300) & 0x1_ffff_ffff;
    let ext = pcr % 300;
    out.extend_from_slice(&[
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        (((base & 1) as u8) << 7) | 0x7e | ((ext >> 8) as u8 & 1),
        (ext & 0xff) as u8,
    ]);
}

fn next_cc(cc: &mut u8) -> u8 {
    let c = *cc;
    *cc = (*cc + 1) & 0x0f;
    c
}

/// One PSI section in one packet (pointer field, section, 0xFF fill).
fn section_packet(out: &mut Vec<u8>, pid: u16, cc: u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0x00]);
    out.extend_from_slice(section);
    out.resize(start + PACKET, 0xff);
}

fn psi_section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    // section_length: the 5 bytes after it, the body and the CRC.
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | ((len >> 8) as u8 & 0x0f),
        len as u8,
        (id >> 8) as u8,
        id as u8,
        0xc1, // version 0, current
        0x00,
        0x00,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

impl TsMuxer {
    /// A program with these streams (at least one).
    pub fn new(video: Option<StreamKind>, audio: Option<StreamKind>) -> TsMuxer {
        let es = |kind: StreamKind, pid| Es { kind, pid, cc: 0 };
        TsMuxer {
            video: video.map(|k| es(k, VIDEO_PID)),
            audio: audio.map(|k| es(k, AUDIO_PID)),
            pat_cc: 0,
            pmt_cc: 0,
            tables_written: false,
        }
    }

    fn pcr_pid(&self) -> u16 {
        self.video
            .as_ref()
            .or(self.audio.as_ref())
            .map_or(VIDEO_PID, |e| e.pid)
    }

    /// Appends a PAT and a PMT.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        let pat = psi_section(
            0x00,
            1,
            &[0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8],
        );
        section_packet(out, PAT_PID, next_cc(&mut self.pat_cc), &pat);
        let pcr = self.pcr_pid();
        let mut body = vec![0xe0 | (pcr >> 8) as u8, pcr as u8, 0xf0, 0x00];
        for es in [&self.video, &self.audio].into_iter().flatten() {
            body.extend_from_slice(&[
                es.kind.stream_type(),
                0xe0 | (es.pid >> 8) as u8,
                es.pid as u8,
                0xf0,
                0x00,
            ]);
        }
        let pmt = psi_section(0x02, 1, &body);
        section_packet(out, PMT_PID, next_cc(&mut self.pmt_cc), &pmt);
        self.tables_written = true;
    }

    /// Appends one frame as a PES: the tables first at the start and
    /// before each video keyframe (audio-only: before the first frame).
    /// A frame of a track the program does not have is an error.
    pub fn write_frame(&mut self, out: &mut Vec<u8>, f: &Frame<'_>) -> Result<(), String> {
        let pcr_pid = self.pcr_pid();
        let has_video = self.video.is_some();
        let (kind, pid) = match (f.track, &self.video, &self.audio) {
            (Track::Video, Some(es), _) | (Track::Audio, _, Some(es)) => (es.kind, es.pid),
            _ => return Err(format!("no {:?} stream in this file", f.track)),
        };
        let key = if kind.is_video() {
            f.keyframe
        } else {
            !has_video
        };
        if !self.tables_written || (key && kind.is_video()) {
            self.write_tables(out);
        }
        let dts_ns = f.dts_ns.unwrap_or(f.pts_ns).min(f.pts_ns);
        let (pts, dts) = (ticks_90k(f.pts_ns), ticks_90k(dts_ns));
        let mut pes = Vec::with_capacity(19);
        let stream_id = if kind.is_video() { 0xe0 } else { 0xc0 };
        pes.extend_from_slice(&[0x00, 0x00, 0x01, stream_id, 0, 0]);
        let with_dts = dts != pts;
        let header_len: usize = if with_dts { 10 } else { 5 };
        pes.push(0x80 | if kind.is_video() { 0x04 } else { 0x00 });
        pes.push(if with_dts { 0xc0 } else { 0x80 });
        pes.push(header_len as u8);
        put_timestamp(&mut pes, if with_dts { 3 } else { 2 }, pts);
        if with_dts {
            put_timestamp(&mut pes, 1, dts);
        }
        let pes_len = 3 + header_len + f.data.len();
        if !kind.is_video() && pes_len <= 0xffff {
            pes[4] = (pes_len >> 8) as u8;
            pes[5] = pes_len as u8;
        }
        let es = if kind.is_video() {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        };
        let Some(es) = es else {
            return Err("no stream".into());
        };
        let random_access = key;
        let with_pcr = pid == pcr_pid;
        packetize(
            out,
            es,
            &pes,
            f.data,
            with_pcr.then_some(dts_ns),
            random_access,
        );
        Ok(())
    }
}

/// Splits header + data into packets of `es`'s PID; the first packet
/// carries the PCR and the random-access flag when asked; the last one is
/// filled with adaptation-field stuffing.
fn packetize(
    out: &mut Vec<u8>,
    es: &mut Es,
    header: &[u8],
    data: &[u8],
    pcr_dts_ns: Option<u64>,
    random_access: bool,
) {
    let total = header.len() + data.len();
    let byte = |i: usize| {
        if i < header.len() {
            header[i]
        } else {
            data[i - header.len()]
        }
    };
    let mut pos = 0;
    let mut first = true;
    while pos < total {
        let start = out.len();
        let mut af: Vec<u8> = Vec::new();
        if first && (pcr_dts_ns.is_some() || random_access) {
            let mut flags = 0u8;
            if random_access {
                flags |= 0x40;
            }
            if pcr_dts_ns.is_some() {
                flags |= 0x10;
            }
            af.push(flags);
            if let Some(d) = pcr_dts_ns {
                put_pcr(&mut af, d);
            }
        }
        // Bytes the adaptation field takes: its length byte plus `af`.
        let mut af_total = if af.is_empty() { 0 } else { 1 + af.len() };
        let remaining = total - pos;
        let room = 184 - af_total;
        if remaining < room {
            let stuffing = room - remaining;
            if af.is_empty() {
                af_total = stuffing;
                if stuffing >= 2 {
                    af.push(0x00);
                    af.resize(stuffing - 1, 0xff);
                }
            } else {
                af.resize(af.len() + stuffing, 0xff);
                af_total += stuffing;
            }
        }
        let afc = if af_total > 0 { 0x30 } else { 0x10 };
        let pusi = if first { 0x40 } else { 0x00 };
        out.extend_from_slice(&[
            0x47,
            pusi | (es.pid >> 8) as u8,
            es.pid as u8,
            afc | next_cc(&mut es.cc),
        ]);
        if af_total > 0 {
            out.push((af_total - 1) as u8);
            out.extend_from_slice(&af);
        }
        let n = PACKET - (out.len() - start);
        if pos < header.len() && pos + n <= header.len() {
            out.extend_from_slice(&header[pos..pos + n]);
        } else if pos >= header.len() {
            let d = pos - header.len();
            out.extend_from_slice(&data[d..d + n]);
        } else {
            out.extend((pos..pos + n).map(byte));
        }
        pos += n;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(out: &[u8]) -> Vec<&[u8]> {
        assert_eq!(out.len() % PACKET, 0);
        out.chunks(PACKET).collect()
    }

    fn pid(p: &[u8]) -> u16 {
        (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
    }

    #[test]
    fn crc_of_a_known_pat() {
        // The PAT ffmpeg writes (program 1, PMT PID 0x1000): CRC 2AB104B2.
        let s = [
            0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00,
        ];
        assert_eq!(crc32_mpeg2(&s), 0x2ab1_04b2);
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn a_keyframe_comes_after_the_tables_with_pcr_and_random_access() {
        let mut m = TsMuxer::new(Some(StreamKind::H264), Some(StreamKind::AacAdts));
        let mut out = Vec::new();
        let data = vec![0xabu8; 1000];
        m.write_frame(
            &mut out,
            &Frame {
                track: Track::Video,
                pts_ns: 66_666_667,
                dts_ns: Some(0),
                keyframe: true,
                data: &data,
            },
        )
        .unwrap();
        let p = packets(&out);
        assert_eq!(pid(p[0]), PAT_PID);
        assert_eq!(pid(p[1]), PMT_PID);
        assert_eq!(pid(p[2]), VIDEO_PID);
        assert_eq!(p[2][1] & 0x40, 0x40, "PUSI");
        assert_eq!(p[2][3] & 0x30, 0x30, "adaptation + payload");
        assert_eq!(p[2][5] & 0x50, 0x50, "random access + PCR");
        // Every byte of the frame is there, in order, after the PES header.
        let mut payload = Vec::new();
        for pk in &p[2..] {
            let afc = (pk[3] >> 4) & 3;
            let off = if afc == 3 { 5 + pk[4] as usize } else { 4 };
            payload.extend_from_slice(&pk[off..]);
        }
        assert_eq!(&payload[..3], &[0, 0, 1]);
        let hlen = payload[8] as usize;
        assert_eq!(&payload[9 + hlen..], &data[..]);
        // PTS 3600.066667 s and DTS 3600 s in 90 kHz.
        let ts = |b: &[u8]| {
            (u64::from(b[0] >> 1 & 7) << 30)
                | (u64::from(b[1]) << 22)
                | (u64::from(b[2] >> 1) << 15)
                | (u64::from(b[3]) << 7)
                | u64::from(b[4] >> 1)
        };
        assert_eq!(ts(&payload[9..14]), 324_006_000);
        assert_eq!(ts(&payload[14..19]), 324_000_000);
        // The PMT lists H.264 and ADTS AAC and verifies.
        let pmt = &p[1][5..];
        let len = ((usize::from(pmt[1]) & 0x0f) << 8) | usize::from(pmt[2]);
        assert_eq!(
            crc32_mpeg2(&pmt[..3 + len]),
            0,
            "CRC over the section with its CRC"
        );
        assert_eq!(pmt[12], 0x1b);
        assert_eq!(pmt[17], 0x0f);
    }

    #[test]
    fn continuity_counters_and_sizes_hold_for_every_length() {
        let mut m = TsMuxer::new(None, Some(StreamKind::AacAdts));
        for len in [
            0usize, 1, 2, 150, 165, 166, 167, 168, 169, 170, 171, 183, 184, 185, 400, 5000,
        ] {
            let mut out = Vec::new();
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            m.write_frame(
                &mut out,
                &Frame {
                    track: Track::Audio,
                    pts_ns: 1_000_000,
                    dts_ns: None,
                    keyframe: false,
                    data: &data,
                },
            )
            .unwrap();
            let mut payload = Vec::new();
            for pk in packets(&out).iter().filter(|p| pid(p) == AUDIO_PID) {
                assert_eq!(pk[0], 0x47);
                let afc = (pk[3] >> 4) & 3;
                let off = if afc == 3 { 5 + pk[4] as usize } else { 4 };
                assert!(off <= PACKET, "len {len}");
                payload.extend_from_slice(&pk[off..]);
            }
            let hlen = payload[8] as usize;
            assert_eq!(&payload[9 + hlen..], &data[..], "len {len}");
            let pes_len = (usize::from(payload[4]) << 8) | usize::from(payload[5]);
            assert_eq!(pes_len, 3 + hlen + len, "len {len}");
        }
        // Counters run on across frames, per PID.
        let mut out = Vec::new();
        let mut m = TsMuxer::new(Some(StreamKind::H264), None);
        for i in 0..20 {
            let data = vec![0u8; 300];
            m.write_frame(
                &mut out,
                &Frame {
                    track: Track::Video,
                    pts_ns: i * 33_000_000,
                    dts_ns: None,
                    keyframe: i == 0,
                    data: &data,
                },
            )
            .unwrap();
        }
        let ccs: Vec<u8> = packets(&out)
            .iter()
            .filter(|p| pid(p) == VIDEO_PID)
            .map(|p| p[3] & 0x0f)
            .collect();
        for w in ccs.windows(2) {
            assert_eq!(w[1], (w[0] + 1) & 0x0f);
        }
        assert!(m
            .write_frame(
                &mut out,
                &Frame {
                    track: Track::Audio,
                    pts_ns: 0,
                    dts_ns: None,
                    keyframe: false,
                    data: &[]
                }
            )
            .is_err());
    }
}
