//! `ring-dump` and the Zenoh bridge's counters files (`<topic>.bridge`):
//! this test writes one with known values through
//! `shmbus::bridge_counters` (as `shmbus-bridge` does, lock included) and
//! checks what `show`, `list` and `watch` print of it, in text and JSON,
//! and what `clean` and `remove-namespace` do with it. The bridge itself
//! runs `ring-dump show` on a bridged topic in its loopback test.

mod common;
#[path = "../../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;

use serde_json::{json, Value};
use shmbus::bridge_counters::{BridgeCounters, Counter};
use shmbus::bus::{Policy, StartAt};

use common::{ring_dump, NS};
use fixtures::topic_config;
use temp_ns::TempNs;

/// The counters of `topic` with known values, held as a running bridge
/// holds them.
fn known_counters(tmp: &TempNs, topic: &str) -> BridgeCounters {
    let c = BridgeCounters::open_locked(&tmp.ns, topic).expect("open the counters");
    c.add(Counter::Exported, 3);
    c.add(Counter::ExportedBytes, 96);
    c.add(Counter::ExportMissed, 1);
    c.add(Counter::EchoSkipped, 2);
    c.add(Counter::Imported, 5);
    c.add(Counter::ImportedBytes, 160);
    c.add(Counter::Gaps, 4);
    c.add(Counter::Rejected, 6);
    c.set_last_seq(0xab, 10);
    c.add(Counter::Imported, 1);
    c.set_last_seq(0xcd, 7);
    c
}

#[test]
fn show_list_and_watch_print_a_bridged_topics_counters() {
    let tmp = TempNs::named("ring-dump-bridge", NS);
    let bus = tmp.bus();
    let _md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    let _plain = bus
        .topic("plain", &topic_config(Policy::Overwrite, 16))
        .expect("topic");
    let counters = known_counters(&tmp, "md");
    let pid = std::process::id();

    let out = ring_dump(&tmp.base, &["show", "md"]).ok().to_owned();
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("bridge "))
        .take_while(|l| !l.starts_with("publishers "))
        .collect();
    assert_eq!(
        block,
        [
            format!("bridge       running (pid {pid}), counters in md.bridge"),
            "  export     3 records (96 bytes), export missed 1, echo skipped 2".to_owned(),
            "  import     6 records (160 bytes), gaps 4, rejected 6".to_owned(),
            "  origin     00000000000000cd last sequence 7".to_owned(),
            "  origin     00000000000000ab last sequence 10".to_owned(),
        ],
        "{out}"
    );
    let plain = ring_dump(&tmp.base, &["show", "plain"]).ok().to_owned();
    assert!(
        !plain.lines().any(|l| l.starts_with("bridge")),
        "a topic never bridged shows no bridge: {plain}"
    );

    let doc = ring_dump(&tmp.base, &["--json", "show", "md"]).ok_json();
    let expected = json!({
        "running": true,
        "pid": pid,
        "exported": 3,
        "exported_bytes": 96,
        "export_missed": 1,
        "echo_skipped": 2,
        "imported": 6,
        "imported_bytes": 160,
        "gaps": 4,
        "rejected": 6,
        "origins": [
            {"origin": "00000000000000cd", "last_seq": 7},
            {"origin": "00000000000000ab", "last_seq": 10},
        ],
    });
    assert_eq!(doc["bridge"], expected);
    let doc = ring_dump(&tmp.base, &["--json", "show", "plain"]).ok_json();
    assert_eq!(doc["bridge"], Value::Null);

    let out = ring_dump(&tmp.base, &["list"]).ok().to_owned();
    let md_line = out
        .lines()
        .find(|l| l.starts_with("md "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        md_line.ends_with(" max_lag=- bridge=running gaps=4"),
        "{md_line}"
    );
    let plain_line = out
        .lines()
        .find(|l| l.starts_with("plain "))
        .expect("plain");
    assert!(plain_line.ends_with(" max_lag=-"), "{plain_line}");
    let doc = ring_dump(&tmp.base, &["--json", "list"]).ok_json();
    let entries = doc["entries"].as_array().expect("entries");
    assert_eq!(entries[0]["name"], "md");
    assert_eq!(entries[0]["bridge"], expected);
    assert!(entries[1].get("bridge").is_none(), "{doc}");

    // watch: counters that do not move between two looks.
    let out = ring_dump(
        &tmp.base,
        &["watch", "md", "--count", "1", "--interval", "0.05"],
    );
    let text = out.ok();
    assert!(
        text.lines().any(|l| {
            l
            == "  bridge running: exported 0.0/s, imported 0.0/s, gaps 4 (+0), export missed 1 (+0)"
        }),
        "{text}"
    );
    let doc = ring_dump(
        &tmp.base,
        &[
            "--json",
            "watch",
            "md",
            "--count",
            "1",
            "--interval",
            "0.05",
        ],
    )
    .ok_json();
    let b = &doc["rings"][0]["bridge"];
    assert_eq!(
        (&b["running"], &b["exported"], &b["imported"], &b["gaps"]),
        (&json!(true), &json!(3), &json!(6), &json!(4)),
        "{doc}"
    );
    assert_eq!(
        (&b["new_gaps"], &b["exported_per_s"]),
        (&json!(0), &json!(0.0))
    );

    // The bridge stopped: its counters stay, marked stopped.
    drop(counters);
    let out = ring_dump(&tmp.base, &["show", "md"]).ok().to_owned();
    assert!(
        out.lines()
            .any(|l| l == format!("bridge       stopped (last pid {pid}), counters in md.bridge")),
        "{out}"
    );
    let doc = ring_dump(&tmp.base, &["--json", "show", "md"]).ok_json();
    assert_eq!(doc["bridge"]["running"], false);
}

