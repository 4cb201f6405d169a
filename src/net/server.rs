//! The RTSP/RTP server's I/O shell: one thread accepts connections, one
//! thread per connection feeds bytes and time to a [`ServerConnection`] and
//! carries out what it returns, and one thread per set-up session sends
//! RTP on the absolute [`Pacer`] schedule (and RTCP sender reports for
//! standard sessions). Every thread blocks on a socket, a channel or a
//! deadline: none polls.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::Rng;
use tracing::{debug, info, warn};

use crate::media::rtp_ready::{RtpReadyFrames, Viewer};
use crate::media::{Framing, MjpegFile};
use crate::net::udp_batch::UdpBatch;
use crate::net::writer::{ConnectionWriter, WRITE_TIMEOUT};
use crate::protocol::pacer::Pacer;
use crate::protocol::rtcp;
use crate::protocol::rtp::{self, RtpHeader};
use crate::protocol::rtp_jpeg;
use crate::protocol::server::{
    ConnectionConfig, MediaInfo, MediaTransport, Payload, PlayError, PlayInfo, Prepared,
    REQUEST_TIMEOUT, SESSION_TIMEOUT, ServerConnection, ServerHost, ServerLog, ServerOutput,
    SessionInfo,
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
    /// How long a standard session lives without a request or RTCP.
    pub session_timeout: Duration,
    /// Largest lab-dialect RTP payload per datagram; bigger frames are split.
    pub max_payload: usize,
    /// How long one write to an RTSP connection may block (its client not
    /// reading) before the connection and its session end.
    pub write_timeout: Duration,
    /// Re-encode frames RFC 2435 cannot carry on a worker running ahead of
    /// the sessions' playheads (true), or in the sender's path when each
    /// frame is due (false: only for measuring what the worker gains).
    pub encode_ahead: bool,
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
            session_timeout: SESSION_TIMEOUT,
            max_payload: 65_000,
            write_timeout: WRITE_TIMEOUT,
            encode_ahead: true,
        }
    }
}

/// RTP payload per packet on the standard path: a 1500-byte Ethernet MTU
/// less IP (20), UDP (8) and RTP (12) headers, with room to spare for
/// tunnels.
pub const STANDARD_MAX_PAYLOAD: usize = 1400;
/// Files whose re-encoded frames stay cached after their sessions end.
const READY_FILES_KEPT: usize = 4;
/// How often standard sessions get an RTCP sender report.
const SR_EVERY: Duration = Duration::from_secs(5);

/// State shared by the server's threads.
struct Shared {
    config: ServerConfig,
    root: Option<PathBuf>,
    files: Mutex<HashMap<String, Weak<MjpegFile>>>,
    /// RFC 2435-ready frames per file, shared by every session of it and
    /// kept after the last one ends, so a file is re-encoded once.
    ready: Mutex<Vec<(String, Arc<RtpReadyFrames>)>>,
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
                ready: Mutex::new(Vec::new()),
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

/// The writing half of an RTSP connection, shared by replies and
/// interleaved media.
type Writer = Arc<ConnectionWriter>;

/// One connection's view of the world: files under the root, its media
/// sender, its sockets.
struct Host<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    local_ip: IpAddr,
    writer: Writer,
    opened: Option<(String, Arc<MjpegFile>)>,
    media: Option<MediaSender>,
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
        let key = canonical.to_string_lossy().into_owned();
        let mut files = self.shared.files.lock().map_err(|_| "internal error")?;
        if let Some(f) = files.get(&key).and_then(Weak::upgrade) {
            return Ok(f);
        }
        let file = Arc::new(MjpegFile::open(&canonical).map_err(|e| e.to_string())?);
        files.retain(|_, w| w.strong_count() > 0);
        files.insert(key, Arc::downgrade(&file));
        Ok(file)
    }

    /// The file's RFC 2435-ready frames, shared with every other session.
    fn ready_frames(&self, path: &str, file: &Arc<MjpegFile>) -> Arc<RtpReadyFrames> {
        let mut ready = self.shared.ready.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = ready
            .iter()
            .position(|(p, r)| p == path && Arc::ptr_eq(r.file(), file))
        {
            // Most recently used last.
            let entry = ready.remove(i);
            let r = entry.1.clone();
            ready.push(entry);
            return r;
        }
        let r = Arc::new(
            RtpReadyFrames::new(file.clone()).encode_ahead(self.shared.config.encode_ahead),
        );
        if ready.len() >= READY_FILES_KEPT {
            ready.remove(0);
        }
        ready.push((path.to_string(), r.clone()));
        r
    }

    fn stop_media(&mut self) {
        if let Some(m) = self.media.take() {
            m.stop(self.shared);
        }
    }
}

