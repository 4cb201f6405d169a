//! Authentication inside the conversation: answering a 401 once with the
//! credentials the client has, keeping a challenge it could not answer for
//! credentials the owner gives later, and writing Authorization headers
//! while the transcript shows them hidden.

use std::time::Instant;

use super::{ClientConnection, ClientError, ClientHost, Credentials, Event};
use crate::protocol::auth;
use crate::protocol::rtsp::{Method, Request, Response};

impl ClientConnection {
    /// New credentials from the owner, after a 401 it was told about:
    /// kept for every later request, and the request of the session the
    /// server refused goes again with them, on the same connection and in
    /// the same session. A second refusal is [`ClientError::Auth`] with
    /// `had_credentials`, and new credentials may follow it again.
    pub fn credentials(
        &mut self,
        now: Instant,
        credentials: Credentials,
        host: &mut impl ClientHost,
    ) {
        self.config.user = Some(credentials.user);
        self.config.password = Some(credentials.password);
        if let Some(challenge) = self.unanswered.take() {
            self.auth = Some(challenge);
            self.nonce_count = 0;
        }
        let Some(sent) = self.refused.take() else {
            return;
        };
        if let Some(s) = self.session.as_mut()
            && matches!(s.pending(), Some(Method::GetParameter | Method::Options))
        {
            // A keep-alive in flight must not hold up the retry.
            s.abandon_pending();
        }
        if self.session.is_none() || self.pending().is_some() {
            return;
        }
        self.auth_retried = true;
        self.send_request(now, sent.method, sent.url, sent.range, host);
    }

    /// Add Authorization when a challenge was answered before. Returns
    /// the bytes to show in the transcript, with the credential hidden.
    pub(super) fn authorize(
        &mut self,
        request: &mut Request,
        url: &str,
        host: &mut impl ClientHost,
    ) -> Option<Vec<u8>> {
        let challenge = self.auth.as_ref()?;
        self.nonce_count += 1;
        let cnonce = format!("{:08x}", host.random());
        let value = auth::authorization(
            challenge,
            &auth::Answer {
                user: self.config.user.as_deref().unwrap_or(""),
                password: self.config.password.as_deref().unwrap_or(""),
                method: request.method.as_str(),
                uri: url,
                nonce_count: self.nonce_count,
                cnonce: &cnonce,
            },
        );
        let scheme = value.split(' ').next().unwrap_or("").to_string();
        let mut shown = request.clone();
        shown
            .headers
            .push("Authorization", format!("{scheme} (hidden)"));
        request.headers.push("Authorization", value);
        Some(shown.to_bytes())
    }

    /// Answer a 401 once with the credentials we have; false if we cannot.
    pub(super) fn answer_challenge(
        &mut self,
        now: Instant,
        resp: &Response,
        host: &mut impl ClientHost,
    ) -> bool {
        if self.config.user.is_none() || self.auth_retried {
            // Kept for the credentials the owner may give later.
            if let Ok(c) = auth::choose(&resp.headers.get_all("WWW-Authenticate")) {
                self.unanswered = Some(c);
            }
            return false;
        }
        let challenge = match auth::choose(&resp.headers.get_all("WWW-Authenticate")) {
            Ok(c) => c,
            Err(e) => {
                host.event(Event::Error(ClientError::Other(e.to_string())));
                return false;
            }
        };
        self.auth = Some(challenge);
        self.nonce_count = 0;
        self.auth_retried = true;
        let Some(sent) = self.last_request.clone() else {
            return false;
        };
        self.send_request(now, sent.method, sent.url, sent.range, host);
        true
    }
}
