//! The C API test program (`tests/c/api_checks.c`: every ring kind's verbs,
//! durable subscribers, detected misuse, Protocol V2 in a claimed slot),
//! run as built plainly and under AddressSanitizer (leaks included) and
//! UndefinedBehaviorSanitizer: it must pass with no report.

mod common;

use std::process::Command;

use common::{compile, run_ok, source, Lang, TempNs};

fn run_api_checks(exe: &std::path::Path, tag: &str) -> (String, String) {
    let ns = TempNs::new(tag);
    let output = run_ok(
        Command::new(exe)
            .arg(&ns.base)
            .arg(ns.ns.name())
            .env(
                "ASAN_OPTIONS",
                "detect_leaks=1:abort_on_error=0:exitcode=23",
            )
            .env(
                "UBSAN_OPTIONS",
                "halt_on_error=1:print_stacktrace=1:exitcode=24",
            ),
    );
    // Every ring it made, it removed.
    assert_eq!(
        ns.files(),
        Vec::<String>::new(),
        "files left in the namespace"
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn api_checks_pass() {
    let exe = compile("api_checks", Lang::C, &[source("api_checks.c")], &[]);
    let (stdout, _) = run_api_checks(&exe, "ffi-api");
    for line in [
        "topic checks ok",
        "channel checks ok",
        "queue checks ok",
        "api checks ok",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}

#[test]
fn api_checks_pass_under_address_and_undefined_behavior_sanitizers() {
    let exe = compile(
        "api_checks_sanitized",
        Lang::C,
        &[source("api_checks.c")],
        &[
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ],
    );
    let (stdout, stderr) = run_api_checks(&exe, "ffi-asan");
    assert!(stdout.contains("api checks ok"), "stdout:\n{stdout}");
    for report in [
        "AddressSanitizer",
        "LeakSanitizer",
        "runtime error",
        "UndefinedBehaviorSanitizer",
    ] {
        assert!(
            !stderr.contains(report),
            "sanitizer report on stderr:\n{stderr}"
        );
    }
}
