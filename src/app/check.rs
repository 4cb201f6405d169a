//! The "Check a server" and "Check a client" panels: `streamlab check` in
//! the window. A form (where, which file, which handout), a button that
//! asks the app to start the check on a thread of its own, and what the
//! check says as it goes: the checklist (PASS or FAIL, what was seen,
//! what the handout asks), the first offending packet of a failed RTP
//! check drawn as the RTP inspector draws it, and the wire log with each
//! message's notes beside it. The panel never touches a socket: events
//! come in through [`CheckPanel::handle_event`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Receiver;
use egui::{RichText, ScrollArea};

use super::inspector::header_ui;
use crate::net::check::{CheckEvent, ClientCheckOptions, check_client, check_server};
use crate::protocol::check::server::ServerCheckConfig;
use crate::protocol::check::{CheckDialect, CheckId, Report, WireEntry};

/// Which side of the wire the student's program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Server,
    Client,
}

/// What a check panel asks of the app.
#[derive(Debug, Clone)]
pub enum CheckCommand {
    /// Run a server check with this configuration.
    Server(ServerCheckConfig),
    /// Serve one client and check it.
    Client(ClientCheckOptions),
    /// Stop the running check.
    Stop,
}

/// A check running on its thread, as the panel follows it.
struct Running {
    events: Receiver<CheckEvent>,
    stop: Arc<AtomicBool>,
}

/// One check panel's state: its form and what the last check said.
pub struct CheckPanel {
    kind: CheckKind,
    pub host: String,
    pub port: String,
    pub file: String,
    pub dialect: CheckDialect,
    seconds: f64,
    running: Option<Running>,
    /// What the check said as it went.
    pub wire: Vec<WireEntry>,
    pub report: Option<Report>,
    pub status: String,
    pub error: Option<String>,
    /// The check whose detail is shown.
    picked: Option<CheckId>,
}

impl CheckPanel {
    pub fn new(kind: CheckKind) -> Self {
        CheckPanel {
            kind,
            host: "127.0.0.1".into(),
            port: match kind {
                CheckKind::Server => "1025".into(),
                CheckKind::Client => "1025".into(),
            },
            file: match kind {
                CheckKind::Server => "movie.Mjpeg".into(),
                CheckKind::Client => String::new(),
            },
            dialect: CheckDialect::Lab,
            seconds: 3.0,
            running: None,
            wire: Vec::new(),
            report: None,
            status: String::new(),
            error: None,
            picked: None,
        }
    }

