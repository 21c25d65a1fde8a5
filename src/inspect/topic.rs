//! Inspecting a topic: a snapshot of its log, publishers and subscribers,
//! and a walk over its last records.

use std::path::{Path, PathBuf};

use crate::directory::{RingKind, RingRecord};
use crate::layout::lock_slot;
use crate::layout::{
    participant, BroadcastControl, PublisherSlot, RecordSlotHeader, SegmentKind, SubscriberSlot,
    BROADCAST_CONTROL_OFFSET, LAYOUT_VERSION, MAX_SEQUENCE, STATE_POISONED,
};
use crate::record::ParseError;
use crate::ring::broadcast::shm::{check_log, LogLayout};
pub(super) use crate::ring::broadcast::SlotLook;
use crate::ring::broadcast::{
    check_slot_word, look_at_stamp, still_committed, BroadcastConfig, Policy,
};
use crate::ring::{Corruption, CorruptionKind, CounterValues};
use crate::segment::{Namespace, OpenOptions, Segment};
use crate::sync::{copy_racy, fence, monotonic_ns, Ordering};

use super::{find_ring, not_found, InspectError};
use crate::record::{decode_v2, V2Summary};

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
    /// Everything it counted (see [`CounterValues`]).
    pub counters: CounterValues,
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
    /// Records it lost: lapped (`Overwrite`), reclaimed or skipped.
    pub missed: u64,
    /// Everything it counted (see [`CounterValues`]).
    pub counters: CounterValues,
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
    /// The directory's record of the topic: name, configuration, log
    /// segment, entry, epoch, creator.
    pub topic: RingRecord,
    /// Its configuration, as the directory records it (checked against the
    /// log's control block).
    pub config: BroadcastConfig,
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
    pub reclaim_after_ns: u64,
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
        self.tail.saturating_sub(u64::from(self.config.slots))
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

/// What reading one record slot of a log found ([`TopicInspector::read_slot`]).
#[derive(Debug)]
pub(super) enum SlotRead {
    /// The record, copied out and validated.
    Record(BroadcastRecord),
    /// Not resolved yet: never claimed, or claimed and being written.
    NotYet,
    /// Given up by its publisher: nothing to read, nothing lost.
    Skipped,
    /// Reclaimed from a publisher that held it past the claim timeout:
    /// lost.
    Reclaimed,
    /// A later lap is in the slot, or a publisher may have rewritten it
    /// during the copy: the record is gone.
    Overwritten,
}

/// A topic's broadcast log opened read-only for inspection.
///
/// Holds the read-only mapping and the configuration validated against the
/// directory; every [`TopicInspector::snapshot`] reads the moving
/// parts afresh.
#[derive(Debug)]
pub struct TopicInspector {
    segment: Segment,
    topic: RingRecord,
    /// The record's configuration.
    config: BroadcastConfig,
    /// The ring's own check of the log: geometry, payload, claim timeout.
    layout: LogLayout,
}

