//! The validated view every handle runs on: geometry, liveness, the slot
//! arrays and the claim / reclaim / reap machinery they share.

use core::ptr::NonNull;

use super::{BroadcastConfig, Policy};
use crate::layout::{
    lock_slot, name_word, participant, split_stamp, stamp, stamp_committed, unpack_name_word,
    unpack_record_header, BroadcastControl, PublisherSlot, RecordSlotHeader, SegmentFault,
    SubscriberSlot, NAME_LEN, STAMP_COMMITTED, STAMP_RECLAIMED, STAMP_SKIPPED, STAMP_WRITING,
    SUBSCRIBER_NAME_WIDTH, SUBSCRIBER_NAME_WORDS,
};
pub(crate) use crate::ring::liveness::Liveness;
use crate::ring::CorruptionKind;
use crate::sync::{
    demote_line, demote_lines, fence, fence_for_seqcst_accesses, futex_wake_all, light_barrier,
    monotonic_ns, prefetch_for_write, AccessTracker, AtomicU32, AtomicU64, Ordering, RacyBytes,
    DEMOTE_LINE,
};

/// The one check of a committed record slot's header word (hostile bytes),
/// shared by subscribers and the inspector: no flag set, a length within
/// the log's maximum payload. Returns `(len, record type)`.
#[inline]
pub(crate) fn check_slot_word(word: u64, max_payload: u32) -> Result<(u32, u16), CorruptionKind> {
    let (len, record_type, flags) = unpack_record_header(word);
    if flags != 0 {
        return Err(CorruptionKind::UnknownFlags { flags });
    }
    if len > max_payload {
        return Err(CorruptionKind::LengthTooLarge { len });
    }
    Ok((len, record_type))
}

/// What a record slot's stamp says about sequence `seq`, the one reading
/// of a stamp shared by subscribers and the inspector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotLook {
    /// Record `seq` is committed: its header word and payload may be read.
    Committed,
    /// `seq` was reclaimed from a publisher that held it past the claim
    /// timeout: lost, counted as missed.
    Reclaimed,
    /// `seq` was given up (an aborted claim, or a fenced sequence): nothing
    /// to read, nothing lost.
    Skipped,
    /// `seq` is not resolved yet: unclaimed, or claimed and being written.
    NotYet,
    /// A later lap is in the slot: `seq` was overwritten.
    LaterLap,
}

/// Reads stamp `stamp` of `seq`'s slot (see [`SlotLook`]).
#[inline]
pub(crate) fn look_at_stamp(stamp: u64, seq: u64) -> SlotLook {
    let (lap, state) = split_stamp(stamp);
    let want = seq + 1;
    if lap > want {
        return SlotLook::LaterLap;
    }
    if lap < want {
        return SlotLook::NotYet;
    }
    match state {
        STAMP_COMMITTED => SlotLook::Committed,
        STAMP_RECLAIMED => SlotLook::Reclaimed,
        STAMP_SKIPPED => SlotLook::Skipped,
        _ => SlotLook::NotYet,
    }
}

/// The seqlock reader's re-check, shared by subscribers and the inspector:
/// whether `header` still says "committed `seq`", that is, whether every
/// byte read from its slot since the stamp was first checked is record
/// `seq`'s.
#[inline]
pub(crate) fn still_committed(header: &RecordSlotHeader, seq: u64) -> bool {
    // SYNC POINT: seqlock reader side; pairs with the Release fence a
    // publisher runs after marking a slot "writing" (`Publisher::enter_slot`):
    // if any byte read before this fence came from a newer write, the stamp
    // load below sees it changed.
    fence(Ordering::Acquire);
    header.stamp.load(Ordering::Relaxed) == stamp_committed(seq)
}

/// How a stamp a subscriber may be waiting on was written, which decides
/// what [`BroadcastView::wake_sleepers`] needs before its look at the
/// sleeper count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StampWrite {
    /// A `SeqCst` read-modify-write (a compare-and-swap).
    SeqCstRmw,
    /// A `Release` store by a process registered for heavy barriers
    /// ([`register_for_heavy_barriers`](crate::sync::register_for_heavy_barriers)).
    StoreLight,
    /// A `Release` store by a process that is not.
    StoreFenced,
}

