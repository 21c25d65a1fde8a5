//! Every byte that lives in shared memory.
//!
//! A segment is one memory-mapped file. It starts with a [`SegmentHeader`]
//! (one cache line) followed by the control block of whatever the segment
//! holds, then that structure's data. Each process that maps a segment must
//! agree on this layout to the byte, so:
//!
//! * the cache-line size is the constant [`CACHE_LINE`] (128: two x86 lines,
//!   because the adjacent-line prefetcher pulls pairs), never a type that
//!   changes with the target;
//! * every structure is `#[repr(C)]` with its padding written out, and is
//!   declared once, as a table of fields with their offsets
//!   (`shared_struct!`). The table is the structure's [`StructLayout`]
//!   (`X::LAYOUT`); the compiler checks at compile time that every field
//!   sits at the offset the table gives and that the fields, padding
//!   included, cover the structure's bytes exactly once;
//! * a [`layout_hash`] of those tables (the name, offset and size of every
//!   field), of the numbers a segment kind encodes (region offsets, stamp
//!   and state packing, [`lock_slot`] numbering), the pointer width and the
//!   byte order is stored in every header and checked on open, so a build
//!   whose layout differs is refused instead of misreading memory.
//!
//! Multi-byte integers are native-endian (every process on a host shares
//! it); the hash records the endianness so a mismatch cannot go unnoticed.

use crate::sync::{AtomicU32, AtomicU64, StatCounter};

/// One field of a shared structure, as the structure's table lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// Offset of its first byte in the structure.
    pub offset: usize,
    /// Its size in bytes.
    pub size: usize,
}

/// The layout table of a shared structure: every field, explicit padding
/// included, in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The structure's name.
    pub name: &'static str,
    /// Its size in bytes.
    pub size: usize,
    /// Its fields in declaration (and so offset) order.
    pub fields: &'static [Field],
}

impl StructLayout {
    /// Whether the fields tile the structure: the first starts at 0, each
    /// starts where the one before it ends, and the last ends at `size`, so
    /// every byte belongs to exactly one field and there is no implicit
    /// padding.
    pub const fn is_exact(&self) -> bool {
        let mut end = 0;
        let mut i = 0;
        while i < self.fields.len() {
            if self.fields[i].offset != end {
                return false;
            }
            end += self.fields[i].size;
            i += 1;
        }
        end == self.size
    }
}

/// Declares a structure that lives in shared memory, listing each field
/// once with its offset:
///
/// ```text
/// shared_struct! {
///     /// Docs.
///     #[derive(Debug)]
///     pub struct Example {
///         /// Docs.
///         0 => pub word: AtomicU64,
///         8 => pub pad: [u8; CACHE_LINE - 8],
///     }
/// }
/// ```
///
/// It expands to the `#[repr(C)]` structure, its `LAYOUT` table (the input
/// of [`layout_hash`]) and, in normal builds, compile-time checks that each
/// field is at the offset given and that the table is exact
/// ([`StructLayout::is_exact`]). Under loom the atomics have another size,
/// so the checks are left out (loom never maps shared memory).
macro_rules! shared_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $offset:literal => pub $field:ident : $ty:ty
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )+
        }

        impl $name {
            /// This structure's layout table: every field, padding
            /// included, with its offset and size.
            pub const LAYOUT: StructLayout = StructLayout {
                name: stringify!($name),
                size: core::mem::size_of::<$name>(),
                fields: &[$(Field {
                    name: stringify!($field),
                    offset: $offset,
                    size: core::mem::size_of::<$ty>(),
                }),+],
            };
        }

        #[cfg(not(shmbus_loom))]
        const _: () = {
            $(assert!(
                core::mem::offset_of!($name, $field) == $offset,
                concat!(
                    stringify!($name), "::", stringify!($field),
                    " is not at the offset its table gives"
                )
            );)+
            assert!(
                $name::LAYOUT.is_exact(),
                concat!(
                    "the fields of ", stringify!($name),
                    " leave a gap or overlap, or do not end at its size"
                )
            );
        };
    };
}

/// Cache-line size used for every padding decision in shared memory.
pub const CACHE_LINE: usize = 128;

/// `"SHMB"` read as a little-endian `u32`: the first word of every segment.
pub const SEGMENT_MAGIC: u32 = u32::from_le_bytes(*b"SHMB");

/// Version of the shared-memory layout this build reads and writes.
///
/// Bump it whenever any structure in this module changes meaning.
pub const LAYOUT_VERSION: u32 = 3;

/// Packs magic and layout version into the word published last on creation.
pub const fn magic_word(version: u32) -> u64 {
    (SEGMENT_MAGIC as u64) | ((version as u64) << 32)
}

/// What a segment holds, stored in [`SegmentHeader::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SegmentKind {
    /// A single-producer single-consumer ring ([`SpscControl`] + data).
    Spsc = 1,
    /// A multi-producer broadcast log ([`BroadcastControl`], participant
    /// slots, record slots).
    Broadcast = 2,
    /// A namespace's topic directory ([`DirectoryControl`] + entries).
    Directory = 3,
    /// A work queue ([`QueueControl`], participant slots, record slots).
    Queue = 4,
}

impl SegmentKind {
    /// Short lowercase name for messages and tools.
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Spsc => "spsc",
            SegmentKind::Broadcast => "bcast",
            SegmentKind::Directory => "dir",
            SegmentKind::Queue => "queue",
        }
    }

    /// Layout hash expected for segments of this kind.
    pub fn layout_hash(self) -> u64 {
        match self {
            SegmentKind::Spsc => SPSC_LAYOUT_HASH,
            SegmentKind::Broadcast => BROADCAST_LAYOUT_HASH,
            SegmentKind::Directory => DIRECTORY_LAYOUT_HASH,
            SegmentKind::Queue => QUEUE_LAYOUT_HASH,
        }
    }
}

shared_struct! {
    /// The first cache line of every segment.
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+  0
    /// |                 magic "SHMB" (0 until published)              |
    /// +---------------------------------------------------------------+  4
    /// |                 layout version (0 until published)            |
    /// +---------------------------------------------------------------+  8
    /// |                 layout hash (u64)                             |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 16
    /// |                 segment size in bytes (u64)                   |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 24
    /// |                 kind (SegmentKind)                            |
    /// +---------------------------------------------------------------+ 28
    /// |                 state (0 healthy, 1 poisoned)                 |
    /// +---------------------------------------------------------------+ 32
    /// |                 creator pid (informational)                   |
    /// +---------------------------------------------------------------+ 36
    /// |                 removed (0 in use, 1 removed)                 |
    /// +---------------------------------------------------------------+ 40
    /// |                 created at, CLOCK_REALTIME ns (u64)           |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 48
    /// |                 reserved (0) ... up to byte 128               |
    /// +---------------------------------------------------------------+
    /// ```
    ///
    /// The creator writes every field, then stores the magic/version word with
    /// `Release`; an opener loads it with `Acquire` before reading anything else.
    #[derive(Debug)]
    pub struct SegmentHeader {
        /// [`magic_word`]`(LAYOUT_VERSION)`, or 0 while the creator initialises.
        /// Written once, by the creator, last.
        0 => pub magic_version: AtomicU64,
        /// [`layout_hash`] of the creator's build for this kind.
        8 => pub layout_hash: u64,
        /// Total file size the creator reserved; checked against `fstat`.
        16 => pub segment_size: u64,
        /// [`SegmentKind`] as `u32`.
        24 => pub kind: u32,
        /// 0 healthy; 1 poisoned (a reader found corrupt state and gave up).
        28 => pub state: AtomicU32,
        /// Pid of the creating process, for humans only (pids are reused).
        32 => pub creator_pid: u32,
        /// 0 while the file is in use; set to 1 ([`REMOVED`]) by
        /// `Segment::remove` just before it unlinks the file, so that attached
        /// peers learn of the removal at their next slow path. Never cleared.
        36 => pub removed: AtomicU32,
        /// Creation time, `CLOCK_REALTIME` nanoseconds, for humans only.
        40 => pub created_realtime_ns: u64,
        /// Reserved, zero.
        48 => pub reserved1: [u8; 80],
    }
}

/// [`SegmentHeader::state`] value of a segment a reader declared corrupt.
pub const STATE_POISONED: u32 = 1;

/// [`SegmentHeader::removed`] value of a segment whose file was removed.
pub const REMOVED: u32 = 1;

/// Why the memory of a mapped segment can no longer be used, whatever its
/// bytes say. Rings return it as `Unusable(fault)` from their slow paths
/// (full, empty, waiting) once their segment reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentFault {
    /// The file was removed (through the API or unlinked by hand): nobody
    /// new can attach, so records written now would reach no one.
    Removed,
    /// The file was shortened under the mapping by some process; the lost
    /// pages now read as zeros.
    Truncated,
    /// A process declared the segment corrupt.
    Poisoned,
}

impl core::fmt::Display for SegmentFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SegmentFault::Removed => {
                "its segment file was removed (re-open the ring or topic by name to reach the live one)"
            }
            SegmentFault::Truncated => {
                "its segment file was truncated by another process (remove it and create it again)"
            }
            SegmentFault::Poisoned => {
                "its segment was marked poisoned after corruption was found (remove it and create it again)"
            }
        })
    }
}

shared_struct! {
    /// Control block of an SPSC ring: three cache lines after the segment header.
    ///
    /// ```text
    /// line 0 (offset   0): capacity u64 | max payload u32 | flags u32 |
    ///                      producer pid u32 | consumer pid u32 |
    ///                      wake seq u32 | sleepers u32 | reserved ...
    /// line 1 (offset 128): tail u64  -- producer position; only the producer writes
    /// line 2 (offset 256): head u64  -- consumer position; only the consumer writes
    /// line 3 (offset 384): producer counters ([`Counters`]); only the producer writes
    /// line 4 (offset 512): consumer counters ([`Counters`]); only the consumer writes
    /// ```
    ///
    /// `tail` and `head` are monotonic byte positions in `0 .. 2^64`; the index of
    /// a position in the data region is `position & (capacity - 1)`. At all times
    /// `head <= tail <= head + capacity` and both are multiples of 8. Each lives on
    /// its own 128-byte line so the two sides never write the same line.
    #[derive(Debug)]
    pub struct SpscControl {
        /// Bytes in the data region: a power of two, at least 64. Immutable.
        0 => pub capacity: u64,
        /// Largest payload a record may carry. Immutable.
        8 => pub max_payload: u32,
        /// Bit 0: the producer wakes a consumer sleeping on `wake_seq`
        /// ([`SPSC_FLAG_WAKEUPS`]). Immutable.
        12 => pub flags: u32,
        /// Pid of the attached producer or 0, for humans only.
        16 => pub producer_pid: AtomicU32,
        /// Pid of the attached consumer or 0, for humans only.
        20 => pub consumer_pid: AtomicU32,
        /// Futex word: bumped by the producer when the consumer sleeps.
        24 => pub wake_seq: AtomicU32,
        /// 1 while the consumer sleeps (or is about to) on `wake_seq`.
        28 => pub sleepers: AtomicU32,
        /// Pads line 0.
        32 => pub pad0: [u8; CACHE_LINE - 32],
        /// Producer position: end of the last published record.
        128 => pub tail: AtomicU64,
        /// Pads line 1.
        136 => pub pad1: [u8; CACHE_LINE - 8],
        /// Consumer position: end of the last released record.
        256 => pub head: AtomicU64,
        /// Pads line 2.
        264 => pub pad2: [u8; CACHE_LINE - 8],
        /// The producer's counters; only the attached producer writes them.
        384 => pub producer_counters: Counters,
        /// The consumer's counters; only the attached consumer writes them.
        512 => pub consumer_counters: Counters,
    }
}

