//! Read-only snapshots of live segments, used by `ring-dump`.
//!
//! Everything here opens segments with [`Segment::open_read_only`]: the
//! mapping is `PROT_READ`, no liveness lock is taken and no byte is written,
//! so inspecting a ring can never disturb the processes using it. Liveness of
//! the producer and consumer is read from their OFD locks with a lock query
//! (`F_OFD_GETLK`), which takes nothing.
//!
//! What is read from the ring is hostile input exactly as it is for the
//! consumer: positions and record headers are loaded once into locals,
//! checked with checked arithmetic, and any inconsistency becomes a typed
//! [`Corruption`], never a panic or an out-of-bounds read. Records are
//! **copied** out of the mapping, because the producer may reuse their bytes
//! as soon as the consumer releases them; after each copy the walk re-reads
//! the consumer position, and if the consumer has passed the record the copy
//! may be stale, so the walk stops with [`InspectError::Overtaken`] rather
//! than show bytes that were never a record.
//!
//! Topics are found through the namespace's topic directory, opened
//! read-only as well. A topic's broadcast log is checked against the
//! configuration the directory records for it before anything else is read;
//! its last records are copied out under their seqlock stamps (a record a
//! publisher overwrites during the copy is never shown), and can be decoded
//! as Protocol V2 messages with [`decode_v2`].
//!
//! # Examples
//!
//! ```
//! use shmbus::{Namespace, inspect, ring::spsc::{SpscConfig, SpscRing}};
//! use shmbus::segment::OpenOptions;
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-inspect-{}", std::process::id()));
//! let ns = Namespace::at(&tmp, "doc")?;
//! SpscRing::create(&ns, "fills", SpscConfig::with_capacity(4096))?;
//! SpscRing::producer(&ns, "fills")?.try_send(3, b"FILL 100")?;
//!
//! let ring = inspect::SpscInspector::open(&ns, "fills", &OpenOptions::default())?;
//! let snap = ring.snapshot()?;
//! assert_eq!((snap.head, snap.tail, snap.used_bytes), (0, 16, 16));
//! assert!(!snap.producer.attached); // the producer above was dropped
//!
//! let records: Vec<_> = ring.records(&snap, 16, 64).collect::<Result<_, _>>()?;
//! assert_eq!(records[0].record_type, 3);
//! assert_eq!(records[0].payload, b"FILL 100");
//! # SpscRing::remove(&ns, "fills")?;
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use crate::directory::{Directory, DirectoryEntry, DirectoryError, TopicRecord};
use crate::layout::lock_slot;
use crate::layout::{
    frame_len, participant, split_stamp, stamp_committed, unpack_record_header, BroadcastControl,
    PublisherSlot, RecordSlotHeader, SegmentKind, SpscControl, SubscriberSlot,
    BROADCAST_CONTROL_OFFSET, BROADCAST_SUBSCRIBERS_OFFSET, CACHE_LINE, FLAG_PADDING, KNOWN_FLAGS,
    LAYOUT_VERSION, RECORD_HEADER_LEN, SLOT_HEADER_LEN, SPSC_CONTROL_OFFSET, SPSC_DATA_OFFSET,
    STATE_POISONED,
};
use crate::record::{Form, MessageView, ParseError, ParseOptions, RelayDomain, SourceType, Verify};
use crate::ring::broadcast::Policy;
use crate::ring::{Corruption, CorruptionKind};
use crate::segment::{validate_name, Namespace, OpenOptions, Segment, SegmentError};
use crate::sync::{fence, load_word, monotonic_ns, spin_hint, Ordering};

/// How many times [`SpscInspector::snapshot`] retries to read the two
/// positions at one instant before it settles for a sample taken while the
/// consumer was moving.
const STABLE_READ_ATTEMPTS: u32 = 1024;

/// Whether a ring role (producer or consumer) is taken, and by whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleInfo {
    /// A live process holds the role's liveness lock. This is the proof of
    /// life: the kernel drops the lock when the process dies.
    pub attached: bool,
    /// Pid the role's holder wrote when it attached, 0 after a clean detach.
    /// For humans only: pids are reused, and a killed process leaves its pid
    /// behind, so trust [`RoleInfo::attached`], not this.
    pub pid: u32,
}

/// What an SPSC ring looked like at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct SpscSnapshot {
    /// Ring name in its namespace.
    pub name: String,
    /// The segment file.
    pub path: PathBuf,
    /// Layout version in the header (equal to [`LAYOUT_VERSION`]: others are
    /// refused on open).
    pub layout_version: u32,
    /// Layout hash in the header.
    pub layout_hash: u64,
    /// Segment size in bytes, header included.
    pub segment_size: u64,
    /// Pid of the process that created the segment (informational).
    pub creator_pid: u32,
    /// Creation time, `CLOCK_REALTIME` nanoseconds since the Unix epoch.
    pub created_realtime_ns: u64,
    /// A reader marked the segment poisoned after opening it (an open of a
    /// segment already poisoned fails instead).
    pub poisoned: bool,
    /// Bytes in the data region.
    pub capacity: u64,
    /// Largest payload one record may carry.
    pub max_payload: u32,
    /// Consumer position: end of the last released record.
    pub head: u64,
    /// Producer position: end of the last published record.
    pub tail: u64,
    /// Bytes published and not yet released: `tail - head`, at most
    /// `capacity`. Includes frame headers and padding.
    pub used_bytes: u64,
    /// Whether `head` and `tail` were read at one instant. On a very busy
    /// ring the consumer may move between the two loads every time; then
    /// this is false, `used_bytes` is approximate and a record walk may stop
    /// early with [`InspectError::Overtaken`].
    pub consistent: bool,
    /// The producer role.
    pub producer: RoleInfo,
    /// The consumer role.
    pub consumer: RoleInfo,
}

impl SpscSnapshot {
    /// Bytes the producer could still publish before the ring is full.
    pub fn free_bytes(&self) -> u64 {
        self.capacity.saturating_sub(self.used_bytes)
    }

