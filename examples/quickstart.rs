//! Quickstart: a publisher process and a subscriber process exchange records
//! through a shared-memory SPSC channel on the default namespace
//! (`/dev/shm/shmbus-<uid>/default`, or `$SHMBUS_DIR/default`).
//!
//! The publisher (this process, pinned to core 0) creates the channel by
//! name through the namespace's directory and starts
//! the subscriber (a second process, pinned to core 1). It then streams:
//!
//! 1. a latency phase: 1 million 64-byte records, one every ~2 µs, each
//!    stamped with `CLOCK_MONOTONIC` (shared by all processes on the host);
//!    the subscriber records `now - stamp` in an HDR histogram;
//! 2. a throughput phase: 5 million 64-byte records as fast as the ring
//!    takes them; the subscriber times first to last.
//!
//! The subscriber prints the one-way latency percentiles and the throughput;
//! the publisher removes the channel at the end (also on error, and on
//! Ctrl-C or SIGTERM).
//!
//! Run: `cargo run --release --example quickstart` (`-- --help` for the
//! options).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmbus::segment::DEFAULT_NAMESPACE;
use shmbus::{Bus, Channel, ClaimError, SpscConfig, WaitStrategy};

/// The channel's name in the namespace.
const CHANNEL: &str = "quickstart";
const RECORD_LEN: usize = 64;
const LATENCY: u16 = 1;
const THROUGHPUT: u16 = 2;
const END: u16 = 3;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
quickstart: a publisher process and a subscriber process on one SPSC channel
in shared memory; prints one-way latency percentiles and throughput.

usage: cargo run --release --example quickstart -- [options]

  --latency-records N      paced records (one every ~2 us) timed one by one [1000000]
  --throughput-records N   records sent as fast as the ring takes them [5000000]
  --namespace NS           namespace under $SHMBUS_DIR or /dev/shm/shmbus-<uid> [default]
  -h, --help               print this help

The channel (quickstart) is removed when the run ends, fails or is
interrupted; a second run while one is going is refused.";

struct Options {
    namespace: String,
    latency_records: u64,
    throughput_records: u64,
    subscriber_of: Option<String>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        namespace: DEFAULT_NAMESPACE.to_owned(),
        latency_records: 1_000_000,
        throughput_records: 5_000_000,
        subscriber_of: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--namespace" => o.namespace = value()?,
            "--latency-records" => o.latency_records = value()?.parse()?,
            "--throughput-records" => o.throughput_records = value()?.parse()?,
            "--subscriber-of" => o.subscriber_of = Some(value()?),
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    Ok(o)
}

/// `CLOCK_MONOTONIC` in nanoseconds: comparable across processes.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins this thread to `core` by id. (Not through `get_core_ids()`: a child
/// process inherits its parent's affinity mask, so it would only be offered
/// the parent's core.)
fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("could not pin to core {core}; running unpinned");
    }
}

/// Set by SIGINT / SIGTERM: the publisher stops, and its channel is removed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turns SIGINT and SIGTERM into [`INTERRUPTED`] for this process.
fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only stores to an atomic, which is
        // async-signal-safe; the handler lives as long as the process.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted; the channel is removed".into());
    }
    Ok(())
}

/// A latency in ns, scaled to ns, µs or ms, right-aligned in 9 columns.
fn scaled(ns: u64) -> String {
    let text = match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    };
    format!("{text:>9}")
}

/// The subscriber process, stopped if the publisher leaves early.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        // A no-op once it has been waited for.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the channel when the publisher leaves, whatever the reason.
struct RemoveOnDrop<'a>(&'a Channel);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let o = options()?;
    let bus = Bus::open(&o.namespace)?;
    match &o.subscriber_of {
        Some(ring) => subscriber(&bus, ring),
        None => publisher(&bus, &o),
    }
}

