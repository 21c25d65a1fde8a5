//! Cross-process one-way latency of 64-byte records: shmbus next to a raw
//! cache line and iceoryx2.
//!
//! The bench process (core 0) sends a record carrying a sequence number, an
//! echo process (core 1; this binary started again with
//! `SHMBUS_PINGPONG_ECHO` set) sends it back through a second channel, and
//! the bench waits for it; each round trip is timed and half of it is
//! recorded, in nanoseconds, in an hdrhistogram per transport:
//!
//! * `floor`: two `AtomicU64` on their own 128-byte lines in a file mapped
//!   by both processes; no transport can beat it.
//! * `shmbus spsc`: two SPSC channels made through the bus, zero-copy
//!   claim/commit and read/release, busy-spinning.
//! * `shmbus topic`: two broadcast topics (`Backpressure`), one publisher and
//!   one subscriber each, busy-spinning.
//! * `iceoryx2`: two ipc publish-subscribe services (`ping`, `pong`) of
//!   `[u8; 64]`, loan/send and busy-polled receive.
//! * `shmbus spsc 4K`: as `shmbus spsc`, on 4 KiB rings instead of 64 KiB:
//!   what the size of a ring costs a hop (a record walks through the whole
//!   ring, and past the L1 cache a hop pays for lines neither core has).
//! * `shmbus spsc push`, `shmbus topic push`: as `shmbus spsc` and `shmbus
//!   topic`, with `set_push_on_commit(true)` on both writers (each commit
//!   pushes the record to the shared cache, x86 `cldemote`).
//!
//! On a 2-core VM the vCPUs move between host cores every few seconds and
//! the core-to-core latency moves with them, so figures measured one after
//! another are not comparable. The transports therefore take turns in short
//! rounds (the order rotating from round to round), and the comparisons are
//! the median over the rounds of each round's ratio of p50s. Each round's
//! floor p50 is printed too, to show the modes the machine went through.
//!
//! Every record is checked on arrival, by both processes (sequence number
//! at both ends of the payload), so a broken transport fails the bench
//! instead of timing it. A failure in either process ends both, and the
//! namespace, the mapped file and iceoryx2's files are removed in every
//! case.
//!
//! ```text
//! cargo bench --manifest-path benches/pingpong/Cargo.toml
//! SHMBUS_BENCH_SAMPLES=8_000_000 cargo bench --manifest-path benches/pingpong/Cargo.toml
//! cargo test --manifest-path benches/pingpong/Cargo.toml --benches   # smoke test
//! ```
//!
//! `SHMBUS_BENCH_SAMPLES` (default 800 000) is the number of samples per
//! transport; `SHMBUS_BENCH_ROUNDS` (default 40) how many interleaved rounds
//! they are split into (20 000 round trips per round by default).

#[path = "../../common/mod.rs"]
mod common;

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher as IoxPublisher;
use iceoryx2::port::subscriber::Subscriber as IoxSubscriber;
use iceoryx2::prelude::{
    ipc, Config as IoxConfig, FileName, Node, NodeBuilder, Path as IoxPath, PortFactory,
    SemanticString, SignalHandlingMode,
};
use shmbus::bus::{ClaimError, Policy, RecvError, StartAt, TopicConfig};
use shmbus::ring::spsc::SpscConfig;
use shmbus::Bus;

use common::pingpong::{Echoer, Pinger, SpscEchoer, SpscPinger, RECORD, TEMPLATE};
use common::{expect_seq, seq_of, spin, stamp, CORE_A, CORE_B};

/// Flag on a sequence number that tells the echoer to stop (after echoing
/// it). The stop record carries a fresh sequence too, so that two stops in a
/// row still differ (the floor's echoer only reacts to a changed value).
const STOP: u64 = 1 << 63;
/// Data region of each shmbus SPSC channel (a ping-pong never has more than
/// one record in flight; the size only matters for how often it wraps).
const SHM_CAPACITY: usize = 1 << 16;
/// Data region of the small channels: 4 KiB, so that both rings of a ping
/// pong stay in the cores' L1 caches however far a record walks. The
/// 64 KiB ones walk through more than L1 holds, and a record then lands
/// on lines neither core has close: the difference between the two rows
/// is what the ring's size costs a hop.
const SMALL_CAPACITY: usize = 1 << 12;
/// Record slots of each shmbus topic.
const TOPIC_SLOTS: u32 = 1024;
/// Round trips before each transport's timed part of a round.
const WARMUP: usize = 1_000;
/// How long the bench waits for the echo process to attach to everything.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// Set (to the base directory of the run) in the echo process's environment.
const ECHO_ENV: &str = "SHMBUS_PINGPONG_ECHO";
/// Rounds the echo process serves.
const ROUNDS_ENV: &str = "SHMBUS_PINGPONG_ECHO_ROUNDS";

