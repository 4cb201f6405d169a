//! `check client` as a state machine: it reads what a student's client
//! sends (and, in the lab's RTSP, what the server answered), notes every
//! request against the handout, and decides the client checks when the
//! client disconnects. In the lab's RTSP Streamlab's own server does the
//! serving and this only watches; in TPC-3, which that server does not
//! speak yet, this machine also says what the server answers.
//!
//! Sans-IO: bytes and the time in, notes and (TPC-3) replies out.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::checks::{CheckDialect, CheckId, CheckResult, Report};
use super::{Note, WireEntry};
use crate::protocol::State;
use crate::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use crate::protocol::session::{client_allows, transition};

/// How long a client must be quiet before a request without a terminator
/// counts as complete (the server answers sooner; this only matters for
/// a request it did not answer).
const QUIET: Duration = Duration::from_millis(150);

/// What the client checker asks of its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// A line for the wire log.
    Wire(WireEntry),
    /// TPC-3: write these bytes to the client.
    Send(Vec<u8>),
    /// TPC-3: send the file as RTP to this UDP port (of the client's
    /// address), with this session id as SSRC.
    StartMedia { port: u16, session: u32 },
    /// The client is gone: take [`ClientChecker::report`].
    Done,
}

/// The first failure of a check, or how many times it held.
#[derive(Debug, Clone, Default)]
struct Tally {
    failure: Option<String>,
    passes: u32,
}

/// The checker. See the module documentation.
#[derive(Debug)]
pub struct ClientChecker {
    dialect: CheckDialect,
    /// TPC-3: the file names the runner can serve.
    files: Vec<String>,
    /// TPC-3: the session id to hand out.
    session_id: u32,
    decoder: Decoder,
    quiet_at: Option<Instant>,
    line: Vec<u8>,
    tallies: BTreeMap<CheckId, Tally>,
    out: VecDeque<ClientOutput>,
    /// The client's state as its replies have moved it.
    state: State,
    /// The last request waiting for its reply, and its method.
    pending: Option<Method>,
    last_cseq: Option<u32>,
    session: Option<String>,
    rtp_port: Option<u16>,
    requests: u32,
    teardown_sent: bool,
    played: bool,
    refused: u32,
    tpc3_step: u8,
    finished: bool,
}

impl ClientChecker {
    /// `files`: TPC-3's files (names a request may ask for); `session_id`:
    /// the id TPC-3 hands out.
    pub fn new(dialect: CheckDialect, files: Vec<String>, session_id: u32) -> Self {
        ClientChecker {
            dialect,
            files,
            session_id,
            decoder: Decoder::new(),
            quiet_at: None,
            line: Vec::new(),
            tallies: BTreeMap::new(),
            out: VecDeque::new(),
            state: State::Init,
            pending: None,
            last_cseq: None,
            session: None,
            rtp_port: None,
            requests: 0,
            teardown_sent: false,
            played: false,
            refused: 0,
            tpc3_step: 0,
            finished: false,
        }
    }

    fn note(&mut self, notes: &mut Vec<Note>, id: CheckId, result: Result<String, String>) {
        let t = self.tallies.entry(id).or_default();
        match result {
            Ok(text) => {
                t.passes += 1;
                notes.push(Note::pass(id, text));
            }
            Err(text) => {
                if t.failure.is_none() {
                    t.failure = Some(text.clone());
                }
                notes.push(Note::fail(id, text));
            }
        }
    }

