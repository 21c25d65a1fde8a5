//! Removing a namespace as a whole: every ring's segment, the directory,
//! and the namespace's directory on disk, only when no live process holds
//! any of them.
//!
//! Who holds what is told by the liveness locks alone: a participant's
//! write lock on its slot of a ring's segment, a bus's read lock on the
//! directory's users slot ([`lock_slot::DIRECTORY_USERS`]), a creator's
//! lock on its directory entry. Removal goes in three steps, and changes
//! nothing unless all of them can be done:
//!
//! 1. the remover turns its own read lock on the directory's users slot
//!    into the write lock (it fails if any other bus has the namespace
//!    open), so no process can open the namespace until it is gone;
//! 2. every ring segment is locked whole ([`Namespace::lock_for_removal`]:
//!    it fails if any liveness lock is held, and while it is held nobody
//!    can attach);
//! 3. only then is every segment removed (flagged removed, unlinked), the
//!    directory last, then the namespace's directory on disk if nothing
//!    else is in it.
//!
//! A refusal ([`DirectoryError::NamespaceInUse`]) lists every segment held
//! and by whom, and leaves everything as it was.

use crate::bridge_counters;
use crate::layout::{lock_slot, SegmentKind};
use crate::segment::{Namespace, RemovalLock, SegmentError};

use super::{Directory, DirectoryError, RingKind, DIRECTORY_SEGMENT};

/// A segment of a namespace that live processes hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldSegment {
    /// Its file in the namespace directory.
    pub file: String,
    /// The ring it is, when its name says (kind, ring name).
    pub ring: Option<(RingKind, String)>,
    /// Who holds it, one line per liveness lock held ("publisher slot 0",
    /// "a bus using the namespace").
    pub holders: Vec<String>,
}

impl std::fmt::Display for HeldSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ring {
            Some((kind, name)) => write!(f, "{} \"{name}\" ({})", kind.noun(), self.file)?,
            None => f.write_str(&self.file)?,
        }
        write!(f, ": {}", self.holders.join(", "))
    }
}

/// What liveness lock `slot` of a segment of `kind` stands for.
pub fn describe_lock(kind: SegmentKind, slot: u64) -> String {
    let index = |base: u64| slot - base;
    match kind {
        SegmentKind::Spsc => match slot {
            lock_slot::SPSC_PRODUCER => "the producer".to_owned(),
            lock_slot::SPSC_CONSUMER => "the consumer".to_owned(),
            _ => format!("lock {slot}"),
        },
        SegmentKind::Broadcast | SegmentKind::Queue => {
            let (reader, writer) = if kind == SegmentKind::Broadcast {
                ("subscriber", "publisher")
            } else {
                ("consumer", "producer")
            };
            if slot >= lock_slot::PUBLISHER_BASE {
                format!("{writer} slot {}", index(lock_slot::PUBLISHER_BASE))
            } else if slot >= lock_slot::SUBSCRIBER_BASE {
                format!("{reader} slot {}", index(lock_slot::SUBSCRIBER_BASE))
            } else {
                format!("lock {slot}")
            }
        }
        SegmentKind::Directory => {
            if slot == lock_slot::DIRECTORY_USERS {
                "a bus using the namespace".to_owned()
            } else if slot >= lock_slot::ENTRY_BASE {
                let at = index(lock_slot::ENTRY_BASE);
                format!(
                    "the creator of entry {} (epoch {})",
                    at / lock_slot::ENTRY_STRIDE,
                    at % lock_slot::ENTRY_STRIDE
                )
            } else {
                format!("lock {slot}")
            }
        }
    }
}

/// The segment `name` of `kind` as a [`HeldSegment`], if live processes
/// hold `slots` of it.
fn held(name: &str, kind: SegmentKind, slots: &[u64]) -> Option<HeldSegment> {
    if slots.is_empty() {
        return None;
    }
    Some(HeldSegment {
        file: format!("{name}.{}", kind.name()),
        ring: RingKind::parse_segment_name(name).map(|(k, _, _, n)| (k, n.to_owned())),
        holders: slots.iter().map(|&s| describe_lock(kind, s)).collect(),
    })
}

/// Every ring segment of `ns` (every segment but the directory).
fn ring_segments(ns: &Namespace) -> Result<Vec<(String, SegmentKind)>, SegmentError> {
    let mut segments = ns.segments()?;
    segments.retain(|(_, kind)| *kind != SegmentKind::Directory);
    Ok(segments)
}

