//! Unit tests of the client connection, sans I/O: a recorder stands for
//! the sockets, replies are written by hand, and time is passed in.

use super::*;
use crate::protocol::server::LAB_QUIET;
use crate::protocol::timeline::Anchor;
use std::time::Duration;

/// Records what the connection asked of its host; replies come from
/// the test.
#[derive(Default)]
struct Recorder {
    connects: usize,
    disconnects: usize,
    sent: Vec<String>,
    media: Vec<MediaRoute>,
    closed_media: usize,
    info: Option<StreamInfo>,
    events: Vec<Event>,
    refuse_connect: bool,
}

impl ClientHost for Recorder {
    fn connect(&mut self) -> Result<(), ClientError> {
        self.connects += 1;
        if self.refuse_connect {
            return Err(ClientError::Connect {
                addr: "x".into(),
                reason: "refused".into(),
            });
        }
        Ok(())
    }
    fn disconnect(&mut self) {
        self.disconnects += 1;
    }
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent.push(String::from_utf8_lossy(bytes).into_owned());
        Ok(())
    }
    fn open_media(&mut self, route: MediaRoute) -> Result<u16, ClientError> {
        self.media.push(route);
        Ok(match route {
            MediaRoute::Udp { .. } => 5000,
            MediaRoute::Interleaved => 0,
        })
    }
    fn close_media(&mut self) {
        self.closed_media += 1;
    }
    fn stream_info(&mut self, info: StreamInfo) {
        self.info = Some(info);
    }
    fn interleaved(&mut self, _channel: u8, _payload: &[u8]) {}
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn random(&mut self) -> u32 {
        0x1234_5678
    }
}

impl Recorder {
    fn last_sent(&self) -> &str {
        self.sent.last().map_or("", String::as_str)
    }
    fn last_method(&self) -> &str {
        self.last_sent().split(' ').next().unwrap_or("")
    }
    fn cseq(&self) -> u32 {
        self.last_sent()
            .lines()
            .find_map(|l| l.strip_prefix("CSeq: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
    fn states(&self) -> Vec<State> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::State { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }
    fn errors(&self) -> Vec<&ClientError> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Error(e) => Some(e),
                _ => None,
            })
            .collect()
    }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n";

fn config() -> ClientConfig {
    ClientConfig {
        file: "movie.Mjpeg".into(),
        ..ClientConfig::default()
    }
}

/// Answer the request in flight with 200 and these extra lines.
fn ok(c: &mut ClientConnection, h: &mut Recorder, now: Instant, extra: &str, body: &str) {
    let cseq = h.cseq();
    let body_headers = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let reply = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}{body_headers}\r\n{body}");
    c.handle_bytes(now, reply.as_bytes(), h);
}

/// OPTIONS, DESCRIBE, SETUP, PLAY, all answered.
fn playing(config: ClientConfig) -> (ClientConnection, Recorder, Instant) {
    let (mut c, mut h, t) = ready(config, SDP);
    c.command(t, ClientCommand::Play, &mut h);
    ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
    assert_eq!(c.state(), State::Playing);
    (c, h, t)
}

/// OPTIONS, DESCRIBE (answered with `sdp`), SETUP, all answered.
fn ready(config: ClientConfig, sdp: &str) -> (ClientConnection, Recorder, Instant) {
    let t = Instant::now();
    let mut c = ClientConnection::new(config);
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    assert_eq!(h.last_method(), "OPTIONS");
    ok(
        &mut c,
        &mut h,
        t,
        "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER\r\n",
        "",
    );
    assert_eq!(h.last_method(), "DESCRIBE");
    ok(
        &mut c,
        &mut h,
        t,
        "Content-Base: rtsp://127.0.0.1:8554/movie.Mjpeg/\r\n",
        sdp,
    );
    assert_eq!(h.last_method(), "SETUP");
    assert!(
        h.last_sent()
            .contains("rtsp://127.0.0.1:8554/movie.Mjpeg/track1")
    );
    ok(
        &mut c,
        &mut h,
        t,
        "Session: 12345678;timeout=60\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\r\n",
        "",
    );
    assert_eq!(c.state(), State::Ready);
    (c, h, t)
}

