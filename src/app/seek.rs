//! The position bar under the video: where the stream is and how long it
//! is, for streams whose description gives a length (files; not live
//! cameras, not the lab's dialect). Clicking or dragging it seeks: PLAY
//! with `Range: npt=S-` while PLAYING; in READY the next PLAY starts there.
//! With the keyboard: Left and Right move 5 s, Home goes to the start.

use egui::{Color32, CornerRadius, Key, Rect, RichText, Sense, Stroke, WidgetInfo, pos2, vec2};

use super::view::{PlayerView, UiCommand};
use crate::protocol::State;

/// How far a key press or a screen reader's step moves.
const STEP_MS: u64 = 5_000;
/// The bar's height (its rail is thinner; this is where it can be hit).
const HEIGHT: f32 = 22.0;
const RAIL: f32 = 6.0;
const HANDLE_RADIUS: f32 = 7.0;

/// What the bar remembers between frames: where it is being dragged to.
#[derive(Debug, Clone, Default)]
pub struct SeekBar {
    /// Milliseconds under the pointer while the button is down on the bar.
    dragging: Option<u64>,
}

impl SeekBar {
    /// Draws the bar; `view.seek_bar_shown()` says whether to call it.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
        let length = view.timeline.length_ms?;
        let enabled = view.state_allows(crate::net::client::ClientCommand::PlayFrom { millis: 0 });
        let shown = view.shown_position_ms().unwrap_or(0).min(length);
        let mut seek = None;
        ui.add_space(2.0);
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(format_time(self.dragging.unwrap_or(shown), length)).monospace(),
            );
            let length_text = format_time(length, length);
            let note = (view.state == State::Ready && view.pending_seek.is_some())
                .then_some("PLAY starts here");
            let right = text_width(ui, &length_text, true)
                + note.map_or(0.0, |n| {
                    text_width(ui, n, false) + ui.spacing().item_spacing.x
                })
                + ui.spacing().item_spacing.x;
            let width = (ui.available_width() - right).max(40.0);
            let sense = if enabled {
                Sense::click_and_drag()
            } else {
                Sense::hover()
            };
            let (rect, response) = ui.allocate_exact_size(vec2(width, HEIGHT), sense);
            let rail = rect.shrink2(vec2(HANDLE_RADIUS, 0.0));
            let at = |x: f32| -> u64 {
                let t = ((x - rail.left()) / rail.width().max(1.0)).clamp(0.0, 1.0);
                (t as f64 * length as f64).round() as u64
            };

            // The pointer: pressed, dragged, released.
            if let Some(p) = response.interact_pointer_pos() {
                self.dragging = Some(at(p.x));
            }
            if response.clicked() || response.drag_stopped() {
                seek = self.dragging.take();
            } else if !response.is_pointer_button_down_on() {
                self.dragging = None;
            }

            // The keyboard and screen readers.
            if response.has_focus() {
                ui.memory_mut(|m| {
                    m.set_focus_lock_filter(
                        response.id,
                        egui::EventFilter {
                            horizontal_arrows: true,
                            ..Default::default()
                        },
                    );
                });
            }
            let (back, forward, home) = if response.has_focus() {
                ui.input(|i| {
                    (
                        i.num_presses(Key::ArrowLeft),
                        i.num_presses(Key::ArrowRight),
                        i.key_pressed(Key::Home),
                    )
                })
            } else {
                (0, 0, false)
            };
            let (decrements, increments, set) = ui.input(|i| {
                use egui::accesskit::{Action, ActionData};
                let set = i
                    .accesskit_action_requests(response.id, Action::SetValue)
                    .filter_map(|r| match r.data {
                        Some(ActionData::NumericValue(v)) if v.is_finite() => Some(v),
                        _ => None,
                    })
                    .last();
                (
                    i.num_accesskit_action_requests(response.id, Action::Decrement),
                    i.num_accesskit_action_requests(response.id, Action::Increment),
                    set,
                )
            });
            if enabled {
                let steps = (forward + increments) as i64 - (back + decrements) as i64;
                if steps != 0 {
                    let target = shown as i64 + steps * STEP_MS as i64;
                    seek = Some(target.clamp(0, length as i64) as u64);
                }
                if home {
                    seek = Some(0);
                }
                if let Some(seconds) = set {
                    seek = Some(((seconds.max(0.0) * 1000.0).round() as u64).min(length));
                }
            }

            let value = self.dragging.or(seek).unwrap_or(shown);
            response.widget_info(|| WidgetInfo::slider(enabled, value as f64 / 1000.0, "Position"));
            ui.ctx().accesskit_node_builder(response.id, |b| {
                use egui::accesskit::Action;
                // What a screen reader says, and what the tests read.
                b.set_value(format!(
                    "{} of {}",
                    format_time(value, length),
                    format_time(length, length)
                ));
                b.set_min_numeric_value(0.0);
                b.set_max_numeric_value(length as f64 / 1000.0);
                b.set_numeric_value_step(STEP_MS as f64 / 1000.0);
                if enabled {
                    b.add_action(Action::SetValue);
                    b.add_action(Action::Increment);
                    b.add_action(Action::Decrement);
                }
            });

            let hover_ms = response.hover_pos().map(|p| at(p.x));
            paint(ui, &response, rail, length, value, hover_ms, enabled);

            let response = match hover_ms {
                Some(ms) if enabled => {
                    let what = if view.state == State::Playing {
                        "click or drag to play from here"
                    } else {
                        "PLAY will start here"
                    };
                    response
                        .on_hover_text_at_pointer(format!("{}: {what}", format_time(ms, length)))
                }
                _ => response,
            };
            response.on_disabled_hover_text("Seeking needs a session: press SETUP.");

            ui.label(RichText::new(length_text).monospace().weak());
            if let Some(note) = note {
                ui.label(RichText::new(note).italics().weak());
            }
        });
        ui.add_space(2.0);
        seek.map(|millis| UiCommand::Seek { millis })
    }
}

