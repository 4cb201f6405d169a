//! Decode speed per core at 1080p: Streamlab's decoder (zune-jpeg straight
//! to RGBA, what the client does with every frame) beside `ffmpeg -threads
//! 1` decoding the same frames, in the same run, both timed in CPU time so
//! that other work on a shared machine does not count.
//!
//! The frames are what RFC 2435 carries and the client receives: 1080p
//! test-pattern frames re-encoded to baseline 4:2:0 (quality 90) by the
//! server's own re-encoder. ffmpeg is timed twice, decoding to its native
//! planar YUV (no colour conversion: less work than ours) and converting to
//! RGBA as we do (`-pix_fmt rgba`, one filter thread); each time it decodes
//! the whole set and then only its first frame, and the difference is
//! taken, so that its start-up does not count.
//!
//! Run: `cargo bench --bench decode_ffmpeg` (needs ffmpeg on PATH; about
//! 30 s).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use streamlab::media::decode::decode_rgba;
use streamlab::media::pattern::pattern_rgb;
use streamlab::media::rtp_ready::{RTP_QUALITY, reencode_for_rtp};

/// Distinct frames (the box moves and the counter changes in each).
const DISTINCT: u32 = 100;
/// Passes over them: enough CPU time for 10 ms clock ticks not to matter.
const PASSES: usize = 8;

/// User plus system CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux ABI.
    ticks as f64 / 100.0
}

/// ffmpeg's user + system time (`-benchmark`) decoding `input`, which
/// holds `frames` frames.
fn ffmpeg_cpu(input: &Path, frames: usize, extra: &[&str]) -> Option<f64> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-benchmark", "-threads", "1"])
        .args(["-f", "mjpeg", "-i"])
        .arg(input)
        .args(extra)
        .args(["-f", "null", "-"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprintln!("ffmpeg failed:\n{text}");
        return None;
    }
    // Its progress line says how many frames it decoded: all of them, or
    // the figure means nothing.
    let decoded = text
        .rsplit("frame=")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if decoded != Some(frames) {
        eprintln!("ffmpeg decoded {decoded:?} frames, not {frames}:\n{text}");
        return None;
    }
    let line = text.lines().find(|l| l.starts_with("bench: utime="))?;
    let field = |name: &str| -> Option<f64> {
        let rest = &line[line.find(name)? + name.len()..];
        rest[..rest.find('s')?].parse().ok()
    };
    Some(field("utime=")? + field("stime=")?)
}

fn main() {
    let frames: Vec<Vec<u8>> = (0..DISTINCT)
        .map(|n| {
            let src = pattern_rgb(n * 7, 1920, 1080);
            let jpeg444 = streamlab::media::pattern::encode_jpeg(&src, 90).unwrap();
            reencode_for_rtp(&jpeg444, RTP_QUALITY).unwrap()
        })
        .collect();
    let count = frames.len() * PASSES;
    let bytes: usize = frames.iter().map(Vec::len).sum();
    eprintln!(
        "{DISTINCT} distinct 1920x1080 4:2:0 frames, {} KiB on average, {PASSES} passes",
        bytes / frames.len() / 1024
    );

    // Ours, on this thread.
    for f in &frames {
        decode_rgba(f).unwrap(); // warm up caches and the allocator
    }
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for _ in 0..PASSES {
        for f in &frames {
            let (w, h, rgba) = decode_rgba(std::hint::black_box(f)).unwrap();
            assert_eq!((w, h, rgba.len()), (1920, 1080, 1920 * 1080 * 4));
        }
    }
    let ours_cpu = thread_cpu() - cpu0;
    let ours_wall = wall0.elapsed().as_secs_f64();
    let ours = count as f64 / ours_cpu;

    // ffmpeg, on the same frames written as one raw MJPEG stream.
    let dir = std::env::temp_dir().join(format!("streamlab-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let all = dir.join("frames.mjpeg");
    let first = dir.join("first.mjpeg");
    let mut stream = Vec::with_capacity(bytes * PASSES);
    for _ in 0..PASSES {
        for f in &frames {
            stream.extend_from_slice(f);
        }
    }
    std::fs::write(&all, &stream).unwrap();
    std::fs::write(&first, &frames[0]).unwrap();
    let per_core = |extra: &[&str]| -> Option<f64> {
        let whole = ffmpeg_cpu(&all, count, extra)?;
        let startup = ffmpeg_cpu(&first, 1, extra)?;
        eprintln!("ffmpeg {extra:?}: {whole:.3} s CPU for {count} frames, {startup:.3} s for 1");
        Some((count - 1) as f64 / (whole - startup))
    };
    let yuv = per_core(&[]);
    let rgba = per_core(&["-pix_fmt", "rgba", "-filter_threads", "1"]);
    std::fs::remove_dir_all(&dir).ok();

    println!("decoding {count} 1920x1080 4:2:0 JPEG frames on one core, CPU time, same run:");
    println!("{:<44} {:>14} {:>12}", "", "frames/s/core", "ours/theirs");
    println!(
        "{:<44} {:>14.1} {:>12}",
        "streamlab decode_rgba (zune-jpeg to RGBA)", ours, ""
    );
    for (name, theirs) in [
        ("ffmpeg -threads 1, native yuvj420p", yuv),
        ("ffmpeg -threads 1, -pix_fmt rgba", rgba),
    ] {
        match theirs {
            Some(t) => println!("{name:<44} {t:>14.1} {:>11.2}x", ours / t),
            None => println!("{name:<44} {:>14} {:>12}", "(no ffmpeg)", ""),
        }
    }
    println!(
        "streamlab wall clock: {:.1} frames/s ({:.2} ms/frame; CPU {:.2} ms/frame)",
        count as f64 / ours_wall,
        ours_wall * 1e3 / count as f64,
        ours_cpu * 1e3 / count as f64
    );
    println!(
        "command: ffmpeg -benchmark -threads 1 -f mjpeg -i frames.mjpeg [-pix_fmt rgba -filter_threads 1] -f null -"
    );
}
