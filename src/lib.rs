// SPDX-License-Identifier: MIT OR Apache-2.0
//! liverecord: a GStreamer plugin with one element, `liverecordsink`, that
//! records live streams to rotating files the way a cloud recording service does.

use gst::glib;

mod annexb;
mod breaks;
mod fmp4;
mod format;
mod fsio;
mod hls;
pub mod index;
mod journal;
pub mod json;
mod liverecordsink;
mod lockfile;
mod mp4frag;
mod naming;
pub mod outbox;
#[cfg(test)]
mod policy_fuzz;
mod readable;
mod record;
mod retention;
mod rotation;
pub mod s3client;
pub mod s3target;
mod salvage;
mod session;
pub mod signing;
pub mod template;
mod tsform;
mod tsmux;

pub use liverecordsink::{CallbackEvents, CallbackSigning, EosAction, Formats, RecordType};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    liverecordsink::register(plugin)
}

gst::plugin_define!(
    liverecord,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
