//! `streamlab check server` against servers that each make one common
//! student mistake (a fake lab server written here, one flag per
//! mistake), a TPC-3-speaking fake (Streamlab's server has no TPC-3 yet),
//! and the lab's own reference server (tests/peers/lab_server.py), which
//! must pass every check.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Reaper, have_python};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use streamlab::net::check::{CheckError, CheckEvent, check_server};
use streamlab::protocol::check::server::ServerCheckConfig;
use streamlab::protocol::check::{CheckDialect, CheckId, Report};

/// One common mistake each; all false is a correct lab server.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    version_1: bool,
    pt_96: bool,
    marker_set: bool,
    seq_from_0: bool,
    seq_stuck: bool,
    ssrc_changing: bool,
    ts_millis_back: bool,
    truncated_jpeg: bool,
    fps_10: bool,
    pause_ignored: bool,
    restart_on_resume: bool,
    cseq_not_echoed: bool,
    lines_reordered: bool,
    no_404: bool,
    rtp_to_tcp_port: bool,
    status_without_reason: bool,
    new_session_each_reply: bool,
    teardown_ignored: bool,
    late_start: bool,
}

fn frames() -> &'static [Vec<u8>] {
    static F: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    F.get_or_init(common::movie_frames)
}

/// Where a fake's sender is in the file, shared by its PLAYs.
struct Playhead {
    next: usize,
    sent: u32,
}

/// A fake lab server on 127.0.0.1 (one thread per connection).
fn fake_lab_server(faults: Faults) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || serve_lab(s, faults));
        }
    });
    addr
}

fn serve_lab(mut s: TcpStream, f: Faults) {
    let peer = s.peer_addr().unwrap();
    let mut session = 424_242;
    let mut rtp_port = 0u16;
    let head = Arc::new(Mutex::new(Playhead { next: 0, sent: 0 }));
    let mut stop: Option<crossbeam_channel::Sender<()>> = None;
    let mut buf = [0u8; 1024];
    loop {
        // One read is one request, as the reference's recv(256).
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let lines: Vec<&str> = text.split('\n').collect();
        let words: Vec<&str> = lines[0].split(' ').collect();
        let cseq = lines
            .get(1)
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("0")
            .to_string();
        let reply_cseq = if f.cseq_not_echoed { "1".into() } else { cseq };
        if f.new_session_each_reply {
            session += 1;
        }
        let status = if f.status_without_reason {
            "RTSP/1.0 200"
        } else {
            "RTSP/1.0 200 OK"
        };
        let ok = if f.lines_reordered {
            format!("{status}\nSession: {session}\nCSeq: {reply_cseq}")
        } else {
            format!("{status}\nCSeq: {reply_cseq}\nSession: {session}")
        };
        match words[0] {
            // The mistake: no answer for a missing file.
            "SETUP" if words.get(1) != Some(&"movie.Mjpeg") && f.no_404 => {}
            "SETUP" if words.get(1) != Some(&"movie.Mjpeg") => {
                let _ = s.write_all(
                    format!("RTSP/1.0 404 Not Found\nCSeq: {reply_cseq}\nSession: {session}")
                        .as_bytes(),
                );
            }
            "SETUP" => {
                rtp_port = lines
                    .get(2)
                    .and_then(|l| l.split(' ').nth(3))
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(0);
                let _ = s.write_all(ok.as_bytes());
            }
            "PLAY" => {
                if f.restart_on_resume {
                    *head.lock().unwrap() = Playhead { next: 0, sent: 0 };
                }
                let _ = s.write_all(ok.as_bytes());
                let (tx, rx) = crossbeam_channel::bounded(1);
                stop = Some(tx);
                let to = if f.rtp_to_tcp_port {
                    peer
                } else {
                    SocketAddr::new(peer.ip(), rtp_port)
                };
                let head = head.clone();
                std::thread::spawn(move || send_frames(to, f, head, rx));
            }
            "PAUSE" => {
                if !f.pause_ignored {
                    stop.take();
                }
                let _ = s.write_all(ok.as_bytes());
            }
            "TEARDOWN" => {
                if !f.teardown_ignored {
                    stop.take();
                }
                let _ = s.write_all(ok.as_bytes());
            }
            _ => {}
        }
    }
}

