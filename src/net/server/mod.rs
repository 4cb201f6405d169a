//! The RTSP/RTP server's I/O shell: configuration, binding and the accept
//! loop. One thread accepts connections; each connection is served by
//! [`connection`] (a thread feeding bytes and time to a
//! [`ServerConnection`](crate::protocol::server::ServerConnection)), and
//! each set-up session's RTP is sent by [`media`] on the absolute pacer
//! schedule. Files come from a [`Library`]. Every thread blocks on a
//! socket, a channel or a deadline: none polls.

mod connection;
mod fanout;
mod limits;
mod live;
mod media;
mod prepare;
mod tpc3;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use tracing::{debug, warn};

use crate::media::MjpegFile;
use crate::media::library::Library;
use crate::media::live::SourceSpec;
use crate::net::writer::WRITE_TIMEOUT;
use crate::protocol::auth::server::{Guard, Users};
use crate::protocol::server::{REQUEST_TIMEOUT, SESSION_TIMEOUT};

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
    #[error("cannot start the RTP sender thread: {0}")]
    Thread(io::Error),
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
    /// Who sends the sessions' RTP.
    pub sender: SenderKind,
    /// Fan-out sender threads (0: one per core, up to
    /// [`MAX_SENDER_THREADS`]).
    pub sender_threads: usize,
    /// Most RTSP connections open at once (0: no cap); beyond it a new
    /// connection gets 503 and is closed.
    pub max_connections: usize,
    /// Most sessions set up at once (0: no cap); beyond it SETUP gets 503.
    pub max_sessions: usize,
    /// Most connections open at once from one client address (0: no cap).
    pub max_per_address: usize,
    /// Where to report what each connection receives and sends, and RTP
    /// that a client's port refused (`streamlab check client` watches
    /// through it). None: nobody watches, nothing is copied.
    pub observer: Option<Sender<Observed>>,
    /// Who may watch (Digest or Basic, RFC 2617). None: anyone.
    pub users: Option<Users>,
    /// Live sources, each served under its name (`--source NAME=SPEC`).
    pub live: Vec<SourceSpec>,
    /// How cameras are opened; None: V4L2 (tests give a device double).
    pub cameras: Option<Cameras>,
}

/// What a watcher ([`ServerConfig::observer`]) sees. Connections are
/// told apart by the client's address.
#[derive(Debug, Clone)]
pub enum Observed {
    /// Bytes read from a client's RTSP connection, as they came.
    Received {
        peer: SocketAddr,
        at: Instant,
        bytes: Vec<u8>,
    },
    /// A reply written to it.
    Sent {
        peer: SocketAddr,
        at: Instant,
        bytes: Vec<u8>,
    },
    /// The connection ended.
    Closed { peer: SocketAddr, at: Instant },
    /// An RTP send to the session of the client at `peer` (its RTSP
    /// address) was refused: ICMP port unreachable.
    RtpRefused { peer: SocketAddr, at: Instant },
}

/// Default [`ServerConfig::max_connections`]: each connection costs a
/// thread and, with a UDP session, three descriptors.
pub const MAX_CONNECTIONS: usize = 2000;
/// Default [`ServerConfig::max_sessions`].
pub const MAX_SESSIONS: usize = 2000;
/// Default [`ServerConfig::max_per_address`]: a classroom behind one NAT
/// fits; one client cannot take the whole server.
pub const MAX_PER_ADDRESS: usize = 200;

/// Most fan-out sender threads chosen by themselves (one per core).
pub const MAX_SENDER_THREADS: usize = 8;

/// How many fan-out threads `asked` (0: one per core) means.
fn sender_threads(asked: usize) -> usize {
    match asked {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SENDER_THREADS),
        n => n,
    }
}

/// Who sends the sessions' RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SenderKind {
    /// One thread for every session, sharing packetized frames.
    #[default]
    Fanout,
    /// A thread per session, as before the fan-out sender: kept to
    /// measure against.
    Threads,
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
            sender: SenderKind::Fanout,
            sender_threads: 0,
            max_connections: MAX_CONNECTIONS,
            max_sessions: MAX_SESSIONS,
            max_per_address: MAX_PER_ADDRESS,
            observer: None,
            users: None,
            live: Vec::new(),
            cameras: None,
        }
    }
}

pub use live::{CameraOpener, Cameras};
pub use media::STANDARD_MAX_PAYLOAD;
pub use prepare::{PREPARED_SECONDS, Preparation, Preparing};

