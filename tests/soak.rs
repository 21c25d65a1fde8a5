//! Soak: 500,000 records a second of 512 bytes between two processes for a
//! long time, first over an SPSC ring, then over a `Backpressure` topic,
//! with zero loss and a flat resident set.
//!
//! Skipped (it prints why and passes) unless `SHMBUS_SOAK_SECS` is set:
//! `SHMBUS_SOAK_SECS=60 cargo test --release --test soak -- --nocapture`
//! runs each transport for 60 s (an empty or unreadable value means 60).
//!
//! For each transport a writer process and a reader process run; this
//! process only watches them.
//!
//! * The writer paces itself on the monotonic clock: by time `t` it has
//!   sent `t × 500,000` records (after a hiccup it catches up in a burst),
//!   then sends an END record. Payloads are `[seq u64][pattern][crc32]`.
//! * The reader checks that every record is the next sequence number, 512
//!   bytes, with an intact CRC, until END.
//! * Every second this process samples VmRSS of both from
//!   `/proc/<pid>/status`. Flat means: the largest sample over the last
//!   80 % of the run is within 1 MiB of the sample taken when the first
//!   20 % (the warm-up) ended.
//!
//! Afterwards: records sent = records received (zero loss), the achieved
//! rate is at least 90 % of the target, and both resident sets are flat.
//! It prints the rate, the record count and a summary of the samples.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    child_command, child_role, die_with_parent, splitmix, vm_rss_kib, SpawnOneAtATime, TempNs,
};
use shmbus::bus::{Bus, Policy, RecvError, StartAt, TopicConfig};
use shmbus::ring::spsc::SpscConfig;
use shmbus::wait::WaitStrategy;

const TEST: &str = "soak_two_processes_lose_nothing_and_stay_flat";
const RATE: u64 = 500_000;
const LEN: usize = 512;
/// Record type of an ordinary record and of the END record.
const DATA: u16 = 0;
const END: u16 = 1;
const RING: &str = "soak_ring";
const TOPIC: &str = "soak";
const SUBSCRIBER: &str = "soak-reader";
/// How long a reader waits for one record before it gives up.
const PATIENCE: Duration = Duration::from_secs(20);
/// Allowed growth of VmRSS after warm-up.
const FLAT_KIB: u64 = 1024;

