//! The impairment relay of `tests/common/relay.rs`, checked on its own
//! before other tests trust its counts: SETUP's ports are rewritten both
//! ways in both dialects, RTCP crosses untouched, and what arrives at the
//! client is exactly what the relay says it sent, dropped, duplicated and
//! reordered.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::relay::{Counts, Impairment, Relay};
use common::*;

/// An upstream RTSP server that hands the test every chunk it reads and
/// answers each with `reply(chunk)`.
fn raw_server(
    reply: impl Fn(&str) -> String + Send + 'static,
) -> (SocketAddr, crossbeam_channel::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        // One connection: the test's, through the relay.
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let answer = reply(&text);
            if tx.send(text).is_err() || s.write_all(answer.as_bytes()).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

/// Send `request` through the relay and read the reply (one chunk: the
/// upstream writes it in one call).
fn exchange(rtsp: &mut TcpStream, request: &str) -> String {
    rtsp.write_all(request.as_bytes()).unwrap();
    rtsp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let n = rtsp.read(&mut buf).expect("a reply through the relay");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The test's stand-ins for the client's RTP/RTCP sockets and the
/// server's, with a standard SETUP done through `relay`.
struct Standard {
    relay: Relay,
    /// Keeps the RTSP connection (and so the route) open.
    rtsp: TcpStream,
    client_rtp: UdpSocket,
    client_rtcp: UdpSocket,
    server_rtp: UdpSocket,
    server_rtcp: UdpSocket,
}

fn standard_setup(impair: Impairment) -> Standard {
    let server_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (s_rtp, s_rtcp) = (
        server_rtp.local_addr().unwrap().port(),
        server_rtcp.local_addr().unwrap().port(),
    );
    // Our server's answer: the client's ports as it saw them, its own.
    let (upstream, seen) = raw_server(move |req| {
        let transport = req
            .lines()
            .find_map(|l| l.strip_prefix("Transport: "))
            .unwrap_or("")
            .trim();
        format!(
            "RTSP/1.0 200 OK\r\nCSeq: 1\r\nSession: 42;timeout=60\r\nTransport: {transport};server_port={s_rtp}-{s_rtcp};ssrc=0000ABCD\r\n\r\n"
        )
    });
    let relay = Relay::start(upstream, impair);
    let client_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client_rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = socket2::SockRef::from(&client_rtp).set_recv_buffer_size(4 << 20);
    let (a, b) = (
        client_rtp.local_addr().unwrap().port(),
        client_rtcp.local_addr().unwrap().port(),
    );
    let mut rtsp = TcpStream::connect(relay.addr()).unwrap();
    let reply = exchange(
        &mut rtsp,
        &format!(
            "SETUP rtsp://127.0.0.1/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port={a}-{b}\r\n\r\n"
        ),
    );
    let r = relay.rtp_port();
    assert!(r.is_multiple_of(2), "RTP on an even port");
    let request = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        request.contains(&format!(
            "\r\nTransport: RTP/AVP;unicast;client_port={r}-{}\r\n\r\n",
            r + 1
        )),
        "the server is told the relay's pair: {request}"
    );
    assert!(
        reply.contains(&format!(
            "\r\nTransport: RTP/AVP;unicast;client_port={a}-{b};server_port={r}-{};ssrc=0000ABCD\r\n",
            r + 1
        )),
        "the client is told its own ports, and the relay's for the server's: {reply}"
    );
    Standard {
        relay,
        rtsp,
        client_rtp,
        client_rtcp,
        server_rtp,
        server_rtcp,
    }
}

#[test]
fn standard_setup_is_rewritten_both_ways_and_rtcp_crosses_untouched() {
    let s = standard_setup(Impairment::default());
    let r = s.relay.rtp_port();
    let sr = b"\x80\xc8\x00\x06 a sender report, byte for byte";
    s.server_rtcp.send_to(sr, ("127.0.0.1", r + 1)).unwrap();
    s.client_rtcp
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let n = s.client_rtcp.recv(&mut buf).expect("RTCP reaches B");
    assert_eq!(&buf[..n], sr);
    let rr = b"\x81\xc9\x00\x07 a receiver report";
    s.client_rtcp.send_to(rr, ("127.0.0.1", r + 1)).unwrap();
    s.server_rtcp
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, from) = s.server_rtcp.recv_from(&mut buf).expect("RTCP reaches S");
    assert_eq!(&buf[..n], rr);
    assert_eq!(from.port(), r + 1, "from the port the server was told");
    // Counted once sent: a moment after the receiver may have it.
    s.relay.counts_when(Duration::from_secs(5), |c| {
        (c.rtcp_to_client, c.rtcp_to_server) == (1, 1)
    });
    // Dropping the relay joins its threads, which own its sockets: its
    // ports are free again, with the RTSP connection still open.
    let rtsp = s.relay.addr();
    drop(s.relay);
    assert!(UdpSocket::bind(("127.0.0.1", r)).is_ok(), "RTP port freed");
    assert!(
        UdpSocket::bind(("127.0.0.1", r + 1)).is_ok(),
        "RTCP port freed"
    );
    assert!(TcpStream::connect(rtsp).is_err(), "RTSP port closed");
    let mut rest = Vec::new();
    let mut client_side = s.rtsp;
    client_side
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        client_side.read_to_end(&mut rest).ok(),
        Some(0),
        "the client's RTSP connection was closed"
    );
}

