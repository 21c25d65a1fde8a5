//! Wait strategies for the blocking calls of every ring.
//!
//! A blocking call loops over its non-blocking form and, each time it finds
//! the ring full or empty, asks a [`Waiter`] to wait once. The strategy
//! trades latency for CPU:
//!
//! | strategy | latency | CPU while idle |
//! |---|---|---|
//! | [`WaitStrategy::BusySpin`] | lowest: the core never leaves the loop | 100 % of a core |
//! | [`WaitStrategy::Yield`] | low while cores are free, suffers when oversubscribed | 100 %, but shares the core |
//! | [`WaitStrategy::Backoff`] | spins, then yields, then sleeps in growing steps | near zero when idle |
//! | [`WaitStrategy::Blocking`] | spins, then sleeps on a futex in the segment until a producer wakes it | zero when idle |
//!
//! `Blocking` sleeps on a futex word in the ring's segment: a producer bumps
//! it and calls `FUTEX_WAKE` only when the sleeper count is non-zero, so
//! publishing makes no system call while nobody sleeps. Broadcast topics
//! always have it; an SPSC ring has it when created with
//! `SpscConfig::with_wakeups` (the check costs its producer a fence per
//! publish), and otherwise backs off instead of sleeping. Producers waiting
//! for space always back off.
//!
//! Pin the thread (`core_affinity`) before busy-spinning.

use std::time::Duration;

use crate::sync::{spin_hint, yield_now};

/// How a blocking call waits for the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin with the CPU's pause hint. For pinned threads on dedicated cores.
    BusySpin,
    /// Give up the time slice on every round (`sched_yield`).
    Yield,
    /// Spin `spins` rounds, then yield `yields` rounds, then sleep, doubling
    /// from 1 µs up to `max_sleep`.
    Backoff {
        /// Rounds of busy-spinning first.
        spins: u32,
        /// Then rounds of yielding.
        yields: u32,
        /// Longest single sleep after that.
        max_sleep: Duration,
    },
    /// Spin `spins` rounds, then sleep on the ring's futex until woken.
    Blocking {
        /// Rounds of busy-spinning before sleeping.
        spins: u32,
    },
}

impl WaitStrategy {
    /// A backoff that spins for about a microsecond, yields a while, then
    /// sleeps at most 1 ms: a good default for threads that are not pinned.
    pub const BACKOFF: WaitStrategy = WaitStrategy::Backoff {
        spins: 128,
        yields: 64,
        max_sleep: Duration::from_millis(1),
    };

    /// Spin briefly (32 rounds, about a microsecond), then sleep on the
    /// futex: for many subscribers sharing few cores, where a long spin
    /// would hold the core another woken subscriber needs.
    pub const BLOCKING: WaitStrategy = WaitStrategy::Blocking { spins: 32 };
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::BACKOFF
    }
}

/// The state of one wait: how many rounds it has waited so far.
#[derive(Clone, Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    round: u32,
}

impl Waiter {
    /// A fresh waiter.
    pub fn new(strategy: WaitStrategy) -> Self {
        Waiter { strategy, round: 0 }
    }

    /// Waits once, as the strategy says for the current round.
    #[inline]
    pub fn wait(&mut self) {
        self.round = self.round.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => spin_hint(),
            WaitStrategy::Yield => yield_now(),
            // Without a futex word (see `should_sleep`) blocking backs off.
            WaitStrategy::Blocking { spins } => {
                if self.round <= spins {
                    spin_hint();
                } else {
                    let step = (self.round - spins).min(10);
                    sleep_or_yield(Duration::from_micros(1u64 << step));
                }
            }
            WaitStrategy::Backoff {
                spins,
                yields,
                max_sleep,
            } => {
                if self.round <= spins {
                    spin_hint();
                } else if self.round <= spins.saturating_add(yields) {
                    yield_now();
                } else {
                    let step = (self.round - spins - yields).min(20);
                    let sleep = Duration::from_micros(1u64 << step).min(max_sleep);
                    sleep_or_yield(sleep);
                }
            }
        }
    }

    /// Whether the next wait should sleep on a futex (a `Blocking` strategy
    /// past its spinning rounds). Rings with a futex word ask this first and
    /// sleep themselves instead of calling [`Waiter::wait`].
    #[inline]
    pub fn should_sleep(&self) -> bool {
        matches!(self.strategy, WaitStrategy::Blocking { spins } if self.round >= spins)
    }

    /// Counts a round spent sleeping on a futex.
    #[inline]
    pub fn count_round(&mut self) {
        self.round = self.round.saturating_add(1);
    }

    /// Rounds waited since creation or the last [`Waiter::reset`].
    pub fn rounds(&self) -> u32 {
        self.round
    }

    /// Starts over from the first (cheapest) round.
    pub fn reset(&mut self) {
        self.round = 0;
    }
}

#[cfg(not(shmbus_loom))]
fn sleep_or_yield(d: Duration) {
    std::thread::sleep(d);
}

#[cfg(shmbus_loom)]
fn sleep_or_yield(_d: Duration) {
    yield_now();
}

#[cfg(all(test, not(shmbus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_moves_from_spin_to_sleep() {
        let mut w = Waiter::new(WaitStrategy::Backoff {
            spins: 2,
            yields: 2,
            max_sleep: Duration::from_micros(50),
        });
        for _ in 0..4 {
            w.wait();
        }
        let t = std::time::Instant::now();
        for _ in 0..10 {
            w.wait();
        }
        // Ten sleeps of at least 2 µs each cannot take less than 20 µs.
        assert!(t.elapsed() >= Duration::from_micros(20));
        assert_eq!(w.rounds(), 14);
        w.reset();
        assert_eq!(w.rounds(), 0);
    }
}
