//! The Python classes of the handles that write and read: `Publisher`
//! and `Subscriber` (topics), `Producer` and `Consumer` (SPSC channels),
//! `QueueProducer` and `QueueConsumer` (work queues).
//!
//! Every writer has the same verbs (`try_claim` / `claim`, `try_send` /
//! `send`) and every reader too (`try_read` / `read`, a work queue's
//! `try_take` / `take`, and `try_recv` / `recv`), so each class is one
//! expansion of a macro over generic code; what a kind adds (a
//! subscriber's `missed`, ...) is passed in. The `try_` form never waits;
//! the other waits `timeout` seconds (`None`: without end) with the GIL
//! released, in slices of [`WAIT_SLICE`](crate::lender::WAIT_SLICE)
//! between which signals are handled, so Ctrl-C interrupts it.

use std::time::Duration;

use std::cell::{RefCell, RefMut};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmbus::{ClaimError, RecvError, WaitStrategy};

use crate::errors::{claim_error, recv_error, Closed, Full};
use crate::lease::{Claim, EndLease, Record};
use crate::lender::{wait_in_slices, Confined, Lender, Reader, Writer};

/// A wait strategy by name: `"spin"`, `"yield"`, `"backoff"` or
/// `"blocking"` (`None`: `default`).
///
/// # Errors
///
/// `ValueError` for any other name.
pub fn wait_strategy(name: Option<&str>, default: WaitStrategy) -> PyResult<WaitStrategy> {
    match name {
        None => Ok(default),
        Some("spin") => Ok(WaitStrategy::BusySpin),
        Some("yield") => Ok(WaitStrategy::Yield),
        Some("backoff") => Ok(WaitStrategy::BACKOFF),
        Some("blocking") => Ok(WaitStrategy::BLOCKING),
        Some(other) => Err(PyValueError::new_err(format!(
            "wait {other:?} is none of 'spin', 'yield', 'backoff', 'blocking'"
        ))),
    }
}

/// A timeout in seconds (`None`: without end; one too long to represent
/// is taken as `None`).
///
/// # Errors
///
/// `ValueError` for a negative or NaN timeout.
pub fn timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_nan() || s < 0.0 => Err(PyValueError::new_err(format!(
            "timeout {s} must be a number of seconds, 0 or more"
        ))),
        Some(s) => Ok(Duration::try_from_secs_f64(s).ok()),
    }
}

/// The payload of a send: a `bytes` object as it is, any other buffer
/// (bytearray, memoryview, array) copied first.
fn with_payload<T>(payload: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> T) -> PyResult<T> {
    if let Ok(bytes) = payload.downcast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
    }
    let buffer = pyo3::buffer::PyBuffer::<u8>::get(payload)?;
    Ok(f(&buffer.to_vec(payload.py())?))
}

/// The lender of writer `W`.
pub type WriterLender<W> = Lender<W, <W as Writer>::Claim<'static>>;
/// The lender of reader `R`.
pub type ReaderLender<R> = Lender<R, <R as Reader>::Record<'static>>;

/// How a call waits: `None` not at all (the `try_` forms), else with a
/// strategy up to a timeout (`None`: without end).
pub type Waiting = Option<(WaitStrategy, Option<Duration>)>;

/// The state of a writing or reading Python class: the lender of its
/// Rust handle, and the last lease object it lent (`Claim` or `Record`),
/// lent again once nothing else refers to it.
pub struct Endpoint<L, S> {
    /// The Rust handle and its outstanding lease.
    pub inner: L,
    /// The last lease object, if it has ended.
    pub spare: Option<Py<S>>,
}

/// The state in `cell`, on the thread that made it, borrowed for one call.
///
/// # Errors
///
/// `RuntimeError` on another thread, or while another call of the same
/// handle is in progress (a signal handler run by its wait).
pub fn borrow_state<'a, T>(cell: &'a Confined<RefCell<T>>, what: &str) -> PyResult<RefMut<'a, T>> {
    cell.get()?.try_borrow_mut().map_err(|_| {
        PyRuntimeError::new_err(format!(
            "this {what} is in use by a call in progress (from a signal handler?)"
        ))
    })
}

