//! SPSC rings in shared memory: a [`Segment`] of kind `Spsc`.
//!
//! ```text
//! offset 0    SegmentHeader   (128 bytes)
//! offset 128  SpscControl     (384 bytes: config | tail | head)
//! offset 512  data region     (capacity bytes)
//! ```
//!
//! The segment's name is chosen by the directory (`spsc-<entry>-<epoch>.<name>`,
//! see `RingKind::segment_name` in the directory),
//! which calls these functions with it and with the configuration it
//! records; nothing here takes a user's name.
//!
//! Exactly one producer and one consumer may be attached at a time, across
//! all processes. Each proves it is attached by holding an OFD lock on its
//! role's slot ([`lock_slot::SPSC_PRODUCER`], [`lock_slot::SPSC_CONSUMER`]); the kernel
//! drops the lock when the process dies, so a replacement can attach at once
//! and resume from the positions in shared memory.

use core::ptr::NonNull;

use super::{max_payload_for, Backing, Consumer, Producer, RingView, SpscConfig};
use crate::layout::{
    lock_slot, SegmentKind, SpscControl, SPSC_CONTROL_OFFSET, SPSC_DATA_OFFSET, SPSC_FLAG_WAKEUPS,
};
use crate::ring::region::{DataRegion, MAPPED_HEADERS, NO_TRACKING};
use crate::segment::{Namespace, OpenOptions, Segment, SegmentError};
use crate::sync::{futex_wake_all, Ordering};

// The role slots under the names this module has always exported; they
// are numbered in `layout::lock_slot` with every other kind's.
pub use crate::layout::lock_slot::{
    SPSC_CONSUMER as SPSC_LOCK_CONSUMER, SPSC_PRODUCER as SPSC_LOCK_PRODUCER,
};

/// A handle's segment and the role lock it holds.
pub(crate) struct Attachment {
    segment: Segment,
    slot: u64,
    peer_slot: u64,
}

