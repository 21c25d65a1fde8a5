//! Every participant's counters, as the inspector reads them from shared
//! memory: each test does a known number of things through the public API
//! and checks that the counters say exactly that (records, bytes, full
//! claims and the time waited, sleeps and wake-ups, laps, missed, skips,
//! reclaims, redeliveries, acknowledgements).

mod common;

use std::time::{Duration, Instant};

use shmbus::bus::{Policy, QueueConfig, SpscConfig, StartAt, TopicConfig};
use shmbus::inspect::{CounterValues, QueueInspector, SpscInspector, TopicInspector};
use shmbus::ring::{ClaimError, RecvError};
use shmbus::segment::OpenOptions;
use shmbus::wait::WaitStrategy;

use common::{monotonic_ns, TempNs};

fn topic_config(policy: Policy, slots: u32) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload: 64,
        policy,
        max_subscribers: 4,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

fn queue_config() -> QueueConfig {
    QueueConfig {
        slots: 8,
        max_payload: 64,
        max_producers: 2,
        max_consumers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

/// The counters with the time of last activity cleared (checked apart).
fn counts(c: CounterValues) -> CounterValues {
    assert_ne!(
        c.last_active_ns, 0,
        "every participant stores the time on attach"
    );
    CounterValues {
        last_active_ns: 0,
        ..c
    }
}

#[test]
fn a_topics_publishers_and_subscribers_count_what_they_did() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let topic = bus
        .topic("ticks", &topic_config(Policy::Backpressure, 8))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut reader = topic.subscriber(StartAt::Tail).expect("subscriber");
    let mut skipper = topic.subscriber(StartAt::Tail).expect("subscriber");

    // 8 records of 10 bytes fill the log; the ninth finds it full, twice.
    for i in 0..8u8 {
        publisher.try_send(1, &[i; 10]).expect("room");
    }
    assert_eq!(publisher.try_send(1, &[9; 10]), Err(ClaimError::Full));
    assert_eq!(publisher.try_send(1, &[9; 10]), Err(ClaimError::Full));
    // A blocking claim with a timeout waits for space once, and times out.
    let started = Instant::now();
    assert_eq!(
        publisher.send_timeout(
            1,
            &[9; 10],
            WaitStrategy::BusySpin,
            Duration::from_millis(20)
        ),
        Err(ClaimError::TimedOut)
    );
    let waited = started.elapsed();

    // One subscriber reads 5 by borrow and 1 by copy; the other skips 2
    // and reads 6.
    for _ in 0..5 {
        drop(reader.try_read().expect("record"));
    }
    let mut buf = [0u8; 64];
    assert_eq!(reader.try_recv(&mut buf).expect("record"), (1, 10));
    skipper.skip().expect("skip");
    skipper.skip().expect("skip");
    for _ in 0..6 {
        drop(skipper.try_read().expect("record"));
    }
    assert_eq!(skipper.try_read().err(), Some(RecvError::Empty));

    let snap = TopicInspector::open(&t.ns, "ticks", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    let p = counts(snap.publishers[0].counters);
    assert!(
        p.full_ns >= 20_000_000 && p.full_ns <= waited.as_nanos() as u64,
        "the blocking claim waited its 20 ms timeout: {} ns counted, {:?} elapsed",
        p.full_ns,
        waited
    );
    assert_eq!(
        p,
        CounterValues {
            records: 8,
            bytes: 80,
            full: 3,
            full_ns: p.full_ns,
            ..CounterValues::default()
        }
    );
    let by_slot = |slot| {
        let s = snap
            .subscribers
            .iter()
            .find(|s| s.slot == slot)
            .expect("subscriber slot");
        counts(s.counters)
    };
    assert_eq!(
        by_slot(reader.slot_for_test()),
        CounterValues {
            records: 6,
            bytes: 60,
            ..CounterValues::default()
        }
    );
    assert_eq!(
        by_slot(skipper.slot_for_test()),
        CounterValues {
            records: 6,
            bytes: 60,
            skips: 2,
            missed: 2,
            ..CounterValues::default()
        }
    );
}

#[test]
fn an_overwrite_subscriber_counts_its_laps_and_what_they_cost_it() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let topic = bus
        .topic("quotes", &topic_config(Policy::Overwrite, 4))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscriber");
    for i in 0..10u8 {
        publisher
            .try_send(2, &[i; 4])
            .expect("overwrite never blocks");
    }
    // 10 published into 4 slots: the oldest 6 are gone.
    assert_eq!(sub.try_read().err(), Some(RecvError::Lapped { missed: 6 }));
    for _ in 0..4 {
        drop(sub.try_read().expect("record"));
    }
    let snap = TopicInspector::open(&t.ns, "quotes", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    assert_eq!(
        counts(snap.subscribers[0].counters),
        CounterValues {
            records: 4,
            bytes: 16,
            lapped: 1,
            missed: 6,
            ..CounterValues::default()
        }
    );
    assert_eq!(counts(snap.publishers[0].counters).records, 10);
}

#[test]
fn a_sleeping_subscriber_counts_its_sleep_and_the_publisher_its_wake_up() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let topic = bus
        .topic("fills", &topic_config(Policy::Backpressure, 8))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscriber");
    let no_spin = WaitStrategy::Blocking {
        spins: 0,
        yields: 0,
    };
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let rec = sub.read_blocking(no_spin).expect("record");
            assert_eq!(&rec[..], b"filled");
            drop(rec);
            sub
        });
        // Publish once the reader sleeps (its count shows it).
        let snap = || {
            TopicInspector::open(&t.ns, "fills", &OpenOptions::default())
                .expect("open")
                .snapshot()
                .expect("snapshot")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while snap().subscribers[0].counters.sleeps == 0 {
            assert!(Instant::now() < deadline, "the reader never slept");
            std::thread::sleep(Duration::from_millis(1));
        }
        publisher.try_send(3, b"filled").expect("room");
        let sub = reader.join().expect("reader");
        let after = snap();
        let s = counts(after.subscribers[0].counters);
        assert_eq!((s.records, s.bytes, s.wakes), (1, 6, 1), "{s:?}");
        assert!(s.sleeps >= 1);
        let p = counts(after.publishers[0].counters);
        assert_eq!((p.records, p.wakes), (1, 1), "{p:?}");
        drop(sub);
    });
}

