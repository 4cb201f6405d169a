//! Server CPU per stream: `streamlab serve` beside GStreamer's RTSP server
//! (gst-rtsp-server through `tests/peers/gst_rtsp_server.py`) in the same
//! run, each serving 1080p30 Motion-JPEG over UDP to 1 and to 4 clients.
//!
//! Both serve the same JPEG frames: 4:2:0 test-pattern frames made here,
//! written once as a raw .mjpeg for us (sent untouched) and once as numbered
//! .jpg files for `multifilesrc ! jpegparse ! videorate ! rtpjpegpay`, so
//! neither server encodes anything (multifilesrc stamps only its first
//! buffer; without videorate the RTP sinks send the frames unpaced). For context the run adds our server on a 4:4:4 clip
//! (re-encoded once per file, shared by its sessions) and gst-rtsp-server
//! encoding live (`videotestsrc ! jpegenc`, one pipeline per client).
//!
//! Each server runs as its own process; the clients are this process's
//! threads speaking RTSP and draining RTP without decoding. Over a window
//! of steady streaming the server process's CPU time (each thread's
//! /proc/PID/task/TID/schedstat, in nanoseconds) is divided by
//! stream-seconds. CPU time rather than wall time, so other load on the
//! machine matters less; rounds alternate the two servers and the ratio is
//! taken within each round.
//!
//! Run: `cargo bench --bench server_cpu` (`-- --seconds S --rounds N` for
//! other windows; the defaults are 8 s and 3). Needs GStreamer's RTSP server through python3-gi
//! (gir1.2-gst-rtsp-server-1.0); without it the run says so and stops.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streamlab::media::{Framing, pattern};
use streamlab::protocol::sdp;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u32 = 30;
/// Distinct frames in the clip; both servers loop over them.
const FRAMES: u32 = 90;
const QUALITY: u8 = 85;
/// Streaming before the window opens, so session set-up is not counted.
const WARM_UP: Duration = Duration::from_secs(1);

fn main() {
    let arg = |name: &str| {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|s| s.parse::<f64>().ok())
    };
    let seconds = arg("--seconds").unwrap_or(8.0);
    let rounds = arg("--rounds").unwrap_or(3.0).max(1.0) as usize;
    let window = Duration::from_secs_f64(seconds);
    let Some(python) = python_with_gst_rtsp_server() else {
        eprintln!(
            "server_cpu: no python3 with GstRtspServer (python3-gi, gir1.2-gst-rtsp-server-1.0); nothing measured"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("streamlab-server-cpu-{}", std::process::id()));
    let _cleanup = RemoveDir(dir.clone());
    let content = Content::make(&dir);
    let ticks = clock_ticks();

    let ours = |clip: &'static str| {
        let dir = dir.clone();
        Box::new(move || ServerProcess::ours(&dir, clip))
    };
    let gst_files = format!(
        "( multifilesrc location={} loop=true caps=image/jpeg,framerate={FPS}/1 \
         ! jpegparse ! videorate ! image/jpeg,framerate={FPS}/1 \
         ! rtpjpegpay name=pay0 pt=26 )",
        content.frames_pattern.display()
    );
    let py = python.clone();
    let py2 = python.clone();
    let clip_seconds = Duration::from_secs_f64(f64::from(FRAMES) / f64::from(FPS));
    let cases: Vec<Case> = vec![
        Case {
            name: "streamlab, 4:2:0 clip (sent untouched)",
            start: ours("clip420.mjpeg"),
            warm_up: WARM_UP,
            every_round: true,
        },
        Case {
            name: "gst-rtsp-server, the same JPEG files",
            start: Box::new(move || ServerProcess::gst(&py, &["--launch", &gst_files])),
            warm_up: WARM_UP,
            every_round: true,
        },
        // Once through the clip first: the re-encode is once per file, not
        // per stream, and is left out of the window.
        Case {
            name: "streamlab, 4:4:4 clip (re-encoded, cached)",
            start: ours("clip444.mjpeg"),
            warm_up: clip_seconds + WARM_UP,
            every_round: false,
        },
        Case {
            name: "gst-rtsp-server, videotestsrc ! jpegenc",
            start: Box::new(move || {
                let size = format!("{WIDTH}x{HEIGHT}");
                ServerProcess::gst(&py2, &["--size", &size, "--fps", &FPS.to_string()])
            }),
            warm_up: WARM_UP,
            every_round: false,
        },
    ];

    println!(
        "server CPU per {WIDTH}x{HEIGHT} {FPS} fps UDP stream, {seconds} s windows, \
         {rounds} rounds (median, min-max), {} cores, same run:",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<42} {:>7} {:>21} {:>8} {:>7} {:>9}",
        "server", "clients", "CPU ms per stream-s", "fps", "Mbit/s", "pkt/frame"
    );
    for clients in [1, 4] {
        let mut runs: Vec<Vec<Measured>> = cases.iter().map(|_| Vec::new()).collect();
        // Rounds alternate the servers, so that load from elsewhere falls
        // on both alike.
        for round in 0..rounds {
            for (case, out) in cases.iter().zip(runs.iter_mut()) {
                if round == 0 || case.every_round {
                    out.push(measure(
                        (case.start)(),
                        clients,
                        case.warm_up,
                        window,
                        ticks,
                    ));
                }
            }
        }
        for (case, ms) in cases.iter().zip(&runs) {
            let cpu: Vec<f64> = ms.iter().map(Measured::cpu_ms_per_stream_second).collect();
            let last = &ms[ms.len() - 1];
            println!(
                "{:<42} {clients:>7} {:>21} {:>8.2} {:>7.1} {:>9.1}",
                case.name,
                spread(&cpu, 1),
                last.fps_per_stream(),
                last.mbit_per_stream(),
                last.packets_per_frame()
            );
        }
        let ratios: Vec<f64> = runs[0]
            .iter()
            .zip(&runs[1])
            .map(|(o, g)| o.cpu_ms_per_stream_second() / g.cpu_ms_per_stream_second())
            .collect();
        println!(
            "  {clients} client(s), same frames: streamlab/gst CPU per stream {} (goal <= 0.5)",
            spread(&ratios, 2)
        );
    }
}

