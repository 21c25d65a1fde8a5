//! Counting into a participant's [`Counters`] line.
//!
//! Every participant (publisher, subscriber, producer, consumer, and the
//! two ends of an SPSC channel) owns one line of counters in its ring's
//! segment. Only the owner writes it, so a count is a Relaxed load and a
//! Relaxed store of the owner's own line: no read-modify-write, no line
//! another core writes, and nothing anybody waits on. Readers (the
//! inspector, `ring-dump`) see each counter whole, but not all of them at
//! one instant.
//!
//! Counters are statistics, never control: no ring decision reads them, so
//! garbage written there by a hostile process only makes the numbers wrong
//! (sums wrap rather than overflow).

use crate::layout::{Counters, ACTIVITY_EVERY, CACHE_LINE};
use crate::sync::{coarse_monotonic_ns, monotonic_ns, StatCounter, StatOrdering as Ordering};
use crate::wait::Waiter;

/// Whether participants count (always, unless a bench turns it off to
/// measure what counting costs). Process-local, never shared.
static COUNTING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// Turns this process's counting off or on, for the bench that measures
/// what counting costs (`benches/counters.rs`); not for production, where
/// `ring-dump` relies on the counters.
#[doc(hidden)]
pub fn set_counting_for_bench(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

#[inline(always)]
fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// Counts a claim that found its ring full: once per `try_claim`, and
/// once per blocking claim however long it waits (see [`FullWait`]).
#[cold]
pub(crate) fn count_full(c: &Counters) {
    add(&c.full, 1);
    note_activity(c);
}

/// The time one blocking claim waits for space, added to
/// [`Counters::full_ns`]: from its start, once it has found its ring full, to
/// its end (claimed, failed or timed out). A claim with a timeout starts at
/// the clock reading its deadline was counted from, so a claim that timed
/// out counts at least its timeout; one without a deadline starts when it
/// first finds the ring full (its first look), which saves a clock read on
/// every blocking claim that finds room.
#[derive(Debug, Default)]
pub(crate) struct FullWait {
    since: Option<u64>,
}

impl FullWait {
    /// The claim found the ring full: counted the first time, and timed
    /// from the start of `waiter` (or from now if it has no deadline).
    pub(crate) fn found_full(&mut self, c: &Counters, waiter: &Waiter) {
        if self.since.is_none() {
            count_full(c);
            self.since = Some(waiter.started_ns().unwrap_or_else(monotonic_ns));
        }
    }

    /// The claim is over: adds the time it waited, if it did.
    pub(crate) fn end(self, c: &Counters) {
        if let Some(since) = self.since {
            add(&c.full_ns, monotonic_ns().saturating_sub(since));
        }
    }
}

impl Counters {
    /// All zero, for rings on the heap (a new segment is zero already).
    pub(crate) fn new() -> Self {
        Counters {
            records: StatCounter::new(0),
            bytes: StatCounter::new(0),
            full: StatCounter::new(0),
            full_ns: StatCounter::new(0),
            sleeps: StatCounter::new(0),
            wakes: StatCounter::new(0),
            lapped: StatCounter::new(0),
            missed: StatCounter::new(0),
            reclaims: StatCounter::new(0),
            lost_claims: StatCounter::new(0),
            skips: StatCounter::new(0),
            redelivered: StatCounter::new(0),
            acked: StatCounter::new(0),
            last_active_ns: StatCounter::new(0),
            pad: [0; CACHE_LINE - 112],
        }
    }
}

/// Adds `n` to `counter`, which only the calling owner writes.
#[inline(always)]
pub(crate) fn add(counter: &StatCounter, n: u64) {
    if !counting() {
        return;
    }
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Counts one record of `bytes` payload bytes into the owner's line `c`,
/// and every [`ACTIVITY_EVERY`] records stores the time.
///
/// Each total is a Relaxed load and store of the owner's own line (which
/// x86 compiles to one add to memory), so the totals live in shared memory
/// alone: a durable subscriber that resumes goes on from them, and a new
/// owner starts from the zeros of [`reset`].
#[inline(always)]
pub(crate) fn count_record(c: &Counters, bytes: usize) {
    if !counting() {
        return;
    }
    let records = c.records.load(Ordering::Relaxed).wrapping_add(1);
    c.records.store(records, Ordering::Relaxed);
    let total = c.bytes.load(Ordering::Relaxed).wrapping_add(bytes as u64);
    c.bytes.store(total, Ordering::Relaxed);
    if records % ACTIVITY_EVERY == 0 {
        note_activity(c);
    }
}

/// Stores the time as the owner's last activity: the coarse clock, a
/// lower bound of `CLOCK_MONOTONIC` within a timer tick, read in a quarter
/// of the time (this runs every [`ACTIVITY_EVERY`] records).
#[inline]
pub(crate) fn note_activity(c: &Counters) {
    c.last_active_ns
        .store(coarse_monotonic_ns(), Ordering::Relaxed);
}

/// Zeroes every counter and stores the time: done by a participant when it
/// takes a slot, before anybody could mistake the previous owner's numbers
/// for its own.
pub(crate) fn reset(c: &Counters) {
    for counter in [
        &c.records,
        &c.bytes,
        &c.full,
        &c.full_ns,
        &c.sleeps,
        &c.wakes,
        &c.lapped,
        &c.missed,
        &c.reclaims,
        &c.lost_claims,
        &c.skips,
        &c.redelivered,
        &c.acked,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    note_activity(c);
}

/// A participant's counters as read at one moment (each counter whole; see
/// the module docs). The fields mean what [`Counters`]' fields mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterValues {
    /// Records published (writers) or read / taken (readers).
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    /// Claims that found the ring full (back-pressure).
    pub full: u64,
    /// Nanoseconds blocking claims waited for space.
    pub full_ns: u64,
    /// Sleeps on the ring's futex.
    pub sleeps: u64,
    /// Futex wake-ups sent (writers) or sleeps ended by one (readers).
    pub wakes: u64,
    /// Times a writer overtook this reader.
    pub lapped: u64,
    /// Records this reader lost: lapped, reclaimed or skipped.
    pub missed: u64,
    /// Stalled claims of others this participant reclaimed.
    pub reclaims: u64,
    /// This writer's claims a waiter reclaimed.
    pub lost_claims: u64,
    /// Records this reader passed over.
    pub skips: u64,
    /// Redelivered records this queue consumer took.
    pub redelivered: u64,
    /// Records this queue consumer acknowledged or gave back.
    pub acked: u64,
    /// `CLOCK_MONOTONIC` ns of the last activity (a lower bound).
    pub last_active_ns: u64,
}

impl CounterValues {
    /// Reads every counter of `c`.
    pub fn load(c: &Counters) -> Self {
        let get = |a: &StatCounter| a.load(Ordering::Relaxed);
        CounterValues {
            records: get(&c.records),
            bytes: get(&c.bytes),
            full: get(&c.full),
            full_ns: get(&c.full_ns),
            sleeps: get(&c.sleeps),
            wakes: get(&c.wakes),
            lapped: get(&c.lapped),
            missed: get(&c.missed),
            reclaims: get(&c.reclaims),
            lost_claims: get(&c.lost_claims),
            skips: get(&c.skips),
            redelivered: get(&c.redelivered),
            acked: get(&c.acked),
            last_active_ns: get(&c.last_active_ns),
        }
    }
}
