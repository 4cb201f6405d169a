//! Small JPEG inspection: enough of the marker structure to report a frame's
//! size, components and restart interval without decoding it.
//!
//! The server needs this to describe a clip (dimensions in logs and SDP) and
//! to decide whether a frame can be sent as RFC 2435 as is (4:2:2 or 4:2:0
//! baseline) or must be re-encoded; decoding pixels stays with `image`.

/// Start of image.
pub const SOI: [u8; 2] = [0xFF, 0xD8];
/// End of image.
pub const EOI: [u8; 2] = [0xFF, 0xD9];

/// What [`inspect`] found in a JPEG's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u16,
    /// Zero when the height comes later in a DNL segment (rare, legal).
    pub height: u16,
    pub components: Vec<Component>,
    /// True for SOF0 (baseline DCT), the only process RFC 2435 can carry.
    pub baseline: bool,
    /// MCUs between restart markers, 0 when there is no DRI segment.
    pub restart_interval: u16,
}

/// One colour component from the frame header (SOFn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub id: u8,
    /// Horizontal sampling factor.
    pub h: u8,
    /// Vertical sampling factor.
    pub v: u8,
    /// Quantization table selector.
    pub tq: u8,
}

/// Why a JPEG's headers could not be read; offsets count from the first
/// byte of the JPEG (its FF D8) so they can be found in a hex dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("not a JPEG: it does not start with FF D8 (start of image)")]
    NotJpeg,
    #[error("byte {offset}: data ends inside {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("byte {offset}: expected a marker (FF xx), found {found:#04x}")]
    ExpectedMarker { offset: usize, found: u8 },
    #[error("byte {offset}: marker FF {marker:02X} is not allowed before the scan")]
    UnexpectedMarker { offset: usize, marker: u8 },
    #[error("byte {offset}: segment FF {marker:02X} has an impossible length {len}")]
    BadSegmentLength { offset: usize, marker: u8, len: u16 },
    #[error("byte {offset}: bad frame header (SOF): {reason}")]
    BadFrameHeader { offset: usize, reason: &'static str },
    #[error("byte {offset}: the image ends (FF D9) before any scan (SOS)")]
    EndBeforeScan { offset: usize },
    #[error("byte {offset}: a scan (SOS) comes before any frame header (SOFn)")]
    NoFrameHeader { offset: usize },
}

/// True when `jpeg` starts with SOI and ends with EOI: the cheap check that
/// a frame was neither cut short nor mis-split.
pub fn is_complete(jpeg: &[u8]) -> bool {
    jpeg.len() >= 4 && jpeg.starts_with(&SOI) && jpeg.ends_with(&EOI)
}

/// Reads the marker segments of `jpeg` up to its first scan (SOS).
///
/// Only the headers are read, so a JPEG whose entropy-coded data is cut
/// short still inspects fine; [`is_complete`] checks the end.
pub fn inspect(jpeg: &[u8]) -> Result<JpegInfo, JpegError> {
    if !jpeg.starts_with(&SOI) {
        return Err(JpegError::NotJpeg);
    }
    let mut frame: Option<JpegInfo> = None;
    let mut restart_interval = 0;
    let mut p = 2;
    loop {
        let marker_at = p;
        let first = *jpeg.get(p).ok_or(JpegError::Truncated {
            offset: p,
            what: "the marker segments before the scan",
        })?;
        if first != 0xFF {
            return Err(JpegError::ExpectedMarker {
                offset: p,
                found: first,
            });
        }
        // Any number of FF fill bytes may precede a marker code (T.81 B.1.1.2).
        while jpeg.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        let marker = *jpeg.get(p + 1).ok_or(JpegError::Truncated {
            offset: p + 1,
            what: "a marker",
        })?;
        match marker {
            0xD9 => return Err(JpegError::EndBeforeScan { offset: p }),
            0xD8 | 0x00 => {
                return Err(JpegError::UnexpectedMarker {
                    offset: marker_at,
                    marker,
                });
            }
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => {
                p += 2;
                continue;
            }
            _ => {}
        }
        let len = read_u16(jpeg, p + 2, "a segment length")?;
        if len < 2 {
            return Err(JpegError::BadSegmentLength {
                offset: p,
                marker,
                len,
            });
        }
        let body_start = p + 4;
        let end = p + 2 + usize::from(len);
        let body = jpeg.get(body_start..end).ok_or(JpegError::Truncated {
            offset: jpeg.len(),
            what: "a marker segment",
        })?;
        match marker {
            // SOFn; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are
            // not frame headers. Only the first frame header counts: a
            // second one is not legal and would not change what a decoder
            // shows.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && frame.is_none() => {
                frame = Some(parse_sof(body, body_start, marker == 0xC0)?);
            }
            0xDD => {
                restart_interval = read_u16(body, 0, "a DRI segment").map_err(|_| {
                    JpegError::BadSegmentLength {
                        offset: p,
                        marker,
                        len,
                    }
                })?;
            }
            0xDA => {
                let mut info = frame.ok_or(JpegError::NoFrameHeader { offset: p })?;
                info.restart_interval = restart_interval;
                return Ok(info);
            }
            _ => {}
        }
        p = end;
    }
}

