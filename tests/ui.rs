//! UI tests of the player window with egui_kittest: no display, no network.
//! Engine events are fed by hand into a detached app, and the commands the
//! buttons produce are read back from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use streamlab::app::{AppOptions, PlayerApp, Serve};
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientError, ClientEvent, ClientStats, DecodedFrame, Direction,
    WireMessage,
};
use streamlab::protocol::State;

const BUTTONS: [&str; 4] = ["SETUP", "PLAY", "PAUSE", "TEARDOWN"];

fn harness(app: PlayerApp) -> Harness<'static, PlayerApp> {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_ui_state(|ui, app: &mut PlayerApp| app.show(ui), app);
    harness.run();
    harness
}

fn detached() -> PlayerApp {
    PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        ..AppOptions::default()
    })
}

fn state_event(state: State) -> ClientEvent {
    ClientEvent::State {
        state,
        session: (state != State::Init).then(|| "123456".to_owned()),
    }
}

/// A detached app already in `state`, as if the engine had reported it.
fn fixture(state: State) -> Harness<'static, PlayerApp> {
    let mut app = detached();
    app.handle_event(state_event(state));
    harness(app)
}

/// Feed an event as the engine would, then let the UI settle.
fn feed(harness: &mut Harness<'_, PlayerApp>, event: ClientEvent) {
    harness.state_mut().handle_event(event);
    harness.run();
}

fn enabled(harness: &Harness<'_, PlayerApp>, label: &str) -> bool {
    !harness.get_by_label(label).accesskit_node().is_disabled()
}

fn enabled_buttons(harness: &Harness<'_, PlayerApp>) -> [bool; 4] {
    BUTTONS.map(|b| enabled(harness, b))
}

fn click(harness: &mut Harness<'_, PlayerApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run();
}

fn has_label(harness: &Harness<'_, PlayerApp>, label: &str) -> bool {
    harness.query_by_label(label).is_some()
}

fn frame(number: u64, seq: u16) -> ClientEvent {
    let (width, height) = (4u32, 2u32);
    let rgba = (0..width * height)
        .flat_map(|i| [(i * 30) as u8, 128, 255 - (i * 30) as u8, 255])
        .collect();
    ClientEvent::Frame(DecodedFrame {
        width,
        height,
        rgba: Arc::new(rgba),
        seq,
        rtp_timestamp: 90_000 * number as u32,
        number,
    })
}

fn wire(millis: u64, direction: Direction, text: &str) -> ClientEvent {
    ClientEvent::Wire(WireMessage {
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + millis),
        direction,
        text: text.to_owned(),
    })
}

fn sample_clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample.mjpeg")
}

#[test]
fn buttons_follow_the_rtsp_state() {
    for (state, expected) in [
        (State::Init, [true, false, false, false]),
        (State::Ready, [false, true, false, true]),
        (State::Playing, [false, false, true, true]),
    ] {
        let harness = fixture(state);
        assert_eq!(enabled_buttons(&harness), expected, "in {state}");
    }
}

#[test]
fn play_in_ready_sends_play_and_waits_for_the_reply() {
    let mut harness = fixture(State::Ready);
    click(&mut harness, "PLAY");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Play]
    );
    // In flight: PLAY cannot be sent twice, TEARDOWN can abandon it.
    assert_eq!(enabled_buttons(&harness), [false, false, false, true]);
    assert!(has_label(&harness, "waiting for the reply to PLAY"));

    feed(&mut harness, state_event(State::Playing));
    assert_eq!(enabled_buttons(&harness), [false, false, true, true]);
    assert!(!has_label(&harness, "waiting for the reply to PLAY"));
}

#[test]
fn setup_in_init_sends_setup() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "SETUP");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Setup]
    );
    assert_eq!(enabled_buttons(&harness), [false; 4]);
    feed(&mut harness, state_event(State::Ready));
    assert_eq!(enabled_buttons(&harness), [false, true, false, true]);
}

#[test]
fn clicking_a_disabled_button_sends_nothing() {
    for state in [State::Init, State::Ready, State::Playing] {
        let mut harness = fixture(state);
        let before = enabled_buttons(&harness);
        assert!(
            before.contains(&false),
            "some button is disabled in {state}"
        );
        for (button, was_enabled) in BUTTONS.iter().zip(before) {
            if !was_enabled {
                click(&mut harness, button);
            }
        }
        assert!(
            harness.state_mut().take_sent_commands().is_empty(),
            "in {state}"
        );
        assert_eq!(harness.state().view().state, state);
    }
}

#[test]
fn state_label_follows_state_events() {
    let mut harness = fixture(State::Init);
    assert!(has_label(&harness, "INIT"));
    for state in [State::Ready, State::Playing, State::Ready, State::Init] {
        feed(&mut harness, state_event(state));
        assert!(has_label(&harness, state.name()), "{state} shown");
        for other in [State::Init, State::Ready, State::Playing] {
            if other != state {
                assert!(!has_label(&harness, other.name()), "{other} hidden");
            }
        }
    }
    feed(&mut harness, state_event(State::Ready));
    assert!(has_label(&harness, "123456"), "session id shown");
}

