//! Topics across real processes: every publisher and subscriber below that
//! is not the test process itself is a separate OS process (this test
//! binary re-executed with a role in its environment, as in
//! `spsc_cross_process.rs`).
//!
//! * fan-out: one publisher, 50 subscriber processes sleeping on the futex,
//!   every record delivered to each, in order and intact;
//! * topic isolation: routed Protocol V2 traffic and plain publishers on
//!   four topics, nothing crosses from one topic to another;
//! * four producer processes on one topic: every record seen exactly once,
//!   each producer's in order;
//! * `Overwrite` with a slow subscriber: received + missed = published,
//!   exactly, and nothing torn;
//! * a subscriber killed by SIGKILL stops gating a blocked publisher; a
//!   durable subscriber killed by SIGKILL keeps gating and resumes exactly
//!   where it stopped;
//! * 16 processes racing to create the same topic, 200 times: exactly one
//!   creator each time; and a configuration mismatch names both sides;
//! * a publisher killed between claim and commit is passed over after the
//!   claim timeout; two `Overwrite` publisher processes still give exact
//!   loss counts;
//! * two defects of the library, each pinned by a test that fails until it
//!   is fixed (section 8): a subscriber killed asleep on the futex leaves a
//!   sleeper count behind, and a `StartAt::Oldest` subscriber under
//!   `Backpressure` can be overwritten while it reads.
//!
//! Children report to the parent through stdout lines (the harness adds
//! its own lines around them) and fail by panicking, which makes their exit
//! status non-zero. Every wait in a child or in the parent is bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{child_role, splitmix, wait_stopped, SpawnOneAtATime, TempNs, CHILD_BASE, CHILD_ROLE};
use shmbus::bus::{
    Bus, BusError, Policy, QueueConfig, RecvError, RouterConfig, StartAt, Topic, TopicConfig,
};
use shmbus::directory::DirectoryError;
use shmbus::record::{
    self, venue, Checksum, EconomicsTlv, Fixed8, HeartbeatTlv, Instrument, MessageBuilder,
    MessageView, OrderRequestTlv, ParseOptions, RelayDomain, Side, SignalIdentityTlv, SourceType,
    TradeTlv, Verify,
};
use shmbus::ring::broadcast::{ClaimError, RegisterError};
use shmbus::wait::WaitStrategy;

/// Extra argument handed to a child (a producer id, a count...).
const CHILD_ARG: &str = "SHMBUS_TEST_ARG";
/// Bound on any single wait in these tests.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A child process running one role of a test, its stdout piped back.
/// Killed and reaped on drop if the test fails before waiting for it.
struct Proc {
    child: Child,
    out: BufReader<ChildStdout>,
    name: String,
}

impl Proc {
    fn spawn(test: &str, role: &str, base: &Path, arg: impl std::fmt::Display) -> Proc {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_BASE, base)
            .env(CHILD_ARG, arg.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn_one_at_a_time();
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Proc {
            child,
            out,
            name: format!("{role} {arg}"),
        }
    }

    /// Reads until the child says `want`.
    fn expect_line(&mut self, want: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read child stdout");
            assert!(n > 0, "child {} ended before saying {want:?}", self.name);
            if said(&line) == Some(want) {
                return;
            }
        }
    }

    /// Reads everything the child prints, waits for it, asserts it
    /// succeeded and returns what it said.
    fn finish(mut self) -> Vec<String> {
        let lines: Vec<String> = (&mut self.out)
            .lines()
            .filter_map(|l| said(&l.expect("read child stdout")).map(str::to_owned))
            .collect();
        let status = self.child.wait().expect("wait child");
        assert!(status.success(), "child {} failed: {status}", self.name);
        lines
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The role, base directory and argument of this process, if it is a child.
fn child() -> Option<(String, std::path::PathBuf, String)> {
    let (role, base) = child_role()?;
    Some((role, base, std::env::var(CHILD_ARG).unwrap_or_default()))
}

/// Marks what a child says on stdout: the harness prints around it, and
/// with `--nocapture` on the same line ("test name ... ").
const SAYS: &str = "<child says> ";

fn say(line: impl std::fmt::Display) {
    println!("{SAYS}{line}");
}

/// What a child said on one stdout line.
fn said(line: &str) -> Option<&str> {
    line.split_once(SAYS).map(|(_, s)| s.trim_end())
}

/// The first whitespace-separated fields after `prefix` in `lines`.
fn field(lines: &[String], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:?}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn open_bus(base: &Path) -> Bus {
    Bus::at(base, "t").expect("open bus")
}

fn config(slots: u32, max_payload: u32, policy: Policy) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload,
        policy,
        max_subscribers: 64,
        max_publishers: 16,
        reclaim_after: Duration::from_secs(2),
    }
}

// ---------------------------------------------------------------------------
// Checked payloads: [seq u64][tag u64][pattern...][crc32 of all before]
// ---------------------------------------------------------------------------

const MIN_LEN: usize = 20;

/// Payload length of record `seq` from producer `tag`: 20..=max.
fn len_of(tag: u64, seq: u64, max: usize) -> usize {
    MIN_LEN + (splitmix(seq ^ (tag << 40)) % (max - MIN_LEN + 1) as u64) as usize
}

