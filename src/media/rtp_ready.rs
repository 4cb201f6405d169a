//! Frames made fit for RTP/JPEG (RFC 2435), which can only carry baseline
//! 8-bit YCbCr JPEG sampled 4:2:2 or 4:2:0 with the standard Huffman tables
//! and one interleaved scan. Many clips (the lab's movie.Mjpeg, anything
//! written by the `image` crate) are 4:4:4, so standard peers (ffmpeg,
//! GStreamer, VLC) would get nothing from them as they are.
//!
//! Frames that can travel go out untouched. The others are decoded and
//! re-encoded as 4:2:0 once per file, not per session: one shared
//! [`RtpReadyFrames`] per file caches the results, so that ten viewers of a
//! 4:4:4 clip cost one encode per frame, and only the first request of each
//! frame pays for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::media::{MediaError, MjpegFile};
use crate::protocol::rtp_jpeg::{self, CarryError};

/// Quality of re-encoded frames (jpeg-encoder's 1..=100 scale, libjpeg
/// style). At 90 movie.Mjpeg's frames stay within 0.5 levels of their
/// source on average (PSNR 47.5 dB, worst frame 44.6 dB; see
/// tests/rtp_ready.rs) for 12 KB a frame against the source's 8.5 KB. 95
/// gains only 1.4 dB for 26% more bytes, and 75 or 85 lose 1 dB while
/// saving little: the 4:2:0 chroma halving RFC 2435 forces dominates.
pub const RTP_QUALITY: u8 = 90;

/// Most bytes of re-encoded frames kept per file. movie.Mjpeg's 500 frames
/// take 6 MB; a long HD clip would not fit, and then frames past the budget
/// are re-encoded on every request instead of growing memory without end.
pub const CACHE_LIMIT: usize = 256 * 1024 * 1024;

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

/// Why [`RtpReadyFrames::frame`] has no frame to give.
#[derive(Debug, thiserror::Error)]
pub enum RtpReadyError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("frame {index} of {file} cannot be sent as RTP/JPEG: {source}")]
    Frame {
        file: String,
        index: usize,
        source: ReencodeError,
    },
}

impl RtpReadyError {
    /// The frame index the error is about, when it is about one frame.
    pub fn frame_index(&self) -> Option<usize> {
        match self {
            RtpReadyError::Frame { index, .. } => Some(*index),
            RtpReadyError::Media(
                MediaError::FrameOutOfRange { index, .. } | MediaError::FileChanged { index, .. },
            ) => Some(*index),
            RtpReadyError::Media(_) => None,
        }
    }
}

/// What is known about one frame index.
#[derive(Default)]
enum Slot {
    #[default]
    Unseen,
    /// Carriable as it is: read it from the file each time, as before.
    Untouched,
    /// Re-encoded and kept.
    Cached(Arc<Vec<u8>>),
    /// Needs re-encoding and nothing is kept: the cache was full, or the
    /// last attempt failed.
    Reencode,
}

/// Frames of one file in a form RFC 2435 can carry: untouched where they
/// already can, re-encoded once (4:2:0, standard tables, quality
/// [`RTP_QUALITY`]) where they cannot.
///
/// Make one per file and share it (via `Arc`) among all the sessions
/// playing that file: the cache and the encode-once guarantee are per
/// object.
pub struct RtpReadyFrames {
    file: Arc<MjpegFile>,
    /// One lock per frame so that sessions asking for the same frame wait
    /// for a single encode while other frames proceed in parallel. The
    /// outer lock is only held to find or add a slot.
    slots: Mutex<Vec<Arc<Mutex<Slot>>>>,
    cache_limit: usize,
    cached_bytes: AtomicUsize,
    reencoded: AtomicUsize,
    encodes: AtomicUsize,
    first_reason: OnceLock<String>,
    cache_full_logged: AtomicBool,
}

