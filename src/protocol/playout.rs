//! The playout buffer: holds whole frames and hands each out at its
//! presentation time on the sender's clock, so bursty arrivals play
//! smoothly; holds frames fetched ahead (the lab's "pre-buffer N frames")
//! so PLAY shows the first one at once.
//!
//! A frame's media time comes from its RTP timestamp (90 kHz, wrap-aware)
//! or, for the lab's dialect, whose timestamps are whole seconds, from its
//! sequence number at the nominal frame rate. Its presentation time is a
//! base instant plus its media time since the base frame; the base is set
//! by the first frame (its arrival plus the latency), on release (the head
//! of the buffer is due at once) and at a discontinuity (a seek, a server
//! that starts over, a resume after PAUSE with an empty buffer), always so
//! that time only moves forward. A frame that arrives after its time is
//! late and skipped, never shown out of order.
//!
//! With no latency and nothing held, frames pass through as they complete.
//! Time comes in as arguments: no clock reads here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RTP clock of video.
const CLOCK: i64 = 90_000;
/// A step in media time larger than this between consecutive frames is a
/// discontinuity, not a gap.
const MAX_STEP: i64 = CLOCK;
/// Frames and bytes the buffer holds at most; beyond, the oldest goes.
pub const MAX_FRAMES: usize = 600;
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

/// How the buffer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// How far behind the sender frames are presented; zero presents each
    /// frame as it completes.
    pub latency: Duration,
    /// The lab's dialect: media time from sequence numbers.
    pub lab_timing: bool,
    /// The frame period when the stream does not say (the lab's 20 fps).
    pub nominal_period: Duration,
    pub max_frames: usize,
    pub max_bytes: usize,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        PlayoutConfig {
            latency: Duration::ZERO,
            lab_timing: false,
            nominal_period: Duration::from_millis(50),
            max_frames: MAX_FRAMES,
            max_bytes: MAX_BYTES,
        }
    }
}

/// What the buffer is doing, as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BufferState {
    /// Filling: held for a pre-buffer or a PAUSE, or waiting for the
    /// first frame's time.
    #[default]
    Buffering,
    Playing,
    /// Empty when a frame was due.
    Underrun,
}

impl BufferState {
    pub fn name(self) -> &'static str {
        match self {
            BufferState::Buffering => "Buffering",
            BufferState::Playing => "Playing",
            BufferState::Underrun => "Underrun",
        }
    }
}

/// The buffer's level.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Level {
    pub frames: usize,
    pub bytes: usize,
    /// Media time held, in ms.
    pub millis: f64,
    pub state: BufferState,
    pub underruns: u64,
    /// Frames skipped because they came after their time.
    pub late: u64,
    /// Frames dropped from a full buffer.
    pub overflow: u64,
}

/// A frame the buffer holds: anything with a size, a timestamp and a
/// sequence number.
pub trait Timed {
    fn rtp_timestamp(&self) -> u32;
    fn first_seq(&self) -> u16;
    fn size(&self) -> usize;
}

struct Held<F> {
    frame: F,
    media: i64,
    due: Option<Instant>,
}

/// What [`Playout::poll`] hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Out<F> {
    /// Show it now.
    Present(F),
    /// It came after its time (or behind one already shown): skip it.
    Late(F),
    /// The buffer was full: this, the oldest, was dropped.
    Overflow(F),
}

/// The playout buffer for frames of type `F`.
pub struct Playout<F> {
    config: PlayoutConfig,
    queue: VecDeque<Held<F>>,
    out: VecDeque<Out<F>>,
    bytes: usize,
    /// Media time of the last frame pushed, unwrapped.
    last_media: Option<(i64, u32, u16)>,
    /// This instant is media time `.1`.
    base: Option<(Instant, i64)>,
    /// The last frame handed out to be shown: its media time and due time.
    shown: Option<(i64, Instant)>,
    hold: bool,
    /// The next frame starts a new base (after a seek or a resume).
    discontinuity: bool,
    /// The media step between frames: learned from the stream (the
    /// smallest step seen), the nominal one until then.
    period: Option<i64>,
    nominal: i64,
    state: BufferState,
    underruns: u64,
    late: u64,
    overflow: u64,
    /// Frames late in a row: a base that has fallen behind the stream
    /// (a resume with nothing buffered, a sender that slowed) is moved
    /// rather than skipping every frame from then on.
    late_run: u32,
}

