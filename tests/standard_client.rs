//! Our client engine speaking standard RTSP: against our own server over
//! UDP and TCP interleaved, against replays of real cameras' DESCRIBE
//! replies (from ../shared/fixtures/cameras, served on loopback; no address
//! written in them is ever contacted), and against a server that wants
//! Digest authentication.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, ClientStats, DialectChoice, Direction,
    TransportChoice,
};
use streamlab::protocol::State;
use streamlab::protocol::rtsp::{Decoder, Message};

fn wait_for(client: &ClientHandle, what: &str, mut f: impl FnMut(&ClientEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = client
            .events()
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        if f(&ev) {
            return;
        }
    }
}

fn state_is(s: State) -> impl FnMut(&ClientEvent) -> bool {
    move |e| matches!(e, ClientEvent::State { state, .. } if *state == s)
}

fn standard(port: u16, file: &str, transport: TransportChoice) -> ClientConfig {
    ClientConfig {
        host: "127.0.0.1".into(),
        rtsp_port: port,
        file: file.into(),
        dialect: DialectChoice::Standard,
        transport,
        ..ClientConfig::default()
    }
}

fn plays_the_whole_movie(transport: TransportChoice) {
    let server = server(media_root(), 100);
    let client = ClientHandle::spawn(
        standard(server.local_addr().port(), "movie.Mjpeg", transport),
        || {},
    );
    client.send(ClientCommand::Setup);
    let mut sent = Vec::new();
    wait_for(&client, "READY", |e| {
        if let ClientEvent::Wire(w) = e
            && w.direction == Direction::Sent
        {
            sent.push(w.text.lines().next().unwrap_or("").to_string());
        }
        state_is(State::Ready)(e)
    });
    assert!(sent[0].starts_with("OPTIONS rtsp://127.0.0.1:"), "{sent:?}");
    assert!(sent[1].starts_with("DESCRIBE "), "{sent:?}");
    assert!(
        sent[2].ends_with("/movie.Mjpeg/trackID=0 RTSP/1.0"),
        "{sent:?}"
    );
    client.send(ClientCommand::Play);
    let mut frames = 0;
    let mut stats = ClientStats::default();
    wait_for(&client, "the end of the file", |e| {
        match e {
            ClientEvent::Frame(f) => {
                frames += 1;
                assert_eq!((f.width, f.height), (384, 288));
            }
            ClientEvent::Stats(s) => stats = s.clone(),
            _ => {}
        }
        matches!(e, ClientEvent::StreamEnded)
    });
    // PAUSE then PLAY: nothing lost across the gap (sequence numbers go on).
    client.send(ClientCommand::Pause);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Teardown);
    wait_for(&client, "INIT", |e| {
        if let ClientEvent::Stats(s) = e {
            stats = s.clone();
        }
        state_is(State::Init)(e)
    });
    client.shutdown(Duration::from_secs(2));
    // Every frame arrived whole; on a busy machine the decoder may skip
    // some, and says so.
    assert_eq!(stats.frames + stats.frames_skipped, 500, "{stats:?}");
    assert_eq!(frames, stats.frames);
    assert!(frames >= 250, "{stats:?}");
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
    assert_eq!(stats.decode_errors, 0);
    assert!(stats.packets > 500, "RFC 2435 fragments: {}", stats.packets);
}

#[test]
fn plays_every_frame_from_our_server_over_udp() {
    plays_the_whole_movie(TransportChoice::Udp);
}

#[test]
fn plays_every_frame_from_our_server_over_tcp_interleaved() {
    plays_the_whole_movie(TransportChoice::Tcp);
}