/// [`SpscControl::flags`] bit: blocking consumers sleep on a futex and the
/// producer wakes them.
pub const SPSC_FLAG_WAKEUPS: u32 = 1;

/// Offset of the SPSC control block in its segment.
pub const SPSC_CONTROL_OFFSET: usize = CACHE_LINE;
/// Offset of the SPSC data region in its segment.
pub const SPSC_DATA_OFFSET: usize = SPSC_CONTROL_OFFSET + 5 * CACHE_LINE;

/// Header in front of every record in a ring's data region.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                   payload length in bytes                     |
/// +-------------------------------+-------------------------------+
/// |         record type           |            flags              |
/// +-------------------------------+-------------------------------+
/// |                   payload ... padded to 8 bytes               |
/// ```
///
/// The whole frame occupies [`frame_len`]`(length)` bytes, so every record
/// starts 8-byte aligned. A record never wraps: when it does not fit before
/// the end of the region, the producer writes a padding record
/// ([`FLAG_PADDING`]) that fills the region to its end, and the real record
/// starts at index 0.
///
/// The header word is the commit marker: the producer writes the payload,
/// zeroes the next header position ([`SENTINEL_LEN`]), then stores the
/// header (with [`FLAG_COMMITTED`]) with `Release`. A consumer polls only
/// the header at its own position, so a record costs it one cache miss;
/// the producer position in [`SpscControl::tail`] is informational.
pub const RECORD_HEADER_LEN: usize = 8;

/// Record flag: this frame is padding up to the end of the region; skip it.
pub const FLAG_PADDING: u16 = 1;
/// Record flag: set in every header the producer has committed. A header
/// word of 0 means "nothing here yet"; one without this bit is corruption.
pub const FLAG_COMMITTED: u16 = 0x8000;
/// Every flag bit this build understands; any other bit set is corruption.
pub const KNOWN_FLAGS: u16 = FLAG_PADDING | FLAG_COMMITTED;
/// Bytes after a record that the producer zeroes before committing it: the
/// next header position, so a consumer never mistakes an older lap's bytes
/// for a header.
pub const SENTINEL_LEN: u64 = 8;

/// Alignment of every record frame.
pub const RECORD_ALIGN: usize = 8;

/// Bytes a record with `payload_len` bytes of payload occupies in a ring.
#[inline(always)]
pub const fn frame_len(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len + (RECORD_ALIGN - 1)) & !(RECORD_ALIGN - 1)
}

/// Packs a record header as the little-endian word stored in the ring.
#[inline(always)]
pub const fn pack_record_header(len: u32, record_type: u16, flags: u16) -> u64 {
    (len as u64) | ((record_type as u64) << 32) | ((flags as u64) << 48)
}

/// Splits a record header word into (length, type, flags).
#[inline(always)]
pub const fn unpack_record_header(word: u64) -> (u32, u16, u16) {
    (word as u32, (word >> 32) as u16, (word >> 48) as u16)
}

// ---------------------------------------------------------------------------
// Broadcast log
// ---------------------------------------------------------------------------

shared_struct! {
    /// Control block of a broadcast log, right after the segment header (five
    /// cache lines, one per writer group).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  slots: record slots, a power of two (u64)           creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+   8
    /// |  slot stride: bytes per record slot                  creator  |
    /// +---------------------------------------------------------------+  12
    /// |  max payload                                         creator  |
    /// +---------------------------------------------------------------+  16
    /// |  policy: 0 Backpressure, 1 Overwrite                 creator  |
    /// +---------------------------------------------------------------+  20
    /// |  max subscribers: SubscriberSlots                    creator  |
    /// +---------------------------------------------------------------+  24
    /// |  max publishers: PublisherSlots                      creator  |
    /// +---------------------------------------------------------------+  28
    /// |  reserved (0)                                                 |
    /// +---------------------------------------------------------------+  32
    /// |  claim timeout ns (u64)                              creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  40
    /// |  pad (0) ... up to byte 128                                   |
    /// +===============================================================+ 128
    /// |  tail (u64): next sequence to claim               publishers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 136
    /// |  pad (0) ... up to byte 256                                   |
    /// +===============================================================+ 256
    /// |  gate (u64): bound on gating cursors              publishers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 264
    /// |  registrations (u64)                 registering subscribers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 272
    /// |  pad (0) ... up to byte 384                                   |
    /// +===============================================================+ 384
    /// |  wake seq: futex word                 publishers, reclaimers  |
    /// +---------------------------------------------------------------+ 388
    /// |  sleepers                               subscribers, reapers  |
    /// +---------------------------------------------------------------+ 392
    /// |  pad (0) ... up to byte 512                                   |
    /// +===============================================================+ 512
    /// |  reclaimed claims (u64)                           reclaimers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 520
    /// |  reaped subscribers (u64)             reapers, registrations  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 528
    /// |  reaped publishers (u64)              registering publishers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 536
    /// |  pad (0) ... up to byte 640                                   |
    /// +---------------------------------------------------------------+ 640
    /// ```
    ///
    /// Writers: the creator writes line 0 once, before the segment is
    /// published; publishers claim by `fetch_add` (or compare-and-swap) on
    /// `tail` and raise `gate`; reclaimers are waiters (subscribers or
    /// publishers) that reclaim a claim held past the claim timeout; reapers
    /// are processes that free the slots of dead subscribers. The segment
    /// goes on after the control block:
    ///
    /// ```text
    /// offset 640:  SubscriberSlot x max subscribers (128 bytes each)
    ///              PublisherSlot  x max publishers  (128 bytes each)
    ///              record slots   x slots           (stride bytes each)
    /// ```
    ///
    /// Positions are record sequence numbers: record `s` lives in record slot
    /// `s & (slots - 1)`. `tail` is in `0 .. 2^62` and only grows.
    #[derive(Debug)]
    pub struct BroadcastControl {
        /// Number of record slots: a power of two. Immutable.
        0 => pub slots: u64,
        /// Bytes per record slot (16-byte header + payload, rounded to 64). Immutable.
        8 => pub slot_stride: u32,
        /// Largest payload of one record. Immutable.
        12 => pub max_payload: u32,
        /// 0 `Backpressure`, 1 `Overwrite`. Immutable.
        16 => pub policy: u32,
        /// Number of [`SubscriberSlot`]s. Immutable.
        20 => pub max_subscribers: u32,
        /// Number of [`PublisherSlot`]s. Immutable.
        24 => pub max_publishers: u32,
        /// Reserved, zero.
        28 => pub reserved0: u32,
        /// A claim not committed after this long may be reclaimed as a skip
        /// record by a waiting reader or producer. Immutable.
        32 => pub reclaim_after_ns: u64,
        /// Pads line 0.
        40 => pub pad0: [u8; CACHE_LINE - 40],
        /// Next sequence number to claim. Producers `fetch_add`; everyone reads.
        128 => pub tail: AtomicU64,
        /// Pads line 1.
        136 => pub pad1: [u8; CACHE_LINE - 8],
        /// Lower bound of every gating cursor, as last computed by a producer
        /// (`Backpressure` only). Only grows.
        256 => pub gate: AtomicU64,
        /// Bumped by every subscriber registration: a producer whose gate scan
        /// overlapped one rescans before trusting the result.
        264 => pub registrations: AtomicU64,
        /// Pads line 2.
        272 => pub pad2: [u8; CACHE_LINE - 16],
        /// Futex word: bumped by a producer that finds sleepers.
        384 => pub wake_seq: AtomicU32,
        /// Number of subscribers asleep (or about to sleep) on `wake_seq`.
        388 => pub sleepers: AtomicU32,
        /// Pads line 3.
        392 => pub pad3: [u8; CACHE_LINE - 8],
        /// Claims reclaimed after `reclaim_after_ns` (their producer died or stalled).
        512 => pub reclaimed_claims: AtomicU64,
        /// Subscriber slots freed or detached after their owner died.
        520 => pub reaped_subscribers: AtomicU64,
        /// Publisher slots freed after their owner died.
        528 => pub reaped_publishers: AtomicU64,
        /// Pads line 4.
        536 => pub pad4: [u8; CACHE_LINE - 24],
    }
}

/// Participant slot states (in [`SubscriberSlot::state`] and
/// [`PublisherSlot::state`]).
///
/// The state word holds the state in its low 8 bits and a generation in its
/// high 24: every registration bumps the generation, so a reaper that read
/// the word of a dead participant and then compares-and-swaps it to `FREE`
/// fails if a new participant registered in between (the ABA a bare state
/// would allow). The generation wraps after 2^24 registrations of one slot.
pub mod participant {
    /// Unused.
    pub const FREE: u32 = 0;
    /// Being registered by a process holding its lock.
    pub const CLAIMING: u32 = 1;
    /// In use by a process holding its lock.
    pub const LIVE: u32 = 2;
    /// A durable subscriber whose process left or died: keeps its cursor
    /// (and keeps gating producers) until it returns or is removed.
    pub const DETACHED: u32 = 3;

    /// The state in a state word.
    #[inline(always)]
    pub const fn state(word: u32) -> u32 {
        word & 0xff
    }

    /// The generation in a state word.
    #[inline(always)]
    pub const fn generation(word: u32) -> u32 {
        word >> 8
    }

    /// The word of `state` at the same generation as `word`.
    #[inline(always)]
    pub const fn with_state(word: u32, state: u32) -> u32 {
        (word & !0xff) | (state & 0xff)
    }

    /// The word a registration stores: the next generation, in `state`.
    #[inline(always)]
    pub const fn next_generation(word: u32, state: u32) -> u32 {
        (word >> 8).wrapping_add(1) << 8 | (state & 0xff)
    }

    /// Whether `state` is one this build knows.
    #[inline(always)]
    pub const fn is_known(state: u32) -> bool {
        state <= DETACHED
    }
}

