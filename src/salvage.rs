// SPDX-License-Identifier: MIT OR Apache-2.0
//! Cutting a file left by a crash back to its last complete unit, so that a
//! recovered file ends cleanly: MP4 at its last whole box, FLV at its last whole tag, ADTS at its last whole
//! frame, MPEG-TS at its last whole 188-byte packet. Nothing before that
//! point is changed.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::format::Format;

/// Truncates the file at `path` to its last complete unit; returns its
/// length after (0: nothing complete).
pub fn truncate_to_complete(path: &Path, format: Format) -> io::Result<u64> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    let keep = match format {
        Format::Mp4 => mp4_complete(&mut f, len)?,
        Format::Flv => flv_complete(&mut f, len)?,
        Format::Aac => adts_complete(&mut f, len)?,
        Format::Hls => len - len % 188,
    };
    if keep < len {
        f.set_len(keep)?;
        f.sync_all()?;
    }
    Ok(keep)
}

fn read_at(f: &mut std::fs::File, pos: u64, buf: &mut [u8]) -> io::Result<bool> {
    f.seek(SeekFrom::Start(pos))?;
    match f.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The end of the last complete top-level box. (mp4mux writes each
/// fragment's `mdat` before its `moof`: a trailing `mdat` without its
/// `moof` is whole but described by nothing, which readers skip.)
fn mp4_complete(f: &mut std::fs::File, len: u64) -> io::Result<u64> {
    let mut keep = 0u64;
    loop {
        let mut head = [0u8; 16];
        if !read_at(f, keep, &mut head[..8])? {
            break;
        }
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let size = match size32 {
            1 => {
                if !read_at(f, keep + 8, &mut head[8..16])? {
                    break;
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                u64::from_be_bytes(b)
            }
            // "To the end of the file": complete only if the writer finished.
            0 => break,
            s => s,
        };
        if size < 8 || keep.saturating_add(size) > len {
            break;
        }
        keep += size;
    }
    Ok(keep)
}

/// The end of the last complete FLV tag (with its previous-tag-size field).
fn flv_complete(f: &mut std::fs::File, len: u64) -> io::Result<u64> {
    let mut head = [0u8; 9];
    if !read_at(f, 0, &mut head)? || &head[..3] != b"FLV" {
        return Ok(0);
    }
    let offset = u64::from(u32::from_be_bytes([head[5], head[6], head[7], head[8]]));
    // The header and PreviousTagSize0.
    let mut keep = offset + 4;
    if keep > len {
        return Ok(0);
    }
    loop {
        let mut tag = [0u8; 11];
        if !read_at(f, keep, &mut tag)? {
            break;
        }
        let size = u64::from(u32::from_be_bytes([0, tag[1], tag[2], tag[3]]));
        let end = keep + 11 + size + 4;
        if end > len {
            break;
        }
        keep = end;
    }
    Ok(keep)
}

/// The end of the last complete ADTS frame.
fn adts_complete(f: &mut std::fs::File, len: u64) -> io::Result<u64> {
    let mut keep = 0u64;
    loop {
        let mut h = [0u8; 7];
        if !read_at(f, keep, &mut h)? || h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
            break;
        }
        let frame = (u64::from(h[3] & 0x03) << 11) | (u64::from(h[4]) << 3) | u64::from(h[5] >> 5);
        if frame < 7 || keep + frame > len {
            break;
        }
        keep += frame;
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.part");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        (dir, path)
    }

    fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, body));
        b
    }

    #[test]
    fn mp4_keeps_whole_boxes_only() {
        let mut bytes = [
            mp4_box(b"ftyp", 8),
            mp4_box(b"mdat", 50),
            mp4_box(b"moov", 50),
        ]
        .concat();
        let head = bytes.len() as u64;
        bytes.extend([mp4_box(b"mdat", 100), mp4_box(b"moof", 20)].concat());
        let one = bytes.len() as u64;
        // The next fragment's mdat, cut.
        bytes.extend(&mp4_box(b"mdat", 100)[..40]);
        let (_d, p) = file_with(&bytes);
        assert_eq!(truncate_to_complete(&p, Format::Mp4).unwrap(), one);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), one);
        let (_d, p) = file_with(&bytes[..head as usize + 10]);
        assert_eq!(truncate_to_complete(&p, Format::Mp4).unwrap(), head);
        // A cut first box: nothing.
        let (_d, p) = file_with(&bytes[..10]);
        assert_eq!(truncate_to_complete(&p, Format::Mp4).unwrap(), 0);
    }

    #[test]
    fn flv_keeps_whole_tags() {
        let mut bytes = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let tag = |size: u32| {
            let mut t = vec![9u8];
            t.extend_from_slice(&size.to_be_bytes()[1..]);
            t.extend([0u8; 7]);
            t.extend(std::iter::repeat_n(1u8, size as usize));
            t.extend((11 + size).to_be_bytes());
            t
        };
        bytes.extend(tag(30));
        let whole = bytes.len() as u64;
        bytes.extend(&tag(30)[..20]);
        let (_d, p) = file_with(&bytes);
        assert_eq!(truncate_to_complete(&p, Format::Flv).unwrap(), whole);
        let (_d, p) = file_with(b"FLV\x01");
        assert_eq!(truncate_to_complete(&p, Format::Flv).unwrap(), 0);
    }

    #[test]
    fn adts_keeps_whole_frames_and_ts_whole_packets() {
        let frame = |n: usize| {
            let mut f = vec![0xFF, 0xF1, 0x50, 0x80, 0, 0x1F, 0xFC];
            f[3] |= ((n >> 11) & 0x03) as u8;
            f[4] = ((n >> 3) & 0xFF) as u8;
            f[5] = (((n & 0x07) << 5) as u8) | 0x1F;
            f.resize(n, 0);
            f
        };
        let mut bytes = [frame(100), frame(120)].concat();
        bytes.extend(&frame(90)[..50]);
        let (_d, p) = file_with(&bytes);
        assert_eq!(truncate_to_complete(&p, Format::Aac).unwrap(), 220);

        let (_d, p) = file_with(&[0x47u8; 188 * 3 + 100]);
        assert_eq!(truncate_to_complete(&p, Format::Hls).unwrap(), 188 * 3);
    }
}