#[test]
fn standard_setup_is_options_describe_setup() {
    let (_c, h, _) = playing(config());
    assert_eq!(h.media, vec![MediaRoute::Udp { pair: true }]);
    let info = h.info.unwrap();
    assert_eq!(info.server_rtcp_port, Some(6001));
    assert_eq!(h.states(), vec![State::Ready, State::Playing]);
    assert!(h.sent[3].starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg/ RTSP/1.0"));
}

#[test]
fn keep_alive_at_half_the_timeout_with_get_parameter() {
    let (mut c, mut h, t) = playing(config());
    c.media_seen(Some(t));
    let due = c.poll_timeout().unwrap();
    assert!(due <= t + ENDED_AFTER);
    let sent = h.sent.len();
    c.media_seen(Some(t + Duration::from_secs(29)));
    c.handle_timeout(t + Duration::from_secs(29), &mut h);
    assert_eq!(h.sent.len(), sent, "too early");
    c.media_seen(Some(t + Duration::from_secs(30)));
    c.handle_timeout(t + Duration::from_secs(30), &mut h);
    assert_eq!(h.last_method(), "GET_PARAMETER");
}

#[test]
fn auto_falls_back_to_lab_when_options_is_unanswered() {
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    assert_eq!(c.poll_timeout(), Some(t + AUTO_OPTIONS_WAIT));
    c.handle_timeout(t + AUTO_OPTIONS_WAIT, &mut h);
    assert_eq!(h.connects, 2, "a fresh connection for the lab's server");
    assert_eq!(
        h.last_sent(),
        "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5000"
    );
    assert_eq!(c.dialect(), Some(Dialect::Lab));
}

#[test]
fn digest_401_is_answered_once_and_the_password_never_shown() {
    let t = Instant::now();
    let mut c = ClientConnection::new(ClientConfig {
        user: Some("alice".into()),
        password: Some("s3cret".into()),
        dialect: DialectChoice::Standard,
        ..config()
    });
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    let challenge = format!(
        "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n1\"\r\n\r\n",
        h.cseq()
    );
    c.handle_bytes(t, challenge.as_bytes(), &mut h);
    assert_eq!(h.last_method(), "OPTIONS");
    assert!(
        h.last_sent()
            .contains("Authorization: Digest username=\"alice\"")
    );
    let again = format!(
        "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n2\"\r\n\r\n",
        h.cseq()
    );
    c.handle_bytes(t, again.as_bytes(), &mut h);
    assert_eq!(
        h.errors(),
        vec![&ClientError::Auth {
            had_credentials: true
        }]
    );
    for e in &h.events {
        if let Event::Wire { bytes, .. } = e {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("s3cret") && !text.contains("response="),
                "{text}"
            );
        }
    }
}

#[test]
fn udp_that_brings_nothing_switches_to_tcp() {
    let (mut c, mut h, t) = playing(config());
    assert_eq!(c.poll_timeout(), Some(t + UDP_FALLBACK_AFTER));
    c.handle_timeout(t + Duration::from_secs(2), &mut h);
    assert_eq!(h.last_method(), "PLAY", "too early to switch");
    let at = t + UDP_FALLBACK_AFTER;
    c.handle_timeout(at, &mut h);
    assert!(
        matches!(h.events.iter().rev().nth(1), Some(Event::Notice(n)) if n.contains("switching to TCP"))
    );
    assert_eq!(h.last_method(), "TEARDOWN");
    ok(&mut c, &mut h, at, "", "");
    assert_eq!(h.last_method(), "SETUP");
    assert!(
        h.last_sent()
            .contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
    );
    assert!(!h.last_sent().contains("Session:"), "a new session");
    assert_eq!(
        h.media,
        vec![MediaRoute::Udp { pair: true }, MediaRoute::Interleaved]
    );
    ok(
        &mut c,
        &mut h,
        at,
        "Session: 99999999;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        "",
    );
    assert_eq!(h.last_method(), "PLAY");
    assert!(h.last_sent().contains("Session: 99999999"));
    ok(&mut c, &mut h, at, "", "");
    assert_eq!(c.state(), State::Playing);
    assert_eq!(c.media(), Some((MediaRoute::Interleaved, 0)));
    assert_eq!(
        h.states(),
        vec![State::Ready, State::Playing, State::Playing],
        "the owner sees one PLAYING session, not INIT in between"
    );
    assert_eq!(c.session_id(), Some("99999999"));
    // Only once: TCP that brings nothing is an error, not a loop.
    c.handle_timeout(at + NO_MEDIA_AFTER, &mut h);
    assert!(matches!(
        h.errors().last(),
        Some(ClientError::NoMedia { .. })
    ));
}