shared_struct! {
    /// A participant's counters (one cache line), for `ring-dump` and
    /// monitoring: written only by the participant that owns them, with
    /// Relaxed stores of its running totals, so they cost it no contention.
    /// Each is reset to 0 when a participant takes the slot; a field that
    /// does not apply to the participant's role stays 0.
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  records (u64): published / read / taken                      |
    /// +---------------------------------------------------------------+   8
    /// |  bytes (u64): payload bytes of those records                  |
    /// +---------------------------------------------------------------+  16
    /// |  full (u64): claims that found the ring full (writers)        |
    /// +---------------------------------------------------------------+  24
    /// |  full_ns (u64): ns spent waiting for space (writers)          |
    /// +---------------------------------------------------------------+  32
    /// |  sleeps (u64): futex sleeps (readers)                         |
    /// +---------------------------------------------------------------+  40
    /// |  wakes (u64): wake-ups sent (writers) or received (readers)   |
    /// +---------------------------------------------------------------+  48
    /// |  lapped (u64): times overtaken by a writer (readers)          |
    /// +---------------------------------------------------------------+  56
    /// |  missed (u64): records lost to laps, reclaims, skips (readers)|
    /// +---------------------------------------------------------------+  64
    /// |  reclaims (u64): stalled claims of others it reclaimed        |
    /// +---------------------------------------------------------------+  72
    /// |  lost_claims (u64): own claims a waiter reclaimed (writers)   |
    /// +---------------------------------------------------------------+  80
    /// |  skips (u64): records passed over (readers)                   |
    /// +---------------------------------------------------------------+  88
    /// |  redelivered (u64): redelivered records taken (queue readers) |
    /// +---------------------------------------------------------------+  96
    /// |  acked (u64): records acknowledged (queue readers)            |
    /// +---------------------------------------------------------------+ 104
    /// |  last_active_ns (u64): CLOCK_MONOTONIC ns, see below          |
    /// +---------------------------------------------------------------+ 112
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// ```
    ///
    /// `last_active_ns` is stored every [`ACTIVITY_EVERY`] records and
    /// whenever the owner starts to wait, from `CLOCK_MONOTONIC_COARSE`
    /// (`CLOCK_MONOTONIC` as of the last timer tick), so it is a lower bound
    /// of the last activity, close to it (reading the clock on every record
    /// would cost more than all the counters together).
    #[derive(Debug)]
    pub struct Counters {
        /// Records published (writers) or read / taken (readers).
        0 => pub records: StatCounter,
        /// Payload bytes of those records.
        8 => pub bytes: StatCounter,
        /// Claims that found the ring full (back-pressure).
        16 => pub full: StatCounter,
        /// Nanoseconds blocking claims waited for space.
        24 => pub full_ns: StatCounter,
        /// Sleeps on the ring's futex.
        32 => pub sleeps: StatCounter,
        /// Futex wake-ups sent (writers) or sleeps ended by one (readers).
        40 => pub wakes: StatCounter,
        /// Times a writer overtook this reader (`Overwrite` topics).
        48 => pub lapped: StatCounter,
        /// Records this reader lost: lapped, reclaimed from a stalled
        /// writer, or skipped.
        56 => pub missed: StatCounter,
        /// Stalled claims of other participants this one reclaimed.
        64 => pub reclaims: StatCounter,
        /// This writer's claims that a waiter reclaimed after the claim
        /// timeout (records it did not get to publish).
        72 => pub lost_claims: StatCounter,
        /// Records this reader passed over (`skip`, or skipped as suspect).
        80 => pub skips: StatCounter,
        /// Redelivered records among those this queue consumer took.
        88 => pub redelivered: StatCounter,
        /// Records this queue consumer acknowledged (or gave back).
        96 => pub acked: StatCounter,
        /// `CLOCK_MONOTONIC` ns of the owner's last activity (a lower bound).
        104 => pub last_active_ns: StatCounter,
        /// Pads the line.
        112 => pub pad: [u8; CACHE_LINE - 112],
    }
}

/// Bytes of one participant slot (publisher, subscriber, producer,
/// consumer): its state line, then its [`Counters`] line.
pub const PARTICIPANT_SLOT_LEN: usize = 2 * CACHE_LINE;

/// How many records a participant handles between two stores of
/// [`Counters::last_active_ns`] (besides the store whenever it starts to
/// wait). Each store reads the coarse clock (about 6 ns here); 256 instead
/// of 64 measured the same within the noise, and would leave a participant
/// that never waits four times as stale.
pub const ACTIVITY_EVERY: u64 = 64;

shared_struct! {
    /// One subscriber's slot in a broadcast log (two cache lines: its
    /// state, then its [`Counters`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  state word: generation << 8 | state          owner, reapers  |
    /// +---------------------------------------------------------------+   4
    /// |  pid (informational)                                   owner  |
    /// +---------------------------------------------------------------+   8
    /// |  cursor (u64): next sequence to read                   owner  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  16
    /// |  heartbeat, CLOCK_MONOTONIC ns (u64)                   owner  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  24
    /// |  durable name length (0: anonymous)                    owner  |
    /// +---------------------------------------------------------------+  28
    /// |  sleeping: 1 while counted in sleepers        owner, reapers  |
    /// +---------------------------------------------------------------+  32
    /// |  durable name, 64 bytes as 8 words (u64 x 8)           owner  |
    /// +---------------------------------------------------------------+  96
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// |  counters: [`Counters`], one line                      owner  |
    /// +---------------------------------------------------------------+ 256
    /// ```
    ///
    /// The owner is the process holding the slot's liveness lock
    /// ([`lock_slot::subscriber`]), from its registration on. Only it writes
    /// `cursor`, `heartbeat_ns`, the name and the counters; anyone may reap
    /// a slot whose lock is free, by a compare-and-swap of the state word
    /// that a registration in between (which bumps the generation) makes
    /// fail, and then take it out of the sleeper count through `sleeping`.
    #[derive(Debug)]
    pub struct SubscriberSlot {
        /// [`participant`] state word (state and generation).
        0 => pub state: AtomicU32,
        /// Owner's pid, for humans only.
        4 => pub pid: AtomicU32,
        /// Next sequence this subscriber will read; everything before it is done.
        8 => pub cursor: AtomicU64,
        /// Last sign of life, `CLOCK_MONOTONIC` ns, for humans only.
        16 => pub heartbeat_ns: AtomicU64,
        /// Length of the durable name; 0 for an anonymous subscriber.
        24 => pub name_len: AtomicU32,
        /// 1 while this subscriber is counted in `sleepers`; whoever swaps it
        /// back to 0 (the subscriber, or a reaper after its death) decrements.
        28 => pub sleeping: AtomicU32,
        /// Durable name, [`NAME_LEN`] bytes as [`SUBSCRIBER_NAME_WORDS`] words
        /// ([`name_word`] with width [`SUBSCRIBER_NAME_WIDTH`]).
        32 => pub name: [AtomicU64; SUBSCRIBER_NAME_WORDS],
        /// Pads the line.
        96 => pub pad: [u8; CACHE_LINE - 96],
        /// What this subscriber did: records and bytes read, sleeps, laps,
        /// missed, reclaims, skips.
        128 => pub counters: Counters,
    }
}

shared_struct! {
    /// One publisher's slot in a broadcast log (two cache lines: its
    /// state, then its [`Counters`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  state word: generation << 8 | state                   owner  |
    /// +---------------------------------------------------------------+   4
    /// |  pid (informational)                                   owner  |
    /// +---------------------------------------------------------------+   8
    /// |  claimed (u64): claim in progress + 1, or 0            owner  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  16
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// |  counters: [`Counters`], one line                      owner  |
    /// +---------------------------------------------------------------+ 256
    /// ```
    ///
    /// Only the owner, the process holding the slot's liveness lock
    /// ([`lock_slot::publisher`]), writes it; a process that takes the lock
    /// of a dead owner takes the slot over.
    #[derive(Debug)]
    pub struct PublisherSlot {
        /// [`participant`] state word (state and generation).
        0 => pub state: AtomicU32,
        /// Owner's pid, for humans only.
        4 => pub pid: AtomicU32,
        /// The claim in progress, as sequence + 1; 0 when none. Written by the
        /// owner before it looks at the claimed slot and cleared after its last
        /// write to it, so a publisher about to reuse a slot whose previous
        /// record was reclaimed can tell whether that record's claimer may
        /// still be writing there. On a `Backpressure` topic for several
        /// publishers it is written before the compare-and-swap of the tail
        /// that makes the claim, so for a moment it may name a sequence
        /// another publisher took (taken as "may be inside": at worst a
        /// skip).
        8 => pub claimed: AtomicU64,
        /// Pads the line.
        16 => pub pad: [u8; CACHE_LINE - 16],
        /// What this publisher did: records and bytes published, full
        /// claims and the time waited, wake-ups sent, reclaims, lost claims.
        128 => pub counters: Counters,
    }
}

/// Header at the start of every record slot.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |     stamp (u64): 4(s+1) + state of record s, 0 never used     |
/// +     state: 0 committed, 1 being written, 2 reclaimed,         +
/// |            3 skipped                                          |
/// +---------------------------------------------------------------+
/// |                   payload length in bytes                     |
/// +-------------------------------+-------------------------------+
/// |         record type           |            flags              |
/// +-------------------------------+-------------------------------+
/// |                   payload ... (up to max payload)             |
/// ```
///
/// The stamp is written last with `Release` when a record is committed, so
/// a record being written is visibly incomplete; it doubles as a seqlock, so
/// a reader in an `Overwrite` log detects a record overwritten under it.
///
/// The stamp of slot `s & (slots - 1)` moves through, for each lap `s`:
///
/// ```text
///   done(s - slots) --claim (Overwrite)--> writing(s) --commit--> committed(s)
///          |                                   |  \--abort---> skipped(s)
///          |--claim (Backpressure), commit ----|---------------> committed(s)
///          |                                   \--reclaim-----> reclaimed(s)
///          \------------reclaim (claimed, never entered)------> reclaimed(s)
/// ```
///
/// where "done" is committed, reclaimed or skipped. Every transition is a
/// compare-and-swap from the value the actor saw, so a late commit of a
/// reclaimed claim fails instead of overwriting anything. Readers deliver
/// `committed`, pass over `skipped` (no record: an aborted claim, or a
/// sequence a publisher gave up) and pass over `reclaimed` counting one
/// record missed (a publisher stalled or died holding it).
pub const SLOT_HEADER_LEN: usize = 16;

shared_struct! {
    /// The header of a record slot as a structure (see [`SLOT_HEADER_LEN`]).
    #[derive(Debug)]
    pub struct RecordSlotHeader {
        /// Seqlock stamp: [`stamp`] of the record's sequence and state, 0 if
        /// the slot was never used.
        0 => pub stamp: AtomicU64,
        /// Payload length (low 32 bits), record type (next 16), flags (top 16),
        /// as packed by [`pack_record_header`].
        8 => pub word: AtomicU64,
    }
}

/// Stamp state: the record is committed and readable.
pub const STAMP_COMMITTED: u64 = 0;
/// Stamp state: an `Overwrite` publisher is writing the record.
pub const STAMP_WRITING: u64 = 1;
/// Stamp state: a waiter reclaimed the claim after the claim timeout; the
/// record is lost (counted) and its claimer's commit fails.
pub const STAMP_RECLAIMED: u64 = 2;
/// Stamp state: no record (an aborted claim, or a sequence given up).
pub const STAMP_SKIPPED: u64 = 3;

/// Largest record sequence a stamp can name. Positions read from shared
/// memory above it are corrupt.
pub const MAX_SEQUENCE: u64 = (1 << 62) - 2;

/// Stamp of record `seq` in `state` (one of the `STAMP_*` states).
/// `seq` is at most [`MAX_SEQUENCE`]; larger values wrap (never panic).
#[inline(always)]
pub const fn stamp(seq: u64, state: u64) -> u64 {
    (seq.wrapping_add(1) << 2) | (state & 3)
}

/// Splits a stamp into (sequence + 1, state); `(0, _)` is a slot never used.
#[inline(always)]
pub const fn split_stamp(stamp: u64) -> (u64, u64) {
    (stamp >> 2, stamp & 3)
}

/// Stamp of committed record `seq`.
#[inline(always)]
pub const fn stamp_committed(seq: u64) -> u64 {
    stamp(seq, STAMP_COMMITTED)
}

/// Offset of the broadcast control block in its segment.
pub const BROADCAST_CONTROL_OFFSET: usize = CACHE_LINE;
/// Offset of the first subscriber slot in a broadcast segment.
pub const BROADCAST_SUBSCRIBERS_OFFSET: usize = SLOT_READERS_OFFSET;

/// Most [`SubscriberSlot`]s a broadcast log may have (keeps
/// [`lock_slot::subscriber`] in range).
pub const MAX_SUBSCRIBERS: u32 = 4096;
/// Most [`PublisherSlot`]s a broadcast log may have (keeps
/// [`lock_slot::publisher`] in range).
pub const MAX_PUBLISHERS: u32 = 1024;

/// Words of a [`SubscriberSlot`]'s `name`.
pub const SUBSCRIBER_NAME_WORDS: usize = 8;
/// Name bytes in each word of a [`SubscriberSlot`]'s `name`.
pub const SUBSCRIBER_NAME_WIDTH: usize = NAME_LEN / SUBSCRIBER_NAME_WORDS;

