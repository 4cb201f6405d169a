//! The fan-out sender: one thread sends the RTP of every UDP session.
//!
//! Each session keeps its own absolute [`Pacer`] schedule (from its own
//! PLAY), its own connected sockets (so that a closed client port still
//! shows as refused sends, see [`Refusals`]) and its own numbering; what
//! they share is the work that does not depend on the session. A frame is
//! read and cut into RTP payloads once per file and position
//! ([`PacketCache`]), and each session due adds only its 12-byte headers
//! and hands the frame to the kernel in one segmented send
//! ([`UdpBatch::push_parts`]: header and shared payload, no packetizing).
//!
//! The thread wakes at the earliest deadline of any session (a channel
//! wait with a deadline, precise to the kernel's timer) and serves every
//! session due by then or within [`COALESCE`] after, so that a thousand
//! sessions spread over a frame period cost hundreds of wake-ups a second,
//! not twenty thousand. Commands (add, play, pause, seek, remove) come over
//! the same channel; RTCP sockets are read without blocking once a second
//! per session, a bounded number of datagrams each (a flood is dropped by
//! the socket's own buffer).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tracing::{debug, info, warn};

use super::media::{MediaCommand, SR_EVERY, Sent, Source};
use crate::net::udp_batch::UdpBatch;
use crate::protocol::pacer::Pacer;
use crate::protocol::rtcp;
use crate::protocol::rtp::{self, RtpHeader};
use crate::protocol::rtp_jpeg;
use crate::protocol::sender::{Numbering, Refusals};
use crate::protocol::server::Payload;

/// Sessions due this soon after the earliest one are served in the same
/// wake-up (a little early rather than a wake-up each).
pub const COALESCE: Duration = Duration::from_micros(500);
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
        };
        let p = Arc::new(packets);
        self.entries.insert(key, (p.clone(), now));
        Lookup::Frame(p)
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

/// One UDP session as the hub keeps it.
pub(super) struct HubSession {
    pub key: u64,
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
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
    /// [`super::ServerConfig::observer`], told of refused sends.
    pub observer: Option<crossbeam_channel::Sender<super::Observed>>,
    pub batch: UdpBatch,
    pub next_sr: Instant,
    pub next_rtcp_check: Instant,
}

impl HubSession {
    fn timestamp(&self) -> u32 {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.numbering
            .timestamp(self.payload, self.sent.frames, self.fps, unix)
    }

    /// When this session next needs the thread.
    fn wake(&self) -> Option<Instant> {
        let rtcp = self.rtcp.as_ref().map(|_| self.next_rtcp_check);
        let frame = self.playing.then(|| {
            let d = self.pacer.deadline();
            if self.rtcp.is_some() {
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
                    self.next_sr = now + Duration::from_millis(500);
                    debug!(%peer, session = %self.session, "sending from frame {}", self.next_frame);
                }
            }
            MediaCommand::Pause => {
                self.playing = false;
                debug!(%peer, session = %self.session, "paused before frame {}", self.next_frame);
            }
            MediaCommand::Prepare { start, reply } => {
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
        if let Some(rtcp) = &self.rtcp
            && now >= self.next_rtcp_check
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
        if self.rtcp.is_some() && now >= self.next_sr {
            self.next_sr = now + SR_EVERY;
            self.send_report();
        }
        // One frame per wake-up: a session behind catches up over the
        // following ones, as the pacer allows.
        if self.pacer.deadline() > horizon {
            return;
        }
        let peer = self.peer;
        let n = self.next_frame;
        match cache.get(&self.source, n, self.max_payload, now) {
            Lookup::Frame(packets) => {
                let ok = self.send_frame(&packets);
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

    fn send_frame(&mut self, packets: &Packets) -> bool {
        let timestamp = self.timestamp();
        let mut head = Vec::with_capacity(rtp::HEADER_LEN);
        for &(start, len, marker) in &packets.parts {
            head.clear();
            RtpHeader {
                marker,
                payload_type: rtp::PT_JPEG,
                sequence: self.sequence,
                timestamp,
                ssrc: self.numbering.ssrc,
            }
            .write(&mut head);
            self.sequence = self.sequence.wrapping_add(1);
            let payload = &packets.bytes[start..start + len];
            self.batch.push_parts(&self.rtp, &head, payload);
            self.sent.packets = self.sent.packets.wrapping_add(1);
            self.sent.octets = self.sent.octets.wrapping_add(len as u32);
        }
        self.sent.frames += 1;
        self.batch.finish(&self.rtp)
    }

    fn send_report(&self) {
        let Some(rtcp) = &self.rtcp else { return };
        let sr = super::sender_report_now(
            self.numbering.ssrc,
            self.timestamp(),
            self.sent.packets,
            self.sent.octets,
        );
        let _ = rtcp.send(&sr);
    }
}

/// The fan-out sender's handle: see the module documentation.
pub(super) struct Hub {
    commands: Mutex<Option<Sender<HubCommand>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Hub {
    pub fn start() -> std::io::Result<Hub> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("rtp-fanout".into())
            .spawn(move || run(rx))?;
        Ok(Hub {
            commands: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A way to reach the thread; None once stopped.
    pub fn sender(&self) -> Option<Sender<HubCommand>> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ends the thread once every session's handle has gone (the server
    /// stops its connections first).
    pub fn stop(&self) {
        drop(
            self.commands
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn run(commands: Receiver<HubCommand>) {
    let mut sessions: Vec<HubSession> = Vec::new();
    let mut cache = PacketCache::default();
    loop {
        let now = Instant::now();
        let horizon = now + COALESCE;
        for s in sessions.iter_mut() {
            if s.wake().is_some_and(|w| w <= horizon) {
                s.serve(now, horizon, &mut cache);
            }
        }
        cache.sweep(now);
        let next = sessions.iter().filter_map(HubSession::wake).min();
        let command = match next {
            Some(d) => commands.recv_deadline(d),
            None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match command {
            Ok(HubCommand::Add(s)) => sessions.push(*s),
            Ok(HubCommand::Media(key, c)) => {
                if let Some(s) = sessions.iter_mut().find(|s| s.key == key) {
                    s.command(c);
                }
            }
            Ok(HubCommand::Remove { key, done }) => {
                if let Some(i) = sessions.iter().position(|s| s.key == key) {
                    // Sockets and the viewer go now.
                    drop(sessions.swap_remove(i));
                }
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
