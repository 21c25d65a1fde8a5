//! Broadcast topics as subscribers are added: publish-to-receive latency,
//! the publisher's cost per record, and throughput with two publishers,
//! each against crossbeam-channel in the same run.
//!
//! Every shmbus topic lives in a bus under `/dev/shm` (real shared memory);
//! publishers and subscribers are threads of this process, each with its own
//! mapping of the log. The publisher runs on core 0 and subscribers on the
//! other cores. All records are 64 bytes and carry a sequence number at both
//! ends, checked on arrival, so a broken log fails the bench instead of
//! timing it.
//!
//! 1. **Latency** with 1, 2, 4, 8 and 16 subscribers. The publisher stamps
//!    `CLOCK_MONOTONIC` into a record and publishes it; each subscriber
//!    records now − stamp in its own hdrhistogram (merged per row). The next
//!    record follows 10–20 µs after every subscriber has read the last one,
//!    so no sample waits in a queue. Subscribers busy-poll (`spin`) where
//!    they have a core each, and otherwise block (`block`: shmbus
//!    [`WaitStrategy::BLOCKING`], crossbeam's `recv`); the blocking series is
//!    run from one subscriber on. The crossbeam peer is a bounded channel per
//!    subscriber, the publisher sending to each in turn: fan-out as it looks
//!    with channels.
//! 2. **Publish cost per record** with 0, 1, 2, 4, 8, 16 and 32 subscribers:
//!    bursts of 1024 publishes timed on the publisher thread, the median
//!    burst as ns per record, each row also as a ratio of the one-subscriber
//!    row (the design target is flat). `idle`: subscribers registered on an
//!    `Overwrite` topic that never read (nothing gates the publisher); for
//!    crossbeam, channels drained between bursts. `live`: a `Backpressure`
//!    topic whose subscribers read concurrently (polling with
//!    `sched_yield`, since they share a core) and catch up between bursts;
//!    for crossbeam, receivers reading the same way.
//! 3. **Throughput** of 1 and 2 publishers into 1 subscriber under
//!    `Backpressure`, against a crossbeam MPSC channel of `[u8; 64]` with as
//!    many senders; one publisher both on a topic made for one (`sole`:
//!    `max_publishers: 1`, claims are plain stores) and on the shared one,
//!    and the sole one again with `set_push_on_commit(true)` (what pushing
//!    every record costs a stream). Publishers share core 0 (the subscriber
//!    has core 1) and yield when the log or channel is full.
//!
//! 4. **Overwrite reads** (part `overwrite`): one spinning subscriber on an
//!    `Overwrite` topic, reading by borrow (`try_read`) and by copy
//!    (`try_recv`): publish-to-receive latency paced as in part 1, then the
//!    read path alone (bursts of reads of records already published, no
//!    publisher running), ns per record. Built against an older checkout of
//!    the library, the same part measures a change to the read path; run
//!    the two binaries in turn (interleaved) for a same-run ratio.
//!
//! 5. **Fences** (part `fences`): what a store-buffering (Dekker) pair
//!    costs its sides, as the publisher's sleeper check pays it: a
//!    `SeqCst` fence after a compare-and-swap, against the compare-and-swap
//!    alone (what a commit by compare-and-swap pays: its `SeqCst`
//!    compare-and-swap and load need no fence), and the asymmetric pair a
//!    sole publisher's commit by store uses, whose heavy side a sleeper
//!    pays on every sleep: `membarrier(2)` with `MEMBARRIER_CMD_GLOBAL`
//!    (every process, no registration) and `MEMBARRIER_CMD_GLOBAL_EXPEDITED`
//!    (processes that registered), the latter also with a thread of this
//!    registered process spinning on core 1, which each call interrupts.
//!
//! 6. **Phases** (part `phases`): the two sides of a sole topic in turn,
//!    so each is timed alone: the publisher (core 0) publishes a burst of
//!    2048 records, then the subscriber (core 1) reads them, and so on for
//!    400 bursts; ns per record on each side. The publisher writes slots
//!    the subscriber read a lap before, which is what its prefetch is for.
//!
//! Criterion then times the publish cost with 1 and 16 idle subscribers
//! (shmbus and crossbeam) with `iter_custom`.
//!
//! ```text
//! cargo bench --bench broadcast
//! SHMBUS_BENCH_SAMPLES=100000 cargo bench --bench broadcast
//! cargo test --benches     # smoke test: a few hundred samples, criterion once
//! ```
//!
//! `SHMBUS_BENCH_SAMPLES` (default 20 000) scales the parts: latency
//! samples per subscriber and row, 1/100 of it as bursts per publish-cost
//! cell, and 50 times it as records per throughput repeat.
//! `SHMBUS_BENCH_ROUNDS` (default 4) is how many interleaved rounds the
//! samples are split into; the throughput part makes four times as many
//! repeats, each after a probe of the core pair's latency (its floor), and
//! gives each ratio over all repeats and over those of each mode of the
//! machine (fast floor, below 120 ns, and slow).
//! `SHMBUS_BENCH_PARTS` (default
//! `latency,cost,throughput,overwrite,fences,phases`)
//! picks the tables; `SHMBUS_BENCH_NO_CRITERION=1` skips criterion.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use criterion::Criterion;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use shmbus::bus::{Bus, Policy, RecvError, StartAt, Topic, TopicConfig};
use shmbus::ring::broadcast::{ClaimError, Publisher, Subscriber};
use shmbus::wait::WaitStrategy;

use common::{median, pin_to, seq_of, spin, stamp, ThroughputRow, CORE_A, CORE_B};

