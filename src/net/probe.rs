//! Headless playing for `streamlab probe`: SETUP, PLAY, count what arrives,
//! TEARDOWN on the way out (Ctrl-C too), and summarise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use crate::net::client::{ClientCommand, ClientConfig, ClientEvent, ClientHandle, ClientStats};
use crate::protocol::State;

/// When to stop playing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeLimits {
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this long playing.
    pub seconds: Option<f64>,
    /// PLAY from this point of the stream, in seconds (standard RTSP).
    pub start: Option<f64>,
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
        serde_json::json!({
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
            "width": self.width,
            "height": self.height,
            "ended": self.ended,
            "torn_down": self.torn_down,
            "errors": self.errors,
            "notices": self.notices,
        })
    }

    pub fn summary(&self) -> String {
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

/// Play `config` headless until a limit, the end of the stream, an error
/// that ends the session, or `cancel` fires.
pub fn probe(config: ClientConfig, limits: ProbeLimits, cancel: &Receiver<()>) -> ProbeReport {
    let client = ClientHandle::spawn(config, || {});
    let mut report = ProbeReport::default();
    let events = client.events().clone();
    let mut state = State::Init;
    let mut first_frame: Option<Instant> = None;
    let mut last_frame: Option<Instant> = None;
    let mut play_started: Option<Instant> = None;
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
        let ev = select! {
            recv(events) -> ev => match ev { Ok(ev) => ev, Err(_) => break },
            recv(cancel) -> _ => break,
            default(deadline.saturating_duration_since(Instant::now())) => break,
        };
        match ev {
            ClientEvent::State { state: s, .. } => {
                state = s;
                if s == State::Ready && play_started.is_none() {
                    play_started = Some(Instant::now());
                    client.send(match limits.start {
                        Some(s) => ClientCommand::PlayFrom {
                            millis: (s.max(0.0) * 1000.0).round() as u64,
                        },
                        None => ClientCommand::Play,
                    });
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
            ClientEvent::StreamEnded => {
                report.ended = true;
                break;
            }
            ClientEvent::Notice(n) => report.notices.push(n),
            ClientEvent::Wire(_) | ClientEvent::Timeline(_) => {}
            ClientEvent::Stopped => break,
        }
    }
    if let (Some(a), Some(b)) = (first_frame, last_frame) {
        report.playing_seconds = b.duration_since(a).as_secs_f64();
    }
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
    // The final counters, queued before Stopped.
    for ev in events.try_iter() {
        if let ClientEvent::Stats(s) = ev {
            report.stats = s;
        }
    }
    report
}
