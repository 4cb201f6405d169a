//! The receiving side of one RTP stream, sans I/O: reorder -> check ->
//! depacketize, with the network analysis and the RTCP receiver report
//! schedule. Packets and instants go in; whole frames, packet and frame
//! records, counters and receiver reports come out. `net::client` owns the
//! sockets and threads around it.
//!
//! The lab's path (seed 000) judges each datagram as it comes; standard
//! RTP over UDP first goes through a small reorder window, and duplicates
//! are dropped before it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::analysis::{
    Analysis, FrameRecord, FrameStatus, HEAD_BYTES, NetStats, PacketRecord, PacketStatus,
    WallAnchor,
};
use crate::protocol::playout::Timed;
use crate::protocol::reorder::Reorder;
use crate::protocol::rtcp::{self, Reception};
use crate::protocol::rtp::{
    self, Accepted, DropReason, JpegFrame, LabDepacketizer, RtpChecker, SsrcRule,
};
use crate::protocol::rtp_jpeg;

/// The RTP clock of RFC 2435 video.
pub const VIDEO_CLOCK: u32 = 90_000;
/// The first receiver report goes this long after the first packet, then
/// one every [`REPORT_EVERY`] (RFC 3550's minimum interval).
pub const FIRST_REPORT_AFTER: Duration = Duration::from_secs(1);
pub const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Records waiting for the checks' word beyond which the oldest is given
/// up (only a reorder window that never releases would get there).
const MAX_PENDING: usize = 4096;

/// How a receiver is set up.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    /// Put packets back in order first (standard RTP over UDP).
    pub reorder: bool,
    /// Our SSRC in receiver reports.
    pub own_ssrc: u32,
    /// Bytes each packet costs on the wire beyond the RTP packet: 28 for
    /// UDP over IPv4, 4 for the `$` framing over TCP.
    pub overhead: u32,
    /// The clock pair for latency through sender reports.
    pub wall: Option<WallAnchor>,
}

/// A whole frame, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFrame {
    pub frame: JpegFrame,
    pub last_seq: u16,
    pub packets: u32,
    /// RTP payload bytes.
    pub bytes: u64,
    /// When its last packet arrived.
    pub arrival: Instant,
    /// Frames started in this session, counting this one.
    pub index: u64,
    /// The sender's time of the frame (RTCP sender reports) to its
    /// arrival, ms.
    pub latency_ms: Option<f64>,
}

impl ReceivedFrame {
    /// Its row in the frames CSV, once its fate is known.
    pub fn record(&self, presented: Option<Instant>, status: FrameStatus) -> FrameRecord {
        FrameRecord {
            index: self.index,
            rtp_timestamp: self.frame.timestamp,
            first_seq: self.frame.seq,
            last_seq: self.last_seq,
            packets: self.packets,
            bytes: self.bytes,
            arrival: self.arrival,
            presented,
            status,
        }
    }
}

impl Timed for ReceivedFrame {
    fn rtp_timestamp(&self) -> u32 {
        self.frame.timestamp
    }
    fn first_seq(&self) -> u16 {
        self.frame.seq
    }
    fn size(&self) -> usize {
        self.frame.jpeg.len()
    }
}

/// Counters kept beside the analysis, under the names the window and the
/// probe have always shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// RTP packets accepted by the checks.
    pub packets: u64,
    /// RTP payload bytes accepted.
    pub bytes: u64,
    /// Packets dropped, by reason name.
    pub dropped: BTreeMap<String, u64>,
    pub ssrc: Option<u32>,
    pub reports_sent: u64,
    /// Times the source started over.
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Lab,
    Rfc2435,
}

/// The frame whose packets are arriving.
#[derive(Debug, Clone, Copy)]
struct Building {
    timestamp: u32,
    first_seq: u16,
    last_seq: u16,
    packets: u32,
    bytes: u64,
    last_at: Instant,
    index: u64,
}

struct Pending {
    seq: Option<u16>,
    record: PacketRecord,
    done: bool,
}

