//! One RTSP connection: a thread that feeds the socket's bytes and the
//! clock to a [`ServerConnection`] and carries out what it returns (replies,
//! starting and stopping the session's media), with the [`ServerHost`] that
//! answers its questions from the media library.

use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tracing::{debug, info, warn};

use super::live::LiveSource;
use super::media::{MediaCommand, MediaSender, Source};
use super::{Observed, Shared};
use crate::media::Framing;
use crate::media::MjpegFile;
use crate::net::writer::ConnectionWriter;
use crate::protocol::auth::server::Verdict;
use crate::protocol::server::{
    Access, ConnectionConfig, LAB_QUIET, MediaInfo, MediaTransport, Payload, PlayError, PlayInfo,
    Prepared, ServerConnection, ServerHost, ServerLog, ServerOutput, SessionInfo,
};
use crate::protocol::tpc3::{self, Opening};

/// How often a live session looks whether its source failed.
const LIVE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The writing half of an RTSP connection, shared by replies and
/// interleaved media.
pub(super) type Writer = Arc<ConnectionWriter>;

/// One connection's view of the world: files under the root, its media
/// sender, its sockets.
struct Host<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    local_ip: IpAddr,
    writer: Writer,
    opened: Option<(String, Arc<MjpegFile>)>,
    /// The live source DESCRIBE or SETUP named, instead of a file.
    live: Option<LiveSource>,
    media: Option<MediaSender>,
}

impl Host<'_> {
    fn stop_media(&mut self) {
        if let Some(m) = self.media.take() {
            m.stop(self.shared);
        }
    }

    /// A file's frames for a session: whole JPEGs (the lab's payload), or
    /// frames RFC 2435 carries, re-encoded ahead where needed.
    fn file_source(&self, session: &SessionInfo, path: &str, file: Arc<MjpegFile>) -> Source {
        match session.payload {
            Payload::Lab => Source::Lab(file),
            // The worker (if the file needs one) starts encoding now, so
            // that PLAY finds the first frames ready.
            Payload::Rfc2435 => {
                let viewer = self.shared.library.ready_frames(path, &file).viewer(0);
                viewer.set_looping(self.shared.config.looping);
                Source::Rfc2435(viewer)
            }
        }
    }

    fn prepare_file_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        let Some(media) = &self.media else {
            return Err(PlayError::Other("no media set up".into()));
        };
        let fps = self.shared.config.fps as f64;
        let start_frame = match start {
            Some(s) => {
                let n = (s * fps).round() as usize;
                let present = self
                    .opened
                    .as_ref()
                    .map(|(_, f)| matches!(f.frame(n), Ok(Some(_))))
                    .unwrap_or(false);
                if !present {
                    return Err(PlayError::Range(format!("npt {s:.3} is past the end")));
                }
                Some(n)
            }
            None => None,
        };
        let (seq, rtptime, next) = media
            .prepare(start_frame)
            .ok_or_else(|| PlayError::Other("the media sender stopped".into()))?;
        let end = self
            .opened
            .as_ref()
            .and_then(|(_, f)| f.frame_count())
            .map(|n| n as f64 / fps);
        Ok(PlayInfo {
            seq,
            rtptime,
            start: next as f64 / fps,
            end,
            live: false,
        })
    }
}

