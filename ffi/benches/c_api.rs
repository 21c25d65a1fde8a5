//! What the C API costs per record, next to the Rust API: one thread,
//! pinned, publishes a 64-byte record and reads it back, on a topic and on
//! an SPSC channel, in place (claim, write the index, commit, read,
//! release: four calls) and by copy (send a buffer, receive into another:
//! two calls).
//!
//! The C side is `benches/c/bench_loop.c`, compiled with gcc -O2 against
//! the static library as shipped (the `release-lto` profile, which this
//! bench builds with a nested cargo) and run as a child process pinned to
//! the same core; it runs a round when asked on its stdin. Rounds of the
//! two sides alternate (which goes first alternates too), and the table
//! gives the median nanoseconds per record of each and the median of the
//! per-round ratios C / Rust.
//!
//! `cargo bench -p shmbus-ffi --bench c_api`; `SHMBUS_BENCH_ROUNDS`
//! (default 21) and `SHMBUS_BENCH_RECORDS` (per round, default 200000).
//!
//! Instructions per record, which repeat exactly from run to run, come from
//! the same loops under callgrind: each round is a function of its own on
//! both sides (`*_round`), so after a `cargo bench` has built everything,
//!
//! ```text
//! SHMBUS_BENCH_ROUNDS=1 SHMBUS_BENCH_RECORDS=20000 valgrind --tool=callgrind \
//!     --trace-children=yes --trace-children-skip='*cargo*,*rustc*,*gcc*,*cc1*,*as,*ld*,*collect2' \
//!     --toggle-collect='*_round*' target/release/deps/c_api-<hash> --bench
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>   # one file per process
//! ```
//!
//! gives each round function's count: divided by 2 rounds (the warm-up and
//! the measured one) of 20 000 records, the instructions per record.
//! `cargo test --benches` runs it as a smoke test (3 rounds of 2000,
//! against the static library of the test build).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{compile_against, release_lto_staticlib, staticlib, Lang, TempNs};
use shmbus::{Consumer, Producer, Publisher, SpscConfig, StartAt, Subscriber, TopicConfig};

const RECORD_LEN: usize = 64;
/// The rounds, as the C loop names them: in place, then by copy.
const KINDS: [&str; 4] = ["topic", "channel", "topic_copy", "channel_copy"];
/// The core both sides run on, one after the other.
const CORE: usize = 0;

/// `cargo bench` passes `--bench`; `cargo test --benches` does not (the
/// rule of the core crate's benches, `benches/common`).
fn quick_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}"))
        })
        .unwrap_or(default)
}

/// The C side: a child process that runs one round per request.
struct CLoop {
    child: Child,
    /// `None` once closed, which ends the C loop.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl CLoop {
    fn start(exe: &Path, ns: &TempNs, records: u64) -> CLoop {
        let mut child = Command::new(exe)
            .arg(&ns.base)
            .arg(ns.ns.name())
            .arg(records.to_string())
            .arg(CORE.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the C loop");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        CLoop {
            child,
            stdin: Some(stdin),
            stdout,
        }
    }

    /// Runs one round of `kind` (one of [`KINDS`]): ns per record.
    fn round(&mut self, kind: &str) -> f64 {
        let stdin = self.stdin.as_mut().expect("the C loop is running");
        writeln!(stdin, "{kind}").expect("ask the C loop");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the C loop");
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("the C loop failed a {kind} round (said {line:?})"))
    }
}

impl Drop for CLoop {
    /// Closes the C loop's stdin, which ends it, and gives it a few seconds
    /// to exit on its own (under callgrind it writes its counts then), then
    /// kills it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Rust side's endpoints.
struct RustLoop {
    publisher: Publisher,
    subscriber: Subscriber,
    producer: Producer,
    consumer: Consumer,
}

impl RustLoop {
    /// Runs one round of `kind` (one of [`KINDS`]): ns per record.
    fn round(&mut self, kind: &str, records: u64) -> f64 {
        let start = Instant::now();
        let sum = match kind {
            "topic" => self.topic_round(records),
            "channel" => self.channel_round(records),
            "topic_copy" => self.topic_copy_round(records),
            "channel_copy" => self.channel_copy_round(records),
            _ => panic!("unknown round {kind}"),
        };
        let elapsed = start.elapsed();
        assert_eq!(
            sum,
            (0..records).map(|i| i & 0xff).sum::<u64>(),
            "wrong records"
        );
        elapsed.as_nanos() as f64 / records as f64
    }

    // One function per kind, as in the C loop, so that callgrind can count
    // each (`--toggle-collect='*_round*'`); each returns the sum of the
    // first byte of every record read back.

