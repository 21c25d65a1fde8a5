//! Smoke runs of the mapped-bytes fuzz harness (`tests/mapped_fuzz/harness.rs`,
//! shared with `fuzz/fuzz_targets/mapped.rs` and `mapped_queue.rs`): a
//! deterministic sequence of inputs, each a case that creates an SPSC
//! ring, two topics and their directory (`mapped_bytes_smoke`), or a work
//! queue behind a directory and one on the heap (`queue_mapped_bytes_smoke`,
//! `tests/mapped_fuzz/queue.rs`), runs producer, consumer and directory
//! operations on them and mutates their mapped bytes in between. Every
//! call must return; a panic fails the test, and so does a case that does
//! not finish within [`CASE_LIMIT`].
//!
//! Knobs (environment variables):
//! * `SHMBUS_FUZZ_CASES`: how many cases of each run (default
//!   [`DEFAULT_CASES`]: 2,000 in a release build, 200 in a debug one);
//! * `SHMBUS_FUZZ_SEED`: the first case's seed (default 0), to run other
//!   cases than CI does;
//! * `SHMBUS_FUZZ_REPLAY`: a file (a libFuzzer crash artifact of `mapped`)
//!   to run as the only input of `replay_artifact`;
//!   `SHMBUS_FUZZ_REPLAY_QUEUE`, the same for `mapped_queue`.
//!
//! The `found_*` tests are minimised reproducers of defects the harness
//! found in the library (each failed before its fix).

mod common;
#[path = "mapped_fuzz/harness.rs"]
mod harness;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::splitmix;
use harness::Fuzzer;

/// Cases run by default: about a minute in a release build (some cases
/// wait the two seconds an open gives a creator that has just made a file
/// whose header reads zero); a debug build runs fewer.
const DEFAULT_CASES: u64 = if cfg!(debug_assertions) { 200 } else { 2000 };
/// A case still running after this long is a hang.
const CASE_LIMIT: Duration = Duration::from_secs(10);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The input of case `seed`: 32 to 2079 bytes from SplitMix64.
fn input(seed: u64) -> Vec<u8> {
    let mut x = splitmix(seed ^ 0x6d61_7070_6564_2d66);
    let len = 32 + (x % 2048) as usize;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = splitmix(x);
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Which harness entry runs an input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `Fuzzer::run`: an SPSC ring, topics, the directory.
    Mixed,
    /// `Fuzzer::run_queue`: work queues.
    Queue,
}

enum Progress {
    Started(u64),
    Failed(u64, String),
    Done(harness::Stats),
}

/// Where the last panic on this thread happened (for survey mode).
fn panic_site() -> &'static std::sync::Mutex<String> {
    static SITE: std::sync::OnceLock<std::sync::Mutex<String>> = std::sync::OnceLock::new();
    SITE.get_or_init(Default::default)
}

