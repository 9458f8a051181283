// SPDX-License-Identifier: MIT OR Apache-2.0
//! `liverecord record`: records RTMP, SRT, RTSP (and file/HTTP) URLs with
//! `liverecordsink`, one pipeline per stream, across publisher reconnects
//! (`source.rs`). Every `liverecordsink-*` message is one JSON line on
//! stdout; logs go to stderr; on a terminal, one status line per stream.
//! SIGINT and SIGTERM finalise every open file and playlist, then exit 0.

mod config;
mod signals;
mod source;
mod status;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::error::{Error, Kind, Result};
use config::StreamConfig;
use source::Source;

#[derive(clap::Args)]
pub struct Args {
    /// The stream: rtmp://, srt:// (mode=listener or caller), rtsp://,
    /// file:// or a path. Not with --config.
    url: Option<String>,
    /// The stream id (the element's stream-id).
    #[arg(long)]
    stream_id: Option<String>,
    /// A liverecordsink property, e.g. --set formats=mp4+hls (repeatable;
    /// applies to every stream, over the config).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// A TOML file: [defaults] (properties for every stream) and
    /// [[streams]] (url, stream-id and any property).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Exit 6 if a stream has sent no data this many seconds after start.
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
    /// Longest wait between reconnection attempts, in seconds (the wait
    /// starts at 0.5 s and doubles after each failed attempt).
    #[arg(long, default_value_t = 10)]
    max_backoff: u64,
}

const MIN_BACKOFF: Duration = Duration::from_millis(500);

fn log(id: &str, what: &str) {
    eprintln!(
        "{} liverecord[{id}]: {what}",
        chrono::Utc::now().format("%H:%M:%S%.3f")
    );
}

/// What a stream is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The source runs and has sent no data yet.
    Connecting,
    Recording,
    /// The source ended or failed; the next one starts then.
    Waiting(Instant),
    /// A file source ended: the recording is finished.
    Done,
}

struct Recorder {
    id: String,
    url: String,
    pipeline: gst::Pipeline,
    rec: gst::Element,
    source: Option<Source>,
    generation: u64,
    phase: Phase,
    backoff: Duration,
    /// The longest wait between attempts (--max-backoff).
    max_backoff: Duration,
    started: Instant,
    ever_connected: bool,
    source_failed: Option<String>,
    /// A file or HTTP source: it ends for good.
    finite: bool,
    status: status::Line,
}

impl Recorder {
    fn new(cfg: &StreamConfig, max_backoff: Duration) -> Result<Recorder> {
        let url = config::normalise_url(&cfg.url);
        let finite = !matches!(
            url.split_once("://").map(|(s, _)| s),
            Some("rtmp" | "rtmps" | "srt" | "rtsp" | "rtsps")
        );
        let rec = gst::ElementFactory::make("liverecordsink")
            .name("rec")
            .build()
            .map_err(|_| Error::failed("liverecordsink is not available"))?;
        // A publisher that leaves is an interruption, not the end.
        rec.set_property_from_str("eos-action", if finite { "finish" } else { "interrupt" });
        config::apply(&rec, &cfg.props)?;
        config::check_location(&rec.property::<String>("location"))?;
        let id = rec.property::<String>("stream-id");
        let pipeline = gst::Pipeline::with_name(&format!("record-{id}"));
        pipeline
            .add(&rec)
            .map_err(|e| Error::failed(format!("{e}")))?;
        for pad in ["video", "audio"] {
            rec.request_pad_simple(pad)
                .ok_or_else(|| Error::failed(format!("liverecordsink gave no {pad} pad")))?;
        }
        Ok(Recorder {
            status: status::Line::new(&id),
            id,
            url,
            pipeline,
            rec,
            source: None,
            generation: 0,
            phase: Phase::Connecting,
            backoff: MIN_BACKOFF,
            max_backoff,
            started: Instant::now(),
            ever_connected: false,
            source_failed: None,
            finite,
        })
    }

