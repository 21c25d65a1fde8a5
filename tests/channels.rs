//! SPSC channels behind the directory: many processes creating one channel
//! at once, a name that is one ring of one kind and one configuration,
//! ring files never named after a ring, and removal that makes the next
//! create a new ring.
//!
//! The racers are child processes (this test binary re-run with a role).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, TempNs};
use shmbus::directory::DirectoryError;
use shmbus::ring::spsc::RecvError;
use shmbus::wait::WaitStrategy;
use shmbus::{
    Bus, BusError, Policy, QueueConfig, RingConfig, RingKind, SegmentError, SpscConfig, TopicConfig,
};

const NS: &str = "t";
const CHANNEL: &str = "orders";
const RACERS: usize = 8;
const RECORDS: u64 = 1000;

fn config() -> SpscConfig {
    SpscConfig::with_capacity(1 << 16)
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: 16,
        max_payload: 64,
        policy: Policy::Backpressure,
        max_subscribers: 2,
        max_publishers: 1,
        reclaim_after: Duration::from_secs(1),
    }
}

/// File a racer waits for before it calls `Bus::spsc`, so that all of
/// them call it at about the same time.
fn go_file(base: &Path) -> PathBuf {
    base.join("go")
}

/// File racer `k` writes its outcome to (written whole, then renamed).
fn outcome_file(base: &Path, k: usize) -> PathBuf {
    base.join(format!("racer-{k}"))
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Child role `racer:<k>`: waits for the go file, creates or opens the
/// channel, reports whether it created it and the channel's file; racer 0
/// then produces [`RECORDS`] records and racer 1 consumes them, checking
/// their order.
fn racer(base: &Path, k: usize) {
    let bus = Bus::at(base, NS).expect("bus");
    wait_for(&go_file(base), "go file");
    let channel = bus.spsc(CHANNEL, &config()).expect("create or open");
    let mut outcome = format!(
        "created={}\npath={}\n",
        channel.was_created(),
        channel.path().display()
    );
    match k {
        0 => {
            let mut tx = channel.producer().expect("producer");
            for seq in 0..RECORDS {
                tx.send_timeout(
                    7,
                    &seq.to_le_bytes(),
                    WaitStrategy::BACKOFF,
                    Duration::from_secs(30),
                )
                .expect("the consumer keeps up");
            }
            outcome.push_str(&format!("sent={RECORDS}\n"));
        }
        1 => {
            let mut rx = channel.consumer().expect("consumer");
            for seq in 0..RECORDS {
                let rec = rx
                    .read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(30))
                    .unwrap_or_else(|e| panic!("waiting for record {seq}: {e}"));
                assert_eq!(rec.record_type(), 7);
                assert_eq!(&rec[..], &seq.to_le_bytes(), "records in order");
            }
            outcome.push_str(&format!("received={RECORDS}\n"));
        }
        _ => {}
    }
    let tmp = base.join(format!("racer-{k}.tmp"));
    std::fs::write(&tmp, outcome).expect("write outcome");
    std::fs::rename(&tmp, outcome_file(base, k)).expect("publish outcome");
}

