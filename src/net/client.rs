//! The client engine: connects to an RTSP server, drives the session state
//! machine from [`crate::protocol`], receives RTP, reassembles and decodes
//! frames off the network thread, and talks to its owner (the window, or
//! `streamlab probe`) only through crossbeam channels.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, select};
use tracing::{debug, info, warn};

use crate::protocol::State;
use crate::protocol::client::{ClientConnection, ClientHost, Event, MediaRoute, StreamInfo};
use crate::protocol::reorder::Reorder;
use crate::protocol::rtcp::{self, Reception};
use crate::protocol::rtp::{self, DropReason, LabDepacketizer, RtpChecker, SsrcRule};
use crate::protocol::rtp_jpeg;
use crate::protocol::server::LAB_QUIET;

pub use crate::protocol::client::{
    ClientCommand, ClientConfig, ClientError, Credentials, DialectChoice, Direction,
    TransportChoice,
};
pub use crate::protocol::timeline::{Anchor, Timeline};

/// One RTSP message exactly as it crossed the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    pub at: SystemTime,
    pub direction: Direction,
    /// The raw text (lossy UTF-8 of the exact bytes).
    pub text: String,
}

/// One decoded video frame, RGBA8, row-major, no padding.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    pub width: u32,
    pub height: u32,
    pub rgba: Arc<Vec<u8>>,
    /// RTP sequence number of the frame's first packet.
    pub seq: u16,
    /// RTP timestamp of the frame.
    pub rtp_timestamp: u32,
    /// Frames decoded so far in this session, counting this one (1-based).
    pub number: u64,
}

/// Counters about the stream, sent about twice a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// Frames decoded and delivered.
    pub frames: u64,
    /// RTP payload bytes accepted.
    pub bytes: u64,
    /// RTP packets accepted.
    pub packets: u64,
    /// Frames per second over the last second or so.
    pub fps: f64,
    /// Packets missing according to sequence numbers.
    pub lost: u64,
    /// Packets dropped, by reason name (e.g. "bad version", "wrong SSRC").
    pub dropped: BTreeMap<String, u64>,
    /// Frames whose JPEG failed to decode.
    pub decode_errors: u64,
    /// Milliseconds from sending PLAY to the first decoded frame.
    pub first_frame_ms: Option<f64>,
    /// The SSRC of the stream, once a packet was accepted.
    pub ssrc: Option<u32>,
    /// Whole frames not decoded because decoding or the window fell behind.
    pub frames_skipped: u64,
    /// Packets that overtook others on the way and were put back in order.
    pub reordered: u64,
    /// Packets the kernel dropped because our UDP receive buffer was full
    /// (Linux; None where it cannot be read, or over TCP).
    pub kernel_drops: Option<u64>,
    /// RTCP receiver reports sent to the server.
    pub reports_sent: u64,
}

impl ClientStats {
    /// All dropped packets, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What the engine tells its owner.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// The session moved to a new state.
    State {
        state: State,
        session: Option<String>,
    },
    /// An RTSP message was sent or received.
    Wire(WireMessage),
    /// A frame was decoded.
    Frame(DecodedFrame),
    /// Counters, about twice a second while a session exists.
    Stats(ClientStats),
    /// Something went wrong; the engine goes on where it can.
    Error(ClientError),
    /// Frames had been arriving and have stopped for a while (the lab's
    /// server just stops at the end of the file).
    StreamEnded,
    /// Something the user should know that is not an error (e.g. RTP
    /// moved from UDP to TCP by itself).
    Notice(String),
    /// The stream's length (after DESCRIBE; None for live streams and the
    /// lab's dialect) or where the last PLAY started (after its reply):
    /// with a frame's RTP timestamp, its position.
    Timeline(Timeline),
    /// The engine stopped (after Shutdown, or when the owner went away).
    Stopped,
}

/// How often counters are sent.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Events queued and not yet taken beyond which frames are not decoded:
/// an owner that stopped draining (a hidden window) must not pile up
/// megabytes of pixels.
const MAX_QUEUED_EVENTS: usize = 64;

