//! The credentials prompt: shown when the server answers 401 Unauthorized,
//! it asks for a user name and a password. Before a session exists SETUP
//! is tried again with them; in a session the engine sends the refused
//! request again with them, on the same connection. The password is typed
//! into a masked field and kept nowhere else but the connection bar's
//! credentials and the engine's.

use egui::{Frame, RichText, TextEdit};

use super::controls::command_name;
use super::view::{PlayerView, UiCommand};
use crate::protocol::State;

/// What is being typed into the prompt.
#[derive(Clone, Default)]
pub struct CredentialsPrompt {
    pub user: String,
    password: String,
    /// Put the keyboard focus into the prompt on its next frame.
    focus: bool,
}

/// Never prints the password.
impl std::fmt::Debug for CredentialsPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsPrompt")
            .field("user", &self.user)
            .field("password", &"***")
            .field("focus", &self.focus)
            .finish()
    }
}

impl CredentialsPrompt {
    /// Get ready to ask, starting from the user name already known, if any.
    pub fn open(&mut self, user: Option<&str>) {
        if let Some(user) = user {
            self.user = user.to_owned();
        }
        self.password.clear();
        self.focus = true;
    }

    /// The typed user name and password; the prompt forgets the password.
    pub fn take(&mut self) -> (String, String) {
        (
            self.user.trim().to_owned(),
            std::mem::take(&mut self.password),
        )
    }

    /// Forget the password typed so far.
    pub fn close(&mut self) {
        self.password.clear();
        self.focus = false;
    }

    /// Draws nothing unless the view says the server wants credentials.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
        let need = view.auth_needed.as_ref()?;
        let mut command = None;
        let visuals = ui.visuals();
        let color = if need.refused {
            visuals.error_fg_color
        } else {
            visuals.warn_fg_color
        };
        Frame::new()
            .fill(color.gamma_multiply(0.15))
            .inner_margin(6.0)
            .corner_radius(4.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                // The engine's own sentence, as the command line prints it.
                ui.label(RichText::new(sentence_case(&need.message)).color(color));
                ui.horizontal_wrapped(|ui| {
                    let label = ui.label("User name");
                    let user = ui
                        .add(TextEdit::singleline(&mut self.user).desired_width(140.0))
                        .labelled_by(label.id);
                    let label = ui.label("Password");
                    let password = ui
                        .add(
                            TextEdit::singleline(&mut self.password)
                                .password(true)
                                .desired_width(140.0),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("Sent only as the server asks (Basic or Digest); never shown or logged.");
                    if std::mem::take(&mut self.focus) {
                        if self.user.is_empty() {
                            user.request_focus();
                        } else {
                            password.request_focus();
                        }
                    }
                    let ready = !self.user.trim().is_empty();
                    let entered = (user.lost_focus() || password.lost_focus())
                        && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    let what = match need.retry {
                        Some(command) if view.state != State::Init => format!(
                            "Send {} again with this user name and password, in the same session.",
                            command_name(command)
                        ),
                        _ if view.state != State::Init => {
                            "Use this user name and password for the rest of the session.".to_owned()
                        }
                        _ => "SETUP again with this user name and password.".to_owned(),
                    };
                    let clicked = ui
                        .add_enabled(ready, egui::Button::new("Connect"))
                        .on_hover_text(what)
                        .on_disabled_hover_text("Type the user name first.")
                        .clicked();
                    if (clicked || entered) && ready {
                        command = Some(UiCommand::Authenticate);
                    }
                    if ui
                        .button("Cancel")
                        .on_hover_text("Do not connect to this server.")
                        .clicked()
                    {
                        command = Some(UiCommand::CancelAuth);
                    }
                });
            });
        command
    }
}

/// The engine's sentences start in lower case, to follow "Error: "; a
/// sentence of its own starts with a capital.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
