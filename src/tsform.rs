// SPDX-License-Identifier: MIT OR Apache-2.0
//! Streams in MP4's form made ready for MPEG-TS without a parser (issue
//! 14): length-prefixed H.264/H.265 NAL units (`avcC`/`hvcC`) become Annex
//! B access units that start with a delimiter, and raw AAC frames get an
//! ADTS header built from their AudioSpecificConfig. Pure.

use crate::annexb::Codec;

/// How a track's samples are turned into Annex B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NalForm {
    pub codec: Codec,
    /// Bytes of each NAL unit's length prefix (1, 2 or 4).
    len_size: usize,
    /// The configuration's parameter sets, each after a 4-byte start code.
    pub params: Vec<u8>,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

/// Appends `n` length-prefixed NAL units read at `*at` as Annex B.
fn take_nals(b: &[u8], at: &mut usize, n: usize, out: &mut Vec<u8>) -> Option<()> {
    for _ in 0..n {
        let len = be16(b, *at)?;
        let nal = b.get(*at + 2..*at + 2 + len)?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        *at += 2 + len;
    }
    Some(())
}

impl NalForm {
    /// From an `avcC` (H.264 `codec_data`).
    pub fn from_avcc(c: &[u8]) -> Option<NalForm> {
        if c.len() < 7 || c[0] != 1 {
            return None;
        }
        let mut params = Vec::new();
        let mut at = 6;
        take_nals(c, &mut at, usize::from(c[5] & 0x1f), &mut params)?;
        let pps = usize::from(*c.get(at)?);
        at += 1;
        take_nals(c, &mut at, pps, &mut params)?;
        Some(NalForm {
            codec: Codec::H264,
            len_size: usize::from(c[4] & 3) + 1,
            params,
        })
    }

    /// From an `hvcC` (H.265 `codec_data`).
    pub fn from_hvcc(c: &[u8]) -> Option<NalForm> {
        if c.len() < 23 || c[0] != 1 {
            return None;
        }
        let mut params = Vec::new();
        let mut at = 23;
        for _ in 0..c[22] {
            at += 1; // array completeness and NAL unit type
            let n = be16(c, at)?;
            at += 2;
            take_nals(c, &mut at, n, &mut params)?;
        }
        Some(NalForm {
            codec: Codec::H265,
            len_size: usize::from(c[21] & 3) + 1,
            params,
        })
    }

    /// Appends the sample as an Annex B access unit: a delimiter, then its
    /// NAL units (a delimiter of its own is dropped). `None` if a length
    /// runs past the sample.
    pub fn to_annexb(&self, sample: &[u8], out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(match self.codec {
            Codec::H264 => &[0, 0, 0, 1, 0x09, 0xf0],
            Codec::H265 => &[0, 0, 0, 1, 0x46, 0x01, 0x50],
        });
        let mut at = 0;
        while at < sample.len() {
            let head = sample.get(at..at + self.len_size)?;
            let len = head.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            let nal = sample.get(at + self.len_size..at + self.len_size + len)?;
            at += self.len_size + len;
            let aud = match (self.codec, nal.first()) {
                (Codec::H264, Some(h)) => h & 0x1f == 9,
                (Codec::H265, Some(h)) => (h >> 1) & 0x3f == 35,
                (_, None) => true,
            };
            if !aud {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(nal);
            }
        }
        Some(())
    }
}

/// The fixed part of an AAC track's ADTS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adts {
    profile: u8,
    freq_index: u8,
    channels: u8,
}

impl Adts {
    /// From an AudioSpecificConfig; `None` for what ADTS cannot say
    /// (object types above 4, an explicit frequency, channel config 0).
    pub fn from_asc(asc: &[u8]) -> Option<Adts> {
        let (a, b) = (*asc.first()?, *asc.get(1)?);
        let object = a >> 3;
        let freq_index = ((a & 7) << 1) | (b >> 7);
        let channels = (b >> 3) & 0xf;
        if !(1..=4).contains(&object) || freq_index > 12 || !(1..=7).contains(&channels) {
            return None;
        }
        Some(Adts {
            profile: object - 1,
            freq_index,
            channels,
        })
    }

    /// Appends the header of a frame of `payload` bytes, then the frame.
    /// `None` if the frame is too long for ADTS.
    pub fn frame(&self, payload: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let len = payload.len() + 7;
        if len > 0x1fff {
            return None;
        }
        out.extend_from_slice(&[
            0xff,
            0xf1,
            (self.profile << 6) | (self.freq_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1f,
            0xfc,
        ]);
        out.extend_from_slice(payload);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_samples_become_annexb_with_a_delimiter() {
        // avcC: 4-byte lengths, one SPS (67 01), one PPS (68 02).
        let avcc = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 1, 1, 0, 2, 0x68, 2,
        ];
        let f = NalForm::from_avcc(&avcc).unwrap();
        assert_eq!(f.params, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2]);
        let sample = [
            0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 3, 0x65, 7, 8, 0, 0, 0, 1, 0x06,
        ];
        let mut out = Vec::new();
        f.to_annexb(&sample, &mut out).unwrap();
        assert_eq!(
            out,
            [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 7, 8, 0, 0, 0, 1, 0x06]
        );
        assert!(f.to_annexb(&[0, 0, 0, 9, 0x65], &mut out).is_none());
        assert!(NalForm::from_avcc(&avcc[..10]).is_none());
    }

    #[test]
    fn hvcc_parameter_sets_are_read() {
        let mut hvcc = vec![1u8; 21];
        hvcc.push(0xf3); // 4-byte lengths
        hvcc.push(2); // arrays
        hvcc.extend([0x20, 0, 1, 0, 2, 0x40, 1]); // VPS
        hvcc.extend([0x21, 0, 1, 0, 2, 0x42, 1]); // SPS
        let f = NalForm::from_hvcc(&hvcc).unwrap();
        assert_eq!(f.params, [0, 0, 0, 1, 0x40, 1, 0, 0, 0, 1, 0x42, 1]);
        let mut out = Vec::new();
        f.to_annexb(&[0, 0, 0, 2, 0x26, 1], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x46, 1, 0x50, 0, 0, 0, 1, 0x26, 1]);
    }

    #[test]
    fn adts_headers_match_the_config() {
        // AAC LC, 48 kHz (index 3), stereo: 0x11 0x90.
        let a = Adts::from_asc(&[0x11, 0x90]).unwrap();
        let mut out = Vec::new();
        a.frame(&[0xaa; 100], &mut out).unwrap();
        assert_eq!(&out[..7], &[0xff, 0xf1, 0x4c, 0x80, 0x0d, 0x7f, 0xfc]);
        assert_eq!(out.len(), 107);
        // HE-AAC signalled explicitly (object type 5) cannot be ADTS.
        assert!(Adts::from_asc(&[0x2b, 0x92]).is_none());
        assert!(a.frame(&[0; 8200], &mut out).is_none());
    }
}