// ---------------------------------------------------------------------------
// Work queue
// ---------------------------------------------------------------------------

shared_struct! {
    /// Control block of a work queue (five cache lines), right after the
    /// segment header.
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  slots (u64): record slots, a power of two             creator |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+   8
    /// |  slot stride                                          creator |
    /// +---------------------------------------------------------------+  12
    /// |  max payload                                          creator |
    /// +---------------------------------------------------------------+  16
    /// |  max producers                                        creator |
    /// +---------------------------------------------------------------+  20
    /// |  max consumers                                        creator |
    /// +---------------------------------------------------------------+  24
    /// |  reclaim after (u64, ns)                              creator |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  32
    /// |  pad (0) ... up to byte 128                                   |
    /// +===============================================================+ 128
    /// |  tail (u64): next sequence to claim                 producers |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 136
    /// |  pad (0) ... up to byte 256                                   |
    /// +===============================================================+ 256
    /// |  head (u64): next sequence to take                  consumers |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+ 264
    /// |  pad (0) ... up to byte 384                                   |
    /// +===============================================================+ 384
    /// |  wake seq: futex word                              producers  |
    /// +---------------------------------------------------------------+ 388
    /// |  sleepers                                          consumers  |
    /// +---------------------------------------------------------------+ 392
    /// |  pad (0) ... up to byte 512                                   |
    /// +===============================================================+ 512
    /// |  redelivery hint (u64)                       reapers, consumers|
    /// +---------------------------------------------------------------+ 520
    /// |  redelivered (u64)                                    reapers |
    /// +---------------------------------------------------------------+ 528
    /// |  reclaimed claims (u64)                            reclaimers |
    /// +---------------------------------------------------------------+ 536
    /// |  reaped consumers (u64)                               reapers |
    /// +---------------------------------------------------------------+ 544
    /// |  reaped producers (u64)                registering producers  |
    /// +---------------------------------------------------------------+ 552
    /// |  pad (0) ... up to byte 640                                   |
    /// +---------------------------------------------------------------+ 640
    /// ```
    ///
    /// The segment goes on as every slot ring does (see [`SlotGeometry`]):
    /// [`QueueConsumerSlot`] x max consumers, [`QueueProducerSlot`] x max
    /// producers, then the record slots, each a [`RecordSlotHeader`] whose
    /// stamp is a [`queue_stamp`], and the payload.
    #[derive(Debug)]
    pub struct QueueControl {
        /// Number of record slots: a power of two. Immutable.
        0 => pub slots: u64,
        /// Bytes per record slot (16-byte header + payload, rounded to 64). Immutable.
        8 => pub slot_stride: u32,
        /// Largest payload of one record. Immutable.
        12 => pub max_payload: u32,
        /// Number of [`QueueProducerSlot`]s. Immutable.
        16 => pub max_producers: u32,
        /// Number of [`QueueConsumerSlot`]s. Immutable.
        20 => pub max_consumers: u32,
        /// A claim not committed after this long may be reclaimed as a skip
        /// by a waiting consumer. Immutable.
        24 => pub reclaim_after_ns: u64,
        /// Pads line 0.
        32 => pub pad0: [u8; CACHE_LINE - 32],
        /// Next sequence number to claim; producers advance it by
        /// compare-and-swap.
        128 => pub tail: AtomicU64,
        /// Pads line 1.
        136 => pub pad1: [u8; CACHE_LINE - 8],
        /// Next sequence number to take (a hint that only grows: consumers
        /// take by compare-and-swap on the record's stamp, then move it).
        256 => pub head: AtomicU64,
        /// Pads line 2.
        264 => pub pad2: [u8; CACHE_LINE - 8],
        /// Futex word: bumped by a producer that finds sleepers.
        384 => pub wake_seq: AtomicU32,
        /// Number of consumers asleep (or about to sleep) on `wake_seq`.
        388 => pub sleepers: AtomicU32,
        /// Pads line 3.
        392 => pub pad3: [u8; CACHE_LINE - 8],
        /// Non-zero when records may wait for redelivery behind `head`:
        /// bumped by a reaper after it gives a dead consumer's records back,
        /// reset by a consumer whose look behind `head` found none.
        512 => pub redelivery_hint: AtomicU64,
        /// Records given back after their consumer died holding them.
        520 => pub redelivered: AtomicU64,
        /// Claims reclaimed after `reclaim_after_ns` (their producer died or
        /// stalled): each one a counted skip.
        528 => pub reclaimed_claims: AtomicU64,
        /// Consumer slots freed after their owner died.
        536 => pub reaped_consumers: AtomicU64,
        /// Producer slots taken over after their owner died.
        544 => pub reaped_producers: AtomicU64,
        /// Pads line 4.
        552 => pub pad4: [u8; CACHE_LINE - 40],
    }
}

shared_struct! {
    /// One producer's slot in a work queue (two cache lines: its state,
    /// then its [`Counters`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  state word: generation << 8 | state                   owner  |
    /// +---------------------------------------------------------------+   4
    /// |  pid (informational)                                   owner  |
    /// +---------------------------------------------------------------+   8
    /// |  claimed (u64): claim in progress + 1, or 0            owner  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  16
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// |  counters: [`Counters`], one line                      owner  |
    /// +---------------------------------------------------------------+ 256
    /// ```
    ///
    /// Only the owner, the process holding the slot's liveness lock
    /// ([`lock_slot::queue_producer`]), writes it.
    #[derive(Debug)]
    pub struct QueueProducerSlot {
        /// [`participant`] state word (state and generation).
        0 => pub state: AtomicU32,
        /// Owner's pid, for humans only.
        4 => pub pid: AtomicU32,
        /// The claim in progress, as sequence + 1; 0 when none. Written
        /// before the producer marks the record slot "writing" and cleared
        /// after its last write to it, so a producer about to reuse a slot
        /// whose previous claim was reclaimed can tell whether that claimer
        /// may still be writing there.
        8 => pub claimed: AtomicU64,
        /// Pads the line.
        16 => pub pad: [u8; CACHE_LINE - 16],
        /// What this producer did: records and bytes committed, full claims
        /// and the time waited, wake-ups sent, reclaims, lost claims.
        128 => pub counters: Counters,
    }
}

shared_struct! {
    /// One consumer's slot in a work queue (two cache lines: its state,
    /// then its [`Counters`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  state word: generation << 8 | state          owner, reapers  |
    /// +---------------------------------------------------------------+   4
    /// |  pid (informational)                                   owner  |
    /// +---------------------------------------------------------------+   8
    /// |  sleeping: 1 while counted in sleepers        owner, reapers  |
    /// +---------------------------------------------------------------+  12
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// |  counters: [`Counters`], one line                      owner  |
    /// +---------------------------------------------------------------+ 256
    /// ```
    ///
    /// Its index is the owner number in the stamps of the records it holds
    /// ([`queue_stamp::TAKEN`]). The process holding the slot's liveness
    /// lock ([`lock_slot::queue_consumer`]) owns it; a process that gets the
    /// lock of a slot still marked live gives the dead owner's records back
    /// before the slot is used again.
    #[derive(Debug)]
    pub struct QueueConsumerSlot {
        /// [`participant`] state word (state and generation).
        0 => pub state: AtomicU32,
        /// Owner's pid, for humans only.
        4 => pub pid: AtomicU32,
        /// 1 while the owner is counted in the queue's sleepers.
        8 => pub sleeping: AtomicU32,
        /// Pads the line.
        12 => pub pad: [u8; CACHE_LINE - 12],
        /// What this consumer did: records and bytes taken, acknowledged,
        /// redelivered, sleeps, reclaims, skips.
        128 => pub counters: Counters,
    }
}

/// The stamp of a work queue's record slot: what state the record of one
/// lap is in, and who holds it.
///
/// ```text
///  63                                     16 15          8 7   4 3  2   0
/// +-----------------------------------------+-------------+-----+--+-----+
/// |  lap (48 bits): sequence / slots        |    owner    | S R |  |state|
/// +-----------------------------------------+-------------+-----+--+-----+
///   R (bit 3): redelivered        S (bit 4): suspect
/// ```
///
/// Record `s` lives in slot `s & (slots - 1)` at lap `s / slots` (modulo
/// 2^48). A slot moves through, for each lap `L`:
///
/// ```text
///  free(L) --claim--> writing(L, producer) --commit--> committed(L)
///    |                      |                             |
///    |                      \--abort / reclaim--> skipped(L)     <-- reclaim of free(L)
///    |                                              |   (S after a reclaim)
///    |           committed(L) --take--> taken(L, consumer) --ack--> free(L+1)
///    |                                     |
///    |                                     \--its consumer died--> committed(L) + R
///    \                                          skipped(L) --passed--> free(L+1) (S kept)
/// ```
///
/// Every transition is a compare-and-swap from the value the actor saw. A
/// `suspect` free slot follows a reclaimed claim whose producer may still
/// be writing into it (it stalled, and may resume): the next producer of
/// that slot checks the producers' `claimed` words before it writes.
pub mod queue_stamp {
    /// No record yet at this lap: a producer may claim it.
    pub const FREE: u64 = 0;
    /// A producer is writing the record (owner: its producer slot).
    pub const WRITING: u64 = 1;
    /// The record is committed and may be taken.
    pub const COMMITTED: u64 = 2;
    /// A consumer holds the record (owner: its consumer slot).
    pub const TAKEN: u64 = 3;
    /// No record: an aborted or reclaimed claim, or a sequence given up.
    pub const SKIPPED: u64 = 4;
    /// Mask of the state bits.
    pub const STATE_MASK: u64 = 7;
    /// Flag: the record was given back after its consumer died.
    pub const REDELIVERED: u64 = 1 << 3;
    /// Flag: the claimer of an earlier lap may still be writing here.
    pub const SUSPECT: u64 = 1 << 4;
    /// Bits of the lap.
    pub const LAP_BITS: u32 = 48;
    /// Mask of a lap.
    pub const LAP_MASK: u64 = (1 << LAP_BITS) - 1;
    /// Largest owner number (a producer or consumer slot index).
    pub const MAX_OWNER: u32 = 255;

    /// The stamp of `state` (with `flags`) at `lap`, held by `owner`.
    #[inline(always)]
    pub const fn pack(lap: u64, owner: u32, state: u64, flags: u64) -> u64 {
        ((lap & LAP_MASK) << 16)
            | ((owner as u64 & 0xff) << 8)
            | (flags & (REDELIVERED | SUSPECT))
            | (state & STATE_MASK)
    }

    /// The lap of a stamp.
    #[inline(always)]
    pub const fn lap(stamp: u64) -> u64 {
        stamp >> 16
    }

    /// The owner of a stamp.
    #[inline(always)]
    pub const fn owner(stamp: u64) -> u32 {
        ((stamp >> 8) & 0xff) as u32
    }

    /// The state of a stamp (one of the constants above, or garbage).
    #[inline(always)]
    pub const fn state(stamp: u64) -> u64 {
        stamp & STATE_MASK
    }

    /// The flags of a stamp.
    #[inline(always)]
    pub const fn flags(stamp: u64) -> u64 {
        stamp & (REDELIVERED | SUSPECT)
    }

    /// Whether no build writes this stamp (unknown state or bits).
    #[inline(always)]
    pub const fn is_garbage(stamp: u64) -> bool {
        state(stamp) > SKIPPED || stamp & (1 << 5 | 1 << 6 | 1 << 7) != 0
    }

