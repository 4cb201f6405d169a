//! The pre-buffer's rule, sans I/O: after SETUP, fetch N frames ahead
//! (PLAY, then PAUSE once N whole frames are held) so that the user's PLAY
//! starts from the buffer at once (the lab's "Client-Side Caching"). The
//! engine tells it what happened and does what it returns.

use crate::protocol::State;
use crate::protocol::client::ClientCommand;

/// Where the pre-buffer is in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Not asked for, or not started yet.
    #[default]
    Idle,
    /// PLAY sent after SETUP; frames are collected.
    Fetching,
    /// Enough frames held and PAUSE sent: the user's PLAY starts from them.
    Held,
    /// The user has played: nothing more to do until the next SETUP.
    Done,
}

/// What the engine must do for the pre-buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hold the playout buffer and send PLAY.
    HoldAndPlay,
    /// Send PAUSE: enough is held.
    Pause,
}

/// Fetches `frames` frames ahead after each SETUP (0: never).
#[derive(Debug, Clone, Default)]
pub struct Prebuffer {
    frames: u32,
    phase: Phase,
}

impl Prebuffer {
    pub fn new(frames: u32) -> Self {
        Prebuffer {
            frames,
            phase: Phase::Idle,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// SETUP succeeded (INIT -> READY): a new session starts fetching.
    pub fn setup_done(&mut self, state: State) -> Option<Action> {
        self.phase = Phase::Idle;
        if self.frames == 0 || state != State::Ready {
            return None;
        }
        self.phase = Phase::Fetching;
        Some(Action::HoldAndPlay)
    }

    /// The held buffer has `n` whole frames; the session is in `state`.
    pub fn held(&mut self, n: usize, state: State) -> Option<Action> {
        if self.phase == Phase::Fetching && n >= self.frames as usize && state == State::Playing {
            self.phase = Phase::Held;
            return Some(Action::Pause);
        }
        None
    }

    /// The user asked for `command`: the pre-buffer steps aside.
    pub fn user(&mut self, command: ClientCommand) {
        match command {
            ClientCommand::Play if self.phase != Phase::Idle => self.phase = Phase::Done,
            ClientCommand::PlayFrom { .. } => self.phase = Phase::Done,
            ClientCommand::Pause if self.phase == Phase::Fetching => self.phase = Phase::Done,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_then_pause_once_enough_is_held_then_out_of_the_way() {
        let mut p = Prebuffer::new(10);
        assert_eq!(p.setup_done(State::Ready), Some(Action::HoldAndPlay));
        assert_eq!(p.held(9, State::Playing), None);
        assert_eq!(p.held(10, State::Ready), None, "PLAY not answered yet");
        assert_eq!(p.held(10, State::Playing), Some(Action::Pause));
        assert_eq!(p.held(11, State::Playing), None, "PAUSE once");
        p.user(ClientCommand::Play);
        assert_eq!(p.phase(), Phase::Done);
        // The next SETUP fetches again.
        assert_eq!(p.setup_done(State::Ready), Some(Action::HoldAndPlay));
    }

    #[test]
    fn off_or_cancelled_it_does_nothing() {
        let mut off = Prebuffer::new(0);
        assert_eq!(off.setup_done(State::Ready), None);
        let mut p = Prebuffer::new(5);
        p.setup_done(State::Ready);
        p.user(ClientCommand::Pause);
        assert_eq!(p.held(5, State::Playing), None, "the user paused first");
    }
}
