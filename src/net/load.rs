//! `streamlab load`: a light load generator for any RTSP server. One
//! thread and one mio event loop run every session: a non-blocking RTSP
//! connection each (DESCRIBE, SETUP, PLAY; a bounded number of handshakes
//! in flight at once) and, over UDP, one RTP socket each, drained on every
//! readiness event without decoding. Packets and their arrival instants go
//! to a [`FrameMeter`] per session; the figures come from
//! [`crate::protocol::load`].
//!
//! Over the measured window (after the last handshake) it also reads its
//! own CPU time and, when given a process id, the server's, from
//! /proc/PID/stat, and the machine's steal time from /proc/stat.
//!
//! The timer floor: lateness measured here holds what no server can take
//! away (a sleeping thread wakes late on a shared machine, and this loop
//! takes a while to reach a socket among thousands). So a reference
//! sender runs beside the load over the same window: a bare thread of
//! this process that sleeps to an absolute schedule at the stream's rate
//! and sends one packet a frame to a socket in the same event loop,
//! measured as a session is. A server's lateness is read against it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use tracing::debug;

use crate::protocol::load::{FrameMeter, Report, process_ticks, steal_share};
use crate::protocol::rtsp::{Decoder, Message, Response};
use crate::protocol::sdp;
use crate::protocol::url::RtspUrl;

/// How media reaches the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadTransport {
    Udp,
    /// Interleaved in the RTSP connection.
    Tcp,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub url: String,
    pub sessions: usize,
    /// The measured window, after every session has had its handshake.
    pub seconds: f64,
    pub transport: LoadTransport,
    /// Handshakes in flight at once.
    pub parallel: usize,
    /// Seconds of playing after the last handshake before the window
    /// opens (a server's first-viewer work is then not measured).
    pub warmup: f64,
    /// Longest the handshakes may take in all (some servers answer one
    /// at a time: gst-rtsp-server took about 0.1 s per session here).
    pub setup_timeout: Duration,
    /// Also read this process's CPU time over the window (the server's).
    pub server_pid: Option<u32>,
}

