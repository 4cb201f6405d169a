//! Every rule of the client that depends on time: how long a reply may take
//! (and auto's shorter wait for OPTIONS before speaking the lab's dialect),
//! the keep-alive, UDP that brings nothing moving RTP to TCP, media that
//! never comes, and a stream that stops.

use std::time::{Duration, Instant};

use super::{
    ClientConnection, ClientError, ClientHost, DialectChoice, Event, MediaRoute, Step,
    TCP_TRANSPORT, TransportChoice,
};
use crate::protocol::State;
use crate::protocol::rtsp::{Dialect, Method};
use crate::protocol::server::LAB_QUIET;
use crate::protocol::session::ClientSession;

/// How long to wait for a reply before telling the user.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long auto waits for an answer to OPTIONS before taking the server
/// for a lab one (the lab's reference server answers nothing to it).
pub const AUTO_OPTIONS_WAIT: Duration = Duration::from_secs(1);
/// How long PLAY over UDP may bring nothing before RTP moves to TCP.
pub const UDP_FALLBACK_AFTER: Duration = Duration::from_secs(3);
/// How long PLAY may go without any RTP before the user hears about it.
pub const NO_MEDIA_AFTER: Duration = Duration::from_secs(5);
/// Silence after frames that counts as the end of the stream.
pub const ENDED_AFTER: Duration = Duration::from_secs(2);

