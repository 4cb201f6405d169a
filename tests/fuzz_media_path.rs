//! Property tests of the standard media path, from the DESCRIBE answer to the
//! picture: the SDP reader, RTSP interleaved (`$`) framing, RTCP compound
//! parsing and the RFC 2435 (RTP/JPEG) packetizer and depacketizer. Whatever
//! the bytes, nothing panics and what comes out stays well formed and
//! bounded; real frames (the lab's movie.Mjpeg and the test pattern, both
//! re-encoded for RTP) survive packetizing, any split over TCP and
//! depacketizing pixel for pixel.

use std::sync::OnceLock;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use streamlab::media::decode::decode_rgba;
use streamlab::media::rtp_ready::{RTP_QUALITY, reencode_for_rtp};
use streamlab::media::{MjpegFile, pattern};
use streamlab::protocol::rtcp::{self, PT_SR};
use streamlab::protocol::rtp::{
    Accepted, DropReason, JpegFrame, MAX_FRAME, PT_JPEG, RtpChecker, RtpHeader, SsrcRule,
};
use streamlab::protocol::rtp_jpeg::{self, Depacketizer, Layout};
use streamlab::protocol::rtsp::{Decoder, Dialect, Message, Response};
use streamlab::protocol::sdp::{self, MAX_SDP, Offer, SdpError, TRACK_CONTROL};

const MOVIE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media/movie.Mjpeg");
const SSRC: u32 = 0x5354_4c42;
/// Sequence number and timestamp the real packet stream starts at (the
/// sequence wraps within it).
const FIRST_SEQ: u16 = 65_500;
const FIRST_TS: u32 = 90_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported in the output; nothing is written beside
        // the test file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A carriable JPEG and its decoded pixels.
struct Frame {
    name: String,
    jpeg: Vec<u8>,
    pixels: (u32, u32, Vec<u8>),
}

impl Frame {
    fn new(name: String, jpeg: Vec<u8>) -> Frame {
        assert!(
            rtp_jpeg::carriable(&jpeg).is_ok(),
            "{name}: {:?}",
            rtp_jpeg::carriable(&jpeg)
        );
        let pixels = decode_rgba(&jpeg).unwrap_or_else(|e| panic!("{name}: {e}"));
        Frame { name, jpeg, pixels }
    }
}

/// Encode an RGB picture the way RFC 2435 can carry it, with a chosen
/// sampling and restart interval (types 0/1 and 64/65).
fn encode_carriable(rgb: &[u8], w: u16, h: u16, sampling: SamplingFactor, restart: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, RTP_QUALITY);
    e.set_sampling_factor(sampling);
    e.set_restart_interval(restart);
    e.encode(rgb, w, h, ColorType::Rgb).unwrap();
    out
}

/// Real frames: movie.Mjpeg frames and 320x240 pattern frames re-encoded
/// with `reencode_for_rtp` (4:2:0, type 1), plus a 4:2:2 pattern frame with
/// restart markers (type 64) and a 4:2:0 one with them (type 65).
fn frames() -> &'static [Frame] {
    static FRAMES: OnceLock<Vec<Frame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let movie = MjpegFile::open(MOVIE.as_ref()).expect("the lab's movie.Mjpeg in shared/media");
        let mut out = Vec::new();
        for n in [0, 1, 137, 499] {
            let src = movie.frame(n).unwrap().expect("movie.Mjpeg has 500 frames");
            let jpeg = reencode_for_rtp(&src, RTP_QUALITY).unwrap();
            out.push(Frame::new(format!("movie.Mjpeg frame {n}"), jpeg));
        }
        for n in [0, 42, 99] {
            let src = pattern::encode_jpeg(&pattern::pattern_rgb(n, 320, 240), 85).unwrap();
            let jpeg = reencode_for_rtp(&src, RTP_QUALITY).unwrap();
            out.push(Frame::new(format!("pattern 320x240 frame {n}"), jpeg));
        }
        let rgb = pattern::pattern_rgb(7, 320, 240).into_raw();
        out.push(Frame::new(
            "pattern 320x240 4:2:2 restart 3".into(),
            encode_carriable(&rgb, 320, 240, SamplingFactor::F_2_1, 3),
        ));
        out.push(Frame::new(
            "pattern 320x240 4:2:0 restart 1".into(),
            encode_carriable(&rgb, 320, 240, SamplingFactor::F_2_2, 1),
        ));
        out
    })
}

