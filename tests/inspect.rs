//! The inspector (`shmbus::inspect`), called directly: snapshots and record
//! walks of SPSC channels, topics and work queues, found through the
//! directory, and what the `ring-dump` binary (tested end to end in
//! `tools/ring-dump/tests/cli.rs`) cannot show deterministically: a walk
//! overtaken by the consumer, a queue's records held by a consumer killed
//! in a child process or by a crashed producer, and hostile bytes in every
//! position, stamp and header.

mod common;
#[path = "common/fixtures.rs"]
mod fixtures;

use std::mem::offset_of;
use std::time::Duration;

use shmbus::bus::{Bus, Policy, QueueConfig, SpscConfig};
use shmbus::inspect::{
    self, CounterValues, InFlightState, InspectError, QueueConsumerInfo, QueueInspector,
    QueueProducerInfo, QueueSnapshot, SpscInspector,
};
use shmbus::layout::{
    pack_record_header, participant, queue_stamp, QueueConsumerSlot, QueueControl,
    QueueProducerSlot, RecordSlotHeader, FLAG_COMMITTED, FLAG_PADDING, MAX_SEQUENCE,
    QUEUE_CONTROL_OFFSET, SPSC_DATA_OFFSET,
};
use shmbus::ring::{Corruption, CorruptionKind};
use shmbus::segment::{OpenOptions, SegmentError};
use shmbus::wait::WaitStrategy;
use shmbus::RingKind;

use common::{child_role, die_with_parent, spawn_until, TempNs};
use fixtures::{queue_config, ring_with_records, topic_config, trade, write_at};