    /// How many laps `stamp_lap` is ahead of `lap`, modulo 2^48, as a
    /// signed number: 0 the same lap, 1 the next, -1 the previous.
    #[inline(always)]
    pub const fn laps_ahead(stamp_lap: u64, lap: u64) -> i64 {
        let d = stamp_lap.wrapping_sub(lap) & LAP_MASK;
        if d >= 1 << (LAP_BITS - 1) {
            d as i64 - (1 << LAP_BITS)
        } else {
            d as i64
        }
    }
}

/// Offset of the work queue control block in its segment.
pub const QUEUE_CONTROL_OFFSET: usize = CACHE_LINE;
/// Most producers of one work queue (owner numbers fit a stamp).
pub const MAX_QUEUE_PRODUCERS: u32 = 64;
/// Most consumers of one work queue (owner numbers fit a stamp).
pub const MAX_QUEUE_CONSUMERS: u32 = 64;

/// Offset of the first reader slot (subscriber, consumer) in a slot ring
/// segment: after the segment header and a control block of five lines.
pub const SLOT_READERS_OFFSET: usize = CACHE_LINE + 5 * CACHE_LINE;

/// Where the parts of a slot ring's segment lie (a broadcast log or a work
/// queue): the one computation of its geometry, used by the ring's creator,
/// by the handles that map it and by the inspector.
///
/// ```text
/// 0                      segment header
/// CACHE_LINE             control block (five lines)
/// SLOT_READERS_OFFSET    reader slot x readers (subscribers or consumers, PARTICIPANT_SLOT_LEN each)
/// writers_offset()       writer slot x writers (publishers or producers, PARTICIPANT_SLOT_LEN each)
/// records_offset()       record slot x slots (stride bytes each:
///                        RecordSlotHeader, then the payload)
/// size()                 end of the segment
/// ```
///
/// Built from a configuration that passed validation (slots a power of
/// two, counts within their maxima), so no offset overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotGeometry {
    /// Reader slots: subscribers of a log, consumers of a queue.
    pub readers: usize,
    /// Writer slots: publishers of a log, producers of a queue.
    pub writers: usize,
    /// Record slots, a power of two.
    pub slots: usize,
    /// Bytes per record slot, a multiple of 64.
    pub stride: usize,
}

impl SlotGeometry {
    /// Offset of reader slot `i` (`i < readers`).
    #[inline]
    pub const fn reader_offset(&self, i: usize) -> usize {
        debug_assert!(i < self.readers);
        SLOT_READERS_OFFSET + i * PARTICIPANT_SLOT_LEN
    }

    /// Offset of the first writer slot.
    #[inline]
    pub const fn writers_offset(&self) -> usize {
        SLOT_READERS_OFFSET + self.readers * PARTICIPANT_SLOT_LEN
    }

    /// Offset of writer slot `j` (`j < writers`).
    #[inline]
    pub const fn writer_offset(&self, j: usize) -> usize {
        debug_assert!(j < self.writers);
        self.writers_offset() + j * PARTICIPANT_SLOT_LEN
    }

    /// Offset of the first record slot.
    #[inline]
    pub const fn records_offset(&self) -> usize {
        self.writers_offset() + self.writers * PARTICIPANT_SLOT_LEN
    }

    /// Offset of the record slot (its [`RecordSlotHeader`]) that holds
    /// sequence `seq`.
    #[inline]
    pub const fn slot_offset(&self, seq: u64) -> usize {
        debug_assert!(self.slots.is_power_of_two());
        self.records_offset() + (seq & (self.slots as u64 - 1)) as usize * self.stride
    }

    /// Offset of the payload of the record slot that holds `seq`.
    #[inline]
    pub const fn payload_offset(&self, seq: u64) -> usize {
        self.slot_offset(seq) + SLOT_HEADER_LEN
    }

    /// Size of the whole segment, header included.
    #[inline]
    pub const fn size(&self) -> usize {
        self.records_offset() + self.slots * self.stride
    }
}

/// Bytes per record slot of a slot ring whose largest payload is
/// `max_payload`: header plus payload, rounded up to 64.
#[inline]
pub const fn slot_stride(max_payload: u32) -> usize {
    (SLOT_HEADER_LEN + max_payload as usize).div_ceil(64) * 64
}

// ---------------------------------------------------------------------------
// Topic directory
// ---------------------------------------------------------------------------

shared_struct! {
    /// Control block of a namespace's directory of topics and channels.
    ///
    /// ```text
    /// offset 0 (after the segment header): entries u32 | reserved ... (one line)
    /// offset 128: TopicEntry x entries (256 bytes each)
    /// ```
    #[derive(Debug)]
    pub struct DirectoryControl {
        /// Number of [`TopicEntry`]s. Immutable.
        0 => pub entries: u32,
        /// Reserved, zero.
        4 => pub reserved: [u8; CACHE_LINE - 4],
    }
}

/// Directory entry states (low 32 bits of [`TopicEntry::state`]).
///
/// ```text
/// FREE(e) --claim--> CREATING(e') --publish--> READY(e')              (e' > e)
///                        |                       |
///                        |                     remove
///                        |                       v
///                        |   REMOVED(e') --claim--> RECREATING(e'') --publish--> READY(e'')
///                        |        ^                      |
///                        |        +----------------------+ creator died, or stalled past the wait
///                        +--creator died, or stalled past the wait--> FREE(e')
/// ```
///
/// An entry that has been `READY` never becomes `FREE` again: a removed
/// ring leaves its entry `REMOVED`, holding its name, so probe chains keep
/// no holes and a name stays in one entry for good. Only a creator of that
/// same name claims a `REMOVED` entry, at a newer epoch, so the new ring
/// gets a new file; it keeps the name words as they are (`name_len` and
/// `name` carry the epoch of the first creation) and rewrites every other
/// word. Any other state value is corruption.
pub mod entry {
    /// Unused (or given back by a creator that failed, died or stalled).
    pub const FREE: u32 = 0;
    /// A process holding the liveness lock of (entry, epoch) is creating
    /// a ring in an entry that held none.
    pub const CREATING: u32 = 1;
    /// Ready: name, kind, config and ring file are valid.
    pub const READY: u32 = 2;
    /// The ring was removed; the name words still hold its name, and the
    /// other words are meaningless.
    pub const REMOVED: u32 = 3;
    /// A process holding the liveness lock of (entry, epoch) is creating
    /// a ring again in a removed entry, under the name the entry holds.
    pub const RECREATING: u32 = 4;
}

shared_struct! {
    /// One ring in the directory (two cache lines): a broadcast topic or an
    /// SPSC channel, by its `kind`.
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  state (u64): epoch << 32 | entry state    creators, openers  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+   8
    /// |  name length (tagged u64)                            creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  16
    /// |  kind (tagged u64)                                   creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  24
    /// |  policy (tagged u64)                                 creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  32
    /// |  max payload (tagged u64)                            creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  40
    /// |  slots (tagged u64)                                  creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  48
    /// |  max subscribers (tagged u64)                        creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  56
    /// |  max publishers (tagged u64)                         creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  64
    /// |  creator pid (tagged u64)                            creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  72
    /// |  claim timeout ns, low 32 bits (tagged u64)          creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  80
    /// |  claim timeout ns, high 32 bits (tagged u64)         creator  |
    /// +                                                               +
    /// |                                                               |
    /// +---------------------------------------------------------------+  88
    /// |  name, 64 bytes as 16 tagged words (u64 x 16)        creator  |
    /// +---------------------------------------------------------------+ 216
    /// |  pad (0) ... up to byte 256                                   |
    /// +---------------------------------------------------------------+ 256
    /// ```
    ///
    /// Every word is a `u64`. Tagged words hold the epoch of the creation
    /// that wrote them in the high 32 bits and the value in the low 32; the
    /// name is packed four bytes per word ([`name_word`] with width
    /// [`TOPIC_NAME_WIDTH`]).
    ///
    /// The seven configuration words (offsets 24 to 80) mean what the
    /// entry's `kind` says; a word a kind does not use is 0:
    ///
    /// ```text
    /// word                 TOPIC_KIND_BROADCAST        TOPIC_KIND_SPSC                         TOPIC_KIND_QUEUE
    /// policy               Policy::to_raw              flags (SPSC_FLAG_WAKEUPS)               0
    /// max_payload          max payload                 max payload, or ENTRY_LARGEST_PAYLOAD   max payload
    /// slots                record slots                log2 of the capacity in bytes           record slots
    /// max_subscribers      subscriber slots            0                                       consumer slots
    /// max_publishers       publisher slots             0                                       producer slots
    /// reclaim_after_ns_lo  reclaim_after ns, low 32    0                                       reclaim_after ns, low 32
    /// reclaim_after_ns_hi  reclaim_after ns, high 32   0                                       reclaim_after ns, high 32
    /// ```
    ///
    /// What a word means for a kind is part of the layout:
    /// [`DIRECTORY_ENTRY_ENCODING`] names the revision of this table and is
    /// hashed with it.
    ///
    /// A creator moves the state `FREE(e) -> CREATING(e')` (with `e' > e`) by
    /// compare-and-swap while holding the liveness lock of `(entry, e')`,
    /// writes every field word tagged with `e'`, then moves `CREATING(e') ->
    /// READY(e')` by compare-and-swap with `Release`. Field words are written
    /// by compare-and-swap too, and only over a word of an older epoch: a
    /// creator that stalled while another process took the entry over (a newer
    /// epoch) can neither overwrite the new creator's fields nor publish its
    /// own `READY`. A reader accepts a `READY(e)` entry only if every field
    /// word carries epoch `e` (the name words: the one epoch `n <= e` of the
    /// entry's first creation) and every value is valid.
    ///
    /// The ring file of ring `n` in entry `i` at epoch `e` is
    /// `topic-<i>-<e>.<n>.bcast` for a topic, `spsc-<i>-<e>.<n>.spsc` for an
    /// SPSC channel, `queue-<i>-<e>.<n>.queue` for a work queue: entry and
    /// epoch make it unique, and the name (validated first) names it for
    /// an operator.
    #[derive(Debug)]
    pub struct TopicEntry {
        /// Epoch (high 32 bits) and [`entry`] state (low 32 bits). Epochs only
        /// grow; 0 is never claimed, so `CREATING` and `READY` have epoch >= 1.
        0 => pub state: AtomicU64,
        /// Bytes of `name` in use (1..=64), tagged.
        8 => pub name_len: AtomicU64,
        /// Ring kind ([`TOPIC_KIND_BROADCAST`], [`TOPIC_KIND_SPSC`],
        /// [`TOPIC_KIND_QUEUE`]), tagged.
        16 => pub kind: AtomicU64,
        /// Topic policy; SPSC flags. Tagged.
        24 => pub policy: AtomicU64,
        /// Largest payload, tagged.
        32 => pub max_payload: AtomicU64,
        /// Topic record slots; log2 of an SPSC capacity. Tagged.
        40 => pub slots: AtomicU64,
        /// Topic subscriber slots, tagged.
        48 => pub max_subscribers: AtomicU64,
        /// Topic publisher slots, tagged.
        56 => pub max_publishers: AtomicU64,
        /// Creator's pid, for humans only, tagged.
        64 => pub creator_pid: AtomicU64,
        /// Topic claim timeout in nanoseconds, low 32 bits, tagged.
        72 => pub reclaim_after_ns_lo: AtomicU64,
        /// Topic claim timeout in nanoseconds, high 32 bits, tagged.
        80 => pub reclaim_after_ns_hi: AtomicU64,
        /// Topic name, 64 bytes as sixteen tagged words of four bytes each
        /// (little-endian within the value; zero past the name's length).
        88 => pub name: [AtomicU64; TOPIC_NAME_WORDS],
        /// Pads to two lines.
        216 => pub pad: [u8; 2 * CACHE_LINE - 216],
    }
}

