//! The bodies of the `cargo fuzz` targets (fuzz/fuzz_targets), one plain
//! function per target, so that the same code the fuzzer runs is replayed
//! over the committed corpora by `cargo test` (tests/fuzz_corpora.rs).
//!
//! Each function takes whatever bytes the fuzzer made and feeds them to one
//! parser or sans-IO state machine, then asserts what must hold for every
//! input: nothing panics, what comes out is well formed, and memory and
//! output stay bounded by what went in. A failed assertion here is a bug
//! found, which is why these functions, unlike the code they drive, are
//! meant to panic.
//!
//! Inputs that drive a state machine are read as a small script (see
//! [`Script`]): a few leading bytes choose the configuration, then each
//! step is an opcode byte followed by its operands (bytes to feed, time to
//! let pass, a button to press). Bytes run out gracefully, so every input
//! is a valid script and the fuzzer never wastes runs on rejected ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::{MjpegFile, jpeg};
use crate::protocol::auth::{self, Challenge};
use crate::protocol::client::{
    ClientCommand, ClientConfig, ClientConnection, ClientError, ClientHost, Credentials,
    DialectChoice, Event, Forced, MediaRoute, StreamInfo, TransportChoice,
};
use crate::protocol::receiver::{Receiver, ReceiverConfig};
use crate::protocol::rtcp;
use crate::protocol::rtp::MAX_FRAME;
use crate::protocol::rtp_jpeg::{self, Layout};
use crate::protocol::rtsp::{Decoder, Dialect, MAX_MESSAGE, Message, ParseError};
use crate::protocol::sdp::{self, MAX_SDP, SdpError};
use crate::protocol::server::{
    ConnectionConfig, MediaInfo, PlayError, PlayInfo, Prepared, ServerConnection, ServerHost,
    ServerOutput, SessionInfo,
};

/// The largest `$` frame: its length field is 16 bits.
const MAX_INTERLEAVED: usize = u16::MAX as usize;
/// Timeouts a state machine may ask for in one step before the harness
/// calls it stuck (each one must move its deadline on).
const MAX_TIMEOUTS_PER_STEP: usize = 16;

/// A fuzz input read front to back; past its end every read gives zeros
/// or nothing, so any byte string is a complete script.
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Longest header block the RFC 2435 depacketizer can put before a scan:
/// two quantisation tables and a restart interval.
fn jpeg_header_bound() -> usize {
    rtp_jpeg::make_headers(Layout::Yuv420, u16::MAX, u16::MAX, &[1; 128], 1).len()
}

// ------------------------------------------------------------- RTSP ----

/// The RTSP decoder fed a byte stream cut in chunks, the peer going quiet
/// now and then. Script: chunk size - 1, a mask of which chunks end with
/// the peer quiet, then the stream.
pub fn rtsp_decoder(data: &[u8]) {
    let mut s = Script::new(data);
    let step = usize::from(s.byte()) + 1;
    let quiet_mask = s.byte();
    let stream = s.rest();
    let mut d = Decoder::new();
    let mut pushed = 0usize;
    for (i, chunk) in stream.chunks(step).enumerate() {
        d.push(chunk);
        pushed += chunk.len();
        let quiet = (quiet_mask >> (i % 8)) & 1 == 1;
        while let Some(m) = d.poll(quiet) {
            check_decoded(&d, &m);
        }
        assert!(d.consumed() <= pushed as u64);
        // Whatever stays buffered is one message (or `$` frame) short of
        // complete, plus the chunk that just came.
        assert!(
            d.pending() <= MAX_MESSAGE.max(4 + MAX_INTERLEAVED) + step,
            "{} bytes pending",
            d.pending()
        );
    }
    while let Some(m) = d.poll(true) {
        check_decoded(&d, &m);
    }
    assert!(d.consumed() <= pushed as u64);
}