impl std::fmt::Debug for RtpReadyFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpReadyFrames")
            .field("file", &self.file.name())
            .field("reencoded", &self.reencoded.load(Ordering::Relaxed))
            .field("cached_bytes", &self.cached_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RtpReadyFrames {
    pub fn new(file: Arc<MjpegFile>) -> Self {
        Self::with_cache_limit(file, CACHE_LIMIT)
    }

    /// Like [`RtpReadyFrames::new`] with another budget for re-encoded
    /// frames, in bytes (0 re-encodes on every request).
    pub fn with_cache_limit(file: Arc<MjpegFile>, cache_limit: usize) -> Self {
        RtpReadyFrames {
            file,
            slots: Mutex::new(Vec::new()),
            cache_limit,
            cached_bytes: AtomicUsize::new(0),
            reencoded: AtomicUsize::new(0),
            encodes: AtomicUsize::new(0),
            first_reason: OnceLock::new(),
            cache_full_logged: AtomicBool::new(false),
        }
    }

    pub fn file(&self) -> &Arc<MjpegFile> {
        &self.file
    }

    /// Frame n ready for RFC 2435, or Ok(None) past the end.
    pub fn frame(&self, n: usize) -> Result<Option<Arc<Vec<u8>>>, RtpReadyError> {
        let (slot, read) = match self.existing_slot(n) {
            Some(slot) => (slot, None),
            None => {
                // The file is asked first so that a request past the end
                // never grows the slot table.
                let Some(bytes) = self.file.frame(n)? else {
                    return Ok(None);
                };
                (self.slot(n), Some(bytes))
            }
        };
        let mut state = lock(&slot);
        match &*state {
            Slot::Cached(jpeg) => return Ok(Some(Arc::clone(jpeg))),
            Slot::Untouched => {
                drop(state);
                return self.read(n, read);
            }
            Slot::Unseen | Slot::Reencode => {}
        }
        let Some(original) = self.read_vec(n, read)? else {
            return Ok(None);
        };
        if matches!(*state, Slot::Unseen) {
            match rtp_jpeg::carriable(&original) {
                Ok(_) => {
                    *state = Slot::Untouched;
                    return Ok(Some(Arc::new(original)));
                }
                Err(why) => {
                    // Counted here, before the attempt, so that a frame that
                    // fails to decode counts once however often it is asked.
                    self.note_reencode(&why);
                    *state = Slot::Reencode;
                }
            }
        }
        let jpeg =
            reencode_for_rtp(&original, RTP_QUALITY).map_err(|source| RtpReadyError::Frame {
                file: self.file.name().to_owned(),
                index: n,
                source,
            })?;
        self.encodes.fetch_add(1, Ordering::Relaxed);
        let jpeg = Arc::new(jpeg);
        *state = if self.reserve(jpeg.len()) {
            Slot::Cached(Arc::clone(&jpeg))
        } else {
            Slot::Reencode
        };
        Ok(Some(jpeg))
    }

    /// How many frames had to be re-encoded so far, and why (first reason).
    pub fn reencoded(&self) -> (usize, Option<String>) {
        (
            self.reencoded.load(Ordering::Relaxed),
            self.first_reason.get().cloned(),
        )
    }

    /// How many encodes ran in total: equal to the first number of
    /// [`RtpReadyFrames::reencoded`] while everything fits in the cache.
    pub fn encodes_done(&self) -> usize {
        self.encodes.load(Ordering::Relaxed)
    }

    /// Bytes of re-encoded frames held.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes.load(Ordering::Relaxed)
    }

    fn existing_slot(&self, n: usize) -> Option<Arc<Mutex<Slot>>> {
        lock(&self.slots).get(n).cloned()
    }

    fn slot(&self, n: usize) -> Arc<Mutex<Slot>> {
        let mut slots = lock(&self.slots);
        if slots.len() <= n {
            slots.resize_with(n + 1, Default::default);
        }
        Arc::clone(&slots[n])
    }

    fn read(&self, n: usize, read: Option<Vec<u8>>) -> Result<Option<Arc<Vec<u8>>>, RtpReadyError> {
        Ok(self.read_vec(n, read)?.map(Arc::new))
    }

    fn read_vec(&self, n: usize, read: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, RtpReadyError> {
        match read {
            Some(bytes) => Ok(Some(bytes)),
            None => Ok(self.file.frame(n)?),
        }
    }

    fn note_reencode(&self, why: &CarryError) {
        self.reencoded.fetch_add(1, Ordering::Relaxed);
        let reason = describe(why);
        if self.first_reason.set(reason.clone()).is_ok() {
            let name = self.file.name();
            tracing::info!(
                file = name,
                "{name}: frames are {reason}; re-encoding them to 4:2:0 for RTP/JPEG \
                 (once, shared by all sessions)"
            );
        }
    }

    /// Takes `len` bytes of the cache budget, or says it is spent.
    fn reserve(&self, len: usize) -> bool {
        let limit = self.cache_limit;
        let fits = self
            .cached_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(len).filter(|&total| total <= limit)
            })
            .is_ok();
        if !fits && !self.cache_full_logged.swap(true, Ordering::Relaxed) {
            tracing::info!(
                file = self.file.name(),
                "{}: the {} MiB cache of re-encoded frames is full; further frames are \
                 re-encoded on every request",
                self.file.name(),
                limit / (1024 * 1024)
            );
        }
        fits
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Slots change only by whole assignments after the fallible work, so a
    // panic while one is held cannot leave it half written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Words that fit "frames are {reason}" in the log line.
fn describe(why: &CarryError) -> String {
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
        CarryError::Tables => "using 16-bit or oddly shared quantisation tables".into(),
        CarryError::Huffman => "using non-standard (optimised) Huffman tables".into(),
        CarryError::Scan => "not one interleaved scan with standard table ids".into(),
    }
}

