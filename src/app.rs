//! The egui player window: the connection bar (a URL or the lab client's
//! fields) and buttons, the video, the RTSP state and counters, the wire
//! log, and an embedded server so that one click shows video with nothing
//! else running.
//!
//! [`PlayerApp`] owns the handles (client engine, embedded server, file
//! dialog worker) and a plain [`PlayerView`] that engine events update in
//! `logic()`. Each panel (one file under `app/`) draws from the view and
//! returns an optional [`UiCommand`]; the app applies commands after drawing,
//! so no panel touches a socket or a thread.

mod analysis;
mod auth;
mod banner;
mod connection;
mod controls;
mod diagram;
mod history;
mod inspector;
mod link;
mod seek;
mod serve;
mod status;
mod video;
mod view;
mod wire_log;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::net::client::{
    ClientCommand, ClientConfig, ClientError, ClientEvent, Credentials, DecodedFrame,
};
use crate::protocol::State;
use crate::server_embedded::EmbeddedServer;

pub use connection::{ConnectionFields, DEFAULT_RTP_PORT};
pub use view::{AuthNeeded, FrameInfo, PlayerView, ServerInfo, UiCommand, WireEntry};

use link::{EXIT_TIMEOUT, Link};

/// What the window does when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOptions {
    /// What the embedded server serves.
    pub serve: Serve,
    /// Fill the connection bar with this instead of the embedded server.
    pub connect: Option<ClientConfig>,
    /// Press SETUP, then PLAY once READY, without waiting for the user.
    pub autoplay: bool,
}

/// What the embedded server serves when the window opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// The bundled sample clip.
    Sample,
    /// A file the user named.
    File(PathBuf),
    /// No embedded server.
    Nothing,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            serve: Serve::Sample,
            connect: None,
            autoplay: false,
        }
    }
}

/// Open the player window; returns when it is closed.
pub fn run_window(options: AppOptions) -> Result<(), eframe::Error> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Streamlab")
            .with_app_id("streamlab")
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "Streamlab",
        native,
        Box::new(|cc| Ok(Box::new(PlayerApp::new(&cc.egui_ctx, options)))),
    )
}

/// The player window.
/// The views of the bottom panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BottomTab {
    WireLog,
    Analysis,
    Inspector,
}

impl BottomTab {
    fn name(self) -> &'static str {
        match self {
            BottomTab::WireLog => "Wire log",
            BottomTab::Analysis => "Analysis",
            BottomTab::Inspector => "RTP inspector",
        }
    }
}

pub struct PlayerApp {
    view: PlayerView,
    controls: controls::Controls,
    prompt: auth::CredentialsPrompt,
    seek_bar: seek::SeekBar,
    serve_bar: serve::ServeBar,
    analysis: analysis::AnalysisPanel,
    inspector: inspector::InspectorPanel,
    /// Which view the bottom panel shows.
    bottom: BottomTab,
    video: video::VideoPanel,
    picker: serve::FilePicker,
    link: Link,
    server: Option<EmbeddedServer>,
    /// The newest frame not yet uploaded; older ones are skipped, since only
    /// the newest is ever shown.
    incoming_frame: Option<DecodedFrame>,
    /// PLAY is to be pressed once SETUP succeeds.
    autoplay: bool,
}