/// One server set-up to measure.
struct Case {
    name: &'static str,
    start: Box<dyn Fn() -> ServerProcess>,
    /// Streaming before the window opens.
    warm_up: Duration,
    /// Measured in every round (the comparison), or once (context).
    every_round: bool,
}

/// `median (min-max)`, or the one value.
fn spread(values: &[f64], decimals: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    if v.len() == 1 {
        format!("{median:.decimals$}")
    } else {
        format!(
            "{median:.decimals$} ({:.decimals$}-{:.decimals$})",
            v[0],
            v[v.len() - 1]
        )
    }
}

/// The JPEG frames both servers send.
struct Content {
    /// `f%05d.jpg` in a folder, for multifilesrc.
    frames_pattern: PathBuf,
}

impl Content {
    /// 4:2:0 frames with standard tables (RFC 2435 carries them as they
    /// are), as numbered files and as one raw .mjpeg; and a 4:4:4 clip of
    /// the same pictures, which our server must re-encode.
    fn make(dir: &Path) -> Content {
        let frames = dir.join("frames");
        std::fs::create_dir_all(&frames).unwrap();
        let mut clip = Vec::new();
        let mut clip444 = Vec::new();
        for i in 0..FRAMES {
            let rgb = pattern::pattern_rgb(i, WIDTH, HEIGHT);
            let mut jpeg = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, QUALITY);
            enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            enc.encode(
                rgb.as_raw(),
                WIDTH as u16,
                HEIGHT as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
            std::fs::write(frames.join(format!("f{i:05}.jpg")), &jpeg).unwrap();
            pattern::write_frame(&mut clip, &jpeg, Framing::Raw).unwrap();
            let full = pattern::encode_jpeg(&rgb, QUALITY).unwrap();
            pattern::write_frame(&mut clip444, &full, Framing::Raw).unwrap();
        }
        let media = dir.join("media");
        std::fs::create_dir_all(&media).unwrap();
        std::fs::write(media.join("clip420.mjpeg"), clip).unwrap();
        std::fs::write(media.join("clip444.mjpeg"), clip444).unwrap();
        Content {
            frames_pattern: frames.join("f%05d.jpg"),
        }
    }
}

