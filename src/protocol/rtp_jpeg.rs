//! RTP payload format for JPEG (RFC 2435): what ffmpeg, GStreamer, VLC and
//! cameras send and expect. Only the entropy-coded scan travels, in
//! fragments behind an 8-byte header (type, Q, width/8, height/8, fragment
//! offset); the receiver rebuilds the JPEG headers from that, from the
//! quantisation tables (in-band when Q >= 128, computed from Q as the RFC's
//! appendix A does below 128) and from the standard Huffman tables, which is
//! why only baseline 4:2:2 / 4:2:0 JPEG with standard tables can travel.

use std::collections::HashMap;

use crate::protocol::rtp::{Accepted, DropReason, JpegFrame, MAX_FRAME, RtpHeader};

/// Size of the RFC 2435 main JPEG header.
pub const MAIN_HEADER_LEN: usize = 8;
/// Largest side the 8-bit width/8 and height/8 fields can say.
pub const MAX_SIDE: u16 = 2040;

/// The two chroma layouts RFC 2435 types 0 and 1 carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Type 0: luma sampled 2x1.
    Yuv422,
    /// Type 1: luma sampled 2x2.
    Yuv420,
}

impl Layout {
    fn type_code(self) -> u8 {
        match self {
            Layout::Yuv422 => 0,
            Layout::Yuv420 => 1,
        }
    }
}

/// Why a JPEG cannot travel as RFC 2435 as it is (it must be re-encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarryError {
    #[error("not a JPEG (no FFD8 at the start)")]
    NotJpeg,
    #[error("byte {offset}: {what}")]
    Malformed { offset: usize, what: &'static str },
    #[error("not baseline JPEG (SOF{0})")]
    NotBaseline(u8),
    #[error("{0} components; RFC 2435 carries 3 (YCbCr)")]
    Components(usize),
    #[error("sampling {0} is neither 4:2:2 nor 4:2:0")]
    Sampling(String),
    #[error("quantisation tables are 16-bit, or Cb and Cr use different ones")]
    Tables,
    #[error("Huffman tables are not the standard ones")]
    Huffman,
    #[error("the scan is not one interleaved scan of all components with standard table ids")]
    Scan,
}

/// A JPEG ready to travel: the fields of the RFC 2435 headers and the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carriable<'a> {
    pub layout: Layout,
    pub width: u16,
    pub height: u16,
    pub restart_interval: u16,
    /// Luma then chroma table, 64 bytes each, in zigzag order (as in DQT).
    pub tables: [[u8; 64]; 2],
    /// The entropy-coded data, restart markers included, without EOI.
    pub scan: &'a [u8],
}

/// A SOF component: id, horizontal and vertical sampling, table.
type FrameComponent = (u8, u8, u8, u8);

/// Read a JPEG's markers and say whether and how it can travel as RFC 2435.
pub fn carriable(jpeg: &[u8]) -> Result<Carriable<'_>, CarryError> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err(CarryError::NotJpeg);
    }
    let mut qt: [Option<[u8; 64]>; 4] = [None; 4];
    let mut sof: Option<(u16, u16, Vec<FrameComponent>)> = None;
    let mut restart_interval = 0u16;
    let mut at = 2;
    loop {
        // Skip fill bytes before a marker.
        while jpeg.get(at) == Some(&0xff) && jpeg.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        let here = at;
        let malformed = move |what| CarryError::Malformed { offset: here, what };
        let (Some(&0xff), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err(malformed("expected a marker"));
        };
        if marker == 0xd9 {
            return Err(malformed("EOI before any scan"));
        }
        let len_bytes = jpeg
            .get(at + 2..at + 4)
            .ok_or_else(|| malformed("truncated marker length"))?;
        let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
        if len < 2 {
            return Err(malformed("marker length below 2"));
        }
        let body = jpeg
            .get(at + 4..at + 2 + len)
            .ok_or_else(|| malformed("marker segment runs past the end"))?;
        match marker {
            0xc0 => {
                if body.len() < 6 {
                    return Err(malformed("short SOF"));
                }
                if body[0] != 8 {
                    return Err(CarryError::Tables);
                }
                let height = u16::from_be_bytes([body[1], body[2]]);
                let width = u16::from_be_bytes([body[3], body[4]]);
                let n = body[5] as usize;
                let comps = body
                    .get(6..6 + 3 * n)
                    .ok_or_else(|| malformed("short SOF components"))?;
                let comps = comps
                    .chunks(3)
                    .map(|c| (c[0], c[1] >> 4, c[1] & 15, c[2]))
                    .collect();
                sof = Some((width, height, comps));
            }
            0xc1..=0xcf if marker != 0xc4 && marker != 0xc8 && marker != 0xcc => {
                return Err(CarryError::NotBaseline(marker - 0xc0));
            }
            0xdb => {
                let mut t = body;
                while !t.is_empty() {
                    let (pq, tq) = (t[0] >> 4, (t[0] & 15) as usize);
                    if pq != 0 || tq > 3 {
                        return Err(CarryError::Tables);
                    }
                    let table = t.get(1..65).ok_or_else(|| malformed("short DQT"))?;
                    let mut q = [0u8; 64];
                    q.copy_from_slice(table);
                    qt[tq] = Some(q);
                    t = &t[65..];
                }
            }
            0xc4 => check_standard_huffman(body)?,
            0xdd => {
                if body.len() < 2 {
                    return Err(malformed("short DRI"));
                }
                restart_interval = u16::from_be_bytes([body[0], body[1]]);
            }
            0xda => {
                let (width, height, comps) = sof.ok_or_else(|| malformed("SOS before SOF"))?;
                let scan_start = at + 2 + len;
                return finish(
                    jpeg,
                    scan_start,
                    body,
                    width,
                    height,
                    &comps,
                    &qt,
                    restart_interval,
                );
            }
            _ => {}
        }
        at += 2 + len;
    }
}

