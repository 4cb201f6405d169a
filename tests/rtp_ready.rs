//! RTP/JPEG-ready frames against the lab's movie.Mjpeg (4:4:4, so every
//! frame must be re-encoded): the results travel as RFC 2435, look like
//! their source, are encoded once however many sessions ask, and frames
//! that already travel are passed on untouched.

use std::sync::{Arc, Barrier, LazyLock};
use std::thread;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use streamlab::media::MjpegFile;
use streamlab::media::rtp_ready::{RTP_QUALITY, RtpReadyFrames};
use streamlab::net::client::decode_rgba;
use streamlab::protocol::rtp_jpeg::{self, CarryError, Layout};

const MOVIE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media/movie.Mjpeg");
const MOVIE_FRAMES: usize = 500;

/// Measured over all 500 frames at quality 90: mean absolute difference
/// 0.515 per channel (worst frame 0.888), PSNR 47.5 dB overall (worst frame
/// 44.6 dB). The bounds leave room for encoder and decoder rounding changes
/// but fail if the re-encode visibly degrades the picture.
const MAX_MAD: f64 = 1.25;
const MIN_PSNR_DB: f64 = 42.0;

fn movie() -> Arc<MjpegFile> {
    static FILE: LazyLock<Arc<MjpegFile>> = LazyLock::new(|| {
        Arc::new(MjpegFile::open(MOVIE.as_ref()).expect("the lab's movie.Mjpeg is in shared/media"))
    });
    Arc::clone(&FILE)
}

fn movie_frame(n: usize) -> Vec<u8> {
    movie().frame(n).unwrap().unwrap()
}

/// Sum of absolute and of squared differences over the RGB channels, and
/// the number of samples compared.
fn diff(a: &[u8], b: &[u8]) -> (f64, f64, usize) {
    assert_eq!(a.len(), b.len());
    let (mut abs, mut sq, mut n) = (0u64, 0u64, 0usize);
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            let d = u64::from(pa[c].abs_diff(pb[c]));
            abs += d;
            sq += d * d;
            n += 1;
        }
    }
    (abs as f64, sq as f64, n)
}

fn psnr(sq: f64, n: usize) -> f64 {
    let mse = sq / n as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

fn lab_framed(frames: &[Vec<u8>]) -> Arc<MjpegFile> {
    let mut bytes = Vec::new();
    for f in frames {
        bytes.extend(format!("{:05}", f.len()).as_bytes());
        bytes.extend(f);
    }
    Arc::new(MjpegFile::from_bytes("made.mjpeg", bytes.into()).unwrap())
}

#[test]
fn movie_is_444_and_every_frame_comes_out_carriable_and_close_to_its_source() {
    assert!(matches!(
        rtp_jpeg::carriable(&movie_frame(0)),
        Err(CarryError::Sampling(_))
    ));
    let ready = RtpReadyFrames::new(movie());
    let (mut abs, mut sq, mut samples) = (0.0, 0.0, 0usize);
    let (mut worst_mad, mut worst_psnr) = (0.0f64, f64::INFINITY);
    let mut bytes = 0usize;
    for n in 0..MOVIE_FRAMES {
        let out = ready.frame(n).unwrap().unwrap();
        bytes += out.len();
        let c = rtp_jpeg::carriable(&out).unwrap_or_else(|e| panic!("frame {n}: {e}"));
        assert_eq!((c.layout, c.width, c.height), (Layout::Yuv420, 384, 288));
        let (sw, sh, src) = decode_rgba(&movie_frame(n)).unwrap();
        let (ow, oh, got) = decode_rgba(&out).unwrap();
        assert_eq!((sw, sh), (ow, oh));
        let (a, s, k) = diff(&src, &got);
        worst_mad = worst_mad.max(a / k as f64);
        worst_psnr = worst_psnr.min(psnr(s, k));
        (abs, sq, samples) = (abs + a, sq + s, samples + k);
    }
    assert!(ready.frame(MOVIE_FRAMES).unwrap().is_none());
    let mad = abs / samples as f64;
    let overall = psnr(sq, samples);
    println!(
        "quality {RTP_QUALITY}: MAD {mad:.3} per channel (worst frame {worst_mad:.3}), \
         PSNR {overall:.2} dB (worst frame {worst_psnr:.2} dB), {} KiB cached",
        bytes / 1024
    );
    assert!(
        mad < MAX_MAD && worst_mad < MAX_MAD,
        "MAD {mad} / {worst_mad}"
    );
    assert!(
        overall > MIN_PSNR_DB && worst_psnr > MIN_PSNR_DB,
        "PSNR {overall} / {worst_psnr}"
    );
    let (count, reason) = ready.reencoded();
    assert_eq!(count, MOVIE_FRAMES);
    assert!(reason.unwrap().contains("4:4:4"));
    assert_eq!(ready.encodes_done(), MOVIE_FRAMES);
    assert_eq!(ready.cached_bytes(), bytes);
    // A second pass is served from the cache.
    assert!(ready.frame(7).unwrap().is_some());
    assert_eq!(ready.encodes_done(), MOVIE_FRAMES);
}

#[test]
fn frames_that_already_travel_go_out_byte_identical() {
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|n| {
            let (w, h, rgba) = decode_rgba(&movie_frame(n * 100)).unwrap();
            let mut out = Vec::new();
            let mut e = Encoder::new(&mut out, 80);
            e.set_sampling_factor(SamplingFactor::F_2_2);
            e.encode(&rgba, w as u16, h as u16, ColorType::Rgba)
                .unwrap();
            out
        })
        .collect();
    let ready = RtpReadyFrames::new(lab_framed(&frames));
    for _ in 0..2 {
        for (n, f) in frames.iter().enumerate() {
            assert_eq!(*ready.frame(n).unwrap().unwrap(), *f, "frame {n}");
        }
    }
    assert_eq!(ready.reencoded(), (0, None));
    assert_eq!(ready.encodes_done(), 0);
    assert_eq!(ready.cached_bytes(), 0);
}

