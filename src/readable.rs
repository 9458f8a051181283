// SPDX-License-Identifier: MIT OR Apache-2.0
//! Whether a written file can be read back, judged from its bytes, before
//! it is indexed as a good recording (SPEC §9: a broken file is never
//! passed off as a good one). These are structural checks, cheap enough for
//! every close: a player needs at least this much.

use std::io::Read;
use std::path::Path;

use crate::format::Format;

/// Why a file is not readable, or `Ok` if it is.
pub fn check(path: &Path, format: Format) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err("the file is empty".into());
    }
    match format {
        Format::Mp4 => check_mp4(&mut f, len),
        Format::Flv => {
            let mut head = [0u8; 13 + 11];
            f.read_exact(&mut head)
                .map_err(|_| "the FLV file ends before its first tag".to_string())?;
            if &head[..3] != b"FLV" {
                return Err("no FLV header".into());
            }
            Ok(())
        }
        Format::Aac => {
            let mut head = [0u8; 2];
            f.read_exact(&mut head)
                .map_err(|_| "the AAC file is too short".to_string())?;
            if head[0] != 0xFF || head[1] & 0xF0 != 0xF0 {
                return Err("no ADTS frame at the start".into());
            }
            Ok(())
        }
        Format::Hls => {
            let mut head = [0u8; 188];
            f.read_exact(&mut head)
                .map_err(|_| "the segment is shorter than one TS packet".to_string())?;
            if head[0] != 0x47 {
                return Err("no MPEG-TS sync byte at the start".into());
            }
            Ok(())
        }
    }
}

/// An MP4 is readable when its top-level boxes are whole and it has a
/// `moov` and media data (`mdat`).
fn check_mp4(f: &mut std::fs::File, len: u64) -> Result<(), String> {
    let mut pos = 0u64;
    let (mut moov, mut mdat) = (false, false);
    while pos + 8 <= len {
        let mut head = [0u8; 16];
        f.read_exact(&mut head[..8])
            .map_err(|e| format!("cannot read a box at {pos}: {e}"))?;
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, header) = match size32 {
            1 => {
                f.read_exact(&mut head[8..16])
                    .map_err(|e| format!("cannot read a box at {pos}: {e}"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                (u64::from_be_bytes(b), 16)
            }
            0 => (len - pos, 8),
            s => (s, 8),
        };
        if size < header || pos + size > len {
            // A box cut short: what comes before it may still be readable.
            break;
        }
        match &kind {
            b"moov" => moov = true,
            b"mdat" if size > header => mdat = true,
            _ => {}
        }
        pos += size;
        std::io::Seek::seek(f, std::io::SeekFrom::Start(pos))
            .map_err(|e| format!("cannot seek: {e}"))?;
    }
    match (moov, mdat) {
        (true, true) => Ok(()),
        (false, _) => Err("moov atom not found".into()),
        (true, false) => Err("no media data".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn file(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        (d, p)
    }

    #[test]
    fn mp4_needs_moov_and_media() {
        let good = [
            boxed(b"ftyp", b"isom"),
            boxed(b"moov", b"x"),
            boxed(b"mdat", b"data"),
        ]
        .concat();
        assert!(check(&file(&good).1, Format::Mp4).is_ok());
        let no_moov = [boxed(b"ftyp", b"isom"), boxed(b"mdat", b"data")].concat();
        assert_eq!(
            check(&file(&no_moov).1, Format::Mp4).unwrap_err(),
            "moov atom not found"
        );
        // Cut inside a fragment: the whole boxes before the cut count.
        let mut cut = good.clone();
        cut.extend_from_slice(&boxed(b"moof", b"0123456789")[..10]);
        assert!(check(&file(&cut).1, Format::Mp4).is_ok());
        assert_eq!(
            check(&file(b"").1, Format::Mp4).unwrap_err(),
            "the file is empty"
        );
    }

    #[test]
    fn other_formats_need_their_headers() {
        assert!(check(
            &file(b"FLV\x01\x05\0\0\0\x09\0\0\0\0\x12\0\0\0\0\0\0\0\0\0\0").1,
            Format::Flv
        )
        .is_ok());
        assert!(check(&file(b"FLV").1, Format::Flv).is_err());
        assert!(check(&file(&[0xFF, 0xF1, 0x50]).1, Format::Aac).is_ok());
        assert!(check(&file(&[0x00, 0xF1]).1, Format::Aac).is_err());
        let mut ts = vec![0u8; 188];
        ts[0] = 0x47;
        assert!(check(&file(&ts).1, Format::Hls).is_ok());
        assert!(check(&file(&ts[..100]).1, Format::Hls).is_err());
    }
}
