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
/// into the root's target directory: the bridge does not depend on it.
fn ring_dump_bin() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "ring-dump", "--manifest-path"])
                .arg(root.join("Cargo.toml"))
                // The root's own target directory: never the one this test
                // was built in (its build lock may be held meanwhile).
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("run cargo build -p ring-dump");
            assert!(status.success(), "building ring-dump failed");
            root.join("target").join("debug").join("ring-dump")
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