/// The owner's side of a running engine. Dropping it shuts the engine down
/// (sending TEARDOWN when a session exists).
pub struct ClientHandle {
    commands: Sender<Order>,
    events: Receiver<ClientEvent>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl ClientHandle {
    /// Start the engine; it connects to the server at once, as the lab's
    /// client does. `on_event` is called after each event is queued (the
    /// window passes a closure that requests a repaint).
    pub fn spawn(config: ClientConfig, on_event: impl Fn() + Send + Sync + 'static) -> Self {
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let events = Events {
            tx: ev_tx,
            notify: Arc::new(on_event),
        };
        let thread = std::thread::Builder::new()
            .name("rtsp-client".into())
            .spawn(move || {
                Engine::new(config, events.clone()).run(cmd_rx);
                events.send(ClientEvent::Stopped);
                let _ = done_tx.send(());
            })
            .ok();
        ClientHandle {
            commands: cmd_tx,
            events: ev_rx,
            done: done_rx,
            thread,
        }
    }

    /// Queue a command; never blocks.
    pub fn send(&self, command: ClientCommand) {
        let _ = self.commands.send(Order::Command(command));
    }

    /// Give the engine a user name and password after it reported a 401;
    /// the refused request goes again with them in the same session (see
    /// [`ClientConnection::credentials`]). Never blocks.
    pub fn credentials(&self, credentials: Credentials) {
        let _ = self.commands.send(Order::Credentials(credentials));
    }

    /// The event stream.
    pub fn events(&self) -> &Receiver<ClientEvent> {
        &self.events
    }

    /// Send Shutdown and wait up to `timeout` for the engine to finish.
    pub fn shutdown(mut self, timeout: Duration) {
        self.stop(timeout);
    }

    fn stop(&mut self, timeout: Duration) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.commands.send(Order::Command(ClientCommand::Shutdown));
        if self.done.recv_timeout(timeout).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// What the owner sends the engine thread. (`Debug` hides the password.)
#[derive(Debug)]
enum Order {
    Command(ClientCommand),
    Credentials(Credentials),
}

/// The event sender plus the owner's wake-up call.
#[derive(Clone)]
struct Events {
    tx: Sender<ClientEvent>,
    notify: Arc<dyn Fn() + Send + Sync>,
}

impl Events {
    fn send(&self, ev: ClientEvent) {
        if self.tx.send(ev).is_ok() {
            (self.notify)();
        }
    }

    fn error(&self, e: ClientError) {
        debug!("client error: {e}");
        self.send(ClientEvent::Error(e));
    }

    fn backlog(&self) -> usize {
        self.tx.len()
    }
}

/// Counters shared by the engine's threads.
#[derive(Default)]
struct StatsInner {
    stats: ClientStats,
    frame_times: VecDeque<Instant>,
    last_packet: Option<Instant>,
    play_sent: Option<Instant>,
}

type SharedStats = Arc<Mutex<StatsInner>>;

fn with_stats<R>(s: &SharedStats, f: impl FnOnce(&mut StatsInner) -> R) -> R {
    let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g)
}

/// What the TCP reader thread reports.
enum NetInput {
    Bytes(Vec<u8>),
    Closed,
}

/// The RTP side: receiver and decoder threads, alive from SETUP to the end.
struct MediaThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    port: u16,
}

impl MediaThreads {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Whole frames waiting for the decoder before new ones are skipped.
const DECODE_QUEUE: usize = 16;
/// The UDP receive buffer asked for RTP.
const RTP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// The I/O loop around [`ClientConnection`]: it owns the sockets and
/// threads and feeds the connection bytes, commands and the time.
struct Engine {
    conn: ClientConnection,
    io: Io,
}

/// The sockets and threads, as [`ClientHost`] for the connection.
struct Io {
    config: ClientConfig,
    events: Events,
    stats: SharedStats,
    stream: Option<TcpStream>,
    server_ip: Option<IpAddr>,
    net_rx: Receiver<NetInput>,
    reader: Option<JoinHandle<()>>,
    media: Option<MediaThreads>,
    /// RTP arriving inside the RTSP connection (TCP transport).
    interleaved: Option<MediaPath>,
    info: Arc<SharedInfo>,
    /// The engine thread's own copy of `info`: it sets it, so reading it
    /// per interleaved packet needs no lock.
    current: StreamInfo,
    last_stats: Option<ClientStats>,
}

impl Engine {
    fn new(config: ClientConfig, events: Events) -> Self {
        Engine {
            conn: ClientConnection::new(config.clone()),
            io: Io {
                config,
                events,
                stats: SharedStats::default(),
                stream: None,
                server_ip: None,
                net_rx: crossbeam_channel::never(),
                reader: None,
                media: None,
                interleaved: None,
                info: Arc::default(),
                current: StreamInfo::default(),
                last_stats: None,
            },
        }
    }

