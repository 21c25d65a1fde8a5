//! The validated view every queue handle runs on: geometry, liveness, the
//! participant slots, and the machinery producers and consumers share
//! (reclaiming stalled claims, giving back a dead consumer's records,
//! waking sleepers).

use core::ptr::NonNull;

use super::QueueConfig;
use crate::layout::{
    lock_slot, participant, queue_stamp, QueueConsumerSlot, QueueControl, QueueProducerSlot,
    RecordSlotHeader, SegmentFault,
};
pub(crate) use crate::ring::liveness::Liveness;
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{
    fence_for_seqcst_accesses, futex_wake_all, monotonic_ns, AccessTracker, Ordering,
};

/// Everything a handle knows about its queue, read once and validated.
pub(crate) struct QueueView {
    pub(super) control: NonNull<QueueControl>,
    pub(super) consumers: NonNull<QueueConsumerSlot>,
    pub(super) producers: NonNull<QueueProducerSlot>,
    pub(super) headers: *const u8,
    pub(super) header_stride: usize,
    pub(super) payloads: *mut u8,
    pub(super) payload_stride: usize,
    pub(super) tracker: *const AccessTracker,
    pub(super) slots: u64,
    pub(super) mask: u64,
    /// log2(slots): a sequence's lap is `seq >> shift`.
    pub(super) shift: u32,
    pub(super) max_payload: u32,
    pub(super) max_producers: usize,
    pub(super) max_consumers: usize,
    pub(super) reclaim_after_ns: u64,
    pub(super) liveness: Liveness,
    /// When [`QueueView::fault_slow`] last asked the file system.
    pub(super) last_fault_check_ns: core::cell::Cell<u64>,
}

// SAFETY: the view only points into memory kept alive by `liveness` (a
// mapping or an Arc), and every shared access goes through atomics or the
// queue protocol (a record's payload belongs to one participant at a time).
unsafe impl Send for QueueView {}

/// The layout facts a view is built from.
pub(crate) struct ViewParts {
    pub(crate) control: NonNull<QueueControl>,
    pub(crate) consumers: NonNull<QueueConsumerSlot>,
    pub(crate) producers: NonNull<QueueProducerSlot>,
    pub(crate) headers: *const u8,
    pub(crate) header_stride: usize,
    pub(crate) payloads: *mut u8,
    pub(crate) payload_stride: usize,
    pub(crate) tracker: *const AccessTracker,
    pub(crate) config: QueueConfig,
    pub(crate) liveness: Liveness,
}

/// A work queue's positions and counters at one look (see
/// [`Producer::counters`](super::Producer::counters) and
/// [`Consumer::counters`](super::Consumer::counters)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Next sequence to claim: records `0 .. tail` were claimed.
    pub tail: u64,
    /// Next sequence to take (it may lag the records taken a little).
    pub head: u64,
    /// Records given back after their consumer died holding them or gave
    /// them back.
    pub redelivered: u64,
    /// Claims reclaimed after `reclaim_after` (each one a counted skip).
    pub reclaimed_claims: u64,
    /// Consumer slots freed after their owner died.
    pub reaped_consumers: u64,
    /// Producer slots taken over after their owner died.
    pub reaped_producers: u64,
}

/// A record slot's stamp as the queue protocol reads it, for one sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// The slot holds the previous lap still (not acknowledged yet).
    Behind,
    /// At the sequence's lap, in `state` (a [`queue_stamp`] state).
    At(u64),
    /// The slot is past the sequence: it was taken and acknowledged.
    Ahead,
}

impl QueueView {
    /// # Safety
    ///
    /// Every pointer in `parts` is valid for the sizes its config implies
    /// for as long as `parts.liveness` lives, and the control block holds
    /// `parts.config`.
    pub(crate) unsafe fn new(parts: ViewParts) -> Self {
        let c = parts.config;
        QueueView {
            control: parts.control,
            consumers: parts.consumers,
            producers: parts.producers,
            headers: parts.headers,
            header_stride: parts.header_stride,
            payloads: parts.payloads,
            payload_stride: parts.payload_stride,
            tracker: parts.tracker,
            slots: u64::from(c.slots),
            mask: u64::from(c.slots) - 1,
            shift: c.slots.trailing_zeros(),
            max_payload: c.max_payload,
            max_producers: c.max_producers as usize,
            max_consumers: c.max_consumers as usize,
            reclaim_after_ns: c.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64,
            liveness: parts.liveness,
            last_fault_check_ns: core::cell::Cell::new(0),
        }
    }

