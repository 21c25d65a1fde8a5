//! Inspecting a work queue: a snapshot of its positions, counters,
//! producers, consumers and records in flight, and a walk over the records
//! waiting to be taken.

use std::path::{Path, PathBuf};

use crate::directory::{RingKind, RingRecord};
use crate::layout::{
    lock_slot, participant, queue_stamp, SegmentKind, SlotGeometry, LAYOUT_VERSION, MAX_SEQUENCE,
    STATE_POISONED,
};
use crate::record::{decode_v2, ParseError, V2Summary};
use crate::ring::broadcast::check_slot_word;
use crate::ring::queue::shm::view_of;
pub(super) use crate::ring::queue::SlotState;
use crate::ring::queue::{QueueConfig, QueueView};
use crate::ring::{Corruption, CorruptionKind, CounterValues};
use crate::segment::{Namespace, OpenOptions, Segment};
use crate::sync::{copy_racy, fence, Ordering};

use super::{find_ring, not_found, InspectError};

/// A producer slot in use (not `FREE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueProducerInfo {
    /// Index of the slot (the owner number in the stamps of the records it
    /// writes).
    pub slot: usize,
    /// [`participant`] state (see
    /// [`participant_state_name`](super::participant_state_name)).
    pub state: u32,
    /// Pid its owner wrote, for humans only (pids are reused).
    pub pid: u32,
    /// Records this producer committed.
    pub committed: u64,
    /// Sequence of the claim it has in progress, `None` when it has none.
    pub claimed: Option<u64>,
    /// Claims of this producer that a consumer reclaimed (it stalled or
    /// died between claim and commit).
    pub reclaimed: u64,
    /// Everything it counted (see [`CounterValues`]).
    pub counters: CounterValues,
    /// A live process holds the slot's liveness lock: the proof of life.
    pub alive: bool,
}

/// A consumer slot in use (not `FREE`). Queue consumers have no durable
/// identity: a consumer that leaves gives its records back and frees its
/// slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConsumerInfo {
    /// Index of the slot (the owner number in the stamps of the records it
    /// takes).
    pub slot: usize,
    /// [`participant`] state (see
    /// [`participant_state_name`](super::participant_state_name)).
    pub state: u32,
    /// Pid its owner wrote, for humans only (pids are reused).
    pub pid: u32,
    /// Records it took (redelivered ones included).
    pub taken: u64,
    /// Records it acknowledged or gave back.
    pub acked: u64,
    /// Redelivered records among those it took.
    pub redelivered: u64,
    /// Everything it counted (see [`CounterValues`]).
    pub counters: CounterValues,
    /// Counted among the queue's sleepers (asleep on its futex, or about
    /// to be).
    pub sleeping: bool,
    /// Records in flight that it holds (taken, not acknowledged yet), as
    /// the snapshot found them.
    pub holding: usize,
    /// A live process holds the slot's liveness lock: the proof of life.
    pub alive: bool,
}

/// What a record slot in flight holds, as its stamp says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlightState {
    /// The tail passed the sequence but no producer has marked the slot
    /// yet: the instant between a claim's two compare-and-swaps, or a
    /// producer that died there (a consumer reclaims it after the queue's
    /// `reclaim_after`). `producer` is the producer slot announcing the
    /// claim, if one does.
    Claimed {
        /// The producer slot whose `claimed` word names the sequence.
        producer: Option<usize>,
    },
    /// A producer is writing the record.
    Writing {
        /// Its producer slot.
        producer: usize,
        /// Whether that slot's liveness lock is held. A dead writer's claim
        /// is reclaimed by a waiting consumer after `reclaim_after`.
        producer_alive: bool,
    },
    /// Committed and waiting to be taken.
    Committed {
        /// Given back after its consumer died holding it (or gave it
        /// back): the next consumer gets it flagged redelivered.
        redelivered: bool,
    },
    /// Taken by a consumer, not acknowledged yet.
    Taken {
        /// Its consumer slot.
        consumer: usize,
        /// Whether that slot's liveness lock is held. A dead consumer's
        /// records are given back by the next participant that notices.
        consumer_alive: bool,
        /// It was given back once already.
        redelivered: bool,
    },
    /// No record: an aborted, given-up or reclaimed claim, which consumers
    /// pass.
    Skipped {
        /// The claim was reclaimed, and its producer may still be writing
        /// into the slot (the next producer of the slot checks first).
        suspect: bool,
    },
}