/// What a ring call returns when it fails: which errors mean a timed
/// wait ran out, which mean that a `try_` call found nothing (answered
/// `None` rather than raised), and how the rest become Python exceptions.
struct Failure<E> {
    is_timeout: fn(&E) -> bool,
    is_nothing: fn(&E) -> bool,
    convert: fn(E) -> PyErr,
}

/// How claims fail: a full ring raises `Full` even from `try_claim`.
const CLAIM_FAILURE: Failure<ClaimError> = Failure {
    is_timeout: |e| matches!(e, ClaimError::TimedOut),
    is_nothing: |_| false,
    convert: claim_error,
};

/// How reads fail: an empty ring is `None` from the `try_` forms.
const READ_FAILURE: Failure<RecvError> = Failure {
    is_timeout: |e| matches!(e, RecvError::TimedOut),
    is_nothing: |e| matches!(e, RecvError::Empty),
    convert: recv_error,
};

/// Lends `lender`'s handle to a ring call: `now` once (`waiting` `None`;
/// what `failure` calls nothing is `Ok(None)`), or `timed` in slices with
/// the GIL released until it returns anything but a timeout or the wait is
/// over; stores the lease it returns.
fn lend_waiting<'l, H: 'static, L, E>(
    py: Python<'_>,
    lender: &'l mut Lender<H, L>,
    waiting: Waiting,
    now: impl FnOnce(&'static mut H) -> Result<L, E>,
    mut timed: impl FnMut(&'static mut H, WaitStrategy, Duration) -> Result<L, E>,
    failure: &Failure<E>,
) -> PyResult<Option<&'l mut L>> {
    lender.lend(|handle| {
        let Some((wait, timeout)) = waiting else {
            // SAFETY: `lend` gives the handle's address with nothing else
            // borrowing it, and keeps the lease stored from outliving it.
            return match now(unsafe { &mut *handle }) {
                Ok(lease) => Ok(Some(lease)),
                Err(e) if (failure.is_nothing)(&e) => Ok(None),
                Err(e) => Err((failure.convert)(e)),
            };
        };
        wait_in_slices(py, timeout, failure.is_timeout, |slice| {
            // SAFETY: as above; an attempt that fails returns no borrow, so
            // at most one borrow made here is alive at a time.
            timed(unsafe { &mut *handle }, wait, slice)
        })?
        .map(Some)
        .map_err(failure.convert)
    })
}

/// Claims `len` bytes through `lender` (`None` never: a full ring raises).
fn lend_claim<'l, W: Writer>(
    py: Python<'_>,
    lender: &'l mut WriterLender<W>,
    len: usize,
    waiting: Waiting,
) -> PyResult<Option<&'l mut W::Claim<'static>>> {
    lend_waiting(
        py,
        lender,
        waiting,
        |w: &'static mut W| w.try_claim(len),
        |w: &'static mut W, wait, slice| w.claim_timeout(len, wait, slice),
        &CLAIM_FAILURE,
    )
}

/// Borrows the next record through `lender` (`None`: a `try_` call found
/// the ring empty).
fn lend_record<'l, R: Reader>(
    py: Python<'_>,
    lender: &'l mut ReaderLender<R>,
    waiting: Waiting,
) -> PyResult<Option<&'l mut R::Record<'static>>> {
    lend_waiting(
        py,
        lender,
        waiting,
        |r: &'static mut R| r.try_read(),
        |r: &'static mut R, wait, slice| r.read_timeout(wait, slice),
        &READ_FAILURE,
    )
}

