//! Fuzzes the mapped bytes of every segment kind (SPSC ring, broadcast
//! logs, the directory) while a producer and a consumer use them: see
//! `tests/mapped_fuzz/harness.rs`, shared with the smoke test
//! `tests/mapped_fuzz.rs`. Every call must return a value or an error; a
//! panic, an out-of-bounds record or a hang (`-timeout=`) is a failure.
//!
//! Run in a debug build (overflow checks on):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --dev mapped -- -timeout=10 -runs=10000000`.
//! Each process keeps its cases under `/dev/shm/shmbus-fuzz-lf-<pid>`,
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
    std::path::PathBuf::from(format!("/dev/shm/shmbus-fuzz-lf-{}", std::process::id()))
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
            .and_then(|n| n.strip_prefix("shmbus-fuzz-lf-"))
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
            f.run(data);
        }
    }
);
