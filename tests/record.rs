//! Recording and snapshots (`probe --record`, `streamlab snapshot`): the
//! frames as they came off the wire, never encoded again, in a file that
//! plays back frame for frame, whole even when Ctrl-C stops the probe
//! mid-stream; a full disk said once while playback goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use streamlab::media::MjpegFile;
use streamlab::net::server::ServerConfig;

fn streamlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamlab"))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

/// Every frame of a recording, read back as `streamlab serve` reads it.
fn frames_of(path: &Path) -> Vec<Vec<u8>> {
    let file = MjpegFile::open(path).expect("a recording opens");
    (0..)
        .map_while(|i| file.frame(i).expect("no torn frame"))
        .collect()
}

fn serve(root: PathBuf) -> streamlab::net::server::ServerHandle {
    server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(root),
        fps: 100,
        ..ServerConfig::default()
    })
}

#[test]
fn a_lab_recording_holds_the_frames_exactly_as_sent() {
    let server = serve(media_root());
    let out = temp_dir("record-lab").join("got.Mjpeg");
    let port = server.local_addr().port().to_string();
    let run = streamlab()
        .args([
            "probe",
            "127.0.0.1",
            &port,
            "0",
            "movie.Mjpeg",
            "--frames",
            "40",
        ])
        .args(["--dialect", "lab", "--record"])
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let j = json(&run);
    let recorded = j["recorded"]["frames"].as_u64().unwrap();
    assert!(recorded >= 40, "{j}");
    let got = frames_of(&out);
    assert_eq!(got.len() as u64, recorded, "{j}");
    // The lab sends each JPEG whole: the recording is the file's own frames.
    let movie = movie_frames();
    for (i, f) in got.iter().enumerate() {
        assert!(f == &movie[i], "frame {i} differs from movie.Mjpeg's");
    }
    let head = format!("{:05}", movie[0].len());
    assert_eq!(
        &std::fs::read(&out).unwrap()[..5],
        head.as_bytes(),
        "lab framing"
    );
}

#[test]
fn a_standard_recording_served_back_is_frame_identical_to_what_was_received() {
    let server = serve(media_root());
    let dir = temp_dir("record-standard");
    let first = dir.join("first.mjpeg");
    let url = format!("rtsp://{}/movie.Mjpeg", server.local_addr());
    let j = json(
        &streamlab()
            .args([
                "probe",
                &url,
                "--frames",
                "30",
                "--framing",
                "raw",
                "--json",
                "--record",
            ])
            .arg(&first)
            .output()
            .unwrap(),
    );
    assert!(j["recorded"]["frames"].as_u64().unwrap() >= 30, "{j}");
    assert_eq!(j["recorded"]["framing"], "raw concatenated JPEG");
    let received = frames_of(&first);
    // Serve the recording and record it again: what comes back is what
    // was received the first time (4:2:0 frames travel untouched).
    let again = serve(dir.clone());
    let second = dir.join("second.mjpeg");
    let url = format!("rtsp://{}/first.mjpeg", again.local_addr());
    let n = received.len().to_string();
    json(
        &streamlab()
            .args(["probe", &url, "--frames", &n, "--json", "--record"])
            .arg(&second)
            .output()
            .unwrap(),
    );
    let back = frames_of(&second);
    assert!(
        back.len() >= received.len().min(30),
        "{} of {}",
        back.len(),
        received.len()
    );
    for (i, f) in back.iter().enumerate() {
        assert!(f == &received[i], "frame {i} changed on the way back");
    }
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_mid_stream_leaves_a_whole_recording() {
    let server = server_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        root: Some(media_root()),
        fps: 20,
        looping: true,
        ..ServerConfig::default()
    });
    let out = temp_dir("record-ctrl-c").join("cut.Mjpeg");
    let url = format!("rtsp://{}/movie.Mjpeg", server.local_addr());
    let child = streamlab()
        .args(["probe", &url, "--json", "--record"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("frames on disk", Duration::from_secs(20), || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 50_000)
    });
    interrupt(&child);
    let run = child.wait_with_output().unwrap();
    let j = json(&run);
    let recorded = j["recorded"]["frames"].as_u64().unwrap();
    assert!(recorded > 0, "{j}");
    assert_eq!(j["torn_down"], true, "{j}");
    let got = frames_of(&out);
    assert_eq!(got.len() as u64, recorded, "every frame whole: {j}");
    for (i, f) in got.iter().enumerate() {
        assert!(
            streamlab::media::decode::decode_rgba(f).is_ok(),
            "frame {i} does not decode"
        );
    }
}

#[test]
fn a_full_disk_is_said_once_and_playback_goes_on() {
    let server = serve(media_root());
    let port = server.local_addr().port().to_string();
    let j = json(
        &streamlab()
            .args([
                "probe",
                "127.0.0.1",
                &port,
                "0",
                "movie.Mjpeg",
                "--frames",
                "30",
            ])
            .args(["--record", "/dev/full", "--json"])
            .output()
            .unwrap(),
    );
    assert!(j["frames"].as_u64().unwrap() >= 30, "playback went on: {j}");
    assert_eq!(j["recorded"]["frames"], 0, "{j}");
    let errors: Vec<&str> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| e.contains("the disk is full"))
        .collect();
    assert_eq!(errors.len(), 1, "said once: {j}");
}

#[test]
fn a_snapshot_is_one_frame_as_received() {
    let server = serve(media_root());
    let out = temp_dir("snapshot").join("frame.jpg");
    let url = format!("rtsp://{}/movie.Mjpeg", server.local_addr());
    let run = streamlab()
        .args(["snapshot", &url])
        .arg(&out)
        .args(["--dialect", "lab"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("saved a 384x288 frame"), "{said}");
    let jpeg = std::fs::read(&out).unwrap();
    assert!(
        movie_frames().iter().any(|f| f == &jpeg),
        "the snapshot is one of the file's frames, byte for byte"
    );
    // Nothing there: a clear failure and no file.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let missing = out.with_file_name("none.jpg");
    let run = streamlab()
        .args([
            "snapshot",
            &format!("rtsp://127.0.0.1:{port}/x"),
            "--timeout",
            "5",
        ])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("could not connect"));
    assert!(!missing.exists());
}
