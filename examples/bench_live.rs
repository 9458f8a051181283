// SPDX-License-Identifier: MIT OR Apache-2.0
//! In-process benchmarks of `liverecordsink` (run by `scripts/bench.py`).
//!
//! - `scale N SECONDS [SPREAD_MS]`: N live streams in one process, each
//!   pre-encoded 640x360 H.264 + AAC pushed in real time through appsrc (no
//!   queue) and recorded as mp4+hls; the streams start SPREAD_MS apart in
//!   all (default 6000, one HLS segment; 0 = all at once, so all cut at the
//!   same instant). Two pacing threads. Prints one JSON line: CPU %, RSS,
//!   threads per stream, late pushes and late arrivals at the recorder,
//!   dropped frames.
//! - `latency RUNS SECONDS`: time from EOS on the pads to `file-closed`, and
//!   from the last buffer to `file-closed` with `idle-timeout=1000`.
//! - `memory MINUTES`: one stream of MINUTES of media recorded as fast as
//!   possible; prints peak RSS.
//!
//! Output files go to `target/bench/`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_app::AppSrc;

struct Encoded {
    caps: gst::Caps,
    frames: Vec<gst::Buffer>,
    frame_ns: u64,
}

/// Encodes `seconds` of media once with a real encoder, into memory.
fn encode(desc: &str) -> Result<Encoded, Box<dyn std::error::Error>> {
    let pipeline = gst::parse::launch(&format!("{desc} ! appsink name=out sync=false"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("out")
        .ok_or("no appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut frames = Vec::new();
    let mut caps = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        if let Some(b) = sample.buffer_owned() {
            frames.push(b);
        }
    }
    pipeline.set_state(gst::State::Null)?;
    let caps = caps.ok_or("encoder produced nothing")?;
    let frame_ns = frames
        .first()
        .and_then(|b| b.duration())
        .map(|d| d.nseconds())
        .unwrap_or(33_333_333);
    Ok(Encoded {
        caps,
        frames,
        frame_ns,
    })
}

fn media() -> Result<(Encoded, Encoded), Box<dyn std::error::Error>> {
    let video = encode(
        "videotestsrc num-buffers=300 pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! x264enc bitrate=3000 speed-preset=veryfast key-int-max=60 bframes=0 \
         ! h264parse ! video/x-h264,stream-format=avc,alignment=au",
    )?;
    let audio = encode(
        "audiotestsrc num-buffers=469 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! avenc_aac ! aacparse ! audio/mpeg,stream-format=raw",
    )?;
    Ok((video, audio))
}

/// A `kB` field of /proc/self/status (VmRSS, VmHWM).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// user+sys CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of /proc/pid/stat (utime, stime), in clock ticks (100 Hz).
    (ticks(11) + ticks(12)) / 100.0
}

struct Stream {
    pipeline: gst::Pipeline,
    rec: gst::Element,
    video: AppSrc,
    audio: AppSrc,
}

fn build_stream(
    i: usize,
    dir: &str,
    extra: &str,
    v: &Encoded,
    a: &Encoded,
    live: bool,
) -> Result<Stream, Box<dyn std::error::Error>> {
    // `extra` = "bare": mp4mux ! filesink instead of the element, to compare.
    let (sink, vpad, apad) = if extra == "bare" {
        (
            format!("mp4mux name=rec latency=10000000000 ! filesink location={dir}/bare{i}.mp4"),
            "video_0",
            "audio_0",
        )
    } else {
        (
            format!(
                "liverecordsink name=rec stream-id=s{i} location={dir}/{{stream_id}}/{{index}} \
                 index-location={dir}/index.jsonl {extra}"
            ),
            "video",
            "audio",
        )
    };
    let _ = std::fs::create_dir_all(dir);
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=v format=time is-live={live} ! {q}rec.{vpad} \
         appsrc name=a format=time is-live={live} ! {q}rec.{apad} {sink}",
        // Live: each appsrc's own streaming thread pushes into the recorder
        // (a source thread per input, as rtmp2src or srtsrc have); no
        // queue thread of the benchmark's own between them.
        q = if live { "" } else { "queue ! " }
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let get = |n: &str| -> Result<AppSrc, Box<dyn std::error::Error>> {
        Ok(pipeline
            .by_name(n)
            .ok_or("missing appsrc")?
            .downcast::<AppSrc>()
            .map_err(|_| "not an appsrc")?)
    };
    let video = get("v")?;
    let audio = get("a")?;
    video.set_caps(Some(&v.caps));
    audio.set_caps(Some(&a.caps));
    for s in [&video, &audio] {
        if live {
            // Real-time pushes never block: a late push shows as lag.
            s.set_property("max-bytes", 0u64);
            s.set_property("block", false);
        } else {
            // Pushing as fast as possible: wait for the recorder instead of
            // queueing the whole input in memory.
            s.set_property("max-bytes", 2_000_000u64);
            s.set_property("block", true);
        }
    }
    let rec = pipeline.by_name("rec").ok_or("missing rec")?;
    Ok(Stream {
        pipeline,
        rec,
        video,
        audio,
    })
}

/// Frame `n` of an encoded loop, timestamped at `n * frame_ns`.
fn frame(e: &Encoded, n: u64) -> gst::Buffer {
    let len = e.frames.len() as u64;
    let mut b = e.frames[(n % len) as usize].copy();
    {
        let b = b.make_mut();
        let ts = gst::ClockTime::from_nseconds(n * e.frame_ns);
        b.set_pts(ts);
        b.set_dts(ts);
        b.set_duration(gst::ClockTime::from_nseconds(e.frame_ns));
    }
    b
}

fn wait_eos(p: &gst::Pipeline, timeout: Duration) -> Vec<gst::Structure> {
    let mut msgs = Vec::new();
    let Some(bus) = p.bus() else { return msgs };
    let start = Instant::now();
    while start.elapsed() < timeout {
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        match m.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                eprintln!("error: {} {:?}", e.error(), e.debug());
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    msgs.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    msgs
}

fn scale(n: usize, seconds: u64, spread_ms: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (v, a) = media()?;
    let dir = format!("target/bench/scale-{n}");
    let _ = std::fs::remove_dir_all(&dir);
    let base_rss = rss_kib();
    let base_threads = threads();
    let mut streams = Vec::new();
    for i in 0..n {
        let s = build_stream(i, &dir, "formats=mp4+hls record-interval=60", &v, &a, true)?;
        s.pipeline.set_state(gst::State::Playing)?;
        streams.push(s);
    }
    let cpu0 = cpu_seconds();
    // The first frames are due a moment after the set-up, not during it.
    let t0 = Instant::now() + Duration::from_millis(200);
    let arrivals = Arc::new(Mutex::new(Lags::default()));
    let spread = Duration::from_millis(spread_ms);
    let offset = |i: usize| spread * i as u32 / n.max(1) as u32;
    for (i, s) in streams.iter().enumerate() {
        for src in [&s.video, &s.audio] {
            if let Some(pad) = src.static_pad("src") {
                arrival_probe(&pad, t0, offset(i), arrivals.clone());
            }
        }
    }
    // Pacing threads (one per core), each pushing its share of the streams'
    // frames when they are due, so the benchmark's own pushing is not the
    // bottleneck it measures.
    let pacers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let shares: Vec<Vec<Paced>> = (0..pacers)
        .map(|p| {
            streams
                .iter()
                .enumerate()
                .skip(p)
                .step_by(pacers)
                .map(|(i, s)| Paced {
                    video: s.video.clone(),
                    audio: s.audio.clone(),
                    offset: offset(i),
                })
                .collect()
        })
        .collect();
    let (v, a) = (Arc::new(v), Arc::new(a));
    let peak = Arc::new(Mutex::new((0u64, 0usize)));
    let handles: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(p, share)| {
            let (v, a, peak) = (v.clone(), a.clone(), peak.clone());
            std::thread::spawn(move || pace(p, &share, &v, &a, seconds, t0, &peak))
        })
        .collect();
    let mut lags = Lags::default();
    for h in handles {
        let l = h.join().map_err(|_| "a pacing thread panicked")??;
        lags.add(&l);
    }
    let (mut peak_rss, peak_threads) = *peak.lock().map_err(|_| "poisoned")?;
    let arrived = arrivals.lock().map_err(|_| "poisoned")?.clone();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    peak_rss = peak_rss.max(rss_kib());
    for s in &streams {
        let _ = s.video.end_of_stream();
        let _ = s.audio.end_of_stream();
    }
    let mut dropped = 0u64;
    let mut closed = 0usize;
    for s in &streams {
        let msgs = wait_eos(&s.pipeline, Duration::from_secs(60));
        closed += msgs
            .iter()
            .filter(|m| m.name() == "liverecordsink-file-closed")
            .count();
        if let Ok(st) = s.rec.property_value("stats").get::<gst::Structure>() {
            dropped += st.get::<u64>("frames-dropped").unwrap_or(0);
        }
        let _ = s.pipeline.set_state(gst::State::Null);
    }
    println!(
        "{{\"bench\":\"scale\",\"streams\":{n},\"seconds\":{seconds},\"spread_ms\":{spread_ms},\"wall\":{wall:.2},\"cpu_percent\":{:.1},\"rss_mib\":{:.1},\"rss_per_stream_mib\":{:.2},\"threads_per_stream\":{:.2},\"pushes\":{},\"late_pushes\":{},\"over_100ms\":{},\"max_lag_ms\":{},\"arrivals_over_100ms\":{},\"max_arrival_lag_ms\":{},\"frames_dropped\":{dropped},\"files_closed\":{closed}}}",
        100.0 * cpu / wall,
        peak_rss as f64 / 1024.0,
        (peak_rss.saturating_sub(base_rss)) as f64 / 1024.0 / n as f64,
        peak_threads.saturating_sub(base_threads) as f64 / n as f64,
        lags.pushes,
        lags.late,
        lags.over_100ms,
        lags.max.as_millis(),
        arrived.over_100ms,
        arrived.max.as_millis()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// How late the pacing threads pushed.
#[derive(Default, Clone)]
struct Lags {
    pushes: u64,
    /// More than 40 ms after the frame was due.
    late: u64,
    over_100ms: u64,
    max: Duration,
}

impl Lags {
    fn note(&mut self, lag: Duration) {
        self.pushes += 1;
        if lag > Duration::from_millis(40) {
            self.late += 1;
        }
        if lag > Duration::from_millis(100) {
            self.over_100ms += 1;
        }
        self.max = self.max.max(lag);
    }

    fn add(&mut self, o: &Lags) {
        self.pushes += o.pushes;
        self.late += o.late;
        self.over_100ms += o.over_100ms;
        self.max = self.max.max(o.max);
    }
}

/// Threads of this process.
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One stream as a pacer drives it: its sources and when its media starts.
struct Paced {
    video: AppSrc,
    audio: AppSrc,
    /// Streams start at different moments, as publishers do (spread over
    /// one HLS segment), so that they do not all cut at the same instant.
    offset: Duration,
}

/// Pushes every frame of `share`'s streams when it is due (from `t0` plus
/// the stream's offset); pacer 0 also samples RSS and threads.
fn pace(
    p: usize,
    share: &[Paced],
    v: &Encoded,
    a: &Encoded,
    seconds: u64,
    t0: Instant,
    peak: &Mutex<(u64, usize)>,
) -> Result<Lags, String> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let vn = seconds * 1_000_000_000 / v.frame_ns;
    let an = seconds * 1_000_000_000 / a.frame_ns;
    // (due, stream, video?, frame number)
    let mut next: BinaryHeap<Reverse<(Duration, usize, bool, u64)>> = BinaryHeap::new();
    for (i, s) in share.iter().enumerate() {
        next.push(Reverse((s.offset, i, true, 0)));
        next.push(Reverse((s.offset, i, false, 0)));
    }
    let mut lags = Lags::default();
    let mut video_pushed = 0u64;
    while let Some(Reverse((due, i, is_video, n))) = next.pop() {
        let now = t0.elapsed();
        if due > now {
            std::thread::sleep(due - now);
        }
        let lag = t0.elapsed().saturating_sub(due);
        lags.note(lag);
        let s = &share[i];
        let r = if is_video {
            s.video.push_buffer(frame(v, n))
        } else {
            s.audio.push_buffer(frame(a, n))
        };
        r.map_err(|e| format!("push failed: {e:?}"))?;
        let (count, step) = if is_video {
            (vn, v.frame_ns)
        } else {
            (an, a.frame_ns)
        };
        if n + 1 < count {
            let due = s.offset + Duration::from_nanos((n + 1) * step);
            next.push(Reverse((due, i, is_video, n + 1)));
        }
        if is_video {
            video_pushed += 1;
            if p == 0 && video_pushed.is_multiple_of((300 * share.len() as u64).max(1)) {
                if let Ok(mut g) = peak.lock() {
                    g.0 = g.0.max(rss_kib());
                    g.1 = g.1.max(threads());
                }
            }
        }
    }
    Ok(lags)
}

/// Frames reaching the recorder late: a probe on each recorder input
/// compares the arrival time with when the frame was due.
fn arrival_probe(pad: &gst::Pad, t0: Instant, offset: Duration, lags: Arc<Mutex<Lags>>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            let due = offset + Duration::from_nanos(pts.nseconds());
            let lag = t0.elapsed().saturating_sub(due);
            if let Ok(mut l) = lags.lock() {
                l.note(lag);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

fn push_fast(s: &Stream, v: &Encoded, a: &Encoded, seconds: u64) -> Result<(), String> {
    let vn = seconds * 1_000_000_000 / v.frame_ns;
    let an = seconds * 1_000_000_000 / a.frame_ns;
    let (mut vi, mut ai) = (0u64, 0u64);
    while vi < vn || ai < an {
        if vi < vn && (ai >= an || vi * v.frame_ns <= ai * a.frame_ns) {
            s.video
                .push_buffer(frame(v, vi))
                .map_err(|e| format!("{e:?}"))?;
            vi += 1;
        } else {
            s.audio
                .push_buffer(frame(a, ai))
                .map_err(|e| format!("{e:?}"))?;
            ai += 1;
        }
    }
    Ok(())
}

/// Waits for `file-closed`; returns the time it took.
fn time_to_closed(p: &gst::Pipeline, since: Instant) -> Option<Duration> {
    let bus = p.bus()?;
    while since.elapsed() < Duration::from_secs(120) {
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(5)) else {
            continue;
        };
        if let gst::MessageView::Element(e) = m.view() {
            if e.structure()
                .map(|s| s.name() == "liverecordsink-file-closed")
                == Some(true)
            {
                return Some(since.elapsed());
            }
        }
    }
    None
}

fn stats_ms(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let med = v.get(v.len() / 2).copied().unwrap_or_default();
    let max = v.last().copied().unwrap_or_default();
    (med.as_secs_f64() * 1000.0, max.as_secs_f64() * 1000.0)
}

fn latency(runs: usize, long_minutes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (v, a) = media()?;
    let dir = "target/bench/latency";
    let _ = std::fs::remove_dir_all(dir);
    let mut eos_times = Vec::new();
    for i in 0..runs {
        let s = build_stream(i, dir, "", &v, &a, false)?;
        s.pipeline.set_state(gst::State::Playing)?;
        push_fast(&s, &v, &a, 10)?;
        // Let the data reach the element before EOS.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let _ = s.video.end_of_stream();
        let _ = s.audio.end_of_stream();
        if let Some(d) = time_to_closed(&s.pipeline, t) {
            eos_times.push(d);
        }
        let _ = s.pipeline.set_state(gst::State::Null);
    }
    let mut idle_times = Vec::new();
    for i in 0..runs {
        let s = build_stream(i, dir, "idle-timeout=1000", &v, &a, true)?;
        s.pipeline.set_state(gst::State::Playing)?;
        // 2 s pushed in real time, then nothing.
        let t0 = Instant::now();
        for n in 0..60u64 {
            let due = Duration::from_nanos(n * v.frame_ns);
            if let Some(d) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(d);
            }
            s.video
                .push_buffer(frame(&v, n))
                .map_err(|e| format!("{e:?}"))?;
            let an = (n + 1) * v.frame_ns / a.frame_ns;
            let from = n * v.frame_ns / a.frame_ns;
            for k in from..an {
                s.audio
                    .push_buffer(frame(&a, k))
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        let t = Instant::now();
        if let Some(d) = time_to_closed(&s.pipeline, t) {
            idle_times.push(d);
        }
        let _ = s.pipeline.set_state(gst::State::Null);
    }
    let long = {
        let s = build_stream(0, dir, "record-interval=7200", &v, &a, false)?;
        s.pipeline.set_state(gst::State::Playing)?;
        push_fast(&s, &v, &a, long_minutes * 60)?;
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let _ = s.video.end_of_stream();
        let _ = s.audio.end_of_stream();
        let d = time_to_closed(&s.pipeline, t);
        let _ = s.pipeline.set_state(gst::State::Null);
        d
    };
    let (em, ex) = stats_ms(eos_times.clone());
    let (im, ix) = stats_ms(idle_times.clone());
    println!(
        "{{\"bench\":\"latency\",\"runs\":{runs},\"eos_median_ms\":{em:.1},\"eos_max_ms\":{ex:.1},\"eos_ok\":{},\"idle_median_ms\":{im:.1},\"idle_max_ms\":{ix:.1},\"idle_ok\":{},\"long_minutes\":{long_minutes},\"long_eos_ms\":{:.1}}}",
        eos_times.len(),
        idle_times.len(),
        long.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(-1.0)
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn memory(minutes: u64, variant: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (v, a) = media()?;
    let dir = "target/bench/memory";
    let _ = std::fs::remove_dir_all(dir);
    let extra = match variant {
        "bare" => "bare",
        "classic" => "record-interval=7200 mp4-fragment-duration=0",
        _ => "record-interval=7200",
    };
    let s = build_stream(0, dir, extra, &v, &a, false)?;
    s.pipeline.set_state(gst::State::Playing)?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    for m in 0..minutes {
        // Push one minute at a time, so RSS can be sampled as the file grows.
        let vn = 60 * 1_000_000_000 / v.frame_ns;
        let an = 60 * 1_000_000_000 / a.frame_ns;
        let (vs, as_) = (m * vn, m * an);
        let (mut vi, mut ai) = (0u64, 0u64);
        while vi < vn || ai < an {
            if vi < vn && (ai >= an || vi * v.frame_ns <= ai * a.frame_ns) {
                s.video
                    .push_buffer(frame(&v, vs + vi))
                    .map_err(|e| format!("{e:?}"))?;
                vi += 1;
            } else {
                s.audio
                    .push_buffer(frame(&a, as_ + ai))
                    .map_err(|e| format!("{e:?}"))?;
                ai += 1;
            }
        }
        if let Ok(mut g) = samples.lock() {
            g.push((m + 1, rss_kib()));
        }
    }
    let _ = s.video.end_of_stream();
    let _ = s.audio.end_of_stream();
    let msgs = wait_eos(&s.pipeline, Duration::from_secs(600));
    let _ = s.pipeline.set_state(gst::State::Null);
    let samples = samples.lock().map(|g| g.clone()).unwrap_or_default();
    let at = |min: u64| {
        samples
            .iter()
            .find(|(m, _)| *m >= min)
            .map(|(_, r)| *r as f64 / 1024.0)
            .unwrap_or(0.0)
    };
    println!(
        "{{\"bench\":\"memory\",\"variant\":\"{variant}\",\"minutes\":{minutes},\"wall\":{:.1},\"peak_rss_mib\":{:.1},\"rss_at_10min_mib\":{:.1},\"rss_at_end_mib\":{:.1},\"files_closed\":{}}}",
        t0.elapsed().as_secs_f64(),
        status_kib("VmHWM:") as f64 / 1024.0,
        at(10),
        at(minutes),
        msgs.iter().filter(|m| m.name() == "liverecordsink-file-closed").count()
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstliverecord::plugin_register_static()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| -> u64 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d) };
    match args.first().map(String::as_str) {
        Some("scale") => scale(num(1, 50) as usize, num(2, 60), num(3, 6000)),
        Some("latency") => latency(num(1, 20) as usize, num(2, 30)),
        Some("memory") => memory(num(1, 120), args.get(2).map_or("default", String::as_str)),
        _ => Err(
            "usage: bench_live scale N SECONDS [SPREAD_MS] | latency RUNS LONG_MINUTES | memory MINUTES [bare|classic]".into(),
        ),
    }
}
