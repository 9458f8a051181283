// SPDX-License-Identifier: MIT OR Apache-2.0
//! Unit tests of `template.rs`.

use super::*;
use chrono::TimeZone;
use std::path::{Component, Path};

const DEFAULT_LOCATION: &str = "recordings/{stream_id}/{stream_id}_{start:%Y%m%dT%H%M%SZ}_{index}";

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn vars(stream_id: &str) -> TemplateVars<'_> {
    TemplateVars {
        stream_id,
        session: 3,
        index: 7,
        format: "mp4",
        start: t(2026, 11, 24, 1, 2, 3),
        end: None,
    }
}

fn render(tpl: &str, v: &TemplateVars<'_>) -> PathBuf {
    LocationTemplate::parse(tpl).unwrap().render(v)
}

#[test]
fn fixed_root_is_the_directory_before_the_first_placeholder() {
    let root = |t: &str| LocationTemplate::parse(t).unwrap().fixed_root();
    assert_eq!(root(DEFAULT_LOCATION), Path::new("recordings"));
    assert_eq!(
        root("/srv/rec/{stream_id}/x_{index}"),
        Path::new("/srv/rec")
    );
    assert_eq!(root("/srv/rec/cam_{index}"), Path::new("/srv/rec"));
    assert_eq!(root("{stream_id}_{index}"), Path::new("."));
    assert_eq!(root("plain"), Path::new("."));
    assert_eq!(root("/{index}"), Path::new("/"));
}

#[test]
fn a_directory_is_not_a_template() {
    let e = LocationTemplate::parse("recordings/").unwrap_err();
    assert_eq!(e, TemplateError::NoFileName);
    assert!(e.to_string().contains("names a directory"), "{e}");
}

#[test]
fn default_template_example() {
    assert_eq!(
        render(DEFAULT_LOCATION, &vars("cam1")),
        PathBuf::from("recordings/cam1/cam1_20261124T010203Z_00007")
    );
}

#[test]
fn all_placeholders() {
    let mut v = vars("cam1");
    v.end = Some(t(2026, 11, 24, 3, 4, 5));
    assert_eq!(
        render("{stream_id}/{session}/{format}/{index}_{start}_{end}", &v),
        PathBuf::from("cam1/3/mp4/00007_20261124T010203Z_20261124T030405Z")
    );
}

#[test]
fn index_padding() {
    let mut v = vars("a");
    for (index, want) in [
        (0, "00000"),
        (42, "00042"),
        (99_999, "99999"),
        (123_456, "123456"),
        (u64::MAX, "18446744073709551615"),
    ] {
        v.index = index;
        assert_eq!(render("{index}", &v), PathBuf::from(want));
    }
}

#[test]
fn session_is_not_padded() {
    let mut v = vars("a");
    v.session = 12;
    assert_eq!(render("s{session}", &v), PathBuf::from("s12"));
    v.session = u64::MAX;
    assert_eq!(render("{session}", &v), PathBuf::from(u64::MAX.to_string()));
}

#[test]
fn default_time_formats() {
    let mut v = vars("a");
    v.end = Some(t(2027, 1, 2, 3, 4, 5));
    assert_eq!(render("{start}", &v), PathBuf::from("20261124T010203Z"));
    assert_eq!(render("{start:}", &v), PathBuf::from("20261124T010203Z"));
    assert_eq!(render("{end}", &v), PathBuf::from("20270102T030405Z"));
    assert_eq!(render("{end:}", &v), PathBuf::from("20270102T030405Z"));
}

#[test]
fn custom_time_formats() {
    let mut v = vars("a");
    v.start = Utc.with_ymd_and_hms(2026, 11, 24, 1, 2, 3).unwrap()
        + chrono::Duration::microseconds(123_456);
    assert_eq!(render("{start:%Y-%m-%d}", &v), PathBuf::from("2026-11-24"));
    assert_eq!(
        render("{start:%H%M%S%.3f}", &v),
        PathBuf::from("010203.123")
    );
    assert_eq!(render("{start:%s}", &v), PathBuf::from("1795482123"));
    assert_eq!(render("{start:%%}", &v), PathBuf::from("_"));
    assert_eq!(
        render("{start:%Y}/{start:%m}/{start:%d}/x", &v),
        PathBuf::from("2026/11/24/x")
    );
}

#[test]
fn end_renders_start_while_open() {
    let tpl = LocationTemplate::parse("{start:%H%M%S}-{end:%H%M%S}").unwrap();
    let mut v = vars("a");
    assert_eq!(tpl.render(&v), PathBuf::from("010203-010203"));
    v.end = Some(t(2026, 11, 24, 2, 0, 0));
    assert_eq!(tpl.render(&v), PathBuf::from("010203-020000"));
}