/// Frames late in a row after which the base moves (as a jitter buffer
/// resynchronises).
const LATE_RUN_RESYNC: u32 = 3;

impl<F: Timed> Playout<F> {
    pub fn new(config: PlayoutConfig) -> Self {
        let nominal = ((config.nominal_period.as_secs_f64() * CLOCK as f64) as i64).max(1);
        Playout {
            config,
            queue: VecDeque::new(),
            out: VecDeque::new(),
            bytes: 0,
            last_media: None,
            base: None,
            shown: None,
            hold: false,
            discontinuity: false,
            period: None,
            nominal,
            state: BufferState::Buffering,
            underruns: 0,
            late: 0,
            overflow: 0,
            late_run: 0,
        }
    }

    /// Frames are presented on a schedule (not as they complete).
    fn scheduled(&self) -> bool {
        !self.config.latency.is_zero() || self.base.is_some()
    }

    fn step(&self) -> i64 {
        if self.config.lab_timing {
            self.nominal
        } else {
            self.period.unwrap_or(self.nominal)
        }
    }

    fn period(&self) -> Duration {
        ticks(self.step())
    }

    /// Media time of a frame, unwrapped against the last one.
    fn media_of(&mut self, f: &F) -> i64 {
        let (ts, seq) = (f.rtp_timestamp(), f.first_seq());
        let media = match self.last_media {
            None => {
                if self.config.lab_timing {
                    seq as i64 * self.nominal
                } else {
                    ts as i64
                }
            }
            Some((last, last_ts, last_seq)) => {
                if self.config.lab_timing {
                    last + seq.wrapping_sub(last_seq) as i16 as i64 * self.nominal
                } else {
                    last + ts.wrapping_sub(last_ts) as i32 as i64
                }
            }
        };
        if let Some((last, _, _)) = self.last_media {
            let step = media - last;
            if step > 0 && step <= MAX_STEP && !self.config.lab_timing {
                // The smallest step seen is one frame; lost frames make
                // bigger ones.
                self.period = Some(self.period.map_or(step, |p| p.min(step)));
            }
        }
        self.last_media = Some((media, ts, seq));
        media
    }

    /// A whole frame arrived at `now`.
    pub fn push(&mut self, now: Instant, frame: F) {
        let prev = self.last_media.map(|(m, _, _)| m);
        let media = self.media_of(&frame);
        let jump = prev.is_some_and(|p| {
            let step = media - p;
            !(-MAX_STEP..=MAX_STEP).contains(&step)
        });
        if self.scheduled() && (self.base.is_none() || self.discontinuity || jump) {
            self.rebase(now, media, prev);
        }
        let mut due = self
            .base
            .map(|(at, m)| at + ticks(media - m).max(Duration::ZERO));
        let behind = self.shown.is_some_and(|(m, _)| media <= m)
            || self.queue.back().is_some_and(|h| media <= h.media);
        if behind && !jump {
            // Never out of order: it is behind a frame already queued or shown.
            self.late += 1;
            self.out.push_back(Out::Late(frame));
            return;
        }
        if let Some(d) = due
            && now > d
            && !self.hold
        {
            self.late_run += 1;
            if self.late_run < LATE_RUN_RESYNC || !self.queue.is_empty() {
                self.late += 1;
                self.out.push_back(Out::Late(frame));
                return;
            }
            // Every frame comes after its time: the base is wrong, not
            // the frames.
            self.rebase(now, media, prev);
            due = self.base.map(|(at, _)| at);
        }
        self.late_run = 0;
        self.bytes += frame.size();
        self.queue.push_back(Held { frame, media, due });
        while self.queue.len() > self.config.max_frames.max(1)
            || (self.bytes > self.config.max_bytes && self.queue.len() > 1)
        {
            if let Some(h) = self.queue.pop_front() {
                self.bytes -= h.frame.size();
                self.overflow += 1;
                self.out.push_back(Out::Overflow(h.frame));
            }
        }
    }