#[test]
fn a_garbage_counters_file_is_reported_not_fatal() {
    let tmp = TempNs::named("ring-dump-bridge-bad", NS);
    let bus = tmp.bus();
    let _md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    std::fs::write(tmp.ns.path().join("md.bridge"), b"not counters").expect("write");
    let out = ring_dump(&tmp.base, &["show", "md"]).ok().to_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with("bridge "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("bridge       unreadable: ")
            && line.contains("12 bytes, the layout has 640"),
        "{line}"
    );
    let doc = ring_dump(&tmp.base, &["--json", "show", "md"]).ok_json();
    assert!(doc["bridge"]["error"].as_str().is_some(), "{doc}");
    let out = ring_dump(&tmp.base, &["list"]).ok().to_owned();
    assert!(out.contains(" bridge=unreadable"), "{out}");
}

#[test]
fn clean_removes_counters_of_a_gone_topic_and_remove_namespace_waits_for_the_bridge() {
    let tmp = TempNs::named("ring-dump-bridge-clean", NS);
    let bus = tmp.bus();
    let md = bus
        .topic("md", &topic_config(Policy::Backpressure, 16))
        .expect("topic");
    // Attached, so that clean leaves md (and its counters) alone; an idle
    // topic's counters go with it.
    let sub = md.subscriber(StartAt::Tail).expect("subscriber");
    // Counters of a topic that exists, held by a running bridge, and of
    // topics that are gone, one of them still held.
    drop(known_counters(&tmp, "md"));
    let held = known_counters(&tmp, "held_gone");
    drop(known_counters(&tmp, "gone"));

    let doc = ring_dump(&tmp.base, &["--json", "clean"]).ok_json();
    let ns = &doc["namespaces"][0];
    let objects = ns["objects"].as_array().expect("objects");
    let stale: Vec<(&Value, &Value)> = objects
        .iter()
        .filter(|o| o["stale"] == "bridge_counters")
        .map(|o| (&o["file"], &o["action"]))
        .collect();
    assert_eq!(
        stale,
        [(&json!("gone.bridge"), &json!("would_remove"))],
        "{doc}"
    );
    assert!(
        ns["live"]
            .as_array()
            .expect("live")
            .contains(&json!("held_gone.bridge")),
        "{doc}"
    );
    let out = ring_dump(&tmp.base, &["clean", "--yes"]).ok().to_owned();
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("removed")
            && l.contains("bridge counters of a topic that is gone")
            && l.contains("gone.bridge")),
        "{out}"
    );
    let files = tmp.files();
    assert!(!files.contains(&"gone.bridge".to_owned()), "{files:?}");
    assert!(files.contains(&"md.bridge".to_owned()), "{files:?}");
    assert!(files.contains(&"held_gone.bridge".to_owned()), "{files:?}");

    // remove-namespace: refused while a bridge holds counters.
    drop((sub, md, bus));
    let run = ring_dump(&tmp.base, &["remove-namespace", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "bridge counters of topic \"held_gone\" (held_gone.bridge): the Zenoh bridge (pid {})",
            std::process::id()
        )),
        "{}",
        run.stderr
    );
    drop(held);
    let out = ring_dump(&tmp.base, &["remove-namespace"]).ok().to_owned();
    assert!(
        out.contains("2 segment files, 2 bridge counters files"),
        "{out}"
    );
    ring_dump(&tmp.base, &["remove-namespace", "--yes"]).ok();
    assert!(
        !tmp.ns.path().exists(),
        "the namespace is gone, counters too"
    );
}
