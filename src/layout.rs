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
pub const LAYOUT_VERSION: u32 = 1;

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
}

impl SegmentKind {
    /// Decodes a kind read from shared memory (hostile input).
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(SegmentKind::Spsc),
            _ => None,
        }
    }

    /// Short lowercase name for messages and tools.
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Spsc => "spsc",
        }
    }

    /// Layout hash expected for segments of this kind.
    pub fn layout_hash(self) -> u64 {
        match self {
            SegmentKind::Spsc => SPSC_LAYOUT_HASH,
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
/// |                 reserved (0)                                  |
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
    /// Reserved, zero.
    pub reserved0: u32,
    /// Creation time, `CLOCK_REALTIME` nanoseconds, for humans only.
    pub created_realtime_ns: u64,
    /// Reserved, zero.
    pub reserved1: [u8; 80],
}

/// [`SegmentHeader::state`] value of a segment a reader declared corrupt.
pub const STATE_POISONED: u32 = 1;

/// Control block of an SPSC ring: three cache lines after the segment header.
///
/// ```text
/// line 0 (offset   0): capacity u64 | max payload u32 | reserved u32 |
///                      producer pid u32 | consumer pid u32 | reserved ...
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
    /// Reserved, zero.
    pub reserved0: u32,
    /// Pid of the attached producer or 0, for humans only.
    pub producer_pid: AtomicU32,
    /// Pid of the attached consumer or 0, for humans only.
    pub consumer_pid: AtomicU32,
    /// Pads line 0.
    pub pad0: [u8; CACHE_LINE - 24],
    /// Producer position: end of the last published record.
    pub tail: AtomicU64,
    /// Pads line 1.
    pub pad1: [u8; CACHE_LINE - 8],
    /// Consumer position: end of the last released record.
    pub head: AtomicU64,
    /// Pads line 2.
    pub pad2: [u8; CACHE_LINE - 8],
}

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
pub const RECORD_HEADER_LEN: usize = 8;

/// Record flag: this frame is padding up to the end of the region; skip it.
pub const FLAG_PADDING: u16 = 1;
/// Every flag bit this build understands; any other bit set is corruption.
pub const KNOWN_FLAGS: u16 = FLAG_PADDING;

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
    const _: () = assert!(offset_of!(SegmentHeader, created_realtime_ns) == 40);
    const _: () = assert!(offset_of!(SegmentHeader, reserved1) == 48);
    const _: () = assert!(align_of::<SegmentHeader>() == 8);

    const _: () = assert!(size_of::<SpscControl>() == 3 * CACHE_LINE);
    const _: () = assert!(offset_of!(SpscControl, capacity) == 0);
    const _: () = assert!(offset_of!(SpscControl, max_payload) == 8);
    const _: () = assert!(offset_of!(SpscControl, producer_pid) == 16);
    const _: () = assert!(offset_of!(SpscControl, consumer_pid) == 20);
    const _: () = assert!(offset_of!(SpscControl, tail) == CACHE_LINE);
    const _: () = assert!(offset_of!(SpscControl, head) == 2 * CACHE_LINE);
    const _: () = assert!(SPSC_DATA_OFFSET == 512);
    const _: () = assert!(SPSC_DATA_OFFSET % CACHE_LINE == 0);
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
        offset_of!(SegmentHeader, created_realtime_ns) as u64,
        size_of::<SpscControl>() as u64,
        offset_of!(SpscControl, capacity) as u64,
        offset_of!(SpscControl, max_payload) as u64,
        offset_of!(SpscControl, producer_pid) as u64,
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