/// The fake's sender: a frame every period on an absolute schedule, until
/// the stop channel closes (its sender dropped).
fn send_frames(to: SocketAddr, f: Faults, head: Arc<Mutex<Playhead>>, stop: Receiver<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let period = Duration::from_millis(if f.fps_10 { 100 } else { 50 });
    // The mistake: the first PLAY's first frame only after 1.2 s.
    let late = f.late_start && head.lock().unwrap().sent == 0;
    let start = Instant::now() + Duration::from_millis(if late { 1200 } else { 0 });
    let mut k = 0u32;
    loop {
        k += 1;
        match stop.recv_deadline(start + period * k) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let mut h = head.lock().unwrap();
        let Some(jpeg) = frames().get(h.next) else {
            return;
        };
        h.next += 1;
        h.sent += 1;
        let frame_no = h.next as u32;
        let seq = if f.seq_stuck {
            1
        } else if f.seq_from_0 {
            frame_no - 1
        } else {
            frame_no
        };
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let ts = if f.ts_millis_back {
            // Milliseconds, counted down: a clock read the wrong way.
            (4_000_000_000u64 - unix.as_millis() as u64 % 1_000_000_000) as u32
        } else {
            unix.as_secs() as u32
        };
        let ssrc = if f.ssrc_changing { h.sent } else { 0 };
        let mut p = vec![
            if f.version_1 { 0x40 } else { 0x80 },
            (if f.pt_96 { 96 } else { 26 }) | if f.marker_set { 0x80 } else { 0 },
        ];
        p.extend_from_slice(&(seq as u16).to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        let body = if f.truncated_jpeg {
            &jpeg[..jpeg.len() - 100]
        } else {
            &jpeg[..]
        };
        p.extend_from_slice(body);
        drop(h);
        let _ = sock.send_to(&p, to);
    }
}

/// A short check: 1.2 s of PLAY, 0.6 s after resuming, 0.4 s of watching.
fn quick(dialect: CheckDialect, addr: SocketAddr) -> ServerCheckConfig {
    let mut cfg = ServerCheckConfig::new(dialect, "127.0.0.1", addr.port(), "movie.Mjpeg", 0);
    cfg.play_for = Duration::from_millis(1200);
    cfg.resume_for = Duration::from_millis(600);
    cfg.watch_after = Duration::from_millis(400);
    cfg
}

fn check(faults: Faults) -> Report {
    let addr = fake_lab_server(faults);
    check_server(quick(CheckDialect::Lab, addr), None, None).expect("the check runs")
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

/// Exactly `id` failed, and its message says something of `words`.
fn only(faults: Faults, id: CheckId, words: &str) {
    let r = check(faults);
    assert_eq!(r.failures(), [id], "{faults:?}:\n{}", show(&r));
    let c = r.get(id).unwrap();
    assert!(c.seen.contains(words), "{id}: {:?} lacks {words:?}", c.seen);
    assert!(
        c.expected.contains("handout"),
        "{id}: the expectation names no handout: {}",
        c.expected
    );
}

#[test]
fn a_correct_lab_server_passes_every_check() {
    let r = check(Faults::default());
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
    assert_eq!(
        r.checks.len(),
        CheckId::server_checks(CheckDialect::Lab).len()
    );
}

#[test]
fn version_1() {
    let r = check(Faults {
        version_1: true,
        ..Faults::default()
    });
    assert_eq!(r.failures(), [CheckId::RtpVersion], "\n{}", show(&r));
    let c = r.get(CheckId::RtpVersion).unwrap();
    assert!(
        c.seen.starts_with("byte 0 = 0x40: V=1 (bits 0-1)"),
        "{}",
        c.seen
    );
    assert!(
        c.expected.contains("You must set this to 2"),
        "{}",
        c.expected
    );
    assert_eq!(
        c.packet.as_ref().map(|p| p[0]),
        Some(0x40),
        "the offending packet is kept"
    );
}

#[test]
fn payload_type_96() {
    only(
        Faults {
            pt_96: true,
            ..Faults::default()
        },
        CheckId::RtpPayloadType,
        "PT=96",
    );
}

#[test]
fn marker_set() {
    only(
        Faults {
            marker_set: true,
            ..Faults::default()
        },
        CheckId::RtpMarker,
        "M=1 (bit 8)",
    );
}

#[test]
fn sequence_from_0() {
    only(
        Faults {
            seq_from_0: true,
            ..Faults::default()
        },
        CheckId::RtpSequence,
        "not 1",
    );
}

#[test]
fn sequence_not_incremented() {
    only(
        Faults {
            seq_stuck: true,
            ..Faults::default()
        },
        CheckId::RtpSequence,
        "+1 gives 2",
    );
}

#[test]
fn ssrc_changing() {
    only(
        Faults {
            ssrc_changing: true,
            ..Faults::default()
        },
        CheckId::RtpSsrc,
        "changed from 1 to 2",
    );
}

#[test]
fn timestamp_in_milliseconds_going_back() {
    only(
        Faults {
            ts_millis_back: true,
            ..Faults::default()
        },
        CheckId::RtpTimestamp,
        "went back",
    );
}

#[test]
fn truncated_jpeg() {
    only(
        Faults {
            truncated_jpeg: true,
            ..Faults::default()
        },
        CheckId::RtpPayload,
        "not with the JPEG end FF D9",
    );
}

#[test]
fn ten_frames_per_second() {
    only(
        Faults {
            fps_10: true,
            ..Faults::default()
        },
        CheckId::RtpRate,
        "frames/s",
    );
}

#[test]
fn pause_ignored() {
    only(
        Faults {
            pause_ignored: true,
            ..Faults::default()
        },
        CheckId::PauseStops,
        "packets after PAUSE",
    );
}

#[test]
fn restart_from_frame_1_on_resume() {
    only(
        Faults {
            restart_on_resume: true,
            ..Faults::default()
        },
        CheckId::PlayResumes,
        "started over",
    );
}

#[test]
fn cseq_not_echoed() {
    only(
        Faults {
            cseq_not_echoed: true,
            ..Faults::default()
        },
        CheckId::RtspCseq,
        "says CSeq: 1",
    );
}

#[test]
fn reply_lines_in_another_order() {
    only(
        Faults {
            lines_reordered: true,
            ..Faults::default()
        },
        CheckId::RtspLineOrder,
        "line 2 is \"Session",
    );
}

#[test]
fn missing_file_not_answered() {
    only(
        Faults {
            no_404: true,
            ..Faults::default()
        },
        CheckId::RtspNotFound,
        "no reply",
    );
}

#[test]
fn rtp_sent_to_the_rtsp_connections_port() {
    only(
        Faults {
            rtp_to_tcp_port: true,
            ..Faults::default()
        },
        CheckId::RtpDestination,
        "the RTSP connection's own port",
    );
}

#[test]
fn status_line_without_its_reason() {
    only(
        Faults {
            status_without_reason: true,
            ..Faults::default()
        },
        CheckId::RtspStatusLine,
        "starts \"RTSP/1.0 200\"",
    );
}

#[test]
fn a_new_session_id_in_every_reply() {
    only(
        Faults {
            new_session_each_reply: true,
            ..Faults::default()
        },
        CheckId::RtspSession,
        "SETUP's said 424243",
    );
}

#[test]
fn teardown_ignored() {
    only(
        Faults {
            teardown_ignored: true,
            ..Faults::default()
        },
        CheckId::TeardownStops,
        "packets after TEARDOWN",
    );
}

#[test]
fn media_starts_late() {
    let addr = fake_lab_server(Faults {
        late_start: true,
        ..Faults::default()
    });
    // Long enough a PLAY for the rate to be measured after the late start.
    let mut cfg = quick(CheckDialect::Lab, addr);
    cfg.play_for = Duration::from_millis(2500);
    let r = check_server(cfg, None, None).unwrap();
    assert_eq!(r.failures(), [CheckId::PlayStarts], "\n{}", show(&r));
    assert!(
        r.get(CheckId::PlayStarts)
            .unwrap()
            .seen
            .contains("after PLAY")
    );
}

#[test]
fn the_wire_log_carries_the_notes() {
    let addr = fake_lab_server(Faults {
        lines_reordered: true,
        ..Faults::default()
    });
    let (tx, rx) = crossbeam_channel::unbounded();
    check_server(quick(CheckDialect::Lab, addr), Some(tx), None).unwrap();
    let events: Vec<CheckEvent> = rx.try_iter().collect();
    let replies: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            CheckEvent::Wire(w) if !w.sent => Some(w),
            _ => None,
        })
        .collect();
    assert!(replies.len() >= 5, "{events:?}");
    assert!(replies[0].text.starts_with("RTSP/1.0 200 OK\nSession"));
    assert!(
        replies[0]
            .notes
            .iter()
            .any(|n| n.id == CheckId::RtspLineOrder && !n.ok),
        "{:?}",
        replies[0].notes
    );
    assert!(
        matches!(events.last(), Some(CheckEvent::Finished(r)) if r.failures() == [CheckId::RtspLineOrder])
    );
}

