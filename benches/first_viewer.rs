//! The first viewer of a 4:4:4 1080p clip, every frame of which must be
//! re-encoded before RTP/JPEG can carry it: when each frame reaches the
//! viewer against the sender's schedule (PLAY's reply + n x period), with
//! the re-encode in the sender's path (`encode_ahead: false`, as before the
//! worker existed) and with the worker encoding ahead of the playhead, in
//! the same run on the same clip, each on a fresh server (nothing cached).
//!
//! Run: `cargo bench --bench first_viewer` (about a minute: the clip is
//! made first, then each way plays it for 10 s).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use streamlab::media::Framing;
use streamlab::media::pattern::make_clip;
use streamlab::net::server::{Server, ServerConfig};

const FPS: u32 = 30;
const FRAMES: usize = 300;
const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

fn period() -> Duration {
    Duration::from_nanos(1_000_000_000 / FPS as u64)
}

struct Figures {
    first_ms: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// Frames more than a whole period late: due on screen when the next
    /// one was, a stutter the viewer sees.
    stalls: usize,
}

/// Reads one reply's head; returns it as text.
fn reply(rtsp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(rtsp.read(&mut b).unwrap(), 1, "the server closed");
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Plays the clip once from a fresh server; the arrival of each frame's
/// first fragment against PLAY's reply + n x period, in ms.
fn play(root: &Path, encode_ahead: bool) -> Vec<f64> {
    let server = Server::bind(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(root.to_path_buf()),
        fps: FPS,
        encode_ahead,
        ..ServerConfig::default()
    })
    .expect("bind")
    .spawn();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let url = format!("rtsp://{}/clip.mjpeg", server.local_addr());
    let mut rtsp = TcpStream::connect(server.local_addr()).unwrap();
    rtsp.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        rtsp,
        "SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
        port + 1
    )
    .unwrap();
    let head = reply(&mut rtsp);
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("a session")
        .to_string();
    write!(
        rtsp,
        "PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"
    )
    .unwrap();
    reply(&mut rtsp);
    // The sender starts its schedule as it gets PLAY, just after replying.
    let anchor = Instant::now();
    rtp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut arrivals = Vec::with_capacity(FRAMES);
    let mut last_ts = None;
    while arrivals.len() < FRAMES {
        let n = rtp.recv(&mut buf).expect("RTP within 10 s");
        if n < 20 {
            continue;
        }
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let offset = u32::from_be_bytes([0, buf[13], buf[14], buf[15]]);
        if offset == 0 && last_ts != Some(ts) {
            last_ts = Some(ts);
            arrivals.push(Instant::now());
        }
    }
    drop(rtsp);
    server.stop();
    let p = period().as_secs_f64();
    arrivals
        .iter()
        .enumerate()
        .map(|(n, t)| (t.duration_since(anchor).as_secs_f64() - n as f64 * p) * 1e3)
        .collect()
}

fn figures(late: &[f64]) -> Figures {
    let p = period().as_secs_f64() * 1e3;
    let stalls = late.iter().filter(|&&l| l > p).count();
    let mut sorted = late.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f).round() as usize];
    Figures {
        first_ms: late[0],
        p50: q(0.5),
        p99: q(0.99),
        max: q(1.0),
        stalls,
    }
}

fn main() {
    let root = std::env::temp_dir().join(format!("streamlab-first-viewer-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("clip.mjpeg");
    let made = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    make_clip(&mut out, FRAMES as u32, WIDTH, HEIGHT, 90, Framing::Raw).unwrap();
    drop(out);
    eprintln!(
        "made a {FRAMES}-frame {WIDTH}x{HEIGHT} 4:4:4 clip in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    let before = figures(&play(&root, false));
    let after = figures(&play(&root, true));
    std::fs::remove_dir_all(&root).ok();

    println!(
        "first viewer of a {WIDTH}x{HEIGHT} 4:4:4 clip (re-encoded to 4:2:0 for RFC 2435), \
         {FRAMES} frames at {FPS} fps, loopback, same run;"
    );
    println!("lateness of each frame's first packet against PLAY + n x period:");
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "frame 0", "p50 late", "p99 late", "max late", ">1 period"
    );
    for (name, f) in [
        ("re-encode in the sender's path", &before),
        ("encode-ahead worker", &after),
    ] {
        println!(
            "{:<34} {:>7.2} ms {:>7.2} ms {:>7.2} ms {:>7.2} ms {:>10}",
            name, f.first_ms, f.p50, f.p99, f.max, f.stalls
        );
    }
    println!(
        "p99 lateness before/after: {:.1}x; frames over a period late {} -> {}",
        before.p99 / after.p99.max(1e-3),
        before.stalls,
        after.stalls
    );
}