    /// The mapped segment under the view (`None` for an in-process queue).
    #[cfg(not(shmbus_loom))]
    pub(crate) fn segment(&self) -> Option<&crate::segment::Segment> {
        match &self.liveness {
            Liveness::Mapped { segment, .. } => Some(segment),
            Liveness::Heap(_) => None,
        }
    }

    pub(crate) fn control(&self) -> &QueueControl {
        // SAFETY: `new`'s contract.
        unsafe { self.control.as_ref() }
    }

    pub(crate) fn consumer(&self, i: usize) -> &QueueConsumerSlot {
        debug_assert!(i < self.max_consumers);
        // SAFETY: `i < max_consumers`, the length of the slot array.
        unsafe { &*self.consumers.as_ptr().add(i) }
    }

    pub(crate) fn producer(&self, j: usize) -> &QueueProducerSlot {
        debug_assert!(j < self.max_producers);
        // SAFETY: `j < max_producers`, the length of the slot array.
        unsafe { &*self.producers.as_ptr().add(j) }
    }

    /// The header of the record slot of `seq`.
    #[inline(always)]
    pub(crate) fn header(&self, seq: u64) -> &RecordSlotHeader {
        let i = (seq & self.mask) as usize;
        // SAFETY: `i < slots`; headers are `header_stride` apart and aligned.
        let h = unsafe { self.headers.add(i * self.header_stride) as *const RecordSlotHeader };
        debug_assert!(h.is_aligned(), "record slot header at {h:p} is misaligned");
        // SAFETY: as above: inside the slot array, aligned, alive as long as
        // the view.
        unsafe { &*h }
    }

    /// The lap of `seq`, as a stamp holds it.
    #[inline(always)]
    pub(super) fn lap(&self, seq: u64) -> u64 {
        (seq >> self.shift) & queue_stamp::LAP_MASK
    }

    /// Where `stamp` stands relative to `seq`, or the corruption it is.
    #[inline(always)]
    pub(crate) fn slot_state(&self, seq: u64, stamp: u64) -> Result<SlotState, Corruption> {
        let bad = Corruption {
            kind: CorruptionKind::BadStamp { stamp },
            position: seq,
        };
        if queue_stamp::is_garbage(stamp) {
            return Err(bad);
        }
        match queue_stamp::laps_ahead(queue_stamp::lap(stamp), self.lap(seq)) {
            0 => Ok(SlotState::At(queue_stamp::state(stamp))),
            -1 => Ok(SlotState::Behind),
            // A later lap: callers check `seq` against the tail before they
            // trust this (a slot cannot be ahead of a sequence not claimed).
            d if d > 0 => Ok(SlotState::Ahead),
            _ => Err(bad),
        }
    }

    /// Offset of `seq`'s payload in the payload area.
    #[inline(always)]
    pub(super) fn payload_offset(&self, seq: u64) -> usize {
        (seq & self.mask) as usize * self.payload_stride
    }

    /// The payload area of `seq`'s slot, `len <= max_payload` bytes.
    ///
    /// # Safety
    ///
    /// The caller holds the record (writing it, or taken), so no other
    /// participant touches these bytes until it lets go.
    #[inline(always)]
    pub(super) unsafe fn payload_ptr(&self, seq: u64) -> *mut u8 {
        // SAFETY: the offset is inside the payload area (`new`'s contract).
        unsafe { self.payloads.add(self.payload_offset(seq)) }
    }

    #[inline(always)]
    pub(super) fn tracker(&self) -> &AccessTracker {
        // SAFETY: `new`'s contract.
        unsafe { &*self.tracker }
    }

    /// Loom tracking of a record's payload bytes (a no-op otherwise).
    #[inline(always)]
    pub(super) fn note(&self, seq: u64, len: usize, write: bool) {
        let off = self.payload_offset(seq);
        if write {
            self.tracker().write(off, len.max(1));
        } else {
            self.tracker().read(off, len.max(1));
        }
    }