/// The value of `key=` in an outcome.
fn field<'a>(outcome: &'a str, key: &str) -> Option<&'a str> {
    outcome
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn racing_processes_make_one_channel_and_exchange_records_through_it() {
    if let Some((role, base)) = child_role() {
        let k = role
            .strip_prefix("racer:")
            .and_then(|k| k.parse().ok())
            .expect("role racer:K");
        racer(&base, k);
        return;
    }
    let t = TempNs::new("channel-race");
    // The directory exists before the racers start, so that they race on
    // the channel's entry rather than on the directory's creation.
    let bus = t.bus();
    let mut children: Vec<_> = (0..RACERS)
        .map(|k| {
            spawn_child(
                "racing_processes_make_one_channel_and_exchange_records_through_it",
                &format!("racer:{k}"),
                &t.base,
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(go_file(&t.base), b"").expect("go");
    for (k, child) in children.iter_mut().enumerate() {
        let status = child.wait().expect("wait racer");
        assert!(status.success(), "racer {k}: {status}");
    }
    let outcomes: Vec<String> = (0..RACERS)
        .map(|k| std::fs::read_to_string(outcome_file(&t.base, k)).expect("outcome"))
        .collect();
    let created = outcomes
        .iter()
        .filter(|o| field(o, "created") == Some("true"))
        .count();
    assert_eq!(created, 1, "exactly one racer creates: {outcomes:?}");
    let channel = bus.open_spsc(CHANNEL).expect("open");
    let path = channel.path().display().to_string();
    for (k, o) in outcomes.iter().enumerate() {
        assert_eq!(field(o, "path"), Some(path.as_str()), "racer {k}: {o}");
    }
    assert_eq!(field(&outcomes[0], "sent"), Some("1000"));
    assert_eq!(field(&outcomes[1], "received"), Some("1000"));
    // One entry, one ring file.
    assert_eq!(bus.rings(), [channel.record().clone()]);
    assert_eq!(*channel.config(), config());
    let files = files_of(&t);
    assert_eq!(files.len(), 2, "{files:?}");
}

/// The file names in the namespace directory, sorted.
fn files_of(t: &TempNs) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(t.ns.path())
        .expect("read namespace directory")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .collect();
    files.sort();
    files
}

/// `<prefix>-<entry>-<epoch>.<ring name>.<suffix>` split into (entry,
/// epoch, ring name).
fn ring_file<'a>(file: &'a str, prefix: &str, suffix: &str) -> Option<(usize, u32, &'a str)> {
    let rest = file.strip_prefix(prefix)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(suffix)?.strip_suffix('.')?;
    let (entry, rest) = rest.split_once('-')?;
    let (epoch, name) = rest.split_once('.')?;
    Some((entry.parse().ok()?, epoch.parse().ok()?, name))
}

#[test]
fn every_file_is_named_by_its_entry_then_its_ring() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("channel-files");
    let bus = t.bus();
    let names = ["orders", "fills", "spsc", "topic-1-1", "directory"];
    for name in names {
        bus.spsc(name, &SpscConfig::with_capacity(4096))
            .expect("channel");
    }
    bus.topic("market_data", &topic_config()).expect("topic");
    let queue_config = QueueConfig {
        slots: 16,
        max_payload: 64,
        max_producers: 2,
        max_consumers: 2,
        reclaim_after: Duration::from_secs(1),
    };
    // Named like the files of the other kinds, and like its own kind's.
    let queues = ["execution", "queue-1-1"];
    for name in queues {
        bus.queue(name, &queue_config).expect("queue");
    }
    let files = files_of(&t);
    assert_eq!(files.len(), names.len() + queues.len() + 2, "{files:?}");
    let mut channels = 0;
    let mut topics = 0;
    let mut queue_files = 0;
    for file in &files {
        if file == "directory.dir" {
            continue;
        }
        // Entry and epoch first, so that a ring named like another's file
        // ("topic-1-1", "queue-1-1") never collides with it.
        if let Some((_, epoch, name)) = ring_file(file, "spsc", "spsc") {
            assert_eq!(epoch, 1, "{file}");
            assert!(names.contains(&name), "{file}");
            channels += 1;
        } else if let Some((_, epoch, name)) = ring_file(file, "topic", "bcast") {
            assert_eq!((epoch, name), (1, "market_data"), "{file}");
            topics += 1;
        } else if let Some((_, epoch, name)) = ring_file(file, "queue", "queue") {
            assert_eq!(epoch, 1, "{file}");
            assert!(queues.contains(&name), "{file}");
            queue_files += 1;
        } else {
            panic!("{file} is not named after a directory entry");
        }
    }
    assert_eq!(
        (channels, topics, queue_files),
        (names.len(), 1, queues.len()),
        "{files:?}"
    );
    // Each ring's file is its own.
    let paths = names
        .iter()
        .map(|name| bus.open_spsc(name).expect("open").path())
        .chain(
            queues
                .iter()
                .map(|name| bus.open_queue(name).expect("open").path()),
        );
    let mut seen = Vec::new();
    for path in paths {
        let file = path.file_name().and_then(|f| f.to_str()).expect("file");
        assert!(files.iter().any(|f| f == file), "{file}");
        assert!(!seen.contains(&path), "{file} is two rings' file");
        seen.push(path.clone());
    }
}