/// Payload bytes of every record.
const RECORD: usize = 64;
/// The bytes of a record before it is stamped.
const TEMPLATE: [u8; RECORD] = [0xA5; RECORD];
/// Sequence number that tells a subscriber to stop.
const STOP: u64 = u64::MAX;
/// Record slots of every topic, and capacity of the crossbeam channels that
/// stand in for a live subscriber.
const SLOTS: u32 = 4096;
/// Subscriber counts of the latency table.
const LATENCY_SUBS: [usize; 5] = [1, 2, 4, 8, 16];
/// Subscriber counts of the publish-cost table.
const COST_SUBS: [usize; 7] = [0, 1, 2, 4, 8, 16, 32];
/// Publishes per timed burst (a quarter of the log: a burst never fills it).
const BURST: u64 = 1024;
/// Shortest pause between latency samples, after every subscriber has read
/// the last record (pauses are uniform in `GAP_MIN_NS .. GAP_MAX_NS`).
const GAP_MIN_NS: u64 = 10_000;
/// Longest pause between latency samples (exclusive).
const GAP_MAX_NS: u64 = 20_000;

fn topic_config(policy: Policy) -> TopicConfig {
    TopicConfig {
        slots: SLOTS,
        max_payload: RECORD as u32,
        policy,
        max_subscribers: 64,
        max_publishers: 16,
        reclaim_after: Duration::from_secs(2),
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the vDSO clock both cores share).
#[inline(always)]
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC exists on
    // every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Fills `record` with the template, `seq` at both ends and `ns` after it.
#[inline(always)]
fn fill(record: &mut [u8], seq: u64, ns: u64) {
    record.copy_from_slice(&TEMPLATE);
    stamp(record, seq);
    record[8..16].copy_from_slice(&ns.to_le_bytes());
}

/// The `(sequence, timestamp)` of a record [`fill`] wrote; panics on a torn
/// or short one.
#[inline(always)]
fn parse(record: &[u8]) -> (u64, u64) {
    assert_eq!(record.len(), RECORD, "record of {} bytes", record.len());
    let ns = u64::from_le_bytes(record[8..16].try_into().expect("8 bytes"));
    (seq_of(record), ns)
}

/// xorshift64: the pseudo-random gaps between latency samples.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Pins subscriber `i` to one of the cores after [`CORE_A`], round robin.
fn pin_subscriber(i: usize, cores: usize) {
    if cores > 1 {
        pin_to(CORE_B + i % (cores - 1));
    }
}

/// How a subscriber waits for the next record (and a publisher for room).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wait {
    /// Poll, with the CPU's pause hint in between.
    Spin,
    /// Poll, with `sched_yield` in between (threads sharing a core).
    Yield,
    /// Sleep in the kernel: shmbus `WaitStrategy::BLOCKING`, crossbeam `recv`.
    Block,
}