impl InFlightState {
    /// Lower-case name: `claimed`, `writing`, `committed`, `taken`,
    /// `skipped`.
    pub fn name(&self) -> &'static str {
        match self {
            InFlightState::Claimed { .. } => "claimed",
            InFlightState::Writing { .. } => "writing",
            InFlightState::Committed { .. } => "committed",
            InFlightState::Taken { .. } => "taken",
            InFlightState::Skipped { .. } => "skipped",
        }
    }
}

/// A record slot whose sequence was claimed and whose record is not
/// acknowledged yet (or its skip not passed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightRecord {
    /// The record's sequence number.
    pub sequence: u64,
    /// Index of its record slot (`sequence & (slots - 1)`).
    pub slot: usize,
    /// The slot's stamp as read (see [`queue_stamp`]).
    pub stamp: u64,
    /// What the stamp says.
    pub state: InFlightState,
}

/// What a work queue looked like at one look.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSnapshot {
    /// The directory's record of the queue: name, configuration, segment,
    /// entry, epoch, creator.
    pub queue: RingRecord,
    /// Its configuration, as the directory records it (checked against the
    /// queue's control block).
    pub config: QueueConfig,
    /// The queue's segment file.
    pub path: PathBuf,
    /// Layout version in the segment's header.
    pub layout_version: u32,
    /// Layout hash in the segment's header.
    pub layout_hash: u64,
    /// Segment size in bytes, header included.
    pub segment_size: u64,
    /// Creation time, `CLOCK_REALTIME` nanoseconds since the Unix epoch.
    pub created_realtime_ns: u64,
    /// A reader marked the segment poisoned after opening it.
    pub poisoned: bool,
    /// Bytes per record slot.
    pub slot_stride: u32,
    /// How long a claim may stay uncommitted before a waiting consumer
    /// reclaims it, in nanoseconds (from the control block).
    pub reclaim_after_ns: u64,
    /// Next sequence to take, a hint that consumers move forward (records
    /// given back wait behind it). Read before `tail`.
    pub head: u64,
    /// Next sequence to claim: records `0 .. tail` were claimed.
    pub tail: u64,
    /// Committed records not yet taken (given-back ones included).
    pub depth: u64,
    /// Consumers asleep (or about to sleep) on the queue's futex.
    pub sleepers: u32,
    /// Records given back after their consumer died holding them, or gave
    /// them back.
    pub redelivered: u64,
    /// Claims reclaimed after `reclaim_after` (each one a counted skip).
    pub reclaimed_claims: u64,
    /// Consumer slots freed after their owner died.
    pub reaped_consumers: u64,
    /// Producer slots taken over after their owner died.
    pub reaped_producers: u64,
    /// Producer slots in use, by index.
    pub producers: Vec<QueueProducerInfo>,
    /// Consumer slots in use, by index.
    pub consumers: Vec<QueueConsumerInfo>,
    /// Every record slot in flight, by sequence: claimed, being written,
    /// committed, taken or skipped, from `tail - slots` up to `tail`.
    pub in_flight: Vec<InFlightRecord>,
}

impl QueueSnapshot {
    /// Oldest sequence that can still be in flight: `tail - slots`, or 0.
    pub fn oldest(&self) -> u64 {
        self.tail.saturating_sub(u64::from(self.config.slots))
    }

    /// Producers whose process holds their liveness lock.
    pub fn producers_alive(&self) -> usize {
        self.producers.iter().filter(|p| p.alive).count()
    }

    /// Consumers whose process holds their liveness lock.
    pub fn consumers_alive(&self) -> usize {
        self.consumers.iter().filter(|c| c.alive).count()
    }

