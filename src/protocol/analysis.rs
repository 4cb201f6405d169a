//! Network analysis of one received RTP stream, for students and scripts:
//! what Wireshark's RTP Stream Analysis shows, computed as packets arrive.
//!
//! Every packet is classified on arrival, before the reorder window and
//! the lab's checks: a copy of one already seen is a duplicate, one that
//! arrives after a higher sequence number is reordered (and late when it
//! came too late to be used). Loss comes from sequence numbers, wrap-aware
//! (RFC 3550 A.3); interarrival jitter is RFC 3550 A.8, per packet and per
//! frame (the packets of one frame share a timestamp, which inflates the
//! per-packet figure). Latency maps RTP time to the sender's wall clock
//! through RTCP sender reports. Time comes in as arguments; nothing here
//! reads a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::rtp::DropReason;

/// How many sequence numbers behind the highest are remembered, to tell
/// a duplicate from a late packet.
const SEEN_WINDOW: u64 = 1024;
/// Latency samples kept for the percentiles.
const LATENCY_SAMPLES: usize = 600;
/// The interval the per-second rates are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketStatus {
    /// Arrived in order and passed the checks.
    Ok,
    /// A copy of a packet already received.
    Duplicate,
    /// Arrived after a packet with a higher sequence number, and was put
    /// back in its place.
    Reordered,
    /// Arrived after its place was given up on (or far too old).
    Late,
    /// Refused by the checks.
    Dropped(DropReason),
}

impl PacketStatus {
    /// The word in the packets CSV.
    pub fn csv(&self) -> String {
        match self {
            PacketStatus::Ok => "ok".into(),
            PacketStatus::Duplicate => "duplicate".into(),
            PacketStatus::Reordered => "reordered".into(),
            PacketStatus::Late => "late".into(),
            PacketStatus::Dropped(r) => format!("dropped:{}", r.name()),
        }
    }
}

/// The first bytes of a packet kept for the inspector: the RTP header and,
/// for RFC 2435, its main, restart and table headers.
pub const HEAD_BYTES: usize = 28;

/// One received packet, as the packets CSV and the inspector show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRecord {
    pub at: Instant,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// The whole RTP packet, header included.
    pub size: u32,
    pub status: PacketStatus,
    pub head: [u8; HEAD_BYTES],
    pub head_len: u8,
}

impl PacketRecord {
    /// The bytes kept of the packet's start.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len as usize]
    }
}

/// What became of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    Presented,
    /// Complete, but after its presentation time: skipped.
    Late,
    /// A fragment was missing: never shown.
    Incomplete,
    /// Complete, but the JPEG did not decode.
    Undecodable,
    /// Dropped from a full playout buffer (the oldest goes first).
    Overflow,
}

impl FrameStatus {
    /// The word in the frames CSV.
    pub fn csv(self) -> &'static str {
        match self {
            FrameStatus::Presented => "presented",
            FrameStatus::Late => "late",
            FrameStatus::Incomplete => "incomplete",
            FrameStatus::Undecodable => "undecodable",
            FrameStatus::Overflow => "overflow",
        }
    }
}

/// One frame, as the frames CSV shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    /// Frames started in this session, counting this one (1-based).
    pub index: u64,
    pub rtp_timestamp: u32,
    pub first_seq: u16,
    pub last_seq: u16,
    pub packets: u32,
    pub bytes: u64,
    /// When its last packet arrived.
    pub arrival: Instant,
    pub presented: Option<Instant>,
    pub status: FrameStatus,
}

/// Maps instants to the wall clock (time since the Unix epoch): the I/O
/// layer reads both clocks once and hands the pair in.
#[derive(Debug, Clone, Copy)]
pub struct WallAnchor {
    pub instant: Instant,
    pub since_epoch: Duration,
}

