// SPDX-License-Identifier: MIT OR Apache-2.0
//! The property table of `liverecordsink`: the settings as set by the user
//! (`Settings`, whose `Default` is the only source of defaults), their
//! ParamSpecs with units, and `Config`, the settings validated when the
//! element goes to PAUSED.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use super::delivery_props::{delivery_of, Delivery, DeliverySettings};
use super::writer::required_elements;
use super::{EosAction, Formats, RecordType};
use crate::format::Format;
use crate::record::{check_playback_template, Recorder, PLAYBACK_PLACEHOLDERS};
use crate::template::{sanitize_component, LocationTemplate};

pub const MAX_RECORD_INTERVAL: u32 = 7200;
pub const MAX_HLS_RESUME_TIMEOUT: u32 = 1800;

/// The properties as set; read by the data path only through [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub location: String,
    pub stream_id: String,
    pub formats: Formats,
    pub record_type: RecordType,
    /// Seconds.
    pub record_interval: u32,
    /// Milliseconds, 0 = classic MP4.
    pub mp4_fragment_duration: u32,
    pub playback_url_template: String,
    pub index_location: String,
    /// Milliseconds.
    pub interruption_gap: u32,
    /// Milliseconds, 0 = off.
    pub idle_timeout: u32,
    /// Milliseconds.
    pub min_file_duration: u32,
    /// Seconds.
    pub hls_resume_timeout: u32,
    /// Seconds.
    pub hls_segment_duration: u32,
    pub eos_action: EosAction,
    /// Seconds, 0 = keep forever.
    pub storage_period: u32,
    /// Callbacks, uploads and the outbox.
    pub delivery: DeliverySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: "recordings/{stream_id}/{stream_id}_{start:%Y%m%dT%H%M%SZ}_{index}".into(),
            stream_id: "live".into(),
            formats: Formats::MP4,
            record_type: RecordType::Av,
            record_interval: 7200,
            mp4_fragment_duration: 1000,
            playback_url_template: String::new(),
            index_location: "recordings/index.jsonl".into(),
            interruption_gap: 2000,
            idle_timeout: 5000,
            min_file_duration: 0,
            storage_period: 0,
            delivery: DeliverySettings::default(),
            hls_resume_timeout: 0,
            hls_segment_duration: 6,
            eos_action: EosAction::Finish,
        }
    }
}

