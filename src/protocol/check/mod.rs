//! `streamlab check`: Streamlab as the reference on the other side of the
//! wire, telling a student which byte and bit of their lab server or
//! client is wrong, in the handout's own words.
//!
//! - [`checks`]: the check ids, the handout text behind each, the report;
//! - [`packets`]: every RTP packet held against the handout, field by field;
//! - [`server`]: `check server`, a lab client as a state machine;
//! - [`client`]: `check client`, the notes on each request a client sends
//!   (and TPC-3's server side, which Streamlab's server does not speak).
//!
//! All of it is sans-IO: the runners in `net::check` move the bytes.

pub mod checks;
pub mod client;
pub mod packets;
pub mod server;

use std::time::Instant;

pub use checks::{CheckDialect, CheckId, CheckResult, Report};

/// One check's word on one message, for the wire log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: CheckId,
    pub ok: bool,
    pub text: String,
}

impl Note {
    pub fn pass(id: CheckId, text: impl Into<String>) -> Self {
        Note {
            id,
            ok: true,
            text: text.into(),
        }
    }

    pub fn fail(id: CheckId, text: impl Into<String>) -> Self {
        Note {
            id,
            ok: false,
            text: text.into(),
        }
    }
}

/// A message on the control connection, with the checks' notes on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEntry {
    pub at: Instant,
    /// Sent by Streamlab (true) or by the program checked (false).
    pub sent: bool,
    pub text: String,
    pub notes: Vec<Note>,
}
