//! A user-space impairment relay for the tests, because the kernels these
//! tests run on have no netem.
//!
//! The relay sits between an RTSP client and a real server on 127.0.0.1.
//! RTSP goes through it over TCP; in each SETUP the client's
//! `client_port=A-B` (standard) or `client_port= A` (the lab's dialect) is
//! replaced by the relay's own even/odd UDP pair R-R+1, and the reply's
//! `client_port` is put back to what the client asked for (its
//! `server_port` becomes R-R+1, so the client's receiver reports go
//! through the relay too: the server's RTCP socket is connected to R+1 and
//! would not take them from anywhere else).
//!
//! RTP the server sends to R reaches the client's A through a seeded
//! [`Impairment`]: loss, duplication, reordering, per-packet delay jitter
//! and delay bursts. RTCP crosses R+1 unimpaired, both ways. The relay
//! counts what it actually sent ([`Counts`]), which is what a test holds
//! the client's analysis against.
//!
//! One client session at a time: the UDP pair belongs to the relay, and
//! the latest SETUP says where its packets go. The TCP proxy rewrites
//! whole reads: our client, the lab's clients and our server each write a
//! request or reply in one call, which loopback delivers in one read (a
//! lab request has no terminator at all, so nothing better can be known).

use std::collections::{HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the relay does to RTP on its way to the client. Probabilities are
/// per packet, drawn from one RNG seeded with `seed` (four draws per
/// packet whatever the outcome, so a seed gives the same decisions for the
/// same packet order, and changing one probability moves no other).
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub seed: u64,
    /// A packet is not sent at all.
    pub loss: f64,
    /// A copy of the packet is sent right after it.
    pub duplicate: f64,
    /// The packet is held and sent right after the next one sent.
    pub reorder: f64,
    /// Each packet is delayed by a random 0..=`jitter` (order kept: a
    /// packet never leaves before the one ahead of it).
    pub jitter: Duration,
    /// Every `burst_every` (from the first packet), everything arriving in
    /// the next `burst_hold` is held and released together, in order, when
    /// it ends: the first packet waits `burst_hold`, later ones less.
    pub burst_every: Option<Duration>,
    pub burst_hold: Duration,
}

impl Default for Impairment {
    /// No impairment: a plain forwarder.
    fn default() -> Self {
        Impairment {
            seed: 1,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            jitter: Duration::ZERO,
            burst_every: None,
            burst_hold: Duration::ZERO,
        }
    }
}

/// What the relay did, counted at the moment it sent (or did not send).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// RTP datagrams that came from the server.
    pub received: u64,
    /// Packets sent to the client once (first copies).
    pub forwarded: u64,
    /// Packets not sent, and their sequence numbers in arrival order.
    pub dropped: u64,
    pub dropped_seqs: Vec<u16>,
    /// Extra copies sent of a sequence number already sent.
    pub duplicates: u64,
    /// First copies sent after a packet with a higher sequence number
    /// (wrap-aware): what a receiver sees as reordered.
    pub reordered: u64,
    /// Every RTP datagram sent to the client, in order, by sequence number.
    pub sent: Vec<u16>,
    /// Delay bursts that held at least one packet.
    pub bursts: u64,
    /// RTCP datagrams forwarded server to client, and client to server.
    pub rtcp_to_client: u64,
    pub rtcp_to_server: u64,
    /// RTP datagrams decided on and not sent yet (held by a burst, the
    /// jitter or a reorder): 0 when the relay has nothing in hand.
    pub queued: u64,
}

/// Where the current session's packets go; set by the RTSP proxy.
#[derive(Debug, Default, Clone, Copy)]
struct Route {
    client_rtp: Option<SocketAddr>,
    client_rtcp: Option<SocketAddr>,
    server_rtcp: Option<SocketAddr>,
}

