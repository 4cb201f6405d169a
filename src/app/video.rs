//! The video area: the latest decoded frame, scaled to fit with its aspect
//! ratio kept, drawn from one GPU texture whose pixels are replaced only when
//! a new frame arrives. A double-click on it enters or leaves full screen.

use egui::{Color32, ColorImage, Rect, Sense, TextureHandle, TextureOptions, pos2};

use super::view::PlayerView;
use crate::net::client::DecodedFrame;
use crate::protocol::State;

/// Holds the one video texture.
#[derive(Default)]
pub struct VideoPanel {
    texture: Option<TextureHandle>,
}

impl VideoPanel {
    /// Replace the shown picture. Returns the sentence to show if the frame
    /// cannot be shown.
    pub fn upload(&mut self, ctx: &egui::Context, frame: &DecodedFrame) -> Result<(), String> {
        let (width, height) = (frame.width as usize, frame.height as usize);
        if width == 0 || height == 0 || frame.rgba.len() != width * height * 4 {
            return Err(format!(
                "frame {} has {} bytes of pixels, which does not fit {}x{} RGBA",
                frame.number,
                frame.rgba.len(),
                frame.width,
                frame.height
            ));
        }
        let max_side = ctx.input(|i| i.max_texture_side);
        if width > max_side || height > max_side {
            return Err(format!(
                "the video is {}x{}, larger than this graphics card's largest texture ({max_side} pixels a side)",
                frame.width, frame.height
            ));
        }
        // JPEG has no alpha (every pixel is opaque), so the pixels already
        // are premultiplied and the per-pixel conversion can be skipped.
        let image = ColorImage::from_rgba_premultiplied([width, height], &frame.rgba);
        match &mut self.texture {
            Some(texture) => texture.set(image, TextureOptions::LINEAR),
            None => {
                self.texture = Some(ctx.load_texture("video", image, TextureOptions::LINEAR));
            }
        }
        Ok(())
    }

    /// Forget the picture (a new server or session replaced the stream).
    pub fn clear(&mut self) {
        self.texture = None;
    }

    /// Draw the picture (or what to do to get one); the response tells of
    /// clicks on it.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> egui::Response {
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click());
        match &self.texture {
            Some(texture) => {
                let image_rect = fit(texture.size_vec2(), rect);
                ui.painter().image(
                    texture.id(),
                    image_rect,
                    Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
            None => {
                let hint = match view.state {
                    State::Init => "Press SETUP, then PLAY",
                    State::Ready => "Press PLAY",
                    State::Playing => "Waiting for video...",
                };
                // A label, not painted text, so screen readers and tests see it.
                ui.put(
                    rect,
                    egui::Label::new(egui::RichText::new(hint).size(22.0).weak()),
                );
            }
        }
        response
    }
}

/// The largest rect with `size`'s aspect ratio that fits in `area`, centred.
fn fit(size: egui::Vec2, area: Rect) -> Rect {
    if size.x <= 0.0 || size.y <= 0.0 {
        return area;
    }
    let scale = (area.width() / size.x).min(area.height() / size.y);
    Rect::from_center_size(area.center(), size * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::vec2;

    #[test]
    fn fit_keeps_aspect_ratio_and_centres() {
        let area = Rect::from_min_size(pos2(0.0, 0.0), vec2(800.0, 400.0));
        let r = fit(vec2(384.0, 288.0), area);
        assert!((r.height() - 400.0).abs() < 1e-3);
        assert!((r.width() / r.height() - 384.0 / 288.0).abs() < 1e-3);
        assert!((r.center().x - 400.0).abs() < 1e-3);
    }
}
