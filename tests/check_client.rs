//! `streamlab check client` against clients that each make one common
//! student mistake (written here), TPC-3 clients, and the lab's own
//! reference client (tests/peers/lab_client.py), which must pass every
//! check.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::LabClient;
use crossbeam_channel::Receiver;
use streamlab::net::check::client::listening;
use streamlab::net::check::{CheckError, CheckEvent, ClientCheckOptions, check_client};
use streamlab::protocol::check::{CheckDialect, CheckId, Report};

type Check = JoinHandle<Result<Report, CheckError>>;

/// A check listening on a free port of 127.0.0.1.
fn start(dialect: CheckDialect, fps: u32) -> (SocketAddr, Check, Receiver<CheckEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let opts = ClientCheckOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        file: None,
        dialect,
        fps,
    };
    let check = std::thread::spawn(move || check_client(opts, Some(tx), None));
    let addr = listening(&rx, Duration::from_secs(10)).expect("the check listens");
    (addr, check, rx)
}

/// The check's report and what it said on the way, once the client has
/// gone (within 10 s).
fn finish(check: Check, events: &Receiver<CheckEvent>) -> (Report, Vec<CheckEvent>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = Vec::new();
    loop {
        let e = events
            .recv_deadline(deadline)
            .expect("the check ends within 10 s of the client leaving");
        let end = matches!(e, CheckEvent::Finished(_));
        said.push(e);
        if end {
            break;
        }
    }
    (check.join().unwrap().expect("the check ran"), said)
}

fn report(check: Check, events: &Receiver<CheckEvent>) -> Report {
    finish(check, events).0
}

