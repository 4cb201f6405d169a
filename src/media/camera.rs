//! Camera frames made fit for RTP: a camera's MJPEG goes out untouched
//! where RFC 2435 can carry it, with the standard Huffman tables put in
//! where the camera left them out (many USB cameras do: Motion-JPEG
//! assumes them), and encoded again only when it cannot travel as it is;
//! YUYV frames are encoded as 4:2:0 JPEG.
//!
//! A [`Capture`] is where frames come from. This machine kind has no
//! camera and cannot load v4l2loopback, so the conversions and the errors
//! are exercised through [`Replay`], a device double that plays recorded
//! frames through the same path a V4L2 device's frames take.

use std::borrow::Cow;

use crate::media::reencode::{encode_rgb_for_rtp, reencode_for_rtp};
use crate::protocol::rtp_jpeg::{carriable, standard_huffman_segments};

/// How a camera hands over its pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Motion-JPEG: one JPEG per frame, maybe without Huffman tables.
    Mjpeg,
    /// YUV 4:2:2 packed as Y0 U Y1 V.
    Yuyv,
}

/// One frame as a camera gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraFrame {
    pub format: PixelFormat,
    pub width: u16,
    pub height: u16,
    pub bytes: Vec<u8>,
}

/// What went wrong with a camera, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    #[error(
        "no camera at {0}: nothing is there, or it is not a video device (ls /dev/video* lists them)"
    )]
    NoDevice(String),
    #[error(
        "the camera at {0} is busy: another program has it open; close that program or pick another camera"
    )]
    Busy(String),
    #[error("the camera at {path} cannot give {asked}; it offers {offers}")]
    Format {
        path: String,
        asked: String,
        offers: String,
    },
    #[error("the camera at {0} was unplugged, or stopped answering, while streaming")]
    Unplugged(String),
    #[error("a frame from the camera at {path} cannot be used: {reason}")]
    BadFrame { path: String, reason: String },
}

/// Where a live camera source takes its frames from.
pub trait Capture: Send {
    /// The next frame, waiting for it.
    fn next_frame(&mut self) -> Result<CameraFrame, CameraError>;
}

/// A device double: recorded frames, played again in a loop, and then
/// (if told) the error a real device would give.
pub struct Replay {
    frames: Vec<CameraFrame>,
    next: usize,
    fail_after: Option<(usize, CameraError)>,
}

impl Replay {
    pub fn new(frames: Vec<CameraFrame>) -> Replay {
        Replay {
            frames,
            next: 0,
            fail_after: None,
        }
    }

    /// After `n` frames, fail with `error` (a camera unplugged).
    pub fn failing_after(mut self, n: usize, error: CameraError) -> Replay {
        self.fail_after = Some((n, error));
        self
    }
}

impl Capture for Replay {
    fn next_frame(&mut self) -> Result<CameraFrame, CameraError> {
        if let Some((n, e)) = &self.fail_after
            && self.next >= *n
        {
            return Err(e.clone());
        }
        if self.frames.is_empty() {
            return Err(CameraError::Unplugged("the device double".into()));
        }
        let f = self.frames[self.next % self.frames.len()].clone();
        self.next += 1;
        Ok(f)
    }
}

/// The V4L2 cameras here: path and the name the driver gives.
pub fn list_cameras() -> Vec<(String, String)> {
    #[cfg(target_os = "linux")]
    return crate::media::v4l2::list_cameras();
    #[cfg(not(target_os = "linux"))]
    return Vec::new();
}

/// The sizes and rates the camera at `device` offers, largest first
/// (empty when it cannot say).
pub fn list_modes(device: &str) -> Vec<(u16, u16, u32)> {
    #[cfg(target_os = "linux")]
    return crate::media::v4l2::list_modes(device);
    #[cfg(not(target_os = "linux"))]
    return {
        let _ = device;
        Vec::new()
    };
}

/// Open the V4L2 camera at `device` for `width`x`height` at `fps`.
#[cfg(target_os = "linux")]
pub fn open_v4l2(
    device: &str,
    width: u16,
    height: u16,
    fps: u32,
) -> Result<Box<dyn Capture>, CameraError> {
    let camera = crate::media::v4l2::V4l2Camera::open(device, width, height, fps)?;
    Ok(Box::new(camera))
}