fn publisher(bus: &Bus, o: &Options) -> Result<()> {
    pin(0);
    catch_interrupts();
    // One name for every run: a removed channel keeps its directory entry
    // for its name, so a name per run would fill the directory over time.
    let ring = CHANNEL.to_owned();
    let channel = bus.spsc(&ring, &SpscConfig::with_capacity(1 << 20))?;
    // Refused while another run holds the producer; from here on the
    // channel is this run's, and it is removed when the run ends.
    let mut tx = channel
        .producer()
        .map_err(|e| format!("is another quickstart running? {e}"))?;
    let _cleanup = RemoveOnDrop(&channel);
    println!(
        "publisher pid {}: channel {ring}, ring file {} ({} bytes)",
        std::process::id(),
        channel.path().display(),
        tx.capacity()
    );
    let mut child = Child(
        std::process::Command::new(std::env::current_exe()?)
            .args(["--namespace", &o.namespace, "--subscriber-of", &ring])
            .spawn()?,
    );
    // Wait until the subscriber holds the consumer role.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tx.consumer_alive() != Some(true) {
        interrupted()?;
        if Instant::now() > deadline || child.0.try_wait()?.is_some() {
            return Err("subscriber did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let wait = WaitStrategy::BusySpin;
    let mut send = |record_type: u16, seq: u64| -> Result<()> {
        // Bounded waits, so that an interrupt is noticed even when the ring
        // is full.
        let mut slot = loop {
            match tx.claim_timeout(RECORD_LEN, wait, Duration::from_millis(100)) {
                Ok(slot) => break slot,
                Err(ClaimError::TimedOut) => interrupted()?,
                Err(e) => return Err(e.into()),
            }
        };
        slot[8..16].copy_from_slice(&seq.to_le_bytes());
        slot.set_record_type(record_type);
        // Stamp last, right before publishing.
        slot[..8].copy_from_slice(&now_ns().to_le_bytes());
        slot.commit();
        Ok(())
    };
    for seq in 0..o.latency_records {
        if seq % 1024 == 0 {
            interrupted()?;
        }
        send(LATENCY, seq)?;
        let next = now_ns() + 2_000;
        while now_ns() < next {
            std::hint::spin_loop();
        }
    }
    for seq in 0..o.throughput_records {
        if seq % 65_536 == 0 {
            interrupted()?;
        }
        send(THROUGHPUT, seq)?;
    }
    send(END, 0)?;
    let status = child.0.wait()?;
    if !status.success() {
        return Err(format!("subscriber failed: {status}").into());
    }
    Ok(())
}

fn subscriber(bus: &Bus, ring: &str) -> Result<()> {
    pin(1);
    // Ctrl-C reaches both processes; the publisher reports it and cleans up.
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let mut rx = bus.open_spsc(ring)?.consumer()?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut received, mut bytes) = (0u64, 0u64);
    let (mut first, mut last) = (None, Instant::now());
    let mut expected = (LATENCY, 0u64);
    loop {
        let rec = rx.read_timeout(WaitStrategy::BusySpin, Duration::from_secs(10))?;
        let t = now_ns();
        let stamp = u64::from_le_bytes(rec[..8].try_into()?);
        let seq = u64::from_le_bytes(rec[8..16].try_into()?);
        match rec.record_type() {
            LATENCY => latency.record(t.saturating_sub(stamp).max(1))?,
            THROUGHPUT => {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                received += 1;
                bytes += rec.len() as u64;
            }
            END => break,
            other => return Err(format!("unexpected record type {other}").into()),
        }
        // Nothing lost, nothing out of order.
        if expected.0 != rec.record_type() {
            expected = (rec.record_type(), 0);
        }
        if seq != expected.1 {
            return Err(format!("expected record {} got {seq}", expected.1).into());
        }
        expected.1 += 1;
    }
    println!(
        "\none-way latency, {} records of {RECORD_LEN} bytes, publisher and subscriber in \
         separate processes (paced: one record every ~2 us, so no record waits behind another):",
        latency.len()
    );
    println!(
        "  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    println!(
        "  {} {} {} {} {} {}",
        scaled(latency.value_at_quantile(0.50)),
        scaled(latency.value_at_quantile(0.90)),
        scaled(latency.value_at_quantile(0.99)),
        scaled(latency.value_at_quantile(0.999)),
        scaled(latency.value_at_quantile(0.9999)),
        scaled(latency.max())
    );
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    if secs > 0.0 {
        println!(
            "throughput: {received} records of {RECORD_LEN} bytes in {secs:.3} s = {:.1} M records/s, {:.2} GB/s",
            received as f64 / secs / 1e6,
            bytes as f64 / secs / 1e9
        );
    }
    Ok(())
}
