//! Fuzzes the mapped bytes of a work queue while several producers and
//! consumers use it (and a heap queue beside it, checked against the
//! model all along): see `tests/mapped_fuzz/queue.rs`, part of the harness
//! shared with the smoke test `tests/mapped_fuzz.rs`. Every call must
//! return a value or an error, and agree with the model while the queue's
//! bytes are untouched; a panic, an out-of-bounds record or a hang
//! (`-timeout=`) is a failure.
//!
//! Run with overflow checks on (the default of `cargo fuzz`):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none mapped_queue -- -timeout=10`.
//! Each process keeps its cases under `/dev/shm/shmbus-fuzz-lq-<pid>`,
//! removes each case's files after it and the directory at exit; a crashed
//! process's directory is removed by the next run.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/mapped_fuzz/harness.rs"]
mod harness;

static FUZZER: Mutex<Option<harness::Fuzzer>> = Mutex::new(None);

/// This process's base directory, holding its cases.
fn base() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/shm/shmbus-fuzz-lq-{}", std::process::id()))
}

extern "C" fn remove_base() {
    if let Ok(mut f) = FUZZER.lock() {
        f.take();
    }
    let _ = std::fs::remove_dir_all(base());
}

/// Removes the directories of fuzzing processes that no longer run.
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shmbus-fuzz-lq-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fuzz_target!(
    init: {
        sweep_stale();
        if let Ok(mut f) = FUZZER.lock() {
            *f = Some(harness::Fuzzer::new(&base()));
        }
        // SAFETY: registers a plain `extern "C"` function with no arguments.
        unsafe { libc::atexit(remove_base) };
    },
    |data: &[u8]| {
        let mut guard = match FUZZER.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(f) = guard.as_mut() {
            f.run_queue(data);
        }
    }
);
