// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord list`: the recordings of the index, grouped by stream and
//! session, as a table or as JSON Lines.

use std::io::Write;
use std::path::PathBuf;

use gstliverecord::index::IndexRecord;

use crate::error::{Error, Result};
use crate::select::{self, Filter};
use crate::timearg::{self, parse_wall};

#[derive(clap::Args)]
pub struct Args {
    /// The JSON Lines index written by liverecordsink (its index-location).
    #[arg(long, default_value = select::DEFAULT_INDEX)]
    index: PathBuf,
    /// Only this stream id.
    #[arg(long)]
    stream: Option<String>,
    /// Only this session.
    #[arg(long)]
    session: Option<u64>,
    /// Only records that end after this time (RFC 3339 UTC, e.g. 2026-12-01T10:00:00Z).
    #[arg(long, value_parser = parse_wall)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records that start before this time (RFC 3339 UTC).
    #[arg(long, value_parser = parse_wall)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this format: mp4, flv, aac or hls.
    #[arg(long)]
    format: Option<String>,
    /// One JSON object per record (the index fields plus "exists").
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let (Some(f), Some(t)) = (args.from, args.to) {
        if f >= t {
            return Err(Error::usage("--from must be before --to"));
        }
    }
    let filter = Filter {
        stream: args.stream,
        session: args.session,
        format: args.format,
        from: args.from,
        to: args.to,
    };
    let mut records: Vec<IndexRecord> = select::read_index(&args.index)?
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    if records.is_empty() {
        return Err(Error::no_match(format!(
            "no recordings in {} match ({})",
            args.index.display(),
            filter.describe()
        )));
    }
    select::sort(&mut records);
    let text = if args.json {
        json_lines(&records)?
    } else {
        table(&records)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// One JSON object per record: the index line plus `"exists"`.
fn json_lines(records: &[IndexRecord]) -> Result<String> {
    let mut text = String::new();
    for r in records {
        // The index line, fields in the index's order, plus "exists".
        let mut line = serde_json::to_string(r)
            .map_err(|e| Error::failed(format!("cannot write JSON: {e}")))?;
        line.pop();
        line.push_str(&format!(",\"exists\":{}}}\n", select::exists(r)));
        text.push_str(&line);
    }
    Ok(text)
}

/// Bytes for people: `78.3 kB`, `5.3 MB`.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn short_time(s: &str) -> String {
    timearg::parse_record_time(s).map_or_else(|| s.to_owned(), timearg::wall_ms)
}

/// The human table: a header line per stream and session, one row per file.
fn table(records: &[IndexRecord]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while i < records.len() {
        let (stream, session) = (&records[i].stream_id, records[i].session_id);
        let group: Vec<&IndexRecord> = records[i..]
            .iter()
            .take_while(|r| r.stream_id == *stream && r.session_id == session)
            .collect();
        i += group.len();
        let total: f64 = group.iter().map(|r| r.duration).sum();
        let first = group.first().map_or("", |r| r.start_time.as_str());
        let last = group
            .iter()
            .map(|r| r.end_time.as_str())
            .max()
            .unwrap_or("");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "stream {stream}  session {session}  {} file{}  {total:.3} s  {} .. {}\n",
            group.len(),
            if group.len() == 1 { "" } else { "s" },
            short_time(first),
            short_time(last),
        ));
        text.push_str(&format!(
            "  {:>5}  {:<6} {:<24} {:<24} {:>9} {:>9} {:>11}  {:<15} {:<6} {}\n",
            "INDEX",
            "FORMAT",
            "START (UTC)",
            "END (UTC)",
            "DURATION",
            "SIZE",
            "FRAMES V/A",
            "REASON",
            "EXISTS",
            "LOCATION"
        ));
        for r in group {
            text.push_str(&format!(
                "  {:>5}  {:<6} {:<24} {:<24} {:>9} {:>9} {:>11}  {:<15} {:<6} {}\n",
                format!("{:05}", r.index),
                r.format,
                short_time(&r.start_time),
                short_time(&r.end_time),
                format!("{:.3} s", r.duration),
                human_size(r.size),
                format!("{}/{}", r.video_frames, r.audio_frames),
                r.reason,
                if select::exists(r) { "yes" } else { "no" },
                r.location
            ));
            if !r.source_file_ids.is_empty() {
                text.push_str(&format!("         from {}\n", r.source_file_ids.join(", ")));
            }
            if let Some(url) = &r.playback_url {
                text.push_str(&format!("         playback {url}\n"));
            }
            if let Some(url) = &r.object_url {
                let local = if r.local_deleted {
                    " (local copy deleted)"
                } else {
                    ""
                };
                text.push_str(&format!("         uploaded {url}{local}\n"));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(78_280), "78.3 kB");
        assert_eq!(human_size(5_305_674), "5.3 MB");
    }
}
