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
//!
//! It also does what a player is expected to: keys (Space, S, T, F, Esc),
//! full screen, saving the shown frame, a title naming what plays, and
//! settings remembered between runs (never a password).

mod analysis;
mod auth;
mod banner;
mod check;
mod connection;
mod controls;
mod diagram;
mod history;
mod icon;
mod inspector;
mod link;
mod record;
mod save_frame;
mod seek;
mod serve;
mod settings;
mod status;
mod video;
mod view;
mod wire_log;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::client::Forced;
use crate::net::client::{
    ClientCommand, ClientConfig, ClientError, ClientEvent, Credentials, DecodedFrame,
};
use crate::protocol::State;
use crate::protocol::reconnect::Backoff;
use crate::server_embedded::EmbeddedServer;

pub use check::{CheckCommand, CheckKind, CheckPanel};
pub use connection::{ConnectionFields, DEFAULT_RTP_PORT};
pub use icon::rgba as icon_rgba;
pub use inspector::header_text;
pub use settings::{SETTINGS_KEY, SavedTarget, Settings};
pub use view::{
    AuthNeeded, FrameInfo, PlayerView, ServerInfo, Step, UiCommand, WireEntry, WireFocus,
};

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
            .with_icon(Arc::new(icon::icon_data()))
            .with_drag_and_drop(true),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "Streamlab",
        native,
        Box::new(|cc| {
            let settings = cc.storage.and_then(Settings::load);
            Ok(Box::new(PlayerApp::new_with_settings(
                &cc.egui_ctx,
                options,
                settings,
            )))
        }),
    )
}

/// The player window.
/// The views of the bottom panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BottomTab {
    WireLog,
    Analysis,
    Inspector,
    CheckServer,
    CheckClient,
}

impl BottomTab {
    fn name(self) -> &'static str {
        match self {
            BottomTab::WireLog => "Wire log",
            BottomTab::Analysis => "Analysis",
            BottomTab::Inspector => "RTP inspector",
            BottomTab::CheckServer => "Check a server",
            BottomTab::CheckClient => "Check a client",
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
    /// `streamlab check server` and `check client` in the window.
    check_server: CheckPanel,
    check_client: CheckPanel,
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
    /// The frame on screen, for "Save frame".
    shown_frame: Option<DecodedFrame>,
    saver: save_frame::FrameSaver,
    /// The Record toggle's recording.
    recording: record::Recording,
    /// Trying the server again after it went away, by itself.
    reconnect: Backoff,
    /// The last session ended without a TEARDOWN of ours.
    session_dropped: bool,
    /// Only the video, on the whole screen.
    fullscreen: bool,
    /// The state machine panel is shown.
    state_machine_shown: bool,
    /// The title last given to the window.
    title: String,
}

impl PlayerApp {
    /// The window's app: starts the embedded server `options.serve` asks for.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> PlayerApp {
        PlayerApp::new_with_settings(ctx, options, None)
    }

