//! The in-process server the window starts, so a new user sees video after
//! one click with nothing else running: it serves either the bundled sample
//! (from memory) or one file the user picked, on 127.0.0.1 with a free port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::media::MjpegFile;
use crate::media::live::SourceSpec;
use crate::net::server::{
    Preparation, Preparing, Server, ServerConfig, ServerError, ServerHandle, root_and_name,
};

/// A running in-process server and what it serves. Dropping it stops it.
pub struct EmbeddedServer {
    port: u16,
    file_name: String,
    source: Option<PathBuf>,
    /// Serving the live test pattern, not a file.
    live: bool,
    /// Dropped before `handle`: it holds the server's file.
    preparation: Option<Preparation>,
    handle: ServerHandle,
}

fn loopback_config() -> ServerConfig {
    ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: None,
        looping: true,
        ..ServerConfig::default()
    }
}

impl EmbeddedServer {
    /// Serve the bundled sample clip (looping) on 127.0.0.1 with a free port.
    pub fn start_sample() -> Result<Self, ServerError> {
        let clip = MjpegFile::from_bytes(crate::SAMPLE_NAME, Arc::from(crate::SAMPLE_CLIP))
            .map_err(|e| ServerError::Media {
                path: PathBuf::from(crate::SAMPLE_NAME),
                reason: e.to_string(),
            })?;
        let config = ServerConfig {
            builtin: vec![(crate::SAMPLE_NAME.to_string(), Arc::new(clip))],
            ..loopback_config()
        };
        let handle = Server::bind(config)?.spawn();
        Ok(EmbeddedServer {
            port: handle.local_addr().port(),
            file_name: crate::SAMPLE_NAME.to_string(),
            source: None,
            live: false,
            preparation: Some(handle.prepare(crate::SAMPLE_NAME)?),
            handle,
        })
    }

    /// Serve `path` (looping) on 127.0.0.1 with a free port.
    pub fn start_file(path: &Path) -> Result<Self, ServerError> {
        let media_error = |reason: String| ServerError::Media {
            path: path.to_path_buf(),
            reason,
        };
        let (root, name) =
            root_and_name(path).ok_or_else(|| media_error("not a file name".into()))?;
        // Fail now, in words, rather than at SETUP with a bare 404.
        let file = MjpegFile::open(path).map_err(|e| media_error(e.to_string()))?;
        match file.frame(0) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(media_error("it has no playable frame".into())),
            Err(e) => return Err(media_error(e.to_string())),
        }
        let config = ServerConfig {
            root: Some(root),
            ..loopback_config()
        };
        let handle = Server::bind(config)?.spawn();
        Ok(EmbeddedServer {
            port: handle.local_addr().port(),
            preparation: Some(handle.prepare(&name)?),
            file_name: name,
            source: Some(path.to_path_buf()),
            live: false,
            handle,
        })
    }

    /// Serve the live test pattern (1280x720 at 30 fps, the frame counter
    /// and the wall-clock time burnt in) as `pattern`, on 127.0.0.1 with
    /// a free port. It runs while someone watches.
    pub fn start_pattern() -> Result<Self, ServerError> {
        Self::start_live("pattern=testpattern")
    }

    /// Serve the V4L2 camera at `device` as `camera` at `size` and `fps`
    /// (`1280x720`), on 127.0.0.1 with a free port. It runs while someone
    /// watches; a camera that cannot be read says why at the first SETUP.
    pub fn start_camera(device: &str, size: &str, fps: u32) -> Result<Self, ServerError> {
        Self::start_live(&format!("camera=camera:{device}:{size}@{fps}"))
    }

    fn start_live(arg: &str) -> Result<Self, ServerError> {
        let spec = SourceSpec::parse(arg).map_err(|e| ServerError::Media {
            path: PathBuf::from(arg),
            reason: e.to_string(),
        })?;
        let name = spec.name.clone();
        let config = ServerConfig {
            root: None,
            live: vec![spec],
            ..loopback_config()
        };
        let handle = Server::bind(config)?.spawn();
        Ok(EmbeddedServer {
            port: handle.local_addr().port(),
            preparation: None,
            file_name: name,
            source: None,
            live: true,
            handle,
        })
    }

    /// What the server is doing to get the file ready (a raw file's first
    /// read through, re-encoding its first seconds), while it does; None
    /// once it plays without waiting.
    pub fn preparing(&self) -> Option<Preparing> {
        self.preparation.as_ref().and_then(Preparation::progress)
    }

    /// Sessions currently set up on this server.
    pub fn active_sessions(&self) -> usize {
        self.handle.active_sessions()
    }

    /// The TCP port RTSP listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target to SETUP (the file's name).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The picked file, or None for the bundled sample.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The stream as a URL.
    /// Whether it serves the live test pattern.
    pub fn live(&self) -> bool {
        self.live
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/{}", self.port, self.file_name)
    }
}
