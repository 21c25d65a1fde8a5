//! Work queues across processes: producers and consumers in child
//! processes of this test binary, killed (SIGKILL) and stopped
//! (SIGSTOP/SIGCONT) at their worst moments.
//!
//! Knobs: `SHMBUS_XPROC_QUEUE_RECORDS` (records in the 4x4 run, default
//! 2,000,000; the figure in the closing note is 10,000,000),
//! `SHMBUS_QUEUE_KILLS` (consumer kills in the killed-consumers run,
//! default 100; the long run is 1000) and `SHMBUS_QUEUE_KILL_RECORDS`
//! (records in that run, default 2000 per kill and at least 200,000: the
//! long run's 2,000,000).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{child_command, child_role, die_with_parent, splitmix, SpawnOneAtATime, TempNs};
use shmbus::directory::DirectoryError;
use shmbus::record::{
    self, venue, Checksum, Fixed8, Instrument, MessageBuilder, MessageView, OrderRequestTlv,
    ParseOptions, RelayDomain, Side, SourceType, TradeTlv, Verify,
};
use shmbus::ring::queue::{ClaimError, QueueConfig, RecvError};
use shmbus::wait::WaitStrategy;
use shmbus::{Bus, BusError, RingConfig, RingKind, RouterConfig, StartAt, TopicConfig};

const QUEUE: &str = "execution";
const PATIENCE: Duration = Duration::from_secs(30);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> QueueConfig {
    QueueConfig {
        slots: 1024,
        max_payload: 512,
        max_producers: 8,
        max_consumers: 8,
        reclaim_after: Duration::from_millis(200),
    }
}

fn bus(base: &Path) -> Bus {
    Bus::at(base, "t").expect("bus")
}

