//! Our client engine speaking standard RTSP: against our own server over
//! UDP and TCP interleaved, against replays of real cameras' DESCRIBE
//! replies (from ../shared/fixtures/cameras, served on loopback; no address
//! written in them is ever contacted), and against a server that wants
//! Digest authentication.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, ClientStats, DialectChoice, Direction,
    TransportChoice,
};
use streamlab::protocol::State;
use streamlab::protocol::rtsp::{Decoder, Dialect, Message, Response};

fn wait_for(client: &ClientHandle, what: &str, mut f: impl FnMut(&ClientEvent) -> bool) {
    common::wait_for(client, what, |e, _| f(e));
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

#[test]
fn a_busy_rtp_port_gives_way_to_a_free_one_and_says_so() {
    // Another program (a second player window, say) holds the port asked for.
    let busy = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let taken = busy.local_addr().unwrap().port();
    let server = server(media_root(), 50);
    let mut config = standard(
        server.local_addr().port(),
        "movie.Mjpeg",
        TransportChoice::Udp,
    );
    config.rtp_port = taken;
    let client = ClientHandle::spawn(config, || {});
    client.send(ClientCommand::Setup);
    let mut notice = None;
    let mut setup = None;
    wait_for(&client, "READY", |e| {
        match e {
            ClientEvent::Notice(n) => notice = Some(n.clone()),
            ClientEvent::Wire(w) if w.text.starts_with("SETUP ") => setup = Some(w.text.clone()),
            ClientEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
        state_is(State::Ready)(e)
    });
    let notice = notice.expect("a notice about the port");
    assert!(
        notice.contains(&format!("RTP port {taken} is in use")),
        "{notice}"
    );
    let setup = setup.expect("SETUP on the wire");
    assert!(
        !setup.contains(&format!("client_port={taken}")),
        "SETUP names the port we got: {setup}"
    );
    assert!(
        notice.contains(&format!(
            "port {}",
            setup
                .split("client_port=")
                .nth(1)
                .and_then(|p| p.split('-').next())
                .unwrap_or("?")
        )),
        "{notice} / {setup}"
    );
    client.send(ClientCommand::Play);
    let mut n = 0;
    wait_for(&client, "5 frames", |e| {
        n += matches!(e, ClientEvent::Frame(_)) as u32;
        n == 5
    });
    drop(busy);
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

/// A TCP relay to `server` that rewrites `client_port=` in each request to
/// a UDP port nobody reads, as a NAT that loses UDP would: RTSP gets
/// through, RTP never arrives.
fn udp_losing_relay(server: SocketAddr) -> (SocketAddr, std::net::UdpSocket) {
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let upstream = std::net::TcpStream::connect(server).unwrap();
        let (mut c_read, mut u_write) =
            (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let (mut u_read, mut c_write) = (upstream, client);
        std::thread::spawn(move || std::io::copy(&mut u_read, &mut c_write));
        let mut buf = [0u8; 8192];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let out = match text.find("client_port=") {
                Some(at) => {
                    let value = at + "client_port=".len();
                    let end = text[value..]
                        .find([';', '\r', '\n'])
                        .map_or(text.len(), |e| value + e);
                    format!(
                        "{}{}-{}{}",
                        &text[..value],
                        hole_port,
                        hole_port + 1,
                        &text[end..]
                    )
                    .into_bytes()
                }
                None => buf[..n].to_vec(),
            };
            if u_write.write_all(&out).is_err() {
                break;
            }
        }
    });
    (addr, hole)
}

#[test]
fn udp_that_brings_nothing_moves_to_tcp_and_says_so() {
    let server = server(media_root(), 50);
    let (relay, _hole) = udp_losing_relay(server.local_addr());
    let client = ClientHandle::spawn(
        standard(relay.port(), "movie.Mjpeg", TransportChoice::Udp),
        || {},
    );
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Play);
    let started = Instant::now();
    let mut notice = None;
    let mut states = Vec::new();
    let mut sent = Vec::new();
    let mut n = 0;
    wait_for(&client, "20 frames after the switch", |e| {
        match e {
            ClientEvent::Notice(text) => notice = Some(text.clone()),
            ClientEvent::State { state, .. } => states.push(*state),
            ClientEvent::Wire(w) if w.direction == Direction::Sent => {
                sent.push(w.text.lines().next().unwrap_or("").to_string())
            }
            ClientEvent::Frame(_) => n += 1,
            _ => {}
        }
        n == 20
    });
    let notice = notice.expect("the user is told");
    assert!(notice.contains("switching to TCP"), "{notice}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "switched after {waited:?}"
    );
    assert_eq!(
        states,
        vec![State::Playing, State::Playing],
        "no INIT in between"
    );
    let methods: Vec<&str> = sent
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(methods, ["PLAY", "TEARDOWN", "SETUP", "PLAY"], "{sent:?}");
    client.send(ClientCommand::Teardown);
    wait_for(&client, "INIT", state_is(State::Init));
}

