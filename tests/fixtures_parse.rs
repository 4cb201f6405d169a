//! Real wire traffic, kept byte-exact under `tests/fixtures/` (see
//! `tests/fixtures/SOURCES.md` for the peers, versions and commands):
//!
//! - `requests/<peer>_<METHOD>.txt`: one RTSP request each, as ffprobe,
//!   ffmpeg (UDP and TCP), GStreamer's rtspsrc (UDP and TCP) and OpenCV sent
//!   it to `tests/peers/capture/rtsp_capture_server.py`. Each must parse
//!   whole and when split at every byte (retina's `parse_request` test).
//! - `requests/<peer>_session.bin`: all a TCP client sent on its connection,
//!   requests and interleaved RTCP (`$` frames) together.
//! - `rtp/<name>/NNNN.bin`: RTP/JPEG (RFC 2435) datagrams from GStreamer's
//!   `rtpjpegpay`, RTP header included, and `source_<n>.jpg`, the JPEGs it
//!   was fed. The depacketized frames must decode, and carry the same scan
//!   and quantisation tables as the source, so decode to the same pixels.
//! - `replies/gst_rtsp_server_<WHAT>.txt`: GStreamer's RTSP server's
//!   replies, its SDP and its 401 Digest challenge among them. Each must
//!   parse whole and split at every byte, and carry our client's session
//!   from INIT to PLAYING and back.

use std::fs;
use std::path::{Path, PathBuf};

use streamlab::media::decode::decode_rgba;
use streamlab::protocol::State;
use streamlab::protocol::auth::{self, Answer, Challenge, md5_hex};
use streamlab::protocol::rtp::{JpegFrame, RtpChecker, SsrcRule};
use streamlab::protocol::rtp_jpeg::Depacketizer;
use streamlab::protocol::rtsp::{Decoder, Dialect, Message, Method, Request, Response};
use streamlab::protocol::sdp;
use streamlab::protocol::session::{ClientReply, ClientSession};
use streamlab::protocol::transport::{Lower, Transport};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// RTSP requests

/// Every request fixture: file stem, method, CSeq.
const REQUESTS: &[(&str, &str, u32)] = &[
    ("ffprobe_udp_OPTIONS", "OPTIONS", 1),
    ("ffprobe_udp_DESCRIBE", "DESCRIBE", 2),
    ("ffprobe_udp_SETUP", "SETUP", 3),
    ("ffprobe_udp_PLAY", "PLAY", 4),
    ("ffprobe_udp_TEARDOWN", "TEARDOWN", 5),
    ("ffmpeg_udp_OPTIONS", "OPTIONS", 1),
    ("ffmpeg_udp_DESCRIBE", "DESCRIBE", 2),
    ("ffmpeg_udp_SETUP", "SETUP", 3),
    ("ffmpeg_udp_PLAY", "PLAY", 4),
    ("ffmpeg_udp_GET_PARAMETER", "GET_PARAMETER", 5),
    ("ffmpeg_udp_TEARDOWN", "TEARDOWN", 5),
    ("ffmpeg_tcp_OPTIONS", "OPTIONS", 1),
    ("ffmpeg_tcp_DESCRIBE", "DESCRIBE", 2),
    ("ffmpeg_tcp_SETUP", "SETUP", 3),
    ("ffmpeg_tcp_PLAY", "PLAY", 4),
    ("ffmpeg_tcp_GET_PARAMETER", "GET_PARAMETER", 5),
    ("ffmpeg_tcp_TEARDOWN", "TEARDOWN", 5),
    ("gstreamer_udp_OPTIONS", "OPTIONS", 1),
    ("gstreamer_udp_DESCRIBE", "DESCRIBE", 2),
    ("gstreamer_udp_SETUP", "SETUP", 3),
    ("gstreamer_udp_PLAY", "PLAY", 4),
    ("gstreamer_udp_GET_PARAMETER", "GET_PARAMETER", 5),
    ("gstreamer_udp_PAUSE", "PAUSE", 5),
    ("gstreamer_udp_TEARDOWN", "TEARDOWN", 6),
    ("gstreamer_tcp_OPTIONS", "OPTIONS", 1),
    ("gstreamer_tcp_DESCRIBE", "DESCRIBE", 2),
    ("gstreamer_tcp_SETUP", "SETUP", 3),
    ("gstreamer_tcp_PLAY", "PLAY", 4),
    ("gstreamer_tcp_PAUSE", "PAUSE", 5),
    ("gstreamer_tcp_TEARDOWN", "TEARDOWN", 6),
    ("opencv_OPTIONS", "OPTIONS", 1),
    ("opencv_DESCRIBE", "DESCRIBE", 2),
    ("opencv_SETUP", "SETUP", 3),
    ("opencv_PLAY", "PLAY", 4),
    ("opencv_TEARDOWN", "TEARDOWN", 5),
];

