//! UI tests of the "Check a server" and "Check a client" panels with
//! egui_kittest, no display: the form's button gives the command the app
//! would start, and the check's events are fed by hand; the last but one
//! runs a real client check from the panel on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use streamlab::app::{AppOptions, CheckCommand, CheckKind, CheckPanel, PlayerApp, Serve};
use streamlab::net::check::{CheckEvent, ClientCheckOptions};
use streamlab::protocol::check::{CheckDialect, CheckId, CheckResult, Note, Report, WireEntry};

/// The panel and the commands its buttons gave.
type State = (CheckPanel, Vec<CheckCommand>);

fn harness(kind: CheckKind) -> Harness<'static, State> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 500.0))
        .build_ui_state(
            |ui, (panel, said): &mut State| said.extend(panel.ui(ui)),
            (CheckPanel::new(kind), Vec::new()),
        );
    h.run();
    h
}

/// Whether some label shows `text`.
fn shown(h: &Harness<'static, State>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn failing_report() -> Report {
    let ids = CheckId::server_checks(CheckDialect::Lab);
    Report {
        checks: ids
            .into_iter()
            .map(|id| CheckResult {
                id,
                ok: id != CheckId::RtpVersion,
                seen: if id == CheckId::RtpVersion {
                    "byte 0 = 0x40: V=1 (bits 0-1), in packet 1 (sequence 1)".into()
                } else {
                    "fine".into()
                },
                expected: id.expected(CheckDialect::Lab),
                packet: (id == CheckId::RtpVersion)
                    .then(|| vec![0x40, 26, 0, 1, 0x6a, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xd8]),
            })
            .collect(),
    }
}

#[test]
fn run_check_asks_for_a_server_check_with_the_form() {
    let mut h = harness(CheckKind::Server);
    h.get_by_label("port").set_text_value_accesskit("5544");
    h.run();
    h.get_by_label("Run check").click();
    h.run();
    let said = &h.state().1;
    assert_eq!(said.len(), 1, "{said:?}");
    let CheckCommand::Server(cfg) = &said[0] else {
        panic!("{said:?}")
    };
    assert_eq!((cfg.host.as_str(), cfg.port), ("127.0.0.1", 5544));
    assert_eq!(cfg.file, "movie.Mjpeg");
    assert_eq!(cfg.dialect, CheckDialect::Lab);
}

#[test]
fn a_bad_port_is_said_and_nothing_starts() {
    let mut h = harness(CheckKind::Server);
    h.get_by_label("port").set_text_value_accesskit("x");
    h.run();
    h.get_by_label("Run check").click();
    h.run();
    assert!(h.state().1.is_empty());
    assert!(shown(&h, "is not a port number"));
}

#[test]
fn the_checklist_the_failed_packet_and_the_notes_beside_each_message() {
    let mut h = harness(CheckKind::Server);
    let (tx, rx) = crossbeam_channel::unbounded();
    h.state_mut().0.attach(rx, Arc::new(AtomicBool::new(false)));
    let now = Instant::now();
    tx.send(CheckEvent::Wire(WireEntry {
        at: now,
        sent: true,
        text: "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5008".into(),
        notes: vec![],
    }))
    .unwrap();
    tx.send(CheckEvent::Wire(WireEntry {
        at: now,
        sent: false,
        text: "RTSP/1.0 200 OK\nSession: 123456\nCSeq: 1".into(),
        notes: vec![Note::fail(
            CheckId::RtspLineOrder,
            "line 2 is \"Session: 123456\"",
        )],
    }))
    .unwrap();
    // A running check keeps asking for repaints (its events come from
    // another thread): step instead of waiting to settle.
    h.run_steps(4);
    // The message and its note, while the check still runs.
    assert!(shown(&h, "RTSP/1.0 200 OK"));
    assert!(shown(&h, "FAIL rtsp.line_order: line 2 is"));
    assert!(
        h.query_by_label("Stop").is_some(),
        "a running check can be stopped"
    );

    tx.send(CheckEvent::Finished(failing_report())).unwrap();
    h.run();
    assert!(
        h.query_by_label("Run check").is_some(),
        "finished: can run again"
    );
    let passed = CheckId::server_checks(CheckDialect::Lab).len() - 1;
    let summary = format!("{passed} passed, 1 failed");
    assert!(shown(&h, &summary), "{summary}");
    // The failed check is picked: what was seen, the handout's words, and
    // its packet's header in the inspector's table with V marked.
    assert!(shown(&h, "byte 0 = 0x40: V=1"));
    assert!(shown(&h, "You must set this to 2"));
    assert!(h.query_by_label("V = 1").is_some());
    assert!(shown(&h, "refused here"));
}

#[test]
fn check_a_client_listens_with_the_handout_chosen() {
    let mut h = harness(CheckKind::Client);
    h.get_by_label("Listen on port")
        .set_text_value_accesskit("0");
    h.get_by_label("TPC-3").click();
    h.run();
    h.get_by_label("Listen").click();
    h.run();
    let said = &h.state().1;
    let [CheckCommand::Client(opts)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(opts.bind.port(), 0);
    assert_eq!(opts.dialect, CheckDialect::Tpc3);
    assert!(opts.file.is_none(), "empty: the sample");
}

/// The panel running a real client check on 127.0.0.1, with a client
/// written the lab's way: the notes and the checklist arrive.
#[test]
fn a_live_client_check_from_the_panel() {
    let mut panel = CheckPanel::new(CheckKind::Client);
    panel.start(CheckCommand::Client(ClientCheckOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ClientCheckOptions::default()
    }));
    assert!(panel.is_running());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !panel.status.starts_with("serving") {
        assert!(
            Instant::now() < deadline,
            "the check never said where it listens"
        );
        panel.wait_for_event(Duration::from_secs(1));
    }
    let port: u16 = panel
        .status
        .split("on port ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("the port in the status");
    let mut c = common::LabClient::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(c.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 200);
    assert!(c.recv_rtp(Duration::from_secs(3)).is_some());
    assert_eq!(c.request("TEARDOWN", "movie.Mjpeg").status, 200);
    drop(c.rtsp);
    while panel.report.is_none() {
        assert!(
            Instant::now() < deadline,
            "no checklist after the client left"
        );
        panel.wait_for_event(Duration::from_secs(1));
    }
    let report = panel.report.as_ref().unwrap();
    assert_eq!(report.failed(), 0, "{report:#?}");
    assert!(!panel.is_running());
    let setup = panel
        .wire
        .iter()
        .find(|w| w.text.starts_with("SETUP"))
        .unwrap();
    assert!(
        setup
            .notes
            .iter()
            .any(|n| n.id == CheckId::ReqTransport && n.ok)
    );
}

#[test]
fn the_window_has_both_check_tabs() {
    let app = PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        ..AppOptions::default()
    });
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 860.0))
        .build_ui_state(|ui, app: &mut PlayerApp| app.show(ui), app);
    h.run();
    h.get_by_label("Check a server").click();
    h.run();
    assert!(h.query_by_label("Run check").is_some());
    h.get_by_label("Check a client").click();
    h.run();
    assert!(h.query_by_label("Listen").is_some());
}