    fn run(mut self, commands: Receiver<Order>) {
        self.conn.start(&mut self.io);
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            let deadline = self
                .conn
                .poll_timeout()
                .map_or(next_stats, |t| t.min(next_stats));
            let net_rx = self.io.net_rx.clone();
            select! {
                recv(commands) -> order => match order {
                    Ok(Order::Command(ClientCommand::Shutdown)) | Err(_) => break,
                    Ok(Order::Command(c)) => self.conn.command(Instant::now(), c, &mut self.io),
                    Ok(Order::Credentials(c)) => {
                        self.conn.credentials(Instant::now(), c, &mut self.io)
                    }
                },
                recv(net_rx) -> input => match input {
                    Ok(NetInput::Bytes(b)) => self.conn.handle_bytes(Instant::now(), &b, &mut self.io),
                    Ok(NetInput::Closed) | Err(_) => self.conn.handle_closed(Instant::now(), &mut self.io),
                },
                default(deadline.saturating_duration_since(Instant::now())) => {}
            }
            let now = Instant::now();
            self.conn
                .media_seen(with_stats(&self.io.stats, |s| s.last_packet));
            self.conn.handle_timeout(now, &mut self.io);
            if now >= next_stats {
                next_stats = now + STATS_EVERY;
                if self.conn.has_session() || self.io.media.is_some() {
                    self.io.interleaved_report(now);
                    self.io.send_stats(now);
                }
            }
        }
        self.teardown_on_exit();
        self.io.close_media();
        self.io.disconnect();
        let stats = with_stats(&self.io.stats, |s| s.stats.clone());
        self.io.events.send(ClientEvent::Stats(stats));
    }

    /// Leave politely: TEARDOWN, and wait a moment for its reply.
    fn teardown_on_exit(&mut self) {
        if self.conn.state() == State::Init {
            return;
        }
        self.conn
            .command(Instant::now(), ClientCommand::Teardown, &mut self.io);
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.conn.state() != State::Init && self.conn.has_session() {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            match self.io.net_rx.recv_timeout(wait.min(LAB_QUIET)) {
                Ok(NetInput::Bytes(b)) => self.conn.handle_bytes(Instant::now(), &b, &mut self.io),
                Ok(NetInput::Closed) => break,
                Err(_) => self.conn.handle_timeout(Instant::now(), &mut self.io),
            }
        }
    }
}