    /// `used_bytes` as a percentage of `capacity` (0.0 ..= 100.0).
    pub fn occupancy_percent(&self) -> f64 {
        if self.capacity == 0 {
            return 0.0;
        }
        self.used_bytes as f64 * 100.0 / self.capacity as f64
    }
}

/// One record copied out of a ring by a [`RecordWalk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpscRecord {
    /// Ring position of the record's frame header.
    pub position: u64,
    /// Record type set by the producer.
    pub record_type: u16,
    /// Flags in the frame header (never [`FLAG_PADDING`]: padding is skipped).
    pub flags: u16,
    /// Full payload length in bytes.
    pub len: u32,
    /// The first `min(len, max_copy)` payload bytes.
    pub payload: Vec<u8>,
}

impl SpscRecord {
    /// Whether `payload` holds fewer bytes than the record.
    pub fn is_truncated(&self) -> bool {
        (self.payload.len() as u64) < u64::from(self.len)
    }
}

/// Why a ring could not be inspected, or why a record walk stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum InspectError {
    /// Opening or validating the segment failed: not found, not a shmbus
    /// segment, wrong version or layout, poisoned, bad control block,
    /// permissions.
    Segment(SegmentError),
    /// The positions or a record in the ring are inconsistent.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// What was wrong, and where.
        corruption: Corruption,
    },
    /// The consumer released the record being copied, so the producer may
    /// have overwritten it: the walk stopped before showing stale bytes.
    /// Not a fault of the ring; inspect again for a fresh view.
    Overtaken {
        /// The segment file.
        path: PathBuf,
        /// Position of the record that was being read.
        position: u64,
        /// Consumer position seen after reading it.
        head: u64,
    },
    /// The namespace has no topic directory: no topic was ever created in
    /// it.
    NoDirectory {
        /// Where the directory would be.
        path: PathBuf,
    },
    /// The topic directory could not be opened or is invalid.
    Directory(DirectoryError),
    /// The topic directory has no ready topic of that name.
    TopicNotFound {
        /// The namespace.
        namespace: String,
        /// The topic asked for.
        topic: String,
    },
    /// A publisher overwrote the log record being copied (a live
    /// `Overwrite` log lapping the walk): the walk stopped before showing
    /// stale bytes. Not a fault of the log; inspect again for a fresh view.
    Overwritten {
        /// The log's segment file.
        path: PathBuf,
        /// Sequence number of the record that was being read.
        sequence: u64,
    },
}

impl From<SegmentError> for InspectError {
    fn from(e: SegmentError) -> Self {
        InspectError::Segment(e)
    }
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::Segment(e) => e.fmt(f),
            InspectError::Corrupt { path, corruption } => {
                write!(f, "{} is corrupt: {corruption}", path.display())
            }
            InspectError::Overtaken {
                path,
                position,
                head,
            } => write!(
                f,
                "{}: the consumer (now at {head}) passed the record at {position} while it was read (live ring; inspect again)",
                path.display()
            ),
            InspectError::NoDirectory { path } => write!(
                f,
                "no topic directory: {} does not exist (no topic was ever created in this namespace)",
                path.display()
            ),
            InspectError::Directory(e) => e.fmt(f),
            InspectError::TopicNotFound { namespace, topic } => {
                write!(f, "no topic \"{topic}\" in namespace {namespace}")
            }
            InspectError::Overwritten { path, sequence } => write!(
                f,
                "{}: a publisher overwrote record {sequence} while it was read (live log; inspect again)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for InspectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InspectError::Segment(e) => Some(e),
            InspectError::Corrupt { corruption, .. } => Some(corruption),
            InspectError::Directory(e) => Some(e),
            InspectError::Overtaken { .. }
            | InspectError::NoDirectory { .. }
            | InspectError::TopicNotFound { .. }
            | InspectError::Overwritten { .. } => None,
        }
    }
}

/// An SPSC ring opened read-only for inspection.
///
/// Holds the read-only mapping and the validated immutable configuration;
/// every [`SpscInspector::snapshot`] reads the moving parts afresh.
#[derive(Debug)]
pub struct SpscInspector {
    segment: Segment,
    name: String,
    capacity: u64,
    max_payload: u32,
}