#[test]
fn udp_that_brings_packets_stays() {
    let (mut c, mut h, t) = playing(config());
    c.media_seen(Some(t + Duration::from_millis(40)));
    c.handle_timeout(t + UDP_FALLBACK_AFTER, &mut h);
    assert_eq!(h.last_method(), "PLAY");
    assert!(h.events.iter().any(|e| matches!(e, Event::StreamEnded)));
}

#[test]
fn tcp_asked_for_and_lab_never_switch() {
    let (mut c, mut h, t) = playing(ClientConfig {
        transport: TransportChoice::Tcp,
        ..config()
    });
    assert_eq!(h.media, vec![MediaRoute::Interleaved]);
    c.handle_timeout(t + NO_MEDIA_AFTER, &mut h);
    assert_eq!(h.last_method(), "PLAY");
    assert!(matches!(
        h.errors().last(),
        Some(ClientError::NoMedia { port: 0, .. })
    ));
}

#[test]
fn seek_sends_range() {
    let (mut c, mut h, t) = playing(config());
    c.command(t, ClientCommand::PlayFrom { millis: 8_040 }, &mut h);
    assert_eq!(h.last_method(), "PLAY");
    assert!(h.last_sent().contains("Range: npt=8.040-\r\n"));
}

#[test]
fn teardown_closes_media_and_returns_to_init() {
    let (mut c, mut h, t) = playing(config());
    c.command(t, ClientCommand::Teardown, &mut h);
    ok(&mut c, &mut h, t, "", "");
    assert_eq!(c.state(), State::Init);
    assert_eq!(h.closed_media, 1);
    assert!(!c.has_session());
    assert_eq!(c.poll_timeout(), None, "nothing left to time");
}

#[test]
fn a_refused_connection_is_an_error_not_a_session() {
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder {
        refuse_connect: true,
        ..Recorder::default()
    };
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    assert_eq!(h.errors().len(), 2);
    assert!(h.sent.is_empty() && h.media.is_empty());
    assert!(!c.has_session());
}

#[test]
fn not_jpeg_is_refused_by_name_and_media_closed() {
    let t = Instant::now();
    let mut c = ClientConnection::new(ClientConfig {
        dialect: DialectChoice::Standard,
        ..config()
    });
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    ok(&mut c, &mut h, t, "", "");
    let h264 = "v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    ok(&mut c, &mut h, t, "", h264);
    assert!(
        matches!(h.errors().last(), Some(ClientError::NotJpeg { codec }) if codec.starts_with("H264"))
    );
    assert_eq!(h.closed_media, 1);
    assert!(!c.has_session());
}

/// A Digest challenge answering the request in flight.
fn challenge(c: &mut ClientConnection, h: &mut Recorder, now: Instant, nonce: &str) {
    let reply = format!(
        "RTSP/1.0 401 Unauthorized\r\nCSeq: {}\r\nSession: 12345678\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"{nonce}\"\r\n\r\n",
        h.cseq()
    );
    c.handle_bytes(now, reply.as_bytes(), h);
}

fn credentials(password: &str) -> Credentials {
    Credentials {
        user: "alice".into(),
        password: password.into(),
    }
}

