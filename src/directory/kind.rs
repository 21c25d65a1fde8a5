//! What a directory entry names: a kind of ring, with its typed
//! configuration, and how each kind's configuration is written into the
//! seven configuration words of a [`TopicEntry`](crate::layout::TopicEntry)
//! (the table in its docs).
//!
//! Everything a kind needs is here: its number in the entry
//! ([`RingKind::to_raw`]), its ring file ([`RingKind::segment_name`]), its
//! configuration ([`RingConfig`]) and the two functions that write it into
//! an entry and read it back ([`RingConfig::encode`],
//! [`RingConfig::decode`]). Decoding reads hostile words: every value is
//! checked, and the configuration it gives is validated by the ring's own
//! `validate`.

use std::time::Duration;

use crate::layout::{
    SegmentKind, ENTRY_LARGEST_PAYLOAD, SPSC_FLAG_WAKEUPS, TOPIC_KIND_BROADCAST, TOPIC_KIND_QUEUE,
    TOPIC_KIND_SPSC,
};
use crate::ring::broadcast::{BroadcastConfig, Policy};
use crate::ring::queue::QueueConfig;
use crate::ring::spsc::SpscConfig;
use crate::ring::ConfigError;

/// The kind of ring a directory entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RingKind {
    /// A broadcast topic: publishers append to a log that any number of
    /// subscribers read ([`crate::ring::broadcast`]).
    Broadcast,
    /// An SPSC channel: one producer, one consumer ([`crate::ring::spsc`]).
    Spsc,
    /// A work queue: many producers, many consumers, each record to one
    /// consumer ([`crate::ring::queue`]).
    Queue,
}

impl RingKind {
    /// Every kind, in the order of their numbers.
    pub const ALL: [RingKind; 3] = [RingKind::Broadcast, RingKind::Spsc, RingKind::Queue];

    /// The kind's number in [`TopicEntry::kind`](crate::layout::TopicEntry::kind).
    pub const fn to_raw(self) -> u32 {
        match self {
            RingKind::Broadcast => TOPIC_KIND_BROADCAST,
            RingKind::Spsc => TOPIC_KIND_SPSC,
            RingKind::Queue => TOPIC_KIND_QUEUE,
        }
    }

    /// The kind numbered `raw`, if there is one.
    pub const fn from_raw(raw: u32) -> Option<RingKind> {
        match raw {
            TOPIC_KIND_BROADCAST => Some(RingKind::Broadcast),
            TOPIC_KIND_SPSC => Some(RingKind::Spsc),
            TOPIC_KIND_QUEUE => Some(RingKind::Queue),
            _ => None,
        }
    }

