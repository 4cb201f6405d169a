//! TPC-3 (seed 000) against our server, with a client written here from
//! the assignment's text: the handshake bytes exactly, every datagram
//! checked as the assignment lists, all 500 frames of movie.Mjpeg
//! byte-identical; `-1` for a missing file; the stream stopping when the
//! client closes; TPC-3 and RTSP clients on one port.
//!
//! And our client: against our server (the whole movie, decoded exactly
//! as the file's frames decode), against servers written here (`-1`, an
//! answer that is not a number, a wrong SSRC and a sequence number going
//! back, each counted under its reason), against tests/peers/tpc3_server.py,
//! and `streamlab probe --dialect tpc3 --json`.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, ClientStats, DialectChoice, Direction,
    Tpc3Phase,
};
use streamlab::net::server::ServerConfig;
use streamlab::protocol::State;

fn tpc3_server(fps: u32) -> streamlab::net::server::ServerHandle {
    server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(media_root()),
        fps,
        ..ServerConfig::default()
    })
}

/// Connects and sends `request` (with `{port}` for the UDP port); returns
/// the connection, the UDP socket and the server's answer.
fn handshake(addr: SocketAddr, request: &str) -> (TcpStream, UdpSocket, String) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = udp.local_addr().unwrap().port();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(request.replace("{port}", &port.to_string()).as_bytes())
        .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\n") {
        match tcp.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            _ => break,
        }
    }
    (
        tcp,
        udp,
        String::from_utf8_lossy(&answer).trim().to_string(),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_whole_movie_arrives_as_the_assignment_asks() {
    let server = tpc3_server(200);
    let (mut tcp, udp, answer) = handshake(server.local_addr(), "movie.Mjpeg {port}");
    let session: u32 = answer.parse().expect("a session id in ASCII decimal");
    assert!(session > 0, "a positive session id: {answer}");
    // Nothing before Go.
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    assert!(udp.recv(&mut buf).is_err(), "a datagram before Go");
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"Go").unwrap();
    let frames = movie_frames();
    let started = unix_now();
    for (i, want) in frames.iter().enumerate() {
        let n = udp.recv(&mut buf).expect("a datagram");
        let p = &buf[..n];
        let h = rtp_header(p);
        assert_eq!(
            (h.version, h.padding, h.extension, h.cc, h.marker, h.pt),
            (2, false, false, 0, false, 26),
            "datagram {i}: V, P, X, CC, M, PT"
        );
        assert_eq!(
            h.seq as usize,
            i + 1,
            "sequence numbers from 1, +1 per image"
        );
        assert_eq!(h.ssrc, session, "SSRC = the session id");
        let ts = u64::from(h.ts);
        assert!(
            ts + 2 >= started && ts <= unix_now() + 2,
            "timestamp {ts}: Python's time(), now {}",
            unix_now()
        );
        assert!(
            &p[12..] == want.as_slice(),
            "datagram {i}: the JPEG as stored"
        );
    }
    // The stream ends with the file.
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        udp.recv(&mut buf).is_err(),
        "a datagram after the last frame"
    );
}

#[test]
fn a_missing_file_gets_minus_one_and_the_end() {
    let server = tpc3_server(20);
    let (mut tcp, _udp, answer) = handshake(server.local_addr(), "nothere.Mjpeg {port}\n");
    assert_eq!(answer, "-1");
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after -1: {rest:?}");
    assert_eq!(server.active_sessions(), 0);
}