#[test]
fn lab_setup_is_rewritten_and_our_server_streams_through() {
    let server = server(media_root(), 50);
    let relay = Relay::start(server.local_addr(), Impairment::default());
    let mut c = LabClient::connect(relay.addr());
    let setup = c.request("SETUP", "movie.Mjpeg");
    assert_eq!(setup.status, 200);
    assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 200);
    // The lab's server numbers packets from 1: the relay passes them on
    // in order, one each.
    for want in 1..=20u16 {
        let p = c
            .recv_rtp(Duration::from_secs(5))
            .expect("RTP through the relay");
        assert_eq!(rtp_header(&p).seq, want);
    }
    // The relay counts a packet once it is sent, a moment after the
    // client may have it.
    let counts = relay.counts_when(Duration::from_secs(5), |c| c.forwarded >= 20);
    assert_eq!(counts.dropped + counts.duplicates + counts.reordered, 0);
}

#[test]
fn lab_request_keeps_its_form() {
    // The lab's bare-LF request with no terminator: only the port changes.
    let (upstream, seen) = raw_server(|_| "RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456".into());
    let relay = Relay::start(upstream, Impairment::default());
    let mut rtsp = TcpStream::connect(relay.addr()).unwrap();
    let reply = exchange(
        &mut rtsp,
        "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5008",
    );
    assert_eq!(reply, "RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456");
    let request = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        request,
        format!(
            "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= {}",
            relay.rtp_port()
        )
    );
}

/// An RTP packet with this sequence number and 188 bytes of payload.
fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 26];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 10).to_be_bytes());
    p.extend_from_slice(&0x5eedu32.to_be_bytes());
    p.resize(200, 0xab);
    p
}

/// What a receiver saw: the sequence numbers in arrival order, and each
/// one's delay from when the test sent it.
struct Seen {
    order: Vec<u16>,
    delays: Vec<Duration>,
    counts: Counts,
    sent: Vec<u16>,
}

