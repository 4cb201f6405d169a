//! The runners of `streamlab check`: sockets and threads around the
//! sans-IO checkers in [`crate::protocol::check`]. `server` plays a lab
//! client against a student's server; `client` serves a student's client
//! (with Streamlab's own server, watched) and notes every request.

pub mod client;
pub mod server;

use std::io;
use std::net::SocketAddr;

use crate::protocol::check::{Report, WireEntry};

pub use client::{ClientCheckOptions, check_client};
pub use server::check_server;

/// What a running check tells the window, as it goes.
#[derive(Debug, Clone)]
pub enum CheckEvent {
    /// A line for the wire log, with its notes.
    Wire(WireEntry),
    /// `check client` listens here (said first).
    Listening(SocketAddr),
    /// Said once, when the check starts: where it listens or what it asks.
    Started(String),
    /// Every check decided.
    Finished(Report),
    /// The check could not run (said in words).
    Failed(String),
}

/// Why a check could not run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot resolve {host}:{port}: {source}")]
    Resolve {
        host: String,
        port: u16,
        source: io::Error,
    },
    #[error("no server answers at {addr} ({source}): is it running, and listening on this port?")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error(
        "cannot open UDP port {port} to receive RTP on ({source}); another program may hold it: name another, or 0 for any"
    )]
    RtpPort { port: u16, source: io::Error },
    #[error(
        "cannot listen on TCP port {port} ({source}); another program may hold it: name another, or 0 for any"
    )]
    Listen { port: u16, source: io::Error },
    #[error("cannot start the check ({0})")]
    Server(String),
    #[error("stopped before the check finished")]
    Stopped,
}

/// `rtp.payload`'s decoder: the player's own.
pub(crate) fn decode_jpeg(jpeg: &[u8]) -> Result<(), String> {
    crate::media::decode::decode_rgba(jpeg).map(|_| ())
}
