//! The only module that names atomics, cells and spin hints.
//!
//! Every lock-free algorithm in shmbus takes its atomics from here. A normal
//! build re-exports `core`'s types; a build with `RUSTFLAGS="--cfg shmbus_loom"`
//! re-exports [loom]'s, so the production code of the rings runs unchanged
//! inside loom's model checker (see `loom-tests/`).
//!
//! This is a `cfg`, never a Cargo feature: feature unification would switch
//! every crate in the workspace that depends on shmbus over to loom.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(shmbus_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(shmbus_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A hint that the caller is spinning on a value another thread will change.
///
/// Under loom, spinning must hand control to the scheduler or a model never
/// terminates, so this yields the loom thread instead.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(not(shmbus_loom))]
    core::hint::spin_loop();
    #[cfg(shmbus_loom)]
    loom::thread::yield_now();
}

/// Gives up the rest of the time slice (a `sched_yield`), or yields the loom
/// thread under the model checker.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(shmbus_loom))]
    std::thread::yield_now();
    #[cfg(shmbus_loom)]
    loom::thread::yield_now();
}

/// Access tracking for bytes shared between a producer and a consumer.
///
/// Ring data lives in plain memory (an mmap in production), which loom cannot
/// see. Under `shmbus_loom`, [`AccessTracker`] keeps one loom cell per 8-byte
/// word of a data region and every read or write of ring data "touches" the
/// words it covers, so loom reports a causality violation whenever a byte is
/// read without a happens-before edge from the write that produced it (for
/// example, if a publish store were `Relaxed`). In a normal build it is a
/// zero-sized no-op and compiles away.
#[cfg(not(shmbus_loom))]
#[derive(Debug, Default)]
pub(crate) struct AccessTracker;

#[cfg(not(shmbus_loom))]
impl AccessTracker {
    pub(crate) fn new(_len: usize) -> Self {
        AccessTracker
    }
    #[inline(always)]
    pub(crate) fn read(&self, _offset: usize, _len: usize) {}
    #[inline(always)]
    pub(crate) fn write(&self, _offset: usize, _len: usize) {}
}

#[cfg(shmbus_loom)]
#[derive(Debug)]
pub(crate) struct AccessTracker {
    words: Box<[loom::cell::UnsafeCell<()>]>,
}

#[cfg(shmbus_loom)]
impl AccessTracker {
    pub(crate) fn new(len: usize) -> Self {
        let words = (0..len.div_ceil(8))
            .map(|_| loom::cell::UnsafeCell::new(()))
            .collect();
        AccessTracker { words }
    }

    fn words(&self, offset: usize, len: usize) -> &[loom::cell::UnsafeCell<()>] {
        let first = offset / 8;
        let last = (offset + len.max(1)).div_ceil(8).min(self.words.len());
        &self.words[first..last]
    }

    pub(crate) fn read(&self, offset: usize, len: usize) {
        for w in self.words(offset, len) {
            w.with(|_| ());
        }
    }

    pub(crate) fn write(&self, offset: usize, len: usize) {
        for w in self.words(offset, len) {
            w.with_mut(|_| ());
        }
    }
}

/// Loads an 8-byte-aligned word of mapped memory that another process may be
/// writing at the same moment. The load is atomic (never torn) and `Relaxed`:
/// ordering comes from the cursor loads that precede it.
///
/// # Safety
///
/// `ptr` is 8-byte aligned and valid for reads of 8 bytes.
#[inline(always)]
pub(crate) unsafe fn load_word(ptr: *const u64) -> u64 {
    // SAFETY: the caller guarantees alignment and validity; every access to
    // these words by shmbus is atomic, so there is no mixed-size race.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr as *mut u64) }
        .load(core::sync::atomic::Ordering::Relaxed)
}

/// Stores an 8-byte-aligned word of mapped memory (`Relaxed`; published by a
/// later `Release` store of a cursor).
///
/// # Safety
///
/// `ptr` is 8-byte aligned and valid for writes of 8 bytes.
#[inline(always)]
pub(crate) unsafe fn store_word(ptr: *mut u64, value: u64) {
    // SAFETY: as for `load_word`.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr) }
        .store(value, core::sync::atomic::Ordering::Relaxed)
}

/// Heap memory standing in for a mapped data region (in-process rings and
/// loom models): 8-byte aligned, zeroed, and writable through a shared
/// reference because every byte sits in an `UnsafeCell`.
pub(crate) struct HeapBytes {
    words: Box<[core::cell::UnsafeCell<u64>]>,
}

// SAFETY: the bytes are only reached through raw pointers by ring code whose
// synchronisation (cursor Release/Acquire pairs) orders every access.
unsafe impl Sync for HeapBytes {}
// SAFETY: as above; the buffer owns plain integers.
unsafe impl Send for HeapBytes {}

impl HeapBytes {
    pub(crate) fn zeroed(len: usize) -> Self {
        let words = (0..len.div_ceil(8))
            .map(|_| core::cell::UnsafeCell::new(0u64))
            .collect();
        HeapBytes { words }
    }

    pub(crate) fn as_mut_ptr(&self) -> *mut u8 {
        core::cell::UnsafeCell::raw_get(self.words.as_ptr()) as *mut u8
    }
}