fn parse_sof(body: &[u8], offset: usize, baseline: bool) -> Result<JpegInfo, JpegError> {
    let bad = |reason| JpegError::BadFrameHeader { offset, reason };
    if body.len() < 6 {
        return Err(bad("shorter than 6 bytes"));
    }
    let height = u16::from_be_bytes([body[1], body[2]]);
    let width = u16::from_be_bytes([body[3], body[4]]);
    let count = usize::from(body[5]);
    if width == 0 {
        return Err(bad("width is 0"));
    }
    if count == 0 {
        return Err(bad("no components"));
    }
    let specs = body
        .get(6..6 + 3 * count)
        .ok_or(bad("shorter than its component count says"))?;
    let components = specs
        .chunks_exact(3)
        .map(|c| Component {
            id: c[0],
            h: c[1] >> 4,
            v: c[1] & 0x0F,
            tq: c[2],
        })
        .collect();
    Ok(JpegInfo {
        width,
        height,
        components,
        baseline,
        restart_interval: 0,
    })
}

fn read_u16(bytes: &[u8], at: usize, what: &'static str) -> Result<u16, JpegError> {
    match bytes.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(JpegError::Truncated { offset: at, what }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal header: SOI, DRI, SOF0 (3 components), SOS, one data byte, EOI.
    fn tiny() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend([0xFF, 0xDD, 0x00, 0x04, 0x00, 0x08]);
        j.extend([0xFF, 0xC0, 0x00, 17, 8, 0x01, 0x20, 0x01, 0x80, 3]);
        j.extend([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend([0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0]);
        j.extend([0x12, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn reads_size_components_and_restart_interval() {
        let info = inspect(&tiny()).unwrap();
        assert_eq!((info.width, info.height), (384, 288));
        assert!(info.baseline);
        assert_eq!(info.restart_interval, 8);
        assert_eq!(
            info.components[0],
            Component {
                id: 1,
                h: 2,
                v: 2,
                tq: 0
            }
        );
        assert_eq!(info.components.len(), 3);
        assert!(is_complete(&tiny()));
    }

    #[test]
    fn skips_fill_bytes_and_app_segments() {
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9,
        ];
        j.extend_from_slice(&tiny()[2..]);
        assert_eq!(inspect(&j).unwrap().width, 384);
    }

    #[test]
    fn errors_carry_offsets() {
        assert_eq!(inspect(b"hello"), Err(JpegError::NotJpeg));
        let t = tiny();
        for cut in 2..t.len() - 3 {
            assert!(inspect(&t[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = tiny();
        bad[2] = 0x00;
        assert_eq!(
            inspect(&bad),
            Err(JpegError::ExpectedMarker {
                offset: 2,
                found: 0
            })
        );
        assert_eq!(
            inspect(&[0xFF, 0xD8, 0xFF, 0xD9]),
            Err(JpegError::EndBeforeScan { offset: 2 })
        );
        assert!(!is_complete(&[0xFF, 0xD8, 0xFF]));
        assert!(!is_complete(&t[..t.len() - 1]));
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_flip() {
        let t = tiny();
        for i in 0..t.len() {
            for v in [0x00, 0x01, 0xFF, 0xD9, 0xDA] {
                let mut m = t.clone();
                m[i] = v;
                let _ = inspect(&m);
            }
        }
    }
}
