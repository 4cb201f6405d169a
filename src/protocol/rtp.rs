//! RTP (RFC 3550) headers: writing them, and checking received packets the
//! way the lab asks (seed 000: V, P, X, CC, M, PT, a sequence number that
//! increases with wrap-around, a plausible timestamp, the expected SSRC),
//! each failure a distinct [`DropReason`]. Also the lab's payload: one whole
//! JPEG per packet, or, for frames too big for one datagram, consecutive
//! packets with one timestamp and the marker bit on the last.

use std::fmt;

/// Size of an RTP header without CSRCs or extension.
pub const HEADER_LEN: usize = 12;
/// RTP payload type for JPEG (RFC 3551).
pub const PT_JPEG: u8 = 26;
/// Largest JPEG frame the lab depacketizer will reassemble.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// A timestamp step larger than this between consecutive packets is not
/// plausible: ten minutes at 90 kHz (and far beyond any lab clock step).
pub const MAX_TIMESTAMP_STEP: u32 = 90_000 * 600;

/// The fixed RTP header fields we send and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Append the 12-byte header (V=2, P=0, X=0, CC=0) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes());
    }

    /// Write the 12-byte header over `out[..12]` (a sender filling the
    /// same buffer for packet after packet).
    pub fn write_into(&self, out: &mut [u8]) {
        if let Some(head) = out.get_mut(..HEADER_LEN) {
            head.copy_from_slice(&self.bytes());
        }
    }

    /// The 12 bytes of the header.
    pub fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = 0x80;
        b[1] = ((self.marker as u8) << 7) | (self.payload_type & 0x7f);
        b[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        b[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        b
    }
}

/// Why a received RTP packet was dropped. Each is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than an RTP header (or than its CSRC list and extension).
    TooShort,
    /// Version field is not 2.
    Version,
    /// Padding bit set (the lab sends none) or padding longer than the packet.
    Padding,
    /// Extension bit set (the lab sends none).
    Extension,
    /// CSRC count is not 0.
    CsrcCount,
    /// Marker bit set where the payload does not end a frame.
    Marker,
    /// Payload type is not JPEG (26).
    PayloadType,
    /// Sequence number not above the last one (duplicate, late or reordered).
    Sequence,
    /// Timestamp went backwards or jumped implausibly far.
    Timestamp,
    /// SSRC differs from the expected one.
    Ssrc,
    /// Sent from an address other than the server's.
    Source,
    /// A fragment of a frame whose start was lost, or a frame left
    /// incomplete by a lost fragment.
    Fragment,
    /// A payload that is not a JPEG (no FFD8 where a frame starts).
    NotJpeg,
    /// A frame larger than [`MAX_FRAME`].
    FrameTooLarge,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TooShort => "too short",
            DropReason::Version => "bad version",
            DropReason::Padding => "padding set",
            DropReason::Extension => "extension set",
            DropReason::CsrcCount => "CSRC count not 0",
            DropReason::Marker => "unexpected marker",
            DropReason::PayloadType => "payload type not 26",
            DropReason::Sequence => "sequence not increasing",
            DropReason::Timestamp => "implausible timestamp",
            DropReason::Ssrc => "wrong SSRC",
            DropReason::Source => "wrong source address",
            DropReason::Fragment => "incomplete frame",
            DropReason::NotJpeg => "not a JPEG",
            DropReason::FrameTooLarge => "frame too large",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed packet: the header and where the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: RtpHeader,
    pub payload: &'a [u8],
}

/// Parse the fixed header strictly, as the lab's checks want: V=2, P=0,
/// X=0, CC=0.
pub fn parse_strict(buf: &[u8]) -> Result<Packet<'_>, DropReason> {
    if buf.len() < HEADER_LEN {
        return Err(DropReason::TooShort);
    }
    let b0 = buf[0];
    if b0 >> 6 != 2 {
        return Err(DropReason::Version);
    }
    if b0 & 0x20 != 0 {
        return Err(DropReason::Padding);
    }
    if b0 & 0x10 != 0 {
        return Err(DropReason::Extension);
    }
    if b0 & 0x0f != 0 {
        return Err(DropReason::CsrcCount);
    }
    Ok(Packet {
        header: RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7f,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        },
        payload: &buf[HEADER_LEN..],
    })
}

