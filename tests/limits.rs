//! The server's caps on connections, on sessions and per client address:
//! beyond each a client gets 503 with the reason in the body, and room
//! made by a client leaving is given to the next one.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::LabClient;
use streamlab::net::server::{ServerConfig, ServerHandle};

fn server(max_connections: usize, max_sessions: usize, per_address: usize) -> ServerHandle {
    common::server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(common::media_root()),
        max_connections,
        max_sessions,
        max_per_address: per_address,
        ..ServerConfig::default()
    })
}

/// Sends OPTIONS on a new connection and reads the whole answer until the
/// server closes or 5 s pass.
fn options(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // A 200 leaves the connection open: its head is enough.
                if got.starts_with(b"RTSP/1.0 200") && got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Waits (up to 10 s) until the server counts `n` connections.
fn wait_connections(s: &ServerHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.connections() != n {
        assert!(
            Instant::now() < deadline,
            "{} connections, not {n}",
            s.connections()
        );
        std::thread::yield_now();
    }
}

#[test]
fn connections_beyond_the_cap_get_503_with_the_reason() {
    let s = server(2, 0, 0);
    let a = TcpStream::connect(s.local_addr()).unwrap();
    let _b = TcpStream::connect(s.local_addr()).unwrap();
    wait_connections(&s, 2);
    let reply = options(s.local_addr());
    assert!(reply.starts_with("RTSP/1.0 503 "), "{reply}");
    assert!(reply.contains("CSeq: 7"), "{reply}");
    assert!(reply.contains("limit of 2 connections"), "{reply}");
    // One leaves: the next one is served.
    drop(a);
    wait_connections(&s, 1);
    let reply = options(s.local_addr());
    assert!(reply.starts_with("RTSP/1.0 200 "), "{reply}");
}

#[test]
fn connections_from_one_address_beyond_its_cap_get_503() {
    let s = server(0, 0, 1);
    let _a = TcpStream::connect(s.local_addr()).unwrap();
    wait_connections(&s, 1);
    let reply = options(s.local_addr());
    assert!(reply.starts_with("RTSP/1.0 503 "), "{reply}");
    assert!(reply.contains("127.0.0.1"), "{reply}");
}

#[test]
fn sessions_beyond_the_cap_get_503_and_a_torn_down_one_makes_room() {
    let s = server(0, 1, 0);
    let mut a = LabClient::connect(s.local_addr());
    let mut b = LabClient::connect(s.local_addr());
    assert_eq!(a.request("SETUP", "movie.Mjpeg").status, 200);
    let refused = b.request("SETUP", "movie.Mjpeg");
    assert_eq!(refused.status, 503);
    let body = String::from_utf8_lossy(&refused.body).into_owned();
    assert!(body.contains("limit of 1 session"), "{body}");
    assert_eq!(a.request("TEARDOWN", "movie.Mjpeg").status, 200);
    assert_eq!(b.request("SETUP", "movie.Mjpeg").status, 200);
}
