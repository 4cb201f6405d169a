//! The RTP receiving side: the UDP receiver thread (RTP from the server's
//! address only, receiver reports from the port beside it, the kernel's
//! drop count), and [`MediaPath`], which wires the sans-IO
//! [`crate::protocol::receiver::Receiver`] to the engine's counters, the
//! playout thread and the owner's records.

use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tracing::{debug, info, warn};

use super::engine::SharedInfo;
use super::{ClientEvent, Events, Records, SharedStats, with_stats};
use crate::protocol::receiver::{ReceivedFrame, Receiver};
use crate::protocol::rtp::DropReason;

/// How often counters and records go to the owner from the media path.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The protocol's receiver with the engine around it.
pub(super) struct MediaPath {
    rx: Receiver,
    info: Arc<SharedInfo>,
    /// The generation of `info` last looked at.
    applied: Option<u64>,
    stats: SharedStats,
    frames: Sender<ReceivedFrame>,
    events: Events,
    records: Records,
    next_publish: Option<Instant>,
    restarts: u64,
}

impl MediaPath {
    pub(super) fn new(
        rx: Receiver,
        info: Arc<SharedInfo>,
        stats: SharedStats,
        frames: Sender<ReceivedFrame>,
        events: Events,
    ) -> Self {
        MediaPath {
            rx,
            info,
            applied: None,
            stats,
            frames,
            events,
            records: Records::default(),
            next_publish: None,
            restarts: 0,
        }
    }

    /// One datagram (or interleaved frame) of RTP, arrived at `now`.
    pub(super) fn handle(&mut self, now: Instant, buf: &[u8]) {
        // One atomic load per packet; the lock only when DESCRIBE or
        // SETUP changed something.
        let generation = self.info.generation();
        if self.applied != Some(generation) {
            self.applied = Some(generation);
            let p = self.info.get();
            self.rx.set_stream(p.payload_type, p.dimensions);
            self.rx.expect_ssrc(p.ssrc);
        }
        self.rx.handle_rtp(now, buf);
        with_stats(&self.stats, |s| s.last_packet = Some(now));
        self.after(now);
    }

    /// A datagram from another address than the server's.
    pub(super) fn refuse(&mut self, now: Instant, buf: &[u8], reason: DropReason) {
        self.rx.refuse(now, buf, reason);
        self.after(now);
    }

    /// Give up on missing packets that were waited for long enough;
    /// publish what is due.
    pub(super) fn poll(&mut self, now: Instant) {
        self.rx.handle_timeout(now);
        self.after(now);
    }

    /// When `poll` has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.rx.poll_timeout()
    }

    pub(super) fn handle_rtcp(&mut self, now: Instant, buf: &[u8]) {
        self.rx.handle_rtcp(now, buf);
    }

    /// A receiver report, when one is due.
    pub(super) fn due_report(&mut self, now: Instant) -> Option<[u8; 32]> {
        let report = self.rx.poll_report(now);
        if report.is_some() {
            let sent = self.rx.counters().reports_sent;
            with_stats(&self.stats, |s| s.stats.reports_sent = sent);
        }
        report
    }

    pub(super) fn stats(&self) -> &SharedStats {
        &self.stats
    }

    /// Frames to the playout thread; records and counters to the owner
    /// every [`PUBLISH_EVERY`].
    fn after(&mut self, now: Instant) {
        while let Some(frame) = self.rx.poll_frame() {
            if let Err(e) = self.frames.try_send(frame) {
                debug!("playout behind; frame skipped");
                let frame = e.into_inner();
                with_stats(&self.stats, |s| s.stats.frames_skipped += 1);
                self.records
                    .frames
                    .push(frame.record(None, crate::protocol::analysis::FrameStatus::Late));
            }
        }
        self.records.packets.extend(self.rx.drain_packet_records());
        self.records.frames.extend(self.rx.drain_frame_records());
        if self.next_publish.is_some_and(|t| now < t) {
            return;
        }
        self.next_publish = Some(now + PUBLISH_EVERY);
        self.publish(now);
    }

    fn publish(&mut self, now: Instant) {
        let c = self.rx.counters().clone();
        if c.restarts != self.restarts {
            self.restarts = c.restarts;
            info!(
                "the server started its RTP stream over (SSRC {:08X}); following it",
                c.ssrc.unwrap_or(0)
            );
        }
        let net = self.rx.net_stats(now);
        let origin = with_stats(&self.stats, |s| {
            let st = &mut s.stats;
            st.packets = c.packets;
            st.bytes = c.bytes;
            st.dropped = c.dropped;
            st.ssrc = c.ssrc;
            st.reports_sent = c.reports_sent;
            st.lost = net.lost;
            st.reordered = net.reordered;
            st.net = net;
            s.play_replied
        });
        if self.records.packets.is_empty() && self.records.frames.is_empty() {
            return;
        }
        self.records.origin = origin;
        // An owner that stopped draining (a hidden window) loses records,
        // not memory.
        if self.events.backlog() < super::MAX_QUEUED_EVENTS {
            self.events
                .send(ClientEvent::Records(std::mem::take(&mut self.records)));
        } else {
            self.records = Records::default();
        }
    }
}

