//! The RTSP/RTP server's I/O shell: one thread accepts connections, one
//! thread per connection feeds bytes and time to a
//! [`ServerConnection`] and carries out what it returns, and one thread
//! per set-up session sends RTP on the absolute [`Pacer`] schedule. Every
//! thread blocks on a socket, a channel or a deadline: none polls.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::Rng;
use tracing::{debug, info, warn};

use crate::media::MjpegFile;
use crate::protocol::pacer::Pacer;
use crate::protocol::rtp::{self, RtpHeader};
use crate::protocol::rtsp::Dialect;
use crate::protocol::session::{
    REQUEST_TIMEOUT, ServerConnection, ServerHost, ServerLog, ServerOutput, SessionInfo,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: io::Error,
        hint: &'static str,
    },
    #[error("media root {0} does not exist or is not a folder")]
    Root(PathBuf),
    #[error("cannot serve {path}: {reason}")]
    Media { path: PathBuf, reason: String },
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Files are served from under this folder only. None: only `builtin`.
    pub root: Option<PathBuf>,
    /// Frames per second sent (the lab's rate is 20).
    pub fps: u32,
    /// Start again from the first frame at the end of the file.
    pub looping: bool,
    /// Clips served from memory by name (the bundled sample).
    pub builtin: Vec<(String, Arc<MjpegFile>)>,
    /// How long a half-sent request may sit before the connection closes.
    pub request_timeout: Duration,
    /// Largest RTP payload per datagram; bigger frames are split.
    pub max_payload: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 8554)),
            root: Some(PathBuf::from(".")),
            fps: 20,
            looping: false,
            builtin: Vec::new(),
            request_timeout: REQUEST_TIMEOUT,
            max_payload: 65_000,
        }
    }
}

