//! Throughput of the SPSC ring against rtrb, 64-byte and 1 KiB records.
//!
//! A producer thread (core 0) sends N records, each stamped with its
//! sequence number at both ends, to a consumer thread (core 1), which checks
//! every one; the time runs from the start barrier to the last record
//! received. Each variant is repeated (interleaved with the others, so noise
//! from a shared machine falls on all alike) and the median is reported as
//! records/s and payload GB/s, with each shmbus row's ratio to its rtrb
//! counterpart measured in the same run:
//!
//! * `shmbus commit`: shared-memory ring (`/dev/shm`), one `try_claim` +
//!   `commit` per record and one `try_read` + release per record.
//! * `shmbus batch`: the same ring, the producer `stage`s records and
//!   `publish`es every `SHMBUS_BENCH_BATCH`, the consumer uses `read_batch`.
//! * `rtrb push/pop`: `rtrb` of `[u8; 64]` (or `[u8; 1024]`) items.
//! * `rtrb chunks`: `write_chunk_uninit` / `read_chunk` of up to
//!   `SHMBUS_BENCH_BATCH` items.
//!
//! Both rings hold about the same bytes (`SHMBUS_BENCH_RING_BYTES`, default
//! 256 KiB). Criterion then times every variant with `iter_custom`
//! (`Throughput::Elements`, one element per record).
//!
//! ```text
//! cargo bench --bench spsc_throughput
//! SHMBUS_BENCH_RECORDS=50_000_000 SHMBUS_BENCH_REPEATS=7 cargo bench --bench spsc_throughput
//! cargo test --benches     # smoke test: small counts, criterion once
//! ```
//!
//! `SHMBUS_BENCH_RECORDS` (default 20 M) is the number of 64-byte records per
//! repeat, `SHMBUS_BENCH_RECORDS_1K` (default 4 M) that of 1 KiB records,
//! `SHMBUS_BENCH_REPEATS` (default 5) the repeats whose median is reported,
//! `SHMBUS_BENCH_BATCH` (default 32) the batch of the batched variants, and
//! `SHMBUS_BENCH_ONLY=<text>` keeps only the variants whose name contains it
//! (to profile one).

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::Throughput;
use shmbus::ring::spsc::{ClaimError, Consumer, Producer, RecvError, SpscConfig};

use common::{expect_seq, spin, stamp, CORE_A, CORE_B};

/// Byte every payload is filled with before it is stamped.
const FILL: u8 = 0xA5;

/// Runs `produce` on core 0 and `consume` on core 1, both released by one
/// barrier; returns the consumer's time from the barrier to its return.
fn transfer<T: Send, R: Send>(
    tx: &mut T,
    rx: &mut R,
    n: u64,
    produce: fn(&mut T, u64),
    consume: fn(&mut R, u64),
) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            common::pin_to(CORE_A);
            barrier.wait();
            produce(tx, n);
        });
        let consumer = s.spawn(|| {
            common::pin_to(CORE_B);
            barrier.wait();
            let start = Instant::now();
            consume(rx, n);
            start.elapsed()
        });
        consumer.join().expect("consumer thread")
    })
}

/// Record `seq`: `S` bytes of [`FILL`] stamped with `seq` at both ends.
#[inline(always)]
fn item<const S: usize>(seq: u64) -> [u8; S] {
    let mut item = [FILL; S];
    stamp(&mut item, seq);
    item
}

// ---------------------------------------------------------------------------
// shmbus
// ---------------------------------------------------------------------------

/// The producing end of a shared-memory ring of `S`-byte records.
struct ShmTx<const S: usize> {
    tx: Producer,
    batch: usize,
}

/// The consuming end of a shared-memory ring.
struct ShmRx {
    rx: Consumer,
    batch: usize,
}

fn shm_ring<const S: usize>(
    dir: &common::TempNs,
    name: &str,
    bytes: usize,
    batch: usize,
) -> (ShmTx<S>, ShmRx) {
    let ring = dir
        .bus()
        .spsc(name, &SpscConfig::with_capacity(bytes))
        .expect("create a bench ring");
    let tx = ring.producer().expect("attach producer");
    let rx = ring.consumer().expect("attach consumer");
    (ShmTx { tx, batch }, ShmRx { rx, batch })
}

/// Writes record `seq` in place (the same bytes rtrb's items carry) and
/// commits it, or only stages it when `stage`; while the ring is full,
/// publishes what is staged (or the consumer could never free room) and
/// spins.
#[inline(always)]
fn shm_write<const S: usize>(tx: &mut ShmTx<S>, seq: u64, stage: bool) {
    loop {
        match tx.tx.try_claim(S) {
            Ok(mut slot) => {
                let payload: &mut [u8; S] = (&mut *slot).try_into().expect("claimed S bytes");
                *payload = item::<S>(seq);
                if stage {
                    slot.stage();
                } else {
                    slot.commit();
                }
                return;
            }
            Err(ClaimError::Full) => {
                tx.tx.flush();
                spin();
            }
            Err(e) => panic!("shmbus claim failed: {e}"),
        }
    }
}

