//! The RTSP session state machine, INIT -> READY -> PLAYING, shared by the
//! server and the client engine so both sides agree on what is allowed.

/// The state of one RTSP session, as RFC 2326 appendix A and the lab name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    /// No session yet (before SETUP, after TEARDOWN).
    #[default]
    Init,
    /// SETUP done: transport agreed, media not flowing.
    Ready,
    /// PLAY done: media flowing.
    Playing,
}

impl State {
    /// The name used everywhere: in the window, the logs and the docs.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Ready => "READY",
            State::Playing => "PLAYING",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, ParseError, Request, Response};
use crate::protocol::transport::{Lower, Transport};

/// The state a method leads to from `state`, or None when the method is not
/// valid in that state (455). Methods that do not change the state (OPTIONS,
/// DESCRIBE, ...) keep it. Server and client both use this one table.
pub fn transition(state: State, method: &Method) -> Option<State> {
    use State::*;
    match (method, state) {
        (Method::Setup, Init | Ready) => Some(Ready),
        (Method::Setup, Playing) => None,
        (Method::Play, Ready | Playing) => Some(Playing),
        (Method::Pause, Ready | Playing) => Some(Ready),
        (Method::Teardown, Ready | Playing) => Some(Init),
        (Method::Play | Method::Pause | Method::Teardown, Init) => None,
        _ => Some(state),
    }
}

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
    let decoded = percent_decode(path).ok_or_else(|| TargetError::Invalid(target.to_string()))?;
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

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What the server needs from its surroundings while handling requests:
/// opening media and drawing random session ids. Implemented in `net`.
pub trait ServerHost {
    /// Check that `path` (already resolved under the root) can be served.
    fn open(&mut self, path: &str) -> Result<(), String>;
    /// A fresh random session id; the lab's are 6 digits.
    fn new_session_id(&mut self) -> u32;
}

/// The agreed session, as the media sender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    /// Resolved path of the media under the root.
    pub path: String,
    /// The client's RTP port (RTP goes to the RTSP peer's address only).
    pub rtp_port: u16,
    pub rtcp_port: Option<u16>,
    pub dialect: Dialect,
}

/// What the I/O layer must do after handling input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutput {
    /// Write these bytes to the RTSP connection.
    Send(Vec<u8>),
    /// A session was set up: prepare to send media.
    Setup(SessionInfo),
    /// Start (or resume) sending media.
    Play,
    /// Stop sending media, keep the position.
    Pause,
    /// The session ended (TEARDOWN): stop media and forget it.
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
}

/// How long the peer must be quiet before an unterminated (lab) message is
/// taken as complete. The lab's client sends each request in one write.
pub const LAB_QUIET: Duration = Duration::from_millis(15);
/// How long a half-sent request may sit before the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One RTSP connection on the server side, sans I/O: bytes and time in,
/// [`ServerOutput`]s out. Holds at most one session, which ends with the
/// connection (as the lab's server does).
#[derive(Debug)]
pub struct ServerConnection {
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
    request_timeout: Duration,
    closed: bool,
}

impl Default for ServerConnection {
    fn default() -> Self {
        Self::new(REQUEST_TIMEOUT)
    }
}