/// Record `seq` of producer `id`: 8..=512 bytes, starting with id and
/// sequence, ending with a CRC of the rest.
fn record(id: u32, seq: u32) -> Vec<u8> {
    let r = splitmix(u64::from(id) << 32 | u64::from(seq));
    let len = 8 + (r % 505) as usize;
    let mut v = vec![0u8; len];
    v[..4].copy_from_slice(&id.to_le_bytes());
    v[4..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in v[8..].iter_mut().enumerate() {
        *b = (r >> (i % 8 * 8)) as u8 ^ i as u8;
    }
    if len >= 12 {
        let crc = crc32fast::hash(&v[..len - 4]);
        v[len - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    v
}

/// Checks a received record; returns (id, seq).
fn check(rec: &[u8]) -> (u32, u32) {
    assert!(rec.len() >= 8, "short record of {} bytes", rec.len());
    let id = u32::from_le_bytes(rec[..4].try_into().expect("4"));
    let seq = u32::from_le_bytes(rec[4..8].try_into().expect("4"));
    assert_eq!(
        rec,
        &record(id, seq)[..],
        "record {id}/{seq} is not what was sent"
    );
    (id, seq)
}

/// A file of `n` u32 counters every process maps shared: deliveries per
/// record, counted before the acknowledgement, so a kill loses no count.
struct Tally {
    map: memmap2::MmapMut,
}

impl Tally {
    fn create(path: &Path, n: usize) -> Tally {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("tally file");
        f.set_len(n as u64 * 4).expect("size");
        Tally::map(&f)
    }

    fn open(path: &Path) -> Tally {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("tally file");
        Tally::map(&f)
    }

    fn map(f: &std::fs::File) -> Tally {
        // SAFETY: the file is only ever accessed through atomics below, by
        // every process of the test.
        let map = unsafe { memmap2::MmapMut::map_mut(f) }.expect("map tally");
        Tally { map }
    }

    fn counter(&self, i: usize) -> &AtomicU32 {
        assert!(i * 4 + 4 <= self.map.len());
        // SAFETY: in bounds (checked), 4-aligned (page-aligned map), and
        // only accessed atomically.
        unsafe { &*(self.map.as_ptr().add(i * 4) as *const AtomicU32) }
    }

    fn bump(&self, i: usize) {
        self.counter(i).fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self, i: usize) -> u32 {
        self.counter(i).load(Ordering::SeqCst)
    }
}

/// How a consumer or producer child works, from its environment: `WAIT`
/// (`yield`, else `BACKOFF`) and `BATCH` (set: batch forms, `take_batch`
/// or `try_claim_batch` + `stage` + `flush`, with the single blocking form
/// when there is nothing to take or no room).
fn child_wait() -> WaitStrategy {
    match std::env::var("WAIT").as_deref() {
        Ok("yield") => WaitStrategy::Yield,
        _ => WaitStrategy::BACKOFF,
    }
}

fn child_batches() -> bool {
    std::env::var_os("BATCH").is_some()
}

/// A consumer child: takes records, counts each delivery (and each
/// redelivered one) in the tallies, then acknowledges; ends when the queue
/// stays empty after the parent's `done` file appears.
fn run_consumer(base: &Path, per_producer: usize) {
    die_with_parent();
    let bus = bus(base);
    let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
    let mut c = queue.consumer().expect("consumer");
    let delivered = Tally::open(&base.join("delivered"));
    let redelivered = Tally::open(&base.join("redelivered"));
    let done = base.join("done");
    let slow = std::env::var_os("SLOW_CONSUMER").is_some();
    let (wait, batches) = (child_wait(), child_batches());
    let handle = |rec: &[u8], again: bool| {
        let (id, seq) = check(rec);
        let i = id as usize * per_producer + seq as usize;
        if again {
            redelivered.bump(i);
        }
        delivered.bump(i);
        if slow {
            std::thread::sleep(Duration::from_micros(50));
        }
    };
    loop {
        if batches {
            match c.take_batch(16, |rec| handle(rec, rec.redelivered())) {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => panic!("consumer: {e}"),
            }
        }
        match c.take_timeout(wait, Duration::from_millis(50)) {
            Ok(rec) => {
                handle(&rec, rec.redelivered());
                rec.ack().expect("ack");
            }
            Err(RecvError::TimedOut) if done.exists() => return,
            Err(RecvError::TimedOut) => {}
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

/// Paces a producer to the parent's kills: record `seq` waits until
/// `seq / step` kills were made (or all of them), so that the kills are
/// spread over the run and all of them happen before it ends.
struct KillGate {
    kills_made: Tally,
    kills: u64,
    step: u64,
}

impl KillGate {
    fn from_env(base: &Path) -> Option<KillGate> {
        let kills = std::env::var("GATE_KILLS").ok()?.parse().expect("kills");
        let step = std::env::var("GATE_STEP").ok()?.parse().expect("step");
        Some(KillGate {
            kills_made: Tally::open(&base.join("kills")),
            kills,
            step,
        })
    }

    fn wait(&self, seq: u32) {
        let due = (u64::from(seq) / self.step).min(self.kills);
        while u64::from(self.kills_made.get(0)) < due {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn run_producer(base: &Path, id: u32, count: u32) {
    die_with_parent();
    let bus = bus(base);
    let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
    let mut p = queue.producer().expect("producer");
    let gate = KillGate::from_env(base);
    let batches = child_batches();
    let mut seq = 0;
    while seq < count {
        if let Some(gate) = &gate {
            gate.wait(seq);
        }
        if batches {
            match p.try_claim_batch((count - seq).min(16) as usize) {
                Ok(n) => {
                    for _ in 0..n {
                        let rec = record(id, seq);
                        let mut claim = p.try_claim(rec.len()).expect("a claimed sequence");
                        claim.copy_from_slice(&rec);
                        match claim.stage() {
                            Ok(_) => seq += 1,
                            // Not delivered: sent again in the next batch.
                            Err(ClaimError::Reclaimed { .. }) => {}
                            Err(e) => panic!("producer {id}: {e}"),
                        }
                    }
                    p.flush();
                    continue;
                }
                Err(ClaimError::Full) => {}
                Err(e) => panic!("producer {id}: {e}"),
            }
        }
        let rec = record(id, seq);
        match p.send_timeout(0, &rec, WaitStrategy::BACKOFF, PATIENCE) {
            Ok(_) => seq += 1,
            Err(ClaimError::Reclaimed { .. }) => {}
            Err(e) => panic!("producer {id}: {e}"),
        }
    }
}

fn spawn(test: &str, role: &str, base: &Path, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = child_command(test, role, base);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .spawn_one_at_a_time()
}

/// Spawns child `role` of `test` and reads its stdout until a line
/// containing `said`; returns the child and the rest of its stdout.
fn spawn_until(
    test: &str,
    role: &str,
    base: &Path,
    said: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = child_command(test, role, base)
        .stdout(std::process::Stdio::piped())
        .spawn_one_at_a_time();
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains(said) {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).expect("read");
        assert!(!line.is_empty(), "child ended before saying {said:?}");
    }
    (child, out)
}

fn wait_ok(mut child: std::process::Child, what: &str) {
    let status = child.wait().expect("wait");
    assert!(status.success(), "{what} failed: {status}");
}

/// Every record delivered at least once; a second delivery only flagged
/// redelivered. Returns the number of extra deliveries.
fn check_tallies(base: &Path, total: usize) -> u64 {
    let delivered = Tally::open(&base.join("delivered"));
    let redelivered = Tally::open(&base.join("redelivered"));
    let mut extra = 0u64;
    for i in 0..total {
        let (d, r) = (delivered.get(i), redelivered.get(i));
        assert!(d >= 1, "record {i} was never delivered");
        assert!(
            d - 1 <= r,
            "record {i}: {d} deliveries, only {r} flagged redelivered"
        );
        extra += u64::from(d - 1);
    }
    extra
}

/// 4 producer processes and 4 consumer processes: every record (8-512
/// bytes, checksummed) is delivered exactly once. The consumers wait with
/// `Yield`; two of each side use the batch forms.
#[test]
fn four_producers_four_consumers_deliver_each_record_once() {
    const TEST: &str = "four_producers_four_consumers_deliver_each_record_once";
    let total = env_u64("SHMBUS_XPROC_QUEUE_RECORDS", 2_000_000) as usize;
    let per = total / 4;
    if let Some((role, base)) = child_role() {
        let per: usize = std::env::var("PER").expect("PER").parse().expect("n");
        match role.split_once(':') {
            Some(("producer", id)) => run_producer(&base, id.parse().expect("id"), per as u32),
            _ => run_consumer(&base, per),
        }
        return;
    }
    let t = TempNs::new("queue-4x4");
    bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    Tally::create(&t.base.join("delivered"), per * 4);
    Tally::create(&t.base.join("redelivered"), per * 4);
    let env = |k: usize| {
        let mut env = vec![("PER", per.to_string()), ("WAIT", "yield".to_string())];
        if k >= 2 {
            env.push(("BATCH", "1".to_string()));
        }
        env
    };
    let started = Instant::now();
    let consumers: Vec<_> = (0..4)
        .map(|k| spawn(TEST, "consumer", &t.base, &env(k)))
        .collect();
    let producers: Vec<_> = (0..4)
        .map(|id| spawn(TEST, &format!("producer:{id}"), &t.base, &env(id)))
        .collect();
    for p in producers {
        wait_ok(p, "producer");
    }
    std::fs::write(t.base.join("done"), b"").expect("done");
    for c in consumers {
        wait_ok(c, "consumer");
    }
    let took = started.elapsed();
    assert_eq!(
        check_tallies(&t.base, per * 4),
        0,
        "no record delivered twice"
    );
    println!("{} records through 4x4 processes in {took:?}", per * 4);
}

/// Consumers SIGKILLed at random while a producer runs, and respawned:
/// every record is delivered at least once, every second delivery is
/// flagged redelivered, and there are no more extra deliveries than kills.
/// Every kill asked for is made: the producer is paced to the kills (the
/// records of step `k` wait for kill `k`), so it cannot finish first.
/// Half the consumers take in batches, so kills land in the middle of
/// batches too.
#[test]
fn killed_consumers_lose_nothing() {
    const TEST: &str = "killed_consumers_lose_nothing";
    let kills = env_u64("SHMBUS_QUEUE_KILLS", 100);
    let total = env_u64("SHMBUS_QUEUE_KILL_RECORDS", (kills * 2000).max(200_000)) as usize;
    if let Some((role, base)) = child_role() {
        match role.as_str() {
            "producer" => run_producer(&base, 0, total as u32),
            _ => run_consumer(&base, total),
        }
        return;
    }
    assert!(kills < total as u64, "more kills than records");
    let t = TempNs::new("queue-kills");
    let queue = bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    Tally::create(&t.base.join("delivered"), total);
    Tally::create(&t.base.join("redelivered"), total);
    let kills_made = Tally::create(&t.base.join("kills"), 1);
    let consumer_env = |k: u64| {
        let mut env = vec![("SLOW_CONSUMER", "1".to_string())];
        if k % 2 == 1 {
            env.push(("BATCH", "1".to_string()));
        }
        env
    };
    let mut spawned = 0u64;
    let mut consumers: Vec<_> = (0..3)
        .map(|_| {
            spawned += 1;
            spawn(TEST, "consumer", &t.base, &consumer_env(spawned))
        })
        .collect();
    let gate = [
        ("GATE_KILLS", kills.to_string()),
        ("GATE_STEP", (total as u64 / (kills + 1)).max(1).to_string()),
    ];
    let started = Instant::now();
    let mut producer = spawn(TEST, "producer", &t.base, &gate);
    let mut killed = 0u64;
    let mut r = 1u64;
    while killed < kills {
        assert!(
            producer.try_wait().expect("poll").is_none(),
            "the producer ended after {killed} of {kills} kills"
        );
        r = splitmix(r);
        std::thread::sleep(Duration::from_micros(2000 + r % 8000));
        let k = (r >> 32) as usize % consumers.len();
        consumers[k].kill().expect("SIGKILL a consumer");
        let status = consumers[k].wait().expect("reap");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        killed += 1;
        kills_made.counter(0).store(killed as u32, Ordering::SeqCst);
        spawned += 1;
        consumers[k] = spawn(TEST, "consumer", &t.base, &consumer_env(spawned));
    }
    wait_ok(producer, "producer");
    std::fs::write(t.base.join("done"), b"").expect("done");
    for c in consumers {
        wait_ok(c, "consumer");
    }
    let took = started.elapsed();
    assert_eq!(killed, kills, "every kill asked for was made");
    let extra = check_tallies(&t.base, total);
    assert!(
        extra <= killed,
        "{extra} extra deliveries after {killed} kills"
    );
    let redelivered = queue.producer().expect("producer").counters().redelivered;
    println!(
        "{total} records, {killed} consumer kills, {extra} duplicates, \
         {redelivered} redelivered, in {took:?}"
    );
}

/// A consumer stopped (SIGSTOP) holding a record, past every timeout,
/// then resumed: it keeps the record (nobody else gets it), its
/// acknowledgement succeeds, and nothing is delivered twice.
#[test]
fn a_stopped_consumer_keeps_its_record_and_resumes() {
    const TEST: &str = "a_stopped_consumer_keeps_its_record_and_resumes";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let bus = bus(&base);
        let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
        let mut c = queue.consumer().expect("consumer");
        let rec = c
            .take_timeout(WaitStrategy::BACKOFF, PATIENCE)
            .expect("a record");
        let (_, seq) = check(&rec);
        println!("took {seq}");
        // Stopped here by the parent; on resume, acknowledge.
        std::thread::sleep(Duration::from_millis(300));
        rec.ack().expect("ack after the stop");
        println!("acked {seq}");
        return;
    }
    let t = TempNs::new("queue-stop");
    let queue = bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    let mut p = queue.producer().expect("producer");
    let mut c = queue.consumer().expect("consumer");
    p.try_send(0, &record(0, 0)).expect("room");
    let (child, mut out) = spawn_until(TEST, "consumer", &t.base, "took 0");
    // SAFETY: kill(2) on our child with a valid signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGSTOP) };
    for seq in 1..20 {
        p.try_send(0, &record(0, seq)).expect("room");
    }
    // Past reclaim_after and several reap periods: the stopped consumer is
    // alive (its lock is held), so its record is not redelivered.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(600);
    while Instant::now() < deadline {
        if let Ok(rec) = c.take_timeout(WaitStrategy::BACKOFF, Duration::from_millis(20)) {
            assert!(!rec.redelivered());
            got.push(check(&rec).1);
            rec.ack().expect("ack");
        }
    }
    assert_eq!(
        got,
        (1..20).collect::<Vec<_>>(),
        "everything but the held record"
    );
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(rest.contains("acked 0"), "child said: {rest}");
    wait_ok(child, "stopped consumer");
    assert_eq!(c.try_take().err(), Some(RecvError::Empty));
    assert_eq!(c.counters().redelivered, 0);
}

/// A producer killed between claim and commit: the consumers wait
/// `reclaim_after`, count one skip, and the queue flows on.
#[test]
fn a_producer_killed_mid_claim_leaves_one_counted_skip() {
    const TEST: &str = "a_producer_killed_mid_claim_leaves_one_counted_skip";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let bus = bus(&base);
        let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
        let mut p = queue.producer().expect("producer");
        let mut claim = p.try_claim(64).expect("room");
        claim.fill(7);
        println!("claimed {}", claim.sequence());
        std::thread::sleep(PATIENCE);
        return;
    }
    let t = TempNs::new("queue-kill-producer");
    let queue = bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    let (mut child, _out) = spawn_until(TEST, "producer", &t.base, "claimed 0");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let mut p = queue.producer().expect("producer");
    let mut c = queue.consumer().expect("consumer");
    for seq in 1..100 {
        p.try_send(0, &record(0, seq)).expect("room");
    }
    let started = Instant::now();
    for seq in 1..100 {
        let rec = c
            .take_timeout(WaitStrategy::BLOCKING, PATIENCE)
            .expect("record");
        assert_eq!(check(&rec).1, seq);
        rec.ack().expect("ack");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "reclaimed early"
    );
    assert_eq!(c.counters().reclaimed_claims, 1, "one counted skip");
}

/// A producer killed in the middle of a batch of four sequences: the
/// record it committed and the one it staged are delivered; the one it
/// was writing and the one it never used are two counted skips, passed
/// after one `reclaim_after`, and the queue flows on.
#[test]
fn a_producer_killed_mid_batch_leaves_counted_skips() {
    const TEST: &str = "a_producer_killed_mid_batch_leaves_counted_skips";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let bus = bus(&base);
        let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
        let mut p = queue.producer().expect("producer");
        assert_eq!(p.try_claim_batch(4).expect("room"), 4);
        p.try_send(0, &record(1, 0)).expect("sequence 0");
        let rec = record(1, 1);
        let mut claim = p.try_claim(rec.len()).expect("sequence 1");
        claim.copy_from_slice(&rec);
        claim.stage().expect("staged");
        let mut claim = p.try_claim(64).expect("sequence 2");
        claim.fill(7);
        println!("writing {}", claim.sequence());
        std::thread::sleep(PATIENCE);
        return;
    }
    let t = TempNs::new("queue-kill-batch");
    let queue = bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    let (mut child, _out) = spawn_until(TEST, "producer", &t.base, "writing 2");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let mut p = queue.producer().expect("producer");
    let mut c = queue.consumer().expect("consumer");
    for seq in 0..10 {
        p.try_send(0, &record(0, seq)).expect("room");
    }
    let started = Instant::now();
    let mut got = Vec::new();
    for _ in 0..12 {
        let rec = c
            .take_timeout(WaitStrategy::Yield, PATIENCE)
            .expect("record");
        got.push(check(&rec));
        rec.ack().expect("ack");
    }
    let mut want = vec![(1, 0), (1, 1)];
    want.extend((0..10).map(|s| (0, s)));
    assert_eq!(got, want);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "reclaimed early"
    );
    assert_eq!(c.counters().reclaimed_claims, 2, "two counted skips");
    assert_eq!(c.try_take().err(), Some(RecvError::Empty));
}

/// A work queue opened with another configuration is refused, and the
/// error names both configurations, every setting of each.
#[test]
fn a_queue_opened_with_another_configuration_names_both() {
    let t = TempNs::new("queue-mismatch");
    let bus = bus(&t.base);
    bus.queue(QUEUE, &config()).expect("create queue");
    let other = QueueConfig {
        slots: 2048,
        max_payload: 256,
        max_producers: 4,
        max_consumers: 16,
        reclaim_after: Duration::from_millis(500),
    };
    let e = bus.queue(QUEUE, &other).err().expect("config mismatch");
    let message = e.to_string();
    match e {
        BusError::Directory(DirectoryError::ConfigMismatch {
            name,
            existing,
            requested,
        }) => assert_eq!(
            (name.as_str(), existing, requested),
            (QUEUE, RingConfig::Queue(config()), RingConfig::Queue(other))
        ),
        other => panic!("expected a config mismatch, got {other}"),
    }
    assert_eq!(
        message,
        "work queue \"execution\" exists with {slots 1024, max payload 512, 8 producers, \
         8 consumers, reclaim after 200ms} but was opened with {slots 2048, max payload 256, \
         4 producers, 16 consumers, reclaim after 500ms} (open it with the same configuration, \
         or use another name)"
    );
    // One setting apart is a mismatch too, and shows both values.
    let later = QueueConfig {
        reclaim_after: Duration::from_millis(201),
        ..config()
    };
    let message = bus
        .queue(QUEUE, &later)
        .err()
        .expect("mismatch")
        .to_string();
    assert!(
        message.contains("reclaim after 200ms} but") && message.contains("reclaim after 201ms}"),
        "{message}"
    );
    // The queue is as it was created.
    let queue = bus.open_queue(QUEUE).expect("open");
    assert_eq!(queue.config(), &config());
}

/// A producer stopped (SIGSTOP) mid-claim past `reclaim_after`, then
/// resumed: consumers went on after one counted skip; its commit fails
/// with `Reclaimed`, it sends the record again, and every record is
/// delivered once, intact.
#[test]
fn a_stopped_producer_resumes_into_reclaimed_and_resends() {
    const TEST: &str = "a_stopped_producer_resumes_into_reclaimed_and_resends";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let bus = bus(&base);
        let queue = bus.open_queue_timeout(QUEUE, PATIENCE).expect("queue");
        let mut p = queue.producer().expect("producer");
        let rec = record(1, 0);
        let mut claim = p.try_claim(rec.len()).expect("room");
        claim.copy_from_slice(&rec);
        println!("claimed");
        std::thread::sleep(Duration::from_millis(300)); // stopped here
        match claim.commit() {
            Err(ClaimError::Reclaimed { .. }) => println!("reclaimed"),
            other => println!("commit {other:?}"),
        }
        p.send_timeout(0, &rec, WaitStrategy::BACKOFF, PATIENCE)
            .expect("resend");
        return;
    }
    let t = TempNs::new("queue-stop-producer");
    let queue = bus(&t.base).queue(QUEUE, &config()).expect("create queue");
    let (child, mut out) = spawn_until(TEST, "producer", &t.base, "claimed");
    // SAFETY: kill(2) on our child with a valid signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGSTOP) };
    let mut p = queue.producer().expect("producer");
    let mut c = queue.consumer().expect("consumer");
    for seq in 0..10 {
        p.try_send(0, &record(0, seq)).expect("room");
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        let rec = c
            .take_timeout(WaitStrategy::BusySpin, PATIENCE)
            .expect("record");
        got.push(check(&rec));
        rec.ack().expect("ack");
    }
    assert_eq!(got, (0..10).map(|s| (0, s)).collect::<Vec<_>>());
    assert_eq!(c.counters().reclaimed_claims, 1);
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
    let rec = c
        .take_timeout(WaitStrategy::BLOCKING, PATIENCE)
        .expect("the resent record");
    assert_eq!(check(&rec), (1, 0));
    rec.ack().expect("ack");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(rest.contains("reclaimed"), "child said: {rest}");
    wait_ok(child, "stopped producer");
    assert_eq!(c.try_take().err(), Some(RecvError::Empty));
}

/// 16 processes race to create the same queue: exactly one creates it,
/// and all of them use the same one.
#[test]
fn sixteen_processes_race_to_create_one_queue() {
    const TEST: &str = "sixteen_processes_race_to_create_one_queue";
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let queue = bus(&base).queue(QUEUE, &config()).expect("create or open");
        let mut p = queue.producer().expect("producer");
        p.send_timeout(0, &record(2, 0), WaitStrategy::BACKOFF, PATIENCE)
            .expect("send");
        println!("created {}", queue.was_created());
        return;
    }
    let t = TempNs::new("queue-race");
    let children: Vec<_> = (0..16)
        .map(|_| {
            child_command(TEST, "racer", &t.base)
                .stdout(std::process::Stdio::piped())
                .spawn_one_at_a_time()
        })
        .collect();
    let mut created = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "racer failed");
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("created true") {
            created += 1;
        } else {
            assert!(text.contains("created false"), "racer said: {text}");
        }
    }
    assert_eq!(created, 1, "exactly one process created the queue");
    let queue = bus(&t.base)
        .open_queue_timeout(QUEUE, PATIENCE)
        .expect("open");
    let mut c = queue.consumer().expect("consumer");
    let mut n = 0;
    while let Ok(rec) = c.try_take() {
        assert_eq!(check(&rec), (2, 0));
        rec.ack().expect("ack");
        n += 1;
    }
    assert_eq!(n, 16, "every racer's record is in the one queue");
}

