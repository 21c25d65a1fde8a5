//! Claims and records as Python objects: a claimed slot to write in place
//! and a borrowed record to read in place, both exported through the
//! buffer protocol (`memoryview(claim)`, `claim.view`), with no copy.
//!
//! The bytes are the ring's (or the handle's own buffer): valid only until
//! the claim is committed or aborted, or the record released. So the
//! object counts the buffers it has exported and ends the lease only when
//! none is left: ending it first releases the memoryview it handed out
//! itself (`view`, and what `with` gave), after which touching that view
//! raises `ValueError: operation forbidden on released memoryview object`;
//! any other export still alive (a slice of the view, a `memoryview(rec)`
//! of the caller's, a NumPy array over it) makes the end raise
//! `BufferError` and keeps the lease, so no Python object ever points at
//! bytes the ring has taken back.
//!
//! A handle lends one lease at a time, so it keeps the Python object of
//! its last one and lends it again when nothing else refers to it any more
//! (its reference count is the handle's alone): a polling loop makes no
//! new `Claim` or `Record` per record, and an ended object that Python
//! still holds never comes back to life.

use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_void};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyWeakrefReference};

use crate::lender::{Confined, RecordMeta};

/// How a lease ends: a function of the handle that lent it (the
/// publisher, producer or queue producer of a claim; the subscriber,
/// consumer or queue consumer of a record), given that handle, whether to
/// commit (with which record type) or acknowledge, and the Python object
/// of the lease when it may be lent again (`None` when it is being
/// dropped). It returns the committed record's sequence, where the ring
/// numbers records.
pub type EndLease<A, L> =
    for<'py> fn(&Bound<'py, PyAny>, A, Option<&Bound<'py, L>>) -> PyResult<Option<u64>>;

/// The handle that lent a lease, held while the lease is out (so the
/// handle outlives it) and dropped when it ends (so that a handle keeping
/// its spare lease object makes no reference cycle).
struct Lent<A, L> {
    handle: Py<PyAny>,
    end: EndLease<A, L>,
}

impl<A, L> Lent<A, L> {
    fn end(self, py: Python<'_>, how: A, reusable: Option<&Bound<'_, L>>) -> PyResult<Option<u64>> {
        (self.end)(self.handle.bind(py), how, reusable)
    }
}

/// The spare lease object a handle keeps, if nothing but the handle
/// refers to it any more: then it can be lent again instead of a new
/// Python object being made for every claim or record.
pub fn reusable<T: pyo3::PyClass>(py: Python<'_>, spare: &mut Option<Py<T>>) -> Option<Py<T>> {
    spare.take().filter(|object| object.get_refcnt(py) == 1)
}

/// The memoryview a lease has handed out, if any.
enum HandedOut {
    Nothing,
    /// Through `view`: held weakly, since it refers back to the lease
    /// (the buffer's owner) and a strong reference would make a cycle that
    /// kept an abandoned lease alive.
    Weak(Py<PyWeakrefReference>),
    /// Through `__enter__`: held strongly, since `__exit__` ends the lease
    /// and so breaks the cycle at the end of the `with` block (a `with`
    /// statement always calls it, even when its block raises or its
    /// generator is closed; only `__enter__` called by hand and never
    /// followed by `__exit__` would keep the lease out).
    Entered(Py<PyMemoryView>),
}

/// The leased bytes and the buffers exported over them.
struct Span {
    /// Where the bytes are (set again each time the lease object is lent).
    ptr: Cell<*mut u8>,
    len: Cell<usize>,
    writable: bool,
    /// Until the lease ends.
    live: Cell<bool>,
    /// Buffers exported and not yet released (memoryviews, and whatever
    /// else asked for the buffer).
    exports: Cell<usize>,
    /// The memoryview handed out.
    view: RefCell<HandedOut>,
    /// What the object is called in messages.
    what: &'static str,
}

/// The format of one unsigned byte, for buffers that ask for a format.
const BYTE_FORMAT: &std::ffi::CStr = c"B";

