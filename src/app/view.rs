//! The window's model: plain data about the session that engine events update
//! and every panel reads, plus the commands panels hand back to the app.
//!
//! Nothing here touches sockets, threads or egui, so the rules (which button
//! is allowed when, what clears an error) can be read and tested in one place.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::app::history::History;
use crate::net::client::Forced;
use crate::net::client::{
    ClientCommand, ClientError, ClientEvent, ClientStats, DecodedFrame, DialectChoice, Direction,
    Timeline, Tpc3Phase,
};
use crate::net::server::Preparing;
use crate::protocol::State;
use crate::protocol::rtsp::Method;
use crate::protocol::session::transition;

/// Oldest wire messages are forgotten past this many, so a session left
/// running for days cannot grow the log without bound.
const MAX_WIRE_ENTRIES: usize = 10_000;

/// The state machine's history keeps this many requests.
const MAX_STEPS: usize = 200;

/// At most this many error lines are kept; a flood of the same failure
/// should not push the connection bar off the screen.
const MAX_ERRORS: usize = 5;

/// What a panel asks the app to do; the app applies it after drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum UiCommand {
    /// One of the SETUP / PLAY / PAUSE / TEARDOWN buttons.
    Client(ClientCommand),
    /// Open the native file dialog (on a worker thread).
    PickFile,
    /// Serve the live test pattern with the built-in server.
    ServePattern,
    /// Serve a V4L2 camera with the built-in server.
    ServeCamera {
        device: String,
        size: String,
        fps: u32,
    },
    /// Serve this file with the embedded server.
    ServeFile(PathBuf),
    /// Hide the error and notice lines.
    Dismiss,
    /// Empty the wire log.
    ClearWireLog,
    /// Seek to this point of the stream (the position bar): PLAY with
    /// `Range: npt=S-` while PLAYING; in READY, at the next PLAY.
    Seek { millis: u64 },
    /// Show these wire log entries (by [`WireEntry::id`]), scrolled to.
    ShowWire(Vec<u64>),
    /// Turn "Let me send it anyway" on or off.
    SendAnyway(bool),
    /// The wire log scrolled to the picked entries.
    WireScrolled,
    /// Save the shown frame as received, or as PNG (the file dialog runs
    /// on a worker).
    SaveFrame,
    /// Start recording the frames as they arrive (asking where), or stop.
    Record,
    /// Enter or leave full screen.
    ToggleFullscreen,
    /// Use the user name and password typed into the credentials prompt:
    /// in INIT, SETUP again with them; in a session, the engine sends the
    /// refused request again with them (the app reads them from the
    /// prompt, so the password never travels in a command).
    Authenticate,
    /// Close the credentials prompt without connecting.
    CancelAuth,
}

/// The server answered 401 Unauthorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthNeeded {
    /// Credentials were sent and refused (as opposed to none being sent).
    pub refused: bool,
    /// What the engine said ([`ClientError::Auth`]), shown in the prompt.
    pub message: String,
    /// The request the server refused, which goes again once credentials
    /// are given (None: a keep-alive, or nothing the user asked for).
    pub retry: Option<ClientCommand>,
}

/// The latest decoded frame, without its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Frames decoded so far in this session (1-based).
    pub number: u64,
    /// RTP sequence number of the frame's first packet.
    pub seq: u16,
    pub rtp_timestamp: u32,
    pub width: u32,
    pub height: u32,
}

/// One RTSP message in the wire log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEntry {
    /// Counts up from 1 in the window's life; stays the entry's name when
    /// older entries are forgotten or the log is cleared.
    pub id: u64,
    pub at: SystemTime,
    pub direction: Direction,
    /// The message with line endings made uniform and trailing blank lines
    /// removed, ready to draw.
    pub text: String,
    /// The CSeq header, if the message has one.
    pub cseq: Option<u32>,
}

/// One of SETUP, PLAY, PAUSE, TEARDOWN as the state machine saw it: the
/// request, its reply (or none), and the move it made (or did not make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// SETUP, PLAY, PAUSE or TEARDOWN.
    pub method: Method,
    pub from: State,
    /// Where the state machine went: `from` when the request was refused
    /// or not answered.
    pub to: State,
    pub cseq: Option<u32>,
    /// The request's wire log entry.
    pub request: u64,
    /// The reply's wire log entry, once it came.
    pub reply: Option<u64>,
    /// The reply's status line after the version ("200 OK", "455 Method
    /// Not Valid in This State"), or None while waiting or when none came.
    pub status: Option<String>,
    /// No reply came (the engine gave up waiting).
    pub unanswered: bool,
}

