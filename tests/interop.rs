//! Real RTSP clients against our server over loopback: ffprobe and ffmpeg
//! (UDP and TCP interleaved), GStreamer's rtspsrc, and OpenCV, the way
//! students and vision users open streams. The peers are installed by
//! `.ci/run`; with STREAMLAB_REQUIRE_PEERS=1 a missing one fails the test.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use streamlab::media::decode::decode_rgba;
use streamlab::media::{Framing, MjpegFile, pattern};
use streamlab::net::server::{ServerConfig, ServerHandle};

fn serve(root: PathBuf, fps: u32) -> (ServerHandle, String) {
    let server = server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(root),
        fps,
        ..ServerConfig::default()
    });
    let base = format!("rtsp://127.0.0.1:{}", server.local_addr().port());
    (server, base)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the peer runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {err}");
    out
}

/// ffmpeg decodes `frames` frames of `url` and reports no error.
fn ffmpeg_decodes(url: &str, tcp: bool, frames: u32) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-timeout", "5000000"]);
    if tcp {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    cmd.args(["-i", url, "-frames:v", &frames.to_string()])
        .args(["-f", "null", "-progress", "pipe:1", "-"]);
    let out = run(&mut cmd);
    let progress = String::from_utf8_lossy(&out.stdout);
    let decoded: u32 = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert_eq!(decoded, frames, "{progress}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.trim().is_empty(), "ffmpeg complained: {err}");
}

/// The first frame ffmpeg decodes from `url`, as RGB.
fn ffmpeg_first_frame(url: &str) -> Vec<u8> {
    let out = run(Command::new("ffmpeg").args([
        "-nostdin",
        "-v",
        "error",
        "-timeout",
        "5000000",
        "-i",
        url,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]));
    out.stdout
}

/// Mean absolute difference and PSNR between an RGBA and an RGB picture.
fn compare(rgba: &[u8], rgb: &[u8]) -> (f64, f64) {
    assert_eq!(rgba.len() / 4, rgb.len() / 3, "same size");
    let mut abs = 0u64;
    let mut sq = 0u64;
    for (a, b) in rgba.chunks(4).zip(rgb.chunks(3)) {
        for c in 0..3 {
            let d = (a[c] as i64 - b[c] as i64).unsigned_abs();
            abs += d;
            sq += d * d;
        }
    }
    let n = (rgb.len()) as f64;
    let mse = sq as f64 / n;
    let psnr = if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    };
    (abs as f64 / n, psnr)
}

/// A clip of pattern frames in a temp folder.
fn clip(name: &str, frames: u32, w: u32, h: u32) -> PathBuf {
    let dir = temp_dir(name);
    let mut f = std::fs::File::create(dir.join("clip.mjpeg")).unwrap();
    pattern::make_clip(&mut f, frames, w, h, 80, Framing::Lab { digits: 6 }).unwrap();
    dir
}

/// A 4:2:0 clip with standard tables: it travels untouched.
fn clip_420(name: &str, frames: u32) -> PathBuf {
    let dir = temp_dir(name);
    let mut out = Vec::new();
    for i in 0..frames {
        let rgb = pattern::pattern_rgb(i, 320, 240);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 85);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        enc.encode(rgb.as_raw(), 320, 240, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        pattern::write_frame(&mut out, &jpeg, Framing::Lab { digits: 5 }).unwrap();
    }
    std::fs::write(dir.join("clip.mjpeg"), out).unwrap();
    dir
}

#[test]
fn ffprobe_reports_mjpeg_at_the_right_size() {
    if !have("ffprobe") {
        return;
    }
    let (_s, base) = serve(media_root(), 20);
    let out = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        &format!("{base}/movie.Mjpeg"),
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "mjpeg,384,288");
}

#[test]
fn ffmpeg_decodes_every_frame_of_movie_over_udp() {
    if !have("ffmpeg") {
        return;
    }
    let (_s, base) = serve(media_root(), 100);
    ffmpeg_decodes(&format!("{base}/movie.Mjpeg"), false, 500);
}

