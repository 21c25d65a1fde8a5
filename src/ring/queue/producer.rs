//! The producer side of a work queue: claim a record, write it in place,
//! commit it.

use core::ops::{Deref, DerefMut};
use std::time::Duration;

use super::{ClaimError, QueueView, SlotState, LOOKS_PER_SLOW_CHECK, REAP_PERIOD_NS};
use crate::layout::{
    lock_slot, pack_record_header, participant, queue_stamp, Counters, MAX_SEQUENCE,
};
use crate::ring::broadcast::RegisterError;
use crate::ring::counters::{self, FullWait};
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{fence, monotonic_ns, spin_hint, Ordering};
use crate::wait::{WaitStrategy, Waiter};

/// One producer of a work queue: any number may claim and commit records
/// concurrently, each from its own process or thread.
///
/// Each committed record goes to exactly one consumer. A full queue (every
/// slot holds a record not yet acknowledged) makes [`Producer::try_claim`]
/// return [`ClaimError::Full`] and the blocking forms wait: records are
/// never dropped.
///
/// ```
/// use shmbus::ring::queue::{self, QueueConfig};
/// let queue = queue::heap(QueueConfig { slots: 8, ..QueueConfig::default() })?;
/// let mut orders = queue.producer()?;
/// let mut gateway = queue.consumer()?;
/// let mut claim = orders.try_claim(5)?;
/// claim.copy_from_slice(b"BUY 1");
/// claim.set_record_type(7);
/// claim.commit()?;
/// let order = gateway.try_take()?;
/// assert_eq!((order.record_type(), &order[..]), (7, &b"BUY 1"[..]));
/// order.ack()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer {
    pub(super) ring: QueueView,
    /// Index of our producer slot (the owner number in our stamps).
    slot: usize,
    committed: u64,
    reclaimed: u64,
    /// Claims made (wrapping): paces the cheap segment check.
    claims: u32,
    /// When this producer last looked for dead consumers (while full).
    last_reap_ns: u64,
    /// Sequences claimed by [`Producer::try_claim_batch`] and not used yet:
    /// `batch_next .. batch_end` (empty when equal). The tail is past them,
    /// so no other producer claims them; the next claims of this producer
    /// take them in order.
    batch_next: u64,
    batch_end: u64,
    /// Records staged ([`Claim::stage`]) since sleeping consumers were
    /// last woken: [`Producer::flush`] wakes them.
    staged: bool,
    /// Set once the segment is found unusable: every later claim fails.
    unusable: Option<crate::layout::SegmentFault>,
}

impl Producer {
    /// Takes a free producer slot (or the slot of a dead producer).
    pub(crate) fn register(ring: QueueView) -> Result<Self, RegisterError> {
        for j in 0..ring.max_producers {
            if !ring.liveness.try_lock(lock_slot::queue_producer(j)) {
                continue;
            }
            let p = ring.producer(j);
            let word = p.state.load(Ordering::Relaxed);
            if participant::state(word) != participant::FREE {
                // Its lock was free: the owner died. Take the slot over (a
                // claim it left is reclaimed by the consumers).
                ring.control()
                    .reaped_producers
                    .fetch_add(1, Ordering::Relaxed);
            }
            p.pid.store(std::process::id(), Ordering::Relaxed);
            counters::reset(&p.counters);
            // SYNC POINT: Release pairs with the Acquire load in
            // `QueueView::owner_inside`: a dead owner's claim is gone (it
            // cannot write any more).
            p.claimed.store(0, Ordering::Release);
            // SYNC POINT: Release, stronger than any reader needs (inspection
            // reads it Relaxed; a successor is ordered after us by the lock).
            p.state.store(
                participant::next_generation(word, participant::LIVE),
                Ordering::Release,
            );
            return Ok(Producer {
                ring,
                slot: j,
                committed: 0,
                reclaimed: 0,
                claims: 0,
                last_reap_ns: monotonic_ns(),
                batch_next: 0,
                batch_end: 0,
                staged: false,
                unusable: None,
            });
        }
        Err(RegisterError::NoFreeSlot {
            role: "producer",
            slots: ring.max_producers,
        })
    }

