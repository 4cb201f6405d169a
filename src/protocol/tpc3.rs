//! TPC-3 (seed 000, "Lab 08 TPC-3"): the assignment's handshake in place of
//! RTSP, on one TCP connection, as pure code.
//!
//! 1. The client sends the file name and its UDP data port
//!    (`movie.Mjpeg 25000`; a space, comma or newline between them, an
//!    optional newline after).
//! 2. The server answers a session id (a random positive integer in ASCII
//!    decimal) or `-1` when it has no such file, and then closes.
//! 3. The client answers `Go`.
//! 4. The server sends the file at 20 datagrams a second to the client's
//!    address and that port: RTP as the lab dialect sends it (PT 26, M 0,
//!    sequence from 1, timestamp in Unix seconds) with the session id as
//!    SSRC, until the end of the file or until the connection closes.
//!
//! [`sniff`] tells a TPC-3 client from an RTSP one by its first bytes, so
//! one port serves both; [`Tpc3Server`] is the server's side of the
//! handshake. The client's side is
//! [`Tpc3Client`](crate::protocol::client::Tpc3Client); both it and
//! `check server` write the request with [`request`] and read the answer
//! with [`parse_answer`].

use std::collections::VecDeque;

/// The client's request: the file name and its UDP data port, as the
/// assignment's clients send it (`movie.Mjpeg 25000`, and a newline so
/// that a server reading lines need not wait).
pub fn request(file: &str, port: u16) -> Vec<u8> {
    format!("{file} {port}\n").into_bytes()
}

/// The client's word that starts the transfer.
pub const GO: &[u8] = b"Go\n";

/// The answer `-1`: the server has no such file.
pub const NO_SUCH_FILE: i64 = -1;

/// An answer to the request that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("answered {0:?}, which is not a number")]
pub struct NotANumber(pub String);

/// The server's answer to the request, as a number: a session id (a
/// positive integer), [`NO_SUCH_FILE`], or what else it said.
pub fn parse_answer(raw: &[u8]) -> Result<i64, NotANumber> {
    let text = String::from_utf8_lossy(raw).trim().to_string();
    text.parse::<i64>().map_err(|_| NotANumber(text))
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// RTSP, in either dialect (the lab's or the standard one).
    Rtsp,
    /// The TPC-3 handshake.
    Tpc3,
}

/// Longest TPC-3 request: a file name and a port.
pub const MAX_REQUEST: usize = 1024;