/// Runs `inputs` on a worker thread; fails if one panics or takes longer
/// than [`CASE_LIMIT`].
fn run_watched(tag: &'static str, kind: Kind, inputs: Vec<(u64, Vec<u8>)>) -> harness::Stats {
    // Survey mode (`SHMBUS_FUZZ_SURVEY=1`): go on after a panic and list
    // each distinct panic site once, with the first case that hit it.
    let survey = std::env::var_os("SHMBUS_FUZZ_SURVEY").is_some();
    if survey {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some("fuzz-worker") {
                return default(info);
            }
            let site = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if let Ok(mut s) = panic_site().lock() {
                *s = site;
            }
        }));
    }
    let (tx, rx) = mpsc::channel();
    // Set when the main thread gives up on a hung case: the worker stops
    // before its next case.
    let abandon = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = abandon.clone();
    // The cases' base directory, removed when this returns or panics.
    let tmp = common::TempNs::new(tag);
    let fuzzer = Fuzzer::new(&tmp.base);
    let worker = std::thread::Builder::new()
        .name("fuzz-worker".into())
        .spawn(move || {
            let mut fuzzer = fuzzer;
            let mut sites = std::collections::BTreeSet::new();
            for (seed, data) in inputs {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let _ = tx.send(Progress::Started(seed));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match kind {
                    Kind::Mixed => fuzzer.run(&data),
                    Kind::Queue => fuzzer.run_queue(&data),
                }));
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    if survey {
                        let site = panic_site().lock().map(|s| s.clone()).unwrap_or_default();
                        if sites.insert(site.clone()) {
                            eprintln!("SURVEY case {seed}: {site}: {msg}");
                        }
                        continue;
                    }
                    let _ = tx.send(Progress::Failed(seed, msg));
                    return;
                }
            }
            let _ = tx.send(Progress::Done(fuzzer.stats));
        })
        .expect("spawn the fuzz worker");
    let mut current = None;
    loop {
        match rx.recv_timeout(CASE_LIMIT) {
            Ok(Progress::Started(seed)) => current = Some(seed),
            Ok(Progress::Failed(seed, msg)) => {
                let _ = worker.join();
                panic!(
                    "case {seed} panicked: {msg} (a smoke case reruns alone with SHMBUS_FUZZ_SEED={seed} SHMBUS_FUZZ_CASES=1)"
                );
            }
            Ok(Progress::Done(stats)) => {
                let _ = worker.join();
                return stats;
            }
            Err(_) => {
                // The worker is stuck: let it stop after this case if it
                // ever returns; `tmp` removes its files as this panics.
                abandon.store(true, std::sync::atomic::Ordering::Relaxed);
                let limit = Instant::now() + 3 * CASE_LIMIT;
                while let Some(left) = limit.checked_duration_since(Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(Progress::Started(_)) => {}
                        _ => break,
                    }
                }
                panic!(
                    "case {current:?} did not finish within {CASE_LIMIT:?} (a hang; rerun it alone with SHMBUS_FUZZ_SEED=<case> SHMBUS_FUZZ_CASES=1)"
                );
            }
        }
    }
}

/// Runs the smoke cases of `kind` and checks that the harness really ran.
fn smoke(tag: &'static str, kind: Kind) {
    let first = env_u64("SHMBUS_FUZZ_SEED", 0);
    let cases = env_u64("SHMBUS_FUZZ_CASES", DEFAULT_CASES);
    let inputs = (first..first.saturating_add(cases))
        .map(|seed| (seed, input(seed)))
        .collect();
    let started = Instant::now();
    let stats = run_watched(tag, kind, inputs);
    eprintln!(
        "mapped fuzz {tag}: {} cases, {} steps, {} mutations, {} errors returned, {} reads checked, in {:?}",
        stats.cases,
        stats.steps,
        stats.mutations,
        stats.errors,
        stats.checked_reads,
        started.elapsed()
    );
    if std::env::var_os("SHMBUS_FUZZ_SURVEY").is_some() {
        return;
    }
    // The harness really ran: cases were set up, mutated, and read back.
    assert_eq!(stats.cases, cases, "every case set up its segments");
    if cases >= 50 {
        assert!(stats.mutations > cases, "mutations were written");
        assert!(stats.checked_reads > cases, "records were read and checked");
    }
}

#[test]
fn mapped_bytes_smoke() {
    smoke("smoke", Kind::Mixed);
}

/// Work queues: several producers and consumers of a mapped queue and of
/// a heap one, checked against the model while no byte was mutated.
#[test]
fn queue_mapped_bytes_smoke() {
    smoke("queue-smoke", Kind::Queue);
}

/// Runs one libFuzzer artifact given by `SHMBUS_FUZZ_REPLAY` (does nothing
/// without it).
#[test]
fn replay_artifact() {
    for (var, kind) in [
        ("SHMBUS_FUZZ_REPLAY", Kind::Mixed),
        ("SHMBUS_FUZZ_REPLAY_QUEUE", Kind::Queue),
    ] {
        if let Some(path) = std::env::var_os(var) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {var}: {e}"));
            run_watched("replay", kind, vec![(0, data)]);
        }
    }
}

