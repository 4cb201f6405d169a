//! Live sources (`serve --source NAME=testpattern...`): ffprobe reads the
//! size and rate, ffmpeg and our probe play it at the full rate, two
//! viewers that join seconds apart see the same RTP timestamp on the same
//! picture, PAUSE stops one viewer only and PLAY resumes at the live edge,
//! the lab's dialect plays it by name, and the source runs only while
//! watched. On 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use streamlab::media::live::SourceSpec;
use streamlab::net::client::{ClientCommand, ClientConfig, ClientEvent, ClientHandle};
use streamlab::net::server::{ServerConfig, ServerHandle};
use streamlab::protocol::State;

const FPS: u32 = 30;

fn live_server() -> ServerHandle {
    server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: None,
        live: vec![SourceSpec::parse("pattern=testpattern:320x240@30").unwrap()],
        ..ServerConfig::default()
    })
}

fn url(s: &ServerHandle) -> String {
    format!("rtsp://{}/pattern", s.local_addr())
}

#[test]
fn ffprobe_reads_the_patterns_size_and_rate_and_the_sdp_says_live() {
    if !have("ffprobe") {
        return;
    }
    let server = live_server();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-timeout",
            "5000000",
            "-rtsp_transport",
            "tcp",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate",
        ])
        .args(["-of", "csv=p=0"])
        .arg(url(&server))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), "mjpeg,320,240,30/1");
    // The description has no length: `a=range:npt=now-`.
    let mut lab = LabClient::connect(server.local_addr());
    lab.send_raw(
        format!(
            "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n",
            url(&server)
        )
        .as_bytes(),
    );
    let reply = lab.read_reply();
    assert_eq!(reply.status, 200);
    let sdp = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(sdp.contains("a=range:npt=now-\r\n"), "{sdp}");
    assert!(sdp.contains("a=framerate:30"), "{sdp}");
}

#[test]
fn ffmpeg_and_our_probe_each_read_it_for_10_s_at_the_full_rate() {
    let server = live_server();
    let target = url(&server);
    let ffmpeg = have("ffmpeg").then(|| {
        let target = target.clone();
        std::thread::spawn(move || {
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-timeout", "5000000"])
                .args(["-rtsp_transport", "udp", "-i", &target, "-t", "10"])
                .args(["-f", "framemd5", "-"])
                .output()
                .unwrap()
        })
    });
    let probe = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["probe", &target, "--seconds", "10", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let frames = j["frames"].as_u64().unwrap();
    assert!(frames >= 290, "10 s at 30 fps: {j}");
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(320), Some(240))
    );
    if let Some(ffmpeg) = ffmpeg {
        let out = ffmpeg.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert!(got >= 290, "ffmpeg decoded {got} frames in 10 s");
    }
}

/// A viewer of `url`: SETUP and PLAY, then frames as they come.
struct Viewer {
    client: ClientHandle,
}

impl Viewer {
    fn start(url: &str) -> Viewer {
        let mut config = ClientConfig::from_url(url).unwrap();
        config.rtp_port = 0;
        let client = ClientHandle::spawn(config, || {});
        client.send(ClientCommand::Setup);
        let v = Viewer { client };
        v.until_state(State::Ready);
        v.client.send(ClientCommand::Play);
        v
    }

    fn until_state(&self, want: State) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.client.events().recv_deadline(deadline) {
                Ok(ClientEvent::State { state, .. }) if state == want => return,
                Ok(ClientEvent::Error(e)) => panic!("{e}"),
                Ok(_) => {}
                Err(_) => panic!("no {want:?}"),
            }
        }
    }

    /// The next `n` frames: each JPEG with its RTP timestamp.
    fn frames(&self, n: usize) -> Vec<(Arc<Vec<u8>>, u32)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while out.len() < n {
            match self.client.events().recv_deadline(deadline) {
                Ok(ClientEvent::Frame(f)) => out.push((f.jpeg.clone(), f.rtp_timestamp)),
                Ok(_) => {}
                Err(_) => panic!("only {} of {n} frames", out.len()),
            }
        }
        out
    }

    fn drain(&self) {
        while self.client.events().try_recv().is_ok() {}
    }
}