/// State shared by the relay's threads.
struct Shared {
    stop: AtomicBool,
    route: Mutex<Route>,
    counts: Mutex<Counts>,
    /// Notified at every change of `counts`, so a test can wait for a
    /// state of the relay instead of sleeping.
    changed: Condvar,
    /// The relay's UDP pair R, R+1.
    rtp_port: u16,
    /// Open RTSP connections (both sides), shut down when the relay goes.
    streams: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running relay; dropping it ends every thread it started.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// How long a blocked receive may take before the stop flag is looked at.
const POLL: Duration = Duration::from_millis(50);
/// A packet held for reordering goes out alone if nothing follows it
/// within this long (the stream ended): it was then not reordered.
const REORDER_GIVE_UP: Duration = Duration::from_millis(200);

impl Relay {
    /// Relay RTSP to `server` (on 127.0.0.1) and impair its RTP.
    pub fn start(server: SocketAddr, impair: Impairment) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (rtp, rtcp) = bind_pair();
        // A 1080p frame is a burst of a hundred datagrams: room for
        // several while the forwarding thread waits to be scheduled.
        let _ = socket2::SockRef::from(&rtp).set_recv_buffer_size(4 << 20);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            route: Mutex::new(Route::default()),
            counts: Mutex::new(Counts::default()),
            changed: Condvar::new(),
            rtp_port: rtp.local_addr().unwrap().port(),
            streams: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(std::thread::spawn(move || accept_loop(listener, server, s)));
        let s = shared.clone();
        threads.push(std::thread::spawn(move || {
            RtpForwarder::new(rtp, impair, s).run()
        }));
        let s = shared.clone();
        threads.push(std::thread::spawn(move || rtcp_loop(rtcp, s)));
        Relay {
            addr,
            shared,
            threads,
        }
    }

    /// Where clients connect for RTSP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The relay's RTP port R (RTCP is R+1).
    pub fn rtp_port(&self) -> u16 {
        self.shared.rtp_port
    }

    /// What the relay has done so far.
    pub fn counts(&self) -> Counts {
        lock(&self.shared.counts).clone()
    }

    /// The counts once `ready` holds for them; panics after `timeout`.
    pub fn counts_when(&self, timeout: Duration, ready: impl Fn(&Counts) -> bool) -> Counts {
        let deadline = Instant::now() + timeout;
        let mut c = lock(&self.shared.counts);
        while !ready(&c) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "relay never got there: {c:?}");
            c = self
                .shared
                .changed
                .wait_timeout(c, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        c.clone()
    }

    /// The counts once `received` RTP datagrams came from the server and
    /// everything decided on has been sent.
    pub fn counts_when_idle(&self, received: u64, timeout: Duration) -> Counts {
        self.counts_when(timeout, |c| c.received >= received && c.queued == 0)
    }
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut lock(&self.counts));
        self.changed.notify_all();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        for s in lock(&self.shared.streams).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // A connection accepted just before the flag was set.
        for s in lock(&self.shared.streams).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let proxies: Vec<_> = lock(&self.shared.threads).drain(..).collect();
        for t in proxies {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An even port R on 127.0.0.1 with R+1 free beside it, as RTP wants.
fn bind_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port.is_multiple_of(2)
            && let Ok(b) = UdpSocket::bind(("127.0.0.1", port + 1))
        {
            return (a, b);
        }
    }
    panic!("no even/odd UDP port pair free on 127.0.0.1");
}

fn accept_loop(listener: TcpListener, server: SocketAddr, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        let Ok(upstream) = TcpStream::connect(server) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        {
            let mut streams = lock(&shared.streams);
            streams.push(client.try_clone().unwrap());
            streams.push(upstream.try_clone().unwrap());
        }
        let (c_read, c_write) = (client.try_clone().unwrap(), client);
        let (u_read, u_write) = (upstream.try_clone().unwrap(), upstream);
        let s = shared.clone();
        let up = std::thread::spawn(move || pump(c_read, u_write, &s, Direction::ToServer));
        let s = shared.clone();
        let down = std::thread::spawn(move || pump(u_read, c_write, &s, Direction::ToClient));
        lock(&shared.threads).extend([up, down]);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    ToServer,
    ToClient,
}

/// Copy one side of an RTSP connection to the other, rewriting SETUP's
/// ports on the way; when either side ends, both do.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, dir: Direction) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let out = match dir {
            Direction::ToServer => rewrite_request(&buf[..n], shared),
            Direction::ToClient => rewrite_reply(&buf[..n], shared),
        };
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A `name=` parameter's value in `bytes`: where its digits start (after
/// any spaces, as the lab writes `client_port= 5008`), where they end,
/// and the one or two port numbers.
fn find_ports(bytes: &[u8], name: &[u8]) -> Option<(usize, usize, u16, Option<u16>)> {
    let at = bytes.windows(name.len()).position(|w| w == name)? + name.len();
    let start = at + bytes[at..].iter().take_while(|b| **b == b' ').count();
    let digits = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let end_a = digits(start);
    let a: u16 = std::str::from_utf8(&bytes[start..end_a])
        .ok()?
        .parse()
        .ok()?;
    if bytes.get(end_a) == Some(&b'-') {
        let end_b = digits(end_a + 1);
        if let Some(b) = std::str::from_utf8(&bytes[end_a + 1..end_b])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return Some((start, end_b, a, Some(b)));
        }
    }
    Some((start, end_a, a, None))
}

