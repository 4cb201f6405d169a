//! `check client`'s runner. In the lab's RTSP, Streamlab's own server
//! serves the student's client and reports every byte it reads and
//! writes, and every RTP send the client's port refused
//! ([`ServerConfig::observer`]); the [`ClientChecker`] notes them. In
//! TPC-3, which that server does not speak yet, this runner listens
//! itself and sends the file as the checker decides.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::Rng;

use super::{CheckError, CheckEvent};
use crate::media::MjpegFile;
use crate::net::server::{Observed, Server, ServerConfig, root_and_name};
use crate::protocol::check::client::{ClientChecker, ClientOutput};
use crate::protocol::check::{CheckDialect, Report};
use crate::protocol::rtp::{PT_JPEG, RtpHeader};

/// How often the loops look whether they were asked to stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// What `check client` serves, and where.
#[derive(Debug, Clone)]
pub struct ClientCheckOptions {
    pub bind: SocketAddr,
    /// The file served; None: the bundled sample, as `movie.Mjpeg` too.
    pub file: Option<PathBuf>,
    /// Lab or TPC-3.
    pub dialect: CheckDialect,
    /// Frames per second sent (the handout's 20).
    pub fps: u32,
}

impl Default for ClientCheckOptions {
    fn default() -> Self {
        ClientCheckOptions {
            bind: SocketAddr::from(([0, 0, 0, 0], 1025)),
            file: None,
            dialect: CheckDialect::Lab,
            fps: 20,
        }
    }
}

/// Serve one client and check it; returns when it disconnects (or
/// `stop` is set: [`CheckError::Stopped`]). `events` gets
/// [`CheckEvent::Listening`] first, then the wire log as it goes.
pub fn check_client(
    opts: ClientCheckOptions,
    events: Option<Sender<CheckEvent>>,
    stop: Option<Arc<AtomicBool>>,
) -> Result<Report, CheckError> {
    let say = |e: CheckEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    let stopped = || stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let report = if opts.dialect == CheckDialect::Tpc3 {
        tpc3(&opts, &say, &stopped)?
    } else {
        lab(&opts, &say, &stopped)?
    };
    say(CheckEvent::Finished(report.clone()));
    Ok(report)
}

/// The served files: the one named, or the sample under two names.
fn files(opts: &ClientCheckOptions) -> Result<Vec<(String, Arc<MjpegFile>)>, CheckError> {
    match &opts.file {
        Some(path) => {
            let (_, name) = root_and_name(path).ok_or_else(|| {
                CheckError::Server(format!("{} is not a file name", path.display()))
            })?;
            let file = MjpegFile::open(path)
                .map_err(|e| CheckError::Server(format!("cannot read {}: {e}", path.display())))?;
            Ok(vec![(name, Arc::new(file))])
        }
        None => {
            let clip = |name: &str| {
                MjpegFile::from_bytes(name, Arc::from(crate::SAMPLE_CLIP))
                    .map(Arc::new)
                    .map_err(|e| CheckError::Server(e.to_string()))
            };
            Ok(vec![
                ("movie.Mjpeg".to_string(), clip("movie.Mjpeg")?),
                (crate::SAMPLE_NAME.to_string(), clip(crate::SAMPLE_NAME)?),
            ])
        }
    }
}

