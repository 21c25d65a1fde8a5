//! A channel whose ring file is truncated or removed under its peers: nobody dies
//! of SIGBUS, and every peer gets `Unusable(..)` at its next slow path.
//!
//! Children are this test binary re-run with a role; they report on stdout
//! as `REPORT key=value` lines, and the parent asserts on those and on how
//! the child ended (exit code or signal).

mod common;

use std::io::{BufRead, BufReader, Lines};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{child_role, monotonic_ns, SpawnOneAtATime, TempNs, CHILD_BASE, CHILD_ROLE};
use shmbus::layout::SegmentFault;
use shmbus::ring::spsc::{ClaimError, Consumer, Producer, RecvError, SpscConfig};
use shmbus::segment::{set_sigbus_handler, sigbus_handler_installed, NO_SIGBUS_HANDLER_ENV};
use shmbus::wait::WaitStrategy;
use shmbus::{Bus, Channel};

const RING: &str = "r";
/// 64 KiB of data: the ring spans 17 pages, so a position past the first
/// page lives in memory that a truncation to 4096 bytes takes away.
const CAP: usize = 1 << 16;
/// Payload of the records the tests send: a 208-byte frame.
const LEN: usize = 200;
/// Records that take the positions well past the first page.
const FAR: u64 = 60;

fn report(key: &str, value: impl std::fmt::Display) {
    println!("REPORT {key}={value}");
}

/// A child process with its report lines, killed if it outlives 60 s.
struct ChildProc {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    done: Arc<AtomicBool>,
}

impl ChildProc {
    fn spawn(test: &str, role: &str, base: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_BASE, base)
            .env_remove(NO_SIGBUS_HANDLER_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn_one_at_a_time();
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let done = Arc::new(AtomicBool::new(false));
        let (pid, flag) = (child.id() as libc::pid_t, done.clone());
        std::thread::spawn(move || {
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(100));
                if flag.load(Ordering::Relaxed) {
                    return;
                }
            }
            // SAFETY: kill(2) on our own child, still unreaped (not done).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        ChildProc { child, lines, done }
    }

    /// The value of the next `REPORT key=...` line.
    fn expect(&mut self, key: &str) -> String {
        let prefix = format!("REPORT {key}=");
        for line in self.lines.by_ref() {
            let line = line.expect("child stdout");
            // libtest prints "test name ... " without a newline first.
            if let Some(at) = line.find(&prefix) {
                return line[at + prefix.len()..].to_owned();
            }
        }
        panic!("child ended before reporting {key}");
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn wait(mut self) -> ExitStatus {
        // Drain the rest so the child never blocks on a full pipe.
        for _ in self.lines.by_ref() {}
        let status = self.child.wait().expect("wait child");
        self.done.store(true, Ordering::Relaxed);
        status
    }
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open ring file")
        .set_len(len)
        .expect("truncate");
}

fn send(tx: &mut Producer, n: u64) {
    for i in 0..n {
        let payload = [i as u8; LEN];
        tx.claim_timeout(LEN, WaitStrategy::BACKOFF, Duration::from_secs(10))
            .map(|mut slot| {
                slot.copy_from_slice(&payload);
                slot.commit();
            })
            .expect("room for a record");
    }
}

fn receive(rx: &mut Consumer, n: u64) {
    for _ in 0..n {
        let rec = rx
            .read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(10))
            .expect("a record");
        assert_eq!(rec.len(), LEN);
    }
}

fn strategy(name: &str) -> WaitStrategy {
    match name {
        "busyspin" => WaitStrategy::BusySpin,
        "backoff" => WaitStrategy::BACKOFF,
        "blocking" => WaitStrategy::BLOCKING,
        other => panic!("unknown strategy {other}"),
    }
}

/// The bus of the parent's namespace, as a child opens it.
fn child_bus(base: &Path) -> Bus {
    Bus::at(base, "t").expect("child bus")
}

/// The channel [`RING`] that the parent created, opened by name.
fn child_channel(base: &Path) -> Channel {
    child_bus(base).open_spsc(RING).expect("open the channel")
}

