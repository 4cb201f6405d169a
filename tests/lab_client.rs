//! Our client engine against a server written here to behave exactly as the
//! lab's reference Python server does (shared/docs/lab-dialect.md): it reads
//! at most 256 bytes, splits on LF and spaces, answers only 200 and nothing
//! in a wrong state, sends SSRC 0 and timestamps in whole seconds, one whole
//! JPEG per datagram. Also: bad RTP headers are dropped and counted.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, ClientStats, DialectChoice,
};
use streamlab::protocol::State;

/// What the reference server sends after PLAY.
type Sender = Arc<dyn Fn(&UdpSocket, SocketAddr) + Send + Sync>;

/// A lab reference server for one connection.
fn reference_server(send: Sender) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut state = "INIT";
        let mut session = 0u32;
        let mut rtp_port = 0u16;
        let mut requests = Vec::new();
        let mut sender: Option<JoinHandle<()>> = None;
        loop {
            let mut buf = [0u8; 256];
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = String::from_utf8_lossy(&buf[..n]).to_string();
            requests.push(data.clone());
            let lines: Vec<&str> = data.split('\n').collect();
            let words: Vec<&str> = lines[0].split(' ').collect();
            let seq = lines[1].split(' ').nth(1).unwrap_or("0").to_string();
            let reply = |s: &mut std::net::TcpStream, session: u32| {
                let r = format!("RTSP/1.0 200 OK\nCSeq: {seq}\nSession: {session}");
                s.write_all(r.as_bytes()).unwrap();
            };
            match (words[0], state) {
                ("SETUP", "INIT") => {
                    session = 100_000 + rand_u32() % 900_000;
                    rtp_port = lines[2].split(' ').nth(3).unwrap().trim().parse().unwrap();
                    state = "READY";
                    reply(&mut s, session);
                }
                ("PLAY", "READY") => {
                    state = "PLAYING";
                    reply(&mut s, session);
                    let send = send.clone();
                    let to = SocketAddr::new(peer.ip(), rtp_port);
                    sender = Some(std::thread::spawn(move || {
                        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                        send(&sock, to);
                    }));
                }
                ("PAUSE", "PLAYING") => {
                    state = "READY";
                    reply(&mut s, session);
                }
                ("TEARDOWN", _) => {
                    reply(&mut s, session);
                }
                // The reference answers nothing in a wrong state.
                _ => {}
            }
        }
        if let Some(t) = sender {
            t.join().unwrap();
        }
        requests
    });
    (addr, t)
}

fn rand_u32() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// The reference's RTP packet: V=2, PT 26, seq = frame number, timestamp
/// in whole seconds, SSRC 0.
fn lab_packet(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 26];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn wait_for(client: &ClientHandle, what: &str, mut f: impl FnMut(&ClientEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ev = client
            .events()
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        if let ClientEvent::Error(e) = &ev {
            eprintln!("engine error: {e}");
        }
        if f(&ev) {
            return;
        }
    }
}

/// The next error the engine reports, in words; no state may change first.
fn next_error(client: &ClientHandle) -> String {
    let mut msg = String::new();
    wait_for(client, "an error", |e| match e {
        ClientEvent::Error(err) => {
            msg = err.to_string();
            true
        }
        ClientEvent::State { state, .. } => panic!("state changed to {state}"),
        _ => false,
    });
    msg
}

fn config(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        host: "127.0.0.1".into(),
        rtsp_port: addr.port(),
        rtp_port: 0,
        file: "movie.Mjpeg".into(),
        // The reference emulated here takes one connection: speak its
        // dialect from the start (auto is tested in tests/python_lab.rs).
        dialect: DialectChoice::Lab,
        ..ClientConfig::default()
    }
}