fn lab(
    opts: &ClientCheckOptions,
    say: &dyn Fn(CheckEvent),
    stopped: &dyn Fn() -> bool,
) -> Result<Report, CheckError> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let served = files(opts)?;
    let names: Vec<String> = served.iter().map(|(n, _)| n.clone()).collect();
    let config = ServerConfig {
        bind: opts.bind,
        root: None,
        fps: opts.fps,
        builtin: served,
        observer: Some(tx),
        ..ServerConfig::default()
    };
    let server = Server::bind(config).map_err(|e| CheckError::Listen {
        port: opts.bind.port(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let handle = server.spawn();
    let addr = handle.local_addr();
    say(CheckEvent::Listening(addr));
    say(CheckEvent::Started(format!(
        "serving {} on port {} as the lab's server does; start your client (e.g. python ClientLauncher.py 127.0.0.1 {} 5008 {})",
        names.join(" and "),
        addr.port(),
        addr.port(),
        names[0]
    )));
    let mut checker = ClientChecker::new(opts.dialect, names, 0);
    let mut checked: Option<SocketAddr> = None;
    let result = loop {
        while let Some(out) = checker.poll_output() {
            if let ClientOutput::Wire(w) = out {
                say(CheckEvent::Wire(w));
            }
        }
        if checker.is_done() {
            break Ok(());
        }
        if stopped() {
            break Err(CheckError::Stopped);
        }
        let now = Instant::now();
        let wake = checker
            .poll_timeout()
            .unwrap_or(now + STOP_POLL)
            .min(now + STOP_POLL);
        match rx.recv_deadline(wake) {
            Ok(seen) => {
                // The first client to connect is the one checked.
                let peer = match &seen {
                    Observed::Received { peer, .. }
                    | Observed::Sent { peer, .. }
                    | Observed::Closed { peer, .. }
                    | Observed::RtpRefused { peer, .. } => *peer,
                };
                if *checked.get_or_insert(peer) != peer {
                    continue;
                }
                match seen {
                    Observed::Received { at, bytes, .. } => checker.handle_received(at, &bytes),
                    Observed::Sent { at, bytes, .. } => checker.handle_sent(at, &bytes),
                    Observed::Closed { at, .. } => checker.handle_closed(at),
                    Observed::RtpRefused { at, .. } => checker.handle_refused(at),
                }
            }
            Err(RecvTimeoutError::Timeout) => checker.handle_timeout(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => break Err(CheckError::Stopped),
        }
    };
    handle.stop();
    result.map(|()| checker.report())
}

enum Input {
    Accepted(TcpStream),
    Bytes(Instant, Vec<u8>),
    Closed(Instant),
    MediaSent,
    Refused(Instant),
    MediaDone,
}

fn tpc3(
    opts: &ClientCheckOptions,
    say: &dyn Fn(CheckEvent),
    stopped: &dyn Fn() -> bool,
) -> Result<Report, CheckError> {
    let served = files(opts)?;
    let names: Vec<String> = served.iter().map(|(n, _)| n.clone()).collect();
    let file = served[0].1.clone();
    let listener = TcpListener::bind(opts.bind).map_err(|source| CheckError::Listen {
        port: opts.bind.port(),
        source,
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CheckError::Server(e.to_string()))?;
    let _ = listener.set_nonblocking(true);
    say(CheckEvent::Listening(addr));
    say(CheckEvent::Started(format!(
        "serving {} on TCP port {} as TPC-3's server does; start your client (e.g. python3 Client.py 127.0.0.1 {} 5008 {})",
        names.join(" and "),
        addr.port(),
        addr.port(),
        names[0]
    )));
    let session = rand::rng().random_range(100_000..=999_999);
    let mut checker = ClientChecker::new(CheckDialect::Tpc3, names, session);
    let (tx, rx) = crossbeam_channel::unbounded();
    let done = Arc::new(AtomicBool::new(false));
    {
        let (tx, done) = (tx.clone(), done.clone());
        std::thread::spawn(move || accept_one(listener, tx, done));
    }
    let mut stream: Option<TcpStream> = None;
    let mut peer_ip = None;
    let fps = opts.fps.max(1);
    let result = loop {
        while let Some(out) = checker.poll_output() {
            match out {
                ClientOutput::Wire(w) => say(CheckEvent::Wire(w)),
                ClientOutput::Send(bytes) => {
                    if let Some(s) = stream.as_mut() {
                        let _ = s.write_all(&bytes);
                    }
                }
                ClientOutput::StartMedia { port, session } => {
                    if let Some(ip) = peer_ip {
                        let (tx, done, file) = (tx.clone(), done.clone(), file.clone());
                        let to = SocketAddr::new(ip, port);
                        std::thread::spawn(move || send_file(file, to, session, fps, tx, done));
                    }
                }
                ClientOutput::Done => {}
            }
        }
        if checker.is_done() {
            break Ok(());
        }
        if stopped() {
            break Err(CheckError::Stopped);
        }
        let now = Instant::now();
        let wake = checker
            .poll_timeout()
            .unwrap_or(now + STOP_POLL)
            .min(now + STOP_POLL);
        match rx.recv_deadline(wake) {
            Ok(Input::Accepted(s)) => {
                peer_ip = s.peer_addr().ok().map(|a| a.ip());
                if let Ok(r) = s.try_clone() {
                    let tx = tx.clone();
                    std::thread::spawn(move || read_all(r, tx));
                }
                stream = Some(s);
            }
            Ok(Input::Bytes(at, b)) => checker.handle_received(at, &b),
            Ok(Input::Closed(at)) => checker.handle_closed(at),
            Ok(Input::MediaSent) => checker.handle_media_sent(),
            Ok(Input::Refused(at)) => checker.handle_refused(at),
            // The whole file went: the server's part is over, as a
            // TPC-3 server's is; closing lets the client see the end.
            Ok(Input::MediaDone) => {
                if let Some(s) = &stream {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
            Err(RecvTimeoutError::Timeout) => checker.handle_timeout(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => break Err(CheckError::Stopped),
        }
    };
    done.store(true, Ordering::SeqCst);
    if let Some(s) = &stream {
        let _ = s.shutdown(Shutdown::Both);
    }
    result.map(|()| checker.report())
}

fn accept_one(listener: TcpListener, tx: Sender<Input>, done: Arc<AtomicBool>) {
    // Non-blocking accept, so that a check stopped before any client came
    // ends this thread too.
    while !done.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_nodelay(true);
                let _ = tx.send(Input::Accepted(s));
                return;
            }
            Err(_) => std::thread::sleep(STOP_POLL / 4),
        }
    }
}

fn read_all(mut s: TcpStream, tx: Sender<Input>) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Closed(Instant::now()));
                return;
            }
            Ok(n) => {
                if tx
                    .send(Input::Bytes(Instant::now(), buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// TPC-3's transfer: every frame as one RTP packet (PT 26, sequence from
/// 1, timestamp from the clock in seconds, SSRC = the session id) at `fps`
/// on an absolute schedule, from a connected socket so that ICMP port
/// unreachable shows as a refused send.
fn send_file(
    file: Arc<MjpegFile>,
    to: SocketAddr,
    session: u32,
    fps: u32,
    tx: Sender<Input>,
    done: Arc<AtomicBool>,
) {
    let Ok(sock) = UdpSocket::bind(("0.0.0.0", 0)) else {
        let _ = tx.send(Input::MediaDone);
        return;
    };
    if sock.connect(to).is_err() {
        let _ = tx.send(Input::MediaDone);
        return;
    }
    let period = Duration::from_secs(1) / fps;
    let start = Instant::now();
    let mut told = false;
    let mut n = 0usize;
    while !done.load(Ordering::SeqCst) {
        let Ok(Some(jpeg)) = file.frame(n) else { break };
        n += 1;
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let mut p = Vec::with_capacity(12 + jpeg.len());
        RtpHeader {
            marker: false,
            payload_type: PT_JPEG,
            sequence: n as u16,
            timestamp: unix,
            ssrc: session,
        }
        .write(&mut p);
        p.extend_from_slice(&jpeg);
        match sock.send(&p) {
            Ok(_) if !told => {
                told = true;
                let _ = tx.send(Input::MediaSent);
            }
            Ok(_) => {}
            Err(_) => {
                let _ = tx.send(Input::Refused(Instant::now()));
            }
        }
        // The next frame's time, on an absolute schedule (no drift).
        std::thread::sleep((start + period * n as u32).saturating_duration_since(Instant::now()));
    }
    let _ = tx.send(Input::MediaDone);
}

/// For tests and the window: wait for the check's listening address.
pub fn listening(events: &Receiver<CheckEvent>, within: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + within;
    while let Ok(e) = events.recv_deadline(deadline) {
        if let CheckEvent::Listening(a) = e {
            return Some(a);
        }
    }
    None
}
