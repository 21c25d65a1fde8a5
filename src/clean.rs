//! Finding and removing what dead processes left in a namespace: segment
//! files no directory entry names, rings nobody is attached to, and a
//! directory nobody uses. Used by a `clean` command.
//!
//! Whether anything is held is read from the liveness locks alone (the
//! kernel drops them when their process dies, whatever it was doing): an
//! object some live process holds a lock on is never touched. What
//! [`scan`] finds, in one namespace:
//!
//! * [`Stale::Orphan`]: a ring segment file no directory entry names as a
//!   ready ring or as a ring a live process is creating (a removed ring's
//!   file its remover died before unlinking, a dead creator's half-made
//!   one, the file of a directory that is gone, or one of another build),
//!   and on which no lock is held;
//! * [`Stale::Idle`]: a ready ring no process is attached to (no lock held
//!   on its segment): its directory entry and its file, with what is in it
//!   (a channel's or a queue's unread records go with it);
//! * [`Stale::DurablePlaces`]: an idle topic that keeps the places of
//!   detached durable subscribers. Someone may come back to resume them,
//!   so they are reported apart and removed only when asked
//!   ([`CleanOptions::durable`]);
//! * [`Stale::Directory`]: the namespace's directory, when no bus uses it
//!   (no lock held on it) and every ring it names is itself stale;
//! * [`Stale::BridgeCounters`]: a Zenoh bridge's counters file
//!   ([`crate::bridge_counters`]) that no bridge holds and whose topic is
//!   not a ready topic any more. The counters of a topic that exists stay
//!   (a restarted bridge counts what it missed from them), and go with the
//!   topic when `clean` removes it as idle.
//!
//! [`scan`] changes nothing (it maps the directory and the logs
//! read-only). [`clean`] removes what a scan found, looking at each object
//! again right before removing it, so that one a process attached to (or
//! created) since the scan is left alone: a ring segment is locked whole
//! first ([`Namespace::lock_for_removal`], which fails if any liveness lock
//! is held, and while it is held nobody can attach), then its entry is
//! marked removed and the file removed; the directory goes only through
//! [`Directory::remove_if_unused`] (no other bus, nothing ready left).
//!
//! # Examples
//!
//! ```
//! use shmbus::clean::{self, CleanOptions, Stale};
//! use shmbus::{Bus, Namespace, StartAt, TopicConfig};
//!
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
//! let bus = Bus::at(&tmp, "desk")?;
//! let quotes = bus.topic("quotes", &TopicConfig::default())?;
//! let audit = bus.topic("audit", &TopicConfig::default())?;
//! let _live = quotes.subscriber(StartAt::Tail)?;            // held: never stale
//! drop(audit.durable_subscriber("s1", StartAt::Tail)?);    // a place to resume
//! drop((quotes, audit, bus));
//!
//! let ns = Namespace::at(&tmp, "desk")?;
//! assert_eq!(clean::namespaces(&tmp)?, ["desk"]);
//! let found = clean::scan(&ns)?;                           // a dry run: changes nothing
//! assert_eq!(found.objects.len(), 1);
//! assert_eq!(found.objects[0].stale, Stale::DurablePlaces(vec!["s1".to_owned()]));
//! let done = clean::clean(&ns, &found, &CleanOptions::default())?;
//! assert!(done.removed.is_empty(), "durable places stay unless asked");
//! let done = clean::clean(&ns, &found, &CleanOptions { durable: true })?;
//! assert_eq!(done.removed.len(), 1);
//! # drop((_live, ns));
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use crate::bridge_counters::{self, BridgeCountersError};
use crate::directory::{Directory, DirectoryEntry, DirectoryError, RingKind, RingRecord};
use crate::inspect::TopicInspector;
use crate::layout::{participant, SegmentKind};
use crate::segment::{validate_name, Namespace, OpenOptions, SegmentError};

/// File name of a namespace's directory segment.
const DIRECTORY_FILE: &str = "directory.dir";

