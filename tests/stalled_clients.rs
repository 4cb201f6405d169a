//! Clients that stop taking what they asked for: one whose TCP-interleaved
//! stream is never read (its receive window fills), one whose RTP port has
//! closed (ICMP port unreachable). Neither may hold up the server, its
//! other sessions or new connections; the stalled one is ended.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use socket2::{Domain, Socket, Type};
use streamlab::media::pattern::pattern_rgb;
use streamlab::net::server::ServerConfig;
use streamlab::protocol::server::SESSION_TIMEOUT;

/// Waits until `f` holds, looking every few ms, up to `limit`.
fn eventually(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A 1080p clip in 4:2:0 (sent untouched over RFC 2435), a few frames
/// long: the server loops it.
fn write_hd_clip(path: &Path) {
    let mut clip = Vec::new();
    for n in 0..6 {
        let rgb = pattern_rgb(n * 17, 1920, 1080);
        let mut e = Encoder::new(&mut clip, 90);
        e.set_sampling_factor(SamplingFactor::F_2_2);
        e.encode(rgb.as_raw(), 1920, 1080, ColorType::Rgb).unwrap();
    }
    std::fs::write(path, clip).unwrap();
}

/// Sends one request and reads its reply's head (status, Session); any
/// interleaved bytes after it are left alone.
fn request(s: &mut TcpStream, text: &str) -> (u16, Option<String>) {
    s.write_all(text.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "reply cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    (status, session)
}

/// A TCP connection whose receive buffer is as small as the kernel allows,
/// so that it fills after a few packets.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    s.into()
}

/// A server looping a 1080p clip at 100 fps, with `write_timeout`.
fn hd_server(
    name: &str,
    write_timeout: Duration,
    session_timeout: Duration,
) -> (streamlab::net::server::ServerHandle, std::path::PathBuf) {
    let root = temp_dir(name);
    write_hd_clip(&root.join("hd.mjpeg"));
    let server = server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(root.clone()),
        fps: 100,
        looping: true,
        write_timeout,
        session_timeout,
        ..ServerConfig::default()
    });
    (server, root)
}