/// Checks and reassembles one RTP stream.
pub struct Receiver {
    config: ReceiverConfig,
    reorder: Option<Reorder>,
    checker: RtpChecker,
    kind: Option<PayloadKind>,
    lab: LabDepacketizer,
    rfc: rtp_jpeg::Depacketizer,
    dimensions: Option<(u16, u16)>,
    reception: Reception,
    next_report: Option<Instant>,
    analysis: Analysis,
    counters: Counters,
    building: Option<Building>,
    frame_index: u64,
    frames: VecDeque<ReceivedFrame>,
    pending: VecDeque<Pending>,
    records: Vec<PacketRecord>,
    frame_records: Vec<FrameRecord>,
}

impl Receiver {
    pub fn new(config: ReceiverConfig) -> Self {
        Receiver {
            config,
            reorder: config.reorder.then(Reorder::default),
            checker: RtpChecker::new(rtp::PT_JPEG, SsrcRule::First),
            kind: None,
            lab: LabDepacketizer::new(),
            rfc: rtp_jpeg::Depacketizer::new(None),
            dimensions: None,
            reception: Reception::default(),
            next_report: None,
            analysis: Analysis::new(VIDEO_CLOCK, config.overhead, config.wall),
            counters: Counters::default(),
            building: None,
            frame_index: 0,
            frames: VecDeque::new(),
            pending: VecDeque::new(),
            records: Vec::new(),
            frame_records: Vec::new(),
        }
    }

    /// What DESCRIBE and SETUP said: the payload type and, for sides over
    /// 2040, the size.
    pub fn set_stream(&mut self, payload_type: u8, dimensions: Option<(u16, u16)>) {
        if payload_type != self.checker.payload_type() || dimensions != self.dimensions {
            self.checker.set_payload_type(payload_type);
            self.dimensions = dimensions;
            self.rfc = rtp_jpeg::Depacketizer::new(dimensions);
        }
    }

    /// The SSRC every packet must carry (TPC-3's session id), or None to
    /// take the first packet's.
    pub fn expect_ssrc(&mut self, ssrc: Option<u32>) {
        self.checker
            .set_ssrc(ssrc.map_or(SsrcRule::First, SsrcRule::Exact));
    }

    fn count_drop(&mut self, name: &str) {
        *self.counters.dropped.entry(name.to_string()).or_default() += 1;
    }

    /// A datagram that is refused before any check (from another address
    /// than the server's): counted and recorded.
    pub fn refuse(&mut self, now: Instant, buf: &[u8], reason: DropReason) {
        self.count_drop(reason.name());
        self.settled(record(now, buf, PacketStatus::Dropped(reason)));
    }

    /// A record whose fate is known on arrival, in its place.
    fn settled(&mut self, record: PacketRecord) {
        self.pending.push_back(Pending {
            seq: None,
            record,
            done: true,
        });
        self.release_records();
    }

    /// One datagram (or interleaved frame) of RTP, arrived at `now`.
    pub fn handle_rtp(&mut self, now: Instant, buf: &[u8]) {
        let status = self.analysis.arrived(now, buf);
        let seq = (buf.len() >= 4).then(|| u16::from_be_bytes([buf[2], buf[3]]));
        let mut rec = record(now, buf, status.unwrap_or(PacketStatus::Ok));
        if self.config.reorder && status == Some(PacketStatus::Duplicate) {
            // A copy: the window would hold it or the checks refuse it as
            // not increasing; say what it is.
            self.count_drop("duplicate");
            rec.status = PacketStatus::Duplicate;
            return self.settled(rec);
        }
        self.pending.push_back(Pending {
            seq,
            record: rec,
            done: false,
        });
        match self.reorder.take() {
            Some(mut r) => {
                let restarts = self.checker.restarts();
                r.push(now, buf, &mut |p| self.accept(now, p));
                if self.checker.restarts() != restarts {
                    // The window waits in the old sequence numbers.
                    r.reset();
                    self.give_up_pending();
                }
                self.reorder = Some(r);
            }
            None => self.accept(now, buf),
        }
        self.release_records();
    }