/// The mapped file of the floor and the start handshake, in the base
/// directory.
const LINES_FILE: &str = "pingpong.lines";

/// Transports, in the order of the first round (round `r` starts at
/// transport `r % 7`).
const NAMES: [&str; 7] = [
    "floor",
    "shmbus spsc",
    "shmbus topic",
    "iceoryx2",
    "shmbus spsc 4K",
    "shmbus spsc push",
    "shmbus topic push",
];
const FLOOR: usize = 0;
const SPSC: usize = 1;
const TOPIC: usize = 2;
const ICEORYX2: usize = 3;
const SPSC_SMALL: usize = 4;
const SPSC_PUSH: usize = 5;
const TOPIC_PUSH: usize = 6;

/// The transport that runs `slot`th in round `round`.
fn transport_at(round: usize, slot: usize) -> usize {
    (round + slot) % NAMES.len()
}

// ---------------------------------------------------------------------------
// Cleanup: whatever happens, nothing stays in /dev/shm
// ---------------------------------------------------------------------------

/// The base directory of this run (namespace, mapped file, iceoryx2's root).
static BASE: OnceLock<PathBuf> = OnceLock::new();
/// The echo process, once started (0 before).
static ECHO_PID: AtomicI32 = AtomicI32::new(0);
/// Set by the bench once the echo process served its last record.
static DONE: AtomicBool = AtomicBool::new(false);

/// The prefix of every file iceoryx2 makes for a run whose bench process is
/// `pid` (its shared memory goes straight into /dev/shm under this prefix).
fn iceoryx2_prefix(pid: u32) -> String {
    format!("iox2_shmbus_pingpong_{pid}_")
}

/// Removes the run's base directory and iceoryx2's shared-memory files of
/// this run; returns the names of the iceoryx2 files that were still there
/// other than its node counter.
///
/// iceoryx2 keeps one node counter per domain (prefix) in a segment no
/// process owns (`<prefix><hash>_node.<version>.global_mgmt`), so it stays
/// after the last node is gone. Under the default prefix that segment is
/// shared by every iceoryx2 program on the host; this run's prefix is its
/// own, so the counter is removed with the rest.
fn remove_leftovers() -> Vec<String> {
    if let Some(base) = BASE.get() {
        match std::fs::remove_dir_all(base) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("warning: could not remove {}: {e}", base.display()),
        }
    }
    let prefix = iceoryx2_prefix(std::process::id());
    let mut left = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) {
                continue;
            }
            if let Err(e) = std::fs::remove_file(entry.path()) {
                eprintln!("warning: could not remove {}: {e}", entry.path().display());
            }
            if !name.ends_with(".global_mgmt") {
                left.push(name);
            }
        }
    }
    left
}

/// Removes what earlier runs left when they were killed outright (SIGKILL,
/// Ctrl-C: no panic hook runs then): this bench's base directories and
/// iceoryx2 files of bench processes that no longer exist. A file whose
/// process id is in use again is left alone.
fn sweep_stale_runs() {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = ["iox2_shmbus_pingpong_", "shmbus-test-pingpong-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|rest| rest.split(['_', '-']).next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => eprintln!("removed {} (left by a killed run)", path.display()),
            Err(e) => eprintln!("warning: could not remove {}: {e}", path.display()),
        }
    }
}

/// Kills the echo process (if started), removes everything the run made and
/// exits with status 101.
fn abort_run() -> ! {
    let pid = ECHO_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill has no memory preconditions; the pid is our own
        // child, not yet reaped (the watchdog reaps it and stores 0 first).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    remove_leftovers();
    std::process::exit(101);
}