#[allow(clippy::too_many_arguments)]
fn finish<'a>(
    jpeg: &'a [u8],
    scan_start: usize,
    sos: &[u8],
    width: u16,
    height: u16,
    comps: &[FrameComponent],
    qt: &[Option<[u8; 64]>; 4],
    restart_interval: u16,
) -> Result<Carriable<'a>, CarryError> {
    if comps.len() != 3 {
        return Err(CarryError::Components(comps.len()));
    }
    let (y, cb, cr) = (comps[0], comps[1], comps[2]);
    let layout = match (y.1, y.2, cb.1, cb.2, cr.1, cr.2) {
        (2, 1, 1, 1, 1, 1) => Layout::Yuv422,
        (2, 2, 1, 1, 1, 1) => Layout::Yuv420,
        _ => {
            return Err(CarryError::Sampling(format!(
                "{}x{},{}x{},{}x{}",
                y.1, y.2, cb.1, cb.2, cr.1, cr.2
            )));
        }
    };
    // Cb and Cr must share a table: RFC 2435 carries one for luma and one
    // for chroma. Luma may share it too (ffmpeg's MJPEG encoder writes one
    // table for all three): it then travels as both, and the receiver's
    // rebuilt header gives every component the same values, as the file did.
    if cb.3 != cr.3 {
        return Err(CarryError::Tables);
    }
    let (Some(luma), Some(chroma)) = (qt[y.3 as usize & 3], qt[cb.3 as usize & 3]) else {
        return Err(CarryError::Tables);
    };
    // One scan, all three components in frame order, tables 0 for luma and
    // 1 for chroma: what the receiver's rebuilt header will say.
    if sos.first() != Some(&3) || sos.len() < 1 + 6 + 3 {
        return Err(CarryError::Scan);
    }
    let ids = [(sos[1], sos[2]), (sos[3], sos[4]), (sos[5], sos[6])];
    let want = [(y.0, 0x00), (cb.0, 0x11), (cr.0, 0x11)];
    if ids != want || sos[7..10] != [0, 63, 0] {
        return Err(CarryError::Scan);
    }
    let mut end = jpeg.len();
    while end > scan_start && jpeg[end - 1] != 0xd9 {
        end -= 1;
    }
    // Trailing bytes after EOI are ignored; the EOI itself does not travel.
    let end = if end >= scan_start + 2 && jpeg[end - 2] == 0xff {
        end - 2
    } else {
        jpeg.len()
    };
    Ok(Carriable {
        layout,
        width,
        height,
        restart_interval,
        tables: [luma, chroma],
        scan: &jpeg[scan_start..end],
    })
}

