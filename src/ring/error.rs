//! What the rings report: refused configurations, inconsistent shared
//! memory, and the two errors every ring kind shares, [`ClaimError`] on the
//! writing side and [`RecvError`] on the reading side. One type each, for
//! SPSC channels, topics and work queues alike, so that a variant means the
//! same thing whichever ring returned it.

use crate::layout::SegmentFault;

/// Why a ring's configuration is refused: which setting, what it was, and
/// what it must be. Shown as one sentence: "slots 3 must be a power of two".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting at fault, as the configuration struct names it.
    pub setting: &'static str,
    /// Its value, as given.
    pub value: String,
    /// What it must be.
    pub must_be: String,
}

impl ConfigError {
    pub(crate) fn new(
        setting: &'static str,
        value: impl std::fmt::Debug,
        must_be: impl Into<String>,
    ) -> Self {
        ConfigError {
            setting,
            value: format!("{value:?}"),
            must_be: must_be.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} must be {}",
            self.setting, self.value, self.must_be
        )
    }
}

impl std::error::Error for ConfigError {}

/// Largest position an SPSC ring accepts when a handle attaches: 2^63
/// bytes, about 29 years of writing at 10 GB/s. Positions at or past it
/// are [`CorruptionKind::PositionTooLarge`]; below it, a position plus a few
/// capacities cannot overflow.
pub const MAX_POSITION: u64 = 1 << 63;

/// What a reader found wrong in shared memory, and where.
///
/// Everything a ring reads from shared memory may have been written by a
/// buggy or dying peer; when it does not add up, the ring stops and reports
/// this instead of reading out of bounds, panicking or spinning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// What was inconsistent.
    pub kind: CorruptionKind,
    /// Ring position (not index) at which it was found.
    pub position: u64,
}

/// The kinds of [`Corruption`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The producer position is behind the consumer position.
    TailBehindHead {
        /// Producer position read.
        tail: u64,
    },
    /// The producer position is more than a capacity ahead of the consumer.
    TailTooFarAhead {
        /// Producer position read.
        tail: u64,
    },
    /// The consumer position is ahead of the producer, or more than a
    /// capacity behind it.
    HeadOutOfRange {
        /// Consumer position read.
        head: u64,
    },
    /// A position is not a multiple of 8.
    Misaligned {
        /// The position read.
        value: u64,
    },
    /// A position is at or past [`MAX_POSITION`]: no ring gets that far
    /// (it counts bytes written since the ring was made), and going on from
    /// it would overflow.
    PositionTooLarge {
        /// The position read.
        value: u64,
    },
    /// A record header has flag bits this build does not know.
    UnknownFlags {
        /// The flags read.
        flags: u16,
    },
    /// A padding record does not end exactly at the end of the region.
    BadPadding {
        /// Its length field.
        len: u32,
    },
    /// A record is longer than the ring's maximum payload.
    LengthTooLarge {
        /// Its length field.
        len: u32,
    },
    /// A record runs past the end of the region or past the producer
    /// position.
    RecordOutOfBounds {
        /// Its length field.
        len: u32,
    },
    /// A record slot's stamp holds a state, flag or lap no build writes
    /// there (work queues).
    BadStamp {
        /// The stamp.
        stamp: u64,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use CorruptionKind::*;
        let at = self.position;
        match self.kind {
            TailBehindHead { tail } => write!(f, "producer position {tail} is behind consumer position {at}"),
            TailTooFarAhead { tail } => write!(f, "producer position {tail} is more than a capacity ahead of consumer position {at}"),
            HeadOutOfRange { head } => write!(f, "consumer position {head} is out of range of producer position {at}"),
            Misaligned { value } => write!(f, "position {value} is not 8-byte aligned"),
            PositionTooLarge { value } => write!(f, "position {value} is past the largest a ring reaches ({MAX_POSITION})"),
            UnknownFlags { flags } => write!(f, "record at {at} has unknown flags {flags:#06x}"),
            BadPadding { len } => write!(f, "padding record at {at} with length {len} does not end at the end of the ring"),
            LengthTooLarge { len } => write!(f, "record at {at} claims {len} bytes, more than the ring's maximum payload"),
            RecordOutOfBounds { len } => write!(f, "record at {at} with length {len} runs past the end of the ring or the producer position"),
            BadStamp { stamp } => write!(f, "record slot of {at} holds stamp {stamp:#x}, which no build writes there"),
        }
    }
}

impl std::error::Error for Corruption {}

