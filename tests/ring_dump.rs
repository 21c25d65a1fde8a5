//! `ring-dump` end to end: the real binary, run as its own process against
//! rings that this test process creates, attaches to and corrupts.
//!
//! Cargo does not build another package's binary for the root crate's
//! tests, so the first test to need it runs `cargo build -p ring-dump` and
//! takes the executable's path from cargo's JSON messages. Each test works
//! in its own base directory under the system temp dir, removed at the end.
//!
//! The library side (`shmbus::inspect`) is exercised directly too, for what
//! the binary cannot show deterministically: a walk overtaken by the
//! consumer, and hostile bytes in every position and header.
//!
//! Topics are built through the public bus API: a publisher of Protocol V2
//! trades, a live anonymous subscriber part-way through them and a durable
//! subscriber that left (so its slot is `DETACHED`), all held by this test
//! process while ring-dump, another process, looks at them.

use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use std::time::Duration;

use shmbus::bus::{Bus, Policy, StartAt, TopicConfig};
use shmbus::inspect::{self, InspectError, SpscInspector};
use shmbus::layout::{
    pack_record_header, SegmentKind, TopicEntry, BROADCAST_CONTROL_OFFSET,
    DIRECTORY_ENTRIES_OFFSET, FLAG_COMMITTED, FLAG_PADDING, LAYOUT_VERSION, SPSC_DATA_OFFSET,
};
use shmbus::record::{
    venue, Checksum, Fixed8, Instrument, MessageBuilder, RelayDomain, Side, SourceType, TradeTlv,
};
use shmbus::ring::broadcast::Subscriber;
use shmbus::ring::spsc::{SpscConfig, SpscRing};
use shmbus::ring::CorruptionKind;
use shmbus::segment::{OpenOptions, Segment};
use shmbus::Namespace;

const NS: &str = "desk";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A base directory for one test, removed on drop.
struct TempBase(PathBuf);

impl TempBase {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "shmbus-ringdump-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempBase(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn ns(&self) -> Namespace {
        Namespace::at(&self.0, NS).expect("namespace")
    }

    fn ring_file(&self, name: &str) -> PathBuf {
        self.0.join(NS).join(format!("{name}.spsc"))
    }

    /// The file of the broadcast log segment `segment`.
    fn log_file(&self, segment: &str) -> PathBuf {
        self.0.join(NS).join(format!("{segment}.bcast"))
    }
}

impl Drop for TempBase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ring-dump executable, built once per test run.
fn ring_dump_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "ring-dump",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if cfg!(not(debug_assertions)) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build -p ring-dump");
        assert!(
            out.status.success(),
            "cargo build -p ring-dump failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Cargo names the executable it built in a compiler-artifact message;
        // this follows any target-dir setting (env, config, profile).
        let from_messages = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| Json::parse(line).ok())
            .filter(|m| m.get("reason").and_then(Json::as_str) == Some("compiler-artifact"))
            .filter(|m| {
                m.get("target")
                    .and_then(|t| t.get("name"))
                    .and_then(Json::as_str)
                    == Some("ring-dump")
            })
            .find_map(|m| {
                m.get("executable")
                    .and_then(Json::as_str)
                    .map(PathBuf::from)
            });
        let exe = from_messages.unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            let target = if target.is_relative() {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(target)
            } else {
                target
            };
            let profile = if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            };
            target.join(profile).join("ring-dump")
        });
        assert!(exe.is_file(), "no ring-dump binary at {}", exe.display());
        exe
    })
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

    fn json(&self) -> Json {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one JSON line: {}",
            self.stdout
        );
        Json::parse(self.stdout.trim_end()).expect("stdout is valid JSON")
    }
}

