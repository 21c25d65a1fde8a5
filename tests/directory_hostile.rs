//! The directory under hostile bytes, dead creators and stalled creators
//! (issue 7, findings 7 and 10, and the directory overflow of finding 6),
//! for topics and SPSC channels.
//!
//! Entries are corrupted by writing into the directory file with `pwrite`
//! while the bus keeps it mapped (the mapping sees the same pages). Dead
//! and stalled creators are child processes (this test binary re-run with a
//! role) paused inside `Directory::create_or_open_paused` right after they
//! claimed an entry, then SIGKILLed, or SIGSTOPped and later continued.
//!
//! Run: `cargo test --release -p shmbus --test directory_hostile` (and
//! without `--release` for the overflow checks of debug builds).

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, splitmix, TempNs};
use shmbus::bus::{Bus, BusError, Policy, SpscConfig, TopicConfig};
use shmbus::directory::{Directory, DirectoryEntry, DirectoryError};
use shmbus::layout::{TopicEntry, DIRECTORY_ENTRIES_OFFSET};
use shmbus::segment::OpenOptions;
use shmbus::Namespace;

const NS: &str = "t";

fn config(slots: u32) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload: 64,
        policy: Policy::Backpressure,
        max_subscribers: 4,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

fn dir_file(ns: &Namespace) -> PathBuf {
    ns.path().join("directory.dir")
}

/// Byte offset of `field_offset` inside entry `entry` of the directory file.
fn entry_offset(entry: usize, field_offset: usize) -> u64 {
    (DIRECTORY_ENTRIES_OFFSET + entry * core::mem::size_of::<TopicEntry>() + field_offset) as u64
}

/// Where a name's probe chain starts (FNV-1a of the name, as the
/// directory hashes it).
fn home_entry(name: &str, entries: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % entries as u64) as usize
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open directory file");
    f.write_all_at(bytes, offset).expect("write directory file");
}

/// Every entry that is not free, as the inspector sees it.
fn scan(ns: &Namespace) -> Vec<DirectoryEntry> {
    Directory::open_read_only(ns, &OpenOptions::default())
        .expect("directory")
        .scan()
        .expect("scan")
}

/// How many valid entries hold topic `name`.
fn ready_named(ns: &Namespace, name: &str) -> usize {
    scan(ns)
        .iter()
        .filter(|e| matches!(e, DirectoryEntry::Ready(r) if r.name == name))
        .count()
}

fn assert_corrupt(result: Result<impl Sized, BusError>, entry: usize, what: &str) -> String {
    match result {
        Err(BusError::Directory(DirectoryError::Corrupt { entry: e, reason })) => {
            assert_eq!(e, entry, "{what}: wrong entry named ({reason})");
            reason
        }
        Err(other) => panic!("{what}: expected a corrupt entry error, got {other}"),
        Ok(_) => panic!("{what}: expected a corrupt entry error, got a topic"),
    }
}

/// Creates `alpha`, lets `corrupt` damage its entry, then checks that
/// opening and creating `alpha` both name the corrupt entry, and that no
/// second `alpha` appears. Returns the reason given.
fn corrupt_entry_case(tag: &str, corrupt: impl Fn(&Path, usize)) -> String {
    let t = TempNs::new(tag);
    let bus = Bus::at(&t.base, NS).expect("bus");
    let entry = bus
        .topic("alpha", &config(16))
        .expect("create")
        .record()
        .entry;
    let entries_before = scan(&t.ns).len();
    corrupt(&dir_file(&t.ns), entry);

    let reason = assert_corrupt(bus.open_topic("alpha").map(|_| ()), entry, tag);
    assert_corrupt(bus.topic("alpha", &config(16)).map(|_| ()), entry, tag);
    let message = DirectoryError::Corrupt {
        entry,
        reason: reason.clone(),
    }
    .to_string();
    assert!(
        message.starts_with(&format!("directory entry {entry} is corrupt: ")),
        "{message}"
    );
    // No second alpha, and no new entry at all.
    let after = scan(&t.ns);
    assert_eq!(after.len(), entries_before, "{tag}: entries {after:?}");
    assert_eq!(ready_named(&t.ns, "alpha"), 0, "{tag}: {after:?}");
    assert!(
        after
            .iter()
            .any(|e| matches!(e, DirectoryEntry::Corrupt { entry: e, .. } if *e == entry)),
        "{tag}: the corrupt entry is not listed as corrupt: {after:?}"
    );
    reason
}