    #[inline(never)]
    fn topic_round(&mut self, records: u64) -> u64 {
        let mut sum = 0;
        for i in 0..records {
            let mut claim = self.publisher.try_claim(RECORD_LEN).expect("claim");
            claim[..8].copy_from_slice(&i.to_le_bytes());
            claim.set_record_type(1);
            claim.commit().expect("commit");
            let record = self.subscriber.try_read().expect("read");
            sum += u64::from(record[0]);
        }
        sum
    }

    #[inline(never)]
    fn channel_round(&mut self, records: u64) -> u64 {
        let mut sum = 0;
        for i in 0..records {
            let mut slot = self.producer.try_claim(RECORD_LEN).expect("claim");
            slot[..8].copy_from_slice(&i.to_le_bytes());
            slot.set_record_type(1);
            slot.commit();
            let record = self.consumer.try_read().expect("read");
            sum += u64::from(record[0]);
        }
        sum
    }

    #[inline(never)]
    fn topic_copy_round(&mut self, records: u64) -> u64 {
        let (mut sum, mut out, mut input) = (0, [0u8; RECORD_LEN], [0u8; RECORD_LEN]);
        for i in 0..records {
            out[..8].copy_from_slice(&i.to_le_bytes());
            self.publisher.try_send(1, &out).expect("send");
            self.subscriber.try_recv(&mut input).expect("recv");
            sum += u64::from(input[0]);
        }
        sum
    }

    #[inline(never)]
    fn channel_copy_round(&mut self, records: u64) -> u64 {
        let (mut sum, mut out, mut input) = (0, [0u8; RECORD_LEN], [0u8; RECORD_LEN]);
        for i in 0..records {
            out[..8].copy_from_slice(&i.to_le_bytes());
            self.producer.try_send(1, &out).expect("send");
            self.consumer.try_recv(&mut input).expect("recv");
            sum += u64::from(input[0]);
        }
        sum
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let quick = quick_mode();
    let (rounds, records) = if quick {
        (3, 2000)
    } else {
        (
            env_count("SHMBUS_BENCH_ROUNDS", 21),
            env_count("SHMBUS_BENCH_RECORDS", 200_000),
        )
    };
    let loop_c = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c/bench_loop.c");
    let lib = if quick {
        staticlib()
    } else {
        release_lto_staticlib()
    };
    let exe = compile_against(&lib, "bench_loop", Lang::C, &[loop_c], &["-O2"]);
    if let Some(core) = core_affinity::get_core_ids().and_then(|ids| ids.into_iter().nth(CORE)) {
        core_affinity::set_for_current(core);
    }

    let ns = TempNs::new("ffi-bench");
    let bus = ns.bus();
    let topic_config = TopicConfig {
        slots: 4096,
        max_payload: RECORD_LEN as u32,
        ..TopicConfig::default()
    };
    let channel_config = SpscConfig::with_capacity(1 << 16);
    let rust_topic = bus.topic("rust_topic", &topic_config).expect("topic");
    let rust_channel = bus.spsc("rust_channel", &channel_config).expect("channel");
    let c_topic = bus.topic("c_topic", &topic_config).expect("topic");
    let c_channel = bus.spsc("c_channel", &channel_config).expect("channel");
    let mut rust = RustLoop {
        subscriber: rust_topic.subscriber(StartAt::Tail).expect("subscriber"),
        publisher: rust_topic.publisher().expect("publisher"),
        producer: rust_channel.producer().expect("producer"),
        consumer: rust_channel.consumer().expect("consumer"),
    };
    let mut c = CLoop::start(&exe, &ns, records);

    println!(
        "C API ({}) vs Rust API, publish + read of {RECORD_LEN}-byte records on one thread, \
         {rounds} rounds of {records} records{}",
        lib.display(),
        if quick { " (smoke run)" } else { "" }
    );
    println!(
        "{:<13} {:>14} {:>14} {:>18} {:>16}",
        "ring", "C ns/record", "Rust ns/record", "median C/Rust", "min..max C/Rust"
    );
    for kind in KINDS {
        let (mut c_ns, mut rust_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        // One warm-up round each, not counted.
        c.round(kind);
        rust.round(kind, records);
        for round in 0..rounds {
            let (cn, rn) = if round % 2 == 0 {
                let cn = c.round(kind);
                (cn, rust.round(kind, records))
            } else {
                let rn = rust.round(kind, records);
                (c.round(kind), rn)
            };
            c_ns.push(cn);
            rust_ns.push(rn);
            ratios.push(cn / rn);
        }
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "{kind:<13} {:>14.2} {:>14.2} {:>18.3} {:>16}",
            median(&mut c_ns),
            median(&mut rust_ns),
            median(&mut ratios),
            format!("{lo:.2}..{hi:.2}")
        );
    }
    drop(c);
    drop(rust);
    for ring in [rust_topic, c_topic] {
        ring.remove().expect("remove a topic");
    }
    for ring in [rust_channel, c_channel] {
        ring.remove().expect("remove a channel");
    }
}
