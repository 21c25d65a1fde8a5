//! What the bridge adds: one-way latency (publish on namespace A, receive
//! on namespace B, through two bridge processes over TCP loopback) next to
//! a plain Zenoh publisher and subscriber in two processes, and throughput
//! at 64 B and 1 KiB the same two ways.
//!
//! ```text
//! nice -n 10 cargo bench --manifest-path bridge/Cargo.toml
//! ```
//!
//! Both sides are set up once (the bridges, the plain Zenoh subscriber
//! processes, every path warmed up), then measured in short interleaved
//! rounds: each round runs every measurement bridged and plain, one after
//! the other (which goes first alternates), so that both see the same
//! moment of a shared machine. The ratios printed are medians of the
//! per-round ratios (bridged / plain); the distributions are over every
//! round.
//!
//! Latency is paced (one record every 100 µs, slept for, not spun) so that
//! it measures the path, not a queue; timestamps are CLOCK_MONOTONIC,
//! shared by every process of the host. Nothing is pinned: the sender, the
//! receiver and both bridges (each with Zenoh's threads) share the cores
//! of the host, as they would share a host's cores in use.
//! `SHMBUS_BRIDGE_BENCH_ROUNDS` (default 15), `SHMBUS_BRIDGE_BENCH_SAMPLES`
//! (latency samples per round and path, default 2,000) and
//! `SHMBUS_BRIDGE_BENCH_RECORDS` (throughput records per round at 64 B,
//! default 50,000; an eighth of that at 1 KiB) size the run. `cargo test
//! --benches` runs two small rounds as a smoke test.

#[path = "../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmbus::{Bus, Policy, RecvError, StartAt, TopicConfig, WaitStrategy};
use temp_ns::TempNs;
use zenoh::qos::CongestionControl;
use zenoh::Wait;

