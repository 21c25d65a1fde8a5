//! Helpers shared by the benches: run mode, core pinning, a temporary
//! namespace in `/dev/shm` (the tests' [`TempNs`]), sequence-stamped
//! records, and the result tables.
//!
//! Each bench includes this file with `mod common;` and uses a different
//! subset of it, hence the `dead_code` and `unused_imports` allowances.

#![allow(dead_code, unused_imports)]

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub mod pingpong;

#[path = "../../tests/common/temp_ns.rs"]
mod temp_ns;
pub use temp_ns::TempNs;

/// Core of the thread that drives a measurement (sender / producer).
pub const CORE_A: usize = 0;
/// Core of the peer thread (echoer / consumer).
pub const CORE_B: usize = 1;

/// Whether the bench was started for a smoke test rather than a measurement.
///
/// `cargo bench` passes `--bench`; `cargo test --benches` does not, and
/// `cargo bench -- --test` asks for a test run explicitly (the same rule
/// criterion applies). In a smoke test the benches use tiny counts so the
/// whole suite stays fast while still checking every record.
pub fn quick_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let test = args.iter().any(|a| a == "--test");
    !bench || test
}

/// Whether criterion was only asked to list the benchmarks.
pub fn list_mode() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// Makes any panic end the process (exit status 101) once it is reported.
///
/// A failed check on one side of a ring would otherwise leave the other
/// side spinning forever on an empty or full ring, and the bench would hang
/// instead of failing.
pub fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
}

/// `name` from the environment as a count (underscores allowed:
/// `20_000_000`), or `default` when unset.
///
/// # Panics
///
/// If the variable is set but is not a positive integer.
pub fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => {
            let n: usize = v
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a positive integer"));
            assert!(n > 0, "{name} must be at least 1");
            n
        }
        Err(_) => default,
    }
}

/// One turn of every busy-wait in these benches, whatever the transport, so
/// that no transport is favoured by a different spin policy.
#[inline(always)]
pub fn spin() {
    std::hint::spin_loop();
}

/// Pins the calling thread to `core`; warns when the platform refuses,
/// since the numbers are then not comparable.
///
/// The core is named directly rather than looked up in
/// `core_affinity::get_core_ids()`: that list is the *calling thread's*
/// affinity mask, which a thread spawned by an already pinned thread
/// inherits, so it would no longer contain the other core.
pub fn pin_to(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("warning: could not pin thread to core {core}; results are not comparable");
    }
}

/// Writes `seq` into the first and the last 8 bytes of a record (a 64-byte
/// record carries it once at each end of its only cache line; longer ones
/// at both ends, so a torn or stale record is caught on either side).
#[inline(always)]
pub fn stamp(record: &mut [u8], seq: u64) {
    let n = record.len();
    record[..8].copy_from_slice(&seq.to_le_bytes());
    record[n - 8..].copy_from_slice(&seq.to_le_bytes());
}

/// Reads the sequence number [`stamp`] wrote, checking both copies agree.
///
/// # Panics
///
/// If the two copies differ: the ring delivered a torn record.
#[inline(always)]
pub fn seq_of(record: &[u8]) -> u64 {
    let n = record.len();
    let head = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
    let tail = u64::from_le_bytes(record[n - 8..].try_into().expect("8 bytes"));
    assert_eq!(
        head, tail,
        "torn record: sequence {head} at the front, {tail} at the back"
    );
    head
}

/// Checks that the record received is the one expected.
///
/// # Panics
///
/// On a lost, duplicated or torn record; the bench must not time a broken
/// ring.
#[inline(always)]
pub fn expect_seq(transport: &str, record: &[u8], expected: u64) {
    let got = seq_of(record);
    assert_eq!(
        got, expected,
        "{transport}: expected record {expected}, got {got}"
    );
}

