//! The fan-out sender: one thread sends the RTP of every session, over
//! UDP or interleaved in its RTSP connection.
//!
//! Each session keeps its own absolute [`Pacer`] schedule (from its own
//! PLAY), its own connected sockets (so that a closed client port still
//! shows as refused sends, see [`Refusals`]) and its own numbering; what
//! they share is the work that does not depend on the session. A frame is
//! read and cut into RTP payloads once per file and position
//! ([`PacketCache`]), and each session due adds only its 12-byte headers
//! and hands the frame to the kernel in one segmented send
//! ([`UdpBatch::send_gathered`]: header and shared payload gathered by the
//! kernel, no packetizing and no copy),
//! or, interleaved, in one write offered to its connection
//! ([`ConnectionWriter::offer`](crate::net::writer::ConnectionWriter::offer)),
//! which never waits: a client that has not taken the last frame yet
//! misses this one.
//!
//! The thread wakes at the earliest deadline of any session (a futex
//! wait on its [`Inbox`] with a deadline, precise to the kernel's timer;
//! sessions wait in a queue ordered by deadline, so only those due are
//! looked at) and serves every session due by then or within [`COALESCE`]
//! after, so that a thousand sessions spread over a frame period cost
//! hundreds of wake-ups a second, not twenty thousand. A server may run
//! several such threads (one per core by default): a new session goes to
//! the first that is less than 35% busy, so the second starts working
//! only when the first has its fill ([`Hub::sender`]). Commands (add,
//! play, pause, seek, remove) come over the same inbox; RTCP sockets are
//! read without blocking once a second per session, a bounded number of
//! datagrams each (a flood is dropped by the socket's own buffer).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use tracing::{debug, info, warn};

use super::connection::Writer;
use super::live::LiveViewer;
use super::media::{MediaCommand, SR_EVERY, Sent, Source};
use crate::net::mailbox::{self, Empty, Inbox, Mailbox};
use crate::net::udp_batch::UdpBatch;
use crate::protocol::pacer::Pacer;
use crate::protocol::rtcp;
use crate::protocol::rtp::{self, RtpHeader};
use crate::protocol::rtp_jpeg;
use crate::protocol::rtsp::{interleaved_header, write_interleaved};
use crate::protocol::sender::{Numbering, Refusals};
use crate::protocol::server::Payload;

/// Sessions due this soon after the earliest one are served in the same
/// wake-up (a little early rather than a wake-up each). Measured at 1200
/// sessions in interleaved A/B runs: 1 ms took about 10% less CPU than
/// 0.5 ms (fewer wake-ups and context switches) with p99 lateness at the
/// receiver 1.4 ms (1 session: 0.3 ms); 2 ms saved a little more but let
/// p99 grow to 2-6 ms, as frames leave up to that much early.
pub const COALESCE: Duration = Duration::from_micros(1000);
/// A sender thread busier than this (per mille of its wall time, over the
/// last [`LOAD_WINDOW`]) takes no new session while another is less busy.
/// At half, one thread took all 2400 sessions of a sweep and now and then
/// fell behind (p99 lateness 80-100 ms in one run of three); at 35% the
/// second takes the last few hundred and every run kept time.
const FILL: u32 = 350;
/// How often a sender thread says how busy it is.
const LOAD_WINDOW: Duration = Duration::from_millis(250);
/// How often each session's RTCP socket is read.
const RTCP_CHECK: Duration = Duration::from_secs(1);
/// Most RTCP datagrams read from one session per check.
const RTCP_BURST: usize = 16;
/// How long a packetized frame stays cached after its last use.
const CACHE_KEEP: Duration = Duration::from_secs(5);

/// One frame cut into RTP payloads (headers left out).
#[derive(Debug, Default)]
pub struct Packets {
    bytes: Vec<u8>,
    /// Start, length and marker bit of each packet's payload.
    parts: Vec<(usize, usize, bool)>,
}

