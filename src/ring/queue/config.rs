//! Configuration of a work queue and the errors of its handles.

use std::time::Duration;

use crate::layout::{SlotGeometry, MAX_QUEUE_CONSUMERS, MAX_QUEUE_PRODUCERS};
use crate::ring::ConfigError;

/// Longest `reclaim_after` a queue may have: a stalled or dead producer's
/// claim holds the consumers back at most this long.
pub const MAX_RECLAIM_AFTER: Duration = Duration::from_secs(3600);

/// Size and behaviour of a work queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueConfig {
    /// Record slots: a power of two, at least 2. A full queue holds this
    /// many records.
    pub slots: u32,
    /// Largest payload of one record, 1..=1 MiB.
    pub max_payload: u32,
    /// Producer slots (1..=64, [`MAX_QUEUE_PRODUCERS`]).
    pub max_producers: u32,
    /// Consumer slots (1..=64, [`MAX_QUEUE_CONSUMERS`]).
    pub max_consumers: u32,
    /// How long a claim may stay uncommitted before a waiting consumer
    /// reclaims it (a counted skip): the longest a stalled or dead producer
    /// holds the queue up.
    pub reclaim_after: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            slots: 4096,
            max_payload: 240,
            max_producers: 16,
            max_consumers: 16,
            reclaim_after: Duration::from_secs(2),
        }
    }
}

impl QueueConfig {
    /// Bytes per record slot: header plus payload, rounded up to 64.
    pub fn slot_stride(&self) -> usize {
        crate::layout::slot_stride(self.max_payload)
    }

    /// Where the parts of a queue segment for this configuration lie (for
    /// a configuration that passed [`QueueConfig::validate`]).
    pub fn geometry(&self) -> SlotGeometry {
        SlotGeometry {
            readers: self.max_consumers as usize,
            writers: self.max_producers as usize,
            slots: self.slots as usize,
            stride: self.slot_stride(),
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// The first setting out of range, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.slots.is_power_of_two() || self.slots < 2 {
            return Err(ConfigError::new(
                "slots",
                self.slots,
                "a power of two, at least 2",
            ));
        }
        if self.max_payload == 0 || self.max_payload > 1 << 20 {
            return Err(ConfigError::new(
                "max_payload",
                self.max_payload,
                "1..=1048576",
            ));
        }
        if self.max_producers == 0 || self.max_producers > MAX_QUEUE_PRODUCERS {
            let range = format!("1..={MAX_QUEUE_PRODUCERS}");
            return Err(ConfigError::new("max_producers", self.max_producers, range));
        }
        if self.max_consumers == 0 || self.max_consumers > MAX_QUEUE_CONSUMERS {
            let range = format!("1..={MAX_QUEUE_CONSUMERS}");
            return Err(ConfigError::new("max_consumers", self.max_consumers, range));
        }
        if self.reclaim_after.is_zero() || self.reclaim_after > MAX_RECLAIM_AFTER {
            let range = format!("positive and at most {MAX_RECLAIM_AFTER:?}");
            return Err(ConfigError::new("reclaim_after", self.reclaim_after, range));
        }
        Ok(())
    }
}

pub use crate::ring::{ClaimError, RecvError};
