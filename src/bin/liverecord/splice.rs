// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord splice`: the MP4 files of one stream (a session, a
//! wall-clock range, or both) joined losslessly into one MP4 or FLV file.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use gstliverecord::index::{iso8601, IndexRecord};

use crate::error::{Error, Result};
use crate::join::{self, Part};
use crate::output::{self, Derived, PartFile};
use crate::progress::Progress;
use crate::reader::{self, compat_key, describe_caps, Kind};
use crate::select::{self, Filter, DERIVED_REASONS};
use crate::timearg::{parse_record_time, parse_wall, secs, wall_ms};
use crate::writer::{check_caps, Container};

#[derive(clap::Args)]
pub struct Args {
    /// The stream id to splice.
    #[arg(long)]
    stream: String,
    /// The session to splice (all of it, or the part within --from/--to).
    #[arg(long)]
    session: Option<u64>,
    /// Start of the wall-clock range (RFC 3339 UTC); the output starts at the
    /// keyframe at or before it.
    #[arg(long, value_parser = parse_wall)]
    from: Option<DateTime<Utc>>,
    /// End of the wall-clock range (RFC 3339 UTC); the output ends there.
    #[arg(long, value_parser = parse_wall)]
    to: Option<DateTime<Utc>>,
    /// The output file: MP4, or FLV if it ends in .flv. Written as OUT.part,
    /// renamed when complete.
    #[arg(short, long)]
    output: PathBuf,
    /// The JSON Lines index written by liverecordsink.
    #[arg(long, default_value = select::DEFAULT_INDEX)]
    index: PathBuf,
    /// Keep the wall-clock gaps between files (sessions) in the timeline
    /// instead of closing them up.
    #[arg(long)]
    keep_gaps: bool,
    /// Leave the audio out (for selections where some files have none).
    #[arg(long)]
    video_only: bool,
    /// Replace the output if it exists.
    #[arg(long)]
    force: bool,
    /// Print the output's index line (JSON) instead of a summary.
    #[arg(long)]
    json: bool,
}

/// A selected record and its file's probe.
struct Source {
    rec: IndexRecord,
    path: PathBuf,
    start: DateTime<Utc>,
    /// Where the next file of the session starts, or the record's end-time.
    end: DateTime<Utc>,
    probe: reader::Probe,
}