fn request_bytes(stem: &str) -> Vec<u8> {
    read(&format!("requests/{stem}.txt"))
}

/// Parse one whole fixture the way the connection does: push, poll(false).
/// Checks that exactly the fixture's bytes were used.
fn parse_whole(stem: &str, bytes: &[u8]) -> Request {
    let mut d = Decoder::new();
    d.push(bytes);
    let msg = match d.poll(false) {
        Some(Ok(Message::Request(r))) => r,
        other => panic!("{stem}: expected a request, got {other:?}"),
    };
    assert_eq!(d.last_raw(), bytes, "{stem}: not every byte was used");
    assert_eq!(d.pending(), 0, "{stem}: bytes left over");
    assert!(d.poll(false).is_none(), "{stem}: a second message");
    msg
}

#[test]
fn request_fixtures_are_all_listed() {
    let mut on_disk: Vec<String> = fs::read_dir(fixtures().join("requests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".txt").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = REQUESTS.iter().map(|r| r.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn real_client_requests_parse() {
    for &(stem, method, cseq) in REQUESTS {
        let bytes = request_bytes(stem);
        assert!(
            bytes.ends_with(b"\r\n\r\n"),
            "{stem}: capture is not a whole CRLF request"
        );
        let r = parse_whole(stem, &bytes);
        assert_eq!(r.method, Method::parse(method), "{stem}");
        assert_eq!(r.method.as_str(), method, "{stem}");
        assert_eq!(r.headers.cseq(), Some(cseq), "{stem}");
        assert!(
            r.target.starts_with("rtsp://127.0.0.1:"),
            "{stem}: target {:?}",
            r.target
        );
        assert!(r.body.is_empty(), "{stem}");
        if !matches!(r.method, Method::Options | Method::Describe | Method::Setup) {
            assert_eq!(r.headers.session(), Some("12345678"), "{stem}");
        }
    }
}

#[test]
fn real_client_requests_parse_split_at_every_byte() {
    for &(stem, _, _) in REQUESTS {
        let bytes = request_bytes(stem);
        let whole = parse_whole(stem, &bytes);
        for at in 0..bytes.len() {
            let mut d = Decoder::new();
            d.push(&bytes[..at]);
            let early = d.poll(false);
            assert!(
                early.is_none(),
                "{stem}: split at byte {at}: a message before the end: {early:?}"
            );
            d.push(&bytes[at..]);
            match d.poll(false) {
                Some(Ok(Message::Request(r))) => {
                    assert_eq!(r, whole, "{stem}: split at byte {at}")
                }
                other => panic!("{stem}: split at byte {at}: got {other:?}"),
            }
            assert_eq!(d.last_raw(), &bytes[..], "{stem}: split at byte {at}");
            assert!(d.poll(false).is_none(), "{stem}: split at byte {at}");
        }
    }
}

#[test]
fn real_client_setup_transports_parse() {
    for &(stem, method, _) in REQUESTS {
        if method != "SETUP" {
            continue;
        }
        let r = parse_whole(stem, &request_bytes(stem));
        let header = r
            .headers
            .get("Transport")
            .unwrap_or_else(|| panic!("{stem}: no Transport"));
        let specs = Transport::parse_all(header);
        assert!(!specs.is_empty(), "{stem}");
        for spec in &specs {
            assert!(spec.is_ok(), "{stem}: {header:?}: {spec:?}");
        }
        let t = Transport::parse(header).unwrap_or_else(|e| panic!("{stem}: {header:?}: {e}"));
        assert!(!t.multicast, "{stem}");
        if stem.contains("_tcp_") || stem.starts_with("opencv_") {
            // OpenCV's bundled FFmpeg asks for TCP by default.
            assert_eq!(t.lower, Lower::Tcp, "{stem}: {header:?}");
            assert_eq!(t.protocol, "RTP/AVP/TCP", "{stem}");
            assert_eq!(t.interleaved, Some((0, Some(1))), "{stem}");
            assert_eq!(t.client_port, None, "{stem}");
        } else {
            assert_eq!(t.lower, Lower::Udp, "{stem}: {header:?}");
            // ffmpeg writes RTP/AVP/UDP, GStreamer RTP/AVP.
            assert!(
                t.protocol == "RTP/AVP" || t.protocol == "RTP/AVP/UDP",
                "{stem}: {}",
                t.protocol
            );
            let (rtp, rtcp) = t
                .client_port
                .unwrap_or_else(|| panic!("{stem}: no client_port"));
            assert_eq!(rtp % 2, 0, "{stem}: odd RTP port");
            assert_eq!(rtcp, Some(rtp + 1), "{stem}");
            assert_eq!(t.interleaved, None, "{stem}");
        }
    }
}

/// What a TCP client sent on its connection: each request equals its
/// per-method fixture, and interleaved RTCP in between comes out as
/// `Message::Interleaved` on channel 1.
fn session_messages(bytes: &[u8], split: Option<usize>) -> Vec<(Message, Vec<u8>)> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let parts: Vec<&[u8]> = match split {
        Some(at) => vec![&bytes[..at], &bytes[at..]],
        None => vec![bytes],
    };
    for part in parts {
        d.push(part);
        while let Some(m) = d.poll(false) {
            let m = m.unwrap_or_else(|e| panic!("split {split:?}: {e}"));
            out.push((m, d.last_raw().to_vec()));
        }
    }
    assert_eq!(d.pending(), 0, "split {split:?}: bytes left over");
    out
}

#[test]
fn tcp_client_sessions_parse_with_interleaved_rtcp() {
    for (peer, rtcp_frames) in [("ffmpeg_tcp", 0), ("gstreamer_tcp", 2), ("opencv", 0)] {
        let bytes = read(&format!("requests/{peer}_session.bin"));
        let msgs = session_messages(&bytes, None);
        let mut methods = Vec::new();
        let mut rtcp = 0;
        for (m, raw) in &msgs {
            match m {
                Message::Request(r) => {
                    let stem = format!("{peer}_{}", r.method);
                    // The keep-alive fixtures come from a separate run.
                    if r.method != Method::GetParameter {
                        assert_eq!(raw, &request_bytes(&stem), "{stem}");
                    }
                    methods.push(r.method.as_str().to_string());
                }
                Message::Interleaved { channel, payload } => {
                    assert_eq!(*channel, 1, "{peer}: RTCP goes on the odd channel");
                    assert_eq!(payload[0] >> 6, 2, "{peer}: RTCP version");
                    assert!((200..=204).contains(&payload[1]), "{peer}: RTCP type");
                    rtcp += 1;
                }
                Message::Response(r) => panic!("{peer}: a response from a client: {r:?}"),
            }
        }
        assert_eq!(rtcp, rtcp_frames, "{peer}");
        assert_eq!(
            &methods[..4],
            ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"],
            "{peer}"
        );
        assert_eq!(
            methods.last().map(String::as_str),
            Some("TEARDOWN"),
            "{peer}"
        );
        for at in 0..bytes.len() {
            assert_eq!(
                session_messages(&bytes, Some(at)),
                msgs,
                "{peer}: split at {at}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// RTP/JPEG (RFC 2435) from GStreamer's rtpjpegpay

fn packets(name: &str) -> Vec<Vec<u8>> {
    let dir = fixtures().join("rtp").join(name);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    paths.sort();
    paths.iter().map(|p| fs::read(p).unwrap()).collect()
}

fn sources(name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(b) = fs::read(fixtures().join(format!("rtp/{name}/source_{}.jpg", out.len()))) {
        out.push(b);
    }
    out
}

/// Describe a packet's RTP and RFC 2435 main header, for failure messages.
fn describe(pkt: &[u8]) -> String {
    if pkt.len() < 20 {
        return format!("{} bytes", pkt.len());
    }
    let p = &pkt[12..];
    format!(
        "seq {} ts {} M={} | RFC 2435 at byte 12: offset {} type {} Q {} width/8 {} height/8 {}",
        u16::from_be_bytes([pkt[2], pkt[3]]),
        u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
        pkt[1] >> 7,
        u32::from_be_bytes([0, p[1], p[2], p[3]]),
        p[4],
        p[5],
        p[6],
        p[7]
    )
}

/// Run packets through the checker and the depacketizer. Every packet
/// must be accepted and no packet may be refused.
fn depacketize(name: &str, pkts: &[Vec<u8>], dims: Option<(u16, u16)>) -> Vec<JpegFrame> {
    let mut checker = RtpChecker::new(26, SsrcRule::First);
    let mut d = Depacketizer::new(dims);
    let mut frames = Vec::new();
    for (i, p) in pkts.iter().enumerate() {
        let acc = checker
            .check(p)
            .unwrap_or_else(|e| panic!("{name}/{i:04}.bin: checker: {e} ({})", describe(p)));
        assert_eq!(acc.lost, 0, "{name}/{i:04}.bin");
        match d.push(&acc) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => {}
            Err(e) => panic!("{name}/{i:04}.bin: depacketizer: {e} ({})", describe(p)),
        }
    }
    frames
}

/// The entropy-coded data of a JPEG: everything after the SOS segment.
fn scan_of(jpeg: &[u8]) -> &[u8] {
    let mut at = 2;
    loop {
        assert_eq!(jpeg[at], 0xff, "marker expected at byte {at}");
        let marker = jpeg[at + 1];
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if marker == 0xda {
            return &jpeg[at + 2 + len..];
        }
        at += 2 + len;
    }
}

/// The 8-bit quantisation tables of a JPEG, by table id, in file order.
fn dqt_of(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 2;
    loop {
        let marker = jpeg[at + 1];
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if marker == 0xda {
            return out;
        }
        if marker == 0xdb {
            let mut t = &jpeg[at + 4..at + 2 + len];
            while !t.is_empty() {
                assert_eq!(t[0] >> 4, 0, "16-bit table");
                out.push((t[0] & 15, t[1..65].to_vec()));
                t = &t[65..];
            }
        }
        at += 2 + len;
    }
}

/// Mean and largest absolute difference over the R, G and B channels.
fn pixel_diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len());
    let (mut sum, mut max, mut n) = (0u64, 0u8, 0u64);
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            let d = pa[c].abs_diff(pb[c]);
            sum += d as u64;
            max = max.max(d);
            n += 1;
        }
    }
    (sum as f64 / n as f64, max)
}