/// Removes namespace `ns` as a whole (see the module docs); `directory` is
/// the caller's handle on its directory, if it has one (a namespace whose
/// directory is gone may still hold ring files).
pub(crate) fn remove_namespace(
    ns: &Namespace,
    directory: Option<&Directory>,
) -> Result<(), DirectoryError> {
    let in_use = |held: Vec<HeldSegment>| DirectoryError::NamespaceInUse {
        namespace: ns.name().to_owned(),
        held,
    };
    let mut held_segments = Vec::new();
    let dir = directory.map(Directory::segment_handle);
    // 1. No bus but ours, and none can come.
    let owned = match &dir {
        Some(dir) => {
            if !dir.is_writable() {
                return Err(SegmentError::InvalidConfig {
                    reason: "a directory opened read-only cannot remove its namespace".to_owned(),
                }
                .into());
            }
            dir.try_lock(lock_slot::DIRECTORY_USERS)?
        }
        None => false,
    };
    let give_back = || {
        if owned {
            if let Some(dir) = &dir {
                let _ = dir.try_read_lock(lock_slot::DIRECTORY_USERS);
            }
        }
    };
    let result = (|| {
        if let Some(dir) = &dir {
            // Other buses' read locks, live creators' entry locks; ours
            // are not counted.
            let slots = dir.held_lock_slots()?;
            held_segments.extend(held(DIRECTORY_SEGMENT, SegmentKind::Directory, &slots));
        }
        let rings = ring_segments(ns)?;
        for (name, kind) in &rings {
            match ns.held_lock_slots(name, *kind) {
                Ok(slots) => held_segments.extend(held(name, *kind, &slots)),
                Err(SegmentError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // A running Zenoh bridge holds its topics' counters files.
        for topic in bridge_counters::topics(ns).unwrap_or_default() {
            let path = bridge_counters::path(ns, &topic);
            if bridge_counters::is_held(&path).unwrap_or(false) {
                let pid = bridge_counters::read(ns, &topic)
                    .ok()
                    .flatten()
                    .map_or(0, |s| s.pid);
                held_segments.push(HeldSegment {
                    file: format!("{topic}.{}", bridge_counters::FILE_SUFFIX),
                    ring: None,
                    holders: vec![format!("the Zenoh bridge (pid {pid})")],
                });
            }
        }
        if !held_segments.is_empty() {
            return Err(in_use(std::mem::take(&mut held_segments)));
        }
        // 2. Every ring locked whole: from here nobody can attach.
        let mut locks: Vec<RemovalLock> = Vec::with_capacity(rings.len());
        for (name, kind) in &rings {
            match ns.lock_for_removal(name, *kind) {
                Ok(Some(lock)) => locks.push(lock),
                Ok(None) => {
                    let slots = ns.held_lock_slots(name, *kind).unwrap_or_default();
                    let mut segment = held(name, *kind, &slots).unwrap_or(HeldSegment {
                        file: format!("{name}.{}", kind.name()),
                        ring: None,
                        holders: Vec::new(),
                    });
                    if segment.holders.is_empty() {
                        segment
                            .holders
                            .push("a process that attached meanwhile".to_owned());
                    }
                    return Err(in_use(vec![segment]));
                }
                Err(SegmentError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(locks)
    })();
    let locks = match result {
        Ok(locks) => locks,
        Err(e) => {
            give_back();
            return Err(e);
        }
    };
    // 3. Remove.
    for lock in locks {
        match lock.remove(ns) {
            Ok(()) | Err(SegmentError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The bridge's counters files (none held, checked above).
    for topic in bridge_counters::topics(ns).unwrap_or_default() {
        let path = bridge_counters::path(ns, &topic);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SegmentError::io("remove", &path, e).into()),
        }
    }
    if dir.is_some() {
        match crate::segment::Segment::remove(ns, DIRECTORY_SEGMENT, SegmentKind::Directory) {
            Ok(()) | Err(SegmentError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    ns.remove_if_empty();
    Ok(())
}

impl Directory {
    /// Removes the namespace `ns` of this directory as a whole: every
    /// ring's segment, the directory itself, then the namespace's
    /// directory on disk (if nothing else is in it), only if no live
    /// process holds any of them: no other bus has the namespace open (a
    /// bus of this process other than this handle's counts too), no
    /// producer, consumer, publisher or subscriber is attached to any ring
    /// (this process's included), no ring is being created, no Zenoh
    /// bridge holds a topic's counters file (those files go too). This
    /// handle is unusable after a removal.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NamespaceInUse`] listing every segment held and by
    /// whom, with nothing removed; a read-only handle, a lock that cannot
    /// be queried, or a file that cannot be removed.
    pub fn remove_namespace(&self, ns: &Namespace) -> Result<(), DirectoryError> {
        remove_namespace(ns, Some(self))
    }
}
