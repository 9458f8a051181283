// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecordsink-*` messages as JSON, for applications that print or
//! forward them (the `liverecord` app, the demo).

use gst::glib;
use gst::prelude::*;

fn value_to_json(v: &glib::SendValue) -> serde_json::Value {
    if let Ok(s) = v.get::<&str>() {
        return s.into();
    }
    if let Ok(t) = v.get::<gst::ClockTime>() {
        return t.nseconds().into();
    }
    if let Ok(n) = v.get::<u64>() {
        return n.into();
    }
    if let Ok(n) = v.get::<u32>() {
        return n.into();
    }
    if let Ok(n) = v.get::<i64>() {
        return n.into();
    }
    if let Ok(b) = v.get::<bool>() {
        return b.into();
    }
    v.serialize()
        .map(|s| serde_json::Value::from(s.as_str()))
        .unwrap_or(serde_json::Value::Null)
}

/// One JSON object per message: `{"message": NAME, field: value, ...}`;
/// ClockTime fields in nanoseconds.
pub fn message_json(s: &gst::StructureRef) -> String {
    let mut map = serde_json::Map::new();
    map.insert("message".into(), s.name().as_str().into());
    for (k, v) in s.iter() {
        map.insert(k.to_string(), value_to_json(v));
    }
    serde_json::Value::Object(map).to_string()
}
