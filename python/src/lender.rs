//! Rust handles that lend a claim or a record to Python.
//!
//! In Rust a claim or a record borrows its publisher or subscriber
//! mutably until it is committed or released. Python cannot express that
//! borrow, so a [`Lender`] keeps the handle at a fixed heap address and
//! the one lease it has lent beside it, with the borrow's lifetime erased;
//! every way to the handle checks that no lease is outstanding, so the
//! erased borrow is the only reference while it lives, and it is dropped
//! before the handle.
//!
//! [`Writer`] and [`Reader`] give the three ring kinds' handles (topics,
//! SPSC channels, work queues) one shape, so that each Python class is the
//! same code over another handle.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use shmbus::{ClaimError, RecvError, WaitStrategy};

use crate::errors::{Closed, InUse};

/// A writing handle: a topic's publisher, a channel's producer or a work
/// queue's producer.
pub trait Writer: 'static {
    /// Its claim, which borrows it.
    type Claim<'a>: DerefMut<Target = [u8]>;
    /// Claims `len` bytes without waiting.
    fn try_claim(&mut self, len: usize) -> Result<Self::Claim<'_>, ClaimError>;
    /// Claims `len` bytes, waiting up to `timeout`.
    fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Claim<'_>, ClaimError>;
    /// Commits `claim` with `record_type`; returns its sequence where the
    /// ring numbers records.
    fn commit(claim: Self::Claim<'_>, record_type: u16) -> Result<Option<u64>, ClaimError>;
    /// The claim's sequence, where the ring numbers records.
    fn claim_sequence(claim: &Self::Claim<'_>) -> Option<u64>;
    /// Sends a copy of `payload` without waiting.
    fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<Option<u64>, ClaimError>;
    /// Sends a copy of `payload`, waiting up to `timeout`.
    fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Option<u64>, ClaimError>;
}

/// What a reader knows of a record besides its bytes.
#[derive(Clone, Copy, Debug)]
pub struct RecordMeta {
    /// Its record type.
    pub record_type: u16,
    /// Its sequence, where the ring numbers records.
    pub sequence: Option<u64>,
    /// Work queues: taken before by a consumer that gave it back or died.
    pub redelivered: bool,
}

/// A reading handle: a topic's subscriber, a channel's consumer or a work
/// queue's consumer.
pub trait Reader: 'static {
    /// Its borrowed record.
    type Record<'a>: Deref<Target = [u8]>;
    /// Borrows the next record without waiting.
    fn try_read(&mut self) -> Result<Self::Record<'_>, RecvError>;
    /// Borrows the next record, waiting up to `timeout`.
    fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Record<'_>, RecvError>;
    /// The record's type, sequence and flags.
    fn meta(record: &Self::Record<'_>) -> RecordMeta;
    /// Ends the borrow: a work queue's record is acknowledged (`ack`) or
    /// given back; any other record is consumed either way.
    fn finish(record: Self::Record<'_>, ack: bool) -> Result<(), RecvError>;
}

impl Writer for shmbus::Publisher {
    type Claim<'a> = shmbus::Claim<'a>;
    fn try_claim(&mut self, len: usize) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::Publisher::try_claim(self, len)
    }
    fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::Publisher::claim_timeout(self, len, wait, timeout)
    }
    fn commit(mut claim: Self::Claim<'_>, record_type: u16) -> Result<Option<u64>, ClaimError> {
        claim.set_record_type(record_type);
        claim.commit().map(Some)
    }
    fn claim_sequence(claim: &Self::Claim<'_>) -> Option<u64> {
        Some(claim.sequence())
    }
    fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<Option<u64>, ClaimError> {
        shmbus::Publisher::try_send(self, record_type, payload).map(Some)
    }
    fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Option<u64>, ClaimError> {
        shmbus::Publisher::send_timeout(self, record_type, payload, wait, timeout).map(Some)
    }
}

