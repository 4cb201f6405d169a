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

use crate::protocol::rtsp::{Dialect, Method, Request, Response};

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

/// Whether the client sends `method` in `state` of its own accord: what
/// the state machine allows, and in the lab's dialect only what moves the
/// state (see [`lab_client_allows`]).
pub fn client_allows(state: State, method: &Method, dialect: Dialect) -> bool {
    transition(state, method).is_some()
        && (dialect == Dialect::Standard || lab_client_allows(state, method))
}

/// Why `method` is not sent in `state`, in words for a student who sent it
/// anyway; None when the client sends it there.
pub fn why_not_allowed(state: State, method: &Method, dialect: Dialect) -> Option<&'static str> {
    if client_allows(state, method, dialect) {
        return None;
    }
    Some(match (method, state) {
        (Method::Play, State::Init) => "there is no session yet: SETUP makes one",
        (Method::Pause, State::Init) => "there is no session yet, so nothing plays",
        (Method::Teardown, State::Init) => "there is no session to end",
        (Method::Setup, State::Playing) => {
            "the session is playing: PAUSE or TEARDOWN it before setting it up again"
        }
        (Method::Setup, State::Ready) => "the lab's server sets a session up from INIT only",
        (Method::Play, State::Playing) => "the session already plays",
        (Method::Pause, State::Ready) => "the session is already paused",
        _ => "the state machine does not allow it",
    })
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
    /// Seconds the server keeps an idle session (`Session: id;timeout=N`).
    timeout: Option<u64>,
    /// The Transport value for SETUP, when not the default for the dialect.
    transport: Option<String>,
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
            timeout: None,
            transport: None,
            pending: None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Ask for this Transport in SETUP (e.g. `RTP/AVP/TCP;unicast;interleaved=0-1`).
    pub fn set_transport(&mut self, spec: impl Into<String>) {
        self.transport = Some(spec.into());
    }

    /// How long the server keeps the session without a request, if it said.
    pub fn session_timeout(&self) -> Option<u64> {
        self.timeout
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

    /// Build the next request for `method` to the session's target.
    pub fn request(&mut self, method: Method) -> Result<Request, ClientSessionError> {
        let target = self.target.clone();
        self.request_to(method, &target)
    }

    /// Build the next request for `method` to `url` (standard RTSP names
    /// the track URL in SETUP and the presentation URL elsewhere), if the
    /// state allows it.
    pub fn request_to(&mut self, method: Method, url: &str) -> Result<Request, ClientSessionError> {
        if self.pending.is_none() && !client_allows(self.state, &method, self.dialect) {
            return Err(ClientSessionError::NotAllowed {
                method: method.to_string(),
                state: self.state,
            });
        }
        self.request_anyway(method, url)
    }

    /// Build the next request for `method` to `url` whatever the state, as
    /// a student does to see what the server says (the state moves only as
    /// [`transition`] allows, whatever the reply). One request at a time
    /// still: a second would not know which reply is its own.
    pub fn request_anyway(
        &mut self,
        method: Method,
        url: &str,
    ) -> Result<Request, ClientSessionError> {
        if let Some((m, _)) = &self.pending {
            return Err(ClientSessionError::Busy(m.to_string()));
        }
        self.cseq += 1;
        let mut r = Request::new(method.clone(), url, self.dialect);
        r.headers.push("CSeq", self.cseq.to_string());
        if method == Method::Setup {
            let transport = match self.dialect {
                _ if self.transport.is_some() => self.transport.clone().unwrap_or_default(),
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
            self.timeout = resp.headers.get("Session").and_then(|v| {
                v.split(';')
                    .filter_map(|p| p.trim().strip_prefix("timeout="))
                    .find_map(|t| t.trim().parse().ok())
            });
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
    use crate::protocol::rtsp::{Decoder, Message};
    use crate::protocol::server::tests::host;
    use crate::protocol::server::{LAB_QUIET, ServerConnection, ServerOutput};
    use std::time::Instant;

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
    fn a_request_sent_anyway_moves_the_state_only_as_the_table_says() {
        let mut c = ClientSession::new("movie.Mjpeg", 5008, Dialect::Standard);
        assert!(c.request(Method::Play).is_err());
        let play = c.request_anyway(Method::Play, "movie.Mjpeg").unwrap();
        assert_eq!(play.headers.cseq(), Some(1));
        assert!(
            c.request_anyway(Method::Pause, "movie.Mjpeg").is_err(),
            "one at a time"
        );
        // Even a server that says yes does not make INIT play.
        let mut ok = Response::new(200, Dialect::Standard);
        ok.headers.push("CSeq", "1");
        assert!(matches!(
            c.handle_response(&ok),
            ClientReply::Done {
                from: State::Init,
                to: State::Init,
                ..
            }
        ));
        assert_eq!(c.state(), State::Init);
    }

    #[test]
    fn every_refusal_has_a_reason() {
        for state in [State::Init, State::Ready, State::Playing] {
            for method in [Method::Setup, Method::Play, Method::Pause, Method::Teardown] {
                for dialect in [Dialect::Lab, Dialect::Standard] {
                    let why = why_not_allowed(state, &method, dialect);
                    assert_eq!(
                        why.is_none(),
                        client_allows(state, &method, dialect),
                        "{method} in {state}"
                    );
                    assert_ne!(why, Some("the state machine does not allow it"));
                }
            }
        }
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
