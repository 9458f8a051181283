// SPDX-License-Identifier: MIT OR Apache-2.0
//! Errors of the `liverecord` app and their exit codes.

use std::fmt;
use std::process::ExitCode;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exit 2: bad arguments or configuration (a bad time, a missing or
    /// unreadable index, an output that already exists).
    Usage,
    /// Exit 3: nothing in the index (or in the file) matches the query.
    NoMatch,
    /// Exit 4: the selected recordings cannot be used: missing on disk,
    /// unreadable, not MP4, incompatible codecs or codec configurations, a
    /// stream missing in some of them.
    Input,
    /// Exit 5: processing failed: the output cannot be written, GStreamer
    /// failed or timed out, the index line cannot be appended; `record`:
    /// the recording failed (an unwritable location).
    Failed,
    /// Exit 6 (`record`): a stream sent no data within --connect-timeout.
    NoData,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage => 2,
            Kind::NoMatch => 3,
            Kind::Input => 4,
            Kind::Failed => 5,
            Kind::NoData => 6,
        }
    }
}

/// An error message for the user, with its exit code.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn no_match(message: impl Into<String>) -> Self {
        Self::new(Kind::NoMatch, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
