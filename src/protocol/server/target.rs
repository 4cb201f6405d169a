//! From a request target to a file under the media root: what a URL or a
//! bare lab file name may name, and what it may never reach.

use crate::protocol::sdp::TRACK_CONTROL;
use crate::protocol::url::{Escapes, percent_decode};

/// Why a request target cannot name a file under the media root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request names no file")]
    Empty,
    #[error("the path leaves the media root ({0:?})")]
    Escapes(String),
    #[error("the path is not valid ({0:?})")]
    Invalid(String),
}

/// Turn a request target (`movie.Mjpeg`, `/movie.Mjpeg`,
/// `rtsp://host:8554/dir/movie.Mjpeg`) into a relative path with `/`
/// separators that cannot leave the media root.
pub fn resolve_target(target: &str) -> Result<String, TargetError> {
    let mut path = target;
    if let Some(rest) = path
        .strip_prefix("rtsp://")
        .or_else(|| path.strip_prefix("RTSP://"))
        .or_else(|| path.strip_prefix("rtspu://"))
    {
        path = rest.find('/').map_or("", |i| &rest[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path, Escapes::Strict)
        .ok_or_else(|| TargetError::Invalid(target.to_string()))?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(TargetError::Invalid(target.to_string()));
    }
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(TargetError::Escapes(target.to_string())),
            p if p.len() >= 2 && p.as_bytes()[1] == b':' => {
                return Err(TargetError::Escapes(target.to_string()));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(parts.join("/"))
}

/// Our SDP names the track `trackID=0` under the presentation URL; the
/// file is the URL without it.
pub(super) fn strip_track_control(path: String) -> String {
    match path.rsplit_once('/') {
        Some((file, control)) if control == TRACK_CONTROL || control.starts_with("trackID=") => {
            file.to_string()
        }
        _ => path,
    }
}
