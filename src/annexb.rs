// SPDX-License-Identifier: MIT OR Apache-2.0
//! H.264/H.265 Annex B access units: their NAL units, and the parameter
//! sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) a keyframe needs in front of it
//! so that an HLS segment decodes on its own. Pure.
//!
//! Encoders such as x265 send the parameter sets only before the first
//! keyframe; a segment starting at a later keyframe would then be
//! undecodable (and a parser there finds no valid frame). The HLS writer
//! keeps the latest parameter sets seen and puts them in front of each
//! keyframe that lacks them.

/// Which codec an access unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// The NAL units of an Annex B access unit (without their start codes).
pub fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(au.len(), |&n| n - 3);
        // A 4-byte start code's leading zero belongs to it, not to this NAL.
        while end > s && au[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        out.push(&au[s..end]);
    }
    out
}

fn is_param_set(codec: Codec, nal: &[u8]) -> bool {
    let Some(&h) = nal.first() else { return false };
    match codec {
        Codec::H264 => matches!(h & 0x1f, 7 | 8),
        Codec::H265 => matches!((h >> 1) & 0x3f, 32..=34),
    }
}

/// The parameter sets of an access unit, each after a 4-byte start code;
/// empty when it has none.
pub fn param_sets(codec: Codec, au: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nal_units(au).into_iter().filter(|n| is_param_set(codec, n)) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

/// Remembers the latest parameter sets of a stream and completes keyframes
/// that lack them.
#[derive(Debug, Clone, Default)]
pub struct ParamSetKeeper {
    latest: Vec<u8>,
}

impl ParamSetKeeper {
    /// The access unit as it should be written: unchanged, or for a
    /// keyframe without parameter sets, the latest ones seen in front.
    /// Only keyframes are scanned (parameter sets come with them).
    pub fn complete<'a>(
        &mut self,
        codec: Codec,
        au: &'a [u8],
        keyframe: bool,
    ) -> std::borrow::Cow<'a, [u8]> {
        if !keyframe {
            return std::borrow::Cow::Borrowed(au);
        }
        let own = param_sets(codec, au);
        if !own.is_empty() {
            self.latest = own;
            return std::borrow::Cow::Borrowed(au);
        }
        if !self.latest.is_empty() {
            let mut v = Vec::with_capacity(self.latest.len() + au.len());
            v.extend_from_slice(&self.latest);
            v.extend_from_slice(au);
            return std::borrow::Cow::Owned(v);
        }
        std::borrow::Cow::Borrowed(au)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units_with_3_and_4_byte_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0,
        ];
        let nals = nal_units(&au);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5, 0]]);
        assert_eq!(
            param_sets(Codec::H264, &au),
            vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3]
        );
    }

    #[test]
    fn later_keyframes_get_the_latest_parameter_sets() {
        // H.265: VPS (32), SPS (33), PPS (34), then an IDR (19).
        let first = [
            0, 0, 0, 1, 0x40, 1, 0, 0, 1, 0x42, 1, 0, 0, 1, 0x44, 1, 0, 0, 1, 0x26, 1, 9,
        ];
        let later_key = [0, 0, 0, 1, 0x26, 1, 7];
        let delta = [0, 0, 0, 1, 0x02, 1, 8];
        let mut k = ParamSetKeeper::default();
        assert_eq!(&*k.complete(Codec::H265, &first, true), &first[..]);
        assert_eq!(&*k.complete(Codec::H265, &delta, false), &delta[..]);
        let done = k.complete(Codec::H265, &later_key, true);
        assert_eq!(nal_units(&done).len(), 4);
        assert!(done.ends_with(&later_key));
        assert_eq!(
            param_sets(Codec::H265, &done),
            param_sets(Codec::H265, &first)
        );
        // Nothing seen yet: unchanged.
        let mut fresh = ParamSetKeeper::default();
        assert_eq!(
            &*fresh.complete(Codec::H264, &later_key, true),
            &later_key[..]
        );
    }
}
