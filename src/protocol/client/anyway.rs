//! Requests sent anyway: the window's "Let me send it anyway" sends SETUP,
//! PLAY, PAUSE or TEARDOWN in any state so that a student sees what a server
//! does with a request its state machine does not expect (ours answers 455
//! Method Not Valid in This State; the lab's answers nothing).
//!
//! The client's own state moves only as the state machine allows, whatever
//! the reply: a refused request changes nothing, and so does one a lenient
//! server accepts. In INIT there is no session to send in, so a scratch one
//! carries the request and is dropped with its reply.

use std::time::Instant;

use super::{ClientConnection, ClientError, ClientHost, DialectChoice, Event, Forced};
use crate::protocol::State;
use crate::protocol::rtsp::{Dialect, Method};
use crate::protocol::session::{ClientSession, client_allows, why_not_allowed};

/// A request sent anyway, waiting for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Anyway {
    pub method: Forced,
    /// The client's state when it went.
    pub state: State,
    pub dialect: Dialect,
}

impl Anyway {
    fn method_name(&self) -> String {
        self.method.command().method().to_string()
    }

    fn why(&self) -> &'static str {
        why_not_allowed(self.state, &self.method.command().method(), self.dialect)
            .unwrap_or("the state machine does not allow it")
    }
}

impl ClientConnection {
    /// Send `forced` whatever the state; where the state allows it, this is
    /// the plain command.
    pub(super) fn force(&mut self, now: Instant, forced: Forced, host: &mut impl ClientHost) {
        let method = forced.command().method();
        let allowed = match &self.session {
            Some(s) => client_allows(s.state(), &method, s.dialect()),
            None => method == Method::Setup,
        };
        if allowed {
            return self.command(now, forced.command(), host);
        }
        if let Some(s) = self.session.as_mut()
            && matches!(s.pending(), Some(Method::GetParameter | Method::Options))
            && self.step.is_none()
        {
            // A keep-alive in flight must not hold up what the user asked.
            s.abandon_pending();
        }
        if let Some(pending) = self.pending() {
            let e = format!("still waiting for the reply to {pending}: one request at a time");
            return host.event(Event::Error(ClientError::Other(e)));
        }
        if !self.ensure_connected(host) {
            return;
        }
        let dialect = self.dialect.unwrap_or(match self.config.dialect {
            DialectChoice::Lab => Dialect::Lab,
            DialectChoice::Standard | DialectChoice::Auto | DialectChoice::Tpc3 => {
                Dialect::Standard
            }
        });
        if self.session.is_none() {
            self.dialect = Some(dialect);
            let port = self.media.map_or(self.config.rtp_port, |(_, p)| p);
            self.session = Some(ClientSession::new(self.request_url(), port, dialect));
            self.scratch = true;
        }
        // What the user asks now replaces a request refused for want of
        // credentials.
        self.refused = None;
        let url = match (&method, &self.track_url) {
            (Method::Setup, Some(track)) if self.standard() => track.clone(),
            _ => self.request_url(),
        };
        self.anyway = Some(Anyway {
            method: forced,
            state: self.state(),
            dialect,
        });
        self.send(now, method, url, None, true, host);
    }

    /// The reply to a request sent anyway arrived: say what it means. A
    /// refusal is returned as the error to report in place of the plain
    /// status; an acceptance is told as a notice.
    pub(super) fn anyway_answered(
        &mut self,
        status: u16,
        reason: &str,
        host: &mut impl ClientHost,
    ) -> Option<ClientError> {
        let anyway = self.anyway.take()?;
        if status == 200 {
            host.event(Event::Notice(format!(
                "the server accepted {method} in {state} (200 OK), though {why}; \
                 the client stays in {now}",
                method = anyway.method_name(),
                state = anyway.state,
                why = anyway.why(),
                now = self.state(),
            )));
            return None;
        }
        Some(ClientError::NotValidHere {
            method: anyway.method_name(),
            state: anyway.state,
            code: status,
            reason: reason.to_owned(),
            why: anyway.why(),
        })
    }

    /// The request sent anyway got no reply in time: the error that says why.
    pub(super) fn anyway_unanswered(&mut self, seconds: u64) -> Option<ClientError> {
        let anyway = self.anyway.take()?;
        Some(ClientError::Ignored {
            method: anyway.method_name(),
            state: anyway.state,
            seconds,
            why: anyway.why(),
        })
    }

    /// Drop the scratch session a request sent anyway in INIT used, once
    /// nothing is waiting on it.
    pub(super) fn end_scratch(&mut self) {
        if !self.scratch || self.pending().is_some() {
            return;
        }
        self.scratch = false;
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.state() == State::Init && s.session().is_none())
        {
            self.session = None;
        }
    }
}
