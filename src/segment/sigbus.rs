//! Surviving truncation: a SIGBUS handler for shmbus mappings.
//!
//! When any process shortens a segment file (`ftruncate`, `truncate -s`),
//! the kernel unmaps the lost pages from every mapping of it, and the next
//! access to one of them raises SIGBUS, whose default action kills the
//! process. A peer must not be able to kill us that way, so, once per
//! process and lazily when the first segment is mapped, shmbus installs a
//! SIGBUS handler (`SA_SIGINFO | SA_ONSTACK`):
//!
//! * for a fault address inside a registered shmbus mapping, it maps
//!   anonymous zero pages over the whole mapping (`MAP_FIXED | MAP_PRIVATE |
//!   MAP_ANONYMOUS`, same protection), marks the mapping truncated here, and
//!   returns: the faulting instruction runs again, on zeros, and the ring
//!   reports [`SegmentFault::Truncated`](crate::layout::SegmentFault) at its
//!   next slow path;
//! * for any other address, or a SIGBUS sent by `kill`, it hands the signal
//!   to the handler that was installed before it (Rust's own stack-overflow
//!   handler, typically), or, if that was the default action, restores the
//!   default and lets the signal kill the process as it would have.
//!
//! The handler is on by default. It is not installed if the environment
//! variable [`NO_SIGBUS_HANDLER_ENV`] (`SHMBUS_NO_SIGBUS_HANDLER`) is set to
//! anything but `0` or empty, or if [`set_sigbus_handler`]`(false)` is called
//! before the first segment is mapped; truncation then kills the process
//! with SIGBUS, as for any mapped file.
//!
//! # The registry, and why the handler may read it
//!
//! The handler may only do async-signal-safe things: no allocation, no lock.
//! The mappings live in a fixed table of [`MAX_GUARDED_MAPPINGS`] entries of
//! atomics, each a small seqlock: `state` packs a generation (bumped by
//! every registration) with a tag `FREE`, `BUSY` (being written) or `LIVE`.
//! A registration takes a `FREE` entry by CAS to `BUSY`, writes start and
//! length, then stores `LIVE` with `Release`; the handler reads the state,
//! then start and length, then the state again, and uses the entry only if
//! both reads saw the same `LIVE` generation, so it never acts on a torn or
//! recycled entry.
//!
//! Entry reuse is safe because of the order around each mapping's life: an
//! entry is registered only after `mmap` returned and unregistered before
//! `munmap`, so a `LIVE` entry always describes memory that is mapped by a
//! live [`Segment`](super::Segment). A fault in that memory comes from an
//! access through a borrow of the segment, and the segment (so its entry)
//! cannot be dropped while a borrow exists: the entry that matches the fault
//! stays `LIVE` for the whole handler run. Entries being registered or freed
//! concurrently describe other address ranges (the kernel never hands out a
//! range that is still mapped), so they can never match the faulting address
//! by mistake.

use core::mem::MaybeUninit;
use std::sync::Once;

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Environment variable that, set to anything but empty or `0`, keeps
/// shmbus from installing its SIGBUS handler.
pub const NO_SIGBUS_HANDLER_ENV: &str = "SHMBUS_NO_SIGBUS_HANDLER";

/// Most segment mappings one process can have guarded at once.
pub const MAX_GUARDED_MAPPINGS: usize = 4096;

const TAG_MASK: u64 = 0b11;
const TAG_FREE: u64 = 0;
const TAG_BUSY: u64 = 1;
const TAG_LIVE: u64 = 2;

/// One registered mapping.
struct Entry {
    /// Generation (bits 2..) and tag (bits 0..2).
    state: AtomicU64,
    /// First byte of the mapping (page-aligned).
    start: AtomicU64,
    /// Bytes mapped, rounded up to whole pages.
    len: AtomicU64,
    /// 1 if the mapping is `PROT_READ | PROT_WRITE`, 0 if `PROT_READ`.
    writable: AtomicU32,
    /// Set to 1 by the handler once it replaced the mapping with zero
    /// pages; cleared by registration.
    truncated: AtomicU32,
}

impl Entry {
    const fn new() -> Self {
        Entry {
            state: AtomicU64::new(TAG_FREE),
            start: AtomicU64::new(0),
            len: AtomicU64::new(0),
            writable: AtomicU32::new(0),
            truncated: AtomicU32::new(0),
        }
    }
}