/// Why an object is stale (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stale {
    /// A ring segment file no directory entry names (and nobody holds).
    Orphan,
    /// A ready ring nobody is attached to.
    Idle,
    /// An idle topic keeping the places of these detached durable
    /// subscribers: removed only when asked.
    DurablePlaces(Vec<String>),
    /// The namespace's directory, which no bus uses and whose every ring
    /// is stale.
    Directory,
    /// A bridge counters file no bridge holds, of a topic that is gone.
    BridgeCounters,
}

/// One stale object of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleObject {
    /// Why it is stale.
    pub stale: Stale,
    /// Its file in the namespace directory (`None` for a ready ring whose
    /// file is missing).
    pub file: Option<String>,
    /// The directory's record of the ring, for an idle one.
    pub ring: Option<RingRecord>,
}

impl std::fmt::Display for StaleObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.stale, &self.ring) {
            (Stale::Orphan, _) => f.write_str("segment no directory entry names")?,
            (Stale::Directory, _) => f.write_str("directory no bus uses")?,
            (Stale::BridgeCounters, _) => {
                f.write_str("bridge counters of a topic that is gone, no bridge holds them")?
            }
            (Stale::Idle, Some(r)) => write!(f, "{} \"{}\" nobody is attached to", r.kind(), r.name)?,
            (Stale::DurablePlaces(names), Some(r)) => write!(
                f,
                "{} \"{}\" nobody is attached to, keeping the places of detached durable subscribers {}",
                r.kind(),
                r.name,
                names.join(", ")
            )?,
            (_, None) => f.write_str("ring nobody is attached to")?,
        }
        match &self.file {
            Some(file) => write!(f, " ({file})"),
            None => f.write_str(" (its file is missing)"),
        }
    }
}

/// What [`scan`] found in one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleScan {
    /// The namespace.
    pub namespace: String,
    /// Its directory on disk.
    pub path: PathBuf,
    /// Every stale object, rings before the directory.
    pub objects: Vec<StaleObject>,
    /// Segment files live processes hold (left alone).
    pub live: Vec<String>,
    /// Why the directory could not be read, if it could not (its rings'
    /// files then count as named by nobody, and the directory is never
    /// removed by [`clean`]).
    pub directory_problem: Option<String>,
}

/// What [`clean`] may remove beyond what is plainly stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanOptions {
    /// Also remove idle topics that keep detached durable subscribers'
    /// places ([`Stale::DurablePlaces`]); those subscribers then start
    /// afresh wherever they come back.
    pub durable: bool,
}

/// What [`clean`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// The objects removed.
    pub removed: Vec<StaleObject>,
    /// The objects left, each with why (held by a process since the
    /// scan, changed since the scan, or not asked for).
    pub kept: Vec<(StaleObject, String)>,
}