impl LoadConfig {
    pub fn new(url: impl Into<String>, sessions: usize, seconds: f64) -> LoadConfig {
        LoadConfig {
            url: url.into(),
            sessions,
            seconds,
            transport: LoadTransport::Udp,
            parallel: 64,
            warmup: 0.0,
            setup_timeout: Duration::from_secs(30)
                .max(Duration::from_millis(150) * sessions as u32),
            server_pid: None,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Url(#[from] crate::protocol::url::UrlError),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("event loop: {0}")]
    Io(#[from] io::Error),
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub report: Report,
    pub fps: f64,
    pub setup_seconds: f64,
    pub window_seconds: f64,
    /// This process's CPU over the window, percent of one core.
    pub own_cpu: f64,
    /// The server process's CPU over the window, percent of one core.
    pub server_cpu: Option<f64>,
    pub server_user_cpu: Option<f64>,
    /// Share of the machine's CPU time stolen by the hypervisor.
    pub steal: Option<f64>,
    /// Sessions that failed, by reason (first reasons seen).
    pub failures: Vec<(String, usize)>,
    /// The reference sender's figures over the same window (one session:
    /// its lateness is the timer floor of this machine under this load).
    pub floor: Option<Report>,
}

impl LoadResult {
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.report;
        serde_json::json!({
            "sessions": r.sessions,
            "playing": r.playing,
            "on_time": r.on_time,
            "passes": r.passes(),
            "frames_expected": r.frames_expected,
            "frames_received": r.frames_received,
            "packets_expected": r.packets_expected,
            "packets_received": r.packets_received,
            "loss": r.loss(),
            "late_p50_ms": r.late_p50_ms,
            "late_p99_ms": r.late_p99_ms,
            "late_max_ms": r.late_max_ms,
            "rate_error_median": r.rate_error_median,
            "rate_error_worst": r.rate_error_worst,
            "fps": self.fps,
            "setup_seconds": self.setup_seconds,
            "window_seconds": self.window_seconds,
            "own_cpu_percent": self.own_cpu,
            "server_cpu_percent": self.server_cpu,
            "server_user_cpu_percent": self.server_user_cpu,
            "steal": self.steal,
            "floor_late_p50_ms": self.floor.as_ref().map(|f| f.late_p50_ms),
            "floor_late_p99_ms": self.floor.as_ref().map(|f| f.late_p99_ms),
            "floor_late_max_ms": self.floor.as_ref().map(|f| f.late_max_ms),
            "floor_frames_received": self.floor.as_ref().map(|f| f.frames_received),
            "failures": self.failures.iter().map(|(k, n)| serde_json::json!({"reason": k, "count": n})).collect::<Vec<_>>(),
        })
    }

    pub fn to_text(&self) -> String {
        let r = &self.report;
        let mut s = format!(
            "{} of {} sessions reached PLAY (handshakes took {:.1} s); {} on time ({})\n\
             frames {} of {} expected at {:.2} fps over {:.1} s; packet loss {:.3}%\n\
             lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             load generator CPU {:.1}% of a core",
            r.playing,
            r.sessions,
            self.setup_seconds,
            r.on_time,
            if r.passes() { "passes" } else { "fails" },
            r.frames_received,
            r.frames_expected,
            self.fps,
            self.window_seconds,
            100.0 * r.loss(),
            r.late_p50_ms,
            r.late_p99_ms,
            r.late_max_ms,
            self.own_cpu,
        );
        if let (Some(m), Some(w)) = (r.rate_error_median, r.rate_error_worst) {
            s += &format!(
                "\nrate against each session's RTP clock: median {:+.4}%, furthest off {:+.4}%",
                100.0 * m,
                100.0 * w
            );
        }
        if let Some(c) = self.server_cpu {
            s += &format!(
                "; server CPU {c:.1}% (user {:.1}%)",
                self.server_user_cpu.unwrap_or(0.0)
            );
        }
        if let Some(st) = self.steal {
            s += &format!("; steal {:.2}%", 100.0 * st);
        }
        if let Some(f) = &self.floor {
            s += &format!(
                "\ntimer floor (a bare sleeper of this process sending at the same rate, measured the same way): \
                 lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; the server's p99 is {:+.1} ms from it",
                f.late_p50_ms,
                f.late_p99_ms,
                f.late_max_ms,
                r.late_p99_ms - f.late_p99_ms,
            );
        }
        for (reason, n) in &self.failures {
            s += &format!("\n{n} sessions failed: {reason}");
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    Connecting,
    Describe,
    Setup,
    Play,
    Playing,
    Failed,
}

struct Session {
    step: Step,
    tcp: Option<TcpStream>,
    udp: Option<(UdpSocket, std::net::UdpSocket)>,
    decoder: Decoder,
    out: Vec<u8>,
    cseq: u32,
    /// The track's URL (SETUP).
    control: String,
    /// The presentation's URL (PLAY, TEARDOWN: aggregate control).
    aggregate: String,
    session_id: Option<String>,
    clock: u32,
    meter: Option<FrameMeter>,
    /// When the next keep-alive is due, and how often: half the timeout
    /// the server gave in its Session header, as a real client does, so
    /// that runs longer than the timeout measure playing sessions.
    keep_alive: Option<(Instant, Duration)>,
}

/// A session's timeout when the server names none (RFC 2326 section 12.37).
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the loop looks for keep-alives due while nothing else wakes it.
const KEEP_ALIVE_CHECK: Duration = Duration::from_millis(250);

/// CPU ticks per second in /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The reference sender's socket in the event loop; session tokens are
/// `2 * i` and `2 * i + 1`, far below.
const FLOOR_TOKEN: Token = Token(usize::MAX);

/// The reference sender: its thread and the socket it sends to.
struct Floor {
    socket: UdpSocket,
    meter: FrameMeter,
    thread: Option<JoinHandle<()>>,
}

impl Floor {
    /// Start sending at `fps` from now until `until`.
    fn start(poll: &Poll, fps: f64, until: Instant) -> io::Result<Floor> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut socket = UdpSocket::bind(loopback)?;
        let to = socket.local_addr()?;
        poll.registry()
            .register(&mut socket, FLOOR_TOKEN, Interest::READABLE)?;
        let sender = std::net::UdpSocket::bind(loopback)?;
        sender.connect(to)?;
        let now = Instant::now();
        let thread = std::thread::Builder::new()
            .name("load-floor".into())
            .spawn(move || bare_sender(&sender, fps, now, until))?;
        Ok(Floor {
            socket,
            meter: FrameMeter::new(90_000, now),
            thread: Some(thread),
        })
    }

    fn drain(&mut self, buf: &mut [u8]) {
        loop {
            match self.socket.recv(buf) {
                Ok(n) => {
                    self.meter.packet(Instant::now(), &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn finish(mut self, end: Instant, fps: f64) -> Report {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Report::new(1, &[self.meter], end, fps)
    }
}

/// One RTP packet a frame on an absolute schedule (frame k at
/// `start + k / fps`, never drifting), doing nothing else: what a perfect
/// server's one session would be on this machine.
fn bare_sender(socket: &std::net::UdpSocket, fps: f64, start: Instant, until: Instant) {
    let period = Duration::from_secs_f64(1.0 / fps.max(0.1));
    let mut packet = [0u8; 200];
    packet[0] = 0x80;
    packet[1] = 0x80 | 26;
    for k in 0u32.. {
        let due = start + period * k;
        if due >= until {
            return;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ts = (f64::from(k) * 90_000.0 / fps) as u64 as u32;
        packet[2..4].copy_from_slice(&(k as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&ts.to_be_bytes());
        let _ = socket.send(&packet);
    }
}

fn ticks_of(pid: &str) -> Option<(u64, u64)> {
    process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Run the load and measure it.
pub fn run(cfg: &LoadConfig) -> Result<LoadResult, LoadError> {
    let url = RtspUrl::parse(&cfg.url)?;
    let addr: SocketAddr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LoadError::Resolve(cfg.url.clone()))?;
    let request_url = url.request_url();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut sessions: Vec<Session> = (0..cfg.sessions)
        .map(|_| Session {
            step: Step::Idle,
            tcp: None,
            udp: None,
            decoder: Decoder::new(),
            out: Vec::new(),
            cseq: 0,
            control: request_url.clone(),
            aggregate: request_url.clone(),
            session_id: None,
            clock: 90_000,
            meter: None,
            keep_alive: None,
        })
        .collect();
    let mut fps: Option<f64> = None;
    let mut failures: Vec<(String, usize)> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let started = Instant::now();
    let mut next_idle = 0usize;
    let mut in_flight = 0usize;
    let mut window: Option<(Instant, Window)> = None;
    let mut floor: Option<Floor> = None;
    let mut end = None;
    let mut warm_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Start handshakes up to the limit.
        while in_flight < cfg.parallel.max(1) && next_idle < sessions.len() && window.is_none() {
            let i = next_idle;
            next_idle += 1;
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    poll.registry().register(
                        &mut s,
                        Token(2 * i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    sessions[i].tcp = Some(s);
                    sessions[i].step = Step::Connecting;
                    in_flight += 1;
                }
                Err(e) => fail(&mut sessions[i], &mut failures, format!("connect: {e}")),
            }
        }
        if window.is_none() {
            let all_done = next_idle >= sessions.len() && in_flight == 0;
            let timed_out = now.duration_since(started) > cfg.setup_timeout;
            if (all_done || timed_out) && warm_until.is_none() {
                warm_until = Some(now + Duration::from_secs_f64(cfg.warmup.max(0.0)));
            }
            if warm_until.is_some_and(|w| now >= w) {
                for s in sessions
                    .iter_mut()
                    .filter(|s| !matches!(s.step, Step::Playing | Step::Failed))
                {
                    fail(s, &mut failures, "handshake timed out".into());
                }
                // Only the window is measured: frames during the other
                // sessions' handshakes (which load some servers) are not.
                for m in sessions.iter_mut().filter_map(|s| s.meter.as_mut()) {
                    m.restart(now);
                }
                let w = Window::open(cfg.server_pid);
                let ends = now + Duration::from_secs_f64(cfg.seconds.max(0.0));
                end = Some(ends);
                window = Some((now, w));
                floor = match Floor::start(&poll, fps.unwrap_or(20.0), ends) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        debug!("no reference sender: {e}");
                        None
                    }
                };
            }
        }
        // Only sessions already playing: no handshake is in flight here.
        for s in sessions.iter_mut() {
            if let Err(reason) = keep_alive(s, now) {
                fail(s, &mut failures, reason);
            }
        }
        let timeout = match end {
            Some(e) => {
                if now >= e {
                    break;
                }
                (e - now).min(KEEP_ALIVE_CHECK)
            }
            None => match warm_until {
                Some(w) => w
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            },
        };
        poll.poll(&mut events, Some(timeout))?;
        for ev in events.iter() {
            if ev.token() == FLOOR_TOKEN {
                if let Some(f) = floor.as_mut() {
                    f.drain(&mut buf);
                }
                continue;
            }
            let i = ev.token().0 / 2;
            let Some(s) = sessions.get_mut(i) else {
                continue;
            };
            if ev.token().0 % 2 == 1 {
                drain_udp(s, &mut buf);
                continue;
            }
            let before = s.step;
            if let Err(reason) = drive_tcp(s, &mut buf, cfg.transport, &poll, i, &mut fps) {
                fail(s, &mut failures, reason);
            }
            let settled = |st: Step| matches!(st, Step::Playing | Step::Failed);
            if !settled(before) && settled(s.step) {
                in_flight = in_flight.saturating_sub(1);
            }
        }
    }
    let finished = Instant::now();
    let (opened, w) = window.unwrap_or((finished, Window::open(cfg.server_pid)));
    let window_seconds = finished.duration_since(opened).as_secs_f64();
    let fps = fps.unwrap_or(20.0);
    let meters: Vec<FrameMeter> = sessions.iter().filter_map(|s| s.meter.clone()).collect();
    let report = Report::new(cfg.sessions, &meters, finished, fps);
    let floor = floor.map(|f| f.finish(finished, fps));
    let closed = w.close(window_seconds);
    // Say goodbye: TEARDOWN where the socket takes it at once.
    for s in sessions.iter_mut() {
        if let (Some(tcp), Some(id)) = (s.tcp.as_mut(), s.session_id.as_ref()) {
            let req = format!(
                "TEARDOWN {} RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\n\r\n",
                s.aggregate,
                s.cseq + 1
            );
            let _ = tcp.write(req.as_bytes());
        }
    }
    Ok(LoadResult {
        report,
        fps,
        setup_seconds: opened.duration_since(started).as_secs_f64(),
        window_seconds,
        own_cpu: closed.own,
        server_cpu: closed.server.map(|(u, s)| u + s),
        server_user_cpu: closed.server.map(|(u, _)| u),
        steal: closed.steal,
        failures,
        floor,
    })
}

/// CPU readings at the start of the measured window.
struct Window {
    own: Option<(u64, u64)>,
    server_pid: Option<u32>,
    server: Option<(u64, u64)>,
    stat: Option<String>,
}

struct Closed {
    own: f64,
    server: Option<(f64, f64)>,
    steal: Option<f64>,
}

impl Window {
    fn open(server_pid: Option<u32>) -> Window {
        Window {
            own: ticks_of("self"),
            server_pid,
            server: server_pid.and_then(|p| ticks_of(&p.to_string())),
            stat: std::fs::read_to_string("/proc/stat").ok(),
        }
    }

    fn close(&self, seconds: f64) -> Closed {
        let pct = |t: u64| 100.0 * t as f64 / TICKS / seconds.max(1e-3);
        let own = match (self.own, ticks_of("self")) {
            (Some((u0, s0)), Some((u1, s1))) => pct(u1 + s1 - u0 - s0),
            _ => 0.0,
        };
        let server = match (
            self.server,
            self.server_pid.and_then(|p| ticks_of(&p.to_string())),
        ) {
            (Some((u0, s0)), Some((u1, s1))) => {
                Some((pct(u1.saturating_sub(u0)), pct(s1.saturating_sub(s0))))
            }
            _ => None,
        };
        let steal = match (&self.stat, std::fs::read_to_string("/proc/stat").ok()) {
            (Some(a), Some(b)) => steal_share(a, &b),
            _ => None,
        };
        Closed { own, server, steal }
    }
}

fn fail(s: &mut Session, failures: &mut Vec<(String, usize)>, reason: String) {
    if s.step == Step::Failed {
        return;
    }
    debug!("load session failed: {reason}");
    s.step = Step::Failed;
    s.tcp = None;
    s.udp = None;
    if let Some((_, n)) = failures.iter_mut().find(|(r, _)| *r == reason) {
        *n += 1;
    } else if failures.len() < 16 {
        failures.push((reason, 1));
    }
}

fn drain_udp(s: &mut Session, buf: &mut [u8]) {
    let Some((rtp, _)) = &s.udp else {
        return;
    };
    loop {
        match rtp.recv(buf) {
            Ok(n) => {
                if let Some(m) = &mut s.meter {
                    m.packet(Instant::now(), &buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Read and write what the RTSP connection has; Err says why it failed.
fn drive_tcp(
    s: &mut Session,
    buf: &mut [u8],
    transport: LoadTransport,
    poll: &Poll,
    index: usize,
    fps: &mut Option<f64>,
) -> Result<(), String> {
    if s.step == Step::Failed {
        return Ok(());
    }
    if s.step == Step::Connecting {
        let Some(tcp) = &s.tcp else {
            return Err("no connection".into());
        };
        match tcp.peer_addr() {
            Ok(_) => {
                let _ = tcp.set_nodelay(true);
                s.cseq = 1;
                s.out.extend_from_slice(
                    format!(
                        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: streamlab-load\r\n\r\n",
                        s.control
                    )
                    .as_bytes(),
                );
                s.step = Step::Describe;
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    // Read everything there is.
    loop {
        let Some(tcp) = s.tcp.as_mut() else {
            return Ok(());
        };
        match tcp.read(buf) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => {
                let now = Instant::now();
                s.decoder.push(&buf[..n]);
                while let Some(m) = s.decoder.poll(false) {
                    match m {
                        Ok(Message::Response(r)) => {
                            on_response(s, r, transport, poll, index, fps, now)?
                        }
                        Ok(Message::Interleaved {
                            channel: 0,
                            payload,
                        }) => {
                            if let Some(m) = &mut s.meter {
                                m.packet(now, &payload);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => return Err(format!("bad message from the server: {e}")),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    flush(s)
}

fn flush(s: &mut Session) -> Result<(), String> {
    let Some(tcp) = s.tcp.as_mut() else {
        return Ok(());
    };
    while !s.out.is_empty() {
        match tcp.write(&s.out) {
            Ok(0) => return Err("write: connection closed".into()),
            Ok(n) => {
                s.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}

fn on_response(
    s: &mut Session,
    r: Response,
    transport: LoadTransport,
    poll: &Poll,
    index: usize,
    fps: &mut Option<f64>,
    now: Instant,
) -> Result<(), String> {
    let step = s.step;
    if r.status != 200 {
        return Err(format!("{step:?} answered {} {}", r.status, r.reason));
    }
    match step {
        Step::Describe => {
            let d = sdp::parse(&r.body).map_err(|e| format!("DESCRIBE: {e}"))?;
            let media = d
                .media
                .iter()
                .find(|m| m.kind == "video")
                .ok_or("DESCRIBE: no video in the description")?;
            let base = r
                .headers
                .get("Content-Base")
                .unwrap_or(&s.control)
                .to_string();
            s.aggregate = match d.session_control.as_deref() {
                Some(c) => sdp::join_control(&base, c),
                None => base.clone(),
            };
            if let Some(c) = media.control.as_deref() {
                s.control = sdp::join_control(&base, c);
            }
            if let Some(pt) = media.jpeg_payload_type()
                && let Some((_, _, clock)) = media.encodings.iter().find(|(p, _, _)| *p == pt)
            {
                s.clock = *clock;
            }
            if fps.is_none() {
                *fps = media.framerate;
            }
            let spec = match transport {
                LoadTransport::Tcp => "RTP/AVP/TCP;unicast;interleaved=0-1".to_string(),
                LoadTransport::Udp => {
                    let (mut rtp, rtcp) = bind_pair().map_err(|e| format!("UDP: {e}"))?;
                    let port = rtp.local_addr().map_err(|e| e.to_string())?.port();
                    poll.registry()
                        .register(&mut rtp, Token(2 * index + 1), Interest::READABLE)
                        .map_err(|e| e.to_string())?;
                    s.udp = Some((rtp, rtcp));
                    format!("RTP/AVP;unicast;client_port={port}-{}", port + 1)
                }
            };
            s.cseq += 1;
            s.out.extend_from_slice(
                format!(
                    "SETUP {} RTSP/1.0\r\nCSeq: {}\r\nTransport: {spec}\r\nUser-Agent: streamlab-load\r\n\r\n",
                    s.control, s.cseq
                )
                .as_bytes(),
            );
            s.step = Step::Setup;
        }
        Step::Setup => {
            let id = r
                .headers
                .session()
                .ok_or("SETUP: no Session in the reply")?
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            s.cseq += 1;
            s.out.extend_from_slice(
                format!(
                    "PLAY {} RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\nRange: npt=0.000-\r\nUser-Agent: streamlab-load\r\n\r\n",
                    s.aggregate, s.cseq
                )
                .as_bytes(),
            );
            let timeout = r
                .headers
                .get("Session")
                .and_then(|v| {
                    v.split(';')
                        .find_map(|p| p.trim().strip_prefix("timeout="))
                        .and_then(|t| t.trim().parse::<u64>().ok())
                })
                .filter(|&t| t > 0)
                .map_or(DEFAULT_SESSION_TIMEOUT, Duration::from_secs);
            let every = (timeout / 2).max(Duration::from_secs(1));
            s.keep_alive = Some((now + every, every));
            s.session_id = Some(id);
            s.step = Step::Play;
        }
        Step::Play => {
            s.meter = Some(FrameMeter::new(s.clock, now));
            s.step = Step::Playing;
        }
        _ => {}
    }
    Ok(())
}

/// Sends OPTIONS with the session's id when its keep-alive is due (every
/// server takes it; a request in the session keeps it alive).
fn keep_alive(s: &mut Session, now: Instant) -> Result<(), String> {
    let (Some((due, every)), Some(id)) = (s.keep_alive, s.session_id.as_ref()) else {
        return Ok(());
    };
    if now < due || s.step != Step::Playing {
        return Ok(());
    }
    s.keep_alive = Some((now + every, every));
    s.cseq += 1;
    s.out.extend_from_slice(
        format!(
            "OPTIONS {} RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\nUser-Agent: streamlab-load\r\n\r\n",
            s.aggregate, s.cseq
        )
        .as_bytes(),
    );
    flush(s)
}

/// An RTP socket and the RTCP one at the next port, both on loopback's
/// wildcard; the RTCP one is kept open (so reports to it are not refused)
/// and never read.
fn bind_pair() -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    let mut last = io::Error::other("no free port pair");
    for _ in 0..32 {
        let rtp = std::net::UdpSocket::bind("0.0.0.0:0")?;
        let port = rtp.local_addr()?.port();
        if port == u16::MAX {
            continue;
        }
        match std::net::UdpSocket::bind(("0.0.0.0", port + 1)) {
            Ok(rtcp) => {
                rtp.set_nonblocking(true)?;
                return Ok((UdpSocket::from_std(rtp), rtcp));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
