//! The client side of an RTSP conversation, sans I/O: which request goes
//! next (OPTIONS -> DESCRIBE -> SETUP -> PLAY ...), answering a 401 once,
//! keep-alive before the session times out, telling a lab server from a
//! standard one, and switching RTP from UDP to TCP when UDP brings nothing.
//!
//! [`ClientConnection`] takes bytes, commands and the time as arguments and
//! acts through a [`ClientHost`] that owns the sockets (`net::client` in the
//! program, a recorder in the tests). It never reads a clock or touches a
//! socket itself, so every timing rule here is tested without waiting.

use std::time::{Duration, Instant};

use crate::protocol::State;
use crate::protocol::auth::{self, Challenge};
use crate::protocol::rtp;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use crate::protocol::sdp;
use crate::protocol::server::LAB_QUIET;
use crate::protocol::session::{ClientReply, ClientSession};
use crate::protocol::timeline::{self, Anchor, Timeline};
use crate::protocol::transport::Transport;
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
    /// UDP, and TCP when UDP brings nothing within a few seconds of PLAY.
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
    /// Frames to fetch ahead after SETUP (PLAY, then PAUSE once this many
    /// whole frames are held), so that the user's PLAY starts from the
    /// buffer at once. 0 = off.
    pub prebuffer: u32,
    /// How long frames wait before they are presented on the sender's
    /// clock; None = automatic: 0 over TCP and on loopback, 200 ms over
    /// UDP to another host (as GStreamer's jitter buffer).
    pub latency_ms: Option<u32>,
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
            prebuffer: 0,
            latency_ms: None,
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
            .field("prebuffer", &self.prebuffer)
            .field("latency_ms", &self.latency_ms)
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

/// A user name and password the owner gives after the server asked for
/// them (the window's prompt). `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// What the owner asks the client to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand {
    Setup,
    Play,
    /// PLAY from this point of the stream (`Range: npt=S-`): a seek.
    PlayFrom {
        millis: u64,
    },
    Pause,
    Teardown,
    /// Send TEARDOWN if a session exists, then stop every engine thread.
    Shutdown,
}

impl ClientCommand {
    /// The request the command sends.
    pub fn method(self) -> Method {
        match self {
            ClientCommand::Setup => Method::Setup,
            ClientCommand::Play | ClientCommand::PlayFrom { .. } => Method::Play,
            ClientCommand::Pause => Method::Pause,
            ClientCommand::Teardown | ClientCommand::Shutdown => Method::Teardown,
        }
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
    /// One sentence for every front end: the window shows it in its
    /// credentials prompt, the command line prints it.
    #[error("{}", auth_message(*had_credentials))]
    Auth { had_credentials: bool },
    #[error("the stream is {codec}, not Motion-JPEG: Streamlab plays only MJPEG (RTP/JPEG)")]
    NotJpeg { codec: String },
    #[error("{0}")]
    Other(String),
}

/// What a 401 means and what to do, in words that hold in the window (it
/// asks) and on the command line (the URL carries them).
fn auth_message(had_credentials: bool) -> &'static str {
    if had_credentials {
        "wrong user name or password: the server refused them (401 Unauthorized). \
         Check them and try again."
    } else {
        "the server wants a user name and password (401 Unauthorized). \
         Type them where the window asks, or give them in the URL: rtsp://user:password@host/..."
    }
}

/// What a person can do about a refused request.
fn status_hint(code: u16) -> &'static str {
    match code {
        404 => ": the server has no such file. Check the file name (it is case-sensitive).",
        454 => ": the server does not know this session any more. Press SETUP again.",
        455 => ": the server thinks the session is in another state.",
        457 => ": the server cannot seek there.",
        461 => ": the server does not offer this transport.",
        500..=599 => ": the server failed. Its log may say why.",
        _ => ".",
    }
}

/// Which way an RTSP message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// How RTP is to reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaRoute {
    /// A UDP port; `pair` asks for an even port with the odd one after it
    /// free for RTCP, as standard RTP wants.
    Udp { pair: bool },
    /// `$`-framed inside the RTSP connection.
    Interleaved,
}

/// What the client learned about the stream, for the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The RTP payload type of the JPEG track (26, or a dynamic one).
    pub payload_type: u8,
    /// `a=x-dimensions`, for frames over 2040 px.
    pub dimensions: Option<(u16, u16)>,
    /// Where RTCP goes: the server's RTCP port (UDP) or channel (TCP).
    pub server_rtcp_port: Option<u16>,
    pub rtp_channel: u8,
    pub rtcp_channel: Option<u8>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            payload_type: rtp::PT_JPEG,
            dimensions: None,
            server_rtcp_port: None,
            rtp_channel: 0,
            rtcp_channel: Some(1),
        }
    }
}

/// What the client tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An RTSP message went out or came in, as it crossed the wire
    /// (credentials hidden).
    Wire {
        direction: Direction,
        bytes: Vec<u8>,
    },
    /// The session moved to a new state.
    State {
        state: State,
        session: Option<String>,
    },
    /// PLAY went out: counters about the time to the first frame restart.
    PlaySent,
    /// Something went wrong; the client goes on where it can.
    Error(ClientError),
    /// Something the user should know that is not an error.
    Notice(String),
    /// Frames had been arriving and have stopped for a while (the lab's
    /// server just stops at the end of the file).
    StreamEnded,
    /// What is known about the stream's time line changed: its length
    /// (after DESCRIBE) or where the last PLAY started (after its reply).
    Timeline(Timeline),
}

/// The sockets and the owner, as the client connection sees them.
pub trait ClientHost {
    /// Open a new RTSP connection (closing any old one).
    fn connect(&mut self) -> Result<(), ClientError>;
    /// Close the RTSP connection.
    fn disconnect(&mut self);
    /// Write to the RTSP connection; an error means it is gone.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Start receiving RTP that way; returns the local RTP port (0 when
    /// interleaved).
    fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError>;
    /// Stop receiving RTP.
    fn close_media(&mut self);
    /// The stream's parameters changed (after DESCRIBE and SETUP).
    fn stream_info(&mut self, info: StreamInfo);
    /// RTP or RTCP that came inside the RTSP connection.
    fn interleaved(&mut self, channel: u8, payload: &[u8]);
    fn event(&mut self, event: Event);
    /// A random number (Digest's cnonce).
    fn random(&mut self) -> u32;
}

/// How long to wait for a reply before telling the user.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long auto waits for an answer to OPTIONS before taking the server
/// for a lab one (the lab's reference server answers nothing to it).
pub const AUTO_OPTIONS_WAIT: Duration = Duration::from_secs(1);
/// How long PLAY over UDP may bring nothing before RTP moves to TCP.
pub const UDP_FALLBACK_AFTER: Duration = Duration::from_secs(3);
/// How long PLAY may go without any RTP before the user hears about it.
pub const NO_MEDIA_AFTER: Duration = Duration::from_secs(5);
/// Silence after frames that counts as the end of the stream.
pub const ENDED_AFTER: Duration = Duration::from_secs(2);