impl ServerHost for Host<'_> {
    fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
        if let Some(source) = self.shared.live_source(path) {
            let spec = source.spec();
            let info = MediaInfo {
                width: spec.width,
                height: spec.height,
                fps: spec.fps,
                duration: None,
                live: true,
            };
            self.live = Some(source.clone());
            self.opened = None;
            return Ok(info);
        }
        self.live = None;
        let file = self.shared.library.open(path).map_err(|e| e.to_string())?;
        match file.frame(0) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("{path} has no playable frame")),
            Err(e) => return Err(e.to_string()),
        }
        let fps = self.shared.config.fps;
        // A lab-framed file is indexed by hopping from length to length,
        // which is quick; a raw one needs a full scan, so its length is
        // said only once known.
        let frames = match file.framing() {
            Framing::Lab { .. } => file.index_all().ok(),
            Framing::Raw => file.frame_count(),
        };
        let (width, height) = file.dimensions().unwrap_or((0, 0));
        self.opened = Some((path.to_string(), file));
        Ok(MediaInfo {
            width,
            height,
            fps,
            duration: frames.map(|n| n as f64 / fps as f64),
            live: false,
        })
    }

    fn admit(&mut self) -> Result<(), String> {
        match self.shared.over_session_cap() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    fn new_session_id(&mut self) -> u32 {
        rand::rng().random_range(100_000..=999_999)
    }

    fn setup(&mut self, session: &SessionInfo) -> Result<Prepared, String> {
        self.stop_media();
        let source = if let Some(live) = &self.live {
            Source::Live(live.join()?)
        } else {
            let Some((path, file)) = self.opened.clone() else {
                return Err("no file open".into());
            };
            self.file_source(session, &path, file)
        };
        let looping = self.shared.config.looping;
        let (media, prepared) = MediaSender::start(
            self.shared,
            session,
            source,
            (self.local_ip, self.peer),
            self.writer.clone(),
            looping,
        )
        .map_err(|e| format!("cannot open an RTP socket: {e}"))?;
        info!(peer = %self.peer, session = %session.id, dialect = session.dialect.name(),
            payload = ?session.payload,
            "SETUP {}: {}", session.path, describe_transport(&session.transport, self.peer));
        self.media = Some(media);
        Ok(prepared)
    }

    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        if self.live.is_some() {
            let Some(media) = &self.media else {
                return Err(PlayError::Other("no media set up".into()));
            };
            // Live: from the live edge, whatever start was asked.
            let (seq, rtptime, _) = media
                .prepare(None)
                .ok_or_else(|| PlayError::Other("the media sender stopped".into()))?;
            return Ok(PlayInfo {
                seq,
                rtptime,
                start: 0.0,
                end: None,
                live: true,
            });
        }
        self.prepare_file_play(start)
    }

    fn media_activity(&mut self) -> Option<Instant> {
        self.media.as_ref().and_then(|m| m.last_rtcp())
    }

    fn authorize(&mut self, method: &str, authorization: Option<&str>) -> Access {
        let Some(guard) = &self.shared.guard else {
            return Access::Granted;
        };
        // Nonces carry wall-clock seconds, so that they stay good across
        // connections (a client may answer on a new one).
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut guard = guard.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.check(method, authorization, now_secs) {
            Verdict::Allowed { user } => {
                guard.allowed(self.peer.ip());
                debug!(peer = %self.peer, user, "{method}: credentials accepted");
                Access::Granted
            }
            Verdict::Refused { challenges, why } => {
                let hold = guard.refused(self.peer.ip(), &why, Instant::now());
                if why.is_failure() {
                    info!(peer = %self.peer, "{method} refused: {why}; answering in {} ms", hold.as_millis());
                }
                Access::Refused {
                    challenges,
                    why: why.to_string(),
                    hold,
                }
            }
        }
    }
}

fn describe_transport(t: &MediaTransport, peer: SocketAddr) -> String {
    match t {
        MediaTransport::Udp {
            rtp_port,
            rtcp_port,
        } => match rtcp_port {
            Some(r) => format!("RTP to {}:{rtp_port}, RTCP to port {r}", peer.ip()),
            None => format!("RTP to {}:{rtp_port}", peer.ip()),
        },
        MediaTransport::Interleaved {
            rtp_channel,
            rtcp_channel,
        } => format!("RTP in the RTSP connection, channels {rtp_channel}-{rtcp_channel}"),
    }
}

