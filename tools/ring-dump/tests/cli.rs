//! `ring-dump` end to end: the real binary, run as its own process against
//! channels, topics and work queues that this test process creates,
//! attaches to and corrupts. Each test works in its own namespace `desk` under a fresh base
//! directory, removed at the end.
//!
//! Topics are built through the public bus API: a publisher of Protocol V2
//! trades, a live anonymous subscriber part-way through them and a durable
//! subscriber that left (so its slot is `DETACHED`), all held by this test
//! process while ring-dump, another process, looks at them. Work queues
//! likewise: a record taken and held, one held by a consumer that crashed,
//! one given back, and a claim in progress.
//!
//! The library under the binary (`shmbus::inspect`) is tested directly in
//! the root crate's `tests/inspect.rs`.

mod common;
#[path = "../../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::Value;
use shmbus::bus::{Bus, Channel, Policy, SpscConfig, StartAt};
use shmbus::layout::{
    pack_record_header, SegmentKind, TopicEntry, BROADCAST_CONTROL_OFFSET,
    DIRECTORY_ENTRIES_OFFSET, FLAG_COMMITTED, LAYOUT_VERSION, QUEUE_CONTROL_OFFSET,
    SPSC_DATA_OFFSET,
};
use shmbus::record::RelayDomain;
use shmbus::ring::broadcast::Subscriber;
use shmbus::segment::{OpenOptions, Segment};

use common::{ring_dump, NS};
use fixtures::{queue_config, ring_with_records, topic_config, trade, write_at};
use temp_ns::TempNs;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A fresh base directory holding the namespace [`NS`], removed on drop.
fn desk() -> TempNs {
    TempNs::named("ring-dump", NS)
}