    /// [`Self::new`] with the settings of an earlier run. Where it connects
    /// comes from `options` first (the command line), then the settings, then
    /// the embedded server.
    pub fn new_with_settings(
        ctx: &egui::Context,
        options: AppOptions,
        settings: Option<Settings>,
    ) -> PlayerApp {
        let mut app = PlayerApp::with_link(Link::live(ctx));
        app.serve_bar.cameras = crate::media::camera::list_cameras();
        // A target kept from last time wins over the sample (whose port
        // changes every run); a file named on the command line does not.
        let keep_target = settings.as_ref().is_some_and(|s| s.target.is_some());
        if let Some(settings) = settings {
            app.restore(settings);
        }
        match &options.serve {
            Serve::Sample => match EmbeddedServer::start_sample() {
                Ok(server) => app.adopt_server(server, !keep_target),
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
        PlayerApp::new_detached_with_settings(options, None)
    }

    /// [`Self::new_detached`] with the settings of an earlier run.
    pub fn new_detached_with_settings(
        options: AppOptions,
        settings: Option<Settings>,
    ) -> PlayerApp {
        let mut app = PlayerApp::with_link(Link::detached());
        if let Some(settings) = settings {
            app.restore(settings);
        }
        app.start(options);
        app
    }

    /// What is remembered for the next run.
    pub fn settings(&self) -> Settings {
        Settings {
            recent: self.controls.recent.clone(),
            state_machine_shown: self.state_machine_shown,
            ..Settings::of_fields(&self.controls.fields, self.points_at_embedded())
        }
    }

    fn restore(&mut self, settings: Settings) {
        settings.apply_to(&mut self.controls.fields);
        self.controls.recent = settings.recent;
        self.controls.recent.truncate(controls::MAX_RECENT);
        self.state_machine_shown = settings.state_machine_shown;
    }

    /// Whether the connection bar points at the embedded server.
    fn points_at_embedded(&self) -> bool {
        let fields = &self.controls.fields;
        self.server.as_ref().is_some_and(|server| {
            fields.host.trim() == "127.0.0.1"
                && fields.rtsp_port.trim() == server.port().to_string()
        })
    }

    /// Whether the video fills the screen alone.
    pub fn is_fullscreen(&self) -> bool {
        self.fullscreen
    }

    /// The window's title: what plays, and its state.
    pub fn title(&self) -> String {
        if self.view.state == State::Init {
            return "Streamlab".to_owned();
        }
        let what = match self.link.engine_config() {
            Some(config) => format!("{} on {}:{}", config.file, config.host, config.rtsp_port),
            None => self.controls.fields.file.clone(),
        };
        if self.view.tpc3() {
            return format!(
                "{what} (TPC-3: {}) - Streamlab",
                self.view.tpc3_phase.name()
            );
        }
        format!("{what} ({}) - Streamlab", self.view.state)
    }

    fn with_link(link: Link) -> PlayerApp {
        PlayerApp {
            view: PlayerView::default(),
            controls: controls::Controls::default(),
            prompt: auth::CredentialsPrompt::default(),
            seek_bar: seek::SeekBar::default(),
            analysis: analysis::AnalysisPanel::default(),
            inspector: inspector::InspectorPanel::default(),
            check_server: CheckPanel::new(CheckKind::Server),
            check_client: CheckPanel::new(CheckKind::Client),
            bottom: BottomTab::WireLog,
            serve_bar: serve::ServeBar::default(),
            video: video::VideoPanel::default(),
            picker: serve::FilePicker::default(),
            link,
            server: None,
            incoming_frame: None,
            autoplay: false,
            shown_frame: None,
            saver: save_frame::FrameSaver::default(),
            recording: record::Recording::default(),
            reconnect: Backoff::default(),
            session_dropped: false,
            fullscreen: false,
            state_machine_shown: true,
            title: String::new(),
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
        let was = (self.view.state, self.view.in_flight);
        let server_news = ServerNews::of(&event);
        // Every frame that arrives, not only those the window shows.
        if let ClientEvent::Frame(f) = &event {
            self.recording.frame(f.jpeg.clone());
        }
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
        let set_up = matches!(
            event,
            ClientEvent::State {
                state: State::Ready,
                ..
            }
        ) && self.view.in_flight == Some(ClientCommand::Setup);
        if let Some(frame) = self.view.apply(event) {
            self.incoming_frame = Some(frame);
        }
        // After the view took the event, so that what is said here stays.
        self.follow_the_server(server_news, was);
        if set_up
            && !self.points_at_embedded()
            && let Some(url) = self.controls.fields.url_to_remember()
        {
            self.controls.remember(url);
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

    /// Record to `path` at once, as the Record toggle does once its file
    /// dialog is answered (for tests and tools that have no dialog).
    pub fn record_to(&mut self, path: PathBuf, framing: crate::media::Framing) {
        match self.recording.start_at(path, framing) {
            record::RecordNews::Failed(e) => self.view.report(e),
            record::RecordNews::Started(s) | record::RecordNews::Notice(s) => {
                self.view.notice = Some(s)
            }
        }
        self.view.recording = self.recording.is_on().then(|| self.recording.frames());
    }

    /// The server went away in a session (its connection closed or reset),
    /// or an attempt to find it again failed: try again, sooner first, and
    /// play on when it is back, without a click.
    fn follow_the_server(&mut self, news: ServerNews, was: (State, Option<ClientCommand>)) {
        let now = Instant::now();
        match news {
            // The engine says INIT first, then why: remember that a
            // session ended without TEARDOWN.
            ServerNews::Init => {
                self.session_dropped =
                    was.0 != State::Init && was.1 != Some(ClientCommand::Teardown);
            }
            ServerNews::Gone if was.0 != State::Init || self.session_dropped => {
                self.session_dropped = false;
                self.reconnect.lost(now);
                self.view.notice = Some(
                    "The server went away; trying again by itself (Dismiss stops).".to_owned(),
                );
            }
            ServerNews::NobodyAt(addr) if self.reconnect.away() => {
                let due = self.reconnect.lost(now);
                self.view.notice = Some(format!(
                    "Nobody answers at {addr} yet; trying again in {:.0} s (Dismiss stops).",
                    due.saturating_duration_since(now).as_secs_f64().ceil()
                ));
            }
            ServerNews::Playing if self.reconnect.away() => {
                let took = self.reconnect.playing();
                self.view.reconnects += 1;
                self.view.notice = Some(format!(
                    "The server is back: playing again (after {took} attempt{}).",
                    if took == 1 { "" } else { "s" }
                ));
            }
            _ => {}
        }
    }

    /// An attempt due now: SETUP with a new connection, PLAY once READY.
    fn reconnect_if_due(&mut self, ctx: &egui::Context) {
        let Some(due) = self.reconnect.due() else {
            return;
        };
        let now = Instant::now();
        if now < due {
            ctx.request_repaint_after(due - now);
            return;
        }
        if self.view.state != State::Init || self.view.in_flight.is_some() {
            return;
        }
        self.reconnect.attempt();
        self.autoplay = true;
        self.send_client(ClientCommand::Setup);
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
        // The bar is locked while a session exists: its choice is the
        // session's.
        self.view.dialect = self.controls.fields.dialect;
        for event in self.link.queued_events() {
            self.handle_event(event);
        }
        if let (Some(server), Some(info)) = (&self.server, &mut self.view.server) {
            info.preparing = server.preparing();
            info.ours = self
                .link
                .engine_config()
                .is_some_and(|c| c.rtsp_port == server.port() && is_loopback(&c.host));
        }
        if let Some(saved) = self.saver.poll() {
            match saved {
                save_frame::Saved::To(path) => {
                    self.view.notice = Some(format!("Saved the frame to {}.", path.display()));
                }
                save_frame::Saved::Cancelled => {
                    self.view.notice = Some(
                        "The frame was not saved: no file was chosen (or no file dialog \
                         could be shown)."
                            .to_owned(),
                    );
                }
                save_frame::Saved::Failed(e) => {
                    self.view.report(format!("Cannot save the frame: {e}."))
                }
            }
        }
        if let Some(news) = self.recording.poll() {
            match news {
                record::RecordNews::Started(s) | record::RecordNews::Notice(s) => {
                    self.view.notice = Some(s)
                }
                record::RecordNews::Failed(e) => self.view.report(e),
            }
        }
        self.view.recording = self.recording.is_on().then(|| self.recording.frames());
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
        self.reconnect_if_due(&ctx);
        if let Some(frame) = self.incoming_frame.take() {
            match self.video.upload(&ctx, &frame) {
                Ok(()) => self.shown_frame = Some(frame),
                Err(e) => self.view.report(format!("Cannot show the video: {e}.")),
            }
        }

        let mut commands = self.keys(&ctx);
        if self.fullscreen {
            egui::CentralPanel::default()
                .frame(egui::Frame::new().fill(egui::Color32::BLACK))
                .show(ui, |ui| {
                    if self.video.ui(ui, &self.view).double_clicked() {
                        commands.push(UiCommand::ToggleFullscreen);
                    }
                });
            for command in commands {
                self.apply(&ctx, command);
            }
            self.update_title(&ctx);
            return;
        }
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
                    ui.toggle_value(&mut self.state_machine_shown, "State machine")
                        .on_hover_text("Show or hide the state machine panel.");
                    status::ui(ui, &self.view);
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
                        BottomTab::CheckServer,
                        BottomTab::CheckClient,
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
                    BottomTab::CheckServer => {
                        if let Some(c) = self.check_server.ui(ui) {
                            self.check_server.start(c);
                        }
                    }
                    BottomTab::CheckClient => {
                        if let Some(c) = self.check_client.ui(ui) {
                            self.check_client.start(c);
                        }
                    }
                }
            });
        // After the wire log: the log runs under it, the full width.
        if self.state_machine_shown {
            egui::Panel::left("state-machine")
                .resizable(true)
                .default_size(diagram::min_width() + 16.0)
                .min_size(280.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        ui.strong(diagram::title(&self.view));
                        commands.extend(diagram::ui(ui, &self.view));
                    });
                });
        }
        if self.view.seek_bar_shown() {
            egui::Panel::bottom("seek-bar")
                .show_separator_line(false)
                .show(ui, |ui| {
                    commands.extend(self.seek_bar.ui(ui, &self.view));
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if self.video.ui(ui, &self.view).double_clicked() {
                commands.push(UiCommand::ToggleFullscreen);
            }
        });

        let dropped = ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        if let Some(path) = dropped {
            commands.push(UiCommand::ServeFile(path));
        }
        paint_drop_hint(&ctx);

        for command in commands {
            self.apply(&ctx, command);
        }
        self.update_title(&ctx);
    }

