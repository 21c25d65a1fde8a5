//! The work queue against crossbeam's MPMC queues, and its one-way latency
//! against the SPSC ring.
//!
//! * **Throughput**, 64-byte records, `P` producer threads to `C` consumer
//!   threads for P→C in 1→1, 2→2 and 4→4 (threads pinned round-robin to the
//!   two cores, so 2→2 and 4→4 share cores; every side yields when it finds
//!   the queue full or empty, the same for every transport):
//!   * `shmbus queue`: `try_send` / `try_recv` (copy in, copy out and
//!     acknowledge), 1024 slots;
//!   * `shmbus queue batch 16`: the same queue in batches of up to 16
//!     records: `try_claim_batch` (one move of the tail), `try_claim` +
//!     copy + `stage` each, one `flush`; `take_batch` (one move of the head
//!     per run), copy out and acknowledge each;
//!   * `crossbeam-channel`: `bounded(1024)` of `[u8; 64]`;
//!   * `crossbeam ArrayQueue`: `ArrayQueue::new(1024)` of `[u8; 64]`.
//!
//!   Every record carries its producer and sequence; consumers check each
//!   producer's records arrive in order and the total. Rounds interleave
//!   the transports (noise on a shared machine falls on all alike); the
//!   median of `SHMBUS_BENCH_REPEATS` (default 15) rounds of
//!   `SHMBUS_BENCH_RECORDS` (default 1,000,000) is reported, with each
//!   row's ratio to crossbeam-channel at the same P→C, and the medians of
//!   the per-round ratios: the queue to crossbeam-channel, and the batched
//!   queue to the queue record by record (what batching gains). Each round
//!   starts with a probe of the core pair's latency (its floor), and each
//!   ratio is also given over the rounds of each mode of the machine (fast
//!   floor, below 120 ns, and slow): a ratio that moves with the mode is
//!   stable within one.
//! * **Latency**, one producer thread (core 0) to one consumer thread
//!   (core 1), busy-spinning, one 64-byte record every ~2 µs stamped with
//!   `CLOCK_MONOTONIC`: the queue against the SPSC ring, interleaved in
//!   rounds of `SHMBUS_BENCH_SAMPLES / 5` samples (default 200,000 in all).
//!
//! Both rings are the in-process (heap) backings: the very code of the
//! shared-memory ones, without the mapping, so the comparison with
//! crossbeam's in-process queues is like for like.
//!
//! ```text
//! cargo bench --bench queue
//! SHMBUS_BENCH_RECORDS=4_000_000 SHMBUS_BENCH_REPEATS=30 cargo bench --bench queue
//! cargo test --benches     # smoke test: small counts
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{
    env_count, latency_histogram, median, pin_to, print_latency_table, print_throughput_table,
    quick_mode, spin, LatencyRow, ThroughputRow,
};
use shmbus::ring::queue::{self, ClaimError, QueueConfig, RecvError};
use shmbus::ring::spsc::{self, SpscConfig};

const SLOTS: u32 = 1024;
type Rec = [u8; 64];