#[test]
fn viewers_joining_apart_share_timestamps_and_pause_alone() {
    let server = live_server();
    assert_eq!(
        server.live_source_running("pattern"),
        Some(false),
        "nobody watches yet"
    );
    let a = Viewer::start(&url(&server));
    // Three seconds of frames, then a second viewer joins mid-stream.
    a.frames(3 * FPS as usize);
    let b = Viewer::start(&url(&server));
    let seen_b = b.frames(FPS as usize);
    let seen_a: HashMap<Vec<u8>, u32> = a
        .frames(2 * FPS as usize)
        .into_iter()
        .map(|(j, t)| ((*j).clone(), t))
        .collect();
    let mut common = 0;
    for (jpeg, ts) in &seen_b {
        if let Some(ta) = seen_a.get(jpeg.as_slice()) {
            assert_eq!(*ta, *ts, "the same picture, the same RTP timestamp");
            common += 1;
        }
    }
    assert!(common >= FPS as usize / 2, "{common} pictures seen by both");
    // B joined at the live edge: its first frame is no older than a few
    // frames before A's at that moment, no backlog from the start.
    let first_b = seen_b[0].1;
    let oldest_a = *seen_a.values().min().unwrap();
    assert!(
        first_b.wrapping_sub(oldest_a) < 90_000,
        "B started mid-stream"
    );

    // PAUSE stops A only; PLAY resumes at the live edge.
    // A's newest frame, not one queued while the test read B's.
    a.drain();
    let before = a.frames(1)[0].1;
    a.client.send(ClientCommand::Pause);
    a.until_state(State::Ready);
    // B plays on for a second (frames that come now, not queued ones).
    b.drain();
    let during = b.frames(FPS as usize);
    assert_eq!(during.len(), FPS as usize);
    a.drain();
    a.client.send(ClientCommand::Play);
    a.until_state(State::Playing);
    // The client may show a frame or two it held over the pause first;
    // then the stream goes on from the live edge, a second on: ten frames
    // later it is far more than ten frames (30000 ticks) on.
    let after10 = a.frames(10);
    let after = after10.last().unwrap().1;
    let gap = after.wrapping_sub(before);
    assert!(
        gap >= 90_000,
        "A resumed at the live edge ({gap} ticks later), not where it paused"
    );
    a.client.shutdown(Duration::from_secs(2));
    b.client.shutdown(Duration::from_secs(2));
    // Nobody watches: the source stops a few seconds later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.live_source_running("pattern") == Some(true) {
        assert!(
            Instant::now() < deadline,
            "the source runs on with nobody watching"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `streamlab probe 127.0.0.1 PORT 0 pattern --dialect DIALECT`: 30 frames.
fn probe_by_name(server: &ServerHandle, dialect: &str) -> serde_json::Value {
    let port = server.local_addr().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "probe",
            "127.0.0.1",
            &port,
            "0",
            "pattern",
            "--dialect",
            dialect,
        ])
        .args(["--frames", "30", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_labs_dialect_plays_a_live_source_by_name() {
    let j = probe_by_name(&live_server(), "lab");
    assert!(j["frames"].as_u64().unwrap() >= 30, "{j}");
    assert_eq!(j["dropped_total"], 0, "{j}");
}

#[test]
fn tpc3_plays_a_live_source_by_name_every_datagram_checked() {
    let j = probe_by_name(&live_server(), "tpc3");
    assert!(j["frames"].as_u64().unwrap() >= 30, "{j}");
    // SSRC = the session id, sequence from 1, PT 26: nothing refused.
    assert_eq!(j["dropped_total"], 0, "{j}");
}

#[test]
fn a_camera_unplugged_while_streaming_ends_its_sessions_and_the_server_lives_on() {
    use streamlab::media::camera::{CameraError, CameraFrame, Capture, PixelFormat, Replay};
    use streamlab::net::server::Cameras;
    // The device double: YUYV frames, then unplugged after 15.
    let cameras = Cameras(Arc::new(|device: &str, w, h, _| {
        let frame = CameraFrame {
            format: PixelFormat::Yuyv,
            width: w,
            height: h,
            bytes: [90u8, 128, 90, 128].repeat(usize::from(w) * usize::from(h) / 2),
        };
        Ok(Box::new(
            Replay::new(vec![frame]).failing_after(15, CameraError::Unplugged(device.into())),
        ) as Box<dyn Capture>)
    }));
    let server = server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: None,
        live: vec![
            SourceSpec::parse("cam=camera:/dev/video0:64x48@20").unwrap(),
            SourceSpec::parse("pattern=testpattern:320x240@30").unwrap(),
        ],
        cameras: Some(cameras),
        ..ServerConfig::default()
    });
    let probe = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
            .args(["probe", &format!("rtsp://{}/{name}", server.local_addr())])
            .args(["--seconds", "10", "--frames", "20", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let cam = probe("cam");
    let frames = cam["frames"].as_u64().unwrap();
    assert!(
        (1..=15).contains(&frames),
        "the camera's frames, then nothing: {cam}"
    );
    assert!(
        cam["errors"]
            .to_string()
            .contains("the server closed the RTSP connection"),
        "the session ended: {cam}"
    );
    // The server lives on: the other source plays.
    let pattern = probe("pattern");
    assert!(pattern["frames"].as_u64().unwrap() >= 20, "{pattern}");
}
