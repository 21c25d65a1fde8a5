//! What the C handles are made of: an owner (a publisher, a subscriber,
//! ...) on the heap and the one claim or record it has lent out, kept side
//! by side. In Rust the claim borrows its owner for a lifetime; in C both
//! live in one handle, and the rules the borrow checker enforced become
//! run-time checks that return `SHMBUS_STATUS_BUSY` and
//! `SHMBUS_STATUS_NOT_HELD`.
//!
//! Also: the checks every argument goes through (NULL pointers, C strings,
//! wait strategies).

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;
use std::time::Duration;

use shmbus::WaitStrategy;

use crate::error::{shmbus_status, Failure};

/// An owner whose borrows a handle keeps: `Loan<'a>` is what it lends for
/// `'a` (a claim, a record, a taken record).
pub(crate) trait Lends {
    /// The borrow.
    type Loan<'a>
    where
        Self: 'a;

    /// Whether [`Lending::lend`] describes a loan before it moves it into
    /// the handle, rather than after. Before is faster where the
    /// description is read inline from the loan's fields (a channel's
    /// claims and records: nothing is read back from the handle right
    /// after it was written, where a load overlapping the stores just made,
    /// in other widths, waits for them to reach the cache); after is
    /// faster where it calls out-of-line code that takes the loan by
    /// address (a topic's), which would otherwise read a stack copy just
    /// written. Measured with `perf` on the `c_api` bench's loops.
    ///
    /// Either way the description must not point into the loan value
    /// itself, which moves into the handle: it points into the ring.
    const DESCRIBE_BEFORE_KEEPING: bool = false;
}

/// An owner and the loan it has out, if any.
///
/// The owner lives in a heap allocation that only this struct frees, after
/// the loan is dropped; while a loan is out, the owner is reached only
/// through it.
pub(crate) struct Lending<O: Lends + 'static> {
    /// Borrows `*owner`; always dropped before it.
    loan: Option<O::Loan<'static>>,
    /// From `Box::into_raw`, freed in `Drop`.
    owner: NonNull<O>,
}

impl<O: Lends + 'static> Lending<O> {
    /// Moves `owner` to the heap, with nothing lent.
    pub(crate) fn new(owner: O) -> Self {
        Lending {
            loan: None,
            owner: NonNull::from(Box::leak(Box::new(owner))),
        }
    }

    /// The owner, while nothing is lent.
    ///
    /// # Errors
    ///
    /// `Busy` while a loan is out.
    #[inline(always)]
    pub(crate) fn owner(&mut self) -> Result<&mut O, Failure> {
        if self.loan.is_some() {
            return Err(Failure::busy());
        }
        // SAFETY: `owner` is a live allocation only this struct frees, no
        // loan borrows it, and `&mut self` makes this the only reference.
        Ok(unsafe { self.owner.as_mut() })
    }

    /// Lends what `make` returns from the owner, keeps it, and returns
    /// what `describe` makes of it (where its bytes are, ...), before or
    /// after keeping it as [`Lends::DESCRIBE_BEFORE_KEEPING`] says.
    ///
    /// # Errors
    ///
    /// `Busy` while a loan is out, or what `make` returns.
    ///
    /// # Safety
    ///
    /// `make` must not keep the owner reference it is given anywhere but in
    /// the loan it returns.
    #[inline(always)]
    pub(crate) unsafe fn lend<E: Into<Failure>, V>(
        &mut self,
        make: impl FnOnce(&'static mut O) -> Result<O::Loan<'static>, E>,
        describe: impl FnOnce(&mut O::Loan<'static>) -> V,
    ) -> Result<V, Failure> {
        if self.loan.is_some() {
            return Err(Failure::busy());
        }
        // SAFETY: nothing else borrows the owner (no loan, `&mut self`);
        // the reference ends up only in `self.loan` (the caller's promise),
        // which is dropped before the owner is freed, and the owner is not
        // reached otherwise while the loan is out (`owner` checks).
        let owner: &'static mut O = unsafe { &mut *self.owner.as_ptr() };
        let mut loan = make(owner).map_err(Into::into)?;
        // The slot is still empty: `make` reached only the owner, never
        // `self`. Writing without dropping the old value spares the dead
        // drop of a loan the compiler cannot see is absent.
        let slot: *mut Option<O::Loan<'static>> = &mut self.loan;
        if O::DESCRIBE_BEFORE_KEEPING {
            let description = describe(&mut loan);
            // SAFETY: `slot` comes from `&mut self.loan`, so it is valid
            // and aligned for a write; what it held is `None`, so nothing
            // is lost by not dropping it.
            unsafe { slot.write(Some(loan)) };
            Ok(description)
        } else {
            // SAFETY: as above.
            unsafe { slot.write(Some(loan)) };
            // SAFETY: `slot` is valid (above) and holds the `Some` just
            // written.
            Ok(describe(unsafe { (*slot).as_mut().unwrap_unchecked() }))
        }
    }

    /// Takes the loan back to finish it (commit, ack, ...): the owner is
    /// free again once it is dropped.
    ///
    /// # Errors
    ///
    /// `NotHeld` if no loan is out.
    #[inline(always)]
    pub(crate) fn take_loan(&mut self) -> Result<O::Loan<'static>, Failure> {
        self.loan.take().ok_or_else(Failure::not_held)
    }
}

