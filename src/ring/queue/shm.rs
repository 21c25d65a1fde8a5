//! The queue in shared memory: creating its segment, checking a mapped one
//! against the configuration its namer holds, and the view handles run on.

use core::ptr::NonNull;
use std::sync::Arc;

use super::{Liveness, QueueConfig, QueueView, ViewParts};
use crate::layout::{
    QueueConsumerSlot, QueueControl, QueueProducerSlot, SegmentKind, SlotGeometry,
    QUEUE_CONTROL_OFFSET, SLOT_READERS_OFFSET,
};
use crate::ring::region::NO_TRACKING;
use crate::segment::{Namespace, OpenOptions, Segment, SegmentError};

/// Creates the work queue segment `name` for `config` (validated by the
/// caller).
pub(crate) fn create_queue(
    ns: &Namespace,
    name: &str,
    config: &QueueConfig,
) -> Result<(), SegmentError> {
    let size = config.geometry().size();
    Segment::create(ns, name, SegmentKind::Queue, size, |after_header, _| {
        let control = after_header as *mut QueueControl;
        // SAFETY: the control block follows the header in a fresh `size`-byte mapping nobody else
        // can use yet; the zeroed arrays after it are valid (FREE participants, free lap-0 slots).
        unsafe { control.write(QueueControl::new(config)) };
    })?;
    Ok(())
}

/// Checks a mapped queue against the configuration its namer holds
/// (hostile input: every field is read once and compared; the
/// configuration passed `validate`, so offsets computed from it cannot
/// overflow). Returns where its parts lie.
pub(crate) fn check_queue(
    segment: &Segment,
    config: &QueueConfig,
) -> Result<SlotGeometry, SegmentError> {
    let corrupt = |reason: String| SegmentError::Corrupt {
        path: segment.path().to_owned(),
        reason,
    };
    if segment.len() < SLOT_READERS_OFFSET {
        return Err(corrupt(format!(
            "{} bytes cannot hold a queue control block",
            segment.len()
        )));
    }
    // SAFETY: the segment holds at least the control block (checked above), 128-aligned in a
    // page-aligned mapping; its immutable fields are read once into locals below.
    let ctl = unsafe { &*(segment.base().add(QUEUE_CONTROL_OFFSET) as *const QueueControl) };
    let reclaim_after_ns = config.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64;
    let disagree = [
        ("slots", ctl.slots, u64::from(config.slots)),
        (
            "slot stride",
            u64::from(ctl.slot_stride),
            config.slot_stride() as u64,
        ),
        (
            "max payload",
            u64::from(ctl.max_payload),
            u64::from(config.max_payload),
        ),
        (
            "max producers",
            u64::from(ctl.max_producers),
            u64::from(config.max_producers),
        ),
        (
            "max consumers",
            u64::from(ctl.max_consumers),
            u64::from(config.max_consumers),
        ),
        ("reclaim after (ns)", ctl.reclaim_after_ns, reclaim_after_ns),
    ]
    .into_iter()
    .find(|(_, found, expected)| found != expected);
    if let Some((field, found, expected)) = disagree {
        return Err(corrupt(format!(
            "its control block says {field} {found} but its configuration says {expected}"
        )));
    }
    let geometry = config.geometry();
    if segment.len() != geometry.size() {
        return Err(corrupt(format!(
            "{} bytes, but its configuration needs {}",
            segment.len(),
            geometry.size()
        )));
    }
    Ok(geometry)
}

/// Opens the queue segment `name` with `config`, and builds the view its
/// handles run on; the view watches `directory` too, if given (a queue
/// whose directory is removed is unusable).
pub(crate) fn open_queue(
    ns: &Namespace,
    name: &str,
    directory: Option<Arc<Segment>>,
    config: &QueueConfig,
    opts: &OpenOptions,
) -> Result<QueueView, SegmentError> {
    let segment = Segment::open(ns, name, SegmentKind::Queue, opts)?;
    view_of(segment, directory, config)
}

/// Checks the mapped queue `segment` against `config` ([`check_queue`])
/// and builds a view over it, which keeps the segment.
///
/// A view of a read-only mapping (the inspector's) may only be loaded
/// from, with Relaxed loads: its handles' stores and read-modify-writes
/// would fault.
pub(crate) fn view_of(
    segment: Segment,
    directory: Option<Arc<Segment>>,
    config: &QueueConfig,
) -> Result<QueueView, SegmentError> {
    let geometry = check_queue(&segment, config)?;
    let base = segment.base();
    // SAFETY: the offsets come from a geometry just checked against the segment's size; each part
    // is 64-aligned (page-aligned mapping, strides multiples of 64); `liveness` keeps the segment.
    let parts = unsafe {
        ViewParts {
            control: NonNull::new_unchecked(base.add(QUEUE_CONTROL_OFFSET) as *mut QueueControl),
            consumers: NonNull::new_unchecked(
                base.add(geometry.reader_offset(0)) as *mut QueueConsumerSlot
            ),
            producers: NonNull::new_unchecked(
                base.add(geometry.writer_offset(0)) as *mut QueueProducerSlot
            ),
            headers: base.add(geometry.slot_offset(0)),
            header_stride: geometry.stride,
            payloads: base.add(geometry.payload_offset(0)),
            payload_stride: geometry.stride,
            tracker: &NO_TRACKING,
            config: *config,
            liveness: Liveness::Mapped { segment, directory },
        }
    };
    // SAFETY: see above.
    Ok(unsafe { QueueView::new(parts) })
}
