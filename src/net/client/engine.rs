//! The engine thread: the I/O loop around the sans-IO
//! [`ClientConnection`], owning the RTSP socket and the media threads, and
//! the pre-buffer's PLAY-then-PAUSE.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, select};
use tracing::{debug, info};

use super::playout::{PlayoutOrder, PlayoutThread};
use super::receive::{MediaPath, RtpReceiver};
use super::{
    CONNECT_TIMEOUT, ClientCommand, ClientConfig, ClientError, ClientEvent, ClientStats,
    DialectChoice, Events, Order, STATS_EVERY, SharedStats, WireMessage, with_stats,
};
use crate::protocol::State;
use crate::protocol::analysis::WallAnchor;
use crate::protocol::client::{ClientConnection, ClientHost, Event, MediaRoute, StreamInfo};
use crate::protocol::playout::PlayoutConfig;
use crate::protocol::prebuffer::{Action as PrebufferAction, Prebuffer};
use crate::protocol::receiver::{Receiver as RtpReceiving, ReceiverConfig};
use crate::protocol::server::LAB_QUIET;

/// What the TCP reader thread reports.
enum NetInput {
    Bytes(Vec<u8>),
    Closed,
}

/// The RTP side: receiver and playout threads, alive from SETUP to the end.
struct MediaThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    port: u16,
    /// Hold, release and flush for the playout buffer.
    playout: Sender<PlayoutOrder>,
    /// Frames the playout buffer holds while held, as it fills.
    held: Receiver<usize>,
}

impl MediaThreads {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(self.playout);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Whole frames waiting for the playout thread before new ones are
/// skipped (the playout buffer itself holds many more).
const DECODE_QUEUE: usize = 64;
/// The latency chosen for UDP from another host when the user did not
/// say (as GStreamer's jitter buffer).
const AUTO_LATENCY_MS: u32 = 200;
/// The UDP receive buffer asked for RTP.
const RTP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// The I/O loop around [`ClientConnection`]: it owns the sockets and
/// threads and feeds the connection bytes, commands and the time.
pub(super) struct Engine {
    conn: ClientConnection,
    io: Io,
    prebuffer: Prebuffer,
}

/// The sockets and threads, as [`ClientHost`] for the connection.
struct Io {
    config: ClientConfig,
    events: Events,
    stats: SharedStats,
    stream: Option<TcpStream>,
    server_ip: Option<IpAddr>,
    net_rx: Receiver<NetInput>,
    reader: Option<JoinHandle<()>>,
    media: Option<MediaThreads>,
    /// RTP arriving inside the RTSP connection (TCP transport).
    interleaved: Option<MediaPath>,
    /// SETUP reached READY from INIT: the pre-buffer may start.
    setup_done: bool,
    last_state: State,
    info: Arc<SharedInfo>,
    /// The engine thread's own copy of `info`: it sets it, so reading it
    /// per interleaved packet needs no lock.
    current: StreamInfo,
    last_stats: Option<ClientStats>,
}

impl Engine {
    pub(super) fn new(config: ClientConfig, events: Events) -> Self {
        Engine {
            // TPC-3 cannot pause, which the pre-buffer needs.
            prebuffer: Prebuffer::new(if config.dialect == DialectChoice::Tpc3 {
                0
            } else {
                config.prebuffer
            }),
            conn: ClientConnection::new(config.clone()),
            io: Io {
                config,
                events,
                stats: SharedStats::default(),
                stream: None,
                server_ip: None,
                net_rx: crossbeam_channel::never(),
                reader: None,
                media: None,
                interleaved: None,
                setup_done: false,
                last_state: State::Init,
                info: Arc::default(),
                current: StreamInfo::default(),
                last_stats: None,
            },
        }
    }