/// Everything a handle knows about its log, read once and validated.
pub(crate) struct BroadcastView {
    pub(super) control: NonNull<BroadcastControl>,
    pub(super) subscribers: NonNull<SubscriberSlot>,
    pub(super) publishers: NonNull<PublisherSlot>,
    pub(super) headers: *const u8,
    pub(super) header_stride: usize,
    pub(super) payloads: *mut u8,
    pub(super) payload_stride: usize,
    pub(super) tracker: *const AccessTracker,
    /// How `Overwrite` payloads are copied (see [`RacyBytes`]).
    pub(super) racy: *const RacyBytes,
    pub(super) slots: u64,
    pub(super) mask: u64,
    pub(super) max_payload: u32,
    pub(super) policy: Policy,
    pub(super) max_subscribers: usize,
    pub(super) max_publishers: usize,
    /// One publisher slot: its publisher is the only one that can exist
    /// (see [`Publisher::reserve`](super::Publisher)), so it claims with
    /// plain stores and needs no fence against other publishers.
    pub(super) exclusive: bool,
    pub(super) reclaim_after_ns: u64,
    pub(super) liveness: Liveness,
    /// Futex wakes that found nobody asleep although `sleepers` said
    /// otherwise (a sleeper died): every 1024, dead subscribers are reaped.
    pub(super) idle_wakes: core::cell::Cell<u32>,
    /// When [`BroadcastView::fault_slow`] last asked the file system.
    pub(super) last_fault_check_ns: core::cell::Cell<u64>,
}

// SAFETY: the view only points into memory kept alive by `liveness` (a
// mapping or an Arc), and every shared access goes through atomics or the
// ring protocol.
unsafe impl Send for BroadcastView {}

/// The layout facts a view is built from.
pub(crate) struct ViewParts {
    pub(crate) control: NonNull<BroadcastControl>,
    pub(crate) subscribers: NonNull<SubscriberSlot>,
    pub(crate) publishers: NonNull<PublisherSlot>,
    pub(crate) headers: *const u8,
    pub(crate) header_stride: usize,
    pub(crate) payloads: *mut u8,
    pub(crate) payload_stride: usize,
    pub(crate) tracker: *const AccessTracker,
    pub(crate) racy: *const RacyBytes,
    pub(crate) config: BroadcastConfig,
    pub(crate) liveness: Liveness,
}

impl BroadcastView {
    /// # Safety
    ///
    /// Every pointer in `parts` is valid for the sizes its config implies
    /// for as long as `parts.liveness` lives, and the control block holds
    /// `parts.config`.
    pub(crate) unsafe fn new(parts: ViewParts) -> Self {
        let c = parts.config;
        BroadcastView {
            control: parts.control,
            subscribers: parts.subscribers,
            publishers: parts.publishers,
            headers: parts.headers,
            header_stride: parts.header_stride,
            payloads: parts.payloads,
            payload_stride: parts.payload_stride,
            tracker: parts.tracker,
            racy: parts.racy,
            slots: u64::from(c.slots),
            mask: u64::from(c.slots) - 1,
            max_payload: c.max_payload,
            policy: c.policy,
            max_subscribers: c.max_subscribers as usize,
            max_publishers: c.max_publishers as usize,
            exclusive: c.max_publishers == 1,
            reclaim_after_ns: c.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64,
            liveness: parts.liveness,
            idle_wakes: core::cell::Cell::new(0),
            last_fault_check_ns: core::cell::Cell::new(0),
        }
    }

    pub(super) fn control(&self) -> &BroadcastControl {
        // SAFETY: `new`'s contract.
        unsafe { self.control.as_ref() }
    }

    pub(super) fn subscriber(&self, i: usize) -> &SubscriberSlot {
        debug_assert!(i < self.max_subscribers);
        // SAFETY: `i < max_subscribers`, the length of the slot array.
        unsafe { &*self.subscribers.as_ptr().add(i) }
    }

    pub(super) fn publisher(&self, j: usize) -> &PublisherSlot {
        debug_assert!(j < self.max_publishers);
        // SAFETY: `j < max_publishers`, the length of the slot array.
        unsafe { &*self.publishers.as_ptr().add(j) }
    }

    #[inline(always)]
    pub(super) fn header(&self, seq: u64) -> &RecordSlotHeader {
        let i = (seq & self.mask) as usize;
        debug_assert!(i < self.slots as usize);
        // SAFETY: `i < slots`; headers are `header_stride` apart and aligned.
        let h = unsafe { self.headers.add(i * self.header_stride) as *const RecordSlotHeader };
        debug_assert!(h.is_aligned(), "record slot header at {h:p} is misaligned");
        // SAFETY: as above: inside the slot array, aligned, alive as long as
        // the view.
        unsafe { &*h }
    }