impl Wait {
    /// One turn of a polling wait.
    #[inline(always)]
    fn idle(self) {
        match self {
            Wait::Spin => spin(),
            Wait::Yield | Wait::Block => std::thread::yield_now(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Wait::Spin => "spin",
            Wait::Yield => "yield",
            Wait::Block => "block",
        }
    }
}

/// The publishing side of a fan-out.
trait Outbox {
    /// Delivers one record with `seq` and `ns` to every subscriber, waiting
    /// as the outbox says while there is no room.
    fn publish(&mut self, seq: u64, ns: u64);
}

/// One subscriber.
trait Inbox: Send {
    /// Waits for the next record and returns its `(sequence, timestamp)`.
    fn next(&mut self, wait: Wait) -> (u64, u64);
}

// ---------------------------------------------------------------------------
// shmbus: a publisher and subscribers on a topic
// ---------------------------------------------------------------------------

struct ShmOutbox {
    publisher: Publisher,
    on_full: Wait,
    /// Claims refused because the slowest subscriber was a log behind.
    fulls: u64,
}

impl ShmOutbox {
    fn new(topic: &Topic, on_full: Wait) -> Self {
        ShmOutbox {
            publisher: topic.publisher().expect("attach a publisher"),
            on_full,
            fulls: 0,
        }
    }
}

impl Outbox for ShmOutbox {
    #[inline]
    fn publish(&mut self, seq: u64, ns: u64) {
        loop {
            match self.publisher.try_claim(RECORD) {
                Ok(mut claim) => {
                    fill(&mut claim, seq, ns);
                    claim.set_record_type(1);
                    claim.commit().expect("committed within the claim timeout");
                    return;
                }
                Err(ClaimError::Full) => {
                    self.fulls += 1;
                    self.on_full.idle();
                }
                Err(e) => panic!("shmbus claim failed: {e}"),
            }
        }
    }
}

impl Inbox for Subscriber {
    #[inline]
    fn next(&mut self, wait: Wait) -> (u64, u64) {
        if wait == Wait::Block {
            let rec = self
                .read_blocking(WaitStrategy::BLOCKING)
                .unwrap_or_else(|e| panic!("shmbus read failed: {e}"));
            return parse(&rec);
        }
        loop {
            match self.try_read() {
                Ok(rec) => return parse(&rec),
                Err(RecvError::Empty) => wait.idle(),
                Err(e) => panic!("shmbus read failed: {e}"),
            }
        }
    }
}

/// A subscriber that copies each record out (`try_recv`) instead of
/// borrowing it.
struct CopyInbox(Subscriber);

impl Inbox for CopyInbox {
    #[inline]
    fn next(&mut self, wait: Wait) -> (u64, u64) {
        let mut buf = [0u8; RECORD];
        loop {
            match self.0.try_recv(&mut buf) {
                Ok((_, len)) => return parse(&buf[..len]),
                Err(RecvError::Empty) => wait.idle(),
                Err(e) => panic!("shmbus recv failed: {e}"),
            }
        }
    }
}

fn shm_subscribers(topic: &Topic, k: usize) -> Vec<Subscriber> {
    (0..k)
        .map(|_| {
            topic
                .subscriber(StartAt::Tail)
                .expect("attach a subscriber")
        })
        .collect()
}

// ---------------------------------------------------------------------------
// crossbeam-channel: one bounded channel per subscriber
// ---------------------------------------------------------------------------

struct CbOutbox {
    txs: Vec<Sender<[u8; RECORD]>>,
    on_full: Wait,
}

impl Outbox for CbOutbox {
    #[inline]
    fn publish(&mut self, seq: u64, ns: u64) {
        let mut item = [0u8; RECORD];
        fill(&mut item, seq, ns);
        for tx in &self.txs {
            loop {
                match tx.try_send(item) {
                    Ok(()) => break,
                    Err(TrySendError::Full(_)) => self.on_full.idle(),
                    Err(TrySendError::Disconnected(_)) => panic!("crossbeam receiver gone"),
                }
            }
        }
    }
}

impl Inbox for Receiver<[u8; RECORD]> {
    #[inline]
    fn next(&mut self, wait: Wait) -> (u64, u64) {
        if wait == Wait::Block {
            return parse(&self.recv().expect("crossbeam sender gone"));
        }
        loop {
            match self.try_recv() {
                Ok(item) => return parse(&item),
                Err(TryRecvError::Empty) => wait.idle(),
                Err(TryRecvError::Disconnected) => panic!("crossbeam sender gone"),
            }
        }
    }
}

/// `k` channels of `capacity`: an outbox over their senders, and the
/// receivers.
fn cb_fan_out(k: usize, capacity: u64, on_full: Wait) -> (CbOutbox, Vec<Receiver<[u8; RECORD]>>) {
    let (txs, rxs) = (0..k)
        .map(|_| crossbeam_channel::bounded(capacity as usize))
        .unzip();
    (CbOutbox { txs, on_full }, rxs)
}

/// Takes every record queued in `rxs` without waiting, checking each
/// channel holds exactly `next .. end` in order.
fn drain_checked(rxs: &[Receiver<[u8; RECORD]>], next: u64, end: u64) {
    for (i, rx) in rxs.iter().enumerate() {
        let mut expected = next;
        while let Ok(item) = rx.try_recv() {
            let (seq, _) = parse(&item);
            assert_eq!(
                seq, expected,
                "crossbeam: channel {i} expected record {expected}"
            );
            expected += 1;
        }
        assert_eq!(expected, end, "crossbeam: channel {i} short of records");
    }
}

/// Ends the process if a subscriber thread has ended early: it can only
/// have failed a check (its panic is printed), and the others would wait
/// for records forever, so the bench stops here rather than hang.
fn check_alive<T>(handles: &[ScopedJoinHandle<'_, T>], what: &str) {
    if handles.iter().any(ScopedJoinHandle::is_finished) {
        eprintln!("{what}: a subscriber thread stopped early (see its panic above)");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// 1. Publish-to-receive latency
// ---------------------------------------------------------------------------

/// One row of the latency table: both transports with the same subscriber
/// count and wait.
struct LatencyRow {
    subs: usize,
    wait: Wait,
    shm: Histogram<u64>,
    cb: Histogram<u64>,
    /// Each round's p50, ns, of shmbus and of crossbeam.
    rounds: (Vec<f64>, Vec<f64>),
}

/// What the latency runs share: sample counts, cores and the state of the
/// pseudo-random gaps.
struct Pacing {
    /// Records published before the measured ones, not recorded.
    warmup: u64,
    /// Records measured per run.
    samples: u64,
    cores: usize,
    rng: u64,
}

/// Publishes `warmup + samples` timestamped records (then STOP) to the
/// subscribers `inboxes`, each time waiting until all have read the last
/// record and then 10–20 µs more; adds the latencies of the last `samples`
/// to `into`.
fn latency_run<O: Outbox, I: Inbox>(
    name: &str,
    outbox: &mut O,
    inboxes: Vec<I>,
    wait: Wait,
    pacing: &mut Pacing,
    into: &mut Histogram<u64>,
) {
    let (warmup, cores) = (pacing.warmup, pacing.cores);
    let k = inboxes.len() as u64;
    let acks = CachePadded::new(AtomicU64::new(0));
    let acks = &acks;
    std::thread::scope(|s| {
        let handles: Vec<_> = inboxes
            .into_iter()
            .enumerate()
            .map(|(i, mut inbox)| {
                s.spawn(move || {
                    pin_subscriber(i, cores);
                    let mut hist = common::latency_histogram();
                    let mut expected = 1;
                    loop {
                        let (seq, sent) = inbox.next(wait);
                        let now = now_ns();
                        if seq == STOP {
                            return hist;
                        }
                        assert_eq!(seq, expected, "{name}: subscriber {i} got the wrong record");
                        expected += 1;
                        if seq > warmup {
                            let ns = now.saturating_sub(sent).max(1);
                            hist.record(ns)
                                .unwrap_or_else(|e| panic!("{name}: {ns} ns out of range: {e}"));
                        }
                        // SYNC POINT: pairs with the publisher's Acquire load:
                        // this subscriber is done with record `seq`.
                        acks.fetch_add(1, Ordering::Release);
                    }
                })
            })
            .collect();
        for seq in 1..=warmup + pacing.samples {
            outbox.publish(seq, now_ns());
            let mut polls = 0u32;
            while acks.load(Ordering::Acquire) < seq * k {
                polls = polls.wrapping_add(1);
                if polls % (1 << 20) == 0 {
                    check_alive(&handles, name);
                }
                spin();
            }
            let gap = GAP_MIN_NS + next_random(&mut pacing.rng) % (GAP_MAX_NS - GAP_MIN_NS);
            let until = now_ns() + gap;
            while now_ns() < until {
                spin();
            }
        }
        outbox.publish(STOP, 0);
        for h in handles {
            let hist = h.join().expect("subscriber thread");
            into.add(hist).expect("histograms with the same bounds");
        }
    });
}

fn latency(topic: &Topic, cores: usize, samples: usize, rounds: usize) -> Vec<LatencyRow> {
    let mut rows: Vec<LatencyRow> = Vec::new();
    for k in LATENCY_SUBS {
        // Busy-polling subscribers only where each has a core of its own.
        let waits: &[Wait] = if k < cores {
            &[Wait::Spin, Wait::Block]
        } else {
            &[Wait::Block]
        };
        for &wait in waits {
            rows.push(LatencyRow {
                subs: k,
                wait,
                shm: common::latency_histogram(),
                cb: common::latency_histogram(),
                rounds: (Vec::new(), Vec::new()),
            });
        }
    }
    let per_round = samples.div_ceil(rounds) as u64;
    let mut pacing = Pacing {
        warmup: (per_round / 10).clamp(50, 2_000),
        samples: per_round,
        cores,
        rng: 0x9E37_79B9_7F4A_7C15,
    };
    let mut shm_out = ShmOutbox::new(topic, Wait::Spin);
    for _ in 0..rounds {
        for row in &mut rows {
            let subs = shm_subscribers(topic, row.subs);
            let (pace, wait) = (&mut pacing, row.wait);
            let mut shm_round = common::latency_histogram();
            latency_run("shmbus", &mut shm_out, subs, wait, pace, &mut shm_round);
            let (mut cb_out, rxs) = cb_fan_out(row.subs, u64::from(SLOTS), Wait::Spin);
            let pace = &mut pacing;
            let mut cb_round = common::latency_histogram();
            latency_run("crossbeam", &mut cb_out, rxs, wait, pace, &mut cb_round);
            row.rounds.0.push(shm_round.value_at_quantile(0.5) as f64);
            row.rounds.1.push(cb_round.value_at_quantile(0.5) as f64);
            row.shm.add(&shm_round).expect("same bounds");
            row.cb.add(&cb_round).expect("same bounds");
        }
    }
    rows
}

fn print_latency(rows: &[LatencyRow]) {
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "{:>4} {:<5} {:<9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
        "subs",
        "wait",
        "transport",
        "samples",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "p50 s/cb",
        "p99 s/cb"
    );
    let mut per_round = Vec::new();
    for row in rows {
        for (name, h) in [("shmbus", &row.shm), ("crossbeam", &row.cb)] {
            let ratios = if name == "shmbus" {
                let r = |p| format!("{:.2}x", q(h, p) as f64 / q(&row.cb, p) as f64);
                (r(0.50), r(0.99))
            } else {
                (String::new(), String::new())
            };
            println!(
                "{:>4} {:<5} {:<9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
                row.subs,
                row.wait.label(),
                name,
                h.len(),
                q(h, 0.50),
                q(h, 0.99),
                q(h, 0.999),
                q(h, 0.9999),
                h.max(),
                ratios.0,
                ratios.1,
            );
        }
        per_round.push(format!(
            "{} {}: {:.2}x",
            row.subs,
            row.wait.label(),
            common::median_ratio(&row.rounds.0, &row.rounds.1)
        ));
    }
    println!(
        "p50 shmbus / crossbeam, median of per-round ratios (subscribers, wait): {}",
        per_round.join(", ")
    );
}

// ---------------------------------------------------------------------------
// 2. Publish cost per record
// ---------------------------------------------------------------------------

/// Publishes `n` records from `*seq` on, returning the time it took.
#[inline(never)]
fn timed_publishes<O: Outbox>(out: &mut O, n: u64, seq: &mut u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        out.publish(*seq, 0);
        *seq += 1;
    }
    start.elapsed()
}

/// `bursts` timed bursts of [`BURST`] publishes (records `1..`), calling
/// `between` with the last sequence published before each; pushes ns per
/// record of each burst to `into` and returns the next sequence.
fn time_bursts<O: Outbox>(
    out: &mut O,
    bursts: usize,
    into: &mut Vec<f64>,
    mut between: impl FnMut(u64),
) -> u64 {
    let mut seq = 1;
    for _ in 0..bursts {
        between(seq - 1);
        let t = timed_publishes(out, BURST, &mut seq);
        into.push(t.as_nanos() as f64 / BURST as f64);
    }
    between(seq - 1);
    seq
}

/// Bursts to subscribers reading on their own threads: between bursts the
/// publisher waits until every one has read everything.
fn live_bursts<O: Outbox, I: Inbox>(
    name: &str,
    out: &mut O,
    inboxes: Vec<I>,
    bursts: usize,
    cores: usize,
    into: &mut Vec<f64>,
) {
    let progress: Vec<CachePadded<AtomicU64>> = inboxes
        .iter()
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect();
    let progress = &progress;
    std::thread::scope(|s| {
        let handles: Vec<_> = inboxes
            .into_iter()
            .enumerate()
            .map(|(i, mut inbox)| {
                s.spawn(move || {
                    pin_subscriber(i, cores);
                    let mut expected = 1;
                    loop {
                        let (seq, _) = inbox.next(Wait::Yield);
                        if seq == STOP {
                            return;
                        }
                        assert_eq!(seq, expected, "{name}: subscriber {i} got the wrong record");
                        expected += 1;
                        // SYNC POINT: pairs with the publisher's Acquire load.
                        progress[i].store(seq, Ordering::Release);
                    }
                })
            })
            .collect();
        time_bursts(out, bursts, into, |last| {
            let mut polls = 0u32;
            while progress.iter().any(|p| p.load(Ordering::Acquire) < last) {
                polls = polls.wrapping_add(1);
                if polls % (1 << 16) == 0 {
                    check_alive(&handles, name);
                }
                std::thread::yield_now();
            }
        });
        out.publish(STOP, 0);
        for h in handles {
            h.join().expect("subscriber thread");
        }
    });
}

/// Checks what idle `Overwrite` subscribers hold after records `1..end`: the
/// loss each reports plus what it reads is exactly everything, in order.
fn check_overwrite_subscribers(subs: &mut [Subscriber], end: u64) {
    let mut buf = [0u8; RECORD];
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut expected = 1;
        loop {
            match sub.try_recv(&mut buf) {
                Ok((_, len)) => {
                    let (seq, _) = parse(&buf[..len]);
                    assert_eq!(seq, expected, "shmbus overwrite: subscriber {i}");
                    expected += 1;
                }
                Err(RecvError::Lapped { missed }) => expected += missed,
                Err(RecvError::Empty) => break,
                Err(e) => panic!("shmbus overwrite: subscriber {i}: {e}"),
            }
        }
        assert_eq!(expected, end, "shmbus overwrite: subscriber {i} lost count");
    }
}

/// Median ns per record of each cell of the publish-cost table.
struct CostRow {
    subs: usize,
    shm_idle: Vec<f64>,
    shm_live: Vec<f64>,
    cb_idle: Vec<f64>,
    cb_live: Vec<f64>,
}

fn publish_cost(
    overwrite: &Topic,
    backpressure: &Topic,
    cores: usize,
    bursts: usize,
    rounds: usize,
) -> (Vec<CostRow>, u64) {
    let mut rows: Vec<CostRow> = COST_SUBS
        .iter()
        .map(|&subs| CostRow {
            subs,
            shm_idle: Vec::new(),
            shm_live: Vec::new(),
            cb_idle: Vec::new(),
            cb_live: Vec::new(),
        })
        .collect();
    let per_round = bursts.div_ceil(rounds);
    let mut idle_out = ShmOutbox::new(overwrite, Wait::Spin);
    let mut live_out = ShmOutbox::new(backpressure, Wait::Yield);
    for _ in 0..rounds {
        for row in &mut rows {
            let k = row.subs;

            let mut subs = shm_subscribers(overwrite, k);
            let end = time_bursts(&mut idle_out, per_round, &mut row.shm_idle, |_| {});
            check_overwrite_subscribers(&mut subs, end);
            drop(subs);

            let subs = shm_subscribers(backpressure, k);
            live_bursts(
                "shmbus",
                &mut live_out,
                subs,
                per_round,
                cores,
                &mut row.shm_live,
            );

            if k > 0 {
                let (mut out, rxs) = cb_fan_out(k, BURST, Wait::Spin);
                let mut next = 1;
                time_bursts(&mut out, per_round, &mut row.cb_idle, |last| {
                    drain_checked(&rxs, next, last + 1);
                    next = last + 1;
                });

                let (mut out, rxs) = cb_fan_out(k, u64::from(SLOTS), Wait::Yield);
                live_bursts(
                    "crossbeam",
                    &mut out,
                    rxs,
                    per_round,
                    cores,
                    &mut row.cb_live,
                );
            }
        }
    }
    (rows, live_out.fulls)
}

fn print_cost(rows: &[CostRow]) {
    let med = |v: &[f64]| -> Option<f64> {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let one = rows
        .iter()
        .find(|r| r.subs == 1)
        .expect("a one-subscriber row");
    let base = [&one.shm_idle, &one.shm_live, &one.cb_idle, &one.cb_live].map(|v| med(v));
    println!(
        "{:>4} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>10} {:>10}",
        "subs",
        "shm idle",
        "vs 1",
        "shm live",
        "vs 1",
        "cb idle",
        "vs 1",
        "cb live",
        "vs 1",
        "idle s/cb",
        "live s/cb"
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    };
    let ns = |a: Option<f64>| a.map_or("-".to_owned(), |a| format!("{a:.1}"));
    for r in rows {
        let cells = [&r.shm_idle, &r.shm_live, &r.cb_idle, &r.cb_live].map(|v| med(v));
        println!(
            "{:>4} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>10} {:>10}",
            r.subs,
            ns(cells[0]),
            ratio(cells[0], base[0]),
            ns(cells[1]),
            ratio(cells[1], base[1]),
            ns(cells[2]),
            ratio(cells[2], base[2]),
            ns(cells[3]),
            ratio(cells[3], base[3]),
            ratio(cells[0], cells[2]),
            ratio(cells[1], cells[3]),
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Throughput with two publishers
// ---------------------------------------------------------------------------

/// Publisher `p`'s `i`-th record carries `p` in its top byte.
fn tagged(p: usize, i: u64) -> u64 {
    (p as u64) << 56 | i
}

/// Checks `seq` is the next record of its publisher; true once all
/// `per` records of every publisher have arrived.
#[inline(always)]
fn count_tagged(name: &str, next: &mut [u64], seq: u64, per: u64, got: &mut u64) -> bool {
    let p = (seq >> 56) as usize;
    let i = seq & ((1 << 56) - 1);
    assert!(p < next.len(), "{name}: record from unknown publisher {p}");
    assert_eq!(i, next[p], "{name}: publisher {p}'s records out of order");
    next[p] += 1;
    *got += 1;
    *got == per * next.len() as u64
}

/// `producers` publishers (core 0) publish `per` records each to one
/// subscriber (core 1); returns the subscriber's time from start to the
/// last record.
fn shm_throughput(topic: &Topic, producers: usize, per: u64, push: bool) -> Duration {
    let mut sub = topic
        .subscriber(StartAt::Tail)
        .expect("attach a subscriber");
    let outs: Vec<ShmOutbox> = (0..producers)
        .map(|_| {
            let mut out = ShmOutbox::new(topic, Wait::Yield);
            out.publisher.set_push_on_commit(push);
            out
        })
        .collect();
    let barrier = Barrier::new(producers + 1);
    let barrier = &barrier;
    std::thread::scope(|s| {
        for (p, mut out) in outs.into_iter().enumerate() {
            s.spawn(move || {
                pin_to(CORE_A);
                barrier.wait();
                for i in 0..per {
                    out.publish(tagged(p, i), 0);
                }
            });
        }
        let reader = s.spawn(move || {
            pin_to(CORE_B);
            let mut next = vec![0; producers];
            let mut got = 0;
            barrier.wait();
            let start = Instant::now();
            loop {
                match sub.try_read() {
                    Ok(rec) => {
                        if count_tagged("shmbus", &mut next, parse(&rec).0, per, &mut got) {
                            return start.elapsed();
                        }
                    }
                    Err(RecvError::Empty) => spin(),
                    Err(e) => panic!("shmbus read failed: {e}"),
                }
            }
        });
        reader.join().expect("subscriber thread")
    })
}

/// The same with a bounded crossbeam channel and `producers` senders.
fn cb_throughput(producers: usize, per: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<[u8; RECORD]>(SLOTS as usize);
    let barrier = Barrier::new(producers + 1);
    let barrier = &barrier;
    std::thread::scope(|s| {
        for p in 0..producers {
            let mut out = CbOutbox {
                txs: vec![tx.clone()],
                on_full: Wait::Yield,
            };
            s.spawn(move || {
                pin_to(CORE_A);
                barrier.wait();
                for i in 0..per {
                    out.publish(tagged(p, i), 0);
                }
            });
        }
        let reader = s.spawn(move || {
            pin_to(CORE_B);
            let mut next = vec![0; producers];
            let mut got = 0;
            barrier.wait();
            let start = Instant::now();
            loop {
                match rx.try_recv() {
                    Ok(item) => {
                        if count_tagged("crossbeam", &mut next, parse(&item).0, per, &mut got) {
                            return start.elapsed();
                        }
                    }
                    Err(TryRecvError::Empty) => spin(),
                    Err(TryRecvError::Disconnected) => panic!("crossbeam senders gone early"),
                }
            }
        });
        reader.join().expect("receiver thread")
    })
}

/// A throughput case: its label, the topic it publishes to, publishers,
/// and whether they push each record on commit (`set_push_on_commit`).
type ThroughputCase<'a> = (&'static str, &'a Topic, usize, bool);

fn throughput(topic: &Topic, sole: &Topic, records: u64, repeats: usize) -> Vec<ThroughputRow> {
    // A topic created for one publisher claims with plain stores (no
    // compare-and-swap on the tail); crossbeam has one sender either way.
    // The push case shows what `set_push_on_commit` costs a stream.
    let cases: [ThroughputCase; 4] = [
        ("1 pub (sole) -> 1 sub", sole, 1, false),
        ("1 pub -> 1 sub", topic, 1, false),
        ("2 pub -> 1 sub", topic, 2, false),
        ("1 pub (sole, push) -> 1 sub", sole, 1, true),
    ];
    let mut times: Vec<[Vec<Duration>; 2]> = cases.iter().map(|_| Default::default()).collect();
    // Each case's floor before its round: which mode the round saw.
    let mut floors: Vec<Vec<u64>> = cases.iter().map(|_| Vec::new()).collect();
    for _ in 0..repeats {
        for (n, &(_, topic, producers, push)) in cases.iter().enumerate() {
            let per = records / producers as u64;
            floors[n].push(common::floor_probe_ns(2_000));
            times[n][0].push(shm_throughput(topic, producers, per, push));
            times[n][1].push(cb_throughput(producers, per));
        }
    }
    for (n, &(label, _, _, _)) in cases.iter().enumerate() {
        let secs = |t: &[Duration]| t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
        common::print_ratio_by_mode(
            &format!("{label}, shmbus / crossbeam"),
            &secs(&times[n][1]),
            &secs(&times[n][0]),
            &floors[n],
        );
    }
    let mut rows = Vec::new();
    for (n, &(label, _, producers, _)) in cases.iter().enumerate() {
        let per = records / producers as u64;
        for (t, name) in ["shmbus", "crossbeam"].into_iter().enumerate() {
            let samples = &mut times[n][t];
            let time = median(samples);
            rows.push(ThroughputRow {
                name: format!("{name} {label}"),
                size: RECORD,
                records: per * producers as u64,
                time,
                spread: (samples[0], samples[samples.len() - 1]),
                baseline: (t == 0).then_some(rows.len() + 1),
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------

/// Records per burst of [`phases`]: half the sole topic, so a burst never
/// waits for the subscriber.
const PHASE_BURST: u64 = SLOTS as u64 / 2;

/// The publisher (core 0) and the subscriber (core 1) of `topic` in turn,
/// `bursts` times [`PHASE_BURST`] records: (publish, read) ns per record,
/// each the total over all bursts of that side.
fn phases(topic: &Topic, bursts: u64) -> (f64, f64) {
    let mut publisher = topic.publisher().expect("attach a publisher");
    let mut subscriber = topic
        .subscriber(StartAt::Tail)
        .expect("attach a subscriber");
    // Even: the publisher's turn; odd: the subscriber's.
    let turn = AtomicU64::new(0);
    let turn = &turn;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            pin_to(CORE_A);
            let mut spent = Duration::ZERO;
            let mut seq = 0;
            for b in 0..bursts {
                // SYNC POINT: pairs with the subscriber's Release store.
                while turn.load(Ordering::Acquire) != 2 * b {
                    spin();
                }
                let start = Instant::now();
                for _ in 0..PHASE_BURST {
                    let mut claim = publisher.try_claim(RECORD).expect("room for a burst");
                    fill(&mut claim, seq, 0);
                    claim.commit().expect("committed");
                    seq += 1;
                }
                spent += start.elapsed();
                // SYNC POINT: pairs with the subscriber's Acquire load.
                turn.store(2 * b + 1, Ordering::Release);
            }
            spent
        });
        let reader = s.spawn(move || {
            pin_to(CORE_B);
            let mut spent = Duration::ZERO;
            let mut next = 0;
            for b in 0..bursts {
                // SYNC POINT: pairs with the publisher's Release store.
                while turn.load(Ordering::Acquire) != 2 * b + 1 {
                    spin();
                }
                let start = Instant::now();
                for _ in 0..PHASE_BURST {
                    let record = subscriber.try_read().expect("a published record");
                    assert_eq!(parse(&record).0, next, "records in order");
                    next += 1;
                }
                spent += start.elapsed();
                // SYNC POINT: pairs with the publisher's Acquire load.
                turn.store(2 * b + 2, Ordering::Release);
            }
            spent
        });
        let per_record = |d: Duration| d.as_nanos() as f64 / (bursts * PHASE_BURST) as f64;
        (
            per_record(writer.join().expect("publisher thread")),
            per_record(reader.join().expect("subscriber thread")),
        )
    })
}

// ---------------------------------------------------------------------------
// Fences
// ---------------------------------------------------------------------------

/// `membarrier(2)` commands (linux/membarrier.h).
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1 << 0;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// One `membarrier(2)` call; its return value.
fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes a command and two integer flags; it touches
    // no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }
}

/// ns per operation of each side a Dekker pair could use: median over
/// `rounds` of the mean of a timed loop (`calls` system calls for the
/// `membarrier` rows, a million operations for the others).
fn fence_costs(rounds: usize, calls: u32) -> Vec<(&'static str, f64)> {
    let line = CachePadded::new(AtomicU64::new(0));
    let other = CachePadded::new(AtomicU64::new(0));
    let per_op = |n: u32, f: &dyn Fn(u64)| {
        let mut means: Vec<f64> = (0..rounds.max(1))
            .map(|_| {
                let t = Instant::now();
                for i in 0..u64::from(n) {
                    f(i);
                }
                t.elapsed().as_nanos() as f64 / f64::from(n)
            })
            .collect();
        means.sort_by(f64::total_cmp);
        means[means.len() / 2]
    };
    const OPS: u32 = 1_000_000;
    let mut rows = vec![
        (
            "compare-and-swap (SeqCst) + SeqCst load",
            per_op(OPS, &|i| {
                let _ = line.compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::Relaxed);
                std::hint::black_box(other.load(Ordering::SeqCst));
            }),
        ),
        (
            "compare-and-swap + SeqCst fence + load",
            per_op(OPS, &|i| {
                let _ = line.compare_exchange(i, i + 1, Ordering::Release, Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::SeqCst);
                std::hint::black_box(other.load(Ordering::Relaxed));
            }),
        ),
    ];
    let registered = membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
    for (name, cmd) in [
        ("membarrier(MEMBARRIER_CMD_GLOBAL)", MEMBARRIER_CMD_GLOBAL),
        (
            "membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)",
            MEMBARRIER_CMD_GLOBAL_EXPEDITED,
        ),
    ] {
        if cmd == MEMBARRIER_CMD_GLOBAL_EXPEDITED && !registered {
            println!("{name}: registration refused, not timed");
            continue;
        }
        if membarrier(cmd) != 0 {
            println!("{name}: refused here, not timed");
            continue;
        }
        rows.push((
            name,
            per_op(calls, &|_| {
                membarrier(cmd);
            }),
        ));
    }
    if registered {
        // What a sleeper pays while a publisher runs: a thread of this
        // (registered) process spinning on the other core, which every
        // call interrupts.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let cost = std::thread::scope(|s| {
            s.spawn(|| {
                pin_to(CORE_B);
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            let cost = per_op(calls, &|_| {
                membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
            });
            stop.store(true, Ordering::Relaxed);
            cost
        });
        rows.push(("  the same, registered thread spinning on core 1", cost));
    }
    rows
}

// ---------------------------------------------------------------------------
// Criterion
// ---------------------------------------------------------------------------

fn criterion_benches(c: &mut Criterion, overwrite: &Topic) {
    for k in [1, 16] {
        let mut out = ShmOutbox::new(overwrite, Wait::Spin);
        let subs = shm_subscribers(overwrite, k);
        let mut seq = 1;
        c.bench_function(&format!("publish_64B/shmbus_{k}_idle_subs"), |b| {
            b.iter_custom(|iters| timed_publishes(&mut out, iters, &mut seq))
        });
        drop(subs);

        let (mut out, rxs) = cb_fan_out(k, BURST, Wait::Spin);
        let mut seq = 1;
        c.bench_function(&format!("publish_64B/crossbeam_{k}_channels"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BURST);
                    let first = seq;
                    total += timed_publishes(&mut out, n, &mut seq);
                    drain_checked(&rxs, first, seq);
                    left -= n;
                }
                total
            })
        });
    }
}

