//! A session's RTP sender. Sessions go to the fan-out sender
//! ([`super::fanout`], one thread for all, over UDP or interleaved in the
//! RTSP connection); with `--sender threads` each gets a thread of its own
//! that sends its frames on the absolute [`Pacer`] schedule, as every
//! session did before (kept to measure against). Standard sessions get
//! RTCP sender reports. The rules both follow (numbering, timestamps,
//! refusals) are in [`crate::protocol::sender`].

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::Rng;
use tracing::{debug, info, warn};

use super::connection::Writer;
use super::fanout::{HubCommand, HubOut, HubSession};
use super::live::LiveViewer;
use super::{SenderKind, Shared};
use crate::media::MjpegFile;
use crate::media::rtp_ready::Viewer;
use crate::net::mailbox::Mailbox;
use crate::net::udp_batch::UdpBatch;
use crate::protocol::pacer::Pacer;
use crate::protocol::rtcp;
use crate::protocol::rtp::{self, RtpHeader};
use crate::protocol::rtp_jpeg;
use crate::protocol::rtsp::write_interleaved;
use crate::protocol::sender::{Numbering, Refusals};
use crate::protocol::server::{MediaTransport, Payload, Prepared, SessionInfo};

/// RTP payload per packet on the standard path: a 1500-byte Ethernet MTU
/// less IP (20), UDP (8) and RTP (12) headers, with room to spare for
/// tunnels.
pub const STANDARD_MAX_PAYLOAD: usize = 1400;
/// How often standard sessions get an RTCP sender report.
pub(super) const SR_EVERY: Duration = Duration::from_secs(5);

pub(super) enum MediaCommand {
    Play,
    Pause,
    /// Seek (when given) and say the next sequence number, RTP time and frame.
    Prepare {
        start: Option<usize>,
        reply: Sender<(u16, u32, usize)>,
    },
}

/// What a session's frames come from.
pub(super) enum Source {
    /// The lab's payload: the whole JPEG as stored.
    Lab(Arc<MjpegFile>),
    /// RFC 2435: frames as they can travel, re-encoded once where needed
    /// (ahead of this session's playhead).
    Rfc2435(Viewer),
    /// A live source's frames, as they are made (either payload).
    Live(LiveViewer),
}

impl Source {
    /// Tells sources apart for sharing packetized frames: the file (lab)
    /// or the file's shared ready frames (RFC 2435).
    pub(super) fn identity(&self) -> usize {
        match self {
            Source::Lab(f) => Arc::as_ptr(f) as usize,
            Source::Rfc2435(v) => Arc::as_ptr(v.frames()) as usize,
            Source::Live(v) => v.identity(),
        }
    }
}

/// Where a session's packets go. A frame's RTP packets are queued by
/// [`Out::send_rtp`] and leave together at [`Out::end_frame`]: one
/// segmented send per run of datagrams over UDP, one write over TCP.
enum Out {
    Udp {
        rtp: UdpSocket,
        rtcp: Option<UdpSocket>,
        batch: UdpBatch,
    },
    Interleaved {
        writer: Writer,
        rtp_channel: u8,
        rtcp_channel: u8,
        pending: Vec<u8>,
    },
}

impl Out {
    fn send_rtp(&mut self, packet: &[u8]) {
        match self {
            Out::Udp { rtp, batch, .. } => batch.push(rtp, packet),
            Out::Interleaved {
                rtp_channel,
                pending,
                ..
            } => write_interleaved(pending, *rtp_channel, packet),
        }
    }

    /// Sends the frame queued by [`Out::send_rtp`]; false when some of it
    /// was refused.
    fn end_frame(&mut self) -> bool {
        match self {
            Out::Udp { rtp, batch, .. } => batch.finish(rtp),
            Out::Interleaved {
                writer, pending, ..
            } => {
                let ok = pending.is_empty() || writer.send(pending).is_ok();
                pending.clear();
                ok
            }
        }
    }

