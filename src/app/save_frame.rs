//! "Save frame": the frame on screen, as the JPEG that came off the wire
//! (byte for byte, no second encoding) or, when the name chosen ends in
//! `.png`, as a PNG picture. The file dialog blocks its caller until the
//! user answers, and encoding a 1080p PNG takes tens of milliseconds, so
//! both run on a worker thread; the answer comes back through a channel
//! and the window repaints.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use crate::net::client::DecodedFrame;

/// What became of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    To(PathBuf),
    /// No file was chosen (or no dialog could be shown).
    Cancelled,
    Failed(String),
}

/// Runs saves off the UI thread.
pub struct FrameSaver {
    tx: Sender<Saved>,
    rx: Receiver<Saved>,
}

impl Default for FrameSaver {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        FrameSaver { tx, rx }
    }
}

impl FrameSaver {
    /// Ask where to save `frame` (suggesting `name`) and save it there.
    pub fn save(
        &self,
        ctx: &egui::Context,
        frame: DecodedFrame,
        name: String,
    ) -> std::io::Result<()> {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("streamlab-save-frame".to_owned())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Save the frame")
                    .set_file_name(&name)
                    .add_filter("JPEG as received", &["jpg", "jpeg"])
                    .add_filter("PNG picture", &["png"])
                    .save_file();
                let saved = match picked {
                    None => Saved::Cancelled,
                    Some(path) => match write_frame(&path, &frame) {
                        Ok(()) => Saved::To(path),
                        Err(e) => Saved::Failed(e),
                    },
                };
                let _ = tx.send(saved);
                ctx.request_repaint();
            })
            .map(drop)
    }

    /// A save's outcome, once there is one.
    pub fn poll(&self) -> Option<Saved> {
        self.rx.try_recv().ok()
    }
}

/// Write `frame` to `path`: a PNG when the name says so, else the JPEG
/// exactly as it was received.
pub fn write_frame(path: &Path, frame: &DecodedFrame) -> Result<(), String> {
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        return write_png(path, frame);
    }
    std::fs::write(path, frame.jpeg.as_slice())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Write `frame` to `path` as an RGB PNG (JPEG has no alpha to keep).
pub fn write_png(path: &Path, frame: &DecodedFrame) -> Result<(), String> {
    let rgba = image::RgbaImage::from_raw(frame.width, frame.height, frame.rgba.to_vec())
        .ok_or_else(|| {
            format!(
                "frame {} has {} bytes of pixels, which does not fit {}x{}",
                frame.number,
                frame.rgba.len(),
                frame.width,
                frame.height
            )
        })?;
    let rgb = image::DynamicImage::ImageRgba8(rgba).to_rgb8();
    rgb.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_frame_becomes_a_png_with_its_pixels() {
        let frame = DecodedFrame {
            width: 2,
            height: 1,
            rgba: Arc::new(vec![255, 0, 0, 255, 0, 0, 255, 255]),
            seq: 1,
            rtp_timestamp: 0,
            number: 7,
            jpeg: Arc::new(b"\xFF\xD8 as received \xFF\xD9".to_vec()),
        };
        let path = std::env::temp_dir().join(format!("streamlab-frame-{}.png", std::process::id()));
        write_frame(&path, &frame).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        std::fs::remove_file(&path).ok();
        assert_eq!(back.dimensions(), (2, 1));
        assert_eq!(back.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(back.get_pixel(1, 0).0, [0, 0, 255]);
        // Any other name: the JPEG byte for byte.
        let jpg = path.with_extension("jpg");
        write_frame(&jpg, &frame).unwrap();
        assert_eq!(std::fs::read(&jpg).unwrap(), *frame.jpeg);
        std::fs::remove_file(&jpg).ok();
    }
}