impl Packets {
    /// Cut with the dialect's packetizer; the headers it writes are
    /// dropped but for their marker bits.
    fn cut(pack: impl FnOnce(RtpHeader, &mut dyn FnMut(&[u8]))) -> Packets {
        let mut p = Packets::default();
        let header = RtpHeader {
            marker: false,
            payload_type: rtp::PT_JPEG,
            sequence: 0,
            timestamp: 0,
            ssrc: 0,
        };
        pack(header, &mut |packet: &[u8]| {
            let Some(payload) = packet.get(rtp::HEADER_LEN..) else {
                return;
            };
            let marker = packet.get(1).is_some_and(|b| b & 0x80 != 0);
            p.parts.push((p.bytes.len(), payload.len(), marker));
            p.bytes.extend_from_slice(payload);
        });
        p
    }
}

/// What a frame lookup gave.
enum Lookup {
    Frame(Arc<Packets>),
    End,
    Skip(String),
}

/// Packetized frames by source, position and payload size.
#[derive(Default)]
struct PacketCache {
    entries: HashMap<(usize, usize, usize), (Arc<Packets>, Instant)>,
    swept: Option<Instant>,
}

impl PacketCache {
    fn get(&mut self, source: &Source, n: usize, max_payload: usize, now: Instant) -> Lookup {
        let key = (source.identity(), n, max_payload);
        if let Some((p, used)) = self.entries.get_mut(&key) {
            *used = now;
            if let Source::Rfc2435(viewer) = source
                && n.is_multiple_of(8)
            {
                // Keep the re-encoding worker's idea of the playhead.
                viewer.seek(n);
            }
            return Lookup::Frame(p.clone());
        }
        let packets = match source {
            Source::Lab(file) => match file.frame(n) {
                Ok(Some(jpeg)) => Packets::cut(|h, emit| {
                    rtp::packetize_lab(&jpeg, max_payload, h, emit);
                }),
                Ok(None) => return Lookup::End,
                Err(e) => return Lookup::Skip(e.to_string()),
            },
            Source::Rfc2435(viewer) => match viewer.frame(n) {
                Ok(Some(jpeg)) => match rtp_jpeg::carriable(&jpeg) {
                    Ok(c) => Packets::cut(|h, emit| {
                        rtp_jpeg::packetize(&c, max_payload, h, emit);
                    }),
                    Err(e) => return Lookup::Skip(e.to_string()),
                },
                Ok(None) => return Lookup::End,
                Err(e) => return Lookup::Skip(e.to_string()),
            },
            // Looked up by [`PacketCache::live`], which knows the index.
            Source::Live(_) => return Lookup::End,
        };
        let p = Arc::new(packets);
        self.entries.insert(key, (p.clone(), now));
        Lookup::Frame(p)
    }

    /// A live source's frame at or after index `n`, cut for `payload`
    /// once for every viewer: its index and packets; None while it is
    /// not made yet.
    fn live(
        &mut self,
        viewer: &LiveViewer,
        n: u64,
        payload: Payload,
        max_payload: usize,
        now: Instant,
    ) -> Option<Result<(u64, Arc<Packets>), String>> {
        let frame = viewer.frame_from(n)?;
        let key = (viewer.identity(), frame.index as usize, max_payload);
        if let Some((p, used)) = self.entries.get_mut(&key) {
            *used = now;
            return Some(Ok((frame.index, p.clone())));
        }
        let packets = match payload {
            Payload::Lab => Packets::cut(|h, emit| {
                rtp::packetize_lab(&frame.jpeg, max_payload, h, emit);
            }),
            Payload::Rfc2435 => match rtp_jpeg::carriable(&frame.jpeg) {
                Ok(c) => Packets::cut(|h, emit| {
                    rtp_jpeg::packetize(&c, max_payload, h, emit);
                }),
                Err(e) => return Some(Err(e.to_string())),
            },
        };
        let p = Arc::new(packets);
        self.entries.insert(key, (p.clone(), now));
        Some(Ok((frame.index, p)))
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|s| now.saturating_duration_since(s) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        self.entries
            .retain(|_, (_, used)| now.saturating_duration_since(*used) < CACHE_KEEP);
    }
}

