//! The log in shared memory: creating its segment, checking a mapped one
//! against the directory's configuration, and the view handles run on.

use core::ptr::NonNull;
use std::sync::Arc;

use crate::layout::{
    BroadcastControl, PublisherSlot, SegmentKind, SlotGeometry, SubscriberSlot,
    BROADCAST_CONTROL_OFFSET, BROADCAST_SUBSCRIBERS_OFFSET, CACHE_LINE,
};
use crate::ring::region::{MAPPED_PAYLOADS, NO_TRACKING};
use crate::segment::{Namespace, OpenOptions, Segment, SegmentError};

use super::{BroadcastConfig, BroadcastView, Liveness, ViewParts};

/// Creates the broadcast log segment `name` for `config`.
pub(crate) fn create_log(
    ns: &Namespace,
    name: &str,
    config: &BroadcastConfig,
) -> Result<(), SegmentError> {
    let size = config.geometry().size();
    Segment::create(ns, name, SegmentKind::Broadcast, size, |after_header, _| {
        let control = after_header as *mut BroadcastControl;
        // SAFETY: the control block follows the header in a fresh `size`-byte mapping nobody else
        // can use yet; the slot arrays after it are valid all-zero (FREE, never used).
        unsafe { control.write(BroadcastControl::new(config)) };
    })?;
    Ok(())
}

/// What [`check_log`] found in a broadcast segment: where its parts lie,
/// and the settings read from its control block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogLayout {
    /// Where the parts lie (the segment's size matches it).
    pub(crate) geometry: SlotGeometry,
    /// Largest payload.
    pub(crate) max_payload: u32,
    /// Claim timeout the creator stored.
    pub(crate) reclaim_after_ns: u64,
}

/// Checks a mapped broadcast log against the directory's configuration
/// (hostile input: every field is read once and compared; the directory's
/// configuration passed `validate`, so offsets computed from it cannot
/// overflow).
pub(crate) fn check_log(
    segment: &Segment,
    config: &BroadcastConfig,
) -> Result<LogLayout, SegmentError> {
    let corrupt = |reason: String| SegmentError::Corrupt {
        path: segment.path().to_owned(),
        reason,
    };
    if segment.len() < BROADCAST_SUBSCRIBERS_OFFSET {
        return Err(corrupt(format!(
            "{} bytes cannot hold a broadcast control block",
            segment.len()
        )));
    }
    // The control block's offset is 128-aligned in a page-aligned mapping, and its immutable
    // fields are read once into locals below.
    // SAFETY: the segment holds at least the control block (checked above), 128-aligned.
    let ctl =
        unsafe { &*(segment.base().add(BROADCAST_CONTROL_OFFSET) as *const BroadcastControl) };
    let stride = config.slot_stride();
    let disagree = [
        ("slots", ctl.slots, u64::from(config.slots)),
        ("slot stride", u64::from(ctl.slot_stride), stride as u64),
        (
            "max payload",
            u64::from(ctl.max_payload),
            u64::from(config.max_payload),
        ),
        (
            "policy",
            u64::from(ctl.policy),
            u64::from(config.policy.to_raw()),
        ),
        (
            "max subscribers",
            u64::from(ctl.max_subscribers),
            u64::from(config.max_subscribers),
        ),
        (
            "max publishers",
            u64::from(ctl.max_publishers),
            u64::from(config.max_publishers),
        ),
        (
            "claim timeout (ns)",
            ctl.reclaim_after_ns,
            config.reclaim_after.as_nanos().min(u128::from(u64::MAX)) as u64,
        ),
    ]
    .into_iter()
    .find(|(_, found, expected)| found != expected);
    if let Some((field, found, expected)) = disagree {
        return Err(corrupt(format!(
            "its control block says {field} {found} but the topic directory says {expected}"
        )));
    }
    let geometry = config.geometry();
    let size = geometry.size();
    if segment.len() != size {
        return Err(corrupt(format!(
            "{} bytes, but its configuration needs {size}",
            segment.len()
        )));
    }
    debug_assert!(
        geometry.writers_offset() % CACHE_LINE == 0 && geometry.records_offset() % CACHE_LINE == 0
    );
    Ok(LogLayout {
        geometry,
        max_payload: config.max_payload,
        reclaim_after_ns: ctl.reclaim_after_ns,
    })
}

/// Validates a mapped log against the directory's configuration and builds
/// the view the ring code runs on.
fn map_log(
    segment: Segment,
    directory: Arc<Segment>,
    config: &BroadcastConfig,
) -> Result<BroadcastView, SegmentError> {
    let LogLayout {
        geometry,
        reclaim_after_ns,
        ..
    } = check_log(&segment, config)?;
    let base = segment.base();
    let config = BroadcastConfig {
        reclaim_after: std::time::Duration::from_nanos(reclaim_after_ns),
        ..*config
    };
    // SAFETY: the offsets come from a geometry just checked against the segment's size; each part
    // is 64-aligned (page-aligned mapping, strides multiples of 64); `liveness` keeps the segment.
    let parts = unsafe {
        ViewParts {
            control: NonNull::new_unchecked(
                base.add(BROADCAST_CONTROL_OFFSET) as *mut BroadcastControl
            ),
            subscribers: NonNull::new_unchecked(
                base.add(geometry.reader_offset(0)) as *mut SubscriberSlot
            ),
            publishers: NonNull::new_unchecked(
                base.add(geometry.writer_offset(0)) as *mut PublisherSlot
            ),
            headers: base.add(geometry.slot_offset(0)),
            header_stride: geometry.stride,
            payloads: base.add(geometry.payload_offset(0)),
            payload_stride: geometry.stride,
            tracker: &NO_TRACKING,
            racy: &MAPPED_PAYLOADS,
            config,
            liveness: Liveness::Mapped {
                segment,
                directory: Some(directory),
            },
        }
    };
    // SAFETY: see above.
    Ok(unsafe { BroadcastView::new(parts) })
}

/// Opens the log segment `name` that `directory` names with `config`, and
/// builds the view its handles run on; the view watches `directory` too (a
/// topic whose directory is removed is unusable).
pub(crate) fn open_log(
    ns: &Namespace,
    name: &str,
    directory: Arc<Segment>,
    config: &BroadcastConfig,
    opts: &OpenOptions,
) -> Result<BroadcastView, SegmentError> {
    let segment = Segment::open(ns, name, SegmentKind::Broadcast, opts)?;
    map_log(segment, directory, config)
}