    pub(super) fn run(mut self, commands: Receiver<Order>) {
        self.conn.start(&mut self.io);
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            let deadline = self
                .conn
                .poll_timeout()
                .map_or(next_stats, |t| t.min(next_stats));
            let net_rx = self.io.net_rx.clone();
            let held_rx = self
                .io
                .media
                .as_ref()
                .map_or_else(crossbeam_channel::never, |m| m.held.clone());
            select! {
                recv(commands) -> order => match order {
                    Ok(Order::Command(ClientCommand::Shutdown)) | Err(_) => break,
                    Ok(Order::Command(c)) => self.user_command(c),
                    Ok(Order::Credentials(c)) => {
                        self.conn.credentials(Instant::now(), c, &mut self.io)
                    }
                },
                recv(net_rx) -> input => match input {
                    Ok(NetInput::Bytes(b)) => self.conn.handle_bytes(Instant::now(), &b, &mut self.io),
                    Ok(NetInput::Closed) | Err(_) => {
                        // Whether datagrams came tells a transfer that
                        // ended (TPC-3's server may close at the end of
                        // the file) from one that never began.
                        self.conn
                            .media_seen(with_stats(&self.io.stats, |s| s.last_packet));
                        self.conn.handle_closed(Instant::now(), &mut self.io)
                    }
                },
                recv(held_rx) -> held => {
                    if let Ok(n) = held { self.held(n) }
                }
                default(deadline.saturating_duration_since(Instant::now())) => {}
            }
            self.start_prebuffer();
            let now = Instant::now();
            self.conn
                .media_seen(with_stats(&self.io.stats, |s| s.last_packet));
            self.conn.handle_timeout(now, &mut self.io);
            if now >= next_stats {
                next_stats = now + STATS_EVERY;
                if self.conn.has_session() || self.io.media.is_some() {
                    self.io.interleaved_report(now);
                    self.io.send_stats(now);
                }
            }
        }
        self.teardown_on_exit();
        self.io.close_media();
        self.io.disconnect();
        let stats = with_stats(&self.io.stats, |s| s.stats.clone());
        self.io.events.send(ClientEvent::Stats(stats));
    }

    /// What the user asked, with what the playout buffer must do first.
    fn user_command(&mut self, c: ClientCommand) {
        let now = Instant::now();
        let buffered = self.io.config.prebuffer > 0 || self.io.latency_ms() > 0;
        self.prebuffer.user(c);
        match c {
            ClientCommand::Play => {
                // The first frame comes from the buffer at once; PLAY
                // resumes the stream behind it.
                with_stats(&self.io.stats, |s| {
                    s.stats.first_frame_ms = None;
                    s.play_sent = Some(now);
                });
                self.io.playout(PlayoutOrder::Release(now));
            }
            ClientCommand::PlayFrom { .. } => {
                with_stats(&self.io.stats, |s| s.stats.first_frame_ms = None);
                self.io.playout(PlayoutOrder::Flush);
                self.io.playout(PlayoutOrder::Release(now));
            }
            ClientCommand::Pause if buffered => self.io.playout(PlayoutOrder::Hold),
            ClientCommand::Teardown => self.io.playout(PlayoutOrder::Flush),
            _ => {}
        }
        self.conn.command(now, c, &mut self.io);
    }

    /// SETUP just reached READY: with a pre-buffer, fetch ahead.
    fn start_prebuffer(&mut self) {
        if !std::mem::take(&mut self.io.setup_done) {
            return;
        }
        if let Some(action) = self.prebuffer.setup_done(self.conn.state()) {
            info!(
                "pre-buffer: fetching {} frames ahead",
                self.io.config.prebuffer
            );
            self.act(action);
        }
    }

    /// The held buffer has `n` frames.
    fn held(&mut self, n: usize) {
        if let Some(action) = self.prebuffer.held(n, self.conn.state()) {
            info!("pre-buffer: {n} frames held; PAUSE");
            self.act(action);
        }
    }

    fn act(&mut self, action: PrebufferAction) {
        let now = Instant::now();
        match action {
            PrebufferAction::HoldAndPlay => {
                self.io.playout(PlayoutOrder::Hold);
                self.conn.command(now, ClientCommand::Play, &mut self.io);
            }
            PrebufferAction::Pause => self.conn.command(now, ClientCommand::Pause, &mut self.io),
        }
    }