pub fn run(args: Args) -> Result<()> {
    if args.session.is_none() && (args.from.is_none() || args.to.is_none()) {
        return Err(Error::usage(
            "splice needs --session N, or --from T and --to T (or all three)",
        ));
    }
    if let (Some(f), Some(t)) = (args.from, args.to) {
        if f >= t {
            return Err(Error::usage("--from must be before --to"));
        }
    }
    let records = select_records(&args)?;
    gst::init().map_err(|e| Error::failed(format!("cannot initialise GStreamer: {e}")))?;
    reader::require("qtdemux")?;
    let sources = probe_all(records)?;
    let streams = choose_streams(&sources, args.video_only)?;
    check_compatible(&sources, streams)?;
    let container = Container::for_path(&args.output);
    for k in [Kind::Video, Kind::Audio] {
        if let Some(c) = sources[0].probe.caps[k as usize].as_ref() {
            if streams[k as usize] {
                check_caps(container, k, c)?;
            }
        }
    }
    output::check_index_writable(&args.index)?;

    let parts: Vec<Part> = sources
        .iter()
        .map(|s| {
            let local = |t: DateTime<Utc>| (t - s.start).num_nanoseconds().unwrap_or(i64::MAX);
            let dur = s.probe.duration.map_or(i64::MAX, |d| d as i64);
            Part {
                path: s.path.clone(),
                probe: s.probe.clone(),
                from: args.from.map(local).filter(|&f| f > 0),
                to: args.to.map(local).filter(|&t| t < dur),
                start_wall: Some(s.start),
            }
        })
        .collect();
    let total: u64 = parts
        .iter()
        .map(|p| {
            let end = p.to.unwrap_or(p.probe.duration.unwrap_or(0) as i64);
            (end - p.from.unwrap_or(0)).max(0) as u64
        })
        .sum();
    let first_start = sources[0].start;
    let first_path = sources[0].path.display().to_string();
    let n = sources.len();
    let stream = args.stream.clone();
    let requested = args.from;
    let comment = move |start: i64| {
        let at = first_start + chrono::Duration::nanoseconds(start);
        let mut c = format!(
            "liverecord splice of {n} file(s) of stream {stream}; starts at {} \
             (keyframe at {} s of {first_path})",
            wall_ms(at),
            secs(start)
        );
        if let Some(r) = requested {
            c.push_str(&format!("; requested start {}", wall_ms(r)));
        }
        c
    };

    let part_file = PartFile::create(&args.output, args.force)?;
    let progress = Progress::new(total, "splice");
    let opts = join::Options {
        container,
        streams,
        keep_gaps: args.keep_gaps,
        comment: &comment,
        progress: &progress,
    };
    let outcome = join::join(&parts, part_file.part(), &opts);
    progress.finish();
    let outcome = outcome?;
    let size = part_file.commit()?;

    let start_local = outcome.parts.first().map_or(0, |p| p.start);
    let start = first_start + chrono::Duration::nanoseconds(start_local);
    let used: Vec<&IndexRecord> = sources.iter().map(|s| &s.rec).collect();
    let rec = output::derived_record(&Derived {
        sources: &used,
        reason: "spliced",
        format: container.name(),
        location: &args.output,
        start,
        start_running_time: sources[0].rec.start_running_time + start_local.max(0) as u64,
        duration_ns: outcome.duration,
        size,
        frames: outcome.frames,
    });
    output::append_or_remove(&args.index, &args.output, &rec)?;

    if args.json {
        println!(
            "{}",
            rec.to_line()
                .map_or_else(|e| e.to_string(), |l| l.trim_end().to_owned())
        );
        return Ok(());
    }
    println!(
        "spliced {} file(s) of stream {} into {}: {} s, {} video + {} audio frames, {} bytes",
        sources.len(),
        args.stream,
        args.output.display(),
        secs(outcome.duration as i64),
        outcome.frames[0],
        outcome.frames[1],
        size
    );
    match args.from {
        Some(f) if start <= f => println!(
            "start: {} (keyframe at or before the requested {})",
            wall_ms(start),
            wall_ms(f)
        ),
        Some(f) => println!(
            "start: {} (the first recording after the requested {})",
            wall_ms(start),
            wall_ms(f)
        ),
        None => println!("start: {}", wall_ms(start)),
    }
    for (s, p) in sources.iter().zip(&outcome.parts) {
        let mut line = format!(
            "  {}  from {} s -> output {} s, {} video + {} audio frames",
            s.path.display(),
            secs(p.start),
            secs(p.out_start),
            p.frames[0],
            p.frames[1]
        );
        if p.gap > 0 {
            line.push_str(&format!(", {} s gap kept", secs(p.gap)));
        }
        if p.shift > 0 {
            line.push_str(&format!(
                ", moved {} s later (audio overlap)",
                secs(p.shift)
            ));
        }
        println!("{line}");
    }
    println!("index: {} ({})", args.index.display(), rec.file_id);
    Ok(())
}

/// The MP4 records the arguments select, in time order, each with its
/// effective end: a file ends where the next file of the stream starts, if
/// that is earlier than its `end-time` (which can be later by the audio that
/// outlasts its last video frame).
fn select_records(args: &Args) -> Result<Vec<(IndexRecord, DateTime<Utc>)>> {
    let all = select::read_index(&args.index)?;
    let stream_filter = Filter {
        stream: Some(args.stream.clone()),
        session: args.session,
        ..Filter::default()
    };
    let recorded: Vec<&IndexRecord> = all
        .iter()
        .filter(|r| stream_filter.matches(r) && !DERIVED_REASONS.contains(&r.reason.as_str()))
        .collect();
    let mut mp4: Vec<IndexRecord> = recorded
        .iter()
        .filter(|r| r.format == "mp4")
        .map(|r| (*r).clone())
        .collect();
    select::sort(&mut mp4);
    let mut selected = Vec::new();
    for (i, r) in mp4.iter().enumerate() {
        let (Some(start), Some(mut end)) = (
            parse_record_time(&r.start_time),
            parse_record_time(&r.end_time),
        ) else {
            return Err(Error::input(format!(
                "{}: bad start-time or end-time in the index",
                r.location
            )));
        };
        // The next file of the stream starts where this one's video ended
        // (same session, or a new session after a caps change).
        if let Some(ns) = mp4
            .get(i + 1)
            .and_then(|n| parse_record_time(&n.start_time))
        {
            if ns > start {
                end = end.min(ns);
            }
        }
        let in_range = args.from.is_none_or(|f| end > f) && args.to.is_none_or(|t| start < t);
        if in_range {
            selected.push((r.clone(), end));
        }
    }
    if selected.is_empty() {
        let filter = Filter {
            from: args.from,
            to: args.to,
            ..stream_filter
        };
        let mut formats: Vec<&str> = recorded
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| r.format.as_str())
            .filter(|f| *f != "mp4")
            .collect();
        formats.sort_unstable();
        formats.dedup();
        let why = if formats.is_empty() {
            String::new()
        } else {
            format!(
                " (found only {} recordings; splice joins MP4 recordings only)",
                formats.join(", ")
            )
        };
        return Err(Error::no_match(format!(
            "no MP4 recordings in {} match ({}){why}",
            args.index.display(),
            filter.describe()
        )));
    }
    Ok(selected)
}