/// What the checker expects of the SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsrcRule {
    /// Lock on to the first SSRC seen.
    First,
    /// Exactly this one (seed 000: the session id).
    Exact(u32),
}

/// Refused packets in an unbroken run (same SSRC, sequence numbers one
/// apart, plausible timestamp steps) after which the checker takes them
/// for the source starting over, as RFC 3550's appendix A.1 does after a
/// big jump; stricter than its two, so a stray packet, or a replay of
/// fewer packets than this, never moves it. A camera that restarts its
/// encoder (new sequence numbers, or a new SSRC) keeps playing instead of
/// being refused forever.
pub const RESTART_AFTER: u32 = 4;

/// Checks each received packet against the one before, as seed 000 asks.
#[derive(Debug, Clone)]
pub struct RtpChecker {
    payload_type: u8,
    ssrc: SsrcRule,
    /// The SSRC came from the traffic ([`SsrcRule::First`]), so a source
    /// that starts over with a new one may move it; one given is kept.
    learned: bool,
    last: Option<(u16, u32)>,
    /// The run of refused packets that may be a restart.
    run: Option<Run>,
    restarts: u64,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    len: u32,
}

/// A packet that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted<'a> {
    pub packet: Packet<'a>,
    /// Packets missing between the previous accepted one and this one.
    pub lost: u16,
}

impl RtpChecker {
    pub fn new(payload_type: u8, ssrc: SsrcRule) -> Self {
        RtpChecker {
            payload_type,
            ssrc,
            learned: ssrc == SsrcRule::First,
            last: None,
            run: None,
            restarts: 0,
        }
    }

    /// How many times the source started over (see [`RESTART_AFTER`]).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Expect another SSRC (TPC-3: exactly the session id, once the
    /// handshake gave it).
    pub fn set_ssrc(&mut self, ssrc: SsrcRule) {
        if ssrc != self.ssrc || self.learned != (ssrc == SsrcRule::First) {
            self.ssrc = ssrc;
            self.learned = ssrc == SsrcRule::First;
            self.run = None;
        }
    }

    /// Expect another payload type (a camera's SDP may name a dynamic one).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.payload_type = pt;
    }

    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Check one datagram. On success the checker remembers its sequence
    /// number and timestamp.
    pub fn check<'a>(&mut self, buf: &'a [u8]) -> Result<Accepted<'a>, DropReason> {
        let packet = parse_strict(buf)?;
        let h = packet.header;
        if h.payload_type != self.payload_type {
            return Err(DropReason::PayloadType);
        }
        let lost = match self.against_last(&h) {
            Ok(lost) => lost,
            Err(DropReason::Ssrc) if !self.learned => return Err(DropReason::Ssrc),
            Err(reason) => {
                if !self.restarting(&h) {
                    return Err(reason);
                }
                self.restarts += 1;
                if self.learned {
                    self.ssrc = SsrcRule::Exact(h.ssrc);
                }
                0
            }
        };
        if self.ssrc == SsrcRule::First {
            self.ssrc = SsrcRule::Exact(h.ssrc);
        }
        self.run = None;
        self.last = Some((h.sequence, h.timestamp));
        Ok(Accepted { packet, lost })
    }

    /// SSRC, sequence number and timestamp against the last accepted
    /// packet: the packets lost in between, or why it is refused.
    fn against_last(&self, h: &RtpHeader) -> Result<u16, DropReason> {
        if let SsrcRule::Exact(s) = self.ssrc
            && s != h.ssrc
        {
            return Err(DropReason::Ssrc);
        }
        let Some((seq, ts)) = self.last else {
            return Ok(0);
        };
        let step = h.sequence.wrapping_sub(seq);
        if step == 0 || step > 0x8000 {
            return Err(DropReason::Sequence);
        }
        if h.timestamp.wrapping_sub(ts) > MAX_TIMESTAMP_STEP {
            return Err(DropReason::Timestamp);
        }
        Ok(step - 1)
    }

    /// A refused packet extends the run it follows (or starts one); true
    /// when the run is long enough to be the source starting over.
    fn restarting(&mut self, h: &RtpHeader) -> bool {
        let follows = self.run.is_some_and(|r| {
            r.ssrc == h.ssrc
                && h.sequence == r.seq.wrapping_add(1)
                && h.timestamp.wrapping_sub(r.timestamp) <= MAX_TIMESTAMP_STEP
        });
        let len = if follows {
            self.run.map_or(1, |r| r.len + 1)
        } else {
            1
        };
        self.run = Some(Run {
            ssrc: h.ssrc,
            seq: h.sequence,
            timestamp: h.timestamp,
            len,
        });
        len >= RESTART_AFTER
    }
}

