//! RTCP (RFC 3550 section 6): the sender reports our server sends, so
//! players can map RTP time to wall-clock time, and the receiver reports our
//! client sends, which also keep a session alive. Reading is only as deep as
//! telling a report from garbage and whose SSRC it names.

/// RTCP packet types we write or read.
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;

/// Seconds between 1900 (NTP's epoch) and 1970 (Unix's).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An NTP timestamp (seconds and fraction since 1900) from Unix time.
pub fn ntp_from_unix(unix: std::time::Duration) -> (u32, u32) {
    let secs = unix.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs as u32, frac as u32)
}

/// A sender report with no report blocks (we receive nothing).
pub fn sender_report(
    ssrc: u32,
    ntp: (u32, u32),
    rtp_time: u32,
    packets: u32,
    octets: u32,
) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0] = 0x80;
    p[1] = PT_SR;
    p[2..4].copy_from_slice(&6u16.to_be_bytes());
    p[4..8].copy_from_slice(&ssrc.to_be_bytes());
    p[8..12].copy_from_slice(&ntp.0.to_be_bytes());
    p[12..16].copy_from_slice(&ntp.1.to_be_bytes());
    p[16..20].copy_from_slice(&rtp_time.to_be_bytes());
    p[20..24].copy_from_slice(&packets.to_be_bytes());
    p[24..28].copy_from_slice(&octets.to_be_bytes());
    p
}

/// What a receiver knows about one source, for its report block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceptionStats {
    pub source_ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time, and the delay since it in 1/65536 s.
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// A receiver report with one report block.
pub fn receiver_report(ssrc: u32, s: &ReceptionStats) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 0x81;
    p[1] = PT_RR;
    p[2..4].copy_from_slice(&7u16.to_be_bytes());
    p[4..8].copy_from_slice(&ssrc.to_be_bytes());
    p[8..12].copy_from_slice(&s.source_ssrc.to_be_bytes());
    let lost = s.cumulative_lost.min(0x7f_ffff);
    p[12] = s.fraction_lost;
    p[13..16].copy_from_slice(&lost.to_be_bytes()[1..]);
    p[16..20].copy_from_slice(&s.highest_seq.to_be_bytes());
    p[20..24].copy_from_slice(&s.jitter.to_be_bytes());
    p[24..28].copy_from_slice(&s.last_sr.to_be_bytes());
    p[28..32].copy_from_slice(&s.delay_since_last_sr.to_be_bytes());
    p
}

/// What a receiver counts about the source it hears, for its receiver
/// reports: loss from sequence numbers (RFC 3550 A.3) and interarrival
/// jitter (A.8). Packets come in after the checker, so in order; the
/// arrival time comes in as an argument.
#[derive(Debug, Clone, Default)]
pub struct Reception {
    source: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// In timestamp units, scaled as the RFC's float.
    jitter: f64,
    last_transit: Option<i32>,
    epoch: Option<std::time::Instant>,
    last_sr: Option<(u32, std::time::Instant)>,
}

impl Reception {
    /// One accepted RTP packet, arrived at `now`, of a stream whose clock
    /// ticks `clock_rate` times a second (90 000 for video).
    pub fn on_rtp(
        &mut self,
        now: std::time::Instant,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        clock_rate: u32,
    ) {
        if self.source != Some(ssrc) {
            *self = Reception {
                source: Some(ssrc),
                base_seq: seq as u32,
                max_seq: seq,
                epoch: Some(now),
                last_sr: self.last_sr,
                ..Reception::default()
            };
        } else {
            let step = seq.wrapping_sub(self.max_seq);
            if step < 0x8000 {
                if seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = seq;
            }
        }
        self.received += 1;
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = (now.duration_since(epoch).as_secs_f64() * clock_rate as f64) as u64 as u32;
        let transit = arrival.wrapping_sub(timestamp) as i32;
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// A sender report from the source arrived at `now`.
    pub fn on_sender_report(&mut self, now: std::time::Instant, ntp_middle: u32) {
        self.last_sr = Some((ntp_middle, now));
    }

    /// Packets missing so far.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    fn expected(&self) -> u64 {
        if self.source.is_none() {
            return 0;
        }
        (self.cycles as u64 + self.max_seq as u64 + 1).saturating_sub(self.base_seq as u64)
    }