/// The rebuilt frames carry the source's scan byte for byte and its
/// quantisation tables, so they decode to the same pixels. Bound on the
/// mean absolute difference per RGB sample (0..255): 0.5. Measured: 0.
const MAX_MEAN_DIFF: f64 = 0.5;

fn check_set(name: &str, dims: Option<(u16, u16)>, frames_expected: usize, w: u32, h: u32) {
    let pkts = packets(name);
    let frames = depacketize(name, &pkts, dims);
    assert_eq!(frames.len(), frames_expected, "{name}: frames");
    let srcs = sources(name);
    assert_eq!(srcs.len(), frames_expected, "{name}: source JPEGs");
    let mut timestamps = Vec::new();
    for (i, (f, src)) in frames.iter().zip(&srcs).enumerate() {
        timestamps.push(f.timestamp);
        let (fw, fh, px) = decode_rgba(&f.jpeg).unwrap_or_else(|e| panic!("{name} frame {i}: {e}"));
        assert_eq!((fw, fh), (w, h), "{name} frame {i}: size");
        assert_eq!(
            scan_of(&f.jpeg),
            scan_of(src),
            "{name} frame {i}: scan differs from source_{i}.jpg"
        );
        let rebuilt_tables: Vec<Vec<u8>> = dqt_of(&f.jpeg).into_iter().map(|t| t.1).collect();
        let source_tables: Vec<Vec<u8>> = dqt_of(src).into_iter().map(|t| t.1).collect();
        assert_eq!(rebuilt_tables, source_tables, "{name} frame {i}: tables");
        let (sw, sh, spx) = decode_rgba(src).unwrap();
        assert_eq!((sw, sh), (w, h), "{name} source_{i}.jpg: size");
        let (mean, max) = pixel_diff(&px, &spx);
        eprintln!("{name} frame {i}: {fw}x{fh}, mean abs diff {mean:.4}, max {max}");
        assert!(
            mean <= MAX_MEAN_DIFF,
            "{name} frame {i}: mean abs diff {mean:.3} (max {max}) over {MAX_MEAN_DIFF}"
        );
    }
    timestamps.dedup();
    assert_eq!(
        timestamps.len(),
        frames_expected,
        "{name}: one timestamp per frame"
    );
}

