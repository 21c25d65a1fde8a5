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
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(shmbus_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A statistics counter in shared memory ([`crate::layout::Counters`]):
/// written only by its owner, read by inspectors, never part of any
/// synchronization, so it stays outside every loom model on purpose (a
/// model would only explore interleavings of numbers no ring decision
/// reads). `core`'s atomic in every build.
pub(crate) type StatCounter = core::sync::atomic::AtomicU64;

/// The ordering type of [`StatCounter`] (`core`'s in every build).
pub(crate) use core::sync::atomic::Ordering as StatOrdering;

/// A lock for heap-only stand-ins of shared state (the in-process
/// directory's liveness locks): loom's under loom, so its models see it.
#[cfg(not(shmbus_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(shmbus_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// A cell for process-local state shared with a signal handler (the
/// SIGBUS guard table), outside every loom model.
#[cfg(not(shmbus_loom))]
pub(crate) use core::cell::UnsafeCell;

/// Between a `SeqCst` read-modify-write and a later `SeqCst` load, where
/// the two are one side of a store-buffering (Dekker) pair whose other side
/// is a write, a `SeqCst` fence, then a read (a committer's stamp
/// compare-and-swap then its load of the sleeper count, against a sleeper's
/// count then fence then stamp load).
///
/// In a normal build it is nothing: both accesses are `SeqCst`, so the
/// language's single total order of `SeqCst` operations and fences already
/// forbids both sides missing each other (C++20 [atomics.order] 4), and on
/// x86 that costs nothing (a locked RMW and a plain load), where a `SeqCst`
/// fence is one more locked instruction on every commit. Under loom it is a
/// `SeqCst` fence, because loom models `SeqCst` fences but treats `SeqCst`
/// accesses as `AcqRel` (tokio-rs/loom#180): the models check the same
/// pairing through a fence at this point.
#[inline(always)]
pub(crate) fn fence_for_seqcst_accesses() {
    #[cfg(shmbus_loom)]
    fence(Ordering::SeqCst);
}

/// The light side of an asymmetric store-load barrier: between a plain
/// store and a later load that form one side of a store-buffering (Dekker)
/// pair whose other side runs [`heavy_barrier`] between its store and its
/// load (a sole publisher's commit store then its load of the sleeper
/// count, against a sleeper's count then heavy barrier then stamp load).
///
/// It only stops the compiler from reordering: the CPU may still let the
/// load pass the store, and the heavy barrier makes up for it by running a
/// full barrier on every CPU that runs a thread of a process registered
/// with [`register_for_heavy_barriers`] (Linux `membarrier(2)`, command
/// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`). A thread not running then was
/// switched out, which is a full barrier too. So either the store is
/// visible to the heavy side's load, or the light side's load comes after
/// the heavy side's store. Only a process whose registration succeeded may
/// use it; others need a `SeqCst` fence. Under loom it is a `SeqCst` fence,
/// as is the heavy side: loom models the pairing, not the mechanism.
#[inline(always)]
pub(crate) fn light_barrier() {
    #[cfg(not(shmbus_loom))]
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(shmbus_loom)]
    fence(Ordering::SeqCst);
}

/// `membarrier(2)` commands (`linux/membarrier.h`).
#[cfg(not(shmbus_loom))]
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
#[cfg(not(shmbus_loom))]
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

#[cfg(not(shmbus_loom))]
fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier(2) takes a command and two integer flags and
    // touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// Registers this process for the heavy side of [`light_barrier`]'s pairs