#[test]
fn snapshot_and_records_from_the_library() {
    let t = TempNs::new("inspect");
    let bus = t.bus();
    let orders = ring_with_records(&bus, "orders");
    let (snap, records) =
        inspect::spsc_records(&t.ns, "orders", &OpenOptions::default(), 16, 64).expect("inspect");
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
    assert_eq!(snap.channel, *orders.record());
    assert_eq!(snap.path, orders.path());
    assert!(!snap.wakeups);
    assert_eq!(
        inspect::list_rings(&t.ns, &OpenOptions::default()).expect("list"),
        [orders.record().clone()]
    );
    // A channel is not a topic, and a topic is not a channel.
    let md = bus
        .topic("market_data", &topic_config(Policy::Backpressure, 4))
        .expect("topic");
    match inspect::inspect_topic(&t.ns, "orders", &OpenOptions::default()) {
        Err(e @ InspectError::NotFound { .. }) => {
            let message = e.to_string();
            assert!(
                message
                    .contains("no topic \"orders\" in namespace t (\"orders\" is an SPSC channel)"),
                "{message}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        inspect::inspect_spsc(&t.ns, "market_data", &OpenOptions::default()),
        Err(InspectError::NotFound {
            kind: RingKind::Spsc,
            found: Some(RingKind::Broadcast),
            ..
        })
    ));
    assert_eq!(
        inspect::list_topics(&t.ns, &OpenOptions::default()).expect("list"),
        [md.record().clone()]
    );
}

#[test]
fn a_walk_overtaken_by_the_consumer_stops_instead_of_showing_stale_bytes() {
    let t = TempNs::new("inspect");
    let ns = &t.ns;
    let bus = t.bus();
    let fast = bus
        .spsc("fast", &SpscConfig::with_capacity(64))
        .expect("create");
    let mut tx = fast.producer().expect("producer");
    let mut rx = fast.consumer().expect("consumer");
    tx.try_send(1, &[1; 8]).expect("send"); // frame 16 at 0
    tx.try_send(2, &[2; 8]).expect("send"); // frame 16 at 16

    let ring = SpscInspector::open(ns, "fast", &OpenOptions::default()).expect("open");
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
    let cases: [(u64, KindCheck); 5] = [
        // a record header without the committed mark: the consumer refuses
        // it, and so does the inspector (they share one frame check)
        (pack_record_header(4, 1, 0), |k| {
            matches!(k, CorruptionKind::UnknownFlags { flags: 0 })
        }),
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
        let t = TempNs::new("inspect");
        let ns = &t.ns;
        let r = t
            .bus()
            .spsc("r", &SpscConfig::with_capacity(1024))
            .expect("create");
        r.producer()
            .expect("producer")
            .try_send(1, b"abcd")
            .expect("send");
        write_at(&r.path(), SPSC_DATA_OFFSET as u64, &word.to_ne_bytes());
        let err = inspect::spsc_records(ns, "r", &OpenOptions::default(), 16, 64)
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
    let t = TempNs::new("inspect");
    let ns = &t.ns;
    let fuzz = t
        .bus()
        .spsc("fuzz", &SpscConfig::with_capacity(256))
        .expect("create");
    let path = fuzz.path();
    let ring = SpscInspector::open(ns, "fuzz", &OpenOptions::default()).expect("open");
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
            // Mostly what a producer writes (committed), sometimes any flags.
            let flags = if next() % 6 == 0 {
                (next() % 4) as u16
            } else {
                FLAG_COMMITTED
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

#[test]
fn topic_records_from_the_library_stop_at_the_oldest_held() {
    let t = TempNs::new("inspect");
    let bus = t.bus();
    let topic = bus
        .topic("ticks", &topic_config(Policy::Overwrite, 4))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    for seq in 0..10 {
        publisher.try_send(9, &trade(seq)).expect("publish");
    }
    let opts = OpenOptions::default();
    let (snap, records) = inspect::topic_records(&t.ns, "ticks", &opts, 16).expect("inspect");
    assert_eq!((snap.tail, snap.oldest()), (10, 6));
    assert_eq!(snap.config.policy, Policy::Overwrite);
    let got: Vec<(u64, u64)> = records
        .iter()
        .map(|r| {
            let v2 = r.decode_v2().expect("Protocol V2");
            (r.sequence, v2.sequence)
        })
        .collect();
    assert_eq!(got, [(9, 9), (8, 8), (7, 7), (6, 6)]);
    let (_, two) = inspect::topic_records(&t.ns, "ticks", &opts, 2).expect("inspect");
    assert_eq!(two.iter().map(|r| r.sequence).collect::<Vec<_>>(), [9, 8]);

    assert_eq!(
        inspect::list_topics(&t.ns, &OpenOptions::default())
            .expect("list")
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["ticks"]
    );
    assert!(matches!(
        inspect::inspect_topic(&t.ns, "nope", &opts),
        Err(InspectError::NotFound { .. })
    ));
    // A record that is not Protocol V2 falls back to raw bytes.
    publisher.try_send(9, b"not a message").expect("publish");
    let (_, last) = inspect::topic_records(&t.ns, "ticks", &opts, 1).expect("inspect");
    assert_eq!(last[0].payload, b"not a message");
    assert!(last[0].decode_v2().is_err());
}

// ---------------------------------------------------------------------------
// Work queues
// ---------------------------------------------------------------------------

const QUEUE: &str = "execution";

/// Sequences and states of a snapshot's records in flight.
fn in_flight(snap: &QueueSnapshot) -> Vec<(u64, InFlightState)> {
    snap.in_flight
        .iter()
        .map(|r| (r.sequence, r.state))
        .collect()
}

#[test]
fn queue_snapshot_shows_claims_takes_give_backs_and_skips() {
    let t = TempNs::new("inspect-queue");
    let bus = t.bus();
    let queue = bus
        .queue(QUEUE, &queue_config(8, Duration::from_secs(1)))
        .expect("queue");
    let mut orders = queue.producer().expect("producer"); // slot 0
    let mut late = queue.producer().expect("producer"); // slot 1
    let mut gateway = queue.consumer().expect("consumer"); // slot 0
    let mut other = queue.consumer().expect("consumer"); // slot 1
    for seq in 0..4 {
        assert_eq!(orders.try_send(9, &trade(seq)).expect("room"), seq);
    }
    let held = gateway.try_take().expect("record 0");
    assert_eq!(held.sequence(), 0);
    other
        .try_take()
        .expect("record 1")
        .give_back()
        .expect("give back");
    let claim = late.try_claim(8).expect("claim of 4");
    assert_eq!(claim.sequence(), 4);
    drop(orders.try_claim(8).expect("claim of 5")); // aborted: a skip

    let opts = OpenOptions::default();
    let inspector = QueueInspector::open(&t.ns, QUEUE, &opts).expect("open");
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!(snap.queue, *queue.record());
    assert_eq!(snap.path, queue.path());
    assert_eq!(snap.config, *queue.config());
    assert_eq!(snap.reclaim_after_ns, 1_000_000_000);
    assert_eq!(snap.slot_stride, 192, "16-byte header + 128, rounded to 64");
    assert!(!snap.poisoned);
    // Both takes moved the head; the give-back waits behind it.
    assert_eq!((snap.head, snap.tail, snap.oldest()), (2, 6, 0));
    assert_eq!(
        in_flight(&snap),
        [
            (
                0,
                InFlightState::Taken {
                    consumer: 0,
                    consumer_alive: true,
                    redelivered: false
                }
            ),
            (1, InFlightState::Committed { redelivered: true }),
            (2, InFlightState::Committed { redelivered: false }),
            (3, InFlightState::Committed { redelivered: false }),
            (
                4,
                InFlightState::Writing {
                    producer: 1,
                    producer_alive: true
                }
            ),
            (5, InFlightState::Skipped { suspect: false }),
        ]
    );
    assert_eq!(snap.in_flight[5].slot, 5);
    assert_eq!(snap.depth, 3);
    assert_eq!((snap.taken(), snap.taken_by_dead()), (1, 0));
    assert_eq!(snap.redelivered_waiting(), 1);
    assert_eq!(
        (
            snap.redelivered,
            snap.reclaimed_claims,
            snap.reaped_consumers,
            snap.reaped_producers
        ),
        (1, 0, 0, 0)
    );
    let me = std::process::id();
    // Every participant stored the time when it attached; the rest of its
    // counters is what this test did.
    let mut snap = snap;
    for c in snap.producers.iter_mut().map(|p| &mut p.counters) {
        assert_ne!(c.last_active_ns, 0, "stored on attach");
        c.last_active_ns = 0;
    }
    for c in snap.consumers.iter_mut().map(|c| &mut c.counters) {
        assert_ne!(c.last_active_ns, 0, "stored on attach");
        c.last_active_ns = 0;
    }
    let trade_len = trade(0).len() as u64;
    let counted = |records: u64, acked: u64| CounterValues {
        records,
        bytes: records * trade_len,
        acked,
        ..CounterValues::default()
    };
    assert_eq!(
        snap.producers,
        [
            QueueProducerInfo {
                slot: 0,
                state: participant::LIVE,
                pid: me,
                committed: 4,
                claimed: None,
                reclaimed: 0,
                counters: counted(4, 0),
                alive: true
            },
            QueueProducerInfo {
                slot: 1,
                state: participant::LIVE,
                pid: me,
                committed: 0,
                claimed: Some(4),
                reclaimed: 0,
                counters: counted(0, 0),
                alive: true
            }
        ]
    );
    assert_eq!(
        snap.consumers,
        [
            QueueConsumerInfo {
                slot: 0,
                state: participant::LIVE,
                pid: me,
                taken: 1,
                acked: 0,
                redelivered: 0,
                counters: counted(1, 0),
                sleeping: false,
                holding: 1,
                alive: true
            },
            QueueConsumerInfo {
                slot: 1,
                state: participant::LIVE,
                pid: me,
                taken: 1,
                acked: 1, // giving back counts as letting go
                redelivered: 0,
                counters: counted(1, 1),
                sleeping: false,
                holding: 0,
                alive: true
            }
        ]
    );
    assert_eq!((snap.producers_alive(), snap.consumers_alive()), (2, 2));

    // The waiting records, oldest first, decoded; the taken one is not waiting.
    let records: Vec<_> = inspector
        .records(&snap, 16, 1024)
        .collect::<Result<_, _>>()
        .expect("walk");
    let got: Vec<(u64, u16, bool, u64)> = records
        .iter()
        .map(|r| {
            assert!(!r.is_truncated());
            assert_eq!(r.len as usize, trade(r.sequence).len());
            let v2 = r.decode_v2().expect("Protocol V2");
            (r.sequence, r.record_type, r.redelivered, v2.sequence)
        })
        .collect();
    assert_eq!(got, [(1, 9, true, 1), (2, 9, false, 2), (3, 9, false, 3)]);
    // Limits: two records, four bytes of each.
    let mut walk = inspector.records(&snap, 2, 4);
    let short: Vec<_> = walk.by_ref().collect::<Result<_, _>>().expect("walk");
    assert_eq!(short.len(), 2);
    assert!(short
        .iter()
        .all(|r| r.is_truncated() && r.payload.len() == 4));
    assert_eq!(short[0].payload, trade(1)[..4]);
    assert!(
        short[0].decode_v2().is_err(),
        "a truncated copy is no message"
    );
    assert_eq!((walk.not_shown(), walk.gone()), (1, 0));

    // Taken and acknowledged after the snapshot: passed over, counted.
    let again = other.try_take().expect("the given-back record");
    assert!(again.redelivered());
    assert_eq!(again.sequence(), 1);
    again.ack().expect("ack");
    let mut walk = inspector.records(&snap, 16, 1024);
    let rest: Vec<u64> = walk.by_ref().map(|r| r.expect("record").sequence).collect();
    assert_eq!(rest, [2, 3]);
    assert_eq!(walk.gone(), 1);

    claim.commit().expect("commit");
    drop(held); // given back
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!(snap.depth, 4, "0 (given back), 2, 3 and 4");
    assert_eq!(snap.redelivered, 2);
    assert_eq!(
        inspect::inspect_queue(&t.ns, QUEUE, &opts)
            .expect("inspect")
            .tail,
        6
    );
    let (_, records) = inspect::queue_records(&t.ns, QUEUE, &opts, 16, 1024).expect("records");
    assert_eq!(
        records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [0, 2, 3, 4]
    );
}

#[test]
fn a_killed_consumers_record_is_taken_by_a_dead_consumer_until_given_back() {
    const TEST: &str = "a_killed_consumers_record_is_taken_by_a_dead_consumer_until_given_back";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let bus = Bus::at(&base, "t").expect("bus");
        let queue = bus
            .open_queue_timeout(QUEUE, Duration::from_secs(30))
            .expect("queue");
        let mut c = queue.consumer().expect("consumer");
        let rec = c.try_take().expect("a record");
        println!("took {}", rec.sequence());
        std::thread::sleep(Duration::from_secs(30)); // killed here
        return;
    }
    let t = TempNs::new("inspect-queue-dead");
    let queue = t
        .bus()
        .queue(QUEUE, &queue_config(8, Duration::from_secs(1)))
        .expect("queue");
    let mut p = queue.producer().expect("producer");
    for seq in 0..3 {
        p.try_send(1, &trade(seq)).expect("room");
    }
    let (mut child, _out) = spawn_until(TEST, "consumer", &t.base, "took 0");
    let pid = child.id();
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let inspector = QueueInspector::open(&t.ns, QUEUE, &OpenOptions::default()).expect("open");
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!(
        in_flight(&snap)[0],
        (
            0,
            InFlightState::Taken {
                consumer: 0,
                consumer_alive: false,
                redelivered: false
            }
        )
    );
    assert_eq!((snap.taken_by_dead(), snap.depth), (1, 2));
    let dead = &snap.consumers[..];
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].slot, dead[0].pid), (0, pid));
    assert_eq!(dead[0].state, participant::LIVE, "it never left");
    assert!(!dead[0].alive);
    assert_eq!((dead[0].taken, dead[0].holding), (1, 1));
    assert_eq!(snap.consumers_alive(), 0);

    // A consumer registering in the dead one's slot gives its record back.
    let mut c = queue.consumer().expect("consumer");
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!(
        in_flight(&snap)[0],
        (0, InFlightState::Committed { redelivered: true })
    );
    assert_eq!((snap.redelivered, snap.reaped_consumers), (1, 1));
    assert_eq!((snap.depth, snap.redelivered_waiting()), (3, 1));
    assert_eq!(snap.consumers.len(), 1);
    assert_eq!(snap.consumers[0].pid, std::process::id());
    assert!(snap.consumers[0].alive);
    let again = c.try_take().expect("redelivered");
    assert_eq!((again.sequence(), again.redelivered()), (0, true));
    again.ack().expect("ack");
}

