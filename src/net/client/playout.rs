//! The playout thread: whole frames from the receiving side go into the
//! sans-IO [`Playout`] buffer; each is decoded to RGBA when it is due and
//! sent to the owner, off the network threads. Every frame's fate goes in
//! the frame records; the buffer's level goes in the counters, and, while
//! it is held, to the engine (the pre-buffer's PAUSE waits for it).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use tracing::debug;

use super::{
    ClientEvent, DecodedFrame, Events, MAX_QUEUED_EVENTS, Records, SharedStats, with_stats,
};
use crate::media::decode::decode_rgba;
use crate::protocol::analysis::{FrameStatus, percentile};
use crate::protocol::playout::{Out, Playout, PlayoutConfig};
use crate::protocol::receiver::ReceivedFrame;

/// What the engine tells the playout buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlayoutOrder {
    /// Keep what arrives; show nothing (a pre-buffer, or PAUSE).
    Hold,
    /// The user's PLAY at this instant: the head of the buffer now.
    Release(Instant),
    /// Forget what is held (a seek, TEARDOWN).
    Flush,
}

/// How often counters and records go out.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The longest the thread sleeps: how soon it notices the end.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// Presentation latency samples kept for the percentiles.
const LATENCY_SAMPLES: usize = 600;

pub(super) struct PlayoutThread {
    playout: Playout<ReceivedFrame>,
    frames: Receiver<ReceivedFrame>,
    orders: Receiver<PlayoutOrder>,
    held: Sender<usize>,
    events: Events,
    stats: SharedStats,
    records: Records,
    number: u64,
    presented: u64,
    presented_times: VecDeque<Instant>,
    undecodable: u64,
    skipped: u64,
    latencies: VecDeque<f64>,
    last_held: usize,
}

impl PlayoutThread {
    pub(super) fn new(
        config: PlayoutConfig,
        frames: Receiver<ReceivedFrame>,
        orders: Receiver<PlayoutOrder>,
        held: Sender<usize>,
        events: Events,
        stats: SharedStats,
    ) -> Self {
        PlayoutThread {
            playout: Playout::new(config),
            frames,
            orders,
            held,
            events,
            stats,
            records: Records::default(),
            number: 0,
            presented: 0,
            presented_times: VecDeque::new(),
            undecodable: 0,
            skipped: 0,
            latencies: VecDeque::new(),
            last_held: 0,
        }
    }

    pub(super) fn run(mut self) {
        let mut next_publish = Instant::now();
        let mut frames_open = true;
        loop {
            let now = Instant::now();
            let wait = self
                .playout
                .poll_timeout()
                .map_or(IDLE_WAIT, |t| t.saturating_duration_since(now))
                .min(IDLE_WAIT)
                .min(next_publish.saturating_duration_since(now));
            let frames = if frames_open {
                self.frames.clone()
            } else {
                crossbeam_channel::never()
            };
            select! {
                recv(frames) -> f => match f {
                    Ok(f) => self.playout.push(Instant::now(), f),
                    // The session's media ended: show nothing more.
                    Err(_) => frames_open = false,
                },
                recv(self.orders) -> o => match o {
                    Ok(PlayoutOrder::Hold) => self.playout.hold(),
                    Ok(PlayoutOrder::Release(at)) => self.playout.release(at),
                    Ok(PlayoutOrder::Flush) => self.playout.flush(),
                    Err(_) => frames_open = false,
                },
                default(wait) => {}
            }
            if !frames_open {
                break;
            }
            let now = Instant::now();
            while let Some(out) = self.playout.poll(now) {
                self.out(out);
            }
            let level = self.playout.level(now);
            if self.playout.held() && level.frames != self.last_held {
                self.last_held = level.frames;
                let _ = self.held.send(level.frames);
            }
            if now >= next_publish {
                next_publish = now + PUBLISH_EVERY;
                self.publish(now);
            }
        }
        self.publish(Instant::now());
    }

    fn out(&mut self, out: Out<ReceivedFrame>) {
        match out {
            Out::Present(f) => self.present(f),
            Out::Late(f) => self.records.frames.push(f.record(None, FrameStatus::Late)),
            Out::Overflow(f) => self
                .records
                .frames
                .push(f.record(None, FrameStatus::Overflow)),
        }
    }

    fn present(&mut self, f: ReceivedFrame) {
        if self.events.backlog() > MAX_QUEUED_EVENTS {
            // The owner stopped draining (a hidden window): no megabytes
            // of pixels piling up.
            self.skipped += 1;
            self.records.frames.push(f.record(None, FrameStatus::Late));
            return;
        }
        match decode_rgba(&f.frame.jpeg) {
            Ok((width, height, rgba)) => {
                self.number += 1;
                let now = Instant::now();
                self.presented += 1;
                self.presented_times.push_back(now);
                if let Some(l) = f.latency_ms {
                    let held = now.saturating_duration_since(f.arrival).as_secs_f64() * 1e3;
                    self.latencies.push_back(l + held);
                    if self.latencies.len() > LATENCY_SAMPLES {
                        self.latencies.pop_front();
                    }
                }
                with_stats(&self.stats, |s| {
                    s.stats.frames += 1;
                    s.frame_times.push_back(now);
                    if s.stats.first_frame_ms.is_none()
                        && let Some(p) = s.play_sent
                    {
                        s.stats.first_frame_ms = Some(now.duration_since(p).as_secs_f64() * 1e3);
                    }
                });
                self.records
                    .frames
                    .push(f.record(Some(now), FrameStatus::Presented));
                self.events.send(ClientEvent::Frame(DecodedFrame {
                    width,
                    height,
                    rgba: Arc::new(rgba),
                    seq: f.frame.seq,
                    rtp_timestamp: f.frame.timestamp,
                    number: self.number,
                    jpeg: Arc::new(f.frame.jpeg),
                }));
            }
            Err(e) => {
                debug!("frame {} does not decode: {e}", f.frame.seq);
                self.undecodable += 1;
                self.records
                    .frames
                    .push(f.record(None, FrameStatus::Undecodable));
            }
        }
    }

    fn publish(&mut self, now: Instant) {
        let level = self.playout.level(now);
        while self
            .presented_times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > Duration::from_secs(1))
        {
            self.presented_times.pop_front();
        }
        let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let origin = with_stats(&self.stats, |s| {
            let st = &mut s.stats;
            st.buffer_frames = level.frames as u64;
            st.buffer_ms = level.millis;
            st.buffer_state = level.state;
            st.underruns = level.underruns;
            st.frames_presented = self.presented;
            st.frames_late = level.late + self.skipped;
            st.frames_overflow = level.overflow;
            st.decode_errors = self.undecodable;
            st.fps_presented = self.presented_times.len() as f64;
            st.presented_latency_p50_ms = percentile(&sorted, 0.5);
            st.presented_latency_p99_ms = percentile(&sorted, 0.99);
            s.play_replied
        });
        if self.records.frames.is_empty() {
            return;
        }
        self.records.origin = origin;
        self.events
            .send(ClientEvent::Records(std::mem::take(&mut self.records)));
    }
}
