//! The Zenoh bridge's counters for one topic: the file
//! `<namespace dir>/<topic>.bridge` ([`BridgeCountersLayout`]).
//!
//! `shmbus-bridge` (the `bridge/` package, which the core never depends
//! on) writes it through [`BridgeCounters`]; `ring-dump` and
//! `shmbus-bridge --stats` read it through [`read`] and [`read_all`]. This
//! module is the one definition both sides use.
//!
//! The bridge maps the file and writes each counter with single atomic
//! stores from the one thread that owns it. A reader never maps it: it
//! copies the bytes with `pread(2)` and checks them as hostile input
//! (magic, size, a file too short or truncated meanwhile), so a garbage or
//! truncated file is an error and never a panic or a `SIGBUS`. A counter
//! the bridge stores during the copy comes out old or new.
//!
//! The file outlives the bridge on purpose: the origins table is how a
//! restarted importer counts what was sent while it was down. It is
//! removed with the namespace (`ring-dump remove-namespace`), and by
//! `ring-dump clean` once no bridge holds it and its topic is gone.
//!
//! A bridge holds an OFD write lock on the file
//! ([`BRIDGE_COUNTERS_LOCK`]) while it bridges the topic, so a second
//! bridge on the same namespace and topic (which would re-export what the
//! first imported) is refused, and a reader can tell whether a bridge is
//! running ([`BridgeCountersSnapshot::bridged`]) without taking anything.

use core::mem::offset_of;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::layout::{
    BridgeCountersLayout, BridgeOrigin, BRIDGE_COUNTERS_LOCK, BRIDGE_COUNTERS_MAGIC, BRIDGE_ORIGINS,
};
use crate::segment::{lock, validate_name, Namespace};
use crate::sync::{StatCounter, StatOrdering::Relaxed};

/// The suffix of a bridge counters file (`<topic>.bridge`).
pub const FILE_SUFFIX: &str = "bridge";

/// Bytes of the layout this build writes and reads.
pub const LAYOUT_LEN: usize = core::mem::size_of::<BridgeCountersLayout>();

/// Bytes the bridge gives the file (one page, more than the layout).
const FILE_LEN: u64 = 4096;
const _: () = assert!(LAYOUT_LEN as u64 <= FILE_LEN);
const _: () = assert!(LAYOUT_LEN == 640);

/// Why a counters file could not be opened or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeCountersError {
    /// A system call on the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The file is not a bridge counters file of this layout.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A live bridge holds the file: it bridges this topic already.
    Held {
        /// The topic.
        topic: String,
        /// The pid the file names as its holder.
        pid: u64,
    },
}

impl std::fmt::Display for BridgeCountersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeCountersError::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            BridgeCountersError::Invalid { path, reason } => write!(
                f,
                "{} is not a bridge counters file: {reason}",
                path.display()
            ),
            BridgeCountersError::Held { topic, pid } => write!(
                f,
                "topic \"{topic}\" is already bridged in this namespace by pid {pid} \
                 (run one bridge per namespace)"
            ),
        }
    }
}

impl std::error::Error for BridgeCountersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeCountersError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> BridgeCountersError + 'a {
    move |source| BridgeCountersError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// Path of the counters file of `topic` in namespace `ns`.
pub fn path(ns: &Namespace, topic: &str) -> PathBuf {
    ns.path().join(format!("{topic}.{FILE_SUFFIX}"))
}

/// One counter of the file, written by one side of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Records sent to Zenoh (exporter).
    Exported,
    /// Their payload bytes (exporter).
    ExportedBytes,
    /// Records the exporter's subscriber was lapped over (exporter).
    ExportMissed,
    /// Imported records the exporter did not send back (exporter).
    EchoSkipped,
    /// Records published on the local topic (importer).
    Imported,
    /// Their payload bytes (importer).
    ImportedBytes,
    /// Records sent but never received (importer).
    Gaps,
    /// Messages refused (importer).
    Rejected,
}

/// Where one exporting origin's stream stands at the importer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginPosition {
    /// The exporting bridge's run (random, never 0).
    pub origin: u64,
    /// Its last sequence the importer published.
    pub last_seq: u64,
}

