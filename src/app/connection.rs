//! What the connection bar connects to: the lab's four fields and an
//! `rtsp://` URL kept in step (editing one rewrites the other), the
//! credentials, and the dialect and transport choices.
//!
//! A password never stays visible: typed or pasted into the URL, it moves
//! out of the text at once and the URL shows `user:***@` in its place.

use std::ops::Range;

use crate::net::client::{ClientConfig, DialectChoice, TransportChoice};
use crate::protocol::url::{RtspUrl, UrlError};

/// The lab's usual RTP port; students type it into the lab client.
pub const DEFAULT_RTP_PORT: u16 = 5008;

/// What the URL shows where the password is.
pub const PASSWORD_MASK: &str = "***";

/// The connection bar as typed, so a half-typed port or URL is neither lost
/// nor rejected while the user is still typing.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionFields {
    /// `rtsp://[user[:***]@]host[:port]/path`; never holds the password.
    pub url: String,
    pub host: String,
    pub rtsp_port: String,
    pub rtp_port: String,
    pub file: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dialect: DialectChoice,
    pub transport: TransportChoice,
    /// Frames fetched ahead after SETUP (0 = off).
    pub prebuffer: u32,
    /// How long frames wait to be presented on the sender's clock; None =
    /// the engine decides (0 on TCP and loopback, 200 ms over UDP).
    pub latency_ms: Option<u32>,
    /// The URL was edited after the fields: SETUP needs it to be readable,
    /// since the fields may still hold what was there before.
    url_typed: bool,
}

/// Never prints the password.
impl std::fmt::Debug for ConnectionFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionFields")
            .field("url", &self.url)
            .field("host", &self.host)
            .field("rtsp_port", &self.rtsp_port)
            .field("rtp_port", &self.rtp_port)
            .field("file", &self.file)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| PASSWORD_MASK))
            .field("dialect", &self.dialect)
            .field("transport", &self.transport)
            .field("prebuffer", &self.prebuffer)
            .field("latency_ms", &self.latency_ms)
            .field("url_typed", &self.url_typed)
            .finish()
    }
}

impl Default for ConnectionFields {
    fn default() -> Self {
        let mut fields = ConnectionFields {
            url: String::new(),
            host: "127.0.0.1".to_owned(),
            rtsp_port: "8554".to_owned(),
            rtp_port: DEFAULT_RTP_PORT.to_string(),
            file: "movie.Mjpeg".to_owned(),
            user: None,
            password: None,
            dialect: DialectChoice::Auto,
            transport: TransportChoice::Udp,
            prebuffer: 0,
            latency_ms: None,
            url_typed: false,
        };
        fields.fields_edited();
        fields
    }
}

/// A URL whose password was taken out of the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Masked {
    /// The URL with [`PASSWORD_MASK`] where the password was.
    pub text: String,
    /// The password, percent-decoded.
    pub password: String,
    /// Where the password was in the original text, in characters.
    pub chars: Range<usize>,
}

/// Take a password written in clear out of an `rtsp://` URL. None when
/// there is none (or it is already masked, or empty). Works on half-typed
/// URLs too: the password goes as soon as the `@` after it is typed.
pub fn mask_password(text: &str) -> Option<Masked> {
    const SCHEME: &str = "rtsp://";
    let scheme_len = text.find(|c: char| !c.is_whitespace()).unwrap_or(0) + SCHEME.len();
    let scheme = text.get(scheme_len - SCHEME.len()..scheme_len)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &text[scheme_len..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let colon = userinfo.find(':')?;
    let raw = &userinfo[colon + 1..];
    if raw.is_empty() || raw == PASSWORD_MASK {
        return None;
    }
    let start = scheme_len + colon + 1;
    let end = start + raw.len();
    // Percent-decoded the way the URL parser decodes it.
    let password = RtspUrl::parse(&format!("rtsp://u:{raw}@h/"))
        .ok()
        .and_then(|u| u.password)
        .unwrap_or_else(|| raw.to_owned());
    let to_chars = |byte: usize| text[..byte].chars().count();
    Some(Masked {
        text: format!("{}{PASSWORD_MASK}{}", &text[..start], &text[end..]),
        password,
        chars: to_chars(start)..to_chars(end),
    })
}

/// Never prints the password.
impl std::fmt::Debug for Masked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masked")
            .field("text", &self.text)
            .field("password", &PASSWORD_MASK)
            .field("chars", &self.chars)
            .finish()
    }
}

impl ConnectionFields {
    /// The fields for `config`, the URL written from them.
    pub fn from_config(config: &ClientConfig) -> Self {
        let mut fields = ConnectionFields {
            url: String::new(),
            host: config.host.clone(),
            rtsp_port: config.rtsp_port.to_string(),
            rtp_port: config.rtp_port.to_string(),
            file: config.file.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
            dialect: config.dialect,
            transport: config.transport,
            prebuffer: config.prebuffer,
            latency_ms: config.latency_ms,
            url_typed: false,
        };
        fields.fields_edited();
        fields
    }

