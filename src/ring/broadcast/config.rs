//! Configuration of a broadcast log and the errors of its handles.

use std::time::Duration;

use crate::layout::{SlotGeometry, MAX_PUBLISHERS, MAX_SUBSCRIBERS};
use crate::ring::ConfigError;

/// What a broadcast log does when a subscriber falls a whole ring behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Publishers wait for the slowest live subscriber: nothing is lost.
    Backpressure,
    /// Publishers never wait; a lapped subscriber is told how much it missed.
    Overwrite,
}

impl Policy {
    /// The value stored in shared memory.
    pub fn to_raw(self) -> u32 {
        match self {
            Policy::Backpressure => 0,
            Policy::Overwrite => 1,
        }
    }

    /// Decodes a value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Policy::Backpressure),
            1 => Some(Policy::Overwrite),
            _ => None,
        }
    }
}

/// Where a new subscriber starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartAt {
    /// At the next record published after it subscribes.
    #[default]
    Tail,
    /// At the oldest record it can safely be handed. Under `Overwrite`, the
    /// oldest record still in the log (a log's length behind the tail).
    /// Under `Backpressure`, no earlier than the gate the publishers last
    /// published (where the slowest subscriber stood at their last scan of
    /// the cursors): records before it may still lie in their slots, but a
    /// publisher may already be reusing those, so a new subscriber is not
    /// handed them. With no subscriber gating, that can be close to the
    /// tail.
    Oldest,
}

/// Longest claim timeout a log may have: a stalled or dead publisher's
/// claim holds its readers back at most this long.
pub const MAX_RECLAIM_AFTER: Duration = Duration::from_secs(3600);

/// Size and behaviour of a broadcast log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastConfig {
    /// Record slots: a power of two.
    pub slots: u32,
    /// Largest payload of one record, 1..=1 MiB.
    pub max_payload: u32,
    /// Back-pressure or overwrite.
    pub policy: Policy,
    /// Subscriber slots (1..=4096, [`MAX_SUBSCRIBERS`]).
    pub max_subscribers: u32,
    /// Publisher slots (1..=1024, [`MAX_PUBLISHERS`]). With one, under
    /// `Backpressure`, the publisher claims and commits with plain stores
    /// (no locked instruction per record), and its claims are reclaimed
    /// only once it died.
    pub max_publishers: u32,
    /// How long a claim may stay uncommitted before a waiter reclaims it
    /// (except the claim of a live sole `Backpressure` publisher, which
    /// nobody else could publish past: see `max_publishers`).
    pub reclaim_after: Duration,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            slots: 4096,
            max_payload: 240,
            policy: Policy::Backpressure,
            max_subscribers: 64,
            max_publishers: 16,
            reclaim_after: Duration::from_secs(2),
        }
    }
}

impl BroadcastConfig {
    /// Bytes per record slot: header plus payload, rounded up to 64.
    pub fn slot_stride(&self) -> usize {
        crate::layout::slot_stride(self.max_payload)
    }

    /// Where the parts of a log segment for this configuration lie (for a
    /// configuration that passed [`BroadcastConfig::validate`]).
    pub fn geometry(&self) -> SlotGeometry {
        SlotGeometry {
            readers: self.max_subscribers as usize,
            writers: self.max_publishers as usize,
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
        if !self.slots.is_power_of_two() {
            return Err(ConfigError::new("slots", self.slots, "a power of two"));
        }
        if self.max_payload == 0 || self.max_payload > 1 << 20 {
            return Err(ConfigError::new(
                "max_payload",
                self.max_payload,
                "1..=1048576",
            ));
        }
        if self.max_subscribers == 0 || self.max_subscribers > MAX_SUBSCRIBERS {
            let range = format!("1..={MAX_SUBSCRIBERS}");
            return Err(ConfigError::new(
                "max_subscribers",
                self.max_subscribers,
                range,
            ));
        }
        if self.max_publishers == 0 || self.max_publishers > MAX_PUBLISHERS {
            let range = format!("1..={MAX_PUBLISHERS}");
            return Err(ConfigError::new(
                "max_publishers",
                self.max_publishers,
                range,
            ));
        }
        if self.reclaim_after.is_zero() || self.reclaim_after > MAX_RECLAIM_AFTER {
            let range = format!("positive and at most {MAX_RECLAIM_AFTER:?}");
            return Err(ConfigError::new("reclaim_after", self.reclaim_after, range));
        }
        Ok(())
    }
}

pub use crate::ring::{ClaimError, RecvError};

/// Why a publisher or subscriber could not join a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Every slot of that kind is held by a live process.
    NoFreeSlot {
        /// "publisher" or "subscriber".
        role: &'static str,
        /// How many slots the topic has.
        slots: usize,
    },
    /// A live process already holds this durable subscriber name.
    DurableInUse {
        /// The name.
        name: String,
    },
    /// The durable name is empty or longer than 64 bytes.
    BadDurableName,
    /// A participant slot or a position in shared memory holds a value no
    /// build writes.
    Corrupt {
        /// "publisher" or "subscriber".
        role: &'static str,
        /// The slot at fault.
        slot: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::NoFreeSlot { role, slots } => write!(
                f,
                "all {slots} {role} slots of the topic are held by live processes (raise max_{role}s when creating the topic)"
            ),
            RegisterError::DurableInUse { name } => {
                write!(f, "durable subscriber \"{name}\" is already attached in a live process")
            }
            RegisterError::BadDurableName => write!(f, "a durable subscriber name must be 1-64 bytes"),
            RegisterError::Corrupt { role, slot, reason } => write!(
                f,
                "{role} slot {slot} of the topic is corrupt: {reason} (remove the topic and create it again)"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}