/// Words of a [`TopicEntry`]'s `name`.
pub const TOPIC_NAME_WORDS: usize = 16;
/// Name bytes in each word of a [`TopicEntry`]'s `name` (the low 32 bits
/// of a tagged word).
pub const TOPIC_NAME_WIDTH: usize = NAME_LEN / TOPIC_NAME_WORDS;

/// [`TopicEntry::kind`] of a topic whose log is a broadcast log.
pub const TOPIC_KIND_BROADCAST: u32 = 1;
/// [`TopicEntry::kind`] of an SPSC channel.
pub const TOPIC_KIND_SPSC: u32 = 2;
/// [`TopicEntry::kind`] of a work queue.
pub const TOPIC_KIND_QUEUE: u32 = 3;

/// [`TopicEntry::max_payload`] of an SPSC channel whose largest payload is
/// the most its capacity allows (`SpscConfig::max_payload` of `None`). No
/// capacity allows this many bytes, so it is never a real limit.
pub const ENTRY_LARGEST_PAYLOAD: u32 = u32::MAX;

/// Revision of what the configuration words of a [`TopicEntry`] mean for
/// each kind (the table in its docs). The layout tables catch a word that
/// moves, not one whose meaning changes: raise this whenever a kind is
/// added or a word is given another meaning.
pub const DIRECTORY_ENTRY_ENCODING: u32 = 3;

/// Most entries a directory may have (keeps [`lock_slot::entry`] in range).
pub const MAX_DIRECTORY_ENTRIES: u32 = 1 << 16;

/// Offset of the directory control block in its segment.
pub const DIRECTORY_CONTROL_OFFSET: usize = CACHE_LINE;
/// Offset of the first topic entry in the directory segment.
pub const DIRECTORY_ENTRIES_OFFSET: usize = DIRECTORY_CONTROL_OFFSET + CACHE_LINE;

// ---------------------------------------------------------------------------
// Names in shared memory
// ---------------------------------------------------------------------------

/// Bytes of a name held in shared memory: a durable subscriber's name
/// ([`SubscriberSlot::name`]) or a topic's ([`TopicEntry::name`]).
pub const NAME_LEN: usize = 64;

/// Word `w` of `name` zero-padded to [`NAME_LEN`] bytes and cut into words
/// of `width` bytes (8 for a subscriber's name, 4 for a topic's), the
/// first byte in the lowest bits: `name[w * width .. (w + 1) * width]`,
/// little-endian, zero past the name's end. `width` is at most 8.
#[inline]
pub const fn name_word(name: &[u8], w: usize, width: usize) -> u64 {
    let mut word = 0u64;
    let mut k = 0;
    while k < width && k < 8 {
        let i = w * width + k;
        if i < name.len() {
            word |= (name[i] as u64) << (8 * k);
        }
        k += 1;
    }
    word
}

/// Writes word `w` (as [`name_word`] packs it, `width` bytes) back into
/// `bytes`; bits of `word` above `width` bytes are ignored, and a word past
/// [`NAME_LEN`] writes nothing.
#[inline]
pub fn unpack_name_word(bytes: &mut [u8; NAME_LEN], w: usize, width: usize, word: u64) {
    let width = width.min(8);
    if let Some(chunk) = bytes.get_mut(w * width..(w + 1) * width) {
        chunk.copy_from_slice(&word.to_le_bytes()[..width]);
    }
}

// ---------------------------------------------------------------------------
// Liveness-lock slots
// ---------------------------------------------------------------------------

/// Liveness-lock slots: the byte of a segment file whose OFD write lock a
/// participant holds for as long as it is attached (the kernel drops it when
/// the process dies; see `segment::lock`).
///
/// The slots are abstract byte offsets, past the end of the file for most;
/// they never touch the mapped data. They are per file and a file holds one
/// segment kind, so the slots of one kind must never collide with each
/// other (checked at compile time below); slots of different kinds may.
///
/// ```text
/// kind       slot                           for                       range
/// spsc       0                              the producer
/// spsc       1                              the consumer
/// broadcast  1_000 + i                      subscriber slot i         i < MAX_SUBSCRIBERS (4096)
/// broadcast  100_000 + j                    publisher slot j          j < MAX_PUBLISHERS (1024)
/// directory  10_000 + i * 2^32 + epoch      creator of entry i at     i < MAX_DIRECTORY_ENTRIES (2^16),
///                                           epoch                     epoch a u32
/// ```
///
/// The numbering is part of the layout: two builds that disagree on it
/// would not see each other's locks, so each kind's layout hash covers its
/// slots.
pub mod lock_slot {
    use super::{
        MAX_DIRECTORY_ENTRIES, MAX_PUBLISHERS, MAX_QUEUE_CONSUMERS, MAX_QUEUE_PRODUCERS,
        MAX_SUBSCRIBERS,
    };

    /// Slot of an SPSC ring's producer.
    pub const SPSC_PRODUCER: u64 = 0;
    /// Slot of an SPSC ring's consumer.
    pub const SPSC_CONSUMER: u64 = 1;

    /// Slot of subscriber slot 0 of a broadcast log.
    pub const SUBSCRIBER_BASE: u64 = 1_000;
    /// Slot of publisher slot 0 of a broadcast log.
    pub const PUBLISHER_BASE: u64 = 100_000;
    /// Slot of directory entry 0 at epoch 0.
    pub const ENTRY_BASE: u64 = 10_000;
    /// Slot of a directory's users: every process that has the directory
    /// open for writing holds a *read* lock here (any number coexist); a
    /// process may remove the directory only while it alone holds one,
    /// which it proves by turning its own into the write lock.
    pub const DIRECTORY_USERS: u64 = 0;
    /// Distance between the slots of two consecutive directory entries:
    /// room for every epoch of one entry.
    pub const ENTRY_STRIDE: u64 = 1 << 32;

    /// Slot of subscriber slot `i` (`i <` [`MAX_SUBSCRIBERS`]) in a
    /// broadcast segment.
    #[inline]
    pub const fn subscriber(i: usize) -> u64 {
        SUBSCRIBER_BASE + i as u64
    }

    /// Slot of publisher slot `j` (`j <` [`MAX_PUBLISHERS`]) in a broadcast
    /// segment.
    #[inline]
    pub const fn publisher(j: usize) -> u64 {
        PUBLISHER_BASE + j as u64
    }

    /// Slot of directory entry `i` (`i <` [`MAX_DIRECTORY_ENTRIES`]) at
    /// `epoch`: one per creation, so a stalled creator's lock never stands
    /// for its successor's. Below 2^49, so a valid `off_t`.
    #[inline]
    pub const fn entry(i: usize, epoch: u32) -> u64 {
        ENTRY_BASE + (i as u64) * ENTRY_STRIDE + epoch as u64
    }

    /// Slot of consumer slot `i` (`i <` [`MAX_QUEUE_CONSUMERS`]) in a work
    /// queue segment (the numbers of a log's subscribers: a segment is one
    /// kind or the other).
    #[inline]
    pub const fn queue_consumer(i: usize) -> u64 {
        SUBSCRIBER_BASE + i as u64
    }

    /// Slot of producer slot `j` (`j <` [`MAX_QUEUE_PRODUCERS`]) in a work
    /// queue segment.
    #[inline]
    pub const fn queue_producer(j: usize) -> u64 {
        PUBLISHER_BASE + j as u64
    }

    /// Whether `[a, a + n)` and `[b, b + m)` are disjoint.
    const fn disjoint(a: u64, n: u64, b: u64, m: u64) -> bool {
        a + n <= b || b + m <= a
    }

    // Broadcast: subscriber and publisher slots never collide.
    const _: () = assert!(disjoint(
        subscriber(0),
        MAX_SUBSCRIBERS as u64,
        publisher(0),
        MAX_PUBLISHERS as u64
    ));
    const _: () = assert!(subscriber(MAX_SUBSCRIBERS as usize - 1) < PUBLISHER_BASE);
    // Work queue: consumer and producer slots never collide.
    const _: () = assert!(MAX_QUEUE_CONSUMERS <= MAX_SUBSCRIBERS);
    const _: () = assert!(MAX_QUEUE_PRODUCERS <= MAX_PUBLISHERS);
    const _: () = assert!(queue_consumer(MAX_QUEUE_CONSUMERS as usize - 1) < queue_producer(0));
    // SPSC: the two roles never collide.
    const _: () = assert!(SPSC_PRODUCER != SPSC_CONSUMER);
    // Directory: every epoch of an entry fits below the next entry's slots,
    // so (entry, epoch) -> slot is one-to-one, and the last slot is a valid
    // `off_t` (the kernel's lock offset).
    const _: () = assert!(ENTRY_STRIDE > u32::MAX as u64);
    const _: () = assert!(DIRECTORY_USERS < ENTRY_BASE);
    const _: () = assert!(entry(1, 0) - entry(0, u32::MAX) == 1);
    const _: () = assert!(entry(MAX_DIRECTORY_ENTRIES as usize - 1, u32::MAX) < i64::MAX as u64);
}

// ---------------------------------------------------------------------------
// Compile-time checks of what the tables do not say: sizes and region
// offsets (normal builds only: loom's atomics have another size, and loom
// never maps shared memory).
// ---------------------------------------------------------------------------

#[cfg(not(shmbus_loom))]
mod checks {
    use super::*;
    use core::mem::{align_of, size_of};

    const _: () = assert!(size_of::<SegmentHeader>() == CACHE_LINE);
    const _: () = assert!(align_of::<SegmentHeader>() == 8);
    const _: () = assert!(size_of::<SpscControl>() == 5 * CACHE_LINE);
    const _: () = assert!(SPSC_DATA_OFFSET == 768);
    const _: () = assert!(SPSC_DATA_OFFSET % CACHE_LINE == 0);
    const _: () = assert!(size_of::<BroadcastControl>() == 5 * CACHE_LINE);
    const _: () = assert!(size_of::<Counters>() == CACHE_LINE);
    const _: () = assert!(size_of::<SubscriberSlot>() == PARTICIPANT_SLOT_LEN);
    const _: () = assert!(size_of::<PublisherSlot>() == PARTICIPANT_SLOT_LEN);
    const _: () = assert!(BROADCAST_SUBSCRIBERS_OFFSET == 768);
    const _: () = assert!(size_of::<RecordSlotHeader>() == SLOT_HEADER_LEN);
    const _: () = assert!(size_of::<QueueControl>() == 5 * CACHE_LINE);
    const _: () = assert!(QUEUE_CONTROL_OFFSET + size_of::<QueueControl>() == SLOT_READERS_OFFSET);
    const _: () = assert!(size_of::<QueueProducerSlot>() == PARTICIPANT_SLOT_LEN);
    const _: () = assert!(size_of::<QueueConsumerSlot>() == PARTICIPANT_SLOT_LEN);
    const _: () = assert!(MAX_QUEUE_CONSUMERS <= queue_stamp::MAX_OWNER + 1);
    const _: () = assert!(MAX_QUEUE_PRODUCERS <= queue_stamp::MAX_OWNER + 1);
    const _: () = assert!(size_of::<DirectoryControl>() == CACHE_LINE);
    const _: () = assert!(size_of::<TopicEntry>() == 2 * CACHE_LINE);
    const _: () = assert!(DIRECTORY_ENTRIES_OFFSET == 256);
    const _: () = assert!(TOPIC_NAME_WORDS * TOPIC_NAME_WIDTH == NAME_LEN);
    const _: () = assert!(SUBSCRIBER_NAME_WORDS * SUBSCRIBER_NAME_WIDTH == NAME_LEN);
}

