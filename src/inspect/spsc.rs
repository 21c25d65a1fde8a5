//! Inspecting an SPSC ring: a snapshot of its positions and roles, and a
//! walk over the records it holds.

use std::path::{Path, PathBuf};

use crate::directory::{RingKind, RingRecord};
use crate::layout::lock_slot;
use crate::layout::{
    SegmentKind, SpscControl, LAYOUT_VERSION, RECORD_HEADER_LEN, SPSC_CONTROL_OFFSET,
    SPSC_DATA_OFFSET, STATE_POISONED,
};
use crate::ring::spsc::shm::check_control;
use crate::ring::spsc::{check_frame, SpscConfig};
use crate::ring::CounterValues;
use crate::ring::{Corruption, CorruptionKind};
use crate::segment::{Namespace, OpenOptions, Segment};
use crate::sync::{fence, load_word, spin_hint, Ordering};

use super::{find_ring, not_found, InspectError};

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
    /// Everything the role's holders counted since the last one attached
    /// (see [`CounterValues`]).
    pub counters: CounterValues,
}

/// What an SPSC ring looked like at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct SpscSnapshot {
    /// Channel name in its namespace.
    pub name: String,
    /// The directory's record of the channel: configuration, segment,
    /// entry, epoch, creator.
    pub channel: RingRecord,
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
    /// Whether a blocking consumer sleeps on a futex the producer wakes.
    pub wakeups: bool,
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
    /// Flags in the frame header (never [`FLAG_PADDING`](crate::layout::FLAG_PADDING): padding is skipped).
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

/// What reading one frame of a ring found ([`SpscInspector::read_frame`]).
#[derive(Debug)]
pub(super) enum FrameRead {
    /// A record, copied out and validated; the next frame is at `next`.
    Record {
        /// The record.
        record: SpscRecord,
        /// Position of the next frame.
        next: u64,
    },
    /// Padding up to the end of the region; the next frame is at `next`.
    Padding {
        /// Position of the next frame.
        next: u64,
    },
}

/// An SPSC ring opened read-only for inspection.
///
/// Holds the read-only mapping and the validated immutable configuration;
/// every [`SpscInspector::snapshot`] reads the moving parts afresh.
#[derive(Debug)]
pub struct SpscInspector {
    segment: Segment,
    channel: RingRecord,
    capacity: u64,
    max_payload: u32,
    wakeups: bool,
}

