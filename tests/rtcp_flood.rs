//! A flood of garbage datagrams at a standard session's server ports (RTP
//! and RTCP) while it plays: the fan-out sender reads at most a few per
//! second per session and the kernel drops the rest, so the session's
//! packets keep coming with no sequence gap.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

/// Sends one request and returns the reply's head.
fn ask(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).expect("a reply");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn header<'a>(reply: &'a str, name: &str) -> &'a str {
    reply
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .trim()
}

#[test]
fn garbage_at_the_servers_ports_does_not_stop_the_picture() {
    let server = server(media_root(), 50);
    let addr = server.local_addr();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&rtp)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let port = rtp.local_addr().unwrap().port();
    let _rtcp = UdpSocket::bind(("127.0.0.1", port + 1));
    let url = format!("rtsp://{addr}/movie.Mjpeg");
    let mut s = TcpStream::connect(addr).unwrap();
    let setup = ask(
        &mut s,
        &format!(
            "SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
            port + 1
        ),
    );
    assert!(setup.starts_with("RTSP/1.0 200"), "{setup}");
    let session = header(&setup, "Session:")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ports = header(&setup, "Transport:")
        .split(';')
        .find_map(|p| p.strip_prefix("server_port="))
        .expect("server_port")
        .to_string();
    let (a, b) = ports.split_once('-').expect("a port pair");
    let targets: Vec<SocketAddr> = [a, b]
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p.parse::<u16>().unwrap())))
        .collect();
    let play = ask(
        &mut s,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert!(play.starts_with("RTSP/1.0 200"), "{play}");
    // The flood: from a thread, garbage of every size for two seconds.
    let flood = std::thread::spawn(move || {
        let f = UdpSocket::bind("127.0.0.1:0").unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        let mut n = 0u64;
        while Instant::now() < end {
            let junk = vec![(n % 251) as u8; (n % 1400) as usize + 1];
            for t in &targets {
                let _ = f.send_to(&junk, t);
            }
            n += 1;
        }
        n
    });
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut last: Option<u16> = None;
    let mut frames = 0;
    let mut last_ts = None;
    while frames < 40 {
        let n = rtp.recv(&mut buf).expect("RTP keeps coming");
        let h = rtp_header(&buf[..n]);
        if let Some(l) = last {
            assert_eq!(h.seq, l.wrapping_add(1), "a packet went missing");
        }
        last = Some(h.seq);
        if last_ts != Some(h.ts) {
            frames += 1;
            last_ts = Some(h.ts);
        }
    }
    let sent = flood.join().unwrap();
    assert!(sent > 1000, "only {sent} garbage datagrams sent");
}