    /// Leave politely: TEARDOWN, and wait a moment for its reply.
    fn teardown_on_exit(&mut self) {
        if self.conn.state() == State::Init {
            return;
        }
        self.conn
            .command(Instant::now(), ClientCommand::Teardown, &mut self.io);
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.conn.state() != State::Init && self.conn.has_session() {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            match self.io.net_rx.recv_timeout(wait.min(LAB_QUIET)) {
                Ok(NetInput::Bytes(b)) => self.conn.handle_bytes(Instant::now(), &b, &mut self.io),
                Ok(NetInput::Closed) => break,
                Err(_) => self.conn.handle_timeout(Instant::now(), &mut self.io),
            }
        }
    }
}

impl Io {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.rtsp_port)
    }

    /// The latency the playout buffer uses: the user's, or 0 over TCP and
    /// on loopback and [`AUTO_LATENCY_MS`] over UDP to another host.
    fn latency_ms(&self) -> u32 {
        if let Some(ms) = self.config.latency_ms {
            return ms;
        }
        let local = self.server_ip.is_none_or(|ip| ip.is_loopback());
        if self.config.transport == super::TransportChoice::Tcp || local {
            0
        } else {
            AUTO_LATENCY_MS
        }
    }

    fn playout(&self, order: PlayoutOrder) {
        if let Some(m) = self.media.as_ref() {
            let _ = m.playout.send(order);
        }
    }

    /// A receiver report inside the RTSP connection, when one is due.
    fn interleaved_report(&mut self, now: Instant) {
        if let Some(p) = self.interleaved.as_mut() {
            p.poll(now);
        }
        let Some(report) = self.interleaved.as_mut().and_then(|p| p.due_report(now)) else {
            return;
        };
        let Some(channel) = self.current.rtcp_channel else {
            return;
        };
        let mut frame = Vec::with_capacity(4 + report.len());
        crate::protocol::rtsp::write_interleaved(&mut frame, channel, &report);
        // A failed write shows up as the reader's Closed.
        let _ = self.send(&frame);
    }

    /// Counters, when they changed: a paused window stays idle.
    fn send_stats(&mut self, now: Instant) {
        let stats = with_stats(&self.stats, |s| {
            while s
                .frame_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            {
                s.frame_times.pop_front();
            }
            s.stats.fps = s.frame_times.len() as f64;
            s.stats.clone()
        });
        if self.last_stats.as_ref() != Some(&stats) {
            self.last_stats = Some(stats.clone());
            self.events.send(ClientEvent::Stats(stats));
        }
    }

    /// Start the playout thread and, for UDP, bind the RTP port and start
    /// the receiver; for TCP, RTP comes through the RTSP connection.
    fn start_media(&mut self, route: MediaRoute) -> Result<MediaThreads, ClientError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Empty while the playout thread keeps up; the slack absorbs it
        // being descheduled for a moment on a busy machine.
        let (frames_tx, frames_rx) = crossbeam_channel::bounded(DECODE_QUEUE);
        let (orders_tx, orders_rx) = crossbeam_channel::unbounded();
        let (held_tx, held_rx) = crossbeam_channel::unbounded();
        // Standard RTP over UDP only: TCP arrives in order, and the lab's
        // checks (seed 000) judge each datagram as it comes.
        let reorder = route == MediaRoute::Udp { pair: true };
        let lab = route == MediaRoute::Udp { pair: false };
        let anchor = WallAnchor {
            instant: Instant::now(),
            since_epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        };
        let receiver = RtpReceiving::new(ReceiverConfig {
            reorder,
            own_ssrc: rand::random(),
            // IPv4 + UDP headers, or the `$` framing inside TCP.
            overhead: if route == MediaRoute::Interleaved {
                4
            } else {
                28
            },
            wall: Some(anchor),
        });
        let path = MediaPath::new(
            receiver,
            self.info.clone(),
            self.stats.clone(),
            frames_tx,
            self.events.clone(),
        );
        let latency_ms = self.latency_ms();
        with_stats(&self.stats, |s| s.stats.latency_ms = latency_ms);
        let playout = PlayoutThread::new(
            PlayoutConfig {
                latency: Duration::from_millis(latency_ms as u64),
                lab_timing: lab,
                ..PlayoutConfig::default()
            },
            frames_rx,
            orders_rx,
            held_tx,
            self.events.clone(),
            self.stats.clone(),
        );
        let spawn_err =
            |e: std::io::Error| ClientError::Other(format!("cannot start a thread: {e}"));
        let mut threads = vec![
            std::thread::Builder::new()
                .name("playout".into())
                .spawn(move || playout.run())
                .map_err(spawn_err)?,
        ];
        let mut port = 0;
        match route {
            MediaRoute::Udp { pair } => {
                let (socket, rtcp) = bind_rtp(self.config.rtp_port, pair)?;
                port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
                if self.config.rtp_port != 0 && port != self.config.rtp_port {
                    // SETUP names the port we got, so any free one works;
                    // a second player window is the usual reason.
                    self.events.send(ClientEvent::Notice(format!(
                        "RTP port {} is in use by another program; receiving on port {port} instead.",
                        self.config.rtp_port
                    )));
                }
                // A 1080p frame is a burst of a hundred packets or more; the
                // default buffer (about 200 KB) loses the tail of one when the
                // receiver is a moment late. The kernel caps the size asked.
                let sock = socket2::SockRef::from(&socket);
                let _ = sock.set_recv_buffer_size(RTP_RECEIVE_BUFFER);
                debug!(
                    "RTP receive buffer: {} bytes",
                    sock.recv_buffer_size().unwrap_or(0)
                );
                let receiver = RtpReceiver::new(
                    socket,
                    rtcp,
                    self.info.clone(),
                    self.server_ip,
                    stop.clone(),
                    path,
                );
                threads.push(
                    std::thread::Builder::new()
                        .name("rtp-receive".into())
                        .spawn(move || receiver.run())
                        .map_err(spawn_err)?,
                );
            }
            MediaRoute::Interleaved => self.interleaved = Some(path),
        }
        Ok(MediaThreads {
            stop,
            threads,
            port,
            playout: orders_tx,
            held: held_rx,
        })
    }
}

