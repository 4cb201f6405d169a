//! UI tests of the player window with egui_kittest, with no display.
//! Most feed engine events by hand into a detached app (no network) and
//! read back the commands the buttons produce; the last ones drive real
//! sessions against servers on 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use streamlab::app::{AppOptions, PlayerApp, Serve, Settings};
use streamlab::net::client::{
    Anchor, ClientCommand, ClientConfig, ClientError, ClientEvent, ClientStats, DecodedFrame,
    DialectChoice, Direction, Timeline, Tpc3Phase, TransportChoice, WireMessage,
};
use streamlab::protocol::State;
use streamlab::protocol::client::Forced;

const BUTTONS: [&str; 4] = ["SETUP", "PLAY", "PAUSE", "TEARDOWN"];

fn harness(app: PlayerApp) -> Harness<'static, PlayerApp> {
    harness_with(app, Harness::<PlayerApp>::builder())
}

fn harness_with(
    app: PlayerApp,
    builder: egui_kittest::HarnessBuilder<PlayerApp>,
) -> Harness<'static, PlayerApp> {
    let mut harness = builder
        .with_size(egui::vec2(1100.0, 760.0))
        .build_ui_state(|ui, app: &mut PlayerApp| app.show(ui), app);
    harness.run();
    harness
}

/// A harness for an app with a real session: events go on arriving while
/// it runs, so it may take more frames to settle.
fn live_harness(app: PlayerApp) -> Harness<'static, PlayerApp> {
    harness_with(app, Harness::<PlayerApp>::builder().with_max_steps(100))
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
        jpeg: Arc::default(),
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
        ..ClientStats::default()
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

const CHOICES: [&str; 5] = ["Auto", "Standard", "Lab", "UDP", "TCP"];

#[test]
fn connection_fields_are_labelled_and_locked_during_a_session() {
    let harness = fixture(State::Init);
    for field in [
        "URL",
        "Host",
        "RTSP port",
        "RTP port",
        "File",
        "Path to serve",
    ]
    .into_iter()
    .chain(CHOICES)
    {
        assert!(enabled(&harness, field), "{field} editable in INIT");
    }
    let harness = fixture(State::Playing);
    for field in ["URL", "Host", "RTSP port", "RTP port", "File"]
        .into_iter()
        .chain(CHOICES)
    {
        assert!(!enabled(&harness, field), "{field} locked in PLAYING");
    }
}

/// Replace a text field's whole text, as a screen reader would.
fn set_text(harness: &mut Harness<'_, PlayerApp>, label: &str, text: &str) {
    harness.get_by_label(label).set_text_value_accesskit(text);
    harness.run();
}

fn value(harness: &Harness<'_, PlayerApp>, label: &str) -> String {
    harness.get_by_label(label).value().unwrap_or_default()
}

/// Every node whose label or value contains `secret`.
fn shown_anywhere(harness: &Harness<'_, PlayerApp>, secret: &str) -> Vec<String> {
    harness
        .query_all_by(|node| {
            node.label().is_some_and(|l| l.contains(secret))
                || node.value().is_some_and(|v| v.contains(secret))
        })
        .map(|node| format!("{:?}", node.accesskit_node()))
        .collect()
}

#[test]
fn the_url_and_the_fields_follow_each_other() {
    let mut harness = fixture(State::Init);
    assert_eq!(value(&harness, "URL"), "rtsp://127.0.0.1:8554/movie.Mjpeg");
    set_text(&mut harness, "URL", "rtsp://camera.example:8555/live/ch0");
    assert_eq!(value(&harness, "Host"), "camera.example");
    assert_eq!(value(&harness, "RTSP port"), "8555");
    assert_eq!(value(&harness, "File"), "live/ch0");
    assert_eq!(value(&harness, "RTP port"), "5008", "not part of a URL");

    set_text(&mut harness, "Host", "10.0.0.7");
    assert_eq!(value(&harness, "URL"), "rtsp://10.0.0.7:8555/live/ch0");
    set_text(&mut harness, "File", "movie.Mjpeg");
    assert_eq!(value(&harness, "URL"), "rtsp://10.0.0.7:8555/movie.Mjpeg");
}

#[test]
fn a_pasted_password_is_never_shown() {
    let mut harness = fixture(State::Init);
    harness.get_by_label("URL").focus();
    harness.run();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run();
    harness.event(egui::Event::Paste(
        "rtsp://admin:s3cret@camera.example/mjpeg/1".to_owned(),
    ));
    harness.run();
    assert_eq!(
        value(&harness, "URL"),
        "rtsp://admin:***@camera.example/mjpeg/1"
    );
    assert_eq!(value(&harness, "Host"), "camera.example");
    assert_eq!(value(&harness, "RTSP port"), "554");
    assert_eq!(shown_anywhere(&harness, "s3cret"), Vec::<String>::new());
    assert!(!format!("{:?}", harness.state().fields()).contains("s3cret"));

    click(&mut harness, "SETUP");
    let config = harness.state().engine_config().cloned().expect("SETUP");
    assert_eq!(config.host, "camera.example");
    assert_eq!(config.rtsp_port, 554);
    assert_eq!(config.file, "mjpeg/1");
    assert_eq!(config.user.as_deref(), Some("admin"));
    assert_eq!(config.password.as_deref(), Some("s3cret"));
}

#[test]
fn a_typed_password_leaves_the_url_when_the_host_begins() {
    let mut harness = fixture(State::Init);
    set_text(&mut harness, "URL", "");
    harness.get_by_label("URL").focus();
    harness.run();
    for c in "rtsp://admin:s3cret@cam/x".chars() {
        harness.get_by_label("URL").type_text(&c.to_string());
        harness.run();
    }
    // The cursor followed the shortened text: typing went on at the end.
    assert_eq!(value(&harness, "URL"), "rtsp://admin:***@cam/x");
    assert_eq!(harness.state().fields().password.as_deref(), Some("s3cret"));
    // Undo must not bring the password back.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run();
    assert_eq!(shown_anywhere(&harness, "s3cret"), Vec::<String>::new());
}

#[test]
fn an_unreadable_url_says_why_and_sends_nothing() {
    let mut harness = fixture(State::Init);
    set_text(&mut harness, "URL", "http://camera.example/live");
    click(&mut harness, "SETUP");
    assert!(harness.state_mut().take_sent_commands().is_empty());
    assert!(
        harness
            .query_by_label_contains("The URL must start with rtsp://")
            .is_some()
    );
}