fn shm_produce_commit<const S: usize>(tx: &mut ShmTx<S>, n: u64) {
    for seq in 0..n {
        shm_write(tx, seq, false);
    }
}

fn shm_consume_release(rx: &mut ShmRx, n: u64) {
    let mut seq = 0;
    while seq < n {
        match rx.rx.try_read() {
            Ok(rec) => {
                expect_seq("shmbus", &rec, seq);
                seq += 1;
            }
            Err(RecvError::Empty) => spin(),
            Err(e) => panic!("shmbus read failed: {e}"),
        }
    }
}

fn shm_produce_batch<const S: usize>(tx: &mut ShmTx<S>, n: u64) {
    let mut staged = 0;
    for seq in 0..n {
        shm_write(tx, seq, true);
        staged += 1;
        if staged == tx.batch {
            tx.tx.flush();
            staged = 0;
        }
    }
    tx.tx.flush();
}

fn shm_consume_batch(rx: &mut ShmRx, n: u64) {
    let mut seq = 0;
    while seq < n {
        let got = rx
            .rx
            .read_batch(rx.batch, |_, payload| {
                expect_seq("shmbus", payload, seq);
                seq += 1;
            })
            .unwrap_or_else(|e| panic!("shmbus read failed: {e}"));
        if got == 0 {
            spin();
        }
    }
}

// ---------------------------------------------------------------------------
// rtrb
// ---------------------------------------------------------------------------

/// The producing end of an rtrb ring of `S`-byte items.
struct RtrbTx<const S: usize> {
    tx: rtrb::Producer<[u8; S]>,
    batch: usize,
}

/// The consuming end of an rtrb ring of `S`-byte items.
struct RtrbRx<const S: usize> {
    rx: rtrb::Consumer<[u8; S]>,
    batch: usize,
}

fn rtrb_ring<const S: usize>(bytes: usize, batch: usize) -> (RtrbTx<S>, RtrbRx<S>) {
    let (tx, rx) = rtrb::RingBuffer::new(bytes / S);
    (RtrbTx { tx, batch }, RtrbRx { rx, batch })
}

fn rtrb_produce_push<const S: usize>(tx: &mut RtrbTx<S>, n: u64) {
    for seq in 0..n {
        let mut it = item::<S>(seq);
        while let Err(rtrb::PushError::Full(back)) = tx.tx.push(it) {
            it = back;
            spin();
        }
    }
}

fn rtrb_consume_pop<const S: usize>(rx: &mut RtrbRx<S>, n: u64) {
    let mut seq = 0;
    while seq < n {
        match rx.rx.pop() {
            Ok(it) => {
                expect_seq("rtrb", &it, seq);
                seq += 1;
            }
            Err(rtrb::PopError::Empty) => spin(),
        }
    }
}

fn rtrb_produce_chunks<const S: usize>(tx: &mut RtrbTx<S>, n: u64) {
    use rtrb::chunks::ChunkError::TooFewSlots;
    let mut seq = 0;
    while seq < n {
        let want = (n - seq).min(tx.batch as u64) as usize;
        let chunk = match tx.tx.write_chunk_uninit(want) {
            Ok(chunk) => chunk,
            Err(TooFewSlots(0)) => {
                spin();
                continue;
            }
            Err(TooFewSlots(have)) => tx
                .tx
                .write_chunk_uninit(have)
                .expect("slots were just counted"),
        };
        seq += chunk.fill_from_iter((seq..).map(item::<S>)) as u64;
    }
}