/// The rail, the part played, a hover mark and the handle.
fn paint(
    ui: &egui::Ui,
    response: &egui::Response,
    rail: Rect,
    length: u64,
    value: u64,
    hover_ms: Option<u64>,
    enabled: bool,
) {
    if !ui.is_rect_visible(response.rect) {
        return;
    }
    let visuals = ui.visuals();
    let x_of = |ms: u64| rail.left() + rail.width() * (ms as f32 / length.max(1) as f32);
    let y = rail.center().y;
    let track = Rect::from_min_max(
        pos2(rail.left(), y - RAIL / 2.0),
        pos2(rail.right(), y + RAIL / 2.0),
    );
    let painter = ui.painter();
    let round = CornerRadius::same((RAIL / 2.0) as u8);
    painter.rect_filled(track, round, visuals.widgets.inactive.bg_fill);
    let fill = if enabled {
        visuals.selection.bg_fill
    } else {
        visuals.widgets.noninteractive.fg_stroke.color
    };
    let x = x_of(value);
    painter.rect_filled(
        Rect::from_min_max(track.min, pos2(x, track.max.y)),
        round,
        fill,
    );
    if let Some(ms) = hover_ms.filter(|_| enabled) {
        let hx = x_of(ms);
        painter.line_segment(
            [pos2(hx, track.min.y - 3.0), pos2(hx, track.max.y + 3.0)],
            Stroke::new(1.5, visuals.widgets.hovered.fg_stroke.color),
        );
    }
    let style = ui.style().interact(response);
    let radius = if response.dragged() || response.hovered() {
        HANDLE_RADIUS + 1.0
    } else {
        HANDLE_RADIUS
    };
    let handle_fill = if enabled {
        style.bg_fill
    } else {
        Color32::GRAY
    };
    painter.circle(pos2(x, y), radius, handle_fill, style.fg_stroke);
    if response.has_focus() {
        painter.circle_stroke(
            pos2(x, y),
            radius + 2.0,
            Stroke::new(1.0, visuals.selection.stroke.color),
        );
    }
}

/// `m:ss.t`, or `h:mm:ss.t` when the stream is an hour or longer.
pub fn format_time(ms: u64, length_ms: u64) -> String {
    let tenths = ms / 100;
    let (t, s) = (tenths % 10, (tenths / 10) % 60);
    let minutes = tenths / 600;
    if length_ms >= 3_600_000 {
        format!("{}:{:02}:{s:02}.{t}", minutes / 60, minutes % 60)
    } else {
        format!("{minutes}:{s:02}.{t}")
    }
}

/// How wide `text` is in the body font (monospace when `mono`).
fn text_width(ui: &egui::Ui, text: &str, mono: bool) -> f32 {
    let style = if mono {
        egui::TextStyle::Monospace
    } else {
        egui::TextStyle::Body
    };
    let font = style.resolve(ui.style());
    ui.painter()
        .layout_no_wrap(text.to_owned(), font, Color32::PLACEHOLDER)
        .size()
        .x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_a_player_shows_them() {
        assert_eq!(format_time(0, 10_000), "0:00.0");
        assert_eq!(format_time(7_549, 10_000), "0:07.5");
        assert_eq!(format_time(754_900, 1_000_000), "12:34.9");
        assert_eq!(format_time(3_723_400, 7_200_000), "1:02:03.4");
        assert_eq!(format_time(5_000, 7_200_000), "0:00:05.0");
    }
}
