// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord trim`: a lossless cut of one MP4 file. The start snaps to the
//! keyframe at or before `--from` (GStreamer 1.22's mp4mux cannot write an
//! edit list that would hide the frames before it); the end is `--to`.

use std::path::{Path, PathBuf};

use gstliverecord::index::IndexRecord;

use crate::error::{Error, Result};
use crate::join::{self, Part};
use crate::output::{self, Derived, PartFile};
use crate::progress::Progress;
use crate::reader::{self, Kind};
use crate::select;
use crate::timearg::{parse_media, parse_record_time, secs, wall_ms};
use crate::writer::{check_caps, Container};

#[derive(clap::Args)]
pub struct Args {
    /// The MP4 file to cut.
    input: PathBuf,
    /// The output file: MP4, or FLV if it ends in .flv. Written as OUT.part,
    /// renamed when complete.
    #[arg(short, long)]
    output: PathBuf,
    /// Start, in media time: seconds (12.5) or HH:MM:SS.mmm. The output starts
    /// at the keyframe at or before it.
    #[arg(long, value_parser = parse_media)]
    from: Option<u64>,
    /// End, in media time: seconds or HH:MM:SS.mmm. Frames from there on are
    /// left out.
    #[arg(long, value_parser = parse_media)]
    to: Option<u64>,
    /// The index: the input's record is looked up there, and the output's
    /// line appended. Empty: no index.
    #[arg(long, default_value = select::DEFAULT_INDEX)]
    index: PathBuf,
    /// Replace the output if it exists.
    #[arg(long)]
    force: bool,
    /// Print the output's index line (JSON) instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.from.is_none() && args.to.is_none() {
        return Err(Error::usage("trim needs --from, --to or both"));
    }
    let from = args.from.unwrap_or(0) as i64;
    if let Some(to) = args.to {
        if to as i64 <= from {
            return Err(Error::usage("--from must be before --to"));
        }
    }
    if !args.input.is_file() {
        return Err(Error::input(format!(
            "the input {} does not exist or is not a file",
            args.input.display()
        )));
    }
    gst::init().map_err(|e| Error::failed(format!("cannot initialise GStreamer: {e}")))?;
    reader::require("qtdemux")?;
    let probe = reader::probe(&args.input)?;
    let duration = probe.duration.map(|d| d as i64);
    if let Some(d) = duration {
        if from >= d {
            return Err(Error::usage(format!(
                "--from {} s is past the end of {} ({} s)",
                secs(from),
                args.input.display(),
                secs(d)
            )));
        }
    }
    let container = Container::for_path(&args.output);
    let streams = [probe.has(Kind::Video), probe.has(Kind::Audio)];
    for k in [Kind::Video, Kind::Audio] {
        if let Some(c) = probe.caps[k as usize].as_ref() {
            check_caps(container, k, c)?;
        }
    }
    let use_index = !args.index.as_os_str().is_empty();
    let source = if use_index {
        find_record(&args.index, &args.input)?
    } else {
        None
    };
    if source.is_some() {
        output::check_index_writable(&args.index)?;
    } else if use_index {
        eprintln!(
            "liverecord: warning: {} is not in the index {}: the output gets no index line",
            args.input.display(),
            args.index.display()
        );
    }
    let start_wall = source
        .as_ref()
        .and_then(|r| parse_record_time(&r.start_time));

    let to = args
        .to
        .map(|t| t as i64)
        .filter(|&t| duration.is_none_or(|d| t < d));
    let part = Part {
        path: args.input.clone(),
        probe: probe.clone(),
        from: (from > 0).then_some(from),
        to,
        start_wall,
    };
    let input_name = args.input.display().to_string();
    let (req_from, req_to) = (args.from, args.to);
    let comment = move |start: i64| {
        let mut c = format!(
            "liverecord trim of {input_name}: starts at {} s",
            secs(start)
        );
        if let Some(f) = req_from {
            c.push_str(&format!(
                " (the keyframe at or before the requested start {} s)",
                secs(f as i64)
            ));
        }
        if let Some(t) = req_to {
            c.push_str(&format!(", ends at {} s", secs(t as i64)));
        }
        c
    };
    let total = (to.or(duration).unwrap_or(0) - from).max(0) as u64;
    let part_file = PartFile::create(&args.output, args.force)?;
    let progress = Progress::new(total, "trim");
    let opts = join::Options {
        container,
        streams,
        keep_gaps: false,
        comment: &comment,
        progress: &progress,
    };
    let outcome = join::join(std::slice::from_ref(&part), part_file.part(), &opts);
    progress.finish();
    let outcome = outcome?;
    let size = part_file.commit()?;

    let start = outcome.parts.first().map_or(0, |p| p.start);
    let end = outcome.parts.first().map_or(0, |p| p.end);
    let rec = match (&source, start_wall) {
        (Some(src), Some(w)) => {
            let sources = [src];
            let rec = output::derived_record(&Derived {
                sources: &sources,
                reason: "trimmed",
                format: container.name(),
                location: &args.output,
                start: w + chrono::Duration::nanoseconds(start),
                start_running_time: src.start_running_time + start.max(0) as u64,
                duration_ns: outcome.duration,
                size,
                frames: outcome.frames,
            });
            output::append_or_remove(&args.index, &args.output, &rec)?;
            Some(rec)
        }
        _ => None,
    };

    if args.json {
        let line = match &rec {
            Some(r) => serde_json::to_value(r).unwrap_or_default(),
            None => serde_json::json!({
                "location": args.output.to_string_lossy(),
                "duration": gstliverecord::index::seconds_ms(outcome.duration),
                "size": size,
                "video-frames": outcome.frames[0],
                "audio-frames": outcome.frames[1],
                "reason": "trimmed",
            }),
        };
        println!("{line}");
        return Ok(());
    }
    println!(
        "trimmed {} into {}: {} s, {} video + {} audio frames, {} bytes",
        args.input.display(),
        args.output.display(),
        secs(outcome.duration as i64),
        outcome.frames[0],
        outcome.frames[1],
        size
    );
    let requested = |t: Option<u64>| {
        t.map_or(String::new(), |t| {
            format!(" (requested {} s)", secs(t as i64))
        })
    };
    println!(
        "start: {} s of the input, the keyframe at or before --from{}; end: {} s{}",
        secs(start),
        requested(args.from),
        secs(end),
        requested(args.to)
    );
    if let (Some(r), Some(w)) = (&rec, start_wall) {
        println!(
            "wall clock: {} .. {}; index: {} ({})",
            wall_ms(w + chrono::Duration::nanoseconds(start)),
            wall_ms(w + chrono::Duration::nanoseconds(end)),
            args.index.display(),
            r.file_id
        );
    }
    Ok(())
}

/// The index record of `input` (the same file by canonical path), if the
/// index exists and has one.
fn find_record(index: &Path, input: &Path) -> Result<Option<IndexRecord>> {
    if !index.exists() {
        return Ok(None);
    }
    let want = std::fs::canonicalize(input).ok();
    let found = select::read_index(index)?.into_iter().rev().find(|r| {
        let p = select::record_path(r);
        std::fs::canonicalize(&p).ok() == want && want.is_some()
    });
    Ok(found)
}
