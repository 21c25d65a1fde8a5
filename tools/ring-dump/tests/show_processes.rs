//! `ring-dump --json show` against a topic whose publisher and subscribers
//! are other processes (this test binary run again as children): what each
//! child did is what the counters, lag and liveness say, and a subscriber
//! killed with SIGKILL is shown dead with what it had read.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shmbus::bus::{Bus, Policy, StartAt, TopicConfig};
use shmbus::wait::WaitStrategy;

use common::{child_command, child_role, die_with_parent, TempNs};

const NS: &str = "desk";
const TOPIC: &str = "ticks";
const PUBLISHED: u64 = 40;
const RECORD: usize = 16;
const READ: u64 = 25;
const SKIPPED: u64 = 3;
const READ_BY_THE_KILLED: u64 = 5;

fn config() -> TopicConfig {
    TopicConfig {
        slots: 64,
        max_payload: 64,
        policy: Policy::Backpressure,
        max_subscribers: 4,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(2),
    }
}

/// A child that does its part, says `ready`, then stays attached until its
/// stdin closes (or it is killed).
fn run_child(role: &str, base: &Path) {
    die_with_parent();
    let bus = Bus::at(base, NS).expect("bus");
    let topic = bus.open_topic(TOPIC).expect("topic");
    // Kept alive until the end: dropping a handle detaches it.
    let mut keep = Vec::new();
    match role {
        "publisher" => {
            let mut publisher = topic.publisher().expect("publisher");
            for i in 0..PUBLISHED {
                publisher
                    .try_send(1, &[i as u8; RECORD])
                    .expect("room in the log");
            }
            keep.push(Box::new(publisher) as Box<dyn std::any::Any>);
        }
        "reader" => {
            let mut sub = topic.subscriber(StartAt::Oldest).expect("subscriber");
            for _ in 0..READ {
                drop(
                    sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(10))
                        .expect("a record"),
                );
            }
            for _ in 0..SKIPPED {
                sub.skip().expect("skip");
            }
            keep.push(Box::new(sub));
        }
        "doomed" => {
            let mut sub = topic.subscriber(StartAt::Oldest).expect("subscriber");
            for _ in 0..READ_BY_THE_KILLED {
                drop(
                    sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(10))
                        .expect("a record"),
                );
            }
            keep.push(Box::new(sub));
        }
        other => panic!("unknown role {other}"),
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(keep);
}

/// A child process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `role` and waits until it has done its part.
fn start(role: &str, base: &Path) -> Peer {
    let mut child = child_command(
        "show_counts_what_each_process_did_and_a_killed_one_is_dead",
        role,
        base,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn child");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        out.read_line(&mut line).expect("read child stdout");
        assert!(!line.is_empty(), "{role} ended before it was ready");
    }
    Peer(child)
}

fn show(base: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ring-dump"))
        .arg("--dir")
        .arg(base)
        .args(["-n", NS, "--json", "show", TOPIC])
        .env_remove("SHMBUS_DIR")
        .output()
        .expect("run ring-dump");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn show_counts_what_each_process_did_and_a_killed_one_is_dead() {
    if let Some((role, base)) = child_role() {
        run_child(&role, &base);
        return;
    }
    let tmp = TempNs::named("ring-dump-procs", NS);
    let bus = tmp.bus();
    let _topic = bus.topic(TOPIC, &config()).expect("topic");
    let publisher = start("publisher", &tmp.base);
    let reader = start("reader", &tmp.base);
    let mut doomed = start("doomed", &tmp.base);
    let doomed_pid = doomed.0.id();
    doomed.0.kill().expect("SIGKILL");
    doomed.0.wait().expect("reap");

    let doc = show(&tmp.base);
    let publishers = doc["publishers"].as_array().expect("publishers");
    assert_eq!(publishers.len(), 1, "{doc}");
    let p = &publishers[0];
    assert_eq!(p["pid"], publisher.0.id());
    assert_eq!(p["alive"], true);
    assert_eq!(p["counters"]["records"], PUBLISHED);
    assert_eq!(p["counters"]["bytes"], PUBLISHED * RECORD as u64);

    let subscriber = |pid: u32| {
        doc["subscribers"]
            .as_array()
            .expect("subscribers")
            .iter()
            .find(|s| s["pid"] == pid)
            .unwrap_or_else(|| panic!("no subscriber of pid {pid} in {doc}"))
            .clone()
    };
    let r = subscriber(reader.0.id());
    assert_eq!(r["alive"], true);
    assert_eq!(r["lag"], PUBLISHED - READ - SKIPPED);
    assert_eq!(r["counters"]["records"], READ);
    assert_eq!(r["counters"]["bytes"], READ * RECORD as u64);
    assert_eq!(r["counters"]["skips"], SKIPPED);
    assert_eq!(r["counters"]["missed"], SKIPPED);

    let d = subscriber(doomed_pid);
    assert_eq!(d["alive"], false, "killed: its liveness lock is gone");
    assert_eq!(d["lag"], PUBLISHED - READ_BY_THE_KILLED);
    assert_eq!(d["counters"]["records"], READ_BY_THE_KILLED);
    drop((publisher, reader));
}
