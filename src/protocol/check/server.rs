//! `check server` as a state machine: it plays a lab client against the
//! student's server (SETUP, PLAY for a few seconds, PAUSE, PLAY again,
//! TEARDOWN, then SETUP of a file that is not there; in TPC-3 the
//! handshake, a full transfer and a missing file), watches what comes back
//! on the control connection and on the RTP port, and decides every check.
//!
//! Sans-IO in the str0m manner: the runner gives it bytes, datagrams and
//! the time (`handle_*`), drains [`ServerChecker::poll_output`], and waits
//! until [`ServerChecker::poll_timeout`] or the next input.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use super::checks::{CheckDialect, CheckId, CheckResult, Report};
use super::packets::{JpegCheck, PacketChecks};
use super::{Note, WireEntry};
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use crate::protocol::tpc3;

/// The file asked for to see how a missing one is answered.
pub const MISSING_FILE: &str = "streamlab-check-no-such-file.Mjpeg";
/// How long the peer must be quiet before a reply without a terminator
/// (the lab's, TPC-3's) counts as complete.
const QUIET: Duration = Duration::from_millis(80);
/// The handout's frame period (20 frames per second).
const PERIOD: Duration = Duration::from_millis(50);
/// How soon media must follow PLAY (or Go).
const START_WITHIN: Duration = Duration::from_secs(1);
/// A TPC-3 transfer is over when nothing came for this long.
const TRANSFER_QUIET: Duration = Duration::from_millis(1500);

/// How a server check runs.
#[derive(Debug, Clone)]
pub struct ServerCheckConfig {
    pub dialect: CheckDialect,
    /// The server, as the requests name it (standard dialect's URL).
    pub host: String,
    pub port: u16,
    /// The file asked for.
    pub file: String,
    /// The UDP port named in SETUP (or the TPC-3 request).
    pub rtp_port: u16,
    /// How long the first PLAY runs before PAUSE.
    pub play_for: Duration,
    /// How long the second PLAY runs before TEARDOWN.
    pub resume_for: Duration,
    /// How long to watch for packets after PAUSE and after TEARDOWN.
    pub watch_after: Duration,
    /// How long a reply may take.
    pub reply_timeout: Duration,
    /// TPC-3: how long to wait after the session id before sending Go.
    pub go_delay: Duration,
    /// TPC-3: the longest transfer watched.
    pub transfer_limit: Duration,
    /// Decodes a JPEG payload (`rtp.payload`), if given.
    pub decode: Option<JpegCheck>,
}

impl ServerCheckConfig {
    pub fn new(dialect: CheckDialect, host: &str, port: u16, file: &str, rtp_port: u16) -> Self {
        ServerCheckConfig {
            dialect,
            host: host.to_string(),
            port,
            file: file.to_string(),
            rtp_port,
            play_for: Duration::from_secs(3),
            resume_for: Duration::from_secs(1),
            watch_after: Duration::from_millis(700),
            reply_timeout: Duration::from_secs(2),
            go_delay: Duration::from_millis(500),
            transfer_limit: Duration::from_secs(60),
            decode: None,
        }
    }
}

/// Where a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivedAt {
    /// The port the client named.
    Named,
    /// Another port the checker listens on (the RTSP connection's own
    /// port number: where `sendto(clientAddr)` sends).
    Other(u16),
}

/// What the checker asks of its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutput {
    /// Write these bytes to the control connection.
    Send(Vec<u8>),
    /// Close the control connection and open a new one to the same
    /// server, then call [`ServerChecker::handle_connected`].
    Reconnect,
    /// A line for the wire log.
    Wire(WireEntry),
    /// Every check is decided: take [`ServerChecker::report`].
    Done,
}

/// Where the session is; each step waits for one reply or one deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Setup,
    Play,
    Playing,
    Pause,
    Paused,
    Resume,
    Resumed,
    Teardown,
    TornDown,
    /// Waiting for the second connection.
    Reconnecting,
    NotFound,
    // TPC-3.
    Hello,
    BeforeGo,
    Transfer,
    Missing,
    Done,
}

/// A reply (or its absence) to one request.
#[derive(Debug, Clone)]
struct ReplyRecord {
    method: &'static str,
    cseq: u32,
    raw: Option<Vec<u8>>,
    response: Option<Response>,
    /// Why there is no reply.
    missing: Option<String>,
}

/// One datagram, as the behaviour checks need it.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    /// Which window it fell in: 0 before PLAY (or Go), 1 first PLAY (or
    /// the transfer), 2 after PAUSE, 3 after the second PLAY, 4 after
    /// TEARDOWN.
    window: u8,
    seq: u16,
    ts: u32,
    payload: u64,
}

