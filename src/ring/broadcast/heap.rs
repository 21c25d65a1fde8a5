//! An in-process log on the heap, for tests, benchmarks and loom models.

use core::ptr::NonNull;

use super::{
    BroadcastConfig, BroadcastView, DropDurableError, Liveness, Publisher, RegisterError, StartAt,
    Subscriber, ViewParts,
};
use crate::layout::{lock_slot, participant, BroadcastControl, PublisherSlot, SubscriberSlot};
use crate::ring::liveness::HeapMemory;
use crate::ring::region::{heap_payload_stride, LineHeader};
use crate::ring::ConfigError;
use crate::sync::{AccessTracker, HeapBytes, HeapLocks, Ordering, RacyBytes};

/// Memory of an in-process log (tests, loom models).
pub(crate) struct HeapBroadcast {
    pub(super) control: BroadcastControl,
    pub(super) subscribers: Box<[SubscriberSlot]>,
    pub(super) publishers: Box<[PublisherSlot]>,
    pub(super) headers: Box<[LineHeader]>,
    pub(super) payloads: HeapBytes,
    pub(super) tracker: AccessTracker,
    pub(super) racy: RacyBytes,
    pub(super) locks: HeapLocks,
}

impl HeapMemory for HeapBroadcast {
    fn locks(&self) -> &HeapLocks {
        &self.locks
    }
}

/// Creates an in-process broadcast log on the heap (tests, benchmarks,
/// loom models). Handles are made with [`HeapLog::publisher`] and
/// [`HeapLog::subscriber`].
///
/// # Errors
///
/// The configuration is invalid.
pub fn heap(config: BroadcastConfig) -> Result<HeapLog, ConfigError> {
    config.validate()?;
    let slots = config.slots as usize;
    let payload_stride = heap_payload_stride(config.max_payload);
    let mem = std::sync::Arc::new(HeapBroadcast {
        control: BroadcastControl::new(&config),
        subscribers: (0..config.max_subscribers)
            .map(|_| SubscriberSlot::new())
            .collect(),
        publishers: (0..config.max_publishers)
            .map(|_| PublisherSlot::new())
            .collect(),
        headers: LineHeader::boxed(slots),
        payloads: HeapBytes::zeroed(slots * payload_stride),
        tracker: AccessTracker::new(slots * payload_stride),
        racy: RacyBytes::new(slots * payload_stride),
        locks: HeapLocks::with_ids(
            (0..config.max_subscribers as usize)
                .map(lock_slot::subscriber)
                .chain((0..config.max_publishers as usize).map(lock_slot::publisher))
                .collect(),
        ),
    });
    Ok(HeapLog {
        mem,
        config,
        payload_stride,
    })
}

/// An in-process broadcast log; see [`heap`].
pub struct HeapLog {
    pub(super) mem: std::sync::Arc<HeapBroadcast>,
    config: BroadcastConfig,
    payload_stride: usize,
}

impl HeapLog {
    pub(super) fn view(&self) -> BroadcastView {
        let m = &self.mem;
        let parts = ViewParts {
            control: NonNull::from(&m.control),
            subscribers: NonNull::from(&m.subscribers[0]),
            publishers: NonNull::from(&m.publishers[0]),
            headers: m.headers.as_ptr() as *const u8,
            header_stride: core::mem::size_of::<LineHeader>(),
            payloads: m.payloads.as_mut_ptr(),
            payload_stride: self.payload_stride,
            tracker: &m.tracker,
            racy: &m.racy,
            config: self.config,
            liveness: Liveness::Heap(m.clone()),
        };
        // SAFETY: every array was allocated above for this config and the
        // Arc in `liveness` keeps it alive.
        unsafe { BroadcastView::new(parts) }
    }

    /// A new publisher.
    ///
    /// # Errors
    ///
    /// Every publisher slot is taken.
    pub fn publisher(&self) -> Result<Publisher, RegisterError> {
        Publisher::register(self.view())
    }

    /// A new anonymous subscriber.
    ///
    /// # Errors
    ///
    /// Every subscriber slot is taken.
    pub fn subscriber(&self, start: StartAt) -> Result<Subscriber, RegisterError> {
        Subscriber::register(self.view(), None, start)
    }

    /// A new durable subscriber `name`, or `name` resuming its place.
    ///
    /// # Errors
    ///
    /// As for the topics' durable subscribers.
    pub fn durable_subscriber(
        &self,
        name: &str,
        start: StartAt,
    ) -> Result<Subscriber, RegisterError> {
        Subscriber::register(self.view(), Some(name), start)
    }

    /// Test hook: as [`HeapLog::durable_subscriber`], calling `pause` when
    /// a resuming durable subscriber has taken its slot and not yet marked
    /// it live.
    #[doc(hidden)]
    pub fn durable_subscriber_paused(
        &self,
        name: &str,
        start: StartAt,
        pause: &dyn Fn(),
    ) -> Result<Subscriber, RegisterError> {
        Subscriber::register_paused(self.view(), Some(name), start, pause)
    }

    /// Frees the detached durable subscriber `name`, so that it no longer
    /// gates publishers (see [`Topic::drop_durable`](crate::bus::Topic::drop_durable)).
    ///
    /// # Errors
    ///
    /// As [`Topic::drop_durable`](crate::bus::Topic::drop_durable).
    pub fn drop_durable(&self, name: &str) -> Result<(), DropDurableError> {
        super::drop_durable(&self.view(), name, &|| {})
    }

    /// Test hook: as [`HeapLog::drop_durable`], calling `pause` once the
    /// slot's liveness lock is held, before the slot changes.
    #[doc(hidden)]
    pub fn drop_durable_paused(
        &self,
        name: &str,
        pause: &dyn Fn(),
    ) -> Result<(), DropDurableError> {
        super::drop_durable(&self.view(), name, pause)
    }

    /// Test hook: reclaims the claim of `seq` as a waiter whose claim
    /// timeout passed would (not while a sole publisher that commits by
    /// store lives); returns whether the slot now holds `seq` resolved.
    #[doc(hidden)]
    pub fn reclaim_for_test(&self, seq: u64) -> bool {
        let view = self.view();
        view.may_reclaim() && view.reclaim(seq)
    }

    /// Test hook: runs the dead-subscriber reaper once (publishers run it
    /// while blocked); returns how many slots it reaped.
    #[doc(hidden)]
    pub fn reap_for_test(&self) -> u64 {
        self.view().reap_dead_subscribers()
    }

    /// Test hook: the participant state (without generation) of
    /// subscriber slot `i`.
    #[doc(hidden)]
    pub fn subscriber_state_for_test(&self, i: usize) -> u32 {
        // SYNC POINT: Acquire pairs with the Release updates of the state
        // word (`take_slot`, the SeqCst store of LIVE in
        // `Subscriber::register`, `Subscriber::drop`, a reaper's CAS), as a
        // reaper's load does; a test only needs the value.
        participant::state(self.mem.subscribers[i].state.load(Ordering::Acquire))
    }
}
