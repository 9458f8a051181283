// SPDX-License-Identifier: MIT OR Apache-2.0
//! Caps policy: what the pads offer for the chosen formats, what each format
//! can hold, and whether new caps are the same media for an open file.

use super::stream::Stream;
use super::Formats;
use crate::format::Format;
use gst::prelude::*;

/// Caps the pads offer, in order of preference for the chosen formats.
pub fn sink_caps(stream: Stream, formats: Formats) -> gst::Caps {
    let wants_bytestream =
        formats.contains(Formats::HLS) && !formats.intersects(Formats::MP4 | Formats::FLV);
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("new caps are writable");
        match stream {
            Stream::Video => {
                let h264 = |f: &str| {
                    gst::Structure::builder("video/x-h264")
                        .field("stream-format", f)
                        .field("alignment", "au")
                        .build()
                };
                let h265 = |f: &str| {
                    gst::Structure::builder("video/x-h265")
                        .field("stream-format", f)
                        .field("alignment", "au")
                        .build()
                };
                let order: &[(&str, &str)] = if wants_bytestream {
                    &[("byte-stream", "byte-stream"), ("avc", "hvc1")]
                } else {
                    &[("avc", "hvc1"), ("byte-stream", "byte-stream")]
                };
                for (a, b) in order {
                    caps.append_structure(h264(a));
                    caps.append_structure(h265(b));
                    if *b == "hvc1" {
                        caps.append_structure(h265("hev1"));
                    }
                }
            }
            Stream::Audio => {
                let aac = |f: &str| {
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", gst::List::new([4i32, 2i32]))
                        .field("stream-format", f)
                        .build()
                };
                if wants_bytestream || formats == Formats::AAC {
                    caps.append_structure(aac("adts"));
                    caps.append_structure(aac("raw"));
                } else {
                    caps.append_structure(aac("raw"));
                    caps.append_structure(aac("adts"));
                }
                caps.append_structure(
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", 1i32)
                        .field("layer", 3i32)
                        .build(),
                );
                caps.append_structure(gst::Structure::new_empty("audio/x-opus"));
            }
        }
    }
    caps
}

/// Whether a format can hold a stream with these caps (GStreamer 1.22
/// muxers). The error says what the format takes.
pub fn format_accepts(format: Format, caps: &gst::CapsRef) -> Result<(), &'static str> {
    let Some(s) = caps.structure(0) else {
        return Err("empty caps");
    };
    let mpegversion = s.get::<i32>("mpegversion").ok();
    let ok = match (format, s.name().as_str()) {
        (Format::Flv, "video/x-h264") => true,
        (Format::Flv, "audio/mpeg") => true,
        (Format::Flv, _) => false,
        (Format::Aac, "audio/mpeg") => mpegversion != Some(1),
        (Format::Aac, _) => false,
        (_, "video/x-h264" | "video/x-h265" | "audio/mpeg" | "audio/x-opus") => true,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(match format {
        Format::Flv => "FLV on GStreamer 1.22 takes H.264 video and AAC or MP3 audio",
        Format::Aac => "AAC (ADTS) files take AAC audio only",
        Format::Mp4 => "MP4 takes H.264/H.265 video and AAC, MP3 or Opus audio",
        Format::Hls => "HLS takes H.264/H.265 video and AAC, MP3 or Opus audio",
    })
}

/// Whether two caps describe the same media for a file: same codec, stream
/// format, codec data, picture size, sample rate and channels.
pub fn same_media(a: &gst::CapsRef, b: &gst::CapsRef) -> bool {
    let (Some(a), Some(b)) = (a.structure(0), b.structure(0)) else {
        return a == b;
    };
    a.name() == b.name()
        && [
            "stream-format",
            "codec_data",
            "width",
            "height",
            "rate",
            "channels",
            "mpegversion",
            "layer",
        ]
        .iter()
        .into_iter()
        .all(|f| {
            let v = |s: &gst::StructureRef| s.value(*f).ok().and_then(|v| v.serialize().ok());
            v(a) == v(b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        s.parse().unwrap()
    }

    #[test]
    fn pads_prefer_what_the_formats_take() {
        gst::init().unwrap();
        let v = sink_caps(Stream::Video, Formats::MP4);
        assert_eq!(
            v.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "avc"
        );
        let v = sink_caps(Stream::Video, Formats::HLS);
        assert_eq!(
            v.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "byte-stream"
        );
        let a = sink_caps(Stream::Audio, Formats::AAC);
        assert_eq!(
            a.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "adts"
        );
        assert!(a.can_intersect(&caps("audio/x-opus")));
    }

    #[test]
    fn formats_accept_their_codecs() {
        gst::init().unwrap();
        let h265 = caps("video/x-h265,stream-format=hvc1,alignment=au");
        assert!(format_accepts(Format::Mp4, &h265).is_ok());
        assert!(format_accepts(Format::Flv, &h265)
            .unwrap_err()
            .contains("FLV"));
        let mp3 = caps("audio/mpeg,mpegversion=1,layer=3");
        assert!(format_accepts(Format::Aac, &mp3).is_err());
        assert!(format_accepts(Format::Flv, &mp3).is_ok());
    }

    #[test]
    fn same_media_ignores_fields_files_do_not_depend_on() {
        gst::init().unwrap();
        let a = caps("video/x-h264,stream-format=avc,width=320,height=240,framerate=30/1");
        let b = caps("video/x-h264,stream-format=avc,width=320,height=240,framerate=25/1");
        let c = caps("video/x-h264,stream-format=avc,width=640,height=360,framerate=30/1");
        assert!(same_media(&a, &b));
        assert!(!same_media(&a, &c));
        assert!(!same_media(
            &a,
            &caps("video/x-h265,stream-format=avc,width=320,height=240")
        ));
    }
}