#[test]
fn dialect_and_transport_reach_the_config() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "SETUP");
    let config = harness.state().engine_config().cloned().expect("SETUP");
    assert_eq!(
        (config.dialect, config.transport),
        (DialectChoice::Auto, TransportChoice::Udp),
        "the defaults"
    );

    let mut harness = fixture(State::Init);
    click(&mut harness, "Standard");
    click(&mut harness, "TCP");
    click(&mut harness, "SETUP");
    let config = harness.state().engine_config().cloned().expect("SETUP");
    assert_eq!(config.dialect, DialectChoice::Standard);
    assert_eq!(config.transport, TransportChoice::Tcp);

    // The lab's dialect has one transport: the choice is locked.
    let mut harness = fixture(State::Init);
    click(&mut harness, "Lab");
    assert!(!enabled(&harness, "TCP"));
    assert!(!enabled(&harness, "UDP"));
    click(&mut harness, "SETUP");
    let config = harness.state().engine_config().cloned().expect("SETUP");
    assert_eq!(config.dialect, DialectChoice::Lab);
}

#[test]
fn connect_option_with_a_url_keeps_its_choices_and_hides_its_password() {
    let mut config = ClientConfig::from_url("rtsp://admin:s3cret@camera.example/mjpeg/1").unwrap();
    config.transport = TransportChoice::Tcp;
    config.dialect = DialectChoice::Standard;
    let mut harness = harness(PlayerApp::new_detached(AppOptions {
        serve: Serve::Nothing,
        connect: Some(config.clone()),
        autoplay: false,
    }));
    assert_eq!(
        value(&harness, "URL"),
        "rtsp://admin:***@camera.example:554/mjpeg/1"
    );
    assert_eq!(shown_anywhere(&harness, "s3cret"), Vec::<String>::new());
    click(&mut harness, "SETUP");
    assert_eq!(harness.state().engine_config(), Some(&config));
}

#[test]
fn a_401_opens_the_credentials_prompt_and_cancel_closes_it() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "SETUP");
    let prompt = "The server wants a user name and password (401 Unauthorized). \
         Type them where the window asks, or give them in the URL: rtsp://user:password@host/...";
    assert!(!has_label(&harness, prompt));
    feed(
        &mut harness,
        ClientEvent::Error(ClientError::Auth {
            had_credentials: false,
        }),
    );
    assert!(has_label(&harness, prompt));
    assert!(!enabled(&harness, "Connect"), "no user name yet");
    assert!(enabled(&harness, "SETUP"), "SETUP may be tried again");
    click(&mut harness, "Cancel");
    assert!(!has_label(&harness, prompt));
    assert!(harness.state().view().auth_needed.is_none());
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

/// Type the URL of `path` on the server at `addr` into the connection bar.
fn point_at(harness: &mut Harness<'_, PlayerApp>, addr: std::net::SocketAddr, path: &str) {
    set_text(
        harness,
        "URL",
        &format!("rtsp://127.0.0.1:{}/{path}", addr.port()),
    );
}

/// Wait until the RTSP state is `state`.
fn wait_for_state(harness: &mut Harness<'_, PlayerApp>, state: State) {
    wait_until(harness, state.name(), |app| app.view().state == state);
}

#[test]
fn ui_plays_from_embedded_server() {
    let app = PlayerApp::new(&egui::Context::default(), AppOptions::default());
    assert!(app.view().errors.is_empty(), "{:?}", app.view().errors);
    assert!(app.view().server.is_some());
    let mut harness = live_harness(app);

    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
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
    wait_for_state(&mut harness, State::Init);
    assert!(has_label(&harness, "INIT"));
    assert!(harness.state().view().errors.is_empty());
    assert!(harness.state().view().wire.len() >= 8);
}

/// A server for the bundled sample, on 127.0.0.1 with a free port.
fn sample_server() -> streamlab::net::server::ServerHandle {
    common::server(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"), 50)
}

/// A live app with no embedded server, its RTP port any free one (tests
/// run side by side).
fn live() -> Harness<'static, PlayerApp> {
    let mut harness = live_harness(PlayerApp::new(
        &egui::Context::default(),
        AppOptions {
            serve: Serve::Nothing,
            ..AppOptions::default()
        },
    ));
    set_text(&mut harness, "RTP port", "0");
    harness
}

fn wire_text(app: &PlayerApp) -> String {
    app.view()
        .wire
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn a_typed_url_plays_over_tcp() {
    let server = sample_server();
    let mut harness = live();
    let url = format!(
        "rtsp://127.0.0.1:{}/sample.mjpeg",
        server.local_addr().port()
    );
    set_text(&mut harness, "URL", &url);
    click(&mut harness, "TCP");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    let config = harness.state().engine_config().cloned().expect("an engine");
    assert_eq!(config.transport, TransportChoice::Tcp);
    assert_eq!(config.file, "sample.mjpeg");
    let wire = wire_text(harness.state());
    assert!(wire.starts_with("OPTIONS "), "auto tries standard: {wire}");
    assert!(
        wire.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1"),
        "{wire}"
    );

    click(&mut harness, "PLAY");
    // Over TCP the engine has no UDP port: these frames came interleaved.
    wait_until(&mut harness, "frame 6", |app| {
        app.view().frame.is_some_and(|f| f.number > 5)
    });
    assert_eq!(harness.state().view().stats.lost, 0);
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
    assert!(harness.state().view().errors.is_empty());
}

/// Whether the credentials prompt says the last ones were refused (None:
/// no prompt).
fn refused(harness: &Harness<'_, PlayerApp>) -> Option<bool> {
    harness
        .state()
        .view()
        .auth_needed
        .as_ref()
        .map(|a| a.refused)
}

/// Everything logged while this binary runs, at every level (one buffer
/// for every test that asks: a process has one subscriber).
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(install_log_capture).clone()
}

fn install_log_capture() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(logs.clone());
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .try_init()
        .expect("the only subscriber");
    logs
}

