//! The load generator's measuring, apart from its sockets and clock: each
//! session's [`FrameMeter`] is fed RTP packets with the instant they
//! arrived and tells frames, packet loss and how late each frame came
//! against the session's own schedule; [`Report`] sums many sessions into
//! the figures `streamlab load` prints.
//!
//! A session's schedule is its RTP clock: frame k is due at
//! `t0 + (ts_k - ts_0) / clock`. Its anchor `t0` is the earliest that fits
//! every frame seen (the least `arrival - media time`), so the frame that
//! came soonest after its media time is 0 ms late and the others are late
//! by how much more they took. Sending ahead of time cannot hide lateness:
//! it only moves the anchor.
//!
//! A session's rate error is the least-squares slope of arrival against
//! media time, less one: a server whose frames come 0.1% too slowly drifts
//! 1 ms a second behind its own clock, whatever its jitter.

use std::time::{Duration, Instant};

use crate::protocol::rtp::HEADER_LEN;

/// Sequence number and timestamp of an RTP packet (version 2, at least a
/// fixed header; extensions and CSRCs are allowed and not needed).
fn sequence_and_timestamp(b: &[u8]) -> Option<(u16, u32)> {
    let h = b.get(..HEADER_LEN)?;
    (h[0] >> 6 == 2).then(|| {
        (
            u16::from_be_bytes([h[2], h[3]]),
            u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        )
    })
}

/// Frames counted as on time when their p99 lateness is under this.
pub const ON_TIME: Duration = Duration::from_millis(50);
/// Share of expected frames a session must receive to pass.
pub const FRAMES_NEEDED: f64 = 0.99;

/// One session's reception, fed packet by packet.
#[derive(Debug, Clone)]
pub struct FrameMeter {
    clock: u32,
    /// When PLAY was answered: frames are expected from then on.
    started: Instant,
    first: Option<First>,
    /// Timestamp of the frame being received (its packets share it).
    current: Option<u32>,
    /// Extended timestamp (ticks since the first frame) of the last frame.
    last_ext: i64,
    /// Per frame: arrival minus media time, in microseconds since `first`.
    offsets: Vec<i64>,
    packets: u64,
    highest_seq: Option<i64>,
    first_seq: Option<i64>,
    /// Restarted mid-stream: frames are due from the first instant on, not
    /// a frame period after PLAY.
    mid_stream: bool,
    /// Sums for the least-squares fit of offset (y) against media time
    /// (x), both in seconds: n, x, y, xx, xy.
    fit: [f64; 5],
}

#[derive(Debug, Clone, Copy)]
struct First {
    at: Instant,
    ts: u32,
}

impl FrameMeter {
    /// `clock`: the RTP clock rate (90 kHz for video); `started`: when PLAY
    /// was answered.
    pub fn new(clock: u32, started: Instant) -> FrameMeter {
        FrameMeter {
            clock: clock.max(1),
            started,
            first: None,
            current: None,
            last_ext: 0,
            offsets: Vec::new(),
            packets: 0,
            highest_seq: None,
            first_seq: None,
            mid_stream: false,
            fit: [0.0; 5],
        }
    }

    /// One RTP packet that arrived at `now`. Returns false (and counts
    /// nothing) for bytes that are not RTP.
    pub fn packet(&mut self, now: Instant, bytes: &[u8]) -> bool {
        let Some((sequence, timestamp)) = sequence_and_timestamp(bytes) else {
            return false;
        };
        self.packets += 1;
        self.note_sequence(sequence);
        if self.current == Some(timestamp) {
            return true;
        }
        // A new frame: its first packet is when it began to arrive.
        self.current = Some(timestamp);
        let first = *self.first.get_or_insert(First {
            at: now,
            ts: timestamp,
        });
        // Timestamps wrap at 2^32; a frame is near the last one.
        let ext = if self.offsets.is_empty() {
            0
        } else {
            let last = first.ts.wrapping_add(self.last_ext as u32);
            self.last_ext + timestamp.wrapping_sub(last) as i32 as i64
        };
        self.last_ext = ext;
        let media_us = ext * 1_000_000 / self.clock as i64;
        let arrival_us = now.saturating_duration_since(first.at).as_micros() as i64;
        self.offsets.push(arrival_us - media_us);
        let (x, y) = (media_us as f64 / 1e6, (arrival_us - media_us) as f64 / 1e6);
        for (sum, v) in self.fit.iter_mut().zip([1.0, x, y, x * x, x * y]) {
            *sum += v;
        }
        true
    }

