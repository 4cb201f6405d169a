//! Pure protocol code: RTSP messages and URLs, the session state machine
//! (client and server side), SDP, RTP and RTCP, RTP/JPEG (RFC 2435),
//! authentication, the pacing schedule and the TPC-3 handshake. No
//! sockets, no threads, no clock reads: every function takes bytes and
//! time as arguments and returns values or actions.

pub mod analysis;
pub mod auth;
pub mod check;
pub mod client;
pub mod load;
pub mod pacer;
pub mod playout;
pub mod prebuffer;
pub mod receiver;
pub mod reconnect;
pub mod reorder;
pub mod rtcp;
pub mod rtp;
pub mod rtp_jpeg;
pub mod rtsp;
pub mod sdp;
pub mod sender;
pub mod server;
pub mod session;
pub mod timeline;
pub mod tpc3;
pub mod transport;
pub mod url;

pub use session::State;