/// Send `n` packets from the server side, starting just before the
/// sequence number wraps, in bursts of 10 every 2 ms (about 5000 packets
/// a second, as a 720p stream), and take what the client side receives.
fn blast(impair: Impairment, n: usize) -> Seen {
    let s = standard_setup(impair);
    let r = s.relay.rtp_port();
    let first: u16 = 65_000;
    let sent: Vec<u16> = (0..n).map(|i| first.wrapping_add(i as u16)).collect();
    let (tx, rx) = crossbeam_channel::unbounded();
    let client = s.client_rtp.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    // A receiver of its own, so the socket buffer never fills while the
    // test is sending; it looks at `stop` between packets or every 50 ms.
    let receiver = std::thread::spawn(move || {
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1500];
        while !stopped.load(Ordering::SeqCst) {
            if let Ok(n) = client.recv(&mut buf) {
                let _ = tx.send((rtp_header(&buf[..n]).seq, Instant::now()));
            }
        }
    });
    let mut sent_at = Vec::with_capacity(n);
    let start = Instant::now();
    for (i, chunk) in sent.chunks(10).enumerate() {
        // Pacing of the traffic itself, on an absolute schedule.
        let due = start + Duration::from_millis(2 * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for seq in chunk {
            sent_at.push(Instant::now());
            s.server_rtp
                .send_to(&packet(*seq), ("127.0.0.1", r))
                .unwrap();
        }
    }
    let counts = s.relay.counts_when_idle(n as u64, Duration::from_secs(10));
    let mut order = Vec::new();
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while order.len() < counts.sent.len() {
        let (seq, at) = rx
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("{} of {} arrived", order.len(), counts.sent.len()));
        let i = seq.wrapping_sub(first) as usize;
        delays.push(at.duration_since(sent_at[i]));
        order.push(seq);
    }
    stop.store(true, Ordering::SeqCst);
    drop(s);
    receiver.join().unwrap();
    Seen {
        order,
        delays,
        counts,
        sent,
    }
}

/// The counts of `order` by the relay's definitions, done again here.
fn recount(order: &[u16]) -> (u64, u64) {
    let mut seen = HashSet::new();
    let mut highest: Option<u16> = None;
    let (mut dups, mut reordered) = (0, 0);
    for &seq in order {
        if !seen.insert(seq) {
            dups += 1;
        } else if highest.is_some_and(|h| (1..0x8000).contains(&h.wrapping_sub(seq))) {
            reordered += 1;
        } else {
            highest = Some(seq);
        }
    }
    (dups, reordered)
}

#[test]
fn what_arrives_is_exactly_what_the_relay_counts() {
    let impair = Impairment {
        seed: 7,
        loss: 0.05,
        duplicate: 0.03,
        reorder: 0.03,
        jitter: Duration::from_millis(2),
        burst_every: Some(Duration::from_millis(150)),
        burst_hold: Duration::from_millis(60),
    };
    let n = 3000;
    let seen = blast(impair, n);
    let c = &seen.counts;
    println!(
        "relay: {} received, {} forwarded, {} dropped, {} duplicates, {} reordered, {} bursts",
        c.received, c.forwarded, c.dropped, c.duplicates, c.reordered, c.bursts
    );
    assert_eq!(c.received, n as u64);
    assert_eq!(
        seen.order, c.sent,
        "arrival order is the relay's send order"
    );
    let arrived: HashSet<u16> = seen.order.iter().copied().collect();
    let missing: HashSet<u16> = seen
        .sent
        .iter()
        .copied()
        .filter(|s| !arrived.contains(s))
        .collect();
    let dropped: HashSet<u16> = c.dropped_seqs.iter().copied().collect();
    assert_eq!(missing, dropped, "the missing are exactly the dropped");
    assert_eq!(c.dropped, c.dropped_seqs.len() as u64);
    assert_eq!(c.forwarded + c.dropped, n as u64);
    assert_eq!(recount(&seen.order), (c.duplicates, c.reordered));
    // The seeded rates, loosely (binomial spread over 3000 packets).
    assert!((90..=210).contains(&c.dropped), "{c:?}");
    assert!((40..=140).contains(&c.duplicates), "{c:?}");
    assert!((40..=140).contains(&c.reordered), "{c:?}");
    // Bursts held packets for about their length; a packet outside one
    // waits its jitter (plus scheduling on a busy machine).
    assert!(c.bursts >= 2, "{c:?}");
    let max = seen.delays.iter().max().unwrap();
    assert!(
        *max >= Duration::from_millis(50),
        "longest delay {max:?}: bursts hold"
    );
    let mut sorted = seen.delays.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    assert!(
        median < Duration::from_millis(30),
        "median delay {median:?}: most packets are not held"
    );
    // Same seed, same packets: the same decisions.
    let again = blast(impair, n);
    assert_eq!(again.counts.dropped_seqs, c.dropped_seqs);
    assert_eq!(again.counts.sent, c.sent);
}
