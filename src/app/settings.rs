//! What the window remembers between runs (eframe persistence): the
//! connection bar, dialect, transport, pre-buffer, latency, the recent URLs
//! and which panels are shown. Never a password: the settings hold only
//! values typed here, and the password field is not one of them (a test
//! reads the stored text to prove it).

use serde::{Deserialize, Serialize};

use super::connection::ConnectionFields;
use crate::net::client::{DialectChoice, TransportChoice};

/// The key the settings are stored under.
pub const SETTINGS_KEY: &str = "streamlab-settings";

/// Where the connection bar pointed, when it was not the embedded server
/// (whose port changes every run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedTarget {
    pub host: String,
    pub rtsp_port: String,
    pub file: String,
    /// The user name (a server asks for the password again).
    pub user: Option<String>,
    /// A typed URL that names no file (`rtsp://camera/`) needs the URL.
    pub url: Option<String>,
}

/// The window's remembered settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub target: Option<SavedTarget>,
    pub rtp_port: String,
    /// "auto", "standard" or "lab".
    pub dialect: String,
    /// "udp" or "tcp".
    pub transport: String,
    pub prebuffer: u32,
    pub latency_ms: Option<u32>,
    pub recent: Vec<String>,
    /// The state machine panel is shown.
    pub state_machine_shown: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let fields = ConnectionFields::default();
        Settings {
            target: None,
            rtp_port: fields.rtp_port,
            dialect: "auto".to_owned(),
            transport: "udp".to_owned(),
            prebuffer: 0,
            latency_ms: None,
            recent: Vec::new(),
            state_machine_shown: true,
        }
    }
}

impl Settings {
    /// The settings stored in `storage`, if any can be read.
    pub fn load(storage: &dyn eframe::Storage) -> Option<Settings> {
        eframe::get_value(storage, SETTINGS_KEY)
    }

    /// Keep these settings in `storage`.
    pub fn store(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, self);
    }

    /// The settings for `fields`; `embedded` says the bar points at the
    /// embedded server, whose address is not worth keeping.
    pub fn of_fields(fields: &ConnectionFields, embedded: bool) -> Settings {
        let target = (!embedded).then(|| SavedTarget {
            host: fields.host.clone(),
            rtsp_port: fields.rtsp_port.clone(),
            file: fields.file.clone(),
            user: fields.user.clone(),
            url: fields.url_to_remember(),
        });
        Settings {
            target,
            rtp_port: fields.rtp_port.clone(),
            dialect: match fields.dialect {
                DialectChoice::Auto => "auto",
                DialectChoice::Standard => "standard",
                DialectChoice::Lab => "lab",
                DialectChoice::Tpc3 => "tpc3",
            }
            .to_owned(),
            transport: match fields.transport {
                TransportChoice::Udp => "udp",
                TransportChoice::Tcp => "tcp",
            }
            .to_owned(),
            prebuffer: fields.prebuffer,
            latency_ms: fields.latency_ms,
            ..Settings::default()
        }
    }

    /// Put the settings into `fields` (the target only when one was kept).
    pub fn apply_to(&self, fields: &mut ConnectionFields) {
        fields.rtp_port = self.rtp_port.clone();
        fields.dialect = match self.dialect.as_str() {
            "standard" => DialectChoice::Standard,
            "lab" => DialectChoice::Lab,
            "tpc3" => DialectChoice::Tpc3,
            _ => DialectChoice::Auto,
        };
        fields.transport = match self.transport.as_str() {
            "tcp" => TransportChoice::Tcp,
            _ => TransportChoice::Udp,
        };
        fields.prebuffer = self.prebuffer;
        fields.latency_ms = self.latency_ms;
        if let Some(target) = &self.target {
            fields.host = target.host.clone();
            fields.rtsp_port = target.rtsp_port.clone();
            fields.file = target.file.clone();
            fields.user = target.user.clone();
            fields.password = None;
            match &target.url {
                Some(url) if target.file.is_empty() => {
                    fields.url = url.clone();
                    fields.url_edited();
                }
                _ => fields.fields_edited(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_back_without_the_password() {
        let mut fields = ConnectionFields::default();
        fields.url = "rtsp://admin:s3cret@camera.local:8555/live".to_owned();
        fields.url_edited();
        fields.dialect = DialectChoice::Standard;
        fields.transport = TransportChoice::Tcp;
        fields.prebuffer = 12;
        fields.latency_ms = Some(400);
        let settings = Settings::of_fields(&fields, false);
        let text = serde_json::to_string(&settings).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("***"), "{text}");

        let mut back = ConnectionFields::default();
        settings.apply_to(&mut back);
        assert_eq!(back.url, "rtsp://admin@camera.local:8555/live");
        assert_eq!(back.password, None);
        assert_eq!(back.dialect, DialectChoice::Standard);
        assert_eq!(back.transport, TransportChoice::Tcp);
        assert_eq!((back.prebuffer, back.latency_ms), (12, Some(400)));
    }

    #[test]
    fn the_embedded_server_is_not_kept() {
        let settings = Settings::of_fields(&ConnectionFields::default(), true);
        assert_eq!(settings.target, None);
    }
}