impl Span {
    fn new(bytes: &mut [u8], writable: bool, what: &'static str) -> Span {
        Span {
            ptr: Cell::new(bytes.as_mut_ptr()),
            len: Cell::new(bytes.len()),
            writable,
            live: Cell::new(true),
            exports: Cell::new(0),
            view: RefCell::new(HandedOut::Nothing),
            what,
        }
    }

    /// Makes an ended span live again over `bytes`.
    fn relend(&self, bytes: &mut [u8]) {
        debug_assert!(!self.live.get() && self.exports.get() == 0);
        self.ptr.set(bytes.as_mut_ptr());
        self.len.set(bytes.len());
        self.live.set(true);
    }

    fn check_live(&self) -> PyResult<()> {
        if self.live.get() {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "{} was already ended",
                self.what
            )))
        }
    }

    /// The bytes, while the lease lives.
    fn bytes(&self) -> PyResult<&[u8]> {
        self.check_live()?;
        // SAFETY: while `live`, the lease that owns these bytes is stored in
        // the lender, which keeps them valid and unmoved (see module docs).
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.get(), self.len.get()) })
    }

    /// The memoryview handed out for `owner` (made on first use); `enter`
    /// holds it strongly from now on, until the lease ends.
    fn view<'py>(
        &self,
        owner: &Bound<'py, PyAny>,
        enter: bool,
    ) -> PyResult<Bound<'py, PyMemoryView>> {
        self.check_live()?;
        let py = owner.py();
        let mut slot = self.view.borrow_mut();
        let view = match &*slot {
            HandedOut::Entered(view) => return Ok(view.bind(py).clone()),
            HandedOut::Weak(weak) => weak.bind(py).upgrade_as::<PyMemoryView>()?,
            HandedOut::Nothing => None,
        };
        let view = match view {
            Some(view) => view,
            None => PyMemoryView::from(owner)?,
        };
        *slot = if enter {
            HandedOut::Entered(view.clone().unbind())
        } else {
            HandedOut::Weak(PyWeakrefReference::new(view.as_any())?.unbind())
        };
        Ok(view)
    }

    /// Releases the memoryview handed out and checks nothing else exports
    /// the bytes: after `Ok`, the lease may end.
    fn quiesce(&self, py: Python<'_>) -> PyResult<()> {
        self.check_live()?;
        let handed_out = std::mem::replace(&mut *self.view.borrow_mut(), HandedOut::Nothing);
        let view = match handed_out {
            HandedOut::Nothing => None,
            HandedOut::Weak(weak) => weak.bind(py).upgrade(),
            HandedOut::Entered(view) => Some(view.into_bound(py).into_any()),
        };
        if let Some(view) = view {
            // BufferError if the view itself exports (a NumPy array over it).
            view.call_method0(pyo3::intern!(py, "release"))?;
        }
        match self.exports.get() {
            0 => Ok(()),
            n => Err(PyBufferError::new_err(format!(
                "{} still has {n} exported buffer(s) (a slice of its view, a memoryview or \
                 array made over it): release them before the {}",
                self.what, self.what
            ))),
        }
    }

    /// Fills `view` for a buffer request.
    ///
    /// # Safety
    ///
    /// `view` is the `Py_buffer` CPython passes to `bf_getbuffer`, and
    /// `owner` the object whose buffer it asks for.
    unsafe fn export(
        &self,
        owner: Bound<'_, PyAny>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if !self.live.get() {
            return Err(PyBufferError::new_err(format!(
                "{} was already ended: its bytes are gone",
                self.what
            )));
        }
        if view.is_null() {
            return Err(PyBufferError::new_err("no Py_buffer to fill"));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE && !self.writable {
            return Err(PyBufferError::new_err(format!(
                "{} is read-only",
                self.what
            )));
        }
        // SAFETY: `view` is a valid, writable Py_buffer (CPython's own, per
        // the caller's contract); every field is set before CPython reads it.
        unsafe {
            (*view).obj = owner.into_ptr();
            (*view).buf = self.ptr.get().cast::<c_void>();
            (*view).len = self.len.get() as isize;
            (*view).readonly = c_int::from(!self.writable);
            (*view).itemsize = 1;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                BYTE_FORMAT.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                &mut (*view).len
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                &mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        self.exports.set(self.exports.get() + 1);
        Ok(())
    }

    fn unexport(&self) {
        self.exports.set(self.exports.get().saturating_sub(1));
    }
}