/// Nothing that reaches the owner holds the password or the digest.
fn assert_hidden(h: &Recorder, secrets: &[&str]) {
    for e in &h.events {
        let text = match e {
            Event::Wire { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            other => format!("{other:?}"),
        };
        for secret in secrets.iter().chain(&["response="]) {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

/// Some cameras let anyone SETUP and ask for credentials at PLAY (or
/// when a nonce expires). The engine says so, waits, and sends the
/// refused PLAY again with the credentials it is given: same
/// connection, same session, the next CSeq.
#[test]
fn a_401_in_the_session_waits_for_credentials_and_sends_the_request_again() {
    let (mut c, mut h, t) = ready(config(), SDP);
    c.command(t, ClientCommand::PlayFrom { millis: 2_000 }, &mut h);
    let refused_cseq = h.cseq();
    challenge(&mut c, &mut h, t, "n1");
    assert_eq!(
        h.errors(),
        vec![&ClientError::Auth {
            had_credentials: false
        }]
    );
    assert_eq!(c.state(), State::Ready, "the session stays");
    assert_eq!(c.session_id(), Some("12345678"));
    let sent = h.sent.len();
    c.handle_timeout(t + Duration::from_secs(1), &mut h);
    assert_eq!(h.sent.len(), sent, "nothing goes until credentials come");

    c.credentials(t, credentials("s3cret"), &mut h);
    assert_eq!(h.sent.len(), sent + 1);
    let again = h.last_sent().to_string();
    assert!(again.starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg/ RTSP/1.0\r\n"));
    assert!(again.contains("Session: 12345678\r\n"), "{again}");
    assert!(again.contains("Range: npt=2.000-\r\n"), "{again}");
    assert!(
        again.contains("Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n1\""),
        "{again}"
    );
    assert_eq!(h.cseq(), refused_cseq + 1);
    assert_eq!((h.connects, h.disconnects), (1, 0), "the same connection");
    ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
    assert_eq!(c.state(), State::Playing);
    assert_eq!(c.session_id(), Some("12345678"));
    // Later requests carry the credentials without being asked.
    c.command(t, ClientCommand::Pause, &mut h);
    assert!(
        h.last_sent()
            .contains("Authorization: Digest username=\"alice\"")
    );
    assert_hidden(&h, &["s3cret"]);
    assert!(!format!("{:?}", credentials("s3cret")).contains("s3cret"));
}

#[test]
fn wrong_credentials_in_the_session_say_so_and_others_may_follow() {
    let (mut c, mut h, t) = ready(config(), SDP);
    c.command(t, ClientCommand::Play, &mut h);
    challenge(&mut c, &mut h, t, "n1");
    c.credentials(t, credentials("n0t-it"), &mut h);
    assert_eq!(h.last_method(), "PLAY");
    challenge(&mut c, &mut h, t, "n2");
    assert_eq!(
        h.errors().last(),
        Some(&&ClientError::Auth {
            had_credentials: true
        })
    );
    let message = h.errors().last().unwrap().to_string();
    assert!(
        message.starts_with("wrong user name or password"),
        "{message}"
    );
    assert_eq!(h.last_method(), "PLAY", "not sent a third time by itself");
    let sent = h.sent.len();
    c.credentials(t, credentials("s3cret"), &mut h);
    assert_eq!(h.sent.len(), sent + 1);
    assert!(
        h.last_sent().contains("nonce=\"n2\""),
        "the newest challenge"
    );
    ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
    assert_eq!(c.state(), State::Playing);
    assert_hidden(&h, &["s3cret", "n0t-it"]);
}

#[test]
fn credentials_with_nothing_refused_are_kept_for_the_next_challenge() {
    let (mut c, mut h, t) = ready(config(), SDP);
    let sent = h.sent.len();
    c.credentials(t, credentials("s3cret"), &mut h);
    assert_eq!(h.sent.len(), sent, "nothing to send again");
    c.command(t, ClientCommand::Play, &mut h);
    challenge(&mut c, &mut h, t, "n1");
    assert!(h.errors().is_empty(), "answered with them at once");
    assert!(
        h.last_sent()
            .contains("Authorization: Digest username=\"alice\"")
    );
}

#[test]
fn a_refused_keep_alive_does_not_replace_a_refused_play() {
    let (mut c, mut h, t) = ready(config(), SDP);
    c.command(t, ClientCommand::Play, &mut h);
    challenge(&mut c, &mut h, t, "n1");
    // The user takes a while to type: the keep-alive is refused too.
    let later = t + Duration::from_secs(30);
    c.handle_timeout(later, &mut h);
    assert_eq!(h.last_method(), "GET_PARAMETER");
    challenge(&mut c, &mut h, later, "n2");
    c.credentials(later, credentials("s3cret"), &mut h);
    assert_eq!(h.last_method(), "PLAY");
}

#[test]
fn a_new_command_replaces_the_refused_request() {
    let (mut c, mut h, t) = ready(config(), SDP);
    c.command(t, ClientCommand::Play, &mut h);
    challenge(&mut c, &mut h, t, "n1");
    c.command(t, ClientCommand::Teardown, &mut h);
    ok(&mut c, &mut h, t, "", "");
    assert_eq!(c.state(), State::Init);
    let sent = h.sent.len();
    c.credentials(t, credentials("s3cret"), &mut h);
    assert_eq!(h.sent.len(), sent, "the PLAY is not sent after TEARDOWN");
}

#[test]
fn auth_message_fits_the_window_and_the_command_line() {
    let ask = ClientError::Auth {
        had_credentials: false,
    }
    .to_string();
    assert!(ask.contains("rtsp://user:password@host/"), "{ask}");
    assert!(ask.contains("where the window asks"), "{ask}");
    assert!(!ask.contains("put them in the URL"), "{ask}");
}

fn timelines(h: &Recorder) -> Vec<Timeline> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::Timeline(t) => Some(*t),
            _ => None,
        })
        .collect()
}

/// Our server's description of a 10 s file.
const SDP_10S: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=range:npt=0-10.000\r\na=control:*\r\nm=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\na=framerate:20\r\na=control:track1\r\n";

#[test]
fn describe_gives_the_length_and_play_replies_the_anchor() {
    let (mut c, mut h, t) = ready(config(), SDP_10S);
    assert_eq!(c.timeline().length_ms, Some(10_000));
    assert_eq!(c.timeline().frame_ms, Some(50));
    assert_eq!(c.timeline().last_seek_ms(), 9_950, "the last frame");
    assert!(c.timeline().seekable());
    assert_eq!(c.timeline().anchor, None);
    c.command(t, ClientCommand::Play, &mut h);
    ok(
        &mut c,
        &mut h,
        t,
        "Session: 12345678\r\nRange: npt=0.000-10.000\r\nRTP-Info: url=rtsp://127.0.0.1:8554/movie.Mjpeg/track1;seq=100;rtptime=9000\r\n",
        "",
    );
    let anchor = Anchor {
        start_ms: 0,
        rtptime: Some(9000),
    };
    assert_eq!(c.timeline().anchor, Some(anchor));
    assert_eq!(c.timeline().position_ms(9000 + 45_000), Some(500));

    // A seek: the reply says where the server really starts.
    c.command(t, ClientCommand::PlayFrom { millis: 7_520 }, &mut h);
    ok(
        &mut c,
        &mut h,
        t,
        "Session: 12345678\r\nRange: npt=7.500-10.000\r\nRTP-Info: url=rtsp://127.0.0.1:8554/movie.Mjpeg/track1;seq=180;rtptime=729000\r\n",
        "",
    );
    let seeked = c.timeline();
    assert_eq!(
        seeked.anchor,
        Some(Anchor {
            start_ms: 7_500,
            rtptime: Some(729_000)
        })
    );
    assert_eq!(seeked.position_ms(729_000 + 9_000), Some(7_600));
    // What the owner heard: reset at SETUP, length, then each PLAY.
    let told = timelines(&h);
    assert_eq!(told.len(), 4, "{told:?}");
    assert_eq!(told[0], Timeline::default());
    assert_eq!(told[3], seeked);
}

#[test]
fn a_play_reply_without_range_keeps_the_asked_start() {
    let (mut c, mut h, t) = ready(config(), SDP_10S);
    c.command(t, ClientCommand::PlayFrom { millis: 3_000 }, &mut h);
    ok(&mut c, &mut h, t, "Session: 12345678\r\n", "");
    assert_eq!(
        c.timeline().anchor,
        Some(Anchor {
            start_ms: 3_000,
            rtptime: None
        })
    );
    // A resume the server says nothing about keeps the mapping.
    c.command(t, ClientCommand::Pause, &mut h);
    ok(&mut c, &mut h, t, "", "");
    c.command(t, ClientCommand::Play, &mut h);
    ok(&mut c, &mut h, t, "", "");
    assert_eq!(c.timeline().anchor.map(|a| a.start_ms), Some(3_000));
}

#[test]
fn live_and_lab_streams_have_no_length() {
    // gst-rtsp-server and cameras describe live sources as `npt=0-`.
    let live = SDP_10S.replace("npt=0-10.000", "npt=0-");
    let (c, _h, _) = ready(config(), &live);
    assert_eq!(c.timeline().length_ms, None);
    assert!(!c.timeline().seekable());
    let (c, _h, _) = ready(config(), SDP);
    assert!(!c.timeline().seekable(), "no a=range at all");

    let t = Instant::now();
    let mut c = ClientConnection::new(ClientConfig {
        dialect: DialectChoice::Lab,
        ..config()
    });
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    c.handle_bytes(t, b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456", &mut h);
    c.handle_timeout(t + Duration::from_millis(200), &mut h);
    assert_eq!(c.state(), State::Ready);
    assert_eq!(timelines(&h), vec![Timeline::default()]);
}

/// Reply to the request in flight with `status`.
fn reply(c: &mut ClientConnection, h: &mut Recorder, now: Instant, status: &str) {
    let cseq = h.cseq();
    let reply = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n\r\n");
    c.handle_bytes(now, reply.as_bytes(), h);
}

#[test]
fn play_sent_anyway_in_init_is_refused_and_init_stays() {
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Force(Forced::Play), &mut h);
    assert!(
        h.last_sent()
            .starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n"),
        "{}",
        h.last_sent()
    );
    assert!(!h.last_sent().contains("Session:"), "no session to name");
    assert!(h.media.is_empty(), "no RTP port opened for it");
    reply(&mut c, &mut h, t, "455 Method Not Valid in This State");
    assert_eq!(c.state(), State::Init);
    assert!(!c.has_session(), "the scratch session is gone");
    assert!(h.states().is_empty(), "the state never moved");
    let Some(ClientError::NotValidHere {
        method,
        state,
        code,
        why,
        ..
    }) = h.errors().last().cloned()
    else {
        panic!("{:?}", h.errors())
    };
    assert_eq!((method.as_str(), *state, *code), ("PLAY", State::Init, 455));
    assert!(why.contains("SETUP"), "{why}");
    let shown = h.errors().last().unwrap().to_string();
    assert!(shown.contains("stays in INIT"), "{shown}");

    // The client goes on as if nothing happened.
    c.command(t, ClientCommand::Setup, &mut h);
    assert_eq!(h.last_method(), "OPTIONS");
}

#[test]
fn a_request_the_state_allows_is_the_plain_one() {
    let (mut c, mut h, t) = ready(config(), SDP);
    c.command(t, ClientCommand::Force(Forced::Play), &mut h);
    assert_eq!(h.last_method(), "PLAY");
    ok(&mut c, &mut h, t, "", "");
    assert_eq!(c.state(), State::Playing);
    assert!(h.events.contains(&Event::PlaySent));
}

#[test]
fn silence_from_a_lab_server_is_explained_and_the_state_stays() {
    let t = Instant::now();
    let mut c = ClientConnection::new(ClientConfig {
        dialect: DialectChoice::Lab,
        ..config()
    });
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    ok(&mut c, &mut h, t, "Session: 123456\r\n", "");
    assert_eq!(c.state(), State::Ready);
    // The lab's client never sends PAUSE in READY: its server ignores it.
    c.command(t, ClientCommand::Force(Forced::Pause), &mut h);
    assert_eq!(
        h.last_sent(),
        "PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456"
    );
    assert_eq!(c.poll_timeout(), Some(t + REPLY_TIMEOUT));
    c.handle_timeout(t + REPLY_TIMEOUT, &mut h);
    let last = h.errors().last().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        matches!(
            h.errors().last(),
            Some(ClientError::Ignored {
                state: State::Ready,
                ..
            })
        ),
        "{last}"
    );
    assert!(last.contains("the lab's server ignores"), "{last}");
    assert!(last.contains("455"), "{last}");
    assert_eq!(c.state(), State::Ready);
    assert_eq!(c.session_id(), Some("123456"));
    // PLAY goes as usual after it.
    c.command(t, ClientCommand::Play, &mut h);
    assert_eq!(
        h.last_sent(),
        "PLAY movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456"
    );
}

#[test]
fn a_server_that_accepts_a_request_sent_anyway_does_not_move_the_state() {
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Force(Forced::Teardown), &mut h);
    assert_eq!(h.last_method(), "TEARDOWN");
    reply(&mut c, &mut h, t, "200 OK");
    assert_eq!(c.state(), State::Init);
    assert!(!c.has_session());
    assert!(h.errors().is_empty(), "{:?}", h.errors());
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::Notice(n) if n.contains("accepted TEARDOWN in INIT"))),
        "{:?}",
        h.events
    );
}

