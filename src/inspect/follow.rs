//! Following a ring read-only: every record as it is published, from a
//! process that is not one of the ring's participants (the [`Follower`]).

use std::collections::VecDeque;
use std::path::Path;

use crate::directory::{RingKind, RingRecord};
use crate::layout::queue_stamp;
use crate::record::{decode_v2, ParseError, V2Summary};
use crate::ring::{Corruption, CorruptionKind};
use crate::segment::{Namespace, OpenOptions};
use crate::sync::monotonic_ns;

use super::queue::{HeldRead, SlotState};
use super::spsc::FrameRead;
use super::topic::{SlotLook, SlotRead};
use super::{InspectError, QueueInspector, SpscInspector, TopicInspector};

/// How many times [`Follower::rewind`] walks a channel again when its
/// consumer overtook the walk, before it starts at the tail instead.
const REWIND_ATTEMPTS: u32 = 8;

/// Shortest wait for an unresolved claim before it is passed over, in
/// nanoseconds (for a ring with a very short claim timeout).
const MIN_UNRESOLVED_WAIT_NS: u64 = 10_000_000;

/// One record a [`Follower`] copied out of its ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedRecord {
    /// Its sequence number (topic, work queue) or the ring position of its
    /// frame (SPSC channel).
    pub position: u64,
    /// Record type set by its writer.
    pub record_type: u16,
    /// Flags of an SPSC frame header (0 for topics and queues).
    pub flags: u16,
    /// A work queue's record that was given back once (its first consumer
    /// died holding it, or gave it back).
    pub redelivered: bool,
    /// The whole payload.
    pub payload: Vec<u8>,
}

impl FollowedRecord {
    /// The payload decoded as a Protocol V2 message (see [`decode_v2`]).
    ///
    /// # Errors
    ///
    /// The payload is not one whole Protocol V2 message.
    pub fn decode_v2(&self) -> Result<V2Summary, ParseError> {
        decode_v2(&self.payload)
    }
}

/// Why records went by a [`Follower`] unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissCause {
    /// A topic's publishers reused the records' slots before the follower
    /// copied them.
    Overwritten,
    /// A work queue's consumers took and acknowledged the records (or
    /// passed skipped claims there), or an SPSC channel's consumer released
    /// them, before the follower copied them.
    Consumed,
    /// A topic's publisher held the record's claim past the claim timeout
    /// and another reclaimed it: the record was never published.
    Reclaimed,
    /// The record's claim stayed unresolved for twice the claim timeout
    /// with nobody reclaiming it; the follower passed it over.
    Abandoned,
}

impl MissCause {
    /// Lower-case name: `overwritten`, `consumed`, `reclaimed`, `abandoned`.
    pub fn name(self) -> &'static str {
        match self {
            MissCause::Overwritten => "overwritten",
            MissCause::Consumed => "consumed",
            MissCause::Reclaimed => "reclaimed",
            MissCause::Abandoned => "abandoned",
        }
    }
}

/// Records a [`Follower`] could not read: positions `from .. to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missed {
    /// First position missed (a sequence, or a channel's byte position).
    pub from: u64,
    /// Position the follower went on from.
    pub to: u64,
    /// How many records that is: `to - from` for a topic or a queue (at
    /// most: skipped claims among them are counted too); `None` for an
    /// SPSC channel, whose positions count bytes.
    pub records: Option<u64>,
    /// Why.
    pub cause: MissCause,
}

/// What [`Follower::poll`] found next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Followed {
    /// The next record, copied out and validated.
    Record(FollowedRecord),
    /// Records that went by unread; the follower goes on after them.
    Missed(Missed),
}

#[derive(Debug)]
enum Ring {
    Topic(TopicInspector),
    Spsc(SpscInspector),
    Queue(QueueInspector),
}

