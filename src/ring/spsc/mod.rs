//! Single-producer single-consumer ring of variable-length records.
//!
//! The data region holds record frames back to back (see
//! [`crate::layout::RECORD_HEADER_LEN`] for the frame). Each record's header
//! is its commit marker: the producer writes the payload, zeroes the next
//! header position (the sentinel), then stores the header with `Release`;
//! the consumer polls only the header at its own position, so a record costs
//! it one cache line, not the producer's position and then the record. The
//! consumer owns `head` (in [`SpscControl`], on its own cache line); the
//! producer keeps a private copy and reloads it only when that copy says the
//! ring is full. The producer's `tail` is stored after every publish for
//! inspectors and for a producer that takes over, but nobody waits on it.
//!
//! ```text
//!             head                         tail
//!              v                            v
//! +-----------+----------+--------+--------+---------------+---------+
//! |   free    | record 1 | rec 2  | rec 3  |     free      | padding |
//! +-----------+----------+--------+--------+---------------+---------+
//! 0          head & mask                   tail & mask           capacity
//! ```
//!
//! A record never wraps: when it does not fit before the end of the region,
//! the producer fills the rest with a padding frame and starts at index 0.
//! Records are therefore always contiguous and zero-copy on both sides.
//!
//! Every position and header the consumer reads is treated as hostile: it is
//! loaded once into a local, checked, then used; an inconsistency is a
//! [`Corruption`], never a panic or an
//! out-of-bounds read.
//!
//! # Removed and truncated rings
//!
//! A ring in shared memory can become unusable under its handles: removed
//! (its channel removed through the directory, which sets the ring's
//! `removed` flag, wakes a sleeping consumer and unlinks the file; or its
//! file unlinked by hand), truncated by some
//! process, or poisoned. Both handles look for that on their slow paths
//! only, and then return `Unusable(fault)` ([`ClaimError::Unusable`],
//! [`RecvError::Unusable`]):
//!
//! * on every `Full` / `Empty` / `Corrupt` result of a non-blocking call,
//!   the segment's cheap signs ([`Segment::fault`]: the header's `removed`
//!   flag, the SIGBUS guard's truncated mark, the poisoned state); on every
//!   64th such result the clock is read, and at most every 20 ms the file is
//!   `fstat`ed ([`Segment::fault_slow`]: a hand-unlinked or shortened file);
//! * in blocking waits, the cheap signs every round and the `fstat` at most
//!   every 20 ms, the clock being read on every round that yields or sleeps
//!   (and every 64 spinning rounds); no sleep in a wait on a mapped ring
//!   lasts more than 20 ms, so a removal is noticed within about 20 ms
//!   (and at once by a consumer asleep on the futex, which
//!   a removal wakes).
//!
//! A claim that finds room and a read that finds a record check nothing:
//! the hot path makes no system call and no clock read. The guarantee after
//! a removal is therefore this: the producer keeps committing into the
//! removed file until its next `Full` or wait, so records committed after
//! the removal and before then (at most one ring's worth if nobody reads
//! them) reach only a consumer still attached to the removed file, or are
//! lost with the file. From the producer's first `Unusable` on, every claim
//! it makes fails with the same `Unusable`, room or not, so no record is
//! reported committed after the producer was told. A consumer reads what
//! the removed file still holds, then gets `Unusable` where it would have
//! got `Empty`.
//!
//! [`Segment::fault`]: crate::segment::Segment::fault
//! [`Segment::fault_slow`]: crate::segment::Segment::fault_slow

#[cfg(not(shmbus_loom))]
pub(crate) mod shm;

#[cfg(not(shmbus_loom))]
pub use shm::{SPSC_LOCK_CONSUMER, SPSC_LOCK_PRODUCER};

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::time::Duration;

use crate::layout::{
    frame_len, pack_record_header, unpack_record_header, SegmentFault, SpscControl, FLAG_COMMITTED,
    FLAG_PADDING, KNOWN_FLAGS, RECORD_HEADER_LEN, SENTINEL_LEN, SPSC_FLAG_WAKEUPS,
};
use crate::ring::counters::{self, FullWait};
use crate::ring::region::DataRegion;
use crate::ring::{ConfigError, Corruption, CorruptionKind, MAX_POSITION};
use crate::sync::{
    fence, futex_wait, futex_wake_all, monotonic_ns, AccessTracker, HeaderWords, HeapBytes,
    Ordering,
};
use crate::wait::{WaitStrategy, Waiter};

/// Smallest data region a ring accepts.
pub const MIN_CAPACITY: usize = 64;
/// Largest data region a ring accepts (1 TiB).
pub const MAX_CAPACITY: usize = 1 << 40;

/// Size of an SPSC ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpscConfig {
    /// Bytes in the data region: a power of two in
    /// [`MIN_CAPACITY`]`..=`[`MAX_CAPACITY`].
    pub capacity: usize,
    /// Largest payload of one record. `None` means the most the capacity
    /// allows: a record frame and its 8-byte sentinel may take at most half
    /// the region, which guarantees an empty ring always has room for it even
    /// after padding, and that the ring holds two of its largest records.
    pub max_payload: Option<u32>,
    /// Whether a consumer waiting with [`WaitStrategy::Blocking`] sleeps on
    /// a futex that the producer wakes. Costs the producer a fence and a
    /// load per publish, so it is off by default (and a `Blocking` wait then
    /// returns [`RecvError::CannotSleep`]).
    pub wakeups: bool,
}

impl SpscConfig {
    /// A ring of `capacity` bytes with the largest maximum payload it allows
    /// and no futex wake-ups.
    pub const fn with_capacity(capacity: usize) -> Self {
        SpscConfig {
            capacity,
            max_payload: None,
            wakeups: false,
        }
    }

    /// The same ring with futex wake-ups for blocking consumers.
    pub const fn with_wakeups(self) -> Self {
        SpscConfig {
            wakeups: true,
            ..self
        }
    }

    /// The [`SpscControl::flags`] this configuration stores.
    pub(crate) fn flags(&self) -> u32 {
        if self.wakeups {
            SPSC_FLAG_WAKEUPS
        } else {
            0
        }
    }

    /// Checks the configuration; returns `(capacity, max_payload)`.
    ///
    /// # Errors
    ///
    /// The first setting out of range, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(u64, u32), ConfigError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            let rule = format!("a power of two between {MIN_CAPACITY} and {MAX_CAPACITY}");
            return Err(ConfigError::new("capacity", cap, rule));
        }
        let largest = max_payload_for(cap as u64);
        let max = match self.max_payload {
            None => largest,
            Some(m) if m <= largest => m,
            Some(m) => {
                let rule = format!(
                    "at most {largest} for capacity {cap} (a record may take half the ring)"
                );
                return Err(ConfigError::new("max_payload", m, rule));
            }
        };
        Ok((cap as u64, max))
    }
}

/// Largest payload whose frame and sentinel fit in half of `capacity`, so
/// a ring always holds two of its largest records.
pub(crate) fn max_payload_for(capacity: u64) -> u32 {
    let half = capacity / 2 - RECORD_HEADER_LEN as u64 - SENTINEL_LEN;
    u32::try_from(half).unwrap_or(!7)
}

pub use super::{ClaimError, RecvError};

