//! The error banner: every failure the engine or the embedded server reports,
//! in words, kept on screen until dismissed or until the next request
//! succeeds (a line in a log nobody reads helps no student).

use egui::{Frame, RichText};

use super::view::{PlayerView, UiCommand};

/// Draws nothing when there is nothing to say.
pub fn ui(ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
    if view.errors.is_empty() && view.notice.is_none() {
        return None;
    }
    let mut command = None;
    let visuals = ui.visuals();
    let (fill, text) = if view.errors.is_empty() {
        (
            visuals.warn_fg_color.gamma_multiply(0.15),
            visuals.warn_fg_color,
        )
    } else {
        (
            visuals.error_fg_color.gamma_multiply(0.15),
            visuals.error_fg_color,
        )
    };
    Frame::new()
        .fill(fill)
        .inner_margin(6.0)
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            // Dismiss first, from the right, so the sentences get the rest
            // of the width and wrap instead of pushing the button away.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
                if ui.button("Dismiss").clicked() {
                    command = Some(UiCommand::Dismiss);
                }
                ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                    for error in &view.errors {
                        ui.label(RichText::new(format!("Error: {error}")).color(text));
                    }
                    if let Some(notice) = &view.notice {
                        ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
                    }
                });
            });
        });
    command
}