/// A sequence as Python shows it (`None` for a channel's records).
fn sequence_text(sequence: Option<u64>) -> String {
    sequence.map_or_else(|| "None".to_owned(), |s| s.to_string())
}

/// A slot claimed in a ring, to write in place, then commit (or abort).
///
/// `with pub.claim(n) as buf:` gives a writable memoryview of the slot and
/// commits at the end of the block, or aborts if the block raises. Outside
/// `with`: write through `claim.view` (or `memoryview(claim)`), then
/// `claim.commit()` or `claim.abort()`. A claim dropped without either is
/// aborted. After the end the view is released, and the publisher may
/// claim again.
#[pyclass(frozen, module = "shmbus._shmbus")]
pub struct Claim(Confined<ClaimState>);

/// What a claim holds, on the thread that made it.
struct ClaimState {
    /// The writer that lent it, while open.
    owner: RefCell<Option<Lent<Option<u16>, Claim>>>,
    span: Span,
    record_type: Cell<u16>,
    sequence: Cell<Option<u64>>,
}

impl Claim {
    /// Its state, on the thread that made it.
    fn state(&self) -> PyResult<&ClaimState> {
        self.0.get()
    }

    /// A claim of `bytes`, lent by `handle` (ended by `end`): `spare` made
    /// live again if nothing else refers to it, else a new object.
    pub fn lend(
        handle: &Bound<'_, PyAny>,
        end: EndLease<Option<u16>, Claim>,
        spare: &mut Option<Py<Claim>>,
        bytes: &mut [u8],
        record_type: u16,
        sequence: Option<u64>,
    ) -> PyResult<Py<Claim>> {
        let py = handle.py();
        let lent = Lent {
            handle: handle.clone().unbind(),
            end,
        };
        if let Some(claim) = reusable(py, spare) {
            {
                let this = claim.get().state()?;
                this.span.relend(bytes);
                this.record_type.set(record_type);
                this.sequence.set(sequence);
                *this.owner.borrow_mut() = Some(lent);
            }
            return Ok(claim);
        }
        let claim = ClaimState {
            owner: RefCell::new(Some(lent)),
            span: Span::new(bytes, true, "claim"),
            record_type: Cell::new(record_type),
            sequence: Cell::new(sequence),
        };
        Py::new(py, Claim(Confined::new(claim, "claim")))
    }

    fn end(slf: &Bound<'_, Self>, commit: bool) -> PyResult<Option<u64>> {
        let py = slf.py();
        let this = slf.get().state()?;
        this.span.quiesce(py)?;
        this.span.live.set(false);
        let record_type = commit.then(|| this.record_type.get());
        let lent = this.owner.borrow_mut().take();
        match lent {
            Some(lent) => lent.end(py, record_type, Some(slf)),
            None => Err(PyValueError::new_err("claim was already ended")),
        }
    }
}

#[pymethods]
impl Claim {
    /// The record type the commit stores (settable).
    #[getter]
    fn get_record_type(&self) -> PyResult<u16> {
        Ok(self.state()?.record_type.get())
    }

    #[setter]
    fn set_record_type(&self, record_type: u16) -> PyResult<()> {
        self.state()?.record_type.set(record_type);
        Ok(())
    }

    /// The record's sequence (topics and work queues; `None` for a channel).
    #[getter]
    fn sequence(&self) -> PyResult<Option<u64>> {
        Ok(self.state()?.sequence.get())
    }

    /// Whether the claim is still open (neither committed nor aborted).
    #[getter]
    fn live(&self) -> PyResult<bool> {
        Ok(self.state()?.span.live.get())
    }