/// A read-only follower of one ring: hands out its records one by one as
/// they are published, and says which ones it missed.
///
/// Made at the ring's end (it sees records published from then on);
/// [`Follower::rewind`] moves it back over the last records still held.
///
/// A [`Follower`] holds the inspector's read-only mapping of a topic, an
/// SPSC channel or a work queue and a position of its own, kept in its
/// process: it registers nowhere, takes no lock, writes no byte. So it
/// never gates a `Backpressure` topic's publishers (they do not know it is
/// there), never takes a queue's records and never moves a channel's
/// consumer. The price is that nothing waits for it either: when the ring
/// reuses a record's bytes before the follower has copied them, the
/// follower reports how many records it missed ([`Followed::Missed`]) and
/// goes on from the oldest record still intact.
///
/// Every record is copied under the checks the inspector's walks use (the
/// same functions): a topic's slot stamp before and after the copy (under
/// `Backpressure`, the tail as well, since publishers rewrite slots in
/// place), a queue's slot stamp, a channel's consumer position. A copy
/// that fails its check is never handed out.
///
/// What "missed" means depends on the kind of ring:
///
/// | kind | position | records are gone when |
/// |---|---|---|
/// | topic | sequence | publishers reused their slots ([`MissCause::Overwritten`]) or reclaimed a stalled claim ([`MissCause::Reclaimed`]) |
/// | work queue | sequence | a consumer took and acknowledged them ([`MissCause::Consumed`]) |
/// | SPSC channel | byte | the consumer released them ([`MissCause::Consumed`]); the count of records is unknown, the bytes are |
///
/// A record whose claim stays unresolved for twice the ring's claim
/// timeout (its writer stalled or died, and no live participant reclaimed
/// it) is passed over as [`MissCause::Abandoned`].
///
/// # Examples
///
/// ```
/// use shmbus::inspect::{Followed, Follower};
/// use shmbus::segment::OpenOptions;
/// use shmbus::{Bus, TopicConfig};
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-follow-{}", std::process::id()));
/// let bus = Bus::at(&tmp, "doc")?;
/// let md = bus.topic("md", &TopicConfig::default())?;
/// let mut publisher = md.publisher()?;
/// publisher.try_send(1, b"first")?;
///
/// let log = shmbus::inspect::TopicInspector::open(bus.namespace(), "md", &OpenOptions::default())?;
/// let mut follower = Follower::topic(log)?; // at the tail: new records only
/// follower.rewind(1)?; // ... and the last one published before
/// publisher.try_send(2, b"second")?;
///
/// let mut seen = Vec::new();
/// while let Some(Followed::Record(r)) = follower.poll()? {
///     seen.push(r.payload);
/// }
/// assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
/// # md.remove()?;
/// # drop((publisher, md, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Follower {
    ring: Ring,
    /// The next position to read: a sequence (topic, queue) or the
    /// position of a frame (SPSC channel).
    position: u64,
    /// The position whose claim was found unresolved, and when
    /// (`CLOCK_MONOTONIC` ns).
    unresolved: Option<(u64, u64)>,
}

impl Follower {
    /// Opens the ring of a directory record read-only, whatever its kind,
    /// and follows it from its end.
    ///
    /// # Errors
    ///
    /// As [`TopicInspector::open_topic`], [`SpscInspector::open_channel`]
    /// or [`QueueInspector::open_queue`].
    pub fn open(
        ns: &Namespace,
        record: RingRecord,
        opts: &OpenOptions,
    ) -> Result<Self, InspectError> {
        match record.kind() {
            RingKind::Broadcast => Self::topic(TopicInspector::open_topic(ns, record, opts)?),
            RingKind::Spsc => Self::spsc(SpscInspector::open_channel(ns, record, opts)?),
            RingKind::Queue => Self::queue(QueueInspector::open_queue(ns, record, opts)?),
        }
    }

    /// Follows a topic from its tail.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a tail no log reaches.
    pub fn topic(log: TopicInspector) -> Result<Self, InspectError> {
        Self::at_end(Ring::Topic(log))
    }

    /// Follows an SPSC channel from its producer position.
    ///
    /// # Errors
    ///
    /// None today; kept for symmetry with the other kinds.
    pub fn spsc(ring: SpscInspector) -> Result<Self, InspectError> {
        Self::at_end(Ring::Spsc(ring))
    }

    /// Follows a work queue from its tail.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a tail no queue reaches.
    pub fn queue(queue: QueueInspector) -> Result<Self, InspectError> {
        Self::at_end(Ring::Queue(queue))
    }

    fn at_end(ring: Ring) -> Result<Self, InspectError> {
        let mut follower = Follower {
            ring,
            position: 0,
            unresolved: None,
        };
        follower.position = follower.end()?;
        Ok(follower)
    }

    /// The kind of ring followed.
    pub fn kind(&self) -> RingKind {
        self.record().kind()
    }

    /// The directory's record of the ring followed.
    pub fn record(&self) -> &RingRecord {
        match &self.ring {
            Ring::Topic(log) => log.topic(),
            Ring::Spsc(ring) => ring.channel(),
            Ring::Queue(queue) => queue.queue(),
        }
    }

    /// The ring's segment file.
    pub fn path(&self) -> &Path {
        match &self.ring {
            Ring::Topic(log) => log.path(),
            Ring::Spsc(ring) => ring.path(),
            Ring::Queue(queue) => queue.path(),
        }
    }

    /// Whether positions count bytes (an SPSC channel) rather than records.
    pub fn positions_are_bytes(&self) -> bool {
        matches!(self.ring, Ring::Spsc(_))
    }