    /// Point at another server (the embedded one): its credentials, if any,
    /// belonged to the old one.
    pub fn point_at(&mut self, host: &str, rtsp_port: u16, file: &str) {
        self.host = host.to_owned();
        self.rtsp_port = rtsp_port.to_string();
        self.file = file.to_owned();
        self.user = None;
        self.password = None;
        self.fields_edited();
    }

    /// The URL text changed: take a password out of it, then fill the
    /// fields from it if it reads as a URL. Returns where a password was
    /// taken out, so the caller can move the text cursor.
    pub fn url_edited(&mut self) -> Option<Range<usize>> {
        let masked = mask_password(&self.url).map(|m| {
            self.url = m.text;
            self.password = Some(m.password);
            m.chars
        });
        self.url_typed = !self.url.trim().is_empty();
        if let Ok(url) = RtspUrl::parse(&self.url) {
            self.host = url.host.clone();
            self.rtsp_port = url.port.to_string();
            self.file = url.file().to_owned();
            match (&url.user, url.password.as_deref()) {
                (None, _) => {
                    self.user = None;
                    self.password = None;
                }
                (Some(user), password) => {
                    self.user = Some(user.clone());
                    // The mask stands for the password already held.
                    let kept = password == Some(PASSWORD_MASK) && self.password.is_some();
                    if !kept {
                        self.password = password.map(str::to_owned);
                    }
                }
            }
        }
        masked
    }

    /// Host, RTSP port or File changed: write the URL from them (left alone
    /// while the port is not a number yet).
    pub fn fields_edited(&mut self) {
        self.url_typed = false;
        let Ok(port) = self.rtsp_port.trim().parse::<u16>() else {
            return;
        };
        let host = self.host.trim();
        if host.is_empty() {
            return;
        }
        let url = RtspUrl {
            password: self.password.clone(),
            user: self.user.clone(),
            ..RtspUrl::from_fields(host, port, self.file.trim())
        };
        // Display shows the password as ***.
        self.url = url.to_string();
    }

    /// The URL without its password (or the mask standing for it), to keep
    /// in the recent URLs and the settings; None when the URL does not read.
    pub fn url_to_remember(&self) -> Option<String> {
        let url = RtspUrl::parse(&self.url).ok()?;
        Some(
            RtspUrl {
                password: None,
                ..url
            }
            .to_string(),
        )
    }

    /// Use these credentials from now on (the URL shows the user name).
    pub fn set_credentials(&mut self, user: &str, password: String) {
        self.user = Some(user.trim().to_owned());
        self.password = Some(password);
        self.fields_edited();
    }

