//! When to try a server again after it went away (a camera rebooting, a
//! server restarted, the network gone for a while): at once the first
//! time, then twice as long after each failed attempt, up to
//! [`MAX_WAIT`], and afresh once a session plays again. Pure: the owner
//! (the window, `probe --reconnect`) says what happened and when, and
//! asks when to try.

use std::time::{Duration, Instant};

/// The wait before the second attempt; each later one doubles it.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// One stream's reconnecting.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Attempts since it last played.
    attempts: u32,
    /// When the next attempt is due, while the stream is away.
    due: Option<Instant>,
    /// Times it came back and played again.
    resumed: u64,
}

impl Backoff {
    /// The stream went away at `now` (or an attempt failed): when to try.
    pub fn lost(&mut self, now: Instant) -> Instant {
        let wait = if self.attempts == 0 {
            Duration::ZERO
        } else {
            FIRST_WAIT
                .saturating_mul(1 << (self.attempts - 1).min(16))
                .min(MAX_WAIT)
        };
        let due = now + wait;
        self.due = Some(due);
        due
    }

    /// When the next attempt is due (None: not away).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// An attempt starts now.
    pub fn attempt(&mut self) -> u32 {
        self.due = None;
        self.attempts = self.attempts.saturating_add(1);
        self.attempts
    }

    /// It plays again: the next loss starts from the first wait. Returns
    /// the attempts it took (0 when it was never away).
    pub fn playing(&mut self) -> u32 {
        let took = self.attempts;
        if took > 0 {
            self.resumed += 1;
        }
        self.attempts = 0;
        self.due = None;
        took
    }

    /// Times the stream came back.
    pub fn reconnects(&self) -> u64 {
        self.resumed
    }

    /// Whether an attempt or a wait is under way.
    pub fn away(&self) -> bool {
        self.due.is_some() || self.attempts > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_once_then_doubling_up_to_the_cap_and_afresh_after_playing() {
        let t = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.away());
        assert_eq!(b.lost(t), t, "the first try is at once");
        assert!(b.away());
        let mut waits = Vec::new();
        for _ in 0..10 {
            b.attempt();
            waits.push(b.lost(t) - t);
        }
        assert_eq!(waits[0], FIRST_WAIT);
        assert_eq!(waits[1], FIRST_WAIT * 2);
        assert_eq!(waits[2], FIRST_WAIT * 4);
        assert_eq!(*waits.last().unwrap(), MAX_WAIT);
        b.attempt();
        assert_eq!(b.playing(), 11);
        assert_eq!(b.reconnects(), 1);
        assert!(!b.away());
        assert_eq!(b.lost(t), t, "afresh");
        assert_eq!(b.playing(), 0, "lost and back before any attempt");
        assert_eq!(b.reconnects(), 1);
    }
}