/// What every message the decoder gives must be.
fn check_decoded(d: &Decoder, m: &Result<Message, ParseError>) {
    match m {
        Ok(Message::Request(r)) => {
            let bytes = r.to_bytes();
            // A standard request we read must read back the same once
            // written (the writer puts CSeq and Session first and keeps
            // only one of each, and adds a space after colons, so compare
            // what a server acts on). Invalid UTF-8 was read lossily, and
            // the space may push a message just under the limit over it.
            if r.dialect == Dialect::Standard
                && std::str::from_utf8(d.last_raw()).is_ok()
                && bytes.len() <= MAX_MESSAGE
            {
                let mut again = Decoder::new();
                again.push(&bytes);
                match again.poll(false) {
                    Some(Ok(Message::Request(back))) => {
                        assert_eq!(back.method, r.method);
                        assert_eq!(back.target, r.target);
                        assert_eq!(back.body, r.body);
                        assert_eq!(back.headers.cseq(), r.headers.cseq());
                        assert_eq!(back.headers.session(), r.headers.session());
                    }
                    other => panic!("{r:?} wrote {bytes:?}, which reads back as {other:?}"),
                }
            }
        }
        Ok(Message::Response(r)) => {
            assert!((100..1000).contains(&r.status));
            assert!(r.body.len() <= MAX_MESSAGE);
        }
        Ok(Message::Interleaved { payload, .. }) => assert!(payload.len() <= MAX_INTERLEAVED),
        Err(e) => assert!((400..600).contains(&e.status()), "{e:?}"),
    }
}

// ----------------------------------------------------------- server ----

/// A server's surroundings whose answers the script chooses.
struct FuzzServerHost {
    flags: u8,
    next_id: u32,
}

impl ServerHost for FuzzServerHost {
    fn open(&mut self, _path: &str) -> Result<MediaInfo, String> {
        if self.flags & 1 != 0 {
            return Err("no such file".into());
        }
        let big = self.flags & 2 != 0;
        Ok(MediaInfo {
            width: if big { 4096 } else { 384 },
            height: if big { 2160 } else { 288 },
            fps: if big { 0 } else { 20 },
            duration: (!big).then_some(25.0),
            live: false,
        })
    }
    fn admit(&mut self) -> Result<(), String> {
        if self.flags & 4 != 0 {
            return Err("too many sessions".into());
        }
        Ok(())
    }
    fn new_session_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }
    fn setup(&mut self, _: &SessionInfo) -> Result<Prepared, String> {
        if self.flags & 8 != 0 {
            return Err("no ports".into());
        }
        Ok(Prepared {
            server_ports: Some((6000, 6001)),
            ssrc: 0x5354_4c42,
        })
    }
    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        if self.flags & 16 != 0 {
            return Err(PlayError::Other("the file went away".into()));
        }
        let start = start.unwrap_or(0.0);
        if start > 25.0 {
            return Err(PlayError::Range(format!("{start}")));
        }
        Ok(PlayInfo {
            seq: 1,
            rtptime: 1,
            start,
            end: Some(25.0),
            live: false,
        })
    }
    fn media_activity(&mut self) -> Option<Instant> {
        None
    }
}

/// The server side of one RTSP connection fed arbitrary bytes. Script:
/// host flags, chunk size - 1, time between chunks (x 50 ms), the bytes.
pub fn server_connection(data: &[u8]) {
    let mut s = Script::new(data);
    let mut host = FuzzServerHost {
        flags: s.byte(),
        next_id: 123_455,
    };
    let step = usize::from(s.byte()) + 1;
    let pause = Duration::from_millis(50 * u64::from(s.byte()));
    let stream = s.rest();
    let mut c = ServerConnection::new(ConnectionConfig::default());
    let mut now = Instant::now();
    let (mut replies, mut calls) = (0usize, 0usize);
    let drain = |c: &mut ServerConnection, replies: &mut usize| {
        while let Some(o) = c.poll_output() {
            if let ServerOutput::Send(b) = o {
                *replies += 1;
                check_reply(&b);
            }
        }
    };
    for chunk in stream.chunks(step) {
        now += pause;
        fire_server_timeouts(&mut c, now, &mut host, &mut calls);
        c.handle_bytes(now, chunk, &mut host);
        calls += 1;
        drain(&mut c, &mut replies);
    }
    // Time goes on without a byte: pending lab requests, the request
    // timeout and the session timeout all fire.
    for wait in [1, 11, 70] {
        fire_server_timeouts(
            &mut c,
            now + Duration::from_secs(wait),
            &mut host,
            &mut calls,
        );
        drain(&mut c, &mut replies);
    }
    c.handle_closed();
    drain(&mut c, &mut replies);
    assert!(c.is_closed());
    // Every reply answers something: a request (at least a few bytes) or a
    // timeout.
    assert!(replies <= stream.len() + calls, "{replies} replies");
}