fn check_standard_huffman(mut body: &[u8]) -> Result<(), CarryError> {
    while !body.is_empty() {
        let class_id = body[0];
        let counts = body.get(1..17).ok_or(CarryError::Huffman)?;
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        let symbols = body.get(17..17 + n).ok_or(CarryError::Huffman)?;
        let standard = match class_id {
            0x00 => (&LUM_DC_BITS[..], &LUM_DC_VALS[..]),
            0x10 => (&LUM_AC_BITS[..], &LUM_AC_VALS[..]),
            0x01 => (&CHM_DC_BITS[..], &CHM_DC_VALS[..]),
            0x11 => (&CHM_AC_BITS[..], &CHM_AC_VALS[..]),
            _ => return Err(CarryError::Huffman),
        };
        if counts != standard.0 || symbols != standard.1 {
            return Err(CarryError::Huffman);
        }
        body = &body[17 + n..];
    }
    Ok(())
}

/// Split a carriable JPEG into RFC 2435 packets of at most `max_payload`
/// bytes of RTP payload (the first carries the 128 bytes of tables and at
/// least one byte of scan, so it may exceed a `max_payload` below 145),
/// tables in-band (Q 255) in the first, the marker bit on the last.
/// Returns the next sequence number.
pub fn packetize(
    frame: &Carriable<'_>,
    max_payload: usize,
    mut header: RtpHeader,
    mut emit: impl FnMut(&[u8]),
) -> u16 {
    let restart = frame.restart_interval != 0;
    let type_code = frame.layout.type_code() + if restart { 64 } else { 0 };
    let side = |v: u16| if v > MAX_SIDE { 0 } else { v.div_ceil(8) as u8 };
    let mut buf = Vec::with_capacity(max_payload + 12);
    let mut offset = 0usize;
    loop {
        buf.clear();
        header.marker = false;
        header.write(&mut buf);
        let marker_at = 1;
        buf.push(0);
        buf.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
        buf.extend_from_slice(&[type_code, 255, side(frame.width), side(frame.height)]);
        if restart {
            buf.extend_from_slice(&frame.restart_interval.to_be_bytes());
            // F=1, L=1, count 0x3FFF: fragments need not align with intervals.
            buf.extend_from_slice(&[0xff, 0xff]);
        }
        if offset == 0 {
            buf.extend_from_slice(&[0, 0, 0, 128]);
            buf.extend_from_slice(&frame.tables[0]);
            buf.extend_from_slice(&frame.tables[1]);
        }
        let room = (max_payload + 12).saturating_sub(buf.len()).max(1);
        let take = room.min(frame.scan.len() - offset);
        buf.extend_from_slice(&frame.scan[offset..offset + take]);
        offset += take;
        let last = offset >= frame.scan.len();
        if last {
            buf[marker_at] |= 0x80;
        }
        emit(&buf);
        header.sequence = header.sequence.wrapping_add(1);
        if last {
            return header.sequence;
        }
    }
}

/// A frame being rebuilt.
#[derive(Debug)]
struct Partial {
    timestamp: u32,
    seq: u16,
    headers: Vec<u8>,
    data: Vec<u8>,
}

/// Rebuilds JPEG frames from RFC 2435 packets (and from whole-JPEG
/// payloads, which some senders wrongly put behind the RFC 2435 header).
#[derive(Debug, Default)]
pub struct Depacketizer {
    /// Size from the SDP (`a=x-dimensions`), for sides over 2040.
    dimensions: Option<(u16, u16)>,
    /// Tables seen per Q in 128..=254, for frames that omit them.
    tables: HashMap<u8, Vec<u8>>,
    partial: Option<Partial>,
}

impl Depacketizer {
    pub fn new(dimensions: Option<(u16, u16)>) -> Self {
        Depacketizer {
            dimensions,
            ..Default::default()
        }
    }

