//! A moving test pattern with a large frame counter, and writing it out as
//! an MJPEG clip in either framing.
//!
//! The counter makes lost, repeated or reordered frames visible by eye (and
//! in screenshots); the moving box makes stalls and judder visible. The
//! digits come from a built-in 5x7 bitmap font so no font file or text
//! rendering crate is needed.

use std::io::{self, Write};

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

use crate::media::mjpeg_file::{Framing, MAX_DIGITS, MediaError};

/// SMPTE-style bars: white, yellow, cyan, green, magenta, red, blue.
const BARS: [[u8; 3]; 7] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
];

/// 5x7 glyphs for 0-9, one row per byte, bit 4 is the leftmost pixel.
const DIGITS: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
];

/// JPEG block size. Edges that fall on block boundaries leave the blocks
/// flat, which roughly halves the size of a frame (the bundled sample must
/// stay small).
const BLOCK: i64 = 8;

/// Rounds down to a block edge (negative values stay as they are).
fn snap(v: i64) -> i64 {
    if v > 0 { v - v % BLOCK } else { v }
}

/// Frames the box takes to cross the picture: 5 s at the lab's 20 fps.
const BOX_PERIOD: u64 = 100;

/// Test pattern frame `index`: colour bars over a grey ramp, a box moving
/// left to right, and `index` in large digits on a black panel.
pub fn pattern_rgb(index: u32, width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    let (w, h) = (i64::from(width), i64::from(height));
    let bars_h = h * 2 / 3;

    for (x, y, px) in img.enumerate_pixels_mut() {
        let (x, y) = (i64::from(x), i64::from(y));
        *px = if y < bars_h {
            // Bar edges snap to block columns (see BLOCK).
            let bx = x - x % BLOCK;
            Rgb(BARS[usize::try_from(bx * 7 / w).unwrap_or(0).min(6)])
        } else {
            let v = u8::try_from(x * 255 / (w - 1).max(1)).unwrap_or(u8::MAX);
            Rgb([v, v, v])
        };
    }

    // The box lives in the ramp band so it never hides the counter.
    let band = h - bars_h;
    let side = snap((band * 3 / 4).min(w / 4)).max(2);
    let travel = w + side;
    let phase = u64::from(index) % BOX_PERIOD;
    let x0 = i64::try_from(phase).unwrap_or(0) * travel / BOX_PERIOD as i64 - side;
    let y0 = bars_h + snap((band - side) / 2);
    let border = (side / 12).max(1);
    fill_rect(&mut img, x0, y0, side, side, [0, 0, 0]);
    fill_rect(
        &mut img,
        x0 + border,
        y0 + border,
        side - 2 * border,
        side - 2 * border,
        [255, 96, 0],
    );

    draw_number(&mut img, index, bars_h);
    img
}

/// Draws `n` centred in the top `area_h` rows, as large as fits.
fn draw_number(img: &mut RgbImage, n: u32, area_h: i64) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let text = n.to_string();
    let count = text.len() as i64;
    // Glyph cells are 6 units wide (5 + 1 space); the panel adds one unit of
    // margin on each side.
    let units_w = count * 6 + 1;
    let units_h = 7 + 2;
    let scale = (area_h * 9 / 10 / units_h)
        .min(w * 95 / 100 / units_w)
        .max(1);
    // Whole blocks per font pixel keep the glyph edges on block boundaries.
    let scale = if scale >= BLOCK { snap(scale) } else { scale };
    let panel_w = units_w * scale;
    let panel_h = units_h * scale;
    let px = snap((w - panel_w) / 2);
    let py = snap(((area_h.min(h) - panel_h) / 2).max(0));
    fill_rect(img, px, py, panel_w, panel_h, [0, 0, 0]);
    for (i, ch) in text.bytes().enumerate() {
        let glyph = &DIGITS[usize::from(ch - b'0')];
        draw_glyph(img, glyph, px + (1 + 6 * i as i64) * scale, py, scale);
    }
}

