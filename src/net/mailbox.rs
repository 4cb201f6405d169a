//! A thread's inbox that sleeps until a message or a deadline without
//! spinning first: the fan-out sender's command channel.
//!
//! The fan-out thread waits for its next deadline thousands of times a
//! second. crossbeam's channels (and std's, which share their code) spin
//! and then call `sched_yield` several times before each sleep; profiled
//! at 1200 sessions that was 4-5% of the sender's CPU, spent on no work.
//! Here a wait is one futex sleep (a mutex and a condition variable), as
//! precise as the kernel's timer, and sending costs a lock and a wake-up.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Why [`Inbox::recv_deadline`] returned without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// The deadline passed.
    Timeout,
    /// Every [`Mailbox`] is gone and the queue is empty.
    Disconnected,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    inbox: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side; cloned freely. The inbox learns it is disconnected
/// when the last clone is dropped.
pub struct Mailbox<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side, owned by one thread.
pub struct Inbox<T> {
    shared: Arc<Shared<T>>,
}

/// A connected mailbox and inbox.
pub fn mailbox<T>() -> (Mailbox<T>, Inbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            inbox: true,
        }),
        ready: Condvar::new(),
    });
    (
        Mailbox {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl<T> Mailbox<T> {
    /// Queues `message`; Err gives it back if the inbox is gone.
    pub fn send(&self, message: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        if !state.inbox {
            return Err(message);
        }
        state.queue.push_back(message);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Mailbox {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        // What was queued goes now (a session's sockets among it), after
        // the lock: a message's own drop may send.
        let queued = {
            let mut state = self.shared.lock();
            state.inbox = false;
            std::mem::take(&mut state.queue)
        };
        drop(queued);
    }
}

impl<T> Inbox<T> {
    /// The next message, waiting until `deadline` (None: for ever).
    pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<T, Empty> {
        let mut state = self.shared.lock();
        loop {
            if let Some(m) = state.queue.pop_front() {
                return Ok(m);
            }
            if state.senders == 0 {
                return Err(Empty::Disconnected);
            }
            state = match deadline {
                None => self
                    .shared
                    .ready
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if d <= now {
                        return Err(Empty::Timeout);
                    }
                    self.shared
                        .ready
                        .wait_timeout(state, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn messages_come_in_order_then_the_deadline() {
        let (tx, rx) = mailbox();
        tx.send(1).unwrap();
        tx.clone().send(2).unwrap();
        assert_eq!(rx.recv_deadline(None), Ok(1));
        assert_eq!(rx.recv_deadline(Some(Instant::now())), Ok(2));
        let deadline = Instant::now() + Duration::from_millis(5);
        assert_eq!(rx.recv_deadline(Some(deadline)), Err(Empty::Timeout));
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn the_last_mailbox_dropped_disconnects_after_the_queue_is_read() {
        let (tx, rx) = mailbox();
        let tx2 = tx.clone();
        tx.send("a").unwrap();
        drop(tx);
        let waiter = std::thread::spawn(move || {
            let first = rx.recv_deadline(None);
            let second = rx.recv_deadline(None);
            (first, second)
        });
        // The waiter may be asleep already: dropping the last mailbox
        // wakes it.
        drop(tx2);
        assert_eq!(waiter.join().unwrap(), (Ok("a"), Err(Empty::Disconnected)));
    }

    #[test]
    fn a_message_wakes_a_waiting_inbox() {
        let (tx, rx) = mailbox();
        let waiter = std::thread::spawn(move || rx.recv_deadline(None));
        tx.send(7).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(7));
    }

    #[test]
    fn sending_to_a_dropped_inbox_gives_the_message_back() {
        let (tx, rx) = mailbox();
        drop(rx);
        assert_eq!(tx.send(3), Err(3));
    }
}
