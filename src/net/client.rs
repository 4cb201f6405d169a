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
use crate::protocol::auth::{self, Challenge};
use crate::protocol::rtp::{self, DropReason, LabDepacketizer, RtpChecker, SsrcRule};
use crate::protocol::rtp_jpeg;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use crate::protocol::sdp;
use crate::protocol::server::LAB_QUIET;
use crate::protocol::session::{ClientReply, ClientSession};
use crate::protocol::url::{RtspUrl, UrlError};

/// Which RTSP to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialectChoice {
    /// Standard first; the lab's when the server answers nothing to
    /// OPTIONS within a second (which is what the lab's server does).
    #[default]
    Auto,
    Standard,
    Lab,
}

/// How RTP should travel (standard RTSP only; the lab's is always UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportChoice {
    #[default]
    Udp,
    /// Inside the RTSP connection: passes firewalls and NAT.
    Tcp,
}

/// Where and what to play: the lab's four fields, or a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Server host name or address.
    pub host: String,
    /// The server's RTSP (TCP) port.
    pub rtsp_port: u16,
    /// Local UDP port for RTP; 0 picks a free one.
    pub rtp_port: u16,
    /// The file to ask for (request target), e.g. `movie.Mjpeg`, or the
    /// path of a URL (`live/ch0`).
    pub file: String,
    pub dialect: DialectChoice,
    pub transport: TransportChoice,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            host: "127.0.0.1".into(),
            rtsp_port: 8554,
            rtp_port: 0,
            file: String::new(),
            dialect: DialectChoice::Auto,
            transport: TransportChoice::Udp,
            user: None,
            password: None,
        }
    }
}

/// Never prints the password.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("rtsp_port", &self.rtsp_port)
            .field("rtp_port", &self.rtp_port)
            .field("file", &self.file)
            .field("dialect", &self.dialect)
            .field("transport", &self.transport)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ClientConfig {
    /// The fields of an `rtsp://[user:pass@]host[:port]/path` URL.
    pub fn from_url(url: &str) -> Result<ClientConfig, UrlError> {
        let u = RtspUrl::parse(url)?;
        Ok(ClientConfig {
            file: u.file().to_string(),
            host: u.host,
            rtsp_port: u.port,
            user: u.user,
            password: u.password,
            ..ClientConfig::default()
        })
    }

    /// The presentation URL, without credentials.
    pub fn url(&self) -> RtspUrl {
        RtspUrl::from_fields(&self.host, self.rtsp_port, &self.file)
    }
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
    /// Whole frames not decoded because decoding or the window fell behind.
    pub frames_skipped: u64,
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
    #[error("{}", if *had_credentials { "wrong user name or password (401 Unauthorized)" } else { "the server needs a user name and password (401): put them in the URL, rtsp://user:password@host/..." })]
    Auth { had_credentials: bool },
    #[error("the stream is {codec}, not Motion-JPEG: Streamlab plays only MJPEG (RTP/JPEG)")]
    NotJpeg { codec: String },
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

/// Where a standard SETUP is in its sequence of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Options,
    Describe,
    Setup,
}

/// Whole frames waiting for the decoder before new ones are skipped.
const DECODE_QUEUE: usize = 16;
/// The UDP receive buffer asked for RTP.
const RTP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// How long auto waits for an answer to OPTIONS before taking the server
/// for a lab one (the lab's reference server answers nothing to it).
const AUTO_OPTIONS_WAIT: Duration = Duration::from_secs(1);

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
    /// RTP arriving inside the RTSP connection (TCP transport).
    interleaved: Option<MediaPath>,
    params: Arc<Mutex<MediaParams>>,
    /// The dialect this session speaks, once decided.
    dialect: Option<Dialect>,
    step: Option<Step>,
    /// The presentation URL (PLAY, PAUSE, TEARDOWN) and the track's (SETUP).
    base_url: String,
    /// The server listed GET_PARAMETER in Public: the keep-alive to use.
    get_parameter: bool,
    auth: Option<Challenge>,
    nonce_count: u32,
    /// A 401 already answered once: a second one means wrong credentials.
    auth_retried: bool,
    last_request: Option<(Method, String)>,
    last_sent: Option<Instant>,
    sent_at: Option<Instant>,
    last_bytes: Option<Instant>,
    no_media_told: bool,
    ended_told: bool,
    last_stats: Option<ClientStats>,
}

