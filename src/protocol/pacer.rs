//! The frame schedule: frame n is due at `start + n x period`, computed from
//! the start every time so rounding never accumulates. The lab's reference
//! sleeps 50 ms after each send and so drifts (19.8 fps, hundreds of ms
//! behind after 25 s); an absolute schedule does not.

use std::time::{Duration, Instant};

/// How many frame periods late a frame may fall before the schedule is
/// moved rather than caught up with a burst (after a stall, or the machine
/// sleeping). Small, because a burst overflows a lab client's default UDP
/// buffer (a dozen frames) and reaches it as loss.
pub const MAX_CATCH_UP_FRAMES: u32 = 4;

/// An absolute frame schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    fps: u32,
    start: Instant,
    n: u64,
}

impl Pacer {
    /// A schedule whose first frame is due at `start`. `fps` of 0 is taken as 1.
    pub fn new(start: Instant, fps: u32) -> Self {
        Pacer {
            fps: fps.max(1),
            start,
            n: 0,
        }
    }

    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// Frames sent since the schedule (re)started.
    pub fn sent(&self) -> u64 {
        self.n
    }

    /// When the frame `n` frames after the start is due.
    pub fn due(&self, n: u64) -> Instant {
        let nanos = (n as u128 * 1_000_000_000) / self.fps as u128;
        self.start + Duration::from_nanos(nanos.min(u64::MAX as u128) as u64)
    }

    /// When the next frame is due.
    pub fn deadline(&self) -> Instant {
        self.due(self.n)
    }

    /// Record that the due frame was sent at `now`. If that was more than
    /// [`MAX_CATCH_UP_FRAMES`] periods late, the schedule restarts from
    /// `now` instead of bursting to catch up.
    pub fn advance(&mut self, now: Instant) {
        let due = self.deadline();
        self.n += 1;
        if now.saturating_duration_since(due) > self.period() * MAX_CATCH_UP_FRAMES {
            self.restart(now + self.period());
        }
    }

    /// Restart the schedule with the next frame due at `at` (PLAY after PAUSE).
    pub fn restart(&mut self, at: Instant) {
        self.start = at;
        self.n = 0;
    }

    /// The nominal time between frames.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / self.fps as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drift_over_long_runs() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 30);
        for _ in 0..30 * 3600 {
            let due = p.deadline();
            p.advance(due + Duration::from_millis(3));
        }
        // After an hour of frames each sent 3 ms late, frame 108000 is due
        // exactly one hour after the start.
        assert_eq!(p.deadline() - t0, Duration::from_secs(3600));
    }

    #[test]
    fn stall_restarts_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20);
        // Three periods late: caught up (the next frame is already due).
        p.advance(t0 + Duration::from_millis(150));
        assert_eq!(p.deadline(), t0 + Duration::from_millis(50));
        // A stall: the schedule moves instead.
        let late = t0 + Duration::from_secs(5);
        p.advance(late);
        assert_eq!(p.deadline(), late + p.period());
    }
}
