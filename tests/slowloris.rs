//! Slowloris: 150 connections from another loopback address (127.0.0.2)
//! each send half a request and then nothing. Honest lab clients on
//! 127.0.0.1 meanwhile get a run of consecutive frames with no gap, and a
//! new connection is answered. Counts only; pacing is measured elsewhere.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use socket2::{Domain, Socket, Type};

/// A connection from 127.0.0.2 that sends half a request line.
fn trickler(to: SocketAddr) -> Option<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into()).ok()?;
    s.connect(&to.into()).ok()?;
    let mut t: TcpStream = s.into();
    t.write_all(b"OPTIONS * RTSP/1.0\r\nCSe").ok()?;
    Some(t)
}

#[test]
fn half_requests_do_not_hold_up_honest_clients() {
    let server = server(media_root(), 50);
    let addr = server.local_addr();
    let attackers: Vec<TcpStream> = (0..150).filter_map(|_| trickler(addr)).collect();
    assert!(attackers.len() > 100, "only {} attackers", attackers.len());
    let mut honest: Vec<LabClient> = (0..5).map(|_| LabClient::connect(addr)).collect();
    for c in honest.iter_mut() {
        assert_eq!(c.request("SETUP", "movie.Mjpeg").status, 200);
        assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 200);
    }
    for (i, c) in honest.iter().enumerate() {
        let mut last: Option<u16> = None;
        for _ in 0..20 {
            let p = c
                .recv_rtp(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("client {i}: no frame"));
            let seq = rtp_header(&p).seq;
            if let Some(l) = last {
                assert_eq!(seq, l.wrapping_add(1), "client {i}: a frame went missing");
            }
            last = Some(seq);
        }
    }
    // A newcomer is answered.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("an answer");
    assert!(
        buf[..n].starts_with(b"RTSP/1.0 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop(attackers);
}