/// The ParamSpecs of the element: the settings, then the read-only
/// `recording` and `stats`.
pub fn param_specs() -> Vec<glib::ParamSpec> {
    let d = Settings::default();
    let mut specs = vec![
        glib::ParamSpecString::builder("location")
            .nick("Location template")
            .blurb("Path template without extension. Placeholders: {stream_id} {session} {index} {format} {start:STRFTIME} {end:STRFTIME} (UTC)")
            .default_value(Some(d.location.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("stream-id")
            .nick("Stream ID")
            .blurb("The live stream's code, used in names, messages and the index; made safe for paths")
            .default_value(Some(d.stream_id.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecFlags::builder::<Formats>("formats")
            .nick("Formats")
            .blurb("Recording channels, one per flag, e.g. mp4+hls")
            .default_value(d.formats)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("record-type", d.record_type)
            .nick("Record type")
            .blurb("Which streams are recorded (audio gives .m4a from mp4)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("record-interval")
            .nick("Record interval (seconds)")
            .blurb("Maximum duration of an MP4/FLV/AAC file in seconds, 1 to 7200 (others are an error at PAUSED); the cut is made at the first keyframe at or after it")
            .default_value(d.record_interval)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("mp4-fragment-duration")
            .nick("MP4 fragment duration (ms)")
            .blurb("Crash-safe MP4: fragment duration in milliseconds (moov first, then fragments, finalised into a normal MP4 on close); 0 = classic MP4, not crash-safe")
            .maximum(u32::MAX)
            .default_value(d.mp4_fragment_duration)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("playback-url-template")
            .nick("Playback URL template")
            .blurb("Fills playback-url in messages and the index, e.g. https://vod.example.com/{path}; placeholders {path} {filename} {stream_id} {format} {file_id}; empty = none")
            .default_value(Some(d.playback_url_template.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("index-location")
            .nick("Index location")
            .blurb("JSON Lines index of closed files, appended and fsynced before each file-closed message; empty = off")
            .default_value(Some(d.index_location.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("storage-period")
            .nick("Storage period (s)")
            .blurb("Recordings this stream finished and indexed are deleted once their end time is older than this many seconds (checked at start and then periodically); each deletion is appended to the index (event: deleted) and posted as liverecordsink-file-deleted. Needs index-location. 0 = keep forever")
            .default_value(d.storage_period)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("interruption-gap")
            .nick("Interruption gap (ms)")
            .blurb("A running-time jump, forward or backward, larger than this many milliseconds on any pad is an interruption: files close and a new session starts. At least 1 (0 is an error at PAUSED)")
            .default_value(d.interruption_gap)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("idle-timeout")
            .nick("Idle timeout (ms)")
            .blurb("In PLAYING, no data on any pad for this many milliseconds of pipeline clock is an interruption; files close at once. 0 = off")
            .default_value(d.idle_timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("min-file-duration")
            .nick("Minimum file duration (ms)")
            .blurb("A closed file shorter than this many milliseconds is deleted and a liverecordsink-file-discarded message is posted. 0 = keep all")
            .default_value(d.min_file_duration)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("hls-resume-timeout")
            .nick("HLS resume timeout (seconds)")
            .blurb("HLS breakpoint resumption: after an interruption shorter than this many seconds the same playlist continues with #EXT-X-DISCONTINUITY; 0 = every interruption starts a new playlist")
            .maximum(MAX_HLS_RESUME_TIMEOUT)
            .default_value(d.hls_resume_timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("hls-segment-duration")
            .nick("HLS segment duration (seconds)")
            .blurb("Target HLS segment duration in seconds; segments are cut at the first keyframe at or after it")
            .default_value(d.hls_segment_duration)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("eos-action", d.eos_action)
            .nick("EOS action")
            .blurb("finish: EOS on the pads ends the recording and is forwarded; interrupt: EOS is an interruption like an idle timeout (sources that end with EOS when a publisher leaves, e.g. rtmp2src), not forwarded")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("recording")
            .nick("Recording")
            .blurb("True while a file is open")
            .read_only()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("files-closed, bytes-written, video-frames, audio-frames (written), frames-dropped, interruptions")
            .read_only()
            .build(),
    ];
    specs.extend(super::delivery_props::param_specs());
    specs
}

/// A string property's value (None = empty).
pub(super) fn string(value: &glib::Value) -> String {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Settings {
    /// Sets the property `name`; GObject has checked the value's type and range.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> Result<(), String> {
        let d = Settings::default();
        match name {
            "location" => self.location = string(value),
            "stream-id" => self.stream_id = string(value),
            "formats" => self.formats = value.get().unwrap_or(d.formats),
            "record-type" => self.record_type = value.get().unwrap_or(d.record_type),
            "record-interval" => self.record_interval = value.get().unwrap_or(d.record_interval),
            "mp4-fragment-duration" => {
                self.mp4_fragment_duration = value.get().unwrap_or(d.mp4_fragment_duration)
            }
            "playback-url-template" => self.playback_url_template = string(value),
            "index-location" => self.index_location = string(value),
            "interruption-gap" => self.interruption_gap = value.get().unwrap_or(d.interruption_gap),
            "storage-period" => self.storage_period = value.get().unwrap_or(d.storage_period),
            "idle-timeout" => self.idle_timeout = value.get().unwrap_or(d.idle_timeout),
            "min-file-duration" => {
                self.min_file_duration = value.get().unwrap_or(d.min_file_duration)
            }
            "hls-resume-timeout" => {
                self.hls_resume_timeout = value.get().unwrap_or(d.hls_resume_timeout)
            }
            "hls-segment-duration" => {
                self.hls_segment_duration = value.get().unwrap_or(d.hls_segment_duration)
            }
            "eos-action" => self.eos_action = value.get().unwrap_or(d.eos_action),
            other if self.delivery.set(other, value) => (),
            other => return Err(format!("unknown property {other}")),
        }
        Ok(())
    }

    /// The value of the property `name`, if it is a setting.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "location" => self.location.to_value(),
            "stream-id" => self.stream_id.to_value(),
            "formats" => self.formats.to_value(),
            "record-type" => self.record_type.to_value(),
            "record-interval" => self.record_interval.to_value(),
            "mp4-fragment-duration" => self.mp4_fragment_duration.to_value(),
            "playback-url-template" => self.playback_url_template.to_value(),
            "index-location" => self.index_location.to_value(),
            "interruption-gap" => self.interruption_gap.to_value(),
            "storage-period" => self.storage_period.to_value(),
            "idle-timeout" => self.idle_timeout.to_value(),
            "min-file-duration" => self.min_file_duration.to_value(),
            "hls-resume-timeout" => self.hls_resume_timeout.to_value(),
            "hls-segment-duration" => self.hls_segment_duration.to_value(),
            "eos-action" => self.eos_action.to_value(),
            other => return self.delivery.get(other),
        })
    }
}

/// The settings validated at start, in the units the data path uses (ns);
/// shared by the data path and the finaliser.
#[derive(Debug)]
pub struct Config {
    pub template: LocationTemplate,
    /// The stream's ids and playback URL template, for records.
    pub recorder: Recorder,
    pub formats: Vec<Format>,
    pub record_type: RecordType,
    pub interval_ns: u64,
    pub mp4_fragment_ms: u32,
    pub index_path: Option<PathBuf>,
    /// One writer per stream and location (`journal::paths`).
    pub lock_path: PathBuf,
    /// The journal of open recordings, for crash recovery.
    pub journal_path: PathBuf,
    /// `storage-period`, if set.
    pub storage_period: Option<std::time::Duration>,
    /// Callbacks and uploads, if either is set.
    pub delivery: Option<Delivery>,
    pub gap_ns: u64,
    pub idle_ns: u64,
    pub min_file_ns: u64,
    pub hls_resume_ns: u64,
    pub hls_segment_ns: u64,
    pub eos_action: EosAction,
}

fn settings_error(msg: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ["{}", msg])
}

fn flag_of(f: Format) -> Formats {
    match f {
        Format::Mp4 => Formats::MP4,
        Format::Flv => Formats::FLV,
        Format::Aac => Formats::AAC,
        Format::Hls => Formats::HLS,
    }
}

impl TryFrom<&Settings> for Config {
    type Error = gst::ErrorMessage;

    /// Validates the settings: a bad value is a clear error, a missing
    /// GStreamer element is `CoreError::MissingPlugin`.
    fn try_from(s: &Settings) -> Result<Config, gst::ErrorMessage> {
        let template = LocationTemplate::parse(&s.location)
            .map_err(|e| settings_error(format!("Invalid location '{}': {}", s.location, e)))?;
        if s.stream_id.is_empty() {
            return Err(settings_error("stream-id must not be empty".into()));
        }
        if s.interruption_gap == 0 {
            return Err(settings_error(
                "interruption-gap must be at least 1 ms (0 would make every timestamp step an interruption)".into(),
            ));
        }
        if s.hls_segment_duration == 0 || s.hls_segment_duration > 3600 {
            return Err(settings_error(format!(
                "hls-segment-duration must be 1 to 3600 seconds, not {}",
                s.hls_segment_duration
            )));
        }
        if s.record_interval == 0 || s.record_interval > MAX_RECORD_INTERVAL {
            return Err(settings_error(format!(
                "record-interval must be 1 to {} seconds, not {}",
                MAX_RECORD_INTERVAL, s.record_interval
            )));
        }
        let formats: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| s.formats.contains(flag_of(*f)))
            .collect();
        if formats.is_empty() {
            return Err(settings_error(
                "formats is empty: choose at least one of mp4, flv, aac, hls".into(),
            ));
        }
        for f in &formats {
            if let Some(e) = required_elements(*f)
                .iter()
                .find(|e| gst::ElementFactory::find(e).is_none())
            {
                return Err(gst::error_msg!(
                    gst::CoreError::MissingPlugin,
                    [
                        "The GStreamer element '{}' needed for {} recording is missing: install gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad and gstreamer1.0-plugins-ugly",
                        e,
                        f.name()
                    ]
                ));
            }
        }
        let playback_url_template = Some(s.playback_url_template.clone()).filter(|t| !t.is_empty());
        if let Some(t) = &playback_url_template {
            check_playback_template(t).map_err(|p| {
                let known: Vec<String> = PLAYBACK_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect();
                settings_error(format!(
                    "Unknown placeholder {{{p}}} in playback-url-template; known: {}",
                    known.join(" ")
                ))
            })?;
        }
        let (lock_path, journal_path) = crate::journal::paths(&template, &s.stream_id);
        if s.storage_period > 0 && s.index_location.is_empty() {
            return Err(settings_error(
                "storage-period needs index-location: retention deletes only what the index lists"
                    .into(),
            ));
        }
        let safe_stream_id = sanitize_component(&s.stream_id);
        let delivery = delivery_of(
            &s.delivery,
            &s.index_location,
            template.fixed_root(),
            &s.stream_id,
        )
        .map_err(settings_error)?;
        if formats.contains(&Format::Hls)
            && delivery
                .as_ref()
                .and_then(|d| d.upload.as_ref())
                .is_some_and(|u| u.keys.target.key_template.contains("{file_id}"))
        {
            return Err(settings_error(
                "upload-url with {file_id} cannot keep an HLS playlist next to its segments (each segment has its own name): use {filename} or {path} for hls".into(),
            ));
        }
        let object_urls = delivery
            .as_ref()
            .and_then(|d| d.upload.as_ref())
            .map(|u| u.keys.clone());
        if playback_url_template
            .as_ref()
            .is_some_and(|t| t.contains("{object_url}"))
            && object_urls.is_none()
        {
            return Err(settings_error(
                "playback-url-template uses {object_url}, which needs upload-url".into(),
            ));
        }
        Ok(Config {
            delivery,
            storage_period: (s.storage_period > 0)
                .then(|| std::time::Duration::from_secs(u64::from(s.storage_period))),
            lock_path,
            journal_path,
            template,
            recorder: Recorder {
                safe_stream_id,
                stream_id: s.stream_id.clone(),
                playback_url_template,
                object_urls,
            },
            formats,
            record_type: s.record_type,
            interval_ns: u64::from(s.record_interval) * 1_000_000_000,
            mp4_fragment_ms: s.mp4_fragment_duration,
            index_path: Some(PathBuf::from(&s.index_location))
                .filter(|p| !p.as_os_str().is_empty()),
            gap_ns: u64::from(s.interruption_gap) * 1_000_000,
            idle_ns: u64::from(s.idle_timeout) * 1_000_000,
            min_file_ns: u64::from(s.min_file_duration) * 1_000_000,
            hls_resume_ns: u64::from(s.hls_resume_timeout) * 1_000_000_000,
            hls_segment_ns: u64::from(s.hls_segment_duration) * 1_000_000_000,
            eos_action: s.eos_action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    #[test]
    fn param_spec_defaults_are_the_settings_defaults() {
        init();
        let d = Settings::default();
        for spec in param_specs() {
            if !spec.flags().contains(glib::ParamFlags::WRITABLE) {
                continue;
            }
            let default = spec.default_value();
            let setting = d.get(spec.name()).expect("every spec is a setting");
            assert_eq!(
                default.serialize().ok(),
                setting.serialize().ok(),
                "{}",
                spec.name()
            );
        }
    }

    #[test]
    fn set_and_get_round_trip() {
        init();
        let mut s = Settings::default();
        s.set("record-interval", &600u32.to_value()).unwrap();
        s.set("stream-id", &"cam".to_value()).unwrap();
        assert_eq!(s.get("record-interval").unwrap().get::<u32>().unwrap(), 600);
        assert_eq!(s.stream_id, "cam");
        assert!(s.set("nope", &1u32.to_value()).is_err());
    }

    #[test]
    fn validation_errors_are_clear() {
        init();
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            Config::try_from(&s).unwrap_err().to_string()
        };
        assert!(bad(|s| s.stream_id.clear()).contains("stream-id"));
        assert!(bad(|s| s.record_interval = 0).contains("record-interval must be 1 to 7200"));
        assert!(bad(|s| s.location = "{nope}".into()).contains("Invalid location"));
        assert!(bad(|s| s.formats = Formats::empty()).contains("formats is empty"));
        assert!(bad(|s| s.playback_url_template = "x/{bad}".into()).contains("{bad}"));
        let cfg = Config::try_from(&Settings::default()).unwrap();
        assert_eq!(cfg.interval_ns, 7_200_000_000_000);
        assert_eq!(cfg.recorder.safe_stream_id, "live");
    }
}
