//! The server connection against a fake host and a fake clock: requests
//! in, replies and media actions out, in both dialects.

use super::*;
use std::time::Duration;

pub(crate) struct Host {
    files: Vec<&'static str>,
    next_id: u32,
    pub(crate) played_from: Vec<Option<f64>>,
}

impl ServerHost for Host {
    fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
        if self.files.contains(&path) {
            Ok(MediaInfo {
                width: 384,
                height: 288,
                fps: 20,
                duration: Some(25.0),
                live: false,
            })
        } else {
            Err(format!("{path} does not exist"))
        }
    }
    fn new_session_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }
    fn setup(&mut self, _: &SessionInfo) -> Result<Prepared, String> {
        Ok(Prepared {
            server_ports: Some((6000, 6001)),
            ssrc: 0xABCD,
        })
    }
    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        if start.is_some_and(|s| s > 25.0) {
            return Err(PlayError::Range("25 s long".into()));
        }
        self.played_from.push(start);
        Ok(PlayInfo {
            seq: 100,
            rtptime: 9000,
            start: start.unwrap_or(0.0),
            end: Some(25.0),
            live: false,
        })
    }
}

pub(crate) fn host() -> Host {
    Host {
        files: vec!["movie.Mjpeg"],
        next_id: 123455,
        played_from: Vec::new(),
    }
}

/// Feed a lab request and collect the output.
fn lab(conn: &mut ServerConnection, t: Instant, bytes: &[u8]) -> Vec<ServerOutput> {
    let mut h = host();
    conn.handle_bytes(t, bytes, &mut h);
    // Messages ending in a Session line are complete at once; others
    // (SETUP ends with Transport) wait for the peer to be quiet.
    if let Some(deadline) = conn.poll_timeout() {
        assert_eq!(deadline, t + LAB_QUIET);
        conn.handle_timeout(deadline, &mut h);
    }
    std::iter::from_fn(|| conn.poll_output()).collect()
}

pub(crate) fn sent(out: &[ServerOutput]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            ServerOutput::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

/// Feed a standard (CRLF) request and collect the output.
fn std_req(c: &mut ServerConnection, h: &mut Host, t: Instant, text: &str) -> Vec<ServerOutput> {
    c.handle_bytes(t, text.as_bytes(), h);
    std::iter::from_fn(|| c.poll_output()).collect()
}

#[test]
fn a_cseq_that_is_no_number_is_refused_and_not_echoed() {
    // Found by fuzzing (server_connection): the raw value was echoed,
    // bare CR and all, and our own client read the reply as two.
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let mut h = host();
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "OPTIONS * RTSP/1.0\r\nCSeq: 2\rX-Injected: 1\r\n\r\n",
    );
    let replies = sent(&out);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].starts_with("RTSP/1.0 400 "), "{}", replies[0]);
    assert!(!replies[0].contains("Injected"), "{}", replies[0]);
    let out = std_req(&mut c, &mut h, t, "OPTIONS * RTSP/1.0\r\nCSeq:  7 \r\n\r\n");
    assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK\r\nCSeq: 7\r\n"));
}

#[test]
fn standard_session_describe_setup_play_with_range() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let mut h = host();
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "OPTIONS rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    assert!(
        sent(&out)[0]
            .contains("Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER\r\n")
    );
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "DESCRIBE rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
    );
    let d = &sent(&out)[0];
    assert!(d.contains("Content-Base: rtsp://h/movie.Mjpeg/\r\n"), "{d}");
    assert!(d.contains("Content-Type: application/sdp\r\n"));
    assert!(d.contains("m=video 0 RTP/AVP 26\r\n"));
    assert!(d.contains("a=range:npt=0-25.000\r\n"));
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
    );
    let s = &sent(&out)[0];
    let id = c.session().unwrap().id.clone();
    assert!(s.contains(&format!("Session: {id};timeout=60\r\n")), "{s}");
    assert!(s.contains("Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=0000ABCD\r\n"), "{s}");
    assert_eq!(c.session().unwrap().path, "movie.Mjpeg");
    let out = std_req(
        &mut c,
        &mut h,
        t,
        &format!(
            "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nRange: npt=10.5-\r\n\r\n"
        ),
    );
    let p = &sent(&out)[0];
    assert!(p.contains("Range: npt=10.500-25.000\r\n"), "{p}");
    assert!(
        p.contains("RTP-Info: url=rtsp://h/movie.Mjpeg/trackID=0;seq=100;rtptime=9000\r\n"),
        "{p}"
    );
    assert!(out.contains(&ServerOutput::Play));
    assert_eq!(h.played_from, vec![Some(10.5)]);
    let out = std_req(
        &mut c,
        &mut h,
        t,
        &format!(
            "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=30-\r\n\r\n"
        ),
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 457 "));
    // A seek back in PLAYING (the file may have ended meanwhile) starts
    // the sender again; a bare PLAY in PLAYING does not need to.
    let out = std_req(
        &mut c,
        &mut h,
        t,
        &format!(
            "PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\nRange: npt=2-\r\n\r\n"
        ),
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK"));
    assert!(out.contains(&ServerOutput::Play));
    assert_eq!(h.played_from, vec![Some(10.5), Some(2.0)]);
    let out = std_req(
        &mut c,
        &mut h,
        t,
        &format!("PLAY rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\n\r\n"),
    );
    assert!(!out.contains(&ServerOutput::Play));
    let out = std_req(
        &mut c,
        &mut h,
        t,
        &format!(
            "GET_PARAMETER rtsp://h/movie.Mjpeg/ RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\n\r\n"
        ),
    );
    assert!(sent(&out)[0].starts_with(&format!(
        "RTSP/1.0 200 OK\r\nCSeq: 8\r\nSession: {id};timeout=60\r\n"
    )));
}

#[test]
fn interleaved_setup_and_unsupported_transport() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let mut h = host();
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 461 "));
    let out = std_req(
        &mut c,
        &mut h,
        t,
        "SETUP rtsp://h/movie.Mjpeg/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
    );
    assert!(
        sent(&out)[0].contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0000ABCD\r\n")
    );
    assert_eq!(
        c.session().unwrap().transport,
        MediaTransport::Interleaved {
            rtp_channel: 0,
            rtcp_channel: 1
        }
    );
}

