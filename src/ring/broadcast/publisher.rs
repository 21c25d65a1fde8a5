//! Publishers: claim, write in place, commit.

use core::ops::Deref;
use std::time::Duration;

use super::view::StampWrite;
use super::{BroadcastView, ClaimError, Policy, RegisterError, LOOKS_PER_STALL_CHECK};
use crate::layout::{
    lock_slot, pack_record_header, participant, split_stamp, stamp, stamp_committed, Counters,
    SegmentFault, MAX_SEQUENCE, STAMP_COMMITTED, STAMP_RECLAIMED, STAMP_SKIPPED, STAMP_WRITING,
};
use crate::ring::counters::{self, FullWait};
use crate::ring::stall::Stall;
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{fence, monotonic_ns, register_for_heavy_barriers, spin_hint, Ordering};
use crate::wait::{WaitStrategy, Waiter};

/// A publisher on a broadcast log. Any number may publish at once.
///
/// # Examples
///
/// ```
/// use shmbus::{Bus, StartAt, TopicConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let topic = bus.topic("orders", &TopicConfig::default())?;
/// let mut sub = topic.subscriber(StartAt::Tail)?;
/// let mut publisher = topic.publisher()?;
/// // Write in place: claim, fill, commit.
/// let mut claim = publisher.claim_blocking(8, WaitStrategy::BusySpin)?;
/// claim.copy_from_slice(&42u64.to_le_bytes());
/// claim.set_record_type(7);
/// let seq = claim.commit()?;
/// // Or copy a payload in.
/// publisher.try_send(7, &43u64.to_le_bytes())?;
/// assert_eq!(sub.try_read()?.sequence(), seq);
/// # drop((publisher, sub, topic, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Publisher {
    pub(super) ring: BroadcastView,
    pub(super) slot: usize,
    /// Last gate value seen: claims below `gate + slots` need no rescan.
    gate_cache: u64,
    /// Subscriber slot that held the gate at the last scan.
    slowest: Option<usize>,
    published: u64,
    reclaimed: u64,
    full_polls: u32,
    last_reap_ns: u64,
    /// Claims made (wrapping): every 256th looks at the segment.
    claims: u32,
    /// Set once the segment is found unusable: every later claim fails.
    unusable: Option<SegmentFault>,
    /// Under `Overwrite`, where a [`Claim`] is written (`max_payload` bytes,
    /// made once here): subscribers may be copying the slot at any moment,
    /// so its bytes are only ever written whole, word by word, by the commit
    /// (see [`RacyBytes`](crate::sync::RacyBytes)). Empty under
    /// `Backpressure`, whose claims are written in place.
    staging: Box<[u8]>,
    /// Whether commits push the record to the shared cache
    /// ([`Publisher::set_push_on_commit`]).
    push: bool,
    /// How this publisher writes a commit's stamp: a compare-and-swap, or
    /// (the sole publisher of a `Backpressure` log) a plain store.
    commit_write: StampWrite,
}

/// How many slots ahead of its claim a publisher asks for the lines it
/// will write next ([`BroadcastView::prefetch_slot`]).
///
/// A subscriber read those lines a lap ago, so the publisher's stores to
/// them wait for the other core to give them up, and the commit's locked
/// compare-and-swap waits for those stores: one cross-core round trip per
/// record, in turn. Asked for a few records early, the lines arrive while
/// the publisher writes the records before. With 64-byte records across
/// cores, 1, 2 and 4 measured alike, 8 and 16 no better and more variable
/// (`SHMBUS_BENCH_PARTS=throughput cargo bench --bench broadcast`).
const PREFETCH_AHEAD: u64 = 2;

/// Why [`Publisher::enter`] gave up the sequence it reserved.
pub(super) enum Lost {
    /// A waiter reclaimed it before we wrote anything.
    Reclaimed,
    /// An older claimer may still write into its slot: we published it as a
    /// skip and must reserve another.
    Fenced,
    /// The segment became unusable while we waited for the slot.
    Unusable(SegmentFault),
    /// The slot's stamp is impossible.
    Corrupt(Corruption),
}

