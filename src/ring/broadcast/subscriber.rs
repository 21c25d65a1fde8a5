//! Subscribers: each with its own cursor, reading in place or by copy.

use core::ops::Deref;
use std::time::Duration;

use super::{
    check_slot_word, look_at_stamp, still_committed, BroadcastView, Policy, RecvError,
    RegisterError, SlotLook, StartAt, LOOKS_PER_TAIL_CHECK, MAX_SLEEP,
};
use crate::layout::{lock_slot, participant, Counters, SubscriberSlot, MAX_SEQUENCE};
use crate::ring::counters;
use crate::ring::stall::Stall;
use crate::ring::{Corruption, CorruptionKind};
use crate::sync::{fence, futex_wait, futex_wait_until, heavy_barrier, monotonic_ns, Ordering};
use crate::wait::{WaitStrategy, Waiter};

/// How often a waiter whose claim timeout passed looks again at whether
/// the live sole publisher that holds the claim died (one lock query each;
/// see `BroadcastView::may_reclaim`): how late past the claim timeout a
/// dead sole publisher's claim is reclaimed.
const LIVE_CLAIMER_RECHECK_NS: u64 = 10_000_000;

/// Longest sleep when the heavy barrier a sole publisher's commits rely on
/// was refused (no `membarrier(2)`): no wake-up is then certain, so the
/// sleeper looks again this often.
const UNCERTAIN_SLEEP: Duration = Duration::from_millis(1);

/// A subscriber on a broadcast log, with its own cursor.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmbus::{Bus, RecvError, StartAt, TopicConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let topic = bus.topic("ticks", &TopicConfig::default())?;
/// let mut sub = topic.subscriber(StartAt::Tail)?;
/// let mut publisher = topic.publisher()?;
/// publisher.try_send(1, b"tick 1")?;
/// publisher.try_send(1, b"tick 2")?;
/// // Borrow (zero-copy under Backpressure) ...
/// let rec = sub.read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(1))?;
/// assert_eq!((rec.record_type(), &rec[..]), (1, &b"tick 1"[..]));
/// drop(rec);                                              // the cursor moves on
/// // ... or copy out.
/// let mut buf = [0u8; 64];
/// let (_, len) = sub.try_recv(&mut buf)?;
/// assert_eq!(&buf[..len], b"tick 2");
/// assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Empty));
/// # drop((publisher, sub, topic, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    pub(super) ring: BroadcastView,
    pub(super) slot: usize,
    /// Next sequence to read.
    cursor: u64,
    /// Last cursor stored in the slot.
    released: u64,
    missed: u64,
    stall: Stall,
    reads: u32,
    /// Under `Overwrite`, where each record is copied and validated before
    /// anyone sees it (`max_payload` bytes, made once here); empty under
    /// `Backpressure`, whose records are read in place.
    scratch: Box<[u8]>,
}

/// A located record.
#[derive(Clone, Copy)]
struct Found {
    seq: u64,
    len: usize,
    record_type: u16,
}

/// Takes subscriber slot `s` (whose liveness lock the caller holds) into
/// `state` at the next generation, whatever a reaper did meanwhile; returns
/// the word it replaced.
fn take_slot(s: &SubscriberSlot, state: u32) -> u32 {
    let mut word = s.state.load(Ordering::Relaxed);
    loop {
        // SYNC POINT: AcqRel on the state word. Acquire pairs with the
        // Release update we replace (`Subscriber::drop`, `release_slot`, a
        // reaper's CAS in `reap_dead_subscribers`): this registration is
        // ordered after the slot's previous holder. Release pairs with a
        // reaper's Acquire load of the word (our name and cursor are not
        // written yet: the store of LIVE in `register` publishes them). The
        // generation bump makes a concurrent reaper's CAS of the old word
        // fail.
        match s.state.compare_exchange_weak(
            word,
            participant::next_generation(word, state),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(old) => return old,
            Err(now) => word = now,
        }
    }
}

impl Subscriber {
    pub(crate) fn register(
        ring: BroadcastView,
        name: Option<&str>,
        start: StartAt,
    ) -> Result<Self, RegisterError> {
        Self::register_paused(ring, name, start, &|| {})
    }

