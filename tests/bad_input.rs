//! Bad input against the real server over loopback: each gets the right
//! RFC 2326 status, and the connection lives on where it can.

mod common;

use std::time::Duration;

use common::*;
use streamlab::net::server::ServerConfig;

fn connected() -> (streamlab::net::server::ServerHandle, LabClient) {
    let server = server(media_root(), 20);
    let c = LabClient::connect(server.local_addr());
    (server, c)
}

/// OPTIONS still works: the connection survived.
fn still_alive(c: &mut LabClient) {
    c.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 99\r\n\r\n");
    let r = c.read_reply();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.cseq(), Some(99));
}

#[test]
fn malformed_request_gets_400_and_the_connection_lives() {
    let (_s, mut c) = connected();
    c.send_raw(b"this is not rtsp\r\nCSeq: 5\r\n\r\n");
    let r = c.read_reply();
    assert_eq!(r.status, 400);
    assert_eq!(r.headers.cseq(), Some(5), "CSeq echoed");
    c.send_raw(b"PLAY movie.Mjpeg RTSP/1.0\r\nCSeq: 6\r\nno colon here\r\n\r\n");
    assert_eq!(c.read_reply().status, 400);
    still_alive(&mut c);
}

#[test]
fn unknown_method_gets_501() {
    let (_s, mut c) = connected();
    c.send_raw(b"JUMP movie.Mjpeg RTSP/1.0\nCSeq: 1");
    let r = c.read_reply();
    assert_eq!(r.status, 501);
    assert_eq!(r.headers.cseq(), Some(1));
    still_alive(&mut c);
}

#[test]
fn wrong_version_gets_505() {
    let (_s, mut c) = connected();
    c.send_raw(b"OPTIONS * RTSP/2.0\r\nCSeq: 3\r\n\r\n");
    assert_eq!(c.read_reply().status, 505);
    still_alive(&mut c);
}

#[test]
fn wrong_session_gets_454() {
    let (_s, mut c) = connected();
    assert_eq!(c.request("SETUP", "movie.Mjpeg").status, 200);
    c.session = Some("111111".into());
    let r = c.request("PLAY", "movie.Mjpeg");
    assert_eq!(r.status, 454);
    still_alive(&mut c);
}

#[test]
fn play_before_setup_gets_455() {
    let (_s, mut c) = connected();
    c.session = Some("123456".into());
    assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 455);
    assert_eq!(c.request("PAUSE", "movie.Mjpeg").status, 455);
    still_alive(&mut c);
}

#[test]
fn no_such_file_gets_404() {
    let (_s, mut c) = connected();
    assert_eq!(c.request("SETUP", "nothing.Mjpeg").status, 404);
    still_alive(&mut c);
}

#[test]
fn path_traversal_gets_404() {
    let (_s, mut c) = connected();
    for target in [
        "../../etc/passwd",
        "/../../etc/passwd",
        "rtsp://127.0.0.1/../media/movie.Mjpeg",
        "%2e%2e/%2e%2e/etc/passwd",
        "..\\..\\etc\\passwd",
    ] {
        assert_eq!(c.request("SETUP", target).status, 404, "{target}");
    }
    still_alive(&mut c);
}

#[test]
fn symlink_out_of_the_root_gets_404() {
    let root = temp_dir("symlink");
    std::os::unix::fs::symlink("/etc/hostname", root.join("escape.Mjpeg")).unwrap();
    std::os::unix::fs::symlink(movie_path(), root.join("inside.Mjpeg")).unwrap();
    let server = server(root.clone(), 20);
    let mut c = LabClient::connect(server.local_addr());
    assert_eq!(c.request("SETUP", "escape.Mjpeg").status, 404);
    // What counts is where a link lands: shared/media is outside this root.
    assert_eq!(c.request("SETUP", "inside.Mjpeg").status, 404);
    std::fs::copy(movie_path(), root.join("real.Mjpeg")).unwrap();
    assert_eq!(c.request("SETUP", "real.Mjpeg").status, 200);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn ten_kilobyte_request_is_refused() {
    let (_s, mut c) = connected();
    let mut big = b"SETUP movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\nX-Filler: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024));
    c.send_raw(&big);
    let r = c.read_reply();
    assert_eq!(r.status, 413);
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "its end is unknown: closed"
    );
}

#[test]
fn half_sent_request_times_out() {
    let server = server_with(ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..base_config()
    });
    let mut c = LabClient::connect(server.local_addr());
    c.send_raw(b"SETUP movie.Mj");
    let r = c.read_reply();
    assert_eq!(r.status, 408);
    assert!(c.closed_within(Duration::from_secs(5)));
    // The connection's thread deregisters just after closing.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.connections() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connection never freed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn base_config() -> ServerConfig {
    ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(media_root()),
        ..ServerConfig::default()
    }
}

#[test]
fn corrupt_and_truncated_frames_are_skipped_and_the_stream_goes_on() {
    let frames = movie_frames();
    let root = temp_dir("corrupt");
    let mut file = Vec::new();
    for (i, f) in frames.iter().take(20).enumerate() {
        let mut f = f.clone();
        if i == 5 {
            f[0] = 0; // no SOI: corrupt
        }
        file.extend_from_slice(format!("{:05}", f.len()).as_bytes());
        file.extend_from_slice(&f);
    }
    // A truncated last frame.
    file.extend_from_slice(format!("{:05}", frames[20].len()).as_bytes());
    file.extend_from_slice(&frames[20][..100]);
    std::fs::write(root.join("bad.Mjpeg"), &file).unwrap();
    let server = server(root.clone(), 200);
    let mut c = LabClient::connect(server.local_addr());
    assert_eq!(c.request("SETUP", "bad.Mjpeg").status, 200);
    c.request("PLAY", "bad.Mjpeg");
    let mut got = Vec::new();
    while let Some(p) = c.recv_rtp(Duration::from_millis(500)) {
        got.push(p[12..].to_vec());
    }
    let want: Vec<_> = frames[..20]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(got.len(), 19);
    assert!(got == want);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn setup_without_transport_gets_400_and_multicast_461() {
    let (_s, mut c) = connected();
    c.send_raw(b"SETUP movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(c.read_reply().status, 400);
    c.send_raw(
        b"SETUP movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;multicast;port=5000-5001\r\n\r\n",
    );
    assert_eq!(c.read_reply().status, 461);
    still_alive(&mut c);
}
