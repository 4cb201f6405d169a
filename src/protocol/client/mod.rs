//! The client side of an RTSP conversation, sans I/O: which request goes
//! next (OPTIONS -> DESCRIBE -> SETUP -> PLAY ...), answering a 401 once,
//! keep-alive before the session times out, telling a lab server from a
//! standard one, and switching RTP from UDP to TCP when UDP brings nothing.
//!
//! [`ClientConnection`] takes bytes, commands and the time as arguments and
//! acts through a [`ClientHost`] that owns the sockets (`net::client` in the
//! program, a recorder in the tests). It never reads a clock or touches a
//! socket itself, so every timing rule here is tested without waiting.
//!
//! Its parts: `types` (what owner and client say to each other), `auth`,
//! `describe` (what replies teach), `fallback` (every timing rule),
//! `anyway` (requests sent whatever the state, for students) and `tpc3`
//! (seed 000's handshake in place of RTSP, which the connection hands
//! everything to when [`DialectChoice::Tpc3`] is chosen).

mod anyway;
mod auth;
mod describe;
mod fallback;
#[cfg(test)]
mod tests;
mod tpc3;
mod types;

use std::time::Instant;

use crate::protocol::State;
use crate::protocol::auth::Challenge;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Response};
use crate::protocol::session::{ClientReply, ClientSession};
use crate::protocol::timeline::Timeline;

pub use fallback::{
    AUTO_OPTIONS_WAIT, ENDED_AFTER, NO_MEDIA_AFTER, REPLY_TIMEOUT, UDP_FALLBACK_AFTER,
};
pub use tpc3::{Tpc3Client, Tpc3Phase};
pub use types::*;

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
    /// Sent whatever the state (and so sent again that way after a 401).
    anyway: bool,
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
    /// When bytes last came that have not been read as a quiet (lab)
    /// message yet; None once they were, so that bytes which stay
    /// unreadable (half a line) do not keep the quiet deadline in the past.
    last_bytes: Option<Instant>,
    play_sent: Option<Instant>,
    last_packet: Option<Instant>,
    no_media_told: bool,
    ended_told: bool,
    /// RTP moved to TCP by itself during this session.
    switched: bool,
    timeline: Timeline,
    /// A request sent anyway, waiting for its reply.
    anyway: Option<anyway::Anyway>,
    /// The session carries only a request sent anyway in INIT.
    scratch: bool,
    /// TPC-3 chosen: it speaks instead of everything above.
    tpc3: Option<Tpc3Client>,
}

impl ClientConnection {
    pub fn new(config: ClientConfig) -> Self {
        let base_url = config.url().request_url();
        ClientConnection {
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
            anyway: None,
            scratch: false,
            tpc3: (config.dialect == DialectChoice::Tpc3)
                .then(|| Tpc3Client::new(config.file.clone())),
            config,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        if let Some(t) = &self.tpc3 {
            return t.state();
        }
        self.session.as_ref().map_or(State::Init, |s| s.state())
    }

    /// The session id the server gave, while a session exists.
    pub fn session_id(&self) -> Option<&str> {
        if let Some(t) = &self.tpc3 {
            return t.session_text();
        }
        self.session.as_ref().and_then(|s| s.session())
    }

    /// The TPC-3 handshake, when that is what this connection speaks.
    pub fn tpc3(&self) -> Option<&Tpc3Client> {
        self.tpc3.as_ref()
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
        if let Some(t) = &self.tpc3 {
            return t.session_id().is_some();
        }
        self.session.is_some()
    }

    /// The stream's length and where the last PLAY started.
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// Connect at once, as the lab's client does when it starts.
    /// (TPC-3 connects on Connect: its server reads the request as soon
    /// as the connection opens.)
    pub fn start(&mut self, host: &mut impl ClientHost) {
        if self.tpc3.is_none() {
            self.ensure_connected(host);
        }
    }

    /// The user pressed a button.
    pub fn command(&mut self, now: Instant, cmd: ClientCommand, host: &mut impl ClientHost) {
        if let Some(t) = self.tpc3.as_mut() {
            return t.command(now, cmd, host);
        }
        if cmd == ClientCommand::Shutdown {
            return self.command(now, ClientCommand::Teardown, host);
        }
        if let ClientCommand::Force(forced) = cmd {
            return self.force(now, forced, host);
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
                    // (TPC-3 never gets here: it answered above.)
                    DialectChoice::Standard | DialectChoice::Auto | DialectChoice::Tpc3 => {
                        Dialect::Standard
                    }
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
        if let Some(t) = self.tpc3.as_mut() {
            return t.handle_bytes(now, bytes, host);
        }
        self.decoder.push(bytes);
        self.last_bytes = Some(now);
        self.read_messages(now, false, host);
    }

    /// The server closed the RTSP connection (or writing to it failed).
    pub fn handle_closed(&mut self, now: Instant, host: &mut impl ClientHost) {
        if let Some(t) = self.tpc3.as_mut() {
            return t.handle_closed(now, host);
        }
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
        self.anyway = None;
        self.scratch = false;
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
        if let Some(t) = self.tpc3.as_mut() {
            return t.media_seen(last_packet);
        }
        self.last_packet = last_packet;
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

    /// Build, authorise, send and log one request.
    fn send_request(
        &mut self,
        now: Instant,
        method: Method,
        url: String,
        range: Option<String>,
        host: &mut impl ClientHost,
    ) {
        self.send(now, method, url, range, false, host);
    }

    /// [`Self::send_request`]; `anyway` sends it whatever the state.
    fn send(
        &mut self,
        now: Instant,
        method: Method,
        url: String,
        range: Option<String>,
        anyway: bool,
        host: &mut impl ClientHost,
    ) {
        if !anyway {
            // A request of the client's own replaces one sent anyway (TEARDOWN
            // may abandon it): its reply must not be taken for the other's.
            self.anyway = None;
        }
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
        let built = if anyway {
            session.request_anyway(method.clone(), &url)
        } else {
            session.request_to(method.clone(), &url)
        };
        let mut request = match built {
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
            anyway,
        });
        host.event(Event::Wire {
            direction: Direction::Sent,
            bytes: shown.unwrap_or(bytes),
        });
        // A PLAY sent anyway starts nothing the client waits for.
        if method == Method::Play && !anyway {
            self.play_sent = Some(now);
            self.last_packet = None;
            self.no_media_told = false;
            self.ended_told = false;
            host.event(Event::PlaySent);
        }
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
        self.take_response(now, resp, host);
        self.end_scratch();
    }

    fn take_response(&mut self, now: Instant, resp: &Response, host: &mut impl ClientHost) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.handle_response(resp) {
            ClientReply::Done { method, to, .. } => {
                self.sent_at = None;
                self.anyway_answered(resp.status, &resp.reason, host);
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
                    self.anyway = None;
                    ClientError::Auth {
                        had_credentials: self.config.user.is_some(),
                    }
                } else if let Some(e) = self.anyway_answered(status, &reason, host) {
                    e
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
}