impl SpscInspector {
    /// Opens the ring `name` in `ns` read-only and validates its header and
    /// control block.
    ///
    /// # Errors
    ///
    /// [`InspectError::Segment`] with every [`Segment::open_read_only`]
    /// error, or [`SegmentError::Corrupt`] if the control block does not fit
    /// the segment.
    pub fn open(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<Self, InspectError> {
        let segment = Segment::open_read_only(ns, name, SegmentKind::Spsc, opts)?;
        let (capacity, max_payload, _) = crate::ring::spsc::validate_control(&segment)?;
        Ok(SpscInspector {
            segment,
            name: name.to_owned(),
            capacity,
            max_payload,
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        self.segment.path()
    }

    /// Bytes in the data region.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Largest payload one record may carry.
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    fn control(&self) -> &SpscControl {
        // SAFETY: `validate_control` checked that the mapping holds a control
        // block at SPSC_CONTROL_OFFSET (128-aligned in a page-aligned
        // mapping); the mapping lives as long as `self`. It is read-only and
        // only read through Relaxed atomic loads of at most 8 bytes, which
        // are valid on read-only memory.
        unsafe { &*(self.segment.base().add(SPSC_CONTROL_OFFSET) as *const SpscControl) }
    }

    /// Reads the consumer position with `Acquire` semantics.
    fn load_head(&self) -> u64 {
        // A Relaxed load plus an Acquire fence rather than an Acquire load:
        // the mapping is PROT_READ, and Rust only promises that small
        // Relaxed atomic loads work on read-only memory.
        let head = self.control().head.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the consumer's Release store of `head` in
        // `Consumer::release`: what it read before releasing happened before
        // anything this process reads after the fence.
        core::sync::atomic::fence(Ordering::Acquire);
        head
    }

    /// Reads the producer position with `Acquire` semantics.
    fn load_tail(&self) -> u64 {
        let tail = self.control().tail.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the producer's Release store of `tail` in
        // `Producer::flush`: every frame before `tail` is completely
        // written for reads after this fence.
        core::sync::atomic::fence(Ordering::Acquire);
        tail
    }

    /// Reads the header, positions, occupancy and liveness of the ring now.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] if the positions are misaligned or out of
    /// range of each other, or [`InspectError::Segment`] if a lock query
    /// fails.
    pub fn snapshot(&self) -> Result<SpscSnapshot, InspectError> {
        let corrupt = |kind, position| InspectError::Corrupt {
            path: self.path().to_owned(),
            corruption: Corruption { kind, position },
        };
        let header = self.segment.header();
        let magic_version = header.magic_version.load(Ordering::Relaxed);
        let layout_version = (magic_version >> 32) as u32;
        debug_assert_eq!(layout_version, LAYOUT_VERSION);

        // head and tail live on different lines and move independently. Read
        // head, tail, head: if head did not move, tail was read while head had
        // that value, and `head <= tail <= head + capacity` must hold.
        let mut attempt = 0;
        let (head, tail, consistent) = loop {
            let head = self.load_head();
            let tail = self.load_tail();
            let again = self.load_head();
            if head == again {
                break (head, tail, true);
            }
            attempt += 1;
            if attempt >= STABLE_READ_ATTEMPTS {
                // Both only grow, and tail was read after head: tail >= head
                // still holds in a healthy ring; only the upper bound can be
                // off, because head moved on meanwhile.
                break (head, tail, false);
            }
            spin_hint();
        };
        if tail % 8 != 0 {
            return Err(corrupt(CorruptionKind::Misaligned { value: tail }, head));
        }
        if head % 8 != 0 {
            return Err(corrupt(CorruptionKind::Misaligned { value: head }, head));
        }
        if tail < head {
            return Err(corrupt(CorruptionKind::TailBehindHead { tail }, head));
        }
        let used = tail - head;
        if consistent && used > self.capacity {
            return Err(corrupt(CorruptionKind::TailTooFarAhead { tail }, head));
        }

        let control = self.control();
        Ok(SpscSnapshot {
            name: self.name.clone(),
            path: self.path().to_owned(),
            layout_version,
            layout_hash: header.layout_hash,
            segment_size: header.segment_size,
            creator_pid: header.creator_pid,
            created_realtime_ns: header.created_realtime_ns,
            poisoned: header.state.load(Ordering::Relaxed) == STATE_POISONED,
            capacity: self.capacity,
            max_payload: self.max_payload,
            head,
            tail,
            used_bytes: used.min(self.capacity),
            consistent,
            producer: RoleInfo {
                attached: self.segment.is_lock_held(lock_slot::SPSC_PRODUCER)?,
                pid: control.producer_pid.load(Ordering::Relaxed),
            },
            consumer: RoleInfo {
                attached: self.segment.is_lock_held(lock_slot::SPSC_CONSUMER)?,
                pid: control.consumer_pid.load(Ordering::Relaxed),
            },
        })
    }

    /// Walks the records published between `snapshot.head` and
    /// `snapshot.tail`, copying at most `max_records` of them and at most
    /// `max_copy` payload bytes of each. Padding frames are checked and
    /// skipped.
    ///
    /// The walk yields `Err` once and then ends: [`InspectError::Corrupt`]
    /// for an inconsistent record, [`InspectError::Overtaken`] when the
    /// consumer passed the record being copied.
    pub fn records(
        &self,
        snapshot: &SpscSnapshot,
        max_records: usize,
        max_copy: usize,
    ) -> RecordWalk<'_> {
        RecordWalk {
            ring: self,
            position: snapshot.head,
            tail: snapshot.tail,
            remaining: max_records,
            max_copy,
            done: false,
        }
    }

    /// Start of the data region.
    fn data(&self) -> *const u8 {
        // SAFETY: `validate_control` checked the mapping is exactly
        // SPSC_DATA_OFFSET + capacity bytes, so the offset is inside it.
        unsafe { self.segment.base().add(SPSC_DATA_OFFSET) }
    }

    /// Loads the 8-byte word at `index` of the data region.
    fn load_data_word(&self, index: u64) -> u64 {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity);
        // SAFETY: callers pass an 8-aligned index with index + 8 <= capacity
        // (masked positions, or offsets inside a frame checked to lie inside
        // the region); the region starts 128-aligned, so the word is aligned
        // and inside the mapping. `load_word` is a Relaxed 8-byte atomic
        // load: never torn by a concurrent writer, and valid on read-only
        // memory.
        unsafe { load_word(self.data().add(index as usize) as *const u64) }
    }
}

/// Iterator over the records of a ring, copied out of its mapping; made by
/// [`SpscInspector::records`].
#[derive(Debug)]
pub struct RecordWalk<'a> {
    ring: &'a SpscInspector,
    position: u64,
    tail: u64,
    remaining: usize,
    max_copy: usize,
    done: bool,
}

