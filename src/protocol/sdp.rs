//! SDP (RFC 4566) as RTSP uses it for one MJPEG video track: writing the
//! DESCRIBE answer our server gives, and reading what servers and cameras
//! answer (media type, payload type and codec, control URL, frame size and
//! rate, range), leniently and bounded.

use std::fmt::Write as _;

/// What our server says about one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Session name (the file name).
    pub name: String,
    /// The server's address as the client reached it, for `o=`.
    pub origin_ip: String,
    pub session_id: u64,
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    /// Length in seconds, for `a=range:npt=0-LEN` (files have one).
    pub duration: Option<f64>,
    /// A live source: `a=range:npt=now-` (RFC 2326 C.1.5), no length.
    pub live: bool,
}

/// The control attribute of our single track, relative to Content-Base.
pub const TRACK_CONTROL: &str = "trackID=0";

impl Offer {
    /// The SDP text, CRLF line endings.
    pub fn to_sdp(&self) -> String {
        let ip_kind = if self.origin_ip.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let mut s = String::with_capacity(400);
        let mut line = |l: String| {
            s.push_str(&l);
            s.push_str("\r\n");
        };
        line("v=0".into());
        line(format!(
            "o=- {} 1 IN {ip_kind} {}",
            self.session_id, self.origin_ip
        ));
        line(format!("s={}", sanitize(&self.name)));
        line(format!(
            "c=IN {ip_kind} {}",
            if ip_kind == "IP6" { "::" } else { "0.0.0.0" }
        ));
        line("t=0 0".into());
        line("a=tool:streamlab".into());
        match self.duration {
            _ if self.live => line("a=range:npt=now-".into()),
            Some(d) => line(format!("a=range:npt=0-{d:.3}")),
            None => line("a=range:npt=0-".into()),
        }
        line("a=control:*".into());
        line("m=video 0 RTP/AVP 26".into());
        line("a=rtpmap:26 JPEG/90000".into());
        line(format!("a=framerate:{}", self.fps));
        line(format!("a=framesize:26 {}-{}", self.width, self.height));
        // The RTP/JPEG header holds at most 2040 x 2040; GStreamer and
        // live555 read the real size from here.
        line(format!("a=x-dimensions:{},{}", self.width, self.height));
        line(format!("a=control:{TRACK_CONTROL}"));
        s
    }
}

/// Keep a session name on one line.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// One media section of a description we received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Media {
    /// `video`, `audio`, ...
    pub kind: String,
    /// Payload types in the `m=` line.
    pub formats: Vec<u8>,
    /// Encoding name per payload type from `a=rtpmap` (e.g. `JPEG`, `H264`).
    pub encodings: Vec<(u8, String, u32)>,
    pub control: Option<String>,
    pub dimensions: Option<(u16, u16)>,
    pub framerate: Option<f64>,
}

impl Media {
    /// The encoding name of a payload type: from rtpmap, or the static
    /// assignment (26 is JPEG).
    pub fn encoding(&self, pt: u8) -> Option<String> {
        self.encodings
            .iter()
            .find(|(p, _, _)| *p == pt)
            .map(|(_, n, _)| n.clone())
            .or_else(|| (pt == 26).then(|| "JPEG".to_string()))
    }

    /// The first payload type that is JPEG.
    pub fn jpeg_payload_type(&self) -> Option<u8> {
        self.formats.iter().copied().find(|&pt| {
            self.encoding(pt)
                .is_some_and(|e| e.eq_ignore_ascii_case("JPEG"))
        })
    }
}

/// A description we received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Description {
    pub session_control: Option<String>,
    pub range: Option<String>,
    pub media: Vec<Media>,
}

/// Why a description could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the description is not text")]
    NotText,
    #[error("the description has no media (no m= line)")]
    NoMedia,
    #[error("the description is larger than {0} bytes")]
    TooLarge(usize),
}

/// Largest description read.
pub const MAX_SDP: usize = 64 * 1024;

