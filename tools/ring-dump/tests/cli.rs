//! `ring-dump` end to end: the real binary, run as its own process against
//! rings and topics that this test process creates, attaches to and
//! corrupts. Each test works in its own namespace `desk` under a fresh base
//! directory, removed at the end.
//!
//! Topics are built through the public bus API: a publisher of Protocol V2
//! trades, a live anonymous subscriber part-way through them and a durable
//! subscriber that left (so its slot is `DETACHED`), all held by this test
//! process while ring-dump, another process, looks at them.
//!
//! The library under the binary (`shmbus::inspect`) is tested directly in
//! the root crate's `tests/inspect.rs`.

#[path = "../../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use shmbus::bus::{Bus, Policy, StartAt};
use shmbus::layout::{
    pack_record_header, SegmentKind, TopicEntry, BROADCAST_CONTROL_OFFSET,
    DIRECTORY_ENTRIES_OFFSET, FLAG_COMMITTED, LAYOUT_VERSION, SPSC_DATA_OFFSET,
};
use shmbus::record::RelayDomain;
use shmbus::ring::broadcast::Subscriber;
use shmbus::ring::spsc::{SpscConfig, SpscRing};
use shmbus::segment::{OpenOptions, Segment};

use fixtures::{ring_with_records, topic_config, trade, write_at};
use temp_ns::TempNs;

const NS: &str = "desk";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A fresh base directory holding the namespace [`NS`], removed on drop.
fn desk() -> TempNs {
    TempNs::named("ring-dump", NS)
}

/// One run of ring-dump.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The single stderr line a failure must print.
    fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line, got {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("ring-dump: "), "{:?}", lines[0]);
        lines[0]
    }

    fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one JSON line: {}",
            self.stdout
        );
        serde_json::from_str(self.stdout.trim_end()).expect("stdout is valid JSON")
    }
}