fn header(sequence: u16, timestamp: u32) -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: PT_JPEG,
        sequence,
        timestamp,
        ssrc: SSRC,
    }
}

fn packetize(frame: &Frame, max_payload: usize, seq: u16, ts: u32) -> (Vec<Vec<u8>>, u16) {
    let c = rtp_jpeg::carriable(&frame.jpeg).unwrap();
    let mut packets = Vec::new();
    let next = rtp_jpeg::packetize(&c, max_payload, header(seq, ts), |p| {
        packets.push(p.to_vec())
    });
    (packets, next)
}

/// A stream of real packets: four frames with consecutive sequence numbers
/// (wrapping past 65535) and timestamps, types 1, 0+64, 1+64 and 1.
fn real_packets() -> &'static [Vec<u8>] {
    static PACKETS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PACKETS.get_or_init(|| {
        let f = frames();
        let plan = [(&f[0], 1400), (&f[7], 300), (&f[8], 700), (&f[1], 500)];
        let (mut seq, mut ts) = (FIRST_SEQ, FIRST_TS);
        let mut all = Vec::new();
        for (frame, max_payload) in plan {
            let (packets, next) = packetize(frame, max_payload, seq, ts);
            all.extend(packets);
            (seq, ts) = (next, ts + 4500);
        }
        all
    })
}

/// Largest header block the depacketizer can put before a scan: two DQT
/// tables and a DRI.
fn header_bound() -> usize {
    rtp_jpeg::make_headers(Layout::Yuv420, u16::MAX, u16::MAX, &[1; 128], 1).len()
}

/// What every frame the depacketizer gives must be, whatever went in.
fn check_frame(f: &JpegFrame) -> Result<(), TestCaseError> {
    prop_assert!(f.jpeg.starts_with(&[0xff, 0xd8]), "no SOI");
    prop_assert!(f.jpeg.ends_with(&[0xff, 0xd9]), "no EOI");
    prop_assert!(
        f.jpeg.len() <= MAX_FRAME + header_bound() + 2,
        "{} bytes",
        f.jpeg.len()
    );
    Ok(())
}

/// Push every packet through a fresh checker and depacketizer, returning
/// each result.
fn depacketize_all(packets: &[Vec<u8>]) -> Vec<Result<Option<JpegFrame>, DropReason>> {
    let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
    let mut d = Depacketizer::new(None);
    packets
        .iter()
        .map(|p| d.push(&checker.check(p).expect("a clean packet passes the checker")))
        .collect()
}

// ---------------------------------------------------------------- SDP ----

/// One line of SDP-ish text, often hostile.
fn sdp_line() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u32..70_000).prop_map(|v| v.to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("-0".to_string()),
        Just(String::new()),
        "[ -~]{0,6}",
    ];
    let fixed = prop::sample::select(vec![
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=movie",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "m=video 0 RTP/AVP 26",
        "m=audio 0 RTP/AVP 0 8 97",
        "m=video 0 RTP/AVP 99999 -1 26 x",
        "m=",
        "m",
        "=",
        "m=video",
        "a=",
        "a=:",
        "a=control:*",
        "a=control:",
        "a=rtpmap:",
        "a=rtpmap:26",
        "a=x-dimensions:",
        "a=x-dimensions:,",
        "a=framesize:26",
        "a=range:npt=0-",
        " m = video 0 RTP/AVP 26 ",
        "",
    ]);
    prop_oneof![
        4 => fixed.prop_map(str::to_string),
        2 => (number.clone(), prop::sample::select(vec!["JPEG", "jpeg", "H264", "", "JPEG/"]), number.clone())
            .prop_map(|(pt, enc, clock)| format!("a=rtpmap:{pt} {enc}/{clock}")),
        2 => (number.clone(), number.clone()).prop_map(|(w, h)| format!("a=x-dimensions:{w},{h}")),
        1 => (number.clone(), number.clone(), number.clone())
            .prop_map(|(pt, w, h)| format!("a=framesize:{pt} {w}-{h}")),
        1 => prop_oneof![number.clone(), Just("NaN".to_string()), Just("inf".to_string()), Just("-1e400".to_string())]
            .prop_map(|f| format!("a=framerate:{f}")),
        1 => "[ -~]{0,40}".prop_map(|c| format!("a=control:{c}")),
        1 => (number, "[ -~]{0,12}").prop_map(|(pt, rest)| format!("m=video 0 RTP/AVP {pt} {rest}")),
        1 => (prop::sample::select(vec!["a=", "m=", "s=", "a=control:", "x"]), 0usize..20_000, any::<char>())
            .prop_map(|(k, n, c)| format!("{k}{}", c.to_string().repeat(n))),
        1 => any::<String>(),
    ]
}