impl RecordWalk<'_> {
    /// Position of the next frame the walk would read.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Published bytes from [`RecordWalk::position`] to the snapshot's tail
    /// (records not shown, when the walk stopped at its limit).
    pub fn remaining_bytes(&self) -> u64 {
        self.tail.saturating_sub(self.position)
    }

    /// Copies `n` payload bytes of the frame at `index` (whose frame of
    /// `total` bytes was checked to lie inside the region).
    fn copy_payload(&self, index: u64, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.next_multiple_of(8));
        let mut offset = index + RECORD_HEADER_LEN as u64;
        while out.len() < n {
            // The payload is padded to 8 bytes inside its frame, so every
            // word up to the one holding byte n-1 is inside the frame.
            out.extend_from_slice(&self.ring.load_data_word(offset).to_ne_bytes());
            offset += 8;
        }
        out.truncate(n);
        out
    }

    /// Turns a finding about the frame at `position` into the error to
    /// report: if the consumer has passed it, the bytes read may belong to a
    /// newer lap, so the finding is not evidence of corruption.
    fn stop(&mut self, kind: CorruptionKind, position: u64) -> InspectError {
        self.done = true;
        self.overtaken(position)
            .unwrap_or_else(|| InspectError::Corrupt {
                path: self.ring.path().to_owned(),
                corruption: Corruption { kind, position },
            })
    }

    /// `Some(Overtaken)` if the consumer has released the frame at
    /// `position`, so the producer may have written over what was read.
    fn overtaken(&self, position: u64) -> Option<InspectError> {
        // The seqlock read pattern: this fence keeps the loads of the frame,
        // made before it, from being satisfied after the head load below.
        // SYNC POINT: seqlock reader side. The producer overwrites a frame
        // only after its Acquire load of `head` in `Producer::reserve` saw
        // the consumer's Release store (`Consumer::release`) pass it. If a
        // load above read a header the producer then published (its Release
        // store in `Producer::flush`), this fence pairs with that store
        // and the head load below sees the release; payload bytes written
        // but not yet published carry no such edge (no Release fence
        // precedes them).
        core::sync::atomic::fence(Ordering::Acquire);
        let head = self.ring.load_head();
        (head > position).then(|| InspectError::Overtaken {
            path: self.ring.path().to_owned(),
            position,
            head,
        })
    }
}

impl Iterator for RecordWalk<'_> {
    type Item = Result<SpscRecord, InspectError>;

    fn next(&mut self) -> Option<Self::Item> {
        let capacity = self.ring.capacity;
        let mask = capacity - 1;
        // Every iteration advances `position` by at least 8 bytes towards
        // `tail`, so the loop ends after at most capacity / 8 frames.
        while !self.done && self.remaining > 0 && self.position < self.tail {
            let position = self.position;
            let index = position & mask;
            let available = self.tail - position;
            let to_end = capacity - index;
            // Read the header once; from here on only the local copy is used.
            let (len, record_type, flags) = unpack_record_header(self.ring.load_data_word(index));
            if flags & !KNOWN_FLAGS != 0 {
                return Some(Err(
                    self.stop(CorruptionKind::UnknownFlags { flags }, position)
                ));
            }
            if flags & FLAG_PADDING != 0 {
                if u64::from(len) + RECORD_HEADER_LEN as u64 != to_end || to_end > available {
                    return Some(Err(self.stop(CorruptionKind::BadPadding { len }, position)));
                }
                if let Some(e) = self.overtaken(position) {
                    self.done = true;
                    return Some(Err(e));
                }
                self.position += to_end;
                continue;
            }
            if len > self.ring.max_payload {
                return Some(Err(
                    self.stop(CorruptionKind::LengthTooLarge { len }, position)
                ));
            }
            // len <= max_payload < capacity / 2, so this cannot overflow.
            let total = frame_len(len as usize) as u64;
            if total > to_end || total > available {
                return Some(Err(
                    self.stop(CorruptionKind::RecordOutOfBounds { len }, position)
                ));
            }
            let n = self.max_copy.min(len as usize);
            let payload = self.copy_payload(index, n);
            if let Some(e) = self.overtaken(position) {
                self.done = true;
                return Some(Err(e));
            }
            self.position += total;
            self.remaining -= 1;
            return Some(Ok(SpscRecord {
                position,
                record_type,
                flags,
                len,
                payload,
            }));
        }
        self.done = true;
        None
    }
}

impl std::iter::FusedIterator for RecordWalk<'_> {}

/// Names of the SPSC rings in `ns`, sorted.
///
/// # Errors
///
/// The namespace directory cannot be read.
pub fn list_spsc(ns: &Namespace) -> Result<Vec<String>, SegmentError> {
    ns.list(SegmentKind::Spsc)
}

/// Opens the ring `name` in `ns` read-only and takes a snapshot of it.
///
/// # Errors
///
/// As [`SpscInspector::open`] and [`SpscInspector::snapshot`].
pub fn inspect_spsc(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
) -> Result<SpscSnapshot, InspectError> {
    SpscInspector::open(ns, name, opts)?.snapshot()
}

/// Opens the ring `name` in `ns` read-only, takes a snapshot and copies up
/// to `max_records` of its published records (`max_copy` payload bytes of
/// each).
///
/// If the consumer overtakes the walk, the records copied before that are
/// returned; use [`SpscInspector::records`] to see why a walk stopped.
///
/// # Errors
///
/// As [`inspect_spsc`], and [`InspectError::Corrupt`] for a corrupt record.
pub fn spsc_records(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
    max_records: usize,
    max_copy: usize,
) -> Result<(SpscSnapshot, Vec<SpscRecord>), InspectError> {
    let ring = SpscInspector::open(ns, name, opts)?;
    let snapshot = ring.snapshot()?;
    let mut records = Vec::new();
    for record in ring.records(&snapshot, max_records, max_copy) {
        match record {
            Ok(r) => records.push(r),
            Err(InspectError::Overtaken { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((snapshot, records))
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

/// Human name of a [`participant`] state (`"unknown"` for a value no build
/// writes).
pub fn participant_state_name(state: u32) -> &'static str {
    match state {
        participant::FREE => "free",
        participant::CLAIMING => "claiming",
        participant::LIVE => "live",
        participant::DETACHED => "detached",
        _ => "unknown",
    }
}

/// Lower-case name of a log policy.
pub fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Backpressure => "backpressure",
        Policy::Overwrite => "overwrite",
    }
}

/// A publisher slot in use (not `FREE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherInfo {
    /// Index of the slot.
    pub slot: usize,
    /// [`participant`] state (see [`participant_state_name`]).
    pub state: u32,
    /// Pid its owner wrote, for humans only (pids are reused).
    pub pid: u32,
    /// Records this publisher committed.
    pub published: u64,
    /// A live process holds the slot's liveness lock: the proof of life.
    pub alive: bool,
}

/// A subscriber slot in use (not `FREE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Index of the slot.
    pub slot: usize,
    /// [`participant`] state (see [`participant_state_name`]); a durable
    /// subscriber whose process left is `DETACHED` and keeps its cursor.
    pub state: u32,
    /// Durable name, `None` for an anonymous subscriber.
    pub name: Option<String>,
    /// Pid its owner wrote, for humans only (pids are reused).
    pub pid: u32,
    /// Next sequence it will read.
    pub cursor: u64,
    /// Records published and not yet read: `tail - cursor` (0 if the
    /// cursor was read ahead of the tail).
    pub lag: u64,
    /// Records it lost to being lapped (`Overwrite`).
    pub missed: u64,
    /// Nanoseconds since its last heartbeat (`CLOCK_MONOTONIC`), `None` if
    /// it never wrote one. Subscribers beat on attach and every 1024 reads,
    /// so an idle but healthy subscriber can have an old heartbeat.
    pub heartbeat_age_ns: Option<u64>,
    /// A live process holds the slot's liveness lock: the proof of life.
    pub alive: bool,
}

