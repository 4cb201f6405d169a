//! JPEG decode speed on one core: Streamlab's path (zune-jpeg straight to
//! RGBA) against the `image` crate's generic decode plus RGBA conversion,
//! in the same run, for the lab's 384x288 frames and a 1080p frame.
//! benches/decode_ffmpeg.rs sets the same decoder beside ffmpeg.
//!
//! Run: `cargo bench --bench decode`. Criterion prints time per frame; the
//! frames/s per core is 1 / that time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use streamlab::media::decode::decode_rgba;
use streamlab::media::{MjpegFile, pattern};

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let movie = MjpegFile::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/media/movie.Mjpeg"
    )))
    .expect("movie.Mjpeg");
    let lab = movie.frame(100).unwrap().unwrap();
    let hd = pattern::encode_jpeg(&pattern::pattern_rgb(100, 1920, 1080), 85).unwrap();
    vec![("384x288 movie.Mjpeg", lab), ("1920x1080 pattern", hd)]
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode to RGBA");
    g.throughput(Throughput::Elements(1));
    for (name, jpeg) in frames() {
        g.bench_function(format!("streamlab zune-jpeg, {name}"), |b| {
            b.iter(|| decode_rgba(black_box(&jpeg)).unwrap())
        });
        g.bench_function(format!("image::load_from_memory + to_rgba8, {name}"), |b| {
            b.iter(|| {
                image::load_from_memory(black_box(&jpeg))
                    .unwrap()
                    .to_rgba8()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
