//! Helpers shared by the end-to-end tests: a server on 127.0.0.1 with an
//! ephemeral port, the lab's sample file, a client that writes the lab's
//! exact bytes (the test's own, independent of our client engine), and
//! scripted RTSP servers (replayed cameras, one that wants Digest); in
//! `relay`, an impairment relay between a client and a server.
#![allow(dead_code)]

pub mod relay;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streamlab::net::server::{Server, ServerConfig, ServerHandle};
use streamlab::protocol::auth::md5_hex;
use streamlab::protocol::rtsp::{Decoder, Dialect, Message, Request, Response};

/// The lab's original sample video (500 frames, 384x288).
pub fn movie_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/media/movie.Mjpeg"
    ))
}

pub fn media_root() -> PathBuf {
    movie_path().parent().unwrap().to_path_buf()
}

/// movie.Mjpeg's frames, split by the test itself (5-digit lengths).
pub fn movie_frames() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(movie_path()).expect("movie.Mjpeg");
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len: usize = std::str::from_utf8(&bytes[at..at + 5])
            .unwrap()
            .parse()
            .unwrap();
        frames.push(bytes[at + 5..at + 5 + len].to_vec());
        at += 5 + len;
    }
    assert_eq!(frames.len(), 500);
    frames
}

/// A server on 127.0.0.1 with a free port serving `root`.
pub fn server(root: PathBuf, fps: u32) -> ServerHandle {
    server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(root),
        fps,
        ..ServerConfig::default()
    })
}

pub fn server_with(config: ServerConfig) -> ServerHandle {
    Server::bind(config).expect("bind").spawn()
}

/// A fresh temporary folder of our own.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "streamlab-test-{}-{}-{}",
        name,
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A client written the way the lab's clients are: it sends the lab's
/// exact bytes (or CRLF ones) and reads RTP from its own UDP port.
pub struct LabClient {
    pub rtsp: TcpStream,
    pub rtp: UdpSocket,
    pub session: Option<String>,
    pub cseq: u32,
    pub crlf: bool,
    decoder: Decoder,
}

impl LabClient {
    pub fn connect(addr: SocketAddr) -> LabClient {
        let rtsp = TcpStream::connect(addr).expect("connect");
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        LabClient {
            rtsp,
            rtp,
            session: None,
            cseq: 0,
            crlf: false,
            decoder: Decoder::new(),
        }
    }

    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().unwrap().port()
    }

    /// Send one request in the lab's form: request line, CSeq, then
    /// Transport (SETUP) or Session; LF and no blank line, or CRLF with one.
    pub fn request(&mut self, method: &str, file: &str) -> Response {
        self.cseq += 1;
        let third = if method == "SETUP" {
            format!("Transport: RTP/UDP; client_port= {}", self.rtp_port())
        } else {
            format!("Session: {}", self.session.clone().unwrap_or_default())
        };
        let lines = [
            format!("{method} {file} RTSP/1.0"),
            format!("CSeq: {}", self.cseq),
            third,
        ];
        let bytes = if self.crlf {
            format!("{}\r\n\r\n", lines.join("\r\n"))
        } else {
            lines.join("\n")
        };
        self.send_raw(bytes.as_bytes());
        let r = self.read_reply();
        if method == "SETUP" && r.status == 200 {
            self.session = r.headers.session().map(str::to_string);
        }
        r
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.rtsp.write_all(bytes).unwrap();
    }

    /// Read one reply; a lab reply has no terminator, so it is complete
    /// when no more bytes come for a moment.
    pub fn read_reply(&mut self) -> Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 2048];
        loop {
            let has_partial = !self.decoder_has_nothing();
            if let Some(m) = self.decoder.poll(false) {
                return as_response(m);
            }
            let wait = if has_partial {
                Duration::from_millis(60)
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            assert!(!wait.is_zero(), "no reply within 10 s");
            self.rtsp.set_read_timeout(Some(wait)).unwrap();
            match self.rtsp.read(&mut buf) {
                Ok(0) => panic!("server closed the connection"),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(_) if has_partial => {
                    let m = self.decoder.poll(true).expect("a whole reply");
                    return as_response(m);
                }
                Err(e) => panic!("no reply: {e}"),
            }
        }
    }

    fn decoder_has_nothing(&self) -> bool {
        self.decoder.pending() == 0
    }

    /// Whether the server closed the RTSP connection (within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.rtsp.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match self.rtsp.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The next RTP datagram, or None after `wait`.
    pub fn recv_rtp(&self, wait: Duration) -> Option<Vec<u8>> {
        self.rtp.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 70_000];
        match self.rtp.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }
}