#[test]
fn a_401_asks_for_credentials_and_a_wrong_password_says_so() {
    let logs = capture_logs();
    let (addr, _server) = common::digest_server("s3cret", 3);
    let mut harness = live();
    point_at(&mut harness, addr, "cam");
    click(&mut harness, "SETUP");
    wait_until(&mut harness, "the credentials prompt", |app| {
        app.view().auth_needed.is_some()
    });
    assert_eq!(refused(&harness), Some(false));
    // The engine's own sentence, which the command line prints too.
    assert!(
        harness
            .query_by_label_contains(
                "The server wants a user name and password (401 Unauthorized)."
            )
            .is_some()
    );
    assert!(
        harness.state().view().errors.is_empty(),
        "the prompt says it"
    );

    // A wrong password: the prompt says they were refused.
    set_text(&mut harness, "User name", common::DIGEST_USER);
    set_text(&mut harness, "Password", "n0t-it");
    // Connect closes the prompt; on loopback the server's second 401 may
    // already have reopened it by the time the click's frames are done, so
    // wait for the refusal rather than look for the closed prompt.
    click(&mut harness, "Connect");
    wait_until(&mut harness, "the refusal", |app| {
        app.view().auth_needed.as_ref().is_some_and(|a| a.refused)
    });
    assert!(
        harness
            .query_by_label_contains("Wrong user name or password: the server refused them")
            .is_some()
    );
    assert_eq!(
        value(&harness, "User name"),
        common::DIGEST_USER,
        "kept for the next try"
    );
    assert_eq!(value(&harness, "Password"), "", "cleared for the next try");

    // The right one (Enter in the password field connects too).
    harness.get_by_label("Password").focus();
    harness.run();
    harness.get_by_label("Password").type_text("s3cret");
    harness.run();
    harness.key_press(egui::Key::Enter);
    harness.run();
    wait_for_state(&mut harness, State::Ready);
    assert!(harness.state().view().auth_needed.is_none());
    assert_eq!(
        value(&harness, "URL"),
        format!("rtsp://admin:***@127.0.0.1:{}/cam", addr.port())
    );

    // The password is nowhere a person or a log could read it.
    let wire = wire_text(harness.state());
    assert!(wire.contains("Authorization: Digest (hidden)"), "{wire}");
    for secret in ["s3cret", "n0t-it"] {
        assert!(!wire.contains(secret), "{secret} in the wire log");
        assert_eq!(shown_anywhere(&harness, secret), Vec::<String>::new());
        let app = harness.state();
        for debug in [
            format!("{:?}", app.view()),
            format!("{:?}", app.fields()),
            format!("{:?}", app.engine_config()),
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
    drop(harness);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for secret in ["s3cret", "n0t-it"] {
        assert!(!logs.contains(secret), "{secret} logged: {logs}");
    }
}

// The position bar.

/// A detached app in `state` on a 10 s file whose last PLAY started at 0
/// with RTP timestamp 0, as the engine would have said.
fn on_a_file(state: State) -> Harness<'static, PlayerApp> {
    let mut app = detached();
    app.handle_event(state_event(state));
    app.handle_event(ClientEvent::Timeline(Timeline {
        length_ms: Some(10_000),
        frame_ms: Some(50),
        anchor: (state == State::Playing).then_some(Anchor {
            start_ms: 0,
            rtptime: Some(0),
        }),
        ..Timeline::default()
    }));
    harness(app)
}

/// A decoded frame with this RTP timestamp (90 kHz).
fn frame_at(rtp_timestamp: u32) -> ClientEvent {
    let ClientEvent::Frame(mut f) = frame(1, 1) else {
        unreachable!()
    };
    f.rtp_timestamp = rtp_timestamp;
    ClientEvent::Frame(f)
}

/// Where on the screen `fraction` of the position bar is. The rail is
/// inset by the handle's radius, so the handle stays whole at either end.
fn bar_at(harness: &Harness<'_, PlayerApp>, fraction: f32) -> egui::Pos2 {
    const HANDLE_RADIUS: f32 = 7.0;
    let rail = harness
        .get_by_label("Position")
        .rect()
        .shrink2(egui::vec2(HANDLE_RADIUS, 0.0));
    egui::pos2(rail.left() + rail.width() * fraction, rail.center().y)
}

/// Press on the bar at `from`, drag to `to` and let go, a frame per step.
fn drag_bar(harness: &mut Harness<'_, PlayerApp>, from: f32, to: f32) {
    let (a, b) = (bar_at(harness, from), bar_at(harness, to));
    harness.hover_at(a);
    harness.run();
    harness.drag_at(a);
    harness.run();
    harness.hover_at(b);
    harness.run();
    harness.drop_at(b);
    harness.run();
}

fn seeks(commands: &[ClientCommand]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|c| match c {
            ClientCommand::PlayFrom { millis } => Some(*millis),
            _ => None,
        })
        .collect()
}

/// `millis` within a pixel of the bar of `expected`.
fn near(millis: u64, expected: u64) -> bool {
    millis.abs_diff(expected) <= 30
}

fn position_value(harness: &Harness<'_, PlayerApp>) -> String {
    value(harness, "Position")
}

#[test]
fn the_position_bar_shows_where_the_stream_is_and_its_length() {
    let mut harness = on_a_file(State::Playing);
    assert_eq!(position_value(&harness), "0:00.0 of 0:10.0");
    feed(&mut harness, frame_at(90_000 * 5 / 2));
    assert_eq!(position_value(&harness), "0:02.5 of 0:10.0");
    assert!(has_label(&harness, "0:02.5"));
    assert!(has_label(&harness, "0:10.0"));
    assert!(enabled(&harness, "Position"));
}

#[test]
fn no_position_bar_for_a_stream_without_a_length_or_session() {
    // A live stream (or the lab's dialect): the engine knows no length.
    let mut harness = fixture(State::Playing);
    feed(&mut harness, ClientEvent::Timeline(Timeline::default()));
    feed(&mut harness, frame_at(90_000));
    assert!(harness.query_by_label("Position").is_none());
    // A file, before SETUP and after TEARDOWN.
    let mut harness = on_a_file(State::Init);
    assert!(harness.query_by_label("Position").is_none());
    feed(&mut harness, state_event(State::Ready));
    assert!(harness.query_by_label("Position").is_some());
    feed(&mut harness, state_event(State::Init));
    assert!(harness.query_by_label("Position").is_none());
}

#[test]
fn clicking_the_bar_while_playing_plays_from_there() {
    let mut harness = on_a_file(State::Playing);
    let at = bar_at(&harness, 0.5);
    harness.hover_at(at);
    harness.run();
    harness.drag_at(at);
    harness.drop_at(at);
    harness.run();
    let sent = harness.state_mut().take_sent_commands();
    let millis = seeks(&sent);
    assert_eq!(millis.len(), 1, "{sent:?}");
    assert!(near(millis[0], 5_000), "{millis:?}");
    // On its way: the bar shows the target, PLAY waits for the reply.
    assert!(has_label(&harness, &format_ms(millis[0])));
    assert!(has_label(&harness, "waiting for the reply to PLAY"));
}