    /// Time passed: give up on missing packets that were waited for long
    /// enough.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(mut r) = self.reorder.take() {
            r.poll(now, &mut |p| self.accept(now, p));
            self.reorder = Some(r);
            self.release_records();
        }
    }

    /// When [`Receiver::handle_timeout`] or [`Receiver::poll_report`]
    /// has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reorder = self.reorder.as_ref().and_then(Reorder::deadline);
        match (reorder, self.next_report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next whole frame, in the order they completed.
    pub fn poll_frame(&mut self) -> Option<ReceivedFrame> {
        self.frames.pop_front()
    }

    /// Packet records whose fate is known, in arrival order.
    pub fn drain_packet_records(&mut self) -> std::vec::Drain<'_, PacketRecord> {
        self.records.drain(..)
    }

    /// Records of frames that never completed.
    pub fn drain_frame_records(&mut self) -> std::vec::Drain<'_, FrameRecord> {
        self.frame_records.drain(..)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The analysis at `now`.
    pub fn net_stats(&mut self, now: Instant) -> NetStats {
        self.analysis.snapshot(now)
    }

    /// Records behind the window stay until the checks judged them, so
    /// the CSV keeps arrival order with final statuses.
    fn release_records(&mut self) {
        while self.pending.len() > MAX_PENDING {
            if let Some(mut p) = self.pending.pop_front() {
                if !p.done {
                    p.record.status = PacketStatus::Late;
                }
                self.records.push(p.record);
            }
        }
        while self.pending.front().is_some_and(|p| p.done) {
            if let Some(p) = self.pending.pop_front() {
                self.records.push(p.record);
            }
        }
    }

    fn give_up_pending(&mut self) {
        for p in self.pending.iter_mut().filter(|p| !p.done) {
            p.done = true;
            p.record.status = PacketStatus::Late;
        }
    }

    /// The checks' word on a packet: settle its record.
    fn settle(&mut self, buf: &[u8], result: Result<(), DropReason>) {
        let seq = (buf.len() >= 4).then(|| u16::from_be_bytes([buf[2], buf[3]]));
        // The window is taken out while it releases: ask the config.
        let entry = if !self.config.reorder {
            self.pending.back_mut()
        } else {
            self.pending
                .iter_mut()
                .rev()
                .find(|p| !p.done && (p.seq == seq || seq.is_none()))
        };
        let Some(p) = entry else {
            return;
        };
        p.done = true;
        let was = p.record.status;
        p.record.status = match result {
            Ok(()) => was,
            Err(DropReason::Sequence) => match was {
                PacketStatus::Duplicate | PacketStatus::Late => was,
                _ => PacketStatus::Late,
            },
            Err(reason) => PacketStatus::Dropped(reason),
        };
        if was == PacketStatus::Reordered && p.record.status == PacketStatus::Late {
            self.analysis.refused_late();
        }
    }

    fn accept(&mut self, now: Instant, buf: &[u8]) {
        let restarts = self.checker.restarts();
        let accepted = match self.checker.check(buf) {
            Ok(a) => a,
            Err(reason) => {
                self.count_drop(reason.name());
                return self.settle(buf, Err(reason));
            }
        };
        if self.checker.restarts() != restarts {
            self.counters.restarts += 1;
            self.analysis.restarted();
        }
        let h = accepted.packet.header;
        self.reception
            .on_rtp(now, h.ssrc, h.sequence, h.timestamp, VIDEO_CLOCK);
        self.next_report.get_or_insert(now + FIRST_REPORT_AFTER);
        self.counters.packets += 1;
        self.counters.bytes += accepted.packet.payload.len() as u64;
        self.counters.ssrc = Some(h.ssrc);
        self.analysis
            .accepted(accepted.packet.payload.len(), accepted.lost);
        let result = self.depacketize(now, &accepted);
        if let Err(reason) = result {
            self.count_drop(reason.name());
        }
        self.settle(buf, result);
    }

    fn depacketize(&mut self, now: Instant, acc: &Accepted<'_>) -> Result<(), DropReason> {
        let h = acc.packet.header;
        if self.building.is_some_and(|b| b.timestamp != h.timestamp) {
            self.frame_lost();
        }
        let index = &mut self.frame_index;
        let b = self.building.get_or_insert_with(|| {
            *index += 1;
            Building {
                timestamp: h.timestamp,
                first_seq: h.sequence,
                last_seq: h.sequence,
                packets: 0,
                bytes: 0,
                last_at: now,
                index: *index,
            }
        });
        b.last_seq = h.sequence;
        b.packets += 1;
        b.bytes += acc.packet.payload.len() as u64;
        b.last_at = now;
        let kind = *self
            .kind
            .get_or_insert(if acc.packet.payload.starts_with(&[0xff, 0xd8]) {
                PayloadKind::Lab
            } else {
                PayloadKind::Rfc2435
            });
        let result = match kind {
            PayloadKind::Lab => self.lab.push(acc),
            PayloadKind::Rfc2435 => self.rfc.push(acc),
        };
        match result {
            Ok(Some(frame)) => {
                let b = self.building.take().unwrap_or(Building {
                    timestamp: frame.timestamp,
                    first_seq: frame.seq,
                    last_seq: h.sequence,
                    packets: 1,
                    bytes: acc.packet.payload.len() as u64,
                    last_at: now,
                    index: self.frame_index,
                });
                let latency_ms =
                    self.analysis
                        .frame_complete(now, frame.timestamp, frame.jpeg.len(), b.packets);
                self.frames.push_back(ReceivedFrame {
                    // The depacketizer knows where the frame started when
                    // the lab's frames share a timestamp.
                    last_seq: h.sequence,
                    packets: b.packets,
                    bytes: b.bytes,
                    arrival: now,
                    index: b.index,
                    latency_ms,
                    frame,
                });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(reason) => {
                if h.marker {
                    self.frame_lost();
                }
                Err(reason)
            }
        }
    }

    /// The frame being built will not complete.
    fn frame_lost(&mut self) {
        let Some(b) = self.building.take() else {
            return;
        };
        self.analysis.frame_incomplete();
        self.frame_records.push(FrameRecord {
            index: b.index,
            rtp_timestamp: b.timestamp,
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            packets: b.packets,
            bytes: b.bytes,
            arrival: b.last_at,
            presented: None,
            status: FrameStatus::Incomplete,
        });
    }

    /// RTCP from the server: its sender reports feed ours and the latency.
    pub fn handle_rtcp(&mut self, now: Instant, buf: &[u8]) {
        let Some(packets) = rtcp::parse_compound(buf) else {
            return self.count_drop("bad RTCP");
        };
        for p in packets {
            if let Some(ntp) = p.sr_ntp_middle {
                self.reception.on_sender_report(now, ntp);
            }
            if let Some((ntp, rtp)) = p.sr_clock {
                self.analysis.sender_report(ntp, rtp);
            }
        }
    }

    /// A receiver report, when one is due.
    pub fn poll_report(&mut self, now: Instant) -> Option<[u8; 32]> {
        if self.next_report.is_none_or(|t| now < t) {
            return None;
        }
        self.next_report = Some(now + REPORT_EVERY);
        let block = self.reception.report(now)?;
        self.counters.reports_sent += 1;
        Some(rtcp::receiver_report(self.config.own_ssrc, &block))
    }
}