/// The counters of one bridged topic, as read from its file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeCountersSnapshot {
    /// The topic.
    pub topic: String,
    /// The bridge that last opened the file.
    pub pid: u64,
    /// Whether a bridge holds the file's lock now (is bridging the topic).
    pub bridged: bool,
    /// Records sent to Zenoh.
    pub exported: u64,
    /// Their payload bytes.
    pub exported_bytes: u64,
    /// Records the exporter's subscriber was lapped over (`Overwrite`).
    pub export_missed: u64,
    /// Imported records the exporter did not send back.
    pub echo_skipped: u64,
    /// Records published on the local topic.
    pub imported: u64,
    /// Their payload bytes.
    pub imported_bytes: u64,
    /// Records the sequence numbers say were sent but never arrived.
    pub gaps: u64,
    /// Messages refused: malformed, too large, own origin, repeated.
    pub rejected: u64,
    /// The last sequence imported of each origin remembered, most recently
    /// written first.
    pub origins: Vec<OriginPosition>,
}

impl BridgeCountersSnapshot {
    /// Reads the counters from the bytes of a counters file of `topic`;
    /// `bridged` is left false. Never panics, whatever the bytes.
    ///
    /// # Errors
    ///
    /// [`BridgeCountersError::Invalid`] (with `path` in it) if the bytes
    /// are too short, do not start with the magic, or give another size.
    pub fn from_bytes(
        topic: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<BridgeCountersSnapshot, BridgeCountersError> {
        let invalid = |reason: String| BridgeCountersError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if bytes.len() < LAYOUT_LEN {
            return Err(invalid(format!(
                "{} bytes, the layout has {LAYOUT_LEN}",
                bytes.len()
            )));
        }
        let word = |offset: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[offset..offset + 8]);
            u64::from_ne_bytes(w)
        };
        if word(0) != BRIDGE_COUNTERS_MAGIC {
            return Err(invalid(format!("magic {:#018x}", word(0))));
        }
        let size = word(offset_of!(BridgeCountersLayout, size));
        if size != LAYOUT_LEN as u64 {
            return Err(invalid(format!(
                "its layout has {size} bytes, this build's {LAYOUT_LEN}"
            )));
        }
        let origins_at = offset_of!(BridgeCountersLayout, origins);
        let entry = core::mem::size_of::<BridgeOrigin>();
        let mut origins: Vec<(u64, OriginPosition)> = (0..BRIDGE_ORIGINS)
            .map(|i| origins_at + i * entry)
            .map(|e| {
                let position = OriginPosition {
                    origin: word(e + offset_of!(BridgeOrigin, origin)),
                    last_seq: word(e + offset_of!(BridgeOrigin, last_seq)),
                };
                (word(e + offset_of!(BridgeOrigin, touched)), position)
            })
            .filter(|(_, p)| p.origin != 0)
            .collect();
        origins.sort_by_key(|(touched, _)| std::cmp::Reverse(*touched));
        Ok(BridgeCountersSnapshot {
            topic: topic.to_owned(),
            pid: word(offset_of!(BridgeCountersLayout, pid)),
            bridged: false,
            exported: word(offset_of!(BridgeCountersLayout, exported)),
            exported_bytes: word(offset_of!(BridgeCountersLayout, exported_bytes)),
            export_missed: word(offset_of!(BridgeCountersLayout, export_missed)),
            echo_skipped: word(offset_of!(BridgeCountersLayout, echo_skipped)),
            imported: word(offset_of!(BridgeCountersLayout, imported)),
            imported_bytes: word(offset_of!(BridgeCountersLayout, imported_bytes)),
            gaps: word(offset_of!(BridgeCountersLayout, gaps)),
            rejected: word(offset_of!(BridgeCountersLayout, rejected)),
            origins: origins.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

/// Opens `path` for reading without following a link, and checks it is a
/// regular file.
fn open_for_reading(path: &Path) -> Result<File, BridgeCountersError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io_error(path, "open"))?;
    let meta = file.metadata().map_err(io_error(path, "fstat"))?;
    if !meta.is_file() {
        return Err(BridgeCountersError::Invalid {
            path: path.to_owned(),
            reason: "not a regular file".to_owned(),
        });
    }
    Ok(file)
}

/// Reads the counters of `topic` in `ns` without locking or writing
/// anything; `Ok(None)` if the topic has no counters file (it was never
/// bridged).
///
/// # Errors
///
/// The file cannot be read, or is not a counters file of this layout.
pub fn read(
    ns: &Namespace,
    topic: &str,
) -> Result<Option<BridgeCountersSnapshot>, BridgeCountersError> {
    let path = path(ns, topic);
    let file = match open_for_reading(&path) {
        Err(BridgeCountersError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        other => other?,
    };
    let mut bytes = vec![0u8; LAYOUT_LEN];
    let mut filled = 0;
    while filled < LAYOUT_LEN {
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(&path, "read")(e)),
        }
    }
    let mut snapshot = BridgeCountersSnapshot::from_bytes(topic, &path, &bytes[..filled])?;
    snapshot.bridged = lock::is_held(file.as_fd(), BRIDGE_COUNTERS_LOCK)
        .map_err(io_error(&path, "query the lock of"))?;
    Ok(Some(snapshot))
}

