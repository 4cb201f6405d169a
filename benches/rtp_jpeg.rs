//! RTP/JPEG (RFC 2435) throughput on one core, in frames per second: the
//! packetizer, the receiving side (RTP checks plus depacketizer) and, as a
//! reference in the same run, the one-time `reencode_for_rtp` that makes a
//! frame carriable. Sizes: the lab's 384x288 (a movie.Mjpeg frame) and
//! 1280x720 and 1920x1080 test-pattern frames, at 1400 bytes of payload per
//! packet.
//!
//! Run: `cargo bench --bench rtp_jpeg`. Criterion prints time per frame and
//! frames/s (`Throughput::Elements(1)`: one element is one frame).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use streamlab::media::rtp_ready::{RTP_QUALITY, reencode_for_rtp};
use streamlab::media::{MjpegFile, pattern};
use streamlab::protocol::rtp::{PT_JPEG, RtpChecker, RtpHeader, SsrcRule};
use streamlab::protocol::rtp_jpeg::{self, Depacketizer};

/// Bytes of RTP payload per packet: a 1500-byte MTU less IP, UDP and RTP.
const MAX_PAYLOAD: usize = 1400;

/// A frame as it comes from its source, and re-encoded for RTP.
struct Sample {
    name: &'static str,
    source: Vec<u8>,
    carriable: Vec<u8>,
}

fn samples() -> Vec<Sample> {
    let movie = MjpegFile::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/media/movie.Mjpeg"
    )))
    .expect("movie.Mjpeg");
    let lab = movie.frame(100).unwrap().unwrap();
    let hd = pattern::encode_jpeg(&pattern::pattern_rgb(100, 1280, 720), 85).unwrap();
    let full_hd = pattern::encode_jpeg(&pattern::pattern_rgb(100, 1920, 1080), 85).unwrap();
    [
        ("384x288 movie.Mjpeg", lab),
        ("1280x720 pattern", hd),
        ("1920x1080 pattern", full_hd),
    ]
    .into_iter()
    .map(|(name, source)| {
        let carriable = reencode_for_rtp(&source, RTP_QUALITY).unwrap();
        Sample {
            name,
            source,
            carriable,
        }
    })
    .collect()
}

fn header() -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: PT_JPEG,
        sequence: 1,
        timestamp: 0,
        ssrc: 0x5354_4c42,
    }
}

fn rtp_jpeg(c: &mut Criterion) {
    let samples = samples();
    for s in &samples {
        let frame = rtp_jpeg::carriable(&s.carriable).unwrap();
        let mut packets = Vec::new();
        rtp_jpeg::packetize(&frame, MAX_PAYLOAD, header(), |p| packets.push(p.to_vec()));
        println!(
            "{}: {} bytes re-encoded ({} source), {} packets of <= {MAX_PAYLOAD} bytes",
            s.name,
            s.carriable.len(),
            s.source.len(),
            packets.len()
        );
    }

    let mut g = c.benchmark_group("packetize");
    g.throughput(Throughput::Elements(1));
    for s in &samples {
        let frame = rtp_jpeg::carriable(&s.carriable).unwrap();
        // Every packet is copied into one reused buffer, as a sender copies
        // it into its socket: no allocation per packet is counted.
        let mut out = Vec::with_capacity(2 * s.carriable.len());
        g.bench_function(s.name, |b| {
            b.iter(|| {
                out.clear();
                let next = rtp_jpeg::packetize(black_box(&frame), MAX_PAYLOAD, header(), |p| {
                    out.extend_from_slice(p)
                });
                black_box((next, out.len()))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("RtpChecker + Depacketizer");
    g.throughput(Throughput::Elements(1));
    for s in &samples {
        let frame = rtp_jpeg::carriable(&s.carriable).unwrap();
        let mut packets = Vec::new();
        rtp_jpeg::packetize(&frame, MAX_PAYLOAD, header(), |p| packets.push(p.to_vec()));
        g.bench_function(s.name, |b| {
            b.iter(|| {
                // A fresh receiver per frame: the packets repeat their
                // sequence numbers from one iteration to the next.
                let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
                let mut d = Depacketizer::new(None);
                let mut out = None;
                for p in &packets {
                    let acc = checker.check(black_box(p)).unwrap();
                    if let Some(f) = d.push(&acc).unwrap() {
                        out = Some(f);
                    }
                }
                out.expect("one frame per packet run")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("reencode_for_rtp (once per frame, cached)");
    g.throughput(Throughput::Elements(1));
    for s in &samples {
        g.bench_function(s.name, |b| {
            b.iter(|| reencode_for_rtp(black_box(&s.source), RTP_QUALITY).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = rtp_jpeg
}
criterion_main!(benches);