/// State shared by the server's threads.
struct Shared {
    config: ServerConfig,
    root: Option<PathBuf>,
    files: Mutex<HashMap<PathBuf, Weak<MjpegFile>>>,
    stop: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    sessions: AtomicUsize,
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// A running server. Dropping it stops it.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Check the root and bind the RTSP port.
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let root = match &config.root {
            Some(r) => match r.canonicalize() {
                Ok(c) if c.is_dir() => Some(c),
                _ => return Err(ServerError::Root(r.clone())),
            },
            None => None,
        };
        let listener = TcpListener::bind(config.bind).map_err(|source| {
            let hint = match source.kind() {
                io::ErrorKind::AddrInUse => {
                    ": the port is in use (another server running?); pick another port"
                }
                io::ErrorKind::PermissionDenied => {
                    ": ports below 1024 need administrator rights; pick a port above 1024"
                }
                _ => "",
            };
            ServerError::Bind {
                addr: config.bind,
                source,
                hint,
            }
        })?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                root,
                files: Mutex::new(HashMap::new()),
                stop: AtomicBool::new(false),
                connections: Mutex::new(HashMap::new()),
                next_connection: AtomicU64::new(1),
                sessions: AtomicUsize::new(0),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.shared.config.bind)
    }

    /// Start accepting on a thread of its own.
    pub fn spawn(self) -> ServerHandle {
        let addr = self.local_addr();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-accept".into())
            .spawn(move || accept_loop(self.listener, self.shared))
            .ok();
        ServerHandle {
            addr,
            shared,
            thread,
        }
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sessions set up and not yet torn down.
    pub fn active_sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// Open RTSP connections.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Stop accepting, close every connection (ending its session) and wait
    /// for every thread to finish.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Ok(conns) = self.shared.connections.lock() {
            for s in conns.values() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let _ = thread.join();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        threads.retain(|t| !t.is_finished());
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let (Ok(mut conns), Ok(clone)) = (shared.connections.lock(), stream.try_clone()) {
            conns.insert(id, clone);
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rtsp-conn-{id}"))
            .spawn(move || {
                debug!(%peer, "connection opened");
                serve_connection(stream, peer, &shared2);
                if let Ok(mut conns) = shared2.connections.lock() {
                    conns.remove(&id);
                }
                debug!(%peer, "connection closed");
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => warn!("cannot start a thread for {peer}: {e}"),
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Opens media for one connection, under the root only.
struct Host<'a> {
    shared: &'a Shared,
    opened: Option<Arc<MjpegFile>>,
}

impl Host<'_> {
    fn open_file(&self, path: &str) -> Result<Arc<MjpegFile>, String> {
        if let Some((_, clip)) = self.shared.config.builtin.iter().find(|(n, _)| n == path) {
            return Ok(clip.clone());
        }
        let Some(root) = &self.shared.root else {
            return Err(format!("{path} is not served here"));
        };
        let full = root.join(path);
        let canonical = full
            .canonicalize()
            .map_err(|e| format!("{}: {e}", full.display()))?;
        // A symlink may point anywhere; what counts is where it lands.
        if !canonical.starts_with(root) {
            return Err(format!(
                "{} resolves to {}, outside the media root {}",
                path,
                canonical.display(),
                root.display()
            ));
        }
        let mut files = self.shared.files.lock().map_err(|_| "internal error")?;
        if let Some(f) = files.get(&canonical).and_then(Weak::upgrade) {
            return Ok(f);
        }
        let file = Arc::new(MjpegFile::open(&canonical).map_err(|e| e.to_string())?);
        files.retain(|_, w| w.strong_count() > 0);
        files.insert(canonical, Arc::downgrade(&file));
        Ok(file)
    }
}

impl ServerHost for Host<'_> {
    fn open(&mut self, path: &str) -> Result<(), String> {
        let file = self.open_file(path)?;
        match file.frame(0) {
            Ok(Some(_)) => {
                self.opened = Some(file);
                Ok(())
            }
            Ok(None) => Err(format!("{path} has no playable frame")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn new_session_id(&mut self) -> u32 {
        rand::rng().random_range(100_000..=999_999)
    }
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let mut conn = ServerConnection::new(shared.config.request_timeout);
    let mut host = Host {
        shared,
        opened: None,
    };
    let mut media: Option<MediaSender> = None;
    let mut buf = [0u8; 4096];
    let local_ip = stream
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let _ = stream.set_nodelay(true);
    'conn: loop {
        let wait = conn
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        let input = match wait {
            Some(w) if w.is_zero() => Err(io::ErrorKind::TimedOut.into()),
            w => {
                let _ = stream.set_read_timeout(w);
                stream.read(&mut buf)
            }
        };
        match input {
            Ok(0) => conn.handle_closed(),
            Ok(n) => conn.handle_bytes(Instant::now(), &buf[..n], &mut host),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.handle_timeout(Instant::now(), &mut host)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                debug!(%peer, "read failed: {e}");
                conn.handle_closed();
            }
        }
        let mut close = false;
        while let Some(out) = conn.poll_output() {
            match out {
                ServerOutput::Send(bytes) => {
                    if let Err(e) = stream.write_all(&bytes) {
                        debug!(%peer, "write failed: {e}");
                        conn.handle_closed();
                    }
                }
                ServerOutput::Setup(info) => {
                    let Some(file) = host.opened.take() else {
                        continue;
                    };
                    if let Some(old) = media.take() {
                        old.stop(shared);
                    }
                    match MediaSender::start(shared, &info, file, local_ip, peer) {
                        Ok(m) => {
                            info!(%peer, session = %info.id, dialect = info.dialect.name(),
                                "SETUP {}: RTP to {}:{}", info.path, peer.ip(), info.rtp_port);
                            media = Some(m);
                        }
                        Err(e) => {
                            warn!(%peer, session = %info.id, "cannot open an RTP socket: {e}")
                        }
                    }
                }
                ServerOutput::Play => {
                    if let Some(m) = &media {
                        let _ = m.commands.send(MediaCommand::Play);
                    }
                }
                ServerOutput::Pause => {
                    if let Some(m) = &media {
                        let _ = m.commands.send(MediaCommand::Pause);
                    }
                }
                ServerOutput::Teardown => {
                    if let Some(m) = media.take() {
                        m.stop(shared);
                    }
                }
                ServerOutput::Close => close = true,
                ServerOutput::Log(log) => log_event(peer, conn.session(), log),
            }
        }
        if close || conn.is_closed() {
            break 'conn;
        }
    }
    if let Some(m) = media.take() {
        m.stop(shared);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn log_event(peer: SocketAddr, session: Option<&SessionInfo>, log: ServerLog) {
    let session = session.map(|s| s.id.as_str()).unwrap_or("-");
    match log {
        ServerLog::Request {
            method,
            cseq,
            status,
            detail,
        } => {
            let cseq = cseq.map_or("-".to_string(), |c| c.to_string());
            match detail {
                Some(d) if status >= 400 => {
                    warn!(%peer, session, "{method} CSeq={cseq} -> {status}: {d}")
                }
                _ => debug!(%peer, session, "{method} CSeq={cseq} -> {status}"),
            }
        }
        ServerLog::StateChanged { session, from, to } => {
            info!(%peer, session = %session, "state {from} -> {to}")
        }
        ServerLog::Malformed(e) => warn!(%peer, session, "malformed request: {e}"),
        ServerLog::RequestTimeout => {
            warn!(%peer, session, "half-sent request timed out; closing the connection")
        }
    }
}

enum MediaCommand {
    Play,
    Pause,
}

/// The thread that sends one session's RTP.
struct MediaSender {
    commands: Sender<MediaCommand>,
    thread: JoinHandle<()>,
}

impl MediaSender {
    fn start(
        shared: &Shared,
        info: &SessionInfo,
        file: Arc<MjpegFile>,
        local_ip: std::net::IpAddr,
        peer: SocketAddr,
    ) -> io::Result<MediaSender> {
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))?;
        // RTP goes only to the address the RTSP request came from.
        socket.connect(SocketAddr::new(peer.ip(), info.rtp_port))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let ssrc = match info.dialect {
            // Seed 000 checks that the SSRC is the session id.
            Dialect::Lab => info.id.parse().unwrap_or(0),
            Dialect::Standard => rand::rng().random(),
        };
        let job = MediaJob {
            socket,
            file,
            fps: shared.config.fps,
            looping: shared.config.looping,
            max_payload: shared.config.max_payload.clamp(1, 65_000),
            ssrc,
            session: info.id.clone(),
            peer,
        };
        let thread = std::thread::Builder::new()
            .name(format!("rtp-{}", info.id))
            .spawn(move || job.run(rx))?;
        shared.sessions.fetch_add(1, Ordering::SeqCst);
        Ok(MediaSender {
            commands: tx,
            thread,
        })
    }

    /// End the session's media: the thread sees the channel close and exits.
    fn stop(self, shared: &Shared) {
        drop(self.commands);
        let _ = self.thread.join();
        shared.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Consecutive failed sends after which the client is taken to be gone
/// (its RTP port answers ICMP port unreachable).
const MAX_SEND_FAILURES: u32 = 40;

struct MediaJob {
    socket: UdpSocket,
    file: Arc<MjpegFile>,
    fps: u32,
    looping: bool,
    max_payload: usize,
    ssrc: u32,
    session: String,
    peer: SocketAddr,
}

impl MediaJob {
    fn run(self, commands: Receiver<MediaCommand>) {
        let mut pacer = Pacer::new(Instant::now(), self.fps);
        let mut playing = false;
        let mut next_frame = 0usize;
        let mut sequence: u16 = 1;
        let mut failures = 0u32;
        let session = self.session.as_str();
        let peer = self.peer;
        loop {
            let command = if playing {
                commands.recv_deadline(pacer.deadline())
            } else {
                commands.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match command {
                Ok(MediaCommand::Play) => {
                    if !playing {
                        playing = true;
                        pacer.restart(Instant::now());
                        debug!(%peer, session, "sending from frame {next_frame}");
                    }
                }
                Ok(MediaCommand::Pause) => {
                    playing = false;
                    debug!(%peer, session, "paused before frame {next_frame}");
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let jpeg = match self.file.frame(next_frame) {
                        Ok(Some(j)) => j,
                        Ok(None) if self.looping && next_frame > 0 => {
                            next_frame = 0;
                            continue;
                        }
                        Ok(None) => {
                            info!(%peer, session, "end of {} after {next_frame} frames", self.file.name());
                            playing = false;
                            continue;
                        }
                        Err(e) => {
                            warn!(%peer, session, "frame {next_frame} skipped: {e}");
                            next_frame += 1;
                            continue;
                        }
                    };
                    // The lab's timestamp: Unix time in whole seconds.
                    let timestamp = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as u32);
                    let header = RtpHeader {
                        marker: false,
                        payload_type: rtp::PT_JPEG,
                        sequence,
                        timestamp,
                        ssrc: self.ssrc,
                    };
                    let mut failed = false;
                    sequence = rtp::packetize_lab(&jpeg, self.max_payload, header, |p| {
                        if self.socket.send(p).is_err() {
                            failed = true;
                        }
                    });
                    next_frame += 1;
                    pacer.advance(Instant::now());
                    failures = if failed { failures + 1 } else { 0 };
                    if failures >= MAX_SEND_FAILURES {
                        warn!(%peer, session, "the client's RTP port does not accept packets; pausing");
                        playing = false;
                        failures = 0;
                    }
                }
            }
        }
    }
}

/// Serve a file's folder as root; the request target is its name.
pub fn root_and_name(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_string();
    let root = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((root, name))
}
