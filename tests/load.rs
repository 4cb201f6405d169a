//! `streamlab load` against our own server on 127.0.0.1: a handful of
//! sessions over UDP and over TCP, and the JSON it prints. Only counts and
//! consistency are asserted here; speed belongs to the sweep
//! (scripts/sweep.py) and the benches.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use streamlab::net::server::ServerConfig;

fn load(url: &str, sessions: usize, transport: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["load", url, "--json", "--seconds", "1.5", "--transport"])
        .arg(transport)
        .args(["--sessions", &sessions.to_string()])
        .output()
        .expect("run streamlab load");
    assert!(
        out.status.success(),
        "streamlab load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn check(j: &serde_json::Value, sessions: u64) {
    let n = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k} in {j}"));
    let f = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{k} in {j}"));
    assert_eq!(n("sessions"), sessions, "{j}");
    assert_eq!(n("playing"), sessions, "every session reached PLAY: {j}");
    assert!(n("frames_received") > 0, "{j}");
    assert!(n("frames_expected") > 0, "{j}");
    assert!(n("on_time") <= sessions, "{j}");
    assert!(n("packets_received") <= n("packets_expected"), "{j}");
    assert!((0.0..=1.0).contains(&f("loss")), "{j}");
    assert!(f("late_p50_ms") <= f("late_p99_ms"), "{j}");
    assert!(f("late_p99_ms") <= f("late_max_ms"), "{j}");
    assert_eq!(f("fps"), 20.0, "the SDP's framerate: {j}");
    assert!(f("own_cpu_percent") >= 0.0, "{j}");
    assert!(
        j["failures"].as_array().is_some_and(|a| a.is_empty()),
        "{j}"
    );
    // The reference sender ran over the same window at the stream's rate
    // (20 fps; the first and last frames may fall outside).
    let floor_frames = (f("window_seconds") * 20.0).round() as u64;
    assert!(
        (floor_frames.saturating_sub(3)..=floor_frames + 1).contains(&n("floor_frames_received")),
        "the timer floor's frames: {j}"
    );
    assert!(f("floor_late_p50_ms") <= f("floor_late_p99_ms"), "{j}");
    assert!(f("floor_late_p99_ms") <= f("floor_late_max_ms"), "{j}");
    // Our server paces on an absolute schedule: over 1.5 s its rate is
    // off by jitter alone (a unit slip in the fit would be far off).
    assert!(f("rate_error_worst").abs() < 0.02, "{j}");
    assert!(
        f("rate_error_median").abs() <= f("rate_error_worst").abs(),
        "{j}"
    );
}

fn server() -> streamlab::net::server::ServerHandle {
    common::server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(common::media_root()),
        fps: 20,
        looping: true,
        ..ServerConfig::default()
    })
}

#[test]
fn load_over_udp_reports_every_session() {
    let s = server();
    let url = format!("rtsp://{}/movie.Mjpeg", s.local_addr());
    check(&load(&url, 6, "udp"), 6);
}

#[test]
fn load_over_tcp_reports_every_session() {
    let s = server();
    let url = format!("rtsp://{}/movie.Mjpeg", s.local_addr());
    check(&load(&url, 3, "tcp"), 3);
}

#[test]
fn a_missing_file_is_reported_as_failed_sessions() {
    let s = server();
    let url = format!("rtsp://{}/no-such-file.Mjpeg", s.local_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["load", &url, "--json", "--seconds", "0", "--sessions", "2"])
        .output()
        .expect("run streamlab load");
    assert!(!out.status.success(), "nothing played");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["playing"], 0, "{j}");
    let failures = j["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{j}");
    assert_eq!(failures[0]["count"], 2, "{j}");
    assert!(
        failures[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("404")),
        "{j}"
    );
}

/// A run longer than the server's session timeout keeps its sessions
/// alive, as a real client does (OPTIONS in the session at half the
/// timeout the Session header gives): they play to the end.
#[test]
fn sessions_are_kept_alive_past_the_servers_timeout() {
    let s = common::server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(common::media_root()),
        fps: 20,
        looping: true,
        session_timeout: std::time::Duration::from_secs(2),
        ..ServerConfig::default()
    });
    let url = format!("rtsp://{}/movie.Mjpeg", s.local_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["load", &url, "--json", "--seconds", "4", "--sessions", "3"])
        .output()
        .expect("run streamlab load");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    check(&j, 3);
    // Four seconds at 20 fps each, give or take the edges of the window;
    // a session ended at the timeout would have stopped at about two.
    let received = j["frames_received"].as_u64().unwrap_or(0);
    assert!(received >= 3 * 75, "sessions stopped early: {j}");
}
