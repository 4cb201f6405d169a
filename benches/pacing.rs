//! Pacing benchmark: serve movie.Mjpeg at 20 fps over loopback for 25 s and
//! measure, from a receiver, the delivered rate and how late each frame
//! arrives against an absolute schedule. In the same run, two reference
//! threads on the same schedule: a bare sleeper (the machine's own timer
//! floor: how late a sleeping thread wakes) and the lab reference's way of
//! pacing (sleep 50 ms, then send), which drifts.
//!
//! Run: `cargo bench --bench pacing` (about 26 s).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use streamlab::net::server::{Server, ServerConfig};

const FPS: u32 = 20;
const FRAMES: usize = 500;

fn period() -> Duration {
    Duration::from_nanos(1_000_000_000 / FPS as u64)
}

fn ms(d: f64) -> String {
    format!("{d:.3} ms")
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    behind_at_end: f64,
}

/// Lateness of each event against `anchor + n x period`, in ms.
fn figures(times: &[Instant], anchor: Instant) -> Figures {
    let p = period().as_secs_f64();
    let mut late: Vec<f64> = times
        .iter()
        .enumerate()
        .map(|(n, t)| (t.duration_since(anchor).as_secs_f64() - n as f64 * p) * 1e3)
        .collect();
    let span = times[times.len() - 1]
        .duration_since(times[0])
        .as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    let behind_at_end = *late.last().unwrap_or(&0.0);
    late.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| late[((late.len() - 1) as f64 * f).round() as usize];
    Figures {
        rate,
        p50: q(0.50),
        p99: q(0.99),
        max: q(1.0),
        behind_at_end,
    }
}

/// The schedule a receiver sees starts when the first frame arrives; take
/// the anchor that makes no arrival early (the best-fitting start).
fn best_anchor(times: &[Instant]) -> Instant {
    times
        .iter()
        .enumerate()
        .map(|(n, t)| *t - period() * n as u32)
        .min()
        .unwrap_or_else(Instant::now)
}

fn bare_sleeper(start: Instant, absolute: bool) -> Vec<Instant> {
    let mut out = Vec::with_capacity(FRAMES);
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    for n in 0..FRAMES {
        if absolute {
            let due = start + period() * n as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        } else {
            // The lab's reference: wait 50 ms, then read and send.
            std::thread::sleep(period());
        }
        out.push(Instant::now());
    }
    out
}

fn main() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media"));
    let server = Server::bind(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(root),
        fps: FPS,
        ..ServerConfig::default()
    })
    .expect("bind")
    .spawn();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rtsp = TcpStream::connect(server.local_addr()).unwrap();
    let port = rtp.local_addr().unwrap().port();
    let mut buf = vec![0u8; 70_000];
    let setup = format!(
        "SETUP movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/UDP; client_port= {port}\r\n\r\n"
    );
    rtsp.write_all(setup.as_bytes()).unwrap();
    let n = rtsp.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    let session = reply
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .expect("session")
        .trim()
        .to_string();

    let start = Instant::now() + Duration::from_millis(100);
    let floor = std::thread::spawn(move || bare_sleeper(start, true));
    let lab = std::thread::spawn(move || bare_sleeper(start, false));
    let play = format!("PLAY movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n");
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    rtsp.write_all(play.as_bytes()).unwrap();
    let mut arrivals = Vec::with_capacity(FRAMES);
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while arrivals.len() < FRAMES {
        let Ok(n) = rtp.recv(&mut buf) else { break };
        if n > 14 && buf[12] == 0xff && buf[13] == 0xd8 {
            arrivals.push(Instant::now());
        }
    }
    let floor = floor.join().unwrap();
    let lab = lab.join().unwrap();
    assert_eq!(arrivals.len(), FRAMES, "every frame arrived");

    let ours = figures(&arrivals, best_anchor(&arrivals));
    let floor = figures(&floor, start);
    // Like a receiver, judge the lab-style thread against its best-fitting
    // start: what remains is its drift.
    let lab = figures(&lab, best_anchor(&lab));
    let nominal = FPS as f64;
    println!("pacing over {FRAMES} frames at {FPS} fps (25 s), loopback, same run:");
    println!(
        "{:<28} {:>12} {:>10} {:>10} {:>10} {:>12}",
        "", "rate", "p50 late", "p99 late", "max late", "behind@end"
    );
    for (name, f) in [
        ("streamlab server (arrivals)", &ours),
        ("bare sleeper (timer floor)", &floor),
        ("lab-style sleep(50ms)", &lab),
    ] {
        println!(
            "{:<28} {:>8.4} fps {:>10} {:>10} {:>10} {:>12}",
            name,
            f.rate,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            ms(f.behind_at_end)
        );
    }
    let rate_err = (ours.rate - nominal).abs() / nominal * 100.0;
    println!(
        "delivered rate off nominal: ours {rate_err:.4}% (goal < 0.05%), lab-style {:.3}%",
        (lab.rate - nominal).abs() / nominal * 100.0
    );
    println!(
        "p99 lateness, ours minus floor: {} (goal <= 1 ms); ratio ours/floor {:.2}",
        ms(ours.p99 - floor.p99),
        ours.p99 / floor.p99.max(1e-6)
    );
}
