//! `probe --reconnect`: a server that goes away (stopped, its connections
//! closed) and comes back on the same port is played again without a
//! word from the user, and the report counts it. On 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use streamlab::net::client::ClientConfig;
use streamlab::net::probe::{ProbeLimits, ProbeOutput, probe_to};
use streamlab::net::server::{ServerConfig, ServerHandle};

fn server_on(port: u16, fps: u32) -> ServerHandle {
    server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        root: Some(media_root()),
        fps,
        looping: true,
        ..ServerConfig::default()
    })
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_server_that_goes_away_and_comes_back_is_played_again() {
    // Slow at first: the probe's 20 frames cannot all come before it goes.
    let first = server_on(0, 5);
    let port = first.local_addr().port();
    let config = ClientConfig::from_url(&format!("rtsp://127.0.0.1:{port}/movie.Mjpeg")).unwrap();
    let (_cancel_tx, cancel) = crossbeam_channel::bounded::<()>(1);
    let probe = std::thread::spawn(move || {
        let limits = ProbeLimits {
            frames: Some(20),
            seconds: Some(60.0),
            reconnect: true,
            ..ProbeLimits::default()
        };
        probe_to(config, limits, &ProbeOutput::default(), &cancel)
    });
    wait_until("the first session", Duration::from_secs(15), || {
        first.active_sessions() == 1
    });
    first.stop();
    let second = server_on(port, 50);
    let report = probe.join().unwrap();
    assert_eq!(report.reconnects, 1, "{:?}", report.notices);
    assert!(report.stats.frames >= 20, "played on: {:?}", report.stats);
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.starts_with("playing again after")),
        "{:?}",
        report.notices
    );
    assert!(report.torn_down, "{:?}", report.errors);
    drop(second);
}

#[test]
fn without_reconnect_a_server_going_away_ends_the_probe() {
    let server = server_on(0, 5);
    let port = server.local_addr().port();
    let config = ClientConfig::from_url(&format!("rtsp://127.0.0.1:{port}/movie.Mjpeg")).unwrap();
    let (_cancel_tx, cancel) = crossbeam_channel::bounded::<()>(1);
    let probe = std::thread::spawn(move || {
        let limits = ProbeLimits {
            seconds: Some(60.0),
            ..ProbeLimits::default()
        };
        probe_to(config, limits, &ProbeOutput::default(), &cancel)
    });
    wait_until("the session", Duration::from_secs(15), || {
        server.active_sessions() == 1
    });
    server.stop();
    let report = probe.join().unwrap();
    assert_eq!(report.reconnects, 0);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e == "the server closed the RTSP connection"),
        "said why: {:?}",
        report.errors
    );
}