// ---------------------------------------------------------------------------
// 4. Overwrite reads
// ---------------------------------------------------------------------------

/// Latency of one spinning subscriber on `topic` (an `Overwrite` topic),
/// borrowing and copying in alternate runs: `[borrow, copy]`.
fn overwrite_latency(
    topic: &Topic,
    cores: usize,
    samples: usize,
    rounds: usize,
) -> [Histogram<u64>; 2] {
    let mut hists = [common::latency_histogram(), common::latency_histogram()];
    let per_round = samples.div_ceil(rounds) as u64;
    let mut pacing = Pacing {
        warmup: (per_round / 10).clamp(50, 2_000),
        samples: per_round,
        cores,
        rng: 0x2545_F491_4F6C_DD1D,
    };
    let mut out = ShmOutbox::new(topic, Wait::Spin);
    for _ in 0..rounds {
        let subs = shm_subscribers(topic, 1);
        latency_run(
            "borrow",
            &mut out,
            subs,
            Wait::Spin,
            &mut pacing,
            &mut hists[0],
        );
        let subs = shm_subscribers(topic, 1)
            .into_iter()
            .map(CopyInbox)
            .collect();
        latency_run(
            "copy",
            &mut out,
            subs,
            Wait::Spin,
            &mut pacing,
            &mut hists[1],
        );
    }
    hists
}

