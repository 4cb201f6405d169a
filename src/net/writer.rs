//! The writing half of one RTSP connection, shared by the replies and the
//! media sent interleaved in it (RFC 2326 section 10.12), so that the two
//! never mix within a message.
//!
//! A client that stops reading fills its receive window and then our send
//! buffer; from then on every write blocks. Unbounded, that would hold the
//! media thread (and every reply waiting for the lock) forever. Each message
//! here gets [`ConnectionWriter::timeout`] to go out; a write that takes
//! longer, or fails, breaks the connection for good: the socket is shut
//! down, which wakes the connection's reader, which ends the session.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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
    stream: Mutex<TcpStream>,
    peer: SocketAddr,
    timeout: Duration,
    broken: AtomicBool,
}

impl ConnectionWriter {
    /// Takes a clone of the connection's socket; `timeout` bounds each
    /// message (see [`WRITE_TIMEOUT`]).
    pub fn new(stream: TcpStream, peer: SocketAddr, timeout: Duration) -> io::Result<Self> {
        // The kernel's own bound makes a blocked send() return; the loop in
        // send() bounds the whole message (a peer reading a byte now and
        // then would otherwise keep it going for ever).
        stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        Ok(ConnectionWriter {
            stream: Mutex::new(stream),
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

    /// Sends one whole message, or breaks the connection.
    pub fn send(&self, bytes: &[u8]) -> Result<(), WriteError> {
        if self.is_broken() {
            return Err(WriteError::Closed(self.peer));
        }
        // A panic elsewhere while holding the lock leaves at worst a torn
        // message, which the broken flag below would also have led to.
        let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_broken() {
            return Err(WriteError::Closed(self.peer));
        }
        let started = Instant::now();
        let mut rest = bytes;
        while !rest.is_empty() {
            let error = match stream.write(rest) {
                Ok(0) => WriteError::Failed {
                    peer: self.peer,
                    source: io::ErrorKind::WriteZero.into(),
                },
                Ok(n) => {
                    rest = &rest[n..];
                    let waited = started.elapsed();
                    if rest.is_empty() || waited < self.timeout {
                        continue;
                    }
                    WriteError::Stalled {
                        peer: self.peer,
                        waited,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    WriteError::Stalled {
                        peer: self.peer,
                        waited: started.elapsed(),
                    }
                }
                Err(source) => WriteError::Failed {
                    peer: self.peer,
                    source,
                },
            };
            return Err(self.break_connection(&stream, error));
        }
        Ok(())
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
}