impl WallAnchor {
    /// Seconds since the Unix epoch at `at`.
    pub fn wall_secs(&self, at: Instant) -> f64 {
        let base = self.since_epoch.as_secs_f64();
        if at >= self.instant {
            base + at.duration_since(self.instant).as_secs_f64()
        } else {
            base - self.instant.duration_since(at).as_secs_f64()
        }
    }
}

/// NTP seconds at the Unix epoch (RFC 3550 uses NTP time in reports).
const NTP_UNIX_OFFSET: f64 = crate::protocol::rtcp::NTP_UNIX_OFFSET as f64;

/// What a sender report says: this RTP time was this wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SenderClock {
    unix_secs: f64,
    rtp: u32,
}

/// Classifies sequence numbers: duplicates, reordering, loss.
#[derive(Debug, Clone, Default)]
struct Sequences {
    /// Extended sequence number of the first packet, and the highest.
    base: Option<u64>,
    highest: u64,
    /// Bit i: highest - i was received.
    seen: u128,
    seen_more: VecDeque<u64>,
    /// Unique packets received in this run.
    received: u64,
    /// Expected and received in earlier runs (before the source restarted).
    expected_before: u64,
    received_before: u64,
}

impl Sequences {
    fn extend(&self, seq: u16) -> u64 {
        let last = self.highest as u16;
        let delta = seq.wrapping_sub(last) as i16 as i64;
        (self.highest as i64 + delta).max(0) as u64
    }

    fn was_seen(&self, ext: u64) -> bool {
        let back = self.highest - ext;
        if back < 128 {
            self.seen & (1u128 << back) != 0
        } else {
            self.seen_more.contains(&ext)
        }
    }

    fn mark(&mut self, ext: u64) {
        let back = self.highest - ext;
        if back < 128 {
            self.seen |= 1u128 << back;
        } else {
            self.seen_more.push_back(ext);
            if self.seen_more.len() > SEEN_WINDOW as usize {
                self.seen_more.pop_front();
            }
        }
    }

    /// A new highest: shift the bitmap, keeping what falls off it.
    fn advance(&mut self, ext: u64) {
        let step = ext - self.highest;
        for i in 0..step.min(128) {
            let back = 127 - i;
            if self.seen & (1u128 << back) != 0 {
                self.seen_more.push_back(self.highest - back);
            }
        }
        while self.seen_more.len() > SEEN_WINDOW as usize {
            self.seen_more.pop_front();
        }
        self.seen = if step >= 128 { 0 } else { self.seen << step };
        self.highest = ext;
        self.seen |= 1;
    }

    /// Classify one arriving sequence number.
    fn classify(&mut self, seq: u16) -> PacketStatus {
        let Some(_) = self.base else {
            self.base = Some(seq as u64 + (1 << 16));
            self.highest = seq as u64 + (1 << 16);
            self.seen = 1;
            self.received = 1;
            return PacketStatus::Ok;
        };
        let ext = self.extend(seq);
        if ext > self.highest {
            self.advance(ext);
            self.received += 1;
            return PacketStatus::Ok;
        }
        if self.highest - ext >= SEEN_WINDOW {
            return PacketStatus::Late;
        }
        if self.base.is_some_and(|b| ext < b) {
            // It overtook the first packet: the stream started here.
            self.base = Some(ext);
        }
        if self.was_seen(ext) {
            return PacketStatus::Duplicate;
        }
        self.mark(ext);
        self.received += 1;
        PacketStatus::Reordered
    }

    /// The source started over: count what was, start afresh.
    fn restart(&mut self) {
        self.expected_before += self.expected_now();
        self.received_before += self.received;
        *self = Sequences {
            expected_before: self.expected_before,
            received_before: self.received_before,
            ..Sequences::default()
        };
    }

    fn expected_now(&self) -> u64 {
        self.base.map_or(0, |b| self.highest + 1 - b)
    }

    fn expected(&self) -> u64 {
        self.expected_before + self.expected_now()
    }

    fn received(&self) -> u64 {
        self.received_before + self.received
    }
}

