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
//! goes on: at most one counted skip per dead claim (a batch claim is one
//! claim per sequence: see below). If the producer
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
//! ## Batch forms, and why there are not more
//!
//! A record costs its producer a compare-and-swap of the shared `tail`,
//! two of its slot's stamp (mark "writing", commit) and the wake-up check
//! (a load of the sleeper count: the commit's `SeqCst` compare-and-swap
//! orders it, no fence); it costs its consumer a read and a compare-and-swap of
//! the shared `head` and two of the stamp (take, acknowledge). The stamp
//! operations are per record by design: they make each record one
//! participant's alone, and they are what lets a crash cost the records
//! it held and nothing else. A batch can only save the rest, so the batch
//! forms are these two:
//!
//! * **Claiming.** [`Producer::try_claim_batch`] claims up to `n`
//!   consecutive sequences with one compare-and-swap of the tail (the line
//!   every producer contends for); the producer's next claims take them
//!   without touching it. [`Claim::stage`] commits a record without the
//!   wake-up check, and [`Producer::flush`] makes that check once for the
//!   batch, and gives up the sequences left unused as skips.
//! * **Taking.** [`Consumer::take_batch`] takes a run of up to
//!   [`TAKE_RUN`] consecutive committed records, reading and moving the
//!   shared head (the line every consumer contends for) once per run, and
//!   acknowledges each record as soon as its handler returns.
//!
//! What would not pay, and so does not exist:
//!
//! * an acknowledgement of several records at once: each one is a
//!   compare-and-swap of its own stamp whatever the call, so it would
//!   save nothing, and holding records handled but not acknowledged would
//!   turn a crash into several duplicates instead of at most one;
//! * a stage that holds the commit back until the flush, as the SPSC
//!   ring's does: the SPSC ring publishes a batch with one store, but here
//!   each record's commit is its own stamp, so holding it back would save
//!   no operation and only delay the record (a staged record is committed
//!   at once; only the wake-up waits for the flush);
//! * a copy-out batch or blocking batch forms: `take_batch`'s handler
//!   copies if it must, and a caller that finds nothing waits with the
//!   single blocking forms, then batches again.
//!
//! Crashes keep their meaning in a batch. A producer killed (or stalled
//! past `reclaim_after`) with a batch claimed leaves one counted skip for
//! each sequence it had not committed, reclaimed together after one
//! `reclaim_after` (a consumer's stall timer covers every claim it saw
//! pending); what it committed or staged is delivered. A consumer killed
//! in the middle of a batch has the records it took and had not
//! acknowledged given back and redelivered, flagged; only the one its
//! handler had in hand can be a duplicate.
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
