//! `ring-dump watch`, `clean`, `drop-durable`, `remove`,
//! `remove-namespace` and what `show` says of each participant (liveness,
//! CPUs, lag in bytes), end to end: the real binary against topics this
//! test process (and children it starts and kills) keeps busy, each test
//! in its own namespace `desk` under a fresh base directory, removed at
//! the end. Threads, children and tmux servers a test starts are stopped
//! by guards, also when it fails.
//!
//! The rates, slowest and gating rules themselves are unit-tested in
//! `src/watch.rs` on hand-made samples.

mod common;
#[path = "../../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use shmbus::bus::{Policy, StartAt, Topic};
use shmbus::layout::SegmentFault;
use shmbus::RecvError;

use common::{output, ring_dump, ring_dump_bin, spawn, try_spawn, NS};
use fixtures::topic_config;
use temp_ns::TempNs;

/// Environment variable that makes this test binary a child role.
const CHILD_ROLE: &str = "RING_DUMP_TEST_CHILD_ROLE";
/// The base directory handed to a child.
const CHILD_BASE: &str = "RING_DUMP_TEST_CHILD_BASE";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

fn desk() -> TempNs {
    TempNs::named("ring-dump-watch", NS)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
        .to_owned()
}

/// A publisher publishing a record every millisecond on a topic, with a
/// subscriber that reads everything at once and a durable one, "slow",
/// that reads one record in four: the slowest. Stopped and joined on drop.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Traffic {
    fn start(topic: &Topic) -> Traffic {
        let mut publisher = topic.publisher().expect("publisher");
        let mut fast = topic.subscriber(StartAt::Tail).expect("subscriber");
        let mut slow = topic
            .durable_subscriber("slow", StartAt::Tail)
            .expect("durable subscriber");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                // A full log (the slow one behind) only skips a beat.
                let _ = publisher.try_send(1, &[n as u8; 40]);
                while fast.try_read().is_ok() {}
                if n.is_multiple_of(4) {
                    let _ = slow.try_read().map(drop);
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child process, killed and reaped on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The role this process was started with, if it is a child.
fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let base = std::env::var_os(CHILD_BASE)?;
    Some((role, PathBuf::from(base)))
}

/// Re-runs this test binary as a child running only `test` in `role`,
/// and waits until it prints `ready`.
fn spawn_child(test: &str, role: &str, base: &Path) -> ChildGuard {
    let mut child = spawn(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_BASE, base)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let stdout = child.stdout.take().expect("child stdout");
    let guard = ChildGuard(child);
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        lines.read_line(&mut line).expect("read child stdout");
        assert!(!line.is_empty(), "child ended before it was ready");
    }
    guard
}

/// The records/s of a participant's row of `watch` (`None` for `-`):
/// ROLE SLOT PID LIVENESS RECORDS/S MB/S LAG, where a liveness of
/// "detached durable" is two words.
fn row_rate(row: &str) -> Option<f64> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let at = if words.get(3) == Some(&"detached") {
        5
    } else {
        4
    };
    words.get(at).and_then(|w| w.parse().ok())
}

// ---------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------

#[test]
fn watch_prints_plain_blocks_with_rates_and_the_slowest_consumer() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 8192))
        .expect("topic");
    let _traffic = Traffic::start(&md);
    std::thread::sleep(Duration::from_millis(50));

    let run = ring_dump(
        &tmp.base,
        &["watch", "md", "--interval", "0.3", "--count", "2"],
    );
    let out = run.ok();
    assert!(
        !out.contains('\x1b'),
        "escape codes in plain output: {out:?}"
    );
    let blocks: Vec<&str> = out.split("\n\n").filter(|b| !b.trim().is_empty()).collect();
    assert_eq!(blocks.len(), 2, "two refreshes: {out}");
    for (i, block) in blocks.iter().enumerate() {
        assert!(
            block.starts_with(&format!("ring-dump watch desk: refresh {}", i + 1)),
            "{block}"
        );
        assert!(
            block.contains("topic md  backpressure, 8192 slots"),
            "{block}"
        );
        let publisher = block
            .lines()
            .find(|l| l.trim_start().starts_with("publisher"))
            .expect("a publisher row");
        assert!(
            row_rate(publisher).is_some_and(|r| r > 0.0),
            "no rate: {publisher}\n{block}"
        );
        let slowest: Vec<&str> = block.lines().filter(|l| l.contains("<- slowest")).collect();
        assert_eq!(slowest.len(), 1, "{block}");
        assert!(slowest[0].contains("durable \"slow\""), "{block}");
    }

    let run = ring_dump(
        &tmp.base,
        &["--json", "watch", "--interval", "0.2", "--count", "2"],
    );
    let out = run.ok();
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(docs.len(), 2, "{out}");
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc["refresh"], i as u64 + 1);
        assert_eq!(doc["namespace"], NS);
        let ring = &doc["rings"][0];
        assert_eq!(
            (&ring["name"], &ring["status"]),
            (&Value::from("md"), &Value::from("ready"))
        );
        let peers = ring["participants"].as_array().expect("participants");
        let publisher = peers
            .iter()
            .find(|p| p["role"] == "publisher")
            .expect("publisher");
        assert!(
            publisher["records_per_s"].as_f64().expect("a rate") > 0.0,
            "{doc}"
        );
        let slowest: Vec<&Value> = peers.iter().filter(|p| p["slowest"] == true).collect();
        assert_eq!(slowest.len(), 1, "{doc}");
        assert_eq!(slowest[0]["name"], "slow");
        assert!(slowest[0]["lag"].as_u64().expect("lag") > 0);
    }
}

