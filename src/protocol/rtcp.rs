//! RTCP (RFC 3550 section 6): the sender reports our server sends, so
//! players can map RTP time to wall-clock time, and the receiver reports our
//! client sends, which also keep a session alive. Reading is only as deep as
//! telling a report from garbage and whose SSRC it names.

/// RTCP packet types we write or read.
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;

/// Seconds between 1900 (NTP's epoch) and 1970 (Unix's).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

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

/// One RTCP packet read from a compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket {
    pub packet_type: u8,
    pub ssrc: u32,
    /// For a sender report: the middle 32 bits of its NTP time.
    pub sr_ntp_middle: Option<u32>,
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
        let sr_ntp_middle = (buf[1] == PT_SR && len >= 16)
            .then(|| u32::from_be_bytes([buf[10], buf[11], buf[12], buf[13]]));
        out.push(RtcpPacket {
            packet_type: buf[1],
            ssrc,
            sr_ntp_middle,
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
        let rr = receiver_report(9, &ReceptionStats::default());
        let both = [&sr[..], &rr[..]].concat();
        let p = parse_compound(&both).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].packet_type, PT_RR);
        assert!(parse_compound(b"\x80\x1a\x00\x01garbage").is_none());
        assert!(parse_compound(&sr[..20]).is_none());
    }

    #[test]
    fn ntp_epoch() {
        let (s, f) = ntp_from_unix(std::time::Duration::from_millis(1500));
        assert_eq!(s, 2_208_988_801);
        assert_eq!(f, 1 << 31);
    }
}