#[test]
fn an_spsc_channels_ends_count_records_bytes_and_full_claims() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let channel = bus
        .spsc("orders", &SpscConfig::with_capacity(256))
        .expect("channel");
    let mut tx = channel.producer().expect("producer");
    let mut rx = channel.consumer().expect("consumer");
    let mut sent = 0u64;
    loop {
        match tx.try_send(1, &[7; 24]) {
            Ok(()) => sent += 1,
            Err(ClaimError::Full) => break,
            Err(e) => panic!("send: {e}"),
        }
    }
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        rx.try_recv(&mut buf).expect("record");
    }
    let snap = SpscInspector::open(&t.ns, "orders", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    assert_eq!(
        counts(snap.producer.counters),
        CounterValues {
            records: sent,
            bytes: 24 * sent,
            full: 1,
            ..CounterValues::default()
        }
    );
    assert_eq!(
        counts(snap.consumer.counters),
        CounterValues {
            records: 3,
            bytes: 72,
            ..CounterValues::default()
        }
    );

    // A producer that takes over the channel counts from zero; the
    // consumer's totals stay.
    drop(tx);
    let mut tx = channel.producer().expect("a second producer");
    rx.try_recv(&mut buf).expect("record");
    tx.try_send(1, &[7; 40]).expect("room after a read");
    let snap = SpscInspector::open(&t.ns, "orders", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    assert_eq!(
        counts(snap.producer.counters),
        CounterValues {
            records: 1,
            bytes: 40,
            ..CounterValues::default()
        }
    );
    assert_eq!(counts(snap.consumer.counters).records, 4);
}

#[test]
fn a_durable_subscriber_keeps_its_totals_and_a_new_slot_holder_starts_at_zero() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let topic = bus
        .topic("fills", &topic_config(Policy::Backpressure, 64))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut durable = topic
        .durable_subscriber("risk", StartAt::Tail)
        .expect("durable");
    let mut plain = topic.subscriber(StartAt::Tail).expect("subscriber");
    for i in 0..5u8 {
        publisher.try_send(1, &[i; 10]).expect("room");
    }
    for _ in 0..5 {
        drop(durable.try_read().expect("record"));
        drop(plain.try_read().expect("record"));
    }
    drop((durable, plain));
    for i in 0..2u8 {
        publisher.try_send(1, &[i; 10]).expect("room");
    }

    let mut durable = topic
        .durable_subscriber("risk", StartAt::Tail)
        .expect("resume");
    let mut plain = topic.subscriber(StartAt::Tail).expect("subscriber");
    for _ in 0..2 {
        drop(durable.try_read().expect("record"));
    }
    publisher.try_send(1, &[9; 10]).expect("room");
    drop(plain.try_read().expect("record"));

    let snap = TopicInspector::open(&t.ns, "fills", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    let records_of = |durable: bool| {
        let subs: Vec<_> = snap
            .subscribers
            .iter()
            .filter(|s| s.name.is_some() == durable)
            .collect();
        assert_eq!(subs.len(), 1, "one subscriber that is durable: {durable}");
        (subs[0].counters.records, subs[0].counters.bytes)
    };
    assert_eq!(
        records_of(true),
        (7, 70),
        "the durable one resumed its totals"
    );
    assert_eq!(
        records_of(false),
        (1, 10),
        "the new holder of a slot starts at 0"
    );
}

#[test]
fn a_queues_consumers_count_takes_redeliveries_and_acknowledgements() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let queue = bus.queue("work", &queue_config()).expect("queue");
    let mut producer = queue.producer().expect("producer");
    let mut a = queue.consumer().expect("consumer");
    let mut b = queue.consumer().expect("consumer");
    for i in 0..4u8 {
        producer.try_send(5, &[i; 8]).expect("room");
    }
    // a takes one and gives it back; b takes all four (one redelivered)
    // and acknowledges them.
    a.try_take()
        .expect("record")
        .give_back()
        .expect("give back");
    for _ in 0..4 {
        b.try_take().expect("record").ack().expect("ack");
    }
    let snap = QueueInspector::open(&t.ns, "work", &OpenOptions::default())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    assert_eq!(
        counts(snap.producers[0].counters),
        CounterValues {
            records: 4,
            bytes: 32,
            ..CounterValues::default()
        }
    );
    let consumer = |slot| {
        counts(
            snap.consumers
                .iter()
                .find(|c| c.slot == slot)
                .expect("consumer slot")
                .counters,
        )
    };
    assert_eq!(
        consumer(0),
        CounterValues {
            records: 1,
            bytes: 8,
            acked: 1,
            ..CounterValues::default()
        }
    );
    assert_eq!(
        consumer(1),
        CounterValues {
            records: 4,
            bytes: 32,
            acked: 4,
            redelivered: 1,
            ..CounterValues::default()
        }
    );
}

