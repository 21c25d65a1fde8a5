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
//! | [`sync`]     | the only place that names atomics; swapped for loom's under `--cfg shmbus_loom` |
//! | [`layout`]   | every byte that lives in shared memory, drawn and offset-checked |
//! | [`segment`]  | create, open and validate a memory-mapped file in a namespace directory |
//! | [`ring`]     | the lock-free algorithms over a control block and a data region |
//! | [`record`]   | the Protocol V2 TLV codec: builders, borrowing parsers, typed payloads |
//! | [`wait`]     | wait strategies for blocking calls, futex sleeping included |
//! | [`directory`] | the topic directory: names to broadcast logs, race-safe create-or-open |
//! | [`bus`]      | the public API: bus, topics, publishers, subscribers, routing |
//! | [`inspect`]  | read-only snapshots and record walks of live rings, used by `ring-dump` |
//!
//! ## Example
//!
//! ```
//! use shmbus::{Namespace, ring::spsc::{SpscConfig, SpscRing}};
//!
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}", std::process::id()));
//! let ns = Namespace::at(&tmp, "doc")?; // or Namespace::open("prod") under /dev/shm/shmbus-<uid>
//! SpscRing::create(&ns, "ticks", SpscConfig::with_capacity(1 << 16))?;
//!
//! let mut producer = SpscRing::producer(&ns, "ticks")?;
//! let mut consumer = SpscRing::consumer(&ns, "ticks")?;
//!
//! let mut slot = producer.try_claim(16)?;     // reserve 16 bytes in the ring
//! slot.copy_from_slice(b"BTC 42000.5 1.25");  // write in place
//! slot.commit();                              // one release store publishes it
//!
//! let record = consumer.try_read()?;          // borrow it, no copy
//! assert_eq!(&record[..], b"BTC 42000.5 1.25");
//! drop(record);                               // releases the space
//! # SpscRing::remove(&ns, "ticks")?;
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(shmbus_loom))]
pub mod bus;
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
pub use segment::{Namespace, SegmentError};
