//! The status panel: the RTSP state in large letters and the numbers a
//! student checks while the stream runs (session, CSeq, frame, RTP sequence
//! number, frames per second, loss, drops, decode errors).

use egui::{Color32, Grid, RichText};

use super::view::PlayerView;
use crate::protocol::State;

/// The colour each state is drawn in, here and in the diagram.
pub fn state_color(ui: &egui::Ui, state: State) -> Color32 {
    match state {
        State::Init => ui.visuals().weak_text_color(),
        State::Ready => ui.visuals().warn_fg_color,
        State::Playing => Color32::from_rgb(60, 170, 80),
    }
}

pub fn ui(ui: &mut egui::Ui, view: &PlayerView) {
    if view.tpc3() {
        // The assignment's phases; a long name, so smaller letters.
        let phase = view.tpc3_phase;
        ui.label(RichText::new(phase.stage().unwrap_or("TPC-3")).weak());
        ui.label(
            RichText::new(phase.name())
                .size(24.0)
                .strong()
                .color(state_color(ui, phase.state())),
        );
    } else {
        ui.label(RichText::new("RTSP state").weak());
        ui.label(
            RichText::new(view.state.name())
                .size(34.0)
                .strong()
                .color(state_color(ui, view.state)),
        );
    }
    if let Some(pending) = view.in_flight {
        ui.label(
            RichText::new(format!(
                "{} sent, waiting for the reply",
                view.command_name(pending)
            ))
            .italics()
            .weak(),
        );
    }
    ui.add_space(6.0);

    let stats = &view.stats;
    Grid::new("status-grid")
        .num_columns(2)
        .striped(true)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            row(ui, "Session", view.session.as_deref().unwrap_or("none"));
            row(ui, "Last CSeq", &optional(view.last_cseq));
            ui.label("Frames decoded");
            ui.label(optional(view.frame.map(|f| f.number)))
                .on_hover_text(
                    "Frames decoded in this session so far (not the frame's place in the file: \
                 the lab's dialect numbers frames with the RTP sequence number)",
                );
            ui.end_row();
            row(ui, "RTP seq", &optional(view.frame.map(|f| f.seq)));
            row(
                ui,
                "SSRC",
                &stats
                    .ssrc
                    .map_or_else(|| "-".to_owned(), |s| format!("{s} (0x{s:08X})")),
            );
            row(
                ui,
                "Picture",
                &view
                    .frame
                    .map_or_else(|| "-".to_owned(), |f| format!("{} x {}", f.width, f.height)),
            );
            row(ui, "Frames/s", &format!("{:.1}", stats.fps));
            ui.label("Packets");
            ui.label(stats.packets.to_string())
                .on_hover_text(format!("{} bytes of RTP payload", stats.bytes));
            ui.end_row();
            row(ui, "Packets lost", &stats.lost.to_string());
            ui.label("Packets dropped");
            let dropped = ui.label(stats.dropped_total().to_string());
            if stats.dropped.is_empty() {
                dropped.on_hover_text("No packet was dropped.");
            } else {
                dropped.on_hover_ui(|ui| {
                    for (reason, count) in &stats.dropped {
                        ui.label(format!("{reason}: {count}"));
                    }
                });
            }
            ui.end_row();
            ui.label("Reordered");
            ui.label(stats.reordered.to_string()).on_hover_text(
                "Packets that overtook others on the way and were put back in order.",
            );
            ui.end_row();
            ui.label("Kernel drops");
            ui.label(optional(stats.kernel_drops)).on_hover_text(
                "Packets the operating system dropped because the UDP receive buffer was full \
                 (the receiver fell behind a burst). \"-\": not known, or RTP over TCP.",
            );
            ui.end_row();
            row(ui, "Receiver reports", &stats.reports_sent.to_string());
            row(ui, "Decode errors", &stats.decode_errors.to_string());
            row(ui, "Frames skipped", &stats.frames_skipped.to_string());
            row(
                ui,
                "First frame",
                &stats
                    .first_frame_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0} ms after PLAY")),
            );
            ui.label("Reconnects");
            ui.label(view.reconnects.to_string()).on_hover_text(
                "Times the server went away (connection closed or reset) and the player \
                 found it again and played on, by itself.",
            );
            ui.end_row();
        });
}

fn row(ui: &mut egui::Ui, name: &str, value: &str) {
    ui.label(name);
    ui.label(value);
    ui.end_row();
}

fn optional(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
