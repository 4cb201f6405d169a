//! The RTSP/RTP server's I/O shell: configuration, binding and the accept
//! loop. One thread accepts connections; each connection is served by
//! [`connection`] (a thread feeding bytes and time to a
//! [`ServerConnection`](crate::protocol::server::ServerConnection)), and
//! each set-up session's RTP is sent by [`media`] on the absolute pacer
//! schedule. Files come from a [`Library`]. Every thread blocks on a
//! socket, a channel or a deadline: none polls.

mod connection;
mod fanout;
mod media;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, warn};

use crate::media::MjpegFile;
use crate::media::library::Library;
use crate::net::writer::WRITE_TIMEOUT;
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
    /// Who sends UDP sessions' RTP.
    pub sender: SenderKind,
}

/// Who sends UDP sessions' RTP (interleaved ones always get a thread).
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
        }
    }
}

pub use media::STANDARD_MAX_PAYLOAD;

/// State shared by the server's threads.
struct Shared {
    config: ServerConfig,
    library: Library,
    hub: fanout::Hub,
    /// Keys of sessions in the fan-out sender.
    next_media: AtomicU64,
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
                library: Library::new(root, config.builtin.clone(), config.encode_ahead),
                hub: fanout::Hub::start().map_err(ServerError::Thread)?,
                next_media: AtomicU64::new(1),
                config,
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
        // Every connection has ended its session by now.
        self.shared.hub.stop();
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
                connection::serve(stream, peer, &shared2);
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

/// Serve a file's folder as root; the request target is its name.
pub fn root_and_name(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_string();
    let root = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((root, name))
}