#[test]
fn ffmpeg_decodes_every_frame_of_movie_over_tcp() {
    if !have("ffmpeg") {
        return;
    }
    let (_s, base) = serve(media_root(), 100);
    ffmpeg_decodes(&format!("{base}/movie.Mjpeg"), true, 500);
}

#[test]
fn ffmpeg_decodes_720p_and_1080p_clips_that_need_fragments() {
    if !have("ffmpeg") {
        return;
    }
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let dir = clip(&format!("hd{h}"), 30, w, h);
        let (s, base) = serve(dir.clone(), 30);
        let url = format!("{base}/clip.mjpeg");
        ffmpeg_decodes(&url, false, 30);
        ffmpeg_decodes(&url, true, 30);
        let probe = run(Command::new("ffprobe").args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
            &url,
        ]));
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            format!("{w},{h}")
        );
        drop(s);
        std::fs::remove_dir_all(dir).ok();
    }
}

/// ffmpeg's own decode of one JPEG, as RGB: the reference, so that both
/// sides of a comparison go through the same decoder.
fn ffmpeg_decode_jpeg(jpeg: &[u8]) -> Vec<u8> {
    let dir = temp_dir("ref");
    let path = dir.join("frame.jpg");
    std::fs::write(&path, jpeg).unwrap();
    let out = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]));
    std::fs::remove_dir_all(dir).ok();
    out.stdout
}

/// MAD and PSNR between two RGB pictures.
fn compare_rgb(a: &[u8], b: &[u8]) -> (f64, f64) {
    let rgba: Vec<u8> = a.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    compare(&rgba, b)
}

/// What ffmpeg shows from our stream against what it shows from the file:
/// a re-encoded frame (movie.Mjpeg is 4:4:4) loses a little, measured at
/// MAD 0.5 and PSNR 49 dB here; a 4:2:0 frame travels untouched, so the
/// two decodes are the same picture.
#[test]
fn what_ffmpeg_shows_matches_the_source_frame() {
    if !have("ffmpeg") {
        return;
    }
    let (_s, base) = serve(media_root(), 20);
    let got = ffmpeg_first_frame(&format!("{base}/movie.Mjpeg"));
    let movie = MjpegFile::open(&movie_path()).unwrap();
    let source = ffmpeg_decode_jpeg(&movie.frame(0).unwrap().unwrap());
    let (mad, psnr) = compare_rgb(&source, &got);
    eprintln!("movie.Mjpeg frame 0 through RTP (re-encoded): MAD {mad:.2}, PSNR {psnr:.1} dB");
    assert!(mad < 2.0 && psnr > 38.0, "MAD {mad:.2}, PSNR {psnr:.1} dB");

    let dir = clip_420("untouched", 5);
    let (_s2, base2) = serve(dir.clone(), 20);
    let got = ffmpeg_first_frame(&format!("{base2}/clip.mjpeg"));
    let file = MjpegFile::open(&dir.join("clip.mjpeg")).unwrap();
    let source = ffmpeg_decode_jpeg(&file.frame(0).unwrap().unwrap());
    let (mad, psnr) = compare_rgb(&source, &got);
    eprintln!("4:2:0 clip frame 0 through RTP (untouched): MAD {mad:.3}, PSNR {psnr:.1} dB");
    assert!(mad < 0.01, "MAD {mad:.3}, PSNR {psnr:.1} dB");
    std::fs::remove_dir_all(dir).ok();
}

