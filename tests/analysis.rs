//! The client's network analysis and playout buffer, end to end: our
//! server, the impairment relay of `tests/common/relay.rs` between it and
//! the client, and the real `streamlab probe` (or the engine itself where
//! the moment of a click matters). The relay's own counts of what it did
//! are what the client's figures are held against (issue 10, "How we will
//! know").

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::relay::{Impairment, Relay};
use common::*;
use streamlab::net::client::{
    ClientCommand, ClientConfig, ClientEvent, ClientHandle, DialectChoice, Direction,
    TransportChoice,
};
use streamlab::protocol::State;

/// The nominal frame period of a 20 fps stream, in ms, and its step in
/// 90 kHz RTP timestamp units.
const PERIOD_MS: f64 = 50.0;
const TS_STEP: u32 = 90_000 / 20;

/// A folder holding `movie.Mjpeg` cut to its first `frames` frames, so a
/// stream ends by itself within a test's time and every packet the relay
/// sent was taken by the client before TEARDOWN.
fn clip_root(frames: usize) -> PathBuf {
    let dir = temp_dir("analysis-clip");
    let mut bytes = Vec::new();
    for f in movie_frames().into_iter().take(frames) {
        bytes.extend_from_slice(format!("{:05}", f.len()).as_bytes());
        bytes.extend_from_slice(&f);
    }
    std::fs::write(dir.join("movie.Mjpeg"), bytes).unwrap();
    dir
}

/// A CSV file the probe wrote: its header and rows, read by name.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let split = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
        let header = split(lines.next().expect("a header line"));
        let rows: Vec<_> = lines.filter(|l| !l.is_empty()).map(split).collect();
        for r in &rows {
            assert_eq!(r.len(), header.len(), "{r:?} under {header:?}");
        }
        Csv { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// Column `name` of every row.
    fn column<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let i = self.col(name);
        self.rows.iter().map(move |r| r[i].as_str())
    }

    /// How many rows have each status.
    fn statuses(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in self.column("status") {
            *m.entry(s.to_string()).or_default() += 1;
        }
        m
    }
}

/// What one `streamlab probe` run left: its JSON and its two CSV files.
struct ProbeRun {
    json: serde_json::Value,
    frames: Csv,
    packets: Csv,
}

/// Run `streamlab probe` on `rtsp://127.0.0.1:PORT/movie.Mjpeg` (standard
/// RTSP over UDP, so the relay's impairments reach the client's analysis)
/// with both CSV files and `extra` arguments; killed after `limit`.
fn probe(port: u16, extra: &[&str], limit: Duration) -> ProbeRun {
    let dir = temp_dir("analysis-probe");
    let (frames, packets) = (dir.join("frames.csv"), dir.join("packets.csv"));
    let child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .env_remove("RUST_LOG")
        .arg("probe")
        .arg(format!("rtsp://127.0.0.1:{port}/movie.Mjpeg"))
        .args(["--dialect", "standard", "--transport", "udp", "--json"])
        .arg("--csv")
        .arg(&frames)
        .arg("--packets-csv")
        .arg(&packets)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    // A probe that hangs fails the test instead of hanging it.
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "probe failed ({}): {stderr}",
        out.status
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stderr}"));
    let run = ProbeRun {
        json,
        frames: Csv::read(&frames),
        packets: Csv::read(&packets),
    };
    assert_eq!(
        run.frames.header.join(","),
        "frame,rtp_timestamp,first_seq,last_seq,packets,bytes,arrival_ms,presented_ms,status"
    );
    assert_eq!(
        run.packets.header.join(","),
        "seq,timestamp,marker,size,arrival_ms,status"
    );
    std::fs::remove_dir_all(dir).ok();
    run
}

fn num(v: &serde_json::Value, name: &str) -> f64 {
    v[name]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {name} in {v}"))
}

