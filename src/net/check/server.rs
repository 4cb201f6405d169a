//! `check server`'s runner: one control connection (two, for the missing
//! file), the named UDP port and a decoy on the control connection's own
//! port number, each read on a thread of its own into one channel; the
//! [`ServerChecker`] decides, this loop only moves bytes and keeps time.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{CheckError, CheckEvent, decode_jpeg};
use crate::protocol::check::Report;
use crate::protocol::check::server::{ArrivedAt, CheckOutput, ServerCheckConfig, ServerChecker};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the UDP readers look whether the check is over.
const UDP_POLL: Duration = Duration::from_millis(100);

enum Input {
    Tcp(u32, Instant, Vec<u8>),
    Closed(u32, Instant),
    Udp(ArrivedAt, Instant, Vec<u8>),
}

/// Run a server check to the end. `cfg.rtp_port` 0 takes any free port
/// (and names it). `events`, when given, gets the wire log as it goes.
/// `stop`, when set, ends the check early ([`CheckError::Stopped`]).
pub fn check_server(
    mut cfg: ServerCheckConfig,
    events: Option<Sender<CheckEvent>>,
    stop: Option<Arc<AtomicBool>>,
) -> Result<Report, CheckError> {
    let addr = resolve(&cfg.host, cfg.port)?;
    let stream = connect(addr)?;
    let rtp = UdpSocket::bind(("0.0.0.0", cfg.rtp_port)).map_err(|source| CheckError::RtpPort {
        port: cfg.rtp_port,
        source,
    })?;
    cfg.rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or(cfg.rtp_port);
    // Where a server sends that takes the client's TCP address for its RTP
    // destination (a classic slip): if the port is free, listen there too.
    let decoy_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    let decoy = UdpSocket::bind(("0.0.0.0", decoy_port)).ok();
    if cfg.decode.is_none() {
        cfg.decode = Some(decode_jpeg);
    }
    let say = |e: CheckEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    say(CheckEvent::Started(format!(
        "checking the {} server at {addr} with {} (RTP to port {})",
        cfg.dialect.name(),
        cfg.file,
        cfg.rtp_port
    )));

    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut threads = vec![udp_reader(rtp, ArrivedAt::Named, tx.clone(), done.clone())];
    if let Some(d) = decoy {
        threads.push(udp_reader(
            d,
            ArrivedAt::Other(decoy_port),
            tx.clone(),
            done.clone(),
        ));
    }
    spawn_reader(&stream, 0, tx.clone());
    let mut run = Run {
        checker: ServerChecker::new(Instant::now(), cfg),
        inputs: rx,
        tx,
        control: Some(stream),
        generation: 0,
        addr,
        stop,
    };
    let result = run.run(&say);
    done.store(true, Ordering::SeqCst);
    if let Some(s) = run.control.take() {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
    result?;
    let report = run.checker.report();
    say(CheckEvent::Finished(report.clone()));
    Ok(report)
}

/// The loop's state: the checker, its inputs, the control connection.
struct Run {
    checker: ServerChecker,
    inputs: Receiver<Input>,
    /// For the readers of a new control connection.
    tx: Sender<Input>,
    control: Option<TcpStream>,
    /// Which control connection is current: a closed one's reader may
    /// still report.
    generation: u32,
    addr: SocketAddr,
    stop: Option<Arc<AtomicBool>>,
}

impl Run {
    fn run(&mut self, say: &dyn Fn(CheckEvent)) -> Result<(), CheckError> {
        loop {
            while let Some(out) = self.checker.poll_output() {
                match out {
                    CheckOutput::Send(bytes) => {
                        if let Some(s) = self.control.as_mut()
                            && s.write_all(&bytes).is_err()
                        {
                            self.checker.handle_closed(Instant::now());
                        }
                    }
                    CheckOutput::Reconnect => self.reconnect(),
                    CheckOutput::Wire(w) => say(CheckEvent::Wire(w)),
                    CheckOutput::Done => return Ok(()),
                }
            }
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Err(CheckError::Stopped);
            }
            // Wake at the checker's deadline, and at least every 200 ms to
            // look at `stop`.
            let now = Instant::now();
            let wake = self
                .checker
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_millis(200));
            let current = self.generation;
            match self.inputs.recv_deadline(wake) {
                Ok(Input::Tcp(g, at, bytes)) if g == current => {
                    self.checker.handle_bytes(at, &bytes)
                }
                Ok(Input::Closed(g, at)) if g == current => self.checker.handle_closed(at),
                Ok(Input::Udp(port, at, bytes)) => self.checker.handle_rtp(at, port, &bytes),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => self.checker.handle_timeout(Instant::now()),
                Err(RecvTimeoutError::Disconnected) => return Err(CheckError::Stopped),
            }
            // Deadlines that passed while inputs kept coming.
            if self
                .checker
                .poll_timeout()
                .is_some_and(|t| t <= Instant::now())
            {
                self.checker.handle_timeout(Instant::now());
            }
        }
    }

    /// A new control connection, as the checker asked.
    fn reconnect(&mut self) {
        if let Some(s) = self.control.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.generation += 1;
        match connect(self.addr) {
            Ok(s) => {
                spawn_reader(&s, self.generation, self.tx.clone());
                self.control = Some(s);
                self.checker.handle_connected(Instant::now());
            }
            Err(e) => self
                .checker
                .handle_connect_failed(Instant::now(), &e.to_string()),
        }
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, CheckError> {
    let err = |source| CheckError::Resolve {
        host: host.to_string(),
        port,
        source,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(err)?
        .find(|a| a.is_ipv4())
        .or_else(|| (host, port).to_socket_addrs().ok()?.next())
        .ok_or_else(|| err(std::io::Error::other("no address")))
}

fn connect(addr: SocketAddr) -> Result<TcpStream, CheckError> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|source| CheckError::Connect { addr, source })?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

fn spawn_reader(stream: &TcpStream, generation: u32, tx: Sender<Input>) {
    let Ok(mut s) = stream.try_clone() else {
        let _ = tx.send(Input::Closed(generation, Instant::now()));
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Input::Closed(generation, Instant::now()));
                    return;
                }
                Ok(n) => {
                    if tx
                        .send(Input::Tcp(generation, Instant::now(), buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
}

fn udp_reader(
    socket: UdpSocket,
    port: ArrivedAt,
    tx: Sender<Input>,
    done: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = socket.set_read_timeout(Some(UDP_POLL));
        let mut buf = vec![0u8; 65_536];
        while !done.load(Ordering::SeqCst) {
            if let Ok(n) = socket.recv(&mut buf)
                && tx
                    .send(Input::Udp(port, Instant::now(), buf[..n].to_vec()))
                    .is_err()
            {
                return;
            }
        }
    })
}