fn sdp_soup() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(sdp_line(), 0..40),
        prop::sample::select(vec!["\r\n", "\n", "\r", " \r\n"]),
        prop::option::of((any::<Index>(), any::<u8>())),
    )
        .prop_map(|(lines, eol, junk)| {
            let mut bytes = lines.join(eol).into_bytes();
            // Now and then one byte that may break UTF-8.
            if let Some((at, b)) = junk {
                bytes.insert(at.index(bytes.len() + 1), b);
            }
            bytes
        })
}

fn check_description(body: &[u8]) -> Result<(), TestCaseError> {
    match sdp::parse(body) {
        Ok(d) => {
            let text = std::str::from_utf8(body).unwrap();
            let lines = text.lines().count();
            let m_lines = text
                .lines()
                .filter(|l| l.trim().split_once('=').is_some_and(|(k, _)| k == "m"))
                .count();
            prop_assert!(body.len() <= MAX_SDP);
            prop_assert!(!d.media.is_empty() && d.media.len() <= lines);
            prop_assert_eq!(d.media.len(), m_lines);
            for m in &d.media {
                prop_assert!(m.encodings.len() <= lines);
                let _ = m.jpeg_payload_type();
                for &pt in &m.formats {
                    let _ = m.encoding(pt);
                }
                if let Some(c) = &m.control {
                    let url = sdp::join_control("rtsp://h/movie.Mjpeg/", c);
                    prop_assert!(url.starts_with("rtsp://") || url.starts_with("rtsps://"));
                }
            }
        }
        Err(SdpError::TooLarge(_)) => prop_assert!(body.len() > MAX_SDP),
        Err(SdpError::NotText) => prop_assert!(std::str::from_utf8(body).is_err()),
        Err(SdpError::NoMedia) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn sdp_parser_survives_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_description(&body)?;
    }

    #[test]
    fn sdp_parser_survives_line_soup(body in sdp_soup()) {
        check_description(&body)?;
    }

    #[test]
    fn our_offer_reads_back(
        name in "\\PC{0,80}|[\\x00-\\x7f]{0,80}",
        origin_ip in prop::sample::select(vec!["127.0.0.1", "192.168.1.20", "::1", "fe80::1"]),
        session_id in any::<u64>(),
        width in any::<u16>(),
        height in any::<u16>(),
        fps in any::<u32>(),
        duration in prop::option::of(0.0f64..1e9),
    ) {
        let offer = Offer {
            name,
            origin_ip: origin_ip.into(),
            session_id,
            width,
            height,
            fps,
            duration,
            live: false,
        };
        let d = sdp::parse(offer.to_sdp().as_bytes()).unwrap();
        prop_assert_eq!(d.session_control.as_deref(), Some("*"));
        prop_assert_eq!(d.media.len(), 1);
        let m = &d.media[0];
        prop_assert_eq!(m.jpeg_payload_type(), Some(PT_JPEG));
        prop_assert_eq!(m.dimensions, Some((width, height)));
        prop_assert_eq!(m.framerate, Some(f64::from(fps)));
        prop_assert_eq!(m.control.as_deref(), Some(TRACK_CONTROL));
    }

    #[test]
    fn join_control_never_panics(base in "\\PC{0,40}", control in "\\PC{0,40}") {
        let url = sdp::join_control(&base, &control);
        if control.starts_with("rtsp://") || control.starts_with("rtsps://") {
            prop_assert_eq!(url, control);
        } else if control.is_empty() || control == "*" {
            prop_assert_eq!(url, base);
        } else {
            prop_assert!(url.starts_with(base.trim_end_matches('/')));
            prop_assert!(url.ends_with(control.trim_start_matches('/')));
        }
    }
}