#[test]
fn a_crashed_producers_claim_is_writing_by_a_dead_producer_until_reclaimed() {
    let t = TempNs::new("inspect-queue-producer");
    let queue = t
        .bus()
        .queue(QUEUE, &queue_config(8, Duration::from_millis(30)))
        .expect("queue");
    let mut p = queue.producer().expect("producer");
    std::mem::forget(p.try_claim(8).expect("claim of 0"));
    p.crash_for_test(); // as if killed between claim and commit

    let inspector = QueueInspector::open(&t.ns, QUEUE, &OpenOptions::default()).expect("open");
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!(
        in_flight(&snap),
        [(
            0,
            InFlightState::Writing {
                producer: 0,
                producer_alive: false
            }
        )]
    );
    assert_eq!(snap.producers.len(), 1);
    assert_eq!(snap.producers[0].claimed, Some(0));
    assert!(!snap.producers[0].alive);

    // Its slot is taken over; a waiting consumer reclaims the claim and
    // goes on to the next record.
    let mut p = queue.producer().expect("producer");
    p.try_send(2, b"next").expect("room");
    let mut c = queue.consumer().expect("consumer");
    let rec = c
        .take_timeout(WaitStrategy::BACKOFF, Duration::from_secs(10))
        .expect("record 1");
    assert_eq!(rec.sequence(), 1);
    let snap = inspector.snapshot().expect("snapshot");
    assert_eq!((snap.reaped_producers, snap.reclaimed_claims), (1, 1));
    assert_eq!(snap.producers[0].claimed, None);
    assert!(snap.producers[0].alive);
    assert_eq!(
        in_flight(&snap),
        [(
            1,
            InFlightState::Taken {
                consumer: 0,
                consumer_alive: true,
                redelivered: false
            }
        )]
    );
    rec.ack().expect("ack");
    assert!(inspector.snapshot().expect("snapshot").in_flight.is_empty());
}

