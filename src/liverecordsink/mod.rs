// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `liverecordsink` element: wrapper type, registration and the public
//! enums and flags of its properties.

use gst::glib;
use gst::prelude::*;

mod appwriter;
mod caps;
mod channel;
mod datapath;
mod deliverer;
mod delivery_props;
mod events;
mod failures;
mod finaliser;
mod hlsrun;
mod imp;
mod jobs;
mod measure;
mod messages;
mod mp4writer;
mod pending;
mod props;
mod recovery;
mod retainer;
mod starting;
mod state;
mod stream;
mod timers;
mod tswriter;
mod uploader;
mod writer;

/// Container formats, one recording channel per flag (`formats=mp4+hls`).
#[glib::flags(name = "GstLiveRecordFormats")]
pub enum Formats {
    #[flags_value(name = "MP4 files (.mp4, .m4a when audio-only)", nick = "mp4")]
    MP4 = 0b0001,
    #[flags_value(name = "FLV files (.flv)", nick = "flv")]
    FLV = 0b0010,
    #[flags_value(name = "AAC ADTS files (.aac), audio only", nick = "aac")]
    AAC = 0b0100,
    #[flags_value(name = "HLS playlist (.m3u8) with MPEG-TS segments", nick = "hls")]
    HLS = 0b1000,
}

/// Which events `callback-url` is called back for.
#[glib::flags(name = "GstLiveRecordCallbackEvents")]
pub enum CallbackEvents {
    #[flags_value(name = "A file or playlist was closed", nick = "file-closed")]
    FILE_CLOSED = 0b0001,
    #[flags_value(
        name = "An HLS segment was added to its playlist",
        nick = "segment-added"
    )]
    SEGMENT_ADDED = 0b0010,
    #[flags_value(name = "A recording was uploaded", nick = "upload-done")]
    UPLOAD_DONE = 0b0100,
    #[flags_value(name = "Retention deleted a recording", nick = "file-deleted")]
    FILE_DELETED = 0b1000,
}

/// How recording callbacks are signed.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLiveRecordCallbackSigning")]
pub enum CallbackSigning {
    #[enum_value(
        name = "Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature headers",
        nick = "standard-webhooks"
    )]
    StandardWebhooks = 0,
    #[enum_value(
        name = "Tencent CSS: t and sign = md5(key + t) in the body, event_type 100",
        nick = "tencent"
    )]
    Tencent = 1,
}

/// Which streams are recorded.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLiveRecordType")]
pub enum RecordType {
    #[enum_value(name = "Audio and video", nick = "av")]
    Av = 0,
    #[enum_value(name = "Audio only", nick = "audio")]
    Audio = 1,
    #[enum_value(name = "Video only", nick = "video")]
    Video = 2,
}

/// What EOS on the pads means.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLiveRecordEosAction")]
pub enum EosAction {
    #[enum_value(
        name = "EOS ends the recording: files are finalised and EOS is forwarded",
        nick = "finish"
    )]
    Finish = 0,
    #[enum_value(
        name = "EOS is an interruption (a publisher left): files close, EOS is not forwarded, recording resumes at the next STREAM_START",
        nick = "interrupt"
    )]
    Interrupt = 1,
}

glib::wrapper! {
    pub struct LiveRecordSink(ObjectSubclass<imp::LiveRecordSink>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "liverecordsink",
        gst::Rank::NONE,
        LiveRecordSink::static_type(),
    )
}