/// The channel `name` of `capacity` bytes, created.
fn channel(tmp: &TempNs, name: &str, capacity: usize) -> Channel {
    tmp.bus()
        .spsc(name, &SpscConfig::with_capacity(capacity))
        .expect("create")
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
    let orders = ring_with_records(&tmp.bus(), "orders");
    let run = ring_dump(&tmp.base, &["spsc", "orders"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let out = &run.stdout;
    assert!(
        out.contains(&format!("layout     version {LAYOUT_VERSION},")),
        "missing the layout version in:\n{out}"
    );
    let (segment, entry) = (&orders.record().segment, orders.record().entry);
    assert!(segment.starts_with("spsc-"), "{segment}");
    let header = format!("channel    desk/orders (spsc ring {segment}, directory entry {entry})");
    let path = format!("path       {}", orders.path().display());
    for expected in [
        header.as_str(),
        path.as_str(),
        "capacity   4096 bytes, max payload 2032 bytes, wake-ups off",
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
    let orders = ring_with_records(&tmp.bus(), "orders");
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
    assert_eq!(j.get("kind").and_then(Value::as_str), Some("spsc"));
    assert_eq!(
        j.get("segment").and_then(Value::as_str),
        Some(orders.record().segment.as_str())
    );
    assert_eq!(num("entry"), orders.record().entry as u64);
    assert_eq!(j.get("wakeups"), Some(&Value::Bool(false)));
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
    ring_with_records(&tmp.bus(), "orders");
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
    // 128 bytes: max payload 48 (frame 56 and an 8-byte sentinel: half).
    let wrap = channel(&tmp, "wrap", 128);
    let mut tx = wrap.producer().expect("producer");
    let mut rx = wrap.consumer().expect("consumer");
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
fn list_shows_every_entry_with_its_kind_and_exits_2_for_an_unusable_one() {
    let tmp = desk();
    let bus = tmp.bus();
    ring_with_records(&bus, "orders");
    channel(&tmp, "fills", 1024);
    let junk = channel(&tmp, "junk", 4096);
    garbage_ring(&junk.path());
    let md = bus
        .topic(TOPIC, &topic_config(Policy::Overwrite, 8))
        .expect("topic");
    let gone = channel(&tmp, "gone", 1024);
    gone.remove().expect("remove");

    for command in ["list", "topics"] {
        let run = ring_dump(&tmp.base, &[command]);
        assert_eq!(run.code, 2, "stdout: {}", run.stdout);
        let line = run.one_error_line();
        assert!(line.contains("SPSC channel junk is unusable: "), "{line}");
        assert!(line.contains("not a shmbus segment"), "{line}");
        let out = &run.stdout;
        assert!(
            out.contains(": 1 topic, 3 spsc channels, 0 queues, 1 removed\n"),
            "{out}"
        );
        let cells = |name: &str| -> Vec<String> {
            out.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            cells("orders"),
            [
                "orders",
                "spsc",
                "capacity=4096",
                "used=40",
                "used%=1.0",
                "producer=-",
                "consumer=-"
            ],
            "{out}"
        );
        assert_eq!(
            cells("fills")[..4],
            ["fills", "spsc", "capacity=1024", "used=0"]
        );
        assert_eq!(
            cells(TOPIC)[..4],
            [TOPIC, "topic", "policy=overwrite", "slots=8"]
        );
        let junk_line = cells("junk").join(" ");
        assert!(junk_line.starts_with("junk spsc unusable: "), "{out}");
        assert!(junk_line.contains("not a shmbus segment"), "{out}");
        assert!(
            cells("gone").join(" ").starts_with("gone - removed"),
            "{out}"
        );
    }

    let run = ring_dump(&tmp.base, &["--json", "list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(run.one_error_line().contains("SPSC channel junk"));
    let j = run.json();
    let entries = j.get("entries").and_then(Value::as_array).expect("entries");
    let summary: Vec<(&str, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.get("name").and_then(Value::as_str).expect("name"),
                e.get("status").and_then(Value::as_str).expect("status"),
                e.get("kind").and_then(Value::as_str),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fills", "ready", Some("spsc")),
            ("gone", "removed", None),
            ("junk", "unusable", Some("spsc")),
            (TOPIC, "ready", Some("topic")),
            ("orders", "ready", Some("spsc")),
        ]
    );
    assert_eq!(entries[2].get("exit_code").and_then(Value::as_u64), Some(2));
    assert_eq!(
        entries[4].get("used_bytes").and_then(Value::as_u64),
        Some(40)
    );
    assert_eq!(
        entries[3].get("segment").and_then(Value::as_str),
        Some(md.record().segment.as_str())
    );
}

#[test]
fn missing_channel_exits_1_with_one_line() {
    let tmp = desk();
    // No directory yet: nothing was ever created.
    let run = ring_dump(&tmp.base, &["spsc", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.one_error_line().contains("no directory"),
        "{}",
        run.stderr
    );
    // A directory without that channel; a topic is not a channel either.
    let bus = tmp.bus();
    bus.topic(TOPIC, &topic_config(Policy::Overwrite, 8))
        .expect("topic");
    let run = ring_dump(&tmp.base, &["spsc", "nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.one_error_line()
            .contains("no SPSC channel \"nope\" in namespace desk"),
        "{}",
        run.stderr
    );
    let run = ring_dump(&tmp.base, &["spsc", TOPIC]);
    assert_eq!(run.code, 1);
    assert!(
        run.one_error_line()
            .contains("(\"market_data\" is a topic)"),
        "{}",
        run.stderr
    );
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

/// Replaces the ring file at `path` with a file of garbage of the same
/// size (4096 + 512 bytes), mode 0600.
fn garbage_ring(path: &Path) {
    std::fs::remove_file(path).expect("remove the ring file");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create garbage file");
    f.write_all(&[0x5a; 4608]).expect("write garbage");
}

#[test]
fn bad_magic_exits_2_with_one_line() {
    let tmp = desk();
    let junk = channel(&tmp, "junk", 4096).path();
    garbage_ring(&junk);
    let before = std::fs::read(&junk).expect("read");
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
    assert_eq!(std::fs::read(&junk).expect("read"), before);
}

#[test]
fn poisoned_ring_exits_2() {
    let tmp = desk();
    let orders = ring_with_records(&tmp.bus(), "orders");
    Segment::open(
        &tmp.ns,
        &orders.record().segment,
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
    let orders = channel(&tmp, "orders", 4096);
    let mut tx = orders.producer().expect("producer");
    tx.try_send(7, b"first").expect("send");
    tx.try_send(8, b"second").expect("send");
    drop(tx);
    // The first record's header: a length far beyond the maximum payload.
    let path = orders.path();
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
    let live = channel(&tmp, "live", 4096);
    let mut tx = live.producer().expect("producer");
    let mut rx = live.consumer().expect("consumer");
    tx.try_send(5, b"tick").expect("send");
    let path = live.path();
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
    live.producer().expect("producer again");
    live.consumer().expect("consumer again");
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
fn list_shows_each_topic_with_live_counts_and_lag() {
    let tmp = desk();
    let desk = desk_with_traffic(&tmp);
    let before = std::fs::read(tmp.file(&desk.segment, "bcast")).expect("read log");

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let out = &run.stdout;
    assert!(
        out.contains(": 1 topic, 0 spsc channels, 0 queues\n"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with(TOPIC))
        .unwrap_or_else(|| panic!("no line for {TOPIC} in:\n{out}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            TOPIC,
            "topic",
            "policy=backpressure",
            "slots=16",
            "max_payload=128",
            "tail=5",
            "publishers=1",
            "subscribers=1",
            "max_lag=5"
        ],
        "{out}"
    );

    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let topics = j.get("entries").and_then(Value::as_array).expect("entries");
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
    assert_eq!(num("reclaim_after_ns"), 1_000_000_000);
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
    // A namespace where nothing was ever created has no directory.
    for args in [&["list"][..], &["topic", TOPIC], &["--json", "list"]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.one_error_line().contains("no directory"),
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

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(
        run.one_error_line()
            .contains("topic market_data is unusable: "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("unusable: "), "{}", run.stdout);
    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let topics = j.get("entries").and_then(Value::as_array).expect("entries");
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
    let expected = format!("directory entry {entry} is corrupt: name length 200");

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("0 topics, 0 spsc channels, 0 queues, 1 corrupt entry"),
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

    let run = ring_dump(&tmp.base, &["--json", "list"]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    let j = run.json();
    let topics = j.get("entries").and_then(Value::as_array).expect("entries");
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

// ---------------------------------------------------------------------------
// Work queues
// ---------------------------------------------------------------------------

const QUEUE: &str = "execution";

#[test]
fn queue_is_listed_and_shown_with_participants_in_flight_and_records() {
    let tmp = desk();
    let bus = tmp.bus();
    let queue = bus
        .queue(QUEUE, &queue_config(8, std::time::Duration::from_secs(1)))
        .expect("queue");
    let mut strategy = queue.producer().expect("producer"); // slot 0
    let mut late = queue.producer().expect("producer"); // slot 1
    let mut gateway = queue.consumer().expect("consumer"); // slot 0
    let mut crashed = queue.consumer().expect("consumer"); // slot 1
    let mut other = queue.consumer().expect("consumer"); // slot 2
    for seq in 0..4 {
        strategy
            .try_send(u16::from(RelayDomain::MarketData as u8), &trade(seq))
            .expect("room");
    }
    let held = gateway.try_take().expect("record 0");
    std::mem::forget(crashed.try_take().expect("record 1"));
    crashed.crash_for_test(); // its record stays taken by a dead consumer
    other
        .try_take()
        .expect("record 2")
        .give_back()
        .expect("give back");
    let claim = late.try_claim(16).expect("claim of 4");
    let path = queue.path();
    let before = std::fs::read(&path).expect("read");

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(": 0 topics, 0 spsc channels, 1 queue\n"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with(QUEUE))
        .unwrap_or_else(|| panic!("no line for {QUEUE} in:\n{out}"));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [
            QUEUE,
            "queue",
            "slots=8",
            "max_payload=128",
            "depth=2",
            "producers=2",
            "consumers=2",
            "in_flight=5",
            "redelivered=1"
        ],
        "{out}"
    );
    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let entries = j.get("entries").and_then(Value::as_array).expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].get("kind").and_then(Value::as_str),
        Some("queue")
    );
    assert_eq!(
        entries[0].get("status").and_then(Value::as_str),
        Some("ready")
    );
    assert_eq!(entries[0].get("depth").and_then(Value::as_u64), Some(2));

    let run = ring_dump(&tmp.base, &["--json", "queue", QUEUE]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let num = |k: &str| {
        j.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(j.get("namespace").and_then(Value::as_str), Some(NS));
    assert_eq!(j.get("name").and_then(Value::as_str), Some(QUEUE));
    assert_eq!(j.get("kind").and_then(Value::as_str), Some("queue"));
    assert_eq!(
        j.get("segment").and_then(Value::as_str),
        Some(queue.record().segment.as_str())
    );
    assert_eq!(
        j.get("path").and_then(Value::as_str),
        Some(path.to_str().expect("utf-8 path"))
    );
    assert_eq!(
        (num("slots"), num("slot_stride"), num("max_payload")),
        (8, 192, 128)
    );
    assert_eq!((num("max_producers"), num("max_consumers")), (3, 3));
    assert_eq!(num("reclaim_after_ns"), 1_000_000_000);
    // Three takes moved the head; the record given back waits behind it.
    assert_eq!((num("head"), num("tail"), num("oldest")), (3, 5, 0));
    assert_eq!(
        (
            num("depth"),
            num("redelivered_waiting"),
            num("taken"),
            num("taken_by_dead")
        ),
        (2, 1, 2, 1)
    );
    assert_eq!(num("in_flight_count"), 5);
    let counters = j.get("counters").expect("counters");
    let counter = |k: &str| counters.get(k).and_then(Value::as_u64).expect(k);
    assert_eq!(
        (
            counter("redelivered"),
            counter("reclaimed_claims"),
            counter("reaped_consumers"),
            counter("reaped_producers")
        ),
        (1, 0, 0, 0)
    );
    assert_eq!((num("producers_alive"), num("consumers_alive")), (2, 2));

    let me = u64::from(std::process::id());
    let producers = j
        .get("producers")
        .and_then(Value::as_array)
        .expect("producers");
    let claims: Vec<(u64, Option<u64>, u64, bool)> = producers
        .iter()
        .map(|p| {
            assert_eq!(p.get("state").and_then(Value::as_str), Some("live"));
            assert_eq!(p.get("pid").and_then(Value::as_u64), Some(me));
            (
                p.get("slot").and_then(Value::as_u64).expect("slot"),
                p.get("claimed").and_then(Value::as_u64),
                p.get("committed")
                    .and_then(Value::as_u64)
                    .expect("committed"),
                p.get("alive") == Some(&Value::Bool(true)),
            )
        })
        .collect();
    assert_eq!(claims, [(0, None, 4, true), (1, Some(4), 0, true)]);
    let consumers = j
        .get("consumers")
        .and_then(Value::as_array)
        .expect("consumers");
    let holders: Vec<(u64, u64, u64, u64, bool)> = consumers
        .iter()
        .map(|c| {
            let n = |k: &str| c.get(k).and_then(Value::as_u64).expect(k);
            (
                n("slot"),
                n("taken"),
                n("acked"),
                n("holding"),
                c.get("alive") == Some(&Value::Bool(true)),
            )
        })
        .collect();
    assert_eq!(
        holders,
        [(0, 1, 0, 1, true), (1, 1, 0, 1, false), (2, 1, 1, 0, true)]
    );

    let in_flight = j
        .get("in_flight")
        .and_then(Value::as_array)
        .expect("in_flight");
    let states: Vec<String> = in_flight
        .iter()
        .map(|f| {
            let seq = f.get("sequence").and_then(Value::as_u64).expect("sequence");
            let state = f.get("state").and_then(Value::as_str).expect("state");
            let flag = |k: &str| f.get(k).map(Value::to_string).unwrap_or_default();
            match state {
                "taken" => format!(
                    "{seq} taken by {} alive={} redelivered={}",
                    flag("consumer"),
                    flag("consumer_alive"),
                    flag("redelivered")
                ),
                "committed" => format!("{seq} committed redelivered={}", flag("redelivered")),
                "writing" => format!(
                    "{seq} writing by {} alive={}",
                    flag("producer"),
                    flag("producer_alive")
                ),
                other => format!("{seq} {other}"),
            }
        })
        .collect();
    assert_eq!(
        states,
        [
            "0 taken by 0 alive=true redelivered=false",
            "1 taken by 1 alive=false redelivered=false",
            "2 committed redelivered=true",
            "3 committed redelivered=false",
            "4 writing by 1 alive=true",
        ]
    );
    assert!(in_flight[0]
        .get("stamp")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("0x")));

    let records = j.get("records").and_then(Value::as_array).expect("records");
    let waiting: Vec<(u64, bool, u64, u64)> = records
        .iter()
        .map(|r| {
            let seq = r.get("sequence").and_then(Value::as_u64).expect("sequence");
            let v2 = r.get("v2").expect("decoded as Protocol V2");
            (
                seq,
                r.get("redelivered") == Some(&Value::Bool(true)),
                r.get("len").and_then(Value::as_u64).expect("len"),
                v2.get("sequence")
                    .and_then(Value::as_u64)
                    .expect("v2 sequence"),
            )
        })
        .collect();
    let len = |seq| trade(seq).len() as u64;
    assert_eq!(waiting, [(2, true, len(2), 2), (3, false, len(3), 3)]);
    assert_eq!(records[0].get("type").and_then(Value::as_u64), Some(1));
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Value::as_str), Some("complete"));

    // The text form says the same; --records 1 limits both lists.
    let text = ring_dump(&tmp.base, &["queue", QUEUE]);
    assert_eq!(text.code, 0, "stderr: {}", text.stderr);
    let out = &text.stdout;
    let header = format!(
        "queue        desk/execution (work queue {}, directory entry {})",
        queue.record().segment,
        queue.record().entry
    );
    for expected in [
        header.as_str(),
        "config       8 slots of 192 bytes, max payload 128 bytes, reclaim after 1.0s",
        "3 producer slots, 3 consumer slots",
        "positions    head 3, tail 5, oldest in flight 0",
        "depth        2 waiting (1 redelivered), 2 taken (1 by dead consumers), 5 in flight",
        "counters     redelivered 1, reclaimed claims 0, reaped consumers 0, reaped producers 0",
        "producers    2 in use, 2 alive",
        "claim 4  alive",
        "consumers    3 in use, 2 alive",
        "holding 1  dead",
        "in flight    5 record slots",
        "taken by consumer 1 (dead: it will be given back)",
        "committed, redelivered",
        "writing by producer 1 (alive)",
        "records      2 waiting shown, oldest first",
        "seq 2  type 1  len",
        "  redelivered\n",
        "Protocol V2 MarketData (1) from BinanceCollector",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let text = ring_dump(&tmp.base, &["--records", "1", "queue", QUEUE]);
    let out = &text.stdout;
    for expected in [
        "... 4 more in flight (raise --records)",
        "records      1 waiting shown",
        "... 1 more waiting record (raise --records)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "queue modified"
    );

    // Everyone carries on: the claim commits, the held record is acked.
    claim.commit().expect("commit");
    held.ack().expect("ack");
}

#[test]
fn missing_queue_exits_1_with_one_line() {
    let tmp = desk();
    let run = ring_dump(&tmp.base, &["queue", QUEUE]);
    assert_eq!(run.code, 1);
    assert!(
        run.one_error_line().contains("no directory"),
        "{}",
        run.stderr
    );
    let _desk = desk_with_traffic(&tmp);
    let run = ring_dump(&tmp.base, &["queue", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.one_error_line()
            .contains("no work queue \"nope\" in namespace desk"),
        "{}",
        run.stderr
    );
    let run = ring_dump(&tmp.base, &["--json", "queue", TOPIC]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.one_error_line()
            .contains("(\"market_data\" is a topic)"),
        "{}",
        run.stderr
    );
}

#[test]
fn corrupt_queue_exits_2_and_is_listed_unusable() {
    let tmp = desk();
    let queue = tmp
        .bus()
        .queue(QUEUE, &queue_config(8, std::time::Duration::from_secs(1)))
        .expect("queue");
    queue
        .producer()
        .expect("producer")
        .try_send(1, b"order")
        .expect("room");
    let path = queue.path();
    let geometry = queue.config().geometry();

    // A stamp no build writes: the snapshot is refused, exit 2.
    write_at(
        &path,
        geometry.slot_offset(0) as u64,
        &0x5a5au64.to_ne_bytes(),
    );
    for args in [&["queue", QUEUE][..], &["--json", "queue", QUEUE]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert_eq!(run.stdout, "");
        let line = run.one_error_line();
        assert!(line.contains("is corrupt"), "{line}");
        assert!(line.contains("holds stamp 0x5a5a"), "{line}");
    }
    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(
        run.one_error_line().contains("holds stamp 0x5a5a"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(QUEUE) && l.contains("queue    unusable: ")),
        "{}",
        run.stdout
    );

    // A control block the directory disagrees with: refused on open.
    write_at(&path, QUEUE_CONTROL_OFFSET as u64, &16u64.to_ne_bytes());
    let before = std::fs::read(&path).expect("read");
    let run = ring_dump(&tmp.base, &["queue", QUEUE]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains("slots 16"), "{}", run.stderr);
    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let entries = j.get("entries").and_then(Value::as_array).expect("entries");
    assert_eq!(
        entries[0].get("status").and_then(Value::as_str),
        Some("unusable")
    );
    assert_eq!(
        entries[0].get("kind").and_then(Value::as_str),
        Some("queue")
    );
    assert_eq!(entries[0].get("exit_code").and_then(Value::as_u64), Some(2));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "queue modified"
    );
}

// ---------------------------------------------------------------------------
// One command set for every kind
// ---------------------------------------------------------------------------

/// A namespace holding one ring of each kind: the channel `orders`
/// ([`ring_with_records`]), the topic [`TOPIC`] ([`desk_with_traffic`]) and
/// the work queue [`QUEUE`] with two records waiting. The participants stay
/// attached while it lives.
struct EveryKind {
    _desk: Desk,
    _orders: Channel,
    _queue: shmbus::bus::Queue,
}

fn every_kind(tmp: &TempNs) -> EveryKind {
    let desk = desk_with_traffic(tmp);
    let orders = ring_with_records(&tmp.bus(), "orders");
    let queue = tmp
        .bus()
        .queue(QUEUE, &queue_config(8, std::time::Duration::from_secs(1)))
        .expect("queue");
    let mut producer = queue.producer().expect("producer");
    for seq in 0..2 {
        producer
            .try_send(u16::from(RelayDomain::MarketData as u8), &trade(seq))
            .expect("room");
    }
    EveryKind {
        _desk: desk,
        _orders: orders,
        _queue: queue,
    }
}

/// `v` without the fields that change from one run to the next (a live
/// subscriber's heartbeat age).
fn steady(mut v: Value) -> Value {
    if let Some(subscribers) = v.get_mut("subscribers").and_then(Value::as_array_mut) {
        for s in subscribers {
            s["heartbeat_age_ns"] = Value::Null;
        }
    }
    v
}

#[test]
fn show_finds_each_kind_and_shows_what_its_own_command_shows() {
    let tmp = desk();
    let _rings = every_kind(&tmp);
    for (name, command, kind, header) in [
        (
            "orders",
            "spsc",
            "spsc",
            "channel    desk/orders (spsc ring ",
        ),
        (
            TOPIC,
            "topic",
            "topic",
            "topic        desk/market_data (broadcast log ",
        ),
        (
            QUEUE,
            "queue",
            "queue",
            "queue        desk/execution (work queue ",
        ),
    ] {
        let shown = ring_dump(&tmp.base, &["show", name]);
        assert_eq!(shown.code, 0, "{name}: {}", shown.stderr);
        assert_eq!(shown.stderr, "", "{name}");
        assert!(
            shown.stdout.starts_with(header),
            "{name}:\n{}",
            shown.stdout
        );
        let own = ring_dump(&tmp.base, &[command, name]);
        if kind != "topic" {
            // A topic's text has a live heartbeat age; the JSON below
            // compares the rest.
            assert_eq!(shown.stdout, own.stdout, "{name}");
        }

        let shown = ring_dump(&tmp.base, &["--json", "--records", "1", "show", name]);
        assert_eq!(shown.code, 0, "{name}: {}", shown.stderr);
        let shown = steady(shown.json());
        assert_eq!(shown["kind"], kind, "{name}");
        assert_eq!(shown["name"], name);
        assert_eq!(shown["records"].as_array().map(Vec::len), Some(1), "{name}");
        let own = steady(ring_dump(&tmp.base, &["--json", "--records", "1", command, name]).json());
        assert_eq!(shown, own, "{name}");
    }

    let run = ring_dump(&tmp.base, &["show", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.one_error_line()
            .contains("no SPSC channel, topic or work queue \"nope\" in namespace desk"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_command_is_list() {
    let tmp = desk();
    let _rings = every_kind(&tmp);
    let list = ring_dump(&tmp.base, &["list"]);
    assert_eq!(list.code, 0, "stderr: {}", list.stderr);
    assert!(
        list.stdout.contains(": 1 topic, 1 spsc channel, 1 queue\n"),
        "{}",
        list.stdout
    );
    let default = ring_dump(&tmp.base, &[]);
    assert_eq!(default.code, 0, "stderr: {}", default.stderr);
    assert_eq!(default.stdout, list.stdout);

    let j = ring_dump(&tmp.base, &["--json"]).json();
    let kinds: Vec<&str> = j["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["queue", TOPIC_KIND, "spsc"]);
}

/// What `list` calls a topic's kind.
const TOPIC_KIND: &str = "topic";

#[test]
fn json_is_one_document_on_every_command() {
    let tmp = desk();
    let _rings = every_kind(&tmp);
    for args in [
        &["--json"][..],
        &["--json", "list"],
        &["topics", "--json"],
        &["--json", "show", "orders"],
        &["--json", "show", TOPIC],
        &["--json", "show", QUEUE],
        &["--json", "spsc", "orders"],
        &["--json", "topic", TOPIC],
        &["queue", QUEUE, "--json"],
    ] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let j = run.json();
        assert_eq!(j["namespace"], NS, "{args:?}");
        assert!(j.is_object(), "{args:?}");
    }
}

#[test]
fn usage_errors_are_one_line_on_stderr_and_exit_2() {
    let tmp = desk();
    for (args, says) in [
        (&["--bogus"][..], "unexpected argument '--bogus' found"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        // clap's message spreads the missing argument over two lines.
        (
            &["show"],
            "the following required arguments were not provided: <NAME>",
        ),
        (&["spsc", "a", "b"], "unexpected argument 'b' found"),
        (
            &["--records", "x", "list"],
            "invalid value 'x' for '--records <N>'",
        ),
        (
            &["--json", "-n"],
            "a value is required for '--namespace <NS>'",
        ),
    ] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        let line = run.one_error_line();
        assert!(
            line.starts_with(&format!("ring-dump: {says}")),
            "{args:?}: {line}"
        );
        assert!(line.ends_with("(see ring-dump --help)"), "{line}");
    }
    for args in [&["--help"][..], &["show", "--help"], &["-V"]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 0, "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
        assert!(run.stdout.contains("ring-dump"), "{args:?}: {}", run.stdout);
    }
}

#[test]
fn list_with_unusable_rings_exits_2_after_the_whole_listing() {
    let tmp = desk();
    let _rings = every_kind(&tmp);
    let junk = channel(&tmp, "junk", 4096);
    garbage_ring(&junk.path());
    let bad_queue = tmp
        .bus()
        .queue(
            "bad_queue",
            &queue_config(8, std::time::Duration::from_secs(1)),
        )
        .expect("queue");
    // A control block whose slot count (8) the directory disagrees with.
    write_at(
        &bad_queue.path(),
        QUEUE_CONTROL_OFFSET as u64,
        &16u64.to_ne_bytes(),
    );

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    // The first in the listing is named, the others counted.
    let line = run.one_error_line();
    assert!(
        line.starts_with("ring-dump: work queue bad_queue is unusable: "),
        "{line}"
    );
    assert!(
        line.ends_with("; 1 more entry is corrupt or unusable"),
        "{line}"
    );
    let out = &run.stdout;
    assert!(
        out.contains(": 1 topic, 2 spsc channels, 2 queues\n"),
        "{out}"
    );
    for (name, details) in [
        ("bad_queue", "queue    unusable: "),
        ("junk", "spsc     unusable: "),
        (TOPIC, "topic    policy=backpressure"),
        ("orders", "spsc     capacity=4096"),
        (QUEUE, "queue    slots=8"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(details)),
            "no {details:?} for {name} in:\n{out}"
        );
    }

    let run = ring_dump(&tmp.base, &["--json", "list"]);
    assert_eq!(run.code, 2);
    run.one_error_line();
    let statuses: Vec<(String, String)> = run.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["name"].to_string(), e["status"].to_string()))
        .collect();
    assert_eq!(statuses.len(), 5, "{statuses:?}");
    let unusable: Vec<&str> = statuses
        .iter()
        .filter(|(_, status)| status == "\"unusable\"")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(unusable, ["\"bad_queue\"", "\"junk\""]);
}

#[test]
fn a_ring_file_missing_under_a_ready_entry_is_unusable_in_list() {
    let tmp = desk();
    ring_with_records(&tmp.bus(), "orders");
    let lost = channel(&tmp, "lost", 1024);
    std::fs::remove_file(lost.path()).expect("remove the ring file by hand");

    let run = ring_dump(&tmp.base, &["list"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    let line = run.one_error_line();
    assert!(
        line.starts_with("ring-dump: SPSC channel lost is unusable: "),
        "{line}"
    );
    assert!(line.contains("says it is ready"), "{line}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("orders ") && l.contains("capacity=4096")),
        "{}",
        run.stdout
    );
    let j = ring_dump(&tmp.base, &["--json", "list"]).json();
    let lost = &j["entries"][0];
    assert_eq!(lost["name"], "lost");
    assert_eq!(lost["status"], "unusable");
    assert_eq!(lost["exit_code"], 2);
}

/// Garbage in the stamp of the slot of `market_data`'s newest record:
/// a lap beyond any the log reached.
fn garbage_stamp(
    tmp: &TempNs,
    publisher_alive: bool,
) -> (
    Bus,
    shmbus::bus::Topic,
    Option<shmbus::ring::broadcast::Publisher>,
) {
    let bus = tmp.bus();
    let topic = bus
        .topic(TOPIC, &topic_config(Policy::Overwrite, 8))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    for seq in 0..3 {
        publisher
            .try_send(u16::from(RelayDomain::MarketData as u8), &trade(seq))
            .expect("publish");
    }
    drop(publisher);
    write_at(
        &topic.path(),
        topic.config().geometry().slot_offset(2) as u64,
        &0x5a5a_5a5a_5a5a_5a5au64.to_ne_bytes(),
    );
    let live = publisher_alive.then(|| topic.publisher().expect("publisher again"));
    (bus, topic, live)
}

#[test]
fn garbage_in_a_log_without_a_live_publisher_is_corrupt() {
    let tmp = desk();
    let (_bus, topic, live) = garbage_stamp(&tmp, false);
    assert!(live.is_none());
    let before = std::fs::read(topic.path()).expect("read log");
    for args in [&["topic", TOPIC][..], &["show", TOPIC]] {
        let run = ring_dump(&tmp.base, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        let line = run.one_error_line();
        assert!(
            line.contains("is corrupt: the slot of record 2 does not hold it"),
            "{line}"
        );
        assert!(line.contains("no publisher is alive"), "{line}");
        assert!(!line.contains("live log"), "{line}");
        // What could be read is still shown.
        assert!(
            run.stdout.contains("publishers   0 in use, 0 alive"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("walk stopped: "), "{}", run.stdout);
    }
    let run = ring_dump(&tmp.base, &["--json", "topic", TOPIC]);
    assert_eq!(run.code, 2);
    run.one_error_line();
    let walk = run.json()["walk"].clone();
    assert_eq!(walk["status"], "corrupt", "{walk}");
    assert!(walk["reason"]
        .as_str()
        .is_some_and(|r| r.contains("no publisher is alive")));
    assert_eq!(
        std::fs::read(topic.path()).expect("read log"),
        before,
        "log modified"
    );
}

#[test]
fn a_log_overwritten_while_a_publisher_is_alive_is_not_corrupt() {
    let tmp = desk();
    let (_bus, _topic, live) = garbage_stamp(&tmp, true);
    assert!(live.is_some());
    let run = ring_dump(&tmp.base, &["--json", "topic", TOPIC]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let walk = run.json()["walk"].clone();
    assert_eq!(walk["status"], "overwritten", "{walk}");
    assert!(walk["reason"]
        .as_str()
        .is_some_and(|r| r.contains("live log")));
}

/// `show --json` reports what each participant did, from the counters it
/// keeps in the segment: records and bytes published and read, full
/// claims, skips and missed records, lag, and a subscriber whose process
/// died shown not alive with the counts it left.
#[test]
fn show_reports_each_participants_counters_lag_and_liveness() {
    let tmp = desk();
    let bus = tmp.bus();
    let topic = bus
        .topic("ticks", &topic_config(Policy::Backpressure, 8))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut reader = topic.subscriber(StartAt::Tail).expect("subscriber");
    let mut dead = topic.subscriber(StartAt::Tail).expect("subscriber");
    for i in 0..8u8 {
        publisher.try_send(1, &[i; 12]).expect("room");
    }
    assert!(publisher.try_send(1, &[8; 12]).is_err(), "the log is full");
    for _ in 0..3 {
        drop(reader.try_read().expect("record"));
    }
    reader.skip().expect("skip");
    drop(dead.try_read().expect("record"));
    let (reader_slot, dead_slot) = (reader.slot_for_test(), dead.slot_for_test());
    dead.crash_for_test(); // as if its process were killed now

    let run = ring_dump(&tmp.base, &["--json", "show", "ticks"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let p = &doc["publishers"][0];
    assert_eq!(p["alive"], true);
    assert_eq!(
        (
            &p["counters"]["records"],
            &p["counters"]["bytes"],
            &p["counters"]["full"]
        ),
        (&Value::from(8), &Value::from(96), &Value::from(1))
    );
    let sub = |slot: usize| {
        doc["subscribers"]
            .as_array()
            .expect("subscribers")
            .iter()
            .find(|s| s["slot"] == slot)
            .expect("subscriber slot")
            .clone()
    };
    let r = sub(reader_slot);
    assert_eq!(
        (&r["alive"], &r["lag"]),
        (&Value::from(true), &Value::from(4))
    );
    let c = &r["counters"];
    assert_eq!(
        [&c["records"], &c["bytes"], &c["skips"], &c["missed"]],
        [
            &Value::from(3),
            &Value::from(36),
            &Value::from(1),
            &Value::from(1)
        ]
    );
    let d = sub(dead_slot);
    assert_eq!(
        (&d["alive"], &d["lag"]),
        (&Value::from(false), &Value::from(7))
    );
    assert_eq!(
        (&d["counters"]["records"], &d["counters"]["bytes"]),
        (&Value::from(1), &Value::from(12))
    );

    // The text form shows the same counts.
    let text = ring_dump(&tmp.base, &["show", "ticks"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("counters: records 3  bytes 36  missed 1  skips 1"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("counters: records 8  bytes 96  full 1"),
        "{}",
        text.stdout
    );
}