/// Decodes `jpeg` and encodes it again as baseline 4:2:0 JPEG with the
/// standard (Annex K) Huffman tables and one interleaved scan, which
/// [`rtp_jpeg::carriable`] accepts. Any size works; odd sides are padded
/// inside the encoder's MCUs, not in the picture.
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
    let mut out = Vec::with_capacity(want / 8);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    // Averaging keeps thin coloured edges; the default takes one pixel of
    // four and makes them flicker.
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    // Optimised Huffman tables stay off (the default): RFC 2435 receivers
    // rebuild the standard ones and would misread anything else.
    encoder.encode(&rgb, w, h, ColorType::Rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtp_jpeg::Layout;

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

    fn encode(w: u16, h: u16, sampling: SamplingFactor) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 85);
        e.set_sampling_factor(sampling);
        e.encode(&gradient(w, h), w, h, ColorType::Rgb).unwrap();
        out
    }

    fn lab_file(frames: &[Vec<u8>]) -> Arc<MjpegFile> {
        let mut bytes = Vec::new();
        for f in frames {
            bytes.extend(format!("{:06}", f.len()).as_bytes());
            bytes.extend(f);
        }
        Arc::new(MjpegFile::from_bytes("test.mjpeg", bytes.into()).unwrap())
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
    fn carriable_frames_go_out_untouched_and_444_ones_once_re_encoded() {
        let f420 = encode(64, 48, SamplingFactor::F_2_2);
        let f422 = encode(64, 48, SamplingFactor::F_2_1);
        let f444 = encode(64, 48, SamplingFactor::F_1_1);
        let ready = RtpReadyFrames::new(lab_file(&[f420.clone(), f422.clone(), f444.clone()]));
        assert_eq!(*ready.frame(0).unwrap().unwrap(), f420);
        assert_eq!(*ready.frame(1).unwrap().unwrap(), f422);
        let a = ready.frame(2).unwrap().unwrap();
        let b = ready.frame(2).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(ready.frame(3).unwrap().is_none());
        assert!(ready.frame(usize::MAX).unwrap().is_none());
        let (count, reason) = ready.reencoded();
        assert_eq!(count, 1);
        assert!(reason.unwrap().starts_with("4:4:4"));
        assert_eq!(ready.encodes_done(), 1);
        assert_eq!(ready.cached_bytes(), a.len());
        // Untouched frames are still served after their slot exists.
        assert_eq!(*ready.frame(0).unwrap().unwrap(), f420);
    }

    #[test]
    fn over_budget_frames_are_encoded_on_every_request() {
        let f444 = encode(32, 32, SamplingFactor::F_1_1);
        let ready = RtpReadyFrames::with_cache_limit(lab_file(&[f444.clone(), f444]), 0);
        let a = ready.frame(0).unwrap().unwrap();
        let b = ready.frame(0).unwrap().unwrap();
        assert_eq!(a, b);
        assert!(rtp_jpeg::carriable(&a).is_ok());
        assert_eq!(ready.encodes_done(), 2);
        assert_eq!(ready.reencoded().0, 1);
        assert_eq!(ready.cached_bytes(), 0);
    }

    #[test]
    fn undecodable_frames_name_their_index() {
        let good = encode(16, 16, SamplingFactor::F_1_1);
        let bad = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x02, 0xff, 0xd9];
        let ready = RtpReadyFrames::new(lab_file(&[good.clone(), bad, good]));
        let e = ready.frame(1).unwrap_err();
        assert_eq!(e.frame_index(), Some(1));
        assert!(e.to_string().contains("frame 1 of test.mjpeg"), "{e}");
        assert!(ready.frame(1).is_err());
        assert!(ready.frame(2).unwrap().is_some());
        assert_eq!(ready.reencoded().0, 2);
        assert_eq!(ready.encodes_done(), 1);
    }

    #[test]
    fn bundled_sample_is_re_encoded() {
        let bytes = include_bytes!("../../assets/sample.mjpeg");
        let file = MjpegFile::from_bytes("sample.mjpeg", bytes.as_slice().into()).unwrap();
        let ready = RtpReadyFrames::new(Arc::new(file));
        let f = ready.frame(0).unwrap().unwrap();
        assert_eq!(rtp_jpeg::carriable(&f).unwrap().layout, Layout::Yuv420);
        assert_eq!(ready.reencoded().0, 1);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RtpReadyFrames>();
        check::<RtpReadyError>();
    }
}