    /// The player's keys, unless a text field has the keyboard: Space
    /// PLAY or PAUSE, S SETUP, T TEARDOWN, F full screen, Esc leaves it.
    fn keys(&mut self, ctx: &egui::Context) -> Vec<UiCommand> {
        if ctx.text_edit_focused() {
            return Vec::new();
        }
        let none = egui::Modifiers::NONE;
        let (space, s, t, f, esc) = ctx.input_mut(|i| {
            (
                i.consume_key(none, egui::Key::Space),
                i.consume_key(none, egui::Key::S),
                i.consume_key(none, egui::Key::T),
                i.consume_key(none, egui::Key::F),
                i.consume_key(none, egui::Key::Escape),
            )
        });
        let mut out = Vec::new();
        // TPC-3 has no pause: Space is Go only.
        if space && !(self.view.tpc3() && self.view.state == State::Playing) {
            let command = if self.view.state == State::Playing {
                ClientCommand::Pause
            } else {
                ClientCommand::Play
            };
            out.push(UiCommand::Client(command));
        }
        if s {
            out.push(UiCommand::Client(ClientCommand::Setup));
        }
        if t {
            out.push(UiCommand::Client(ClientCommand::Teardown));
        }
        if f || (esc && self.fullscreen) {
            out.push(UiCommand::ToggleFullscreen);
        }
        out
    }

