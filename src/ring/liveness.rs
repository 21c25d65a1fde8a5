//! Proof of life of a slot ring's participants (broadcast logs and work
//! queues): the kernel's OFD locks on the ring's segment, or lock flags for
//! an in-process ring; and the check of the memory under the ring.

use std::sync::Arc;

use crate::layout::SegmentFault;
use crate::sync::HeapLocks;

/// The memory of an in-process ring, which keeps its lock flags. (Not
/// `Sync` under loom, whose access trackers are cells: the views that hold
/// it state why they may move between threads.)
pub(crate) trait HeapMemory {
    /// The ring's liveness lock flags.
    fn locks(&self) -> &HeapLocks;
}

/// Proof of life of the participants: kernel locks on a segment, or flags
/// for an in-process ring.
pub(crate) enum Liveness {
    /// An in-process ring; the Arc keeps its memory alive.
    Heap(Arc<dyn HeapMemory>),
    /// A mapped ring, and the directory segment that named it, if any
    /// (watched too: a ring whose directory is removed is unusable).
    #[cfg(not(shmbus_loom))]
    Mapped {
        segment: crate::segment::Segment,
        directory: Option<Arc<crate::segment::Segment>>,
    },
}

impl Liveness {
    pub(crate) fn try_lock(&self, slot: u64) -> bool {
        match self {
            Liveness::Heap(h) => h.locks().try_lock(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { segment, .. } => segment.try_lock(slot).unwrap_or(false),
        }
    }

    pub(crate) fn unlock(&self, slot: u64) {
        match self {
            Liveness::Heap(h) => h.locks().unlock(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { segment, .. } => {
                let _ = segment.unlock(slot);
            }
        }
    }

    /// Whether another holder (a live process) has `slot`. Errs on "alive".
    pub(crate) fn held_by_other(&self, slot: u64) -> bool {
        match self {
            Liveness::Heap(h) => h.locks().is_held(slot as usize),
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { segment, .. } => segment.is_lock_held(slot).unwrap_or(true),
        }
    }

    /// The cheap check of the memory under the ring (no system call).
    #[inline]
    pub(crate) fn fault(&self) -> Option<SegmentFault> {
        match self {
            Liveness::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { segment, directory } => segment
                .fault()
                .or_else(|| directory.as_ref().and_then(|d| d.fault())),
        }
    }

    /// The full check of the memory under the ring (one `fstat` each).
    pub(crate) fn fault_slow(&self) -> Option<SegmentFault> {
        match self {
            Liveness::Heap(_) => None,
            #[cfg(not(shmbus_loom))]
            Liveness::Mapped { segment, directory } => segment
                .fault_slow()
                .or_else(|| directory.as_ref().and_then(|d| d.fault_slow())),
        }
    }
}
