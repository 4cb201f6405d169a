//! RTSP/1.0 messages: a lenient streaming decoder and a writer.
//!
//! The decoder accepts both what RFC 2326 peers send (CRLF, a blank line
//! after the headers, `rtsp://` targets, Content-Length bodies) and what the
//! lab's reference code sends (bare LF, no blank line at the end, a bare
//! file name as target; see `shared/docs/lab-dialect.md`). A lab message has
//! no terminator, so it ends either where the next request line starts or
//! when the peer goes quiet; the caller says which with `poll(quiet)`.
//! Everything is bounded: a message over [`MAX_MESSAGE`] bytes is refused.

use std::fmt;

/// The largest request or response head (plus body) we accept, in bytes.
pub const MAX_MESSAGE: usize = 8192;

/// The two ways RTSP is written on the wire. Replies mirror the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// RFC 2326: CRLF line endings and a blank line after the headers.
    #[default]
    Standard,
    /// The lab's reference code: bare LF, no blank line at the end.
    Lab,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Standard => "standard",
            Dialect::Lab => "lab",
        }
    }
}

/// An RTSP method. Unknown tokens are kept so they can be answered with 501.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Options,
    Describe,
    Announce,
    Setup,
    Play,
    Pause,
    Teardown,
    GetParameter,
    SetParameter,
    Redirect,
    Record,
    Other(String),
}

impl Method {
    /// Every method RFC 2326 defines, in its order.
    pub const KNOWN: [Method; 11] = [
        Method::Options,
        Method::Describe,
        Method::Announce,
        Method::Setup,
        Method::Play,
        Method::Pause,
        Method::Teardown,
        Method::GetParameter,
        Method::SetParameter,
        Method::Redirect,
        Method::Record,
    ];

    pub fn parse(token: &str) -> Method {
        Method::KNOWN
            .iter()
            .find(|m| m.as_str() == token)
            .cloned()
            .unwrap_or_else(|| Method::Other(token.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Announce => "ANNOUNCE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Redirect => "REDIRECT",
            Method::Record => "RECORD",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Headers in the order they arrived; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header that may repeat (WWW-Authenticate).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Append a header (no check for duplicates: RTSP allows repeats).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replace the first header of that name, or append it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CSeq header as a number, forgiving surrounding spaces.
    pub fn cseq(&self) -> Option<u32> {
        self.get("CSeq")?.trim().parse().ok()
    }

    /// The session id of the Session header, without `;timeout=...`.
    pub fn session(&self) -> Option<&str> {
        let v = self.get("Session")?;
        let id = v.split(';').next().unwrap_or("").trim();
        (!id.is_empty()).then_some(id)
    }
}

/// An RTSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The target exactly as sent: an `rtsp://` URL, `*`, or (lab) a file name.
    pub target: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub dialect: Dialect,
}

/// An RTSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub dialect: Dialect,
}

/// One unit read from an RTSP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
    /// RTP or RTCP interleaved in the connection (`$`, channel, length).
    Interleaved {
        channel: u8,
        payload: Vec<u8>,
    },
}

/// What was wrong with a message, and which status answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("the first line is not `METHOD target RTSP/1.0` nor `RTSP/1.0 code reason`: {0:?}")]
    BadStartLine(String),
    #[error("unsupported protocol version {0:?} (only RTSP/1.0 is spoken)")]
    BadVersion(String),
    #[error("header line has no `Name: value` form: {0:?}")]
    BadHeader(String),
    #[error("Content-Length {0:?} is not a number of at most {MAX_MESSAGE} bytes")]
    BadContentLength(String),
    #[error("message is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// A message that could not be parsed. The decoder has already skipped it,
/// so the connection can answer and go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {kind}")]
pub struct ParseError {
    /// Offset in the connection's byte stream where the bad message starts.
    pub offset: u64,
    pub kind: ParseErrorKind,
    /// The CSeq, when the message had a readable one (to echo in the reply).
    pub cseq: Option<u32>,
    pub dialect: Dialect,
}

impl ParseError {
    /// The RFC 2326 status that answers this error.
    pub fn status(&self) -> u16 {
        match self.kind {
            ParseErrorKind::BadVersion(_) => 505,
            ParseErrorKind::TooLarge => 413,
            _ => 400,
        }
    }