#[test]
fn teardown_after_a_request_sent_anyway_is_not_taken_for_its_reply() {
    let (mut c, mut h, t) = playing(config());
    c.command(t, ClientCommand::Force(Forced::Setup), &mut h);
    assert_eq!(h.last_method(), "SETUP");
    // No reply; the user leaves.
    c.command(t, ClientCommand::Teardown, &mut h);
    ok(&mut c, &mut h, t, "", "");
    assert_eq!(c.state(), State::Init);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::Notice(n) if n.contains("accepted"))),
        "{:?}",
        h.events
    );
}

#[test]
fn half_a_line_left_after_a_quiet_read_sets_no_deadline_in_the_past() {
    // Found by fuzzing (client_connection): bytes the quiet read cannot
    // make a message of kept the deadline at last_bytes + LAB_QUIET, and
    // the engine, which sleeps until poll_timeout, spun on a core.
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    c.handle_bytes(t, b"RTSP/1.0", &mut h);
    let quiet = c.poll_timeout().expect("the quiet read is due");
    assert!(quiet <= t + LAB_QUIET);
    c.handle_timeout(quiet, &mut h);
    assert!(
        c.poll_timeout().is_some_and(|d| d > quiet),
        "{:?}",
        c.poll_timeout()
    );
    // More bytes: read again once quiet, and the reply is taken.
    let later = quiet + Duration::from_millis(1);
    c.handle_bytes(later, b" 200 OK\r\nCSeq: 1\r\n\r\n", &mut h);
    assert_eq!(h.last_method(), "DESCRIBE");
}