impl Io {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.rtsp_port)
    }

    /// A receiver report inside the RTSP connection, when one is due.
    fn interleaved_report(&mut self, now: Instant) {
        let Some(report) = self.interleaved.as_mut().and_then(|p| p.due_report(now)) else {
            return;
        };
        let Some(channel) = self.current.rtcp_channel else {
            return;
        };
        let mut frame = vec![b'$', channel];
        frame.extend_from_slice(&(report.len() as u16).to_be_bytes());
        frame.extend_from_slice(&report);
        // A failed write shows up as the reader's Closed.
        let _ = self.send(&frame);
    }

    /// Counters, when they changed: a paused window stays idle.
    fn send_stats(&mut self, now: Instant) {
        let stats = with_stats(&self.stats, |s| {
            while s
                .frame_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            {
                s.frame_times.pop_front();
            }
            s.stats.fps = s.frame_times.len() as f64;
            s.stats.clone()
        });
        if self.last_stats.as_ref() != Some(&stats) {
            self.last_stats = Some(stats.clone());
            self.events.send(ClientEvent::Stats(stats));
        }
    }

    /// Start the decoder thread and, for UDP, bind the RTP port and start
    /// the receiver; for TCP, RTP comes through the RTSP connection.
    fn start_media(&mut self, route: MediaRoute) -> Result<MediaThreads, ClientError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Empty while decoding keeps up; the slack absorbs the decoder
        // being descheduled for a moment on a busy machine.
        let (frames_tx, frames_rx) = crossbeam_channel::bounded::<rtp::JpegFrame>(DECODE_QUEUE);
        // Standard RTP over UDP only: TCP arrives in order, and the lab's
        // checks (seed 000) judge each datagram as it comes.
        let reorder = route == MediaRoute::Udp { pair: true };
        let path = MediaPath::new(self.info.clone(), self.stats.clone(), frames_tx, reorder);
        let decoder = FrameDecoder {
            frames: frames_rx,
            events: self.events.clone(),
            stats: self.stats.clone(),
        };
        let spawn_err =
            |e: std::io::Error| ClientError::Other(format!("cannot start a thread: {e}"));
        let mut threads = vec![
            std::thread::Builder::new()
                .name("jpeg-decode".into())
                .spawn(move || decoder.run())
                .map_err(spawn_err)?,
        ];
        let mut port = 0;
        match route {
            MediaRoute::Udp { pair } => {
                let (socket, rtcp) = bind_rtp(self.config.rtp_port, pair)?;
                port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
                if self.config.rtp_port != 0 && port != self.config.rtp_port {
                    // SETUP names the port we got, so any free one works;
                    // a second player window is the usual reason.
                    self.events.send(ClientEvent::Notice(format!(
                        "RTP port {} is in use by another program; receiving on port {port} instead.",
                        self.config.rtp_port
                    )));
                }
                // A 1080p frame is a burst of a hundred packets or more; the
                // default buffer (about 200 KB) loses the tail of one when the
                // receiver is a moment late. The kernel caps the size asked.
                let sock = socket2::SockRef::from(&socket);
                let _ = sock.set_recv_buffer_size(RTP_RECEIVE_BUFFER);
                debug!(
                    "RTP receive buffer: {} bytes",
                    sock.recv_buffer_size().unwrap_or(0)
                );
                let _ = socket.set_read_timeout(Some(RECEIVE_WAIT));
                let receiver = RtpReceiver {
                    socket,
                    rtcp,
                    info: self.info.clone(),
                    server_ip: self.server_ip,
                    stop: stop.clone(),
                    path,
                };
                threads.push(
                    std::thread::Builder::new()
                        .name("rtp-receive".into())
                        .spawn(move || receiver.run())
                        .map_err(spawn_err)?,
                );
            }
            MediaRoute::Interleaved => self.interleaved = Some(path),
        }
        Ok(MediaThreads {
            stop,
            threads,
            port,
        })
    }
}