#[test]
fn eight_sessions_share_one_encode_per_frame() {
    const FRAMES: usize = 60;
    const THREADS: usize = 8;
    let ready = Arc::new(RtpReadyFrames::new(movie()));
    let start = Arc::new(Barrier::new(THREADS));
    let sessions: Vec<_> = (0..THREADS)
        .map(|t| {
            let ready = Arc::clone(&ready);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                // Half the sessions walk backwards so that they also meet
                // the others mid-encode, not only in lockstep.
                let order: Vec<usize> = if t % 2 == 0 {
                    (0..FRAMES).collect()
                } else {
                    (0..FRAMES).rev().collect()
                };
                let mut got: Vec<Option<Arc<Vec<u8>>>> = vec![None; FRAMES];
                for n in order {
                    got[n] = ready.frame(n).unwrap();
                }
                got.into_iter().map(Option::unwrap).collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<Arc<Vec<u8>>>> = sessions.into_iter().map(|h| h.join().unwrap()).collect();
    for got in &results[1..] {
        for n in 0..FRAMES {
            assert!(Arc::ptr_eq(&got[n], &results[0][n]), "frame {n}");
        }
    }
    assert_eq!(ready.encodes_done(), FRAMES);
    assert_eq!(ready.reencoded().0, FRAMES);
}

#[test]
fn a_corrupt_frame_names_its_index_and_the_next_one_still_plays() {
    let mut broken = vec![0xff, 0xd8];
    broken.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    broken.extend([0xff, 0xd9]);
    let frames = vec![movie_frame(0), broken, movie_frame(2)];
    let ready = RtpReadyFrames::new(lab_framed(&frames));
    assert!(ready.frame(0).unwrap().is_some());
    let e = ready.frame(1).unwrap_err();
    assert_eq!(e.frame_index(), Some(1));
    let msg = e.to_string();
    assert!(msg.contains("frame 1 of made.mjpeg"), "{msg}");
    println!("corrupt frame: {msg}");
    let next = ready.frame(2).unwrap().unwrap();
    assert_eq!(rtp_jpeg::carriable(&next).unwrap().layout, Layout::Yuv420);
    // The failure is not remembered as a result: asking again fails again.
    assert!(ready.frame(1).is_err());
}