    /// A writable memoryview of the slot, released when the claim ends.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.get().state()?.span.view(slf.as_any(), false)
    }

    /// Publishes the record; returns its sequence (`None` for a channel).
    ///
    /// Raises `Reclaimed` if the claim stayed open past the ring's
    /// `reclaim_after` and a reader reclaimed it (nothing was delivered),
    /// `BufferError` while buffers other than `view` are exported.
    fn commit(slf: &Bound<'_, Self>) -> PyResult<Option<u64>> {
        Self::end(slf, true)
    }

    /// Gives the slot up: nothing is published (a topic passes over it).
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::end(slf, false).map(drop)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.state()?.span.len.get())
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.get().state()?.span.view(slf.as_any(), true)
    }

    /// Commits on a normal exit, aborts when the block raised.
    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        Self::end(slf, exc_type.is_none())?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get().state()?;
        // SAFETY: the view is CPython's, as `__getbuffer__` receives it, for
        // this object.
        unsafe { this.span.export(slf.clone().into_any(), view, flags) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        // Another thread cannot reach the state: its export stays counted,
        // and the lease cannot end (refused, never unsound).
        if let Ok(state) = self.state() {
            state.span.unexport();
        }
    }

    fn __repr__(&self) -> PyResult<String> {
        let this = self.state()?;
        Ok(format!(
            "<shmbus.Claim {} bytes, record_type {}, sequence {}, {}>",
            this.span.len.get(),
            this.record_type.get(),
            sequence_text(this.sequence.get()),
            if this.span.live.get() {
                "open"
            } else {
                "ended"
            }
        ))
    }
}

impl Drop for ClaimState {
    fn drop(&mut self) {
        if self.span.live.get() {
            // Dropped open: aborted, as in Rust. No export can be alive
            // (each holds a reference to this object).
            self.span.live.set(false);
            end_dropped(self.owner.get_mut().take(), None);
        }
    }
}

/// A record borrowed from a ring, read in place until released.
///
/// `with sub.read() as view:` gives a read-only memoryview of the record
/// and releases it at the end of the block (a work queue's record is
/// acknowledged, or given back if the block raised). Outside `with`: read
/// `rec.view` (or `memoryview(rec)`, `bytes(rec)`), then `rec.release()`;
/// a record dropped unreleased is released (a work queue's given back).
#[pyclass(frozen, module = "shmbus._shmbus")]
pub struct Record(Confined<RecordState>);

/// What a record holds, on the thread that made it.
struct RecordState {
    /// The reader that lent it, while held.
    owner: RefCell<Option<Lent<bool, Record>>>,
    span: Span,
    meta: Cell<RecordMeta>,
}

impl Record {
    /// Its state, on the thread that made it.
    fn state(&self) -> PyResult<&RecordState> {
        self.0.get()
    }

    /// A record of `bytes` with `meta`, lent by `handle` (ended by `end`):
    /// `spare` made live again if nothing else refers to it, else a new
    /// object.
    pub fn lend(
        handle: &Bound<'_, PyAny>,
        end: EndLease<bool, Record>,
        spare: &mut Option<Py<Record>>,
        bytes: &[u8],
        meta: RecordMeta,
    ) -> PyResult<Py<Record>> {
        let py = handle.py();
        // Read-only: the pointer is never written through (`writable` false
        // refuses writable buffer requests).
        let ptr = bytes.as_ptr().cast_mut();
        // SAFETY: a slice of the same bytes, only to record where they are;
        // nothing writes through it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, bytes.len()) };
        let lent = Lent {
            handle: handle.clone().unbind(),
            end,
        };
        if let Some(record) = reusable(py, spare) {
            {
                let this = record.get().state()?;
                this.span.relend(bytes);
                this.meta.set(meta);
                *this.owner.borrow_mut() = Some(lent);
            }
            return Ok(record);
        }
        let record = RecordState {
            owner: RefCell::new(Some(lent)),
            span: Span::new(bytes, false, "record"),
            meta: Cell::new(meta),
        };
        Py::new(py, Record(Confined::new(record, "record")))
    }

    /// The bytes, while the record is held.
    pub fn bytes(&self) -> PyResult<&[u8]> {
        self.state()?.span.bytes()
    }