#[test]
fn sdp_over_the_size_limit_is_refused() {
    let mut body = b"v=0\r\nm=video 0 RTP/AVP 26\r\na=".to_vec();
    body.resize(MAX_SDP + 1, b'x');
    assert_eq!(sdp::parse(&body), Err(SdpError::TooLarge(MAX_SDP)));
    body.truncate(MAX_SDP);
    assert_eq!(sdp::parse(&body).unwrap().media.len(), 1);
}

// ------------------------------------------------------------ RFC 2435 ----

/// Where the next packet's sequence number comes from.
#[derive(Debug, Clone)]
enum SeqMode {
    /// One past the last accepted packet.
    Next,
    /// Skipping some (as if lost).
    Gap(u16),
    /// Whatever the packet says (real ones: their original number).
    Keep,
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    /// XOR payload bytes.
    Flip(Vec<(Index, u8)>),
    /// Cut the datagram (possibly into the RTP header).
    Truncate(Index),
    /// Overwrite the 24-bit fragment offset.
    Offset(u32),
    /// A restart type (64..127) with the restart header cut short.
    ShortRestart {
        type_code: u8,
        keep: usize,
    },
    /// Q >= 128 with a bogus table header (MBZ, length).
    BogusTables {
        q: u8,
        mbz: u8,
        len: u16,
    },
    /// Toggle the marker bit.
    Marker,
}

#[derive(Debug, Clone)]
enum Op {
    /// Arbitrary payload behind a valid PT 26 header.
    Raw {
        payload: Vec<u8>,
        marker: bool,
        seq: u16,
        /// Timestamp: None for the last accepted one, else a step from it.
        ts_step: Option<u32>,
    },
    /// A packet of the real stream (None: the one after the last real one
    /// used, so in-order runs happen), mutated.
    Real {
        index: Option<Index>,
        mutation: Mutation,
    },
}

/// RFC 2435-shaped payloads: plausible header fields, sometimes a whole
/// JPEG behind them, table headers whose length may lie.
fn rfc2435ish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0u32), 0u32..4096, 0u32..0x100_0000],
        prop_oneof![Just(0u8), Just(1), Just(64), Just(65), any::<u8>()],
        prop_oneof![1u8..128, Just(255u8), 128u8..255, Just(0)],
        (any::<u8>(), any::<u8>()),
        any::<[u8; 4]>(),
        (
            any::<bool>(),
            any::<u8>(),
            prop_oneof![Just(0u16), Just(64), Just(128), Just(192), any::<u16>()],
            0usize..300,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    )
        .prop_map(
            |(offset, type_code, q, (w8, h8), restart, (tables, mbz, len, n), data, soi)| {
                let mut p = vec![0];
                p.extend_from_slice(&offset.to_be_bytes()[1..]);
                p.extend_from_slice(&[type_code, q, w8, h8]);
                if (64..128).contains(&type_code) {
                    p.extend_from_slice(&restart);
                }
                if offset == 0 && q >= 128 && tables {
                    p.extend_from_slice(&[0, mbz]);
                    p.extend_from_slice(&len.to_be_bytes());
                    p.extend((0..n.min(len as usize)).map(|i| i as u8 | 1));
                }
                if soi {
                    p.extend_from_slice(&[0xff, 0xd8]);
                }
                p.extend_from_slice(&data);
                p
            },
        )
}