/// The read path alone: `BURST` records published on `topic` (an
/// `Overwrite` topic, so nobody is held back), then read back by one
/// subscriber on this thread with no publisher running, timed per burst.
/// Returns the median ns per record of `bursts` bursts, borrowing (checked
/// with `is_intact` after use, as a zero-copy `Overwrite` read once had to
/// be) and copying: `[borrow, copy]`.
fn overwrite_read_cost(topic: &Topic, bursts: usize) -> [f64; 2] {
    let mut publisher = topic.publisher().expect("attach a publisher");
    let mut sub = topic
        .subscriber(StartAt::Tail)
        .expect("attach a subscriber");
    let mut record = TEMPLATE;
    let mut seq = 0u64;
    let mut times = [Vec::new(), Vec::new()];
    for burst in 0..bursts * 2 {
        let copy = burst % 2 == 1;
        for _ in 0..BURST {
            stamp(&mut record, seq);
            publisher
                .try_send(1, &record)
                .expect("overwrite never waits");
            seq += 1;
        }
        let mut buf = [0u8; RECORD];
        let t0 = Instant::now();
        for _ in 0..BURST {
            let front = if copy {
                let (_, len) = sub.try_recv(&mut buf).expect("a record");
                seq_of(&buf[..len])
            } else {
                let rec = sub.try_read().expect("a record");
                let front = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
                assert!(rec.is_intact(), "no publisher runs");
                front
            };
            std::hint::black_box(front);
        }
        times[usize::from(copy)].push(t0.elapsed());
    }
    times.map(|mut t| median(&mut t).as_nanos() as f64 / BURST as f64)
}

