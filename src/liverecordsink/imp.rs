// SPDX-License-Identifier: MIT OR Apache-2.0
//! GObject glue of `liverecordsink`: the element struct, its locks, and the
//! ObjectImpl / ElementImpl / BinImpl implementations. The work is done in
//! `datapath.rs` (buffers), `events.rs` (events), `finaliser.rs` (the close
//! path), `timers.rs` (clock waits); see docs/architecture.md.
//!
//! # Locks
//!
//! Order: `settings`, then `finishing`, then `hls_write`, then `state`
//! (with `cond`); `effects`, and the wake-up of the retention and delivery
//! threads, have locks of their own that are never held while taking
//! another. A thread holding one of them takes only later ones.
//!
//! No lock is held while posting a message, emitting a signal, pushing
//! data or events, or changing the state of a writer: messages are queued
//! on `effects` and posted by `Effects::run`, which holds no lock. Functions
//! documented "Called without locks" must be called that way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::caps::sink_caps;
use super::messages::Effects;
use super::props::{param_specs, Config, Settings};
use super::state::State;
use super::stream::{PerStream, Stream};
use super::Formats;
use crate::{index, lockfile};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "liverecordsink",
        gst::DebugColorFlags::empty(),
        Some("Live stream recorder"),
    )
});

pub struct LiveRecordSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Streams wait for each other on `cond`, paired with `state`.
    cond: Condvar,
    /// Threads waiting on `cond` (counted under `state`): the per-buffer
    /// path only wakes anyone when someone waits.
    pub(super) waiters: AtomicUsize,
    /// Serialises playlist writes, so that the newest render lands last.
    pub(super) hls_write: Mutex<()>,
    /// Serialises the ending of playlists, so that they end in recording
    /// order. Never held while posting.
    pub(super) finishing: Mutex<()>,
    /// Messages and the final EOS, in order, run with no lock held.
    pub(super) effects: Effects,
    /// Internal source pad feeding a fakesink, which takes EOS once every file
    /// is finalised so that the bin posts EOS only then.
    pub(super) eos_pad: OnceLock<gst::Pad>,
}

#[glib::object_subclass]
impl ObjectSubclass for LiveRecordSink {
    const NAME: &'static str = "GstLiveRecordSink";
    type Type = super::LiveRecordSink;
    type ParentType = gst::Bin;

    fn new() -> Self {
        LiveRecordSink {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            cond: Condvar::new(),
            waiters: AtomicUsize::new(0),
            hls_write: Mutex::new(()),
            finishing: Mutex::new(()),
            effects: Effects::default(),
            eos_pad: OnceLock::new(),
        }
    }
}

/// Locks a mutex; a poisoned lock (a panic elsewhere) is taken as it is.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveRecordSink {
    pub(super) fn lock_state(&self) -> MutexGuard<'_, Option<State>> {
        lock(&self.state)
    }

    pub(super) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Wakes the threads waiting on `cond`, if any.
    pub(super) fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.cond.notify_all();
        }
    }

    /// Waits on `cond` (the guard is the `state` lock) for at most `timeout`.
    pub(super) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Option<State>>,
        timeout: Duration,
    ) -> MutexGuard<'a, Option<State>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let (g, _) = self
            .cond
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        g
    }

    /// Queues an element message; it is posted in order by `Effects::run`.
    pub(super) fn queue_post(&self, s: gst::Structure) {
        let obj = self.obj().clone();
        self.effects.queue(Box::new(move || {
            let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
        }));
    }

    /// Posts an element message after those queued before it. Called
    /// without locks.
    pub(super) fn post(&self, s: gst::Structure) {
        self.queue_post(s);
        self.effects.run();
    }

    /// READY→PAUSED: validates the settings and creates the state.
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let cfg = Config::try_from(&self.settings())?;
        let what = format!(
            "stream '{}' under {}",
            cfg.recorder.stream_id,
            cfg.template.fixed_root().display()
        );
        if let Some(d) = &cfg.delivery {
            crate::outbox::Outbox::open(&d.outbox_dir).map_err(|m| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("Cannot use the outbox {}", m)
                )
            })?;
        }
        let lock = lockfile::acquire(&cfg.lock_path, &what).map_err(|e| match e {
            lockfile::LockError::Held(m) => gst::error_msg!(gst::ResourceError::Busy, ("{}", m)),
            lockfile::LockError::Io(m) => gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", m)),
        })?;
        let mut resume = match &cfg.index_path {
            Some(p) => index::scan(p, &cfg.recorder.stream_id).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["Cannot read the index {}: {}", p.display(), e]
                )
            })?,
            None => index::Resume::default(),
        };
        // Recovered files are indexed here; numbering continues after them.
        self.recover(&cfg, &mut resume).map_err(|m| {
            gst::error_msg!(
                gst::ResourceError::Write,
                [
                    "Cannot recover the recordings left by an earlier run: {}",
                    m
                ]
            )
        })?;
        if resume.skipped_lines > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "The index {} has {} malformed line(s) (a record cut short by a crash?): skipped",
                cfg.index_path
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display(),
                resume.skipped_lines
            );
        }
        let obj = self.obj();
        let linked = PerStream::new(
            obj.static_pad("video").is_some(),
            obj.static_pad("audio").is_some(),
        );
        gst::info!(
            CAT,
            imp = self,
            "Starting: stream {} session {} formats {:?}",
            cfg.recorder.stream_id,
            resume.next_session,
            cfg.formats
        );
        let mut state = State::new(cfg, linked, &resume)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["{}", e]))?;
        state.lock = Some(lock);
        state.retention = self.start_retention(state.cfg.clone());
        // Jobs left by recovery or an earlier run go first.
        state.delivery = self
            .start_delivery(state.cfg.clone())
            .map_err(|m| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", m)))?;
        if let Some(pad) = self.eos_pad.get() {
            let _ = pad.set_active(true);
            let _ = pad.store_sticky_event(
                &gst::event::StreamStart::builder(&format!("{}/eos", obj.name())).build(),
            );
            let _ = pad.store_sticky_event(&super::writer::file_segment());
        }
        *self.lock_state() = Some(state);
        Ok(())
    }
}

