//! A client that vanishes without TEARDOWN leaves no thread and no CPU use
//! behind. Alone in its test binary so the thread count is the server's.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// User plus system CPU time of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Wait until `f` holds, checking at each change of a counter, up to 5 s.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn vanished_clients_leave_no_thread_and_no_cpu_behind() {
    let server = server(media_root(), 50);
    let idle_threads = threads();
    for _ in 0..3 {
        let mut c = LabClient::connect(server.local_addr());
        c.request("SETUP", "movie.Mjpeg");
        c.request("PLAY", "movie.Mjpeg");
        assert!(c.recv_rtp(Duration::from_secs(5)).is_some());
        // Gone: sockets closed, no TEARDOWN.
        drop(c);
    }
    eventually("sessions freed", || server.active_sessions() == 0);
    eventually("connections closed", || server.connections() == 0);
    eventually("threads ended", || threads() == idle_threads);
    // Idle: the server's threads all block; CPU over a second stays ~0.
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks() - before;
    assert!(used <= 2, "{used} ticks of CPU while idle");
}
