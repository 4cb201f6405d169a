//! Getting a file ready before anyone presses PLAY, with progress to show:
//! a raw-framed file is read through once to find every frame (so its
//! length, and the window's position bar, are known at SETUP), and the
//! first seconds are re-encoded for RFC 2435 if the file needs it (so the
//! first PLAY does not wait for the encoder). The window's embedded server
//! runs this for the file the user picked and draws the progress as a bar.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tracing::{debug, warn};

use crate::media::MjpegFile;
use crate::media::rtp_ready::RtpReadyFrames;

/// Seconds of video re-encoded before the first PLAY; the encode-ahead
/// worker keeps ahead of the playhead from there.
pub const PREPARED_SECONDS: u32 = 2;
/// Frame slots indexed per hold of the file's index: short enough that a
/// session reading frames meanwhile barely waits, long enough that the
/// lock costs nothing next to the reads.
const SLOTS_PER_STEP: usize = 64;

/// What the preparation is doing, with how far it has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preparing {
    /// Reading through the file to find every frame: bytes read so far.
    Indexing { done: u64, total: u64 },
    /// Re-encoding the first frames so that RFC 2435 can carry them.
    Encoding { done: usize, total: usize },
}

impl Preparing {
    /// How far this stage is, from 0 to 1.
    pub fn fraction(&self) -> f32 {
        let (done, total) = match *self {
            Preparing::Indexing { done, total } => (done as f64, total as f64),
            Preparing::Encoding { done, total } => (done as f64, total as f64),
        };
        if total <= 0.0 {
            1.0
        } else {
            (done / total).clamp(0.0, 1.0) as f32
        }
    }
}

/// A preparation running on a thread of its own. Dropping it stops the
/// thread (after at most one frame's encode) and waits for it.
pub struct Preparation {
    file: Arc<MjpegFile>,
    progress: Arc<Mutex<Option<Preparing>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Preparation {
    /// Start preparing `file` (whose frames for RTP are `ready`) at `fps`.
    pub(super) fn start(
        file: Arc<MjpegFile>,
        ready: Arc<RtpReadyFrames>,
        fps: u32,
    ) -> std::io::Result<Preparation> {
        let progress = Arc::new(Mutex::new(Some(Preparing::Indexing {
            done: file.scanned_bytes(),
            total: file.len_bytes(),
        })));
        let stop = Arc::new(AtomicBool::new(false));
        let job = Job {
            file: file.clone(),
            ready,
            fps,
            progress: progress.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("prepare".into())
            .spawn(move || job.run())?;
        Ok(Preparation {
            file,
            progress,
            stop,
            thread: Some(thread),
        })
    }

    /// What is being done now; None once the file is ready (or the
    /// preparation gave up, which the log says).
    pub fn progress(&self) -> Option<Preparing> {
        let now = *self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        match now {
            // Read from the file itself: a SETUP may be indexing it too
            // (holding the index while our thread waits for it).
            Some(Preparing::Indexing { total, .. }) => Some(Preparing::Indexing {
                done: self.file.scanned_bytes(),
                total,
            }),
            other => other,
        }
    }
}

impl Drop for Preparation {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Job {
    file: Arc<MjpegFile>,
    ready: Arc<RtpReadyFrames>,
    fps: u32,
    progress: Arc<Mutex<Option<Preparing>>>,
    stop: Arc<AtomicBool>,
}

impl Job {
    fn run(self) {
        self.work();
        // Whatever happened, nobody is to wait for a bar that no longer moves.
        self.set(None);
    }

    fn work(&self) {
        let total = self.file.len_bytes();
        loop {
            if self.stopped() {
                return;
            }
            match self.file.index_more(SLOTS_PER_STEP) {
                Ok(true) => break,
                Ok(false) => self.set(Some(Preparing::Indexing {
                    done: self.file.scanned_bytes(),
                    total,
                })),
                Err(e) => {
                    // Sessions meet the same error at that frame and say it.
                    warn!(file = self.file.name(), "cannot index the file: {e}");
                    return;
                }
            }
        }
        let frames = self.file.frame_count().unwrap_or(0);
        let total = frames.min((self.fps * PREPARED_SECONDS) as usize);
        for n in 0..total {
            self.set(Some(Preparing::Encoding { done: n, total }));
            if self.stopped() {
                return;
            }
            // A frame that cannot be carried is skipped here; the sender
            // says why when it reaches it.
            if let Err(e) = self.ready.frame(n) {
                debug!(file = self.file.name(), "preparing frame {n}: {e}");
            }
        }
        debug!(
            file = self.file.name(),
            frames,
            reencoded = self.ready.reencoded().0,
            "ready to play"
        );
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn set(&self, now: Option<Preparing>) {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_clamped_and_an_empty_stage_is_done() {
        let f = Preparing::Indexing {
            done: 50,
            total: 200,
        }
        .fraction();
        assert!((f - 0.25).abs() < 1e-6);
        assert_eq!(Preparing::Encoding { done: 0, total: 0 }.fraction(), 1.0);
        assert_eq!(Preparing::Encoding { done: 9, total: 3 }.fraction(), 1.0);
    }
}
