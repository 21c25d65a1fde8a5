//! The data region of a ring: bytes that may be an mmap or the heap.

use crate::layout::{RecordSlotHeader, CACHE_LINE};
#[cfg(not(shmbus_loom))]
use crate::sync::RacyBytes;
use crate::sync::{demote_lines, AccessTracker, HeaderWords, Ordering};

/// Access tracking is a no-op outside loom; one shared instance serves every
/// mapped ring.
#[cfg(not(shmbus_loom))]
pub(crate) static NO_TRACKING: AccessTracker = AccessTracker;

/// Racy payload copies of a mapped log work on the mapping itself; this
/// zero-sized accessor serves every mapped log.
#[cfg(not(shmbus_loom))]
pub(crate) static MAPPED_PAYLOADS: RacyBytes = RacyBytes;

/// Header words of a mapped region are atomics on the mapping itself; this
/// zero-sized accessor serves every mapped ring.
#[cfg(not(shmbus_loom))]
pub(crate) static MAPPED_HEADERS: HeaderWords = HeaderWords;

/// A record slot header of an in-process slot ring, alone on its cache
/// line as in a mapped one (where each slot's header starts a 64-byte
/// stride): neighbouring slots' stamps never share a line, so the heap
/// rings that benches and tests use behave as the mapped rings do.
#[repr(C, align(64))]
pub(crate) struct LineHeader(pub(crate) RecordSlotHeader);

impl core::ops::Deref for LineHeader {
    type Target = RecordSlotHeader;
    fn deref(&self) -> &RecordSlotHeader {
        &self.0
    }
}

impl LineHeader {
    /// `n` fresh headers.
    pub(crate) fn boxed(n: usize) -> Box<[LineHeader]> {
        (0..n)
            .map(|_| LineHeader(RecordSlotHeader::new()))
            .collect()
    }
}

/// Bytes per payload of an in-process slot ring whose largest payload is
/// `max_payload`: whole cache lines, as in a mapped ring.
pub(crate) const fn heap_payload_stride(max_payload: u32) -> usize {
    (max_payload as usize).div_ceil(CACHE_LINE) * CACHE_LINE
}

/// A power-of-two run of bytes shared by the two sides of a ring.
///
/// Indices are byte offsets in `0 .. capacity`. Record headers are read and
/// written as whole 8-byte words (atomically, so a concurrent writer can
/// never make a reader see a torn length); payload bytes are handed out as
/// slices.
pub(crate) struct DataRegion {
    base: *mut u8,
    capacity: usize,
    tracker: *const AccessTracker,
    headers: *const HeaderWords,
}

impl DataRegion {
    /// # Safety
    ///
    /// `base` is 8-byte aligned and valid for reads and writes of `capacity`
    /// bytes, and `tracker` and `headers` valid for reads (`headers` sized
    /// for `capacity`), for as long as the region is used; `capacity` is a
    /// power of two and a multiple of 8.
    pub(crate) unsafe fn new(
        base: *mut u8,
        capacity: usize,
        tracker: *const AccessTracker,
        headers: *const HeaderWords,
    ) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= 8);
        debug_assert_eq!(base as usize % 8, 0);
        DataRegion {
            base,
            capacity,
            tracker,
            headers,
        }
    }

    #[inline(always)]
    fn tracker(&self) -> &AccessTracker {
        // SAFETY: `new`'s contract keeps the tracker alive with the region.
        unsafe { &*self.tracker }
    }

    /// Loads the record header word at `index` with `order`. Header words
    /// are the ring's commit markers, polled while the other side writes
    /// them: they are atomics, not tracked as data.
    #[inline(always)]
    pub(crate) fn load_header(&self, index: usize, order: Ordering) -> u64 {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity);
        // SAFETY: an 8-aligned index inside the region (a masked multiple of
        // 8); `new`'s contract keeps `headers` alive.
        unsafe { (*self.headers).load(self.base, index, order) }
    }

    /// Stores the record header word at `index` with `order`.
    #[inline(always)]
    pub(crate) fn store_header(&self, index: usize, word: u64, order: Ordering) {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity);
        // SAFETY: as for `load_header`.
        unsafe { (*self.headers).store(self.base, index, word, order) }
    }

    /// Pushes the lines of `len` bytes at `index` (up to the region's end)
    /// towards a reader on another core: see [`demote_lines`].
    #[inline(always)]
    pub(crate) fn demote(&self, index: usize, len: usize) {
        let len = len.min(self.capacity.saturating_sub(index));
        demote_lines(self.base.wrapping_add(index), len);
    }

    /// Records, for loom, that `len` bytes at `index` are about to be read.
    #[inline(always)]
    pub(crate) fn note_read(&self, index: usize, len: usize) {
        self.tracker().read(index, len);
    }

    /// Records, for loom, that `len` bytes at `index` are about to be written.
    #[inline(always)]
    pub(crate) fn note_write(&self, index: usize, len: usize) {
        self.tracker().write(index, len);
    }

    /// The bytes `index .. index + len`.
    ///
    /// # Safety
    ///
    /// The range lies inside the region and no one writes it while the
    /// slice lives (the ring's cursors guarantee this for a well-behaved
    /// peer).
    #[inline(always)]
    pub(crate) unsafe fn slice(&self, index: usize, len: usize) -> &[u8] {
        debug_assert!(index + len <= self.capacity);
        // SAFETY: per the function contract.
        unsafe { core::slice::from_raw_parts(self.base.add(index), len) }
    }

    /// The bytes `index .. index + len`, writable.
    ///
    /// # Safety
    ///
    /// The range lies inside the region and no one else reads or writes it
    /// while the slice lives.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, index: usize, len: usize) -> &mut [u8] {
        debug_assert!(index + len <= self.capacity);
        // SAFETY: per the function contract.
        unsafe { core::slice::from_raw_parts_mut(self.base.add(index), len) }
    }
}
