//! Work queue: many producers, many consumers, and each record goes to
//! exactly one consumer.
//!
//! The queue is a ring of `slots` fixed-size record slots, as a broadcast
//! log is (payloads are variable-length up to the slot's maximum): record
//! `s` lives in slot `s & (slots - 1)`. Each slot's stamp
//! ([`queue_stamp`](crate::layout::queue_stamp)) says which lap it holds,
//! in what state, and who holds it:
//!
//! ```text
//!  producers: claim tail by CAS             consumers: take head by CAS on the stamp
//!                    |                                  |
//!                    v                                  v
//! +----------+----------+----------+----------+----------+----------+
//! | s=8      | s=9      | s=10     | s=3      | s=4      | s=5      |
//! | writing  | free     | free     | taken(c1)| taken(c0)| committed|
//! +----------+----------+----------+----------+----------+----------+
//! ```
//!
//! **Producing.** A producer claims the next sequence with a
//! compare-and-swap on `tail`, only once its slot is free (the previous
//! lap's record acknowledged), so a full queue is [`ClaimError::Full`] and
//! never an overwrite. It marks the slot "writing" under its own producer
//! number, writes the payload in place, and commits with a compare-and-swap
//! of the stamp (`Release`).
//!
//! **Consuming.** A consumer takes the record at the head with a
//! compare-and-swap of its stamp from "committed" to "taken by me": the
//! owner is in the stamp itself, written by the same atomic operation that
//! takes the record. There is no window in which a record is off the queue
//! but owned by nobody: the trap of Vyukov's bounded queue (crossbeam's
//! `ArrayQueue`), where a consumer that dies between its head CAS and its
//! stamp store stalls the queue for good, does not exist here. The shared
//! `head` is only a hint that anyone moves forward. Records are taken in
//! sequence order. The consumer uses the bytes in place and acknowledges
//! ([`Taken::ack`]): one compare-and-swap that frees the slot for the next
//! lap. [`Consumer::try_recv`] copies and acknowledges in one call.
//!
//! ## What is guaranteed: at-least-once delivery
//!
//! * Every committed record is taken by some consumer and acknowledged,
//!   unless every consumer stops for good.
//! * A record goes to one consumer at a time. It goes to a second one only
//!   if the first gave it back ([`Taken::give_back`], or dropping the
//!   [`Taken`] without acknowledging it) or died holding it (its liveness
//!   lock, not its pid, says so). Such a record is delivered again flagged
//!   [`Taken::redelivered`], and counted in the queue's `redelivered`.
//! * So a duplicate is possible only for a record whose consumer died (or
//!   gave it back) after handling it but before acknowledging it. A
//!   consumer that merely stalls (`SIGSTOP`, a long pause) keeps its
//!   records: when it resumes, its acknowledgement succeeds and nothing is
//!   duplicated. A stalled consumer's unacknowledged records keep their
//!   slots, so after a lap the producers find the queue full.
//! * A dead consumer's records are given back by the first participant
//!   that notices: a consumer that finds the queue empty or waits (every
//!   [`REAP_PERIOD`]), a producer waiting on a full queue (as often), or a
//!   consumer registering in the dead one's slot. Given-back records jump
//!   the line: consumers take them before the head.
//! * A full queue makes producers wait or return `Full`: a record is never
//!   dropped to make room.
//!
//! **Crashed or stalled producers.** A producer killed or stalled between
//! claim and commit holds up the consumers, which take in order. A
//! consumer that has waited on that claim for longer than the queue's
//! `reclaim_after` turns it into a skip (counted in `reclaimed_claims`) and
//! goes on: at most one counted skip per dead claim. If the producer
//! resumes, its commit fails with [`ClaimError::Reclaimed`] (the record
//! was not delivered; it sends it again) and nothing it writes reaches
//! anyone: the next producer of that slot sees the slot marked suspect and
//! gives the sequence up as another skip while the stalled claimer still
//! announces its claim.
//!
//! **Waiting.** Consumers wait with any [`WaitStrategy`], futex sleep
//! included: a producer's commit makes no system call while nobody sleeps.
//! Producers waiting for space cannot sleep (nothing wakes them), so a
//! `Blocking` claim returns [`ClaimError::CannotSleep`].
//!
//! [`WaitStrategy`]: crate::wait::WaitStrategy

use std::time::Duration;

/// How often a waiting participant looks for dead consumers whose records
/// must be given back: the bound on how long such a record waits.
pub const REAP_PERIOD: Duration = Duration::from_millis(20);
const REAP_PERIOD_NS: u64 = REAP_PERIOD.as_nanos() as u64;

/// Longest futex sleep of a blocking consumer between looks at the queue
/// (it also wakes earlier for a stalled claim's timeout or its deadline),
/// short enough that a removed queue is noticed.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// A consumer finding nothing looks at the tail (the producers' hottest
/// line), the segment and the clock once every this many looks. Under
/// loom every look is a scheduling point already, so it looks every time.
const LOOKS_PER_TAIL_CHECK: u32 = if cfg!(shmbus_loom) { 1 } else { 64 };

/// A producer makes the cheap segment check once every this many claims.
const LOOKS_PER_SLOW_CHECK: u32 = 256;

mod config;
mod consumer;
mod heap;
mod producer;
#[cfg(not(shmbus_loom))]
pub(crate) mod shm;
mod view;

pub use crate::ring::broadcast::RegisterError;
pub use config::*;
pub use consumer::*;
pub use heap::*;
pub use producer::*;
pub use view::QueueCounters;
pub(crate) use view::{Liveness, QueueView, SlotState, ViewParts};

#[cfg(all(test, not(shmbus_loom)))]
mod tests;