/// What a topic's broadcast log looked like at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSnapshot {
    /// The directory's record of the topic: name, configuration (checked
    /// against the log's control block), log segment, entry, creator.
    pub topic: TopicRecord,
    /// The log's segment file.
    pub path: PathBuf,
    /// Layout version in the log's header.
    pub layout_version: u32,
    /// Layout hash in the log's header.
    pub layout_hash: u64,
    /// Log segment size in bytes, header included.
    pub segment_size: u64,
    /// Creation time, `CLOCK_REALTIME` nanoseconds since the Unix epoch.
    pub created_realtime_ns: u64,
    /// A reader marked the log poisoned after opening it.
    pub poisoned: bool,
    /// Bytes per record slot.
    pub slot_stride: u32,
    /// Claim timeout from the control block, in nanoseconds (the directory
    /// keeps it in milliseconds).
    pub claim_timeout_ns: u64,
    /// Next sequence to claim: records `0 .. tail` were claimed.
    pub tail: u64,
    /// Lower bound of the gating cursors last computed by a publisher
    /// (`Backpressure`).
    pub gate: u64,
    /// Subscriber registrations so far.
    pub registrations: u64,
    /// Subscribers asleep (or about to sleep) on the log's futex.
    pub sleepers: u32,
    /// Claims reclaimed after the claim timeout.
    pub reclaimed_claims: u64,
    /// Subscriber slots freed or detached after their owner died.
    pub reaped_subscribers: u64,
    /// Publisher slots freed after their owner died.
    pub reaped_publishers: u64,
    /// Publisher slots in use, by index.
    pub publishers: Vec<PublisherInfo>,
    /// Subscriber slots in use, by index.
    pub subscribers: Vec<SubscriberInfo>,
}

impl TopicSnapshot {
    /// Oldest sequence the log can still hold: `tail - slots`, or 0.
    pub fn oldest(&self) -> u64 {
        self.tail.saturating_sub(u64::from(self.topic.config.slots))
    }

    /// Publishers whose process holds their liveness lock.
    pub fn publishers_alive(&self) -> usize {
        self.publishers.iter().filter(|p| p.alive).count()
    }

    /// Subscribers whose process holds their liveness lock.
    pub fn subscribers_alive(&self) -> usize {
        self.subscribers.iter().filter(|s| s.alive).count()
    }

    /// Largest lag of any subscriber in use, detached durable ones included
    /// (under `Backpressure` they gate the publishers too); `None` without
    /// subscribers.
    pub fn max_lag(&self) -> Option<u64> {
        self.subscribers.iter().map(|s| s.lag).max()
    }
}

/// One committed record copied out of a topic's log by a [`LogWalk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Record type set by the publisher.
    pub record_type: u16,
    /// Flags in the slot header (always 0: no broadcast record flag is
    /// defined; skipped and reclaimed records are not shown).
    pub flags: u16,
    /// The whole payload.
    pub payload: Vec<u8>,
}

impl BroadcastRecord {
    /// The payload decoded as a Protocol V2 message (see [`decode_v2`]).
    ///
    /// # Errors
    ///
    /// The payload is not one whole Protocol V2 message.
    pub fn decode_v2(&self) -> Result<V2Summary, ParseError> {
        decode_v2(&self.payload)
    }
}

/// The header and item list of a Protocol V2 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Summary {
    /// Relay domain byte (1 market data, 2 signals, 3 execution, 4 system).
    pub relay_domain: u8,
    /// Protocol version byte.
    pub version: u8,
    /// Source service byte.
    pub source: u8,
    /// Header flags byte.
    pub flags: u8,
    /// The sender's sequence number.
    pub sequence: u64,
    /// The sender's timestamp, nanoseconds.
    pub timestamp_ns: u64,
    /// Stored CRC-32 (not verified: 0 on hot paths that skip it).
    pub checksum: u32,
    /// Every TLV item in wire order.
    pub tlvs: Vec<TlvSummary>,
}

impl V2Summary {
    /// The relay domain's name, if the byte is one of the four.
    pub fn domain_name(&self) -> Option<&'static str> {
        RelayDomain::from_u8(self.relay_domain).map(RelayDomain::name)
    }

    /// The source service's name, if the byte is a listed one.
    pub fn source_name(&self) -> Option<&'static str> {
        SourceType::from_u8(self.source).map(SourceType::name)
    }
}

/// One TLV item of a [`V2Summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvSummary {
    /// Its type number.
    pub tlv_type: u8,
    /// Framed with the 5-byte extended header.
    pub extended: bool,
    /// Payload length in bytes.
    pub len: usize,
}