#[test]
fn no_server_there_is_said_in_words() {
    // A port that was just free: nobody listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = ServerCheckConfig::new(CheckDialect::Lab, "127.0.0.1", port, "movie.Mjpeg", 0);
    let e = check_server(cfg, None, None).unwrap_err();
    assert!(matches!(e, CheckError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("is it running"), "{e}");
}

// --- TPC-3 -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Tpc3Faults {
    ssrc_zero: bool,
    data_before_go: bool,
    /// Answers a session id for any file, even one it does not have.
    any_file: bool,
    /// Answers -1 for every file, even one it has.
    no_file: bool,
}

/// A TPC-3 server as the handout describes it: `FILE PORT` in, the
/// session id (or -1) out, `Go` in, then the frames as RTP at 20 per
/// second with SSRC = the session id. Serves the first 20 frames.
fn fake_tpc3_server(f: Tpc3Faults) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || serve_tpc3(s, f));
        }
    });
    addr
}

fn serve_tpc3(s: TcpStream, f: Tpc3Faults) {
    let peer = s.peer_addr().unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut words = line.split_whitespace();
    let (file, port) = (
        words.next(),
        words.next().and_then(|p| p.parse::<u16>().ok()),
    );
    let file = if f.any_file {
        Some("movie.Mjpeg")
    } else if f.no_file {
        None
    } else {
        file
    };
    let (Some("movie.Mjpeg"), Some(port)) = (file, port) else {
        let _ = w.write_all(b"-1\n");
        return;
    };
    let id: u32 = 777_001;
    let _ = w.write_all(format!("{id}\n").as_bytes());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = SocketAddr::new(peer.ip(), port);
    let send = |n: usize| {
        let mut p = vec![0x80, 26];
        p.extend_from_slice(&(n as u16 + 1).to_be_bytes());
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        p.extend_from_slice(&unix.to_be_bytes());
        p.extend_from_slice(&(if f.ssrc_zero { 0 } else { id }).to_be_bytes());
        p.extend_from_slice(&frames()[n]);
        let _ = sock.send_to(&p, to);
    };
    let mut first = 0;
    if f.data_before_go {
        send(0);
        first = 1;
    }
    line.clear();
    if r.read_line(&mut line).is_err() || line.trim() != "Go" {
        return;
    }
    let start = Instant::now();
    let (_keep, never) = crossbeam_channel::bounded::<()>(1);
    for (k, n) in (first..20).enumerate() {
        // Paced on an absolute schedule; nothing ever comes on `never`.
        let _ = never.recv_deadline(start + Duration::from_millis(50) * k as u32);
        send(n);
    }
}

