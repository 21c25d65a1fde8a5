//! Multi-producer broadcast log: many publishers append, any number of
//! subscribers each read every record at their own pace.
//!
//! The log is a ring of `slots` fixed-size record slots. A record is one
//! slot (payloads are variable-length up to the slot's maximum), and a
//! position is a record sequence number: record `s` lives in slot
//! `s & (slots - 1)`. That is what makes a lapped subscriber's loss exact.
//!
//! ```text
//!   publishers: seq = tail.fetch_add(1)          subscribers: own cursor each
//!                   |                                 |        |
//!                   v                                 v        v
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | s=8    | s=9    | s=10   | s=3    | s=4    | s=5    | s=6    | s=7    |
//! | done   | writing| (claim)| done   | done   | done   | done   | done   |
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! ```
//!
//! **Publishing.** A publisher claims a sequence with one atomic add on
//! `tail` (a compare-and-swap in [`Publisher::try_claim`] under
//! `Backpressure`, which must not claim when full), under `Overwrite` marks
//! the slot's stamp "writing", writes header and payload in place, and
//! commits by storing the slot's stamp with `Release`: until then the record
//! is visibly incomplete (its stamp still names an older lap).
//! The cost does not depend on the number of subscribers: under
//! `Backpressure` a publisher compares against a cached minimum of the
//! subscriber cursors (the *gate*) and rescans the cursors only when the
//! cache says the log is full, once per lap at most.
//!
//! **Policies.**
//! * [`Policy::Backpressure`]: nothing is lost. A publisher never claims a
//!   slot whose previous record some live subscriber (or detached durable
//!   one) has not read. A subscriber whose process died stops gating as soon
//!   as a blocked publisher notices its liveness lock is gone.
//! * [`Policy::Overwrite`]: publishers never wait for subscribers. Each slot
//!   stamp works as a seqlock: a subscriber checks it before and after
//!   reading, so an overwritten record is reported as
//!   [`RecvError::Lapped`] with the exact number of records missed, never
//!   returned torn.
//!
//! **Crashes.** A publisher killed between claim and commit leaves one
//! incomplete slot. A reader (or lapping publisher) that has waited on it
//! for longer than the topic's claim timeout turns it into a skip record,
//! counted in `reclaimed_claims`, and goes on.

use core::ops::Deref;
use core::ptr::NonNull;
use std::time::Duration;

use crate::layout::{
    pack_record_header, participant, split_stamp, stamp, stamp_committed, unpack_record_header,
    BroadcastControl, PublisherSlot, RecordSlotHeader, SegmentFault, SubscriberSlot, MAX_SEQUENCE,
    SLOT_HEADER_LEN, STAMP_COMMITTED, STAMP_RECLAIMED, STAMP_SKIPPED, STAMP_WRITING,
};
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{
    fence, futex_wait, futex_wait_until, futex_wake_all, monotonic_ns, spin_hint, AccessTracker,
    AtomicU32, AtomicU64, HeapBytes, HeapLocks, Ordering,
};
use crate::wait::{WaitStrategy, Waiter};

/// Longest futex sleep of a blocking subscriber between looks at the log
/// (it also wakes earlier for a stalled claim's timeout or its deadline).
/// A subscriber finding its next record not committed looks at the tail
/// (the publishers' hottest line) once every this many looks.
const LOOKS_PER_TAIL_CHECK: u32 = 64;

/// A publisher waiting for the previous lap of its slot reads the clock
/// once every this many looks. Under loom every look is a scheduling point
/// already, so it reads it every time.
const LOOKS_PER_STALL_CHECK: u32 = if cfg!(shmbus_loom) { 1 } else { 1024 };

/// Short enough that a removed log or directory is noticed within it.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// What a broadcast log does when a subscriber falls a whole ring behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Publishers wait for the slowest live subscriber: nothing is lost.
    Backpressure,
    /// Publishers never wait; a lapped subscriber is told how much it missed.
    Overwrite,
}

impl Policy {
    /// The value stored in shared memory.
    pub fn to_raw(self) -> u32 {
        match self {
            Policy::Backpressure => 0,
            Policy::Overwrite => 1,
        }
    }

    /// Decodes a value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Policy::Backpressure),
            1 => Some(Policy::Overwrite),
            _ => None,
        }
    }
}

/// Where a new subscriber starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartAt {
    /// At the next record published after it subscribes.
    #[default]
    Tail,
    /// At the oldest record still in the log.
    Oldest,
}

/// Longest claim timeout a log may have: a stalled or dead publisher's
/// claim holds its readers back at most this long.
pub const MAX_CLAIM_TIMEOUT: Duration = Duration::from_secs(3600);

/// Size and behaviour of a broadcast log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastConfig {
    /// Record slots: a power of two.
    pub slots: u32,
    /// Largest payload of one record, 1..=1 MiB.
    pub max_payload: u32,
    /// Back-pressure or overwrite.
    pub policy: Policy,
    /// Subscriber slots (1..=4096).
    pub max_subscribers: u32,
    /// Publisher slots (1..=1024).
    pub max_publishers: u32,
    /// How long a claim may stay uncommitted before a waiter reclaims it.
    pub claim_timeout: Duration,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            slots: 4096,
            max_payload: 240,
            policy: Policy::Backpressure,
            max_subscribers: 64,
            max_publishers: 16,
            claim_timeout: Duration::from_secs(2),
        }
    }
}

impl BroadcastConfig {
    /// Bytes per record slot: header plus payload, rounded up to 64.
    pub fn slot_stride(&self) -> usize {
        (SLOT_HEADER_LEN + self.max_payload as usize).div_ceil(64) * 64
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// A sentence saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.slots.is_power_of_two() {
            return Err(format!("slots {} must be a power of two", self.slots));
        }
        if self.max_payload == 0 || self.max_payload > 1 << 20 {
            return Err(format!(
                "max payload {} must be 1..=1048576",
                self.max_payload
            ));
        }
        if self.max_subscribers == 0 || self.max_subscribers > 4096 {
            return Err(format!(
                "max subscribers {} must be 1..=4096",
                self.max_subscribers
            ));
        }
        if self.max_publishers == 0 || self.max_publishers > 1024 {
            return Err(format!(
                "max publishers {} must be 1..=1024",
                self.max_publishers
            ));
        }
        if self.claim_timeout.is_zero() || self.claim_timeout > MAX_CLAIM_TIMEOUT {
            return Err(format!(
                "claim timeout {:?} must be positive and at most {:?}",
                self.claim_timeout, MAX_CLAIM_TIMEOUT
            ));
        }
        Ok(())
    }
}

/// Why a claim did not return a slot, or a commit did not publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// `Backpressure`: the slowest subscriber is a whole log behind.
    Full,
    /// The payload exceeds the topic's maximum.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// The topic's maximum payload.
        max: u32,
    },
    /// A timed claim gave up.
    TimedOut,
    /// Returned by [`Claim::commit`]: this claim stayed uncommitted longer
    /// than the topic's claim timeout (the process stalled: stopped,
    /// descheduled, paused in a debugger) and a waiter reclaimed it. The
    /// record was not published; subscribers count it as missed. Publish it
    /// again if it still matters.
    Reclaimed {
        /// The sequence the claim held.
        sequence: u64,
    },
    /// Shared memory is inconsistent.
    Corrupt(Corruption),
    /// The log's segment can no longer be used.
    Unusable(SegmentFault),
}

/// Why a subscriber got no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing new yet.
    Empty,
    /// `Overwrite`: publishers overwrote `missed` records before this
    /// subscriber read them. It now continues at the oldest record still
    /// intact.
    Lapped {
        /// Records lost, exactly.
        missed: u64,
    },
    /// A timed read gave up.
    TimedOut,
    /// A copy buffer is smaller than the record.
    BufferTooSmall {
        /// The record's length.
        needed: usize,
    },
    /// Shared memory is inconsistent. [`Subscriber::skip`] passes the
    /// record at fault (counted as missed).
    Corrupt(Corruption),
    /// The log's segment can no longer be used.
    Unusable(SegmentFault),
}

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimError::Full => write!(
                f,
                "log is full (the slowest subscriber is a whole log behind)"
            ),
            ClaimError::TooLarge { len, max } => {
                write!(
                    f,
                    "record of {len} bytes exceeds the topic's maximum payload of {max}"
                )
            }
            ClaimError::TimedOut => write!(f, "timed out waiting for the slowest subscriber"),
            ClaimError::Reclaimed { sequence } => write!(
                f,
                "record {sequence} was not published: the claim stayed uncommitted past the topic's claim timeout and was reclaimed (publish it again)"
            ),
            ClaimError::Corrupt(c) => write!(f, "log is corrupt: {c}"),
            ClaimError::Unusable(fault) => write!(f, "log is unusable: {fault}"),
        }
    }
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Empty => write!(f, "no new record"),
            RecvError::Lapped { missed } => {
                write!(f, "lapped by publishers: {missed} records missed")
            }
            RecvError::TimedOut => write!(f, "timed out waiting for a record"),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small for a {needed}-byte record")
            }
            RecvError::Corrupt(c) => write!(
                f,
                "log is corrupt: {c} (Subscriber::skip passes the record)"
            ),
            RecvError::Unusable(fault) => write!(f, "log is unusable: {fault}"),
        }
    }
}

impl std::error::Error for ClaimError {}
impl std::error::Error for RecvError {}

/// Liveness-lock slot of subscriber slot `i` in a broadcast segment.
pub const fn subscriber_lock(i: usize) -> u64 {
    1_000 + i as u64
}

/// Liveness-lock slot of publisher slot `j` in a broadcast segment.
pub const fn publisher_lock(j: usize) -> u64 {
    100_000 + j as u64
}

/// Proof of life of the participants: kernel locks on a segment, or flags
/// for an in-process log.
pub(crate) enum Liveness {
    Heap(std::sync::Arc<HeapBroadcast>),
    /// A mapped log, and the directory segment that named it (watched
    /// too: a topic whose directory is removed is unusable).
    #[cfg(not(shmbus_loom))]
    Mapped {
        log: crate::segment::Segment,
        directory: std::sync::Arc<crate::segment::Segment>,
    },
}

impl Liveness {
    fn try_lock(&self, slot: u64) -> bool {
        match self {
            Liveness::Heap(h) => h.locks.try_lock(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { log, .. } => log.try_lock(slot).unwrap_or(false),
        }
    }

    fn unlock(&self, slot: u64) {
        match self {
            Liveness::Heap(h) => h.locks.unlock(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { log, .. } => {
                let _ = log.unlock(slot);
            }
        }
    }

    /// Whether another holder (a live process) has `slot`. Errs on "alive".
    fn held_by_other(&self, slot: u64) -> bool {
        match self {
            Liveness::Heap(h) => h.locks.is_held(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { log, .. } => log.is_lock_held(slot).unwrap_or(true),
        }
    }

    /// The cheap check of the memory under the log (no system call).
    #[inline]
    fn fault(&self) -> Option<SegmentFault> {
        match self {
            Liveness::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { log, directory } => log.fault().or_else(|| directory.fault()),
        }
    }

    /// The full check of the memory under the log (one `fstat`).
    fn fault_slow(&self) -> Option<SegmentFault> {
        match self {
            Liveness::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { log, directory } => {
                log.fault_slow().or_else(|| directory.fault_slow())
            }
        }
    }
}

/// Memory of an in-process log (tests, loom models).
pub(crate) struct HeapBroadcast {
    control: BroadcastControl,
    subscribers: Box<[SubscriberSlot]>,
    publishers: Box<[PublisherSlot]>,
    headers: Box<[RecordSlotHeader]>,
    payloads: HeapBytes,
    tracker: AccessTracker,
    locks: HeapLocks,
}

/// Everything a handle knows about its log, read once and validated.
pub(crate) struct BroadcastView {
    control: NonNull<BroadcastControl>,
    subscribers: NonNull<SubscriberSlot>,
    publishers: NonNull<PublisherSlot>,
    headers: *const u8,
    header_stride: usize,
    payloads: *mut u8,
    payload_stride: usize,
    tracker: *const AccessTracker,
    slots: u64,
    mask: u64,
    max_payload: u32,
    policy: Policy,
    max_subscribers: usize,
    max_publishers: usize,
    claim_timeout_ns: u64,
    liveness: Liveness,
    /// Futex wakes that found nobody asleep although `sleepers` said
    /// otherwise (a sleeper died): every 1024, dead subscribers are reaped.
    idle_wakes: core::cell::Cell<u32>,
    /// When [`BroadcastView::fault_slow`] last asked the file system.
    last_fault_check_ns: core::cell::Cell<u64>,
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
            slots: u64::from(c.slots),
            mask: u64::from(c.slots) - 1,
            max_payload: c.max_payload,
            policy: c.policy,
            max_subscribers: c.max_subscribers as usize,
            max_publishers: c.max_publishers as usize,
            claim_timeout_ns: c.claim_timeout.as_nanos().min(u128::from(u64::MAX)) as u64,
            liveness: parts.liveness,
            idle_wakes: core::cell::Cell::new(0),
            last_fault_check_ns: core::cell::Cell::new(0),
        }
    }

    fn control(&self) -> &BroadcastControl {
        // SAFETY: `new`'s contract.
        unsafe { self.control.as_ref() }
    }

    fn subscriber(&self, i: usize) -> &SubscriberSlot {
        debug_assert!(i < self.max_subscribers);
        // SAFETY: `i < max_subscribers`, the length of the slot array.
        unsafe { &*self.subscribers.as_ptr().add(i) }
    }

    fn publisher(&self, j: usize) -> &PublisherSlot {
        debug_assert!(j < self.max_publishers);
        // SAFETY: `j < max_publishers`, the length of the slot array.
        unsafe { &*self.publishers.as_ptr().add(j) }
    }

    #[inline(always)]
    fn header(&self, seq: u64) -> &RecordSlotHeader {
        let i = (seq & self.mask) as usize;
        // SAFETY: `i < slots`; headers are `header_stride` apart and aligned.
        unsafe { &*(self.headers.add(i * self.header_stride) as *const RecordSlotHeader) }
    }

    #[inline(always)]
    fn payload_offset(&self, seq: u64) -> usize {
        (seq & self.mask) as usize * self.payload_stride
    }

    #[inline(always)]
    fn tracker(&self) -> &AccessTracker {
        // SAFETY: `new`'s contract.
        unsafe { &*self.tracker }
    }

    /// Loom tracking of payload bytes, only where the protocol promises
    /// exclusive access (`Backpressure`); `Overwrite` reads race by design
    /// and are validated by the stamp instead.
    #[inline(always)]
    fn note(&self, seq: u64, len: usize, write: bool) {
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
    fn scan_gate(&self, upper: u64) -> (u64, Option<usize>) {
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
    fn reap_dead_subscribers(&self) -> u64 {
        let mut reaped = 0;
        for i in 0..self.max_subscribers {
            let s = self.subscriber(i);
            // SYNC POINT: pairs with the registration's Release update of the
            // state word in `take_slot`: name and cursor are its own.
            let word = s.state.load(Ordering::Acquire);
            let state = participant::state(word);
            if state != participant::LIVE && state != participant::CLAIMING {
                continue;
            }
            if self.liveness.held_by_other(subscriber_lock(i)) {
                continue;
            }
            let durable = state == participant::LIVE && s.durable_name_len().is_some();
            let next = if durable {
                participant::DETACHED
            } else {
                participant::FREE
            };
            // SYNC POINT: AcqRel on the state word, the only word a reaper
            // and a registration both write; fails if `take_slot` bumped
            // the generation since our load.
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
    fn forget_sleeper(&self, s: &SubscriberSlot) {
        // SYNC POINT: AcqRel swap; whoever turns the flag from 1 to 0 (the
        // sleeper itself in `Subscriber::sleep`, or a reaper) decrements.
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
    fn reclaim(&self, seq: u64) -> bool {
        let h = self.header(seq);
        // SYNC POINT: Acquire pairs with the Release compare-and-swaps of
        // the stamp by publishers (`Publisher::enter`, `Claim::finish`).
        let seen = h.stamp.load(Ordering::Acquire);
        let (lap, state) = split_stamp(seen);
        let want = seq.wrapping_add(1);
        if lap > want || (lap == want && state != STAMP_WRITING) {
            return true;
        }
        // SYNC POINT: SeqCst; under `Backpressure` this is the Dekker
        // partner of the SeqCst fence in `Publisher::enter` (either the
        // claimer sees this reclaim before writing, or the publisher that
        // reuses the slot sees the claimer's `claimed` in `owner_inside`).
        // Under `Overwrite` it reads from the claimer's "writing" CAS, so a
        // publisher that Acquire-loads our stamp also sees `claimed`.
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
        self.wake_sleepers();
        true
    }

    /// Whether a live publisher other than `me` holds a claim of an older
    /// lap of `seq`'s slot, and so may still write into it. Asked before
    /// reusing a slot whose previous record was reclaimed or skipped (the
    /// only cases where a claimer can still be inside).
    #[cold]
    fn owner_inside(&self, seq: u64, me: usize) -> bool {
        // SYNC POINT: Dekker partner of the SeqCst fence in
        // `Publisher::enter` (Backpressure), through the SeqCst reclaim CAS
        // our caller's stamp load read from.
        fence(Ordering::SeqCst);
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
            c & self.mask == index && c < seq && self.liveness.held_by_other(publisher_lock(j))
        })
    }

    /// After a commit: wakes sleeping subscribers, with no system call when
    /// there are none.
    #[inline(always)]
    fn wake_sleepers(&self) {
        let ctl = self.control();
        // SYNC POINT: Dekker pair with the SeqCst fence in
        // `Subscriber::sleep`: either we see its sleeper count, or it sees
        // our commit before it sleeps.
        fence(Ordering::SeqCst);
        if ctl.sleepers.load(Ordering::Relaxed) != 0 {
            // SYNC POINT: Release pairs with the sleeper's Acquire load of
            // `wake_seq` before it sleeps.
            ctl.wake_seq.fetch_add(1, Ordering::Release);
            if futex_wake_all(&ctl.wake_seq) == 0 {
                self.idle_wake();
            }
        }
    }

    /// A wake found nobody: usually a sleeper between counting itself and
    /// sleeping, but a sleeper that died keeps the count up for good, so
    /// now and then look for dead subscribers.
    #[cold]
    fn idle_wake(&self) {
        let n = self.idle_wakes.get().wrapping_add(1);
        self.idle_wakes.set(n);
        if n % 1024 == 0 {
            self.reap_dead_subscribers();
        }
    }

    /// Whether the log's segment still reaches its peers (the cheap check,
    /// no system call).
    #[inline]
    fn fault(&self) -> Option<SegmentFault> {
        self.liveness.fault()
    }

    /// As [`BroadcastView::fault`], plus the file-system check (one
    /// `fstat`), at most every 20 ms per handle.
    fn fault_slow(&self) -> Option<SegmentFault> {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_fault_check_ns.get()) < 20_000_000 {
            return self.fault();
        }
        self.last_fault_check_ns.set(now);
        self.liveness.fault_slow()
    }
}

/// How long a waiter has watched claimed but uncommitted records.
///
/// The timer starts when a waiter first finds the record at its position
/// claimed (the tail past it) but not committed, and remembers the tail it
/// saw then: every sequence below that tail was claimed before the timer
/// started, so once the timer passes the claim timeout all of them may be
/// reclaimed at once, one after the other, without a new timer each (a
/// burst of dead claims costs one timeout, not one per claim).
#[derive(Default)]
struct Stall {
    /// Looks at uncommitted records (wrapping): paces the tail reads.
    looks: u32,
    /// `CLOCK_MONOTONIC` ns the timer started; 0 when not running.
    since_ns: u64,
    /// The tail when the timer started: sequences below it are covered.
    covers: u64,
}

impl Stall {
    /// Counts one more look; returns the count.
    #[inline]
    fn look(&mut self) -> u32 {
        self.looks = self.looks.wrapping_add(1);
        self.looks
    }

    /// How long `seq` (claimed: `tail > seq`) has been waited on, starting
    /// the timer if it is not running for it.
    fn waited_ns(&mut self, seq: u64, tail: u64) -> u64 {
        let now = monotonic_ns();
        if self.since_ns == 0 || seq >= self.covers {
            self.since_ns = now.max(1);
            self.covers = tail;
            return 0;
        }
        now.saturating_sub(self.since_ns)
    }

    /// Stops the timer (nothing is claimed ahead).
    fn clear(&mut self) {
        self.since_ns = 0;
    }

    /// Time until the running timer reaches `timeout_ns`, if one runs.
    fn left(&self, timeout_ns: u64) -> Option<Duration> {
        (self.since_ns != 0).then(|| {
            let due = self.since_ns.saturating_add(timeout_ns);
            Duration::from_nanos(due.saturating_sub(monotonic_ns()))
        })
    }
}

/// Creates an in-process broadcast log on the heap (tests, benchmarks,
/// loom models). Handles are made with [`HeapLog::publisher`] and
/// [`HeapLog::subscriber`].
///
/// # Errors
///
/// The configuration is invalid.
pub fn heap(config: BroadcastConfig) -> Result<HeapLog, String> {
    config.validate()?;
    let slots = config.slots as usize;
    let payload_stride = config.max_payload.div_ceil(8) as usize * 8;
    let mem = std::sync::Arc::new(HeapBroadcast {
        control: BroadcastControl::new(&config),
        subscribers: (0..config.max_subscribers)
            .map(|_| SubscriberSlot::new())
            .collect(),
        publishers: (0..config.max_publishers)
            .map(|_| PublisherSlot::new())
            .collect(),
        headers: (0..slots).map(|_| RecordSlotHeader::new()).collect(),
        payloads: HeapBytes::zeroed(slots * payload_stride),
        tracker: AccessTracker::new(slots * payload_stride),
        locks: HeapLocks::with_ids(
            (0..config.max_subscribers as usize)
                .map(subscriber_lock)
                .chain((0..config.max_publishers as usize).map(publisher_lock))
                .collect(),
        ),
    });
    Ok(HeapLog {
        mem,
        config,
        payload_stride,
    })
}

/// An in-process broadcast log; see [`heap`].
pub struct HeapLog {
    mem: std::sync::Arc<HeapBroadcast>,
    config: BroadcastConfig,
    payload_stride: usize,
}

impl HeapLog {
    fn view(&self) -> BroadcastView {
        let m = &self.mem;
        let parts = ViewParts {
            control: NonNull::from(&m.control),
            subscribers: NonNull::from(&m.subscribers[0]),
            publishers: NonNull::from(&m.publishers[0]),
            headers: m.headers.as_ptr() as *const u8,
            header_stride: core::mem::size_of::<RecordSlotHeader>(),
            payloads: m.payloads.as_mut_ptr(),
            payload_stride: self.payload_stride,
            tracker: &m.tracker,
            config: self.config,
            liveness: Liveness::Heap(m.clone()),
        };
        // SAFETY: every array was allocated above for this config and the
        // Arc in `liveness` keeps it alive.
        unsafe { BroadcastView::new(parts) }
    }

    /// A new publisher.
    ///
    /// # Errors
    ///
    /// Every publisher slot is taken.
    pub fn publisher(&self) -> Result<Publisher, RegisterError> {
        Publisher::register(self.view())
    }

    /// A new anonymous subscriber.
    ///
    /// # Errors
    ///
    /// Every subscriber slot is taken.
    pub fn subscriber(&self, start: StartAt) -> Result<Subscriber, RegisterError> {
        Subscriber::register(self.view(), None, start)
    }

    /// Test hook: reclaims the claim of `seq` as a waiter whose claim
    /// timeout passed would; returns whether the slot now holds `seq`
    /// resolved.
    #[doc(hidden)]
    pub fn reclaim_for_test(&self, seq: u64) -> bool {
        self.view().reclaim(seq)
    }

    /// Test hook: runs the dead-subscriber reaper once (publishers run it
    /// while blocked); returns how many slots it reaped.
    #[doc(hidden)]
    pub fn reap_for_test(&self) -> u64 {
        self.view().reap_dead_subscribers()
    }

    /// Test hook: the participant state (without generation) of
    /// subscriber slot `i`.
    #[doc(hidden)]
    pub fn subscriber_state_for_test(&self, i: usize) -> u32 {
        participant::state(self.mem.subscribers[i].state.load(Ordering::Acquire))
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
            claim_timeout_ns: c.claim_timeout.as_nanos().min(u128::from(u64::MAX)) as u64,
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
            missed: AtomicU64::new(0),
            name_len: AtomicU32::new(0),
            sleeping: AtomicU32::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            pad: [0; crate::layout::CACHE_LINE - 104],
        }
    }

    /// The length of a valid durable name (1..=64), or `None` for an
    /// anonymous slot or a length no build writes (hostile bytes).
    fn durable_name_len(&self) -> Option<usize> {
        let len = self.name_len.load(Ordering::Relaxed) as usize;
        (1..=64).contains(&len).then_some(len)
    }

    fn name_matches(&self, name: &[u8]) -> bool {
        self.name_len.load(Ordering::Relaxed) as usize == name.len()
            && (0..8).all(|w| self.name[w].load(Ordering::Relaxed) == name_word(name, w))
    }

    fn set_name(&self, name: &[u8]) {
        for w in 0..8 {
            self.name[w].store(name_word(name, w), Ordering::Relaxed);
        }
        self.name_len.store(name.len() as u32, Ordering::Relaxed);
    }

    /// The durable name, if any (hostile bytes: lossy, length-clamped).
    pub fn name(&self) -> Option<String> {
        let len = (self.name_len.load(Ordering::Relaxed) as usize).min(64);
        if len == 0 {
            return None;
        }
        let mut bytes = [0u8; 64];
        for w in 0..8 {
            bytes[w * 8..w * 8 + 8]
                .copy_from_slice(&self.name[w].load(Ordering::Relaxed).to_le_bytes());
        }
        Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
    }
}

/// Word `w` of a name padded with zeros to 64 bytes.
pub(crate) fn name_word(name: &[u8], w: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, byte) in b.iter_mut().enumerate() {
        *byte = name.get(w * 8 + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

impl PublisherSlot {
    pub(crate) fn new() -> Self {
        PublisherSlot {
            state: AtomicU32::new(participant::FREE),
            pid: AtomicU32::new(0),
            published: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            pad: [0; crate::layout::CACHE_LINE - 32],
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

/// Why a publisher or subscriber could not join a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Every slot of that kind is held by a live process.
    NoFreeSlot {
        /// "publisher" or "subscriber".
        role: &'static str,
        /// How many slots the topic has.
        slots: usize,
    },
    /// A live process already holds this durable subscriber name.
    DurableInUse {
        /// The name.
        name: String,
    },
    /// The durable name is empty or longer than 64 bytes.
    BadDurableName,
    /// A participant slot or a position in shared memory holds a value no
    /// build writes.
    Corrupt {
        /// "publisher" or "subscriber".
        role: &'static str,
        /// The slot at fault.
        slot: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::NoFreeSlot { role, slots } => write!(
                f,
                "all {slots} {role} slots of the topic are held by live processes (raise max_{role}s when creating the topic)"
            ),
            RegisterError::DurableInUse { name } => {
                write!(f, "durable subscriber \"{name}\" is already attached in a live process")
            }
            RegisterError::BadDurableName => write!(f, "a durable subscriber name must be 1-64 bytes"),
            RegisterError::Corrupt { role, slot, reason } => write!(
                f,
                "{role} slot {slot} of the topic is corrupt: {reason} (remove the topic and create it again)"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

// ---------------------------------------------------------------------------
// Publisher
// ---------------------------------------------------------------------------

/// A publisher on a broadcast log. Any number may publish at once.
pub struct Publisher {
    ring: BroadcastView,
    slot: usize,
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
}

/// Why [`Publisher::enter`] gave up the sequence it reserved.
enum Lost {
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
            if !ring.liveness.try_lock(publisher_lock(j)) {
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
            p.published.store(0, Ordering::Relaxed);
            p.reclaimed.store(0, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the Acquire load in
            // `BroadcastView::owner_inside`: a dead owner's claim is gone.
            p.claimed.store(0, Ordering::Release);
            // SYNC POINT: Release pairs with inspection's loads of the slot.
            p.state.store(
                participant::next_generation(word, participant::LIVE),
                Ordering::Release,
            );
            // SYNC POINT: pairs with the SeqCst fetch_max of `gate` in
            // `gate_allows` by any publisher.
            let gate_cache = ring.control().gate.load(Ordering::Acquire);
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
            });
        }
        Err(RegisterError::NoFreeSlot {
            role: "publisher",
            slots: ring.max_publishers,
        })
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

    fn count_published(&mut self) {
        self.published += 1;
        self.ring
            .publisher(self.slot)
            .published
            .store(self.published, Ordering::Relaxed);
    }

    fn count_reclaimed(&mut self) {
        self.reclaimed += 1;
        self.ring
            .publisher(self.slot)
            .reclaimed
            .store(self.reclaimed, Ordering::Relaxed);
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
    /// claimed now.
    fn gate_allows(&mut self, seq: u64) -> Result<bool, ClaimError> {
        let ctl = self.ring.control();
        // SYNC POINT: pairs with the SeqCst fetch_max of `gate` below (by
        // any publisher), which follows that publisher's Acquire loads of
        // the cursors: what those subscribers read happens before we reuse.
        let shared = ctl.gate.load(Ordering::Acquire);
        if shared > seq {
            // The gate is a minimum of cursors, and no cursor passes the tail.
            return Err(self.corrupt(CorruptionKind::HeadOutOfRange { head: shared }, seq));
        }
        if shared > self.gate_cache {
            self.gate_cache = shared;
        }
        let slots = self.ring.slots;
        if seq < self.gate_cache.saturating_add(slots) {
            return Ok(true);
        }
        // Still held back by the subscriber that was slowest at the last
        // scan? One load says so for certain (the minimum cannot be above
        // its cursor); only when it has moved on is a full scan worth it.
        if let Some(i) = self.slowest {
            let s = self.ring.subscriber(i);
            // SYNC POINT: pairs with the registration's Release update of
            // the state word (only used to decide "still full").
            let state = participant::state(s.state.load(Ordering::Acquire));
            // SYNC POINT: pairs with that subscriber's Release store of its
            // cursor (only used to decide "still full": no reuse follows).
            let gating = state == participant::LIVE || state == participant::DETACHED;
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
            ctl.gate.fetch_max(min, Ordering::SeqCst);
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
    #[inline]
    fn reserve(&mut self) -> Result<u64, ClaimError> {
        match self.ring.policy {
            Policy::Overwrite => {
                // SYNC POINT: AcqRel; the Release half pairs with a lapped
                // reader's Acquire load of `tail` in `Subscriber::lapped`.
                let seq = self.ring.control().tail.fetch_add(1, Ordering::AcqRel);
                if seq > MAX_SEQUENCE {
                    return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail: seq }, seq));
                }
                Ok(seq)
            }
            Policy::Backpressure => loop {
                let tail = self.ring.control().tail.load(Ordering::Relaxed);
                if tail > MAX_SEQUENCE {
                    return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }, tail));
                }
                if !self.gate_allows(tail)? {
                    self.maybe_reap();
                    self.check_segment(self.ring.fault())?;
                    return Err(ClaimError::Full);
                }
                // SYNC POINT: AcqRel, as the Overwrite `fetch_add` above.
                if self
                    .ring
                    .control()
                    .tail
                    .compare_exchange_weak(tail, tail + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(tail);
                }
            },
        }
    }

    /// Takes possession of the slot of reserved sequence `seq`; returns the
    /// stamp its commit will replace.
    ///
    /// The claim is announced in the publisher slot first, so a publisher
    /// about to reuse the slot a lap later can tell that we may still be
    /// writing there (`BroadcastView::owner_inside`). Then the slot must
    /// show its previous lap done (committed, reclaimed or skipped; waited
    /// for, and reclaimed after the claim timeout, if not). If that previous
    /// record was reclaimed or skipped and its claimer is alive and still
    /// inside, the sequence is given up as a skip instead: a stalled claimer
    /// never has its slot rewritten under it.
    fn enter(&mut self, seq: u64) -> Result<u64, Lost> {
        // SYNC POINT: Release pairs with the Acquire load of `claimed` in
        // `BroadcastView::owner_inside`.
        self.ring
            .publisher(self.slot)
            .claimed
            .store(seq + 1, Ordering::Release);
        if self.ring.policy == Policy::Backpressure {
            // SYNC POINT: Dekker pair with the SeqCst reclaim CAS in
            // `BroadcastView::reclaim` and the SeqCst fence in `owner_inside`:
            // either our stamp load below sees the reclaim, or the publisher
            // reusing the slot sees our `claimed`.
            fence(Ordering::SeqCst);
        }
        let result = self.enter_slot(seq);
        if result.is_err() {
            // SYNC POINT: Release, as in `Claim::finish` (we wrote nothing).
            self.ring
                .publisher(self.slot)
                .claimed
                .store(0, Ordering::Release);
        }
        result
    }

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
                    // of the stamp in `Subscriber::locate`.
                    if h.stamp
                        .compare_exchange(
                            seen,
                            stamp(seq, STAMP_SKIPPED),
                            Ordering::Release,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        ring.wake_sleepers();
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
                    if stall.waited_ns(p, seq) >= ring.claim_timeout_ns {
                        ring.reclaim(p);
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
    #[inline]
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
        }
    }

    /// Claims the next record without waiting for subscribers.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Full`] (`Backpressure` only), [`ClaimError::TooLarge`],
    /// [`ClaimError::Corrupt`] or [`ClaimError::Unusable`].
    #[inline]
    pub fn try_claim(&mut self, len: usize) -> Result<Claim<'_>, ClaimError> {
        self.check_len(len)?;
        let entered = self.reserve_and_enter()?;
        Ok(self.claim_at(entered, len))
    }

    /// Claims the next record, waiting with `wait` (`Backpressure`) while
    /// the slowest live subscriber is a whole log behind.
    ///
    /// # Errors
    ///
    /// As [`Publisher::try_claim`], but never `Full`.
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
    /// [`ClaimError::TimedOut`], or as [`Publisher::try_claim`] but never
    /// `Full`.
    pub fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Claim<'_>, ClaimError> {
        let strategy = match wait {
            // Publishers have no futex to sleep on; they back off.
            WaitStrategy::Blocking { .. } => WaitStrategy::BACKOFF,
            other => other,
        };
        self.check_len(len)?;
        let mut waiter = Waiter::with_timeout(strategy, timeout);
        let entered = loop {
            match self.reserve_and_enter() {
                Err(ClaimError::Full) => {}
                other => break other?,
            }
            // Spinning rounds look at the segment every 256 tries (in
            // `reserve_and_enter`); slower rounds every time.
            if !waiter.spinning() {
                self.check_segment(self.ring.fault_slow())?;
            }
            if waiter.timed_out() {
                return Err(ClaimError::TimedOut);
            }
            waiter.wait();
        };
        Ok(self.claim_at(entered, len))
    }

    /// Copies `payload` into a new record and commits it without waiting.
    ///
    /// # Errors
    ///
    /// As [`Publisher::try_claim`] and [`Claim::commit`].
    pub fn try_publish(&mut self, record_type: u16, payload: &[u8]) -> Result<u64, ClaimError> {
        let mut claim = self.try_claim(payload.len())?;
        claim.copy_from_slice(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Copies `payload` into a new record and commits it, waiting while the
    /// log is full.
    ///
    /// # Errors
    ///
    /// As [`Publisher::claim_blocking`] and [`Claim::commit`].
    pub fn publish_blocking(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
    ) -> Result<u64, ClaimError> {
        let mut claim = self.claim_blocking(payload.len(), wait)?;
        claim.copy_from_slice(payload);
        claim.set_record_type(record_type);
        claim.commit()
    }

    /// Test hook: leaves the log as a process killed now would (the slot
    /// stays as it is, the liveness lock goes), without running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring.liveness.unlock(publisher_lock(self.slot));
        core::mem::forget(self);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let p = self.ring.publisher(self.slot);
        let word = p.state.load(Ordering::Relaxed);
        // SYNC POINT: Release pairs with inspection's loads of the slot.
        p.state.store(
            participant::with_state(word, participant::FREE),
            Ordering::Release,
        );
        self.ring.liveness.unlock(publisher_lock(self.slot));
    }
}