impl<O: Lends + 'static> Drop for Lending<O> {
    fn drop(&mut self) {
        // The loan first: it may still write through its borrow of the
        // owner (an aborted claim publishes a skip, a record moves the
        // cursor on).
        self.loan = None;
        // SAFETY: `owner` came from `Box::leak` in `new`, is freed only
        // here, and nothing borrows it any more.
        drop(unsafe { Box::from_raw(self.owner.as_ptr()) });
    }
}

/// The handle behind a pointer C passed in.
///
/// # Errors
///
/// `NullArgument` if `ptr` is NULL.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` that nothing else uses during the
/// returned borrow.
#[inline(always)]
pub(crate) unsafe fn handle<'a, T>(ptr: *mut T, what: &'static CStr) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's promise.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// As [`handle`], shared.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` that nothing writes during the
/// returned borrow.
pub(crate) unsafe fn handle_ref<'a, T>(
    ptr: *const T,
    what: &'static CStr,
) -> Result<&'a T, Failure> {
    // SAFETY: the caller's promise.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// Writes `value` where an output pointer points.
///
/// # Safety
///
/// `out` is NULL or valid for a write of a `T`.
#[inline(always)]
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &'static CStr) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and valid for writes by the caller's promise.
    unsafe { out.write(value) };
    Ok(())
}

/// Boxes a new handle and hands it to C through `out`.
///
/// # Safety
///
/// As [`put`].
pub(crate) unsafe fn hand_out<T>(out: *mut *mut T, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(c"the output handle pointer is NULL"));
    }
    // SAFETY: not NULL, and valid for writes by the caller's promise.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
    Ok(())
}

/// Frees a handle made by [`hand_out`]; NULL is a no-op.
///
/// # Safety
///
/// `ptr` is NULL or came from [`hand_out`] and is not used again.
pub(crate) unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller's promise: it came from `Box::into_raw`.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// A name passed from C: NUL-terminated UTF-8.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that lives through
/// the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(c"a name argument is NULL"));
    }
    // SAFETY: not NULL, NUL-terminated by the caller's promise.
    let raw = unsafe { CStr::from_ptr(ptr) };
    raw.to_str().map_err(|_| {
        Failure::fixed(
            shmbus_status::InvalidArgument,
            c"a name argument is not UTF-8",
        )
    })
}

/// Bytes passed from C as a pointer and a length; NULL is allowed for an
/// empty slice.
///
/// # Safety
///
/// `len` is 0 or `ptr` points to `len` readable bytes that live through
/// the call.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(c"a data pointer is NULL"));
    }
    // SAFETY: not NULL, `len` readable bytes by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A buffer passed from C to copy into; NULL is allowed when `len` is 0.
///
/// # Safety
///
/// `len` is 0 or `ptr` points to `len` writable bytes that live through the
/// call and nothing else reads or writes meanwhile.
pub(crate) unsafe fn buffer<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(c"a buffer pointer is NULL"));
    }
    // SAFETY: not NULL, `len` writable bytes by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// How a blocking call waits: `shmbus_wait`'s `kind` values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_wait_kind {
    /// Spin with the CPU's pause hint (pin the thread first).
    BusySpin = 0,
    /// `sched_yield` every round.
    Yield = 1,
    /// Spin `spins` rounds, yield `yields` rounds, then sleep, doubling from
    /// 1 µs up to `max_sleep_ns`.
    Backoff = 2,
    /// Spin `spins` rounds, yield `yields` rounds, then sleep on the ring's
    /// futex until a writer wakes it. Only readers of topics and queues, and
    /// consumers of channels made with `wakeups`, can be woken; elsewhere the
    /// call returns `SHMBUS_STATUS_CANNOT_SLEEP`.
    Blocking = 3,
}

