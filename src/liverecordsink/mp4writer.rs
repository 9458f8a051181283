// SPDX-License-Identifier: MIT OR Apache-2.0
//! The crash-safe MP4 writer of the lean path (issue 14): H.264/H.265 and
//! AAC go through a parser only when they are not in MP4's form already
//! (`avc`/`hvc1` access units, raw AAC, with `codec_data`), then
//! `crate::fmp4` writes the file: one write per fragment, no muxer thread.
//! Other streams (Opus, MP3, caps not known yet) and classic MP4
//! (`mp4-fragment-duration=0`) keep mp4mux.

use std::io;

use super::appwriter::{self, Chain, InFrame, OutError, Output};
use super::writer::{Writer, WriterError, WriterSpec};
use crate::fmp4::{Codec, Mp4Writer, Sample, TrackSpec};
use crate::tsmux::Track;

struct Mp4Output {
    w: Mp4Writer<std::fs::File>,
    /// The caps each track was described with (video, audio).
    described: [Option<gst::Caps>; 2],
}

/// The sample rate an AudioSpecificConfig names (for caps without one).
fn asc_rate(asc: &[u8]) -> u32 {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    match asc {
        [a, b, ..] => RATES
            .get(usize::from(((a & 7) << 1) | (b >> 7)))
            .copied()
            .unwrap_or(0),
        _ => 0,
    }
}

fn field<'a, T: gst::glib::value::FromValue<'a>>(
    s: &'a gst::StructureRef,
    name: &str,
) -> Option<T> {
    s.get::<T>(name).ok()
}

/// The track description in `caps` (with `codec_data`).
fn describe(caps: &gst::CapsRef) -> Result<TrackSpec, String> {
    let s = caps.structure(0).ok_or("no caps")?;
    let data = field::<gst::Buffer>(s, "codec_data")
        .and_then(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .ok_or_else(|| format!("{} without codec_data", s.name()))?;
    let int = |n: &str| {
        field::<i32>(s, n)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let mut rate = int("rate");
    let codec = match s.name().as_str() {
        "video/x-h264" => Codec::H264 { avcc: data },
        "video/x-h265" => Codec::H265 {
            hvcc: data,
            hev1: field::<&str>(s, "stream-format") == Some("hev1"),
        },
        "audio/mpeg" => {
            if rate == 0 {
                rate = asc_rate(&data);
            }
            if rate == 0 {
                return Err("AAC without a known sample rate".into());
            }
            Codec::Aac { asc: data }
        }
        other => return Err(format!("{other} cannot go into this MP4 writer")),
    };
    Ok(TrackSpec {
        codec,
        width: int("width"),
        height: int("height"),
        rate,
        channels: int("channels"),
    })
}

impl Output for Mp4Output {
    fn frame(&mut self, f: &InFrame<'_>) -> Result<(), OutError> {
        let caps = f
            .caps
            .ok_or_else(|| OutError::Format("a frame without caps".into()))?;
        let slot = f.track.index();
        match &self.described[slot] {
            None => {
                self.w
                    .describe(f.track, describe(caps).map_err(OutError::Format)?)?;
                self.described[slot] = Some(caps.to_owned());
            }
            // New caps in the same file: the codec configuration must not
            // change (the track has one sample description).
            Some(d) if d.as_ptr() != caps.as_ptr() => {
                if appwriter::codec_data(d) != appwriter::codec_data(caps) {
                    return Err(OutError::Format(
                        "the stream's codec configuration (codec_data) changed within a file"
                            .into(),
                    ));
                }
                self.described[slot] = Some(caps.to_owned());
            }
            Some(_) => {}
        }
        let sample = Sample {
            dts_ns: f.dts_ns.unwrap_or(f.pts_ns),
            pts_ns: f.pts_ns,
            duration_ns: f.duration_ns,
            keyframe: f.keyframe,
            data: f.data,
        };
        Ok(self.w.push(f.track, &sample)?)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.w.finish()
    }
}

/// The chain of a stream this writer takes, or `None`.
fn chain(track: Track, caps: gst::Caps) -> Option<Chain> {
    let s = caps.structure(0)?;
    let (parser, out_caps) = match s.name().as_str() {
        "video/x-h264" => (
            "h264parse",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .build(),
        ),
        "video/x-h265" => (
            "h265parse",
            gst::Caps::builder("video/x-h265")
                .field("stream-format", "hvc1")
                .field("alignment", "au")
                .build(),
        ),
        "audio/mpeg" if matches!(s.get::<i32>("mpegversion").ok(), Some(2 | 4)) => (
            "aacparse",
            gst::Caps::builder("audio/mpeg")
                .field("stream-format", "raw")
                .build(),
        ),
        _ => return None,
    };
    let ready = appwriter::mp4_form(&caps);
    Some(Chain {
        track,
        out_caps: if ready { caps.clone() } else { out_caps },
        caps,
        parser: (!ready).then_some(parser),
        repeat_params: false,
    })
}

/// The lean writer of a crash-safe MP4, when it takes every stream.
pub fn build(spec: &WriterSpec<'_>) -> Option<Result<Writer, WriterError>> {
    let caps = appwriter::known_caps(spec)?;
    let chains: Vec<Chain> = caps
        .into_iter()
        .map(|(t, c)| chain(t, c))
        .collect::<Option<_>>()?;
    let file = match appwriter::create(spec) {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let has = |t: Track| chains.iter().any(|c| c.track == t);
    let w = Mp4Writer::new(
        file,
        has(Track::Video),
        has(Track::Audio),
        u64::from(spec.mp4_fragment_ms) * 1_000_000,
        created,
    );
    Some(appwriter::build(
        spec,
        chains,
        Box::new(Mp4Output {
            w,
            described: [None, None],
        }),
    ))
}
