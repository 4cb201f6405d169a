//! A small reorder window for RTP over UDP: a packet that overtakes
//! another on the way (Wi-Fi, multipath, a busy kernel) is put back in
//! sequence order before the checker sees it, instead of being dropped as
//! "sequence not increasing" and taking its whole frame with it.
//!
//! Packets in order pass straight through without a copy. A packet ahead
//! of a gap waits until the gap fills, until more than `window` packets
//! wait, or until the oldest has waited `max_wait`; then the gap counts
//! as lost and what waited goes on in order. Time comes in as an argument.

use std::time::{Duration, Instant};

/// Packets that may wait for a missing one before it counts as lost.
pub const WINDOW: usize = 64;
/// How long a packet may wait for a missing one before it counts as lost.
pub const MAX_WAIT: Duration = Duration::from_millis(20);
/// A step ahead this big is a sender that started over, not reordering.
const JUMP: u16 = 3000;
/// The first packet of a stream may itself have overtaken this many: it
/// waits like any other packet ahead of a gap, once.
const FIRST_LEAD: u16 = 8;

struct Held {
    seq: u16,
    at: Instant,
    bytes: Vec<u8>,
}

/// Puts RTP packets back in sequence-number order.
pub struct Reorder {
    next: Option<u16>,
    /// Waiting packets, in sequence order, all ahead of `next`.
    held: Vec<Held>,
    window: usize,
    max_wait: Duration,
    duplicates: u64,
    put_back: u64,
    /// The highest sequence number seen, to tell a packet that overtook.
    highest: Option<u16>,
}

impl Default for Reorder {
    fn default() -> Self {
        Reorder::new(WINDOW, MAX_WAIT)
    }
}

/// The sequence number of something that looks like RTP version 2.
fn sequence(packet: &[u8]) -> Option<u16> {
    (packet.len() >= 12 && packet[0] >> 6 == 2).then(|| u16::from_be_bytes([packet[2], packet[3]]))
}

impl Reorder {
    pub fn new(window: usize, max_wait: Duration) -> Self {
        Reorder {
            next: None,
            held: Vec::new(),
            window: window.max(1),
            max_wait,
            duplicates: 0,
            put_back: 0,
            highest: None,
        }
    }

    /// Copies of a waiting packet that arrived again (dropped here).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after ones behind them and were put back in
    /// their place.
    pub fn put_back(&self) -> u64 {
        self.put_back
    }

    /// Packets waiting for a missing one.
    pub fn waiting(&self) -> usize {
        self.held.len()
    }

