//! Streamlab against the lab's own kind of Python code on either side:
//! `tests/peers/lab_client.py` and `tests/peers/lab_server.py` are our own
//! Python 3 (stdlib only) that behave on the wire exactly as the lab's
//! reference Client.py and Server.py do (shared/docs/lab-dialect.md).
//!
//! Without `python3` the tests print a note and pass, unless
//! STREAMLAB_REQUIRE_PEERS is set (CI), when they fail.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::Receiver;
use serde_json::Value;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, DialectChoice,
};
use streamlab::net::probe::{ProbeLimits, probe};
use streamlab::protocol::State;

/// The Python client's UDP receive buffer. The Linux default holds only
/// about 12 of movie.Mjpeg's datagrams: at 100 fps a Python reader that a
/// busy machine holds off for 120 ms would lose frames whatever the server
/// does (seen while a release build ran: readers 300-650 ms behind, the
/// datagrams themselves evenly spaced). Nothing on the wire changes.
const RCVBUF: &str = "4194304";

fn peer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// Everything `stream` yields until EOF, on a thread, as a channel.
fn read_all_later(mut stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stream.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// Run lab_client.py with `args`; its JSON line and exit code.
fn run_lab_client(args: &[String], limit: Duration) -> (Value, Option<i32>) {
    run_peer("lab_client.py", args, limit)
}

/// Run the peer `script` with `args`; its last line as JSON, and its exit
/// code.
fn run_peer(script: &str, args: &[String], limit: Duration) -> (Value, Option<i32>) {
    let mut child = Command::new("python3")
        .arg(peer(script))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn python3 {script}: {e}"));
    let stdout = read_all_later(child.stdout.take().unwrap());
    let stderr = read_all_later(child.stderr.take().unwrap());
    let mut child = Reaper(child);
    let out = stdout
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{script} {args:?} did not finish within {limit:?}"));
    let code = child.0.wait().expect("wait for the peer").code();
    let err = stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{script} printed nothing (exit {code:?}); stderr:\n{err}"));
    let json: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script} printed {line:?} ({e}); stderr:\n{err}"));
    (json, code)
}

/// lab_server.py started in `cwd` on a free port of 127.0.0.1.
fn start_lab_server(cwd: &Path, period: &str) -> (Reaper, u16, ChildStdout) {
    start_peer_server("lab_server.py", cwd, &["--period", period])
}

/// The peer server `script` started in `cwd` on a free port of 127.0.0.1,
/// with `args` after the port.
fn start_peer_server(script: &str, cwd: &Path, args: &[&str]) -> (Reaper, u16, ChildStdout) {
    let mut child = Command::new("python3")
        .arg(peer(script))
        .args(["0", "--bind", "127.0.0.1"])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn python3 {script}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let child = Reaper(child);
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        // Keep the pipe open (the server writes nothing more to it).
        let _ = tx.send((line, reader.into_inner()));
    });
    let (line, stdout) = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{script} did not say where it listens within 10 s"));
    let port: u16 = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{script}'s first line is {line:?}"));
    (child, port, stdout)
}

