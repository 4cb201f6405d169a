//! Frames made fit for RTP/JPEG (RFC 2435), which can only carry baseline
//! 8-bit YCbCr JPEG sampled 4:2:2 or 4:2:0 with the standard Huffman tables
//! and one interleaved scan. Many clips (the lab's movie.Mjpeg, anything
//! written by the `image` crate) are 4:4:4, so standard peers (ffmpeg,
//! GStreamer, VLC) would get nothing from them as they are.
//!
//! Frames that can travel go out untouched. The others are decoded and
//! re-encoded as 4:2:0 once per file, not per session: one shared
//! [`RtpReadyFrames`] per file caches the results, so that ten viewers of a
//! 4:4:4 clip cost one encode per frame.
//!
//! A 1080p frame takes about 20 ms to re-encode, most of a 30 fps frame
//! period, so it is not left to the sender's path: while sessions play a
//! file that needs it (each through a [`Viewer`]), one worker per file
//! encodes the frames ahead of their playheads, nearest deadline first
//! (across the wrap to frame 0 for a session that loops), and the senders
//! find them cached. A sender waits only for a frame that is
//! being encoded at that moment; one that nobody has started (the worker is
//! behind) it encodes itself, as before. No lock is held while encoding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::media::reencode::describe;
pub use crate::media::reencode::{RTP_QUALITY, ReencodeError, reencode_for_rtp};
use crate::media::{MediaError, MjpegFile};
use crate::protocol::rtp_jpeg::{self, CarryError};

/// Most bytes of re-encoded frames kept per file. movie.Mjpeg's 500 frames
/// take 6 MB; a long HD clip would not fit: then the frames needed last
/// (behind every viewer, or just played by a looping one) make room for
/// frames needed sooner, and a frame that still does not fit is re-encoded
/// on every request instead of growing memory.
pub const CACHE_LIMIT: usize = 256 * 1024 * 1024;

/// Why [`RtpReadyFrames::frame`] has no frame to give.
#[derive(Debug, thiserror::Error)]
pub enum RtpReadyError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("frame {index} of {file} cannot be sent as RTP/JPEG: {source}")]
    Frame {
        file: String,
        index: usize,
        source: ReencodeError,
    },
}

impl RtpReadyError {
    /// The frame index the error is about, when it is about one frame.
    pub fn frame_index(&self) -> Option<usize> {
        match self {
            RtpReadyError::Frame { index, .. } => Some(*index),
            RtpReadyError::Media(
                MediaError::FrameOutOfRange { index, .. } | MediaError::FileChanged { index, .. },
            ) => Some(*index),
            RtpReadyError::Media(_) => None,
        }
    }
}

/// What is known about one frame index.
#[derive(Default)]
enum Slot {
    #[default]
    Unseen,
    /// Carriable as it is: read it from the file each time.
    Untouched,
    /// Re-encoded and kept.
    Cached(Arc<Vec<u8>>),
    /// Someone (the worker or a sender) is reading, checking or encoding
    /// it; whoever else wants it waits for them.
    Busy,
    /// Needs re-encoding; nothing kept yet, or any more (it made room for
    /// frames ahead of the viewers).
    Reencode,
    /// Needs re-encoding, and its bytes did not fit in the cache.
    OverBudget,
    /// The last attempt failed (`checked`: after finding that the frame
    /// needs re-encoding). The worker leaves it; a sender tries again and
    /// says why it fails.
    Failed { checked: bool },
}

impl Slot {
    fn is_ready(&self) -> bool {
        matches!(self, Slot::Untouched | Slot::Cached(_))
    }

    /// Nothing for the worker to do here.
    fn is_settled(&self) -> bool {
        matches!(
            self,
            Slot::Untouched | Slot::Cached(_) | Slot::OverBudget | Slot::Failed { .. }
        )
    }
}

