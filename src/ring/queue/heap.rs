//! An in-process work queue on the heap, for tests, benchmarks and loom
//! models.

use core::ptr::NonNull;

use super::{Consumer, Liveness, Producer, QueueConfig, QueueView, ViewParts};
use crate::layout::{
    lock_slot, participant, QueueConsumerSlot, QueueControl, QueueProducerSlot, CACHE_LINE,
};
use crate::ring::broadcast::RegisterError;
use crate::ring::liveness::HeapMemory;
use crate::ring::region::{heap_payload_stride, LineHeader};
use crate::ring::ConfigError;
use crate::sync::{AccessTracker, AtomicU32, AtomicU64, HeapBytes, HeapLocks, Ordering};

/// Memory of an in-process queue.
pub(crate) struct HeapQueueMemory {
    control: QueueControl,
    consumers: Box<[QueueConsumerSlot]>,
    producers: Box<[QueueProducerSlot]>,
    headers: Box<[LineHeader]>,
    payloads: HeapBytes,
    tracker: AccessTracker,
    locks: HeapLocks,
}

impl HeapMemory for HeapQueueMemory {
    fn locks(&self) -> &HeapLocks {
        &self.locks
    }
}

/// Creates an in-process work queue on the heap (tests, benchmarks, loom
/// models). Handles are made with [`HeapQueue::producer`] and
/// [`HeapQueue::consumer`].
///
/// # Errors
///
/// The configuration is invalid.
pub fn heap(config: QueueConfig) -> Result<HeapQueue, ConfigError> {
    config.validate()?;
    let slots = config.slots as usize;
    let payload_stride = heap_payload_stride(config.max_payload);
    let mem = std::sync::Arc::new(HeapQueueMemory {
        control: QueueControl::new(&config),
        consumers: (0..config.max_consumers)
            .map(|_| QueueConsumerSlot::new())
            .collect(),
        producers: (0..config.max_producers)
            .map(|_| QueueProducerSlot::new())
            .collect(),
        headers: LineHeader::boxed(slots),
        payloads: HeapBytes::zeroed(slots * payload_stride),
        tracker: AccessTracker::new(slots * payload_stride),
        locks: HeapLocks::with_ids(
            (0..config.max_consumers as usize)
                .map(lock_slot::queue_consumer)
                .chain((0..config.max_producers as usize).map(lock_slot::queue_producer))
                .collect(),
        ),
    });
    Ok(HeapQueue {
        mem,
        config,
        payload_stride,
    })
}

/// An in-process work queue; see [`heap`].
pub struct HeapQueue {
    mem: std::sync::Arc<HeapQueueMemory>,
    config: QueueConfig,
    payload_stride: usize,
}

impl HeapQueue {
    fn view(&self) -> QueueView {
        let m = &self.mem;
        let parts = ViewParts {
            control: NonNull::from(&m.control),
            consumers: NonNull::from(&m.consumers[0]),
            producers: NonNull::from(&m.producers[0]),
            headers: m.headers.as_ptr() as *const u8,
            header_stride: core::mem::size_of::<LineHeader>(),
            payloads: m.payloads.as_mut_ptr(),
            payload_stride: self.payload_stride,
            tracker: &m.tracker,
            config: self.config,
            liveness: Liveness::Heap(m.clone()),
        };
        // SAFETY: every array was allocated above for this config (at least one consumer and
        // one producer: `validate`), and the Arc in `liveness` keeps it alive.
        unsafe { QueueView::new(parts) }
    }

    /// A new producer.
    ///
    /// # Errors
    ///
    /// Every producer slot is taken.
    pub fn producer(&self) -> Result<Producer, RegisterError> {
        Producer::register(self.view())
    }

    /// A new consumer.
    ///
    /// # Errors
    ///
    /// Every consumer slot is taken.
    pub fn consumer(&self) -> Result<Consumer, RegisterError> {
        Consumer::register(self.view())
    }

    /// Test hook: runs the dead-consumer reaper once, as a waiting
    /// participant does every `REAP_PERIOD`; returns how many slots it
    /// freed.
    #[doc(hidden)]
    pub fn reap_for_test(&self) -> u64 {
        self.view().reap_dead_consumers(None)
    }

    /// The queue's positions and counters now.
    pub fn counters(&self) -> super::QueueCounters {
        self.view().counters()
    }

    /// Test hook: the participant state (without generation) of consumer
    /// slot `i`.
    #[doc(hidden)]
    pub fn consumer_state_for_test(&self, i: usize) -> u32 {
        // SYNC POINT: Acquire, as a reaper's load; a test only needs the
        // value.
        participant::state(self.mem.consumers[i].state.load(Ordering::Acquire))
    }
}

impl QueueControl {
    pub(crate) fn new(c: &QueueConfig) -> Self {
        QueueControl {
            slots: u64::from(c.slots),
            slot_stride: c.slot_stride() as u32,
            max_payload: c.max_payload,
            max_producers: c.max_producers,
            max_consumers: c.max_consumers,
            reclaim_after_ns: c.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64,
            pad0: [0; CACHE_LINE - 32],
            tail: AtomicU64::new(0),
            pad1: [0; CACHE_LINE - 8],
            head: AtomicU64::new(0),
            pad2: [0; CACHE_LINE - 8],
            wake_seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            pad3: [0; CACHE_LINE - 8],
            redelivery_hint: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            reclaimed_claims: AtomicU64::new(0),
            reaped_consumers: AtomicU64::new(0),
            reaped_producers: AtomicU64::new(0),
            pad4: [0; CACHE_LINE - 40],
        }
    }
}

impl QueueProducerSlot {
    pub(crate) fn new() -> Self {
        QueueProducerSlot {
            state: AtomicU32::new(participant::FREE),
            pid: AtomicU32::new(0),
            claimed: AtomicU64::new(0),
            pad: [0; CACHE_LINE - 16],
            counters: crate::layout::Counters::new(),
        }
    }
}

impl QueueConsumerSlot {
    pub(crate) fn new() -> Self {
        QueueConsumerSlot {
            state: AtomicU32::new(participant::FREE),
            pid: AtomicU32::new(0),
            sleeping: AtomicU32::new(0),
            pad: [0; CACHE_LINE - 12],
            counters: crate::layout::Counters::new(),
        }
    }
}
