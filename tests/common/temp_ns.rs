//! The one temporary namespace of every test and bench: a namespace in a
//! fresh base directory under `/dev/shm` (real shared memory; the temp dir
//! where there is none), removed with everything in it on drop, so nothing
//! is left behind, whether the test passes, fails or panics. A process
//! that is killed or interrupted cannot run its drops: the first `TempNs`
//! of every later process removes the base directories of processes that
//! no longer exist (their pid is in the name).
//!
//! The integration tests get it through `tests/common/mod.rs`; the benches
//! (`benches/common/mod.rs`) and the ring-dump tests
//! (`tools/ring-dump/tests/cli.rs`) include this file by path.

// Each includer uses a different subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use shmbus::{Bus, Namespace};

/// A namespace under a fresh base directory, removed with everything in it
/// on drop.
pub struct TempNs {
    /// The base directory, `shmbus-test-<tag>-<pid>-<n>`.
    pub base: PathBuf,
    /// The namespace inside it.
    pub ns: Namespace,
}

impl TempNs {
    /// The namespace `t` under a fresh base directory named after `tag`.
    pub fn new(tag: &str) -> Self {
        Self::named(tag, "t")
    }

    /// The namespace `name` under a fresh base directory named after `tag`.
    pub fn named(tag: &str, name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        static SWEEP: std::sync::Once = std::sync::Once::new();
        let root = Self::root();
        SWEEP.call_once(|| {
            Self::sweep_stale(&root);
        });
        let base = root.join(format!(
            "shmbus-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let ns = Namespace::at(&base, name).expect("create test namespace");
        TempNs { base, ns }
    }

    /// Where the base directories go: `/dev/shm`, else the temp dir.
    pub fn root() -> PathBuf {
        if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        }
    }

    /// Removes the base directories under `root` left by processes that no
    /// longer exist (killed or interrupted before their drops ran); returns
    /// how many. A directory whose process lives (or whose pid a new
    /// process took) stays.
    pub fn sweep_stale(root: &Path) -> usize {
        // Without /proc no process can be told dead: remove nothing.
        if !Path::new("/proc/self").exists() {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(root) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("shmbus-test-")) else {
                continue;
            };
            // `<tag>-<pid>-<n>`: the tag may hold dashes, the last two
            // fields do not.
            let mut fields = rest.rsplitn(3, '-');
            let (Some(_n), Some(pid), Some(_tag)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Path of segment `name` of kind suffix `kind` ("spsc", "bcast", "dir").
    pub fn file(&self, name: &str, kind: &str) -> PathBuf {
        self.ns.path().join(format!("{name}.{kind}"))
    }

    /// The names of the namespace's files, sorted (none once it is gone).
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.ns.path())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// The bus of the namespace (its directory is created if need be).
    pub fn bus(&self) -> Bus {
        Bus::at(&self.base, self.ns.name()).expect("open the test namespace's bus")
    }
}

impl Drop for TempNs {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.base) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("warning: could not remove {}: {e}", self.base.display()),
        }
    }
}
