//! The lock-free algorithms.
//!
//! Each ring is written against a typed control block (a `#[repr(C)]` struct
//! of atomics from [`crate::layout`]) and a data region of bytes (`region::DataRegion`),
//! never against a file. In production both live in a memory-mapped
//! [`crate::segment::Segment`]; in unit tests and loom models they live on
//! the heap, so loom checks the very code that runs in production.
//!
//! * [`spsc`]: one producer, one consumer, variable-length records.
//! * [`broadcast`]: many publishers, any number of subscribers with their
//!   own cursors, `Backpressure` or `Overwrite`.
//! * [`queue`]: many producers, many consumers, each record to exactly one
//!   consumer, redelivered if that consumer dies holding it.

pub mod broadcast;
pub(crate) mod liveness;
pub mod queue;
pub(crate) mod region;
pub mod spsc;
pub(crate) mod stall;

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