/// jpegenc 4:2:0 (RFC 2435 type 1), Q 255 with tables in-band, two
/// packets per frame.
#[test]
fn gstreamer_rtpjpegpay_320x240_i420() {
    check_set("gst_320x240_i420", None, 5, 320, 240);
}

/// jpegenc 4:2:2 (RFC 2435 type 0).
#[test]
fn gstreamer_rtpjpegpay_320x240_y42b() {
    check_set("gst_320x240_y42b", None, 3, 320, 240);
}

/// 1080p: about 95 fragments per frame at rtpjpegpay's default MTU 1400.
#[test]
fn gstreamer_rtpjpegpay_1920x1080_i420() {
    check_set("gst_1920x1080_i420", None, 2, 1920, 1080);
}

/// cjpeg -restart 1 (DRI 20 MCUs, one MCU row) through rtpjpegpay: type
/// 65 with the restart marker header (interval 20, F=1 L=1 count 0x3FFF).
#[test]
fn gstreamer_rtpjpegpay_restart_markers() {
    let pkts = packets("cjpeg_restart_320x240");
    assert_eq!(pkts[0][12 + 4], 65, "type 65");
    assert_eq!(&pkts[0][20..24], &[0, 20, 0xff, 0xff], "restart header");
    check_set("cjpeg_restart_320x240", None, 3, 320, 240);
}