/// State shared by the server's threads.
struct Shared {
    config: ServerConfig,
    library: Library,
    hub: fanout::Hub,
    /// Keys of sessions in the fan-out sender.
    next_media: AtomicU64,
    stop: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
    /// Open connections per client address.
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Which caps have been said in the log since they were last clear.
    said: [AtomicBool; 3],
    next_connection: AtomicU64,
    sessions: AtomicUsize,
    /// The server's users and the addresses that failed to log in.
    guard: Option<Mutex<Guard>>,
    /// The live sources, running while watched.
    live: Vec<live::LiveSource>,
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
        let users = config.users.clone();
        let live_specs = config.live.clone();
        let cameras = config.cameras.clone();
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                library: Library::new(root, config.builtin.clone(), config.encode_ahead),
                hub: fanout::Hub::start(sender_threads(config.sender_threads))
                    .map_err(ServerError::Thread)?,
                next_media: AtomicU64::new(1),
                config,
                stop: AtomicBool::new(false),
                connections: Mutex::new(HashMap::new()),
                per_address: Mutex::new(HashMap::new()),
                said: Default::default(),
                next_connection: AtomicU64::new(1),
                sessions: AtomicUsize::new(0),
                guard: users.map(|u| Mutex::new(Guard::new(u, rand::random()))),
                live: live_specs
                    .into_iter()
                    .map(|s| match &cameras {
                        Some(c) => live::LiveSource::with_camera(s, c.0.clone()),
                        None => live::LiveSource::new(s),
                    })
                    .collect(),
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
        // The thread that answers refused connections exists before
        // spawn() returns, so that a caller counting threads sees them all.
        let (refusals, queue) = crossbeam_channel::bounded(REFUSALS_QUEUED);
        let refuser = std::thread::Builder::new()
            .name("rtsp-refuse".into())
            .spawn(move || limits::refuse_loop(queue))
            .ok();
        let thread = std::thread::Builder::new()
            .name("rtsp-accept".into())
            .spawn(move || accept_loop(self.listener, self.shared, refusals, refuser))
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
    /// Whether the live source `name` is making frames (None: no such
    /// source): it runs only while watched.
    pub fn live_source_running(&self, name: &str) -> Option<bool> {
        self.shared
            .live
            .iter()
            .find(|s| s.spec().name == name)
            .map(live::LiveSource::running)
    }

    pub fn active_sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// Open RTSP connections.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Get `name` (a request target) ready to play at once, on a thread of
    /// its own: find all its frames, re-encode its first seconds if it must
    /// be. Sessions share what it does; the returned handle tells how far
    /// it has got.
    pub fn prepare(&self, name: &str) -> Result<Preparation, ServerError> {
        let library = &self.shared.library;
        let media_error = |reason: String| ServerError::Media {
            path: PathBuf::from(name),
            reason,
        };
        let file = library.open(name).map_err(|e| media_error(e.to_string()))?;
        let ready = library.ready_frames(name, &file);
        Preparation::start(file, ready, self.shared.config.fps).map_err(ServerError::Thread)
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
        // Every connection has ended its session by now.
        self.shared.hub.stop();
        for source in &self.shared.live {
            source.shut_down();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    refusals: crossbeam_channel::Sender<(TcpStream, String)>,
    refuser: Option<JoinHandle<()>>,
) {
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
        if let Some(reason) = shared.over_connection_caps(peer) {
            refuse(&refusals, stream, reason);
            continue;
        }
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let (Ok(mut conns), Ok(clone)) = (shared.connections.lock(), stream.try_clone()) {
            conns.insert(id, clone);
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rtsp-conn-{id}"))
            .spawn(move || {
                debug!(%peer, "connection opened");
                connection::serve(stream, peer, &shared2);
                if let Ok(mut conns) = shared2.connections.lock() {
                    conns.remove(&id);
                }
                shared2.leave(peer.ip());
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
    drop(refusals);
    if let Some(t) = refuser {
        let _ = t.join();
    }
}

/// Connections waiting for their 503 beyond which more are just closed.
const REFUSALS_QUEUED: usize = 64;

fn refuse(queue: &crossbeam_channel::Sender<(TcpStream, String)>, stream: TcpStream, why: String) {
    // A full queue (a flood of connections) gets no answer at all.
    let _ = queue.try_send((stream, why));
}

impl Shared {
    /// Why a new connection from `peer` is refused, if it is; counts it
    /// in otherwise. Each cap is said in the log once until it clears.
    fn over_connection_caps(&self, peer: SocketAddr) -> Option<String> {
        let c = &self.config;
        let open = self.connections.lock().map(|m| m.len()).unwrap_or(0);
        if c.max_connections > 0 && open >= c.max_connections {
            let why = format!(
                "the server has reached its limit of {} connections (--max-connections)",
                c.max_connections
            );
            self.say_once(0, &why);
            return Some(why);
        }
        self.said[0].store(false, Ordering::Relaxed);
        let mut per = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let mine = per.entry(peer.ip()).or_insert(0);
        if c.max_per_address > 0 && *mine >= c.max_per_address {
            let why = format!(
                "{} already has {} connections open, the limit per address (--max-per-address)",
                peer.ip(),
                c.max_per_address
            );
            self.say_once(1, &why);
            return Some(why);
        }
        *mine += 1;
        None
    }

    fn leave(&self, ip: IpAddr) {
        let mut per = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&ip);
                self.said[1].store(false, Ordering::Relaxed);
            }
        }
    }

    /// Why a new session is refused, if it is.
    /// The live source named `name`, if the server has one.
    fn live_source(&self, name: &str) -> Option<&live::LiveSource> {
        self.live.iter().find(|s| s.spec().name == name)
    }

    fn over_session_cap(&self) -> Option<String> {
        let max = self.config.max_sessions;
        if max > 0 && self.sessions.load(Ordering::SeqCst) >= max {
            let why = format!(
                "the server has reached its limit of {max} session{} (--max-sessions)",
                if max == 1 { "" } else { "s" }
            );
            self.say_once(2, &why);
            return Some(why);
        }
        self.said[2].store(false, Ordering::Relaxed);
        None
    }

    fn say_once(&self, which: usize, why: &str) {
        if !self.said[which].swap(true, Ordering::Relaxed) {
            warn!("{why}: answering 503 until there is room (said once)");
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

/// An RTCP sender report stamped with the wall clock now: what RTP time
/// `rtp_time` is, for the client's latency and lip sync.
fn sender_report_now(ssrc: u32, rtp_time: u32, packets: u32, octets: u32) -> [u8; 28] {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::protocol::rtcp::sender_report(
        ssrc,
        crate::protocol::rtcp::ntp_from_unix(unix),
        rtp_time,
        packets,
        octets,
    )
}