/// The interleaved channels asked for in SETUP over TCP.
const TCP_TRANSPORT: &str = "RTP/AVP/TCP;unicast;interleaved=0-1";

/// Where a multi-request operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// Standard SETUP: OPTIONS, then DESCRIBE, then SETUP.
    Options,
    Describe,
    Setup,
    /// UDP brought nothing: TEARDOWN, SETUP over TCP, PLAY.
    SwitchTeardown,
    SwitchSetup,
    SwitchPlay,
}

/// A request as asked, kept to send again with credentials after a 401.
#[derive(Debug, Clone)]
struct Sent {
    method: Method,
    url: String,
    range: Option<String>,
}

/// One client's RTSP conversation with one server.
pub struct ClientConnection {
    config: ClientConfig,
    connected: bool,
    decoder: Decoder,
    session: Option<ClientSession>,
    /// The dialect this session speaks, once decided.
    dialect: Option<Dialect>,
    step: Option<Step>,
    /// How RTP reaches us now, and on which local port.
    media: Option<(MediaRoute, u16)>,
    info: StreamInfo,
    /// The presentation URL (PLAY, PAUSE, TEARDOWN) and the track's (SETUP).
    base_url: String,
    track_url: Option<String>,
    /// The server listed GET_PARAMETER in Public: the keep-alive to use.
    get_parameter: bool,
    auth: Option<Challenge>,
    nonce_count: u32,
    /// A 401 already answered once: a second one means wrong credentials.
    auth_retried: bool,
    /// The last challenge we had no (new) credentials for, kept for
    /// [`ClientConnection::credentials`].
    unanswered: Option<Challenge>,
    /// A request of the session refused with 401 that was not answered:
    /// it goes again when the owner gives credentials.
    refused: Option<Sent>,
    last_request: Option<Sent>,
    last_sent: Option<Instant>,
    /// When the request in flight went out.
    sent_at: Option<Instant>,
    last_bytes: Option<Instant>,
    play_sent: Option<Instant>,
    last_packet: Option<Instant>,
    no_media_told: bool,
    ended_told: bool,
    /// RTP moved to TCP by itself during this session.
    switched: bool,
    timeline: Timeline,
}

