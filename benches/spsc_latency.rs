//! One-way latency of 64-byte records between two pinned threads.
//!
//! Thread A (core 0) sends a record carrying a sequence number, thread B
//! (core 1) echoes it back through a second channel, and A waits for it;
//! each round trip is timed and half of it is recorded, in nanoseconds, in
//! an hdrhistogram per transport. All transports run in the same process,
//! interleaved in rounds so that noise from a shared machine falls on all of
//! them alike:
//!
//! * `floor`: a raw cache-line ping-pong, two `AtomicU64` on their own
//!   128-byte lines; no transport can beat it.
//! * `shmbus spsc`: two shared-memory SPSC rings in a namespace under
//!   `/dev/shm`, zero-copy claim/commit and read/release, busy-spinning.
//! * `rtrb`: two `rtrb` rings of `[u8; 64]` items, busy-spinning.
//! * `unix socket`: a `UnixStream::pair()`, blocking `write_all`/`read_exact`.
//!
//! Every record is checked on arrival (sequence number at both ends of the
//! payload), so a broken ring fails the bench instead of timing it.
//!
//! The main output is a table of p50, p99, p99.9, p99.99 and max with each
//! transport's p50 and p99 as a ratio of the floor's; criterion then times
//! the mean round trip / 2 of the floor, shmbus and rtrb with `iter_custom`.
//!
//! ```text
//! cargo bench --bench spsc_latency
//! SHMBUS_BENCH_SAMPLES=1000000 cargo bench --bench spsc_latency
//! cargo test --benches     # smoke test: a few thousand samples, criterion once
//! ```
//!
//! `SHMBUS_BENCH_SAMPLES` (default 200 000) is the number of samples per
//! transport; `SHMBUS_BENCH_ROUNDS` (default 20) how many interleaved rounds
//! they are split into.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use shmbus::ring::spsc::SpscConfig;

use common::pingpong::{Echoer, Pinger, SpscEchoer, SpscPinger, RECORD, TEMPLATE};
use common::{expect_seq, seq_of, spin, stamp, CORE_A, CORE_B};

/// Flag on a sequence number that tells the echoer to stop (after echoing
/// it). The stop record carries a fresh sequence too, so that two stops in a
/// row still differ (the floor's echoer only reacts to a changed value).
const STOP: u64 = 1 << 63;
/// Data region of each shmbus ring (a ping-pong never has more than one
/// record in flight; the size only matters for how often it wraps).
const SHM_CAPACITY: usize = 1 << 16;
/// Items in each rtrb ring.
const RTRB_CAPACITY: usize = 1024;

// ---------------------------------------------------------------------------
// floor: raw cache-line ping-pong
// ---------------------------------------------------------------------------

/// Two lines, each written by one side only.
#[derive(Default)]
struct Lines {
    ping: CachePadded<AtomicU64>,
    pong: CachePadded<AtomicU64>,
}

struct FloorPinger(Arc<Lines>);

struct FloorEchoer {
    lines: Arc<Lines>,
    last: u64,
}

impl Pinger for FloorPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        self.0.ping.store(seq, Ordering::Release);
        while self.0.pong.load(Ordering::Acquire) != seq {
            spin();
        }
    }
}

impl Echoer for FloorEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        loop {
            let seq = self.lines.ping.load(Ordering::Acquire);
            if seq != self.last {
                self.last = seq;
                self.lines.pong.store(seq, Ordering::Release);
                return seq;
            }
            spin();
        }
    }
}

fn floor() -> (FloorPinger, FloorEchoer) {
    let lines = Arc::new(Lines::default());
    let echoer = FloorEchoer {
        lines: lines.clone(),
        last: 0,
    };
    (FloorPinger(lines), echoer)
}

// ---------------------------------------------------------------------------
// shmbus: two shared-memory SPSC rings
// ---------------------------------------------------------------------------

fn shmbus(dir: &common::TempNs) -> (SpscPinger, SpscEchoer) {
    let config = SpscConfig::with_capacity(SHM_CAPACITY);
    let bus = dir.bus();
    let open = |name| {
        let ring = bus.spsc(name, &config).expect("create a bench ring");
        let tx = ring.producer().expect("attach producer");
        let rx = ring.consumer().expect("attach consumer");
        (tx, rx)
    };
    let (ping_tx, ping_rx) = open("ping");
    let (pong_tx, pong_rx) = open("pong");
    (
        SpscPinger {
            tx: ping_tx,
            rx: pong_rx,
        },
        SpscEchoer {
            rx: ping_rx,
            tx: pong_tx,
        },
    )
}

