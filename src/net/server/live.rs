//! A live source running: one thread makes (or captures) and encodes one
//! frame per period, on an absolute schedule, and keeps the last few for
//! every viewer to take, so a source costs one encode per frame however
//! many watch. It runs only while someone watches: the first viewer
//! starts it, and it stops [`LINGER`] after the last one leaves.
//!
//! Frames are numbered from the source's start and stamped from its own
//! clock (`ts_base + index * 90000 / fps`), the same for every viewer: two
//! viewers that joined seconds apart see the same RTP timestamp on the
//! same picture. A viewer sends frame k half a period after it was due to
//! be made, so an encode shorter than that is never waited for.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::media::camera::{CameraError, Capture, open_v4l2, to_rtp_jpeg};
use crate::media::live::{SourceKind, SourceSpec, pattern_frame};
use crate::protocol::sender::VIDEO_CLOCK;

/// How long a source goes on after its last viewer left (one coming back
/// at once finds it running).
pub const LINGER: Duration = Duration::from_secs(3);
/// Frames kept for viewers a moment behind.
const KEPT: usize = 8;

/// One frame of a live source.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub index: u64,
    pub jpeg: Arc<Vec<u8>>,
}

#[derive(Default)]
struct State {
    viewers: usize,
    /// Since when nobody watches.
    alone_since: Option<Instant>,
    running: bool,
    /// Frame 0 of the current run is due at `epoch`, frame k `k` periods later.
    epoch: Option<Instant>,
    /// The next index to make (numbering goes on across runs).
    next: u64,
    frames: VecDeque<LiveFrame>,
    thread: Option<JoinHandle<()>>,
    /// Why the source stopped by itself, for viewers to be told.
    failed: Option<String>,
}

/// Opens a camera by its device path (V4L2, or a double in tests).
pub type CameraOpener =
    Arc<dyn Fn(&str, u16, u16, u32) -> Result<Box<dyn Capture>, CameraError> + Send + Sync>;

/// How a server opens its cameras: V4L2, or a device double (tests).
#[derive(Clone)]
pub struct Cameras(pub CameraOpener);

impl std::fmt::Debug for Cameras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cameras(..)")
    }
}

/// JPEG quality of camera frames that must be encoded here.
const CAMERA_QUALITY: u8 = 85;

struct Shared {
    spec: SourceSpec,
    open_camera: CameraOpener,
    ts_base: u32,
    state: Mutex<State>,
    wake: Condvar,
    stop: std::sync::atomic::AtomicBool,
}

/// A live source mounted on the server (running or not).
#[derive(Clone)]
pub struct LiveSource {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("spec", &self.shared.spec)
            .finish_non_exhaustive()
    }
}

impl LiveSource {
    pub fn new(spec: SourceSpec) -> LiveSource {
        LiveSource::with_camera(spec, Arc::new(open_v4l2))
    }