fn fire_server_timeouts(
    c: &mut ServerConnection,
    now: Instant,
    host: &mut FuzzServerHost,
    calls: &mut usize,
) {
    for _ in 0..MAX_TIMEOUTS_PER_STEP {
        match c.poll_timeout() {
            Some(t) if t <= now => {
                c.handle_timeout(t, host);
                *calls += 1;
            }
            _ => return,
        }
    }
    panic!("the connection keeps asking for a timeout at {now:?}");
}

/// A reply our server writes must read back as one response.
fn check_reply(bytes: &[u8]) {
    assert!(bytes.starts_with(b"RTSP/1.0 "), "{bytes:?}");
    let mut d = Decoder::new();
    d.push(bytes);
    match d.poll(true) {
        Some(Ok(Message::Response(r))) => assert!((100..1000).contains(&r.status)),
        other => panic!("the reply {bytes:?} reads back as {other:?}"),
    }
    assert!(d.poll(true).is_none(), "one reply, one message: {bytes:?}");
}

// ----------------------------------------------------------- client ----

/// A client's sockets as the script drives them; checks every request.
#[derive(Default)]
struct FuzzClientHost {
    refuse_connect: bool,
    fail_send: bool,
    sent: usize,
}

impl ClientHost for FuzzClientHost {
    fn connect(&mut self) -> Result<(), ClientError> {
        if self.refuse_connect {
            return Err(ClientError::Connect {
                addr: "127.0.0.1:8554".into(),
                reason: "refused".into(),
            });
        }
        Ok(())
    }
    fn disconnect(&mut self) {}
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent += 1;
        check_request(bytes);
        if self.fail_send {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }
    fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
        Ok(match route {
            MediaRoute::Udp { .. } => 5000,
            MediaRoute::Interleaved => 0,
        })
    }
    fn close_media(&mut self) {}
    fn stream_info(&mut self, _: StreamInfo) {}
    fn interleaved(&mut self, _channel: u8, payload: &[u8]) {
        assert!(payload.len() <= MAX_INTERLEAVED);
    }
    fn event(&mut self, _: Event) {}
    fn random(&mut self) -> u32 {
        0x1234_5678
    }
}

/// A request our client writes must read back as exactly one request,
/// whatever the server said before (URLs, session ids, challenges all
/// come from its replies).
fn check_request(bytes: &[u8]) {
    let mut d = Decoder::new();
    d.push(bytes);
    match d.poll(true) {
        Some(Ok(Message::Request(_))) => {}
        other => panic!("the request {bytes:?} reads back as {other:?}"),
    }
    assert!(
        d.poll(true).is_none(),
        "one request, one message: {bytes:?}"
    );
}