/// A claimed record: write the payload in place, then [`Claim::commit`].
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

    /// Publishes the slot as `state`; false if a waiter reclaimed it.
    fn finish(&mut self, state: u64) -> bool {
        let ring = &self.publisher.ring;
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
        // SYNC POINT: the commit; Release pairs with subscribers' Acquire
        // load of the stamp in `Subscriber::locate`: header and payload are
        // visible once they see it. It fails if `BroadcastView::reclaim`
        // took the claim.
        let published = h
            .stamp
            .compare_exchange(
                self.expected,
                stamp(self.seq, state),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok();
        // SYNC POINT: Release pairs with the Acquire load in
        // `BroadcastView::owner_inside`: all our writes to the slot happen
        // before a later lap's publisher, seeing this, writes it.
        ring.publisher(self.publisher.slot)
            .claimed
            .store(0, Ordering::Release);
        if published {
            ring.wake_sleepers();
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
    /// reached anyone.
    #[inline]
    pub fn commit(mut self) -> Result<u64, ClaimError> {
        let published = self.finish(STAMP_COMMITTED);
        let seq = self.seq;
        let result = if published {
            self.publisher.count_published();
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
        // SAFETY: the claimed slot's payload area holds `max_payload >= len`
        // bytes, and no other publisher writes it while we are `claimed`.
        unsafe {
            core::slice::from_raw_parts(ring.payloads.add(ring.payload_offset(self.seq)), self.len)
        }
    }
}

impl core::ops::DerefMut for Claim<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
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

// ---------------------------------------------------------------------------
// Subscriber
// ---------------------------------------------------------------------------

/// A subscriber on a broadcast log, with its own cursor.
pub struct Subscriber {
    ring: BroadcastView,
    slot: usize,
    /// Next sequence to read.
    cursor: u64,
    /// Last cursor stored in the slot.
    released: u64,
    missed: u64,
    stall: Stall,
    reads: u32,
}

/// A located record.
#[derive(Clone, Copy)]
struct Found {
    seq: u64,
    len: usize,
    record_type: u16,
}

/// Takes subscriber slot `s` (whose liveness lock the caller holds) into
/// `state` at the next generation, whatever a reaper did meanwhile; returns
/// the word it replaced.
fn take_slot(s: &SubscriberSlot, state: u32) -> u32 {
    let mut word = s.state.load(Ordering::Relaxed);
    loop {
        // SYNC POINT: AcqRel on the state word; makes a concurrent reaper's
        // compare-and-swap of the old generation fail (`reap_dead_subscribers`).
        match s.state.compare_exchange_weak(
            word,
            participant::next_generation(word, state),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(old) => return old,
            Err(now) => word = now,
        }
    }
}

impl Subscriber {
    pub(crate) fn register(
        ring: BroadcastView,
        name: Option<&str>,
        start: StartAt,
    ) -> Result<Self, RegisterError> {
        let name = name.map(str::as_bytes);
        let corrupt = |slot: usize, reason: &'static str| RegisterError::Corrupt {
            role: "subscriber",
            slot,
            reason,
        };
        if let Some(n) = name {
            if n.is_empty() || n.len() > 64 {
                return Err(RegisterError::BadDurableName);
            }
            // A durable subscriber resumes its own slot if it has one.
            for i in 0..ring.max_subscribers {
                let s = ring.subscriber(i);
                let state = participant::state(s.state.load(Ordering::Acquire));
                if state == participant::FREE || !s.name_matches(n) {
                    continue;
                }
                if !ring.liveness.try_lock(subscriber_lock(i)) {
                    return Err(RegisterError::DurableInUse {
                        name: String::from_utf8_lossy(n).into_owned(),
                    });
                }
                let state = participant::state(s.state.load(Ordering::Acquire));
                if state != participant::FREE && s.name_matches(n) {
                    ring.forget_sleeper(s);
                    take_slot(s, participant::CLAIMING);
                    // SYNC POINT: pairs with the previous owner's Release
                    // stores of the cursor.
                    let cursor = s.cursor.load(Ordering::Acquire);
                    // SYNC POINT: Acquire pairs with publishers' AcqRel tail
                    // updates (only to validate the cursor).
                    let tail = ring.control().tail.load(Ordering::Acquire);
                    if tail > MAX_SEQUENCE || cursor > tail {
                        s.state.store(
                            participant::with_state(
                                s.state.load(Ordering::Relaxed),
                                participant::DETACHED,
                            ),
                            Ordering::Release,
                        );
                        ring.liveness.unlock(subscriber_lock(i));
                        return Err(corrupt(i, "its cursor is past the log's tail"));
                    }
                    s.pid.store(std::process::id(), Ordering::Relaxed);
                    // SYNC POINT: SeqCst with the SeqCst state loads in
                    // `scan_gate` (the slot gated as DETACHED all along).
                    s.state.store(
                        participant::with_state(s.state.load(Ordering::Relaxed), participant::LIVE),
                        Ordering::SeqCst,
                    );
                    return Ok(Self::new(ring, i, cursor));
                }
                ring.liveness.unlock(subscriber_lock(i));
            }
        }
        for i in 0..ring.max_subscribers {
            if !ring.liveness.try_lock(subscriber_lock(i)) {
                continue;
            }
            let s = ring.subscriber(i);
            let state = participant::state(s.state.load(Ordering::Acquire));
            let durable = s.durable_name_len().is_some();
            let bad = if !participant::is_known(state) {
                Some("its state is a value no build writes")
            } else if state == participant::DETACHED && !durable {
                Some("it is detached but has no valid durable name")
            } else {
                None
            };
            if let Some(reason) = bad {
                ring.liveness.unlock(subscriber_lock(i));
                return Err(corrupt(i, reason));
            }
            if state != participant::FREE && durable {
                // Another durable subscriber's slot: keep its place.
                if state != participant::DETACHED {
                    take_slot(s, participant::DETACHED);
                    ring.control()
                        .reaped_subscribers
                        .fetch_add(1, Ordering::Relaxed);
                }
                ring.forget_sleeper(s);
                ring.liveness.unlock(subscriber_lock(i));
                continue;
            }
            let old = participant::state(take_slot(s, participant::CLAIMING));
            if old == participant::LIVE || old == participant::CLAIMING {
                // Its owner died and no reaper had freed it yet.
                ring.control()
                    .reaped_subscribers
                    .fetch_add(1, Ordering::Relaxed);
            }
            ring.forget_sleeper(s);
            s.set_name(name.unwrap_or(&[]));
            s.missed.store(0, Ordering::Relaxed);
            s.pid.store(std::process::id(), Ordering::Relaxed);
            s.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
            let ctl = ring.control();
            // SYNC POINT: SeqCst with the SeqCst state store below and the
            // loads in `scan_gate` (see there).
            let t0 = ctl.tail.load(Ordering::SeqCst);
            if t0 > MAX_SEQUENCE {
                Self::release_slot(&ring, i);
                return Err(corrupt(i, "the log's tail is out of range"));
            }
            let first = match start {
                StartAt::Tail => t0,
                StartAt::Oldest => t0.saturating_sub(ring.slots),
            };
            s.cursor.store(first, Ordering::Relaxed);
            // SYNC POINT: with the SeqCst load of `tail` below and the SeqCst
            // loads in `scan_gate`: a publisher that did not see us LIVE
            // claimed before our second look at the tail, so everything from
            // that tail on is still ahead of it.
            s.state.store(
                participant::with_state(s.state.load(Ordering::Relaxed), participant::LIVE),
                Ordering::SeqCst,
            );
            // SYNC POINT: SeqCst bump; pairs with the SeqCst loads of
            // `registrations` around a publisher's scan in `gate_allows`.
            ctl.registrations.fetch_add(1, Ordering::SeqCst);
            let cursor = match start {
                StartAt::Tail => {
                    let t1 = ctl.tail.load(Ordering::SeqCst).min(MAX_SEQUENCE);
                    // SYNC POINT: Release pairs with publishers' Acquire
                    // cursor loads in `scan_gate`.
                    s.cursor.store(t1, Ordering::Release);
                    t1
                }
                StartAt::Oldest => {
                    // Publishers may already overwrite anything below the
                    // gate they last published; start at or after it.
                    // SYNC POINT: SeqCst with the publishers' SeqCst
                    // fetch_max of `gate` in `gate_allows`.
                    let gate = ctl.gate.load(Ordering::SeqCst);
                    let oldest = if ring.policy == Policy::Backpressure {
                        first.max(gate.min(t0))
                    } else {
                        first
                    };
                    // SYNC POINT: as for `StartAt::Tail`.
                    s.cursor.store(oldest, Ordering::Release);
                    oldest
                }
            };
            return Ok(Self::new(ring, i, cursor));
        }
        Err(RegisterError::NoFreeSlot {
            role: "subscriber",
            slots: ring.max_subscribers,
        })
    }

    /// Gives back a slot taken by `register` that failed half-way.
    fn release_slot(ring: &BroadcastView, i: usize) {
        let s = ring.subscriber(i);
        // SYNC POINT: Release pairs with `take_slot`'s and reapers' Acquire.
        s.state.store(
            participant::with_state(s.state.load(Ordering::Relaxed), participant::FREE),
            Ordering::Release,
        );
        ring.liveness.unlock(subscriber_lock(i));
    }

    fn new(ring: BroadcastView, slot: usize, cursor: u64) -> Self {
        Subscriber {
            ring,
            slot,
            cursor,
            released: cursor,
            missed: 0,
            stall: Stall::default(),
            reads: 0,
        }
    }

    /// Sequence number of the next record this subscriber reads.
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// Records lost since this subscriber joined: overwritten before it
    /// read them (`Overwrite` laps), held by a publisher that stalled or
    /// died past the claim timeout (reclaimed), or passed with
    /// [`Subscriber::skip`].
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The log's policy.
    pub fn policy(&self) -> Policy {
        self.ring.policy
    }

    fn count_missed(&mut self, n: u64) {
        self.missed = self.missed.saturating_add(n);
        self.ring
            .subscriber(self.slot)
            .missed
            .store(self.missed, Ordering::Relaxed);
    }

    /// Locates the next record without waiting.
    #[inline]
    fn locate(&mut self) -> Result<Found, RecvError> {
        loop {
            let seq = self.cursor;
            let h = self.ring.header(seq);
            // SYNC POINT: pairs with the publisher's Release compare-and-swap
            // of the stamp in `Claim::finish`: header and payload are
            // complete (and with `reclaim`'s, for a reclaimed record).
            let seen = h.stamp.load(Ordering::Acquire);
            let (lap, state) = split_stamp(seen);
            let want = seq + 1;
            if lap == want {
                match state {
                    STAMP_COMMITTED => {
                        let (len, record_type, flags) =
                            unpack_record_header(h.word.load(Ordering::Relaxed));
                        if flags != 0 {
                            return Err(self.corrupt(CorruptionKind::UnknownFlags { flags }));
                        }
                        if len > self.ring.max_payload {
                            return Err(self.corrupt(CorruptionKind::LengthTooLarge { len }));
                        }
                        self.ring.note(seq, len as usize, false);
                        return Ok(Found {
                            seq,
                            len: len as usize,
                            record_type,
                        });
                    }
                    STAMP_RECLAIMED => {
                        // Its publisher stalled or died holding it: lost.
                        self.cursor = want;
                        self.count_missed(1);
                        continue;
                    }
                    STAMP_SKIPPED => {
                        self.cursor = want;
                        continue;
                    }
                    _ => {}
                }
            } else if lap > want {
                return Err(self.lapped());
            }
            // Not yet committed: either nothing was claimed here, or a claim
            // is in progress. Let publishers past what we skipped.
            self.release();
            // The tail is the publishers' hottest line, so look at it only
            // every 64 looks: enough to reclaim a stalled claim or notice a
            // lap, too rare to slow the publishers down. (Waits that yield
            // or sleep look at it every round, in `wait_ready`.)
            if self.stall.look() % LOOKS_PER_TAIL_CHECK != 0 {
                return Err(RecvError::Empty);
            }
            if self.check_pending()? {
                continue;
            }
            return Err(RecvError::Empty);
        }
    }

    /// The record at the cursor is not committed: looks at the tail and the
    /// segment, reclaims a claim held past the claim timeout, and reports a
    /// lap or an impossible tail. Returns whether it reclaimed (look again).
    fn check_pending(&mut self) -> Result<bool, RecvError> {
        let seq = self.cursor;
        // SYNC POINT: pairs with the publishers' AcqRel updates of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if tail < seq {
            // Our cursor only passes committed records, all below the tail.
            return Err(self.corrupt(CorruptionKind::TailBehindHead { tail }));
        }
        if tail > seq + self.ring.slots {
            if self.ring.policy == Policy::Overwrite {
                return Err(self.lapped());
            }
            // Under `Backpressure` this subscriber gates every claim.
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if let Some(fault) = self.ring.fault_slow() {
            return Err(RecvError::Unusable(fault));
        }
        if tail == seq {
            // Nothing claimed: nothing to time.
            self.stall.clear();
            return Ok(false);
        }
        if self.stall.waited_ns(seq, tail) >= self.ring.claim_timeout_ns {
            return Ok(self.ring.reclaim(seq));
        }
        Ok(false)
    }

    /// What to report for an inconsistency: the segment's fault if it has
    /// one (a truncated log reads as zeros), else the corruption.
    #[cold]
    fn corrupt(&self, kind: CorruptionKind) -> RecvError {
        if let Some(fault) = self.ring.fault_slow() {
            return RecvError::Unusable(fault);
        }
        RecvError::Corrupt(Corruption {
            kind,
            position: self.cursor,
        })
    }

    /// Moves the cursor to the oldest record still intact and reports how
    /// many were skipped.
    #[cold]
    fn lapped(&mut self) -> RecvError {
        // SYNC POINT: pairs with the publishers' AcqRel fetch_add of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return self.corrupt(CorruptionKind::TailTooFarAhead { tail });
        }
        let oldest = tail.saturating_sub(self.ring.slots);
        if oldest <= self.cursor {
            // A stamp from a later lap while the tail says otherwise.
            return self.corrupt(CorruptionKind::HeadOutOfRange { head: tail });
        }
        let missed = oldest - self.cursor;
        self.cursor = oldest;
        self.count_missed(missed);
        self.release();
        RecvError::Lapped { missed }
    }

    /// Passes over the record at the cursor without reading it, counting it
    /// as missed, and returns the sequence passed. This is the way past a
    /// record that keeps giving [`RecvError::Corrupt`]; under
    /// `Backpressure` it also stops this subscriber from holding
    /// publishers back at that record.
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`] if nothing was claimed at the cursor yet (there
    /// is nothing to pass), [`RecvError::Corrupt`] if the tail is out of
    /// range.
    pub fn skip(&mut self) -> Result<u64, RecvError> {
        // SYNC POINT: pairs with the publishers' AcqRel updates of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if tail <= self.cursor {
            return Err(RecvError::Empty);
        }
        let seq = self.cursor;
        self.cursor = seq + 1;
        self.count_missed(1);
        self.release();
        Ok(seq)
    }

    /// Whether `found` is still intact (its stamp unchanged since located).
    #[inline]
    fn intact(&self, found: Found) -> bool {
        // SYNC POINT: seqlock reader side; pairs with the Release fence a
        // publisher runs after marking a slot "writing": if any byte we read
        // came from a newer write, the stamp load below sees it changed.
        fence(Ordering::Acquire);
        self.ring.header(found.seq).stamp.load(Ordering::Relaxed) == stamp_committed(found.seq)
    }

    /// Borrows the next record without waiting (zero-copy).
    ///
    /// Under `Overwrite` the bytes can be overwritten while borrowed: check
    /// [`Record::is_intact`] after using them, or use [`Subscriber::try_recv`].
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`], [`RecvError::Lapped`] or [`RecvError::Corrupt`].
    #[inline]
    pub fn try_read(&mut self) -> Result<Record<'_>, RecvError> {
        let found = self.locate()?;
        Ok(Record {
            subscriber: self,
            found,
        })
    }

    /// Copies the next record into `buf` without waiting, and returns its
    /// `(record type, length)`. Under `Overwrite` the copy is validated: a
    /// record overwritten during the copy is reported as `Lapped`, never
    /// returned torn.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_read`], plus [`RecvError::BufferTooSmall`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        loop {
            let found = self.locate()?;
            if found.len > buf.len() {
                return Err(RecvError::BufferTooSmall { needed: found.len });
            }
            let src = self.ring.payload_offset(found.seq);
            // Under `Overwrite` the bytes may be written as we copy; the
            // stamp check below detects it.
            // SAFETY: the slot's payload area holds `max_payload >= len` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.ring.payloads.add(src),
                    buf.as_mut_ptr(),
                    found.len,
                )
            };
            if self.intact(found) {
                self.cursor = found.seq + 1;
                self.after_read();
                return Ok((found.record_type, found.len));
            }
            // Overwritten during the copy: locate reports the lap next.
        }
    }

    #[inline]
    fn after_read(&mut self) {
        self.reads = self.reads.wrapping_add(1);
        self.release();
        if self.reads % 1024 == 0 {
            self.heartbeat();
        }
    }

    fn heartbeat(&self) {
        self.ring
            .subscriber(self.slot)
            .heartbeat_ns
            .store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Publishes the cursor (done after every record unless deferred).
    #[inline]
    pub fn release(&mut self) {
        if self.cursor != self.released {
            self.released = self.cursor;
            // SYNC POINT: pairs with the publishers' Acquire loads of cursors
            // in `scan_gate`: our reads of every record before the cursor
            // happen before a publisher reuses their slots.
            self.ring
                .subscriber(self.slot)
                .cursor
                .store(self.cursor, Ordering::Release);
        }
    }

    /// Reads the next record, waiting with `wait`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lapped`] or [`RecvError::Corrupt`].
    pub fn read_blocking(&mut self, wait: WaitStrategy) -> Result<Record<'_>, RecvError> {
        self.read_timeout(wait, Duration::MAX)
    }

    /// As [`Subscriber::read_blocking`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvError::TimedOut`], [`RecvError::Lapped`] or [`RecvError::Corrupt`].
    pub fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Record<'_>, RecvError> {
        self.wait_ready(wait, timeout)?;
        self.try_read()
    }

    /// As [`Subscriber::try_recv`], waiting with `wait` up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_recv`], plus [`RecvError::TimedOut`].
    pub fn recv_timeout(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<(u16, usize), RecvError> {
        loop {
            self.wait_ready(wait, timeout)?;
            match self.try_recv(buf) {
                Err(RecvError::Empty) => continue,
                other => return other,
            }
        }
    }

    /// Waits until `locate` finds a record (or an error other than Empty).
    fn wait_ready(&mut self, wait: WaitStrategy, timeout: Duration) -> Result<(), RecvError> {
        let mut waiter = Waiter::with_timeout(wait, timeout);
        loop {
            match self.locate() {
                Ok(_) => return Ok(()),
                Err(RecvError::Empty) => {}
                Err(e) => return Err(e),
            }
            // A round that yields or sleeps is slow enough to look at the
            // tail and the clock every time: a stalled claim is reclaimed
            // within the claim timeout plus one round, whatever the strategy.
            if !waiter.spinning() && self.check_pending()? {
                continue;
            }
            if waiter.timed_out() {
                return Err(RecvError::TimedOut);
            }
            if waiter.should_sleep() {
                // No publisher wakes us for a claim that never commits:
                // sleep no longer than the stalled claim has left.
                let stall_left = self.stall.left(self.ring.claim_timeout_ns);
                let cap = stall_left.map_or(MAX_SLEEP, |left| left.min(MAX_SLEEP));
                self.sleep(waiter.sleep_budget(cap), stall_left.is_some());
                waiter.count_round();
            } else {
                waiter.wait();
            }
        }
    }

    /// Sleeps on the log's futex until a publisher commits (or `max`;
    /// `until_deadline` when no wake-up may come before it).
    fn sleep(&mut self, max: Duration, until_deadline: bool) {
        self.heartbeat();
        // SYNC POINT: Acquire pairs with the Release bump of `wake_seq` in
        // `BroadcastView::wake_sleepers`.
        let seen = self.ring.control().wake_seq.load(Ordering::Acquire);
        self.ring
            .subscriber(self.slot)
            .sleeping
            .store(1, Ordering::Relaxed);
        self.ring.control().sleepers.fetch_add(1, Ordering::Relaxed);
        // SYNC POINT: Dekker pair with the SeqCst fence in
        // `BroadcastView::wake_sleepers`: either the publisher sees our
        // sleeper count and wakes us, or we see its commit here.
        fence(Ordering::SeqCst);
        if matches!(self.locate(), Err(RecvError::Empty)) {
            let word = &self.ring.control().wake_seq;
            if until_deadline {
                futex_wait_until(word, seen, max);
            } else {
                futex_wait(word, seen, max);
            }
        }
        self.ring.forget_sleeper(self.ring.subscriber(self.slot));
    }

    /// Test hook: the subscriber slot this subscriber holds.
    #[doc(hidden)]
    pub fn slot_for_test(&self) -> usize {
        self.slot
    }

    /// Test hook: leaves the log as a process killed now would (the slot
    /// and cursor stay as they are, the liveness lock goes), without
    /// running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring.liveness.unlock(subscriber_lock(self.slot));
        core::mem::forget(self);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.release();
        let s = self.ring.subscriber(self.slot);
        let next = if s.durable_name_len().is_some() {
            participant::DETACHED
        } else {
            participant::FREE
        };
        // SYNC POINT: Release pairs with reapers' and registrations' Acquire
        // loads of the state word; our last cursor store comes first.
        s.state.store(
            participant::with_state(s.state.load(Ordering::Relaxed), next),
            Ordering::Release,
        );
        self.ring.liveness.unlock(subscriber_lock(self.slot));
    }
}