    /// Name what plays in the title bar (only when it changes: each change
    /// is a message to the window system).
    fn update_title(&mut self, ctx: &egui::Context) {
        let title = self.title();
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    fn apply(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::Client(command) => {
                // The user's word wins over trying again by itself.
                self.reconnect = Backoff::default();
                self.send_client(command)
            }
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
            UiCommand::ServePattern => self.serve_pattern(),
            UiCommand::ServeCamera { device, size, fps } => self.serve_camera(&device, &size, fps),
            UiCommand::Dismiss => {
                self.reconnect = Backoff::default();
                self.view.dismiss();
            }
            UiCommand::ClearWireLog => self.view.wire.clear(),
            UiCommand::Seek { millis } => self.seek(millis),
            UiCommand::Authenticate => self.authenticate(),
            UiCommand::SendAnyway(on) => self.view.anyway = on,
            UiCommand::ShowWire(ids) => {
                self.view.wire_focus = Some(view::WireFocus { ids, scroll: true });
                // The messages are in the wire log: show it.
                self.bottom = BottomTab::WireLog;
            }
            UiCommand::WireScrolled => {
                if let Some(focus) = &mut self.view.wire_focus {
                    focus.scroll = false;
                }
            }
            UiCommand::SaveFrame => {
                let Some(frame) = self.shown_frame.clone() else {
                    return;
                };
                let name = format!("frame-{:06}.jpg", frame.number);
                if let Err(e) = self.saver.save(ctx, frame, name) {
                    self.view
                        .report(format!("Cannot open the file dialog: {e}"));
                }
            }
            UiCommand::Record => {
                let (name, bytes) = match &self.shown_frame {
                    Some(f) => {
                        let file = std::path::Path::new(&self.controls.fields.file);
                        let stem = file
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("stream");
                        (format!("recording-{stem}.Mjpeg"), f.jpeg.len())
                    }
                    None => ("recording.Mjpeg".to_owned(), 0),
                };
                self.recording.toggle(ctx, name, bytes);
            }
            UiCommand::ToggleFullscreen => {
                self.fullscreen = !self.fullscreen;
                ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(self.fullscreen));
            }
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
        // Allowed only by "Let me send it anyway": the engine sends it
        // whatever its state, and keeps its state right.
        let command = match Forced::of(command) {
            Some(forced) if !self.view.machine_allows(command) => ClientCommand::Force(forced),
            _ => command,
        };
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
        // SETUP starts an engine; so does a request sent anyway in INIT,
        // where there may be none yet.
        let starts_engine = command == ClientCommand::Setup
            || (matches!(command, ClientCommand::Force(_)) && self.view.state == State::Init);
        let config = if starts_engine {
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
        self.view.waiting_since = Some(Instant::now());
        // New messages are what matters now: the log follows them again.
        self.view.wire_focus = None;
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
        let what = path.display().to_string();
        self.serve_with(path.clone(), &what, || EmbeddedServer::start_file(&path));
    }

    /// Serve the live test pattern, in place of what the built-in server
    /// served, and point the connection bar at it.
    fn serve_pattern(&mut self) {
        self.serve_with(
            PathBuf::from("pattern"),
            "the test pattern",
            EmbeddedServer::start_pattern,
        );
    }

    /// Serve the camera at `device`, as [`Self::serve_pattern`] does the
    /// pattern.
    fn serve_camera(&mut self, device: &str, size: &str, fps: u32) {
        self.serve_with(
            PathBuf::from(device),
            &format!("the camera {device}"),
            || EmbeddedServer::start_camera(device, size, fps),
        );
    }

    /// Replace the built-in server with what `start` makes (`what`, for
    /// the error) and point the connection bar at it.
    fn serve_with(
        &mut self,
        key: PathBuf,
        what: &str,
        start: impl FnOnce() -> Result<EmbeddedServer, crate::net::server::ServerError>,
    ) {
        if !self.link.replace_server(key, &mut self.server) {
            return;
        }
        self.view.reset_session();
        self.video.clear();
        self.incoming_frame = None;
        match start() {
            Ok(server) => {
                self.view.dismiss();
                self.adopt_server(server, true);
            }
            Err(e) => self.view.report(format!("Cannot serve {what}: {e}")),
        }
    }

    /// Keep `server` and, if `point`, point the connection bar at it.
    fn adopt_server(&mut self, server: EmbeddedServer, point: bool) {
        let fields = &mut self.controls.fields;
        if point {
            fields.point_at("127.0.0.1", server.port(), server.file_name());
        }
        // The RTP port stays what the user chose: it is theirs, not the server's.
        if fields.rtp_port.trim().is_empty() {
            fields.rtp_port = DEFAULT_RTP_PORT.to_string();
        }
        self.view.server = Some(ServerInfo {
            url: server.url(),
            file_name: server.file_name().to_owned(),
            source: server.source().map(Path::to_path_buf),
            live: server.live(),
            preparing: server.preparing(),
            ours: false,
        });
        self.serve_bar.path = server
            .source()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // Out of the box, "Check a server" checks the window's own.
        if !self.check_server.is_running() {
            self.check_server.suggest(server.port(), server.file_name());
        }
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

    /// Settings for the next run; egui's own memory (panel sizes) is kept
    /// by eframe beside them.
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings().store(storage);
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

/// Whether `host` names this machine (as the embedded server's URL does).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// What an engine event says of the server being there, for reconnecting.
enum ServerNews {
    Init,
    Playing,
    Gone,
    NobodyAt(String),
    Other,
}

impl ServerNews {
    fn of(event: &ClientEvent) -> ServerNews {
        match event {
            ClientEvent::State { state, .. } => match state {
                State::Init => ServerNews::Init,
                State::Playing => ServerNews::Playing,
                State::Ready => ServerNews::Other,
            },
            ClientEvent::Error(ClientError::ServerGone) => ServerNews::Gone,
            ClientEvent::Error(ClientError::Connect { addr, .. }) => {
                ServerNews::NobodyAt(addr.to_string())
            }
            _ => ServerNews::Other,
        }
    }
}
