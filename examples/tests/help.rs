//! Every example answers `--help` with what it does and how to run it
//! (exit 0, nothing else done), and refuses an unknown argument with a
//! one-line reason on stderr (exit 1) before it touches shared memory.

use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLES: [&str; 4] = [
    "quickstart",
    "market_data_feed",
    "strategy",
    "order_gateways",
];

/// `target/<profile>/examples/<name>`, which `cargo test` builds before
/// this test runs from `target/<profile>/deps`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

#[test]
fn every_example_answers_help() {
    for name in EXAMPLES {
        let out = Command::new(example(name))
            .arg("--help")
            // A base directory that does not exist: --help must not need one.
            .env("SHMBUS_DIR", "/nonexistent/shmbus-help-test")
            .output()
            .expect("run the example");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help: {:?}", out.status);
        assert!(
            stdout.starts_with(&format!("{name}: ")),
            "{name} --help should say what it is first:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("--example {name}")),
            "{name} --help should say how to run it:\n{stdout}"
        );
    }
}

#[test]
fn every_example_refuses_an_unknown_argument() {
    for name in EXAMPLES {
        let out = Command::new(example(name))
            .arg("--no-such-flag")
            .env("SHMBUS_DIR", "/nonexistent/shmbus-help-test")
            .output()
            .expect("run the example");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("{name}: unknown argument --no-such-flag (see --help)"),
        );
    }
}