/// CRC-32 (IEEE, as Python's zlib.crc32).
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn u64s(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// The client's frames are exactly the file's first `n`, in order.
fn assert_frames_are_the_movies(json: &Value, n: usize) {
    let frames = movie_frames();
    let want_sizes: Vec<u64> = frames[..n].iter().map(|f| f.len() as u64).collect();
    let want_crcs: Vec<u64> = frames[..n].iter().map(|f| u64::from(crc32(f))).collect();
    let want_seqs: Vec<u64> = (1..=n as u64).collect();
    assert_eq!(u64s(json, "seqs"), want_seqs, "RTP sequence numbers");
    assert_eq!(u64s(json, "sizes"), want_sizes, "payload sizes");
    assert_eq!(u64s(json, "crc32"), want_crcs, "payload CRC-32s");
    assert_eq!(json["sha256"].as_array().map(Vec::len), Some(n));
    assert_eq!(json["stale_dropped"], 0, "{}", summary(json));
    assert_eq!(json["full_reads"], 0, "{}", summary(json));
}

/// The JSON without the per-frame lists, plus the sequence numbers that
/// never arrived, for messages.
fn summary(json: &Value) -> Value {
    let seqs = json["seqs"].as_array().cloned().unwrap_or_default();
    let got: Vec<u64> = seqs.iter().filter_map(Value::as_u64).collect();
    let top = got.iter().copied().max().unwrap_or(0);
    let missing: Vec<u64> = (1..=top).filter(|n| !got.contains(n)).collect();
    let mut j = json.clone();
    if let Some(o) = j.as_object_mut() {
        for k in ["sizes", "crc32", "sha256", "seqs"] {
            o.remove(k);
        }
        o.insert("missing_seqs".into(), missing.into());
    }
    j
}

#[test]
fn python_lab_client_plays_from_our_server() {
    if !have_python() {
        return;
    }
    let server = server(media_root(), 100);
    let port = server.local_addr().port();
    let args: Vec<String> = [
        "127.0.0.1",
        &port.to_string(),
        "0",
        "movie.Mjpeg",
        "--frames",
        "500",
        "--rcvbuf",
        RCVBUF,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (json, code) = run_lab_client(&args, Duration::from_secs(20));
    let s = summary(&json);
    assert_eq!(json["errors"], serde_json::json!([]), "{s}");
    assert_eq!(json["frames"], 500, "{s}");
    assert_eq!(u64s(&json, "statuses"), [200, 200, 200], "{s}");
    let session = json["session"].as_u64().unwrap();
    assert!((100_000..=999_999).contains(&session), "{s}");
    assert_frames_are_the_movies(&json, 500);
    assert_eq!(code, Some(0), "{s}");
}

#[test]
fn python_lab_client_pause_and_resume() {
    if !have_python() {
        return;
    }
    let server = server(media_root(), 20);
    let port = server.local_addr().port();
    let args: Vec<String> = [
        "127.0.0.1",
        &port.to_string(),
        "0",
        "movie.Mjpeg",
        "--frames",
        "60",
        "--pause-after",
        "20",
        "--rcvbuf",
        RCVBUF,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (json, code) = run_lab_client(&args, Duration::from_secs(15));
    let s = summary(&json);
    assert_eq!(json["errors"], serde_json::json!([]), "{s}");
    assert_eq!(json["frames"], 60, "{s}");
    // SETUP, PLAY, PAUSE, PLAY, TEARDOWN.
    assert_eq!(u64s(&json, "statuses"), [200; 5], "{s}");
    let extra = json["paused_extra"]
        .as_u64()
        .unwrap_or_else(|| panic!("no paused_extra: {s}"));
    assert!(extra <= 1, "{extra} frames came after PAUSE: {s}");
    assert_frames_are_the_movies(&json, 60);
    assert_eq!(code, Some(0), "{s}");
}

#[test]
fn our_client_plays_from_python_lab_server() {
    if !have_python() {
        return;
    }
    let (_server, port, _stdout) = start_lab_server(&media_root(), "0.005");
    // Auto: OPTIONS goes unanswered, as the lab's server does, and the
    // client falls back to the lab's dialect on a new connection.
    let config = ClientConfig {
        host: "127.0.0.1".into(),
        rtsp_port: port,
        rtp_port: 0,
        file: "movie.Mjpeg".into(),
        ..ClientConfig::default()
    };
    let limits = ProbeLimits {
        frames: Some(500),
        ..ProbeLimits::default()
    };
    let report = probe(config, limits, &crossbeam_channel::never());
    let s = report.summary();
    assert!(report.errors.is_empty(), "{:?}; {s}", report.errors);
    assert_eq!(report.stats.frames, 500, "{s}");
    assert_eq!(report.stats.decode_errors, 0, "{s}");
    assert_eq!(report.stats.lost, 0, "{s}");
    assert_eq!(
        report.stats.dropped_total(),
        0,
        "{:?}; {s}",
        report.stats.dropped
    );
    assert_eq!((report.width, report.height), (384, 288), "{s}");
    assert!(report.torn_down, "{s}");
}

/// The next event that `pick` accepts, within `wait`.
fn next_event<T>(
    events: &Receiver<ClientEvent>,
    wait: Duration,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + wait;
    loop {
        match events.recv_deadline(deadline) {
            Ok(ev) => {
                if let Some(t) = pick(&ev) {
                    return t;
                }
            }
            Err(_) => panic!("no {what} within {wait:?}"),
        }
    }
}

fn state_event(ev: &ClientEvent) -> Option<State> {
    match ev {
        ClientEvent::State { state, .. } => Some(*state),
        _ => None,
    }
}

#[test]
fn python_lab_server_stays_silent_in_wrong_state_and_our_client_says_so() {
    if !have_python() {
        return;
    }
    let (_server, port, _stdout) = start_lab_server(&media_root(), "0.05");
    let client = ClientHandle::spawn(
        ClientConfig {
            host: "127.0.0.1".into(),
            rtsp_port: port,
            rtp_port: 0,
            file: "movie.Mjpeg".into(),
            // This test checks the lab's bytes from the first request on.
            dialect: DialectChoice::Lab,
            ..ClientConfig::default()
        },
        || {},
    );
    let events = client.events().clone();

    // PLAY before SETUP: refused by our engine, nothing is sent.
    client.send(ClientCommand::Play);
    let e = next_event(&events, Duration::from_secs(5), "an error", |ev| match ev {
        ClientEvent::Error(e) => Some(e.to_string()),
        ClientEvent::Wire(w) => panic!("sent {:?} before SETUP", w.text),
        _ => None,
    });
    assert!(e.contains("press SETUP first"), "{e}");

    client.send(ClientCommand::Setup);
    let sent = next_event(
        &events,
        Duration::from_secs(5),
        "SETUP on the wire",
        |ev| match ev {
            ClientEvent::Wire(w) => Some(w.text.clone()),
            _ => None,
        },
    );
    assert!(
        sent.starts_with("SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= "),
        "{sent:?}"
    );
    let state = next_event(&events, Duration::from_secs(5), "READY", state_event);
    assert_eq!(state, State::Ready);

    // PAUSE in READY: the lab server would answer nothing, so our lab
    // client does not send it and says why at once.
    client.send(ClientCommand::Pause);
    let e = next_event(
        &events,
        Duration::from_secs(5),
        "a refusal",
        |ev| match ev {
            ClientEvent::Error(e) => Some(e.to_string()),
            ClientEvent::Wire(w) => panic!("sent on the wire: {:?}", w.text),
            ClientEvent::State { state, .. } => panic!("moved to {state:?}"),
            _ => None,
        },
    );
    assert!(e.contains("PAUSE is not possible in state READY"), "{e}");

    // The session still works: PLAY brings frames, TEARDOWN ends it.
    client.send(ClientCommand::Play);
    let state = next_event(&events, Duration::from_secs(5), "PLAYING", state_event);
    assert_eq!(state, State::Playing);
    next_event(&events, Duration::from_secs(5), "a frame", |ev| match ev {
        ClientEvent::Frame(f) => Some((f.width, f.height)),
        _ => None,
    });
    client.send(ClientCommand::Teardown);
    let state = next_event(&events, Duration::from_secs(5), "INIT", state_event);
    assert_eq!(state, State::Init);
    client.shutdown(Duration::from_secs(2));
}

/// A TPC-3 client written from the assignment (tests/peers/tpc3_client.py)
/// gets all 500 frames of movie.Mjpeg from our server, each datagram
/// passing every check the assignment lists; a missing file gets -1.
#[test]
fn python_tpc3_client_gets_the_movie_from_our_server() {
    if !have_python() {
        return;
    }
    let server = server(media_root(), 200);
    let port = server.local_addr().port().to_string();
    let args = |file: &str| -> Vec<String> {
        ["127.0.0.1", &port, "0", file, "--frames", "500"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let (json, code) = run_peer(
        "tpc3_client.py",
        &args("movie.Mjpeg"),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["frames"], 500, "{}", json["failures"]);
    assert_eq!(
        json["failures"],
        serde_json::json!({}),
        "every check passes"
    );
    let want: Vec<u64> = movie_frames().iter().map(|f| u64::from(crc32(f))).collect();
    assert_eq!(u64s(&json, "crc32"), want, "the frames as stored, in order");
    let (json, code) = run_peer(
        "tpc3_client.py",
        &args("nothere.Mjpeg"),
        Duration::from_secs(20),
    );
    assert_eq!((json["session"].as_i64(), code), (Some(-1), Some(2)));
}

/// A TPC-3 server written from the assignment (tests/peers/tpc3_server.py)
/// passes every check of `streamlab check server --dialect tpc3`.
#[test]
fn python_tpc3_server_passes_the_checker() {
    if !have_python() {
        return;
    }
    let root = media_root();
    let root_arg = root.to_string_lossy().to_string();
    let (_server, port, _out) = start_peer_server("tpc3_server.py", &root, &["--root", &root_arg]);
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "check",
            "server",
            "127.0.0.1",
            &port.to_string(),
            "movie.Mjpeg",
        ])
        .args(["--dialect", "tpc3", "--json"])
        .output()
        .expect("run streamlab check");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let failed: Vec<&Value> = json["checks"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["ok"] == false).collect())
        .unwrap_or_default();
    assert!(failed.is_empty(), "failed checks: {failed:?}");
    assert_eq!(out.status.code(), Some(0), "{json}");
}
