//! Pure protocol code: RTSP messages, RTP headers, the session state machine
//! and the pacing schedule. No sockets, no threads, no clock reads: every
//! function takes bytes and time as arguments and returns values or actions.

pub mod pacer;
pub mod rtcp;
pub mod rtp;
pub mod rtp_jpeg;
pub mod rtsp;
pub mod sdp;
pub mod server;
pub mod session;
pub mod transport;

pub use session::State;