#[test]
fn watch_marks_a_detached_durable_subscriber_gating_a_full_backpressure_topic() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    drop(
        md.durable_subscriber("audit", StartAt::Tail)
            .expect("durable"),
    );
    let mut reader = md.subscriber(StartAt::Tail).expect("subscriber");
    let mut publisher = md.publisher().expect("publisher");
    for i in 0..16u8 {
        publisher.try_send(1, &[i; 8]).expect("room");
    }
    while reader.try_read().is_ok() {}
    let run = ring_dump(&tmp.base, &["watch", "--interval", "0.1", "--count", "1"]);
    let out = run.ok();
    let audit = out
        .lines()
        .find(|l| l.contains("durable \"audit\""))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(audit.contains("detached durable"), "{audit}");
    assert!(
        audit.contains("16 (128 B)"),
        "lag in records and bytes: {audit}"
    );
    assert!(
        audit.contains("<- slowest  <- gating publishers"),
        "{audit}"
    );
    assert!(out.contains("FULL now"), "{out}");
    let caught_up = out
        .lines()
        .find(|l| l.trim_start().starts_with("subscriber") && !l.contains("audit"))
        .expect("the reader's row");
    assert!(!caught_up.contains("<-"), "{caught_up}");
}

/// tmux's answer to `args`, on this test's own server.
fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    output(
        Command::new("tmux")
            .args(["-L", socket])
            .args(args)
            .stdin(Stdio::null()),
    )
}

/// A tmux server of its own, killed on drop.
struct TmuxServer(String);

