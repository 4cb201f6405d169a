//! UI tests of the analysis panel and the RTP inspector (egui_kittest, no
//! display): a known packet decoded field by field, the counters shown,
//! the frames CSV written, and the plots filled by a real session.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use streamlab::app::{AppOptions, PlayerApp, Serve};
use streamlab::net::client::{
    ClientEvent, ClientStats, FrameRecord, FrameStatus, NetStats, PacketRecord, PacketStatus,
    Records,
};
use streamlab::protocol::State;
use streamlab::protocol::analysis::HEAD_BYTES;
use streamlab::protocol::rtp::DropReason;

fn open(app: PlayerApp, tab: &str) -> Harness<'static, PlayerApp> {
    let mut h = Harness::<PlayerApp>::builder()
        .with_size(egui::vec2(1280.0, 900.0))
        .with_max_steps(100)
        .build_ui_state(|ui, app: &mut PlayerApp| app.show(ui), app);
    h.run();
    h.get_by_label(tab).click();
    h.run();
    h
}

fn detached() -> PlayerApp {
    PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        ..AppOptions::default()
    })
}

fn packet(at: Instant, bytes: &[u8], status: PacketStatus) -> PacketRecord {
    let mut head = [0u8; HEAD_BYTES];
    head[..bytes.len()].copy_from_slice(bytes);
    PacketRecord {
        at,
        seq: u16::from_be_bytes([bytes[2], bytes[3]]),
        timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        marker: bytes[1] & 0x80 != 0,
        size: 1400,
        status,
        head,
        head_len: bytes.len() as u8,
    }
}

fn shows(h: &Harness<'_, PlayerApp>, text: &str) -> bool {
    h.query_by_label(text).is_some()
}

#[test]
fn the_inspector_decodes_a_known_packet_and_marks_the_refused_field() {
    let now = Instant::now();
    let mut app = detached();
    // V=2, M=1, PT=26, seq 4660, ts 16909060, SSRC 0xDEADBEEF, then an
    // RFC 2435 main header: type 1, Q 80, 640x480, offset 0.
    let mut bytes = vec![0x80, 0x9a, 0x12, 0x34, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef];
    bytes.extend_from_slice(&[0, 0, 0, 0, 1, 80, 80, 60]);
    app.handle_event(ClientEvent::Records(Records {
        origin: Some(now),
        packets: vec![packet(now, &bytes, PacketStatus::Dropped(DropReason::Ssrc))],
        frames: vec![],
    }));
    let h = open(app, "RTP inspector");
    for field in [
        "V = 2",
        "P = 0",
        "M = 1",
        "PT = 26",
        "Sequence number = 4660",
        "Timestamp = 16909060",
        "SSRC = 3735928559",
        "Width = 80",
        "Height = 60",
        "Q = 80",
    ] {
        assert!(shows(&h, field), "{field} is not shown");
    }
    assert!(
        shows(&h, "the same in every packet: refused here"),
        "the SSRC check's refusal is marked"
    );
    assert!(
        shows(&h, "80 9A 12 34 01 02 03 04 DE AD BE EF"),
        "the 12 bytes in hex"
    );
}