/// `m:ss.t`, as the bar writes it.
fn format_ms(ms: u64) -> String {
    format!(
        "{}:{:02}.{}",
        ms / 60_000,
        (ms / 1000) % 60,
        (ms / 100) % 10
    )
}

#[test]
fn dragging_the_bar_shows_where_and_seeks_once_on_release() {
    let mut harness = on_a_file(State::Playing);
    feed(&mut harness, frame_at(90_000));
    let (a, b) = (bar_at(&harness, 0.2), bar_at(&harness, 0.7));
    harness.hover_at(a);
    harness.run();
    harness.drag_at(a);
    harness.run();
    harness.hover_at(b);
    harness.run();
    // Held down at 70%: shown there, nothing sent yet.
    assert!(harness.state_mut().take_sent_commands().is_empty());
    let shown = position_value(&harness);
    assert!(
        shown.starts_with("0:06.") || shown.starts_with("0:07."),
        "{shown}"
    );
    harness.drop_at(b);
    harness.run();
    let millis = seeks(&harness.state_mut().take_sent_commands());
    assert_eq!(millis.len(), 1, "one PLAY for the whole drag");
    assert!(near(millis[0], 7_000), "{millis:?}");
}

#[test]
fn a_seek_to_the_very_end_asks_for_the_last_frame() {
    let mut harness = on_a_file(State::Playing);
    drag_bar(&mut harness, 0.5, 1.2);
    // npt=10.000- would be past the end (457); the last frame starts at 9.95 s.
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::PlayFrom { millis: 9_950 }]
    );
}

#[test]
fn a_seek_in_ready_waits_for_play_and_play_starts_there() {
    let mut harness = on_a_file(State::Ready);
    drag_bar(&mut harness, 0.4, 0.4);
    assert!(
        harness.state_mut().take_sent_commands().is_empty(),
        "paused: nothing sent"
    );
    assert!(has_label(&harness, "PLAY starts here"));
    let pending = harness.state().view().pending_seek.expect("remembered");
    assert!(near(pending, 4_000), "{pending}");
    click(&mut harness, "PLAY");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::PlayFrom { millis: pending }]
    );
    assert!(!has_label(&harness, "PLAY starts here"));
}

#[test]
fn a_seek_while_a_request_is_on_its_way_goes_after_the_reply() {
    let mut harness = on_a_file(State::Playing);
    drag_bar(&mut harness, 0.5, 0.5);
    assert_eq!(seeks(&harness.state_mut().take_sent_commands()).len(), 1);
    drag_bar(&mut harness, 0.8, 0.8);
    assert!(
        harness.state_mut().take_sent_commands().is_empty(),
        "one request at a time"
    );
    // The reply to the first seek: the second one goes now.
    feed(
        &mut harness,
        ClientEvent::Timeline(Timeline {
            length_ms: Some(10_000),
            anchor: Some(Anchor {
                start_ms: 5_000,
                rtptime: Some(900_000),
            }),
            ..Timeline::default()
        }),
    );
    feed(&mut harness, state_event(State::Playing));
    let millis = seeks(&harness.state_mut().take_sent_commands());
    assert_eq!(millis.len(), 1);
    assert!(near(millis[0], 8_000), "{millis:?}");
}

#[test]
fn the_keyboard_and_screen_readers_seek_too() {
    let mut harness = on_a_file(State::Playing);
    feed(&mut harness, frame_at(90_000 * 2));
    harness.get_by_label("Position").focus();
    harness.run();
    harness.key_press(egui::Key::ArrowRight);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::PlayFrom { millis: 7_000 }],
        "5 s on"
    );
    feed(&mut harness, state_event(State::Playing));
    harness.get_by_label("Position").set_value_accesskit(9.25);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::PlayFrom { millis: 9_250 }]
    );
}

#[test]
fn a_401_in_a_session_gives_the_engine_credentials_and_no_new_setup() {
    let mut harness = fixture(State::Ready);
    click(&mut harness, "PLAY");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Play]
    );
    feed(
        &mut harness,
        ClientEvent::Error(ClientError::Auth {
            had_credentials: false,
        }),
    );
    assert_eq!(refused(&harness), Some(false));
    set_text(&mut harness, "User name", "admin");
    set_text(&mut harness, "Password", "s3cret");
    click(&mut harness, "Connect");
    assert!(
        harness.state_mut().take_sent_commands().is_empty(),
        "no SETUP: the session goes on"
    );
    let given = harness.state_mut().take_sent_credentials();
    assert_eq!(given.len(), 1);
    assert_eq!(
        (given[0].user.as_str(), given[0].password.as_str()),
        ("admin", "s3cret")
    );
    assert!(!format!("{given:?}").contains("s3cret"));
    assert!(has_label(&harness, "waiting for the reply to PLAY"));
    assert_eq!(refused(&harness), None, "the prompt closed");
    feed(&mut harness, state_event(State::Playing));
    assert_eq!(enabled_buttons(&harness), [false, false, true, true]);
    assert_eq!(shown_anywhere(&harness, "s3cret"), Vec::<String>::new());
}

/// The request lines and Range headers of the PLAYs sent so far.
fn plays_sent(app: &PlayerApp) -> Vec<String> {
    app.view()
        .wire
        .iter()
        .filter(|e| e.direction == Direction::Sent && e.text.starts_with("PLAY "))
        .map(|e| e.text.clone())
        .collect()
}

/// The Range the server answered the last PLAY with: where it really
/// starts, its frame divided by its rate.
fn last_play_range(app: &PlayerApp) -> String {
    let wire = &app.view().wire;
    wire.iter()
        .rev()
        .filter(|e| e.direction == Direction::Received)
        .find_map(|e| {
            e.text
                .lines()
                .find_map(|l| l.strip_prefix("Range: ").map(str::to_owned))
        })
        .unwrap_or_default()
}

