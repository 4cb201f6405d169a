//! The RTP sender's rules, apart from its sockets and clock: which SSRC,
//! first sequence number and timestamp a session starts from in each
//! dialect, the RTP timestamp of each frame, and when a session whose RTP
//! port refuses packets is taken to be gone and paused ([`Refusals`]).

use crate::protocol::server::Payload;

/// Refused frames in a row after which the client is taken to be gone (its
/// RTP port answers ICMP port unreachable); see [`Refusals`].
pub const MAX_SEND_FAILURES: u32 = 40;

/// The RTP clock of RFC 2435 video.
pub const VIDEO_CLOCK: u64 = 90_000;

/// Where a session's RTP numbering starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    pub ssrc: u32,
    pub sequence: u16,
    /// First RTP timestamp (RFC 2435 only; the lab sends Unix seconds).
    pub ts_base: u32,
}

impl Numbering {
    /// The lab's seed 000 checks that the SSRC is the session id and the
    /// lab numbers packets from 1; standard sessions start from random
    /// values (RFC 3550 section 5.1), drawn by the caller and passed in.
    pub fn new(payload: Payload, session_id: &str, random: (u32, u16, u32)) -> Numbering {
        match payload {
            Payload::Lab => Numbering {
                ssrc: session_id.parse().unwrap_or(0),
                sequence: 1,
                ts_base: 0,
            },
            Payload::Rfc2435 => Numbering {
                ssrc: random.0,
                sequence: random.1,
                ts_base: random.2,
            },
        }
    }

    /// The RTP timestamp of a frame: the lab's is the Unix time in whole
    /// seconds (`unix_secs`, read by the caller), the standard one counts a
    /// 90 kHz clock from [`Numbering::ts_base`] at `fps` frames a second.
    pub fn timestamp(&self, payload: Payload, frames_sent: u64, fps: u32, unix_secs: u64) -> u32 {
        match payload {
            Payload::Lab => unix_secs as u32,
            Payload::Rfc2435 => {
                let ticks = frames_sent * VIDEO_CLOCK / fps.max(1) as u64;
                self.ts_base.wrapping_add(ticks as u32)
            }
        }
    }
}

/// Tells a client that has gone from one that lost a packet. On a connected
/// UDP socket an ICMP port unreachable fails only the next send, after
/// which a send goes out (and draws another ICMP): frames to a closed port
/// fail every other time, so a count of failures in a row would never
/// reach its limit. Refusals weigh twice what successes pay back: a closed
/// port fills the count in [`MAX_SEND_FAILURES`] frames when every frame
/// fails, in four times that when every other does, and an occasional
/// refusal fades away.
#[derive(Debug, Default, Clone, Copy)]
pub struct Refusals(u32);

impl Refusals {
    /// Counts one frame; true when the client looks gone (and starts over).
    pub fn gone_after(&mut self, ok: bool) -> bool {
        self.0 = if ok {
            self.0.saturating_sub(1)
        } else {
            self.0 + 2
        };
        let gone = self.0 >= 2 * MAX_SEND_FAILURES;
        if gone {
            self.0 = 0;
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_noticed_even_when_every_other_send_goes_out() {
        // What a connected UDP socket does towards a closed port.
        let mut r = Refusals::default();
        let frames = (0..1000).position(|n| r.gone_after(n % 2 == 0));
        assert!(
            frames.is_some_and(|f| f < 4 * MAX_SEND_FAILURES as usize),
            "{frames:?}"
        );
        let mut r = Refusals::default();
        let frames = (0..1000).position(|_| r.gone_after(false));
        assert_eq!(frames, Some(MAX_SEND_FAILURES as usize - 1));
    }

    #[test]
    fn occasional_refusals_fade_away() {
        let mut r = Refusals::default();
        assert!(!(0..100_000).any(|n| r.gone_after(n % 3 != 0)));
    }

    #[test]
    fn the_lab_ssrc_is_the_session_id_and_numbering_starts_at_one() {
        let n = Numbering::new(Payload::Lab, "123456", (7, 8, 9));
        assert_eq!((n.ssrc, n.sequence), (123_456, 1));
        assert_eq!(
            n.timestamp(Payload::Lab, 5, 20, 1_700_000_000),
            1_700_000_000
        );
        let n = Numbering::new(Payload::Lab, "not a number", (7, 8, 9));
        assert_eq!(n.ssrc, 0);
    }

    #[test]
    fn standard_timestamps_count_90_khz_from_a_random_base() {
        let n = Numbering::new(Payload::Rfc2435, "1", (7, 8, u32::MAX - 4499));
        assert_eq!((n.ssrc, n.sequence), (7, 8));
        assert_eq!(n.timestamp(Payload::Rfc2435, 0, 20, 0), u32::MAX - 4499);
        // Wraps: one frame at 20 fps is 4500 ticks.
        assert_eq!(n.timestamp(Payload::Rfc2435, 1, 20, 0), 0);
    }
}