/// (once per process; later calls return the first answer). Returns
/// whether it may use [`light_barrier`]: false where the kernel lacks
/// `membarrier(2)` or a seccomp filter refuses it.
pub(crate) fn register_for_heavy_barriers() -> bool {
    #[cfg(not(shmbus_loom))]
    {
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *REGISTERED.get_or_init(|| membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
    }
    #[cfg(shmbus_loom)]
    true
}

/// The heavy side of [`light_barrier`]'s pairs: a full barrier here and on
/// every CPU running a thread of a registered process (one system call:
/// about 0.2 µs measured with no registered thread running on another
/// CPU, about 2.5 µs with one, which it interrupts). Returns false if the
/// kernel refused it: the caller cannot rely on the pairing then.
#[inline]
pub(crate) fn heavy_barrier() -> bool {
    #[cfg(not(shmbus_loom))]
    {
        fence(Ordering::SeqCst);
        membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
    }
    #[cfg(shmbus_loom)]
    {
        fence(Ordering::SeqCst);
        true
    }
}

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

/// Asks the CPU to fetch the cache line at `addr` for writing, without
/// waiting: a hint (it reads and writes nothing, and may be dropped), so
/// the line's ownership is on its way before a store needs it. Nothing
/// under loom, and on targets without such a hint.
#[inline(always)]
pub(crate) fn prefetch_for_write(addr: *const u8) {
    // `prefetchw` is written out in `asm!` because `_mm_prefetch` gives a read prefetch unless the
    // whole build enables the `prfchw` feature.
    #[cfg(all(not(shmbus_loom), target_arch = "x86_64"))]
    // SAFETY: `prefetchw` is a hint: it never faults and touches no memory as far as the program
    // can tell, whatever the address (a CPU without it decodes the opcode as a no-op).
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) addr, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(not(shmbus_loom), target_arch = "x86_64")))]
    let _ = addr;
}

/// Asks the CPU to move the cache line at `addr` out of this core's private
/// caches into the shared last-level cache (x86 `cldemote`), so that a
/// reader on another core is served from there instead of by a snoop of
/// this core. A hint: it reads and writes nothing as far as the program can
/// tell, and may be dropped. Nothing under loom and on other targets.
#[inline(always)]
pub(crate) fn demote_line(addr: *const u8) {
    #[cfg(all(not(shmbus_loom), target_arch = "x86_64"))]
    // SAFETY: `cldemote` is a hint: it never faults whatever the address, and
    // a CPU without it decodes the opcode as a no-op.
    unsafe {
        core::arch::asm!("cldemote [{0}]", in(reg) addr, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(not(shmbus_loom), target_arch = "x86_64")))]
    let _ = addr;
}

/// At most how many lines of one record [`demote_lines`] pushes: the header
/// and the start of the payload, where a waiting reader misses first (its
/// hardware prefetcher follows a longer payload).
pub(crate) const DEMOTE_MAX_LINES: usize = 4;

/// The unit [`demote_line`] moves: one 64-byte cache line.
pub(crate) const DEMOTE_LINE: usize = 64;