#[test]
fn ui_seeks_in_a_file_from_the_embedded_server() {
    // The bundled sample: 200 frames at 20 fps, 10 s, looping.
    let app = PlayerApp::new(&egui::Context::default(), AppOptions::default());
    let mut harness = live_harness(app);
    set_text(&mut harness, "RTP port", "0");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    assert_eq!(position_value(&harness), "0:00.0 of 0:10.0");

    // Paused: the bar remembers, PLAY starts there.
    drag_bar(&mut harness, 0.6, 0.6);
    let target = harness.state().view().pending_seek.expect("remembered");
    assert!(near(target, 6_000), "{target}");
    assert!(plays_sent(harness.state()).is_empty());
    click(&mut harness, "PLAY");
    wait_until(&mut harness, "frames after 6 s", |app| {
        app.view().frame.is_some_and(|f| f.number >= 3)
            && app.view().position_ms.is_some_and(|p| p > target)
    });
    let plays = plays_sent(harness.state());
    assert_eq!(plays.len(), 1);
    assert!(
        plays[0].contains(&format!(
            "Range: npt={}.{:03}-",
            target / 1000,
            target % 1000
        )),
        "{}",
        plays[0]
    );
    // The server starts at the frame nearest the target (20 fps: 50 ms).
    let range = last_play_range(harness.state());
    assert!(
        range.starts_with("npt=6.") && range.ends_with("-10.000"),
        "{range}"
    );
    let position = harness.state().view().position_ms.unwrap();
    assert!((6_000..8_000).contains(&position), "{position}");

    // Playing: drag back to 30%; one PLAY on release.
    drag_bar(&mut harness, 0.9, 0.3);
    wait_until(&mut harness, "frames from 3 s", |app| {
        app.view().in_flight.is_none()
            && app
                .view()
                .position_ms
                .is_some_and(|p| (3_000..5_000).contains(&p))
    });
    let plays = plays_sent(harness.state());
    assert_eq!(plays.len(), 2, "{plays:?}");
    assert!(plays[1].contains("Range: npt=3."), "{}", plays[1]);
    let range = last_play_range(harness.state());
    assert!(range.starts_with("npt=3."), "{range}");
    // The bar follows the frames from there.
    let before = harness.state().view().position_ms.unwrap();
    wait_until(&mut harness, "the position to move on", |app| {
        app.view().position_ms.is_some_and(|p| p >= before + 200)
    });
    assert!(harness.state().view().errors.is_empty());

    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
    assert!(harness.query_by_label("Position").is_none());
}

/// A reply gst-rtsp-server gave (tests/fixtures/replies), byte for byte.
fn gst_reply(what: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/replies/gst_rtsp_server_{what}.txt")),
    )
    .expect("fixture")
}

#[test]
fn the_position_bar_is_hidden_for_a_live_stream_and_the_lab_dialect() {
    // gst-rtsp-server's replies, replayed: its live source is `npt=0-`.
    let (addr, _server) = common::fake_server(|r| {
        Some(gst_reply(match r.method.as_str() {
            "OPTIONS" => "OPTIONS",
            "DESCRIBE" => "DESCRIBE",
            "SETUP" => "SETUP_tcp",
            "PLAY" => "PLAY",
            _ => "TEARDOWN",
        }))
    });
    let mut harness = live();
    point_at(&mut harness, addr, "test");
    click(&mut harness, "TCP");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    click(&mut harness, "PLAY");
    wait_for_state(&mut harness, State::Playing);
    assert_eq!(harness.state().view().timeline.length_ms, None);
    assert!(harness.query_by_label("Position").is_none());

    // The lab's dialect has no DESCRIBE: no length, no bar.
    let server = sample_server();
    let mut harness = live();
    point_at(&mut harness, server.local_addr(), "sample.mjpeg");
    click(&mut harness, "Lab");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    assert!(harness.query_by_label("Position").is_none());
    // The same file in standard RTSP has one.
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
    click(&mut harness, "Standard");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    assert!(harness.query_by_label("Position").is_some());
}

#[test]
fn a_401_in_the_middle_of_a_session_asks_and_the_session_goes_on() {
    let logs = capture_logs();
    let (addr, server) = common::digest_from_play_server("pl4y-s3cret");
    let mut harness = live();
    point_at(&mut harness, addr, "cam");
    click(&mut harness, "TCP");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    assert_eq!(refused(&harness), None, "SETUP needed no credentials");
    let session = harness.state().view().session.clone();

    click(&mut harness, "PLAY");
    wait_until(&mut harness, "the credentials prompt", |app| {
        app.view().auth_needed.is_some()
    });
    assert_eq!(refused(&harness), Some(false));
    assert!(
        harness
            .query_by_label_contains(
                "The server wants a user name and password (401 Unauthorized)."
            )
            .is_some()
    );
    assert_eq!(
        harness.state().view().state,
        State::Ready,
        "no TEARDOWN asked"
    );
    assert!(harness.state().view().errors.is_empty());

    // A wrong password says so, and the prompt stays for another try.
    set_text(&mut harness, "User name", common::DIGEST_USER);
    set_text(&mut harness, "Password", "wr0ng-pl4y");
    click(&mut harness, "Connect");
    wait_until(&mut harness, "the refusal", |app| {
        app.view().auth_needed.as_ref().is_some_and(|a| a.refused)
    });
    assert!(
        harness
            .query_by_label_contains("Wrong user name or password")
            .is_some()
    );

    set_text(&mut harness, "Password", "pl4y-s3cret");
    click(&mut harness, "Connect");
    wait_for_state(&mut harness, State::Playing);
    assert_eq!(refused(&harness), None);
    assert_eq!(harness.state().view().session, session, "the same session");
    assert!(harness.state().view().errors.is_empty());
    click(&mut harness, "PAUSE");
    wait_for_state(&mut harness, State::Ready);
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);

    let wire = wire_text(harness.state());
    assert!(wire.contains("Authorization: Digest (hidden)"), "{wire}");
    let app = harness.state();
    let debug = format!("{:?} {:?}", app.view(), app.engine_config());
    drop(harness);
    // One connection took it all (the server takes one), and the PLAY
    // that went again named the session SETUP made.
    let requests = server.join().unwrap();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PLAY", "PLAY", "PAUSE", "TEARDOWN"
        ]
    );
    assert!(
        requests[5].headers.get("Authorization").is_some()
            && requests[5].headers.session() == Some("777")
    );
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for secret in ["pl4y-s3cret", "wr0ng-pl4y"] {
        assert!(!wire.contains(secret), "{secret} in the wire log");
        assert!(!debug.contains(secret), "{secret} in {debug}");
        assert!(!logs.contains(secret), "{secret} logged");
    }
}

#[test]
fn seeking_back_after_a_file_ended_plays_again() {
    // 200 frames at 200 fps: a file that ends after a second, no loop.
    let server = common::server(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"), 200);
    let mut harness = live();
    point_at(&mut harness, server.local_addr(), "sample.mjpeg");
    click(&mut harness, "TCP");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    assert_eq!(position_value(&harness), "0:00.0 of 0:01.0");
    click(&mut harness, "PLAY");
    wait_until(&mut harness, "the end of the file", |app| {
        app.view()
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("ended"))
    });
    assert_eq!(harness.state().view().state, State::Playing);
    let frames = harness.state().view().frame.map_or(0, |f| f.number);

    drag_bar(&mut harness, 0.5, 0.5);
    wait_until(&mut harness, "frames from the middle again", |app| {
        app.view().frame.is_some_and(|f| f.number > frames + 5)
    });
    let position = harness.state().view().position_ms.unwrap();
    assert!((500..1_000).contains(&position), "{position}");
    assert!(harness.state().view().errors.is_empty());
}

