//! "Serve a file...": pick (native dialog on a worker thread), type, or drop
//! a video file and the embedded server plays it; shows the server's URL so
//! other players can open the same stream.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};
use egui::{RichText, TextEdit};

use super::view::{PlayerView, UiCommand};

/// The serve bar's state: the typed path.
#[derive(Debug, Clone, Default)]
pub struct ServeBar {
    pub path: String,
}

impl ServeBar {
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
        if let Some(server) = &view.server {
            ui.horizontal_wrapped(|ui| {
                let what = match &server.source {
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
        }
        command
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
