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
#[cfg(test)]
pub fn param_sets(codec: Codec, au: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nal_units(au).into_iter().filter(|n| is_param_set(codec, n)) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

fn nal_type(codec: Codec, nal: &[u8]) -> Option<u8> {
    let &h = nal.first()?;
    Some(match codec {
        Codec::H264 => h & 0x1f,
        Codec::H265 => (h >> 1) & 0x3f,
    })
}

fn is_aud(codec: Codec, nal: &[u8]) -> bool {
    nal_type(codec, nal) == Some(if codec == Codec::H264 { 9 } else { 35 })
}

/// Remembers the latest parameter set of each kind (H.264 SPS, PPS; H.265
/// VPS, SPS, PPS) and completes keyframes that lack some.
#[derive(Debug, Clone, Default)]
pub struct ParamSetKeeper {
    /// (NAL type, NAL unit without start code), in the order first seen.
    latest: Vec<(u8, Vec<u8>)>,
}

impl ParamSetKeeper {
    /// The access unit as it should be written: unchanged, or for a
    /// keyframe that lacks parameter sets seen before, those in front of
    /// it (after its access unit delimiter, which must stay first). Only
    /// keyframes are scanned (parameter sets come with them).
    pub fn complete<'a>(
        &mut self,
        codec: Codec,
        au: &'a [u8],
        keyframe: bool,
    ) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        if !keyframe {
            return Cow::Borrowed(au);
        }
        let nals = nal_units(au);
        let mut present: Vec<u8> = Vec::new();
        for nal in nals.iter().filter(|n| is_param_set(codec, n)) {
            let Some(t) = nal_type(codec, nal) else {
                continue;
            };
            present.push(t);
            match self.latest.iter_mut().find(|(lt, _)| *lt == t) {
                Some(slot) => slot.1 = nal.to_vec(),
                None => self.latest.push((t, nal.to_vec())),
            }
        }
        let missing: Vec<&Vec<u8>> = self
            .latest
            .iter()
            .filter(|(t, _)| !present.contains(t))
            .map(|(_, n)| n)
            .collect();
        if missing.is_empty() {
            return Cow::Borrowed(au);
        }
        let mut v =
            Vec::with_capacity(au.len() + missing.iter().map(|n| n.len() + 4).sum::<usize>());
        // After a leading AUD, the NALs' own bytes are kept as they are.
        let rest = match nals.first() {
            Some(first) if is_aud(codec, first) => {
                let end = first.as_ptr() as usize - au.as_ptr() as usize + first.len();
                v.extend_from_slice(&au[..end]);
                &au[end..]
            }
            _ => au,
        };
        for n in missing {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v.extend_from_slice(rest);
        Cow::Owned(v)
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
    fn missing_kinds_are_added_after_the_delimiter() {
        // H.264: AUD (9), SPS (7), PPS (8), IDR (5); later an AUD, a new
        // PPS and an IDR: only the SPS is added, after the AUD.
        let first = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3,
        ];
        let later = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x68, 9, 0, 0, 1, 0x65, 4];
        let mut k = ParamSetKeeper::default();
        assert_eq!(&*k.complete(Codec::H264, &first, true), &first[..]);
        let done = k.complete(Codec::H264, &later, true);
        let nals = nal_units(&done);
        assert_eq!(
            nals,
            vec![&[0x09, 0xf0][..], &[0x67, 1], &[0x68, 9], &[0x65, 4]]
        );
        // The PPS kept is now the newer one.
        let bare = [0, 0, 0, 1, 0x65, 5];
        let done = k.complete(Codec::H264, &bare, true);
        assert_eq!(
            nal_units(&done),
            vec![&[0x67, 1][..], &[0x68, 9], &[0x65, 5]]
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