#[test]
fn uses_end_and_friends() {
    let tpl = LocationTemplate::parse(DEFAULT_LOCATION).unwrap();
    assert!(!tpl.uses_end());
    assert!(tpl.uses_index());
    assert!(LocationTemplate::parse("x_{end}").unwrap().uses_end());
    assert!(LocationTemplate::parse("x_{end:%Y}").unwrap().uses_end());
    assert!(!LocationTemplate::parse("x_{{end}}").unwrap().uses_end());
    assert!(!LocationTemplate::parse("{format}").unwrap().uses_index());
}

#[test]
fn escaped_braces() {
    let v = vars("cam1");
    assert_eq!(render("a{{b}}c", &v), PathBuf::from("a{b}c"));
    assert_eq!(render("{{stream_id}}", &v), PathBuf::from("{stream_id}"));
    assert_eq!(render("{{{stream_id}}}", &v), PathBuf::from("{cam1}"));
    assert_eq!(render("x}y", &v), PathBuf::from("x}y"));
    assert_eq!(render("}", &v), PathBuf::from("}"));
}

#[test]
fn literal_only_and_absolute() {
    let v = vars("cam1");
    assert_eq!(render("static", &v), PathBuf::from("static"));
    assert_eq!(
        render("/var/rec/{stream_id}/{index}", &v),
        PathBuf::from("/var/rec/cam1/00007")
    );
    assert_eq!(render("../up/{stream_id}", &v), PathBuf::from("../up/cam1"));
    assert_eq!(render("直播/{stream_id}", &v), PathBuf::from("直播/cam1"));
}

#[test]
fn empty_is_error() {
    assert_eq!(LocationTemplate::parse(""), Err(TemplateError::Empty));
}

#[test]
fn unclosed_brace() {
    for (tpl, pos) in [
        ("{", 0),
        ("abc{stream_id", 3),
        ("x/{stream_id/{index}", 2),
        ("直{index", 3),
        ("{{{", 2),
        ("ok_{index}_{", 11),
    ] {
        assert_eq!(
            LocationTemplate::parse(tpl),
            Err(TemplateError::Unclosed(pos)),
            "{tpl}"
        );
    }
}

#[test]
fn unknown_placeholders() {
    for (tpl, name) in [
        ("{foo}", "foo"),
        ("{}", ""),
        ("a/{Stream_ID}", "Stream_ID"),
        ("{ stream_id }", " stream_id "),
        ("{index:5}", "index:5"),
        ("{stream_id:x}", "stream_id:x"),
        ("{session:}", "session:"),
        ("{starts:%Y}", "starts:%Y"),
        ("{直播}", "直播"),
    ] {
        assert_eq!(
            LocationTemplate::parse(tpl),
            Err(TemplateError::UnknownPlaceholder(name.to_owned())),
            "{tpl}"
        );
    }
}

#[test]
fn bad_time_formats() {
    for (tpl, fmt) in [
        ("{start:%Q}", "%Q"),
        ("{end:%}", "%"),
        ("{start:%Y%}", "%Y%"),
        ("x_{end:%Y-%!}", "%Y-%!"),
    ] {
        assert_eq!(
            LocationTemplate::parse(tpl),
            Err(TemplateError::BadTimeFormat(fmt.to_owned())),
            "{tpl}"
        );
    }
}

#[test]
fn first_error_wins() {
    assert_eq!(
        LocationTemplate::parse("{foo}/{"),
        Err(TemplateError::UnknownPlaceholder("foo".to_owned()))
    );
}

#[test]
fn error_messages() {
    let msg = TemplateError::UnknownPlaceholder("foo".into()).to_string();
    assert_eq!(
        msg,
        "unknown placeholder {foo} in location template; known: {stream_id} \
         {session} {index} {format} {start:FMT} {end:FMT}"
    );
    assert_eq!(
        TemplateError::Empty.to_string(),
        "location template is empty"
    );
    let msg = TemplateError::Unclosed(7).to_string();
    assert!(msg.contains("unclosed '{' at byte 7"), "{msg}");
    assert!(msg.contains("'{{'"), "{msg}");
    let msg = TemplateError::BadTimeFormat("%Q".into()).to_string();
    assert!(msg.contains("\"%Q\""), "{msg}");
    assert!(msg.contains("strftime"), "{msg}");
    let err: Box<dyn std::error::Error> = Box::new(TemplateError::Empty);
    assert_eq!(err.to_string(), "location template is empty");
}

