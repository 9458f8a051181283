// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord list` on an index of 3 streams and 5 sessions: grouping,
//! order, filters, existence, the table, JSON Lines, malformed lines and
//! errors.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::Path;

use cli::*;
use common::TestDir;
use serde_json::{json, Value};

/// One index line. `at` is seconds after 2026-12-01T10:00:00Z.
fn line(
    dir: &Path,
    stream: &str,
    session: u64,
    index: u64,
    format: &str,
    at: f64,
    dur: f64,
) -> Value {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap();
    let st = t0 + chrono::Duration::milliseconds((at * 1000.0) as i64);
    let en = st + chrono::Duration::milliseconds((dur * 1000.0) as i64);
    let ext = if format == "hls" { "m3u8" } else { format };
    json!({
        "stream-id": stream, "session-id": session, "index": index, "format": format,
        "location": dir.join(format!("{stream}_{index:05}.{ext}")).to_str().unwrap(),
        "start-time": iso(st.into()), "start-running-time": 0,
        "file-id": format!("{stream}-{format}-{session}-{index:05}"),
        "end-time": iso(en.into()), "duration": dur, "size": 1000 * index,
        "video-frames": (dur * 30.0) as u64, "audio-frames": (dur * 46.875) as u64,
        "reason": if index.is_multiple_of(2) { "interval" } else { "eos" },
    })
}

/// The test index: stream `a` sessions 1 (mp4 ×2 + hls) and 2; `b` sessions
/// 1 and 2; `c` session 1. Written out of order, with a malformed line and
/// a blank line. The files of `a` exist, the others do not.
fn write_index(td: &TestDir) -> Vec<Value> {
    let dir = td.rec_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let recs = vec![
        line(&dir, "b", 1, 1, "mp4", 0.0, 60.0),
        line(&dir, "a", 1, 1, "mp4", 0.0, 60.0),
        line(&dir, "a", 1, 2, "mp4", 60.0, 30.0),
        line(&dir, "a", 1, 1, "hls", 0.0, 90.0),
        line(&dir, "c", 1, 1, "flv", 500.0, 10.0),
        line(&dir, "a", 2, 3, "mp4", 200.0, 20.0),
        line(&dir, "b", 2, 2, "mp4", 300.0, 15.0),
    ];
    let mut text = String::new();
    for (i, r) in recs.iter().enumerate() {
        if i == 3 {
            text.push_str("{\"stream-id\": \"a\", \"broken\n\n");
        }
        text.push_str(&r.to_string());
        text.push('\n');
    }
    std::fs::write(td.index_path(), text).unwrap();
    for r in &recs {
        if r["stream-id"] == "a" {
            std::fs::write(r["location"].as_str().unwrap(), "x").unwrap();
        }
    }
    recs
}

