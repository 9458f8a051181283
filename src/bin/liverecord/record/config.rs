// SPDX-License-Identifier: MIT OR Apache-2.0
//! What `liverecord record` records: streams (URL, stream id, element
//! properties) from the command line or a TOML file, checked against the
//! element's properties before anything starts.

use std::collections::BTreeMap;
use std::path::Path;

use gst::prelude::*;

use crate::error::{Error, Result};

/// One stream to record.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    pub url: String,
    /// `liverecordsink` properties, by name, as strings (as `--set` takes them).
    pub props: BTreeMap<String, String>,
}

impl StreamConfig {
    pub fn stream_id(&self) -> &str {
        self.props.get("stream-id").map_or("live", |s| s.as_str())
    }
}

/// The schemes `record` takes, and what reads them.
pub fn check_url(url: &str) -> Result<()> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("rtmp" | "rtmps" | "srt" | "rtsp" | "rtsps" | "file" | "http" | "https") => Ok(()),
        Some(other) => Err(Error::usage(format!(
            "{url}: unknown scheme {other}:// (rtmp, srt, rtsp, file, http and https are recorded)"
        ))),
        None if Path::new(url).exists() => Ok(()),
        None => Err(Error::usage(format!(
            "{url}: not a URL (rtmp://, srt://, rtsp://, file://) and no such file"
        ))),
    }
}

/// A path becomes a file:// URL.
pub fn normalise_url(url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    let p = Path::new(url);
    let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    format!("file://{}", abs.display())
}

/// Parses `NAME=VALUE`.
pub fn parse_set(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Error::usage(format!(
            "--set {s}: expected NAME=VALUE, e.g. --set record-interval=600"
        ))),
    }
}

/// Reads a TOML config: `[defaults]` (element properties for every stream)
/// and `[[streams]]` (`url`, and any element property, e.g. `stream-id`).
pub fn from_toml(path: &Path) -> Result<Vec<StreamConfig>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
    parse_toml(&text).map_err(|e| Error::usage(format!("{}: {}", path.display(), e.message)))
}

pub fn parse_toml(text: &str) -> Result<Vec<StreamConfig>> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::usage(e.to_string()))?;
    let mut defaults = BTreeMap::new();
    let mut streams = Vec::new();
    for (key, value) in &doc {
        match (key.as_str(), value) {
            ("defaults", toml::Value::Table(t)) => {
                for (k, v) in t {
                    defaults.insert(k.clone(), scalar(v, &format!("defaults.{k}"))?);
                }
            }
            ("streams", toml::Value::Array(list)) => {
                for (i, s) in list.iter().enumerate() {
                    let toml::Value::Table(t) = s else {
                        return Err(Error::usage(format!("streams[{i}] is not a table")));
                    };
                    let mut url = None;
                    let mut props = BTreeMap::new();
                    for (k, v) in t {
                        let v = scalar(v, &format!("streams[{i}].{k}"))?;
                        if k == "url" {
                            url = Some(v);
                        } else {
                            props.insert(k.clone(), v);
                        }
                    }
                    let url =
                        url.ok_or_else(|| Error::usage(format!("streams[{i}] has no url")))?;
                    streams.push(StreamConfig { url, props });
                }
            }
            (other, _) => {
                return Err(Error::usage(format!(
                    "unknown key {other} (a config has [defaults] and [[streams]])"
                )))
            }
        }
    }
    if streams.is_empty() {
        return Err(Error::usage("no [[streams]] in the config"));
    }
    for s in &mut streams {
        for (k, v) in &defaults {
            s.props.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(streams)
}

fn scalar(v: &toml::Value, at: &str) -> Result<String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        _ => Err(Error::usage(format!(
            "{at}: expected a string, number or boolean"
        ))),
    }
}

/// Sets `props` on `element`, each checked against its property spec: an
/// unknown property or a value that does not parse is an error naming it.
pub fn apply(element: &gst::Element, props: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in props {
        let Some(pspec) = element.find_property(name) else {
            return Err(Error::usage(format!(
                "liverecordsink has no property {name} (gst-inspect-1.0 liverecordsink lists them)"
            )));
        };
        if !pspec.flags().contains(gst::glib::ParamFlags::WRITABLE) {
            return Err(Error::usage(format!("property {name} is read-only")));
        }
        let v = gst::glib::Value::deserialize_with_pspec(value, &pspec).map_err(|_| {
            Error::usage(format!(
                "{name}={value}: not a valid {} value",
                pspec.value_type().name()
            ))
        })?;
        element.set_property_from_value(name, &v);
    }
    Ok(())
}

/// Checks that recordings can be written where `location` (a template)
/// puts them: its fixed directory is created and written to.
pub fn check_location(location: &str) -> Result<()> {
    let fixed = location.split('{').next().unwrap_or_default();
    let dir = if fixed.ends_with('/') {
        Path::new(fixed).to_path_buf()
    } else {
        Path::new(fixed)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".").to_path_buf()
    } else {
        dir
    };
    let fail = |e: std::io::Error| {
        Error::failed(format!(
            "cannot write recordings under {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let probe = dir.join(format!(".liverecord-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_defaults_apply_to_each_stream() {
        let s = parse_toml(
            r#"
[defaults]
formats = "mp4+hls"
record-interval = 600
[[streams]]
url = "rtmp://a/live/x"
stream-id = "x"
[[streams]]
url = "srt://b:1?mode=listener"
stream-id = "y"
record-interval = 60
"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].props["record-interval"], "600");
        assert_eq!(s[1].props["record-interval"], "60");
        assert_eq!(s[1].props["formats"], "mp4+hls");
        assert_eq!(s[1].stream_id(), "y");
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(parse_toml("[[streams]]\nstream-id='x'\n").is_err());
        assert!(parse_toml("[defaults]\n").is_err());
        assert!(parse_toml("[bogus]\n[[streams]]\nurl='rtmp://x'\n").is_err());
        assert!(parse_toml("[[streams]]\nurl='rtmp://x'\nfoo=[1]\n").is_err());
    }

    #[test]
    fn urls_and_sets() {
        assert!(check_url("rtmp://h/a/b").is_ok());
        assert!(check_url("gopher://h").is_err());
        assert!(check_url("/no/such/file").is_err());
        assert_eq!(
            parse_set("formats=mp4+hls").unwrap(),
            ("formats".into(), "mp4+hls".into())
        );
        assert!(parse_set("formats").is_err());
    }
}
