//! The analysis panel: what the network did to the stream, as numbers
//! (the same the probe prints and the CSV holds), live plots of the last
//! 60 s, a per-packet view of the last few seconds (sequence number
//! against arrival time, as Wireshark draws it, gaps and reorders marked),
//! and the frames CSV export.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};
use egui::{Color32, Grid, RichText};
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points};

use super::history::{History, PLOT_SECONDS};
use super::view::PlayerView;
use crate::net::client::{ClientStats, PacketStatus};

/// The panel's own state: the export path and its worker's answer.
pub struct AnalysisPanel {
    pub export_path: String,
    done_tx: Sender<Result<PathBuf, String>>,
    done_rx: Receiver<Result<PathBuf, String>>,
    /// The last export's outcome, shown beside the button.
    pub export_result: Option<Result<PathBuf, String>>,
}

impl Default for AnalysisPanel {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        AnalysisPanel {
            export_path: "streamlab-frames.csv".into(),
            done_tx,
            done_rx,
            export_result: None,
        }
    }
}

/// Plot colours: one per series, the same in every plot.
const PAYLOAD: Color32 = Color32::from_rgb(70, 130, 220);
const WIRE: Color32 = Color32::from_rgb(150, 150, 150);
const LOSS: Color32 = Color32::from_rgb(220, 70, 60);
const JITTER: Color32 = Color32::from_rgb(200, 140, 40);
const FRAME: Color32 = Color32::from_rgb(60, 170, 80);

impl AnalysisPanel {
    /// Draw the panel. `history` is mutable for the pause toggles.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView, history: &mut History) {
        if let Ok(done) = self.done_rx.try_recv() {
            self.export_result = Some(done);
        }
        ui.horizontal(|ui| {
            ui.checkbox(&mut history.frozen, "Pause plots")
                .on_hover_text("The plots stop moving; the stream and the counters go on.");
            ui.separator();
            let label = ui.label("Frames CSV:");
            ui.add(
                egui::TextEdit::singleline(&mut self.export_path)
                    .desired_width(220.0)
                    .hint_text("file to write"),
            )
            .labelled_by(label.id);
            if ui
                .button("Export CSV")
                .on_hover_text(
                    "One row per frame of this session, as `streamlab probe --csv` writes it.",
                )
                .clicked()
            {
                self.export(PathBuf::from(self.export_path.trim()), history.frames_csv());
            }
            match &self.export_result {
                Some(Ok(path)) => {
                    ui.label(format!("Wrote {}", path.display()));
                }
                Some(Err(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {}
            }
        });
        ui.separator();
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("analysis-numbers")
                .show(&mut cols[0], |ui| numbers(ui, &view.stats));
            egui::ScrollArea::vertical()
                .id_salt("analysis-plots")
                .show(&mut cols[1], |ui| {
                    plots(ui, history);
                    packet_view(ui, history);
                });
        });
    }

    /// Write off the UI thread: a slow disk must not freeze the window.
    fn export(&mut self, path: PathBuf, csv: String) {
        let done = self.done_tx.clone();
        self.export_result = None;
        let spawned = std::thread::Builder::new()
            .name("csv-export".into())
            .spawn(move || {
                let result = std::fs::write(&path, csv)
                    .map(|()| path.clone())
                    .map_err(|e| {
                        format!(
                            "Cannot write {}: {e}. Choose another file; the stream goes on.",
                            path.display()
                        )
                    });
                let _ = done.send(result);
            });
        if let Err(e) = spawned {
            self.export_result = Some(Err(format!("Cannot start the export: {e}")));
        }
    }
}

fn heading(ui: &mut egui::Ui, text: &str) {
    ui.label(RichText::new(text).strong());
    ui.end_row();
}

fn row(ui: &mut egui::Ui, name: &str, value: String, hint: &str) {
    let r = ui.label(name);
    if !hint.is_empty() {
        r.on_hover_text(hint);
    }
    ui.label(value);
    ui.end_row();
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}