    /// Turns the claim of `seq` (its slot seen as `seen`: free or being
    /// written at `seq`'s lap) into a suspect skip, counted. The claimer's
    /// commit then fails with [`ClaimError::Reclaimed`](super::ClaimError::Reclaimed).
    /// Returns whether the slot no longer holds an unfinished claim of `seq`.
    pub(super) fn reclaim(&self, seq: u64, seen: u64) -> bool {
        let lap = self.lap(seq);
        debug_assert!(matches!(
            queue_stamp::state(seen),
            queue_stamp::FREE | queue_stamp::WRITING
        ));
        // SYNC POINT: SeqCst (AcqRel is what it relies on). It reads from
        // the claimer's Release "writing" CAS (or the acknowledgement
        // before it), so the claimer's store of `claimed`, made before that
        // CAS, happens before whoever later reads this skip (through the
        // Release pass of the skip and the Acquire load of the next lap's
        // producer): that producer sees `claimed` in `owner_inside` while
        // the claimer may still be writing.
        let done = self
            .header(seq)
            .stamp
            .compare_exchange(
                seen,
                queue_stamp::pack(lap, 0, queue_stamp::SKIPPED, queue_stamp::SUSPECT),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok();
        if done {
            self.control()
                .reclaimed_claims
                .fetch_add(1, Ordering::Relaxed);
            return true;
        }
        // Someone moved the slot on: committed, skipped or reclaimed.
        // SYNC POINT: Relaxed: the caller looks at the slot again with
        // Acquire before it uses anything in it.
        let now = self.header(seq).stamp.load(Ordering::Relaxed);
        now != seen
    }

    /// Whether a live producer other than `me` has a claim of an earlier
    /// lap of `seq`'s slot, and so may still write into it. Asked before
    /// writing into a slot whose previous claim was reclaimed (a suspect
    /// free slot): the only case where a claimer can still be inside.
    #[cold]
    pub(super) fn owner_inside(&self, seq: u64, me: usize) -> bool {
        // SYNC POINT: no fence is needed: the reclaim we read through the
        // suspect stamp (Acquire, in `Producer::claim_sequences` or
        // `next_sequence`) happens after the claimer's store of `claimed`
        // (see `reclaim`).
        let index = seq & self.mask;
        (0..self.max_producers).any(|j| {
            if j == me {
                return false;
            }
            // SYNC POINT: pairs with the owner's Release stores of `claimed`
            // (its claim and the end of it in `Claim::finish`): if we see it
            // cleared, its writes to the slot happen before ours.
            let claimed = self.producer(j).claimed.load(Ordering::Acquire);
            let Some(c) = claimed.checked_sub(1) else {
                return false;
            };
            c & self.mask == index
                && c < seq
                && self.liveness.held_by_other(lock_slot::queue_producer(j))
        })
    }

    /// Gives back every record consumer slot `i` holds (its owner died or
    /// left without acknowledging them): each becomes committed again,
    /// flagged redelivered, for any consumer to take. The caller holds
    /// slot `i`'s liveness lock, so no new owner takes records as `i`
    /// meanwhile. Returns how many it gave back.
    pub(super) fn give_back_all(&self, i: usize) -> u64 {
        let mut given = 0;
        for k in 0..self.slots {
            let h = self.header(k);
            // SYNC POINT: Acquire pairs with the owner's AcqRel take CAS:
            // its lap and flags are read from the value it wrote.
            let seen = h.stamp.load(Ordering::Acquire);
            if queue_stamp::state(seen) != queue_stamp::TAKEN
                || queue_stamp::owner(seen) != i as u32
                || queue_stamp::is_garbage(seen)
            {
                continue;
            }
            let back = queue_stamp::pack(
                queue_stamp::lap(seen),
                0,
                queue_stamp::COMMITTED,
                queue_stamp::REDELIVERED,
            );
            // SYNC POINT: Release: a consumer's Acquire take CAS of this
            // stamp sees the record as its producer committed it (the chain
            // of RMWs on the stamp carries the producer's Release commit).
            if h.stamp
                .compare_exchange(seen, back, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                given += 1;
            }
        }
        if given > 0 {
            let ctl = self.control();
            ctl.redelivered.fetch_add(given, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the Acquire load of the hint in
            // `Consumer::take_given_back`: the stamps given back above are
            // visible to a consumer that sees the hint. SeqCst: the first
            // half of the sleeper check in `wake_sleepers`.
            ctl.redelivery_hint.fetch_add(1, Ordering::SeqCst);
            self.wake_sleepers();
        }
        given
    }

    /// Frees the consumer slots whose owner is gone (its liveness lock is
    /// free while the slot is marked in use), giving back the records each
    /// held first. `me` is the caller's own consumer slot, if any. Returns
    /// how many it freed.
    pub(super) fn reap_dead_consumers(&self, me: Option<usize>) -> u64 {
        let mut reaped = 0;
        for i in 0..self.max_consumers {
            if Some(i) == me {
                continue;
            }
            let c = self.consumer(i);
            // SYNC POINT: Relaxed: a hint only; the state is read again
            // under the slot's lock below.
            let state = participant::state(c.state.load(Ordering::Relaxed));
            if state != participant::LIVE && state != participant::CLAIMING {
                continue;
            }
            if !self.liveness.try_lock(lock_slot::queue_consumer(i)) {
                continue;
            }
            if self.free_dead_consumer(i) {
                reaped += 1;
            }
            self.liveness.unlock(lock_slot::queue_consumer(i));
        }
        reaped
    }

    /// With slot `i`'s lock held: if the slot is still marked in use, its
    /// owner died; gives its records back and frees the slot. Returns
    /// whether it did.
    pub(super) fn free_dead_consumer(&self, i: usize) -> bool {
        let c = self.consumer(i);
        // SYNC POINT: Acquire pairs with the Release state updates of the
        // slot's holders (registration, drop, an earlier reaper): what the
        // dead owner did before marking itself is visible.
        let word = c.state.load(Ordering::Acquire);
        let state = participant::state(word);
        if state != participant::LIVE && state != participant::CLAIMING {
            return false;
        }
        self.give_back_all(i);
        self.forget_sleeper(c);
        // SYNC POINT: Release pairs with the next registration's Acquire
        // load of the state word: the give-backs above come first.
        c.state.store(
            participant::with_state(word, participant::FREE),
            Ordering::Release,
        );
        self.control()
            .reaped_consumers
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Takes a dead (or waking) consumer out of the sleeper count, once.
    pub(super) fn forget_sleeper(&self, c: &QueueConsumerSlot) {
        // SYNC POINT: AcqRel swap: whoever turns the flag from 1 to 0 (the
        // sleeper itself, a reaper, a registration) decrements, exactly one
        // of them; no data is published through the flag.
        if c.sleeping.swap(0, Ordering::AcqRel) == 1 {
            let _ =
                self.control()
                    .sleepers
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// After a commit or a give-back: wakes sleeping consumers, with no
    /// system call when there are none.
    #[inline(always)]
    pub(super) fn wake_sleepers(&self) -> bool {
        let ctl = self.control();
        // SYNC POINT: Dekker pair with the SeqCst fence in `Consumer::sleep`:
        // either we see its sleeper count, or it sees our commit before it
        // sleeps. Our side is the SeqCst write every caller made just before
        // (the commit or skip CAS in `Claim::finish` and `Producer::enter`,
        // `reclaim`'s CAS, a give-back's hint bump) and this SeqCst load:
        // no fence on the commit path (see `fence_for_seqcst_accesses`).
        fence_for_seqcst_accesses();
        if ctl.sleepers.load(Ordering::SeqCst) != 0 {
            // SYNC POINT: Release pairs with the sleeper's Acquire load of
            // `wake_seq` before it sleeps.
            ctl.wake_seq.fetch_add(1, Ordering::Release);
            futex_wake_all(&ctl.wake_seq);
            return true;
        }
        false
    }

    /// The queue's positions and counters now (each read on its own).
    pub(super) fn counters(&self) -> QueueCounters {
        let c = self.control();
        // SYNC POINT: Relaxed loads: figures for humans and tests; nothing
        // is read through them.
        QueueCounters {
            tail: c.tail.load(Ordering::Relaxed),
            head: c.head.load(Ordering::Relaxed),
            redelivered: c.redelivered.load(Ordering::Relaxed),
            reclaimed_claims: c.reclaimed_claims.load(Ordering::Relaxed),
            reaped_consumers: c.reaped_consumers.load(Ordering::Relaxed),
            reaped_producers: c.reaped_producers.load(Ordering::Relaxed),
        }
    }

    /// Whether the queue's segment still reaches its peers (the cheap
    /// check, no system call).
    #[inline]
    pub(super) fn fault(&self) -> Option<SegmentFault> {
        self.liveness.fault()
    }

    /// As [`QueueView::fault`], plus the file-system check (one `fstat`),
    /// at most every 20 ms per handle.
    pub(super) fn fault_slow(&self) -> Option<SegmentFault> {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_fault_check_ns.get()) < 20_000_000 {
            return self.fault();
        }
        self.last_fault_check_ns.set(now);
        self.liveness.fault_slow()
    }
}