pub(super) fn serve(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let local_ip = stream
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let writer = match stream
        .try_clone()
        .and_then(|s| ConnectionWriter::new(s, peer, shared.config.write_timeout))
    {
        Ok(w) => Arc::new(w),
        Err(e) => {
            warn!(%peer, "cannot serve the connection: {e}");
            return;
        }
    };
    let mut conn = ServerConnection::new(ConnectionConfig {
        request_timeout: shared.config.request_timeout,
        session_timeout: shared.config.session_timeout,
        server_ip: local_ip.to_string(),
    });
    let mut host = Host {
        shared,
        peer,
        local_ip,
        writer: writer.clone(),
        opened: None,
        live: None,
        media: None,
    };
    let mut buf = [0u8; 8192];
    let _ = stream.set_nodelay(true);
    // TPC-3 and RTSP clients share the port: the first bytes tell.
    let (first, opening) = read_opening(&mut stream, &mut buf);
    if opening == Opening::Tpc3 && shared.guard.is_some() {
        // The handshake has no place for a password: serving it would
        // open the server to anyone who speaks it.
        info!(%peer, "a TPC-3 client, refused: this server asks for a password and TPC-3 cannot give one");
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    if opening == Opening::Tpc3 {
        info!(%peer, "a TPC-3 client (seed 000's handshake, not RTSP)");
        super::tpc3::serve(stream, peer, local_ip, writer, first, shared);
        observe(shared, || Observed::Closed {
            peer,
            at: Instant::now(),
        });
        return;
    }
    // The bytes read to tell are the first input.
    let mut opening_input = Some(first);
    loop {
        let mut wait = conn
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        if host.live.is_some() && host.media.is_some() {
            // A live session looks at its source now and then: a camera
            // unplugged ends the session.
            wait = Some(wait.map_or(LIVE_CHECK, |w| w.min(LIVE_CHECK)));
        }
        let input = match (opening_input.take(), wait) {
            (Some(bytes), _) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            (None, Some(w)) if w.is_zero() => Err(io::ErrorKind::TimedOut.into()),
            (None, w) => {
                let _ = stream.set_read_timeout(w);
                stream.read(&mut buf)
            }
        };
        match input {
            Ok(0) => conn.handle_closed(),
            Ok(n) => {
                let now = Instant::now();
                observe(shared, || Observed::Received {
                    peer,
                    at: now,
                    bytes: buf[..n].to_vec(),
                });
                conn.handle_bytes(now, &buf[..n], &mut host)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.handle_timeout(Instant::now(), &mut host)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                debug!(%peer, "read failed: {e}");
                conn.handle_closed();
            }
        }
        let mut close = false;
        while let Some(out) = conn.poll_output() {
            match out {
                ServerOutput::Send(bytes) => {
                    observe(shared, || Observed::Sent {
                        peer,
                        at: Instant::now(),
                        bytes: bytes.clone(),
                    });
                    // The writer has said why, once, if it is the first
                    // to fail.
                    if writer.send(&bytes).is_err() {
                        conn.handle_closed();
                    }
                }
                ServerOutput::Play => {
                    if let Some(m) = &host.media {
                        m.send(MediaCommand::Play);
                    }
                }
                ServerOutput::Pause => {
                    if let Some(m) = &host.media {
                        m.pause();
                    }
                }
                ServerOutput::Teardown => host.stop_media(),
                ServerOutput::Close => close = true,
                // Only this connection waits: its thread is its own.
                ServerOutput::Hold(d) => std::thread::sleep(d),
                ServerOutput::Log(log) => log_event(peer, conn.session(), log),
            }
        }
        if close || conn.is_closed() {
            break;
        }
        if host.media.is_some()
            && let Some(why) = host.live.as_ref().and_then(LiveSource::failure)
        {
            // RTSP 1.0 has no way to tell a client its source is gone but
            // closing: its player says the server went away, and a new
            // SETUP tries the source again.
            warn!(%peer, session = ?conn.session().map(|s| s.id.clone()), "the live source stopped ({why}); ending the session and closing the connection");
            break;
        }
    }
    host.stop_media();
    let _ = stream.shutdown(Shutdown::Both);
    observe(shared, || Observed::Closed {
        peer,
        at: Instant::now(),
    });
}

/// Reads until the first bytes tell TPC-3 from RTSP (see
/// [`tpc3::sniff`]): at most a line and a moment's quiet, or the first
/// bytes of a connection that closes. Returns them (empty if the client
/// closed at once) with what they are.
fn read_opening(stream: &mut TcpStream, buf: &mut [u8]) -> (Vec<u8>, Opening) {
    let mut first = Vec::new();
    loop {
        // Nothing yet: wait as long as an RTSP connection would.
        let wait = (!first.is_empty()).then_some(LAB_QUIET);
        let _ = stream.set_read_timeout(wait);
        let room = (tpc3::MAX_REQUEST + 1)
            .saturating_sub(first.len())
            .clamp(1, buf.len());
        let quiet = match stream.read(&mut buf[..room]) {
            Ok(0) => return (first, Opening::Rtsp),
            Ok(n) => {
                first.extend_from_slice(&buf[..n]);
                false
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The RTSP path meets the error again and ends the connection.
            Err(_) => return (first, Opening::Rtsp),
        };
        if let Some(opening) = tpc3::sniff(&first, quiet) {
            return (first, opening);
        }
    }
}

/// Tell the watcher, if there is one (the copy is made only then).
pub(super) fn observe(shared: &Shared, what: impl FnOnce() -> Observed) {
    if let Some(tx) = &shared.config.observer {
        let _ = tx.send(what());
    }
}

fn log_event(peer: SocketAddr, session: Option<&SessionInfo>, log: ServerLog) {
    let session = session.map(|s| s.id.as_str()).unwrap_or("-");
    match log {
        ServerLog::Request {
            method,
            cseq,
            status,
            detail,
        } => {
            let cseq = cseq.map_or("-".to_string(), |c| c.to_string());
            match detail {
                // Caps say so once, in the server's log, not per request.
                Some(d) if status == 503 => {
                    debug!(%peer, session, "{method} CSeq={cseq} -> {status}: {d}")
                }
                // A first 401 is how a client learns to log in; a wrong
                // password was said where it was checked.
                Some(d) if status == 401 => {
                    debug!(%peer, session, "{method} CSeq={cseq} -> {status}: {d}")
                }
                Some(d) if status >= 400 => {
                    warn!(%peer, session, "{method} CSeq={cseq} -> {status}: {d}")
                }
                _ => debug!(%peer, session, "{method} CSeq={cseq} -> {status}"),
            }
        }
        ServerLog::StateChanged { session, from, to } => {
            info!(%peer, session = %session, "state {from} -> {to}")
        }
        ServerLog::Malformed(e) => warn!(%peer, session, "malformed request: {e}"),
        ServerLog::RequestTimeout => {
            warn!(%peer, session, "half-sent request timed out; closing the connection")
        }
        ServerLog::SessionExpired(id) => {
            info!(%peer, session = %id, "session timed out: no request or RTCP kept it alive; closing the connection")
        }
    }
}