// ---------------------------------------------------------------------------
// rtrb: two in-process rings of [u8; 64]
// ---------------------------------------------------------------------------

struct RtrbPinger {
    tx: rtrb::Producer<[u8; RECORD]>,
    rx: rtrb::Consumer<[u8; RECORD]>,
}

struct RtrbEchoer {
    rx: rtrb::Consumer<[u8; RECORD]>,
    tx: rtrb::Producer<[u8; RECORD]>,
}

#[inline(always)]
fn rtrb_send(tx: &mut rtrb::Producer<[u8; RECORD]>, mut item: [u8; RECORD]) {
    while let Err(rtrb::PushError::Full(back)) = tx.push(item) {
        item = back;
        spin();
    }
}

#[inline(always)]
fn rtrb_recv(rx: &mut rtrb::Consumer<[u8; RECORD]>) -> [u8; RECORD] {
    loop {
        match rx.pop() {
            Ok(item) => return item,
            Err(rtrb::PopError::Empty) => spin(),
        }
    }
}

impl Pinger for RtrbPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let mut item = TEMPLATE;
        stamp(&mut item, seq);
        rtrb_send(&mut self.tx, item);
        expect_seq("rtrb", &rtrb_recv(&mut self.rx), seq);
    }
}

impl Echoer for RtrbEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        let item = rtrb_recv(&mut self.rx);
        rtrb_send(&mut self.tx, item);
        seq_of(&item)
    }
}

fn rtrb_pair() -> (RtrbPinger, RtrbEchoer) {
    let (ping_tx, ping_rx) = rtrb::RingBuffer::new(RTRB_CAPACITY);
    let (pong_tx, pong_rx) = rtrb::RingBuffer::new(RTRB_CAPACITY);
    (
        RtrbPinger {
            tx: ping_tx,
            rx: pong_rx,
        },
        RtrbEchoer {
            rx: ping_rx,
            tx: pong_tx,
        },
    )
}

// ---------------------------------------------------------------------------
// Unix domain socket pair
// ---------------------------------------------------------------------------

struct UdsPinger(UnixStream);
struct UdsEchoer(UnixStream);

impl Pinger for UdsPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let mut buf = TEMPLATE;
        stamp(&mut buf, seq);
        self.0.write_all(&buf).expect("unix socket write");
        self.0.read_exact(&mut buf).expect("unix socket read");
        expect_seq("unix socket", &buf, seq);
    }
}

impl Echoer for UdsEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        let mut buf = [0u8; RECORD];
        self.0.read_exact(&mut buf).expect("unix socket read");
        self.0.write_all(&buf).expect("unix socket write");
        seq_of(&buf)
    }
}

fn unix_socket() -> (UdsPinger, UdsEchoer) {
    let (a, b) = UnixStream::pair().expect("unix socket pair");
    (UdsPinger(a), UdsEchoer(b))
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

/// A transport's two sides, its histogram and the next sequence number
/// (sequences run on across rounds; the echoer is restarted for each).
struct PingPong<P, E> {
    name: &'static str,
    pinger: P,
    echoer: E,
    next: u64,
    hist: Histogram<u64>,
    /// Each round's p50, in ns.
    round_p50: Vec<f64>,
}

impl<P: Pinger, E: Echoer + Send> PingPong<P, E> {
    fn new(name: &'static str, (pinger, echoer): (P, E)) -> Self {
        PingPong {
            name,
            pinger,
            echoer,
            next: 1,
            hist: common::latency_histogram(),
            round_p50: Vec::new(),
        }
    }

    /// Runs `body` on this (core 0) thread while the echoer serves on core 1,
    /// then stops the echoer. `body` gets the pinger, the next sequence and
    /// the histogram.
    fn with_echoer<R>(
        &mut self,
        body: impl FnOnce(&mut P, &mut u64, &mut Histogram<u64>) -> R,
    ) -> R {
        let name = self.name;
        let first = self.next;
        let echoer = &mut self.echoer;
        std::thread::scope(|s| {
            let server = s.spawn(move || {
                common::pin_to(CORE_B);
                let mut expected = first;
                loop {
                    let seq = echoer.echo();
                    assert_eq!(seq & !STOP, expected, "{name}: echoer got record {seq}");
                    expected += 1;
                    if seq & STOP != 0 {
                        return;
                    }
                }
            });
            let out = body(&mut self.pinger, &mut self.next, &mut self.hist);
            self.pinger.round_trip(self.next | STOP);
            self.next += 1;
            server.join().expect("echo thread");
            out
        })
    }

    /// Warms up with `warmup` round trips, then records `samples` of them
    /// (a round), keeping the round's p50.
    fn sample(&mut self, warmup: usize, samples: usize) {
        let name = self.name;
        let mut round = common::latency_histogram();
        self.with_echoer(|pinger, next, _| {
            let hist = &mut round;
            for _ in 0..warmup {
                pinger.round_trip(*next);
                *next += 1;
            }
            for _ in 0..samples {
                let start = Instant::now();
                pinger.round_trip(*next);
                let rtt = start.elapsed();
                *next += 1;
                let one_way = (rtt.as_nanos() / 2).max(1) as u64;
                hist.record(one_way)
                    .unwrap_or_else(|e| panic!("{name}: {one_way} ns out of range: {e}"));
            }
        });
        self.round_p50.push(round.value_at_quantile(0.5) as f64);
        self.hist.add(&round).expect("same bounds");
    }

    /// Registers a criterion benchmark of the mean one-way latency.
    fn criterion(&mut self, c: &mut Criterion) {
        let id = format!("one_way_64B/{}", self.name);
        self.with_echoer(|pinger, next, _| {
            c.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        pinger.round_trip(*next);
                        *next += 1;
                    }
                    start.elapsed() / 2
                })
            });
        });
    }
}

