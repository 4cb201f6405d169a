//! Headless playing for `streamlab probe`: SETUP, PLAY, count what arrives,
//! TEARDOWN on the way out (Ctrl-C too), and summarise.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use crate::media::Framing;
use crate::net::client::{
    ClientCommand, ClientConfig, ClientError, ClientEvent, ClientHandle, ClientStats, FrameRecord,
    PacketRecord, Records, millis_since,
};
use crate::net::record::{RecordSummary, Recorder};
use crate::protocol::State;
use crate::protocol::reconnect::Backoff;

/// When to stop playing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeLimits {
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this long playing.
    pub seconds: Option<f64>,
    /// PLAY from this point of the stream, in seconds (standard RTSP).
    pub start: Option<f64>,
    /// When the server goes away, try again with backoff and play on.
    pub reconnect: bool,
}

/// Where the probe writes its records.
#[derive(Debug, Clone, Default)]
pub struct ProbeOutput {
    /// One row per frame.
    pub frames_csv: Option<PathBuf>,
    /// One row per packet.
    pub packets_csv: Option<PathBuf>,
    /// Record the frames as they arrive, in this framing.
    pub record: Option<(PathBuf, Framing)>,
    /// Write the first frame's JPEG here, as received (`streamlab
    /// snapshot`).
    pub snapshot: Option<PathBuf>,
}

/// The frames CSV's header line.
pub const FRAMES_CSV_HEADER: &str =
    "frame,rtp_timestamp,first_seq,last_seq,packets,bytes,arrival_ms,presented_ms,status";
/// The packets CSV's header line.
pub const PACKETS_CSV_HEADER: &str = "seq,timestamp,marker,size,arrival_ms,status";

/// A CSV file being written; the first failure is reported once and the
/// stream goes on without it.
struct Csv {
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl Csv {
    fn create(path: &Path, header: &str, errors: &mut Vec<String>) -> Csv {
        let mut csv = Csv {
            path: path.to_path_buf(),
            out: None,
        };
        match std::fs::File::create(path) {
            Ok(f) => {
                csv.out = Some(std::io::BufWriter::new(f));
                csv.line(header, errors);
            }
            Err(e) => errors.push(format!(
                "cannot write {}: {e}; the stream goes on without it",
                path.display()
            )),
        }
        csv
    }

    fn line(&mut self, line: &str, errors: &mut Vec<String>) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if let Err(e) = writeln!(out, "{line}") {
            errors.push(format!(
                "cannot write {}: {e}; the stream goes on without it",
                self.path.display()
            ));
            self.out = None;
        }
    }

    fn finish(&mut self, errors: &mut Vec<String>) {
        if let Some(mut out) = self.out.take()
            && let Err(e) = out.flush()
        {
            errors.push(format!("cannot write {}: {e}", self.path.display()));
        }
    }
}

/// A frame's row in the frames CSV; times in ms since `origin`.
pub fn frame_row(origin: Option<Instant>, f: &FrameRecord) -> String {
    let presented = f.presented.map_or(String::new(), |at| {
        format!("{:.3}", millis_since(origin, at))
    });
    format!(
        "{},{},{},{},{},{},{:.3},{},{}",
        f.index,
        f.rtp_timestamp,
        f.first_seq,
        f.last_seq,
        f.packets,
        f.bytes,
        millis_since(origin, f.arrival),
        presented,
        f.status.csv()
    )
}

/// A packet's row in the packets CSV; times in ms since `origin`.
pub fn packet_row(origin: Option<Instant>, p: &PacketRecord) -> String {
    format!(
        "{},{},{},{},{:.3},{}",
        p.seq,
        p.timestamp,
        p.marker as u8,
        p.size,
        millis_since(origin, p.at),
        p.status.csv()
    )
}

/// The rows of a batch of records.
fn write_records(
    r: &Records,
    frames: &mut Option<Csv>,
    packets: &mut Option<Csv>,
    errors: &mut Vec<String>,
) {
    if let Some(csv) = frames.as_mut() {
        for f in &r.frames {
            csv.line(&frame_row(r.origin, f), errors);
        }
    }
    if let Some(csv) = packets.as_mut() {
        for p in &r.packets {
            csv.line(&packet_row(r.origin, p), errors);
        }
    }
}

/// What a probe saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub stats: ClientStats,
    pub width: u32,
    pub height: u32,
    /// Seconds from the first to the last frame.
    pub playing_seconds: f64,
    /// The stream stopped by itself (end of file) rather than by a limit.
    pub ended: bool,
    /// TEARDOWN was answered.
    pub torn_down: bool,
    /// Errors, as shown to a user.
    pub errors: Vec<String>,
    /// Notices (e.g. RTP moved from UDP to TCP by itself).
    pub notices: Vec<String>,
    /// This process's resident memory, MB: one minute into playing, and
    /// at the end (Linux; None elsewhere or for shorter runs).
    pub rss_mb_after_1min: Option<f64>,
    pub rss_mb_end: Option<f64>,
    /// Times the server went away and came back (`--reconnect`).
    pub reconnects: u64,
    /// What `--record` wrote.
    pub recorded: Option<RecordSummary>,
    /// Where the snapshot went, and its size in bytes.
    pub snapshot: Option<(PathBuf, usize)>,
}