/// A reassembled JPEG frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegFrame {
    pub jpeg: Vec<u8>,
    /// Sequence number of the frame's first packet.
    pub seq: u16,
    pub timestamp: u32,
}

/// Reassembles the lab's whole-JPEG payloads (and our split form of them
/// for frames too big for one datagram).
#[derive(Debug, Default)]
pub struct LabDepacketizer {
    partial: Option<JpegFrame>,
}

impl LabDepacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Push an accepted packet. Returns a complete frame, nothing yet, or
    /// why this packet (and any partial frame before it) was dropped.
    pub fn push(&mut self, acc: &Accepted<'_>) -> Result<Option<JpegFrame>, DropReason> {
        let h = acc.packet.header;
        let payload = acc.packet.payload;
        let starts = payload.starts_with(&[0xff, 0xd8]);
        let ends = payload.ends_with(&[0xff, 0xd9]);
        if starts {
            let had_partial = self.partial.take().is_some();
            let frame = JpegFrame {
                jpeg: payload.to_vec(),
                seq: h.sequence,
                timestamp: h.timestamp,
            };
            if ends || h.marker {
                if !ends {
                    return Err(DropReason::Marker);
                }
                return Ok(Some(frame));
            }
            self.partial = Some(frame);
            return if had_partial {
                Err(DropReason::Fragment)
            } else {
                Ok(None)
            };
        }
        let Some(mut frame) = self.partial.take() else {
            return Err(if h.marker || acc.lost > 0 {
                DropReason::Fragment
            } else {
                DropReason::NotJpeg
            });
        };
        if acc.lost > 0 || h.timestamp != frame.timestamp {
            return Err(DropReason::Fragment);
        }
        if frame.jpeg.len() + payload.len() > MAX_FRAME {
            return Err(DropReason::FrameTooLarge);
        }
        frame.jpeg.extend_from_slice(payload);
        if h.marker {
            if !ends {
                return Err(DropReason::Fragment);
            }
            return Ok(Some(frame));
        }
        self.partial = Some(frame);
        Ok(None)
    }
}