/// Makes a panic in the bench process end the run: the echo process is
/// killed, the files removed, the exit status 101. (A panic would otherwise
/// leave the other side spinning forever.)
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        abort_run();
    }));
}

/// Waits for the echo process in a thread of its own (asleep in `waitpid`,
/// it takes no CPU) and ends the run if the echo process fails or exits
/// before the bench is done with it.
fn watch(mut child: std::process::Child) -> std::thread::JoinHandle<ExitStatus> {
    std::thread::spawn(move || {
        let status = child.wait().expect("wait for the echo process");
        ECHO_PID.store(0, Ordering::Relaxed);
        // SYNC POINT: pairs with the Release store of DONE in `bench`,
        // after the last echo came back.
        if !status.success() || !DONE.load(Ordering::Acquire) {
            eprintln!("echo process failed ({status}); ending the run");
            abort_run();
        }
        status
    })
}

// ---------------------------------------------------------------------------
// floor: raw cache-line ping-pong in a shared mapping
// ---------------------------------------------------------------------------

/// An `AtomicU64` alone on a 128-byte line.
#[repr(C, align(128))]
struct Line(AtomicU64);

/// The mapped file: the floor's two lines, each written by one process
/// only, and the echo process's "attached" flag.
#[repr(C)]
struct Lines {
    /// Written by the bench: the last sequence sent.
    ping: Line,
    /// Written by the echo process: the last sequence echoed.
    pong: Line,
    /// Set to 1 by the echo process once all its ports are attached.
    attached: Line,
}

const _: () = assert!(std::mem::size_of::<Lines>() == 384);

/// A shared mapping of [`Lines`].
struct LinesMap {
    ptr: NonNull<Lines>,
}

/// Bytes mapped: one page.
const LINES_LEN: usize = 4096;
const _: () = assert!(std::mem::size_of::<Lines>() <= LINES_LEN);

impl LinesMap {
    /// Creates the file (zero-filled, exclusive, 0600) and maps it.
    fn create(path: &Path) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        file.set_len(LINES_LEN as u64).expect("size the lines file");
        Self::map(&file)
    }

    /// Maps the file the bench created.
    fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let len = file.metadata().expect("stat the lines file").len();
        assert_eq!(len, LINES_LEN as u64, "{} has {len} bytes", path.display());
        Self::map(&file)
    }

    fn map(file: &std::fs::File) -> Self {
        // SAFETY: a fresh shared mapping of a file descriptor we own, at an
        // address the kernel chooses; the file is LINES_LEN bytes long, so
        // every mapped byte is backed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LINES_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap the lines file");
        LinesMap {
            ptr: NonNull::new(ptr.cast()).expect("mmap returns a non-null address"),
        }
    }

    fn lines(&self) -> &Lines {
        // SAFETY: the mapping is page-aligned (more than Lines' 128), at
        // least size_of::<Lines>() bytes, lives until self is dropped, and
        // holds only AtomicU64s, which are valid for any bytes (the file
        // starts zero-filled); both processes touch it only atomically.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for LinesMap {
    fn drop(&mut self) {
        // SAFETY: ptr is the start of a LINES_LEN mapping made in `map`, and
        // no reference from `lines` outlives self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), LINES_LEN) };
    }
}

struct FloorPinger(Rc<LinesMap>);

struct FloorEchoer {
    map: Rc<LinesMap>,
    last: u64,
}

impl Pinger for FloorPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let lines = self.0.lines();
        // SYNC POINT: pairs with the Acquire load of `ping` in
        // `FloorEchoer::echo`.
        lines.ping.0.store(seq, Ordering::Release);
        // SYNC POINT: pairs with the Release store of `pong` in
        // `FloorEchoer::echo`.
        while lines.pong.0.load(Ordering::Acquire) != seq {
            spin();
        }
    }
}

impl Echoer for FloorEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        let lines = self.map.lines();
        loop {
            // SYNC POINT: pairs with the Release store of `ping` in
            // `FloorPinger::round_trip`.
            let seq = lines.ping.0.load(Ordering::Acquire);
            if seq != self.last {
                self.last = seq;
                // SYNC POINT: pairs with the Acquire load of `pong` in
                // `FloorPinger::round_trip`.
                lines.pong.0.store(seq, Ordering::Release);
                return seq;
            }
            spin();
        }
    }
}