#[test]
fn the_analysis_panel_shows_the_counters_and_exports_the_frames() {
    let now = Instant::now();
    let mut app = detached();
    app.handle_event(ClientEvent::State {
        state: State::Ready,
        session: Some("1".into()),
    });
    app.handle_event(ClientEvent::Stats(ClientStats {
        net: NetStats {
            expected: 200,
            received: 197,
            lost: 3,
            loss_percent: 1.5,
            duplicates: 2,
            reordered: 4,
            jitter_ms: 1.25,
            frame_jitter_ms: 0.5,
            ..NetStats::default()
        },
        underruns: 1,
        ..ClientStats::default()
    }));
    let frame = |index, status, presented| FrameRecord {
        index,
        rtp_timestamp: 4500 * index as u32,
        first_seq: 3 * index as u16,
        last_seq: 3 * index as u16 + 2,
        packets: 3,
        bytes: 3000,
        arrival: now + Duration::from_millis(50 * index),
        presented,
        status,
    };
    app.handle_event(ClientEvent::Records(Records {
        origin: Some(now),
        packets: vec![],
        frames: vec![
            frame(2, FrameStatus::Incomplete, None),
            frame(
                1,
                FrameStatus::Presented,
                Some(now + Duration::from_millis(60)),
            ),
        ],
    }));
    let mut h = open(app, "Analysis");
    assert!(shows(&h, "3 (1.50%; last second 0.00%)"));
    assert!(shows(&h, "1.25 ms"), "jitter per packet");
    assert!(shows(&h, "0.50 ms"), "jitter per frame");

    let dir = common::temp_dir("analysis-export");
    let path = dir.join("frames.csv");
    export_to(&mut h, &path);
    assert!(
        until(&mut h, |h| h.query_by_label_contains("Wrote ").is_some()),
        "the export says where it wrote"
    );
    let csv = std::fs::read_to_string(&path).expect("the CSV was written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "frame,rtp_timestamp,first_seq,last_seq,packets,bytes,arrival_ms,presented_ms,status"
    );
    assert_eq!(lines[1], "1,4500,3,5,3,3000,50.000,60.000,presented");
    assert_eq!(lines[2], "2,9000,6,8,3,3000,100.000,,incomplete");
}

/// Type `path` into the export field and press Export CSV.
fn export_to(h: &mut Harness<'_, PlayerApp>, path: &Path) {
    h.get_by_label("Frames CSV:")
        .set_text_value_accesskit(&path.display().to_string());
    h.run();
    h.get_by_label("Export CSV").click();
    h.run();
}

/// Run the UI until `done` holds (the export worker answers over a
/// channel), for up to 10 s.
fn until(h: &mut Harness<'_, PlayerApp>, done: impl Fn(&Harness<'_, PlayerApp>) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        h.run();
        if done(h) {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

#[test]
fn a_csv_that_cannot_be_written_says_so() {
    let mut h = open(detached(), "Analysis");
    export_to(&mut h, Path::new("/nonexistent-dir/frames.csv"));
    assert!(
        until(&mut h, |h| h
            .query_by_label_contains("Cannot write")
            .is_some()),
        "no error shown for an unwritable CSV path"
    );
}

#[test]
fn a_real_session_fills_the_plots_and_the_inspector() {
    let server = common::server(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"), 50);
    let app = PlayerApp::new(
        &egui::Context::default(),
        AppOptions {
            serve: Serve::Nothing,
            connect: Some(streamlab::net::client::ClientConfig {
                rtsp_port: server.local_addr().port(),
                file: "sample.mjpeg".into(),
                ..Default::default()
            }),
            ..AppOptions::default()
        },
    );
    let mut h = open(app, "Analysis");
    h.get_by_label("SETUP").click();
    let wait = |h: &mut Harness<'_, PlayerApp>, what: &str, f: &dyn Fn(&PlayerApp) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f(h.state()) {
            assert!(Instant::now() < deadline, "never: {what}");
            h.state_mut().wait_for_event(Duration::from_millis(100));
            h.run();
        }
    };
    wait(&mut h, "READY", &|a| a.view().state == State::Ready);
    h.get_by_label("PLAY").click();
    wait(&mut h, "plot points and packets", &|a| {
        a.view().history.points().count() >= 3 && a.view().history.packets.len() > 20
    });
    let s = &h.state().view().stats;
    assert!(
        s.net.received > 20 && s.net.payload_kbps > 0.0,
        "{:?}",
        s.net
    );
    assert_eq!(s.net.lost, 0, "loopback loses nothing");
    assert!(s.frames_presented > 0);
    h.get_by_label("RTP inspector").click();
    h.run();
    assert!(shows(&h, "V = 2"), "the newest packet is decoded");
    h.get_by_label("TEARDOWN").click();
    wait(&mut h, "INIT", &|a| a.view().state == State::Init);
}