fn op() -> impl Strategy<Value = (SeqMode, Op)> {
    let seq_mode = prop_oneof![
        6 => Just(SeqMode::Next),
        1 => (1u16..50).prop_map(SeqMode::Gap),
        1 => Just(SeqMode::Keep),
    ];
    let mutation = prop_oneof![
        8 => Just(Mutation::None),
        2 => prop::collection::vec((any::<Index>(), 1u8..=255), 1..4).prop_map(Mutation::Flip),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop_oneof![0u32..0x100_0000, Just(0xff_ffff)].prop_map(Mutation::Offset),
        1 => (64u8..128, 8usize..12)
            .prop_map(|(type_code, keep)| Mutation::ShortRestart { type_code, keep }),
        1 => (128u8..=255, prop_oneof![Just(0u8), any::<u8>()], any::<u16>())
            .prop_map(|(q, mbz, len)| Mutation::BogusTables { q, mbz, len }),
        1 => Just(Mutation::Marker),
    ];
    let raw = (
        prop_oneof![prop::collection::vec(any::<u8>(), 0..64), rfc2435ish()],
        any::<bool>(),
        any::<u16>(),
        prop_oneof![
            Just(None),
            (0u32..10_000).prop_map(Some),
            any::<u32>().prop_map(Some)
        ],
    )
        .prop_map(|(payload, marker, seq, ts_step)| Op::Raw {
            payload,
            marker,
            seq,
            ts_step,
        });
    let real = (
        prop_oneof![3 => Just(None), 1 => any::<Index>().prop_map(Some)],
        mutation,
    )
        .prop_map(|(index, mutation)| Op::Real { index, mutation });
    (seq_mode, prop_oneof![1 => raw, 2 => real])
}

