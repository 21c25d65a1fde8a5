//! How every `ring-dump` test runs the binary: `--dir <base> -n desk`,
//! `SHMBUS_DIR` unset, stdin closed, and what a finished run printed.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

/// The namespace every test works in.
pub const NS: &str = "desk";

/// The binary under test.
pub fn ring_dump_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ring-dump")
}

/// `ring-dump --dir base -n desk args…`, not yet started.
pub fn command(base: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ring_dump_bin());
    c.arg("--dir")
        .arg(base)
        .args(["-n", NS])
        .args(args)
        .env_remove("SHMBUS_DIR")
        .stdin(Stdio::null());
    c
}

/// One run of ring-dump to its end.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout of a run that must have exited 0.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    /// The single stderr line a failure must print.
    pub fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line, got {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("ring-dump: "), "{:?}", lines[0]);
        lines[0]
    }

    /// Stdout as one line of valid JSON, whatever the exit code.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one JSON line: {}",
            self.stdout
        );
        serde_json::from_str(self.stdout.trim_end()).expect("stdout is valid JSON")
    }

    /// As [`Run::json`], of a run that must have exited 0.
    pub fn ok_json(&self) -> Value {
        self.ok();
        self.json()
    }
}

/// Held by every test of a binary while it starts a process.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Starts `cmd`, never while another test of this binary is starting one.
///
/// A child holds a copy of every descriptor of the test process from its
/// fork until its exec closes them (all are close-on-exec), and with them
/// the liveness locks of every handle another test has open. A test that
/// drops its handles and then asks ring-dump whether anything holds them
/// would otherwise now and then hear "in use" from a sibling test's child
/// still on its way to exec (seen on a loaded 2-core machine). `spawn`
/// returns only once the child has exec'd, so once this lock is ours no
/// child of this process holds a descriptor we have closed.
pub fn spawn(cmd: &mut Command) -> Child {
    try_spawn(cmd).expect("start a process")
}

/// As [`spawn`], for a program that may be missing.
pub fn try_spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let _one_at_a_time = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
}

/// Runs `cmd` to its end through [`spawn`], with stdout and stderr captured.
pub fn output(cmd: &mut Command) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    spawn(cmd).wait_with_output().expect("wait for a process")
}

/// Runs `ring-dump --dir base -n desk args…` to its end.
pub fn ring_dump(base: &Path, args: &[&str]) -> Run {
    let out = output(&mut command(base, args));
    Run {
        code: out.status.code().expect("ring-dump exited (no signal)"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}