impl Step {
    /// The request went and the reply is still to come.
    pub fn waiting(&self) -> bool {
        self.reply.is_none() && !self.unanswered
    }

    /// The state moved as the state machine says.
    pub fn moved(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s.starts_with("200"))
    }

    /// The wire log entries of this step.
    pub fn entries(&self) -> Vec<u64> {
        std::iter::once(self.request).chain(self.reply).collect()
    }
}

/// Wire log entries to show, and whether the log still has to scroll to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFocus {
    pub ids: Vec<u64>,
    pub scroll: bool,
}

/// The embedded server, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub url: String,
    pub file_name: String,
    /// The served file, or None for the bundled sample.
    pub source: Option<PathBuf>,
    /// The live test pattern, not a file.
    pub live: bool,
    /// What the server is doing to get the file ready, while it does.
    pub preparing: Option<Preparing>,
    /// The session in this window plays from this server (so a slow reply
    /// is the preparation's doing, and its bar says how long is left).
    pub ours: bool,
}

/// Everything the panels draw.
#[derive(Debug, Clone, Default)]
pub struct PlayerView {
    pub state: State,
    pub session: Option<String>,
    /// The CSeq of the newest message in the wire log that had one.
    pub last_cseq: Option<u32>,
    pub frame: Option<FrameInfo>,
    pub stats: ClientStats,
    /// Plot points, recent packets and frame records of this session.
    pub history: History,
    pub wire: Vec<WireEntry>,
    /// Sentences shown in the error banner until dismissed or until the
    /// next request succeeds.
    pub errors: Vec<String>,
    /// Something worth knowing that is not a failure (e.g. the stream ended).
    pub notice: Option<String>,
    /// Recording: the frames written so far (None: not recording).
    pub recording: Option<u64>,
    /// Times the server went away and the player played on by itself.
    pub reconnects: u64,
    /// The notice came while the request in flight was being carried out
    /// (e.g. its RTP port was taken): that request's success keeps it.
    notice_of_request: bool,
    /// The request sent and not yet answered (by a state change or an error).
    pub in_flight: Option<ClientCommand>,
    pub server: Option<ServerInfo>,
    /// The file dialog is open.
    pub picking: bool,
    /// The server wants credentials: the prompt asks for them.
    pub auth_needed: Option<AuthNeeded>,
    /// The stream's length and where the last PLAY started.
    pub timeline: Timeline,
    /// Where the newest frame is in the stream, in milliseconds (from its
    /// RTP timestamp and the timeline), or where the last PLAY started.
    pub position_ms: Option<u64>,
    /// A seek not sent yet: in READY it waits for PLAY; in PLAYING, for the
    /// reply to the request in flight.
    pub pending_seek: Option<u64>,
    /// "Let me send it anyway": every button is enabled in every state.
    pub anyway: bool,
    /// When the request in flight went (for the wait indicator).
    pub waiting_since: Option<Instant>,
    /// SETUP, PLAY, PAUSE and TEARDOWN so far, oldest first.
    pub steps: Vec<Step>,
    /// Where the state machine is by the steps (the view's `state` follows
    /// the engine, which says nothing while it switches UDP to TCP).
    step_state: State,
    /// The wire log entries picked in the state diagram.
    pub wire_focus: Option<WireFocus>,
    /// The id the next wire log entry gets.
    next_wire_id: u64,
    /// The dialect chosen in the connection bar (locked while a session
    /// exists, so it is also the session's).
    pub dialect: DialectChoice,
    /// TPC-3: where the handshake is.
    pub tpc3_phase: Tpc3Phase,
    /// TPC-3: the wire log entries of each phase's way in (the request,
    /// the answer, Go), by the phase they led to.
    pub tpc3_entries: Vec<(Tpc3Phase, u64)>,
}

impl PlayerView {
    /// TPC-3's handshake instead of RTSP: other buttons, another diagram.
    pub fn tpc3(&self) -> bool {
        self.dialect == DialectChoice::Tpc3
    }

    /// Whether the RTSP state machine allows `command` in the current state.
    /// With "Let me send it anyway" on, the four buttons are always allowed
    /// (not in TPC-3, which has no server state machine to show).
    pub fn state_allows(&self, command: ClientCommand) -> bool {
        (self.anyway && !self.tpc3() && Forced::of(command).is_some())
            || self.machine_allows(command)
    }