    /// Set the base so that media time `media`, arriving at `now`, is due
    /// after the last frame shown and no sooner than the latency allows.
    fn rebase(&mut self, now: Instant, media: i64, prev: Option<i64>) {
        self.discontinuity = false;
        let mut due = now + self.config.latency;
        if let Some((_, shown_due)) = self.shown {
            let step = prev
                .map(|p| media - p)
                .filter(|s| *s > 0 && *s <= MAX_STEP)
                .unwrap_or(self.step());
            due = due.max(shown_due + ticks(step));
        }
        self.base = Some((due, media));
    }

    /// Hold everything: nothing is due until [`Playout::release`] (a
    /// pre-buffer, or PAUSE).
    pub fn hold(&mut self) {
        self.hold = true;
        self.state = BufferState::Buffering;
    }

    pub fn held(&self) -> bool {
        self.hold
    }

    /// Play again: the head of the buffer is due now and the rest follow
    /// on their media times; with nothing buffered, the next frame sets
    /// the time afresh.
    pub fn release(&mut self, now: Instant) {
        self.hold = false;
        match self.queue.front().map(|h| h.media) {
            Some(head) => {
                self.base = Some((now, head));
                let base = now;
                for h in self.queue.iter_mut() {
                    h.due = Some(base + ticks(h.media - head));
                }
                self.shown = None;
                self.discontinuity = false;
            }
            None => {
                if self.base.is_some() {
                    self.discontinuity = true;
                }
                self.shown = None;
            }
        }
    }

    /// Forget every frame (a seek, TEARDOWN); the next frame sets the
    /// time afresh.
    pub fn flush(&mut self) {
        self.queue.clear();
        self.bytes = 0;
        self.shown = None;
        self.last_media = None;
        self.base = None;
        self.discontinuity = false;
        self.state = BufferState::Buffering;
    }

    /// When [`Playout::poll`] has something to do next, once it returned
    /// None (drain it after every push and release).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.hold {
            return None;
        }
        match self.queue.front() {
            Some(h) => h.due,
            None => self
                .shown
                .filter(|_| self.state == BufferState::Playing && self.scheduled())
                .map(|(_, due)| due + self.period() * 3 / 2),
        }
    }

    /// The next thing to do at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<Out<F>> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        if self.hold {
            return None;
        }
        let Some(head) = self.queue.front() else {
            if self.scheduled()
                && self.state == BufferState::Playing
                && self
                    .shown
                    .is_some_and(|(_, due)| now >= due + self.period() * 3 / 2)
            {
                self.state = BufferState::Underrun;
                self.underruns += 1;
            }
            return None;
        };
        if head.due.is_some_and(|d| now < d) {
            if self.shown.is_none() {
                self.state = BufferState::Buffering;
            }
            return None;
        }
        let h = self.queue.pop_front()?;
        self.bytes -= h.frame.size();
        self.shown = Some((h.media, h.due.unwrap_or(now)));
        self.state = BufferState::Playing;
        Some(Out::Present(h.frame))
    }

    /// The level at `now`.
    pub fn level(&self, now: Instant) -> Level {
        let millis = match (self.queue.front(), self.queue.back()) {
            (Some(a), Some(b)) => {
                let span = ticks(b.media - a.media) + self.period();
                match (self.hold, b.due) {
                    (false, Some(d)) if d > now => d.duration_since(now) + self.period(),
                    _ => span,
                }
                .as_secs_f64()
                    * 1e3
            }
            _ => 0.0,
        };
        Level {
            frames: self.queue.len(),
            bytes: self.bytes,
            millis,
            state: self.state,
            underruns: self.underruns,
            late: self.late,
            overflow: self.overflow,
        }
    }
}

