//! Two namespaces, two bridge processes on `tcp/127.0.0.1:<free port>`: a
//! publisher on namespace A, a subscriber on namespace B.
//!
//! `SHMBUS_BRIDGE_RECORDS` sets how many records the ordering test sends
//! (default 1,000,000).

#[path = "../../tests/common/temp_ns.rs"]
mod temp_ns;

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmbus::bridge_counters::{self, BridgeCounters, BridgeCountersSnapshot as Snapshot};
use shmbus::{Bus, Policy, RecvError, StartAt, Topic, TopicConfig, WaitStrategy};
use temp_ns::TempNs;
use zenoh::Wait;

/// Record type of the warm-up records sent until the path is up.
const WARMUP: u16 = 1;
/// Record type of the counted records.
const DATA: u16 = 2;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// A bridge process, killed on drop whatever happened.
struct BridgeProc {
    child: Option<Child>,
    args: Vec<String>,
}

impl BridgeProc {
    fn spawn(ns: &TempNs, extra: &[&str]) -> BridgeProc {
        let mut args = vec![
            "--dir".to_owned(),
            ns.base.display().to_string(),
            "--namespace".to_owned(),
            ns.ns.name().to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::with_args(args)
    }

    fn with_args(args: Vec<String>) -> BridgeProc {
        let mut p = BridgeProc { child: None, args };
        p.restart();
        p
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "bridge still running");
        let child = Command::new(env!("CARGO_BIN_EXE_shmbus-bridge"))
            .args(&self.args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start shmbus-bridge");
        self.child = Some(child);
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` and waits up to `timeout` for the exit.
    fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), signal) };
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait for the bridge") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(slots: u32, policy: Policy) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload: 64,
        policy,
        ..TopicConfig::default()
    }
}

/// 32-byte payload of record `i`: `i`, 16 bytes derived from it, and an
/// FNV-1a checksum of the first 24.
fn payload(i: u64) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p[8..16].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    p[16..24].copy_from_slice(&(!i).to_le_bytes());
    let sum = fnv(&p[..24]);
    p[24..].copy_from_slice(&sum.to_le_bytes());
    p
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Checks a received payload and returns its counter.
fn check(p: &[u8]) -> u64 {
    assert_eq!(p.len(), 32, "payload length");
    let i = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
    assert_eq!(p, payload(i), "record {i} damaged");
    i
}

fn stats(ns: &TempNs, topic: &str) -> Snapshot {
    bridge_counters::read(&ns.ns, topic)
        .expect("readable bridge counters")
        .expect("bridge counters file")
}

/// Opens `name` on `bus` once the importing bridge has created it.
fn imported_topic(bus: &Bus, name: &str) -> Topic {
    wait_until("the imported topic", Duration::from_secs(30), || {
        bus.open_topic(name).ok()
    })
}

/// Sends warm-up records on `topic` until `sub` sees one: the path from
/// A's publisher to B's subscriber is then up end to end.
fn warm_up(topic: &Topic, sub: &mut shmbus::Subscriber) {
    let mut publisher = topic.publisher().expect("warm-up publisher");
    wait_until("a warm-up record to cross", Duration::from_secs(30), || {
        let _ = publisher.try_send(WARMUP, b"warm");
        match sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(20)) {
            Ok(r) if r.record_type() == WARMUP => Some(()),
            _ => None,
        }
    });
    // Drain the rest of the warm-ups; records that keep coming are an
    // echo loop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(r) = sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(200)) {
        assert_eq!(r.record_type(), WARMUP, "a record before the stream began");
        assert!(
            Instant::now() < deadline,
            "warm-up records keep coming: an echo loop"
        );
    }
}

/// The `ring-dump` of the root workspace, built (once per test process)
/// into the root's target directory, in release as the root's test command
/// (`scripts/test-all.sh`) builds it, so that in CI this is only a check:
/// the bridge does not depend on it.
fn ring_dump_bin() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "ring-dump",
                    "--manifest-path",
                ])
                .arg(root.join("Cargo.toml"))
                // The root's own target directory: never the one this test
                // was built in (its build lock may be held meanwhile).
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("run cargo build -p ring-dump");
            assert!(status.success(), "building ring-dump failed");
            root.join("target").join("release").join("ring-dump")
        })
        .clone()
}

/// `ring-dump --json` with `args` on the namespace of `ns`.
fn ring_dump_json(ns: &TempNs, args: &[&str]) -> serde_json::Value {
    let out = Command::new(ring_dump_bin())
        .arg("--dir")
        .arg(&ns.base)
        .args(["-n", ns.ns.name(), "--json"])
        .args(args)
        .env_remove("SHMBUS_DIR")
        .output()
        .expect("run ring-dump");
    assert!(
        out.status.success(),
        "ring-dump {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ring-dump prints JSON")
}

fn pair(a: &TempNs, b: &TempNs, allow: &[&str]) -> (BridgeProc, BridgeProc, u16) {
    let port = free_port();
    let mut a_args = vec!["--listen".to_owned(), format!("tcp/127.0.0.1:{port}")];
    let mut b_args = vec!["--connect".to_owned(), format!("tcp/127.0.0.1:{port}")];
    for pat in allow {
        for args in [&mut a_args, &mut b_args] {
            args.push("--allow".to_owned());
            args.push(pat.to_string());
        }
    }
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    (
        BridgeProc::spawn(a, &a_args),
        BridgeProc::spawn(b, &b_args),
        port,
    )
}

#[test]
fn a_million_records_cross_in_order_and_intact_and_nothing_else_crosses() {
    let n: u64 = std::env::var("SHMBUS_BRIDGE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (a, b) = (TempNs::new("bridge-a"), TempNs::new("bridge-b"));
    let (bus_a, bus_b) = (a.bus(), b.bus());
    let cfg = config(4096, Policy::Backpressure);
    let md = bus_a.topic("market_data", &cfg).expect("topic on A");
    // Not allowed: must never appear on B.
    let secret = bus_a.topic("secret", &cfg).expect("secret topic on A");
    // Allowed by the glob, with another configuration.
    let sig_cfg = config(256, Policy::Overwrite);
    let signals = bus_a.topic("signals.eu", &sig_cfg).expect("signals on A");
    let (ba, bb, _) = pair(&a, &b, &["market_data", "signals*"]);

    let md_b = imported_topic(&bus_b, "market_data");
    assert_eq!(*md_b.config(), cfg, "imported with the exporter's config");
    let sig_b = imported_topic(&bus_b, "signals.eu");
    assert_eq!(
        *sig_b.config(),
        sig_cfg,
        "imported with the exporter's config"
    );
    let mut sub = md_b.subscriber(StartAt::Tail).expect("subscriber on B");
    warm_up(&md, &mut sub);
    let mut sig_sub = sig_b
        .subscriber(StartAt::Tail)
        .expect("signals subscriber on B");
    warm_up(&signals, &mut sig_sub);
    // B exports the topic it imported too (it is allowed there): wait until
    // its exporter runs, seen passing over an imported record.
    let echo_before = wait_until("B's exporter", Duration::from_secs(20), || {
        warm_up(&md, &mut sub);
        let s = stats(&b, "market_data");
        (s.echo_skipped > 0).then_some(s.echo_skipped)
    });

    let started = Instant::now();
    let sender = {
        let mut p = md.publisher().expect("publisher on A");
        let mut s = secret.publisher().expect("secret publisher");
        std::thread::spawn(move || {
            for i in 0..n {
                p.send_blocking(DATA, &payload(i), WaitStrategy::BACKOFF)
                    .expect("publish on A");
                if i % 1000 == 0 {
                    let _ = s.try_send(DATA, &payload(i));
                }
            }
        })
    };
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(110);
    while next < n {
        match sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(100)) {
            Ok(r) => {
                assert_eq!(r.record_type(), DATA, "record type");
                let i = check(&r);
                assert_eq!(i, next, "out of order or lost");
                next += 1;
            }
            Err(RecvError::TimedOut | RecvError::Empty) => {
                assert!(
                    Instant::now() < deadline,
                    "only {next} of {n} records arrived"
                );
            }
            Err(e) => panic!("reading on B: {e}"),
        }
    }
    let elapsed = started.elapsed();
    sender.join().expect("sender");
    eprintln!(
        "{n} records A -> B in {elapsed:?} ({:.0} records/s)",
        n as f64 / elapsed.as_secs_f64()
    );

    // Nothing echoes: B's exporter passed over every record B imported,
    // sent none, and A imported nothing.
    std::thread::sleep(Duration::from_millis(300));
    let (sa, sb) = (stats(&a, "market_data"), stats(&b, "market_data"));
    assert_eq!(sb.gaps, 0, "{sb:?}");
    assert!(sb.imported >= n, "{sb:?}");
    assert!(sa.exported >= n, "{sa:?}");
    assert_eq!(sb.exported, 0, "B sent records back: {sb:?}");
    assert!(sb.echo_skipped - echo_before >= n, "{sb:?}");
    assert_eq!(sa.imported, 0, "A received its own records back: {sa:?}");
    assert!(
        sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(300))
            .is_err(),
        "a record arrived twice"
    );

    // The bridges' own participants are in the segments, as ring-dump
    // shows them: A's exporter a live subscriber that read every record,
    // B's importer a live publisher that published every record.
    let opts = shmbus::segment::OpenOptions::default();
    let snap_a = shmbus::inspect::inspect_topic(&a.ns, "market_data", &opts).expect("inspect A");
    let exporter = snap_a
        .subscribers
        .iter()
        .find(|s| s.pid == ba.pid() as u32)
        .expect("A's bridge subscribes on A");
    assert!(
        exporter.alive && exporter.counters.records >= n,
        "{exporter:?}"
    );
    let snap_b = shmbus::inspect::inspect_topic(&b.ns, "market_data", &opts).expect("inspect B");
    let importer = snap_b
        .publishers
        .iter()
        .find(|p| p.pid == bb.pid() as u32)
        .expect("B's bridge publishes on B");
    assert!(
        importer.alive && importer.counters.records >= n,
        "{importer:?}"
    );

    // The topic not allowed never crossed.
    assert!(bus_b.open_topic("secret").is_err(), "secret reached B");
    assert!(
        bridge_counters::read(&a.ns, "secret")
            .expect("readable")
            .is_none(),
        "A bridged secret"
    );
    assert!(bus_b.topics().iter().all(|t| t.name != "secret"));
}

#[test]
fn a_restarted_importer_counts_the_gap_then_forwarding_resumes() {
    let (a, b) = (TempNs::new("bridge-gap-a"), TempNs::new("bridge-gap-b"));
    let (bus_a, bus_b) = (a.bus(), b.bus());
    let cfg = config(4096, Policy::Backpressure);
    let md = bus_a.topic("md", &cfg).expect("topic on A");
    let port = free_port();
    let _ba = BridgeProc::spawn(
        &a,
        &[
            "--listen",
            &format!("tcp/127.0.0.1:{port}"),
            "--allow",
            "md",
            // Send on at once when B goes: what B misses is counted.
            "--reconnect-hold-ms",
            "0",
        ],
    );
    // B from a configuration file.
    let toml = b.base.join("bridge.toml");
    std::fs::write(
        &toml,
        format!(
            "namespace = {:?}\ndir = {:?}\nconnect = [\"tcp/127.0.0.1:{port}\"]\nallow = [\"m?\"]\n",
            b.ns.name(),
            b.base.display().to_string()
        ),
    )
    .expect("write bridge.toml");
    let mut bb = BridgeProc::with_args(vec!["--config".into(), toml.display().to_string()]);
    let md_b = imported_topic(&bus_b, "md");
    let mut sub = md_b.subscriber(StartAt::Tail).expect("subscriber on B");
    warm_up(&md, &mut sub);

    // A steady stream on A, one record every 50 µs or so.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let mut p = md.publisher().expect("publisher on A");
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                p.send_blocking(DATA, &payload(i), WaitStrategy::BACKOFF)
                    .expect("publish on A");
                i += 1;
                sent.store(i, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    let read = |sub: &mut shmbus::Subscriber, wait: Duration| -> Option<u64> {
        match sub.read_timeout(WaitStrategy::BACKOFF, wait) {
            Ok(r) => Some(check(&r)),
            Err(RecvError::TimedOut | RecvError::Empty) => None,
            Err(e) => panic!("reading on B: {e}"),
        }
    };
    let mut last = wait_until("the stream to reach B", Duration::from_secs(20), || {
        read(&mut sub, Duration::from_millis(50))
    });
    for _ in 0..2000 {
        let i = read(&mut sub, Duration::from_secs(10)).expect("stream on B");
        assert_eq!(i, last + 1, "gap before the restart");
        last = i;
    }

    // Kill B's bridge; read what it had published before it died.
    bb.kill();
    while let Some(i) = read(&mut sub, Duration::from_millis(300)) {
        assert_eq!(i, last + 1, "gap before the kill");
        last = i;
    }
    let before = stats(&b, "md");
    assert_eq!(before.gaps, 0, "{before:?}");
    let sent_at_kill = sent.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        sent.load(Ordering::Relaxed) > sent_at_kill + 100,
        "A kept publishing"
    );

    bb.restart();
    let first = wait_until("forwarding to resume", Duration::from_secs(30), || {
        read(&mut sub, Duration::from_millis(50))
    });
    let down = first - last - 1;
    assert!(down > 0, "nothing was lost while B was down?");
    // Every record B never saw must be counted: the ones sent while it was
    // down, and any Zenoh loses while the peers reconnect. Then a clean run.
    let mut missed = down;
    let mut last = first;
    let mut run = 0;
    let account = |i: u64, last: &mut u64, missed: &mut u64| {
        assert!(
            i > *last,
            "record {i} after {last}: out of order or repeated"
        );
        *missed += i - *last - 1;
        let contiguous = i == *last + 1;
        *last = i;
        contiguous
    };
    while run < 2000 {
        let i = read(&mut sub, Duration::from_secs(10)).expect("stream on B after restart");
        run = if account(i, &mut last, &mut missed) {
            run + 1
        } else {
            0
        };
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    while let Some(i) = read(&mut sub, Duration::from_millis(500)) {
        account(i, &mut last, &mut missed);
    }
    assert_eq!(
        last + 1,
        sent.load(Ordering::Relaxed),
        "the last records arrived"
    );
    let after = stats(&b, "md");
    assert_eq!(
        after.gaps, missed,
        "counted gaps vs records B never saw: {after:?}"
    );
    // The same through the command line.
    let out = Command::new(env!("CARGO_BIN_EXE_shmbus-bridge"))
        .args(["--config", &toml.display().to_string(), "--stats"])
        .output()
        .expect("shmbus-bridge --stats");
    assert!(out.status.success(), "--stats failed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--stats prints JSON");
    assert_eq!(json["topics"][0]["topic"], "md", "{json}");
    assert_eq!(json["topics"][0]["gaps"], missed, "{json}");
    // And as ring-dump shows the topic.
    let doc = ring_dump_json(&b, &["show", "md"]);
    assert_eq!(doc["bridge"]["gaps"], missed, "{doc}");
    assert_eq!(doc["bridge"]["running"], true, "{doc}");
    assert!(doc["bridge"]["imported"].as_u64() > Some(0), "{doc}");
    eprintln!(
        "B down: {down} records lost; {} more while reconnecting; all counted",
        missed - down
    );
}

#[test]
fn sigterm_stops_the_bridge_cleanly_and_withdraws_its_token() {
    let a = TempNs::new("bridge-stop");
    let bus = a.bus();
    let cfg = config(1024, Policy::Overwrite);
    let _t = bus.topic("quotes", &cfg).expect("topic");
    let port = free_port();
    let listen = format!("tcp/127.0.0.1:{port}");
    let mut bridge = BridgeProc::spawn(&a, &["--listen", &listen, "--allow", "quotes"]);

    // A plain Zenoh peer sees the token, with the topic's configuration.
    let mut z = zenoh::Config::default();
    z.insert_json5("mode", "\"peer\"").expect("mode");
    z.insert_json5("listen/endpoints", "[]").expect("listen");
    z.insert_json5("connect/endpoints", &format!("[\"{listen}\"]"))
        .expect("connect");
    z.insert_json5("scouting/multicast/enabled", "false")
        .expect("scouting");
    let session = zenoh::open(z).wait().expect("zenoh session");
    let tokens = || -> Vec<String> {
        let replies = session
            .liveliness()
            .get("shmbus/t/*/@export/**")
            .timeout(Duration::from_secs(1))
            .wait()
            .expect("liveliness query");
        let mut keys = Vec::new();
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                keys.push(sample.key_expr().as_str().to_owned());
            }
        }
        keys
    };
    let keys = wait_until("the token", Duration::from_secs(20), || {
        let k = tokens();
        (!k.is_empty()).then_some(k)
    });
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (topic, _, announced) =
        shmbus_bridge::bridge::parse_token_key("t", &keys[0]).expect("token key");
    assert_eq!((topic.as_str(), announced), ("quotes", cfg));

    // A second bridge on the same namespace and topic is refused.
    let err = BridgeCounters::open_locked(&a.ns, "quotes").err();
    assert!(err.is_some(), "the running bridge holds the topic's lock");

    let status = bridge
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .expect("bridge exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    wait_until("the token to go", Duration::from_secs(10), || {
        tokens().is_empty().then_some(())
    });
    // Its lock and its listening port are released.
    assert!(BridgeCounters::open_locked(&a.ns, "quotes").is_ok());
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port still held"
    );
    session.close().wait().expect("close");
}

// ---------------------------------------------------------------------------
// Stalls, lapped exporters, several exporters, the reconnect hold
// ---------------------------------------------------------------------------

/// Record type of the fence records sent after a stream (see [`Receiver::fence`]).
const FENCE: u16 = 3;
/// Zenoh's lease in the stall tests: a stopped peer is dropped after it.
const LEASE_MS: u64 = 1000;
/// How long a stall test keeps a bridge stopped: past the lease and the
/// topics' claim timeout ([`stall_config`]).
const STALL: Duration = Duration::from_secs(3);

/// A topic whose claim timeout the stalls outlast.
fn stall_config(policy: Policy) -> TopicConfig {
    TopicConfig {
        reclaim_after: Duration::from_millis(500),
        ..config(4096, policy)
    }
}

/// A publisher thread on a topic of A: record `i` of type `record_type`
/// every 50 µs or so, never blocking longer than 100 ms at a time (so that
/// it stops when asked, whatever the bridges do). Stopped and joined on
/// drop.
struct Stream {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    fn start(topic: &Topic, record_type: u16) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut p = topic.publisher().expect("stream publisher");
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match p.send_timeout(
                        record_type,
                        &payload(i),
                        WaitStrategy::BACKOFF,
                        Duration::from_millis(100),
                    ) {
                        Ok(_) => {
                            i += 1;
                            sent.store(i, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        Err(shmbus::ClaimError::TimedOut | shmbus::ClaimError::Full) => {}
                        Err(e) => panic!("publishing on A: {e}"),
                    }
                }
            })
        };
        Stream {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the stream; how many records it published.
    fn finish(mut self) -> u64 {
        self.stop_and_join();
        self.sent()
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// What a subscriber on B received, per record type: how many, the last
/// index, and how many the topic lapped it over (`Overwrite`).
#[derive(Default)]
struct Receiver {
    received: std::collections::HashMap<u16, u64>,
    last: std::collections::HashMap<u16, u64>,
    lapped: u64,
    /// Per type, the highest index that never arrived.
    highest_missing: std::collections::HashMap<u16, u64>,
}

impl Receiver {
    /// Reads one record within `wait`; its type and index. Records of one
    /// type must come in order, none twice.
    fn read(&mut self, sub: &mut shmbus::Subscriber, wait: Duration) -> Option<(u16, u64)> {
        match sub.read_timeout(WaitStrategy::BACKOFF, wait) {
            Ok(r) => {
                let (t, i) = (r.record_type(), check(&r));
                if let Some(&last) = self.last.get(&t) {
                    assert!(i > last, "type {t}: record {i} after {last}: out of order");
                    if i > last + 1 {
                        self.highest_missing.insert(t, i - 1);
                    }
                }
                self.last.insert(t, i);
                *self.received.entry(t).or_default() += 1;
                Some((t, i))
            }
            Err(RecvError::TimedOut | RecvError::Empty) => None,
            Err(RecvError::Lapped { missed }) => {
                self.lapped += missed;
                None
            }
            Err(e) => panic!("reading on B: {e}"),
        }
    }

    /// Reads until `n` records of `record_type` came one after another.
    fn until_contiguous(&mut self, sub: &mut shmbus::Subscriber, record_type: u16, n: u64) {
        let mut run = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while run < n {
            assert!(Instant::now() < deadline, "no {n} records in a row on B");
            let before = self.last.get(&record_type).copied();
            if let Some((t, i)) = self.read(sub, Duration::from_millis(100)) {
                if t == record_type {
                    run = if before.is_some_and(|b| i == b + 1) {
                        run + 1
                    } else {
                        0
                    };
                }
            }
        }
    }

    fn count(&self, record_type: u16) -> u64 {
        self.received.get(&record_type).copied().unwrap_or(0)
    }

    /// Publishes fence records on each of `topics` (`(topic, type)`) every
    /// 20 ms until one of each type reached `sub`, then reads until B is
    /// quiet: every record sent before a fence has then arrived, or been
    /// counted as lost by the sequence numbers that follow it. Returns how
    /// many fences each topic sent.
    fn fence(&mut self, sub: &mut shmbus::Subscriber, topics: &[(&Topic, u16)]) -> Vec<u64> {
        let mut publishers: Vec<_> = topics
            .iter()
            .map(|(t, _)| t.publisher().expect("fence publisher"))
            .collect();
        let mut sent = vec![0u64; topics.len()];
        let deadline = Instant::now() + Duration::from_secs(60);
        let arrived = |r: &Self| topics.iter().all(|(_, ty)| r.count(*ty) > 0);
        while !arrived(self) {
            assert!(Instant::now() < deadline, "no fence reached B");
            for (k, p) in publishers.iter_mut().enumerate() {
                if p.send_timeout(
                    topics[k].1,
                    &payload(sent[k]),
                    WaitStrategy::BACKOFF,
                    Duration::from_millis(20),
                )
                .is_ok()
                {
                    sent[k] += 1;
                }
            }
            let until = Instant::now() + Duration::from_millis(20);
            while Instant::now() < until {
                self.read(sub, Duration::from_millis(5));
            }
        }
        // The rest in flight; then nothing more comes.
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(500) {
            assert!(Instant::now() < deadline, "records keep coming on B");
            if self.read(sub, Duration::from_millis(50)).is_some() {
                quiet_since = Instant::now();
            }
        }
        sent
    }
}

/// Two bridges, A exporting `md` to B, a topic on each side, B's
/// subscriber warmed up; `a_args` and `b_args` added to each bridge's.
struct Link {
    // Dropped in this order: the bridges are killed (and waited for)
    // before the namespaces are removed.
    ba: BridgeProc,
    bb: BridgeProc,
    sub_b: shmbus::Subscriber,
    md_a: Topic,
    a: TempNs,
    b: TempNs,
}

impl Link {
    fn new(tag: &str, cfg: &TopicConfig, a_args: &[&str], b_args: &[&str]) -> Link {
        let (a, b) = (
            TempNs::new(&format!("{tag}-a")),
            TempNs::new(&format!("{tag}-b")),
        );
        let md_a = a.bus().topic("md", cfg).expect("topic on A");
        let port = free_port();
        let lease = LEASE_MS.to_string();
        let listen = format!("tcp/127.0.0.1:{port}");
        let mut args_a = vec!["--listen", &listen, "--allow", "md", "--lease-ms", &lease];
        args_a.extend_from_slice(a_args);
        let mut args_b = vec!["--connect", &listen, "--allow", "md", "--lease-ms", &lease];
        args_b.extend_from_slice(b_args);
        let ba = BridgeProc::spawn(&a, &args_a);
        let bb = BridgeProc::spawn(&b, &args_b);
        let md_b = imported_topic(&b.bus(), "md");
        let mut sub_b = md_b.subscriber(StartAt::Tail).expect("subscriber on B");
        warm_up(&md_a, &mut sub_b);
        Link {
            ba,
            bb,
            sub_b,
            md_a,
            a,
            b,
        }
    }
}

/// Sends `signal` to a bridge process.
fn signal(bridge: &BridgeProc, signal: i32) {
    // SAFETY: kill(2) on our own child's pid, which it keeps until waited
    // for (BridgeProc waits only when it kills).
    let rc = unsafe { libc::kill(bridge.pid(), signal) };
    assert_eq!(rc, 0, "kill({}, {signal})", bridge.pid());
}

/// Which bridge a stall test stops.
#[derive(Clone, Copy, Debug)]
enum Stalled {
    Exporter,
    Importer,
}

/// A stream A -> B, one bridge stopped (SIGSTOP) for [`STALL`] in the
/// middle, then continued; returns (records published, received on B,
/// lapped on B, gaps counted by B, export misses counted by A) after the
/// fence.
fn stalled_stream(tag: &str, policy: Policy, stalled: Stalled) -> (u64, u64, u64, u64, u64) {
    let cfg = stall_config(policy);
    let mut link = Link::new(tag, &cfg, &[], &[]);
    let gaps_before = stats(&link.b, "md").gaps;
    let missed_before = stats(&link.a, "md").export_missed;
    let mut rx = Receiver::default();
    let stream = Stream::start(&link.md_a, DATA);
    rx.until_contiguous(&mut link.sub_b, DATA, 2000);

    let bridge = match stalled {
        Stalled::Exporter => &link.ba,
        Stalled::Importer => &link.bb,
    };
    signal(bridge, libc::SIGSTOP);
    // B's subscriber reads what was on its topic; the stream goes on (or
    // blocks, if a stopped exporter holds a Backpressure log full).
    let until = Instant::now() + STALL;
    while Instant::now() < until {
        rx.read(&mut link.sub_b, Duration::from_millis(50));
    }
    signal(bridge, libc::SIGCONT);
    // Forwarding resumes: records in a row again.
    let resumed_from = rx.count(DATA);
    rx.until_contiguous(&mut link.sub_b, DATA, 2000);
    assert!(rx.count(DATA) > resumed_from, "forwarding resumed");
    let published = stream.finish();
    let fences = rx.fence(&mut link.sub_b, &[(&link.md_a, FENCE)]);
    assert_eq!(
        rx.last.get(&DATA).copied(),
        Some(published - 1),
        "the last record arrived"
    );
    let gaps = stats(&link.b, "md").gaps - gaps_before;
    let export_missed = stats(&link.a, "md").export_missed - missed_before;
    (
        published + fences[0],
        rx.count(DATA) + rx.count(FENCE),
        rx.lapped,
        gaps,
        export_missed,
    )
}

#[test]
fn a_stopped_importer_loses_nothing_uncounted_on_a_backpressure_topic() {
    let (published, received, lapped, gaps, export_missed) =
        stalled_stream("bridge-stop-imp", Policy::Backpressure, Stalled::Importer);
    eprintln!("importer stopped: {published} published, {received} received, {gaps} gaps");
    assert_eq!(
        (lapped, export_missed),
        (0, 0),
        "Backpressure drops nothing"
    );
    assert_eq!(
        received + gaps,
        published,
        "every record arrived or is counted in gaps"
    );
}

#[test]
fn a_stopped_exporter_loses_nothing_uncounted_on_a_backpressure_topic() {
    let (published, received, lapped, gaps, export_missed) =
        stalled_stream("bridge-stop-exp", Policy::Backpressure, Stalled::Exporter);
    eprintln!("exporter stopped: {published} published, {received} received, {gaps} gaps");
    assert_eq!(
        (lapped, export_missed),
        (0, 0),
        "Backpressure drops nothing"
    );
    assert_eq!(
        received + gaps,
        published,
        "every record arrived or is counted in gaps"
    );
}

#[test]
fn a_lapped_exporter_on_an_overwrite_topic_counts_what_b_did_not_get() {
    let (published, received, lapped, gaps, export_missed) =
        stalled_stream("bridge-lap-exp", Policy::Overwrite, Stalled::Exporter);
    eprintln!(
        "overwrite exporter stopped: {published} published, {received} received, \
         {export_missed} export missed, {gaps} gaps, {lapped} lapped on B"
    );
    assert!(export_missed > 0, "the stopped exporter was lapped");
    assert_eq!(
        published - received - lapped,
        export_missed + gaps,
        "what B's subscriber did not get is what the bridges counted"
    );
}

/// Record type of the second exporter's stream and fences.
const DATA2: u16 = 4;
const FENCE2: u16 = 5;

#[test]
fn a_restarted_importer_counts_the_gaps_of_two_exporters() {
    let (a1, a2, b) = (
        TempNs::new("bridge-two-a1"),
        TempNs::new("bridge-two-a2"),
        TempNs::new("bridge-two-b"),
    );
    let cfg = config(4096, Policy::Backpressure);
    let md1 = a1.bus().topic("md", &cfg).expect("topic on A1");
    let md2 = a2.bus().topic("md", &cfg).expect("topic on A2");
    let listen = format!("tcp/127.0.0.1:{}", free_port());
    let mut bb = BridgeProc::spawn(&b, &["--listen", &listen, "--allow", "md"]);
    // Both send on when B goes, so both lose records while it is down.
    let exporter = [
        "--connect",
        &listen,
        "--allow",
        "md",
        "--reconnect-hold-ms",
        "0",
    ];
    let _b1 = BridgeProc::spawn(&a1, &exporter);
    let _b2 = BridgeProc::spawn(&a2, &exporter);
    let md_b = imported_topic(&b.bus(), "md");
    let mut sub = md_b.subscriber(StartAt::Tail).expect("subscriber on B");
    warm_up(&md1, &mut sub);
    warm_up(&md2, &mut sub);
    let gaps_before = stats(&b, "md").gaps;

    let mut rx = Receiver::default();
    let (s1, s2) = (Stream::start(&md1, DATA), Stream::start(&md2, DATA2));
    rx.until_contiguous(&mut sub, DATA, 1000);
    rx.until_contiguous(&mut sub, DATA2, 1000);
    bb.kill();
    while rx.read(&mut sub, Duration::from_millis(300)).is_some() {}
    let (at_kill1, at_kill2) = (s1.sent(), s2.sent());
    wait_until(
        "both streams to go on while B is down",
        Duration::from_secs(20),
        || (s1.sent() > at_kill1 + 1000 && s2.sent() > at_kill2 + 1000).then_some(()),
    );
    bb.restart();
    rx.until_contiguous(&mut sub, DATA, 1000);
    rx.until_contiguous(&mut sub, DATA2, 1000);
    let (p1, p2) = (s1.finish(), s2.finish());
    let fences = rx.fence(&mut sub, &[(&md1, FENCE), (&md2, FENCE2)]);
    let lost1 = p1 + fences[0] - rx.count(DATA) - rx.count(FENCE);
    let lost2 = p2 + fences[1] - rx.count(DATA2) - rx.count(FENCE2);
    let after = stats(&b, "md");
    eprintln!("two exporters: {lost1} and {lost2} records lost while B was down; {after:?}");
    assert!(
        lost1 > 0 && lost2 > 0,
        "both exporters sent records while B was down"
    );
    assert_eq!(
        after.gaps - gaps_before,
        lost1 + lost2,
        "the restarted importer counted the gaps of both origins"
    );
    assert!(after.origins.len() >= 2, "{after:?}");
}

#[test]
fn an_exporter_holds_its_publishers_back_while_the_importer_restarts() {
    let cfg = config(4096, Policy::Backpressure);
    let mut link = Link::new("bridge-hold", &cfg, &["--reconnect-hold-ms", "60000"], &[]);
    let gaps_before = stats(&link.b, "md").gaps;
    let mut rx = Receiver::default();
    let stream = Stream::start(&link.md_a, DATA);
    rx.until_contiguous(&mut link.sub_b, DATA, 2000);
    link.bb.kill();
    while rx
        .read(&mut link.sub_b, Duration::from_millis(300))
        .is_some()
    {}
    // A's exporter holds: it reads no more, so the stream fills A's log
    // and waits.
    let held_at = wait_until(
        "the stream to be held back",
        Duration::from_secs(30),
        || {
            let sent = stream.sent();
            std::thread::sleep(Duration::from_millis(300));
            (stream.sent() == sent).then_some(sent)
        },
    );
    link.bb.restart();
    rx.until_contiguous(&mut link.sub_b, DATA, 2000);
    let published = stream.finish();
    let fences = rx.fence(&mut link.sub_b, &[(&link.md_a, FENCE)]);
    let gaps = stats(&link.b, "md").gaps - gaps_before;
    let received = rx.count(DATA) + rx.count(FENCE);
    eprintln!(
        "held at {held_at}: {published} published, {received} received, {gaps} gaps, highest lost {:?}",
        rx.highest_missing.get(&DATA)
    );
    assert_eq!(
        received + gaps,
        published + fences[0],
        "every record arrived or is counted in gaps"
    );
    // What A's log held when the stream stopped (its exporter's cursor on
    // on) was sent once B was back: only records the exporter sent before
    // it saw B go can be lost.
    let unread_from = held_at - u64::from(cfg.slots);
    if let Some(&lost) = rx.highest_missing.get(&DATA) {
        assert!(
            lost < unread_from,
            "record {lost} was lost, but A's exporter had not read it when B went"
        );
    }
}
