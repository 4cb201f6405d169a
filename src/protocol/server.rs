//! The server side of one RTSP connection, sans I/O: bytes and time in,
//! replies and media actions out. It speaks both dialects, chosen per
//! request by what arrives: the lab's (bare LF, a file name as target, one
//! client port) and RFC 2326 as ffmpeg, GStreamer and VLC speak it
//! (OPTIONS, DESCRIBE with SDP, SETUP over UDP or interleaved in the RTSP
//! connection, PLAY with Range and RTP-Info, GET_PARAMETER keep-alives,
//! sessions that time out).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::State;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, ParseError, Request, Response};
use crate::protocol::sdp::{Offer, TRACK_CONTROL};
use crate::protocol::session::transition;
use crate::protocol::transport::{Lower, Transport};
use crate::protocol::url::{Escapes, percent_decode};

/// Why a request target cannot name a file under the media root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request names no file")]
    Empty,
    #[error("the path leaves the media root ({0:?})")]
    Escapes(String),
    #[error("the path is not valid ({0:?})")]
    Invalid(String),
}

/// Turn a request target (`movie.Mjpeg`, `/movie.Mjpeg`,
/// `rtsp://host:8554/dir/movie.Mjpeg`) into a relative path with `/`
/// separators that cannot leave the media root.
pub fn resolve_target(target: &str) -> Result<String, TargetError> {
    let mut path = target;
    if let Some(rest) = path
        .strip_prefix("rtsp://")
        .or_else(|| path.strip_prefix("RTSP://"))
        .or_else(|| path.strip_prefix("rtspu://"))
    {
        path = rest.find('/').map_or("", |i| &rest[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path, Escapes::Strict)
        .ok_or_else(|| TargetError::Invalid(target.to_string()))?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(TargetError::Invalid(target.to_string()));
    }
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(TargetError::Escapes(target.to_string())),
            p if p.len() >= 2 && p.as_bytes()[1] == b':' => {
                return Err(TargetError::Escapes(target.to_string()));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(parts.join("/"))
}

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
}

/// What a file is, for DESCRIBE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaInfo {
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    /// Seconds, when the whole file is known.
    pub duration: Option<f64>,
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

/// One RTSP connection on the server side. Holds at most one session,
/// which ends with the connection (as the lab's server does) or, for a
/// standard session, when nothing keeps it alive.
#[derive(Debug)]
pub struct ServerConnection {
    config: ConnectionConfig,
    decoder: Decoder,
    state: State,
    session: Option<SessionInfo>,
    out: VecDeque<ServerOutput>,
    /// When bytes last arrived.
    last_bytes: Option<Instant>,
    /// Counts reads, so a quiet flush is tried once per read.
    reads: u64,
    /// The `reads` for which a quiet flush was already tried.
    flushed_for: u64,
    /// When the unfinished message in the decoder started.
    pending_since: Option<Instant>,
    /// When the session was last kept alive.
    last_activity: Option<Instant>,
    closed: bool,
}

impl Default for ServerConnection {
    fn default() -> Self {
        Self::new(ConnectionConfig::default())
    }
}

impl ServerConnection {
    pub fn new(config: ConnectionConfig) -> Self {
        ServerConnection {
            config,
            decoder: Decoder::new(),
            state: State::Init,
            session: None,
            out: VecDeque::new(),
            last_bytes: None,
            reads: 0,
            flushed_for: 0,
            pending_since: None,
            last_activity: None,
            closed: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// The connection is over (peer closed, or we decided to close).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes arrived from the peer.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8], host: &mut impl ServerHost) {
        self.decoder.push(bytes);
        self.last_bytes = Some(now);
        self.reads += 1;
        self.drain(now, false, host);
    }

    /// Time passed: flush an unterminated (lab) message once the peer has
    /// been quiet, time out a half-sent one, expire an idle session.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut impl ServerHost) {
        if self.decoder.pending() > 0 {
            if let Some(t) = self.last_bytes
                && self.flushed_for != self.reads
                && now >= t + LAB_QUIET
            {
                self.flushed_for = self.reads;
                self.drain(now, true, host);
            }
            if self
                .pending_since
                .is_some_and(|t| now >= t + self.config.request_timeout)
            {
                self.out
                    .push_back(ServerOutput::Log(ServerLog::RequestTimeout));
                let dialect = self
                    .session
                    .as_ref()
                    .map_or(Dialect::Standard, |s| s.dialect);
                let r = Response::new(408, dialect);
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
                self.close();
                return;
            }
        }
        if let Some(expiry) = self.expiry()
            && now >= expiry
        {
            // RTCP from the client keeps the session alive too.
            if let Some(t) = host.media_activity()
                && t + self.config.session_timeout > now
            {
                self.last_activity = Some(t);
                return;
            }
            let id = self
                .session
                .as_ref()
                .map(|s| s.id.clone())
                .unwrap_or_default();
            self.out
                .push_back(ServerOutput::Log(ServerLog::SessionExpired(id)));
            self.end_session();
            // A client silent that long has most likely gone without a
            // word (its machine or network went away): without this its
            // connection, and what the server keeps for it, would stay
            // until TCP noticed, hours later. live555 does the same.
            self.close();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut next = self.expiry();
        if self.decoder.pending() > 0 {
            let expire = self.pending_since.map(|t| t + self.config.request_timeout);
            let quiet = self
                .last_bytes
                .filter(|_| self.flushed_for != self.reads)
                .map(|t| t + LAB_QUIET);
            for t in [expire, quiet].into_iter().flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// When the session expires: standard sessions only, since the lab's
    /// clients send no keep-alives (their sessions end with the connection).
    fn expiry(&self) -> Option<Instant> {
        let s = self.session.as_ref()?;
        (s.dialect == Dialect::Standard)
            .then(|| self.last_activity.map(|t| t + self.config.session_timeout))
            .flatten()
    }

    /// The next thing to do; call until None after every input.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.out.pop_front()
    }

    /// The peer closed the connection (or vanished): end the session.
    pub fn handle_closed(&mut self) {
        if self.session.take().is_some() {
            self.out.push_back(ServerOutput::Teardown);
        }
        self.state = State::Init;
        self.closed = true;
    }

    fn close(&mut self) {
        self.handle_closed();
        self.out.push_back(ServerOutput::Close);
    }

    fn end_session(&mut self) {
        if self.session.is_some() {
            self.out.push_back(ServerOutput::Teardown);
        }
        self.set_state(State::Init);
        self.session = None;
        self.last_activity = None;
    }

    fn drain(&mut self, now: Instant, quiet: bool, host: &mut impl ServerHost) {
        while !self.closed {
            let before = self.decoder.consumed();
            let polled = self.decoder.poll(quiet);
            if self.decoder.consumed() != before {
                // A new message starts here: its clock starts now.
                self.pending_since = None;
            }
            match polled {
                None => break,
                Some(Ok(Message::Request(req))) => self.handle_request(now, req, host),
                // Replies to requests we never send, and RTCP from a client
                // over TCP (which keeps its session alive).
                Some(Ok(Message::Response(_))) => {}
                Some(Ok(Message::Interleaved { .. })) => {
                    if self.last_activity.is_some() {
                        self.last_activity = Some(now);
                    }
                }
                Some(Err(e)) => {
                    let mut r = Response::new(e.status(), e.dialect);
                    if let Some(c) = e.cseq {
                        r.headers.push("CSeq", c.to_string());
                    }
                    if let Some(s) = &self.session {
                        r.headers.push("Session", s.id.clone());
                    }
                    self.out
                        .push_back(ServerOutput::Log(ServerLog::Malformed(e.clone())));
                    self.out.push_back(ServerOutput::Send(r.to_bytes()));
                    if !e.recoverable() {
                        self.close();
                    }
                }
            }
        }
        if self.decoder.pending() == 0 {
            self.pending_since = None;
        } else {
            self.pending_since.get_or_insert(now);
        }
    }

    fn reply(&mut self, req: &Request, status: u16, detail: Option<String>) -> Response {
        let mut r = Response::new(status, req.dialect);
        // The number, not the raw value: that would copy whatever else the
        // line held (a bare CR, text that reads as another message) into
        // our reply.
        if let Some(c) = req.headers.cseq() {
            r.headers.push("CSeq", c.to_string());
        }
        self.out.push_back(ServerOutput::Log(ServerLog::Request {
            method: req.method.to_string(),
            cseq: req.headers.cseq(),
            status,
            detail,
        }));
        r
    }

    fn send_error(&mut self, req: &Request, status: u16, detail: impl Into<String>) {
        let r = self.reply(req, status, Some(detail.into()));
        self.out.push_back(ServerOutput::Send(r.to_bytes()));
    }

    /// The Session header value: lab clients read a bare id, standard ones
    /// learn the timeout from it.
    fn session_header(&self, dialect: Dialect) -> Option<String> {
        let s = self.session.as_ref()?;
        Some(match dialect {
            Dialect::Lab => s.id.clone(),
            Dialect::Standard => {
                format!("{};timeout={}", s.id, self.config.session_timeout.as_secs())
            }
        })
    }

    fn handle_request(&mut self, now: Instant, req: Request, host: &mut impl ServerHost) {
        if req.headers.cseq().is_none() {
            return self.send_error(&req, 400, "no CSeq header, or not a number");
        }
        let ours = match (&self.session, req.headers.session()) {
            (Some(s), Some(id)) => id == s.id,
            _ => false,
        };
        if ours {
            self.last_activity = Some(now);
        }
        match req.method {
            Method::Options | Method::GetParameter => {
                let mut r = self.reply(&req, 200, None);
                if ours && let Some(v) = self.session_header(req.dialect) {
                    r.headers.push("Session", v);
                }
                if req.method == Method::Options {
                    r.headers.push(
                        "Public",
                        "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER",
                    );
                }
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
                return;
            }
            Method::Describe => return self.describe(&req, host),
            Method::Setup | Method::Play | Method::Pause | Method::Teardown => {}
            Method::Other(ref m) => {
                let detail = format!("unknown method {m}");
                return self.send_error(&req, 501, detail);
            }
            _ => {
                let detail = format!("{} is not supported", req.method);
                return self.send_error(&req, 501, detail);
            }
        }
        let Some(next) = transition(self.state, &req.method) else {
            let detail = format!("{} is not valid in state {}", req.method, self.state);
            return self.send_error(&req, 455, detail);
        };
        if let Some(s) = &self.session
            && let Some(id) = req.headers.session()
            && id != s.id
        {
            let detail = format!("session {id} is not this connection's ({})", s.id);
            return self.send_error(&req, 454, detail);
        }
        match req.method {
            Method::Setup => self.setup(now, &req, next, host),
            Method::Play => self.play(&req, next, host),
            _ => {
                let session = self.session_header(req.dialect).unwrap_or_default();
                let mut r = self.reply(&req, 200, None);
                r.headers.push("Session", session);
                // Media stops before the reply goes out, so a client
                // holding the reply to PAUSE or TEARDOWN sees at most the
                // frame already in flight.
                if req.method == Method::Teardown {
                    self.end_session();
                } else if self.state == State::Playing {
                    self.out.push_back(ServerOutput::Pause);
                }
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
                self.set_state(next);
            }
        }
    }

    fn describe(&mut self, req: &Request, host: &mut impl ServerHost) {
        let path = match resolve_target(&req.target) {
            Ok(p) => p,
            Err(e) => return self.send_error(req, 404, e.to_string()),
        };
        let info = match host.open(&path) {
            Ok(i) => i,
            Err(why) => return self.send_error(req, 404, why),
        };
        let offer = Offer {
            name: path.rsplit('/').next().unwrap_or(&path).to_string(),
            origin_ip: self.config.server_ip.clone(),
            session_id: host.new_session_id() as u64,
            width: info.width,
            height: info.height,
            fps: info.fps,
            duration: info.duration,
        };
        let mut r = self.reply(req, 200, None);
        let base = if req.target.ends_with('/') {
            req.target.clone()
        } else {
            format!("{}/", req.target)
        };
        r.headers.push("Content-Base", base);
        r.headers.push("Content-Type", "application/sdp");
        r.body = offer.to_sdp().into_bytes();
        self.out.push_back(ServerOutput::Send(r.to_bytes()));
    }

    fn setup(&mut self, now: Instant, req: &Request, next: State, host: &mut impl ServerHost) {
        if self.session.is_none()
            && let Some(id) = req.headers.session()
        {
            return self.send_error(req, 454, format!("no session {id}"));
        }
        let Some(th) = req.headers.get("Transport") else {
            return self.send_error(req, 400, "SETUP has no Transport header");
        };
        let specs = Transport::parse_all(th);
        let chosen = specs.iter().filter_map(|t| t.as_ref().ok()).find_map(|t| {
            let payload = if t.protocol.to_ascii_uppercase().starts_with("RTP/AVP") {
                Payload::Rfc2435
            } else {
                Payload::Lab
            };
            let transport = match (t.lower, t.multicast, t.client_port, t.interleaved) {
                (_, true, _, _) => None,
                (Lower::Udp, _, Some((rtp, rtcp)), _) if rtp != 0 => Some(MediaTransport::Udp {
                    rtp_port: rtp,
                    rtcp_port: rtcp,
                }),
                (Lower::Tcp, _, _, channels) => {
                    let (a, b) = channels.unwrap_or((0, Some(1)));
                    Some(MediaTransport::Interleaved {
                        rtp_channel: a,
                        rtcp_channel: b.unwrap_or(a.wrapping_add(1)),
                    })
                }
                _ => None,
            }?;
            Some((transport, payload, t.protocol.clone()))
        });
        let Some((transport, payload, protocol)) = chosen else {
            if let Some(Err(e)) = specs.first() {
                return self.send_error(req, 400, e.to_string());
            }
            return self.send_error(
                req,
                461,
                format!("only unicast RTP over UDP (with client_port) or TCP is offered ({th})"),
            );
        };
        let path = match resolve_target(&req.target) {
            Ok(p) => strip_track_control(p),
            Err(e) => return self.send_error(req, 404, e.to_string()),
        };
        if let Some(s) = &self.session
            && s.path != path
        {
            return self.send_error(req, 459, "one presentation per session");
        }
        if let Err(why) = host.open(&path) {
            return self.send_error(req, 404, why);
        }
        if self.session.is_none()
            && let Err(why) = host.admit()
        {
            let mut r = self.reply(req, 503, Some(why.clone()));
            r.headers.push("Content-Type", "text/plain");
            r.body = format!("{why}\n").into_bytes();
            self.out.push_back(ServerOutput::Send(r.to_bytes()));
            return;
        }
        let id = match &self.session {
            Some(s) => s.id.clone(),
            None => host.new_session_id().to_string(),
        };
        let info = SessionInfo {
            id: id.clone(),
            path,
            transport,
            payload,
            dialect: req.dialect,
            setup_url: req.target.clone(),
        };
        let prepared = match host.setup(&info) {
            Ok(p) => p,
            Err(why) => return self.send_error(req, 500, why),
        };
        self.session = Some(info);
        self.last_activity = Some(now);
        let mut r = self.reply(req, 200, None);
        r.headers
            .push("Session", self.session_header(req.dialect).unwrap_or(id));
        if req.dialect == Dialect::Standard {
            let ssrc = format!("{:08X}", prepared.ssrc);
            let t = match (transport, prepared.server_ports) {
                (
                    MediaTransport::Udp {
                        rtp_port,
                        rtcp_port,
                    },
                    ports,
                ) => {
                    let profile = match payload {
                        Payload::Rfc2435 => "RTP/AVP/UDP",
                        Payload::Lab => protocol.as_str(),
                    };
                    let mut t = format!("{profile};unicast;client_port={rtp_port}");
                    if let Some(r) = rtcp_port {
                        t.push_str(&format!("-{r}"));
                    }
                    if let Some((a, b)) = ports {
                        t.push_str(&format!(";server_port={a}-{b}"));
                    }
                    t
                }
                (
                    MediaTransport::Interleaved {
                        rtp_channel,
                        rtcp_channel,
                    },
                    _,
                ) => {
                    format!("RTP/AVP/TCP;unicast;interleaved={rtp_channel}-{rtcp_channel}")
                }
            };
            r.headers.push("Transport", format!("{t};ssrc={ssrc}"));
        }
        self.out.push_back(ServerOutput::Send(r.to_bytes()));
        self.set_state(next);
    }

    fn play(&mut self, req: &Request, next: State, host: &mut impl ServerHost) {
        let start = match req.headers.get("Range").map(parse_npt_start) {
            None => None,
            Some(Ok(s)) => s,
            Some(Err(BadRange)) => {
                let detail = format!("cannot read Range {:?}", req.headers.get("Range"));
                return self.send_error(req, 457, detail);
            }
        };
        let info = match host.prepare_play(start) {
            Ok(i) => i,
            Err(PlayError::Range(why)) => return self.send_error(req, 457, why),
            Err(PlayError::Other(why)) => return self.send_error(req, 500, why),
        };
        let session = self.session_header(req.dialect).unwrap_or_default();
        let url = self
            .session
            .as_ref()
            .map(|s| s.setup_url.clone())
            .unwrap_or_default();
        let mut r = self.reply(req, 200, None);
        r.headers.push("Session", session);
        if req.dialect == Dialect::Standard {
            let end = info.end.map_or(String::new(), |e| format!("{e:.3}"));
            r.headers
                .push("Range", format!("npt={:.3}-{end}", info.start));
            r.headers.push(
                "RTP-Info",
                format!("url={url};seq={};rtptime={}", info.seq, info.rtptime),
            );
        }
        // Media starts after the reply to PLAY. A seek while PLAYING
        // starts it too: the file may have ended (or a client that refused
        // packets been paused) while the session stayed PLAYING, and a
        // sender already running takes no notice.
        self.out.push_back(ServerOutput::Send(r.to_bytes()));
        if self.state == State::Ready || start.is_some() {
            self.out.push_back(ServerOutput::Play);
        }
        self.set_state(next);
    }

    fn set_state(&mut self, to: State) {
        if to != self.state {
            let session = self
                .session
                .as_ref()
                .map(|s| s.id.clone())
                .unwrap_or_default();
            self.out
                .push_back(ServerOutput::Log(ServerLog::StateChanged {
                    session,
                    from: self.state,
                    to,
                }));
            self.state = to;
        }
    }
}

/// Our SDP names the track `trackID=0` under the presentation URL; the
/// file is the URL without it.
fn strip_track_control(path: String) -> String {
    match path.rsplit_once('/') {
        Some((file, control)) if control == TRACK_CONTROL || control.starts_with("trackID=") => {
            file.to_string()
        }
        _ => path,
    }
}

/// A Range header that is not a normal play time we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an npt range")]
pub struct BadRange;

/// The start of a `Range: npt=START-[END]` header: None for `now` or an
/// empty start, Err for what is not npt.
pub fn parse_npt_start(value: &str) -> Result<Option<f64>, BadRange> {
    let v = value.split(';').next().unwrap_or("").trim();
    let Some(npt) = v.strip_prefix("npt=").or_else(|| v.strip_prefix("npt =")) else {
        return Err(BadRange);
    };
    let start = npt.split('-').next().unwrap_or("").trim();
    if start.is_empty() || start == "now" {
        return Ok(None);
    }
    crate::protocol::timeline::npt_time(start)
        .map(Some)
        .ok_or(BadRange)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) struct Host {
        files: Vec<&'static str>,
        next_id: u32,
        pub(crate) played_from: Vec<Option<f64>>,
    }

    impl ServerHost for Host {
        fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
            if self.files.contains(&path) {
                Ok(MediaInfo {
                    width: 384,
                    height: 288,
                    fps: 20,
                    duration: Some(25.0),
                })
            } else {
                Err(format!("{path} does not exist"))
            }
        }
        fn new_session_id(&mut self) -> u32 {
            self.next_id += 1;
            self.next_id
        }
        fn setup(&mut self, _: &SessionInfo) -> Result<Prepared, String> {
            Ok(Prepared {
                server_ports: Some((6000, 6001)),
                ssrc: 0xABCD,
            })
        }
        fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
            if start.is_some_and(|s| s > 25.0) {
                return Err(PlayError::Range("25 s long".into()));
            }
            self.played_from.push(start);
            Ok(PlayInfo {
                seq: 100,
                rtptime: 9000,
                start: start.unwrap_or(0.0),
                end: Some(25.0),
            })
        }
    }

    pub(crate) fn host() -> Host {
        Host {
            files: vec!["movie.Mjpeg"],
            next_id: 123455,
            played_from: Vec::new(),
        }
    }

    /// Feed a lab request and collect the output.
    fn lab(conn: &mut ServerConnection, t: Instant, bytes: &[u8]) -> Vec<ServerOutput> {
        let mut h = host();
        conn.handle_bytes(t, bytes, &mut h);
        // Messages ending in a Session line are complete at once; others
        // (SETUP ends with Transport) wait for the peer to be quiet.
        if let Some(deadline) = conn.poll_timeout() {
            assert_eq!(deadline, t + LAB_QUIET);
            conn.handle_timeout(deadline, &mut h);
        }
        std::iter::from_fn(|| conn.poll_output()).collect()
    }

    pub(crate) fn sent(out: &[ServerOutput]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                ServerOutput::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Feed a standard (CRLF) request and collect the output.
    fn std_req(
        c: &mut ServerConnection,
        h: &mut Host,
        t: Instant,
        text: &str,
    ) -> Vec<ServerOutput> {
        c.handle_bytes(t, text.as_bytes(), h);
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    #[test]
    fn a_cseq_that_is_no_number_is_refused_and_not_echoed() {
        // Found by fuzzing (server_connection): the raw value was echoed,
        // bare CR and all, and our own client read the reply as two.
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let mut h = host();
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "OPTIONS * RTSP/1.0\r\nCSeq: 2\rX-Injected: 1\r\n\r\n",
        );
        let replies = sent(&out);
        assert_eq!(replies.len(), 1);
        assert!(replies[0].starts_with("RTSP/1.0 400 "), "{}", replies[0]);
        assert!(!replies[0].contains("Injected"), "{}", replies[0]);
        let out = std_req(&mut c, &mut h, t, "OPTIONS * RTSP/1.0\r\nCSeq:  7 \r\n\r\n");
        assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK\r\nCSeq: 7\r\n"));
    }

    #[test]
    fn standard_session_describe_setup_play_with_range() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let mut h = host();
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "OPTIONS rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        );
        assert!(sent(&out)[0].contains(
            "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER\r\n"
        ));
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "DESCRIBE rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
        );
        let d = &sent(&out)[0];
        assert!(d.contains("Content-Base: rtsp://h/movie.Mjpeg/\r\n"), "{d}");
        assert!(d.contains("Content-Type: application/sdp\r\n"));
        assert!(d.contains("m=video 0 RTP/AVP 26\r\n"));
        assert!(d.contains("a=range:npt=0-25.000\r\n"));
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
        );
        let s = &sent(&out)[0];
        let id = c.session().unwrap().id.clone();
        assert!(s.contains(&format!("Session: {id};timeout=60\r\n")), "{s}");
        assert!(s.contains("Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=0000ABCD\r\n"), "{s}");
        assert_eq!(c.session().unwrap().path, "movie.Mjpeg");
        let out = std_req(
            &mut c,
            &mut h,
            t,
            &format!(
                "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nRange: npt=10.5-\r\n\r\n"
            ),
        );
        let p = &sent(&out)[0];
        assert!(p.contains("Range: npt=10.500-25.000\r\n"), "{p}");
        assert!(
            p.contains("RTP-Info: url=rtsp://h/movie.Mjpeg/trackID=0;seq=100;rtptime=9000\r\n"),
            "{p}"
        );
        assert!(out.contains(&ServerOutput::Play));
        assert_eq!(h.played_from, vec![Some(10.5)]);
        let out = std_req(
            &mut c,
            &mut h,
            t,
            &format!(
                "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=30-\r\n\r\n"
            ),
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 457 "));
        // A seek back in PLAYING (the file may have ended meanwhile) starts
        // the sender again; a bare PLAY in PLAYING does not need to.
        let out = std_req(
            &mut c,
            &mut h,
            t,
            &format!(
                "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\nRange: npt=2-\r\n\r\n"
            ),
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK"));
        assert!(out.contains(&ServerOutput::Play));
        assert_eq!(h.played_from, vec![Some(10.5), Some(2.0)]);
        let out = std_req(
            &mut c,
            &mut h,
            t,
            &format!("PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\n\r\n"),
        );
        assert!(!out.contains(&ServerOutput::Play));
        let out = std_req(
            &mut c,
            &mut h,
            t,
            &format!(
                "GET_PARAMETER rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\n\r\n"
            ),
        );
        assert!(sent(&out)[0].starts_with(&format!(
            "RTSP/1.0 200 OK\r\nCSeq: 8\r\nSession: {id};timeout=60\r\n"
        )));
    }

    #[test]
    fn interleaved_setup_and_unsupported_transport() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let mut h = host();
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n",
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 461 "));
        let out = std_req(
            &mut c,
            &mut h,
            t,
            "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
        );
        assert!(
            sent(&out)[0]
                .contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0000ABCD\r\n")
        );
        assert_eq!(
            c.session().unwrap().transport,
            MediaTransport::Interleaved {
                rtp_channel: 0,
                rtcp_channel: 1
            }
        );
    }

    #[test]
    fn standard_session_expires_unless_kept_alive() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let mut h = host();
        std_req(
            &mut c,
            &mut h,
            t,
            "SETUP rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
        );
        assert_eq!(c.poll_timeout(), Some(t + SESSION_TIMEOUT));
        let later = t + Duration::from_secs(50);
        std_req(
            &mut c,
            &mut h,
            later,
            "GET_PARAMETER * RTSP/1.0\r\nCSeq: 2\r\nSession: 123456\r\n\r\n",
        );
        assert_eq!(c.poll_timeout(), Some(later + SESSION_TIMEOUT));
        c.handle_timeout(later + SESSION_TIMEOUT, &mut h);
        let out: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
        assert!(out.contains(&ServerOutput::Teardown));
        // The connection goes with it: its client is most likely gone.
        assert_eq!(out.last(), Some(&ServerOutput::Close));
        assert!(c.is_closed());
        assert_eq!(c.state(), State::Init);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn lab_sessions_never_expire() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        lab(
            &mut c,
            t,
            b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
        );
        assert_eq!(c.state(), State::Ready);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn npt_ranges() {
        assert_eq!(parse_npt_start("npt=0-"), Ok(Some(0.0)));
        assert_eq!(parse_npt_start("npt=now-"), Ok(None));
        assert_eq!(parse_npt_start("npt=-10"), Ok(None));
        assert_eq!(parse_npt_start("npt=0:01:02.5-"), Ok(Some(62.5)));
        assert_eq!(parse_npt_start("clock=19961108T142300Z-"), Err(BadRange));
        assert_eq!(parse_npt_start("npt=-1-"), Ok(None));
        assert_eq!(parse_npt_start("npt=abc-"), Err(BadRange));
    }

    #[test]
    fn lab_session_walks_the_states_with_exact_replies() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let out = lab(
            &mut c,
            t,
            b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
        );
        assert_eq!(sent(&out), ["RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456"]);
        assert_eq!(
            c.session().unwrap().transport,
            MediaTransport::Udp {
                rtp_port: 25000,
                rtcp_port: None
            }
        );
        assert_eq!(c.state(), State::Ready);
        let out = lab(
            &mut c,
            t,
            b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
        );
        assert_eq!(sent(&out), ["RTSP/1.0 200 OK\nCSeq: 2\nSession: 123456"]);
        assert!(out.contains(&ServerOutput::Play));
        let out = lab(
            &mut c,
            t,
            b"PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456",
        );
        assert!(out.contains(&ServerOutput::Pause));
        assert_eq!(c.state(), State::Ready);
        let out = lab(
            &mut c,
            t,
            b"TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 4\nSession: 123456",
        );
        assert!(out.contains(&ServerOutput::Teardown));
        assert_eq!(c.state(), State::Init);
    }

    #[test]
    fn wrong_state_wrong_session_unknown_method_missing_file() {
        let t = Instant::now();
        let mut c = ServerConnection::default();
        let out = lab(&mut c, t, b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 1\nSession: 1");
        assert_eq!(
            sent(&out)[0],
            "RTSP/1.0 455 Method Not Valid in This State\nCSeq: 1"
        );
        let out = lab(&mut c, t, b"FLY movie.Mjpeg RTSP/1.0\nCSeq: 2");
        assert!(sent(&out)[0].starts_with("RTSP/1.0 501 "));
        let out = lab(
            &mut c,
            t,
            b"SETUP ../../etc/passwd RTSP/1.0\nCSeq: 3\nTransport: RTP/UDP; client_port= 25000",
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 404 "));
        let out = lab(
            &mut c,
            t,
            b"SETUP nope.Mjpeg RTSP/1.0\nCSeq: 4\nTransport: RTP/UDP; client_port= 25000",
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 404 "));
        lab(
            &mut c,
            t,
            b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 5\nTransport: RTP/UDP; client_port= 25000",
        );
        let out = lab(
            &mut c,
            t,
            b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 6\nSession: 999999",
        );
        assert!(sent(&out)[0].starts_with("RTSP/1.0 454 "));
        assert_eq!(c.state(), State::Ready);
    }

    #[test]
    fn half_sent_request_times_out_with_408() {
        let t = Instant::now();
        let mut h = host();
        let mut c = ServerConnection::new(ConnectionConfig {
            request_timeout: Duration::from_secs(10),
            ..ConnectionConfig::default()
        });
        c.handle_bytes(t, b"SETUP movie.Mj", &mut h);
        let q = c.poll_timeout().unwrap();
        c.handle_timeout(q, &mut h);
        assert!(
            c.poll_output().is_none(),
            "a half request line is not flushed"
        );
        let e = c.poll_timeout().unwrap();
        assert_eq!(e, t + Duration::from_secs(10));
        c.handle_timeout(e, &mut h);
        let out: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
        assert!(sent(&out)[0].starts_with("RTSP/1.0 408 "));
        assert!(out.contains(&ServerOutput::Close));
    }

    #[test]
    fn resolve_target_stays_under_root() {
        assert_eq!(resolve_target("movie.Mjpeg").unwrap(), "movie.Mjpeg");
        assert_eq!(
            resolve_target("rtsp://h:8554/a/b.mjpeg").unwrap(),
            "a/b.mjpeg"
        );
        assert_eq!(resolve_target("/a//./b").unwrap(), "a/b");
        for bad in [
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "rtsp://h/../x",
            "C:/x",
            "a\\..\\x",
            "",
        ] {
            assert!(resolve_target(bad).is_err(), "{bad}");
        }
    }
}