/// What the hub is asked to do.
pub(super) enum HubCommand {
    Add(Box<HubSession>),
    Media(u64, MediaCommand),
    Remove { key: u64, done: Sender<()> },
}

/// Where a hub session's packets go.
pub(super) enum HubOut {
    Udp {
        rtp: UdpSocket,
        rtcp: Option<UdpSocket>,
        batch: UdpBatch,
        /// The frame's RTP headers, reused from frame to frame.
        heads: Vec<[u8; rtp::HEADER_LEN]>,
    },
    Interleaved {
        writer: Writer,
        rtp_channel: u8,
        rtcp_channel: u8,
        /// The frame's `$`-framed packets, reused from frame to frame.
        buf: Vec<u8>,
    },
}

impl HubOut {
    /// Whether sender reports go out (and RTCP may come back).
    fn has_rtcp(&self) -> bool {
        !matches!(self, HubOut::Udp { rtcp: None, .. })
    }
}

/// One session as the hub keeps it.
pub(super) struct HubSession {
    pub key: u64,
    pub out: HubOut,
    pub source: Source,
    pub payload: Payload,
    pub numbering: Numbering,
    pub fps: u32,
    pub looping: bool,
    pub max_payload: usize,
    pub session: String,
    pub peer: SocketAddr,
    pub last_rtcp: Arc<Mutex<Option<Instant>>>,
    // Sending state.
    pub sequence: u16,
    pub playing: bool,
    pub next_frame: usize,
    pub pacer: Pacer,
    pub sent: Sent,
    pub refusals: Refusals,
    /// Frames a slow interleaved client missed, and whether that was said.
    pub behind: u64,
    pub behind_said: bool,
    /// [`super::ServerConfig::observer`], told of refused sends.
    pub observer: Option<crossbeam_channel::Sender<super::Observed>>,
    pub next_sr: Instant,
    pub next_rtcp_check: Instant,
}