    /// Point the server form at a server (the window's own, at start).
    pub fn suggest(&mut self, port: u16, file: &str) {
        self.port = port.to_string();
        self.file = file.to_string();
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Start what `command` asks on a thread of its own (the app calls
    /// this with what [`Self::ui`] returned).
    pub fn start(&mut self, command: CheckCommand) {
        if let CheckCommand::Stop = command {
            if let Some(r) = &self.running {
                r.stop.store(true, Ordering::SeqCst);
            }
            return;
        }
        if self.running.is_some() {
            return;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("check".into())
            .spawn(move || {
                let result = match command {
                    CheckCommand::Server(cfg) => check_server(cfg, Some(tx.clone()), Some(flag)),
                    CheckCommand::Client(opts) => check_client(opts, Some(tx.clone()), Some(flag)),
                    CheckCommand::Stop => return,
                };
                if let Err(e) = result {
                    let _ = tx.send(CheckEvent::Failed(e.to_string()));
                }
            });
        match spawned {
            Ok(_) => self.attach(rx, stop),
            Err(e) => self.error = Some(format!("cannot start the check: {e}")),
        }
    }

    /// Follow a check whose events come on `events` (tests give their own).
    pub fn attach(&mut self, events: Receiver<CheckEvent>, stop: Arc<AtomicBool>) {
        self.wire.clear();
        self.report = None;
        self.error = None;
        self.picked = None;
        self.status = "starting...".into();
        self.running = Some(Running { events, stop });
    }

    /// What the running check said since the last frame.
    pub fn pump(&mut self) {
        let Some(r) = &self.running else {
            return;
        };
        let mut events = Vec::new();
        let ended = loop {
            match r.events.try_recv() {
                Ok(e) => events.push(e),
                Err(crossbeam_channel::TryRecvError::Empty) => break false,
                // The check's thread is gone (it said why, or was stopped).
                Err(crossbeam_channel::TryRecvError::Disconnected) => break true,
            }
        };
        for e in events {
            self.handle_event(e);
        }
        if ended && self.running.is_some() {
            self.running = None;
            if self.report.is_none() && self.error.is_none() {
                self.status = "stopped".into();
            }
        }
    }

    /// Wait up to `timeout` for the running check's next event and take
    /// it; false when none came (or no check runs). For tests, as
    /// [`super::PlayerApp::wait_for_event`].
    pub fn wait_for_event(&mut self, timeout: Duration) -> bool {
        let Some(r) = &self.running else {
            return false;
        };
        match r.events.recv_timeout(timeout) {
            Ok(e) => {
                self.handle_event(e);
                true
            }
            Err(_) => false,
        }
    }

    pub fn handle_event(&mut self, event: CheckEvent) {
        match event {
            CheckEvent::Listening(a) => {
                self.status = format!("listening on port {}", a.port());
            }
            CheckEvent::Started(s) => self.status = s,
            CheckEvent::Wire(w) => self.wire.push(w),
            CheckEvent::Finished(r) => {
                self.status = format!("{} passed, {} failed", r.passed(), r.failed());
                self.picked = r.checks.iter().find(|c| !c.ok).map(|c| c.id);
                self.report = Some(r);
                self.running = None;
            }
            CheckEvent::Failed(e) => {
                self.error = Some(format!("The check could not run: {e}"));
                self.status.clear();
                self.running = None;
            }
        }
    }

    fn command(&self) -> Result<CheckCommand, String> {
        let port: u16 = self
            .port
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not a port number", self.port))?;
        match self.kind {
            CheckKind::Server => {
                if self.host.trim().is_empty() || self.file.trim().is_empty() {
                    return Err("name the server's host and the file to ask for".into());
                }
                let mut cfg = ServerCheckConfig::new(
                    self.dialect,
                    self.host.trim(),
                    port,
                    self.file.trim(),
                    0,
                );
                cfg.play_for = Duration::from_secs_f64(self.seconds);
                Ok(CheckCommand::Server(cfg))
            }
            CheckKind::Client => Ok(CheckCommand::Client(ClientCheckOptions {
                bind: SocketAddr::from(([0, 0, 0, 0], port)),
                file: (!self.file.trim().is_empty()).then(|| PathBuf::from(self.file.trim())),
                dialect: self.dialect,
                ..ClientCheckOptions::default()
            })),
        }
    }

    /// Draw the panel; the command the user asked for, if any.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Option<CheckCommand> {
        self.pump();
        if self.running.is_some() {
            // Events come from another thread: look again soon.
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
        let mut command = None;
        ui.horizontal(|ui| command = self.form(ui));
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        } else if !self.status.is_empty() {
            ui.label(RichText::new(&self.status).weak());
        }
        ui.separator();
        // Three columns side by side, each clipped and scrolled on its
        // own: the header drawing and its table want the middle's width.
        let total = ui.available_width();
        let height = ui.available_height();
        let list_w = (total * 0.2).clamp(180.0, 240.0);
        let wire_w = (total * 0.34).max(280.0);
        let gap = ui.spacing().item_spacing.x * 4.0 + 2.0;
        let detail_w = (total - list_w - wire_w - gap).max(200.0);
        let down = egui::Layout::top_down(egui::Align::LEFT);
        ui.horizontal_top(|ui| {
            ui.allocate_ui_with_layout(egui::vec2(list_w, height), down, |ui| {
                ScrollArea::vertical()
                    .id_salt("check-list")
                    .auto_shrink(false)
                    .show(ui, |ui| self.checklist(ui));
            });
            ui.separator();
            ui.allocate_ui_with_layout(egui::vec2(detail_w, height), down, |ui| {
                ScrollArea::both()
                    .id_salt("check-detail")
                    .auto_shrink(false)
                    .show(ui, |ui| self.detail(ui));
            });
            ui.separator();
            ui.allocate_ui_with_layout(egui::vec2(wire_w, height), down, |ui| {
                ScrollArea::vertical()
                    .id_salt("check-wire")
                    .auto_shrink(false)
                    .stick_to_bottom(true)
                    .show(ui, |ui| self.wire_log(ui));
            });
        });
        command
    }

    fn form(&mut self, ui: &mut egui::Ui) -> Option<CheckCommand> {
        let running = self.running.is_some();
        ui.add_enabled_ui(!running, |ui| {
            if self.kind == CheckKind::Server {
                let label = ui.label("host");
                ui.add(egui::TextEdit::singleline(&mut self.host).desired_width(110.0))
                    .labelled_by(label.id);
                let label = ui.label("port");
                ui.add(egui::TextEdit::singleline(&mut self.port).desired_width(50.0))
                    .labelled_by(label.id);
                let label = ui.label("file");
                ui.add(egui::TextEdit::singleline(&mut self.file).desired_width(120.0))
                    .labelled_by(label.id);
            } else {
                let label = ui.label("Listen on port");
                ui.add(egui::TextEdit::singleline(&mut self.port).desired_width(50.0))
                    .labelled_by(label.id);
                let label = ui.label("serving");
                ui.add(
                    egui::TextEdit::singleline(&mut self.file)
                        .desired_width(160.0)
                        .hint_text("the sample, as movie.Mjpeg"),
                )
                .labelled_by(label.id);
            }
            ui.label("handout");
            ui.selectable_value(&mut self.dialect, CheckDialect::Lab, "Lab");
            ui.selectable_value(&mut self.dialect, CheckDialect::Tpc3, "TPC-3");
            if self.kind == CheckKind::Server {
                ui.selectable_value(&mut self.dialect, CheckDialect::Standard, "Standard");
            } else if self.dialect == CheckDialect::Standard {
                self.dialect = CheckDialect::Lab;
            }
        });
        let label = match self.kind {
            CheckKind::Server => "Run check",
            CheckKind::Client => "Listen",
        };
        if running {
            if ui.button("Stop").clicked() {
                return Some(CheckCommand::Stop);
            }
            ui.spinner();
        } else if ui
            .button(label)
            .on_hover_text(match self.kind {
                CheckKind::Server => "SETUP, PLAY for a few seconds, PAUSE, PLAY, TEARDOWN and a missing file, each reply and packet checked against the handout",
                CheckKind::Client => "Serve as the lab's server does and note every request your client sends; the checklist comes when it disconnects",
            })
            .clicked()
        {
            match self.command() {
                Ok(c) => return Some(c),
                Err(e) => self.error = Some(e),
            }
        }
        None
    }

    fn checklist(&mut self, ui: &mut egui::Ui) {
        ui.strong("Checklist");
        let Some(report) = &self.report else {
            ui.label(
                RichText::new(match self.kind {
                    CheckKind::Server => {
                        "Each check appears here, PASS or FAIL, when the session is over."
                    }
                    CheckKind::Client => {
                        "Each check appears here, PASS or FAIL, when your client disconnects."
                    }
                })
                .italics()
                .weak(),
            );
            return;
        };
        let (ok, bad) = (
            egui::Color32::from_rgb(60, 170, 80),
            ui.visuals().error_fg_color,
        );
        for c in &report.checks {
            ui.horizontal(|ui| {
                let (word, color) = if c.ok { ("PASS", ok) } else { ("FAIL", bad) };
                ui.label(RichText::new(word).monospace().color(color).strong());
                let picked = self.picked == Some(c.id);
                if ui
                    .selectable_label(picked, RichText::new(c.id.as_str()).monospace())
                    .on_hover_text(&c.seen)
                    .clicked()
                {
                    self.picked = Some(c.id);
                }
            });
        }
        ui.label(
            RichText::new(format!(
                "{} passed, {} failed",
                report.passed(),
                report.failed()
            ))
            .strong(),
        );
    }

    fn detail(&self, ui: &mut egui::Ui) {
        let Some(c) = self
            .report
            .as_ref()
            .and_then(|r| self.picked.and_then(|id| r.get(id)))
        else {
            ui.label(
                RichText::new("Pick a check to see what was seen and what the handout asks.")
                    .italics()
                    .weak(),
            );
            return;
        };
        ui.strong(format!("{} {}", if c.ok { "PASS" } else { "FAIL" }, c.id));
        ui.label(RichText::new("Seen").weak());
        ui.label(&c.seen);
        ui.label(RichText::new("The handout asks").weak());
        ui.label(&c.expected);
        if let Some(p) = &c.packet {
            ui.add_space(4.0);
            ui.label(
                RichText::new("The first offending packet, as the RTP inspector draws it").weak(),
            );
            header_ui(
                ui,
                "check-fields",
                p,
                c.id.drop_reason(),
                self.dialect != CheckDialect::Standard,
            );
        }
    }

    fn wire_log(&self, ui: &mut egui::Ui) {
        ui.strong("Wire log, with each check's notes");
        if self.wire.is_empty() {
            ui.label(
                RichText::new("The messages appear here as they cross the wire.")
                    .italics()
                    .weak(),
            );
            return;
        }
        let (ok, bad) = (
            egui::Color32::from_rgb(60, 170, 80),
            ui.visuals().error_fg_color,
        );
        let ours = match self.kind {
            CheckKind::Server => ("Streamlab:", "your server:"),
            CheckKind::Client => ("Streamlab:", "your client:"),
        };
        for w in &self.wire {
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    ui.label(RichText::new(if w.sent { ours.0 } else { ours.1 }).weak());
                    ui.label(RichText::new(w.text.trim_end()).monospace());
                });
                ui.vertical(|ui| {
                    for n in &w.notes {
                        let (mark, color) = if n.ok { ("ok", ok) } else { ("FAIL", bad) };
                        ui.label(
                            RichText::new(format!("{mark} {}: {}", n.id, n.text)).color(color),
                        );
                    }
                });
            });
            ui.separator();
        }
    }
}