/// Where one viewer reads next.
struct Cursor {
    at: usize,
    /// Every frame in `at..frontier` is settled, so the worker's search for
    /// work starts here instead of at `at`.
    frontier: usize,
    /// After the last frame it plays frame 0 again: the frames from 0 are
    /// ahead of it too.
    looping: bool,
}

/// The worker thread of the moment.
struct Worker {
    id: u64,
    thread: Option<JoinHandle<()>>,
}

struct State {
    slots: Vec<Slot>,
    cursors: HashMap<u64, Cursor>,
    next_viewer: u64,
    /// How many frames the file has, once a read past the last said so.
    end: Option<usize>,
    cached_bytes: usize,
    cached_frames: usize,
    /// The worker thread, while it is wanted. A worker whose id is no
    /// longer here ends at its next look.
    worker: Option<Worker>,
    next_worker: u64,
}

/// Frames of one file in a form RFC 2435 can carry: untouched where they
/// already can, re-encoded once (4:2:0, standard tables, quality
/// [`RTP_QUALITY`]) where they cannot.
///
/// Make one per file and share it (via `Arc`) among all the sessions
/// playing that file: the cache, the worker and the encode-once guarantee
/// are per object.
pub struct RtpReadyFrames {
    file: Arc<MjpegFile>,
    /// Held only to look at or change slots and cursors, never while
    /// reading, checking or encoding a frame.
    state: Mutex<State>,
    /// A slot or a cursor changed.
    changed: Condvar,
    cache_limit: usize,
    ahead: bool,
    reencoded: AtomicUsize,
    encodes: AtomicUsize,
    workers_started: AtomicUsize,
    first_reason: OnceLock<String>,
    cache_full_logged: AtomicBool,
}

impl std::fmt::Debug for RtpReadyFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpReadyFrames")
            .field("file", &self.file.name())
            .field("reencoded", &self.reencoded.load(Ordering::Relaxed))
            .field("encodes", &self.encodes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One session's place in a file's [`RtpReadyFrames`]: the worker encodes
/// ahead of it. Dropping it forgets the place (and the worker stops when
/// no viewer is left).
pub struct Viewer {
    frames: Arc<RtpReadyFrames>,
    id: u64,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("file", &self.frames.file.name())
            .field("id", &self.id)
            .finish()
    }
}

impl Viewer {
    /// Frame n ready for RFC 2435, or Ok(None) past the end; the playhead
    /// moves to n.
    pub fn frame(&self, n: usize) -> Result<Option<Arc<Vec<u8>>>, RtpReadyError> {
        self.frames.set_cursor(self.id, n);
        let frame = self.frames.frame(n);
        // A file whose first frames travel as they are may still hold some
        // that do not.
        self.frames.ensure_worker();
        frame
    }

    /// Moves the playhead (PLAY with Range): the worker follows.
    pub fn seek(&self, n: usize) {
        self.frames.set_cursor(self.id, n);
    }

    /// Says that this viewer starts over at frame 0 after the last frame
    /// (a server that loops its files), so that the worker encodes across
    /// the wrap and the cache keeps the first frames for it.
    pub fn set_looping(&self, looping: bool) {
        let mut st = self.frames.lock();
        if let Some(c) = st.cursors.get_mut(&self.id) {
            c.looping = looping;
        }
        drop(st);
        self.frames.changed.notify_all();
    }

    pub fn frames(&self) -> &Arc<RtpReadyFrames> {
        &self.frames
    }
}

impl Drop for Viewer {
    /// The last viewer to go takes the worker with it and waits for it to
    /// end (at most the encode it is in), so that no thread outlives the
    /// file's last session.
    fn drop(&mut self) {
        let mut st = self.frames.lock();
        st.cursors.remove(&self.id);
        let worker = if st.cursors.is_empty() {
            st.worker.take()
        } else {
            None
        };
        drop(st);
        self.frames.changed.notify_all();
        if let Some(thread) = worker.and_then(|w| w.thread) {
            let _ = thread.join();
        }
    }
}

