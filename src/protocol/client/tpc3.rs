//! TPC-3's client side (seed 000, "Lab 08 TPC-3"), sans I/O: the handshake
//! the assignment puts in place of RTSP, on one TCP connection, and the
//! phases the window draws.
//!
//! Connect opens the connection and sends the file name and the UDP data
//! port (`movie.Mjpeg 25000`); the server answers a session id, the SSRC
//! every datagram must then carry, or `-1` when it has no such file; Go
//! starts the transfer, which lasts until the file ends (no datagram for a
//! while) or the server closes the connection. Stop closes the connection,
//! which is how the assignment's server learns to stop sending.
//!
//! [`Tpc3Client`] acts through the RTSP client's [`ClientHost`] and reports
//! its [`Event`]s, so the engine, the probe and the window drive both the
//! same way. Its phases map onto the session states the rest of the
//! program knows (no session id yet: INIT; the session id held: READY;
//! after Go: PLAYING), and [`Event::Tpc3`] tells the phase itself.

use std::time::Instant;

use super::{
    ClientCommand, ClientError, ClientHost, Direction, ENDED_AFTER, Event, MediaRoute,
    NO_MEDIA_AFTER, REPLY_TIMEOUT, StreamInfo,
};
use crate::protocol::State;
use crate::protocol::server::LAB_QUIET;
use crate::protocol::tpc3::{self, NO_SUCH_FILE, NotANumber};

/// Where the handshake is, in the assignment's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tpc3Phase {
    /// Not connected yet: Connect sends the file name and port.
    #[default]
    NotConnected,
    /// Setup phase: the name and port went; the answer is awaited.
    NameSent,
    /// Setup phase: the session id came; Go starts the transfer.
    SessionId,
    /// Setup phase: Go went; the first datagram is awaited.
    GoSent,
    /// Transfer phase: datagrams arrive.
    Receiving,
    /// The file ended, the server closed, it had no such file, or Stop.
    Ended,
}

impl Tpc3Phase {
    /// Every phase, in the order a transfer goes through them.
    pub const ALL: [Tpc3Phase; 6] = [
        Tpc3Phase::NotConnected,
        Tpc3Phase::NameSent,
        Tpc3Phase::SessionId,
        Tpc3Phase::GoSent,
        Tpc3Phase::Receiving,
        Tpc3Phase::Ended,
    ];

    /// The phase's name, as the window draws it.
    pub fn name(self) -> &'static str {
        match self {
            Tpc3Phase::NotConnected => "Not connected",
            Tpc3Phase::NameSent => "Name and port sent",
            Tpc3Phase::SessionId => "Session id received",
            Tpc3Phase::GoSent => "Go sent",
            Tpc3Phase::Receiving => "Receiving",
            Tpc3Phase::Ended => "Ended",
        }
    }

    /// Which of the assignment's two phases this belongs to, if either.
    pub fn stage(self) -> Option<&'static str> {
        match self {
            Tpc3Phase::NameSent | Tpc3Phase::SessionId | Tpc3Phase::GoSent => Some("Setup phase"),
            Tpc3Phase::Receiving => Some("Transfer phase"),
            Tpc3Phase::NotConnected | Tpc3Phase::Ended => None,
        }
    }

    /// The session state the rest of the program sees: READY holds a
    /// session id, PLAYING is after Go.
    pub fn state(self) -> State {
        match self {
            Tpc3Phase::NotConnected | Tpc3Phase::NameSent | Tpc3Phase::Ended => State::Init,
            Tpc3Phase::SessionId => State::Ready,
            Tpc3Phase::GoSent | Tpc3Phase::Receiving => State::Playing,
        }
    }
}

/// The client's side of one TPC-3 handshake and transfer at a time.
#[derive(Debug)]
pub struct Tpc3Client {
    file: String,
    phase: Tpc3Phase,
    /// The answer as it arrives: a server may send it without a newline,
    /// and then a moment's quiet ends it.
    answer: Vec<u8>,
    last_bytes: Option<Instant>,
    /// When the name and port went (the answer is overdue after
    /// [`REPLY_TIMEOUT`]).
    sent_at: Option<Instant>,
    go_at: Option<Instant>,
    last_packet: Option<Instant>,
    no_media_told: bool,
    session: Option<u32>,
    /// The session id as text, for [`Tpc3Client::session_text`].
    session_text: Option<String>,
    /// The local UDP port named in the request.
    port: u16,
}