    /// Starts the pipeline (the element checks its settings and the
    /// location here) and the first source.
    fn start(&mut self) -> Result<()> {
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            let why = first_error(&self.pipeline).unwrap_or_else(|| "cannot start".into());
            let _ = self.pipeline.set_state(gst::State::Null);
            return Err(Error::failed(format!("{}: {why}", self.id)));
        }
        self.start_source()
    }

    fn start_source(&mut self) -> Result<()> {
        self.generation += 1;
        let s = Source::start(&self.pipeline, &self.rec, &self.url, self.generation)
            .map_err(|e| Error::failed(format!("{}: {e}", self.id)))?;
        self.source = Some(s);
        self.phase = Phase::Connecting;
        self.source_failed = None;
        Ok(())
    }

    /// The source ended or failed: the open files close now, and a new
    /// source starts after the backoff.
    fn source_gone(&mut self, why: &str) {
        let Some(source) = self.source.take() else {
            return;
        };
        let ended = source.watch.lock().map(|w| w.ended).unwrap_or(false);
        source.stop(&self.pipeline);
        if !ended {
            // No EOS reached the recorder: end its streams as a publisher
            // leaving would (eos-action=interrupt closes the files).
            for pad in ["video", "audio"] {
                if let Some(p) = self.rec.static_pad(pad) {
                    p.send_event(gst::event::Eos::new());
                }
            }
        }
        if self.finite {
            log(&self.id, &format!("source ended ({why})"));
            return;
        }
        log(
            &self.id,
            &format!(
                "disconnected ({why}); reconnecting in {:.1} s",
                self.backoff.as_secs_f64()
            ),
        );
        self.phase = Phase::Waiting(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }

    /// One tick of the main loop: follow the source, reconnect when due.
    /// Returns an error that ends the program.
    fn tick(&mut self, connect_timeout: Duration) -> Result<()> {
        if let Some(s) = &self.source {
            let (ended, first, bytes) = s
                .watch
                .lock()
                .map(|w| (w.ended, w.first_data, w.bytes))
                .unwrap_or((false, None, 0));
            self.status.bytes(bytes);
            if first.is_some() && self.phase == Phase::Connecting {
                self.phase = Phase::Recording;
                self.ever_connected = true;
                self.backoff = MIN_BACKOFF;
                log(&self.id, &format!("connected: {}", self.url));
            }
            if ended && !self.finite {
                self.source_gone("end of stream");
            } else if let Some(why) = self.source_failed.take() {
                self.source_gone(&why);
            }
        }
        if let Phase::Waiting(at) = self.phase {
            if Instant::now() >= at {
                log(&self.id, &format!("reconnecting to {}", self.url));
                self.start_source()?;
            }
        }
        if !self.ever_connected && self.started.elapsed() >= connect_timeout {
            return Err(Error::new(
                Kind::NoData,
                format!(
                    "{}: no data from {} within {} s (--connect-timeout)",
                    self.id,
                    self.url,
                    connect_timeout.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// Finalises every open file and playlist (PAUSED→READY in the
    /// element) and returns the messages posted meanwhile (READY→NULL
    /// flushes the bus).
    fn stop(&mut self) -> Vec<gst::Message> {
        if let Some(s) = self.source.take() {
            s.stop(&self.pipeline);
        }
        let _ = self.pipeline.set_state(gst::State::Ready);
        let mut left = Vec::new();
        if let Some(bus) = self.pipeline.bus() {
            while let Some(m) = bus.pop() {
                left.push(m);
            }
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        left
    }
}

/// The first error message on the pipeline's bus, if any.
fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(e.error().to_string());
        }
    }
    None
}

/// The streams of the command line or the config.
fn streams(args: &Args) -> Result<Vec<StreamConfig>> {
    let mut set = BTreeMap::new();
    for s in &args.set {
        let (k, v) = config::parse_set(s)?;
        set.insert(k, v);
    }
    let mut streams = match (&args.config, &args.url) {
        (Some(_), Some(_)) => {
            return Err(Error::usage("give a URL or --config, not both"));
        }
        (Some(path), None) => config::from_toml(path)?,
        (None, Some(url)) => vec![StreamConfig {
            url: url.clone(),
            props: BTreeMap::new(),
        }],
        (None, None) => return Err(Error::usage("give a URL to record, or --config FILE")),
    };
    if let Some(id) = &args.stream_id {
        if streams.len() > 1 {
            return Err(Error::usage(
                "--stream-id names one stream; the config has several",
            ));
        }
        set.insert("stream-id".into(), id.clone());
    }
    for s in &mut streams {
        config::check_url(&s.url)?;
        for (k, v) in &set {
            s.props.insert(k.clone(), v.clone());
        }
    }
    let mut ids: Vec<&str> = streams.iter().map(|s| s.stream_id()).collect();
    ids.sort();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::usage(
            "two streams have the same stream-id: give each its own",
        ));
    }
    Ok(streams)
}

pub fn run(args: Args) -> Result<()> {
    gst::init().map_err(|e| Error::failed(format!("GStreamer: {e}")))?;
    gstliverecord::plugin_register_static()
        .map_err(|e| Error::failed(format!("cannot register liverecordsink: {e}")))?;
    let configs = streams(&args)?;
    let max_backoff = Duration::from_secs(args.max_backoff.max(1));
    let connect_timeout = Duration::from_secs(args.connect_timeout);

    // Everything is checked before anything starts.
    let mut recorders = Vec::new();
    for c in &configs {
        recorders.push(Recorder::new(c, max_backoff)?);
    }
    let recorders = Rc::new(RefCell::new(recorders));
    let main_loop = glib::MainLoop::new(None, false);
    let outcome: Rc<RefCell<Option<Result<()>>>> = Rc::new(RefCell::new(None));

    let finish = {
        let (recorders, main_loop, outcome) =
            (recorders.clone(), main_loop.clone(), outcome.clone());
        move |result: Result<()>| {
            if outcome.borrow().is_some() {
                return;
            }
            let mut result = result;
            let n = recorders.borrow().len();
            for i in 0..n {
                let left = recorders.borrow_mut()[i].stop();
                // The messages of the last files: printed like the others.
                for m in left {
                    on_message(&recorders, i, &m, &mut |r| {
                        if result.is_ok() {
                            result = r;
                        }
                    });
                }
            }
            *outcome.borrow_mut() = Some(result);
            main_loop.quit();
        }
    };

    let mut watches = Vec::new();
    for (i, r) in recorders.borrow().iter().enumerate() {
        let bus = r
            .pipeline
            .bus()
            .ok_or_else(|| Error::failed("pipeline without a bus"))?;
        let (recorders, finish) = (recorders.clone(), finish.clone());
        let watch = bus
            .add_watch_local(move |_, msg| {
                on_message(&recorders, i, msg, &mut |r| finish(r));
                glib::ControlFlow::Continue
            })
            .map_err(|e| Error::failed(format!("bus watch: {e}")))?;
        watches.push(watch);
    }
    for r in recorders.borrow_mut().iter_mut() {
        log(&r.id, &format!("recording {}", r.url));
        if let Err(e) = r.start() {
            finish(Err(e));
            break;
        }
    }

    signals::install();
    let tty = status::enabled();
    {
        let (recorders, finish) = (recorders.clone(), finish.clone());
        let mut last_status = Instant::now();
        glib::timeout_add_local(Duration::from_millis(200), move || {
            if let Some(sig) = signals::received() {
                eprintln!("liverecord: signal {sig}: finalising the open files");
                finish(Ok(()));
                return glib::ControlFlow::Break;
            }
            let mut failed = None;
            for r in recorders.borrow_mut().iter_mut() {
                if let Err(e) = r.tick(connect_timeout) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                finish(Err(e));
                return glib::ControlFlow::Break;
            }
            if recorders.borrow().iter().all(|r| r.phase == Phase::Done) {
                finish(Ok(()));
                return glib::ControlFlow::Break;
            }
            if tty && last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                let lines: Vec<String> = recorders
                    .borrow_mut()
                    .iter_mut()
                    .map(|r| r.status.render(phase_name(r.phase)))
                    .collect();
                status::draw(&lines);
            }
            glib::ControlFlow::Continue
        });
    }
    if outcome.borrow().is_none() {
        main_loop.run();
    }
    drop(watches);
    let result = outcome.borrow_mut().take().unwrap_or(Ok(()));
    if tty {
        status::clear();
    }
    result
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Connecting => "connecting",
        Phase::Recording => "recording",
        Phase::Waiting(_) => "reconnecting",
        Phase::Done => "done",
    }
}