/// Every libFuzzer artifact kept in `tests/mapped_fuzz/artifacts/` (inputs
/// that once crashed the `mapped` target, or the `mapped_queue` one for
/// those named `queue-*`, named for what they found) runs cleanly now. In
/// a debug build they run with overflow checks, as the targets do.
#[test]
fn kept_artifacts_run_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mapped_fuzz/artifacts");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("the artifacts directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for kind in [Kind::Mixed, Kind::Queue] {
        let inputs: Vec<(u64, Vec<u8>)> = files
            .iter()
            .filter(|p| {
                let queue = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("queue-"));
                queue == (kind == Kind::Queue)
            })
            .map(|p| std::fs::read(p).expect("read artifact"))
            .enumerate()
            .map(|(i, data)| (i as u64, data))
            .collect();
        assert!(
            inputs.len() >= if kind == Kind::Mixed { 2 } else { 1 },
            "artifacts missing from {}",
            dir.display()
        );
        run_watched("artifact", kind, inputs);
    }
}

// ---------------------------------------------------------------------------
// Reproducers of what the harness found, minimised. A new one starts
// `#[ignore]`d, with its finding in `harness::OPEN_FINDINGS`, until its fix
// lands.
// ---------------------------------------------------------------------------

use shmbus::bus::{Bus, Policy, StartAt, TopicConfig};

use core::mem::offset_of;
use shmbus::layout::{
    BroadcastControl, TopicEntry, BROADCAST_CONTROL_OFFSET, DIRECTORY_ENTRIES_OFFSET,
};

/// Offsets in a broadcast log segment, from `shmbus::layout`.
const LOG_CLAIM_TIMEOUT: usize =
    BROADCAST_CONTROL_OFFSET + offset_of!(BroadcastControl, reclaim_after_ns);
const LOG_TAIL: usize = BROADCAST_CONTROL_OFFSET + offset_of!(BroadcastControl, tail);
const LOG_GATE: usize = BROADCAST_CONTROL_OFFSET + offset_of!(BroadcastControl, gate);
/// Offset of directory entry `e` (its state word: epoch in the high half).
fn dir_entry(e: usize) -> usize {
    DIRECTORY_ENTRIES_OFFSET + e * core::mem::size_of::<TopicEntry>()
}

fn small_topic(policy: Policy) -> TopicConfig {
    TopicConfig {
        slots: 4,
        max_payload: 8,
        policy,
        max_subscribers: 2,
        max_publishers: 2,
        reclaim_after: Duration::from_millis(1),
    }
}

/// Runs `f` on a thread; fails if it panics or has not returned after
/// `limit`.
fn within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => {
            let _ = worker.join();
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(e) = worker.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?} (a hang)"),
    }
}

/// A bus in a temporary namespace with topic "alpha", and the path of its
/// log.
fn bus_with_alpha(tag: &str, policy: Policy) -> (common::TempNs, std::path::PathBuf) {
    let tmp = common::TempNs::new(tag);
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.topic("alpha", &small_topic(policy)).expect("topic");
    let log = tmp.file(&topic.record().segment, "bcast");
    (tmp, log)
}

// Found by the harness, fixed: a broadcast log's `reclaim_after_ns` (control block, offset 32) is
// read on open without being checked against the directory's claim timeout
// (`check_log` in src/bus.rs compares every other immutable field). With
// a hostile `u64::MAX` there, a publisher's `try_claim` on an `Overwrite`
// log whose previous lap holds an unfinished claim spins in
// `Publisher::wait_previous_lap` (src/ring/broadcast.rs:940-952) for 584
// years: `try_send` never returns.
#[test]
fn found_hostile_log_claim_timeout_hangs_overwrite_claim() {
    let (tmp, log) = bus_with_alpha("fz-claimtimeout", Policy::Overwrite);
    assert!(harness::poke(
        &log,
        LOG_CLAIM_TIMEOUT,
        &u64::MAX.to_le_bytes()
    ));
    let base = tmp.base.clone();
    within(Duration::from_secs(5), move || {
        let bus = Bus::at(&base, "t").expect("bus");
        let topic = bus.open_topic("alpha").expect("topic");
        let Ok(mut p) = topic.publisher() else {
            return; // refusing the hostile log is a fix too
        };
        // Seq 0 is claimed and never finished (a stalled or dead publisher).
        let claim = p.try_claim(1).expect("claim seq 0");
        core::mem::forget(claim);
        for _ in 1..4 {
            let _ = p.try_send(1, b"x");
        }
        // Seq 4 reuses seq 0's slot: waits the claim timeout for it.
        let _ = p.try_send(1, b"y");
    });
}

