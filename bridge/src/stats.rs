//! The bridge's counters for one topic, in a small file beside the topic's
//! segment: `<namespace dir>/<topic>.bridge`.
//!
//! ```text
//!  word  field            written by      meaning
//!  ----  ---------------  --------------  ------------------------------------
//!     0  magic            creator         "SHMBRDG1"
//!     1  pid              holder          the bridge that holds the file lock
//!     2  exported         exporter        records sent to Zenoh
//!     3  exported_bytes   exporter        their payload bytes
//!     4  export_missed    exporter        records the exporter's subscriber
//!                                         was lapped over (Overwrite topics)
//!     5  echo_skipped     exporter        records it did not send back because
//!                                         this bridge imported them
//!     6  imported         importer        records published on the local topic
//!     7  imported_bytes   importer        their payload bytes
//!     8  gaps             importer        records the sequence numbers say were
//!                                         sent but never arrived
//!     9  last_origin      importer        origin of the last imported record
//!    10  last_seq         importer        its sequence number
//!    11  rejected         importer        messages refused (malformed, too large)
//! ```
//!
//! Each word is an `AtomicU64` written by one thread (the topic's exporter
//! or importer) and read by anyone (`shmbus-bridge --stats`). The file
//! outlives the bridge on purpose: `last_origin`/`last_seq` are how a
//! restarted bridge counts what was lost while it was down. It goes with
//! the namespace (`Bus::remove_namespace`, or removing the base directory).
//!
//! A bridge holds an exclusive `flock` on the file while it bridges the
//! topic: a second bridge on the same namespace and topic would re-export
//! what the first imported, so it is refused.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use memmap2::MmapMut;
use serde::Serialize;

const MAGIC: u64 = u64::from_le_bytes(*b"SHMBRDG1");
const WORDS: usize = 12;
const FILE_LEN: u64 = 4096;

/// Index of each counter in the file.
#[allow(missing_docs)]
pub mod word {
    pub const MAGIC: usize = 0;
    pub const PID: usize = 1;
    pub const EXPORTED: usize = 2;
    pub const EXPORTED_BYTES: usize = 3;
    pub const EXPORT_MISSED: usize = 4;
    pub const ECHO_SKIPPED: usize = 5;
    pub const IMPORTED: usize = 6;
    pub const IMPORTED_BYTES: usize = 7;
    pub const GAPS: usize = 8;
    pub const LAST_ORIGIN: usize = 9;
    pub const LAST_SEQ: usize = 10;
    pub const REJECTED: usize = 11;
}

/// The counters of one topic, mapped.
pub struct TopicStats {
    map: MmapMut,
    _file: File,
    path: PathBuf,
}

/// A snapshot of one topic's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct Snapshot {
    pub topic: String,
    pub pid: u64,
    pub exported: u64,
    pub exported_bytes: u64,
    pub export_missed: u64,
    pub echo_skipped: u64,
    pub imported: u64,
    pub imported_bytes: u64,
    pub gaps: u64,
    pub last_origin: u64,
    pub last_seq: u64,
    pub rejected: u64,
}

/// Path of the stats file of `topic` in the namespace directory `ns_dir`.
pub fn path(ns_dir: &Path, topic: &str) -> PathBuf {
    ns_dir.join(format!("{topic}.bridge"))
}

impl TopicStats {
    /// Opens (creating if need be) and locks the stats file of `topic`.
    ///
    /// # Errors
    ///
    /// The file cannot be created or mapped, or another live process holds
    /// its lock (it bridges the same topic of the same namespace).
    pub fn open_locked(ns_dir: &Path, topic: &str) -> std::io::Result<TopicStats> {
        let path = path(ns_dir, topic);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let holder = Self::read(ns_dir, topic).map(|s| s.pid).unwrap_or(0);
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "topic {topic:?} is already bridged in this namespace by pid {holder} \
                     (run one bridge per namespace)"
                ),
            ));
        }
        if file.metadata()?.len() < FILE_LEN {
            file.set_len(FILE_LEN)?;
        }
        // SAFETY: the file is ours to map; other processes only read it
        // through the same atomic words.
        let map = unsafe { MmapMut::map_mut(&file)? };
        let stats = TopicStats {
            map,
            _file: file,
            path,
        };
        let magic = stats.word(word::MAGIC).load(Relaxed);
        if magic != MAGIC {
            for i in 0..WORDS {
                stats.word(i).store(0, Relaxed);
            }
            stats.word(word::MAGIC).store(MAGIC, Relaxed);
        }
        stats
            .word(word::PID)
            .store(u64::from(std::process::id()), Relaxed);
        Ok(stats)
    }

    /// The counter at index `i` (one of [`word`]).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < WORDS);
        // SAFETY: the map is FILE_LEN >= WORDS * 8 bytes, page-aligned, and
        // lives as long as `self`; every access to these words is atomic.
        unsafe { &*(self.map.as_ptr() as *const AtomicU64).add(i) }
    }

    /// Adds `n` to counter `i`; only its one writer calls this.
    pub fn add(&self, i: usize, n: u64) {
        let w = self.word(i);
        w.store(w.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the counters of `topic` without locking (for inspection).
    pub fn read(ns_dir: &Path, topic: &str) -> Option<Snapshot> {
        let file = File::open(path(ns_dir, topic)).ok()?;
        if file.metadata().ok()?.len() < FILE_LEN {
            return None;
        }
        // SAFETY: read-only map of a file whose words are only ever written
        // atomically; we read them atomically.
        let map = unsafe { memmap2::Mmap::map(&file).ok()? };
        let w = |i: usize| {
            // SAFETY: as in `word`.
            unsafe { &*(map.as_ptr() as *const AtomicU64).add(i) }.load(Relaxed)
        };
        if w(word::MAGIC) != MAGIC {
            return None;
        }
        Some(Snapshot {
            topic: topic.to_owned(),
            pid: w(word::PID),
            exported: w(word::EXPORTED),
            exported_bytes: w(word::EXPORTED_BYTES),
            export_missed: w(word::EXPORT_MISSED),
            echo_skipped: w(word::ECHO_SKIPPED),
            imported: w(word::IMPORTED),
            imported_bytes: w(word::IMPORTED_BYTES),
            gaps: w(word::GAPS),
            last_origin: w(word::LAST_ORIGIN),
            last_seq: w(word::LAST_SEQ),
            rejected: w(word::REJECTED),
        })
    }

    /// The counters of every bridged topic of the namespace directory.
    pub fn read_all(ns_dir: &Path) -> Vec<Snapshot> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(ns_dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if let Some(topic) = name.to_str().and_then(|n| n.strip_suffix(".bridge")) {
                    out.extend(Self::read(ns_dir, topic));
                }
            }
        }
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }
}
