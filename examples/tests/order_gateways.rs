//! Runs the `order_gateways` example as a user would, in a private base
//! directory (`SHMBUS_DIR`), and checks what it prints, its exit status and
//! that it leaves no ring behind: plain, with `--kill-one` (the killed
//! gateway's order is redelivered to another gateway), and interrupted.
//!
//! `cargo test` builds a package's examples before running its tests; the
//! example's binary is `target/<profile>/examples/order_gateways`, next to
//! the `deps/` directory this test runs from.

#[path = "../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use temp_ns::TempNs;

/// Orders per run: enough for every gateway to take many, few enough that
/// a run takes well under a second.
const ORDERS: u64 = 20_000;
/// A run that takes longer than this is stuck.
const DEADLINE: Duration = Duration::from_secs(60);

fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps")
        .join("examples")
        .join("order_gateways");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds it, or `cargo build --example order_gateways`",
        path.display()
    );
    path
}

/// Starts the example on the namespace of `ns` with `args`.
fn start(ns: &TempNs, args: &[&str]) -> Child {
    Command::new(example())
        .env("SHMBUS_DIR", &ns.base)
        .args(["--namespace", ns.ns.name()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example")
}

/// Waits for `child` (killing it past [`DEADLINE`]).
fn wait(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example ran longer than {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the example to its end: exit status, stdout, stderr.
fn run(ns: &TempNs, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = start(ns, args);
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Read both while it runs, so that a full pipe never blocks it.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).expect("read stdout");
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).expect("read stderr");
        s
    });
    let status = wait(&mut child);
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    println!("{out}{err}");
    (status, out, err)
}

/// The number after `label` on the line that starts with it.
fn number(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{out}"))
}

/// Files left in the namespace directory; none, and the directory itself
/// gone, once a run that removed its rings has ended (the last bus of an
/// emptied namespace removes it).
fn left_behind(ns: &TempNs) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(ns.ns.path()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.push("(the namespace directory itself)".to_owned());
    names
}

/// What every finished run must show: it ran on the private namespace,
/// sent `orders` orders, handled each at least once, and the per-gateway
/// counts add up to the orders plus the duplicates.
fn check_totals(ns: &TempNs, out: &str, orders: u64, gateways: u64) {
    assert!(
        out.contains(&ns.ns.path().display().to_string()),
        "not run in the private namespace:\n{out}"
    );
    assert_eq!(number(out, "orders sent:"), orders);
    assert_eq!(number(out, "unique orders handled:"), orders);
    assert!(
        out.contains(&format!("of {orders}: every order handled at least once")),
        "{out}"
    );
    let handled: u64 = (1..=gateways)
        .map(|g| number(out, &format!("handled by gateway {g}:")))
        .sum();
    assert_eq!(handled, orders + number(out, "duplicates:"), "{out}");
    assert_eq!(left_behind(ns), Vec::<String>::new());
}

#[test]
fn every_order_is_handled_once_when_no_gateway_dies() {
    let ns = TempNs::new("order-gateways-plain");
    let (status, out, _) = run(&ns, &["--orders", &ORDERS.to_string()]);
    assert!(status.success(), "{status}:\n{out}");
    check_totals(&ns, &out, ORDERS, 3);
    assert_eq!(number(&out, "duplicates:"), 0);
    assert_eq!(number(&out, "redelivered:"), 0);
}

#[test]
fn a_killed_gateways_order_is_redelivered_to_another() {
    let ns = TempNs::new("order-gateways-kill");
    // Gateway 2 holds the first order numbered 1000 or above that it takes:
    // early in the run, so it takes one whoever else is fast (a kill point
    // half-way through, the example's default, can pass it by on a loaded
    // machine where the other gateways drain the rest while it sleeps). The
    // run is ten times the others': with every gateway sharing one core of
    // two, a run of 20,000 orders (about 10 ms) could end before the
    // scheduler gave gateway 2 a turn.
    let orders = ORDERS * 10;
    let (status, out, _) = run(
        &ns,
        &[
            "--orders",
            &orders.to_string(),
            "--kill-one",
            "--kill-at",
            "1000",
        ],
    );
    assert!(status.success(), "{status}:\n{out}");
    check_totals(&ns, &out, orders, 3);
    assert!(out.contains("handled by gateway 2:"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("handled by gateway 2:") && l.ends_with("(killed)")),
        "{out}"
    );
    // The order gateway 2 held when it was killed...
    let held = out
        .lines()
        .find(|l| l.starts_with("killed gateway 2 "))
        .and_then(|l| l.split("holding order ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no kill line:\n{out}"));
    assert!(held < orders);
    // ... was handled again, by a live gateway, flagged redelivered.
    assert!(number(&out, "redelivered:") >= 1, "{out}");
    assert!(number(&out, "duplicates:") >= 1, "{out}");
    let again = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("order {held} ")))
        .unwrap_or_else(|| panic!("order {held} not listed as redelivered:\n{out}"));
    let by: u64 = again
        .rsplit("handled by gateway ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gateway in {again:?}"));
    assert!(by == 1 || by == 3, "{again}");
}

#[test]
fn an_interrupted_run_stops_its_processes_and_removes_its_rings() {
    let ns = TempNs::new("order-gateways-interrupt");
    // Far more orders than it can handle before the interrupt.
    let mut child = start(&ns, &["--orders", "20000000"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    // The line that names the children: they are running from then on.
    let mut line = String::new();
    let pids: Vec<i32> = loop {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "the example ended before starting its children");
        if line.starts_with("strategy pid ") {
            break line
                .split("pid ")
                .skip(1)
                .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .map(|pid| pid.parse().expect("a pid"))
                .collect();
        }
    };
    assert_eq!(pids.len(), 4, "{line}");
    std::thread::sleep(Duration::from_millis(200));
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid this test spawned and has not waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait(&mut child);
    let mut err = String::new();
    stderr.read_to_string(&mut err).expect("read stderr");
    assert!(!status.success(), "{status}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(left_behind(&ns), Vec::<String>::new());
    for child_pid in pids {
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(child_pid, 0) } == 0;
        assert!(!alive, "process {child_pid} outlived the interrupted run");
    }
}