fn splice(bytes: &[u8], start: usize, end: usize, with: &str) -> Vec<u8> {
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(with.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    out
}

fn ports_text(a: u16, b: Option<u16>) -> String {
    match b {
        Some(b) => format!("{a}-{b}"),
        None => a.to_string(),
    }
}

/// A SETUP's `client_port` becomes the relay's pair (one port if the
/// client named one, as the lab's do), and the relay remembers the
/// client's ports.
fn rewrite_request(bytes: &[u8], shared: &Shared) -> Vec<u8> {
    let Some((start, end, a, b)) = find_ports(bytes, b"client_port=") else {
        return bytes.to_vec();
    };
    {
        let mut route = lock(&shared.route);
        route.client_rtp = Some(SocketAddr::from(([127, 0, 0, 1], a)));
        route.client_rtcp = b.map(|b| SocketAddr::from(([127, 0, 0, 1], b)));
    }
    let r = shared.rtp_port;
    splice(bytes, start, end, &ports_text(r, b.map(|_| r + 1)))
}

/// A SETUP reply's `client_port` goes back to the client's own ports; its
/// `server_port` becomes the relay's pair, remembering the server's RTCP
/// port for the client's receiver reports.
fn rewrite_reply(bytes: &[u8], shared: &Shared) -> Vec<u8> {
    let route = *lock(&shared.route);
    let mut out = bytes.to_vec();
    if let Some((start, end, a, b)) = find_ports(&out, b"client_port=")
        && a == shared.rtp_port
        && let Some(client) = route.client_rtp
    {
        let theirs = b.and(route.client_rtcp).map(|c| c.port());
        out = splice(&out, start, end, &ports_text(client.port(), theirs));
    }
    if let Some((start, end, a, b)) = find_ports(&out, b"server_port=") {
        let rtcp = b.unwrap_or(a.wrapping_add(1));
        lock(&shared.route).server_rtcp = Some(SocketAddr::from(([127, 0, 0, 1], rtcp)));
        let r = shared.rtp_port;
        out = splice(&out, start, end, &ports_text(r, b.map(|_| r + 1)));
    }
    out
}

/// RTCP both ways across R+1, untouched: from the client's RTCP port to
/// the server's, and from anywhere else (the server) to the client's.
fn rtcp_loop(socket: UdpSocket, shared: Arc<Shared>) {
    socket.set_read_timeout(Some(POLL)).unwrap();
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let route = *lock(&shared.route);
        if Some(from) == route.client_rtcp {
            if let Some(to) = route.server_rtcp
                && socket.send_to(&buf[..n], to).is_ok()
            {
                shared.count(|c| c.rtcp_to_server += 1);
            }
        } else if let Some(to) = route.client_rtcp
            && socket.send_to(&buf[..n], to).is_ok()
        {
            shared.count(|c| c.rtcp_to_client += 1);
        }
    }
}

/// A datagram waiting to go to the client.
struct Pending {
    release: Instant,
    seq: Option<u16>,
    bytes: Vec<u8>,
}

/// The RTP path: receives from the server, decides each packet's fate,
/// and sends what is due in order.
struct RtpForwarder {
    socket: UdpSocket,
    impair: Impairment,
    rng: StdRng,
    shared: Arc<Shared>,
    /// Packets scheduled, in the order they will be sent; release times
    /// never decrease along the queue.
    queue: VecDeque<Pending>,
    /// A packet held to go out after the next one, with its copy if it
    /// was also duplicated, and when it was held.
    held: Option<(Pending, bool, Instant)>,
    first: Option<Instant>,
    /// The burst the last packet fell into (its index from the first).
    last_burst: Option<u64>,
    /// Sequence numbers sent, to tell copies; the highest sent, to tell
    /// packets sent after a higher one.
    seen: HashSet<u16>,
    highest: Option<u16>,
}

fn rtp_seq(p: &[u8]) -> Option<u16> {
    (p.len() >= 12 && p[0] >> 6 == 2).then(|| u16::from_be_bytes([p[2], p[3]]))
}