    /// A source whose cameras open through `open_camera` (the device
    /// double of the tests).
    pub fn with_camera(spec: SourceSpec, open_camera: CameraOpener) -> LiveSource {
        LiveSource {
            shared: Arc::new(Shared {
                spec,
                open_camera,
                ts_base: rand::random(),
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                stop: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn spec(&self) -> &SourceSpec {
        &self.shared.spec
    }

    /// Start watching: the source runs (from now, if it did not).
    pub fn join(&self) -> Result<LiveViewer, String> {
        let mut st = self.shared.lock();
        if let Some(why) = st.failed.take() {
            // A new viewer tries again: a camera may be back.
            info!(source = %self.shared.spec.name, "starting again after: {why}");
        }
        st.viewers += 1;
        st.alone_since = None;
        if !st.running {
            if let Some(t) = st.thread.take() {
                drop(st);
                let _ = t.join();
                st = self.shared.lock();
            }
            let period = period(self.shared.spec.fps);
            let now = Instant::now();
            // Frame `next` is due now: the numbering and the clock go on.
            st.epoch = Some(now.checked_sub(period * st.next as u32).unwrap_or(now));
            st.running = true;
            st.frames.clear();
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name(format!("live-{}", self.shared.spec.name))
                .spawn(move || produce(&shared))
            {
                Ok(t) => st.thread = Some(t),
                Err(e) => {
                    st.running = false;
                    st.viewers -= 1;
                    return Err(format!("cannot start the source's thread: {e}"));
                }
            }
            info!(source = %self.shared.spec.name, "live source started ({}x{} at {} fps)",
                self.shared.spec.width, self.shared.spec.height, self.shared.spec.fps);
        }
        Ok(LiveViewer {
            source: self.clone(),
        })
    }

    /// Stop the source's thread for good (the server stops).
    pub fn shut_down(&self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.wake.notify_all();
        let thread = self.shared.lock().thread.take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Whether the source's thread is making frames.
    pub fn running(&self) -> bool {
        self.shared.lock().running
    }

    /// Why the source stopped by itself, while it is stopped.
    pub fn failure(&self) -> Option<String> {
        let st = self.shared.lock();
        (!st.running).then(|| st.failed.clone()).flatten()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn period(fps: u32) -> Duration {
    Duration::from_nanos(1_000_000_000 / u64::from(fps.max(1)))
}

/// One viewer of a live source; dropping it leaves.
pub struct LiveViewer {
    source: LiveSource,
}

impl Drop for LiveViewer {
    fn drop(&mut self) {
        let mut st = self.source.shared.lock();
        st.viewers = st.viewers.saturating_sub(1);
        if st.viewers == 0 {
            st.alone_since = Some(Instant::now());
        }
    }
}

impl LiveViewer {
    /// Tells sources apart (packetized frames are shared by identity).
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.source.shared) as usize
    }

    pub fn fps(&self) -> u32 {
        self.source.shared.spec.fps
    }

    /// The frame to send at or after index `n`: `n` itself, or the oldest
    /// kept after it when it was skipped or is gone; None when `n` is not
    /// made yet (or the source stopped).
    pub fn frame_from(&self, n: u64) -> Option<LiveFrame> {
        let st = self.source.shared.lock();
        st.frames.iter().find(|f| f.index >= n).cloned()
    }

    /// The index of the next frame to be made: where a viewer that PLAYs
    /// now starts (the live edge, no backlog).
    pub fn live_edge(&self) -> u64 {
        let st = self.source.shared.lock();
        st.frames.back().map_or(st.next, |f| f.index + 1)
    }

    /// When frame `index` is to be sent: half a period after it is due to
    /// be made, so that its encode is done.
    pub fn send_at(&self, index: u64) -> Instant {
        let st = self.source.shared.lock();
        let p = period(self.fps());
        let epoch = st.epoch.unwrap_or_else(Instant::now);
        epoch + p * u32::try_from(index).unwrap_or(u32::MAX) + p / 2
    }

    /// Frame `index`'s RTP timestamp, the same for every viewer.
    pub fn timestamp(&self, index: u64) -> u32 {
        let ticks = index * VIDEO_CLOCK / u64::from(self.fps().max(1));
        self.source.shared.ts_base.wrapping_add(ticks as u32)
    }

    /// The source's RTP clock now (for sender reports).
    pub fn timestamp_now(&self) -> u32 {
        let st = self.source.shared.lock();
        let since = st.epoch.map_or(0.0, |e| {
            Instant::now().saturating_duration_since(e).as_secs_f64()
        });
        let ticks = (since * VIDEO_CLOCK as f64) as u64;
        self.source.shared.ts_base.wrapping_add(ticks as u32)
    }

    /// Why the source stopped by itself (a camera unplugged), once.
    pub fn failure(&self) -> Option<String> {
        let st = self.source.shared.lock();
        (!st.running).then(|| st.failed.clone()).flatten()
    }
}

/// The source's thread: one frame per period until nobody has watched
/// for [`LINGER`] (or the server stops).
fn produce(shared: &Shared) {
    let spec = &shared.spec;
    let p = period(spec.fps);
    let mut camera = match &spec.kind {
        SourceKind::TestPattern => None,
        SourceKind::Camera { device } => {
            match (shared.open_camera)(device, spec.width, spec.height, spec.fps) {
                Ok(c) => Some(c),
                Err(e) => return stopped(shared, e.to_string()),
            }
        }
    };
    loop {
        let (index, due) = {
            let mut st = shared.lock();
            let quiet = st.alone_since.is_some_and(|t| t.elapsed() >= LINGER);
            if quiet || shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                st.running = false;
                info!(source = %spec.name, "live source stopped: nobody watches");
                return;
            }
            let epoch = st.epoch.unwrap_or_else(Instant::now);
            // Behind (a slow encode, a busy machine): skip to the frame due
            // now rather than make old ones.
            let now_index = (Instant::now().saturating_duration_since(epoch).as_nanos()
                / p.as_nanos().max(1)) as u64;
            let index = st.next.max(now_index);
            (index, epoch + p * u32::try_from(index).unwrap_or(u32::MAX))
        };
        // Wait for the frame's time, waking early only to stop.
        {
            let mut st = shared.lock();
            while Instant::now() < due && !shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                let wait = due.saturating_duration_since(Instant::now());
                st = shared
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let made = match camera.as_mut() {
            None => pattern_frame(index, spec.width, spec.height, SystemTime::now())
                .map_err(|e| e.to_string()),
            Some(c) => c
                .next_frame()
                .map_err(|e| e.to_string())
                .and_then(|f| to_rtp_jpeg(&f, CAMERA_QUALITY)),
        };
        if let Err(why) = made {
            return stopped(shared, why);
        }
        let mut st = shared.lock();
        match made {
            Ok(jpeg) => {
                st.frames.push_back(LiveFrame {
                    index,
                    jpeg: Arc::new(jpeg),
                });
                while st.frames.len() > KEPT {
                    st.frames.pop_front();
                }
                st.next = index + 1;
            }
            Err(_) => return,
        }
    }
}

/// The source stopped by itself: said once, and kept for its viewers.
fn stopped(shared: &Shared, why: String) {
    warn!(source = %shared.spec.name, "live source stopped: {why}");
    let mut st = shared.lock();
    st.running = false;
    st.failed = Some(why);
    st.frames.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::camera::{CameraFrame, PixelFormat, Replay};
    use crate::media::live::SourceSpec;

    #[test]
    fn viewers_share_one_numbering_and_clock_and_the_source_stops_alone() {
        let source = LiveSource::new(SourceSpec::parse("p=testpattern:64x48@50").unwrap());
        let a = source.join().unwrap();
        let b = source.join().unwrap();
        assert!(source.running());
        let deadline = Instant::now() + Duration::from_secs(5);
        let first = loop {
            if let Some(f) = a.frame_from(0) {
                break f;
            }
            assert!(Instant::now() < deadline, "no frame made");
            std::thread::sleep(Duration::from_millis(5));
        };
        let same = b.frame_from(first.index).unwrap();
        assert_eq!(same.index, first.index);
        assert!(Arc::ptr_eq(&same.jpeg, &first.jpeg), "one encode for both");
        assert_eq!(a.timestamp(first.index), b.timestamp(first.index));
        assert_eq!(
            a.timestamp(first.index + 50),
            a.timestamp(first.index).wrapping_add(90_000)
        );
        assert!(a.live_edge() > first.index);
        drop(a);
        drop(b);
        let deadline = Instant::now() + LINGER + Duration::from_secs(5);
        while source.running() {
            assert!(Instant::now() < deadline, "still running alone");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Watched again: numbering goes on where it was.
        let c = source.join().unwrap();
        assert!(c.live_edge() > first.index);
        drop(c);
        source.shut_down();
    }

    fn yuyv(w: u16, h: u16, y: u8) -> CameraFrame {
        CameraFrame {
            format: PixelFormat::Yuyv,
            width: w,
            height: h,
            bytes: [y, 128, y, 128].repeat(usize::from(w) * usize::from(h) / 2),
        }
    }

    #[test]
    fn a_camera_through_the_device_double_is_shared_and_its_unplugging_said() {
        let spec = SourceSpec::parse("cam=camera:/dev/video0:64x48@50").unwrap();
        let opener: CameraOpener = Arc::new(|device: &str, _, _, _| {
            let frames = vec![yuyv(64, 48, 60), yuyv(64, 48, 200)];
            Ok(Box::new(
                Replay::new(frames).failing_after(20, CameraError::Unplugged(device.into())),
            ) as Box<dyn Capture>)
        });
        let source = LiveSource::with_camera(spec, opener);
        let v = source.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let first = loop {
            if let Some(f) = v.frame_from(0) {
                break f;
            }
            assert!(Instant::now() < deadline, "no frame from the camera");
            std::thread::sleep(Duration::from_millis(5));
        };
        let c = crate::protocol::rtp_jpeg::carriable(&first.jpeg).expect("4:2:0 for RTP");
        assert_eq!((c.width, c.height), (64, 48));
        let why = loop {
            if let Some(w) = v.failure() {
                break w;
            }
            assert!(Instant::now() < deadline, "the unplugging went unsaid");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(why.contains("/dev/video0 was unplugged"), "{why}");
        source.shut_down();
    }

    #[test]
    fn a_camera_that_cannot_be_read_is_said_in_words() {
        let source = LiveSource::new(SourceSpec::parse("c=camera:/dev/video9:64x48@10").unwrap());
        let v = source.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let why = loop {
            if let Some(w) = v.failure() {
                break w;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(why.contains("/dev/video9"), "{why}");
        source.shut_down();
    }
}