/// RFC 3550 A.8 interarrival jitter, in timestamp units.
#[derive(Debug, Clone, Copy, Default)]
struct Jitter {
    jitter: f64,
    last: Option<(Instant, u32)>,
}

impl Jitter {
    fn on(&mut self, at: Instant, timestamp: u32, clock_rate: u32) {
        if let Some((t0, ts0)) = self.last {
            let arrival = signed_secs(at, t0) * clock_rate as f64;
            let sent = timestamp.wrapping_sub(ts0) as i32 as f64;
            let d = (arrival - sent).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((at, timestamp));
    }

    fn millis(&self, clock_rate: u32) -> f64 {
        self.jitter / clock_rate as f64 * 1e3
    }
}

fn signed_secs(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64()
    } else {
        -b.duration_since(a).as_secs_f64()
    }
}

/// A sample in the one-second rate window.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    payload: u64,
    wire: u64,
    expected: u64,
    received: u64,
    frames: u64,
}

/// The numbers the window, the probe and the CSV show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetStats {
    /// Packets expected from the sequence numbers (first to highest).
    pub expected: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Expected but never received.
    pub lost: u64,
    pub duplicates: u64,
    /// Arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Arrived too late to be used.
    pub late: u64,
    /// The longest run of consecutive packets lost.
    pub longest_loss_run: u64,
    /// Lost over expected, in percent, since the start and over the last second.
    pub loss_percent: f64,
    pub loss_percent_1s: f64,
    /// Kilobits per second over the last second: RTP payload, and the
    /// whole packets with RTP, UDP and IP headers (or the interleave
    /// header over TCP).
    pub payload_kbps: f64,
    pub wire_kbps: f64,
    /// Whole frames received, and the frames seen with a fragment missing.
    pub frames_complete: u64,
    pub frames_incomplete: u64,
    /// Frames completed per second (last second).
    pub fps_received: f64,
    /// The last complete frame's size in bytes and packets, and the mean
    /// packets per frame.
    pub frame_bytes: u64,
    pub fragments_per_frame: f64,
    /// Mean time between packets and between frames over the last
    /// second, in ms.
    pub packet_interarrival_ms: f64,
    pub frame_interarrival_ms: f64,
    /// RFC 3550 interarrival jitter, per packet (what receiver reports
    /// carry) and per frame (one value per frame: not inflated by the
    /// packets of one frame arriving together).
    pub jitter_ms: f64,
    pub frame_jitter_ms: f64,
    /// Sender's time of a frame (from RTCP sender reports) to its arrival,
    /// ms: the last, and p50/p99 of the recent ones. None until a sender
    /// report came.
    pub latency_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// Counts everything about the stream's packets and frames as they arrive.
#[derive(Debug, Clone)]
pub struct Analysis {
    clock_rate: u32,
    /// Bytes on the wire beyond the RTP packet (IP + UDP, or `$` framing).
    overhead: u32,
    seq: Sequences,
    duplicates: u64,
    reordered: u64,
    late: u64,
    longest_loss_run: u64,
    payload: u64,
    wire: u64,
    frames_complete: u64,
    frames_incomplete: u64,
    frame_bytes: u64,
    frame_packets_total: u64,
    packet_jitter: Jitter,
    frame_jitter: Jitter,
    /// Mean inter-arrival over the window: sums of deltas and counts.
    packet_deltas: VecDeque<(Instant, f64)>,
    frame_deltas: VecDeque<(Instant, f64)>,
    last_packet: Option<Instant>,
    last_frame: Option<Instant>,
    samples: VecDeque<Sample>,
    wall: Option<WallAnchor>,
    sender: Option<SenderClock>,
    latencies: VecDeque<f64>,
    last_latency: Option<f64>,
}