/// Every counter, grouped as a student reads them.
fn numbers(ui: &mut egui::Ui, s: &ClientStats) {
    let n = &s.net;
    Grid::new("analysis-grid")
        .num_columns(2)
        .striped(true)
        .spacing([12.0, 3.0])
        .show(ui, |ui| {
            heading(ui, "Packets");
            row(
                ui,
                "Expected",
                n.expected.to_string(),
                "From the first to the highest sequence number, across wraps.",
            );
            row(ui, "Received", n.received.to_string(), "Distinct packets.");
            row(
                ui,
                "Lost",
                format!(
                    "{} ({:.2}%; last second {:.2}%)",
                    n.lost, n.loss_percent, n.loss_percent_1s
                ),
                "Expected but never received.",
            );
            row(
                ui,
                "Longest loss run",
                n.longest_loss_run.to_string(),
                "Consecutive packets lost at once.",
            );
            row(
                ui,
                "Duplicated",
                n.duplicates.to_string(),
                "Copies of packets already received.",
            );
            row(
                ui,
                "Reordered",
                n.reordered.to_string(),
                "Arrived after a packet with a higher sequence number.",
            );
            row(
                ui,
                "Late",
                n.late.to_string(),
                "Arrived after their place was given up on.",
            );
            heading(ui, "Frames");
            row(ui, "Complete", n.frames_complete.to_string(), "");
            row(
                ui,
                "Incomplete",
                n.frames_incomplete.to_string(),
                "A fragment was missing: never shown.",
            );
            row(ui, "Presented", s.frames_presented.to_string(), "");
            row(
                ui,
                "Skipped late",
                s.frames_late.to_string(),
                "Came after their presentation time: never shown out of order.",
            );
            row(ui, "Undecodable", s.decode_errors.to_string(), "");
            heading(ui, "Rates (last second)");
            let overhead = if n.wire_kbps > 0.0 {
                (n.wire_kbps - n.payload_kbps) / n.wire_kbps * 100.0
            } else {
                0.0
            };
            row(
                ui,
                "Bitrate, payload",
                format!("{:.0} kbit/s", n.payload_kbps),
                "RTP payload only.",
            );
            row(
                ui,
                "Bitrate, on the wire",
                format!("{:.0} kbit/s ({overhead:.1}% headers)", n.wire_kbps),
                "Whole packets with RTP, UDP and IP headers (or the $ framing over TCP).",
            );
            row(
                ui,
                "Frames per second",
                format!(
                    "{:.1} received, {:.1} presented",
                    n.fps_received, s.fps_presented
                ),
                "",
            );
            row(
                ui,
                "Frame size",
                format!("{:.1} KB", n.frame_bytes as f64 / 1024.0),
                "The last whole frame.",
            );
            row(
                ui,
                "Fragments per frame",
                format!("{:.1}", n.fragments_per_frame),
                "RTP packets per whole frame, on average.",
            );
            heading(ui, "Timing");
            row(
                ui,
                "Inter-arrival",
                format!(
                    "{:.2} ms per packet, {:.1} ms per frame",
                    n.packet_interarrival_ms, n.frame_interarrival_ms
                ),
                "Mean time between arrivals over the last second.",
            );
            row(
                ui,
                "Jitter, per packet",
                format!("{:.2} ms", n.jitter_ms),
                "RFC 3550 interarrival jitter over every packet, as receiver reports carry it. \
                 The packets of one frame share a timestamp but arrive apart, which inflates it.",
            );
            row(
                ui,
                "Jitter, per frame",
                format!("{:.2} ms", n.frame_jitter_ms),
                "The same formula over whole frames (their last packet): what playback feels.",
            );
            row(
                ui,
                "Latency to arrival",
                format!(
                    "{} (p50 {}, p99 {})",
                    ms(n.latency_ms),
                    ms(n.latency_p50_ms),
                    ms(n.latency_p99_ms)
                ),
                "The sender's time of a frame (from RTCP sender reports) to its last packet. \
                 On one machine this is glass to glass.",
            );
            row(
                ui,
                "Latency to presentation",
                format!(
                    "p50 {}, p99 {}",
                    ms(s.presented_latency_p50_ms),
                    ms(s.presented_latency_p99_ms)
                ),
                "The sender's time of a frame to when it was shown.",
            );
            row(ui, "PLAY to first frame", ms(s.first_frame_ms), "");
            heading(ui, "Playout buffer");
            row(
                ui,
                "State",
                s.buffer_state.name().to_string(),
                "Buffering: filling (pre-buffer, PAUSE) or waiting for the first frame's time. \
                 Underrun: empty when a frame was due.",
            );
            row(
                ui,
                "Held",
                format!("{} frames, {:.0} ms", s.buffer_frames, s.buffer_ms),
                "",
            );
            row(ui, "Underruns", s.underruns.to_string(), "");
            row(
                ui,
                "Latency",
                if s.latency_ms == 0 {
                    "0 ms: frames shown as they complete".to_string()
                } else {
                    format!("{} ms behind the sender", s.latency_ms)
                },
                "",
            );
        });
}

