//! C, C++ and Rust processes on one topic and one work queue: a C
//! publisher (`tests/c/publisher.c`) and a Rust publisher process each send
//! records to the queue, then to the topic; a C++ durable subscriber
//! (`tests/c/subscriber.cpp`, through `shmbus.hpp`) and a Rust durable
//! subscriber process each read every record of both publishers, in each
//! publisher's order and intact, then drain the queue between them: every
//! queued record is taken exactly once, by one or the other. The C
//! publisher also feeds an SPSC channel that the C++ subscriber drains. The C and
//! C++ programs are built with AddressSanitizer and
//! UndefinedBehaviorSanitizer, and a report fails them.
//!
//! The Rust processes are this test binary run again with a role in its
//! environment (the ignored test `rust_peer`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{compile, source, Lang, TempNs};
use shmbus::{Bus, Policy, QueueConfig, SpscConfig, StartAt, TopicConfig, WaitStrategy};

/// Records each publisher sends to the queue and to the topic.
const COUNT: u64 = 500;
/// Length of every record.
const RECORD_LEN: usize = 64;
/// The Rust publisher's record type (the C publisher's is 1).
const TYPE_RUST: u16 = 2;
/// Bound on any single wait.
const PATIENCE: Duration = Duration::from_secs(30);

/// Compiler flags of the C and C++ peers.
const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];
/// Their run-time options: leaks reported, any report fails the process.
const SANITIZE_ENV: [(&str, &str); 2] = [
    ("ASAN_OPTIONS", "detect_leaks=1:exitcode=23"),
    ("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"),
];

const ROLE: &str = "SHMBUS_FFI_TEST_ROLE";
const BASE: &str = "SHMBUS_FFI_TEST_BASE";
const NS: &str = "SHMBUS_FFI_TEST_NS";

/// The records of `tests/c/check.h`: the index, then a pattern of the
/// index, the byte position and the record type.
fn fill_record(buf: &mut [u8], record_type: u16, index: u64) {
    buf[..8].copy_from_slice(&index.to_le_bytes());
    for (k, b) in buf.iter_mut().enumerate().skip(8) {
        *b = (index.wrapping_mul(31) + k as u64 + u64::from(record_type)) as u8;
    }
}

/// The index of a record of `tests/c/check.h`'s pattern, if intact.
fn record_index(bytes: &[u8], record_type: u16) -> Option<u64> {
    let index = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut expected = vec![0u8; bytes.len()];
    fill_record(&mut expected, record_type, index);
    (expected == bytes).then_some(index)
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: 1024,
        max_payload: RECORD_LEN as u32,
        policy: Policy::Backpressure,
        ..TopicConfig::default()
    }
}

fn queue_config() -> QueueConfig {
    QueueConfig {
        slots: 1024,
        max_payload: RECORD_LEN as u32,
        ..QueueConfig::default()
    }
}

/// A child process, killed and reaped if the test fails before it ends.
struct Peer {
    name: &'static str,
    child: Option<Child>,
}

