//! A namespace left empty goes away with its last bus: the directory file
//! and the namespace's directory on disk are removed when the last process
//! using them drops its bus, and only then; a process that opens the
//! namespace while that happens makes a new one. Users are proved by OFD
//! read locks, so a killed user stops counting and a stopped one keeps
//! counting (it resumes on the same directory).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{child_command, child_role, die_with_parent, SpawnOneAtATime, TempNs};
use shmbus::wait::WaitStrategy;
use shmbus::{Bus, QueueConfig, SpscConfig, StartAt, TopicConfig};

const NS: &str = "t";

fn directory_file(base: &Path) -> std::path::PathBuf {
    base.join(NS).join("directory.dir")
}

#[test]
fn the_last_bus_of_an_emptied_namespace_removes_it() {
    let t = TempNs::new("cleanup-empty");
    let bus = Bus::at(&t.base, NS).expect("bus");
    let topic = bus.topic("quotes", &TopicConfig::default()).expect("topic");
    let channel = bus
        .spsc("fills", &SpscConfig::with_capacity(4096))
        .expect("channel");
    let queue = bus.queue("orders", &QueueConfig::default()).expect("queue");
    // A second bus of the same process is a second user.
    let other = Bus::at(&t.base, NS).expect("second bus");
    topic.remove().expect("remove topic");
    channel.remove().expect("remove channel");
    queue.remove().expect("remove queue");
    drop((topic, channel, queue));
    drop(other);
    assert!(
        directory_file(&t.base).exists(),
        "a bus is still open: the directory stays"
    );
    drop(bus);
    assert!(
        !t.base.join(NS).exists(),
        "the namespace is gone with its last bus: {:?}",
        std::fs::read_dir(t.base.join(NS)).map(|d| d.count())
    );
    // Opening it again makes it afresh, and it works.
    let bus = Bus::at(&t.base, NS).expect("bus again");
    let topic = bus.topic("quotes", &TopicConfig::default()).expect("topic");
    assert!(topic.was_created());
    assert_eq!(topic.record().epoch, 1, "a new directory: a new entry");
}

#[test]
fn a_namespace_with_a_ring_in_it_stays() {
    let t = TempNs::new("cleanup-kept");
    {
        let bus = Bus::at(&t.base, NS).expect("bus");
        let removed = bus.topic("gone", &TopicConfig::default()).expect("topic");
        removed.remove().expect("remove");
        bus.queue("orders", &QueueConfig::default())
            .expect("queue")
            .producer()
            .expect("producer")
            .try_send(7, b"order")
            .expect("send");
    }
    assert!(directory_file(&t.base).exists());
    let bus = Bus::at(&t.base, NS).expect("bus again");
    let queue = bus.open_queue("orders").expect("the queue is still there");
    let mut consumer = queue.consumer().expect("consumer");
    let order = consumer.try_take().expect("its record too");
    assert_eq!(&order[..], b"order");
    order.ack().expect("ack");
    queue.remove().expect("remove");
    drop((consumer, queue, bus));
    assert!(!t.base.join(NS).exists(), "emptied, then gone");
}

/// Child role: opens the bus, says `ready`, waits for a `go` file, then
/// publishes and reads one record on `quotes` and says `done`.
fn user(base: &Path) {
    die_with_parent();
    let bus = Bus::at(base, NS).expect("bus");
    let topic = bus.topic("quotes", &TopicConfig::default()).expect("topic");
    println!("ready");
    while !base.join("go").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sub = topic.subscriber(StartAt::Tail).expect("subscriber");
    let mut publisher = topic.publisher().expect("publisher");
    publisher
        .send_blocking(1, b"still here", WaitStrategy::BACKOFF)
        .expect("publish after resuming");
    let rec = sub.read_blocking(WaitStrategy::BACKOFF).expect("read");
    assert_eq!(&rec[..], b"still here");
    drop(rec);
    println!("done");
}

fn spawn_user(
    test: &str,
    base: &Path,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = child_command(test, "user", base)
        .stdout(std::process::Stdio::piped())
        .spawn_one_at_a_time();
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    expect_line(&mut out, "ready");
    (child, out)
}

fn expect_line(out: &mut impl std::io::BufRead, said: &str) {
    let mut line = String::new();
    while !line.contains(said) {
        line.clear();
        out.read_line(&mut line).expect("read");
        assert!(!line.is_empty(), "child ended before saying {said:?}");
    }
}

/// A stopped user (SIGSTOP) still counts: the namespace stays while the
/// other users come and go, and the user resumes (SIGCONT) on it as if
/// nothing happened.
#[test]
fn a_stopped_user_keeps_the_namespace_and_resumes_on_it() {
    const TEST: &str = "a_stopped_user_keeps_the_namespace_and_resumes_on_it";
    if let Some((_, base)) = child_role() {
        user(&base);
        return;
    }
    let t = TempNs::new("cleanup-stopped");
    let (mut child, mut out) = spawn_user(TEST, &t.base);
    let pid = child.id() as i32;
    // SAFETY: kill sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // Everyone else empties the namespace and leaves.
    for _ in 0..3 {
        let bus = Bus::at(&t.base, NS).expect("bus");
        let q = bus.queue("orders", &QueueConfig::default()).expect("queue");
        q.remove().expect("remove");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        directory_file(&t.base).exists(),
        "the stopped user still uses it"
    );
    std::fs::write(t.base.join("go"), b"").expect("go");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    expect_line(&mut out, "done");
    assert!(child.wait().expect("wait").success());
    // Its topic is still there: the directory was never removed under it.
    let bus = Bus::at(&t.base, NS).expect("bus");
    assert!(!bus
        .topic("quotes", &TopicConfig::default())
        .expect("topic")
        .was_created());
}