/// Split one JPEG into lab-style RTP packets of at most `max_payload`
/// bytes: one packet when it fits (marker 0, as the lab sends), otherwise
/// consecutive packets with one timestamp and the marker on the last.
/// Returns the next sequence number.
pub fn packetize_lab(
    jpeg: &[u8],
    max_payload: usize,
    mut header: RtpHeader,
    mut emit: impl FnMut(&[u8]),
) -> u16 {
    let max_payload = max_payload.max(1);
    let mut buf = Vec::with_capacity(HEADER_LEN + jpeg.len().min(max_payload));
    let chunks = jpeg.len().div_ceil(max_payload).max(1);
    for (i, chunk) in jpeg.chunks(max_payload).enumerate() {
        buf.clear();
        header.marker = chunks > 1 && i == chunks - 1;
        header.write(&mut buf);
        buf.extend_from_slice(chunk);
        emit(&buf);
        header.sequence = header.sequence.wrapping_add(1);
    }
    header.sequence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        RtpHeader {
            marker,
            payload_type: PT_JPEG,
            sequence: seq,
            timestamp: ts,
            ssrc: 7,
        }
        .write(&mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn an_ssrc_given_later_is_the_only_one_accepted() {
        // TPC-3: the session id comes after the port is open.
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        c.set_ssrc(SsrcRule::Exact(9));
        assert_eq!(c.check(&pkt(1, 10, false, b"x")), Err(DropReason::Ssrc));
        let mut p = pkt(2, 10, false, b"x");
        p[8..12].copy_from_slice(&9u32.to_be_bytes());
        assert!(c.check(&p).is_ok());
        // A run of the wrong SSRC never takes over a given one.
        for seq in 3..3 + 2 * RESTART_AFTER as u16 {
            assert_eq!(c.check(&pkt(seq, 10, false, b"x")), Err(DropReason::Ssrc));
        }
    }

    #[test]
    fn header_round_trip() {
        let p = pkt(0xfffe, 0x01020304, true, b"xy");
        let parsed = parse_strict(&p).unwrap();
        assert_eq!(parsed.header.sequence, 0xfffe);
        assert!(parsed.header.marker);
        assert_eq!(parsed.payload, b"xy");
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let good = pkt(1, 1, false, b"\xff\xd8\xff\xd9");
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::Exact(7));
        let mutate = |i: usize, f: fn(u8) -> u8| {
            let mut p = good.clone();
            p[i] = f(p[i]);
            p
        };
        assert_eq!(c.check(&good[..11]), Err(DropReason::TooShort));
        assert_eq!(c.check(&mutate(0, |b| b & 0x3f)), Err(DropReason::Version));
        assert_eq!(c.check(&mutate(0, |b| b | 0x20)), Err(DropReason::Padding));
        assert_eq!(
            c.check(&mutate(0, |b| b | 0x10)),
            Err(DropReason::Extension)
        );
        assert_eq!(
            c.check(&mutate(0, |b| b | 0x03)),
            Err(DropReason::CsrcCount)
        );
        assert_eq!(c.check(&mutate(1, |_| 96)), Err(DropReason::PayloadType));
        assert_eq!(c.check(&mutate(11, |_| 8)), Err(DropReason::Ssrc));
        assert!(c.check(&good).is_ok());
        assert_eq!(c.check(&good), Err(DropReason::Sequence));
        assert_eq!(
            c.check(&pkt(2, 1 + MAX_TIMESTAMP_STEP + 1, false, b"")),
            Err(DropReason::Timestamp)
        );
        assert_eq!(c.check(&pkt(2, 0, false, b"")), Err(DropReason::Timestamp));
    }

    #[test]
    fn sequence_wraps_and_counts_loss() {
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        assert!(c.check(&pkt(65534, 0, false, b"")).is_ok());
        assert_eq!(c.check(&pkt(1, 0, false, b"")).unwrap().lost, 2);
        assert_eq!(
            c.check(&pkt(65535, 0, false, b"")),
            Err(DropReason::Sequence)
        );
    }

    #[test]
    fn a_source_that_starts_over_is_followed_after_a_run() {
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        for seq in 40_000..40_010 {
            assert!(c.check(&pkt(seq, 9_000, false, b"")).is_ok());
        }
        // New sequence numbers "behind" the old ones: refused until the
        // run is long enough, then followed, loss counted from there.
        for seq in 30_000..30_000 + RESTART_AFTER as u16 - 1 {
            assert_eq!(
                c.check(&pkt(seq, 500, false, b"")),
                Err(DropReason::Sequence)
            );
        }
        let restart = 30_000 + RESTART_AFTER as u16 - 1;
        assert_eq!(c.check(&pkt(restart, 500, false, b"")).unwrap().lost, 0);
        assert_eq!(c.restarts(), 1);
        assert_eq!(c.check(&pkt(restart + 2, 500, false, b"")).unwrap().lost, 1);
        assert_eq!(
            c.check(&pkt(restart - 100, 500, false, b"")),
            Err(DropReason::Sequence),
            "judged against the new stream now"
        );
        // A new SSRC learned from traffic moves the same way.
        let mut with_ssrc = |seq: u16, ssrc: u8| {
            let mut p = pkt(seq, 0, false, b"");
            p[11] = ssrc;
            c.check(&p).map(|a| a.packet.header.ssrc)
        };
        for seq in 7..7 + RESTART_AFTER as u16 - 1 {
            assert_eq!(with_ssrc(seq, 9), Err(DropReason::Ssrc));
        }
        assert_eq!(with_ssrc(7 + RESTART_AFTER as u16 - 1, 9), Ok(9));
        assert_eq!(
            with_ssrc(7 + RESTART_AFTER as u16, 7),
            Err(DropReason::Ssrc)
        );
    }

    #[test]
    fn strays_and_broken_runs_never_restart() {
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        assert!(c.check(&pkt(1000, 0, false, b"")).is_ok());
        // Replays and duplicates out of order, and a run broken each time
        // before it is long enough, interleaved with the real stream.
        for round in 0..20u16 {
            let stray = 10 + round * 7;
            for k in 0..RESTART_AFTER as u16 - 1 {
                assert!(c.check(&pkt(stray + k, 0, false, b"")).is_err());
            }
            assert!(c.check(&pkt(1001 + round, 0, false, b"")).is_ok());
        }
        assert_eq!(c.restarts(), 0);
        // An SSRC given (the lab's session id) is never moved.
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::Exact(7));
        for seq in 1..20 {
            let mut p = pkt(seq, 0, false, b"");
            p[11] = 9;
            assert_eq!(c.check(&p), Err(DropReason::Ssrc));
        }
    }

    #[test]
    fn ssrc_locks_on_first() {
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        assert!(c.check(&pkt(1, 0, false, b"")).is_ok());
        let mut other = pkt(2, 0, false, b"");
        other[11] = 9;
        assert_eq!(c.check(&other), Err(DropReason::Ssrc));
    }

    #[test]
    fn lab_fragments_reassemble_and_a_lost_one_drops_the_frame() {
        let jpeg: Vec<u8> = [&[0xff, 0xd8][..], &[5u8; 100], &[0xff, 0xd9]].concat();
        let mut packets = Vec::new();
        let header = RtpHeader {
            marker: false,
            payload_type: PT_JPEG,
            sequence: 10,
            timestamp: 99,
            ssrc: 7,
        };
        let next = packetize_lab(&jpeg, 30, header, |p| packets.push(p.to_vec()));
        assert_eq!(next, 14);
        assert_eq!(packets.len(), 4);
        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = LabDepacketizer::new();
        let mut out = Vec::new();
        for p in &packets {
            let acc = c.check(p).unwrap();
            if let Some(f) = d.push(&acc).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].jpeg, jpeg);
        assert_eq!(out[0].seq, 10);

        let mut c = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = LabDepacketizer::new();
        let results: Vec<_> = [0, 2, 3]
            .iter()
            .map(|&i| d.push(&c.check(&packets[i]).unwrap()))
            .collect();
        assert_eq!(results[0], Ok(None));
        assert_eq!(results[1], Err(DropReason::Fragment));
        assert_eq!(results[2], Err(DropReason::Fragment));
    }

    #[test]
    fn whole_jpeg_is_one_packet_without_marker() {
        let jpeg = [0xff, 0xd8, 1, 2, 0xff, 0xd9];
        let mut packets = Vec::new();
        let header = RtpHeader {
            marker: true,
            payload_type: PT_JPEG,
            sequence: 1,
            timestamp: 0,
            ssrc: 0,
        };
        packetize_lab(&jpeg, 1000, header, |p| packets.push(p.to_vec()));
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0][1], PT_JPEG);
    }
}