/// Mean absolute difference of two RGBA images of one size.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y) as f64)
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn seek_from_our_client_lands_on_the_right_frame() {
    let server = server(media_root(), 20);
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
    client.send(ClientCommand::PlayFrom { millis: 10_000 });
    let mut range = None;
    let mut first = None;
    wait_for(&client, "the first frame", |e| {
        match e {
            ClientEvent::Wire(w) if w.direction == Direction::Sent => {
                range = w
                    .text
                    .lines()
                    .find(|l| l.starts_with("Range:"))
                    .map(str::to_string)
            }
            ClientEvent::Frame(f) => first = Some(f.clone()),
            _ => {}
        }
        first.is_some()
    });
    assert_eq!(range.as_deref(), Some("Range: npt=10.000-"));
    let frame = first.unwrap();
    let movie = movie_frames();
    let at = |n: usize| streamlab::media::decode::decode_rgba(&movie[n]).unwrap().2;
    // 10 s at 20 fps is frame 200; it must look like 200, not like 0.
    let (to_200, to_0) = (mad(&frame.rgba, &at(200)), mad(&frame.rgba, &at(0)));
    assert!(to_200 < 4.0 && to_200 < to_0, "{to_200} vs {to_0}");
    // And seeking back while PLAYING works too.
    client.send(ClientCommand::PlayFrom { millis: 0 });
    wait_for(&client, "PLAY answered", |e| {
        matches!(
            e,
            ClientEvent::State {
                state: State::Playing,
                ..
            }
        )
    });
    // A frame or two sent before the seek may still be on its way.
    let mut near_start = false;
    let mut seen = 0;
    wait_for(&client, "a frame from the start", |e| {
        if let ClientEvent::Frame(f) = e {
            seen += 1;
            near_start |= (0..3).any(|n| mad(&f.rgba, &at(n)) < 4.0);
        }
        near_start || seen == 5
    });
    assert!(
        near_start,
        "no frame near the start among {seen} after seeking back"
    );
}

/// A camera on loopback, written in the test: it answers the standard
/// requests, then sends `frames` RFC 2435 frames over UDP with every pair
/// of packets swapped in flight, and collects what arrives on its RTCP port.
/// The datagrams that reached the camera's RTCP port, and its RTSP
/// connection (kept open: the session goes on).
type CameraEnd = (Vec<Vec<u8>>, TcpStream);

fn reordering_camera(frames: usize) -> (SocketAddr, JoinHandle<CameraEnd>) {
    camera(frames, true, None)
}

/// The camera of [`reordering_camera`]; `swap`: every pair of packets
/// swapped in flight; `restart_at`: from that frame on, the camera starts
/// its stream over (a new SSRC, sequence numbers 20,000 behind, a new
/// timestamp base), as one that restarts its encoder does.
fn camera(
    frames: usize,
    swap: bool,
    restart_at: Option<usize>,
) -> (SocketAddr, JoinHandle<CameraEnd>) {
    use streamlab::protocol::rtp::RtpHeader;
    use streamlab::protocol::rtp_jpeg;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtcp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (rtp_port, rtcp_port) = (
        rtp.local_addr().unwrap().port(),
        rtcp.local_addr().unwrap().port(),
    );
    let jpeg = streamlab::media::rtp_ready::reencode_for_rtp(&movie_frames()[0], 90).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut d = Decoder::new();
        let mut buf = [0u8; 4096];
        let mut client_port = 0;
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n";
        'talk: loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return (Vec::new(), s),
                Ok(n) => n,
            };
            d.push(&buf[..n]);
            while let Some(Ok(Message::Request(r))) = d.poll(false) {
                let reply = match r.method.as_str() {
                    "DESCRIBE" => {
                        let mut resp = Response::new(200, Dialect::Standard);
                        resp.headers
                            .push("CSeq", r.headers.cseq().unwrap_or(0).to_string());
                        resp.headers.push("Content-Type", "application/sdp");
                        resp.body = sdp.as_bytes().to_vec();
                        resp.to_bytes()
                    }
                    "SETUP" => {
                        let t = r.headers.get("Transport").unwrap_or("");
                        client_port = t
                            .split(';')
                            .find_map(|p| p.strip_prefix("client_port="))
                            .and_then(|v| v.split('-').next())
                            .and_then(|v| v.parse().ok())
                            .unwrap();
                        let transport = format!(
                            "RTP/AVP;unicast;client_port={client_port}-{};server_port={rtp_port}-{rtcp_port}",
                            client_port + 1
                        );
                        ok(
                            &r,
                            &[("Session", "4242;timeout=60"), ("Transport", &transport)],
                        )
                    }
                    "PLAY" => {
                        s.write_all(&ok(&r, &[("Session", "4242")])).unwrap();
                        break 'talk;
                    }
                    _ => ok(
                        &r,
                        &[("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")],
                    ),
                };
                s.write_all(&reply).unwrap();
            }
        }
        let carriable = rtp_jpeg::carriable(&jpeg).unwrap();
        let mut header = RtpHeader {
            marker: false,
            payload_type: 26,
            sequence: 65_520,
            timestamp: 1,
            ssrc: 0x5eed,
        };
        let mut base = 1u32;
        // The first stream's packets and, after a restart, the second's.
        let mut streams = vec![Vec::new()];
        for i in 0..frames {
            if restart_at == Some(i) {
                streams.push(Vec::new());
                header.ssrc = RESTARTED_SSRC;
                header.sequence = header.sequence.wrapping_sub(20_000);
                base = 0x7000_0000 - 3600 * i as u32;
            }
            header.timestamp = base + 3600 * i as u32;
            let packets = streams.last_mut().unwrap();
            header.sequence =
                rtp_jpeg::packetize(&carriable, 1400, header, |p| packets.push(p.to_vec()));
        }
        if swap {
            for pair in streams.iter_mut().flat_map(|s| s.chunks_mut(2)) {
                pair.reverse();
            }
        }
        let to = ("127.0.0.1", client_port);
        // Receiver reports come about a second after the first packet.
        rtcp.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut reports = Vec::new();
        let mut b = [0u8; 1500];
        for (i, packets) in streams.iter().enumerate() {
            if i > 0 {
                // The client's first report says the first stream
                // arrived; then the camera starts over.
                if let Ok(n) = rtcp.recv(&mut b) {
                    reports.push(b[..n].to_vec());
                }
            }
            for p in packets {
                rtp.send_to(p, to).unwrap();
            }
        }
        let sr = streamlab::protocol::rtcp::sender_report(header.ssrc, (1, 0x1234_5678), 1, 2, 3);
        rtcp.send_to(&sr, ("127.0.0.1", client_port + 1)).unwrap();
        if reports.is_empty()
            && let Ok(n) = rtcp.recv(&mut b)
        {
            reports.push(b[..n].to_vec());
        }
        // The connection stays open: the session goes on.
        (reports, s)
    });
    (addr, t)
}