fn ticks(t: i64) -> Duration {
    if t <= 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos((t as u128 * 1_000_000_000 / CLOCK as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct F(u32, u16);
    impl Timed for F {
        fn rtp_timestamp(&self) -> u32 {
            self.0
        }
        fn first_seq(&self) -> u16 {
            self.1
        }
        fn size(&self) -> usize {
            1000
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// Frame n of a 20 fps stream (4500 ticks apart), timestamps near the wrap.
    fn frame(n: u32) -> F {
        F((u32::MAX - 20_000).wrapping_add(4500 * n), n as u16)
    }

    fn drain(p: &mut Playout<F>, now: Instant) -> Vec<Out<F>> {
        std::iter::from_fn(|| p.poll(now)).collect()
    }

    fn scheduled(latency_ms: u64) -> Playout<F> {
        Playout::new(PlayoutConfig {
            latency: MS * latency_ms as u32,
            ..PlayoutConfig::default()
        })
    }

    #[test]
    fn without_latency_frames_pass_through() {
        let t = Instant::now();
        let mut p = Playout::new(PlayoutConfig::default());
        p.push(t, frame(0));
        assert_eq!(drain(&mut p, t), [Out::Present(frame(0))]);
        p.push(t + MS * 70, frame(1));
        assert_eq!(drain(&mut p, t + MS * 70), [Out::Present(frame(1))]);
        // Behind a frame already shown: never out of order.
        p.push(t + MS * 80, frame(0));
        assert_eq!(drain(&mut p, t + MS * 80), [Out::Late(frame(0))]);
        assert_eq!(p.level(t).underruns, 0);
    }

    #[test]
    fn a_burst_is_spread_on_the_senders_clock() {
        let t = Instant::now();
        let mut p = scheduled(300);
        // Frames 0..6 sent every 50 ms; 1..=4 held up 200 ms by the network
        // and released together.
        p.push(t, frame(0));
        let burst = t + MS * 250;
        for n in 1..=4 {
            p.push(burst, frame(n));
        }
        p.push(t + MS * 250, frame(5));
        let mut shown = Vec::new();
        let mut now = t;
        while shown.len() < 6 {
            for o in drain(&mut p, now) {
                match o {
                    Out::Present(f) => shown.push((f.1, now)),
                    other => panic!("{other:?}"),
                }
            }
            now = p.poll_timeout().expect("frames wait");
        }
        for (i, (n, at)) in shown.iter().enumerate() {
            assert_eq!(*n as usize, i);
            assert_eq!(*at, t + MS * 300 + MS * 50 * i as u32, "frame {i}");
        }
        assert_eq!(p.level(now).state, BufferState::Playing);
        // Nothing more: an underrun 1.5 periods after the last frame's time.
        let last = shown[5].1;
        assert_eq!(p.poll_timeout(), Some(last + MS * 75));
        assert!(drain(&mut p, last + MS * 75).is_empty());
        let l = p.level(last + MS * 75);
        assert_eq!((l.state, l.underruns), (BufferState::Underrun, 1));
    }

    #[test]
    fn a_frame_after_its_time_is_late_and_skipped() {
        let t = Instant::now();
        let mut p = scheduled(100);
        p.push(t, frame(0));
        assert!(drain(&mut p, t).is_empty(), "due at t + 100 ms");
        assert_eq!(drain(&mut p, t + MS * 100), [Out::Present(frame(0))]);
        // Frame 1 is due at t + 150 ms; it comes at t + 180 ms.
        p.push(t + MS * 180, frame(1));
        assert_eq!(drain(&mut p, t + MS * 180), [Out::Late(frame(1))]);
        p.push(t + MS * 181, frame(2));
        assert!(drain(&mut p, t + MS * 181).is_empty());
        assert_eq!(drain(&mut p, t + MS * 200), [Out::Present(frame(2))]);
        assert_eq!(p.level(t).late, 1);
    }

    #[test]
    fn frames_late_in_a_row_move_the_base_instead_of_freezing() {
        let t = Instant::now();
        let mut p = scheduled(100);
        p.push(t, frame(0));
        assert_eq!(drain(&mut p, t + MS * 100), [Out::Present(frame(0))]);
        // From frame 1 on, every frame is 30 ms after its time (150, 200, ...).
        for n in 1..=2 {
            let at = t + MS * (100 + 50 * n + 30);
            p.push(at, frame(n));
            assert_eq!(drain(&mut p, at), [Out::Late(frame(n))]);
        }
        let at = t + MS * 280;
        p.push(at, frame(3));
        assert!(
            drain(&mut p, at).is_empty(),
            "the third in a row moves the base"
        );
        assert_eq!(drain(&mut p, at + MS * 100), [Out::Present(frame(3))]);
        p.push(t + MS * 330, frame(4));
        assert_eq!(drain(&mut p, at + MS * 150), [Out::Present(frame(4))]);
        assert_eq!(p.level(at).late, 2);
    }

    #[test]
    fn a_prebuffer_plays_from_the_buffer_at_once_then_resumes_seamlessly() {
        let t = Instant::now();
        let mut p = Playout::new(PlayoutConfig::default());
        p.hold();
        for n in 0..10 {
            p.push(t + MS * 50 * n, frame(n));
        }
        assert!(drain(&mut p, t + MS * 600).is_empty(), "held");
        let l = p.level(t + MS * 600);
        assert_eq!((l.frames, l.state), (10, BufferState::Buffering));
        assert!((l.millis - 500.0).abs() < 0.01, "{}", l.millis);
        // The user's PLAY, much later: the head at once.
        let play = t + MS * 5000;
        p.release(play);
        assert_eq!(drain(&mut p, play), [Out::Present(frame(0))]);
        // The server resumes with frame 10 a moment later: after frame 9.
        p.push(play + MS * 5, frame(10));
        let mut shown = vec![(0u16, play)];
        while shown.len() < 11 {
            let now = p.poll_timeout().unwrap();
            for o in drain(&mut p, now) {
                let Out::Present(f) = o else { panic!() };
                shown.push((f.1, now));
            }
        }
        for (i, (n, at)) in shown.iter().enumerate() {
            assert_eq!((*n as usize, *at), (i, play + MS * 50 * i as u32));
        }
    }

    #[test]
    fn resume_after_pause_with_an_empty_buffer_starts_afresh() {
        let t = Instant::now();
        let mut p = scheduled(100);
        p.push(t, frame(0));
        assert_eq!(drain(&mut p, t + MS * 100).len(), 1);
        p.hold();
        let play = t + MS * 10_000;
        p.release(play);
        p.push(play + MS * 20, frame(1));
        assert!(drain(&mut p, play + MS * 20).is_empty(), "not late");
        assert_eq!(drain(&mut p, play + MS * 120), [Out::Present(frame(1))]);
    }

    #[test]
    fn a_full_buffer_drops_the_oldest() {
        let t = Instant::now();
        let mut p = Playout::new(PlayoutConfig {
            max_frames: 3,
            ..PlayoutConfig::default()
        });
        p.hold();
        for n in 0..5 {
            p.push(t, frame(n));
        }
        assert_eq!(
            drain(&mut p, t),
            [Out::Overflow(frame(0)), Out::Overflow(frame(1))]
        );
        assert_eq!(p.level(t).frames, 3);
        assert_eq!(p.level(t).overflow, 2);
    }

    #[test]
    fn lab_timing_counts_frames_by_sequence_number() {
        let t = Instant::now();
        let mut p = Playout::new(PlayoutConfig {
            latency: MS * 100,
            lab_timing: true,
            ..PlayoutConfig::default()
        });
        // The lab's timestamps are whole seconds: 20 frames share one.
        for n in 0..3u16 {
            p.push(t, F(1_700_000_000, 1 + n));
        }
        assert_eq!(p.poll_timeout(), Some(t + MS * 100));
        drain(&mut p, t + MS * 100);
        assert_eq!(p.poll_timeout(), Some(t + MS * 150));
    }
}
