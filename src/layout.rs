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
//! * every structure is `#[repr(C)]` with its padding written out, and its
//!   offsets are asserted at compile time below;
//! * a [`layout_hash`] of those sizes and offsets, the pointer width and the
//!   byte order is stored in every header and checked on open, so a build
//!   whose layout differs is refused instead of misreading memory.
//!
//! Multi-byte integers are native-endian (every process on a host shares
//! it); the hash records the endianness so a mismatch cannot go unnoticed.

use crate::sync::{AtomicU32, AtomicU64};

/// Cache-line size used for every padding decision in shared memory.
pub const CACHE_LINE: usize = 128;

/// `"SHMB"` read as a little-endian `u32`: the first word of every segment.
pub const SEGMENT_MAGIC: u32 = u32::from_le_bytes(*b"SHMB");

/// Version of the shared-memory layout this build reads and writes.
///
/// Bump it whenever any structure in this module changes meaning.
pub const LAYOUT_VERSION: u32 = 2;

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
}

impl SegmentKind {
    /// Short lowercase name for messages and tools.
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Spsc => "spsc",
            SegmentKind::Broadcast => "bcast",
            SegmentKind::Directory => "dir",
        }
    }

    /// Layout hash expected for segments of this kind.
    pub fn layout_hash(self) -> u64 {
        match self {
            SegmentKind::Spsc => SPSC_LAYOUT_HASH,
            SegmentKind::Broadcast => BROADCAST_LAYOUT_HASH,
            SegmentKind::Directory => DIRECTORY_LAYOUT_HASH,
        }
    }
}

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
#[repr(C)]
#[derive(Debug)]
pub struct SegmentHeader {
    /// [`magic_word`]`(LAYOUT_VERSION)`, or 0 while the creator initialises.
    /// Written once, by the creator, last.
    pub magic_version: AtomicU64,
    /// [`layout_hash`] of the creator's build for this kind.
    pub layout_hash: u64,
    /// Total file size the creator reserved; checked against `fstat`.
    pub segment_size: u64,
    /// [`SegmentKind`] as `u32`.
    pub kind: u32,
    /// 0 healthy; 1 poisoned (a reader found corrupt state and gave up).
    pub state: AtomicU32,
    /// Pid of the creating process, for humans only (pids are reused).
    pub creator_pid: u32,
    /// 0 while the file is in use; set to 1 ([`REMOVED`]) by
    /// `Segment::remove` just before it unlinks the file, so that attached
    /// peers learn of the removal at their next slow path. Never cleared.
    pub removed: AtomicU32,
    /// Creation time, `CLOCK_REALTIME` nanoseconds, for humans only.
    pub created_realtime_ns: u64,
    /// Reserved, zero.
    pub reserved1: [u8; 80],
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

/// Control block of an SPSC ring: three cache lines after the segment header.
///
/// ```text
/// line 0 (offset   0): capacity u64 | max payload u32 | flags u32 |
///                      producer pid u32 | consumer pid u32 |
///                      wake seq u32 | sleepers u32 | reserved ...
/// line 1 (offset 128): tail u64  -- producer position; only the producer writes
/// line 2 (offset 256): head u64  -- consumer position; only the consumer writes
/// ```
///
/// `tail` and `head` are monotonic byte positions in `0 .. 2^64`; the index of
/// a position in the data region is `position & (capacity - 1)`. At all times
/// `head <= tail <= head + capacity` and both are multiples of 8. Each lives on
/// its own 128-byte line so the two sides never write the same line.
#[repr(C)]
#[derive(Debug)]
pub struct SpscControl {
    /// Bytes in the data region: a power of two, at least 64. Immutable.
    pub capacity: u64,
    /// Largest payload a record may carry. Immutable.
    pub max_payload: u32,
    /// Bit 0: the producer wakes a consumer sleeping on `wake_seq`
    /// ([`SPSC_FLAG_WAKEUPS`]). Immutable.
    pub flags: u32,
    /// Pid of the attached producer or 0, for humans only.
    pub producer_pid: AtomicU32,
    /// Pid of the attached consumer or 0, for humans only.
    pub consumer_pid: AtomicU32,
    /// Futex word: bumped by the producer when the consumer sleeps.
    pub wake_seq: AtomicU32,
    /// 1 while the consumer sleeps (or is about to) on `wake_seq`.
    pub sleepers: AtomicU32,
    /// Pads line 0.
    pub pad0: [u8; CACHE_LINE - 32],
    /// Producer position: end of the last published record.
    pub tail: AtomicU64,
    /// Pads line 1.
    pub pad1: [u8; CACHE_LINE - 8],
    /// Consumer position: end of the last released record.
    pub head: AtomicU64,
    /// Pads line 2.
    pub pad2: [u8; CACHE_LINE - 8],
}

/// [`SpscControl::flags`] bit: blocking consumers sleep on a futex and the
/// producer wakes them.
pub const SPSC_FLAG_WAKEUPS: u32 = 1;

/// Offset of the SPSC control block in its segment.
pub const SPSC_CONTROL_OFFSET: usize = CACHE_LINE;
/// Offset of the SPSC data region in its segment.
pub const SPSC_DATA_OFFSET: usize = SPSC_CONTROL_OFFSET + 3 * CACHE_LINE;

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

/// Control block of a broadcast log, right after the segment header.
///
/// ```text
/// line 0 (offset   0): slots u64 | slot stride u32 | max payload u32 |
///                      policy u32 | max subscribers u32 | max publishers u32 |
///                      reserved u32 | claim timeout ns u64 | reserved ...
/// line 1 (offset 128): tail u64     -- next sequence to claim; producers fetch_add
/// line 2 (offset 256): gate u64 | registrations u64 -- a recent minimum of the gating cursors
/// line 3 (offset 384): wake seq u32 | sleepers u32 -- futex word and sleeper count
/// line 4 (offset 512): counters: reclaimed claims | reaped subscribers | reaped publishers
/// offset 640:          SubscriberSlot x max subscribers (128 bytes each)
///                      PublisherSlot  x max publishers  (128 bytes each)
///                      record slots   x slots           (stride bytes each)
/// ```
///
/// Positions are record sequence numbers: record `s` lives in record slot
/// `s & (slots - 1)`. `tail` is in `0 .. 2^62` and only grows.
#[repr(C)]
#[derive(Debug)]
pub struct BroadcastControl {
    /// Number of record slots: a power of two. Immutable.
    pub slots: u64,
    /// Bytes per record slot (16-byte header + payload, rounded to 64). Immutable.
    pub slot_stride: u32,
    /// Largest payload of one record. Immutable.
    pub max_payload: u32,
    /// 0 `Backpressure`, 1 `Overwrite`. Immutable.
    pub policy: u32,
    /// Number of [`SubscriberSlot`]s. Immutable.
    pub max_subscribers: u32,
    /// Number of [`PublisherSlot`]s. Immutable.
    pub max_publishers: u32,
    /// Reserved, zero.
    pub reserved0: u32,
    /// A claim not committed after this long may be reclaimed as a skip
    /// record by a waiting reader or producer. Immutable.
    pub claim_timeout_ns: u64,
    /// Pads line 0.
    pub pad0: [u8; CACHE_LINE - 40],
    /// Next sequence number to claim. Producers `fetch_add`; everyone reads.
    pub tail: AtomicU64,
    /// Pads line 1.
    pub pad1: [u8; CACHE_LINE - 8],
    /// Lower bound of every gating cursor, as last computed by a producer
    /// (`Backpressure` only). Only grows.
    pub gate: AtomicU64,
    /// Bumped by every subscriber registration: a producer whose gate scan
    /// overlapped one rescans before trusting the result.
    pub registrations: AtomicU64,
    /// Pads line 2.
    pub pad2: [u8; CACHE_LINE - 16],
    /// Futex word: bumped by a producer that finds sleepers.
    pub wake_seq: AtomicU32,
    /// Number of subscribers asleep (or about to sleep) on `wake_seq`.
    pub sleepers: AtomicU32,
    /// Pads line 3.
    pub pad3: [u8; CACHE_LINE - 8],
    /// Claims reclaimed after `claim_timeout_ns` (their producer died or stalled).
    pub reclaimed_claims: AtomicU64,
    /// Subscriber slots freed or detached after their owner died.
    pub reaped_subscribers: AtomicU64,
    /// Publisher slots freed after their owner died.
    pub reaped_publishers: AtomicU64,
    /// Pads line 4.
    pub pad4: [u8; CACHE_LINE - 24],
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

/// One subscriber's slot in a broadcast log (one cache line).
///
/// ```text
/// 0 state word u32 | 4 pid u32 | 8 cursor u64 | 16 heartbeat ns u64 |
/// 24 missed u64 | 32 name length u32 | 36 sleeping u32 | 40 name [u64; 8] | ...
/// ```
///
/// Only the process holding the slot's liveness lock writes `cursor`,
/// `heartbeat_ns` and `missed`; anyone may reap a slot whose lock is free,
/// by a compare-and-swap of the state word that a registration in between
/// (which bumps the generation) makes fail.
#[repr(C)]
#[derive(Debug)]
pub struct SubscriberSlot {
    /// [`participant`] state word (state and generation).
    pub state: AtomicU32,
    /// Owner's pid, for humans only.
    pub pid: AtomicU32,
    /// Next sequence this subscriber will read; everything before it is done.
    pub cursor: AtomicU64,
    /// Last sign of life, `CLOCK_MONOTONIC` ns, for humans only.
    pub heartbeat_ns: AtomicU64,
    /// Records this subscriber lost: lapped (`Overwrite`), reclaimed from
    /// a stalled publisher, or passed over with `skip`.
    pub missed: AtomicU64,
    /// Length of the durable name; 0 for an anonymous subscriber.
    pub name_len: AtomicU32,
    /// 1 while this subscriber is counted in `sleepers`; whoever swaps it
    /// back to 0 (the subscriber, or a reaper after its death) decrements.
    pub sleeping: AtomicU32,
    /// Durable name, 64 bytes as eight words.
    pub name: [AtomicU64; 8],
    /// Pads the line.
    pub pad: [u8; CACHE_LINE - 104],
}

/// One publisher's slot in a broadcast log (one cache line).
///
/// ```text
/// 0 state word u32 | 4 pid u32 | 8 published u64 | 16 claimed u64 |
/// 24 reclaimed u64 | 32 ... pad to 128
/// ```
///
/// Only the process holding the slot's liveness lock writes it; a process
/// that takes the lock of a dead owner takes the slot over.
#[repr(C)]
#[derive(Debug)]
pub struct PublisherSlot {
    /// [`participant`] state word (state and generation).
    pub state: AtomicU32,
    /// Owner's pid, for humans only.
    pub pid: AtomicU32,
    /// Records committed by this publisher.
    pub published: AtomicU64,
    /// The claim in progress, as sequence + 1; 0 when none. Written by the
    /// owner before it looks at the claimed slot and cleared after its last
    /// write to it, so a publisher about to reuse a slot whose previous
    /// record was reclaimed can tell whether that record's claimer may
    /// still be writing there.
    pub claimed: AtomicU64,
    /// Claims of this publisher that a waiter reclaimed after the claim
    /// timeout (each one a record this publisher did not get to publish).
    pub reclaimed: AtomicU64,
    /// Pads the line.
    pub pad: [u8; CACHE_LINE - 32],
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

/// The header of a record slot as a structure (see [`SLOT_HEADER_LEN`]).
#[repr(C)]
#[derive(Debug)]
pub struct RecordSlotHeader {
    /// Seqlock stamp: [`stamp`] of the record's sequence and state, 0 if
    /// the slot was never used.
    pub stamp: AtomicU64,
    /// Payload length (low 32 bits), record type (next 16), flags (top 16),
    /// as packed by [`pack_record_header`].
    pub word: AtomicU64,
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
pub const BROADCAST_SUBSCRIBERS_OFFSET: usize = BROADCAST_CONTROL_OFFSET + 5 * CACHE_LINE;

/// Offsets of the parts of a broadcast segment: (publisher slots, record
/// slots, total size).
pub const fn broadcast_offsets(
    max_subscribers: usize,
    max_publishers: usize,
    slots: usize,
    stride: usize,
) -> (usize, usize, usize) {
    let publishers = BROADCAST_SUBSCRIBERS_OFFSET + max_subscribers * CACHE_LINE;
    let records = publishers + max_publishers * CACHE_LINE;
    (publishers, records, records + slots * stride)
}

// ---------------------------------------------------------------------------
// Topic directory
// ---------------------------------------------------------------------------

/// Control block of a namespace's topic directory.
///
/// ```text
/// offset 0 (after the segment header): entries u32 | reserved ... (one line)
/// offset 128: TopicEntry x entries (256 bytes each)
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct DirectoryControl {
    /// Number of [`TopicEntry`]s. Immutable.
    pub entries: u32,
    /// Reserved, zero.
    pub reserved: [u8; CACHE_LINE - 4],
}

/// Topic entry states (low 32 bits of [`TopicEntry::state`]).
///
/// ```text
/// FREE(e) --claim--> CREATING(e') --publish--> READY(e')     (e' > e)
///                        |
///                        +--creator died, or stalled past the wait--> FREE(e')
/// ```
///
/// `READY` is final: entries are never deleted. Any other value is
/// corruption.
pub mod entry {
    /// Unused (or given back by a creator that failed, died or stalled).
    pub const FREE: u32 = 0;
    /// A process holding the liveness lock of (entry, epoch) is creating
    /// the topic.
    pub const CREATING: u32 = 1;
    /// Ready: name, config and ring file are valid.
    pub const READY: u32 = 2;
}

/// One topic in the directory (two cache lines).
///
/// ```text
/// offset   0: state u64        epoch (high 32) | entry state (low 32)
/// offset   8: name length      \
/// offset  16: kind              |
/// offset  24: policy            |  field words, u64 each:
/// offset  32: max payload       |    epoch (high 32) | value (low 32)
/// offset  40: slots             |
/// offset  48: max subscribers   |
/// offset  56: max publishers    |
/// offset  64: creator pid       |
/// offset  72: claim timeout ns, low 32 bits
/// offset  80: claim timeout ns, high 32 bits
/// offset  88: name, 16 words of 4 bytes each (64 bytes)
/// offset 216: reserved (0) ... up to byte 256
/// ```
///
/// A creator moves the state `FREE(e) -> CREATING(e')` (with `e' > e`) by
/// compare-and-swap while holding the liveness lock of `(entry, e')`,
/// writes every field word tagged with `e'`, then moves `CREATING(e') ->
/// READY(e')` by compare-and-swap with `Release`. Field words are written
/// by compare-and-swap too, and only over a word of an older epoch: a
/// creator that stalled while another process took the entry over (a newer
/// epoch) can neither overwrite the new creator's fields nor publish its
/// own `READY`. A reader accepts a `READY(e)` entry only if every field
/// word carries epoch `e` and every value is valid.
///
/// The ring file of entry `i` at epoch `e` is `topic-<i>-<e>.bcast`: a
/// topic name never becomes a file name.
#[repr(C)]
#[derive(Debug)]
pub struct TopicEntry {
    /// Epoch (high 32 bits) and [`entry`] state (low 32 bits). Epochs only
    /// grow; 0 is never claimed, so `CREATING` and `READY` have epoch >= 1.
    pub state: AtomicU64,
    /// Bytes of `name` in use (1..=64), tagged.
    pub name_len: AtomicU64,
    /// Topic kind (1 broadcast), tagged.
    pub kind: AtomicU64,
    /// Ring policy, tagged.
    pub policy: AtomicU64,
    /// Largest payload, tagged.
    pub max_payload: AtomicU64,
    /// Record slots, tagged.
    pub slots: AtomicU64,
    /// Subscriber slots, tagged.
    pub max_subscribers: AtomicU64,
    /// Publisher slots, tagged.
    pub max_publishers: AtomicU64,
    /// Creator's pid, for humans only, tagged.
    pub creator_pid: AtomicU64,
    /// Claim timeout in nanoseconds, low 32 bits, tagged.
    pub claim_timeout_ns_lo: AtomicU64,
    /// Claim timeout in nanoseconds, high 32 bits, tagged.
    pub claim_timeout_ns_hi: AtomicU64,
    /// Topic name, 64 bytes as sixteen tagged words of four bytes each
    /// (little-endian within the value; zero past the name's length).
    pub name: [AtomicU64; 16],
    /// Pads to two lines.
    pub pad: [u8; 2 * CACHE_LINE - 216],
}

/// Words of a [`TopicEntry`]'s `name` (four name bytes each).
pub const TOPIC_NAME_WORDS: usize = 16;

/// Offset of the directory control block in its segment.
pub const DIRECTORY_CONTROL_OFFSET: usize = CACHE_LINE;
/// Offset of the first topic entry in the directory segment.
pub const DIRECTORY_ENTRIES_OFFSET: usize = DIRECTORY_CONTROL_OFFSET + CACHE_LINE;

// ---------------------------------------------------------------------------
// Compile-time layout checks (normal builds only: loom's atomics have another
// size, and loom never maps shared memory).
// ---------------------------------------------------------------------------

#[cfg(not(shmbus_loom))]
mod checks {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    const _: () = assert!(size_of::<SegmentHeader>() == CACHE_LINE);
    const _: () = assert!(offset_of!(SegmentHeader, magic_version) == 0);
    const _: () = assert!(offset_of!(SegmentHeader, layout_hash) == 8);
    const _: () = assert!(offset_of!(SegmentHeader, segment_size) == 16);
    const _: () = assert!(offset_of!(SegmentHeader, kind) == 24);
    const _: () = assert!(offset_of!(SegmentHeader, state) == 28);
    const _: () = assert!(offset_of!(SegmentHeader, creator_pid) == 32);
    const _: () = assert!(offset_of!(SegmentHeader, removed) == 36);
    const _: () = assert!(offset_of!(SegmentHeader, created_realtime_ns) == 40);
    const _: () = assert!(offset_of!(SegmentHeader, reserved1) == 48);
    const _: () = assert!(align_of::<SegmentHeader>() == 8);