/// What keeps a ring's memory alive while a handle uses it.
pub(crate) enum Backing {
    /// An in-process ring on the heap (the Arc is only held, never read).
    Heap(#[allow(dead_code)] std::sync::Arc<HeapRing>),
    /// A mapped segment, with this handle's liveness lock.
    #[cfg(not(shmbus_loom))]
    Mapped(shm::Attachment),
}

/// Control block, data and access tracker of an in-process ring.
pub(crate) struct HeapRing {
    control: SpscControl,
    data: HeapBytes,
    tracker: AccessTracker,
    headers: HeaderWords,
}

/// What both handles know about their ring, read once when attaching.
struct RingView {
    control: NonNull<SpscControl>,
    data: DataRegion,
    capacity: u64,
    mask: u64,
    max_payload: u32,
    /// [`SPSC_FLAG_WAKEUPS`] was set when the ring was created.
    wakeups: bool,
    backing: Backing,
    /// Paces the fault checks of the slow paths.
    probe: FaultProbe,
}

/// Longest a wait on a mapped ring sleeps at once, and the least time
/// between two `fstat`s of its segment: how late a removal or truncation
/// may be noticed by a waiting handle.
const FAULT_CHECK_PERIOD: Duration = Duration::from_millis(20);
/// Non-blocking `Full` / `Empty` results between two clock reads.
const MISSES_PER_CLOCK_READ: u32 = 64;
/// Spinning wait rounds between two clock reads.
const SPINS_PER_CLOCK_READ: u32 = 64;

/// When a handle last looked for faults the expensive way.
#[derive(Default)]
struct FaultProbe {
    /// Non-blocking misses (or spinning rounds), wrapping: paces clock reads.
    count: u32,
    /// `CLOCK_MONOTONIC` ns before which no `fstat` is made (0: at once).
    next_slow_ns: u64,
}

#[cfg(not(shmbus_loom))]
use crate::segment::Segment as SegmentHandle;

/// Loom models run on the heap only: no segment, so no fault.
#[cfg(shmbus_loom)]
enum SegmentHandle {}

#[cfg(shmbus_loom)]
impl SegmentHandle {
    fn fault(&self) -> Option<SegmentFault> {
        match *self {}
    }
    fn fault_slow(&self) -> Option<SegmentFault> {
        match *self {}
    }
}

impl RingView {
    /// The segment behind a mapped ring; `None` on the heap.
    fn segment(&self) -> Option<&SegmentHandle> {
        match &self.backing {
            Backing::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Backing::Mapped(a) => Some(a.segment()),
        }
    }

    /// For a non-blocking `Full` / `Empty`: the cheap signs every time, an
    /// `fstat` when due on every [`MISSES_PER_CLOCK_READ`]th call.
    #[cold]
    fn fault_after_miss(&mut self) -> Option<SegmentFault> {
        let segment = self.segment()?;
        if let Some(fault) = segment.fault() {
            return Some(fault);
        }
        self.probe.count = self.probe.count.wrapping_add(1);
        if self.probe.count % MISSES_PER_CLOCK_READ != 1 {
            return None;
        }
        self.fault_slow_if_due()
    }

    /// For a wait round: the cheap signs every round, an `fstat` when due,
    /// the clock read on every round that yields or sleeps.
    fn fault_while_waiting(&mut self, waiter: &Waiter) -> Option<SegmentFault> {
        let segment = self.segment()?;
        if let Some(fault) = segment.fault() {
            return Some(fault);
        }
        if waiter.spinning() {
            self.probe.count = self.probe.count.wrapping_add(1);
            if self.probe.count % SPINS_PER_CLOCK_READ != 1 {
                return None;
            }
        }
        self.fault_slow_if_due()
    }

    /// For a `Corrupt` result: zero pages left by a truncation look corrupt,
    /// so look for a fault first, `fstat` included.
    #[cold]
    fn fault_now(&mut self) -> Option<SegmentFault> {
        self.segment()?.fault_slow()
    }

    fn fault_slow_if_due(&mut self) -> Option<SegmentFault> {
        let now = monotonic_ns();
        if now < self.probe.next_slow_ns {
            return None;
        }
        self.probe.next_slow_ns = now.saturating_add(FAULT_CHECK_PERIOD.as_nanos() as u64);
        self.segment()?.fault_slow()
    }

    /// `wait` as a wait on this ring may use it: on a mapped ring no single
    /// sleep lasts more than [`FAULT_CHECK_PERIOD`].
    fn wait_strategy(&self, wait: WaitStrategy) -> WaitStrategy {
        match wait {
            WaitStrategy::Backoff {
                spins,
                yields,
                max_sleep,
            } if self.segment().is_some() => WaitStrategy::Backoff {
                spins,
                yields,
                max_sleep: max_sleep.min(FAULT_CHECK_PERIOD),
            },
            other => other,
        }
    }

    /// Longest futex sleep of a blocking consumer.
    fn sleep_cap(&self) -> Duration {
        if self.segment().is_some() {
            FAULT_CHECK_PERIOD
        } else {
            Duration::from_millis(100)
        }
    }

    /// Whether the other side holds its liveness lock (mapped rings only).
    fn peer_alive(&self) -> Option<bool> {
        match &self.backing {
            Backing::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Backing::Mapped(a) => a.peer_alive(),
        }
    }

    fn control(&self) -> &SpscControl {
        // SAFETY: `backing` keeps the control block alive as long as `self`.
        unsafe { self.control.as_ref() }
    }
}

/// Creates an in-process ring on the heap.
///
/// It runs the same code as a ring in shared memory; use it for tests,
/// benchmarks and threads of one process. Under `--cfg shmbus_loom` this is
/// how the loom models build their rings.
///
/// # Errors
///
/// The configuration is invalid (see [`SpscConfig::validate`]).
///
/// # Examples
///
/// ```
/// use shmbus::ring::spsc::{self, SpscConfig};
/// let (mut tx, mut rx) = spsc::heap(SpscConfig::with_capacity(1024))?;
/// tx.try_send(7, b"hello")?;
/// let rec = rx.try_read()?;
/// assert_eq!((rec.record_type(), &rec[..]), (7, &b"hello"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(config: SpscConfig) -> Result<(Producer, Consumer), ConfigError> {
    let (capacity, max_payload) = config.validate()?;
    let ring = std::sync::Arc::new(HeapRing {
        control: SpscControl::new(capacity, max_payload, config.flags()),
        data: HeapBytes::zeroed(capacity as usize),
        tracker: AccessTracker::new(capacity as usize),
        headers: HeaderWords::new(capacity as usize),
    });
    let view = |ring: &std::sync::Arc<HeapRing>| RingView {
        control: NonNull::from(&ring.control),
        // The Arc in `backing` keeps buffer, tracker and header words alive.
        // SAFETY: the heap buffer is 8-aligned and `capacity` bytes long.
        data: unsafe {
            DataRegion::new(
                ring.data.as_mut_ptr(),
                capacity as usize,
                &ring.tracker,
                &ring.headers,
            )
        },
        capacity,
        mask: capacity - 1,
        max_payload,
        wakeups: config.wakeups,
        backing: Backing::Heap(ring.clone()),
        probe: FaultProbe::default(),
    };
    // A fresh zeroed ring has both positions at 0: attaching cannot find it
    // corrupt.
    let producer = Producer::attach(view(&ring)).expect("a fresh ring is consistent");
    let consumer = Consumer::attach(view(&ring)).expect("a fresh ring is consistent");
    Ok((producer, consumer))
}