// ---------------------------------------------------------------------------
// shmbus: two SPSC channels
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// shmbus: two broadcast topics
// ---------------------------------------------------------------------------

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: TOPIC_SLOTS,
        max_payload: RECORD as u32,
        policy: Policy::Backpressure,
        max_subscribers: 4,
        max_publishers: 1,
        ..TopicConfig::default()
    }
}

/// Publishes a 64-byte record on `tx`, spinning while the topic is full,
/// filled by `fill`.
#[inline(always)]
fn topic_send(tx: &mut shmbus::bus::Publisher, fill: impl FnOnce(&mut [u8])) {
    loop {
        match tx.try_claim(RECORD) {
            Ok(mut claim) => {
                fill(&mut claim);
                claim.set_record_type(1);
                claim
                    .commit()
                    .expect("shmbus topic: committed within the claim timeout");
                return;
            }
            Err(ClaimError::Full) => spin(),
            Err(e) => panic!("shmbus topic claim failed: {e}"),
        }
    }
}

struct TopicPinger {
    tx: shmbus::bus::Publisher,
    rx: shmbus::bus::Subscriber,
}

struct TopicEchoer {
    rx: shmbus::bus::Subscriber,
    tx: shmbus::bus::Publisher,
}

impl Pinger for TopicPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        topic_send(&mut self.tx, |p| {
            p.copy_from_slice(&TEMPLATE);
            stamp(p, seq);
        });
        loop {
            match self.rx.try_read() {
                Ok(rec) => {
                    expect_seq("shmbus topic", &rec, seq);
                    return;
                }
                Err(RecvError::Empty) => spin(),
                Err(e) => panic!("shmbus topic read failed: {e}"),
            }
        }
    }
}

impl Echoer for TopicEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        loop {
            match self.rx.try_read() {
                Ok(rec) => {
                    topic_send(&mut self.tx, |p| p.copy_from_slice(&rec));
                    return seq_of(&rec);
                }
                Err(RecvError::Empty) => spin(),
                Err(e) => panic!("shmbus topic read failed: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// iceoryx2: two ipc publish-subscribe services
// ---------------------------------------------------------------------------

type IoxService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8; RECORD], ()>;

/// One process's iceoryx2 node, both services and its two ports. Fields are
/// dropped in order: ports, then services, then the node.
struct Iox {
    tx: IoxPublisher<ipc::Service, [u8; RECORD], ()>,
    rx: IoxSubscriber<ipc::Service, [u8; RECORD], ()>,
    ping: IoxService,
    pong: IoxService,
    _node: Node<ipc::Service>,
}

/// Which side of the ping-pong an [`Iox`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Publishes on `ping`, subscribes to `pong`; creates both services.
    Bench,
    /// Subscribes to `ping`, publishes on `pong`; opens both services.
    Echo,
}

impl Iox {
    /// iceoryx2's configuration for a run: its static files under the run's
    /// base directory, its shared memory under a prefix of the run's own.
    fn config(base: &Path, bench_pid: u32) -> IoxConfig {
        let mut config = IoxConfig::default();
        let root = format!("{}/iceoryx2/", base.display());
        config
            .global
            .set_root_path(&IoxPath::new(root.as_bytes()).expect("a valid iceoryx2 root path"));
        config.global.prefix =
            FileName::new(iceoryx2_prefix(bench_pid).as_bytes()).expect("a valid iceoryx2 prefix");
        config
    }

