//! The `streamlab` command: with no arguments it opens the player window
//! (already serving the bundled sample); subcommands serve, play, probe,
//! load (many sessions at once, measured)
//! and make test clips.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use streamlab::app::{AppOptions, Serve, header_text, run_window};
use streamlab::media::live::SourceSpec;
use streamlab::media::{Framing, pattern};
use streamlab::net::check::{
    CheckError, CheckEvent, ClientCheckOptions, check_client, check_server,
};
use streamlab::net::client::{ClientConfig, DialectChoice, TransportChoice};
use streamlab::net::load::{LoadConfig, LoadTransport};
use streamlab::net::probe::{ProbeLimits, ProbeOutput, probe_to};
use streamlab::net::server::{
    MAX_CONNECTIONS, MAX_PER_ADDRESS, MAX_SESSIONS, SenderKind, Server, ServerConfig,
};
use streamlab::protocol::auth::server::Users;
use streamlab::protocol::check::server::ServerCheckConfig;
use streamlab::protocol::check::{CheckDialect, Report, WireEntry};
use streamlab::protocol::server::SESSION_TIMEOUT;

#[derive(Parser)]
#[command(
    name = "streamlab",
    version,
    about = "Stream and play Motion-JPEG over RTSP/RTP",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Open the window serving this .mjpeg file (default: the bundled sample).
    file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve .mjpeg files over RTSP/RTP (the lab's `python Server.py PORT`).
    Serve {
        /// RTSP port.
        #[arg(default_value_t = 8554)]
        port: u16,
        /// Folder the files are served from; nothing outside it is served.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Address to listen on (0.0.0.0: every interface, as the lab does).
        #[arg(long, default_value = "0.0.0.0")]
        bind: IpAddr,
        /// Frames per second sent.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=240))]
        fps: u32,
        /// Start again at the first frame when a file ends.
        #[arg(long = "loop")]
        looping: bool,
        /// Who sends the sessions' RTP (UDP or interleaved): fan-out threads
        /// sharing the sessions, or a thread per session (the old way, kept
        /// to measure against).
        #[arg(long, value_enum, default_value_t = SenderArg::Fanout)]
        sender: SenderArg,
        /// Fan-out sender threads (0: one per core).
        #[arg(long, default_value_t = 0)]
        sender_threads: usize,
        /// Seconds a standard session lives without a request or RTCP from
        /// its client (said in the Session header's timeout).
        #[arg(long, default_value_t = SESSION_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
        session_timeout: u64,
        /// Most RTSP connections at once (0: no cap); beyond, 503.
        #[arg(long, default_value_t = MAX_CONNECTIONS)]
        max_connections: usize,
        /// Most sessions set up at once (0: no cap); beyond, SETUP gets 503.
        #[arg(long, default_value_t = MAX_SESSIONS)]
        max_sessions: usize,
        /// Most connections at once from one client address (0: no cap).
        #[arg(long, default_value_t = MAX_PER_ADDRESS)]
        max_per_address: usize,
        /// Ask for this user's password (Digest or Basic, RFC 2617); the
        /// password is the first line of --password-file.
        #[arg(long, requires = "password_file", conflicts_with = "users_file")]
        user: Option<String>,
        /// The file holding --user's password (never given on the command
        /// line, where other users of the machine could read it).
        #[arg(long, value_name = "FILE", requires = "user")]
        password_file: Option<PathBuf>,
        /// A file of users, a line each: NAME:PASSWORD, or NAME:REALM:HA1
        /// as Apache's htdigest writes it.
        #[arg(long, value_name = "FILE")]
        users_file: Option<PathBuf>,
        /// The realm named in the challenges (and in htdigest lines).
        #[arg(long, default_value = "Streamlab")]
        realm: String,
        /// A live source at rtsp://HOST:PORT/NAME (repeatable):
        /// NAME=testpattern[:WxH][@FPS] (default 1280x720@30) or
        /// NAME=camera[:/dev/videoN][:WxH][@FPS] (V4L2).
        #[arg(long = "source", value_name = "NAME=SPEC", value_parser = SourceSpec::parse)]
        sources: Vec<SourceSpec>,
    },
    /// Open the window connected to a server: an rtsp:// URL, or the lab's
    /// `python ClientLauncher.py HOST PORT RTP_PORT FILE` fields (TPC-3's
    /// `python3 Client.py HOST TCP_PORT UDP_PORT FILE` with --dialect tpc3).
    Play {
        /// rtsp://[user:password@]host[:port]/path, or HOST PORT RTP_PORT FILE
        /// (TPC-3: HOST TCP_PORT UDP_PORT FILE).
        #[arg(num_args = 1..=4, required = true, value_name = "URL | HOST PORT RTP_PORT FILE")]
        target: Vec<String>,
        #[command(flatten)]
        how: How,
        /// Press SETUP and PLAY at once.
        #[arg(long)]
        autoplay: bool,
    },
    /// Play headless and print a summary; exits non-zero when nothing played.
    Probe {
        /// rtsp://[user:password@]host[:port]/path, or HOST PORT RTP_PORT FILE
        /// (TPC-3: HOST TCP_PORT UDP_PORT FILE).
        #[arg(num_args = 1..=4, required = true, value_name = "URL | HOST PORT RTP_PORT FILE")]
        target: Vec<String>,
        #[command(flatten)]
        how: How,
        /// Stop after this many frames.
        #[arg(long)]
        frames: Option<u64>,
        /// Stop after this many seconds of playing.
        #[arg(long)]
        seconds: Option<f64>,
        /// PLAY from this many seconds into the stream (Range: npt=S-).
        #[arg(long, value_name = "SECONDS")]
        start: Option<f64>,
        /// Print one JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
        /// Write one row per frame: frame, rtp_timestamp, first_seq,
        /// last_seq, packets, bytes, arrival_ms, presented_ms, status.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Write one row per packet: seq, timestamp, marker, size,
        /// arrival_ms, status.
        #[arg(long, value_name = "FILE")]
        packets_csv: Option<PathBuf>,
        /// Record the frames as they arrive (never encoded again), in a
        /// file `streamlab serve` plays back.
        #[arg(long, value_name = "OUT")]
        record: Option<PathBuf>,
        /// The recording's framing.
        #[arg(long, value_enum, default_value_t = ClipFraming::Lab, requires = "record")]
        framing: ClipFraming,
        /// When the server goes away (connection reset, restarted), try
        /// again with backoff and play on.
        #[arg(long)]
        reconnect: bool,
    },
    /// Take one frame of a stream and save it as the JPEG that came off
    /// the wire, then exit.
    Snapshot {
        /// rtsp://[user:password@]host[:port]/path
        url: String,
        /// Where the JPEG goes.
        out: PathBuf,
        #[command(flatten)]
        how: How,
        /// Give up after this many seconds without a frame.
        #[arg(long, default_value_t = 15.0)]
        timeout: f64,
    },
    /// Put many sessions on an RTSP server at once and measure what they
    /// get: sessions that reached PLAY, frames, lateness, loss, CPU.
    Load {
        /// rtsp://host[:port]/path
        url: String,
        /// Sessions to open.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Seconds measured after every session has had its handshake.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// How RTP travels: UDP, or inside the RTSP connections.
        #[arg(long, value_enum, default_value_t = TransportArg::Udp)]
        transport: TransportArg,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Seconds of playing before the measured window opens.
        #[arg(long, default_value_t = 0.0)]
        warmup: f64,
        /// Also measure this process's CPU over the window (the server's).
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
        /// Print one JSON object instead of sentences.
        #[arg(long)]
        json: bool,
    },
    /// Check a student's lab server or client against the handout, field
    /// by field (exit 0: every check passed, 1: some failed, 2: could not run).
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// Write a test clip: a moving pattern with a visible frame counter.
    MakeClip {
        out: PathBuf,
        #[arg(long, default_value_t = 200)]
        frames: u32,
        /// WIDTHxHEIGHT
        #[arg(long, default_value = "320x240")]
        size: String,
        #[arg(long, default_value_t = 70)]
        quality: u8,
        #[arg(long, value_enum, default_value_t = ClipFraming::Lab)]
        framing: ClipFraming,
    },
}