/// 2560 px wide: rtpjpegpay writes width/8 = 0 and height/8 = 0 (both,
/// though 128 would fit), so the size must come from elsewhere (the SDP's
/// a=x-dimensions, or here the caller).
#[test]
fn gstreamer_rtpjpegpay_wider_than_2040() {
    let pkts = packets("gst_2560x128_i420");
    assert_eq!(&pkts[0][12 + 6..12 + 8], &[0, 0], "width/8 and height/8");
    check_set("gst_2560x128_i420", Some((2560, 128)), 2, 2560, 128);
}

/// Without a size, a frame whose header says 0x0 cannot be rebuilt: it is
/// refused, never guessed and never a panic.
#[test]
fn wider_than_2040_without_a_size_is_refused() {
    let pkts = packets("gst_2560x128_i420");
    let mut checker = RtpChecker::new(26, SsrcRule::First);
    let mut d = Depacketizer::new(None);
    let mut frames = 0;
    for p in &pkts {
        if let Ok(Some(_)) = d.push(&checker.check(p).unwrap()) {
            frames += 1;
        }
    }
    assert_eq!(frames, 0);
}

/// A fragment lost from the middle of the first 1080p frame drops that
/// frame only; the next one comes out whole.
#[test]
fn gstreamer_1080p_with_a_lost_fragment() {
    let name = "gst_1920x1080_i420";
    let mut pkts = packets(name);
    let first_frame_len = pkts.iter().position(|p| p[1] & 0x80 != 0).unwrap() + 1;
    pkts.remove(first_frame_len / 2);
    let mut checker = RtpChecker::new(26, SsrcRule::First);
    let mut d = Depacketizer::new(None);
    let mut frames = Vec::new();
    let mut refused = 0;
    for p in &pkts {
        match d.push(&checker.check(p).unwrap()) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => {}
            Err(_) => refused += 1,
        }
    }
    assert_eq!(frames.len(), 1);
    assert!(refused >= 1);
    assert_eq!(scan_of(&frames[0].jpeg), scan_of(&sources(name)[1]));
}

/// ffmpeg's RTP muxer (rtpenc_jpeg, `-huffman default`): one quantisation
/// table for luma and chroma, so the in-band table length is 64 (quant
/// header `00 00 00 40` at bytes 20..24), and 1472-byte packets.
#[test]
fn ffmpeg_rtp_muxer_320x240_one_quant_table() {
    let name = "ffmpeg_320x240_yuvj420p";
    let pkts = packets(name);
    assert_eq!(&pkts[0][16..24], &[1, 255, 40, 30, 0, 0, 0, 64]);
    assert!(pkts.iter().all(|p| p.len() <= 1472));
    check_set(name, None, 3, 320, 240);
}