/// A slot taken for reading, checking or encoding. Dropped unsettled (a
/// panic), it puts back what was known, so that nobody waits for ever.
struct Claim<'a> {
    frames: &'a RtpReadyFrames,
    n: usize,
    /// The frame is known to need re-encoding.
    checked: bool,
    armed: bool,
}

impl Claim<'_> {
    fn settle(mut self, decide: impl FnOnce(&mut State) -> Slot) {
        self.armed = false;
        let mut st = self.frames.lock();
        let slot = decide(&mut st);
        if let Some(s) = st.slots.get_mut(self.n) {
            *s = slot;
        }
        drop(st);
        self.frames.changed.notify_all();
    }

    /// The frame does not exist: the file ends before it.
    fn settle_end(mut self) {
        self.armed = false;
        let mut st = self.frames.lock();
        st.end = Some(st.end.map_or(self.n, |e| e.min(self.n)));
        let n = self.n;
        st.slots.truncate(n);
        drop(st);
        self.frames.changed.notify_all();
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.armed {
            let restore = if self.checked {
                Slot::Reencode
            } else {
                Slot::Unseen
            };
            if let Some(s) = self.frames.lock().slots.get_mut(self.n) {
                *s = restore;
            }
            self.frames.changed.notify_all();
        }
    }
}

impl RtpReadyFrames {
    pub fn new(file: Arc<MjpegFile>) -> Self {
        Self::with_cache_limit(file, CACHE_LIMIT)
    }

    /// Like [`RtpReadyFrames::new`] with another budget for re-encoded
    /// frames, in bytes (0 re-encodes on every request).
    pub fn with_cache_limit(file: Arc<MjpegFile>, cache_limit: usize) -> Self {
        RtpReadyFrames {
            file,
            state: Mutex::new(State {
                slots: Vec::new(),
                cursors: HashMap::new(),
                next_viewer: 1,
                end: None,
                cached_bytes: 0,
                cached_frames: 0,
                worker: None,
                next_worker: 1,
            }),
            changed: Condvar::new(),
            cache_limit,
            ahead: true,
            reencoded: AtomicUsize::new(0),
            encodes: AtomicUsize::new(0),
            workers_started: AtomicUsize::new(0),
            first_reason: OnceLock::new(),
            cache_full_logged: AtomicBool::new(false),
        }
    }

    /// Whether viewers get a worker encoding ahead of them (the default).
    /// Without it each frame is re-encoded when first asked for, in the
    /// sender's path, as before the worker existed; kept for measuring
    /// what the worker gains.
    pub fn encode_ahead(mut self, on: bool) -> Self {
        self.ahead = on;
        self
    }

    pub fn file(&self) -> &Arc<MjpegFile> {
        &self.file
    }

    /// A new playhead at frame `from`. If the file needs re-encoding there,
    /// the worker starts (or keeps) encoding ahead of it.
    pub fn viewer(self: &Arc<Self>, from: usize) -> Viewer {
        let id = {
            let mut st = self.lock();
            let id = st.next_viewer;
            st.next_viewer += 1;
            st.cursors.insert(
                id,
                Cursor {
                    at: from,
                    frontier: from,
                    looping: false,
                },
            );
            id
        };
        self.changed.notify_all();
        self.check(from);
        self.ensure_worker();
        Viewer {
            frames: Arc::clone(self),
            id,
        }
    }

    /// Frame n ready for RFC 2435, or Ok(None) past the end.
    pub fn frame(&self, n: usize) -> Result<Option<Arc<Vec<u8>>>, RtpReadyError> {
        let mut read = None;
        let mut st = self.lock();
        let claim = loop {
            match st.slots.get(n) {
                Some(Slot::Cached(jpeg)) => return Ok(Some(Arc::clone(jpeg))),
                Some(Slot::Untouched) => {
                    drop(st);
                    return Ok(self.read(n, read)?.map(Arc::new));
                }
                // The worker (or another session) is at it: it finishes
                // sooner than a fresh encode would.
                Some(Slot::Busy) => st = self.wait(st),
                Some(_) => break self.claim(&mut st, n),
                None if read.is_some() => break self.claim(&mut st, n),
                None => {
                    // The file is asked first so that a request past the
                    // end never grows the slot table.
                    drop(st);
                    let Some(bytes) = self.file.frame(n)? else {
                        return Ok(None);
                    };
                    read = Some(bytes);
                    st = self.lock();
                }
            }
        };
        drop(st);
        self.make_ready(claim, read)
    }

