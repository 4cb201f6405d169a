//! Our client against GStreamer's RTSP server (gst-rtsp-server through
//! python3-gi, `tests/peers/gst_rtsp_server.py`): 640x480 and 1920x1080,
//! over UDP and TCP interleaved, and with Digest authentication, right and
//! wrong. Each stream is a known number of frames at a known rate, so the
//! test can say how many frames must arrive and how fast.
//!
//! The peer is installed by `.ci/run` (python3-gi, gir1.2-gst-rtsp-server-1.0);
//! with STREAMLAB_REQUIRE_PEERS=1 a missing one fails the test.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::peers_required;
use crossbeam_channel::Receiver;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientError, ClientEvent, ClientHandle, ClientStats,
    DialectChoice, TransportChoice,
};
use streamlab::protocol::State;

/// A python that has gi and GstRtspServer: the first python3 on PATH may
/// be a pyenv one without the system's site-packages.
fn python() -> Option<&'static str> {
    static FOUND: OnceLock<Option<&'static str>> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        ["python3", "/usr/bin/python3"].into_iter().find(|py| {
            Command::new(py)
                .args([
                    "-c",
                    "import gi; gi.require_version('GstRtspServer','1.0'); \
                     from gi.repository import GstRtspServer",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    if found.is_none() {
        assert!(
            !peers_required(),
            "python3-gi with gir1.2-gst-rtsp-server-1.0 is required (STREAMLAB_REQUIRE_PEERS)"
        );
        eprintln!("note: no python3 with GstRtspServer; skipping");
    }
    found
}

/// gst_rtsp_server.py on a free port, killed however the test ends.
struct GstServer {
    child: Child,
    port: u16,
    stderr: Receiver<String>,
}

impl GstServer {
    fn start(python: &str, args: &[&str]) -> GstServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/gst_rtsp_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gst_rtsp_server.py");
        let stdout = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let (err_tx, stderr) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            let _ = err_tx.send(s);
        });
        let (port_tx, port_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = port_tx.send(line);
        });
        let mut server = GstServer {
            child,
            port: 0,
            stderr,
        };
        let line = port_rx
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_default();
        match line.trim().parse() {
            Ok(port) if port > 0 => server.port = port,
            _ => panic!(
                "gst_rtsp_server.py gave no port ({line:?}): {}",
                server.stop()
            ),
        }
        server
    }

    fn url(&self, userinfo: &str) -> String {
        format!("rtsp://{userinfo}127.0.0.1:{}/test", self.port)
    }

    /// Kill the server; what it wrote to stderr.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default()
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(url: &str, transport: TransportChoice) -> ClientHandle {
    let mut cfg = ClientConfig::from_url(url).unwrap();
    cfg.dialect = DialectChoice::Standard;
    cfg.transport = transport;
    ClientHandle::spawn(cfg, || {})
}

/// What one play of a whole stream saw.
#[derive(Debug, Default)]
struct Played {
    frames: u64,
    size: Option<(u32, u32)>,
    /// Arrival of the first and the last frame.
    first: Option<Instant>,
    last: Option<Instant>,
    /// RTP timestamp steps between delivered frames, in 90 kHz ticks.
    steps: Vec<u32>,
    stats: ClientStats,
    errors: Vec<ClientError>,
}

