//! Answering connections beyond the server's caps: one thread takes each
//! refused connection in turn, reads its first request for a moment (to
//! answer with its CSeq), replies `503 Service Unavailable` with the reason
//! in a text body, and closes it. Refusing costs no thread per connection,
//! and a client that sends nothing is given up after [`REFUSE_WAIT`].

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::protocol::rtsp::{Decoder, Dialect, Message, Response};

/// How long a refused connection has to send its request.
pub const REFUSE_WAIT: Duration = Duration::from_millis(500);

pub(super) fn refuse_loop(queue: Receiver<(TcpStream, String)>) {
    for (stream, why) in queue {
        refuse(stream, &why);
    }
}

fn refuse(mut stream: TcpStream, why: &str) {
    let _ = stream.set_read_timeout(Some(REFUSE_WAIT));
    let _ = stream.set_write_timeout(Some(REFUSE_WAIT));
    let mut decoder = Decoder::new();
    let mut buf = [0u8; 2048];
    // The request, if it comes in time: its CSeq and dialect.
    let (cseq, dialect) = match stream.read(&mut buf) {
        Ok(n) if n > 0 => {
            decoder.push(&buf[..n]);
            match decoder.poll(true) {
                Some(Ok(Message::Request(r))) => (r.headers.cseq(), r.dialect),
                _ => (None, Dialect::Standard),
            }
        }
        _ => (None, Dialect::Standard),
    };
    let mut r = Response::new(503, dialect);
    if let Some(c) = cseq {
        r.headers.push("CSeq", c.to_string());
    }
    r.headers.push("Retry-After", "5");
    r.headers.push("Content-Type", "text/plain");
    r.body = format!("{why}\n").into_bytes();
    let _ = stream.write_all(&r.to_bytes());
    // Half-close and let the client read the reply before the socket goes
    // (closing with unread bytes would reset it).
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(REFUSE_WAIT / 5));
    let _ = stream.read(&mut buf);
}
