//! What the participants' counters cost (`ring-dump`'s numbers): every
//! measure runs in rounds, with counting on and off by turns in this one
//! process (`shmbus::ring::set_counting_for_bench`), and prints the median
//! of per-round ratios, on / off. The "off" side still tests the switch
//! (one load of a process-local flag that never changes, and a predicted
//! branch), so the ratio is the cost of the counting itself.
//!
//! 1. **Publish cost**: one thread sends a 64-byte record and reads it
//!    back, one at a time, on an SPSC channel, a `Backpressure` topic and a
//!    work queue: ns per record (send + read), both ends counting.
//! 2. **One-way latency**: ping-pong between two threads pinned to cores
//!    0 and 1, over two SPSC channels and over two topics: round trip / 2,
//!    p50 per round for the ratio, and the distribution of every round of
//!    each side.
//!
//! `cargo bench --bench counters`; `SHMBUS_BENCH_ROUNDS` (default 20)
//! and `SHMBUS_BENCH_SAMPLES` (records per cost round, default 200 000;
//! a latency round is a tenth of that in round trips) scale it.

mod common;

use std::time::Instant;

use hdrhistogram::Histogram;
use shmbus::bus::{Bus, Policy, QueueConfig, SpscConfig, StartAt, TopicConfig};
use shmbus::ring::set_counting_for_bench;
use shmbus::ring::RecvError;

use common::{pin_to, spin, CORE_A, CORE_B};

const RECORD: usize = 64;
/// The record type that ends a ping-pong's echo thread.
const STOP: u16 = 0xffff;

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: 4096,
        max_payload: RECORD as u32,
        policy: Policy::Backpressure,
        max_subscribers: 4,
        max_publishers: 4,
        reclaim_after: std::time::Duration::from_secs(2),
    }
}

/// A way to send one record and read one record, for the cost part.
type SendRead<'a> = Box<dyn FnMut() + 'a>;

/// ns per record of `n` send + read pairs.
fn cost_round(n: usize, send_read: &mut SendRead<'_>) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        send_read();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Runs `rounds` rounds of `measure`, counting on and off by turns (the
/// side that goes first alternates); returns (on, off) per round.
fn by_turns(rounds: usize, mut measure: impl FnMut() -> f64) -> (Vec<f64>, Vec<f64>) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        for counting in [r % 2 == 0, r % 2 == 1] {
            set_counting_for_bench(counting);
            let v = measure();
            if counting {
                on.push(v);
            } else {
                off.push(v);
            }
        }
    }
    set_counting_for_bench(true);
    (on, off)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn publish_cost(bus: &Bus, rounds: usize, n: usize) {
    let payload = [7u8; RECORD];
    let channel = bus
        .spsc("cost_spsc", &SpscConfig::with_capacity(1 << 16))
        .expect("channel");
    let (mut tx, mut rx) = (
        channel.producer().expect("producer"),
        channel.consumer().expect("consumer"),
    );
    let topic = bus.topic("cost_topic", &topic_config()).expect("topic");
    let mut publisher = topic.publisher().expect("publisher");
    let mut subscriber = topic.subscriber(StartAt::Tail).expect("subscriber");
    let queue = bus
        .queue(
            "cost_queue",
            &QueueConfig {
                slots: 4096,
                max_payload: RECORD as u32,
                max_producers: 2,
                max_consumers: 2,
                reclaim_after: std::time::Duration::from_secs(2),
            },
        )
        .expect("queue");
    let mut producer = queue.producer().expect("producer");
    let mut consumer = queue.consumer().expect("consumer");

    let mut cases: Vec<(&str, SendRead<'_>)> = vec![
        (
            "spsc channel",
            Box::new(|| {
                tx.try_send(1, &payload).expect("room");
                let rec = rx.try_read().expect("a record");
                assert_eq!(rec.len(), RECORD);
            }),
        ),
        (
            "topic (Backpressure)",
            Box::new(|| {
                publisher.try_send(1, &payload).expect("room");
                let rec = subscriber.try_read().expect("a record");
                assert_eq!(rec.len(), RECORD);
            }),
        ),
        (
            "work queue",
            Box::new(|| {
                producer.try_send(1, &payload).expect("room");
                let rec = consumer.try_take().expect("a record");
                assert_eq!(rec.len(), RECORD);
                rec.ack().expect("ack");
            }),
        ),
    ];
    println!(
        "\npublish cost: send + read of one {RECORD}-byte record on one thread, ns per record \
         ({rounds} rounds of {n} records each way)"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>16}",
        "ring", "on (p50)", "off (p50)", "on / off"
    );
    for (name, send_read) in &mut cases {
        // Warm up: caches, page faults, branch predictors.
        cost_round(n / 4 + 1, send_read);
        let (on, off) = by_turns(rounds, || cost_round(n, send_read));
        println!(
            "{name:<22} {:>10.2} {:>10.2} {:>15.3}x",
            median(&on),
            median(&off),
            common::median_ratio(&on, &off)
        );
    }
}

/// Both directions of a ping-pong: `send(seq)` and `recv() -> (type, seq)`.
trait Link: Send {
    fn send(&mut self, record_type: u16, seq: u64);
    fn recv(&mut self) -> (u16, u64);
}

