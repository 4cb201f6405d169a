//! The client engine: connects to an RTSP server, drives the session state
//! machine from [`crate::protocol`], receives RTP, reassembles and decodes
//! frames off the network thread, and talks to its owner (the window, or
//! `streamlab probe`) only through crossbeam channels.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, select};
use tracing::{debug, warn};

use crate::protocol::State;
use crate::protocol::rtp::{self, DropReason, LabDepacketizer, RtpChecker, SsrcRule};
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method};
use crate::protocol::server::LAB_QUIET;
use crate::protocol::session::{ClientReply, ClientSession};

/// Where and what to play: the lab's four fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Server host name or address.
    pub host: String,
    /// The server's RTSP (TCP) port.
    pub rtsp_port: u16,
    /// Local UDP port for RTP; 0 picks a free one.
    pub rtp_port: u16,
    /// The file to ask for (request target), e.g. `movie.Mjpeg`.
    pub file: String,
}

/// What the owner asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand {
    Setup,
    Play,
    Pause,
    Teardown,
    /// Send TEARDOWN if a session exists, then stop every engine thread.
    Shutdown,
}

/// Which way an RTSP message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

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
}

impl ClientStats {
    /// All dropped packets, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// Errors a person can act on; `Display` is the sentence shown to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(
        "could not connect to {addr}: {reason}. Is the server running, and is the RTSP port right?"
    )]
    Connect { addr: String, reason: String },
    #[error("the server answered {method} with {code} {reason}{}", status_hint(*.code))]
    Status {
        method: String,
        code: u16,
        reason: String,
    },
    #[error("the server did not answer {method} within {seconds} s")]
    NoReply { method: String, seconds: u64 },
    #[error("the server closed the RTSP connection")]
    ServerGone,
    #[error(
        "cannot use UDP port {port} for RTP: {reason}. Pick another RTP port (or 0 for any free one)."
    )]
    RtpPort { port: u16, reason: String },
    #[error(
        "no video arrived within {seconds} s of PLAY. A firewall may be blocking UDP port {port}, or the server sends RTP elsewhere."
    )]
    NoMedia { seconds: u64, port: u16 },
    #[error("{0}")]
    Other(String),
}

/// What a person can do about a refused request.
fn status_hint(code: u16) -> &'static str {
    match code {
        404 => ": the server has no such file. Check the file name (it is case-sensitive).",
        454 => ": the server does not know this session any more. Press SETUP again.",
        455 => ": the server thinks the session is in another state.",
        461 => ": the server does not offer this transport.",
        500..=599 => ": the server failed. Its log may say why.",
        _ => ".",
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
    /// The engine stopped (after Shutdown, or when the owner went away).
    Stopped,
}

/// How long to wait for a reply before telling the user.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long PLAY may go without any RTP before the user hears about it.
const NO_MEDIA_AFTER: Duration = Duration::from_secs(5);
/// Silence after frames that counts as the end of the stream.
const ENDED_AFTER: Duration = Duration::from_secs(2);
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
    commands: Sender<ClientCommand>,
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
        let _ = self.commands.send(command);
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
        let _ = self.commands.send(ClientCommand::Shutdown);
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

struct Engine {
    config: ClientConfig,
    events: Events,
    stats: SharedStats,
    stream: Option<TcpStream>,
    server_ip: Option<IpAddr>,
    net_rx: Receiver<NetInput>,
    reader: Option<JoinHandle<()>>,
    decoder: Decoder,
    session: Option<ClientSession>,
    media: Option<MediaThreads>,
    sent_at: Option<Instant>,
    last_bytes: Option<Instant>,
    no_media_told: bool,
    ended_told: bool,
    last_stats: Option<ClientStats>,
}

impl Engine {
    fn new(config: ClientConfig, events: Events) -> Self {
        Engine {
            config,
            events,
            stats: SharedStats::default(),
            stream: None,
            server_ip: None,
            net_rx: crossbeam_channel::never(),
            reader: None,
            decoder: Decoder::new(),
            session: None,
            media: None,
            sent_at: None,
            last_bytes: None,
            no_media_told: false,
            ended_told: false,
            last_stats: None,
        }
    }