/// Writes hostile bytes into a [`HostileQueue`].
type Corrupter = fn(&HostileQueue);

/// A queue of 4 slots (2 producers, 2 consumers) holding records 0 and 1,
/// with record 0 taken by a consumer that crashed, and the offsets of its
/// parts in the file.
struct HostileQueue {
    t: TempNs,
    path: std::path::PathBuf,
    geometry: shmbus::layout::SlotGeometry,
    _queue: shmbus::bus::Queue,
}

impl HostileQueue {
    fn new() -> Self {
        let t = TempNs::new("inspect-queue-hostile");
        let config = QueueConfig {
            slots: 4,
            max_payload: 48,
            max_producers: 2,
            max_consumers: 2,
            reclaim_after: Duration::from_secs(1),
        };
        let queue = t.bus().queue(QUEUE, &config).expect("queue");
        let mut p = queue.producer().expect("producer");
        p.try_send(1, b"abcd").expect("room");
        p.try_send(2, b"efgh").expect("room");
        let mut c = queue.consumer().expect("consumer");
        std::mem::forget(c.try_take().expect("record 0"));
        c.crash_for_test();
        HostileQueue {
            path: queue.path(),
            geometry: config.geometry(),
            t,
            _queue: queue,
        }
    }

    fn control(&self, field: usize) -> u64 {
        (QUEUE_CONTROL_OFFSET + field) as u64
    }