/// The channel [`RING`] of `CAP` bytes in `t`, created.
fn channel(t: &TempNs) -> Channel {
    t.bus()
        .spsc(RING, &SpscConfig::with_capacity(CAP))
        .expect("create")
}

// ---------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------

/// A child consumer waits in `read_timeout` while the parent truncates the
/// ring to one page: with its position past the first page (its next look
/// faults, the guard maps zeros) and inside it (no fault at all: only the
/// `fstat` on the wait's slow path can tell). It must not die, and must get
/// `Unusable(Truncated)`. The parent, whose producer writes past the first
/// page, survives its own SIGBUS and gets the same error.
#[test]
fn truncation_under_a_child_consumer_is_an_error_not_a_crash() {
    const TEST: &str = "truncation_under_a_child_consumer_is_an_error_not_a_crash";
    if let Some((role, base)) = child_role() {
        let pre: u64 = role
            .strip_prefix("consumer:")
            .and_then(|n| n.parse().ok())
            .expect("role consumer:N");
        let mut rx = child_channel(&base).consumer().expect("attach consumer");
        receive(&mut rx, pre);
        report("ready", 1);
        let e = loop {
            match rx.read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(20)) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        report("result", format!("{e:?}"));
        report("message", e);
        return;
    }
    for pre in [FAR, 3] {
        let t = TempNs::new("trunc-consumer");
        let ring = channel(&t);
        let mut tx = ring.producer().expect("producer");
        let mut child = ChildProc::spawn(TEST, &format!("consumer:{pre}"), &t.base, &[]);
        send(&mut tx, pre);
        child.expect("ready");
        std::thread::sleep(Duration::from_millis(50));
        truncate(&ring.path(), 4096);
        let result = child.expect("result");
        let message = child.expect("message");
        let status = child.wait();
        assert_eq!(status.signal(), None, "pre {pre}: child killed: {status}");
        assert!(status.success(), "pre {pre}: child failed: {status}");
        assert_eq!(
            result,
            format!("{:?}", RecvError::Unusable(SegmentFault::Truncated)),
            "pre {pre}"
        );
        assert!(message.starts_with("ring is unusable: "), "{message}");
        // The parent's producer: its next records go past the first page.
        let e = (0..10 * CAP)
            .find_map(|_| tx.try_send(1, &[7; LEN]).err())
            .expect("the producer notices");
        assert_eq!(
            e,
            ClaimError::Unusable(SegmentFault::Truncated),
            "pre {pre}"
        );
    }
}

/// A child producer fills the ring while the parent, its consumer, stops
/// reading and truncates the file. The child must not die and must get
/// `Unusable(Truncated)`; the parent's consumer, whose position is past
/// the first page, survives its SIGBUS and gets the same error.
#[test]
fn truncation_under_a_child_producer_is_an_error_not_a_crash() {
    const TEST: &str = "truncation_under_a_child_producer_is_an_error_not_a_crash";
    if let Some((role, base)) = child_role() {
        assert_eq!(role, "producer");
        let mut tx = child_channel(&base).producer().expect("attach producer");
        let mut sent = 0u64;
        let e = loop {
            match tx.claim_timeout(LEN, WaitStrategy::BACKOFF, Duration::from_secs(20)) {
                Ok(mut slot) => {
                    slot.fill(sent as u8);
                    slot.commit();
                    sent += 1;
                    if sent == FAR {
                        report("ready", 1);
                    }
                }
                Err(e) => break e,
            }
        };
        report("result", format!("{e:?}"));
        return;
    }
    let t = TempNs::new("trunc-producer");
    let ring = channel(&t);
    let mut rx = ring.consumer().expect("consumer");
    let mut child = ChildProc::spawn(TEST, "producer", &t.base, &[]);
    receive(&mut rx, FAR);
    child.expect("ready");
    std::thread::sleep(Duration::from_millis(50));
    truncate(&ring.path(), 4096);
    let result = child.expect("result");
    let status = child.wait();
    assert_eq!(status.signal(), None, "child killed: {status}");
    assert!(status.success(), "child failed: {status}");
    assert_eq!(
        result,
        format!("{:?}", ClaimError::Unusable(SegmentFault::Truncated))
    );
    // The parent drains what the zero pages hold (nothing) and stops.
    let e = (0..10 * CAP)
        .find_map(|_| rx.try_read().err())
        .expect("the consumer notices");
    assert_eq!(e, RecvError::Unusable(SegmentFault::Truncated));
}