/// The nearest-rank percentile `p` (0-100) of `xs`.
fn percentile(xs: &[f64], p: f64) -> f64 {
    assert!(!xs.is_empty());
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

#[test]
fn loss_duplicates_and_reorders_are_counted_as_the_relay_counts_them() {
    // 300 frames at 50 fps: six seconds, ending by itself (a stream the
    // probe stops is cut short in flight), so the relay's counts and the
    // client's cover the same packets.
    let server = server(clip_root(300), 50);
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            seed: 10,
            loss: 0.05,
            duplicate: 0.02,
            reorder: 0.02,
            ..Impairment::default()
        },
    );
    let run = probe(
        relay.port(),
        &["--latency", "0", "--seconds", "30"],
        Duration::from_secs(40),
    );
    // The stream ended two seconds before the probe did: nothing is
    // left in the relay's hands.
    let c = relay.counts_when(Duration::from_secs(5), |c| c.queued == 0);
    let v = &run.json;
    assert_eq!(v["ended"], true, "the stream ended by itself: {v}");
    let relay_loss = 100.0 * c.dropped as f64 / c.received as f64;
    println!(
        "relay: {} received, {} dropped ({relay_loss:.2}%), {} duplicates, {} reordered",
        c.received, c.dropped, c.duplicates, c.reordered
    );
    println!(
        "client: expected {}, lost {}, loss {}%, duplicates {}, reordered {}, late {}; frames {:?}; packets {:?}",
        v["expected"],
        v["lost"],
        v["loss_percent"],
        v["duplicates"],
        v["reordered"],
        v["late"],
        run.frames.statuses(),
        run.packets.statuses()
    );
    assert!(c.dropped > 50, "the relay did lose packets: {c:?}");
    let loss = num(v, "loss_percent");
    assert!(
        (loss - relay_loss).abs() <= 0.5,
        "reported loss {loss}% against the relay's {relay_loss:.3}%"
    );
    assert_eq!(num(v, "duplicates"), c.duplicates as f64, "duplicates");
    assert_eq!(num(v, "reordered"), c.reordered as f64, "reordered");
    // The per-packet CSV holds every packet that arrived, in arrival
    // order: counted again from its rows, it tells what the relay did.
    let seqs: Vec<u16> = run
        .packets
        .column("seq")
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        seqs, c.sent,
        "the packets CSV is what the relay sent, in order"
    );
    let statuses = run.packets.statuses();
    let rows = |s: &str| statuses.get(s).copied().unwrap_or(0) as u64;
    assert_eq!(rows("duplicate"), c.duplicates, "{statuses:?}");
    // A packet has one status: one that came back in order but belongs to
    // a frame that stayed incomplete reads "dropped:incomplete frame".
    // Which rows arrived behind a higher sequence number, and as what:
    let status_col = run.packets.col("status");
    let mut seen = HashSet::new();
    let mut highest: Option<u16> = None;
    let mut behind = BTreeMap::<&str, u64>::new();
    for (row, &seq) in run.packets.rows.iter().zip(&seqs) {
        if !seen.insert(seq) {
            continue;
        }
        if highest.is_some_and(|h| (1..0x8000).contains(&h.wrapping_sub(seq))) {
            *behind.entry(row[status_col].as_str()).or_default() += 1;
        } else {
            highest = Some(seq);
        }
    }
    println!("packets that arrived behind a higher one, by CSV status: {behind:?}");
    // The reported jitter is over every packet's first arrival (a packet
    // of a frame left incomplete still arrived when it did); the CSV's
    // ok/reordered rows alone leave those out, printed for the record.
    let (ok_only, _) = rfc3550_jitter_ms(&run.packets, |s| s == "ok" || s == "reordered");
    let (arrived, _) = rfc3550_jitter_ms(&run.packets, first_arrival);
    println!(
        "jitter: {} ms reported; from the CSV {ok_only:.4} ms over ok/reordered rows, {arrived:.4} ms over every first arrival",
        v["jitter_ms"]
    );
    let reported = num(v, "jitter_ms");
    assert!(
        (reported - arrived).abs() <= 0.05 * arrived.max(0.01),
        "jitter {reported} ms reported, {arrived} ms computed over first arrivals"
    );
    assert_eq!(behind.values().sum::<u64>(), c.reordered, "{behind:?}");
    assert_eq!(
        behind.get("reordered").copied().unwrap_or(0),
        rows("reordered"),
        "{statuses:?}"
    );
    // No presented frame is missing a packet the relay dropped.
    let dropped: HashSet<u16> = c.dropped_seqs.iter().copied().collect();
    let (first, last, status) = (
        run.frames.col("first_seq"),
        run.frames.col("last_seq"),
        run.frames.col("status"),
    );
    let mut presented = 0;
    for row in &run.frames.rows {
        if row[status] != "presented" {
            continue;
        }
        presented += 1;
        let a: u16 = row[first].parse().unwrap();
        let b: u16 = row[last].parse().unwrap();
        let span = b.wrapping_sub(a);
        assert!(span < 1000, "a frame of {span} packets? {row:?}");
        for i in 0..=span {
            let seq = a.wrapping_add(i);
            assert!(
                !dropped.contains(&seq),
                "frame {row:?} was presented without packet {seq}, which the relay dropped"
            );
        }
    }
    let frame_statuses = run.frames.statuses();
    assert!(presented > 50, "{frame_statuses:?}");
    assert!(
        frame_statuses.get("incomplete").copied().unwrap_or(0) > 0,
        "5% loss leaves frames incomplete: {frame_statuses:?}"
    );
}