fn queue_config(producers: u32, consumers: u32) -> QueueConfig {
    QueueConfig {
        slots: SLOTS,
        max_payload: 64,
        max_producers: producers,
        max_consumers: consumers,
        reclaim_after: Duration::from_secs(2),
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
#[inline(always)]
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC exists on
    // every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn record(producer: u64, seq: u64) -> Rec {
    let mut r = [0xA5u8; 64];
    r[..8].copy_from_slice(&producer.to_le_bytes());
    r[8..16].copy_from_slice(&seq.to_le_bytes());
    r[56..].copy_from_slice(&seq.to_le_bytes());
    r
}

/// Checks a record: each producer's sequence numbers arrive in order.
#[inline(always)]
fn check(rec: &[u8], last: &mut [Option<u64>]) {
    let p = u64::from_le_bytes(rec[..8].try_into().expect("8")) as usize;
    let seq = u64::from_le_bytes(rec[8..16].try_into().expect("8"));
    assert_eq!(rec[56..], seq.to_le_bytes(), "torn record");
    if let Some(prev) = last[p].replace(seq) {
        assert!(prev < seq, "producer {p}: {seq} after {prev}");
    }
}

/// What one transport offers the throughput runner.
trait Mpmc: Sync {
    /// Records a producer sends and a consumer takes per call: 1 for a
    /// transport sent record by record.
    const BATCH: usize = 1;
    /// Sends from producer thread `p`; false when full.
    fn send(&self, p: &mut Self::Tx, rec: &Rec) -> bool;
    /// Receives into `buf`; false when empty.
    fn recv(&self, c: &mut Self::Rx, buf: &mut Rec) -> bool;
    /// Sends the first of `recs`, or as many as the transport batches;
    /// returns how many (0 when full).
    fn send_some(&self, p: &mut Self::Tx, recs: &[Rec]) -> usize {
        usize::from(self.send(p, &recs[0]))
    }
    /// Receives one record, or up to `max` if the transport batches,
    /// calling `f` with each; returns how many (0 when empty).
    fn recv_some(
        &self,
        c: &mut Self::Rx,
        max: usize,
        buf: &mut Rec,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let _ = max;
        if self.recv(c, buf) {
            f(&buf[..]);
            1
        } else {
            0
        }
    }
    type Tx: Send;
    type Rx: Send;
}

struct ShmQueue(queue::HeapQueue);
impl Mpmc for ShmQueue {
    type Tx = queue::Producer;
    type Rx = queue::Consumer;
    fn send(&self, p: &mut queue::Producer, rec: &Rec) -> bool {
        match p.try_send(0, rec) {
            Ok(_) => true,
            Err(ClaimError::Full) => false,
            Err(e) => panic!("{e}"),
        }
    }
    fn recv(&self, c: &mut queue::Consumer, buf: &mut Rec) -> bool {
        match c.try_recv(buf) {
            Ok(_) => true,
            Err(RecvError::Empty) => false,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The same queue in batches: one tail move and one wake-up check per
/// batch sent, one head move per run taken.
struct ShmQueueBatch(queue::HeapQueue);
impl Mpmc for ShmQueueBatch {
    const BATCH: usize = 16;
    type Tx = queue::Producer;
    type Rx = queue::Consumer;
    fn send(&self, p: &mut queue::Producer, rec: &Rec) -> bool {
        self.send_some(p, core::slice::from_ref(rec)) == 1
    }
    fn recv(&self, c: &mut queue::Consumer, buf: &mut Rec) -> bool {
        self.recv_some(c, 1, &mut [0; 64], |rec| buf.copy_from_slice(rec)) == 1
    }
    fn send_some(&self, p: &mut queue::Producer, recs: &[Rec]) -> usize {
        let n = match p.try_claim_batch(recs.len()) {
            Ok(n) => n,
            Err(ClaimError::Full) => return 0,
            Err(e) => panic!("{e}"),
        };
        for rec in &recs[..n] {
            let mut claim = p.try_claim(rec.len()).expect("a claimed sequence");
            claim.copy_from_slice(rec);
            claim.stage().expect("staged");
        }
        p.flush();
        n
    }
    fn recv_some(
        &self,
        c: &mut queue::Consumer,
        max: usize,
        buf: &mut Rec,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        // Copied out, as `try_recv` does for the record-by-record row.
        c.take_batch(max, |rec| {
            buf.copy_from_slice(rec);
            f(&buf[..]);
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

struct Channel(
    crossbeam_channel::Sender<Rec>,
    crossbeam_channel::Receiver<Rec>,
);
impl Mpmc for Channel {
    type Tx = crossbeam_channel::Sender<Rec>;
    type Rx = crossbeam_channel::Receiver<Rec>;
    fn send(&self, p: &mut Self::Tx, rec: &Rec) -> bool {
        p.try_send(*rec).is_ok()
    }
    fn recv(&self, c: &mut Self::Rx, buf: &mut Rec) -> bool {
        match c.try_recv() {
            Ok(r) => {
                *buf = r;
                true
            }
            Err(_) => false,
        }
    }
}

struct Array(crossbeam_queue::ArrayQueue<Rec>);
impl Mpmc for Array {
    type Tx = ();
    type Rx = ();
    fn send(&self, _: &mut (), rec: &Rec) -> bool {
        self.0.push(*rec).is_ok()
    }
    fn recv(&self, _: &mut (), buf: &mut Rec) -> bool {
        match self.0.pop() {
            Some(r) => {
                *buf = r;
                true
            }
            None => false,
        }
    }
}

/// Moves `n` records from `txs` to `rxs`, each on a thread of its own;
/// returns the time from the first thread's start to the last consumer's
/// end, as the threads themselves read it (the calling thread shares the
/// cores with them and may run late).
fn run<M: Mpmc>(m: &M, txs: Vec<M::Tx>, rxs: Vec<M::Rx>, n: u64, wait: fn()) -> Duration {
    let np = txs.len() as u64;
    let per = n / np;
    let total = per * np;
    let received = AtomicU64::new(0);
    let barrier = Barrier::new(txs.len() + rxs.len());
    let nprod = txs.len();
    let took = std::thread::scope(|s| {
        let producers: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(i, mut tx)| {
                let (barrier, m) = (&barrier, m);
                s.spawn(move || {
                    pin_to(i % 2);
                    let mut recs = [[0u8; 64]; 16];
                    barrier.wait();
                    let start = Instant::now();
                    let mut seq = 0;
                    while seq < per {
                        let k = (per - seq).min(M::BATCH as u64) as usize;
                        for (j, rec) in recs[..k].iter_mut().enumerate() {
                            *rec = record(i as u64, seq + j as u64);
                        }
                        let mut sent = 0;
                        while sent < k {
                            match m.send_some(&mut tx, &recs[sent..k]) {
                                0 => wait(),
                                n => sent += n,
                            }
                        }
                        seq += k as u64;
                    }
                    start
                })
            })
            .collect();
        let consumers: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(j, mut rx)| {
                let (barrier, m, received) = (&barrier, m, &received);
                s.spawn(move || {
                    pin_to((j + 1) % 2);
                    let mut last = vec![None; nprod];
                    let mut buf = [0u8; 64];
                    barrier.wait();
                    let start = Instant::now();
                    while received.load(Ordering::Relaxed) < total {
                        match m.recv_some(&mut rx, M::BATCH, &mut buf, |rec| check(rec, &mut last))
                        {
                            0 => wait(),
                            n => {
                                received.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        let mut first = None::<Instant>;
        let mut end = None::<Instant>;
        for p in producers {
            let start = p.join().expect("producer");
            first = Some(first.map_or(start, |f| f.min(start)));
        }
        for c in consumers {
            let (start, done) = c.join().expect("consumer");
            first = Some(first.map_or(start, |f| f.min(start)));
            end = Some(end.map_or(done, |e| e.max(done)));
        }
        end.expect("a consumer") - first.expect("a thread")
    });
    assert_eq!(received.load(Ordering::Relaxed), total);
    took
}

fn yield_now() {
    std::thread::yield_now();
}

fn throughput(n: u64, repeats: usize) {
    let shapes = [(1u32, 1u32), (2, 2), (4, 4)];
    let names = [
        "shmbus queue",
        "shmbus queue batch 16",
        "crossbeam-channel",
        "crossbeam ArrayQueue",
    ];
    let mut times: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); names.len()]; shapes.len()];
    // Each shape's floor before its round: which mode the round saw.
    let mut floors: Vec<Vec<u64>> = vec![Vec::new(); shapes.len()];
    for _ in 0..repeats {
        for (s, &(np, nc)) in shapes.iter().enumerate() {
            floors[s].push(common::floor_probe_ns(2_000));
            let wait: fn() = if np == 1 { spin } else { yield_now };
            let q = ShmQueue(queue::heap(queue_config(np, nc)).expect("config"));
            let txs = (0..np).map(|_| q.0.producer().expect("producer")).collect();
            let rxs = (0..nc).map(|_| q.0.consumer().expect("consumer")).collect();
            times[s][0].push(run(&q, txs, rxs, n, wait));
            let q = ShmQueueBatch(queue::heap(queue_config(np, nc)).expect("config"));
            let txs = (0..np).map(|_| q.0.producer().expect("producer")).collect();
            let rxs = (0..nc).map(|_| q.0.consumer().expect("consumer")).collect();
            times[s][1].push(run(&q, txs, rxs, n, wait));
            let (tx, rx) = crossbeam_channel::bounded(SLOTS as usize);
            let ch = Channel(tx, rx);
            let txs = (0..np).map(|_| ch.0.clone()).collect();
            let rxs = (0..nc).map(|_| ch.1.clone()).collect();
            times[s][2].push(run(&ch, txs, rxs, n, wait));
            let a = Array(crossbeam_queue::ArrayQueue::new(SLOTS as usize));
            times[s][3].push(run(
                &a,
                vec![(); np as usize],
                vec![(); nc as usize],
                n,
                wait,
            ));
        }
    }
    // Each round's times, in round order (the table's medians sort them).
    let round_secs: Vec<Vec<Vec<f64>>> = times
        .iter()
        .map(|shape| {
            shape
                .iter()
                .map(|t| t.iter().map(Duration::as_secs_f64).collect())
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    for (s, &(np, nc)) in shapes.iter().enumerate() {
        let base = rows.len() + 2;
        for (t, name) in names.iter().enumerate() {
            let samples = &mut times[s][t];
            let spread = (
                *samples.iter().min().expect("repeats"),
                *samples.iter().max().expect("repeats"),
            );
            rows.push(ThroughputRow {
                name: format!("{np}->{nc} {name}"),
                size: 64,
                records: n / u64::from(np) * u64::from(np),
                time: median(samples),
                spread,
                baseline: Some(base),
            });
        }
    }
    println!("\nthroughput, 64-byte records, median of {repeats} interleaved rounds (ratio: to crossbeam-channel at the same shape)");
    print_throughput_table(&rows);
    // The ratio within each round (the transports of a round run back to
    // back, so they share its machine state), then the median, over all
    // rounds and over those of each mode.
    for (s, &(np, nc)) in shapes.iter().enumerate() {
        for (label, num, den) in [
            ("shmbus queue / crossbeam-channel", 2, 0),
            ("shmbus queue batch 16 / crossbeam-channel", 2, 1),
            ("shmbus queue batch 16 / shmbus queue", 0, 1),
        ] {
            common::print_ratio_by_mode(
                &format!("{np}->{nc} {label}"),
                &round_secs[s][num],
                &round_secs[s][den],
                &floors[s],
            );
        }
    }
}

/// One-way latency of `samples` paced records from core 0 to core 1.
fn latency_round<S: Send, R: Send>(
    tx: &mut S,
    rx: &mut R,
    samples: usize,
    send: fn(&mut S, &Rec),
    recv: fn(&mut R, &mut Rec) -> bool,
    hist: &mut hdrhistogram::Histogram<u64>,
) {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(0);
            barrier.wait();
            for i in 0..samples as u64 {
                let until = Instant::now() + Duration::from_micros(2);
                while Instant::now() < until {
                    spin();
                }
                let mut rec = record(0, i);
                rec[16..24].copy_from_slice(&now_ns().to_le_bytes());
                send(tx, &rec);
            }
        });
        pin_to(1);
        barrier.wait();
        let mut buf = [0u8; 64];
        let mut last = [None];
        for _ in 0..samples {
            while !recv(rx, &mut buf) {
                spin();
            }
            let sent = u64::from_le_bytes(buf[16..24].try_into().expect("8"));
            check(&buf, &mut last);
            hist.record(now_ns().saturating_sub(sent).max(1))
                .expect("in range");
        }
    });
}

fn latency(samples: usize) {
    let rounds = 5;
    let per = samples / rounds;
    let mut h_queue = latency_histogram();
    let mut h_spsc = latency_histogram();
    let q = queue::heap(queue_config(1, 1)).expect("config");
    let (mut qtx, mut qrx) = (q.producer().expect("p"), q.consumer().expect("c"));
    let (mut stx, mut srx) = spsc::heap(SpscConfig::with_capacity(1 << 16)).expect("config");
    let mut ratios = Vec::new();
    for _ in 0..rounds {
        let mut round_queue = latency_histogram();
        let mut round_spsc = latency_histogram();
        latency_round(
            &mut qtx,
            &mut qrx,
            per,
            |p, r| while p.try_send(0, r).is_err() {},
            |c, b| c.try_recv(b).is_ok(),
            &mut round_queue,
        );
        latency_round(
            &mut stx,
            &mut srx,
            per,
            |p, r| while p.try_send(0, r).is_err() {},
            |c, b| match c.try_read() {
                Ok(rec) => {
                    b.copy_from_slice(&rec);
                    true
                }
                Err(_) => false,
            },
            &mut round_spsc,
        );
        ratios.push(
            round_queue.value_at_quantile(0.5) as f64 / round_spsc.value_at_quantile(0.5) as f64,
        );
        h_queue.add(&round_queue).expect("same bounds");
        h_spsc.add(&round_spsc).expect("same bounds");
    }
    ratios.sort_by(f64::total_cmp);
    println!("\none-way latency, ns, 64-byte records paced every ~2 us, core 0 -> core 1, {rounds} interleaved rounds (ratio: to the SPSC ring)");
    print_latency_table(
        &[
            LatencyRow {
                name: "spsc ring",
                hist: &h_spsc,
            },
            LatencyRow {
                name: "shmbus queue",
                hist: &h_queue,
            },
        ],
        0,
    );
    println!(
        "shmbus queue p50 / spsc ring p50, median of per-round ratios: {:.2}x",
        ratios[ratios.len() / 2]
    );
}

fn main() {
    common::exit_on_panic();
    if common::list_mode() {
        return;
    }
    let quick = quick_mode();
    let n = if quick {
        20_000
    } else {
        env_count("SHMBUS_BENCH_RECORDS", 1_000_000)
    } as u64;
    let repeats = if quick {
        1
    } else {
        env_count("SHMBUS_BENCH_REPEATS", 15)
    };
    let samples = if quick {
        2_000
    } else {
        env_count("SHMBUS_BENCH_SAMPLES", 200_000)
    };
    println!("load average: {}", common::load_average());
    throughput(n, repeats);
    latency(samples);
}