impl ObjectImpl for LiveRecordSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(param_specs);
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![glib::subclass::Signal::builder("split-now")
                .action()
                .class_handler(|args| {
                    if let Some(Ok(obj)) = args.first().map(|a| a.get::<super::LiveRecordSink>()) {
                        obj.imp().split_now();
                    }
                    None
                })
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if let Err(e) = lock(&self.settings).set(pspec.name(), value) {
            gst::warning!(CAT, imp = self, "{e}");
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "recording" => self
                .lock_state()
                .as_ref()
                .is_some_and(State::recording)
                .to_value(),
            "stats" => {
                let stats = self.lock_state().as_ref().map(|s| s.stats.clone());
                stats.unwrap_or_default().structure().to_value()
            }
            name => lock(&self.settings)
                .get(name)
                .unwrap_or_else(|| glib::Value::from_type(pspec.value_type())),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_element_flags(gst::ElementFlags::SINK);
        // fakesink is in GStreamer core; if it cannot be made, EOS is never
        // posted, which the tests would show.
        if let Ok(sink) = gst::ElementFactory::make("fakesink")
            .name("eos-sink")
            .property("async", false)
            .property("sync", false)
            .build()
        {
            let pad = gst::Pad::builder(gst::PadDirection::Src)
                .name("eos")
                .build();
            if obj.add(&sink).is_ok() {
                if let Some(sinkpad) = sink.static_pad("sink") {
                    if pad.link(&sinkpad).is_ok() {
                        let _ = self.eos_pad.set(pad);
                    }
                }
            }
        }
    }
}

impl GstObjectImpl for LiveRecordSink {}

impl ElementImpl for LiveRecordSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Live Record Sink",
                "Sink/File",
                "Records live H.264/H.265 + AAC streams to rotating MP4 files with crash safety, bus messages and a JSON Lines index",
                "liverecord developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let all = Formats::MP4 | Formats::HLS;
            Stream::ALL
                .into_iter()
                .filter_map(|s| {
                    gst::PadTemplate::new(
                        s.name(),
                        gst::PadDirection::Sink,
                        gst::PadPresence::Request,
                        &sink_caps(s, all),
                    )
                    .ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let kind = templ.name_template().to_string();
        if name.is_some_and(|n| n != kind) {
            gst::warning!(CAT, imp = self, "Pad name must be '{kind}', not '{name:?}'");
            return None;
        }
        let obj = self.obj();
        if obj.static_pad(&kind).is_some() {
            gst::warning!(CAT, imp = self, "There is already a {kind} pad");
            return None;
        }
        if obj.current_state() > gst::State::Ready {
            gst::warning!(
                CAT,
                imp = self,
                "Pads must be requested before the element starts"
            );
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name(kind.as_str())
            .chain_function(|pad, parent, buffer| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                LiveRecordSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .build();
        obj.add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let _ = pad.set_active(false);
        // Releasing a pad ends its stream; the rest records on.
        self.input_released(Stream::from_pad(pad));
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::ReadyToPaused => {
                if let Err(e) = self.start() {
                    self.post_error_message(e);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => self.stop(),
            gst::StateChange::PlayingToPaused => self.set_clock(None),
            _ => {}
        }
        let ret = self.parent_change_state(transition);
        match transition {
            gst::StateChange::PausedToPlaying => self.set_clock(self.obj().clock()),
            gst::StateChange::PausedToReady => {
                if let Some(pad) = self.eos_pad.get() {
                    let _ = pad.set_active(false);
                }
                // Dropped without the lock: retention's thread is joined.
                let state = self.lock_state().take();
                drop(state);
            }
            gst::StateChange::ReadyToPaused if ret.is_err() => {
                let state = self.lock_state().take();
                drop(state);
            }
            _ => {}
        }
        ret
    }
}

impl BinImpl for LiveRecordSink {
    fn handle_message(&self, msg: gst::Message) {
        match msg.view() {
            // A writer bin posts EOS when its file sink has written
            // everything: the file can be finalised. The bin's own EOS comes
            // from the internal EOS sink, once every file is done.
            gst::MessageView::Eos(_) => {
                if let Some((ci, key)) = msg.src().and_then(|src| self.writer_of(src)) {
                    self.writer_drained(ci, key);
                    return;
                }
            }
            // A writer failed (disk full, muxer error): its file will never
            // drain, so it is finalised as written, with reason=error.
            gst::MessageView::Error(e) => {
                let what = match e.debug() {
                    Some(d) => format!("{} ({d})", e.error()),
                    None => e.error().to_string(),
                };
                // A writer's error is reported by the element, naming the
                // file; the writer's own message is not forwarded.
                if msg.src().is_some_and(|src| self.writer_failed(src, &what)) {
                    return;
                }
                // A late error from a writer already being finalised: its
                // file's fate is decided there (kept if readable).
                if msg.src().is_some_and(|src| self.is_writer_element(src)) {
                    gst::warning!(CAT, imp = self, "Late writer error: {what}");
                    return;
                }
            }
            _ => {}
        }
        self.parent_handle_message(msg)
    }
}
