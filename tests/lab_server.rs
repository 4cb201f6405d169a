//! Our server against a client that writes the lab's exact bytes, over real
//! loopback sockets: every frame arrives byte-identical and in order, PAUSE
//! and PLAY behave, TEARDOWN frees the session, many sessions at once.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const WAIT: Duration = Duration::from_secs(5);

/// Receive `n` frames (lab payload: one whole JPEG per datagram for
/// movie.Mjpeg) and check each header as seed 000 asks.
fn receive_frames(c: &LabClient, n: usize, first_seq: u16, ssrc: Option<u32>) -> Vec<Vec<u8>> {
    let mut ssrc = ssrc;
    let mut frames = Vec::with_capacity(n);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    for i in 0..n {
        let p = c
            .recv_rtp(WAIT)
            .unwrap_or_else(|| panic!("frame {i} did not arrive"));
        let h = rtp_header(&p);
        assert_eq!(h.version, 2);
        assert!(!h.padding && !h.extension && !h.marker);
        assert_eq!(h.cc, 0);
        assert_eq!(h.pt, 26);
        assert_eq!(
            h.seq,
            first_seq.wrapping_add(i as u16),
            "in order, none lost"
        );
        // Lab requests get the session id as SSRC (seed 000 checks it);
        // any stream keeps one SSRC.
        assert_eq!(h.ssrc, *ssrc.get_or_insert(h.ssrc), "SSRC");
        // The lab's timestamp is Unix time in seconds.
        assert!(h.ts.abs_diff(now) < 120, "timestamp {} vs now {now}", h.ts);
        frames.push(p[12..].to_vec());
    }
    frames
}

fn play_whole_movie(crlf: bool) {
    let expected = movie_frames();
    let server = server(media_root(), 100);
    let mut c = LabClient::connect(server.local_addr());
    c.crlf = crlf;
    let r = c.request("SETUP", "movie.Mjpeg");
    assert_eq!(r.status, 200);
    let session = c.session.clone().expect("a session id");
    assert_eq!(session.len(), 6, "lab-style 6-digit session id");
    let r = c.request("PLAY", "movie.Mjpeg");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.cseq(), Some(2));
    let ssrc = (!crlf).then(|| session.parse().unwrap());
    let got = receive_frames(&c, 500, 1, ssrc);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(g == e, "frame {i} differs from the file");
    }
    assert!(
        c.recv_rtp(Duration::from_millis(200)).is_none(),
        "nothing after the end"
    );
    assert_eq!(c.request("TEARDOWN", "movie.Mjpeg").status, 200);
}

#[test]
fn lab_bytes_get_all_500_frames_identical_and_in_order() {
    play_whole_movie(false);
}

#[test]
fn crlf_requests_get_all_500_frames_too() {
    play_whole_movie(true);
}

#[test]
fn lab_reply_is_byte_for_byte_the_labs() {
    let server = server(media_root(), 20);
    let mut c = LabClient::connect(server.local_addr());
    c.send_raw(b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000");
    let r = c.read_reply();
    let session = r.headers.session().unwrap().to_string();
    assert_eq!(
        r.headers.iter().collect::<Vec<_>>(),
        vec![("CSeq", "1"), ("Session", session.as_str())]
    );
    // Lab clients split on LF and read fixed lines: nothing may trail.
    let raw = format!("RTSP/1.0 200 OK\nCSeq: 1\nSession: {session}");
    assert_eq!(r.to_bytes(), raw.as_bytes());
}

#[test]
fn pause_stops_within_a_frame_and_play_resumes_at_the_next() {
    let expected = movie_frames();
    let server = server(media_root(), 20);
    let mut c = LabClient::connect(server.local_addr());
    c.request("SETUP", "movie.Mjpeg");
    let ssrc = Some(c.session.clone().unwrap().parse().unwrap());
    c.request("PLAY", "movie.Mjpeg");
    let got = receive_frames(&c, 10, 1, ssrc);
    // Take what is already queued, so what follows was sent after PAUSE.
    let mut last_seq = 10u16;
    while let Some(p) = c.recv_rtp(Duration::from_millis(1)) {
        last_seq = rtp_header(&p).seq;
    }
    assert_eq!(c.request("PAUSE", "movie.Mjpeg").status, 200);
    // At most the frame already in flight may still arrive.
    let mut after = 0;
    while let Some(p) = c.recv_rtp(Duration::from_millis(300)) {
        after += 1;
        last_seq = rtp_header(&p).seq;
    }
    assert!(after <= 1, "{after} frames arrived after PAUSE's reply");
    assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 200);
    let resumed = receive_frames(&c, 5, last_seq + 1, ssrc);
    assert_eq!(
        resumed[0], expected[last_seq as usize],
        "resumes at the next frame"
    );
    assert_eq!(got[9], expected[9]);
    assert_eq!(resumed[4], expected[last_seq as usize + 4]);
}

#[test]
fn teardown_frees_the_session_at_once() {
    let server = server(media_root(), 50);
    let mut c = LabClient::connect(server.local_addr());
    c.request("SETUP", "movie.Mjpeg");
    assert_eq!(server.active_sessions(), 1);
    c.request("PLAY", "movie.Mjpeg");
    assert!(c.recv_rtp(WAIT).is_some());
    assert_eq!(c.request("TEARDOWN", "movie.Mjpeg").status, 200);
    // The session is gone by the time the reply is read.
    assert_eq!(server.active_sessions(), 0);
    while c.recv_rtp(Duration::from_millis(100)).is_some() {}
    assert!(
        c.recv_rtp(Duration::from_millis(300)).is_none(),
        "no RTP after TEARDOWN"
    );
    // The connection lives on: a new SETUP works.
    assert_eq!(c.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(server.active_sessions(), 1);
}

fn many_sessions(n: usize) {
    let expected = movie_frames();
    let server = server(media_root(), 100);
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let mut c = LabClient::connect(server.local_addr());
            c.request("SETUP", "movie.Mjpeg");
            c
        })
        .collect();
    assert_eq!(server.active_sessions(), n);
    let ids: std::collections::HashSet<_> = clients.iter().map(|c| c.session.clone()).collect();
    assert_eq!(ids.len(), n, "distinct session ids");
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            c.request("PLAY", "movie.Mjpeg");
            std::thread::spawn(move || {
                let ssrc = Some(c.session.clone().unwrap().parse().unwrap());
                let got = receive_frames(&c, 500, 1, ssrc);
                (c, got)
            })
        })
        .collect();
    for h in handles {
        let (_c, got) = h.join().expect("every session gets every frame");
        assert!(got == expected);
    }
}

#[test]
fn two_sessions_at_once_each_get_every_frame() {
    many_sessions(2);
}

#[test]
fn ten_sessions_at_once_each_get_every_frame() {
    many_sessions(10);
}
