//! Churn: clients that SETUP, PLAY and then vanish in every way that ends
//! their RTSP connection (close without TEARDOWN, reset, half-close) leave
//! nothing behind: the server's sessions, connections, threads and file
//! descriptors return to their baseline, read from /proc, and memory stays
//! near it. Alone in its test binary so the counts are the server's.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Wait until `f` holds, checking every few milliseconds, up to 10 s.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn playing_client(addr: std::net::SocketAddr) -> LabClient {
    let mut c = LabClient::connect(addr);
    assert_eq!(c.request("SETUP", "movie.Mjpeg").status, 200);
    assert_eq!(c.request("PLAY", "movie.Mjpeg").status, 200);
    assert!(c.recv_rtp(Duration::from_secs(5)).is_some(), "no RTP");
    c
}

#[test]
fn vanishing_clients_return_threads_fds_and_memory_to_baseline() {
    let server = server(media_root(), 50);
    // One client first, so that the file's index is in memory.
    drop(playing_client(server.local_addr()));
    eventually("warm-up freed", || server.active_sessions() == 0);
    eventually("warm-up closed", || server.connections() == 0);
    let threads = count("/proc/self/task");
    let fds = count("/proc/self/fd");
    let rss = rss_kib();
    for round in 0..20 {
        let mut clients: Vec<LabClient> = (0..3)
            .map(|_| playing_client(server.local_addr()))
            .collect();
        // Closed without TEARDOWN.
        drop(clients.pop());
        // Reset: linger 0 makes close() send RST.
        if let Some(c) = clients.pop() {
            socket2::SockRef::from(&c.rtsp)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(c);
        }
        // Half-closed: the server sees the end of the requests, ends the
        // session and closes its side, which the client then reads.
        if let Some(mut c) = clients.pop() {
            c.rtsp.shutdown(std::net::Shutdown::Write).unwrap();
            c.rtsp
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match c.rtsp.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        panic!("round {round}: the server kept a half-closed connection: {e}")
                    }
                }
            }
        }
    }
    eventually("sessions freed", || server.active_sessions() == 0);
    eventually("connections closed", || server.connections() == 0);
    eventually("threads ended", || count("/proc/self/task") == threads);
    eventually("descriptors closed", || count("/proc/self/fd") == fds);
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB over 60 clients");
}