/// Truncation under the process that holds both ends: both get
/// `Unusable(Truncated)` and the process lives on.
#[test]
fn truncation_under_this_process_is_an_error_for_both_ends() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("trunc-self");
    let ring = channel(&t);
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    send(&mut tx, FAR);
    receive(&mut rx, FAR);
    truncate(&ring.path(), 4096);
    assert_eq!(
        rx.try_read().err(),
        Some(RecvError::Unusable(SegmentFault::Truncated))
    );
    assert!(sigbus_handler_installed());
    let e = (0..10 * CAP)
        .find_map(|_| tx.try_send(1, &[7; LEN]).err())
        .expect("the producer notices");
    assert_eq!(e, ClaimError::Unusable(SegmentFault::Truncated));
    // Once seen, every slow path says so again.
    assert_eq!(
        rx.read_timeout(WaitStrategy::BACKOFF, Duration::from_millis(200))
            .err(),
        Some(RecvError::Unusable(SegmentFault::Truncated))
    );
    // A new open of the truncated file is refused.
    assert!(ring.consumer().is_err());
}

/// The handler only takes faults inside shmbus mappings: a child that has
/// the handler installed maps a file of its own, truncates it and touches
/// it, and dies of SIGBUS as it would without shmbus.
#[test]
fn sigbus_outside_shmbus_mappings_still_kills() {
    const TEST: &str = "sigbus_outside_shmbus_mappings_still_kills";
    if let Some((role, base)) = child_role() {
        assert_eq!(role, "outside");
        let ring = child_bus(&base)
            .spsc(RING, &SpscConfig::with_capacity(CAP))
            .expect("create");
        let _rx = ring.consumer().expect("consumer");
        assert!(sigbus_handler_installed(), "handler not installed");
        report("installed", 1);
        let path = base.join("plain-file");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create plain file");
        f.set_len(8192).expect("size it");
        use std::os::fd::AsRawFd;
        // SAFETY: mapping 8192 bytes of a file we own, read-only.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        f.set_len(0).expect("truncate it");
        // SAFETY: the page is mapped; touching it after the truncation
        // raises SIGBUS, which is the point.
        let byte = unsafe { std::ptr::read_volatile((p as *const u8).add(4096)) };
        report("survived", byte);
        return;
    }
    let t = TempNs::new("outside");
    let mut child = ChildProc::spawn(TEST, "outside", &t.base, &[]);
    assert_eq!(child.expect("installed"), "1");
    let status = child.wait();
    assert_eq!(
        status.signal(),
        Some(libc::SIGBUS),
        "the child should have died of SIGBUS: {status}"
    );
}

/// With the handler turned off (environment variable or function), a
/// truncated segment kills the process with SIGBUS: the handler is what
/// keeps the other tests' children alive.
#[test]
fn with_the_handler_off_truncation_kills() {
    const TEST: &str = "with_the_handler_off_truncation_kills";
    if let Some((role, base)) = child_role() {
        if role == "off-by-call" {
            assert!(set_sigbus_handler(false), "too late to turn it off");
        }
        let ring = child_bus(&base)
            .spsc(RING, &SpscConfig::with_capacity(CAP))
            .expect("create");
        let mut tx = ring.producer().expect("producer");
        let mut rx = ring.consumer().expect("consumer");
        assert!(!sigbus_handler_installed(), "handler installed anyway");
        send(&mut tx, FAR);
        receive(&mut rx, FAR);
        std::fs::OpenOptions::new()
            .write(true)
            .open(ring.path())
            .expect("open")
            .set_len(4096)
            .expect("truncate");
        report("truncated", 1);
        let r = rx.try_read().err();
        report("survived", format!("{r:?}"));
        return;
    }
    for (role, env) in [
        ("off-by-env", &[(NO_SIGBUS_HANDLER_ENV, "1")][..]),
        ("off-by-call", &[][..]),
    ] {
        let t = TempNs::new("handler-off");
        let mut child = ChildProc::spawn(TEST, role, &t.base, env);
        assert_eq!(child.expect("truncated"), "1", "{role}");
        let status = child.wait();
        assert_eq!(
            status.signal(),
            Some(libc::SIGBUS),
            "{role}: the child should have died of SIGBUS: {status}"
        );
    }
}