/// [`demote_line`] for each cache line of `len` bytes at `addr`, at most
/// [`DEMOTE_MAX_LINES`] of them.
#[inline(always)]
pub(crate) fn demote_lines(addr: *const u8, len: usize) {
    let first = addr as usize & !(DEMOTE_LINE - 1);
    let end = (addr as usize).saturating_add(len);
    for line in (first..end).step_by(DEMOTE_LINE).take(DEMOTE_MAX_LINES) {
        demote_line(line as *const u8);
    }
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
/// writing at the same moment (inspection of read-only mappings). The load
/// is atomic (never torn) and `Relaxed`; callers fence.
///
/// # Safety
///
/// `ptr` is 8-byte aligned and valid for reads of 8 bytes.
#[cfg(not(shmbus_loom))]
#[inline(always)]
pub(crate) unsafe fn load_word(ptr: *const u64) -> u64 {
    // SAFETY: the caller guarantees alignment and validity; every access to
    // these words by shmbus is atomic, so there is no mixed-size race.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr as *mut u64) }
        .load(core::sync::atomic::Ordering::Relaxed)
}

/// Copies `dst.len()` bytes from `src`, which a peer may be writing at the
/// same moment, as Relaxed 8-byte atomic loads: the one way shmbus reads
/// such bytes (a plain copy would be a data race). The copy may mix old and
/// new words; callers validate it afterwards (a seqlock stamp, a header
/// re-read) after an Acquire fence. A partial last word is loaded whole.
///
/// # Safety
///
/// `src` is 8-byte aligned and valid for reads of `dst.len()` rounded up to
/// a multiple of 8 bytes.
#[cfg(not(shmbus_loom))]
#[inline]
pub(crate) unsafe fn copy_racy(src: *const u8, dst: &mut [u8]) {
    let mut chunks = dst.chunks_exact_mut(8);
    let mut word = src as *const u64;
    for chunk in &mut chunks {
        // SAFETY: `word` stays within the first `dst.len()` bytes of `src`,
        // 8-aligned, per the contract.
        let w = unsafe { load_word(word) };
        chunk.copy_from_slice(&w.to_ne_bytes());
        // SAFETY: at most one past the last full word read.
        word = unsafe { word.add(1) };
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        // SAFETY: the contract covers the whole last word.
        let w = unsafe { load_word(word) };
        tail.copy_from_slice(&w.to_ne_bytes()[..tail.len()]);
    }
}

/// Copies `src` to `dst`, which a peer may be reading at the same moment,
/// as Relaxed 8-byte atomic stores (the writer's half of [`copy_racy`]). A
/// partial last word is stored whole, zero-filled past `src`.
///
/// # Safety
///
/// `dst` is 8-byte aligned and valid for writes of `src.len()` rounded up
/// to a multiple of 8 bytes, and nobody else writes those bytes meanwhile.
#[cfg(not(shmbus_loom))]
#[inline]
pub(crate) unsafe fn write_racy(dst: *mut u8, src: &[u8]) {
    let mut chunks = src.chunks_exact(8);
    let mut word = dst as *mut u64;
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        // SAFETY: within the first `src.len()` bytes of `dst`, 8-aligned.
        unsafe { AtomicU64::from_ptr(word) }.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        // SAFETY: at most one past the last full word written.
        word = unsafe { word.add(1) };
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        // SAFETY: the contract covers the whole last word.
        unsafe { AtomicU64::from_ptr(word) }.store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
}

/// Payload bytes of a slot that a writer may rewrite while a reader copies
/// them (`Overwrite` record slots): read with [`RacyBytes::read`], written
/// with [`RacyBytes::write`], never through a slice. In a normal build the
/// words are the region's own memory ([`copy_racy`], [`write_racy`]);
/// under loom, which cannot see plain bytes, they are a parallel array of
/// loom atomics, one per 8-byte word, so models check payload integrity.
#[cfg(not(shmbus_loom))]
#[derive(Debug, Default)]
pub(crate) struct RacyBytes;

#[cfg(not(shmbus_loom))]
impl RacyBytes {
    pub(crate) fn new(_len: usize) -> Self {
        RacyBytes
    }

    /// Copies `dst.len()` bytes from `base + offset`.
    ///
    /// # Safety
    ///
    /// As [`copy_racy`] for `base + offset`.
    #[inline(always)]
    pub(crate) unsafe fn read(&self, base: *const u8, offset: usize, dst: &mut [u8]) {
        // SAFETY: per the contract.
        unsafe { copy_racy(base.add(offset), dst) }
    }

    /// Copies `src` to `base + offset`.
    ///
    /// # Safety
    ///
    /// As [`write_racy`] for `base + offset`.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, base: *mut u8, offset: usize, src: &[u8]) {
        // SAFETY: per the contract.
        unsafe { write_racy(base.add(offset), src) }
    }
}

#[cfg(shmbus_loom)]
#[derive(Debug)]
pub(crate) struct RacyBytes {
    words: Box<[AtomicU64]>,
}