/// The SSRC of [`camera`]'s stream after it starts over.
const RESTARTED_SSRC: u32 = 0xbeef;

#[test]
fn a_camera_that_starts_its_stream_over_keeps_playing() {
    let frames = 12;
    let (addr, camera) = camera(frames, false, Some(6));
    let client = ClientHandle::spawn(standard(addr.port(), "cam", TransportChoice::Udp), || {});
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Play);
    let (mut n, mut stats) = (0, ClientStats::default());
    // The new stream's first frame loses the packets that told it apart
    // from strays; every frame after it plays.
    wait_for(&client, "every frame but one, and its counters", |e| {
        match e {
            ClientEvent::Frame(_) => n += 1,
            ClientEvent::Stats(s) => stats = s.clone(),
            _ => {}
        }
        n == frames - 1 && stats.frames == n as u64
    });
    let _ = camera.join().unwrap();
    assert_eq!(stats.ssrc, Some(RESTARTED_SSRC), "{stats:?}");
    assert_eq!(
        stats.dropped.get("wrong SSRC"),
        Some(&(streamlab::protocol::rtp::RESTART_AFTER as u64 - 1)),
        "{stats:?}"
    );
    assert!(stats.dropped.contains_key("incomplete frame"), "{stats:?}");
    drop(client);
}

#[test]
fn reordered_packets_are_put_back_and_receiver_reports_go_to_the_server() {
    let frames = 10;
    let (addr, camera) = reordering_camera(frames);
    let client = ClientHandle::spawn(standard(addr.port(), "cam", TransportChoice::Udp), || {});
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", state_is(State::Ready));
    client.send(ClientCommand::Play);
    let mut n = 0;
    wait_for(&client, "every frame", |e| {
        n += matches!(e, ClientEvent::Frame(_)) as usize;
        n == frames
    });
    let (reports, _connection) = camera.join().unwrap();
    let mut stats = ClientStats::default();
    wait_for(&client, "counters", |e| {
        if let ClientEvent::Stats(s) = e {
            stats = s.clone();
        }
        stats.reports_sent > 0
    });
    assert_eq!(stats.dropped_total(), 0, "{stats:?}");
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert!(stats.reordered >= frames as u64, "{stats:?}");
    let rr = reports
        .first()
        .expect("a receiver report at the server's RTCP port");
    let parsed = streamlab::protocol::rtcp::parse_compound(rr).expect("RTCP");
    assert_eq!(parsed[0].packet_type, streamlab::protocol::rtcp::PT_RR);
    // The report block names the camera's SSRC, no loss, and the highest
    // sequence number past the wrap at 65535.
    assert_eq!(&rr[8..12], &0x5eedu32.to_be_bytes());
    assert_eq!(&rr[12..16], &[0, 0, 0, 0], "fraction and cumulative lost");
    let highest = u32::from_be_bytes([rr[16], rr[17], rr[18], rr[19]]);
    assert_eq!(highest >> 16, 1, "one wrap: {highest:#x}");
    assert_eq!(&rr[24..28], &0x0001_1234u32.to_be_bytes(), "last SR");
    drop(client);
}
