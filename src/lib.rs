//! Streamlab: stream and play Motion-JPEG over RTSP/RTP.
//!
//! The crate is split so that protocol rules, media, threads and drawing each
//! live in one place:
//! - [`protocol`]: pure code (bytes and time in, values and actions out);
//! - [`media`]: frame sources (.Mjpeg files in both framings, test pattern);
//! - [`net`]: sockets and threads (server, client engine, pacing);
//! - [`server_embedded`]: the in-process server the window starts;
//! - [`app`]: the egui player window (feature `gui`, on by default).

#[cfg(feature = "gui")]
pub mod app;
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
pub mod net;
pub mod protocol;
pub mod server_embedded;

/// The bundled sample clip (made by `streamlab make-clip`, see assets/README.md).
pub const SAMPLE_CLIP: &[u8] = include_bytes!("../assets/sample.mjpeg");
/// The name under which the embedded server serves [`SAMPLE_CLIP`].
pub const SAMPLE_NAME: &str = "sample.mjpeg";