/// Runs ring-dump with `--dir base -n desk` and `args`.
fn ring_dump(base: &Path, args: &[&str]) -> Run {
    let out = Command::new(ring_dump_exe())
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

/// A ring `name` of 4096 bytes holding three known records, the first of
/// which has been consumed: head 16, records at 16 and 32, tail 56.
fn ring_with_records(base: &TempBase, name: &str) {
    let ns = base.ns();
    SpscRing::create(&ns, name, SpscConfig::with_capacity(4096)).expect("create");
    let mut tx = SpscRing::producer(&ns, name).expect("producer");
    tx.try_send(1, b"skip").expect("send"); // frame 16 at 0
    tx.try_send(7, &[0xde, 0xad, 0xbe, 0xef]).expect("send"); // frame 16 at 16
    tx.try_send(42, b"BUY 100 @ 42.5").expect("send"); // frame 24 at 32
    let mut rx = SpscRing::consumer(&ns, name).expect("consumer");
    assert_eq!(&rx.try_read().expect("first")[..], b"skip");
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open ring file for writing");
    f.write_all_at(bytes, offset).expect("write");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

#[test]
fn dump_shows_header_positions_occupancy_and_hex_records() {
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    let run = ring_dump(base.path(), &["spsc", "orders"]);
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
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    let run = ring_dump(base.path(), &["--json", "spsc", "orders"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let num = |k: &str| {
        j.get(k)
            .and_then(Json::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(j.get("namespace").and_then(Json::as_str), Some(NS));
    assert_eq!(j.get("name").and_then(Json::as_str), Some("orders"));
    assert_eq!(num("layout_version"), u64::from(LAYOUT_VERSION));
    assert_eq!(num("capacity"), 4096);
    assert_eq!(num("segment_size"), 4096 + SPSC_DATA_OFFSET as u64);
    assert_eq!((num("head"), num("tail"), num("used_bytes")), (16, 56, 40));
    assert_eq!(num("creator_pid"), u64::from(std::process::id()));
    assert_eq!(j.get("poisoned"), Some(&Json::Bool(false)));
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Json::Bool(false)), "{role}");
        assert_eq!(r.get("pid").and_then(Json::as_u64), Some(0), "{role}");
    }
    let records = j.get("records").and_then(Json::as_array).expect("records");
    let summary: Vec<(u64, u64, u64, &str)> = records
        .iter()
        .map(|r| {
            let n = |k: &str| r.get(k).and_then(Json::as_u64).expect(k);
            let h = r.get("hex").and_then(Json::as_str).expect("hex");
            (n("position"), n("type"), n("len"), h)
        })
        .collect();
    let buy = hex(b"BUY 100 @ 42.5");
    assert_eq!(
        summary,
        [(16, 7, 4, "deadbeef"), (32, 42, 14, buy.as_str())]
    );
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Json::as_str), Some("complete"));
}

#[test]
fn records_and_hex_bytes_limit_the_dump() {
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    let run = ring_dump(
        base.path(),
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
        base.path(),
        &["--json", "--records=1", "--hex-bytes=2", "spsc", "orders"],
    )
    .json();
    let records = j.get("records").and_then(Json::as_array).expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].get("hex").and_then(Json::as_str), Some("dead"));
    assert_eq!(records[0].get("truncated"), Some(&Json::Bool(true)));
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Json::as_str), Some("limit"));
    assert_eq!(walk.get("next_position").and_then(Json::as_u64), Some(32));
}

#[test]
fn records_after_a_wrap_are_found_past_the_padding() {
    let base = TempBase::new();
    let ns = base.ns();
    // 128 bytes: max payload 48 (frame 56 and an 8-byte sentinel: half).
    SpscRing::create(&ns, "wrap", SpscConfig::with_capacity(128)).expect("create");
    let mut tx = SpscRing::producer(&ns, "wrap").expect("producer");
    let mut rx = SpscRing::consumer(&ns, "wrap").expect("consumer");
    tx.try_send(1, &[1; 48]).expect("send"); // frame 56 at 0
    tx.try_send(2, &[2; 40]).expect("send"); // frame 48 at 56
    drop(rx.try_read().expect("read")); // head 56
    tx.try_send(3, &[3; 24]).expect("send"); // padding 24 at 104, frame 32 at 128
    drop((tx, rx));

    let j = ring_dump(base.path(), &["--json", "spsc", "wrap"]).json();
    assert_eq!(j.get("head").and_then(Json::as_u64), Some(56));
    assert_eq!(j.get("tail").and_then(Json::as_u64), Some(160));
    let positions: Vec<(u64, u64)> = j
        .get("records")
        .and_then(Json::as_array)
        .expect("records")
        .iter()
        .map(|r| {
            (
                r.get("position").and_then(Json::as_u64).expect("position"),
                r.get("type").and_then(Json::as_u64).expect("type"),
            )
        })
        .collect();
    assert_eq!(positions, [(56, 2), (128, 3)]);
}

