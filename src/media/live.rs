//! Live sources (`streamlab serve --source NAME=SPEC`): what a SPEC says,
//! and the frames of the moving test pattern, with its frame counter and
//! the wall-clock time burnt in, encoded as 4:2:0 JPEG that RFC 2435
//! carries untouched. The thread that makes one frame per period and
//! shares it with every viewer is `net::server::live`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::media::pattern::{draw_text, pattern_rgb};
use crate::media::reencode::{ReencodeError, encode_rgb_for_rtp};

/// The test pattern's size and rate when the SPEC gives none.
pub const DEFAULT_SIZE: (u16, u16) = (1280, 720);
pub const DEFAULT_FPS: u32 = 30;
/// JPEG quality of the pattern's frames.
const QUALITY: u8 = 85;

/// What a live source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    TestPattern,
    /// A V4L2 camera at this device path.
    Camera {
        device: String,
    },
}

/// A live source as `--source NAME=SPEC` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub name: String,
    pub kind: SourceKind,
    pub width: u16,
    pub height: u16,
    pub fps: u32,
}

/// Why a `--source` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("--source wants NAME=SPEC (e.g. pattern=testpattern:1280x720@30), not {0:?}")]
    NoName(String),
    #[error(
        "the source name {0:?} must be letters, digits, '.', '-' or '_' (it becomes the URL's path)"
    )]
    BadName(String),
    #[error("unknown source {0:?}: testpattern[:WxH][@FPS] or camera[:/dev/videoN][:WxH][@FPS]")]
    Unknown(String),
    #[error("{0:?} is not a size: WIDTHxHEIGHT, even numbers from 16 to 4096 (e.g. 1280x720)")]
    Size(String),
    #[error("{0:?} is not a frame rate: a whole number from 1 to 120")]
    Fps(String),
}

impl SourceSpec {
    /// Read `NAME=SPEC`.
    pub fn parse(arg: &str) -> Result<SourceSpec, SpecError> {
        let (name, spec) = arg
            .split_once('=')
            .ok_or_else(|| SpecError::NoName(arg.to_string()))?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(SpecError::BadName(name.to_string()));
        }
        let (spec, fps) = match spec.rsplit_once('@') {
            Some((s, f)) => {
                let fps = f
                    .parse::<u32>()
                    .ok()
                    .filter(|f| (1..=120).contains(f))
                    .ok_or_else(|| SpecError::Fps(f.to_string()))?;
                (s, Some(fps))
            }
            None => (spec, None),
        };
        let mut parts = spec.split(':');
        let kind = parts.next().unwrap_or_default();
        let mut kind = match kind {
            "testpattern" => SourceKind::TestPattern,
            "camera" => SourceKind::Camera {
                device: "/dev/video0".into(),
            },
            other => return Err(SpecError::Unknown(other.to_string())),
        };
        let mut size = None;
        for part in parts {
            if part.starts_with("/dev/")
                && let SourceKind::Camera { device } = &mut kind
            {
                *device = part.to_string();
                continue;
            }
            size = Some(parse_size(part)?);
        }
        let (width, height) = size.unwrap_or(DEFAULT_SIZE);
        Ok(SourceSpec {
            name: name.to_string(),
            kind,
            width,
            height,
            fps: fps.unwrap_or(DEFAULT_FPS),
        })
    }
}

fn parse_size(s: &str) -> Result<(u16, u16), SpecError> {
    let bad = || SpecError::Size(s.to_string());
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let side = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|v| (16..=4096).contains(v) && v % 2 == 0)
    };
    Ok((side(w).ok_or_else(bad)?, side(h).ok_or_else(bad)?))
}

/// Frame `index` of the test pattern at `width`x`height`, with `wall`
/// (the time it was made, UTC) burnt in as HH:MM:SS.mmm.
pub fn pattern_frame(
    index: u64,
    width: u16,
    height: u16,
    wall: SystemTime,
) -> Result<Vec<u8>, ReencodeError> {
    let mut img = pattern_rgb(
        u32::try_from(index % 1_000_000).unwrap_or(0),
        u32::from(width),
        u32::from(height),
    );
    let ms = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let day = ms % 86_400_000;
    let text = format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3_600_000,
        day / 60_000 % 60,
        day / 1000 % 60,
        day % 1000
    );
    let scale = (i64::from(height) / 60).max(1);
    let y = i64::from(height) - 10 * scale;
    draw_text(&mut img, &text, 2 * scale, y, scale);
    encode_rgb_for_rtp(img.as_raw(), width, height, QUALITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtp_jpeg::carriable;
    use std::time::Duration;

    #[test]
    fn specs_with_and_without_size_rate_and_device() {
        let s = SourceSpec::parse("pattern=testpattern").unwrap();
        assert_eq!(
            (s.name.as_str(), &s.kind, s.width, s.height, s.fps),
            ("pattern", &SourceKind::TestPattern, 1280, 720, 30)
        );
        let s = SourceSpec::parse("small=testpattern:320x240@15").unwrap();
        assert_eq!((s.width, s.height, s.fps), (320, 240, 15));
        let s = SourceSpec::parse("cam=camera:/dev/video2:640x480@25").unwrap();
        assert_eq!(
            s.kind,
            SourceKind::Camera {
                device: "/dev/video2".into()
            }
        );
        assert_eq!((s.width, s.height, s.fps), (640, 480, 25));
        let s = SourceSpec::parse("cam=camera").unwrap();
        assert_eq!(
            s.kind,
            SourceKind::Camera {
                device: "/dev/video0".into()
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (arg, want) in [
            ("testpattern", "NAME=SPEC"),
            ("a/b=testpattern", "letters, digits"),
            ("x=webcam", "unknown source"),
            ("x=testpattern:640", "not a size"),
            ("x=testpattern:641x480", "not a size"),
            ("x=testpattern@0", "not a frame rate"),
            ("x=testpattern@fast", "not a frame rate"),
        ] {
            let e = SourceSpec::parse(arg).unwrap_err().to_string();
            assert!(e.contains(want), "{arg}: {e}");
        }
    }

    #[test]
    fn pattern_frames_are_420_jpeg_that_rfc_2435_carries_and_move() {
        let t = UNIX_EPOCH + Duration::from_millis(45_296_789); // 12:34:56.789
        let a = pattern_frame(0, 320, 240, t).unwrap();
        let b = pattern_frame(1, 320, 240, t).unwrap();
        assert_ne!(a, b, "the counter moves");
        let c = carriable(&a).expect("RFC 2435 carries it untouched");
        assert_eq!((c.width, c.height), (320, 240));
        let later = pattern_frame(0, 320, 240, t + Duration::from_secs(1)).unwrap();
        assert_ne!(a, later, "the clock is burnt in");
    }
}