    fn new(side: Side, config: &IoxConfig) -> Self {
        let node = NodeBuilder::new()
            .config(config)
            // Busy loops never call `node.wait`, so a handler would swallow
            // Ctrl-C instead of ending the run.
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .expect("create an iceoryx2 node");
        let service = |name: &str| {
            let builder = node
                .service_builder(&name.try_into().expect("a valid iceoryx2 service name"))
                .publish_subscribe::<[u8; RECORD]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(1);
            match side {
                Side::Bench => builder
                    .create()
                    .unwrap_or_else(|e| panic!("create iceoryx2 service {name}: {e:?}")),
                Side::Echo => builder
                    .open()
                    .unwrap_or_else(|e| panic!("open iceoryx2 service {name}: {e:?}")),
            }
        };
        let ping = service("shmbus/pingpong/ping");
        let pong = service("shmbus/pingpong/pong");
        let (tx_service, rx_service) = match side {
            Side::Bench => (&ping, &pong),
            Side::Echo => (&pong, &ping),
        };
        let rx = rx_service
            .subscriber_builder()
            .create()
            .expect("create an iceoryx2 subscriber");
        let tx = tx_service
            .publisher_builder()
            .create()
            .expect("create an iceoryx2 publisher");
        Iox {
            tx,
            rx,
            ping,
            pong,
            _node: node,
        }
    }

    /// Whether both services have their publisher and their subscriber.
    fn connected(&self) -> bool {
        [&self.ping, &self.pong].iter().all(|s| {
            let d = s.dynamic_config();
            d.number_of_publishers() == 1 && d.number_of_subscribers() == 1
        })
    }

    /// Sends `record`, checking that it reached the one subscriber.
    #[inline(always)]
    fn send(&self, record: [u8; RECORD]) {
        let sample = self.tx.loan_uninit().expect("iceoryx2 loan");
        let delivered = sample.write_payload(record).send().expect("iceoryx2 send");
        assert_eq!(
            delivered, 1,
            "iceoryx2: record delivered to {delivered} subscribers"
        );
    }
}

struct IoxPinger(Iox);
struct IoxEchoer(Iox);

impl Pinger for IoxPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let mut record = TEMPLATE;
        stamp(&mut record, seq);
        self.0.send(record);
        loop {
            match self.0.rx.receive() {
                Ok(Some(sample)) => {
                    expect_seq("iceoryx2", sample.payload(), seq);
                    return;
                }
                Ok(None) => spin(),
                Err(e) => panic!("iceoryx2 receive failed: {e:?}"),
            }
        }
    }
}

