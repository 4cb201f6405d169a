//! The embedded server gets a picked file ready before PLAY and says how
//! far it has got: a raw-framed file is read through (so DESCRIBE knows its
//! length) and its first seconds re-encoded, with progress that only grows
//! and ends.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamlab::net::server::Preparing;
use streamlab::server_embedded::EmbeddedServer;

/// movie.Mjpeg's frames, `copies` times over, back to back (raw framing,
/// which has no index to hop along).
fn raw_clip(name: &str, copies: usize) -> std::path::PathBuf {
    let frames = movie_frames();
    let bytes: Vec<u8> = (0..copies).flat_map(|_| frames.concat()).collect();
    let path = temp_dir(name).join("long.mjpeg");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn describe(port: u16, file: &str) -> String {
    let mut c = LabClient::connect(([127, 0, 0, 1], port).into());
    c.send_raw(
        format!("DESCRIBE rtsp://127.0.0.1:{port}/{file} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes(),
    );
    let r = c.read_reply();
    assert_eq!(r.status, 200, "DESCRIBE: {r:?}");
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_raw_file_is_indexed_and_its_first_seconds_encoded_with_progress() {
    let path = raw_clip("prepare-raw", 4);
    let server = EmbeddedServer::start_file(&path).unwrap();
    let mut seen: Vec<Preparing> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(p) = server.preparing() {
        assert!(
            Instant::now() < deadline,
            "still preparing after 60 s: {p:?}"
        );
        if seen.last() != Some(&p) {
            seen.push(p);
        }
        std::thread::yield_now();
    }
    assert!(!seen.is_empty(), "no progress was ever shown");
    // Indexing comes first and only moves forward; encoding follows it.
    let total_bytes = std::fs::metadata(&path).unwrap().len();
    let mut last = (0u8, 0u64);
    for p in &seen {
        let now = match *p {
            Preparing::Indexing { done, total } => {
                assert_eq!(total, total_bytes);
                assert!(done <= total);
                (0, done)
            }
            Preparing::Encoding { done, total } => {
                assert_eq!(total, 40, "2 s at 20 frames per second");
                assert!(done < total);
                (1, done as u64)
            }
        };
        assert!(now >= last, "progress went back: {seen:?}");
        last = now;
    }
    // A raw file's length is known only after a full read: DESCRIBE has it
    // (2000 frames at 20 fps), so the window's position bar can seek.
    let sdp = describe(server.port(), server.file_name());
    assert!(
        sdp.contains("a=range:npt=0-100"),
        "the SDP should give the length: {sdp}"
    );
}