/// A claim from `lender` as a Python `Claim` that `handle` lends (ended by
/// `end`; the handle's `spare` claim object lent again if it can be).
pub fn claim<W: Writer>(
    handle: &Bound<'_, PyAny>,
    end: EndLease<Option<u16>, Claim>,
    lender: &mut WriterLender<W>,
    spare: &mut Option<Py<Claim>>,
    len: usize,
    record_type: u16,
    waiting: Waiting,
) -> PyResult<Py<Claim>> {
    // Never `None`: a full ring is an error for claims, `try_` or not.
    let lease = lend_claim(handle.py(), lender, len, waiting)?
        .ok_or_else(|| Full::new_err("no room in the ring now"))?;
    let sequence = W::claim_sequence(lease);
    Claim::lend(handle, end, spare, &mut lease[..], record_type, sequence)
}

/// A record from `lender` as a Python `Record` that `handle` lends (ended
/// by `end`; the handle's `spare` record object lent again if it can be);
/// `None` when a `try_` call found the ring empty.
pub fn record<R: Reader>(
    handle: &Bound<'_, PyAny>,
    end: EndLease<bool, Record>,
    lender: &mut ReaderLender<R>,
    spare: &mut Option<Py<Record>>,
    waiting: Waiting,
) -> PyResult<Option<Py<Record>>> {
    let Some(lease) = lend_record(handle.py(), lender, waiting)? else {
        return Ok(None);
    };
    let meta = R::meta(lease);
    Record::lend(handle, end, spare, &lease[..], meta).map(Some)
}

/// Sends a copy of `payload` through `lender`'s writer.
pub fn send<W: Writer>(
    py: Python<'_>,
    lender: &mut WriterLender<W>,
    record_type: u16,
    payload: &Bound<'_, PyAny>,
    waiting: Waiting,
) -> PyResult<Option<u64>> {
    let writer = lender.handle()?;
    with_payload(payload, |bytes| match waiting {
        None => writer.try_send(record_type, bytes).map_err(claim_error),
        Some((wait, timeout)) => wait_in_slices(py, timeout, CLAIM_FAILURE.is_timeout, |slice| {
            writer.send_timeout(record_type, bytes, wait, slice)
        })?
        .map_err(claim_error),
    })?
}

/// Copies the next record out through `lender`'s reader and moves past it
/// (a work queue's record is acknowledged): `(record_type, bytes)`, or
/// `None` when a `try_` call found the ring empty.
pub fn recv<'py, R: Reader>(
    py: Python<'py>,
    lender: &mut ReaderLender<R>,
    waiting: Waiting,
) -> PyResult<Option<(u16, Bound<'py, PyBytes>)>> {
    let Some(lease) = lend_record(py, lender, waiting)? else {
        return Ok(None);
    };
    let record_type = R::meta(lease).record_type;
    let bytes = PyBytes::new(py, lease);
    end_record(lender, true)?;
    Ok(Some((record_type, bytes)))
}

/// Ends `lender`'s claim: commits it with `record_type` (`Some`) or
/// aborts it.
pub fn end_claim<W: Writer>(
    lender: &mut WriterLender<W>,
    commit: Option<u16>,
) -> PyResult<Option<u64>> {
    let claim = lender
        .take_lease()
        .ok_or_else(|| Closed::new_err("the claim was already ended"))?;
    match commit {
        Some(record_type) => W::commit(claim, record_type).map_err(claim_error),
        None => {
            drop(claim);
            Ok(None)
        }
    }
}

/// Ends `lender`'s record (a work queue's acknowledged with `ack`, else
/// given back).
pub fn end_record<R: Reader>(lender: &mut ReaderLender<R>, ack: bool) -> PyResult<()> {
    let record = lender
        .take_lease()
        .ok_or_else(|| Closed::new_err("the record was already released"))?;
    R::finish(record, ack).map_err(recv_error)
}