/// Parses `bytes` as one whole Protocol V2 message, without verifying the
/// checksum (hot-path producers leave it 0), and summarises it.
///
/// # Errors
///
/// The first framing check that fails, as the parser reports it.
pub fn decode_v2(bytes: &[u8]) -> Result<V2Summary, ParseError> {
    let msg = MessageView::parse(bytes, ParseOptions::new(Verify::Off))?;
    let h = msg.header();
    Ok(V2Summary {
        relay_domain: h.relay_domain,
        version: h.version,
        source: h.source,
        flags: h.flags,
        sequence: h.sequence(),
        timestamp_ns: h.timestamp_ns(),
        checksum: h.checksum(),
        tlvs: msg
            .tlvs()
            .map(|t| TlvSummary {
                tlv_type: t.tlv_type,
                extended: t.form == Form::Extended,
                len: t.payload.len(),
            })
            .collect(),
    })
}

/// A topic's broadcast log opened read-only for inspection.
///
/// Holds the read-only mapping and the configuration validated against the
/// topic directory; every [`TopicInspector::snapshot`] reads the moving
/// parts afresh.
#[derive(Debug)]
pub struct TopicInspector {
    segment: Segment,
    topic: TopicRecord,
    slots: u64,
    stride: usize,
    max_payload: u32,
    claim_timeout_ns: u64,
    publishers_offset: usize,
    records_offset: usize,
}

impl TopicInspector {
    /// Finds topic `name` in the directory of `ns` and opens its log
    /// read-only (see [`TopicInspector::open_topic`]).
    ///
    /// # Errors
    ///
    /// [`InspectError::NoDirectory`], [`InspectError::Directory`] (with
    /// [`DirectoryError::Corrupt`] when an entry on the name's probe chain
    /// is corrupt: it might be this topic), [`InspectError::TopicNotFound`],
    /// or as [`TopicInspector::open_topic`].
    pub fn open(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<Self, InspectError> {
        validate_name(name)?;
        let topic = open_directory(ns, opts)?
            .lookup(name)
            .map_err(InspectError::Directory)?
            .ok_or_else(|| InspectError::TopicNotFound {
                namespace: ns.name().to_owned(),
                topic: name.to_owned(),
            })?;
        Self::open_topic(ns, topic, opts)
    }

    /// Opens the log of a topic the directory listed, read-only, and checks
    /// its control block against the directory's configuration: slot count,
    /// stride, payload, policy, participant counts and the segment size
    /// they imply.
    ///
    /// # Errors
    ///
    /// [`InspectError::Segment`] with every [`Segment::open_read_only`]
    /// error, or [`SegmentError::Corrupt`] if the control block disagrees
    /// with the directory or the segment.
    pub fn open_topic(
        ns: &Namespace,
        topic: TopicRecord,
        opts: &OpenOptions,
    ) -> Result<Self, InspectError> {
        let segment = Segment::open_read_only(ns, &topic.segment, SegmentKind::Broadcast, opts)?;
        let layout = crate::ring::broadcast::shm::check_log(&segment, &topic.config)?;
        Ok(TopicInspector {
            segment,
            slots: layout.slots,
            stride: layout.stride,
            max_payload: layout.max_payload,
            claim_timeout_ns: layout.claim_timeout_ns,
            publishers_offset: layout.publishers,
            records_offset: layout.records,
            topic,
        })
    }

    /// The directory's record of the topic.
    pub fn topic(&self) -> &TopicRecord {
        &self.topic
    }

    /// The log's segment file.
    pub fn path(&self) -> &Path {
        self.segment.path()
    }

    fn control(&self) -> &BroadcastControl {
        // SAFETY: `open_topic` checked that the mapping holds the control
        // block at BROADCAST_CONTROL_OFFSET (128-aligned in a page-aligned
        // mapping); the mapping lives as long as `self`. It is read-only and
        // only read through Relaxed atomic loads of at most 8 bytes, which
        // are valid on read-only memory.
        unsafe { &*(self.segment.base().add(BROADCAST_CONTROL_OFFSET) as *const BroadcastControl) }
    }

    /// Subscriber slot `i` (`i < max_subscribers`).
    fn subscriber(&self, i: usize) -> &SubscriberSlot {
        debug_assert!(i < self.topic.config.max_subscribers as usize);
        // SAFETY: the segment size was checked to hold max_subscribers slots
        // of one cache line from BROADCAST_SUBSCRIBERS_OFFSET; only Relaxed
        // atomic loads are made through the reference.
        unsafe {
            &*(self
                .segment
                .base()
                .add(BROADCAST_SUBSCRIBERS_OFFSET + i * CACHE_LINE)
                as *const SubscriberSlot)
        }
    }

    /// Publisher slot `j` (`j < max_publishers`).
    fn publisher(&self, j: usize) -> &PublisherSlot {
        debug_assert!(j < self.topic.config.max_publishers as usize);
        // SAFETY: the segment size was checked to hold max_publishers slots
        // of one cache line from `publishers_offset`; only Relaxed atomic
        // loads are made through the reference.
        unsafe {
            &*(self
                .segment
                .base()
                .add(self.publishers_offset + j * CACHE_LINE)
                as *const PublisherSlot)
        }
    }

    /// Byte offset of the record slot holding sequence `seq`.
    fn slot_offset(&self, seq: u64) -> usize {
        // slots is a power of two (the directory's configuration was
        // validated and the control block matched it).
        self.records_offset + (seq & (self.slots - 1)) as usize * self.stride
    }

    /// The header of the record slot holding `seq`.
    fn record_header(&self, seq: u64) -> &RecordSlotHeader {
        // SAFETY: the segment size was checked to hold `slots` record slots
        // of `stride` bytes from `records_offset`, and the index is masked,
        // so the header is inside the mapping, 64-aligned; only Relaxed
        // atomic loads are made through the reference.
        unsafe { &*(self.segment.base().add(self.slot_offset(seq)) as *const RecordSlotHeader) }
    }

    /// Loads an `Acquire`-ordered word of the control block.
    fn load_acquire(word: &crate::sync::AtomicU64) -> u64 {
        // A Relaxed load plus an Acquire fence rather than an Acquire load:
        // the mapping is PROT_READ, and Rust only promises that small
        // Relaxed atomic loads work on read-only memory.
        let value = word.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the Release (or AcqRel) writes of the
        // word's owner (publishers' claims of `tail`, the gate scan,
        // subscribers' cursor releases): what they wrote before is visible
        // to the reads after this fence.
        fence(Ordering::Acquire);
        value
    }

    /// Reads the header, positions, counters and participants of the log
    /// now.
    ///
    /// Participants are read slot by slot while the log runs, so the
    /// snapshot is not one instant; the tail is read after every cursor, so
    /// in a healthy log no lag is negative.
    ///
    /// # Errors
    ///
    /// [`InspectError::Segment`] if a lock query fails.
    pub fn snapshot(&self) -> Result<TopicSnapshot, InspectError> {
        let header = self.segment.header();
        let layout_version = (header.magic_version.load(Ordering::Relaxed) >> 32) as u32;
        debug_assert_eq!(layout_version, LAYOUT_VERSION);
        let control = self.control();
        let now = monotonic_ns();

        let mut publishers = Vec::new();
        for j in 0..self.topic.config.max_publishers as usize {
            let p = self.publisher(j);
            let state = participant::state(p.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            publishers.push(PublisherInfo {
                slot: j,
                state,
                pid: p.pid.load(Ordering::Relaxed),
                published: p.published.load(Ordering::Relaxed),
                alive: self.segment.is_lock_held(lock_slot::publisher(j))?,
            });
        }

        let mut subscribers = Vec::new();
        for i in 0..self.topic.config.max_subscribers as usize {
            let s = self.subscriber(i);
            let state = participant::state(s.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            let cursor = Self::load_acquire(&s.cursor);
            let heartbeat = s.heartbeat_ns.load(Ordering::Relaxed);
            subscribers.push(SubscriberInfo {
                slot: i,
                state,
                name: s.name(),
                pid: s.pid.load(Ordering::Relaxed),
                cursor,
                lag: 0,
                missed: s.missed.load(Ordering::Relaxed),
                heartbeat_age_ns: (heartbeat != 0).then(|| now.saturating_sub(heartbeat)),
                alive: self.segment.is_lock_held(lock_slot::subscriber(i))?,
            });
        }

        // Read after every cursor: a cursor never passes the tail, so a lag
        // computed against this tail is never negative in a healthy log.
        let tail = Self::load_acquire(&control.tail);
        for s in &mut subscribers {
            s.lag = tail.saturating_sub(s.cursor);
        }

        Ok(TopicSnapshot {
            topic: self.topic.clone(),
            path: self.path().to_owned(),
            layout_version,
            layout_hash: header.layout_hash,
            segment_size: header.segment_size,
            created_realtime_ns: header.created_realtime_ns,
            poisoned: header.state.load(Ordering::Relaxed) == STATE_POISONED,
            slot_stride: self.stride as u32,
            claim_timeout_ns: self.claim_timeout_ns,
            tail,
            gate: Self::load_acquire(&control.gate),
            registrations: control.registrations.load(Ordering::Relaxed),
            sleepers: control.sleepers.load(Ordering::Relaxed),
            reclaimed_claims: control.reclaimed_claims.load(Ordering::Relaxed),
            reaped_subscribers: control.reaped_subscribers.load(Ordering::Relaxed),
            reaped_publishers: control.reaped_publishers.load(Ordering::Relaxed),
            publishers,
            subscribers,
        })
    }

    /// Walks the committed records of the log from `snapshot.tail - 1`
    /// down to the oldest the log can hold, copying at most `max_records`
    /// of them. Slots not committed for their sequence (a claim in
    /// progress, or never written) and skip records are passed over.
    ///
    /// The walk yields `Err` once and then ends: [`InspectError::Corrupt`]
    /// for a record with unknown flags or an impossible length,
    /// [`InspectError::Overwritten`] when a publisher reused the slot being
    /// copied (older records are gone too).
    pub fn records(&self, snapshot: &TopicSnapshot, max_records: usize) -> LogWalk<'_> {
        LogWalk {
            log: self,
            below: snapshot.tail,
            oldest: snapshot.oldest(),
            remaining: max_records,
            done: false,
        }
    }
}

/// Iterator over the last committed records of a topic's log, newest
/// first, copied out of its mapping; made by [`TopicInspector::records`].
#[derive(Debug)]
pub struct LogWalk<'a> {
    log: &'a TopicInspector,
    /// Every sequence at or above this one was looked at.
    below: u64,
    oldest: u64,
    remaining: usize,
    done: bool,
}

impl LogWalk<'_> {
    /// Sequences below the walk's position that the log may still hold
    /// (records not shown, when the walk stopped at its limit).
    pub fn remaining_sequences(&self) -> u64 {
        self.below.saturating_sub(self.oldest)
    }

