//! Property tests: the RTSP decoder, the server connection, the RTP checker
//! and the lab depacketizer never panic, whatever the bytes, and stay
//! bounded.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use streamlab::protocol::rtp::{LabDepacketizer, PT_JPEG, RtpChecker, SsrcRule};
use streamlab::protocol::rtsp::{Decoder, MAX_MESSAGE, Message};
use streamlab::protocol::server::{
    ConnectionConfig, MediaInfo, PlayError, PlayInfo, Prepared, ServerConnection, ServerHost,
    ServerOutput, SessionInfo,
};

struct Host;
impl ServerHost for Host {
    fn open(&mut self, path: &str) -> Result<MediaInfo, String> {
        if path == "movie.Mjpeg" {
            Ok(MediaInfo {
                width: 384,
                height: 288,
                fps: 20,
                duration: Some(25.0),
                live: false,
            })
        } else {
            Err("no".into())
        }
    }
    fn new_session_id(&mut self) -> u32 {
        123456
    }
    fn setup(&mut self, _: &SessionInfo) -> Result<Prepared, String> {
        Ok(Prepared {
            server_ports: Some((6000, 6001)),
            ssrc: 1,
        })
    }
    fn prepare_play(&mut self, start: Option<f64>) -> Result<PlayInfo, PlayError> {
        Ok(PlayInfo {
            seq: 1,
            rtptime: 1,
            start: start.unwrap_or(0.0),
            end: Some(25.0),
            live: false,
        })
    }
}

/// Bytes that look RTSP-ish often enough to reach deep into the parser.
fn rtspish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "SETUP ",
        "PLAY ",
        "PAUSE ",
        "TEARDOWN ",
        "OPTIONS ",
        "movie.Mjpeg ",
        "rtsp://h/x ",
        "RTSP/1.0",
        "RTSP/1.0 200 OK",
        "\r\n",
        "\n",
        "\r\n\r\n",
        "CSeq: 1",
        "CSeq: x",
        "Session: 123456",
        "Transport: RTP/UDP; client_port= 25000",
        "Transport: RTP/AVP;unicast;client_port=5000-5001",
        "Content-Length: 3",
        "Content-Length: 99999999999",
        "$\x00\x00\x04",
        ":",
        " ",
        "abc",
        "\u{0}",
    ]);
    prop::collection::vec(
        prop_oneof![
            pieces.prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8)
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics_and_stays_bounded(
        data in prop_oneof![rtspish(), prop::collection::vec(any::<u8>(), 0..2000)],
        splits in prop::collection::vec(0usize..2000, 0..6),
        quiet in any::<bool>(),
    ) {
        let mut d = Decoder::new();
        let mut cuts: Vec<usize> = splits.into_iter().map(|s| s % (data.len() + 1)).collect();
        cuts.sort();
        let mut at = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            d.push(&data[at..c]);
            at = c;
            while let Some(m) = d.poll(quiet) {
                if let Ok(Message::Request(r)) = m {
                    let _ = r.to_bytes();
                }
            }
            prop_assert!(d.pending() <= MAX_MESSAGE + 4 + 65_535 + 2000);
        }
    }

    #[test]
    fn server_connection_never_panics(data in rtspish(), chunks in 1usize..5) {
        let t0 = Instant::now();
        let mut c = ServerConnection::new(ConnectionConfig {
            request_timeout: Duration::from_secs(1),
            ..ConnectionConfig::default()
        });
        let step = data.len() / chunks + 1;
        for (i, chunk) in data.chunks(step).enumerate() {
            let t = t0 + Duration::from_millis(10 * i as u64);
            c.handle_bytes(t, chunk, &mut Host);
            if let Some(d) = c.poll_timeout() {
                c.handle_timeout(d, &mut Host);
            }
            while let Some(o) = c.poll_output() {
                if let ServerOutput::Send(b) = o {
                    prop_assert!(b.starts_with(b"RTSP/1.0 "));
                }
            }
        }
        c.handle_timeout(t0 + Duration::from_secs(5), &mut Host);
        while c.poll_output().is_some() {}
    }

    #[test]
    fn rtp_checker_and_lab_depacketizer_never_panic(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..50),
        header_bias in any::<bool>(),
    ) {
        let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = LabDepacketizer::new();
        for mut p in packets {
            if header_bias && p.len() >= 2 {
                p[0] = 0x80;
                p[1] = (p[1] & 0x80) | PT_JPEG;
            }
            if let Ok(acc) = checker.check(&p) {
                let _ = d.push(&acc);
            }
        }
    }
}