fn rtrb_consume_chunks<const S: usize>(rx: &mut RtrbRx<S>, n: u64) {
    use rtrb::chunks::ChunkError::TooFewSlots;
    let mut seq = 0;
    while seq < n {
        let want = (n - seq).min(rx.batch as u64) as usize;
        let chunk = match rx.rx.read_chunk(want) {
            Ok(chunk) => chunk,
            Err(TooFewSlots(0)) => {
                spin();
                continue;
            }
            Err(TooFewSlots(have)) => rx.rx.read_chunk(have).expect("items were just counted"),
        };
        let (a, b) = chunk.as_slices();
        for it in a.iter().chain(b) {
            expect_seq("rtrb", it, seq);
            seq += 1;
        }
        chunk.commit_all();
    }
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

/// One measured configuration: a name, its payload size, and a run of `n`
/// records returning the consumer's time.
struct Variant {
    name: String,
    size: usize,
    /// Index of the rtrb variant it is compared with.
    baseline: Option<usize>,
    run: Box<dyn FnMut(u64) -> Duration>,
    times: Vec<Duration>,
}

impl Variant {
    fn new(
        name: String,
        size: usize,
        baseline: Option<usize>,
        run: impl FnMut(u64) -> Duration + 'static,
    ) -> Self {
        Variant {
            name,
            size,
            baseline,
            run: Box::new(run),
            times: Vec::new(),
        }
    }
}

/// The four variants for payloads of `S` bytes, rtrb first.
fn variants<const S: usize>(
    dir: &common::TempNs,
    bytes: usize,
    batch: usize,
    first: usize,
) -> Vec<Variant> {
    let (mut rt_tx, mut rt_rx) = rtrb_ring::<S>(bytes, batch);
    let (mut rc_tx, mut rc_rx) = rtrb_ring::<S>(bytes, batch);
    let (mut sc_tx, mut sc_rx) = shm_ring::<S>(dir, &format!("commit-{S}"), bytes, batch);
    let (mut sb_tx, mut sb_rx) = shm_ring::<S>(dir, &format!("batch-{S}"), bytes, batch);
    vec![
        Variant::new(format!("rtrb push/pop {S} B"), S, None, move |n| {
            transfer(
                &mut rt_tx,
                &mut rt_rx,
                n,
                rtrb_produce_push::<S>,
                rtrb_consume_pop::<S>,
            )
        }),
        Variant::new(format!("shmbus commit {S} B"), S, Some(first), move |n| {
            transfer(
                &mut sc_tx,
                &mut sc_rx,
                n,
                shm_produce_commit,
                shm_consume_release,
            )
        }),
        Variant::new(format!("rtrb chunks/{batch} {S} B"), S, None, move |n| {
            transfer(
                &mut rc_tx,
                &mut rc_rx,
                n,
                rtrb_produce_chunks::<S>,
                rtrb_consume_chunks::<S>,
            )
        }),
        Variant::new(
            format!("shmbus batch/{batch} {S} B"),
            S,
            Some(first + 2),
            move |n| {
                transfer(
                    &mut sb_tx,
                    &mut sb_rx,
                    n,
                    shm_produce_batch,
                    shm_consume_batch,
                )
            },
        ),
    ]
}

fn main() {
    common::exit_on_panic();
    let quick = common::quick_mode();
    let small = common::env_count(
        "SHMBUS_BENCH_RECORDS",
        if quick { 20_000 } else { 20_000_000 },
    ) as u64;
    let large = common::env_count(
        "SHMBUS_BENCH_RECORDS_1K",
        if quick { 5_000 } else { 4_000_000 },
    ) as u64;
    let repeats = common::env_count("SHMBUS_BENCH_REPEATS", if quick { 1 } else { 5 });
    let batch = common::env_count("SHMBUS_BENCH_BATCH", 32);
    let bytes = common::env_count("SHMBUS_BENCH_RING_BYTES", 1 << 18);
    assert!(
        bytes.is_power_of_two() && bytes >= 4096,
        "SHMBUS_BENCH_RING_BYTES must be a power of two of at least 4096"
    );

    let dir = common::TempNs::named("bench-throughput", "bench");
    let mut all = variants::<64>(&dir, bytes, batch, 0);
    all.extend(variants::<1024>(&dir, bytes, batch, 4));
    if let Ok(only) = std::env::var("SHMBUS_BENCH_ONLY") {
        // For profiling one variant; the ratios need both rows.
        all.retain(|v| v.name.contains(&only));
        all.iter_mut().for_each(|v| v.baseline = None);
    }
    let records = |v: &Variant| if v.size == 64 { small } else { large };

    if !common::list_mode() {
        for _ in 0..repeats {
            for v in all.iter_mut() {
                let n = records(v);
                let t = (v.run)(n);
                v.times.push(t);
            }
        }
        // Per-round ratios first (`median` below sorts each row's times).
        let round_ratios: Vec<(String, f64)> = all
            .iter()
            .filter_map(|v| {
                let base = &all[v.baseline?];
                let secs = |t: &[Duration]| t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
                Some((
                    format!("{} / {}", v.name, base.name),
                    common::median_ratio(&secs(&base.times), &secs(&v.times)),
                ))
            })
            .collect();
        let rows: Vec<common::ThroughputRow> = all
            .iter_mut()
            .map(|v| {
                let records = records(v);
                let time = common::median(&mut v.times);
                common::ThroughputRow {
                    name: v.name.clone(),
                    size: v.size,
                    records,
                    time,
                    spread: (v.times[0], v.times[v.times.len() - 1]),
                    baseline: v.baseline,
                }
            })
            .collect();
        println!();
        println!(
            "throughput, producer on core {CORE_A}, consumer on core {CORE_B}; rings of {} KiB; \
             median of {repeats} interleaved repeats; ratio = shmbus / rtrb in this run; \
             load average {}",
            bytes / 1024,
            common::load_average()
        );
        common::print_throughput_table(&rows);
        for (pair, ratio) in &round_ratios {
            println!("{pair}, median of per-round ratios: {ratio:.2}x");
        }
        println!();
    }

    let mut c = common::criterion(Duration::from_millis(300), Duration::from_secs(1));
    for size in [64, 1024] {
        let mut group = c.benchmark_group(format!("throughput_{size}B"));
        group.throughput(Throughput::Elements(1));
        for v in all.iter_mut().filter(|v| v.size == size) {
            let run = &mut v.run;
            group.bench_function(v.name.as_str(), |b| b.iter_custom(&mut *run));
        }
        group.finish();
    }
    c.final_summary();

    drop(all);
    for size in [64, 1024] {
        for kind in ["commit", "batch"] {
            dir.bus()
                .remove_spsc(&format!("{kind}-{size}"))
                .expect("remove a bench ring");
        }
    }
}