impl Analysis {
    /// `overhead`: bytes each packet costs on the wire beyond the RTP
    /// packet; `wall`: the clock pair for latency (None: no latency).
    pub fn new(clock_rate: u32, overhead: u32, wall: Option<WallAnchor>) -> Self {
        Analysis {
            clock_rate,
            overhead,
            seq: Sequences::default(),
            duplicates: 0,
            reordered: 0,
            late: 0,
            longest_loss_run: 0,
            payload: 0,
            wire: 0,
            frames_complete: 0,
            frames_incomplete: 0,
            frame_bytes: 0,
            frame_packets_total: 0,
            packet_jitter: Jitter::default(),
            frame_jitter: Jitter::default(),
            packet_deltas: VecDeque::new(),
            frame_deltas: VecDeque::new(),
            last_packet: None,
            last_frame: None,
            samples: VecDeque::new(),
            wall,
            sender: None,
            latencies: VecDeque::new(),
            last_latency: None,
        }
    }

    /// One datagram (or interleaved frame) arrived: its status on arrival
    /// (Ok, Duplicate, Reordered or Late; the checks may refuse it later,
    /// see [`Analysis::refused`]). Anything that is not RTP version 2 is
    /// not classified (None).
    pub fn arrived(&mut self, at: Instant, packet: &[u8]) -> Option<PacketStatus> {
        self.wire += (packet.len() as u32 + self.overhead) as u64;
        if let Some(last) = self.last_packet.replace(at) {
            push_delta(&mut self.packet_deltas, at, signed_secs(at, last) * 1e3);
        }
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let status = self.seq.classify(seq);
        match status {
            PacketStatus::Duplicate => self.duplicates += 1,
            PacketStatus::Reordered => self.reordered += 1,
            PacketStatus::Late => self.late += 1,
            _ => {}
        }
        if matches!(status, PacketStatus::Ok | PacketStatus::Reordered) {
            let timestamp = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
            self.packet_jitter.on(at, timestamp, self.clock_rate);
        }
        Some(status)
    }

    /// A packet classified Reordered was refused by the checks as not
    /// increasing: its gap had been given up on, so it was late.
    pub fn refused_late(&mut self) {
        self.late += 1;
    }

    /// The checks accepted a packet after `lost` missing ones.
    pub fn accepted(&mut self, payload_len: usize, lost: u16) {
        self.payload += payload_len as u64;
        self.longest_loss_run = self.longest_loss_run.max(lost as u64);
    }

    /// The source started over (new SSRC or sequence numbers).
    pub fn restarted(&mut self) {
        self.seq.restart();
        self.packet_jitter = Jitter::default();
        self.frame_jitter = Jitter::default();
    }

    /// A whole frame was reassembled from `packets` packets; returns its
    /// latency from the sender's time, ms, once a sender report came.
    pub fn frame_complete(
        &mut self,
        at: Instant,
        timestamp: u32,
        bytes: usize,
        packets: u32,
    ) -> Option<f64> {
        self.frames_complete += 1;
        self.frame_bytes = bytes as u64;
        self.frame_packets_total += packets as u64;
        self.frame_jitter.on(at, timestamp, self.clock_rate);
        if let Some(last) = self.last_frame.replace(at) {
            push_delta(&mut self.frame_deltas, at, signed_secs(at, last) * 1e3);
        }
        if let (Some(wall), Some(sender)) = (self.wall, self.sender) {
            let since_report =
                timestamp.wrapping_sub(sender.rtp) as i32 as f64 / self.clock_rate as f64;
            let latency = (wall.wall_secs(at) - (sender.unix_secs + since_report)) * 1e3;
            self.last_latency = Some(latency);
            self.latencies.push_back(latency);
            if self.latencies.len() > LATENCY_SAMPLES {
                self.latencies.pop_front();
            }
            return Some(latency);
        }
        None
    }

    /// A frame was seen with a fragment missing.
    pub fn frame_incomplete(&mut self) {
        self.frames_incomplete += 1;
    }