/// A message of stream `i`'s pipeline (on the main loop).
fn on_message(
    recorders: &Rc<RefCell<Vec<Recorder>>>,
    i: usize,
    msg: &gst::Message,
    finish: &mut dyn FnMut(Result<()>),
) {
    match msg.view() {
        gst::MessageView::Element(e) => {
            let Some(s) = e.structure() else { return };
            if !s.name().starts_with("liverecordsink-") {
                return;
            }
            let line = gstliverecord::json::message_json(s);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            if let Some(r) = recorders.borrow_mut().get_mut(i) {
                r.status.message(s);
            }
        }
        gst::MessageView::Error(e) => {
            let text = match e.debug() {
                Some(d) => format!("{} ({d})", e.error()),
                None => e.error().to_string(),
            };
            let mut rs = recorders.borrow_mut();
            let Some(r) = rs.get_mut(i) else { return };
            let from_source = msg
                .src()
                .is_some_and(|src| r.source.as_ref().is_some_and(|s| s.owns(src)));
            if from_source {
                let detail = e
                    .debug()
                    .and_then(|d| d.lines().last().map(|l| l.trim().to_string()))
                    .unwrap_or_default();
                r.source_failed = Some(format!("{}: {detail}", e.error()));
                return;
            }
            let id = r.id.clone();
            drop(rs);
            finish(Err(Error::failed(format!("{id}: {text}"))));
        }
        gst::MessageView::Eos(_) => {
            let mut rs = recorders.borrow_mut();
            if let Some(r) = rs.get_mut(i) {
                log(&r.id, "finished");
                r.phase = Phase::Done;
            }
        }
        _ => {}
    }
}