impl ClientHost for Io {
    fn connect(&mut self) -> Result<(), ClientError> {
        self.disconnect();
        let addr = self.addr();
        let addrs: Vec<SocketAddr> =
            match (self.config.host.as_str(), self.config.rtsp_port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    return Err(ClientError::Connect {
                        addr,
                        reason: format!("cannot resolve the host name ({e})"),
                    });
                }
            };
        let mut last_err = String::from("no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let Ok(reader) = stream.try_clone() else {
                        continue;
                    };
                    let (tx, rx) = crossbeam_channel::unbounded();
                    self.reader = std::thread::Builder::new()
                        .name("rtsp-client-read".into())
                        .spawn(move || read_loop(reader, tx))
                        .ok();
                    self.net_rx = rx;
                    self.server_ip = Some(a.ip());
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(ClientError::Connect {
            addr,
            reason: last_err,
        })
    }

    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.net_rx = crossbeam_channel::never();
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stream.as_mut() {
            Some(s) => s.write_all(bytes),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
        self.close_media();
        let media = self.start_media(route)?;
        let port = media.port;
        self.media = Some(media);
        Ok(port)
    }

    /// Stop receiving: the next session starts with fresh checks (its
    /// SSRC and sequence numbers are new) and a fresh port.
    fn close_media(&mut self) {
        // The decoder thread ends when every frame sender is gone.
        self.interleaved = None;
        if let Some(m) = self.media.take() {
            m.stop();
        }
    }

    fn stream_info(&mut self, info: StreamInfo) {
        self.current = info;
        self.info.set(info);
    }

    fn interleaved(&mut self, channel: u8, payload: &[u8]) {
        let info = self.current;
        let Some(path) = self.interleaved.as_mut() else {
            return;
        };
        if channel == info.rtp_channel {
            path.handle(Instant::now(), payload);
        } else if Some(channel) == info.rtcp_channel {
            path.handle_rtcp(Instant::now(), payload);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Wire { direction, bytes } => self.events.send(ClientEvent::Wire(WireMessage {
                at: SystemTime::now(),
                direction,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })),
            Event::State { state, session } => {
                if state == State::Playing {
                    with_stats(&self.stats, |s| {
                        s.play_replied.get_or_insert(Instant::now());
                    });
                }
                if state == State::Ready && self.last_state == State::Init {
                    self.setup_done = true;
                    // A new session: its records count from its own PLAY.
                    // (Not at INIT: the last records come after TEARDOWN.)
                    with_stats(&self.stats, |s| s.play_replied = None);
                }
                self.last_state = state;
                self.events.send(ClientEvent::State { state, session })
            }
            Event::PlaySent => with_stats(&self.stats, |s| {
                s.play_sent = Some(Instant::now());
                s.last_packet = None;
            }),
            Event::Error(e) => self.events.error(e),
            Event::Notice(n) => {
                info!("{n}");
                self.events.send(ClientEvent::Notice(n));
            }
            Event::StreamEnded => self.events.send(ClientEvent::StreamEnded),
            Event::Timeline(t) => self.events.send(ClientEvent::Timeline(t)),
            Event::Tpc3(phase) => self.events.send(ClientEvent::Tpc3(phase)),
        }
    }

    fn random(&mut self) -> u32 {
        rand::random()
    }
}

