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

use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_void};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyWeakrefReference};

use crate::lender::RecordMeta;

/// Ends a claim: the publisher, producer or queue producer that lent it.
pub trait ClaimOwner {
    /// Commits the claim with `record_type` (`Some`) or aborts it
    /// (`None`); returns the committed record's sequence, where the ring
    /// numbers records.
    fn end_claim(&self, py: Python<'_>, commit: Option<u16>) -> PyResult<Option<u64>>;
}

/// Ends a record: the subscriber, consumer or queue consumer that lent it.
pub trait RecordOwner {
    /// Releases the record; a work queue's is acknowledged (`ack`) or
    /// given back.
    fn end_record(&self, py: Python<'_>, ack: bool) -> PyResult<()>;
}

/// The leased bytes and the buffers exported over them.
struct Span {
    ptr: *mut u8,
    len: usize,
    writable: bool,
    /// Until the lease ends.
    live: Cell<bool>,
    /// Buffers exported and not yet released (memoryviews, and whatever
    /// else asked for the buffer).
    exports: Cell<usize>,
    /// The memoryview `view` handed out (weakly: it refers back to us).
    view: RefCell<Option<Py<PyWeakrefReference>>>,
    /// What the object is called in messages.
    what: &'static str,
}

/// The format of one unsigned byte, for buffers that ask for a format.
const BYTE_FORMAT: &std::ffi::CStr = c"B";

impl Span {
    fn new(bytes: &mut [u8], writable: bool, what: &'static str) -> Span {
        Span {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            writable,
            live: Cell::new(true),
            exports: Cell::new(0),
            view: RefCell::new(None),
            what,
        }
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
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// The memoryview handed out for `owner` (made on first use).
    fn view<'py>(&self, owner: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyMemoryView>> {
        self.check_live()?;
        let py = owner.py();
        if let Some(weak) = self.view.borrow().as_ref() {
            if let Some(view) = weak.bind(py).upgrade_as::<PyMemoryView>()? {
                return Ok(view);
            }
        }
        let view = PyMemoryView::from(owner)?;
        let weak = PyWeakrefReference::new(view.as_any())?;
        *self.view.borrow_mut() = Some(weak.unbind());
        Ok(view)
    }