    /// Records taken and not acknowledged yet.
    pub fn taken(&self) -> usize {
        self.count(|s| matches!(s, InFlightState::Taken { .. }))
    }

    /// Records held by a consumer whose liveness lock is free: they wait
    /// to be given back.
    pub fn taken_by_dead(&self) -> usize {
        self.count(|s| {
            matches!(
                s,
                InFlightState::Taken {
                    consumer_alive: false,
                    ..
                }
            )
        })
    }

    /// Committed records flagged redelivered, waiting for a consumer.
    pub fn redelivered_waiting(&self) -> usize {
        self.count(|s| matches!(s, InFlightState::Committed { redelivered: true }))
    }

    fn count(&self, f: impl Fn(&InFlightState) -> bool) -> usize {
        self.in_flight.iter().filter(|r| f(&r.state)).count()
    }
}

/// A waiting record copied out of a queue by a [`QueueWalk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    /// Its sequence number.
    pub sequence: u64,
    /// Record type set by the producer.
    pub record_type: u16,
    /// Full payload length in bytes.
    pub len: u32,
    /// It was given back once (its first consumer died or gave it back).
    pub redelivered: bool,
    /// The first `min(len, max_copy)` payload bytes.
    pub payload: Vec<u8>,
}

impl QueueRecord {
    /// Whether `payload` holds fewer bytes than the record.
    pub fn is_truncated(&self) -> bool {
        (self.payload.len() as u64) < u64::from(self.len)
    }

    /// The payload decoded as a Protocol V2 message (see [`decode_v2`]).
    ///
    /// # Errors
    ///
    /// The payload is not one whole Protocol V2 message (a truncated copy
    /// never is).
    pub fn decode_v2(&self) -> Result<V2Summary, ParseError> {
        decode_v2(&self.payload)
    }
}

/// What reading one record slot of a queue found
/// ([`QueueInspector::read_held`]).
#[derive(Debug)]
pub(super) enum HeldRead {
    /// The record, committed or taken and not acknowledged, copied out and
    /// validated.
    Record(QueueRecord),
    /// The slot moved past the sequence: the record was taken and
    /// acknowledged (or its skip passed), and its slot may be reused.
    Gone,
    /// Claimed, not committed yet (not marked, or being written).
    Unresolved {
        /// The stamp as read.
        stamp: u64,
    },
    /// No record: an aborted, given-up or reclaimed claim.
    Skipped {
        /// The stamp as read.
        stamp: u64,
    },
}

/// A work queue opened read-only for inspection.
///
/// Holds the read-only mapping, checked against the directory's
/// configuration, under the queue's own view (the one its producers and
/// consumers run on, only loaded from here); every
/// [`QueueInspector::snapshot`] reads the moving parts afresh.
pub struct QueueInspector {
    /// The queue's view over the read-only mapping, which it keeps.
    view: QueueView,
    queue: RingRecord,
    /// The record's configuration.
    config: QueueConfig,
    /// Where the parts of the segment lie.
    geometry: SlotGeometry,
}

