//! "Serve a file...": pick (native dialog on a worker thread), type, or drop
//! a video file and the embedded server plays it; shows the server's URL so
//! other players can open the same stream.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};
use egui::{RichText, TextEdit};

use super::view::{PlayerView, UiCommand};
use crate::net::server::{PREPARED_SECONDS, Preparing};

/// How often the bar moves while the server prepares.
const PROGRESS_REPAINT: std::time::Duration = std::time::Duration::from_millis(100);

/// Sizes and rates offered for a camera that lists none (most USB
/// cameras give these).
const CAMERA_MODES: [(u16, u16, u32); 4] = [
    (640, 480, 30),
    (1280, 720, 30),
    (1920, 1080, 30),
    (320, 240, 30),
];

/// The serve bar's state: the typed path, the cameras found and the one
/// picked with its size and rate.
#[derive(Debug, Clone, Default)]
pub struct ServeBar {
    pub path: String,
    /// V4L2 devices found (path, name), looked for again on a click.
    pub cameras: Vec<(String, String)>,
    pub camera: usize,
    pub mode: usize,
    /// What the picked camera offers, and which camera that was.
    pub modes: Vec<(u16, u16, u32)>,
    modes_of: Option<String>,
}

impl ServeBar {
    /// The camera picker and its Serve button.
    fn camera_ui(&mut self, ui: &mut egui::Ui) -> Option<UiCommand> {
        let shown = self.cameras.get(self.camera).map_or_else(
            || "no camera found".to_owned(),
            |(path, name)| format!("{name} ({path})"),
        );
        let label = ui.label("Camera");
        let combo = egui::ComboBox::from_id_salt("camera-picker")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for (i, (path, name)) in self.cameras.iter().enumerate() {
                    ui.selectable_value(&mut self.camera, i, format!("{name} ({path})"));
                }
            });
        if combo.response.labelled_by(label.id).clicked() {
            self.cameras = crate::media::camera::list_cameras();
        }
        let picked = self.cameras.get(self.camera).cloned();
        // The sizes and rates the picked camera says it gives.
        let device = picked.as_ref().map(|(p, _)| p.clone());
        if device != self.modes_of {
            self.modes = device
                .as_deref()
                .map(crate::media::camera::list_modes)
                .unwrap_or_default();
            self.modes_of = device;
            self.mode = 0;
        }
        let modes: &[(u16, u16, u32)] = if self.modes.is_empty() {
            &CAMERA_MODES
        } else {
            &self.modes
        };
        let (w, h, fps) = modes[self.mode.min(modes.len() - 1)];
        let label = ui.label("at");
        egui::ComboBox::from_id_salt("camera-mode")
            .selected_text(format!("{w}x{h} @ {fps}"))
            .show_ui(ui, |ui| {
                for (i, (mw, mh, mf)) in modes.iter().enumerate() {
                    ui.selectable_value(&mut self.mode, i, format!("{mw}x{mh} @ {mf}"));
                }
            })
            .response
            .labelled_by(label.id);
        let size = format!("{w}x{h}");
        let clicked = ui
            .add_enabled(picked.is_some(), egui::Button::new("Serve camera"))
            .on_hover_text("Serve this camera through the built-in server, while someone watches.")
            .on_disabled_hover_text(
                "No V4L2 camera found (/dev/video*); plug one in and open the list again.",
            )
            .clicked();
        let device = picked?.0;
        clicked.then_some(UiCommand::ServeCamera { device, size, fps })
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
        let mut command = None;
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(!view.picking, egui::Button::new("Serve a file..."))
                .on_hover_text("Pick a .mjpeg file and play it through the built-in server.")
                .on_disabled_hover_text("The file dialog is open.")
                .clicked()
            {
                command = Some(UiCommand::PickFile);
            }
            let label = ui.label("Path to serve");
            let field = ui
                .add(
                    TextEdit::singleline(&mut self.path)
                        .hint_text("/path/to/movie.Mjpeg")
                        .desired_width(300.0),
                )
                .labelled_by(label.id)
                .on_hover_text("Type a path and press Enter, or drop a file on the window.");
            let typed = self.path.trim();
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let clicked = ui
                .add_enabled(!typed.is_empty(), egui::Button::new("Serve"))
                .on_hover_text("Serve the file at this path.")
                .on_disabled_hover_text("Type the path of a video file first.")
                .clicked();
            if (clicked || entered) && !typed.is_empty() {
                command = Some(UiCommand::ServeFile(PathBuf::from(typed)));
            }
        });
        // Live sources: the pattern and the cameras found.
        ui.horizontal_wrapped(|ui| {
            if ui
                .button("Serve test pattern")
                .on_hover_text(
                    "A live source: a moving 1280x720 pattern at 30 frames a second with \
                     a frame counter and the clock burnt in, made while someone watches.",
                )
                .clicked()
            {
                command = Some(UiCommand::ServePattern);
            }
            if let Some(c) = self.camera_ui(ui) {
                command = Some(c);
            }
        });
        if let Some(server) = &view.server {
            ui.horizontal_wrapped(|ui| {
                let what = match &server.source {
                    _ if server.live => format!("the live test pattern ({})", server.file_name),
                    Some(_) => server.file_name.clone(),
                    None => format!("the sample clip ({})", server.file_name),
                };
                ui.label(format!("Serving {what} at"));
                ui.add(egui::Label::new(RichText::new(&server.url).monospace()).selectable(true))
                    .on_hover_text(open_elsewhere(&server.url));
                if ui
                    .button("Copy URL")
                    .on_hover_text(open_elsewhere(&server.url))
                    .clicked()
                {
                    ui.ctx().copy_text(server.url.clone());
                }
                if ui
                    .button("Copy ffplay command")
                    .on_hover_text(open_elsewhere(&server.url))
                    .clicked()
                {
                    ui.ctx().copy_text(format!("ffplay {}", server.url));
                }
                ui.label(RichText::new("VLC, ffplay and ffmpeg open it too").weak())
                    .on_hover_text(open_elsewhere(&server.url));
            });
            if let Some(p) = server.preparing {
                ui.horizontal(|ui| preparing_bar(ui, &server.file_name, p, 420.0));
            }
        }
        command
    }
}

