//! Sends a frame's RTP packets over UDP with as few system calls as the
//! kernel allows.
//!
//! A 1080p frame is a burst of a hundred or more datagrams, and a send()
//! each costs the sender most of its CPU: the per-packet trip through the
//! socket layer, not the copying. Linux (4.18 and later) takes a run of
//! equal-sized datagrams as one buffer and cuts it into datagrams itself,
//! late in the stack or in the network card (UDP generic segmentation
//! offload, `UDP_SEGMENT`). RFC 2435 fragments suit it: every packet of a
//! frame has the same size but the last. The receiver sees the very same
//! datagrams either way.
//!
//! Where the kernel or the route refuses segmentation (another OS, a card
//! without checksum offload, IPsec), the socket falls back to one send per
//! packet for good, and says so once in the log.

use std::io;
use std::net::UdpSocket;

use tracing::debug;

/// The most datagrams the kernel takes in one segmented send (its
/// `UDP_MAX_SEGMENTS`; newer kernels take more).
const MAX_SEGMENTS: usize = 64;
/// The most bytes in one segmented send: an IP datagram's 64 KiB less the
/// IPv6 and UDP headers.
const MAX_BYTES: usize = 65_535 - 40 - 8;

/// Whether this socket segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segmentation {
    /// Set to this datagram size on the socket (0: off).
    On(u16),
    /// The kernel refused it: one send per packet.
    Unavailable,
}

/// Collects one frame's packets and sends them in as few calls as it can;
/// see the module documentation.
#[derive(Debug)]
pub struct UdpBatch {
    buf: Vec<u8>,
    /// The size of every datagram in `buf` but the last.
    segment: usize,
    count: usize,
    /// The last datagram was shorter than `segment`: the run is over.
    closed: bool,
    segmentation: Segmentation,
    /// A send failed since the last [`UdpBatch::finish`].
    failed: bool,
    sends: u64,
}

impl Default for UdpBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpBatch {
    pub fn new() -> Self {
        UdpBatch {
            // Grows to the largest frame sent (a few KiB for SD video),
            // not to the 64 KiB a send may take: a server keeps one batch
            // per session.
            buf: Vec::new(),
            segment: 0,
            count: 0,
            closed: false,
            segmentation: if cfg!(target_os = "linux") {
                Segmentation::On(0)
            } else {
                Segmentation::Unavailable
            },
            failed: false,
            sends: 0,
        }
    }

    /// A batch that sends one packet per call, as a kernel without
    /// segmentation makes it do.
    pub fn one_by_one() -> Self {
        UdpBatch {
            segmentation: Segmentation::Unavailable,
            ..Self::new()
        }
    }

    /// Whether sends are segmented by the kernel (so far).
    pub fn segmenting(&self) -> bool {
        self.segmentation != Segmentation::Unavailable
    }

    /// System calls made so far that sent datagrams.
    pub fn sends(&self) -> u64 {
        self.sends
    }

    /// Queues one datagram for `sock` (connected); it may go out now.
    pub fn push(&mut self, sock: &UdpSocket, packet: &[u8]) {
        self.push_parts(sock, packet, &[]);
    }

    /// Queues one datagram made of `head` then `body` (an RTP header and
    /// a payload shared with other sessions), copied once into the batch.
    pub fn push_parts(&mut self, sock: &UdpSocket, head: &[u8], body: &[u8]) {
        let len = head.len() + body.len();
        if !self.segmenting() || len * 2 > MAX_BYTES {
            self.flush(sock);
            if body.is_empty() {
                self.send_one(sock, head);
            } else {
                let mut packet = Vec::with_capacity(len);
                packet.extend_from_slice(head);
                packet.extend_from_slice(body);
                self.send_one(sock, &packet);
            }
            return;
        }
        let fits = self.count > 0
            && !self.closed
            && len <= self.segment
            && self.count < MAX_SEGMENTS
            && self.buf.len() + len <= MAX_BYTES;
        if !fits {
            self.flush(sock);
            self.segment = len;
        }
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(body);
        self.count += 1;
        self.closed = len < self.segment;
    }