static TABLE: [Entry; MAX_GUARDED_MAPPINGS] = {
    // A `const` item may be repeated into an array even though Entry is not Copy.
    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Entry = Entry::new();
    [FREE; MAX_GUARDED_MAPPINGS]
};

/// 1 unless [`set_sigbus_handler`]`(false)` was called.
static ENABLED: AtomicU32 = AtomicU32::new(1);
/// 1 once the handler is installed.
static INSTALLED: AtomicU32 = AtomicU32::new(0);
/// 1 once [`PREV`] holds the action that was installed before ours.
static PREV_READY: AtomicU32 = AtomicU32::new(0);
static INSTALL: Once = Once::new();

/// The SIGBUS action found before ours: written once, before ours is
/// installed and before [`PREV_READY`] is set; read-only afterwards.
struct PrevAction(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written once inside `INSTALL.call_once` before PREV_READY is set
// with Release, only read after an Acquire load of PREV_READY sees 1.
unsafe impl Sync for PrevAction {}

static PREV: PrevAction = PrevAction(UnsafeCell::new(MaybeUninit::uninit()));

/// Turns the SIGBUS handler on or off for segments mapped from now on.
///
/// Call it before the first segment is mapped: once installed, the handler
/// stays. Returns whether the setting is in effect: `false` only when asked
/// to turn it off after it was installed.
///
/// # Examples
///
/// ```
/// // A process that handles SIGBUS itself opts out before opening anything.
/// let in_effect = shmbus::segment::set_sigbus_handler(false);
/// # let _ = in_effect;
/// # shmbus::segment::set_sigbus_handler(true);
/// ```
pub fn set_sigbus_handler(enabled: bool) -> bool {
    ENABLED.store(u32::from(enabled), Ordering::Relaxed);
    enabled || !sigbus_handler_installed()
}

/// Whether this process has shmbus's SIGBUS handler installed.
pub fn sigbus_handler_installed() -> bool {
    // SYNC POINT: pairs with the Release store in `install`.
    INSTALLED.load(Ordering::Acquire) != 0
}

fn env_disables() -> bool {
    std::env::var_os(NO_SIGBUS_HANDLER_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Installs the handler if it is wanted and not yet there; returns whether
/// it is installed.
fn ensure_installed() -> bool {
    if sigbus_handler_installed() {
        return true;
    }
    if ENABLED.load(Ordering::Relaxed) == 0 || env_disables() {
        return false;
    }
    INSTALL.call_once(install);
    sigbus_handler_installed()
}

fn install() {
    // SAFETY: all-zero is a valid `sigaction`; the calls only read and write the structures passed,
    // and PREV is written before anyone can read it (PREV_READY is still 0).
    unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, core::ptr::null(), &mut old) != 0 {
            return;
        }
        (*PREV.0.get()).write(old);
        // SYNC POINT: publishes PREV; pairs with the Acquire load in `chain`.
        PREV_READY.store(1, Ordering::Release);
        let mut new: libc::sigaction = core::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        if libc::sigaction(libc::SIGBUS, &new, core::ptr::null_mut()) == 0 {
            // SYNC POINT: pairs with the Acquire load in
            // `sigbus_handler_installed`.
            INSTALLED.store(1, Ordering::Release);
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// A mapping's entry in the registry; unregisters on drop. Drop it before
/// the mapping is unmapped.
#[derive(Debug)]
pub(crate) struct Guard {
    index: usize,
    generation: u64,
}

/// Why a mapping could not be guarded.
pub(crate) struct TableFull;

impl Guard {
    /// Registers the mapping `[start, start + len)` if the handler is (or
    /// can now be) installed. `Ok(None)` when the handler is turned off.
    pub(crate) fn register(
        start: *const u8,
        len: usize,
        writable: bool,
    ) -> Result<Option<Guard>, TableFull> {
        if !ensure_installed() {
            return Ok(None);
        }
        let page = page_size();
        let len = (len as u64).div_ceil(page).saturating_mul(page);
        for (index, entry) in TABLE.iter().enumerate() {
            let state = entry.state.load(Ordering::Relaxed);
            if state & TAG_MASK != TAG_FREE {
                continue;
            }
            let generation = (state >> 2).wrapping_add(1) & (u64::MAX >> 2);
            let busy = generation << 2 | TAG_BUSY;
            // SYNC POINT: takes the entry; Acquire pairs with the Release
            // store of FREE in `Guard::drop` by its previous owner.
            if entry
                .state
                .compare_exchange(state, busy, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SYNC POINT: seqlock writer; orders BUSY before the field
            // stores, pairs with the Acquire fence in `guard_fault`.
            fence(Ordering::Release);
            entry.start.store(start as u64, Ordering::Relaxed);
            entry.len.store(len, Ordering::Relaxed);
            entry.writable.store(u32::from(writable), Ordering::Relaxed);
            entry.truncated.store(0, Ordering::Relaxed);
            // SYNC POINT: publishes the fields; pairs with the Acquire load
            // of `state` in `guard_fault`.
            entry
                .state
                .store(generation << 2 | TAG_LIVE, Ordering::Release);
            return Ok(Some(Guard { index, generation }));
        }
        Err(TableFull)
    }

    fn entry(&self) -> &'static Entry {
        &TABLE[self.index]
    }

    /// Whether the handler (or [`Guard::mark_truncated`]) found the file
    /// shorter than the mapping.
    pub(crate) fn truncated(&self) -> bool {
        // SYNC POINT: pairs with the Release store in `guard_fault` (the
        // zero pages are in place once this reads 1).
        self.entry().truncated.load(Ordering::Acquire) != 0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SYNC POINT: frees the entry; pairs with the Acquire CAS in
        // `Guard::register` by its next owner. A handler still reading the
        // old fields sees the state change on its second read and skips it.
        self.entry()
            .state
            .store(self.generation << 2 | TAG_FREE, Ordering::Release);
    }
}

/// If `addr` lies in a registered mapping, replaces that mapping with zero
/// pages and marks it truncated. Async-signal-safe: atomics and one `mmap`.
fn guard_fault(addr: u64) -> bool {
    for entry in TABLE.iter() {
        // SYNC POINT: seqlock reader; pairs with the Release store of LIVE
        // in `Guard::register`.
        let before = entry.state.load(Ordering::Acquire);
        if before & TAG_MASK != TAG_LIVE {
            continue;
        }
        let start = entry.start.load(Ordering::Relaxed);
        let len = entry.len.load(Ordering::Relaxed);
        let writable = entry.writable.load(Ordering::Relaxed) != 0;
        // SYNC POINT: pairs with the Release fence in `Guard::register`: if
        // the loads above saw a later registration's fields, the load below
        // sees its state change.
        fence(Ordering::Acquire);
        if entry.state.load(Ordering::Relaxed) != before {
            continue;
        }
        if addr < start || addr - start >= len {
            continue;
        }
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: `[start, start + len)` is a whole-page range mapped by a live segment (module
        // docs); replacing it with private zero pages keeps every pointer into it valid.
        let p = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                len as usize,
                prot,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        // SYNC POINT: pairs with the Acquire load in `Guard::truncated`.
        entry.truncated.store(1, Ordering::Release);
        return true;
    }
    false
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the errno location of the current thread is always valid.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let fault_addr = unsafe { info.as_ref() }
        .filter(|i| i.si_code > 0)
        // SAFETY: `i` is valid; si_addr is meaningful for kernel-generated SIGBUS (si_code > 0).
        .map(|i| unsafe { i.si_addr() } as u64);
    let handled = fault_addr.is_some_and(guard_fault);
    if !handled {
        // SAFETY: called from the signal handler with its own arguments.
        unsafe { chain(sig, info, ctx, fault_addr.is_some()) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Hands a SIGBUS that is not ours to the previous action.
///
/// # Safety
///
/// Called only from `on_sigbus`, with the arguments it received.
unsafe fn chain(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    is_fault: bool,
) {
    // SYNC POINT: pairs with the Release store in `install`.
    let prev = if PREV_READY.load(Ordering::Acquire) != 0 {
        // SAFETY: PREV was written before PREV_READY was set and never since.
        Some(unsafe { (*PREV.0.get()).assume_init_ref() })
    } else {
        None
    };
    let handler = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        if handler == libc::SIG_IGN && !is_fault {
            return;
        }
        // SAFETY: all-zero with SIG_DFL is a valid action; sigaction and
        // raise are async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = core::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, core::ptr::null_mut());
            // A fault kills on return, when the instruction runs again; a
            // signal sent by another process must be raised again.
            if !is_fault {
                libc::raise(sig);
            }
        }
        return;
    }
    let Some(prev) = prev else { return };
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous owner installed this as an SA_SIGINFO handler of this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous owner installed this value as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(handler) };
        f(sig);
    }
}
