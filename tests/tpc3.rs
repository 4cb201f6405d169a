//! TPC-3 (seed 000) against our server, with a client written here from
//! the assignment's text: the handshake bytes exactly, every datagram
//! checked as the assignment lists, all 500 frames of movie.Mjpeg
//! byte-identical; `-1` for a missing file; the stream stopping when the
//! client closes; TPC-3 and RTSP clients on one port.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use streamlab::net::server::ServerConfig;

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