    fn run(mut self, commands: Receiver<ClientCommand>) {
        self.connect();
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            let deadline = self.next_deadline(next_stats);
            let net_rx = self.net_rx.clone();
            select! {
                recv(commands) -> cmd => match cmd {
                    Ok(ClientCommand::Shutdown) | Err(_) => break,
                    Ok(c) => self.command(c),
                },
                recv(net_rx) -> input => match input {
                    Ok(NetInput::Bytes(b)) => {
                        self.decoder.push(&b);
                        self.last_bytes = Some(Instant::now());
                        self.read_messages(false);
                    }
                    Ok(NetInput::Closed) | Err(_) => self.server_closed(),
                },
                default(deadline.saturating_duration_since(Instant::now())) => {}
            }
            let now = Instant::now();
            if self.decoder.pending() > 0 && self.last_bytes.is_some_and(|t| now >= t + LAB_QUIET) {
                self.read_messages(true);
            }
            self.check_reply_timeout(now);
            if now >= next_stats {
                next_stats = now + STATS_EVERY;
                self.tick(now);
            }
        }
        self.teardown_on_exit();
        self.close();
        let stats = with_stats(&self.stats, |s| s.stats.clone());
        self.events.send(ClientEvent::Stats(stats));
    }

    fn next_deadline(&self, next_stats: Instant) -> Instant {
        let mut d = next_stats;
        if self.decoder.pending() > 0
            && let Some(t) = self.last_bytes
        {
            d = d.min(t + LAB_QUIET);
        }
        if let Some(t) = self.sent_at {
            d = d.min(t + REPLY_TIMEOUT);
        }
        d
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.rtsp_port)
    }

    /// Open the RTSP connection and its reader thread.
    fn connect(&mut self) -> bool {
        if self.stream.is_some() {
            return true;
        }
        let addr = self.addr();
        let addrs: Vec<SocketAddr> =
            match (self.config.host.as_str(), self.config.rtsp_port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    self.events.error(ClientError::Connect {
                        addr,
                        reason: format!("cannot resolve the host name ({e})"),
                    });
                    return false;
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
                    self.decoder = Decoder::new();
                    return true;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        self.events.error(ClientError::Connect {
            addr,
            reason: last_err,
        });
        false
    }

    fn close(&mut self) {
        if let Some(m) = self.media.take() {
            m.stop();
        }
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.net_rx = crossbeam_channel::never();
    }

    fn state(&self) -> State {
        self.session.as_ref().map_or(State::Init, |s| s.state())
    }

    fn command(&mut self, cmd: ClientCommand) {
        let method = match cmd {
            ClientCommand::Setup => Method::Setup,
            ClientCommand::Play => Method::Play,
            ClientCommand::Pause => Method::Pause,
            ClientCommand::Teardown => Method::Teardown,
            ClientCommand::Shutdown => return,
        };
        if method == Method::Setup && self.state() == State::Init {
            if !self.connect() {
                return;
            }
            if self.media.is_none() {
                match self.start_media() {
                    Ok(m) => self.media = Some(m),
                    Err(e) => return self.events.error(e),
                }
            }
            let port = self.media.as_ref().map_or(0, |m| m.port);
            if self.session.as_ref().is_none_or(|s| s.pending().is_none()) {
                self.session = Some(ClientSession::new(
                    self.config.file.clone(),
                    port,
                    Dialect::Lab,
                ));
            }
        }
        let Some(session) = self.session.as_mut() else {
            return self.events.error(ClientError::Other(format!(
                "{method} needs a session: press SETUP first"
            )));
        };
        if method == Method::Teardown {
            // Leaving must always work, even with a reply outstanding.
            session.abandon_pending();
        }
        let request = match session.request(method.clone()) {
            Ok(r) => r,
            Err(e) => return self.events.error(ClientError::Other(e.to_string())),
        };
        let bytes = request.to_bytes();
        let Some(stream) = self.stream.as_mut() else {
            return self.events.error(ClientError::ServerGone);
        };
        if stream.write_all(&bytes).is_err() {
            self.server_closed();
            return;
        }
        self.sent_at = Some(Instant::now());
        self.wire(Direction::Sent, &bytes);
        if method == Method::Play {
            self.no_media_told = false;
            self.ended_told = false;
            with_stats(&self.stats, |s| {
                s.play_sent = Some(Instant::now());
                s.last_packet = None;
            });
        }
    }

    fn wire(&self, direction: Direction, bytes: &[u8]) {
        self.events.send(ClientEvent::Wire(WireMessage {
            at: SystemTime::now(),
            direction,
            text: String::from_utf8_lossy(bytes).into_owned(),
        }));
    }

    fn read_messages(&mut self, quiet: bool) {
        while let Some(m) = self.decoder.poll(quiet) {
            let raw = self.decoder.last_raw().to_vec();
            match m {
                Ok(Message::Response(resp)) => {
                    self.wire(Direction::Received, &raw);
                    let Some(session) = self.session.as_mut() else {
                        continue;
                    };
                    match session.handle_response(&resp) {
                        ClientReply::Done { to, .. } => {
                            self.sent_at = None;
                            let session_id = session.session().map(str::to_string);
                            self.events.send(ClientEvent::State {
                                state: to,
                                session: session_id,
                            });
                            if to == State::Init {
                                self.session = None;
                            }
                        }
                        ClientReply::Failed {
                            method,
                            status,
                            reason,
                        } => {
                            self.sent_at = None;
                            self.events.error(ClientError::Status {
                                method: method.to_string(),
                                code: status,
                                reason,
                            });
                        }
                        ClientReply::Unexpected => debug!("reply to no pending request"),
                    }
                }
                Ok(Message::Request(req)) => {
                    self.wire(Direction::Received, &raw);
                    debug!("server sent a request ({}); not answered", req.method);
                }
                Ok(Message::Interleaved { .. }) => {}
                Err(e) => {
                    self.wire(Direction::Received, &raw);
                    self.events.error(ClientError::Other(format!(
                        "unreadable reply from the server: {e}"
                    )));
                }
            }
        }
    }

    fn check_reply_timeout(&mut self, now: Instant) {
        if self.sent_at.is_some_and(|t| now >= t + REPLY_TIMEOUT) {
            self.sent_at = None;
            if let Some(m) = self.session.as_mut().and_then(|s| s.abandon_pending()) {
                if m == Method::Setup && self.state() == State::Init {
                    self.session = None;
                }
                self.events.error(ClientError::NoReply {
                    method: m.to_string(),
                    seconds: REPLY_TIMEOUT.as_secs(),
                });
            }
        }
    }

    fn server_closed(&mut self) {
        let had_session = self.session.is_some();
        self.close();
        let was = self.state();
        self.session = None;
        self.sent_at = None;
        if was != State::Init || had_session {
            self.events.send(ClientEvent::State {
                state: State::Init,
                session: None,
            });
        }
        self.events.error(ClientError::ServerGone);
    }

    fn tick(&mut self, now: Instant) {
        let state = self.state();
        if self.session.is_none() && self.media.is_none() {
            return;
        }
        let (stats, last_packet, play_sent) = with_stats(&self.stats, |s| {
            while s
                .frame_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            {
                s.frame_times.pop_front();
            }
            s.stats.fps = s.frame_times.len() as f64;
            (s.stats.clone(), s.last_packet, s.play_sent)
        });
        // Unchanged counters are not news: a paused window stays idle.
        if self.last_stats.as_ref() != Some(&stats) {
            self.last_stats = Some(stats.clone());
            self.events.send(ClientEvent::Stats(stats));
        }
        if state != State::Playing {
            return;
        }
        match (last_packet, play_sent) {
            (None, Some(p)) if !self.no_media_told && now >= p + NO_MEDIA_AFTER => {
                self.no_media_told = true;
                self.events.error(ClientError::NoMedia {
                    seconds: NO_MEDIA_AFTER.as_secs(),
                    port: self.media.as_ref().map_or(0, |m| m.port),
                });
            }
            (Some(t), _) if !self.ended_told && now >= t + ENDED_AFTER => {
                self.ended_told = true;
                self.events.send(ClientEvent::StreamEnded);
            }
            (Some(t), _) if now < t + ENDED_AFTER => self.ended_told = false,
            _ => {}
        }
    }

    /// On the way out: TEARDOWN if a session exists, waiting briefly for
    /// the reply so the server frees the session at once.
    fn teardown_on_exit(&mut self) {
        if self.state() == State::Init {
            return;
        }
        if let Some(s) = self.session.as_mut() {
            s.abandon_pending();
        }
        self.command(ClientCommand::Teardown);
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.state() != State::Init && self.session.is_some() {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            match self.net_rx.recv_timeout(wait.min(LAB_QUIET)) {
                Ok(NetInput::Bytes(b)) => {
                    self.decoder.push(&b);
                    self.last_bytes = Some(Instant::now());
                    self.read_messages(false);
                }
                Ok(NetInput::Closed) => break,
                Err(_) => self.read_messages(true),
            }
        }
    }

    /// Bind the RTP port and start the receiver and decoder threads.
    fn start_media(&mut self) -> Result<MediaThreads, ClientError> {
        let port = self.config.rtp_port;
        let socket = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| ClientError::RtpPort {
            port,
            reason: e.to_string(),
        })?;
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(port);
        let _ = socket.set_read_timeout(Some(Duration::from_millis(250)));
        let stop = Arc::new(AtomicBool::new(false));
        let (frames_tx, frames_rx) = crossbeam_channel::bounded::<rtp::JpegFrame>(4);
        let receiver = RtpReceiver {
            socket,
            server_ip: self.server_ip,
            stats: self.stats.clone(),
            stop: stop.clone(),
            frames: frames_tx,
        };
        let decoder = FrameDecoder {
            frames: frames_rx,
            events: self.events.clone(),
            stats: self.stats.clone(),
        };
        let mut threads = Vec::new();
        let spawn_err =
            |e: std::io::Error| ClientError::Other(format!("cannot start a thread: {e}"));
        threads.push(
            std::thread::Builder::new()
                .name("rtp-receive".into())
                .spawn(move || receiver.run())
                .map_err(spawn_err)?,
        );
        threads.push(
            std::thread::Builder::new()
                .name("jpeg-decode".into())
                .spawn(move || decoder.run())
                .map_err(spawn_err)?,
        );
        Ok(MediaThreads {
            stop,
            threads,
            port,
        })
    }
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

