//! What a server connection and its host say to each other: the host's
//! questions and answers, the session's media description, and the
//! outputs and log events the connection returns.

use std::time::{Duration, Instant};

use crate::protocol::State;
use crate::protocol::rtsp::{Dialect, ParseError};

/// What the server needs from its surroundings while handling requests.
/// Implemented in `net`; tests implement it with plain values.
pub trait ServerHost {
    /// Check that `path` (already resolved under the root) can be served.
    fn open(&mut self, path: &str) -> Result<MediaInfo, String>;
    /// Whether a new session may be set up now; Err says why not (the
    /// server's caps), answered with 503.
    fn admit(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// A fresh random session id; the lab's are 6 digits.
    fn new_session_id(&mut self) -> u32;
    /// Get media ready for the session just set up (sockets, sender).
    fn setup(&mut self, session: &SessionInfo) -> Result<Prepared, String>;
    /// Position the media for PLAY (seeking when `start` is given) and say
    /// where it will start.
    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError>;
    /// When the client's media side (RTCP) last showed life.
    fn media_activity(&mut self) -> Option<Instant> {
        None
    }
    /// Whether a request may go on, from its `Authorization` value (None:
    /// it had none): the server's users, when it has any. Every request
    /// but OPTIONS asks (a client learns what the server speaks before
    /// it has credentials).
    fn authorize(&mut self, _method: &str, _authorization: Option<&str>) -> Access {
        Access::Granted
    }
}

/// What the host says of a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No password on this server, or the right one.
    Granted,
    /// Answer 401 with these `WWW-Authenticate` values, after holding the
    /// answer back for `hold` (an address that keeps guessing is slowed
    /// down); `why` is for the log and holds no secret.
    Refused {
        challenges: Vec<String>,
        why: String,
        hold: Duration,
    },
}

/// What a file is, for DESCRIBE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaInfo {
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    /// Seconds, when the whole file is known.
    pub duration: Option<f64>,
    /// A live source: no length, every viewer at the live edge.
    pub live: bool,
}

/// What the media side set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Our RTP and RTCP ports, for UDP.
    pub server_ports: Option<(u16, u16)>,
    pub ssrc: u32,
}

/// Where PLAY starts, for the Range and RTP-Info headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayInfo {
    pub seq: u16,
    pub rtptime: u32,
    /// Normal play time of the first frame sent, in seconds.
    pub start: f64,
    pub end: Option<f64>,
    /// A live source: the reply says `Range: npt=now-`.
    pub live: bool,
}

/// Why PLAY could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    #[error("the range starts past the end ({0})")]
    Range(String),
    #[error("{0}")]
    Other(String),
}

/// How the session's media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTransport {
    /// UDP to the RTSP peer's address (never elsewhere).
    Udp {
        rtp_port: u16,
        rtcp_port: Option<u16>,
    },
    /// Inside the RTSP connection, framed by `$`, channel, length.
    Interleaved { rtp_channel: u8, rtcp_channel: u8 },
}

/// What each RTP packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// The lab's: the whole JPEG as stored, sequence from 1, Unix-second
    /// timestamps. Asked for with the lab's `RTP/UDP` transport.
    Lab,
    /// RFC 2435 with 90 kHz timestamps: asked for with `RTP/AVP`, the RTP
    /// profile every standard client names.
    Rfc2435,
}

/// The agreed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    /// Resolved path of the media under the root.
    pub path: String,
    pub transport: MediaTransport,
    pub payload: Payload,
    pub dialect: Dialect,
    /// The URL the client set up, for RTP-Info.
    pub setup_url: String,
}

/// What the I/O layer must do after handling input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutput {
    /// Write these bytes to the RTSP connection.
    Send(Vec<u8>),
    /// Start (or resume) sending media.
    Play,
    /// Stop sending media, keep the position.
    Pause,
    /// The session ended (TEARDOWN, expiry, connection gone): stop media.
    Teardown,
    /// Close the connection after sending what is queued.
    Close,
    /// Wait this long before carrying out what follows (the answer to a
    /// wrong password, slowed down).
    Hold(Duration),
    /// Something worth one log line.
    Log(ServerLog),
}

/// One log line about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLog {
    Request {
        method: String,
        cseq: Option<u32>,
        status: u16,
        detail: Option<String>,
    },
    StateChanged {
        session: String,
        from: State,
        to: State,
    },
    Malformed(ParseError),
    RequestTimeout,
    SessionExpired(String),
}

/// How long the peer must be quiet before an unterminated (lab) message is
/// taken as complete. The lab's client sends each request in one write.
pub const LAB_QUIET: Duration = Duration::from_millis(15);
/// How long a half-sent request may sit before the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a standard session lives without a request or RTCP.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// What every connection shares.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub request_timeout: Duration,
    pub session_timeout: Duration,
    /// Our address as the client reached it, for SDP.
    pub server_ip: String,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            request_timeout: REQUEST_TIMEOUT,
            session_timeout: SESSION_TIMEOUT,
            server_ip: "0.0.0.0".into(),
        }
    }
}