/// One writer class: `$class` over the Rust handle `$rust`, plus `$extra`
/// methods.
macro_rules! writer_class {
    ($(#[$doc:meta])* $class:ident, $rust:ty, $what:literal, { $($extra:tt)* }) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "shmbus._shmbus")]
        pub struct $class(
            $crate::lender::Confined<std::cell::RefCell<$crate::endpoints::Endpoint<$crate::endpoints::WriterLender<$rust>, Claim>>>,
        );

        impl $class {
            /// Wraps `handle`.
            pub fn new(handle: $rust) -> Self {
                let state = $crate::endpoints::Endpoint {
                    inner: $crate::lender::Lender::new(handle, $what),
                    spare: None,
                };
                $class($crate::lender::Confined::new(std::cell::RefCell::new(state), $what))
            }

            /// Its state, on the thread that made it.
            ///
            /// # Errors
            ///
            /// `RuntimeError` on another thread, or while a call of this
            /// handle is in progress (a signal handler run by its wait).
            pub fn state(&self) -> PyResult<std::cell::RefMut<'_, $crate::endpoints::Endpoint<$crate::endpoints::WriterLender<$rust>, Claim>>> {
                $crate::endpoints::borrow_state(&self.0, $what)
            }

            /// Ends the claim lent by `handle` (one of these), keeping its
            /// object as the spare when it may be lent again.
            fn end_lent<'py>(
                handle: &Bound<'py, PyAny>,
                commit: Option<u16>,
                claim: Option<&Bound<'py, Claim>>,
            ) -> PyResult<Option<u64>> {
                let handle = handle.downcast::<Self>()?;
                let mut this = handle.get().state()?;
                if let Some(claim) = claim {
                    this.spare = Some(claim.clone().unbind());
                }
                $crate::endpoints::end_claim(&mut this.inner, commit)
            }

            /// Claims through this handle.
            fn lend_claim(
                slf: &Bound<'_, Self>,
                len: usize,
                record_type: u16,
                waiting: $crate::endpoints::Waiting,
            ) -> PyResult<Py<Claim>> {
                let mut this = slf.get().state()?;
                let this = &mut *this;
                $crate::endpoints::claim(
                    slf.as_any(), Self::end_lent, &mut this.inner, &mut this.spare, len, record_type, waiting,
                )
            }
        }

        #[pymethods]
        impl $class {
            /// Claims `len` bytes to write in place, without waiting
            /// (`Full` if there is no room now).
            #[pyo3(signature = (len, record_type = 0))]
            fn try_claim(slf: &Bound<'_, Self>, len: usize, record_type: u16) -> PyResult<Py<Claim>> {
                Self::lend_claim(slf, len, record_type, None)
            }

            /// Claims `len` bytes to write in place, waiting for room up
            /// to `timeout` seconds (`None`: without end) with the GIL
            /// released; `Timeout` when it gives up.
            #[pyo3(signature = (len, record_type = 0, timeout = None, wait = None))]
            fn claim(
                slf: &Bound<'_, Self>,
                len: usize,
                record_type: u16,
                timeout: Option<f64>,
                wait: Option<&str>,
            ) -> PyResult<Py<Claim>> {
                let waiting = (
                    $crate::endpoints::wait_strategy(wait, WaitStrategy::BACKOFF)?,
                    $crate::endpoints::timeout(timeout)?,
                );
                Self::lend_claim(slf, len, record_type, Some(waiting))
            }

            /// Sends a copy of `payload` (bytes or any buffer) without
            /// waiting; returns its sequence (`None` for a channel).
            #[pyo3(signature = (payload, record_type = 0))]
            fn try_send(&self, py: Python<'_>, payload: &Bound<'_, PyAny>, record_type: u16) -> PyResult<Option<u64>> {
                $crate::endpoints::send(py, &mut self.state()?.inner, record_type, payload, None)
            }

            /// Sends a copy of `payload`, waiting for room up to `timeout`
            /// seconds with the GIL released.
            #[pyo3(signature = (payload, record_type = 0, timeout = None, wait = None))]
            fn send(
                &self,
                py: Python<'_>,
                payload: &Bound<'_, PyAny>,
                record_type: u16,
                timeout: Option<f64>,
                wait: Option<&str>,
            ) -> PyResult<Option<u64>> {
                let waiting = (
                    $crate::endpoints::wait_strategy(wait, WaitStrategy::BACKOFF)?,
                    $crate::endpoints::timeout(timeout)?,
                );
                $crate::endpoints::send(py, &mut self.state()?.inner, record_type, payload, Some(waiting))
            }

            /// Detaches from the ring (refused while a claim is open).
            fn close(&self) -> PyResult<()> {
                self.state()?.inner.close()
            }

            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]

            fn __exit__(
                &self,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                self.close()?;
                Ok(false)
            }

            $($extra)*
        }
    };
}