    /// When `poll` has something to release, if anything waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.held
            .iter()
            .map(|h| h.at)
            .min()
            .map(|t| t + self.max_wait)
    }

    /// Take one datagram; `out` gets every packet now in order (this one,
    /// others that waited for it, or none). What is not RTP goes straight
    /// on, for the checker to count.
    pub fn push(&mut self, now: Instant, packet: &[u8], out: &mut impl FnMut(&[u8])) {
        let Some(seq) = sequence(packet) else {
            return out(packet);
        };
        let next = *self.next.get_or_insert(seq.wrapping_sub(FIRST_LEAD));
        let ahead = seq.wrapping_sub(next);
        let behind = self
            .highest
            .is_some_and(|h| (1..0x8000).contains(&h.wrapping_sub(seq)));
        if !behind {
            self.highest = Some(seq);
        } else if ahead < 0x8000 {
            self.put_back += 1;
        }
        if ahead == 0 {
            self.next = Some(seq.wrapping_add(1));
            out(packet);
            return self.release_in_order(out);
        }
        if ahead >= 0x8000 {
            // Late (its gap was given up on) or a duplicate: the checker
            // counts it.
            return out(packet);
        }
        if ahead > JUMP {
            self.flush(out);
            self.next = Some(seq.wrapping_add(1));
            return out(packet);
        }
        let at = self
            .held
            .partition_point(|h| h.seq.wrapping_sub(next) < ahead);
        if self.held.get(at).is_some_and(|h| h.seq == seq) {
            self.duplicates += 1;
            return;
        }
        self.held.insert(
            at,
            Held {
                seq,
                at: now,
                bytes: packet.to_vec(),
            },
        );
        while self.held.len() > self.window {
            self.skip_gap(out);
        }
    }

    /// Release what waited longer than `max_wait`, giving up on its gap.
    pub fn poll(&mut self, now: Instant, out: &mut impl FnMut(&[u8])) {
        while self.deadline().is_some_and(|d| now >= d) {
            self.skip_gap(out);
        }
    }

    /// Release everything that waits, in order (the stream is ending).
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8])) {
        while !self.held.is_empty() {
            self.skip_gap(out);
        }
    }

    /// Forget everything: a new stream starts.
    pub fn reset(&mut self) {
        self.next = None;
        self.highest = None;
        self.held.clear();
    }

    fn skip_gap(&mut self, out: &mut impl FnMut(&[u8])) {
        if let Some(first) = self.held.first() {
            self.next = Some(first.seq);
            self.release_in_order(out);
        }
    }

    fn release_in_order(&mut self, out: &mut impl FnMut(&[u8])) {
        while let Some(next) = self.next
            && self.held.first().is_some_and(|h| h.seq == next)
        {
            let h = self.held.remove(0);
            self.next = Some(next.wrapping_add(1));
            out(&h.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 26, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p
    }

    fn run(r: &mut Reorder, now: Instant, seqs: &[u16]) -> Vec<u16> {
        let mut got = Vec::new();
        for &s in seqs {
            r.push(now, &pkt(s), &mut |b| got.push(sequence(b).unwrap()));
        }
        got
    }

    #[test]
    fn swapped_packets_come_out_in_order() {
        let t = Instant::now();
        let mut r = Reorder::default();
        // The very first packet waits for any that it overtook.
        assert_eq!(run(&mut r, t, &[11, 10]), [0u16; 0]);
        let mut got = Vec::new();
        r.poll(t + MAX_WAIT, &mut |b| got.push(sequence(b).unwrap()));
        assert_eq!(got, [10, 11]);
        assert_eq!(run(&mut r, t, &[13, 12, 14]), [12, 13, 14]);
        assert_eq!(r.put_back(), 2);
        assert_eq!(r.waiting(), 0);
    }

    /// A reorder buffer past its first packet, and the time it is at.
    fn primed(first: u16, window: usize) -> (Reorder, Instant) {
        let t = Instant::now();
        let mut r = Reorder::new(window, MAX_WAIT);
        assert_eq!(run(&mut r, t, &[first]), [0u16; 0]);
        let mut got = Vec::new();
        r.poll(t + MAX_WAIT, &mut |b| got.push(sequence(b).unwrap()));
        assert_eq!(got, [first]);
        (r, t + MAX_WAIT)
    }

    #[test]
    fn across_the_wrap() {
        let (mut r, t) = primed(65533, WINDOW);
        assert_eq!(run(&mut r, t, &[65534, 0, 65535, 1]), [65534, 65535, 0, 1]);
    }

    #[test]
    fn a_lost_packet_is_given_up_on_after_max_wait() {
        let (mut r, t) = primed(1, WINDOW);
        assert_eq!(run(&mut r, t, &[3, 4]), [0u16; 0]);
        assert_eq!(r.deadline(), Some(t + MAX_WAIT));
        let mut got = Vec::new();
        r.poll(t + MAX_WAIT / 2, &mut |b| got.push(sequence(b).unwrap()));
        assert!(got.is_empty());
        r.poll(t + MAX_WAIT, &mut |b| got.push(sequence(b).unwrap()));
        assert_eq!(got, [3, 4]);
        // The missing one, arriving after all, is late: passed on for the
        // checker to drop and count.
        assert_eq!(run(&mut r, t, &[2, 5]), [2, 5]);
    }

    #[test]
    fn a_full_window_gives_up_without_waiting() {
        let (mut r, t) = primed(0, 4);
        assert_eq!(run(&mut r, t, &[2, 3, 4, 5]), [0u16; 0]);
        assert_eq!(run(&mut r, t, &[6]), [2, 3, 4, 5, 6]);
    }

    #[test]
    fn duplicates_and_non_rtp() {
        let (mut r, t) = primed(0, WINDOW);
        assert_eq!(run(&mut r, t, &[2, 2, 1]), [1, 2]);
        assert_eq!(r.duplicates(), 1);
        let mut got = 0;
        r.push(t, b"junk", &mut |_| got += 1);
        assert_eq!(got, 1, "not RTP: passed on for the checker to count");
    }

    #[test]
    fn a_sender_that_starts_over_is_followed() {
        let (mut r, t) = primed(100, WINDOW);
        assert_eq!(run(&mut r, t, &[102]), [0u16; 0]);
        assert_eq!(run(&mut r, t, &[20_000, 20_001]), [102, 20_000, 20_001]);
    }
}