#[test]
fn name_length_200_is_a_corrupt_entry_not_a_second_topic() {
    let reason = corrupt_entry_case("name-len", |file, entry| {
        // The low half of the tagged word is the value; the tag stays valid.
        let off = entry_offset(entry, core::mem::offset_of!(TopicEntry, name_len));
        write_at(file, off, &200u32.to_le_bytes());
    });
    assert!(reason.contains("name length 200"), "{reason}");
}

#[test]
fn non_utf8_name_is_a_corrupt_entry_not_a_second_topic() {
    let reason = corrupt_entry_case("utf8", |file, entry| {
        let off = entry_offset(entry, core::mem::offset_of!(TopicEntry, name));
        write_at(file, off, &[0xFF]);
    });
    assert!(reason.contains("not UTF-8"), "{reason}");
}

#[test]
fn garbage_state_is_a_corrupt_entry_not_a_second_topic() {
    let reason = corrupt_entry_case("state", |file, entry| {
        let off = entry_offset(entry, core::mem::offset_of!(TopicEntry, state));
        write_at(file, off, &7u32.to_le_bytes());
    });
    assert!(reason.contains("unknown state 7"), "{reason}");
}

#[test]
fn a_field_of_another_epoch_is_a_corrupt_entry() {
    let reason = corrupt_entry_case("tag", |file, entry| {
        // Same slot count, but tagged with epoch 9 (the entry is at epoch 1).
        let off = entry_offset(entry, core::mem::offset_of!(TopicEntry, slots));
        write_at(file, off, &((9u64 << 32) | 16).to_le_bytes());
    });
    assert!(reason.contains("written at epoch 9"), "{reason}");
}

/// Creates channel `alpha` (4096 bytes), lets `corrupt` damage its entry,
/// then checks that opening, creating and removing `alpha` all name the
/// corrupt entry, with no second `alpha` and no new ring file. Returns the
/// reason given.
fn corrupt_channel_case(tag: &str, corrupt: impl Fn(&Path, usize)) -> String {
    let t = TempNs::new(tag);
    let bus = Bus::at(&t.base, NS).expect("bus");
    let cfg = SpscConfig::with_capacity(4096);
    let entry = bus.spsc("alpha", &cfg).expect("create").record().entry;
    let files_before = std::fs::read_dir(t.ns.path()).expect("ls").count();
    corrupt(&dir_file(&t.ns), entry);

    let reason = assert_corrupt(bus.open_spsc("alpha").map(|_| ()), entry, tag);
    assert_corrupt(bus.spsc("alpha", &cfg).map(|_| ()), entry, tag);
    assert_corrupt(bus.remove_spsc("alpha"), entry, tag);
    assert_corrupt(bus.open_topic("alpha").map(|_| ()), entry, tag);
    let after = scan(&t.ns);
    assert_eq!(after.len(), 1, "{tag}: entries {after:?}");
    assert!(
        matches!(&after[0], DirectoryEntry::Corrupt { entry: e, .. } if *e == entry),
        "{tag}: {after:?}"
    );
    assert_eq!(
        std::fs::read_dir(t.ns.path()).expect("ls").count(),
        files_before,
        "{tag}: a ring file was made or removed"
    );
    reason
}

/// Writes `value` as the low half of the tagged word at `field_offset` of
/// entry `entry` (the epoch tag stays valid).
fn write_value(file: &Path, entry: usize, field_offset: usize, value: u32) {
    write_at(
        file,
        entry_offset(entry, field_offset),
        &value.to_le_bytes(),
    );
}

#[test]
fn an_spsc_capacity_out_of_range_is_a_corrupt_entry() {
    // The slots word holds log2 of the capacity: 2^3 and 2^50 are outside
    // 64 ..= 2^40, 2^200 outside any address space.
    for (log2, expected) in [
        (3, "capacity 8 must be"),
        (50, "must be a power of two between"),
        (200, "2^200"),
    ] {
        let reason = corrupt_channel_case("spsc-cap", |file, entry| {
            write_value(file, entry, core::mem::offset_of!(TopicEntry, slots), log2);
        });
        assert!(reason.contains(expected), "2^{log2}: {reason}");
    }
}

#[test]
fn an_spsc_max_payload_past_half_the_ring_is_a_corrupt_entry() {
    let reason = corrupt_channel_case("spsc-payload", |file, entry| {
        write_value(
            file,
            entry,
            core::mem::offset_of!(TopicEntry, max_payload),
            4000,
        );
    });
    assert!(reason.contains("max_payload 4000 must be"), "{reason}");
}