/// Receives, checks and reassembles RTP; hands whole JPEGs to the decoder.
struct RtpReceiver {
    socket: UdpSocket,
    server_ip: Option<IpAddr>,
    stats: SharedStats,
    stop: Arc<AtomicBool>,
    frames: Sender<rtp::JpegFrame>,
}

impl RtpReceiver {
    fn run(self) {
        let mut buf = vec![0u8; 65_536];
        let mut checker = RtpChecker::new(rtp::PT_JPEG, SsrcRule::First);
        let mut depacketizer = LabDepacketizer::new();
        while !self.stop.load(Ordering::SeqCst) {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(v) => v,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("RTP receive failed: {e}");
                    continue;
                }
            };
            let drop = |reason: DropReason| {
                with_stats(&self.stats, |s| {
                    *s.stats
                        .dropped
                        .entry(reason.name().to_string())
                        .or_default() += 1;
                })
            };
            if self.server_ip.is_some_and(|ip| !same_host(ip, from.ip())) {
                drop(DropReason::Source);
                continue;
            }
            let accepted = match checker.check(&buf[..n]) {
                Ok(a) => a,
                Err(reason) => {
                    drop(reason);
                    continue;
                }
            };
            with_stats(&self.stats, |s| {
                s.stats.packets += 1;
                s.stats.bytes += accepted.packet.payload.len() as u64;
                s.stats.lost += accepted.lost as u64;
                s.stats.ssrc = Some(accepted.packet.header.ssrc);
                s.last_packet = Some(Instant::now());
            });
            match depacketizer.push(&accepted) {
                Ok(Some(frame)) => {
                    if self.frames.try_send(frame).is_err() {
                        debug!("decoder behind; frame skipped");
                    }
                }
                Ok(None) => {}
                Err(reason) => drop(reason),
            }
        }
    }
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