fn record(at: Instant, buf: &[u8], status: PacketStatus) -> PacketRecord {
    let mut head = [0u8; HEAD_BYTES];
    let n = buf.len().min(HEAD_BYTES);
    head[..n].copy_from_slice(&buf[..n]);
    let (seq, timestamp, marker) = if buf.len() >= 12 {
        (
            u16::from_be_bytes([buf[2], buf[3]]),
            u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            buf[1] & 0x80 != 0,
        )
    } else {
        (0, 0, false)
    };
    PacketRecord {
        at,
        seq,
        timestamp,
        marker,
        size: buf.len() as u32,
        status,
        head,
        head_len: n as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// An RFC 2435 packet of frame `ts`: type 1, Q 80, 16x16, `offset`.
    fn rfc(seq: u16, ts: u32, offset: u32, last: bool) -> Vec<u8> {
        let mut p = vec![0x80, if last { 0x80 | 26 } else { 26 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.push(0);
        p.extend_from_slice(&offset.to_be_bytes()[1..]);
        p.extend_from_slice(&[1, 80, 2, 2]);
        p.extend_from_slice(&[0x11; 100]);
        p
    }

    /// Frame n: three packets, 100 bytes of scan each, sequence 3n..3n+2.
    fn frame(n: u16) -> Vec<Vec<u8>> {
        let ts = 3000 * n as u32;
        (0..3)
            .map(|i| rfc(3 * n + i, ts, 100 * i as u32, i == 2))
            .collect()
    }

    fn receiver(reorder: bool) -> Receiver {
        Receiver::new(ReceiverConfig {
            reorder,
            own_ssrc: 1,
            overhead: 28,
            wall: None,
        })
    }

    fn statuses(r: &mut Receiver) -> Vec<(u16, PacketStatus)> {
        r.drain_packet_records()
            .map(|p| (p.seq, p.status))
            .collect()
    }

    #[test]
    fn frames_complete_and_a_missing_fragment_is_an_incomplete_frame() {
        let t = Instant::now();
        let mut r = receiver(true);
        for p in frame(0) {
            r.handle_rtp(t, &p);
        }
        // The first packet waits a moment in case others overtook it.
        r.handle_timeout(t + MS * 21);
        let f = r.poll_frame().expect("frame 0 whole");
        assert_eq!((f.frame.seq, f.last_seq, f.packets, f.index), (0, 2, 3, 1));
        // Frame 1 loses its middle packet; frame 2 comes whole.
        let f1 = frame(1);
        r.handle_rtp(t + MS * 22, &f1[0]);
        r.handle_rtp(t + MS * 22, &f1[2]);
        for p in frame(2) {
            r.handle_rtp(t + MS * 30, &p);
        }
        // The window gives up on sequence 4 once 5 waited 20 ms.
        r.handle_timeout(t + MS * 42);
        let f = r.poll_frame().expect("frame 2 whole");
        assert_eq!((f.frame.seq, f.index), (6, 3));
        assert!(r.poll_frame().is_none());
        let incomplete: Vec<_> = r.drain_frame_records().collect();
        assert_eq!(incomplete.len(), 1);
        assert_eq!(incomplete[0].status, FrameStatus::Incomplete);
        assert_eq!(incomplete[0].index, 2);
        let s = r.net_stats(t + MS * 42);
        assert_eq!(
            (s.expected, s.lost, s.frames_complete, s.frames_incomplete),
            (9, 1, 2, 1)
        );
    }

    #[test]
    fn records_keep_arrival_order_with_what_became_of_each_packet() {
        let t = Instant::now();
        let mut r = receiver(true);
        let f = frame(0);
        // 1 overtakes 0; 2 comes twice; then garbage.
        r.handle_rtp(t, &f[1]);
        r.handle_rtp(t, &f[0]);
        r.handle_rtp(t, &f[2]);
        r.handle_rtp(t, &f[2]);
        r.handle_rtp(t, b"\x00\x01garbage!");
        r.handle_timeout(t + MS * 21);
        use PacketStatus::*;
        assert_eq!(
            statuses(&mut r),
            [
                (1, Ok),
                (0, Reordered),
                (2, Ok),
                (2, Duplicate),
                (0, Dropped(DropReason::TooShort)),
            ]
        );
        assert!(r.poll_frame().is_some(), "put back in order: whole");
        assert_eq!(r.counters().dropped.get("duplicate"), Some(&1));
        let s = r.net_stats(t);
        assert_eq!((s.duplicates, s.reordered, s.late), (1, 1, 0));
    }

    #[test]
    fn a_packet_after_its_gap_was_given_up_is_late() {
        let t = Instant::now();
        let mut r = receiver(true);
        let f = frame(0);
        r.handle_rtp(t, &f[0]);
        r.handle_rtp(t, &f[2]);
        r.handle_timeout(t + MS * 25);
        r.handle_rtp(t + MS * 26, &f[1]);
        use PacketStatus::*;
        // 2 went on alone: its frame had lost its middle.
        assert_eq!(
            statuses(&mut r),
            [(0, Ok), (2, Dropped(DropReason::Fragment)), (1, Late)]
        );
        let s = r.net_stats(t + MS * 26);
        assert_eq!((s.reordered, s.late, s.lost), (1, 1, 0));
    }

    #[test]
    fn the_labs_path_judges_each_datagram_as_it_comes() {
        let t = Instant::now();
        let mut r = receiver(false);
        let f = frame(0);
        r.handle_rtp(t, &f[0]);
        r.handle_rtp(t, &f[0]);
        r.handle_rtp(t, &f[2]);
        r.handle_rtp(t, &f[1]);
        use PacketStatus::*;
        assert_eq!(
            statuses(&mut r),
            [
                (0, Ok),
                (0, Duplicate),
                (2, Dropped(DropReason::Fragment)),
                (1, Late)
            ]
        );
        assert_eq!(
            r.counters().dropped.get("sequence not increasing"),
            Some(&2)
        );
    }
}