    /// Asks for the first two lines of `seq`'s slot for writing (in a
    /// mapped log, its header and the first 112 payload bytes): a hint, see
    /// [`prefetch_for_write`].
    #[inline(always)]
    pub(super) fn prefetch_slot(&self, seq: u64) {
        let i = (seq & self.mask) as usize;
        prefetch_for_write(self.headers.wrapping_add(i * self.header_stride));
        prefetch_for_write(self.payloads.wrapping_add(i * self.payload_stride + 56));
    }

    /// Pushes `seq`'s header line and the lines of its first `len` payload
    /// bytes towards a reader on another core: see [`demote_lines`].
    #[inline(always)]
    pub(super) fn demote_record(&self, seq: u64, len: usize) {
        let i = (seq & self.mask) as usize;
        let header = self.headers.wrapping_add(i * self.header_stride);
        let payload = self.payloads.wrapping_add(i * self.payload_stride);
        // In a mapped log the header shares its line with the payload's
        // start: that line is pushed once.
        if header as usize / DEMOTE_LINE != payload as usize / DEMOTE_LINE {
            demote_line(header);
        }
        demote_lines(payload, len);
    }

    #[inline(always)]
    pub(super) fn payload_offset(&self, seq: u64) -> usize {
        (seq & self.mask) as usize * self.payload_stride
    }

    /// Copies the first `dst.len()` bytes of `seq`'s payload, which a
    /// publisher may be rewriting (`Overwrite`): the copy is only the
    /// record's if its stamp is unchanged afterwards.
    #[inline]
    pub(super) fn read_racy(&self, seq: u64, dst: &mut [u8]) {
        debug_assert!(dst.len() <= self.max_payload as usize);
        // SAFETY: a slot's payload area is 8-aligned and holds `max_payload`
        // rounded up to 8 bytes (`new`'s contract); `racy` outlives the view.
        unsafe { (*self.racy).read(self.payloads, self.payload_offset(seq), dst) }
    }

    /// Writes `src` as `seq`'s payload where subscribers may be copying it
    /// (`Overwrite`); the caller holds the slot as "writing".
    #[inline]
    pub(super) fn write_racy(&self, seq: u64, src: &[u8]) {
        debug_assert!(src.len() <= self.max_payload as usize);
        // SAFETY: as in `read_racy`; the writing stamp keeps every other
        // publisher out of the slot.
        unsafe { (*self.racy).write(self.payloads, self.payload_offset(seq), src) }
    }

    #[inline(always)]
    pub(super) fn tracker(&self) -> &AccessTracker {
        // SAFETY: `new`'s contract.
        unsafe { &*self.tracker }
    }

    /// Loom tracking of payload bytes, only where the protocol promises
    /// exclusive access (`Backpressure`); `Overwrite` reads race by design
    /// and are validated by the stamp instead.
    #[inline(always)]
    pub(super) fn note(&self, seq: u64, len: usize, write: bool) {
        if self.policy == Policy::Backpressure {
            let off = self.payload_offset(seq);
            if write {
                self.tracker().write(off, len.max(1));
            } else {
                self.tracker().read(off, len.max(1));
            }
        }
    }

    /// The lowest cursor among gating subscribers (live, being registered,
    /// or detached durable), or `upper` if there is none.
    pub(super) fn scan_gate(&self, upper: u64) -> (u64, Option<usize>) {
        let mut min = upper;
        let mut at = None;
        for i in 0..self.max_subscribers {
            let s = self.subscriber(i);
            // SYNC POINT: pairs with the registration's SeqCst store of LIVE.
            let state = participant::state(s.state.load(Ordering::SeqCst));
            if state == participant::LIVE || state == participant::DETACHED {
                // SYNC POINT: pairs with the subscriber's Release store of its
                // cursor in `Subscriber::release`: its reads of the records
                // before the cursor happen before we overwrite them.
                let c = s.cursor.load(Ordering::Acquire);
                if c < min {
                    min = c;
                    at = Some(i);
                }
            }
        }
        (min, at)
    }