/// The checker. See the module documentation.
#[derive(Debug)]
pub struct ServerChecker {
    cfg: ServerCheckConfig,
    step: Step,
    deadline: Option<Instant>,
    decoder: Decoder,
    quiet_at: Option<Instant>,
    /// TPC-3 lines arrive raw.
    line: Vec<u8>,
    cseq: u32,
    awaiting: Option<(&'static str, u32)>,
    session: Option<String>,
    replies: Vec<ReplyRecord>,
    not_found: Option<ReplyRecord>,
    out: VecDeque<CheckOutput>,
    packets: PacketChecks,
    arrivals: Vec<Arrival>,
    window: u8,
    new_run: bool,
    elsewhere: Option<(u16, u64)>,
    named: u64,
    /// When PLAY, PAUSE, the second PLAY, TEARDOWN (or Go) were sent.
    sent_at: [Option<Instant>; 5],
    /// When their replies came: from then on the server has surely read
    /// the request (a frame it sent while the request was on its way is
    /// no fault).
    answered_at: [Option<Instant>; 5],
    tpc3_id: Option<Result<i64, String>>,
    tpc3_missing: Option<Result<i64, String>>,
    finished: bool,
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

impl ServerChecker {
    /// A checker whose control connection is open at `now`.
    pub fn new(now: Instant, cfg: ServerCheckConfig) -> Self {
        let packets = PacketChecks::new(cfg.dialect, cfg.decode);
        let mut c = ServerChecker {
            step: Step::Setup,
            deadline: None,
            decoder: Decoder::new(),
            quiet_at: None,
            line: Vec::new(),
            cseq: 0,
            awaiting: None,
            session: None,
            replies: Vec::new(),
            not_found: None,
            out: VecDeque::new(),
            packets,
            arrivals: Vec::new(),
            window: 0,
            new_run: false,
            elsewhere: None,
            named: 0,
            sent_at: [None; 5],
            answered_at: [None; 5],
            tpc3_id: None,
            tpc3_missing: None,
            finished: false,
            cfg,
        };
        if c.cfg.dialect == CheckDialect::Tpc3 {
            c.step = Step::Hello;
            let hello = tpc3::request(&c.cfg.file, c.cfg.rtp_port);
            c.send_bytes(now, hello);
        } else {
            c.request(now, Method::Setup, &c.cfg.file.clone());
        }
        c
    }

    fn dialect(&self) -> Dialect {
        if self.cfg.dialect == CheckDialect::Standard {
            Dialect::Standard
        } else {
            Dialect::Lab
        }
    }

    fn target(&self, file: &str) -> String {
        match self.cfg.dialect {
            CheckDialect::Standard => format!("rtsp://{}:{}/{file}", self.cfg.host, self.cfg.port),
            _ => file.to_string(),
        }
    }

    fn method_name(m: &Method) -> &'static str {
        match m {
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            _ => "OPTIONS",
        }
    }

    fn request(&mut self, now: Instant, method: Method, file: &str) {
        self.cseq += 1;
        let name = Self::method_name(&method);
        let mut r = Request::new(method, self.target(file), self.dialect());
        r.headers.push("CSeq", self.cseq.to_string());
        if name == "SETUP" {
            let transport = match self.cfg.dialect {
                CheckDialect::Standard => format!(
                    "RTP/AVP;unicast;client_port={}-{}",
                    self.cfg.rtp_port,
                    self.cfg.rtp_port.wrapping_add(1)
                ),
                _ => format!("RTP/UDP; client_port= {}", self.cfg.rtp_port),
            };
            r.headers.push("Transport", transport);
        } else if let Some(s) = &self.session {
            r.headers.push("Session", s.clone());
        }
        let bytes = r.to_bytes();
        self.wire(now, true, &bytes, Vec::new());
        self.out.push_back(CheckOutput::Send(bytes));
        self.awaiting = Some((name, self.cseq));
        self.deadline = Some(now + self.cfg.reply_timeout);
    }

    fn send_bytes(&mut self, now: Instant, bytes: Vec<u8>) {
        self.wire(now, true, &bytes, Vec::new());
        self.out.push_back(CheckOutput::Send(bytes));
        self.deadline = Some(now + self.cfg.reply_timeout);
    }

    fn wire(&mut self, at: Instant, sent: bool, bytes: &[u8], notes: Vec<Note>) {
        self.out.push_back(CheckOutput::Wire(WireEntry {
            at,
            sent,
            text: String::from_utf8_lossy(bytes).into_owned(),
            notes,
        }));
    }

    /// The second control connection is open (after [`CheckOutput::Reconnect`]).
    pub fn handle_connected(&mut self, now: Instant) {
        if self.step != Step::Reconnecting {
            return;
        }
        self.decoder = Decoder::new();
        self.line.clear();
        self.quiet_at = None;
        if self.cfg.dialect == CheckDialect::Tpc3 {
            self.step = Step::Missing;
            self.send_bytes(now, tpc3::request(MISSING_FILE, self.cfg.rtp_port));
        } else {
            self.step = Step::NotFound;
            // A fresh connection counts CSeq from 1 again. The session
            // SETUP gave stays: `rtsp.session` is judged by it at the end.
            self.cseq = 0;
            self.request(now, Method::Setup, MISSING_FILE);
        }
    }

    /// The second connection could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, why: &str) {
        if self.step == Step::Reconnecting {
            self.step = if self.cfg.dialect == CheckDialect::Tpc3 {
                Step::Missing
            } else {
                Step::NotFound
            };
            self.awaiting = Some(("SETUP", 1));
            self.no_reply(now, format!("could not connect again: {why}"));
        }
    }