impl RtpForwarder {
    fn new(socket: UdpSocket, impair: Impairment, shared: Arc<Shared>) -> Self {
        RtpForwarder {
            socket,
            rng: StdRng::seed_from_u64(impair.seed),
            impair,
            shared,
            queue: VecDeque::new(),
            held: None,
            first: None,
            last_burst: None,
            seen: HashSet::new(),
            highest: None,
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        while !self.shared.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            // Wake for the next release (the burst hold's timer is part
            // of the impairment), the held packet's give-up, or the stop.
            let mut wake = now + POLL;
            if let Some(p) = self.queue.front() {
                wake = wake.min(p.release);
            }
            if let Some((_, _, at)) = &self.held {
                wake = wake.min(*at + REORDER_GIVE_UP);
            }
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_micros(50));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let route = *lock(&self.shared.route);
                // Only the server's RTP is relayed (a client that opens
                // its NAT would send here too).
                if Some(from) != route.client_rtp {
                    self.take(Instant::now(), &buf[..n]);
                }
            }
            let now = Instant::now();
            if let Some((_, _, at)) = &self.held
                && now >= *at + REORDER_GIVE_UP
            {
                let (p, dup, _) = self.held.take().unwrap();
                self.schedule(p, dup);
            }
            self.send_due(now);
        }
    }

    /// Decide a packet's fate as it arrives from the server.
    fn take(&mut self, now: Instant, packet: &[u8]) {
        let seq = rtp_seq(packet);
        // Always four draws, so outcomes depend on the packet's index only.
        let lose = self.rng.random::<f64>() < self.impair.loss;
        let dup = self.rng.random::<f64>() < self.impair.duplicate;
        let reorder = self.rng.random::<f64>() < self.impair.reorder;
        let jitter_us = self
            .rng
            .random_range(0..=self.impair.jitter.as_micros() as u64);
        let lose = lose && seq.is_some();
        self.shared.count(|c| {
            c.received += 1;
            if lose {
                c.dropped += 1;
                c.dropped_seqs.extend(seq);
            } else {
                c.queued += 1 + dup as u64;
            }
        });
        if lose {
            return;
        }
        let first = *self.first.get_or_insert(now);
        let mut release = now + Duration::from_micros(jitter_us);
        if let Some(every) = self.impair.burst_every {
            let since = now.duration_since(first);
            let n = (since.as_nanos() / every.as_nanos().max(1)) as u64;
            let start = first + every * n as u32;
            if n > 0 && now < start + self.impair.burst_hold {
                release = release.max(start + self.impair.burst_hold);
                if self.last_burst != Some(n) {
                    self.last_burst = Some(n);
                    self.shared.count(|c| c.bursts += 1);
                }
            }
        }
        let p = Pending {
            release,
            seq,
            bytes: packet.to_vec(),
        };
        if reorder && self.held.is_none() && seq.is_some() {
            self.held = Some((p, dup, now));
            return;
        }
        self.schedule(p, dup);
        if let Some((h, hdup, _)) = self.held.take() {
            self.schedule(h, hdup);
        }
    }

    /// Queue a packet (and its copy) behind everything already queued.
    fn schedule(&mut self, mut p: Pending, dup: bool) {
        if let Some(last) = self.queue.back() {
            p.release = p.release.max(last.release);
        }
        let copy = dup.then(|| Pending {
            release: p.release,
            seq: p.seq,
            bytes: p.bytes.clone(),
        });
        // The original first, its copy right after.
        self.queue.push_back(p);
        self.queue.extend(copy);
    }

    fn send_due(&mut self, now: Instant) {
        let Some(to) = lock(&self.shared.route).client_rtp else {
            return;
        };
        while self.queue.front().is_some_and(|p| p.release <= now) {
            let p = self.queue.pop_front().unwrap();
            let sent = self.socket.send_to(&p.bytes, to).is_ok();
            let (seen, highest) = (&mut self.seen, &mut self.highest);
            self.shared.count(|c| {
                c.queued -= 1;
                let (true, Some(seq)) = (sent, p.seq) else {
                    return;
                };
                c.sent.push(seq);
                if !seen.insert(seq) {
                    c.duplicates += 1;
                    return;
                }
                c.forwarded += 1;
                match *highest {
                    // Behind the highest sent (wrap-aware): reordered.
                    Some(h) if (1..0x8000).contains(&h.wrapping_sub(seq)) => c.reordered += 1,
                    _ => *highest = Some(seq),
                }
            });
        }
    }
}
