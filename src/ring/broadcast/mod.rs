//! Multi-producer broadcast log: many publishers append, any number of
//! subscribers each read every record at their own pace.
//!
//! The log is a ring of `slots` fixed-size record slots. A record is one
//! slot (payloads are variable-length up to the slot's maximum), and a
//! position is a record sequence number: record `s` lives in slot
//! `s & (slots - 1)`. That is what makes a lapped subscriber's loss exact.
//!
//! ```text
//!   publishers: seq = tail.fetch_add(1)          subscribers: own cursor each
//!                   |                                 |        |
//!                   v                                 v        v
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | s=8    | s=9    | s=10   | s=3    | s=4    | s=5    | s=6    | s=7    |
//! | done   | writing| (claim)| done   | done   | done   | done   | done   |
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! ```
//!
//! **Publishing.** A publisher claims a sequence with one atomic add on
//! `tail` (a compare-and-swap in [`Publisher::try_claim`] under
//! `Backpressure`, which must not claim when full), under `Overwrite` marks
//! the slot's stamp "writing", writes header and payload in place, and
//! commits with a compare-and-swap of the slot's stamp: until then the
//! record is visibly incomplete (its stamp still names an older lap).
//! The cost does not depend on the number of subscribers: under
//! `Backpressure` a publisher compares against a cached minimum of the
//! subscriber cursors (the *gate*) and rescans the cursors only when the
//! cache says the log is full, once per lap at most.
//!
//! **An exclusive publisher.** A topic made with `max_publishers: 1` (as
//! Aeron's exclusive publication) has at most one publisher alive: a second
//! one can attach only once the first died (its liveness lock) or left. It
//! is then the only writer of `tail`, so it claims with a plain store, and
//! no other publisher can come to its slots a lap later, so it needs no
//! fence against one before writing. Under `Backpressure` it commits with a
//! plain store too, and so pays no locked instruction per record: nobody
//! could publish past its claim, so no waiter reclaims it while it lives
//! (`BroadcastView::may_reclaim`), and it is the only writer of that stamp.
//! A dead one's claim is reclaimed by its successor as it registers, or by
//! a waiter after the claim timeout. Under `Overwrite` the commit stays a
//! compare-and-swap (a waiter's reclaim of a stalled claim makes it fail).
//!
//! **Waking sleepers** costs a publisher no fence either. A commit by
//! compare-and-swap is `SeqCst` and followed by a `SeqCst` load of the
//! sleeper count: the writer's side of a store-buffering pair whose other
//! side is the sleeper's count, `SeqCst` fence and look at the stamp (see
//! `sync::fence_for_seqcst_accesses`). A commit by plain store is followed
//! by a compiler barrier only (`sync::light_barrier`), and the sleeper
//! makes up for it with `membarrier(2)` (`sync::heavy_barrier`) before its
//! look. A system call on the publisher's side only when someone sleeps.
//!
//! **Policies.**
//! * [`Policy::Backpressure`]: nothing is lost. A publisher never claims a
//!   slot whose previous record some live subscriber (or detached durable
//!   one) has not read. A subscriber whose process died stops gating as soon
//!   as a blocked publisher notices its liveness lock is gone.
//! * [`Policy::Overwrite`]: publishers never wait for subscribers. Each slot
//!   stamp works as a seqlock: a subscriber checks it before and after
//!   copying the record, so an overwritten record is reported as
//!   [`RecvError::Lapped`] with the exact number of records missed, never
//!   returned torn. Because a publisher may be rewriting a slot while a
//!   subscriber copies it, both sides move its payload only as whole
//!   8-byte atomic words (the `sync` module's racy copies), never as a slice:
//!   a subscriber hands out a validated copy, and a [`Claim`] is written in
//!   the publisher's staging buffer and copied in by the commit.
//!
//! **Crashes.** A publisher killed between claim and commit leaves one
//! incomplete slot. A reader (or lapping publisher) that has waited on it
//! for longer than the topic's claim timeout turns it into a reclaimed
//! record, counted in `reclaimed_claims` (and missed by readers), and goes
//! on; so does the successor of a dead exclusive publisher as it registers.

use std::time::Duration;

/// Longest futex sleep of a blocking subscriber between looks at the log
/// (it also wakes earlier for a stalled claim's timeout or its deadline).
/// A subscriber finding its next record not committed looks at the tail
/// (the publishers' hottest line) once every this many looks.
const LOOKS_PER_TAIL_CHECK: u32 = 64;

/// A publisher waiting for the previous lap of its slot reads the clock
/// once every this many looks. Under loom every look is a scheduling point
/// already, so it reads it every time.
const LOOKS_PER_STALL_CHECK: u32 = if cfg!(shmbus_loom) { 1 } else { 1024 };

/// Short enough that a removed log or directory is noticed within it.
const MAX_SLEEP: Duration = Duration::from_millis(20);

mod config;
mod durable;
mod heap;
mod publisher;
#[cfg(not(shmbus_loom))]
pub(crate) mod shm;
mod subscriber;
mod view;

pub use config::*;
pub(crate) use durable::drop_durable;
pub use durable::{DropDurableError, GatingSubscriber};
pub use heap::*;
pub use publisher::*;
pub use subscriber::*;
pub(crate) use view::*;

#[cfg(all(test, not(shmbus_loom)))]
mod tests;