fn list_json(td: &TestDir, extra: &[&str]) -> Vec<Value> {
    let index = td.index_path();
    let mut args = vec!["list", "--index", index.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = liverecord_ok(&args);
    o.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// (stream, session, format, index) of each record.
fn keys(v: &[Value]) -> Vec<(String, u64, String, u64)> {
    v.iter()
        .map(|r| {
            (
                r["stream-id"].as_str().unwrap().to_owned(),
                r["session-id"].as_u64().unwrap(),
                r["format"].as_str().unwrap().to_owned(),
                r["index"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn k(stream: &str, session: u64, format: &str, index: u64) -> (String, u64, String, u64) {
    (stream.to_owned(), session, format.to_owned(), index)
}

#[test]
fn list_groups_and_filters() {
    let td = TestDir::new();
    let recs = write_index(&td);

    // Everything, grouped by stream and session, in time order.
    let all = list_json(&td, &[]);
    assert_eq!(
        keys(&all),
        [
            k("a", 1, "hls", 1),
            k("a", 1, "mp4", 1),
            k("a", 1, "mp4", 2),
            k("a", 2, "mp4", 3),
            k("b", 1, "mp4", 1),
            k("b", 2, "mp4", 2),
            k("c", 1, "flv", 1),
        ]
    );
    for r in &all {
        assert_eq!(r["exists"], json!(r["stream-id"] == "a"), "{r}");
        // The index fields come back unchanged.
        let orig = recs.iter().find(|o| o["file-id"] == r["file-id"]).unwrap();
        for (f, v) in orig.as_object().unwrap() {
            assert_eq!(&r[f], v, "field {f} of {r}");
        }
    }

    // Filters.
    assert_eq!(
        keys(&list_json(&td, &["--stream", "b"])),
        [k("b", 1, "mp4", 1), k("b", 2, "mp4", 2)]
    );
    assert_eq!(
        keys(&list_json(&td, &["--stream", "a", "--session", "2"])),
        [k("a", 2, "mp4", 3)]
    );
    assert_eq!(
        keys(&list_json(&td, &["--session", "2"])),
        [k("a", 2, "mp4", 3), k("b", 2, "mp4", 2)]
    );
    assert_eq!(
        keys(&list_json(&td, &["--format", "flv"])),
        [k("c", 1, "flv", 1)]
    );
    // Overlap with [10:01:10, 10:05:00): a/1 hls (0-90 s), a/1 mp4 #2
    // (60-90 s), a/2 (200-220 s); b/2 starts at 300 s, exactly --to: out.
    assert_eq!(
        keys(&list_json(
            &td,
            &[
                "--from",
                "2026-12-01T10:01:10Z",
                "--to",
                "2026-12-01T10:05:00Z"
            ]
        )),
        [
            k("a", 1, "hls", 1),
            k("a", 1, "mp4", 2),
            k("a", 2, "mp4", 3)
        ]
    );
    assert_eq!(
        keys(&list_json(
            &td,
            &["--stream", "b", "--from", "2026-12-01T11:00:00+01:00"]
        )),
        [k("b", 1, "mp4", 1), k("b", 2, "mp4", 2)]
    );
}

#[test]
fn list_table_and_errors() {
    let td = TestDir::new();
    write_index(&td);
    let index = td.index_path();
    let x = index.to_str().unwrap();
    let o = liverecord_ok(&["list", "--index", x]);
    // The malformed line is skipped, and said so.
    assert!(o.stderr.contains("line 4 skipped"), "{}", o.stderr);
    let headers: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("stream "))
        .collect();
    assert_eq!(headers.len(), 5, "{}", o.stdout);
    assert!(headers[0].starts_with("stream a  session 1  3 files  180.000 s  2026-12-01T10:00:00.000Z .. 2026-12-01T10:01:30.000Z"), "{}", headers[0]);
    assert!(
        headers[4].starts_with("stream c  session 1  1 file  10.000 s"),
        "{}",
        headers[4]
    );
    let rows: Vec<&str> = o.stdout.lines().filter(|l| l.contains("_0000")).collect();
    assert_eq!(rows.len(), 7, "{}", o.stdout);
    for r in &rows {
        let yes = r.contains("/a_0000");
        assert!(r.contains(if yes { " yes " } else { " no " }), "{r}");
    }
    assert!(
        rows[1].contains("60.000 s") && rows[1].contains("1.0 kB") && rows[1].contains("eos"),
        "{}",
        rows[1]
    );

    // No match: exit 3. Missing index and bad arguments: exit 2.
    let e = liverecord(&["list", "--index", x, "--stream", "zzz"]);
    assert_eq!(e.code, 3, "{e:?}");
    assert!(
        e.stderr.contains("no recordings") && e.stderr.contains("stream zzz"),
        "{}",
        e.stderr
    );
    let missing = td.path().join("nope.jsonl");
    let e = liverecord(&["list", "--index", missing.to_str().unwrap()]);
    assert_eq!(e.code, 2, "{e:?}");
    assert!(e.stderr.contains("no index"), "{}", e.stderr);
    let e = liverecord(&[
        "list",
        "--index",
        x,
        "--from",
        "2026-12-02T00:00:00Z",
        "--to",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(e.code, 2, "{e:?}");
    let e = liverecord(&["list", "--index", x, "--from", "noon"]);
    assert_eq!(e.code, 2, "{e:?}");
    assert!(e.stderr.contains("invalid time"), "{}", e.stderr);
}

/// An upload's `uploaded` record replaces the recording in the listing
/// (where the object is, once), and a retention `deleted` record removes
/// it: `liverecord list` tells where each file is.
#[test]
fn list_shows_uploads_and_leaves_out_deletions() {
    let td = TestDir::new();
    let dir = td.rec_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let kept = line(&dir, "a", 1, 1, "mp4", 0.0, 60.0);
    let gone = line(&dir, "a", 1, 2, "mp4", 60.0, 60.0);
    let mut uploaded = kept.clone();
    uploaded["event"] = json!("uploaded");
    uploaded["object-key"] = json!("vod/a_00001.mp4");
    uploaded["object-url"] = json!("http://127.0.0.1:9000/rec/vod/a_00001.mp4");
    uploaded["etag"] = json!("\"abc\"");
    uploaded["local-deleted"] = json!(true);
    let mut deleted = gone.clone();
    deleted["event"] = json!("deleted");
    let text: String = [&kept, &gone, &uploaded, &deleted]
        .iter()
        .map(|v| format!("{v}\n"))
        .collect();
    std::fs::write(td.index_path(), text).unwrap();

    let all = list_json(&td, &[]);
    assert_eq!(keys(&all), [k("a", 1, "mp4", 1)]);
    assert_eq!(all[0]["object-url"], uploaded["object-url"]);
    assert_eq!(all[0]["local-deleted"], true);
    let index = td.index_path();
    let o = liverecord_ok(&["list", "--index", index.to_str().unwrap()]);
    let lines: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("uploaded "))
        .collect();
    assert_eq!(
        lines,
        ["         uploaded http://127.0.0.1:9000/rec/vod/a_00001.mp4 (local copy deleted)"],
        "{}",
        o.stdout
    );
}