impl Tpc3Client {
    pub fn new(file: impl Into<String>) -> Self {
        Tpc3Client {
            file: file.into(),
            phase: Tpc3Phase::NotConnected,
            answer: Vec::new(),
            last_bytes: None,
            sent_at: None,
            go_at: None,
            last_packet: None,
            no_media_told: false,
            session: None,
            session_text: None,
            port: 0,
        }
    }

    pub fn phase(&self) -> Tpc3Phase {
        self.phase
    }

    pub fn state(&self) -> State {
        self.phase.state()
    }

    /// The session id the server gave, while the handshake holds one.
    pub fn session_id(&self) -> Option<u32> {
        self.session
    }

    /// [`Tpc3Client::session_id`] as the server wrote it.
    pub fn session_text(&self) -> Option<&str> {
        self.session_text.as_deref()
    }

    /// The user pressed a button: SETUP is Connect, PLAY is Go, TEARDOWN
    /// is Stop; TPC-3 has no pause and no seek.
    pub fn command(&mut self, now: Instant, cmd: ClientCommand, host: &mut impl ClientHost) {
        match cmd {
            ClientCommand::Setup => self.connect(now, host),
            ClientCommand::Play => self.go(now, host),
            ClientCommand::Teardown | ClientCommand::Shutdown => self.stop(host),
            // No request is sent in the wrong phase: there is no server
            // state machine to show, only a connection to misuse.
            ClientCommand::Force(f) => self.command(now, f.command(), host),
            ClientCommand::Pause => host.event(Event::Error(ClientError::Other(
                "TPC-3 has no pause: the server sends the whole file once Go is sent. \
                 Stop ends the transfer."
                    .into(),
            ))),
            ClientCommand::PlayFrom { .. } => host.event(Event::Error(ClientError::Other(
                "TPC-3 cannot seek: the server sends the file from its first frame.".into(),
            ))),
        }
    }

    /// Connect: a new connection, the UDP port opened, the file name and
    /// port sent.
    fn connect(&mut self, now: Instant, host: &mut impl ClientHost) {
        if !matches!(self.phase, Tpc3Phase::NotConnected | Tpc3Phase::Ended) {
            return host.event(Event::Error(ClientError::Other(
                "already connected: press Stop first to ask again".into(),
            )));
        }
        // The last transfer's port may still be draining; a new one starts
        // with fresh checks.
        host.close_media();
        if let Err(e) = host.connect() {
            return host.event(Event::Error(e));
        }
        let port = match host.open_media(MediaRoute::Udp { pair: false }) {
            Ok(port) => port,
            Err(e) => {
                host.disconnect();
                return host.event(Event::Error(e));
            }
        };
        self.port = port;
        self.answer.clear();
        self.last_bytes = None;
        self.go_at = None;
        self.last_packet = None;
        self.no_media_told = false;
        self.set_session(None, host);
        let request = tpc3::request(&self.file, port);
        if host.send(&request).is_err() {
            return self.handle_closed(now, host);
        }
        host.event(Event::Wire {
            direction: Direction::Sent,
            bytes: request,
        });
        self.sent_at = Some(now);
        self.set_phase(Tpc3Phase::NameSent, host);
    }

    /// Go: the server may start sending.
    fn go(&mut self, now: Instant, host: &mut impl ClientHost) {
        if self.phase != Tpc3Phase::SessionId {
            return host.event(Event::Error(ClientError::Other(
                "Go needs a session id: press Connect first, and wait for the server's answer"
                    .into(),
            )));
        }
        // Before Go goes: the owner forgets the last datagram's time on
        // PlaySent, and the first datagrams may follow Go at once.
        host.event(Event::PlaySent);
        self.go_at = Some(now);
        self.last_packet = None;
        if host.send(tpc3::GO).is_err() {
            return self.handle_closed(now, host);
        }
        host.event(Event::Wire {
            direction: Direction::Sent,
            bytes: tpc3::GO.to_vec(),
        });
        self.set_phase(Tpc3Phase::GoSent, host);
        self.state_event(host);
    }