const ROLE: &str = "SHMBUS_BRIDGE_BENCH_ROLE";
const PACE: Duration = Duration::from_micros(100);
/// First word of a warm-up message: ignored.
const WARM_UP: u64 = 0;
/// First word of the message that ends a latency round.
const END_OF_ROUND: u64 = u64::MAX;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until `at` (no spinning: two cores are shared by the sender,
/// the receiver and both bridges).
fn pace(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("address").port()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn zenoh_config(listen: &[String], connect: &[String]) -> zenoh::Config {
    let mut z = zenoh::Config::default();
    let list = |l: &[String]| serde_json::to_string(l).expect("json");
    z.insert_json5("mode", "\"peer\"").expect("mode");
    z.insert_json5("listen/endpoints", &list(listen))
        .expect("listen");
    z.insert_json5("connect/endpoints", &list(connect))
        .expect("connect");
    z.insert_json5("scouting/multicast/enabled", "false")
        .expect("scouting");
    z
}

/// Killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// p50, p99 and p99.9 of `h`, in microseconds.
fn quantiles(h: &Histogram<u64>) -> [f64; 3] {
    let p = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    [p(0.5), p(0.99), p(0.999)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new(3).expect("histogram")
}

// ---- the plain Zenoh side: a subscriber process ----------------------------

/// Child process: subscribes to `bench/<kind>` for the whole run. For a
/// latency kind it records each message's one-way latency and, at each
/// end-of-round message, prints the round's latencies (nanoseconds, on one
/// line, so that the parent pools them); for a throughput kind it
/// prints, every `count` messages, how many and when the last came.
fn zenoh_subscriber(connect: String, kind: String, count: u64) {
    let session = zenoh::open(zenoh_config(&[], &[connect]))
        .wait()
        .expect("session");
    let sub = session
        .declare_subscriber(format!("bench/{kind}"))
        .with(zenoh::handlers::FifoChannel::new(65536))
        .wait()
        .expect("subscriber");
    println!("ready");
    let latency = kind.starts_with("lat");
    let mut round: Vec<u64> = Vec::new();
    let mut got = 0u64;
    let mut out = std::io::stdout().lock();
    while let Ok(Some(s)) = sub.recv_timeout(Duration::from_secs(60)) {
        let at = now_ns();
        let bytes = s.payload().to_bytes();
        let t0 = u64::from_le_bytes(bytes[..8].try_into().expect("timestamp"));
        match t0 {
            WARM_UP => {}
            END_OF_ROUND if latency => {
                let line: Vec<String> = round.drain(..).map(|ns| ns.to_string()).collect();
                writeln!(out, "{}", line.join(" ")).expect("stdout");
                out.flush().expect("stdout");
            }
            _ if latency => round.push(at.saturating_sub(t0)),
            _ => {
                got += 1;
                if got == count {
                    writeln!(out, "{got} {at}").expect("stdout");
                    out.flush().expect("stdout");
                    got = 0;
                }
            }
        }
    }
    drop(out);
    session.close().wait().expect("close");
}

/// One plain Zenoh path: a publisher here, a subscriber process there.
struct PlainPath {
    publisher: zenoh::pubsub::Publisher<'static>,
    out: BufReader<std::process::ChildStdout>,
    _child: Proc,
}

impl PlainPath {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out
            .read_line(&mut line)
            .expect("a line from the subscriber");
        assert!(!line.is_empty(), "the subscriber process ended");
        line
    }

    fn put_stamped(&self, t0: u64, len: usize) {
        let mut buf = vec![0u8; len];
        buf[..8].copy_from_slice(&t0.to_le_bytes());
        self.publisher.put(buf).wait().expect("put");
    }

    /// One latency round of `samples`: their latencies.
    fn latency(&mut self, samples: u64) -> Histogram<u64> {
        let mut next = Instant::now();
        for _ in 0..samples {
            next += PACE;
            pace(next);
            self.put_stamped(now_ns(), 32);
        }
        self.put_stamped(END_OF_ROUND, 32);
        let mut h = new_histogram();
        for ns in self.line().split_whitespace() {
            h.record(ns.parse().expect("a latency")).expect("record");
        }
        assert_eq!(h.len(), samples, "plain zenoh lost records");
        h
    }

    /// One throughput round of `records` of `len` bytes: records/s.
    fn throughput(&mut self, len: usize, records: u64) -> f64 {
        let start = now_ns();
        for _ in 0..records {
            self.put_stamped(1, len);
        }
        let line = self.line();
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        assert_eq!(v[0], records, "plain zenoh lost records");
        records as f64 / ((v[1] - start) as f64 / 1e9)
    }
}

struct PlainZenoh {
    session: zenoh::Session,
    port: u16,
}

impl PlainZenoh {
    fn new() -> PlainZenoh {
        let port = free_port();
        let listen = vec![format!("tcp/127.0.0.1:{port}")];
        let session = zenoh::open(zenoh_config(&listen, &[]))
            .wait()
            .expect("session");
        PlainZenoh { session, port }
    }

    /// Starts the subscriber process of `kind` and warms the path up
    /// (warm-ups for a second: the subscriber's declaration has reached
    /// us by then).
    fn path(&self, kind: &str, express: bool, len: usize, count: u64) -> PlainPath {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env(ROLE, format!("{} {kind} {count}", self.port))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn subscriber");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let child = Proc(child);
        let mut line = String::new();
        out.read_line(&mut line).expect("ready");
        assert_eq!(line.trim(), "ready");
        let publisher = self
            .session
            .declare_publisher(format!("bench/{kind}"))
            .congestion_control(CongestionControl::Block)
            .express(express)
            .wait()
            .expect("publisher");
        let path = PlainPath {
            publisher,
            out,
            _child: child,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            path.put_stamped(WARM_UP, len);
            std::thread::sleep(Duration::from_millis(5));
        }
        path
    }
}

// ---- the bridged side ----------------------------------------------------

struct Bridged {
    // Stopped before their namespaces go.
    _bridges: [Proc; 2],
    a: TempNs,
    b: TempNs,
}

/// One bridged path: a publisher on A, a subscriber on B.
struct BridgedPath {
    publisher: shmbus::Publisher,
    subscriber: shmbus::Subscriber,
}

impl Bridged {
    fn new() -> Bridged {
        let (a, b) = (TempNs::new("bridge-bench-a"), TempNs::new("bridge-bench-b"));
        let port = free_port();
        let spawn = |ns: &TempNs, endpoint: &str| {
            let child = Command::new(env!("CARGO_BIN_EXE_shmbus-bridge"))
                .args(["--dir", &ns.base.display().to_string(), "-n", ns.ns.name()])
                .args([endpoint, &format!("tcp/127.0.0.1:{port}")])
                .args(["--allow", "*", "--express", "*-express"])
                .spawn()
                .expect("start shmbus-bridge");
            Proc(child)
        };
        let ba = spawn(&a, "--listen");
        let bb = spawn(&b, "--connect");
        Bridged {
            _bridges: [ba, bb],
            a,
            b,
        }
    }

    /// Creates `name` on A and returns its publisher on A and a subscriber
    /// on B once a warm-up record has crossed.
    fn path(&self, name: &str, max_payload: u32) -> BridgedPath {
        let cfg = TopicConfig {
            slots: 8192,
            max_payload,
            policy: Policy::Backpressure,
            ..TopicConfig::default()
        };
        let (bus_a, bus_b): (Bus, Bus) = (self.a.bus(), self.b.bus());
        let topic = bus_a.topic(name, &cfg).expect("topic on A");
        let mut publisher = topic.publisher().expect("publisher");
        let deadline = Instant::now() + Duration::from_secs(30);
        let topic_b = loop {
            if let Ok(t) = bus_b.open_topic(name) {
                break t;
            }
            assert!(Instant::now() < deadline, "{name} never reached B");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut subscriber = topic_b.subscriber(StartAt::Tail).expect("subscriber");
        let warm = vec![0u8; max_payload as usize];
        loop {
            let _ = publisher.try_send(0, &warm);
            if subscriber
                .read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(20))
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "no warm-up crossed on {name}");
        }
        while subscriber
            .read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(300))
            .is_ok()
        {}
        BridgedPath {
            publisher,
            subscriber,
        }
    }
}