/// One small plot of the last 60 s.
fn plot(ui: &mut egui::Ui, id: &str, unit: &str, lines: Vec<(&str, Color32, Vec<[f64; 2]>)>) {
    Plot::new(id)
        .height(90.0)
        .legend(Legend::default())
        .y_axis_label(unit)
        .include_y(0.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .link_axis(egui::Id::unique("analysis-x"), [true, false])
        .show(ui, |p| {
            for (name, color, points) in lines {
                p.line(Line::new(name, PlotPoints::from(points)).color(color));
            }
        });
}

fn plots(ui: &mut egui::Ui, h: &History) {
    let series = |f: &dyn Fn(&super::history::Point) -> Option<f64>| -> Vec<[f64; 2]> {
        h.points().filter_map(|p| Some([p.t, f(p)?])).collect()
    };
    ui.label(RichText::new(format!("Last {PLOT_SECONDS:.0} s")).weak());
    plot(
        ui,
        "plot-bitrate",
        "kbit/s",
        vec![
            ("payload", PAYLOAD, series(&|p| Some(p.payload_kbps))),
            ("on the wire", WIRE, series(&|p| Some(p.wire_kbps))),
        ],
    );
    plot(
        ui,
        "plot-loss",
        "% lost",
        vec![("loss, last second", LOSS, series(&|p| Some(p.loss_percent)))],
    );
    plot(
        ui,
        "plot-jitter",
        "ms",
        vec![
            ("jitter per packet", JITTER, series(&|p| Some(p.jitter_ms))),
            (
                "jitter per frame",
                FRAME,
                series(&|p| Some(p.frame_jitter_ms)),
            ),
        ],
    );
    plot(
        ui,
        "plot-frame-size",
        "KB",
        vec![("frame size", FRAME, series(&|p| Some(p.frame_kb)))],
    );
    plot(
        ui,
        "plot-buffer",
        "ms held",
        vec![("playout buffer", PAYLOAD, series(&|p| Some(p.buffer_ms)))],
    );
    plot(
        ui,
        "plot-latency",
        "ms",
        vec![("latency to arrival", JITTER, series(&|p| p.latency_ms))],
    );
}

/// Sequence numbers against arrival time for the last few seconds: a
/// straight staircase when all is well; gaps, duplicates and reorders
/// marked in their colours.
fn packet_view(ui: &mut egui::Ui, h: &History) {
    ui.label(
        RichText::new("Packets: sequence number against arrival (ms since PLAY's reply)").weak(),
    );
    let mut by_kind: [(&str, Color32, MarkerShape, Vec<[f64; 2]>); 4] = [
        ("in order", PAYLOAD, MarkerShape::Circle, Vec::new()),
        ("reordered", JITTER, MarkerShape::Diamond, Vec::new()),
        ("duplicate or late", LOSS, MarkerShape::Cross, Vec::new()),
        ("refused", WIRE, MarkerShape::Square, Vec::new()),
    ];
    // Unwrap sequence numbers so the staircase does not fall at 65535.
    let mut ext: Option<i64> = None;
    for p in &h.packets {
        let seq = match ext {
            None => p.seq as i64,
            Some(last) => last + (p.seq.wrapping_sub(last as u16) as i16) as i64,
        };
        if matches!(p.status, PacketStatus::Ok) || ext.is_none() {
            ext = Some(seq);
        }
        let kind = match p.status {
            PacketStatus::Ok => 0,
            PacketStatus::Reordered => 1,
            PacketStatus::Duplicate | PacketStatus::Late => 2,
            PacketStatus::Dropped(_) => 3,
        };
        by_kind[kind].3.push([h.millis(p.at), seq as f64]);
    }
    // Gaps: where the staircase skips numbers, a red mark at the gap.
    let mut gaps = Vec::new();
    let ok = &by_kind[0].3;
    for w in ok.windows(2) {
        if w[1][1] - w[0][1] > 1.0 {
            gaps.push([w[1][0], w[1][1] - 1.0]);
        }
    }
    Plot::new("plot-packets")
        .height(150.0)
        .legend(Legend::default())
        .x_axis_label("ms")
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (name, color, shape, points) in by_kind {
                if !points.is_empty() {
                    plot.points(
                        Points::new(name, PlotPoints::from(points))
                            .color(color)
                            .shape(shape)
                            .radius(2.0),
                    );
                }
            }
            if !gaps.is_empty() {
                plot.points(
                    Points::new("gap (lost)", PlotPoints::from(gaps))
                        .color(LOSS)
                        .shape(MarkerShape::Down)
                        .radius(4.0),
                );
            }
        });
}