impl SpscControl {
    /// A fresh control block (both positions 0).
    pub(crate) fn new(capacity: u64, max_payload: u32, flags: u32) -> Self {
        SpscControl {
            capacity,
            max_payload,
            flags,
            producer_pid: crate::sync::AtomicU32::new(0),
            consumer_pid: crate::sync::AtomicU32::new(0),
            wake_seq: crate::sync::AtomicU32::new(0),
            sleepers: crate::sync::AtomicU32::new(0),
            pad0: [0; crate::layout::CACHE_LINE - 32],
            tail: crate::sync::AtomicU64::new(0),
            pad1: [0; crate::layout::CACHE_LINE - 8],
            head: crate::sync::AtomicU64::new(0),
            pad2: [0; crate::layout::CACHE_LINE - 8],
            producer_counters: crate::layout::Counters::new(),
            consumer_counters: crate::layout::Counters::new(),
        }
    }
}

/// Checks the consumer position a handle starts from (read from shared
/// memory: hostile): 8-byte aligned and below [`MAX_POSITION`], so that no
/// position this handle computes from it overflows.
fn check_start(head: u64) -> Result<(), Corruption> {
    let kind = if head % 8 != 0 {
        CorruptionKind::Misaligned { value: head }
    } else if head >= MAX_POSITION {
        CorruptionKind::PositionTooLarge { value: head }
    } else {
        return Ok(());
    };
    Err(Corruption {
        kind,
        position: head,
    })
}

/// A record header word that passed [`check_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CheckedFrame {
    /// Payload length (of a record), or the bytes the padding covers after
    /// its header.
    pub(crate) len: u32,
    /// The record type (0 for padding).
    pub(crate) record_type: u16,
    /// The flags, every one known and `FLAG_COMMITTED` among them.
    pub(crate) flags: u16,
    /// A padding frame (up to the end of the region), not a record.
    pub(crate) padding: bool,
    /// Bytes the frame takes, header included: where the next one starts.
    pub(crate) total: u64,
}

/// The one check of a record header read from the ring (hostile bytes),
/// shared by the consumer, a producer attaching and the inspector: known
/// flags with `FLAG_COMMITTED` set; a padding frame that ends exactly at
/// the end of the region; a record no longer than `max_payload` whose frame
/// ends before the end of the region. `to_end` is how far the frame's
/// position is from the end of the region, `available` how far from the
/// producer position where that is known (`u64::MAX` where it is not).
#[inline]
pub(crate) fn check_frame(
    word: u64,
    to_end: u64,
    available: u64,
    max_payload: u32,
) -> Result<CheckedFrame, CorruptionKind> {
    let (len, record_type, flags) = unpack_record_header(word);
    if flags & !KNOWN_FLAGS != 0 || flags & FLAG_COMMITTED == 0 {
        return Err(CorruptionKind::UnknownFlags { flags });
    }
    if flags & FLAG_PADDING != 0 {
        if u64::from(len) + RECORD_HEADER_LEN as u64 != to_end || to_end > available {
            return Err(CorruptionKind::BadPadding { len });
        }
        return Ok(CheckedFrame {
            len,
            record_type,
            flags,
            padding: true,
            total: to_end,
        });
    }
    if len > max_payload {
        return Err(CorruptionKind::LengthTooLarge { len });
    }
    // len <= max_payload < capacity / 2, so this cannot overflow.
    let total = frame_len(len as usize) as u64;
    if total > to_end || total > available {
        return Err(CorruptionKind::RecordOutOfBounds { len });
    }
    Ok(CheckedFrame {
        len,
        record_type,
        flags,
        padding: false,
        total,
    })
}

/// Where the committed records that follow `head` end: the position of the
/// first header that reads "nothing yet". Walks at most one capacity.
fn committed_end(ring: &RingView, head: u64) -> Result<u64, Corruption> {
    let mut position = head;
    while position - head < ring.capacity {
        let index = (position & ring.mask) as usize;
        let to_end = ring.capacity - index as u64;
        // SYNC POINT: pairs with the previous producer's Release stores of
        // headers in `Producer::flush`.
        let word = ring.data.load_header(index, Ordering::Acquire);
        if word == 0 {
            break;
        }
        let frame = check_frame(word, to_end, u64::MAX, ring.max_payload)
            .map_err(|kind| Corruption { kind, position })?;
        position += frame.total;
    }
    if position - head > ring.capacity {
        return Err(Corruption {
            kind: CorruptionKind::TailTooFarAhead { tail: position },
            position: head,
        });
    }
    Ok(position)
}

// ---------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------

/// The writing end of an SPSC ring. Exactly one exists per ring.
///
/// # Examples
///
/// ```
/// use shmbus::{Bus, SpscConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let fills = bus.spsc("fills", &SpscConfig::with_capacity(1 << 16))?;
/// let mut tx = fills.producer()?;
/// let mut rx = fills.consumer()?;
/// tx.try_send(1, b"one")?;                                // copy in, visible at once
/// let mut slot = tx.claim_blocking(3, WaitStrategy::BusySpin)?;
/// slot.copy_from_slice(b"two");
/// slot.stage();                                           // written, not yet visible
/// tx.flush();                                             // everything staged, one store
/// assert_eq!(rx.read_batch(8, |_, _| {})?, 2);
/// # drop((tx, rx, fills, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer {
    ring: RingView,
    /// Next free position (end of the last committed or staged record).
    tail: u64,
    /// Last consumer position seen plus the capacity: a record ending at or
    /// before it fits without looking at `head` again. 0 once the ring was
    /// found unusable, so that every claim takes the slow path.
    limit: u64,
    /// The fault this producer reported, if any: from then on every claim
    /// fails with it, so nothing committed after it is reported delivered.
    unusable: Option<SegmentFault>,
    /// The earliest header not yet visible, `(index, word)`: the commit
    /// point of everything staged since the last publish.
    held: Option<(usize, u64)>,
    /// Whether publishing pushes the records to the shared cache
    /// ([`Producer::set_push_on_commit`]).
    push: bool,
}

// SAFETY: a Producer is the only writer of its ring's tail and free space;
// moving it to another thread moves that right with it.
unsafe impl Send for Producer {}

/// Room reserved for one claim: `pad` bytes of padding, then the record.
#[derive(Clone, Copy)]
struct Reserved {
    pad: u64,
    position: u64,
}

impl Producer {
    fn attach(ring: RingView) -> Result<Self, Corruption> {
        // SYNC POINT: pairs with the consumer's Release store of `head`.
        let head = ring.control().head.load(Ordering::Acquire);
        check_start(head)?;
        // The stored tail is informational; the committed headers are the
        // truth. A producer that died after committing but before storing
        // the tail would otherwise leave its successor behind the consumer.
        let tail = committed_end(&ring, head)?;
        // SYNC POINT: pairs with inspectors' loads of `tail`.
        ring.control().tail.store(tail, Ordering::Release);
        let limit = head.saturating_add(ring.capacity);
        Ok(Producer {
            ring,
            tail,
            limit,
            unusable: None,
            held: None,
            push: false,
        })
    }

