//! The server side of one RTSP connection, sans I/O: bytes and time in,
//! replies and media actions out. It speaks both dialects, chosen per
//! request by what arrives: the lab's (bare LF, a file name as target, one
//! client port) and RFC 2326 as ffmpeg, GStreamer and VLC speak it
//! (OPTIONS, DESCRIBE with SDP, SETUP over UDP or interleaved in the RTSP
//! connection, PLAY with Range and RTP-Info, GET_PARAMETER keep-alives,
//! sessions that time out).

mod target;
#[cfg(test)]
pub(crate) mod tests;
mod types;

pub use crate::protocol::timeline::{BadRange, parse_npt_start};
pub use target::{TargetError, resolve_target};
pub use types::*;

use target::strip_track_control;

use std::collections::VecDeque;
use std::time::Instant;

use crate::protocol::State;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use crate::protocol::sdp::Offer;
use crate::protocol::session::transition;
use crate::protocol::transport::{Lower, Transport};

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
        if req.method != Method::Options
            && let Access::Refused {
                challenges,
                why,
                hold,
            } = host.authorize(req.method.as_str(), req.headers.get("Authorization"))
        {
            let mut r = self.reply(&req, 401, Some(why));
            for c in challenges {
                r.headers.push("WWW-Authenticate", c);
            }
            if !hold.is_zero() {
                self.out.push_back(ServerOutput::Hold(hold));
            }
            self.out.push_back(ServerOutput::Send(r.to_bytes()));
            return;
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
            live: info.live,
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
            let range = if info.live {
                // RFC 2326 C.1.5: a live stream plays from now, whatever
                // start was asked.
                "npt=now-".to_string()
            } else {
                format!("npt={:.3}-{end}", info.start)
            };
            r.headers.push("Range", range);
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
        if self.state == State::Ready || (start.is_some() && !info.live) {
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