    /// Sends a frame's `count` datagrams, datagram i being `part(i)`: a head
    /// and a body (an RTP header and a payload shared with other sessions),
    /// without copying them: the kernel gathers the parts (one iovec each)
    /// and, where it segments, cuts each run of equal-sized datagrams
    /// itself. True when every datagram went out.
    pub fn send_gathered<'a>(
        &mut self,
        sock: &UdpSocket,
        count: usize,
        part: impl Fn(usize) -> (&'a [u8], &'a [u8]),
    ) -> bool {
        self.flush(sock);
        let len = |i: usize| {
            let (head, body) = part(i);
            head.len() + body.len()
        };
        let mut at = 0;
        while at < count {
            let size = len(at);
            // A run: datagrams of `size`, the last of it maybe shorter.
            let mut end = at + 1;
            let mut bytes = size;
            if self.segmenting() && size * 2 <= MAX_BYTES {
                while end < count && end - at < MAX_SEGMENTS {
                    let l = len(end);
                    if l > size || bytes + l > MAX_BYTES {
                        break;
                    }
                    bytes += l;
                    end += 1;
                    if l < size {
                        break;
                    }
                }
            }
            self.send_run(sock, at..end, size, &part);
            at = end;
        }
        !std::mem::take(&mut self.failed)
    }

    /// One run of [`UdpBatch::send_gathered`]: segmented when it holds more
    /// than one datagram.
    fn send_run<'a>(
        &mut self,
        sock: &UdpSocket,
        run: std::ops::Range<usize>,
        size: usize,
        part: &impl Fn(usize) -> (&'a [u8], &'a [u8]),
    ) {
        if run.len() > 1 {
            let result = u16::try_from(size)
                .map_err(|_| io::Error::other("segment too big"))
                .and_then(|size| {
                    if self.segmentation != Segmentation::On(size) {
                        self.set_segment(sock, size)?;
                    }
                    self.sends += 1;
                    send_parts(sock, run.clone(), part)
                });
            match result {
                Ok(()) => return,
                Err(e) if refuses_segmentation(&e) => {
                    debug!(
                        "the kernel does not segment UDP here ({e}); sending one packet per call"
                    );
                    self.segmentation = Segmentation::Unavailable;
                }
                Err(_) => {
                    self.failed = true;
                    return;
                }
            }
        }
        for i in run {
            let (head, body) = part(i);
            let len = head.len() + body.len();
            // A datagram larger than the socket's segment size would be cut.
            if let Segmentation::On(seg) = self.segmentation
                && seg != 0
                && len > seg as usize
                && self.set_segment(sock, 0).is_err()
            {
                self.segmentation = Segmentation::Unavailable;
            }
            self.sends += 1;
            if send_parts(sock, i..i + 1, part).is_err() {
                self.failed = true;
            }
        }
    }

    /// Sends what is queued; true when every datagram since the last call
    /// went out.
    pub fn finish(&mut self, sock: &UdpSocket) -> bool {
        self.flush(sock);
        !std::mem::take(&mut self.failed)
    }

    fn flush(&mut self, sock: &UdpSocket) {
        let count = std::mem::take(&mut self.count);
        if count == 0 {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        if count == 1 {
            self.send_one(sock, &buf);
        } else if let Err(e) = self.send_segmented(sock, &buf) {
            if refuses_segmentation(&e) {
                debug!("the kernel does not segment UDP here ({e}); sending one packet per call");
                self.segmentation = Segmentation::Unavailable;
                for packet in buf.chunks(self.segment) {
                    self.send_one(sock, packet);
                }
            } else {
                self.sends += 1;
                self.failed = true;
            }
        }
        self.buf = buf;
        self.buf.clear();
        self.closed = false;
    }

    fn send_one(&mut self, sock: &UdpSocket, packet: &[u8]) {
        // A datagram larger than the socket's segment size would be cut.
        if let Segmentation::On(size) = self.segmentation
            && size != 0
            && packet.len() > size as usize
            && self.set_segment(sock, 0).is_err()
        {
            self.segmentation = Segmentation::Unavailable;
        }
        self.sends += 1;
        if sock.send(packet).is_err() {
            self.failed = true;
        }
    }

    fn send_segmented(&mut self, sock: &UdpSocket, buf: &[u8]) -> io::Result<()> {
        let size = u16::try_from(self.segment).map_err(|_| io::Error::other("segment too big"))?;
        if self.segmentation != Segmentation::On(size) {
            self.set_segment(sock, size)?;
        }
        self.sends += 1;
        sock.send(buf).map(|_| ())
    }

    #[cfg(target_os = "linux")]
    fn set_segment(&mut self, sock: &UdpSocket, size: u16) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let value = libc::c_int::from(size);
        // SAFETY: a valid socket descriptor, and a pointer to an int that
        // lives across the call with its size, as setsockopt(2) asks.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        self.segmentation = Segmentation::On(size);
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn set_segment(&mut self, _sock: &UdpSocket, _size: u16) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Most datagrams gathered in one call: two parts each.
const MAX_PARTS: usize = 2 * MAX_SEGMENTS;

/// One sendmsg(2) of datagrams `run`'s parts, in order, on a connected
/// socket.
#[cfg(unix)]
fn send_parts<'a>(
    sock: &UdpSocket,
    run: std::ops::Range<usize>,
    part: &impl Fn(usize) -> (&'a [u8], &'a [u8]),
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut iov = [empty; MAX_PARTS];
    let mut n = 0;
    for i in run.take(MAX_SEGMENTS) {
        let (head, body) = part(i);
        for p in [head, body] {
            if !p.is_empty() {
                iov[n] = libc::iovec {
                    iov_base: p.as_ptr().cast_mut().cast(),
                    iov_len: p.len(),
                };
                n += 1;
            }
        }
    }
    // SAFETY: a zeroed msghdr is valid (no address: the socket is
    // connected; no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    // SAFETY: the iovecs point into slices borrowed for the whole call,
    // which the kernel only reads; the descriptor is the socket's own.
    let sent = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere: one datagram per call, put together first.
#[cfg(not(unix))]
fn send_parts<'a>(
    sock: &UdpSocket,
    run: std::ops::Range<usize>,
    part: &impl Fn(usize) -> (&'a [u8], &'a [u8]),
) -> io::Result<()> {
    for i in run {
        let (head, body) = part(i);
        let mut packet = Vec::with_capacity(head.len() + body.len());
        packet.extend_from_slice(head);
        packet.extend_from_slice(body);
        sock.send(&packet)?;
    }
    Ok(())
}

