//! The connection bar: an `rtsp://` URL and the lab's four fields (Host,
//! RTSP port, RTP port, File) kept in step, the dialect and transport
//! choices, the four buttons (SETUP, PLAY, PAUSE, TEARDOWN), each enabled
//! only where the RTSP state machine allows it unless "Let me send it
//! anyway" is on, the pre-buffer and latency settings, and the recent URLs.
//! With TPC-3 chosen the buttons are its three (Connect, Go, Stop) and the
//! ports are named as the assignment names them (TCP, UDP).

use std::time::Duration;

use egui::text::{CCursor, CCursorRange};
use egui::{Button, DragValue, Id, RichText, Slider, TextEdit, vec2};

use super::connection::{ConnectionFields, PASSWORD_MASK, mask_password};
use super::view::{PlayerView, UiCommand};
use crate::net::client::{ClientCommand, DialectChoice, TransportChoice};
use crate::protocol::State;

/// The connection bar's state: only what the user typed and chose.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub fields: ConnectionFields,
    /// URLs that reached READY, newest first, without passwords.
    pub recent: Vec<String>,
}

/// How many recent URLs are kept.
pub const MAX_RECENT: usize = 10;

/// A request in flight longer than this shows the wait indicator.
const SLOW_REPLY: Duration = Duration::from_millis(400);

/// The latency the slider shows while "auto" is on (the engine's choice
/// over UDP to another host).
const AUTO_LATENCY_SHOWN: u32 = 200;

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

/// TPC-3's buttons: name, what it does, and when it can be pressed. They
/// send the commands of SETUP, PLAY and TEARDOWN, whose places they take.
const TPC3_BUTTONS: [(ClientCommand, &str, &str, &str); 3] = [
    (
        ClientCommand::Setup,
        "Connect",
        "Connect to the TCP port and send the file name and your UDP port; the server \
         answers a session id, or -1 when it has no such file (Setup phase).",
        "Connect is possible when not connected: press Stop first.",
    ),
    (
        ClientCommand::Play,
        "Go",
        "Send Go: the server starts sending the file to your UDP port (Transfer phase).",
        "Go is possible once the session id came: press Connect first.",
    ),
    (
        ClientCommand::Teardown,
        "Stop",
        "Close the TCP connection: the server stops sending.",
        "Stop is possible while connected.",
    ),
];

/// Each dialect's name and what it means.
const DIALECTS: [(DialectChoice, &str, &str); 4] = [
    (
        DialectChoice::Auto,
        "Auto",
        "Standard RTSP first; the lab's dialect when the server does not answer \
         OPTIONS within a second (the lab's Python server answers nothing to it).",
    ),
    (
        DialectChoice::Standard,
        "Standard",
        "RTSP as cameras, VLC, ffmpeg and GStreamer speak it (RFC 2326): \
         OPTIONS, DESCRIBE, then SETUP of the video track.",
    ),
    (
        DialectChoice::Lab,
        "Lab",
        "The lab's dialect only: SETUP movie.Mjpeg with \"Transport: RTP/UDP; \
         client_port= N\", as the lab's Python server expects.",
    ),
    (
        DialectChoice::Tpc3,
        "TPC-3",
        "Lab 08 TPC-3's handshake instead of RTSP: the file name and UDP port on the \
         TCP port, a session id back (-1: no such file), then Go; every datagram's SSRC \
         must be the session id.",
    ),
];

/// Each transport's name and what it means.
const TRANSPORTS: [(TransportChoice, &str, &str); 2] = [
    (
        TransportChoice::Udp,
        "UDP",
        "RTP arrives as UDP datagrams on the RTP port: the lab's way, and the \
         quickest on a local network.",
    ),
    (
        TransportChoice::Tcp,
        "TCP",
        "RTP travels inside the RTSP connection (interleaved): passes firewalls \
         and NAT that block UDP. Standard RTSP only; the lab's dialect always uses UDP.",
    ),
];

/// The width of each of the four buttons, so they line up.
const BUTTON_WIDTH: f32 = 82.0;

/// The URL field's width: most camera URLs fit.
const URL_WIDTH: f32 = 300.0;

/// Why the bar cannot be edited now.
const LOCKED: &str = "TEARDOWN first to change where to connect.";

