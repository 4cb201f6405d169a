//! The connection bar: the lab client's four fields (Host, RTSP port, RTP
//! port, File) and its four buttons (SETUP, PLAY, PAUSE, TEARDOWN), each
//! enabled only where the RTSP state machine allows it.

use egui::{Button, RichText, TextEdit, vec2};

use super::view::{PlayerView, UiCommand};
use crate::net::client::{ClientCommand, ClientConfig};
use crate::protocol::State;

/// The lab's usual RTP port; students type it into the lab client.
pub const DEFAULT_RTP_PORT: u16 = 5008;

/// The four fields as typed, so a half-typed port is not lost or rejected
/// while the user is still typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFields {
    pub host: String,
    pub rtsp_port: String,
    pub rtp_port: String,
    pub file: String,
}

impl Default for ConnectionFields {
    fn default() -> Self {
        ConnectionFields {
            host: "127.0.0.1".to_owned(),
            rtsp_port: "8554".to_owned(),
            rtp_port: DEFAULT_RTP_PORT.to_string(),
            file: "movie.Mjpeg".to_owned(),
        }
    }
}

impl ConnectionFields {
    pub fn from_config(config: &ClientConfig) -> Self {
        ConnectionFields {
            host: config.host.clone(),
            rtsp_port: config.rtsp_port.to_string(),
            rtp_port: config.rtp_port.to_string(),
            file: config.file.clone(),
        }
    }

    /// The fields as a client configuration, or the sentence that says
    /// which field is wrong.
    pub fn to_config(&self) -> Result<ClientConfig, String> {
        let host = self.host.trim();
        if host.is_empty() {
            return Err("Host is empty: type the server's name or address.".to_owned());
        }
        let rtsp_port = match self.rtsp_port.trim().parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(format!(
                    "RTSP port must be a number from 1 to 65535, not \"{}\".",
                    self.rtsp_port.trim()
                ));
            }
        };
        let Ok(rtp_port) = self.rtp_port.trim().parse::<u16>() else {
            return Err(format!(
                "RTP port must be a number from 0 to 65535 (0 picks any free port), not \"{}\".",
                self.rtp_port.trim()
            ));
        };
        let file = self.file.trim();
        if file.is_empty() {
            return Err(
                "File is empty: type the name of the video on the server (e.g. movie.Mjpeg)."
                    .to_owned(),
            );
        }
        Ok(ClientConfig {
            host: host.to_owned(),
            rtsp_port,
            rtp_port,
            file: file.to_owned(),
            ..ClientConfig::default()
        })
    }
}

/// The connection bar's state: only what the user typed.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub fields: ConnectionFields,
}

/// Button name, what it does, and the state it needs.
const BUTTONS: [(ClientCommand, &str, &str, &str); 4] = [
    (
        ClientCommand::Setup,
        "SETUP",
        "Open a session: the server gets ready to send RTP to your RTP port (INIT -> READY).",
        "SETUP is possible in INIT only.",
    ),
    (
        ClientCommand::Play,
        "PLAY",
        "Start the video (READY -> PLAYING).",
        "PLAY is possible in READY only: press SETUP first.",
    ),
    (
        ClientCommand::Pause,
        "PAUSE",
        "Stop the video, keep the session (PLAYING -> READY).",
        "PAUSE is possible in PLAYING only.",
    ),
    (
        ClientCommand::Teardown,
        "TEARDOWN",
        "End the session (READY or PLAYING -> INIT).",
        "TEARDOWN is possible in READY or PLAYING.",
    ),
];

impl Controls {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
        let mut command = None;
        ui.horizontal_wrapped(|ui| {
            // Changing where to connect in the middle of a session would
            // leave the session's server and the fields disagreeing.
            let editable = view.state == State::Init && view.in_flight.is_none();
            let fields = &mut self.fields;
            labelled_field(ui, "Host", &mut fields.host, 150.0, editable);
            labelled_field(ui, "RTSP port", &mut fields.rtsp_port, 56.0, editable);
            labelled_field(ui, "RTP port", &mut fields.rtp_port, 56.0, editable);
            labelled_field(ui, "File", &mut fields.file, 170.0, editable);
            ui.separator();
            for (client_command, name, what, when) in BUTTONS {
                let enabled = view.can_send(client_command);
                let button = Button::new(RichText::new(name).strong()).min_size(vec2(82.0, 0.0));
                let disabled_reason = match view.in_flight {
                    Some(pending) if view.state_allows(client_command) => {
                        format!("Waiting for the reply to {}.", command_name(pending))
                    }
                    _ => when.to_owned(),
                };
                let response = ui
                    .add_enabled(enabled, button)
                    .on_hover_text(what)
                    .on_disabled_hover_text(disabled_reason);
                if response.clicked() {
                    command = Some(UiCommand::Client(client_command));
                }
            }
            if let Some(pending) = view.in_flight {
                ui.label(
                    RichText::new(format!(
                        "waiting for the reply to {}",
                        command_name(pending)
                    ))
                    .italics()
                    .weak(),
                );
            }
        });
        command
    }
}

/// The name a request has on the wire.
pub fn command_name(command: ClientCommand) -> &'static str {
    match command {
        ClientCommand::Setup => "SETUP",
        ClientCommand::Play | ClientCommand::PlayFrom { .. } => "PLAY",
        ClientCommand::Pause => "PAUSE",
        ClientCommand::Teardown => "TEARDOWN",
        ClientCommand::Shutdown => "TEARDOWN (closing)",
    }
}

/// A text field tied to its visible label, so screen readers and the UI
/// tests find it by that label.
fn labelled_field(ui: &mut egui::Ui, label: &str, value: &mut String, width: f32, enabled: bool) {
    let label = ui.label(label);
    ui.add_enabled(enabled, TextEdit::singleline(value).desired_width(width))
        .labelled_by(label.id)
        .on_disabled_hover_text("TEARDOWN first to change where to connect.");
}