/// One reader class: `$class` over the Rust handle `$rust`, reading with
/// `$try_read` / `$read` (waiting with `$default_wait` unless told), plus
/// `$extra` methods.
macro_rules! reader_class {
    ($(#[$doc:meta])* $class:ident, $rust:ty, $what:literal, $try_read:ident, $read:ident, $default_wait:expr, { $($extra:tt)* }) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "shmbus._shmbus")]
        pub struct $class(
            $crate::lender::Confined<std::cell::RefCell<$crate::endpoints::Endpoint<$crate::endpoints::ReaderLender<$rust>, Record>>>,
        );

        impl $class {
            /// Wraps `handle`.
            pub fn new(handle: $rust) -> Self {
                let state = $crate::endpoints::Endpoint {
                    inner: $crate::lender::Lender::new(handle, $what),
                    spare: None,
                };
                $class($crate::lender::Confined::new(std::cell::RefCell::new(state), $what))
            }

            /// Its state, on the thread that made it.
            ///
            /// # Errors
            ///
            /// `RuntimeError` on another thread, or while a call of this
            /// handle is in progress (a signal handler run by its wait).
            pub fn state(&self) -> PyResult<std::cell::RefMut<'_, $crate::endpoints::Endpoint<$crate::endpoints::ReaderLender<$rust>, Record>>> {
                $crate::endpoints::borrow_state(&self.0, $what)
            }

            /// Ends the record lent by `handle` (one of these), keeping its
            /// object as the spare when it may be lent again.
            fn end_lent<'py>(
                handle: &Bound<'py, PyAny>,
                ack: bool,
                record: Option<&Bound<'py, Record>>,
            ) -> PyResult<Option<u64>> {
                let handle = handle.downcast::<Self>()?;
                let mut this = handle.get().state()?;
                if let Some(record) = record {
                    this.spare = Some(record.clone().unbind());
                }
                $crate::endpoints::end_record(&mut this.inner, ack).map(|()| None)
            }

            /// Borrows the next record through this handle.
            fn lend_record(
                slf: &Bound<'_, Self>,
                waiting: $crate::endpoints::Waiting,
            ) -> PyResult<Option<Py<Record>>> {
                let mut this = slf.get().state()?;
                let this = &mut *this;
                $crate::endpoints::record(slf.as_any(), Self::end_lent, &mut this.inner, &mut this.spare, waiting)
            }
        }

        #[pymethods]
        impl $class {
            /// Borrows the next record without waiting (`None` if there
            /// is none yet).
            fn $try_read(slf: &Bound<'_, Self>) -> PyResult<Option<Py<Record>>> {
                Self::lend_record(slf, None)
            }

            /// Borrows the next record, waiting up to `timeout` seconds
            /// (`None`: without end) with the GIL released; `Timeout` when
            /// it gives up.
            #[pyo3(signature = (timeout = None, wait = None))]
            fn $read(slf: &Bound<'_, Self>, timeout: Option<f64>, wait: Option<&str>) -> PyResult<Py<Record>> {
                let waiting = (
                    $crate::endpoints::wait_strategy(wait, $default_wait)?,
                    $crate::endpoints::timeout(timeout)?,
                );
                // Never `None`: only the `try_` forms answer an empty ring so.
                Self::lend_record(slf, Some(waiting))?
                    .ok_or_else(|| $crate::errors::Empty::new_err("no record to read now"))
            }

            /// Copies the next record out without waiting and moves past
            /// it: `(record_type, bytes)`, or `None` if there is none yet.
            fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<(u16, Bound<'py, PyBytes>)>> {
                $crate::endpoints::recv(py, &mut self.state()?.inner, None)
            }

            /// As `try_recv`, waiting up to `timeout` seconds with the GIL
            /// released.
            #[pyo3(signature = (timeout = None, wait = None))]
            fn recv<'py>(
                &self,
                py: Python<'py>,
                timeout: Option<f64>,
                wait: Option<&str>,
            ) -> PyResult<Option<(u16, Bound<'py, PyBytes>)>> {
                let waiting = (
                    $crate::endpoints::wait_strategy(wait, $default_wait)?,
                    $crate::endpoints::timeout(timeout)?,
                );
                $crate::endpoints::recv(py, &mut self.state()?.inner, Some(waiting))
            }

            /// Detaches from the ring (refused while a record is held).
            fn close(&self) -> PyResult<()> {
                self.state()?.inner.close()
            }

            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]

            fn __exit__(
                &self,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                self.close()?;
                Ok(false)
            }

            $($extra)*
        }
    };
}