impl ClientConnection {
    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(t) = &self.tpc3 {
            return t.poll_timeout();
        }
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |d| d.min(t)));
        if self.decoder.pending() > 0
            && let Some(t) = self.last_bytes
        {
            at(t + LAB_QUIET);
        }
        if let Some(t) = self.sent_at {
            at(t + self.reply_wait());
        }
        if let Some(t) = self.keep_alive_due() {
            at(t);
        }
        if self.watching_media() {
            match (self.last_packet, self.play_sent) {
                (None, Some(p)) if self.may_switch_to_tcp() => at(p + UDP_FALLBACK_AFTER),
                (None, Some(p)) if !self.no_media_told => at(p + NO_MEDIA_AFTER),
                (Some(t), _) if !self.ended_told => at(t + ENDED_AFTER),
                _ => {}
            }
        }
        d
    }

    /// Time passed: replies overdue, keep-alive, media that does not come.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut impl ClientHost) {
        if let Some(t) = self.tpc3.as_mut() {
            return t.handle_timeout(now, host);
        }
        if self.decoder.pending() > 0 && self.last_bytes.is_some_and(|t| now >= t + LAB_QUIET) {
            // Once per arrival: what the quiet read leaves waits for more
            // bytes, not for another deadline.
            self.last_bytes = None;
            self.read_messages(now, true, host);
        }
        self.check_reply_timeout(now, host);
        if self.keep_alive_due().is_some_and(|t| now >= t) {
            let method = if self.get_parameter {
                Method::GetParameter
            } else {
                Method::Options
            };
            let url = self.base_url.clone();
            self.send_request(now, method, url, None, host);
        }
        self.check_media(now, host);
    }

    /// How long the request in flight may go unanswered.
    pub(super) fn reply_wait(&self) -> Duration {
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            AUTO_OPTIONS_WAIT
        } else {
            REPLY_TIMEOUT
        }
    }

    /// The lab's server answered nothing to OPTIONS: start again in its
    /// dialect on a fresh connection (its worker may not survive OPTIONS).
    pub(super) fn fall_back_to_lab(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.step = None;
        self.session = None;
        self.sent_at = None;
        self.connected = false;
        host.disconnect();
        host.event(Event::Notice(
            "no answer to OPTIONS within a second: speaking the lab's RTSP".into(),
        ));
        self.start_setup(now, Dialect::Lab, host);
    }

    /// UDP may switch to TCP: standard RTSP, UDP asked for, not yet tried.
    pub(super) fn may_switch_to_tcp(&self) -> bool {
        self.standard()
            && !self.switched
            && self.config.transport == TransportChoice::Udp
            && matches!(self.media, Some((MediaRoute::Udp { .. }, _)))
            && self.track_url.is_some()
    }

    /// Whether the media rules apply now: while playing, and not while a
    /// request is out or an operation runs, whose reply may change what
    /// they look at. `poll_timeout` asks the same, so that it never names
    /// a deadline `check_media` would not act on (the engine sleeps until
    /// that deadline: one in the past would spin it).
    fn watching_media(&self) -> bool {
        self.state() == State::Playing && self.step.is_none() && self.pending().is_none()
    }

    pub(super) fn check_media(&mut self, now: Instant, host: &mut impl ClientHost) {
        if !self.watching_media() {
            return;
        }
        match (self.last_packet, self.play_sent) {
            (None, Some(p)) if self.may_switch_to_tcp() && now >= p + UDP_FALLBACK_AFTER => {
                self.switch_to_tcp(now, host)
            }
            (None, Some(p)) if !self.no_media_told && now >= p + NO_MEDIA_AFTER => {
                self.no_media_told = true;
                let port = match self.media {
                    Some((MediaRoute::Udp { .. }, port)) => port,
                    _ => 0,
                };
                host.event(Event::Error(ClientError::NoMedia {
                    seconds: NO_MEDIA_AFTER.as_secs(),
                    port,
                }));
            }
            (Some(t), _) if !self.ended_told && now >= t + ENDED_AFTER => {
                self.ended_told = true;
                host.event(Event::StreamEnded);
            }
            (Some(t), _) if now < t + ENDED_AFTER => self.ended_told = false,
            _ => {}
        }
    }

    /// No RTP over UDP since PLAY: as ffmpeg does, end the session and
    /// set it up again with RTP inside the RTSP connection.
    pub(super) fn switch_to_tcp(&mut self, now: Instant, host: &mut impl ClientHost) {
        self.switched = true;
        let port = self.media.map_or(0, |(_, p)| p);
        host.event(Event::Notice(format!(
            "no RTP arrived on UDP port {port} within {} s of PLAY: switching to TCP (RTP inside the RTSP connection)",
            UDP_FALLBACK_AFTER.as_secs()
        )));
        self.step = Some(Step::SwitchTeardown);
        let url = self.base_url.clone();
        self.send_request(now, Method::Teardown, url, None, host);
    }

    pub(super) fn switch_setup(&mut self, now: Instant, host: &mut impl ClientHost) {
        let Some(track) = self.track_url.clone() else {
            self.step = None;
            return;
        };
        let Some(_) = self.open_media(MediaRoute::Interleaved, host) else {
            self.step = None;
            return;
        };
        self.info.rtp_channel = 0;
        self.info.rtcp_channel = Some(1);
        self.info.server_rtcp_port = None;
        host.stream_info(self.info);
        let mut session = ClientSession::new(self.base_url.clone(), 0, Dialect::Standard);
        session.set_transport(TCP_TRANSPORT);
        self.session = Some(session);
        self.step = Some(Step::SwitchSetup);
        self.send_request(now, Method::Setup, track, None, host);
    }

    pub(super) fn check_reply_timeout(&mut self, now: Instant, host: &mut impl ClientHost) {
        let Some(t) = self.sent_at else {
            return;
        };
        if now < t + self.reply_wait() {
            return;
        }
        if self.step == Some(Step::Options) && self.config.dialect == DialectChoice::Auto {
            return self.fall_back_to_lab(now, host);
        }
        self.sent_at = None;
        if let Some(m) = self.session.as_mut().and_then(|s| s.abandon_pending()) {
            let step = self.step.take();
            if step == Some(Step::SwitchTeardown) {
                self.session = None;
                return self.switch_setup(now, host);
            }
            if step.is_some() || (m == Method::Setup && self.state() == State::Init) {
                self.session = None;
                if self.state() == State::Init {
                    self.close_media(host);
                }
            }
            let error = self
                .anyway_unanswered(REPLY_TIMEOUT.as_secs())
                .unwrap_or_else(|| ClientError::NoReply {
                    method: m.to_string(),
                    seconds: REPLY_TIMEOUT.as_secs(),
                });
            self.end_scratch();
            host.event(Event::Error(error));
        }
    }

    /// When a standard session needs its keep-alive (half its timeout
    /// after the last request), if it does.
    pub(super) fn keep_alive_due(&self) -> Option<Instant> {
        if !self.standard() || self.step.is_some() {
            return None;
        }
        let session = self.session.as_ref()?;
        if session.session().is_none() || session.pending().is_some() {
            return None;
        }
        let every = Duration::from_secs(session.session_timeout().unwrap_or(60).max(2) / 2);
        Some(self.last_sent? + every)
    }
}