/// A determinate bar for what the embedded server does before the file
/// plays at once, with what it does in words and why on hover.
pub fn preparing_bar(ui: &mut egui::Ui, file: &str, p: Preparing, width: f32) {
    let (text, why) = match p {
        Preparing::Indexing { done, total } => (
            format!(
                "Finding every frame of {file}: {} of {}",
                megabytes(done),
                megabytes(total)
            ),
            "A raw MJPEG file has no index: the server reads it through once to find \
             every frame, so that it knows how long the stream is (and the position bar \
             can seek). SETUP waits for it only on lab-framed files."
                .to_owned(),
        ),
        Preparing::Encoding { done, total } => (
            format!(
                "Getting the first {PREPARED_SECONDS} s ready for RTP/JPEG: \
                 frame {done} of {total}"
            ),
            "Frames that RFC 2435 cannot carry as they are (4:4:4 sampling, for one) \
             are re-encoded as 4:2:0 once for every viewer: the first seconds now, the \
             rest ahead of the playhead while it plays."
                .to_owned(),
        ),
    };
    ui.add(
        egui::ProgressBar::new(p.fraction())
            .desired_width(width)
            .text(text),
    )
    .on_hover_text(why);
    ui.ctx().request_repaint_after(PROGRESS_REPAINT);
}

/// A byte count in megabytes, with a decimal while that says something.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 10.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{mb:.0} MB")
    }
}

/// How to play the embedded server's stream in another player.
fn open_elsewhere(url: &str) -> String {
    format!(
        "Copy the URL to play the same stream in another player on this computer \
         (the server listens on 127.0.0.1 only):\n\
         ffplay {url}\n\
         vlc {url}   (or Media > Open Network Stream)\n\
         ffplay -rtsp_transport tcp {url}   (RTP inside the RTSP connection)"
    )
}

/// Runs the native file dialog off the UI thread: the dialog blocks its
/// caller until the user answers, and the window must keep drawing.
pub struct FilePicker {
    tx: Sender<Option<PathBuf>>,
    rx: Receiver<Option<PathBuf>>,
}

impl Default for FilePicker {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        FilePicker { tx, rx }
    }
}

impl FilePicker {
    /// Open the dialog; the answer comes back through [`Self::poll`].
    pub fn open(&self, ctx: &egui::Context) -> std::io::Result<()> {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("streamlab-file-dialog".to_owned())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Serve a Motion-JPEG file")
                    .add_filter("Motion-JPEG", &["mjpeg", "Mjpeg", "MJPEG", "mjpg"])
                    .add_filter("All files", &["*"])
                    .pick_file();
                let _ = tx.send(picked);
                ctx.request_repaint();
            })
            .map(drop)
    }

    /// The dialog's answer, once it has one: `Some(None)` means cancelled,
    /// or no dialog could be shown.
    pub fn poll(&self) -> Option<Option<PathBuf>> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{NodeT, Queryable};

    use super::*;

    fn bar_of(p: Preparing) -> (String, Option<f64>) {
        let harness = Harness::new_ui(move |ui| preparing_bar(ui, "long.mjpeg", p, 400.0));
        let bar = harness.get_by_role(Role::ProgressIndicator);
        let node = bar.accesskit_node();
        (node.label().unwrap_or_default(), node.numeric_value())
    }

    #[test]
    fn indexing_shows_bytes_read_of_the_file() {
        let (label, value) = bar_of(Preparing::Indexing {
            done: 512_000_000,
            total: 2_048_000_000,
        });
        assert_eq!(
            label,
            "Finding every frame of long.mjpeg: 512 MB of 2048 MB"
        );
        assert_eq!(value, Some(25.0));
    }

    #[test]
    fn encoding_shows_frames_of_the_first_seconds() {
        let (label, value) = bar_of(Preparing::Encoding {
            done: 30,
            total: 40,
        });
        assert_eq!(
            label,
            "Getting the first 2 s ready for RTP/JPEG: frame 30 of 40"
        );
        assert_eq!(value, Some(75.0));
    }
}