/// SETUP (interleaved) and PLAY `url` on `s`; the session id.
fn play_interleaved(s: &mut TcpStream, url: &str) -> String {
    let (status, session) = request(
        s,
        &format!(
            "SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    let (status, _) = request(
        s,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(status, 200);
    session
}

#[test]
fn a_client_that_stops_reading_is_ended_and_others_play_on() {
    // A session timeout long enough that expiry cannot be what ends the
    // stalled session.
    let (server, root) = hd_server("stalled", Duration::from_secs(1), Duration::from_secs(600));
    let addr = server.local_addr();
    let url = format!("rtsp://{addr}/hd.mjpeg");

    let mut stalled = small_window_connect(addr);
    play_interleaved(&mut stalled, &url);
    // From here on `stalled` is not read: 1080p at 100 fps fills its
    // window and the server's send buffer within a second or so.

    let mut other = LabClient::connect(addr);
    assert_eq!(other.request("SETUP", "hd.mjpeg").status, 200);
    assert_eq!(other.request("PLAY", "hd.mjpeg").status, 200);
    for n in 0..20 {
        assert!(
            other.recv_rtp(Duration::from_secs(5)).is_some(),
            "packet {n} to the other client"
        );
    }
    assert_eq!(server.connections(), 2);

    // The stalled session ends by itself, within the write timeout plus
    // the time to fill the buffers; the other one lives on.
    eventually("the stalled session ended", Duration::from_secs(30), || {
        server.active_sessions() == 1 && server.connections() == 1
    });
    for n in 0..20 {
        assert!(
            other.recv_rtp(Duration::from_secs(5)).is_some(),
            "packet {n} after the stalled client was dropped"
        );
    }
    // A new connection is answered at once.
    let mut third = LabClient::connect(addr);
    third.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n");
    assert_eq!(third.read_reply().status, 200);

    // The stalled client, reading at last, gets what was queued and then
    // the end of the connection.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the connection never ended");
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }

    assert_eq!(other.request("TEARDOWN", "hd.mjpeg").status, 200);
    eventually("no session left", Duration::from_secs(10), || {
        server.active_sessions() == 0
    });
    drop(server);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_closed_rtp_port_disturbs_no_other_session() {
    let server = server(media_root(), 100);
    let mut gone = LabClient::connect(server.local_addr());
    assert_eq!(gone.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(gone.request("PLAY", "movie.Mjpeg").status, 200);
    assert!(gone.recv_rtp(Duration::from_secs(5)).is_some());
    // Its RTP port closes; the RTSP connection stays. Every send to the
    // port now draws ICMP port unreachable (ECONNREFUSED on the server's
    // connected socket).
    gone.rtp = UdpSocket::bind("127.0.0.1:0").unwrap();

    let mut other = LabClient::connect(server.local_addr());
    assert_eq!(other.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(other.request("PLAY", "movie.Mjpeg").status, 200);
    let mut seqs = Vec::new();
    while let Some(p) = other.recv_rtp(Duration::from_secs(2)) {
        seqs.push(rtp_header(&p).seq);
        if seqs.len() == 500 {
            break;
        }
    }
    assert_eq!(
        seqs,
        (1..=500).collect::<Vec<u16>>(),
        "every frame, in order"
    );

    // The refused session's connection is intact and ends normally.
    gone.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 50\r\n\r\n");
    assert_eq!(gone.read_reply().status, 200);
    assert_eq!(gone.request("TEARDOWN", "movie.Mjpeg").status, 200);
    assert_eq!(other.request("TEARDOWN", "movie.Mjpeg").status, 200);
    eventually("no session left", Duration::from_secs(10), || {
        server.active_sessions() == 0
    });
}

/// Reads `$`-framed packets from `s` until `want` RTP packets (channel 0)
/// came; returns their sequence numbers and timestamps.
fn read_interleaved(s: &mut TcpStream, want: usize) -> Vec<(u16, u32)> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut head = [0u8; 4];
    while got.len() < want {
        s.read_exact(&mut head).unwrap();
        assert_eq!(head[0], b'$', "interleaved frames only, whole");
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes([head[2], head[3]]))];
        s.read_exact(&mut packet).unwrap();
        if head[1] == 0 {
            let rtp = rtp_header(&packet);
            got.push((rtp.seq, rtp.ts));
        }
    }
    got
}

#[test]
fn a_slow_tcp_client_misses_whole_frames_and_keeps_its_session() {
    let (server, root) = hd_server("slow-tcp", Duration::from_secs(3), SESSION_TIMEOUT);
    let addr = server.local_addr();
    let url = format!("rtsp://{addr}/hd.mjpeg");
    let mut slow = small_window_connect(addr);
    let session = play_interleaved(&mut slow, &url);
    // Not reading for a while (well within the write timeout) fills the
    // window: frames due meanwhile cannot all go.
    let first = read_interleaved(&mut slow, 1);
    std::thread::sleep(Duration::from_millis(500));
    let rest = read_interleaved(&mut slow, 3000);
    let all: Vec<(u16, u32)> = first.into_iter().chain(rest).collect();
    // Frames were missed whole: no sequence number is missing...
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0.wrapping_add(1),
            "sequence numbers run on: {pair:?}"
        );
    }
    // ...but time jumps where frames were skipped (900 = one frame at
    // 100 fps on the 90 kHz clock).
    let longest = all
        .windows(2)
        .map(|p| p[1].1.wrapping_sub(p[0].1))
        .max()
        .unwrap_or(0);
    assert!(
        longest > 900,
        "no frame was skipped (longest step {longest})"
    );
    // The session and its connection live on.
    assert_eq!(server.active_sessions(), 1);
    slow.write_all(
        format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    eventually("the session ended", Duration::from_secs(10), || {
        server.active_sessions() == 0
    });
    drop(server);
    std::fs::remove_dir_all(root).ok();
}

/// A client whose machine went away says nothing more and takes nothing:
/// once its session times out, the server ends it and closes the
/// connection too, instead of keeping it until TCP notices hours later.
#[test]
fn a_silent_client_loses_its_session_and_its_connection_at_the_timeout() {
    let server = server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(media_root()),
        session_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let addr = server.local_addr();
    let url = format!("rtsp://{addr}/movie.Mjpeg");
    let mut rtsp = TcpStream::connect(addr).unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let (status, session) = request(
        &mut rtsp,
        &format!(
            "SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
            port + 1
        ),
    );
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    let (status, _) = request(
        &mut rtsp,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(status, 200);
    drop(rtp);
    rtsp.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    match rtsp.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection stayed open: {e}"),
    }
    eventually("nothing left", Duration::from_secs(5), || {
        server.active_sessions() == 0 && server.connections() == 0
    });
}
