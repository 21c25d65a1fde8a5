//! The inspector (`shmbus::inspect`), called directly: snapshots and record
//! walks of SPSC channels and topics, found through the directory, and what the `ring-dump` binary
//! (tested end to end in `tools/ring-dump/tests/cli.rs`) cannot show
//! deterministically: a walk overtaken by the consumer, and hostile bytes in
//! every position and header.

mod common;
#[path = "common/fixtures.rs"]
mod fixtures;

use shmbus::bus::{Policy, SpscConfig};
use shmbus::inspect::{self, InspectError, SpscInspector};
use shmbus::layout::{pack_record_header, FLAG_COMMITTED, FLAG_PADDING, SPSC_DATA_OFFSET};
use shmbus::ring::CorruptionKind;
use shmbus::segment::OpenOptions;
use shmbus::RingKind;

use common::TempNs;
use fixtures::{ring_with_records, topic_config, trade, write_at};

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