/// Presented frames' intervals' deviations from the nominal period, in
/// ms, from the frames CSV (consecutive presented rows).
fn presentation_deviations(frames: &Csv) -> Vec<f64> {
    let (status, presented) = (frames.col("status"), frames.col("presented_ms"));
    let times: Vec<f64> = frames
        .rows
        .iter()
        .filter(|r| r[status] == "presented")
        .map(|r| r[presented].parse().unwrap())
        .collect();
    times
        .windows(2)
        .map(|w| (w[1] - w[0] - PERIOD_MS).abs())
        .collect()
}

/// Run `during` while a thread of the test sleeps on an absolute
/// schedule of one frame period, as a presenting thread does; return what
/// `during` gave and how far that thread's intervals strayed from the
/// period (ms): the floor no presentation on this machine, at this
/// moment, can beat.
fn with_timer_floor<T>(during: impl FnOnce() -> T) -> (T, Vec<f64>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let sleeper = std::thread::spawn(move || {
        let period = Duration::from_secs_f64(PERIOD_MS / 1e3);
        let start = Instant::now();
        let mut woke = Vec::new();
        for k in 1.. {
            if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let due = start + period * k;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            woke.push(Instant::now());
        }
        woke.windows(2)
            .map(|w| (w[1].duration_since(w[0]).as_secs_f64() * 1e3 - PERIOD_MS).abs())
            .collect()
    });
    let out = during();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (out, sleeper.join().unwrap())
}

#[test]
fn a_playout_delay_smooths_delay_bursts_and_none_does_not() {
    // 70 frames at 20 fps, 3.5 s, ending by itself: each run's every
    // frame has had its chance to be presented.
    let server = server(clip_root(70), 20);
    // Every 600 ms everything is held for 200 ms, then let go at once.
    let bursts = Impairment {
        seed: 3,
        burst_every: Some(Duration::from_millis(600)),
        burst_hold: Duration::from_millis(200),
        ..Impairment::default()
    };
    // A sleeping thread of the test's own, on the same schedule, for as
    // long as both runs last: how late this machine wakes a thread now.
    let (p99, floor) = with_timer_floor(|| {
        ["300", "0"].map(|latency| {
            let relay = Relay::start(server.local_addr(), bursts);
            let run = probe(
                relay.port(),
                &["--latency", latency, "--seconds", "20"],
                Duration::from_secs(25),
            );
            let c = relay.counts();
            let dev = presentation_deviations(&run.frames);
            let (p50, p99) = (percentile(&dev, 50.0), percentile(&dev, 99.0));
            println!(
                "--latency {latency}: {} bursts held; presented intervals deviate from {PERIOD_MS} ms by p50 {p50:.2} ms, p99 {p99:.2} ms, max {:.2} ms over {} intervals; frames {:?}",
                c.bursts,
                percentile(&dev, 100.0),
                dev.len(),
                run.frames.statuses()
            );
            assert_eq!(run.json["ended"], true, "{}", run.json);
            assert!(dev.len() > 50, "{:?}", run.frames.statuses());
            assert!(c.bursts >= 4, "{c:?}");
            if latency == "300" {
                // Every frame is in hand 100 ms before it is due.
                let statuses = run.frames.statuses();
                assert_eq!(statuses.get("late"), None, "{statuses:?}");
            }
            p99
        })
    });
    let (floor_p99, floor_max) = (percentile(&floor, 99.0), percentile(&floor, 100.0));
    println!(
        "a sleeping thread's intervals meanwhile: p99 {floor_p99:.2} ms, max {floor_max:.2} ms over {}",
        floor.len()
    );
    // With the buffer, what is left is how late the presenting thread
    // wakes, and an interval is the difference of two such wake-ups. A
    // quiet VM of this kind wakes a sleeping thread p99 3.5-5.6 ms, max
    // 7 ms late (toolchain notes): 10 ms leaves room for that. A busy one
    // (other builds on the 2 cores) now and then wakes any thread 20-40 ms
    // late, and the p99 of some 70 intervals is their worst: so the bound
    // is the worst the test's own sleeping thread saw in the same runs,
    // plus 5 ms for the presenter's own work, when that is more. A burst
    // shows as 150 ms or more either way.
    let bound = 10.0f64.max(floor_max + 5.0);
    assert!(
        p99[0] <= bound,
        "with --latency 300: p99 {:.2} ms, over {bound:.2} ms (a sleeping thread: max {floor_max:.2} ms)",
        p99[0]
    );
    // Without it, frames held 200 ms come out at once: intervals near 0
    // after one near 250 ms.
    assert!(p99[1] > 40.0, "with --latency 0: p99 {:.2} ms", p99[1]);
}

