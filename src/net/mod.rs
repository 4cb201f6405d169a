//! Sockets and threads: the RTSP/RTP server, the client engine and the JPEG
//! decoding worker. Protocol decisions are made in [`crate::protocol`]; this
//! layer only moves bytes and keeps time.

pub mod check;
pub mod client;
pub mod load;
pub mod mailbox;
pub mod probe;
pub mod record;
pub mod server;
pub mod udp_batch;
pub mod writer;