/// One 5x7 glyph in white, its cell's top-left at (`x`, `y` less one
/// font pixel of margin), each font pixel `scale` pixels.
fn draw_glyph(img: &mut RgbImage, glyph: &[u8; 7], x: i64, y: i64, scale: i64) {
    for (row, bits) in glyph.iter().enumerate() {
        for col in 0..5 {
            if bits & (0x10 >> col) != 0 {
                fill_rect(
                    img,
                    x + col * scale,
                    y + (1 + row as i64) * scale,
                    scale,
                    scale,
                    [255, 255, 255],
                );
            }
        }
    }
}

/// 5x7 glyphs for `:` and `.`, as [`DIGITS`].
const COLON: [u8; 7] = [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00];
const DOT: [u8; 7] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C];

/// Draws `text` (digits, `:` and `.`; anything else is a space) in white
/// on a black strip, top-left at (`x`, `y`), each font pixel `scale`
/// pixels: the wall-clock time a live test pattern burns in.
pub fn draw_text(img: &mut RgbImage, text: &str, x: i64, y: i64, scale: i64) {
    let scale = scale.max(1);
    let cells = text.chars().count() as i64;
    fill_rect(img, x, y, (cells * 6 + 1) * scale, 9 * scale, [0, 0, 0]);
    for (i, ch) in text.chars().enumerate() {
        let glyph = match ch {
            '0'..='9' => &DIGITS[ch as usize - '0' as usize],
            ':' => &COLON,
            '.' => &DOT,
            _ => continue,
        };
        draw_glyph(img, glyph, x + (1 + 6 * i as i64) * scale, y, scale);
    }
}

/// Fills a rectangle, clipped to the image, so callers can draw partly
/// outside (the box entering and leaving, tiny pictures).
fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
    let x_end = (x + w).min(i64::from(img.width()));
    let y_end = (y + h).min(i64::from(img.height()));
    for yy in y.max(0)..y_end {
        for xx in x.max(0)..x_end {
            // Both are within the image after clipping, so they fit in u32.
            if let (Ok(xx), Ok(yy)) = (u32::try_from(xx), u32::try_from(yy)) {
                img.put_pixel(xx, yy, Rgb(color));
            }
        }
    }
}

/// Encodes `img` as a baseline JPEG (4:4:4, standard Huffman tables, like
/// the lab's movie.Mjpeg); `quality` is clamped to 1..=100.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)).encode_image(img)?;
    Ok(out)
}

/// Writes one frame in `framing`: for the lab framing its length as
/// zero-padded decimal first. Fails with `InvalidInput` when the length does
/// not fit in the digits, since a truncated length would corrupt the file.
pub fn write_frame(out: &mut impl Write, jpeg: &[u8], framing: Framing) -> io::Result<()> {
    if let Framing::Lab { digits } = framing {
        let len = jpeg.len().to_string();
        if !(1..=MAX_DIGITS).contains(&digits) || len.len() > digits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}-byte frame does not fit in {digits} length digits (1 to {MAX_DIGITS})",
                    jpeg.len()
                ),
            ));
        }
        write!(out, "{len:0>digits$}")?;
    }
    out.write_all(jpeg)
}

