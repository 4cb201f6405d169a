//! The client engine: connects to an RTSP server, drives the session state
//! machine from [`crate::protocol`], receives RTP, reassembles, buffers and
//! decodes frames off the network thread, and talks to its owner (the
//! window, or `streamlab probe`) only through crossbeam channels.
//!
//! Threads: the engine (`engine.rs`: RTSP, commands, timers), the RTSP
//! reader, for UDP the RTP receiver (`receive.rs`), and the playout thread
//! (`playout.rs`: the playout buffer and the JPEG decoder).

mod engine;
mod playout;
mod receive;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use tracing::debug;

use crate::protocol::State;
use engine::Engine;

pub use crate::protocol::analysis::{
    FrameRecord, FrameStatus, NetStats, PacketRecord, PacketStatus,
};
pub use crate::protocol::playout::BufferState;

pub use crate::protocol::client::{
    ClientCommand, ClientConfig, ClientError, Credentials, DialectChoice, Direction, Forced,
    Tpc3Phase, TransportChoice,
};
pub use crate::protocol::timeline::{Anchor, Timeline};

/// One RTSP message (or TPC-3 handshake message) exactly as it crossed
/// the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    pub at: SystemTime,
    pub direction: Direction,
    /// The raw text (lossy UTF-8 of the exact bytes).
    pub text: String,
}

/// One decoded video frame, RGBA8, row-major, no padding.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    pub width: u32,
    pub height: u32,
    pub rgba: Arc<Vec<u8>>,
    /// The JPEG as it came off the wire (reassembled): what Save frame
    /// and recordings write, never encoded again.
    pub jpeg: Arc<Vec<u8>>,
    /// RTP sequence number of the frame's first packet.
    pub seq: u16,
    /// RTP timestamp of the frame.
    pub rtp_timestamp: u32,
    /// Frames decoded so far in this session, counting this one (1-based).
    pub number: u64,
}

/// Counters about the stream, sent about twice a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// Frames decoded and delivered.
    pub frames: u64,
    /// RTP payload bytes accepted.
    pub bytes: u64,
    /// RTP packets accepted.
    pub packets: u64,
    /// Frames per second over the last second or so.
    pub fps: f64,
    /// Packets missing according to sequence numbers.
    pub lost: u64,
    /// Packets dropped, by reason name (e.g. "bad version", "wrong SSRC").
    pub dropped: BTreeMap<String, u64>,
    /// Frames whose JPEG failed to decode.
    pub decode_errors: u64,
    /// Milliseconds from sending PLAY to the first decoded frame.
    pub first_frame_ms: Option<f64>,
    /// The SSRC of the stream, once a packet was accepted.
    pub ssrc: Option<u32>,
    /// Whole frames not decoded because decoding or the window fell behind.
    pub frames_skipped: u64,
    /// Packets that overtook others on the way and were put back in order.
    pub reordered: u64,
    /// Packets the kernel dropped because our UDP receive buffer was full
    /// (Linux; None where it cannot be read, or over TCP).
    pub kernel_drops: Option<u64>,
    /// RTCP receiver reports sent to the server.
    pub reports_sent: u64,
    /// The network analysis: loss, duplicates, reordering, rates, jitter,
    /// latency.
    pub net: NetStats,
    /// The playout buffer: frames and media time held, what it is doing.
    pub buffer_frames: u64,
    pub buffer_ms: f64,
    pub buffer_state: BufferState,
    pub underruns: u64,
    /// Frames shown, and frames skipped because they came after their
    /// presentation time (or behind a frame already shown).
    pub frames_presented: u64,
    pub frames_late: u64,
    /// Frames dropped from a full playout buffer.
    pub frames_overflow: u64,
    /// Frames presented per second (last second).
    pub fps_presented: f64,
    /// The sender's time of a frame to its presentation, ms (p50, p99 of
    /// the recent ones); None without RTCP sender reports.
    pub presented_latency_p50_ms: Option<f64>,
    pub presented_latency_p99_ms: Option<f64>,
    /// The latency the playout buffer uses, ms (0: frames are shown as
    /// they complete).
    pub latency_ms: u32,
}