/// Why a claim (or a send) did not get a slot, or a commit did not publish.
///
/// The same type for every ring kind; a variant that one kind never
/// returns says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// No room now: the slowest reader has not released the space (an SPSC
    /// ring's consumer, a `Backpressure` topic's slowest live subscriber, a
    /// work queue's unacknowledged records). Wait, or try again. Never
    /// returned by an `Overwrite` topic.
    Full,
    /// The record can never fit: `len` exceeds the ring's maximum payload.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// The ring's maximum payload.
        max: u32,
    },
    /// A timed claim gave up.
    TimedOut,
    /// The wait strategy was [`WaitStrategy::Blocking`], which sleeps until
    /// woken, and nothing wakes a writer waiting for space: wait with
    /// [`WaitStrategy::Backoff`] (or spin or yield) instead. Returned before
    /// the call looks at the ring, whether it is full or not.
    ///
    /// [`WaitStrategy::Blocking`]: crate::wait::WaitStrategy::Blocking
    /// [`WaitStrategy::Backoff`]: crate::wait::WaitStrategy::Backoff
    CannotSleep,
    /// Returned by a commit (topics and work queues): the claim stayed
    /// uncommitted longer than the ring's `reclaim_after` (the process
    /// stalled: stopped, descheduled, paused in a debugger) and a waiter
    /// reclaimed it. The record was not delivered, and nothing written
    /// through the claim reached anyone; readers count it as missed. Send
    /// it again if it still matters.
    Reclaimed {
        /// The sequence the claim held.
        sequence: u64,
    },
    /// A position or stamp in shared memory holds a value no build writes.
    Corrupt(Corruption),
    /// The ring's segment can no longer be used (removed, truncated or
    /// poisoned): nothing written to it can reach a reader any more.
    /// Re-open the ring by name.
    Unusable(SegmentFault),
}

/// Why a read, a receive or a take returned no record.
///
/// The same type for every ring kind; a variant that one kind never
/// returns says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing new yet.
    Empty,
    /// `Overwrite` topics only: publishers overwrote `missed` records
    /// before this subscriber read them. It now continues at the oldest
    /// record still intact.
    Lapped {
        /// Records lost, exactly.
        missed: u64,
    },
    /// A timed call gave up.
    TimedOut,
    /// The wait strategy was [`WaitStrategy::Blocking`], which sleeps until
    /// a writer wakes it, and this ring cannot wake its reader: an SPSC
    /// channel made without [`SpscConfig::with_wakeups`]. Wait with
    /// [`WaitStrategy::Backoff`] instead. Returned before the call looks at
    /// the ring, whether it is empty or not.
    ///
    /// [`WaitStrategy::Blocking`]: crate::wait::WaitStrategy::Blocking
    /// [`WaitStrategy::Backoff`]: crate::wait::WaitStrategy::Backoff
    /// [`SpscConfig::with_wakeups`]: crate::ring::spsc::SpscConfig::with_wakeups
    CannotSleep,
    /// A copying call's buffer is shorter than the record. The record is
    /// not consumed: the next call returns it again (a work queue's record
    /// stays in the queue, for this consumer or another).
    BufferTooSmall {
        /// The record's length.
        needed: usize,
    },
    /// What a writer published is inconsistent. A topic subscriber's
    /// [`skip`](crate::ring::broadcast::Subscriber::skip) passes the record
    /// at fault (counted as missed).
    Corrupt(Corruption),
    /// The ring's segment can no longer be used (removed, truncated or
    /// poisoned): no writer can reach this handle any more. Re-open the ring
    /// by name.
    Unusable(SegmentFault),
}

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimError::Full => write!(
                f,
                "ring is full (the slowest reader has not released the space yet)"
            ),
            ClaimError::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes exceeds the ring's maximum payload of {max}"
            ),
            ClaimError::TimedOut => write!(f, "timed out waiting for free space"),
            ClaimError::CannotSleep => write!(
                f,
                "WaitStrategy::Blocking cannot sleep here: nothing wakes a writer \
                 waiting for space; wait with WaitStrategy::Backoff"
            ),
            ClaimError::Reclaimed { sequence } => write!(
                f,
                "record {sequence} was not delivered: the claim stayed uncommitted past the \
                 ring's reclaim_after and was reclaimed (send it again)"
            ),
            ClaimError::Corrupt(c) => write!(f, "ring is corrupt: {c}"),
            ClaimError::Unusable(fault) => write!(f, "ring is unusable: {fault}"),
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
            RecvError::CannotSleep => write!(
                f,
                "WaitStrategy::Blocking cannot sleep here: the ring was created without \
                 wake-ups (SpscConfig::with_wakeups); wait with WaitStrategy::Backoff"
            ),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small for a {needed}-byte record")
            }
            RecvError::Corrupt(c) => write!(
                f,
                "ring is corrupt: {c} (a topic subscriber's skip() passes the record)"
            ),
            RecvError::Unusable(fault) => write!(f, "ring is unusable: {fault}"),
        }
    }
}

impl std::error::Error for ClaimError {}
impl std::error::Error for RecvError {}