#[test]
fn unknown_spsc_flags_or_unused_words_are_a_corrupt_entry() {
    let reason = corrupt_channel_case("spsc-flags", |file, entry| {
        write_value(file, entry, core::mem::offset_of!(TopicEntry, policy), 6);
    });
    assert!(reason.contains("unknown SPSC flags 0x6"), "{reason}");
    let reason = corrupt_channel_case("spsc-unused", |file, entry| {
        write_value(
            file,
            entry,
            core::mem::offset_of!(TopicEntry, max_publishers),
            3,
        );
    });
    assert!(reason.contains("must be 0"), "{reason}");
}

#[test]
fn an_unknown_kind_is_a_corrupt_entry() {
    for kind in [0, 4, 9, u32::MAX] {
        let reason = corrupt_channel_case("kind", |file, entry| {
            write_value(file, entry, core::mem::offset_of!(TopicEntry, kind), kind);
        });
        assert!(
            reason.contains(&format!("unknown ring kind {kind}")),
            "{reason}"
        );
    }
}

#[test]
fn a_channel_entry_whose_kind_says_topic_is_a_corrupt_entry_not_a_topic() {
    // The kind of a broadcast topic over an SPSC channel's words: a policy
    // of 0 and no publishers make no valid topic.
    let reason = corrupt_channel_case("kind-topic", |file, entry| {
        write_value(file, entry, core::mem::offset_of!(TopicEntry, kind), 1);
    });
    assert!(
        reason.contains("its configuration is invalid") || reason.contains("unknown policy"),
        "{reason}"
    );
}

#[test]
fn a_free_entry_in_front_of_a_topic_is_reported_not_filled_with_a_duplicate() {
    let t = TempNs::new("hole");
    let bus = Bus::at(&t.base, NS).expect("bus");
    let a = bus
        .topic("alpha", &config(16))
        .expect("create")
        .record()
        .entry;
    // A second name whose probe chain starts at alpha's entry: it lands on
    // the next one.
    let name = (0..100_000)
        .map(|k| format!("n{k}"))
        .find(|n| home_entry(n, 256) == a)
        .expect("a name hashing to the same entry");
    let b = bus
        .topic(&name, &config(16))
        .expect("create")
        .record()
        .entry;
    assert_ne!(a, b);
    // A hostile FREE over alpha's READY: the chain of `name` now has a hole.
    let off = entry_offset(a, core::mem::offset_of!(TopicEntry, state));
    write_at(&dir_file(&t.ns), off, &0u32.to_le_bytes());
    let reason = assert_corrupt(bus.topic(&name, &config(16)).map(|_| ()), a, "hole");
    assert!(reason.contains("further along its probe chain"), "{reason}");
    assert_eq!(ready_named(&t.ns, &name), 1);
}

#[test]
fn a_hostile_epoch_of_u32_max_is_an_error_not_an_overflow() {
    // In a debug build the old `epoch + 1` panicked here.
    let t = TempNs::new("epoch");
    let bus = Bus::at(&t.base, NS).expect("bus");
    let entry = bus
        .topic("alpha", &config(16))
        .expect("create")
        .record()
        .entry;
    let off = entry_offset(entry, core::mem::offset_of!(TopicEntry, state));
    write_at(
        &dir_file(&t.ns),
        off,
        &(u64::from(u32::MAX) << 32).to_le_bytes(),
    );
    let reason = assert_corrupt(bus.topic("alpha", &config(16)).map(|_| ()), entry, "epoch");
    assert!(reason.contains("cannot advance"), "{reason}");
    // READY at the largest epoch, fields of the old one: corrupt, no panic.
    write_at(
        &dir_file(&t.ns),
        off,
        &((u64::from(u32::MAX) << 32) | 2).to_le_bytes(),
    );
    assert_corrupt(bus.open_topic("alpha").map(|_| ()), entry, "epoch");
    assert_eq!(ready_named(&t.ns, "alpha"), 0);
}