impl Writer for shmbus::Producer {
    type Claim<'a> = shmbus::WriteSlot<'a>;
    fn try_claim(&mut self, len: usize) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::Producer::try_claim(self, len)
    }
    fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::Producer::claim_timeout(self, len, wait, timeout)
    }
    fn commit(mut claim: Self::Claim<'_>, record_type: u16) -> Result<Option<u64>, ClaimError> {
        claim.set_record_type(record_type);
        claim.commit();
        Ok(None)
    }
    fn claim_sequence(_: &Self::Claim<'_>) -> Option<u64> {
        None
    }
    fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<Option<u64>, ClaimError> {
        shmbus::Producer::try_send(self, record_type, payload).map(|()| None)
    }
    fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Option<u64>, ClaimError> {
        shmbus::Producer::send_timeout(self, record_type, payload, wait, timeout).map(|()| None)
    }
}

impl Writer for shmbus::QueueProducer {
    type Claim<'a> = shmbus::QueueClaim<'a>;
    fn try_claim(&mut self, len: usize) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::QueueProducer::try_claim(self, len)
    }
    fn claim_timeout(
        &mut self,
        len: usize,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Claim<'_>, ClaimError> {
        shmbus::QueueProducer::claim_timeout(self, len, wait, timeout)
    }
    fn commit(mut claim: Self::Claim<'_>, record_type: u16) -> Result<Option<u64>, ClaimError> {
        claim.set_record_type(record_type);
        claim.commit().map(Some)
    }
    fn claim_sequence(claim: &Self::Claim<'_>) -> Option<u64> {
        Some(claim.sequence())
    }
    fn try_send(&mut self, record_type: u16, payload: &[u8]) -> Result<Option<u64>, ClaimError> {
        shmbus::QueueProducer::try_send(self, record_type, payload).map(Some)
    }
    fn send_timeout(
        &mut self,
        record_type: u16,
        payload: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Option<u64>, ClaimError> {
        shmbus::QueueProducer::send_timeout(self, record_type, payload, wait, timeout).map(Some)
    }
}

impl Reader for shmbus::Subscriber {
    type Record<'a> = shmbus::Record<'a>;
    fn try_read(&mut self) -> Result<Self::Record<'_>, RecvError> {
        shmbus::Subscriber::try_read(self)
    }
    fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Record<'_>, RecvError> {
        shmbus::Subscriber::read_timeout(self, wait, timeout)
    }
    fn meta(record: &Self::Record<'_>) -> RecordMeta {
        RecordMeta {
            record_type: record.record_type(),
            sequence: Some(record.sequence()),
            redelivered: false,
        }
    }
    fn finish(record: Self::Record<'_>, _ack: bool) -> Result<(), RecvError> {
        drop(record);
        Ok(())
    }
}

impl Reader for shmbus::Consumer {
    type Record<'a> = shmbus::SpscRecord<'a>;
    fn try_read(&mut self) -> Result<Self::Record<'_>, RecvError> {
        shmbus::Consumer::try_read(self)
    }
    fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Record<'_>, RecvError> {
        shmbus::Consumer::read_timeout(self, wait, timeout)
    }
    fn meta(record: &Self::Record<'_>) -> RecordMeta {
        RecordMeta {
            record_type: record.record_type(),
            sequence: None,
            redelivered: false,
        }
    }
    fn finish(record: Self::Record<'_>, _ack: bool) -> Result<(), RecvError> {
        record.release();
        Ok(())
    }
}

impl Reader for shmbus::QueueConsumer {
    type Record<'a> = shmbus::Taken<'a>;
    fn try_read(&mut self) -> Result<Self::Record<'_>, RecvError> {
        shmbus::QueueConsumer::try_take(self)
    }
    fn read_timeout(
        &mut self,
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<Self::Record<'_>, RecvError> {
        shmbus::QueueConsumer::take_timeout(self, wait, timeout)
    }
    fn meta(record: &Self::Record<'_>) -> RecordMeta {
        RecordMeta {
            record_type: record.record_type(),
            sequence: Some(record.sequence()),
            redelivered: record.redelivered(),
        }
    }
    fn finish(record: Self::Record<'_>, ack: bool) -> Result<(), RecvError> {
        if ack {
            record.ack()
        } else {
            record.give_back()
        }
    }
}