    /// Whether the RTSP state machine (TPC-3: the handshake) itself allows
    /// `command` now.
    pub fn machine_allows(&self, command: ClientCommand) -> bool {
        if self.tpc3() {
            return match command {
                // Connect, Go, Stop.
                ClientCommand::Setup => self.state == State::Init,
                ClientCommand::Play => self.state == State::Ready,
                ClientCommand::Teardown => self.state != State::Init,
                ClientCommand::PlayFrom { .. } | ClientCommand::Pause | ClientCommand::Force(_) => {
                    false
                }
                ClientCommand::Shutdown => true,
            };
        }
        match command {
            ClientCommand::Setup => self.state == State::Init,
            ClientCommand::Play => self.state == State::Ready,
            ClientCommand::PlayFrom { .. } => {
                matches!(self.state, State::Ready | State::Playing)
            }
            ClientCommand::Pause => self.state == State::Playing,
            ClientCommand::Teardown => matches!(self.state, State::Ready | State::Playing),
            ClientCommand::Shutdown | ClientCommand::Force(_) => true,
        }
    }

    /// Whether the position bar is shown: a session on a stream with a
    /// known length (not live, not the lab's dialect).
    pub fn seek_bar_shown(&self) -> bool {
        self.state != State::Init && self.timeline.seekable()
    }

    /// The position the bar shows: a seek on its way or waiting, else the
    /// newest frame's.
    pub fn shown_position_ms(&self) -> Option<u64> {
        if let Some(millis) = self.pending_seek {
            return Some(millis);
        }
        if let Some(ClientCommand::PlayFrom { millis }) = self.in_flight {
            return Some(millis);
        }
        self.position_ms
    }

    /// Whether the button for `command` is enabled now.
    pub fn can_send(&self, command: ClientCommand) -> bool {
        if !self.state_allows(command) {
            return false;
        }
        match self.in_flight {
            None => true,
            // TEARDOWN stays available so that a request the server never
            // answers can be abandoned without waiting for the timeout.
            Some(pending) => {
                command == ClientCommand::Teardown && pending != ClientCommand::Teardown
            }
        }
    }

    /// Add an error line for the banner.
    pub fn report(&mut self, message: impl Into<String>) {
        let message = message.into();
        if self.errors.last() == Some(&message) {
            return;
        }
        self.errors.push(message);
        if self.errors.len() > MAX_ERRORS {
            let excess = self.errors.len() - MAX_ERRORS;
            self.errors.drain(..excess);
        }
    }

    /// Hide the banner.
    pub fn dismiss(&mut self) {
        self.errors.clear();
        self.notice = None;
        self.notice_of_request = false;
    }

    /// Forget the session (the engine went away, or a new server replaced
    /// the old one). The wire log stays: it is the record of what happened.
    pub fn reset_session(&mut self) {
        self.waiting_since = None;
        self.step_state = State::Init;
        if let Some(step) = self.steps.last_mut()
            && step.waiting()
        {
            step.unanswered = true;
        }
        self.state = State::Init;
        self.session = None;
        self.frame = None;
        self.stats = ClientStats::default();
        self.in_flight = None;
        self.auth_needed = None;
        self.timeline = Timeline::default();
        self.position_ms = None;
        self.pending_seek = None;
        self.tpc3_phase = Tpc3Phase::NotConnected;
    }