    /// How much slower (positive) or faster than its own RTP clock the
    /// frames came, as a fraction (0.001 = 0.1%); None before two frames
    /// a moment apart.
    pub fn rate_error(&self) -> Option<f64> {
        let [n, x, y, xx, xy] = self.fit;
        let spread = n * xx - x * x;
        // Under a frame period of media time the slope means nothing.
        (n >= 2.0 && spread > 1e-6 * n * n).then(|| (n * xy - x * y) / spread)
    }

    fn note_sequence(&mut self, seq: u16) {
        let ext = match self.highest_seq {
            None => {
                self.first_seq = Some(seq as i64);
                seq as i64
            }
            Some(h) => {
                let delta = seq.wrapping_sub(h as u16) as i16 as i64;
                h + delta
            }
        };
        if self.highest_seq.is_none_or(|h| ext > h) {
            self.highest_seq = Some(ext);
        }
    }

    /// Starts measuring afresh at `now` (the measured window opens):
    /// frames before it, and the anchor they gave, are forgotten.
    pub fn restart(&mut self, now: Instant) {
        *self = FrameMeter::new(self.clock, now);
        self.mid_stream = true;
    }

    /// Frames received so far.
    pub fn frames(&self) -> usize {
        self.offsets.len()
    }

    /// Packets the sequence numbers say were sent, and those that came.
    pub fn packets(&self) -> (u64, u64) {
        let sent = match (self.first_seq, self.highest_seq) {
            (Some(f), Some(h)) => (h - f + 1).max(0) as u64,
            _ => 0,
        };
        (sent.max(self.packets), self.packets)
    }

    /// Each frame's lateness in microseconds against the session's anchor.
    pub fn lateness_us(&self) -> impl Iterator<Item = u64> + '_ {
        let anchor = self.offsets.iter().copied().min().unwrap_or(0);
        self.offsets.iter().map(move |o| (o - anchor) as u64)
    }

    /// Frames due between PLAY and `end` at `fps`.
    pub fn expected(&self, end: Instant, fps: f64) -> u64 {
        let secs = end.saturating_duration_since(self.started).as_secs_f64();
        if self.mid_stream {
            return (secs * fps).round() as u64;
        }
        // The first frame may take a frame period to come.
        ((secs * fps).floor() as u64).saturating_sub(1)
    }
}

/// Figures over many sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub sessions: usize,
    pub playing: usize,
    /// Sessions with at least [`FRAMES_NEEDED`] of their frames and p99
    /// lateness under [`ON_TIME`].
    pub on_time: usize,
    pub frames_expected: u64,
    pub frames_received: u64,
    pub packets_expected: u64,
    pub packets_received: u64,
    pub late_p50_ms: f64,
    pub late_p99_ms: f64,
    pub late_max_ms: f64,
    /// The sessions' rate errors ([`FrameMeter::rate_error`]): the median,
    /// and the one furthest from zero.
    pub rate_error_median: Option<f64>,
    pub rate_error_worst: Option<f64>,
}