/// Runs ring-dump with `--dir base -n desk` and `args`.
fn ring_dump(base: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ring-dump"))
        .arg("--dir")
        .arg(base)
        .args(["-n", NS])
        .args(args)
        .env_remove("SHMBUS_DIR")
        .output()
        .expect("run ring-dump");
    Run {
        code: out.status.code().expect("ring-dump exited (no signal)"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

#[test]
fn dump_shows_header_positions_occupancy_and_hex_records() {
    let tmp = desk();
    ring_with_records(&tmp.ns, "orders");
    let run = ring_dump(&tmp.base, &["spsc", "orders"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let out = &run.stdout;
    assert!(
        out.contains(&format!("layout     version {LAYOUT_VERSION},")),
        "missing the layout version in:\n{out}"
    );
    for expected in [
        "ring       desk/orders (spsc)",
        "capacity   4096 bytes",
        "head 16, tail 56",
        "40 of 4096 bytes used (1.0%)",
        "producer   not attached",
        "consumer   not attached",
        "records    2 shown",
        "position 16  type 7  flags 0x8000  len 4",
        "de ad be ef",
        "position 32  type 42  flags 0x8000  len 14",
        "42 55 59 20 31 30 30 20 40 20 34 32 2e 35",
        "|BUY 100 @ 42.5|",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // The consumed record is not shown.
    assert!(!out.contains("position 0 "), "{out}");
}

#[test]
fn json_has_header_positions_roles_and_records() {
    let tmp = desk();
    ring_with_records(&tmp.ns, "orders");
    let run = ring_dump(&tmp.base, &["--json", "spsc", "orders"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let num = |k: &str| {
        j.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(j.get("namespace").and_then(Value::as_str), Some(NS));
    assert_eq!(j.get("name").and_then(Value::as_str), Some("orders"));
    assert_eq!(num("layout_version"), u64::from(LAYOUT_VERSION));
    assert_eq!(num("capacity"), 4096);
    assert_eq!(num("segment_size"), 4096 + SPSC_DATA_OFFSET as u64);
    assert_eq!((num("head"), num("tail"), num("used_bytes")), (16, 56, 40));
    assert_eq!(num("creator_pid"), u64::from(std::process::id()));
    assert_eq!(j.get("poisoned"), Some(&Value::Bool(false)));
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Value::Bool(false)), "{role}");
        assert_eq!(r.get("pid").and_then(Value::as_u64), Some(0), "{role}");
    }
    let records = j.get("records").and_then(Value::as_array).expect("records");
    let summary: Vec<(u64, u64, u64, &str)> = records
        .iter()
        .map(|r| {
            let n = |k: &str| r.get(k).and_then(Value::as_u64).expect(k);
            let h = r.get("hex").and_then(Value::as_str).expect("hex");
            (n("position"), n("type"), n("len"), h)
        })
        .collect();
    let buy = hex(b"BUY 100 @ 42.5");
    assert_eq!(
        summary,
        [(16, 7, 4, "deadbeef"), (32, 42, 14, buy.as_str())]
    );
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Value::as_str), Some("complete"));
}

#[test]
fn records_and_hex_bytes_limit_the_dump() {
    let tmp = desk();
    ring_with_records(&tmp.ns, "orders");
    let run = ring_dump(
        &tmp.base,
        &["--records", "1", "--hex-bytes", "2", "spsc", "orders"],
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stdout.contains("records    1 shown"), "{}", run.stdout);
    assert!(run.stdout.contains("    0000  de ad "), "{}", run.stdout);
    assert!(!run.stdout.contains("de ad be"), "{}", run.stdout);
    assert!(run.stdout.contains("2 more bytes"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("24 more published bytes from position 32"),
        "{}",
        run.stdout
    );

    let j = ring_dump(
        &tmp.base,
        &["--json", "--records=1", "--hex-bytes=2", "spsc", "orders"],
    )
    .json();
    let records = j.get("records").and_then(Value::as_array).expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].get("hex").and_then(Value::as_str), Some("dead"));
    assert_eq!(records[0].get("truncated"), Some(&Value::Bool(true)));
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Value::as_str), Some("limit"));
    assert_eq!(walk.get("next_position").and_then(Value::as_u64), Some(32));
}

#[test]
fn records_after_a_wrap_are_found_past_the_padding() {
    let tmp = desk();
    let ns = &tmp.ns;
    // 128 bytes: max payload 48 (frame 56 and an 8-byte sentinel: half).
    SpscRing::create(ns, "wrap", SpscConfig::with_capacity(128)).expect("create");
    let mut tx = SpscRing::producer(ns, "wrap").expect("producer");
    let mut rx = SpscRing::consumer(ns, "wrap").expect("consumer");
    tx.try_send(1, &[1; 48]).expect("send"); // frame 56 at 0
    tx.try_send(2, &[2; 40]).expect("send"); // frame 48 at 56
    drop(rx.try_read().expect("read")); // head 56
    tx.try_send(3, &[3; 24]).expect("send"); // padding 24 at 104, frame 32 at 128
    drop((tx, rx));

    let j = ring_dump(&tmp.base, &["--json", "spsc", "wrap"]).json();
    assert_eq!(j.get("head").and_then(Value::as_u64), Some(56));
    assert_eq!(j.get("tail").and_then(Value::as_u64), Some(160));
    let positions: Vec<(u64, u64)> = j
        .get("records")
        .and_then(Value::as_array)
        .expect("records")
        .iter()
        .map(|r| {
            (
                r.get("position").and_then(Value::as_u64).expect("position"),
                r.get("type").and_then(Value::as_u64).expect("type"),
            )
        })
        .collect();
    assert_eq!(positions, [(56, 2), (128, 3)]);
}

#[test]
fn list_shows_every_ring_and_reports_unusable_ones_inline() {
    let tmp = desk();
    ring_with_records(&tmp.ns, "orders");
    SpscRing::create(&tmp.ns, "fills", SpscConfig::with_capacity(1024)).expect("create");
    garbage_ring(&tmp, "junk");

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert!(out.contains("3 spsc rings"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
            .to_owned()
    };
    assert!(line("orders").contains("4096"), "{out}");
    assert!(line("orders").contains("40"), "{out}");
    assert!(line("fills").contains("1024"), "{out}");
    assert!(line("junk").contains("unusable: "), "{out}");
    assert!(line("junk").contains("not a shmbus segment"), "{out}");

    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let rings = j.get("rings").and_then(Value::as_array).expect("rings");
    let names: Vec<&str> = rings
        .iter()
        .map(|r| r.get("name").and_then(Value::as_str).expect("name"))
        .collect();
    assert_eq!(names, ["fills", "junk", "orders"]);
    assert_eq!(rings[1].get("exit_code").and_then(Value::as_u64), Some(2));
    assert_eq!(rings[2].get("used_bytes").and_then(Value::as_u64), Some(40));
}

#[test]
fn missing_ring_exits_1_with_one_line() {
    let tmp = desk();
    let run = ring_dump(&tmp.base, &["spsc", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(run.one_error_line().contains("nope.spsc does not exist"));
    assert!(!tmp.file("nope", "spsc").exists());
}

#[test]
fn missing_namespace_exits_1_and_creates_nothing() {
    let tmp = desk();
    // A base directory that does not exist, inside the one removed on drop.
    let base = tmp.base.join("absent");
    for args in [&["list"][..], &["spsc", "orders"], &["--json", "list"]] {
        let run = ring_dump(&base, args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.one_error_line().contains("namespace desk not found"),
            "{}",
            run.stderr
        );
    }
    assert!(!base.exists(), "ring-dump created the base directory");
}

/// Writes a file of garbage where the ring `name` would be, mode 0600.
fn garbage_ring(tmp: &TempNs, name: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp.file(name, "spsc"))
        .expect("create garbage file");
    f.write_all(&[0x5a; 4608]).expect("write garbage");
}

#[test]
fn bad_magic_exits_2_with_one_line() {
    let tmp = desk();
    garbage_ring(&tmp, "junk");
    let before = std::fs::read(tmp.file("junk", "spsc")).expect("read");
    for args in [&["spsc", "junk"][..], &["--json", "spsc", "junk"]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "");
        assert!(
            run.one_error_line().contains("not a shmbus segment"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read(tmp.file("junk", "spsc")).expect("read"),
        before
    );
}

#[test]
fn poisoned_ring_exits_2() {
    let tmp = desk();
    ring_with_records(&tmp.ns, "orders");
    Segment::open(
        &tmp.ns,
        "orders",
        SegmentKind::Spsc,
        &OpenOptions::default(),
    )
    .expect("open")
    .poison();
    let run = ring_dump(&tmp.base, &["spsc", "orders"]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains("poisoned"), "{}", run.stderr);
}

#[test]
fn unusable_names_and_command_lines_exit_2() {
    let tmp = desk();
    for args in [
        &["spsc", "../etc"][..],
        &["spsc"],
        &["--records", "x", "list"],
    ] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}");
        run.one_error_line();
    }
    let help = ring_dump(&tmp.base, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("EXAMPLES"), "{}", help.stdout);
}

#[test]
fn corrupt_record_header_exits_2_and_leaves_the_file_unchanged() {
    let tmp = desk();
    let ns = &tmp.ns;
    SpscRing::create(ns, "orders", SpscConfig::with_capacity(4096)).expect("create");
    let mut tx = SpscRing::producer(ns, "orders").expect("producer");
    tx.try_send(7, b"first").expect("send");
    tx.try_send(8, b"second").expect("send");
    drop(tx);
    // The first record's header: a length far beyond the maximum payload.
    let path = tmp.file("orders", "spsc");
    write_at(
        &path,
        SPSC_DATA_OFFSET as u64,
        &pack_record_header(0xffff_0000, 7, FLAG_COMMITTED).to_ne_bytes(),
    );
    let before = std::fs::read(&path).expect("read");

    let run = ring_dump(&tmp.base, &["spsc", "orders"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    let line = run.one_error_line();
    assert!(line.contains("is corrupt"), "{line}");
    assert!(
        line.contains("record at 0 claims 4294901760 bytes"),
        "{line}"
    );
    // What could be read is still shown.
    assert!(run.stdout.contains("head 0, tail 32"), "{}", run.stdout);

    let j = ring_dump(&tmp.base, &["--json", "spsc", "orders"]);
    assert_eq!(j.code, 2);
    j.one_error_line();
    let walk = j.json().get("walk").cloned().expect("walk");
    assert_eq!(walk.get("status").and_then(Value::as_str), Some("corrupt"));

    assert_eq!(std::fs::read(&path).expect("read"), before, "file modified");
}

#[test]
fn live_ring_shows_attached_roles_and_is_not_disturbed() {
    let tmp = desk();
    let ns = &tmp.ns;
    SpscRing::create(ns, "live", SpscConfig::with_capacity(4096)).expect("create");
    let mut tx = SpscRing::producer(ns, "live").expect("producer");
    let mut rx = SpscRing::consumer(ns, "live").expect("consumer");
    tx.try_send(5, b"tick").expect("send");
    let path = tmp.file("live", "spsc");
    let before = std::fs::read(&path).expect("read");

    let j = ring_dump(&tmp.base, &["--json", "spsc", "live"]).json();
    let me = u64::from(std::process::id());
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Value::Bool(true)), "{role}");
        assert_eq!(r.get("pid").and_then(Value::as_u64), Some(me), "{role}");
    }
    let text = ring_dump(&tmp.base, &["spsc", "live"]);
    assert!(
        text.stdout
            .contains(&format!("producer   attached (pid {me})")),
        "{}",
        text.stdout
    );
    assert_eq!(std::fs::read(&path).expect("read"), before, "file modified");

    // Both sides carry on as if nothing happened.
    assert_eq!(&rx.try_read().expect("read")[..], b"tick");
    tx.try_send(6, b"tock").expect("send");
    assert_eq!(&rx.try_read().expect("read")[..], b"tock");
    drop((tx, rx));

    let j = ring_dump(&tmp.base, &["--json", "spsc", "live"]).json();
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Value::Bool(false)), "{role}");
        assert_eq!(r.get("pid").and_then(Value::as_u64), Some(0), "{role}");
    }
    assert_eq!(j.get("used_bytes").and_then(Value::as_u64), Some(0));
    // ring-dump left no lock behind: both roles can be taken again.
    SpscRing::producer(ns, "live").expect("producer again");
    SpscRing::consumer(ns, "live").expect("consumer again");
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