impl BridgedPath {
    /// One latency round of `samples`: their latencies (read on a thread
    /// of this process, sleeping on the topic's futex).
    fn latency(&mut self, samples: u64) -> Histogram<u64> {
        std::thread::scope(|s| {
            let sub = &mut self.subscriber;
            let reader = s.spawn(move || {
                let mut h = new_histogram();
                while h.len() < samples {
                    match sub.read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(30)) {
                        Ok(r) => {
                            let t0 = u64::from_le_bytes(r[..8].try_into().expect("timestamp"));
                            h.record(now_ns().saturating_sub(t0)).expect("record");
                        }
                        Err(RecvError::TimedOut) => panic!("bridged latency: records lost"),
                        Err(e) => panic!("{e}"),
                    }
                }
                h
            });
            let mut next = Instant::now();
            for _ in 0..samples {
                next += PACE;
                pace(next);
                let mut buf = [0u8; 32];
                buf[..8].copy_from_slice(&now_ns().to_le_bytes());
                self.publisher
                    .send_blocking(1, &buf, WaitStrategy::BACKOFF)
                    .expect("send");
            }
            reader.join().expect("reader")
        })
    }

    /// One throughput round of `records` of `len` bytes: records/s.
    fn throughput(&mut self, len: usize, records: u64) -> f64 {
        std::thread::scope(|s| {
            let sub = &mut self.subscriber;
            let reader = s.spawn(move || {
                let mut got = 0;
                let mut last = 0;
                while got < records {
                    match sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(30)) {
                        Ok(_) => {
                            got += 1;
                            last = now_ns();
                        }
                        Err(e) => panic!("bridged throughput: {e} after {got}"),
                    }
                }
                last
            });
            let buf = vec![7u8; len];
            let start = now_ns();
            for _ in 0..records {
                self.publisher
                    .send_blocking(1, &buf, WaitStrategy::BACKOFF)
                    .expect("send");
            }
            let last = reader.join().expect("reader");
            records as f64 / ((last - start) as f64 / 1e9)
        })
    }
}

/// Latency of one mode over every round: the pooled distributions and
/// each round's ratios.
struct LatencyRuns {
    plain: Histogram<u64>,
    bridged: Histogram<u64>,
    ratios: [Vec<f64>; 3],
}