/// A server child process and the URL it serves; killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn ours(dir: &Path, clip: &str) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
            .args(["serve", "0", "--bind", "127.0.0.1", "--loop"])
            .args(["--fps", &FPS.to_string()])
            .arg("--root")
            .arg(dir.join("media"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start streamlab serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut base = None;
        let mut line = String::new();
        while base.is_none() && stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(at) = line.find("rtsp://") {
                base = line[at..].split_whitespace().next().map(str::to_string);
            }
            line.clear();
        }
        let base = base.expect("streamlab serve says where it listens");
        // Its log goes on (a line per session): keep the pipe drained.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        ServerProcess {
            child,
            url: format!("{}/{clip}", base.trim_end_matches('/')),
        }
    }

    fn gst(python: &str, args: &[&str]) -> ServerProcess {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/gst_rtsp_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gst_rtsp_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .expect("gst_rtsp_server.py prints its port");
        ServerProcess {
            child,
            url: format!("rtsp://127.0.0.1:{port}/test"),
        }
    }

    /// CPU time so far: per thread in nanoseconds (schedstat), and for the
    /// whole process, ended threads included, in clock ticks (utime + stime).
    fn cpu(&self) -> Cpu {
        let pid = self.child.id();
        let mut threads = HashMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let task = task.unwrap();
            // A thread may end between listing and reading.
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat"))
                && let Some(ns) = stat.split_whitespace().next().and_then(|n| n.parse().ok())
            {
                threads.insert(task.file_name().into_string().unwrap(), ns);
            }
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The command name (field 2) is in parentheses and may hold spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of the whole line; `after` starts at field 3.
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Cpu { threads, ticks }
    }
}

/// A reading of a process's CPU time.
struct Cpu {
    threads: HashMap<String, u64>,
    ticks: u64,
}