impl TopicInspector {
    /// Finds topic `name` in the directory of `ns` and opens its log
    /// read-only (see [`TopicInspector::open_topic`]).
    ///
    /// # Errors
    ///
    /// [`InspectError::NoDirectory`], [`InspectError::Directory`] (with
    /// [`DirectoryError::Corrupt`](crate::directory::DirectoryError::Corrupt)
    /// when an entry on the name's probe chain is corrupt: it might be this
    /// topic), [`InspectError::NotFound`] (also when the name is a ring of
    /// another kind), or as [`TopicInspector::open_topic`].
    pub fn open(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<Self, InspectError> {
        let topic = find_ring(ns, name, RingKind::Broadcast, opts)?;
        Self::open_topic(ns, topic, opts)
    }

    /// Opens the log of a topic the directory listed, read-only, and checks
    /// its control block against the directory's configuration: slot count,
    /// stride, payload, policy, participant counts and the segment size
    /// they imply.
    ///
    /// # Errors
    ///
    /// [`InspectError::NotFound`] if the record is not a topic's,
    /// [`InspectError::Segment`] with every [`Segment::open_read_only`]
    /// error, or [`SegmentError::Corrupt`](crate::segment::SegmentError::Corrupt)
    /// if the control block disagrees with the directory or the segment.
    pub fn open_topic(
        ns: &Namespace,
        topic: RingRecord,
        opts: &OpenOptions,
    ) -> Result<Self, InspectError> {
        let Some(config) = topic.config.broadcast().copied() else {
            return Err(not_found(
                ns,
                &topic.name,
                RingKind::Broadcast,
                Some(topic.kind()),
            ));
        };
        let segment = Segment::open_read_only(ns, &topic.segment, SegmentKind::Broadcast, opts)?;
        let layout = check_log(&segment, &config)?;
        Ok(TopicInspector {
            segment,
            topic,
            config,
            layout,
        })
    }

    /// The directory's record of the topic.
    pub fn topic(&self) -> &RingRecord {
        &self.topic
    }

    /// Its configuration, as the directory records it.
    pub fn config(&self) -> &BroadcastConfig {
        &self.config
    }

    /// The log's segment file.
    pub fn path(&self) -> &Path {
        self.segment.path()
    }

    fn control(&self) -> &BroadcastControl {
        // SAFETY: `open_topic` checked the mapping, which `self` keeps, holds the 128-aligned
        // control block; only Relaxed atomic loads of <= 8 bytes, valid read-only, are made.
        unsafe { &*(self.segment.base().add(BROADCAST_CONTROL_OFFSET) as *const BroadcastControl) }
    }

    /// Subscriber slot `i` (`i < max_subscribers`).
    fn subscriber(&self, i: usize) -> &SubscriberSlot {
        let offset = self.layout.geometry.reader_offset(i);
        // SAFETY: the segment's size is its geometry's (`check_log`), so slot `i < max_subscribers`
        // is inside the mapping, 64-aligned; only Relaxed atomic loads are made through it.
        unsafe { &*(self.segment.base().add(offset) as *const SubscriberSlot) }
    }

    /// Publisher slot `j` (`j < max_publishers`).
    fn publisher(&self, j: usize) -> &PublisherSlot {
        let offset = self.layout.geometry.writer_offset(j);
        // SAFETY: as in `subscriber`, for publisher slot `j < max_publishers`.
        unsafe { &*(self.segment.base().add(offset) as *const PublisherSlot) }
    }

    /// The header of the record slot holding `seq`.
    fn record_header(&self, seq: u64) -> &RecordSlotHeader {
        let offset = self.layout.geometry.slot_offset(seq);
        // SAFETY: as in `subscriber`; the slot index is masked, so the
        // header is inside the mapping, 64-aligned.
        unsafe { &*(self.segment.base().add(offset) as *const RecordSlotHeader) }
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
        for j in 0..self.config.max_publishers as usize {
            let p = self.publisher(j);
            let state = participant::state(p.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            let counters = CounterValues::load(&p.counters);
            publishers.push(PublisherInfo {
                slot: j,
                state,
                pid: p.pid.load(Ordering::Relaxed),
                published: counters.records,
                counters,
                alive: self.segment.is_lock_held(lock_slot::publisher(j))?,
            });
        }

        let mut subscribers = Vec::new();
        for i in 0..self.config.max_subscribers as usize {
            let s = self.subscriber(i);
            let state = participant::state(s.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            let cursor = Self::load_acquire(&s.cursor);
            let heartbeat = s.heartbeat_ns.load(Ordering::Relaxed);
            let counters = CounterValues::load(&s.counters);
            subscribers.push(SubscriberInfo {
                slot: i,
                state,
                name: s.name(),
                pid: s.pid.load(Ordering::Relaxed),
                cursor,
                lag: 0,
                missed: counters.missed,
                counters,
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
            config: self.config,
            path: self.path().to_owned(),
            layout_version,
            layout_hash: header.layout_hash,
            segment_size: header.segment_size,
            created_realtime_ns: header.created_realtime_ns,
            poisoned: header.state.load(Ordering::Relaxed) == STATE_POISONED,
            slot_stride: self.layout.geometry.stride as u32,
            reclaim_after_ns: self.layout.reclaim_after_ns,
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

    /// Next sequence to claim, read now (`Acquire`).
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a tail no log reaches.
    pub(super) fn tail_now(&self) -> Result<u64, InspectError> {
        let tail = Self::load_acquire(&self.control().tail);
        if tail > MAX_SEQUENCE {
            return Err(InspectError::Corrupt {
                path: self.path().to_owned(),
                corruption: Corruption {
                    kind: CorruptionKind::TailTooFarAhead { tail },
                    position: tail,
                },
            });
        }
        Ok(tail)
    }

    /// Record slots in the log.
    pub(super) fn slots(&self) -> u64 {
        u64::from(self.config.slots)
    }

    /// The claim timeout, in nanoseconds.
    pub(super) fn reclaim_after_ns(&self) -> u64 {
        self.layout.reclaim_after_ns
    }

    /// What the stamp of `seq`'s slot says now (the ring's own reading).
    pub(super) fn look(&self, seq: u64) -> SlotLook {
        let stamp = self.record_header(seq).stamp.load(Ordering::Relaxed);
        look_at_stamp(stamp, seq)
    }

    /// Whether every byte read from `seq`'s slot since its stamp said
    /// "committed `seq`" is record `seq`'s: the stamp still says so (the
    /// subscribers' seqlock re-check) and, under `Backpressure`, whose
    /// publishers rewrite a slot in place without marking it, no publisher
    /// has claimed the sequence that reuses the slot.
    fn intact(&self, seq: u64) -> bool {
        // `still_committed` fences (Acquire) before its stamp load, so the
        // tail load below is ordered after every load of the copy too.
        if !still_committed(self.record_header(seq), seq) {
            return false;
        }
        match self.config.policy {
            // A publisher marks the slot "writing" before it writes: the
            // stamp check above is the whole seqlock.
            Policy::Overwrite => true,
            // A publisher writes the slot of `seq + slots` only after its
            // claim moved the tail past that sequence (`Publisher::reserve`
            // then `Publisher::enter`, which fences between the two). If a
            // load of the copy saw one of its writes, this load sees the
            // tail it claimed, and the copy is refused.
            Policy::Backpressure => {
                let tail = Self::load_acquire(&self.control().tail);
                tail <= seq + self.slots()
            }
        }
    }

    /// Reads record `seq`'s slot: the record copied out and validated, or
    /// what the slot holds instead. Shared by [`LogWalk`] and the
    /// [`Follower`](super::Follower).
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a header word with unknown flags or an
    /// impossible length in a slot that still holds `seq`.
    pub(super) fn read_slot(&self, seq: u64) -> Result<SlotRead, InspectError> {
        let header = self.record_header(seq);
        let stamp = header.stamp.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the publisher's Release store of the
        // committed stamp in `Claim::finish`: the slot header and payload it
        // wrote are visible after this fence.
        fence(Ordering::Acquire);
        match look_at_stamp(stamp, seq) {
            SlotLook::LaterLap => return Ok(SlotRead::Overwritten),
            SlotLook::Committed => {}
            SlotLook::NotYet => return Ok(SlotRead::NotYet),
            SlotLook::Skipped => return Ok(SlotRead::Skipped),
            SlotLook::Reclaimed => return Ok(SlotRead::Reclaimed),
        }
        // Read the header word once; from here on only the copy is used,
        // checked as a subscriber checks it.
        let word = header.word.load(Ordering::Relaxed);
        let (len, record_type) = match check_slot_word(word, self.layout.max_payload) {
            Ok(checked) => checked,
            // Only evidence of corruption if the slot still holds `seq`.
            Err(_) if !self.intact(seq) => return Ok(SlotRead::Overwritten),
            Err(kind) => {
                return Err(InspectError::Corrupt {
                    path: self.path().to_owned(),
                    corruption: Corruption {
                        kind,
                        position: seq,
                    },
                })
            }
        };
        let payload = self.copy_payload(seq, len as usize);
        if !self.intact(seq) {
            return Ok(SlotRead::Overwritten);
        }
        Ok(SlotRead::Record(BroadcastRecord {
            sequence: seq,
            record_type,
            flags: 0,
            payload,
        }))
    }

    /// Copies the `len` payload bytes of record `seq` (`len <= max_payload`).
    fn copy_payload(&self, seq: u64, len: usize) -> Vec<u8> {
        debug_assert!(len <= self.layout.max_payload as usize);
        let start = self.layout.geometry.payload_offset(seq);
        let mut out = vec![0u8; len];
        // The payload area is `stride - SLOT_HEADER_LEN` bytes, a multiple of 16 no smaller than
        // max_payload >= len, in a 64-aligned slot; a concurrent overwrite is caught by `intact`.
        // SAFETY: every word up to the one holding byte len-1 is inside the slot, and 8-aligned;
        // `copy_racy` only makes Relaxed 8-byte atomic loads, valid on read-only memory.
        unsafe { copy_racy(self.segment.base().add(start), &mut out) };
        out
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

    /// The payload bytes each subscriber of `snapshot` has still to read,
    /// in the order of `snapshot.subscribers`: the lengths of the committed
    /// records from its cursor up to the snapshot's tail, summed from their
    /// slot headers (no payload is copied).
    ///
    /// Only records the log still holds are counted: a subscriber an
    /// `Overwrite` log lapped counts the last `slots` records, not the
    /// ones it lost; a record not committed yet, skipped, reclaimed,
    /// overwritten since the snapshot or with a header no build writes
    /// counts 0. One pass over at most `slots` headers serves every
    /// subscriber.
    pub fn lag_bytes(&self, snapshot: &TopicSnapshot) -> Vec<u64> {
        let tail = snapshot.tail;
        let oldest = snapshot.oldest();
        // Where each subscriber's unread records the log holds begin,
        // highest first: a walk down from the tail passes each in turn.
        let mut starts: Vec<(u64, usize)> = snapshot
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.cursor.clamp(oldest, tail), i))
            .collect();
        starts.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = vec![0; snapshot.subscribers.len()];
        let (mut seq, mut sum) = (tail, 0u64);
        for (start, i) in starts {
            // `seq` only moves down, from `tail` to at least `oldest`: at
            // most `slots` headers in all.
            while seq > start {
                seq -= 1;
                sum = sum.saturating_add(u64::from(self.committed_len(seq).unwrap_or(0)));
            }
            out[i] = sum;
        }
        out
    }

    /// The payload length of record `seq` if its slot holds it committed,
    /// read from the slot header and checked as a subscriber checks it.
    fn committed_len(&self, seq: u64) -> Option<u32> {
        let header = self.record_header(seq);
        let stamp = header.stamp.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the publisher's Release store of the
        // committed stamp in `Claim::finish`: the header word it wrote is
        // visible after this fence.
        fence(Ordering::Acquire);
        if !matches!(look_at_stamp(stamp, seq), SlotLook::Committed) {
            return None;
        }
        let word = header.word.load(Ordering::Relaxed);
        let (len, _) = check_slot_word(word, self.layout.max_payload).ok()?;
        still_committed(header, seq).then_some(len)
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

    fn stop(&mut self, error: InspectError) -> Option<Result<BroadcastRecord, InspectError>> {
        self.done = true;
        Some(Err(error))
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
            match self.log.read_slot(seq) {
                Ok(SlotRead::Record(record)) => {
                    self.remaining -= 1;
                    return Some(Ok(record));
                }
                // A later lap is in this slot, or a publisher may be
                // rewriting it: the log moved on since the snapshot and
                // every older record is gone as well.
                Ok(SlotRead::Overwritten) => {
                    let path = self.log.path().to_owned();
                    return self.stop(InspectError::Overwritten {
                        path,
                        sequence: seq,
                    });
                }
                // Claimed but not committed yet, skipped, or reclaimed:
                // nothing to show for this sequence.
                Ok(SlotRead::NotYet | SlotRead::Skipped | SlotRead::Reclaimed) => continue,
                Err(e) => return self.stop(e),
            }
        }
        self.done = true;
        None
    }
}

impl std::iter::FusedIterator for LogWalk<'_> {}

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
