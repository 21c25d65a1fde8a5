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
//! | [`WaitStrategy::Blocking`] | spins, yields a few rounds, then sleeps on a futex in the segment until a producer wakes it | zero when idle |
//!
//! `Blocking` sleeps on a futex word in the ring's segment: a producer bumps
//! it and calls `FUTEX_WAKE` only when the sleeper count is non-zero, so
//! publishing makes no system call while nobody sleeps. It works only where
//! something wakes the waiter:
//!
//! * topic subscribers always can sleep;
//! * an SPSC consumer can when its ring was created with
//!   `SpscConfig::with_wakeups` (the check costs its producer a fence per
//!   publish; `Consumer::can_sleep` tells);
//! * producers and publishers waiting for space never can: nothing wakes
//!   them.
//!
//! Where it cannot sleep, a `Blocking` wait does not quietly become another
//! strategy: the call returns `CannotSleep` (`ClaimError::CannotSleep`,
//! `RecvError::CannotSleep`) before it looks at the ring.
//!
//! Pin the thread (`core_affinity`) before busy-spinning.

use std::time::Duration;

use crate::sync::{monotonic_ns, spin_hint, yield_now};

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
    /// Spin `spins` rounds, yield `yields` rounds, then sleep on the ring's
    /// futex until woken. Only for waits something wakes (see the module
    /// docs); elsewhere the call returns `CannotSleep`.
    ///
    /// The yields matter where sleepers share a core: a reader that has
    /// just read yields to the next one woken with it instead of making
    /// it wait out a spin and a futex call, and a core that stays busy
    /// between records is woken faster than an idle one (an idle virtual
    /// CPU takes microseconds to wake).
    Blocking {
        /// Rounds of busy-spinning first.
        spins: u32,
        /// Then rounds of yielding (`sched_yield`) before sleeping.
        yields: u32,
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

    /// Spin briefly (32 rounds, about a microsecond), yield 8 rounds, then
    /// sleep on the futex: for many subscribers sharing few cores, where a
    /// long spin would hold the core another woken subscriber needs.
    pub const BLOCKING: WaitStrategy = WaitStrategy::Blocking {
        spins: 32,
        yields: 8,
    };
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::BACKOFF
    }
}

/// The state of one wait: how many rounds it has waited so far, and the
/// deadline it gives up at, if any.
///
/// A blocking call makes one `Waiter` per call, asks [`Waiter::timed_out`]
/// after every failed attempt, then calls [`Waiter::wait`] (or sleeps on its
/// futex for at most [`Waiter::sleep_budget`]). The deadline is checked
/// against `CLOCK_MONOTONIC` on every round that yields or sleeps, and every
/// 64 rounds while spinning (a few microseconds), so a timeout fires within
/// one wait period of its deadline however long the wait has lasted; and no
/// sleep runs past the deadline.
#[derive(Clone, Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    /// Rounds waited, saturating: decides the phase (spin, yield, sleep).
    round: u32,
    /// Calls to `timed_out`, wrapping: paces clock reads while spinning.
    checks: u32,
    /// `CLOCK_MONOTONIC` ns at which the wait gives up; `None` for never.
    deadline_ns: Option<u64>,
    /// The clock reading the deadline was counted from; `None` without one.
    started_ns: Option<u64>,
}

impl Waiter {
    /// A fresh waiter with no deadline.
    pub fn new(strategy: WaitStrategy) -> Self {
        Waiter {
            strategy,
            round: 0,
            checks: 0,
            deadline_ns: None,
            started_ns: None,
        }
    }

    /// A fresh waiter that gives up `timeout` from now. A timeout too long
    /// to represent (such as `Duration::MAX`) means no deadline.
    pub fn with_timeout(strategy: WaitStrategy, timeout: Duration) -> Self {
        let Ok(timeout_ns) = u64::try_from(timeout.as_nanos()) else {
            return Waiter::new(strategy);
        };
        let now = monotonic_ns();
        match now.checked_add(timeout_ns) {
            Some(deadline) => Waiter {
                deadline_ns: Some(deadline),
                started_ns: Some(now),
                ..Waiter::new(strategy)
            },
            None => Waiter::new(strategy),
        }
    }

    /// The `CLOCK_MONOTONIC` reading the deadline was counted from (the
    /// start of the call that made this waiter), if it has a deadline: a
    /// wait that timed out lasted at least the timeout from here.
    pub fn started_ns(&self) -> Option<u64> {
        self.started_ns
    }

    /// Whether the deadline has passed. Reads the clock on every round that
    /// yields or sleeps and on every 64th call while spinning.
    #[inline]
    pub fn timed_out(&mut self) -> bool {
        let Some(deadline) = self.deadline_ns else {
            return false;
        };
        self.checks = self.checks.wrapping_add(1);
        if self.spinning() && self.checks % 64 != 1 {
            return false;
        }
        monotonic_ns() >= deadline
    }

    /// Time left before the deadline, at most `cap`: how long a futex sleep
    /// may last.
    pub fn sleep_budget(&self, cap: Duration) -> Duration {
        match self.deadline_ns {
            None => cap,
            Some(deadline) => cap.min(Duration::from_nanos(
                deadline.saturating_sub(monotonic_ns()),
            )),
        }
    }

