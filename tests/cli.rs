//! The `streamlab` binary as a user runs it: `serve` and `probe`, their
//! errors, their exit codes, and Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn streamlab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamlab"));
    c.env_remove("RUST_LOG");
    c
}

/// `streamlab probe 127.0.0.1 PORT 0 movie.Mjpeg EXTRA...`
fn probe_cmd(port: u16, extra: &[&str]) -> Command {
    let mut c = streamlab();
    c.args(["probe", "127.0.0.1", &port.to_string(), "0", "movie.Mjpeg"])
        .args(extra);
    c
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_reports_a_port_in_use_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = streamlab()
        .args(["serve", &port.to_string(), "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

#[test]
fn serve_reports_a_missing_root() {
    let out = streamlab()
        .args(["serve", "0", "--root", "/no/such/folder"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/folder") && err.contains("does not exist"),
        "{err}"
    );
}

/// Start `streamlab serve 0` and read the port it listens on from its log.
fn spawn_serve(extra: &[&str]) -> (Child, u16) {
    let mut child = streamlab()
        .args(["serve", "0", "--bind", "127.0.0.1", "--root"])
        .arg(media_root())
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split("rtsp://127.0.0.1:").nth(1) {
            break rest
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

#[test]
fn probe_plays_from_serve_and_prints_json() {
    let (mut server, port) = spawn_serve(&["--fps", "100"]);
    let out = probe_cmd(port, &["--frames", "30", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(v["frames"].as_u64().unwrap() >= 30);
    assert!(v["bytes"].as_u64().unwrap() > 30 * 4000);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["dropped_total"], 0);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(384), Some(288))
    );
    assert!(v["fps"].as_f64().unwrap() > 50.0, "{v}");
    assert!(v["first_frame_ms"].as_f64().unwrap() < 2000.0);
    assert_eq!(v["ended"], false);
    assert_eq!(v["torn_down"], true);
    interrupt(&server);
    assert!(
        wait_exit(&mut server, Duration::from_secs(5)).success(),
        "Ctrl-C stops serve cleanly"
    );
}

#[test]
fn probe_exits_non_zero_when_nothing_plays() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let out = probe_cmd(port, &["--json"]).output().unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 0);
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
}

#[test]
fn probe_ctrl_c_sends_teardown() {
    let server = server(media_root(), 20);
    let port = server.local_addr().port();
    let mut probe = probe_cmd(port, &["--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.active_sessions() == 0 {
        assert!(Instant::now() < deadline, "probe never set up");
        std::thread::sleep(Duration::from_millis(20));
    }
    interrupt(&probe);
    wait_exit(&mut probe, Duration::from_secs(5));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut probe.stdout.take().unwrap(), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).expect("a report even on Ctrl-C");
    assert_eq!(v["torn_down"], true, "{v}");
    assert_eq!(server.active_sessions(), 0);
}

#[test]
fn make_clip_writes_a_playable_lab_file() {
    let dir = temp_dir("clip");
    let path = dir.join("clip.mjpeg");
    let out = streamlab()
        .args(["make-clip"])
        .arg(&path)
        .args(["--frames", "12", "--size", "640x360", "--framing", "lab6"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = streamlab::media::MjpegFile::open(&path).unwrap();
    assert_eq!(f.index_all().unwrap(), 12);
    assert_eq!(f.framing(), streamlab::media::Framing::Lab { digits: 6 });
    assert_eq!(f.dimensions(), Some((640, 360)));
    std::fs::remove_dir_all(dir).ok();
}