#[test]
fn no_media_deadline_in_the_past_while_a_request_is_out() {
    // Found by fuzzing (client_connection): poll_timeout named the UDP
    // fallback deadline while check_media waited for a reply, so the
    // engine spun until the reply or its timeout.
    let (mut c, mut h, t) = playing(config());
    c.command(t, ClientCommand::Play, &mut h);
    assert_eq!(c.pending(), Some(&Method::Play));
    let now = t + UDP_FALLBACK_AFTER + Duration::from_secs(1);
    c.handle_timeout(now, &mut h);
    assert!(
        c.poll_timeout().is_some_and(|d| d > now),
        "{:?}",
        c.poll_timeout()
    );
    // The reply comes: the fallback is due, and taken.
    ok(&mut c, &mut h, now, "Session: 12345678\r\n", "");
    assert!(
        c.poll_timeout()
            .is_some_and(|d| d <= now + UDP_FALLBACK_AFTER)
    );
}

#[test]
fn an_empty_content_base_or_a_control_with_spaces_makes_no_broken_request() {
    // Found by fuzzing (client_connection): `Content-Base:` with nothing
    // after it made `SETUP  RTSP/1.0`, which no server can read.
    let t = Instant::now();
    let mut c = ClientConnection::new(config());
    let mut h = Recorder::default();
    c.start(&mut h);
    c.command(t, ClientCommand::Setup, &mut h);
    ok(&mut c, &mut h, t, "", "");
    let sdp = "v=0\r\ns=x\r\nt=0 0\r\na=control:all of it\r\nm=video 0 RTP/AVP 26\r\na=control:track 1\r\n";
    ok(&mut c, &mut h, t, "Content-Base: \r\n", sdp);
    assert_eq!(h.last_method(), "SETUP");
    let line = h.last_sent().lines().next().unwrap_or("");
    assert_eq!(line, "SETUP rtsp://127.0.0.1:8554/movie.Mjpeg RTSP/1.0");
    ok(&mut c, &mut h, t, "Session: 1\r\n", "");
    c.command(t, ClientCommand::Play, &mut h);
    assert!(
        h.last_sent()
            .starts_with("PLAY rtsp://127.0.0.1:8554/movie.Mjpeg RTSP/1.0\r\n")
    );
}