    /// Whether the current round only spins (no yield, no sleep): callers
    /// do their slow checks on the other rounds.
    pub fn spinning(&self) -> bool {
        match self.strategy {
            WaitStrategy::BusySpin => true,
            WaitStrategy::Yield => false,
            WaitStrategy::Backoff { spins, .. } | WaitStrategy::Blocking { spins, .. } => {
                self.round < spins
            }
        }
    }

    /// Waits once, as the strategy says for the current round. A sleep is
    /// cut short at the deadline.
    #[inline]
    pub fn wait(&mut self) {
        self.round = self.round.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => spin_hint(),
            WaitStrategy::Yield => yield_now(),
            // Rings sleep on their futex instead (see `should_sleep`); a
            // caller without one still waits, in growing sleeps.
            WaitStrategy::Blocking { spins, yields } => {
                if self.round <= spins {
                    spin_hint();
                } else if self.round <= spins.saturating_add(yields) {
                    yield_now();
                } else {
                    let step = (self.round - spins - yields).min(10);
                    self.sleep_or_yield(Duration::from_micros(1u64 << step));
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
                    self.sleep_or_yield(sleep);
                }
            }
        }
    }

    fn sleep_or_yield(&self, d: Duration) {
        let d = self.sleep_budget(d);
        if d.is_zero() {
            yield_now();
        } else {
            sleep_or_yield(d);
        }
    }

    /// Whether the next wait should sleep on a futex (a `Blocking` strategy
    /// past its spinning and yielding rounds). Rings with a futex word ask
    /// this first and sleep themselves (for at most
    /// [`Waiter::sleep_budget`]) instead of calling [`Waiter::wait`].
    #[inline]
    pub fn should_sleep(&self) -> bool {
        matches!(
            self.strategy,
            WaitStrategy::Blocking { spins, yields } if self.round >= spins.saturating_add(yields)
        )
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

    /// Starts over from the first (cheapest) round; the deadline stays.
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

    /// `Blocking` spins, then yields, and only then asks its ring to sleep.
    #[test]
    fn blocking_spins_then_yields_then_sleeps() {
        let mut w = Waiter::new(WaitStrategy::Blocking {
            spins: 2,
            yields: 3,
        });
        let mut phases = Vec::new();
        for _ in 0..7 {
            phases.push((w.spinning(), w.should_sleep()));
            if w.should_sleep() {
                w.count_round();
            } else {
                w.wait();
            }
        }
        let (spin, yields, sleep) = ((true, false), (false, false), (false, true));
        assert_eq!(
            phases,
            [spin, spin, yields, yields, yields, sleep, sleep],
            "two spins, three yields, then sleeps"
        );
    }

    /// Every strategy gives up within one wait period of its deadline, even
    /// after more rounds than a `u32` counts (the round counter saturates;
    /// the clock-read pacing must not stop at `u32::MAX`).
    #[test]
    fn a_deadline_fires_within_one_wait_period_for_every_strategy() {
        let strategies = [
            WaitStrategy::BusySpin,
            WaitStrategy::Yield,
            WaitStrategy::BACKOFF,
            WaitStrategy::Backoff {
                spins: 0,
                yields: 0,
                max_sleep: Duration::from_millis(50),
            },
            WaitStrategy::BLOCKING,
        ];
        for s in strategies {
            for saturated in [false, true] {
                let timeout = Duration::from_millis(20);
                let wait_once = || {
                    // Started before the waiter reads the clock for its
                    // deadline, so the measured wait cannot come out shorter
                    // than its own.
                    let t = std::time::Instant::now();
                    let mut w = Waiter::with_timeout(s, timeout);
                    if saturated {
                        w.round = u32::MAX;
                        w.checks = u32::MAX - 3;
                    }
                    while !w.timed_out() {
                        w.wait();
                    }
                    let took = t.elapsed();
                    assert!(took >= timeout, "{s:?} gave up early: {took:?}");
                    took
                };
                // One wait period here is at most the 1 ms backoff sleep
                // (sleeps are cut at the deadline, or the 50 ms one would
                // overshoot every time); a loaded machine can delay one
                // attempt, not three in a row.
                let tries: Vec<Duration> = (0..3).map(|_| wait_once()).collect();
                assert!(
                    tries
                        .iter()
                        .any(|&took| took < timeout + Duration::from_millis(15)),
                    "{s:?} (saturated {saturated}) overshot three times: {tries:?}"
                );
            }
        }
    }

    #[test]
    fn no_deadline_never_times_out_and_sleep_budget_is_the_cap() {
        let mut w = Waiter::with_timeout(WaitStrategy::BusySpin, Duration::MAX);
        for _ in 0..1000 {
            assert!(!w.timed_out());
        }
        assert_eq!(
            w.sleep_budget(Duration::from_millis(7)),
            Duration::from_millis(7)
        );
        let w = Waiter::with_timeout(WaitStrategy::BLOCKING, Duration::from_millis(5));
        assert!(w.sleep_budget(Duration::from_secs(1)) <= Duration::from_millis(5));
    }
}
