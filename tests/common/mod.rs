//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

mod temp_ns;
pub use temp_ns::TempNs;

/// `CLOCK_MONOTONIC` now, in ns: the clock the library's timestamps come
/// from.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// SplitMix64: a tiny deterministic generator for test data.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Environment variable that turns a test binary into a child role.
pub const CHILD_ROLE: &str = "SHMBUS_TEST_CHILD_ROLE";
/// Base directory handed to a child.
pub const CHILD_BASE: &str = "SHMBUS_TEST_CHILD_BASE";

/// Held by every test of a binary while it starts a process.
static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `cmd`, never while another test of this binary is starting one.
///
/// A child holds a copy of every descriptor of the test process from its
/// fork until its exec closes them (all are close-on-exec), and with them
/// the liveness locks of every handle another test has open. `spawn`
/// returns only once the child has exec'd; a test that drops handles and
/// then needs them seen as released calls [`no_child_starting`] first.
pub fn spawn(cmd: &mut std::process::Command) -> std::process::Child {
    let _one_at_a_time = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn().expect("spawn child process")
}

/// [`spawn`] as a method, for a command built in a chain.
pub trait SpawnOneAtATime {
    /// Starts the process through [`spawn`].
    fn spawn_one_at_a_time(&mut self) -> std::process::Child;
}

impl SpawnOneAtATime for std::process::Command {
    fn spawn_one_at_a_time(&mut self) -> std::process::Child {
        spawn(self)
    }
}

/// Returns once no other test of this binary is starting a process: no
/// child of this process still holds a descriptor closed before the call.
pub fn no_child_starting() {
    drop(SPAWNING.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Re-runs this test binary as a child process executing only `test_name`,
/// with `role` and `base` in its environment.
pub fn spawn_child(test_name: &str, role: &str, base: &Path) -> std::process::Child {
    spawn(
        std::process::Command::new(std::env::current_exe().expect("test binary path"))
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_BASE, base)
            .stdin(std::process::Stdio::null()),
    )
}

/// The role this process was started with, if it is a child.
pub fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let base = std::env::var_os(CHILD_BASE)?;
    Some((role, PathBuf::from(base)))
}

/// A command that re-runs this test binary as a child executing only
/// `test_name` (ignored or not), with `role` and `base` in its environment.
/// The caller adds arguments, environment and stdio before spawning.
pub fn child_command(test_name: &str, role: &str, base: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([
        "--exact",
        test_name,
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ROLE, role)
    .env(CHILD_BASE, base)
    .stdin(std::process::Stdio::null());
    cmd
}

/// Spawns [`child_command`]`(test_name, role, base)` with its stdout piped
/// and reads that until a line containing `said`; returns the child and
/// the rest of its stdout.
pub fn spawn_until(
    test_name: &str,
    role: &str,
    base: &Path,
    said: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child =
        spawn(child_command(test_name, role, base).stdout(std::process::Stdio::piped()));
    let mut out = std::io::BufReader::new(child.stdout.take().expect("child stdout"));
    let mut line = String::new();
    while !line.contains(said) {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).expect("read child stdout");
        assert!(!line.is_empty(), "child ended before saying {said:?}");
    }
    (child, out)
}

/// Asks the kernel to SIGKILL this process when the thread that spawned it
/// ends, so a child never outlives a test that failed or was interrupted.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes
    // nothing but this process's parent-death signal.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

/// Waits (at most 10 s, then panics) until every thread of process `pid`
/// is stopped by a signal: `kill(SIGSTOP)` returns before the process has
/// stopped, and a thread may run on a little after its leader stopped.
pub fn wait_stopped(pid: u32) {
    let started = std::time::Instant::now();
    let stopped = |stat: &str| {
        // Field 3, after the parenthesised command name.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        matches!(state, Some("T" | "t"))
    };
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list the threads");
        let all_stopped = tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat")).is_ok_and(|s| stopped(&s))
        });
        if all_stopped {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "process {pid} never stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Resident set size of process `pid` in KiB (VmRSS in /proc/<pid>/status),
/// or `None` if it cannot be read (the process is gone).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