/// The 1, 5 and 15 minute load averages, printed with the results: on a
/// shared 2-core machine anything above ~2 means other work ran on the
/// benchmark's cores.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A histogram of one-way latencies in nanoseconds (1 ns .. 60 s, 3
/// significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The median time of one `Instant::now()` pair, the fixed cost inside every
/// latency sample.
pub fn timer_overhead() -> Duration {
    let mut v: Vec<Duration> = (0..10_001)
        .map(|_| {
            let t = Instant::now();
            t.elapsed()
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

/// One row of the latency table.
pub struct LatencyRow<'a> {
    /// Transport name.
    pub name: &'a str,
    /// One-way latencies in ns.
    pub hist: &'a Histogram<u64>,
}

/// Prints p50, p99, p99.9, p99.99 and max for each row, and the ratio of
/// each row's p50 and p99 to those of `rows[floor]`.
pub fn print_latency_table(rows: &[LatencyRow<'_>], floor: usize) {
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    let f50 = q(rows[floor].hist, 0.50) as f64;
    let f99 = q(rows[floor].hist, 0.99) as f64;
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(9);
    println!(
        "{:<width$} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "transport", "samples", "p50", "p99", "p99.9", "p99.99", "max", "p50/floor", "p99/floor"
    );
    for r in rows {
        let h = r.hist;
        println!(
            "{:<width$} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8.2}x {:>8.2}x",
            r.name,
            h.len(),
            q(h, 0.50),
            q(h, 0.99),
            q(h, 0.999),
            q(h, 0.9999),
            h.max(),
            q(h, 0.50) as f64 / f50,
            q(h, 0.99) as f64 / f99,
        );
    }
}

/// The median of per-round ratios `a[r] / b[r]`: each round's transports
/// ran back to back, so a ratio within a round compares them on the same
/// machine state, which rows aggregated over a whole run do not (these
/// VMs change core-to-core latency every few seconds).
pub fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "one value per round on each side");
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// A core pair's one-way latency below this, in ns, counts as the fast
/// mode of these VMs (about 30-60 ns), above it as the slow one (about
/// 160-250 ns).
pub const FAST_FLOOR_NS: u64 = 120;

/// The core pair's one-way latency now: the p50 of `trips` round trips /
/// 2 of two `AtomicU64` lines between two threads pinned to `CORE_A` and
/// `CORE_B`, ns. About a millisecond; run before each round of a
/// throughput comparison, it says which mode the round saw.
pub fn floor_probe_ns(trips: u32) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    /// A word on a line of its own (two, for the adjacent-line prefetcher).
    #[repr(align(128))]
    struct Line(AtomicU64);
    let (ping, pong) = (Line(AtomicU64::new(0)), Line(AtomicU64::new(0)));
    let (ping, pong) = (&ping.0, &pong.0);
    std::thread::scope(|s| {
        s.spawn(move || {
            pin_to(CORE_B);
            for i in 1..=u64::from(trips) {
                // SYNC POINT: Acquire/Release pair with the prober's; the
                // values are all that is exchanged.
                while ping.load(Ordering::Acquire) != i {
                    core::hint::spin_loop();
                }
                pong.store(i, Ordering::Release);
            }
        });
        let prober = s.spawn(move || {
            pin_to(CORE_A);
            let mut rtts: Vec<u64> = Vec::with_capacity(trips as usize);
            for i in 1..=u64::from(trips) {
                let t = Instant::now();
                ping.store(i, Ordering::Release);
                while pong.load(Ordering::Acquire) != i {
                    core::hint::spin_loop();
                }
                rtts.push(t.elapsed().as_nanos() as u64);
            }
            rtts.sort_unstable();
            rtts[rtts.len() / 2] / 2
        });
        prober.join().expect("floor prober")
    })
}

/// `label: X (a / b, median of per-round ratios)`, then the same median
/// over the rounds of each mode (`floors[r]`: round `r`'s
/// [`floor_probe_ns`]): a ratio that depends on the mode is stable per
/// mode, not over a run that saw the modes in another mix.
pub fn print_ratio_by_mode(label: &str, a: &[f64], b: &[f64], floors: &[u64]) {
    assert_eq!(a.len(), floors.len(), "one floor per round");
    let by = |fast: bool| {
        let rounds: Vec<usize> = (0..a.len())
            .filter(|&r| (floors[r] < FAST_FLOOR_NS) == fast)
            .collect();
        if rounds.is_empty() {
            return "no rounds".to_owned();
        }
        let pick = |v: &[f64]| rounds.iter().map(|&r| v[r]).collect::<Vec<_>>();
        format!(
            "{:.2}x over {} rounds",
            median_ratio(&pick(a), &pick(b)),
            rounds.len()
        )
    };
    println!(
        "{label}, median of per-round ratios: {:.2}x (fast floor: {}; slow floor: {})",
        median_ratio(a, b),
        by(true),
        by(false)
    );
}

/// The median of `samples` (which it sorts).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// One row of the throughput table: `records` records of `size` payload
/// bytes moved in `time` (the median of the repeats).
pub struct ThroughputRow {
    /// What was measured.
    pub name: String,
    /// Payload bytes per record.
    pub size: usize,
    /// Records per repeat.
    pub records: u64,
    /// Median wall time of one repeat.
    pub time: Duration,
    /// Fastest and slowest repeat.
    pub spread: (Duration, Duration),
    /// Index of the row this one is compared with (`None`: no ratio).
    pub baseline: Option<usize>,
}

impl ThroughputRow {
    /// Records per second.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.time.as_secs_f64()
    }
}

/// Prints records/s, payload GB/s and the ratio of each row's rate to its
/// baseline row's.
pub fn print_throughput_table(rows: &[ThroughputRow]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(7);
    println!(
        "{:<width$} {:>6} {:>10} {:>10} {:>9} {:>8} {:>17} {:>7}",
        "variant", "bytes", "records", "median ms", "Mrec/s", "GB/s", "min..max Mrec/s", "ratio"
    );
    for r in rows {
        let rate = r.rate();
        let gbps = rate * r.size as f64 / 1e9;
        let mrate = |t: Duration| r.records as f64 / t.as_secs_f64() / 1e6;
        let spread = format!("{:.1}..{:.1}", mrate(r.spread.1), mrate(r.spread.0));
        let ratio = match r.baseline {
            Some(b) => format!("{:.2}x", rate / rows[b].rate()),
            None => "-".to_owned(),
        };
        println!(
            "{:<width$} {:>6} {:>10} {:>10.1} {:>9.1} {:>8.2} {:>17} {:>7}",
            r.name,
            r.size,
            r.records,
            r.time.as_secs_f64() * 1e3,
            rate / 1e6,
            gbps,
            spread,
            ratio
        );
    }
}

/// Criterion set up the same way for every bench: few samples (the
/// hdrhistogram tables are the main output), short warm-up and measurement,
/// command-line arguments honoured (`--test`, filters).
pub fn criterion(warm_up: Duration, measurement: Duration) -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .configure_from_args()
}