#[test]
fn frame_counter_rises_with_frames() {
    let mut harness = fixture(State::Playing);
    assert!(has_label(&harness, "Waiting for video..."));
    feed(&mut harness, frame(41, 1041));
    assert!(has_label(&harness, "41"));
    assert!(has_label(&harness, "1041"));
    assert!(has_label(&harness, "4 x 2"));
    assert!(!has_label(&harness, "Waiting for video..."));

    feed(&mut harness, frame(42, 1042));
    assert!(has_label(&harness, "42"));
    assert!(has_label(&harness, "1042"));
    assert!(!has_label(&harness, "41"));
    assert_eq!(harness.state().view().frame.map(|f| f.number), Some(42));
}

#[test]
fn hint_before_any_frame() {
    let harness = fixture(State::Init);
    assert!(has_label(&harness, "Press SETUP, then PLAY"));
    let harness = fixture(State::Ready);
    assert!(has_label(&harness, "Press PLAY"));
}

#[test]
fn stats_are_shown() {
    let mut harness = fixture(State::Playing);
    let stats = ClientStats {
        frames: 100,
        bytes: 853_500,
        packets: 1234,
        fps: 19.8,
        lost: 4,
        dropped: BTreeMap::from([("wrong SSRC".to_owned(), 2), ("bad version".to_owned(), 1)]),
        decode_errors: 5,
        first_frame_ms: Some(87.4),
        ssrc: Some(123456),
        frames_skipped: 0,
        reordered: 17,
        kernel_drops: Some(29),
        reports_sent: 31,
    };
    feed(&mut harness, ClientEvent::Stats(stats));
    for value in [
        "1234",
        "19.8",
        "4",
        "3",
        "5",
        "87 ms after PLAY",
        "123456 (0x0001E240)",
        "17",
        "29",
        "31",
    ] {
        assert!(has_label(&harness, value), "{value} shown");
    }
}

#[test]
fn error_event_is_shown_until_dismissed() {
    let mut harness = fixture(State::Init);
    let error = ClientError::Connect {
        addr: "127.0.0.1:8554".to_owned(),
        reason: "connection refused".to_owned(),
    };
    feed(&mut harness, ClientEvent::Error(error.clone()));
    let shown = format!("Error: {error}");
    assert!(has_label(&harness, &shown));
    // Still there a few frames later: it is not a toast.
    harness.run_steps(5);
    assert!(has_label(&harness, &shown));

    click(&mut harness, "Dismiss");
    assert!(!has_label(&harness, &shown));
    assert!(harness.state().view().errors.is_empty());
}

#[test]
fn error_clears_when_the_next_request_succeeds() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "SETUP");
    feed(
        &mut harness,
        ClientEvent::Error(ClientError::NoReply {
            method: "SETUP".to_owned(),
            seconds: 5,
        }),
    );
    let shown = "Error: the server did not answer SETUP within 5 s";
    assert!(has_label(&harness, shown));
    // The error ended the request: SETUP can be tried again.
    assert!(enabled(&harness, "SETUP"));
    click(&mut harness, "SETUP");
    feed(&mut harness, state_event(State::Ready));
    assert!(!has_label(&harness, shown));
}

#[test]
fn wire_log_shows_sent_and_received_messages() {
    let mut harness = fixture(State::Init);
    assert!(has_label(
        &harness,
        "RTSP messages appear here as they are sent and received."
    ));
    let request = "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5008";
    let reply = "RTSP/1.0 200 OK\r\nCSeq: 1\r\nSession: 123456\r\n\r\n";
    feed(&mut harness, wire(0, Direction::Sent, request));
    feed(&mut harness, wire(20, Direction::Received, reply));
    feed(&mut harness, state_event(State::Ready));

    assert!(has_label(&harness, request));
    assert!(has_label(
        &harness,
        "RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456"
    ));
    assert!(has_label(&harness, "-> sent"));
    assert!(has_label(&harness, "<- received"));
    assert!(has_label(&harness, "+0.000 s"));
    assert!(has_label(&harness, "+0.020 s"));
    assert!(has_label(&harness, "2 RTSP messages"));
    assert_eq!(harness.state().view().last_cseq, Some(1));

    feed(
        &mut harness,
        wire(
            40,
            Direction::Sent,
            "PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
        ),
    );
    assert_eq!(harness.state().view().last_cseq, Some(2));
    click(&mut harness, "Clear");
    assert!(!has_label(&harness, request));
}

#[test]
fn invalid_port_shows_an_error_and_sends_nothing() {
    let mut harness = fixture(State::Init);
    harness.get_by_label("RTSP port").focus();
    harness.run();
    harness.get_by_label("RTSP port").type_text("x");
    harness.run();
    click(&mut harness, "SETUP");
    assert!(harness.state_mut().take_sent_commands().is_empty());
    assert!(
        harness
            .query_by_label_contains("RTSP port must be a number")
            .is_some()
    );
}