/// A handle `H` at a fixed heap address, and the lease `L` (a claim or a
/// record borrowing it) it has lent, if any.
///
/// Invariant: while `lease` is `Some`, it is the only reference to the
/// handle; [`Lender::handle`] refuses, and the lease is dropped before the
/// handle (field order, and [`Lender::close`] refuses too).
pub struct Lender<H, L> {
    /// The outstanding lease, its borrow of `*handle` erased to `'static`.
    /// Declared first: dropped before the handle.
    lease: Option<L>,
    /// From `Box::into_raw`; `None` once closed.
    handle: Option<NonNull<H>>,
    /// What the Python class calls itself in messages.
    what: &'static str,
}

impl<H, L> Lender<H, L> {
    /// Takes `handle` onto the heap.
    pub fn new(handle: H, what: &'static str) -> Self {
        Lender {
            lease: None,
            handle: Some(NonNull::from(Box::leak(Box::new(handle)))),
            what,
        }
    }

    /// The handle's address, if it is open and has nothing lent.
    ///
    /// # Errors
    ///
    /// `Closed` once closed, `InUse` while a claim or record is out.
    fn ptr(&self) -> PyResult<NonNull<H>> {
        let Some(ptr) = self.handle else {
            return Err(Closed::new_err(format!("{} is closed", self.what)));
        };
        if self.lease.is_some() {
            return Err(InUse::new_err(format!(
                "{} holds a claim or record: commit, abort or release it first",
                self.what
            )));
        }
        Ok(ptr)
    }

    /// The handle, if it is open and has nothing lent.
    ///
    /// # Errors
    ///
    /// `Closed` once closed, `InUse` while a claim or record is out.
    pub fn handle(&mut self) -> PyResult<&mut H> {
        let mut ptr = self.ptr()?;
        // SAFETY: the box is alive until `close` or drop, and with no lease
        // out, `&mut self` makes this the only reference to it.
        Ok(unsafe { ptr.as_mut() })
    }

    /// Lends the handle to `make`, whose result may borrow it for as long
    /// as it is stored here; stores what it returns (`None`: nothing to
    /// lend now, and nothing stored).
    ///
    /// # Errors
    ///
    /// `Closed` once closed, `InUse` while a claim or record is out, or what
    /// `make` returned (nothing is stored).
    pub fn lend(
        &mut self,
        make: impl FnOnce(*mut H) -> PyResult<Option<L>>,
    ) -> PyResult<Option<&mut L>> {
        let ptr = self.ptr()?;
        // `make` may turn the pointer into a borrow as long as `L` is
        // stored: the box lives until `close` or drop; `close` refuses while
        // a lease is out and drop drops the lease first, so the borrow never
        // outlives it; every other way to the handle goes through `ptr`,
        // which refuses while the lease is stored.
        Ok(make(ptr.as_ptr())?.map(|lease| self.lease.insert(lease)))
    }

    /// The lease, to end it: taken out, so that the handle is free again
    /// once the caller has consumed it (commit, release or drop), which it
    /// must do before touching this lender again.
    pub fn take_lease(&mut self) -> Option<L> {
        self.lease.take()
    }

    /// The outstanding lease.
    pub fn lease_mut(&mut self) -> Option<&mut L> {
        self.lease.as_mut()
    }

    /// Drops the handle (detaching it from its ring).
    ///
    /// # Errors
    ///
    /// `InUse` while a claim or record is out. Closing twice is no error.
    pub fn close(&mut self) -> PyResult<()> {
        if self.handle.is_none() {
            return Ok(());
        }
        self.ptr()?;
        self.drop_handle();
        Ok(())
    }

    fn drop_handle(&mut self) {
        if let Some(ptr) = self.handle.take() {
            // SAFETY: `ptr` came from `Box::leak` and is dropped once (taken
            // out of `handle`); no lease borrows it (callers drop it first).
            drop(unsafe { Box::from_raw(ptr.as_ptr()) });
        }
    }
}

impl<H, L> Drop for Lender<H, L> {
    fn drop(&mut self) {
        // The lease borrows the handle: it goes first.
        drop(self.lease.take());
        self.drop_handle();
    }
}

/// The number of the calling thread: given out once per thread from a
/// counter, so never reused, and read from a thread-local without asking
/// `std::thread::current` for the thread's handle (about 20 ns a call).
fn thread_number() -> u64 {
    /// The next number to give out (0 means "not given yet").
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: Cell<u64> = const { Cell::new(0) };
    }
    NUMBER.with(|number| match number.get() {
        0 => {
            // Relaxed: only the uniqueness of the number matters, which
            // the read-modify-write gives whatever the ordering.
            let given = NEXT.fetch_add(1, Ordering::Relaxed);
            number.set(given);
            given
        }
        given => given,
    })
}