/// All packets of every set are valid RTP as the lab checker sees them:
/// V=2, no padding, extension or CSRCs, PT 26, one SSRC, sequence +1 each.
#[test]
fn gstreamer_packets_pass_the_rtp_checks() {
    for name in [
        "gst_320x240_i420",
        "gst_320x240_y42b",
        "gst_1920x1080_i420",
        "cjpeg_restart_320x240",
        "gst_2560x128_i420",
    ] {
        let mut checker = RtpChecker::new(26, SsrcRule::First);
        let pkts = packets(name);
        assert!(!pkts.is_empty(), "{name}");
        for (i, p) in pkts.iter().enumerate() {
            assert!(p.len() <= 1400, "{name}/{i:04}.bin: over rtpjpegpay's MTU");
            let acc = checker
                .check(p)
                .unwrap_or_else(|e| panic!("{name}/{i:04}.bin: {e}"));
            assert_eq!(acc.lost, 0, "{name}/{i:04}.bin");
        }
        assert_ne!(
            pkts.last().unwrap()[1] & 0x80,
            0,
            "{name}: last has the marker"
        );
    }
}

// ---------------------------------------------------------------------------
// gst-rtsp-server's replies

/// Every reply fixture: what it answers, status, CSeq.
const GST_REPLIES: &[(&str, u16, u32)] = &[
    ("OPTIONS", 200, 1),
    ("DESCRIBE", 200, 2),
    ("SETUP_udp", 200, 3),
    ("PLAY", 200, 4),
    ("TEARDOWN", 200, 5),
    ("SETUP_tcp", 200, 3),
    ("DESCRIBE_401", 401, 1),
];

/// The URL the capture asked for.
const GST_URL: &str = "rtsp://127.0.0.1:38571/test";

/// One reply, parsed whole and split at every byte (each split must give
/// nothing early and the same reply at the end).
fn gst_reply(what: &str) -> Response {
    let name = format!("replies/gst_rtsp_server_{what}.txt");
    let bytes = read(&name);
    let parse = |at: usize| {
        let mut d = Decoder::new();
        d.push(&bytes[..at]);
        let early = d.poll(false);
        assert!(early.is_none(), "{name}: split at {at}: {early:?}");
        d.push(&bytes[at..]);
        let Some(Ok(Message::Response(r))) = d.poll(false) else {
            panic!("{name}: split at {at}: not a reply");
        };
        assert_eq!(d.last_raw(), &bytes[..], "{name}: split at {at}");
        assert!(d.poll(false).is_none(), "{name}: split at {at}");
        r
    };
    let mut d = Decoder::new();
    d.push(&bytes);
    let Some(Ok(Message::Response(whole))) = d.poll(false) else {
        panic!("{name}: not a reply");
    };
    assert_eq!(d.last_raw(), &bytes[..], "{name}: not every byte was used");
    for at in 0..bytes.len() {
        assert_eq!(parse(at), whole, "{name}: split at {at}");
    }
    whole
}