/// A wait strategy (Rust's `WaitStrategy`). `kind` is a `shmbus_wait_kind`;
/// `spins` and `yields` apply to `BACKOFF` and `BLOCKING`, `max_sleep_ns`
/// to `BACKOFF`. `shmbus_wait_default()` and friends give ready values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct shmbus_wait {
    /// A `shmbus_wait_kind` value.
    pub kind: u32,
    /// Rounds of busy-spinning first.
    pub spins: u32,
    /// Then rounds of yielding.
    pub yields: u32,
    /// `BACKOFF`: the longest single sleep, in nanoseconds.
    pub max_sleep_ns: u64,
}

impl shmbus_wait {
    /// The same strategy as a C value.
    pub(crate) fn from_rust(wait: WaitStrategy) -> shmbus_wait {
        let (kind, spins, yields, max_sleep_ns) = match wait {
            WaitStrategy::BusySpin => (shmbus_wait_kind::BusySpin, 0, 0, 0),
            WaitStrategy::Yield => (shmbus_wait_kind::Yield, 0, 0, 0),
            WaitStrategy::Backoff {
                spins,
                yields,
                max_sleep,
            } => (
                shmbus_wait_kind::Backoff,
                spins,
                yields,
                u64::try_from(max_sleep.as_nanos()).unwrap_or(u64::MAX),
            ),
            WaitStrategy::Blocking { spins, yields } => {
                (shmbus_wait_kind::Blocking, spins, yields, 0)
            }
        };
        shmbus_wait {
            kind: kind as u32,
            spins,
            yields,
            max_sleep_ns,
        }
    }

    /// The Rust strategy.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for an unknown `kind`.
    pub(crate) fn to_rust(self) -> Result<WaitStrategy, Failure> {
        Ok(match self.kind {
            k if k == shmbus_wait_kind::BusySpin as u32 => WaitStrategy::BusySpin,
            k if k == shmbus_wait_kind::Yield as u32 => WaitStrategy::Yield,
            k if k == shmbus_wait_kind::Backoff as u32 => WaitStrategy::Backoff {
                spins: self.spins,
                yields: self.yields,
                max_sleep: Duration::from_nanos(self.max_sleep_ns),
            },
            k if k == shmbus_wait_kind::Blocking as u32 => WaitStrategy::Blocking {
                spins: self.spins,
                yields: self.yields,
            },
            _ => {
                return Err(Failure::fixed(
                    shmbus_status::InvalidArgument,
                    c"unknown shmbus_wait kind",
                ))
            }
        })
    }
}

/// How long a call may wait: not at all (`try_`), or with a strategy up to
/// a timeout (`_blocking` is a timeout that never ends, as in Rust).
#[derive(Clone, Copy)]
pub(crate) enum Patience {
    /// The `try_` form.
    Try,
    /// The `_blocking` and `_timeout` forms.
    Wait(WaitStrategy, Duration),
}

impl Patience {
    /// The `_blocking` form's patience.
    pub(crate) fn blocking(wait: shmbus_wait) -> Result<Patience, Failure> {
        Ok(Patience::Wait(wait.to_rust()?, Duration::MAX))
    }

    /// The `_timeout` form's patience.
    pub(crate) fn timeout(wait: shmbus_wait, timeout_ns: u64) -> Result<Patience, Failure> {
        Ok(Patience::Wait(
            wait.to_rust()?,
            Duration::from_nanos(timeout_ns),
        ))
    }
}

/// The default strategy of blocking calls on threads that are not pinned:
/// spin about a microsecond, yield a while, then sleep at most 1 ms
/// (Rust's `WaitStrategy::BACKOFF`). Works for every call.
#[no_mangle]
pub extern "C" fn shmbus_wait_default() -> shmbus_wait {
    shmbus_wait::from_rust(WaitStrategy::BACKOFF)
}

/// Spin briefly, yield 8 rounds, then sleep on the ring's futex (Rust's
/// `WaitStrategy::BLOCKING`): for readers of topics and queues, and
/// consumers of channels made with wake-ups.
#[no_mangle]
pub extern "C" fn shmbus_wait_blocking() -> shmbus_wait {
    shmbus_wait::from_rust(WaitStrategy::BLOCKING)
}

/// Busy-spin (Rust's `WaitStrategy::BusySpin`): for pinned threads on
/// dedicated cores.
#[no_mangle]
pub extern "C" fn shmbus_wait_busy_spin() -> shmbus_wait {
    shmbus_wait::from_rust(WaitStrategy::BusySpin)
}

/// Yield every round (Rust's `WaitStrategy::Yield`).
#[no_mangle]
pub extern "C" fn shmbus_wait_yield() -> shmbus_wait {
    shmbus_wait::from_rust(WaitStrategy::Yield)
}