    /// Take one engine event into the view. Returns the frame to upload, if
    /// the event carried one (pixels do not belong in the view).
    pub fn apply(&mut self, event: ClientEvent) -> Option<DecodedFrame> {
        match event {
            ClientEvent::State { state, session } => {
                if state == State::Ready && self.state == State::Init {
                    // A new session: its own plots and records.
                    self.history.clear();
                }
                // A state change that answers our own request is the
                // "next successful action" that retires old errors.
                self.step_state = state;
                if self.in_flight.take().is_some() {
                    self.waiting_since = None;
                    let kept = self.notice_of_request.then(|| self.notice.take());
                    self.dismiss();
                    self.notice = kept.flatten();
                    self.auth_needed = None;
                }
                self.state = state;
                self.session = session;
                if state == State::Init {
                    self.pending_seek = None;
                    self.position_ms = None;
                }
            }
            ClientEvent::Wire(message) => {
                let mut entry = WireEntry::new(message.at, message.direction, &message.text);
                self.next_wire_id += 1;
                entry.id = self.next_wire_id;
                if entry.cseq.is_some() {
                    self.last_cseq = entry.cseq;
                }
                self.record_step(&entry);
                self.wire.push(entry);
                if self.wire.len() > MAX_WIRE_ENTRIES {
                    let excess = self.wire.len() - MAX_WIRE_ENTRIES;
                    self.wire.drain(..excess);
                }
            }
            ClientEvent::Frame(frame) => {
                if let Some(anchor) = &mut self.timeline.anchor
                    && anchor.rtptime.is_none()
                {
                    // The server did not say (no RTP-Info): the first
                    // frame after PLAY is where it started.
                    anchor.rtptime = Some(frame.rtp_timestamp);
                }
                // A frame from before the last seek has no position:
                // the bar stays where the seek put it.
                if let Some(position) = self.timeline.position_ms(frame.rtp_timestamp) {
                    self.position_ms = Some(position);
                }
                self.frame = Some(FrameInfo {
                    number: frame.number,
                    seq: frame.seq,
                    rtp_timestamp: frame.rtp_timestamp,
                    width: frame.width,
                    height: frame.height,
                });
                return Some(frame);
            }
            ClientEvent::Stats(stats) => self.stats = stats,
            ClientEvent::Records(records) => self.history.push_records(records),
            ClientEvent::Timeline(timeline) => {
                if timeline.anchor.is_some() && timeline.anchor != self.timeline.anchor {
                    // PLAY answered: it starts there, until frames say more.
                    self.position_ms = timeline.anchor.map(|a| a.start_ms);
                }
                if !timeline.seekable() {
                    self.pending_seek = None;
                }
                self.timeline = timeline;
            }
            // Shown in the prompt that asks for them, not in the banner.
            ClientEvent::Error(error @ ClientError::Auth { had_credentials }) => {
                self.auth_needed = Some(AuthNeeded {
                    refused: had_credentials,
                    message: error.to_string(),
                    retry: self.in_flight.take(),
                });
            }
            ClientEvent::Error(error) => {
                self.in_flight = None;
                self.waiting_since = None;
                if matches!(
                    error,
                    ClientError::NoReply { .. } | ClientError::Ignored { .. }
                ) && let Some(step) = self.steps.last_mut()
                    && step.waiting()
                {
                    step.unanswered = true;
                }
                self.report(error.to_string());
            }
            ClientEvent::StreamEnded => {
                self.notice_of_request = false;
                self.notice = Some(
                    "No frames for a while: the stream seems to have ended \
                     (the lab's server just stops at the end of the file)."
                        .to_owned(),
                );
            }
            ClientEvent::Notice(notice) => {
                self.notice_of_request = self.in_flight.is_some();
                self.notice = Some(notice);
            }
            ClientEvent::Tpc3(phase) => {
                if phase == Tpc3Phase::NameSent {
                    self.tpc3_entries.clear();
                }
                // The message that moved it (the request, the answer, Go,
                // or -1), if one came since the last phase.
                let newest = self.wire.last().map(|e| e.id);
                let recorded = self.tpc3_entries.last().map(|(_, id)| *id);
                if let Some(id) = newest.filter(|id| Some(*id) > recorded) {
                    self.tpc3_entries.push((phase, id));
                }
                self.tpc3_phase = phase;
            }
            ClientEvent::Stopped => self.reset_session(),
        }
        None
    }
}

impl PlayerView {
    /// Follow SETUP, PLAY, PAUSE and TEARDOWN through the wire log: a
    /// request opens a step, the reply with its CSeq closes it, and the
    /// state machine moves by its table when the reply is 200.
    fn record_step(&mut self, entry: &WireEntry) {
        let first_line = entry.text.lines().next().unwrap_or("");
        match entry.direction {
            Direction::Sent => {
                let method = Method::parse(first_line.split(' ').next().unwrap_or(""));
                if !matches!(
                    method,
                    Method::Setup | Method::Play | Method::Pause | Method::Teardown
                ) {
                    return;
                }
                if let Some(step) = self.steps.last_mut()
                    && step.waiting()
                {
                    // TEARDOWN may leave a request behind unanswered.
                    step.unanswered = true;
                }
                self.steps.push(Step {
                    method,
                    from: self.step_state,
                    to: self.step_state,
                    cseq: entry.cseq,
                    request: entry.id,
                    reply: None,
                    status: None,
                    unanswered: false,
                });
                if self.steps.len() > MAX_STEPS {
                    self.steps.remove(0);
                }
            }
            Direction::Received => {
                let Some(step) = self.steps.last_mut() else {
                    return;
                };
                if !step.waiting() || (step.cseq.is_some() && entry.cseq != step.cseq) {
                    return;
                }
                let Some(status) = first_line.split_once(' ').map(|(_, s)| s.trim()) else {
                    return;
                };
                step.reply = Some(entry.id);
                step.status = Some(status.to_owned());
                if status.starts_with("200") {
                    step.to = transition(step.from, &step.method).unwrap_or(step.from);
                    self.step_state = step.to;
                }
            }
        }
    }