// ---------------------------------------------------------------------------
// Removal
// ---------------------------------------------------------------------------

/// How the parent takes the ring away.
#[derive(Clone, Copy, Debug)]
enum Removal {
    /// `Bus::remove_spsc` then `Bus::spsc` of the same name (a new ring,
    /// in a new file).
    RemoveAndCreate,
    /// `std::fs::remove_file`, as `rm` would.
    Unlink,
}

impl Removal {
    /// Removes the ring of `channel` in `t`; returns the monotonic time
    /// just before.
    fn apply(self, t: &TempNs, channel: &Channel) -> u64 {
        let bus = t.bus();
        let t0 = monotonic_ns();
        match self {
            Removal::RemoveAndCreate => {
                bus.remove_spsc(RING).expect("remove");
                let again = bus
                    .spsc(RING, &SpscConfig::with_capacity(4096).with_wakeups())
                    .expect("create again");
                assert_ne!(again.path(), channel.path(), "a new ring, in a new file");
            }
            Removal::Unlink => std::fs::remove_file(channel.path()).expect("rm"),
        }
        t0
    }
}

fn noticed_within(t0: u64, at: &str) -> Duration {
    let at: u64 = at.parse().expect("a time");
    let took = Duration::from_nanos(at.saturating_sub(t0));
    assert!(took < Duration::from_secs(2), "noticed after {took:?}");
    took
}

/// A child producer runs (claim_blocking with BusySpin or Backoff) while
/// the parent reads, then the parent stops reading and removes the ring.
/// The child gets `Unusable(Removed)` well within a second, and no claim
/// succeeds after it; every record it committed is in the old file (the
/// parent's old consumer reads them all, then gets `Unusable(Removed)`),
/// and the new ring of the same name holds none.
#[test]
fn removal_under_a_running_producer_is_noticed() {
    const TEST: &str = "removal_under_a_running_producer_is_noticed";
    if let Some((role, base)) = child_role() {
        let wait = strategy(role.strip_prefix("producer:").expect("role producer:S"));
        let mut tx = child_channel(&base).producer().expect("attach producer");
        let mut oks = 0u64;
        let e = loop {
            match tx.claim_blocking(64, wait) {
                Ok(mut slot) => {
                    slot.fill(1);
                    slot.commit();
                    oks += 1;
                }
                Err(e) => break e,
            }
        };
        let at = monotonic_ns();
        let late = (0..1000)
            .filter(|_| tx.try_send(1, &[2; 64]).is_ok())
            .count();
        report("at", at);
        report("result", format!("{e:?}"));
        report("oks", oks);
        report("late_oks", late);
        return;
    }
    for (wait, removal) in [
        ("busyspin", Removal::RemoveAndCreate),
        ("backoff", Removal::RemoveAndCreate),
        ("backoff", Removal::Unlink),
    ] {
        let t = TempNs::new("rm-producer");
        let ring = t
            .bus()
            .spsc(RING, &SpscConfig::with_capacity(4096))
            .expect("create");
        let mut old_rx = ring.consumer().expect("consumer");
        let child = ChildProc::spawn(TEST, &format!("producer:{wait}"), &t.base, &[]);
        let mut child = child;
        let mut read = 0u64;
        while read < 2000 {
            let rec = old_rx
                .read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(10))
                .expect("the producer runs");
            assert_eq!(rec.len(), 64);
            read += 1;
        }
        let t0 = removal.apply(&t, &ring);
        let at = child.expect("at");
        let result = child.expect("result");
        let oks: u64 = child.expect("oks").parse().expect("count");
        let late = child.expect("late_oks");
        assert!(child.wait().success(), "{wait} {removal:?}: child failed");
        let took = noticed_within(t0, &at);
        eprintln!("{wait} producer noticed {removal:?} after {took:?}");
        assert_eq!(
            result,
            format!("{:?}", ClaimError::Unusable(SegmentFault::Removed)),
            "{wait} {removal:?}"
        );
        assert_eq!(
            late, "0",
            "{wait} {removal:?}: claims succeeded after Unusable"
        );
        // Everything the child committed is in the old file.
        let rest = old_rx.read_batch(usize::MAX, |_, _| {}).expect("old ring") as u64;
        assert_eq!(
            read + rest,
            oks,
            "{wait} {removal:?}: records unaccounted for"
        );
        // A hand unlink leaves no flag in the file: the consumer learns of
        // it from an `fstat`, made at most every 20 ms, so its next few
        // `try_read`s may still say `Empty`, never a record.
        let deadline = Instant::now() + Duration::from_secs(2);
        let fault = loop {
            match old_rx.try_read() {
                Err(RecvError::Empty) if Instant::now() < deadline => std::hint::spin_loop(),
                Err(e) => break e,
                Ok(rec) => panic!(
                    "{wait} {removal:?}: a record of {} bytes after the rest",
                    rec.len()
                ),
            }
        };
        assert_eq!(
            fault,
            RecvError::Unusable(SegmentFault::Removed),
            "{wait} {removal:?}"
        );
        if let Removal::RemoveAndCreate = removal {
            let mut new_rx = t
                .bus()
                .open_spsc(RING)
                .expect("the new channel")
                .consumer()
                .expect("new consumer");
            assert_eq!(new_rx.try_read().err(), Some(RecvError::Empty));
        }
    }
}