    fn stamp(&self, seq: u64) -> u64 {
        (self.geometry.slot_offset(seq) + offset_of!(RecordSlotHeader, stamp)) as u64
    }

    fn word(&self, seq: u64) -> u64 {
        (self.geometry.slot_offset(seq) + offset_of!(RecordSlotHeader, word)) as u64
    }

    fn write(&self, offset: u64, value: u64) {
        write_at(&self.path, offset, &value.to_ne_bytes());
    }

    fn open(&self) -> Result<QueueInspector, InspectError> {
        QueueInspector::open(&self.t.ns, QUEUE, &OpenOptions::default())
    }

    /// The corruption a snapshot (or, past it, a record walk) reports.
    fn corruption(&self) -> Corruption {
        let q = self.open().expect("open");
        let err = match q.snapshot() {
            Ok(snap) => q
                .records(&snap, usize::MAX, usize::MAX)
                .find_map(Result::err)
                .expect("a corrupt record"),
            Err(e) => e,
        };
        match err {
            InspectError::Corrupt { path, corruption } => {
                assert_eq!(path, self.path);
                corruption
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn hostile_queue_control_blocks_positions_and_stamps_are_typed_errors() {
    // The fixture itself is healthy.
    let q = HostileQueue::new();
    let snap = q.open().expect("open").snapshot().expect("snapshot");
    assert_eq!((snap.head, snap.tail, snap.depth), (1, 2, 1));
    assert_eq!(snap.taken_by_dead(), 1);

    // Control words the directory's configuration disagrees with: refused
    // on open by the queue's own check.
    let cases: [(usize, Vec<u8>, &str); 4] = [
        (
            offset_of!(QueueControl, slots),
            8u64.to_ne_bytes().to_vec(),
            "slots 8",
        ),
        (
            offset_of!(QueueControl, max_payload),
            4096u32.to_ne_bytes().to_vec(),
            "max payload 4096",
        ),
        (
            offset_of!(QueueControl, max_consumers),
            200u32.to_ne_bytes().to_vec(),
            "max consumers 200",
        ),
        (
            offset_of!(QueueControl, reclaim_after_ns),
            7u64.to_ne_bytes().to_vec(),
            "reclaim after (ns) 7",
        ),
    ];
    for (field, bytes, name) in cases {
        let q = HostileQueue::new();
        write_at(&q.path, q.control(field), &bytes);
        match q.open() {
            Err(InspectError::Segment(e @ SegmentError::Corrupt { .. })) => {
                assert!(e.to_string().contains(name), "{name}: {e}");
            }
            other => panic!("{name}: expected a corrupt segment, got {other:?}"),
        }
    }

    // Positions, stamps and record headers no queue holds.
    let cases: [(&str, Corrupter, KindCheck); 11] = [
        (
            "tail past the largest sequence",
            |q| q.write(q.control(offset_of!(QueueControl, tail)), MAX_SEQUENCE + 1),
            |k| matches!(k, CorruptionKind::PositionTooLarge { value } if *value == MAX_SEQUENCE + 1),
        ),
        (
            "head past the tail",
            |q| q.write(q.control(offset_of!(QueueControl, head)), 3),
            |k| matches!(k, CorruptionKind::HeadOutOfRange { head: 3 }),
        ),
        (
            "tail a lap ahead of the slots",
            |q| q.write(q.control(offset_of!(QueueControl, tail)), 6),
            |k| matches!(k, CorruptionKind::TailTooFarAhead { tail: 6 }),
        ),
        (
            "tail laps ahead of the slots",
            |q| q.write(q.control(offset_of!(QueueControl, tail)), 1000),
            |k| matches!(k, CorruptionKind::TailTooFarAhead { tail: 1000 }),
        ),
        (
            "a stamp of an unknown state",
            |q| q.write(q.stamp(1), queue_stamp::pack(0, 0, 5, 0)),
            |k| matches!(k, CorruptionKind::BadStamp { stamp: 5 }),
        ),
        (
            "a stamp with a bit no build sets",
            |q| q.write(q.stamp(1), queue_stamp::COMMITTED | 1 << 6),
            |k| matches!(k, CorruptionKind::BadStamp { stamp: 0x42 }),
        ),
        (
            "a claimed record's slot a lap behind",
            |q| {
                q.write(
                    q.stamp(1),
                    queue_stamp::pack(queue_stamp::LAP_MASK, 0, queue_stamp::COMMITTED, 0),
                )
            },
            |k| matches!(k, CorruptionKind::BadStamp { .. }),
        ),
        (
            "a record taken by a consumer slot that does not exist",
            |q| q.write(q.stamp(0), queue_stamp::pack(0, 200, queue_stamp::TAKEN, 0)),
            |k| matches!(k, CorruptionKind::BadStamp { .. }),
        ),
        (
            "a record written by a producer slot that does not exist",
            |q| q.write(q.stamp(1), queue_stamp::pack(0, 9, queue_stamp::WRITING, 0)),
            |k| matches!(k, CorruptionKind::BadStamp { .. }),
        ),
        (
            "a committed record with unknown flags",
            |q| q.write(q.word(1), pack_record_header(4, 2, 0x10)),
            |k| matches!(k, CorruptionKind::UnknownFlags { flags: 0x10 }),
        ),
        (
            "a committed record longer than the maximum payload",
            |q| q.write(q.word(1), pack_record_header(49, 2, 0)),
            |k| matches!(k, CorruptionKind::LengthTooLarge { len: 49 }),
        ),
    ];
    for (what, corrupt, is_expected) in cases {
        let q = HostileQueue::new();
        corrupt(&q);
        let c = q.corruption();
        assert!(is_expected(&c.kind), "{what}: {c:?}");
    }

    // A sequence claimed whose producer has not marked its slot yet.
    let q = HostileQueue::new();
    q.write(q.control(offset_of!(QueueControl, tail)), 3);
    let snap = q.open().expect("open").snapshot().expect("snapshot");
    assert_eq!(
        snap.in_flight.last().map(|r| (r.sequence, r.state)),
        Some((2, InFlightState::Claimed { producer: None }))
    );

    // Participant slots are figures for humans: garbage in them is shown
    // as it is, and never used to reach memory.
    let q = HostileQueue::new();
    let consumer = q.geometry.reader_offset(0) as u64;
    let producer = q.geometry.writer_offset(1) as u64;
    let at = |slot: u64, field: usize| slot + field as u64;
    write_at(
        &q.path,
        at(consumer, offset_of!(QueueConsumerSlot, state)),
        &0xffu32.to_ne_bytes(),
    );
    q.write(
        at(consumer, offset_of!(QueueConsumerSlot, counters.records)),
        u64::MAX,
    );
    write_at(
        &q.path,
        at(producer, offset_of!(QueueProducerSlot, state)),
        &0x7fu32.to_ne_bytes(),
    );
    q.write(
        at(producer, offset_of!(QueueProducerSlot, claimed)),
        u64::MAX,
    );
    let snap = q.open().expect("open").snapshot().expect("snapshot");
    assert_eq!(snap.consumers[0].state, 0xff);
    assert_eq!(
        inspect::participant_state_name(snap.consumers[0].state),
        "unknown"
    );
    assert_eq!(snap.consumers[0].taken, u64::MAX);
    assert_eq!(
        snap.producers.last().map(|p| (p.slot, p.claimed, p.alive)),
        Some((1, Some(u64::MAX - 1), false))
    );
}

#[test]
fn hostile_queue_words_never_panic() {
    let q = HostileQueue::new();
    let inspector = q.open().expect("open");
    // xorshift64*: deterministic, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut oks, mut errs) = (0, 0);
    for i in 0..500 {
        // Mostly positions and stamps near what a queue holds; sometimes anything.
        let head = if i % 7 == 0 { next() } else { next() % 12 };
        let tail = if i % 11 == 0 {
            next()
        } else {
            head.wrapping_add(next() % 6)
        };
        q.write(q.control(offset_of!(QueueControl, head)), head);
        q.write(q.control(offset_of!(QueueControl, tail)), tail);
        for seq in 0..4 {
            let stamp = if next() % 5 == 0 {
                next()
            } else {
                let lap = (tail.saturating_sub(4) + seq) / 4 + next() % 2;
                let state = next() % 5;
                queue_stamp::pack(lap, (next() % 3) as u32, state, next() % 32)
            };
            q.write(q.stamp(seq), stamp);
            let word = if next() % 4 == 0 {
                next()
            } else {
                pack_record_header((next() % 60) as u32, 1, 0)
            };
            q.write(q.word(seq), word);
        }
        for slot in [q.geometry.reader_offset(1), q.geometry.writer_offset(0)] {
            q.write(slot as u64, next());
            q.write(slot as u64 + 8, next());
            q.write(slot as u64 + 16, next());
        }
        match inspector.snapshot() {
            Ok(snap) => {
                assert!(snap.head <= snap.tail && snap.tail <= MAX_SEQUENCE);
                assert!(snap.in_flight.len() <= 4);
                assert!(snap
                    .in_flight
                    .iter()
                    .all(|r| r.sequence < snap.tail && r.sequence >= snap.oldest()));
                for r in inspector.records(&snap, usize::MAX, usize::MAX) {
                    match r {
                        Ok(r) => {
                            assert!(r.len <= 48 && r.payload.len() == r.len as usize);
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