impl std::fmt::Debug for QueueInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueInspector")
            .field("queue", &self.queue)
            .field("config", &self.config)
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl QueueInspector {
    /// Finds work queue `name` in the directory of `ns` and opens its ring
    /// read-only (see [`QueueInspector::open_queue`]).
    ///
    /// # Errors
    ///
    /// [`InspectError::NoDirectory`], [`InspectError::Directory`] (with
    /// [`DirectoryError::Corrupt`](crate::directory::DirectoryError::Corrupt)
    /// when an entry on the name's probe chain is corrupt: it might be this
    /// queue), [`InspectError::NotFound`] (also when the name is a ring of
    /// another kind), or as [`QueueInspector::open_queue`].
    pub fn open(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<Self, InspectError> {
        let queue = find_ring(ns, name, RingKind::Queue, opts)?;
        Self::open_queue(ns, queue, opts)
    }

    /// Opens the ring of a work queue the directory listed, read-only, and
    /// checks its control block against the directory's configuration with
    /// the queue's own check: slot count, stride, payload, participant
    /// counts, reclaim timeout and the segment size they imply.
    ///
    /// # Errors
    ///
    /// [`InspectError::NotFound`] if the record is not a work queue's,
    /// [`InspectError::Segment`] with every [`Segment::open_read_only`]
    /// error, or [`SegmentError::Corrupt`](crate::segment::SegmentError::Corrupt)
    /// if the control block disagrees with the directory or the segment.
    pub fn open_queue(
        ns: &Namespace,
        queue: RingRecord,
        opts: &OpenOptions,
    ) -> Result<Self, InspectError> {
        let Some(config) = queue.config.queue().copied() else {
            return Err(not_found(
                ns,
                &queue.name,
                RingKind::Queue,
                Some(queue.kind()),
            ));
        };
        let segment = Segment::open_read_only(ns, &queue.segment, SegmentKind::Queue, opts)?;
        let view = view_of(segment, None, &config)?;
        Ok(QueueInspector {
            view,
            queue,
            geometry: config.geometry(),
            config,
        })
    }

    /// The directory's record of the queue.
    pub fn queue(&self) -> &RingRecord {
        &self.queue
    }

    /// Its configuration, as the directory records it.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The queue's segment file.
    pub fn path(&self) -> &Path {
        self.segment().path()
    }

    fn segment(&self) -> &Segment {
        // `open_queue` built the view over a mapped segment; a view always
        // holds the segment it was built over.
        self.view
            .segment()
            .expect("an inspector's view is over a mapped segment")
    }

    fn corrupt(&self, corruption: Corruption) -> InspectError {
        InspectError::Corrupt {
            path: self.path().to_owned(),
            corruption,
        }
    }

    /// Whether the process that took liveness lock `slot` is alive.
    fn lock_held(&self, slot: u64) -> Result<bool, InspectError> {
        Ok(self.segment().is_lock_held(slot)?)
    }

    /// Reads the header, positions, counters, participants and every
    /// record slot in flight now.
    ///
    /// Participants and slots are read one by one while the queue runs, so
    /// the snapshot is not one instant. `head` is read before `tail`, and
    /// the stamps after both.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a position no queue reaches (`tail`
    /// past [`MAX_SEQUENCE`], `head` past `tail`) or a stamp no build
    /// writes where it is (unknown state or bits, a lap behind a claimed
    /// sequence, an owner past the participant slots), with the queue's
    /// own stamp check; [`InspectError::Segment`] if a lock query fails.
    pub fn snapshot(&self) -> Result<QueueSnapshot, InspectError> {
        let segment = self.segment();
        let header = segment.header();
        let layout_version = (header.magic_version.load(Ordering::Relaxed) >> 32) as u32;
        debug_assert_eq!(layout_version, LAYOUT_VERSION);
        let control = self.view.control();
        let slots = u64::from(self.config.slots);

        let mut producers = Vec::new();
        for j in 0..self.config.max_producers as usize {
            let p = self.view.producer(j);
            let state = participant::state(p.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            let counters = CounterValues::load(&p.counters);
            producers.push(QueueProducerInfo {
                slot: j,
                state,
                pid: p.pid.load(Ordering::Relaxed),
                committed: counters.records,
                claimed: p.claimed.load(Ordering::Relaxed).checked_sub(1),
                reclaimed: counters.lost_claims,
                counters,
                alive: self.lock_held(lock_slot::queue_producer(j))?,
            });
        }

        let mut consumers = Vec::new();
        for i in 0..self.config.max_consumers as usize {
            let c = self.view.consumer(i);
            let state = participant::state(c.state.load(Ordering::Relaxed));
            if state == participant::FREE {
                continue;
            }
            let counters = CounterValues::load(&c.counters);
            consumers.push(QueueConsumerInfo {
                slot: i,
                state,
                pid: c.pid.load(Ordering::Relaxed),
                taken: counters.records,
                acked: counters.acked,
                redelivered: counters.redelivered,
                counters,
                sleeping: c.sleeping.load(Ordering::Relaxed) != 0,
                holding: 0,
                alive: self.lock_held(lock_slot::queue_consumer(i))?,
            });
        }

        // Relaxed loads (the mapping is PROT_READ) ordered by fences.
        let head = control.head.load(Ordering::Relaxed);
        // SYNC POINT: keeps the head load before the tail load. The head is
        // a Relaxed hint, with no Release store to pair with; a consumer
        // moves it past `h` only after it saw `h` committed, that is after
        // the tail passed `h`, so a head read first is not past the tail
        // read after it (a head past the tail is reported as corruption).
        fence(Ordering::Acquire);
        let tail = control.tail.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the producers' AcqRel claim of the tail in
        // `Producer::reserve`, made after their Acquire load saw the slot
        // free at the claimed lap: every stamp read below is at that lap or
        // later, so a slot behind a claimed sequence is corruption.
        fence(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(Corruption {
                kind: CorruptionKind::PositionTooLarge { value: tail },
                position: tail,
            }));
        }
        if head > tail {
            return Err(self.corrupt(Corruption {
                kind: CorruptionKind::HeadOutOfRange { head },
                position: tail,
            }));
        }

        // Lock queries of the owners of taken and written records, asked
        // once per slot.
        let mut consumer_alive: Vec<Option<bool>> = vec![None; self.config.max_consumers as usize];
        let mut producer_alive: Vec<Option<bool>> = vec![None; self.config.max_producers as usize];
        let mut in_flight = Vec::new();
        let mut depth = 0;
        // At most `slots` sequences, one per record slot.
        for seq in tail.saturating_sub(slots)..tail {
            let stamp = self.view.header(seq).stamp.load(Ordering::Relaxed);
            let bad_stamp = Corruption {
                kind: CorruptionKind::BadStamp { stamp },
                position: seq,
            };
            // The tail passed `seq` only after its slot was free at its lap:
            // a slot at an earlier lap blames the tail if it is more than
            // the slots ahead of the head, else the stamp.
            let behind = || {
                self.corrupt(if tail - head > slots {
                    Corruption {
                        kind: CorruptionKind::TailTooFarAhead { tail },
                        position: head,
                    }
                } else {
                    bad_stamp
                })
            };
            let state = match self.view.slot_state(seq, stamp) {
                Ok(state) => state,
                Err(c) if queue_stamp::is_garbage(stamp) => return Err(self.corrupt(c)),
                // A known stamp laps away from `seq`, behind it.
                Err(_) => return Err(behind()),
            };
            let state = match state {
                // Acknowledged (or its skip passed) since: not in flight.
                SlotState::Ahead => continue,
                SlotState::Behind => return Err(behind()),
                SlotState::At(queue_stamp::FREE) => InFlightState::Claimed {
                    producer: producers
                        .iter()
                        .find(|p| p.claimed == Some(seq))
                        .map(|p| p.slot),
                },
                SlotState::At(queue_stamp::WRITING) => {
                    let producer = queue_stamp::owner(stamp) as usize;
                    let Some(known) = producer_alive.get_mut(producer) else {
                        return Err(self.corrupt(bad_stamp));
                    };
                    let alive = match *known {
                        Some(alive) => alive,
                        None => *known.insert(self.lock_held(lock_slot::queue_producer(producer))?),
                    };
                    InFlightState::Writing {
                        producer,
                        producer_alive: alive,
                    }
                }
                SlotState::At(queue_stamp::COMMITTED) => {
                    depth += 1;
                    InFlightState::Committed {
                        redelivered: queue_stamp::flags(stamp) & queue_stamp::REDELIVERED != 0,
                    }
                }
                SlotState::At(queue_stamp::TAKEN) => {
                    let consumer = queue_stamp::owner(stamp) as usize;
                    let Some(known) = consumer_alive.get_mut(consumer) else {
                        return Err(self.corrupt(bad_stamp));
                    };
                    let alive = match *known {
                        Some(alive) => alive,
                        None => *known.insert(self.lock_held(lock_slot::queue_consumer(consumer))?),
                    };
                    if let Some(c) = consumers.iter_mut().find(|c| c.slot == consumer) {
                        c.holding += 1;
                    }
                    InFlightState::Taken {
                        consumer,
                        consumer_alive: alive,
                        redelivered: queue_stamp::flags(stamp) & queue_stamp::REDELIVERED != 0,
                    }
                }
                SlotState::At(queue_stamp::SKIPPED) => InFlightState::Skipped {
                    suspect: queue_stamp::flags(stamp) & queue_stamp::SUSPECT != 0,
                },
                // `slot_state` refuses every other state.
                SlotState::At(_) => return Err(self.corrupt(bad_stamp)),
            };
            in_flight.push(InFlightRecord {
                sequence: seq,
                slot: (seq & (slots - 1)) as usize,
                stamp,
                state,
            });
        }

        Ok(QueueSnapshot {
            queue: self.queue.clone(),
            config: self.config,
            path: self.path().to_owned(),
            layout_version,
            layout_hash: header.layout_hash,
            segment_size: header.segment_size,
            created_realtime_ns: header.created_realtime_ns,
            poisoned: header.state.load(Ordering::Relaxed) == STATE_POISONED,
            slot_stride: self.geometry.stride as u32,
            reclaim_after_ns: control.reclaim_after_ns,
            head,
            tail,
            depth,
            sleepers: control.sleepers.load(Ordering::Relaxed),
            redelivered: control.redelivered.load(Ordering::Relaxed),
            reclaimed_claims: control.reclaimed_claims.load(Ordering::Relaxed),
            reaped_consumers: control.reaped_consumers.load(Ordering::Relaxed),
            reaped_producers: control.reaped_producers.load(Ordering::Relaxed),
            producers,
            consumers,
            in_flight,
        })
    }

    /// Next sequence to claim, read now.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a tail no queue reaches.
    pub(super) fn tail_now(&self) -> Result<u64, InspectError> {
        let tail = self.view.control().tail.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the producers' AcqRel claim of the tail in
        // `Producer::reserve`: every stamp read after this fence is at the
        // claimed lap or later.
        fence(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(Corruption {
                kind: CorruptionKind::PositionTooLarge { value: tail },
                position: tail,
            }));
        }
        Ok(tail)
    }

    /// Record slots in the queue.
    pub(super) fn slots(&self) -> u64 {
        u64::from(self.config.slots)
    }

    /// How long a claim may stay uncommitted, in nanoseconds.
    pub(super) fn reclaim_after_ns(&self) -> u64 {
        self.view.control().reclaim_after_ns
    }

    /// What the stamp of `seq`'s slot says now (the queue's own reading).
    pub(super) fn look(&self, seq: u64) -> Result<SlotState, InspectError> {
        let stamp = self.view.header(seq).stamp.load(Ordering::Relaxed);
        self.view
            .slot_state(seq, stamp)
            .map_err(|c| self.corrupt(c))
    }

    /// Whether the slot of `seq` still holds it, committed or taken (the
    /// re-check after a copy).
    fn still_held(&self, seq: u64) -> bool {
        // SYNC POINT: the reader's half of a seqlock. A record's bytes
        // change only after its acknowledgement moved the stamp to the next
        // lap and a producer claimed the slot again (`Producer::reserve`):
        // if the stamp loaded after this fence is still at the record's lap,
        // every byte copied before it is the record's: this fence pairs
        // with the Release fence a producer makes between its "writing"
        // mark and its payload writes.
        fence(Ordering::Acquire);
        let stamp = self.view.header(seq).stamp.load(Ordering::Relaxed);
        held(self.view.slot_state(seq, stamp))
    }

    /// Reads record `seq`'s slot: the record (committed or taken, not
    /// acknowledged) copied out, at most `max_copy` payload bytes, and
    /// validated; or what the slot holds instead. Shared by [`QueueWalk`]
    /// and the [`Follower`](super::Follower).
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a stamp no build writes there (a lap
    /// behind a claimed sequence included) or a record header with unknown
    /// flags or an impossible length in a slot that still holds it.
    pub(super) fn read_held(&self, seq: u64, max_copy: usize) -> Result<HeldRead, InspectError> {
        let header = self.view.header(seq);
        let stamp = header.stamp.load(Ordering::Relaxed);
        // SYNC POINT: pairs with the producer's Release commit CAS in
        // `Claim::finish` (and a give-back's Release CAS after it): the
        // header word and payload it wrote are visible after this fence.
        fence(Ordering::Acquire);
        match self.view.slot_state(seq, stamp) {
            Ok(SlotState::At(queue_stamp::COMMITTED | queue_stamp::TAKEN)) => {}
            Ok(SlotState::Ahead) => return Ok(HeldRead::Gone),
            Ok(SlotState::At(queue_stamp::FREE | queue_stamp::WRITING)) => {
                return Ok(HeldRead::Unresolved { stamp })
            }
            Ok(SlotState::At(queue_stamp::SKIPPED)) => return Ok(HeldRead::Skipped { stamp }),
            // The tail passed `seq` only after its slot was free at its lap.
            Ok(SlotState::Behind | SlotState::At(_)) => {
                return Err(self.corrupt(Corruption {
                    kind: CorruptionKind::BadStamp { stamp },
                    position: seq,
                }))
            }
            Err(corruption) => return Err(self.corrupt(corruption)),
        }
        // Read the header word once; from here on only the copy is used,
        // checked as a consumer checks it.
        let word = header.word.load(Ordering::Relaxed);
        let (len, record_type) = match check_slot_word(word, self.config.max_payload) {
            Ok(checked) => checked,
            // Only evidence of corruption if the slot still holds it.
            Err(_) if !self.still_held(seq) => return Ok(HeldRead::Gone),
            Err(kind) => {
                return Err(self.corrupt(Corruption {
                    kind,
                    position: seq,
                }))
            }
        };
        let payload = self.copy_payload(seq, (len as usize).min(max_copy));
        if !self.still_held(seq) {
            return Ok(HeldRead::Gone);
        }
        Ok(HeldRead::Record(QueueRecord {
            sequence: seq,
            record_type,
            len,
            redelivered: queue_stamp::flags(stamp) & queue_stamp::REDELIVERED != 0,
            payload,
        }))
    }

    /// Copies the first `len` payload bytes of `seq`'s slot
    /// (`len <= max_payload`).
    fn copy_payload(&self, seq: u64, len: usize) -> Vec<u8> {
        debug_assert!(len <= self.config.max_payload as usize);
        let start = self.geometry.payload_offset(seq);
        let mut out = vec![0u8; len];
        // The payload area is `stride - SLOT_HEADER_LEN` bytes, a multiple of 16 no smaller than
        // max_payload >= len, in a 64-aligned slot of a segment whose size matches the geometry;
        // a reuse of the slot is caught by `still_held`.
        // SAFETY: every word up to the one holding byte len-1 is inside the slot, and 8-aligned;
        // `copy_racy` only makes Relaxed 8-byte atomic loads, valid on read-only memory.
        unsafe { copy_racy(self.segment().base().add(start), &mut out) };
        out
    }

    /// Walks the records `snapshot` found waiting (committed, not taken),
    /// oldest first, copying at most `max_records` of them and at most
    /// `max_copy` payload bytes of each.
    ///
    /// Each record is copied and its stamp checked again after the copy: a
    /// record whose slot moved on meanwhile (it was taken and
    /// acknowledged, so a producer may be reusing its slot) is never shown,
    /// only counted ([`QueueWalk::gone`]). A record taken but not yet
    /// acknowledged is shown: its bytes stay until the acknowledgement.
    ///
    /// The walk yields `Err` once and then ends: [`InspectError::Corrupt`]
    /// for a record header with unknown flags or an impossible length, or a
    /// stamp no build writes there.
    pub fn records(
        &self,
        snapshot: &QueueSnapshot,
        max_records: usize,
        max_copy: usize,
    ) -> QueueWalk<'_> {
        let waiting: Vec<u64> = snapshot
            .in_flight
            .iter()
            .filter(|r| matches!(r.state, InFlightState::Committed { .. }))
            .map(|r| r.sequence)
            .collect();
        QueueWalk {
            queue: self,
            waiting: waiting.into_iter(),
            remaining: max_records,
            max_copy,
            gone: 0,
            done: false,
        }
    }
}

