//! Read-only snapshots of live segments, used by `ring-dump`.
//!
//! Everything here opens segments with [`Segment::open_read_only`](crate::segment::Segment::open_read_only): the
//! mapping is `PROT_READ`, no liveness lock is taken and no byte is written,
//! so inspecting a ring can never disturb the processes using it. Liveness of
//! the producer and consumer is read from their OFD locks with a lock query
//! (`F_OFD_GETLK`), which takes nothing.
//!
//! What is read from the ring is hostile input exactly as it is for the
//! consumer: positions and record headers are loaded once into locals,
//! checked with checked arithmetic, and any inconsistency becomes a typed
//! [`Corruption`], never a panic or an out-of-bounds read. Records are
//! **copied** out of the mapping, because the producer may reuse their bytes
//! as soon as the consumer releases them; after each copy the walk re-reads
//! the consumer position, and if the consumer has passed the record the copy
//! may be stale, so the walk stops with [`InspectError::Overtaken`] rather
//! than show bytes that were never a record.
//!
//! Every ring, topic, SPSC channel or work queue, is found through the
//! namespace's directory, opened read-only as well; a ring's file is
//! checked against the configuration the directory records for it before
//! anything else is read. A topic's last records are copied out under their
//! seqlock stamps (a record a publisher overwrites during the copy is never
//! shown), and can be decoded as Protocol V2 messages with [`decode_v2`].
//! A work queue's snapshot shows every record slot in flight as its stamp
//! says (being written, waiting, taken by a live or a dead consumer,
//! skipped), read with the queue's own stamp check; its waiting records are
//! copied out and their stamps checked again after the copy, so a record
//! acknowledged (and its slot reused) meanwhile is never shown.
//!
//! A [`Follower`] follows any of the three kinds as records are published,
//! on the same mapping and the same checks, without registering anywhere:
//! it says how many records it missed when the ring reused their bytes
//! before it read them.
//!
//! # Examples
//!
//! ```
//! use shmbus::{inspect, Bus, SpscConfig};
//! use shmbus::segment::OpenOptions;
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-inspect-{}", std::process::id()));
//! let bus = Bus::at(&tmp, "doc")?;
//! let fills = bus.spsc("fills", &SpscConfig::with_capacity(4096))?;
//! fills.producer()?.try_send(3, b"FILL 100")?;
//!
//! let ring = inspect::SpscInspector::open(bus.namespace(), "fills", &OpenOptions::default())?;
//! let snap = ring.snapshot()?;
//! assert_eq!((snap.head, snap.tail, snap.used_bytes), (0, 16, 16));
//! assert!(!snap.producer.attached); // the producer above was dropped
//!
//! let records: Vec<_> = ring.records(&snap, 16, 64).collect::<Result<_, _>>()?;
//! assert_eq!(records[0].record_type, 3);
//! assert_eq!(records[0].payload, b"FILL 100");
//! # fills.remove()?;
//! # drop((fills, bus));
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod follow;
mod queue;
mod spsc;
mod topic;

/// The Protocol V2 summary the inspector shows, from [`crate::record`].
pub use crate::record::{decode_v2, TlvSummary, V2Summary};
pub use crate::ring::CounterValues;
pub use follow::{Followed, FollowedRecord, Follower, MissCause, Missed};
pub use queue::*;
pub use spsc::*;
pub use topic::*;

use std::path::PathBuf;

use crate::directory::{Directory, DirectoryEntry, DirectoryError, RingKind, RingRecord};
use crate::ring::Corruption;
use crate::segment::{validate_name, Namespace, OpenOptions, SegmentError};

/// Why a ring could not be inspected, or why a record walk stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum InspectError {
    /// Opening or validating the segment failed: not found, not a shmbus
    /// segment, wrong version or layout, poisoned, bad control block,
    /// permissions.
    Segment(SegmentError),
    /// The positions or a record in the ring are inconsistent.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// What was wrong, and where.
        corruption: Corruption,
    },
    /// The consumer released the record being copied, so the producer may
    /// have overwritten it: the walk stopped before showing stale bytes.
    /// Not a fault of the ring; inspect again for a fresh view.
    Overtaken {
        /// The segment file.
        path: PathBuf,
        /// Position of the record that was being read.
        position: u64,
        /// Consumer position seen after reading it.
        head: u64,
    },
    /// The namespace has no directory: no topic, channel or queue was
    /// ever created in it.
    NoDirectory {
        /// Where the directory would be.
        path: PathBuf,
    },
    /// The directory could not be opened or is invalid.
    Directory(DirectoryError),
    /// The directory has no ready ring of that name and kind.
    NotFound {
        /// The namespace.
        namespace: String,
        /// The name asked for.
        name: String,
        /// The kind asked for.
        kind: RingKind,
        /// The kind of the ring of that name, if it is another.
        found: Option<RingKind>,
    },
    /// A publisher overwrote the log record being copied (a live
    /// `Overwrite` log lapping the walk): the walk stopped before showing
    /// stale bytes. Not a fault of the log; inspect again for a fresh view.
    Overwritten {
        /// The log's segment file.
        path: PathBuf,
        /// Sequence number of the record that was being read.
        sequence: u64,
    },
}