impl Played {
    /// Frames per second from the first frame's arrival to the last's.
    fn fps(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) if self.frames > 1 && b > a => {
                (self.frames - 1) as f64 / (b - a).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// SETUP, PLAY until `frames` frames came (or the stream went quiet),
/// TEARDOWN; everything the client said on the way.
fn play(url: &str, transport: TransportChoice, frames: u64) -> Played {
    let client = client(url, transport);
    let events = client.events().clone();
    let mut p = Played::default();
    let mut last_ts = None;
    client.send(ClientCommand::Setup);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut state = State::Init;
    while p.frames < frames {
        let Ok(ev) = events.recv_deadline(deadline) else {
            panic!("timed out in {state} after {} frames: {p:?}", p.frames);
        };
        match ev {
            ClientEvent::State { state: s, .. } => {
                if s == State::Ready && state == State::Init {
                    client.send(ClientCommand::Play);
                }
                state = s;
            }
            ClientEvent::Frame(f) => {
                let now = Instant::now();
                p.frames += 1;
                p.first.get_or_insert(now);
                p.last = Some(now);
                assert!(
                    p.size.is_none_or(|s| s == (f.width, f.height)),
                    "the size changed mid-stream"
                );
                p.size = Some((f.width, f.height));
                if let Some(t) = last_ts {
                    p.steps.push(f.rtp_timestamp.wrapping_sub(t));
                }
                last_ts = Some(f.rtp_timestamp);
            }
            ClientEvent::Stats(s) => p.stats = s,
            ClientEvent::Error(e) => {
                p.errors.push(e);
                if state == State::Init {
                    break;
                }
            }
            // The decoder skipped some: the stream ends short of `frames`.
            ClientEvent::StreamEnded => break,
            ClientEvent::Wire(_)
            | ClientEvent::Timeline(_)
            | ClientEvent::Records(_)
            | ClientEvent::Tpc3(_) => {}
            // E.g. "switching to TCP": the transport asked for did not work.
            ClientEvent::Notice(n) => panic!("unexpected: {n}"),
            ClientEvent::Stopped => break,
        }
    }
    if state != State::Init {
        client.send(ClientCommand::Teardown);
        let deadline = Instant::now() + Duration::from_secs(5);
        while state != State::Init {
            match events.recv_deadline(deadline) {
                Ok(ClientEvent::State { state: s, .. }) => state = s,
                Ok(ClientEvent::Stats(s)) => p.stats = s,
                Ok(ClientEvent::Error(e)) => p.errors.push(e),
                Ok(_) => {}
                Err(_) => panic!("no answer to TEARDOWN: {p:?}"),
            }
        }
    }
    client.shutdown(Duration::from_secs(2));
    // The final counters, sent as the engine stops.
    for ev in events.try_iter() {
        if let ClientEvent::Stats(s) = ev {
            p.stats = s;
        }
    }
    p
}

/// gst serves `frames` frames of `w`x`h` at `fps`; every one arrives whole,
/// at about that rate, with the server's timestamps, at the right size.
fn plays_every_frame(
    (w, h): (u32, u32),
    pattern: &str,
    fps: u32,
    frames: u64,
    transport: TransportChoice,
) {
    let Some(py) = python() else {
        return;
    };
    let size = format!("{w}x{h}");
    let (fps_s, frames_s) = (fps.to_string(), frames.to_string());
    let mut server = GstServer::start(
        py,
        &[
            "--size",
            &size,
            "--fps",
            &fps_s,
            "--frames",
            &frames_s,
            "--pattern",
            pattern,
        ],
    );
    let p = play(&server.url(""), transport, frames);
    let log = server.stop();
    eprintln!(
        "{size} {transport:?}: {} frames at {:.2} fps, {} packets, {} skipped",
        p.frames,
        p.fps(),
        p.stats.packets,
        p.stats.frames_skipped
    );
    assert!(p.errors.is_empty(), "{:?}\ngst: {log}", p.errors);
    assert_eq!(p.size, Some((w, h)), "{p:?}");
    let s = &p.stats;
    assert_eq!(s.lost, 0, "{s:?}");
    assert_eq!(s.dropped_total(), 0, "{s:?}");
    assert_eq!(s.decode_errors, 0, "{s:?}");
    // Every frame came whole: decoded, or skipped by a decoder that a busy
    // machine held up (and that says so).
    assert_eq!(s.frames, p.frames, "{s:?}");
    assert_eq!(s.frames + s.frames_skipped, frames, "{s:?}");
    assert!(s.frames >= frames / 2, "{s:?}");
    // The server's clock: one frame period between frames delivered in a
    // row (a skipped frame makes one step of two periods). gst truncates
    // nanoseconds to 90 kHz ticks, so 1/30 s steps 2999, 3000 or 3001.
    let period = 90_000 / fps;
    assert!(
        p.steps.iter().all(|&d| {
            let periods = (d + period / 2) / period;
            periods >= 1 && d.abs_diff(periods * period) <= 1
        }),
        "RTP timestamp steps {:?}, period {period}",
        p.steps
    );
    let rate = p.fps() * (frames - 1) as f64 / (s.frames - 1) as f64;
    // Arrival is as fast as the server sends: not bunched up (faster) and
    // not falling behind (slower); wide bounds for a loaded 2-core machine.
    assert!(
        (0.7 * fps as f64..=1.3 * fps as f64).contains(&rate),
        "{rate:.2} fps, not about {fps}: {p:?}"
    );
}

#[test]
fn plays_640x480_over_udp() {
    plays_every_frame((640, 480), "ball", 30, 60, TransportChoice::Udp);
}

#[test]
fn plays_640x480_over_tcp() {
    plays_every_frame((640, 480), "ball", 30, 60, TransportChoice::Tcp);
}

// SMPTE bars: 130 KB frames, about 95 packets in each burst.
#[test]
fn plays_1920x1080_over_udp() {
    plays_every_frame((1920, 1080), "smpte", 30, 60, TransportChoice::Udp);
}

#[test]
fn plays_1920x1080_over_tcp() {
    plays_every_frame((1920, 1080), "smpte", 30, 60, TransportChoice::Tcp);
}

#[test]
fn digest_authentication_right_and_wrong_password() {
    let Some(py) = python() else {
        return;
    };
    let mut server = GstServer::start(
        py,
        &[
            "--frames",
            "30",
            "--fps",
            "30",
            "--user",
            "admin",
            "--password",
            "s3cret",
        ],
    );
    let p = play(&server.url("admin:s3cret@"), TransportChoice::Udp, 30);
    assert!(
        p.errors.is_empty(),
        "{:?}\ngst: {}",
        p.errors,
        server.stop()
    );
    assert_eq!(p.stats.frames + p.stats.frames_skipped, 30, "{p:?}");
    assert_eq!(p.size, Some((640, 480)));

    for (userinfo, had_credentials) in [("admin:wrong@", true), ("", false)] {
        let p = play(&server.url(userinfo), TransportChoice::Udp, 1);
        assert_eq!(p.frames, 0);
        assert_eq!(
            p.errors,
            vec![ClientError::Auth { had_credentials }],
            "{userinfo}"
        );
        let msg = p.errors[0].to_string();
        assert!(msg.contains("401"), "{msg}");
    }
}