#[test]
fn a_claim_timeout_of_one_and_a_half_ms_round_trips() {
    let t = TempNs::new("timeout");
    let bus = Bus::at(&t.base, NS).expect("bus");
    let cfg = TopicConfig {
        reclaim_after: Duration::from_micros(1500),
        ..config(16)
    };
    assert!(bus.topic("alpha", &cfg).is_ok(), "create");
    let again = Bus::at(&t.base, NS).expect("bus");
    let topic = again
        .topic("alpha", &cfg)
        .expect("the same config opens it");
    assert_eq!(topic.config().reclaim_after, cfg.reclaim_after);
    let opened = again.open_topic("alpha").expect("open");
    assert_eq!(opened.config().reclaim_after, cfg.reclaim_after);

    let other = TopicConfig {
        reclaim_after: Duration::from_millis(1),
        ..cfg
    };
    match again.topic("alpha", &other) {
        Err(e @ BusError::Directory(DirectoryError::ConfigMismatch { .. })) => {
            let message = e.to_string();
            assert!(message.contains("claim timeout 1.5ms"), "{message}");
            assert!(message.contains("claim timeout 1ms"), "{message}");
        }
        Err(e) => panic!("expected a mismatch, got {e}"),
        Ok(_) => panic!("expected a mismatch, got the topic"),
    }
}

// ---------------------------------------------------------------------------
// Dead and stalled creators (child processes)
// ---------------------------------------------------------------------------

const ROLE_CLAIM_AND_WAIT: &str = "claim-and-wait";
/// File a paused child creates once it holds its claim.
const CLAIMED: &str = "claimed";
/// File that lets a paused child go on.
const GO: &str = "go";
/// File a child writes its outcome to.
const OUTCOME: &str = "outcome";