    /// Short name, as `ring-dump` prints it: `topic`, `spsc`, `queue`.
    pub const fn name(self) -> &'static str {
        match self {
            RingKind::Broadcast => "topic",
            RingKind::Spsc => "spsc",
            RingKind::Queue => "queue",
        }
    }

    /// What messages call a ring of this kind: `topic`, `SPSC channel`.
    pub const fn noun(self) -> &'static str {
        match self {
            RingKind::Broadcast => "topic",
            RingKind::Spsc => "SPSC channel",
            RingKind::Queue => "work queue",
        }
    }

    /// [`RingKind::noun`] with its article: `a topic`, `an SPSC channel`.
    pub const fn a_noun(self) -> &'static str {
        match self {
            RingKind::Broadcast => "a topic",
            RingKind::Spsc => "an SPSC channel",
            RingKind::Queue => "a work queue",
        }
    }

    /// The segment kind of this kind's ring file.
    pub const fn segment_kind(self) -> SegmentKind {
        match self {
            RingKind::Broadcast => SegmentKind::Broadcast,
            RingKind::Spsc => SegmentKind::Spsc,
            RingKind::Queue => SegmentKind::Queue,
        }
    }

    /// The first part of this kind's segment names: `topic`, `spsc`,
    /// `queue`.
    pub const fn segment_prefix(self) -> &'static str {
        match self {
            RingKind::Broadcast => "topic",
            RingKind::Spsc => "spsc",
            RingKind::Queue => "queue",
        }
    }

    /// Segment name of the ring file of ring `name` in entry `entry` at
    /// `epoch`: `topic-<entry>-<epoch>.<name>` (file `.bcast`),
    /// `spsc-<entry>-<epoch>.<name>` (file `.spsc`) or
    /// `queue-<entry>-<epoch>.<name>` (file `.queue`). The entry and epoch
    /// make it unique (a ring removed and made again gets a new epoch, so a
    /// new file); the name, validated by the directory before any ring is
    /// made ([`validate_name`](crate::segment::validate_name): 1-64 bytes
    /// of `[A-Za-z0-9._-]`, no leading dot), lets an operator tell the
    /// files apart. The longest is [`MAX_RING_SEGMENT_NAME`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::RingKind;
    ///
    /// assert_eq!(RingKind::Broadcast.segment_name(3, 1, "market_data"), "topic-3-1.market_data");
    /// assert_eq!(RingKind::parse_segment_name("topic-3-1.market_data"),
    ///            Some((RingKind::Broadcast, 3, 1, "market_data")));
    /// ```
    pub fn segment_name(self, entry: usize, epoch: u32, name: &str) -> String {
        format!("{}.{name}", self.segment_stem(entry, epoch))
    }

    /// What every segment name of entry `entry` at `epoch` starts with,
    /// before the dot and the ring's name: `topic-<entry>-<epoch>`.
    pub fn segment_stem(self, entry: usize, epoch: u32) -> String {
        format!("{}-{entry}-{epoch}", self.segment_prefix())
    }

    /// Reads a segment name made by [`RingKind::segment_name`]: (kind,
    /// entry, epoch, ring name). `None` for any other name (the directory's,
    /// a file of another build, or one no build makes).
    pub fn parse_segment_name(segment: &str) -> Option<(RingKind, usize, u32, &str)> {
        let (kind, rest) = RingKind::ALL.into_iter().find_map(|kind| {
            let rest = segment
                .strip_prefix(kind.segment_prefix())?
                .strip_prefix('-')?;
            Some((kind, rest))
        })?;
        let (entry, rest) = rest.split_once('-')?;
        let (epoch, name) = rest.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(entry) || !digits(epoch) || (entry.len() > 1 && entry.starts_with('0')) {
            return None;
        }
        if epoch.len() > 1 && epoch.starts_with('0') {
            return None;
        }
        #[cfg(not(shmbus_loom))]
        crate::segment::validate_name(name).ok()?;
        Some((kind, entry.parse().ok()?, epoch.parse().ok()?, name))
    }
}

/// Longest segment name [`RingKind::segment_name`] makes: `queue-` or
/// `topic-`, the largest entry index (below
/// [`MAX_DIRECTORY_ENTRIES`](crate::layout::MAX_DIRECTORY_ENTRIES)), `-`,
/// the largest epoch, `.` and a 64-byte name. With the file's suffix
/// (`.bcast`, at most 6 bytes) it stays far below the 255 bytes a file
/// name may have.
pub const MAX_RING_SEGMENT_NAME: usize = 6
    + decimal_digits(crate::layout::MAX_DIRECTORY_ENTRIES as u64 - 1)
    + 1
    + decimal_digits(u32::MAX as u64)
    + 1
    + crate::layout::NAME_LEN;

#[cfg(not(shmbus_loom))]
const _: () = assert!(MAX_RING_SEGMENT_NAME <= crate::segment::MAX_SEGMENT_NAME_LEN);

/// How many decimal digits `n` has.
const fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

impl std::fmt::Display for RingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

/// A ring's configuration, of its kind: what a directory entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingConfig {
    /// A broadcast topic's.
    Broadcast(BroadcastConfig),
    /// An SPSC channel's. Two configurations are the same when they are
    /// equal as written: `max_payload: None` is not the same as the
    /// number it stands for.
    Spsc(SpscConfig),
    /// A work queue's.
    Queue(QueueConfig),
}

impl From<QueueConfig> for RingConfig {
    fn from(c: QueueConfig) -> Self {
        RingConfig::Queue(c)
    }
}

impl From<BroadcastConfig> for RingConfig {
    fn from(c: BroadcastConfig) -> Self {
        RingConfig::Broadcast(c)
    }
}

impl From<SpscConfig> for RingConfig {
    fn from(c: SpscConfig) -> Self {
        RingConfig::Spsc(c)
    }
}

/// Words of an entry's configuration: the values (low 32 bits) of its
/// tagged words `policy`, `max_payload`, `slots`, `max_subscribers`,
/// `max_publishers`, `reclaim_after_ns_lo` and `reclaim_after_ns_hi`, in
/// that order.
pub(crate) type ConfigWords = [u32; CONFIG_WORDS];

