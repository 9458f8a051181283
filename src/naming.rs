// SPDX-License-Identifier: MIT OR Apache-2.0
//! File names: extensions, and the one collision policy for every file,
//! playlist and segment.
//!
//! - With `{index}` in the template, a new file takes the next index whose
//!   name is free (neither the final name nor its `.part` exists).
//! - Without `{index}` (e.g. a minute-resolution `{start:%H%M}`), or when a
//!   name is still taken at close (`{end}` resolved to a name in use), a
//!   suffix `-1`, `-2`, … is added before the extension.
//!
//! Both searches are bounded, so a name is always found in bounded time.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::format::PART_SUFFIX;

/// How many numbers are tried before giving up on `{index}` and adding a suffix.
const MAX_INDEX_TRIES: u64 = 100_000;

/// `base.ext` (the extension is appended, never replaced).
pub fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// `base-n`, or `base` itself for `n == 0`.
pub fn with_suffix(base: &Path, n: u64) -> PathBuf {
    if n == 0 {
        return base.to_path_buf();
    }
    let mut s: OsString = base.as_os_str().to_os_string();
    s.push(format!("-{n}"));
    PathBuf::from(s)
}

/// The `.part` name of `base.ext`.
pub fn part_path(base: &Path, ext: &str) -> PathBuf {
    with_extension(&with_extension(base, ext), PART_SUFFIX)
}

/// `base` with the first suffix (none, `-1`, `-2`, …) for which `free`
/// holds.
pub fn first_free(base: &Path, free: impl Fn(&Path) -> bool) -> PathBuf {
    (0..)
        .map(|n| with_suffix(base, n))
        .find(|b| free(b))
        .unwrap_or_else(|| base.to_path_buf())
}

/// Picks the index and base name of a new file: `render(index)` gives the
/// base name for an index; `uses_index` tells whether it depends on it.
/// `taken(path)` tells whether a name is in use. Returns the index used and
/// the base name, suffixed if needed.
pub fn pick_new(
    render: impl Fn(u64) -> PathBuf,
    uses_index: bool,
    first_index: u64,
    ext: &str,
    taken: impl Fn(&Path) -> bool,
) -> (u64, PathBuf) {
    let free = |b: &Path| !taken(&with_extension(b, ext)) && !taken(&part_path(b, ext));
    if uses_index {
        for index in first_index..first_index.saturating_add(MAX_INDEX_TRIES) {
            let base = render(index);
            if free(&base) {
                return (index, base);
            }
        }
    }
    (first_index, first_free(&render(first_index), free))
}

/// HLS segment `seq` of the playlist with segment base `base`:
/// `<base>_<seq>.ts`, or its `.part` while written.
pub fn segment_path(base: &Path, seq: u64, part: bool) -> PathBuf {
    let mut name = base.as_os_str().to_os_string();
    name.push(format!("_{seq:05}.ts"));
    if part {
        name.push(format!(".{}", crate::format::PART_SUFFIX));
    }
    PathBuf::from(name)
}

/// Candidate final names of `base`: `base.ext`, `base-1.ext`, …
pub fn candidate(base: &Path, ext: &str, n: u64) -> PathBuf {
    with_extension(&with_suffix(base, n), ext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn set(paths: &[&str]) -> HashSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn extensions_are_appended() {
        assert_eq!(
            with_extension(Path::new("a/b.c"), "mp4"),
            Path::new("a/b.c.mp4")
        );
        assert_eq!(part_path(Path::new("a/b"), "ts"), Path::new("a/b.ts.part"));
        assert_eq!(with_suffix(Path::new("a/b"), 2), Path::new("a/b-2"));
    }

    #[test]
    fn index_skips_taken_names() {
        let taken = set(&["r/00001.mp4", "r/00002.mp4.part"]);
        let (i, base) = pick_new(
            |i| PathBuf::from(format!("r/{i:05}")),
            true,
            1,
            "mp4",
            |p| taken.contains(p),
        );
        assert_eq!((i, base), (3, PathBuf::from("r/00003")));
    }

    #[test]
    fn without_index_a_suffix_resolves_collisions() {
        let taken = set(&["r/cam_1200.mp4", "r/cam_1200-1.mp4.part"]);
        let (i, base) = pick_new(
            |_| PathBuf::from("r/cam_1200"),
            false,
            7,
            "mp4",
            |p| taken.contains(p),
        );
        assert_eq!((i, base), (7, PathBuf::from("r/cam_1200-2")));
    }

    #[test]
    fn a_template_that_ignores_index_never_spins() {
        // Even when told it uses {index}, a render that ignores it ends.
        let (_, base) = pick_new(
            |_| PathBuf::from("x"),
            true,
            1,
            "mp4",
            |p| p == Path::new("x.mp4") || p == Path::new("x-1.mp4"),
        );
        assert_eq!(base, PathBuf::from("x-2"));
    }

    #[test]
    fn candidates_are_suffixed() {
        assert_eq!(
            candidate(Path::new("d/a"), "mp4", 0),
            PathBuf::from("d/a.mp4")
        );
        assert_eq!(
            candidate(Path::new("d/a"), "mp4", 2),
            PathBuf::from("d/a-2.mp4")
        );
    }
}