fn print_overwrite(hists: &[Histogram<u64>; 2], cost: [f64; 2]) {
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "{:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>8} {:>12}",
        "read", "samples", "p50", "p99", "p99.9", "p99.99", "max", "ns/record"
    );
    for ((name, h), ns) in ["borrow", "copy"].iter().zip(hists).zip(cost) {
        println!(
            "{:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>8} {:>12.1}",
            name,
            h.len(),
            q(h, 0.5),
            q(h, 0.99),
            q(h, 0.999),
            q(h, 0.9999),
            h.max(),
            ns
        );
    }
}

fn main() {
    let quick = common::quick_mode();
    let scale = common::env_count("SHMBUS_BENCH_SAMPLES", if quick { 300 } else { 20_000 });
    let rounds = common::env_count("SHMBUS_BENCH_ROUNDS", if quick { 1 } else { 4 });
    let cores = core_affinity::get_core_ids().map_or(1, |ids| ids.len());

    // This thread publishes (and runs criterion's timing loop).
    pin_to(CORE_A);

    let dir = common::TempNs::named("bench-broadcast", "bench");
    let bus = Bus::at(&dir.base, dir.ns.name()).expect("open the bench bus");
    let topic = |name, policy| {
        bus.topic(name, &topic_config(policy))
            .expect("create a bench topic")
    };
    let sole_topic = bus
        .topic(
            "throughput_sole",
            &TopicConfig {
                max_publishers: 1,
                ..topic_config(Policy::Backpressure)
            },
        )
        .expect("create a bench topic");
    let lat_topic = topic("latency", Policy::Backpressure);
    let cost_ow = topic("cost_overwrite", Policy::Overwrite);
    let cost_bp = topic("cost_backpressure", Policy::Backpressure);
    let tput_topic = topic("throughput", Policy::Backpressure);
    let ow_topic = topic("overwrite", Policy::Overwrite);

    let parts = std::env::var("SHMBUS_BENCH_PARTS")
        .unwrap_or_else(|_| "latency,cost,throughput,overwrite,fences,phases".to_owned());
    let part = |name| !common::list_mode() && parts.split(',').any(|p| p.trim() == name);
    if part("latency") {
        let rows = latency(&lat_topic, cores, scale, rounds);
        println!();
        println!(
            "publish-to-receive latency, {RECORD}-byte records, ns (CLOCK_MONOTONIC stamp to \
             receipt; publisher on core {CORE_A}, subscribers on the other {} core(s); one record \
             10-20 us after all read the last; {rounds} interleaved rounds; s/cb = shmbus/crossbeam)",
            cores.saturating_sub(1)
        );
        print_latency(&rows);
    }
    if part("cost") {
        let bursts = (scale / 100).max(4);
        let (rows, fulls) = publish_cost(&cost_ow, &cost_bp, cores, bursts, rounds);
        println!();
        println!(
            "publish cost, ns per {RECORD}-byte record (median of {bursts} bursts of {BURST} on \
             core {CORE_A}; idle: Overwrite topic, subscribers never read / crossbeam drained \
             between bursts; live: Backpressure topic / crossbeam, subscribers reading on the \
             other core(s); vs 1 = ratio to the 1-subscriber row; s/cb = shmbus/crossbeam)"
        );
        print_cost(&rows);
        if fulls > 0 {
            println!("note: the live publisher found the log full {fulls} times");
        }
    }
    if part("throughput") {
        let records = scale as u64 * 50;
        let rows = throughput(&tput_topic, &sole_topic, records, (rounds * 4).max(2));
        println!();
        println!(
            "broadcast throughput, Backpressure topic vs bounded crossbeam channel of \
             {SLOTS} (publishers share core {CORE_A}, subscriber on core {CORE_B}; ratio = \
             shmbus/crossbeam)"
        );
        common::print_throughput_table(&rows);
        println!();
    }

    if part("overwrite") {
        let hists = overwrite_latency(&ow_topic, cores, scale, rounds);
        let bursts = (scale / 100).max(4);
        let cost = overwrite_read_cost(&ow_topic, bursts);
        println!();
        println!(
            "Overwrite reads, {RECORD}-byte records: publish-to-receive latency in ns of one \
             spinning subscriber on core {CORE_B} (publisher on core {CORE_A}, paced as above, \
             {rounds} interleaved rounds); ns/record: the read path alone, median of {bursts} \
             bursts of {BURST} reads with no publisher running"
        );
        print_overwrite(&hists, cost);
        println!();
    }

    if part("fences") {
        println!();
        println!(
            "the two sides of a Dekker pair, ns per operation on core {CORE_A} (median of \
             {rounds} rounds)"
        );
        for (name, ns) in fence_costs(rounds, if quick { 2 } else { 20 }) {
            println!("{name:<52} {ns:>12.1}");
        }
        println!();
    }

    if part("phases") {
        let bursts = if quick { 4 } else { 400 };
        let (publish, read) = phases(&sole_topic, bursts);
        println!();
        println!(
            "a sole topic's sides in turn, ns per {RECORD}-byte record: the publisher on core \
             {CORE_A} publishes {PHASE_BURST}, then the subscriber on core {CORE_B} reads them \
             ({bursts} bursts)"
        );
        println!("publish {publish:>8.1}    read {read:>8.1}");
        println!();
    }

    if std::env::var_os("SHMBUS_BENCH_NO_CRITERION").is_none() {
        let mut c = common::criterion(Duration::from_millis(500), Duration::from_secs(2));
        criterion_benches(&mut c, &cost_ow);
        c.final_summary();
    }

    drop((
        lat_topic, cost_ow, cost_bp, tput_topic, sole_topic, ow_topic,
    ));
    drop(bus);
}
