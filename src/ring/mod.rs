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
pub(crate) mod counters;
pub(crate) mod liveness;
pub mod queue;
pub(crate) mod region;
pub mod spsc;
pub(crate) mod stall;

mod error;
pub use counters::{set_counting_for_bench, CounterValues};
pub use error::*;