// ---------------------------------------------------------------------------
// Layout hashes
// ---------------------------------------------------------------------------

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes`, continuing from `hash`, usable in `const` context.
const fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// FNV-1a of a number's eight little-endian bytes, continuing from `hash`.
const fn fnv_word(hash: u64, word: u64) -> u64 {
    fnv_bytes(hash, &word.to_le_bytes())
}

/// FNV-1a of a name, length first (so consecutive names cannot run into
/// each other), continuing from `hash`.
const fn fnv_name(hash: u64, name: &str) -> u64 {
    fnv_bytes(fnv_word(hash, name.len() as u64), name.as_bytes())
}

/// Hash of everything two builds must agree on to share a segment of one
/// kind: the layout tables of its structures (the name, size and field
/// count of each, then the name, offset and size of every field, padding
/// included), the numbers the kind encodes (`constants`: region offsets,
/// packings, lock slots), and the build's cache-line size, pointer width,
/// byte order and record-header format.
pub const fn layout_hash(structs: &[StructLayout], constants: &[u64]) -> u64 {
    let env = [
        CACHE_LINE as u64,
        usize::BITS as u64,
        cfg!(target_endian = "little") as u64,
        RECORD_HEADER_LEN as u64,
        RECORD_ALIGN as u64,
        KNOWN_FLAGS as u64,
    ];
    let mut hash = FNV_OFFSET;
    let mut i = 0;
    while i < env.len() {
        hash = fnv_word(hash, env[i]);
        i += 1;
    }
    let mut s = 0;
    while s < structs.len() {
        let st = &structs[s];
        hash = fnv_name(hash, st.name);
        hash = fnv_word(hash, st.size as u64);
        hash = fnv_word(hash, st.fields.len() as u64);
        let mut f = 0;
        while f < st.fields.len() {
            let field = &st.fields[f];
            hash = fnv_name(hash, field.name);
            hash = fnv_word(hash, field.offset as u64);
            hash = fnv_word(hash, field.size as u64);
            f += 1;
        }
        s += 1;
    }
    hash = fnv_word(hash, constants.len() as u64);
    let mut c = 0;
    while c < constants.len() {
        hash = fnv_word(hash, constants[c]);
        c += 1;
    }
    hash
}

/// Structures of an SPSC segment.
pub const SPSC_STRUCTS: [StructLayout; 3] =
    [SegmentHeader::LAYOUT, SpscControl::LAYOUT, Counters::LAYOUT];

/// Layout hash of an SPSC segment as this build lays it out.
pub const SPSC_LAYOUT_HASH: u64 = layout_hash(
    &SPSC_STRUCTS,
    &[
        SPSC_CONTROL_OFFSET as u64,
        SPSC_DATA_OFFSET as u64,
        SPSC_FLAG_WAKEUPS as u64,
        SENTINEL_LEN,
        pack_record_header(1, 2, 4),
        FLAG_PADDING as u64,
        FLAG_COMMITTED as u64,
        lock_slot::SPSC_PRODUCER,
        lock_slot::SPSC_CONSUMER,
    ],
);

/// Structures of a broadcast segment.
pub const BROADCAST_STRUCTS: [StructLayout; 6] = [
    SegmentHeader::LAYOUT,
    BroadcastControl::LAYOUT,
    SubscriberSlot::LAYOUT,
    PublisherSlot::LAYOUT,
    Counters::LAYOUT,
    RecordSlotHeader::LAYOUT,
];

/// Layout hash of a broadcast segment as this build lays it out.
pub const BROADCAST_LAYOUT_HASH: u64 = layout_hash(
    &BROADCAST_STRUCTS,
    &[
        BROADCAST_CONTROL_OFFSET as u64,
        BROADCAST_SUBSCRIBERS_OFFSET as u64,
        SLOT_HEADER_LEN as u64,
        stamp(1, STAMP_SKIPPED),
        STAMP_COMMITTED,
        STAMP_WRITING,
        STAMP_RECLAIMED,
        MAX_SEQUENCE,
        participant::next_generation(0x1ff, participant::DETACHED) as u64,
        participant::CLAIMING as u64,
        participant::LIVE as u64,
        pack_record_header(1, 2, 4),
        lock_slot::subscriber(0),
        lock_slot::publisher(0),
        MAX_SUBSCRIBERS as u64,
        MAX_PUBLISHERS as u64,
        SUBSCRIBER_NAME_WIDTH as u64,
    ],
);

/// Structures of a work queue segment.
pub const QUEUE_STRUCTS: [StructLayout; 6] = [
    SegmentHeader::LAYOUT,
    QueueControl::LAYOUT,
    QueueConsumerSlot::LAYOUT,
    QueueProducerSlot::LAYOUT,
    Counters::LAYOUT,
    RecordSlotHeader::LAYOUT,
];

/// Layout hash of a work queue segment as this build lays it out.
pub const QUEUE_LAYOUT_HASH: u64 = layout_hash(
    &QUEUE_STRUCTS,
    &[
        QUEUE_CONTROL_OFFSET as u64,
        SLOT_READERS_OFFSET as u64,
        SLOT_HEADER_LEN as u64,
        queue_stamp::pack(3, 5, queue_stamp::TAKEN, queue_stamp::REDELIVERED),
        queue_stamp::pack(1, 0, queue_stamp::SKIPPED, queue_stamp::SUSPECT),
        queue_stamp::FREE,
        queue_stamp::WRITING,
        queue_stamp::COMMITTED,
        queue_stamp::LAP_BITS as u64,
        participant::next_generation(0x1ff, participant::LIVE) as u64,
        participant::CLAIMING as u64,
        pack_record_header(1, 2, 4),
        lock_slot::queue_consumer(0),
        lock_slot::queue_producer(0),
        MAX_QUEUE_CONSUMERS as u64,
        MAX_QUEUE_PRODUCERS as u64,
    ],
);

/// Structures of a directory segment.
pub const DIRECTORY_STRUCTS: [StructLayout; 3] = [
    SegmentHeader::LAYOUT,
    DirectoryControl::LAYOUT,
    TopicEntry::LAYOUT,
];

/// Layout hash of a directory segment as this build lays it out.
pub const DIRECTORY_LAYOUT_HASH: u64 = layout_hash(
    &DIRECTORY_STRUCTS,
    &[
        DIRECTORY_CONTROL_OFFSET as u64,
        DIRECTORY_ENTRIES_OFFSET as u64,
        TOPIC_NAME_WORDS as u64,
        TOPIC_NAME_WIDTH as u64,
        TOPIC_KIND_BROADCAST as u64,
        TOPIC_KIND_SPSC as u64,
        TOPIC_KIND_QUEUE as u64,
        ENTRY_LARGEST_PAYLOAD as u64,
        DIRECTORY_ENTRY_ENCODING as u64,
        SPSC_FLAG_WAKEUPS as u64,
        entry::CREATING as u64,
        entry::READY as u64,
        entry::REMOVED as u64,
        entry::RECREATING as u64,
        lock_slot::entry(0, 0),
        lock_slot::entry(1, 0),
        lock_slot::DIRECTORY_USERS,
        MAX_DIRECTORY_ENTRIES as u64,
    ],
);

/// `"SHMBRDG2"` read as a little-endian `u64`: the first word of a bridge
/// counters file ([`BridgeCountersLayout`]). Version 1 of the file kept one
/// origin; version 2 keeps [`BRIDGE_ORIGINS`].
pub const BRIDGE_COUNTERS_MAGIC: u64 = u64::from_le_bytes(*b"SHMBRDG2");

/// How many exporting origins a bridge counters file remembers the last
/// sequence of ([`BridgeCountersLayout::origins`]).
pub const BRIDGE_ORIGINS: usize = 8;

shared_struct! {
    /// Where one exporting origin's stream of a bridged topic stands, as
    /// the importer last published it (one entry of
    /// [`BridgeCountersLayout::origins`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+  0
    /// |  origin (u64): the exporting bridge's run, 0 = entry unused    |
    /// +---------------------------------------------------------------+  8
    /// |  last_seq (u64): its last sequence imported                   |
    /// +---------------------------------------------------------------+ 16
    /// |  touched (u64): `imported` when the entry was last written    |
    /// +---------------------------------------------------------------+ 24
    /// |  pad (0)                                                      |
    /// +---------------------------------------------------------------+ 32
    /// ```
    ///
    /// Written only by the topic's importer: `last_seq` and `touched` on
    /// every record of the origin, `origin` when the entry is taken (after
    /// `last_seq`), so a reader may see a new origin with its first
    /// sequence a moment late, never another origin's sequence for long.
    /// When every entry is in use, a new origin takes the one touched
    /// longest ago.
    #[derive(Debug)]
    pub struct BridgeOrigin {
        /// The origin (random per exporter run, never 0); 0: unused.
        0 => pub origin: StatCounter,
        /// Its last sequence published on the local topic (from 1).
        8 => pub last_seq: StatCounter,
        /// The importer's `imported` count when this entry was last written:
        /// which entry a new origin takes when all are in use.
        16 => pub touched: StatCounter,
        /// Pads the entry to 32 bytes.
        24 => pub pad: u64,
    }
}

shared_struct! {
    /// The bridge's counters for one topic: the file
    /// `<namespace dir>/<topic>.bridge`, written by `shmbus-bridge`, read
    /// by `ring-dump` and `shmbus-bridge --stats`
    /// ([`crate::bridge_counters`]).
    ///
    /// ```text
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+   0
    /// |  magic (u64): "SHMBRDG2"                                      |
    /// +---------------------------------------------------------------+   8
    /// |  size (u64): bytes of this layout (640)                       |
    /// +---------------------------------------------------------------+  16
    /// |  pid (u64): the bridge that holds the file's lock             |
    /// +---------------------------------------------------------------+  24
    /// |  pad (0) ... up to byte 128                                   |
    /// +---------------------------------------------------------------+ 128
    /// |  exported (u64): records sent to Zenoh                        |
    /// +---------------------------------------------------------------+ 136
    /// |  exported_bytes (u64): their payload bytes                    |
    /// +---------------------------------------------------------------+ 144
    /// |  export_missed (u64): records the exporter was lapped over    |
    /// +---------------------------------------------------------------+ 152
    /// |  echo_skipped (u64): imported records not sent back           |
    /// +---------------------------------------------------------------+ 160
    /// |  pad (0) ... up to byte 256                                   |
    /// +---------------------------------------------------------------+ 256
    /// |  imported (u64): records published on the local topic         |
    /// +---------------------------------------------------------------+ 264
    /// |  imported_bytes (u64): their payload bytes                    |
    /// +---------------------------------------------------------------+ 272
    /// |  gaps (u64): records sent but never received                  |
    /// +---------------------------------------------------------------+ 280
    /// |  rejected (u64): messages refused (malformed, too large)      |
    /// +---------------------------------------------------------------+ 288
    /// |  pad (0) ... up to byte 384                                   |
    /// +---------------------------------------------------------------+ 384
    /// |  origins: BRIDGE_ORIGINS (8) x BridgeOrigin (32 bytes)        |
    /// +---------------------------------------------------------------+ 640
    /// ```
    ///
    /// Native-endian like every segment. The header line is written by the
    /// bridge that opens the file, the export line only by the topic's
    /// exporter thread, the import line and the origins only by its
    /// importer thread; anyone reads them, as counters (no decision of the
    /// bridge's hangs on what a reader sees). The bridge holds an OFD write
    /// lock on byte 0 ([`BRIDGE_COUNTERS_LOCK`]) while it bridges the topic.
    #[derive(Debug)]
    pub struct BridgeCountersLayout {
        /// [`BRIDGE_COUNTERS_MAGIC`].
        0 => pub magic: StatCounter,
        /// `size_of::<BridgeCountersLayout>()` of the writer.
        8 => pub size: StatCounter,
        /// Process id of the bridge that last opened the file.
        16 => pub pid: StatCounter,
        /// Pads the header line.
        24 => pub pad_header: [u8; CACHE_LINE - 24],
        /// Records sent to Zenoh.
        128 => pub exported: StatCounter,
        /// Payload bytes of those records.
        136 => pub exported_bytes: StatCounter,
        /// Records the exporter's subscriber was lapped over (`Overwrite`).
        144 => pub export_missed: StatCounter,
        /// Records the exporter passed over because this bridge imported them.
        152 => pub echo_skipped: StatCounter,
        /// Pads the export line.
        160 => pub pad_export: [u8; CACHE_LINE - 32],
        /// Records published on the local topic.
        256 => pub imported: StatCounter,
        /// Payload bytes of those records.
        264 => pub imported_bytes: StatCounter,
        /// Records the sequence numbers say were sent but never arrived.
        272 => pub gaps: StatCounter,
        /// Messages refused: malformed, too large, own origin, repeated.
        280 => pub rejected: StatCounter,
        /// Pads the import line.
        288 => pub pad_import: [u8; CACHE_LINE - 32],
        /// The last sequence of each exporting origin.
        384 => pub origins: [BridgeOrigin; BRIDGE_ORIGINS],
    }
}

