//! `ring-dump tail`, `record` and `replay` end to end: the real binary,
//! run as its own process (a child followed line by line for `--follow`
//! and `record`) against topics, channels and work queues this test
//! process creates and publishes on. Each test works in the namespace
//! `desk` under a fresh base directory, removed at the end, and kills
//! every child it started, pass or fail.

mod common;
#[path = "../../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shmbus::bus::{Policy, SpscConfig, StartAt};
use shmbus::inspect::inspect_topic;
use shmbus::ring::broadcast::{ClaimError, RecvError};
use shmbus::segment::OpenOptions;

use common::{command, ring_dump, spawn, NS};
use fixtures::{queue_config, topic_config, trade};
use temp_ns::TempNs;

/// How long a test waits for a line from a child before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

fn desk() -> TempNs {
    TempNs::named("ring-dump-tail", NS)
}

/// A ring-dump child whose stdout is read line by line; killed and reaped
/// when dropped, whatever happened to the test.
struct Child {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Child {
    fn spawn(base: &Path, args: &[&str]) -> Child {
        let mut child = spawn(
            command(base, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `done`; returns it.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if done(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no line {what} within {PATIENCE:?}; got {:#?}", self.seen),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child, which has not been reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits for the child to exit; its exit code and the rest of its
    /// stdout, line by line.
    fn wait_exit(&mut self) -> (i32, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut rest = Vec::new();
                // The reader thread ends at end of file.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    rest.push(line);
                }
                self.seen.extend(rest.iter().cloned());
                return (status.code().expect("exited, not killed"), rest);
            }
            assert!(Instant::now() < deadline, "child still running");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
}

/// The text a trade of sender sequence `seq` shows its price as.
fn price(seq: u64) -> String {
    format!("price 65000.{seq:08}")
}

/// The sender sequence of a JSON record line's Protocol V2 message.
fn v2_sequence(v: &Value) -> u64 {
    v["v2"]["sequence"].as_u64().expect("a Protocol V2 record")
}

// ---------------------------------------------------------------------------
// tail
// ---------------------------------------------------------------------------

/// Checks `tail NAME --records 3` on a ring holding trades 0..5: the last
/// three, oldest first, with the trade's typed fields; and `--json` gives
/// one object per line with the same.
fn check_tail(base: &Path, name: &str, header: &str, position_word: &str) {
    let run = ring_dump(base, &["tail", name, "--records", "3"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!(
            "{header} desk/{name}: last 3 records, oldest first\n"
        )),
        "{out}"
    );
    let records: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(&format!("{position_word} ")))
        .collect();
    assert_eq!(records.len(), 3, "{out}");
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{out}"));
    assert!(at(&price(2)) < at(&price(3)) && at(&price(3)) < at(&price(4)));
    assert!(!out.contains(&price(1)), "an older record is shown:\n{out}");
    for part in [
        "Protocol V2 MarketData (1) from BinanceCollector (1)",
        "TLV 1 Trade  len 40",
        "instrument BTC",
        "venue Binance (100)",
        "volume 0.12500000",
        "side buy",
    ] {
        assert!(out.contains(part), "no {part:?} in\n{out}");
    }

    let run = ring_dump(base, &["--json", "tail", name, "--records", "3"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let objects: Vec<Value> = run.stdout.lines().map(json_line).collect();
    assert_eq!(objects.len(), 3, "{}", run.stdout);
    for (v, seq) in objects.iter().zip(2u64..) {
        assert_eq!(v["event"], "record");
        assert_eq!(v["name"], name);
        assert_eq!(v["type"], 1);
        assert_eq!(v2_sequence(v), seq);
        let fields = &v["v2"]["tlvs"][0]["fields"];
        assert_eq!(fields["price"], format!("65000.{seq:08}"), "{v}");
        assert_eq!(fields["side"], "buy");
        assert_eq!(fields["instrument"], "BTC");
    }
}

#[test]
fn tail_shows_the_last_records_of_a_topic_a_channel_and_a_queue_decoded() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let mut publisher = md.publisher().expect("publisher");
    let fills = bus
        .spsc("fills", &SpscConfig::with_capacity(4096))
        .expect("channel");
    let mut producer = fills.producer().expect("producer");
    let orders = bus
        .queue("orders", &queue_config(8, Duration::from_secs(1)))
        .expect("queue");
    let mut queue_producer = orders.producer().expect("queue producer");
    for seq in 0..5 {
        publisher.try_send(1, &trade(seq)).expect("publish");
        producer.try_send(1, &trade(seq)).expect("send");
        queue_producer.try_send(1, &trade(seq)).expect("enqueue");
    }
    check_tail(&tmp.base, "md", "topic", "seq");
    check_tail(&tmp.base, "fills", "channel", "position");
    check_tail(&tmp.base, "orders", "queue", "seq");

    let run = ring_dump(&tmp.base, &["tail", "nothing"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn tail_follow_prints_records_published_after_it_started_and_stops_on_sigint() {
    let tmp = desk();
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 8))
        .expect("topic");
    let mut publisher = md.publisher().expect("publisher");
    publisher.try_send(1, &trade(0)).expect("publish");
    let mut child = Child::spawn(&tmp.base, &["tail", "md", "--follow", "--records", "1"]);
    child.wait_for("header", |l| l.starts_with("topic desk/md: last 1 record"));
    child.wait_for("of the record published before", |l| l.contains(&price(0)));
    for seq in 1..=5 {
        publisher.try_send(1, &trade(seq)).expect("publish");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_for("of the last record", |l| l.contains(&price(5)));
    for seq in 1..5 {
        assert!(
            child.seen.iter().any(|l| l.contains(&price(seq))),
            "record {seq} not shown: {:#?}",
            child.seen
        );
    }
    child.signal(libc::SIGINT);
    let (code, _) = child.wait_exit();
    assert_eq!(code, 0, "SIGINT ends a follow cleanly");
}

#[test]
fn a_follower_never_blocks_a_backpressure_publisher_and_reports_what_it_missed() {
    let tmp = desk();
    let bus = tmp.bus();
    let slots = 8u64;
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, slots as u32))
        .expect("topic");
    let mut publisher = md.publisher().expect("publisher");
    publisher.try_send(1, &trade(0)).expect("publish");
    let mut child = Child::spawn(
        &tmp.base,
        &["--json", "tail", "md", "--follow", "--records", "1"],
    );
    let first = json_line(&child.wait_for("of record 0", |l| l.contains("\"record\"")));
    assert_eq!(v2_sequence(&first), 0);

    // The follower is no subscriber: nothing gates the publisher.
    let snapshot = inspect_topic(&tmp.ns, "md", &OpenOptions::default()).expect("snapshot");
    assert!(
        snapshot.subscribers.is_empty(),
        "{:?}",
        snapshot.subscribers
    );
    // Stopped, it cannot read: the publisher laps it many times.
    child.signal(libc::SIGSTOP);
    let total = 10 * slots;
    for seq in 1..=total {
        match publisher.try_send(1, &trade(seq)) {
            Ok(_) => {}
            Err(ClaimError::Full) => panic!("record {seq} found the topic full"),
            Err(e) => panic!("record {seq}: {e}"),
        }
    }
    child.signal(libc::SIGCONT);
    child.wait_for("of the last record", |l| {
        let v = json_line(l);
        v["event"] == "record" && v2_sequence(&v) == total
    });
    let events: Vec<Value> = child.seen.iter().map(|l| json_line(l)).collect();
    let missed: Vec<&Value> = events.iter().filter(|v| v["event"] == "missed").collect();
    assert_eq!(missed.len(), 1, "one gap: {events:#?}");
    let gap = missed[0];
    let oldest_intact = total + 1 - slots;
    assert_eq!(gap["cause"], "overwritten");
    assert_eq!(
        (gap["from"].as_u64(), gap["to"].as_u64()),
        (Some(1), Some(oldest_intact))
    );
    assert_eq!(gap["records"].as_u64(), Some(oldest_intact - 1));
    // Then every record still intact, in order, each one whole.
    let after: Vec<u64> = events
        .iter()
        .skip_while(|v| v["event"] != "missed")
        .filter(|v| v["event"] == "record")
        .map(v2_sequence)
        .collect();
    assert_eq!(after, (oldest_intact..=total).collect::<Vec<_>>());
}

#[test]
fn following_a_queue_or_a_channel_takes_none_of_its_records() {
    let tmp = desk();
    let bus = tmp.bus();
    let orders = bus
        .queue("orders", &queue_config(8, Duration::from_secs(1)))
        .expect("queue");
    let mut producer = orders.producer().expect("producer");
    let fills = bus
        .spsc("fills", &SpscConfig::with_capacity(4096))
        .expect("channel");
    let mut tx = fills.producer().expect("channel producer");
    for seq in 0..4 {
        producer.try_send(1, &trade(seq)).expect("enqueue");
        tx.try_send(1, &trade(seq)).expect("send");
    }
    for name in ["orders", "fills"] {
        let mut child = Child::spawn(&tmp.base, &["tail", name, "--follow", "--records", "8"]);
        child.wait_for("of record 3", |l| l.contains(&price(3)));
        if name == "orders" {
            producer.try_send(1, &trade(4)).expect("enqueue");
        } else {
            tx.try_send(1, &trade(4)).expect("send");
        }
        child.wait_for("of record 4", |l| l.contains(&price(4)));
        child.signal(libc::SIGTERM);
        let (code, _) = child.wait_exit();
        assert_eq!(code, 0, "SIGTERM ends a follow cleanly");
        assert!(
            !child.seen.iter().any(|l| l.starts_with("missed")),
            "{:#?}",
            child.seen
        );
    }
    let mut consumer = orders.consumer().expect("consumer");
    let mut rx = fills.consumer().expect("channel consumer");
    let mut buf = [0u8; 256];
    for seq in 0..5 {
        let (record_type, len) = consumer
            .try_recv(&mut buf)
            .expect("every record is still there");
        assert_eq!((record_type, &buf[..len]), (1, &trade(seq)[..]));
        assert_eq!(&rx.try_read().expect("channel record")[..], &trade(seq)[..]);
    }
    assert!(consumer.try_recv(&mut buf).is_err(), "no more records");
}

// ---------------------------------------------------------------------------
// record and replay
// ---------------------------------------------------------------------------

fn recording_path(tmp: &TempNs, name: &str) -> PathBuf {
    tmp.base.join(name)
}

/// Record type and payload of the `i`-th record of the round trip: trades
/// and bytes that are no Protocol V2 message, of several types.
fn round_trip_record(i: u64) -> (u16, Vec<u8>) {
    if i % 3 == 2 {
        (900 + i as u16, (0..i as u8 * 5).collect())
    } else {
        (1 + (i % 3) as u16, trade(i))
    }
}

#[test]
fn record_then_replay_gives_every_record_byte_for_byte_into_a_new_topic() {
    let tmp = desk();
    let bus = tmp.bus();
    let config = topic_config(Policy::Overwrite, 64);
    let src = bus.topic("src", &config).expect("topic");
    let mut publisher = src.publisher().expect("publisher");
    let file = recording_path(&tmp, "src.rec");
    let file_arg = file.to_str().expect("utf-8 path");
    let n = 20;
    let count = n.to_string();
    let mut recorder = Child::spawn(&tmp.base, &["record", "src", file_arg, "--count", &count]);
    recorder.wait_for("saying it records", |l| {
        l.starts_with("recording topic desk/src")
    });
    for i in 0..n {
        let (record_type, payload) = round_trip_record(i);
        publisher.try_send(record_type, &payload).expect("publish");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (code, rest) = recorder.wait_exit();
    assert_eq!(code, 0, "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.starts_with(&format!("recorded {n} records (0 missed)"))),
        "{rest:?}"
    );

    let run = ring_dump(&tmp.base, &["replay", file_arg, "dst", "--max-speed"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("replayed {n} records")),
        "{}",
        run.stdout
    );
    // Created with the recorded topic's configuration.
    let dst = bus.open_topic("dst").expect("replay created the topic");
    assert_eq!(dst.config(), &config);
    let mut sub = dst.subscriber(StartAt::Oldest).expect("subscriber");
    let mut buf = [0u8; 256];
    for i in 0..n {
        let (record_type, len) = sub.try_recv(&mut buf).expect("a replayed record");
        let (want_type, want) = round_trip_record(i);
        assert_eq!(
            (record_type, &buf[..len]),
            (want_type, &want[..]),
            "record {i}"
        );
    }
    assert!(matches!(sub.try_recv(&mut buf), Err(RecvError::Empty)));
}

/// Replays `file` into topic `dst` with `args` while a subscriber times
/// the records: the span from the first received to the last.
fn replay_span(tmp: &TempNs, file: &str, records: u64, args: &[&str]) -> Duration {
    let bus = tmp.bus();
    let dst = bus.open_topic("dst").expect("dst");
    let mut sub = dst.subscriber(StartAt::Tail).expect("subscriber");
    let mut all = vec!["replay", file, "dst"];
    all.extend_from_slice(args);
    let child = Child::spawn(&tmp.base, &all);
    let mut buf = [0u8; 256];
    let (mut first, mut last) = (None, None);
    let deadline = Instant::now() + PATIENCE;
    let mut got = 0;
    while got < records {
        match sub.try_recv(&mut buf) {
            Ok(_) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                got += 1;
            }
            Err(RecvError::Empty) => {
                assert!(Instant::now() < deadline, "{got} of {records} replayed");
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("{e}"),
        }
    }
    drop(child);
    last.expect("records") - first.expect("records")
}

#[test]
fn replay_keeps_the_recorded_pace_or_a_multiple_of_it() {
    let tmp = desk();
    let bus = tmp.bus();
    let src = bus
        .topic("src", &topic_config(Policy::Overwrite, 64))
        .expect("topic");
    bus.topic("dst", &topic_config(Policy::Backpressure, 64))
        .expect("topic");
    let mut publisher = src.publisher().expect("publisher");
    let file = recording_path(&tmp, "paced.rec");
    let file_arg = file.to_str().expect("utf-8 path");
    let n = 11u64;
    let count = n.to_string();
    let mut recorder = Child::spawn(
        &tmp.base,
        &["--json", "record", "src", file_arg, "--count", &count],
    );
    recorder.wait_for("saying it records", |l| l.contains("\"recording\""));
    // Ten intervals of 200 ms: about two seconds.
    for i in 0..n {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        publisher.try_send(1, &trade(i)).expect("publish");
    }
    let (code, rest) = recorder.wait_exit();
    assert_eq!(code, 0, "{rest:?}");
    let summary = json_line(rest.last().expect("a summary"));
    assert_eq!(summary["records"], n);
    let recorded = Duration::from_nanos(summary["span_ns"].as_u64().expect("span"));
    assert!(
        recorded >= Duration::from_millis(1900) && recorded < Duration::from_millis(3000),
        "recorded over {recorded:?}"
    );

    let close = |got: Duration, want: Duration| {
        let diff = got.abs_diff(want);
        assert!(
            diff <= want / 10,
            "replay took {got:?}, want {want:?} within 10 %"
        );
    };
    close(replay_span(&tmp, file_arg, n, &[]), recorded);
    close(
        replay_span(&tmp, file_arg, n, &["--speed", "2"]),
        recorded / 2,
    );
}

#[test]
fn a_recording_of_another_format_exits_2_with_one_line() {
    let tmp = desk();
    let bad_magic = recording_path(&tmp, "bad-magic.rec");
    std::fs::write(&bad_magic, b"NOTAREC\0\x01\x00 and then some bytes").expect("write");
    let mut future = b"SHMBREC\0".to_vec();
    future.extend_from_slice(&9u16.to_le_bytes());
    future.resize(64, 0);
    let future_version = recording_path(&tmp, "v9.rec");
    std::fs::write(&future_version, &future).expect("write");

    for (file, reason) in [
        (&bad_magic, "not a ring-dump recording"),
        (&future_version, "format version 9"),
    ] {
        let run = ring_dump(&tmp.base, &["replay", file.to_str().expect("utf-8"), "dst"]);
        assert_eq!(run.code, 2, "{file:?}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{:?}", run.stderr);
        assert!(lines[0].starts_with("ring-dump: "), "{:?}", lines[0]);
        assert!(lines[0].contains(reason), "{:?}", lines[0]);
        assert_eq!(run.stdout, "");
    }
    assert!(tmp.bus().open_topic("dst").is_err(), "nothing was created");
}