/// A value that stays on the thread that made it: reached only through
/// [`Confined::get`], which refuses other threads, and dropped only on
/// that thread (elsewhere it is leaked, with a warning).
///
/// A Python class whose state is `Confined` is `Send` and `Sync` for
/// pyo3 without any of its state moving or being shared: the same
/// confinement as pyo3's `unsendable`, for the price of a thread-local
/// read instead of `std::thread::current` on every access (a fifth of the
/// time of a publish-and-read loop through a `with` block went to that).
pub struct Confined<T> {
    value: ManuallyDrop<T>,
    thread: u64,
    /// What the object is called in messages.
    what: &'static str,
}

impl<T> Confined<T> {
    /// Confines `value` to the calling thread.
    pub fn new(value: T, what: &'static str) -> Self {
        Confined {
            value: ManuallyDrop::new(value),
            thread: thread_number(),
            what,
        }
    }

    /// The value, on the thread that made it.
    ///
    /// # Errors
    ///
    /// `RuntimeError` on any other thread.
    #[inline]
    pub fn get(&self) -> PyResult<&T> {
        if thread_number() == self.thread {
            Ok(&self.value)
        } else {
            Err(PyRuntimeError::new_err(format!(
                "this {} belongs to another thread: use it from the thread that made it",
                self.what
            )))
        }
    }
}

// SAFETY: the value is reached only through `get`, which returns it only on
// the thread that made it, and dropped only there (`Drop` leaks it
// elsewhere): it never moves to or is shared with another thread.
unsafe impl<T> Send for Confined<T> {}
// SAFETY: as above: no other thread ever gets a reference to the value.
unsafe impl<T> Sync for Confined<T> {}

impl<T> Drop for Confined<T> {
    fn drop(&mut self) {
        if thread_number() == self.thread {
            // SAFETY: dropped once, here, on the thread that owns it.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        } else {
            // Leaked, as pyo3 does with an `unsendable` object dropped on
            // another thread: its state cannot be touched from here.
            Python::with_gil(|py| {
                PyRuntimeError::new_err(format!(
                    "a {} dropped on another thread than its own is leaked",
                    self.what
                ))
                .write_unraisable(py, None);
            });
        }
    }
}

/// A value that crosses into `Python::allow_threads`, which runs its
/// closure on the calling thread: nothing in it moves to another thread.
pub struct SameThread<T>(pub T);

// SAFETY: only built around values that `allow_threads` hands back to the
// thread that made them (the closure runs on the calling thread, with the
// GIL released).
unsafe impl<T> Send for SameThread<T> {}

impl<T> SameThread<T> {
    /// The value (a method, so closures capture the wrapper whole).
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// How long one wait lasts with the GIL released before the caller looks
/// for signals (Ctrl-C): short enough that an interrupt is felt at once.
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Runs `attempt` (a timed ring call) in slices of at most [`WAIT_SLICE`]
/// with the GIL released, until it returns anything but a timeout or
/// `timeout` has passed (`None`: never), checking for signals between
/// slices so that Ctrl-C raises `KeyboardInterrupt`.
///
/// # Errors
///
/// What a signal handler raised.
pub fn wait_in_slices<T, E>(
    py: Python<'_>,
    timeout: Option<Duration>,
    is_timeout: fn(&E) -> bool,
    mut attempt: impl FnMut(Duration) -> Result<T, E>,
) -> PyResult<Result<T, E>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        // No deadline (none given, or one too far to represent): slices
        // until something other than a timeout comes back.
        let slice = deadline.map_or(WAIT_SLICE, |d| {
            d.saturating_duration_since(Instant::now()).min(WAIT_SLICE)
        });
        let job = SameThread(&mut attempt);
        let result = py
            .allow_threads(move || {
                let attempt = job.into_inner();
                SameThread(attempt(slice))
            })
            .into_inner();
        match result {
            Err(ref e) if is_timeout(e) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(result);
                }
                py.check_signals()?;
            }
            other => return Ok(other),
        }
    }
}