impl ServerHost for Host<'_> {
    fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
        let file = self.open_file(path)?;
        match file.frame(0) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("{path} has no playable frame")),
            Err(e) => return Err(e.to_string()),
        }
        let fps = self.shared.config.fps;
        // A lab-framed file is indexed by hopping from length to length,
        // which is quick; a raw one needs a full scan, so its length is
        // said only once known.
        let frames = match file.framing() {
            Framing::Lab { .. } => file.index_all().ok(),
            Framing::Raw => file.frame_count(),
        };
        let (width, height) = file.dimensions().unwrap_or((0, 0));
        self.opened = Some((path.to_string(), file));
        Ok(MediaInfo {
            width,
            height,
            fps,
            duration: frames.map(|n| n as f64 / fps as f64),
        })
    }

    fn new_session_id(&mut self) -> u32 {
        rand::rng().random_range(100_000..=999_999)
    }

    fn setup(&mut self, session: &SessionInfo) -> Result<Prepared, String> {
        let Some((path, file)) = self.opened.clone() else {
            return Err("no file open".into());
        };
        self.stop_media();
        let source = match session.payload {
            Payload::Lab => Source::Lab(file),
            // The worker (if the file needs one) starts encoding now, so
            // that PLAY finds the first frames ready.
            Payload::Rfc2435 => {
                let viewer = self.ready_frames(&path, &file).viewer(0);
                viewer.set_looping(self.shared.config.looping);
                Source::Rfc2435(viewer)
            }
        };
        let (media, prepared) = MediaSender::start(
            self.shared,
            session,
            source,
            self.local_ip,
            self.peer,
            self.writer.clone(),
        )
        .map_err(|e| format!("cannot open an RTP socket: {e}"))?;
        info!(peer = %self.peer, session = %session.id, dialect = session.dialect.name(),
            payload = ?session.payload,
            "SETUP {}: {}", session.path, describe_transport(&session.transport, self.peer));
        self.media = Some(media);
        Ok(prepared)
    }

    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        let Some(media) = &self.media else {
            return Err(PlayError::Other("no media set up".into()));
        };
        let fps = self.shared.config.fps as f64;
        let start_frame = match start {
            Some(s) => {
                let n = (s * fps).round() as usize;
                let present = self
                    .opened
                    .as_ref()
                    .map(|(_, f)| matches!(f.frame(n), Ok(Some(_))))
                    .unwrap_or(false);
                if !present {
                    return Err(PlayError::Range(format!("npt {s:.3} is past the end")));
                }
                Some(n)
            }
            None => None,
        };
        let (seq, rtptime, next) = media
            .prepare(start_frame)
            .ok_or_else(|| PlayError::Other("the media sender stopped".into()))?;
        let end = self
            .opened
            .as_ref()
            .and_then(|(_, f)| f.frame_count())
            .map(|n| n as f64 / fps);
        Ok(PlayInfo {
            seq,
            rtptime,
            start: next as f64 / fps,
            end,
        })
    }

    fn media_activity(&mut self) -> Option<Instant> {
        self.media.as_ref().and_then(|m| m.last_rtcp())
    }
}