    /// Sequence just above the next one the walk would look at.
    pub fn position(&self) -> u64 {
        self.below
    }

    /// Whether the stamp of `seq`'s slot still says "committed `seq`", that
    /// is, whether every byte read from the slot since the stamp was first
    /// checked belongs to record `seq` (the seqlock reader's check).
    fn still_committed(&self, seq: u64) -> bool {
        // SYNC POINT: seqlock reader side; pairs with the Release fence a
        // publisher runs after marking a slot "writing": if any byte read
        // before this fence came from a newer write, the stamp load below
        // sees the change.
        fence(Ordering::Acquire);
        self.log.record_header(seq).stamp.load(Ordering::Relaxed) == stamp_committed(seq)
    }

    fn stop(&mut self, error: InspectError) -> Option<Result<BroadcastRecord, InspectError>> {
        self.done = true;
        Some(Err(error))
    }

    fn overwritten(&mut self, sequence: u64) -> Option<Result<BroadcastRecord, InspectError>> {
        let path = self.log.path().to_owned();
        self.stop(InspectError::Overwritten { path, sequence })
    }

    /// Copies the `len` payload bytes of record `seq` (`len <= max_payload`).
    fn copy_payload(&self, seq: u64, len: usize) -> Vec<u8> {
        debug_assert!(len <= self.log.max_payload as usize);
        let start = self.log.slot_offset(seq) + SLOT_HEADER_LEN;
        let mut out = Vec::with_capacity(len.next_multiple_of(8));
        let mut offset = start;
        while out.len() < len {
            // SAFETY: the slot's payload area is `stride - SLOT_HEADER_LEN`
            // bytes, a multiple of 16 no smaller than max_payload >= len, so
            // every word up to the one holding byte len-1 is inside the slot;
            // slots are 64-aligned, so the word is 8-aligned. `load_word` is
            // a Relaxed 8-byte atomic load, valid on read-only memory; a
            // concurrent overwrite is caught by `still_committed`.
            let word = unsafe { load_word(self.log.segment.base().add(offset) as *const u64) };
            out.extend_from_slice(&word.to_ne_bytes());
            offset += 8;
        }
        out.truncate(len);
        out
    }
}