// Found by the harness, fixed: (issue 7, item 6) a hostile gate of `u64::MAX` on a Backpressure
// log: debug builds panic "attempt to add with overflow" at
// src/ring/broadcast.rs:886 (`gate_cache + slots` in
// `Publisher::gate_allows`).
#[test]
fn found_hostile_gate_overflows_in_gate_allows() {
    let (tmp, log) = bus_with_alpha("fz-gate", Policy::Backpressure);
    assert!(harness::poke(&log, LOG_GATE, &u64::MAX.to_le_bytes()));
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.open_topic("alpha").expect("topic");
    if let Ok(mut p) = topic.publisher() {
        let _ = p.try_send(1, b"x");
    }
}

// Found by the harness, fixed: (issue 7, item 6) a hostile tail of `u64::MAX - 1` on a
// Backpressure log with a subscriber: debug builds panic "attempt to add
// with overflow" at src/ring/broadcast.rs:920 (`gate_cache + slots` at the
// end of `Publisher::gate_allows`, after a scan found the subscriber's
// cursor there).
#[test]
fn found_hostile_tail_overflows_after_gate_scan() {
    let (tmp, log) = bus_with_alpha("fz-gatescan", Policy::Backpressure);
    assert!(harness::poke(&log, LOG_TAIL, &(u64::MAX - 1).to_le_bytes()));
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.open_topic("alpha").expect("topic");
    let _s = topic.subscriber(StartAt::Tail);
    if let Ok(mut p) = topic.publisher() {
        for _ in 0..2 {
            let _ = p.try_send(1, b"x");
        }
    }
}

// Found by the harness, fixed: (issue 7, item 6) a hostile tail of `u64::MAX` seen by a new
// subscriber: its first read panics in debug builds with "attempt to add
// with overflow" at src/layout.rs:448 (`stamp_committed(seq)`, `seq + 1`,
// called from `Subscriber::locate`).
#[test]
fn found_hostile_tail_overflows_stamp_on_read() {
    let (tmp, log) = bus_with_alpha("fz-stampread", Policy::Backpressure);
    assert!(harness::poke(&log, LOG_TAIL, &u64::MAX.to_le_bytes()));
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.open_topic("alpha").expect("topic");
    if let Ok(mut s) = topic.subscriber(StartAt::Tail) {
        let _ = s.try_read().map(|r| r.len());
    }
}

// Found by the harness, fixed: (issue 7, item 6) a hostile tail of `u64::MAX` on an Overwrite
// log: the next claim panics in debug builds with "attempt to add with
// overflow" at src/layout.rs:454 (`stamp_writing(seq)`, called from
// `Publisher::begin`).
#[test]
fn found_hostile_tail_overflows_stamp_on_claim() {
    let (tmp, log) = bus_with_alpha("fz-stampclaim", Policy::Overwrite);
    assert!(harness::poke(&log, LOG_TAIL, &u64::MAX.to_le_bytes()));
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.open_topic("alpha").expect("topic");
    within(Duration::from_secs(5), move || {
        if let Ok(mut p) = topic.publisher() {
            let _ = p.try_send(1, b"x");
        }
    });
}

// Found by the harness, fixed: (issue 7, item 6) an Overwrite subscriber whose cursor is within
// a lap of `u64::MAX` (tail poked to `u64::MAX - 2` before it subscribed):
// after 64 empty looks, debug builds panic "attempt to add with overflow"
// at src/ring/broadcast.rs:1402 (`seq + slots` in `Subscriber::locate`).
#[test]
fn found_hostile_tail_overflows_lap_check() {
    let (tmp, log) = bus_with_alpha("fz-lapcheck", Policy::Overwrite);
    assert!(harness::poke(&log, LOG_TAIL, &(u64::MAX - 2).to_le_bytes()));
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus.open_topic("alpha").expect("topic");
    if let Ok(mut s) = topic.subscriber(StartAt::Tail) {
        for _ in 0..128 {
            let _ = s.try_read().map(|r| r.len());
        }
    }
}

