//! The data region of a ring: bytes that may be an mmap or the heap.

use crate::sync::{load_word, store_word, AccessTracker};

/// Access tracking is a no-op outside loom; one shared instance serves every
/// mapped ring.
#[cfg(not(shmbus_loom))]
pub(crate) static NO_TRACKING: AccessTracker = AccessTracker;

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
}

impl DataRegion {
    /// # Safety
    ///
    /// `base` is 8-byte aligned and valid for reads and writes of `capacity`
    /// bytes, and `tracker` valid for reads, for as long as the region is
    /// used; `capacity` is a power of two and a multiple of 8.
    pub(crate) unsafe fn new(
        base: *mut u8,
        capacity: usize,
        tracker: *const AccessTracker,
    ) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= 8);
        debug_assert_eq!(base as usize % 8, 0);
        DataRegion {
            base,
            capacity,
            tracker,
        }
    }

    #[inline(always)]
    fn tracker(&self) -> &AccessTracker {
        // SAFETY: `new`'s contract keeps the tracker alive with the region.
        unsafe { &*self.tracker }
    }

    /// Loads the record header word at `index`.
    #[inline(always)]
    pub(crate) fn load_header(&self, index: usize) -> u64 {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity);
        self.tracker().read(index, 8);
        // SAFETY: callers pass an 8-aligned index inside the region (positions
        // are validated multiples of 8 masked by capacity - 1).
        unsafe { load_word(self.base.add(index) as *const u64) }
    }

    /// Stores the record header word at `index`.
    #[inline(always)]
    pub(crate) fn store_header(&self, index: usize, word: u64) {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity);
        self.tracker().write(index, 8);
        // SAFETY: as for `load_header`.
        unsafe { store_word(self.base.add(index) as *mut u64, word) }
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