impl Engine {
    fn new(config: ClientConfig, events: Events) -> Self {
        let base_url = config.url().request_url();
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
            interleaved: None,
            params: Arc::default(),
            dialect: None,
            step: None,
            base_url,
            get_parameter: false,
            auth: None,
            nonce_count: 0,
            auth_retried: false,
            last_request: None,
            last_sent: None,
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
            d = d.min(t + self.reply_wait());
        }
        d
    }

    /// How long the request in flight may go unanswered.
    fn reply_wait(&self) -> Duration {
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            AUTO_OPTIONS_WAIT
        } else {
            REPLY_TIMEOUT
        }
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.rtsp_port)
    }

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

    /// Drop the RTSP connection but keep the media threads.
    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.net_rx = crossbeam_channel::never();
        self.decoder = Decoder::new();
    }

    /// Stop receiving: the next session starts with fresh checks (its
    /// SSRC and sequence numbers are new) and a fresh port.
    fn end_media(&mut self) {
        // The decoder thread ends when every frame sender is gone.
        self.interleaved = None;
        if let Some(m) = self.media.take() {
            m.stop();
        }
    }

    fn close(&mut self) {
        self.end_media();
        self.disconnect();
    }

    fn state(&self) -> State {
        self.session.as_ref().map_or(State::Init, |s| s.state())
    }

    fn standard(&self) -> bool {
        self.dialect == Some(Dialect::Standard)
    }

    fn command(&mut self, cmd: ClientCommand) {
        let method = match cmd {
            ClientCommand::Setup => Method::Setup,
            ClientCommand::Play => Method::Play,
            ClientCommand::Pause => Method::Pause,
            ClientCommand::Teardown => Method::Teardown,
            ClientCommand::Shutdown => return,
        };
        if method == Method::Setup && self.state() == State::Init && self.step.is_none() {
            let pending = self.session.as_ref().and_then(|s| s.pending()).is_some();
            if !pending {
                let dialect = match self.config.dialect {
                    DialectChoice::Lab => Dialect::Lab,
                    DialectChoice::Standard | DialectChoice::Auto => Dialect::Standard,
                };
                return self.start_setup(dialect);
            }
        }
        if let Some(s) = self.session.as_mut()
            && matches!(s.pending(), Some(Method::GetParameter | Method::Options))
            && self.step.is_none()
        {
            // A keep-alive in flight must not hold up what the user asked.
            s.abandon_pending();
        }
        let url = if self.standard() {
            self.base_url.clone()
        } else {
            self.config.file.clone()
        };
        self.send_request(method, url);
    }

    /// Begin SETUP: the lab's in one request, the standard one as OPTIONS,
    /// DESCRIBE, SETUP.
    fn start_setup(&mut self, dialect: Dialect) {
        if !self.connect() {
            return;
        }
        let udp = dialect == Dialect::Lab || self.config.transport == TransportChoice::Udp;
        if self.media.is_none() {
            match self.start_media(udp, dialect == Dialect::Standard) {
                Ok(m) => self.media = Some(m),
                Err(e) => return self.events.error(e),
            }
        }
        let port = self.media.as_ref().map_or(0, |m| m.port);
        self.dialect = Some(dialect);
        self.auth_retried = false;
        match dialect {
            Dialect::Lab => {
                self.step = None;
                let file = self.config.file.clone();
                self.session = Some(ClientSession::new(file.clone(), port, Dialect::Lab));
                self.send_request(Method::Setup, file);
            }
            Dialect::Standard => {
                self.base_url = self.config.url().request_url();
                let mut session =
                    ClientSession::new(self.base_url.clone(), port, Dialect::Standard);
                if !udp {
                    session.set_transport("RTP/AVP/TCP;unicast;interleaved=0-1");
                }
                self.session = Some(session);
                self.step = Some(Step::Options);
                self.send_request(Method::Options, self.base_url.clone());
            }
        }
    }

    /// The lab's server answered nothing to OPTIONS: start again in its
    /// dialect on a fresh connection (its worker may not survive OPTIONS).
    fn fall_back_to_lab(&mut self) {
        debug!("no answer to OPTIONS: speaking the lab's dialect");
        self.step = None;
        self.session = None;
        self.sent_at = None;
        self.disconnect();
        self.start_setup(Dialect::Lab);
    }

    /// Build, authorise, send and log one request.
    fn send_request(&mut self, method: Method, url: String) {
        let standard = self.standard();
        let Some(session) = self.session.as_mut() else {
            return self.events.error(ClientError::Other(format!(
                "{method} needs a session: press SETUP first"
            )));
        };
        if method == Method::Teardown {
            // Leaving must always work, even with a reply outstanding.
            session.abandon_pending();
        }
        let mut request = match session.request_to(method.clone(), &url) {
            Ok(r) => r,
            Err(e) => return self.events.error(ClientError::Other(e.to_string())),
        };
        if standard {
            request.headers.push("User-Agent", "streamlab");
            if method == Method::Describe {
                request.headers.push("Accept", "application/sdp");
            }
        }
        let shown = self.authorize(&mut request, &url);
        let bytes = request.to_bytes();
        let Some(stream) = self.stream.as_mut() else {
            return self.events.error(ClientError::ServerGone);
        };
        if stream.write_all(&bytes).is_err() {
            self.server_closed();
            return;
        }
        let now = Instant::now();
        self.sent_at = Some(now);
        self.last_sent = Some(now);
        self.last_request = Some((method.clone(), url));
        self.wire(Direction::Sent, &shown.unwrap_or(bytes));
        if method == Method::Play {
            self.no_media_told = false;
            self.ended_told = false;
            with_stats(&self.stats, |s| {
                s.play_sent = Some(now);
                s.last_packet = None;
            });
        }
    }

    /// Add Authorization when a challenge was answered before. Returns
    /// the bytes to show in the transcript, with the credential hidden.
    fn authorize(&mut self, request: &mut Request, url: &str) -> Option<Vec<u8>> {
        let challenge = self.auth.as_ref()?;
        self.nonce_count += 1;
        let cnonce = format!("{:08x}", rand::random::<u32>());
        let value = auth::authorization(
            challenge,
            &auth::Answer {
                user: self.config.user.as_deref().unwrap_or(""),
                password: self.config.password.as_deref().unwrap_or(""),
                method: request.method.as_str(),
                uri: url,
                nonce_count: self.nonce_count,
                cnonce: &cnonce,
            },
        );
        let scheme = value.split(' ').next().unwrap_or("").to_string();
        let mut shown = request.clone();
        shown
            .headers
            .push("Authorization", format!("{scheme} (hidden)"));
        request.headers.push("Authorization", value);
        Some(shown.to_bytes())
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
                    self.on_response(&resp);
                }
                Ok(Message::Request(req)) => {
                    self.wire(Direction::Received, &raw);
                    debug!("server sent a request ({}); not answered", req.method);
                }
                Ok(Message::Interleaved { channel, payload }) => {
                    if channel == 0
                        && let Some(path) = self.interleaved.as_mut()
                    {
                        path.handle(&payload);
                    }
                }
                Err(e) => {
                    self.wire(Direction::Received, &raw);
                    self.events.error(ClientError::Other(format!(
                        "unreadable reply from the server: {e}"
                    )));
                }
            }
        }
    }

    fn on_response(&mut self, resp: &Response) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.handle_response(resp) {
            ClientReply::Done { method, to, .. } => {
                self.sent_at = None;
                self.auth_retried = false;
                match method {
                    Method::Options => {
                        self.get_parameter = resp
                            .headers
                            .get("Public")
                            .is_some_and(|p| p.contains("GET_PARAMETER"));
                        if self.step == Some(Step::Options) {
                            self.step = Some(Step::Describe);
                            self.send_request(Method::Describe, self.base_url.clone());
                        }
                    }
                    Method::Describe => self.described(resp),
                    Method::Setup | Method::Play | Method::Pause | Method::Teardown => {
                        self.step = None;
                        let session_id = self
                            .session
                            .as_ref()
                            .and_then(|s| s.session())
                            .map(str::to_string);
                        self.events.send(ClientEvent::State {
                            state: to,
                            session: session_id,
                        });
                        if to == State::Init {
                            self.session = None;
                            self.end_media();
                        }
                    }
                    _ => {}
                }
            }
            ClientReply::Failed {
                method,
                status,
                reason,
            } => {
                self.sent_at = None;
                if status == 401 && self.answer_challenge(resp) {
                    return;
                }
                let error = if status == 401 {
                    ClientError::Auth {
                        had_credentials: self.config.user.is_some(),
                    }
                } else {
                    ClientError::Status {
                        method: method.to_string(),
                        code: status,
                        reason,
                    }
                };
                self.events.error(error);
                if self.step.take().is_some() {
                    self.session = None;
                }
            }
            ClientReply::Unexpected => debug!("reply to no pending request"),
        }
    }

    /// Answer a 401 once with the credentials we have; false if we cannot.
    fn answer_challenge(&mut self, resp: &Response) -> bool {
        if self.config.user.is_none() || self.auth_retried {
            return false;
        }
        let challenge = match auth::choose(&resp.headers.get_all("WWW-Authenticate")) {
            Ok(c) => c,
            Err(e) => {
                self.events.error(ClientError::Other(e.to_string()));
                return false;
            }
        };
        self.auth = Some(challenge);
        self.nonce_count = 0;
        self.auth_retried = true;
        let Some((method, url)) = self.last_request.clone() else {
            return false;
        };
        self.send_request(method, url);
        true
    }

    /// DESCRIBE answered: find the MJPEG track and SETUP it.
    fn described(&mut self, resp: &Response) {
        let fail = |this: &mut Self, e: ClientError| {
            this.events.error(e);
            this.step = None;
            this.session = None;
        };
        let description = match sdp::parse(&resp.body) {
            Ok(d) => d,
            Err(e) => {
                return fail(
                    self,
                    ClientError::Other(format!("the stream's description: {e}")),
                );
            }
        };
        let video: Vec<&sdp::Media> = description
            .media
            .iter()
            .filter(|m| m.kind == "video")
            .collect();
        let Some((media, pt)) = video
            .iter()
            .find_map(|m| m.jpeg_payload_type().map(|pt| (*m, pt)))
        else {
            let codec = video
                .first()
                .and_then(|m| m.formats.first().and_then(|&pt| m.encoding(pt)))
                .unwrap_or_else(|| "no video".to_string());
            return fail(self, ClientError::NotJpeg { codec });
        };
        {
            let mut p = self.params.lock().unwrap_or_else(|e| e.into_inner());
            p.payload_type = pt;
            p.dimensions = media.dimensions;
        }
        let base = resp
            .headers
            .get("Content-Base")
            .or_else(|| resp.headers.get("Content-Location"))
            .map(str::to_string)
            .unwrap_or_else(|| self.base_url.clone());
        let track = sdp::join_control(&base, media.control.as_deref().unwrap_or("*"));
        if let Some(c) = description.session_control.as_deref()
            && c != "*"
        {
            self.base_url = sdp::join_control(&base, c);
        } else {
            self.base_url = base;
        }
        self.step = Some(Step::Setup);
        self.send_request(Method::Setup, track);
    }

    fn check_reply_timeout(&mut self, now: Instant) {
        let Some(t) = self.sent_at else {
            return;
        };
        if now < t + self.reply_wait() {
            return;
        }
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            return self.fall_back_to_lab();
        }
        self.sent_at = None;
        if let Some(m) = self.session.as_mut().and_then(|s| s.abandon_pending()) {
            if self.step.take().is_some() || (m == Method::Setup && self.state() == State::Init) {
                self.session = None;
            }
            self.events.error(ClientError::NoReply {
                method: m.to_string(),
                seconds: REPLY_TIMEOUT.as_secs(),
            });
        }
    }

    fn server_closed(&mut self) {
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            return self.fall_back_to_lab();
        }
        let had_session = self.session.is_some();
        self.close();
        let was = self.state();
        self.session = None;
        self.step = None;
        self.sent_at = None;
        if was != State::Init || had_session {
            self.events.send(ClientEvent::State {
                state: State::Init,
                session: None,
            });
        }
        self.events.error(ClientError::ServerGone);
    }

    /// Keep a standard session alive at half its timeout.
    fn keep_alive(&mut self, now: Instant) {
        if !self.standard() || self.step.is_some() {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if session.session().is_none() || session.pending().is_some() {
            return;
        }
        let every = Duration::from_secs(session.session_timeout().unwrap_or(60).max(2) / 2);
        if self.last_sent.is_some_and(|t| now >= t + every) {
            let method = if self.get_parameter {
                Method::GetParameter
            } else {
                Method::Options
            };
            self.send_request(method, self.base_url.clone());
        }
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
        self.keep_alive(now);
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

    /// Start the decoder thread and, for UDP, bind the RTP port and start
    /// the receiver; for TCP, RTP comes through the RTSP connection.
    fn start_media(&mut self, udp: bool, even_port: bool) -> Result<MediaThreads, ClientError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Empty while decoding keeps up; the slack absorbs the decoder
        // being descheduled for a moment on a busy machine.
        let (frames_tx, frames_rx) = crossbeam_channel::bounded::<rtp::JpegFrame>(DECODE_QUEUE);
        let path = MediaPath::new(self.params.clone(), self.stats.clone(), frames_tx);
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
        if udp {
            let socket = bind_rtp(self.config.rtp_port, even_port)?;
            port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
            // A 1080p frame is a burst of a hundred packets or more; the
            // default buffer (about 200 KB) loses the tail of one when the
            // receiver is a moment late. The kernel caps the size asked.
            let sock = socket2::SockRef::from(&socket);
            let _ = sock.set_recv_buffer_size(RTP_RECEIVE_BUFFER);
            debug!(
                "RTP receive buffer: {} bytes",
                sock.recv_buffer_size().unwrap_or(0)
            );
            let _ = socket.set_read_timeout(Some(Duration::from_millis(250)));
            let receiver = RtpReceiver {
                socket,
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
        } else {
            self.interleaved = Some(path);
        }
        Ok(MediaThreads {
            stop,
            threads,
            port,
        })
    }
}

/// Bind the RTP port: the one asked for, or a free one; standard RTP
/// wants it even (RTCP takes the odd one after it).
fn bind_rtp(port: u16, even: bool) -> Result<UdpSocket, ClientError> {
    let err = |e: std::io::Error| ClientError::RtpPort {
        port,
        reason: e.to_string(),
    };
    if port != 0 || !even {
        return UdpSocket::bind(("0.0.0.0", port)).map_err(err);
    }
    for _ in 0..32 {
        let s = UdpSocket::bind(("0.0.0.0", 0)).map_err(err)?;
        if s.local_addr().map(|a| a.port() % 2 == 0).unwrap_or(false) {
            return Ok(s);
        }
    }
    UdpSocket::bind(("0.0.0.0", 0)).map_err(err)
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

/// What the receiving side learns from the SDP.
#[derive(Debug, Clone, Copy)]
struct MediaParams {
    payload_type: u8,
    /// `a=x-dimensions`, for frames over 2040 px.
    dimensions: Option<(u16, u16)>,
}

impl Default for MediaParams {
    fn default() -> Self {
        MediaParams {
            payload_type: rtp::PT_JPEG,
            dimensions: None,
        }
    }
}

/// The payload format, told by the first packet: the lab's whole JPEG
/// starts with FFD8, an RFC 2435 payload with its 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Lab,
    Rfc2435,
}

/// Checks and reassembles RTP packets, from UDP or from the RTSP
/// connection, and hands whole JPEGs to the decoder.
struct MediaPath {
    checker: RtpChecker,
    kind: Option<PayloadKind>,
    lab: LabDepacketizer,
    rfc: rtp_jpeg::Depacketizer,
    params: Arc<Mutex<MediaParams>>,
    applied: (u8, Option<(u16, u16)>),
    stats: SharedStats,
    frames: Sender<rtp::JpegFrame>,
}

impl MediaPath {
    fn new(
        params: Arc<Mutex<MediaParams>>,
        stats: SharedStats,
        frames: Sender<rtp::JpegFrame>,
    ) -> Self {
        MediaPath {
            checker: RtpChecker::new(rtp::PT_JPEG, SsrcRule::First),
            kind: None,
            lab: LabDepacketizer::new(),
            rfc: rtp_jpeg::Depacketizer::new(None),
            params,
            applied: (rtp::PT_JPEG, None),
            stats,
            frames,
        }
    }

    fn drop_packet(&self, reason: DropReason) {
        with_stats(&self.stats, |s| {
            *s.stats
                .dropped
                .entry(reason.name().to_string())
                .or_default() += 1;
        })
    }

    fn handle(&mut self, buf: &[u8]) {
        let p = *self.params.lock().unwrap_or_else(|e| e.into_inner());
        if (p.payload_type, p.dimensions) != self.applied {
            self.applied = (p.payload_type, p.dimensions);
            self.checker.set_payload_type(p.payload_type);
            self.rfc = rtp_jpeg::Depacketizer::new(p.dimensions);
        }
        let accepted = match self.checker.check(buf) {
            Ok(a) => a,
            Err(reason) => return self.drop_packet(reason),
        };
        with_stats(&self.stats, |s| {
            s.stats.packets += 1;
            s.stats.bytes += accepted.packet.payload.len() as u64;
            s.stats.lost += accepted.lost as u64;
            s.stats.ssrc = Some(accepted.packet.header.ssrc);
            s.last_packet = Some(Instant::now());
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
}

/// Receives RTP over UDP, from the server's address only.
struct RtpReceiver {
    socket: UdpSocket,
    server_ip: Option<IpAddr>,
    stop: Arc<AtomicBool>,
    path: MediaPath,
}

impl RtpReceiver {
    fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
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
            if self.server_ip.is_some_and(|ip| !same_host(ip, from.ip())) {
                self.path.drop_packet(DropReason::Source);
                continue;
            }
            self.path.handle(&buf[..n]);
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