fn mutate(p: &mut Vec<u8>, m: &Mutation) {
    const H: usize = 12;
    match m {
        Mutation::None => {}
        Mutation::Flip(flips) => {
            for (at, x) in flips {
                let i = H + at.index(p.len() - H);
                p[i] ^= x;
            }
        }
        Mutation::Truncate(at) => p.truncate(at.index(p.len() + 1)),
        Mutation::Offset(o) => p[H + 1..H + 4].copy_from_slice(&o.to_be_bytes()[1..]),
        Mutation::ShortRestart { type_code, keep } => {
            p[H + 4] = *type_code;
            p.truncate(H + keep);
        }
        Mutation::BogusTables { q, mbz, len } => {
            let restart = (64..128).contains(&p[H + 4]);
            p[H + 5] = *q;
            let at = H + if restart { 12 } else { 8 };
            if p[H + 1..H + 4] == [0, 0, 0] && p.len() >= at + 4 {
                p[at + 1] = *mbz;
                p[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Mutation::Marker => p[1] ^= 0x80,
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn depacketizer_never_panics_and_frames_stay_well_formed(
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let real = real_packets();
        let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = Depacketizer::new(None);
        let (mut next_seq, mut last_ts) = (FIRST_SEQ, FIRST_TS);
        let mut next_real = 0usize;
        for (seq_mode, op) in ops {
            let (mut bytes, own_seq) = match op {
                Op::Raw { payload, marker, seq, ts_step } => {
                    let ts = last_ts.wrapping_add(ts_step.unwrap_or(0));
                    let mut h = header(seq, ts);
                    h.marker = marker;
                    let mut b = Vec::new();
                    h.write(&mut b);
                    b.extend_from_slice(&payload);
                    (b, seq)
                }
                Op::Real { index, mutation } => {
                    let i = index.map_or(next_real % real.len(), |i| i.index(real.len()));
                    next_real = i + 1;
                    let mut b = real[i].clone();
                    let seq = u16::from_be_bytes([b[2], b[3]]);
                    mutate(&mut b, &mutation);
                    (b, seq)
                }
            };
            let seq = match seq_mode {
                SeqMode::Next => next_seq,
                SeqMode::Gap(k) => next_seq.wrapping_add(k),
                SeqMode::Keep => own_seq,
            };
            if bytes.len() >= 4 {
                bytes[2..4].copy_from_slice(&seq.to_be_bytes());
            }
            let Ok(acc) = checker.check(&bytes) else {
                continue;
            };
            next_seq = acc.packet.header.sequence.wrapping_add(1);
            last_ts = acc.packet.header.timestamp;
            if let Ok(Some(frame)) = d.push(&acc) {
                check_frame(&frame)?;
                // The client decodes whatever comes out: that must not
                // panic either (garbage may decode to garbage or fail).
                let _ = decode_rgba(&frame.jpeg);
            }
        }
        // Whatever came before, a clean frame after it is rebuilt exactly.
        let (packets, _) = packetize(&frames()[2], 1000, next_seq, last_ts.wrapping_add(3000));
        let mut out = None;
        for p in &packets {
            let acc = checker.check(p).expect("the clean frame follows on");
            if let Ok(Some(f)) = d.push(&acc) {
                out = Some(f);
            }
        }
        let want = depacketize_all(&packetize(&frames()[2], 1000, 1, 1).0);
        let want = want.last().unwrap().as_ref().unwrap().as_ref().unwrap();
        prop_assert_eq!(&out.expect("the clean frame came out").jpeg, &want.jpeg);
    }
}

fn accept<'a>(checker: &mut RtpChecker, p: &'a [u8]) -> Accepted<'a> {
    checker.check(p).expect("accepted by the RTP checker")
}

#[test]
fn a_fragment_offset_past_the_frames_end_is_dropped() {
    let (packets, _) = packetize(&frames()[0], 600, 10, 1000);
    assert!(packets.len() >= 4, "{} packets", packets.len());
    let offset = |p: &[u8]| u32::from_be_bytes([0, p[13], p[14], p[15]]);
    for skew in [1i64, 7, 0xff_ffff, -1] {
        let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
        let mut d = Depacketizer::new(None);
        assert_eq!(d.push(&accept(&mut checker, &packets[0])), Ok(None));
        let mut bad = packets[1].clone();
        let moved = (i64::from(offset(&bad)) + skew).clamp(1, 0xff_ffff) as u32;
        bad[13..16].copy_from_slice(&moved.to_be_bytes()[1..]);
        assert_eq!(
            d.push(&accept(&mut checker, &bad)),
            Err(DropReason::Fragment),
            "offset {} for a frame {} bytes long",
            moved,
            offset(&packets[1])
        );
        // The frame is gone: the rest of it is dropped too, and nothing
        // comes out.
        for p in &packets[2..] {
            assert_eq!(d.push(&accept(&mut checker, p)), Err(DropReason::Fragment));
        }
    }
    // Unchanged, the same packets make the frame.
    let results = depacketize_all(&packets);
    assert!(matches!(results.last(), Some(Ok(Some(_)))));
}

#[test]
fn a_frame_cannot_grow_past_max_frame() {
    // Q 50 (tables computed, none in-band), 320x240, then 60000-byte
    // fragments with one timestamp until the limit.
    const FRAG: usize = 60_000;
    let packet = |seq: u16, offset: usize, marker: bool| {
        let mut p = Vec::with_capacity(12 + 8 + FRAG);
        let mut h = header(seq, 5);
        h.marker = marker;
        h.write(&mut p);
        p.push(0);
        p.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
        p.extend_from_slice(&[1, 50, 40, 30]);
        p.resize(12 + 8 + FRAG, 0x55);
        p
    };
    let mut checker = RtpChecker::new(PT_JPEG, SsrcRule::First);
    let mut d = Depacketizer::new(None);
    let mut fragments = 0;
    let refused_at = loop {
        let r = d.push(&accept(
            &mut checker,
            &packet(fragments as u16, fragments * FRAG, false),
        ));
        match r {
            Ok(None) => fragments += 1,
            Err(DropReason::FrameTooLarge) => break fragments,
            other => panic!("fragment {fragments}: {other:?}"),
        }
        assert!(fragments < 1000);
    };
    assert!(refused_at * FRAG <= MAX_FRAME && (refused_at + 1) * FRAG > MAX_FRAME - 1000);
    // The frame is dropped: its end makes nothing.
    let end = packet(refused_at as u16 + 1, (refused_at + 1) * FRAG, true);
    assert_eq!(
        d.push(&accept(&mut checker, &end)),
        Err(DropReason::Fragment)
    );

    // A frame ending just below the limit comes out, bounded.
    let base = refused_at as u16 + 10;
    let mut out = None;
    for i in 0..refused_at {
        let last = i + 1 == refused_at;
        let p = packet(base.wrapping_add(i as u16), i * FRAG, last);
        if let Some(f) = d.push(&accept(&mut checker, &p)).unwrap() {
            out = Some(f);
        }
    }
    let f = out.expect("a frame just under the limit");
    assert!(f.jpeg.len() <= MAX_FRAME + header_bound() + 2);
    assert!(f.jpeg.len() > MAX_FRAME - 2 * FRAG);
    assert!(f.jpeg.starts_with(&[0xff, 0xd8]) && f.jpeg.ends_with(&[0xff, 0xd9]));
}

// ------------------------------------------------ interleaved framing ----

#[derive(Debug, Clone)]
enum Item {
    /// `$`, channel, length, then bytes made from `seed`.
    Interleaved { channel: u8, len: usize, seed: u32 },
    Response {
        status: u16,
        cseq: u32,
        session: Option<u32>,
        body: Vec<u8>,
    },
    /// Blank lines between messages, which the decoder skips.
    Blank(&'static str),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (
            any::<u8>(),
            prop_oneof![4 => 0usize..64, 2 => 0usize..2000, 1 => 0usize..=65_535, 1 => Just(65_535)],
            any::<u32>(),
        )
            .prop_map(|(channel, len, seed)| Item::Interleaved { channel, len, seed }),
        3 => (
            100u16..1000,
            any::<u32>(),
            prop::option::of(any::<u32>()),
            prop::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(status, cseq, session, body)| Item::Response { status, cseq, session, body }),
        1 => prop::sample::select(vec!["\r\n", "\n", "\r\n\r\n"]).prop_map(Item::Blank),
    ]
}

fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The wire bytes of the items, and what each message decodes to.
fn wire(items: &[Item]) -> (Vec<u8>, Vec<Message>) {
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for item in items {
        match item {
            Item::Interleaved { channel, len, seed } => {
                let p = payload(*len, *seed);
                bytes.push(b'$');
                bytes.push(*channel);
                bytes.extend_from_slice(&(*len as u16).to_be_bytes());
                bytes.extend_from_slice(&p);
                want.push(Message::Interleaved {
                    channel: *channel,
                    payload: p,
                });
            }
            Item::Response {
                status,
                cseq,
                session,
                body,
            } => {
                let mut r = Response::new(*status, Dialect::Standard);
                r.headers.push("CSeq", cseq.to_string());
                if let Some(s) = session {
                    r.headers.push("Session", format!("{s};timeout=60"));
                }
                r.body = body.clone();
                bytes.extend_from_slice(&r.to_bytes());
                if !body.is_empty() {
                    // The decoder reads back the header the writer added.
                    r.headers.push("Content-Length", body.len().to_string());
                }
                want.push(Message::Response(r));
            }
            Item::Blank(s) => bytes.extend_from_slice(s.as_bytes()),
        }
    }
    (bytes, want)
}

fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> (Vec<Message>, usize) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain([&bytes.len()]) {
        d.push(&bytes[at..c]);
        at = c;
        while let Some(m) = d.poll(false) {
            out.push(m.expect("well-formed messages parse"));
        }
    }
    (out, d.pending())
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn interleaved_frames_decode_the_same_however_split(
        items in prop::collection::vec(item(), 0..12),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        bytewise_prefix in 0usize..64,
    ) {
        let (bytes, want) = wire(&items);
        let whole = decode_in_pieces(&bytes, &[]);
        prop_assert_eq!(&whole.0, &want);
        prop_assert_eq!(whole.1, 0);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        // The first bytes one at a time: every header split point.
        cuts.extend(0..bytewise_prefix.min(bytes.len()));
        cuts.sort_unstable();
        let split = decode_in_pieces(&bytes, &cuts);
        prop_assert_eq!(&split.0, &want);
        prop_assert_eq!(split.1, 0);
    }
}