/// A child consumer waits for records (Blocking on a ring with wake-ups,
/// asleep on the futex; BusySpin; Backoff) when the parent removes the
/// ring. It gets `Unusable(Removed)` well within a second.
#[test]
fn removal_under_a_waiting_consumer_is_noticed() {
    const TEST: &str = "removal_under_a_waiting_consumer_is_noticed";
    if let Some((role, base)) = child_role() {
        let wait = strategy(role.strip_prefix("consumer:").expect("role consumer:S"));
        let mut rx = child_channel(&base).consumer().expect("attach consumer");
        for _ in 0..10 {
            drop(rx.read_blocking(wait).expect("a record"));
        }
        report("ready", 1);
        let e = loop {
            match rx.read_blocking(wait) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        report("at", monotonic_ns());
        report("result", format!("{e:?}"));
        return;
    }
    for (wait, removal) in [
        ("blocking", Removal::RemoveAndCreate),
        ("blocking", Removal::Unlink),
        ("busyspin", Removal::RemoveAndCreate),
        ("backoff", Removal::RemoveAndCreate),
        ("backoff", Removal::Unlink),
    ] {
        let t = TempNs::new("rm-consumer");
        let ring = t
            .bus()
            .spsc(RING, &SpscConfig::with_capacity(4096).with_wakeups())
            .expect("create");
        let mut tx = ring.producer().expect("producer");
        let mut child = ChildProc::spawn(TEST, &format!("consumer:{wait}"), &t.base, &[]);
        for _ in 0..10 {
            tx.try_send(1, &[1; 64]).expect("room");
        }
        child.expect("ready");
        // Long enough for a blocking consumer to be asleep on the futex.
        std::thread::sleep(Duration::from_millis(100));
        let t0 = removal.apply(&t, &ring);
        let at = child.expect("at");
        let result = child.expect("result");
        assert!(child.wait().success(), "{wait} {removal:?}: child failed");
        let took = noticed_within(t0, &at);
        eprintln!("{wait} consumer noticed {removal:?} after {took:?}");
        assert_eq!(
            result,
            format!("{:?}", RecvError::Unusable(SegmentFault::Removed)),
            "{wait} {removal:?}"
        );
    }
}

/// The producer child is stopped (SIGSTOP) while it waits on a full ring;
/// the ring is removed and created again, a consumer attaches to the new
/// one, and the child is continued. It returns `Unusable(Removed)` from
/// that wait, commits nothing more, and every record it reported committed
/// is in the old file; the new ring holds none.
#[test]
fn stopped_producer_resumes_into_unusable() {
    const TEST: &str = "stopped_producer_resumes_into_unusable";
    if let Some((role, base)) = child_role() {
        assert_eq!(role, "producer");
        let mut tx = child_channel(&base).producer().expect("attach producer");
        let mut oks = 0u64;
        let e = loop {
            match tx.claim_blocking(64, WaitStrategy::BACKOFF) {
                Ok(mut slot) => {
                    slot.fill(1);
                    slot.commit();
                    oks += 1;
                }
                Err(e) => break e,
            }
        };
        let at = monotonic_ns();
        let late = (0..1000)
            .filter(|_| tx.try_send(1, &[2; 64]).is_ok())
            .count();
        report("at", at);
        report("result", format!("{e:?}"));
        report("oks", oks);
        report("late_oks", late);
        return;
    }
    let t = TempNs::new("stopped");
    let bus = t.bus();
    let ring = bus
        .spsc(RING, &SpscConfig::with_capacity(4096))
        .expect("create");
    let mut old_rx = ring.consumer().expect("consumer");
    let mut child = ChildProc::spawn(TEST, "producer", &t.base, &[]);
    // Wait until the ring is full and stays so: the child is waiting.
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let pending = old_rx.pending_bytes();
        if pending == last && pending > 0 {
            break;
        }
        last = pending;
    }
    // SAFETY: signals to our own child.
    assert_eq!(unsafe { libc::kill(child.pid(), libc::SIGSTOP) }, 0);
    std::thread::sleep(Duration::from_millis(50));
    ring.remove().expect("remove");
    let again = bus
        .spsc(RING, &SpscConfig::with_capacity(4096))
        .expect("create again");
    let mut new_rx = again.consumer().expect("new consumer");
    let t0 = monotonic_ns();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.pid(), libc::SIGCONT) }, 0);
    let at = child.expect("at");
    let result = child.expect("result");
    let oks: u64 = child.expect("oks").parse().expect("count");
    let late = child.expect("late_oks");
    assert!(child.wait().success(), "child failed");
    let took = noticed_within(t0, &at);
    eprintln!("stopped producer noticed the removal {took:?} after SIGCONT");
    assert_eq!(
        result,
        format!("{:?}", ClaimError::Unusable(SegmentFault::Removed))
    );
    assert_eq!(late, "0", "claims succeeded after Unusable");
    let in_old = old_rx.read_batch(usize::MAX, |_, _| {}).expect("old ring") as u64;
    assert_eq!(in_old, oks, "committed records unaccounted for");
    assert_eq!(new_rx.try_read().err(), Some(RecvError::Empty));
}