/// A record borrowed from a broadcast log; dropping it moves the cursor on.
pub struct Record<'a> {
    subscriber: &'a mut Subscriber,
    found: Found,
}

impl Record<'_> {
    /// The record type.
    pub fn record_type(&self) -> u16 {
        self.found.record_type
    }

    /// The record's sequence number.
    pub fn sequence(&self) -> u64 {
        self.found.seq
    }

    /// Whether the bytes are still the record's (always true under
    /// `Backpressure`). Under `Overwrite`, check this after using the bytes.
    pub fn is_intact(&self) -> bool {
        self.subscriber.intact(self.found)
    }
}

impl Deref for Record<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &self.subscriber.ring;
        // Under `Backpressure` no publisher reuses the slot before we
        // release it; under `Overwrite` see `is_intact`.
        // SAFETY: `locate` bounded `len` by the slot's payload area.
        unsafe {
            core::slice::from_raw_parts(
                ring.payloads.add(ring.payload_offset(self.found.seq)),
                self.found.len,
            )
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        let s = &mut *self.subscriber;
        s.ring.note(self.found.seq, self.found.len, false);
        s.cursor = self.found.seq + 1;
        s.after_read();
    }
}

#[cfg(all(test, not(shmbus_loom)))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn config(slots: u32, policy: Policy) -> BroadcastConfig {
        BroadcastConfig {
            slots,
            max_payload: 32,
            policy,
            max_subscribers: 4,
            max_publishers: 4,
            claim_timeout: Duration::from_millis(50),
        }
    }

    #[test]
    fn every_subscriber_sees_every_record_in_order() {
        let log = heap(config(8, Policy::Backpressure)).expect("config");
        let mut a = log.subscriber(StartAt::Tail).expect("sub");
        let mut b = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        for i in 0..8u8 {
            p.try_publish(u16::from(i), &[i; 5]).expect("room");
        }
        assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
        for sub in [&mut a, &mut b] {
            for i in 0..8u8 {
                let r = sub.try_read().expect("record");
                assert_eq!((r.record_type(), &r[..]), (u16::from(i), &[i; 5][..]));
            }
            assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
        }
        p.try_publish(9, b"after").expect("room after both read");
    }

    #[test]
    fn the_slowest_subscriber_gates_and_a_dropped_one_stops_gating() {
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let mut fast = log.subscriber(StartAt::Tail).expect("sub");
        let slow = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        for i in 0..4u8 {
            p.try_publish(0, &[i]).expect("room");
            drop(fast.try_read().expect("record"));
        }
        assert_eq!(
            p.try_claim(1).err(),
            Some(ClaimError::Full),
            "slow subscriber gates"
        );
        drop(slow);
        p.try_publish(0, b"x").expect("no more gating");
    }

    #[test]
    fn overwrite_reports_exact_misses_and_resumes_at_the_oldest() {
        let log = heap(config(4, Policy::Overwrite)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        for i in 0..10u8 {
            p.try_publish(0, &[i]).expect("never full");
        }
        assert_eq!(sub.try_read().err(), Some(RecvError::Lapped { missed: 6 }));
        let mut buf = [0u8; 32];
        for i in 6..10u8 {
            assert_eq!(sub.try_recv(&mut buf).expect("record"), (0, 1));
            assert_eq!(buf[0], i);
        }
        assert_eq!(sub.missed(), 6);
    }

    #[test]
    fn an_aborted_claim_becomes_a_skip_record() {
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        drop(p.try_claim(4).expect("room"));
        p.try_publish(1, b"kept").expect("room");
        assert_eq!(&sub.try_read().expect("record")[..], b"kept");
    }

    #[test]
    fn a_stalled_claim_is_reclaimed_after_the_timeout() {
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut p1 = log.publisher().expect("pub");
        let mut p2 = log.publisher().expect("pub");
        let stuck = p1.try_claim(4).expect("room");
        p2.try_publish(2, b"next").expect("room");
        let t = Instant::now();
        let rec = sub
            .read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5))
            .expect("reclaimed, then the next record");
        assert_eq!(&rec[..], b"next");
        assert!(t.elapsed() >= Duration::from_millis(50));
        core::mem::forget(stuck);
    }

    /// Finding 1 of the hardening issue, step by step: a publisher stalled
    /// past the claim timeout, whose claim was reclaimed, commits late. The
    /// commit fails, the slot its claim held is not reused while it is
    /// inside, and the later record that used to be destroyed is delivered.
    #[test]
    fn a_late_commit_of_a_reclaimed_claim_fails_and_destroys_nothing() {
        for policy in [Policy::Backpressure, Policy::Overwrite] {
            let log = heap(config(4, policy)).expect("config");
            let mut sub = log.subscriber(StartAt::Tail).expect("sub");
            let mut slow = log.publisher().expect("pub");
            let mut fast = log.publisher().expect("pub");
            let mut stalled = slow.try_claim(8).expect("room");
            assert_eq!(stalled.sequence(), 0);
            assert_eq!(fast.try_publish(1, b"one"), Ok(1));
            let rec = sub
                .read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5))
                .expect("seq 0 reclaimed, then seq 1");
            assert_eq!((rec.sequence(), &rec[..]), (1, &b"one"[..]));
            drop(rec);
            assert_eq!(
                sub.missed(),
                1,
                "{policy:?}: the reclaimed record is counted"
            );
            // Seq 4 would reuse slot 0 while `slow` may still write there:
            // the publisher gives it up (a skip) and takes seq 5.
            assert_eq!(fast.try_publish(2, b"two"), Ok(2));
            assert_eq!(fast.try_publish(3, b"three"), Ok(3));
            for r in 2..4 {
                assert_eq!(sub.try_read().expect("record").sequence(), r);
            }
            assert_eq!(fast.try_publish(4, b"four"), Ok(5), "{policy:?}");
            stalled.copy_from_slice(b"STALLED!");
            assert_eq!(stalled.commit(), Err(ClaimError::Reclaimed { sequence: 0 }));
            assert_eq!(slow.reclaimed(), 1);
            let rec = sub
                .try_read()
                .expect("the record after the stall is intact");
            assert_eq!((rec.sequence(), &rec[..]), (5, &b"four"[..]), "{policy:?}");
            drop(rec);
            assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
            assert_eq!(sub.missed(), 1);
            // Once `slow` is out, slot 0 is used again.
            assert_eq!(fast.try_publish(6, b"six"), Ok(6));
            assert_eq!(fast.try_publish(7, b"seven"), Ok(7));
            assert_eq!(fast.try_publish(8, b"eight"), Ok(8));
            for r in 6..9 {
                assert_eq!(sub.try_read().expect("record").sequence(), r);
            }
        }
    }

    /// A claim reclaimed before its publisher wrote anything is retried on
    /// a new sequence, transparently.
    #[test]
    fn a_claim_reclaimed_before_it_was_entered_moves_to_the_next_sequence() {
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let mut p = log.publisher().expect("pub");
        // Reserve seq 0 by hand (as a publisher stalled right after its
        // tail claim would) and reclaim it.
        let seq = p.reserve().expect("room");
        assert!(p.ring.reclaim(seq));
        let claim = p.try_claim(1).expect("room");
        assert_eq!(claim.sequence(), 1);
        drop(claim);
        assert_eq!(p.reclaimed(), 0);
        assert!(matches!(p.enter(seq), Err(Lost::Reclaimed)));
    }

    /// Finding 2: a dead publisher's claim is reclaimed within the claim
    /// timeout plus one wait round, whatever the strategy (a `BLOCKING`
    /// reader used to take 100 s, a `BACKOFF` one 2 s).
    #[test]
    fn reclaim_takes_the_claim_timeout_whatever_the_wait_strategy() {
        let timeout = Duration::from_millis(100);
        for wait in [
            WaitStrategy::BusySpin,
            WaitStrategy::Yield,
            WaitStrategy::BACKOFF,
            WaitStrategy::BLOCKING,
        ] {
            let log = heap(BroadcastConfig {
                claim_timeout: timeout,
                ..config(8, Policy::Backpressure)
            })
            .expect("config");
            let mut sub = log.subscriber(StartAt::Tail).expect("sub");
            let mut dead = log.publisher().expect("pub");
            core::mem::forget(dead.try_claim(4).expect("room"));
            dead.crash_for_test();
            let mut p = log.publisher().expect("pub");
            p.try_publish(1, b"next").expect("room");
            let t = Instant::now();
            let rec = sub
                .read_timeout(wait, Duration::from_secs(30))
                .expect("reclaimed, then the next record");
            let took = t.elapsed();
            assert_eq!(&rec[..], b"next");
            assert!(took >= timeout, "{wait:?}: {took:?}");
            // One wait round is at most 20 ms of futex sleep; the rest is
            // slack for a loaded machine.
            assert!(took < Duration::from_millis(1500), "{wait:?} took {took:?}");
        }
    }

    /// A burst of dead claims costs one claim timeout, not one per claim.
    #[test]
    fn a_burst_of_dead_claims_is_reclaimed_in_one_timeout() {
        let timeout = Duration::from_millis(100);
        let log = heap(BroadcastConfig {
            claim_timeout: timeout,
            max_publishers: 8,
            ..config(8, Policy::Backpressure)
        })
        .expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        for _ in 0..5 {
            let mut dead = log.publisher().expect("pub");
            core::mem::forget(dead.try_claim(4).expect("room"));
            dead.crash_for_test();
        }
        let mut p = log.publisher().expect("pub");
        p.try_publish(1, b"next").expect("room");
        let t = Instant::now();
        let rec = sub
            .read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(30))
            .expect("record");
        assert_eq!(rec.sequence(), 5);
        drop(rec);
        assert!(t.elapsed() < 3 * timeout, "took {:?}", t.elapsed());
        assert_eq!(sub.missed(), 5);
    }

    /// Finding 3: the reaper's check of a slot's lock and its swap of the
    /// state word race with a registration in between. The swap must fail.
    #[test]
    fn a_reaper_cannot_free_a_slot_registered_after_its_look() {
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let dead = log.subscriber(StartAt::Tail).expect("sub");
        let slot = dead.slot;
        dead.crash_for_test();
        // The reaper's look: a LIVE word whose lock is free.
        let view = log.view();
        let s = view.subscriber(slot);
        let seen = s.state.load(Ordering::Acquire);
        assert_eq!(participant::state(seen), participant::LIVE);
        assert!(!view.liveness.held_by_other(subscriber_lock(slot)));
        // A new subscriber takes the slot between the look and the swap.
        let fresh = log.subscriber(StartAt::Tail).expect("sub");
        assert_eq!(fresh.slot, slot);
        let swapped = s.state.compare_exchange(
            seen,
            participant::with_state(seen, participant::FREE),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        assert!(swapped.is_err(), "the generation changed");
        assert_eq!(log.reap_for_test(), 0);
        assert_eq!(log.subscriber_state_for_test(slot), participant::LIVE);
    }

    /// Finding 6: hostile positions are typed errors, never an overflow
    /// panic (debug builds) or a wait that never ends.
    #[test]
    fn hostile_tails_are_corrupt_and_a_corrupt_record_can_be_skipped() {
        for policy in [Policy::Backpressure, Policy::Overwrite] {
            for tail in [u64::MAX, MAX_SEQUENCE + 1, 1 << 63] {
                let log = heap(config(4, policy)).expect("config");
                let mut sub = log.subscriber(StartAt::Tail).expect("sub");
                let mut p = log.publisher().expect("pub");
                log.mem.control.tail.store(tail, Ordering::Relaxed);
                assert!(
                    matches!(p.try_claim(1).err(), Some(ClaimError::Corrupt(_))),
                    "{policy:?} tail {tail}"
                );
                if policy == Policy::Overwrite && tail == u64::MAX {
                    // The claim's `fetch_add` wrapped the tail to 0: the log
                    // reads as empty again and goes on from there.
                    assert_eq!(p.try_publish(1, b"again"), Ok(0));
                    assert_eq!(&sub.try_read().expect("record")[..], b"again");
                    continue;
                }
                let got = sub.read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5));
                assert!(
                    matches!(got.err(), Some(RecvError::Corrupt(_))),
                    "{policy:?}"
                );
                assert!(log.subscriber(StartAt::Oldest).is_err());
            }
        }
        // A record with garbage flags stops the subscriber until it skips.
        let log = heap(config(4, Policy::Backpressure)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        p.try_publish(1, b"bad").expect("room");
        p.try_publish(2, b"good").expect("room");
        log.mem.headers[0]
            .word
            .store(pack_record_header(3, 1, 0x40), Ordering::Relaxed);
        for _ in 0..3 {
            assert!(matches!(sub.try_read().err(), Some(RecvError::Corrupt(_))));
        }
        assert_eq!(sub.skip(), Ok(0));
        assert_eq!(&sub.try_read().expect("next")[..], b"good");
        assert_eq!(sub.missed(), 1);
        assert_eq!(sub.skip(), Err(RecvError::Empty));
    }

    #[test]
    fn oldest_start_sees_retained_records() {
        let log = heap(config(4, Policy::Overwrite)).expect("config");
        let mut p = log.publisher().expect("pub");
        for i in 0..6u8 {
            p.try_publish(0, &[i]).expect("never full");
        }
        let mut sub = log.subscriber(StartAt::Oldest).expect("sub");
        assert_eq!(sub.try_read().expect("oldest")[0], 2);
    }
}