fn main() {
    common::exit_on_panic();
    let quick = common::quick_mode();
    let samples = common::env_count("SHMBUS_BENCH_SAMPLES", if quick { 2_000 } else { 200_000 });
    let rounds = common::env_count("SHMBUS_BENCH_ROUNDS", if quick { 2 } else { 20 });
    let per_round = samples.div_ceil(rounds);
    let warmup = (per_round / 4).clamp(100, 5_000);

    // Thread A is this thread: criterion's timing loop runs on it too.
    common::pin_to(CORE_A);

    let dir = common::TempNs::named("bench-latency", "bench");
    let mut floor = PingPong::new("floor", floor());
    let mut shm = PingPong::new("shmbus spsc", shmbus(&dir));
    let mut rtrb = PingPong::new("rtrb", rtrb_pair());
    let mut uds = PingPong::new("unix socket", unix_socket());

    if !common::list_mode() {
        for _ in 0..rounds {
            floor.sample(warmup, per_round);
            shm.sample(warmup, per_round);
            rtrb.sample(warmup, per_round);
            uds.sample(warmup, per_round);
        }
        let timer = common::timer_overhead();
        println!();
        println!(
            "one-way latency, {RECORD}-byte records, ns (round trip / 2; cores {CORE_A} and {CORE_B}; \
             {rounds} interleaved rounds; Instant::now() pair = {} ns per round trip; \
             load average {})",
            timer.as_nanos(),
            common::load_average()
        );
        common::print_latency_table(
            &[
                common::LatencyRow {
                    name: floor.name,
                    hist: &floor.hist,
                },
                common::LatencyRow {
                    name: shm.name,
                    hist: &shm.hist,
                },
                common::LatencyRow {
                    name: rtrb.name,
                    hist: &rtrb.hist,
                },
                common::LatencyRow {
                    name: uds.name,
                    hist: &uds.hist,
                },
            ],
            0,
        );
        println!(
            "p50, median of per-round ratios: shmbus spsc / floor {:.2}x, rtrb / floor {:.2}x, \
             shmbus spsc / rtrb {:.2}x",
            common::median_ratio(&shm.round_p50, &floor.round_p50),
            common::median_ratio(&rtrb.round_p50, &floor.round_p50),
            common::median_ratio(&shm.round_p50, &rtrb.round_p50),
        );
        let floors: Vec<String> = floor.round_p50.iter().map(|p| format!("{p}")).collect();
        println!("each round's floor p50, ns: {}", floors.join(" "));
        println!();
    }

    let mut c = common::criterion(Duration::from_millis(500), Duration::from_secs(2));
    floor.criterion(&mut c);
    shm.criterion(&mut c);
    rtrb.criterion(&mut c);
    c.final_summary();

    drop(shm);
    for name in ["ping", "pong"] {
        dir.bus().remove_spsc(name).expect("remove a bench ring");
    }
}