#[test]
fn pause_and_play_resume_without_a_gap() {
    let server = server(media_root(), 50);
    let client = ClientHandle::spawn(
        standard(
            server.local_addr().port(),
            "movie.Mjpeg",
            TransportChoice::Udp,
        ),
        || {},
    );
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Play);
    let mut n = 0;
    wait_for(&client, "10 frames", |e| {
        n += matches!(e, ClientEvent::Frame(_)) as u32;
        n == 10
    });
    client.send(ClientCommand::Pause);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Play);
    let mut n = 0;
    let mut stats = ClientStats::default();
    wait_for(&client, "10 more frames", |e| {
        match e {
            ClientEvent::Frame(_) => n += 1,
            ClientEvent::Stats(s) => stats = s.clone(),
            _ => {}
        }
        n == 10
    });
    wait_for(&client, "fresh counters", |e| {
        if let ClientEvent::Stats(s) = e {
            stats = s.clone();
            return true;
        }
        false
    });
    assert_eq!(
        stats.lost, 0,
        "sequence numbers go on across PAUSE: {stats:?}"
    );
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
}

/// A camera's recorded reply with this request's CSeq.
fn fixture_reply(camera: &str, file: &str, cseq: u32) -> Vec<u8> {
    let path = format!(
        "{}/../shared/fixtures/cameras/{camera}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut d = Decoder::new();
    d.push(&text);
    let Some(Ok(Message::Response(mut r))) = d.poll(true) else {
        panic!("{path} is not a reply")
    };
    r.headers.set("CSeq", cseq.to_string());
    r.to_bytes()
}

#[test]
fn an_h264_camera_is_refused_by_name() {
    let (addr, server) = fake_server(|r| {
        let cseq = r.headers.cseq().unwrap_or(0);
        Some(match r.method.as_str() {
            "OPTIONS" => ok(r, &[("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")]),
            "DESCRIBE" => fixture_reply("hikvision_h264", "DESCRIBE.txt", cseq),
            _ => ok(r, &[]),
        })
    });
    let client = ClientHandle::spawn(
        standard(addr.port(), "Streaming/Channels/101", TransportChoice::Udp),
        || {},
    );
    client.send(ClientCommand::Setup);
    let mut msg = String::new();
    wait_for(&client, "an error", |e| match e {
        ClientEvent::Error(err) => {
            msg = err.to_string();
            true
        }
        ClientEvent::State { state, .. } => panic!("moved to {state}"),
        _ => false,
    });
    assert!(
        msg.contains("H264") && msg.contains("not Motion-JPEG"),
        "{msg}"
    );
    client.shutdown(Duration::from_secs(2));
    let seen = server.join().unwrap();
    assert!(
        seen.iter().all(|r| r.method.as_str() != "SETUP"),
        "no SETUP after refusing"
    );
}

#[test]
fn an_mjpeg_camera_gets_setup_on_its_track_url() {
    let (addr, server) = fake_server(|r| {
        let cseq = r.headers.cseq().unwrap_or(0);
        Some(match r.method.as_str() {
            "OPTIONS" => ok(r, &[("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")]),
            "DESCRIBE" => fixture_reply("esp32cam_rtspserver_mjpeg", "DESCRIBE.txt", cseq),
            "SETUP" => ok(
                r,
                &[
                    ("Session", "12345678;timeout=60"),
                    ("Transport", "RTP/AVP;unicast;client_port=5000-5001"),
                ],
            ),
            _ => ok(r, &[("Session", "12345678")]),
        })
    });
    let client = ClientHandle::spawn(
        standard(addr.port(), "mjpeg/1", TransportChoice::Udp),
        || {},
    );
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Teardown);
    wait_for(&client, "INIT", state_is(State::Init));
    client.shutdown(Duration::from_secs(2));
    let seen = server.join().unwrap();
    let setup = seen.iter().find(|r| r.method.as_str() == "SETUP").unwrap();
    let transport = setup.headers.get("Transport").unwrap();
    assert!(
        transport.starts_with("RTP/AVP;unicast;client_port="),
        "{transport}"
    );
    let teardown = seen
        .iter()
        .find(|r| r.method.as_str() == "TEARDOWN")
        .unwrap();
    assert_eq!(teardown.headers.session(), Some("12345678"));
    eprintln!("SETUP {} / TEARDOWN {}", setup.target, teardown.target);
}