fn describe_transport(t: &MediaTransport, peer: SocketAddr) -> String {
    match t {
        MediaTransport::Udp {
            rtp_port,
            rtcp_port,
        } => match rtcp_port {
            Some(r) => format!("RTP to {}:{rtp_port}, RTCP to port {r}", peer.ip()),
            None => format!("RTP to {}:{rtp_port}", peer.ip()),
        },
        MediaTransport::Interleaved {
            rtp_channel,
            rtcp_channel,
        } => format!("RTP in the RTSP connection, channels {rtp_channel}-{rtcp_channel}"),
    }
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let local_ip = stream
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let writer = match stream
        .try_clone()
        .and_then(|s| ConnectionWriter::new(s, peer, shared.config.write_timeout))
    {
        Ok(w) => Arc::new(w),
        Err(e) => {
            warn!(%peer, "cannot serve the connection: {e}");
            return;
        }
    };
    let mut conn = ServerConnection::new(ConnectionConfig {
        request_timeout: shared.config.request_timeout,
        session_timeout: shared.config.session_timeout,
        server_ip: local_ip.to_string(),
    });
    let mut host = Host {
        shared,
        peer,
        local_ip,
        writer: writer.clone(),
        opened: None,
        media: None,
    };
    let mut buf = [0u8; 4096];
    let _ = stream.set_nodelay(true);
    loop {
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
                    // The writer has said why, once, if it is the first
                    // to fail.
                    if writer.send(&bytes).is_err() {
                        conn.handle_closed();
                    }
                }
                ServerOutput::Play => {
                    if let Some(m) = &host.media {
                        m.send(MediaCommand::Play);
                    }
                }
                ServerOutput::Pause => {
                    if let Some(m) = &host.media {
                        m.send(MediaCommand::Pause);
                    }
                }
                ServerOutput::Teardown => host.stop_media(),
                ServerOutput::Close => close = true,
                ServerOutput::Log(log) => log_event(peer, conn.session(), log),
            }
        }
        if close || conn.is_closed() {
            break;
        }
    }
    host.stop_media();
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
        ServerLog::SessionExpired(id) => {
            info!(%peer, session = %id, "session timed out: no request or RTCP kept it alive")
        }
    }
}

enum MediaCommand {
    Play,
    Pause,
    /// Seek (when given) and say the next sequence number, RTP time and frame.
    Prepare {
        start: Option<usize>,
        reply: Sender<(u16, u32, usize)>,
    },
}

/// What a session's frames come from.
enum Source {
    /// The lab's payload: the whole JPEG as stored.
    Lab(Arc<MjpegFile>),
    /// RFC 2435: frames as they can travel, re-encoded once where needed
    /// (ahead of this session's playhead).
    Rfc2435(Viewer),
}

/// Where a session's packets go. A frame's RTP packets are queued by
/// [`Out::send_rtp`] and leave together at [`Out::end_frame`]: one
/// segmented send per run of datagrams over UDP, one write over TCP.
enum Out {
    Udp {
        rtp: UdpSocket,
        rtcp: Option<UdpSocket>,
        batch: UdpBatch,
    },
    Interleaved {
        writer: Writer,
        rtp_channel: u8,
        rtcp_channel: u8,
        pending: Vec<u8>,
    },
}

impl Out {
    fn send_rtp(&mut self, packet: &[u8]) {
        match self {
            Out::Udp { rtp, batch, .. } => batch.push(rtp, packet),
            Out::Interleaved {
                rtp_channel,
                pending,
                ..
            } => interleave(pending, *rtp_channel, packet),
        }
    }

    /// Sends the frame queued by [`Out::send_rtp`]; false when some of it
    /// was refused.
    fn end_frame(&mut self) -> bool {
        match self {
            Out::Udp { rtp, batch, .. } => batch.finish(rtp),
            Out::Interleaved {
                writer, pending, ..
            } => {
                let ok = pending.is_empty() || writer.send(pending).is_ok();
                pending.clear();
                ok
            }
        }
    }

    fn send_rtcp(&self, packet: &[u8]) -> io::Result<()> {
        match self {
            Out::Udp { rtcp: Some(s), .. } => s.send(packet).map(|_| ()),
            Out::Udp { rtcp: None, .. } => Ok(()),
            Out::Interleaved {
                writer,
                rtcp_channel,
                ..
            } => {
                let mut message = Vec::with_capacity(packet.len() + 4);
                interleave(&mut message, *rtcp_channel, packet);
                writer.send(&message).map_err(io::Error::other)
            }
        }
    }

    /// Whether the RTSP connection this session's media travels in has
    /// broken (see [`ConnectionWriter`]): nothing more can be sent.
    fn is_broken(&self) -> bool {
        match self {
            Out::Udp { .. } => false,
            Out::Interleaved { writer, .. } => writer.is_broken(),
        }
    }