#[test]
fn our_client_plays_every_frame_from_a_lab_reference_server() {
    let frames = Arc::new(movie_frames());
    let f2 = frames.clone();
    let (addr, server) = reference_server(Arc::new(move |sock, to| {
        // The reference waits 50 ms per frame; 10 ms keeps the test short
        // and changes nothing on the wire.
        for (i, f) in f2.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(10));
            sock.send_to(&lab_packet(i as u16 + 1, now_secs(), 0, f), to)
                .unwrap();
        }
    }));
    let client = ClientHandle::spawn(config(addr), || {});
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", |e| {
        matches!(
            e,
            ClientEvent::State {
                state: State::Ready,
                ..
            }
        )
    });
    client.send(ClientCommand::Play);
    let mut got = 0u64;
    let mut last_seq = 0u16;
    wait_for(&client, "500 frames", |e| {
        if let ClientEvent::Frame(f) = e {
            got += 1;
            assert!(f.seq > last_seq, "in order");
            last_seq = f.seq;
            assert_eq!((f.width, f.height), (384, 288));
            assert_eq!(f.rgba.len(), 384 * 288 * 4);
        }
        got == 500
    });
    let mut stats = ClientStats::default();
    wait_for(&client, "the end of the stream", |e| {
        if let ClientEvent::Stats(s) = e {
            stats = s.clone();
        }
        matches!(e, ClientEvent::StreamEnded)
    });
    assert_eq!(stats.frames, 500);
    assert_eq!(stats.decode_errors, 0);
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.dropped_total(), 0, "{:?}", stats.dropped);
    client.send(ClientCommand::Teardown);
    wait_for(&client, "INIT", |e| {
        matches!(
            e,
            ClientEvent::State {
                state: State::Init,
                ..
            }
        )
    });
    client.shutdown(Duration::from_secs(2));
    let requests = server.join().unwrap();
    // Our client wrote the lab's requests byte for byte.
    assert!(
        requests[0]
            .starts_with("SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= "),
        "{:?}",
        requests[0]
    );
    assert!(requests[1].starts_with("PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: "));
    assert!(requests[2].starts_with("TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: "));
    assert!(
        requests.iter().all(|r| !r.ends_with('\n')),
        "no blank line, as the lab"
    );
}

#[test]
fn each_bad_rtp_header_field_is_dropped_and_counted_under_its_reason() {
    let jpeg = Arc::new(movie_frames()[0].clone());
    let j = jpeg.clone();
    let (addr, _server) = reference_server(Arc::new(move |sock, to| {
        let ts = now_secs();
        let good = |seq| lab_packet(seq, ts, 0, &j);
        let mutate = |seq, i: usize, f: fn(u8) -> u8| {
            let mut p = good(seq);
            p[i] = f(p[i]);
            p
        };
        let packets = vec![
            good(1),
            mutate(2, 0, |b| b & 0x3f),               // version 0
            mutate(2, 0, |b| b | 0x20),               // padding
            mutate(2, 0, |b| b | 0x10),               // extension
            mutate(2, 0, |b| b | 0x02),               // CSRC count
            mutate(2, 1, |_| 96),                     // payload type
            good(1),                                  // sequence not increasing
            lab_packet(2, ts, 5, &j),                 // SSRC
            lab_packet(2, ts.wrapping_sub(1), 0, &j), // timestamp backwards
            good(1)[..8].to_vec(),                    // too short
            good(2),
            good(3),
        ];
        for p in packets {
            sock.send_to(&p, to).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        // From another address than the server's: dropped.
        let other = UdpSocket::bind("127.0.0.2:0").unwrap();
        other.send_to(&good(4), to).unwrap();
    }));
    let client = ClientHandle::spawn(config(addr), || {});
    client.send(ClientCommand::Setup);
    wait_for(&client, "READY", |e| {
        matches!(
            e,
            ClientEvent::State {
                state: State::Ready,
                ..
            }
        )
    });
    client.send(ClientCommand::Play);
    let want: BTreeMap<String, u64> = [
        "bad version",
        "padding set",
        "extension set",
        "CSRC count not 0",
        "payload type not 26",
        "sequence not increasing",
        "wrong SSRC",
        "implausible timestamp",
        "too short",
        "wrong source address",
    ]
    .iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    let mut last = ClientStats::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while last.dropped != want || last.frames != 3 {
        match client.events().recv_deadline(deadline) {
            Ok(ClientEvent::Stats(s)) => last = s,
            Ok(_) => {}
            Err(_) => panic!("counts never matched: {last:?}"),
        }
    }
    assert_eq!(last.packets, 3);
}

#[test]
fn connection_refused_is_said_in_words() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let client = ClientHandle::spawn(config(addr), || {});
    let msg = next_error(&client);
    assert!(msg.contains("could not connect"), "{msg}");
}

#[test]
fn missing_file_is_said_in_words_and_the_session_stays_in_init() {
    let server = server(media_root(), 20);
    let mut cfg = config(server.local_addr());
    cfg.file = "no-such-movie.Mjpeg".into();
    let client = ClientHandle::spawn(cfg, || {});
    client.send(ClientCommand::Setup);
    let msg = next_error(&client);
    assert!(msg.contains("404") && msg.contains("no such file"), "{msg}");
    // No session was made on the server.
    assert_eq!(server.active_sessions(), 0);
}