impl ClientHost for Io {
    fn connect(&mut self) -> Result<(), ClientError> {
        self.disconnect();
        let addr = self.addr();
        let addrs: Vec<SocketAddr> =
            match (self.config.host.as_str(), self.config.rtsp_port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    return Err(ClientError::Connect {
                        addr,
                        reason: format!("cannot resolve the host name ({e})"),
                    });
                }
            };
        let mut last_err = String::from("no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let Ok(reader) = stream.try_clone() else {
                        continue;
                    };
                    let (tx, rx) = crossbeam_channel::unbounded();
                    self.reader = std::thread::Builder::new()
                        .name("rtsp-client-read".into())
                        .spawn(move || read_loop(reader, tx))
                        .ok();
                    self.net_rx = rx;
                    self.server_ip = Some(a.ip());
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(ClientError::Connect {
            addr,
            reason: last_err,
        })
    }

    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.net_rx = crossbeam_channel::never();
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stream.as_mut() {
            Some(s) => s.write_all(bytes),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
        self.close_media();
        let media = self.start_media(route)?;
        let port = media.port;
        self.media = Some(media);
        Ok(port)
    }

    /// Stop receiving: the next session starts with fresh checks (its
    /// SSRC and sequence numbers are new) and a fresh port.
    fn close_media(&mut self) {
        // The decoder thread ends when every frame sender is gone.
        self.interleaved = None;
        if let Some(m) = self.media.take() {
            m.stop();
        }
    }

    fn stream_info(&mut self, info: StreamInfo) {
        self.current = info;
        self.info.set(info);
    }

    fn interleaved(&mut self, channel: u8, payload: &[u8]) {
        let info = self.current;
        let Some(path) = self.interleaved.as_mut() else {
            return;
        };
        if channel == info.rtp_channel {
            path.handle(Instant::now(), payload);
        } else if Some(channel) == info.rtcp_channel {
            path.handle_rtcp(Instant::now(), payload);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Wire { direction, bytes } => self.events.send(ClientEvent::Wire(WireMessage {
                at: SystemTime::now(),
                direction,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })),
            Event::State { state, session } => {
                self.events.send(ClientEvent::State { state, session })
            }
            Event::PlaySent => with_stats(&self.stats, |s| {
                s.play_sent = Some(Instant::now());
                s.last_packet = None;
            }),
            Event::Error(e) => self.events.error(e),
            Event::Notice(n) => {
                info!("{n}");
                self.events.send(ClientEvent::Notice(n));
            }
            Event::StreamEnded => self.events.send(ClientEvent::StreamEnded),
            Event::Timeline(t) => self.events.send(ClientEvent::Timeline(t)),
        }
    }

    fn random(&mut self) -> u32 {
        rand::random()
    }
}

/// Bind the RTP port: the one asked for, or a free one. Standard RTP
/// wants it even, with the odd one after it for RTCP; the RTCP socket is
/// returned when that port could be had.
/// Bind the RTP port asked for (and RTCP's beside it); when another
/// program has it, any free one (an even/odd pair for RTCP), since SETUP
/// tells the server which.
fn bind_rtp(port: u16, pair: bool) -> Result<(UdpSocket, Option<UdpSocket>), ClientError> {
    let err = |e: std::io::Error| ClientError::RtpPort {
        port,
        reason: e.to_string(),
    };
    match bind_rtp_exactly(port, pair) {
        Err(e) if port != 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
            bind_rtp_exactly(0, pair).map_err(err)
        }
        result => result.map_err(err),
    }
}

fn bind_rtp_exactly(port: u16, pair: bool) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
    let rtcp_after = |s: &UdpSocket| {
        let p = s.local_addr().ok()?.port().checked_add(1)?;
        let r = UdpSocket::bind(("0.0.0.0", p)).ok()?;
        r.set_nonblocking(true).ok()?;
        Some(r)
    };
    if !pair {
        return Ok((UdpSocket::bind(("0.0.0.0", port))?, None));
    }
    if port != 0 {
        let s = UdpSocket::bind(("0.0.0.0", port))?;
        let r = rtcp_after(&s);
        return Ok((s, r));
    }
    for _ in 0..64 {
        let s = UdpSocket::bind(("0.0.0.0", 0))?;
        if s.local_addr().is_ok_and(|a| a.port() % 2 == 0)
            && let Some(r) = rtcp_after(&s)
        {
            return Ok((s, Some(r)));
        }
    }
    Ok((UdpSocket::bind(("0.0.0.0", 0))?, None))
}