#[test]
fn a_name_is_one_kind_and_one_configuration_and_errors_name_both() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("channel-mismatch");
    let bus = t.bus();
    let small = SpscConfig::with_capacity(4096);
    bus.spsc(CHANNEL, &small).expect("channel");
    bus.topic("md", &topic_config()).expect("topic");

    // Another configuration of the same kind.
    let big = SpscConfig::with_capacity(8192).with_wakeups();
    let e = bus.spsc(CHANNEL, &big).err().expect("config mismatch");
    let message = e.to_string();
    match e {
        BusError::Directory(DirectoryError::ConfigMismatch {
            name,
            existing,
            requested,
        }) => assert_eq!(
            (name.as_str(), existing, requested),
            (CHANNEL, RingConfig::Spsc(small), RingConfig::Spsc(big))
        ),
        other => panic!("expected a config mismatch, got {other}"),
    }
    assert_eq!(
        message,
        "SPSC channel \"orders\" exists with {capacity 4096, max payload the largest (2032), wake-ups off} \
         but was opened with {capacity 8192, max payload the largest (4080), wake-ups on} \
         (open it with the same configuration, or use another name)"
    );
    // `None` is not the number it stands for: the configuration as written.
    let explicit = SpscConfig {
        max_payload: Some(2032),
        ..small
    };
    assert!(matches!(
        bus.spsc(CHANNEL, &explicit),
        Err(BusError::Directory(DirectoryError::ConfigMismatch { .. }))
    ));

    // A channel opened as a topic, with and without a configuration.
    let e = bus.topic(CHANNEL, &topic_config()).err().expect("kind");
    let message = e.to_string();
    match e {
        BusError::Directory(DirectoryError::KindMismatch {
            name,
            existing,
            requested,
            requested_config,
        }) => assert_eq!(
            (name.as_str(), existing, requested, requested_config),
            (
                CHANNEL,
                RingConfig::Spsc(small),
                RingKind::Broadcast,
                Some(Box::new(RingConfig::Broadcast(topic_config())))
            )
        ),
        other => panic!("expected a kind mismatch, got {other}"),
    }
    assert!(
        message.starts_with(
            "\"orders\" is an SPSC channel with {capacity 4096, max payload the largest (2032), wake-ups off} \
             but was opened as a topic with {slots 16, max payload 64, Backpressure, 2 subscribers, 1 publishers, claim timeout 1s}"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("(open it as an SPSC channel, or use another name)"),
        "{message}"
    );
    let e = bus.open_topic(CHANNEL).err().expect("kind");
    assert!(
        matches!(
            &e,
            BusError::Directory(DirectoryError::KindMismatch {
                requested: RingKind::Broadcast,
                requested_config: None,
                ..
            })
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("but was opened as a topic (open it"),
        "{e}"
    );

    // A topic opened as a channel.
    let e = bus.spsc("md", &small).err().expect("kind");
    assert!(
        e.to_string().starts_with(
            "\"md\" is a topic with {slots 16, max payload 64, Backpressure, 2 subscribers, 1 publishers, claim timeout 1s} \
             but was opened as an SPSC channel with {capacity 4096"
        ),
        "{e}"
    );
    for e in [
        bus.open_spsc("md").err().expect("kind"),
        bus.remove_spsc("md").expect_err("kind"),
    ] {
        assert!(
            matches!(
                e,
                BusError::Directory(DirectoryError::KindMismatch {
                    requested: RingKind::Spsc,
                    ..
                })
            ),
            "{e}"
        );
    }
    // Nothing was made or changed by the refusals.
    assert_eq!(bus.rings().len(), 2);
    assert_eq!(bus.channels().len(), 1);
    assert_eq!(bus.topics().len(), 1);
    assert_eq!(files_of(&t).len(), 3);
}

#[test]
fn a_removed_channel_is_made_afresh_and_old_handles_touch_nothing() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("channel-remove");
    let bus = t.bus();
    let old = bus
        .spsc(CHANNEL, &SpscConfig::with_capacity(4096).with_wakeups())
        .expect("channel");
    let mut tx = old.producer().expect("producer");
    let mut rx = old.consumer().expect("consumer");
    tx.try_send(1, b"before").expect("send");
    let old_path = old.path();

    old.remove().expect("remove");
    assert!(!old_path.exists(), "the ring file is removed");
    // The attached consumer reads what the removed ring holds, then learns.
    assert_eq!(&rx.try_read().expect("kept")[..], b"before");
    assert!(matches!(rx.try_read(), Err(RecvError::Unusable(_))));
    match bus.open_spsc(CHANNEL) {
        Err(e @ BusError::Directory(DirectoryError::NotFound { .. })) => {
            assert_eq!(
                e.to_string(),
                "no SPSC channel \"orders\" in this namespace"
            )
        }
        Err(e) => panic!("expected not found, got {e}"),
        Ok(_) => panic!("a removed channel opened"),
    }
    assert!(bus.channels().is_empty());
    assert!(matches!(
        old.producer(),
        Err(BusError::Segment(SegmentError::NotFound { .. }))
    ));
    assert!(matches!(
        old.remove(),
        Err(BusError::Directory(DirectoryError::NotFound { .. }))
    ));

    // Created again, with another configuration: a new ring in a new file,
    // in the same entry at a newer epoch.
    let new = bus
        .spsc(CHANNEL, &SpscConfig::with_capacity(8192))
        .expect("again");
    assert!(new.was_created());
    assert_ne!(new.path(), old_path);
    assert_eq!(new.record().entry, old.record().entry);
    assert_eq!(new.record().epoch, old.record().epoch + 1);
    // The old handle's removal concerns its own ring only.
    assert!(matches!(
        old.remove(),
        Err(BusError::Directory(DirectoryError::NotFound { .. }))
    ));
    let mut tx = new.producer().expect("producer");
    let mut rx = bus
        .open_spsc(CHANNEL)
        .expect("open")
        .consumer()
        .expect("consumer");
    tx.try_send(2, b"after").expect("send");
    assert_eq!(&rx.try_read().expect("record")[..], b"after");
    assert_eq!(bus.channels(), [new.record().clone()]);
    assert_eq!(files_of(&t).len(), 2);
    drop((tx, rx));
    bus.remove_spsc(CHANNEL).expect("remove by name");
    assert!(!new.path().exists());
    assert!(matches!(
        bus.remove_spsc(CHANNEL),
        Err(BusError::Directory(DirectoryError::NotFound { .. }))
    ));
}