    const _: () = assert!(size_of::<SpscControl>() == 3 * CACHE_LINE);
    const _: () = assert!(offset_of!(SpscControl, capacity) == 0);
    const _: () = assert!(offset_of!(SpscControl, max_payload) == 8);
    const _: () = assert!(offset_of!(SpscControl, producer_pid) == 16);
    const _: () = assert!(offset_of!(SpscControl, consumer_pid) == 20);
    const _: () = assert!(offset_of!(SpscControl, flags) == 12);
    const _: () = assert!(offset_of!(SpscControl, wake_seq) == 24);
    const _: () = assert!(offset_of!(SpscControl, sleepers) == 28);
    const _: () = assert!(offset_of!(SpscControl, tail) == CACHE_LINE);
    const _: () = assert!(offset_of!(SpscControl, head) == 2 * CACHE_LINE);
    const _: () = assert!(SPSC_DATA_OFFSET == 512);
    const _: () = assert!(SPSC_DATA_OFFSET % CACHE_LINE == 0);

    const _: () = assert!(size_of::<BroadcastControl>() == 5 * CACHE_LINE);
    const _: () = assert!(offset_of!(BroadcastControl, slot_stride) == 8);
    const _: () = assert!(offset_of!(BroadcastControl, policy) == 16);
    const _: () = assert!(offset_of!(BroadcastControl, claim_timeout_ns) == 32);
    const _: () = assert!(offset_of!(BroadcastControl, tail) == CACHE_LINE);
    const _: () = assert!(offset_of!(BroadcastControl, gate) == 2 * CACHE_LINE);
    const _: () = assert!(offset_of!(BroadcastControl, registrations) == 2 * CACHE_LINE + 8);
    const _: () = assert!(offset_of!(SubscriberSlot, sleeping) == 36);
    const _: () = assert!(offset_of!(BroadcastControl, wake_seq) == 3 * CACHE_LINE);
    const _: () = assert!(offset_of!(BroadcastControl, sleepers) == 3 * CACHE_LINE + 4);
    const _: () = assert!(offset_of!(BroadcastControl, reclaimed_claims) == 4 * CACHE_LINE);
    const _: () = assert!(size_of::<SubscriberSlot>() == CACHE_LINE);
    const _: () = assert!(offset_of!(SubscriberSlot, cursor) == 8);
    const _: () = assert!(offset_of!(SubscriberSlot, heartbeat_ns) == 16);
    const _: () = assert!(offset_of!(SubscriberSlot, missed) == 24);
    const _: () = assert!(offset_of!(SubscriberSlot, name_len) == 32);
    const _: () = assert!(offset_of!(SubscriberSlot, name) == 40);
    const _: () = assert!(size_of::<PublisherSlot>() == CACHE_LINE);
    const _: () = assert!(offset_of!(PublisherSlot, published) == 8);
    const _: () = assert!(offset_of!(PublisherSlot, claimed) == 16);
    const _: () = assert!(offset_of!(PublisherSlot, reclaimed) == 24);
    const _: () = assert!(BROADCAST_SUBSCRIBERS_OFFSET == 768);
    const _: () = assert!(size_of::<RecordSlotHeader>() == SLOT_HEADER_LEN);
    const _: () = assert!(offset_of!(RecordSlotHeader, word) == 8);