#[test]
fn list_shows_every_ring_and_reports_unusable_ones_inline() {
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    SpscRing::create(&base.ns(), "fills", SpscConfig::with_capacity(1024)).expect("create");
    garbage_ring(&base, "junk");

    let run = ring_dump(base.path(), &["list"]);
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

    let j = ring_dump(base.path(), &["--json", "list"]).json();
    let rings = j.get("rings").and_then(Json::as_array).expect("rings");
    let names: Vec<&str> = rings
        .iter()
        .map(|r| r.get("name").and_then(Json::as_str).expect("name"))
        .collect();
    assert_eq!(names, ["fills", "junk", "orders"]);
    assert_eq!(rings[1].get("exit_code").and_then(Json::as_u64), Some(2));
    assert_eq!(rings[2].get("used_bytes").and_then(Json::as_u64), Some(40));
}

#[test]
fn missing_ring_exits_1_with_one_line() {
    let base = TempBase::new();
    let _ = base.ns();
    let run = ring_dump(base.path(), &["spsc", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(run.one_error_line().contains("nope.spsc does not exist"));
    assert!(!base.ring_file("nope").exists());
}

#[test]
fn missing_namespace_exits_1_and_creates_nothing() {
    let base = TempBase::new();
    for args in [&["list"][..], &["spsc", "orders"], &["--json", "list"]] {
        let run = ring_dump(base.path(), args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.one_error_line().contains("namespace desk not found"),
            "{}",
            run.stderr
        );
    }
    assert!(
        !base.path().exists(),
        "ring-dump created the base directory"
    );
}

/// Writes a file of garbage where the ring `name` would be, mode 0600.
fn garbage_ring(base: &TempBase, name: &str) {
    let _ = base.ns();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(base.ring_file(name))
        .expect("create garbage file");
    f.write_all(&[0x5a; 4608]).expect("write garbage");
}

#[test]
fn bad_magic_exits_2_with_one_line() {
    let base = TempBase::new();
    garbage_ring(&base, "junk");
    let before = std::fs::read(base.ring_file("junk")).expect("read");
    for args in [&["spsc", "junk"][..], &["--json", "spsc", "junk"]] {
        let run = ring_dump(base.path(), args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "");
        assert!(
            run.one_error_line().contains("not a shmbus segment"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read(base.ring_file("junk")).expect("read"), before);
}

#[test]
fn poisoned_ring_exits_2() {
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    Segment::open(
        &base.ns(),
        "orders",
        SegmentKind::Spsc,
        &OpenOptions::default(),
    )
    .expect("open")
    .poison();
    let run = ring_dump(base.path(), &["spsc", "orders"]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains("poisoned"), "{}", run.stderr);
}

#[test]
fn unusable_names_and_command_lines_exit_2() {
    let base = TempBase::new();
    let _ = base.ns();
    for args in [
        &["spsc", "../etc"][..],
        &["spsc"],
        &["--records", "x", "list"],
    ] {
        let run = ring_dump(base.path(), args);
        assert_eq!(run.code, 2, "{args:?}");
        run.one_error_line();
    }
    let help = ring_dump(base.path(), &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("EXAMPLES"), "{}", help.stdout);
}

#[test]
fn corrupt_record_header_exits_2_and_leaves_the_file_unchanged() {
    let base = TempBase::new();
    let ns = base.ns();
    SpscRing::create(&ns, "orders", SpscConfig::with_capacity(4096)).expect("create");
    let mut tx = SpscRing::producer(&ns, "orders").expect("producer");
    tx.try_send(7, b"first").expect("send");
    tx.try_send(8, b"second").expect("send");
    drop(tx);
    // The first record's header: a length far beyond the maximum payload.
    let path = base.ring_file("orders");
    write_at(
        &path,
        SPSC_DATA_OFFSET as u64,
        &pack_record_header(0xffff_0000, 7, 0).to_ne_bytes(),
    );
    let before = std::fs::read(&path).expect("read");

    let run = ring_dump(base.path(), &["spsc", "orders"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    let line = run.one_error_line();
    assert!(line.contains("is corrupt"), "{line}");
    assert!(
        line.contains("record at 0 claims 4294901760 bytes"),
        "{line}"
    );
    // What could be read is still shown.
    assert!(run.stdout.contains("head 0, tail 32"), "{}", run.stdout);

    let j = ring_dump(base.path(), &["--json", "spsc", "orders"]);
    assert_eq!(j.code, 2);
    j.one_error_line();
    let walk = j.json().get("walk").cloned().expect("walk");
    assert_eq!(walk.get("status").and_then(Json::as_str), Some("corrupt"));

    assert_eq!(std::fs::read(&path).expect("read"), before, "file modified");
}

#[test]
fn live_ring_shows_attached_roles_and_is_not_disturbed() {
    let base = TempBase::new();
    let ns = base.ns();
    SpscRing::create(&ns, "live", SpscConfig::with_capacity(4096)).expect("create");
    let mut tx = SpscRing::producer(&ns, "live").expect("producer");
    let mut rx = SpscRing::consumer(&ns, "live").expect("consumer");
    tx.try_send(5, b"tick").expect("send");
    let path = base.ring_file("live");
    let before = std::fs::read(&path).expect("read");

    let j = ring_dump(base.path(), &["--json", "spsc", "live"]).json();
    let me = u64::from(std::process::id());
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Json::Bool(true)), "{role}");
        assert_eq!(r.get("pid").and_then(Json::as_u64), Some(me), "{role}");
    }
    let text = ring_dump(base.path(), &["spsc", "live"]);
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

    let j = ring_dump(base.path(), &["--json", "spsc", "live"]).json();
    for role in ["producer", "consumer"] {
        let r = j.get(role).expect(role);
        assert_eq!(r.get("attached"), Some(&Json::Bool(false)), "{role}");
        assert_eq!(r.get("pid").and_then(Json::as_u64), Some(0), "{role}");
    }
    assert_eq!(j.get("used_bytes").and_then(Json::as_u64), Some(0));
    // ring-dump left no lock behind: both roles can be taken again.
    SpscRing::producer(&ns, "live").expect("producer again");
    SpscRing::consumer(&ns, "live").expect("consumer again");
}

// ---------------------------------------------------------------------------
// The library
// ---------------------------------------------------------------------------

#[test]
fn snapshot_and_records_from_the_library() {
    let base = TempBase::new();
    ring_with_records(&base, "orders");
    let (snap, records) =
        inspect::spsc_records(&base.ns(), "orders", &OpenOptions::default(), 16, 64)
            .expect("inspect");
    assert_eq!((snap.head, snap.tail, snap.used_bytes), (16, 56, 40));
    assert!(snap.consistent && !snap.poisoned);
    assert_eq!(snap.free_bytes(), 4096 - 40);
    let got: Vec<(u64, u16, Vec<u8>)> = records
        .into_iter()
        .map(|r| (r.position, r.record_type, r.payload))
        .collect();
    assert_eq!(
        got,
        [
            (16, 7, vec![0xde, 0xad, 0xbe, 0xef]),
            (32, 42, b"BUY 100 @ 42.5".to_vec())
        ]
    );
    assert_eq!(
        inspect::list_spsc(&base.ns()).expect("list"),
        ["orders".to_owned()]
    );
}

#[test]
fn a_walk_overtaken_by_the_consumer_stops_instead_of_showing_stale_bytes() {
    let base = TempBase::new();
    let ns = base.ns();
    SpscRing::create(&ns, "fast", SpscConfig::with_capacity(64)).expect("create");
    let mut tx = SpscRing::producer(&ns, "fast").expect("producer");
    let mut rx = SpscRing::consumer(&ns, "fast").expect("consumer");
    tx.try_send(1, &[1; 8]).expect("send"); // frame 16 at 0
    tx.try_send(2, &[2; 8]).expect("send"); // frame 16 at 16

    let ring = SpscInspector::open(&ns, "fast", &OpenOptions::default()).expect("open");
    let snap = ring.snapshot().expect("snapshot");
    assert_eq!((snap.head, snap.tail), (0, 32));
    // Between the snapshot and the walk the consumer drains the ring and the
    // producer laps it, rewriting the bytes the snapshot pointed at.
    for round in 0..8u8 {
        drop(rx.try_read().expect("read"));
        tx.try_send(100 + u16::from(round), &[0xee; 8])
            .expect("send");
    }
    let mut walk = ring.records(&snap, 16, 64);
    match walk.next() {
        Some(Err(InspectError::Overtaken { position, head, .. })) => {
            assert_eq!(position, 0);
            assert!(head > 0);
        }
        other => panic!("expected Overtaken, got {other:?}"),
    }
    assert!(walk.next().is_none(), "the walk ends after an error");
}

/// Whether a corruption is the one a case expects.
type KindCheck = fn(&CorruptionKind) -> bool;

#[test]
fn corrupt_frames_are_typed_errors() {
    let cases: [(u64, KindCheck); 4] = [
        // unknown flag bit
        (pack_record_header(4, 1, 0x4000 | FLAG_COMMITTED), |k| {
            matches!(k, CorruptionKind::UnknownFlags { flags: 0xC000 })
        }),
        // padding that does not reach the end of the region
        (
            pack_record_header(8, 0, FLAG_PADDING | FLAG_COMMITTED),
            |k| matches!(k, CorruptionKind::BadPadding { len: 8 }),
        ),
        // longer than the maximum payload
        (pack_record_header(4000, 1, FLAG_COMMITTED), |k| {
            matches!(k, CorruptionKind::LengthTooLarge { len: 4000 })
        }),
        // valid length, but past the producer position
        (pack_record_header(64, 1, FLAG_COMMITTED), |k| {
            matches!(k, CorruptionKind::RecordOutOfBounds { len: 64 })
        }),
    ];
    for (word, is_expected) in cases {
        let base = TempBase::new();
        let ns = base.ns();
        SpscRing::create(&ns, "r", SpscConfig::with_capacity(1024)).expect("create");
        SpscRing::producer(&ns, "r")
            .expect("producer")
            .try_send(1, b"abcd")
            .expect("send");
        write_at(
            &base.ring_file("r"),
            SPSC_DATA_OFFSET as u64,
            &word.to_ne_bytes(),
        );
        let err = inspect::spsc_records(&ns, "r", &OpenOptions::default(), 16, 64)
            .expect_err("corrupt frame");
        match err {
            InspectError::Corrupt { corruption, .. } => {
                assert!(is_expected(&corruption.kind), "{word:#x}: {corruption:?}");
                assert_eq!(corruption.position, 0);
            }
            other => panic!("{word:#x}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn hostile_positions_and_headers_never_panic() {
    let base = TempBase::new();
    let ns = base.ns();
    SpscRing::create(&ns, "fuzz", SpscConfig::with_capacity(256)).expect("create");
    let path = base.ring_file("fuzz");
    let ring = SpscInspector::open(&ns, "fuzz", &OpenOptions::default()).expect("open");
    // xorshift64*: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut oks, mut errs) = (0, 0);
    for i in 0..500 {
        // Mostly small aligned positions so walks get going; sometimes anything.
        let head = if i % 5 == 0 {
            next()
        } else {
            (next() % 512) & !7
        };
        let tail = if i % 7 == 0 {
            next()
        } else {
            head.wrapping_add((next() % 300) & !7)
        };
        // tail at control offset 128, head at 256, from the segment start.
        write_at(&path, 128 + 128, &tail.to_ne_bytes());
        write_at(&path, 128 + 256, &head.to_ne_bytes());
        let mut data = [0u8; 256];
        for chunk in data.chunks_mut(8) {
            let len = next() % 80;
            let flags = if next() % 6 == 0 {
                (next() % 4) as u16
            } else {
                0
            };
            chunk.copy_from_slice(&pack_record_header(len as u32, 1, flags).to_ne_bytes());
        }
        write_at(&path, SPSC_DATA_OFFSET as u64, &data);
        match ring.snapshot() {
            Ok(snap) => {
                assert!(snap.head <= snap.tail && snap.used_bytes <= 256);
                for r in ring.records(&snap, usize::MAX, 1 << 20) {
                    match r {
                        Ok(r) => {
                            assert!(r.position >= snap.head && r.position < snap.tail);
                            assert_eq!(r.payload.len(), r.len as usize);
                            oks += 1;
                        }
                        Err(InspectError::Corrupt { .. }) => errs += 1,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
            Err(InspectError::Corrupt { .. }) => errs += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(
        oks > 0 && errs > 0,
        "fuzz reached both paths: {oks} ok, {errs} err"
    );
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

const TOPIC: &str = "market_data";
/// Trades published on the topic.
const TRADES: u64 = 5;
/// Trades the live subscriber has read.
const READ: u64 = 2;

fn topic_config(policy: Policy, slots: u32) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload: 128,
        policy,
        max_subscribers: 4,
        max_publishers: 2,
        claim_timeout: Duration::from_secs(1),
    }
}

/// Protocol V2 market-data message carrying one trade, sender sequence `seq`.
fn trade(seq: u64) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
    let len = MessageBuilder::new(
        &mut buf,
        RelayDomain::MarketData,
        SourceType::BinanceCollector,
    )
    .sequence(seq)
    .timestamp_ns(1_700_000_000_000_000_000 + seq)
    .typed(&TradeTlv::new(
        btc,
        Fixed8::from_raw(6_500_000_000_000 + seq as i64),
        Fixed8::from_raw(12_500_000),
        Side::Buy,
        seq,
    ))
    .finish(Checksum::Compute)
    .expect("message fits");
    buf[..len].to_vec()
}

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
fn desk_with_traffic(base: &TempBase) -> Desk {
    let bus = Bus::at(base.path(), NS).expect("bus");
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
            .try_publish(u16::from(RelayDomain::MarketData as u8), &trade(seq))
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
    let base = TempBase::new();
    let desk = desk_with_traffic(&base);
    let before = std::fs::read(base.log_file(&desk.segment)).expect("read log");

    let run = ring_dump(base.path(), &["topics"]);
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

    let j = ring_dump(base.path(), &["--json", "topics"]).json();
    let topics = j.get("topics").and_then(Json::as_array).expect("topics");
    assert_eq!(topics.len(), 1);
    let t = &topics[0];
    let num = |k: &str| {
        t.get(k)
            .and_then(Json::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(t.get("name").and_then(Json::as_str), Some(TOPIC));
    assert_eq!(t.get("policy").and_then(Json::as_str), Some("backpressure"));
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
        std::fs::read(base.log_file(&desk.segment)).expect("read log"),
        before,
        "ring-dump modified the log"
    );
}

#[test]
fn topic_json_shows_positions_participants_and_decoded_records() {
    let base = TempBase::new();
    let desk = desk_with_traffic(&base);
    let log = base.log_file(&desk.segment);
    let before = std::fs::read(&log).expect("read log");

    let run = ring_dump(base.path(), &["--json", "topic", TOPIC]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let num = |k: &str| {
        j.get(k)
            .and_then(Json::as_u64)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(j.get("namespace").and_then(Json::as_str), Some(NS));
    assert_eq!(j.get("name").and_then(Json::as_str), Some(TOPIC));
    assert_eq!(
        j.get("segment").and_then(Json::as_str),
        Some(desk.segment.as_str())
    );
    assert_eq!(j.get("policy").and_then(Json::as_str), Some("backpressure"));
    assert_eq!((num("slots"), num("max_payload")), (16, 128));
    assert_eq!(num("claim_timeout_ns"), 1_000_000_000);
    assert_eq!(num("tail"), TRADES);
    assert_eq!(num("creator_pid"), u64::from(std::process::id()));
    let counters = j.get("counters").expect("counters");
    assert_eq!(
        counters.get("reclaimed_claims").and_then(Json::as_u64),
        Some(0)
    );

    let me = u64::from(std::process::id());
    let publishers = j
        .get("publishers")
        .and_then(Json::as_array)
        .expect("publishers");
    assert_eq!(publishers.len(), 1);
    let p = &publishers[0];
    assert_eq!(p.get("alive"), Some(&Json::Bool(true)));
    assert_eq!(p.get("state").and_then(Json::as_str), Some("live"));
    assert_eq!(p.get("pid").and_then(Json::as_u64), Some(me));
    assert_eq!(p.get("published").and_then(Json::as_u64), Some(TRADES));

    let subscribers = j
        .get("subscribers")
        .and_then(Json::as_array)
        .expect("subscribers");
    assert_eq!(subscribers.len(), 2, "{}", run.stdout);
    let risk = subscribers
        .iter()
        .find(|s| s.get("name").and_then(Json::as_str) == Some("risk"))
        .expect("the durable subscriber is listed");
    assert_eq!(risk.get("state").and_then(Json::as_str), Some("detached"));
    assert_eq!(risk.get("alive"), Some(&Json::Bool(false)));
    assert_eq!(risk.get("cursor").and_then(Json::as_u64), Some(0));
    assert_eq!(risk.get("lag").and_then(Json::as_u64), Some(TRADES));
    let live = subscribers
        .iter()
        .find(|s| s.get("name") == Some(&Json::Null))
        .expect("the anonymous subscriber is listed");
    assert_eq!(live.get("state").and_then(Json::as_str), Some("live"));
    assert_eq!(live.get("alive"), Some(&Json::Bool(true)));
    assert_eq!(live.get("pid").and_then(Json::as_u64), Some(me));
    assert_eq!(live.get("cursor").and_then(Json::as_u64), Some(READ));
    assert_eq!(live.get("lag").and_then(Json::as_u64), Some(TRADES - READ));
    assert!(live
        .get("heartbeat_age_ns")
        .and_then(Json::as_u64)
        .is_some());

    let records = j.get("records").and_then(Json::as_array).expect("records");
    let sequences: Vec<u64> = records
        .iter()
        .map(|r| r.get("sequence").and_then(Json::as_u64).expect("sequence"))
        .collect();
    assert_eq!(sequences, [4, 3, 2, 1, 0], "newest first");
    for r in records {
        let seq = r.get("sequence").and_then(Json::as_u64).expect("sequence");
        assert_eq!(r.get("type").and_then(Json::as_u64), Some(1));
        assert_eq!(
            r.get("len").and_then(Json::as_u64),
            Some(trade(seq).len() as u64)
        );
        let v2 = r.get("v2").expect("decoded as Protocol V2");
        assert_eq!(v2.get("relay_domain").and_then(Json::as_u64), Some(1));
        assert_eq!(v2.get("domain").and_then(Json::as_str), Some("MarketData"));
        assert_eq!(
            v2.get("source_name").and_then(Json::as_str),
            Some("BinanceCollector")
        );
        assert_eq!(v2.get("sequence").and_then(Json::as_u64), Some(seq));
        assert_eq!(
            v2.get("timestamp_ns").and_then(Json::as_u64),
            Some(1_700_000_000_000_000_000 + seq)
        );
        let tlvs = v2.get("tlvs").and_then(Json::as_array).expect("tlvs");
        assert_eq!(tlvs.len(), 1);
        assert_eq!(tlvs[0].get("type").and_then(Json::as_u64), Some(1));
    }
    let walk = j.get("walk").expect("walk");
    assert_eq!(walk.get("status").and_then(Json::as_str), Some("complete"));

    // The text form says the same.
    let text = ring_dump(base.path(), &["--records", "2", "topic", TOPIC]);
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
    let base = TempBase::new();
    let _ = base.ns();
    // A namespace where no topic was ever created has no directory.
    for args in [&["topics"][..], &["topic", TOPIC], &["--json", "topics"]] {
        let run = ring_dump(base.path(), args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.one_error_line().contains("no topic directory"),
            "{}",
            run.stderr
        );
    }
    assert!(
        !base.path().join(NS).join("directory.dir").exists(),
        "ring-dump created the directory"
    );

    let _desk = desk_with_traffic(&base);
    let run = ring_dump(base.path(), &["topic", "nope"]);
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
    let base = TempBase::new();
    let desk = desk_with_traffic(&base);
    let segment = desk.segment.clone();
    drop(desk);
    // The control block's first field is the slot count (16): say 32.
    write_at(
        &base.log_file(&segment),
        BROADCAST_CONTROL_OFFSET as u64,
        &32u64.to_ne_bytes(),
    );
    let before = std::fs::read(base.log_file(&segment)).expect("read log");

    let run = ring_dump(base.path(), &["topic", TOPIC]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert_eq!(run.stdout, "");
    let line = run.one_error_line();
    assert!(line.contains("is corrupt"), "{line}");
    assert!(line.contains("slots 32"), "{line}");

    let run = ring_dump(base.path(), &["topics"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stdout.contains("unusable: "), "{}", run.stdout);
    let j = ring_dump(base.path(), &["--json", "topics"]).json();
    let topics = j.get("topics").and_then(Json::as_array).expect("topics");
    assert_eq!(topics[0].get("exit_code").and_then(Json::as_u64), Some(2));
    assert_eq!(
        std::fs::read(base.log_file(&segment)).expect("read log"),
        before,
        "ring-dump modified the log"
    );
}

#[test]
fn corrupt_directory_entry_is_listed_and_exits_2() {
    let base = TempBase::new();
    let desk = desk_with_traffic(&base);
    // The log segment is `topic-<entry>-<epoch>`.
    let entry: usize = desk
        .segment
        .split('-')
        .nth(1)
        .and_then(|i| i.parse().ok())
        .expect("entry index in the segment name");
    let dir = base.path().join(NS).join("directory.dir");
    // A name length of 200 (the low half of its tagged word).
    let offset = DIRECTORY_ENTRIES_OFFSET
        + entry * std::mem::size_of::<TopicEntry>()
        + std::mem::offset_of!(TopicEntry, name_len);
    write_at(&dir, offset as u64, &200u32.to_le_bytes());
    let before = std::fs::read(&dir).expect("read directory");
    let expected = format!("topic directory entry {entry} is corrupt: name length 200");

    let run = ring_dump(base.path(), &["topics"]);
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

    let run = ring_dump(base.path(), &["--json", "topics"]);
    assert_eq!(run.code, 2);
    assert!(run.one_error_line().contains(&expected), "{}", run.stderr);
    let j = run.json();
    let topics = j.get("topics").and_then(Json::as_array).expect("topics");
    assert_eq!(topics.len(), 1, "{}", run.stdout);
    let t = &topics[0];
    assert_eq!(t.get("status").and_then(Json::as_str), Some("corrupt"));
    assert_eq!(t.get("entry").and_then(Json::as_u64), Some(entry as u64));
    assert_eq!(t.get("exit_code").and_then(Json::as_u64), Some(2));
    assert!(t
        .get("error")
        .and_then(Json::as_str)
        .is_some_and(|e| e.contains("name length 200")));

    // The entry might be market_data: asking for it is corrupt, not "not found".
    for args in [&["topic", TOPIC][..], &["--json", "topic", TOPIC]] {
        let run = ring_dump(base.path(), args);
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

#[test]
fn topic_records_from_the_library_stop_at_the_oldest_held() {
    let base = TempBase::new();
    let bus = Bus::at(base.path(), NS).expect("bus");
    let topic = bus
        .topic("ticks", &topic_config(Policy::Overwrite, 4))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    for seq in 0..10 {
        publisher.try_publish(9, &trade(seq)).expect("publish");
    }
    let opts = OpenOptions::default();
    let (snap, records) = inspect::topic_records(&base.ns(), "ticks", &opts, 16).expect("inspect");
    assert_eq!((snap.tail, snap.oldest()), (10, 6));
    assert_eq!(snap.topic.config.policy, Policy::Overwrite);
    let got: Vec<(u64, u64)> = records
        .iter()
        .map(|r| {
            let v2 = r.decode_v2().expect("Protocol V2");
            (r.sequence, v2.sequence)
        })
        .collect();
    assert_eq!(got, [(9, 9), (8, 8), (7, 7), (6, 6)]);
    let (_, two) = inspect::topic_records(&base.ns(), "ticks", &opts, 2).expect("inspect");
    assert_eq!(two.iter().map(|r| r.sequence).collect::<Vec<_>>(), [9, 8]);

    assert_eq!(
        inspect::list_topics(&base.ns())
            .expect("list")
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["ticks"]
    );
    assert!(matches!(
        inspect::inspect_topic(&base.ns(), "nope", &opts),
        Err(InspectError::TopicNotFound { .. })
    ));
    // A record that is not Protocol V2 falls back to raw bytes.
    publisher.try_publish(9, b"not a message").expect("publish");
    let (_, last) = inspect::topic_records(&base.ns(), "ticks", &opts, 1).expect("inspect");
    assert_eq!(last[0].payload, b"not a message");
    assert!(last[0].decode_v2().is_err());
}

// ---------------------------------------------------------------------------
// A small JSON reader, enough to check ring-dump's output and cargo's
// messages (the root crate has no JSON dependency).
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number's text, so u64 values keep every digit.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(format!("expected {lit} at {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'n') => self.eat("null").map(|()| Json::Null),
            Some(b't') => self.eat("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.eat("false").map(|()| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    fields.push((key, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                n.parse::<f64>()
                    .map_err(|_| format!("bad number {n:?}"))
                    .map(|_| Json::Num(n.to_owned()))
            }
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat("\"")?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let h = self.s.get(self.i..self.i + 4).ok_or("short \\u")?;
                            let h = std::str::from_utf8(h).map_err(|e| e.to_string())?;
                            self.i += 4;
                            let code = u32::from_str_radix(h, 16).map_err(|e| e.to_string())?;
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(format!("control byte in string at {}", self.i)),
                c => out.push(c),
            }
        }
    }
}