impl Drop for MediaPath {
    /// What is left goes out when the session's media ends.
    fn drop(&mut self) {
        let now = Instant::now();
        self.records.packets.extend(self.rx.drain_packet_records());
        self.records.frames.extend(self.rx.drain_frame_records());
        self.publish(now);
    }
}

/// Receives RTP over UDP, from the server's address only, and sends the
/// server receiver reports from the RTCP port beside it.
pub(super) struct RtpReceiver {
    socket: UdpSocket,
    /// The odd port after the RTP one, when it could be had.
    rtcp: Option<UdpSocket>,
    server_ip: Option<IpAddr>,
    info: Arc<SharedInfo>,
    stop: Arc<AtomicBool>,
    path: MediaPath,
}

/// How often the kernel's drop counter for our socket is read.
const KERNEL_DROPS_EVERY: Duration = Duration::from_secs(1);
/// The longest a receive blocks: how soon a stop is noticed.
const RECEIVE_WAIT: Duration = Duration::from_millis(250);

impl RtpReceiver {
    pub(super) fn new(
        socket: UdpSocket,
        rtcp: Option<UdpSocket>,
        info: Arc<SharedInfo>,
        server_ip: Option<IpAddr>,
        stop: Arc<AtomicBool>,
        path: MediaPath,
    ) -> Self {
        let _ = socket.set_read_timeout(Some(RECEIVE_WAIT));
        RtpReceiver {
            socket,
            rtcp,
            server_ip,
            info,
            stop,
            path,
        }
    }

    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        let port = self.socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut next_drops = Instant::now();
        let mut wait = RECEIVE_WAIT;
        while !self.stop.load(Ordering::SeqCst) {
            let received = self.socket.recv_from(&mut buf);
            let now = Instant::now();
            match received {
                Ok((n, from)) => {
                    if self.server_ip.is_some_and(|ip| !same_host(ip, from.ip())) {
                        self.path.refuse(now, &buf[..n], DropReason::Source);
                    } else {
                        self.path.handle(now, &buf[..n]);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => warn!("RTP receive failed: {e}"),
            }
            self.path.poll(now);
            self.rtcp(now, &mut buf);
            if now >= next_drops {
                next_drops = now + KERNEL_DROPS_EVERY;
                if let Some(drops) = udp_drops(port) {
                    with_stats(self.path.stats(), |s| s.stats.kernel_drops = Some(drops));
                }
            }
            // Wake for the reorder window's deadline, not only for packets.
            let next = self
                .path
                .deadline()
                .map_or(RECEIVE_WAIT, |d| d.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), RECEIVE_WAIT);
            if next != wait {
                wait = next;
                let _ = self.socket.set_read_timeout(Some(wait));
            }
        }
    }

    /// Read the server's sender reports; send ours when due.
    fn rtcp(&mut self, now: Instant, buf: &mut [u8]) {
        let Some(sock) = self.rtcp.as_ref() else {
            return;
        };
        while let Ok((n, from)) = sock.recv_from(buf) {
            if self.server_ip.is_some_and(|ip| same_host(ip, from.ip())) {
                self.path.handle_rtcp(now, &buf[..n]);
            }
        }
        let Some(report) = self.path.due_report(now) else {
            return;
        };
        let port = self.info.get().server_rtcp_port;
        // Only to the server the session is with, as RTSP said.
        if let (Some(ip), Some(port)) = (self.server_ip, port)
            && let Err(e) = sock.send_to(&report, (ip, port))
        {
            debug!("receiver report not sent: {e}");
        }
    }
}

/// Packets the kernel dropped for our UDP port because the receive buffer
/// was full (the last column of /proc/net/udp); None where that file is
/// not there (not Linux).
fn udp_drops(port: u16) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| drops_in(&text, port))
}

/// The drops column of the line for local `port` in /proc/net/udp text.
fn drops_in(text: &str, port: u16) -> Option<u64> {
    let want = format!(":{port:04X}");
    text.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1)?;
        if !local.ends_with(&want) {
            return None;
        }
        line.split_whitespace().last()?.parse().ok()
    })
}

/// An IPv4 server may appear as an IPv4-mapped IPv6 source, and the other way.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_column_of_proc_net_udp() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 1234: 00000000:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n\
 1235: 0100007F:C350 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 4243 2 0000000000000000 117\n";
        assert_eq!(drops_in(text, 8080), Some(0));
        assert_eq!(drops_in(text, 50000), Some(117));
        assert_eq!(drops_in(text, 5000), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_drops_of_a_full_socket_are_read() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(4096);
        let port = rx.local_addr().unwrap().port();
        assert_eq!(udp_drops(port), Some(0));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            tx.send_to(&[0u8; 1000], ("127.0.0.1", port)).unwrap();
        }
        assert!(udp_drops(port).is_some_and(|d| d > 0), "nobody read");
    }
}