#[test]
fn gst_rtsp_server_replies_are_all_listed_and_parse() {
    let mut on_disk: Vec<String> = fs::read_dir(fixtures().join("replies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = GST_REPLIES
        .iter()
        .map(|r| format!("gst_rtsp_server_{}.txt", r.0))
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    for &(what, status, cseq) in GST_REPLIES {
        let r = gst_reply(what);
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.headers.cseq(), Some(cseq), "{what}");
        assert_eq!(r.headers.get("Server"), Some("GStreamer RTSP server"));
    }
}

/// The SDP names no frame size (1920x1080 fits the RFC 2435 header) and
/// a track control relative to Content-Base.
#[test]
fn gst_rtsp_server_sdp() {
    let r = gst_reply("DESCRIBE");
    assert_eq!(r.headers.get("Content-Type"), Some("application/sdp"));
    let base = r.headers.get("Content-Base").unwrap();
    assert_eq!(base, format!("{GST_URL}/"));
    let d = sdp::parse(&r.body).unwrap();
    assert_eq!(d.session_control.as_deref(), Some("*"));
    assert_eq!(d.range.as_deref(), Some("npt=0-"));
    assert_eq!(d.media.len(), 1);
    let m = &d.media[0];
    assert_eq!(m.kind, "video");
    assert_eq!(m.formats, [26]);
    assert_eq!(m.jpeg_payload_type(), Some(26));
    assert_eq!(m.encodings, [(26, "JPEG".to_string(), 90_000)]);
    assert_eq!(m.framerate, Some(30.0));
    assert_eq!(m.dimensions, None);
    assert_eq!(m.control.as_deref(), Some("stream=0"));
    assert_eq!(
        sdp::join_control(base, m.control.as_deref().unwrap()),
        format!("{GST_URL}/stream=0")
    );
}

/// Our client's session state machine, fed gst's replies in the order the
/// capture got them, goes INIT, READY, PLAYING, INIT with gst's session id
/// (which holds a `.`, and no timeout: the default 60 s).
#[test]
fn gst_rtsp_server_replies_drive_our_session() {
    let base = format!("{GST_URL}/");
    let mut s = ClientSession::new(GST_URL, 57242, Dialect::Standard);
    for (what, method, url, state) in [
        ("OPTIONS", Method::Options, GST_URL.to_string(), State::Init),
        (
            "DESCRIBE",
            Method::Describe,
            GST_URL.to_string(),
            State::Init,
        ),
        (
            "SETUP_udp",
            Method::Setup,
            format!("{base}stream=0"),
            State::Ready,
        ),
        ("PLAY", Method::Play, base.clone(), State::Playing),
        ("TEARDOWN", Method::Teardown, base.clone(), State::Init),
    ] {
        s.request_to(method, &url).unwrap();
        let reply = s.handle_response(&gst_reply(what));
        assert!(
            matches!(reply, ClientReply::Done { to, .. } if to == state),
            "{what}: {reply:?}"
        );
        if what == "SETUP_udp" {
            assert_eq!(s.session(), Some("x.488quwRTa0Vr17"));
            assert_eq!(s.session_timeout(), None);
        }
    }
    let play = gst_reply("PLAY");
    let info = play.headers.get("RTP-Info").unwrap();
    assert!(
        info.starts_with(&format!("url={base}stream=0;seq=")),
        "{info}"
    );
}

#[test]
fn gst_rtsp_server_transports() {
    let udp = gst_reply("SETUP_udp");
    let t = Transport::parse(udp.headers.get("Transport").unwrap()).unwrap();
    assert_eq!(t.lower, Lower::Udp);
    assert_eq!(t.client_port, Some((57242, Some(57243))));
    assert_eq!(t.server_port, Some((34782, Some(34783))));
    assert_eq!(t.ssrc, Some(0x9835_8026));
    let tcp = gst_reply("SETUP_tcp");
    let t = Transport::parse(tcp.headers.get("Transport").unwrap()).unwrap();
    assert_eq!(t.lower, Lower::Tcp);
    assert_eq!(t.interleaved, Some((0, Some(1))));
    assert_eq!(t.ssrc, Some(0x3CF5_5421));
}

/// gst's 401 offers Digest only, without qop: our answer is RFC 2617's
/// plain MD5(HA1:nonce:HA2), worked out here independently.
#[test]
fn gst_rtsp_server_digest_challenge() {
    let r = gst_reply("DESCRIBE_401");
    let mut s = ClientSession::new(GST_URL, 0, Dialect::Standard);
    s.request_to(Method::Describe, GST_URL).unwrap();
    assert!(matches!(
        s.handle_response(&r),
        ClientReply::Failed { status: 401, .. }
    ));
    let values = r.headers.get_all("WWW-Authenticate");
    assert_eq!(values.len(), 1);
    let challenge = auth::choose(&values).unwrap();
    let realm = "GStreamer RTSP Server";
    let nonce = "ee271a983c452bf0";
    assert_eq!(
        challenge,
        Challenge::Digest {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            qop_auth: false,
        }
    );
    let value = auth::authorization(
        &challenge,
        &Answer {
            user: "admin",
            password: "s3cret",
            method: "DESCRIBE",
            uri: GST_URL,
            nonce_count: 1,
            cnonce: "0a4f113b",
        },
    );
    let ha1 = md5_hex(format!("admin:{realm}:s3cret").as_bytes());
    let ha2 = md5_hex(format!("DESCRIBE:{GST_URL}").as_bytes());
    let response = md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes());
    assert_eq!(
        value,
        format!(
            "Digest username=\"admin\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{GST_URL}\", response=\"{response}\""
        )
    );
}