fn as_response(m: Result<Message, streamlab::protocol::rtsp::ParseError>) -> Response {
    match m {
        Ok(Message::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Fields of an RTP header, read by the test itself.
#[derive(Debug, Clone, Copy)]
pub struct Rtp {
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    pub cc: u8,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

pub fn rtp_header(p: &[u8]) -> Rtp {
    Rtp {
        version: p[0] >> 6,
        padding: p[0] & 0x20 != 0,
        extension: p[0] & 0x10 != 0,
        cc: p[0] & 0x0f,
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    }
}

/// Whether the peers that interop tests drive must be present (CI).
pub fn peers_required() -> bool {
    std::env::var_os("STREAMLAB_REQUIRE_PEERS").is_some_and(|v| v != "0")
}

/// Whether `program` can run here; a missing one fails in CI.
pub fn have(program: &str) -> bool {
    // ffmpeg and ffprobe spell it -version; GStreamer --version.
    let flag = if program.starts_with("ff") {
        "-version"
    } else {
        "--version"
    };
    let found = std::process::Command::new(program)
        .arg(flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !peers_required(),
            "{program} is required (STREAMLAB_REQUIRE_PEERS)"
        );
        eprintln!("{program} not installed; skipping");
    }
    found
}

/// A server on loopback that answers each request with what `reply`
/// returns (None: no answer), like a camera replaying its fixture. Takes
/// one connection; the thread returns the requests it saw.
pub fn fake_server(
    reply: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    fake_server_for(1, reply)
}

/// [`fake_server`] taking `connections` connections, each served as it
/// comes (a client that retries opens a new one); the requests come back
/// in the order the connections were accepted.
pub fn fake_server_for(
    connections: usize,
    reply: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    let t = std::thread::spawn(move || {
        let mut served = Vec::new();
        for _ in 0..connections {
            let Ok((s, _)) = listener.accept() else {
                break;
            };
            let reply = reply.clone();
            served.push(std::thread::spawn(move || serve_script(s, &*reply)));
        }
        served
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    });
    (addr, t)
}

fn serve_script(mut s: TcpStream, reply: &dyn Fn(&Request) -> Option<Vec<u8>>) -> Vec<Request> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut d = Decoder::new();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        d.push(&buf[..n]);
        while let Some(Ok(Message::Request(r))) = d.poll(false) {
            if let Some(bytes) = reply(&r)
                && s.write_all(&bytes).is_err()
            {
                return seen;
            }
            seen.push(r);
        }
    }
    seen
}

/// A 200 OK to `r` with these headers.
pub fn ok(r: &Request, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut resp = Response::new(200, Dialect::Standard);
    resp.headers
        .push("CSeq", r.headers.cseq().unwrap_or(0).to_string());
    for (n, v) in extra {
        resp.headers.push(*n, *v);
    }
    resp.to_bytes()
}

/// The user name [`digest_server`] knows.
pub const DIGEST_USER: &str = "admin";

/// A server that wants Digest (no qop) from [`DIGEST_USER`] with
/// `password`, as cameras ask, for `connections` connections. OPTIONS is
/// answered to anyone; its SDP offers JPEG but no RTP ever comes.
pub fn digest_server(
    password: &'static str,
    connections: usize,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    digest_server_guarding(password, connections, |method| method != "OPTIONS")
}

/// [`digest_server`] for one connection that lets anyone set up and asks
/// for credentials from PLAY on, as a camera whose nonce expired in the
/// middle of a session does.
pub fn digest_from_play_server(password: &'static str) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    digest_server_guarding(password, 1, |method| {
        !matches!(method, "OPTIONS" | "DESCRIBE" | "SETUP")
    })
}

/// [`digest_server`], asking for credentials where `guarded(method)`.
pub fn digest_server_guarding(
    password: &'static str,
    connections: usize,
    guarded: fn(&str) -> bool,
) -> (SocketAddr, JoinHandle<Vec<Request>>) {
    let realm = "streamlab-test";
    let nonce = "0123456789abcdef";
    fake_server_for(connections, move |r| {
        let expected = |uri: &str| {
            let ha1 = md5_hex(format!("{DIGEST_USER}:{realm}:{password}").as_bytes());
            let ha2 = md5_hex(format!("{}:{uri}", r.method).as_bytes());
            md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
        };
        if r.method.as_str() == "OPTIONS" {
            return Some(ok(
                r,
                &[("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")],
            ));
        }
        let authorized = !guarded(r.method.as_str())
            || r.headers.get("Authorization").is_some_and(|a| {
                a.starts_with("Digest ")
                    && a.contains(&format!("response=\"{}\"", expected(&r.target)))
            });
        if !authorized {
            let mut resp = Response::new(401, Dialect::Standard);
            resp.headers
                .push("CSeq", r.headers.cseq().unwrap_or(0).to_string());
            resp.headers.push(
                "WWW-Authenticate",
                format!("Digest realm=\"{realm}\", nonce=\"{nonce}\""),
            );
            return Some(resp.to_bytes());
        }
        Some(match r.method.as_str() {
            "DESCRIBE" => {
                let mut resp = Response::new(200, Dialect::Standard);
                resp.headers
                    .push("CSeq", r.headers.cseq().unwrap_or(0).to_string());
                resp.headers.push("Content-Type", "application/sdp");
                resp.body =
                    b"v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n".to_vec();
                resp.to_bytes()
            }
            "SETUP" => ok(r, &[("Session", "777;timeout=30")]),
            _ => ok(r, &[("Session", "777")]),
        })
    })
}

/// Take `client`'s events until `f` holds (it gets each event and the
/// instant it was taken), for up to 15 s.
pub fn wait_for(
    client: &streamlab::net::client::ClientHandle,
    what: &str,
    mut f: impl FnMut(&streamlab::net::client::ClientEvent, Instant) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = client
            .events()
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        if f(&ev, Instant::now()) {
            return;
        }
    }
}

/// Whether python3 runs (for the lab's peers in tests/peers); without it a
/// test is skipped, unless peers are required, where it fails.
pub fn have_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || !peers_required(),
        "python3 is required (STREAMLAB_REQUIRE_PEERS) but does not run"
    );
    if !ok {
        eprintln!("note: python3 not found; skipping a test with a Python peer");
    }
    ok
}

/// A child process that is killed (and reaped) however the test ends.
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ctrl-C for a child process, as a user's terminal sends it.
pub fn interrupt(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}