    /// The next position the follower reads.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Where the ring's writers are now: the tail of a topic or a queue
    /// (next sequence to claim), the producer position of a channel. The
    /// follower has caught up when its position reaches it.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a tail no ring reaches.
    pub fn end(&self) -> Result<u64, InspectError> {
        match &self.ring {
            Ring::Topic(log) => log.tail_now(),
            Ring::Spsc(ring) => Ok(ring.load_tail()),
            Ring::Queue(queue) => queue.tail_now(),
        }
    }

    /// Moves the follower back so that the last `records` records still
    /// held by the ring come first (fewer if it holds fewer): for a topic,
    /// the last committed records (and claims in progress) the log still
    /// holds; for a queue, the last records committed or taken and not yet
    /// acknowledged (and claims in progress); for a channel, the last
    /// records between its consumer and producer positions.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a corrupt position or channel frame.
    pub fn rewind(&mut self, records: usize) -> Result<(), InspectError> {
        self.unresolved = None;
        self.position = match &self.ring {
            Ring::Topic(log) => {
                let tail = log.tail_now()?;
                let oldest = tail.saturating_sub(log.slots());
                let (mut seq, mut start, mut found) = (tail, tail, 0);
                // At most `slots` sequences.
                while found < records && seq > oldest {
                    seq -= 1;
                    match log.look(seq) {
                        SlotLook::Committed | SlotLook::NotYet => {
                            found += 1;
                            start = seq;
                        }
                        SlotLook::Skipped | SlotLook::Reclaimed => {}
                        // Overwritten since the tail was read: so is
                        // everything older.
                        SlotLook::LaterLap => break,
                    }
                }
                start
            }
            Ring::Queue(queue) => {
                let tail = queue.tail_now()?;
                let oldest = tail.saturating_sub(queue.slots());
                let (mut seq, mut start, mut found) = (tail, tail, 0);
                // At most `slots` sequences.
                while found < records && seq > oldest {
                    seq -= 1;
                    if let Ok(SlotState::At(
                        queue_stamp::COMMITTED
                        | queue_stamp::TAKEN
                        | queue_stamp::FREE
                        | queue_stamp::WRITING,
                    )) = queue.look(seq)
                    {
                        found += 1;
                        start = seq;
                    }
                }
                start
            }
            Ring::Spsc(ring) => rewind_channel(ring, records)?,
        };
        Ok(())
    }

    /// The next record or gap, if there is one now; `None` when the
    /// follower has caught up with the ring's writers (or waits for a
    /// record being written). Never waits itself: callers poll again,
    /// sleeping as they see fit.
    ///
    /// # Errors
    ///
    /// [`InspectError::Corrupt`] for a position, stamp or record no healthy
    /// ring holds (the follower does not move past it).
    pub fn poll(&mut self) -> Result<Option<Followed>, InspectError> {
        match &self.ring {
            Ring::Topic(_) => self.poll_topic(),
            Ring::Spsc(_) => self.poll_spsc(),
            Ring::Queue(_) => self.poll_queue(),
        }
    }

    /// Moves to `to` and reports the records before it as missed.
    fn missed(&mut self, to: u64, cause: MissCause) -> Option<Followed> {
        let from = self.position;
        self.position = to;
        Some(Followed::Missed(Missed {
            from,
            to,
            records: (!self.positions_are_bytes()).then(|| to - from),
            cause,
        }))
    }

    /// Moves to `next` and hands out `record`.
    fn hand_out(&mut self, next: u64, record: FollowedRecord) -> Option<Followed> {
        self.position = next;
        Some(Followed::Record(record))
    }

    /// Whether the claim at the position has been unresolved for longer
    /// than twice `claim_timeout_ns` (it starts counting on the first
    /// call for a position).
    fn unresolved_too_long(&mut self, claim_timeout_ns: u64) -> bool {
        let now = monotonic_ns();
        match self.unresolved {
            Some((position, since)) if position == self.position => {
                now.saturating_sub(since)
                    > claim_timeout_ns
                        .saturating_mul(2)
                        .max(MIN_UNRESOLVED_WAIT_NS)
            }
            _ => {
                self.unresolved = Some((self.position, now));
                false
            }
        }
    }