/// A killed user (SIGKILL) stops counting: its lock went with it, so the
/// last live bus removes the emptied namespace.
#[test]
fn a_killed_user_stops_counting() {
    const TEST: &str = "a_killed_user_stops_counting";
    if let Some((_, base)) = child_role() {
        user(&base);
        return;
    }
    let t = TempNs::new("cleanup-killed");
    let (mut child, _out) = spawn_user(TEST, &t.base);
    child.kill().expect("kill");
    child.wait().expect("wait");
    let bus = Bus::at(&t.base, NS).expect("bus");
    bus.open_topic("quotes")
        .expect("the dead user's topic")
        .remove()
        .expect("remove");
    drop(bus);
    assert!(
        !t.base.join(NS).exists(),
        "nobody left, nothing in it: gone"
    );
}

/// Child role: opens and drops buses in a loop, each time creating,
/// using and removing a queue, for the time the parent gives.
fn churn(base: &Path, until: Instant) {
    die_with_parent();
    let mut rounds = 0u64;
    while Instant::now() < until {
        let bus = Bus::at(base, NS).expect("a bus, however the others come and go");
        let name = format!("q{}", std::process::id());
        let queue = bus.queue(&name, &QueueConfig::default()).expect("queue");
        let mut p = queue.producer().expect("producer");
        let mut c = queue.consumer().expect("consumer");
        p.try_send(1, b"x").expect("send");
        c.try_take().expect("take").ack().expect("ack");
        drop((p, c));
        queue.remove().expect("remove");
        rounds += 1;
    }
    println!("rounds {rounds}");
}

/// Processes open, empty and drop buses of one namespace as fast as they
/// can: every open succeeds (one that races a removal makes the namespace
/// again), and the namespace is gone once the last one leaves.
#[test]
fn buses_racing_a_removal_always_open() {
    const TEST: &str = "buses_racing_a_removal_always_open";
    if let Some((role, base)) = child_role() {
        let ms: u64 = role
            .strip_prefix("churn:")
            .and_then(|s| s.parse().ok())
            .expect("churn:MS");
        churn(&base, Instant::now() + Duration::from_millis(ms));
        return;
    }
    let t = TempNs::new("cleanup-race");
    let children: Vec<_> = (0..4)
        .map(|_| {
            child_command(TEST, "churn:1500", &t.base)
                .stdout(std::process::Stdio::piped())
                .spawn_one_at_a_time()
        })
        .collect();
    let mut total = 0u64;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a churner failed: {text}");
        let rounds: u64 = text
            .lines()
            .find_map(|l| l.split("rounds ").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .expect("rounds");
        assert!(rounds > 0);
        total += rounds;
    }
    assert!(total > 4, "{total} rounds");
    assert!(!t.base.join(NS).exists(), "the last one out removed it");
}

/// A remover stopped between taking the directory's exclusive lock and
/// unlinking it (the state a SIGSTOP there leaves, made here by holding
/// that lock from another open of the file): a bus opened meanwhile waits,
/// neither failing nor using the doomed file, and when the remover resumes
/// and unlinks it, the bus makes the namespace afresh.
#[test]
fn a_bus_waits_out_a_stopped_remover() {
    use std::os::fd::AsRawFd;
    let t = TempNs::new("cleanup-stopped-remover");
    // A directory nobody uses (a bare `Directory` handle does not remove
    // anything when dropped).
    drop(shmbus::directory::Directory::open_or_create(&t.ns).expect("directory"));
    let path = directory_file(&t.base);
    let remover = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open directory.dir");
    // SAFETY: all-zero is a valid flock.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0; // lock_slot::DIRECTORY_USERS
    fl.l_len = 1;
    // A child that another test forks meanwhile holds a copy of the
    // directory's descriptor, and its read lock, until its exec: retry.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: a live descriptor and a valid flock for F_OFD_SETLK.
        if unsafe { libc::fcntl(remover.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert!(Instant::now() < deadline, "the exclusive users lock: {err}");
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let opener = {
        let base = t.base.clone();
        std::thread::spawn(move || {
            let bus = Bus::at(&base, NS).expect("a bus once the remover is done");
            let topic = bus.topic("quotes", &TopicConfig::default()).expect("topic");
            (started.elapsed(), topic.was_created(), topic.record().epoch)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !opener.is_finished(),
        "the bus did not wait for the remover"
    );
    // The remover resumes: unlinks, then lets go.
    std::fs::remove_file(&path).expect("unlink");
    drop(remover);
    let (waited, created, epoch) = opener.join().expect("opener");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(created && epoch == 1, "a fresh directory");
}

/// A test process killed or interrupted before its drops ran leaves its
/// base directory; the next process's first temporary namespace removes
/// it, and leaves alone those of processes that still run.
#[test]
fn a_killed_test_processs_namespace_goes_with_the_next_run() {
    let mut child = std::process::Command::new("true").spawn_one_at_a_time();
    let dead = child.id();
    child.wait().expect("it exits");
    let root = TempNs::root();
    let stale = root.join(format!("shmbus-test-killed-run-{dead}-0"));
    let live = root.join(format!("shmbus-test-live-run-{}-999", std::process::id()));
    for dir in [&stale, &live] {
        std::fs::create_dir_all(dir.join("t")).expect("make a base directory");
        std::fs::write(dir.join("t").join("directory.dir"), b"x").expect("file");
    }
    assert!(TempNs::sweep_stale(&root) >= 1);
    assert!(!stale.exists(), "the dead process's base directory is gone");
    assert!(live.exists(), "a live process's base directory stays");
    std::fs::remove_dir_all(&live).expect("clean up");
}