    /// Data region size in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Largest payload one record can carry.
    pub fn max_payload(&self) -> u32 {
        self.ring.max_payload
    }

    /// Position after the last committed or staged record (bytes written
    /// since the ring was created, including frame overhead).
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// Reserves room for a record of `len` payload bytes without waiting:
    /// padding to the end of the region if the frame does not fit before
    /// it, the frame, and the 8-byte sentinel after it.
    #[inline]
    fn reserve(&mut self, len: usize) -> Result<Reserved, ClaimError> {
        if len > self.ring.max_payload as usize {
            return Err(ClaimError::TooLarge {
                len,
                max: self.ring.max_payload,
            });
        }
        let need = frame_len(len) as u64;
        let index = self.tail & self.ring.mask;
        let to_end = self.ring.capacity - index;
        let pad = if need > to_end { to_end } else { 0 };
        let end = self.tail + pad + need + SENTINEL_LEN;
        if end > self.limit {
            if let Some(fault) = self.unusable {
                return Err(ClaimError::Unusable(fault));
            }
            // SYNC POINT: pairs with the consumer's Release store of `head` in
            // `Consumer::release`: its reads of the bytes it freed happen
            // before we overwrite them.
            let head = self.ring.control().head.load(Ordering::Acquire);
            if head % 8 != 0 || head > self.tail || self.tail - head > self.ring.capacity {
                return Err(ClaimError::Corrupt(Corruption {
                    kind: CorruptionKind::HeadOutOfRange { head },
                    position: self.tail,
                }));
            }
            // head <= tail < end, so this is `end - head > capacity`.
            self.limit = head.saturating_add(self.ring.capacity);
            if end > self.limit {
                return Err(ClaimError::Full);
            }
        }
        // Our own positions: `tail` only moves by whole frames from an
        // aligned start, and `limit` is a validated `head` (at most `tail`)
        // plus the capacity.
        debug_assert!(self.tail % 8 == 0, "misaligned tail {}", self.tail);
        debug_assert!(end <= self.limit && end - self.tail <= self.ring.capacity);
        debug_assert!(pad == 0 || pad == to_end);
        Ok(Reserved {
            pad,
            position: self.tail + pad,
        })
    }

    fn slot(&mut self, reserved: Reserved, len: usize) -> WriteSlot<'_> {
        let index = (reserved.position & self.ring.mask) as usize;
        if reserved.pad > 0 {
            let pad_index = (self.tail & self.ring.mask) as usize;
            self.ring.data.note_write(pad_index, reserved.pad as usize);
        }
        self.ring.data.note_write(index, frame_len(len));
        WriteSlot {
            producer: self,
            pad: reserved.pad,
            index,
            len,
            record_type: 0,
        }
    }

    /// Claims room for a record of `len` payload bytes, without waiting.
    ///
    /// Write the payload into the returned slot, then
    /// [`commit`](WriteSlot::commit) it (or [`stage`](WriteSlot::stage) it
    /// and [`flush`](Producer::flush) later). Dropping the slot aborts
    /// the record: the consumer never sees it.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Full`], [`ClaimError::TooLarge`],
    /// [`ClaimError::Corrupt`] if the consumer position is inconsistent, or
    /// [`ClaimError::Unusable`] (instead of `Full` or `Corrupt`) if the
    /// ring's segment was removed, truncated or poisoned.
    #[inline]
    pub fn try_claim(&mut self, len: usize) -> Result<WriteSlot<'_>, ClaimError> {
        match self.reserve(len) {
            Ok(reserved) => Ok(self.slot(reserved, len)),
            Err(e) => Err(self.claim_failed(e)),
        }
    }

    /// Turns a `Full` or `Corrupt` result into `Unusable` if the segment
    /// says so.
    #[cold]
    fn claim_failed(&mut self, e: ClaimError) -> ClaimError {
        if e == ClaimError::Full {
            counters::count_full(&self.ring.control().producer_counters);
        }
        let fault = match e {
            ClaimError::Full => self.ring.fault_after_miss(),
            ClaimError::Corrupt(_) => self.ring.fault_now(),
            _ => None,
        };
        match fault {
            Some(fault) => self.set_unusable(fault),
            None => e,
        }
    }

    /// Records that the ring is unusable: every later claim returns the
    /// same error, with no cost on the hot path (the cached limit sends
    /// every claim to the slow path, which checks).
    #[cold]
    fn set_unusable(&mut self, fault: SegmentFault) -> ClaimError {
        self.unusable = Some(fault);
        self.limit = 0;
        ClaimError::Unusable(fault)
    }

    /// Claims room for `len` bytes, waiting with `wait` while the ring is full.
    ///
    /// On a ring in shared memory no sleep of the wait lasts more than
    /// 20 ms (a longer `Backoff::max_sleep` is cut), so that a removal or
    /// truncation is noticed.
    ///
    /// # Errors
    ///
    /// [`ClaimError::TooLarge`], [`ClaimError::Corrupt`],
    /// [`ClaimError::Unusable`], or [`ClaimError::CannotSleep`] for
    /// [`WaitStrategy::Blocking`]; never `Full`.
    pub fn claim_blocking(
        &mut self,
        len: usize,
        wait: WaitStrategy,
    ) -> Result<WriteSlot<'_>, ClaimError> {
        let reserved = self.reserve_waiting(len, wait, None)?;
        Ok(self.slot(reserved, len))
    }

    /// Claims room for `len` bytes, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ClaimError::TimedOut`], or as [`Producer::claim_blocking`].
    pub fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<WriteSlot<'_>, ClaimError> {
        let reserved = self.reserve_waiting(len, wait, Some(timeout))?;
        Ok(self.slot(reserved, len))
    }

    fn reserve_waiting(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Option<Duration>,
    ) -> Result<Reserved, ClaimError> {
        if matches!(wait, WaitStrategy::Blocking { .. }) {
            return Err(ClaimError::CannotSleep);
        }
        // Staged records must become visible or the consumer can never free
        // the space we are waiting for.
        self.flush();
        let wait = self.ring.wait_strategy(wait);
        let mut waiter = Waiter::with_timeout(wait, timeout.unwrap_or(Duration::MAX));
        let mut full = FullWait::default();
        let result = loop {
            match self.reserve(len) {
                Err(ClaimError::Full) => {}
                Err(e @ ClaimError::Corrupt(_)) => break Err(self.claim_failed(e)),
                other => break other,
            }
            full.found_full(&self.ring.control().producer_counters, &waiter);
            if let Some(fault) = self.ring.fault_while_waiting(&waiter) {
                break Err(self.set_unusable(fault));
            }
            if waiter.timed_out() {
                break Err(ClaimError::TimedOut);
            }
            waiter.wait();
        };
        full.end(&self.ring.control().producer_counters);
        result
    }

    /// Copies `payload` into a new record of type `record_type` and commits
    /// it, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Producer::try_claim`].
    #[inline]
    pub fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<(), ClaimError> {
        let mut slot = self.try_claim(payload.len())?;
        slot.copy_from_slice(payload);
        slot.set_record_type(record_type);
        slot.commit();
        Ok(())
    }

    /// As [`Producer::try_send`], waiting with `wait` while the ring is full.
    ///
    /// # Errors
    ///
    /// As [`Producer::claim_blocking`].
    pub fn send_blocking(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
    ) -> Result<(), ClaimError> {
        self.send_timeout(record_type, payload, wait, Duration::MAX)
    }

    /// As [`Producer::try_send`], waiting with `wait` up to `timeout` while
    /// the ring is full.
    ///
    /// # Errors
    ///
    /// As [`Producer::claim_timeout`].
    pub fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<(), ClaimError> {
        let mut slot = self.claim_timeout(payload.len(), wait, timeout)?;
        slot.copy_from_slice(payload);
        slot.set_record_type(record_type);
        slot.commit();
        Ok(())
    }

    /// Makes every staged record ([`WriteSlot::stage`]) visible to the
    /// consumer with one store.
    #[inline]
    pub fn flush(&mut self) {
        if let Some((index, word)) = self.held.take() {
            // SYNC POINT: the commit; pairs with the consumer's Acquire load of
            // the header in `Consumer::next_frame`. Every payload byte, header
            // and sentinel written since the last publish is visible to it
            // once it sees this word.
            self.ring.data.store_header(index, word, Ordering::Release);
            if self.push {
                self.push_published(index);
            }
            // SYNC POINT: pairs with inspectors' and a new producer's loads
            // of `tail` (informational: consumers follow the headers).
            self.ring.control().tail.store(self.tail, Ordering::Release);
            if self.ring.wakeups {
                self.wake_consumer();
            }
        }
    }

    /// Whether every commit (or flush) from now on also pushes the records
    /// out of this core's private caches into the shared last-level cache
    /// (x86 `cldemote`; nothing on CPUs without it), so that a reader
    /// waiting on another core fetches them from there rather than from
    /// this core.
    ///
    /// For sporadic, latency-critical records (orders, signals): in the
    /// cross-process ping-pong bench it took 15–19 % off the one-way p50
    /// (see the README's Measured section). Off by default, because it costs a
    /// stream of records, whose writer pushes away lines it is about to
    /// write again: a topic streaming with it ran at about a fifth of its
    /// rate (the `broadcast` bench's throughput part).
    pub fn set_push_on_commit(&mut self, push: bool) {
        self.push = push;
    }

    /// Whether publishing pushes the records out
    /// ([`Producer::set_push_on_commit`]).
    pub fn push_on_commit(&self) -> bool {
        self.push
    }

    /// Pushes what was just published, from the header at `index` to the
    /// tail (both parts when it wraps), towards the consumer's core.
    #[inline]
    fn push_published(&self, index: usize) {
        let end = (self.tail & self.ring.mask) as usize;
        if end > index {
            self.ring.data.demote(index, end - index);
        } else {
            self.ring
                .data
                .demote(index, self.ring.capacity as usize - index);
            self.ring.data.demote(0, end);
        }
    }

    /// Wakes a sleeping consumer, with no system call when it is awake.
    #[inline]
    fn wake_consumer(&self) {
        let ctl = self.ring.control();
        // SYNC POINT: Dekker pair with the SeqCst fence in
        // `Consumer::sleep`: either we see its sleeper flag, or it sees our
        // header store before it sleeps.
        fence(Ordering::SeqCst);
        if ctl.sleepers.load(Ordering::Relaxed) != 0 {
            // SYNC POINT: Release pairs with the consumer's Acquire load of
            // `wake_seq` in `Consumer::sleep`: a consumer that sees this bump
            // sees the header stores before it.
            ctl.wake_seq.fetch_add(1, Ordering::Release);
            futex_wake_all(&ctl.wake_seq);
            counters::add(&ctl.producer_counters.wakes, 1);
        }
    }

    /// Whether the consumer of this ring is attached and alive, for a ring
    /// in shared memory; `None` for an in-process ring.
    pub fn consumer_alive(&self) -> Option<bool> {
        self.ring.peer_alive()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Staged records are committed work; do not lose them on drop.
        self.flush();
    }
}