/// The client side of an RTSP conversation: the server's bytes are the
/// fuzzer's, and so are the buttons pressed and the time that passes.
/// Script: a configuration byte (dialect, transport, credentials,
/// pre-buffer), then steps, each an opcode and its operands (see the
/// match below); `0x0e`/`0x0f` with a 16-bit length feed that many bytes.
pub fn client_connection(data: &[u8]) {
    let mut s = Script::new(data);
    let cfg = s.byte();
    let config = ClientConfig {
        file: "movie.Mjpeg".into(),
        dialect: match cfg & 3 {
            0 => DialectChoice::Auto,
            1 => DialectChoice::Standard,
            _ => DialectChoice::Lab,
        },
        transport: if cfg & 4 != 0 {
            TransportChoice::Tcp
        } else {
            TransportChoice::Udp
        },
        user: (cfg & 8 != 0).then(|| "alice".into()),
        password: (cfg & 8 != 0).then(|| "secret".into()),
        prebuffer: if cfg & 16 != 0 { 3 } else { 0 },
        latency_ms: None,
        ..ClientConfig::default()
    };
    let mut c = ClientConnection::new(config);
    let mut host = FuzzClientHost::default();
    let mut now = Instant::now();
    let mut steps = 0usize;
    while !s.is_empty() {
        steps += 1;
        let op = s.byte() & 0x0f;
        match op {
            0 => c.command(now, ClientCommand::Setup, &mut host),
            1 => c.command(now, ClientCommand::Play, &mut host),
            2 => {
                let millis = u64::from(s.u16()) * 10;
                c.command(now, ClientCommand::PlayFrom { millis }, &mut host);
            }
            3 => c.command(now, ClientCommand::Pause, &mut host),
            4 => c.command(now, ClientCommand::Teardown, &mut host),
            5 => c.command(now, ClientCommand::Shutdown, &mut host),
            6 => {
                let forced = match s.byte() & 3 {
                    0 => Forced::Setup,
                    1 => Forced::Play,
                    2 => Forced::Pause,
                    _ => Forced::Teardown,
                };
                c.command(now, ClientCommand::Force(forced), &mut host);
            }
            7 => {
                let credentials = Credentials {
                    user: "bob".into(),
                    password: "hunter2".into(),
                };
                c.credentials(now, credentials, &mut host);
            }
            8 => c.handle_closed(now, &mut host),
            9 => now += Duration::from_millis(100 * u64::from(s.byte())),
            10 => c.media_seen(Some(now)),
            11 => host.fail_send = !host.fail_send,
            12 => host.refuse_connect = !host.refuse_connect,
            13 => c.start(&mut host),
            _ => {
                let len = usize::from(s.u16());
                let bytes = s.take(len);
                c.handle_bytes(now, bytes, &mut host);
            }
        }
        fire_client_timeouts(&mut c, now, &mut host);
    }
    // Time runs out: every timer fires.
    for wait in [2, 6, 30, 120] {
        fire_client_timeouts(&mut c, now + Duration::from_secs(wait), &mut host);
    }
    // Requests come from buttons, replies and timers, never from nowhere.
    assert!(host.sent <= 4 * (steps + 8), "{} requests", host.sent);
}

fn fire_client_timeouts(c: &mut ClientConnection, now: Instant, host: &mut FuzzClientHost) {
    for _ in 0..MAX_TIMEOUTS_PER_STEP {
        match c.poll_timeout() {
            Some(t) if t <= now => c.handle_timeout(now, host),
            _ => return,
        }
    }
    panic!("the client keeps asking for a timeout at {now:?}");
}

// -------------------------------------------------------------- SDP ----

/// The SDP reader on arbitrary bytes, as a DESCRIBE body.
pub fn sdp(data: &[u8]) {
    match sdp::parse(data) {
        Ok(d) => {
            let text = std::str::from_utf8(data).expect("a parsed SDP is text");
            let lines = text.lines().count();
            assert!(data.len() <= MAX_SDP);
            assert!(!d.media.is_empty() && d.media.len() <= lines);
            for m in &d.media {
                assert!(m.encodings.len() <= lines);
                let _ = m.jpeg_payload_type();
                for &pt in &m.formats {
                    let _ = m.encoding(pt);
                }
                if let Some(c) = &m.control {
                    let url = sdp::join_control("rtsp://h/movie.Mjpeg/", c);
                    assert!(url.starts_with("rtsp://") || url.starts_with("rtsps://"));
                }
            }
            if let Some(c) = &d.session_control {
                let _ = sdp::join_control("rtsp://h/movie.Mjpeg", c);
            }
        }
        Err(SdpError::TooLarge(_)) => assert!(data.len() > MAX_SDP),
        Err(SdpError::NotText) => assert!(std::str::from_utf8(data).is_err()),
        Err(SdpError::NoMedia) => {}
    }
}

// -------------------------------------------------------------- RTP ----

