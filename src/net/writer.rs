//! The writing half of one RTSP connection, shared by the replies and the
//! media sent interleaved in it (RFC 2326 section 10.12), so that the two
//! never mix within a message.
//!
//! Messages are queued whole and handed to the kernel without blocking, so
//! that the lock is never held while waiting: the fan-out sender, which
//! serves every session from one thread, must never wait for one slow
//! client. Media is offered ([`ConnectionWriter::offer`]): when the client
//! is behind (bytes still queued), the new frame is dropped whole rather
//! than queued, so memory stays at about a frame per connection and the
//! client gets fresh frames when it catches up. A reply
//! ([`ConnectionWriter::send`]) is queued behind what is there and its
//! caller waits, without the lock, until it has gone out.
//!
//! A client that stops reading fills its receive window and then our send
//! buffer. Each reply gets [`ConnectionWriter::timeout`] to go out, and
//! queued bytes that the kernel takes none of for that long mean the same:
//! the connection breaks for good, the socket is shut down, which wakes the
//! connection's reader, which ends the session.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::warn;

/// How long one message may take to go out before the peer is taken to
/// have stopped reading. A live client on a slow link drains a few seconds
/// of HD video in far less.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a message did not go out. Every one of them ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "{peer} stopped reading: nothing more could be sent to it for {}s; closing \
         the connection and ending its session (a client must read what it asked for, \
         or use UDP)",
        waited.as_secs_f32()
    )]
    Stalled { peer: SocketAddr, waited: Duration },
    #[error("sending to {peer} failed ({source}); closing the connection and ending its session")]
    Failed { peer: SocketAddr, source: io::Error },
    #[error("the connection to {0} is already closed")]
    Closed(SocketAddr),
}

/// See the module documentation.
pub struct ConnectionWriter {
    inner: Mutex<Inner>,
    peer: SocketAddr,
    timeout: Duration,
    broken: AtomicBool,
}

struct Inner {
    stream: TcpStream,
    /// Whole messages accepted and not yet taken by the kernel, from
    /// `backlog[taken..]`.
    backlog: Vec<u8>,
    taken: usize,
    /// Bytes the kernel has taken since the connection opened: a reply
    /// has gone out once this passes its end.
    total_taken: u64,
    /// When the kernel last took bytes, or the backlog was last empty.
    moved: Instant,
}

impl Inner {
    fn queued(&self) -> usize {
        self.backlog.len() - self.taken
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.queued() == 0 {
            self.moved = Instant::now();
        }
        self.backlog.extend_from_slice(bytes);
    }