    /// The report block for a receiver report sent at `now`; None until a
    /// packet was heard. Each call starts a new interval for "fraction lost".
    pub fn report(&mut self, now: std::time::Instant) -> Option<ReceptionStats> {
        let source_ssrc = self.source?;
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior.min(expected);
        let received_interval = self.received - self.received_prior.min(self.received);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((ntp, at)) => (ntp, (now.duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        Some(ReceptionStats {
            source_ssrc,
            fraction_lost,
            cumulative_lost: self.lost().min(0x7f_ffff) as u32,
            highest_seq: self.cycles.wrapping_add(self.max_seq as u32),
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// One RTCP packet read from a compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket {
    pub packet_type: u8,
    pub ssrc: u32,
    /// For a sender report: the middle 32 bits of its NTP time.
    pub sr_ntp_middle: Option<u32>,
    /// For a sender report: its NTP time (seconds, fraction) and the RTP
    /// time that corresponds to it.
    pub sr_clock: Option<((u32, u32), u32)>,
}

/// Read the packets of a compound RTCP datagram; None if it is not RTCP.
pub fn parse_compound(mut buf: &[u8]) -> Option<Vec<RtcpPacket>> {
    let mut out = Vec::new();
    while buf.len() >= 8 {
        if buf[0] >> 6 != 2 || !(192..=223).contains(&buf[1]) {
            return None;
        }
        let len = (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1) * 4;
        if len > buf.len() {
            return None;
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let sr_ntp_middle = (buf[1] == PT_SR && len >= 16)
            .then(|| u32::from_be_bytes([buf[10], buf[11], buf[12], buf[13]]));
        let sr_clock = (buf[1] == PT_SR && len >= 20).then(|| ((word(8), word(12)), word(16)));
        out.push(RtcpPacket {
            packet_type: buf[1],
            ssrc,
            sr_ntp_middle,
            sr_clock,
        });
        buf = &buf[len..];
    }
    (!out.is_empty() && buf.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let sr = sender_report(7, (1, 2), 3, 4, 5);
        let p = parse_compound(&sr).unwrap();
        assert_eq!(p[0].packet_type, PT_SR);
        assert_eq!(p[0].ssrc, 7);
        assert_eq!(p[0].sr_clock, Some(((1, 2), 3)));
        let rr = receiver_report(9, &ReceptionStats::default());
        let both = [&sr[..], &rr[..]].concat();
        let p = parse_compound(&both).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].packet_type, PT_RR);
        assert!(parse_compound(b"\x80\x1a\x00\x01garbage").is_none());
        assert!(parse_compound(&sr[..20]).is_none());
    }

    #[test]
    fn reception_counts_loss_wrap_and_jitter() {
        use std::time::{Duration, Instant};
        let t = Instant::now();
        let mut r = Reception::default();
        assert!(r.report(t).is_none(), "nothing heard yet");
        // 10 packets, one every 10 ms = 900 ticks, seq 65530..=65535, 0..=4
        // with seq 2 missing.
        for (i, seq) in (65530u16..=65535).chain(0..=4).enumerate() {
            if seq == 2 {
                continue;
            }
            let at = t + Duration::from_millis(10 * i as u64);
            r.on_rtp(at, 7, seq, 1000 + 900 * i as u32, 90_000);
        }
        r.on_sender_report(t, 0xabcd_0000);
        let rep = r.report(t + Duration::from_millis(500)).unwrap();
        assert_eq!(rep.source_ssrc, 7);
        assert_eq!(rep.highest_seq, (1 << 16) + 4, "one wrap");
        assert_eq!(rep.cumulative_lost, 1);
        assert_eq!(rep.fraction_lost, (256 / 11) as u8);
        assert!(rep.jitter <= 1, "evenly spaced: {}", rep.jitter);
        assert_eq!(rep.last_sr, 0xabcd_0000);
        assert_eq!(rep.delay_since_last_sr, 32768);
        let again = r.report(t).unwrap();
        assert_eq!(again.fraction_lost, 0, "nothing new since the last report");
        // Uneven arrival shows as jitter.
        for i in 0..32u32 {
            let late = if i % 2 == 0 { 0 } else { 20 };
            let at = t + Duration::from_millis(200 + 10 * i as u64 + late);
            r.on_rtp(at, 7, 5 + i as u16, 1000 + 900 * (20 + i), 90_000);
        }
        assert!(r.report(t).unwrap().jitter > 500);
    }

    #[test]
    fn ntp_epoch() {
        let (s, f) = ntp_from_unix(std::time::Duration::from_millis(1500));
        assert_eq!(s, 2_208_988_801);
        assert_eq!(f, 1 << 31);
    }
}