    /// An RTCP sender report: NTP time (seconds, fraction) and RTP time.
    pub fn sender_report(&mut self, ntp: (u32, u32), rtp: u32) {
        let unix_secs = ntp.0 as f64 - NTP_UNIX_OFFSET + ntp.1 as f64 / 4_294_967_296.0;
        self.sender = Some(SenderClock { unix_secs, rtp });
    }

    /// The numbers at `now` (the rates over the second before it).
    pub fn snapshot(&mut self, now: Instant) -> NetStats {
        let expected = self.seq.expected();
        let received = self.seq.received();
        let sample = Sample {
            at: now,
            payload: self.payload,
            wire: self.wire,
            expected,
            received,
            frames: self.frames_complete,
        };
        while self
            .samples
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let first = self.samples.front().copied().unwrap_or(sample);
        self.samples.push_back(sample);
        let secs = now.saturating_duration_since(first.at).as_secs_f64();
        let per_sec = |a: u64, b: u64| {
            if secs > 0.0 {
                a.saturating_sub(b) as f64 / secs
            } else {
                0.0
            }
        };
        let lost = expected.saturating_sub(received);
        let percent = |lost: u64, expected: u64| {
            if expected == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / expected as f64
            }
        };
        let window_expected = expected.saturating_sub(first.expected);
        let window_lost = window_expected.saturating_sub(received.saturating_sub(first.received));
        prune(&mut self.packet_deltas, now);
        prune(&mut self.frame_deltas, now);
        let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        NetStats {
            expected,
            received,
            lost,
            duplicates: self.duplicates,
            reordered: self.reordered,
            late: self.late,
            longest_loss_run: self.longest_loss_run,
            loss_percent: percent(lost, expected),
            loss_percent_1s: percent(window_lost, window_expected),
            payload_kbps: per_sec(self.payload, first.payload) * 8.0 / 1e3,
            wire_kbps: per_sec(self.wire, first.wire) * 8.0 / 1e3,
            frames_complete: self.frames_complete,
            frames_incomplete: self.frames_incomplete,
            fps_received: per_sec(self.frames_complete, first.frames),
            frame_bytes: self.frame_bytes,
            fragments_per_frame: if self.frames_complete == 0 {
                0.0
            } else {
                self.frame_packets_total as f64 / self.frames_complete as f64
            },
            packet_interarrival_ms: mean(&self.packet_deltas),
            frame_interarrival_ms: mean(&self.frame_deltas),
            jitter_ms: self.packet_jitter.millis(self.clock_rate),
            frame_jitter_ms: self.frame_jitter.millis(self.clock_rate),
            latency_ms: self.last_latency,
            latency_p50_ms: percentile(&sorted, 0.50),
            latency_p99_ms: percentile(&sorted, 0.99),
        }
    }
}

fn push_delta(deltas: &mut VecDeque<(Instant, f64)>, at: Instant, ms: f64) {
    deltas.push_back((at, ms));
    prune(deltas, at);
}

fn prune(deltas: &mut VecDeque<(Instant, f64)>, now: Instant) {
    while deltas
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW)
    {
        deltas.pop_front();
    }
}

fn mean(deltas: &VecDeque<(Instant, f64)>) -> f64 {
    if deltas.is_empty() {
        0.0
    } else {
        deltas.iter().map(|(_, d)| d).sum::<f64>() / deltas.len() as f64
    }
}