// Found by the harness, fixed: (issue 7, item 6) a directory whose free entries carry epoch
// `u32::MAX`: creating a topic panics in debug builds with "attempt to add
// with overflow" at src/directory/table.rs:216 (`epoch + 1` in
// `claim_or_match`).
#[test]
fn found_hostile_directory_epoch_overflows_on_create() {
    let tmp = common::TempNs::new("fz-epoch");
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let dir = tmp.file("directory", "dir");
    for e in 0..256 {
        assert!(harness::poke(
            &dir,
            dir_entry(e) + 4,
            &u32::MAX.to_le_bytes()
        ));
    }
    let _ = bus.topic("alpha", &small_topic(Policy::Backpressure));
}

// Found by the harness, fixed: (issue 7, item 7) an entry left CREATING with its lock free (the
// creator is gone): `open_topic` waits the whole create timeout (10 s,
// `CREATE_WAIT`, in `claim_or_match`, src/directory/table.rs:260) and then
// fails, instead of taking it over or reporting it at once.
#[test]
fn found_dead_creator_entry_blocks_open_topic() {
    let tmp = common::TempNs::new("fz-creating");
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let topic = bus
        .topic("alpha", &small_topic(Policy::Backpressure))
        .expect("topic");
    let entry = topic.record().entry;
    let dir = tmp.file("directory", "dir");
    assert!(harness::poke(&dir, dir_entry(entry), &1u32.to_le_bytes()));
    let started = Instant::now();
    let _ = bus.open_topic("alpha");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "open_topic took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Work queues
// ---------------------------------------------------------------------------

use shmbus::bus::QueueConfig;
use shmbus::layout::{QueueControl, MAX_SEQUENCE, QUEUE_CONTROL_OFFSET};
use shmbus::ring::queue::RecvError;

/// Offsets in a work queue segment, from `shmbus::layout`.
const QUEUE_TAIL: usize = QUEUE_CONTROL_OFFSET + offset_of!(QueueControl, tail);
const QUEUE_HEAD: usize = QUEUE_CONTROL_OFFSET + offset_of!(QueueControl, head);

/// A bus in a temporary namespace with a two-slot work queue "work" that
/// went round once (records 0 and 1 taken and acknowledged: both slots
/// free at lap 1), a producer and a consumer of it, and the queue's file.
fn queue_after_one_lap(
    tag: &str,
) -> (
    common::TempNs,
    shmbus::bus::QueueProducer,
    shmbus::bus::QueueConsumer,
    std::path::PathBuf,
) {
    let tmp = common::TempNs::new(tag);
    let bus = Bus::at(&tmp.base, "t").expect("bus");
    let config = QueueConfig {
        slots: 2,
        max_payload: 8,
        max_producers: 1,
        max_consumers: 1,
        reclaim_after: Duration::from_secs(1),
    };
    let queue = bus.queue("work", &config).expect("queue");
    let mut p = queue.producer().expect("producer");
    let mut c = queue.consumer().expect("consumer");
    let mut buf = [0u8; 8];
    for _ in 0..2 {
        p.try_send(1, b"x").expect("room");
        c.try_recv(&mut buf).expect("record");
    }
    let path = queue.path();
    (tmp, p, c, path)
}

// Found by the harness, fixed: a work queue whose head (a valid
// sequence) is far behind the laps its slots hold, with a tail past it: a
// take walked the head one sequence at a time toward the slots' lap (here
// 2^41 steps, in the loop of `Consumer::take_next`, its `Ahead` branch):
// `try_take` never returned. A slot two laps or more ahead of a head that
// nobody moved is now a corrupt stamp.
#[test]
fn found_queue_head_far_behind_the_stamps_hangs_take() {
    let (_tmp, _p, mut c, path) = queue_after_one_lap("fz-qahead");
    // Lap 2^48 - 2^40 of two slots: both slots (lap 1) are 2^40 + 1 laps
    // ahead of it.
    let head = ((1u64 << 48) - (1 << 40)) * 2;
    assert!(head <= MAX_SEQUENCE);
    assert!(harness::poke(&path, QUEUE_HEAD, &head.to_le_bytes()));
    assert!(harness::poke(
        &path,
        QUEUE_TAIL,
        &MAX_SEQUENCE.to_le_bytes()
    ));
    within(Duration::from_secs(5), move || {
        let r = c.try_take().map(|r| r.len());
        assert!(matches!(r, Err(RecvError::Corrupt(_))), "{r:?}");
    });
}