// --------------------------------------------------------------- RTCP ----

/// A valid RTCP packet: type, SSRC and extra 32-bit words.
fn rtcp_packet() -> impl Strategy<Value = (u8, u32, Vec<u8>)> {
    (
        prop_oneof![Just(PT_SR), Just(rtcp::PT_RR), 192u8..=223],
        any::<u32>(),
        0u8..32,
        prop::collection::vec(any::<u8>(), 0..160),
    )
        .prop_map(|(pt, ssrc, count, extra)| {
            let words = extra.len() / 4;
            let mut p = vec![0x80 | (count & 31), pt];
            p.extend_from_slice(&(1 + words as u16).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&extra[..words * 4]);
            (pt, ssrc, p)
        })
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn rtcp_parse_compound_never_panics(buf in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Some(packets) = rtcp::parse_compound(&buf) {
            prop_assert!(!packets.is_empty() && packets.len() <= buf.len() / 8);
            for p in packets {
                prop_assert!((192..=223).contains(&p.packet_type));
            }
        }
    }

    #[test]
    fn rtcp_compounds_read_back_and_cut_ones_are_refused(
        packets in prop::collection::vec(rtcp_packet(), 1..8),
        cut in any::<Index>(),
        flip in prop::option::of((any::<Index>(), 1u8..=255)),
    ) {
        let bytes: Vec<u8> = packets.iter().flat_map(|p| p.2.clone()).collect();
        let read = rtcp::parse_compound(&bytes).expect("a valid compound");
        prop_assert_eq!(read.len(), packets.len());
        for (r, (pt, ssrc, p)) in read.iter().zip(&packets) {
            prop_assert_eq!(r.packet_type, *pt);
            prop_assert_eq!(r.ssrc, *ssrc);
            let middle = (*pt == PT_SR && p.len() >= 16)
                .then(|| u32::from_be_bytes([p[10], p[11], p[12], p[13]]));
            prop_assert_eq!(r.sr_ntp_middle, middle);
        }
        // Cut inside the last packet: refused, not misread.
        let last = packets.last().unwrap().2.len();
        let n = bytes.len() - 1 - cut.index(last - 1);
        prop_assert_eq!(rtcp::parse_compound(&bytes[..n]), None);
        if let Some((at, x)) = flip {
            let mut b = bytes.clone();
            let i = at.index(b.len());
            b[i] ^= x;
            let _ = rtcp::parse_compound(&b);
        }
    }
}