    /// As [`Subscriber::register`], calling `pause` when a durable
    /// subscriber resuming its slot has taken it and not yet marked it
    /// live (tests stall a registration there).
    pub(crate) fn register_paused(
        ring: BroadcastView,
        name: Option<&str>,
        start: StartAt,
        pause: &dyn Fn(),
    ) -> Result<Self, RegisterError> {
        let name = name.map(str::as_bytes);
        let corrupt = |slot: usize, reason: &'static str| RegisterError::Corrupt {
            role: "subscriber",
            slot,
            reason,
        };
        if let Some(n) = name {
            if n.is_empty() || n.len() > 64 {
                return Err(RegisterError::BadDurableName);
            }
            // A durable subscriber resumes its own slot if it has one.
            for i in 0..ring.max_subscribers {
                let s = ring.subscriber(i);
                // SYNC POINT: pairs with the update that published the slot's
                // name: the SeqCst store of LIVE below, the Release store of
                // DETACHED in `Subscriber::drop`, or a reaper's AcqRel CAS
                // after that LIVE. (Without the slot's lock this is a hint;
                // it is checked again once the lock is held.)
                let state = participant::state(s.state.load(Ordering::Acquire));
                if state == participant::FREE || !s.name_matches(n) {
                    continue;
                }
                if !ring.liveness.try_lock(lock_slot::subscriber(i)) {
                    return Err(RegisterError::DurableInUse {
                        name: String::from_utf8_lossy(n).into_owned(),
                    });
                }
                // SYNC POINT: as the load above, now holding the lock: no
                // registration changes the name meanwhile, and the cursor
                // read below is the previous owner's.
                let state = participant::state(s.state.load(Ordering::Acquire));
                if state != participant::FREE && s.name_matches(n) {
                    ring.forget_sleeper(s);
                    // DETACHED, not CLAIMING: the slot gates publishers and
                    // keeps its place through the whole resumption, and a
                    // reaper passes it by if we die here (a CLAIMING slot
                    // gates nothing, and a reaper frees it).
                    take_slot(s, participant::DETACHED);
                    pause();
                    // SYNC POINT: pairs with the previous owner's Release
                    // stores of the cursor.
                    let cursor = s.cursor.load(Ordering::Acquire);
                    // SYNC POINT: Acquire pairs with publishers' AcqRel tail
                    // updates (only to validate the cursor).
                    let tail = ring.control().tail.load(Ordering::Acquire);
                    if tail > MAX_SEQUENCE || cursor > tail {
                        // SYNC POINT: Release pairs with reapers' and
                        // registrations' Acquire loads of the state word: the
                        // slot goes back to DETACHED, as we found it.
                        s.state.store(
                            participant::with_state(
                                s.state.load(Ordering::Relaxed),
                                participant::DETACHED,
                            ),
                            Ordering::Release,
                        );
                        ring.liveness.unlock(lock_slot::subscriber(i));
                        return Err(corrupt(i, "its cursor is past the log's tail"));
                    }
                    s.pid.store(std::process::id(), Ordering::Relaxed);
                    // SYNC POINT: SeqCst with the SeqCst state loads in
                    // `scan_gate` (the slot gated as DETACHED all along).
                    s.state.store(
                        participant::with_state(s.state.load(Ordering::Relaxed), participant::LIVE),
                        Ordering::SeqCst,
                    );
                    return Ok(Self::new(ring, i, cursor));
                }
                ring.liveness.unlock(lock_slot::subscriber(i));
            }
        }
        for i in 0..ring.max_subscribers {
            if !ring.liveness.try_lock(lock_slot::subscriber(i)) {
                continue;
            }
            let s = ring.subscriber(i);
            // SYNC POINT: as in the durable search above: pairs with the
            // update that published the name read by `durable_name_len`.
            let state = participant::state(s.state.load(Ordering::Acquire));
            let durable = s.durable_name_len().is_some();
            let bad = if !participant::is_known(state) {
                Some("its state is a value no build writes")
            } else if state == participant::DETACHED && !durable {
                Some("it is detached but has no valid durable name")
            } else {
                None
            };
            if let Some(reason) = bad {
                ring.liveness.unlock(lock_slot::subscriber(i));
                return Err(corrupt(i, reason));
            }
            if state != participant::FREE && durable {
                // Another durable subscriber's slot: keep its place.
                if state != participant::DETACHED {
                    take_slot(s, participant::DETACHED);
                    ring.control()
                        .reaped_subscribers
                        .fetch_add(1, Ordering::Relaxed);
                }
                ring.forget_sleeper(s);
                ring.liveness.unlock(lock_slot::subscriber(i));
                continue;
            }
            let old = participant::state(take_slot(s, participant::CLAIMING));
            if old == participant::LIVE || old == participant::CLAIMING {
                // Its owner died and no reaper had freed it yet.
                ring.control()
                    .reaped_subscribers
                    .fetch_add(1, Ordering::Relaxed);
            }
            ring.forget_sleeper(s);
            s.set_name(name.unwrap_or(&[]));
            counters::reset(&s.counters);
            s.pid.store(std::process::id(), Ordering::Relaxed);
            s.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
            let ctl = ring.control();
            // SYNC POINT: SeqCst with the SeqCst state store below and the
            // loads in `scan_gate` (see there).
            let t0 = ctl.tail.load(Ordering::SeqCst);
            if t0 > MAX_SEQUENCE {
                Self::release_slot(&ring, i);
                return Err(corrupt(i, "the log's tail is out of range"));
            }
            let first = match start {
                StartAt::Tail => t0,
                StartAt::Oldest => t0.saturating_sub(ring.slots),
            };
            s.cursor.store(first, Ordering::Relaxed);
            // SYNC POINT: with the SeqCst load of `tail` below and the SeqCst
            // loads in `scan_gate`: a publisher that did not see us LIVE
            // claimed before our second look at the tail, so everything from
            // that tail on is still ahead of it.
            s.state.store(
                participant::with_state(s.state.load(Ordering::Relaxed), participant::LIVE),
                Ordering::SeqCst,
            );
            // SYNC POINT: SeqCst bump; pairs with the SeqCst loads of
            // `registrations` around a publisher's scan in `gate_allows`.
            ctl.registrations.fetch_add(1, Ordering::SeqCst);
            let cursor = match start {
                StartAt::Tail => {
                    // SYNC POINT: SeqCst, the second look at the tail that
                    // the store of LIVE above refers to: after that store and
                    // the `registrations` bump in the SeqCst order.
                    let t1 = ctl.tail.load(Ordering::SeqCst).min(MAX_SEQUENCE);
                    // SYNC POINT: Release pairs with publishers' Acquire
                    // cursor loads in `scan_gate`.
                    s.cursor.store(t1, Ordering::Release);
                    t1
                }
                StartAt::Oldest => {
                    // Publishers may already overwrite anything below the
                    // gate they last published; start at or after it.
                    // SYNC POINT: SeqCst with the publishers' SeqCst
                    // fetch_max of `gate` in `gate_allows`.
                    let gate = ctl.gate.load(Ordering::SeqCst);
                    let oldest = if ring.policy == Policy::Backpressure {
                        first.max(gate.min(t0))
                    } else {
                        first
                    };
                    // SYNC POINT: as for `StartAt::Tail`.
                    s.cursor.store(oldest, Ordering::Release);
                    oldest
                }
            };
            return Ok(Self::new(ring, i, cursor));
        }
        Err(RegisterError::NoFreeSlot {
            role: "subscriber",
            slots: ring.max_subscribers,
        })
    }

    /// Gives back a slot taken by `register` that failed half-way.
    fn release_slot(ring: &BroadcastView, i: usize) {
        let s = ring.subscriber(i);
        // SYNC POINT: Release pairs with `take_slot`'s and reapers' Acquire.
        s.state.store(
            participant::with_state(s.state.load(Ordering::Relaxed), participant::FREE),
            Ordering::Release,
        );
        ring.liveness.unlock(lock_slot::subscriber(i));
    }

    fn new(ring: BroadcastView, slot: usize, cursor: u64) -> Self {
        let scratch = match ring.policy {
            Policy::Overwrite => vec![0; ring.max_payload as usize].into_boxed_slice(),
            Policy::Backpressure => Box::default(),
        };
        Subscriber {
            scratch,
            ring,
            slot,
            cursor,
            released: cursor,
            missed: 0,
            stall: Stall::default(),
            reads: 0,
        }
    }

    /// Sequence number of the next record this subscriber reads.
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// Records lost since this subscriber joined: overwritten before it
    /// read them (`Overwrite` laps), held by a publisher that stalled or
    /// died past the claim timeout (reclaimed), or passed with
    /// [`Subscriber::skip`].
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The log's policy.
    pub fn policy(&self) -> Policy {
        self.ring.policy
    }

    /// This subscriber's counters (its own line: see [`counters`]).
    #[inline(always)]
    fn counters(&self) -> &Counters {
        &self.ring.subscriber(self.slot).counters
    }

    fn count_missed(&mut self, n: u64) {
        self.missed = self.missed.saturating_add(n);
        counters::add(&self.counters().missed, n);
    }

    /// Locates the next record without waiting.
    #[inline]
    fn locate(&mut self) -> Result<Found, RecvError> {
        loop {
            let seq = self.cursor;
            let h = self.ring.header(seq);
            // SYNC POINT: pairs with the publisher's Release compare-and-swap
            // of the stamp in `Claim::finish`: header and payload are
            // complete (and with `reclaim`'s, for a reclaimed record).
            let seen = h.stamp.load(Ordering::Acquire);
            match look_at_stamp(seen, seq) {
                SlotLook::Committed => {
                    let word = h.word.load(Ordering::Relaxed);
                    let (len, record_type) = check_slot_word(word, self.ring.max_payload)
                        .map_err(|kind| self.corrupt(kind))?;
                    self.ring.note(seq, len as usize, false);
                    return Ok(Found {
                        seq,
                        len: len as usize,
                        record_type,
                    });
                }
                SlotLook::Reclaimed => {
                    // Its publisher stalled or died holding it: lost.
                    self.cursor = seq + 1;
                    self.count_missed(1);
                    continue;
                }
                SlotLook::Skipped => {
                    self.cursor = seq + 1;
                    continue;
                }
                SlotLook::LaterLap => return Err(self.lapped()),
                SlotLook::NotYet => {}
            }
            // Not yet committed: either nothing was claimed here, or a claim
            // is in progress. Let publishers past what we skipped.
            self.release();
            // The tail is the publishers' hottest line, so look at it only
            // every 64 looks: enough to reclaim a stalled claim or notice a
            // lap, too rare to slow the publishers down. (Waits that yield
            // or sleep look at it every round, in `wait_ready`.)
            if self.stall.look() % LOOKS_PER_TAIL_CHECK != 0 {
                return Err(RecvError::Empty);
            }
            if self.check_pending()? {
                continue;
            }
            return Err(RecvError::Empty);
        }
    }

    /// The record at the cursor is not committed: looks at the tail and the
    /// segment, reclaims a claim held past the claim timeout, and reports a
    /// lap or an impossible tail. Returns whether it reclaimed (look again).
    fn check_pending(&mut self) -> Result<bool, RecvError> {
        let seq = self.cursor;
        // SYNC POINT: pairs with the publishers' AcqRel updates of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if tail < seq {
            // Our cursor only passes committed records, all below the tail.
            return Err(self.corrupt(CorruptionKind::TailBehindHead { tail }));
        }
        if tail > seq + self.ring.slots {
            if self.ring.policy == Policy::Overwrite {
                return Err(self.lapped());
            }
            // Under `Backpressure` this subscriber gates every claim.
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if let Some(fault) = self.ring.fault_slow() {
            return Err(RecvError::Unusable(fault));
        }
        if tail == seq {
            // Nothing claimed: nothing to time.
            self.stall.clear();
            return Ok(false);
        }
        if self.stall.waited_ns(seq, tail) >= self.ring.reclaim_after_ns {
            if !self.ring.may_reclaim() {
                // A live sole publisher's claim: wait on, looking at its
                // liveness again shortly (it may die holding it).
                self.stall
                    .postpone(self.ring.reclaim_after_ns, LIVE_CLAIMER_RECHECK_NS);
                return Ok(false);
            }
            let reclaimed = self.ring.reclaim(seq);
            if reclaimed {
                counters::add(&self.counters().reclaims, 1);
            }
            return Ok(reclaimed);
        }
        Ok(false)
    }

    /// What to report for an inconsistency: the segment's fault if it has
    /// one (a truncated log reads as zeros), else the corruption.
    #[cold]
    fn corrupt(&self, kind: CorruptionKind) -> RecvError {
        if let Some(fault) = self.ring.fault_slow() {
            return RecvError::Unusable(fault);
        }
        RecvError::Corrupt(Corruption {
            kind,
            position: self.cursor,
        })
    }

    /// Moves the cursor to the oldest record still intact and reports how
    /// many were skipped.
    #[cold]
    fn lapped(&mut self) -> RecvError {
        // SYNC POINT: pairs with the publishers' AcqRel fetch_add of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return self.corrupt(CorruptionKind::TailTooFarAhead { tail });
        }
        let oldest = tail.saturating_sub(self.ring.slots);
        if oldest <= self.cursor {
            // A stamp from a later lap while the tail says otherwise.
            return self.corrupt(CorruptionKind::HeadOutOfRange { head: tail });
        }
        let missed = oldest - self.cursor;
        self.cursor = oldest;
        counters::add(&self.counters().lapped, 1);
        self.count_missed(missed);
        self.release();
        RecvError::Lapped { missed }
    }

    /// Passes over the record at the cursor without reading it, counting it
    /// as missed, and returns the sequence passed. This is the way past a
    /// record that keeps giving [`RecvError::Corrupt`]; under
    /// `Backpressure` it also stops this subscriber from holding
    /// publishers back at that record.
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`] if nothing was claimed at the cursor yet (there
    /// is nothing to pass), [`RecvError::Corrupt`] if the tail is out of
    /// range.
    pub fn skip(&mut self) -> Result<u64, RecvError> {
        // SYNC POINT: pairs with the publishers' AcqRel updates of `tail`.
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return Err(self.corrupt(CorruptionKind::TailTooFarAhead { tail }));
        }
        if tail <= self.cursor {
            return Err(RecvError::Empty);
        }
        let seq = self.cursor;
        self.cursor = seq + 1;
        counters::add(&self.counters().skips, 1);
        self.count_missed(1);
        self.release();
        Ok(seq)
    }

    /// Whether `found` is still intact (its stamp unchanged since located).
    #[inline]
    fn intact(&self, found: Found) -> bool {
        still_committed(self.ring.header(found.seq), found.seq)
    }

    /// Borrows the next record without waiting.
    ///
    /// Under `Backpressure` the record is read in place (zero-copy): no
    /// publisher rewrites its slot before this subscriber moves past it.
    /// Under `Overwrite` a publisher may rewrite the slot at any moment, so
    /// the record is first copied (word by word, into a buffer this
    /// subscriber owns) and validated against the slot's stamp: what you
    /// borrow is never torn, and a record overwritten during the copy is
    /// reported as [`RecvError::Lapped`].
    ///
    /// # Errors
    ///
    /// [`RecvError::Empty`], [`RecvError::Lapped`], [`RecvError::Corrupt`]
    /// or [`RecvError::Unusable`].
    #[inline]
    pub fn try_read(&mut self) -> Result<Record<'_>, RecvError> {
        let found = match self.ring.policy {
            Policy::Backpressure => self.locate()?,
            Policy::Overwrite => loop {
                let found = self.locate()?;
                self.ring
                    .read_racy(found.seq, &mut self.scratch[..found.len]);
                if self.intact(found) {
                    break found;
                }
                // Overwritten during the copy: `locate` reports the lap.
            },
        };
        Ok(Record {
            subscriber: self,
            found,
        })
    }

    /// Runs `f` on the next record's type and bytes without waiting, then
    /// moves past it; returns what `f` returned. The bytes are those
    /// [`Subscriber::try_read`] would borrow: in place under `Backpressure`,
    /// a validated copy under `Overwrite`, so `f` never sees a torn record.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_read`]; `f` does not run.
    #[inline]
    pub fn try_read_with<R>(&mut self, f: impl FnOnce(u16, &[u8]) -> R) -> Result<R, RecvError> {
        let record = self.try_read()?;
        Ok(f(record.record_type(), &record))
    }

    /// Copies the next record into `buf` without waiting, and returns its
    /// `(record type, length)`. Under `Overwrite` the copy is validated: a
    /// record overwritten during the copy is reported as `Lapped`, never
    /// returned torn.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_read`], plus [`RecvError::BufferTooSmall`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<(u16, usize), RecvError> {
        loop {
            let found = self.locate()?;
            let Some(dst) = buf.get_mut(..found.len) else {
                return Err(RecvError::BufferTooSmall { needed: found.len });
            };
            match self.ring.policy {
                Policy::Backpressure => {
                    let src = self.ring.payload_offset(found.seq);
                    // SAFETY: the slot's payload area holds `max_payload >= len` bytes, and
                    // no publisher writes it before we move past it.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            self.ring.payloads.add(src),
                            dst.as_mut_ptr(),
                            found.len,
                        )
                    };
                }
                Policy::Overwrite => self.ring.read_racy(found.seq, dst),
            }
            if self.intact(found) {
                self.cursor = found.seq + 1;
                self.after_read(found.len);
                return Ok((found.record_type, found.len));
            }
            // Overwritten during the copy: locate reports the lap next.
        }
    }

    #[inline]
    fn after_read(&mut self, len: usize) {
        let c = &self.ring.subscriber(self.slot).counters;
        counters::count_record(c, len);
        self.reads = self.reads.wrapping_add(1);
        self.release();
        if self.reads % 1024 == 0 {
            self.heartbeat();
        }
    }

    fn heartbeat(&self) {
        self.ring
            .subscriber(self.slot)
            .heartbeat_ns
            .store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Publishes the cursor (done after every record unless deferred).
    #[inline]
    pub fn release(&mut self) {
        // The cursor only moves forward (each step checked against the log).
        debug_assert!(self.cursor >= self.released);
        if self.cursor != self.released {
            self.released = self.cursor;
            // SYNC POINT: pairs with the publishers' Acquire loads of cursors
            // in `scan_gate`: our reads of every record before the cursor
            // happen before a publisher reuses their slots.
            self.ring
                .subscriber(self.slot)
                .cursor
                .store(self.cursor, Ordering::Release);
        }
    }

    /// Reads the next record, waiting with `wait`.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lapped`] or [`RecvError::Corrupt`].
    pub fn read_blocking(&mut self, wait: WaitStrategy) -> Result<Record<'_>, RecvError> {
        self.read_timeout(wait, Duration::MAX)
    }

    /// As [`Subscriber::read_blocking`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvError::TimedOut`], [`RecvError::Lapped`] or [`RecvError::Corrupt`].
    pub fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Record<'_>, RecvError> {
        self.wait_ready(wait, timeout)?;
        self.try_read()
    }

    /// As [`Subscriber::try_read_with`], waiting with `wait` up to
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::read_timeout`]; `f` does not run.
    pub fn read_with_timeout<R>(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
        f: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, RecvError> {
        let record = self.read_timeout(wait, timeout)?;
        Ok(f(record.record_type(), &record))
    }

    /// As [`Subscriber::try_recv`], waiting with `wait`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_recv`], never `Empty`.
    pub fn recv_blocking(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
    ) -> Result<(u16, usize), RecvError> {
        self.recv_timeout(buf, wait, Duration::MAX)
    }

    /// As [`Subscriber::try_recv`], waiting with `wait` up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::try_recv`], plus [`RecvError::TimedOut`].
    pub fn recv_timeout(
        &mut self,
        buf: &mut [u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<(u16, usize), RecvError> {
        loop {
            self.wait_ready(wait, timeout)?;
            match self.try_recv(buf) {
                Err(RecvError::Empty) => continue,
                other => return other,
            }
        }
    }

    /// Waits until `locate` finds a record (or an error other than Empty).
    fn wait_ready(&mut self, wait: WaitStrategy, timeout: Duration) -> Result<(), RecvError> {
        let mut waiter = Waiter::with_timeout(wait, timeout);
        loop {
            match self.locate() {
                Ok(_) => return Ok(()),
                Err(RecvError::Empty) => {}
                Err(e) => return Err(e),
            }
            // A round that yields or sleeps is slow enough to look at the
            // tail and the clock every time: a stalled claim is reclaimed
            // within the claim timeout plus one round, whatever the strategy.
            if !waiter.spinning() && self.check_pending()? {
                continue;
            }
            if waiter.timed_out() {
                return Err(RecvError::TimedOut);
            }
            if waiter.should_sleep() {
                // No publisher wakes us for a claim that never commits:
                // sleep no longer than the stalled claim has left.
                let stall_left = self.stall.left(self.ring.reclaim_after_ns);
                let cap = stall_left.map_or(MAX_SLEEP, |left| left.min(MAX_SLEEP));
                self.sleep(waiter.sleep_budget(cap), stall_left.is_some());
                waiter.count_round();
            } else {
                waiter.wait();
            }
        }
    }

    /// Sleeps on the log's futex until a publisher commits (or `max`;
    /// `until_deadline` when no wake-up may come before it).
    fn sleep(&mut self, max: Duration, until_deadline: bool) {
        self.heartbeat();
        counters::note_activity(self.counters());
        // SYNC POINT: Acquire pairs with the Release bump of `wake_seq` in
        // `BroadcastView::wake_sleepers`.
        let seen = self.ring.control().wake_seq.load(Ordering::Acquire);
        self.ring
            .subscriber(self.slot)
            .sleeping
            .store(1, Ordering::Relaxed);
        self.ring.control().sleepers.fetch_add(1, Ordering::Relaxed);
        // SYNC POINT: Dekker pair with `BroadcastView::wake_sleepers`:
        // either the publisher sees our sleeper count and wakes us, or we
        // see its commit here. Against a commit by compare-and-swap (or a
        // store followed by a SeqCst fence) a SeqCst fence is our half; a
        // sole publisher's commit by plain store needs the heavy barrier,
        // which runs that fence first.
        let certain = if self.ring.commits_by_store() {
            heavy_barrier()
        } else {
            fence(Ordering::SeqCst);
            true
        };
        let (max, until_deadline) = if certain {
            (max, until_deadline)
        } else {
            (max.min(UNCERTAIN_SLEEP), false)
        };
        if matches!(self.locate(), Err(RecvError::Empty)) {
            let word = &self.ring.control().wake_seq;
            counters::add(&self.counters().sleeps, 1);
            if until_deadline {
                futex_wait_until(word, seen, max);
            } else {
                futex_wait(word, seen, max);
            }
            if word.load(Ordering::Relaxed) != seen {
                counters::add(&self.counters().wakes, 1);
            }
        }
        self.ring.forget_sleeper(self.ring.subscriber(self.slot));
    }

    /// Test hook: the subscriber slot this subscriber holds.
    #[doc(hidden)]
    pub fn slot_for_test(&self) -> usize {
        self.slot
    }

    /// Test hook: leaves the log as a process killed now would (the slot
    /// and cursor stay as they are, the liveness lock goes), without
    /// running `Drop`.
    #[doc(hidden)]
    pub fn crash_for_test(self) {
        self.ring.liveness.unlock(lock_slot::subscriber(self.slot));
        core::mem::forget(self);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.release();
        let s = self.ring.subscriber(self.slot);
        let next = if s.durable_name_len().is_some() {
            participant::DETACHED
        } else {
            participant::FREE
        };
        // SYNC POINT: Release pairs with reapers' and registrations' Acquire
        // loads of the state word; our last cursor store comes first.
        s.state.store(
            participant::with_state(s.state.load(Ordering::Relaxed), next),
            Ordering::Release,
        );
        self.ring.liveness.unlock(lock_slot::subscriber(self.slot));
    }
}

/// A record borrowed from a broadcast log; dropping it moves the cursor on.
pub struct Record<'a> {
    subscriber: &'a mut Subscriber,
    found: Found,
}

impl Record<'_> {
    /// The record type.
    pub fn record_type(&self) -> u16 {
        self.found.record_type
    }

    /// The record's sequence number.
    pub fn sequence(&self) -> u64 {
        self.found.seq
    }

    /// Whether the record's slot still holds this record (its stamp is
    /// unchanged). The bytes you borrowed are the record's either way (read
    /// in place under `Backpressure`, where this is always true; a validated
    /// copy under `Overwrite`, where this says whether a publisher has
    /// rewritten the slot since).
    pub fn is_intact(&self) -> bool {
        self.subscriber.intact(self.found)
    }
}

impl Deref for Record<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let s = &self.subscriber;
        if s.ring.policy == Policy::Overwrite {
            return &s.scratch[..self.found.len];
        }
        // SAFETY: `locate` bounded `len` by the slot's payload area, and under `Backpressure` no
        // publisher reuses the slot before we release it.
        unsafe {
            core::slice::from_raw_parts(
                s.ring.payloads.add(s.ring.payload_offset(self.found.seq)),
                self.found.len,
            )
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        let s = &mut *self.subscriber;
        s.ring.note(self.found.seq, self.found.len, false);
        s.cursor = self.found.seq + 1;
        s.after_read(self.found.len);
    }
}