/// Lock slot of a bridge counters file: the bridge holds a write lock on
/// it while it bridges the topic.
pub const BRIDGE_COUNTERS_LOCK: u64 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_is_header_plus_payload_rounded_to_eight() {
        assert_eq!(frame_len(0), 8);
        assert_eq!(frame_len(1), 16);
        assert_eq!(frame_len(8), 16);
        assert_eq!(frame_len(9), 24);
        assert_eq!(frame_len(56), 64);
    }

    #[test]
    fn record_header_round_trips() {
        let w = pack_record_header(0xDEAD_BEEF, 0x1234, FLAG_PADDING);
        assert_eq!(unpack_record_header(w), (0xDEAD_BEEF, 0x1234, FLAG_PADDING));
    }

    #[test]
    fn magic_word_reads_shmb_then_version() {
        let w = magic_word(7);
        assert_eq!(&w.to_le_bytes()[..4], b"SHMB");
        assert_eq!(w >> 32, 7);
    }

    /// Every structure that lives in shared memory.
    fn every_struct() -> [(StructLayout, usize); 12] {
        use core::mem::size_of;
        [
            (SegmentHeader::LAYOUT, size_of::<SegmentHeader>()),
            (SpscControl::LAYOUT, size_of::<SpscControl>()),
            (BroadcastControl::LAYOUT, size_of::<BroadcastControl>()),
            (SubscriberSlot::LAYOUT, size_of::<SubscriberSlot>()),
            (PublisherSlot::LAYOUT, size_of::<PublisherSlot>()),
            (RecordSlotHeader::LAYOUT, size_of::<RecordSlotHeader>()),
            (DirectoryControl::LAYOUT, size_of::<DirectoryControl>()),
            (TopicEntry::LAYOUT, size_of::<TopicEntry>()),
            (QueueControl::LAYOUT, size_of::<QueueControl>()),
            (QueueProducerSlot::LAYOUT, size_of::<QueueProducerSlot>()),
            (QueueConsumerSlot::LAYOUT, size_of::<QueueConsumerSlot>()),
            (Counters::LAYOUT, size_of::<Counters>()),
        ]
    }

    /// How many fields of `layout` cover each of its bytes.
    fn coverage(layout: &StructLayout) -> Vec<u32> {
        let mut covered = vec![0u32; layout.size];
        for f in layout.fields {
            for byte in f.offset..f.offset + f.size {
                match covered.get_mut(byte) {
                    Some(c) => *c += 1,
                    None => panic!(
                        "{}::{} ends at {}, past the structure's {} bytes",
                        layout.name,
                        f.name,
                        f.offset + f.size,
                        layout.size
                    ),
                }
            }
        }
        covered
    }

    #[cfg(not(shmbus_loom))]
    #[test]
    fn layout_tables_cover_every_byte_once() {
        for (layout, size) in every_struct() {
            assert_eq!(layout.size, size, "{}", layout.name);
            let sum: usize = layout.fields.iter().map(|f| f.size).sum();
            assert_eq!(
                sum, size,
                "{}: fields add up to {sum} of {size} bytes",
                layout.name
            );
            for (byte, n) in coverage(&layout).into_iter().enumerate() {
                assert_eq!(n, 1, "{}: byte {byte} is in {n} fields", layout.name);
            }
            assert!(layout.is_exact(), "{}", layout.name);
        }
    }

    #[cfg(not(shmbus_loom))]
    #[test]
    fn every_shared_struct_is_in_a_layout_hash() {
        let hashed: Vec<&str> = SPSC_STRUCTS
            .iter()
            .chain(&BROADCAST_STRUCTS)
            .chain(&DIRECTORY_STRUCTS)
            .chain(&QUEUE_STRUCTS)
            .map(|s| s.name)
            .collect();
        for (layout, _) in every_struct() {
            assert!(
                hashed.contains(&layout.name),
                "{} is in no hash",
                layout.name
            );
        }
    }

    /// A 16-byte table of fields at (offset, size).
    fn table(fields: &[(usize, usize)]) -> StructLayout {
        let fields: Vec<Field> = fields
            .iter()
            .map(|&(offset, size)| Field {
                name: "f",
                offset,
                size,
            })
            .collect();
        StructLayout {
            name: "T",
            size: 16,
            fields: fields.leak(),
        }
    }

    #[test]
    fn a_gap_or_an_overlap_is_not_exact() {
        assert!(table(&[(0, 8), (8, 8)]).is_exact());
        assert!(table(&[(0, 4), (4, 4), (8, 8)]).is_exact());
        // A gap (implicit padding), an overlap, a short and a long table.
        assert!(!table(&[(0, 8), (12, 4)]).is_exact());
        assert!(!table(&[(0, 8), (4, 12)]).is_exact());
        assert!(!table(&[(0, 8)]).is_exact());
        assert!(!table(&[(0, 8), (8, 16)]).is_exact());
        let overlap = coverage(&table(&[(0, 8), (4, 12)]));
        assert_eq!((overlap[3], overlap[6], overlap[12]), (1, 2, 1));
        assert_eq!(coverage(&table(&[(0, 8), (12, 4)]))[10], 0);
    }

    #[test]
    fn moving_resizing_or_renaming_any_field_changes_the_hash() {
        for (layout, _) in every_struct() {
            let base = layout_hash(&[layout], &[]);
            for (i, field) in layout.fields.iter().enumerate() {
                let changes: [fn(&mut Field); 3] =
                    [|f| f.offset += 8, |f| f.size += 4, |f| f.name = "renamed"];
                for change in changes {
                    let mut fields = layout.fields.to_vec();
                    change(&mut fields[i]);
                    let changed = StructLayout {
                        fields: fields.leak(),
                        ..layout
                    };
                    assert_ne!(
                        layout_hash(&[changed], &[]),
                        base,
                        "{}::{} changed",
                        layout.name,
                        field.name
                    );
                }
            }
        }
        assert_ne!(layout_hash(&[], &[1]), layout_hash(&[], &[2]));
    }

    #[test]
    fn kinds_hash_differently() {
        assert_ne!(SPSC_LAYOUT_HASH, BROADCAST_LAYOUT_HASH);
        assert_ne!(SPSC_LAYOUT_HASH, DIRECTORY_LAYOUT_HASH);
        assert_ne!(BROADCAST_LAYOUT_HASH, DIRECTORY_LAYOUT_HASH);
        for other in [
            SPSC_LAYOUT_HASH,
            BROADCAST_LAYOUT_HASH,
            DIRECTORY_LAYOUT_HASH,
        ] {
            assert_ne!(QUEUE_LAYOUT_HASH, other);
        }
    }

    /// Queue stamps round-trip their parts, and laps compare modulo 2^48.
    #[test]
    fn queue_stamps_pack_and_compare_laps() {
        use queue_stamp::*;
        let s = pack(0xabc, 63, TAKEN, REDELIVERED);
        assert_eq!(
            (lap(s), owner(s), state(s), flags(s)),
            (0xabc, 63, TAKEN, REDELIVERED)
        );
        assert!(!is_garbage(s));
        assert!(is_garbage(pack(1, 0, 5, 0)));
        assert!(is_garbage(s | 1 << 6));
        assert_eq!(pack(0, 0, FREE, 0), 0, "a zeroed slot is free at lap 0");
        assert_eq!(lap(pack(LAP_MASK + 2, 0, FREE, 0)), 1, "laps wrap at 2^48");
        assert_eq!(laps_ahead(5, 5), 0);
        assert_eq!(laps_ahead(6, 5), 1);
        assert_eq!(laps_ahead(4, 5), -1);
        assert_eq!(laps_ahead(0, LAP_MASK), 1, "the lap after the last is 0");
        assert_eq!(laps_ahead(LAP_MASK, 0), -1);
    }

    /// The geometry of a small log, worked out by hand in 128-byte lines:
    /// the segment header, five control lines, 2 reader and 3 writer
    /// slots of two lines each (state, counters), then 4 record slots of
    /// 128 bytes.
    #[test]
    fn slot_geometry_of_a_small_ring() {
        let g = SlotGeometry {
            readers: 2,
            writers: 3,
            slots: 4,
            stride: 128,
        };
        assert_eq!(g.reader_offset(0), 6 * 128);
        assert_eq!(g.reader_offset(1), 8 * 128);
        assert_eq!(g.writers_offset(), 10 * 128);
        assert_eq!(g.writer_offset(2), 14 * 128);
        assert_eq!(g.records_offset(), 16 * 128);
        assert_eq!(g.slot_offset(0), 16 * 128);
        assert_eq!(g.slot_offset(5), 17 * 128, "sequence 5 is in slot 1");
        assert_eq!(g.payload_offset(7), 19 * 128 + 16);
        assert_eq!(g.size(), 20 * 128);
    }

    #[test]
    fn lock_slots_keep_their_numbers() {
        // The numbers are shared with every other build: changing one
        // changes the layout hash, and must be a deliberate choice.
        assert_eq!(lock_slot::SPSC_PRODUCER, 0);
        assert_eq!(lock_slot::SPSC_CONSUMER, 1);
        assert_eq!(lock_slot::subscriber(5), 1_005);
        assert_eq!(lock_slot::publisher(7), 100_007);
        assert_eq!(lock_slot::entry(3, 9), 10_000 + (3 << 32) + 9);
    }

    #[test]
    fn names_pack_and_unpack_in_words_of_four_or_eight() {
        let name = b"market_data.btc-usd";
        for width in [4, 8] {
            let mut bytes = [0u8; NAME_LEN];
            for w in 0..NAME_LEN / width {
                unpack_name_word(&mut bytes, w, width, name_word(name, w, width));
            }
            assert_eq!(&bytes[..name.len()], name);
            assert!(bytes[name.len()..].iter().all(|&b| b == 0));
        }
        assert_eq!(
            name_word(b"abcdefgh", 1, 4),
            u64::from(u32::from_le_bytes(*b"efgh"))
        );
        assert_eq!(name_word(b"abcdefghi", 1, 8), u64::from(b'i'));
        assert_eq!(name_word(b"abc", 1, 8), 0);
    }
}