/// Writes `frames` test pattern frames as an MJPEG clip and returns the
/// number of bytes written.
pub fn make_clip(
    out: &mut impl Write,
    frames: u32,
    width: u32,
    height: u32,
    quality: u8,
    framing: Framing,
) -> Result<u64, MediaError> {
    let prefix = match framing {
        Framing::Lab { digits } if !(1..=MAX_DIGITS).contains(&digits) => {
            return Err(MediaError::BadDigits { digits });
        }
        Framing::Lab { digits } => digits,
        Framing::Raw => 0,
    };
    if !(1..=u32::from(u16::MAX)).contains(&width) || !(1..=u32::from(u16::MAX)).contains(&height) {
        return Err(MediaError::BadClipSize { width, height });
    }
    let mut written = 0u64;
    for index in 0..frames {
        let jpeg = encode_jpeg(&pattern_rgb(index, width, height), quality)
            .map_err(|source| MediaError::Encode { index, source })?;
        if prefix > 0 && jpeg.len().to_string().len() > prefix {
            return Err(MediaError::FrameDoesNotFit {
                index,
                len: jpeg.len(),
                digits: prefix,
            });
        }
        write_frame(out, &jpeg, framing).map_err(|source| MediaError::Write { source })?;
        written += (prefix + jpeg.len()) as u64;
    }
    out.flush().map_err(|source| MediaError::Write { source })?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MjpegFile;
    use crate::media::jpeg;

    #[test]
    fn frames_differ_and_have_the_requested_size() {
        for (w, h) in [
            (320, 240),
            (1920, 1080),
            (1, 1),
            (0, 0),
            (0, 9),
            (7, 3),
            (64, 2000),
        ] {
            let a = pattern_rgb(0, w, h);
            assert_eq!(a.dimensions(), (w, h));
            if w > 16 {
                assert_ne!(a, pattern_rgb(1, w, h));
            }
        }
        // Large indexes (10 digits) still draw without panicking.
        let _ = pattern_rgb(u32::MAX, 320, 240);
    }

    #[test]
    fn counter_is_drawn_in_white_on_black() {
        let img = pattern_rgb(8, 320, 240);
        // The middle of an "8" is lit; the panel around it is black.
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let black = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(white > 1000 && black > 1000, "white {white} black {black}");
    }

    #[test]
    fn lab_prefix_is_zero_padded_and_bounded() {
        let mut out = Vec::new();
        write_frame(
            &mut out,
            &[0xFF, 0xD8, 0xFF, 0xD9],
            Framing::Lab { digits: 5 },
        )
        .unwrap();
        assert_eq!(out, b"00004\xFF\xD8\xFF\xD9");
        let big = vec![0u8; 100_000];
        let err = write_frame(&mut Vec::new(), &big, Framing::Lab { digits: 5 }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(write_frame(&mut Vec::new(), &[1], Framing::Lab { digits: 0 }).is_err());
        let mut raw = Vec::new();
        write_frame(&mut raw, &[1, 2], Framing::Raw).unwrap();
        assert_eq!(raw, [1, 2]);
    }

    #[test]
    fn clip_reads_back_in_both_framings() {
        for framing in [Framing::Lab { digits: 6 }, Framing::Raw] {
            let mut out = Vec::new();
            let n = make_clip(&mut out, 3, 64, 48, 50, framing).unwrap();
            assert_eq!(n, out.len() as u64);
            let clip = MjpegFile::from_bytes("clip", out.into()).unwrap();
            assert_eq!(clip.framing(), framing);
            assert_eq!(clip.index_all().unwrap(), 3);
            assert_eq!(clip.dimensions(), Some((64, 48)));
            let info = jpeg::inspect(&clip.frame(2).unwrap().unwrap()).unwrap();
            assert!(info.baseline);
        }
    }

    #[test]
    fn clip_parameters_are_checked() {
        let mut out = Vec::new();
        let bad = |r: Result<u64, MediaError>| r.unwrap_err().to_string();
        assert!(bad(make_clip(&mut out, 1, 0, 10, 70, Framing::Raw)).contains("0x10"));
        assert!(
            bad(make_clip(
                &mut out,
                1,
                8,
                8,
                70,
                Framing::Lab { digits: 11 }
            ))
            .contains("11")
        );
        let e = bad(make_clip(
            &mut out,
            1,
            640,
            480,
            100,
            Framing::Lab { digits: 2 },
        ));
        assert!(e.contains("does not fit in 2 length digits"), "{e}");
    }
}