impl From<SegmentError> for InspectError {
    fn from(e: SegmentError) -> Self {
        InspectError::Segment(e)
    }
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::Segment(e) => e.fmt(f),
            InspectError::Corrupt { path, corruption } => {
                write!(f, "{} is corrupt: {corruption}", path.display())
            }
            InspectError::Overtaken {
                path,
                position,
                head,
            } => write!(
                f,
                "{}: the consumer (now at {head}) passed the record at {position} while it was read (live ring; inspect again)",
                path.display()
            ),
            InspectError::NoDirectory { path } => write!(
                f,
                "no directory: {} does not exist (no topic, channel or queue was ever created in this namespace)",
                path.display()
            ),
            InspectError::Directory(e) => e.fmt(f),
            InspectError::NotFound {
                namespace,
                name,
                kind,
                found,
            } => {
                write!(f, "no {} \"{name}\" in namespace {namespace}", kind.noun())?;
                match found {
                    Some(other) => write!(f, " (\"{name}\" is {})", other.a_noun()),
                    None => Ok(()),
                }
            }
            InspectError::Overwritten { path, sequence } => write!(
                f,
                "{}: a publisher overwrote record {sequence} while it was read (live log; inspect again)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for InspectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InspectError::Segment(e) => Some(e),
            InspectError::Corrupt { corruption, .. } => Some(corruption),
            InspectError::Directory(e) => Some(e),
            InspectError::Overtaken { .. }
            | InspectError::NoDirectory { .. }
            | InspectError::NotFound { .. }
            | InspectError::Overwritten { .. } => None,
        }
    }
}

/// The ready topics in the directory of `ns`, sorted by name.
///
/// # Errors
///
/// [`InspectError::NoDirectory`] if the namespace has no directory,
/// [`InspectError::Directory`] if it cannot be opened or is invalid.
pub fn list_topics(ns: &Namespace, opts: &OpenOptions) -> Result<Vec<RingRecord>, InspectError> {
    let mut topics = list_rings(ns, opts)?;
    topics.retain(|r| r.kind() == RingKind::Broadcast);
    Ok(topics)
}

/// The ready rings of every kind in the directory of `ns`, sorted by name.
///
/// # Errors
///
/// As [`list_topics`].
pub fn list_rings(ns: &Namespace, opts: &OpenOptions) -> Result<Vec<RingRecord>, InspectError> {
    let mut rings = open_directory(ns, opts)?.list();
    rings.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rings)
}

/// Every entry of the directory of `ns` that is not free: ready rings of
/// every kind and removed ones sorted by name, then entries being created
/// and corrupt entries (with what is wrong) by entry index. An entry
/// repeating a name that an earlier entry on its probe chain holds is
/// listed as corrupt.
///
/// # Errors
///
/// As [`list_topics`].
pub fn list_directory(
    ns: &Namespace,
    opts: &OpenOptions,
) -> Result<Vec<DirectoryEntry>, InspectError> {
    let mut entries = open_directory(ns, opts)?
        .scan()
        .map_err(InspectError::Directory)?;
    // Named entries first, by name; the others by index.
    fn named(e: &DirectoryEntry) -> Option<&str> {
        match e {
            DirectoryEntry::Ready(_) | DirectoryEntry::Removed { .. } => e.name(),
            _ => None,
        }
    }
    entries.sort_by(|a, b| match (named(a), named(b)) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.entry().cmp(&b.entry()),
    });
    Ok(entries)
}

fn open_directory(ns: &Namespace, opts: &OpenOptions) -> Result<Directory, InspectError> {
    Directory::open_read_only(ns, opts).map_err(|e| match e {
        DirectoryError::Segment(SegmentError::NotFound { path }) => {
            InspectError::NoDirectory { path }
        }
        e => InspectError::Directory(e),
    })
}

/// The ready ring `name` of `kind` in the directory of `ns`, found
/// without changing anything.
fn find_ring(
    ns: &Namespace,
    name: &str,
    kind: RingKind,
    opts: &OpenOptions,
) -> Result<RingRecord, InspectError> {
    validate_name(name)?;
    match open_directory(ns, opts)?
        .lookup(name)
        .map_err(InspectError::Directory)?
    {
        Some(record) if record.kind() == kind => Ok(record),
        other => Err(not_found(ns, name, kind, other.map(|r| r.kind()))),
    }
}

fn not_found(ns: &Namespace, name: &str, kind: RingKind, found: Option<RingKind>) -> InspectError {
    InspectError::NotFound {
        namespace: ns.name().to_owned(),
        name: name.to_owned(),
        kind,
        found,
    }
}
