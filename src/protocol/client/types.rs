//! The client's vocabulary, shared by the connection and its owner: what
//! to connect to ([`ClientConfig`]), what the owner asks ([`ClientCommand`]),
//! what goes wrong in words a person can act on ([`ClientError`]), what the
//! client reports ([`Event`]) and what it needs from its I/O ([`ClientHost`]).

use crate::protocol::State;
use crate::protocol::rtp;
use crate::protocol::rtsp::Method;
use crate::protocol::timeline::Timeline;
use crate::protocol::url::{RtspUrl, UrlError};

/// Which RTSP to speak, or TPC-3's handshake instead of RTSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialectChoice {
    /// Standard first; the lab's when the server answers nothing to
    /// OPTIONS within a second (which is what the lab's server does).
    #[default]
    Auto,
    Standard,
    Lab,
    /// Seed 000's "Lab 08 TPC-3": file name and UDP port, a session id,
    /// `Go` (see [`super::Tpc3Client`]).
    Tpc3,
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
    /// Send this request whatever the state (the window's "Let me send it
    /// anyway"), to see what the server says: PLAY in INIT, say. Where the
    /// state allows it, it is the plain command. The client's state moves
    /// only as the state machine allows, whatever the reply; a refusal or
    /// silence is explained ([`ClientError::NotValidHere`],
    /// [`ClientError::Ignored`]).
    Force(Forced),
}

/// A request the learning toggle may send in any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    Setup,
    Play,
    Pause,
    Teardown,
}

impl Forced {
    /// The command that sends this request where the state allows it.
    pub fn command(self) -> ClientCommand {
        match self {
            Forced::Setup => ClientCommand::Setup,
            Forced::Play => ClientCommand::Play,
            Forced::Pause => ClientCommand::Pause,
            Forced::Teardown => ClientCommand::Teardown,
        }
    }

    /// The request for one of the four buttons' commands (None for the others).
    pub fn of(command: ClientCommand) -> Option<Forced> {
        match command {
            ClientCommand::Setup => Some(Forced::Setup),
            ClientCommand::Play => Some(Forced::Play),
            ClientCommand::Pause => Some(Forced::Pause),
            ClientCommand::Teardown => Some(Forced::Teardown),
            ClientCommand::Force(f) => Some(f),
            ClientCommand::PlayFrom { .. } | ClientCommand::Shutdown => None,
        }
    }
}

impl ClientCommand {
    /// The request the command sends.
    pub fn method(self) -> Method {
        match self {
            ClientCommand::Setup => Method::Setup,
            ClientCommand::Play | ClientCommand::PlayFrom { .. } => Method::Play,
            ClientCommand::Pause => Method::Pause,
            ClientCommand::Teardown | ClientCommand::Shutdown => Method::Teardown,
            ClientCommand::Force(f) => f.command().method(),
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
    /// A request sent anyway, in a state the client would not send it in,
    /// refused by the server (our server: 455 Method Not Valid in This State).
    #[error(
        "the server answered {method} with {code} {reason}: {method} is not valid in {state}, \
         because {why}. The client stays in {state}."
    )]
    NotValidHere {
        method: String,
        state: State,
        code: u16,
        reason: String,
        why: &'static str,
    },
    /// A request sent anyway got no reply at all: what the lab's server
    /// does with a request its state machine does not expect.
    #[error(
        "no reply to {method} within {seconds} s. {method} is not valid in {state} \
         ({why}); the lab's server ignores a request it does not expect and answers \
         nothing, where a standard server answers 455 Method Not Valid in This State. \
         The client stays in {state}."
    )]
    Ignored {
        method: String,
        state: State,
        seconds: u64,
        why: &'static str,
    },
    /// TPC-3's `-1`.
    #[error(
        "the server has no file named {file} (it answered -1). Check the file name: it is case-sensitive."
    )]
    NoSuchFile { file: String },
    /// TPC-3: an answer to the request that is not a number.
    #[error(
        "the server answered {answer:?} to the file name and port, which is not a number: a \
         TPC-3 server answers a session id (a positive number) or -1. Is this port a TPC-3 server?"
    )]
    Tpc3Answer { answer: String },
    /// TPC-3: a number that is neither a session id nor `-1`.
    #[error(
        "the server answered {id}, which is not a session id (a positive number up to \
         4294967295, the RTP SSRC) nor -1 (no such file)"
    )]
    NotASessionId { id: i64 },
    #[error("the server closed the TPC-3 connection {during}")]
    Tpc3Closed { during: &'static str },
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
    /// The SSRC every packet must carry (TPC-3: the session id); None:
    /// the first packet's, as RTP receivers do.
    pub ssrc: Option<u32>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            payload_type: rtp::PT_JPEG,
            dimensions: None,
            server_rtcp_port: None,
            rtp_channel: 0,
            rtcp_channel: Some(1),
            ssrc: None,
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
    /// TPC-3: the handshake moved to this phase.
    Tpc3(super::Tpc3Phase),
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