/// Iterator over the records a queue snapshot found waiting, oldest first,
/// copied out of its mapping; made by [`QueueInspector::records`].
#[derive(Debug)]
pub struct QueueWalk<'a> {
    queue: &'a QueueInspector,
    /// Sequences still to look at.
    waiting: std::vec::IntoIter<u64>,
    remaining: usize,
    max_copy: usize,
    gone: u64,
    done: bool,
}

impl QueueWalk<'_> {
    /// Waiting records not looked at yet (not shown, when the walk stopped
    /// at its limit).
    pub fn not_shown(&self) -> usize {
        self.waiting.len()
    }

    /// Records the walk passed over because they were taken and
    /// acknowledged after the snapshot.
    pub fn gone(&self) -> u64 {
        self.gone
    }

    fn stop(&mut self, error: InspectError) -> Option<Result<QueueRecord, InspectError>> {
        self.done = true;
        Some(Err(error))
    }
}

/// Whether a slot state says the record is still there (committed or
/// taken at its lap).
fn held(state: Result<SlotState, Corruption>) -> bool {
    matches!(
        state,
        Ok(SlotState::At(queue_stamp::COMMITTED | queue_stamp::TAKEN))
    )
}

impl Iterator for QueueWalk<'_> {
    type Item = Result<QueueRecord, InspectError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Every iteration takes one sequence of the snapshot's, at most
        // `slots` of them.
        while !self.done && self.remaining > 0 {
            let Some(seq) = self.waiting.next() else {
                break;
            };
            match self.queue.read_held(seq, self.max_copy) {
                Ok(HeldRead::Record(record)) => {
                    self.remaining -= 1;
                    return Some(Ok(record));
                }
                // Taken and acknowledged since the snapshot.
                Ok(HeldRead::Gone) => self.gone += 1,
                // A committed record's slot never goes back to an earlier
                // state of its lap, nor to an earlier lap.
                Ok(HeldRead::Unresolved { stamp } | HeldRead::Skipped { stamp }) => {
                    return self.stop(self.queue.corrupt(Corruption {
                        kind: CorruptionKind::BadStamp { stamp },
                        position: seq,
                    }))
                }
                Err(e) => return self.stop(e),
            }
        }
        self.done = true;
        None
    }
}

impl std::iter::FusedIterator for QueueWalk<'_> {}

/// Finds work queue `name` in `ns`, opens its ring read-only and takes a
/// snapshot of it.
///
/// # Errors
///
/// As [`QueueInspector::open`] and [`QueueInspector::snapshot`].
pub fn inspect_queue(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
) -> Result<QueueSnapshot, InspectError> {
    QueueInspector::open(ns, name, opts)?.snapshot()
}

/// Finds work queue `name` in `ns`, takes a snapshot and copies at most
/// `max_records` of the records waiting in it (at most `max_copy` bytes of
/// each), oldest first.
///
/// # Errors
///
/// As [`inspect_queue`], and [`InspectError::Corrupt`] for a corrupt
/// record.
pub fn queue_records(
    ns: &Namespace,
    name: &str,
    opts: &OpenOptions,
    max_records: usize,
    max_copy: usize,
) -> Result<(QueueSnapshot, Vec<QueueRecord>), InspectError> {
    let queue = QueueInspector::open(ns, name, opts)?;
    let snapshot = queue.snapshot()?;
    let records = queue
        .records(&snapshot, max_records, max_copy)
        .collect::<Result<_, _>>()?;
    Ok((snapshot, records))
}