#[test]
fn standard_session_expires_unless_kept_alive() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let mut h = host();
    std_req(
        &mut c,
        &mut h,
        t,
        "SETUP rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
    );
    assert_eq!(c.poll_timeout(), Some(t + SESSION_TIMEOUT));
    let later = t + Duration::from_secs(50);
    std_req(
        &mut c,
        &mut h,
        later,
        "GET_PARAMETER * RTSP/1.0\r\nCSeq: 2\r\nSession: 123456\r\n\r\n",
    );
    assert_eq!(c.poll_timeout(), Some(later + SESSION_TIMEOUT));
    c.handle_timeout(later + SESSION_TIMEOUT, &mut h);
    let out: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
    assert!(out.contains(&ServerOutput::Teardown));
    // The connection goes with it: its client is most likely gone.
    assert_eq!(out.last(), Some(&ServerOutput::Close));
    assert!(c.is_closed());
    assert_eq!(c.state(), State::Init);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn lab_sessions_never_expire() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    lab(
        &mut c,
        t,
        b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
    );
    assert_eq!(c.state(), State::Ready);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn npt_ranges() {
    assert_eq!(parse_npt_start("npt=0-"), Ok(Some(0.0)));
    assert_eq!(parse_npt_start("npt=now-"), Ok(None));
    assert_eq!(parse_npt_start("npt=-10"), Ok(None));
    assert_eq!(parse_npt_start("npt=0:01:02.5-"), Ok(Some(62.5)));
    assert_eq!(parse_npt_start("clock=19961108T142300Z-"), Err(BadRange));
    assert_eq!(parse_npt_start("npt=-1-"), Ok(None));
    assert_eq!(parse_npt_start("npt=abc-"), Err(BadRange));
}

#[test]
fn lab_session_walks_the_states_with_exact_replies() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let out = lab(
        &mut c,
        t,
        b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
    );
    assert_eq!(sent(&out), ["RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456"]);
    assert_eq!(
        c.session().unwrap().transport,
        MediaTransport::Udp {
            rtp_port: 25000,
            rtcp_port: None
        }
    );
    assert_eq!(c.state(), State::Ready);
    let out = lab(
        &mut c,
        t,
        b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
    );
    assert_eq!(sent(&out), ["RTSP/1.0 200 OK\nCSeq: 2\nSession: 123456"]);
    assert!(out.contains(&ServerOutput::Play));
    let out = lab(
        &mut c,
        t,
        b"PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456",
    );
    assert!(out.contains(&ServerOutput::Pause));
    assert_eq!(c.state(), State::Ready);
    let out = lab(
        &mut c,
        t,
        b"TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 4\nSession: 123456",
    );
    assert!(out.contains(&ServerOutput::Teardown));
    assert_eq!(c.state(), State::Init);
}