/// Checks that every file is there and reads its header.
fn probe_all(records: Vec<(IndexRecord, DateTime<Utc>)>) -> Result<Vec<Source>> {
    let missing: Vec<&str> = records
        .iter()
        .filter(|(r, _)| !select::exists(r))
        .map(|(r, _)| r.location.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::input(format!(
            "{} of the {} selected files are listed in the index but missing on disk: {}",
            missing.len(),
            records.len(),
            missing.join(", ")
        )));
    }
    let mut out = Vec::new();
    for (rec, end) in records {
        let path = select::record_path(&rec);
        let start = parse_record_time(&rec.start_time).ok_or_else(|| {
            Error::input(format!(
                "{}: bad start-time {:?} in the index",
                rec.location, rec.start_time
            ))
        })?;
        let probe = reader::probe(&path)?;
        out.push(Source {
            rec,
            path,
            start,
            end,
            probe,
        });
    }
    Ok(out)
}

/// Video and audio if every file has them; a stream that only some files
/// have is an error (unless it is audio and `video_only`).
fn choose_streams(sources: &[Source], video_only: bool) -> Result<[bool; 2]> {
    let mut streams = [false, false];
    for k in [Kind::Video, Kind::Audio] {
        if k == Kind::Audio && video_only {
            continue;
        }
        let without: Vec<String> = sources
            .iter()
            .filter(|s| !s.probe.has(k))
            .map(|s| s.path.display().to_string())
            .collect();
        if without.len() == sources.len() {
            continue;
        }
        if !without.is_empty() {
            let hint = if k == Kind::Audio {
                " (use --video-only to leave the audio out, or splice the files with audio separately)"
            } else {
                ""
            };
            return Err(Error::input(format!(
                "{} of the {} selected files have no {} stream: {}{hint}",
                without.len(),
                sources.len(),
                k.name(),
                without.join(", ")
            )));
        }
        streams[k as usize] = true;
    }
    if streams == [false, false] {
        return Err(Error::input(
            "the selected files have no video and no audio to splice",
        ));
    }
    Ok(streams)
}

/// Refuses a selection whose codec configuration changes (e.g. a resolution
/// change), naming the first two files that differ and suggesting the
/// ranges of the compatible groups.
fn check_compatible(sources: &[Source], streams: [bool; 2]) -> Result<()> {
    let key = |s: &Source| -> Vec<String> {
        [Kind::Video, Kind::Audio]
            .iter()
            .filter(|k| streams[**k as usize])
            .map(|k| {
                s.probe.caps[*k as usize]
                    .as_ref()
                    .map(|c| compat_key(c))
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut groups: Vec<(usize, usize)> = vec![(0, 0)];
    for i in 1..sources.len() {
        if key(&sources[i]) == key(&sources[i - 1]) {
            if let Some(g) = groups.last_mut() {
                g.1 = i;
            }
        } else {
            groups.push((i, i));
        }
    }
    if groups.len() == 1 {
        return Ok(());
    }
    let (a, b) = (&sources[groups[0].1], &sources[groups[1].0]);
    // Name only the streams whose configuration changes.
    let caps_key = |s: &Source, k: Kind| s.probe.caps[k as usize].as_ref().map(|c| compat_key(c));
    let differs = |k: Kind| streams[k as usize] && caps_key(a, k) != caps_key(b, k);
    let describe = |s: &Source| -> String {
        [Kind::Video, Kind::Audio]
            .iter()
            .filter(|k| differs(**k))
            .filter_map(|k| s.probe.caps[*k as usize].as_ref().map(|c| describe_caps(c)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut msg = format!(
        "the codec configuration changes within the selection, so the files cannot be \
         joined into one file without re-encoding:\n  {}: {}\n  {}: {}\n\
         Splice the {} compatible groups separately:",
        a.path.display(),
        describe(a),
        b.path.display(),
        describe(b),
        groups.len()
    );
    for (first, last) in groups {
        let s = &sources[first];
        let e = &sources[last];
        msg.push_str(&format!(
            "\n  --from {} --to {}  ({} file(s), {})",
            iso8601(s.start),
            iso8601(e.end),
            last - first + 1,
            describe(s)
        ));
    }
    Err(Error::input(msg))
}