/// Cameras are read through V4L2, which only Linux has.
#[cfg(not(target_os = "linux"))]
pub fn open_v4l2(device: &str, _: u16, _: u16, _: u32) -> Result<Box<dyn Capture>, CameraError> {
    Err(CameraError::NoDevice(device.to_string()))
}

/// `frame` as a JPEG that RFC 2435 carries (and the lab's payload too).
pub fn to_rtp_jpeg(frame: &CameraFrame, quality: u8) -> Result<Vec<u8>, String> {
    match frame.format {
        PixelFormat::Mjpeg => {
            let jpeg = with_huffman_tables(&frame.bytes)?;
            if carriable(&jpeg).is_ok() {
                return Ok(jpeg.into_owned());
            }
            // 4:4:4, progressive, odd tables: once more, as it can travel.
            reencode_for_rtp(&jpeg, quality).map_err(|e| e.to_string())
        }
        PixelFormat::Yuyv => {
            let rgb = yuyv_to_rgb(&frame.bytes, frame.width, frame.height)?;
            encode_rgb_for_rtp(&rgb, frame.width, frame.height, quality).map_err(|e| e.to_string())
        }
    }
}

/// `jpeg` with the standard Huffman tables before its scan when it has
/// none of its own (as is), else borrowed as it is.
pub fn with_huffman_tables(jpeg: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if jpeg.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err("not a JPEG (no FF D8 at the start)".into());
    }
    let mut at = 2;
    loop {
        // Markers may be padded with fill bytes.
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(0xFF), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err(format!("no marker at byte {at}"));
        };
        match marker {
            0xC4 => return Ok(Cow::Borrowed(jpeg)),
            0xDA => {
                let mut out = Vec::with_capacity(jpeg.len() + 432);
                out.extend_from_slice(&jpeg[..at]);
                standard_huffman_segments(&mut out);
                out.extend_from_slice(&jpeg[at..]);
                return Ok(Cow::Owned(out));
            }
            0xD9 => return Err("the picture ends before its scan".into()),
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let len = jpeg
                    .get(at + 2..at + 4)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| format!("a segment cut short at byte {at}"))?;
                if len < 2 {
                    return Err(format!("a segment of length {len} at byte {at}"));
                }
                at += 2 + len;
            }
        }
    }
}