    fn poll_topic(&mut self) -> Result<Option<Followed>, InspectError> {
        let Ring::Topic(log) = &self.ring else {
            unreachable!("poll_topic is called for a topic")
        };
        // Every round passes one skipped sequence; the tail bounds them.
        loop {
            let p = self.position;
            let tail = log.tail_now()?;
            if p >= tail {
                return Ok(None);
            }
            let oldest = tail.saturating_sub(log.slots());
            if p < oldest {
                return Ok(self.missed(oldest, MissCause::Overwritten));
            }
            match log.read_slot(p)? {
                SlotRead::Record(r) => {
                    let record = FollowedRecord {
                        position: r.sequence,
                        record_type: r.record_type,
                        flags: r.flags,
                        redelivered: false,
                        payload: r.payload,
                    };
                    return Ok(self.hand_out(p + 1, record));
                }
                SlotRead::Skipped => self.position = p + 1,
                SlotRead::Reclaimed => return Ok(self.missed(p + 1, MissCause::Reclaimed)),
                // The log moved past `p`: on from the oldest it holds now.
                SlotRead::Overwritten => {
                    let oldest = log.tail_now()?.saturating_sub(log.slots());
                    return Ok(self.missed(oldest.max(p + 1), MissCause::Overwritten));
                }
                SlotRead::NotYet => {
                    let timeout = log.reclaim_after_ns();
                    if self.unresolved_too_long(timeout) {
                        return Ok(self.missed(p + 1, MissCause::Abandoned));
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn poll_queue(&mut self) -> Result<Option<Followed>, InspectError> {
        let Ring::Queue(queue) = &self.ring else {
            unreachable!("poll_queue is called for a queue")
        };
        // Every round passes one skipped sequence; the tail bounds them.
        loop {
            let p = self.position;
            let tail = queue.tail_now()?;
            if p >= tail {
                return Ok(None);
            }
            // A slot is claimed again only after its record was
            // acknowledged: everything below `oldest` was consumed.
            let oldest = tail.saturating_sub(queue.slots());
            if p < oldest {
                return Ok(self.missed(oldest, MissCause::Consumed));
            }
            match queue.read_held(p, usize::MAX)? {
                HeldRead::Record(r) => {
                    let record = FollowedRecord {
                        position: r.sequence,
                        record_type: r.record_type,
                        flags: 0,
                        redelivered: r.redelivered,
                        payload: r.payload,
                    };
                    return Ok(self.hand_out(p + 1, record));
                }
                HeldRead::Skipped { .. } => self.position = p + 1,
                // One gap for the run of acknowledged records from `p` on.
                HeldRead::Gone => {
                    let mut to = p + 1;
                    while to < tail && matches!(queue.look(to), Ok(SlotState::Ahead)) {
                        to += 1;
                    }
                    return Ok(self.missed(to, MissCause::Consumed));
                }
                HeldRead::Unresolved { .. } => {
                    let timeout = queue.reclaim_after_ns();
                    if self.unresolved_too_long(timeout) {
                        return Ok(self.missed(p + 1, MissCause::Abandoned));
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn poll_spsc(&mut self) -> Result<Option<Followed>, InspectError> {
        let Ring::Spsc(ring) = &self.ring else {
            unreachable!("poll_spsc is called for a channel")
        };
        // Every round passes one padding frame: at most one per lap.
        loop {
            let p = self.position;
            let head = ring.load_head();
            if p < head {
                return Ok(self.missed(head, MissCause::Consumed));
            }
            let tail = ring.load_tail();
            if p >= tail {
                return Ok(None);
            }
            if tail - p > ring.capacity() {
                return Err(InspectError::Corrupt {
                    path: ring.path().to_owned(),
                    corruption: Corruption {
                        kind: CorruptionKind::TailTooFarAhead { tail },
                        position: p,
                    },
                });
            }
            match ring.read_frame(p, tail, usize::MAX) {
                Ok(FrameRead::Padding { next }) => self.position = next,
                Ok(FrameRead::Record { record, next }) => {
                    let record = FollowedRecord {
                        position: record.position,
                        record_type: record.record_type,
                        flags: record.flags,
                        redelivered: false,
                        payload: record.payload,
                    };
                    return Ok(self.hand_out(next, record));
                }
                Err(InspectError::Overtaken { head, .. }) => {
                    return Ok(self.missed(head, MissCause::Consumed))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The position of the `records`-th last record between a channel's
/// consumer and producer positions (its producer position if it holds
/// none), walking its frames again if the consumer overtakes the walk.
fn rewind_channel(ring: &SpscInspector, records: usize) -> Result<u64, InspectError> {
    for _ in 0..REWIND_ATTEMPTS {
        let head = ring.load_head();
        let tail = ring.load_tail();
        if records == 0 || tail <= head {
            return Ok(tail);
        }
        let mut last: VecDeque<u64> = VecDeque::new();
        let mut p = head;
        let mut overtaken = false;
        // Every frame moves `p` forward by at least 8 bytes.
        while p < tail {
            match ring.read_frame(p, tail, 0) {
                Ok(FrameRead::Padding { next }) => p = next,
                Ok(FrameRead::Record { record, next }) => {
                    if last.len() == records {
                        last.pop_front();
                    }
                    last.push_back(record.position);
                    p = next;
                }
                Err(InspectError::Overtaken { .. }) => {
                    overtaken = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if !overtaken {
            return Ok(last.front().copied().unwrap_or(tail));
        }
    }
    // The consumer keeps passing the walk: start from now.
    Ok(ring.load_tail())
}