#[test]
fn wrong_state_wrong_session_unknown_method_missing_file() {
    let t = Instant::now();
    let mut c = ServerConnection::default();
    let out = lab(&mut c, t, b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 1\nSession: 1");
    assert_eq!(
        sent(&out)[0],
        "RTSP/1.0 455 Method Not Valid in This State\nCSeq: 1"
    );
    let out = lab(&mut c, t, b"FLY movie.Mjpeg RTSP/1.0\nCSeq: 2");
    assert!(sent(&out)[0].starts_with("RTSP/1.0 501 "));
    let out = lab(
        &mut c,
        t,
        b"SETUP ../../etc/passwd RTSP/1.0\nCSeq: 3\nTransport: RTP/UDP; client_port= 25000",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 404 "));
    let out = lab(
        &mut c,
        t,
        b"SETUP nope.Mjpeg RTSP/1.0\nCSeq: 4\nTransport: RTP/UDP; client_port= 25000",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 404 "));
    lab(
        &mut c,
        t,
        b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 5\nTransport: RTP/UDP; client_port= 25000",
    );
    let out = lab(
        &mut c,
        t,
        b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 6\nSession: 999999",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 454 "));
    assert_eq!(c.state(), State::Ready);
}

#[test]
fn half_sent_request_times_out_with_408() {
    let t = Instant::now();
    let mut h = host();
    let mut c = ServerConnection::new(ConnectionConfig {
        request_timeout: Duration::from_secs(10),
        ..ConnectionConfig::default()
    });
    c.handle_bytes(t, b"SETUP movie.Mj", &mut h);
    let q = c.poll_timeout().unwrap();
    c.handle_timeout(q, &mut h);
    assert!(
        c.poll_output().is_none(),
        "a half request line is not flushed"
    );
    let e = c.poll_timeout().unwrap();
    assert_eq!(e, t + Duration::from_secs(10));
    c.handle_timeout(e, &mut h);
    let out: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
    assert!(sent(&out)[0].starts_with("RTSP/1.0 408 "));
    assert!(out.contains(&ServerOutput::Close));
}

#[test]
fn resolve_target_stays_under_root() {
    assert_eq!(resolve_target("movie.Mjpeg").unwrap(), "movie.Mjpeg");
    assert_eq!(
        resolve_target("rtsp://h:8554/a/b.mjpeg").unwrap(),
        "a/b.mjpeg"
    );
    assert_eq!(resolve_target("/a//./b").unwrap(), "a/b");
    for bad in [
        "../x",
        "a/../../x",
        "%2e%2e/x",
        "rtsp://h/../x",
        "C:/x",
        "a\\..\\x",
        "",
    ] {
        assert!(resolve_target(bad).is_err(), "{bad}");
    }
}

/// A host with one user whose Authorization value is `Basic ok`, as the
/// net host decides from its Guard: the connection only carries it out.
struct Locked(Host, Vec<String>);

impl ServerHost for Locked {
    fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
        self.0.open(path)
    }
    fn new_session_id(&mut self) -> u32 {
        self.0.new_session_id()
    }
    fn setup(&mut self, s: &SessionInfo) -> Result<Prepared, String> {
        self.0.setup(s)
    }
    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        self.0.prepare_play(start)
    }
    fn authorize(&mut self, method: &str, authorization: Option<&str>) -> Access {
        self.1.push(method.to_string());
        if authorization == Some("Basic ok") {
            return Access::Granted;
        }
        Access::Refused {
            challenges: vec![
                "Digest realm=\"r\", nonce=\"n\"".into(),
                "Basic realm=\"r\"".into(),
            ],
            why: "wrong password".into(),
            hold: if authorization.is_some() {
                Duration::from_millis(250)
            } else {
                Duration::ZERO
            },
        }
    }
}

#[test]
fn a_locked_server_answers_401_with_every_challenge_and_lets_options_through() {
    let t = Instant::now();
    let mut c = ServerConnection::new(ConnectionConfig::default());
    let mut h = Locked(host(), Vec::new());
    let req = |c: &mut ServerConnection, h: &mut Locked, text: &str| {
        c.handle_bytes(t, text.as_bytes(), h);
        std::iter::from_fn(|| c.poll_output()).collect::<Vec<_>>()
    };
    let out = req(
        &mut c,
        &mut h,
        "OPTIONS rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK"), "{out:?}");
    assert!(h.1.is_empty(), "OPTIONS is not asked about");

    let out = req(
        &mut c,
        &mut h,
        "DESCRIBE rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 2\r\n\r\n",
    );
    let reply = &sent(&out)[0];
    assert!(
        reply.starts_with("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n"),
        "{reply}"
    );
    assert!(reply.contains("WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n"));
    assert!(reply.contains("WWW-Authenticate: Basic realm=\"r\"\r\n"));
    assert!(
        !out.iter().any(|o| matches!(o, ServerOutput::Hold(_))),
        "a first try is not slowed"
    );

    let out = req(
        &mut c,
        &mut h,
        "DESCRIBE rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic bad\r\n\r\n",
    );
    let hold = out.iter().position(|o| matches!(o, ServerOutput::Hold(_)));
    let reply = out.iter().position(|o| matches!(o, ServerOutput::Send(_)));
    assert!(
        hold < reply && hold.is_some(),
        "held back, then answered: {out:?}"
    );

    let out = req(
        &mut c,
        &mut h,
        "DESCRIBE rtsp://h/movie.Mjpeg RTSP/1.0\r\nCSeq: 4\r\nAuthorization: Basic ok\r\n\r\n",
    );
    assert!(sent(&out)[0].starts_with("RTSP/1.0 200 OK"), "{out:?}");
    assert_eq!(h.1, ["DESCRIBE", "DESCRIBE", "DESCRIBE"]);
    // Nothing was set up behind the refusals.
    assert_eq!(c.state(), State::Init);
}