/// What every frame a receiver gives must be: a whole JPEG no bigger than
/// the payload bytes that went in (plus the headers RFC 2435 rebuilds).
fn check_frames(r: &mut Receiver, payload_in: usize) {
    let bound = jpeg_header_bound() + 2;
    while let Some(f) = r.poll_frame() {
        let jpeg = &f.frame.jpeg;
        assert!(jpeg.starts_with(&[0xff, 0xd8]), "no SOI");
        assert!(jpeg.ends_with(&[0xff, 0xd9]), "no EOI");
        assert!(jpeg.len() <= MAX_FRAME + bound, "{} bytes", jpeg.len());
        assert!(
            jpeg.len() <= payload_in + bound,
            "a {}-byte frame from {payload_in} bytes of RTP",
            jpeg.len()
        );
        assert!(f.bytes as usize <= payload_in);
    }
}

/// Our own receiver report must read back with our RTCP reader.
fn check_report(r: &mut Receiver, now: Instant) {
    if let Some(rr) = r.poll_report(now) {
        let packets = rtcp::parse_compound(&rr).expect("our receiver report is RTCP");
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].packet_type, rtcp::PT_RR);
    }
}

fn receiver_for(cfg: u8, now: Instant) -> Receiver {
    let mut r = Receiver::new(ReceiverConfig {
        reorder: cfg & 1 != 0,
        own_ssrc: 0x1234_5678,
        overhead: 28,
        wall: None,
    });
    match (cfg >> 1) & 3 {
        1 => r.set_stream(96, None),
        2 => r.set_stream(26, Some((2560, 128))),
        _ => {}
    }
    r.handle_timeout(now);
    r
}

/// The receiving side of one RTP stream (reorder window, checks, the lab's
/// and RFC 2435 depacketizers, RTCP): datagrams and time from the fuzzer.
/// Script: a configuration byte (reorder, payload type, dimensions), then
/// steps: an opcode (low 2 bits: 0-1 RTP, 2 RTCP, 3 time only; the rest:
/// ms to pass, x 5), a 16-bit length and that many bytes.
pub fn rtp(data: &[u8]) {
    let mut s = Script::new(data);
    let cfg = s.byte();
    let mut now = Instant::now();
    let mut r = receiver_for(cfg, now);
    let (mut packets, mut payload_in, mut records) = (0usize, 0usize, 0usize);
    while !s.is_empty() {
        let op = s.byte();
        now += Duration::from_millis(5 * u64::from(op >> 2));
        match op & 3 {
            0 | 1 => {
                let len = usize::from(s.u16());
                let datagram = s.take(len);
                packets += 1;
                payload_in += datagram.len();
                r.handle_rtp(now, datagram);
            }
            2 => {
                let len = usize::from(s.u16());
                r.handle_rtcp(now, s.take(len));
            }
            _ => {}
        }
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
        check_frames(&mut r, payload_in);
        check_report(&mut r, now);
        records += r.drain_packet_records().count();
        assert!(records <= packets, "{records} records of {packets} packets");
        let _ = r.drain_frame_records().count();
        assert!(r.counters().packets as usize <= packets);
    }
    now += Duration::from_secs(10);
    r.handle_timeout(now);
    check_frames(&mut r, payload_in);
    let _ = r.net_stats(now);
}

// ------------------------------------------------- interleaved ($) ----

/// RTP and RTCP inside an RTSP connection: a decoder reads `$` frames among
/// replies, channel 0 goes to a receiver as RTP, channel 1 as RTCP.
/// Script: a receiver configuration byte (as in [`rtp`]), chunk size - 1,
/// then the connection's bytes.
pub fn interleaved(data: &[u8]) {
    let mut s = Script::new(data);
    let cfg = s.byte();
    let step = usize::from(s.byte()) + 1;
    let stream = s.rest();
    let mut now = Instant::now();
    let mut r = receiver_for(cfg, now);
    let mut d = Decoder::new();
    let (mut pushed, mut framed, mut payload_in) = (0usize, 0usize, 0usize);
    for chunk in stream.chunks(step) {
        now += Duration::from_millis(1);
        d.push(chunk);
        pushed += chunk.len();
        while let Some(m) = d.poll(false) {
            if let Ok(Message::Interleaved { channel, payload }) = m {
                assert!(payload.len() <= MAX_INTERLEAVED);
                assert_eq!(d.last_raw().len(), 4 + payload.len());
                assert_eq!(&d.last_raw()[4..], &payload[..]);
                framed += 4 + payload.len();
                match channel {
                    0 => {
                        payload_in += payload.len();
                        r.handle_rtp(now, &payload);
                    }
                    1 => r.handle_rtcp(now, &payload),
                    _ => {}
                }
            }
        }
        assert!(framed <= pushed);
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
        check_frames(&mut r, payload_in);
        check_report(&mut r, now);
        let _ = r.drain_packet_records().count();
    }
    r.handle_timeout(now + Duration::from_secs(10));
    check_frames(&mut r, payload_in);
}

