// SPDX-License-Identifier: MIT OR Apache-2.0
//! Location templates (SPEC §5).
//!
//! A location template is a path without extension, such as
//! `recordings/{stream_id}/{stream_id}_{start:%Y%m%dT%H%M%SZ}_{index}`.
//!
//! Placeholders:
//! - `{stream_id}`: the stream id, made safe with [`sanitize_component`];
//! - `{session}`: the session number;
//! - `{index}`: the file number, zero-padded to 5 digits (`00042`; larger
//!   numbers print in full);
//! - `{format}`: the recording format (`mp4`, `flv`, ...);
//! - `{start:STRFTIME}` and `{end:STRFTIME}`: UTC wall-clock times, formatted
//!   with chrono's strftime syntax. Without a format (`{start}`, `{end}` or
//!   `{start:}`) they use [`DEFAULT_TIME_FORMAT`]. `{end}` renders the start
//!   time while the file is still open.
//!
//! `{{` and `}}` are literal braces; a lone `}` is also taken literally.
//! Anything else in braces is an error.
//!
//! The template's own literal text is trusted: it may be absolute and may
//! contain `/` to create directories. Every substituted value (stream id,
//! format, rendered times) is passed through [`sanitize_component`], so a value
//! can never add a separator, `..`, a hidden file or an absolute path. This
//! also applies to times: `{start:%Y/%m}` renders as `2026_11`; write
//! `{start:%Y}/{start:%m}` to get one directory per month.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use std::fmt::{self, Write as _};
use std::path::PathBuf;

/// The time format used by `{start}` and `{end}` when none is given.
pub const DEFAULT_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The maximum length, in bytes, of one substituted value after
/// [`sanitize_component`].
pub const MAX_COMPONENT_LEN: usize = 128;

/// Width to which `{index}` is zero-padded.
const INDEX_WIDTH: usize = 5;

const KNOWN_PLACEHOLDERS: &str = "{stream_id} {session} {index} {format} {start:FMT} {end:FMT}";

/// Why a location template was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template is the empty string.
    Empty,
    /// A `{` at this byte position has no matching `}`.
    Unclosed(usize),
    /// The text between the braces (without them) is not a known placeholder.
    UnknownPlaceholder(String),
    /// The strftime format of `{start:FMT}` or `{end:FMT}` is invalid.
    BadTimeFormat(String),
    /// The template ends with `/`: it names a directory, not a file.
    NoFileName,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Empty => write!(f, "location template is empty"),
            TemplateError::Unclosed(pos) => write!(
                f,
                "unclosed '{{' at byte {pos} in location template \
                 (write '{{{{' for a literal brace)"
            ),
            TemplateError::UnknownPlaceholder(name) => write!(
                f,
                "unknown placeholder {{{name}}} in location template; \
                 known: {KNOWN_PLACEHOLDERS}"
            ),
            TemplateError::BadTimeFormat(fmt) => write!(
                f,
                "invalid strftime format \"{fmt}\" in location template \
                 (e.g. {{start:%Y%m%dT%H%M%SZ}})"
            ),
            TemplateError::NoFileName => write!(
                f,
                "the location template names a directory (it ends with '/'); \
                 add a file name, e.g. rec/{{stream_id}}_{{index}}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// The values substituted into a [`LocationTemplate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateVars<'a> {
    /// The stream id, unsanitized: [`LocationTemplate::render`] sanitizes it.
    pub stream_id: &'a str,
    pub session: u64,
    pub index: u64,
    /// The format name, unsanitized.
    pub format: &'a str,
    pub start: DateTime<Utc>,
    /// `None` while the file is open: `{end:FMT}` then renders the start time.
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    StreamId,
    Session,
    Index,
    Format,
    Start(String),
    End(String),
}

/// A parsed location template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationTemplate {
    source: String,
    parts: Vec<Part>,
}

