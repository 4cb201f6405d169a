//! Where the window's commands go: a live client engine (started by SETUP,
//! retired on its own thread so the window never waits on the network), or,
//! for UI tests, a detached recorder that keeps what would have gone out.
//!
//! The app shell asks the link to send, to take credentials, to serve a
//! file and to stop; the link alone knows whether an engine exists and when
//! one must be replaced.

use std::path::PathBuf;
use std::time::Duration;

use crate::net::client::{ClientCommand, ClientConfig, ClientEvent, ClientHandle, Credentials};
use crate::server_embedded::EmbeddedServer;

/// How long closing the window waits for TEARDOWN to go out.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long SETUP waits for the engine it replaces to let go of its ports.
const REPLACE_TIMEOUT: Duration = Duration::from_millis(500);

/// A running client engine and what it was started with.
pub struct Engine {
    handle: ClientHandle,
    config: ClientConfig,
    /// Its RTSP connection is gone: the next SETUP needs a new engine.
    stale: bool,
}

/// Where commands go.
pub enum Link {
    /// Real engines and servers; `ctx` is repainted on every engine event.
    Live {
        ctx: egui::Context,
        engine: Option<Engine>,
    },
    /// No network (UI tests): what would have gone out is recorded.
    Detached {
        sent: Vec<ClientCommand>,
        /// Credentials given to the engine in a session.
        credentials: Vec<Credentials>,
        served: Vec<PathBuf>,
        /// What the last SETUP would have started an engine with.
        config: Option<ClientConfig>,
    },
}

impl Link {
    /// Real engines, repainting `ctx` when they have news.
    pub fn live(ctx: &egui::Context) -> Link {
        Link::Live {
            ctx: ctx.clone(),
            engine: None,
        }
    }

    /// No network: commands are recorded.
    pub fn detached() -> Link {
        Link::Detached {
            sent: Vec::new(),
            credentials: Vec::new(),
            served: Vec::new(),
            config: None,
        }
    }

    /// What the current engine was started with (detached: what the last
    /// SETUP would have started one with).
    pub fn engine_config(&self) -> Option<&ClientConfig> {
        match self {
            Link::Live { engine, .. } => engine.as_ref().map(|e| &e.config),
            Link::Detached { config, .. } => config.as_ref(),
        }
    }

    /// Every event the engine has queued, without waiting.
    pub fn queued_events(&self) -> Vec<ClientEvent> {
        match self {
            Link::Live {
                engine: Some(engine),
                ..
            } => engine.handle.events().try_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Wait up to `timeout` for the engine's next event, then take it and
    /// every other queued one (empty when none came).
    pub fn wait_for_events(&self, timeout: Duration) -> Vec<ClientEvent> {
        let Link::Live {
            engine: Some(engine),
            ..
        } = self
        else {
            return Vec::new();
        };
        let Ok(first) = engine.handle.events().recv_timeout(timeout) else {
            return Vec::new();
        };
        let mut events = vec![first];
        events.extend(engine.handle.events().try_iter());
        events
    }

    /// The engine stopped by itself: let its threads go.
    pub fn engine_stopped(&mut self) {
        if let Link::Live { engine, .. } = self {
            retire(engine.take(), None);
        }
    }

    /// The engine's RTSP connection is gone: the next SETUP starts a new one.
    pub fn engine_lost_connection(&mut self) {
        if let Link::Live {
            engine: Some(engine),
            ..
        } = self
        {
            engine.stale = true;
        }
    }

    /// Send `command`. `config` comes with SETUP: a live link starts a new
    /// engine with it unless the current one was started with the same and
    /// is still connected.
    pub fn send(&mut self, command: ClientCommand, config: Option<ClientConfig>) {
        match self {
            Link::Detached {
                sent, config: last, ..
            } => {
                sent.push(command);
                if config.is_some() {
                    *last = config;
                }
            }
            Link::Live { ctx, engine } => {
                if let Some(config) = config {
                    let reusable = engine
                        .as_ref()
                        .is_some_and(|e| e.config == config && !e.stale);
                    if !reusable {
                        // SETUP is possible in INIT only, so the old engine
                        // has no session to end and stops at once; waiting
                        // for it frees its RTP port for the new one (a retry
                        // with other settings keeps the same port).
                        if let Some(old) = engine.take() {
                            old.handle.shutdown(REPLACE_TIMEOUT);
                        }
                        let ctx = ctx.clone();
                        // The engine connects as it starts, like the lab client
                        // does when it opens.
                        let handle = ClientHandle::spawn(config.clone(), move || {
                            ctx.request_repaint();
                        });
                        *engine = Some(Engine {
                            handle,
                            config,
                            stale: false,
                        });
                    }
                }
                let Some(engine) = engine else {
                    // Only SETUP is possible without a session, and it made one.
                    return;
                };
                engine.handle.send(command);
            }
        }
    }

    /// Give the engine credentials for the request the server refused in
    /// the session (kept for the requests after it, too).
    pub fn credentials(&mut self, credentials: Credentials) {
        match self {
            Link::Detached {
                credentials: given, ..
            } => given.push(credentials),
            Link::Live { engine, .. } => {
                let Some(engine) = engine else {
                    return;
                };
                engine.config.user = Some(credentials.user.clone());
                engine.config.password = Some(credentials.password.clone());
                engine.handle.credentials(credentials);
            }
        }
    }

    /// Detached: record that `path` was to be served and return false. Live:
    /// end the session (TEARDOWN) and then the old `server`, off the UI
    /// thread, and return true: the caller starts the new server.
    pub fn replace_server(&mut self, path: PathBuf, server: &mut Option<EmbeddedServer>) -> bool {
        match self {
            Link::Detached { served, .. } => {
                served.push(path);
                false
            }
            Link::Live { engine, .. } => {
                // The session belongs to the old server: end it before that
                // server stops.
                retire(engine.take(), server.take());
                true
            }
        }
    }

    /// End the session (TEARDOWN) and the engine, waiting up to `timeout`.
    pub fn shutdown(&mut self, timeout: Duration) {
        if let Link::Live { engine, .. } = self
            && let Some(engine) = engine.take()
        {
            engine.handle.shutdown(timeout);
        }
    }

    /// Detached: the credentials given in a session since the last call.
    pub fn take_sent_credentials(&mut self) -> Vec<Credentials> {
        match self {
            Link::Detached { credentials, .. } => std::mem::take(credentials),
            Link::Live { .. } => Vec::new(),
        }
    }

    /// Detached: the client commands sent since the last call.
    pub fn take_sent_commands(&mut self) -> Vec<ClientCommand> {
        match self {
            Link::Detached { sent, .. } => std::mem::take(sent),
            Link::Live { .. } => Vec::new(),
        }
    }

    /// Detached: the files asked to be served since the last call.
    pub fn take_serve_requests(&mut self) -> Vec<PathBuf> {
        match self {
            Link::Detached { served, .. } => std::mem::take(served),
            Link::Live { .. } => Vec::new(),
        }
    }
}

/// Shut an engine down (sending TEARDOWN if it has a session) and then stop
/// a server, on a thread of their own so the window never waits on the network.
fn retire(engine: Option<Engine>, server: Option<EmbeddedServer>) {
    if engine.is_none() && server.is_none() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("streamlab-retire".to_owned())
        .spawn(move || {
            if let Some(engine) = engine {
                engine.handle.shutdown(EXIT_TIMEOUT);
            }
            drop(server);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread to stop the old session: {e}");
    }
}
