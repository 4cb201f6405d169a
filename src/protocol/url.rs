//! `rtsp://[user[:password]@]host[:port][/path]` URLs, and the lab's four
//! fields (host, RTSP port, RTP port, file) written as one. Credentials are
//! split off here so that nothing downstream logs them by accident.

use std::fmt;

/// The port RTSP servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 554;

/// A parsed RTSP URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    pub host: String,
    pub port: u16,
    /// The path with its leading `/` (and query), percent-encoding kept.
    pub path: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Why a URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an rtsp:// URL")]
    Scheme,
    #[error("the URL names no host")]
    NoHost,
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
}

impl RtspUrl {
    pub fn parse(s: &str) -> Result<RtspUrl, UrlError> {
        let s = s.trim();
        let rest = strip_prefix_ignore_case(s, "rtsp://").ok_or(UrlError::Scheme)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let lenient = |s: &str| percent_decode(s, Escapes::Lenient);
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (lenient(a), lenient(b)),
                None => (lenient(u), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or(UrlError::NoHost)?;
            let port = v6[end + 1..].strip_prefix(':');
            (v6[..end].to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(UrlError::Port(p.to_string())),
            },
        };
        Ok(RtspUrl {
            host,
            port,
            path: path.to_string(),
            user,
            password,
        })
    }

    /// The lab's four fields as one URL (no credentials).
    pub fn from_fields(host: &str, port: u16, file: &str) -> RtspUrl {
        RtspUrl {
            host: host.to_string(),
            port,
            path: format!("/{}", file.trim_start_matches('/')),
            user: None,
            password: None,
        }
    }

    /// The file part, as the lab's fourth field.
    pub fn file(&self) -> &str {
        self.path.trim_start_matches('/')
    }

    /// The URL as sent in requests: never with credentials.
    pub fn request_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("rtsp://{host}:{}{}", self.port, self.path)
    }
}

/// Shows the URL with the password hidden, so it can be logged.
impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.request_url();
        match &self.user {
            Some(u) => {
                let (scheme, rest) = url.split_at("rtsp://".len());
                let hidden = if self.password.is_some() { ":***" } else { "" };
                write!(f, "{scheme}{u}{hidden}@{rest}")
            }
            None => f.write_str(&url),
        }
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtspUrl({self})")
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// How `percent_decode` treats what is not a valid escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// Keep a bad `%` as it is and replace bad UTF-8: credentials typed
    /// by a person are taken as meant.
    Lenient,
    /// Refuse a bad `%` or bad UTF-8: a path we are to serve must say
    /// exactly one thing.
    Strict,
}

/// Undo `%XX` escapes (RFC 3986 section 2.1).
pub fn percent_decode(s: &str, escapes: Escapes) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None if b[i] == b'%' && escapes == Escapes::Strict => return None,
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    match escapes {
        Escapes::Strict => String::from_utf8(out).ok(),
        Escapes::Lenient => Some(String::from_utf8_lossy(&out).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_strict_and_lenient() {
        assert_eq!(
            percent_decode("a%20b%2Fc", Escapes::Strict).as_deref(),
            Some("a b/c")
        );
        assert_eq!(percent_decode("100%", Escapes::Strict), None);
        assert_eq!(percent_decode("%zz", Escapes::Strict), None);
        assert_eq!(percent_decode("%ff", Escapes::Strict), None, "not UTF-8");
        assert_eq!(
            percent_decode("100%", Escapes::Lenient).as_deref(),
            Some("100%")
        );
        assert_eq!(
            percent_decode("p%40ss%zz", Escapes::Lenient).as_deref(),
            Some("p@ss%zz")
        );
    }

    #[test]
    fn parses_the_forms_people_type() {
        let u = RtspUrl::parse("rtsp://127.0.0.1:8554/movie.Mjpeg").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.file()),
            ("127.0.0.1", 8554, "movie.Mjpeg")
        );
        let u = RtspUrl::parse("RTSP://cam.local/stream1?profile=2").unwrap();
        assert_eq!((u.port, u.path.as_str()), (554, "/stream1?profile=2"));
        let u = RtspUrl::parse("rtsp://admin:p%40ss:w@[::1]:10554/live").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 10554);
        assert_eq!(u.user.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert_eq!(u.request_url(), "rtsp://[::1]:10554/live");
        let u = RtspUrl::parse("rtsp://h").unwrap();
        assert_eq!(u.path, "/");
    }

    #[test]
    fn never_shows_the_password() {
        let u = RtspUrl::parse("rtsp://admin:secret@h:554/x").unwrap();
        assert_eq!(u.to_string(), "rtsp://admin:***@h:554/x");
        assert!(!format!("{u:?}").contains("secret"));
        assert!(!u.request_url().contains("secret"));
    }

    #[test]
    fn refuses_what_is_not_a_url() {
        assert_eq!(RtspUrl::parse("http://h/x"), Err(UrlError::Scheme));
        assert_eq!(RtspUrl::parse("rtsp:///x"), Err(UrlError::NoHost));
        assert!(matches!(
            RtspUrl::parse("rtsp://h:0/x"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            RtspUrl::parse("rtsp://h:99999/x"),
            Err(UrlError::Port(_))
        ));
    }

    #[test]
    fn fields_and_url_agree() {
        let u = RtspUrl::from_fields("127.0.0.1", 1025, "movie.Mjpeg");
        assert_eq!(u.request_url(), "rtsp://127.0.0.1:1025/movie.Mjpeg");
        assert_eq!(RtspUrl::parse(&u.request_url()).unwrap(), u);
    }
}