/// Read a description leniently: unknown lines are skipped, LF or CRLF.
pub fn parse(body: &[u8]) -> Result<Description, SdpError> {
    if body.len() > MAX_SDP {
        return Err(SdpError::TooLarge(MAX_SDP));
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut d = Description::default();
    for raw in text.lines() {
        let line = raw.trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key {
            "m" => {
                let mut words = value.split_whitespace();
                let kind = words.next().unwrap_or("").to_string();
                let formats = words.skip(2).filter_map(|f| f.parse().ok()).collect();
                d.media.push(Media {
                    kind,
                    formats,
                    ..Media::default()
                });
            }
            "a" => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let arg = arg.trim();
                match (name, d.media.last_mut()) {
                    ("control", None) => d.session_control = Some(arg.to_string()),
                    ("range", None) => d.range = Some(arg.to_string()),
                    // Some servers put the range on the media instead.
                    ("range", Some(_)) if d.range.is_none() => d.range = Some(arg.to_string()),
                    ("control", Some(m)) => m.control = Some(arg.to_string()),
                    ("rtpmap", Some(m)) => {
                        let mut w = arg.split_whitespace();
                        let pt = w.next().and_then(|p| p.parse().ok());
                        let enc = w.next().unwrap_or("");
                        let mut parts = enc.split('/');
                        let name = parts.next().unwrap_or("").to_string();
                        let clock = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                        if let Some(pt) = pt {
                            m.encodings.push((pt, name, clock));
                        }
                    }
                    ("x-dimensions", Some(m)) => {
                        let mut p = arg.split(',').map(|v| v.trim().parse().ok());
                        if let (Some(Some(w)), Some(Some(h))) = (p.next(), p.next()) {
                            m.dimensions = Some((w, h));
                        }
                    }
                    ("framesize", Some(m)) if m.dimensions.is_none() => {
                        // `a=framesize:26 640-480`
                        if let Some(size) = arg.split_whitespace().nth(1) {
                            let mut p = size.split('-').map(|v| v.trim().parse().ok());
                            if let (Some(Some(w)), Some(Some(h))) = (p.next(), p.next()) {
                                m.dimensions = Some((w, h));
                            }
                        }
                    }
                    ("framerate", Some(m)) => m.framerate = arg.parse().ok(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if d.media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    Ok(d)
}

/// Join a control attribute to a base URL the way live555 and ffmpeg do:
/// an absolute URL stands alone, `*` means the base itself, anything else
/// is appended to the base with one `/` between.
pub fn join_control(base: &str, control: &str) -> String {
    if control.starts_with("rtsp://") || control.starts_with("rtsps://") {
        return control.to_string();
    }
    if control.is_empty() || control == "*" {
        return base.to_string();
    }
    let mut out = base.trim_end_matches('/').to_string();
    let _ = write!(out, "/{}", control.trim_start_matches('/'));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_offer_reads_back() {
        let offer = Offer {
            name: "movie.Mjpeg".into(),
            origin_ip: "127.0.0.1".into(),
            session_id: 42,
            width: 384,
            height: 288,
            fps: 20,
            duration: Some(25.0),
            live: false,
        };
        let sdp = offer.to_sdp();
        assert!(sdp.contains("m=video 0 RTP/AVP 26\r\n"));
        assert!(sdp.contains("a=range:npt=0-25.000\r\n"));
        let live = Offer {
            duration: None,
            live: true,
            ..offer.clone()
        };
        assert!(live.to_sdp().contains("a=range:npt=now-\r\n"));
        let d = parse(sdp.as_bytes()).unwrap();
        assert_eq!(d.session_control.as_deref(), Some("*"));
        let m = &d.media[0];
        assert_eq!(m.jpeg_payload_type(), Some(26));
        assert_eq!(m.dimensions, Some((384, 288)));
        assert_eq!(m.framerate, Some(20.0));
        assert_eq!(m.control.as_deref(), Some(TRACK_CONTROL));
    }

    #[test]
    fn camera_descriptions_parse() {
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/cameras"
        ));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut jpeg = 0;
        for e in entries.flatten() {
            let Ok(text) = std::fs::read(e.path().join("DESCRIBE.txt")) else {
                continue;
            };
            // The fixture is a whole reply; the SDP follows the blank line.
            let body = text
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| &text[p + 4..])
                .or_else(|| {
                    text.windows(2)
                        .position(|w| w == b"\n\n")
                        .map(|p| &text[p + 2..])
                })
                .unwrap_or(&text);
            let d = parse(body).unwrap_or_else(|err| panic!("{:?}: {err}", e.path()));
            let video = d.media.iter().find(|m| m.kind == "video");
            let name = e.file_name().to_string_lossy().to_string();
            let is_jpeg = video.is_some_and(|m| m.jpeg_payload_type().is_some());
            assert_eq!(is_jpeg, name.contains("mjpeg"), "{name}");
            jpeg += is_jpeg as usize;
        }
        assert!(jpeg >= 3, "the MJPEG cameras were read");
    }

    #[test]
    fn join_control_like_live555() {
        assert_eq!(
            join_control("rtsp://h/a/", "trackID=0"),
            "rtsp://h/a/trackID=0"
        );
        assert_eq!(
            join_control("rtsp://h/a", "trackID=0"),
            "rtsp://h/a/trackID=0"
        );
        assert_eq!(join_control("rtsp://h/a/", "*"), "rtsp://h/a/");
        assert_eq!(join_control("rtsp://h/a/", "rtsp://x/y"), "rtsp://x/y");
    }
}