impl Publisher {
    pub(crate) fn register(ring: BroadcastView) -> Result<Self, RegisterError> {
        for j in 0..ring.max_publishers {
            if !ring.liveness.try_lock(lock_slot::publisher(j)) {
                continue;
            }
            let p = ring.publisher(j);
            let word = p.state.load(Ordering::Relaxed);
            if participant::state(word) != participant::FREE {
                // Its lock was free: the owner died. Take the slot over.
                ring.control()
                    .reaped_publishers
                    .fetch_add(1, Ordering::Relaxed);
            }
            p.pid.store(std::process::id(), Ordering::Relaxed);
            counters::reset(&p.counters);
            // SYNC POINT: Release pairs with the Acquire load in
            // `BroadcastView::owner_inside`: a dead owner's claim is gone.
            p.claimed.store(0, Ordering::Release);
            // SYNC POINT: Release, stronger than any reader needs today:
            // nothing Acquire-loads a publisher's state word (inspection and
            // a successor's `register` read it Relaxed; a successor is
            // ordered after us by the liveness lock instead). It would
            // publish pid and counters, stored above, to a reader that did.
            p.state.store(
                participant::next_generation(word, participant::LIVE),
                Ordering::Release,
            );
            // SYNC POINT: pairs with the SeqCst fetch_max of `gate` in
            // `gate_allows` by any publisher.
            let gate_cache = ring.control().gate.load(Ordering::Acquire);
            let staging = match ring.policy {
                Policy::Overwrite => vec![0; ring.max_payload as usize].into_boxed_slice(),
                Policy::Backpressure => Box::default(),
            };
            let commit_write = if !ring.commits_by_store() {
                StampWrite::SeqCstRmw
            } else if register_for_heavy_barriers() {
                StampWrite::StoreLight
            } else {
                StampWrite::StoreFenced
            };
            if ring.commits_by_store() && participant::state(word) != participant::FREE {
                // The predecessor died, perhaps holding a claim (its last
                // sequence): nobody else may reclaim it while we hold the
                // lock (`BroadcastView::may_reclaim`), so we do, before our
                // first claim. It is dead, so its commit cannot race ours.
                // SYNC POINT: Acquire pairs with the predecessor's Release
                // store of `tail` in `reserve`.
                let tail = ring.control().tail.load(Ordering::Acquire);
                if let Some(last) = tail.checked_sub(1).filter(|&t| t <= MAX_SEQUENCE) {
                    ring.reclaim(last);
                }
            }
            return Ok(Publisher {
                ring,
                slot: j,
                gate_cache,
                slowest: None,
                published: 0,
                reclaimed: 0,
                full_polls: 0,
                last_reap_ns: 0,
                claims: 0,
                unusable: None,
                staging,
                push: false,
                commit_write,
            });
        }
        Err(RegisterError::NoFreeSlot {
            role: "publisher",
            slots: ring.max_publishers,
        })
    }

    /// Whether every commit from now on also pushes the record out of this
    /// core's private caches into the shared last-level cache (x86
    /// `cldemote`; nothing on CPUs without it), so that a reader waiting on
    /// another core fetches it from there rather than from this core.
    ///
    /// For sporadic, latency-critical records (orders, signals). In the
    /// cross-process ping-pong bench it made no clear difference to a topic
    /// hop's p50 (0.97–1.03x), where it took about 18 % off an SPSC
    /// channel's (see the README's Measured section). Off by default, because it costs a
    /// stream of records, whose writer pushes away lines it is about to
    /// write again: a topic streaming with it ran at about a fifth of its
    /// rate (the `broadcast` bench's throughput part).
    pub fn set_push_on_commit(&mut self, push: bool) {
        self.push = push;
    }

    /// Whether commits push the record out ([`Publisher::set_push_on_commit`]).
    pub fn push_on_commit(&self) -> bool {
        self.push
    }

    /// The topic's maximum payload.
    pub fn max_payload(&self) -> u32 {
        self.ring.max_payload
    }

    /// The log's policy.
    pub fn policy(&self) -> Policy {
        self.ring.policy
    }