    fn send_rtcp(&self, packet: &[u8]) -> io::Result<()> {
        match self {
            Out::Udp { rtcp: Some(s), .. } => s.send(packet).map(|_| ()),
            Out::Udp { rtcp: None, .. } => Ok(()),
            Out::Interleaved {
                writer,
                rtcp_channel,
                ..
            } => {
                let mut message = Vec::with_capacity(packet.len() + 4);
                write_interleaved(&mut message, *rtcp_channel, packet);
                writer.send(&message).map_err(io::Error::other)
            }
        }
    }

    /// Whether the RTSP connection this session's media travels in has
    /// broken (see [`ConnectionWriter`]): nothing more can be sent.
    fn is_broken(&self) -> bool {
        match self {
            Out::Udp { .. } => false,
            Out::Interleaved { writer, .. } => writer.is_broken(),
        }
    }

    /// Whether RTCP arrived from the client (a receiver report keeps the
    /// session alive); never blocks.
    fn rtcp_arrived(&self) -> bool {
        let Out::Udp { rtcp: Some(s), .. } = self else {
            return false;
        };
        let mut buf = [0u8; 1500];
        let mut any = false;
        while let Ok(n) = s.recv(&mut buf) {
            any |= rtcp::parse_compound(&buf[..n]).is_some();
        }
        any
    }
}