/// Settings kept in memory, as eframe keeps them in a file.
#[derive(Default)]
struct MemoryStorage(BTreeMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_survive_a_restart_without_the_password() {
    let mut harness = fixture(State::Init);
    set_text(
        &mut harness,
        "URL",
        "rtsp://admin:s3cret@camera.local:8555/live",
    );
    click(&mut harness, "Standard");
    click(&mut harness, "TCP");
    set_text(&mut harness, "RTP port", "6000");
    harness.get_by_label("Pre-buffer").set_value_accesskit(12.0);
    harness.run();
    click(&mut harness, "Auto latency");
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "Latency")
        .set_value_accesskit(350.0);
    harness.run();
    click(&mut harness, "State machine");
    assert_eq!(harness.state().fields().password.as_deref(), Some("s3cret"));

    let mut storage = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    let stored: String = storage.0.values().cloned().collect();
    assert!(!stored.contains("s3cret"), "{stored}");
    assert!(!stored.contains("***"), "not even the mask: {stored}");
    assert!(stored.contains("camera.local"), "{stored}");

    // The next run.
    let settings = Settings::load(&storage).expect("settings stored");
    let harness = harness_of(PlayerApp::new_detached_with_settings(
        AppOptions {
            serve: Serve::Nothing,
            ..AppOptions::default()
        },
        Some(settings),
    ));
    let fields = harness.state().fields();
    assert_eq!(fields.url, "rtsp://admin@camera.local:8555/live");
    assert_eq!(fields.host, "camera.local");
    assert_eq!(fields.password, None);
    assert_eq!(fields.dialect, DialectChoice::Standard);
    assert_eq!(fields.transport, TransportChoice::Tcp);
    assert_eq!(fields.rtp_port, "6000");
    assert_eq!((fields.prebuffer, fields.latency_ms), (12, Some(350)));
    assert!(
        !has_label(&harness, "RTSP state machine"),
        "the state machine panel stays hidden"
    );
    assert_eq!(
        value(&harness, "URL"),
        "rtsp://admin@camera.local:8555/live"
    );
}

fn harness_of(app: PlayerApp) -> Harness<'static, PlayerApp> {
    harness(app)
}

#[test]
fn pre_buffer_and_latency_reach_the_engine_config() {
    let mut harness = fixture(State::Init);
    harness.get_by_label("Pre-buffer").set_value_accesskit(10.0);
    harness.run();
    click(&mut harness, "SETUP");
    let config = harness.state().engine_config().cloned().unwrap();
    assert_eq!(
        (config.prebuffer, config.latency_ms),
        (10, None),
        "auto by default"
    );
    assert!(
        !enabled(&harness, "Pre-buffer"),
        "locked while the session is set up"
    );
}

#[test]
fn keys_act_unless_a_text_field_has_the_keyboard() {
    let mut harness = fixture(State::Ready);
    harness.key_press(egui::Key::Space);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Play]
    );
    feed(&mut harness, state_event(State::Playing));
    harness.key_press(egui::Key::Space);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Pause]
    );
    feed(&mut harness, state_event(State::Ready));
    harness.key_press(egui::Key::T);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Teardown]
    );
    feed(&mut harness, state_event(State::Init));
    harness.key_press(egui::Key::S);
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Setup]
    );
    feed(&mut harness, state_event(State::Init));

    harness.key_press(egui::Key::F);
    harness.run();
    assert!(harness.state().is_fullscreen());
    assert!(
        !has_label(&harness, "SETUP"),
        "only the video in full screen"
    );
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert!(!harness.state().is_fullscreen());
    assert!(has_label(&harness, "SETUP"));

    // Typing an S into a field is typing, not SETUP.
    harness.get_by_label("File").focus();
    harness.run();
    harness.key_press(egui::Key::S);
    harness.run();
    assert!(harness.state_mut().take_sent_commands().is_empty());
}

#[test]
fn the_title_names_what_plays() {
    let mut harness = fixture(State::Init);
    assert_eq!(harness.state().title(), "Streamlab");
    click(&mut harness, "SETUP");
    feed(&mut harness, state_event(State::Ready));
    feed(&mut harness, state_event(State::Playing));
    assert_eq!(
        harness.state().title(),
        "movie.Mjpeg on 127.0.0.1:8554 (PLAYING) - Streamlab"
    );
}

#[test]
fn a_transition_clicked_in_the_diagram_shows_its_messages() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "SETUP");
    feed(
        &mut harness,
        wire(
            0,
            Direction::Sent,
            "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 5008",
        ),
    );
    feed(
        &mut harness,
        wire(
            5,
            Direction::Received,
            "RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456",
        ),
    );
    feed(&mut harness, state_event(State::Ready));
    let arrow = harness
        .query_by_label_contains("SETUP INIT -> READY")
        .expect("the SETUP arrow");
    let label = arrow.accesskit_node().label().unwrap_or_default();
    assert!(
        label.contains("CSeq 1: 200 OK"),
        "lit with its request and reply: {label}"
    );
    arrow.click();
    harness.run();
    let focus = harness.state().view().wire_focus.clone().expect("picked");
    let ids: Vec<u64> = harness.state().view().wire.iter().map(|e| e.id).collect();
    assert_eq!(focus.ids, ids, "the request and its reply");
    assert!(!focus.scroll, "scrolled to once");
}

#[test]
fn the_learning_toggle_enables_every_button() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "Let me send it anyway");
    assert_eq!(enabled_buttons(&harness), [true; 4]);
    click(&mut harness, "PLAY");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Force(Forced::Play)]
    );
    let config = harness.state().engine_config().cloned();
    assert!(config.is_some(), "an engine is started for it in INIT");
}