    /// Whether the byte stream can still be read after this error. A message
    /// over the size limit has no known end, so the connection must close.
    pub fn recoverable(&self) -> bool {
        self.kind != ParseErrorKind::TooLarge
    }
}

/// A streaming decoder for one RTSP connection.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// The exact bytes of the last message returned by `poll`.
    last_raw: Vec<u8>,
    /// Bytes consumed before `buf[0]`, for error offsets.
    consumed: u64,
}

/// Where the head of the message at the start of the buffer ends.
struct HeadEnd {
    /// Length of the head without its terminator.
    head_len: usize,
    /// Length of the head including its terminator (blank line).
    total: usize,
    /// Ended by a blank line (standard) rather than by the next request
    /// line or by the peer going quiet (lab).
    blank_line: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes taken out of the stream so far (messages and skipped bytes).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes buffered that do not yet form a message (ignoring blank lines
    /// between messages).
    pub fn pending(&self) -> usize {
        self.buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .map_or(0, |start| self.buf.len() - start)
    }

    /// The next complete message, if any. `quiet` says that no bytes have
    /// arrived for a while, so a message without a terminating blank line
    /// (the lab's) is complete as it stands.
    pub fn poll(&mut self, quiet: bool) -> Option<Result<Message, ParseError>> {
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.consume(skip);
        if self.buf.is_empty() {
            return None;
        }
        if self.buf[0] == b'$' {
            return self.poll_interleaved();
        }
        let offset = self.consumed;
        let Some(end) = self.find_head_end(quiet) else {
            if self.buf.len() > MAX_MESSAGE {
                let dialect = guess_dialect(&self.buf);
                let cseq = find_cseq(&self.buf);
                self.consume(self.buf.len());
                return Some(Err(ParseError {
                    offset,
                    kind: ParseErrorKind::TooLarge,
                    cseq,
                    dialect,
                }));
            }
            return None;
        };
        let dialect = if end.blank_line && self.buf[..end.total].ends_with(b"\r\n\r\n") {
            Dialect::Standard
        } else if !end.blank_line && !self.buf[..end.head_len].contains(&b'\r') {
            Dialect::Lab
        } else {
            guess_dialect(&self.buf[..end.head_len])
        };
        let head = String::from_utf8_lossy(&self.buf[..end.head_len]).into_owned();
        let parsed = parse_head(&head, dialect);
        let (mut message, body_len) = match parsed {
            Ok(v) => v,
            Err(kind) => {
                let cseq = find_cseq(&self.buf[..end.head_len]);
                self.consume(end.total);
                return Some(Err(ParseError {
                    offset,
                    kind,
                    cseq,
                    dialect,
                }));
            }
        };
        if end.total + body_len > MAX_MESSAGE {
            let cseq = find_cseq(&self.buf[..end.head_len]);
            self.consume(self.buf.len());
            return Some(Err(ParseError {
                offset,
                kind: ParseErrorKind::TooLarge,
                cseq,
                dialect,
            }));
        }
        if self.buf.len() < end.total + body_len {
            return None;
        }
        let body = self.buf[end.total..end.total + body_len].to_vec();
        match &mut message {
            Message::Request(r) => r.body = body,
            Message::Response(r) => r.body = body,
            Message::Interleaved { .. } => {}
        }
        self.consume(end.total + body_len);
        Some(Ok(message))
    }

    fn poll_interleaved(&mut self) -> Option<Result<Message, ParseError>> {
        if self.buf.len() < 4 {
            return None;
        }
        let channel = self.buf[1];
        let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
        if self.buf.len() < 4 + len {
            return None;
        }
        let payload = self.buf[4..4 + len].to_vec();
        self.consume(4 + len);
        Some(Ok(Message::Interleaved { channel, payload }))
    }

    /// The exact bytes of the message `poll` returned last (for transcripts).
    pub fn last_raw(&self) -> &[u8] {
        &self.last_raw
    }

    fn consume(&mut self, n: usize) {
        self.last_raw.clear();
        self.last_raw.extend_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
        self.consumed += n as u64;
    }

    /// Find where the message at the start of the buffer ends: at a blank
    /// line, or (lab) where the next request line starts, or (lab, when the
    /// peer went quiet) at the end of the buffer.
    fn find_head_end(&self, quiet: bool) -> Option<HeadEnd> {
        let buf = &self.buf;
        let mut line_start = 0;
        let mut line_no = 0;
        while line_start < buf.len() {
            let nl = buf[line_start..].iter().position(|&b| b == b'\n');
            let line_end = nl.map_or(buf.len(), |p| line_start + p);
            let line = &buf[line_start..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() && nl.is_some() {
                // A blank line: the head ends before it.
                let head_len = trim_eol(&buf[..line_start]);
                return Some(HeadEnd {
                    head_len,
                    total: line_end + 1,
                    blank_line: true,
                });
            }
            if line_no > 0
                && let Some(at) = request_line_start(line)
            {
                // The lab sends no terminator, so a second message may
                // follow directly, even glued to the last header's value.
                let split = line_start + at;
                return Some(HeadEnd {
                    head_len: trim_eol(&buf[..split]),
                    total: split,
                    blank_line: false,
                });
            }
            match nl {
                Some(_) => {
                    line_start = line_end + 1;
                    line_no += 1;
                }
                None => break,
            }
        }
        // The lab's requests and replies all end with their Session line:
        // with bare LF, a last line `Session: <6 or more digits>` completes
        // the message now rather than after the quiet wait.
        if !quiet && buf.len() <= MAX_MESSAGE && ends_with_lab_session(buf) {
            return Some(HeadEnd {
                head_len: buf.len(),
                total: buf.len(),
                blank_line: false,
            });
        }
        // No terminator. A lab message is complete once the peer is quiet,
        // but only if at least its first line arrived whole: a half-sent
        // request line waits (and times out at the connection layer).
        if quiet && buf.len() <= MAX_MESSAGE && buf.contains(&b'\n') {
            let head_len = trim_eol(buf);
            return Some(HeadEnd {
                head_len,
                total: buf.len(),
                blank_line: false,
            });
        }
        if quiet && buf.len() <= MAX_MESSAGE && looks_like_complete_start_line(buf) {
            return Some(HeadEnd {
                head_len: buf.len(),
                total: buf.len(),
                blank_line: false,
            });
        }
        None
    }
}

/// A bare-LF message of at least three lines whose unterminated last line
/// is a lab session id (the lab's ids are 6 digits).
fn ends_with_lab_session(buf: &[u8]) -> bool {
    if buf.contains(&b'\r') || buf.ends_with(b"\n") {
        return false;
    }
    let mut lines = buf.rsplit(|&b| b == b'\n');
    let Some(last) = lines.next() else {
        return false;
    };
    if lines.count() < 2 {
        return false;
    }
    let Some(value) = last.strip_prefix(b"Session:").map(|v| v.trim_ascii_start()) else {
        return false;
    };
    value.len() >= 6 && value.iter().all(u8::is_ascii_digit)
}

fn trim_eol(b: &[u8]) -> usize {
    let mut n = b.len();
    while n > 0 && (b[n - 1] == b'\n' || b[n - 1] == b'\r') {
        n -= 1;
    }
    n
}

/// A start line alone with nothing after it: a request line (`OPTIONS *
/// RTSP/1.0`) or a status line, whose reason phrase may be any number of
/// words (`RTSP/1.0 400 Bad Request`, as our server answers a lab request
/// without CSeq).
fn looks_like_complete_start_line(buf: &[u8]) -> bool {
    let s = String::from_utf8_lossy(buf);
    let words: Vec<&str> = s.split_whitespace().collect();
    (words.len() == 3 && words[2].starts_with("RTSP/"))
        || (words.len() >= 2 && words[0].starts_with("RTSP/"))
}

/// If `line` contains the start of a request line (`METHOD target RTSP/x.y`
/// running to the end of the line), the byte offset where it starts.
fn request_line_start(line: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(line).ok()?;
    let trimmed = s.trim_end();
    let last = trimmed.rsplit(' ').next()?;
    if !is_rtsp_version(last) {
        return None;
    }
    // Try each known method at each position; the earliest that parses wins.
    for (i, _) in s.char_indices() {
        let rest = &s[i..];
        for m in Method::KNOWN.iter() {
            let name = m.as_str();
            if rest.starts_with(name) && rest[name.len()..].starts_with(' ') {
                let words: Vec<&str> = rest.split_whitespace().collect();
                if words.len() == 3 && is_rtsp_version(words[2]) {
                    return Some(i);
                }
            }
        }
    }
    None
}

fn is_rtsp_version(s: &str) -> bool {
    let Some(v) = s.strip_prefix("RTSP/") else {
        return false;
    };
    let mut parts = v.split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

fn guess_dialect(buf: &[u8]) -> Dialect {
    if buf.windows(2).any(|w| w == b"\r\n") {
        Dialect::Standard
    } else {
        Dialect::Lab
    }
}

/// Best-effort CSeq from a message we could not parse, to echo in the error.
fn find_cseq(buf: &[u8]) -> Option<u32> {
    let s = String::from_utf8_lossy(buf);
    s.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        if n.trim().eq_ignore_ascii_case("CSeq") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse a message head (start line and headers, no terminator). Returns the
/// message with an empty body and the body length from Content-Length.
fn parse_head(head: &str, dialect: Dialect) -> Result<(Message, usize), ParseErrorKind> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let mut headers = Headers::default();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseErrorKind::BadHeader(line.to_string()));
        };
        let name = name.trim();
        if !is_token(name) {
            return Err(ParseErrorKind::BadHeader(line.to_string()));
        }
        headers.push(name, value.trim());
    }
    let body_len = match headers.get("Content-Length") {
        None => 0,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= MAX_MESSAGE => n,
            _ => return Err(ParseErrorKind::BadContentLength(v.to_string())),
        },
    };
    let words: Vec<&str> = first.split_whitespace().collect();
    let bad_start = || ParseErrorKind::BadStartLine(first.chars().take(200).collect());
    if words.first().is_some_and(|w| w.starts_with("RTSP/")) {
        if words.len() < 2 {
            return Err(bad_start());
        }
        if !is_rtsp_version(words[0]) {
            return Err(bad_start());
        }
        if words[0] != "RTSP/1.0" {
            return Err(ParseErrorKind::BadVersion(words[0].to_string()));
        }
        let status: u16 = match words[1].parse() {
            Ok(s) if (100..1000).contains(&s) && words[1].len() == 3 => s,
            _ => return Err(bad_start()),
        };
        let reason = words[2..].join(" ");
        let response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            dialect,
        };
        return Ok((Message::Response(response), body_len));
    }
    if words.len() != 3 || !is_token(words[0]) {
        return Err(bad_start());
    }
    let version = words[2];
    if !version.contains('/') {
        return Err(bad_start());
    }
    if version != "RTSP/1.0" {
        return Err(ParseErrorKind::BadVersion(version.to_string()));
    }
    let request = Request {
        method: Method::parse(words[0]),
        target: words[1].to_string(),
        headers,
        body: Vec::new(),
        dialect,
    };
    Ok((Message::Request(request), body_len))
}