/// A consumer started before its producer waits for the channel by name.
#[test]
fn a_channel_not_made_yet_can_be_waited_for() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("channel-wait");
    let bus = t.bus();
    let started = Instant::now();
    assert!(matches!(
        bus.open_spsc_timeout(CHANNEL, Duration::from_millis(50)),
        Err(BusError::Directory(DirectoryError::NotFound { .. }))
    ));
    assert!(started.elapsed() >= Duration::from_millis(50));
    let maker = {
        let base = t.base.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let bus = Bus::at(&base, NS).expect("bus");
            let ch = bus.spsc(CHANNEL, &config()).expect("create");
            ch.producer()
                .expect("producer")
                .try_send(3, b"late")
                .expect("send");
        })
    };
    let ch = bus
        .open_spsc_timeout(CHANNEL, Duration::from_secs(10))
        .expect("made meanwhile");
    maker.join().expect("maker");
    assert_eq!(*ch.config(), config());
    let mut rx = ch.consumer().expect("consumer");
    assert_eq!(&rx.try_read().expect("record")[..], b"late");
}

/// Pushing records to the shared cache on commit (`set_push_on_commit`) is a
/// hint: an SPSC channel whose records wrap around its ring many times, one
/// at a time and in staged batches, and a topic that laps its log, deliver
/// every record intact and in order with it on, as with it off.
#[test]
fn pushing_records_on_commit_delivers_every_record_intact() {
    let t = TempNs::new("push");
    let bus = Bus::at(&t.base, NS).expect("bus");

    let channel = bus
        .spsc("pushed", &SpscConfig::with_capacity(1024))
        .expect("channel");
    let mut tx = channel.producer().expect("producer");
    let mut rx = channel.consumer().expect("consumer");
    assert!(!tx.push_on_commit(), "off by default");
    tx.set_push_on_commit(true);
    assert!(tx.push_on_commit());
    let mut buf = [0u8; 200];
    let mut expect = 0u64;
    for n in 0..2000u64 {
        // Lengths from 1 to 199 bytes: frames of every size wrap the ring.
        let len = (n % 199 + 1) as usize;
        let payload: Vec<u8> = (0..len).map(|i| (n as usize + i) as u8).collect();
        let mut slot = tx.try_claim(len).expect("room");
        slot.copy_from_slice(&payload);
        slot.set_record_type((n % 7) as u16);
        if n % 3 == 2 {
            slot.commit();
        } else {
            slot.stage();
        }
        if n % 3 == 2 {
            while expect <= n {
                let l = (expect % 199 + 1) as usize;
                let (ty, got) = rx.try_recv(&mut buf).expect("a record");
                assert_eq!((ty, got), ((expect % 7) as u16, l));
                let want: Vec<u8> = (0..l).map(|i| (expect as usize + i) as u8).collect();
                assert_eq!(&buf[..l], &want[..], "record {expect}");
                expect += 1;
            }
        }
    }
    assert_eq!(rx.try_recv(&mut buf).err(), Some(RecvError::Empty));

    let topic = bus.topic("pushed_topic", &topic_config()).expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut subscriber = topic.subscriber(shmbus::StartAt::Tail).expect("subscriber");
    assert!(!publisher.push_on_commit(), "off by default");
    publisher.set_push_on_commit(true);
    for n in 0..100u8 {
        publisher.try_send(u16::from(n), &[n; 64]).expect("room");
        let mut got = [0u8; 64];
        assert_eq!(
            subscriber.try_recv(&mut got).expect("a record"),
            (u16::from(n), 64)
        );
        assert_eq!(got, [n; 64]);
    }
}