    /// Stop: closing the connection is what tells the server to stop.
    fn stop(&mut self, host: &mut impl ClientHost) {
        if matches!(self.phase, Tpc3Phase::NotConnected | Tpc3Phase::Ended) {
            return;
        }
        host.disconnect();
        host.close_media();
        self.end(host);
    }

    /// Bytes from the connection.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8], host: &mut impl ClientHost) {
        if self.phase != Tpc3Phase::NameSent {
            // Nothing more is asked of the server; show what it says anyway.
            if !bytes.is_empty() {
                host.event(Event::Wire {
                    direction: Direction::Received,
                    bytes: bytes.to_vec(),
                });
            }
            return;
        }
        self.answer.extend_from_slice(bytes);
        self.last_bytes = Some(now);
        if self.answer.contains(&b'\n') || self.answer.len() > tpc3::MAX_REQUEST {
            self.take_answer(host);
        }
    }

    /// The answer is whole: a session id, `-1`, or something else.
    fn take_answer(&mut self, host: &mut impl ClientHost) {
        let end = self
            .answer
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.answer.len(), |p| p + 1);
        let raw: Vec<u8> = self.answer.drain(..end).collect();
        let rest = std::mem::take(&mut self.answer);
        self.last_bytes = None;
        self.sent_at = None;
        host.event(Event::Wire {
            direction: Direction::Received,
            bytes: raw.clone(),
        });
        if !rest.is_empty() {
            host.event(Event::Wire {
                direction: Direction::Received,
                bytes: rest,
            });
        }
        let error = match tpc3::parse_answer(&raw) {
            Ok(id) if id > 0 && id <= i64::from(u32::MAX) => {
                let id = id as u32;
                self.set_session(Some(id), host);
                self.set_phase(Tpc3Phase::SessionId, host);
                return self.state_event(host);
            }
            Ok(NO_SUCH_FILE) => ClientError::NoSuchFile {
                file: self.file.clone(),
            },
            Ok(id) => ClientError::NotASessionId { id },
            Err(NotANumber(answer)) => ClientError::Tpc3Answer { answer },
        };
        host.event(Event::Error(error));
        // The server closes after -1; nothing more can happen here.
        host.disconnect();
        host.close_media();
        self.end(host);
    }

    /// The server closed the connection (or writing to it failed).
    pub fn handle_closed(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.datagrams_seen(host);
        if self.phase == Tpc3Phase::NameSent && !self.answer.is_empty() {
            // An answer without a newline, and then the end.
            self.take_answer(host);
        }
        let before = match self.phase {
            Tpc3Phase::NotConnected | Tpc3Phase::Ended => return,
            Tpc3Phase::NameSent => Some("before answering the file name and port"),
            Tpc3Phase::SessionId => Some("before Go"),
            Tpc3Phase::GoSent => Some("after Go, before sending any datagram"),
            // The assignment's server may close when the file ends.
            Tpc3Phase::Receiving => None,
        };
        host.disconnect();
        match before {
            Some(during) => {
                host.close_media();
                host.event(Event::Error(ClientError::Tpc3Closed { during }));
            }
            None => {
                // The last datagrams may still be on their way to the
                // player: the UDP port stays open until the next Connect.
                self.last_packet = Some(now);
                host.event(Event::StreamEnded);
            }
        }
        self.end(host);
    }

    /// When the last datagram arrived, as the receiving side saw it; the
    /// next [`Tpc3Client::handle_timeout`] tells the phase it makes.
    pub fn media_seen(&mut self, last_packet: Option<Instant>) {
        if !matches!(self.phase, Tpc3Phase::GoSent | Tpc3Phase::Receiving) {
            return;
        }
        // Only datagrams after Go count: the receiver's clock is shared
        // with the previous transfer's port until it closes.
        self.last_packet = last_packet.filter(|t| self.go_at.is_none_or(|g| *t >= g));
    }

    /// The first datagram after Go came: the Transfer phase.
    fn datagrams_seen(&mut self, host: &mut impl ClientHost) {
        if self.phase == Tpc3Phase::GoSent && self.last_packet.is_some() {
            self.set_phase(Tpc3Phase::Receiving, host);
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |d: Instant| d.min(t)));
        if self.phase == Tpc3Phase::NameSent {
            if let Some(t) = self.last_bytes {
                at(t + LAB_QUIET);
            }
            if let Some(t) = self.sent_at {
                at(t + REPLY_TIMEOUT);
            }
        }
        match (self.phase, self.go_at, self.last_packet) {
            (Tpc3Phase::GoSent, _, Some(t)) => at(t),
            (Tpc3Phase::GoSent, Some(g), _) if !self.no_media_told => at(g + NO_MEDIA_AFTER),
            (Tpc3Phase::Receiving, _, Some(t)) => at(t + ENDED_AFTER),
            _ => {}
        }
        d
    }

    /// Time passed: an answer without a newline is whole, an answer that
    /// does not come, a transfer that does not start or has ended.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut impl ClientHost) {
        if self.phase == Tpc3Phase::NameSent {
            if self.last_bytes.is_some_and(|t| now >= t + LAB_QUIET) {
                self.take_answer(host);
            } else if self.sent_at.is_some_and(|t| now >= t + REPLY_TIMEOUT) {
                host.event(Event::Error(ClientError::NoReply {
                    method: "the file name and port".into(),
                    seconds: REPLY_TIMEOUT.as_secs(),
                }));
                host.disconnect();
                host.close_media();
                self.end(host);
            }
            return;
        }
        self.datagrams_seen(host);
        match (self.phase, self.go_at, self.last_packet) {
            (Tpc3Phase::GoSent, Some(g), _) if !self.no_media_told && now >= g + NO_MEDIA_AFTER => {
                self.no_media_told = true;
                host.event(Event::Error(ClientError::NoMedia {
                    seconds: NO_MEDIA_AFTER.as_secs(),
                    port: self.port,
                }));
            }
            (Tpc3Phase::Receiving, _, Some(t)) if now >= t + ENDED_AFTER => {
                // The file has ended. The assignment's server may wait for
                // the client to close; closing is the client's goodbye.
                host.event(Event::StreamEnded);
                host.disconnect();
                self.end(host);
            }
            _ => {}
        }
    }

    /// Ended, whatever the reason: no session any more.
    fn end(&mut self, host: &mut impl ClientHost) {
        self.sent_at = None;
        self.answer.clear();
        self.last_bytes = None;
        let had_state = self.state() != State::Init;
        self.set_session(None, host);
        self.set_phase(Tpc3Phase::Ended, host);
        if had_state {
            self.state_event(host);
        }
    }

    fn set_session(&mut self, id: Option<u32>, host: &mut impl ClientHost) {
        self.session = id;
        self.session_text = id.map(|i| i.to_string());
        // The receiver refuses every datagram whose SSRC is not this.
        host.stream_info(StreamInfo {
            ssrc: id,
            ..StreamInfo::default()
        });
    }

    fn set_phase(&mut self, phase: Tpc3Phase, host: &mut impl ClientHost) {
        if self.phase != phase {
            self.phase = phase;
            host.event(Event::Tpc3(phase));
        }
    }

    fn state_event(&self, host: &mut impl ClientHost) {
        host.event(Event::State {
            state: self.state(),
            session: self.session_text.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Records what the client asked of its host.
    #[derive(Default)]
    struct Recorder {
        connects: usize,
        disconnects: usize,
        sent: Vec<Vec<u8>>,
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
                    addr: "127.0.0.1:1".into(),
                    reason: "refused".into(),
                });
            }
            Ok(())
        }
        fn disconnect(&mut self) {
            self.disconnects += 1;
        }
        fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.sent.push(bytes.to_vec());
            Ok(())
        }
        fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
            self.media.push(route);
            Ok(25000)
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
            7
        }
    }

    impl Recorder {
        fn phases(&self) -> Vec<Tpc3Phase> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Tpc3(p) => Some(*p),
                    _ => None,
                })
                .collect()
        }
        fn errors(&self) -> Vec<String> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Error(e) => Some(e.to_string()),
                    _ => None,
                })
                .collect()
        }
        fn wire(&self) -> Vec<(Direction, Vec<u8>)> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Wire { direction, bytes } => Some((*direction, bytes.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    /// Connected, the name and port sent.
    fn connected() -> (Tpc3Client, Recorder, Instant) {
        let mut c = Tpc3Client::new("movie.Mjpeg");
        let mut h = Recorder::default();
        let t = Instant::now();
        c.command(t, ClientCommand::Setup, &mut h);
        (c, h, t)
    }

    #[test]
    fn the_whole_handshake_and_a_transfer() {
        let (mut c, mut h, t) = connected();
        assert_eq!(h.connects, 1);
        assert_eq!(h.media, vec![MediaRoute::Udp { pair: false }]);
        assert_eq!(h.sent, vec![b"movie.Mjpeg 25000\n".to_vec()]);
        assert_eq!(c.phase(), Tpc3Phase::NameSent);
        assert_eq!(c.state(), State::Init);
        // The answer may come in pieces.
        c.handle_bytes(t, b"4242", &mut h);
        assert_eq!(c.phase(), Tpc3Phase::NameSent);
        c.handle_bytes(t, b"42\n", &mut h);
        assert_eq!(c.phase(), Tpc3Phase::SessionId);
        assert_eq!(c.session_id(), Some(424_242));
        assert_eq!(h.info.map(|i| i.ssrc), Some(Some(424_242)), "SSRC rule");
        assert!(h.events.contains(&Event::State {
            state: State::Ready,
            session: Some("424242".into())
        }));
        c.command(t, ClientCommand::Play, &mut h);
        assert_eq!(h.sent.last().map(Vec::as_slice), Some(&b"Go\n"[..]));
        assert_eq!(c.state(), State::Playing);
        assert!(h.events.contains(&Event::PlaySent));
        let t1 = t + Duration::from_millis(50);
        c.media_seen(Some(t1));
        assert_eq!(c.poll_timeout(), Some(t1), "the phase moves at once");
        c.handle_timeout(t1, &mut h);
        assert_eq!(c.phase(), Tpc3Phase::Receiving);
        assert_eq!(c.poll_timeout(), Some(t1 + ENDED_AFTER));
        c.handle_timeout(t1 + ENDED_AFTER, &mut h);
        assert_eq!(c.phase(), Tpc3Phase::Ended);
        assert!(h.events.contains(&Event::StreamEnded));
        assert_eq!(c.state(), State::Init);
        assert_eq!(h.disconnects, 1, "the client says goodbye by closing");
        assert_eq!(
            h.phases(),
            vec![
                Tpc3Phase::NameSent,
                Tpc3Phase::SessionId,
                Tpc3Phase::GoSent,
                Tpc3Phase::Receiving,
                Tpc3Phase::Ended
            ]
        );
        assert_eq!(
            h.wire(),
            vec![
                (Direction::Sent, b"movie.Mjpeg 25000\n".to_vec()),
                (Direction::Received, b"424242\n".to_vec()),
                (Direction::Sent, b"Go\n".to_vec()),
            ]
        );
        assert!(h.errors().is_empty(), "{:?}", h.errors());
        // And again, on a fresh connection.
        c.command(t1 + ENDED_AFTER, ClientCommand::Setup, &mut h);
        assert_eq!((h.connects, c.phase()), (2, Tpc3Phase::NameSent));
    }

    #[test]
    fn minus_one_is_said_in_words() {
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"-1\n", &mut h);
        assert_eq!(
            h.errors(),
            vec![
                "the server has no file named movie.Mjpeg (it answered -1). Check the file \
                 name: it is case-sensitive."
                    .to_string()
            ]
        );
        assert_eq!(c.phase(), Tpc3Phase::Ended);
        assert_eq!(c.session_id(), None);
        assert_eq!((h.disconnects, h.closed_media), (1, 2));
    }

    #[test]
    fn an_answer_that_is_not_a_number_is_a_clear_error() {
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"RTSP/1.0 400 Bad Request\r\n\r\n", &mut h);
        let errors = h.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("\"RTSP/1.0 400 Bad Request\"")
                && errors[0].contains("not a number"),
            "{errors:?}"
        );
        assert_eq!(c.phase(), Tpc3Phase::Ended);
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"0\n", &mut h);
        assert!(h.errors()[0].contains("0, which is not a session id"));
        assert_eq!(c.phase(), Tpc3Phase::Ended);
    }

    #[test]
    fn an_answer_without_a_newline_ends_with_a_moment_of_quiet() {
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"123456", &mut h);
        assert_eq!(c.poll_timeout(), Some(t + LAB_QUIET));
        c.handle_timeout(t + LAB_QUIET - Duration::from_millis(1), &mut h);
        assert_eq!(c.phase(), Tpc3Phase::NameSent);
        c.handle_timeout(t + LAB_QUIET, &mut h);
        assert_eq!(c.session_id(), Some(123_456));
        // Or with the end of the connection.
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"-1", &mut h);
        c.handle_closed(t, &mut h);
        assert_eq!(h.errors().len(), 1, "{:?}", h.errors());
        assert!(h.errors()[0].contains("no file named movie.Mjpeg"));
    }

    #[test]
    fn no_answer_and_no_datagrams_are_told() {
        let (mut c, mut h, t) = connected();
        assert_eq!(c.poll_timeout(), Some(t + REPLY_TIMEOUT));
        c.handle_timeout(t + REPLY_TIMEOUT, &mut h);
        assert!(h.errors()[0].contains("did not answer the file name and port"));
        assert_eq!(c.phase(), Tpc3Phase::Ended);

        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"77\n", &mut h);
        c.command(t, ClientCommand::Play, &mut h);
        // A datagram from before Go is not the transfer.
        c.media_seen(Some(t - Duration::from_millis(1)));
        c.handle_timeout(t, &mut h);
        assert_eq!(c.phase(), Tpc3Phase::GoSent);
        c.handle_timeout(t + NO_MEDIA_AFTER, &mut h);
        assert!(h.errors()[0].contains("UDP port 25000"), "{:?}", h.errors());
        assert_eq!(c.phase(), Tpc3Phase::GoSent, "it may still come");
    }

    #[test]
    fn stop_closes_the_connection_and_a_closed_one_ends_the_transfer() {
        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"77\n", &mut h);
        c.command(t, ClientCommand::Teardown, &mut h);
        assert_eq!((h.disconnects, c.phase()), (1, Tpc3Phase::Ended));
        assert!(h.events.contains(&Event::State {
            state: State::Init,
            session: None
        }));
        assert!(h.errors().is_empty());

        let (mut c, mut h, t) = connected();
        c.handle_bytes(t, b"77\n", &mut h);
        c.command(t, ClientCommand::Play, &mut h);
        // The datagrams and the end together: a transfer, not a failure.
        c.media_seen(Some(t));
        c.handle_closed(t, &mut h);
        assert_eq!(c.phase(), Tpc3Phase::Ended);
        assert!(h.events.contains(&Event::StreamEnded));
        assert_eq!(h.closed_media, 1, "the last datagrams may still come");
        assert!(h.errors().is_empty());

        let (mut c, mut h, t) = connected();
        c.handle_closed(t, &mut h);
        assert_eq!(
            h.errors(),
            vec![
                "the server closed the TPC-3 connection before answering the file name and port"
                    .to_string()
            ]
        );
    }

    #[test]
    fn buttons_out_of_their_phase_say_why() {
        let mut c = Tpc3Client::new("movie.Mjpeg");
        let mut h = Recorder::default();
        let t = Instant::now();
        c.command(t, ClientCommand::Play, &mut h);
        c.command(t, ClientCommand::Pause, &mut h);
        assert!(h.errors()[0].contains("press Connect first"));
        assert!(h.errors()[1].contains("no pause"));
        assert!(h.sent.is_empty());
        h.refuse_connect = true;
        c.command(t, ClientCommand::Setup, &mut h);
        assert_eq!(c.phase(), Tpc3Phase::NotConnected);
        assert!(h.media.is_empty(), "no port opened without a connection");
    }
}
