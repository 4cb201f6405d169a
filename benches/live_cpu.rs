//! Server CPU of a live source with 1 viewer against 10: `streamlab serve
//! --source pattern=testpattern:1280x720@30` as its own process, watched
//! by `streamlab load` (UDP, RTP drained without decoding), the server's
//! CPU over the measured window read from /proc by the load generator.
//! One capture and encode per frame is shared by every viewer, so ten
//! viewers should cost little more than one (the goal: under 1.5 times).
//! Rounds alternate 1 and 10 viewers and the ratio is taken within each.
//!
//! Run: `cargo bench --bench live_cpu` (`-- --seconds S --rounds N`; the
//! defaults are 10 s and 3).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const SPEC: &str = "pattern=testpattern:1280x720@30";

fn main() {
    let arg = |name: &str| {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|s| s.parse::<f64>().ok())
    };
    let seconds = arg("--seconds").unwrap_or(10.0);
    let rounds = arg("--rounds").unwrap_or(3.0).max(1.0) as usize;
    let mut ratios = Vec::new();
    println!("live source {SPEC}, {seconds} s measured per run, {rounds} rounds");
    println!("| round | viewers | server CPU (% of a core) | frames received of expected |");
    println!("|---|---|---|---|");
    for round in 1..=rounds {
        let mut cpu = Vec::new();
        for viewers in [1usize, 10] {
            let r = run(viewers, seconds);
            println!(
                "| {round} | {viewers} | {:.1} | {} of {} |",
                r.cpu, r.frames, r.expected
            );
            cpu.push(r.cpu);
        }
        ratios.push(cpu[1] / cpu[0].max(1e-9));
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "server CPU with 10 viewers over 1, round by round: {}; median {:.2} (goal < 1.5)",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        sorted[sorted.len() / 2]
    );
}

struct Run {
    cpu: f64,
    frames: u64,
    expected: u64,
}

/// Kills the server however the run ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(viewers: usize, seconds: f64) -> Run {
    let bin = env!("CARGO_BIN_EXE_streamlab");
    let empty = std::env::temp_dir().join(format!("streamlab-live-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("a temporary folder");
    let mut child = Command::new(bin)
        .args([
            "serve",
            "0",
            "--bind",
            "127.0.0.1",
            "--source",
            SPEC,
            "--root",
        ])
        .arg(&empty)
        .stderr(Stdio::piped())
        .spawn()
        .expect("streamlab serve starts");
    let log = child.stderr.take().expect("its log");
    let pid = child.id();
    let server = Server(child);
    let mut lines = BufReader::new(log).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("serve logs its address")
            .expect("a log line");
        if let Some(rest) = line.split("serving on rtsp://127.0.0.1:").nth(1) {
            break rest
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .split('/')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .expect("a port");
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new(bin)
        .arg("load")
        .arg(format!("rtsp://127.0.0.1:{port}/pattern"))
        .args(["--sessions", &viewers.to_string()])
        .args(["--seconds", &seconds.to_string(), "--warmup", "2", "--json"])
        .args(["--server-pid", &pid.to_string()])
        .output()
        .expect("streamlab load runs");
    drop(server);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("load said: {e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    Run {
        cpu: j["server_cpu_percent"].as_f64().unwrap_or(0.0),
        frames: j["frames_received"].as_u64().unwrap_or(0),
        expected: j["frames_expected"].as_u64().unwrap_or(0),
    }
}