/// How many configuration words an entry has.
pub(crate) const CONFIG_WORDS: usize = 7;

/// The entry fields of the [`ConfigWords`], as messages name them.
pub(crate) const CONFIG_WORD_NAMES: [&str; CONFIG_WORDS] = [
    "policy",
    "max payload",
    "slots",
    "max subscribers",
    "max publishers",
    "claim timeout (low)",
    "claim timeout (high)",
];

impl RingConfig {
    /// The kind of ring this configures.
    pub fn kind(&self) -> RingKind {
        match self {
            RingConfig::Broadcast(_) => RingKind::Broadcast,
            RingConfig::Spsc(_) => RingKind::Spsc,
            RingConfig::Queue(_) => RingKind::Queue,
        }
    }

    /// The broadcast configuration, if this is one.
    pub fn broadcast(&self) -> Option<&BroadcastConfig> {
        match self {
            RingConfig::Broadcast(c) => Some(c),
            _ => None,
        }
    }

    /// The SPSC configuration, if this is one.
    pub fn spsc(&self) -> Option<&SpscConfig> {
        match self {
            RingConfig::Spsc(c) => Some(c),
            _ => None,
        }
    }

    /// The work queue configuration, if this is one.
    pub fn queue(&self) -> Option<&QueueConfig> {
        match self {
            RingConfig::Queue(c) => Some(c),
            _ => None,
        }
    }

    /// Checks the configuration with its ring's own rules, and that the
    /// directory can record it.
    ///
    /// # Errors
    ///
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.encode().map(|_| ())
    }

    /// The entry's kind number and configuration words for this
    /// configuration, after checking it.
    pub(crate) fn encode(&self) -> Result<(u32, ConfigWords), ConfigError> {
        match self {
            RingConfig::Broadcast(c) => {
                c.validate()?;
                let ns = match u64::try_from(c.reclaim_after.as_nanos()) {
                    Ok(ns) if ns > 0 => ns,
                    _ => {
                        return Err(ConfigError::new(
                            "reclaim_after",
                            c.reclaim_after,
                            "positive and below 2^64 ns",
                        ))
                    }
                };
                let words = [
                    c.policy.to_raw(),
                    c.max_payload,
                    c.slots,
                    c.max_subscribers,
                    c.max_publishers,
                    ns as u32,
                    (ns >> 32) as u32,
                ];
                Ok((TOPIC_KIND_BROADCAST, words))
            }
            RingConfig::Spsc(c) => {
                let (capacity, _) = c.validate()?;
                // A validated capacity is a power of two, so its log2 is
                // exact; a validated max payload is below
                // ENTRY_LARGEST_PAYLOAD, so "largest" is never ambiguous.
                let words = [
                    c.flags(),
                    c.max_payload.unwrap_or(ENTRY_LARGEST_PAYLOAD),
                    capacity.trailing_zeros(),
                    0,
                    0,
                    0,
                    0,
                ];
                Ok((TOPIC_KIND_SPSC, words))
            }
            RingConfig::Queue(c) => {
                c.validate()?;
                // A validated reclaim_after is at most an hour: its
                // nanoseconds fit the two words.
                let ns = c.reclaim_after.as_nanos() as u64;
                let words = [
                    0,
                    c.max_payload,
                    c.slots,
                    c.max_consumers,
                    c.max_producers,
                    ns as u32,
                    (ns >> 32) as u32,
                ];
                Ok((TOPIC_KIND_QUEUE, words))
            }
        }
    }

    /// The configuration that kind number `kind` and `words`, read from an
    /// entry, describe. Hostile input: every value is checked.
    ///
    /// # Errors
    ///
    /// What is wrong, as the directory's corrupt-entry reason.
    pub(crate) fn decode(kind: u32, words: ConfigWords) -> Result<RingConfig, String> {
        let Some(kind) = RingKind::from_raw(kind) else {
            return Err(format!("unknown ring kind {kind}"));
        };
        let [policy, max_payload, slots, max_subscribers, max_publishers, lo, hi] = words;
        let config = match kind {
            RingKind::Broadcast => {
                let policy =
                    Policy::from_raw(policy).ok_or_else(|| format!("unknown policy {policy}"))?;
                RingConfig::Broadcast(BroadcastConfig {
                    slots,
                    max_payload,
                    policy,
                    max_subscribers,
                    max_publishers,
                    reclaim_after: Duration::from_nanos((u64::from(hi) << 32) | u64::from(lo)),
                })
            }
            RingKind::Spsc => {
                let unused = [max_subscribers, max_publishers, lo, hi];
                if unused.iter().any(|&w| w != 0) {
                    return Err(format!(
                        "the words an SPSC channel leaves unused hold {unused:?} (they must be 0)"
                    ));
                }
                if policy & !SPSC_FLAG_WAKEUPS != 0 {
                    return Err(format!("unknown SPSC flags {policy:#x}"));
                }
                let Some(capacity) = 1usize.checked_shl(slots) else {
                    return Err(format!(
                        "its capacity 2^{slots} does not fit in this machine's addresses"
                    ));
                };
                RingConfig::Spsc(SpscConfig {
                    capacity,
                    max_payload: (max_payload != ENTRY_LARGEST_PAYLOAD).then_some(max_payload),
                    wakeups: policy & SPSC_FLAG_WAKEUPS != 0,
                })
            }
            RingKind::Queue => {
                if policy != 0 {
                    return Err(format!(
                        "the word a work queue leaves unused holds {policy} (it must be 0)"
                    ));
                }
                RingConfig::Queue(QueueConfig {
                    slots,
                    max_payload,
                    max_producers: max_publishers,
                    max_consumers: max_subscribers,
                    reclaim_after: Duration::from_nanos((u64::from(hi) << 32) | u64::from(lo)),
                })
            }
        };
        config
            .validate()
            .map_err(|reason| format!("its configuration is invalid: {reason}"))?;
        Ok(config)
    }
}