    /// Bytes from the control connection.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.cfg.dialect == CheckDialect::Tpc3 {
            self.line.extend_from_slice(bytes);
            if self.line.contains(&b'\n') {
                self.take_line(now);
            } else {
                self.quiet_at = Some(now + QUIET);
            }
            return;
        }
        self.decoder.push(bytes);
        self.drain_decoder(now, false);
        self.quiet_at = (self.decoder.pending() > 0).then_some(now + QUIET);
    }

    /// The server closed the control connection.
    pub fn handle_closed(&mut self, now: Instant) {
        if self.cfg.dialect == CheckDialect::Tpc3 {
            if !self.line.is_empty() {
                self.take_line(now);
            }
        } else {
            self.drain_decoder(now, true);
        }
        match self.step {
            Step::Hello | Step::Missing => self.no_reply(
                now,
                "the server closed the connection without an answer".into(),
            ),
            Step::BeforeGo | Step::Transfer | Step::Done | Step::Reconnecting => {}
            _ if self.awaiting.is_some() => {
                self.no_reply(now, "the server closed the connection instead".into())
            }
            Step::NotFound => {}
            _ => {
                // Closed in the middle of the session: nothing more can
                // be asked on this connection.
                self.replies.push(ReplyRecord {
                    method: "the session",
                    cseq: self.cseq,
                    raw: None,
                    response: None,
                    missing: Some("the server closed the connection".into()),
                });
                self.reconnect(now);
            }
        }
    }

    /// A datagram on one of the checker's UDP ports.
    pub fn handle_rtp(&mut self, now: Instant, port: ArrivedAt, bytes: &[u8]) {
        match port {
            ArrivedAt::Named => self.named += 1,
            ArrivedAt::Other(p) => {
                let e = self.elsewhere.get_or_insert((p, 0));
                e.1 += 1;
            }
        }
        self.packets.packet(bytes, self.new_run);
        self.new_run = false;
        let (seq, ts) = match bytes.first_chunk::<12>() {
            Some(h) => (
                u16::from_be_bytes([h[2], h[3]]),
                u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ),
            None => (0, 0),
        };
        self.arrivals.push(Arrival {
            at: now,
            window: self.window,
            seq,
            ts,
            payload: hash(bytes.get(12..).unwrap_or_default()),
        });
        if self.step == Step::Transfer {
            self.deadline = Some(now + TRANSFER_QUIET);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.quiet_at.is_some_and(|q| now >= q) {
            self.quiet_at = None;
            if self.cfg.dialect == CheckDialect::Tpc3 {
                self.take_line(now);
            } else {
                self.drain_decoder(now, true);
            }
        }
        let Some(d) = self.deadline else {
            return;
        };
        if now < d {
            return;
        }
        self.deadline = None;
        match self.step {
            Step::Playing => self.advance(now, Step::Pause),
            Step::Paused => self.advance(now, Step::Resume),
            Step::Resumed => self.advance(now, Step::Teardown),
            Step::TornDown => self.reconnect(now),
            Step::BeforeGo => {
                self.sent_at[0] = Some(now);
                self.window = 1;
                self.send_bytes(now, tpc3::GO.to_vec());
                self.step = Step::Transfer;
                self.deadline = Some(now + START_WITHIN + TRANSFER_QUIET);
            }
            Step::Transfer => self.reconnect(now),
            Step::Done | Step::Reconnecting => {}
            _ => {
                let t = self.cfg.reply_timeout;
                self.no_reply(now, format!("no reply within {}", ms(t)));
            }
        }
        // A transfer that never ends is cut at the limit.
        if self.step == Step::Transfer
            && let Some(go) = self.sent_at[0]
            && now >= go + self.cfg.transfer_limit
        {
            self.reconnect(now);
        }
    }

    pub fn poll_output(&mut self) -> Option<CheckOutput> {
        self.out.pop_front()
    }

    /// When to call [`ServerChecker::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = [self.deadline, self.quiet_at];
        if self.step == Step::Transfer
            && let Some(go) = self.sent_at[0]
        {
            t[1] = Some(t[1].map_or(go + self.cfg.transfer_limit, |q| {
                q.min(go + self.cfg.transfer_limit)
            }));
        }
        t.into_iter().flatten().min()
    }

    pub fn is_done(&self) -> bool {
        self.finished
    }

    fn drain_decoder(&mut self, now: Instant, quiet: bool) {
        while let Some(m) = self.decoder.poll(quiet) {
            let raw = self.decoder.last_raw().to_vec();
            match m {
                Ok(Message::Response(r)) => self.reply(now, raw, Some(r)),
                Ok(_) => self.wire(now, false, &raw, Vec::new()),
                Err(e) => {
                    // Unreadable: still the reply this step waited for.
                    let raw = format!("(unreadable: {e})").into_bytes();
                    self.reply(now, raw, None)
                }
            }
        }
    }

    fn reply(&mut self, now: Instant, raw: Vec<u8>, response: Option<Response>) {
        let Some((method, cseq)) = self.awaiting.take() else {
            self.wire(now, false, &raw, Vec::new());
            return;
        };
        self.deadline = None;
        let record = ReplyRecord {
            method,
            cseq,
            raw: Some(raw.clone()),
            response,
            missing: None,
        };
        let notes = self.reply_notes(&record);
        self.wire(now, false, &raw, notes);
        let status = record.response.as_ref().map(|r| r.status);
        if self.step == Step::NotFound {
            self.not_found = Some(record);
            self.finish();
            return;
        }
        if self.step == Step::Setup {
            self.session = record
                .response
                .as_ref()
                .and_then(|r| r.headers.session())
                .map(str::to_string);
        }
        self.replies.push(record);
        match self.step {
            Step::Setup if status == Some(200) && self.session.is_some() => {
                self.advance(now, Step::Play)
            }
            Step::Setup => self.reconnect(now),
            Step::Play => {
                self.step = Step::Playing;
                self.deadline = Some(self.sent_at[0].unwrap_or(now) + self.cfg.play_for);
            }
            Step::Pause => {
                self.step = Step::Paused;
                self.answered_at[1] = Some(now);
                self.deadline = Some(now + self.cfg.watch_after);
            }
            Step::Resume => {
                self.step = Step::Resumed;
                self.deadline = Some(self.sent_at[2].unwrap_or(now) + self.cfg.resume_for);
            }
            Step::Teardown => {
                self.step = Step::TornDown;
                self.answered_at[3] = Some(now);
                self.deadline = Some(now + self.cfg.watch_after);
            }
            _ => {}
        }
    }

    /// The notes a reply gets in the wire log.
    fn reply_notes(&self, r: &ReplyRecord) -> Vec<Note> {
        let mut notes = Vec::new();
        if let Some(e) = status_line_error(r, self.cfg.dialect, self.step == Step::NotFound) {
            notes.push(Note::fail(CheckId::RtspStatusLine, e));
        } else {
            notes.push(Note::pass(CheckId::RtspStatusLine, "status line"));
        }
        match cseq_error(r) {
            Some(e) => notes.push(Note::fail(CheckId::RtspCseq, e)),
            None => notes.push(Note::pass(CheckId::RtspCseq, "CSeq echoed")),
        }
        if self.step != Step::NotFound {
            let setup = if self.step == Step::Setup {
                None
            } else {
                self.session.as_deref()
            };
            match session_error(r, setup) {
                Some(e) => notes.push(Note::fail(CheckId::RtspSession, e)),
                None => notes.push(Note::pass(CheckId::RtspSession, "Session")),
            }
        }
        // The order rule is the handout's sample interaction, all 200s;
        // `rtsp.line_order` judges those replies only.
        if self.cfg.dialect == CheckDialect::Lab && self.step != Step::NotFound {
            match line_order_error(r) {
                Some(e) => notes.push(Note::fail(CheckId::RtspLineOrder, e)),
                None => notes.push(Note::pass(CheckId::RtspLineOrder, "line order")),
            }
        }
        notes
    }

    fn no_reply(&mut self, now: Instant, why: String) {
        self.deadline = None;
        match self.step {
            Step::Hello => {
                self.tpc3_id = Some(Err(why));
                self.reconnect(now);
            }
            Step::Missing => {
                self.tpc3_missing = Some(Err(why));
                self.finish();
            }
            _ => {
                let (method, cseq) = self.awaiting.take().unwrap_or(("SETUP", self.cseq));
                let record = ReplyRecord {
                    method,
                    cseq,
                    raw: None,
                    response: None,
                    missing: Some(why),
                };
                if self.step == Step::NotFound {
                    self.not_found = Some(record);
                    self.finish();
                    return;
                }
                self.replies.push(record);
                match self.step {
                    // Without a session nothing else can be asked; PLAY,
                    // PAUSE and TEARDOWN go on, as a lab client's buttons
                    // would, so that the media checks still see what the
                    // server does.
                    Step::Setup => self.reconnect(now),
                    Step::Play => {
                        self.step = Step::Playing;
                        self.deadline = Some(self.sent_at[0].unwrap_or(now) + self.cfg.play_for);
                    }
                    Step::Pause => {
                        self.step = Step::Paused;
                        self.deadline = Some(now + self.cfg.watch_after);
                    }
                    Step::Resume => {
                        self.step = Step::Resumed;
                        self.deadline = Some(now + self.cfg.resume_for);
                    }
                    Step::Teardown => self.reconnect(now),
                    _ => {}
                }
            }
        }
    }

    fn advance(&mut self, now: Instant, step: Step) {
        self.step = step;
        let file = self.cfg.file.clone();
        match step {
            Step::Play => {
                self.sent_at[0] = Some(now);
                self.window = 1;
                self.request(now, Method::Play, &file);
            }
            Step::Pause => {
                self.sent_at[1] = Some(now);
                self.window = 2;
                self.request(now, Method::Pause, &file);
            }
            Step::Resume => {
                self.sent_at[2] = Some(now);
                self.window = 3;
                self.new_run = true;
                self.request(now, Method::Play, &file);
            }
            Step::Teardown => {
                self.sent_at[3] = Some(now);
                self.window = 4;
                self.request(now, Method::Teardown, &file);
            }
            _ => {}
        }
    }

    fn reconnect(&mut self, _now: Instant) {
        self.awaiting = None;
        self.deadline = None;
        self.step = Step::Reconnecting;
        if self.window < 4 && self.cfg.dialect != CheckDialect::Tpc3 {
            self.window = 4;
        }
        self.out.push_back(CheckOutput::Reconnect);
    }

    fn finish(&mut self) {
        self.step = Step::Done;
        self.deadline = None;
        self.quiet_at = None;
        if !self.finished {
            self.finished = true;
            self.out.push_back(CheckOutput::Done);
        }
    }

    fn take_line(&mut self, now: Instant) {
        let end = self
            .line
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.line.len(), |p| p + 1);
        let raw: Vec<u8> = self.line.drain(..end).collect();
        self.quiet_at = None;
        let parsed = tpc3::parse_answer(&raw).map_err(|e| e.to_string());
        match self.step {
            Step::Hello => {
                let note = match &parsed {
                    Ok(id) if *id > 0 => Note::pass(CheckId::Tpc3SessionId, "a session id"),
                    Ok(id) => Note::fail(CheckId::Tpc3SessionId, format!("{id} for a file it has")),
                    Err(e) => Note::fail(CheckId::Tpc3SessionId, e.clone()),
                };
                self.wire(now, false, &raw, vec![note]);
                if let Ok(id) = parsed
                    && id > 0
                {
                    self.packets.set_session_id(id as u32);
                    self.tpc3_id = Some(Ok(id));
                    self.step = Step::BeforeGo;
                    self.deadline = Some(now + self.cfg.go_delay);
                } else {
                    self.tpc3_id = Some(parsed);
                    self.reconnect(now);
                }
            }
            Step::Missing => {
                let note = match &parsed {
                    Ok(-1) => Note::pass(CheckId::Tpc3MissingFile, "-1"),
                    Ok(v) => Note::fail(CheckId::Tpc3MissingFile, format!("{v}, not -1")),
                    Err(e) => Note::fail(CheckId::Tpc3MissingFile, e.clone()),
                };
                self.wire(now, false, &raw, vec![note]);
                self.tpc3_missing = Some(parsed);
                self.finish();
            }
            _ => self.wire(now, false, &raw, Vec::new()),
        }
    }

    /// Every check's verdict. Complete once [`CheckOutput::Done`] came out;
    /// before that, what is known so far.
    pub fn report(&self) -> Report {
        let dialect = self.cfg.dialect;
        let checks = CheckId::server_checks(dialect)
            .into_iter()
            .map(|id| {
                let (ok, seen, packet) = self.verdict(id);
                CheckResult {
                    id,
                    ok,
                    seen,
                    expected: id.expected(dialect),
                    packet,
                }
            })
            .collect();
        Report { checks }
    }

    fn verdict(&self, id: CheckId) -> (bool, String, Option<Vec<u8>>) {
        use CheckId::*;
        let yes = |s: String| (true, s, None);
        let no = |s: String| (false, s, None);
        let real: Vec<&ReplyRecord> = self.replies.iter().filter(|r| r.raw.is_some()).collect();
        let first_fail = |f: &dyn Fn(&ReplyRecord) -> Option<String>, what: &str| {
            if real.is_empty() {
                return no(self.no_replies_said());
            }
            match real.iter().find_map(|r| f(r)) {
                Some(e) => no(e),
                None => yes(format!("{what} in all {} replies", real.len())),
            }
        };
        match id {
            RtspStatusLine => {
                let missing = self.replies.iter().find_map(|r| {
                    r.missing
                        .as_ref()
                        .map(|m| format!("{} (CSeq {}): {m}", r.method, r.cseq))
                });
                if let Some(m) = missing {
                    return no(m);
                }
                first_fail(
                    &|r| status_line_error(r, self.cfg.dialect, false),
                    "`RTSP/1.0 200 OK`",
                )
            }
            RtspCseq => first_fail(&cseq_error, "the request's CSeq"),
            RtspSession => {
                let id = self.session.clone();
                first_fail(
                    &move |r| {
                        let setup = if r.method == "SETUP" {
                            None
                        } else {
                            id.as_deref()
                        };
                        session_error(r, setup)
                    },
                    "the same Session",
                )
            }
            RtspLineOrder => first_fail(&line_order_error, "status, CSeq, Session in this order"),
            RtspNotFound => match &self.not_found {
                None => no("not reached".into()),
                Some(ReplyRecord {
                    missing: Some(m), ..
                }) => no(format!("SETUP {MISSING_FILE}: {m}")),
                Some(r) => match r.response.as_ref().map(|r| r.status) {
                    Some(404) => yes(format!("SETUP {MISSING_FILE}: 404")),
                    Some(s) => no(format!("SETUP {MISSING_FILE} was answered {s}")),
                    None => no(format!("SETUP {MISSING_FILE}: an unreadable reply")),
                },
            },
            Tpc3SessionId => match &self.tpc3_id {
                None => no("not reached".into()),
                Some(Ok(id)) if *id > 0 => yes(format!("session id {id} for {}", self.cfg.file)),
                Some(Ok(id)) => no(format!(
                    "answered {id} for {}, a file it should have",
                    self.cfg.file
                )),
                Some(Err(e)) => no(format!("asked for {}: {e}", self.cfg.file)),
            },
            Tpc3MissingFile => match &self.tpc3_missing {
                None => no("not reached".into()),
                Some(Ok(-1)) => yes(format!("-1 for {MISSING_FILE}")),
                Some(Ok(v)) => no(format!(
                    "answered {v} for {MISSING_FILE}, a file it does not have"
                )),
                Some(Err(e)) => no(format!("asked for {MISSING_FILE}: {e}")),
            },
            Tpc3Go => {
                let early = self.arrivals.iter().filter(|a| a.window == 0).count();
                if self.tpc3_id.as_ref().is_none_or(|r| r.is_err()) {
                    no("not reached: no session id came".into())
                } else if early > 0 {
                    no(format!(
                        "{early} datagrams came before Go (waited {} after the session id)",
                        ms(self.cfg.go_delay)
                    ))
                } else {
                    yes(format!(
                        "nothing in the {} before Go",
                        ms(self.cfg.go_delay)
                    ))
                }
            }
            RtpVersion | RtpPadding | RtpExtension | RtpCc | RtpMarker | RtpPayloadType
            | RtpSequence | RtpTimestamp | RtpSsrc | RtpPayload => {
                if self.packets.count() == 0 {
                    return no("no RTP packet came".into());
                }
                match self.packets.offence(id) {
                    Some(o) => (false, o.seen.clone(), Some(o.packet.clone())),
                    None => yes(self.packets.summary(id)),
                }
            }
            RtpDestination => match self.elsewhere {
                Some((p, n)) => no(format!(
                    "{n} packets came to port {p}, the RTSP connection's own port (sendto the client's TCP address?), not to the named port {}",
                    self.cfg.rtp_port
                )),
                None if self.named == 0 => no(format!(
                    "nothing came to the named port {}",
                    self.cfg.rtp_port
                )),
                None => yes(format!(
                    "{} packets to port {}",
                    self.named, self.cfg.rtp_port
                )),
            },
            PlayStarts => {
                let (what, sent) = if self.cfg.dialect == CheckDialect::Tpc3 {
                    ("Go", self.sent_at[0])
                } else {
                    ("PLAY", self.sent_at[0])
                };
                let Some(sent) = sent else {
                    return no(format!("not reached: {what} was never sent"));
                };
                match self.arrivals.iter().find(|a| a.at >= sent) {
                    Some(a) if a.at - sent <= START_WITHIN => {
                        yes(format!("the first packet {} after {what}", ms(a.at - sent)))
                    }
                    Some(a) => no(format!(
                        "the first packet came {} after {what}",
                        ms(a.at - sent)
                    )),
                    None => no(format!("nothing came after {what}")),
                }
            }
            RtpRate => self.rate(),
            PauseStops => self.stops(2, "PAUSE", self.sent_at[1], self.answered_at[1]),
            TeardownStops => self.stops(4, "TEARDOWN", self.sent_at[3], self.answered_at[3]),
            PlayResumes => self.resumes(),
            ReqLine | ReqCseq | ReqTransport | ReqNoTransport | ReqSession | ReqState
            | RtpPortOpen | ClientTeardown | Tpc3Request => no("a client check".into()),
        }
    }

    fn no_replies_said(&self) -> String {
        self.replies
            .iter()
            .find_map(|r| r.missing.as_ref().map(|m| format!("{}: {m}", r.method)))
            .unwrap_or_else(|| "no reply came".into())
    }

    fn rate(&self) -> (bool, String, Option<Vec<u8>>) {
        let run: Vec<&Arrival> = self.arrivals.iter().filter(|a| a.window == 1).collect();
        // Standard servers cut a frame into packets sharing a timestamp.
        let frames: Vec<&Arrival> = if self.cfg.dialect == CheckDialect::Standard {
            let mut v: Vec<&Arrival> = Vec::new();
            for a in run {
                if v.last().is_none_or(|l| l.ts != a.ts) {
                    v.push(a);
                }
            }
            v
        } else {
            run
        };
        if frames.len() < 3 {
            return (
                false,
                format!(
                    "{} frames in the first PLAY: too few to measure",
                    frames.len()
                ),
                None,
            );
        }
        // The period is the slope of arrival time over frame index (least
        // squares), so one frame held up at either end by a busy machine
        // does not move it much; the drift is where the last frame came
        // against the first's 50 ms schedule.
        let t: Vec<f64> = frames
            .iter()
            .map(|a| (a.at - frames[0].at).as_secs_f64())
            .collect();
        let n = t.len() as f64;
        let mean_i = (n - 1.0) / 2.0;
        let mean_t = t.iter().sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (i, ti) in t.iter().enumerate() {
            let di = i as f64 - mean_i;
            num += di * (ti - mean_t);
            den += di * di;
        }
        let period = num / den.max(1e-9);
        let fps = 1.0 / period.max(1e-6);
        let span = t[t.len() - 1];
        let drift = span - (n - 1.0) * PERIOD.as_secs_f64();
        let seen = format!(
            "{fps:.1} frames/s over {} frames in {span:.2} s; the last {:.0} ms {} a 50 ms schedule",
            frames.len(),
            drift.abs() * 1e3,
            if drift >= 0.0 { "behind" } else { "ahead of" }
        );
        ((18.0..=22.0).contains(&fps), seen, None)
    }

    fn stops(
        &self,
        window: u8,
        what: &str,
        sent: Option<Instant>,
        answered: Option<Instant>,
    ) -> (bool, String, Option<Vec<u8>>) {
        let Some(sent) = sent else {
            return (false, format!("not reached: {what} was never sent"), None);
        };
        // From the reply on (or from sending, with no reply).
        let from = answered.unwrap_or(sent);
        let after: Vec<&Arrival> = self
            .arrivals
            .iter()
            .filter(|a| a.window == window && a.at > from)
            .collect();
        match after.last() {
            None => (true, format!("nothing after {what}"), None),
            Some(_) if after.len() == 1 => (
                true,
                format!("one packet after {what}, already on its way"),
                None,
            ),
            Some(l) => (
                false,
                format!(
                    "{} packets after {what} was answered, the last {} after it was sent",
                    after.len(),
                    ms(l.at - sent)
                ),
                None,
            ),
        }
    }

    fn resumes(&self) -> (bool, String, Option<Vec<u8>>) {
        if self.sent_at[2].is_none() {
            return (
                false,
                "not reached: the second PLAY was never sent".into(),
                None,
            );
        }
        let Some(first) = self.arrivals.iter().find(|a| a.window == 3) else {
            return (false, "nothing came after the second PLAY".into(), None);
        };
        let before = self.arrivals.iter().rev().find(|a| a.window < 3);
        let start = self.arrivals.first().map(|a| a.payload);
        let last = before.map_or("none".to_string(), |b| b.seq.to_string());
        if Some(first.payload) == start {
            (
                false,
                format!(
                    "the first frame after PLAY (sequence {}) is the one the stream began with: it started over (last before PAUSE: sequence {last})",
                    first.seq
                ),
                None,
            )
        } else {
            (
                true,
                format!(
                    "went on with sequence {} after {last}, a new frame",
                    first.seq
                ),
                None,
            )
        }
    }
}