impl PlayerApp {
    /// The window's app: starts the embedded server `options.serve` asks for.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> PlayerApp {
        let mut app = PlayerApp::with_link(Link::live(ctx));
        match &options.serve {
            Serve::Sample => match EmbeddedServer::start_sample() {
                Ok(server) => app.adopt_server(server),
                Err(e) => app.view.report(format!(
                    "Cannot start the built-in server for the sample clip: {e}"
                )),
            },
            Serve::File(path) => app.serve_file(path.clone()),
            Serve::Nothing => {}
        }
        app.start(options);
        app
    }

    /// An app with no network at all, for UI tests: `options.serve` is
    /// ignored, and commands are recorded (see [`Self::take_sent_commands`])
    /// instead of reaching an engine. Feed it events with
    /// [`Self::handle_event`].
    pub fn new_detached(options: AppOptions) -> PlayerApp {
        let mut app = PlayerApp::with_link(Link::detached());
        app.start(options);
        app
    }

    fn with_link(link: Link) -> PlayerApp {
        PlayerApp {
            view: PlayerView::default(),
            controls: controls::Controls::default(),
            prompt: auth::CredentialsPrompt::default(),
            seek_bar: seek::SeekBar::default(),
            analysis: analysis::AnalysisPanel::default(),
            inspector: inspector::InspectorPanel::default(),
            bottom: BottomTab::WireLog,
            serve_bar: serve::ServeBar::default(),
            video: video::VideoPanel::default(),
            picker: serve::FilePicker::default(),
            link,
            server: None,
            incoming_frame: None,
            autoplay: false,
        }
    }

    /// The part of construction both kinds of app share.
    fn start(&mut self, options: AppOptions) {
        if let Some(config) = &options.connect {
            self.controls.fields = ConnectionFields::from_config(config);
        }
        if options.autoplay {
            self.autoplay = true;
            self.send_client(ClientCommand::Setup);
        }
    }

    /// What the window shows.
    pub fn view(&self) -> &PlayerView {
        &self.view
    }

    /// The connection bar's fields, as typed.
    pub fn fields(&self) -> &ConnectionFields {
        &self.controls.fields
    }

    /// What the current engine was started with (detached apps: what the
    /// last SETUP would have started one with).
    pub fn engine_config(&self) -> Option<&ClientConfig> {
        self.link.engine_config()
    }

    /// Take one engine event, as `logic()` does for each queued event.
    pub fn handle_event(&mut self, event: ClientEvent) {
        if let ClientEvent::Stats(stats) = &event {
            self.view
                .history
                .push_stats(std::time::Instant::now(), stats);
        }
        let stale = matches!(
            &event,
            ClientEvent::Error(ClientError::Connect { .. } | ClientError::ServerGone)
        );
        let stopped = matches!(event, ClientEvent::Stopped);
        let auth = match &event {
            ClientEvent::Error(ClientError::Auth { had_credentials }) => Some(*had_credentials),
            _ => None,
        };
        // Autoplay waits through the credentials prompt.
        let failed = matches!(event, ClientEvent::Error(_)) && auth.is_none();
        // A prompt already open keeps what is being typed into it (a
        // refused keep-alive may repeat the request).
        let prompt_open = self.view.auth_needed.is_some();
        if let Some(frame) = self.view.apply(event) {
            self.incoming_frame = Some(frame);
        }
        if stopped {
            self.link.engine_stopped();
        } else if stale {
            self.link.engine_lost_connection();
        }
        if failed {
            self.autoplay = false;
        }
        if let Some(refused) = auth
            && (refused || !prompt_open)
        {
            self.prompt.open(self.controls.fields.user.as_deref());
        }
        if self.autoplay && self.view.state == State::Ready && self.view.in_flight.is_none() {
            self.autoplay = false;
            self.send_client(ClientCommand::Play);
        }
        // A seek asked for while another request was on its way.
        if self.view.state == State::Playing
            && self.view.in_flight.is_none()
            && let Some(millis) = self.view.pending_seek
        {
            self.send_client(ClientCommand::PlayFrom { millis });
        }
    }

    /// Detached apps: the credentials the prompt gave the engine in a
    /// session since the last call.
    pub fn take_sent_credentials(&mut self) -> Vec<Credentials> {
        self.link.take_sent_credentials()
    }

    /// Detached apps: the client commands the UI sent since the last call.
    pub fn take_sent_commands(&mut self) -> Vec<ClientCommand> {
        self.link.take_sent_commands()
    }

    /// Detached apps: the files the UI asked to serve since the last call.
    pub fn take_serve_requests(&mut self) -> Vec<PathBuf> {
        self.link.take_serve_requests()
    }

    /// Block up to `timeout` for the engine's next event, then take it and
    /// every other queued one. Returns whether any arrived. For tests and
    /// tools that drive the app without a window; the window never blocks.
    pub fn wait_for_event(&mut self, timeout: Duration) -> bool {
        let events = self.link.wait_for_events(timeout);
        let any = !events.is_empty();
        for event in events {
            self.handle_event(event);
        }
        any
    }

    /// Take queued engine events and the file dialog's answer. Runs each
    /// frame before drawing (eframe's `logic()`).
    pub fn pump(&mut self) {
        for event in self.link.queued_events() {
            self.handle_event(event);
        }
        if let Some(picked) = self.picker.poll() {
            self.view.picking = false;
            match picked {
                Some(path) => self.serve_file(path),
                None => {
                    self.view.notice = Some(
                        "No file picked. If no dialog appeared, type the path next to \
                         \"Serve\" or drop the file on the window."
                            .to_owned(),
                    );
                }
            }
        }
    }

    /// One whole frame inside `ui`: [`Self::pump`], then draw and apply
    /// what the user asked for. Handy where there is no eframe (UI tests).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.pump();
        self.draw(ui);
    }

    /// Draw every panel, then apply the commands they returned.
    fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if let Some(frame) = self.incoming_frame.take()
            && let Err(e) = self.video.upload(&ctx, &frame)
        {
            self.view.report(format!("Cannot show the video: {e}."));
        }

        let mut commands = Vec::new();
        egui::Panel::top("connection").show(ui, |ui| {
            ui.add_space(4.0);
            commands.extend(self.controls.ui(ui, &self.view));
            commands.extend(self.prompt.ui(ui, &self.view));
            commands.extend(self.serve_bar.ui(ui, &self.view));
            commands.extend(banner::ui(ui, &self.view));
            ui.add_space(2.0);
        });
        egui::Panel::right("status")
            .default_size(270.0)
            .min_size(240.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    status::ui(ui, &self.view);
                    ui.add_space(10.0);
                    ui.separator();
                    diagram::ui(ui, self.view.state);
                });
            });
        egui::Panel::bottom("wire-log")
            .resizable(true)
            .default_size(260.0)
            .min_size(80.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for tab in [
                        BottomTab::WireLog,
                        BottomTab::Analysis,
                        BottomTab::Inspector,
                    ] {
                        ui.selectable_value(&mut self.bottom, tab, tab.name());
                    }
                });
                ui.separator();
                match self.bottom {
                    BottomTab::WireLog => commands.extend(wire_log::ui(ui, &self.view)),
                    BottomTab::Analysis => {
                        let mut history = std::mem::take(&mut self.view.history);
                        self.analysis.ui(ui, &self.view, &mut history);
                        self.view.history = history;
                    }
                    BottomTab::Inspector => self.inspector.ui(ui, &mut self.view.history),
                }
            });
        if self.view.seek_bar_shown() {
            egui::Panel::bottom("seek-bar")
                .show_separator_line(false)
                .show(ui, |ui| {
                    commands.extend(self.seek_bar.ui(ui, &self.view));
                });
        }
        egui::CentralPanel::default().show(ui, |ui| self.video.ui(ui, &self.view));

        let dropped = ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        if let Some(path) = dropped {
            commands.push(UiCommand::ServeFile(path));
        }
        paint_drop_hint(&ctx);

        for command in commands {
            self.apply(&ctx, command);
        }
    }

    fn apply(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::Client(command) => self.send_client(command),
            UiCommand::PickFile => {
                if self.view.picking {
                    return;
                }
                match self.picker.open(ctx) {
                    Ok(()) => self.view.picking = true,
                    Err(e) => self
                        .view
                        .report(format!("Cannot open the file dialog: {e}")),
                }
            }
            UiCommand::ServeFile(path) => self.serve_file(path),
            UiCommand::Dismiss => self.view.dismiss(),
            UiCommand::ClearWireLog => self.view.wire.clear(),
            UiCommand::Seek { millis } => self.seek(millis),
            UiCommand::Authenticate => self.authenticate(),
            UiCommand::CancelAuth => {
                self.prompt.close();
                self.view.auth_needed = None;
                self.autoplay = false;
            }
        }
    }

    /// Use the credentials typed into the prompt. In INIT, SETUP again
    /// with them (a new engine, since its configuration changed). In a
    /// session, the engine sends the refused request again with them on
    /// the same connection, and keeps them for the requests after it.
    fn authenticate(&mut self) {
        let in_session = self.view.state != State::Init;
        if !in_session && !self.view.can_send(ClientCommand::Setup) {
            return;
        }
        let (user, password) = self.prompt.take();
        // The next SETUP (after TEARDOWN) uses them too.
        self.controls
            .fields
            .set_credentials(&user, password.clone());
        let need = self.view.auth_needed.take();
        if !in_session {
            self.send_client(ClientCommand::Setup);
            return;
        }
        self.link.credentials(Credentials { user, password });
        // The refused request is on its way again.
        self.view.in_flight = need.and_then(|n| n.retry);
    }

    /// The position bar asked for `millis`: PLAY from there at once while
    /// PLAYING; in READY (paused), the next PLAY starts there, as a paused
    /// player's position bar does. A seek while another request is on its
    /// way goes when its reply comes (the newest seek wins).
    fn seek(&mut self, millis: u64) {
        if !self.view.seek_bar_shown() {
            return;
        }
        let millis = millis.min(self.view.timeline.last_seek_ms());
        if self.view.state == State::Playing && self.view.in_flight.is_none() {
            self.send_client(ClientCommand::PlayFrom { millis });
        } else {
            self.view.pending_seek = Some(millis);
        }
    }

    /// Send a request, starting an engine first when SETUP needs one.
    fn send_client(&mut self, command: ClientCommand) {
        // The buttons are already disabled; this also guards autoplay and
        // clicks that raced a state change.
        if !self.view.can_send(command) {
            return;
        }
        // PLAY after a seek in READY starts where the bar was put.
        let command = match command {
            ClientCommand::Play if self.view.seek_bar_shown() => self
                .view
                .pending_seek
                .take()
                .map_or(command, |millis| ClientCommand::PlayFrom { millis }),
            ClientCommand::PlayFrom { .. } => {
                self.view.pending_seek = None;
                command
            }
            _ => command,
        };
        let config = if command == ClientCommand::Setup {
            match self.controls.fields.to_config() {
                Ok(config) => Some(config),
                Err(e) => {
                    self.view.report(e);
                    return;
                }
            }
        } else {
            None
        };
        self.link.send(command, config);
        self.view.in_flight = Some(command);
    }

    /// Replace the embedded server with one serving `path`.
    fn serve_file(&mut self, path: PathBuf) {
        if !path.is_file() {
            self.view.report(format!(
                "Cannot serve {}: there is no such file.",
                path.display()
            ));
            return;
        }
        if !self.link.replace_server(path.clone(), &mut self.server) {
            return;
        }
        self.view.reset_session();
        self.video.clear();
        self.incoming_frame = None;
        match EmbeddedServer::start_file(&path) {
            Ok(server) => {
                self.view.dismiss();
                self.adopt_server(server);
            }
            Err(e) => self
                .view
                .report(format!("Cannot serve {}: {e}", path.display())),
        }
    }

    /// Keep `server` and point the connection bar at it.
    fn adopt_server(&mut self, server: EmbeddedServer) {
        let fields = &mut self.controls.fields;
        fields.point_at("127.0.0.1", server.port(), server.file_name());
        // The RTP port stays what the user chose: it is theirs, not the server's.
        if fields.rtp_port.trim().is_empty() {
            fields.rtp_port = DEFAULT_RTP_PORT.to_string();
        }
        self.view.server = Some(ServerInfo {
            url: server.url(),
            file_name: server.file_name().to_owned(),
            source: server.source().map(Path::to_path_buf),
        });
        self.serve_bar.path = server
            .source()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.server = Some(server);
    }

    /// End the session (TEARDOWN), the engine and the embedded server, in
    /// that order, waiting up to `timeout` for the engine.
    fn stop_everything(&mut self, timeout: Duration) {
        self.link.shutdown(timeout);
        self.server = None;
    }
}

impl eframe::App for PlayerApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.pump();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.stop_everything(EXIT_TIMEOUT);
    }
}

impl Drop for PlayerApp {
    fn drop(&mut self) {
        // Also when the app ends without a window closing (tests, embedding).
        self.stop_everything(EXIT_TIMEOUT);
    }
}

/// While files are dragged over the window, say what dropping does.
fn paint_drop_hint(ctx: &egui::Context) {
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop-hint"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop to serve this file",
        egui::FontId::proportional(28.0),
        egui::Color32::WHITE,
    );
}
