//! What the bridge adds: one-way latency (publish on namespace A, receive
//! on namespace B, through two bridge processes over TCP loopback) next to
//! a plain Zenoh publisher and subscriber in two processes, in the same
//! run; then throughput at 64 B and 1 KiB the same two ways.
//!
//! ```text
//! nice -n 10 cargo bench --manifest-path bridge/Cargo.toml
//! ```
//!
//! Latency is paced (one record every 100 µs, slept for, not spun) so that it measures the
//! path, not a queue; timestamps are CLOCK_MONOTONIC, shared by every
//! process of the host. `SHMBUS_BRIDGE_BENCH_SAMPLES` (default 20,000)
//! and `SHMBUS_BRIDGE_BENCH_RECORDS` (default 200,000 at 64 B, an eighth of
//! that at 1 KiB) size the runs. `cargo test --benches` runs a few hundred
//! of each as a smoke test.

#[path = "../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::io::{BufRead, BufReader};
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

/// Percentiles in microseconds.
fn row(name: &str, h: &Histogram<u64>) -> [f64; 3] {
    let p = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let r = [p(0.5), p(0.99), p(0.999)];
    println!(
        "{name:<34} {:>9.1} {:>9.1} {:>9.1} {:>8}",
        r[0],
        r[1],
        r[2],
        h.len()
    );
    r
}

// ---- the plain Zenoh side: a subscriber process ----------------------------

/// Child process: subscribes to `bench/<kind>` and, per record, either
/// records the one-way latency or counts; prints its result on stdout.
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
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    let mut got = 0u64;
    let mut last = 0u64;
    while got < count {
        let Ok(Some(s)) = sub.recv_timeout(Duration::from_secs(30)) else {
            break;
        };
        let bytes = s.payload().to_bytes();
        let t0 = u64::from_le_bytes(bytes[..8].try_into().expect("timestamp"));
        if t0 == 0 {
            continue; // warm-up
        }
        last = now_ns();
        h.record(last.saturating_sub(t0)).expect("record");
        got += 1;
    }
    if kind.starts_with("lat") {
        let q = |x: f64| h.value_at_quantile(x);
        println!("{} {} {} {}", q(0.5), q(0.99), q(0.999), h.len());
    } else {
        println!("{got} {last}");
    }
    session.close().wait().expect("close");
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

    /// Starts the subscriber process and waits until a warm-up crosses.
    fn child(&self, kind: &str, count: u64) -> (Proc, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env(ROLE, format!("{} {kind} {count}", self.port))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn subscriber");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("ready");
        assert_eq!(line.trim(), "ready");
        (Proc(child), out)
    }

    fn publisher(&self, kind: &str, express: bool) -> zenoh::pubsub::Publisher<'static> {
        self.session
            .declare_publisher(format!("bench/{kind}"))
            .congestion_control(CongestionControl::Block)
            .express(express)
            .wait()
            .expect("publisher")
    }

    /// Sends warm-ups (timestamp 0) for a second: the subscriber's
    /// declaration has reached us by then.
    fn warm_up(p: &zenoh::pubsub::Publisher<'static>, len: usize) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            p.put(vec![0u8; len]).wait().expect("put");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn latency(&self, express: bool, samples: u64) -> [u64; 3] {
        let kind = if express {
            "lat-express"
        } else {
            "lat-batched"
        };
        let (_child, mut out) = self.child(kind, samples);
        let p = self.publisher(kind, express);
        Self::warm_up(&p, 32);
        let mut next = Instant::now();
        for _ in 0..samples {
            next += PACE;
            pace(next);
            let mut buf = vec![0u8; 32];
            buf[..8].copy_from_slice(&now_ns().to_le_bytes());
            p.put(buf).wait().expect("put");
        }
        let mut line = String::new();
        out.read_line(&mut line).expect("result");
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        [v[0], v[1], v[2]]
    }

    fn throughput(&self, len: usize, records: u64) -> f64 {
        let kind = format!("tput{len}");
        let (_child, mut out) = self.child(&kind, records);
        let p = self.publisher(&kind, false);
        Self::warm_up(&p, len);
        let start = now_ns();
        for _ in 0..records {
            let mut buf = vec![0u8; len];
            buf[..8].copy_from_slice(&1u64.to_le_bytes());
            p.put(buf).wait().expect("put");
        }
        let mut line = String::new();
        out.read_line(&mut line).expect("result");
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        assert_eq!(v[0], records, "plain zenoh lost records");
        records as f64 / ((v[1] - start) as f64 / 1e9)
    }
}

