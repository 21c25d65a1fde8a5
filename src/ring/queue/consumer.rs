//! The consumer side of a work queue: take a record, use it in place,
//! acknowledge it.

use core::ops::Deref;
use std::time::Duration;

use super::{QueueView, RecvError, SlotState, LOOKS_PER_TAIL_CHECK, MAX_SLEEP, REAP_PERIOD_NS};
use crate::layout::{lock_slot, participant, queue_stamp, MAX_SEQUENCE};
use crate::ring::broadcast::{check_slot_word, RegisterError};
use crate::ring::counters;
use crate::ring::stall::Stall;
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{fence, futex_wait, futex_wait_until, monotonic_ns, spin_hint, Ordering};
use crate::wait::{WaitStrategy, Waiter};

/// One consumer of a work queue: each record goes to exactly one of the
/// queue's consumers, in sequence order, and stays its own until it
/// acknowledges it ([`Taken::ack`]) or gives it back.
///
/// If the consumer's process dies holding records, the next participant
/// that notices (a waiting consumer or a blocked producer, within about
/// [`REAP_PERIOD`](super::REAP_PERIOD), or a consumer registering in its
/// slot) gives them back: they go to another consumer, flagged
/// [`Taken::redelivered`].
///
/// ```
/// use shmbus::ring::queue::{self, QueueConfig};
/// use shmbus::RecvError;
/// let queue = queue::heap(QueueConfig { slots: 8, ..QueueConfig::default() })?;
/// let mut strategy = queue.producer()?;
/// let (mut gateway_a, mut gateway_b) = (queue.consumer()?, queue.consumer()?);
/// strategy.try_send(1, b"BUY 1")?;
/// strategy.try_send(1, b"SELL 2")?;
/// // Gateway A takes the first order and gives it back unhandled ...
/// let order = gateway_a.try_take()?;
/// assert!(!order.redelivered());
/// order.give_back()?;
/// // ... so gateway B gets it, flagged, and acknowledges it.
/// let order = gateway_b.try_take()?;
/// assert!(order.redelivered() && &order[..] == b"BUY 1");
/// order.ack()?;
/// // The copy form takes, copies and acknowledges in one call.
/// let mut buf = [0u8; 64];
/// let (record_type, len) = gateway_a.try_recv(&mut buf)?;
/// assert_eq!((record_type, &buf[..len]), (1, &b"SELL 2"[..]));
/// assert_eq!(gateway_b.try_recv(&mut buf), Err(RecvError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer {
    pub(super) ring: QueueView,
    /// Index of our consumer slot (the owner number in our stamps).
    slot: usize,
    taken: u64,
    acked: u64,
    redelivered: u64,
    /// Timer of the uncommitted claim at the head, if any.
    stall: Stall,
    /// Looks that found nothing (wrapping): paces the slow checks.
    empty_looks: u32,
    /// When this consumer last looked for dead consumers.
    last_reap_ns: u64,
    /// Set once the segment is found unusable: every later call fails.
    unusable: Option<crate::layout::SegmentFault>,
}

/// A record a consumer holds, as the take found it.
#[derive(Clone, Copy, Debug)]
struct Held {
    seq: u64,
    len: u32,
    record_type: u16,
    redelivered: bool,
}

impl Held {
    /// A placeholder for the unused entries of a run.
    const NONE: Held = Held {
        seq: 0,
        len: 0,
        record_type: 0,
        redelivered: false,
    };
}

/// Most records [`Consumer::take_batch`] takes at once (taken, not yet
/// acknowledged): a larger batch is taken in runs of this many. Its run
/// lives on the stack (no allocation).
pub const TAKE_RUN: usize = 32;

impl Consumer {
    /// Takes a free consumer slot, or the slot of a dead consumer after
    /// giving its records back.
    pub(crate) fn register(ring: QueueView) -> Result<Self, RegisterError> {
        for i in 0..ring.max_consumers {
            if !ring.liveness.try_lock(lock_slot::queue_consumer(i)) {
                continue;
            }
            // Holding the lock: a slot still marked in use lost its owner.
            ring.free_dead_consumer(i);
            let c = ring.consumer(i);
            c.pid.store(std::process::id(), Ordering::Relaxed);
            counters::reset(&c.counters);
            // SYNC POINT: Relaxed load (we hold the lock; the reaper's
            // Release store, if any, was made by us above), Release store:
            // pairs with a reaper's Acquire load of the state word.
            let word = c.state.load(Ordering::Relaxed);
            c.state.store(
                participant::next_generation(word, participant::LIVE),
                Ordering::Release,
            );
            return Ok(Consumer {
                ring,
                slot: i,
                taken: 0,
                acked: 0,
                redelivered: 0,
                stall: Stall::default(),
                empty_looks: 0,
                last_reap_ns: monotonic_ns(),
                unusable: None,
            });
        }
        Err(RegisterError::NoFreeSlot {
            role: "consumer",
            slots: ring.max_consumers,
        })
    }