fn ring_config() -> SpscConfig {
    // 8 MiB: about 30 ms of records, room for a descheduled reader.
    SpscConfig::with_capacity(8 << 20)
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: 16_384,
        max_payload: LEN as u32,
        policy: Policy::Backpressure,
        max_subscribers: 4,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

fn soak_secs() -> Option<u64> {
    let v = std::env::var("SHMBUS_SOAK_SECS").ok()?;
    Some(v.trim().parse().unwrap_or(60).max(1))
}

// ---------------------------------------------------------------------------
// Payloads: [seq u64][pattern][crc32 of everything before]
// ---------------------------------------------------------------------------

fn fill(seq: u64, buf: &mut [u8]) {
    let body = buf.len() - 4;
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    let mut x = splitmix(seq);
    for chunk in buf[8..body].chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let crc = crc32fast::hash(&buf[..body]);
    buf[body..].copy_from_slice(&crc.to_le_bytes());
}

fn check(expected: u64, record_type: u16, payload: &[u8]) {
    assert_eq!(record_type, DATA, "record {expected}: unexpected type");
    assert_eq!(payload.len(), LEN, "record {expected}: wrong length");
    let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    assert_eq!(seq, expected, "a record was lost, duplicated or reordered");
    let body = LEN - 4;
    let stored = u32::from_le_bytes(payload[body..].try_into().expect("4 bytes"));
    assert_eq!(
        crc32fast::hash(&payload[..body]),
        stored,
        "record {seq} is corrupt"
    );
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

/// Sends `secs × RATE` records paced on the monotonic clock through
/// `send(seq)`, then returns `(records, elapsed)`.
fn paced(secs: u64, mut send: impl FnMut(u64)) -> (u64, Duration) {
    let total_ns = u128::from(secs) * 1_000_000_000;
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let elapsed = start.elapsed().as_nanos();
        if elapsed >= total_ns {
            break;
        }
        let due = (elapsed * u128::from(RATE) / 1_000_000_000) as u64;
        if sent >= due {
            // Ahead: about 100 records ahead is 200 µs; sleep it off.
            if sent - due > 64 {
                std::thread::sleep(Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        // Behind (or on time): catch up in bursts of at most 1024.
        let until = due.min(sent + 1024);
        while sent < until {
            send(sent);
            sent += 1;
        }
    }
    (sent, start.elapsed())
}

fn result_file(base: &Path, role: &str) -> PathBuf {
    base.join(format!("result-{role}"))
}

fn write_result(base: &Path, role: &str, records: u64, elapsed: Duration) {
    std::fs::write(
        result_file(base, role),
        format!("{records} {}", elapsed.as_nanos()),
    )
    .expect("write the result file");
}

fn read_result(base: &Path, role: &str) -> (u64, Duration) {
    let text = std::fs::read_to_string(result_file(base, role))
        .unwrap_or_else(|e| panic!("{role} left no result: {e}"));
    let mut f = text
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    let records = f.next().expect("records");
    let ns = f.next().expect("elapsed");
    (records, Duration::from_nanos(ns))
}

fn run_child(role: &str, base: &Path) {
    die_with_parent();
    let secs: u64 = std::env::var("SHMBUS_SOAK_CHILD_SECS")
        .expect("duration")
        .parse()
        .expect("seconds");
    let mut buf = [0u8; LEN];
    match role {
        "spsc-writer" => {
            let bus = Bus::at(base, "t").expect("open bus");
            let ring = bus.open_spsc(RING).expect("open channel");
            let mut tx = ring.producer().expect("attach producer");
            let (sent, elapsed) = paced(secs, |seq| {
                let mut slot = tx
                    .claim_timeout(LEN, WaitStrategy::BACKOFF, PATIENCE)
                    .expect("the reader keeps up");
                fill(seq, &mut slot);
                slot.set_record_type(DATA);
                slot.commit();
            });
            let mut end = tx
                .claim_timeout(0, WaitStrategy::BACKOFF, PATIENCE)
                .expect("room for END");
            end.set_record_type(END);
            end.commit();
            write_result(base, role, sent, elapsed);
        }
        "spsc-reader" => {
            let bus = Bus::at(base, "t").expect("open bus");
            let ring = bus.open_spsc(RING).expect("open channel");
            let mut rx = ring.consumer().expect("attach consumer");
            let start = Instant::now();
            let mut seq = 0u64;
            loop {
                let rec = match rx.read_timeout(WaitStrategy::BACKOFF, PATIENCE) {
                    Ok(rec) => rec,
                    Err(RecvError::TimedOut) => panic!("no record for {PATIENCE:?} after {seq}"),
                    Err(e) => panic!("after {seq} records: {e}"),
                };
                if rec.record_type() == END {
                    break;
                }
                check(seq, rec.record_type(), &rec);
                seq += 1;
            }
            write_result(base, role, seq, start.elapsed());
        }
        "topic-writer" => {
            let bus = Bus::at(base, "t").expect("open bus");
            let topic = bus.topic(TOPIC, &topic_config()).expect("open topic");
            let mut p = topic.publisher().expect("publisher");
            let (sent, elapsed) = paced(secs, |seq| {
                fill(seq, &mut buf);
                p.send_blocking(DATA, &buf, WaitStrategy::BACKOFF)
                    .expect("publish");
            });
            p.send_blocking(END, &[], WaitStrategy::BACKOFF)
                .expect("publish END");
            write_result(base, role, sent, elapsed);
        }
        "topic-reader" => {
            let bus = Bus::at(base, "t").expect("open bus");
            let topic = bus.topic(TOPIC, &topic_config()).expect("open topic");
            let mut sub = topic
                .durable_subscriber(SUBSCRIBER, StartAt::Oldest)
                .expect("subscribe");
            let start = Instant::now();
            let mut seq = 0u64;
            loop {
                let rec = match sub.read_timeout(WaitStrategy::BACKOFF, PATIENCE) {
                    Ok(rec) => rec,
                    Err(RecvError::TimedOut) => panic!("no record for {PATIENCE:?} after {seq}"),
                    Err(e) => panic!("after {seq} records: {e}"),
                };
                if rec.record_type() == END {
                    break;
                }
                check(seq, rec.record_type(), &rec);
                seq += 1;
            }
            write_result(base, role, seq, start.elapsed());
        }
        other => panic!("unknown soak role {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The watcher
// ---------------------------------------------------------------------------

/// A child killed and reaped on drop unless it was waited for.
struct Kid(Child, &'static str);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// VmRSS samples of one process, KiB, one a second.
struct Samples {
    role: &'static str,
    kib: Vec<u64>,
}

impl Samples {
    /// A one-line summary, and whether the samples are flat.
    fn flat(&self) -> (String, bool) {
        let n = self.kib.len();
        assert!(
            n >= 5,
            "{}: only {n} VmRSS samples, too few to judge",
            self.role
        );
        let warm = n / 5;
        let baseline = self.kib[warm];
        let rest = &self.kib[warm..];
        let max = rest.iter().copied().max().unwrap_or(baseline);
        let min = rest.iter().copied().min().unwrap_or(baseline);
        let summary = format!(
            "{} VmRSS: {n} samples, first {} KiB, after warm-up {baseline} KiB, then \
             {min}..={max} KiB, last {} KiB",
            self.role,
            self.kib[0],
            self.kib[n - 1]
        );
        (summary, max <= baseline + FLAT_KIB)
    }
}

fn spawn(role: &'static str, base: &Path, secs: u64) -> Kid {
    let child = child_command(TEST, role, base)
        .env("SHMBUS_SOAK_CHILD_SECS", secs.to_string())
        .stdout(Stdio::null())
        .spawn_one_at_a_time();
    Kid(child, role)
}

/// Runs one writer and one reader of `transport` for `secs` and checks them.
fn run_pair(transport: &str, secs: u64) {
    let t = TempNs::new("soak");
    match transport {
        "spsc" => {
            let bus = Bus::at(&t.base, "t").expect("open bus");
            bus.spsc(RING, &ring_config()).expect("create ring");
        }
        _ => {
            let bus = Bus::at(&t.base, "t").expect("open bus");
            let topic = bus.topic(TOPIC, &topic_config()).expect("create topic");
            // The reader exists at position 0 before anything is published.
            drop(
                topic
                    .durable_subscriber(SUBSCRIBER, StartAt::Oldest)
                    .expect("register the reader"),
            );
        }
    }
    let writer_role: &'static str = if transport == "spsc" {
        "spsc-writer"
    } else {
        "topic-writer"
    };
    let reader_role: &'static str = if transport == "spsc" {
        "spsc-reader"
    } else {
        "topic-reader"
    };
    let mut kids = [
        spawn(reader_role, &t.base, secs),
        spawn(writer_role, &t.base, secs),
    ];
    let mut samples: Vec<Samples> = kids
        .iter()
        .map(|k| Samples {
            role: k.1,
            kib: Vec::new(),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(secs) + Duration::from_secs(120);
    let mut next = Instant::now() + Duration::from_secs(1);
    let mut done = [false; 2];
    while done.iter().any(|d| !d) {
        assert!(
            Instant::now() < deadline,
            "{transport}: the processes did not finish within {secs} s + 120 s"
        );
        for (i, kid) in kids.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let Some(status) = kid.0.try_wait().expect("poll a child") {
                assert!(status.success(), "{transport} {} failed: {status}", kid.1);
                done[i] = true;
            }
        }
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            for (i, kid) in kids.iter().enumerate() {
                if !done[i] {
                    if let Some(kib) = vm_rss_kib(kid.0.id()) {
                        samples[i].kib.push(kib);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let (sent, elapsed) = read_result(&t.base, writer_role);
    let (received, _) = read_result(&t.base, reader_role);
    let rate = sent as f64 / elapsed.as_secs_f64();
    eprintln!(
        "soak {transport}: {sent} records of {LEN} bytes sent in {elapsed:.1?}, {received} \
         received in order and intact, {rate:.0} records/s ({:.1} MB/s, target {RATE})",
        rate * LEN as f64 / 1e6
    );
    let flat: Vec<(String, bool)> = samples.iter().map(Samples::flat).collect();
    for (summary, _) in &flat {
        eprintln!("soak {transport}: {summary}");
    }
    assert_eq!(received, sent, "{transport}: records lost");
    for (summary, ok) in &flat {
        assert!(
            ok,
            "{transport}: {summary}: grew by more than {FLAT_KIB} KiB after warm-up"
        );
    }
    assert!(
        rate >= 0.9 * RATE as f64,
        "{transport}: {rate:.0} records/s is below 90 % of the {RATE} target"
    );
}

#[test]
fn soak_two_processes_lose_nothing_and_stay_flat() {
    if let Some((role, base)) = child_role() {
        run_child(&role, &base);
        return;
    }
    let Some(secs) = soak_secs() else {
        eprintln!("soak: skipped; set SHMBUS_SOAK_SECS=<seconds> (for example 60) to run it");
        return;
    };
    eprintln!("soak: {secs} s per transport at {RATE} records/s of {LEN} bytes");
    run_pair("spsc", secs);
    run_pair("topic", secs);
}