impl SpscInspector {
    /// Finds SPSC channel `name` in the directory of `ns` and opens its
    /// ring read-only (see [`SpscInspector::open_channel`]).
    ///
    /// # Errors
    ///
    /// [`InspectError::NoDirectory`], [`InspectError::Directory`] (with
    /// [`DirectoryError::Corrupt`](crate::directory::DirectoryError::Corrupt)
    /// when an entry on the name's probe chain is corrupt),
    /// [`InspectError::NotFound`] (also when the name is a ring of another
    /// kind), or as [`SpscInspector::open_channel`].
    pub fn open(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<Self, InspectError> {
        let channel = find_ring(ns, name, RingKind::Spsc, opts)?;
        Self::open_channel(ns, channel, opts)
    }

    /// Opens the ring of a channel the directory listed, read-only, and
    /// validates its header and control block, against the directory's
    /// configuration too (capacity, largest payload, wake-ups).
    ///
    /// # Errors
    ///
    /// [`InspectError::NotFound`] if the record is not an SPSC channel's,
    /// [`InspectError::Segment`] with every [`Segment::open_read_only`]
    /// error, or [`SegmentError::Corrupt`](crate::segment::SegmentError::Corrupt)
    /// if the control block does not fit the segment or disagrees with the
    /// directory.
    pub fn open_channel(
        ns: &Namespace,
        channel: RingRecord,
        opts: &OpenOptions,
    ) -> Result<Self, InspectError> {
        let Some(config) = channel.config.spsc().copied() else {
            return Err(not_found(
                ns,
                &channel.name,
                RingKind::Spsc,
                Some(channel.kind()),
            ));
        };
        let segment = Segment::open_read_only(ns, &channel.segment, SegmentKind::Spsc, opts)?;
        let (capacity, max_payload, wakeups) = check_control(&segment, &config)?;
        Ok(SpscInspector {
            segment,
            channel,
            capacity,
            max_payload,
            wakeups,
        })
    }

    /// The directory's record of the channel.
    pub fn channel(&self) -> &RingRecord {
        &self.channel
    }

    /// Its configuration, as the directory records it.
    pub fn config(&self) -> Option<&SpscConfig> {
        self.channel.config.spsc()
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
        // SAFETY: `validate_control` checked the mapping, which `self` keeps, holds the 128-aligned
        // control block; only Relaxed atomic loads of <= 8 bytes, valid read-only, are made.
        unsafe { &*(self.segment.base().add(SPSC_CONTROL_OFFSET) as *const SpscControl) }
    }

    /// Reads the consumer position with `Acquire` semantics.
    pub(super) fn load_head(&self) -> u64 {
        // A Relaxed load plus an Acquire fence rather than an Acquire load:
        // the mapping is PROT_READ, and Rust only promises that small
        // Relaxed atomic loads work on read-only memory.
        let head = self.control().head.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the consumer's Release store of `head` in
        // `Consumer::release`: what it read before releasing happened before
        // anything this process reads after the fence.
        fence(Ordering::Acquire);
        head
    }

    /// Reads the producer position with `Acquire` semantics.
    pub(super) fn load_tail(&self) -> u64 {
        let tail = self.control().tail.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the producer's Release store of `tail` in
        // `Producer::flush`: every frame before `tail` is completely
        // written for reads after this fence.
        fence(Ordering::Acquire);
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
            name: self.channel.name.clone(),
            channel: self.channel.clone(),
            path: self.path().to_owned(),
            layout_version,
            layout_hash: header.layout_hash,
            segment_size: header.segment_size,
            creator_pid: header.creator_pid,
            created_realtime_ns: header.created_realtime_ns,
            poisoned: header.state.load(Ordering::Relaxed) == STATE_POISONED,
            capacity: self.capacity,
            max_payload: self.max_payload,
            wakeups: self.wakeups,
            head,
            tail,
            used_bytes: used.min(self.capacity),
            consistent,
            producer: RoleInfo {
                attached: self.segment.is_lock_held(lock_slot::SPSC_PRODUCER)?,
                pid: control.producer_pid.load(Ordering::Relaxed),
                counters: CounterValues::load(&control.producer_counters),
            },
            consumer: RoleInfo {
                attached: self.segment.is_lock_held(lock_slot::SPSC_CONSUMER)?,
                pid: control.consumer_pid.load(Ordering::Relaxed),
                counters: CounterValues::load(&control.consumer_counters),
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

    /// Reads the frame at `position` (a frame boundary below `tail`, the
    /// producer position read before): the record copied out (at most
    /// `max_copy` payload bytes) and validated, or the padding to pass.
    /// Shared by [`RecordWalk`] and the [`Follower`](super::Follower).
    ///
    /// # Errors
    ///
    /// [`InspectError::Overtaken`] if the consumer released the frame, so
    /// that what was read may be a newer lap's; [`InspectError::Corrupt`]
    /// for a frame the ring's own check refuses while the consumer has not
    /// passed it.
    pub(super) fn read_frame(
        &self,
        position: u64,
        tail: u64,
        max_copy: usize,
    ) -> Result<FrameRead, InspectError> {
        debug_assert!(position < tail);
        let capacity = self.capacity;
        let index = position & (capacity - 1);
        let available = tail - position;
        let to_end = capacity - index;
        // Read the header once; from here on only the local copy is used.
        // The ring's own frame check decides what it is.
        let word = self.load_data_word(index);
        let frame = match check_frame(word, to_end, available, self.max_payload) {
            Ok(frame) => frame,
            // If the consumer has passed the frame, the bytes read may
            // belong to a newer lap: not evidence of corruption.
            Err(kind) => {
                return Err(self
                    .overtaken(position)
                    .unwrap_or_else(|| InspectError::Corrupt {
                        path: self.path().to_owned(),
                        corruption: Corruption { kind, position },
                    }))
            }
        };
        if frame.padding {
            if let Some(e) = self.overtaken(position) {
                return Err(e);
            }
            return Ok(FrameRead::Padding {
                next: position + to_end,
            });
        }
        let n = max_copy.min(frame.len as usize);
        let payload = self.copy_payload(index, n);
        if let Some(e) = self.overtaken(position) {
            return Err(e);
        }
        Ok(FrameRead::Record {
            record: SpscRecord {
                position,
                record_type: frame.record_type,
                flags: frame.flags,
                len: frame.len,
                payload,
            },
            next: position + frame.total,
        })
    }

    /// Copies `n` payload bytes of the frame at `index` (whose frame was
    /// checked to lie inside the region).
    fn copy_payload(&self, index: u64, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.next_multiple_of(8));
        let mut offset = index + RECORD_HEADER_LEN as u64;
        while out.len() < n {
            // The payload is padded to 8 bytes inside its frame, so every
            // word up to the one holding byte n-1 is inside the frame.
            out.extend_from_slice(&self.load_data_word(offset).to_ne_bytes());
            offset += 8;
        }
        out.truncate(n);
        out
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
        fence(Ordering::Acquire);
        let head = self.load_head();
        (head > position).then(|| InspectError::Overtaken {
            path: self.path().to_owned(),
            position,
            head,
        })
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
        // Callers pass masked positions, or offsets inside a frame checked to lie in the region.
        // SAFETY: `index` is 8-aligned, `index + 8 <= capacity`, the region 128-aligned: the word
        // is aligned and mapped; `load_word` is a Relaxed atomic load (untorn, valid read-only).
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
}

impl Iterator for RecordWalk<'_> {
    type Item = Result<SpscRecord, InspectError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Every iteration advances `position` by at least 8 bytes towards
        // `tail`, so the loop ends after at most capacity / 8 frames.
        while !self.done && self.remaining > 0 && self.position < self.tail {
            match self
                .ring
                .read_frame(self.position, self.tail, self.max_copy)
            {
                Ok(FrameRead::Padding { next }) => self.position = next,
                Ok(FrameRead::Record { record, next }) => {
                    self.position = next;
                    self.remaining -= 1;
                    return Some(Ok(record));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.done = true;
        None
    }
}

impl std::iter::FusedIterator for RecordWalk<'_> {}

/// Finds SPSC channel `name` in `ns`, opens its ring read-only and takes a
/// snapshot of it.
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

/// Finds SPSC channel `name` in `ns`, opens its ring read-only, takes a
/// snapshot and copies up to `max_records` of its published records (`max_copy` payload bytes of
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