    /// The newest step that went `from` -> `to` by `method`.
    pub fn last_step(&self, method: &Method, from: State, to: State) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| &s.method == method && s.from == from && s.to == to && s.moved())
    }
}

impl WireEntry {
    pub fn new(at: SystemTime, direction: Direction, raw: &str) -> Self {
        let text = raw.replace("\r\n", "\n").trim_end().to_owned();
        let cseq = parse_cseq(&text);
        WireEntry {
            id: 0,
            at,
            direction,
            text,
            cseq,
        }
    }
}

/// The CSeq header's value; header names are case-insensitive in RTSP.
fn parse_cseq(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("cseq") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::client::WireMessage;

    fn state(state: State) -> ClientEvent {
        ClientEvent::State {
            state,
            session: Some("123456".into()),
        }
    }

    #[test]
    fn a_notice_from_the_request_outlives_its_success_an_older_one_does_not() {
        let mut view = PlayerView {
            in_flight: Some(ClientCommand::Setup),
            ..PlayerView::default()
        };
        let _ = view.apply(ClientEvent::Notice("RTP port 5008 is in use".into()));
        let _ = view.apply(state(State::Ready));
        assert_eq!(view.notice.as_deref(), Some("RTP port 5008 is in use"));
        // The next request that succeeds retires it.
        view.in_flight = Some(ClientCommand::Play);
        let _ = view.apply(state(State::Playing));
        assert_eq!(view.notice, None);
    }

    #[test]
    fn buttons_follow_the_state_machine() {
        let mut view = PlayerView::default();
        let enabled = |v: &PlayerView| {
            [
                ClientCommand::Setup,
                ClientCommand::Play,
                ClientCommand::Pause,
                ClientCommand::Teardown,
            ]
            .map(|c| v.can_send(c))
        };
        assert_eq!(enabled(&view), [true, false, false, false]);
        let _ = view.apply(state(State::Ready));
        assert_eq!(enabled(&view), [false, true, false, true]);
        let _ = view.apply(state(State::Playing));
        assert_eq!(enabled(&view), [false, false, true, true]);
    }

    #[test]
    fn in_flight_request_disables_all_but_teardown() {
        let mut view = PlayerView::default();
        let _ = view.apply(state(State::Ready));
        view.in_flight = Some(ClientCommand::Play);
        assert!(!view.can_send(ClientCommand::Play));
        assert!(view.can_send(ClientCommand::Teardown));
        view.in_flight = Some(ClientCommand::Teardown);
        assert!(!view.can_send(ClientCommand::Teardown));
    }

    #[test]
    fn errors_stay_until_a_request_succeeds() {
        let mut view = PlayerView {
            in_flight: Some(ClientCommand::Setup),
            ..PlayerView::default()
        };
        let _ = view.apply(ClientEvent::Error(ClientError::ServerGone));
        assert_eq!(view.errors.len(), 1);
        assert_eq!(view.in_flight, None);
        // An unrequested state change (the engine noticing the loss) keeps it.
        let _ = view.apply(state(State::Init));
        assert_eq!(view.errors.len(), 1);
        view.in_flight = Some(ClientCommand::Setup);
        let _ = view.apply(state(State::Ready));
        assert!(view.errors.is_empty());
    }

    #[test]
    fn a_401_asks_for_credentials_until_setup_succeeds() {
        let mut view = PlayerView {
            in_flight: Some(ClientCommand::Setup),
            ..PlayerView::default()
        };
        let ask = ClientError::Auth {
            had_credentials: false,
        };
        let _ = view.apply(ClientEvent::Error(ask.clone()));
        assert_eq!(
            view.auth_needed,
            Some(AuthNeeded {
                refused: false,
                message: ask.to_string(),
                retry: Some(ClientCommand::Setup),
            })
        );
        assert!(view.errors.is_empty(), "the prompt says it");
        assert!(view.can_send(ClientCommand::Setup));
        view.in_flight = Some(ClientCommand::Setup);
        let _ = view.apply(ClientEvent::Error(ClientError::Auth {
            had_credentials: true,
        }));
        assert_eq!(view.auth_needed.as_ref().map(|a| a.refused), Some(true));
        view.in_flight = Some(ClientCommand::Setup);
        let _ = view.apply(state(State::Ready));
        assert_eq!(view.auth_needed, None);
    }

    #[test]
    fn cseq_is_read_from_either_direction() {
        let mut view = PlayerView::default();
        for (direction, text) in [
            (Direction::Sent, "SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\n"),
            (Direction::Received, "RTSP/1.0 200 OK\r\ncseq:7\r\n\r\n"),
            (Direction::Received, "garbage without headers"),
        ] {
            let _ = view.apply(ClientEvent::Wire(WireMessage {
                at: SystemTime::UNIX_EPOCH,
                direction,
                text: text.into(),
            }));
        }
        assert_eq!(view.last_cseq, Some(7));
        assert_eq!(view.wire[1].text, "RTSP/1.0 200 OK\ncseq:7");
    }

    fn timeline(start_ms: u64, rtptime: Option<u32>) -> ClientEvent {
        ClientEvent::Timeline(Timeline {
            length_ms: Some(10_000),
            anchor: Some(crate::net::client::Anchor { start_ms, rtptime }),
            ..Timeline::default()
        })
    }

    fn frame_at(rtp_timestamp: u32) -> ClientEvent {
        ClientEvent::Frame(DecodedFrame {
            width: 1,
            height: 1,
            rgba: std::sync::Arc::new(vec![0; 4]),
            seq: 1,
            rtp_timestamp,
            number: 1,
            jpeg: std::sync::Arc::default(),
        })
    }

    #[test]
    fn position_follows_frames_and_stays_put_for_frames_from_before_a_seek() {
        let mut view = PlayerView::default();
        let _ = view.apply(state(State::Playing));
        let _ = view.apply(timeline(0, Some(1_000)));
        assert!(view.seek_bar_shown());
        assert_eq!(view.position_ms, Some(0));
        let _ = view.apply(frame_at(1_000 + 180_000));
        assert_eq!(view.position_ms, Some(2_000));
        // Seek to 8 s: the bar shows the target until the reply...
        view.in_flight = Some(ClientCommand::PlayFrom { millis: 8_000 });
        assert_eq!(view.shown_position_ms(), Some(8_000));
        let _ = view.apply(timeline(8_000, Some(1_000 + 270_000)));
        let _ = view.apply(state(State::Playing));
        assert_eq!(view.shown_position_ms(), Some(8_000));
        // ...a frame sent before the seek does not move it back...
        let _ = view.apply(frame_at(1_000 + 189_000));
        assert_eq!(view.shown_position_ms(), Some(8_000));
        // ...and frames from the new place move it on.
        let _ = view.apply(frame_at(1_000 + 270_000 + 45_000));
        assert_eq!(view.shown_position_ms(), Some(8_500));
    }

    #[test]
    fn without_rtp_info_the_first_frame_after_play_is_the_start() {
        let mut view = PlayerView::default();
        let _ = view.apply(state(State::Playing));
        let _ = view.apply(timeline(3_000, None));
        let _ = view.apply(frame_at(777));
        assert_eq!(view.position_ms, Some(3_000));
        let _ = view.apply(frame_at(777 + 9_000));
        assert_eq!(view.position_ms, Some(3_100));
    }

    #[test]
    fn no_position_bar_for_live_streams_or_without_a_session() {
        let mut view = PlayerView::default();
        let _ = view.apply(timeline(0, Some(0)));
        assert!(!view.seek_bar_shown(), "INIT");
        let _ = view.apply(state(State::Ready));
        assert!(view.seek_bar_shown());
        view.pending_seek = Some(4_000);
        let _ = view.apply(ClientEvent::Timeline(Timeline::default()));
        assert!(!view.seek_bar_shown(), "no length");
        assert_eq!(view.pending_seek, None);
    }
}