    /// Releases the memoryview handed out and checks nothing else exports
    /// the bytes: after `Ok`, the lease may end.
    fn quiesce(&self, py: Python<'_>) -> PyResult<()> {
        self.check_live()?;
        let weak = self.view.borrow_mut().take();
        if let Some(view) = weak.and_then(|w| w.bind(py).upgrade()) {
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
            (*view).buf = self.ptr.cast::<c_void>();
            (*view).len = self.len as isize;
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
#[pyclass(frozen, unsendable, module = "shmbus._shmbus")]
pub struct Claim {
    owner: Box<dyn ClaimOwner>,
    span: Span,
    record_type: Cell<u16>,
    sequence: Option<u64>,
}

impl Claim {
    /// A claim of `bytes`, which `owner` lent.
    pub fn new(
        owner: Box<dyn ClaimOwner>,
        bytes: &mut [u8],
        record_type: u16,
        sequence: Option<u64>,
    ) -> Claim {
        Claim {
            owner,
            span: Span::new(bytes, true, "claim"),
            record_type: Cell::new(record_type),
            sequence,
        }
    }

    fn end(&self, py: Python<'_>, commit: bool) -> PyResult<Option<u64>> {
        self.span.quiesce(py)?;
        self.span.live.set(false);
        self.owner
            .end_claim(py, commit.then(|| self.record_type.get()))
    }
}

#[pymethods]
impl Claim {
    /// The record type the commit stores (settable).
    #[getter]
    fn get_record_type(&self) -> u16 {
        self.record_type.get()
    }

    #[setter]
    fn set_record_type(&self, record_type: u16) {
        self.record_type.set(record_type);
    }

    /// The record's sequence (topics and work queues; `None` for a channel).
    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Whether the claim is still open (neither committed nor aborted).
    #[getter]
    fn live(&self) -> bool {
        self.span.live.get()
    }

    /// A writable memoryview of the slot, released when the claim ends.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.borrow().span.view(slf.as_any())
    }

    /// Publishes the record; returns its sequence (`None` for a channel).
    ///
    /// Raises `Reclaimed` if the claim stayed open past the ring's
    /// `reclaim_after` and a reader reclaimed it (nothing was delivered),
    /// `BufferError` while buffers other than `view` are exported.
    fn commit(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.end(py, true)
    }

    /// Gives the slot up: nothing is published (a topic passes over it).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, false).map(drop)
    }

    fn __len__(&self) -> usize {
        self.span.len
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        Self::view(slf)
    }

    /// Commits on a normal exit, aborts when the block raised.
    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.end(py, exc_type.is_none())?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.borrow();
        // SAFETY: the view is CPython's, as `__getbuffer__` receives it, for
        // this object.
        unsafe { this.span.export(slf.clone().into_any(), view, flags) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.span.unexport();
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmbus.Claim {} bytes, record_type {}, sequence {}, {}>",
            self.span.len,
            self.record_type.get(),
            sequence_text(self.sequence),
            if self.span.live.get() {
                "open"
            } else {
                "ended"
            }
        )
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.span.live.get() {
            // Dropped open: aborted, as in Rust. No export can be alive
            // (each holds a reference to this object).
            self.span.live.set(false);
            Python::with_gil(|py| {
                if let Err(e) = self.owner.end_claim(py, None) {
                    e.write_unraisable(py, None);
                }
            });
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
#[pyclass(frozen, unsendable, module = "shmbus._shmbus")]
pub struct Record {
    owner: Box<dyn RecordOwner>,
    span: Span,
    meta: RecordMeta,
}

impl Record {
    /// A record of `bytes` with `meta`, which `owner` lent.
    pub fn new(owner: Box<dyn RecordOwner>, bytes: &[u8], meta: RecordMeta) -> Record {
        // Read-only: the pointer is never written through (`writable` false
        // refuses writable buffer requests).
        let ptr = bytes.as_ptr().cast_mut();
        // SAFETY: a slice of the same bytes, only to record where they are;
        // nothing writes through it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, bytes.len()) };
        Record {
            owner,
            span: Span::new(bytes, false, "record"),
            meta,
        }
    }

    /// The bytes, while the record is held.
    pub fn bytes(&self) -> PyResult<&[u8]> {
        self.span.bytes()
    }

    fn end(&self, py: Python<'_>, ack: bool) -> PyResult<()> {
        self.span.quiesce(py)?;
        self.span.live.set(false);
        self.owner.end_record(py, ack)
    }
}

#[pymethods]
impl Record {
    /// The record type.
    #[getter]
    fn record_type(&self) -> u16 {
        self.meta.record_type
    }

    /// The record's sequence (topics and work queues; `None` for a channel).
    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.meta.sequence
    }

    /// Work queues: a consumer took it before and gave it back or died.
    #[getter]
    fn redelivered(&self) -> bool {
        self.meta.redelivered
    }

    /// Whether the record is still held (not released).
    #[getter]
    fn live(&self) -> bool {
        self.span.live.get()
    }

    /// A read-only memoryview of the record, released with it.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        slf.borrow().span.view(slf.as_any())
    }

    /// A copy of the bytes.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.span.bytes()?))
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    /// Parses the record as a Protocol V2 message (a copy of what it
    /// needs: the result outlives the record).
    #[pyo3(signature = (*, verify = "zero", sizes = "registry"))]
    fn parse(&self, py: Python<'_>, verify: &str, sizes: &str) -> PyResult<crate::v2::Message> {
        crate::v2::parse_message(py, self.span.bytes()?, verify, sizes)
    }

    /// Ends the borrow: the reader moves on (a work queue's record is
    /// given back, as when a Rust `Taken` is dropped: use `ack`).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        if !self.span.live.get() {
            return Ok(());
        }
        self.end(py, false)
    }

    /// Work queues: acknowledges the record (handled: its slot is free).
    /// Any other record: as `release`.
    fn ack(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, true)
    }

    /// Work queues: gives the record back, for this consumer or another
    /// (flagged redelivered). Any other record: as `release`.
    fn give_back(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, false)
    }

    fn __len__(&self) -> usize {
        self.span.len
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        Self::view(slf)
    }

    /// Releases (acknowledges a work queue's record) on a normal exit;
    /// when the block raised, a work queue's record is given back.
    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.end(py, exc_type.is_none())?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.borrow();
        // SAFETY: the view is CPython's, as `__getbuffer__` receives it, for
        // this object.
        unsafe { this.span.export(slf.clone().into_any(), view, flags) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.span.unexport();
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmbus.Record {} bytes, record_type {}, sequence {}{}, {}>",
            self.span.len,
            self.meta.record_type,
            sequence_text(self.meta.sequence),
            if self.meta.redelivered {
                ", redelivered"
            } else {
                ""
            },
            if self.span.live.get() {
                "held"
            } else {
                "released"
            }
        )
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if self.span.live.get() {
            // Dropped held: released (a work queue's given back), as in
            // Rust. No export can be alive (each holds a reference).
            self.span.live.set(false);
            Python::with_gil(|py| {
                if let Err(e) = self.owner.end_record(py, false) {
                    e.write_unraisable(py, None);
                }
            });
        }
    }
}