    /// Push an accepted packet; a whole frame comes out with the last one.
    pub fn push(&mut self, acc: &Accepted<'_>) -> Result<Option<JpegFrame>, DropReason> {
        let h = acc.packet.header;
        let p = acc.packet.payload;
        if p.len() < MAIN_HEADER_LEN {
            self.partial = None;
            return Err(DropReason::TooShort);
        }
        let offset = u32::from_be_bytes([0, p[1], p[2], p[3]]) as usize;
        let (type_code, q, w8, h8) = (p[4], p[5], p[6], p[7]);
        let mut at = MAIN_HEADER_LEN;
        let mut restart_interval = 0u16;
        if (64..128).contains(&type_code) {
            let r = p.get(at..at + 4).ok_or(DropReason::TooShort)?;
            restart_interval = u16::from_be_bytes([r[0], r[1]]);
            at += 4;
        }
        let lost_before = acc.lost > 0;
        if offset == 0 {
            let had_partial = self.partial.take().is_some();
            let mut tables = None;
            if q >= 128 {
                let qh = p.get(at..at + 4).ok_or(DropReason::TooShort)?;
                let len = u16::from_be_bytes([qh[2], qh[3]]) as usize;
                at += 4;
                if len > 0 {
                    let t = p.get(at..at + len).ok_or(DropReason::TooShort)?;
                    at += len;
                    if qh[1] != 0 || !len.is_multiple_of(64) {
                        return Err(DropReason::NotJpeg);
                    }
                    if q < 255 {
                        self.tables.insert(q, t.to_vec());
                    }
                    tables = Some(t.to_vec());
                } else {
                    tables = self.tables.get(&q).cloned();
                }
            } else if q >= 1 {
                tables = Some(make_tables(q));
            }
            let data = &p[at..];
            if data.starts_with(&[0xff, 0xd8]) {
                // A whole JPEG behind the header: take it as it is.
                let partial = Partial {
                    timestamp: h.timestamp,
                    seq: h.sequence,
                    headers: Vec::new(),
                    data: data.to_vec(),
                };
                return self.continue_or_finish(partial, h, had_partial);
            }
            let Some(tables) = tables else {
                return Err(DropReason::Fragment);
            };
            // Types 128-255 are assigned per session by other means; only
            // 0/1 and their restart-marker forms 64/65 are understood.
            let layout = match type_code {
                0 | 64 => Layout::Yuv422,
                1 | 65 => Layout::Yuv420,
                _ => return Err(DropReason::NotJpeg),
            };
            let (mut width, mut height) = (w8 as u16 * 8, h8 as u16 * 8);
            if let Some((dw, dh)) = self.dimensions
                && (width == 0 || height == 0)
            {
                (width, height) = (dw, dh);
            }
            if width == 0 || height == 0 {
                return Err(DropReason::NotJpeg);
            }
            let headers = make_headers(layout, width, height, &tables, restart_interval);
            let partial = Partial {
                timestamp: h.timestamp,
                seq: h.sequence,
                headers,
                data: data.to_vec(),
            };
            return self.continue_or_finish(partial, h, had_partial);
        }
        let Some(mut partial) = self.partial.take() else {
            return Err(DropReason::Fragment);
        };
        if lost_before || partial.timestamp != h.timestamp || partial.data.len() != offset {
            return Err(DropReason::Fragment);
        }
        if partial.headers.len() + partial.data.len() + p.len() > MAX_FRAME {
            return Err(DropReason::FrameTooLarge);
        }
        partial.data.extend_from_slice(&p[at..]);
        self.continue_or_finish(partial, h, false)
    }

    fn continue_or_finish(
        &mut self,
        mut partial: Partial,
        h: RtpHeader,
        dropped_earlier: bool,
    ) -> Result<Option<JpegFrame>, DropReason> {
        if !h.marker {
            self.partial = Some(partial);
            return if dropped_earlier {
                Err(DropReason::Fragment)
            } else {
                Ok(None)
            };
        }
        let mut jpeg = std::mem::take(&mut partial.headers);
        jpeg.extend_from_slice(&partial.data);
        if !jpeg.ends_with(&[0xff, 0xd9]) {
            jpeg.extend_from_slice(&[0xff, 0xd9]);
        }
        Ok(Some(JpegFrame {
            jpeg,
            seq: partial.seq,
            timestamp: partial.timestamp,
        }))
    }
}

/// RFC 2435 appendix A: quantisation tables for Q 1..=99, in zigzag order.
pub fn make_tables(q: u8) -> Vec<u8> {
    let factor = q.clamp(1, 99) as u32;
    let scale = if factor < 50 {
        5000 / factor
    } else {
        200 - factor * 2
    };
    let mut out = Vec::with_capacity(128);
    for base in [&LUMA_Q, &CHROMA_Q] {
        for &z in ZIGZAG.iter() {
            let v = (base[z as usize] as u32 * scale + 50) / 100;
            out.push(v.clamp(1, 255) as u8);
        }
    }
    out
}