/// This process's resident set size in MB, from /proc (Linux).
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl ProbeReport {
    /// Frames per second over the whole run.
    pub fn fps(&self) -> f64 {
        if self.playing_seconds > 0.0 && self.stats.frames > 1 {
            (self.stats.frames - 1) as f64 / self.playing_seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let dropped: BTreeMap<_, _> = self.stats.dropped.clone();
        let mut v = serde_json::json!({
            "frames": self.stats.frames,
            "bytes": self.stats.bytes,
            "packets": self.stats.packets,
            "fps": (self.fps() * 1000.0).round() / 1000.0,
            "lost": self.stats.lost,
            "dropped": dropped,
            "dropped_total": self.stats.dropped_total(),
            "decode_errors": self.stats.decode_errors,
            "first_frame_ms": self.stats.first_frame_ms,
            "ssrc": self.stats.ssrc,
            "frames_skipped": self.stats.frames_skipped,
            "reordered": self.stats.reordered,
            "kernel_drops": self.stats.kernel_drops,
            "reports_sent": self.stats.reports_sent,
            "expected": self.stats.net.expected,
            "loss_percent": round3(self.stats.net.loss_percent),
            "longest_loss_run": self.stats.net.longest_loss_run,
            "duplicates": self.stats.net.duplicates,
            "late": self.stats.net.late,
            "jitter_ms": round3(self.stats.net.jitter_ms),
            "frame_jitter_ms": round3(self.stats.net.frame_jitter_ms),
            "bitrate_kbps": round3(self.stats.net.payload_kbps),
            "wire_kbps": round3(self.stats.net.wire_kbps),
            "frames_complete": self.stats.net.frames_complete,
            "frames_incomplete": self.stats.net.frames_incomplete,
            "frames_presented": self.stats.frames_presented,
            "frames_late": self.stats.frames_late,
            "underruns": self.stats.underruns,
            "latency_ms": self.stats.net.latency_p50_ms.map(|p50| serde_json::json!({
                "p50": round3(p50),
                "p99": self.stats.net.latency_p99_ms.map(round3),
            })),
            "presented_latency_ms": self.stats.presented_latency_p50_ms.map(|p50| serde_json::json!({
                "p50": round3(p50),
                "p99": self.stats.presented_latency_p99_ms.map(round3),
            })),
            "playout_latency_ms": self.stats.latency_ms,
            "rss_mb_after_1min": self.rss_mb_after_1min.map(round3),
            "rss_mb_end": self.rss_mb_end.map(round3),
            "width": self.width,
            "height": self.height,
            "ended": self.ended,
            "torn_down": self.torn_down,
            "errors": self.errors,
            "notices": self.notices,
            "reconnects": self.reconnects,
        });
        // Apart: one json! of it all is past the macro's recursion limit.
        v["recorded"] = serde_json::json!(self.recorded.as_ref().map(|r| serde_json::json!({
            "path": r.path.display().to_string(),
            "framing": r.framing.to_string(),
            "frames": r.frames,
            "bytes": r.bytes,
            "skipped": r.skipped,
            "error": r.error.as_ref().map(ToString::to_string),
        })));
        v["snapshot"] = serde_json::json!(self.snapshot.as_ref().map(|(p, n)| serde_json::json!({
            "path": p.display().to_string(),
            "bytes": n,
        })));
        v
    }

    pub fn summary(&self) -> String {
        let n = &self.stats.net;
        let analysis = format!(
            "; {} of {} packets lost ({:.2}%), {} duplicated, {} reordered, {} late; jitter {:.2} ms per packet, {:.2} ms per frame; {} frames presented, {} late, {} incomplete, {} underruns",
            n.lost,
            n.expected,
            n.loss_percent,
            n.duplicates,
            n.reordered,
            n.late,
            n.jitter_ms,
            n.frame_jitter_ms,
            self.stats.frames_presented,
            self.stats.frames_late,
            n.frames_incomplete,
            self.stats.underruns,
        );
        self.sentence() + &analysis
    }

    fn sentence(&self) -> String {
        let first = self
            .stats
            .first_frame_ms
            .map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
        format!(
            "{} frames ({}x{}), {} bytes, {:.2} fps, {} lost, {} dropped, {} reordered, {} dropped by the kernel, {} decode errors, first frame after {}, {}",
            self.stats.frames,
            self.width,
            self.height,
            self.stats.bytes,
            self.fps(),
            self.stats.lost,
            self.stats.dropped_total(),
            self.stats.reordered,
            self.stats
                .kernel_drops
                .map_or("-".to_string(), |d| d.to_string()),
            self.stats.decode_errors,
            first,
            if self.ended {
                "stream ended"
            } else {
                "stopped by limit"
            },
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Play `config` headless until a limit, the end of the stream, an error
/// that ends the session, or `cancel` fires.
pub fn probe(config: ClientConfig, limits: ProbeLimits, cancel: &Receiver<()>) -> ProbeReport {
    probe_to(config, limits, &ProbeOutput::default(), cancel)
}

/// [`probe`], writing records to the files `output` names.
pub fn probe_to(
    config: ClientConfig,
    limits: ProbeLimits,
    output: &ProbeOutput,
    cancel: &Receiver<()>,
) -> ProbeReport {
    let prebuffer = config.prebuffer;
    let mut client = ClientHandle::spawn(config.clone(), || {});
    let mut backoff = Backoff::default();
    let mut report = ProbeReport::default();
    let mut frames_csv = output
        .frames_csv
        .as_deref()
        .map(|p| Csv::create(p, FRAMES_CSV_HEADER, &mut report.errors));
    let mut packets_csv = output
        .packets_csv
        .as_deref()
        .map(|p| Csv::create(p, PACKETS_CSV_HEADER, &mut report.errors));
    let mut recorder =
        output
            .record
            .as_ref()
            .and_then(|(path, framing)| match Recorder::start(path, *framing) {
                Ok(r) => Some(r),
                Err(e) => {
                    report.errors.push(e.to_string());
                    None
                }
            });
    let mut saw_playing = false;
    let mut events = client.events().clone();
    let mut state = State::Init;
    let mut first_frame: Option<Instant> = None;
    let mut last_frame: Option<Instant> = None;
    let mut play_started: Option<Instant> = None;
    // PLAY was sent in this engine's session (a reconnect makes another).
    let mut resumed_play = false;
    let mut live = false;
    client.send(ClientCommand::Setup);
    let setup_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let deadline = match play_started {
            None => setup_deadline,
            Some(t) => limits
                .seconds
                .map_or(t + Duration::from_secs(3600 * 24), |s| {
                    t + Duration::from_secs_f64(s.max(0.0))
                }),
        };
        if report.rss_mb_after_1min.is_none()
            && play_started.is_some_and(|t| t.elapsed() >= Duration::from_secs(60))
        {
            report.rss_mb_after_1min = rss_mb();
        }
        // Away: wait for the next attempt (Ctrl-C and the time limit
        // still count), then a new engine SETUPs and PLAYs again.
        if let Some(due) = backoff.due() {
            let until = due.min(deadline);
            select! {
                recv(cancel) -> _ => break,
                default(until.saturating_duration_since(Instant::now())) => {}
            }
            if Instant::now() >= deadline {
                break;
            }
            let attempt = backoff.attempt();
            report
                .notices
                .push(format!("trying the server again (attempt {attempt})"));
            client.shutdown(Duration::from_secs(1));
            client = ClientHandle::spawn(config.clone(), || {});
            events = client.events().clone();
            saw_playing = false;
            resumed_play = false;
            state = State::Init;
            client.send(ClientCommand::Setup);
            continue;
        }
        let ev = select! {
            recv(events) -> ev => match ev { Ok(ev) => ev, Err(_) => break },
            recv(cancel) -> _ => break,
            default(deadline.saturating_duration_since(Instant::now())) => break,
        };
        // The server went away (or an attempt found nobody there).
        let gone = matches!(
            &ev,
            ClientEvent::Error(ClientError::ServerGone | ClientError::Connect { .. })
        );
        if limits.reconnect && gone && (play_started.is_some() || backoff.away()) {
            if let ClientEvent::Error(e) = &ev {
                report.notices.push(format!("{e}; trying again"));
            }
            backoff.lost(Instant::now());
            continue;
        }
        match ev {
            ClientEvent::State { state: s, .. } => {
                state = s;
                saw_playing |= s == State::Playing;
                // With a pre-buffer the engine PLAYs and PAUSEs by itself
                // first: PLAY once it is back in READY.
                let ready = s == State::Ready && (prebuffer == 0 || saw_playing);
                if s == State::Playing && backoff.away() {
                    let took = backoff.playing();
                    report.reconnects = backoff.reconnects();
                    report
                        .notices
                        .push(format!("playing again after {took} attempts"));
                }
                if ready && play_started.is_some() && !resumed_play {
                    // Back after a reconnect: on from where it plays now.
                    resumed_play = true;
                    client.send(ClientCommand::Play);
                }
                if ready && play_started.is_none() {
                    play_started = Some(Instant::now());
                    resumed_play = true;
                    client.send(match limits.start {
                        Some(s) => ClientCommand::PlayFrom {
                            millis: (s.max(0.0) * 1000.0).round() as u64,
                        },
                        None => ClientCommand::Play,
                    });
                }
                if s == State::Init && limits.reconnect && play_started.is_some() {
                    // The session ended under us: the server went away.
                    backoff.lost(Instant::now());
                    continue;
                }
                if s == State::Init {
                    break;
                }
            }
            ClientEvent::Frame(f) => {
                let now = Instant::now();
                first_frame.get_or_insert(now);
                last_frame = Some(now);
                report.width = f.width;
                report.height = f.height;
                if let Some(r) = recorder.as_mut() {
                    r.frame(f.jpeg.clone());
                    if let Some(e) = r.error() {
                        report.errors.push(e.to_string());
                    }
                }
                if let Some(path) = &output.snapshot
                    && report.snapshot.is_none()
                {
                    match write_whole(path, &f.jpeg) {
                        Ok(()) => report.snapshot = Some((path.clone(), f.jpeg.len())),
                        Err(e) => report.errors.push(e),
                    }
                    break;
                }
                if limits.frames.is_some_and(|n| f.number >= n) {
                    break;
                }
            }
            ClientEvent::Stats(s) => report.stats = s,
            ClientEvent::Error(e) => {
                report.errors.push(e.to_string());
                if state == State::Init {
                    break;
                }
            }
            // Nothing came for a while: the end of a file, or (a live
            // stream: no length, and a PLAY reply that says where it
            // plays) a camera that froze.
            ClientEvent::StreamEnded if limits.reconnect && live => {
                report
                    .notices
                    .push("nothing arrives from the live stream; trying again".into());
                backoff.lost(Instant::now());
            }
            ClientEvent::StreamEnded => {
                report.ended = true;
                break;
            }
            ClientEvent::Notice(n) => report.notices.push(n),
            ClientEvent::Records(r) => {
                write_records(&r, &mut frames_csv, &mut packets_csv, &mut report.errors)
            }
            ClientEvent::Timeline(t) => live = t.length_ms.is_none() && t.anchor.is_some(),
            ClientEvent::Wire(_) | ClientEvent::Tpc3(_) => {}
            ClientEvent::Stopped => break,
        }
    }
    if let (Some(a), Some(b)) = (first_frame, last_frame) {
        report.playing_seconds = b.duration_since(a).as_secs_f64();
    }
    report.rss_mb_end = rss_mb();
    // Stopped while SETUP was on its way: let its reply land, so the
    // session it made is torn down rather than left to the server.
    if state == State::Init && play_started.is_none() {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(ev) = events.recv_deadline(deadline) {
            match ev {
                ClientEvent::State { state: s, .. } => {
                    state = s;
                    break;
                }
                ClientEvent::Error(e) => {
                    report.errors.push(e.to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    // TEARDOWN, and take the last counters and the reply.
    let sent_teardown = state != State::Init;
    if sent_teardown {
        client.send(ClientCommand::Teardown);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while state != State::Init {
        match events.recv_deadline(deadline) {
            Ok(ClientEvent::State { state: s, .. }) => state = s,
            Ok(ClientEvent::Stats(s)) => report.stats = s,
            Ok(ClientEvent::Records(r)) => {
                write_records(&r, &mut frames_csv, &mut packets_csv, &mut report.errors)
            }
            Ok(ClientEvent::Error(e)) => {
                report.errors.push(e.to_string());
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    report.torn_down = sent_teardown && state == State::Init;
    client.shutdown(Duration::from_secs(2));
    // The final counters, queued before Stopped, and why the session
    // ended when it ended by itself (the error follows the state).
    for ev in events.try_iter() {
        match ev {
            ClientEvent::Stats(s) => report.stats = s,
            ClientEvent::Error(e) => {
                let text = e.to_string();
                if !report.errors.contains(&text) {
                    report.errors.push(text);
                }
            }
            ClientEvent::Records(r) => {
                write_records(&r, &mut frames_csv, &mut packets_csv, &mut report.errors)
            }
            _ => {}
        }
    }
    for csv in [frames_csv.as_mut(), packets_csv.as_mut()]
        .into_iter()
        .flatten()
    {
        csv.finish(&mut report.errors);
    }
    if let Some(r) = recorder {
        let summary = r.finish();
        // Said as it happened, unless it came at the very end.
        if let Some(e) = &summary.error {
            let text = e.to_string();
            if !report.errors.contains(&text) {
                report.errors.push(text);
            }
        }
        report.recorded = Some(summary);
    }
    report
}

/// Write `bytes` to `path` whole or not at all: into a file beside it,
/// then renamed over it, so no half picture is ever left there.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}