#[test]
fn parse_is_deterministic_and_keeps_source() {
    let a = LocationTemplate::parse(DEFAULT_LOCATION).unwrap();
    let b: LocationTemplate = DEFAULT_LOCATION.parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.as_str(), DEFAULT_LOCATION);
    assert_eq!(a.to_string(), DEFAULT_LOCATION);
    assert_ne!(a, LocationTemplate::parse("{index}").unwrap());
}

#[test]
fn sanitize_examples() {
    for (input, want) in [
        ("cam1", "cam1"),
        ("a.b-c_D9", "a.b-c_D9"),
        ("../../etc/passwd", "___.._etc_passwd"),
        ("/abs", "_abs"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("..", "__"),
        (".", "_"),
        ("...", "___"),
        (".hidden", "_hidden"),
        ("a..b", "a..b"),
        ("trailing.", "trailing."),
        ("", "_"),
        ("a\0b", "a_b"),
        ("a b\tc\n", "a_b_c_"),
        ("\u{7f}\u{1b}", "__"),
        ("直播", "__"),
        ("café", "caf_"),
        ("C:\\x", "C__x"),
        ("~user", "_user"),
        ("$(rm -rf)", "__rm_-rf_"),
    ] {
        assert_eq!(sanitize_component(input), want, "{input:?}");
    }
}

#[test]
fn sanitize_limits_length() {
    let s = sanitize_component(&"x".repeat(1000));
    assert_eq!(s, "x".repeat(MAX_COMPONENT_LEN));
    let s = sanitize_component(&"直".repeat(1000));
    assert_eq!(s, "_".repeat(MAX_COMPONENT_LEN));
    let s = sanitize_component(&".".repeat(1000));
    assert_eq!(s, "_".repeat(MAX_COMPONENT_LEN));
    let s = sanitize_component(&"x".repeat(MAX_COMPONENT_LEN));
    assert_eq!(s.len(), MAX_COMPONENT_LEN);
    let s = sanitize_component(&"x".repeat(MAX_COMPONENT_LEN - 1));
    assert_eq!(s.len(), MAX_COMPONENT_LEN - 1);
}

#[test]
fn sanitize_is_idempotent_and_safe() {
    let long = "a/".repeat(500);
    for input in [
        "cam1",
        "../../etc/passwd",
        "/abs",
        "..",
        ".",
        "",
        "a\0b",
        "直播",
        ".x",
        long.as_str(),
    ] {
        let once = sanitize_component(input);
        assert_eq!(sanitize_component(&once), once, "{input:?}");
        assert!(!once.is_empty());
        assert!(once.len() <= MAX_COMPONENT_LEN);
        assert!(!once.starts_with('.'));
        assert!(once
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        let mut comps = Path::new(&once).components();
        assert!(matches!(comps.next(), Some(Component::Normal(_))));
        assert!(comps.next().is_none());
    }
}

/// Hostile values never leave the directory the template names, and never
/// add or remove path components.
#[test]
fn hostile_values_stay_inside() {
    let long = "../".repeat(300);
    let tpl =
        LocationTemplate::parse("recordings/{stream_id}/{format}_{stream_id}_{index}").unwrap();
    for id in [
        "../../etc/passwd",
        "/abs",
        "a/b",
        "..",
        ".",
        "",
        "a\0b",
        "直播",
        "\\..\\..\\windows",
        long.as_str(),
    ] {
        let v = TemplateVars {
            stream_id: id,
            format: id,
            ..vars("x")
        };
        let path = tpl.render(&v);
        assert!(path.starts_with("recordings"), "{id:?} -> {path:?}");
        let comps: Vec<_> = path.components().collect();
        assert_eq!(comps.len(), 3, "{id:?} -> {path:?}");
        assert!(
            comps.iter().all(|c| matches!(c, Component::Normal(_))),
            "{id:?} -> {path:?}"
        );
        let dir = comps[1].as_os_str().to_string_lossy();
        assert!(!dir.starts_with('.'), "{id:?} -> {path:?}");
        assert!(!path.to_string_lossy().contains('\0'));
    }
}

#[test]
fn hostile_time_formats_are_sanitized() {
    let v = vars("a");
    // %D is %m/%d/%y and %T is %H:%M:%S.
    assert_eq!(render("r/{start:%D}", &v), PathBuf::from("r/11_24_26"));
    assert_eq!(render("r/{start:%T}", &v), PathBuf::from("r/01_02_03"));
    assert_eq!(render("r/{start:%Y/%m}", &v), PathBuf::from("r/2026_11"));
    assert_eq!(render("r/{start:..}", &v), PathBuf::from("r/__"));
    assert_eq!(render("r/{end:/etc}", &v), PathBuf::from("r/_etc"));
    assert_eq!(render("r/{start:%n}", &v), PathBuf::from("r/_"));
}
