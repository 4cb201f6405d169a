//! Frame sources: .Mjpeg files in both framings (the lab's length-prefixed
//! one and raw concatenated JPEG), the moving test pattern, and small JPEG
//! inspection helpers.

pub mod camera;
pub mod decode;
pub mod jpeg;
pub mod library;
pub mod live;
pub mod mjpeg_file;
pub mod pattern;
pub mod reencode;
pub mod rtp_ready;
#[cfg(target_os = "linux")]
pub mod v4l2;

pub use mjpeg_file::{Framing, MediaError, MjpegFile, SkippedFrame};