// ------------------------------------------------------------- RTCP ----

/// The RTCP compound reader, and a receiver taking the datagram as the
/// server's RTCP.
pub fn rtcp(data: &[u8]) {
    if let Some(packets) = rtcp::parse_compound(data) {
        // An RTCP packet is at least its 4-byte header (a BYE or RR with
        // no report blocks).
        assert!(!packets.is_empty() && packets.len() <= data.len() / 4);
        for p in &packets {
            assert!((192..=223).contains(&p.packet_type));
            assert!(p.sr_clock.is_none() || p.packet_type == rtcp::PT_SR);
        }
    }
    let now = Instant::now();
    let mut r = receiver_for(0, now);
    r.handle_rtcp(now, data);
    assert!(r.poll_frame().is_none());
}

// ------------------------------------------------------------- auth ----

/// Reading `WWW-Authenticate` challenges (one value per line of the input)
/// and writing the `Authorization` answer.
pub fn auth(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').take(16).collect();
    let Ok(challenge) = auth::choose(&values) else {
        return;
    };
    let answer = auth::Answer {
        user: "alice",
        password: "secret",
        method: "DESCRIBE",
        uri: "rtsp://127.0.0.1:8554/movie.Mjpeg",
        nonce_count: 1,
        cnonce: "0a4f113b",
    };
    let value = auth::authorization(&challenge, &answer);
    // The value goes into a request header: one line, whatever the server
    // put in its challenge.
    assert!(!value.contains('\n'), "{value:?}");
    match &challenge {
        Challenge::Basic { .. } => assert_eq!(value, "Basic YWxpY2U6c2VjcmV0"),
        Challenge::Digest {
            nonce, qop_auth, ..
        } => {
            assert!(value.starts_with("Digest username=\"alice\""), "{value}");
            let response = value
                .split(", response=\"")
                .nth(1)
                .and_then(|v| v.get(..32))
                .expect("a Digest answer has a response");
            assert!(response.bytes().all(|b| b.is_ascii_hexdigit()), "{value}");
            // Read back as a server would: the nonce is the one it sent,
            // and qop=auth is there exactly when it offered it (a nonce
            // may hold the text "qop=auth" itself).
            let params = auth::params_of(&value["Digest ".len()..]);
            let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            assert_eq!(param("nonce"), Some(nonce), "{value}");
            assert_eq!(
                *qop_auth,
                param("qop").is_some_and(|q| q == "auth"),
                "{value}"
            );
        }
    }
}

// ------------------------------------------------------------ .Mjpeg ----

/// A .Mjpeg file in memory (either framing): open it, read every frame.
pub fn mjpeg_file(data: &[u8]) {
    let Ok(file) = MjpegFile::from_bytes("fuzz.mjpeg", Arc::from(data)) else {
        return;
    };
    let mut total = 0usize;
    let mut n = 0;
    let mut read_to_end = false;
    loop {
        match file.frame(n) {
            Ok(Some(frame)) => {
                assert!(jpeg::is_complete(&frame));
                total += frame.len();
                // Frames are disjoint slices of the file.
                assert!(
                    total <= data.len(),
                    "{total} bytes of frames from {}",
                    data.len()
                );
                let _ = jpeg::inspect(&frame);
                let _ = rtp_jpeg::carriable(&frame);
                n += 1;
            }
            Ok(None) => {
                assert_eq!(file.frame_count(), Some(n));
                assert_eq!(file.index_all().ok(), Some(n));
                read_to_end = true;
                break;
            }
            Err(_) => break,
        }
    }
    // Opening read the first frame: it is there to read again.
    assert!(n >= 1 || !read_to_end);
    assert!(file.skipped().len() <= data.len());
}