#[derive(Subcommand)]
enum CheckWhat {
    /// Run a session against a server (SETUP, PLAY, PAUSE, PLAY, TEARDOWN,
    /// a missing file; TPC-3: the handshake, a transfer, a missing file)
    /// and print one line per check.
    Server {
        host: String,
        port: u16,
        /// The file to ask for, as the server names it.
        file: String,
        #[arg(long, value_enum, default_value_t = CheckDialectArg::Lab)]
        dialect: CheckDialectArg,
        /// Print `{"checks": [{"id", "ok", "seen", "expected"}...], "passed", "failed"}`.
        #[arg(long)]
        json: bool,
        /// UDP port to receive RTP on, named in SETUP (0: any free one).
        #[arg(long, default_value_t = 0)]
        rtp_port: u16,
        /// How long the first PLAY runs, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Serve as the lab's server does, note every request of the client
    /// that connects, and print the checklist when it disconnects.
    Client {
        /// RTSP (TPC-3: TCP) port to listen on.
        #[arg(default_value_t = 1025)]
        port: u16,
        /// The .Mjpeg file to serve (default: the bundled sample, under its
        /// own name and as movie.Mjpeg).
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = CheckDialectArg::Lab)]
        dialect: CheckDialectArg,
        /// Print the report as JSON (as `check server --json`).
        #[arg(long)]
        json: bool,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind: IpAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckDialectArg {
    Lab,
    Tpc3,
    Standard,
}

impl CheckDialectArg {
    fn dialect(self) -> CheckDialect {
        match self {
            CheckDialectArg::Lab => CheckDialect::Lab,
            CheckDialectArg::Tpc3 => CheckDialect::Tpc3,
            CheckDialectArg::Standard => CheckDialect::Standard,
        }
    }
}

/// Print a check's report: one line per check, the handout's words under
/// a failure and the first offending packet as the inspector draws it;
/// or the JSON. The exit status says whether all passed.
fn print_report(report: &Report, dialect: CheckDialect, json: bool) -> ExitCode {
    if json {
        println!("{}", report.to_json());
    } else {
        for c in &report.checks {
            let verdict = if c.ok { "PASS" } else { "FAIL" };
            println!("{verdict} {:<18} {}", c.id.as_str(), c.seen);
            if !c.ok {
                println!("     expected: {}", c.expected);
                if let Some(p) = &c.packet {
                    println!("     the first offending packet, as the inspector draws it:");
                    let text =
                        header_text(p, c.id.drop_reason(), dialect != CheckDialect::Standard);
                    for line in text.lines() {
                        println!("       {line}");
                    }
                }
            }
        }
        println!("{} passed, {} failed", report.passed(), report.failed());
    }
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// How a client speaks to the server.
#[derive(clap::Args)]
struct How {
    /// auto: standard RTSP first, the lab's when OPTIONS gets no answer;
    /// tpc3: Lab 08 TPC-3's handshake instead of RTSP.
    #[arg(long, value_enum, default_value_t = DialectArg::Auto)]
    dialect: DialectArg,
    /// How RTP travels (standard RTSP): UDP, or inside the RTSP connection.
    #[arg(long, value_enum, default_value_t = TransportArg::Udp)]
    transport: TransportArg,
    /// Local UDP port for RTP with a URL (0: any free one).
    #[arg(long, default_value_t = 0)]
    rtp_port: u16,
    /// Frames to fetch ahead after SETUP (PLAY, then PAUSE once held), so
    /// PLAY starts from the buffer at once; 0 = off.
    #[arg(long, default_value_t = 0, value_name = "FRAMES")]
    prebuffer: u32,
    /// Present frames this far behind the sender, on its clock (0: as they
    /// complete). Default: 0 over TCP and on loopback, 200 over UDP to
    /// another host.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(0..=10_000))]
    latency: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    Auto,
    Standard,
    Lab,
    Tpc3,
}

#[derive(Clone, Copy, ValueEnum)]
enum SenderArg {
    Fanout,
    Threads,
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
}

impl How {
    /// The client's configuration from a URL or the lab's four fields.
    fn config(&self, target: &[String]) -> anyhow::Result<ClientConfig> {
        if let DialectArg::Tpc3 = self.dialect {
            return self.tpc3_config(target);
        }
        let mut config = match target {
            [url] => ClientConfig::from_url(url).with_context(|| format!("cannot read {url:?}"))?,
            [host, port, rtp_port, file] => ClientConfig {
                host: host.clone(),
                rtsp_port: port
                    .parse()
                    .with_context(|| format!("the RTSP port {port:?} is not a number"))?,
                rtp_port: rtp_port
                    .parse()
                    .with_context(|| format!("the RTP port {rtp_port:?} is not a number"))?,
                file: file.clone(),
                ..ClientConfig::default()
            },
            _ => bail!("give an rtsp:// URL, or HOST PORT RTP_PORT FILE as the lab does"),
        };
        if target.len() == 1 {
            config.rtp_port = self.rtp_port;
        }
        config.dialect = match self.dialect {
            DialectArg::Auto => DialectChoice::Auto,
            DialectArg::Standard => DialectChoice::Standard,
            DialectArg::Lab => DialectChoice::Lab,
            DialectArg::Tpc3 => DialectChoice::Tpc3,
        };
        config.transport = match self.transport {
            TransportArg::Udp => TransportChoice::Udp,
            TransportArg::Tcp => TransportChoice::Tcp,
        };
        config.prebuffer = self.prebuffer;
        config.latency_ms = self.latency;
        Ok(config)
    }
}

impl How {
    /// TPC-3's four fields, in the assignment's order: `python3 Client.py
    /// hostname TCPControlPort UDPDataPort fileName`.
    fn tpc3_config(&self, target: &[String]) -> anyhow::Result<ClientConfig> {
        let [host, port, udp_port, file] = target else {
            bail!(
                "TPC-3 has no URLs: give HOST TCP_PORT UDP_PORT FILE, as `python3 Client.py \
                 hostname TCPControlPort UDPDataPort fileName` takes them"
            );
        };
        if let TransportArg::Tcp = self.transport {
            bail!("TPC-3 sends its datagrams over UDP only: leave out --transport tcp");
        }
        if self.prebuffer > 0 {
            bail!("TPC-3 cannot pause, so it cannot pre-buffer: leave out --prebuffer");
        }
        Ok(ClientConfig {
            host: host.clone(),
            rtsp_port: port
                .parse()
                .with_context(|| format!("the TCP port {port:?} is not a number"))?,
            rtp_port: udp_port
                .parse()
                .with_context(|| format!("the UDP port {udp_port:?} is not a number"))?,
            file: file.clone(),
            dialect: DialectChoice::Tpc3,
            latency_ms: self.latency,
            ..ClientConfig::default()
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ClipFraming {
    /// 5-digit length prefix, as movie.Mjpeg.
    Lab,
    /// 6-digit length prefix, for HD frames over 99,999 bytes.
    Lab6,
    /// Raw concatenated JPEG, as `ffmpeg -f mjpeg` writes.
    Raw,
}

impl ClipFraming {
    fn framing(self) -> Framing {
        match self {
            ClipFraming::Lab => Framing::Lab { digits: 5 },
            ClipFraming::Lab6 => Framing::Lab { digits: 6 },
            ClipFraming::Raw => Framing::Raw,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Some(Command::Serve { .. }) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("streamlab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One message of the wire log with its notes, as `check client` prints
/// them while the client runs.
fn print_wire(w: &WireEntry) {
    let who = if w.sent { "S" } else { "C" };
    for line in w.text.lines() {
        println!("{who}: {line}");
    }
    for n in &w.notes {
        let mark = if n.ok { "ok  " } else { "FAIL" };
        println!("     {mark} {:<18} {}", n.id.as_str(), n.text);
    }
}

/// Exit status 2: the check could not run, said in words.
fn could_not_run(e: CheckError, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({ "error": e.to_string() }));
    }
    eprintln!("streamlab: the check could not run: {e}");
    ExitCode::from(2)
}

/// A channel that fires once on Ctrl-C.
fn ctrl_c() -> anyhow::Result<crossbeam_channel::Receiver<()>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .context("cannot catch Ctrl-C")?;
    Ok(rx)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = cli.command else {
        let serve = match cli.file {
            Some(f) => Serve::File(f),
            None => Serve::Sample,
        };
        run_window(AppOptions {
            serve,
            ..AppOptions::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Check {
            what:
                CheckWhat::Server {
                    host,
                    port,
                    file,
                    dialect,
                    json,
                    rtp_port,
                    seconds,
                },
        } => {
            let dialect = dialect.dialect();
            let mut cfg = ServerCheckConfig::new(dialect, &host, port, &file, rtp_port);
            if !(0.5..=600.0).contains(&seconds) {
                bail!("--seconds must be between 0.5 and 600");
            }
            cfg.play_for = std::time::Duration::from_secs_f64(seconds);
            if !json {
                println!(
                    "Checking the {} server at {host}:{port} with {file}, against the {} handout...",
                    dialect.name(),
                    if dialect == CheckDialect::Tpc3 {
                        "TPC-3"
                    } else {
                        "lab"
                    }
                );
            }
            Ok(match check_server(cfg, None, None) {
                Ok(report) => print_report(&report, dialect, json),
                Err(e) => could_not_run(e, json),
            })
        }
        Command::Check {
            what:
                CheckWhat::Client {
                    port,
                    file,
                    dialect,
                    json,
                    bind,
                },
        } => {
            if dialect == CheckDialectArg::Standard {
                bail!("check client speaks the lab's RTSP or TPC-3: --dialect lab or tpc3");
            }
            let dialect = dialect.dialect();
            let opts = ClientCheckOptions {
                bind: SocketAddr::new(bind, port),
                file,
                dialect,
                ..ClientCheckOptions::default()
            };
            // The notes on each request as it comes, unless JSON was asked.
            let (tx, rx) = crossbeam_channel::unbounded();
            let printer = std::thread::spawn(move || {
                for e in rx {
                    match e {
                        CheckEvent::Started(s) if !json => println!("{s}"),
                        CheckEvent::Wire(w) if !json => print_wire(&w),
                        _ => {}
                    }
                }
            });
            let result = check_client(opts, Some(tx), None);
            let _ = printer.join();
            Ok(match result {
                Ok(report) => print_report(&report, dialect, json),
                Err(e) => could_not_run(e, json),
            })
        }
        Command::Serve {
            port,
            root,
            bind,
            fps,
            looping,
            sender,
            sender_threads,
            session_timeout,
            max_connections,
            max_sessions,
            max_per_address,
            user,
            password_file,
            users_file,
            realm,
            sources,
        } => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))
            };
            let users = match (user, password_file, users_file) {
                (Some(name), Some(file), _) => Some(
                    Users::single(&realm, &name, &read(&file)?)
                        .with_context(|| format!("{}", file.display()))?,
                ),
                (_, _, Some(file)) => Some(
                    Users::parse(&realm, &read(&file)?)
                        .with_context(|| format!("{}", file.display()))?,
                ),
                _ => None,
            };
            if let Some(u) = &users {
                tracing::info!(
                    "asking for a password (Digest or Basic, realm {:?}); lab and TPC-3 clients, which cannot give one, are refused",
                    u.realm()
                );
            }
            let config = ServerConfig {
                bind: SocketAddr::new(bind, port),
                root: Some(root),
                fps,
                looping,
                sender: match sender {
                    SenderArg::Fanout => SenderKind::Fanout,
                    SenderArg::Threads => SenderKind::Threads,
                },
                sender_threads,
                session_timeout: Duration::from_secs(session_timeout),
                max_connections,
                max_sessions,
                max_per_address,
                users,
                live: sources.clone(),
                ..ServerConfig::default()
            };
            let server = Server::bind(config)?;
            for s in &sources {
                tracing::info!(
                    "live source {} ({}x{} at {} fps) at rtsp://{}/{}",
                    s.name,
                    s.width,
                    s.height,
                    s.fps,
                    server.local_addr(),
                    s.name
                );
            }
            let stop = ctrl_c()?;
            let addr = server.local_addr();
            tracing::info!("serving on rtsp://{addr}/ (Ctrl-C stops)");
            let handle = server.spawn();
            let _ = stop.recv();
            tracing::info!("stopping");
            handle.stop();
            Ok(ExitCode::SUCCESS)
        }
        Command::Load {
            url,
            sessions,
            seconds,
            transport,
            parallel,
            warmup,
            server_pid,
            json,
        } => {
            let mut config = LoadConfig::new(url, sessions, seconds);
            config.transport = match transport {
                TransportArg::Udp => LoadTransport::Udp,
                TransportArg::Tcp => LoadTransport::Tcp,
            };
            config.parallel = parallel;
            config.warmup = warmup;
            config.server_pid = server_pid;
            let result = streamlab::net::load::run(&config)?;
            if json {
                println!("{}", result.to_json());
            } else {
                println!("{}", result.to_text());
            }
            Ok(if result.report.playing > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Play {
            target,
            how,
            autoplay,
        } => {
            let config = how.config(&target)?;
            run_window(AppOptions {
                serve: Serve::Nothing,
                connect: Some(config),
                autoplay,
            })
            .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe {
            target,
            how,
            frames,
            seconds,
            start,
            json,
            csv,
            packets_csv,
            record,
            framing,
            reconnect,
        } => {
            let config = how.config(&target)?;
            let cancel = ctrl_c()?;
            let limits = ProbeLimits {
                frames,
                seconds,
                start,
                reconnect,
            };
            let output = ProbeOutput {
                frames_csv: csv,
                packets_csv,
                record: record.map(|r| (r, framing.framing())),
                snapshot: None,
            };
            let report = probe_to(config, limits, &output, &cancel);
            if json {
                println!("{}", report.to_json());
            } else {
                println!("{}", report.summary());
                for n in &report.notices {
                    eprintln!("streamlab: {n}");
                }
                for e in &report.errors {
                    eprintln!("streamlab: {e}");
                }
            }
            Ok(if report.stats.frames > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Snapshot {
            url,
            out,
            how,
            timeout,
        } => {
            let config = how.config(std::slice::from_ref(&url))?;
            let cancel = ctrl_c()?;
            let limits = ProbeLimits {
                seconds: Some(timeout),
                ..ProbeLimits::default()
            };
            let output = ProbeOutput {
                snapshot: Some(out),
                ..ProbeOutput::default()
            };
            let report = probe_to(config, limits, &output, &cancel);
            match &report.snapshot {
                Some((path, bytes)) => {
                    println!(
                        "saved a {}x{} frame ({bytes} bytes, as received) to {}",
                        report.width,
                        report.height,
                        path.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    for e in &report.errors {
                        eprintln!("streamlab: {e}");
                    }
                    if report.errors.is_empty() {
                        eprintln!("streamlab: no frame came within {timeout} s");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::MakeClip {
            out,
            frames,
            size,
            quality,
            framing,
        } => {
            let Some((w, h)) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            else {
                bail!("--size must look like 1280x720, not {size:?}");
            };
            if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
                bail!("--size must be between 16x16 and 8192x8192");
            }
            let framing = framing.framing();
            let file = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut w_buf = std::io::BufWriter::new(file);
            let bytes = pattern::make_clip(&mut w_buf, frames, w, h, quality, framing)?;
            std::io::Write::flush(&mut w_buf)?;
            println!(
                "wrote {} ({frames} frames, {w}x{h}, {bytes} bytes)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