#[test]
fn the_time_of_last_activity_moves_every_activity_every_records_and_never_ahead_of_the_clock() {
    let every = shmbus::layout::ACTIVITY_EVERY;
    let t = TempNs::new("counters");
    let bus = t.bus();
    let channel = bus
        .spsc("orders", &SpscConfig::with_capacity(1 << 16))
        .expect("channel");
    let mut tx = channel.producer().expect("producer");
    let mut rx = channel.consumer().expect("consumer");
    let inspector =
        SpscInspector::open(&t.ns, "orders", &OpenOptions::default()).expect("inspector");
    let stamps = || {
        let snap = inspector.snapshot().expect("snapshot");
        (
            snap.producer.counters.last_active_ns,
            snap.consumer.counters.last_active_ns,
        )
    };
    let attached = stamps();
    assert!(attached.0 != 0 && attached.1 != 0, "stored on attach");
    assert!(
        attached.0 <= monotonic_ns() && attached.1 <= monotonic_ns(),
        "a lower bound of the clock"
    );
    // Well past a tick of the coarse clock the stamps come from.
    std::thread::sleep(Duration::from_millis(30));
    let mut buf = [0u8; 16];
    for _ in 0..every - 1 {
        tx.try_send(1, &[1; 16]).expect("room");
        rx.try_recv(&mut buf).expect("record");
    }
    assert_eq!(stamps(), attached, "no stamp before the {every}th record");
    let before = monotonic_ns();
    tx.try_send(1, &[1; 16]).expect("room");
    rx.try_recv(&mut buf).expect("record");
    let (producer, consumer) = stamps();
    assert!(
        producer > attached.0 + 20_000_000 && consumer > attached.1 + 20_000_000,
        "the {every}th record stores the time: {attached:?} -> {:?}",
        (producer, consumer)
    );
    assert!(
        producer <= monotonic_ns() && consumer <= monotonic_ns(),
        "a lower bound of the clock"
    );
    // Within a tick (a few ms) of the clock before the record.
    assert!(
        producer + 50_000_000 > before && consumer + 50_000_000 > before,
        "close to the time of the record"
    );
}