impl HubSession {
    fn timestamp(&self) -> u32 {
        // A live source's clock is the source's, shared by its viewers.
        if let (Source::Live(v), Payload::Rfc2435) = (&self.source, self.payload) {
            return v.timestamp_now();
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.numbering
            .timestamp(self.payload, self.sent.frames, self.fps, unix)
    }

    /// When this session next needs the thread.
    fn wake(&self) -> Option<Instant> {
        let rtcp =
            matches!(self.out, HubOut::Udp { rtcp: Some(_), .. }).then_some(self.next_rtcp_check);
        let frame = self.playing.then(|| {
            let d = self.pacer.deadline();
            if self.out.has_rtcp() {
                d.min(self.next_sr)
            } else {
                d
            }
        });
        match (rtcp, frame) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn command(&mut self, command: MediaCommand) {
        let peer = self.peer;
        match command {
            MediaCommand::Play => {
                if !self.playing {
                    let now = Instant::now();
                    self.playing = true;
                    self.pacer.restart(now);
                    if let Source::Live(v) = &self.source {
                        // From the live edge, on the source's schedule.
                        let edge = v.live_edge();
                        self.next_frame = edge as usize;
                        self.pacer.restart(v.send_at(edge));
                    }
                    self.next_sr = now + Duration::from_millis(500);
                    debug!(%peer, session = %self.session, "sending from frame {}", self.next_frame);
                }
            }
            MediaCommand::Pause => {
                self.playing = false;
                debug!(%peer, session = %self.session, "paused before frame {}", self.next_frame);
            }
            MediaCommand::Prepare { start, reply } => {
                if let Source::Live(v) = &self.source {
                    let edge = v.live_edge();
                    self.next_frame = edge as usize;
                    let ts = match self.payload {
                        Payload::Rfc2435 => v.timestamp(edge),
                        Payload::Lab => self.timestamp(),
                    };
                    let _ = reply.send((self.sequence, ts, self.next_frame));
                    return;
                }
                if let Some(n) = start {
                    self.next_frame = n;
                    if let Source::Rfc2435(viewer) = &self.source {
                        viewer.seek(n);
                    }
                }
                let _ = reply.send((self.sequence, self.timestamp(), self.next_frame));
            }
        }
    }

    /// Does what is due at `now` (frames due by `horizon`).
    fn serve(&mut self, now: Instant, horizon: Instant, cache: &mut PacketCache) {
        // Everything due by the horizon is done now, so that a session
        // served is never due again within this wake-up.
        if let HubOut::Udp {
            rtcp: Some(rtcp), ..
        } = &self.out
            && horizon >= self.next_rtcp_check
        {
            self.next_rtcp_check = now + RTCP_CHECK;
            let mut buf = [0u8; 1500];
            let mut any = false;
            for _ in 0..RTCP_BURST {
                let Ok(n) = rtcp.recv(&mut buf) else { break };
                any |= rtcp::parse_compound(&buf[..n]).is_some();
            }
            if any {
                *self.last_rtcp.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
            }
        }
        if !self.playing {
            return;
        }
        if self.out.has_rtcp() && horizon >= self.next_sr {
            self.next_sr = now + SR_EVERY;
            self.send_report();
        }
        // One frame per wake-up: a session behind catches up over the
        // following ones, as the pacer allows.
        if self.pacer.deadline() > horizon {
            return;
        }
        if let Source::Live(_) = &self.source {
            return self.serve_live(now, cache);
        }
        let peer = self.peer;
        let n = self.next_frame;
        match cache.get(&self.source, n, self.max_payload, now) {
            Lookup::Frame(packets) => {
                let timestamp = self.timestamp();
                let ok = self.send_frame(&packets, timestamp);
                if !ok && let Some(tx) = &self.observer {
                    let _ = tx.send(super::Observed::RtpRefused {
                        peer,
                        at: Instant::now(),
                    });
                }
                self.next_frame += 1;
                self.pacer.advance(Instant::now());
                if self.refusals.gone_after(ok) {
                    warn!(%peer, session = %self.session, "the client does not accept packets (its RTP port is closed?); pausing until it sends PLAY again");
                    self.playing = false;
                }
            }
            Lookup::Skip(e) => {
                warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                self.next_frame += 1;
            }
            Lookup::End if self.looping && n > 0 => self.next_frame = 0,
            Lookup::End => {
                info!(%peer, session = %self.session, "end of the file after {n} frames");
                self.playing = false;
            }
        }
    }

    /// A live session's due frame: the next one made (or, behind, the
    /// oldest still kept); a frame not made yet is sent a period later.
    fn serve_live(&mut self, now: Instant, cache: &mut PacketCache) {
        let Source::Live(viewer) = &self.source else {
            return;
        };
        let found = cache.live(
            viewer,
            self.next_frame as u64,
            self.payload,
            self.max_payload,
            now,
        );
        match found {
            Some(Ok((index, packets))) => {
                let timestamp = match self.payload {
                    Payload::Rfc2435 => viewer.timestamp(index),
                    Payload::Lab => self.timestamp(),
                };
                let ok = self.send_frame(&packets, timestamp);
                if !ok && let Some(tx) = &self.observer {
                    let _ = tx.send(super::Observed::RtpRefused {
                        peer: self.peer,
                        at: Instant::now(),
                    });
                }
                self.next_frame = index as usize + 1;
                if self.refusals.gone_after(ok) {
                    warn!(peer = %self.peer, session = %self.session, "the client does not accept packets (its RTP port is closed?); pausing until it sends PLAY again");
                    self.playing = false;
                }
            }
            Some(Err(e)) => {
                warn!(peer = %self.peer, session = %self.session, "live frame skipped: {e}");
                self.next_frame += 1;
            }
            None => {
                if let Some(why) = viewer.failure() {
                    warn!(peer = %self.peer, session = %self.session, "the live source stopped: {why}");
                    self.playing = false;
                    return;
                }
            }
        }
        self.pacer.advance(Instant::now());
    }

    /// Sends one frame; false when the client refused it (UDP) or its
    /// connection broke (interleaved).
    fn send_frame(&mut self, packets: &Packets, timestamp: u32) -> bool {
        // The timestamp follows the frames due, sent or missed, so that a
        // client that missed some still plays at the right pace.
        self.sent.frames += 1;
        let first_sequence = self.sequence;
        let header = |marker, sequence| RtpHeader {
            marker,
            payload_type: rtp::PT_JPEG,
            sequence,
            timestamp,
            ssrc: self.numbering.ssrc,
        };
        match &mut self.out {
            HubOut::Udp { heads, .. } => {
                heads.clear();
                for &(_, _, marker) in &packets.parts {
                    heads.push(header(marker, self.sequence).bytes());
                    self.sequence = self.sequence.wrapping_add(1);
                }
            }
            HubOut::Interleaved {
                rtp_channel, buf, ..
            } => {
                for &(start, len, marker) in &packets.parts {
                    buf.extend_from_slice(&interleaved_header(*rtp_channel, rtp::HEADER_LEN + len));
                    buf.extend_from_slice(&header(marker, self.sequence).bytes());
                    buf.extend_from_slice(&packets.bytes[start..start + len]);
                    self.sequence = self.sequence.wrapping_add(1);
                }
            }
        }
        let (sent, ok) = match &mut self.out {
            HubOut::Udp {
                rtp, batch, heads, ..
            } => {
                // Each session's headers before the payloads all share:
                // gathered by the kernel, not copied here.
                let ok = batch.send_gathered(rtp, heads.len(), |i| {
                    let (start, len, _) = packets.parts[i];
                    (&heads[i][..], &packets.bytes[start..start + len])
                });
                (true, ok)
            }
            HubOut::Interleaved { writer, buf, .. } => {
                let offered = writer.offer(buf);
                buf.clear();
                match offered {
                    Ok(sent) => (sent, true),
                    Err(_) => (false, false),
                }
            }
        };
        if sent {
            self.sent.packets = self.sent.packets.wrapping_add(packets.parts.len() as u32);
            self.sent.octets = self.sent.octets.wrapping_add(packets.bytes.len() as u32);
            self.behind_said = false;
        } else if ok {
            // Missed whole: its numbers go to the next frame, so the client
            // sees no loss, only a longer gap in time.
            self.sequence = first_sequence;
            self.behind += 1;
            if !self.behind_said {
                self.behind_said = true;
                debug!(peer = %self.peer, session = %self.session, missed = self.behind, "the client has not taken the last frame yet: skipping frames until it does");
            }
        }
        ok
    }

    fn send_report(&mut self) {
        if !self.out.has_rtcp() {
            return;
        }
        let sr = super::sender_report_now(
            self.numbering.ssrc,
            self.timestamp(),
            self.sent.packets,
            self.sent.octets,
        );
        match &mut self.out {
            HubOut::Udp { rtcp: Some(s), .. } => {
                let _ = s.send(&sr);
            }
            HubOut::Udp { rtcp: None, .. } => {}
            HubOut::Interleaved {
                writer,
                rtcp_channel,
                ..
            } => {
                let mut message = Vec::with_capacity(4 + sr.len());
                write_interleaved(&mut message, *rtcp_channel, &sr);
                // A report missed by a slow client is no loss.
                let _ = writer.offer(&message);
            }
        }
    }
}

/// The fan-out sender's handle: one thread (see the module
/// documentation), or several, each with its share of the sessions.
pub(super) struct Hub {
    commands: Mutex<Vec<Mailbox<HubCommand>>>,
    /// How busy each thread is, and with how many sessions.
    loads: Vec<Arc<ThreadLoad>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Hub {
    /// Start `threads` sender threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Hub> {
        let mut commands = Vec::new();
        let mut handles = Vec::new();
        let mut loads = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mailbox::mailbox();
            let load = Arc::new(ThreadLoad::default());
            let meter = LoadMeter::new(load.clone());
            let thread = std::thread::Builder::new()
                .name(format!("rtp-fanout-{i}"))
                .spawn(move || run(rx, meter))?;
            commands.push(tx);
            handles.push(thread);
            loads.push(load);
        }
        Ok(Hub {
            commands: Mutex::new(commands),
            loads,
            threads: Mutex::new(handles),
        })
    }

    /// A way to reach the thread that will serve a new session; None once
    /// stopped. The first thread less than [`FILL`] busy takes it; when
    /// all are, the least busy ([`ThreadLoad::projected`]: what it would
    /// be with the sessions it holds now, since sessions come faster than
    /// a thread's load shows them). Sessions fill one thread before the next
    /// because one busy thread costs less per packet than two half-busy
    /// ones (fewer wake-ups, one core's caches; measured in the README's
    /// sweeps), while a thread that cannot keep up, on a loaded machine or
    /// with thousands of sessions, passes new ones on.
    pub fn sender(&self) -> Option<Mailbox<HubCommand>> {
        let commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let loads: Vec<u32> = self.loads.iter().map(|l| l.projected()).collect();
        let i = choose_thread(&loads[..commands.len().min(loads.len())])?;
        Some(commands[i].clone())
    }

    /// Ends the threads once every session's handle has gone (the server
    /// stops its connections first).
    pub fn stop(&self) {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A session's next wake-up, as the queue holds it: when, and which
/// session (its slot and key, so that an entry for a session gone or
/// rescheduled since is known stale and skipped).
type Due = Reverse<(Instant, usize, u64)>;

/// The sessions of one sender thread, and when each is next due: only
/// the sessions due are looked at in a wake-up, whatever their number.
#[derive(Default)]
struct Sessions {
    slots: Vec<Option<HubSession>>,
    free: Vec<usize>,
    by_key: HashMap<u64, usize>,
    queue: BinaryHeap<Due>,
    /// Slots served in this wake-up, to queue again after it (kept to
    /// spare an allocation per wake-up).
    served: Vec<usize>,
}

impl Sessions {
    fn add(&mut self, s: HubSession) {
        let key = s.key;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(s);
                i
            }
            None => {
                self.slots.push(Some(s));
                self.slots.len() - 1
            }
        };
        self.by_key.insert(key, slot);
        self.schedule(slot);
    }

    fn remove(&mut self, key: u64) -> Option<HubSession> {
        let slot = self.by_key.remove(&key)?;
        self.free.push(slot);
        self.slots[slot].take()
    }

    fn command(&mut self, key: u64, c: MediaCommand) {
        if let Some(&slot) = self.by_key.get(&key)
            && let Some(s) = self.slots[slot].as_mut()
        {
            s.command(c);
            self.schedule(slot);
        }
    }

    /// Queue the session in `slot` for its next wake-up.
    fn schedule(&mut self, slot: usize) {
        if let Some(s) = &self.slots[slot]
            && let Some(w) = s.wake()
        {
            self.queue.push(Reverse((w, slot, s.key)));
        }
    }

    /// Serves every session due by `horizon`.
    fn serve_due(&mut self, now: Instant, horizon: Instant, cache: &mut PacketCache) {
        let mut served = std::mem::take(&mut self.served);
        while let Some(&Reverse((due, slot, key))) = self.queue.peek() {
            if due > horizon {
                break;
            }
            self.queue.pop();
            let Some(s) = self.slots[slot].as_mut().filter(|s| s.key == key) else {
                continue;
            };
            // Rescheduled since (a command): a newer entry stands for it.
            if s.wake() != Some(due) {
                continue;
            }
            s.serve(now, horizon, cache);
            served.push(slot);
        }
        for &slot in &served {
            self.schedule(slot);
        }
        served.clear();
        self.served = served;
    }

    fn next_due(&mut self) -> Option<Instant> {
        // Stale entries at the top would wake the thread for nothing.
        while let Some(&Reverse((due, slot, key))) = self.queue.peek() {
            match self.slots[slot].as_ref().filter(|s| s.key == key) {
                Some(s) if s.wake() == Some(due) => return Some(due),
                _ => {
                    self.queue.pop();
                }
            }
        }
        None
    }
}

/// Which of the threads, `loads` busy, takes a new session (see
/// [`Hub::sender`]); None when there are none.
fn choose_thread(loads: &[u32]) -> Option<usize> {
    loads.iter().position(|&l| l < FILL).or_else(|| {
        loads
            .iter()
            .enumerate()
            .min_by_key(|&(_, l)| *l)
            .map(|(i, _)| i)
    })
}

/// How busy a sender thread is, as it says and as [`Hub::sender`] reads.
#[derive(Debug, Default)]
struct ThreadLoad {
    /// Serving time per mille of wall time over the last window.
    load: AtomicU32,
    /// Sessions the thread held during that window.
    measured: AtomicU32,
    /// Sessions the thread holds now (counted as each arrives, so a burst
    /// of SETUPs is seen before the thread has served any of them).
    held: AtomicU32,
}

impl ThreadLoad {
    /// The load scaled to the sessions held now: a thread 30% busy with
    /// 600 sessions is taken as 60% busy once it holds 1200. Sessions not
    /// yet playing count as playing, which errs towards the next thread.
    fn projected(&self) -> u32 {
        let load = self.load.load(Ordering::Relaxed) as u64;
        let measured = self.measured.load(Ordering::Relaxed) as u64;
        let held = self.held.load(Ordering::Relaxed) as u64;
        if measured == 0 {
            return load as u32;
        }
        (load * held.max(measured) / measured).min(u32::MAX as u64) as u32
    }
}

/// Adds up the time a sender thread spends serving and publishes it, per
/// mille of the wall time, once per [`LOAD_WINDOW`]. Wall time, not CPU
/// time: a thread that is preempted on a busy machine is slow all the
/// same, and should take no more sessions.
struct LoadMeter {
    load: Arc<ThreadLoad>,
    since: Instant,
    busy: Duration,
}

impl LoadMeter {
    fn new(load: Arc<ThreadLoad>) -> LoadMeter {
        LoadMeter {
            load,
            since: Instant::now(),
            busy: Duration::ZERO,
        }
    }