/// YUYV (BT.601, studio range) to packed RGB.
pub fn yuyv_to_rgb(yuyv: &[u8], width: u16, height: u16) -> Result<Vec<u8>, String> {
    let (w, h) = (usize::from(width), usize::from(height));
    if w % 2 != 0 {
        return Err(format!("YUYV needs an even width, not {w}"));
    }
    let want = w * h * 2;
    if yuyv.len() < want {
        return Err(format!(
            "a {w}x{h} YUYV frame is {want} bytes; this one is {}",
            yuyv.len()
        ));
    }
    let mut rgb = Vec::with_capacity(w * h * 3);
    for quad in yuyv[..want].chunks_exact(4) {
        let (u, v) = (f32::from(quad[1]) - 128.0, f32::from(quad[3]) - 128.0);
        for y in [quad[0], quad[2]] {
            let c = 1.164 * (f32::from(y) - 16.0);
            let px = [c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u];
            rgb.extend(px.map(|x| x.round().clamp(0.0, 255.0) as u8));
        }
    }
    Ok(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::decode::decode_rgba;
    use crate::media::reencode::tests::encode;
    use jpeg_encoder::SamplingFactor;

    /// `jpeg` without its Huffman tables, as many cameras send MJPEG.
    fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut at = 2;
        while at + 4 <= jpeg.len() {
            let marker = jpeg[at + 1];
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[at..]);
                break;
            }
            let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[at..at + 2 + len]);
            }
            at += 2 + len;
        }
        out
    }

    #[test]
    fn mjpeg_that_travels_goes_out_untouched() {
        let jpeg = encode(64, 48, SamplingFactor::F_2_2);
        let frame = CameraFrame {
            format: PixelFormat::Mjpeg,
            width: 64,
            height: 48,
            bytes: jpeg.clone(),
        };
        assert_eq!(to_rtp_jpeg(&frame, 85).unwrap(), jpeg, "byte for byte");
    }

    #[test]
    fn mjpeg_without_huffman_tables_gets_the_standard_ones_and_decodes() {
        let jpeg = encode(64, 48, SamplingFactor::F_2_2);
        let bare = strip_dht(&jpeg);
        assert!(bare.len() < jpeg.len());
        assert!(
            decode_rgba(&bare).is_err(),
            "undecodable as the camera sends it"
        );
        let frame = CameraFrame {
            format: PixelFormat::Mjpeg,
            width: 64,
            height: 48,
            bytes: bare,
        };
        let fixed = to_rtp_jpeg(&frame, 85).unwrap();
        assert!(carriable(&fixed).is_ok());
        assert_eq!(decode_rgba(&fixed).unwrap(), decode_rgba(&jpeg).unwrap());
    }

    #[test]
    fn mjpeg_rfc_2435_cannot_carry_is_encoded_again() {
        let jpeg = encode(64, 48, SamplingFactor::F_1_1);
        assert!(carriable(&jpeg).is_err(), "4:4:4");
        let frame = CameraFrame {
            format: PixelFormat::Mjpeg,
            width: 64,
            height: 48,
            bytes: jpeg,
        };
        assert!(carriable(&to_rtp_jpeg(&frame, 85).unwrap()).is_ok());
    }

    #[test]
    fn yuyv_is_encoded_as_420_jpeg_with_its_colours() {
        // Mid grey: Y 128, U = V = 128.
        let (w, h) = (32u16, 16u16);
        let frame = CameraFrame {
            format: PixelFormat::Yuyv,
            width: w,
            height: h,
            bytes: [128u8; 4].repeat(usize::from(w) * usize::from(h) / 2),
        };
        let jpeg = to_rtp_jpeg(&frame, 90).unwrap();
        let c = carriable(&jpeg).unwrap();
        assert_eq!((c.width, c.height), (w, h));
        let (_, _, rgba) = decode_rgba(&jpeg).unwrap();
        let grey = ((1.164f32 * 112.0).round()) as i32;
        for px in rgba.chunks(4) {
            for &v in &px[..3] {
                assert!((i32::from(v) - grey).abs() <= 3, "{px:?} against {grey}");
            }
        }
        let short = CameraFrame {
            bytes: vec![0; 10],
            ..frame
        };
        assert!(
            to_rtp_jpeg(&short, 90)
                .unwrap_err()
                .contains("YUYV frame is")
        );
    }

    #[test]
    fn the_double_replays_then_fails_as_an_unplugged_camera() {
        let f = CameraFrame {
            format: PixelFormat::Yuyv,
            width: 2,
            height: 1,
            bytes: vec![16, 128, 16, 128],
        };
        let mut d = Replay::new(vec![f.clone()])
            .failing_after(2, CameraError::Unplugged("/dev/video0".into()));
        assert_eq!(d.next_frame().unwrap(), f);
        assert_eq!(d.next_frame().unwrap(), f);
        let e = d.next_frame().unwrap_err().to_string();
        assert!(e.contains("unplugged"), "{e}");
    }

    #[test]
    fn errors_say_what_to_do() {
        assert!(
            open_v4l2("/dev/streamlab-no-such-camera", 640, 480, 30)
                .err()
                .unwrap()
                .to_string()
                .contains("no camera at /dev/streamlab-no-such-camera")
        );
        assert!(
            CameraError::Busy("/dev/video0".into())
                .to_string()
                .contains("another program has it open")
        );
        let e = CameraError::Format {
            path: "/dev/video0".into(),
            asked: "1920x1080 MJPEG".into(),
            offers: "640x480 YUYV".into(),
        };
        assert!(
            e.to_string()
                .contains("cannot give 1920x1080 MJPEG; it offers 640x480 YUYV")
        );
    }
}