#[test]
fn digest_authentication_with_the_right_and_a_wrong_password() {
    let (addr, server) = digest_server("s3cret", 1);
    let mut cfg = ClientConfig::from_url(&format!(
        "rtsp://admin:s3cret@127.0.0.1:{}/cam",
        addr.port()
    ))
    .unwrap();
    cfg.dialect = DialectChoice::Standard;
    let client = ClientHandle::spawn(cfg, || {});
    client.send(ClientCommand::Setup);
    let mut transcript = String::new();
    wait_for(&client, "READY", |e| {
        if let ClientEvent::Wire(w) = e {
            transcript.push_str(&w.text);
        }
        if let ClientEvent::Error(err) = e {
            panic!("{err}");
        }
        state_is(State::Ready)(e)
    });
    assert!(!transcript.contains("s3cret"), "the password never shows");
    assert!(
        transcript.contains("Authorization: Digest (hidden)"),
        "{transcript}"
    );
    client.shutdown(Duration::from_secs(2));
    let seen = server.join().unwrap();
    let setup = seen.iter().find(|r| r.method.as_str() == "SETUP").unwrap();
    assert!(setup.target.ends_with("/cam/track1"), "{}", setup.target);

    let (addr, _server) = digest_server("s3cret", 1);
    let mut cfg =
        ClientConfig::from_url(&format!("rtsp://admin:wrong@127.0.0.1:{}/cam", addr.port()))
            .unwrap();
    cfg.dialect = DialectChoice::Standard;
    let client = ClientHandle::spawn(cfg, || {});
    client.send(ClientCommand::Setup);
    let mut msg = String::new();
    wait_for(&client, "a 401 error", |e| match e {
        ClientEvent::Error(err) => {
            msg = err.to_string();
            true
        }
        ClientEvent::State { state, .. } => panic!("moved to {state}"),
        _ => false,
    });
    assert!(msg.contains("wrong user name or password"), "{msg}");
}

#[test]
fn auto_speaks_standard_to_our_server() {
    let server = server(media_root(), 20);
    let cfg = ClientConfig {
        host: "127.0.0.1".into(),
        rtsp_port: server.local_addr().port(),
        file: "movie.Mjpeg".into(),
        ..ClientConfig::default()
    };
    assert_eq!(cfg.dialect, DialectChoice::Auto);
    let client = ClientHandle::spawn(cfg, || {});
    client.send(ClientCommand::Setup);
    let mut first = None;
    wait_for(&client, "READY", |e| {
        if let ClientEvent::Wire(w) = e {
            first.get_or_insert_with(|| w.text.clone());
        }
        state_is(State::Ready)(e)
    });
    assert!(first.unwrap().starts_with("OPTIONS "));
}

/// TEARDOWN then SETUP again on the same engine: the second session has a
/// new SSRC and new sequence numbers, and must play like the first.
fn second_session_plays(dialect: DialectChoice) {
    let server = server(media_root(), 50);
    let mut cfg = standard(
        server.local_addr().port(),
        "movie.Mjpeg",
        TransportChoice::Udp,
    );
    cfg.dialect = dialect;
    let client = ClientHandle::spawn(cfg, || {});
    for round in 0..2 {
        client.send(ClientCommand::Setup);
        wait_for(&client, "READY", state_is(State::Ready));
        client.send(ClientCommand::Play);
        let mut n = 0;
        wait_for(&client, &format!("frames in session {round}"), |e| {
            n += matches!(e, ClientEvent::Frame(_)) as u32;
            n == 5
        });
        client.send(ClientCommand::Teardown);
        wait_for(&client, "INIT", state_is(State::Init));
    }
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn setup_again_after_teardown_plays_standard() {
    second_session_plays(DialectChoice::Standard);
}

#[test]
fn setup_again_after_teardown_plays_lab() {
    second_session_plays(DialectChoice::Lab);
}
