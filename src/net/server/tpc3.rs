//! One TPC-3 connection (seed 000): the handshake of
//! [`Tpc3Server`](crate::protocol::tpc3::Tpc3Server) on the connection's
//! thread, then the file sent as the lab dialect sends it (sequence from 1,
//! Unix-second timestamps, the session id as SSRC, one JPEG per datagram)
//! by the fan-out sender, to the client's address and the port it named,
//! until the end of the file or until the client closes the connection.

use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::connection::{Writer, observe};
use super::media::{MediaCommand, MediaSender, Source};
use super::{Observed, Shared};
use crate::protocol::rtsp::Dialect;
use crate::protocol::server::{LAB_QUIET, MediaTransport, Payload, SessionInfo};
use crate::protocol::tpc3::{Phase, Tpc3Host, Tpc3Output, Tpc3Server};

/// The files a TPC-3 client may ask for: those the RTSP clients get.
struct Files<'a> {
    shared: &'a Shared,
}

impl Tpc3Host for Files<'_> {
    fn has_file(&mut self, file: &str) -> bool {
        self.shared.live_source(file).is_some()
            || self
                .shared
                .library
                .open(file)
                .is_ok_and(|f| matches!(f.frame(0), Ok(Some(_))))
    }

    fn new_session_id(&mut self) -> u32 {
        use rand::Rng;
        rand::rng().random_range(100_000..=999_999)
    }
}

/// Serves the connection whose first bytes were `first`.
pub(super) fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    local_ip: IpAddr,
    writer: Writer,
    first: Vec<u8>,
    shared: &Shared,
) {
    observe(shared, || Observed::Received {
        peer,
        at: Instant::now(),
        bytes: first.clone(),
    });
    let mut server = Tpc3Server::new();
    let mut files = Files { shared };
    let mut media: Option<MediaSender> = None;
    let mut input = Some((first, false));
    let mut buf = [0u8; 4096];
    // A client that has its session id but never says Go is not waited
    // for longer than a half-sent RTSP request would be.
    let mut go_deadline: Option<Instant> = None;
    loop {
        match input.take() {
            Some((bytes, quiet)) => server.handle_bytes(&bytes, quiet, &mut files),
            None => server.handle_closed(),
        }
        let mut close = false;
        while let Some(out) = server.poll_output() {
            match out {
                Tpc3Output::Send(bytes) => {
                    observe(shared, || Observed::Sent {
                        peer,
                        at: Instant::now(),
                        bytes: bytes.clone(),
                    });
                    if writer.send(&bytes).is_err() {
                        server.handle_closed();
                    }
                }
                Tpc3Output::Start {
                    file,
                    port,
                    session,
                } => match start(shared, &file, port, session, (local_ip, peer), &writer) {
                    Ok(m) => {
                        m.send(MediaCommand::Play);
                        media = Some(m);
                    }
                    Err(why) => {
                        warn!(%peer, "TPC-3: cannot send {file}: {why}");
                        close = true;
                    }
                },
                Tpc3Output::Close => close = true,
                Tpc3Output::Log(line) => info!(%peer, "TPC-3: {line}"),
            }
        }
        if close {
            break;
        }
        if server.phase() == Phase::AwaitGo {
            let deadline =
                *go_deadline.get_or_insert_with(|| Instant::now() + shared.config.request_timeout);
            if Instant::now() >= deadline {
                info!(%peer, "TPC-3: no Go within {:?}; closing", shared.config.request_timeout);
                break;
            }
        }
        // While a message is partly in, a moment's quiet ends it (clients
        // send no newline); otherwise wait for the client's next move.
        let wait = match server.phase() {
            Phase::Request | Phase::AwaitGo => Some(LAB_QUIET.max(Duration::from_millis(1))),
            _ => None,
        };
        let _ = stream.set_read_timeout(wait);
        input = match stream.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                observe(shared, || Observed::Received {
                    peer,
                    at: Instant::now(),
                    bytes: buf[..n].to_vec(),
                });
                Some((buf[..n].to_vec(), false))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Some((Vec::new(), true))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Some((Vec::new(), false)),
            Err(_) => None,
        };
    }
    if let Some(m) = media {
        m.stop(shared);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// The session's media: the lab's payload to the client's address and
/// `port`, never looping (the assignment's stream ends with the file).
fn start(
    shared: &Shared,
    file: &str,
    port: u16,
    session: u32,
    addrs: (IpAddr, SocketAddr),
    writer: &Writer,
) -> Result<MediaSender, String> {
    if let Some(why) = shared.over_session_cap() {
        return Err(why);
    }
    // A live source by its name: on until the client closes.
    let source = match shared.live_source(file) {
        Some(live) => Source::Live(live.join()?),
        None => Source::Lab(shared.library.open(file).map_err(|e| e.to_string())?),
    };
    let info = SessionInfo {
        id: session.to_string(),
        path: file.to_string(),
        // RTP goes only to the address the request came from.
        transport: MediaTransport::Udp {
            rtp_port: port,
            rtcp_port: None,
        },
        payload: Payload::Lab,
        dialect: Dialect::Lab,
        setup_url: String::new(),
    };
    let (media, _) = MediaSender::start(shared, &info, source, addrs, writer.clone(), false)
        .map_err(|e| format!("cannot open an RTP socket: {e}"))?;
    Ok(media)
}
