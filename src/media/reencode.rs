//! Re-encoding one JPEG into the form RTP/JPEG (RFC 2435) can carry:
//! baseline 8-bit YCbCr 4:2:0 with the standard Huffman tables and one
//! interleaved scan. Pure: bytes in, bytes out, the same bytes every time
//! for the same input.

use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::protocol::rtp_jpeg::CarryError;

/// Quality of re-encoded frames (jpeg-encoder's 1..=100 scale, libjpeg
/// style). At 90 movie.Mjpeg's frames stay within 0.5 levels of their
/// source on average (PSNR 47.5 dB, worst frame 44.6 dB; see
/// tests/rtp_ready.rs) for 12 KB a frame against the source's 8.5 KB. 95
/// gains only 1.4 dB for 26% more bytes, and 75 or 85 lose 1 dB while
/// saving little: the 4:2:0 chroma halving RFC 2435 forces dominates.
pub const RTP_QUALITY: u8 = 90;

/// Largest side decoded for re-encoding: bounds the RGB buffer (8192² x 3
/// is 192 MiB) against a hostile or corrupt SOF.
const MAX_DECODE_SIDE: usize = 8192;

/// Why one JPEG could not be re-encoded.
#[derive(Debug, thiserror::Error)]
pub enum ReencodeError {
    #[error("it does not decode: {0}")]
    Decode(String),
    #[error("it decodes to {width}x{height}, over the 65535 pixels a JPEG side can have")]
    TooLarge { width: usize, height: usize },
    #[error("it decodes to {got} bytes of RGB, not the {want} that {width}x{height} needs")]
    ShortImage {
        width: usize,
        height: usize,
        got: usize,
        want: usize,
    },
    #[error("it cannot be encoded again: {0}")]
    Encode(#[from] jpeg_encoder::EncodingError),
}

/// Decodes `jpeg` and encodes it again as baseline 4:2:0 JPEG with the
/// standard (Annex K) Huffman tables and one interleaved scan, which
/// [`crate::protocol::rtp_jpeg::carriable`] accepts. Any size works; odd
/// sides are padded inside the encoder's MCUs, not in the picture.
pub fn reencode_for_rtp(jpeg: &[u8], quality: u8) -> Result<Vec<u8>, ReencodeError> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_DECODE_SIDE)
        .set_max_height(MAX_DECODE_SIDE);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let rgb = decoder
        .decode()
        .map_err(|e| ReencodeError::Decode(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| ReencodeError::Decode("no image header".into()))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(ReencodeError::TooLarge { width, height });
    };
    let want = width * height * 3;
    // Grayscale or CMYK sources are converted by the decoder; anything else
    // would make the encoder read the wrong bytes.
    if rgb.len() != want {
        return Err(ReencodeError::ShortImage {
            width,
            height,
            got: rgb.len(),
            want,
        });
    }
    encode_rgb_for_rtp(&rgb, w, h, quality)
}

/// Encodes packed RGB pixels as baseline 4:2:0 JPEG with the standard
/// Huffman tables, as RFC 2435 carries them untouched (a live source's
/// frames, and re-encoded ones).
pub fn encode_rgb_for_rtp(
    rgb: &[u8],
    w: u16,
    h: u16,
    quality: u8,
) -> Result<Vec<u8>, ReencodeError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    // Averaging keeps thin coloured edges; the default takes one pixel of
    // four and makes them flicker.
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    // Optimised Huffman tables stay off (the default): RFC 2435 receivers
    // rebuild the standard ones and would misread anything else.
    encoder.encode(rgb, w, h, ColorType::Rgb)?;
    Ok(out)
}

/// Words that fit "frames are {reason}" in a log line.
pub fn describe(why: &CarryError) -> String {
    match why {
        CarryError::Sampling(s) if s == "1x1,1x1,1x1" => {
            "4:4:4 (sampling 1x1,1x1,1x1), which RFC 2435 cannot carry".into()
        }
        CarryError::Sampling(s) => {
            format!("sampled {s}, neither 4:2:2 nor 4:2:0 as RFC 2435 needs")
        }
        CarryError::NotJpeg => "not starting with FF D8".into(),
        CarryError::Malformed { offset, what } => {
            format!("unreadable for RFC 2435 at byte {offset} ({what})")
        }
        CarryError::NotBaseline(n) => format!("not baseline JPEG (SOF{n})"),
        CarryError::Components(n) => format!("{n}-component, not 3-component YCbCr"),
        CarryError::Tables => {
            "using 16-bit quantisation tables, or different ones for Cb and Cr".into()
        }
        CarryError::Huffman => "using non-standard (optimised) Huffman tables".into(),
        CarryError::Scan => "not one interleaved scan with standard table ids".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::rtp_jpeg::{self, Layout};

    fn gradient(w: u16, h: u16) -> Vec<u8> {
        let (w, h) = (usize::from(w), usize::from(h));
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend([
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        rgb
    }

    /// A JPEG of a gradient with this chroma sampling (unit tests' input).
    pub(crate) fn encode(w: u16, h: u16, sampling: SamplingFactor) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 85);
        e.set_sampling_factor(sampling);
        e.encode(&gradient(w, h), w, h, ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn jpeg_encoder_output_is_carriable() {
        for (w, h) in [(384, 288), (1, 1), (17, 9), (33, 250), (2040, 16)] {
            let src = encode(w, h, SamplingFactor::F_1_1);
            assert!(matches!(
                rtp_jpeg::carriable(&src),
                Err(CarryError::Sampling(_))
            ));
            let out = reencode_for_rtp(&src, RTP_QUALITY).unwrap();
            let c = rtp_jpeg::carriable(&out).unwrap();
            assert_eq!((c.layout, c.width, c.height), (Layout::Yuv420, w, h));
            assert_eq!(c.restart_interval, 0);
            assert!(c.tables.iter().flatten().all(|&q| q >= 1));
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let src = encode(96, 64, SamplingFactor::F_1_1);
        assert_eq!(
            reencode_for_rtp(&src, RTP_QUALITY).unwrap(),
            reencode_for_rtp(&src, RTP_QUALITY).unwrap()
        );
    }
}