    /// Frees (or, for durable ones, detaches) live subscriber slots whose
    /// process is gone. Returns how many were reaped.
    ///
    /// The state word carries a generation that every registration bumps,
    /// so the compare-and-swap below fails if a new subscriber took the
    /// slot between our look at the liveness lock and the swap.
    pub(super) fn reap_dead_subscribers(&self) -> u64 {
        let mut reaped = 0;
        for i in 0..self.max_subscribers {
            let s = self.subscriber(i);
            // SYNC POINT: pairs with the registration's SeqCst (so Release)
            // store of LIVE in `Subscriber::register`, made after it wrote the
            // name: a LIVE word read here comes with that name, which decides
            // below between detaching and freeing. (A CLAIMING word, from
            // `take_slot`, is freed whatever its name.)
            let word = s.state.load(Ordering::Acquire);
            let state = participant::state(word);
            if state != participant::LIVE && state != participant::CLAIMING {
                continue;
            }
            if self.liveness.held_by_other(lock_slot::subscriber(i)) {
                continue;
            }
            let durable = state == participant::LIVE && s.durable_name_len().is_some();
            let next = if durable {
                participant::DETACHED
            } else {
                participant::FREE
            };
            // SYNC POINT: AcqRel on the state word, the only word a reaper
            // and a registration both write. It fails if `take_slot` (an
            // AcqRel CAS) bumped the generation since our load: that is an
            // RMW fact, whatever the ordering. The orderings chain the
            // slot's holders: Acquire orders us after the update we replace
            // (as the load above), Release pairs with the Acquire half of
            // the next registration's `take_slot`, which reads our word.
            if s.state
                .compare_exchange(
                    word,
                    participant::with_state(word, next),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                reaped += 1;
                self.control()
                    .reaped_subscribers
                    .fetch_add(1, Ordering::Relaxed);
                self.forget_sleeper(s);
            }
        }
        reaped
    }