/// Implements [`Link`] for a sender and a receiver of one ring kind (their
/// `try_send` and `try_read` have the same shape on every kind).
macro_rules! link {
    ($link:ident, $tx:ty, $rx:ty, $what:literal) => {
        struct $link($tx, $rx);

        impl Link for $link {
            fn send(&mut self, record_type: u16, seq: u64) {
                let mut payload = [0u8; RECORD];
                common::stamp(&mut payload, seq);
                while self.0.try_send(record_type, &payload).is_err() {
                    spin();
                }
            }
            fn recv(&mut self) -> (u16, u64) {
                loop {
                    match self.1.try_read() {
                        Ok(rec) => return (rec.record_type(), common::seq_of(&rec)),
                        Err(RecvError::Empty) => spin(),
                        Err(e) => panic!("{} read: {e}", $what),
                    }
                }
            }
        }
    };
}

link!(SpscLink, shmbus::Producer, shmbus::Consumer, "spsc");
link!(TopicLink, shmbus::Publisher, shmbus::Subscriber, "topic");

/// Round trips between this thread (core 0) and an echo thread (core 1):
/// `out` is this thread's sender and receiver, `back` the echo thread's.
fn ping_pong<L: Link + 'static>(name: &str, mut out: L, mut back: L, rounds: usize, trips: usize) {
    let echo = std::thread::spawn(move || {
        pin_to(CORE_B);
        loop {
            let (ty, seq) = back.recv();
            back.send(ty, seq);
            if ty == STOP {
                return;
            }
        }
    });
    let mut hists = [common::latency_histogram(), common::latency_histogram()];
    let mut seq = 0u64;
    let mut round_trip = |out: &mut L| {
        seq += 1;
        let t = Instant::now();
        out.send(1, seq);
        let (_, got) = out.recv();
        let ns = t.elapsed().as_nanos() as u64 / 2;
        assert_eq!(got, seq, "{name}: echo out of order");
        ns
    };
    for _ in 0..trips / 4 + 1 {
        round_trip(&mut out);
    }
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        for counting in [r % 2 == 0, r % 2 == 1] {
            set_counting_for_bench(counting);
            let mut round = Histogram::<u64>::new(3).expect("histogram");
            for _ in 0..trips {
                let ns = round_trip(&mut out);
                round.record(ns.max(1)).expect("record");
                hists[usize::from(!counting)]
                    .record(ns.max(1))
                    .expect("record");
            }
            let p50 = round.value_at_quantile(0.5) as f64;
            if counting {
                on.push(p50);
            } else {
                off.push(p50);
            }
        }
    }
    set_counting_for_bench(true);
    out.send(STOP, 0);
    let _ = out.recv();
    echo.join().expect("echo thread");
    for (side, h) in ["on", "off"].iter().zip(&hists) {
        println!(
            "{name:<16} {side:<4} {:>8} {:>8} {:>8} {:>8} {:>9}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max()
        );
    }
    println!(
        "{name:<16} p50 on / off, median of per-round ratios: {:.3}x",
        common::median_ratio(&on, &off)
    );
}

fn main() {
    common::exit_on_panic();
    if common::list_mode() {
        return;
    }
    let quick = common::quick_mode();
    let rounds = common::env_count("SHMBUS_BENCH_ROUNDS", if quick { 2 } else { 20 });
    let n = common::env_count("SHMBUS_BENCH_SAMPLES", if quick { 2_000 } else { 200_000 });
    pin_to(CORE_A);
    let dir = common::TempNs::named("bench-counters", "bench");
    let bus = Bus::at(&dir.base, dir.ns.name()).expect("open the bench bus");

    publish_cost(&bus, rounds, n);

    let trips = (n / 10).max(100);
    println!(
        "\none-way latency, {RECORD}-byte records, ns (round trip / 2, cores {CORE_A} and \
         {CORE_B}; {rounds} rounds of {trips} round trips each way)"
    );
    println!(
        "{:<16} {:<4} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "ring", "", "p50", "p99", "p99.9", "p99.99", "max"
    );
    let channel = |name: &str| {
        let c = bus
            .spsc(name, &SpscConfig::with_capacity(1 << 16))
            .expect("channel");
        (
            c.producer().expect("producer"),
            c.consumer().expect("consumer"),
        )
    };
    let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (channel("lat_ping"), channel("lat_pong"));
    ping_pong(
        "spsc channel",
        SpscLink(ping_tx, pong_rx),
        SpscLink(pong_tx, ping_rx),
        rounds,
        trips,
    );
    let topic = |name: &str| {
        let t = bus.topic(name, &topic_config()).expect("topic");
        (
            t.publisher().expect("publisher"),
            t.subscriber(StartAt::Tail).expect("subscriber"),
        )
    };
    let ((ping_pub, ping_sub), (pong_pub, pong_sub)) = (topic("lat_ping_t"), topic("lat_pong_t"));
    ping_pong(
        "topic",
        TopicLink(ping_pub, pong_sub),
        TopicLink(pong_pub, ping_sub),
        rounds,
        trips,
    );
}