/// Errors that say segmentation cannot be used here, as opposed to a
/// refusal by the peer (ICMP port unreachable) that one send per packet
/// would meet too.
fn refuses_segmentation(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EMSGSIZE)
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(4 << 20)
            .unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        (tx, rx)
    }

    /// A frame as the RFC 2435 packetizer cuts it: full packets and a
    /// shorter last one, each with its own bytes.
    fn frame(id: u8, full: usize, size: usize, last: usize) -> Vec<Vec<u8>> {
        let mut packets: Vec<Vec<u8>> = (0..full)
            .map(|i| {
                let mut p = vec![id; size];
                p[..2].copy_from_slice(&(i as u16).to_be_bytes());
                p
            })
            .collect();
        packets.push(vec![id.wrapping_add(1); last]);
        packets
    }

    fn received(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 70_000];
        (0..n)
            .map(|_| {
                let len = rx.recv(&mut buf).expect("a datagram within 5 s");
                buf[..len].to_vec()
            })
            .collect()
    }

    fn send_and_compare(mut batch: UdpBatch, frames: &[Vec<Vec<u8>>]) -> UdpBatch {
        let (tx, rx) = pair();
        let mut expected = Vec::new();
        for f in frames {
            for p in f {
                batch.push(&tx, p);
                expected.push(p.clone());
            }
            assert!(batch.finish(&tx));
        }
        let got = received(&rx, expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.len(), e.len(), "datagram {i}'s size");
            assert!(g == e, "datagram {i}'s bytes");
        }
        batch
    }

    fn frames() -> Vec<Vec<Vec<u8>>> {
        vec![
            // A 1080p frame's worth: more than one segmented send.
            frame(1, 150, 1412, 300),
            // Exactly full, then a lone small packet.
            frame(3, 46, 1412, 1412),
            frame(5, 0, 1412, 90),
            // A lab-sized datagram between segmented runs.
            vec![vec![7; 60_000]],
            frame(9, 10, 500, 499),
            frame(11, 3, 1412, 1),
        ]
    }

    #[test]
    fn segmented_sends_arrive_as_the_same_datagrams() {
        let packets: usize = frames().iter().map(Vec::len).sum();
        let batch = send_and_compare(UdpBatch::new(), &frames());
        if cfg!(target_os = "linux") {
            assert!(batch.segmenting(), "Linux segments UDP on loopback");
            assert!(
                batch.sends() * 4 < packets as u64,
                "{} calls for {packets} packets",
                batch.sends()
            );
        }
    }

    /// Gathered sends (a head and a body per datagram, no copy) give the
    /// very datagrams that copying them would.
    #[test]
    fn gathered_sends_arrive_as_the_same_datagrams() {
        for mut batch in [UdpBatch::new(), UdpBatch::one_by_one()] {
            let (tx, rx) = pair();
            let mut expected = Vec::new();
            for f in frames() {
                let split: Vec<(Vec<u8>, Vec<u8>)> = f
                    .iter()
                    .map(|p| {
                        let cut = p.len().min(12);
                        (p[..cut].to_vec(), p[cut..].to_vec())
                    })
                    .collect();
                assert!(batch.send_gathered(&tx, split.len(), |i| {
                    (split[i].0.as_slice(), split[i].1.as_slice())
                }));
                expected.extend(f);
            }
            let got = received(&rx, expected.len());
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    g == e,
                    "datagram {i} ({} bytes, wanted {})",
                    g.len(),
                    e.len()
                );
            }
            if batch.segmenting() {
                assert!(batch.sends() * 4 < expected.len() as u64);
            }
        }
    }

    #[test]
    fn one_by_one_sends_arrive_as_the_same_datagrams() {
        let packets: usize = frames().iter().map(Vec::len).sum();
        let batch = send_and_compare(UdpBatch::one_by_one(), &frames());
        assert_eq!(batch.sends(), packets as u64);
    }

    #[test]
    fn a_closed_port_fails_the_frame() {
        let (tx, rx) = pair();
        drop(rx);
        let mut batch = UdpBatch::new();
        // The ICMP port unreachable fails a later send, not the first.
        let failed = (0..10).any(|_| {
            for p in frame(1, 20, 1412, 10) {
                batch.push(&tx, &p);
            }
            !batch.finish(&tx)
        });
        assert!(failed);
        assert!(batch.segmenting() || !cfg!(target_os = "linux"));
    }
}