/// ffmpeg's MJPEG encoder writes one quantisation table for all three
/// components. Such a file travels untouched (the table as both luma and
/// chroma): ffmpeg shows the very picture it decodes from the file.
#[test]
fn an_ffmpeg_made_clip_travels_untouched() {
    if !have("ffmpeg") {
        return;
    }
    let dir = temp_dir("ffmpeg-made");
    let path = dir.join("ffmpeg.mjpeg");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=20")
        .args(["-frames:v", "10", "-pix_fmt", "yuvj420p", "-q:v", "3"])
        .args(["-huffman", "default", "-f", "mjpeg"])
        .arg(&path));
    let file = MjpegFile::open(&path).unwrap();
    let first = file.frame(0).unwrap().unwrap();
    assert!(
        streamlab::protocol::rtp_jpeg::carriable(&first).is_ok(),
        "ffmpeg's frame can travel as it is"
    );
    let (_s, base) = serve(dir.clone(), 20);
    let got = ffmpeg_first_frame(&format!("{base}/ffmpeg.mjpeg"));
    let source = ffmpeg_decode_jpeg(&first);
    let (mad, psnr) = compare_rgb(&source, &got);
    eprintln!("ffmpeg-made frame 0 through RTP (untouched): MAD {mad:.3}, PSNR {psnr:.1} dB");
    assert!(mad < 0.01, "MAD {mad:.3}, PSNR {psnr:.1} dB");
    std::fs::remove_dir_all(dir).ok();
}

fn gst_plays(url: &str, protocols: &str) {
    let out = Command::new("timeout")
        .args(["60", "gst-launch-1.0", "-q", "rtspsrc"])
        // One pipeline token per argument: gst-launch quotes each.
        .arg(format!("location={url}"))
        .arg(format!("protocols={protocols}"))
        .args([
            "!",
            "rtpjpegdepay",
            "!",
            "jpegdec",
            "!",
            "identity",
            "eos-after=40",
            "!",
            "fakesink",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gst-launch failed: {stdout} {err}");
    assert!(
        !err.contains("ERROR") && !stdout.contains("ERROR"),
        "{stdout} {err}"
    );
}

#[test]
fn gstreamer_rtspsrc_plays_over_udp_and_tcp() {
    if !have("gst-launch-1.0") {
        return;
    }
    let (_s, base) = serve(media_root(), 100);
    let url = format!("{base}/movie.Mjpeg");
    gst_plays(&url, "udp");
    gst_plays(&url, "tcp");
}

#[test]
fn opencv_reads_frames_of_the_right_size() {
    let has_cv2 = Command::new("python3")
        .args(["-c", "import cv2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cv2 {
        assert!(
            !peers_required(),
            "python3 with cv2 (opencv-python-headless) is required"
        );
        eprintln!("OpenCV not installed; skipping");
        return;
    }
    let (_s, base) = serve(media_root(), 50);
    let script = format!(
        "import cv2\n\
         c = cv2.VideoCapture('{base}/movie.Mjpeg', cv2.CAP_FFMPEG)\n\
         shapes = [c.read() for _ in range(20)]\n\
         ok = [s for s in shapes if s[0]]\n\
         print(len(ok), ok[0][1].shape if ok else None)\n"
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "20 (288, 384, 3)"
    );
}

#[test]
fn seek_with_range_lands_on_the_right_frame() {
    if !have("ffmpeg") {
        return;
    }
    // ffmpeg's -ss on an RTSP input sends PLAY with Range: npt=10.000-.
    let (_s, base) = serve(media_root(), 20);
    let out = run(Command::new("ffmpeg").args([
        "-nostdin",
        "-v",
        "error",
        "-timeout",
        "5000000",
        "-ss",
        "10",
        "-i",
        &format!("{base}/movie.Mjpeg"),
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]));
    let movie = MjpegFile::open(&movie_path()).unwrap();
    // 10 s at 20 fps is frame 200; it must look like 200, not like 0.
    let at = |n| decode_rgba(&movie.frame(n).unwrap().unwrap()).unwrap().2;
    let (mad_200, _) = compare(&at(200), &out.stdout);
    let (mad_0, _) = compare(&at(0), &out.stdout);
    eprintln!("seek to 10 s: MAD against frame 200 {mad_200:.2}, against frame 0 {mad_0:.2}");
    assert!(mad_200 < 4.0 && mad_200 < mad_0, "{mad_200} vs {mad_0}");
}