    /// Records this publisher has committed.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Claims of this publisher that were reclaimed because they stayed
    /// uncommitted past the claim timeout (see [`ClaimError::Reclaimed`]).
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed
    }

    /// This publisher's counters (its own line: see [`counters`]).
    #[inline(always)]
    fn counters(&self) -> &Counters {
        &self.ring.publisher(self.slot).counters
    }

    #[inline(always)]
    fn count_published(&mut self, len: usize) {
        self.published += 1;
        let c = &self.ring.publisher(self.slot).counters;
        counters::count_record(c, len);
    }

    fn count_reclaimed(&mut self) {
        self.reclaimed += 1;
        counters::add(&self.counters().lost_claims, 1);
    }

    /// What to report for an inconsistency: the segment's fault if it has
    /// one (a truncated log reads as zeros), else the corruption.
    #[cold]
    fn corrupt(&self, kind: CorruptionKind, position: u64) -> ClaimError {
        if let Some(fault) = self.ring.fault_slow() {
            return ClaimError::Unusable(fault);
        }
        ClaimError::Corrupt(Corruption { kind, position })
    }

    /// Refreshes the gate from the subscriber cursors; true if `seq` may be
    /// claimed now (or if `seq` is an old look at the tail, whose
    /// compare-and-swap then fails).
    #[inline]
    pub(super) fn gate_allows(&mut self, seq: u64) -> Result<bool, ClaimError> {
        // SYNC POINT: pairs with the SeqCst fetch_max of `gate` in
        // `gate_rescan` (by any publisher), which follows that publisher's
        // Acquire loads of the cursors: what those subscribers read happens
        // before we reuse.
        let shared = self.ring.control().gate.load(Ordering::Acquire);
        // The common case: a gate at most `seq` (see `gate_rescan` for the
        // others) that, with what we saw before, already lets `seq` in.
        if shared <= seq {
            self.gate_cache = self.gate_cache.max(shared);
            if seq < self.gate_cache.saturating_add(self.ring.slots) {
                return Ok(true);
            }
        }
        self.gate_rescan(seq, shared)
    }

    /// The rest of [`Publisher::gate_allows`], given the gate it loaded:
    /// an impossible or old gate, or a rescan of the cursors.
    #[inline(never)]
    fn gate_rescan(&mut self, seq: u64, shared: u64) -> Result<bool, ClaimError> {
        let ctl = self.ring.control();
        if shared > seq {
            // The gate is a minimum of cursors, and no cursor passes the
            // tail: past the tail as it is now, the gate is impossible. Past
            // only `seq`, it is our look at the tail that is old: other
            // publishers moved the tail on and subscribers read past it
            // while we were preempted. Then our compare-and-swap of `seq`
            // fails (the tail only grows) and the next look is afresh. (An
            // exclusive publisher's look is never old: it alone moves it.)
            // SYNC POINT: Acquire pairs with the publishers' AcqRel updates
            // of `tail` (only to validate the gate).
            let tail = ctl.tail.load(Ordering::Acquire);
            if shared > tail || self.ring.exclusive {
                return Err(self.corrupt(CorruptionKind::HeadOutOfRange { head: shared }, seq));
            }
            return Ok(true);
        }
        // `gate_allows` found the gate cache, `shared` included, short of
        // `seq`.
        let slots = self.ring.slots;
        // Still held back by the subscriber that was slowest at the last
        // scan? One load says so for certain (the minimum cannot be above
        // its cursor); only when it has moved on is a full scan worth it.
        if let Some(i) = self.slowest {
            let s = self.ring.subscriber(i);
            // SYNC POINT: pairs with the registration's Release update of
            // the state word (only used to decide "still full").
            let state = participant::state(s.state.load(Ordering::Acquire));
            let gating = state == participant::LIVE || state == participant::DETACHED;
            // SYNC POINT: pairs with that subscriber's Release store of its
            // cursor in `Subscriber::release` (only used to decide "still
            // full": no reuse follows).
            if gating && s.cursor.load(Ordering::Acquire).saturating_add(slots) <= seq {
                return Ok(false);
            }
        }
        // A registration that overlaps the scan may have read the gate
        // before our update lands: rescan until none did.
        let (min, slowest) = loop {
            // SYNC POINT: SeqCst with the registration's SeqCst bump of
            // `registrations` and load of `gate` in `Subscriber::register`:
            // either we see the bump (and rescan, seeing the subscriber), or
            // it sees our gate and starts at or after it.
            let before = ctl.registrations.load(Ordering::SeqCst);
            let (min, at) = self.ring.scan_gate(seq);
            debug_assert!(min <= seq, "the scan starts at the claim and only lowers");
            // SYNC POINT: SeqCst RMW. In the SeqCst order it falls between
            // our two loads of `registrations`, which is what the Dekker
            // argument above needs (a registration that bumps after our
            // second load then reads this gate). Its Release half pairs with
            // other publishers' Acquire loads of `gate` (`gate_allows`,
            // `Publisher::register`), passing on the cursor loads of the
            // scan: what those subscribers read happens before they reuse.
            ctl.gate.fetch_max(min, Ordering::SeqCst);
            // SYNC POINT: SeqCst, the second look of the pair: unchanged
            // means no registration's SeqCst bump in `Subscriber::register`
            // came between our two looks.
            if ctl.registrations.load(Ordering::SeqCst) == before {
                break (min, at);
            }
        };
        self.slowest = slowest;
        if min > self.gate_cache {
            self.gate_cache = min;
        }
        Ok(seq < self.gate_cache.saturating_add(slots))
    }

    /// While blocked, every millisecond or so: look for dead subscribers.
    fn maybe_reap(&mut self) {
        self.full_polls = self.full_polls.wrapping_add(1);
        if self.full_polls % 256 != 0 {
            return;
        }
        let now = monotonic_ns();
        if now.saturating_sub(self.last_reap_ns) >= 1_000_000 {
            self.last_reap_ns = now;
            self.ring.reap_dead_subscribers();
        }
    }

    #[inline]
    fn check_len(&self, len: usize) -> Result<(), ClaimError> {
        if len > self.ring.max_payload as usize {
            return Err(ClaimError::TooLarge {
                len,
                max: self.ring.max_payload,
            });
        }
        Ok(())
    }

    /// Claims a sequence number without waiting for subscribers.
    ///
    /// The publisher of a topic with one publisher slot is the only writer
    /// of `tail` (a successor registers only once its lock is free, that is
    /// once it died), so it claims with a plain store; others claim with an
    /// atomic add (`Overwrite`) or a compare-and-swap (`Backpressure`).
    #[inline]
    pub(super) fn reserve(&mut self) -> Result<u64, ClaimError> {
        match self.ring.policy {
            Policy::Overwrite => {
                let seq = if self.ring.exclusive {
                    // SYNC POINT: Acquire pairs with the Release store below
                    // by a predecessor that died (its last claim is ours to
                    // go on from).
                    let seq = self.ring.control().tail.load(Ordering::Acquire);
                    if seq <= MAX_SEQUENCE {
                        // SYNC POINT: Release, as the atomic add below.
                        self.ring.control().tail.store(seq + 1, Ordering::Release);
                    }
                    seq
                } else {
                    // SYNC POINT: AcqRel; the Release half pairs with a
                    // lapped reader's Acquire load of `tail` in
                    // `Subscriber::lapped`.
                    self.ring.control().tail.fetch_add(1, Ordering::AcqRel)
                };
                if seq > MAX_SEQUENCE {
                    return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail: seq }, seq));
                }
                Ok(seq)
            }
            Policy::Backpressure => {
                let mut announced = false;
                loop {
                    // SYNC POINT: Acquire, for an exclusive publisher, pairs
                    // with a dead predecessor's Release store below; others
                    // re-check it with their compare-and-swap.
                    let tail = self.ring.control().tail.load(Ordering::Acquire);
                    let allowed = if tail > MAX_SEQUENCE {
                        Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }, tail))
                    } else {
                        self.gate_allows(tail)
                    };
                    if allowed != Ok(true) {
                        if announced {
                            self.withdraw_claim();
                        }
                        // An error goes up; a refusal is a full log.
                        allowed?;
                        self.maybe_reap();
                        self.check_segment(self.ring.fault())?;
                        return Err(ClaimError::Full);
                    }
                    if self.ring.exclusive {
                        // SYNC POINT: Release, as the compare-and-swap below.
                        self.ring.control().tail.store(tail + 1, Ordering::Release);
                        return Ok(tail);
                    }
                    // The claim is announced before it is made. A publisher
                    // that reuses its slot a lap later claimed a later
                    // sequence, by a compare-and-swap that read from the
                    // tail's release sequence headed by ours: it sees this
                    // announcement (or our later clear, made after our last
                    // write to the slot), and so never rewrites a reclaimed
                    // slot we may still be writing in.
                    // SYNC POINT: Release, carried by our AcqRel
                    // compare-and-swap of the tail below to the Acquire load
                    // of `claimed` in `BroadcastView::owner_inside`.
                    self.ring
                        .publisher(self.slot)
                        .claimed
                        .store(tail + 1, Ordering::Release);
                    announced = true;
                    // SYNC POINT: AcqRel, as the Overwrite `fetch_add` above;
                    // its Release half also publishes the announcement to
                    // every later claimer (see above).
                    if self
                        .ring
                        .control()
                        .tail
                        .compare_exchange_weak(tail, tail + 1, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Ok(tail);
                    }
                }
            }
        }
    }

    /// Clears the announcement of a claim that was not made (or was lost
    /// before anything was written).
    #[inline]
    fn withdraw_claim(&self) {
        // SYNC POINT: Release, as in `Claim::finish` (we wrote nothing).
        self.ring
            .publisher(self.slot)
            .claimed
            .store(0, Ordering::Release);
    }

    /// Takes possession of the slot of reserved sequence `seq`; returns the
    /// stamp its commit will replace.
    ///
    /// The claim is announced in the publisher slot first (on a
    /// `Backpressure` topic for several publishers, by `reserve`, before
    /// the compare-and-swap of the tail), so a publisher about to reuse the
    /// slot a lap later can tell that we may still be writing there
    /// (`BroadcastView::owner_inside`). Then the slot must
    /// show its previous lap done (committed, reclaimed or skipped; waited
    /// for, and reclaimed after the claim timeout, if not). If that previous
    /// record was reclaimed or skipped and its claimer is alive and still
    /// inside, the sequence is given up as a skip instead: a stalled claimer
    /// never has its slot rewritten under it.
    #[inline]
    pub(super) fn enter(&mut self, seq: u64) -> Result<u64, Lost> {
        debug_assert!(
            seq <= MAX_SEQUENCE,
            "`reserve` refuses a tail past MAX_SEQUENCE"
        );
        if self.ring.policy == Policy::Backpressure && !self.ring.exclusive {
            // `reserve` announced this claim before its compare-and-swap of
            // the tail, which is what a publisher reusing the slot a lap
            // later relies on (see there): no fence before our look at the
            // stamp below. If that look misses a reclaim of our sequence,
            // we write into a slot that nobody reads (readers pass a
            // reclaimed slot) and nobody else writes (the next lap's
            // publisher sees us inside and gives it up as a skip), and our
            // commit fails.
            debug_assert_eq!(
                self.ring
                    .publisher(self.slot)
                    .claimed
                    .load(Ordering::Relaxed),
                seq + 1
            );
        } else {
            // SYNC POINT: Release pairs with the Acquire load of `claimed`
            // in `BroadcastView::owner_inside`. An exclusive publisher has
            // no other publisher to tell: none reuses its slots. Under
            // `Overwrite` a reclaim it misses here fails its commit; under
            // `Backpressure` nobody reclaims its claims while it lives.
            self.ring
                .publisher(self.slot)
                .claimed
                .store(seq + 1, Ordering::Release);
        }
        if self.ring.policy == Policy::Backpressure {
            // SYNC POINT: keeps the claim of the tail (`reserve`) before the
            // payload writes that follow, which under `Backpressure` go to
            // the slot in place, without a "writing" stamp. Pairs with the
            // read-only inspector's Acquire fence before its tail load in
            // `TopicInspector::intact`: a reader that saw any of our writes
            // sees our claim. Free on x86, where stores are not reordered.
            fence(Ordering::Release);
        }
        self.ring.prefetch_slot(seq.wrapping_add(PREFETCH_AHEAD));
        if self.ring.policy == Policy::Backpressure {
            // The common case, decided by one load: the slot's previous lap
            // was committed (or the slot was never used), so there is
            // nothing to wait for, reclaim or fence, and no store to make.
            // `enter_slot` returns the same for this stamp.
            // SYNC POINT: Acquire pairs with the previous lap's Release (or
            // SeqCst) commit compare-and-swap in `Claim::finish`.
            let seen = self.ring.header(seq).stamp.load(Ordering::Acquire);
            let previous_committed = match seq.checked_sub(self.ring.slots) {
                None => 0,
                Some(p) => stamp_committed(p),
            };
            if seen == previous_committed {
                return Ok(seen);
            }
        }
        let result = self.enter_slot(seq);
        if result.is_err() {
            self.withdraw_claim();
        }
        result
    }

    #[inline(never)]
    fn enter_slot(&mut self, seq: u64) -> Result<u64, Lost> {
        let ring = &self.ring;
        let h = ring.header(seq);
        let previous = seq.checked_sub(ring.slots);
        let mut stall = Stall::default();
        loop {
            // SYNC POINT: Acquire pairs with the Release or SeqCst stamp
            // CASes of the previous lap's commit, abort or reclaim.
            let seen = h.stamp.load(Ordering::Acquire);
            let (lap, state) = split_stamp(seen);
            if lap > seq {
                // Our own sequence (or a later one) is already there: a
                // waiter reclaimed it before we came in, unless the stamp
                // names a sequence nobody has claimed yet (hostile bytes, or
                // a tail moved back: every claim would otherwise be given
                // up one after the other).
                // SYNC POINT: Acquire pairs with the publishers' AcqRel
                // updates of `tail` (only to validate the stamp).
                let tail = ring.control().tail.load(Ordering::Acquire);
                if lap > tail {
                    return Err(Lost::Corrupt(Corruption {
                        kind: CorruptionKind::HeadOutOfRange { head: lap - 1 },
                        position: seq,
                    }));
                }
                return Err(Lost::Reclaimed);
            }
            // (Lap 0 is only the never-used stamp 0: no state bits.)
            let foreign = if lap == 0 {
                seen != 0
            } else {
                (lap - 1) & ring.mask != seq & ring.mask
            };
            if foreign || previous.is_some_and(|p| lap > p + 1) {
                // A stamp of a sequence that never lives in this slot, or
                // one between the previous lap and ours: no publisher
                // writes that.
                return Err(Lost::Corrupt(Corruption {
                    kind: CorruptionKind::HeadOutOfRange {
                        head: lap.wrapping_sub(1),
                    },
                    position: seq,
                }));
            }
            let previous_done = match previous {
                None => seen == 0,
                Some(p) => lap == p + 1 && state != STAMP_WRITING,
            };
            if previous_done {
                if (state == STAMP_RECLAIMED || state == STAMP_SKIPPED)
                    && seen != 0
                    && ring.owner_inside(seq, self.slot)
                {
                    // SYNC POINT: Release pairs with readers' Acquire loads
                    // of the stamp in `Subscriber::locate`; SeqCst for the
                    // sleeper check in `wake_sleepers` that follows.
                    if h.stamp
                        .compare_exchange(
                            seen,
                            stamp(seq, STAMP_SKIPPED),
                            Ordering::SeqCst,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        ring.wake_sleepers(StampWrite::SeqCstRmw);
                        return Err(Lost::Fenced);
                    }
                    continue;
                }
                if ring.policy == Policy::Backpressure {
                    // No reader is in the slot (the gate saw to it) and its
                    // older-lap stamp already reads "not yet": no store.
                    return Ok(seen);
                }
                let writing = stamp(seq, STAMP_WRITING);
                // SYNC POINT: AcqRel. Release: a reader that sees "writing
                // seq" also sees the tail claim before it (its lap
                // arithmetic never runs on a stale tail), and a reclaimer
                // that reads it passes on our `claimed` store. Acquire: the
                // previous lap's commit happens before our writes.
                if h.stamp
                    .compare_exchange(seen, writing, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    // SYNC POINT: seqlock writer side; orders the "writing"
                    // stamp before the payload stores, pairing with the
                    // Acquire fence a reader runs before re-checking it.
                    fence(Ordering::Release);
                    return Ok(writing);
                }
                continue;
            }
            // The previous lap's record is still being written (two
            // publishers a lap apart: `Overwrite`, or `Backpressure` with no
            // subscriber to gate them). Wait, and reclaim it once its
            // claimer has held it past the claim timeout.
            if let Some(p) = previous {
                if stall.look() % LOOKS_PER_STALL_CHECK == 0 {
                    if let Some(fault) = ring.fault_slow() {
                        return Err(Lost::Unusable(fault));
                    }
                    // (A sole publisher never waits here on a live claimer:
                    // the previous lap was its own, committed, or its dead
                    // predecessor's, reclaimed when it registered.)
                    if stall.waited_ns(p, seq) >= ring.reclaim_after_ns && ring.reclaim(p) {
                        counters::add(&ring.publisher(self.slot).counters.reclaims, 1);
                    }
                }
            }
            spin_hint();
        }
    }

    /// Fails, from now on, if `fault` says the segment is unusable.
    #[inline]
    fn check_segment(&mut self, fault: Option<SegmentFault>) -> Result<(), ClaimError> {
        if let Some(f) = fault {
            self.unusable = Some(f);
        }
        match self.unusable {
            Some(f) => Err(ClaimError::Unusable(f)),
            None => Ok(()),
        }
    }

    /// Reserves a sequence and enters its slot: (sequence, stamp to replace).
    ///
    /// Every 256th claim also looks at the segment (at most one `fstat`
    /// every 20 ms), so a publisher that never waits (`Overwrite`, or a log
    /// that is never full) still finds out that its log or directory was
    /// removed; the rest cost one test of a local field.
    #[inline(always)]
    fn reserve_and_enter(&mut self) -> Result<(u64, u64), ClaimError> {
        self.claims = self.claims.wrapping_add(1);
        let fault = if self.claims % 256 == 0 {
            self.ring.fault_slow()
        } else {
            None
        };
        self.check_segment(fault)?;
        let mut reclaimed_in_a_row = 0u32;
        loop {
            let seq = self.reserve()?;
            match self.enter(seq) {
                Ok(expected) => return Ok((seq, expected)),
                // Nothing was written: take the next sequence. A reclaimed
                // one is counted (readers count it missed). Taking one
                // needs a stall past the claim timeout between reserving and
                // entering; many in a row are stamps no publisher wrote.
                Err(Lost::Reclaimed) => {
                    self.count_reclaimed();
                    reclaimed_in_a_row += 1;
                    if reclaimed_in_a_row >= 16 {
                        return Err(self.corrupt(CorruptionKind::HeadOutOfRange { head: seq }, seq));
                    }
                }
                Err(Lost::Fenced) => {}
                Err(Lost::Unusable(fault)) => {
                    self.unusable = Some(fault);
                    return Err(ClaimError::Unusable(fault));
                }
                Err(Lost::Corrupt(c)) => return Err(self.corrupt(c.kind, c.position)),
            }
        }
    }

    #[inline]
    fn claim_at(&mut self, (seq, expected): (u64, u64), len: usize) -> Claim<'_> {
        self.ring.note(seq, len, true);
        Claim {
            publisher: self,
            seq,
            len,
            record_type: 0,
            expected,
            written: false,
        }
    }

    /// Claims the next record without waiting for subscribers.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Full`] (`Backpressure` only), [`ClaimError::TooLarge`],
    /// [`ClaimError::Corrupt`] or [`ClaimError::Unusable`].
    #[inline(always)]
    pub fn try_claim(&mut self, len: usize) -> Result<Claim<'_>, ClaimError> {
        self.check_len(len)?;
        let entered = match self.reserve_and_enter() {
            Ok(entered) => entered,
            Err(e) => {
                if e == ClaimError::Full {
                    counters::count_full(self.counters());
                }
                return Err(e);
            }
        };
        Ok(self.claim_at(entered, len))
    }

    /// Claims the next record, waiting with `wait` (`Backpressure`) while
    /// the slowest live subscriber is a whole log behind.
    ///
    /// # Errors
    ///
    /// [`ClaimError::CannotSleep`] for [`WaitStrategy::Blocking`] (nothing
    /// wakes a waiting publisher), or as [`Publisher::try_claim`] but never
    /// `Full`.
    pub fn claim_blocking(
        &mut self,
        len: usize,
        wait: WaitStrategy,
    ) -> Result<Claim<'_>, ClaimError> {
        self.claim_timeout(len, wait, Duration::MAX)
    }

    /// As [`Publisher::claim_blocking`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`ClaimError::TimedOut`], or as [`Publisher::claim_blocking`].
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
        let entered = loop {
            match self.reserve_and_enter() {
                Err(ClaimError::Full) => {}
                other => break other,
            }
            full.found_full(self.counters(), &waiter);
            // Spinning rounds look at the segment every 256 tries (in
            // `reserve_and_enter`); slower rounds every time.
            if !waiter.spinning() {
                if let Err(e) = self.check_segment(self.ring.fault_slow()) {
                    break Err(e);
                }
            }
            if waiter.timed_out() {
                break Err(ClaimError::TimedOut);
            }
            waiter.wait();
        };
        full.end(self.counters());
        Ok(self.claim_at(entered?, len))
    }

    /// Copies `payload` into a new record and commits it without waiting.
    ///
    /// # Errors
    ///
    /// As [`Publisher::try_claim`] and [`Claim::commit`].
    pub fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<u64, ClaimError> {
        let mut claim = self.try_claim(payload.len())?;
        claim.fill_from(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Copies `payload` into a new record and commits it, waiting while the
    /// log is full.
    ///
    /// # Errors
    ///
    /// As [`Publisher::claim_blocking`] and [`Claim::commit`].
    pub fn send_blocking(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
    ) -> Result<u64, ClaimError> {
        self.send_timeout(record_type, payload, wait, Duration::MAX)
    }

    /// Copies `payload` into a new record and commits it, waiting up to
    /// `timeout` while the log is full.
    ///
    /// # Errors
    ///
    /// As [`Publisher::claim_timeout`] and [`Claim::commit`].
    pub fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<u64, ClaimError> {
        let mut claim = self.claim_timeout(payload.len(), wait, timeout)?;
        claim.fill_from(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Test hook: leaves the log as a process killed now would (the slot
    /// stays as it is, the liveness lock goes), without running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring.liveness.unlock(lock_slot::publisher(self.slot));
        core::mem::forget(self);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let p = self.ring.publisher(self.slot);
        let word = p.state.load(Ordering::Relaxed);
        // SYNC POINT: Release, as in `Publisher::register`: nothing
        // Acquire-loads it today (inspection reads it Relaxed); the next
        // owner is ordered after us by the liveness lock we release below.
        p.state.store(
            participant::with_state(word, participant::FREE),
            Ordering::Release,
        );
        self.ring.liveness.unlock(lock_slot::publisher(self.slot));
    }
}

/// A claimed record: write the payload through it, then [`Claim::commit`].
///
/// Under `Backpressure` the bytes are the slot itself (no subscriber reads
/// it before the commit). Under `Overwrite` subscribers may be copying the
/// slot at any moment, so the claim's bytes are the publisher's own staging
/// buffer, and the commit copies them into the slot word by word just
/// before it publishes the stamp ([`Publisher::try_send`] writes the
/// slot directly and skips that copy).
///
/// A claim that is dropped uncommitted is published as a skip record
/// (subscribers pass over it), so the log never stalls on it.
pub struct Claim<'a> {
    publisher: &'a mut Publisher,
    seq: u64,
    len: usize,
    record_type: u16,
    /// The stamp our commit replaces: the previous lap's (`Backpressure`)
    /// or our "writing" stamp (`Overwrite`).
    expected: u64,
    /// `Overwrite`: the payload is already in the slot ([`Claim::fill_from`]),
    /// so the commit does not copy the staging buffer.
    written: bool,
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

    /// Copies `payload` (exactly the claimed length) into the record: in
    /// place under `Backpressure`; under `Overwrite` straight into the slot,
    /// word by word, with no staging copy.
    fn fill_from(&mut self, payload: &[u8]) {
        debug_assert_eq!(payload.len(), self.len);
        match self.publisher.ring.policy {
            Policy::Backpressure => self.copy_from_slice(payload),
            Policy::Overwrite => {
                self.publisher.ring.write_racy(self.seq, payload);
                self.written = true;
            }
        }
    }

    /// Publishes the slot as `state`; false if a waiter reclaimed it.
    #[inline(always)]
    fn finish(&mut self, state: u64) -> bool {
        if state == STAMP_COMMITTED
            && self.publisher.ring.policy == Policy::Overwrite
            && !self.written
        {
            let staged = &self.publisher.staging[..self.len];
            self.publisher.ring.write_racy(self.seq, staged);
        }
        let ring = &self.publisher.ring;
        // What `check_len` and `enter_slot` made sure of.
        debug_assert!(self.len <= ring.max_payload as usize);
        debug_assert!(
            self.expected == stamp(self.seq, STAMP_WRITING)
                || self.expected == 0
                || split_stamp(self.expected).0 + ring.slots == self.seq + 1,
            "a claim replaces its own writing stamp or the previous lap's"
        );
        // Loom: the claimer's writes to the slot last until here.
        ring.note(self.seq, self.len, true);
        let h = ring.header(self.seq);
        if state == STAMP_COMMITTED {
            // If the claim was reclaimed nobody reads this word: readers skip
            // a reclaimed slot, and the next lap waits for us (`claimed`).
            h.word.store(
                pack_record_header(self.len as u32, self.record_type, 0),
                Ordering::Relaxed,
            );
        }
        let new = stamp(self.seq, state);
        let published = if self.publisher.commit_write == StampWrite::SeqCstRmw {
            // SYNC POINT: the commit; its Release half pairs with
            // subscribers' Acquire load of the stamp in `Subscriber::locate`:
            // header and payload are visible once they see it. SeqCst: the
            // first half of the sleeper check in `wake_sleepers` (a locked
            // instruction on x86 whatever the ordering). It fails if
            // `BroadcastView::reclaim` took the claim.
            h.stamp
                .compare_exchange(self.expected, new, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        } else {
            // The sole publisher of a `Backpressure` log: nobody else writes
            // this stamp while we live (`BroadcastView::may_reclaim`), so a
            // plain store commits, with no locked instruction.
            // SYNC POINT: the commit; Release pairs with subscribers' Acquire
            // load of the stamp in `Subscriber::locate`, as above.
            h.stamp.store(new, Ordering::Release);
            true
        };
        if published && self.publisher.push {
            ring.demote_record(self.seq, self.len);
        }
        // SYNC POINT: Release pairs with the Acquire load in
        // `BroadcastView::owner_inside`: all our writes to the slot happen
        // before a later lap's publisher, seeing this, writes it.
        ring.publisher(self.publisher.slot)
            .claimed
            .store(0, Ordering::Release);
        if published && ring.wake_sleepers(self.publisher.commit_write) {
            counters::add(&ring.publisher(self.publisher.slot).counters.wakes, 1);
        }
        published
    }

    /// Commits the record: one compare-and-swap of its stamp. Returns its
    /// sequence number.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Reclaimed`] if this claim stayed uncommitted past the
    /// topic's claim timeout and a waiter reclaimed it: the record was not
    /// published (subscribers count it missed), and nothing it wrote
    /// reached anyone. Never for the sole publisher of a `Backpressure`
    /// topic, whose claims nobody reclaims while it lives.
    #[inline]
    pub fn commit(mut self) -> Result<u64, ClaimError> {
        let published = self.finish(STAMP_COMMITTED);
        let seq = self.seq;
        let result = if published {
            self.publisher.count_published(self.len);
            Ok(seq)
        } else {
            self.publisher.count_reclaimed();
            Err(ClaimError::Reclaimed { sequence: seq })
        };
        core::mem::forget(self);
        result
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Aborted: publish a skip record so nobody waits on this slot.
        self.finish(STAMP_SKIPPED);
    }
}

impl Deref for Claim<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &self.publisher.ring;
        if ring.policy == Policy::Overwrite {
            return &self.publisher.staging[..self.len];
        }
        // SAFETY: the claimed slot's payload area holds `max_payload >= len`
        // bytes, and no other publisher writes it while we are `claimed`.
        unsafe {
            core::slice::from_raw_parts(ring.payloads.add(ring.payload_offset(self.seq)), self.len)
        }
    }
}

impl core::ops::DerefMut for Claim<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        if self.publisher.ring.policy == Policy::Overwrite {
            self.written = false;
            return &mut self.publisher.staging[..self.len];
        }
        let ring = &self.publisher.ring;
        // SAFETY: as for `deref`; `&mut self` makes this the only slice.
        unsafe {
            core::slice::from_raw_parts_mut(
                ring.payloads.add(ring.payload_offset(self.seq)),
                self.len,
            )
        }
    }
}