/// Room for one record, claimed from a [`Producer`]. Derefs to its payload
/// bytes (uninitialised content: whatever was in the ring before).
pub struct WriteSlot<'a> {
    producer: &'a mut Producer,
    /// Padding bytes before the record (at the producer's tail).
    pad: u64,
    /// Index of the record's frame.
    index: usize,
    len: usize,
    record_type: u16,
}

impl<'a> WriteSlot<'a> {
    /// Sets the record type (an application-defined `u16`; default 0).
    #[inline]
    pub fn set_record_type(&mut self, record_type: u16) -> &mut Self {
        self.record_type = record_type;
        self
    }

    /// Writes the sentinel after the record and the record's header (and
    /// padding header), holding back the earliest header of everything not
    /// yet published; advances the producer's private tail.
    #[inline]
    fn finish(self) -> &'a mut Producer {
        let producer = self.producer;
        let ring = &producer.ring;
        let start = producer.tail;
        let end = start + self.pad + frame_len(self.len) as u64;
        // What `reserve` made sure of: the frame lies before the region's
        // end, and it and the sentinel after it within the free space.
        debug_assert!(self.index as u64 + frame_len(self.len) as u64 <= ring.capacity);
        debug_assert!(self.pad == 0 || (start & ring.mask) + self.pad == ring.capacity);
        debug_assert!(end + SENTINEL_LEN <= producer.limit);
        // The next header position must read "nothing yet" before this
        // record can be seen: it may still hold bytes of an older lap.
        ring.data
            .store_header((end & ring.mask) as usize, 0, Ordering::Relaxed);
        let record = pack_record_header(self.len as u32, self.record_type, FLAG_COMMITTED);
        let first = if self.pad > 0 {
            ring.data
                .store_header(self.index, record, Ordering::Relaxed);
            let padding = pack_record_header(
                (self.pad - RECORD_HEADER_LEN as u64) as u32,
                0,
                FLAG_PADDING | FLAG_COMMITTED,
            );
            ((start & ring.mask) as usize, padding)
        } else {
            (self.index, record)
        };
        match producer.held {
            None => producer.held = Some(first),
            Some(_) => ring.data.store_header(first.0, first.1, Ordering::Relaxed),
        }
        producer.tail = end;
        counters::count_record(&ring.control().producer_counters, self.len);
        producer
    }

    /// Finishes the record and publishes it (and any staged before it) with
    /// one `Release` store.
    #[inline]
    pub fn commit(self) {
        self.finish().flush();
    }

    /// Finishes the record without publishing it: it becomes visible with
    /// the next [`Producer::flush`] or [`WriteSlot::commit`], so a batch
    /// costs one store.
    #[inline]
    pub fn stage(self) {
        let _ = self.finish();
    }

    /// Drops the record; the consumer never sees it. Same as dropping the slot.
    pub fn abort(self) {}
}

impl Deref for WriteSlot<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `reserve` checked the frame lies inside the region and in
        // free space, which only this producer may touch until it publishes.
        unsafe {
            self.producer
                .ring
                .data
                .slice(self.index + RECORD_HEADER_LEN, self.len)
        }
    }
}

impl DerefMut for WriteSlot<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only slice.
        unsafe {
            self.producer
                .ring
                .data
                .slice_mut(self.index + RECORD_HEADER_LEN, self.len)
        }
    }
}