impl ServerConnection {
    pub fn new(request_timeout: Duration) -> Self {
        ServerConnection {
            decoder: Decoder::new(),
            state: State::Init,
            session: None,
            out: VecDeque::new(),
            last_bytes: None,
            reads: 0,
            flushed_for: 0,
            pending_since: None,
            request_timeout,
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
    /// been quiet, or time out a half-sent one.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut impl ServerHost) {
        if self.decoder.pending() == 0 {
            return;
        }
        if let Some(t) = self.last_bytes
            && self.flushed_for != self.reads
            && now >= t + LAB_QUIET
        {
            self.flushed_for = self.reads;
            self.drain(now, true, host);
        }
        if self
            .pending_since
            .is_some_and(|t| now >= t + self.request_timeout)
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
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.decoder.pending() == 0 {
            return None;
        }
        let expire = self.pending_since.map(|t| t + self.request_timeout);
        let quiet = self
            .last_bytes
            .filter(|_| self.flushed_for != self.reads)
            .map(|t| t + LAB_QUIET);
        match (quiet, expire) {
            (Some(q), Some(e)) => Some(q.min(e)),
            (q, e) => q.or(e),
        }
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
                Some(Ok(Message::Request(req))) => self.handle_request(req, host),
                Some(Ok(Message::Response(_))) => {
                    // Replies to requests we never send (we send none yet):
                    // nothing to do.
                }
                Some(Ok(Message::Interleaved { .. })) => {
                    // RTCP from a client over TCP: nothing to do yet.
                }
                Some(Err(e)) => {
                    let mut r = Response::new(e.status(), e.dialect);
                    if let Some(s) = &self.session {
                        r.headers.push("Session", s.id.clone());
                    }
                    if let Some(c) = e.cseq {
                        r.headers.push("CSeq", c.to_string());
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
        if let Some(c) = req.headers.get("CSeq") {
            r.headers.push("CSeq", c.trim());
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

    fn handle_request(&mut self, req: Request, host: &mut impl ServerHost) {
        if req.headers.get("CSeq").is_none() {
            return self.send_error(&req, 400, "no CSeq header");
        }
        match req.method {
            Method::Options => {
                let mut r = self.reply(&req, 200, None);
                if let Some(s) = &self.session {
                    r.headers.push("Session", s.id.clone());
                }
                r.headers
                    .push("Public", "OPTIONS, SETUP, PLAY, PAUSE, TEARDOWN");
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
                return;
            }
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
        if let Some(s) = &self.session {
            match req.headers.session() {
                Some(id) if id != s.id => {
                    let detail = format!("session {id} is not this connection's ({})", s.id);
                    return self.send_error(&req, 454, detail);
                }
                _ => {}
            }
        }
        if req.method == Method::Setup {
            if self.session.is_none()
                && let Some(id) = req.headers.session()
            {
                return self.send_error(&req, 454, format!("no session {id}"));
            }
            let Some(th) = req.headers.get("Transport") else {
                return self.send_error(&req, 400, "SETUP has no Transport header");
            };
            let specs = Transport::parse_all(th);
            let chosen = specs
                .iter()
                .filter_map(|t| t.as_ref().ok())
                .find(|t| t.lower == Lower::Udp && !t.multicast && t.client_port.is_some());
            let Some(t) = chosen else {
                if let Some(Err(e)) = specs.first() {
                    return self.send_error(&req, 400, e.to_string());
                }
                return self.send_error(
                    &req,
                    461,
                    format!("only unicast RTP over UDP with client_port is offered ({th})"),
                );
            };
            let (rtp_port, rtcp_port) = t.client_port.unwrap_or((0, None));
            if rtp_port == 0 {
                return self.send_error(&req, 400, "client_port 0 cannot receive RTP");
            }
            let path = match resolve_target(&req.target) {
                Ok(p) => p,
                Err(e) => return self.send_error(&req, 404, e.to_string()),
            };
            if let Err(why) = host.open(&path) {
                return self.send_error(&req, 404, why);
            }
            let id = match &self.session {
                Some(s) => s.id.clone(),
                None => host.new_session_id().to_string(),
            };
            let info = SessionInfo {
                id: id.clone(),
                path,
                rtp_port,
                rtcp_port,
                dialect: req.dialect,
            };
            self.session = Some(info.clone());
            let mut r = self.reply(&req, 200, None);
            r.headers.push("Session", id.clone());
            if req.dialect == Dialect::Standard {
                r.headers
                    .push("Transport", th.split(',').next().unwrap_or(th).trim());
            }
            // The session exists before its reply goes out.
            self.out.push_back(ServerOutput::Setup(info));
            self.out.push_back(ServerOutput::Send(r.to_bytes()));
            self.set_state(next);
            return;
        }
        let id = self
            .session
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let mut r = self.reply(&req, 200, None);
        r.headers.push("Session", id);
        // Media stops before the reply goes out, so a client holding the
        // reply to PAUSE or TEARDOWN sees at most the frame already in
        // flight; media starts after the reply to PLAY.
        match (&req.method, self.state) {
            (Method::Play, State::Ready) => {
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
                self.out.push_back(ServerOutput::Play);
            }
            (Method::Pause, State::Playing) => {
                self.out.push_back(ServerOutput::Pause);
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
            }
            (Method::Teardown, _) => {
                self.session = None;
                self.out.push_back(ServerOutput::Teardown);
                self.out.push_back(ServerOutput::Send(r.to_bytes()));
            }
            _ => self.out.push_back(ServerOutput::Send(r.to_bytes())),
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

/// The lab's server answers nothing to a request its state machine does
/// not expect (PAUSE in READY, PLAY in PLAYING, SETUP in READY), so a lab
/// client sends only what moves the state: waiting for a reply that never
/// comes helps nobody.
fn lab_client_allows(state: State, method: &Method) -> bool {
    matches!(
        (method, state),
        (Method::Setup, State::Init)
            | (Method::Play, State::Ready)
            | (Method::Pause, State::Playing)
            | (Method::Teardown, State::Ready | State::Playing)
    )
}

/// Why the client cannot send a request now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientSessionError {
    #[error("{method} is not possible in state {state}")]
    NotAllowed { method: String, state: State },
    #[error("still waiting for the reply to {0}")]
    Busy(String),
}

/// What a reply meant for the client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientReply {
    /// The request succeeded; the state is now `to`.
    Done {
        method: Method,
        from: State,
        to: State,
    },
    /// The server refused the request.
    Failed {
        method: Method,
        status: u16,
        reason: String,
    },
    /// A reply to nothing we are waiting for (wrong CSeq, or unasked).
    Unexpected,
}

/// The client side of one RTSP session, sans I/O: builds requests in the
/// chosen dialect and moves through INIT/READY/PLAYING as replies arrive.
#[derive(Debug, Clone)]
pub struct ClientSession {
    dialect: Dialect,
    target: String,
    rtp_port: u16,
    state: State,
    cseq: u32,
    session: Option<String>,
    pending: Option<(Method, u32)>,
}

impl ClientSession {
    /// `target` is what goes in the request line (the lab sends the bare
    /// file name); `rtp_port` is the local UDP port RTP should come to.
    pub fn new(target: impl Into<String>, rtp_port: u16, dialect: Dialect) -> Self {
        ClientSession {
            dialect,
            target: target.into(),
            rtp_port,
            state: State::Init,
            cseq: 0,
            session: None,
            pending: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The CSeq of the last request built.
    pub fn last_cseq(&self) -> u32 {
        self.cseq
    }

    /// The request in flight, if any.
    pub fn pending(&self) -> Option<&Method> {
        self.pending.as_ref().map(|(m, _)| m)
    }

    /// Forget the request in flight (it was never answered).
    pub fn abandon_pending(&mut self) -> Option<Method> {
        self.pending.take().map(|(m, _)| m)
    }

    /// Build the next request for `method`, if the state allows it.
    pub fn request(&mut self, method: Method) -> Result<Request, ClientSessionError> {
        if let Some((m, _)) = &self.pending {
            return Err(ClientSessionError::Busy(m.to_string()));
        }
        if transition(self.state, &method).is_none()
            || (self.dialect == Dialect::Lab && !lab_client_allows(self.state, &method))
        {
            return Err(ClientSessionError::NotAllowed {
                method: method.to_string(),
                state: self.state,
            });
        }
        self.cseq += 1;
        let mut r = Request::new(method.clone(), self.target.clone(), self.dialect);
        r.headers.push("CSeq", self.cseq.to_string());
        if method == Method::Setup {
            let transport = match self.dialect {
                // Byte for byte what the lab's clients write.
                Dialect::Lab => format!("RTP/UDP; client_port= {}", self.rtp_port),
                Dialect::Standard => format!(
                    "RTP/AVP;unicast;client_port={}-{}",
                    self.rtp_port,
                    self.rtp_port.wrapping_add(1)
                ),
            };
            r.headers.push("Transport", transport);
        }
        if let Some(s) = &self.session {
            r.headers.push("Session", s.clone());
        }
        self.pending = Some((method, self.cseq));
        Ok(r)
    }

    /// Take a reply from the server.
    pub fn handle_response(&mut self, resp: &Response) -> ClientReply {
        let Some((method, cseq)) = self.pending.clone() else {
            return ClientReply::Unexpected;
        };
        if resp.headers.cseq().is_some_and(|c| c != cseq) {
            return ClientReply::Unexpected;
        }
        self.pending = None;
        if resp.status != 200 {
            return ClientReply::Failed {
                method,
                status: resp.status,
                reason: resp.reason.clone(),
            };
        }
        let from = self.state;
        let to = transition(from, &method).unwrap_or(from);
        if method == Method::Setup
            && let Some(id) = resp.headers.session()
        {
            self.session = Some(id.to_string());
        }
        if to == State::Init {
            self.session = None;
        }
        self.state = to;
        ClientReply::Done { method, from, to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtsp::Decoder;

    struct Host {
        files: Vec<&'static str>,
        next_id: u32,
    }

    impl ServerHost for Host {
        fn open(&mut self, path: &str) -> Result<(), String> {
            if self.files.contains(&path) {
                Ok(())
            } else {
                Err(format!("{path} does not exist"))
            }
        }
        fn new_session_id(&mut self) -> u32 {
            self.next_id += 1;
            self.next_id
        }
    }

    fn host() -> Host {
        Host {
            files: vec!["movie.Mjpeg"],
            next_id: 123455,
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

    fn sent(out: &[ServerOutput]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                ServerOutput::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
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
        assert!(
            out.iter()
                .any(|o| matches!(o, ServerOutput::Setup(s) if s.rtp_port == 25000))
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
        let mut c = ServerConnection::new(Duration::from_secs(10));
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

    #[test]
    fn client_and_server_agree() {
        let t = Instant::now();
        let mut server = ServerConnection::default();
        let mut client = ClientSession::new("movie.Mjpeg", 5008, Dialect::Lab);
        let mut h = host();
        for (m, want) in [
            (Method::Setup, State::Ready),
            (Method::Play, State::Playing),
            (Method::Pause, State::Ready),
            (Method::Teardown, State::Init),
        ] {
            let req = client.request(m).unwrap();
            server.handle_bytes(t, &req.to_bytes(), &mut h);
            server.handle_timeout(t + LAB_QUIET, &mut h);
            let reply = std::iter::from_fn(|| server.poll_output())
                .find_map(|o| match o {
                    ServerOutput::Send(b) => Some(b),
                    _ => None,
                })
                .unwrap();
            let mut d = Decoder::new();
            d.push(&reply);
            let Some(Ok(Message::Response(resp))) = d.poll(true) else {
                panic!("no reply")
            };
            assert!(
                matches!(client.handle_response(&resp), ClientReply::Done { to, .. } if to == want)
            );
            assert_eq!(server.state(), want);
        }
        assert!(client.request(Method::Play).is_err());
    }

    #[test]
    fn lab_client_sends_only_what_moves_the_state() {
        let mut c = ClientSession::new("movie.Mjpeg", 5008, Dialect::Lab);
        assert!(c.request(Method::Pause).is_err());
        let setup = c.request(Method::Setup).unwrap();
        let mut ok = Response::new(200, Dialect::Lab);
        ok.headers
            .push("CSeq", setup.headers.cseq().unwrap().to_string());
        ok.headers.push("Session", "123456");
        c.handle_response(&ok);
        assert_eq!(c.state(), State::Ready);
        assert!(c.request(Method::Pause).is_err(), "PAUSE in READY");
        assert!(c.request(Method::Setup).is_err(), "SETUP in READY");
        assert!(c.request(Method::Teardown).is_ok());
    }

    #[test]
    fn lab_client_writes_exact_bytes() {
        let mut c = ClientSession::new("movie.Mjpeg", 25000, Dialect::Lab);
        assert_eq!(
            c.request(Method::Setup).unwrap().to_bytes(),
            b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000"
        );
    }
}
