//! The wire log: every RTSP message the client sent or received, with its
//! time and direction, exactly as it crossed the wire. This is how students
//! see the protocol they are implementing. Entries picked in the state
//! diagram are highlighted and scrolled to.

use std::time::{SystemTime, UNIX_EPOCH};

use egui::{Color32, Frame, RichText, ScrollArea};

use super::view::{PlayerView, UiCommand, WireEntry};
use crate::net::client::Direction;

pub fn ui(ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
    let mut command = None;
    ui.horizontal(|ui| {
        ui.strong("Wire log");
        // TPC-3's handshake is not RTSP.
        let kind = if view.tpc3() { "TPC-3" } else { "RTSP" };
        ui.label(RichText::new(format!("{} {kind} messages", view.wire.len())).weak());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .add_enabled(!view.wire.is_empty(), egui::Button::new("Clear"))
                .on_hover_text("Forget the messages shown here.")
                .clicked()
            {
                command = Some(UiCommand::ClearWireLog);
            }
            if ui
                .add_enabled(!view.wire.is_empty(), egui::Button::new("Copy log"))
                .on_hover_text("Copy every message, with times, as text.")
                .clicked()
            {
                ui.ctx().copy_text(as_text(&view.wire));
            }
        });
    });
    ui.separator();

    let sent_color = ui.visuals().hyperlink_color;
    let received_color = Color32::from_rgb(60, 170, 80);
    // The scroll area fills the panel even when empty: a resizable panel
    // remembers the height its contents used, and a one-line hint would
    // otherwise shrink the log for good.
    let focus = view.wire_focus.as_ref();
    let focused = |id: u64| focus.is_some_and(|f| f.ids.contains(&id));
    let mut scroll = focus.is_some_and(|f| f.scroll);
    let highlight = ui.visuals().selection.bg_fill.gamma_multiply(0.35);
    ScrollArea::vertical()
        .auto_shrink(false)
        // A picked message stays in view while new ones arrive.
        .stick_to_bottom(focus.is_none())
        .show(ui, |ui| {
            let Some(first) = view.wire.first().map(|e| e.at) else {
                ui.label(
                    RichText::new(if view.tpc3() {
                        "The TPC-3 handshake appears here as it is sent and received."
                    } else {
                        "RTSP messages appear here as they are sent and received."
                    })
                    .italics()
                    .weak(),
                );
                return;
            };
            for entry in &view.wire {
                let picked = focused(entry.id);
                let frame = if picked {
                    Frame::new().fill(highlight).inner_margin(2.0)
                } else {
                    Frame::new()
                };
                let shown = frame.show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(relative(first, entry.at)).monospace().weak())
                            .on_hover_text(utc_time_of_day(entry.at));
                        let (arrow, color) = match entry.direction {
                            Direction::Sent => ("-> sent", sent_color),
                            Direction::Received => ("<- received", received_color),
                        };
                        ui.label(RichText::new(arrow).monospace().color(color));
                    });
                    ui.label(RichText::new(&entry.text).monospace());
                });
                if picked && scroll {
                    shown.response.scroll_to_me(Some(egui::Align::TOP));
                    scroll = false;
                    command = Some(UiCommand::WireScrolled);
                }
                ui.add_space(4.0);
            }
        });
    command
}

/// Seconds since the first message shown, as Wireshark shows them by default.
fn relative(first: SystemTime, at: SystemTime) -> String {
    let seconds = at.duration_since(first).map_or(0.0, |d| d.as_secs_f64());
    format!("+{seconds:.3} s")
}

/// The wall-clock time in UTC (the standard library knows no time zones).
fn utc_time_of_day(at: SystemTime) -> String {
    let Ok(since_epoch) = at.duration_since(UNIX_EPOCH) else {
        return "before 1970".to_owned();
    };
    let secs = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since_epoch.subsec_millis()
    )
}

fn as_text(entries: &[WireEntry]) -> String {
    let Some(first) = entries.first().map(|e| e.at) else {
        return String::new();
    };
    let mut out = String::new();
    for entry in entries {
        let direction = match entry.direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
        };
        out.push_str(&format!(
            "{} ({}) {direction}\n{}\n\n",
            relative(first, entry.at),
            utc_time_of_day(entry.at),
            entry.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_relative_and_utc() {
        let first = UNIX_EPOCH + Duration::from_millis(3_600_000 + 61_250);
        let later = first + Duration::from_millis(1500);
        assert_eq!(relative(first, later), "+1.500 s");
        assert_eq!(relative(later, first), "+0.000 s");
        assert_eq!(utc_time_of_day(first), "01:01:01.250 UTC");
    }
}