/// Bind the RTP port: the one asked for, or a free one. Standard RTP
/// wants it even, with the odd one after it for RTCP; the RTCP socket is
/// returned when that port could be had.
/// Bind the RTP port asked for (and RTCP's beside it); when another
/// program has it, any free one (an even/odd pair for RTCP), since SETUP
/// tells the server which.
fn bind_rtp(port: u16, pair: bool) -> Result<(UdpSocket, Option<UdpSocket>), ClientError> {
    let err = |e: std::io::Error| ClientError::RtpPort {
        port,
        reason: e.to_string(),
    };
    match bind_rtp_exactly(port, pair) {
        Err(e) if port != 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
            bind_rtp_exactly(0, pair).map_err(err)
        }
        result => result.map_err(err),
    }
}

fn bind_rtp_exactly(port: u16, pair: bool) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
    let rtcp_after = |s: &UdpSocket| {
        let p = s.local_addr().ok()?.port().checked_add(1)?;
        let r = UdpSocket::bind(("0.0.0.0", p)).ok()?;
        r.set_nonblocking(true).ok()?;
        Some(r)
    };
    if !pair {
        return Ok((UdpSocket::bind(("0.0.0.0", port))?, None));
    }
    if port != 0 {
        let s = UdpSocket::bind(("0.0.0.0", port))?;
        let r = rtcp_after(&s);
        return Ok((s, r));
    }
    for _ in 0..64 {
        let s = UdpSocket::bind(("0.0.0.0", 0))?;
        if s.local_addr().is_ok_and(|a| a.port() % 2 == 0)
            && let Some(r) = rtcp_after(&s)
        {
            return Ok((s, Some(r)));
        }
    }
    Ok((UdpSocket::bind(("0.0.0.0", 0))?, None))
}

fn read_loop(mut stream: TcpStream, tx: Sender<NetInput>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(NetInput::Bytes(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = tx.send(NetInput::Closed);
}

/// What the client learned about the stream, shared with the receiving
/// thread, which reads a generation number per packet and takes the lock
/// only when it moved.
#[derive(Default)]
pub(super) struct SharedInfo {
    generation: AtomicU64,
    info: Mutex<StreamInfo>,
}

impl SharedInfo {
    pub(super) fn set(&self, info: StreamInfo) {
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(super) fn get(&self) -> StreamInfo {
        *self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