#[test]
fn play_sent_anyway_in_init_gets_455_from_the_embedded_server() {
    let app = PlayerApp::new(&egui::Context::default(), AppOptions::default());
    let mut harness = live_harness(app);
    set_text(&mut harness, "RTP port", "0");
    click(&mut harness, "Let me send it anyway");
    click(&mut harness, "PLAY");
    wait_until(&mut harness, "the reply to PLAY", |app| {
        !app.view().errors.is_empty()
    });
    let error = harness.state().view().errors.join("\n");
    assert!(
        error.contains("455 Method Not Valid in This State"),
        "{error}"
    );
    assert!(error.contains("stays in INIT"), "{error}");
    assert!(
        harness
            .query_all_by_label_contains("455 Method Not Valid")
            .next()
            .is_some(),
        "shown in the window"
    );
    assert_eq!(harness.state().view().state, State::Init);
    let wire = wire_text(harness.state());
    assert!(wire.starts_with("PLAY rtsp://127.0.0.1:"), "{wire}");
    let step = harness
        .state()
        .view()
        .steps
        .last()
        .cloned()
        .expect("a step");
    assert_eq!((step.from, step.to), (State::Init, State::Init));

    // Nothing is broken: SETUP and PLAY go on as usual.
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    click(&mut harness, "PLAY");
    wait_for_state(&mut harness, State::Playing);
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
}

/// SETUP `url` and let the engine answer READY, then TEARDOWN back to INIT.
fn play_once(harness: &mut Harness<'_, PlayerApp>, url: &str) {
    set_text(harness, "URL", url);
    click(harness, "SETUP");
    feed(harness, state_event(State::Ready));
    click(harness, "TEARDOWN");
    feed(harness, state_event(State::Init));
}

#[test]
fn recent_urls_list_what_reached_ready_newest_first_and_fill_the_url() {
    let mut harness = fixture(State::Init);
    assert!(!enabled(&harness, "Recent"), "nothing played yet");
    play_once(&mut harness, "rtsp://cam-a.example:8554/a");
    play_once(&mut harness, "rtsp://admin:s3cret@cam-b.example/b");
    // A URL that was refused is not kept.
    set_text(&mut harness, "URL", "rtsp://refused.example/x");
    click(&mut harness, "SETUP");
    feed(
        &mut harness,
        ClientEvent::Error(ClientError::NoReply {
            method: "SETUP".to_owned(),
            seconds: 5,
        }),
    );
    click(&mut harness, "Recent");
    let listed: Vec<String> = harness
        .query_all_by_role(egui::accesskit::Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .filter(|l| l.starts_with("rtsp://"))
        .collect();
    assert_eq!(
        listed,
        [
            "rtsp://admin@cam-b.example:554/b",
            "rtsp://cam-a.example:8554/a"
        ],
        "newest first, without the password"
    );
    click(&mut harness, "rtsp://cam-a.example:8554/a");
    assert_eq!(value(&harness, "URL"), "rtsp://cam-a.example:8554/a");
    assert_eq!(value(&harness, "Host"), "cam-a.example");
}

/// A frame event whose JPEG is `jpeg` (the pixels do not matter here).
fn frame_with_jpeg(number: u64, jpeg: &[u8]) -> ClientEvent {
    let ClientEvent::Frame(mut f) = frame(number, number as u16) else {
        unreachable!()
    };
    f.jpeg = Arc::new(jpeg.to_vec());
    ClientEvent::Frame(f)
}

#[test]
fn record_writes_every_frame_as_received_and_stop_says_where() {
    let dir = std::env::temp_dir().join(format!("streamlab-ui-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rec.Mjpeg");
    let mut harness = fixture(State::Playing);
    assert!(
        !enabled(&harness, "Record"),
        "nothing to record before a frame"
    );
    let jpegs: Vec<Vec<u8>> = (0..3u8)
        .map(|n| [&[0xFF, 0xD8][..], &[n; 20], &[0xFF, 0xD9]].concat())
        .collect();
    feed(&mut harness, frame_with_jpeg(1, &jpegs[0]));
    assert!(enabled(&harness, "Record"));
    harness
        .state_mut()
        .record_to(path.clone(), streamlab::media::Framing::Lab { digits: 5 });
    // Every frame is recorded, even those the window never shows.
    for (i, j) in jpegs.iter().enumerate() {
        harness
            .state_mut()
            .handle_event(frame_with_jpeg(2 + i as u64, j));
    }
    harness.run();
    assert!(has_label(&harness, "Stop recording (3 frames)"));
    click(&mut harness, "Stop recording (3 frames)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_label(&harness, "Record") {
        assert!(Instant::now() < deadline, "the recording never finished");
        harness.run();
    }
    let file = streamlab::media::MjpegFile::open(&path).unwrap();
    for (i, j) in jpegs.iter().enumerate() {
        assert_eq!(file.frame(i).unwrap().as_deref(), Some(j.as_slice()));
    }
    assert_eq!(file.frame(3).unwrap(), None);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_window_plays_again_by_itself_when_the_server_comes_back() {
    let first = sample_server();
    let addr = first.local_addr();
    let mut harness = live();
    point_at(&mut harness, addr, "sample.mjpeg");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    click(&mut harness, "PLAY");
    wait_for_state(&mut harness, State::Playing);
    // The server goes away (a camera rebooting) and comes back on its port.
    first.stop();
    wait_for_state(&mut harness, State::Init);
    let _second = common::server_with(streamlab::net::server::ServerConfig {
        bind: addr,
        root: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")),
        fps: 50,
        ..streamlab::net::server::ServerConfig::default()
    });
    wait_until(&mut harness, "playing again", |app| {
        app.view().state == State::Playing && app.view().reconnects == 1
    });
    let notice = harness.state().view().notice.clone().unwrap_or_default();
    assert!(
        notice.starts_with("The server is back: playing again"),
        "{notice}"
    );
    assert!(has_label(&harness, "Reconnects"));
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
}

/// TPC-3's buttons, in the places of SETUP, PLAY and TEARDOWN.
const TPC3_BUTTONS: [&str; 3] = ["Connect", "Go", "Stop"];

/// (By role: the wire log shows "Go" too, once it went.)
fn tpc3_buttons(harness: &Harness<'_, PlayerApp>) -> [bool; 3] {
    TPC3_BUTTONS.map(|b| {
        !harness
            .get_by_role_and_label(egui::accesskit::Role::Button, b)
            .accesskit_node()
            .is_disabled()
    })
}

#[test]
fn tpc3_has_its_buttons_its_port_names_and_its_phases() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "TPC-3");
    for rtsp_only in [
        "SETUP",
        "PAUSE",
        "TEARDOWN",
        "Let me send it anyway",
        "RTSP port",
    ] {
        assert!(!has_label(&harness, rtsp_only), "{rtsp_only} in TPC-3");
    }
    assert!(has_label(&harness, "TCP port") && has_label(&harness, "UDP port"));
    assert!(!enabled(&harness, "TCP"), "TPC-3's datagrams are UDP");
    assert!(has_label(&harness, "TPC-3 phases"));
    assert!(has_label(
        &harness,
        "TPC-3 phase diagram, current phase Not connected"
    ));
    assert_eq!(tpc3_buttons(&harness), [true, false, false]);

    click(&mut harness, "Connect");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Setup]
    );
    let config = harness.state().engine_config().cloned().expect("Connect");
    assert_eq!(config.dialect, DialectChoice::Tpc3);
    assert_eq!(tpc3_buttons(&harness), [false, false, false], "waiting");
    assert!(has_label(&harness, "waiting for the reply to Connect"));

    // The engine's events for the handshake, as it sends them.
    feed(&mut harness, wire(0, Direction::Sent, "movie.Mjpeg 5008\n"));
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::NameSent));
    feed(&mut harness, wire(3, Direction::Received, "424242\n"));
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::SessionId));
    feed(
        &mut harness,
        ClientEvent::State {
            state: State::Ready,
            session: Some("424242".into()),
        },
    );
    assert_eq!(tpc3_buttons(&harness), [false, true, true]);
    assert!(has_label(
        &harness,
        "TPC-3 phase diagram, current phase Session id received"
    ));
    // Each arrow taken names the bytes that took it, and shows them.
    let arrow = "Name and port sent -> Session id received: \"424242\" received";
    assert!(has_label(&harness, arrow));
    assert!(has_label(
        &harness,
        "Not connected -> Name and port sent: \"movie.Mjpeg 5008\" sent"
    ));
    click(&mut harness, arrow);
    let answer = harness.state().view().wire[1].id;
    assert_eq!(
        harness
            .state()
            .view()
            .wire_focus
            .as_ref()
            .map(|f| f.ids.clone()),
        Some(vec![answer])
    );

    click(&mut harness, "Go");
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Play]
    );
    feed(&mut harness, wire(5, Direction::Sent, "Go\n"));
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::GoSent));
    feed(&mut harness, state_event(State::Playing));
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::Receiving));
    assert_eq!(tpc3_buttons(&harness), [false, false, true]);
    assert!(has_label(&harness, "Receiving"));
    assert!(has_label(&harness, "Transfer phase"));
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Stop")
        .click();
    harness.run();
    assert_eq!(
        harness.state_mut().take_sent_commands(),
        [ClientCommand::Teardown]
    );
}