    /// Whether frame n can be had without encoding: cached, or carriable
    /// as it is.
    pub fn is_ready(&self, n: usize) -> bool {
        self.lock().slots.get(n).is_some_and(Slot::is_ready)
    }

    /// Waits until frame n is ready (see [`RtpReadyFrames::is_ready`]) or
    /// `timeout` passes; false on timeout or past the end.
    pub fn wait_ready(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if st.slots.get(n).is_some_and(Slot::is_ready) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if st.end.is_some_and(|e| n >= e) || left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// How many frames had to be re-encoded so far, and why (first reason).
    pub fn reencoded(&self) -> (usize, Option<String>) {
        (
            self.reencoded.load(Ordering::Relaxed),
            self.first_reason.get().cloned(),
        )
    }

    /// How many encodes ran in total: equal to the first number of
    /// [`RtpReadyFrames::reencoded`] while everything fits in the cache.
    pub fn encodes_done(&self) -> usize {
        self.encodes.load(Ordering::Relaxed)
    }

    /// Bytes of re-encoded frames held.
    pub fn cached_bytes(&self) -> usize {
        self.lock().cached_bytes
    }

    /// Re-encoded frames held.
    pub fn cached_frames(&self) -> usize {
        self.lock().cached_frames
    }

    /// Whether the worker runs now.
    pub fn worker_running(&self) -> bool {
        self.lock().worker.is_some()
    }

    /// How many times a worker was started for this file (one at a time).
    pub fn workers_started(&self) -> usize {
        self.workers_started.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State changes only by whole assignments after the fallible work,
        // so a panic while it is held cannot leave it half written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks slot n busy (growing the table to it).
    fn claim(&self, st: &mut State, n: usize) -> Claim<'_> {
        if st.slots.len() <= n {
            st.slots.resize_with(n + 1, Default::default);
        }
        let was = std::mem::replace(&mut st.slots[n], Slot::Busy);
        Claim {
            frames: self,
            n,
            checked: matches!(
                was,
                Slot::Reencode | Slot::OverBudget | Slot::Failed { checked: true }
            ),
            armed: true,
        }
    }

    fn read(&self, n: usize, read: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, RtpReadyError> {
        match read {
            Some(bytes) => Ok(Some(bytes)),
            None => Ok(self.file.frame(n)?),
        }
    }

    /// Reads, checks and if need be re-encodes the claimed frame, with no
    /// lock held, then settles its slot.
    fn make_ready(
        &self,
        mut claim: Claim<'_>,
        read: Option<Vec<u8>>,
    ) -> Result<Option<Arc<Vec<u8>>>, RtpReadyError> {
        let n = claim.n;
        let original = match self.read(n, read) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                claim.settle_end();
                return Ok(None);
            }
            Err(e) => {
                let checked = claim.checked;
                claim.settle(|_| Slot::Failed { checked });
                return Err(e);
            }
        };
        if !claim.checked {
            match rtp_jpeg::carriable(&original) {
                Ok(_) => {
                    claim.settle(|_| Slot::Untouched);
                    return Ok(Some(Arc::new(original)));
                }
                Err(why) => {
                    // Counted here, before the attempt, so that a frame
                    // that fails to decode counts once however often it is
                    // asked for.
                    self.note_reencode(&why);
                    claim.checked = true;
                }
            }
        }
        let jpeg = match reencode_for_rtp(&original, RTP_QUALITY) {
            Ok(j) => Arc::new(j),
            Err(source) => {
                claim.settle(|_| Slot::Failed { checked: true });
                return Err(RtpReadyError::Frame {
                    file: self.file.name().to_owned(),
                    index: n,
                    source,
                });
            }
        };
        self.encodes.fetch_add(1, Ordering::Relaxed);
        claim.settle(|st| self.keep(st, n, &jpeg));
        Ok(Some(jpeg))
    }

