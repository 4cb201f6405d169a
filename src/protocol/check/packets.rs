//! Every RTP packet a checked server sends, held against the handout field
//! by field: the first packet that breaks each rule is kept, with the byte
//! and bits at fault in words, so the student sees where to look. Nothing
//! here stops at a bad field: a packet with V=1 still has its sequence
//! number checked, so that one mistake makes one check fail.

use std::collections::BTreeMap;

use super::checks::{CheckDialect, CheckId};
use crate::protocol::rtp::{HEADER_LEN, MAX_TIMESTAMP_STEP, PT_JPEG};

/// Decodes a JPEG or says why not. Given by the caller, so that this pure
/// code does not reach into the media decoder.
pub type JpegCheck = fn(&[u8]) -> Result<(), String>;

/// Payloads decoded at most, to keep a long TPC-3 transfer cheap: a
/// packetizer gets every frame wrong or none.
const MAX_DECODES: usize = 60;

/// The first packet that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    pub seen: String,
    pub packet: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Prev {
    seq: u16,
    ts: u32,
    marker: bool,
    head: [u8; HEADER_LEN],
    index: u64,
}

/// The per-packet checks, fed one datagram at a time.
#[derive(Debug)]
pub struct PacketChecks {
    dialect: CheckDialect,
    decode: Option<JpegCheck>,
    decoded: usize,
    /// TPC-3: the session id the server gave, which SSRC must carry.
    session_id: Option<u32>,
    offences: BTreeMap<CheckId, Offence>,
    prev: Option<Prev>,
    first_ssrc: Option<u32>,
    first_ts: Option<u32>,
    count: u64,
}

fn ordinal(index: u64, seq: u16) -> String {
    format!("packet {index} (sequence {seq})")
}

/// The head of `bytes` kept with an offence: the RTP header and the first
/// payload bytes.
fn keep(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(HEADER_LEN + 16)].to_vec()
}

impl PacketChecks {
    pub fn new(dialect: CheckDialect, decode: Option<JpegCheck>) -> Self {
        PacketChecks {
            dialect,
            decode,
            decoded: 0,
            session_id: None,
            offences: BTreeMap::new(),
            prev: None,
            first_ssrc: None,
            first_ts: None,
            count: 0,
        }
    }

    /// TPC-3: the session id every SSRC must equal.
    pub fn set_session_id(&mut self, id: u32) {
        self.session_id = Some(id);
    }

