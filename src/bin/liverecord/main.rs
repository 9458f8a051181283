// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord`: record live streams with `liverecordsink`, and find, splice
//! and trim the recordings.
//!
//! A thin dispatcher: each subcommand lives in its own module. Exit codes
//! are in [`error::Kind`]: 0 success, 2 usage or configuration, 3 no
//! matching recordings, 4 unusable inputs, 5 processing failure.

mod error;
mod join;
mod list;
mod output;
mod progress;
mod reader;
mod record;
mod select;
mod splice;
mod timearg;
mod trim;
mod writer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "liverecord",
    version,
    about = "Record live streams with liverecordsink; find, splice and trim the recordings",
    after_help = "Exit codes: 0 success, 2 usage or configuration error, \
                  3 no matching recordings, 4 selected recordings unusable \
                  (missing, incompatible, not MP4), 5 processing or recording failed, \
                  6 (record) a stream sent no data within --connect-timeout."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record RTMP, SRT, RTSP or file URLs with liverecordsink, across
    /// publisher reconnects; every message is one JSON line on stdout.
    Record(record::Args),
    /// List the recordings of the index, grouped by stream and session.
    List(list::Args),
    /// Join the MP4 files of a session or a time range losslessly into one file.
    Splice(splice::Args),
    /// Cut an MP4 file losslessly; the start snaps to the keyframe at or before --from.
    Trim(trim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record(args) => record::run(args),
        Command::List(args) => list::run(args),
        Command::Splice(args) => splice::run(args),
        Command::Trim(args) => trim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liverecord: error: {e}");
            e.exit_code()
        }
    }
}