    /// Learns whether frame n needs re-encoding (without encoding it), so
    /// that the worker can start before the first frame is asked for.
    fn check(&self, n: usize) {
        if !matches!(self.lock().slots.get(n), None | Some(Slot::Unseen)) {
            return;
        }
        let Ok(Some(bytes)) = self.file.frame(n) else {
            return;
        };
        let verdict = rtp_jpeg::carriable(&bytes).err();
        let mut st = self.lock();
        if st.slots.len() <= n {
            st.slots.resize_with(n + 1, Default::default);
        }
        if matches!(st.slots[n], Slot::Unseen) {
            st.slots[n] = if verdict.is_some() {
                Slot::Reencode
            } else {
                Slot::Untouched
            };
            drop(st);
            if let Some(why) = verdict {
                self.note_reencode(&why);
            }
        }
    }

    fn set_cursor(&self, id: u64, n: usize) {
        let mut st = self.lock();
        let Some(c) = st.cursors.get_mut(&id) else {
            return;
        };
        if c.at == n {
            return;
        }
        c.frontier = if n >= c.at { c.frontier.max(n) } else { n };
        c.at = n;
        drop(st);
        self.changed.notify_all();
    }

    /// Starts the worker if the file needs re-encoding, viewers exist and
    /// none runs.
    fn ensure_worker(self: &Arc<Self>) {
        if !self.ahead || self.reencoded.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut st = self.lock();
        if st.worker.is_some() || st.cursors.is_empty() {
            return;
        }
        let me = Arc::clone(self);
        let id = st.next_worker;
        st.next_worker += 1;
        // A thread of its own, here rather than in src/net: the cache it
        // fills belongs to the file and is shared by sessions on different
        // connections, so no connection's or session's thread can do the
        // work without holding up its own sends. One per file at most (the
        // `worker` slot), and the file's last viewer ends it.
        let spawned = std::thread::Builder::new()
            .name("encode-ahead".into())
            .spawn(move || me.work(id));
        match spawned {
            Ok(thread) => {
                st.worker = Some(Worker {
                    id,
                    thread: Some(thread),
                });
                self.workers_started.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(
                file = self.file.name(),
                "cannot start a thread to re-encode ahead of the viewers ({e}); \
                 frames are re-encoded as they are sent"
            ),
        }
    }

    /// The worker: encodes the frame with the nearest deadline, again and
    /// again, and sleeps when none is left or the cache has no room.
    fn work(self: Arc<Self>, id: u64) {
        loop {
            let claim = {
                let mut st = self.lock();
                loop {
                    if st.worker.as_ref().is_none_or(|w| w.id != id) {
                        return;
                    }
                    if st.cursors.is_empty() {
                        st.worker = None;
                        return;
                    }
                    if let Some(n) = self.pick(&mut st) {
                        break self.claim(&mut st, n);
                    }
                    st = self.wait(st);
                }
            };
            // Failures are settled in the slot; the sender that asks for
            // the frame tries again and reports them.
            let _ = self.make_ready(claim, None);
        }
    }

    /// The first unsettled frame ahead of the viewer that will reach it
    /// soonest (across the wrap to frame 0 for a looping viewer), if the
    /// cache has room for it.
    fn pick(&self, st: &mut State) -> Option<usize> {
        let end = self.end(st);
        let State { slots, cursors, .. } = st;
        let open = |n: usize| {
            !slots
                .get(n)
                .is_some_and(|s| s.is_settled() || matches!(s, Slot::Busy))
        };
        // The first open frame from 0, found once: a looping viewer's next
        // frame after the wrap is that one if it comes before the viewer.
        // (Scanning from 0 for each viewer cost a frame count times the
        // viewers per pick, most of a core with hundreds of them.)
        let mut first_open: Option<Option<usize>> = None;
        let mut best: Option<(usize, usize)> = None;
        for c in cursors.values_mut() {
            c.frontier = c.frontier.max(c.at);
            while slots.get(c.frontier).is_some_and(Slot::is_settled) {
                c.frontier += 1;
            }
            let mut n = c.frontier;
            while !open(n) {
                n += 1;
            }
            let found = match end {
                Some(e) if n >= e => c
                    .looping
                    .then(|| *first_open.get_or_insert_with(|| (0..e).find(|&i| open(i))))
                    .flatten()
                    .filter(|&i| i < c.at.min(e))
                    .map(|i| (e.saturating_sub(c.at) + i, i)),
                _ => Some((n - c.at, n)),
            };
            if let Some((distance, n)) = found
                && best.is_none_or(|(d, _)| distance < d)
            {
                best = Some((distance, n));
            }
        }
        let (_, n) = best?;
        self.has_room(st, n).then_some(n)
    }

    /// How many frames the file has, once known.
    fn end(&self, st: &State) -> Option<usize> {
        st.end.or_else(|| self.file.frame_count())
    }

    /// Whether another re-encoded frame (of the average size so far) fits
    /// for frame n, counting what can be dropped for it.
    fn has_room(&self, st: &State, n: usize) -> bool {
        let typical = st
            .cached_bytes
            .checked_div(st.cached_frames)
            .unwrap_or(0)
            .max(1);
        st.cached_bytes + typical <= self.cache_limit || self.victim(st, n).is_some()
    }

    /// The cached frame to drop to make room for frame n: the one needed
    /// last (never, for frames behind every viewer that does not loop), if
    /// that is later than frame n is needed.
    fn victim(&self, st: &State, n: usize) -> Option<usize> {
        let end = self.end(st);
        let due = |i: usize| {
            st.cursors
                .values()
                .filter_map(|c| match end {
                    _ if i >= c.at => Some(i - c.at),
                    Some(e) if c.looping && i < e => Some(e.saturating_sub(c.at) + i),
                    _ => None,
                })
                .min()
        };
        let needed = due(n)?;
        st.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Cached(_)))
            .map(|(i, _)| (due(i).unwrap_or(usize::MAX), i))
            .filter(|&(d, _)| d > needed)
            .max()
            .map(|(_, i)| i)
    }

    /// What becomes of a fresh encode of frame n: kept if it fits (making
    /// room from frames needed later, see [`RtpReadyFrames::victim`]), else
    /// left to be encoded again.
    fn keep(&self, st: &mut State, n: usize, jpeg: &Arc<Vec<u8>>) -> Slot {
        let len = jpeg.len();
        while st.cached_bytes + len > self.cache_limit {
            let Some(i) = self.victim(st, n) else {
                break;
            };
            if let Slot::Cached(old) = std::mem::replace(&mut st.slots[i], Slot::Reencode) {
                st.cached_bytes -= old.len();
                st.cached_frames -= 1;
            }
        }
        if st.cached_bytes + len <= self.cache_limit {
            st.cached_bytes += len;
            st.cached_frames += 1;
            return Slot::Cached(Arc::clone(jpeg));
        }
        if !self.cache_full_logged.swap(true, Ordering::Relaxed) {
            tracing::info!(
                file = self.file.name(),
                "{}: the {} MiB cache of re-encoded frames is full; frames needed later \
                 make room for frames needed sooner, and frames that still do not fit are \
                 re-encoded on every request",
                self.file.name(),
                self.cache_limit / (1024 * 1024)
            );
        }
        Slot::OverBudget
    }

    fn note_reencode(&self, why: &CarryError) {
        self.reencoded.fetch_add(1, Ordering::Relaxed);
        let reason = describe(why);
        if self.first_reason.set(reason.clone()).is_ok() {
            let name = self.file.name();
            tracing::info!(
                file = name,
                "{name}: frames are {reason}; re-encoding them to 4:2:0 for RTP/JPEG \
                 (once, shared by all sessions)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::reencode::tests::encode;
    use crate::protocol::rtp_jpeg::Layout;
    use jpeg_encoder::SamplingFactor;

    fn lab_file(frames: &[Vec<u8>]) -> Arc<MjpegFile> {
        let mut bytes = Vec::new();
        for f in frames {
            bytes.extend(format!("{:06}", f.len()).as_bytes());
            bytes.extend(f);
        }
        Arc::new(MjpegFile::from_bytes("test.mjpeg", bytes.into()).unwrap())
    }

    #[test]
    fn carriable_frames_go_out_untouched_and_444_ones_once_re_encoded() {
        let f420 = encode(64, 48, SamplingFactor::F_2_2);
        let f422 = encode(64, 48, SamplingFactor::F_2_1);
        let f444 = encode(64, 48, SamplingFactor::F_1_1);
        let ready = RtpReadyFrames::new(lab_file(&[f420.clone(), f422.clone(), f444.clone()]));
        assert_eq!(*ready.frame(0).unwrap().unwrap(), f420);
        assert_eq!(*ready.frame(1).unwrap().unwrap(), f422);
        let a = ready.frame(2).unwrap().unwrap();
        let b = ready.frame(2).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(ready.frame(3).unwrap().is_none());
        assert!(ready.frame(usize::MAX).unwrap().is_none());
        let (count, reason) = ready.reencoded();
        assert_eq!(count, 1);
        assert!(reason.unwrap().starts_with("4:4:4"));
        assert_eq!(ready.encodes_done(), 1);
        assert_eq!(ready.cached_bytes(), a.len());
        assert_eq!(ready.cached_frames(), 1);
        // Untouched frames are still served after their slot exists.
        assert_eq!(*ready.frame(0).unwrap().unwrap(), f420);
        assert!(ready.is_ready(0) && ready.is_ready(2) && !ready.is_ready(3));
    }

    #[test]
    fn over_budget_frames_are_encoded_on_every_request() {
        let f444 = encode(32, 32, SamplingFactor::F_1_1);
        let ready = RtpReadyFrames::with_cache_limit(lab_file(&[f444.clone(), f444]), 0);
        let a = ready.frame(0).unwrap().unwrap();
        let b = ready.frame(0).unwrap().unwrap();
        assert_eq!(a, b);
        assert!(rtp_jpeg::carriable(&a).is_ok());
        assert_eq!(ready.encodes_done(), 2);
        assert_eq!(ready.reencoded().0, 1);
        assert_eq!(ready.cached_bytes(), 0);
    }

    #[test]
    fn undecodable_frames_name_their_index() {
        let good = encode(16, 16, SamplingFactor::F_1_1);
        let bad = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x02, 0xff, 0xd9];
        let ready = RtpReadyFrames::new(lab_file(&[good.clone(), bad, good]));
        let e = ready.frame(1).unwrap_err();
        assert_eq!(e.frame_index(), Some(1));
        assert!(e.to_string().contains("frame 1 of test.mjpeg"), "{e}");
        assert!(ready.frame(1).is_err());
        assert!(ready.frame(2).unwrap().is_some());
        assert_eq!(ready.reencoded().0, 2);
        assert_eq!(ready.encodes_done(), 1);
    }

    #[test]
    fn a_carriable_file_starts_no_worker() {
        let f420 = encode(32, 32, SamplingFactor::F_2_2);
        let ready = Arc::new(RtpReadyFrames::new(lab_file(&[f420.clone(), f420])));
        let v = ready.viewer(0);
        assert!(v.frame(1).unwrap().is_some());
        assert_eq!(ready.workers_started(), 0);
        assert!(!ready.worker_running());
    }

    #[test]
    fn without_encode_ahead_frames_are_encoded_when_asked() {
        let f444 = encode(32, 32, SamplingFactor::F_1_1);
        let ready = Arc::new(
            RtpReadyFrames::new(lab_file(&[f444.clone(), f444.clone(), f444])).encode_ahead(false),
        );
        let v = ready.viewer(0);
        assert_eq!(ready.reencoded().0, 1, "the first frame was looked at");
        assert_eq!(ready.encodes_done(), 0);
        assert!(v.frame(0).unwrap().is_some());
        assert_eq!(ready.encodes_done(), 1);
        assert_eq!(ready.workers_started(), 0);
        assert!(!ready.is_ready(1));
    }

    #[test]
    fn a_looping_viewer_near_the_end_gets_the_first_frames_encoded_ahead() {
        let f444 = encode(32, 32, SamplingFactor::F_1_1);
        let ready = Arc::new(RtpReadyFrames::new(lab_file(&vec![f444; 10])));
        let v = ready.viewer(8);
        v.set_looping(true);
        assert!(ready.wait_ready(0, Duration::from_secs(10)));
        assert!(ready.wait_ready(7, Duration::from_secs(10)));
        drop(v);
        assert!(!ready.worker_running(), "the last viewer ended the worker");
        assert_eq!(ready.encodes_done(), 10);

        // A viewer that stops at the end leaves frame 0 alone.
        let ready = Arc::new(RtpReadyFrames::new(lab_file(&vec![
            encode(
                32,
                32,
                SamplingFactor::F_1_1
            );
            10
        ])));
        let v = ready.viewer(8);
        assert!(ready.wait_ready(9, Duration::from_secs(10)));
        drop(v);
        assert!(!ready.worker_running());
        assert!(!ready.is_ready(0));
        assert_eq!(ready.encodes_done(), 2);
    }

    #[test]
    fn a_full_cache_keeps_the_frames_a_looping_viewer_needs_next() {
        let f444 = encode(32, 32, SamplingFactor::F_1_1);
        let size = reencode_for_rtp(&f444, RTP_QUALITY).unwrap().len();
        let ready = Arc::new(RtpReadyFrames::with_cache_limit(
            lab_file(&vec![f444; 10]),
            3 * size,
        ));
        let v = ready.viewer(0);
        v.set_looping(true);
        for n in 0..10 {
            assert!(v.frame(n).unwrap().is_some());
            assert!(ready.cached_bytes() <= 3 * size);
        }
        // At frame 9 the frames needed next are 0 and 1, after the wrap:
        // 7 and 8, needed last, made room for them.
        assert!(ready.wait_ready(0, Duration::from_secs(10)));
        assert!(ready.wait_ready(1, Duration::from_secs(10)));
        assert!(ready.is_ready(9) && ready.is_ready(0) && ready.is_ready(1));
        assert!(!ready.is_ready(7) && !ready.is_ready(8));
        // The very bytes cached come back. (Not a count of encodes: once
        // the viewer is at 0 the worker may encode frame 2 meanwhile.)
        let cached = |n: usize| match &ready.lock().slots[n] {
            Slot::Cached(jpeg) => Arc::clone(jpeg),
            _ => panic!("frame {n} is not cached"),
        };
        let (zero, one) = (cached(0), cached(1));
        assert!(Arc::ptr_eq(&v.frame(0).unwrap().unwrap(), &zero));
        assert!(Arc::ptr_eq(&v.frame(1).unwrap().unwrap(), &one));
    }

    #[test]
    fn bundled_sample_is_re_encoded() {
        let bytes = include_bytes!("../../assets/sample.mjpeg");
        let file = MjpegFile::from_bytes("sample.mjpeg", bytes.as_slice().into()).unwrap();
        let ready = RtpReadyFrames::new(Arc::new(file));
        let f = ready.frame(0).unwrap().unwrap();
        assert_eq!(rtp_jpeg::carriable(&f).unwrap().layout, Layout::Yuv420);
        assert_eq!(ready.reencoded().0, 1);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RtpReadyFrames>();
        check::<RtpReadyError>();
        check::<Viewer>();
    }
}