impl Peer {
    fn spawn(name: &'static str, cmd: &mut Command) -> Peer {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Peer {
            name,
            child: Some(child),
        }
    }

    /// Waits for the end; returns its stdout, or panics with both streams
    /// if it failed.
    fn finish(mut self) -> String {
        let child = self.child.take().expect("not finished yet");
        let out = child.wait_with_output().expect("wait for the peer");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{} failed with {}:\n--- stdout\n{stdout}\n--- stderr\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn rust_peer_command(role: &str, base: &Path, ns: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([
        "--exact",
        "rust_peer",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(BASE, base)
    .env(NS, ns);
    cmd
}

#[test]
fn c_and_cpp_and_rust_processes_share_a_topic_and_a_queue() {
    // Both built with AddressSanitizer and UndefinedBehaviorSanitizer: a
    // report makes the program fail (SANITIZE_ENV).
    let publisher_c = compile("publisher", Lang::C, &[source("publisher.c")], SANITIZE);
    let subscriber_cpp = compile(
        "subscriber",
        Lang::Cpp,
        &[source("subscriber.cpp")],
        SANITIZE,
    );
    let ns = TempNs::new("ffi-xproc");
    let bus = ns.bus();
    let topic = bus.topic("md", &topic_config()).expect("create the topic");
    let queue = bus
        .queue("orders", &queue_config())
        .expect("create the queue");
    let channel = bus
        .spsc("fills", &SpscConfig::with_capacity(1 << 14))
        .expect("create the channel");
    // Both durable subscribers exist before anything is published, so
    // they see every record, whenever their processes start.
    for name in ["cpp", "rust"] {
        drop(
            topic
                .durable_subscriber(name, StartAt::Tail)
                .expect("register"),
        );
    }
    let (base, name) = (ns.base.as_path(), ns.ns.name());
    let count = COUNT.to_string();
    let peers = [
        Peer::spawn(
            "C++ subscriber",
            Command::new(&subscriber_cpp)
                .args([
                    base.as_os_str(),
                    name.as_ref(),
                    count.as_ref(),
                    "cpp".as_ref(),
                    "channel".as_ref(),
                ])
                .envs(SANITIZE_ENV),
        ),
        Peer::spawn(
            "Rust subscriber",
            &mut rust_peer_command("subscriber", base, name),
        ),
        Peer::spawn(
            "C publisher",
            Command::new(&publisher_c)
                .args([base.as_os_str(), name.as_ref(), count.as_ref()])
                .envs(SANITIZE_ENV),
        ),
        Peer::spawn(
            "Rust publisher",
            &mut rust_peer_command("publisher", base, name),
        ),
    ];
    let outputs: Vec<String> = peers.into_iter().map(Peer::finish).collect();

    let mut taken: BTreeMap<(u16, u64), usize> = BTreeMap::new();
    for (who, out) in ["C++ subscriber", "Rust subscriber"].iter().zip(&outputs) {
        assert!(
            out.lines().any(|l| l == format!("topic {}", 2 * COUNT)),
            "{who} did not read every record:\n{out}"
        );
        for line in out.lines().filter_map(|l| l.strip_prefix("took ")) {
            let mut fields = line.split(' ').map(|f| f.parse::<u64>().expect("a number"));
            let (t, i) = (fields.next().expect("type"), fields.next().expect("index"));
            *taken.entry((t as u16, i)).or_default() += 1;
        }
    }
    let expected: BTreeMap<(u16, u64), usize> = [1, TYPE_RUST]
        .into_iter()
        .flat_map(|t| (0..COUNT).map(move |i| ((t, i), 1)))
        .collect();
    assert_eq!(taken, expected, "each queued record taken exactly once");
    assert!(
        outputs[0].lines().any(|l| l == format!("channel {COUNT}")),
        "the C++ consumer did not receive the channel's records:\n{}",
        outputs[0]
    );
    channel.remove().expect("remove the channel");
    topic.remove().expect("remove the topic");
    queue.remove().expect("remove the queue");
}

/// The Rust processes of the test above; does nothing unless started by it.
#[test]
#[ignore = "a child process of c_and_cpp_and_rust_processes_share_a_topic_and_a_queue"]
fn rust_peer() {
    let (Ok(role), Some(base), Ok(name)) = (
        std::env::var(ROLE),
        std::env::var_os(BASE),
        std::env::var(NS),
    ) else {
        return;
    };
    // The harness printed "test rust_peer ... " without a line end.
    println!();
    let bus = Bus::at(base, &name).expect("open the bus");
    let topic = bus
        .open_topic_timeout("md", PATIENCE)
        .expect("open the topic");
    let queue = bus
        .open_queue_timeout("orders", PATIENCE)
        .expect("open the queue");
    match role.as_str() {
        "publisher" => {
            let mut record = [0u8; RECORD_LEN];
            let mut producer = queue.producer().expect("queue producer");
            for i in 0..COUNT {
                fill_record(&mut record, TYPE_RUST, i);
                producer
                    .send_timeout(TYPE_RUST, &record, WaitStrategy::BACKOFF, PATIENCE)
                    .expect("send to the queue");
            }
            let mut publisher = topic.publisher().expect("publisher");
            for i in 0..COUNT {
                let mut claim = publisher
                    .claim_timeout(RECORD_LEN, WaitStrategy::BACKOFF, PATIENCE)
                    .expect("claim");
                fill_record(&mut claim, TYPE_RUST, i);
                claim.set_record_type(TYPE_RUST);
                claim.commit().expect("commit");
            }
        }
        "subscriber" => {
            let mut sub = topic
                .durable_subscriber("rust", StartAt::Tail)
                .expect("durable subscriber");
            let mut next = [0u64; 3];
            for _ in 0..2 * COUNT {
                let rec = sub
                    .read_timeout(WaitStrategy::BLOCKING, PATIENCE)
                    .expect("read");
                let t = rec.record_type();
                assert!(t == 1 || t == TYPE_RUST, "record type {t}");
                let index = record_index(&rec, t).expect("intact record");
                assert_eq!(index, next[usize::from(t)], "publisher {t} out of order");
                next[usize::from(t)] += 1;
            }
            println!("topic {}", 2 * COUNT);
            let mut consumer = queue.consumer().expect("queue consumer");
            while let Ok(taken) = consumer.try_take() {
                let t = taken.record_type();
                let index = record_index(&taken, t).expect("intact queue record");
                taken.ack().expect("ack");
                println!("took {t} {index}");
            }
        }
        other => panic!("unknown role {other}"),
    }
}