impl Report {
    /// Sum the meters of `sessions` sessions (those that never reached PLAY
    /// have no meter) at the end of a run at `fps`.
    pub fn new(sessions: usize, meters: &[FrameMeter], end: Instant, fps: f64) -> Report {
        let mut all: Vec<u64> = Vec::new();
        let mut rates: Vec<f64> = meters.iter().filter_map(FrameMeter::rate_error).collect();
        rates.sort_by(f64::total_cmp);
        let mut r = Report {
            sessions,
            playing: meters.len(),
            ..Report::default()
        };
        for m in meters {
            let expected = m.expected(end, fps);
            let got = m.frames() as u64;
            r.frames_expected += expected;
            r.frames_received += got;
            let (ps, pr) = m.packets();
            r.packets_expected += ps;
            r.packets_received += pr;
            let mut late: Vec<u64> = m.lateness_us().collect();
            late.sort_unstable();
            let p99 = percentile(&late, 0.99);
            if got as f64 >= FRAMES_NEEDED * expected as f64
                && p99 < ON_TIME.as_micros() as u64
                && got > 0
            {
                r.on_time += 1;
            }
            all.extend(late);
        }
        all.sort_unstable();
        r.late_p50_ms = percentile(&all, 0.5) as f64 / 1000.0;
        r.late_p99_ms = percentile(&all, 0.99) as f64 / 1000.0;
        r.late_max_ms = all.last().copied().unwrap_or(0) as f64 / 1000.0;
        r.rate_error_median = rates.get(rates.len() / 2).copied();
        r.rate_error_worst = rates
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()));
        r
    }

    /// Share of expected packets that did not come.
    pub fn loss(&self) -> f64 {
        if self.packets_expected == 0 {
            return 0.0;
        }
        1.0 - self.packets_received as f64 / self.packets_expected as f64
    }

    /// Whether the run passes: at least 99% of sessions on time.
    pub fn passes(&self) -> bool {
        self.sessions > 0 && self.on_time as f64 >= 0.99 * self.sessions as f64
    }
}

/// The value below which `q` of the sorted samples lie (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Share of CPU time the machine's virtual CPUs lost to the hypervisor
/// between two readings of the `cpu` line of /proc/stat.
pub fn steal_share(before: &str, after: &str) -> Option<f64> {
    let b = cpu_fields(before)?;
    let a = cpu_fields(after)?;
    let total: u64 = a.iter().zip(&b).map(|(x, y)| x.saturating_sub(*y)).sum();
    let steal = a.get(7)?.saturating_sub(*b.get(7)?);
    (total > 0).then(|| steal as f64 / total as f64)
}

fn cpu_fields(stat: &str) -> Option<Vec<u64>> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect()
}