#[test]
fn tpc3_minus_one_is_said_in_words_in_the_banner() {
    let mut harness = fixture(State::Init);
    click(&mut harness, "TPC-3");
    click(&mut harness, "Connect");
    feed(
        &mut harness,
        wire(0, Direction::Sent, "nothere.Mjpeg 5008\n"),
    );
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::NameSent));
    feed(&mut harness, wire(2, Direction::Received, "-1\n"));
    let error = ClientError::NoSuchFile {
        file: "nothere.Mjpeg".into(),
    };
    feed(&mut harness, ClientEvent::Error(error.clone()));
    feed(&mut harness, ClientEvent::Tpc3(Tpc3Phase::Ended));
    assert!(has_label(&harness, &format!("Error: {error}")));
    assert!(
        error
            .to_string()
            .contains("has no file named nothere.Mjpeg")
    );
    assert!(has_label(
        &harness,
        "TPC-3 phase diagram, current phase Ended"
    ));
    assert!(has_label(&harness, "Receiving -> Ended: \"-1\" received"));
    // Connect again, with another name.
    assert_eq!(tpc3_buttons(&harness), [true, false, false]);
}

#[test]
fn tpc3_plays_from_our_server_in_the_window() {
    let server = sample_server();
    let mut harness = live();
    click(&mut harness, "TPC-3");
    set_text(&mut harness, "Host", "127.0.0.1");
    set_text(
        &mut harness,
        "TCP port",
        &server.local_addr().port().to_string(),
    );
    set_text(&mut harness, "File", "sample.mjpeg");
    click(&mut harness, "Connect");
    wait_for_state(&mut harness, State::Ready);
    assert!(has_label(&harness, "Session id received"));
    click(&mut harness, "Go");
    wait_until(&mut harness, "frame 6", |app| {
        app.view().frame.is_some_and(|f| f.number > 5)
    });
    wait_until(&mut harness, "Receiving", |app| {
        app.view().tpc3_phase == Tpc3Phase::Receiving
    });
    let session = harness
        .state()
        .view()
        .session
        .clone()
        .expect("a session id");
    let wire = wire_text(harness.state());
    assert!(wire.starts_with("sample.mjpeg "), "{wire}");
    assert!(wire.contains(&format!("\n\n{session}\n\nGo")), "{wire}");
    assert_eq!(
        harness.state().view().stats.ssrc.map(|s| s.to_string()),
        Some(session)
    );
    click(&mut harness, "Stop");
    wait_for_state(&mut harness, State::Init);
    assert_eq!(harness.state().view().tpc3_phase, Tpc3Phase::Ended);
    assert!(
        harness.state().view().errors.is_empty(),
        "{:?}",
        harness.state().view().errors
    );
}

#[test]
fn serve_test_pattern_plays_the_live_source_at_once() {
    let mut harness = live();
    click(&mut harness, "Serve test pattern");
    let server = harness.state().view().server.clone().expect("serving");
    assert!(server.live, "{server:?}");
    assert!(server.url.ends_with("/pattern"), "{}", server.url);
    assert_eq!(value(&harness, "File"), "pattern");
    set_text(&mut harness, "RTP port", "0");
    click(&mut harness, "SETUP");
    wait_for_state(&mut harness, State::Ready);
    click(&mut harness, "PLAY");
    wait_until(&mut harness, "live frames", |app| {
        app.view()
            .frame
            .is_some_and(|f| f.number > 5 && (f.width, f.height) == (1280, 720))
    });
    assert!(
        harness.state().view().timeline.length_ms.is_none(),
        "live: no length, no seek bar"
    );
    click(&mut harness, "TEARDOWN");
    wait_for_state(&mut harness, State::Init);
}

#[test]
fn serve_camera_is_offered_only_when_a_camera_is_found() {
    let mut harness = fixture(State::Init);
    // No camera on a machine without /dev/video*: said, not offered.
    assert!(
        shown_anywhere(&harness, "no camera found").len() == 1,
        "{:?}",
        shown_anywhere(&harness, "camera")
    );
    assert!(!enabled(&harness, "Serve camera"));
    click(&mut harness, "Serve test pattern");
    assert_eq!(
        harness.state_mut().take_serve_requests(),
        vec![PathBuf::from("pattern")],
        "the test pattern goes to the built-in server"
    );
}
