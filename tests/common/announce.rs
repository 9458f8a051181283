// SPDX-License-Identifier: MIT OR Apache-2.0
//! The one check of what a recording announced (SPEC §8): the
//! `file-opened` and `file-closed` messages and the index records, against
//! each other and the files on disk, for any formats.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::common::hls_check::{named, parse_playlist};
use crate::common::{
    assert_fields, assert_iso_utc_micros, assert_record_matches, get_str, get_u64, read_index,
    rec_f64, rec_str, rec_u64, wall_span_ns, Record, CLOSED_FIELDS, OPENED_FIELDS,
};

/// Checks every `file-opened`/`file-closed` pair and index record of one
/// recording (`msgs`: its `liverecordsink-*` messages), any formats:
///
/// - as many `file-opened` as `file-closed` as index records; index numbers
///   unique within a format (each channel numbers its files);
/// - every `file-opened` has the fields of SPEC §8 and an ISO 8601 UTC
///   start time; its location is a `.part` (HLS: the `.m3u8` playlist);
/// - every `file-closed` has the fields of SPEC §8, its own `file-opened`
///   (same format and index) with the same stream-id, start-time,
///   session-id and start-running-time, a unique non-empty file-id, and a
///   duration equal to `end-time - start-time` (1 ms);
/// - MP4/FLV/AAC: the closed location is a file, not a `.part`, in the
///   directory of its `.part`, which is gone; its size is the size on disk;
/// - HLS: the location is the playlist in both messages, and the size
///   counts the playlist and all its segments;
/// - each index record has the fields of SPEC §8, matches its `file-closed`
///   and its duration equals its `end-time - start-time` (1 ms).
///
/// Returns the `file-closed` messages sorted by format, then index.
pub fn check_announcements(msgs: &[gst::Structure], index_path: &Path) -> Vec<gst::Structure> {
    let opened = named(msgs, "liverecordsink-file-opened");
    let closed = named(msgs, "liverecordsink-file-closed");
    let records = read_index(index_path);
    assert_eq!(
        opened.len(),
        closed.len(),
        "file-opened and file-closed messages differ in number: {opened:#?} {closed:#?}"
    );
    assert_eq!(
        records.len(),
        closed.len(),
        "index records and file-closed messages differ in number: {records:#?} {closed:#?}"
    );

    for o in &opened {
        assert_fields(o, OPENED_FIELDS);
        let loc = get_str(o, "location");
        if get_str(o, "format") == "hls" {
            assert!(loc.ends_with(".m3u8"), "HLS file-opened location {loc}");
        } else {
            assert!(
                loc.ends_with(".part"),
                "file-opened location is not a .part: {loc}"
            );
        }
        assert_iso_utc_micros(&get_str(o, "start-time"));
    }

    let mut by_index: BTreeMap<(String, u64), &Record> = BTreeMap::new();
    for rec in &records {
        for f in CLOSED_FIELDS {
            assert!(rec.contains_key(*f), "index record lacks {f}: {rec:?}");
        }
        by_index.insert((rec_str(rec, "format"), rec_u64(rec, "index")), rec);
    }
    assert_eq!(
        by_index.len(),
        records.len(),
        "index numbers repeat within a format: {records:#?}"
    );

    let mut ids = HashSet::new();
    for c in &closed {
        assert_fields(c, CLOSED_FIELDS);
        let idx = get_u64(c, "index");
        let format = get_str(c, "format");
        let loc = get_str(c, "location");
        let path = Path::new(&loc);

        // The matching file-opened message.
        let o = opened
            .iter()
            .find(|o| get_u64(o, "index") == idx && get_str(o, "format") == format)
            .unwrap_or_else(|| panic!("no file-opened for {format} index {idx}"));
        for f in ["stream-id", "start-time"] {
            assert_eq!(
                get_str(o, f),
                get_str(c, f),
                "file-opened/closed {f} differ"
            );
        }
        for f in ["session-id", "start-running-time"] {
            assert_eq!(
                get_u64(o, f),
                get_u64(c, f),
                "file-opened/closed {f} differ"
            );
        }

        assert!(path.is_file(), "closed location {loc} is not a file");
        assert!(!loc.ends_with(".part"), "closed location is a .part: {loc}");
        let on_disk = if format == "hls" {
            assert_eq!(
                get_str(o, "location"),
                loc,
                "HLS file-opened location is not the playlist"
            );
            let pl = parse_playlist(path);
            pl.segments
                .iter()
                .map(|s| std::fs::metadata(&s.path).unwrap().len())
                .sum::<u64>()
                + std::fs::metadata(path).unwrap().len()
        } else {
            let part = get_str(o, "location");
            assert!(
                !Path::new(&part).exists(),
                "the .part {part} is still there after close"
            );
            // The final name may differ from the .part's ({end} resolved at
            // close, a collision suffix), never its directory.
            assert_eq!(
                Path::new(&part).parent(),
                path.parent(),
                "the .part {part} and the closed file {loc} are in different directories"
            );
            std::fs::metadata(path).unwrap().len()
        };
        assert_eq!(
            get_u64(c, "size"),
            on_disk,
            "{loc}: file-closed size != bytes on disk (HLS: playlist + segments)"
        );

        let fid = get_str(c, "file-id");
        assert!(!fid.is_empty(), "empty file-id");
        assert!(ids.insert(fid.clone()), "file-id {fid} is not unique");

        let (start, end) = (get_str(c, "start-time"), get_str(c, "end-time"));
        assert_iso_utc_micros(&start);
        assert_iso_utc_micros(&end);
        let dur = get_u64(c, "duration") as i64;
        let span = wall_span_ns(&start, &end);
        assert!(
            (span - dur).abs() <= 1_000_000,
            "{loc}: end-time - start-time = {span} ns but duration = {dur} ns"
        );

        // The matching index record.
        let rec = by_index
            .get(&(format.clone(), idx))
            .unwrap_or_else(|| panic!("no index record for {format} index {idx}"));
        assert_record_matches(rec, c, dur);
        let rdur = rec_f64(rec, "duration");
        let rspan = wall_span_ns(&rec_str(rec, "start-time"), &rec_str(rec, "end-time"));
        assert!(
            (rspan as f64 - rdur * 1e9).abs() <= 1e6,
            "index: end-time - start-time = {rspan} ns but duration = {rdur} s"
        );
    }
    let mut closed: Vec<gst::Structure> = closed.into_iter().cloned().collect();
    closed.sort_by_key(|s| (get_str(s, "format"), get_u64(s, "index")));
    closed
}