/// The rows the jitter counts: every packet's first arrival, whatever
/// became of it after (duplicates and packets too late to use aside).
fn first_arrival(status: &str) -> bool {
    status != "duplicate" && status != "late"
}

/// RFC 3550 A.8 interarrival jitter (ms) over the packets CSV's rows
/// whose status `counts`, in arrival order (the rows' order): D in 90 kHz
/// units, J += (|D| - J) / 16; and how many rows counted.
fn rfc3550_jitter_ms(packets: &Csv, counts: impl Fn(&str) -> bool) -> (f64, usize) {
    let (ts, at, status) = (
        packets.col("timestamp"),
        packets.col("arrival_ms"),
        packets.col("status"),
    );
    let mut j = 0.0f64;
    let mut prev: Option<(u32, f64)> = None;
    let mut n = 0;
    for row in packets.rows.iter().filter(|r| counts(&r[status])) {
        let s: u32 = row[ts].parse().unwrap();
        let r: f64 = row[at].parse().unwrap();
        if let Some((ps, pr)) = prev {
            let d = (r - pr) * 90.0 - s.wrapping_sub(ps) as i32 as f64;
            j += (d.abs() - j) / 16.0;
        }
        prev = Some((s, r));
        n += 1;
    }
    (j / 90.0, n)
}

#[test]
fn jitter_agrees_with_rfc_3550_computed_from_the_packets_csv() {
    // 60 frames at 20 fps, ending by itself: the JSON's figure and the
    // CSV's rows are over the same packets.
    let server = server(clip_root(60), 20);
    // Each packet delayed by a random 0-8 ms (in order): real jitter.
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            seed: 5,
            jitter: Duration::from_millis(8),
            ..Impairment::default()
        },
    );
    let run = probe(
        relay.port(),
        &["--latency", "0", "--seconds", "20"],
        Duration::from_secs(25),
    );
    assert_eq!(run.json["ended"], true, "{}", run.json);
    let (ours, n) = rfc3550_jitter_ms(&run.packets, first_arrival);
    let theirs = num(&run.json, "jitter_ms");
    println!(
        "jitter over {n} packets: {ours:.4} ms computed here, {theirs:.4} ms reported (frame jitter {})",
        run.json["frame_jitter_ms"]
    );
    assert!(n > 300, "{:?}", run.packets.statuses());
    assert!(ours > 0.3, "the relay's jitter shows: {ours} ms");
    assert!(
        (ours - theirs).abs() <= 0.05 * theirs,
        "{ours} ms here against {theirs} ms reported"
    );
}