/// The `q` quantile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 26];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[0; 100]);
        p
    }

    #[test]
    fn duplicates_reorders_and_loss_across_the_wrap() {
        let t = Instant::now();
        let mut a = Analysis::new(90_000, 28, None);
        let mut statuses = Vec::new();
        // 65533, 65534, 0 (65535 overtaken), 65535, 0 again, 2 (1 lost), 3.
        for seq in [65533u16, 65534, 0, 65535, 0, 2, 3] {
            statuses.push(a.arrived(t, &packet(seq, 0)).unwrap());
        }
        use PacketStatus::*;
        assert_eq!(
            statuses,
            [Ok, Ok, Ok, Reordered, Duplicate, Ok, Ok],
            "wrap-aware classification"
        );
        let s = a.snapshot(t);
        assert_eq!(s.expected, 7, "65533..=3");
        assert_eq!(s.received, 6);
        assert_eq!(s.lost, 1);
        assert_eq!((s.duplicates, s.reordered), (1, 1));
        assert!(a.arrived(t, b"garbage").is_none());
    }

    #[test]
    fn a_packet_far_behind_is_late_and_a_restart_keeps_the_counts() {
        let t = Instant::now();
        let mut a = Analysis::new(90_000, 28, None);
        for seq in 0..2000u16 {
            a.arrived(t, &packet(seq, 0));
        }
        assert_eq!(a.arrived(t, &packet(10, 0)), Some(PacketStatus::Late));
        assert_eq!(
            a.arrived(t, &packet(1990, 0)),
            Some(PacketStatus::Duplicate)
        );
        a.restarted();
        for seq in 500..510u16 {
            a.arrived(t, &packet(seq, 0));
        }
        let s = a.snapshot(t);
        assert_eq!((s.expected, s.received, s.lost), (2010, 2010, 0));
    }

    #[test]
    fn jitter_matches_rfc3550_a8_by_hand() {
        let t = Instant::now();
        let mut a = Analysis::new(90_000, 28, None);
        // Sent every 10 ms (900 ticks), arriving 0 or 4 ms late in turn.
        let mut want = 0.0f64;
        let mut last_transit: Option<f64> = None;
        for i in 0..40u32 {
            let late = if i % 2 == 1 { 4.0 } else { 0.0 };
            let arrival_ms = 10.0 * i as f64 + late;
            let at = t + Duration::from_micros((arrival_ms * 1e3) as u64);
            a.arrived(at, &packet(i as u16, 900 * i));
            let transit = arrival_ms * 90.0 - 900.0 * i as f64;
            if let Some(l) = last_transit {
                want += ((transit - l).abs() - want) / 16.0;
            }
            last_transit = Some(transit);
        }
        let got = a.snapshot(t + Duration::from_millis(400)).jitter_ms;
        assert!((got - want / 90.0).abs() < 1e-3, "{got} vs {}", want / 90.0);
        assert!(got > 2.0, "4 ms alternating delay shows: {got}");
    }

    #[test]
    fn latency_maps_rtp_time_through_the_sender_report() {
        let t = Instant::now();
        let wall = WallAnchor {
            instant: t,
            since_epoch: Duration::from_secs(1_000_000),
        };
        let mut a = Analysis::new(90_000, 28, Some(wall));
        // The report says RTP 9000 was at Unix 1_000_000 s exactly.
        a.sender_report(((1_000_000.0 + NTP_UNIX_OFFSET) as u32, 0), 9000);
        // A frame of RTP 18000 (0.1 s later) arrives 0.125 s after t.
        a.frame_complete(t + Duration::from_millis(125), 18_000, 1000, 1);
        let s = a.snapshot(t + Duration::from_millis(125));
        let l = s.latency_ms.unwrap();
        assert!((l - 25.0).abs() < 0.01, "{l}");
        assert_eq!(s.latency_p50_ms, Some(l));
    }

    #[test]
    fn rates_over_the_last_second() {
        let t = Instant::now();
        let mut a = Analysis::new(90_000, 28, None);
        a.snapshot(t);
        for i in 0..10u16 {
            let p = packet(i, 0);
            a.arrived(t, &p);
            a.accepted(p.len() - 12, 0);
        }
        let s = a.snapshot(t + Duration::from_millis(500));
        // 10 packets of 100 payload bytes in half a second.
        assert!((s.payload_kbps - 16.0).abs() < 1e-9, "{}", s.payload_kbps);
        assert!((s.wire_kbps - 10.0 * 140.0 * 8.0 * 2.0 / 1e3).abs() < 1e-9);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