writer_class!(
    /// A topic's publisher: claims slots and publishes records that every
    /// subscriber reads.
    Publisher, shmbus::Publisher, "publisher", {
        /// Records this publisher has published.
        #[getter]
        fn published(&self) -> PyResult<u64> {
            Ok(self.state()?.inner.handle()?.published())
        }
    }
);

writer_class!(
    /// An SPSC channel's producer (one per channel).
    Producer, shmbus::Producer, "producer", {}
);

writer_class!(
    /// A work queue's producer: each record it sends goes to one consumer.
    QueueProducer, shmbus::QueueProducer, "queue producer", {}
);

reader_class!(
    /// A topic's subscriber: reads every record at its own pace.
    Subscriber, shmbus::Subscriber, "subscriber", try_read, read, WaitStrategy::BLOCKING, {
        /// Records this subscriber has missed (laps, reclaimed claims, skips).
        #[getter]
        fn missed(&self) -> PyResult<u64> {
            Ok(self.state()?.inner.handle()?.missed())
        }

        /// The sequence of the next record it reads.
        #[getter]
        fn position(&self) -> PyResult<u64> {
            Ok(self.state()?.inner.handle()?.position())
        }

        /// Passes the next record without reading it (one that keeps
        /// reading `Corrupt`); returns its sequence, counted as missed.
        fn skip(&self) -> PyResult<u64> {
            self.state()?.inner.handle()?.skip().map_err(recv_error)
        }
    }
);

reader_class!(
    /// An SPSC channel's consumer (one per channel). Its reads wait with
    /// `"backoff"` unless told: `"blocking"` sleeps only on a channel made
    /// with `wakeups=True`.
    Consumer, shmbus::Consumer, "consumer", try_read, read, WaitStrategy::BACKOFF, {}
);

reader_class!(
    /// A work queue's consumer: takes records, each to one consumer, and
    /// acknowledges them (`ack`); a record given back or held by a
    /// consumer that dies goes to another, flagged `redelivered`.
    QueueConsumer, shmbus::QueueConsumer, "queue consumer", try_take, take, WaitStrategy::BLOCKING, {
        /// Records this consumer has acknowledged.
        #[getter]
        fn acked(&self) -> PyResult<u64> {
            Ok(self.state()?.inner.handle()?.acked())
        }
    }
);