#[test]
fn connection_fields_are_labelled_and_locked_during_a_session() {
    let harness = fixture(State::Init);
    for field in ["Host", "RTSP port", "RTP port", "File", "Path to serve"] {
        assert!(enabled(&harness, field), "{field} editable in INIT");
    }
    let harness = fixture(State::Playing);
    for field in ["Host", "RTSP port", "RTP port", "File"] {
        assert!(!enabled(&harness, field), "{field} locked in PLAYING");
    }
}

#[test]
fn connect_option_fills_the_connection_bar() {
    let app = PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        connect: Some(ClientConfig {
            host: "lab.example.org".to_owned(),
            rtsp_port: 1025,
            rtp_port: 25000,
            file: "movie.Mjpeg".to_owned(),
            ..ClientConfig::default()
        }),
        autoplay: false,
    });
    let harness = harness(app);
    let value = |label| harness.get_by_label(label).value();
    assert_eq!(value("Host").as_deref(), Some("lab.example.org"));
    assert_eq!(value("RTSP port").as_deref(), Some("1025"));
    assert_eq!(value("RTP port").as_deref(), Some("25000"));
    assert_eq!(value("File").as_deref(), Some("movie.Mjpeg"));
}

#[test]
fn autoplay_presses_setup_then_play() {
    let mut app = PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        connect: None,
        autoplay: true,
    });
    assert_eq!(app.take_sent_commands(), [ClientCommand::Setup]);
    app.handle_event(state_event(State::Ready));
    assert_eq!(app.take_sent_commands(), [ClientCommand::Play]);
    app.handle_event(state_event(State::Playing));
    app.handle_event(state_event(State::Ready));
    assert!(app.take_sent_commands().is_empty(), "only once");
}

#[test]
fn serve_path_field_serves_the_file() {
    let mut harness = fixture(State::Init);
    assert!(!enabled(&harness, "Serve"), "nothing typed yet");
    let path = sample_clip();
    harness.get_by_label("Path to serve").focus();
    harness.run();
    harness
        .get_by_label("Path to serve")
        .type_text(&path.display().to_string());
    harness.run();
    click(&mut harness, "Serve");
    assert_eq!(harness.state_mut().take_serve_requests(), [path]);
}

#[test]
fn serving_a_missing_file_says_so() {
    let mut harness = fixture(State::Init);
    harness.get_by_label("Path to serve").focus();
    harness.run();
    harness
        .get_by_label("Path to serve")
        .type_text("/no/such/dir/movie.Mjpeg");
    harness.run();
    click(&mut harness, "Serve");
    assert!(harness.state_mut().take_serve_requests().is_empty());
    assert!(has_label(
        &harness,
        "Error: Cannot serve /no/such/dir/movie.Mjpeg: there is no such file."
    ));
}

#[derive(Debug)]
struct DroppedPath(PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn dropped_file_is_served() {
    let mut harness = fixture(State::Init);
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(sample_clip())));
    harness.run();
    assert_eq!(harness.state_mut().take_serve_requests(), [sample_clip()]);
}

#[test]
fn stream_end_is_announced() {
    let mut harness = fixture(State::Playing);
    feed(&mut harness, ClientEvent::StreamEnded);
    assert!(
        harness
            .query_by_label_contains("the stream seems to have ended")
            .is_some()
    );
}

#[test]
fn engine_stop_returns_to_init() {
    let mut harness = fixture(State::Playing);
    feed(&mut harness, ClientEvent::Stopped);
    assert!(has_label(&harness, "INIT"));
    assert_eq!(enabled_buttons(&harness), [true, false, false, false]);
}

/// Step the UI, taking engine events as they come, until `done` or 10 s.
fn wait_until(harness: &mut Harness<'_, PlayerApp>, what: &str, done: impl Fn(&PlayerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(harness.state()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; errors: {:?}",
            harness.state().view().errors
        );
        harness
            .state_mut()
            .wait_for_event(Duration::from_millis(100));
        harness.step();
    }
    harness.run();
}

#[test]
fn ui_plays_from_embedded_server() {
    let app = PlayerApp::new(&egui::Context::default(), AppOptions::default());
    assert!(app.view().errors.is_empty(), "{:?}", app.view().errors);
    assert!(app.view().server.is_some());
    let mut harness = harness(app);

    click(&mut harness, "SETUP");
    wait_until(&mut harness, "READY", |app| {
        app.view().state == State::Ready
    });
    assert!(has_label(&harness, "READY"));

    click(&mut harness, "PLAY");
    wait_until(&mut harness, "frame 6", |app| {
        app.view().frame.is_some_and(|f| f.number > 5)
    });
    assert!(has_label(&harness, "PLAYING"));

    click(&mut harness, "PAUSE");
    wait_until(&mut harness, "READY after PAUSE", |app| {
        app.view().state == State::Ready
    });
    assert!(has_label(&harness, "READY"));

    click(&mut harness, "TEARDOWN");
    wait_until(&mut harness, "INIT", |app| app.view().state == State::Init);
    assert!(has_label(&harness, "INIT"));
    assert!(harness.state().view().errors.is_empty());
    assert!(harness.state().view().wire.len() >= 8);
}
