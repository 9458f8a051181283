// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where uploads go (issue 12): `upload-url` (`s3://bucket/key-template`)
//! parsed and checked, the object key of a file, and its object URL on the
//! endpoint. Pure: no GStreamer, no network.

use std::path::Path;

/// Placeholders of `upload-url`'s key template.
pub const KEY_PLACEHOLDERS: [&str; 5] = ["path", "filename", "stream_id", "format", "file_id"];

/// A parsed `upload-url` plus endpoint and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// The key template (after `s3://bucket/`).
    pub key_template: String,
    /// `scheme://host[:port]`, no trailing slash.
    pub endpoint: String,
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`): a custom endpoint;
    /// virtual-host style (`bucket.endpoint/key`) for AWS itself.
    pub path_style: bool,
}

/// What a key is made of.
#[derive(Debug, Clone, Copy)]
pub struct KeyVars<'a> {
    /// The file's path relative to the location template's fixed root.
    pub path: &'a str,
    pub stream_id: &'a str,
    pub format: &'a str,
    pub file_id: &'a str,
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The placeholders of a template, or the first unclosed/unknown one.
fn check_placeholders(t: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("an unclosed '{{' in '{t}'"));
        };
        let name = &after[..close];
        if !KEY_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; known: {}",
                KEY_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
            ));
        }
        found.push(name);
        rest = &after[close + 1..];
    }
    Ok(found)
}

impl Target {
    /// Parses `upload-url` with `upload-endpoint` (empty: AWS for the
    /// region) and `upload-region`. The key template must name each file
    /// apart: it needs `{filename}` or `{path}`.
    pub fn parse(url: &str, endpoint: &str, region: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("upload-url '{url}' must start with s3://"))?;
        let (bucket, key_template) = rest
            .split_once('/')
            .ok_or_else(|| format!("upload-url '{url}' has no key after the bucket"))?;
        if !valid_bucket(bucket) {
            return Err(format!(
                "upload-url '{url}': '{bucket}' is not a valid bucket name (3-63 of a-z 0-9 . -)"
            ));
        }
        if key_template.is_empty() || key_template.starts_with('/') {
            return Err(format!("upload-url '{url}' has an empty key template"));
        }
        let used = check_placeholders(key_template).map_err(|e| format!("upload-url: {e}"))?;
        if !used.iter().any(|p| *p == "filename" || *p == "path") {
            return Err(format!(
                "upload-url '{url}' needs {{filename}} or {{path}} in its key, else every file would overwrite the same object"
            ));
        }
        if region.is_empty() || region.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(format!("upload-region '{region}' is not a region name"));
        }
        let (endpoint, path_style) = if endpoint.is_empty() {
            (format!("https://s3.{region}.amazonaws.com"), false)
        } else {
            let e = endpoint.trim_end_matches('/');
            let host = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or("");
            if host.is_empty() || host.contains('/') || e.chars().any(char::is_whitespace) {
                return Err(format!(
                    "upload-endpoint '{endpoint}' is not an http(s)://host[:port] URL"
                ));
            }
            (e.to_string(), true)
        };
        Ok(Target {
            bucket: bucket.to_string(),
            key_template: key_template.to_string(),
            endpoint,
            region: region.to_string(),
            path_style,
        })
    }

    /// The object key of a file.
    pub fn key(&self, v: &KeyVars<'_>) -> String {
        let path = relative_key_path(v.path);
        let filename = path.rsplit('/').next().unwrap_or(&path).to_string();
        self.key_template
            .replace("{path}", &path)
            .replace("{filename}", &filename)
            .replace("{stream_id}", v.stream_id)
            .replace("{format}", v.format)
            .replace("{file_id}", v.file_id)
    }

    /// The object's URL (percent-encoded key).
    pub fn object_url(&self, key: &str) -> String {
        let key = encode_key(key);
        if self.path_style {
            format!("{}/{}/{}", self.endpoint, self.bucket, key)
        } else {
            let (scheme, host) = self.endpoint.split_once("://").unwrap_or(("https", ""));
            format!("{scheme}://{}.{host}/{key}", self.bucket)
        }
    }
}

/// Keys of one recorder's files: the target, the location template's
/// fixed root (keys hold paths relative to it) and the path-safe stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyer {
    pub target: Target,
    pub root: std::path::PathBuf,
    pub stream_id: String,
}

impl Keyer {
    /// The key of the file at `location`.
    pub fn key(&self, location: &str, format: &str, file_id: &str) -> String {
        let path = path_under(&self.root, Path::new(location));
        self.target.key(&KeyVars {
            path: &path,
            stream_id: &self.stream_id,
            format,
            file_id,
        })
    }

    /// The URL of the object the file at `location` is uploaded to.
    pub fn url(&self, location: &str, format: &str, file_id: &str) -> String {
        self.target.object_url(&self.key(location, format, file_id))
    }
}

/// A path as a key: `/`-separated, without `.`, `..` or empty components.
fn relative_key_path(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect::<Vec<_>>()
        .join("/")
}

/// The path of `file` relative to `root` (the template's fixed root), as
/// a key path; a file outside `root` keeps its own path.
pub fn path_under(root: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(root)
        .or_else(|_| file.strip_prefix(root.strip_prefix("./").unwrap_or(root)))
        .unwrap_or(file);
    relative_key_path(&rel.to_string_lossy())
}

/// Percent-encodes a key for a URL, keeping `/` and the unreserved set.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(path: &'a str) -> KeyVars<'a> {
        KeyVars {
            path,
            stream_id: "cam",
            format: "mp4",
            file_id: "cam-mp4-1-1-x",
        }
    }

    #[test]
    fn parses_and_fills_a_key() {
        let t = Target::parse(
            "s3://rec-bucket/vod/{stream_id}/{filename}",
            "http://127.0.0.1:9000/",
            "us-east-1",
        )
        .unwrap();
        assert_eq!(t.bucket, "rec-bucket");
        assert_eq!(t.endpoint, "http://127.0.0.1:9000");
        assert!(t.path_style);
        let k = t.key(&vars("cam/s1/a b.mp4"));
        assert_eq!(k, "vod/cam/a b.mp4");
        assert_eq!(
            t.object_url(&k),
            "http://127.0.0.1:9000/rec-bucket/vod/cam/a%20b.mp4"
        );
    }

    #[test]
    fn path_placeholder_is_relative_and_clean() {
        let t = Target::parse("s3://bkt/{path}", "", "eu-west-1").unwrap();
        assert!(!t.path_style);
        assert_eq!(t.key(&vars("./../x/./y.mp4")), "x/y.mp4");
        assert_eq!(
            t.object_url("x/y.mp4"),
            "https://bkt.s3.eu-west-1.amazonaws.com/x/y.mp4"
        );
        assert_eq!(
            path_under(Path::new("rec"), Path::new("rec/cam/a.mp4")),
            "cam/a.mp4"
        );
        assert_eq!(
            path_under(Path::new("/data/rec"), Path::new("/other/a.mp4")),
            "other/a.mp4"
        );
    }

    #[test]
    fn bad_urls_are_named() {
        let bad = |u: &str, e: &str| Target::parse(u, e, "us-east-1").unwrap_err();
        assert!(bad("http://b/x/{filename}", "").contains("s3://"));
        assert!(bad("s3://bucket", "").contains("no key"));
        assert!(bad("s3://B_x/{filename}", "").contains("bucket name"));
        assert!(bad("s3://bkt/{nope}/{filename}", "").contains("{nope}"));
        assert!(bad("s3://bkt/{filename", "").contains("unclosed"));
        assert!(bad("s3://bkt/fixed.mp4", "").contains("{filename}"));
        assert!(bad("s3://bkt/{filename}", "ftp://x").contains("upload-endpoint"));
        assert!(Target::parse("s3://bkt/{filename}", "", "").is_err());
    }
}