    /// Takes a dead (or waking) subscriber out of the sleeper count, once.
    pub(super) fn forget_sleeper(&self, s: &SubscriberSlot) {
        // SYNC POINT: AcqRel swap, stronger than the count needs: whoever
        // turns the flag from 1 to 0 (the sleeper itself in
        // `Subscriber::sleep`, a reaper, or a registration taking the slot)
        // decrements, and the swap being one RMW makes that exactly one of
        // them. The flag is raised by a Relaxed store in `Subscriber::sleep`,
        // so no data is published through it; the swappers' Release/Acquire
        // only order them with each other. Off the hot path (after a sleep
        // or a reap).
        if s.sleeping.swap(0, Ordering::AcqRel) == 1 {
            // Saturating: a sleeper killed between raising its flag and
            // counting itself must not wrap the count. (In that window the
            // decrement may take another sleeper's count; that sleeper then
            // wakes at its sleep cap, 20 ms, instead of at once.)
            let _ =
                self.control()
                    .sleepers
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Turns the claim of `seq` into a reclaimed record (lost, counted), if
    /// its slot still shows an older lap or `seq` being written. Its
    /// claimer's commit then fails with [`ClaimError::Reclaimed`]. Returns
    /// whether the slot now holds `seq` resolved (by us or anyone).
    pub(super) fn reclaim(&self, seq: u64) -> bool {
        let h = self.header(seq);
        // SYNC POINT: Acquire pairs with the Release compare-and-swaps of
        // the stamp by publishers (`Publisher::enter`, `Claim::finish`).
        let seen = h.stamp.load(Ordering::Acquire);
        let (lap, state) = split_stamp(seen);
        let want = seq.wrapping_add(1);
        if lap > want || (lap == want && state != STAMP_WRITING) {
            return true;
        }
        // SYNC POINT: SeqCst for the sleeper check in `wake_sleepers` that
        // follows. A publisher that later reuses the slot sees the
        // claimer's `claimed` in `owner_inside` whichever it reads: under
        // `Overwrite` this CAS reads from the claimer's "writing" CAS, so a
        // publisher that Acquire-loads our stamp synchronizes with it;
        // under `Backpressure` it claimed its own sequence through the tail
        // after the claimer did (see `Publisher::reserve`).
        if h.stamp
            .compare_exchange(
                seen,
                stamp(seq, STAMP_RECLAIMED),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        self.control()
            .reclaimed_claims
            .fetch_add(1, Ordering::Relaxed);
        self.wake_sleepers(StampWrite::SeqCstRmw);
        true
    }

    /// Whether a live publisher other than `me` holds a claim of an older
    /// lap of `seq`'s slot, and so may still write into it. Asked before
    /// reusing a slot whose previous record was reclaimed or skipped (the
    /// only cases where a claimer can still be inside).
    #[cold]
    pub(super) fn owner_inside(&self, seq: u64, me: usize) -> bool {
        // No fence: every claimer's `claimed` store reaches us through an
        // Acquire of ours that read from its Release. Under `Backpressure`
        // it announced before its AcqRel compare-and-swap of the tail, and
        // our caller claimed `seq`, a later sequence, by an RMW of the tail
        // reading from that CAS's release sequence. Under `Overwrite` it
        // stored `claimed` before its AcqRel "writing" CAS of the stamp,
        // whose release sequence holds the reclaim (or skip) CAS our
        // caller's Acquire load of the stamp read from. (The loom models
        // `stalled_claim_is_reclaimed_and_its_late_commit_fails` and
        // `a_claim_racing_its_reclaim_and_a_lapping_publisher_has_one_writer`
        // check it.)
        let index = seq & self.mask;
        (0..self.max_publishers).any(|j| {
            if j == me {
                return false;
            }
            // SYNC POINT: pairs with the owner's Release stores of `claimed`
            // in `Publisher::enter` and `Claim::finish`: if we see it
            // cleared, its writes to the slot happen before ours.
            let claimed = self.publisher(j).claimed.load(Ordering::Acquire);
            let Some(c) = claimed.checked_sub(1) else {
                return false;
            };
            c & self.mask == index
                && c < seq
                && self.liveness.held_by_other(lock_slot::publisher(j))
        })
    }

    /// After a commit (or any write of a stamp a subscriber may be waiting
    /// on), made as `write` says: wakes sleeping subscribers, with no
    /// system call when there are none. Returns whether it made the wake
    /// call.
    #[inline(always)]
    pub(super) fn wake_sleepers(&self, write: StampWrite) -> bool {
        let ctl = self.control();
        // SYNC POINT: Dekker pair with `Subscriber::sleep`, which counts
        // itself, runs a SeqCst fence (and, on a log whose sole publisher
        // commits by store, a heavy barrier), then looks at the stamp:
        // either we see its sleeper count, or it sees our stamp before it
        // sleeps. Our side is the stamp write every caller made just before
        // and this SeqCst load, with between them what `write` needs.
        match write {
            // A SeqCst read-modify-write (`Claim::finish` for several
            // publishers, the fenced skip in `Publisher::enter_slot`,
            // `reclaim`): no fence (see `fence_for_seqcst_accesses`).
            StampWrite::SeqCstRmw => fence_for_seqcst_accesses(),
            // A sole publisher's Release store, its process registered: the
            // sleeper's heavy barrier makes up for the CPU's reordering.
            StampWrite::StoreLight => light_barrier(),
            // A sole publisher's Release store, its process not registered.
            StampWrite::StoreFenced => fence(Ordering::SeqCst),
        }
        if ctl.sleepers.load(Ordering::SeqCst) != 0 {
            // SYNC POINT: Release pairs with the sleeper's Acquire load of
            // `wake_seq` before it sleeps.
            ctl.wake_seq.fetch_add(1, Ordering::Release);
            if futex_wake_all(&ctl.wake_seq) == 0 {
                self.idle_wake();
            }
            return true;
        }
        false
    }

    /// Whether this log's stamps are committed by plain stores: a
    /// `Backpressure` log with one publisher slot. Its publisher is the
    /// only writer of a stamp it claimed while it lives (a waiter reclaims
    /// its claim only once it died: [`BroadcastView::may_reclaim`]), so its
    /// commit needs no compare-and-swap.
    #[inline(always)]
    pub(super) fn commits_by_store(&self) -> bool {
        self.exclusive && self.policy == Policy::Backpressure
    }

    /// Whether a waiter whose claim timeout passed may reclaim the claim
    /// it waits on. Always, except on a log whose sole publisher commits
    /// by store ([`BroadcastView::commits_by_store`]) and is alive: nobody
    /// else can publish past its claim, so waiting costs nothing, and its
    /// late commit (a plain store) must find the slot as it left it. Asks
    /// the kernel (one lock query), so callers pace it.
    #[cold]
    pub(super) fn may_reclaim(&self) -> bool {
        !(self.commits_by_store() && self.liveness.held_by_other(lock_slot::publisher(0)))
    }

    /// A wake found nobody: usually a sleeper between counting itself and
    /// sleeping, but a sleeper that died keeps the count up for good, so
    /// now and then look for dead subscribers.
    #[cold]
    pub(super) fn idle_wake(&self) {
        let n = self.idle_wakes.get().wrapping_add(1);
        self.idle_wakes.set(n);
        if n % 1024 == 0 {
            self.reap_dead_subscribers();
        }
    }

    /// Whether the log's segment still reaches its peers (the cheap check,
    /// no system call).
    #[inline]
    pub(super) fn fault(&self) -> Option<SegmentFault> {
        self.liveness.fault()
    }

    /// As [`BroadcastView::fault`], plus the file-system check (one
    /// `fstat`), at most every 20 ms per handle.
    pub(super) fn fault_slow(&self) -> Option<SegmentFault> {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_fault_check_ns.get()) < 20_000_000 {
            return self.fault();
        }
        self.last_fault_check_ns.set(now);
        self.liveness.fault_slow()
    }
}

impl BroadcastControl {
    pub(crate) fn new(c: &BroadcastConfig) -> Self {
        BroadcastControl {
            slots: u64::from(c.slots),
            slot_stride: c.slot_stride() as u32,
            max_payload: c.max_payload,
            policy: c.policy.to_raw(),
            max_subscribers: c.max_subscribers,
            max_publishers: c.max_publishers,
            reserved0: 0,
            reclaim_after_ns: c.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64,
            pad0: [0; crate::layout::CACHE_LINE - 40],
            tail: AtomicU64::new(0),
            pad1: [0; crate::layout::CACHE_LINE - 8],
            gate: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
            pad2: [0; crate::layout::CACHE_LINE - 16],
            wake_seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            pad3: [0; crate::layout::CACHE_LINE - 8],
            reclaimed_claims: AtomicU64::new(0),
            reaped_subscribers: AtomicU64::new(0),
            reaped_publishers: AtomicU64::new(0),
            pad4: [0; crate::layout::CACHE_LINE - 24],
        }
    }
}

impl SubscriberSlot {
    pub(crate) fn new() -> Self {
        SubscriberSlot {
            state: AtomicU32::new(participant::FREE),
            pid: AtomicU32::new(0),
            cursor: AtomicU64::new(0),
            heartbeat_ns: AtomicU64::new(0),
            name_len: AtomicU32::new(0),
            sleeping: AtomicU32::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            pad: [0; crate::layout::CACHE_LINE - 96],
            counters: crate::layout::Counters::new(),
        }
    }

    /// The length of a valid durable name (1..=64), or `None` for an
    /// anonymous slot or a length no build writes (hostile bytes).
    pub(super) fn durable_name_len(&self) -> Option<usize> {
        let len = self.name_len.load(Ordering::Relaxed) as usize;
        (1..=NAME_LEN).contains(&len).then_some(len)
    }

    pub(super) fn name_matches(&self, name: &[u8]) -> bool {
        self.name_len.load(Ordering::Relaxed) as usize == name.len()
            && (0..SUBSCRIBER_NAME_WORDS).all(|w| {
                self.name[w].load(Ordering::Relaxed) == name_word(name, w, SUBSCRIBER_NAME_WIDTH)
            })
    }

    pub(super) fn set_name(&self, name: &[u8]) {
        for (w, word) in self.name.iter().enumerate() {
            word.store(name_word(name, w, SUBSCRIBER_NAME_WIDTH), Ordering::Relaxed);
        }
        self.name_len.store(name.len() as u32, Ordering::Relaxed);
    }

    /// The durable name, if any (hostile bytes: lossy, length-clamped).
    pub fn name(&self) -> Option<String> {
        let len = (self.name_len.load(Ordering::Relaxed) as usize).min(NAME_LEN);
        if len == 0 {
            return None;
        }
        let mut bytes = [0u8; NAME_LEN];
        for (w, word) in self.name.iter().enumerate() {
            unpack_name_word(
                &mut bytes,
                w,
                SUBSCRIBER_NAME_WIDTH,
                word.load(Ordering::Relaxed),
            );
        }
        Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
    }
}

impl PublisherSlot {
    pub(crate) fn new() -> Self {
        PublisherSlot {
            state: AtomicU32::new(participant::FREE),
            pid: AtomicU32::new(0),
            claimed: AtomicU64::new(0),
            pad: [0; crate::layout::CACHE_LINE - 16],
            counters: crate::layout::Counters::new(),
        }
    }
}

impl RecordSlotHeader {
    pub(crate) fn new() -> Self {
        RecordSlotHeader {
            stamp: AtomicU64::new(0),
            word: AtomicU64::new(0),
        }
    }
}
