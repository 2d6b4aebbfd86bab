//! Handshake deadlines that do not run while the reader itself is held up.
//!
//! `handshake-timeout` cuts off peers that are slow to finish the TLS and Frame Streams
//! handshakes. A reader held back by its own output (queue policy `block` with the queue
//! full, or every pool buffer with the writer) answers nobody in the meantime, so a peer
//! that sent READY at once could miss its deadline through no fault of its own. The
//! readers tell [`Stall`] each round whether they were held up; while they are, no deadline
//! expires, and when the hold-up ends every pending deadline moves back by its length.
//!
//! Pure bookkeeping over [`Instant`]s, tested without sockets.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Handshake deadlines in accept order, each with its connection's slot. All share one
/// timeout, so the front is the earliest; an entry whose slot was reused since no longer
/// matches that slot's deadline and is skipped by the readers.
pub type Deadlines = VecDeque<(Instant, usize)>;

/// Whether the reader is held up by its output, and since when.
#[derive(Debug, Default)]
pub struct Stall {
    since: Option<Instant>,
}

impl Stall {
    /// One event-loop round: `held` says whether the reader was held up during the round
    /// that began at `round_start`. Returns how far to move the deadlines back when a
    /// hold-up has just ended.
    pub fn round(&mut self, held: bool, round_start: Instant, now: Instant) -> Option<Duration> {
        if held {
            self.since.get_or_insert(round_start);
            None
        } else {
            self.since.take().map(|t| now.saturating_duration_since(t))
        }
    }

    /// True while a hold-up lasts: no deadline may expire.
    pub fn held(&self) -> bool {
        self.since.is_some()
    }
}

/// Moves every pending deadline back by `by`. `moved(slot, old, new)` is called for each
/// entry: the connection in `slot` takes `new` if its deadline is `old` (a reused slot's
/// newer deadline is left to its own entry). The entries keep their order: all move alike.
pub fn postpone(
    deadlines: &mut Deadlines,
    by: Duration,
    mut moved: impl FnMut(usize, Instant, Instant),
) {
    for (at, slot) in deadlines.iter_mut() {
        let old = *at;
        *at = old + by;
        moved(*slot, old, *at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_up_postpones_by_its_length_from_the_round_it_began() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Stall::default();
        assert_eq!(s.round(false, t0, t0 + ms(1)), None);
        assert!(!s.held());
        // Held during the round that began at t0 + 1 ms, still held two rounds later.
        assert_eq!(s.round(true, t0 + ms(1), t0 + ms(5)), None);
        assert!(s.held());
        assert_eq!(s.round(true, t0 + ms(5), t0 + ms(900)), None);
        assert!(s.held());
        assert_eq!(s.round(false, t0 + ms(900), t0 + ms(1001)), Some(ms(1000)));
        assert!(!s.held());
        assert_eq!(s.round(false, t0 + ms(1001), t0 + ms(1002)), None);
    }

    #[test]
    fn postpone_moves_matching_connections_and_keeps_stale_entries_stale() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Slot 0: its entry is stale (the slot was reused, now with deadline t0 + 7 s).
        let mut conns = [Some(t0 + s(7)), Some(t0 + s(5)), None];
        let mut d: Deadlines = VecDeque::from([
            (t0 + s(3), 0),
            (t0 + s(5), 1),
            (t0 + s(6), 2),
            (t0 + s(7), 0),
        ]);
        postpone(&mut d, s(10), |slot, old, new| {
            if let Some(c) = conns.get_mut(slot).filter(|c| **c == Some(old)) {
                *c = Some(new);
            }
        });
        assert_eq!(
            d,
            VecDeque::from([
                (t0 + s(13), 0),
                (t0 + s(15), 1),
                (t0 + s(16), 2),
                (t0 + s(17), 0)
            ])
        );
        assert_eq!(conns, [Some(t0 + s(17)), Some(t0 + s(15)), None]);
    }
}