// ---------------------------------------------------------------------------
// Consumer
// ---------------------------------------------------------------------------

/// One readable record located by the consumer.
#[derive(Clone, Copy)]
struct Frame {
    index: usize,
    len: usize,
    record_type: u16,
    next: u64,
}

/// The reading end of an SPSC ring. Exactly one exists per ring.
///
/// # Examples
///
/// ```
/// use shmbus::ring::spsc::RecvError;
/// use shmbus::{Bus, SpscConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let fills = bus.spsc("fills", &SpscConfig::with_capacity(1 << 16))?;
/// let mut tx = fills.producer()?;
/// let mut rx = fills.consumer()?;
/// tx.try_send(5, b"fill")?;
/// let rec = rx.read_blocking(WaitStrategy::BusySpin)?;  // a borrow of the ring's bytes
/// assert_eq!((rec.record_type(), &rec[..]), (5, &b"fill"[..]));
/// drop(rec);                                              // gives the space back
/// assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
/// # drop((tx, rx, fills, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer {
    ring: RingView,
    /// Next position to read.
    head: u64,
    /// Last value stored to `control.head`.
    released: u64,
}

// SAFETY: a Consumer is the only reader of its ring's records and the only
// writer of its head; moving it to another thread moves that right with it.
unsafe impl Send for Consumer {}

impl Consumer {
    fn attach(ring: RingView) -> Result<Self, Corruption> {
        // SYNC POINT: pairs with the Release stores of `head` by a previous
        // consumer of this ring.
        let head = ring.control().head.load(Ordering::Acquire);
        check_start(head)?;
        Ok(Consumer {
            ring,
            head,
            released: head,
        })
    }

    /// Data region size in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Position of the next record to read.
    pub fn position(&self) -> u64 {
        self.head
    }

    /// Whether a [`WaitStrategy::Blocking`] wait sleeps on the ring's futex
    /// until the producer wakes it: the ring was created with
    /// [`SpscConfig::with_wakeups`]. Without wake-ups such a wait returns
    /// [`RecvError::CannotSleep`].
    pub fn can_sleep(&self) -> bool {
        self.ring.wakeups
    }

    /// Locates the next record without waiting.
    #[inline]
    fn next_frame(&mut self) -> Result<Frame, RecvError> {
        let corrupt = |kind, position| RecvError::Corrupt(Corruption { kind, position });
        let mut skipped_padding = false;
        loop {
            let index = (self.head & self.ring.mask) as usize;
            let to_end = self.ring.capacity - index as u64;
            // SYNC POINT: pairs with the producer's Release store of a header
            // in `Producer::flush`: the frame and everything published
            // with it are complete after this load. Read once; from here on
            // only the local copy is used.
            let word = self.ring.data.load_header(index, Ordering::Acquire);
            if word == 0 {
                return Err(RecvError::Empty);
            }
            let frame = check_frame(word, to_end, u64::MAX, self.ring.max_payload)
                .map_err(|kind| corrupt(kind, self.head))?;
            if frame.padding {
                // At most one padding frame precedes a record.
                if skipped_padding {
                    let len = frame.len;
                    return Err(corrupt(CorruptionKind::BadPadding { len }, self.head));
                }
                skipped_padding = true;
                self.head += to_end;
                continue;
            }
            let (len, record_type, total) = (frame.len, frame.record_type, frame.total);
            self.ring.data.note_read(index, total as usize);
            return Ok(Frame {
                index,
                len: len as usize,
                record_type,
                next: self.head + total,
            });
        }
    }