impl Attachment {
    pub(crate) fn peer_alive(&self) -> Option<bool> {
        self.segment.is_lock_held(self.peer_slot).ok()
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    fn control(&self) -> &SpscControl {
        // SAFETY: the segment was validated as an SPSC segment, whose control
        // block lies at SPSC_CONTROL_OFFSET and lives as long as the mapping.
        unsafe { &*(self.segment.base().add(SPSC_CONTROL_OFFSET) as *const SpscControl) }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let pid = if self.slot == lock_slot::SPSC_PRODUCER {
            &self.control().producer_pid
        } else {
            &self.control().consumer_pid
        };
        pid.store(0, Ordering::Relaxed);
        // Closing the descriptor releases the lock too; this makes it explicit.
        let _ = self.segment.unlock(self.slot);
    }
}

/// Creates the SPSC ring segment `segment` in `ns` for `config`.
///
/// # Errors
///
/// [`SegmentError::InvalidConfig`], [`SegmentError::AlreadyExists`],
/// [`SegmentError::NoSpace`] and the other creation errors.
pub(crate) fn create_ring(
    ns: &Namespace,
    segment: &str,
    config: &SpscConfig,
) -> Result<(), SegmentError> {
    let (capacity, max_payload) = config.validate().map_err(|e| SegmentError::InvalidConfig {
        reason: e.to_string(),
    })?;
    let size = SPSC_DATA_OFFSET + config.capacity;
    let flags = config.flags();
    Segment::create(
        ns,
        segment,
        SegmentKind::Spsc,
        size,
        |after_header, _len| {
            let control = after_header as *mut SpscControl;
            // SAFETY: the control block lies at offset 128 of a fresh mapping
            // of `size` bytes that no other process can use yet.
            unsafe { control.write(SpscControl::new(capacity, max_payload, flags)) };
        },
    )?;
    Ok(())
}

/// Removes the SPSC ring segment `segment`.
///
/// Attached handles keep a valid mapping, but learn of the removal: the
/// header's `removed` flag is set first, a consumer asleep on the ring's
/// futex is woken, then the file is unlinked. Each handle then returns
/// `Unusable(Removed)` at its next `Full`, `Empty` or wait round (see the
/// [module docs](super#removed-and-truncated-rings) for exactly what that
/// guarantees). New attaches fail with `NotFound`.
///
/// # Errors
///
/// [`SegmentError::NotFound`] or an I/O error.
pub(crate) fn remove_ring(ns: &Namespace, segment: &str) -> Result<(), SegmentError> {
    let now = OpenOptions {
        init_timeout: std::time::Duration::ZERO,
    };
    // A ring that does not open cleanly (another version, corrupt) is
    // still removed; its peers notice through the unlinked file.
    if let Ok(mapped) = Segment::open(ns, segment, SegmentKind::Spsc, &now) {
        if validate_control(&mapped).is_ok() {
            mapped.mark_removed();
            // SAFETY: `validate_control` checked the segment holds an SPSC
            // control block at this offset; it lives as long as `mapped`.
            let ctl = unsafe { &*(mapped.base().add(SPSC_CONTROL_OFFSET) as *const SpscControl) };
            // SYNC POINT: after the Release store of `removed` in
            // `mark_removed`; pairs with the Acquire load of `wake_seq` in
            // `Consumer::sleep`, which then sees the flag.
            ctl.wake_seq.fetch_add(1, Ordering::Release);
            futex_wake_all(&ctl.wake_seq);
        }
    }
    Segment::remove(ns, segment, SegmentKind::Spsc)
}

/// Attaches as the producer of the SPSC ring segment `segment`, checking
/// its control block against `config` (the directory's).
///
/// # Errors
///
/// Every [`Segment::open`] error, [`SegmentError::Corrupt`] if the control
/// block is inconsistent or disagrees with `config`,
/// [`SegmentError::AlreadyAttached`] if a live producer holds the ring.
pub(crate) fn attach_producer(
    ns: &Namespace,
    segment: &str,
    config: &SpscConfig,
    opts: &OpenOptions,
) -> Result<Producer, SegmentError> {
    let (view, path) = attach(
        ns,
        segment,
        config,
        opts,
        lock_slot::SPSC_PRODUCER,
        lock_slot::SPSC_CONSUMER,
        "producer",
    )?;
    let producer = Producer::attach(view).map_err(|c| SegmentError::Corrupt {
        path,
        reason: c.to_string(),
    })?;
    let ctl = producer.ring.control();
    ctl.producer_pid
        .store(std::process::id(), Ordering::Relaxed);
    crate::ring::counters::reset(&ctl.producer_counters);
    Ok(producer)
}

/// Attaches as the consumer of the SPSC ring segment `segment`.
///
/// # Errors
///
/// As [`attach_producer`], for the consumer role.
pub(crate) fn attach_consumer(
    ns: &Namespace,
    segment: &str,
    config: &SpscConfig,
    opts: &OpenOptions,
) -> Result<Consumer, SegmentError> {
    let (view, path) = attach(
        ns,
        segment,
        config,
        opts,
        lock_slot::SPSC_CONSUMER,
        lock_slot::SPSC_PRODUCER,
        "consumer",
    )?;
    let consumer = Consumer::attach(view).map_err(|c| SegmentError::Corrupt {
        path,
        reason: c.to_string(),
    })?;
    let ctl = consumer.ring.control();
    ctl.consumer_pid
        .store(std::process::id(), Ordering::Relaxed);
    crate::ring::counters::reset(&ctl.consumer_counters);
    // A consumer that died asleep left its flag up; we are the only one.
    ctl.sleepers.store(0, Ordering::Relaxed);
    Ok(consumer)
}

fn attach(
    ns: &Namespace,
    name: &str,
    config: &SpscConfig,
    opts: &OpenOptions,
    slot: u64,
    peer_slot: u64,
    role: &'static str,
) -> Result<(RingView, std::path::PathBuf), SegmentError> {
    let segment = Segment::open(ns, name, SegmentKind::Spsc, opts)?;
    let path = segment.path().to_owned();
    let (capacity, max_payload, wakeups) = check_control(&segment, config)?;
    if !segment.try_lock(slot)? {
        return Err(SegmentError::AlreadyAttached { path, role });
    }
    let base = segment.base();
    let attachment = Attachment {
        segment,
        slot,
        peer_slot,
    };
    let view = RingView {
        // The mapping outlives the view through `backing`.
        // SAFETY: `validate_control` checked the block lies at this offset.
        control: unsafe {
            NonNull::new_unchecked(base.add(SPSC_CONTROL_OFFSET) as *mut SpscControl)
        },
        // SAFETY: the data region lies at SPSC_DATA_OFFSET (128-aligned)
        // and holds `capacity` bytes (checked against the segment size).
        data: unsafe {
            DataRegion::new(
                base.add(SPSC_DATA_OFFSET),
                capacity as usize,
                &NO_TRACKING,
                &MAPPED_HEADERS,
            )
        },
        capacity,
        mask: capacity - 1,
        max_payload,
        wakeups,
        backing: Backing::Mapped(attachment),
        probe: Default::default(),
    };
    Ok((view, path))
}

/// [`validate_control`], then checks the control block against the
/// configuration the directory records for the ring (capacity, largest
/// payload, wake-ups). Returns `(capacity, max_payload, wakeups)`.
///
/// # Errors
///
/// [`SegmentError::Corrupt`] naming the first setting that disagrees.
pub(crate) fn check_control(
    segment: &Segment,
    config: &SpscConfig,
) -> Result<(u64, u32, bool), SegmentError> {
    let found = validate_control(segment)?;
    let corrupt = |reason: String| SegmentError::Corrupt {
        path: segment.path().to_owned(),
        reason,
    };
    let (capacity, max_payload) = config
        .validate()
        .map_err(|e| corrupt(format!("the directory's configuration is invalid: {e}")))?;
    let disagree = [
        ("capacity", found.0, capacity),
        ("max payload", u64::from(found.1), u64::from(max_payload)),
        ("wake-ups", u64::from(found.2), u64::from(config.wakeups)),
    ]
    .into_iter()
    .find(|(_, found, expected)| found != expected);
    if let Some((field, found, expected)) = disagree {
        return Err(corrupt(format!(
            "its control block says {field} {found} but the directory says {expected}"
        )));
    }
    Ok(found)
}

/// Reads the immutable configuration of a mapped SPSC control block and
/// checks it against the segment (hostile input: read once, then check).
/// Returns `(capacity, max_payload, wakeups)`.
pub(crate) fn validate_control(segment: &Segment) -> Result<(u64, u32, bool), SegmentError> {
    let corrupt = |reason: String| SegmentError::Corrupt {
        path: segment.path().to_owned(),
        reason,
    };
    if segment.len() < SPSC_DATA_OFFSET {
        return Err(corrupt(format!(
            "{} bytes cannot hold an SPSC control block",
            segment.len()
        )));
    }
    // SAFETY: the segment is at least SPSC_DATA_OFFSET bytes, so the control
    // block is inside the mapping; plain reads of immutable fields.
    let control = unsafe { &*(segment.base().add(SPSC_CONTROL_OFFSET) as *const SpscControl) };
    let capacity = control.capacity;
    let max_payload = control.max_payload;
    if !capacity.is_power_of_two()
        || capacity < super::MIN_CAPACITY as u64
        || capacity > super::MAX_CAPACITY as u64
    {
        return Err(corrupt(format!(
            "capacity {capacity} is not a valid ring size"
        )));
    }
    if segment.len() as u64 != SPSC_DATA_OFFSET as u64 + capacity {
        return Err(corrupt(format!(
            "capacity {capacity} does not match the segment size {}",
            segment.len()
        )));
    }
    if max_payload > max_payload_for(capacity) {
        return Err(corrupt(format!(
            "max payload {max_payload} is too large for capacity {capacity}"
        )));
    }
    let flags = control.flags;
    if flags & !SPSC_FLAG_WAKEUPS != 0 {
        return Err(corrupt(format!("unknown flags {flags:#x}")));
    }
    Ok((capacity, max_payload, flags & SPSC_FLAG_WAKEUPS != 0))
}