    /// The connection bar as a client configuration, or the sentence that
    /// says what to correct.
    pub fn to_config(&self) -> Result<ClientConfig, String> {
        if self.url_typed
            && let Err(e) = RtspUrl::parse(&self.url)
        {
            // Never quote the text: a half-typed one may hold a password.
            return Err(match e {
                UrlError::Scheme => "The URL must start with rtsp:// (e.g. \
                     rtsp://camera.local:554/stream), or clear it and fill in Host, RTSP port and File."
                    .to_owned(),
                UrlError::NoHost => {
                    "The URL names no host: type it as rtsp://host[:port]/path.".to_owned()
                }
                UrlError::Port(_) => {
                    "The URL's port must be a number from 1 to 65535 (rtsp://host:8554/path)."
                        .to_owned()
                }
            });
        }
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
        // A URL may name the server's root (rtsp://camera/); the lab's
        // fields always name a file.
        if file.is_empty() && !self.url_typed {
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
            dialect: self.dialect,
            transport: self.transport,
            user: self.user.clone(),
            password: self.password.clone(),
            prebuffer: self.prebuffer,
            latency_ms: self.latency_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed_url(url: &str) -> ConnectionFields {
        let mut fields = ConnectionFields {
            url: url.to_owned(),
            ..ConnectionFields::default()
        };
        fields.url_edited();
        fields
    }

    #[test]
    fn the_default_url_is_the_fields() {
        let fields = ConnectionFields::default();
        assert_eq!(fields.url, "rtsp://127.0.0.1:8554/movie.Mjpeg");
        let config = fields.to_config().unwrap();
        assert_eq!(config.rtp_port, DEFAULT_RTP_PORT);
        assert_eq!(config.dialect, DialectChoice::Auto);
    }

    #[test]
    fn pre_buffer_and_latency_reach_the_config() {
        let fields = ConnectionFields {
            prebuffer: 10,
            latency_ms: Some(300),
            ..ConnectionFields::default()
        };
        let config = fields.to_config().unwrap();
        assert_eq!((config.prebuffer, config.latency_ms), (10, Some(300)));
        let back = ConnectionFields::from_config(&config);
        assert_eq!((back.prebuffer, back.latency_ms), (10, Some(300)));
    }

    /// The URL as it may be kept (recent URLs, settings): no password, and
    /// no mask standing for one.
    #[test]
    fn the_url_to_remember_has_no_password() {
        let fields = typed_url("rtsp://admin:s3cret@camera.local/live");
        assert_eq!(
            fields.url_to_remember().as_deref(),
            Some("rtsp://admin@camera.local:554/live")
        );
        assert_eq!(
            ConnectionFields::default().url_to_remember().as_deref(),
            Some("rtsp://127.0.0.1:8554/movie.Mjpeg")
        );
    }

    #[test]
    fn a_url_fills_the_fields() {
        let fields = typed_url("rtsp://camera.local:8555/live/ch0?res=hd");
        assert_eq!(fields.host, "camera.local");
        assert_eq!(fields.rtsp_port, "8555");
        assert_eq!(fields.file, "live/ch0?res=hd");
        assert_eq!(fields.rtp_port, DEFAULT_RTP_PORT.to_string(), "untouched");
        let fields = typed_url("rtsp://camera.local/");
        assert_eq!(fields.rtsp_port, "554");
        assert_eq!(fields.to_config().unwrap().file, "", "a URL may name /");
    }

    #[test]
    fn fields_rewrite_the_url() {
        let mut fields = typed_url("rtsp://admin:s3cret@camera.local/live");
        fields.host = "10.0.0.7".to_owned();
        fields.fields_edited();
        assert_eq!(fields.url, "rtsp://admin:***@10.0.0.7:554/live");
        assert_eq!(fields.password.as_deref(), Some("s3cret"));
        // A half-typed port leaves the URL as it was.
        fields.rtsp_port = "8x".to_owned();
        fields.fields_edited();
        assert_eq!(fields.url, "rtsp://admin:***@10.0.0.7:554/live");
    }

    #[test]
    fn a_password_leaves_the_url_at_once() {
        let mut fields = typed_url("rtsp://admin:p%40ss@camera.local:554/live");
        assert_eq!(fields.url, "rtsp://admin:***@camera.local:554/live");
        assert_eq!(fields.user.as_deref(), Some("admin"));
        assert_eq!(fields.password.as_deref(), Some("p@ss"));
        let config = fields.to_config().unwrap();
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert!(!format!("{fields:?}").contains("p@ss"));
        assert!(!format!("{fields:?}").contains("p%40ss"));

        // Editing around the mask keeps the password; removing it drops it.
        fields.url = "rtsp://root:***@camera.local:554/live".to_owned();
        fields.url_edited();
        assert_eq!(fields.user.as_deref(), Some("root"));
        assert_eq!(fields.password.as_deref(), Some("p@ss"));
        fields.url = "rtsp://root@camera.local:554/live".to_owned();
        fields.url_edited();
        assert_eq!(fields.password, None);
        fields.url = "rtsp://camera.local:554/live".to_owned();
        fields.url_edited();
        assert_eq!(fields.user, None);
    }

    #[test]
    fn a_half_typed_password_goes_when_the_at_sign_comes() {
        assert_eq!(mask_password("rtsp://admin:s3cr"), None);
        let masked = mask_password("rtsp://admin:s3cret@").unwrap();
        assert_eq!(masked.text, "rtsp://admin:***@");
        assert_eq!(masked.password, "s3cret");
        assert_eq!(masked.chars, 13..19);
        assert_eq!(mask_password("rtsp://admin:***@cam/"), None);
        assert_eq!(mask_password("rtsp://admin@cam/a:b@c"), None, "in the path");
        assert_eq!(mask_password("http://a:b@cam/"), None);
        assert_eq!(
            mask_password(" RTSP://a:b@cam/").map(|m| m.text).as_deref(),
            Some(" RTSP://a:***@cam/")
        );
    }

    #[test]
    fn an_unreadable_url_says_why_without_quoting_it() {
        let fields = typed_url("rtsp://admin:s3cret");
        let error = fields.to_config().unwrap_err();
        assert!(error.contains("port must be a number"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(
            typed_url("http://x/")
                .to_config()
                .unwrap_err()
                .contains("rtsp://")
        );
        // Cleared: the fields are used again.
        assert!(typed_url("").to_config().is_ok());
    }

    #[test]
    fn credentials_from_the_prompt_show_in_the_url() {
        let mut fields = ConnectionFields::default();
        fields.set_credentials(" admin ", "s3cret".to_owned());
        assert_eq!(fields.url, "rtsp://admin:***@127.0.0.1:8554/movie.Mjpeg");
        let config = fields.to_config().unwrap();
        assert_eq!(config.user.as_deref(), Some("admin"));
        assert_eq!(config.password.as_deref(), Some("s3cret"));
        fields.point_at("127.0.0.1", 40000, "sample.mjpeg");
        assert_eq!(fields.url, "rtsp://127.0.0.1:40000/sample.mjpeg");
        assert_eq!(fields.password, None);
    }
}