fn show(r: &Report) -> String {
    r.checks
        .iter()
        .map(|c| {
            format!(
                "{} {} {}\n",
                if c.ok { "PASS" } else { "FAIL" },
                c.id,
                c.seen
            )
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    no_session_on_play: bool,
    transport_on_play: bool,
    cseq_stuck: bool,
    no_teardown: bool,
    port_closed: bool,
    pause_before_play: bool,
}

/// A lab client: SETUP, PLAY, a few frames, PAUSE, TEARDOWN, each in the
/// lab's exact form unless a fault says otherwise. Keeps its RTP socket
/// until the check is over (returned), so that no late frame is refused.
fn lab_client(addr: SocketAddr, f: Faults) -> UdpSocket {
    let mut c = LabClient::connect(addr);
    let port = if f.port_closed {
        // A port nothing listens on: bound, then let go.
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        c.rtp_port()
    };
    let mut cseq = 0;
    let mut send = |c: &mut LabClient, method: &str, third: Option<String>| {
        if !f.cseq_stuck || cseq == 0 {
            cseq += 1;
        }
        let mut req = format!("{method} movie.Mjpeg RTSP/1.0\nCSeq: {cseq}");
        if let Some(t) = third {
            req.push('\n');
            req.push_str(&t);
        }
        c.send_raw(req.as_bytes());
        c.read_reply()
    };
    let setup = send(
        &mut c,
        "SETUP",
        Some(format!("Transport: RTP/UDP; client_port= {port}")),
    );
    assert_eq!(setup.status, 200);
    let session = setup.headers.session().unwrap().to_string();
    if f.pause_before_play {
        // Out of the lab's state diagram: PAUSE in READY.
        send(&mut c, "PAUSE", Some(format!("Session: {session}")));
    }
    let play_third = if f.no_session_on_play {
        None
    } else if f.transport_on_play {
        Some(format!(
            "Session: {session}\nTransport: RTP/UDP; client_port= {port}"
        ))
    } else {
        Some(format!("Session: {session}"))
    };
    assert_eq!(send(&mut c, "PLAY", play_third).status, 200);
    if f.port_closed {
        // Long enough for a few frames to be refused.
        let _ = c.recv_rtp(Duration::from_millis(600));
    } else {
        for _ in 0..5 {
            assert!(c.recv_rtp(Duration::from_secs(3)).is_some(), "RTP comes");
        }
    }
    assert_eq!(
        send(&mut c, "PAUSE", Some(format!("Session: {session}"))).status,
        200
    );
    if !f.no_teardown {
        assert_eq!(
            send(&mut c, "TEARDOWN", Some(format!("Session: {session}"))).status,
            200
        );
    }
    c.rtp.try_clone().unwrap()
}

fn only(f: Faults, id: CheckId, words: &str) {
    let (addr, check, events) = start(CheckDialect::Lab, 20);
    let _rtp = lab_client(addr, f);
    let r = report(check, &events);
    assert_eq!(r.failures(), [id], "{f:?}:\n{}", show(&r));
    let c = r.get(id).unwrap();
    assert!(c.seen.contains(words), "{id}: {:?} lacks {words:?}", c.seen);
    assert!(c.expected.contains("the lab handout"), "{}", c.expected);
}

#[test]
fn a_correct_lab_client_passes_every_check() {
    let (addr, check, events) = start(CheckDialect::Lab, 20);
    let _rtp = lab_client(addr, Faults::default());
    let (r, said) = finish(check, &events);
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
    // Every request came out in the wire log with its notes.
    let requests: Vec<_> = said
        .into_iter()
        .filter_map(|e| match e {
            CheckEvent::Wire(w) if !w.sent => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 4);
    assert!(requests[0].text.starts_with("SETUP movie.Mjpeg RTSP/1.0"));
    assert!(
        requests[0]
            .notes
            .iter()
            .any(|n| n.id == CheckId::ReqTransport && n.ok)
    );
    assert!(requests.iter().all(|w| w.notes.iter().all(|n| n.ok)));
}

#[test]
fn forgets_session_on_play() {
    only(
        Faults {
            no_session_on_play: true,
            ..Faults::default()
        },
        CheckId::ReqSession,
        "PLAY has no Session",
    );
}

#[test]
fn sends_transport_on_play() {
    only(
        Faults {
            transport_on_play: true,
            ..Faults::default()
        },
        CheckId::ReqNoTransport,
        "PLAY carries Transport",
    );
}

#[test]
fn does_not_increment_cseq() {
    only(
        Faults {
            cseq_stuck: true,
            ..Faults::default()
        },
        CheckId::ReqCseq,
        "+1 per request gives 2",
    );
}

#[test]
fn never_sends_teardown() {
    only(
        Faults {
            no_teardown: true,
            ..Faults::default()
        },
        CheckId::ClientTeardown,
        "without a TEARDOWN",
    );
}

#[test]
fn names_a_port_it_does_not_open() {
    only(
        Faults {
            port_closed: true,
            ..Faults::default()
        },
        CheckId::RtpPortOpen,
        "refused",
    );
}

#[test]
fn pauses_before_playing() {
    only(
        Faults {
            pause_before_play: true,
            ..Faults::default()
        },
        CheckId::ReqState,
        "PAUSE sent in READY",
    );
}

// --- TPC-3 -----------------------------------------------------------------

/// A TPC-3 client: `FILE PORT`, reads the session id, sends `go_word`,
/// reads RTP until the server closes the connection. The RTP it got.
fn tpc3_client(addr: SocketAddr, go_word: &str) -> Vec<Vec<u8>> {
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("movie.Mjpeg {port}\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let id: u32 = line.trim().parse().expect("a session id");
    s.write_all(format!("{go_word}\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    if go_word == "Go" {
        rtp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = vec![0u8; 70_000];
        // The server closes the connection after the last frame.
        while let Ok(n) = rtp.recv(&mut buf) {
            got.push(buf[..n].to_vec());
            let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
            assert_eq!(ssrc, id, "SSRC = the session id");
            if got.len() == 200 {
                break;
            }
        }
        let _ = r.read_to_end(&mut Vec::new());
    }
    got
}

#[test]
fn a_tpc3_client_passes_and_gets_the_file() {
    // 200 frames per second: the whole sample in about a second.
    let (addr, check, events) = start(CheckDialect::Tpc3, 200);
    let got = tpc3_client(addr, "Go");
    let r = report(check, &events);
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
    assert!(got.len() >= 100, "{} frames", got.len());
    assert_eq!(
        u16::from_be_bytes([got[0][2], got[0][3]]),
        1,
        "sequence from 1"
    );
}

#[test]
fn a_tpc3_client_that_does_not_say_go() {
    let (addr, check, events) = start(CheckDialect::Tpc3, 200);
    // It hangs up after its wrong word; no media was started for it.
    assert!(tpc3_client(addr, "go!").is_empty());
    let r = report(check, &events);
    assert_eq!(r.failures(), [CheckId::Tpc3Go], "\n{}", show(&r));
    assert!(
        r.get(CheckId::Tpc3Go)
            .unwrap()
            .expected
            .contains("the TPC-3 handout")
    );
}

// --- The lab's reference client ------------------------------------------------

#[test]
fn the_lab_reference_client_passes_every_check() {
    if !common::have_python() {
        return;
    }
    let (addr, check, events) = start(CheckDialect::Lab, 20);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/lab_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &addr.port().to_string(), "0", "movie.Mjpeg"])
        .args(["--frames", "20", "--pause-after", "10"])
        .stdin(Stdio::null())
        .output()
        .expect("run lab_client.py");
    assert!(
        out.status.success(),
        "lab_client.py: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = report(check, &events);
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
    assert!(
        r.get(CheckId::RtpPortOpen)
            .unwrap()
            .seen
            .contains("never refused")
    );
}

/// A TPC-3 client written from the assignment (tests/peers/tpc3_client.py)
/// passes every check of `check client --dialect tpc3`.
#[test]
fn the_python_tpc3_client_passes_every_check() {
    if !common::have_python() {
        return;
    }
    let (addr, check, events) = start(CheckDialect::Tpc3, 20);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/tpc3_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &addr.port().to_string(), "0", "movie.Mjpeg"])
        .args(["--frames", "20"])
        .stdin(Stdio::null())
        .output()
        .expect("run tpc3_client.py");
    assert!(
        out.status.success(),
        "tpc3_client.py: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = report(check, &events);
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
}