fn first_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .next()
        .unwrap_or("")
        .trim_end()
        .to_string()
}

fn status_line_error(r: &ReplyRecord, dialect: CheckDialect, not_found: bool) -> Option<String> {
    if let Some(m) = &r.missing {
        return Some(format!("{} (CSeq {}): {m}", r.method, r.cseq));
    }
    let raw = r.raw.as_deref().unwrap_or_default();
    let line = first_line(raw);
    if not_found {
        return None;
    }
    let good = match dialect {
        CheckDialect::Standard => line.starts_with("RTSP/1.0 200 "),
        _ => line == "RTSP/1.0 200 OK",
    };
    (!good).then(|| format!("reply to {} (CSeq {}) starts {line:?}", r.method, r.cseq))
}

fn cseq_error(r: &ReplyRecord) -> Option<String> {
    let resp = r.response.as_ref()?;
    match resp.headers.get("CSeq") {
        None => Some(format!(
            "reply to {} (CSeq {}) has no CSeq",
            r.method, r.cseq
        )),
        Some(v) if v.trim().parse::<u32>().ok() == Some(r.cseq) => None,
        Some(v) => Some(format!(
            "reply to {} (CSeq {}) says CSeq: {}",
            r.method,
            r.cseq,
            v.trim()
        )),
    }
}