/// Times out `TIMEOUTS` blocking claims with a short timeout, one at a time,
/// and checks that each added at least its timeout to the writer's time
/// waited for space, and no more than the call took: the wait is counted
/// from the clock reading its deadline was counted from, so one that ran to
/// its deadline cannot come out shorter (a single 20 ms timeout missed by a
/// few hundred nanoseconds would pass unnoticed in one try; many short ones
/// on every ring kind catch it).
fn each_timed_out_claim_counts_at_least_its_timeout(
    what: &str,
    mut send_timeout: impl FnMut(WaitStrategy, Duration) -> Result<(), ClaimError>,
    mut full_ns: impl FnMut() -> u64,
) {
    const TIMEOUTS: usize = 100;
    let timeout = Duration::from_micros(200);
    for strategy in [WaitStrategy::BusySpin, WaitStrategy::BACKOFF] {
        for i in 0..TIMEOUTS {
            let before = full_ns();
            let started = Instant::now();
            assert_eq!(
                send_timeout(strategy, timeout),
                Err(ClaimError::TimedOut),
                "{what}"
            );
            let took = started.elapsed();
            let counted = full_ns() - before;
            assert!(
                counted >= timeout.as_nanos() as u64 && counted <= took.as_nanos() as u64,
                "{what}, {strategy:?}, try {i}: a claim that timed out after {timeout:?} \
                 counted {counted} ns waiting, and took {took:?}"
            );
        }
    }
}

#[test]
fn a_timed_out_claim_counts_at_least_its_timeout_on_every_ring_kind() {
    let t = TempNs::new("counters");
    let bus = t.bus();
    let open = OpenOptions::default();

    let channel = bus
        .spsc("orders", &SpscConfig::with_capacity(256))
        .expect("channel");
    let mut tx = channel.producer().expect("producer");
    let _rx = channel.consumer().expect("consumer");
    while tx.try_send(1, &[7; 24]).is_ok() {}
    let spsc = SpscInspector::open(&t.ns, "orders", &open).expect("open");
    each_timed_out_claim_counts_at_least_its_timeout(
        "spsc",
        |strategy, timeout| tx.send_timeout(1, &[7; 24], strategy, timeout),
        || spsc.snapshot().expect("snapshot").producer.counters.full_ns,
    );

    let topic = bus
        .topic("ticks", &topic_config(Policy::Backpressure, 8))
        .expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let _reader = topic.subscriber(StartAt::Tail).expect("subscriber");
    while publisher.try_send(1, &[1; 10]).is_ok() {}
    let inspector = TopicInspector::open(&t.ns, "ticks", &open).expect("open");
    each_timed_out_claim_counts_at_least_its_timeout(
        "topic",
        |strategy, timeout| {
            publisher
                .send_timeout(1, &[1; 10], strategy, timeout)
                .map(drop)
        },
        || {
            inspector.snapshot().expect("snapshot").publishers[0]
                .counters
                .full_ns
        },
    );

    let queue = bus.queue("work", &queue_config()).expect("queue");
    let mut producer = queue.producer().expect("producer");
    let _consumer = queue.consumer().expect("consumer");
    while producer.try_send(5, &[5; 8]).is_ok() {}
    let inspector = QueueInspector::open(&t.ns, "work", &open).expect("open");
    each_timed_out_claim_counts_at_least_its_timeout(
        "queue",
        |strategy, timeout| {
            producer
                .send_timeout(5, &[5; 8], strategy, timeout)
                .map(drop)
        },
        || {
            inspector.snapshot().expect("snapshot").producers[0]
                .counters
                .full_ns
        },
    );
}