    /// Hands the kernel what it takes now, without waiting.
    fn flush(&mut self) -> io::Result<()> {
        while self.queued() > 0 {
            match write_now(&mut self.stream, &self.backlog[self.taken..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.taken += n;
                    self.total_taken += n as u64;
                    self.moved = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.queued() == 0 {
            self.backlog.clear();
            self.taken = 0;
            // A big frame once must not keep its memory for the connection's life.
            if self.backlog.capacity() > KEPT_CAPACITY {
                self.backlog.shrink_to(KEPT_CAPACITY);
            }
        }
        Ok(())
    }
}

/// Backlog capacity kept between messages (a few SD frames).
const KEPT_CAPACITY: usize = 256 * 1024;

/// One write that takes what the kernel has room for now and never waits.
#[cfg(unix)]
fn write_now(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    socket2::SockRef::from(&*stream).send_with_flags(bytes, libc::MSG_DONTWAIT)
}

/// Elsewhere the socket's write timeout bounds the write instead.
#[cfg(not(unix))]
fn write_now(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    io::Write::write(stream, bytes)
}

/// Waits until the socket has room, or `wait` passes.
#[cfg(unix)]
fn wait_writable(stream: &TcpStream, wait: Duration) {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call; the stream
    // (and so its descriptor) outlives it.
    unsafe {
        libc::poll(&mut fd, 1, millis);
    }
}

#[cfg(not(unix))]
fn wait_writable(_stream: &TcpStream, _wait: Duration) {}

impl ConnectionWriter {
    /// Takes a clone of the connection's socket; `timeout` bounds each
    /// message (see [`WRITE_TIMEOUT`]).
    pub fn new(stream: TcpStream, peer: SocketAddr, timeout: Duration) -> io::Result<Self> {
        // Where writes cannot be made non-blocking one by one, the
        // kernel's own bound makes a blocked send() return.
        stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        Ok(ConnectionWriter {
            inner: Mutex::new(Inner {
                stream,
                backlog: Vec::new(),
                taken: 0,
                total_taken: 0,
                moved: Instant::now(),
            }),
            peer,
            timeout,
            broken: AtomicBool::new(false),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a write failed: nothing more will be sent.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Sends one whole message (a reply) behind whatever is queued and
    /// waits until it has gone out, or breaks the connection.
    pub fn send(&self, bytes: &[u8]) -> Result<(), WriteError> {
        let started = Instant::now();
        let mut inner = self.lock()?;
        inner.append(bytes);
        let end = inner.total_taken + inner.queued() as u64;
        loop {
            if let Err(source) = inner.flush() {
                return Err(self.failed(&inner, source));
            }
            if inner.total_taken >= end {
                return Ok(());
            }
            let waited = started.elapsed();
            let Some(left) = self.timeout.checked_sub(waited).filter(|l| !l.is_zero()) else {
                let error = WriteError::Stalled {
                    peer: self.peer,
                    waited,
                };
                return Err(self.break_connection(&inner.stream, error));
            };
            // Wait without the lock, so that media can still be offered
            // (and dropped) meanwhile.
            let stream = inner
                .stream
                .try_clone()
                .map_err(|source| self.failed(&inner, source))?;
            drop(inner);
            wait_writable(&stream, left);
            inner = self.lock()?;
        }
    }

    /// Offers one whole media message without ever waiting: Ok(true) when
    /// it is on its way, Ok(false) when it was dropped because the client
    /// has not taken the previous ones yet. Breaks the connection when
    /// nothing has moved for the timeout.
    pub fn offer(&self, bytes: &[u8]) -> Result<bool, WriteError> {
        let mut inner = self.lock()?;
        if let Err(source) = inner.flush() {
            return Err(self.failed(&inner, source));
        }
        if inner.queued() > 0 {
            let waited = inner.moved.elapsed();
            if waited >= self.timeout {
                let error = WriteError::Stalled {
                    peer: self.peer,
                    waited,
                };
                return Err(self.break_connection(&inner.stream, error));
            }
            return Ok(false);
        }
        inner.append(bytes);
        if let Err(source) = inner.flush() {
            return Err(self.failed(&inner, source));
        }
        Ok(true)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, WriteError> {
        if self.is_broken() {
            return Err(WriteError::Closed(self.peer));
        }
        // Inner is consistent after every statement that changes it, so a
        // panic elsewhere while locked leaves nothing half done.
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_broken() {
            return Err(WriteError::Closed(self.peer));
        }
        Ok(inner)
    }

    fn failed(&self, inner: &Inner, source: io::Error) -> WriteError {
        let error = WriteError::Failed {
            peer: self.peer,
            source,
        };
        self.break_connection(&inner.stream, error)
    }

    /// Marks the connection broken, says so once, and shuts the socket
    /// down so that its reader wakes up and ends the session.
    fn break_connection(&self, stream: &TcpStream, error: WriteError) -> WriteError {
        if !self.broken.swap(true, Ordering::SeqCst) {
            warn!(peer = %self.peer, "{error}");
        }
        let _ = stream.shutdown(Shutdown::Both);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn a_peer_that_never_reads_breaks_the_connection_within_the_timeout() {
        let (ours, mut theirs) = pair();
        let peer = theirs.local_addr().unwrap();
        let w = ConnectionWriter::new(ours, peer, Duration::from_millis(200)).unwrap();
        let chunk = vec![0u8; 256 * 1024];
        let started = Instant::now();
        let err = loop {
            if let Err(e) = w.send(&chunk) {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never blocked");
        };
        assert!(matches!(err, WriteError::Stalled { .. }), "{err}");
        assert!(err.to_string().contains("stopped reading"), "{err}");
        assert!(w.is_broken());
        assert!(matches!(w.send(b"x"), Err(WriteError::Closed(_))));
        // The peer drains what was queued, then sees the end.
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = vec![0u8; 1 << 16];
        while theirs.read(&mut buf).unwrap() > 0 {}
    }

    #[test]
    fn a_reading_peer_gets_every_byte() {
        let (ours, mut theirs) = pair();
        let peer = theirs.local_addr().unwrap();
        let w = ConnectionWriter::new(ours, peer, WRITE_TIMEOUT).unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).unwrap();
            all
        });
        let msg: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        w.send(&msg).unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), msg);
    }

    /// Media offered to a client that does not read never blocks the
    /// caller: whole messages are dropped while it is behind, and the
    /// connection breaks once nothing has moved for the timeout.
    #[test]
    fn offered_media_never_waits_for_a_client_that_does_not_read() {
        let (ours, _theirs) = pair();
        let peer = ours.peer_addr().unwrap();
        let w = ConnectionWriter::new(ours, peer, Duration::from_millis(300)).unwrap();
        let frame = vec![7u8; 64 * 1024];
        let (mut sent, mut dropped) = (0, 0);
        let started = Instant::now();
        let err = loop {
            let before = Instant::now();
            match w.offer(&frame) {
                Ok(true) => sent += 1,
                Ok(false) => dropped += 1,
                Err(e) => break e,
            }
            assert!(
                before.elapsed() < Duration::from_millis(100),
                "an offer waited {:?}",
                before.elapsed()
            );
            assert!(started.elapsed() < Duration::from_secs(20), "never broke");
        };
        assert!(sent > 0 && dropped > 0, "sent {sent}, dropped {dropped}");
        assert!(matches!(err, WriteError::Stalled { .. }), "{err}");
        assert!(w.is_broken());
    }

    /// Replies and offered media reach a reading client as whole messages
    /// in the order they were accepted; a reply is never dropped.
    #[test]
    fn replies_and_media_arrive_whole_and_in_order() {
        let (ours, theirs) = pair();
        let peer = theirs.local_addr().unwrap();
        let w = std::sync::Arc::new(ConnectionWriter::new(ours, peer, WRITE_TIMEOUT).unwrap());
        // Message: kind byte, 4-byte length, then its own number repeated.
        fn message(kind: u8, number: u32, len: usize) -> Vec<u8> {
            let mut m = vec![kind];
            m.extend_from_slice(&(len as u32).to_be_bytes());
            m.extend(std::iter::repeat_n(number as u8, len));
            m
        }
        let media = {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut offered = Vec::new();
                for n in 0..400u32 {
                    if w.offer(&message(b'M', n, 20_000)).unwrap() {
                        offered.push(n);
                    }
                }
                offered
            })
        };
        let reader = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).unwrap();
            all
        });
        for n in 0..100u32 {
            w.send(&message(b'R', n, 300)).unwrap();
        }
        let offered = media.join().unwrap();
        // A reply goes out behind everything queued before it.
        w.send(&message(b'R', 100, 300)).unwrap();
        drop(w);
        let all = reader.join().unwrap();
        let (mut replies, mut frames) = (Vec::new(), Vec::new());
        let mut rest = &all[..];
        while !rest.is_empty() {
            let kind = rest[0];
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let body = &rest[5..5 + len];
            assert!(body.iter().all(|&b| b == body[0]), "a torn message");
            match kind {
                b'R' => replies.push(u32::from(body[0])),
                b'M' => frames.push(u32::from(body[0])),
                other => panic!("not a message start: {other}"),
            }
            rest = &rest[5 + len..];
        }
        assert_eq!(replies, (0..=100).collect::<Vec<_>>());
        let offered: Vec<u32> = offered.iter().map(|n| n % 256).collect();
        assert_eq!(frames, offered);
    }
}