impl Echoer for IoxEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        loop {
            match self.0.rx.receive() {
                Ok(Some(sample)) => {
                    self.0.send(*sample.payload());
                    return seq_of(sample.payload());
                }
                Ok(None) => spin(),
                Err(e) => panic!("iceoryx2 receive failed: {e:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The bench process
// ---------------------------------------------------------------------------

/// One transport's pinger, its next sequence number (sequences run on
/// across rounds), and its histograms over all rounds and over this round.
struct Lane<P> {
    name: &'static str,
    pinger: P,
    next: u64,
    all: Histogram<u64>,
    round: Histogram<u64>,
}

impl<P: Pinger> Lane<P> {
    fn new(name: &'static str, pinger: P) -> Self {
        Lane {
            name,
            pinger,
            next: 1,
            all: common::latency_histogram(),
            round: common::latency_histogram(),
        }
    }

    /// One round: `WARMUP` round trips, `samples` timed ones, then the stop
    /// record. Returns the round's p50.
    fn run_round(&mut self, samples: usize) -> u64 {
        self.round.reset();
        for _ in 0..WARMUP {
            self.pinger.round_trip(self.next);
            self.next += 1;
        }
        for _ in 0..samples {
            let start = Instant::now();
            self.pinger.round_trip(self.next);
            let rtt = start.elapsed();
            self.next += 1;
            let one_way = (rtt.as_nanos() / 2).max(1) as u64;
            self.round
                .record(one_way)
                .unwrap_or_else(|e| panic!("{}: {one_way} ns out of range: {e}", self.name));
        }
        self.pinger.round_trip(self.next | STOP);
        self.next += 1;
        self.all.add(&self.round).expect("same histogram bounds");
        self.round.value_at_quantile(0.5)
    }
}

/// The median of `values` (which it sorts); the mean of the middle two for
/// an even count.
fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn bench() {
    abort_on_panic();
    let quick = common::quick_mode();
    let samples = common::env_count("SHMBUS_BENCH_SAMPLES", if quick { 3_000 } else { 800_000 });
    let rounds = common::env_count("SHMBUS_BENCH_ROUNDS", if quick { 3 } else { 40 });
    let per_round = samples.div_ceil(rounds);

    common::pin_to(CORE_A);

    sweep_stale_runs();
    let dir = common::TempNs::named("pingpong", "bench");
    BASE.set(dir.base.clone()).expect("BASE is set once");
    let bus = dir.bus();

    // Everything is made here before the echo process starts; it only opens.
    let map = Rc::new(LinesMap::create(&dir.base.join(LINES_FILE)));
    let spsc_config = SpscConfig::with_capacity(SHM_CAPACITY);
    let ping = bus
        .spsc("spsc_ping", &spsc_config)
        .expect("create channel ping");
    let pong = bus
        .spsc("spsc_pong", &spsc_config)
        .expect("create channel pong");
    let spsc = SpscPinger {
        tx: ping.producer().expect("attach ping producer"),
        rx: pong.consumer().expect("attach pong consumer"),
    };
    let small_config = SpscConfig::with_capacity(SMALL_CAPACITY);
    let small_ping = bus
        .spsc("small_ping", &small_config)
        .expect("create channel small_ping");
    let small_pong = bus
        .spsc("small_pong", &small_config)
        .expect("create channel small_pong");
    let small = SpscPinger {
        tx: small_ping.producer().expect("attach small_ping producer"),
        rx: small_pong.consumer().expect("attach small_pong consumer"),
    };
    let ping_topic = bus
        .topic("topic_ping", &topic_config())
        .expect("create topic ping");
    let pong_topic = bus
        .topic("topic_pong", &topic_config())
        .expect("create topic pong");
    let topic = TopicPinger {
        tx: ping_topic.publisher().expect("attach ping publisher"),
        rx: pong_topic
            .subscriber(StartAt::Tail)
            .expect("attach pong subscriber"),
    };
    let push_ping = bus
        .spsc("push_ping", &spsc_config)
        .expect("create channel push_ping");
    let push_pong = bus
        .spsc("push_pong", &spsc_config)
        .expect("create channel push_pong");
    let mut spsc_push = SpscPinger {
        tx: push_ping.producer().expect("attach push_ping producer"),
        rx: push_pong.consumer().expect("attach push_pong consumer"),
    };
    spsc_push.tx.set_push_on_commit(true);
    let push_ping_topic = bus
        .topic("push_topic_ping", &topic_config())
        .expect("create topic push_ping");
    let push_pong_topic = bus
        .topic("push_topic_pong", &topic_config())
        .expect("create topic push_pong");
    let mut topic_push = TopicPinger {
        tx: push_ping_topic
            .publisher()
            .expect("attach push_ping publisher"),
        rx: push_pong_topic
            .subscriber(StartAt::Tail)
            .expect("attach push_pong subscriber"),
    };
    topic_push.tx.set_push_on_commit(true);
    let iox = Iox::new(Side::Bench, &Iox::config(&dir.base, std::process::id()));

    let child = Command::new(std::env::current_exe().expect("path of this bench"))
        .env(ECHO_ENV, &dir.base)
        .env(ROUNDS_ENV, rounds.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the echo process");
    ECHO_PID.store(child.id() as i32, Ordering::Relaxed);
    let watchdog = watch(child);

    let since = Instant::now();
    // SYNC POINT: pairs with the Release store of `attached` in `echo`,
    // after the echo process attached every port.
    while map.lines().attached.0.load(Ordering::Acquire) == 0 || !iox.connected() {
        assert!(
            since.elapsed() < ATTACH_TIMEOUT,
            "the echo process did not attach within {ATTACH_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    let mut floor = Lane::new(NAMES[FLOOR], FloorPinger(map.clone()));
    let mut spsc = Lane::new(NAMES[SPSC], spsc);
    let mut topic = Lane::new(NAMES[TOPIC], topic);
    let mut iox = Lane::new(NAMES[ICEORYX2], IoxPinger(iox));
    let mut small = Lane::new(NAMES[SPSC_SMALL], small);
    let mut spsc_push = Lane::new(NAMES[SPSC_PUSH], spsc_push);
    let mut topic_push = Lane::new(NAMES[TOPIC_PUSH], topic_push);

    // p50 of each transport in each round.
    let mut p50s: Vec<[u64; NAMES.len()]> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut p50 = [0; NAMES.len()];
        for slot in 0..NAMES.len() {
            let t = transport_at(round, slot);
            p50[t] = match t {
                FLOOR => floor.run_round(per_round),
                SPSC => spsc.run_round(per_round),
                TOPIC => topic.run_round(per_round),
                SPSC_SMALL => small.run_round(per_round),
                SPSC_PUSH => spsc_push.run_round(per_round),
                TOPIC_PUSH => topic_push.run_round(per_round),
                _ => iox.run_round(per_round),
            };
        }
        p50s.push(p50);
    }
    // SYNC POINT: pairs with the Acquire load of DONE in `watch`.
    DONE.store(true, Ordering::Release);
    let status = watchdog.join().expect("echo watchdog");
    assert!(status.success(), "echo process: {status}");

    let timer = common::timer_overhead();
    println!();
    println!(
        "cross-process one-way latency, {RECORD}-byte records, ns (round trip / 2; bench on \
         core {CORE_A}, echo process on core {CORE_B}; {rounds} interleaved rounds of \
         {per_round} round trips per transport; Instant::now() pair = {} ns per round trip; \
         load average {})",
        timer.as_nanos(),
        common::load_average()
    );
    common::print_latency_table(
        &[
            common::LatencyRow {
                name: floor.name,
                hist: &floor.all,
            },
            common::LatencyRow {
                name: spsc.name,
                hist: &spsc.all,
            },
            common::LatencyRow {
                name: topic.name,
                hist: &topic.all,
            },
            common::LatencyRow {
                name: iox.name,
                hist: &iox.all,
            },
            common::LatencyRow {
                name: small.name,
                hist: &small.all,
            },
            common::LatencyRow {
                name: spsc_push.name,
                hist: &spsc_push.all,
            },
            common::LatencyRow {
                name: topic_push.name,
                hist: &topic_push.all,
            },
        ],
        FLOOR,
    );
    println!();
    println!("p50 ratios, median of the {rounds} per-round ratios (min..max over rounds):");
    for (num, den) in [
        (SPSC, FLOOR),
        (TOPIC, SPSC),
        (TOPIC, ICEORYX2),
        (SPSC, ICEORYX2),
        (SPSC_SMALL, FLOOR),
        (SPSC_PUSH, SPSC),
        (SPSC_PUSH, FLOOR),
        (TOPIC_PUSH, TOPIC),
        (TOPIC_PUSH, SPSC_PUSH),
        (TOPIC_PUSH, ICEORYX2),
    ] {
        let mut ratios: Vec<f64> = p50s.iter().map(|p| p[num] as f64 / p[den] as f64).collect();
        let med = median_f64(&mut ratios);
        println!(
            "  {:<29} {:>6.2}x  ({:.2}..{:.2})",
            format!("{} / {}", NAMES[num], NAMES[den]),
            med,
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    let floors: Vec<String> = p50s.iter().map(|p| p[FLOOR].to_string()).collect();
    println!("floor p50 per round, ns: {}", floors.join(" "));
    println!();

    drop((floor, spsc, topic, iox, small, map));
    for name in ["spsc_ping", "spsc_pong", "small_ping", "small_pong"] {
        bus.remove_spsc(name).expect("remove a bench channel");
    }
    for name in ["topic_ping", "topic_pong"] {
        bus.remove_topic(name).expect("remove a bench topic");
    }
    drop((ping, pong, small_ping, small_pong, ping_topic, pong_topic));
    drop((bus, dir));
    let left = remove_leftovers();
    if !left.is_empty() {
        eprintln!("warning: removed what iceoryx2 left in /dev/shm: {left:?}");
    }
}

// ---------------------------------------------------------------------------
// The echo process
// ---------------------------------------------------------------------------

/// One transport's echoer and the sequence number it expects next.
struct EchoLane<E> {
    name: &'static str,
    echoer: E,
    expected: u64,
}

impl<E: Echoer> EchoLane<E> {
    fn new(name: &'static str, echoer: E) -> Self {
        EchoLane {
            name,
            echoer,
            expected: 1,
        }
    }

    /// Echoes records until the stop record, checking each sequence.
    fn serve(&mut self) {
        loop {
            let seq = self.echoer.echo();
            assert_eq!(
                seq & !STOP,
                self.expected,
                "{}: echo process got record {seq}",
                self.name
            );
            self.expected += 1;
            if seq & STOP != 0 {
                return;
            }
        }
    }
}

fn echo(base: PathBuf) {
    // A panic here ends this process at once (status 101); the bench's
    // watchdog then ends the run and removes the files.
    common::exit_on_panic();
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let bench_pid = std::os::unix::process::parent_id();
    let rounds = common::env_count(ROUNDS_ENV, 1);
    common::pin_to(CORE_B);

    let ns = Bus::at(&base, "bench").expect("open the bench's namespace");
    let map = Rc::new(LinesMap::open(&base.join(LINES_FILE)));
    let ping = ns.open_spsc("spsc_ping").expect("open channel ping");
    let pong = ns.open_spsc("spsc_pong").expect("open channel pong");
    let small_ping = ns.open_spsc("small_ping").expect("open channel small_ping");
    let small_pong = ns.open_spsc("small_pong").expect("open channel small_pong");
    let ping_topic = ns.open_topic("topic_ping").expect("open topic ping");
    let pong_topic = ns.open_topic("topic_pong").expect("open topic pong");
    let push_ping = ns.open_spsc("push_ping").expect("open channel push_ping");
    let push_pong = ns.open_spsc("push_pong").expect("open channel push_pong");
    let push_ping_topic = ns
        .open_topic("push_topic_ping")
        .expect("open topic push_ping");
    let push_pong_topic = ns
        .open_topic("push_topic_pong")
        .expect("open topic push_pong");
    let mut floor = EchoLane::new(
        NAMES[FLOOR],
        FloorEchoer {
            map: map.clone(),
            last: 0,
        },
    );
    let mut spsc = EchoLane::new(
        NAMES[SPSC],
        SpscEchoer {
            rx: ping.consumer().expect("attach ping consumer"),
            tx: pong.producer().expect("attach pong producer"),
        },
    );
    let mut topic = EchoLane::new(
        NAMES[TOPIC],
        TopicEchoer {
            rx: ping_topic
                .subscriber(StartAt::Tail)
                .expect("attach ping subscriber"),
            tx: pong_topic.publisher().expect("attach pong publisher"),
        },
    );
    let mut iox = EchoLane::new(
        NAMES[ICEORYX2],
        IoxEchoer(Iox::new(Side::Echo, &Iox::config(&base, bench_pid))),
    );
    let mut small = EchoLane::new(
        NAMES[SPSC_SMALL],
        SpscEchoer {
            rx: small_ping.consumer().expect("attach small_ping consumer"),
            tx: small_pong.producer().expect("attach small_pong producer"),
        },
    );
    let mut spsc_push = SpscEchoer {
        rx: push_ping.consumer().expect("attach push_ping consumer"),
        tx: push_pong.producer().expect("attach push_pong producer"),
    };
    spsc_push.tx.set_push_on_commit(true);
    let mut spsc_push = EchoLane::new(NAMES[SPSC_PUSH], spsc_push);
    let mut topic_push = TopicEchoer {
        rx: push_ping_topic
            .subscriber(StartAt::Tail)
            .expect("attach push_ping subscriber"),
        tx: push_pong_topic
            .publisher()
            .expect("attach push_pong publisher"),
    };
    topic_push.tx.set_push_on_commit(true);
    let mut topic_push = EchoLane::new(NAMES[TOPIC_PUSH], topic_push);
    // SYNC POINT: pairs with the Acquire load of `attached` in `bench`.
    map.lines().attached.0.store(1, Ordering::Release);

    for round in 0..rounds {
        for slot in 0..NAMES.len() {
            match transport_at(round, slot) {
                FLOOR => floor.serve(),
                SPSC => spsc.serve(),
                TOPIC => topic.serve(),
                SPSC_SMALL => small.serve(),
                SPSC_PUSH => spsc_push.serve(),
                TOPIC_PUSH => topic_push.serve(),
                _ => iox.serve(),
            }
        }
    }
}

fn main() {
    match std::env::var_os(ECHO_ENV) {
        Some(base) => echo(PathBuf::from(base)),
        None => bench(),
    }
}
