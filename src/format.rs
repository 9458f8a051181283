// SPDX-License-Identifier: MIT OR Apache-2.0
//! The recording formats (channels) and their file naming.

/// One recording channel's container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Mp4,
    Flv,
    Aac,
    Hls,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Mp4, Format::Flv, Format::Aac, Format::Hls];

    /// The name used in `{format}`, messages and the index.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Flv => "flv",
            Format::Aac => "aac",
            Format::Hls => "hls",
        }
    }

    /// File extension, without the dot. `audio_only` selects `.m4a` for MP4.
    pub fn extension(self, audio_only: bool) -> &'static str {
        match self {
            Format::Mp4 if audio_only => "m4a",
            Format::Mp4 => "mp4",
            Format::Flv => "flv",
            Format::Aac => "aac",
            Format::Hls => "m3u8",
        }
    }

    /// Whether the format can hold a video stream at all.
    pub fn holds_video(self) -> bool {
        !matches!(self, Format::Aac)
    }
}

/// Suffix of files being written.
pub const PART_SUFFIX: &str = "part";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_extensions() {
        assert_eq!(Format::Mp4.extension(false), "mp4");
        assert_eq!(Format::Mp4.extension(true), "m4a");
        assert_eq!(Format::Aac.extension(true), "aac");
        assert_eq!(Format::Hls.name(), "hls");
        assert!(!Format::Aac.holds_video());
        assert!(Format::Flv.holds_video());
    }
}