fn session_error(r: &ReplyRecord, setup: Option<&str>) -> Option<String> {
    let resp = r.response.as_ref()?;
    match (resp.headers.session(), setup) {
        (None, _) => Some(format!(
            "reply to {} (CSeq {}) has no Session",
            r.method, r.cseq
        )),
        (Some(s), Some(id)) if s != id => Some(format!(
            "reply to {} (CSeq {}) says Session: {s}, SETUP's said {id}",
            r.method, r.cseq
        )),
        _ => None,
    }
}

fn line_order_error(r: &ReplyRecord) -> Option<String> {
    let raw = r.raw.as_deref()?;
    r.response.as_ref()?;
    let text = String::from_utf8_lossy(raw);
    let lines: Vec<&str> = text.lines().collect();
    let starts = |i: usize, name: &str| {
        lines.get(i).is_some_and(|l| {
            l.to_ascii_lowercase()
                .starts_with(&name.to_ascii_lowercase())
        })
    };
    if starts(1, "CSeq:") && starts(2, "Session:") {
        return None;
    }
    Some(format!(
        "reply to {} (CSeq {}): line 2 is {:?} and line 3 is {:?} (a lab client reads CSeq from line 2 and Session from line 3)",
        r.method,
        r.cseq,
        lines.get(1).map_or("", |l| l.trim_end()),
        lines.get(2).map_or("", |l| l.trim_end())
    ))
}