fn read_loop(mut stream: TcpStream, tx: Sender<NetInput>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(NetInput::Bytes(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = tx.send(NetInput::Closed);
}

/// What the client learned about the stream, shared with the receiving
/// thread, which reads a generation number per packet and takes the lock
/// only when it moved.
#[derive(Default)]
struct SharedInfo {
    generation: AtomicU64,
    info: Mutex<StreamInfo>,
}

impl SharedInfo {
    fn set(&self, info: StreamInfo) {
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn get(&self) -> StreamInfo {
        *self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// The payload format, told by the first packet: the lab's whole JPEG
/// starts with FFD8, an RFC 2435 payload with its 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Lab,
    Rfc2435,
}

/// The RTP clock of RFC 2435 video.
const VIDEO_CLOCK: u32 = 90_000;
/// The first receiver report goes this long after the first packet, then
/// one every [`REPORT_EVERY`] (RFC 3550's minimum interval).
const FIRST_REPORT_AFTER: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Checks and reassembles RTP packets, from UDP or from the RTSP
/// connection, and hands whole JPEGs to the decoder.
struct MediaPath {
    /// Standard RTP over UDP only.
    reorder: Option<Reorder>,
    checker: RtpChecker,
    kind: Option<PayloadKind>,
    lab: LabDepacketizer,
    rfc: rtp_jpeg::Depacketizer,
    info: Arc<SharedInfo>,
    /// The generation of `info` last looked at.
    applied: Option<u64>,
    dimensions: Option<(u16, u16)>,
    stats: SharedStats,
    frames: Sender<rtp::JpegFrame>,
    reception: Reception,
    /// Our SSRC in receiver reports.
    own_ssrc: u32,
    next_report: Option<Instant>,
    duplicates: u64,
    put_back: u64,
}

impl MediaPath {
    fn new(
        info: Arc<SharedInfo>,
        stats: SharedStats,
        frames: Sender<rtp::JpegFrame>,
        reorder: bool,
    ) -> Self {
        MediaPath {
            reorder: reorder.then(Reorder::default),
            checker: RtpChecker::new(rtp::PT_JPEG, SsrcRule::First),
            kind: None,
            lab: LabDepacketizer::new(),
            rfc: rtp_jpeg::Depacketizer::new(None),
            info,
            applied: None,
            dimensions: None,
            stats,
            frames,
            reception: Reception::default(),
            own_ssrc: rand::random(),
            next_report: None,
            duplicates: 0,
            put_back: 0,
        }
    }

    fn drop_packet(&self, reason: DropReason) {
        self.drop_named(reason.name(), 1);
    }

    fn drop_named(&self, name: &str, count: u64) {
        with_stats(&self.stats, |s| {
            *s.stats.dropped.entry(name.to_string()).or_default() += count;
        })
    }

    /// One datagram (or interleaved frame) of RTP, arrived at `now`.
    fn handle(&mut self, now: Instant, buf: &[u8]) {
        match self.reorder.take() {
            Some(mut r) => {
                let restarts = self.checker.restarts();
                r.push(now, buf, &mut |p| self.accept(now, p));
                if self.checker.restarts() != restarts {
                    // The window waits in the old sequence numbers.
                    r.reset();
                }
                self.count_reorder(&r);
                self.reorder = Some(r);
            }
            None => self.accept(now, buf),
        }
    }

    /// Give up on missing packets that were waited for long enough.
    fn poll(&mut self, now: Instant) {
        if let Some(mut r) = self.reorder.take() {
            r.poll(now, &mut |p| self.accept(now, p));
            self.reorder = Some(r);
        }
    }

    /// When `poll` has something to do.
    fn deadline(&self) -> Option<Instant> {
        self.reorder.as_ref().and_then(Reorder::deadline)
    }

    fn count_reorder(&mut self, r: &Reorder) {
        let (dups, put_back) = (r.duplicates(), r.put_back());
        if dups > self.duplicates {
            self.drop_named("duplicate", dups - self.duplicates);
            self.duplicates = dups;
        }
        if put_back > self.put_back {
            self.put_back = put_back;
            with_stats(&self.stats, |s| s.stats.reordered = put_back);
        }
    }

    fn accept(&mut self, now: Instant, buf: &[u8]) {
        // One atomic load per packet; the lock only when DESCRIBE or
        // SETUP changed something.
        let generation = self.info.generation();
        if self.applied != Some(generation) {
            self.applied = Some(generation);
            let p = self.info.get();
            if p.payload_type != self.checker.payload_type() || p.dimensions != self.dimensions {
                self.checker.set_payload_type(p.payload_type);
                self.dimensions = p.dimensions;
                self.rfc = rtp_jpeg::Depacketizer::new(p.dimensions);
            }
        }
        let restarts = self.checker.restarts();
        let accepted = match self.checker.check(buf) {
            Ok(a) => a,
            Err(reason) => return self.drop_packet(reason),
        };
        if self.checker.restarts() != restarts {
            info!(
                "the server started its RTP stream over (SSRC {:08X}, sequence number {}); following it",
                accepted.packet.header.ssrc, accepted.packet.header.sequence
            );
        }
        let h = accepted.packet.header;
        self.reception
            .on_rtp(now, h.ssrc, h.sequence, h.timestamp, VIDEO_CLOCK);
        self.next_report.get_or_insert(now + FIRST_REPORT_AFTER);
        with_stats(&self.stats, |s| {
            s.stats.packets += 1;
            s.stats.bytes += accepted.packet.payload.len() as u64;
            s.stats.lost += accepted.lost as u64;
            s.stats.ssrc = Some(h.ssrc);
            s.last_packet = Some(now);
        });
        let kind =
            *self
                .kind
                .get_or_insert(if accepted.packet.payload.starts_with(&[0xff, 0xd8]) {
                    PayloadKind::Lab
                } else {
                    PayloadKind::Rfc2435
                });
        let result = match kind {
            PayloadKind::Lab => self.lab.push(&accepted),
            PayloadKind::Rfc2435 => self.rfc.push(&accepted),
        };
        match result {
            Ok(Some(frame)) => {
                if self.frames.try_send(frame).is_err() {
                    debug!("decoder behind; frame skipped");
                    with_stats(&self.stats, |s| s.stats.frames_skipped += 1);
                }
            }
            Ok(None) => {}
            Err(reason) => self.drop_packet(reason),
        }
    }

    /// RTCP from the server: its sender reports feed ours.
    fn handle_rtcp(&mut self, now: Instant, buf: &[u8]) {
        let Some(packets) = rtcp::parse_compound(buf) else {
            return self.drop_named("bad RTCP", 1);
        };
        for p in packets {
            if let Some(ntp) = p.sr_ntp_middle {
                self.reception.on_sender_report(now, ntp);
            }
        }
    }

    /// A receiver report, when one is due.
    fn due_report(&mut self, now: Instant) -> Option<[u8; 32]> {
        if self.next_report.is_none_or(|t| now < t) {
            return None;
        }
        self.next_report = Some(now + REPORT_EVERY);
        let block = self.reception.report(now)?;
        with_stats(&self.stats, |s| s.stats.reports_sent += 1);
        Some(rtcp::receiver_report(self.own_ssrc, &block))
    }
}

/// Receives RTP over UDP, from the server's address only, and sends the
/// server receiver reports from the RTCP port beside it.
struct RtpReceiver {
    socket: UdpSocket,
    /// The odd port after the RTP one, when it could be had.
    rtcp: Option<UdpSocket>,
    server_ip: Option<IpAddr>,
    info: Arc<SharedInfo>,
    stop: Arc<AtomicBool>,
    path: MediaPath,
}

/// How often the kernel's drop counter for our socket is read.
const KERNEL_DROPS_EVERY: Duration = Duration::from_secs(1);
/// The longest a receive blocks: how soon a stop is noticed.
const RECEIVE_WAIT: Duration = Duration::from_millis(250);

impl RtpReceiver {
    fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        let port = self.socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut next_drops = Instant::now();
        let mut wait = RECEIVE_WAIT;
        while !self.stop.load(Ordering::SeqCst) {
            let received = self.socket.recv_from(&mut buf);
            let now = Instant::now();
            match received {
                Ok((n, from)) => {
                    if self.server_ip.is_some_and(|ip| !same_host(ip, from.ip())) {
                        self.path.drop_packet(DropReason::Source);
                    } else {
                        self.path.handle(now, &buf[..n]);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => warn!("RTP receive failed: {e}"),
            }
            self.path.poll(now);
            self.rtcp(now, &mut buf);
            if now >= next_drops {
                next_drops = now + KERNEL_DROPS_EVERY;
                if let Some(drops) = udp_drops(port) {
                    with_stats(&self.path.stats, |s| s.stats.kernel_drops = Some(drops));
                }
            }
            // Wake for the reorder window's deadline, not only for packets.
            let next = self
                .path
                .deadline()
                .map_or(RECEIVE_WAIT, |d| d.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), RECEIVE_WAIT);
            if next != wait {
                wait = next;
                let _ = self.socket.set_read_timeout(Some(wait));
            }
        }
    }

    /// Read the server's sender reports; send ours when due.
    fn rtcp(&mut self, now: Instant, buf: &mut [u8]) {
        let Some(sock) = self.rtcp.as_ref() else {
            return;
        };
        while let Ok((n, from)) = sock.recv_from(buf) {
            if self.server_ip.is_some_and(|ip| same_host(ip, from.ip())) {
                self.path.handle_rtcp(now, &buf[..n]);
            }
        }
        let Some(report) = self.path.due_report(now) else {
            return;
        };
        let port = self.info.get().server_rtcp_port;
        // Only to the server the session is with, as RTSP said.
        if let (Some(ip), Some(port)) = (self.server_ip, port)
            && let Err(e) = sock.send_to(&report, (ip, port))
        {
            debug!("receiver report not sent: {e}");
        }
    }
}

/// Packets the kernel dropped for our UDP port because the receive buffer
/// was full (the last column of /proc/net/udp); None where that file is
/// not there (not Linux).
fn udp_drops(port: u16) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| drops_in(&text, port))
}

/// The drops column of the line for local `port` in /proc/net/udp text.
fn drops_in(text: &str, port: u16) -> Option<u64> {
    let want = format!(":{port:04X}");
    text.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1)?;
        if !local.ends_with(&want) {
            return None;
        }
        line.split_whitespace().last()?.parse().ok()
    })
}