fn wait_for_file(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no {} from the child",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Child role: claims "alpha" (slots 32) and pauses right after the
/// claim until the parent creates the GO file, then writes its outcome.
fn claim_and_wait(base: &Path) {
    let ns = Namespace::at(base, NS).expect("namespace");
    let dir = Directory::open_or_create(&ns).expect("directory");
    let claimed = base.join(CLAIMED);
    let go = base.join(GO);
    let result = dir.create_or_open_paused(&ns, "alpha", &config(32).into(), &|_, _| {
        std::fs::write(&claimed, b"").expect("write claimed");
        while !go.exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let outcome = match result {
        Err(DirectoryError::CreateTakenOver { .. }) => "taken over".to_owned(),
        Err(e) => format!("error: {e}"),
        Ok((record, created)) => format!("ok: created {created} at {}", record.segment),
    };
    std::fs::write(base.join(OUTCOME), outcome).expect("write outcome");
}

/// Runs the child role if this process is one; returns true if it was.
fn run_child() -> bool {
    match child_role() {
        Some((role, base)) if role == ROLE_CLAIM_AND_WAIT => {
            claim_and_wait(&base);
            true
        }
        Some(_) => true,
        None => false,
    }
}

fn signal(child: &std::process::Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// A child that claimed alpha and was killed (SIGKILL) holding CREATING.
fn dead_creator(t: &TempNs, test: &str) -> usize {
    let mut child = spawn_child(test, ROLE_CLAIM_AND_WAIT, &t.base);
    wait_for_file(&t.base.join(CLAIMED), &mut child);
    child.kill().expect("SIGKILL the creator");
    child.wait().expect("wait");
    let creating: Vec<usize> = scan(&t.ns)
        .iter()
        .filter_map(|e| match e {
            DirectoryEntry::Creating {
                entry,
                creator_alive,
                ..
            } => {
                assert!(!creator_alive, "a killed creator's lock is free");
                Some(*entry)
            }
            _ => None,
        })
        .collect();
    assert_eq!(creating.len(), 1, "one entry left CREATING");
    creating[0]
}

#[test]
fn a_creator_killed_mid_create_is_taken_over_by_the_next_creator() {
    if run_child() {
        return;
    }
    let t = TempNs::new("dead-create");
    let entry = dead_creator(
        &t,
        "a_creator_killed_mid_create_is_taken_over_by_the_next_creator",
    );
    let bus = Bus::at(&t.base, NS).expect("bus");
    let started = Instant::now();
    let topic = bus
        .topic("alpha", &config(16))
        .expect("take over and create");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(topic.record().entry, entry);
    assert_eq!(topic.config(), &config(16));
    assert_eq!(ready_named(&t.ns, "alpha"), 1);
    assert_eq!(scan(&t.ns).len(), 1);
    // The dead creator's half-made log (epoch 1) is gone.
    assert!(!t.file(&format!("topic-{entry}-1.alpha"), "bcast").exists());
}

#[test]
fn an_opener_finding_a_dead_creator_answers_not_found_at_once() {
    if run_child() {
        return;
    }
    let t = TempNs::new("dead-open");
    dead_creator(
        &t,
        "an_opener_finding_a_dead_creator_answers_not_found_at_once",
    );
    let bus = Bus::at(&t.base, NS).expect("bus");
    let started = Instant::now();
    match bus.open_topic("alpha") {
        Err(BusError::Directory(DirectoryError::NotFound { .. })) => {}
        Err(e) => panic!("expected not found, got {e}"),
        Ok(_) => panic!("expected not found, got a topic"),
    }
    // The old code waited the whole 10 s create wait, then failed.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(scan(&t.ns).is_empty(), "the dead creator's entry is freed");
    bus.topic("alpha", &config(16)).expect("create afterwards");
    assert_eq!(ready_named(&t.ns, "alpha"), 1);
}

#[test]
fn a_stalled_creator_taken_over_cannot_touch_the_new_entry_when_it_resumes() {
    if run_child() {
        return;
    }
    let t = TempNs::new("stalled");
    let mut child = spawn_child(
        "a_stalled_creator_taken_over_cannot_touch_the_new_entry_when_it_resumes",
        ROLE_CLAIM_AND_WAIT,
        &t.base,
    );
    wait_for_file(&t.base.join(CLAIMED), &mut child);
    signal(&child, libc::SIGSTOP);

    let wait = Duration::from_millis(300);
    let dir = Directory::open_or_create(&t.ns)
        .expect("directory")
        .with_create_wait(wait);
    // An opener does not take a live creator over: it waits, then says so.
    let started = Instant::now();
    match dir.open(&t.ns, "alpha") {
        Err(DirectoryError::CreateTimedOut { waited, .. }) => assert_eq!(waited, wait),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= wait);
    // A creator takes the stalled entry over after the wait.
    let (record, created) = dir
        .create_or_open(&t.ns, "alpha", &config(16).into())
        .expect("take over");
    assert!(created);
    assert_eq!(record.segment, format!("topic-{}-2.alpha", record.entry));

    std::fs::write(t.base.join(GO), b"").expect("write go");
    signal(&child, libc::SIGCONT);
    let status = child.wait().expect("wait");
    assert!(status.success(), "child: {status}");
    let outcome = std::fs::read_to_string(t.base.join(OUTCOME)).expect("outcome");
    assert_eq!(outcome, "taken over");

    // The resumed creator wrote nothing: the entry is ours, slots 16.
    let entries = scan(&t.ns);
    assert_eq!(entries, vec![DirectoryEntry::Ready(record.clone())]);
    let bus = Bus::at(&t.base, NS).expect("bus");
    let topic = bus.open_topic("alpha").expect("open");
    assert_eq!(topic.config(), &config(16));
    bus.topic("alpha", &config(16)).expect("same config");
    assert!(!t
        .file(&format!("topic-{}-1.alpha", record.entry), "bcast")
        .exists());
    assert!(t.file(&record.segment, "bcast").exists());
}

// ---------------------------------------------------------------------------
// Random bytes in a live directory
// ---------------------------------------------------------------------------

/// Six names whose probe chains start at the same entry (so they fill a
/// run of neighbours and a hostile entry lies on several chains), each two
/// of which differ in at least two bytes (so a one-byte write cannot turn
/// one into another).
fn colliding_names() -> Vec<String> {
    let name = |k: u32| format!("t{k:05}x{k:05}");
    let home = home_entry(&name(0), 256);
    (0..1_000_000)
        .filter(|&k| home_entry(&name(k), 256) == home)
        .take(6)
        .map(name)
        .collect()
}

#[test]
fn random_bytes_between_calls_never_panic_hang_or_duplicate_a_ring() {
    // Rounds on fresh namespaces, so that topics keep being created and
    // opened rather than every call stopping at the same corrupt entry.
    let names = colliding_names();
    assert_eq!(names.len(), 6);
    let mut totals = [0u64; 3];
    let mut writes = 0u64;
    let mut longest = Duration::ZERO;
    for round in 0..12u64 {
        let (counts, w, l) = fuzz_round(round, &names);
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        writes += w;
        longest = longest.max(l);
    }
    let [ok, corrupt, other] = totals;
    eprintln!(
        "{} directory calls ({ok} ok, {corrupt} corrupt entry, {other} other typed errors), {writes} hostile writes, longest call {longest:?}",
        ok + corrupt + other
    );
    assert!(ok > 100, "only {ok} calls succeeded");
    assert!(corrupt > 0, "the hostile writes were never noticed");
    // The create wait is 10 s; no call may take much longer than twice it.
    assert!(longest < Duration::from_secs(25), "a call took {longest:?}");
}

/// One round: three threads create and open three topics, and create,
/// open and remove three channels, while this one writes random bytes into
/// the directory. Returns the calls that
/// succeeded, met a corrupt entry, or failed otherwise; the writes made;
/// the longest call.
fn fuzz_round(round: u64, names: &[String]) -> ([u64; 3], u64, Duration) {
    let t = TempNs::new("fuzz");
    let _bus = Bus::at(&t.base, NS).expect("bus");
    let file = dir_file(&t.ns);
    let stop = Arc::new(AtomicBool::new(false));
    let longest_ns = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3u64)
        .map(|w| {
            let base = t.base.clone();
            let stop = stop.clone();
            let longest_ns = longest_ns.clone();
            let names = names.to_vec();
            std::thread::spawn(move || {
                let bus = Bus::at(&base, NS).expect("bus");
                let mut counts = [0u64; 3];
                let mut x = splitmix((round << 8) + w + 1);
                while !stop.load(Ordering::Relaxed) {
                    x = splitmix(x);
                    let k = (x % names.len() as u64) as usize;
                    let name = &names[k];
                    let started = Instant::now();
                    // Any answer is fine, as long as it comes and is typed.
                    // The first three names are topics, the others channels
                    // (created, opened and removed).
                    let result = match (k < 3, (x >> 8) % 5) {
                        (true, 0..=2) => bus.topic(name, &config(16)).map(|_| ()),
                        (true, _) => bus.open_topic(name).map(|_| ()),
                        (false, 0 | 1) => {
                            bus.spsc(name, &SpscConfig::with_capacity(4096)).map(|_| ())
                        }
                        (false, 2 | 3) => {
                            bus.open_spsc(name).and_then(|c| c.producer()).map(|_| ())
                        }
                        (false, _) => bus.remove_spsc(name),
                    };
                    let took = started.elapsed().as_nanos() as u64;
                    longest_ns.fetch_max(took, Ordering::Relaxed);
                    counts[match result {
                        Ok(()) => 0,
                        Err(BusError::Directory(DirectoryError::Corrupt { .. })) => 1,
                        Err(_) => 2,
                    }] += 1;
                }
                counts
            })
        })
        .collect();

    let mut x = splitmix(0xF022 ^ round);
    let started = Instant::now();
    let mut writes = 0u64;
    while started.elapsed() < Duration::from_millis(250) {
        x = splitmix(x);
        // Mostly entries in use (or their free neighbours), sometimes any.
        let in_use: Vec<usize> = scan(&t.ns).iter().map(DirectoryEntry::entry).collect();
        let entry = match in_use.len() {
            n if n > 0 && x & 1 == 0 => (in_use[((x >> 8) % n as u64) as usize] + 1) % 256,
            n if n > 0 && x & 2 == 0 => in_use[((x >> 8) % n as u64) as usize],
            _ => ((x >> 8) % 256) as usize,
        };
        let word = ((x >> 24) % 27) as usize;
        let off = entry_offset(entry, word * 8);
        match (x >> 60) & 3 {
            // A state word: FREE, CREATING, READY, REMOVED, RECREATING or
            // garbage, epoch kept.
            0 => write_at(
                &file,
                entry_offset(entry, 0),
                &(((x >> 32) % 6) as u32).to_le_bytes(),
            ),
            1 => write_at(&file, off + ((x >> 40) % 8), &[(x >> 48) as u8]),
            _ => write_at(&file, off, &splitmix(x).to_le_bytes()),
        }
        writes += 1;
        assert_no_duplicate(&t.ns);
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let mut counts = [0u64; 3];
    for w in workers {
        for (c, n) in counts.iter_mut().zip(w.join().expect("a worker panicked")) {
            *c += n;
        }
    }
    assert_no_duplicate(&t.ns);
    (
        counts,
        writes,
        Duration::from_nanos(longest_ns.load(Ordering::Relaxed)),
    )
}

fn assert_no_duplicate(ns: &Namespace) {
    let entries = scan(ns);
    // Ready, removed and re-created rings: a name is in one entry.
    let mut names: Vec<&str> = entries.iter().filter_map(DirectoryEntry::name).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "{entries:?}");
    for e in &entries {
        if let DirectoryEntry::Corrupt { reason, .. } = e {
            assert!(
                !reason.contains("again"),
                "two entries of one name: {entries:?}"
            );
        }
    }
}