/// The topics of `ns` that have a counters file, sorted by name.
///
/// # Errors
///
/// The namespace directory cannot be listed.
pub fn topics(ns: &Namespace) -> Result<Vec<String>, BridgeCountersError> {
    let entries = std::fs::read_dir(ns.path()).map_err(io_error(ns.path(), "list"))?;
    let mut topics: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let topic = name.strip_suffix(FILE_SUFFIX)?.strip_suffix('.')?;
            validate_name(topic).ok()?;
            Some(topic.to_owned())
        })
        .collect();
    topics.sort();
    Ok(topics)
}

/// One topic's counters as [`read_all`] gives them: read, or why not.
pub type TopicCounters = Result<BridgeCountersSnapshot, BridgeCountersError>;

/// The counters of every bridged topic of `ns`, sorted by topic: each one
/// read, or why it could not be.
///
/// # Errors
///
/// The namespace directory cannot be listed.
pub fn read_all(ns: &Namespace) -> Result<Vec<(String, TopicCounters)>, BridgeCountersError> {
    Ok(topics(ns)?
        .into_iter()
        .filter_map(|topic| match read(ns, &topic) {
            Ok(None) => None,
            Ok(Some(s)) => Some((topic, Ok(s))),
            Err(e) => Some((topic, Err(e))),
        })
        .collect())
}

/// Whether a bridge holds the counters file at `path` now.
///
/// # Errors
///
/// The file cannot be opened or its lock queried.
pub fn is_held(path: &Path) -> Result<bool, BridgeCountersError> {
    let file = open_for_reading(path)?;
    lock::is_held(file.as_fd(), BRIDGE_COUNTERS_LOCK).map_err(io_error(path, "query the lock of"))
}

/// The counters file of one topic, mapped and locked by the bridge that
/// bridges it.
pub struct BridgeCounters {
    map: MmapMut,
    // Holds the lock for as long as the counters are open.
    _file: File,
    path: PathBuf,
}