// ---------------------------------------------------------- round trip ----

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn real_frames_round_trip_pixel_for_pixel(
        which in any::<Index>(),
        max_payload in 64usize..1500,
        seq in prop_oneof![any::<u16>(), 65_000u16..=65_535],
        ts in any::<u32>(),
        over_tcp in any::<bool>(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let frame = &frames()[which.index(frames().len())];
        let source = rtp_jpeg::carriable(&frame.jpeg).unwrap();
        let (packets, next) = packetize(frame, max_payload, seq, ts);
        prop_assert_eq!(next, seq.wrapping_add(packets.len() as u16));
        // The first packet carries the 128 bytes of tables whatever the
        // limit, and at least one byte of scan.
        let first_min = 8 + 4 + 4 + 128 + 1;
        for p in &packets {
            prop_assert!(p.len() <= 12 + max_payload.max(first_min), "{} bytes", p.len());
        }
        let packets = if over_tcp {
            // RTP over the RTSP connection: `$` frames on channel 0, the
            // stream split anywhere.
            let mut bytes = Vec::new();
            for p in &packets {
                bytes.extend_from_slice(&[b'$', 0]);
                bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
                bytes.extend_from_slice(p);
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let (messages, pending) = decode_in_pieces(&bytes, &cuts);
            prop_assert_eq!(pending, 0);
            messages
                .into_iter()
                .map(|m| match m {
                    Message::Interleaved { channel: 0, payload } => payload,
                    other => panic!("{other:?}"),
                })
                .collect()
        } else {
            packets
        };
        let results = depacketize_all(&packets);
        let (last, rest) = results.split_last().unwrap();
        prop_assert!(rest.iter().all(|r| *r == Ok(None)), "{}: {:?}", frame.name, rest);
        let rebuilt = last.clone().unwrap().expect("the frame comes out with the last packet");
        prop_assert_eq!(rebuilt.seq, seq);
        prop_assert_eq!(rebuilt.timestamp, ts);
        let again = rtp_jpeg::carriable(&rebuilt.jpeg).unwrap();
        prop_assert_eq!(
            (again.layout, again.width, again.height, again.restart_interval),
            (source.layout, source.width, source.height, source.restart_interval)
        );
        prop_assert_eq!(again.tables, source.tables);
        prop_assert!(again.scan == source.scan, "{}: scan differs", frame.name);
        let pixels = decode_rgba(&rebuilt.jpeg).unwrap();
        prop_assert!(pixels == frame.pixels, "{}: pixels differ", frame.name);
    }
}