fn check_tpc3(f: Tpc3Faults) -> Report {
    let addr = fake_tpc3_server(f);
    check_server(quick(CheckDialect::Tpc3, addr), None, None).expect("the check runs")
}

#[test]
fn a_correct_tpc3_server_passes_every_check() {
    let r = check_tpc3(Tpc3Faults::default());
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
    assert!(r.get(CheckId::Tpc3MissingFile).unwrap().ok);
    assert!(
        r.get(CheckId::RtspCseq).is_none(),
        "no RTSP checks in TPC-3"
    );
}

#[test]
fn tpc3_wrong_ssrc() {
    let r = check_tpc3(Tpc3Faults {
        ssrc_zero: true,
        ..Tpc3Faults::default()
    });
    assert_eq!(r.failures(), [CheckId::RtpSsrc], "\n{}", show(&r));
    let c = r.get(CheckId::RtpSsrc).unwrap();
    assert!(c.seen.contains("the session id is 777001"), "{}", c.seen);
    assert!(c.expected.contains("the TPC-3 handout"), "{}", c.expected);
}

#[test]
fn tpc3_data_before_go() {
    let r = check_tpc3(Tpc3Faults {
        data_before_go: true,
        ..Tpc3Faults::default()
    });
    assert_eq!(r.failures(), [CheckId::Tpc3Go], "\n{}", show(&r));
    assert!(r.get(CheckId::Tpc3Go).unwrap().seen.contains("before Go"));
}