/// RFC 2435 appendix B: the JPEG headers a receiver rebuilds (SOI, DQT,
/// SOF0, DHT, DRI, SOS) for component ids 0, 1, 2.
pub fn make_headers(
    layout: Layout,
    width: u16,
    height: u16,
    tables: &[u8],
    restart_interval: u16,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(700);
    h.extend_from_slice(&[0xff, 0xd8]);
    // One DQT per 64-byte table: luma is 0, chroma 1 (or 0 again if only
    // one table came).
    for (i, t) in tables.chunks(64).take(2).enumerate() {
        h.extend_from_slice(&[0xff, 0xdb, 0, 67, i as u8]);
        h.extend_from_slice(t);
    }
    let chroma_table = if tables.len() >= 128 { 1 } else { 0 };
    let luma_sampling = match layout {
        Layout::Yuv422 => 0x21,
        Layout::Yuv420 => 0x22,
    };
    h.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
    h.extend_from_slice(&height.to_be_bytes());
    h.extend_from_slice(&width.to_be_bytes());
    h.extend_from_slice(&[
        3,
        0,
        luma_sampling,
        0,
        1,
        0x11,
        chroma_table,
        2,
        0x11,
        chroma_table,
    ]);
    standard_huffman_segments(&mut h);
    if restart_interval != 0 {
        h.extend_from_slice(&[0xff, 0xdd, 0, 4]);
        h.extend_from_slice(&restart_interval.to_be_bytes());
    }
    h.extend_from_slice(&[0xff, 0xda, 0, 12, 3, 0, 0x00, 1, 0x11, 2, 0x11, 0, 63, 0]);
    h
}