impl BridgeCounters {
    /// Opens (creating if need be) the counters file of `topic` in `ns`
    /// and takes its lock. A file of another layout (or garbage) is
    /// started afresh; one of this layout keeps its counters and origins.
    ///
    /// # Errors
    ///
    /// [`BridgeCountersError::Held`] if another live bridge holds it; the
    /// file cannot be created, locked or mapped.
    pub fn open_locked(ns: &Namespace, topic: &str) -> Result<BridgeCounters, BridgeCountersError> {
        validate_name(topic).map_err(|e| BridgeCountersError::Invalid {
            path: path(ns, topic),
            reason: e.to_string(),
        })?;
        let path = path(ns, topic);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_error(&path, "open"))?;
        if !lock::try_lock(file.as_fd(), BRIDGE_COUNTERS_LOCK).map_err(io_error(&path, "lock"))? {
            let pid = read(ns, topic).ok().flatten().map_or(0, |s| s.pid);
            return Err(BridgeCountersError::Held {
                topic: topic.to_owned(),
                pid,
            });
        }
        let meta = file.metadata().map_err(io_error(&path, "fstat"))?;
        if !meta.is_file() {
            return Err(BridgeCountersError::Invalid {
                path,
                reason: "not a regular file".to_owned(),
            });
        }
        if meta.len() < FILE_LEN {
            file.set_len(FILE_LEN).map_err(io_error(&path, "resize"))?;
        }
        // SAFETY: a regular file of FILE_LEN bytes or more that we hold the lock of; the bridge
        // never truncates it, and every access to the mapped words is atomic (`counters`).
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io_error(&path, "map"))?;
        let counters = BridgeCounters {
            map,
            _file: file,
            path,
        };
        let c = counters.layout();
        if c.magic.load(Relaxed) != BRIDGE_COUNTERS_MAGIC
            || c.size.load(Relaxed) != LAYOUT_LEN as u64
        {
            for counter in counters.all_counters() {
                counter.store(0, Relaxed);
            }
            c.size.store(LAYOUT_LEN as u64, Relaxed);
            c.magic.store(BRIDGE_COUNTERS_MAGIC, Relaxed);
        }
        c.pid.store(u64::from(std::process::id()), Relaxed);
        Ok(counters)
    }

    fn layout(&self) -> &BridgeCountersLayout {
        // SAFETY: the map is FILE_LEN >= LAYOUT_LEN bytes, page-aligned (so aligned for its u64s),
        // lives as long as `self`, and is only accessed through these atomics (never the pads).
        unsafe { &*self.map.as_ptr().cast::<BridgeCountersLayout>() }
    }

    /// Every counter and origin word (for a fresh start).
    fn all_counters(&self) -> impl Iterator<Item = &StatCounter> {
        let c = self.layout();
        [
            &c.exported,
            &c.exported_bytes,
            &c.export_missed,
            &c.echo_skipped,
            &c.imported,
            &c.imported_bytes,
            &c.gaps,
            &c.rejected,
        ]
        .into_iter()
        .chain(
            c.origins
                .iter()
                .flat_map(|o| [&o.origin, &o.last_seq, &o.touched]),
        )
    }

    fn counter(&self, counter: Counter) -> &StatCounter {
        let c = self.layout();
        match counter {
            Counter::Exported => &c.exported,
            Counter::ExportedBytes => &c.exported_bytes,
            Counter::ExportMissed => &c.export_missed,
            Counter::EchoSkipped => &c.echo_skipped,
            Counter::Imported => &c.imported,
            Counter::ImportedBytes => &c.imported_bytes,
            Counter::Gaps => &c.gaps,
            Counter::Rejected => &c.rejected,
        }
    }

    /// Adds `n` to `counter`. Only the counter's one writer (the topic's
    /// exporter or importer thread) calls this: a load and a store.
    pub fn add(&self, counter: Counter, n: u64) {
        let w = self.counter(counter);
        w.store(w.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// The value of `counter`.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counter(counter).load(Relaxed)
    }

    /// The origins the file remembers, with their last sequence imported.
    pub fn origins(&self) -> Vec<OriginPosition> {
        self.layout()
            .origins
            .iter()
            .map(|o| OriginPosition {
                origin: o.origin.load(Relaxed),
                last_seq: o.last_seq.load(Relaxed),
            })
            .filter(|p| p.origin != 0)
            .collect()
    }

    /// Records that the importer published sequence `seq` of `origin`
    /// (never 0): its entry, or a free one, or the one touched longest ago.
    /// Only the importer thread calls this.
    pub fn set_last_seq(&self, origin: u64, seq: u64) {
        let now = self.get(Counter::Imported);
        let entries = &self.layout().origins;
        if let Some(e) = entries.iter().find(|e| e.origin.load(Relaxed) == origin) {
            e.last_seq.store(seq, Relaxed);
            e.touched.store(now, Relaxed);
            return;
        }
        let oldest = entries
            .iter()
            .min_by_key(|e| (e.origin.load(Relaxed) != 0, e.touched.load(Relaxed)));
        if let Some(e) = oldest {
            e.last_seq.store(seq, Relaxed);
            e.touched.store(now, Relaxed);
            e.origin.store(origin, Relaxed);
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_ns(tag: &str) -> (PathBuf, Namespace) {
        let base = std::env::temp_dir().join(format!(
            "shmbus-bridge-counters-{tag}-{}",
            std::process::id()
        ));
        let ns = Namespace::at(&base, "t").expect("namespace");
        (base, ns)
    }

    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn written_counters_read_back_and_the_lock_is_seen() {
        let (base, ns) = temp_ns("rw");
        let _cleanup = Cleanup(base);
        assert!(read(&ns, "md").expect("no file is no error").is_none());
        let c = BridgeCounters::open_locked(&ns, "md").expect("open");
        c.add(Counter::Exported, 5);
        c.add(Counter::Gaps, 3);
        c.add(Counter::Imported, 1);
        c.set_last_seq(7, 10);
        c.add(Counter::Imported, 1);
        c.set_last_seq(9, 4);
        c.set_last_seq(7, 11);
        let s = read(&ns, "md").expect("read").expect("file");
        assert!(s.bridged);
        assert_eq!((s.exported, s.gaps, s.imported), (5, 3, 2));
        assert_eq!(
            s.origins,
            vec![
                OriginPosition {
                    origin: 7,
                    last_seq: 11
                },
                OriginPosition {
                    origin: 9,
                    last_seq: 4
                }
            ]
        );
        assert!(matches!(
            BridgeCounters::open_locked(&ns, "md"),
            Err(BridgeCountersError::Held { pid, .. }) if pid == u64::from(std::process::id())
        ));
        drop(c);
        let s = read(&ns, "md").expect("read").expect("file");
        assert!(!s.bridged);
        // Reopened: the counters and origins stay.
        let c = BridgeCounters::open_locked(&ns, "md").expect("reopen");
        assert_eq!(c.get(Counter::Gaps), 3);
        assert_eq!(c.origins().len(), 2);
        assert_eq!(topics(&ns).expect("topics"), vec!["md".to_owned()]);
    }

    #[test]
    fn a_full_origin_table_gives_the_entry_touched_longest_ago() {
        let (base, ns) = temp_ns("table");
        let _cleanup = Cleanup(base);
        let c = BridgeCounters::open_locked(&ns, "md").expect("open");
        for origin in 1..=BRIDGE_ORIGINS as u64 {
            c.add(Counter::Imported, 1);
            c.set_last_seq(origin, origin * 100);
        }
        // Origin 1 is touched again, so origin 2 is the oldest.
        c.add(Counter::Imported, 1);
        c.set_last_seq(1, 101);
        c.add(Counter::Imported, 1);
        c.set_last_seq(99, 1);
        let origins: Vec<u64> = c.origins().iter().map(|p| p.origin).collect();
        assert_eq!(origins.len(), BRIDGE_ORIGINS);
        assert!(origins.contains(&99) && origins.contains(&1) && !origins.contains(&2));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let path = Path::new("x.bridge");
        let mut good = vec![0u8; LAYOUT_LEN];
        good[..8].copy_from_slice(&BRIDGE_COUNTERS_MAGIC.to_ne_bytes());
        good[8..16].copy_from_slice(&(LAYOUT_LEN as u64).to_ne_bytes());
        assert!(BridgeCountersSnapshot::from_bytes("x", path, &good).is_ok());
        for len in 0..LAYOUT_LEN {
            assert!(BridgeCountersSnapshot::from_bytes("x", path, &good[..len]).is_err());
        }
        let mut bad_size = good.clone();
        bad_size[8] = 1;
        assert!(BridgeCountersSnapshot::from_bytes("x", path, &bad_size).is_err());
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1000 {
            let bytes: Vec<u8> = (0..LAYOUT_LEN + 8)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = BridgeCountersSnapshot::from_bytes("x", path, &bytes);
            let mut keyed = bytes.clone();
            keyed[..16].copy_from_slice(&good[..16]);
            let s = BridgeCountersSnapshot::from_bytes("x", path, &keyed).expect("valid header");
            assert!(s.origins.len() <= BRIDGE_ORIGINS);
        }
    }

    #[test]
    fn a_short_or_foreign_file_is_reported() {
        let (base, ns) = temp_ns("short");
        let _cleanup = Cleanup(base);
        std::fs::write(path(&ns, "md"), b"SHMBRDG1").expect("write");
        assert!(matches!(
            read(&ns, "md"),
            Err(BridgeCountersError::Invalid { .. })
        ));
        // A bridge starts such a file afresh.
        let c = BridgeCounters::open_locked(&ns, "md").expect("open");
        assert_eq!(c.get(Counter::Exported), 0);
        drop(c);
        assert!(read(&ns, "md").expect("read").is_some());
    }
}