    /// Packets seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn offence(&self, id: CheckId) -> Option<&Offence> {
        self.offences.get(&id)
    }

    fn offend(&mut self, id: CheckId, seen: String, bytes: &[u8]) {
        self.offences.entry(id).or_insert_with(|| Offence {
            seen,
            packet: keep(bytes),
        });
    }

    /// One datagram. `new_run` says it is the first after a PLAY that
    /// resumed: whether it continues the numbering is `play.resumes`'s
    /// question, not `rtp.sequence`'s.
    pub fn packet(&mut self, bytes: &[u8], new_run: bool) {
        self.count += 1;
        let n = self.count;
        let Some(head) = bytes.first_chunk::<HEADER_LEN>().copied() else {
            self.offend(
                CheckId::RtpVersion,
                format!(
                    "packet {n} has {} bytes, shorter than the 12-byte RTP header",
                    bytes.len()
                ),
                bytes,
            );
            return;
        };
        let seq = u16::from_be_bytes([head[2], head[3]]);
        let ts = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let ssrc = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let marker = head[1] & 0x80 != 0;
        let at = ordinal(n, seq);
        let (b0, b1) = (head[0], head[1]);
        if b0 >> 6 != 2 {
            self.offend(
                CheckId::RtpVersion,
                format!("byte 0 = 0x{b0:02X}: V={} (bits 0-1), in {at}", b0 >> 6),
                bytes,
            );
        }
        if b0 & 0x20 != 0 {
            self.offend(
                CheckId::RtpPadding,
                format!("byte 0 = 0x{b0:02X}: P=1 (bit 2), in {at}"),
                bytes,
            );
        }
        if b0 & 0x10 != 0 {
            self.offend(
                CheckId::RtpExtension,
                format!("byte 0 = 0x{b0:02X}: X=1 (bit 3), in {at}"),
                bytes,
            );
        }
        if b0 & 0x0f != 0 {
            self.offend(
                CheckId::RtpCc,
                format!("byte 0 = 0x{b0:02X}: CC={} (bits 4-7), in {at}", b0 & 0x0f),
                bytes,
            );
        }
        if self.dialect != CheckDialect::Standard && marker {
            self.offend(
                CheckId::RtpMarker,
                format!("byte 1 = 0x{b1:02X}: M=1 (bit 8), in {at}"),
                bytes,
            );
        }
        if b1 & 0x7f != PT_JPEG {
            self.offend(
                CheckId::RtpPayloadType,
                format!("byte 1 = 0x{b1:02X}: PT={} (bits 9-15), in {at}", b1 & 0x7f),
                bytes,
            );
        }
        self.sequence(bytes, &head, n, seq, new_run);
        self.timestamp(bytes, n, seq, ts);
        self.ssrc(bytes, &head, n, seq, ssrc);
        if let Some(p) = self.prev
            && self.dialect == CheckDialect::Standard
            && p.ts != ts
            && !p.marker
        {
            // The frame before this one ended without its marker.
            self.offend(
                CheckId::RtpMarker,
                format!(
                    "byte 1 = 0x{:02X}: M=0 (bit 8) on {}, the last packet of its frame (the next has a new timestamp)",
                    p.head[1],
                    ordinal(p.index, p.seq)
                ),
                &p.head,
            );
        }
        self.payload(bytes, &at);
        self.prev = Some(Prev {
            seq,
            ts,
            marker,
            head,
            index: n,
        });
    }

    fn sequence(&mut self, bytes: &[u8], head: &[u8; 12], n: u64, seq: u16, new_run: bool) {
        let field = format!("bytes 2-3 = {:02X} {:02X}", head[2], head[3]);
        match self.prev {
            None if self.dialect != CheckDialect::Standard && seq != 1 => self.offend(
                CheckId::RtpSequence,
                format!("{field}: the first packet's sequence number is {seq}, not 1"),
                bytes,
            ),
            Some(p) if !new_run && seq != p.seq.wrapping_add(1) => self.offend(
                CheckId::RtpSequence,
                format!(
                    "{field}: sequence {seq} right after {}, in packet {n}: +1 gives {}",
                    p.seq,
                    p.seq.wrapping_add(1)
                ),
                bytes,
            ),
            _ => {}
        }
    }

    fn timestamp(&mut self, bytes: &[u8], n: u64, seq: u16, ts: u32) {
        self.first_ts.get_or_insert(ts);
        let Some(p) = self.prev else {
            return;
        };
        let step = ts.wrapping_sub(p.ts);
        if (step as i32) < 0 {
            self.offend(
                CheckId::RtpTimestamp,
                format!(
                    "bytes 4-7: the timestamp went back from {} to {ts} in {}",
                    p.ts,
                    ordinal(n, seq)
                ),
                bytes,
            );
        } else if step > MAX_TIMESTAMP_STEP {
            self.offend(
                CheckId::RtpTimestamp,
                format!(
                    "bytes 4-7: the timestamp jumped by {step} (from {} to {ts}) in {}: no clock moves that far between two frames",
                    p.ts,
                    ordinal(n, seq)
                ),
                bytes,
            );
        }
    }

    fn ssrc(&mut self, bytes: &[u8], head: &[u8; 12], n: u64, seq: u16, ssrc: u32) {
        let field = format!(
            "bytes 8-11 = {:02X} {:02X} {:02X} {:02X}",
            head[8], head[9], head[10], head[11]
        );
        if self.dialect == CheckDialect::Tpc3
            && let Some(id) = self.session_id
            && ssrc != id
        {
            self.offend(
                CheckId::RtpSsrc,
                format!(
                    "{field}: SSRC {ssrc} in {}, but the session id is {id} (0x{id:08X})",
                    ordinal(n, seq)
                ),
                bytes,
            );
        }
        match self.first_ssrc {
            None => self.first_ssrc = Some(ssrc),
            Some(first) if first != ssrc => self.offend(
                CheckId::RtpSsrc,
                format!(
                    "{field}: SSRC changed from {first} to {ssrc} in {}",
                    ordinal(n, seq)
                ),
                bytes,
            ),
            Some(_) => {}
        }
    }

    fn payload(&mut self, bytes: &[u8], at: &str) {
        let payload = &bytes[HEADER_LEN..];
        if self.dialect == CheckDialect::Standard {
            if payload.len() < 8 || payload.starts_with(&[0xff, 0xd8]) {
                self.offend(
                    CheckId::RtpPayload,
                    format!(
                        "{at}: {} payload bytes without an RFC 2435 JPEG header",
                        payload.len()
                    ),
                    bytes,
                );
            }
            return;
        }
        let len = payload.len();
        if !payload.starts_with(&[0xff, 0xd8]) {
            let first: Vec<String> = payload.iter().take(2).map(|b| format!("{b:02X}")).collect();
            self.offend(
                CheckId::RtpPayload,
                format!(
                    "{at}: the payload starts {}, not with the JPEG start FF D8 (bytes 12-13)",
                    if first.is_empty() {
                        "with nothing".to_string()
                    } else {
                        first.join(" ")
                    }
                ),
                bytes,
            );
        } else if !payload.ends_with(&[0xff, 0xd9]) {
            let last: Vec<String> = payload[len.saturating_sub(2)..]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            self.offend(
                CheckId::RtpPayload,
                format!(
                    "{at}: the {len}-byte payload ends {}, not with the JPEG end FF D9: the frame is cut short",
                    last.join(" ")
                ),
                bytes,
            );
        } else if let Some(decode) = self.decode
            && self.decoded < MAX_DECODES
        {
            self.decoded += 1;
            if let Err(e) = decode(payload) {
                self.offend(
                    CheckId::RtpPayload,
                    format!("{at}: the {len}-byte JPEG does not decode: {e}"),
                    bytes,
                );
            }
        }
    }

    /// What a passing check saw, in a few words.
    pub fn summary(&self, id: CheckId) -> String {
        let n = self.count;
        match id {
            CheckId::RtpSsrc => match self.first_ssrc {
                Some(s) => format!("SSRC {s} (0x{s:08X}) in all {n} packets"),
                None => "no packets".into(),
            },
            CheckId::RtpTimestamp => match (self.first_ts, self.prev) {
                (Some(a), Some(p)) => {
                    format!("from {a} to {} over {n} packets, never going back", p.ts)
                }
                _ => "no packets".into(),
            },
            CheckId::RtpSequence => match self.prev {
                Some(p) => format!("+1 per packet up to {} over {n} packets", p.seq),
                None => "no packets".into(),
            },
            CheckId::RtpVersion => format!("V=2 in all {n} packets"),
            CheckId::RtpPadding => format!("P=0 in all {n} packets"),
            CheckId::RtpExtension => format!("X=0 in all {n} packets"),
            CheckId::RtpCc => format!("CC=0 in all {n} packets"),
            CheckId::RtpMarker if self.dialect == CheckDialect::Standard => {
                format!("M=1 on each frame's last packet, over {n} packets")
            }
            CheckId::RtpMarker => format!("M=0 in all {n} packets"),
            CheckId::RtpPayloadType => format!("PT=26 in all {n} packets"),
            CheckId::RtpPayload if self.dialect == CheckDialect::Standard => {
                format!("an RFC 2435 header in all {n} packets")
            }
            CheckId::RtpPayload => format!(
                "a whole JPEG (FF D8 ... FF D9) in all {n} packets{}",
                if self.decoded > 0 {
                    format!(", the first {} decoded", self.decoded)
                } else {
                    String::new()
                }
            ),
            _ => format!("as asked in all {n} packets"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(b0: u8, b1: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, b1];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    const JPEG: &[u8] = &[0xff, 0xd8, 1, 2, 0xff, 0xd9];

    #[test]
    fn a_lab_packet_passes_every_field() {
        let mut c = PacketChecks::new(CheckDialect::Lab, None);
        for s in 1..=5u16 {
            c.packet(&pkt(0x80, 26, s, 1_700_000_000, 0, JPEG), false);
        }
        assert!(c.offences.is_empty(), "{:?}", c.offences);
    }

    #[test]
    fn version_one_names_the_byte_and_bits_and_nothing_else() {
        let mut c = PacketChecks::new(CheckDialect::Lab, None);
        for s in 1..=3u16 {
            c.packet(&pkt(0x40, 26, s, 10, 0, JPEG), false);
        }
        let ids: Vec<_> = c.offences.keys().copied().collect();
        assert_eq!(ids, [CheckId::RtpVersion]);
        let o = c.offence(CheckId::RtpVersion).unwrap();
        assert!(
            o.seen.starts_with("byte 0 = 0x40: V=1 (bits 0-1)"),
            "{}",
            o.seen
        );
        assert_eq!(o.packet[0], 0x40);
    }

    #[test]
    fn padding_extension_and_cc_each_name_their_bits() {
        for (b0, id, words) in [
            (0xa0, CheckId::RtpPadding, "P=1 (bit 2)"),
            (0x90, CheckId::RtpExtension, "X=1 (bit 3)"),
            (0x83, CheckId::RtpCc, "CC=3 (bits 4-7)"),
        ] {
            let mut c = PacketChecks::new(CheckDialect::Lab, None);
            c.packet(&pkt(b0, 26, 1, 10, 0, JPEG), false);
            let ids: Vec<_> = c.offences.keys().copied().collect();
            assert_eq!(ids, [id], "byte 0 = {b0:#04x}");
            let seen = &c.offence(id).unwrap().seen;
            assert!(seen.contains(words), "{seen}");
        }
    }

    #[test]
    fn sequence_from_zero_and_a_resumed_run() {
        let mut c = PacketChecks::new(CheckDialect::Lab, None);
        c.packet(&pkt(0x80, 26, 0, 10, 0, JPEG), false);
        assert!(
            c.offence(CheckId::RtpSequence)
                .unwrap()
                .seen
                .contains("not 1")
        );
        let mut c = PacketChecks::new(CheckDialect::Lab, None);
        c.packet(&pkt(0x80, 26, 1, 10, 0, JPEG), false);
        c.packet(&pkt(0x80, 26, 1, 10, 0, JPEG), true);
        assert!(c.offence(CheckId::RtpSequence).is_none());
        c.packet(&pkt(0x80, 26, 1, 10, 0, JPEG), false);
        assert!(c.offence(CheckId::RtpSequence).is_some());
    }

    #[test]
    fn tpc3_ssrc_must_be_the_session_id() {
        let mut c = PacketChecks::new(CheckDialect::Tpc3, None);
        c.set_session_id(123_456);
        c.packet(&pkt(0x80, 26, 1, 10, 0, JPEG), false);
        let o = c.offence(CheckId::RtpSsrc).unwrap();
        assert!(o.seen.contains("session id is 123456"), "{}", o.seen);
    }

    #[test]
    fn a_cut_jpeg_and_a_short_datagram() {
        let mut c = PacketChecks::new(CheckDialect::Lab, None);
        c.packet(&pkt(0x80, 26, 1, 10, 0, &JPEG[..4]), false);
        assert!(
            c.offence(CheckId::RtpPayload)
                .unwrap()
                .seen
                .contains("cut short")
        );
        c.packet(&[0x80, 26, 0], false);
        assert!(
            c.offence(CheckId::RtpVersion)
                .unwrap()
                .seen
                .contains("3 bytes")
        );
    }
}