impl Cpu {
    /// CPU time from `self` to `later`: precise per thread; a thread that
    /// ended in between is missed there, so the coarse whole-process
    /// ticks are taken when they say clearly more.
    fn until(&self, later: &Cpu, ticks_per_second: u64) -> Duration {
        let ns: u64 = later
            .threads
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(*self.threads.get(tid).unwrap_or(&0)))
            .sum();
        let precise = Duration::from_nanos(ns);
        let tick = Duration::from_secs(1) / ticks_per_second as u32;
        let coarse = tick * (later.ticks - self.ticks) as u32;
        if coarse > precise + 2 * tick {
            coarse
        } else {
            precise
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one case measured.
struct Measured {
    clients: u32,
    window: Duration,
    cpu: Duration,
    packets: u64,
    bytes: u64,
    frames: u64,
}

impl Measured {
    fn stream_seconds(&self) -> f64 {
        self.clients as f64 * self.window.as_secs_f64()
    }

    fn cpu_ms_per_stream_second(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / self.stream_seconds()
    }

    fn fps_per_stream(&self) -> f64 {
        self.frames as f64 / self.stream_seconds()
    }

    fn mbit_per_stream(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e6 / self.stream_seconds()
    }

    fn packets_per_frame(&self) -> f64 {
        self.packets as f64 / self.frames.max(1) as f64
    }
}

fn measure(
    server: ServerProcess,
    clients: u32,
    warm_up: Duration,
    window: Duration,
    ticks: u64,
) -> Measured {
    let receivers: Vec<Receiver> = (0..clients).map(|_| Receiver::play(&server.url)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while receivers
        .iter()
        .any(|r| r.counts.frames.load(Ordering::Relaxed) == 0)
    {
        assert!(Instant::now() < deadline, "no frames from {}", server.url);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(warm_up);
    let totals = |rs: &[Receiver]| {
        rs.iter().fold((0, 0, 0), |(p, b, f), r| {
            (
                p + r.counts.packets.load(Ordering::Relaxed),
                b + r.counts.bytes.load(Ordering::Relaxed),
                f + r.counts.frames.load(Ordering::Relaxed),
            )
        })
    };
    let cpu0 = server.cpu();
    let (p0, b0, f0) = totals(&receivers);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let cpu1 = server.cpu();
    let (p1, b1, f1) = totals(&receivers);
    let elapsed = t0.elapsed();
    for r in receivers {
        r.stop();
    }
    drop(server);
    Measured {
        clients,
        window: elapsed,
        cpu: cpu0.until(&cpu1, ticks),
        packets: p1 - p0,
        bytes: b1 - b0,
        frames: f1 - f0,
    }
}

#[derive(Default)]
struct Counts {
    packets: AtomicU64,
    bytes: AtomicU64,
    /// RTP packets with the marker bit: the last of each frame.
    frames: AtomicU64,
}

/// A minimal RTSP client: DESCRIBE, SETUP over UDP, PLAY, then a thread
/// that drains RTP (and RTCP, so the server's reports are not refused with
/// ICMP) and counts, without decoding.
struct Receiver {
    rtsp: TcpStream,
    base: String,
    session: String,
    cseq: u32,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    counts: Arc<Counts>,
}

impl Receiver {
    fn play(url: &str) -> Receiver {
        let addr = url
            .trim_start_matches("rtsp://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let (rtp, rtcp) = udp_pair();
        let rtp_port = rtp.local_addr().unwrap().port();
        let mut r = Receiver {
            rtsp: TcpStream::connect(addr).unwrap(),
            base: url.to_string(),
            session: String::new(),
            cseq: 0,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            counts: Arc::default(),
        };
        let (headers, body) = r.request("DESCRIBE", url, "Accept: application/sdp\r\n");
        let base = header(&headers, "Content-Base").unwrap_or(url).to_string();
        let description = sdp::parse(body.as_bytes()).expect("an SDP");
        let control = description.media[0].control.clone().unwrap_or_default();
        let track = sdp::join_control(&base, &control);
        r.base = base;
        let (headers, _) = r.request(
            "SETUP",
            &track,
            &format!(
                "Transport: RTP/AVP;unicast;client_port={rtp_port}-{}\r\n",
                rtp_port + 1
            ),
        );
        r.session = header(&headers, "Session")
            .expect("a session")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        for (socket, count) in [(rtp, true), (rtcp, false)] {
            let stop = r.stop.clone();
            let counts = r.counts.clone();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            r.threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = socket.recv(&mut buf) else {
                        continue;
                    };
                    if count && n >= 12 {
                        counts.packets.fetch_add(1, Ordering::Relaxed);
                        counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if buf[1] & 0x80 != 0 {
                            counts.frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let (base, session) = (r.base.clone(), r.session.clone());
        r.request(
            "PLAY",
            &base,
            &format!("Session: {session}\r\nRange: npt=0-\r\n"),
        );
        r
    }

    /// Send one request; the reply's head and body (panics unless 200).
    fn request(&mut self, method: &str, url: &str, extra: &str) -> (String, String) {
        self.cseq += 1;
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: streamlab-bench\r\n{extra}\r\n",
            self.cseq
        );
        self.rtsp.write_all(req.as_bytes()).unwrap();
        self.rtsp
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            let n = self.rtsp.read(&mut byte).expect("a reply");
            assert!(n == 1, "the server closed the connection");
            raw.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            head.starts_with("RTSP/1.0 200"),
            "{method} {url} got: {head}"
        );
        let len: usize = header(&head, "Content-Length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0u8; len];
        self.rtsp.read_exact(&mut body).unwrap();
        (head, String::from_utf8_lossy(&body).into_owned())
    }

    fn stop(mut self) {
        let (base, session) = (self.base.clone(), self.session.clone());
        self.request("TEARDOWN", &base, &format!("Session: {session}\r\n"));
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An even RTP port and the odd RTCP port after it, with room for HD bursts.
fn udp_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if !port.is_multiple_of(2) || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            let _ = socket2::SockRef::from(&rtp).set_recv_buffer_size(8 << 20);
            return (rtp, rtcp);
        }
    }
}

/// A python3 that has gi and GstRtspServer (pyenv's may not).
fn python_with_gst_rtsp_server() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args([
                    "-c",
                    "import gi; gi.require_version('GstRtspServer','1.0'); \
                     from gi.repository import GstRtspServer",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_string)
}

/// Clock ticks per second, as /proc counts CPU time.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