    fn record(&mut self, frame: Frame) -> Record<'_> {
        Record {
            consumer: self,
            frame,
        }
    }

    /// Borrows the next record without waiting.
    ///
    /// Dropping the [`Record`] releases its space to the producer; use
    /// [`Record::defer_release`] and [`Consumer::release`] to release a batch
    /// with one store.
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`], [`RecvError::Corrupt`], or
    /// [`RecvError::Unusable`] (instead of `Empty` or `Corrupt`) if the
    /// ring's segment was removed, truncated or poisoned.
    #[inline]
    pub fn try_read(&mut self) -> Result<Record<'_>, RecvError> {
        match self.next_frame() {
            Ok(frame) => Ok(self.record(frame)),
            Err(e) => Err(self.read_failed(e)),
        }
    }

    /// Turns an `Empty` or `Corrupt` result into `Unusable` if the segment
    /// says so.
    #[cold]
    fn read_failed(&mut self, e: RecvError) -> RecvError {
        let fault = match e {
            RecvError::Empty => self.ring.fault_after_miss(),
            RecvError::Corrupt(_) => self.ring.fault_now(),
            _ => None,
        };
        fault.map_or(e, RecvError::Unusable)
    }

    /// Borrows the next record, waiting with `wait` while the ring is empty.
    ///
    /// On a ring in shared memory no sleep of the wait (futex or backoff)
    /// lasts more than 20 ms, so that a removal or truncation is noticed.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`], [`RecvError::Unusable`], or
    /// [`RecvError::CannotSleep`] for [`WaitStrategy::Blocking`] on a ring
    /// without wake-ups; never `Empty`.
    pub fn read_blocking(&mut self, wait: WaitStrategy) -> Result<Record<'_>, RecvError> {
        let frame = self.next_frame_waiting(wait, None)?;
        Ok(self.record(frame))
    }

    /// Borrows the next record, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvError::TimedOut`], or as [`Consumer::read_blocking`].
    pub fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Record<'_>, RecvError> {
        let frame = self.next_frame_waiting(wait, Some(timeout))?;
        Ok(self.record(frame))
    }

    /// Copies the next record into `buf` without waiting, releases it, and
    /// returns its `(record type, length)`.
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_read`], plus [`RecvError::BufferTooSmall`] (the
    /// record stays in the ring: the next call returns it again).
    #[inline]
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        match self.next_frame() {
            Ok(frame) => self.copy_out(frame, buf),
            Err(e) => Err(self.read_failed(e)),
        }
    }

    /// As [`Consumer::try_recv`], waiting with `wait` while the ring is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Consumer::read_blocking`], plus [`RecvError::BufferTooSmall`].
    pub fn recv_blocking(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
    ) -> Result<(u16, usize), RecvError> {
        let frame = self.next_frame_waiting(wait, None)?;
        self.copy_out(frame, buf)
    }

    /// As [`Consumer::try_recv`], waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Consumer::read_timeout`], plus [`RecvError::BufferTooSmall`].
    pub fn recv_timeout(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<(u16, usize), RecvError> {
        let frame = self.next_frame_waiting(wait, Some(timeout))?;
        self.copy_out(frame, buf)
    }

    /// Copies `frame`'s payload into `buf` and releases it; leaves it in the
    /// ring if `buf` is too short.
    #[inline]
    fn copy_out(&mut self, frame: Frame, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        let (record_type, len) = (frame.record_type, frame.len);
        let Some(dst) = buf.get_mut(..len) else {
            return Err(RecvError::BufferTooSmall { needed: len });
        };
        // Dropping the record releases it.
        dst.copy_from_slice(&self.record(frame));
        Ok((record_type, len))
    }

    fn next_frame_waiting(
        &mut self,
        wait: WaitStrategy,
        timeout: Option<Duration>,
    ) -> Result<Frame, RecvError> {
        if !self.can_sleep() && matches!(wait, WaitStrategy::Blocking { .. }) {
            return Err(RecvError::CannotSleep);
        }
        // Deferred releases must reach the producer or it may never fill
        // the ring with what we are waiting for.
        self.release();
        let wait = self.ring.wait_strategy(wait);
        let mut waiter = Waiter::with_timeout(wait, timeout.unwrap_or(Duration::MAX));
        loop {
            match self.next_frame() {
                Err(RecvError::Empty) => {}
                Err(e @ RecvError::Corrupt(_)) => return Err(self.read_failed(e)),
                other => return other,
            }
            if let Some(fault) = self.ring.fault_while_waiting(&waiter) {
                return Err(RecvError::Unusable(fault));
            }
            if waiter.timed_out() {
                return Err(RecvError::TimedOut);
            }
            if waiter.should_sleep() {
                self.sleep(waiter.sleep_budget(self.ring.sleep_cap()));
                waiter.count_round();
            } else {
                waiter.wait();
            }
        }
    }

    /// Sleeps on the ring's futex until the producer publishes, the ring is
    /// removed (by [`shm::remove_ring`], which wakes us), or `max` passes.
    fn sleep(&mut self, max: Duration) {
        let ctl = self.ring.control();
        // SYNC POINT: pairs with the Release `fetch_add` of `wake_seq` in
        // `Producer::wake_consumer` and in `shm::remove_ring` (after its
        // `removed` flag store, so if we see that bump we see the flag).
        let seen = ctl.wake_seq.load(Ordering::Acquire);
        ctl.sleepers.store(1, Ordering::Relaxed);
        // SYNC POINT: Dekker pair with the SeqCst fence in
        // `Producer::wake_consumer`: either the producer sees our flag and
        // wakes us, or we see its header store here.
        fence(Ordering::SeqCst);
        let index = (self.head & self.ring.mask) as usize;
        // SYNC POINT: pairs with the producer's Release store of a header.
        let empty = self.ring.data.load_header(index, Ordering::Acquire) == 0;
        // A removal before our load of `seen` is visible now; one after it
        // bumps `wake_seq`, so the futex does not sleep through it.
        let removed = self.ring.segment().is_some_and(|s| s.fault().is_some());
        counters::note_activity(&ctl.consumer_counters);
        if empty && !removed {
            counters::add(&ctl.consumer_counters.sleeps, 1);
            futex_wait(&ctl.wake_seq, seen, max);
            if ctl.wake_seq.load(Ordering::Relaxed) != seen {
                counters::add(&ctl.consumer_counters.wakes, 1);
            }
        }
        ctl.sleepers.store(0, Ordering::Relaxed);
    }

    /// Reads up to `max` records without waiting, calling `f(type, payload)`
    /// for each, then releases them all with one store. Returns how many were
    /// read (0 if the ring was empty).
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] if the first record is corrupt, or
    /// [`RecvError::Unusable`] if the ring was empty and its segment was
    /// removed, truncated or poisoned; corruption found after some records
    /// were read ends the batch early and is reported by the next call.
    pub fn read_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(u16, &[u8]),
    ) -> Result<usize, RecvError> {
        let mut n = 0;
        while n < max {
            match self.next_frame() {
                Ok(frame) => {
                    // SAFETY: `next_frame` validated the frame inside the region;
                    // the producer does not write it until we release it.
                    let payload = unsafe {
                        self.ring
                            .data
                            .slice(frame.index + RECORD_HEADER_LEN, frame.len)
                    };
                    f(frame.record_type, payload);
                    self.head = frame.next;
                    self.count_read(frame.len);
                    n += 1;
                }
                Err(e @ RecvError::Corrupt(_)) if n == 0 => return Err(self.read_failed(e)),
                Err(RecvError::Empty) if n == 0 => match self.read_failed(RecvError::Empty) {
                    RecvError::Empty => break,
                    e => return Err(e),
                },
                Err(_) => break,
            }
        }
        self.release();
        Ok(n)
    }

    /// Counts a record of `len` payload bytes read.
    #[inline(always)]
    fn count_read(&mut self, len: usize) {
        counters::count_record(&self.ring.control().consumer_counters, len);
    }

    /// Returns the space of every record read so far to the producer with
    /// one `Release` store.
    #[inline]
    pub fn release(&mut self) {
        // Our own position: it starts aligned and moves on by whole frames.
        debug_assert!(self.head >= self.released && self.head % 8 == 0);
        if self.head != self.released {
            self.released = self.head;
            // SYNC POINT: pairs with the producer's Acquire load of `head` in
            // `Producer::reserve`; our reads of the released records happen
            // before it reuses their bytes.
            self.ring.control().head.store(self.head, Ordering::Release);
        }
    }

    /// Bytes published by the producer and not yet read, from the
    /// producer's informational tail (0 if it is behind).
    pub fn pending_bytes(&self) -> u64 {
        // SYNC POINT: pairs with the producer's Release store of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        tail.saturating_sub(self.head)
    }

    /// Whether the producer of this ring is attached and alive, for a ring
    /// in shared memory; `None` for an in-process ring.
    pub fn producer_alive(&self) -> Option<bool> {
        self.ring.peer_alive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.release();
    }
}

/// A record borrowed from the ring. Derefs to its payload.
///
/// Dropping it releases its space to the producer at once.
pub struct Record<'a> {
    consumer: &'a mut Consumer,
    frame: Frame,
}

impl Record<'_> {
    /// The record type the producer set.
    #[inline]
    pub fn record_type(&self) -> u16 {
        self.frame.record_type
    }

    /// Releases the record now (same as dropping it).
    #[inline]
    pub fn release(self) {}

    /// Marks the record read without telling the producer yet; the space is
    /// returned by the next [`Consumer::release`] (or any later release).
    #[inline]
    pub fn defer_release(self) {
        self.consumer
            .ring
            .data
            .note_read(self.frame.index, frame_len(self.frame.len));
        self.consumer.head = self.frame.next;
        self.consumer.count_read(self.frame.len);
        core::mem::forget(self);
    }
}

impl Deref for Record<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `next_frame` validated the frame inside the region; the
        // producer does not write it until we release it.
        unsafe {
            self.consumer
                .ring
                .data
                .slice(self.frame.index + RECORD_HEADER_LEN, self.frame.len)
        }
    }
}

impl Drop for Record<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer
            .ring
            .data
            .note_read(self.frame.index, frame_len(self.frame.len));
        self.consumer.head = self.frame.next;
        self.consumer.count_read(self.frame.len);
        self.consumer.release();
    }
}

#[cfg(all(test, not(shmbus_loom)))]
mod tests {
    use super::*;

    fn ring(capacity: usize) -> (Producer, Consumer) {
        heap(SpscConfig::with_capacity(capacity)).expect("valid config")
    }

