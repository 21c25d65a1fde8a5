//! # shmbus
//!
//! A lock-free shared-memory transport for processes on one host: records go
//! from producers to consumers through memory-mapped rings, with no broker,
//! no lock and no system call on the hot path.
//!
//! ## Layers, bottom up
//!
//! | module       | what it holds |
//! |--------------|---------------|
//! | `sync`       | the only place that names atomics; swapped for loom's under `--cfg shmbus_loom` |
//! | [`wait`]     | wait strategies for blocking calls, futex sleeping included (on `sync` alone) |
//! | [`layout`]   | every byte that lives in shared memory, drawn and offset-checked |
//! | [`segment`]  | create, open and validate a memory-mapped file in a namespace directory |
//! | [`bridge_counters`] | the Zenoh bridge's per-topic counters file beside a topic's segment, written by `shmbus-bridge`, read by `ring-dump`, `clean` and namespace removal |
//! | [`ring`]     | the lock-free algorithms over a control block and a data region, and the errors every ring kind shares |
//! | [`record`]   | the Protocol V2 TLV codec: builders, borrowing parsers, typed payloads (imports nothing of the others) |
//! | [`directory`] | the directory: names to rings of every kind (topics, SPSC channels, work queues), race-safe create-or-open |
//! | [`bus`]      | the public API: bus, topics, channels and work queues, their producers and consumers, routing |
//! | [`inspect`]  | read-only snapshots and record walks of live rings, used by `ring-dump` |
//! | [`clean`]    | what dead processes left in a namespace, found by liveness locks and removed with a look again first |
//!
//! Each layer imports only layers above it in this table.
//!
//! ## Example
//!
//! A topic, a publisher and a subscriber (in production they are in
//! different processes; each opens the bus by namespace and the topic by
//! name):
//!
//! ```
//! use shmbus::{Bus, StartAt, TopicConfig, WaitStrategy};
//!
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}", std::process::id()));
//! let bus = Bus::at(&tmp, "doc")?;                 // or Bus::open("prod"), under /dev/shm/shmbus-<uid>
//! let md = bus.topic("market_data", &TopicConfig::default())?;
//!
//! let mut strategy = md.subscriber(StartAt::Tail)?;
//! let mut feed = md.publisher()?;
//!
//! let mut claim = feed.try_claim(16)?;            // reserve a slot
//! claim.copy_from_slice(b"BTC 42000.5 1.25");    // write in place
//! claim.commit()?;                                // one compare-and-swap publishes it
//!
//! let record = strategy.read_blocking(WaitStrategy::BLOCKING)?; // borrow it, no copy
//! assert_eq!(&record[..], b"BTC 42000.5 1.25");
//! drop(record);                                   // the cursor moves on
//! # drop((strategy, feed, md, bus));
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Point to point, [`Bus::spsc`] gives an SPSC channel ([`ring::spsc`]):
//! one producer and one consumer on a ring of variable-length records, with
//! the same claim / commit / read calls. [`Bus::queue`] gives a work queue
//! ([`ring::queue`]): many producers, many consumers, each record to one
//! consumer, which takes it and acknowledges it.
//!
//! Every ring kind speaks the same verbs, each as `try_…`, `…_blocking`
//! and `…_timeout`: `claim` a slot and `commit` it, `send` a copy, `read`
//! a record in place (a work queue's consumer `take`s it instead, and
//! acknowledges it), `recv` a copy. They return the same two errors,
//! [`ClaimError`] and [`RecvError`].

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(shmbus_loom))]
pub mod bridge_counters;
#[cfg(not(shmbus_loom))]
pub mod bus;
#[cfg(not(shmbus_loom))]
pub mod clean;
pub mod directory;
#[cfg(not(shmbus_loom))]
pub mod inspect;
pub mod layout;
pub mod record;
pub mod ring;
#[cfg(not(shmbus_loom))]
pub mod segment;
pub(crate) mod sync;
pub mod wait;

#[cfg(not(shmbus_loom))]
pub use bus::{
    Bus, BusError, Channel, Claim, Consumer, DropDurableError, GatingSubscriber, Policy, Producer,
    Publisher, Queue, QueueClaim, QueueConfig, QueueConsumer, QueueProducer, Record, RegisterError,
    Router, RouterConfig, SpscConfig, SpscRecord, StartAt, Subscriber, Taken, Topic, TopicConfig,
    WriteSlot,
};
pub use directory::{RingConfig, RingKind, RingRecord};
pub use ring::{ClaimError, ConfigError, RecvError};
#[cfg(not(shmbus_loom))]
pub use segment::{Namespace, SegmentError};
pub use wait::WaitStrategy;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(all(doctest, not(shmbus_loom)))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
