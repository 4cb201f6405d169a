//! RTP/JPEG-ready frames against the lab's movie.Mjpeg (4:4:4, so every
//! frame must be re-encoded): the results travel as RFC 2435, look like
//! their source, are encoded once however many sessions ask, and frames
//! that already travel are passed on untouched. The worker encodes ahead
//! of the playhead, follows seeks, is shared by every session of a file,
//! and keeps within the cache's budget.

use std::sync::{Arc, Barrier, LazyLock};
use std::thread;
use std::time::Duration;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use streamlab::media::MjpegFile;
use streamlab::media::decode::decode_rgba;
use streamlab::media::rtp_ready::{RTP_QUALITY, RtpReadyFrames, reencode_for_rtp};
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

/// Every frame the worker has encoded is kept once: no frame encoded twice.
fn assert_each_frame_encoded_once(ready: &RtpReadyFrames) {
    assert_eq!(ready.encodes_done(), ready.cached_frames());
}

/// The last viewer's drop ended the worker and waited for it.
fn worker_stopped(ready: &RtpReadyFrames) {
    assert!(!ready.worker_running(), "the worker outlived its viewers");
}

#[test]
fn the_worker_fills_the_cache_ahead_of_the_playhead_with_the_same_bytes() {
    let ready = Arc::new(RtpReadyFrames::new(movie()));
    let viewer = ready.viewer(100);
    assert!(
        ready.wait_ready(MOVIE_FRAMES - 1, Duration::from_secs(120)),
        "the worker reached the last frame"
    );
    for n in 100..MOVIE_FRAMES {
        assert!(ready.is_ready(n), "frame {n}");
    }
    // From the playhead onward: nothing behind it was encoded.
    assert!((0..100).all(|n| !ready.is_ready(n)));
    assert_eq!(ready.encodes_done(), MOVIE_FRAMES - 100);
    assert_eq!(ready.workers_started(), 1);
    // What the sender then takes is cached, and is what an encode on the
    // spot gives, byte for byte.
    for n in (100..MOVIE_FRAMES).step_by(25) {
        let got = viewer.frame(n).unwrap().unwrap();
        let want = reencode_for_rtp(&movie_frame(n), RTP_QUALITY).unwrap();
        assert!(*got == want, "frame {n} differs from a fresh encode");
    }
    assert_eq!(ready.encodes_done(), MOVIE_FRAMES - 100);
    drop(viewer);
    worker_stopped(&ready);
    assert_each_frame_encoded_once(&ready);
}

#[test]
fn a_seek_moves_the_worker() {
    let ready = Arc::new(RtpReadyFrames::new(movie()));
    let viewer = ready.viewer(0);
    viewer.seek(400);
    assert!(ready.wait_ready(MOVIE_FRAMES - 1, Duration::from_secs(120)));
    assert!((400..MOVIE_FRAMES).all(|n| ready.is_ready(n)));
    // It left the frames before the seek point alone (a few from 0 may
    // have been done before the seek arrived, not 400 of them).
    assert!(!ready.is_ready(399));
    assert!(ready.encodes_done() < 150, "{}", ready.encodes_done());
    drop(viewer);
    worker_stopped(&ready);
    assert_each_frame_encoded_once(&ready);
}

#[test]
fn concurrent_sessions_share_one_worker_and_one_encode_per_frame() {
    const FRAMES: usize = 60;
    const SESSIONS: usize = 4;
    let ready = Arc::new(RtpReadyFrames::new(movie()));
    let start = Arc::new(Barrier::new(SESSIONS));
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|_| {
            let ready = Arc::clone(&ready);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let viewer = ready.viewer(0);
                start.wait();
                let got: Vec<Arc<Vec<u8>>> = (0..FRAMES)
                    .map(|n| viewer.frame(n).unwrap().unwrap())
                    .collect();
                // Every session is alive here: still one worker.
                assert!(ready.workers_started() <= 1);
                start.wait();
                got
            })
        })
        .collect();
    let results: Vec<Vec<Arc<Vec<u8>>>> = sessions.into_iter().map(|h| h.join().unwrap()).collect();
    for got in &results[1..] {
        for n in 0..FRAMES {
            assert!(Arc::ptr_eq(&got[n], &results[0][n]), "frame {n}");
        }
    }
    worker_stopped(&ready);
    assert_eq!(ready.workers_started(), 1);
    assert!(ready.encodes_done() >= FRAMES);
    assert_each_frame_encoded_once(&ready);
}

#[test]
fn a_full_cache_makes_room_from_behind_the_playhead() {
    // Room for about 20 of movie.Mjpeg's re-encoded frames (12 KB each).
    const LIMIT: usize = 240_000;
    let ready = Arc::new(RtpReadyFrames::with_cache_limit(movie(), LIMIT));
    let viewer = ready.viewer(0);
    for n in 0..200 {
        assert!(viewer.frame(n).unwrap().is_some());
        assert!(
            ready.cached_bytes() <= LIMIT,
            "{} bytes",
            ready.cached_bytes()
        );
    }
    // The worker keeps going ahead of the viewer at 199, and frames far
    // behind it made the room.
    assert!(ready.wait_ready(205, Duration::from_secs(60)));
    assert!(ready.cached_bytes() <= LIMIT);
    assert!(!ready.is_ready(50));
    drop(viewer);
    worker_stopped(&ready);
}