    /// Largest payload of one record.
    pub fn max_payload(&self) -> u32 {
        self.ring.max_payload
    }

    /// The queue's positions and counters now.
    pub fn counters(&self) -> super::QueueCounters {
        self.ring.counters()
    }

    /// Records this producer committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Claims of this producer that a consumer reclaimed (each one a
    /// record not delivered, reported by its commit).
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed
    }

    fn check_len(&self, len: usize) -> Result<(), ClaimError> {
        if len > self.ring.max_payload as usize {
            return Err(ClaimError::TooLarge {
                len,
                max: self.ring.max_payload,
            });
        }
        Ok(())
    }

    fn corrupt(kind: CorruptionKind, position: u64) -> ClaimError {
        ClaimError::Corrupt(Corruption { kind, position })
    }

    /// Records that the queue is unusable; every later claim says so.
    #[cold]
    fn set_unusable(&mut self, fault: crate::layout::SegmentFault) -> ClaimError {
        self.unusable = Some(fault);
        ClaimError::Unusable(fault)
    }

    /// The checks every claim starts with: a segment found unusable, and
    /// (every [`LOOKS_PER_SLOW_CHECK`] claims) the cheap segment check.
    #[inline(always)]
    fn check_usable(&mut self) -> Result<(), ClaimError> {
        if let Some(fault) = self.unusable {
            return Err(ClaimError::Unusable(fault));
        }
        self.claims = self.claims.wrapping_add(1);
        if self.claims % LOOKS_PER_SLOW_CHECK == 0 {
            if let Some(fault) = self.ring.fault() {
                return Err(self.set_unusable(fault));
            }
        }
        Ok(())
    }

    /// Claims up to `max` (at least 1) consecutive sequences whose slots
    /// are free, with one compare-and-swap of the tail. Returns the first,
    /// how many, and the stamp the first one's slot was seen with.
    #[inline(always)]
    fn claim_sequences(&mut self, max: u64) -> Result<(u64, u64, u64), ClaimError> {
        debug_assert!(max >= 1 && max <= self.ring.slots);
        let ctl = self.ring.control();
        let mut retry = false;
        loop {
            // Lost a race, or read a stale tail: pause before looking again
            // (under loom, let the other threads run).
            if core::mem::replace(&mut retry, true) {
                spin_hint();
            }
            // SYNC POINT: Relaxed: the tail only names a candidate; the
            // slot's stamp, loaded with Acquire below, is what orders us.
            let t = ctl.tail.load(Ordering::Relaxed);
            if t > MAX_SEQUENCE {
                return Err(Self::corrupt(
                    CorruptionKind::PositionTooLarge { value: t },
                    t,
                ));
            }
            let h = self.ring.header(t);
            // SYNC POINT: Acquire pairs with the Release acknowledgement (or
            // pass of a skip) of the slot's previous lap in
            // `Taken::finish` / `Consumer::pass_skip`: the consumer's reads
            // of the old record happen before our writes.
            let seen = h.stamp.load(Ordering::Acquire);
            let state = self.ring.slot_state(t, seen).map_err(ClaimError::Corrupt)?;
            match state {
                SlotState::At(queue_stamp::FREE) => {}
                SlotState::Behind => {
                    // The previous lap is not acknowledged yet: full, unless
                    // the tail moved meanwhile.
                    // SYNC POINT: Relaxed: only compared.
                    if ctl.tail.load(Ordering::Relaxed) == t {
                        return Err(ClaimError::Full);
                    }
                    continue;
                }
                SlotState::At(_) | SlotState::Ahead => {
                    // Another producer claimed `t` already (our tail was
                    // stale), or the slot is past it.
                    // SYNC POINT: Relaxed: only compared.
                    if ctl.tail.load(Ordering::Relaxed) == t {
                        return Err(Self::corrupt(CorruptionKind::BadStamp { stamp: seen }, t));
                    }
                    continue;
                }
            }
            // A batch: as many of the following slots as are free too
            // (each at its own lap; the tail CAS below says nobody claimed
            // them meanwhile). Nothing past the largest sequence.
            let mut n = 1;
            let max = max.min(MAX_SEQUENCE + 1 - t);
            while n < max {
                // SYNC POINT: Acquire, as the load of `seen` above, for
                // each slot of the batch.
                let next = self.ring.header(t + n).stamp.load(Ordering::Acquire);
                if self.ring.slot_state(t + n, next) != Ok(SlotState::At(queue_stamp::FREE)) {
                    break;
                }
                n += 1;
            }
            // SYNC POINT: AcqRel on the tail: the claim of `t .. t + n` is
            // ours alone (an RMW fact); no data is published through the
            // tail.
            if ctl
                .tail
                .compare_exchange_weak(t, t + n, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            return Ok((t, n, seen));
        }
    }

    /// Marks the slot of `t`, a sequence this producer claimed, "writing"
    /// as ours; its stamp was seen as `seen` (free at `t`'s lap). Returns
    /// false if `t` is lost: a consumer reclaimed it since (we stalled; it
    /// counted the skip), or the slot's previous claimer may still be
    /// writing there and we gave `t` up as a skip.
    #[inline(always)]
    fn mark(&mut self, t: u64, seen: u64) -> bool {
        let h = self.ring.header(t);
        let me = self.ring.producer(self.slot);
        // SYNC POINT: Release, announced before we mark the slot: pairs
        // with the Acquire load in `QueueView::owner_inside`, so that a
        // producer reading this value (rather than the 0 that ended our
        // previous claim) sees our writes to that claim's slot too. Our
        // Release CAS of the stamp just below publishes it to whoever
        // reclaims this claim (its CAS reads from ours) and whoever reuses
        // the slot after that (see `QueueView::reclaim`).
        me.claimed.store(t + 1, Ordering::Release);
        let lap = self.ring.lap(t);
        let writing = queue_stamp::pack(lap, self.slot as u32, queue_stamp::WRITING, 0);
        // SYNC POINT: AcqRel, the claim of the slot; it fails if a
        // consumer reclaimed `t` since we saw it free (we stalled).
        // Release publishes `claimed` to a reclaimer whose CAS reads
        // from this one; Acquire as the load of `seen` in
        // `claim_sequences` (or `next_sequence`).
        if h.stamp
            .compare_exchange(seen, writing, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // SYNC POINT: Release, as in `Claim::finish`: we wrote nothing.
            me.claimed.store(0, Ordering::Release);
            return false;
        }
        // SYNC POINT: the writer's half of a seqlock, pairing with the
        // Acquire fence of the inspector's re-check of the stamp after
        // a racy copy (`inspect::queue`, `still_held`): a copy that read
        // any byte we write from here on sees the stamp moved. Free on
        // x86-64 (a compiler barrier).
        fence(Ordering::Release);
        if queue_stamp::flags(seen) & queue_stamp::SUSPECT != 0
            && self.ring.owner_inside(t, self.slot)
        {
            // The claimer of an earlier lap may still be writing here:
            // give `t` up as a skip (consumers pass it) and claim again.
            let given_up = queue_stamp::pack(lap, 0, queue_stamp::SKIPPED, queue_stamp::SUSPECT);
            // SYNC POINT: Release pairs with the consumer's Acquire load
            // that passes the skip; nothing was written. SeqCst for the
            // sleeper check in `wake_sleepers`.
            let _ =
                h.stamp
                    .compare_exchange(writing, given_up, Ordering::SeqCst, Ordering::Relaxed);
            me.claimed.store(0, Ordering::Release);
            self.ring.wake_sleepers();
            return false;
        }
        true
    }

    /// Claims the next sequence whose slot is free (the next one of a
    /// batch, if one is left), and marks the slot "writing" as ours.
    /// Returns the sequence.
    #[inline(always)]
    fn next_sequence(&mut self) -> Result<u64, ClaimError> {
        self.check_usable()?;
        let mut retry = false;
        loop {
            if self.batch_next < self.batch_end {
                let t = self.batch_next;
                self.batch_next += 1;
                // SYNC POINT: Acquire, as in `claim_sequences`: this slot
                // was seen free there, but a consumer may have reclaimed
                // `t` since (we stalled), which the CAS in `mark` needs to
                // see fail.
                let seen = self.ring.header(t).stamp.load(Ordering::Acquire);
                if self.ring.slot_state(t, seen) == Ok(SlotState::At(queue_stamp::FREE))
                    && self.mark(t, seen)
                {
                    return Ok(t);
                }
                continue;
            }
            // Lost the slot we claimed: pause before claiming again.
            if core::mem::replace(&mut retry, true) {
                spin_hint();
            }
            let (t, _, seen) = self.claim_sequences(1)?;
            if self.mark(t, seen) {
                return Ok(t);
            }
        }
    }

    fn claim_at(&mut self, seq: u64, len: usize) -> Claim<'_> {
        debug_assert!(len <= self.ring.max_payload as usize);
        self.ring.note(seq, len, true);
        Claim {
            producer: self,
            seq,
            len,
            record_type: 0,
        }
    }

    /// Claims the next record without waiting.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Full`], [`ClaimError::TooLarge`],
    /// [`ClaimError::Corrupt`] or [`ClaimError::Unusable`].
    #[inline]
    pub fn try_claim(&mut self, len: usize) -> Result<Claim<'_>, ClaimError> {
        self.check_len(len)?;
        let seq = match self.next_sequence() {
            Ok(seq) => seq,
            Err(e) => {
                if e == ClaimError::Full {
                    counters::count_full(self.own_counters());
                }
                return Err(e);
            }
        };
        Ok(self.claim_at(seq, len))
    }

    /// This producer's counters (its own line: see [`counters`]).
    fn own_counters(&self) -> &Counters {
        &self.ring.producer(self.slot).counters
    }

    /// Claims up to `max` consecutive sequences at once, with one
    /// compare-and-swap of the shared tail, for this producer's next
    /// claims: each later claim ([`Producer::try_claim`], a send, a
    /// blocking claim) takes the next of them without touching the tail.
    /// Returns how many it claimed: at least 1, fewer than `max` when
    /// fewer slots are free (and never more than the queue's slots).
    ///
    /// Write each record and [`Claim::stage`] it (committed, visible to
    /// consumers that poll), then [`Producer::flush`] once: it wakes
    /// sleeping consumers with one wake-up check for the whole batch, and gives up
    /// the sequences left unused as skips, which consumers pass. A record
    /// committed with [`Claim::commit`] instead wakes them at once.
    ///
    /// Until they are used or flushed, the claimed sequences hold the
    /// consumers back (they take in sequence order), as a claim being
    /// written does: fill them without delay, and flush. A producer that
    /// dies (or stalls past `reclaim_after`) with sequences claimed
    /// leaves one counted skip for each it had not committed, reclaimed
    /// together after one `reclaim_after`.
    ///
    /// If sequences claimed by an earlier call are still unused, claims
    /// nothing and returns how many are left.
    ///
    /// ```
    /// use shmbus::ring::queue::{self, QueueConfig};
    /// let queue = queue::heap(QueueConfig { slots: 8, ..QueueConfig::default() })?;
    /// let mut strategy = queue.producer()?;
    /// let mut gateway = queue.consumer()?;
    /// let basket: [&[u8]; 3] = [b"BUY 1", b"BUY 2", b"SELL 3"];
    /// let n = strategy.try_claim_batch(basket.len())?;
    /// assert_eq!(n, 3);
    /// for order in &basket[..n] {
    ///     let mut claim = strategy.try_claim(order.len())?; // no tail CAS
    ///     claim.copy_from_slice(order);
    ///     claim.stage()?;
    /// }
    /// strategy.flush(); // one wake-up check for the three
    /// let mut got = Vec::new();
    /// while let Ok(order) = gateway.try_take() {
    ///     got.push(order.to_vec());
    ///     order.ack()?;
    /// }
    /// assert_eq!(got, basket);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClaimError::Full`] (no slot free: nothing claimed),
    /// [`ClaimError::Corrupt`] or [`ClaimError::Unusable`].
    pub fn try_claim_batch(&mut self, max: usize) -> Result<usize, ClaimError> {
        let left = self.batch_end - self.batch_next;
        if left > 0 || max == 0 {
            return Ok(left as usize);
        }
        self.check_usable()?;
        let max = (max as u64).min(self.ring.slots);
        let (t, n, _) = self.claim_sequences(max)?;
        self.batch_next = t;
        self.batch_end = t + n;
        Ok(n as usize)
    }

    /// Wakes the consumers asleep on the queue if records were staged
    /// ([`Claim::stage`]) since they were last woken, and gives up the
    /// sequences of [`Producer::try_claim_batch`] left unused, as skips
    /// that consumers pass (no record is lost: none was written there).
    /// One wake-up check when there is anything to do. Dropping
    /// the producer flushes it.
    pub fn flush(&mut self) {
        let mut wake = core::mem::take(&mut self.staged);
        while self.batch_next < self.batch_end {
            let t = self.batch_next;
            self.batch_next += 1;
            let h = self.ring.header(t);
            // SYNC POINT: Relaxed: we wrote nothing in the slot; the CAS
            // below fails if a consumer reclaimed `t` meanwhile.
            let seen = h.stamp.load(Ordering::Relaxed);
            if self.ring.slot_state(t, seen) != Ok(SlotState::At(queue_stamp::FREE)) {
                continue;
            }
            // A suspect slot stays suspect: the claimer of an earlier lap
            // may still be writing there (see `mark`).
            let skip = queue_stamp::pack(
                self.ring.lap(t),
                0,
                queue_stamp::SKIPPED,
                queue_stamp::flags(seen) & queue_stamp::SUSPECT,
            );
            // SYNC POINT: Release pairs with the consumer's Acquire load
            // that passes the skip (`Consumer::take_next`); nothing was
            // written, so nothing else is published. SeqCst for the sleeper
            // check in `wake_sleepers` below.
            if h.stamp
                .compare_exchange(seen, skip, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                wake = true;
            }
        }
        if wake {
            self.ring.wake_sleepers();
        }
    }

    /// Claims the next record, waiting with `wait` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`ClaimError::CannotSleep`] for [`WaitStrategy::Blocking`] (nothing
    /// wakes a waiting producer), or as [`Producer::try_claim`] but never
    /// `Full`.
    pub fn claim_blocking(
        &mut self,
        len: usize,
        wait: WaitStrategy,
    ) -> Result<Claim<'_>, ClaimError> {
        self.claim_timeout(len, wait, Duration::MAX)
    }

    /// As [`Producer::claim_blocking`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`ClaimError::TimedOut`], or as [`Producer::claim_blocking`].
    pub fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Claim<'_>, ClaimError> {
        if matches!(wait, WaitStrategy::Blocking { .. }) {
            return Err(ClaimError::CannotSleep);
        }
        self.check_len(len)?;
        let mut waiter = Waiter::with_timeout(wait, timeout);
        let mut full = FullWait::default();
        let seq = loop {
            match self.next_sequence() {
                Err(ClaimError::Full) => {}
                other => break other,
            }
            full.found_full(self.own_counters(), &waiter);
            if !waiter.spinning() {
                if let Some(fault) = self.ring.fault_slow() {
                    break Err(self.set_unusable(fault));
                }
                self.reap_if_due();
            }
            if waiter.timed_out() {
                break Err(ClaimError::TimedOut);
            }
            waiter.wait();
        };
        full.end(self.own_counters());
        Ok(self.claim_at(seq?, len))
    }

    /// While full: now and then, give back the records of consumers that
    /// died holding them (they may be what fills the queue).
    fn reap_if_due(&mut self) {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_reap_ns) >= REAP_PERIOD_NS {
            self.last_reap_ns = now;
            self.ring.reap_dead_consumers(None);
        }
    }

    /// Copies `payload` into a new record and commits it without waiting.
    /// Returns its sequence number.
    ///
    /// # Errors
    ///
    /// As [`Producer::try_claim`] and [`Claim::commit`].
    pub fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<u64, ClaimError> {
        let mut claim = self.try_claim(payload.len())?;
        claim.copy_from_slice(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Copies `payload` into a new record and commits it, waiting while the
    /// queue is full.
    ///
    /// # Errors
    ///
    /// As [`Producer::claim_blocking`] and [`Claim::commit`].
    pub fn send_blocking(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
    ) -> Result<u64, ClaimError> {
        self.send_timeout(record_type, payload, wait, Duration::MAX)
    }

    /// Copies `payload` into a new record and commits it, waiting up to
    /// `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`Producer::claim_timeout`] and [`Claim::commit`].
    pub fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<u64, ClaimError> {
        let mut claim = self.claim_timeout(payload.len(), wait, timeout)?;
        claim.copy_from_slice(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Test hook: leaves the queue as a process killed now would (the slot
    /// stays as it is; the liveness lock and the handle's mapping go),
    /// without running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring
            .liveness
            .unlock(lock_slot::queue_producer(self.slot));
        // Its view goes as a killed process's mapping and descriptor do
        // (nothing leaks, however many handles a test kills).
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; its view is moved
        // out exactly once.
        drop(unsafe { core::ptr::read(&this.ring) });
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Staged records need their wake-up, and unused claimed sequences
        // must not hold the consumers up until they are reclaimed.
        self.flush();
        let p = self.ring.producer(self.slot);
        let word = p.state.load(Ordering::Relaxed);
        // SYNC POINT: Release, as in `Producer::register`.
        p.state.store(
            participant::with_state(word, participant::FREE),
            Ordering::Release,
        );
        self.ring
            .liveness
            .unlock(lock_slot::queue_producer(self.slot));
    }
}

/// A claimed record: write the payload in place through it, then
/// [`Claim::commit`]. A claim dropped uncommitted becomes a skip that
/// consumers pass, so the queue never stalls on it.
pub struct Claim<'a> {
    producer: &'a mut Producer,
    seq: u64,
    len: usize,
    record_type: u16,
}

impl Claim<'_> {
    /// Sets the record type.
    pub fn set_record_type(&mut self, record_type: u16) -> &mut Self {
        self.record_type = record_type;
        self
    }

    /// The record's sequence number.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Shortens the record to its first `len` bytes (what was written),
    /// for a claim made at the largest size a message may need.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Publishes the slot as `state`, waking sleeping consumers if `wake`
    /// (else leaving that to [`Producer::flush`]); false if a consumer
    /// reclaimed it.
    #[inline(always)]
    fn finish(&mut self, state: u64, wake: bool) -> bool {
        let ring = &self.producer.ring;
        debug_assert!(self.len <= ring.max_payload as usize);
        // Loom: the claimer's writes to the slot last until here.
        ring.note(self.seq, self.len, true);
        let h = ring.header(self.seq);
        if state == queue_stamp::COMMITTED {
            // If the claim was reclaimed nobody reads this word: consumers
            // pass a skip, and the next lap waits for us (`claimed`).
            h.word.store(
                pack_record_header(self.len as u32, self.record_type, 0),
                Ordering::Relaxed,
            );
        }
        let lap = ring.lap(self.seq);
        let writing = queue_stamp::pack(lap, self.producer.slot as u32, queue_stamp::WRITING, 0);
        // SYNC POINT: the commit; its Release half pairs with the consumers'
        // Acquire loads of the stamp (`Consumer::take_next`): header and
        // payload are visible once they see it. SeqCst: the first half of
        // the sleeper check in `wake_sleepers`. It fails if
        // `QueueView::reclaim` took the claim.
        let published = h
            .stamp
            .compare_exchange(
                writing,
                queue_stamp::pack(lap, 0, state, 0),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok();
        // SYNC POINT: Release pairs with the Acquire load in
        // `QueueView::owner_inside`: all our writes to the slot happen
        // before a later lap's producer, seeing this, writes it.
        ring.producer(self.producer.slot)
            .claimed
            .store(0, Ordering::Release);
        if published {
            if wake {
                self.producer.staged = false;
                if self.producer.ring.wake_sleepers() {
                    let c = &ring.producer(self.producer.slot).counters;
                    counters::add(&c.wakes, 1);
                }
            } else {
                self.producer.staged = true;
            }
        }
        published
    }

    /// Commits the record: one compare-and-swap of its stamp, then the
    /// wake-up check (a load of the sleeper count, and a system call only
    /// if a consumer sleeps). Returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Reclaimed`] if this claim stayed uncommitted past the
    /// queue's `reclaim_after` and a consumer reclaimed it: the record was
    /// not delivered, and nothing it wrote reached anyone. Send it again.
    #[inline]
    pub fn commit(self) -> Result<u64, ClaimError> {
        self.publish(true)
    }

    /// Commits the record as [`Claim::commit`] does, but leaves waking
    /// sleeping consumers to [`Producer::flush`], so that a batch pays one
    /// wake-up check, not one per record. Returns its sequence.
    ///
    /// Unlike the SPSC ring's stage, the record is committed at once:
    /// consumers that poll (spin, yield, back off) take it before the
    /// flush. Each record of a work queue is committed by its own
    /// compare-and-swap whatever is batched, so holding it back would
    /// save nothing and only delay it. A consumer asleep on the futex
    /// takes it after the flush (or within its longest sleep, 20 ms, if
    /// the flush never comes).
    ///
    /// # Errors
    ///
    /// As [`Claim::commit`].
    #[inline]
    pub fn stage(self) -> Result<u64, ClaimError> {
        self.publish(false)
    }

    #[inline(always)]
    fn publish(mut self, wake: bool) -> Result<u64, ClaimError> {
        let published = self.finish(queue_stamp::COMMITTED, wake);
        let seq = self.seq;
        let c = &self.producer.ring.producer(self.producer.slot).counters;
        let result = if published {
            self.producer.committed += 1;
            counters::count_record(c, self.len);
            Ok(seq)
        } else {
            self.producer.reclaimed += 1;
            counters::add(&c.lost_claims, 1);
            Err(ClaimError::Reclaimed { sequence: seq })
        };
        core::mem::forget(self);
        result
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Aborted: a skip, so nobody waits on this slot.
        self.finish(queue_stamp::SKIPPED, true);
    }
}

impl Deref for Claim<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot's payload area holds `max_payload >= len` bytes; nobody else touches it
        // under our "writing" stamp, nor reuses it (even reclaimed) while we announce `claimed`.
        unsafe { core::slice::from_raw_parts(self.producer.ring.payload_ptr(self.seq), self.len) }
    }
}

impl DerefMut for Claim<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only slice.
        unsafe {
            core::slice::from_raw_parts_mut(self.producer.ring.payload_ptr(self.seq), self.len)
        }
    }
}