/// The namespaces under `base`: its directories with a valid namespace
/// name, sorted (symbolic links and other files are passed over). Empty if
/// `base` does not exist.
///
/// # Errors
///
/// `base` cannot be read.
pub fn namespaces(base: impl AsRef<Path>) -> Result<Vec<String>, SegmentError> {
    let base = base.as_ref();
    let entries = match std::fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SegmentError::io("read_dir", base, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| validate_name(name).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The detached durable subscribers of topic `record`, read from its log
/// (read-only): their names.
fn durable_places(ns: &Namespace, record: &RingRecord) -> Result<Vec<String>, String> {
    let topic = TopicInspector::open_topic(ns, record.clone(), &OpenOptions::default())
        .map_err(|e| e.to_string())?;
    let snapshot = topic.snapshot().map_err(|e| e.to_string())?;
    Ok(snapshot
        .subscribers
        .into_iter()
        .filter(|s| s.state == participant::DETACHED && !s.alive)
        .filter_map(|s| s.name)
        .collect())
}

/// An idle ring as a stale object: idle, or keeping durable places.
fn idle(ns: &Namespace, record: &RingRecord, file: Option<String>) -> StaleObject {
    let places = if record.kind() == RingKind::Broadcast && file.is_some() {
        // A log that cannot be read keeps no place anyone can resume.
        durable_places(ns, record).unwrap_or_default()
    } else {
        Vec::new()
    };
    StaleObject {
        stale: if places.is_empty() {
            Stale::Idle
        } else {
            Stale::DurablePlaces(places)
        },
        file,
        ring: Some(record.clone()),
    }
}

/// What the directory says of ring file `segment` (of segment kind
/// `kind`): named by a ready ring (its record), being made by a live
/// creator, or named by nobody.
enum Named {
    Ready(RingRecord),
    Creating,
    Nobody,
}

fn named_by(entries: &[DirectoryEntry], segment: &str, kind: SegmentKind) -> Named {
    let Some((ring, entry, epoch, _)) = RingKind::parse_segment_name(segment) else {
        return Named::Nobody;
    };
    if ring.segment_kind() != kind {
        return Named::Nobody;
    }
    for e in entries {
        match e {
            DirectoryEntry::Ready(r) if r.segment == segment && r.kind() == ring => {
                return Named::Ready(r.clone())
            }
            DirectoryEntry::Creating {
                entry: i,
                epoch: at,
                creator_alive: true,
                ..
            } if (*i, *at) == (entry, epoch) => return Named::Creating,
            _ => {}
        }
    }
    Named::Nobody
}

/// Finds what no live process holds in namespace `ns` (see the module
/// docs). Changes nothing: the directory and the logs are mapped
/// read-only, and liveness locks are only asked about.
///
/// # Errors
///
/// The namespace cannot be listed, or a lock cannot be queried.
pub fn scan(ns: &Namespace) -> Result<StaleScan, DirectoryError> {
    let segments = ns.segments()?;
    let has_directory = segments
        .iter()
        .any(|(_, kind)| *kind == SegmentKind::Directory);
    let mut directory_problem = None;
    let entries = if has_directory {
        match Directory::open_read_only(ns, &OpenOptions::default()).and_then(|d| d.scan()) {
            Ok(entries) => entries,
            Err(e) => {
                directory_problem = Some(e.to_string());
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let mut objects = Vec::new();
    let mut live = Vec::new();
    let mut ready_files = Vec::new();
    for (segment, kind) in &segments {
        if *kind == SegmentKind::Directory {
            continue;
        }
        let file = format!("{segment}.{}", kind.name());
        let held = match ns.held_lock_slots(segment, *kind) {
            Ok(held) => held,
            Err(SegmentError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let named = named_by(&entries, segment, *kind);
        if let Named::Ready(r) = &named {
            ready_files.push(r.segment.clone());
        }
        if !held.is_empty() {
            live.push(file);
            continue;
        }
        match named {
            Named::Creating => live.push(file),
            Named::Ready(record) => objects.push(idle(ns, &record, Some(file))),
            Named::Nobody => objects.push(StaleObject {
                stale: Stale::Orphan,
                file: Some(file),
                ring: None,
            }),
        }
    }
    // Ready rings whose file is missing: entries nobody can attach to.
    for e in &entries {
        if let DirectoryEntry::Ready(r) = e {
            if !ready_files.contains(&r.segment) {
                objects.push(idle(ns, r, None));
            }
        }
    }
    for topic in bridge_counters::topics(ns).unwrap_or_default() {
        let file = format!("{topic}.{}", bridge_counters::FILE_SUFFIX);
        match bridge_counters::is_held(&bridge_counters::path(ns, &topic)) {
            Ok(true) => live.push(file),
            Ok(false) if !topic_ready(&entries, &topic) && directory_problem.is_none() => objects
                .push(StaleObject {
                    stale: Stale::BridgeCounters,
                    file: Some(file),
                    ring: None,
                }),
            // Its topic stays, or it cannot be told (left alone).
            _ => {}
        }
    }
    if has_directory && directory_problem.is_none() {
        let held =
            match ns.held_lock_slots(crate::directory::DIRECTORY_SEGMENT, SegmentKind::Directory) {
                Ok(held) => held,
                Err(SegmentError::NotFound { .. }) => vec![0],
                Err(e) => return Err(e.into()),
            };
        let live_creation = entries.iter().any(|e| {
            matches!(
                e,
                DirectoryEntry::Creating {
                    creator_alive: true,
                    ..
                }
            )
        });
        if held.is_empty() && !live_creation && live.is_empty() {
            objects.push(StaleObject {
                stale: Stale::Directory,
                file: Some(DIRECTORY_FILE.to_owned()),
                ring: None,
            });
        } else if !held.is_empty() {
            live.push(DIRECTORY_FILE.to_owned());
        }
    }
    Ok(StaleScan {
        namespace: ns.name().to_owned(),
        path: ns.path().to_owned(),
        objects,
        live,
        directory_problem,
    })
}

/// Removes what `scan` found in `ns`, each object only if it is still
/// stale right before its removal (see the module docs); topics keeping
/// detached durable subscribers' places only with
/// [`CleanOptions::durable`]. An object held or changed since the scan is
/// kept, and said so in the report.
///
/// # Errors
///
/// The directory cannot be opened, a lock cannot be taken or queried, or a
/// file cannot be removed.
pub fn clean(
    ns: &Namespace,
    scan: &StaleScan,
    options: &CleanOptions,
) -> Result<CleanReport, DirectoryError> {
    let mut report = CleanReport::default();
    let directory = if scan.directory_problem.is_none() {
        Directory::open_existing(ns, &OpenOptions::default())?
    } else {
        None
    };
    for object in &scan.objects {
        let kept = match &object.stale {
            Stale::Directory => continue,
            Stale::DurablePlaces(_) if !options.durable => {
                Some("it keeps detached durable subscribers' places (not asked to remove them)")
            }
            Stale::Orphan => remove_orphan(ns, directory.as_ref(), object)?,
            Stale::BridgeCounters => remove_bridge_counters(ns, directory.as_ref(), object)?,
            Stale::Idle | Stale::DurablePlaces(_) => {
                remove_idle(ns, directory.as_ref(), object, options)?
            }
        };
        match kept {
            None => report.removed.push(object.clone()),
            Some(why) => report.kept.push((object.clone(), why.to_owned())),
        }
    }
    if let Some(object) = scan.objects.iter().find(|o| o.stale == Stale::Directory) {
        let removed = match &directory {
            Some(directory) => directory.remove_if_unused(ns)?,
            None => false,
        };
        if removed {
            report.removed.push(object.clone());
        } else {
            report.kept.push((
                object.clone(),
                "a bus uses it, or it names a ring that stays".to_owned(),
            ));
        }
    }
    Ok(report)
}

/// The segment name and kind of `object`'s file.
fn split_file(file: &str) -> Option<(&str, SegmentKind)> {
    let (segment, suffix) = file.rsplit_once('.')?;
    let kind = RingKind::ALL
        .into_iter()
        .map(RingKind::segment_kind)
        .find(|k| k.name() == suffix)?;
    Some((segment, kind))
}

/// Removes an orphan file if it is still named by nobody and held by
/// nobody; `Some(why)` if it stays.
fn remove_orphan(
    ns: &Namespace,
    directory: Option<&Directory>,
    object: &StaleObject,
) -> Result<Option<&'static str>, DirectoryError> {
    let Some((segment, kind)) = object.file.as_deref().and_then(split_file) else {
        return Ok(Some("its file name is not a ring's"));
    };
    let entries = match directory {
        Some(d) => d.scan()?,
        None => Vec::new(),
    };
    if !matches!(named_by(&entries, segment, kind), Named::Nobody) {
        return Ok(Some("a directory entry names it since the scan"));
    }
    match ns.lock_for_removal(segment, kind) {
        Ok(Some(lock)) => match lock.remove(ns) {
            Ok(()) | Err(SegmentError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        },
        Ok(None) => Ok(Some("a live process holds it since the scan")),
        Err(SegmentError::NotFound { .. }) => Ok(Some("it is gone already")),
        Err(e) => Err(e.into()),
    }
}

/// Whether `entries` hold a ready topic `name`.
fn topic_ready(entries: &[DirectoryEntry], name: &str) -> bool {
    entries.iter().any(|e| {
        matches!(e, DirectoryEntry::Ready(r) if r.name == name && r.kind() == RingKind::Broadcast)
    })
}

/// Removes the bridge counters file of `topic` if no bridge holds it;
/// `Some(why)` if it stays. A bridge that takes it between the look and
/// the unlink keeps counting in the unlinked file until its next start.
fn unlink_bridge_counters(
    ns: &Namespace,
    topic: &str,
) -> Result<Option<&'static str>, DirectoryError> {
    let path = bridge_counters::path(ns, topic);
    match bridge_counters::is_held(&path) {
        Ok(true) => return Ok(Some("a bridge holds it since the scan")),
        Ok(false) => {}
        Err(BridgeCountersError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Some("it is gone already"))
        }
        Err(BridgeCountersError::Io { path, op, source }) => {
            return Err(SegmentError::io(op, &path, source).into())
        }
        Err(_) => return Ok(Some("it is not a regular file")),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some("it is gone already")),
        Err(e) => Err(SegmentError::io("remove", &path, e).into()),
    }
}

/// Removes a stale bridge counters file if its topic is still not ready
/// and no bridge holds it; `Some(why)` if it stays.
fn remove_bridge_counters(
    ns: &Namespace,
    directory: Option<&Directory>,
    object: &StaleObject,
) -> Result<Option<&'static str>, DirectoryError> {
    let Some(topic) = object
        .file
        .as_deref()
        .and_then(|f| f.strip_suffix(bridge_counters::FILE_SUFFIX))
        .and_then(|f| f.strip_suffix('.'))
    else {
        return Ok(Some("its file name is not a bridge counters file's"));
    };
    let entries = match directory {
        Some(d) => d.scan()?,
        None => Vec::new(),
    };
    if topic_ready(&entries, topic) {
        return Ok(Some("its topic was made again since the scan"));
    }
    unlink_bridge_counters(ns, topic)
}

/// Removes an idle ring (its entry, then its file) if nobody attached to
/// it since the scan; `Some(why)` if it stays.
fn remove_idle(
    ns: &Namespace,
    directory: Option<&Directory>,
    object: &StaleObject,
    options: &CleanOptions,
) -> Result<Option<&'static str>, DirectoryError> {
    let (Some(directory), Some(record)) = (directory, &object.ring) else {
        return Ok(Some("the directory that named it is gone"));
    };
    // Held whole while the entry is removed: nobody can attach meanwhile.
    let lock = match object.file.as_deref().and_then(split_file) {
        Some((segment, kind)) => match ns.lock_for_removal(segment, kind) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return Ok(Some("a live process attached to it since the scan")),
            Err(SegmentError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if lock.is_some() && record.kind() == RingKind::Broadcast && !options.durable {
        let places = durable_places(ns, record).unwrap_or_default();
        if !places.is_empty() {
            return Ok(Some(
                "it keeps detached durable subscribers' places since the scan",
            ));
        }
    }
    // Only the epoch scanned: a ring made again since is another ring.
    match directory.remove(ns, &record.name, record.kind(), Some(record.epoch)) {
        Ok(_) => {}
        Err(DirectoryError::NotFound { .. }) => {
            return Ok(Some("its directory entry changed since the scan"))
        }
        Err(e) => return Err(e),
    }
    // The entry's removal unlinked the file under our lock.
    drop(lock);
    // A removed topic's bridge counters go with it (unless a bridge holds
    // them, which then counts in them until it stops).
    if record.kind() == RingKind::Broadcast && bridge_counters::path(ns, &record.name).exists() {
        unlink_bridge_counters(ns, &record.name)?;
    }
    Ok(None)
}