#[test]
fn closing_the_connection_stops_the_stream() {
    let server = tpc3_server(20);
    // The other separators the assignment's clients use.
    for request in ["movie.Mjpeg,{port}\n", "movie.Mjpeg\n{port}\n"] {
        let (mut tcp, udp, answer) = handshake(server.local_addr(), request);
        assert!(answer.parse::<u32>().is_ok(), "{request:?}: {answer}");
        tcp.write_all(b"Go\n").unwrap();
        let mut buf = vec![0u8; 70_000];
        assert!(udp.recv(&mut buf).is_ok(), "{request:?}: no datagram");
        assert_eq!(server.active_sessions(), 1);
        drop(tcp);
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.active_sessions() > 0 {
            assert!(Instant::now() < deadline, "the stream went on");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn tpc3_lab_and_standard_clients_share_the_port() {
    let server = tpc3_server(20);
    let addr = server.local_addr();
    let (mut tcp, udp, answer) = handshake(addr, "movie.Mjpeg {port}");
    assert!(answer.parse::<u32>().is_ok(), "{answer}");
    tcp.write_all(b"Go").unwrap();
    let mut lab = LabClient::connect(addr);
    assert_eq!(lab.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(lab.request("PLAY", "movie.Mjpeg").status, 200);
    assert!(lab.recv_rtp(Duration::from_secs(5)).is_some());
    let mut standard = LabClient::connect(addr);
    standard.crlf = true;
    standard.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(standard.read_reply().status, 200);
    let mut buf = vec![0u8; 70_000];
    assert!(udp.recv(&mut buf).is_ok(), "the TPC-3 stream goes on");
}

fn tpc3_config(addr: SocketAddr, file: &str) -> ClientConfig {
    ClientConfig {
        host: "127.0.0.1".into(),
        rtsp_port: addr.port(),
        rtp_port: 0,
        file: file.into(),
        dialect: DialectChoice::Tpc3,
        ..ClientConfig::default()
    }
}

fn hash_of(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What a client reported, from its events.
#[derive(Default)]
struct Seen {
    wire: Vec<(Direction, String)>,
    phases: Vec<Tpc3Phase>,
    errors: Vec<String>,
    /// Each frame's sequence number and a hash of its pixels.
    frames: Vec<(u16, u64)>,
    stats: ClientStats,
    session: Option<String>,
    ended: bool,
}

impl Seen {
    fn take(&mut self, ev: &ClientEvent) {
        match ev {
            ClientEvent::Wire(w) => self.wire.push((w.direction, w.text.clone())),
            ClientEvent::Tpc3(p) => self.phases.push(*p),
            ClientEvent::Error(e) => self.errors.push(e.to_string()),
            // Hashed at once: holding 500 frames of pixels is 220 MB.
            ClientEvent::Frame(f) => self.frames.push((f.seq, hash_of(&f.rgba))),
            ClientEvent::Stats(s) => self.stats = s.clone(),
            ClientEvent::State {
                session: Some(s), ..
            } => self.session = Some(s.clone()),
            ClientEvent::StreamEnded => self.ended = true,
            _ => {}
        }
    }
}

/// Connect, wait for the session id, Go, and take events until `until`
/// holds; then stop the engine and take its last counters.
fn run_client(
    config: ClientConfig,
    what: &str,
    mut until: impl FnMut(&Seen, &ClientEvent) -> bool,
) -> Seen {
    let client = ClientHandle::spawn(config, || {});
    let events = client.events().clone();
    let mut seen = Seen::default();
    client.send(ClientCommand::Setup);
    let mut go_sent = false;
    wait_for(&client, what, |ev, _| {
        seen.take(ev);
        if !go_sent
            && matches!(
                ev,
                ClientEvent::State {
                    state: State::Ready,
                    ..
                }
            )
        {
            go_sent = true;
            client.send(ClientCommand::Play);
        }
        until(&seen, ev)
    });
    client.shutdown(Duration::from_secs(5));
    for ev in events.try_iter() {
        seen.take(&ev);
    }
    seen
}

#[test]
fn our_client_gets_the_whole_movie_from_our_server() {
    let server = tpc3_server(100);
    let seen = run_client(
        tpc3_config(server.local_addr(), "movie.Mjpeg"),
        "the end of the movie",
        |_, ev| matches!(ev, ClientEvent::StreamEnded),
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    let session = seen.session.clone().expect("a session id");
    let id: u32 = session.parse().expect("a number");
    // The handshake's bytes, as they crossed the wire.
    let port = seen.wire[0]
        .1
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "{:?}", seen.wire);
    assert_eq!(
        seen.wire,
        vec![
            (Direction::Sent, format!("movie.Mjpeg {port}\n")),
            (Direction::Received, format!("{session}\n")),
            (Direction::Sent, "Go\n".to_string()),
        ]
    );
    assert_eq!(
        seen.phases,
        vec![
            Tpc3Phase::NameSent,
            Tpc3Phase::SessionId,
            Tpc3Phase::GoSent,
            Tpc3Phase::Receiving,
            Tpc3Phase::Ended,
        ]
    );
    // Every frame, in order, decoding to exactly the file's pixels.
    let want: Vec<(u16, u64)> = movie_frames()
        .iter()
        .enumerate()
        .map(|(i, jpeg)| {
            let (_, _, rgba) = streamlab::media::decode::decode_rgba(jpeg).unwrap();
            (i as u16 + 1, hash_of(&rgba))
        })
        .collect();
    assert_eq!(seen.frames.len(), 500, "{:?}", seen.stats);
    assert!(seen.frames == want, "a frame differs from the file's");
    let s = &seen.stats;
    assert_eq!((s.frames, s.frames_skipped, s.decode_errors), (500, 0, 0));
    assert_eq!(s.dropped_total(), 0, "{:?}", s.dropped);
    assert_eq!(s.ssrc, Some(id), "SSRC = the session id");
    assert_eq!(s.lost, 0);
    assert!(seen.ended);
}

/// A TPC-3 server for one connection, as the assignment describes one:
/// it reads the request, answers `answer`, and after Go calls `send` with
/// a UDP socket and the client's data address. It returns the request and
/// the Go as they came, once the client has closed.
fn test_server(
    answer: &'static str,
    send: impl FnOnce(&UdpSocket, SocketAddr) + Send + 'static,
) -> (SocketAddr, JoinHandle<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut tcp, peer) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1024];
        let n = tcp.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let port: u16 = request.split_whitespace().nth(1).unwrap().parse().unwrap();
        tcp.write_all(answer.as_bytes()).unwrap();
        if answer.trim().parse::<i64>().is_ok_and(|id| id > 0) {
            let n = tcp.read(&mut buf).unwrap();
            let go = String::from_utf8_lossy(&buf[..n]).to_string();
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            send(&udp, SocketAddr::new(peer.ip(), port));
            // As the assignment's server does, wait for the client to
            // close: it sees the end of the file by the datagrams stopping.
            while tcp.read(&mut buf).is_ok_and(|n| n > 0) {}
            return (request, go);
        }
        // -1 and the end; wait for the client to go.
        let _ = tcp.read(&mut buf);
        (request, String::new())
    });
    (addr, t)
}

/// An RTP datagram as TPC-3 sends it: V=2, P=X=CC=M=0, PT 26.
fn datagram(seq: u16, ssrc: u32, jpeg: &[u8]) -> Vec<u8> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let mut p = vec![0x80, 26];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(jpeg);
    p
}

