//! What the analysis panel and the RTP inspector show, kept from the
//! engine's events: a point per counters update for the live plots (last
//! 60 s), the last packets for the per-packet view and the inspector, and
//! every frame's record for the window's CSV export. Pure data: no
//! painting, no clock reads (times come from the records and the stats).

use std::collections::VecDeque;
use std::time::Instant;

use crate::net::client::{ClientStats, FrameRecord, PacketRecord, Records, millis_since};

/// How long the live plots look back, in seconds.
pub const PLOT_SECONDS: f64 = 60.0;
/// How long the per-packet view looks back, in seconds.
pub const PACKET_SECONDS: f64 = 5.0;
/// Packets kept for the per-packet view and the inspector.
const MAX_PACKETS: usize = 20_000;
/// Frame records kept for the CSV export (about 9 hours at 30 fps).
const MAX_FRAMES: usize = 1_000_000;

/// One point of every live plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the session's first point.
    pub t: f64,
    pub payload_kbps: f64,
    pub wire_kbps: f64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub frame_jitter_ms: f64,
    pub frame_kb: f64,
    pub buffer_frames: f64,
    pub buffer_ms: f64,
    pub latency_ms: Option<f64>,
}

/// The history of one session.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Stats' arrival instants are not sent, so points are numbered by
    /// the records' clock when there is one, else by the stats count.
    points: VecDeque<Point>,
    start: Option<Instant>,
    pub packets: VecDeque<PacketRecord>,
    pub frames: Vec<FrameRecord>,
    pub origin: Option<Instant>,
    /// The plots stop taking points (the stream goes on).
    pub frozen: bool,
    /// The inspector's packets stop moving (the video goes on).
    pub inspector_frozen: bool,
}

impl History {
    /// A counters update, at `now` (the caller's clock).
    pub fn push_stats(&mut self, now: Instant, s: &ClientStats) {
        if self.frozen {
            return;
        }
        let start = *self.start.get_or_insert(now);
        let t = now.saturating_duration_since(start).as_secs_f64();
        self.points.push_back(Point {
            t,
            payload_kbps: s.net.payload_kbps,
            wire_kbps: s.net.wire_kbps,
            loss_percent: s.net.loss_percent_1s,
            jitter_ms: s.net.jitter_ms,
            frame_jitter_ms: s.net.frame_jitter_ms,
            frame_kb: s.net.frame_bytes as f64 / 1024.0,
            buffer_frames: s.buffer_frames as f64,
            buffer_ms: s.buffer_ms,
            latency_ms: s.net.latency_ms,
        });
        while self.points.front().is_some_and(|p| t - p.t > PLOT_SECONDS) {
            self.points.pop_front();
        }
    }

    /// Records from the engine.
    pub fn push_records(&mut self, r: Records) {
        if r.origin.is_some() {
            self.origin = r.origin;
        }
        if !self.inspector_frozen {
            self.packets.extend(r.packets);
            let newest = self.packets.back().map(|p| p.at);
            while self.packets.len() > MAX_PACKETS
                || self.packets.front().zip(newest).is_some_and(|(p, n)| {
                    n.saturating_duration_since(p.at).as_secs_f64() > PACKET_SECONDS
                })
            {
                self.packets.pop_front();
            }
        }
        let room = MAX_FRAMES.saturating_sub(self.frames.len());
        self.frames.extend(r.frames.into_iter().take(room));
    }

    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// Milliseconds since PLAY's reply.
    pub fn millis(&self, at: Instant) -> f64 {
        millis_since(self.origin, at)
    }

    /// A new session starts.
    pub fn clear(&mut self) {
        *self = History::default();
    }

    /// The frames CSV, as `streamlab probe --csv` writes it.
    pub fn frames_csv(&self) -> String {
        let mut out = String::from(crate::net::probe::FRAMES_CSV_HEADER);
        out.push('\n');
        let mut frames: Vec<&FrameRecord> = self.frames.iter().collect();
        frames.sort_by_key(|f| f.index);
        for f in frames {
            out.push_str(&crate::net::probe::frame_row(self.origin, f));
            out.push('\n');
        }
        out
    }
}