    /// The copy forms: a short buffer leaves the record for the next call,
    /// a long enough one gets it and releases it.
    #[test]
    fn recv_copies_out_and_a_short_buffer_takes_nothing() {
        let (mut tx, mut rx) = ring(256);
        tx.try_send(3, b"abcdef").expect("room");
        tx.try_send(4, b"gh").expect("room");
        let mut small = [0u8; 4];
        assert_eq!(
            rx.try_recv(&mut small),
            Err(RecvError::BufferTooSmall { needed: 6 })
        );
        let mut buf = [0u8; 16];
        assert_eq!(rx.try_recv(&mut buf), Ok((3, 6)));
        assert_eq!(&buf[..6], b"abcdef");
        assert_eq!(
            rx.recv_timeout(&mut buf, WaitStrategy::BusySpin, Duration::from_secs(1)),
            Ok((4, 2))
        );
        assert_eq!(&buf[..2], b"gh");
        assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Empty));
        assert_eq!(
            rx.recv_timeout(&mut buf, WaitStrategy::Yield, Duration::from_millis(5)),
            Err(RecvError::TimedOut)
        );
        assert_eq!(rx.pending_bytes(), 0, "both records were released");
    }

    #[test]
    fn records_come_out_in_order_with_their_types() {
        let (mut tx, mut rx) = ring(256);
        for i in 0..1000u32 {
            let payload = i.to_le_bytes().repeat((i % 7) as usize + 1);
            tx.try_send(i as u16, &payload).expect("room");
            let rec = rx.try_read().expect("a record");
            assert_eq!(rec.record_type(), i as u16);
            assert_eq!(&rec[..], &payload[..]);
        }
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    }

    #[test]
    fn full_ring_refuses_until_the_consumer_releases() {
        // Max payload 16: frame 24 + sentinel 8 = half the ring.
        let (mut tx, mut rx) = ring(64);
        tx.try_send(0, &[1; 16]).expect("first fits");
        tx.try_send(0, &[2; 16]).expect("second fits");
        assert_eq!(tx.try_claim(1).err(), Some(ClaimError::Full));
        assert_eq!(
            tx.try_claim(17).err(),
            Some(ClaimError::TooLarge { len: 17, max: 16 })
        );
        assert_eq!(&rx.try_read().expect("rec")[..], &[1; 16]);
        // 16 bytes before the end: an 8-byte record (frame 16) fits there.
        tx.try_send(0, &[3; 8]).expect("room after release");
    }

    #[test]
    fn wrap_writes_padding_and_the_record_starts_at_zero() {
        let (mut tx, mut rx) = ring(64);
        tx.try_send(1, &[1; 16]).expect("fits"); // frame 24 at 0
        tx.try_send(2, &[2; 16]).expect("fits"); // frame 24 at 24
        assert_eq!(rx.try_read().expect("rec").record_type(), 1);
        assert_eq!(rx.try_read().expect("rec").record_type(), 2);
        // 16 bytes left before the end: a 24-byte frame must wrap.
        tx.try_send(3, &[3; 16]).expect("fits after padding");
        assert_eq!(tx.position(), 64 + 24);
        let rec = rx.try_read().expect("rec");
        assert_eq!((rec.record_type(), &rec[..]), (3, &[3u8; 16][..]));
    }

    #[test]
    fn aborted_claims_are_never_seen() {
        let (mut tx, mut rx) = ring(128);
        let mut slot = tx.try_claim(8).expect("room");
        slot.copy_from_slice(b"ABORTED!");
        slot.abort();
        let _ = tx.try_claim(8).expect("room"); // dropped = aborted too
        tx.try_send(9, b"kept").expect("room");
        let rec = rx.try_read().expect("rec");
        assert_eq!(&rec[..], b"kept");
        drop(rec);
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    }

    #[test]
    fn staged_records_appear_only_when_published() {
        let (mut tx, mut rx) = ring(256);
        for i in 0..3u8 {
            let mut slot = tx.try_claim(1).expect("room");
            slot[0] = i;
            slot.stage();
        }
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
        tx.flush();
        let mut seen = Vec::new();
        assert_eq!(rx.read_batch(10, |_, p| seen.push(p[0])), Ok(3));
        assert_eq!(seen, [0, 1, 2]);
    }

    /// A `Blocking` wait says it cannot sleep where nothing would wake it,
    /// whether or not it would have had to wait, and leaves the ring as it
    /// was; with wake-ups the consumer's `Blocking` wait works.
    #[test]
    fn a_blocking_wait_that_cannot_sleep_says_so() {
        let blocking = WaitStrategy::BLOCKING;
        let (mut tx, mut rx) = ring(256);
        assert!(!rx.can_sleep());
        assert_eq!(
            tx.claim_blocking(8, blocking).err(),
            Some(ClaimError::CannotSleep)
        );
        assert_eq!(
            tx.claim_timeout(8, blocking, Duration::from_millis(1))
                .err(),
            Some(ClaimError::CannotSleep)
        );
        assert_eq!(
            tx.send_blocking(1, b"x", blocking),
            Err(ClaimError::CannotSleep)
        );
        tx.try_send(1, b"waiting").expect("room");
        assert_eq!(
            rx.read_blocking(blocking).err(),
            Some(RecvError::CannotSleep)
        );
        assert_eq!(
            rx.read_timeout(blocking, Duration::from_millis(1)).err(),
            Some(RecvError::CannotSleep)
        );
        // Nothing was consumed: the record is still there for another wait.
        let rec = rx.read_blocking(WaitStrategy::BusySpin).expect("record");
        assert_eq!(&rec[..], b"waiting");
        drop(rec);
        assert!(
            RecvError::CannotSleep.to_string().contains("with_wakeups"),
            "the error says what to do"
        );

        let (mut tx, mut rx) = heap(SpscConfig::with_capacity(256).with_wakeups()).expect("valid");
        assert!(rx.can_sleep());
        assert_eq!(
            tx.claim_blocking(8, blocking).err(),
            Some(ClaimError::CannotSleep)
        );
        tx.try_send(2, b"woken").expect("room");
        let rec = rx
            .read_timeout(blocking, Duration::from_secs(5))
            .expect("record");
        assert_eq!(&rec[..], b"woken");
        drop(rec);
        assert_eq!(
            rx.read_timeout(blocking, Duration::from_millis(5)).err(),
            Some(RecvError::TimedOut)
        );
    }

    #[test]
    fn deferred_releases_free_space_only_on_release() {
        let (mut tx, mut rx) = ring(64);
        tx.try_send(0, &[0; 16]).expect("fits");
        tx.try_send(0, &[0; 16]).expect("fits");
        rx.try_read().expect("rec").defer_release();
        assert_eq!(tx.try_claim(8).err(), Some(ClaimError::Full));
        rx.release();
        assert!(tx.try_claim(8).is_ok());
    }

    #[test]
    fn invalid_configs_are_refused() {
        let setting = |c: SpscConfig| c.validate().map_err(|e| e.setting);
        assert_eq!(setting(SpscConfig::with_capacity(100)), Err("capacity"));
        assert_eq!(setting(SpscConfig::with_capacity(32)), Err("capacity"));
        let too_big = SpscConfig {
            capacity: 64,
            max_payload: Some(17),
            wakeups: false,
        };
        let e = too_big.validate().expect_err("17 > 16");
        assert_eq!((e.setting, e.value.as_str()), ("max_payload", "17"));
        assert!(
            e.to_string()
                .starts_with("max_payload 17 must be at most 16"),
            "{e}"
        );
        assert_eq!(SpscConfig::with_capacity(64).validate(), Ok((64, 16)));
    }
}