#[test]
fn tpc3_missing_file_not_refused() {
    let r = check_tpc3(Tpc3Faults {
        any_file: true,
        ..Tpc3Faults::default()
    });
    assert_eq!(r.failures(), [CheckId::Tpc3MissingFile], "\n{}", show(&r));
    let c = r.get(CheckId::Tpc3MissingFile).unwrap();
    assert!(c.seen.contains("777001"), "{}", c.seen);
    assert!(
        c.expected.contains("reply with a SessionId of -1"),
        "{}",
        c.expected
    );
}

#[test]
fn tpc3_refuses_a_file_it_has() {
    let r = check_tpc3(Tpc3Faults {
        no_file: true,
        ..Tpc3Faults::default()
    });
    // Without a session nothing is sent: the media checks fail with it,
    // each saying so.
    let c = r.get(CheckId::Tpc3SessionId).unwrap();
    assert!(!c.ok && c.seen.contains("answered -1"), "{}", c.seen);
    assert!(r.get(CheckId::Tpc3MissingFile).unwrap().ok);
    assert!(
        r.get(CheckId::RtpVersion)
            .unwrap()
            .seen
            .contains("no RTP packet came")
    );
}

// --- The lab's reference server, and the command line ------------------------

/// tests/peers/lab_server.py in the media folder, on a free port.
fn reference_server() -> (Reaper, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/lab_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["0", "--bind", "127.0.0.1"])
        .current_dir(common::media_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lab_server.py");
    let out = child.stdout.take().unwrap();
    let child = Reaper(child);
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep the pipe open until the server ends.
        let _ = r.read_to_end(&mut Vec::new());
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("lab_server.py says where it listens");
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("lab_server.py said {line:?}"));
    (child, port)
}

#[test]
fn the_lab_reference_server_passes_every_check() {
    if !have_python() {
        return;
    }
    let (_server, port) = reference_server();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = check_server(quick(CheckDialect::Lab, addr), None, None).unwrap();
    assert_eq!(r.failed(), 0, "\n{}", show(&r));
}

#[test]
fn streamlabs_own_server_passes_every_lab_and_standard_check() {
    let server = common::server(common::media_root(), 20);
    for dialect in [CheckDialect::Lab, CheckDialect::Standard] {
        let r = check_server(quick(dialect, server.local_addr()), None, None).unwrap();
        assert_eq!(r.failed(), 0, "{dialect:?}:\n{}", show(&r));
        assert_eq!(r.checks.len(), CheckId::server_checks(dialect).len());
    }
}

#[test]
fn the_command_prints_json_and_exits_by_the_verdict() {
    let run = |addr: SocketAddr| {
        let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
            .args([
                "check",
                "server",
                "127.0.0.1",
                &addr.port().to_string(),
                "movie.Mjpeg",
            ])
            .args(["--json", "--seconds", "1"])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), json)
    };
    let (code, json) = run(fake_lab_server(Faults {
        pt_96: true,
        ..Faults::default()
    }));
    assert_eq!(code, Some(1));
    assert_eq!(json["failed"], 1, "{json}");
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), json["passed"].as_u64().unwrap() as usize + 1);
    let pt = checks
        .iter()
        .find(|c| c["id"] == "rtp.payload_type")
        .unwrap();
    assert_eq!(pt["ok"], false);
    assert!(pt["seen"].as_str().unwrap().contains("PT=96"));
    assert!(pt["expected"].as_str().unwrap().contains("26"));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "check",
            "server",
            "127.0.0.1",
            &port.to_string(),
            "movie.Mjpeg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not run"));
}