const TOPIC: &str = "market_data";
/// Trades published on the topic.
const TRADES: u64 = 5;
/// Trades the live subscriber has read.
const READ: u64 = 2;

/// What a topic under test is made of; the participants stay attached
/// while it lives.
struct Desk {
    _bus: Bus,
    segment: String,
    _publisher: shmbus::ring::broadcast::Publisher,
    _live: Subscriber,
}

/// `market_data` with [`TRADES`] trades published, a durable subscriber
/// "risk" that left before reading any (DETACHED, lag TRADES) and a live
/// anonymous subscriber that read [`READ`] of them (lag TRADES - READ).
fn desk_with_traffic(tmp: &TempNs) -> Desk {
    let bus = Bus::at(&tmp.base, NS).expect("bus");
    let topic = bus
        .topic(TOPIC, &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    drop(
        topic
            .durable_subscriber("risk", StartAt::Oldest)
            .expect("durable subscriber"),
    );
    let mut live = topic.subscriber(StartAt::Oldest).expect("subscriber");
    let mut publisher = topic.publisher().expect("publisher");
    for seq in 0..TRADES {
        publisher
            .try_send(u16::from(RelayDomain::MarketData as u8), &trade(seq))
            .expect("publish");
    }
    for _ in 0..READ {
        drop(live.try_read().expect("read"));
    }
    Desk {
        segment: topic.record().segment.clone(),
        _bus: bus,
        _publisher: publisher,
        _live: live,
    }
}

#[test]
fn topics_lists_each_topic_with_live_counts_and_lag() {
    let tmp = desk();
    let desk = desk_with_traffic(&tmp);
    let before = std::fs::read(tmp.file(&desk.segment, "bcast")).expect("read log");

    let run = ring_dump(&tmp.base, &["topics"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let out = &run.stdout;
    assert!(out.contains("1 topic\n"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(TOPIC))
        .unwrap_or_else(|| panic!("no line for {TOPIC} in:\n{out}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // name, policy, slots, max payload, tail, publishers, subscribers, max lag
    assert_eq!(
        cells,
        [TOPIC, "backpressure", "16", "128", "5", "1", "1", "5"],
        "{out}"
    );

    let j = ring_dump(&tmp.base, &["--json", "topics"]).json();
    let topics = j.get("topics").and_then(Value::as_array).expect("topics");
    assert_eq!(topics.len(), 1);
    let t = &topics[0];
    let num = |k: &str| {
        t.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(t.get("name").and_then(Value::as_str), Some(TOPIC));
    assert_eq!(
        t.get("policy").and_then(Value::as_str),
        Some("backpressure")
    );
    assert_eq!(
        (num("slots"), num("max_payload"), num("tail")),
        (16, 128, 5)
    );
    assert_eq!(
        (
            num("publishers_alive"),
            num("subscribers_alive"),
            num("max_lag")
        ),
        (1, 1, TRADES)
    );
    assert_eq!(
        std::fs::read(tmp.file(&desk.segment, "bcast")).expect("read log"),
        before,
        "ring-dump modified the log"
    );
}

#[test]
fn topic_json_shows_positions_participants_and_decoded_records() {
    let tmp = desk();
    let desk = desk_with_traffic(&tmp);
    let log = tmp.file(&desk.segment, "bcast");
    let before = std::fs::read(&log).expect("read log");

    let run = ring_dump(&tmp.base, &["--json", "topic", TOPIC]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let num = |k: &str| {
        j.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(j.get("namespace").and_then(Value::as_str), Some(NS));
    assert_eq!(j.get("name").and_then(Value::as_str), Some(TOPIC));
    assert_eq!(
        j.get("segment").and_then(Value::as_str),
        Some(desk.segment.as_str())
    );
    assert_eq!(
        j.get("policy").and_then(Value::as_str),
        Some("backpressure")
    );
    assert_eq!((num("slots"), num("max_payload")), (16, 128));
    assert_eq!(num("claim_timeout_ns"), 1_000_000_000);
    assert_eq!(num("tail"), TRADES);
    assert_eq!(num("creator_pid"), u64::from(std::process::id()));
    let counters = j.get("counters").expect("counters");
    assert_eq!(
        counters.get("reclaimed_claims").and_then(Value::as_u64),
        Some(0)
    );

    let me = u64::from(std::process::id());
    let publishers = j
        .get("publishers")
        .and_then(Value::as_array)
        .expect("publishers");
    assert_eq!(publishers.len(), 1);
    let p = &publishers[0];
    assert_eq!(p.get("alive"), Some(&Value::Bool(true)));
    assert_eq!(p.get("state").and_then(Value::as_str), Some("live"));
    assert_eq!(p.get("pid").and_then(Value::as_u64), Some(me));
    assert_eq!(p.get("published").and_then(Value::as_u64), Some(TRADES));

    let subscribers = j
        .get("subscribers")
        .and_then(Value::as_array)
        .expect("subscribers");
    assert_eq!(subscribers.len(), 2, "{}", run.stdout);
    let risk = subscribers
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some("risk"))
        .expect("the durable subscriber is listed");
    assert_eq!(risk.get("state").and_then(Value::as_str), Some("detached"));
    assert_eq!(risk.get("alive"), Some(&Value::Bool(false)));
    assert_eq!(risk.get("cursor").and_then(Value::as_u64), Some(0));
    assert_eq!(risk.get("lag").and_then(Value::as_u64), Some(TRADES));
    let live = subscribers
        .iter()
        .find(|s| s.get("name") == Some(&Value::Null))
        .expect("the anonymous subscriber is listed");
    assert_eq!(live.get("state").and_then(Value::as_str), Some("live"));
    assert_eq!(live.get("alive"), Some(&Value::Bool(true)));
    assert_eq!(live.get("pid").and_then(Value::as_u64), Some(me));
    assert_eq!(live.get("cursor").and_then(Value::as_u64), Some(READ));
    assert_eq!(live.get("lag").and_then(Value::as_u64), Some(TRADES - READ));
    assert!(live
        .get("heartbeat_age_ns")
        .and_then(Value::as_u64)
        .is_some());

    let records = j.get("records").and_then(Value::as_array).expect("records");
    let sequences: Vec<u64> = records
        .iter()
        .map(|r| r.get("sequence").and_then(Value::as_u64).expect("sequence"))
        .collect();
    assert_eq!(sequences, [4, 3, 2, 1, 0], "newest first");
    for r in records {
        let seq = r.get("sequence").and_then(Value::as_u64).expect("sequence");
        assert_eq!(r.get("type").and_then(Value::as_u64), Some(1));
        assert_eq!(
            r.get("len").and_then(Value::as_u64),
            Some(trade(seq).len() as u64)
        );
        let v2 = r.get("v2").expect("decoded as Protocol V2");
        assert_eq!(v2.get("relay_domain").and_then(Value::as_u64), Some(1));
        assert_eq!(v2.get("domain").and_then(Value::as_str), Some("MarketData"));
        assert_eq!(
            v2.get("source_name").and_then(Value::as_str),
            Some("BinanceCollector")
        );
        assert_eq!(v2.get("sequence").and_then(Value::as_u64), Some(seq));
        assert_eq!(
            v2.get("timestamp_ns").and_then(Value::as_u64),
            Some(1_700_000_000_000_000_000 + seq)
        );
        let tlvs = v2.get("tlvs").and_then(Value::as_array).expect("tlvs");
        assert_eq!(tlvs.len(), 1);
        assert_eq!(tlvs[0].get("type").and_then(Value::as_u64), Some(1));
    }
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Value::as_str), Some("complete"));

    // The text form says the same.
    let text = ring_dump(&tmp.base, &["--records", "2", "topic", TOPIC]);
    assert_eq!(text.code, 0, "stderr: {}", text.stderr);
    let out = &text.stdout;
    for expected in [
        "topic        desk/market_data",
        "16 slots of 192 bytes, max payload 128 bytes, backpressure",
        "tail 5",
        "publishers   1 in use, 1 alive",
        "subscribers  2 in use, 1 alive",
        "durable \"risk\"",
        "lag 3",
        "records      2 shown, newest first",
        "seq 4  type 1",
        "Protocol V2 MarketData (1) from BinanceCollector",
        "TLV type 1 ",
        "up to 3 older records below sequence 3",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert_eq!(
        std::fs::read(&log).expect("read log"),
        before,
        "log modified"
    );
}

#[test]
fn missing_topic_or_directory_exits_1_with_one_line() {
    let tmp = desk();
    // A namespace where no topic was ever created has no directory.
    for args in [&["topics"][..], &["topic", TOPIC], &["--json", "topics"]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.one_error_line().contains("no topic directory"),
            "{}",
            run.stderr
        );
    }
    assert!(
        !tmp.file("directory", "dir").exists(),
        "ring-dump created the directory"
    );

    let _desk = desk_with_traffic(&tmp);
    let run = ring_dump(&tmp.base, &["topic", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.one_error_line()
            .contains("no topic \"nope\" in namespace desk"),
        "{}",
        run.stderr
    );
}

#[test]
fn corrupt_log_control_block_exits_2_and_is_listed_unusable() {
    let tmp = desk();
    let desk = desk_with_traffic(&tmp);
    let segment = desk.segment.clone();
    drop(desk);
    // The control block's first field is the slot count (16): say 32.
    write_at(
        &tmp.file(&segment, "bcast"),
        BROADCAST_CONTROL_OFFSET as u64,
        &32u64.to_ne_bytes(),
    );
    let before = std::fs::read(tmp.file(&segment, "bcast")).expect("read log");

    let run = ring_dump(&tmp.base, &["topic", TOPIC]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert_eq!(run.stdout, "");
    let line = run.one_error_line();
    assert!(line.contains("is corrupt"), "{line}");
    assert!(line.contains("slots 32"), "{line}");

    let run = ring_dump(&tmp.base, &["topics"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stdout.contains("unusable: "), "{}", run.stdout);
    let j = ring_dump(&tmp.base, &["--json", "topics"]).json();
    let topics = j.get("topics").and_then(Value::as_array).expect("topics");
    assert_eq!(topics[0].get("exit_code").and_then(Value::as_u64), Some(2));
    assert_eq!(
        std::fs::read(tmp.file(&segment, "bcast")).expect("read log"),
        before,
        "ring-dump modified the log"
    );
}

#[test]
fn corrupt_directory_entry_is_listed_and_exits_2() {
    let tmp = desk();
    let desk = desk_with_traffic(&tmp);
    // The log segment is `topic-<entry>-<epoch>`.
    let entry: usize = desk
        .segment
        .split('-')
        .nth(1)
        .and_then(|i| i.parse().ok())
        .expect("entry index in the segment name");
    let dir = tmp.file("directory", "dir");
    // A name length of 200 (the low half of its tagged word).
    let offset = DIRECTORY_ENTRIES_OFFSET
        + entry * std::mem::size_of::<TopicEntry>()
        + std::mem::offset_of!(TopicEntry, name_len);
    write_at(&dir, offset as u64, &200u32.to_le_bytes());
    let before = std::fs::read(&dir).expect("read directory");
    let expected = format!("topic directory entry {entry} is corrupt: name length 200");

    let run = ring_dump(&tmp.base, &["topics"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    assert!(
        run.stdout.contains("0 topics, 1 corrupt entry"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("<entry {entry}>"))
                && l.contains("corrupt: name length 200")),
        "{}",
        run.stdout
    );

    let run = ring_dump(&tmp.base, &["--json", "topics"]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    let j = run.json();
    let topics = j.get("topics").and_then(Value::as_array).expect("topics");
    assert_eq!(topics.len(), 1, "{}", run.stdout);
    let t = &topics[0];
    assert_eq!(t.get("status").and_then(Value::as_str), Some("corrupt"));
    assert_eq!(t.get("entry").and_then(Value::as_u64), Some(entry as u64));
    assert_eq!(t.get("exit_code").and_then(Value::as_u64), Some(2));
    assert!(t
        .get("error")
        .and_then(Value::as_str)
        .is_some_and(|e| e.contains("name length 200")));

    // The entry might be market_data: asking for it is corrupt, not "not found".
    for args in [&["topic", TOPIC][..], &["--json", "topic", TOPIC]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    }
    assert_eq!(
        std::fs::read(&dir).expect("read directory"),
        before,
        "ring-dump modified the directory"
    );
    drop(desk);
}
