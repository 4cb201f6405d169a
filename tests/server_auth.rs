//! A password on the server (RFC 2617, Digest and Basic): our client,
//! ffprobe and GStreamer's rtspsrc log in with the right password and are
//! refused with a wrong one; a client without credentials gets both
//! challenges; an address that keeps guessing is answered ever more
//! slowly; no password ever reaches the server's log. All on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use streamlab::net::server::{ServerConfig, ServerHandle};
use streamlab::protocol::auth::server::{FIRST_PENALTY, Users};

const USER: &str = "alice";
const PASSWORD: &str = "wonder-land";

fn locked_server() -> (ServerHandle, u16) {
    let server = server_with(ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        root: Some(media_root()),
        fps: 50,
        looping: true,
        users: Some(
            Users::parse("Streamlab", &format!("{USER}:{PASSWORD}\nbob:builder\n")).unwrap(),
        ),
        ..ServerConfig::default()
    });
    let port = server.local_addr().port();
    (server, port)
}

fn url(port: u16, credentials: &str) -> String {
    format!("rtsp://{credentials}127.0.0.1:{port}/movie.Mjpeg")
}

/// One request on `s`, its reply's head (status line and headers).
fn ask(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

#[test]
fn no_credentials_get_401_with_digest_and_basic_and_options_is_open() {
    let (_server, port) = locked_server();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = url(port, "");
    let options = ask(
        &mut s,
        &format!("OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(options.starts_with("RTSP/1.0 200 OK\r\n"), "{options}");
    let describe = ask(
        &mut s,
        &format!("DESCRIBE {target} RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
    );
    assert!(
        describe.starts_with("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n"),
        "{describe}"
    );
    let challenges: Vec<&str> = describe
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .collect();
    assert_eq!(challenges.len(), 2, "{describe}");
    assert!(
        challenges[0].starts_with("Digest realm=\"Streamlab\", nonce=\""),
        "{describe}"
    );
    assert!(challenges[0].contains("qop=\"auth\""), "{describe}");
    assert_eq!(challenges[1], "Basic realm=\"Streamlab\"");
    // The connection lives on: the right Basic credentials open it.
    let basic = "YWxpY2U6d29uZGVyLWxhbmQ="; // alice:wonder-land
    let ok = ask(
        &mut s,
        &format!("DESCRIBE {target} RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic {basic}\r\n\r\n"),
    );
    assert!(ok.starts_with("RTSP/1.0 200 OK\r\n"), "{ok}");
}

fn probe(target: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["probe", target, "--frames", "20", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

#[test]
fn our_client_logs_in_with_the_right_password_and_is_told_of_a_wrong_one() {
    let (_server, port) = locked_server();
    let good = probe(&url(port, &format!("{USER}:{PASSWORD}@")));
    assert!(good["frames"].as_u64().unwrap() >= 20, "{good}");
    let bad = probe(&url(port, &format!("{USER}:looking-glass@")));
    assert_eq!(bad["frames"], 0, "{bad}");
    let said = bad["errors"].to_string();
    assert!(said.contains("wrong user name or password"), "{bad}");
    assert!(
        !said.contains("looking-glass"),
        "no password in an error: {bad}"
    );
    let none = probe(&url(port, ""));
    assert!(
        none["errors"]
            .to_string()
            .contains("wants a user name and password"),
        "{none}"
    );
}

fn ffprobe(target: &str) -> std::process::Output {
    Command::new("ffprobe")
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
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(target)
        .output()
        .unwrap()
}

#[test]
fn ffprobe_logs_in_with_the_right_password_only() {
    if !have("ffprobe") {
        return;
    }
    let (_server, port) = locked_server();
    let good = ffprobe(&url(port, &format!("{USER}:{PASSWORD}@")));
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(text.trim(), "mjpeg,384,288");
    let bad = ffprobe(&url(port, &format!("{USER}:nope@")));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("401"), "ffprobe says why: {err}");
}

fn gst(target: &str, user: &str, password: &str) -> std::process::Output {
    Command::new("timeout")
        .args(["60", "gst-launch-1.0", "-q", "rtspsrc"])
        .arg(format!("location={target}"))
        .arg(format!("user-id={user}"))
        .arg(format!("user-pw={password}"))
        .args(["protocols=tcp", "!", "rtpjpegdepay", "!", "jpegdec", "!"])
        .args(["identity", "eos-after=20", "!", "fakesink"])
        .output()
        .unwrap()
}

#[test]
fn gstreamer_logs_in_with_the_right_password_only() {
    if !have("gst-launch-1.0") {
        return;
    }
    let (_server, port) = locked_server();
    let good = gst(&url(port, ""), USER, PASSWORD);
    assert!(
        good.status.success(),
        "{}{}",
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = gst(&url(port, ""), USER, "nope");
    assert!(!bad.status.success(), "a wrong password played");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        said.contains("Unauthorized") || said.contains("401"),
        "{said}"
    );
}

#[test]
fn an_address_that_keeps_guessing_is_answered_ever_more_slowly() {
    let (_server, port) = locked_server();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let target = url(port, "");
    let mut took = Vec::new();
    for cseq in 1..=3 {
        // alice:wrong
        let t = Instant::now();
        let r = ask(
            &mut s,
            &format!(
                "DESCRIBE {target} RTSP/1.0\r\nCSeq: {cseq}\r\nAuthorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n"
            ),
        );
        took.push(t.elapsed());
        assert!(r.starts_with("RTSP/1.0 401"), "{r}");
    }
    // Lower bounds only: a slow machine can add, never take away.
    assert!(took[1] >= FIRST_PENALTY, "{took:?}");
    assert!(took[2] >= FIRST_PENALTY * 2, "{took:?}");
}

#[test]
fn the_servers_log_never_holds_a_password() {
    let dir = temp_dir("auth-log");
    let users = dir.join("users");
    std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "serve",
            "0",
            "--bind",
            "127.0.0.1",
            "--fps",
            "50",
            "--users-file",
        ])
        .arg(&users)
        .arg("--root")
        .arg(media_root())
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let port = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "serve ended: {seen}");
        seen.push_str(&line);
        if let Some(rest) = line.split("serving on rtsp://").nth(1) {
            let addr: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
            break addr.port();
        }
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    probe(&url(port, &format!("{USER}:{PASSWORD}@")));
    probe(&url(port, &format!("{USER}:typo-{PASSWORD}@")));
    // Basic carries the password itself (base64): not that either.
    let basic = "YWxpY2U6dHlwby13b25kZXItbGFuZA=="; // alice:typo-wonder-land
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = ask(
        &mut s,
        &format!(
            "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {basic}\r\n\r\n",
            url(port, "")
        ),
    );
    assert!(r.starts_with("RTSP/1.0 401"), "{r}");
    let _ = child.kill();
    let _ = child.wait();
    seen.extend(rx.iter().map(|l| l + "\n"));
    assert!(
        seen.contains("refused: wrong password for \"alice\""),
        "{seen}"
    );
    assert!(seen.contains("credentials accepted"), "{seen}");
    assert!(!seen.contains(PASSWORD), "a password in the log:\n{seen}");
    assert!(!seen.contains(basic), "a Basic token in the log:\n{seen}");
    std::fs::remove_dir_all(dir).ok();
}