#[test]
fn csv_rows_of_a_stream_stopped_by_a_limit_keep_their_times() {
    // The probe stops after 20 frames and tears down while packets are
    // still coming: the last rows are written after TEARDOWN, and their
    // times are still since PLAY's reply.
    let server = server(media_root(), 20);
    let relay = Relay::start(server.local_addr(), Impairment::default());
    let run = probe(
        relay.port(),
        &["--latency", "0", "--frames", "20"],
        Duration::from_secs(20),
    );
    let arrivals: Vec<f64> = run
        .packets
        .column("arrival_ms")
        .map(|s| s.parse().unwrap())
        .collect();
    let backwards: Vec<(usize, f64, f64)> = arrivals
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] < w[0])
        .map(|(i, w)| (i + 2, w[0], w[1]))
        .collect();
    assert!(
        backwards.is_empty(),
        "packets CSV rows (line, previous arrival_ms, arrival_ms) going back in time: {backwards:?} of {} rows",
        arrivals.len()
    );
    let (status, presented) = (run.frames.col("status"), run.frames.col("presented_ms"));
    let zero: Vec<&Vec<String>> = run
        .frames
        .rows
        .iter()
        .filter(|r| r[status] == "presented" && r[presented].parse::<f64>().unwrap() <= 0.0)
        .collect();
    assert!(
        zero.is_empty(),
        "frames presented at or before PLAY's reply: {zero:?}"
    );
}

#[test]
fn prebuffered_play_starts_at_once_and_goes_on_without_a_gap() {
    let server = server(media_root(), 20);
    let relay = Relay::start(server.local_addr(), Impairment::default());
    let client = ClientHandle::spawn(
        ClientConfig {
            host: "127.0.0.1".into(),
            rtsp_port: relay.port(),
            file: "movie.Mjpeg".into(),
            dialect: DialectChoice::Standard,
            transport: TransportChoice::Udp,
            prebuffer: 10,
            latency_ms: Some(0),
            ..ClientConfig::default()
        },
        || {},
    );
    client.send(ClientCommand::Setup);
    // The engine fetches ahead by itself: PLAY, then PAUSE once ten whole
    // frames are held, each answered.
    let mut sent = Vec::new();
    let mut answered = 0;
    let mut early_frames = 0;
    wait_for(&client, "PLAY then PAUSE after SETUP", |e, _| {
        match e {
            ClientEvent::Wire(w) if w.direction == Direction::Sent => {
                sent.push(w.text.split(' ').next().unwrap_or("").to_string())
            }
            ClientEvent::Wire(w) if sent.last().is_some_and(|m| m == "PAUSE") => {
                answered += w.text.starts_with("RTSP/1.0 200") as u32
            }
            ClientEvent::Frame(_) => early_frames += 1,
            ClientEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
        answered > 0
    });
    let setup = sent.iter().position(|m| m == "SETUP").expect("SETUP sent");
    assert_eq!(
        &sent[setup + 1..],
        ["PLAY", "PAUSE"],
        "the wire log shows the fetch ahead: {sent:?}"
    );
    assert_eq!(early_frames, 0, "nothing is shown before the user's PLAY");
    let mut held = 0;
    wait_for(&client, "the buffer's level", |e, _| {
        if let ClientEvent::Stats(s) = e {
            held = s.buffer_frames;
        }
        held >= 10
    });
    // The user's PLAY: the first frame comes from the buffer.
    let clicked = Instant::now();
    client.send(ClientCommand::Play);
    let mut first_after = None;
    let mut stamps = Vec::new();
    wait_for(&client, "30 frames after PLAY", |e, at| {
        match e {
            ClientEvent::Frame(f) => {
                first_after.get_or_insert(at.duration_since(clicked));
                stamps.push(f.rtp_timestamp);
            }
            ClientEvent::Error(e) => panic!("{e}"),
            ClientEvent::State { state, .. } => assert_ne!(*state, State::Init),
            _ => {}
        }
        stamps.len() == 30
    });
    let first_after = first_after.unwrap();
    println!("PLAY to the first frame: {first_after:?}");
    assert!(
        first_after <= Duration::from_millis(PERIOD_MS as u64),
        "the first frame came {first_after:?} after PLAY"
    );
    // No gap, no repeat: each frame one step of the 20 fps clock on.
    let steps: Vec<u32> = stamps.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(
        steps.iter().all(|s| *s == TS_STEP),
        "RTP timestamp steps {steps:?}"
    );
    client.shutdown(Duration::from_secs(2));
}