/// Builds Protocol V2 message `seq` of `domain` (an order or a trade).
fn message(domain: RelayDomain, seq: u64, buf: &mut [u8]) -> usize {
    let builder = match domain {
        RelayDomain::Execution => MessageBuilder::new(buf, domain, SourceType::ExecutionEngine)
            .typed(&OrderRequestTlv::new([seq as u8; 32])),
        _ => MessageBuilder::new(buf, domain, SourceType::BinanceCollector).typed(&TradeTlv::new(
            Instrument::coin(venue::BINANCE, "BTC").expect("ticker"),
            Fixed8::from_raw(6_500_000_000_000),
            Fixed8::from_raw(12_500_000),
            Side::Buy,
            seq,
        )),
    };
    builder
        .sequence(seq)
        .finish(Checksum::Compute)
        .expect("message fits")
}

/// A router with the default routes sends orders to the `execution` work
/// queue, which two gateway processes drain (each order to exactly one of
/// them), and market data to the `market_data` topic: nothing crosses.
#[test]
fn the_router_sends_orders_to_a_work_queue_and_market_data_to_a_topic() {
    const TEST: &str = "the_router_sends_orders_to_a_work_queue_and_market_data_to_a_topic";
    const ORDERS: u64 = 20_000;
    if let Some((_, base)) = child_role() {
        die_with_parent();
        let queue = bus(&base)
            .open_queue_timeout(QUEUE, PATIENCE)
            .expect("the router made the queue");
        let mut gateway = queue.consumer().expect("consumer");
        let delivered = Tally::open(&base.join("delivered"));
        println!("ready");
        let done = base.join("done");
        loop {
            match gateway.take_timeout(WaitStrategy::BLOCKING, Duration::from_millis(50)) {
                Ok(order) => {
                    let view = MessageView::parse(&order, ParseOptions::new(Verify::Strict))
                        .expect("a valid Protocol V2 message");
                    assert_eq!(view.header().relay_domain(), Some(RelayDomain::Execution));
                    assert_eq!(order.record_type(), RelayDomain::Execution as u16);
                    assert!(!order.redelivered(), "nobody died, nothing comes back");
                    delivered.bump(view.header().sequence() as usize);
                    order.ack().expect("ack");
                }
                Err(RecvError::TimedOut) if done.exists() => return,
                Err(RecvError::TimedOut) => {}
                Err(e) => panic!("gateway: {e}"),
            }
        }
    }
    let t = TempNs::new("queue-router");
    let bus = bus(&t.base);
    Tally::create(&t.base.join("delivered"), ORDERS as usize);
    let md = bus
        .topic("market_data", &TopicConfig::default())
        .expect("topic");
    let mut strategy = md.subscriber(StartAt::Tail).expect("subscriber");
    let mut router = bus.router(RouterConfig::default());
    let mut buf = [0u8; 240];
    // The first order makes the queue; the gateways open it by name.
    let len = message(RelayDomain::Execution, 0, &mut buf);
    assert_eq!(
        router
            .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
            .expect("sent"),
        record::DomainTopic::Execution
    );
    let gateways: Vec<_> = (0..2)
        .map(|_| spawn_until(TEST, "gateway", &t.base, "ready"))
        .collect();
    let (mut trades, mut read) = (0u64, 0u64);
    let mut rbuf = [0u8; 240];
    for seq in 1..ORDERS {
        let len = message(RelayDomain::Execution, seq, &mut buf);
        router
            .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
            .expect("order");
        if seq % 10 == 0 {
            let len = message(RelayDomain::MarketData, trades, &mut buf);
            let to = router
                .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
                .expect("trade");
            assert_eq!(to, record::DomainTopic::MarketData);
            trades += 1;
        }
        while let Ok((ty, len)) = strategy.try_recv(&mut rbuf) {
            assert_eq!(ty, RelayDomain::MarketData as u16);
            let view = MessageView::parse(&rbuf[..len], ParseOptions::new(Verify::Strict))
                .expect("a valid Protocol V2 message");
            assert_eq!(view.header().relay_domain(), Some(RelayDomain::MarketData));
            assert_eq!(view.header().sequence(), read, "every trade, in order");
            read += 1;
        }
    }
    assert_eq!(read, trades);
    std::fs::write(t.base.join("done"), b"").expect("done");
    for (child, _) in gateways {
        wait_ok(child, "gateway");
    }
    let delivered = Tally::open(&t.base.join("delivered"));
    for seq in 0..ORDERS as usize {
        assert_eq!(delivered.get(seq), 1, "order {seq} handled once");
    }
    // Execution is not a topic: the router made it a queue.
    let err = bus
        .topic(QUEUE, &TopicConfig::default())
        .err()
        .expect("a queue, not a topic");
    assert!(
        matches!(
            &err,
            BusError::Directory(DirectoryError::KindMismatch {
                existing: RingConfig::Queue(_),
                requested: RingKind::Broadcast,
                ..
            })
        ),
        "{err}"
    );
}

/// A router whose route for a domain disagrees with the ring already
/// there fails with the mismatch, naming both, and sends nothing.
#[test]
fn a_router_route_that_disagrees_with_the_directory_is_a_mismatch() {
    let t = TempNs::new("queue-router-mismatch");
    let bus = bus(&t.base);
    let _topic = bus
        .topic(QUEUE, &TopicConfig::default())
        .expect("execution as a topic");
    let mut router = bus.router(RouterConfig::default());
    let mut buf = [0u8; 240];
    let len = message(RelayDomain::Execution, 0, &mut buf);
    let err = router
        .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
        .expect_err("execution is a topic here");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            BusError::Directory(DirectoryError::KindMismatch { .. })
        ),
        "{text}"
    );
    assert!(
        text.contains("is a topic with") && text.contains("as a work queue with"),
        "{text}"
    );
    // Routed as a topic, it goes.
    let mut router = bus.router(
        RouterConfig::default().route(record::DomainTopic::Execution, TopicConfig::default()),
    );
    router
        .send_blocking(&buf[..len], WaitStrategy::BACKOFF)
        .expect("sent to the topic");
}