impl ClientConnection {
    pub fn new(config: ClientConfig) -> Self {
        let base_url = config.url().request_url();
        ClientConnection {
            config,
            connected: false,
            decoder: Decoder::new(),
            session: None,
            dialect: None,
            step: None,
            media: None,
            info: StreamInfo::default(),
            base_url,
            track_url: None,
            get_parameter: false,
            auth: None,
            nonce_count: 0,
            auth_retried: false,
            unanswered: None,
            refused: None,
            last_request: None,
            last_sent: None,
            sent_at: None,
            last_bytes: None,
            play_sent: None,
            last_packet: None,
            no_media_told: false,
            ended_told: false,
            switched: false,
            timeline: Timeline::default(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        self.session.as_ref().map_or(State::Init, |s| s.state())
    }

    /// The session id the server gave, while a session exists.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.session())
    }

    /// The dialect of the current session, once decided.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// How RTP reaches us now, and on which local port.
    pub fn media(&self) -> Option<(MediaRoute, u16)> {
        self.media
    }

    /// The request in flight, if any.
    pub fn pending(&self) -> Option<&Method> {
        self.session.as_ref().and_then(|s| s.pending())
    }

    /// Whether a session (or the start of one) exists.
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// The stream's length and where the last PLAY started.
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// New credentials from the owner, after a 401 it was told about:
    /// kept for every later request, and the request of the session the
    /// server refused goes again with them, on the same connection and in
    /// the same session. A second refusal is [`ClientError::Auth`] with
    /// `had_credentials`, and new credentials may follow it again.
    pub fn credentials(
        &mut self,
        now: Instant,
        credentials: Credentials,
        host: &mut impl ClientHost,
    ) {
        self.config.user = Some(credentials.user);
        self.config.password = Some(credentials.password);
        if let Some(challenge) = self.unanswered.take() {
            self.auth = Some(challenge);
            self.nonce_count = 0;
        }
        let Some(sent) = self.refused.take() else {
            return;
        };
        if let Some(s) = self.session.as_mut()
            && matches!(s.pending(), Some(Method::GetParameter | Method::Options))
        {
            // A keep-alive in flight must not hold up the retry.
            s.abandon_pending();
        }
        if self.session.is_none() || self.pending().is_some() {
            return;
        }
        self.auth_retried = true;
        self.send_request(now, sent.method, sent.url, sent.range, host);
    }

    /// Connect at once, as the lab's client does when it starts.
    pub fn start(&mut self, host: &mut impl ClientHost) {
        self.ensure_connected(host);
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |d| d.min(t)));
        if self.decoder.pending() > 0
            && let Some(t) = self.last_bytes
        {
            at(t + LAB_QUIET);
        }
        if let Some(t) = self.sent_at {
            at(t + self.reply_wait());
        }
        if let Some(t) = self.keep_alive_due() {
            at(t);
        }
        if self.state() == State::Playing {
            match (self.last_packet, self.play_sent) {
                (None, Some(p)) if self.may_switch_to_tcp() => at(p + UDP_FALLBACK_AFTER),
                (None, Some(p)) if !self.no_media_told => at(p + NO_MEDIA_AFTER),
                (Some(t), _) if !self.ended_told => at(t + ENDED_AFTER),
                _ => {}
            }
        }
        d
    }

    /// The user pressed a button.
    pub fn command(&mut self, now: Instant, cmd: ClientCommand, host: &mut impl ClientHost) {
        if cmd == ClientCommand::Shutdown {
            return self.command(now, ClientCommand::Teardown, host);
        }
        let method = cmd.method();
        if self.step.is_some_and(|s| s >= Step::SwitchTeardown) {
            // The user's word wins over the automatic switch.
            self.step = None;
        }
        if method == Method::Setup && self.state() == State::Init && self.step.is_none() {
            let pending = self.pending().is_some();
            if !pending {
                let dialect = match self.config.dialect {
                    DialectChoice::Lab => Dialect::Lab,
                    DialectChoice::Standard | DialectChoice::Auto => Dialect::Standard,
                };
                return self.start_setup(now, dialect, host);
            }
        }
        if let Some(s) = self.session.as_mut()
            && matches!(s.pending(), Some(Method::GetParameter | Method::Options))
            && self.step.is_none()
        {
            // A keep-alive in flight must not hold up what the user asked.
            s.abandon_pending();
        }
        // What the user asks now replaces a request refused for want of
        // credentials.
        self.refused = None;
        let range = match cmd {
            ClientCommand::PlayFrom { millis } => {
                if !self.standard() {
                    return host.event(Event::Error(ClientError::Other(
                        "the lab's RTSP cannot seek: PLAY always goes on where it stopped".into(),
                    )));
                }
                Some(format!("npt={}.{:03}-", millis / 1000, millis % 1000))
            }
            _ => None,
        };
        let url = self.request_url();
        self.send_request(now, method, url, range, host);
    }

    /// Bytes from the RTSP connection.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8], host: &mut impl ClientHost) {
        self.decoder.push(bytes);
        self.last_bytes = Some(now);
        self.read_messages(now, false, host);
    }

    /// The server closed the RTSP connection (or writing to it failed).
    pub fn handle_closed(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.connected = false;
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            return self.fall_back_to_lab(now, host);
        }
        let had_session = self.session.is_some();
        let was = self.state();
        host.close_media();
        host.disconnect();
        self.media = None;
        self.decoder = Decoder::new();
        self.session = None;
        self.step = None;
        self.sent_at = None;
        self.refused = None;
        if was != State::Init || had_session {
            host.event(Event::State {
                state: State::Init,
                session: None,
            });
        }
        host.event(Event::Error(ClientError::ServerGone));
    }

    /// The time at which the last RTP packet arrived, as the receiving
    /// side saw it.
    pub fn media_seen(&mut self, last_packet: Option<Instant>) {
        self.last_packet = last_packet;
    }

    /// Time passed: replies overdue, keep-alive, media that does not come.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut impl ClientHost) {
        if self.decoder.pending() > 0 && self.last_bytes.is_some_and(|t| now >= t + LAB_QUIET) {
            self.read_messages(now, true, host);
        }
        self.check_reply_timeout(now, host);
        if self.keep_alive_due().is_some_and(|t| now >= t) {
            let method = if self.get_parameter {
                Method::GetParameter
            } else {
                Method::Options
            };
            let url = self.base_url.clone();
            self.send_request(now, method, url, None, host);
        }
        self.check_media(now, host);
    }

    fn standard(&self) -> bool {
        self.dialect == Some(Dialect::Standard)
    }

    /// Where PLAY, PAUSE and TEARDOWN go.
    fn request_url(&self) -> String {
        if self.standard() {
            self.base_url.clone()
        } else {
            self.config.file.clone()
        }
    }

    /// How long the request in flight may go unanswered.
    fn reply_wait(&self) -> Duration {
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            AUTO_OPTIONS_WAIT
        } else {
            REPLY_TIMEOUT
        }
    }

    fn ensure_connected(&mut self, host: &mut impl ClientHost) -> bool {
        if self.connected {
            return true;
        }
        match host.connect() {
            Ok(()) => {
                self.connected = true;
                self.decoder = Decoder::new();
                true
            }
            Err(e) => {
                host.event(Event::Error(e));
                false
            }
        }
    }

    /// Start receiving RTP the way `route` says, unless it already is.
    fn open_media(&mut self, route: MediaRoute, host: &mut impl ClientHost) -> Option<u16> {
        match self.media {
            Some((r, port)) if r == route => return Some(port),
            Some(_) => host.close_media(),
            None => {}
        }
        self.media = None;
        match host.open_media(route) {
            Ok(port) => {
                self.media = Some((route, port));
                Some(port)
            }
            Err(e) => {
                host.event(Event::Error(e));
                None
            }
        }
    }

    fn close_media(&mut self, host: &mut impl ClientHost) {
        if self.media.take().is_some() {
            host.close_media();
        }
    }

    /// Begin SETUP: the lab's in one request, the standard one as OPTIONS,
    /// DESCRIBE, SETUP.
    fn start_setup(&mut self, now: Instant, dialect: Dialect, host: &mut impl ClientHost) {
        if !self.ensure_connected(host) {
            return;
        }
        let tcp = dialect == Dialect::Standard && self.config.transport == TransportChoice::Tcp;
        let route = if tcp {
            MediaRoute::Interleaved
        } else {
            MediaRoute::Udp {
                pair: dialect == Dialect::Standard,
            }
        };
        let Some(port) = self.open_media(route, host) else {
            return;
        };
        self.dialect = Some(dialect);
        self.auth_retried = false;
        self.refused = None;
        self.switched = false;
        self.info = StreamInfo::default();
        host.stream_info(self.info);
        // The lab's dialect never learns a length: no DESCRIBE.
        self.set_timeline(Timeline::default(), host);
        match dialect {
            Dialect::Lab => {
                self.step = None;
                let file = self.config.file.clone();
                self.session = Some(ClientSession::new(file.clone(), port, Dialect::Lab));
                self.send_request(now, Method::Setup, file, None, host);
            }
            Dialect::Standard => {
                self.base_url = self.config.url().request_url();
                self.track_url = None;
                let mut session =
                    ClientSession::new(self.base_url.clone(), port, Dialect::Standard);
                if tcp {
                    session.set_transport(TCP_TRANSPORT);
                }
                self.session = Some(session);
                self.step = Some(Step::Options);
                let url = self.base_url.clone();
                self.send_request(now, Method::Options, url, None, host);
            }
        }
    }

    /// The lab's server answered nothing to OPTIONS: start again in its
    /// dialect on a fresh connection (its worker may not survive OPTIONS).
    fn fall_back_to_lab(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.step = None;
        self.session = None;
        self.sent_at = None;
        self.connected = false;
        host.disconnect();
        host.event(Event::Notice(
            "no answer to OPTIONS within a second: speaking the lab's RTSP".into(),
        ));
        self.start_setup(now, Dialect::Lab, host);
    }

    /// Build, authorise, send and log one request.
    fn send_request(
        &mut self,
        now: Instant,
        method: Method,
        url: String,
        range: Option<String>,
        host: &mut impl ClientHost,
    ) {
        let standard = self.standard();
        let Some(session) = self.session.as_mut() else {
            return host.event(Event::Error(ClientError::Other(format!(
                "{method} needs a session: press SETUP first"
            ))));
        };
        if method == Method::Teardown {
            // Leaving must always work, even with a reply outstanding.
            session.abandon_pending();
        }
        let mut request = match session.request_to(method.clone(), &url) {
            Ok(r) => r,
            Err(e) => return host.event(Event::Error(ClientError::Other(e.to_string()))),
        };
        if standard {
            request.headers.push("User-Agent", "streamlab");
            if method == Method::Describe {
                request.headers.push("Accept", "application/sdp");
            }
            if let Some(r) = &range {
                request.headers.push("Range", r.clone());
            }
        }
        let shown = self.authorize(&mut request, &url, host);
        let bytes = request.to_bytes();
        if host.send(&bytes).is_err() {
            return self.handle_closed(now, host);
        }
        self.sent_at = Some(now);
        self.last_sent = Some(now);
        self.last_request = Some(Sent {
            method: method.clone(),
            url,
            range,
        });
        host.event(Event::Wire {
            direction: Direction::Sent,
            bytes: shown.unwrap_or(bytes),
        });
        if method == Method::Play {
            self.play_sent = Some(now);
            self.last_packet = None;
            self.no_media_told = false;
            self.ended_told = false;
            host.event(Event::PlaySent);
        }
    }

    /// Add Authorization when a challenge was answered before. Returns
    /// the bytes to show in the transcript, with the credential hidden.
    fn authorize(
        &mut self,
        request: &mut Request,
        url: &str,
        host: &mut impl ClientHost,
    ) -> Option<Vec<u8>> {
        let challenge = self.auth.as_ref()?;
        self.nonce_count += 1;
        let cnonce = format!("{:08x}", host.random());
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

    fn read_messages(&mut self, now: Instant, quiet: bool, host: &mut impl ClientHost) {
        while let Some(m) = self.decoder.poll(quiet) {
            if let Ok(Message::Interleaved { channel, payload }) = &m {
                host.interleaved(*channel, payload);
                continue;
            }
            host.event(Event::Wire {
                direction: Direction::Received,
                bytes: self.decoder.last_raw().to_vec(),
            });
            match m {
                Ok(Message::Response(resp)) => self.on_response(now, &resp, host),
                // Servers may send OPTIONS or ANNOUNCE; nothing here needs
                // an answer for playback to go on.
                Ok(_) => {}
                Err(e) => host.event(Event::Error(ClientError::Other(format!(
                    "unreadable reply from the server: {e}"
                )))),
            }
        }
    }

    fn state_event(&self, host: &mut impl ClientHost) {
        host.event(Event::State {
            state: self.state(),
            session: self.session_id().map(str::to_string),
        });
    }

    fn on_response(&mut self, now: Instant, resp: &Response, host: &mut impl ClientHost) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.handle_response(resp) {
            ClientReply::Done { method, to, .. } => {
                self.sent_at = None;
                self.auth_retried = false;
                if !matches!(method, Method::GetParameter | Method::Options) {
                    // A keep-alive that passes says nothing of a PLAY that
                    // did not.
                    self.refused = None;
                }
                match method {
                    Method::Options => {
                        self.get_parameter = resp
                            .headers
                            .get("Public")
                            .is_some_and(|p| p.contains("GET_PARAMETER"));
                        if self.step == Some(Step::Options) {
                            self.step = Some(Step::Describe);
                            let url = self.base_url.clone();
                            self.send_request(now, Method::Describe, url, None, host);
                        }
                    }
                    Method::Describe => self.described(now, resp, host),
                    Method::Setup => {
                        self.learn_transport(resp, host);
                        // The switch to TCP is one step to the owner: the
                        // session stays PLAYING, with a new id at the end.
                        if self.step == Some(Step::SwitchSetup) {
                            self.step = Some(Step::SwitchPlay);
                            let url = self.base_url.clone();
                            self.send_request(now, Method::Play, url, None, host);
                        } else {
                            self.step = None;
                            self.state_event(host);
                        }
                    }
                    Method::Play | Method::Pause => {
                        if method == Method::Play {
                            self.anchor_play(resp, host);
                        }
                        self.step = None;
                        self.state_event(host);
                    }
                    Method::Teardown => {
                        if self.step == Some(Step::SwitchTeardown) {
                            self.session = None;
                            return self.switch_setup(now, host);
                        }
                        self.state_event(host);
                        self.session = None;
                        self.step = None;
                        self.refused = None;
                        self.close_media(host);
                        debug_assert_eq!(to, State::Init);
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
                if status == 401 && self.answer_challenge(now, resp, host) {
                    return;
                }
                if self.step == Some(Step::SwitchTeardown) {
                    // The old session is gone either way: go on.
                    self.session = None;
                    return self.switch_setup(now, host);
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
                host.event(Event::Error(error));
                if let Some(step) = self.step.take()
                    && step != Step::SwitchPlay
                {
                    self.session = None;
                    if self.state() == State::Init {
                        self.close_media(host);
                    }
                }
                if status == 401 && self.session.is_some() {
                    let keep_alive = matches!(method, Method::GetParameter | Method::Options);
                    // A refused keep-alive does not replace a refused PLAY
                    // that waits for the user's credentials.
                    if !(keep_alive && self.refused.is_some()) {
                        self.refused = self.last_request.clone();
                    }
                }
            }
            ClientReply::Unexpected => {}
        }
    }

    /// Answer a 401 once with the credentials we have; false if we cannot.
    fn answer_challenge(
        &mut self,
        now: Instant,
        resp: &Response,
        host: &mut impl ClientHost,
    ) -> bool {
        if self.config.user.is_none() || self.auth_retried {
            // Kept for the credentials the owner may give later.
            if let Ok(c) = auth::choose(&resp.headers.get_all("WWW-Authenticate")) {
                self.unanswered = Some(c);
            }
            return false;
        }
        let challenge = match auth::choose(&resp.headers.get_all("WWW-Authenticate")) {
            Ok(c) => c,
            Err(e) => {
                host.event(Event::Error(ClientError::Other(e.to_string())));
                return false;
            }
        };
        self.auth = Some(challenge);
        self.nonce_count = 0;
        self.auth_retried = true;
        let Some(sent) = self.last_request.clone() else {
            return false;
        };
        self.send_request(now, sent.method, sent.url, sent.range, host);
        true
    }

    /// The standard SETUP sequence cannot go on: say why, and leave no
    /// session or media behind.
    fn abandon_setup(&mut self, e: ClientError, host: &mut impl ClientHost) {
        host.event(Event::Error(e));
        self.step = None;
        self.session = None;
        self.close_media(host);
    }

    /// DESCRIBE answered: find the MJPEG track and SETUP it.
    fn described(&mut self, now: Instant, resp: &Response, host: &mut impl ClientHost) {
        let description = match sdp::parse(&resp.body) {
            Ok(d) => d,
            Err(e) => {
                let e = ClientError::Other(format!("the stream's description: {e}"));
                return self.abandon_setup(e, host);
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
            return self.abandon_setup(ClientError::NotJpeg { codec }, host);
        };
        self.info.payload_type = pt;
        self.info.dimensions = media.dimensions;
        host.stream_info(self.info);
        let clock_rate = media
            .encodings
            .iter()
            .find(|(p, _, clock)| *p == pt && *clock > 0)
            .map_or(timeline::DEFAULT_CLOCK_RATE, |(_, _, clock)| *clock);
        self.set_timeline(
            Timeline {
                length_ms: description.range.as_deref().and_then(timeline::length_ms),
                clock_rate,
                frame_ms: media.framerate.and_then(timeline::frame_ms),
                anchor: None,
            },
            host,
        );
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
        self.track_url = Some(track.clone());
        self.step = Some(Step::Setup);
        self.send_request(now, Method::Setup, track, None, host);
    }

    /// PLAY answered: where it started (the reply's Range, else the one
    /// asked for) and the RTP timestamp of its first frame (RTP-Info).
    fn anchor_play(&mut self, resp: &Response, host: &mut impl ClientHost) {
        if !self.standard() {
            return;
        }
        let start_of = |range: Option<&str>| {
            range
                .and_then(timeline::npt_range)
                .and_then(|(start, _)| start)
        };
        let asked = self.last_request.as_ref().and_then(|s| s.range.as_deref());
        let start = start_of(resp.headers.get("Range")).or_else(|| start_of(asked));
        let rtptime = resp
            .headers
            .get("RTP-Info")
            .and_then(|v| timeline::rtp_info_rtptime(v, self.track_url.as_deref()));
        let anchor = match start {
            Some(s) => Some(Anchor {
                start_ms: timeline::millis(s),
                rtptime,
            }),
            // Resumed, and the server did not say where: the old mapping
            // holds as long as its timestamps ran on.
            None => self.timeline.anchor,
        };
        let timeline = Timeline {
            anchor,
            ..self.timeline
        };
        self.set_timeline(timeline, host);
    }

    fn set_timeline(&mut self, timeline: Timeline, host: &mut impl ClientHost) {
        self.timeline = timeline;
        host.event(Event::Timeline(timeline));
    }

    /// Read where RTCP goes from SETUP's reply.
    fn learn_transport(&mut self, resp: &Response, host: &mut impl ClientHost) {
        let Some(t) = resp
            .headers
            .get("Transport")
            .and_then(|v| Transport::parse_all(v).into_iter().find_map(Result::ok))
        else {
            return;
        };
        self.info.server_rtcp_port = t
            .server_port
            .map(|(rtp, rtcp)| rtcp.unwrap_or(rtp.wrapping_add(1)));
        if let Some((rtp, rtcp)) = t.interleaved {
            self.info.rtp_channel = rtp;
            self.info.rtcp_channel = rtcp.or(rtp.checked_add(1));
        }
        host.stream_info(self.info);
    }

    /// UDP may switch to TCP: standard RTSP, UDP asked for, not yet tried.
    fn may_switch_to_tcp(&self) -> bool {
        self.standard()
            && !self.switched
            && self.config.transport == TransportChoice::Udp
            && matches!(self.media, Some((MediaRoute::Udp { .. }, _)))
            && self.track_url.is_some()
    }

    fn check_media(&mut self, now: Instant, host: &mut impl ClientHost) {
        if self.state() != State::Playing || self.step.is_some() || self.pending().is_some() {
            return;
        }
        match (self.last_packet, self.play_sent) {
            (None, Some(p)) if self.may_switch_to_tcp() && now >= p + UDP_FALLBACK_AFTER => {
                self.switch_to_tcp(now, host)
            }
            (None, Some(p)) if !self.no_media_told && now >= p + NO_MEDIA_AFTER => {
                self.no_media_told = true;
                let port = match self.media {
                    Some((MediaRoute::Udp { .. }, port)) => port,
                    _ => 0,
                };
                host.event(Event::Error(ClientError::NoMedia {
                    seconds: NO_MEDIA_AFTER.as_secs(),
                    port,
                }));
            }
            (Some(t), _) if !self.ended_told && now >= t + ENDED_AFTER => {
                self.ended_told = true;
                host.event(Event::StreamEnded);
            }
            (Some(t), _) if now < t + ENDED_AFTER => self.ended_told = false,
            _ => {}
        }
    }

    /// No RTP over UDP since PLAY: as ffmpeg does, end the session and
    /// set it up again with RTP inside the RTSP connection.
    fn switch_to_tcp(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.switched = true;
        let port = self.media.map_or(0, |(_, p)| p);
        host.event(Event::Notice(format!(
            "no RTP arrived on UDP port {port} within {} s of PLAY: switching to TCP (RTP inside the RTSP connection)",
            UDP_FALLBACK_AFTER.as_secs()
        )));
        self.step = Some(Step::SwitchTeardown);
        let url = self.base_url.clone();
        self.send_request(now, Method::Teardown, url, None, host);
    }

    fn switch_setup(&mut self, now: Instant, host: &mut impl ClientHost) {
        let Some(track) = self.track_url.clone() else {
            self.step = None;
            return;
        };
        let Some(_) = self.open_media(MediaRoute::Interleaved, host) else {
            self.step = None;
            return;
        };
        self.info.rtp_channel = 0;
        self.info.rtcp_channel = Some(1);
        self.info.server_rtcp_port = None;
        host.stream_info(self.info);
        let mut session = ClientSession::new(self.base_url.clone(), 0, Dialect::Standard);
        session.set_transport(TCP_TRANSPORT);
        self.session = Some(session);
        self.step = Some(Step::SwitchSetup);
        self.send_request(now, Method::Setup, track, None, host);
    }

    fn check_reply_timeout(&mut self, now: Instant, host: &mut impl ClientHost) {
        let Some(t) = self.sent_at else {
            return;
        };
        if now < t + self.reply_wait() {
            return;
        }
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            return self.fall_back_to_lab(now, host);
        }
        self.sent_at = None;
        if let Some(m) = self.session.as_mut().and_then(|s| s.abandon_pending()) {
            let step = self.step.take();
            if step == Some(Step::SwitchTeardown) {
                self.session = None;
                return self.switch_setup(now, host);
            }
            if step.is_some() || (m == Method::Setup && self.state() == State::Init) {
                self.session = None;
                if self.state() == State::Init {
                    self.close_media(host);
                }
            }
            host.event(Event::Error(ClientError::NoReply {
                method: m.to_string(),
                seconds: REPLY_TIMEOUT.as_secs(),
            }));
        }
    }

    /// When a standard session needs its keep-alive (half its timeout
    /// after the last request), if it does.
    fn keep_alive_due(&self) -> Option<Instant> {
        if !self.standard() || self.step.is_some() {
            return None;
        }
        let session = self.session.as_ref()?;
        if session.session().is_none() || session.pending().is_some() {
            return None;
        }
        let every = Duration::from_secs(session.session_timeout().unwrap_or(60).max(2) / 2);
        Some(self.last_sent? + every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the connection asked of its host; replies come from
    /// the test.
    #[derive(Default)]
    struct Recorder {
        connects: usize,
        disconnects: usize,
        sent: Vec<String>,
        media: Vec<MediaRoute>,
        closed_media: usize,
        info: Option<StreamInfo>,
        events: Vec<Event>,
        refuse_connect: bool,
    }

    impl ClientHost for Recorder {
        fn connect(&mut self) -> Result<(), ClientError> {
            self.connects += 1;
            if self.refuse_connect {
                return Err(ClientError::Connect {
                    addr: "x".into(),
                    reason: "refused".into(),
                });
            }
            Ok(())
        }
        fn disconnect(&mut self) {
            self.disconnects += 1;
        }
        fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.sent.push(String::from_utf8_lossy(bytes).into_owned());
            Ok(())
        }
        fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
            self.media.push(route);
            Ok(match route {
                MediaRoute::Udp { .. } => 5000,
                MediaRoute::Interleaved => 0,
            })
        }
        fn close_media(&mut self) {
            self.closed_media += 1;
        }
        fn stream_info(&mut self, info: StreamInfo) {
            self.info = Some(info);
        }
        fn interleaved(&mut self, _channel: u8, _payload: &[u8]) {}
        fn event(&mut self, event: Event) {
            self.events.push(event);
        }
        fn random(&mut self) -> u32 {
            0x1234_5678
        }
    }

    impl Recorder {
        fn last_sent(&self) -> &str {
            self.sent.last().map_or("", String::as_str)
        }
        fn last_method(&self) -> &str {
            self.last_sent().split(' ').next().unwrap_or("")
        }
        fn cseq(&self) -> u32 {
            self.last_sent()
                .lines()
                .find_map(|l| l.strip_prefix("CSeq: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        }
        fn states(&self) -> Vec<State> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::State { state, .. } => Some(*state),
                    _ => None,
                })
                .collect()
        }
        fn errors(&self) -> Vec<&ClientError> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Error(e) => Some(e),
                    _ => None,
                })
                .collect()
        }
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n";

    fn config() -> ClientConfig {
        ClientConfig {
            file: "movie.Mjpeg".into(),
            ..ClientConfig::default()
        }
    }

    /// Answer the request in flight with 200 and these extra lines.
    fn ok(c: &mut ClientConnection, h: &mut Recorder, now: Instant, extra: &str, body: &str) {
        let cseq = h.cseq();
        let body_headers = if body.is_empty() {
            String::new()
        } else {
            format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                body.len()
            )
        };
        let reply = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}{body_headers}\r\n{body}");
        c.handle_bytes(now, reply.as_bytes(), h);
    }

    /// OPTIONS, DESCRIBE, SETUP, PLAY, all answered.
    fn playing(config: ClientConfig) -> (ClientConnection, Recorder, Instant) {
        let (mut c, mut h, t) = ready(config, SDP);
        c.command(t, ClientCommand::Play, &mut h);
        ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
        assert_eq!(c.state(), State::Playing);
        (c, h, t)
    }

    /// OPTIONS, DESCRIBE (answered with `sdp`), SETUP, all answered.
    fn ready(config: ClientConfig, sdp: &str) -> (ClientConnection, Recorder, Instant) {
        let t = Instant::now();
        let mut c = ClientConnection::new(config);
        let mut h = Recorder::default();
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        assert_eq!(h.last_method(), "OPTIONS");
        ok(
            &mut c,
            &mut h,
            t,
            "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER\r\n",
            "",
        );
        assert_eq!(h.last_method(), "DESCRIBE");
        ok(
            &mut c,
            &mut h,
            t,
            "Content-Base: rtsp://127.0.0.1:8554/movie.Mjpeg/\r\n",
            sdp,
        );
        assert_eq!(h.last_method(), "SETUP");
        assert!(
            h.last_sent()
                .contains("rtsp://127.0.0.1:8554/movie.Mjpeg/track1")
        );
        ok(
            &mut c,
            &mut h,
            t,
            "Session: 12345678;timeout=60\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\r\n",
            "",
        );
        assert_eq!(c.state(), State::Ready);
        (c, h, t)
    }

    #[test]
    fn standard_setup_is_options_describe_setup() {
        let (_c, h, _) = playing(config());
        assert_eq!(h.media, vec![MediaRoute::Udp { pair: true }]);
        let info = h.info.unwrap();
        assert_eq!(info.server_rtcp_port, Some(6001));
        assert_eq!(h.states(), vec![State::Ready, State::Playing]);
        assert!(h.sent[3].starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg/ RTSP/1.0"));
    }

    #[test]
    fn keep_alive_at_half_the_timeout_with_get_parameter() {
        let (mut c, mut h, t) = playing(config());
        c.media_seen(Some(t));
        let due = c.poll_timeout().unwrap();
        assert!(due <= t + ENDED_AFTER);
        let sent = h.sent.len();
        c.media_seen(Some(t + Duration::from_secs(29)));
        c.handle_timeout(t + Duration::from_secs(29), &mut h);
        assert_eq!(h.sent.len(), sent, "too early");
        c.media_seen(Some(t + Duration::from_secs(30)));
        c.handle_timeout(t + Duration::from_secs(30), &mut h);
        assert_eq!(h.last_method(), "GET_PARAMETER");
    }

    #[test]
    fn auto_falls_back_to_lab_when_options_is_unanswered() {
        let t = Instant::now();
        let mut c = ClientConnection::new(config());
        let mut h = Recorder::default();
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        assert_eq!(c.poll_timeout(), Some(t + AUTO_OPTIONS_WAIT));
        c.handle_timeout(t + AUTO_OPTIONS_WAIT, &mut h);
        assert_eq!(h.connects, 2, "a fresh connection for the lab's server");
        assert_eq!(
            h.last_sent(),
            "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5000"
        );
        assert_eq!(c.dialect(), Some(Dialect::Lab));
    }

    #[test]
    fn digest_401_is_answered_once_and_the_password_never_shown() {
        let t = Instant::now();
        let mut c = ClientConnection::new(ClientConfig {
            user: Some("alice".into()),
            password: Some("s3cret".into()),
            dialect: DialectChoice::Standard,
            ..config()
        });
        let mut h = Recorder::default();
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        let challenge = format!(
            "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n1\"\r\n\r\n",
            h.cseq()
        );
        c.handle_bytes(t, challenge.as_bytes(), &mut h);
        assert_eq!(h.last_method(), "OPTIONS");
        assert!(
            h.last_sent()
                .contains("Authorization: Digest username=\"alice\"")
        );
        let again = format!(
            "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n2\"\r\n\r\n",
            h.cseq()
        );
        c.handle_bytes(t, again.as_bytes(), &mut h);
        assert_eq!(
            h.errors(),
            vec![&ClientError::Auth {
                had_credentials: true
            }]
        );
        for e in &h.events {
            if let Event::Wire { bytes, .. } = e {
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !text.contains("s3cret") && !text.contains("response="),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn udp_that_brings_nothing_switches_to_tcp() {
        let (mut c, mut h, t) = playing(config());
        assert_eq!(c.poll_timeout(), Some(t + UDP_FALLBACK_AFTER));
        c.handle_timeout(t + Duration::from_secs(2), &mut h);
        assert_eq!(h.last_method(), "PLAY", "too early to switch");
        let at = t + UDP_FALLBACK_AFTER;
        c.handle_timeout(at, &mut h);
        assert!(
            matches!(h.events.iter().rev().nth(1), Some(Event::Notice(n)) if n.contains("switching to TCP"))
        );
        assert_eq!(h.last_method(), "TEARDOWN");
        ok(&mut c, &mut h, at, "", "");
        assert_eq!(h.last_method(), "SETUP");
        assert!(
            h.last_sent()
                .contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
        );
        assert!(!h.last_sent().contains("Session:"), "a new session");
        assert_eq!(
            h.media,
            vec![MediaRoute::Udp { pair: true }, MediaRoute::Interleaved]
        );
        ok(
            &mut c,
            &mut h,
            at,
            "Session: 99999999;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
            "",
        );
        assert_eq!(h.last_method(), "PLAY");
        assert!(h.last_sent().contains("Session: 99999999"));
        ok(&mut c, &mut h, at, "", "");
        assert_eq!(c.state(), State::Playing);
        assert_eq!(c.media(), Some((MediaRoute::Interleaved, 0)));
        assert_eq!(
            h.states(),
            vec![State::Ready, State::Playing, State::Playing],
            "the owner sees one PLAYING session, not INIT in between"
        );
        assert_eq!(c.session_id(), Some("99999999"));
        // Only once: TCP that brings nothing is an error, not a loop.
        c.handle_timeout(at + NO_MEDIA_AFTER, &mut h);
        assert!(matches!(
            h.errors().last(),
            Some(ClientError::NoMedia { .. })
        ));
    }

    #[test]
    fn udp_that_brings_packets_stays() {
        let (mut c, mut h, t) = playing(config());
        c.media_seen(Some(t + Duration::from_millis(40)));
        c.handle_timeout(t + UDP_FALLBACK_AFTER, &mut h);
        assert_eq!(h.last_method(), "PLAY");
        assert!(h.events.iter().any(|e| matches!(e, Event::StreamEnded)));
    }

    #[test]
    fn tcp_asked_for_and_lab_never_switch() {
        let (mut c, mut h, t) = playing(ClientConfig {
            transport: TransportChoice::Tcp,
            ..config()
        });
        assert_eq!(h.media, vec![MediaRoute::Interleaved]);
        c.handle_timeout(t + NO_MEDIA_AFTER, &mut h);
        assert_eq!(h.last_method(), "PLAY");
        assert!(matches!(
            h.errors().last(),
            Some(ClientError::NoMedia { port: 0, .. })
        ));
    }

    #[test]
    fn seek_sends_range() {
        let (mut c, mut h, t) = playing(config());
        c.command(t, ClientCommand::PlayFrom { millis: 8_040 }, &mut h);
        assert_eq!(h.last_method(), "PLAY");
        assert!(h.last_sent().contains("Range: npt=8.040-\r\n"));
    }

    #[test]
    fn teardown_closes_media_and_returns_to_init() {
        let (mut c, mut h, t) = playing(config());
        c.command(t, ClientCommand::Teardown, &mut h);
        ok(&mut c, &mut h, t, "", "");
        assert_eq!(c.state(), State::Init);
        assert_eq!(h.closed_media, 1);
        assert!(!c.has_session());
        assert_eq!(c.poll_timeout(), None, "nothing left to time");
    }

    #[test]
    fn a_refused_connection_is_an_error_not_a_session() {
        let t = Instant::now();
        let mut c = ClientConnection::new(config());
        let mut h = Recorder {
            refuse_connect: true,
            ..Recorder::default()
        };
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        assert_eq!(h.errors().len(), 2);
        assert!(h.sent.is_empty() && h.media.is_empty());
        assert!(!c.has_session());
    }

    #[test]
    fn not_jpeg_is_refused_by_name_and_media_closed() {
        let t = Instant::now();
        let mut c = ClientConnection::new(ClientConfig {
            dialect: DialectChoice::Standard,
            ..config()
        });
        let mut h = Recorder::default();
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        ok(&mut c, &mut h, t, "", "");
        let h264 = "v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        ok(&mut c, &mut h, t, "", h264);
        assert!(
            matches!(h.errors().last(), Some(ClientError::NotJpeg { codec }) if codec.starts_with("H264"))
        );
        assert_eq!(h.closed_media, 1);
        assert!(!c.has_session());
    }

    /// A Digest challenge answering the request in flight.
    fn challenge(c: &mut ClientConnection, h: &mut Recorder, now: Instant, nonce: &str) {
        let reply = format!(
            "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nSession: 12345678\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"{nonce}\"\r\n\r\n",
            h.cseq()
        );
        c.handle_bytes(now, reply.as_bytes(), h);
    }

    fn credentials(password: &str) -> Credentials {
        Credentials {
            user: "alice".into(),
            password: password.into(),
        }
    }

    /// Nothing that reaches the owner holds the password or the digest.
    fn assert_hidden(h: &Recorder, secrets: &[&str]) {
        for e in &h.events {
            let text = match e {
                Event::Wire { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
                other => format!("{other:?}"),
            };
            for secret in secrets.iter().chain(&["response="]) {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    /// Some cameras let anyone SETUP and ask for credentials at PLAY (or
    /// when a nonce expires). The engine says so, waits, and sends the
    /// refused PLAY again with the credentials it is given: same
    /// connection, same session, the next CSeq.
    #[test]
    fn a_401_in_the_session_waits_for_credentials_and_sends_the_request_again() {
        let (mut c, mut h, t) = ready(config(), SDP);
        c.command(t, ClientCommand::PlayFrom { millis: 2_000 }, &mut h);
        let refused_cseq = h.cseq();
        challenge(&mut c, &mut h, t, "n1");
        assert_eq!(
            h.errors(),
            vec![&ClientError::Auth {
                had_credentials: false
            }]
        );
        assert_eq!(c.state(), State::Ready, "the session stays");
        assert_eq!(c.session_id(), Some("12345678"));
        let sent = h.sent.len();
        c.handle_timeout(t + Duration::from_secs(1), &mut h);
        assert_eq!(h.sent.len(), sent, "nothing goes until credentials come");

        c.credentials(t, credentials("s3cret"), &mut h);
        assert_eq!(h.sent.len(), sent + 1);
        let again = h.last_sent().to_string();
        assert!(again.starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg/ RTSP/1.0\r\n"));
        assert!(again.contains("Session: 12345678\r\n"), "{again}");
        assert!(again.contains("Range: npt=2.000-\r\n"), "{again}");
        assert!(
            again.contains("Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n1\""),
            "{again}"
        );
        assert_eq!(h.cseq(), refused_cseq + 1);
        assert_eq!((h.connects, h.disconnects), (1, 0), "the same connection");
        ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
        assert_eq!(c.state(), State::Playing);
        assert_eq!(c.session_id(), Some("12345678"));
        // Later requests carry the credentials without being asked.
        c.command(t, ClientCommand::Pause, &mut h);
        assert!(
            h.last_sent()
                .contains("Authorization: Digest username=\"alice\"")
        );
        assert_hidden(&h, &["s3cret"]);
        assert!(!format!("{:?}", credentials("s3cret")).contains("s3cret"));
    }

    #[test]
    fn wrong_credentials_in_the_session_say_so_and_others_may_follow() {
        let (mut c, mut h, t) = ready(config(), SDP);
        c.command(t, ClientCommand::Play, &mut h);
        challenge(&mut c, &mut h, t, "n1");
        c.credentials(t, credentials("n0t-it"), &mut h);
        assert_eq!(h.last_method(), "PLAY");
        challenge(&mut c, &mut h, t, "n2");
        assert_eq!(
            h.errors().last(),
            Some(&&ClientError::Auth {
                had_credentials: true
            })
        );
        let message = h.errors().last().unwrap().to_string();
        assert!(
            message.starts_with("wrong user name or password"),
            "{message}"
        );
        assert_eq!(h.last_method(), "PLAY", "not sent a third time by itself");
        let sent = h.sent.len();
        c.credentials(t, credentials("s3cret"), &mut h);
        assert_eq!(h.sent.len(), sent + 1);
        assert!(
            h.last_sent().contains("nonce=\"n2\""),
            "the newest challenge"
        );
        ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
        assert_eq!(c.state(), State::Playing);
        assert_hidden(&h, &["s3cret", "n0t-it"]);
    }

    #[test]
    fn credentials_with_nothing_refused_are_kept_for_the_next_challenge() {
        let (mut c, mut h, t) = ready(config(), SDP);
        let sent = h.sent.len();
        c.credentials(t, credentials("s3cret"), &mut h);
        assert_eq!(h.sent.len(), sent, "nothing to send again");
        c.command(t, ClientCommand::Play, &mut h);
        challenge(&mut c, &mut h, t, "n1");
        assert!(h.errors().is_empty(), "answered with them at once");
        assert!(
            h.last_sent()
                .contains("Authorization: Digest username=\"alice\"")
        );
    }

    #[test]
    fn a_refused_keep_alive_does_not_replace_a_refused_play() {
        let (mut c, mut h, t) = ready(config(), SDP);
        c.command(t, ClientCommand::Play, &mut h);
        challenge(&mut c, &mut h, t, "n1");
        // The user takes a while to type: the keep-alive is refused too.
        let later = t + Duration::from_secs(30);
        c.handle_timeout(later, &mut h);
        assert_eq!(h.last_method(), "GET_PARAMETER");
        challenge(&mut c, &mut h, later, "n2");
        c.credentials(later, credentials("s3cret"), &mut h);
        assert_eq!(h.last_method(), "PLAY");
    }

    #[test]
    fn a_new_command_replaces_the_refused_request() {
        let (mut c, mut h, t) = ready(config(), SDP);
        c.command(t, ClientCommand::Play, &mut h);
        challenge(&mut c, &mut h, t, "n1");
        c.command(t, ClientCommand::Teardown, &mut h);
        ok(&mut c, &mut h, t, "", "");
        assert_eq!(c.state(), State::Init);
        let sent = h.sent.len();
        c.credentials(t, credentials("s3cret"), &mut h);
        assert_eq!(h.sent.len(), sent, "the PLAY is not sent after TEARDOWN");
    }

    #[test]
    fn auth_message_fits_the_window_and_the_command_line() {
        let ask = ClientError::Auth {
            had_credentials: false,
        }
        .to_string();
        assert!(ask.contains("rtsp://user:password@host/"), "{ask}");
        assert!(ask.contains("where the window asks"), "{ask}");
        assert!(!ask.contains("put them in the URL"), "{ask}");
    }

    fn timelines(h: &Recorder) -> Vec<Timeline> {
        h.events
            .iter()
            .filter_map(|e| match e {
                Event::Timeline(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    /// Our server's description of a 10 s file.
    const SDP_10S: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=range:npt=0-10.000\r\na=control:*\r\nm=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\na=framerate:20\r\na=control:track1\r\n";

    #[test]
    fn describe_gives_the_length_and_play_replies_the_anchor() {
        let (mut c, mut h, t) = ready(config(), SDP_10S);
        assert_eq!(c.timeline().length_ms, Some(10_000));
        assert_eq!(c.timeline().frame_ms, Some(50));
        assert_eq!(c.timeline().last_seek_ms(), 9_950, "the last frame");
        assert!(c.timeline().seekable());
        assert_eq!(c.timeline().anchor, None);
        c.command(t, ClientCommand::Play, &mut h);
        ok(
            &mut c,
            &mut h,
            t,
            "Session: 12345678\r\nRange: npt=0.000-10.000\r\nRTP-Info: url=rtsp://127.0.0.1:8554/movie.Mjpeg/track1;seq=100;rtptime=9000\r\n",
            "",
        );
        let anchor = Anchor {
            start_ms: 0,
            rtptime: Some(9000),
        };
        assert_eq!(c.timeline().anchor, Some(anchor));
        assert_eq!(c.timeline().position_ms(9000 + 45_000), Some(500));

        // A seek: the reply says where the server really starts.
        c.command(t, ClientCommand::PlayFrom { millis: 7_520 }, &mut h);
        ok(
            &mut c,
            &mut h,
            t,
            "Session: 12345678\r\nRange: npt=7.500-10.000\r\nRTP-Info: url=rtsp://127.0.0.1:8554/movie.Mjpeg/track1;seq=180;rtptime=729000\r\n",
            "",
        );
        let seeked = c.timeline();
        assert_eq!(
            seeked.anchor,
            Some(Anchor {
                start_ms: 7_500,
                rtptime: Some(729_000)
            })
        );
        assert_eq!(seeked.position_ms(729_000 + 9_000), Some(7_600));
        // What the owner heard: reset at SETUP, length, then each PLAY.
        let told = timelines(&h);
        assert_eq!(told.len(), 4, "{told:?}");
        assert_eq!(told[0], Timeline::default());
        assert_eq!(told[3], seeked);
    }

    #[test]
    fn a_play_reply_without_range_keeps_the_asked_start() {
        let (mut c, mut h, t) = ready(config(), SDP_10S);
        c.command(t, ClientCommand::PlayFrom { millis: 3_000 }, &mut h);
        ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
        assert_eq!(
            c.timeline().anchor,
            Some(Anchor {
                start_ms: 3_000,
                rtptime: None
            })
        );
        // A resume the server says nothing about keeps the mapping.
        c.command(t, ClientCommand::Pause, &mut h);
        ok(&mut c, &mut h, t, "", "");
        c.command(t, ClientCommand::Play, &mut h);
        ok(&mut c, &mut h, t, "", "");
        assert_eq!(c.timeline().anchor.map(|a| a.start_ms), Some(3_000));
    }

    #[test]
    fn live_and_lab_streams_have_no_length() {
        // gst-rtsp-server and cameras describe live sources as `npt=0-`.
        let live = SDP_10S.replace("npt=0-10.000", "npt=0-");
        let (c, _h, _) = ready(config(), &live);
        assert_eq!(c.timeline().length_ms, None);
        assert!(!c.timeline().seekable());
        let (c, _h, _) = ready(config(), SDP);
        assert!(!c.timeline().seekable(), "no a=range at all");

        let t = Instant::now();
        let mut c = ClientConnection::new(ClientConfig {
            dialect: DialectChoice::Lab,
            ..config()
        });
        let mut h = Recorder::default();
        c.start(&mut h);
        c.command(t, ClientCommand::Setup, &mut h);
        c.handle_bytes(t, b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456", &mut h);
        c.handle_timeout(t + Duration::from_millis(200), &mut h);
        assert_eq!(c.state(), State::Ready);
        assert_eq!(timelines(&h), vec![Timeline::default()]);
    }
}