    const _: () = assert!(size_of::<DirectoryControl>() == CACHE_LINE);
    const _: () = assert!(size_of::<TopicEntry>() == 2 * CACHE_LINE);
    const _: () = assert!(offset_of!(TopicEntry, state) == 0);
    const _: () = assert!(offset_of!(TopicEntry, name_len) == 8);
    const _: () = assert!(offset_of!(TopicEntry, kind) == 16);
    const _: () = assert!(offset_of!(TopicEntry, policy) == 24);
    const _: () = assert!(offset_of!(TopicEntry, max_payload) == 32);
    const _: () = assert!(offset_of!(TopicEntry, slots) == 40);
    const _: () = assert!(offset_of!(TopicEntry, max_subscribers) == 48);
    const _: () = assert!(offset_of!(TopicEntry, max_publishers) == 56);
    const _: () = assert!(offset_of!(TopicEntry, creator_pid) == 64);
    const _: () = assert!(offset_of!(TopicEntry, claim_timeout_ns_lo) == 72);
    const _: () = assert!(offset_of!(TopicEntry, claim_timeout_ns_hi) == 80);
    const _: () = assert!(offset_of!(TopicEntry, name) == 88);
    const _: () = assert!(offset_of!(TopicEntry, pad) == 216);
    const _: () = assert!(DIRECTORY_ENTRIES_OFFSET == 256);
}

/// FNV-1a over a list of numbers, usable in `const` context.
const fn fnv1a(words: &[u64]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < words.len() {
        let bytes = words[i].to_le_bytes();
        let mut j = 0;
        while j < 8 {
            hash ^= bytes[j] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            j += 1;
        }
        i += 1;
    }
    hash
}

/// Hash of everything two builds must agree on to share a segment: field
/// sizes and offsets, cache-line size, pointer width and byte order.
pub const fn layout_hash(fields: &[u64]) -> u64 {
    let env = [
        CACHE_LINE as u64,
        usize::BITS as u64,
        cfg!(target_endian = "little") as u64,
        RECORD_HEADER_LEN as u64,
        RECORD_ALIGN as u64,
        KNOWN_FLAGS as u64,
    ];
    fnv1a(&env) ^ fnv1a(fields).rotate_left(17)
}

#[cfg(not(shmbus_loom))]
const SPSC_FIELDS: [u64; 14] = {
    use core::mem::{offset_of, size_of};
    [
        size_of::<SegmentHeader>() as u64,
        offset_of!(SegmentHeader, layout_hash) as u64,
        offset_of!(SegmentHeader, segment_size) as u64,
        offset_of!(SegmentHeader, kind) as u64,
        offset_of!(SegmentHeader, state) as u64,
        offset_of!(SegmentHeader, created_realtime_ns) as u64
            + offset_of!(SegmentHeader, removed) as u64 * 1000,
        size_of::<SpscControl>() as u64,
        offset_of!(SpscControl, capacity) as u64,
        offset_of!(SpscControl, max_payload) as u64,
        offset_of!(SpscControl, producer_pid) as u64
            + offset_of!(SpscControl, sleepers) as u64 * 1000,
        offset_of!(SpscControl, tail) as u64,
        offset_of!(SpscControl, head) as u64,
        SPSC_CONTROL_OFFSET as u64,
        SPSC_DATA_OFFSET as u64,
    ]
};
#[cfg(shmbus_loom)]
const SPSC_FIELDS: [u64; 0] = [];

/// Layout hash of an SPSC segment as this build lays it out.
pub const SPSC_LAYOUT_HASH: u64 = layout_hash(&SPSC_FIELDS);

#[cfg(not(shmbus_loom))]
const BROADCAST_FIELDS: [u64; 16] = {
    use core::mem::{offset_of, size_of};
    [
        size_of::<SegmentHeader>() as u64,
        size_of::<BroadcastControl>() as u64,
        offset_of!(BroadcastControl, max_payload) as u64,
        offset_of!(BroadcastControl, claim_timeout_ns) as u64,
        offset_of!(BroadcastControl, tail) as u64,
        offset_of!(BroadcastControl, gate) as u64,
        offset_of!(BroadcastControl, wake_seq) as u64,
        offset_of!(BroadcastControl, reclaimed_claims) as u64,
        size_of::<SubscriberSlot>() as u64,
        offset_of!(SubscriberSlot, cursor) as u64,
        offset_of!(SubscriberSlot, sleeping) as u64 * 1000
            + offset_of!(SubscriberSlot, name) as u64,
        size_of::<PublisherSlot>() as u64
            + offset_of!(BroadcastControl, registrations) as u64 * 1000,
        SLOT_HEADER_LEN as u64,
        offset_of!(PublisherSlot, claimed) as u64,
        offset_of!(PublisherSlot, reclaimed) as u64,
        stamp(1, STAMP_SKIPPED),
    ]
};
#[cfg(shmbus_loom)]
const BROADCAST_FIELDS: [u64; 0] = [];

/// Layout hash of a broadcast segment as this build lays it out.
pub const BROADCAST_LAYOUT_HASH: u64 = layout_hash(&BROADCAST_FIELDS);

#[cfg(not(shmbus_loom))]
const DIRECTORY_FIELDS: [u64; 11] = {
    use core::mem::{offset_of, size_of};
    [
        size_of::<SegmentHeader>() as u64,
        size_of::<DirectoryControl>() as u64,
        size_of::<TopicEntry>() as u64,
        offset_of!(TopicEntry, name_len) as u64,
        offset_of!(TopicEntry, kind) as u64 * 1000 + offset_of!(TopicEntry, policy) as u64,
        offset_of!(TopicEntry, slots) as u64,
        offset_of!(TopicEntry, creator_pid) as u64,
        offset_of!(TopicEntry, claim_timeout_ns_lo) as u64 * 1000
            + offset_of!(TopicEntry, claim_timeout_ns_hi) as u64,
        offset_of!(TopicEntry, name) as u64,
        TOPIC_NAME_WORDS as u64,
        DIRECTORY_ENTRIES_OFFSET as u64,
    ]
};
#[cfg(shmbus_loom)]
const DIRECTORY_FIELDS: [u64; 0] = [];

/// Layout hash of a directory segment as this build lays it out.
pub const DIRECTORY_LAYOUT_HASH: u64 = layout_hash(&DIRECTORY_FIELDS);

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
}