#[test]
fn minus_one_is_said_in_words() {
    let (addr, server) = test_server("-1\n", |_, _| {});
    let client = ClientHandle::spawn(tpc3_config(addr, "nothere.Mjpeg"), || {});
    client.send(ClientCommand::Setup);
    let mut seen = Seen::default();
    wait_for(&client, "the error", |ev, _| {
        seen.take(ev);
        matches!(ev, ClientEvent::Error(_))
    });
    assert_eq!(
        seen.errors,
        vec![
            "the server has no file named nothere.Mjpeg (it answered -1). Check the file name: \
             it is case-sensitive."
                .to_string()
        ]
    );
    wait_for(&client, "Ended", |ev, _| {
        matches!(ev, ClientEvent::Tpc3(Tpc3Phase::Ended))
    });
    drop(client);
    let (request, _) = server.join().unwrap();
    assert!(request.starts_with("nothere.Mjpeg "), "{request:?}");
}

#[test]
fn an_answer_that_is_not_a_number_is_a_clear_error() {
    let (addr, server) = test_server("RTSP/1.0 400 Bad Request\r\n\r\n", |_, _| {});
    let client = ClientHandle::spawn(tpc3_config(addr, "movie.Mjpeg"), || {});
    client.send(ClientCommand::Setup);
    let mut error = String::new();
    wait_for(&client, "the error", |ev, _| match ev {
        ClientEvent::Error(e) => {
            error = e.to_string();
            true
        }
        _ => false,
    });
    assert!(
        error.contains("\"RTSP/1.0 400 Bad Request\"") && error.contains("not a number"),
        "{error}"
    );
    drop(client);
    server.join().unwrap();
}