// ---- the bridged side ----------------------------------------------------

struct Bridged {
    // Stopped before their namespaces go.
    _bridges: [Proc; 2],
    a: TempNs,
    b: TempNs,
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
    /// on B once a warm-up record (timestamp 0) has crossed.
    fn path(&self, name: &str, max_payload: u32) -> (shmbus::Publisher, shmbus::Subscriber) {
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
        let mut sub = topic_b.subscriber(StartAt::Tail).expect("subscriber");
        let warm = vec![0u8; max_payload as usize];
        loop {
            let _ = publisher.try_send(0, &warm);
            if sub
                .read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(20))
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "no warm-up crossed on {name}");
        }
        while sub
            .read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(300))
            .is_ok()
        {}
        (publisher, sub)
    }

    fn latency(&self, express: bool, samples: u64) -> Histogram<u64> {
        let name = if express {
            "lat-express"
        } else {
            "lat-batched"
        };
        let (mut p, mut sub) = self.path(name, 32);
        let reader = std::thread::spawn(move || {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
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
            p.send_blocking(1, &buf, WaitStrategy::BACKOFF)
                .expect("send");
        }
        reader.join().expect("reader")
    }

    fn throughput(&self, len: usize, records: u64) -> f64 {
        let (mut p, mut sub) = self.path(&format!("tput{len}"), len as u32);
        let reader = std::thread::spawn(move || {
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
            p.send_blocking(1, &buf, WaitStrategy::BACKOFF)
                .expect("send");
        }
        let last = reader.join().expect("reader");
        records as f64 / ((last - start) as f64 / 1e9)
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
    let samples = if smoke {
        300
    } else {
        env_or("SHMBUS_BRIDGE_BENCH_SAMPLES", 20_000)
    };
    let records = if smoke {
        2000
    } else {
        env_or("SHMBUS_BRIDGE_BENCH_RECORDS", 200_000)
    };

    let plain = PlainZenoh::new();
    let bridged = Bridged::new();
    println!(
        "\none-way latency, µs (paced: one record per {} µs)\n{:<34} {:>9} {:>9} {:>9} {:>8}",
        PACE.as_micros(),
        "path",
        "p50",
        "p99",
        "p99.9",
        "samples"
    );
    for express in [true, false] {
        let mode = if express { "express" } else { "batched" };
        let z = plain.latency(express, samples);
        // Only the three quantiles cross the process boundary.
        let zr = [z[0] as f64 / 1e3, z[1] as f64 / 1e3, z[2] as f64 / 1e3];
        println!(
            "{:<34} {:>9.1} {:>9.1} {:>9.1} {:>8}",
            format!("plain zenoh, {mode}"),
            zr[0],
            zr[1],
            zr[2],
            samples
        );
        let b = row(
            &format!("shmbus A -> bridge -> B, {mode}"),
            &bridged.latency(express, samples),
        );
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2}",
            "  ratio bridged / plain",
            b[0] / zr[0],
            b[1] / zr[1],
            b[2] / zr[2]
        );
    }
    println!("\nthroughput, records/s (batched, CongestionControl::Block)");
    for (len, n) in [(64usize, records), (1024, (records / 8).max(1000))] {
        let z = plain.throughput(len, n);
        let b = bridged.throughput(len, n);
        println!(
            "{len:>5} B: plain zenoh {z:>12.0}   bridged {b:>12.0}   ratio {:.2}   ({n} records)",
            b / z
        );
    }
}