impl ClientStats {
    /// All dropped packets, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What the engine tells its owner.
#[derive(Debug, Clone)]
// Counters go twice a second and frames at the frame rate: a box per
// event would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClientEvent {
    /// The session moved to a new state.
    State {
        state: State,
        session: Option<String>,
    },
    /// An RTSP message was sent or received.
    Wire(WireMessage),
    /// A frame was decoded.
    Frame(DecodedFrame),
    /// Packet and frame records for the analysis views and the CSV files,
    /// a few times a second.
    Records(Records),
    /// Counters, about twice a second while a session exists.
    Stats(ClientStats),
    /// Something went wrong; the engine goes on where it can.
    Error(ClientError),
    /// Frames had been arriving and have stopped for a while (the lab's
    /// server just stops at the end of the file).
    StreamEnded,
    /// Something the user should know that is not an error (e.g. RTP
    /// moved from UDP to TCP by itself).
    Notice(String),
    /// The stream's length (after DESCRIBE; None for live streams and the
    /// lab's dialect) or where the last PLAY started (after its reply):
    /// with a frame's RTP timestamp, its position.
    Timeline(Timeline),
    /// TPC-3: the handshake moved to this phase (the session states
    /// follow it: see [`Tpc3Phase::state`]).
    Tpc3(Tpc3Phase),
    /// The engine stopped (after Shutdown, or when the owner went away).
    Stopped,
}

/// Packet and frame records, each with its arrival (and presentation)
/// instant; `origin` is when PLAY's reply came (the CSV's time zero).
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub origin: Option<Instant>,
    pub packets: Vec<PacketRecord>,
    pub frames: Vec<FrameRecord>,
}

/// Milliseconds from `origin` (or 0 without one) to `at`.
pub fn millis_since(origin: Option<Instant>, at: Instant) -> f64 {
    let Some(o) = origin else {
        return 0.0;
    };
    if at >= o {
        at.duration_since(o).as_secs_f64() * 1e3
    } else {
        -(o.duration_since(at).as_secs_f64() * 1e3)
    }
}

/// How often counters are sent.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Events queued and not yet taken beyond which frames are not decoded:
/// an owner that stopped draining (a hidden window) must not pile up
/// megabytes of pixels.
const MAX_QUEUED_EVENTS: usize = 64;

/// The owner's side of a running engine. Dropping it shuts the engine down
/// (sending TEARDOWN when a session exists).
pub struct ClientHandle {
    commands: Sender<Order>,
    events: Receiver<ClientEvent>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl ClientHandle {
    /// Start the engine; it connects to the server at once, as the lab's
    /// client does. `on_event` is called after each event is queued (the
    /// window passes a closure that requests a repaint).
    pub fn spawn(config: ClientConfig, on_event: impl Fn() + Send + Sync + 'static) -> Self {
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let events = Events {
            tx: ev_tx,
            notify: Arc::new(on_event),
        };
        let thread = std::thread::Builder::new()
            .name("rtsp-client".into())
            .spawn(move || {
                Engine::new(config, events.clone()).run(cmd_rx);
                events.send(ClientEvent::Stopped);
                let _ = done_tx.send(());
            })
            .ok();
        ClientHandle {
            commands: cmd_tx,
            events: ev_rx,
            done: done_rx,
            thread,
        }
    }

    /// Queue a command; never blocks.
    pub fn send(&self, command: ClientCommand) {
        let _ = self.commands.send(Order::Command(command));
    }

    /// Give the engine a user name and password after it reported a 401;
    /// the refused request goes again with them in the same session (see
    /// [`ClientConnection::credentials`]). Never blocks.
    pub fn credentials(&self, credentials: Credentials) {
        let _ = self.commands.send(Order::Credentials(credentials));
    }

    /// The event stream.
    pub fn events(&self) -> &Receiver<ClientEvent> {
        &self.events
    }

    /// Send Shutdown and wait up to `timeout` for the engine to finish.
    pub fn shutdown(mut self, timeout: Duration) {
        self.stop(timeout);
    }

    fn stop(&mut self, timeout: Duration) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.commands.send(Order::Command(ClientCommand::Shutdown));
        if self.done.recv_timeout(timeout).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// What the owner sends the engine thread. (`Debug` hides the password.)
#[derive(Debug)]
enum Order {
    Command(ClientCommand),
    Credentials(Credentials),
}

/// The event sender plus the owner's wake-up call.
#[derive(Clone)]
struct Events {
    tx: Sender<ClientEvent>,
    notify: Arc<dyn Fn() + Send + Sync>,
}

impl Events {
    fn send(&self, ev: ClientEvent) {
        if self.tx.send(ev).is_ok() {
            (self.notify)();
        }
    }

    fn error(&self, e: ClientError) {
        debug!("client error: {e}");
        self.send(ClientEvent::Error(e));
    }

    fn backlog(&self) -> usize {
        self.tx.len()
    }
}

/// Counters shared by the engine's threads.
#[derive(Default)]
struct StatsInner {
    stats: ClientStats,
    frame_times: VecDeque<Instant>,
    last_packet: Option<Instant>,
    play_sent: Option<Instant>,
    /// When the session's first PLAY reply came: the records' time zero.
    play_replied: Option<Instant>,
}

type SharedStats = Arc<Mutex<StatsInner>>;

fn with_stats<R>(s: &SharedStats, f: impl FnOnce(&mut StatsInner) -> R) -> R {
    let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g)
}