impl TmuxServer {
    /// Starts the server on `socket` with a session `keep` that outlives
    /// every `watch` session: a server whose last session is killed exits,
    /// and a session started while it exits fails ("server exited
    /// unexpectedly").
    fn start(socket: &str) -> TmuxServer {
        let server = TmuxServer(socket.to_owned());
        let out = tmux(socket, &["new-session", "-d", "-s", "keep", "sleep 600"]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = tmux(&self.0, &["kill-server"]);
    }
}

fn pane(socket: &str) -> String {
    let out = tmux(socket, &["capture-pane", "-p", "-t", "watch"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pane_var(socket: &str, var: &str) -> String {
    let out = tmux(socket, &["display-message", "-p", "-t", "watch", var]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts `command` in a detached 120x30 session `watch` of `socket`'s
/// server.
fn new_watch_session(socket: &str, command: &str) {
    let out = tmux(
        socket,
        &[
            "new-session",
            "-d",
            "-s",
            "watch",
            "-x",
            "120",
            "-y",
            "30",
            command,
        ],
    );
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pid of ring-dump in session `watch`: the child of the pane's shell.
fn watch_pid(socket: &str) -> u32 {
    let shell = pane_var(socket, "#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("the shell's children");
    children
        .split_whitespace()
        .next()
        .expect("ring-dump's pid")
        .parse()
        .expect("a pid")
}

/// Polls `f` every 50 ms for up to 10 s.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn watch_on_a_terminal_draws_rates_and_the_slowest_and_q_restores_the_terminal() {
    let mut tmux_version = Command::new("tmux");
    tmux_version
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if try_spawn(&mut tmux_version)
        .and_then(|mut c| c.wait())
        .is_err()
    {
        println!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 8192))
        .expect("topic");
    let _traffic = Traffic::start(&md);
    let socket = format!("ring-dump-test-{}", std::process::id());
    let server = TmuxServer::start(&socket);
    let command = format!(
        "{} --dir {} -n {NS} watch --interval 0.3; echo ring-dump exited $?; sleep 60",
        ring_dump_bin(),
        tmp.base.display()
    );
    new_watch_session(&server.0, &command);

    let mut screen = String::new();
    let drawn = eventually(|| {
        screen = pane(&server.0);
        let rate = screen
            .lines()
            .find(|l| l.trim_start().starts_with("publisher"))
            .and_then(row_rate);
        screen.contains("refresh 2")
            && rate.is_some_and(|r| r > 0.0)
            && screen.contains("<- slowest")
    });
    assert!(
        drawn,
        "the screen never showed rates and the slowest:\n{screen}"
    );
    println!("the screen:\n{screen}");
    let slowest = screen
        .lines()
        .find(|l| l.contains("<- slowest"))
        .expect("slowest");
    assert!(slowest.contains("durable \"slow\""), "{screen}");
    assert_eq!(
        pane_var(&server.0, "#{alternate_on}"),
        "1",
        "drawn in the alternate screen"
    );

    tmux(&server.0, &["send-keys", "-t", "watch", "q"]);
    let mut after = String::new();
    let exited = eventually(|| {
        after = pane(&server.0);
        after.contains("ring-dump exited 0")
    });
    assert!(exited, "q did not end ring-dump:\n{after}");
    assert_eq!(
        pane_var(&server.0, "#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert!(
        !after.contains("<- slowest"),
        "the view stayed on the screen:\n{after}"
    );

    // SIGTERM restores the terminal too.
    tmux(&server.0, &["kill-session", "-t", "watch"]);
    let command = format!(
        "{} --dir {} -n {NS} watch md --interval 0.3; echo ring-dump ended; sleep 60",
        ring_dump_bin(),
        tmp.base.display()
    );
    new_watch_session(&server.0, &command);
    let drawn = eventually(|| pane(&server.0).contains("<- slowest"));
    assert!(drawn, "never drawn:\n{}", pane(&server.0));
    assert_eq!(pane_var(&server.0, "#{alternate_on}"), "1");
    let pid = watch_pid(&server.0).to_string();
    let killed = output(Command::new("kill").args(["-TERM", &pid])).status;
    assert!(killed.success());
    let mut after = String::new();
    let ended = eventually(|| {
        after = pane(&server.0);
        after.contains("ring-dump ended")
    });
    assert!(ended, "SIGTERM did not end ring-dump:\n{after}");
    assert_eq!(
        pane_var(&server.0, "#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );

    // A terminal that goes away (its window closed) ends it too: nobody
    // is watching, and it must not be left running.
    tmux(&server.0, &["kill-session", "-t", "watch"]);
    new_watch_session(&server.0, &command);
    assert!(
        eventually(|| pane(&server.0).contains("<- slowest")),
        "never drawn"
    );
    let pid = watch_pid(&server.0);
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = try_spawn(Command::new("kill").args(["-KILL", &self.0.to_string()]))
                .and_then(|mut kill| kill.wait());
        }
    }
    let _guard = KillOnDrop(pid);
    tmux(&server.0, &["kill-session", "-t", "watch"]);
    let gone = eventually(|| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    });
    assert!(gone, "ring-dump {pid} outlived its terminal");
}

// ---------------------------------------------------------------------------
// clean
// ---------------------------------------------------------------------------

/// Child roles; true if this process is a child (the test body is then
/// skipped).
fn run_child() -> bool {
    let Some((role, base)) = child_role() else {
        return false;
    };
    let bus = shmbus::Bus::at(&base, NS).expect("bus");
    match role.as_str() {
        // Makes a topic, publishes on it and waits to be killed.
        "crash" => {
            let topic = bus
                .topic("crashed", &topic_config(Policy::Backpressure, 16))
                .expect("topic");
            let mut publisher = topic.publisher().expect("publisher");
            for i in 0..3u8 {
                publisher.try_send(1, &[i; 10]).expect("send");
            }
            println!("ready");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn clean_finds_what_a_killed_child_left_and_removes_it_only_with_yes() {
    if run_child() {
        return;
    }
    let tmp = desk();
    let bus = tmp.bus();
    let live = bus
        .topic("live", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let mut sub = live.subscriber(StartAt::Tail).expect("subscriber");
    let mut child = spawn_child(
        "clean_finds_what_a_killed_child_left_and_removes_it_only_with_yes",
        "crash",
        &tmp.base,
    );
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap");
    let crashed = bus.open_topic("crashed").expect("the child's topic");
    let crashed_file = file_name(&crashed.path());
    drop(crashed);
    let live_file = file_name(&live.path());

    let before = tmp.files();
    assert!(before.contains(&crashed_file), "{before:?}");
    let run = ring_dump(&tmp.base, &["clean"]);
    let out = run.ok();
    assert_eq!(tmp.files(), before, "a dry run removes nothing");
    let line = out
        .lines()
        .find(|l| l.contains("\"crashed\""))
        .unwrap_or_else(|| panic!("crashed not listed:\n{out}"));
    assert!(line.trim_start().starts_with("would remove"), "{line}");
    assert!(line.contains("nobody is attached to"), "why: {line}");
    assert!(line.contains(&crashed_file), "{line}");
    assert!(
        !out.contains("\"live\""),
        "a live topic is not stale:\n{out}"
    );
    assert!(out.contains("dry run: nothing was removed"), "{out}");

    let doc = ring_dump(&tmp.base, &["--json", "clean"]).ok_json();
    assert_eq!(doc["dry_run"], true);
    let objects = doc["namespaces"][0]["objects"].as_array().expect("objects");
    let crashed_json = objects
        .iter()
        .find(|o| o["ring"] == "crashed")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(
        (&crashed_json["stale"], &crashed_json["action"]),
        (&Value::from("idle"), &Value::from("would_remove"))
    );
    assert!(objects.iter().all(|o| o["ring"] != "live"), "{doc}");
    assert!(
        doc["namespaces"][0]["live"]
            .as_array()
            .expect("live")
            .contains(&Value::from(live_file.clone())),
        "{doc}"
    );
    assert_eq!(tmp.files(), before, "a JSON dry run removes nothing");

    let run = ring_dump(&tmp.base, &["clean", "--yes"]);
    let out = run.ok();
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("removed") && l.contains("\"crashed\"")),
        "{out}"
    );
    let after = tmp.files();
    assert!(!after.contains(&crashed_file), "{after:?}");
    assert!(after.contains(&live_file), "{after:?}");
    assert!(bus.open_topic("crashed").is_err(), "its entry is gone");
    let mut p = live.publisher().expect("publisher");
    p.try_send(1, b"still here").expect("send");
    assert_eq!(&sub.try_read().expect("read")[..], b"still here");
}

// ---------------------------------------------------------------------------
// drop-durable, remove, remove-namespace
// ---------------------------------------------------------------------------

#[test]
fn drop_durable_unblocks_a_publisher_held_back_by_a_detached_subscriber_only_with_yes() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    drop(
        md.durable_subscriber("audit", StartAt::Tail)
            .expect("durable"),
    );
    let mut publisher = md.publisher().expect("publisher");
    for i in 0..16u8 {
        publisher.try_send(1, &[i; 8]).expect("room");
    }
    assert!(publisher.try_send(1, b"x").is_err(), "held back by audit");

    let run = ring_dump(&tmp.base, &["drop-durable", "md", "audit"]);
    let out = run.ok();
    assert!(
        out.starts_with("would drop durable subscriber \"audit\" of topic \"md\""),
        "{out}"
    );
    assert!(out.contains("run again with --yes"), "{out}");
    assert!(
        publisher.try_send(1, b"x").is_err(),
        "a dry run changes nothing"
    );
    let who = publisher.holding_back().expect("still held back");
    assert_eq!(who.name.as_deref(), Some("audit"));

    let run = ring_dump(&tmp.base, &["drop-durable", "md", "audit", "--yes"]);
    assert!(
        run.ok().starts_with("dropped durable subscriber \"audit\""),
        "{}",
        run.stdout
    );
    assert_eq!(publisher.holding_back(), None);
    publisher.try_send(1, b"goes on").expect("unblocked");

    // A durable subscriber a live process holds is refused, with one line.
    let _live = md
        .durable_subscriber("risk", StartAt::Tail)
        .expect("durable");
    for args in [
        &["drop-durable", "md", "risk"][..],
        &["drop-durable", "md", "risk", "--yes"],
    ] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(
            run.one_error_line().contains("live process"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
    let run = ring_dump(&tmp.base, &["drop-durable", "md", "nobody", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.one_error_line();
}

#[test]
fn remove_with_yes_is_noticed_by_a_live_subscriber_and_a_dry_run_is_not() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let mut sub = md.subscriber(StartAt::Tail).expect("subscriber");
    let mut publisher = md.publisher().expect("publisher");
    let file = md.path();

    let run = ring_dump(&tmp.base, &["remove", "md"]);
    let out = run.ok();
    assert!(out.starts_with("would remove topic \"md\""), "{out}");
    assert!(out.contains("2 live participants"), "{out}");
    assert!(file.exists(), "a dry run removes nothing");
    publisher.try_send(1, b"one").expect("send");
    assert_eq!(&sub.try_read().expect("read")[..], b"one");

    let run = ring_dump(&tmp.base, &["remove", "md", "--yes"]);
    assert!(
        run.ok().starts_with("removed topic \"md\""),
        "{}",
        run.stdout
    );
    assert!(!file.exists(), "its file is gone");
    // The subscriber looks at its file's state on its slow path (at most
    // every 20 ms): until then its reads may say Empty, never a record.
    let deadline = Instant::now() + Duration::from_secs(2);
    let fault = loop {
        match sub.try_read().map(|r| r.len()) {
            Err(RecvError::Empty) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            other => break other,
        }
    };
    assert_eq!(
        fault,
        Err(RecvError::Unusable(SegmentFault::Removed)),
        "the subscriber did not notice"
    );
    let run = ring_dump(&tmp.base, &["remove", "md", "--yes"]);
    assert_eq!(run.code, 1);
    run.one_error_line();
}

#[test]
fn remove_namespace_is_refused_while_held_listing_holders_and_removes_only_with_yes() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let sub = md.subscriber(StartAt::Tail).expect("subscriber");
    let before = tmp.files();
    let run = ring_dump(&tmp.base, &["remove-namespace", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let line = run.one_error_line();
    assert!(line.contains("subscriber slot 0"), "{line}");
    assert!(line.contains("a bus using the namespace"), "{line}");
    assert_eq!(tmp.files(), before);
    drop((sub, md, bus));

    let run = ring_dump(&tmp.base, &["remove-namespace"]);
    assert!(
        run.ok().starts_with("would remove namespace \"desk\""),
        "{}",
        run.stdout
    );
    assert_eq!(tmp.files(), before, "a dry run removes nothing");
    let run = ring_dump(&tmp.base, &["remove-namespace", "--yes"]);
    assert!(
        run.ok().starts_with("removed namespace \"desk\""),
        "{}",
        run.stdout
    );
    assert!(!tmp.ns.path().exists(), "the namespace is gone");
}

// ---------------------------------------------------------------------------
// show
// ---------------------------------------------------------------------------

/// `Cpus_allowed_list` of this process.
fn my_cpus() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_owned()
}

#[test]
fn show_gives_cpus_liveness_and_lag_in_records_and_bytes() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let mut publisher = md.publisher().expect("publisher");
    let mut reader = md.subscriber(StartAt::Tail).expect("subscriber");
    drop(
        md.durable_subscriber("audit", StartAt::Tail)
            .expect("durable"),
    );
    // Records of different sizes: the lag in bytes is their sum.
    for len in [10usize, 20, 30] {
        publisher.try_send(1, &vec![7; len]).expect("send");
    }
    drop(reader.try_read().expect("the first"));

    let doc = ring_dump(&tmp.base, &["--json", "show", "md"]).ok_json();
    let cpus = my_cpus();
    let p = &doc["publishers"][0];
    assert_eq!(
        (&p["cpus"], &p["liveness"]),
        (&Value::from(cpus.clone()), &Value::from("alive"))
    );
    let subs = doc["subscribers"].as_array().expect("subscribers");
    let audit = subs.iter().find(|s| s["name"] == "audit").expect("audit");
    assert_eq!(audit["liveness"], "detached_durable");
    assert!(
        audit.get("cpus").is_none(),
        "no CPUs for a detached one: {audit}"
    );
    assert_eq!(
        (&audit["lag"], &audit["lag_bytes"]),
        (&Value::from(3), &Value::from(60))
    );
    let live = subs.iter().find(|s| s["name"].is_null()).expect("reader");
    assert_eq!(
        (&live["lag"], &live["lag_bytes"]),
        (&Value::from(2), &Value::from(50))
    );
    assert_eq!(live["cpus"], cpus.as_str());

    let text = ring_dump(&tmp.base, &["show", "md"]);
    let out = text.ok();
    let cpus_text = format!("cpus {cpus}");
    let publisher_row = out
        .lines()
        .find(|l| l.contains("published"))
        .expect("the publisher's row");
    assert!(
        publisher_row.ends_with(&format!("alive  {cpus_text}")),
        "{publisher_row}"
    );
    let audit_row = out
        .lines()
        .find(|l| l.contains("\"audit\""))
        .expect("audit");
    assert!(audit_row.contains("lag 3 (60 bytes)"), "{audit_row}");
    assert!(audit_row.ends_with("detached durable"), "{audit_row}");
}