    /// Bytes the client sent.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        if self.dialect == CheckDialect::Tpc3 {
            self.line.extend_from_slice(bytes);
            while let Some(p) = self.line.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.line.drain(..=p).collect();
                self.tpc3_line(now, raw);
            }
            self.quiet_at = (!self.line.is_empty()).then_some(now + QUIET);
            return;
        }
        self.decoder.push(bytes);
        self.drain(now, false);
        self.quiet_at = (self.decoder.pending() > 0).then_some(now + QUIET);
    }

    /// A reply the server sent (lab and standard RTSP).
    pub fn handle_sent(&mut self, now: Instant, bytes: &[u8]) {
        // The server answered, so what it read was a whole request.
        self.drain(now, true);
        self.quiet_at = None;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut d = Decoder::new();
        d.push(bytes);
        let reply: Option<Response> = match d.poll(true) {
            Some(Ok(Message::Response(r))) => Some(r),
            _ => None,
        };
        if let (Some(r), Some(method)) = (&reply, self.pending.take())
            && r.status == 200
        {
            // The one state table the server and client use.
            self.state = transition(self.state, &method).unwrap_or(self.state);
            match method {
                Method::Setup => {
                    self.session = r
                        .headers
                        .session()
                        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
                }
                Method::Play => self.played = true,
                _ => {}
            }
        }
        self.out.push_back(ClientOutput::Wire(WireEntry {
            at: now,
            sent: true,
            text,
            notes: Vec::new(),
        }));
    }

    /// An RTP send to the client's port was refused (ICMP port unreachable).
    pub fn handle_refused(&mut self, _now: Instant) {
        // After TEARDOWN the client may close its port at once, while a
        // frame is still on its way: that is no fault.
        if !self.teardown_sent {
            self.refused += 1;
        }
    }

    /// TPC-3: RTP went to the client's port (so `rtp.port_open` was tried).
    pub fn handle_media_sent(&mut self) {
        self.played = true;
    }

    /// The client closed the connection.
    pub fn handle_closed(&mut self, now: Instant) {
        if self.dialect == CheckDialect::Tpc3 {
            if !self.line.is_empty() {
                let raw = std::mem::take(&mut self.line);
                self.tpc3_line(now, raw);
            }
        } else {
            self.drain(now, true);
        }
        if !self.finished {
            self.finished = true;
            self.out.push_back(ClientOutput::Done);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.quiet_at.is_some_and(|q| now >= q) {
            self.quiet_at = None;
            if self.dialect == CheckDialect::Tpc3 {
                let raw = std::mem::take(&mut self.line);
                self.tpc3_line(now, raw);
            } else {
                self.drain(now, true);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.quiet_at
    }

    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.finished
    }

    fn drain(&mut self, now: Instant, quiet: bool) {
        while let Some(m) = self.decoder.poll(quiet) {
            let raw = self.decoder.last_raw().to_vec();
            match m {
                Ok(Message::Request(r)) => self.request(now, &raw, r),
                Ok(_) => {}
                Err(e) => {
                    let mut notes = Vec::new();
                    self.note(
                        &mut notes,
                        CheckId::ReqLine,
                        Err(format!("unreadable: {e}")),
                    );
                    self.out.push_back(ClientOutput::Wire(WireEntry {
                        at: now,
                        sent: false,
                        text: format!("(unreadable request: {e})"),
                        notes,
                    }));
                }
            }
        }
    }

    fn request(&mut self, now: Instant, raw: &[u8], r: Request) {
        self.requests += 1;
        let method = r.method.as_str().to_string();
        let mut notes = Vec::new();
        let text = String::from_utf8_lossy(raw).into_owned();
        let first = text.lines().next().unwrap_or("").trim_end().to_string();

        // req.line: METHOD FILE RTSP/1.0.
        let words: Vec<&str> = first.split(' ').collect();
        let known = matches!(
            r.method,
            Method::Setup | Method::Play | Method::Pause | Method::Teardown
        );
        let line = if words.len() == 3 && words[2] == "RTSP/1.0" && known {
            Ok(format!("{method} {} RTSP/1.0", words[1]))
        } else if !known {
            Err(format!(
                "{first:?}: {method} is none of SETUP, PLAY, PAUSE, TEARDOWN"
            ))
        } else {
            Err(format!("{first:?} is not `{method} FILE RTSP/1.0`"))
        };
        self.note(&mut notes, CheckId::ReqLine, line);

        // req.cseq: present, from 1, +1 per request.
        let cseq = match (r.headers.get("CSeq"), r.headers.cseq()) {
            (None, _) => Err(format!("{method} has no CSeq")),
            (Some(v), None) => Err(format!("{method} has CSeq {v:?}, not a number")),
            (Some(_), Some(c)) => {
                let want = self.last_cseq.map_or(1, |l| l + 1);
                let r = if c == want {
                    Ok(format!("CSeq {c}"))
                } else if self.last_cseq.is_none() {
                    Err(format!("the first request, {method}, has CSeq {c}, not 1"))
                } else {
                    Err(format!(
                        "{method} has CSeq {c} after {}: +1 per request gives {want}",
                        self.last_cseq.unwrap_or(0)
                    ))
                };
                self.last_cseq = Some(c);
                r
            }
        };
        self.note(&mut notes, CheckId::ReqCseq, cseq);

        // req.state: valid in the client's state, as its replies moved it.
        // The lab's state diagram: only what moves the state (a lab
        // server answers nothing else).
        let valid = client_allows(self.state, &r.method, Dialect::Lab);
        let state = if valid {
            Ok(format!("{method} in {}", self.state))
        } else {
            Err(format!("{method} sent in {}", self.state))
        };
        self.note(&mut notes, CheckId::ReqState, state);

        let transport = r.headers.get("Transport").map(str::to_string);
        if r.method == Method::Setup {
            let t = match &transport {
                None => Err("SETUP has no Transport header".to_string()),
                Some(t) => match lab_client_port(t) {
                    Some((port, spaced)) => {
                        self.rtp_port = Some(port);
                        if spaced {
                            Ok(format!("Transport: {t}"))
                        } else {
                            // The handout's own example has no space;
                            // the reference server needs one.
                            Ok(format!(
                                "Transport: {t} (as the handout's example; the lab's reference server reads the port as the 4th space-separated word and needs `client_port= {port}`)"
                            ))
                        }
                    }
                    None => Err(format!(
                        "Transport: {t} does not name `RTP/UDP; client_port= N`"
                    )),
                },
            };
            self.note(&mut notes, CheckId::ReqTransport, t);
        } else if known {
            let nt = match &transport {
                Some(t) => Err(format!("{method} carries Transport: {t}")),
                None => Ok(format!("no Transport on {method}")),
            };
            self.note(&mut notes, CheckId::ReqNoTransport, nt);
            let s = match (r.headers.session(), &self.session) {
                (None, _) => Err(format!("{method} has no Session header")),
                (Some(s), Some(id)) if s.trim() == id => Ok(format!("Session {s}")),
                (Some(s), Some(id)) => Err(format!(
                    "{method} has Session: {s}, SETUP's reply gave {id}"
                )),
                (Some(s), None) => Ok(format!("Session {s} (no session was given yet)")),
            };
            self.note(&mut notes, CheckId::ReqSession, s);
        }
        if r.method == Method::Teardown {
            self.teardown_sent = true;
        }
        self.pending = Some(r.method);
        self.out.push_back(ClientOutput::Wire(WireEntry {
            at: now,
            sent: false,
            text,
            notes,
        }));
    }

    fn tpc3_line(&mut self, now: Instant, raw: Vec<u8>) {
        let text = String::from_utf8_lossy(&raw).trim().to_string();
        let mut notes = Vec::new();
        match self.tpc3_step {
            0 => {
                self.tpc3_step = 1;
                let words: Vec<&str> = text.split_whitespace().collect();
                let port = words.get(1).and_then(|p| p.parse::<u16>().ok());
                let r = match (words.len(), port) {
                    (2, Some(p)) => {
                        self.rtp_port = Some(p);
                        Ok(format!("file {}, UDP port {p}", words[0]))
                    }
                    _ => Err(format!("{text:?} is not `FILE PORT`")),
                };
                let good = r.is_ok();
                self.note(&mut notes, CheckId::Tpc3Request, r);
                self.out.push_back(ClientOutput::Wire(WireEntry {
                    at: now,
                    sent: false,
                    text: String::from_utf8_lossy(&raw).into_owned(),
                    notes,
                }));
                let known = good && self.files.iter().any(|f| f == words[0]);
                let answer = if known {
                    format!("{}\n", self.session_id)
                } else {
                    "-1\n".to_string()
                };
                self.out.push_back(ClientOutput::Wire(WireEntry {
                    at: now,
                    sent: true,
                    text: answer.clone(),
                    notes: Vec::new(),
                }));
                self.out.push_back(ClientOutput::Send(answer.into_bytes()));
                if !known {
                    self.tpc3_step = 3;
                }
            }
            1 => {
                self.tpc3_step = 2;
                let r = if text == "Go" {
                    Ok("Go".to_string())
                } else {
                    Err(format!("{text:?}, where the handout's client sends \"Go\""))
                };
                let go = r.is_ok();
                self.note(&mut notes, CheckId::Tpc3Go, r);
                self.out.push_back(ClientOutput::Wire(WireEntry {
                    at: now,
                    sent: false,
                    text: String::from_utf8_lossy(&raw).into_owned(),
                    notes,
                }));
                if go && let Some(port) = self.rtp_port {
                    self.out.push_back(ClientOutput::StartMedia {
                        port,
                        session: self.session_id,
                    });
                }
            }
            _ => self.out.push_back(ClientOutput::Wire(WireEntry {
                at: now,
                sent: false,
                text: String::from_utf8_lossy(&raw).into_owned(),
                notes,
            })),
        }
    }

    /// Every client check's verdict (complete once the client is gone).
    pub fn report(&self) -> Report {
        let checks = CheckId::client_checks(self.dialect)
            .into_iter()
            .map(|id| {
                let (ok, seen) = self.verdict(id);
                CheckResult {
                    id,
                    ok,
                    seen,
                    expected: id.expected(self.dialect),
                    packet: None,
                }
            })
            .collect();
        Report { checks }
    }

    fn verdict(&self, id: CheckId) -> (bool, String) {
        let port = self
            .rtp_port
            .map_or("the named port".to_string(), |p| format!("port {p}"));
        match id {
            CheckId::RtpPortOpen if self.refused > 0 => (
                false,
                format!(
                    "{} RTP sends to {port} were refused (ICMP port unreachable): nothing was listening there",
                    self.refused
                ),
            ),
            CheckId::RtpPortOpen if self.played => {
                (true, format!("RTP to {port} was taken, never refused"))
            }
            CheckId::RtpPortOpen => (
                true,
                "not tried: no RTP was sent (the session never reached PLAYING)".into(),
            ),
            CheckId::ClientTeardown if self.teardown_sent => {
                (true, "TEARDOWN before closing".into())
            }
            CheckId::ClientTeardown => (
                false,
                "the connection closed without a TEARDOWN: the server is left holding the session"
                    .into(),
            ),
            _ => match self.tallies.get(&id) {
                Some(Tally {
                    failure: Some(f), ..
                }) => (false, f.clone()),
                Some(t) => (
                    true,
                    format!(
                        "as asked, in each of the {} requests it applies to",
                        t.passes
                    ),
                ),
                None if self.requests == 0 && self.dialect != CheckDialect::Tpc3 => {
                    (false, "no request came".into())
                }
                None if id == CheckId::ReqTransport => (false, "no SETUP came".into()),
                None if id == CheckId::Tpc3Request => (false, "no request came".into()),
                None if id == CheckId::Tpc3Go => (false, "no Go came".into()),
                None => (true, "no request it applies to".into()),
            },
        }
    }
}

/// The port of a lab Transport header (`RTP/UDP; client_port= 25000`),
/// and whether a space follows `=` as the reference client writes it.
fn lab_client_port(t: &str) -> Option<(u16, bool)> {
    if !t.trim_start().starts_with("RTP/UDP") {
        return None;
    }
    let at = t.find("client_port=")? + "client_port=".len();
    let rest = &t[at..];
    let spaced = rest.starts_with(' ');
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((digits.parse().ok()?, spaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests: &[&str]) -> Report {
        let now = Instant::now();
        let mut c = ClientChecker::new(CheckDialect::Lab, Vec::new(), 0);
        for (i, r) in requests.iter().enumerate() {
            c.handle_received(now, r.as_bytes());
            let reply = format!("RTSP/1.0 200 OK\nCSeq: {}\nSession: 123456", i + 1);
            c.handle_sent(now, reply.as_bytes());
        }
        c.handle_closed(now);
        c.report()
    }

    const SETUP: &str =
        "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000";

    #[test]
    fn the_lab_sequence_passes() {
        let r = run(&[
            SETUP,
            "PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
            "PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456",
            "TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 4\nSession: 123456",
        ]);
        assert_eq!(r.failures(), [], "{r:?}");
    }

    #[test]
    fn the_handouts_own_example_skips_a_cseq() {
        // The lab handout's sample interaction goes from CSeq 3 to 5.
        let r = run(&[
            SETUP,
            "PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
            "PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456",
            "TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 5\nSession: 123456",
        ]);
        assert_eq!(r.failures(), [CheckId::ReqCseq]);
        assert!(r.get(CheckId::ReqCseq).unwrap().seen.contains("gives 4"));
    }

    #[test]
    fn play_before_setup_is_out_of_state() {
        let r = run(&["PLAY movie.Mjpeg RTSP/1.0\nCSeq: 1\nSession: 1"]);
        assert!(r.failures().contains(&CheckId::ReqState));
        assert!(
            r.get(CheckId::ReqState)
                .unwrap()
                .seen
                .contains("PLAY sent in INIT")
        );
    }

    #[test]
    fn a_request_line_without_its_version() {
        let r = run(&[
            "SETUP movie.Mjpeg\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
            "TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
        ]);
        assert!(r.failures().contains(&CheckId::ReqLine), "{r:#?}");
        assert!(r.get(CheckId::ReqLine).unwrap().seen.contains("unreadable"));
    }

    #[test]
    fn a_tpc3_request_without_its_port() {
        let now = Instant::now();
        let mut c = ClientChecker::new(CheckDialect::Tpc3, vec!["movie.Mjpeg".into()], 4242);
        c.handle_received(now, b"movie.Mjpeg\n");
        let outs: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
        assert!(
            outs.contains(&ClientOutput::Send(b"-1\n".to_vec())),
            "{outs:?}"
        );
        c.handle_closed(now);
        let r = c.report();
        assert!(r.failures().contains(&CheckId::Tpc3Request));
        assert!(
            r.get(CheckId::Tpc3Request)
                .unwrap()
                .seen
                .contains("not `FILE PORT`")
        );
    }

    #[test]
    fn client_port_with_and_without_the_space() {
        assert_eq!(
            lab_client_port("RTP/UDP; client_port= 25000"),
            Some((25000, true))
        );
        assert_eq!(
            lab_client_port("RTP/UDP; client_port=25000"),
            Some((25000, false))
        );
        assert_eq!(
            lab_client_port("RTP/AVP;unicast;client_port=5000-5001"),
            None
        );
    }

    #[test]
    fn tpc3_handshake_answers_and_starts_media() {
        let now = Instant::now();
        let mut c = ClientChecker::new(CheckDialect::Tpc3, vec!["movie.Mjpeg".into()], 4242);
        c.handle_received(now, b"movie.Mjpeg 25000\n");
        c.handle_received(now, b"Go\n");
        let outs: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
        assert!(outs.contains(&ClientOutput::Send(b"4242\n".to_vec())));
        assert!(outs.contains(&ClientOutput::StartMedia {
            port: 25000,
            session: 4242
        }));
        c.handle_media_sent();
        c.handle_closed(now);
        assert_eq!(c.report().failures(), []);
    }
}