#[test]
fn a_wrong_ssrc_and_a_sequence_going_back_are_counted_under_their_reasons() {
    let frames = movie_frames();
    let (addr, server) = test_server("777\n", move |udp, to| {
        // 1..=10 with the session id, except 4 (another SSRC), and 3
        // again after 6 (the sequence going back).
        let mut order: Vec<(u16, u32)> = (1..=10).map(|s| (s, 777)).collect();
        order[3].1 = 778;
        order.insert(6, (3, 777));
        for (seq, ssrc) in order {
            udp.send_to(&datagram(seq, ssrc, &frames[seq as usize]), to)
                .unwrap();
        }
    });
    let seen = run_client(
        tpc3_config(addr, "movie.Mjpeg"),
        "the end of the transfer",
        |_, ev| matches!(ev, ClientEvent::StreamEnded),
    );
    let (request, go) = server.join().unwrap();
    assert!(request.starts_with("movie.Mjpeg "), "{request:?}");
    assert_eq!(go.trim(), "Go");
    let s = &seen.stats;
    assert_eq!(s.dropped.get("wrong SSRC"), Some(&1), "{:?}", s.dropped);
    assert_eq!(
        s.dropped.get("sequence not increasing"),
        Some(&1),
        "{:?}",
        s.dropped
    );
    assert_eq!(s.dropped_total(), 2, "{:?}", s.dropped);
    let seqs: Vec<u16> = seen.frames.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 5, 6, 7, 8, 9, 10]);
    assert_eq!(s.ssrc, Some(777));
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

#[test]
fn our_client_gets_the_movie_from_the_python_server() {
    if !have_python() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/tpc3_server.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(["0", "--bind", "127.0.0.1", "--period", "0.005", "--root"])
        .arg(media_root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 tpc3_server.py");
    let stdout = child.stdout.take().unwrap();
    let _child = Reaper(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("tpc3_server.py's first line is {line:?}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let seen = run_client(tpc3_config(addr, "movie.Mjpeg"), "the end", |_, ev| {
        matches!(ev, ClientEvent::StreamEnded)
    });
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    let s = &seen.stats;
    assert_eq!(s.frames + s.frames_skipped, 500, "{s:?}");
    assert_eq!(s.dropped_total(), 0, "{:?}", s.dropped);
    assert_eq!(
        s.ssrc.map(|id| id.to_string()),
        seen.session,
        "SSRC = the session id"
    );
}

#[test]
fn probe_json_reports_frames_and_reasons() {
    let server = tpc3_server(100);
    let port = server.local_addr().port().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["probe", "--dialect", "tpc3", "127.0.0.1", &port, "0"])
        .args(["movie.Mjpeg", "--frames", "40", "--json"])
        .output()
        .expect("streamlab probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert!(json["frames"].as_u64().is_some_and(|f| f >= 40), "{json}");
    assert_eq!(json["dropped_total"], 0, "{json}");
    assert!(json["dropped"].is_object(), "{json}");
    assert_eq!(json["errors"], serde_json::json!([]), "{json}");
    // TPC-3 has no URLs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["probe", "--dialect", "tpc3", "rtsp://127.0.0.1/movie.Mjpeg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HOST TCP_PORT UDP_PORT FILE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