#[cfg(shmbus_loom)]
impl RacyBytes {
    pub(crate) fn new(len: usize) -> Self {
        RacyBytes {
            words: (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) unsafe fn read(&self, _base: *const u8, offset: usize, dst: &mut [u8]) {
        for (k, chunk) in dst.chunks_mut(8).enumerate() {
            let w = self.words[offset / 8 + k].load(Ordering::Relaxed);
            chunk.copy_from_slice(&w.to_ne_bytes()[..chunk.len()]);
        }
    }

    pub(crate) unsafe fn write(&self, _base: *mut u8, offset: usize, src: &[u8]) {
        for (k, chunk) in src.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.words[offset / 8 + k].store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
    }
}

/// Heap memory standing in for a mapped data region (in-process rings and
/// loom models): cache-line aligned (as a mapping's strides are), zeroed,
/// and writable through a shared reference because every byte sits in an
/// `UnsafeCell`.
pub(crate) struct HeapBytes {
    lines: Box<[HeapLine]>,
}

/// One cache line of [`HeapBytes`].
#[repr(C, align(64))]
struct HeapLine([core::cell::UnsafeCell<u64>; 8]);

// SAFETY: the bytes are only reached through raw pointers by ring code whose
// synchronisation (cursor Release/Acquire pairs) orders every access.
unsafe impl Sync for HeapBytes {}
// SAFETY: as above; the buffer owns plain integers.
unsafe impl Send for HeapBytes {}

impl HeapBytes {
    pub(crate) fn zeroed(len: usize) -> Self {
        let lines = (0..len.div_ceil(64).max(1))
            .map(|_| HeapLine(core::array::from_fn(|_| core::cell::UnsafeCell::new(0u64))))
            .collect();
        HeapBytes { lines }
    }

    pub(crate) fn as_mut_ptr(&self) -> *mut u8 {
        // `HeapLine` is `repr(C)` of `UnsafeCell<u64>`s, so its address is
        // that of its first byte, and the lines are contiguous.
        core::cell::UnsafeCell::raw_get(self.lines.as_ptr().cast::<core::cell::UnsafeCell<u64>>())
            as *mut u8
    }
}

/// Sleeps until `word` is woken by [`futex_wake_all`], unless it no longer
/// holds `expected` (checked atomically with going to sleep by the kernel),
/// or `timeout` passes. Works across processes: the word lives in a shared
/// mapping, so this uses the non-private futex operations.
#[cfg(not(shmbus_loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // Errors (EAGAIN when the value changed, EINTR, ETIMEDOUT) all mean "return and look again".
    // SAFETY: `word` is a live, aligned 4-byte atomic; FUTEX_WAIT only reads it, and `ts`
    // outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// As [`futex_wait`], for a sleep that must end at `timeout` because no
/// wake-up may come (a waiter timing a stalled claim). Under loom, which
/// has no time, such a sleep ends at once; plain [`futex_wait`] there never
/// times out, so a lost wake-up still deadlocks a model.
#[cfg(not(shmbus_loom))]
pub(crate) fn futex_wait_until(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    futex_wait(word, expected, timeout);
}

/// Loom model of a deadline-bound futex sleep: the deadline has passed.
#[cfg(shmbus_loom)]
pub(crate) fn futex_wait_until(_word: &AtomicU32, _expected: u32, _timeout: std::time::Duration) {
    loom::thread::yield_now();
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`, in any process.
/// Returns how many were woken.
#[cfg(not(shmbus_loom))]
pub(crate) fn futex_wake_all(word: &AtomicU32) -> usize {
    // SAFETY: `word` is a live, aligned 4-byte atomic; FUTEX_WAKE does not touch memory.
    let woken =
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
    usize::try_from(woken).unwrap_or(0)
}

#[cfg(shmbus_loom)]
loom::lazy_static! {
    /// Loom stand-in for the kernel's futex hash bucket.
    static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

/// Loom model of `FUTEX_WAIT`: the value check and going to sleep are atomic
/// with respect to [`futex_wake_all`], as in the kernel. There is no
/// timeout, so a lost wake-up shows up as a deadlock in the model.
#[cfg(shmbus_loom)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: std::time::Duration) {
    let Ok(guard) = FUTEX.0.lock() else { return };
    if word.load(Ordering::Relaxed) != expected {
        return;
    }
    let _ = FUTEX.1.wait(guard);
}

/// Loom model of `FUTEX_WAKE` for every waiter (reports one woken).
#[cfg(shmbus_loom)]
pub(crate) fn futex_wake_all(_word: &AtomicU32) -> usize {
    let _guard = FUTEX.0.lock();
    FUTEX.1.notify_all();
    1
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process.
#[cfg(not(shmbus_loom))]
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `clock` now, in nanoseconds.
#[cfg(not(shmbus_loom))]
#[inline(always)]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Under loom, a clock that moves 1 µs on every reading: time passes only
/// as the model runs, the same way in every execution of a schedule, so a
/// model with a claim timeout of a few nanoseconds sees stalls time out,
/// and one with a timeout of a second (which no model reaches) never does.
#[cfg(shmbus_loom)]
pub(crate) fn monotonic_ns() -> u64 {
    static CLOCK: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    CLOCK.fetch_add(1_000, core::sync::atomic::Ordering::Relaxed)
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: `CLOCK_MONOTONIC` as of the
/// last timer tick (a few ms behind at most, so never ahead of
/// [`monotonic_ns`] in any process), for a quarter of its cost: a
/// timestamp that only has to be a recent lower bound.
#[cfg(not(shmbus_loom))]
pub(crate) fn coarse_monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Under loom, the model's clock (see [`monotonic_ns`]).
#[cfg(shmbus_loom)]
pub(crate) fn coarse_monotonic_ns() -> u64 {
    monotonic_ns()
}

/// In-process stand-in for the kernel's liveness locks (heap rings and loom
/// models): one flag per lock id. The flags are this module's atomics, so
/// under loom taking, releasing and querying a lock are modelled, with the
/// ordering the kernel's lock gives a process that finds a lock released:
/// everything its holder did before releasing it happens before.
pub(crate) struct HeapLocks {
    /// The lock ids, sorted.
    ids: Box<[u64]>,
    held: Box<[AtomicU32]>,
}

impl HeapLocks {
    /// Locks with the given ids.
    pub(crate) fn with_ids(mut ids: Vec<u64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        let held = ids.iter().map(|_| AtomicU32::new(0)).collect();
        HeapLocks {
            ids: ids.into_boxed_slice(),
            held,
        }
    }

    fn flag(&self, id: usize) -> Option<&AtomicU32> {
        let i = self.ids.binary_search(&(id as u64)).ok()?;
        self.held.get(i)
    }

    pub(crate) fn try_lock(&self, id: usize) -> bool {
        // SYNC POINT: AcqRel; Acquire pairs with the Release in `unlock` by
        // the previous holder.
        self.flag(id).is_some_and(|h| {
            h.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    pub(crate) fn unlock(&self, id: usize) {
        if let Some(h) = self.flag(id) {
            // SYNC POINT: Release pairs with `try_lock` and `is_held`.
            h.store(0, Ordering::Release);
        }
    }

    pub(crate) fn is_held(&self, id: usize) -> bool {
        // SYNC POINT: Acquire pairs with the Release in `unlock`: a lock
        // seen free orders everything its last holder did before ours.
        self.flag(id)
            .is_some_and(|h| h.load(Ordering::Acquire) != 0)
    }
}

/// How the record-header words of a ring's data region are loaded and
/// stored. They are the ring's commit markers, so their ordering matters:
/// in a normal build they are atomics on the region's own (mapped) memory;
/// under loom, whose atomics cannot live in plain bytes, they are a parallel
/// array of loom atomics, one per 8-byte word of the region.
#[cfg(not(shmbus_loom))]
#[derive(Debug, Default)]
pub(crate) struct HeaderWords;

#[cfg(not(shmbus_loom))]
impl HeaderWords {
    pub(crate) fn new(_len: usize) -> Self {
        HeaderWords
    }

    /// # Safety
    ///
    /// `base + index` is 8-byte aligned and valid for reads of 8 bytes.
    #[inline(always)]
    pub(crate) unsafe fn load(&self, base: *mut u8, index: usize, order: Ordering) -> u64 {
        // SAFETY: per the contract; every access to these words is atomic.
        unsafe { AtomicU64::from_ptr(base.add(index) as *mut u64) }.load(order)
    }

    /// # Safety
    ///
    /// `base + index` is 8-byte aligned and valid for writes of 8 bytes.
    #[inline(always)]
    pub(crate) unsafe fn store(&self, base: *mut u8, index: usize, value: u64, order: Ordering) {
        // SAFETY: per the contract; every access to these words is atomic.
        unsafe { AtomicU64::from_ptr(base.add(index) as *mut u64) }.store(value, order)
    }
}

#[cfg(shmbus_loom)]
pub(crate) struct HeaderWords {
    words: Box<[AtomicU64]>,
}

#[cfg(shmbus_loom)]
impl HeaderWords {
    pub(crate) fn new(len: usize) -> Self {
        HeaderWords {
            words: (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) unsafe fn load(&self, _base: *mut u8, index: usize, order: Ordering) -> u64 {
        self.words[index / 8].load(order)
    }

    pub(crate) unsafe fn store(&self, _base: *mut u8, index: usize, value: u64, order: Ordering) {
        self.words[index / 8].store(value, order)
    }
}