    /// The thread, holding `sessions`, served from `start` to `end`.
    fn busy(&mut self, sessions: usize, start: Instant, end: Instant) {
        self.busy += end.saturating_duration_since(start);
        let window = end.saturating_duration_since(self.since);
        if window >= LOAD_WINDOW {
            let permille = self.busy.as_micros() * 1000 / window.as_micros().max(1);
            self.load
                .load
                .store(permille.min(1000) as u32, Ordering::Relaxed);
            self.load
                .measured
                .store(sessions.min(u32::MAX as usize) as u32, Ordering::Relaxed);
            self.since = end;
            self.busy = Duration::ZERO;
        }
    }

    /// The thread has no session: it sleeps until a command, and its
    /// last window says nothing of now.
    fn idle(&mut self) {
        self.load.load.store(0, Ordering::Relaxed);
        self.load.measured.store(0, Ordering::Relaxed);
        self.since = Instant::now();
        self.busy = Duration::ZERO;
    }

    /// The thread now holds `sessions`.
    fn holds(&self, sessions: usize) {
        self.load
            .held
            .store(sessions.min(u32::MAX as usize) as u32, Ordering::Relaxed);
    }
}

fn run(commands: Inbox<HubCommand>, mut meter: LoadMeter) {
    let mut sessions = Sessions::default();
    let mut cache = PacketCache::default();
    loop {
        let now = Instant::now();
        sessions.serve_due(now, now + COALESCE, &mut cache);
        cache.sweep(now);
        if sessions.by_key.is_empty() {
            meter.idle();
        } else {
            meter.busy(sessions.by_key.len(), now, Instant::now());
        }
        let command = commands.recv_deadline(sessions.next_due());
        match command {
            Ok(HubCommand::Add(s)) => {
                sessions.add(*s);
                meter.holds(sessions.by_key.len());
            }
            Ok(HubCommand::Media(key, c)) => sessions.command(key, c),
            Ok(HubCommand::Remove { key, done }) => {
                // Sockets and the viewer go now.
                drop(sessions.remove(key));
                meter.holds(sessions.by_key.len());
                let _ = done.send(());
            }
            Err(Empty::Timeout) => {}
            Err(Empty::Disconnected) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_fill_the_first_thread_not_yet_full_then_the_least_busy() {
        assert_eq!(choose_thread(&[]), None);
        assert_eq!(choose_thread(&[0, 0]), Some(0));
        assert_eq!(choose_thread(&[FILL - 1, 0]), Some(0));
        assert_eq!(choose_thread(&[FILL, 0]), Some(1));
        assert_eq!(choose_thread(&[900, 700, 650]), Some(2));
    }

    #[test]
    fn a_threads_load_is_its_serving_time_per_mille_of_each_window() {
        let load = Arc::new(ThreadLoad::default());
        let mut meter = LoadMeter::new(load.clone());
        let t0 = meter.since;
        let said = || load.load.load(Ordering::Relaxed);
        // Half of the first window spent serving, said when it closes.
        meter.busy(10, t0, t0 + LOAD_WINDOW / 4);
        assert_eq!(said(), 0);
        meter.busy(10, t0 + LOAD_WINDOW * 3 / 4, t0 + LOAD_WINDOW);
        assert_eq!(said(), 500);
        // A quiet window follows.
        meter.busy(10, t0 + LOAD_WINDOW * 2, t0 + LOAD_WINDOW * 2);
        assert_eq!(said(), 0);
        meter.busy(10, t0 + LOAD_WINDOW * 2, t0 + LOAD_WINDOW * 3);
        assert_eq!(said(), 1000);
        meter.idle();
        assert_eq!(said(), 0);
    }

    #[test]
    fn sessions_handed_out_count_before_the_thread_has_served_them() {
        let load = ThreadLoad::default();
        load.load.store(300, Ordering::Relaxed);
        load.measured.store(600, Ordering::Relaxed);
        load.held.store(600, Ordering::Relaxed);
        assert_eq!(load.projected(), 300);
        // A burst of SETUPs doubles what it holds: taken as 60% busy,
        // past FILL, before its next window says so.
        load.held.store(1200, Ordering::Relaxed);
        assert_eq!(load.projected(), 600);
        assert_eq!(choose_thread(&[load.projected(), 0]), Some(1));
        // Fewer held than measured (some ended): the window stands.
        load.held.store(100, Ordering::Relaxed);
        assert_eq!(load.projected(), 300);
    }

    /// Each session's header on the shared payloads gives, byte for byte,
    /// the packets the packetizer makes for that session.
    #[test]
    fn shared_payloads_under_a_sessions_header_are_the_packetizers_packets() {
        let jpeg: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let header = RtpHeader {
            marker: false,
            payload_type: rtp::PT_JPEG,
            sequence: 65_534,
            timestamp: 77,
            ssrc: 9,
        };
        let mut expected: Vec<Vec<u8>> = Vec::new();
        rtp::packetize_lab(&jpeg, 1400, header, |p| expected.push(p.to_vec()));
        let cut = Packets::cut(|h, emit| {
            rtp::packetize_lab(&jpeg, 1400, h, emit);
        });
        assert_eq!(cut.parts.len(), expected.len());
        assert!(cut.parts.len() > 1);
        let mut sequence = header.sequence;
        for (&(start, len, marker), want) in cut.parts.iter().zip(&expected) {
            let mut p = Vec::new();
            RtpHeader {
                marker,
                sequence,
                ..header
            }
            .write(&mut p);
            p.extend_from_slice(&cut.bytes[start..start + len]);
            assert_eq!(&p, want);
            sequence = sequence.wrapping_add(1);
        }
    }
}
