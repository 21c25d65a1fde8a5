//! The one temporary namespace of every test and bench: a namespace in a
//! fresh base directory under `/dev/shm` (real shared memory; the temp dir
//! where there is none), removed with everything in it on drop, so nothing
//! is left behind, whether the test passes, fails or panics.
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
        let root = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let base = root.join(format!(
            "shmbus-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let ns = Namespace::at(&base, name).expect("create test namespace");
        TempNs { base, ns }
    }

    /// Path of segment `name` of kind suffix `kind` ("spsc", "bcast", "dir").
    pub fn file(&self, name: &str, kind: &str) -> PathBuf {
        self.ns.path().join(format!("{name}.{kind}"))
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