/// The four DHT segments of JPEG Annex K's standard Huffman tables (luma
/// and chroma, DC and AC), as RFC 2435 receivers assume them: what a
/// rebuilt header holds, and what a camera's MJPEG without tables needs.
pub fn standard_huffman_segments(out: &mut Vec<u8>) {
    for (class_id, bits, vals) in [
        (0x00, &LUM_DC_BITS[..], &LUM_DC_VALS[..]),
        (0x10, &LUM_AC_BITS[..], &LUM_AC_VALS[..]),
        (0x01, &CHM_DC_BITS[..], &CHM_DC_VALS[..]),
        (0x11, &CHM_AC_BITS[..], &CHM_AC_VALS[..]),
    ] {
        let len = 2 + 1 + bits.len() + vals.len();
        out.extend_from_slice(&[0xff, 0xc4]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(class_id);
        out.extend_from_slice(bits);
        out.extend_from_slice(vals);
    }
}

/// Natural-order index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// JPEG Annex K.1 luminance quantisation table, natural order.
const LUMA_Q: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// JPEG Annex K.2 chrominance quantisation table, natural order.
const CHROMA_Q: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

// JPEG Annex K.3: the standard Huffman tables (code counts per length 1..16,
// then symbols).
const LUM_DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const LUM_DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const CHM_DC_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const CHM_DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const LUM_AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const LUM_AC_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const CHM_AC_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const CHM_AC_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtp::{PT_JPEG, RtpChecker, SsrcRule};

    #[test]
    fn huffman_tables_are_complete() {
        for (bits, n) in [
            (&LUM_DC_BITS, 12),
            (&CHM_DC_BITS, 12),
            (&LUM_AC_BITS, 162),
            (&CHM_AC_BITS, 162),
        ] {
            assert_eq!(bits.iter().map(|&b| b as usize).sum::<usize>(), n);
        }
    }

    #[test]
    fn q50_tables_are_annex_k() {
        let t = make_tables(50);
        assert_eq!(t[0], 16);
        assert_eq!(t[1], 11);
        assert_eq!(t[2], 12);
        assert_eq!(t[64], 17);
        assert!(make_tables(1).iter().all(|&v| v >= 1));
    }

    /// Build a minimal carriable JPEG from rebuilt headers plus a fake scan.
    fn synthetic(layout: Layout, restart: u16, scan: &[u8]) -> Vec<u8> {
        let mut j = make_headers(layout, 320, 240, &make_tables(75), restart);
        j.extend_from_slice(scan);
        j.extend_from_slice(&[0xff, 0xd9]);
        j
    }

    #[test]
    fn rebuilt_headers_are_carriable_and_round_trip_through_packets() {
        let scan: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for (layout, restart) in [(Layout::Yuv420, 0), (Layout::Yuv422, 4)] {
            let jpeg = synthetic(layout, restart, &scan);
            let c = carriable(&jpeg).unwrap();
            assert_eq!((c.layout, c.width, c.height), (layout, 320, 240));
            assert_eq!(c.restart_interval, restart);
            assert_eq!(c.scan, &scan[..]);
            let mut packets = Vec::new();
            let header = RtpHeader {
                marker: false,
                payload_type: PT_JPEG,
                sequence: 65530,
                timestamp: 9000,
                ssrc: 1,
            };
            packetize(&c, 1400, header, |p| packets.push(p.to_vec()));
            assert!(packets.len() >= 4);
            assert!(packets.iter().all(|p| p.len() <= 1400 + 12));
            let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
            let mut d = Depacketizer::new(None);
            let mut out = None;
            for p in &packets {
                let acc = checker.check(p).unwrap();
                if let Some(f) = d.push(&acc).unwrap() {
                    out = Some(f);
                }
            }
            // With Q 255 the receiver rebuilds exactly the headers we built.
            assert_eq!(out.unwrap().jpeg, jpeg);
        }
    }

    #[test]
    fn a_lost_fragment_drops_the_frame() {
        let scan = vec![7u8; 4000];
        let jpeg = synthetic(Layout::Yuv420, 0, &scan);
        let c = carriable(&jpeg).unwrap();
        let mut packets = Vec::new();
        let header = RtpHeader {
            marker: false,
            payload_type: PT_JPEG,
            sequence: 1,
            timestamp: 1,
            ssrc: 1,
        };
        packetize(&c, 1000, header, |p| packets.push(p.to_vec()));
        packets.remove(2);
        let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = Depacketizer::new(None);
        let results: Vec<_> = packets
            .iter()
            .map(|p| d.push(&checker.check(p).unwrap()))
            .collect();
        assert!(results.iter().all(|r| !matches!(r, Ok(Some(_)))));
        assert!(results.contains(&Err(DropReason::Fragment)));
    }

    /// ffmpeg's MJPEG encoder writes one quantisation table for all three
    /// components: it travels as is, the one table as both luma and chroma.
    #[test]
    fn one_table_for_every_component_travels_as_both() {
        let tables = make_tables(75);
        let mut jpeg = make_headers(Layout::Yuv420, 320, 240, &tables[..64], 0);
        let scan = vec![5u8; 3000];
        jpeg.extend_from_slice(&scan);
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        let c = carriable(&jpeg).unwrap();
        assert_eq!(c.tables[0][..], tables[..64]);
        assert_eq!(c.tables[1][..], tables[..64]);
        assert_eq!(c.scan, &scan[..]);
        // Cb and Cr on different tables still cannot travel.
        let mut two = make_headers(Layout::Yuv420, 320, 240, &tables, 0);
        let sof = two.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        // Components start 10 bytes after the marker: id, sampling, table.
        assert_eq!(two[sof + 18], 1, "Cr's table");
        two[sof + 18] = 0;
        two.extend_from_slice(&[1, 2, 0xff, 0xd9]);
        assert_eq!(carriable(&two).err(), Some(CarryError::Tables));
    }

    #[test]
    fn refuses_what_cannot_travel() {
        let mut j = synthetic(Layout::Yuv420, 0, &[1, 2, 3]);
        // Make luma 1x1: 4:4:4.
        let sof = j.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        j[sof + 11] = 0x11;
        assert!(matches!(carriable(&j), Err(CarryError::Sampling(_))));
        assert_eq!(carriable(b"nope"), Err(CarryError::NotJpeg));
    }

    #[test]
    fn wide_frames_say_zero_and_take_the_sdp_size() {
        let mut jpeg = make_headers(Layout::Yuv420, 4096, 2160, &make_tables(75), 0);
        jpeg.extend_from_slice(&[1, 2, 3, 0xff, 0xd9]);
        let c = carriable(&jpeg).unwrap();
        let mut packets = Vec::new();
        let header = RtpHeader {
            marker: false,
            payload_type: PT_JPEG,
            sequence: 1,
            timestamp: 1,
            ssrc: 1,
        };
        packetize(&c, 1400, header, |p| packets.push(p.to_vec()));
        assert_eq!(packets[0][12 + 6], 0);
        let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = Depacketizer::new(Some((4096, 2160)));
        let f = d
            .push(&checker.check(&packets[0]).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(f.jpeg, jpeg);
    }
}