/// An IPv4 server may appear as an IPv4-mapped IPv6 source, and the other way.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// Decodes JPEG to RGBA off the network thread.
struct FrameDecoder {
    frames: Receiver<rtp::JpegFrame>,
    events: Events,
    stats: SharedStats,
}

impl FrameDecoder {
    fn run(self) {
        let mut number = 0u64;
        for frame in self.frames.iter() {
            if self.events.backlog() > MAX_QUEUED_EVENTS {
                with_stats(&self.stats, |s| s.stats.frames_skipped += 1);
                continue;
            }
            match decode_rgba(&frame.jpeg) {
                Ok((width, height, rgba)) => {
                    number += 1;
                    let now = Instant::now();
                    with_stats(&self.stats, |s| {
                        s.stats.frames += 1;
                        s.frame_times.push_back(now);
                        if s.stats.first_frame_ms.is_none()
                            && let Some(p) = s.play_sent
                        {
                            s.stats.first_frame_ms =
                                Some(now.duration_since(p).as_secs_f64() * 1e3);
                        }
                    });
                    self.events.send(ClientEvent::Frame(DecodedFrame {
                        width,
                        height,
                        rgba: Arc::new(rgba),
                        seq: frame.seq,
                        rtp_timestamp: frame.timestamp,
                        number,
                    }));
                }
                Err(e) => {
                    debug!("frame {} does not decode: {e}", frame.seq);
                    with_stats(&self.stats, |s| s.stats.decode_errors += 1);
                }
            }
        }
    }
}

/// Decode a JPEG straight to RGBA8.
pub fn decode_rgba(jpeg: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGBA)
        .set_max_width(8192)
        .set_max_height(8192);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no image header")?;
    let (w, h) = (info.width as u32, info.height as u32);
    if pixels.len() != (w * h * 4) as usize {
        return Err(format!("decoded {} bytes for {w}x{h} RGBA", pixels.len()));
    }
    Ok((w, h, pixels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_column_of_proc_net_udp() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 1234: 00000000:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n\
 1235: 0100007F:C350 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 4243 2 0000000000000000 117\n";
        assert_eq!(drops_in(text, 8080), Some(0));
        assert_eq!(drops_in(text, 50000), Some(117));
        assert_eq!(drops_in(text, 5000), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_drops_of_a_full_socket_are_read() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(4096);
        let port = rx.local_addr().unwrap().port();
        assert_eq!(udp_drops(port), Some(0));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            tx.send_to(&[0u8; 1000], ("127.0.0.1", port)).unwrap();
        }
        assert!(udp_drops(port).is_some_and(|d| d > 0), "nobody read");
    }
}
