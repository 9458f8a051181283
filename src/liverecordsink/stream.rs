// SPDX-License-Identifier: MIT OR Apache-2.0
//! The element's two input streams and a pair of values, one per stream.

use std::ops::{Index, IndexMut};

use gst::prelude::*;

/// One of the element's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Video,
    Audio,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Video, Stream::Audio];

    /// The stream of a sink pad (`video` or `audio`).
    pub fn from_pad(pad: &gst::Pad) -> Stream {
        if pad.name().starts_with("video") {
            Stream::Video
        } else {
            Stream::Audio
        }
    }

    /// The pad name, as in messages and errors.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Video => "video",
            Stream::Audio => "audio",
        }
    }

    /// The input number of the stream in pure modules (`crate::breaks`).
    pub fn idx(self) -> usize {
        match self {
            Stream::Video => 0,
            Stream::Audio => 1,
        }
    }
}

/// A value per stream, indexed by [`Stream`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerStream<T> {
    pub video: T,
    pub audio: T,
}

impl<T> PerStream<T> {
    pub fn new(video: T, audio: T) -> Self {
        PerStream { video, audio }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Stream, &T)> {
        [(Stream::Video, &self.video), (Stream::Audio, &self.audio)].into_iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Stream, &mut T)> {
        [
            (Stream::Video, &mut self.video),
            (Stream::Audio, &mut self.audio),
        ]
        .into_iter()
    }
}

impl<T> Index<Stream> for PerStream<T> {
    type Output = T;
    fn index(&self, s: Stream) -> &T {
        match s {
            Stream::Video => &self.video,
            Stream::Audio => &self.audio,
        }
    }
}

impl<T> IndexMut<Stream> for PerStream<T> {
    fn index_mut(&mut self, s: Stream) -> &mut T {
        match s {
            Stream::Video => &mut self.video,
            Stream::Audio => &mut self.audio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_by_stream() {
        let mut p = PerStream::new(1, 2);
        p[Stream::Audio] += 10;
        assert_eq!(p[Stream::Video], 1);
        assert_eq!(p[Stream::Audio], 12);
        let names: Vec<_> = p.iter().map(|(s, v)| (s.name(), *v)).collect();
        assert_eq!(names, [("video", 1), ("audio", 12)]);
        assert_eq!(Stream::Audio.idx(), 1);
    }
}