impl LocationTemplate {
    /// Parses a template, rejecting unknown placeholders, unclosed braces and
    /// invalid time formats.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        if s.is_empty() {
            return Err(TemplateError::Empty);
        }
        if s.ends_with('/') {
            return Err(TemplateError::NoFileName);
        }

        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = s.char_indices().peekable();

        while let Some((pos, c)) = chars.next() {
            match c {
                '{' => {
                    if chars.next_if(|&(_, c)| c == '{').is_some() {
                        literal.push('{');
                        continue;
                    }
                    let body_start = pos + 1;
                    let rest = &s[body_start..];
                    let close = match rest.find('}') {
                        // A '{' before the '}' means this brace was never closed,
                        // e.g. "{stream_id/{index}".
                        Some(close) if !rest[..close].contains('{') => close,
                        _ => return Err(TemplateError::Unclosed(pos)),
                    };
                    let body = &rest[..close];
                    let close_pos = body_start + close;
                    while chars.next_if(|&(p, _)| p <= close_pos).is_some() {}

                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(parse_placeholder(body)?);
                }
                '}' => {
                    // "}}" is an escaped brace; a lone '}' is taken literally.
                    chars.next_if(|&(_, c)| c == '}');
                    literal.push('}');
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }

        Ok(LocationTemplate {
            source: s.to_owned(),
            parts,
        })
    }

    /// Renders the path, without extension. Every substituted value is
    /// sanitized with [`sanitize_component`].
    pub fn render(&self, vars: &TemplateVars<'_>) -> PathBuf {
        let mut out = String::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::StreamId => out.push_str(&sanitize_component(vars.stream_id)),
                // Writing to a String cannot fail.
                Part::Session => {
                    let _ = write!(out, "{}", vars.session);
                }
                Part::Index => {
                    let _ = write!(out, "{:0width$}", vars.index, width = INDEX_WIDTH);
                }
                Part::Format => out.push_str(&sanitize_component(vars.format)),
                Part::Start(fmt) => {
                    out.push_str(&sanitize_component(&format_time(vars.start, fmt)))
                }
                Part::End(fmt) => {
                    let t = vars.end.unwrap_or(vars.start);
                    out.push_str(&sanitize_component(&format_time(t, fmt)));
                }
            }
        }
        PathBuf::from(out)
    }

    /// Whether the template contains `{end...}`, i.e. whether the final name is
    /// only known when the file is closed.
    pub fn uses_end(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::End(_)))
    }

    /// Whether the template contains `{index}`.
    pub fn uses_index(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Index))
    }

    /// The directory every rendered path lies in: the template's text before
    /// its first placeholder, up to the last `/` (`.` if there is none).
    /// Bookkeeping files and retention stay inside it.
    pub fn fixed_root(&self) -> PathBuf {
        let prefix = match self.parts.first() {
            Some(Part::Literal(l)) if self.parts.len() > 1 => l.as_str(),
            // A template without placeholders: its own directory.
            Some(Part::Literal(l)) => l.as_str(),
            _ => "",
        };
        match prefix.rfind('/') {
            Some(0) => PathBuf::from("/"),
            Some(i) => PathBuf::from(&prefix[..i]),
            None => PathBuf::from("."),
        }
    }

    /// The template text as given to [`LocationTemplate::parse`].
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for LocationTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for LocationTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LocationTemplate::parse(s)
    }
}

fn parse_placeholder(body: &str) -> Result<Part, TemplateError> {
    let (name, fmt) = match body.split_once(':') {
        Some((name, fmt)) => (name, Some(fmt)),
        None => (body, None),
    };
    match (name, fmt) {
        ("stream_id", None) => Ok(Part::StreamId),
        ("session", None) => Ok(Part::Session),
        ("index", None) => Ok(Part::Index),
        ("format", None) => Ok(Part::Format),
        ("start", fmt) => Ok(Part::Start(time_format(fmt)?)),
        ("end", fmt) => Ok(Part::End(time_format(fmt)?)),
        _ => Err(TemplateError::UnknownPlaceholder(body.to_owned())),
    }
}

fn time_format(fmt: Option<&str>) -> Result<String, TemplateError> {
    match fmt {
        None | Some("") => Ok(DEFAULT_TIME_FORMAT.to_owned()),
        Some(fmt) => {
            if StrftimeItems::new(fmt).any(|item| matches!(item, Item::Error)) {
                Err(TemplateError::BadTimeFormat(fmt.to_owned()))
            } else {
                Ok(fmt.to_owned())
            }
        }
    }
}

/// Formats `t` without ever panicking: a format chrono fails to render falls
/// back to [`DEFAULT_TIME_FORMAT`].
fn format_time(t: DateTime<Utc>, fmt: &str) -> String {
    let mut s = String::new();
    if write!(s, "{}", t.format(fmt)).is_err() {
        s.clear();
        if write!(s, "{}", t.format(DEFAULT_TIME_FORMAT)).is_err() {
            s.clear();
        }
    }
    s
}

/// Makes a value safe to use inside one path component.
///
/// Every character outside `[A-Za-z0-9._-]` becomes `_` (this removes `/`,
/// `\`, NUL, spaces, control characters and non-ASCII text), the result is cut
/// to [`MAX_COMPONENT_LEN`] bytes, leading dots become `_` (so no `.`, `..` or
/// hidden files), and an empty result becomes `_`.
pub fn sanitize_component(s: &str) -> String {
    // Every output char is ASCII, so counting chars counts bytes.
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_COMPONENT_LEN)
        .collect();
    if out.is_empty() {
        return "_".to_owned();
    }
    let dots = out.bytes().take_while(|&b| b == b'.').count();
    if dots > 0 {
        out.replace_range(..dots, &"_".repeat(dots));
    }
    out
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