/// Once a producer was told `Unusable(Removed)`, it commits nothing more,
/// even when the consumer of the removed file frees room: a later send
/// would otherwise be reported committed into a file nobody can open.
#[test]
fn producer_told_unusable_commits_nothing_more() {
    if child_role().is_some() {
        return;
    }
    let t = TempNs::new("sticky");
    let ring = t
        .bus()
        .spsc(RING, &SpscConfig::with_capacity(4096))
        .expect("create");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let mut sent = 0u64;
    while tx.try_send(1, &[1; 64]).is_ok() {
        sent += 1;
    }
    ring.remove().expect("remove");
    assert_eq!(
        tx.try_send(1, &[1; 64]).err(),
        Some(ClaimError::Unusable(SegmentFault::Removed))
    );
    // The consumer still reads what the removed file holds, freeing room.
    let read = rx.read_batch(usize::MAX, |_, _| {}).expect("records") as u64;
    assert_eq!(read, sent);
    assert_eq!(
        rx.try_read().err(),
        Some(RecvError::Unusable(SegmentFault::Removed))
    );
    for _ in 0..100 {
        assert_eq!(
            tx.try_send(1, &[2; 64]).err(),
            Some(ClaimError::Unusable(SegmentFault::Removed)),
            "a send succeeded after the producer was told"
        );
    }
    assert_eq!(
        tx.claim_timeout(8, WaitStrategy::BusySpin, Duration::from_millis(50))
            .err(),
        Some(ClaimError::Unusable(SegmentFault::Removed))
    );
}
