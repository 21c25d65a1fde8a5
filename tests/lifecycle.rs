//! Lifecycle beyond the handles: dropping a durable subscriber another
//! process left, naming who holds a publisher back, removing a namespace
//! only when nobody holds it, and finding and removing what killed
//! processes left behind, across processes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    child_role, die_with_parent, no_child_starting, spawn_child, spawn_until, wait_stopped, TempNs,
};
use shmbus::clean::{self, CleanOptions, Stale};
use shmbus::directory::DirectoryError;
use shmbus::{
    Bus, BusError, ClaimError, DropDurableError, QueueConfig, RegisterError, StartAt, TopicConfig,
    WaitStrategy,
};

const NS: &str = "t";
const GO: &str = "go";
/// Records the stalled reader of `hold-read` reads on each subscriber.
const STALL_RECORDS: u8 = 32;

fn config() -> TopicConfig {
    TopicConfig {
        slots: 16,
        ..TopicConfig::default()
    }
}

fn bus(base: &Path) -> Bus {
    Bus::at(base, NS).expect("bus")
}

/// Child roles; returns true if this process is a child (the test body is
/// then skipped).
fn run_child() -> bool {
    let Some((role, base)) = child_role() else {
        return false;
    };
    die_with_parent();
    let bus = bus(&base);
    let md = bus.topic("md", &config()).expect("topic");
    match role.as_str() {
        // Registers durable `s1`, then leaves: it keeps its place.
        "leave-s1" => drop(md.durable_subscriber("s1", StartAt::Tail).expect("s1")),
        // Holds durable `s1` (and a publisher) until the parent says go.
        "hold" => {
            let _s1 = md.durable_subscriber("s1", StartAt::Tail).expect("s1");
            let _publisher = md.publisher().expect("publisher");
            println!("ready");
            while !base.join(GO).exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Holds durable `s1` (read with `Blocking`) and `s2` (read with
        // `BusySpin`), each on a thread, says ready, and reads 32 records
        // on each, in order, whenever they come.
        "hold-read" => {
            let readers: Vec<_> = [
                ("s1", WaitStrategy::BLOCKING),
                ("s2", WaitStrategy::BusySpin),
            ]
            .into_iter()
            .map(|(name, wait)| {
                let mut sub = md.durable_subscriber(name, StartAt::Tail).expect(name);
                std::thread::spawn(move || {
                    for i in 0..STALL_RECORDS {
                        let record = sub
                            .read_timeout(wait, Duration::from_secs(30))
                            .unwrap_or_else(|e| panic!("{name}: record {i}: {e}"));
                        assert_eq!(&record[..], &[i], "{name}: record {i}");
                    }
                })
            })
            .collect();
            println!("ready");
            for reader in readers {
                reader.join().expect("reader");
            }
        }
        // Makes a topic and a queue, attaches to both, and waits to be
        // killed.
        "crash" => {
            let crashed = bus.topic("crashed", &config()).expect("topic");
            let queue = bus.queue("crashq", &QueueConfig::default()).expect("queue");
            let _p = crashed.publisher().expect("publisher");
            let _c = queue.consumer().expect("consumer");
            println!("ready");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        other => panic!("unknown role {other}"),
    }
    true
}

fn go(t: &TempNs, child: std::process::Child) {
    std::fs::write(t.base.join(GO), b"").expect("write go");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "child: {:?}", out.status);
}

/// The file name of a ring's segment.
fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("a UTF-8 file name")
        .to_owned()
}

/// A child registers durable `s1` and exits: `s1` keeps its place and a
/// Backpressure publisher fills the log and stays full, names `s1` as what
/// holds it back (the child's pid, detached), and goes on once `s1` is
/// dropped, a blocked publisher included.
#[test]
fn a_durable_subscriber_left_by_another_process_is_dropped_and_the_feed_goes_on() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-drop");
    let bus = bus(&t.base);
    let md = bus.topic("md", &config()).expect("topic");
    let mut child = spawn_child(
        "a_durable_subscriber_left_by_another_process_is_dropped_and_the_feed_goes_on",
        "leave-s1",
        &t.base,
    );
    let child_pid = child.id();
    assert!(child.wait().expect("wait").success());

    let mut p = md.publisher().expect("publisher");
    for i in 0..16u8 {
        p.try_send(1, &[i]).expect("room");
    }
    assert_eq!(p.try_send(1, b"x"), Err(ClaimError::Full));
    let who = p.holding_back().expect("held back");
    assert_eq!(who.name.as_deref(), Some("s1"));
    assert_eq!((who.pid, who.alive, who.behind()), (child_pid, false, 16));
    assert!(who.is_detached_durable());

    // A publisher blocked on it sees the gate move once it is dropped.
    let md2 = bus.open_topic("md").expect("open");
    let blocked = std::thread::spawn(move || {
        let mut p = md2.publisher().expect("publisher");
        let started = Instant::now();
        let sent = p.send_timeout(
            2,
            b"blocked",
            WaitStrategy::BACKOFF,
            Duration::from_secs(20),
        );
        (sent, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(p.try_send(1, b"x"), Err(ClaimError::Full), "still full");
    no_child_starting();
    bus.drop_durable("md", "s1").expect("drop s1");
    let (sent, waited) = blocked.join().expect("blocked publisher");
    assert_eq!(sent, Ok(16), "the blocked publisher goes on");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(p.holding_back(), None);
    p.try_send(1, b"on").expect("and so does this one");
}

/// A durable subscriber a live process holds cannot be dropped (the error
/// names its pid); once that process is gone it can.
#[test]
fn dropping_a_durable_subscriber_a_live_process_holds_is_refused() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-drop-live");
    let bus = bus(&t.base);
    let md = bus.topic("md", &config()).expect("topic");
    let (child, _out) = spawn_until(
        "dropping_a_durable_subscriber_a_live_process_holds_is_refused",
        "hold",
        &t.base,
        "ready",
    );
    match md.drop_durable("s1") {
        Err(BusError::DropDurable(DropDurableError::InUse { name, pid })) => {
            assert_eq!((name.as_str(), pid), ("s1", child.id()));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    go(&t, child);
    no_child_starting();
    md.drop_durable("s1")
        .expect("drop once its process is gone");
}

/// A process holding two durable subscribers (one waiting with `Blocking`,
/// one with `BusySpin`) is stopped (SIGSTOP) past the topic's claim
/// timeout while the log fills: the publisher stays held back by the
/// stalled subscribers, named alive with their pid; they cannot be dropped;
/// nothing is reclaimed from them. Continued (SIGCONT), the process reads
/// every record in order and the feed goes on.
#[test]
fn a_stalled_process_holding_durable_subscribers_keeps_them_and_resumes_reading() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-stall");
    let bus = bus(&t.base);
    let md = bus.topic("md", &config()).expect("topic");
    let (mut child, _out) = spawn_until(
        "a_stalled_process_holding_durable_subscribers_keeps_them_and_resumes_reading",
        "hold-read",
        &t.base,
        "ready",
    );
    let pid = child.id();
    let signal = |sig: i32| {
        // SAFETY: kill takes a pid and a signal number.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    };
    signal(libc::SIGSTOP);
    wait_stopped(pid);

    let mut p = md.publisher().expect("publisher");
    for i in 0..16u8 {
        p.try_send(1, &[i]).expect("room");
    }
    std::thread::sleep(config().reclaim_after + Duration::from_millis(500));
    assert_eq!(p.try_send(1, &[16]), Err(ClaimError::Full));
    let who = p.holding_back().expect("held back");
    assert!(matches!(who.name.as_deref(), Some("s1" | "s2")), "{who:?}");
    assert_eq!((who.pid, who.alive, who.behind()), (pid, true, 16));
    assert!(!who.is_detached_durable());
    for name in ["s1", "s2"] {
        match md.drop_durable(name) {
            Err(BusError::DropDurable(DropDurableError::InUse { pid: holder, .. })) => {
                assert_eq!(holder, pid, "{name}");
            }
            other => panic!("{name}: expected InUse, got {other:?}"),
        }
    }

    signal(libc::SIGCONT);
    for i in 16..STALL_RECORDS {
        p.send_timeout(1, &[i], WaitStrategy::BACKOFF, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "child: {status:?}");
    for name in ["s1", "s2"] {
        no_child_starting();
        md.drop_durable(name)
            .expect("drop once its process is gone");
    }
    assert_eq!(p.holding_back(), None);
}

/// A resumption and a drop of one durable name racing over a mapped log,
/// each paused at its racy point (the slot's lock taken, nothing changed
/// yet): the other side is refused, exactly one wins.
#[test]
fn a_resume_racing_a_drop_ends_with_exactly_one_winner() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-race");
    let bus = bus(&t.base);
    let md = bus.topic("md", &config()).expect("topic");
    drop(md.durable_subscriber("s1", StartAt::Tail).expect("s1"));

    let dropped = std::cell::RefCell::new(None);
    let s1 = md
        .durable_subscriber_paused("s1", StartAt::Tail, &|| {
            *dropped.borrow_mut() = Some(md.drop_durable("s1"));
        })
        .expect("the resumption wins");
    assert!(
        matches!(
            dropped.take(),
            Some(Err(BusError::DropDurable(DropDurableError::InUse { .. })))
        ),
        "the drop loses"
    );
    drop(s1);

    let resumed = std::cell::RefCell::new(None);
    md.drop_durable_paused("s1", &|| {
        *resumed.borrow_mut() = Some(md.durable_subscriber("s1", StartAt::Tail).map(drop));
    })
    .expect("the drop wins");
    assert!(
        matches!(
            resumed.take(),
            Some(Err(BusError::Register(RegisterError::DurableInUse { .. })))
        ),
        "the resumption loses"
    );
    match md.drop_durable("s1") {
        Err(BusError::DropDurable(DropDurableError::NotFound { .. })) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Removing a namespace while another process holds a bus on it and a
/// publisher and a durable subscriber on its topic is refused, naming each,
/// and removes nothing; once that process is gone it removes everything.
#[test]
fn removing_a_namespace_is_refused_while_a_participant_lives_and_succeeds_after() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-remove-ns");
    let bus = bus(&t.base);
    let md = bus.topic("md", &config()).expect("topic");
    bus.queue("orders", &QueueConfig::default()).expect("queue");
    let (child, _out) = spawn_until(
        "removing_a_namespace_is_refused_while_a_participant_lives_and_succeeds_after",
        "hold",
        &t.base,
        "ready",
    );
    let before = t.files();
    match bus.remove_namespace() {
        Err(BusError::Directory(DirectoryError::NamespaceInUse { namespace, held })) => {
            assert_eq!(namespace, NS);
            let text: Vec<String> = held.iter().map(ToString::to_string).collect();
            assert_eq!(held.len(), 2, "{text:?}");
            assert_eq!(held[0].file, "directory.dir", "{text:?}");
            assert_eq!(held[0].holders, ["a bus using the namespace"]);
            assert_eq!(held[1].file, file_name(&md.path()));
            assert_eq!(held[1].holders, ["subscriber slot 0", "publisher slot 0"]);
        }
        other => panic!("expected NamespaceInUse, got {other:?}"),
    }
    assert_eq!(t.files(), before, "nothing removed");
    md.subscriber(StartAt::Tail).expect("still usable");
    go(&t, child);
    no_child_starting();
    bus.remove_namespace().expect("remove");
    assert!(!t.ns.path().exists(), "{:?}", t.files());
    drop((md, bus));
    // Made afresh by the next bus.
    let bus = Bus::at(&t.base, NS).expect("bus again");
    assert!(bus.topic("md", &config()).expect("topic").was_created());
}

/// A child attached to a topic and a queue is killed: the stale scan
/// finds both rings (and a file no entry names), not the topic this
/// process is attached to nor the directory it uses; the scan removes
/// nothing; the removal takes what the scan found, and the live topic
/// works on.
#[test]
fn the_stale_scan_finds_what_a_killed_process_left_and_not_a_live_topic() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-stale");
    let bus = bus(&t.base);
    let live = bus.topic("live", &config()).expect("topic");
    let mut sub = live.subscriber(StartAt::Tail).expect("subscriber");
    let (mut child, _out) = spawn_until(
        "the_stale_scan_finds_what_a_killed_process_left_and_not_a_live_topic",
        "crash",
        &t.base,
        "ready",
    );
    // SAFETY: kill takes a pid and a signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    child.wait().expect("reap");
    // A ring file no directory entry names.
    std::fs::copy(live.path(), t.ns.path().join("topic-200-1.ghost.bcast")).expect("copy");

    let before = t.files();
    let found = clean::scan(&t.ns).expect("scan");
    assert_eq!(t.files(), before, "a scan removes nothing");
    let mut stale: Vec<(Stale, Option<String>)> = found
        .objects
        .iter()
        .map(|o| (o.stale.clone(), o.ring.as_ref().map(|r| r.name.clone())))
        .collect();
    stale.sort_by_key(|(_, name)| name.clone());
    assert_eq!(
        stale,
        vec![
            (Stale::Orphan, None),
            (Stale::Idle, Some("crashed".to_owned())),
            (Stale::Idle, Some("crashq".to_owned())),
            // Every child role opens it; this one attached to nothing on it.
            (Stale::Idle, Some("md".to_owned())),
        ],
        "{:?}",
        found.objects
    );
    let live_file = file_name(&live.path());
    assert_eq!(found.live, [live_file.clone(), "directory.dir".to_owned()]);

    no_child_starting();
    let done = clean::clean(&t.ns, &found, &CleanOptions::default()).expect("clean");
    assert_eq!(done.removed.len(), 4, "{done:?}");
    assert!(done.kept.is_empty(), "{done:?}");
    assert_eq!(t.files(), ["directory.dir".to_owned(), live_file]);
    assert!(bus.open_topic("crashed").is_err());
    let mut p = live.publisher().expect("publisher");
    p.try_send(1, b"still here").expect("send");
    assert_eq!(&sub.try_read().expect("read")[..], b"still here");
}

/// The removal looks at each object again: a topic a process attached to
/// since the scan stays, entry and file; a topic keeping a detached
/// durable subscriber's place stays unless asked; once nothing is held,
/// everything goes, the directory and the namespace with it.
#[test]
fn removal_looks_again_and_leaves_what_a_process_attached_since_the_scan() {
    if run_child() {
        return;
    }
    let t = TempNs::new("life-recheck");
    {
        let bus = bus(&t.base);
        bus.topic("idle", &config()).expect("topic");
        let places = bus.topic("places", &config()).expect("topic");
        drop(places.durable_subscriber("s1", StartAt::Tail).expect("s1"));
    }
    let found = clean::scan(&t.ns).expect("scan");
    let mut kinds: Vec<(Stale, Option<String>)> = found
        .objects
        .iter()
        .map(|o| (o.stale.clone(), o.ring.as_ref().map(|r| r.name.clone())))
        .collect();
    kinds.sort_by_key(|(_, name)| name.clone());
    assert_eq!(
        kinds,
        [
            (Stale::Directory, None),
            (Stale::Idle, Some("idle".to_owned())),
            (
                Stale::DurablePlaces(vec!["s1".to_owned()]),
                Some("places".to_owned())
            ),
        ],
        "{:?}",
        found.objects
    );
    // A process attaches after the scan.
    let bus = bus(&t.base);
    let idle = bus.open_topic("idle").expect("open");
    let sub = idle.subscriber(StartAt::Tail).expect("attach");
    no_child_starting();
    let done = clean::clean(&t.ns, &found, &CleanOptions::default()).expect("clean");
    assert!(done.removed.is_empty(), "{done:?}");
    assert_eq!(done.kept.len(), 3, "{done:?}");
    let why = |name: &str| {
        done.kept
            .iter()
            .find(|(o, _)| o.ring.as_ref().is_some_and(|r| r.name == name))
            .map(|(_, why)| why.clone())
            .unwrap_or_default()
    };
    assert!(why("idle").contains("attached"), "{done:?}");
    assert!(why("places").contains("durable"), "{done:?}");
    assert!(idle.path().exists());
    drop(sub);
    drop(idle);
    drop(bus);

    let found = clean::scan(&t.ns).expect("scan again");
    no_child_starting();
    let done = clean::clean(&t.ns, &found, &CleanOptions { durable: true }).expect("clean");
    assert_eq!(done.removed.len(), 3, "{done:?}");
    assert!(!t.ns.path().exists(), "{:?}", t.files());
    assert_eq!(
        clean::namespaces(&t.base).expect("list"),
        Vec::<String>::new()
    );
}