impl LatencyRuns {
    fn new() -> Self {
        LatencyRuns {
            plain: new_histogram(),
            bridged: new_histogram(),
            ratios: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    fn add(&mut self, plain: &Histogram<u64>, bridged: &Histogram<u64>) {
        let (p, b) = (quantiles(plain), quantiles(bridged));
        for i in 0..3 {
            self.ratios[i].push(b[i] / p[i]);
        }
        self.plain.add(plain).expect("pool");
        self.bridged.add(bridged).expect("pool");
    }
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let mut it = role.split_whitespace();
        let port = it.next().expect("port");
        let kind = it.next().expect("kind").to_owned();
        let count = it.next().expect("count").parse().expect("count");
        zenoh_subscriber(format!("tcp/127.0.0.1:{port}"), kind, count);
        return;
    }
    // `cargo test --benches` passes no `--bench`: a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (rounds, samples, records) = if smoke {
        (2, 200, 2000)
    } else {
        (
            env_or("SHMBUS_BRIDGE_BENCH_ROUNDS", 15),
            env_or("SHMBUS_BRIDGE_BENCH_SAMPLES", 2_000),
            env_or("SHMBUS_BRIDGE_BENCH_RECORDS", 50_000),
        )
    };
    let sizes = [(64usize, records), (1024, (records / 8).max(1000))];

    let plain = PlainZenoh::new();
    let bridged = Bridged::new();
    let mut plain_lat = [
        plain.path("lat-express", true, 32, 0),
        plain.path("lat-batched", false, 32, 0),
    ];
    let mut bridged_lat = [
        bridged.path("lat-express", 32),
        bridged.path("lat-batched", 32),
    ];
    let mut plain_tput: Vec<PlainPath> = sizes
        .iter()
        .map(|&(len, n)| plain.path(&format!("tput{len}"), false, len, n))
        .collect();
    let mut bridged_tput: Vec<BridgedPath> = sizes
        .iter()
        .map(|&(len, _)| bridged.path(&format!("tput{len}"), len as u32))
        .collect();

    let mut latency = [LatencyRuns::new(), LatencyRuns::new()];
    let mut tput: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> =
        sizes.iter().map(|_| Default::default()).collect();
    for round in 0..rounds {
        let plain_first = round % 2 == 0;
        for m in 0..2 {
            let (p, b) = if plain_first {
                let p = plain_lat[m].latency(samples);
                (p, bridged_lat[m].latency(samples))
            } else {
                let b = bridged_lat[m].latency(samples);
                (plain_lat[m].latency(samples), b)
            };
            latency[m].add(&p, &b);
        }
        for (k, &(len, n)) in sizes.iter().enumerate() {
            let (p, b) = if plain_first {
                let p = plain_tput[k].throughput(len, n);
                (p, bridged_tput[k].throughput(len, n))
            } else {
                let b = bridged_tput[k].throughput(len, n);
                (plain_tput[k].throughput(len, n), b)
            };
            tput[k].0.push(p);
            tput[k].1.push(b);
            tput[k].2.push(b / p);
        }
    }

    println!(
        "\none-way latency, µs ({rounds} rounds of {samples} samples per path, paced: one record per {} µs)",
        PACE.as_micros()
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>8}",
        "path", "p50", "p99", "p99.9", "samples"
    );
    for (m, mode) in ["express", "batched"].iter().enumerate() {
        let l = &latency[m];
        for (name, h) in [
            (format!("plain zenoh, {mode}"), &l.plain),
            (format!("shmbus A -> bridge -> B, {mode}"), &l.bridged),
        ] {
            let q = quantiles(h);
            println!(
                "{name:<40} {:>9.1} {:>9.1} {:>9.1} {:>8}",
                q[0],
                q[1],
                q[2],
                h.len()
            );
        }
        println!(
            "{:<40} {:>9.2} {:>9.2} {:>9.2}",
            "  median of per-round ratios",
            median(l.ratios[0].clone()),
            median(l.ratios[1].clone()),
            median(l.ratios[2].clone())
        );
    }
    println!(
        "\nthroughput, records/s (batched, CongestionControl::Block), medians of {rounds} rounds"
    );
    for (k, &(len, n)) in sizes.iter().enumerate() {
        let (p, b, r) = &tput[k];
        println!(
            "{len:>5} B: plain zenoh {:>12.0}   bridged {:>12.0}   median of per-round ratios {:.2}   ({n} records a round)",
            median(p.clone()),
            median(b.clone()),
            median(r.clone())
        );
    }
}