impl Controls {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
        // Changing where to connect in the middle of a session would
        // leave the session's server and the fields disagreeing.
        let editable = view.state == State::Init && view.in_flight.is_none();
        ui.horizontal_wrapped(|ui| {
            self.url_field(ui, editable);
            self.recent_menu(ui, editable);
            ui.separator();
            let fields = &mut self.fields;
            // TPC-3's names: `Client.py hostname TCPControlPort UDPDataPort fileName`.
            let (control, data) = if fields.dialect == DialectChoice::Tpc3 {
                ("TCP port", "UDP port")
            } else {
                ("RTSP port", "RTP port")
            };
            let mut edited = false;
            edited |= labelled_field(ui, "Host", &mut fields.host, 140.0, editable);
            edited |= labelled_field(ui, control, &mut fields.rtsp_port, 52.0, editable);
            // Not part of the URL: it is the client's own port.
            labelled_field(ui, data, &mut fields.rtp_port, 52.0, editable);
            edited |= labelled_field(ui, "File", &mut fields.file, 150.0, editable);
            if edited {
                fields.fields_edited();
            }
        });
        let mut command = None;
        ui.horizontal_wrapped(|ui| {
            self.choices(ui, editable);
            ui.separator();
            let spacing = ui.spacing().item_spacing.x;
            let buttons: &[_] = if view.tpc3() { &TPC3_BUTTONS } else { &BUTTONS };
            room_for(ui, buttons.len() as f32 * (BUTTON_WIDTH + spacing));
            for &(client_command, name, what, when) in buttons {
                let enabled = view.can_send(client_command);
                let anyway = !view.machine_allows(client_command);
                let button =
                    Button::new(RichText::new(name).strong()).min_size(vec2(BUTTON_WIDTH, 0.0));
                let button = if enabled && anyway {
                    // Sent anyway: look different from a request the state allows.
                    button.stroke(egui::Stroke::new(1.0, ui.visuals().warn_fg_color))
                } else {
                    button
                };
                let disabled_reason = match view.in_flight {
                    Some(pending) if view.state_allows(client_command) => {
                        format!("Waiting for the reply to {}.", view.command_name(pending))
                    }
                    _ => when.to_owned(),
                };
                let hover = if anyway {
                    format!("{when} Sent anyway, to see what the server says.")
                } else {
                    what.to_owned()
                };
                let response = ui
                    .add_enabled(enabled, button)
                    .on_hover_text(hover)
                    .on_disabled_hover_text(disabled_reason);
                if response.clicked() {
                    command = Some(UiCommand::Client(client_command));
                }
            }
            let mut anyway = view.anyway;
            // TPC-3's server has no state machine to question.
            if !view.tpc3()
                && ui
                    .checkbox(&mut anyway, "Let me send it anyway")
                    .on_hover_text(
                        "Enable every button in every state, to see what a server says to a \
                     request its state machine does not expect (PLAY in INIT, say): \
                     Streamlab's server answers 455 Method Not Valid in This State; the \
                     lab's server answers nothing. The client's own state moves only as \
                     the state machine allows.",
                    )
                    .changed()
            {
                command = Some(UiCommand::SendAnyway(anyway));
            }
            waiting(ui, view);
        });
        ui.horizontal_wrapped(|ui| {
            self.playout(ui, editable);
            ui.separator();
            let has_frame = view.frame.is_some();
            if ui
                .add_enabled(has_frame, Button::new("Save frame"))
                .on_hover_text(
                    "Save the frame on screen as the JPEG that came off the wire \
                     (or as a PNG picture: name it .png).",
                )
                .on_disabled_hover_text("No frame has arrived yet.")
                .clicked()
            {
                command = Some(UiCommand::SaveFrame);
            }
            let recording = view.recording.is_some();
            let label = match view.recording {
                Some(n) => format!("Stop recording ({n} frames)"),
                None => "Record".to_owned(),
            };
            let button = Button::new(label).selected(recording);
            if ui
                .add_enabled(has_frame || recording, button)
                .on_hover_text(
                    "Write the frames to a .Mjpeg file as they arrive, never encoded \
                     again; `streamlab serve` plays it back.",
                )
                .on_disabled_hover_text("No frame has arrived yet.")
                .clicked()
            {
                command = Some(UiCommand::Record);
            }
            if ui
                .button("Fullscreen")
                .on_hover_text("Only the video, on the whole screen (F; Esc leaves).")
                .clicked()
            {
                command = Some(UiCommand::ToggleFullscreen);
            }
            let keys = if view.tpc3() {
                "Keys: Space Go, S Connect, T Stop, F fullscreen"
            } else {
                "Keys: Space play/pause, S SETUP, T TEARDOWN, F fullscreen"
            };
            ui.label(RichText::new(keys).weak());
        });
        command
    }

    /// Pre-buffer and latency: they go with SETUP, so they are locked like
    /// the fields while a session exists.
    fn playout(&mut self, ui: &mut egui::Ui, editable: bool) {
        let fields = &mut self.fields;
        ui.add_enabled_ui(editable, |ui| {
            let label = ui.label("Pre-buffer");
            ui.add(
                DragValue::new(&mut fields.prebuffer)
                    .range(0..=300)
                    .suffix(" frames"),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "Frames fetched ahead after SETUP (PLAY, then PAUSE once they are held), so \
                 that your PLAY starts from the buffer at once. 0 = off.",
            )
            .on_disabled_hover_text(LOCKED);
            ui.separator();
            let mut auto = fields.latency_ms.is_none();
            let mut millis = fields.latency_ms.unwrap_or(AUTO_LATENCY_SHOWN);
            let label = ui.label("Latency");
            let slider = ui
                .add_enabled(
                    !auto,
                    Slider::new(&mut millis, 0..=2000)
                        .suffix(" ms")
                        .step_by(10.0),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "How long frames wait before they are shown on the sender's clock, \
                     so that bursty arrivals play smoothly.",
                )
                .on_disabled_hover_text(
                    "Auto: 0 ms over TCP and on this computer, 200 ms over UDP to another \
                     host (as GStreamer's jitter buffer).",
                );
            let toggled = ui
                .checkbox(&mut auto, "Auto latency")
                .on_hover_text(
                    "Let the player choose: 0 ms over TCP and on this computer, 200 ms \
                     over UDP to another host.",
                )
                .changed();
            if toggled || slider.changed() {
                fields.latency_ms = (!auto).then_some(millis);
            }
        });
    }

    /// A menu of the URLs that reached READY before.
    fn recent_menu(&mut self, ui: &mut egui::Ui, editable: bool) {
        let mut picked = None;
        ui.add_enabled_ui(editable && !self.recent.is_empty(), |ui| {
            ui.menu_button("Recent", |ui| {
                for url in &self.recent {
                    if ui.button(url).clicked() {
                        picked = Some(url.clone());
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text("URLs played before (passwords are never kept).")
            .on_disabled_hover_text(if editable {
                "No URL has been played yet."
            } else {
                LOCKED
            });
        });
        if let Some(url) = picked {
            self.fields.url = url;
            self.fields.url_edited();
        }
    }

    /// Remember `url` as the newest recent URL.
    pub fn remember(&mut self, url: String) {
        self.recent.retain(|u| *u != url);
        self.recent.insert(0, url);
        self.recent.truncate(MAX_RECENT);
    }

    /// The URL field. A password typed or pasted into it is taken out
    /// before it is ever drawn (paste) or on the frame it completes (typing),
    /// and the undo history that held it is dropped.
    fn url_field(&mut self, ui: &mut egui::Ui, editable: bool) {
        let id = Id::unique("connection-url");
        let fields = &mut self.fields;
        if ui.memory(|m| m.has_focus(id)) {
            ui.input_mut(|input| {
                for event in &mut input.events {
                    if let egui::Event::Paste(text) = event
                        && let Some(masked) = mask_password(text)
                    {
                        *text = masked.text;
                        fields.password = Some(masked.password);
                    }
                }
            });
        }
        room_for(ui, text_width(ui, "URL") + URL_WIDTH + 16.0);
        let label = ui.label("URL");
        let response = ui
            .add_enabled(
                editable,
                TextEdit::singleline(&mut fields.url)
                    .id(id)
                    .hint_text("rtsp://[user@]host[:port]/path")
                    .desired_width(URL_WIDTH),
            )
            .labelled_by(label.id)
            .on_hover_text(format!(
                "Paste a camera's or a server's rtsp:// URL, or type one; the lab's \
                 fields follow it, and it follows them. A password in it is kept \
                 apart and shown as {PASSWORD_MASK}."
            ))
            .on_disabled_hover_text(LOCKED);
        if !response.changed() {
            return;
        }
        let Some(taken) = fields.url_edited() else {
            return;
        };
        if let Some(mut state) = TextEdit::load_state(ui.ctx(), id) {
            let removed = taken.len();
            let moved = |c: CCursor| {
                let at = c.index.0;
                let at = if at >= taken.end {
                    at - removed + PASSWORD_MASK.len()
                } else if at > taken.start {
                    taken.start + PASSWORD_MASK.len()
                } else {
                    at
                };
                CCursor::new(at)
            };
            let range = state.cursor.char_range().map(|r| CCursorRange {
                primary: moved(r.primary),
                secondary: moved(r.secondary),
                h_pos: None,
            });
            state.cursor.set_char_range(range);
            state.clear_undoer();
            state.store(ui.ctx(), id);
        }
    }

    /// Dialect and transport, as rows of selectable names.
    fn choices(&mut self, ui: &mut egui::Ui, editable: bool) {
        let fields = &mut self.fields;
        let width = names_width(ui, &["Dialect", "Auto", "Standard", "Lab", "TPC-3"]);
        room_for(ui, width);
        ui.label("Dialect");
        for (choice, name, what) in DIALECTS {
            ui.add_enabled_ui(editable, |ui| {
                ui.selectable_value(&mut fields.dialect, choice, name)
                    .on_hover_text(what)
                    .on_disabled_hover_text(LOCKED);
            });
        }
        ui.separator();
        let width = names_width(ui, &["Transport", "UDP", "TCP"]);
        room_for(ui, width);
        ui.label("Transport");
        let lab = matches!(fields.dialect, DialectChoice::Lab | DialectChoice::Tpc3);
        for (choice, name, what) in TRANSPORTS {
            ui.add_enabled_ui(editable && !lab, |ui| {
                let locked = if lab {
                    "The lab's dialect and TPC-3 always send RTP over UDP."
                } else {
                    LOCKED
                };
                ui.selectable_value(&mut fields.transport, choice, name)
                    .on_hover_text(what)
                    .on_disabled_hover_text(locked);
            });
        }
    }
}

impl PlayerView {
    /// What the window calls `command`: its request's name, or in TPC-3
    /// its button's.
    pub fn command_name(&self, command: ClientCommand) -> &'static str {
        if self.tpc3() {
            match command {
                ClientCommand::Setup => return "Connect",
                ClientCommand::Play => return "Go",
                ClientCommand::Teardown | ClientCommand::Shutdown => return "Stop",
                _ => {}
            }
        }
        command_name(command)
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
        ClientCommand::Force(f) => command_name(f.command()),
    }
}

/// While a request is in flight: what is awaited and, once it takes long
/// enough to notice, the built-in server's progress bar, or for other
/// servers (which tell no progress) a spinner and what they may be doing.
fn waiting(ui: &mut egui::Ui, view: &PlayerView) {
    let Some(pending) = view.in_flight else {
        return;
    };
    let name = view.command_name(pending);
    let slow = view
        .waiting_since
        .is_some_and(|t| t.elapsed() >= SLOW_REPLY);
    if !slow {
        ui.label(
            RichText::new(format!("waiting for the reply to {name}"))
                .italics()
                .weak(),
        );
        ui.ctx().request_repaint_after(SLOW_REPLY);
        return;
    }
    // The built-in server says how far it has got; others say nothing.
    if let Some(server) = view.server.as_ref().filter(|s| s.ours)
        && let Some(p) = server.preparing
    {
        super::serve::preparing_bar(ui, &server.file_name, p, 260.0);
        ui.label(
            RichText::new(format!("waiting for the reply to {name}"))
                .italics()
                .weak(),
        );
        return;
    }
    ui.spinner();
    let why = match pending {
        ClientCommand::Setup => {
            " (the server reads through a large file to learn its length before it answers)"
        }
        ClientCommand::Play | ClientCommand::PlayFrom { .. } => {
            " (the server may be re-encoding frames ahead of the playhead)"
        }
        _ => "",
    };
    ui.label(
        RichText::new(format!("waiting for the reply to {name}{why}"))
            .italics()
            .weak(),
    );
}

/// A text field tied to its visible label, so screen readers and the UI
/// tests find it by that label. Returns whether the text changed.
fn labelled_field(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    width: f32,
    enabled: bool,
) -> bool {
    // The field's frame adds its margins to the text's width.
    room_for(ui, text_width(ui, label) + width + 16.0);
    let label = ui.label(label);
    ui.add_enabled(enabled, TextEdit::singleline(value).desired_width(width))
        .labelled_by(label.id)
        .on_disabled_hover_text(LOCKED)
        .changed()
}

/// Start a new row unless `width` more fits on this one, so that a label
/// and its field, or a group of buttons, wrap together.
fn room_for(ui: &mut egui::Ui, width: f32) {
    if ui.available_size_before_wrap().x < width {
        ui.end_row();
    }
}

/// How wide a label and the selectable names after it are.
fn names_width(ui: &egui::Ui, names: &[&str]) -> f32 {
    let spacing = ui.spacing();
    names
        .iter()
        .map(|n| text_width(ui, n) + 2.0 * spacing.button_padding.x + spacing.item_spacing.x)
        .sum()
}

/// How wide `text` is in the body font.
fn text_width(ui: &egui::Ui, text: &str) -> f32 {
    let font = egui::TextStyle::Body.resolve(ui.style());
    ui.painter()
        .layout_no_wrap(text.to_owned(), font, egui::Color32::PLACEHOLDER)
        .size()
        .x
}