impl Iterator for LogWalk<'_> {
    type Item = Result<BroadcastRecord, InspectError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Every iteration moves `below` down by one towards `oldest`, so the
        // loop ends after at most `slots` sequences.
        while !self.done && self.remaining > 0 && self.below > self.oldest {
            let seq = self.below - 1;
            self.below = seq;
            let header = self.log.record_header(seq);
            let stamp = header.stamp.load(Ordering::Relaxed);
            // SYNC POINT: pairs with the publisher's Release store of the
            // committed stamp in `Claim::finish`: the slot header and
            // payload it wrote are visible after this fence.
            fence(Ordering::Acquire);
            if split_stamp(stamp).0 > seq + 1 {
                // A later lap is in this slot: the log moved on since the
                // snapshot and every older record is gone as well.
                return self.overwritten(seq);
            }
            if stamp != stamp_committed(seq) {
                // Claimed but not committed yet, skipped, or reclaimed:
                // nothing to show for this sequence.
                continue;
            }
            // Read the header word once; from here on only the copy is used.
            let (len, record_type, flags) =
                unpack_record_header(header.word.load(Ordering::Relaxed));
            let bad = if flags != 0 {
                Some(CorruptionKind::UnknownFlags { flags })
            } else if len > self.log.max_payload {
                Some(CorruptionKind::LengthTooLarge { len })
            } else {
                None
            };
            if let Some(kind) = bad {
                // Only evidence of corruption if the slot still holds `seq`.
                if !self.still_committed(seq) {
                    return self.overwritten(seq);
                }
                let path = self.log.path().to_owned();
                return self.stop(InspectError::Corrupt {
                    path,
                    corruption: Corruption {
                        kind,
                        position: seq,
                    },
                });
            }
            let payload = self.copy_payload(seq, len as usize);
            if !self.still_committed(seq) {
                return self.overwritten(seq);
            }
            self.remaining -= 1;
            return Some(Ok(BroadcastRecord {
                sequence: seq,
                record_type,
                flags,
                payload,
            }));
        }
        self.done = true;
        None
    }
}

impl std::iter::FusedIterator for LogWalk<'_> {}

/// The ready topics in the directory of `ns`, sorted by name.
///
/// # Errors
///
/// [`InspectError::NoDirectory`] if the namespace has no topic directory,
/// [`InspectError::Directory`] if it cannot be opened or is invalid.
pub fn list_topics(ns: &Namespace, opts: &OpenOptions) -> Result<Vec<TopicRecord>, InspectError> {
    let mut topics = open_directory(ns, opts)?.list();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

/// Every entry of the directory of `ns` that is not free: ready topics
/// sorted by name, then entries being created and corrupt entries (with
/// what is wrong) by entry index. A ready entry repeating a name that an
/// earlier entry on its probe chain holds is listed as corrupt.
///
/// # Errors
///
/// As [`list_topics`].
pub fn list_directory(
    ns: &Namespace,
    opts: &OpenOptions,
) -> Result<Vec<DirectoryEntry>, InspectError> {
    let mut entries = open_directory(ns, opts)?
        .scan()
        .map_err(InspectError::Directory)?;
    entries.sort_by(|a, b| match (a, b) {
        (DirectoryEntry::Ready(x), DirectoryEntry::Ready(y)) => x.name.cmp(&y.name),
        (DirectoryEntry::Ready(_), _) => std::cmp::Ordering::Less,
        (_, DirectoryEntry::Ready(_)) => std::cmp::Ordering::Greater,
        _ => a.entry().cmp(&b.entry()),
    });
    Ok(entries)
}

fn open_directory(ns: &Namespace, opts: &OpenOptions) -> Result<Directory, InspectError> {
    Directory::open_read_only(ns, opts).map_err(|e| match e {
        DirectoryError::Segment(SegmentError::NotFound { path }) => {
            InspectError::NoDirectory { path }
        }
        e => InspectError::Directory(e),
    })
}

/// Finds topic `name` in `ns`, opens its log read-only and takes a
/// snapshot of it.
///
/// # Errors
///
/// As [`TopicInspector::open`] and [`TopicInspector::snapshot`].
pub fn inspect_topic(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
) -> Result<TopicSnapshot, InspectError> {
    TopicInspector::open(ns, name, opts)?.snapshot()
}

/// Finds topic `name` in `ns`, takes a snapshot and copies its last
/// `max_records` committed records, newest first.
///
/// If a publisher overwrites the walk, the records copied before that are
/// returned; use [`TopicInspector::records`] to see why a walk stopped.
///
/// # Errors
///
/// As [`inspect_topic`], and [`InspectError::Corrupt`] for a corrupt record.
pub fn topic_records(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
    max_records: usize,
) -> Result<(TopicSnapshot, Vec<BroadcastRecord>), InspectError> {
    let log = TopicInspector::open(ns, name, opts)?;
    let snapshot = log.snapshot()?;
    let mut records = Vec::new();
    for record in log.records(&snapshot, max_records) {
        match record {
            Ok(r) => records.push(r),
            Err(InspectError::Overwritten { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((snapshot, records))
}
