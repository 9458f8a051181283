// SPDX-License-Identifier: MIT OR Apache-2.0
//! A progress bar on stderr, in media seconds, only when stderr is a
//! terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total_ns` of media, shown only on a terminal.
    pub fn new(total_ns: u64, what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(total_ns / 1_000_000);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ms of media ({eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress { bar: Some(bar) }
    }

    /// Media done so far, in ns.
    pub fn set(&self, done_ns: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done_ns / 1_000_000);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