    fn end(slf: &Bound<'_, Self>, ack: bool) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get().state()?;
        this.span.quiesce(py)?;
        this.span.live.set(false);
        let lent = this.owner.borrow_mut().take();
        match lent {
            Some(lent) => lent.end(py, ack, Some(slf)).map(drop),
            None => Err(PyValueError::new_err("record was already released")),
        }
    }
}

#[pymethods]
impl Record {
    /// The record type.
    #[getter]
    fn record_type(&self) -> PyResult<u16> {
        Ok(self.state()?.meta.get().record_type)
    }

    /// The record's sequence (topics and work queues; `None` for a channel).
    #[getter]
    fn sequence(&self) -> PyResult<Option<u64>> {
        Ok(self.state()?.meta.get().sequence)
    }

    /// Work queues: a consumer took it before and gave it back or died.
    #[getter]
    fn redelivered(&self) -> PyResult<bool> {
        Ok(self.state()?.meta.get().redelivered)
    }

    /// Whether the record is still held (not released).
    #[getter]
    fn live(&self) -> PyResult<bool> {
        Ok(self.state()?.span.live.get())
    }

    /// A read-only memoryview of the record, released with it.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.get().state()?.span.view(slf.as_any(), false)
    }

    /// A copy of the bytes.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.state()?.span.bytes()?))
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    /// Parses the record as a Protocol V2 message (a copy of what it
    /// needs: the result outlives the record).
    #[pyo3(signature = (*, verify = "zero", sizes = "registry"))]
    fn parse(&self, py: Python<'_>, verify: &str, sizes: &str) -> PyResult<crate::v2::Message> {
        crate::v2::parse_message(py, self.state()?.span.bytes()?, verify, sizes)
    }

    /// Ends the borrow: the reader moves on (a work queue's record is
    /// given back, as when a Rust `Taken` is dropped: use `ack`).
    fn release(slf: &Bound<'_, Self>) -> PyResult<()> {
        if !slf.get().state()?.span.live.get() {
            return Ok(());
        }
        Self::end(slf, false)
    }

    /// Work queues: acknowledges the record (handled: its slot is free).
    /// Any other record: as `release`.
    fn ack(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::end(slf, true)
    }

    /// Work queues: gives the record back, for this consumer or another
    /// (flagged redelivered). Any other record: as `release`.
    fn give_back(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::end(slf, false)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.state()?.span.len.get())
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.get().state()?.span.view(slf.as_any(), true)
    }

    /// Releases (acknowledges a work queue's record) on a normal exit;
    /// when the block raised, a work queue's record is given back.
    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        Self::end(slf, exc_type.is_none())?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get().state()?;
        // SAFETY: the view is CPython's, as `__getbuffer__` receives it, for
        // this object.
        unsafe { this.span.export(slf.clone().into_any(), view, flags) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        // Another thread cannot reach the state: its export stays counted,
        // and the lease cannot end (refused, never unsound).
        if let Ok(state) = self.state() {
            state.span.unexport();
        }
    }

    fn __repr__(&self) -> PyResult<String> {
        let this = self.state()?;
        let meta = this.meta.get();
        Ok(format!(
            "<shmbus.Record {} bytes, record_type {}, sequence {}{}, {}>",
            this.span.len.get(),
            meta.record_type,
            sequence_text(meta.sequence),
            if meta.redelivered {
                ", redelivered"
            } else {
                ""
            },
            if this.span.live.get() {
                "held"
            } else {
                "released"
            }
        ))
    }
}

impl Drop for RecordState {
    fn drop(&mut self) {
        if self.span.live.get() {
            // Dropped held: released (a work queue's given back), as in
            // Rust. No export can be alive (each holds a reference).
            self.span.live.set(false);
            end_dropped(self.owner.get_mut().take(), false);
        }
    }
}

/// Ends the lease of an object being dropped open (not to be lent again);
/// an error is reported as unraisable.
fn end_dropped<A, L>(lent: Option<Lent<A, L>>, how: A) {
    let Some(lent) = lent else { return };
    Python::with_gil(|py| {
        if let Err(e) = lent.end(py, how, None) {
            e.write_unraisable(py, None);
        }
    });
}