impl std::fmt::Display for RingConfig {
    /// Durations as `{:?}`, so two different values never print the same.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingConfig::Broadcast(c) => write!(
                f,
                "{{slots {}, max payload {}, {:?}, {} subscribers, {} publishers, claim timeout {:?}}}",
                c.slots,
                c.max_payload,
                c.policy,
                c.max_subscribers,
                c.max_publishers,
                c.reclaim_after
            ),
            RingConfig::Spsc(c) => {
                write!(f, "{{capacity {}, max payload ", c.capacity)?;
                match (c.max_payload, c.validate()) {
                    (Some(m), _) => write!(f, "{m}")?,
                    (None, Ok((_, largest))) => write!(f, "the largest ({largest})")?,
                    (None, Err(_)) => f.write_str("the largest")?,
                }
                let wakeups = if c.wakeups { "on" } else { "off" };
                write!(f, ", wake-ups {wakeups}}}")
            }
            RingConfig::Queue(c) => write!(
                f,
                "{{slots {}, max payload {}, {} producers, {} consumers, reclaim after {:?}}}",
                c.slots, c.max_payload, c.max_producers, c.max_consumers, c.reclaim_after
            ),
        }
    }
}

#[cfg(all(test, not(shmbus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn spsc_configurations_round_trip_through_the_words() {
        for config in [
            SpscConfig::with_capacity(64),
            SpscConfig::with_capacity(1 << 40).with_wakeups(),
            SpscConfig {
                capacity: 4096,
                max_payload: Some(100),
                wakeups: false,
            },
            SpscConfig {
                capacity: 4096,
                max_payload: Some(0),
                wakeups: true,
            },
        ] {
            let (kind, words) = RingConfig::Spsc(config).encode().expect("valid");
            assert_eq!(kind, TOPIC_KIND_SPSC);
            assert_eq!(
                RingConfig::decode(kind, words),
                Ok(RingConfig::Spsc(config))
            );
        }
    }

    #[test]
    fn spsc_words_are_the_documented_ones() {
        let config = SpscConfig {
            capacity: 1 << 12,
            max_payload: Some(100),
            wakeups: true,
        };
        let (_, words) = RingConfig::Spsc(config).encode().expect("valid");
        assert_eq!(words, [SPSC_FLAG_WAKEUPS, 100, 12, 0, 0, 0, 0]);
        let (_, words) = RingConfig::Spsc(SpscConfig::with_capacity(64))
            .encode()
            .expect("valid");
        assert_eq!(words, [0, u32::MAX, 6, 0, 0, 0, 0]);
    }

    #[test]
    fn hostile_spsc_words_are_reasons_not_panics() {
        let ok = [0, u32::MAX, 12, 0, 0, 0, 0];
        let cases: [([u32; 7], &str); 6] = [
            ([0, u32::MAX, 3, 0, 0, 0, 0], "capacity"),
            ([0, u32::MAX, 41, 0, 0, 0, 0], "capacity"),
            ([0, u32::MAX, 200, 0, 0, 0, 0], "2^200"),
            ([0, 5000, 12, 0, 0, 0, 0], "max_payload"),
            ([6, u32::MAX, 12, 0, 0, 0, 0], "unknown SPSC flags 0x6"),
            ([0, u32::MAX, 12, 0, 0, 1, 0], "must be 0"),
        ];
        assert!(RingConfig::decode(TOPIC_KIND_SPSC, ok).is_ok());
        for (words, expected) in cases {
            let reason = RingConfig::decode(TOPIC_KIND_SPSC, words).expect_err("hostile");
            assert!(reason.contains(expected), "{words:?}: {reason}");
        }
        let reason = RingConfig::decode(9, ok).expect_err("unknown kind");
        assert!(reason.contains("unknown ring kind 9"), "{reason}");
    }

    #[test]
    fn kinds_number_and_name_their_files() {
        for kind in RingKind::ALL {
            assert_eq!(RingKind::from_raw(kind.to_raw()), Some(kind));
        }
        assert_eq!(RingKind::from_raw(0), None);
        assert_eq!(RingKind::Spsc.segment_name(3, 7, "fills"), "spsc-3-7.fills");
        assert_eq!(
            RingKind::Broadcast.segment_name(3, 7, "market_data"),
            "topic-3-7.market_data"
        );
        assert_eq!(
            RingKind::Queue.segment_name(3, 7, "a.b-c"),
            "queue-3-7.a.b-c"
        );
        for kind in RingKind::ALL {
            for name in ["x", "topic-1-1", "x.bcast", &"n".repeat(64)] {
                let segment = kind.segment_name(12, 9, name);
                assert_eq!(
                    RingKind::parse_segment_name(&segment),
                    Some((kind, 12, 9, name))
                );
                assert!(crate::segment::validate_segment_name(&segment).is_ok());
            }
        }
        let longest = RingKind::Queue.segment_name(
            crate::layout::MAX_DIRECTORY_ENTRIES as usize - 1,
            u32::MAX,
            &"n".repeat(64),
        );
        assert_eq!(longest.len(), MAX_RING_SEGMENT_NAME);
        assert!(crate::segment::validate_segment_name(&longest).is_ok());
        for other in [
            "directory",
            "topic-3-7",
            "topic-3-7.",
            "topic-3.x",
            "topic-03-7.x",
            "topic--7.x",
            "bcast-3-7.x",
            "topic-3-7..x",
            "topic-3-99999999999.x",
        ] {
            assert_eq!(RingKind::parse_segment_name(other), None, "{other}");
        }
    }

    #[test]
    fn queue_configurations_round_trip_through_the_documented_words() {
        let config = QueueConfig {
            slots: 1024,
            max_payload: 512,
            max_producers: 8,
            max_consumers: 4,
            reclaim_after: Duration::from_secs(3),
        };
        let (kind, words) = RingConfig::Queue(config).encode().expect("valid");
        assert_eq!(kind, TOPIC_KIND_QUEUE);
        // 3 s = 3_000_000_000 ns = 0xB2D05E00: all in the low word.
        assert_eq!(words, [0, 512, 1024, 4, 8, 0xB2D0_5E00, 0]);
        assert_eq!(
            RingConfig::decode(kind, words),
            Ok(RingConfig::Queue(config))
        );
        let hostile = [
            ([1, 512, 1024, 4, 8, 1, 0], "must be 0"),
            ([0, 512, 1000, 4, 8, 1, 0], "slots"),
            ([0, 512, 1024, 65, 8, 1, 0], "max_consumers"),
            ([0, 512, 1024, 4, 8, 0, 0], "reclaim_after"),
        ];
        for (words, expected) in hostile {
            let reason = RingConfig::decode(TOPIC_KIND_QUEUE, words).expect_err("hostile");
            assert!(reason.contains(expected), "{words:?}: {reason}");
        }
    }

    #[test]
    fn spsc_configurations_print_every_setting() {
        let text = RingConfig::Spsc(SpscConfig::with_capacity(4096)).to_string();
        assert_eq!(
            text,
            "{capacity 4096, max payload the largest (2032), wake-ups off}"
        );
        let text = RingConfig::Spsc(SpscConfig {
            capacity: 4096,
            max_payload: Some(2032),
            wakeups: true,
        })
        .to_string();
        assert_eq!(text, "{capacity 4096, max payload 2032, wake-ups on}");
    }
}