/// Bind an even RTP port and the odd RTCP port after it, as RFC 3550 asks.
fn bind_pair(ip: IpAddr) -> io::Result<(UdpSocket, UdpSocket)> {
    let mut last = io::Error::other("no free port pair");
    for _ in 0..32 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
            Ok(rtcp) => return Ok((rtp, rtcp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A session's media: a place in the fan-out sender ([`super::fanout`]),
/// or its own thread when the server is told to use threads.
pub(super) struct MediaSender {
    kind: Kind,
    last_rtcp: Arc<Mutex<Option<Instant>>>,
}

enum Kind {
    Thread {
        commands: Sender<MediaCommand>,
        thread: JoinHandle<()>,
    },
    Hub {
        key: u64,
        commands: Mailbox<HubCommand>,
    },
}

/// A set-up session's UDP sockets, connected to the client.
struct UdpOut {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    server_ports: Option<(u16, u16)>,
}

fn udp_sockets(
    local_ip: IpAddr,
    peer: SocketAddr,
    rtp_port: u16,
    rtcp_port: Option<u16>,
) -> io::Result<UdpOut> {
    // RTP goes only to the address the RTSP request came from.
    let (rtp, rtcp) = match rtcp_port {
        Some(client_rtcp) => {
            let (rtp, rtcp) = bind_pair(local_ip)?;
            rtcp.connect(SocketAddr::new(peer.ip(), client_rtcp))?;
            rtcp.set_nonblocking(true)?;
            (rtp, Some(rtcp))
        }
        None => (UdpSocket::bind(SocketAddr::new(local_ip, 0))?, None),
    };
    rtp.connect(SocketAddr::new(peer.ip(), rtp_port))?;
    let a = rtp.local_addr()?.port();
    let server_ports = rtcp
        .as_ref()
        .and_then(|r| r.local_addr().ok())
        .map(|r| (a, r.port()));
    Ok(UdpOut {
        rtp,
        rtcp,
        server_ports,
    })
}

impl MediaSender {
    /// Start a session's media, paused; `looping`: start again at the
    /// first frame at the end of the file.
    pub(super) fn start(
        shared: &Shared,
        info: &SessionInfo,
        source: Source,
        (local_ip, peer): (IpAddr, SocketAddr),
        writer: Writer,
        looping: bool,
    ) -> io::Result<(MediaSender, Prepared)> {
        let mut rng = rand::rng();
        let numbering = Numbering::new(
            info.payload,
            &info.id,
            (rng.random(), rng.random(), rng.random()),
        );
        let ssrc = numbering.ssrc;
        let max_payload = match info.payload {
            Payload::Lab => shared.config.max_payload.clamp(1, 65_000),
            Payload::Rfc2435 => STANDARD_MAX_PAYLOAD,
        };
        let last_rtcp = Arc::new(Mutex::new(None));
        let key = shared.next_media.fetch_add(1, Ordering::SeqCst);
        // A live source runs on its own schedule, which the fan-out
        // follows (the thread-per-session sender is kept only to measure
        // files against).
        let live = matches!(source, Source::Live(_));
        let fps = match &source {
            Source::Live(v) => v.fps(),
            _ => shared.config.fps,
        };
        let hub = match shared.config.sender {
            SenderKind::Threads if !live => None,
            _ => shared.hub.sender(),
        };
        let (kind, server_ports) = match hub {
            Some(hub) => {
                let (out, server_ports) = match info.transport {
                    MediaTransport::Udp {
                        rtp_port,
                        rtcp_port,
                    } => {
                        let o = udp_sockets(local_ip, peer, rtp_port, rtcp_port)?;
                        let out = HubOut::Udp {
                            rtp: o.rtp,
                            rtcp: o.rtcp,
                            batch: UdpBatch::new(),
                            heads: Vec::new(),
                        };
                        (out, o.server_ports)
                    }
                    MediaTransport::Interleaved {
                        rtp_channel,
                        rtcp_channel,
                    } => {
                        let out = HubOut::Interleaved {
                            writer,
                            rtp_channel,
                            rtcp_channel,
                            buf: Vec::new(),
                        };
                        (out, None)
                    }
                };
                let now = Instant::now();
                let session = HubSession {
                    key,
                    out,
                    source,
                    payload: info.payload,
                    numbering,
                    fps,
                    looping,
                    max_payload,
                    session: info.id.clone(),
                    peer,
                    last_rtcp: last_rtcp.clone(),
                    sequence: numbering.sequence,
                    playing: false,
                    next_frame: 0,
                    pacer: Pacer::new(now, fps),
                    sent: Sent::default(),
                    refusals: Refusals::default(),
                    behind: 0,
                    behind_said: false,
                    observer: shared.config.observer.clone(),
                    next_sr: now,
                    next_rtcp_check: now,
                };
                hub.send(HubCommand::Add(Box::new(session)))
                    .map_err(|_| io::Error::other("the RTP sender has stopped"))?;
                (Kind::Hub { key, commands: hub }, server_ports)
            }
            None => {
                let transport = info.transport;
                let (out, server_ports) = match transport {
                    MediaTransport::Udp {
                        rtp_port,
                        rtcp_port,
                    } => {
                        let o = udp_sockets(local_ip, peer, rtp_port, rtcp_port)?;
                        (
                            Out::Udp {
                                rtp: o.rtp,
                                rtcp: o.rtcp,
                                batch: UdpBatch::new(),
                            },
                            o.server_ports,
                        )
                    }
                    MediaTransport::Interleaved {
                        rtp_channel,
                        rtcp_channel,
                    } => (
                        Out::Interleaved {
                            writer,
                            rtp_channel,
                            rtcp_channel,
                            pending: Vec::new(),
                        },
                        None,
                    ),
                };
                let (tx, rx) = crossbeam_channel::unbounded();
                let job = MediaJob {
                    out,
                    source,
                    fps: shared.config.fps,
                    looping,
                    max_payload,
                    payload: info.payload,
                    numbering,
                    sequence: numbering.sequence,
                    session: info.id.clone(),
                    peer,
                    last_rtcp: last_rtcp.clone(),
                    observer: shared.config.observer.clone(),
                };
                let thread = std::thread::Builder::new()
                    .name(format!("rtp-{}", info.id))
                    .spawn(move || job.run(rx))?;
                (
                    Kind::Thread {
                        commands: tx,
                        thread,
                    },
                    server_ports,
                )
            }
        };
        shared.sessions.fetch_add(1, Ordering::SeqCst);
        Ok((
            MediaSender { kind, last_rtcp },
            Prepared { server_ports, ssrc },
        ))
    }

    pub(super) fn send(&self, command: MediaCommand) {
        match &self.kind {
            Kind::Thread { commands, .. } => {
                let _ = commands.send(command);
            }
            Kind::Hub { key, commands } => {
                let _ = commands.send(HubCommand::Media(*key, command));
            }
        }
    }

    /// Stop sending, and return once the sender has: the PAUSE reply goes
    /// out next, and a frame sent after it would be one too many. The
    /// sender takes commands in order between frames, so its answer to a
    /// [`prepare`](Self::prepare) that follows the pause says it is done.
    pub(super) fn pause(&self) {
        self.send(MediaCommand::Pause);
        let _ = self.prepare(None);
    }

    /// Seek and learn where PLAY starts; None if the sender is gone.
    pub(super) fn prepare(&self, start: Option<usize>) -> Option<(u16, u32, usize)> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(MediaCommand::Prepare { start, reply: tx });
        rx.recv_timeout(Duration::from_secs(2)).ok()
    }

    pub(super) fn last_rtcp(&self) -> Option<Instant> {
        *self.last_rtcp.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// End the session's media and free its sockets before returning: the
    /// thread sees its channel close and exits; the fan-out sender drops
    /// the session and says so.
    pub(super) fn stop(self, shared: &Shared) {
        match self.kind {
            Kind::Thread { commands, thread } => {
                drop(commands);
                let _ = thread.join();
            }
            Kind::Hub { key, commands } => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                if commands.send(HubCommand::Remove { key, done: tx }).is_ok() {
                    let _ = rx.recv_timeout(Duration::from_secs(5));
                }
            }
        }
        shared.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often a paused standard session looks for RTCP keep-alives.
const PAUSED_RTCP_CHECK: Duration = Duration::from_secs(5);

struct MediaJob {
    out: Out,
    source: Source,
    fps: u32,
    looping: bool,
    max_payload: usize,
    payload: Payload,
    numbering: Numbering,
    /// The next packet's sequence number.
    sequence: u16,
    session: String,
    peer: SocketAddr,
    last_rtcp: Arc<Mutex<Option<Instant>>>,
    /// [`super::ServerConfig::observer`], told of refused sends.
    observer: Option<crossbeam_channel::Sender<super::Observed>>,
}

/// Counters for sender reports.
#[derive(Default)]
pub(super) struct Sent {
    pub frames: u64,
    pub packets: u32,
    pub octets: u32,
}

impl MediaJob {
    fn has_rtcp(&self) -> bool {
        !matches!(self.out, Out::Udp { rtcp: None, .. })
    }

    /// The RTP timestamp of the next frame: the lab's is Unix seconds, the
    /// standard one counts a 90 kHz clock from a random start.
    fn timestamp(&self, frames_sent: u64) -> u32 {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.numbering
            .timestamp(self.payload, frames_sent, self.fps, unix)
    }

    fn run(mut self, commands: Receiver<MediaCommand>) {
        let mut pacer = Pacer::new(Instant::now(), self.fps);
        let mut playing = false;
        let mut next_frame = 0usize;
        let mut sent = Sent::default();
        let mut refusals = Refusals::default();
        let mut next_sr = Instant::now();
        let peer = self.peer;
        loop {
            let deadline = if playing {
                let d = pacer.deadline();
                Some(if self.has_rtcp() { d.min(next_sr) } else { d })
            } else if self.has_rtcp() {
                Some(Instant::now() + PAUSED_RTCP_CHECK)
            } else {
                None
            };
            let command = match deadline {
                Some(d) => commands.recv_deadline(d),
                None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match command {
                Ok(MediaCommand::Play) => {
                    if !playing {
                        playing = true;
                        pacer.restart(Instant::now());
                        next_sr = Instant::now() + Duration::from_millis(500);
                        debug!(%peer, session = %self.session, "sending from frame {next_frame}");
                    }
                }
                Ok(MediaCommand::Pause) => {
                    playing = false;
                    debug!(%peer, session = %self.session, "paused before frame {next_frame}");
                }
                Ok(MediaCommand::Prepare { start, reply }) => {
                    if let Some(n) = start {
                        next_frame = n;
                        if let Source::Rfc2435(viewer) = &self.source {
                            viewer.seek(n);
                        }
                    }
                    let _ = reply.send((self.sequence, self.timestamp(sent.frames), next_frame));
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if self.out.rtcp_arrived() {
                        *self.last_rtcp.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                    }
                    if playing && self.has_rtcp() && now >= next_sr {
                        next_sr = now + SR_EVERY;
                        self.send_report(&sent);
                    }
                    if !playing || now < pacer.deadline() {
                        continue;
                    }
                    let result = self.send_frame(next_frame, &mut sent);
                    if self.out.is_broken() {
                        // The connection's writer has said why; its reader
                        // wakes up and ends the session.
                        debug!(%peer, session = %self.session, "media stopped: the connection broke");
                        break;
                    }
                    match result {
                        FrameResult::Sent(ok) => {
                            if !ok && let Some(tx) = &self.observer {
                                let _ = tx.send(super::Observed::RtpRefused {
                                    peer,
                                    at: Instant::now(),
                                });
                            }
                            next_frame += 1;
                            pacer.advance(Instant::now());
                            if refusals.gone_after(ok) {
                                warn!(%peer, session = %self.session, "the client does not accept packets (its RTP port is closed?); pausing until it sends PLAY again");
                                playing = false;
                            }
                        }
                        FrameResult::Skipped => next_frame += 1,
                        FrameResult::End if self.looping && next_frame > 0 => next_frame = 0,
                        FrameResult::End => {
                            info!(%peer, session = %self.session, "end of the file after {next_frame} frames");
                            playing = false;
                        }
                    }
                }
            }
        }
    }

    fn send_frame(&mut self, n: usize, sent: &mut Sent) -> FrameResult {
        let peer = self.peer;
        let header = RtpHeader {
            marker: false,
            payload_type: rtp::PT_JPEG,
            sequence: self.sequence,
            timestamp: self.timestamp(sent.frames),
            ssrc: self.numbering.ssrc,
        };
        let mut emit = |p: &[u8]| {
            self.out.send_rtp(p);
            sent.packets = sent.packets.wrapping_add(1);
            sent.octets = sent
                .octets
                .wrapping_add(p.len().saturating_sub(rtp::HEADER_LEN) as u32);
        };
        match &self.source {
            Source::Lab(file) => match file.frame(n) {
                Ok(Some(jpeg)) => {
                    self.sequence = rtp::packetize_lab(&jpeg, self.max_payload, header, &mut emit);
                }
                Ok(None) => return FrameResult::End,
                Err(e) => {
                    warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                    return FrameResult::Skipped;
                }
            },
            Source::Rfc2435(frames) => match frames.frame(n) {
                Ok(Some(jpeg)) => match rtp_jpeg::carriable(&jpeg) {
                    Ok(c) => {
                        self.sequence =
                            rtp_jpeg::packetize(&c, self.max_payload, header, &mut emit);
                    }
                    Err(e) => {
                        warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                        return FrameResult::Skipped;
                    }
                },
                Ok(None) => return FrameResult::End,
                Err(e) => {
                    warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                    return FrameResult::Skipped;
                }
            },
            // Never here: live sessions go to the fan-out.
            Source::Live(_) => return FrameResult::End,
        }
        sent.frames += 1;
        FrameResult::Sent(self.out.end_frame())
    }

    fn send_report(&self, sent: &Sent) {
        let sr = super::sender_report_now(
            self.numbering.ssrc,
            self.timestamp(sent.frames),
            sent.packets,
            sent.octets,
        );
        let _ = self.out.send_rtcp(&sr);
    }
}

enum FrameResult {
    /// Sent; false when the socket refused it.
    Sent(bool),
    Skipped,
    End,
}