/// The 4 bytes before a packet sent inside an RTSP connection (RFC 2326
/// section 10.12): `$`, the channel, the packet's length. A packet cannot
/// be longer than 65,535 bytes there; longer ones are cut by the caller.
pub fn interleaved_header(channel: u8, len: usize) -> [u8; 4] {
    let [hi, lo] = (len.min(usize::from(u16::MAX)) as u16).to_be_bytes();
    [b'$', channel, hi, lo]
}

/// Appends `packet` to `out` framed for channel `channel` (see
/// [`interleaved_header`]).
pub fn write_interleaved(out: &mut Vec<u8>, channel: u8, packet: &[u8]) {
    out.extend_from_slice(&interleaved_header(channel, packet.len()));
    out.extend_from_slice(packet);
}

/// The reason phrase RFC 2326 gives a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        457 => "Invalid Range",
        459 => "Aggregate operation not allowed",
        461 => "Unsupported transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version not supported",
        _ => "Unknown",
    }
}

fn write_message(start: &str, headers: &Headers, body: &[u8], dialect: Dialect) -> Vec<u8> {
    let eol = match dialect {
        Dialect::Standard => "\r\n",
        Dialect::Lab => "\n",
    };
    let mut out = String::with_capacity(128);
    out.push_str(start);
    // Lab clients read the reply by line number (status, CSeq, Session), so
    // those two go first whatever order they were set in.
    let first = ["CSeq", "Session"];
    for name in first {
        if let Some(v) = headers.get(name) {
            out.push_str(eol);
            out.push_str(name);
            out.push_str(": ");
            out.push_str(v);
        }
    }
    for (n, v) in headers.iter() {
        if first.iter().any(|f| f.eq_ignore_ascii_case(n)) {
            continue;
        }
        out.push_str(eol);
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
    }
    if !body.is_empty() && headers.get("Content-Length").is_none() {
        out.push_str(eol);
        out.push_str(&format!("Content-Length: {}", body.len()));
    }
    if dialect == Dialect::Standard || !body.is_empty() {
        out.push_str(eol);
        out.push_str(eol);
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl Request {
    pub fn new(method: Method, target: impl Into<String>, dialect: Dialect) -> Self {
        Request {
            method,
            target: target.into(),
            headers: Headers::default(),
            body: Vec::new(),
            dialect,
        }
    }

    /// The request as bytes in its dialect. A lab request has bare LF and
    /// no blank line at the end, byte for byte as the lab's clients send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} RTSP/1.0", self.method, self.target);
        write_message(&start, &self.headers, &self.body, self.dialect)
    }
}

impl Response {
    pub fn new(status: u16, dialect: Dialect) -> Self {
        Response {
            status,
            reason: reason_phrase(status).to_string(),
            headers: Headers::default(),
            body: Vec::new(),
            dialect,
        }
    }

    /// The response as bytes in its dialect: status line, CSeq, Session,
    /// then the other headers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("RTSP/1.0 {} {}", self.status, self.reason);
        write_message(&start, &self.headers, &self.body, self.dialect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], quiet: bool) -> Vec<Result<Message, ParseError>> {
        let mut d = Decoder::new();
        d.push(bytes);
        std::iter::from_fn(|| d.poll(quiet)).collect()
    }

    fn req(m: &Result<Message, ParseError>) -> &Request {
        match m {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const LAB_SETUP: &[u8] =
        b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000";

    #[test]
    fn lab_request_waits_for_quiet() {
        assert!(all(LAB_SETUP, false).is_empty());
        let msgs = all(LAB_SETUP, true);
        assert_eq!(msgs.len(), 1);
        let r = req(&msgs[0]);
        assert_eq!(r.method, Method::Setup);
        assert_eq!(r.target, "movie.Mjpeg");
        assert_eq!(r.dialect, Dialect::Lab);
        assert_eq!(r.headers.cseq(), Some(1));
        assert_eq!(
            r.headers.get("transport"),
            Some("RTP/UDP; client_port= 25000")
        );
    }

    #[test]
    fn a_bare_status_line_with_a_long_reason_is_a_reply_once_quiet() {
        // What our server answers a lab request that has no CSeq: found by
        // fuzzing (server_connection), where our own client read nothing.
        for line in [
            &b"RTSP/1.0 400 Bad Request"[..],
            b"RTSP/1.0 454 Session Not Found",
        ] {
            assert!(all(line, false).is_empty());
            match &all(line, true)[..] {
                [Ok(Message::Response(r))] => assert_eq!(r.dialect, Dialect::Lab),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn lab_request_round_trips_byte_for_byte() {
        let r = req(&all(LAB_SETUP, true)[0]).clone();
        assert_eq!(r.to_bytes(), LAB_SETUP);
    }

    #[test]
    fn two_lab_messages_in_one_read_even_glued() {
        let glued = b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456";
        let msgs = all(glued, true);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(req(&msgs[0]).headers.session(), Some("123456"));
        assert_eq!(req(&msgs[1]).method, Method::Pause);
        let with_lf = b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 1\nPAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 1";
        let msgs = all(with_lf, false);
        // The first is complete (the second's request line ends it); the
        // second waits for quiet.
        assert_eq!(msgs.len(), 1);
        assert_eq!(req(&msgs[0]).headers.cseq(), Some(2));
    }

    #[test]
    fn crlf_messages_split_at_every_byte() {
        let two = b"OPTIONS rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n\r\nSETUP rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n";
        for split in 0..two.len() {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            d.push(&two[..split]);
            while let Some(m) = d.poll(false) {
                got.push(m);
            }
            d.push(&two[split..]);
            while let Some(m) = d.poll(false) {
                got.push(m);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(req(&got[0]).dialect, Dialect::Standard);
            assert_eq!(req(&got[1]).headers.cseq(), Some(2));
        }
    }

    #[test]
    fn lab_reply_parses_on_quiet() {
        let msgs = all(b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456", true);
        match &msgs[0] {
            Ok(Message::Response(r)) => {
                assert_eq!(r.status, 200);
                assert_eq!(r.headers.session(), Some("123456"));
                assert_eq!(r.dialect, Dialect::Lab);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn body_waits_for_content_length() {
        let m = b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 5\r\n\r\nab";
        let mut d = Decoder::new();
        d.push(m);
        assert!(d.poll(true).is_none());
        d.push(b"cde");
        assert_eq!(req(&d.poll(false).unwrap()).body, b"abcde");
    }

    #[test]
    fn errors_carry_status_and_cseq_and_skip_the_message() {
        let msgs = all(
            b"garbage line\r\nCSeq: 7\r\n\r\nPLAY x RTSP/2.0\r\nCSeq: 8\r\n\r\nPLAY x RTSP/1.0\r\nno colon\r\n\r\n",
            false,
        );
        let errs: Vec<_> = msgs.iter().map(|m| m.as_ref().unwrap_err()).collect();
        assert_eq!(errs[0].status(), 400);
        assert_eq!(errs[0].cseq, Some(7));
        assert_eq!(errs[1].status(), 505);
        assert_eq!(errs[1].cseq, Some(8));
        assert!(matches!(errs[2].kind, ParseErrorKind::BadHeader(_)));
    }

    #[test]
    fn oversized_is_refused() {
        let mut big = b"SETUP x RTSP/1.0\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 10 * 1024));
        let msgs = all(&big, false);
        let e = msgs[0].as_ref().unwrap_err();
        assert_eq!(e.status(), 413);
        assert!(!e.recoverable());
    }

    #[test]
    fn lab_message_ending_in_session_is_complete_at_once() {
        let play = b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456";
        assert_eq!(all(play, false).len(), 1);
        assert_eq!(
            all(b"RTSP/1.0 200 OK\nCSeq: 2\nSession: 123456", false).len(),
            1
        );
        // A shorter id may still be arriving: wait for quiet.
        assert!(all(b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 1234", false).is_empty());
        // SETUP ends with Transport, whose port may be cut: wait for quiet.
        assert!(all(LAB_SETUP, false).is_empty());
    }

    #[test]
    fn half_request_line_waits_even_when_quiet() {
        assert!(all(b"SETUP movie.Mj", true).is_empty());
    }

    #[test]
    fn interleaved_frames() {
        let msgs = all(b"$\x01\x00\x03abcRTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n", false);
        assert_eq!(
            msgs[0],
            Ok(Message::Interleaved {
                channel: 1,
                payload: b"abc".to_vec()
            })
        );
        assert!(matches!(msgs[1], Ok(Message::Response(_))));
    }

    #[test]
    fn written_interleaved_frames_decode_back() {
        let mut out = Vec::new();
        write_interleaved(&mut out, 1, b"abc");
        assert_eq!(out, b"$\x01\x00\x03abc");
        let big = vec![7u8; 300];
        write_interleaved(&mut out, 0, &big);
        let msgs = all(&out, false);
        assert_eq!(
            msgs[1],
            Ok(Message::Interleaved {
                channel: 0,
                payload: big
            })
        );
    }

    #[test]
    fn lab_reply_order_is_status_cseq_session() {
        let mut r = Response::new(200, Dialect::Lab);
        r.headers.push("Session", "123456");
        r.headers.push("CSeq", "1");
        assert_eq!(r.to_bytes(), b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456");
        let mut r = Response::new(200, Dialect::Standard);
        r.headers.push("CSeq", "1");
        assert_eq!(r.to_bytes(), b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n");
    }
}