/// What the connection speaks, from its first bytes: None while a first
/// line is still coming (`quiet`: the client has stopped sending for a
/// moment, as clients that send no newline do). Anything that is not a
/// TPC-3 request is RTSP, whose own parser then answers it.
pub fn sniff(first: &[u8], quiet: bool) -> Option<Opening> {
    let decided = |bytes: &[u8]| {
        Some(if parse_request(bytes).is_some() {
            Opening::Tpc3
        } else {
            Opening::Rtsp
        })
    };
    let done = quiet || first.len() >= MAX_REQUEST;
    let Some(i) = first.iter().position(|&b| b == b'\n') else {
        if done {
            return decided(first);
        }
        // An RTSP request line gives itself away early.
        return contains(first, b"RTSP/").then_some(Opening::Rtsp);
    };
    let line = &first[..i];
    if contains(line, b" ") || contains(line, b",") {
        return decided(line);
    }
    // A name alone on the first line: the port may follow on the next (an
    // RTSP request line always has spaces).
    if parse_request(first).is_some() {
        Some(Opening::Tpc3)
    } else if done {
        Some(Opening::Rtsp)
    } else {
        None
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The file name and UDP port of a TPC-3 request, if `bytes` is one.
pub fn parse_request(bytes: &[u8]) -> Option<(String, u16)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_end_matches(['\r', '\n']);
    let mut parts = text
        .split([' ', ',', '\n', '\r', '\t'])
        .filter(|p| !p.is_empty());
    let name = parts.next()?;
    let port: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || port == 0 || name.contains("RTSP/") {
        return None;
    }
    Some((name.to_string(), port))
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the file name and port.
    Request,
    /// Session id sent, waiting for `Go`.
    AwaitGo,
    /// Sending the file.
    Transfer,
    /// Closed (a missing file, a bad message, or the client left).
    Closed,
}

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tpc3Output {
    /// Write these bytes to the connection.
    Send(Vec<u8>),
    /// Start sending `file` to the client's address, port `port`, with
    /// this session id as SSRC.
    Start {
        file: String,
        port: u16,
        session: u32,
    },
    /// Close the connection (after what was sent).
    Close,
    /// Something for the log.
    Log(String),
}

/// What the server side asks of its host.
pub trait Tpc3Host {
    /// Whether `file` can be served.
    fn has_file(&mut self, file: &str) -> bool;
    /// A new random positive session id.
    fn new_session_id(&mut self) -> u32;
}

/// The server's side of the handshake: bytes in, [`Tpc3Output`]s out.
#[derive(Debug)]
pub struct Tpc3Server {
    phase: Phase,
    buf: Vec<u8>,
    request: Option<(String, u16, u32)>,
    out: VecDeque<Tpc3Output>,
}

impl Default for Tpc3Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Tpc3Server {
    pub fn new() -> Self {
        Tpc3Server {
            phase: Phase::Request,
            buf: Vec::new(),
            request: None,
            out: VecDeque::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Bytes from the client. `quiet`: it has stopped sending for a
    /// moment, so what came is a whole message even without a newline.
    pub fn handle_bytes(&mut self, bytes: &[u8], quiet: bool, host: &mut impl Tpc3Host) {
        if self.phase == Phase::Closed {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_REQUEST {
            self.refuse(format!(
                "more than {MAX_REQUEST} bytes without a whole message: not a TPC-3 client"
            ));
            return;
        }
        match self.phase {
            Phase::Request => self.request(quiet, host),
            Phase::AwaitGo => self.go(quiet),
            // Whatever the client says while it receives is not asked for.
            Phase::Transfer => self.buf.clear(),
            Phase::Closed => {}
        }
    }

    /// The client closed its side.
    pub fn handle_closed(&mut self) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.out
                .push_back(Tpc3Output::Log("the client closed the connection".into()));
            self.out.push_back(Tpc3Output::Close);
        }
    }

    /// The next thing to do; call until None after every input.
    pub fn poll_output(&mut self) -> Option<Tpc3Output> {
        self.out.pop_front()
    }

    fn request(&mut self, quiet: bool, host: &mut impl Tpc3Host) {
        let complete = quiet || self.buf.ends_with(b"\n") && parse_request(&self.buf).is_some();
        if !complete {
            return;
        }
        let Some((file, port)) = parse_request(&self.buf) else {
            let seen = String::from_utf8_lossy(&self.buf)
                .escape_debug()
                .to_string();
            self.refuse(format!(
                "\"{seen}\" is not a file name and a UDP port (\"movie.Mjpeg 25000\")"
            ));
            return;
        };
        self.buf.clear();
        if !host.has_file(&file) {
            self.out.push_back(Tpc3Output::Log(format!(
                "no file named {file}: answering -1"
            )));
            self.out.push_back(Tpc3Output::Send(b"-1\n".to_vec()));
            self.out.push_back(Tpc3Output::Close);
            self.phase = Phase::Closed;
            return;
        }
        let session = host.new_session_id().max(1);
        self.out.push_back(Tpc3Output::Log(format!(
            "request for {file} to UDP port {port}: session {session}"
        )));
        self.out
            .push_back(Tpc3Output::Send(format!("{session}\n").into_bytes()));
        self.request = Some((file, port, session));
        self.phase = Phase::AwaitGo;
    }

    fn go(&mut self, quiet: bool) {
        let text = String::from_utf8_lossy(&self.buf).trim().to_string();
        if text.is_empty() || (!quiet && !self.buf.ends_with(b"\n") && "Go".starts_with(&text)) {
            return;
        }
        if !text.eq_ignore_ascii_case("go") {
            self.refuse(format!("expected \"Go\", got \"{}\"", text.escape_debug()));
            return;
        }
        self.buf.clear();
        if let Some((file, port, session)) = self.request.clone() {
            self.out
                .push_back(Tpc3Output::Log(format!("Go: sending {file}")));
            self.out.push_back(Tpc3Output::Start {
                file,
                port,
                session,
            });
            self.phase = Phase::Transfer;
        }
    }

    fn refuse(&mut self, why: String) {
        self.out.push_back(Tpc3Output::Log(why));
        self.out.push_back(Tpc3Output::Close);
        self.phase = Phase::Closed;
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files;
    impl Tpc3Host for Files {
        fn has_file(&mut self, file: &str) -> bool {
            file == "movie.Mjpeg"
        }
        fn new_session_id(&mut self) -> u32 {
            424_242
        }
    }

    fn outputs(s: &mut Tpc3Server) -> Vec<Tpc3Output> {
        std::iter::from_fn(|| s.poll_output())
            .filter(|o| !matches!(o, Tpc3Output::Log(_)))
            .collect()
    }

    #[test]
    fn tells_tpc3_from_rtsp_by_the_first_bytes() {
        assert_eq!(sniff(b"movie.Mjpeg 25000", false), None);
        assert_eq!(sniff(b"movie.Mjpeg 25000", true), Some(Opening::Tpc3));
        assert_eq!(sniff(b"movie.Mjpeg,25000\n", false), Some(Opening::Tpc3));
        assert_eq!(sniff(b"movie.Mjpeg\n25000\n", false), Some(Opening::Tpc3));
        assert_eq!(sniff(b"movie.Mjpeg\n", false), None);
        assert_eq!(sniff(b"movie.Mjpeg\n", true), Some(Opening::Rtsp));
        assert_eq!(
            sniff(b"SETUP movie.Mjpeg RTSP/1.0", false),
            Some(Opening::Rtsp)
        );
        assert_eq!(
            sniff(b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n", false),
            Some(Opening::Rtsp)
        );
        assert_eq!(sniff(b"SETUP movie.Mjpeg", false), None);
        assert_eq!(sniff(b"garbage here now", true), Some(Opening::Rtsp));
    }

    #[test]
    fn reads_the_request_in_every_form_the_assignment_allows() {
        for req in [
            &b"movie.Mjpeg 25000"[..],
            b"movie.Mjpeg 25000\n",
            b"movie.Mjpeg,25000\r\n",
            b"movie.Mjpeg\n25000",
        ] {
            assert_eq!(
                parse_request(req),
                Some(("movie.Mjpeg".to_string(), 25000)),
                "{req:?}"
            );
        }
        for bad in [
            &b"movie.Mjpeg"[..],
            b"movie.Mjpeg x",
            b"movie.Mjpeg 0",
            b"movie.Mjpeg 70000",
            b"a b c",
        ] {
            assert_eq!(parse_request(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_answer_is_read_as_a_number() {
        assert_eq!(parse_answer(b"424242\n"), Ok(424_242));
        assert_eq!(parse_answer(b" -1 \r\n"), Ok(NO_SUCH_FILE));
        let e = parse_answer(b"RTSP/1.0 400 Bad Request\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "answered \"RTSP/1.0 400 Bad Request\", which is not a number"
        );
        assert_eq!(request("movie.Mjpeg", 25000), b"movie.Mjpeg 25000\n");
        assert_eq!(
            parse_request(&request("movie.Mjpeg", 25000)),
            Some(("movie.Mjpeg".to_string(), 25000))
        );
    }

    #[test]
    fn handshake_then_go_starts_the_transfer() {
        let mut s = Tpc3Server::new();
        s.handle_bytes(b"movie.Mjpeg 25000", false, &mut Files);
        assert!(
            outputs(&mut s).is_empty(),
            "waits for the end of the message"
        );
        s.handle_bytes(b"", true, &mut Files);
        assert_eq!(
            outputs(&mut s),
            vec![Tpc3Output::Send(b"424242\n".to_vec())]
        );
        assert_eq!(s.phase(), Phase::AwaitGo);
        s.handle_bytes(b"G", false, &mut Files);
        assert!(outputs(&mut s).is_empty());
        s.handle_bytes(b"o", true, &mut Files);
        assert_eq!(
            outputs(&mut s),
            vec![Tpc3Output::Start {
                file: "movie.Mjpeg".into(),
                port: 25000,
                session: 424_242
            }]
        );
        assert_eq!(s.phase(), Phase::Transfer);
        s.handle_closed();
        assert_eq!(outputs(&mut s), vec![Tpc3Output::Close]);
    }

    #[test]
    fn a_missing_file_gets_minus_one_and_the_end() {
        let mut s = Tpc3Server::new();
        s.handle_bytes(b"nothere.Mjpeg 25000\n", false, &mut Files);
        assert_eq!(
            outputs(&mut s),
            vec![Tpc3Output::Send(b"-1\n".to_vec()), Tpc3Output::Close]
        );
        assert_eq!(s.phase(), Phase::Closed);
    }

    #[test]
    fn anything_but_go_closes() {
        let mut s = Tpc3Server::new();
        s.handle_bytes(b"movie.Mjpeg 25000\n", false, &mut Files);
        outputs(&mut s);
        s.handle_bytes(b"Stop\n", false, &mut Files);
        assert_eq!(outputs(&mut s), vec![Tpc3Output::Close]);
    }
}
