//! How long a waiter has watched a claim that was not committed: the timer
//! behind reclaiming the claims of stalled or dead producers, shared by the
//! slot rings (broadcast logs and work queues).

use std::time::Duration;

use crate::sync::monotonic_ns;

/// How long a waiter has watched claimed but uncommitted records.
///
/// The timer starts when a waiter first finds the record at its position
/// claimed (the tail past it) but not committed, and remembers the tail it
/// saw then: every sequence below that tail was claimed before the timer
/// started, so once the timer passes the claim timeout all of them may be
/// reclaimed at once, one after the other, without a new timer each (a
/// burst of dead claims costs one timeout, not one per claim).
#[derive(Default)]
pub(crate) struct Stall {
    /// Looks at uncommitted records (wrapping): paces the tail reads.
    pub(crate) looks: u32,
    /// `CLOCK_MONOTONIC` ns the timer started; 0 when not running.
    pub(crate) since_ns: u64,
    /// The tail when the timer started: sequences below it are covered.
    pub(crate) covers: u64,
}

impl Stall {
    /// Counts one more look; returns the count.
    #[inline]
    pub(crate) fn look(&mut self) -> u32 {
        self.looks = self.looks.wrapping_add(1);
        self.looks
    }

    /// How long `seq` (claimed: `tail > seq`) has been waited on, starting
    /// the timer if it is not running for it.
    pub(crate) fn waited_ns(&mut self, seq: u64, tail: u64) -> u64 {
        debug_assert!(seq < tail, "callers time claimed sequences only");
        let now = monotonic_ns();
        if self.since_ns == 0 || seq >= self.covers {
            self.since_ns = now.max(1);
            self.covers = tail;
            return 0;
        }
        now.saturating_sub(self.since_ns)
    }

    /// The timer passed `timeout_ns` but the claim may not be reclaimed
    /// yet (its claimer lives: see `BroadcastView::may_reclaim`): winds
    /// the timer back so that it passes `timeout_ns` again in `recheck_ns`,
    /// which paces the liveness checks of a long stall.
    pub(crate) fn postpone(&mut self, timeout_ns: u64, recheck_ns: u64) {
        let due = monotonic_ns().saturating_add(recheck_ns);
        self.since_ns = due.saturating_sub(timeout_ns).max(1);
    }

    /// Stops the timer (nothing is claimed ahead).
    pub(crate) fn clear(&mut self) {
        self.since_ns = 0;
    }

    /// Time until the running timer reaches `timeout_ns`, if one runs.
    pub(crate) fn left(&self, timeout_ns: u64) -> Option<Duration> {
        (self.since_ns != 0).then(|| {
            let due = self.since_ns.saturating_add(timeout_ns);
            Duration::from_nanos(due.saturating_sub(monotonic_ns()))
        })
    }
}