fn fill(tag: u64, seq: u64, buf: &mut [u8]) {
    let body = buf.len() - 4;
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&tag.to_le_bytes());
    let mut x = splitmix(seq ^ tag.rotate_left(17));
    for chunk in buf[16..body].chunks_mut(8) {
        x = splitmix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let crc = crc32fast::hash(&buf[..body]);
    buf[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Checks a payload made by [`fill`] and returns its `(tag, seq)`.
fn check(payload: &[u8], max: usize) -> (u64, u64) {
    assert!(payload.len() >= MIN_LEN, "record too short");
    let body = payload.len() - 4;
    let stored = u32::from_le_bytes(payload[body..].try_into().expect("4 bytes"));
    assert_eq!(crc32fast::hash(&payload[..body]), stored, "record is torn");
    let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let tag = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    assert_eq!(payload.len(), len_of(tag, seq, max), "wrong length");
    (tag, seq)
}

/// Publishes record `seq` of producer `tag`, waiting (bounded) for room.
fn publish_checked(p: &mut shmbus::ring::broadcast::Publisher, tag: u64, seq: u64, max: usize) {
    let mut claim = p
        .claim_timeout(len_of(tag, seq, max), WaitStrategy::BACKOFF, PATIENCE)
        .unwrap_or_else(|e| panic!("claiming record {seq} of producer {tag}: {e}"));
    fill(tag, seq, &mut claim);
    claim.set_record_type(tag as u16);
    claim.commit().expect("committed within the claim timeout");
}

// ---------------------------------------------------------------------------
// 1. Fan-out
// ---------------------------------------------------------------------------

/// One publisher, 50 subscriber processes blocking on the futex, a log
/// much smaller than the stream: every subscriber gets all 10,000 records in
/// order and intact, and the publisher is gated by the slowest of them. On
/// a topic made for several publishers (commits by compare-and-swap) and on
/// one made for a sole publisher (commits by plain store; the sleepers run
/// `membarrier` instead), so no wake-up is lost either way.
#[test]
fn fan_out_to_fifty_subscriber_processes() {
    const TEST: &str = "fan_out_to_fifty_subscriber_processes";
    const SUBSCRIBERS: usize = 50;
    const RECORDS: u64 = 10_000;
    const MAX: usize = 64;
    let cfg = |publishers: &str| TopicConfig {
        max_publishers: if publishers == "sole" { 1 } else { 16 },
        ..config(1024, MAX as u32, Policy::Backpressure)
    };
    if let Some((role, base, publishers)) = child() {
        assert_eq!(role, "subscriber");
        let bus = open_bus(&base);
        let topic = bus
            .topic("market_data", &cfg(&publishers))
            .expect("open topic");
        let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
        say("ready");
        for seq in 0..RECORDS {
            let rec = sub
                .read_timeout(WaitStrategy::BLOCKING, PATIENCE)
                .unwrap_or_else(|e| panic!("waiting for record {seq}: {e}"));
            assert_eq!(rec.sequence(), seq, "log sequence");
            assert_eq!(check(&rec, MAX), (0, seq), "content");
            assert_eq!(rec.record_type(), (seq % 7) as u16);
        }
        assert_eq!(
            sub.try_read().err(),
            Some(RecvError::Empty),
            "extra records"
        );
        say(format!("done {RECORDS}"));
        return;
    }
    for publishers in ["several", "sole"] {
        let t = TempNs::new("fanout");
        let bus = open_bus(&t.base);
        let topic = bus
            .topic("market_data", &cfg(publishers))
            .expect("create topic");
        assert!(topic.was_created());
        let mut subs: Vec<Proc> = (0..SUBSCRIBERS)
            .map(|_| Proc::spawn(TEST, "subscriber", &t.base, publishers))
            .collect();
        for s in &mut subs {
            s.expect_line("ready");
        }
        let started = Instant::now();
        let mut p = topic.publisher().expect("publisher");
        for seq in 0..RECORDS {
            let mut claim = p
                .claim_timeout(len_of(0, seq, MAX), WaitStrategy::BACKOFF, PATIENCE)
                .unwrap_or_else(|e| panic!("claiming record {seq}: {e}"));
            fill(0, seq, &mut claim);
            claim.set_record_type((seq % 7) as u16);
            claim.commit().expect("committed within the claim timeout");
        }
        for s in subs {
            assert_eq!(field(&s.finish(), "done "), [RECORDS.to_string()]);
        }
        eprintln!(
            "fan-out, topic for {publishers} publisher(s): {RECORDS} records to \
             {SUBSCRIBERS} processes in {:?}",
            started.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Topic isolation
// ---------------------------------------------------------------------------

/// Record type of a message sent through the router (the router uses the
/// domain number), of one sent by a plain publisher, and of the last one.
const PLAIN: u16 = 0x100;
const END: u16 = 0xFFFF;

/// Builds message `seq` of `domain` into `buf`, with a computed checksum.
fn build(domain: RelayDomain, seq: u64, buf: &mut [u8]) -> usize {
    let b = match domain {
        RelayDomain::MarketData => MessageBuilder::new(buf, domain, SourceType::BinanceCollector)
            .typed(&TradeTlv::new(
                Instrument::coin(venue::BINANCE, "BTC").expect("ticker"),
                Fixed8::from_raw(6_500_000_000_000 + (seq % 1_000_000) as i64),
                Fixed8::from_raw(12_500_000),
                if seq % 2 == 0 { Side::Buy } else { Side::Sell },
                seq,
            )),
        RelayDomain::Signal => MessageBuilder::new(buf, domain, SourceType::ArbitrageStrategy)
            .typed(&SignalIdentityTlv::new([seq as u8; 16]))
            .typed(&EconomicsTlv::new([7; 32])),
        RelayDomain::Execution => MessageBuilder::new(buf, domain, SourceType::ExecutionEngine)
            .typed(&OrderRequestTlv::new([seq as u8; 32])),
        RelayDomain::System => MessageBuilder::new(buf, domain, SourceType::Dashboard)
            .typed(&HeartbeatTlv::new([1; 16])),
    };
    b.sequence(seq)
        .timestamp_ns(1_700_000_000_000_000_000u64.wrapping_add(seq))
        .finish(Checksum::Compute)
        .expect("message fits")
}

/// Publishers on all four routed topics: the test process through the
/// router, a child process through plain publishers. One subscriber
/// process per topic checks the relay domain of everything it gets and
/// counts it: nothing crosses topics, nothing is lost.
#[test]
fn topics_are_isolated_from_each_other() {
    const TEST: &str = "topics_are_isolated_from_each_other";
    const ROUTED: u64 = 20_000;
    const PLAIN_PER_TOPIC: u64 = 3_000;
    let cfg = config(256, 128, Policy::Backpressure);
    if let Some((role, base, arg)) = child() {
        let bus = open_bus(&base);
        match role.as_str() {
            "subscriber" => {
                let topic = record::DomainTopic::ALL[arg.parse::<usize>().expect("topic index")];
                let domain = topic.domain();
                let t = bus.topic(topic.name(), &cfg).expect("open topic");
                let mut sub = t.subscriber(StartAt::Tail).expect("subscribe");
                say("ready");
                let (mut routed, mut plain, mut ends) = (0u64, 0u64, 0);
                let (mut last_routed, mut last_plain) = (None, None);
                let mut buf = [0u8; 128];
                while ends < 2 {
                    let (ty, len) = sub
                        .recv_timeout(&mut buf, WaitStrategy::BLOCKING, PATIENCE)
                        .expect("record");
                    let msg = &buf[..len];
                    assert_eq!(msg[4], domain as u8, "a {ty} record crossed into {topic}");
                    let view = MessageView::parse(msg, ParseOptions::new(Verify::Strict))
                        .expect("a valid Protocol V2 message");
                    assert_eq!(view.header().relay_domain(), Some(domain));
                    assert_eq!(record::route(msg).expect("routable"), topic);
                    let seq = view.header().sequence();
                    match ty {
                        END => ends += 1,
                        t if t == u16::from(domain as u8) => {
                            // The router's messages to this topic, in order.
                            assert!(last_routed < Some(seq), "routed out of order");
                            last_routed = Some(seq);
                            routed += 1;
                        }
                        t if t == PLAIN | u16::from(domain as u8) => {
                            assert_eq!(last_plain.map_or(0, |s| s + 1), seq, "plain lost");
                            last_plain = Some(seq);
                            plain += 1;
                        }
                        other => panic!("record type {other} on {topic}"),
                    }
                }
                assert_eq!(sub.try_recv(&mut buf).err(), Some(RecvError::Empty));
                say(format!("counts {routed} {plain}"));
            }
            "plain-publisher" => {
                let mut pubs: Vec<_> = record::DomainTopic::ALL
                    .iter()
                    .map(|t| {
                        let topic = bus.topic(t.name(), &cfg).expect("open topic");
                        topic.publisher().expect("publisher")
                    })
                    .collect();
                let mut buf = [0u8; 128];
                for seq in 0..PLAIN_PER_TOPIC {
                    for (p, t) in pubs.iter_mut().zip(record::DomainTopic::ALL) {
                        let domain = t.domain();
                        let len = build(domain, seq, &mut buf);
                        let mut c = p
                            .claim_timeout(len, WaitStrategy::BACKOFF, PATIENCE)
                            .expect("room");
                        c.copy_from_slice(&buf[..len]);
                        c.set_record_type(PLAIN | u16::from(domain as u8));
                        c.commit().expect("committed within the claim timeout");
                    }
                }
                for (p, t) in pubs.iter_mut().zip(record::DomainTopic::ALL) {
                    let len = build(t.domain(), u64::MAX, &mut buf);
                    let mut c = p
                        .claim_timeout(len, WaitStrategy::BACKOFF, PATIENCE)
                        .expect("room");
                    c.copy_from_slice(&buf[..len]);
                    c.set_record_type(END);
                    c.commit().expect("committed within the claim timeout");
                }
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let t = TempNs::new("isolation");
    let bus = open_bus(&t.base);
    let mut subs: Vec<Proc> = (0..record::DomainTopic::ALL.len())
        .map(|i| Proc::spawn(TEST, "subscriber", &t.base, i))
        .collect();
    for s in &mut subs {
        s.expect_line("ready");
    }
    let plain = Proc::spawn(TEST, "plain-publisher", &t.base, "");
    // Every domain a topic here, `execution` included (by default it is a
    // work queue: see queue_cross_process.rs).
    let routes =
        RouterConfig::new(cfg, QueueConfig::default()).route(record::DomainTopic::Execution, cfg);
    let mut router = bus.router(routes);
    let mut sent = [0u64; 4];
    let mut buf = [0u8; 128];
    for seq in 0..ROUTED {
        let i = (splitmix(seq) % 4) as usize;
        let domain = RelayDomain::ALL[i];
        let len = build(domain, seq, &mut buf);
        let to = router
            .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
            .expect("routed");
        assert_eq!(to, record::DomainTopic::ALL[i]);
        sent[i] += 1;
    }
    // A message with no valid relay domain goes nowhere.
    let len = build(RelayDomain::System, 0, &mut buf);
    buf[4] = 9;
    assert!(matches!(
        router.send_blocking(&buf[..len], WaitStrategy::BACKOFF),
        Err(BusError::Route(_))
    ));
    for topic in record::DomainTopic::ALL {
        let mut p = bus
            .open_topic(topic.name())
            .expect("the router created it")
            .publisher()
            .expect("publisher");
        let len = build(topic.domain(), u64::MAX, &mut buf);
        let mut c = p
            .claim_timeout(len, WaitStrategy::BACKOFF, PATIENCE)
            .expect("room");
        c.copy_from_slice(&buf[..len]);
        c.set_record_type(END);
        c.commit().expect("committed within the claim timeout");
    }
    plain.finish();
    for (i, s) in subs.into_iter().enumerate() {
        let counts = field(&s.finish(), "counts ");
        assert_eq!(
            counts,
            [sent[i].to_string(), PLAIN_PER_TOPIC.to_string()],
            "topic {}",
            record::DomainTopic::ALL[i]
        );
    }
    let mut names: Vec<String> = bus.topics().into_iter().map(|r| r.name).collect();
    names.sort();
    assert_eq!(names, ["execution", "market_data", "signals", "system"]);
}

// ---------------------------------------------------------------------------
// 3. Many producer processes
// ---------------------------------------------------------------------------

/// Four producer processes publish 20,000 records each on one topic; the
/// test process and a subscriber process each see every record exactly
/// once, each producer's records in its order.
#[test]
fn four_producer_processes_on_one_topic() {
    const TEST: &str = "four_producer_processes_on_one_topic";
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 20_000;
    const MAX: usize = 48;
    let cfg = config(1024, MAX as u32, Policy::Backpressure);

    /// Reads every record of every producer, checking order per producer.
    fn drain(sub: &mut shmbus::ring::broadcast::Subscriber) {
        let mut next = [0u64; PRODUCERS as usize];
        for _ in 0..PRODUCERS * PER_PRODUCER {
            let rec = sub
                .read_timeout(WaitStrategy::BACKOFF, PATIENCE)
                .expect("record");
            let (tag, seq) = check(&rec, MAX);
            assert!(tag < PRODUCERS, "unknown producer {tag}");
            assert_eq!(rec.record_type(), tag as u16);
            assert_eq!(
                seq, next[tag as usize],
                "producer {tag}: duplicate, lost or out of order"
            );
            next[tag as usize] += 1;
        }
        assert_eq!(next, [PER_PRODUCER; PRODUCERS as usize]);
    }

    if let Some((role, base, arg)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("orders", &cfg).expect("open topic");
        match role.as_str() {
            "producer" => {
                let tag: u64 = arg.parse().expect("producer id");
                let mut p = topic.publisher().expect("publisher");
                for seq in 0..PER_PRODUCER {
                    publish_checked(&mut p, tag, seq, MAX);
                }
                assert_eq!(p.published(), PER_PRODUCER);
            }
            "subscriber" => {
                let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
                say("ready");
                drain(&mut sub);
                // Nothing more once the producers are done.
                assert_eq!(
                    sub.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(200))
                        .err(),
                    Some(RecvError::TimedOut)
                );
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let t = TempNs::new("producers");
    let bus = open_bus(&t.base);
    let topic = bus.topic("orders", &cfg).expect("create topic");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
    let mut reader = Proc::spawn(TEST, "subscriber", &t.base, "");
    reader.expect_line("ready");
    let producers: Vec<Proc> = (0..PRODUCERS)
        .map(|i| Proc::spawn(TEST, "producer", &t.base, i))
        .collect();
    drain(&mut sub);
    for p in producers {
        p.finish();
    }
    assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
    reader.finish();
}

// ---------------------------------------------------------------------------
// 4. Overwrite with a slow subscriber
// ---------------------------------------------------------------------------

/// A publisher process streams through a 64-slot `Overwrite` log as fast as
/// it can; the test process reads slowly, copying each record. Every loss is
/// reported with its exact size (received + missed = published), the stream
/// resumes right after each gap, and no record is ever returned torn.
#[test]
fn overwrite_reports_every_loss_to_a_slow_subscriber() {
    const TEST: &str = "overwrite_reports_every_loss_to_a_slow_subscriber";
    const RECORDS: u64 = 2_000_000;
    const MAX: usize = 64;
    let cfg = config(64, MAX as u32, Policy::Overwrite);
    if let Some((_, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("quotes", &cfg).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        for seq in 0..RECORDS {
            let mut claim = p
                .try_claim(len_of(1, seq, MAX))
                .expect("overwrite never waits");
            fill(1, seq, &mut claim);
            claim.set_record_type(seq as u16);
            assert_eq!(claim.commit(), Ok(seq));
        }
        say(format!("published {}", p.published()));
        return;
    }
    let t = TempNs::new("overwrite");
    let bus = open_bus(&t.base);
    let topic = bus.topic("quotes", &cfg).expect("create topic");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
    let publisher = Proc::spawn(TEST, "publisher", &t.base, "");
    let (mut received, mut missed, mut laps) = (0u64, 0u64, 0u64);
    let mut next = 0u64;
    let mut buf = [0u8; MAX];
    loop {
        match sub.recv_timeout(&mut buf, WaitStrategy::BACKOFF, PATIENCE) {
            Ok((ty, len)) => {
                let (tag, seq) = check(&buf[..len], MAX);
                assert_eq!((tag, seq), (1, next), "records resume right after a gap");
                assert_eq!(ty, seq as u16);
                received += 1;
                next = seq + 1;
                assert_eq!(sub.position(), next);
                if seq == RECORDS - 1 {
                    break;
                }
                // The slow part: a pause every few records.
                if received % 8 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            Err(RecvError::Lapped { missed: m }) => {
                assert!(m > 0);
                missed += m;
                laps += 1;
                next += m;
                assert_eq!(sub.position(), next);
            }
            Err(e) => panic!("after {received} records: {e}"),
        }
    }
    let lines = publisher.finish();
    assert_eq!(field(&lines, "published "), [RECORDS.to_string()]);
    assert_eq!(
        received + missed,
        RECORDS,
        "every record received or counted"
    );
    assert_eq!(sub.missed(), missed);
    assert!(
        laps > 0 && received > 64,
        "the subscriber was lapped and read"
    );
    assert_eq!(sub.try_recv(&mut buf).err(), Some(RecvError::Empty));
    eprintln!("overwrite: {received} received, {missed} missed in {laps} laps");
}

/// A publisher process overwrites a 64-slot `Overwrite` log at full speed,
/// 10 million records, half written through a claim (staged, copied in by
/// the commit) and half with `try_send` (written straight into the
/// slot); the test process reads as fast as it can, in turn by copy
/// (`try_recv`), by closure (`try_read_with`) and by borrow (`try_read`).
/// Reader and writer meet in the same slots all the time, and no record is
/// ever handed out torn (each carries a CRC); received + missed =
/// published, exactly.
#[test]
fn overwrite_at_full_speed_never_hands_out_a_torn_record() {
    const TEST: &str = "overwrite_at_full_speed_never_hands_out_a_torn_record";
    const RECORDS: u64 = 10_000_000;
    const MAX: usize = 64;
    let cfg = config(64, MAX as u32, Policy::Overwrite);
    if let Some((_, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("quotes", &cfg).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        let mut buf = [0u8; MAX];
        for seq in 0..RECORDS {
            let len = len_of(1, seq, MAX);
            if seq % 2 == 0 {
                let mut claim = p.try_claim(len).expect("overwrite never waits");
                fill(1, seq, &mut claim);
                claim.set_record_type(seq as u16);
                assert_eq!(claim.commit(), Ok(seq));
            } else {
                fill(1, seq, &mut buf[..len]);
                assert_eq!(p.try_send(seq as u16, &buf[..len]), Ok(seq));
            }
        }
        say(format!("published {}", p.published()));
        return;
    }
    let t = TempNs::new("overwrite-torn");
    let bus = open_bus(&t.base);
    let topic = bus.topic("quotes", &cfg).expect("create topic");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
    let publisher = Proc::spawn(TEST, "publisher", &t.base, "");
    let (mut received, mut missed, mut laps) = (0u64, 0u64, 0u64);
    let mut by = [0u64; 3];
    let mut next = 0u64;
    let mut buf = [0u8; MAX];
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while next < RECORDS {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {next} after {received} received, {missed} missed"
        );
        let how = (received + laps) % 3;
        let got = match how {
            0 => sub
                .try_recv(&mut buf)
                .map(|(ty, len)| (ty, check(&buf[..len], MAX))),
            1 => sub.try_read_with(|ty, bytes| (ty, check(bytes, MAX))),
            _ => sub
                .try_read()
                .map(|rec| (rec.record_type(), check(&rec, MAX))),
        };
        match got {
            Ok((ty, (tag, seq))) => {
                assert_eq!((tag, seq), (1, next), "records resume right after a gap");
                assert_eq!(ty, seq as u16);
                received += 1;
                by[how as usize] += 1;
                next = seq + 1;
            }
            Err(RecvError::Lapped { missed: m }) => {
                assert!(m > 0);
                missed += m;
                laps += 1;
                next += m;
                assert_eq!(sub.position(), next);
            }
            Err(RecvError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("after {received} records: {e}"),
        }
    }
    let lines = publisher.finish();
    assert_eq!(field(&lines, "published "), [RECORDS.to_string()]);
    assert_eq!(next, RECORDS, "no record past the last one");
    assert_eq!(
        received + missed,
        RECORDS,
        "every record received or counted"
    );
    assert_eq!(sub.missed(), missed);
    assert!(
        by.iter().all(|&n| n > 0),
        "every read kind was used: {by:?}"
    );
    eprintln!(
        "overwrite at full speed: {received} received (copy {}, closure {}, borrow {}), {missed} missed in {laps} laps",
        by[0], by[1], by[2]
    );
}

// ---------------------------------------------------------------------------
// 5. Subscribers killed by SIGKILL
// ---------------------------------------------------------------------------

/// A subscriber process stops reading and gates the publisher (the test
/// process); it is killed with SIGKILL; the blocked publisher notices the
/// death and goes on publishing within moments.
#[test]
fn killed_subscriber_stops_gating_a_blocked_publisher() {
    const TEST: &str = "killed_subscriber_stops_gating_a_blocked_publisher";
    const SLOTS: u64 = 64;
    const READ: u64 = 10;
    const MAX: usize = 32;
    let cfg = config(SLOTS as u32, MAX as u32, Policy::Backpressure);
    if let Some((_, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("md", &cfg).expect("open topic");
        let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
        say("ready");
        for seq in 0..READ {
            let rec = sub
                .read_timeout(WaitStrategy::BLOCKING, PATIENCE)
                .expect("record");
            assert_eq!(check(&rec, MAX), (0, seq));
        }
        say("stalled");
        std::thread::sleep(Duration::from_secs(60));
        panic!("the parent should have killed this process");
    }
    let t = TempNs::new("kill-sub");
    let bus = open_bus(&t.base);
    let topic = bus.topic("md", &cfg).expect("create topic");
    let mut stalled = Proc::spawn(TEST, "stalling-subscriber", &t.base, "");
    stalled.expect_line("ready");
    let mut p = topic.publisher().expect("publisher");
    for seq in 0..READ {
        publish_checked(&mut p, 0, seq, MAX);
    }
    stalled.expect_line("stalled");
    let mut seq = READ;
    loop {
        let mut claim = match p.try_claim(len_of(0, seq, MAX)) {
            Ok(c) => c,
            Err(ClaimError::Full) => break,
            Err(e) => panic!("{e}"),
        };
        fill(0, seq, &mut claim);
        claim.commit().expect("committed within the claim timeout");
        seq += 1;
    }
    assert_eq!(seq, READ + SLOTS, "gated by the live subscriber's cursor");
    assert_eq!(
        p.claim_timeout(8, WaitStrategy::BACKOFF, Duration::from_millis(200))
            .err(),
        Some(ClaimError::TimedOut),
        "still gated while it lives"
    );

    stalled.child.kill().expect("SIGKILL the subscriber");
    let status = stalled.child.wait().expect("reap");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let killed = Instant::now();
    let more = 4 * SLOTS;
    for s in seq..seq + more {
        let mut claim = p
            .claim_timeout(
                len_of(0, s, MAX),
                WaitStrategy::BACKOFF,
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{e} {:?} after the kill", killed.elapsed()));
        fill(0, s, &mut claim);
        claim.commit().expect("committed within the claim timeout");
    }
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{more} records took {took:?}"
    );
    eprintln!("publisher resumed: {more} records within {took:?} of the kill");
}

/// A durable subscriber process reads and releases exactly K records and
/// kills itself. While it is gone its cursor keeps gating the publisher;
/// a new process attaching under the same name gets record K first, then
/// every record to the end: nothing lost, nothing twice.
#[test]
fn durable_subscriber_resumes_after_sigkill() {
    const TEST: &str = "durable_subscriber_resumes_after_sigkill";
    const SLOTS: u64 = 64;
    const K: u64 = 37;
    const TOTAL: u64 = 1_000;
    const MAX: usize = 40;
    const NAME: &str = "risk-1";
    let cfg = config(SLOTS as u32, MAX as u32, Policy::Backpressure);
    if let Some((role, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("execution", &cfg).expect("open topic");
        let mut sub = topic
            .durable_subscriber(NAME, StartAt::Oldest)
            .expect("attach durable subscriber");
        say("ready");
        match role.as_str() {
            "first" => {
                for seq in 0..K {
                    let rec = sub
                        .read_timeout(WaitStrategy::BLOCKING, PATIENCE)
                        .expect("record");
                    assert_eq!(check(&rec, MAX), (0, seq));
                }
                // SAFETY: kill(2) on our own pid with a valid signal.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                unreachable!("SIGKILL is not catchable");
            }
            "second" => {
                assert_eq!(sub.position(), K, "resumes at its cursor");
                for seq in K..TOTAL {
                    let rec = sub
                        .read_timeout(WaitStrategy::BLOCKING, PATIENCE)
                        .expect("record");
                    assert_eq!(rec.sequence(), seq);
                    assert_eq!(check(&rec, MAX), (0, seq));
                    if seq == K {
                        say(format!("first {seq}"));
                    }
                }
                assert_eq!(
                    sub.read_timeout(WaitStrategy::BLOCKING, Duration::from_millis(100))
                        .err(),
                    Some(RecvError::TimedOut)
                );
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let t = TempNs::new("durable");
    let bus = open_bus(&t.base);
    let topic = bus.topic("execution", &cfg).expect("create topic");
    let mut first = Proc::spawn(TEST, "first", &t.base, "");
    first.expect_line("ready");
    let mut p = topic.publisher().expect("publisher");
    let mut second: Option<Proc> = None;
    let mut died_at: Option<Instant> = None;
    let deadline = Instant::now() + PATIENCE;
    let mut seq = 0;
    while seq < TOTAL {
        let mut claim = match p.try_claim(len_of(0, seq, MAX)) {
            Ok(c) => c,
            Err(ClaimError::Full) => {
                assert!(Instant::now() < deadline, "stuck at record {seq}");
                if second.is_none() {
                    if let Some(status) = first.child.try_wait().expect("poll child") {
                        assert_eq!(status.signal(), Some(libc::SIGKILL), "first: {status}");
                        let died = *died_at.get_or_insert_with(Instant::now);
                        if died.elapsed() > Duration::from_millis(200) {
                            // Detached, its cursor still holds the publisher
                            // back (the blocked publisher has long since
                            // noticed the death).
                            assert_eq!(seq, K + SLOTS, "gated by the detached cursor");
                            let mut s = Proc::spawn(TEST, "second", &t.base, "");
                            s.expect_line("ready");
                            match topic.durable_subscriber(NAME, StartAt::Tail) {
                                Err(BusError::Register(RegisterError::DurableInUse { name })) => {
                                    assert_eq!(name, NAME)
                                }
                                Err(e) => panic!("wrong error: {e}"),
                                Ok(_) => panic!("a durable name attached twice"),
                            }
                            second = Some(s);
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        fill(0, seq, &mut claim);
        claim.commit().expect("committed within the claim timeout");
        seq += 1;
    }
    let second = second.expect("the publisher was gated until the second process came");
    assert_eq!(field(&second.finish(), "first "), [K.to_string()]);
}

// ---------------------------------------------------------------------------
// 6. Racing creators
// ---------------------------------------------------------------------------

/// A counter in a shared file, used as a barrier between rounds.
struct Barrier {
    map: memmap2::MmapMut,
}

impl Barrier {
    fn open(base: &Path) -> Barrier {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(base.join("barrier"))
            .expect("barrier file");
        file.set_len(8).expect("size barrier file");
        // SAFETY: the file is private to this test and only ever accessed
        // through the atomic below, by every process mapping it.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.expect("map barrier");
        Barrier { map }
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned, at least 8 bytes long and
        // lives as long as `self`; every access to it is atomic.
        unsafe { &*(self.map.as_ptr() as *const AtomicU64) }
    }

    /// Arrives at the barrier and waits until `parties * generation`
    /// arrivals have been counted.
    fn wait(&self, parties: u64, generation: u64) {
        self.counter().fetch_add(1, Ordering::AcqRel);
        let deadline = Instant::now() + PATIENCE;
        let mut spins = 0u32;
        while self.counter().load(Ordering::Acquire) < parties * generation {
            assert!(Instant::now() < deadline, "barrier {generation} timed out");
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// 16 processes create-or-open the same new topic, in lock step, 200 times:
/// each time exactly one of them created it and all of them got the same
/// log. Opening an existing topic with another configuration is refused,
/// and the error names both configurations.
#[test]
fn racing_creators_make_exactly_one_topic() {
    const TEST: &str = "racing_creators_make_exactly_one_topic";
    const RACERS: u64 = 16;
    const ROUNDS: u64 = 200;
    let cfg = TopicConfig {
        slots: 2,
        max_payload: 8,
        policy: Policy::Overwrite,
        max_subscribers: 1,
        max_publishers: 1,
        reclaim_after: Duration::from_millis(500),
    };
    if let Some((_, base, _)) = child() {
        let barrier = Barrier::open(&base);
        barrier.wait(RACERS, 1);
        let bus = open_bus(&base);
        for round in 0..ROUNDS {
            barrier.wait(RACERS, round + 2);
            let topic: Topic = bus
                .topic(&format!("race-{round}"), &cfg)
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(topic.config(), &cfg);
            let how = if topic.was_created() {
                "created"
            } else {
                "opened"
            };
            say(format!("round {round} {how} {}", topic.record().segment));
        }
        return;
    }
    let t = TempNs::new("race");
    Barrier::open(&t.base);
    let started = Instant::now();
    let racers: Vec<Proc> = (0..RACERS)
        .map(|i| Proc::spawn(TEST, "racer", &t.base, i))
        .collect();
    let mut created = vec![0u32; ROUNDS as usize];
    let mut segments: Vec<Option<String>> = vec![None; ROUNDS as usize];
    let mut seen = vec![0u32; ROUNDS as usize];
    for r in racers {
        for line in r.finish() {
            let Some(rest) = line.strip_prefix("round ") else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            let round: usize = f[0].parse().expect("round number");
            seen[round] += 1;
            if f[1] == "created" {
                created[round] += 1;
            }
            let seg = segments[round].get_or_insert_with(|| f[2].to_owned());
            assert_eq!(seg, f[2], "round {round}: racers got different logs");
        }
    }
    for round in 0..ROUNDS as usize {
        assert_eq!(seen[round], RACERS as u32, "round {round}: racers missing");
        assert_eq!(created[round], 1, "round {round}: creators");
    }
    eprintln!(
        "create race: {RACERS} processes x {ROUNDS} rounds in {:?}",
        started.elapsed()
    );

    let bus = open_bus(&t.base);
    assert_eq!(bus.topics().len(), ROUNDS as usize);
    let other = TopicConfig { slots: 4, ..cfg };
    match bus.topic("race-7", &other) {
        Err(BusError::Directory(DirectoryError::ConfigMismatch {
            name,
            existing,
            requested,
        })) => {
            assert_eq!(
                (name.as_str(), existing, requested),
                ("race-7", cfg.into(), other.into())
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened with another configuration"),
    }
    let message = bus
        .topic("race-7", &other)
        .err()
        .expect("mismatch")
        .to_string();
    assert!(message.contains("race-7"), "{message}");
    assert!(
        message.contains("{slots 2, max payload 8, Overwrite"),
        "{message}"
    );
    assert!(
        message.contains("{slots 4, max payload 8, Overwrite"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// 7. More crashes and more producers
// ---------------------------------------------------------------------------

/// The sole publisher process of a `Backpressure` topic dies by SIGKILL
/// between claim and commit. The subscriber gets every committed record;
/// the dead claim is then passed over as a reclaimed record (one missed),
/// and a new publisher (in the only publisher slot, freed by the death)
/// carries on:
///
/// * when the new publisher comes first, it reclaims the dead claim as it
///   registers (nobody else may while that slot is held);
/// * when the subscriber waits first, it reclaims the dead claim after the
///   claim timeout, whatever its wait strategy.
#[test]
fn publisher_killed_mid_claim_is_passed_over() {
    const TEST: &str = "publisher_killed_mid_claim_is_passed_over";
    const COMMITTED: u64 = 500;
    const AFTER: u64 = 500;
    const MAX: usize = 48;
    let cfg = TopicConfig {
        max_publishers: 1,
        reclaim_after: Duration::from_millis(200),
        ..config(1024, MAX as u32, Policy::Backpressure)
    };
    if let Some((_, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("fills", &cfg).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        for seq in 0..COMMITTED {
            publish_checked(&mut p, 0, seq, MAX);
        }
        let mut claim = p.try_claim(MAX).expect("room");
        claim.fill(0xEE);
        // SAFETY: kill(2) on our own pid with a valid signal.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL is not catchable");
    }
    for (wait, successor_first) in [
        (WaitStrategy::BACKOFF, true),
        (WaitStrategy::BusySpin, false),
        (WaitStrategy::BLOCKING, false),
    ] {
        let t = TempNs::new("kill-pub");
        let bus = open_bus(&t.base);
        let topic = bus.topic("fills", &cfg).expect("create topic");
        let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
        let mut dying = Proc::spawn(TEST, "dying-publisher", &t.base, "");
        let status = dying.child.wait().expect("reap");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        for seq in 0..COMMITTED {
            let rec = sub.read_timeout(wait, PATIENCE).expect("committed record");
            assert_eq!(check(&rec, MAX), (0, seq));
        }
        assert_eq!(sub.try_read().err(), Some(RecvError::Empty), "dead claim");
        if !successor_first {
            // Nothing follows the dead claim: the wait ends empty-handed,
            // having reclaimed it once the claim timeout passed.
            let waited = Instant::now();
            assert_eq!(
                sub.read_timeout(wait, Duration::from_millis(1_000)).err(),
                Some(RecvError::TimedOut),
                "{wait:?}"
            );
            assert_eq!(sub.missed(), 1, "{wait:?}: the dead claim, reclaimed");
            assert!(waited.elapsed() >= Duration::from_millis(200));
        }
        let mut p = topic.publisher().expect("the slot is free after the death");
        for seq in COMMITTED..COMMITTED + AFTER {
            publish_checked(&mut p, 0, seq, MAX);
        }
        for seq in COMMITTED..COMMITTED + AFTER {
            let rec = sub
                .read_timeout(wait, PATIENCE)
                .expect("record after the dead claim");
            assert_eq!(check(&rec, MAX), (0, seq));
            assert_eq!(rec.sequence(), seq + 1, "one reclaimed record in between");
        }
        assert_eq!(sub.missed(), 1, "{wait:?}: the dead claim only");
        assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
    }
}

/// Two publisher processes race through a 64-slot `Overwrite` log; a slow
/// subscriber still gets exact loss counts and only intact records. Each
/// payload carries the log sequence its publisher claimed, so the test
/// knows exactly which record must come next.
#[test]
fn overwrite_with_two_publisher_processes_counts_exactly() {
    const TEST: &str = "overwrite_with_two_publisher_processes_counts_exactly";
    const PER_PUBLISHER: u64 = 500_000;
    const TOTAL: u64 = 2 * PER_PUBLISHER;
    const MAX: usize = 64;
    let cfg = config(64, MAX as u32, Policy::Overwrite);
    if let Some((_, base, arg)) = child() {
        let tag: u64 = arg.parse().expect("publisher id");
        let bus = open_bus(&base);
        let topic = bus.topic("quotes", &cfg).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        for _ in 0..PER_PUBLISHER {
            // The length depends on the sequence, known only once claimed:
            // claim the maximum, fill a prefix, and mark the rest unused
            // by writing the real length in the record type.
            let mut claim = p.try_claim(MAX).expect("overwrite never waits");
            let seq = claim.sequence();
            let len = len_of(tag, seq, MAX);
            fill(tag, seq, &mut claim[..len]);
            claim.set_record_type(len as u16);
            claim.commit().expect("committed within the claim timeout");
        }
        return;
    }
    let t = TempNs::new("overwrite2");
    let bus = open_bus(&t.base);
    let topic = bus.topic("quotes", &cfg).expect("create topic");
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
    let publishers: Vec<Proc> = (0..2)
        .map(|i| Proc::spawn(TEST, "publisher", &t.base, i))
        .collect();
    let (mut received, mut missed) = (0u64, 0u64);
    let mut from = [0u64; 2];
    let mut buf = [0u8; MAX];
    loop {
        let next = sub.position();
        match sub.recv_timeout(&mut buf, WaitStrategy::BACKOFF, PATIENCE) {
            Ok((ty, len)) => {
                assert_eq!(len, MAX);
                let (tag, seq) = check(&buf[..usize::from(ty)], MAX);
                assert_eq!(seq, next, "records resume right after a gap");
                received += 1;
                from[tag as usize] += 1;
                if seq == TOTAL - 1 {
                    break;
                }
                if received % 8 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            Err(RecvError::Lapped { missed: m }) => {
                missed += m;
                assert_eq!(sub.position(), next + m);
            }
            Err(e) => panic!("after {received} records: {e}"),
        }
    }
    for p in publishers {
        p.finish();
    }
    assert_eq!(received + missed, TOTAL);
    assert_eq!(sub.missed(), missed);
    assert_eq!(sub.try_recv(&mut buf).err(), Some(RecvError::Empty));
    eprintln!("overwrite, two publishers: {received} received ({from:?}), {missed} missed");
}

// ---------------------------------------------------------------------------
// 8. Library defects found while writing these tests (fail until fixed)
// ---------------------------------------------------------------------------

/// The control block of a topic's log, mapped read-only.
struct ControlView {
    segment: shmbus::segment::Segment,
}

impl ControlView {
    fn open(bus: &Bus, topic: &Topic) -> ControlView {
        let segment = shmbus::segment::Segment::open_read_only(
            bus.namespace(),
            &topic.record().segment,
            shmbus::layout::SegmentKind::Broadcast,
            &shmbus::segment::OpenOptions::default(),
        )
        .expect("open the log read-only");
        ControlView { segment }
    }

    fn get(&self) -> &shmbus::layout::BroadcastControl {
        // SAFETY: a validated broadcast segment holds its control block at
        // this offset, inside the mapping `self` keeps alive; only atomics
        // of it are read.
        unsafe {
            &*(self
                .segment
                .base()
                .add(shmbus::layout::BROADCAST_CONTROL_OFFSET)
                as *const shmbus::layout::BroadcastControl)
        }
    }
}

/// A subscriber killed while asleep on the topic's futex must not leave a
/// sleeper behind: once it has been reaped, publishing makes no futex wake
/// (the futex word stays put), as when nobody ever slept.
///
/// A sleeping subscriber raises the `sleeping` flag of its own slot before
/// counting itself in `sleepers`; whoever clears the flag (the subscriber on
/// waking, or the publisher that reaps its slot after its death) takes the
/// count back down.
#[test]
fn a_subscriber_killed_asleep_leaves_no_sleeper_behind() {
    const TEST: &str = "a_subscriber_killed_asleep_leaves_no_sleeper_behind";
    const SLOTS: u64 = 64;
    const MAX: usize = 32;
    let cfg = config(SLOTS as u32, MAX as u32, Policy::Backpressure);
    if let Some((_, base, _)) = child() {
        let bus = open_bus(&base);
        let topic = bus.topic("md", &cfg).expect("open topic");
        let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
        say("ready");
        let got = sub.read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(60));
        panic!(
            "the parent should have killed this process, got {:?}",
            got.err()
        );
    }
    let t = TempNs::new("sleeper");
    let bus = open_bus(&t.base);
    let topic = bus.topic("md", &cfg).expect("create topic");
    let control = ControlView::open(&bus, &topic);
    let ctl = control.get();
    let mut sleeper = Proc::spawn(TEST, "sleeper", &t.base, "");
    sleeper.expect_line("ready");
    let deadline = Instant::now() + PATIENCE;
    while ctl.sleepers.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < deadline, "the subscriber never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
    sleeper
        .child
        .kill()
        .expect("SIGKILL the sleeping subscriber");
    sleeper.child.wait().expect("reap");

    // More than a log's worth: the publisher blocks on the dead cursor and
    // reaps it.
    let mut p = topic.publisher().expect("publisher");
    for seq in 0..4 * SLOTS {
        publish_checked(&mut p, 0, seq, MAX);
    }
    let before = ctl.wake_seq.load(Ordering::Acquire);
    for seq in 4 * SLOTS..4 * SLOTS + 100 {
        publish_checked(&mut p, 0, seq, MAX);
    }
    assert_eq!(
        ctl.wake_seq.load(Ordering::Acquire),
        before,
        "100 commits woke the futex with nobody asleep (sleepers = {})",
        ctl.sleepers.load(Ordering::Acquire)
    );
}

/// A subscriber that joins a `Backpressure` log at `StartAt::Oldest` must be
/// protected from the moment it is registered: a record it has been handed
/// stays intact, and it never sees `Lapped` (which is for `Overwrite`).
///
/// A publisher's cached gate lets it claim up to `gate + slots` without
/// rescanning the cursors, so an `Oldest` subscriber starts no earlier than
/// the published gate (and a registration overlapping a gate scan forces a
/// rescan). Here the publisher's gate is cached at 64 when the subscriber
/// joins; it must not be handed record 1, which record 65 may overwrite.
#[test]
fn an_oldest_subscriber_under_backpressure_is_not_overwritten() {
    const SLOTS: u64 = 64;
    let t = TempNs::new("oldest");
    let bus = open_bus(&t.base);
    let topic = bus
        .topic("md", &config(SLOTS as u32, 16, Policy::Backpressure))
        .expect("create topic");
    let mut p = topic.publisher().expect("publisher");
    // With no subscriber nothing gates; the claim of record 64 rescans and
    // caches the gate at 64.
    for seq in 0..=SLOTS {
        p.try_send(0, &seq.to_le_bytes()).expect("nobody gates");
    }
    let mut sub = topic.subscriber(StartAt::Oldest).expect("subscribe");
    let rec = sub.try_read().expect("the oldest record still in the log");
    let seq = rec.sequence();
    assert_eq!(&rec[..], &seq.to_le_bytes(), "record {seq} as published");
    // Either refused (the new subscriber gates) or written elsewhere.
    let _ = p.try_send(0, &(SLOTS + 1).to_le_bytes());
    assert!(
        rec.is_intact(),
        "record {seq} was overwritten while borrowed under Backpressure"
    );
    assert_eq!(
        &rec[..],
        &seq.to_le_bytes(),
        "record {seq} changed under the reader"
    );
    drop(rec);
    let mut next = seq + 1;
    loop {
        match sub.try_read() {
            Ok(rec) => {
                assert_eq!(rec.sequence(), next);
                assert_eq!(&rec[..], &next.to_le_bytes());
                next += 1;
            }
            Err(RecvError::Empty) => break,
            Err(e) => panic!("at record {next} of a Backpressure log: {e}"),
        }
    }
    assert_eq!(next, p.published(), "read to the end");
}

// ---------------------------------------------------------------------------
// 9. Stalled processes (SIGSTOP past every timeout, then SIGCONT)
// ---------------------------------------------------------------------------

/// A publisher process claims a record and is stopped (SIGSTOP) long past
/// the claim timeout; meanwhile the subscriber reclaims the claim and the
/// test's own publisher laps the log twice. When the stopped process is
/// continued it writes its payload and commits as if nothing had happened:
/// the commit fails with `Reclaimed`, no record of the other publisher is
/// damaged or lost, the lost record is counted as missed (exactly one),
/// and the resumed publisher carries on publishing normally. For both
/// policies, with a busy-spinning and a futex-blocking subscriber.
#[test]
fn a_stopped_publisher_resumes_without_destroying_later_records() {
    const TEST: &str = "a_stopped_publisher_resumes_without_destroying_later_records";
    const MAX: usize = 64;
    const OURS: u64 = 20;
    const AFTER: u64 = 3;
    let cfg = |policy| TopicConfig {
        max_publishers: 2,
        max_subscribers: 2,
        reclaim_after: Duration::from_millis(100),
        ..config(8, MAX as u32, policy)
    };
    if let Some((_, base, arg)) = child() {
        let policy = if arg == "overwrite" {
            Policy::Overwrite
        } else {
            Policy::Backpressure
        };
        let bus = open_bus(&base);
        let topic = bus.topic("orders", &cfg(policy)).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        let len = len_of(7, 0, MAX);
        let mut claim = p.try_claim(len).expect("room");
        say(format!("claimed {}", claim.sequence()));
        // SAFETY: raise(3) stops this thread (and so the process) at once.
        unsafe { libc::raise(libc::SIGSTOP) };
        // Continued: carry on as if nothing had happened.
        fill(7, 0, &mut claim);
        claim.set_record_type(7);
        match claim.commit() {
            Err(ClaimError::Reclaimed { sequence }) => say(format!("reclaimed {sequence}")),
            other => say(format!("commit {other:?}")),
        }
        for seq in 1..=AFTER {
            publish_checked(&mut p, 7, seq, MAX);
        }
        say(format!("reclaimed-count {}", p.reclaimed()));
        return;
    }
    for (policy, name) in [
        (Policy::Backpressure, "backpressure"),
        (Policy::Overwrite, "overwrite"),
    ] {
        for wait in [WaitStrategy::BusySpin, WaitStrategy::BLOCKING] {
            let t = TempNs::new("stopped-pub");
            let bus = open_bus(&t.base);
            let topic = bus.topic("orders", &cfg(policy)).expect("create topic");
            let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
            let mut stalled = Proc::spawn(TEST, "stopped-publisher", &t.base, name);
            stalled.expect_line("claimed 0");
            wait_stopped(stalled.child.id());
            // Lap the 8-slot log twice while the claimer is stopped.
            let mut p = topic.publisher().expect("publisher");
            let mut got = Vec::new();
            for seq in 0..OURS {
                publish_checked(&mut p, 1, seq, MAX);
                let rec = sub
                    .read_timeout(wait, PATIENCE)
                    .unwrap_or_else(|e| panic!("{name} {wait:?}: record {seq}: {e}"));
                got.push(check(&rec, MAX));
            }
            assert_eq!(
                got,
                (0..OURS).map(|s| (1, s)).collect::<Vec<_>>(),
                "{name} {wait:?}"
            );
            assert_eq!(
                sub.missed(),
                1,
                "{name} {wait:?}: the reclaimed claim is counted"
            );
            // SAFETY: kill(2) on our child with a valid signal.
            unsafe { libc::kill(stalled.child.id() as libc::pid_t, libc::SIGCONT) };
            for seq in 1..=AFTER {
                let rec = sub.read_timeout(wait, PATIENCE).expect("resumed publisher");
                assert_eq!(check(&rec, MAX), (7, seq), "{name} {wait:?}");
            }
            let lines = stalled.finish();
            assert!(
                lines.contains(&"reclaimed 0".to_owned()),
                "{name}: {lines:?}"
            );
            assert_eq!(field(&lines, "reclaimed-count "), ["1"]);
            assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
            assert_eq!(sub.missed(), 1, "{name} {wait:?}");
        }
    }
}

/// The only publisher of a topic with one publisher slot (an exclusive
/// publisher) is stopped (SIGSTOP) holding a claim past `reclaim_after`; no
/// second publisher can attach while it lives, and the subscriber is not
/// held up for good, whatever its wait strategy.
///
/// * `Backpressure`, where the sole publisher commits by plain store: its
///   claim is not reclaimed while it lives (nobody else could publish past
///   it), so the read times out with nothing missed; continued, the
///   publisher commits the record it held, and it arrives, then every
///   later one.
/// * `Overwrite`: the subscriber reclaims the claim (counted missed);
///   continued, the publisher finds its commit `Reclaimed` and carries on.
///
/// Every record arrives intact and in order.
#[test]
fn a_stopped_exclusive_publisher_resumes_and_carries_on() {
    const TEST: &str = "a_stopped_exclusive_publisher_resumes_and_carries_on";
    const MAX: usize = 64;
    const BEFORE: u64 = 10;
    const AFTER: u64 = 20;
    let cfg = |policy| TopicConfig {
        max_publishers: 1,
        reclaim_after: Duration::from_millis(100),
        ..config(64, MAX as u32, policy)
    };
    if let Some((_, base, arg)) = child() {
        let policy = if arg == "overwrite" {
            Policy::Overwrite
        } else {
            Policy::Backpressure
        };
        let bus = open_bus(&base);
        let topic = bus.topic("quotes", &cfg(policy)).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        for seq in 0..BEFORE {
            publish_checked(&mut p, 5, seq, MAX);
        }
        let mut claim = p.try_claim(len_of(5, BEFORE, MAX)).expect("room");
        say(format!("claimed {}", claim.sequence()));
        // SAFETY: raise(3) stops this thread (and so the process) at once.
        unsafe { libc::raise(libc::SIGSTOP) };
        // Continued: carry on as if nothing had happened.
        fill(5, BEFORE, &mut claim);
        claim.set_record_type(5);
        match claim.commit() {
            Err(ClaimError::Reclaimed { sequence }) => say(format!("reclaimed {sequence}")),
            other => say(format!("commit {other:?}")),
        }
        for seq in BEFORE + 1..=BEFORE + AFTER {
            publish_checked(&mut p, 5, seq, MAX);
        }
        say(format!("reclaimed-count {}", p.reclaimed()));
        return;
    }
    for (policy, name) in [
        (Policy::Backpressure, "backpressure"),
        (Policy::Overwrite, "overwrite"),
    ] {
        let reclaims = policy == Policy::Overwrite;
        for wait in [WaitStrategy::BusySpin, WaitStrategy::BLOCKING] {
            let t = TempNs::new("stopped-excl");
            let bus = open_bus(&t.base);
            let topic = bus.topic("quotes", &cfg(policy)).expect("create topic");
            let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
            let mut stalled = Proc::spawn(TEST, "stopped-exclusive", &t.base, name);
            stalled.expect_line(&format!("claimed {BEFORE}"));
            wait_stopped(stalled.child.id());
            assert!(
                matches!(
                    topic.publisher(),
                    Err(BusError::Register(RegisterError::NoFreeSlot { .. }))
                ),
                "{name}: a second publisher attached while the exclusive one lives"
            );
            for seq in 0..BEFORE {
                let rec = sub.read_timeout(wait, PATIENCE).expect("record");
                assert_eq!(check(&rec, MAX), (5, seq), "{name} {wait:?}");
            }
            // The stalled claim, waited on four times the claim timeout:
            // reclaimed (one missed) or, held by a live sole publisher that
            // commits by store, left alone (none missed).
            let waited = Instant::now();
            assert_eq!(
                sub.read_timeout(wait, Duration::from_millis(400)).err(),
                Some(RecvError::TimedOut),
                "{name} {wait:?}"
            );
            assert_eq!(sub.missed(), u64::from(reclaims), "{name} {wait:?}");
            assert!(waited.elapsed() >= Duration::from_millis(100));
            // SAFETY: kill(2) on our child with a valid signal.
            unsafe { libc::kill(stalled.child.id() as libc::pid_t, libc::SIGCONT) };
            let first = if reclaims { BEFORE + 1 } else { BEFORE };
            for seq in first..=BEFORE + AFTER {
                let rec = sub.read_timeout(wait, PATIENCE).expect("resumed publisher");
                assert_eq!(check(&rec, MAX), (5, seq), "{name} {wait:?}");
            }
            let lines = stalled.finish();
            let outcome = if reclaims {
                format!("reclaimed {BEFORE}")
            } else {
                format!("commit Ok({BEFORE})")
            };
            assert!(lines.contains(&outcome), "{name}: {lines:?}");
            assert_eq!(
                field(&lines, "reclaimed-count "),
                [u64::from(reclaims).to_string()]
            );
            assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
            assert_eq!(sub.missed(), u64::from(reclaims), "{name} {wait:?}");
        }
    }
}

/// A subscriber process is stopped (SIGSTOP) past every timeout while it
/// holds the gate of a `Backpressure` topic: it is alive (its liveness lock
/// holds), so it is not reaped and keeps its place; publishers wait. When
/// continued it reads every record in order, nothing lost or repeated.
#[test]
fn a_stopped_subscriber_keeps_its_place() {
    const TEST: &str = "a_stopped_subscriber_keeps_its_place";
    const MAX: usize = 48;
    const TOTAL: u64 = 200;
    let cfg = TopicConfig {
        reclaim_after: Duration::from_millis(50),
        ..config(16, MAX as u32, Policy::Backpressure)
    };
    if let Some((_, base, arg)) = child() {
        let wait = if arg == "blocking" {
            WaitStrategy::BLOCKING
        } else {
            WaitStrategy::BusySpin
        };
        let bus = open_bus(&base);
        let topic = bus.topic("fills", &cfg).expect("open topic");
        let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
        say("subscribed");
        for seq in 0..TOTAL {
            let rec = sub.read_timeout(wait, PATIENCE).expect("record");
            assert_eq!(check(&rec, MAX), (3, seq));
            if seq == 5 {
                drop(rec);
                // SAFETY: raise(3) stops this thread (and so the process) at once.
                unsafe { libc::raise(libc::SIGSTOP) };
            }
        }
        say(format!("read {TOTAL} missed {}", sub.missed()));
        return;
    }
    for arg in ["busy", "blocking"] {
        let t = TempNs::new("stopped-sub");
        let bus = open_bus(&t.base);
        let topic = bus.topic("fills", &cfg).expect("create topic");
        let mut reader = Proc::spawn(TEST, "stopped-subscriber", &t.base, arg);
        reader.expect_line("subscribed");
        let mut p = topic.publisher().expect("publisher");
        for seq in 0..6 {
            publish_checked(&mut p, 3, seq, MAX);
        }
        wait_stopped(reader.child.id());
        let mut seq = 6;
        while seq < 6 + 16 {
            let mut claim = p.try_claim(len_of(3, seq, MAX)).expect("room up to a lap");
            fill(3, seq, &mut claim);
            claim.set_record_type(3);
            claim.commit().expect("committed");
            seq += 1;
        }
        // A whole log ahead of the stopped subscriber, well past the claim
        // timeout: still gated (the stopped process is alive).
        let gated = p.claim_timeout(
            len_of(3, seq, MAX),
            WaitStrategy::BACKOFF,
            Duration::from_millis(300),
        );
        assert_eq!(gated.err(), Some(ClaimError::TimedOut), "{arg}");
        // SAFETY: kill(2) on our child with a valid signal.
        unsafe { libc::kill(reader.child.id() as libc::pid_t, libc::SIGCONT) };
        while seq < TOTAL {
            publish_checked(&mut p, 3, seq, MAX);
            seq += 1;
        }
        let lines = reader.finish();
        assert!(
            lines.contains(&format!("read {TOTAL} missed 0")),
            "{arg}: {lines:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 10. A topic's files removed or truncated under its peers
// ---------------------------------------------------------------------------

/// A publisher process and this process's subscriber use a topic; then its
/// log is unlinked by hand, its directory is unlinked by hand, or its log
/// is truncated to one page. Both peers get `Unusable` with the right
/// fault, well within two seconds, and neither dies of SIGBUS. For both
/// policies; the subscriber waits on the futex.
#[test]
fn a_removed_or_truncated_topic_is_noticed_by_its_peers() {
    use shmbus::layout::SegmentFault;
    const TEST: &str = "a_removed_or_truncated_topic_is_noticed_by_its_peers";
    let cfg = |policy| TopicConfig {
        max_subscribers: 4,
        max_publishers: 2,
        ..config(256, 64, policy)
    };
    if let Some((_, base, arg)) = child() {
        let policy = if arg == "overwrite" {
            Policy::Overwrite
        } else {
            Policy::Backpressure
        };
        let bus = open_bus(&base);
        let topic = bus.topic("quotes", &cfg(policy)).expect("open topic");
        let mut p = topic.publisher().expect("publisher");
        say("attached");
        let started = Instant::now();
        loop {
            match p.send_blocking(1, &[7u8; 32], WaitStrategy::BACKOFF) {
                Ok(_) => std::thread::sleep(Duration::from_micros(20)),
                Err(e) => {
                    say(format!("error {e:?}"));
                    return;
                }
            }
            assert!(started.elapsed() < PATIENCE, "never noticed");
        }
    }
    for (policy, name) in [
        (Policy::Backpressure, "backpressure"),
        (Policy::Overwrite, "overwrite"),
    ] {
        for action in ["unlink-log", "unlink-directory", "truncate-log"] {
            let t = TempNs::new("removed-topic");
            let bus = open_bus(&t.base);
            let topic = bus.topic("quotes", &cfg(policy)).expect("create topic");
            let mut sub = topic.subscriber(StartAt::Tail).expect("subscribe");
            let mut publisher = Proc::spawn(TEST, "publisher", &t.base, name);
            publisher.expect_line("attached");
            for _ in 0..500 {
                match sub.read_timeout(WaitStrategy::BLOCKING, PATIENCE) {
                    Ok(_) | Err(RecvError::Lapped { .. }) => {}
                    Err(e) => panic!("{name} {action}: before: {e}"),
                }
            }
            let log = t.file(&topic.record().segment, "bcast");
            let expected = match action {
                "unlink-log" => {
                    std::fs::remove_file(&log).expect("unlink log");
                    SegmentFault::Removed
                }
                "unlink-directory" => {
                    std::fs::remove_file(t.file("directory", "dir")).expect("unlink directory");
                    SegmentFault::Removed
                }
                _ => {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&log)
                        .expect("open");
                    f.set_len(4096).expect("truncate");
                    SegmentFault::Truncated
                }
            };
            let acted = Instant::now();
            let fault = loop {
                match sub.read_timeout(WaitStrategy::BLOCKING, PATIENCE) {
                    Ok(_) | Err(RecvError::Lapped { .. }) => {}
                    Err(RecvError::Unusable(fault)) => break fault,
                    // Zeroed pages can read as a corrupt log before the
                    // subscriber's next look at the file.
                    Err(RecvError::Corrupt(_)) if expected == SegmentFault::Truncated => {}
                    Err(e) => panic!("{name} {action}: {e}"),
                }
                assert!(acted.elapsed() < PATIENCE, "{name} {action}: never noticed");
            };
            let noticed = acted.elapsed();
            assert_eq!(fault, expected, "{name} {action}");
            let lines = publisher.finish();
            let told = acted.elapsed();
            assert!(
                lines.contains(&format!("error Unusable({expected:?})")),
                "{name} {action}: {lines:?}"
            );
            assert!(
                noticed < Duration::from_secs(2),
                "{name} {action}: {noticed:?}"
            );
            assert!(told < Duration::from_secs(2), "{name} {action}: {told:?}");
            println!("{name} {action}: subscriber noticed in {noticed:?}, publisher by {told:?}");
        }
    }
}

/// A subscriber started before its feed opens the topic by name alone,
/// waiting for it: it gets the creator's configuration once the creator
/// (another bus handle, here on a thread) makes the topic; with nobody
/// creating it, `NotFound` after the timeout.
#[test]
fn a_topic_not_made_yet_can_be_waited_for() {
    if child().is_some() {
        return;
    }
    let t = TempNs::new("wait-topic");
    let bus = open_bus(&t.base);
    let started = std::time::Instant::now();
    match bus.open_topic_timeout("later", Duration::from_millis(100)) {
        Err(shmbus::BusError::Directory(shmbus::directory::DirectoryError::NotFound {
            ..
        })) => {}
        other => panic!(
            "expected NotFound, got {:?}",
            other.map(|t| t.name().to_owned())
        ),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "gave up early"
    );
    let cfg = config(32, 24, Policy::Overwrite);
    let base = t.base.clone();
    let creator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let bus = open_bus(&base);
        let topic = bus.topic("later", &cfg).expect("create");
        let mut p = topic.publisher().expect("publisher");
        std::thread::sleep(Duration::from_millis(100));
        p.try_send(1, b"first").expect("send");
    });
    let topic = bus
        .open_topic_timeout("later", Duration::from_secs(10))
        .expect("the topic once made");
    assert_eq!(*topic.config(), cfg, "the creator's configuration");
    // Oldest: the record may have been sent before we subscribed.
    let mut sub = topic.subscriber(StartAt::Oldest).expect("subscribe");
    let rec = sub
        .read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(10))
        .expect("the first record");
    assert_eq!(&rec[..], b"first");
    drop(rec);
    creator.join().expect("creator");
}