    /// The queue's positions and counters now.
    pub fn counters(&self) -> super::QueueCounters {
        self.ring.counters()
    }

    /// Records this consumer took (redelivered ones included).
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Records this consumer acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Redelivered records this consumer took (their first consumer died
    /// holding them).
    pub fn redelivered(&self) -> u64 {
        self.redelivered
    }

    /// Largest payload of one record.
    pub fn max_payload(&self) -> u32 {
        self.ring.max_payload
    }

    fn corrupt(kind: CorruptionKind, position: u64) -> RecvError {
        RecvError::Corrupt(Corruption { kind, position })
    }

    /// Tries to move the shared head from `h` to `h + 1` (anyone may: the
    /// record at `h` is taken or passed).
    #[inline(always)]
    fn advance_head(&self, h: u64) {
        // SYNC POINT: Relaxed: the head is a hint; stamps, loaded with
        // Acquire, carry every record.
        let _ = self.ring.control().head.compare_exchange(
            h,
            h + 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Takes the record whose stamp is `seen` (committed at `seq`'s lap) if
    /// nobody else does first; `limit` is the longest payload the caller
    /// accepts. `Ok(None)` if another consumer got there first.
    #[inline(always)]
    fn take_at(&mut self, seq: u64, seen: u64, limit: usize) -> Result<Option<Held>, RecvError> {
        let h = self.ring.header(seq);
        // Read before the take: valid for this record if the take below
        // succeeds (the stamp is unchanged, so the word is this lap's).
        let word = h.word.load(Ordering::Relaxed);
        let lap = self.ring.lap(seq);
        let redelivered = queue_stamp::flags(seen) & queue_stamp::REDELIVERED != 0;
        let checked = check_slot_word(word, self.ring.max_payload);
        match checked {
            Ok((len, _)) if len as usize > limit => {
                // Leave it committed, for a consumer with room for it.
                if h.stamp.load(Ordering::Relaxed) == seen {
                    return Err(RecvError::BufferTooSmall {
                        needed: len as usize,
                    });
                }
                return Ok(None);
            }
            _ => {}
        }
        let taken = queue_stamp::pack(
            lap,
            self.slot as u32,
            queue_stamp::TAKEN,
            queue_stamp::flags(seen) & queue_stamp::REDELIVERED,
        );
        // SYNC POINT: the take; AcqRel. Acquire pairs with the producer's
        // Release commit CAS (or a give-back's Release CAS after it): the
        // header word and payload are visible. Release pairs with a
        // give-back's Acquire load of the stamp (`give_back_all`).
        if h.stamp
            .compare_exchange(seen, taken, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Ok(None);
        }
        self.taken += 1;
        let c = &self.ring.consumer(self.slot).counters;
        let len = checked.map_or(0, |(len, _)| len as usize);
        counters::count_record(c, len);
        if redelivered {
            self.redelivered += 1;
            counters::add(&c.redelivered, 1);
        }
        match checked {
            Ok((len, record_type)) => {
                self.ring.note(seq, len as usize, false);
                Ok(Some(Held {
                    seq,
                    len,
                    record_type,
                    redelivered,
                }))
            }
            Err(kind) => {
                // A record nobody can use: acknowledge it away, and report
                // it (its sequence is in the error), rather than give it
                // back to poison every consumer in turn.
                self.finish(
                    Held {
                        seq,
                        len: 0,
                        record_type: 0,
                        redelivered,
                    },
                    true,
                )?;
                Err(Self::corrupt(kind, seq))
            }
        }
    }

    /// Looks for records given back behind the head (their consumer died)
    /// when the hint says there may be some, and takes the first.
    #[cold]
    fn take_given_back(&mut self, hint: u64, limit: usize) -> Result<Option<Held>, RecvError> {
        // SYNC POINT: Relaxed: the window is re-checked stamp by stamp.
        let head = self.ring.control().head.load(Ordering::Relaxed);
        for seq in head.saturating_sub(self.ring.slots)..head {
            // SYNC POINT: Acquire pairs with the give-back's Release CAS.
            let seen = self.ring.header(seq).stamp.load(Ordering::Acquire);
            let Ok(SlotState::At(queue_stamp::COMMITTED)) = self.ring.slot_state(seq, seen) else {
                continue;
            };
            if queue_stamp::flags(seen) & queue_stamp::REDELIVERED == 0 {
                continue;
            }
            if let Some(held) = self.take_at(seq, seen, limit)? {
                return Ok(Some(held));
            }
        }
        // Nothing behind the head: clear the hint, unless a give-back
        // bumped it since we read it (then look again next time).
        // SYNC POINT: Relaxed: a failed or successful reset publishes
        // nothing; a give-back's Release bump is re-read next time.
        let _ = self.ring.control().redelivery_hint.compare_exchange(
            hint,
            0,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        Ok(None)
    }

    /// Takes the next record without waiting: a given-back one first, then
    /// the record at the head.
    fn take_next(&mut self, limit: usize) -> Result<Held, RecvError> {
        if let Some(fault) = self.unusable {
            return Err(RecvError::Unusable(fault));
        }
        // SYNC POINT: Acquire pairs with the Release bump in `give_back_all`.
        let hint = self.ring.control().redelivery_hint.load(Ordering::Acquire);
        if hint != 0 {
            if let Some(held) = self.take_given_back(hint, limit)? {
                return Ok(held);
            }
        }
        let mut retry = false;
        loop {
            // Lost a race, or read a stale head: pause before looking again
            // (under loom, let the other threads run).
            if core::mem::replace(&mut retry, true) {
                spin_hint();
            }
            // SYNC POINT: Relaxed: the head names a candidate; its stamp,
            // loaded with Acquire, is what orders us.
            let h = self.ring.control().head.load(Ordering::Relaxed);
            if h > MAX_SEQUENCE {
                return Err(Self::corrupt(
                    CorruptionKind::PositionTooLarge { value: h },
                    h,
                ));
            }
            let hdr = self.ring.header(h);
            // SYNC POINT: Acquire pairs with the producer's Release commit
            // CAS (`Claim::finish`) and a give-back's Release CAS.
            let seen = hdr.stamp.load(Ordering::Acquire);
            match self.ring.slot_state(h, seen).map_err(RecvError::Corrupt)? {
                SlotState::At(queue_stamp::COMMITTED) => {
                    if let Some(held) = self.take_at(h, seen, limit)? {
                        self.advance_head(h);
                        self.stall.clear();
                        return Ok(held);
                    }
                }
                SlotState::At(queue_stamp::TAKEN) => self.advance_head(h),
                SlotState::At(queue_stamp::SKIPPED) => self.pass_skip(h, seen),
                SlotState::At(_) => {
                    if self.pending(h, seen)? {
                        continue;
                    }
                    return Err(RecvError::Empty);
                }
                SlotState::Behind => {
                    self.nothing_yet(h)?;
                    return Err(RecvError::Empty);
                }
                SlotState::Ahead => {
                    // Taken and acknowledged already: a stale head, unless
                    // `h` was never claimed at all.
                    // SYNC POINT: Relaxed: only compared.
                    if self.ring.control().tail.load(Ordering::Relaxed) <= h {
                        return Err(Self::corrupt(CorruptionKind::BadStamp { stamp: seen }, h));
                    }
                    // Two laps or more ahead: someone read the head at
                    // `h + slots` or later before the slot got there, so
                    // the head cannot still be `h` (this CAS, an RMW, reads
                    // the latest value). If it is, the stamp is corrupt:
                    // walking to its lap would take up to 2^47 laps.
                    // SYNC POINT: Relaxed: the Acquire load of the stamp
                    // orders that read before this CAS.
                    if queue_stamp::laps_ahead(queue_stamp::lap(seen), self.ring.lap(h)) > 1
                        && self
                            .ring
                            .control()
                            .head
                            .compare_exchange(h, h, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    {
                        return Err(Self::corrupt(CorruptionKind::BadStamp { stamp: seen }, h));
                    }
                    self.advance_head(h);
                }
            }
        }
    }

    /// Passes the skip at `h` (an aborted, given-up or reclaimed claim):
    /// frees its slot for the next lap and moves the head.
    fn pass_skip(&mut self, h: u64, seen: u64) {
        let lap = self.ring.lap(h);
        let free = queue_stamp::pack(
            lap.wrapping_add(1),
            0,
            queue_stamp::FREE,
            queue_stamp::flags(seen) & queue_stamp::SUSPECT,
        );
        // SYNC POINT: Release pairs with the next lap's producer's Acquire
        // load of the stamp (`Producer::claim_sequences`). Whoever wins passes it.
        let _ = self.ring.header(h).stamp.compare_exchange(
            seen,
            free,
            Ordering::Release,
            Ordering::Relaxed,
        );
        self.advance_head(h);
    }

    /// The slot of `h` is free or being written at its lap: nothing to take
    /// yet. If `h` was claimed and its claim is older than `reclaim_after`,
    /// reclaims it (its producer stalled or died) and returns true: look
    /// again.
    fn pending(&mut self, h: u64, seen: u64) -> Result<bool, RecvError> {
        self.empty_looks = self.empty_looks.wrapping_add(1);
        // The tail is the producers' hottest line: look at it now and then.
        if self.empty_looks % LOOKS_PER_TAIL_CHECK != 0 {
            return Ok(false);
        }
        self.slow_checks()?;
        // SYNC POINT: Relaxed: only compared.
        let tail = self.ring.control().tail.load(Ordering::Relaxed);
        if h >= tail {
            self.stall.clear();
            return Ok(false);
        }
        if self.stall.waited_ns(h, tail) < self.ring.reclaim_after_ns {
            return Ok(false);
        }
        let moved_on = self.ring.reclaim(h, seen);
        if moved_on {
            counters::add(&self.ring.consumer(self.slot).counters.reclaims, 1);
            self.ring.wake_sleepers();
        }
        Ok(moved_on)
    }

    /// Makes the next look that finds nothing look at the tail, the stall
    /// timer and the segment (see [`Consumer::pending`]), rather than wait
    /// for its turn among [`LOOKS_PER_TAIL_CHECK`] looks.
    pub(super) fn look_closely_next(&mut self) {
        let to_turn = LOOKS_PER_TAIL_CHECK - 1 - self.empty_looks % LOOKS_PER_TAIL_CHECK;
        self.empty_looks = self.empty_looks.wrapping_add(to_turn);
    }

    /// The slot of `h` still held the previous lap when we looked: `h` was
    /// not claimed.
    pub(super) fn nothing_yet(&mut self, h: u64) -> Result<(), RecvError> {
        self.empty_looks = self.empty_looks.wrapping_add(1);
        if self.empty_looks % LOOKS_PER_TAIL_CHECK == 0 {
            self.slow_checks()?;
            // SYNC POINT: Acquire pairs with the producers' AcqRel claim CAS
            // of `tail`: a claim of `h + slots` or later follows that
            // producer's look at the slot of `h` acknowledged a lap on, so
            // the look below sees that stamp or a later one.
            let tail = self.ring.control().tail.load(Ordering::Acquire);
            if tail > h.saturating_add(self.ring.slots) {
                // Impossible while the slot of `h` is a lap behind, unless
                // our look at it is old: we were preempted after it while
                // others produced and took a lap. Look again.
                // SYNC POINT: Acquire, as the first look in `take_next`.
                let now = self.ring.header(h).stamp.load(Ordering::Acquire);
                if self.ring.slot_state(h, now) == Ok(SlotState::Behind) {
                    return Err(Self::corrupt(CorruptionKind::TailTooFarAhead { tail }, h));
                }
            }
        }
        Ok(())
    }

    /// The checks a consumer finding nothing makes now and then: the
    /// segment, and (every [`REAP_PERIOD`](super::REAP_PERIOD)) dead
    /// consumers whose records wait to be given back.
    fn slow_checks(&mut self) -> Result<(), RecvError> {
        if let Some(fault) = self.ring.fault() {
            self.unusable = Some(fault);
            return Err(RecvError::Unusable(fault));
        }
        self.reap_if_due();
        Ok(())
    }

    fn reap_if_due(&mut self) {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_reap_ns) >= REAP_PERIOD_NS {
            self.last_reap_ns = now;
            self.ring.reap_dead_consumers(Some(self.slot));
        }
    }

    /// Acknowledges (`ack`) or gives back the record `held`.
    fn finish(&mut self, held: Held, ack: bool) -> Result<(), RecvError> {
        let ring = &self.ring;
        let lap = ring.lap(held.seq);
        let flags = if held.redelivered {
            queue_stamp::REDELIVERED
        } else {
            0
        };
        let ours = queue_stamp::pack(lap, self.slot as u32, queue_stamp::TAKEN, flags);
        let next = if ack {
            queue_stamp::pack(lap.wrapping_add(1), 0, queue_stamp::FREE, 0)
        } else {
            queue_stamp::pack(lap, 0, queue_stamp::COMMITTED, queue_stamp::REDELIVERED)
        };
        let h = ring.header(held.seq);
        // SYNC POINT: Release. An acknowledgement pairs with the next lap's
        // producer's Acquire load of the stamp: our reads of the payload
        // happen before its writes. A give-back pairs with the next taker's
        // Acquire take CAS.
        if let Err(now) = h
            .stamp
            .compare_exchange(ours, next, Ordering::Release, Ordering::Relaxed)
        {
            // Only we move a stamp that names us: someone wrote the queue's
            // memory who should not have.
            return Err(Self::corrupt(
                CorruptionKind::BadStamp { stamp: now },
                held.seq,
            ));
        }
        self.acked += 1;
        counters::add(&ring.consumer(self.slot).counters.acked, 1);
        if !ack {
            let ctl = ring.control();
            ctl.redelivered.fetch_add(1, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the Acquire load of the hint in
            // `take_next`: the record given back above is visible with it.
            // SeqCst: the first half of the sleeper check in
            // `wake_sleepers` (a sleeper looks at this hint).
            ctl.redelivery_hint.fetch_add(1, Ordering::SeqCst);
            ring.wake_sleepers();
        }
        Ok(())
    }

    /// Takes a run of records into `out` (at least one, at most
    /// `out.len()`): the next record as [`Consumer::try_take`] takes it,
    /// then the committed records that follow it, one take CAS each, and
    /// the shared head moved past them all with one CAS. Returns how many,
    /// and the error that ended the run early, if any: a corrupt record
    /// found after the first, acknowledged away (see `take_at`), which
    /// the caller reports once it has handled the run.
    fn take_run(&mut self, out: &mut [Held]) -> Result<(usize, Option<RecvError>), RecvError> {
        debug_assert!(!out.is_empty());
        let first = self.take_next(usize::MAX)?;
        out[0] = first;
        let mut n = 1;
        let mut error = None;
        while n < out.len() {
            let seq = first.seq + n as u64;
            if seq > MAX_SEQUENCE {
                break;
            }
            // SYNC POINT: Acquire pairs with the producer's Release commit
            // CAS (`Claim::finish`) and a give-back's Release CAS, as in
            // `take_next`.
            let seen = self.ring.header(seq).stamp.load(Ordering::Acquire);
            if self.ring.slot_state(seq, seen) != Ok(SlotState::At(queue_stamp::COMMITTED)) {
                // Not committed yet, taken by another consumer, a skip: the
                // next take deals with it.
                break;
            }
            match self.take_at(seq, seen, usize::MAX) {
                Ok(Some(held)) => {
                    out[n] = held;
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if n > 1 {
            // One move of the head for the run: `take_next` left it at
            // `first.seq + 1` (or a consumer moved it on), and everything
            // up to `first.seq + n` is taken. If it is elsewhere (the first
            // record was given back behind it, or another consumer moved
            // it), leave it: it is a hint, and consumers pass taken
            // records.
            // SYNC POINT: Relaxed, as in `advance_head`.
            let _ = self.ring.control().head.compare_exchange(
                first.seq + 1,
                first.seq + n as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Ok((n, error))
    }

    /// Takes up to `max` records without waiting and calls `f` with each,
    /// in place and in sequence order, acknowledging each as soon as `f`
    /// returns. Returns how many (0 if the queue was empty).
    ///
    /// What it saves over as many [`Consumer::try_take`] calls: the shared
    /// head (the line every consumer contends for) is read and moved once
    /// per run of up to [`TAKE_RUN`] consecutive records instead of once
    /// per record. Each record is still taken and acknowledged by its own
    /// compare-and-swap of its stamp: that is what makes it one
    /// consumer's alone, and what gives it back if the consumer dies.
    ///
    /// The records of a run are taken before `f` sees the first, so they
    /// wait for this consumer even if another is idle: use it where `f`
    /// is quick, or keep `max` small. If the consumer dies during a batch,
    /// the records it took and had not acknowledged are given back and
    /// redelivered, flagged, as any taken record is; since each is
    /// acknowledged as soon as `f` returns, only the one `f` was handling
    /// can be a duplicate. If `f` panics, that record and the rest of the
    /// run are given back.
    ///
    /// ```
    /// use shmbus::ring::queue::{self, QueueConfig};
    /// let queue = queue::heap(QueueConfig { slots: 8, ..QueueConfig::default() })?;
    /// let mut strategy = queue.producer()?;
    /// let mut gateway = queue.consumer()?;
    /// for order in [&b"BUY 1"[..], b"SELL 2"] {
    ///     strategy.try_send(1, order)?;
    /// }
    /// let mut handled = Vec::new();
    /// let n = gateway.take_batch(16, |order| {
    ///     assert!(!order.redelivered());
    ///     handled.push((order.sequence(), order.to_vec()));
    /// })?;
    /// assert_eq!(n, 2);
    /// assert_eq!(handled, [(0, b"BUY 1".to_vec()), (1, b"SELL 2".to_vec())]);
    /// assert_eq!(gateway.take_batch(16, |_| {})?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] or [`RecvError::Unusable`], as
    /// [`Consumer::try_take`]; never `Empty`. An error found after some
    /// records ends the batch once `f` has handled them and they are
    /// acknowledged, and is returned then (a corrupt record is reported
    /// at once: it was acknowledged away, and would not come again).
    pub fn take_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(&Taken<'_>),
    ) -> Result<usize, RecvError> {
        let mut n = 0;
        while n < max {
            let mut run = [Held::NONE; TAKE_RUN];
            let want = (max - n).min(TAKE_RUN);
            let (got, error) = match self.take_run(&mut run[..want]) {
                Ok(taken) => taken,
                Err(RecvError::Empty) => break,
                Err(e) => return Err(e),
            };
            let mut left = Run {
                consumer: self,
                held: &run[..got],
                next: 0,
            };
            while let Some(&held) = left.held.get(left.next) {
                left.next += 1;
                let taken = Taken {
                    consumer: &mut *left.consumer,
                    held,
                };
                f(&taken);
                taken.ack()?;
            }
            n += got;
            if let Some(e) = error {
                return Err(e);
            }
            if got < want {
                break;
            }
        }
        Ok(n)
    }

    /// Test hook: takes a run of up to `max` records as
    /// [`Consumer::take_batch`] does, acknowledges the first `handled`,
    /// and dies holding the rest, as a process killed in the middle of a
    /// batch would (see [`Consumer::crash_for_test`]). Returns the
    /// sequences it took, acknowledged ones first.
    #[doc(hidden)]
    pub fn crash_mid_batch_for_test(mut self, max: usize, handled: usize) -> Vec<u64> {
        let mut run = [Held::NONE; TAKE_RUN];
        let want = max.clamp(1, TAKE_RUN);
        let got = match self.take_run(&mut run[..want]) {
            Ok((got, _)) => got,
            Err(_) => 0,
        };
        for held in &run[..handled.min(got)] {
            let _ = self.finish(*held, true);
        }
        self.crash_for_test();
        run[..got].iter().map(|h| h.seq).collect()
    }

    fn taken_record(&mut self, held: Held) -> Taken<'_> {
        Taken {
            consumer: self,
            held,
        }
    }

    /// Takes the next record without waiting; use it in place, then
    /// [`Taken::ack`] it.
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`], [`RecvError::Corrupt`] or
    /// [`RecvError::Unusable`].
    #[inline]
    pub fn try_take(&mut self) -> Result<Taken<'_>, RecvError> {
        let held = self.take_next(usize::MAX)?;
        Ok(self.taken_record(held))
    }

    /// Takes the next record, waiting with `wait` while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] or [`RecvError::Unusable`]; never `Empty`.
    pub fn take_blocking(&mut self, wait: WaitStrategy) -> Result<Taken<'_>, RecvError> {
        self.take_timeout(wait, Duration::MAX)
    }

    /// Takes the next record, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvError::TimedOut`], or as [`Consumer::take_blocking`].
    pub fn take_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Taken<'_>, RecvError> {
        let held = self.take_waiting(usize::MAX, wait, timeout)?;
        Ok(self.taken_record(held))
    }

    /// Copies the next record into `buf` and acknowledges it, without
    /// waiting. Returns its record type and length.
    ///
    /// # Errors
    ///
    /// [`RecvError::BufferTooSmall`] (the record stays in the queue), or as
    /// [`Consumer::try_take`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        let held = self.take_next(buf.len())?;
        self.copy_and_ack(held, buf)
    }

    /// As [`Consumer::try_recv`], waiting with `wait` while the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_recv`] and [`Consumer::take_blocking`].
    pub fn recv_blocking(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
    ) -> Result<(u16, usize), RecvError> {
        self.recv_timeout(buf, wait, Duration::MAX)
    }

    /// As [`Consumer::try_recv`], waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_recv`] and [`Consumer::take_timeout`].
    pub fn recv_timeout(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<(u16, usize), RecvError> {
        let held = self.take_waiting(buf.len(), wait, timeout)?;
        self.copy_and_ack(held, buf)
    }

    fn copy_and_ack(&mut self, held: Held, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        let len = held.len as usize;
        debug_assert!(len <= buf.len(), "take_next checked the length");
        // SAFETY: we hold the record (taken): nobody writes its payload
        // area, which holds `max_payload >= len` bytes.
        let src = unsafe { core::slice::from_raw_parts(self.ring.payload_ptr(held.seq), len) };
        buf[..len].copy_from_slice(src);
        self.finish(held, true)?;
        Ok((held.record_type, len))
    }

    fn take_waiting(
        &mut self,
        limit: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Held, RecvError> {
        let mut waiter = Waiter::with_timeout(wait, timeout);
        loop {
            match self.take_next(limit) {
                Err(RecvError::Empty) => {}
                other => return other,
            }
            if !waiter.spinning() {
                if let Some(fault) = self.ring.fault_slow() {
                    self.unusable = Some(fault);
                    return Err(RecvError::Unusable(fault));
                }
                self.reap_if_due();
                // A round that yields or sleeps is slow enough to look at
                // the tail and the stall timer every time: a stalled claim
                // is reclaimed within `reclaim_after` plus one round,
                // whatever the strategy (not after 64 rounds of sleeps).
                self.look_closely_next();
            }
            if waiter.timed_out() {
                return Err(RecvError::TimedOut);
            }
            if waiter.should_sleep() {
                // No producer wakes us for a claim that never commits:
                // sleep no longer than the stalled claim has left.
                let stall_left = self.stall.left(self.ring.reclaim_after_ns);
                let cap = stall_left.map_or(MAX_SLEEP, |left| left.min(MAX_SLEEP));
                self.sleep(waiter.sleep_budget(cap), stall_left.is_some());
                waiter.count_round();
            } else {
                waiter.wait();
            }
        }
    }

    /// Whether a take could succeed now (the head's record is committed, or
    /// records were given back).
    fn something_to_take(&self) -> bool {
        let ctl = self.ring.control();
        // SYNC POINT: Relaxed loads after the caller's SeqCst fence: the
        // Dekker partner is the producer's fence in `wake_sleepers`.
        if ctl.redelivery_hint.load(Ordering::Relaxed) != 0 {
            return true;
        }
        let h = ctl.head.load(Ordering::Relaxed);
        let seen = self.ring.header(h).stamp.load(Ordering::Relaxed);
        !matches!(
            self.ring.slot_state(h, seen),
            Ok(SlotState::Behind) | Ok(SlotState::At(queue_stamp::FREE | queue_stamp::WRITING))
        )
    }

    /// Sleeps on the queue's futex until a producer commits (or a record
    /// is given back), or `max` passes; `until_deadline` when no wake-up
    /// may come before it.
    fn sleep(&mut self, max: Duration, until_deadline: bool) {
        let ctl = self.ring.control();
        // SYNC POINT: Acquire pairs with the Release bump of `wake_seq` in
        // `QueueView::wake_sleepers`.
        let seen = ctl.wake_seq.load(Ordering::Acquire);
        let me = self.ring.consumer(self.slot);
        me.sleeping.store(1, Ordering::Relaxed);
        ctl.sleepers.fetch_add(1, Ordering::Relaxed);
        // SYNC POINT: Dekker pair with the SeqCst fence in `wake_sleepers`:
        // either the producer sees our count and wakes us, or we see its
        // commit below.
        fence(Ordering::SeqCst);
        counters::note_activity(&me.counters);
        if !self.something_to_take() && self.ring.fault().is_none() {
            counters::add(&me.counters.sleeps, 1);
            if until_deadline {
                futex_wait_until(&ctl.wake_seq, seen, max);
            } else {
                futex_wait(&ctl.wake_seq, seen, max);
            }
            if ctl.wake_seq.load(Ordering::Relaxed) != seen {
                counters::add(&me.counters.wakes, 1);
            }
        }
        self.ring.forget_sleeper(me);
    }

    /// Test hook: leaves the queue as a process killed now would (the slot
    /// and any record it holds stay as they are; the liveness lock and the
    /// handle's mapping go), without running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring
            .liveness
            .unlock(lock_slot::queue_consumer(self.slot));
        // Its view goes as a killed process's mapping and descriptor do
        // (nothing leaks, however many handles a test kills).
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; its view is moved
        // out exactly once.
        drop(unsafe { core::ptr::read(&this.ring) });
    }

    /// Test hook: the index of this consumer's slot.
    #[doc(hidden)]
    pub fn slot_for_test(&self) -> usize {
        self.slot
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // A record still held here was leaked (`mem::forget` of a
        // `Taken`): give it back, as a crash would.
        self.ring.give_back_all(self.slot);
        let c = self.ring.consumer(self.slot);
        self.ring.forget_sleeper(c);
        let word = c.state.load(Ordering::Relaxed);
        // SYNC POINT: Release pairs with a reaper's or the next owner's
        // Acquire load of the state word.
        c.state.store(
            participant::with_state(word, participant::FREE),
            Ordering::Release,
        );
        self.ring
            .liveness
            .unlock(lock_slot::queue_consumer(self.slot));
    }
}

/// A record a consumer took: its bytes in place, until [`Taken::ack`].
///
/// Dropping it without acknowledging gives it back to the queue: another
/// consumer (or this one) takes it again, flagged
/// [`Taken::redelivered`]. So a handler that panics, or returns early with
/// an error, loses nothing.
pub struct Taken<'a> {
    consumer: &'a mut Consumer,
    held: Held,
}

impl Taken<'_> {
    /// Record type set by the producer.
    pub fn record_type(&self) -> u16 {
        self.held.record_type
    }

    /// The record's sequence number.
    pub fn sequence(&self) -> u64 {
        self.held.seq
    }

    /// Whether the record was taken before, by a consumer that died
    /// holding it (or gave it back): it may have been handled already.
    pub fn redelivered(&self) -> bool {
        self.held.redelivered
    }

    /// Acknowledges the record: it is done, and its slot free for a
    /// producer. One compare-and-swap.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] if the slot no longer names this consumer
    /// (someone wrote the queue's memory who should not have).
    #[inline]
    pub fn ack(self) -> Result<(), RecvError> {
        let held = self.held;
        let consumer = into_consumer(self);
        consumer.finish(held, true)
    }

    /// Gives the record back to the queue, for any consumer to take again
    /// (flagged redelivered), as dropping it does.
    ///
    /// # Errors
    ///
    /// As [`Taken::ack`].
    pub fn give_back(self) -> Result<(), RecvError> {
        let held = self.held;
        let consumer = into_consumer(self);
        consumer.finish(held, false)
    }
}

/// Takes the consumer out of a `Taken` without running its `Drop`.
fn into_consumer<'a>(taken: Taken<'a>) -> &'a mut Consumer {
    let taken = core::mem::ManuallyDrop::new(taken);
    // SAFETY: `taken` is never used or dropped again; the reference is
    // moved out exactly once.
    unsafe { core::ptr::read(&taken.consumer) }
}

/// The records of a [`Consumer::take_batch`] run that `f` has not seen
/// yet: given back if the batch ends early (an error, or `f` panics), so
/// that a live consumer never sits on records it will not handle.
struct Run<'c, 'r> {
    consumer: &'c mut Consumer,
    held: &'r [Held],
    next: usize,
}

impl Drop for Run<'_, '_> {
    fn drop(&mut self) {
        for held in &self.held[self.next..] {
            let _ = self.consumer.finish(*held, false);
        }
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let held = self.held;
        let _ = self.consumer.finish(held, false);
    }
}

impl Deref for Taken<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &self.consumer.ring;
        // SAFETY: we hold the record (taken): no producer writes its slot until we acknowledge
        // it; the payload area holds `max_payload >= len` bytes.
        unsafe {
            core::slice::from_raw_parts(ring.payload_ptr(self.held.seq), self.held.len as usize)
        }
    }
}
