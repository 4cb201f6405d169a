//! The server's media library: opening files under the media root (never
//! outside it, whatever a symlink says), the clips served from memory, and
//! the per-file caches shared by every session: one open [`MjpegFile`] per
//! file while anyone plays it, and the RFC 2435-ready frames of the files
//! played last, so that a file is re-encoded once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::media::MjpegFile;
use crate::media::rtp_ready::RtpReadyFrames;

/// Files whose re-encoded frames stay cached after their sessions end.
const READY_FILES_KEPT: usize = 4;

/// Why a request target cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{0} is not served here")]
    NotServed(String),
    #[error("{path}: {source}")]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{target} resolves to {resolved}, outside the media root {root}")]
    OutsideRoot {
        target: String,
        resolved: PathBuf,
        root: PathBuf,
    },
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
}

/// Files under one root plus built-in clips, with their shared caches.
pub struct Library {
    root: Option<PathBuf>,
    builtin: Vec<(String, Arc<MjpegFile>)>,
    encode_ahead: bool,
    files: Mutex<HashMap<String, Weak<MjpegFile>>>,
    /// Most recently used last.
    ready: Mutex<Vec<(String, Arc<RtpReadyFrames>)>>,
}

impl Library {
    /// `root` must already be canonical (see [`Path::canonicalize`]).
    pub fn new(
        root: Option<PathBuf>,
        builtin: Vec<(String, Arc<MjpegFile>)>,
        encode_ahead: bool,
    ) -> Library {
        Library {
            root,
            builtin,
            encode_ahead,
            files: Mutex::new(HashMap::new()),
            ready: Mutex::new(Vec::new()),
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Open a request target: a built-in clip's name or a path under the
    /// root. A file already open is shared.
    pub fn open(&self, path: &str) -> Result<Arc<MjpegFile>, LibraryError> {
        if let Some((_, clip)) = self.builtin.iter().find(|(n, _)| n == path) {
            return Ok(clip.clone());
        }
        let Some(root) = &self.root else {
            return Err(LibraryError::NotServed(path.to_string()));
        };
        let full = root.join(path);
        let canonical = full
            .canonicalize()
            .map_err(|source| LibraryError::Missing {
                path: full.clone(),
                source,
            })?;
        // A symlink may point anywhere; what counts is where it lands.
        if !canonical.starts_with(root) {
            return Err(LibraryError::OutsideRoot {
                target: path.to_string(),
                resolved: canonical,
                root: root.clone(),
            });
        }
        let key = canonical.to_string_lossy().into_owned();
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = files.get(&key).and_then(Weak::upgrade) {
            return Ok(f);
        }
        let file = Arc::new(MjpegFile::open(&canonical)?);
        files.retain(|_, w| w.strong_count() > 0);
        files.insert(key, Arc::downgrade(&file));
        Ok(file)
    }

    /// The file's RFC 2435-ready frames, shared with every other session.
    pub fn ready_frames(&self, path: &str, file: &Arc<MjpegFile>) -> Arc<RtpReadyFrames> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = ready
            .iter()
            .position(|(p, r)| p == path && Arc::ptr_eq(r.file(), file))
        {
            let entry = ready.remove(i);
            let r = entry.1.clone();
            ready.push(entry);
            return r;
        }
        let r = Arc::new(RtpReadyFrames::new(file.clone()).encode_ahead(self.encode_ahead));
        if ready.len() >= READY_FILES_KEPT {
            ready.remove(0);
        }
        ready.push((path.to_string(), r.clone()));
        r
    }
}