    /// Whether RTCP arrived from the client (a receiver report keeps the
    /// session alive); never blocks.
    fn rtcp_arrived(&self) -> bool {
        let Out::Udp { rtcp: Some(s), .. } = self else {
            return false;
        };
        let mut buf = [0u8; 1500];
        let mut any = false;
        while let Ok(n) = s.recv(&mut buf) {
            any |= rtcp::parse_compound(&buf[..n]).is_some();
        }
        any
    }
}

/// Appends `$`, channel, 16-bit length, packet: RFC 2326 section 10.12.
fn interleave(out: &mut Vec<u8>, channel: u8, packet: &[u8]) {
    out.push(b'$');
    out.push(channel);
    out.extend_from_slice(&(packet.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(packet);
}

/// Bind an even RTP port and the odd RTCP port after it, as RFC 3550 asks.
fn bind_pair(ip: IpAddr) -> io::Result<(UdpSocket, UdpSocket)> {
    let mut last = io::Error::other("no free port pair");
    for _ in 0..32 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
            Ok(rtcp) => return Ok((rtp, rtcp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The thread that sends one session's RTP.
struct MediaSender {
    commands: Sender<MediaCommand>,
    thread: JoinHandle<()>,
    last_rtcp: Arc<Mutex<Option<Instant>>>,
}

impl MediaSender {
    fn start(
        shared: &Shared,
        info: &SessionInfo,
        source: Source,
        local_ip: IpAddr,
        peer: SocketAddr,
        writer: Writer,
    ) -> io::Result<(MediaSender, Prepared)> {
        let mut rng = rand::rng();
        let (out, server_ports) = match info.transport {
            MediaTransport::Udp {
                rtp_port,
                rtcp_port,
            } => {
                // RTP goes only to the address the RTSP request came from.
                let (rtp, rtcp) = match rtcp_port {
                    Some(client_rtcp) => {
                        let (rtp, rtcp) = bind_pair(local_ip)?;
                        rtcp.connect(SocketAddr::new(peer.ip(), client_rtcp))?;
                        rtcp.set_nonblocking(true)?;
                        (rtp, Some(rtcp))
                    }
                    None => (UdpSocket::bind(SocketAddr::new(local_ip, 0))?, None),
                };
                rtp.connect(SocketAddr::new(peer.ip(), rtp_port))?;
                let a = rtp.local_addr()?.port();
                let ports = rtcp
                    .as_ref()
                    .and_then(|r| r.local_addr().ok())
                    .map(|r| (a, r.port()));
                (
                    Out::Udp {
                        rtp,
                        rtcp,
                        batch: UdpBatch::new(),
                    },
                    ports,
                )
            }
            MediaTransport::Interleaved {
                rtp_channel,
                rtcp_channel,
            } => (
                Out::Interleaved {
                    writer,
                    rtp_channel,
                    rtcp_channel,
                    pending: Vec::new(),
                },
                None,
            ),
        };
        let (ssrc, sequence, ts_base) = match info.payload {
            // Seed 000 checks that the SSRC is the session id; the lab
            // numbers packets from 1.
            Payload::Lab => (info.id.parse().unwrap_or(0), 1, 0),
            Payload::Rfc2435 => (rng.random(), rng.random(), rng.random()),
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let last_rtcp = Arc::new(Mutex::new(None));
        let job = MediaJob {
            out,
            source,
            fps: shared.config.fps,
            looping: shared.config.looping,
            max_payload: match info.payload {
                Payload::Lab => shared.config.max_payload.clamp(1, 65_000),
                Payload::Rfc2435 => STANDARD_MAX_PAYLOAD,
            },
            ssrc,
            sequence,
            ts_base,
            session: info.id.clone(),
            peer,
            last_rtcp: last_rtcp.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("rtp-{}", info.id))
            .spawn(move || job.run(rx))?;
        shared.sessions.fetch_add(1, Ordering::SeqCst);
        Ok((
            MediaSender {
                commands: tx,
                thread,
                last_rtcp,
            },
            Prepared { server_ports, ssrc },
        ))
    }

    fn send(&self, command: MediaCommand) {
        let _ = self.commands.send(command);
    }

    /// Seek and learn where PLAY starts; None if the thread is gone.
    fn prepare(&self, start: Option<usize>) -> Option<(u16, u32, usize)> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(MediaCommand::Prepare { start, reply: tx });
        rx.recv_timeout(Duration::from_secs(2)).ok()
    }

    fn last_rtcp(&self) -> Option<Instant> {
        *self.last_rtcp.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// End the session's media: the thread sees the channel close and exits.
    fn stop(self, shared: &Shared) {
        drop(self.commands);
        let _ = self.thread.join();
        shared.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Refused frames in a row after which the client is taken to be gone (its
/// RTP port answers ICMP port unreachable); see [`Refusals`].
const MAX_SEND_FAILURES: u32 = 40;
/// How often a paused standard session looks for RTCP keep-alives.
const PAUSED_RTCP_CHECK: Duration = Duration::from_secs(5);

struct MediaJob {
    out: Out,
    source: Source,
    fps: u32,
    looping: bool,
    max_payload: usize,
    ssrc: u32,
    sequence: u16,
    ts_base: u32,
    session: String,
    peer: SocketAddr,
    last_rtcp: Arc<Mutex<Option<Instant>>>,
}

/// Tells a client that has gone from one that lost a packet. On a connected
/// UDP socket an ICMP port unreachable fails only the next send, after
/// which a send goes out (and draws another ICMP): frames to a closed port
/// fail every other time, so a count of failures in a row would never
/// reach its limit. Refusals weigh twice what successes pay back: a closed
/// port fills the count in [`MAX_SEND_FAILURES`] frames when every frame
/// fails, in four times that when every other does, and an occasional
/// refusal fades away.
#[derive(Debug, Default)]
struct Refusals(u32);

impl Refusals {
    /// Counts one frame; true when the client looks gone (and starts over).
    fn gone_after(&mut self, ok: bool) -> bool {
        self.0 = if ok {
            self.0.saturating_sub(1)
        } else {
            self.0 + 2
        };
        let gone = self.0 >= 2 * MAX_SEND_FAILURES;
        if gone {
            self.0 = 0;
        }
        gone
    }
}

/// Counters for sender reports.
#[derive(Default)]
struct Sent {
    frames: u64,
    packets: u32,
    octets: u32,
}

impl MediaJob {
    fn has_rtcp(&self) -> bool {
        !matches!(self.out, Out::Udp { rtcp: None, .. })
    }

    /// The RTP timestamp of the next frame: the lab's is Unix seconds, the
    /// standard one counts a 90 kHz clock from a random start.
    fn timestamp(&self, frames_sent: u64) -> u32 {
        match self.source {
            Source::Lab(_) => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32),
            Source::Rfc2435(_) => {
                let ticks = frames_sent * 90_000 / self.fps.max(1) as u64;
                self.ts_base.wrapping_add(ticks as u32)
            }
        }
    }

    fn run(mut self, commands: Receiver<MediaCommand>) {
        let mut pacer = Pacer::new(Instant::now(), self.fps);
        let mut playing = false;
        let mut next_frame = 0usize;
        let mut sent = Sent::default();
        let mut refusals = Refusals::default();
        let mut next_sr = Instant::now();
        let peer = self.peer;
        loop {
            let deadline = if playing {
                let d = pacer.deadline();
                Some(if self.has_rtcp() { d.min(next_sr) } else { d })
            } else if self.has_rtcp() {
                Some(Instant::now() + PAUSED_RTCP_CHECK)
            } else {
                None
            };
            let command = match deadline {
                Some(d) => commands.recv_deadline(d),
                None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match command {
                Ok(MediaCommand::Play) => {
                    if !playing {
                        playing = true;
                        pacer.restart(Instant::now());
                        next_sr = Instant::now() + Duration::from_millis(500);
                        debug!(%peer, session = %self.session, "sending from frame {next_frame}");
                    }
                }
                Ok(MediaCommand::Pause) => {
                    playing = false;
                    debug!(%peer, session = %self.session, "paused before frame {next_frame}");
                }
                Ok(MediaCommand::Prepare { start, reply }) => {
                    if let Some(n) = start {
                        next_frame = n;
                        if let Source::Rfc2435(viewer) = &self.source {
                            viewer.seek(n);
                        }
                    }
                    let _ = reply.send((self.sequence, self.timestamp(sent.frames), next_frame));
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if self.out.rtcp_arrived() {
                        *self.last_rtcp.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                    }
                    if playing && self.has_rtcp() && now >= next_sr {
                        next_sr = now + SR_EVERY;
                        self.send_report(&sent);
                    }
                    if !playing || now < pacer.deadline() {
                        continue;
                    }
                    let result = self.send_frame(next_frame, &mut sent);
                    if self.out.is_broken() {
                        // The connection's writer has said why; its reader
                        // wakes up and ends the session.
                        debug!(%peer, session = %self.session, "media stopped: the connection broke");
                        break;
                    }
                    match result {
                        FrameResult::Sent(ok) => {
                            next_frame += 1;
                            pacer.advance(Instant::now());
                            if refusals.gone_after(ok) {
                                warn!(%peer, session = %self.session, "the client does not accept packets (its RTP port is closed?); pausing until it sends PLAY again");
                                playing = false;
                            }
                        }
                        FrameResult::Skipped => next_frame += 1,
                        FrameResult::End if self.looping && next_frame > 0 => next_frame = 0,
                        FrameResult::End => {
                            info!(%peer, session = %self.session, "end of the file after {next_frame} frames");
                            playing = false;
                        }
                    }
                }
            }
        }
    }

    fn send_frame(&mut self, n: usize, sent: &mut Sent) -> FrameResult {
        let peer = self.peer;
        let header = RtpHeader {
            marker: false,
            payload_type: rtp::PT_JPEG,
            sequence: self.sequence,
            timestamp: self.timestamp(sent.frames),
            ssrc: self.ssrc,
        };
        let mut emit = |p: &[u8]| {
            self.out.send_rtp(p);
            sent.packets = sent.packets.wrapping_add(1);
            sent.octets = sent
                .octets
                .wrapping_add(p.len().saturating_sub(rtp::HEADER_LEN) as u32);
        };
        match &self.source {
            Source::Lab(file) => match file.frame(n) {
                Ok(Some(jpeg)) => {
                    self.sequence = rtp::packetize_lab(&jpeg, self.max_payload, header, &mut emit);
                }
                Ok(None) => return FrameResult::End,
                Err(e) => {
                    warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                    return FrameResult::Skipped;
                }
            },
            Source::Rfc2435(frames) => match frames.frame(n) {
                Ok(Some(jpeg)) => match rtp_jpeg::carriable(&jpeg) {
                    Ok(c) => {
                        self.sequence =
                            rtp_jpeg::packetize(&c, self.max_payload, header, &mut emit);
                    }
                    Err(e) => {
                        warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                        return FrameResult::Skipped;
                    }
                },
                Ok(None) => return FrameResult::End,
                Err(e) => {
                    warn!(%peer, session = %self.session, "frame {n} skipped: {e}");
                    return FrameResult::Skipped;
                }
            },
        }
        sent.frames += 1;
        FrameResult::Sent(self.out.end_frame())
    }

    fn send_report(&self, sent: &Sent) {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let sr = rtcp::sender_report(
            self.ssrc,
            rtcp::ntp_from_unix(unix),
            self.timestamp(sent.frames),
            sent.packets,
            sent.octets,
        );
        let _ = self.out.send_rtcp(&sr);
    }
}

enum FrameResult {
    /// Sent; false when the socket refused it.
    Sent(bool),
    Skipped,
    End,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_noticed_even_when_every_other_send_goes_out() {
        // What a connected UDP socket does towards a closed port.
        let mut r = Refusals::default();
        let frames = (0..1000).position(|n| r.gone_after(n % 2 == 0));
        assert!(
            frames.is_some_and(|f| f < 4 * MAX_SEND_FAILURES as usize),
            "{frames:?}"
        );
        let mut r = Refusals::default();
        let frames = (0..1000).position(|_| r.gone_after(false));
        assert_eq!(frames, Some(MAX_SEND_FAILURES as usize - 1));
    }

    #[test]
    fn occasional_refusals_fade_away() {
        let mut r = Refusals::default();
        assert!(!(0..100_000).any(|n| r.gone_after(n % 3 != 0)));
    }
}