/// User and system CPU time (clock ticks) of a process from its
/// /proc/PID/stat line: fields 14 and 15, counted after the command name
/// (which may hold spaces and parentheses).
pub fn process_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtp::RtpHeader;

    fn packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut v = Vec::new();
        RtpHeader {
            marker: false,
            payload_type: 26,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
        }
        .write(&mut v);
        v.extend_from_slice(b"payload");
        v
    }

    #[test]
    fn lateness_is_measured_from_the_earliest_frame() {
        let t0 = Instant::now();
        let mut m = FrameMeter::new(90_000, t0);
        let ms = |n| t0 + Duration::from_millis(n);
        // Frames every 50 ms (4500 ticks); the first is 10 ms late, the
        // third 30 ms, and the second is split in two packets.
        assert!(m.packet(ms(10), &packet(1, 1000)));
        assert!(m.packet(ms(50), &packet(2, 5500)));
        assert!(m.packet(ms(51), &packet(3, 5500)));
        assert!(m.packet(ms(130), &packet(4, 10_000)));
        assert_eq!(m.frames(), 3);
        let late: Vec<u64> = m.lateness_us().collect();
        assert_eq!(late, vec![10_000, 0, 30_000]);
        assert_eq!(m.packets(), (4, 4));
    }

    #[test]
    fn timestamps_and_sequence_numbers_wrap() {
        let t0 = Instant::now();
        let mut m = FrameMeter::new(90_000, t0);
        m.packet(t0, &packet(u16::MAX, u32::MAX - 100));
        m.packet(t0 + Duration::from_millis(50), &packet(1, 4399));
        assert_eq!(m.lateness_us().collect::<Vec<_>>(), vec![0, 0]);
        // Sequence 0 was lost.
        assert_eq!(m.packets(), (3, 2));
    }

    #[test]
    fn a_restart_forgets_what_came_before() {
        let t0 = Instant::now();
        let mut m = FrameMeter::new(90_000, t0);
        m.packet(t0, &packet(1, 0));
        m.packet(t0 + Duration::from_millis(300), &packet(2, 4500));
        let t1 = t0 + Duration::from_secs(1);
        m.restart(t1);
        assert_eq!(m.frames(), 0);
        m.packet(t1, &packet(3, 9000));
        assert_eq!(m.lateness_us().collect::<Vec<_>>(), vec![0]);
        assert_eq!(m.packets(), (1, 1));
        // Mid-stream, every frame of the window is due.
        assert_eq!(m.expected(t1 + Duration::from_secs(1), 20.0), 20);
    }

    #[test]
    fn garbage_is_not_counted() {
        let mut m = FrameMeter::new(90_000, Instant::now());
        assert!(!m.packet(Instant::now(), b"\x00\x01"));
        assert!(!m.packet(Instant::now(), &[]));
        assert_eq!(m.frames(), 0);
    }

    #[test]
    fn a_report_counts_sessions_on_time() {
        let t0 = Instant::now();
        let mut good = FrameMeter::new(90_000, t0);
        for k in 0..20u32 {
            good.packet(
                t0 + Duration::from_millis(50 * k as u64),
                &packet(k as u16, k * 4500),
            );
        }
        let starved = FrameMeter::new(90_000, t0);
        let end = t0 + Duration::from_millis(1000);
        let r = Report::new(3, &[good, starved], end, 20.0);
        assert_eq!((r.sessions, r.playing, r.on_time), (3, 2, 1));
        assert_eq!(r.frames_received, 20);
        assert_eq!(r.frames_expected, 2 * 19);
        assert!(!r.passes());
        assert_eq!(r.late_max_ms, 0.0);
    }

    #[test]
    fn the_rate_error_is_the_drift_against_the_rtp_clock() {
        let t0 = Instant::now();
        let mut slow = FrameMeter::new(90_000, t0);
        let mut on_time = FrameMeter::new(90_000, t0);
        for k in 0..200u32 {
            // 0.1% slow: 50.05 ms a frame; jitter of +-2 ms on top does
            // not move the slope much over 10 s.
            let jitter = if k % 2 == 0 { 2000 } else { 0 };
            slow.packet(
                t0 + Duration::from_micros(50_050 * k as u64 + jitter),
                &packet(k as u16, k * 4500),
            );
            on_time.packet(
                t0 + Duration::from_micros(50_000 * k as u64 + jitter),
                &packet(k as u16, k * 4500),
            );
        }
        let e = slow.rate_error().unwrap();
        assert!((e - 0.001).abs() < 0.00002, "{e}");
        assert!(on_time.rate_error().unwrap().abs() < 0.00002);
        let r = Report::new(2, &[slow, on_time], t0 + Duration::from_secs(10), 20.0);
        assert!((r.rate_error_worst.unwrap() - 0.001).abs() < 0.00002);
        let mut one = FrameMeter::new(90_000, t0);
        one.packet(t0, &packet(1, 0));
        assert_eq!(one.rate_error(), None, "one frame has no slope");
    }

    #[test]
    fn a_meter_restarted_mid_stream_expects_every_frame_of_the_window() {
        let t0 = Instant::now();
        let mut m = FrameMeter::new(90_000, t0);
        m.restart(t0);
        assert_eq!(m.expected(t0 + Duration::from_millis(12_010), 20.0), 240);
        let fresh = FrameMeter::new(90_000, t0);
        assert_eq!(
            fresh.expected(t0 + Duration::from_millis(12_010), 20.0),
            239
        );
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.99), 0);
    }

    #[test]
    fn proc_lines_are_read() {
        let a = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n";
        let b = "cpu  150 0 150 880 0 0 0 20 0 0\n";
        assert_eq!(steal_share(a, b), Some(20.0 / 200.0));
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194304 100 0 0 0 17 5 0 0 20 0 1";
        assert_eq!(process_ticks(stat), Some((17, 5)));
        assert_eq!(process_ticks("garbage"), None);
    }
}