#[cfg(test)]
mod tests {
    //! The checker against a simulated lab server on a fake clock: a whole
    //! session in microseconds of real time.
    use super::*;

    const JPEG: &[u8] = &[0xff, 0xd8, 1, 2, 3, 0xff, 0xd9];

    fn rtp(seq: u16, b0: u8) -> Vec<u8> {
        let mut p = vec![b0, 26];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        // Frames differ in a byte inside the JPEG.
        p.extend_from_slice(&JPEG[..2]);
        p.push(seq as u8);
        p.extend_from_slice(&JPEG[2..]);
        p
    }

    /// Run a whole check against a lab server that answers every request
    /// at once and sends a frame every 50 ms while playing; `b0` is the
    /// first header byte it writes.
    fn simulate(b0: u8) -> Report {
        let mut now = Instant::now();
        let mut cfg = ServerCheckConfig::new(CheckDialect::Lab, "h", 1, "movie.Mjpeg", 5000);
        cfg.play_for = Duration::from_secs(1);
        let mut c = ServerChecker::new(now, cfg);
        let (mut playing, mut next_frame, mut seq) = (false, now, 0u16);
        for _ in 0..10_000 {
            while let Some(out) = c.poll_output() {
                match out {
                    CheckOutput::Send(req) => {
                        let text = String::from_utf8(req).unwrap();
                        let cseq = text
                            .lines()
                            .nth(1)
                            .unwrap()
                            .split(' ')
                            .nth(1)
                            .unwrap()
                            .to_string();
                        let status = if text.contains(MISSING_FILE) {
                            "404 Not Found"
                        } else {
                            "200 OK"
                        };
                        playing = match text.split(' ').next().unwrap() {
                            "PLAY" => true,
                            "PAUSE" | "TEARDOWN" => false,
                            _ => playing,
                        };
                        next_frame = now + PERIOD;
                        let reply = format!("RTSP/1.0 {status}\nCSeq: {cseq}\nSession: 123456");
                        c.handle_bytes(now, reply.as_bytes());
                    }
                    CheckOutput::Reconnect => c.handle_connected(now),
                    CheckOutput::Wire(_) => {}
                    CheckOutput::Done => return c.report(),
                }
            }
            // The next thing to happen: a frame, or the checker's timer.
            let timer = c.poll_timeout().expect("a running check has a timer");
            if playing && next_frame <= timer {
                now = next_frame;
                seq += 1;
                c.handle_rtp(now, ArrivedAt::Named, &rtp(seq, b0));
                next_frame += PERIOD;
            } else {
                now = timer;
                c.handle_timeout(now);
            }
        }
        panic!("the check never finished");
    }

    #[test]
    fn a_simulated_lab_server_passes_everything() {
        let r = simulate(0x80);
        assert_eq!(r.failures(), [], "{r:#?}");
        assert!(
            r.get(CheckId::RtpRate)
                .unwrap()
                .seen
                .starts_with("20.0 frames/s")
        );
    }

    #[test]
    fn a_simulated_v1_server_fails_only_rtp_version() {
        let r = simulate(0x40);
        assert_eq!(r.failures(), [CheckId::RtpVersion]);
        assert_eq!(
            r.get(CheckId::RtpVersion).unwrap().packet.as_ref().unwrap()[0],
            0x40
        );
    }
}
