//! Chaos: processes SIGKILLed at random while records flow, and a verifier
//! that checks nothing was lost or duplicated beyond what the library
//! promises under `Backpressure`.
//!
//! # The cast
//!
//! Every process below except the test process itself is this test binary
//! re-run in a role (`tests/common`), in a temporary namespace.
//!
//! * Topic `chaos` (`Backpressure`, 64 slots, claim timeout 50 ms):
//!   2 publisher processes, 2 durable subscriber processes (`d0`, `d1`),
//!   1 anonymous subscriber process, and the *witness*: an anonymous
//!   subscriber in a thread of the test process, never killed.
//! * SPSC ring `chaos_ring` (4 KiB): 1 producer process, 1 consumer process.
//!
//! The test process picks one of the seven child processes at random
//! (seeded, the seed is printed), SIGKILLs it at a random moment, reaps it
//! and starts a replacement at once, over and over. With stalls on it also
//! SIGSTOPs a random process for 0-200 ms (four times the claim timeout at
//! most) and SIGCONTs it. Publishers and producers sometimes hold a claim
//! open for a few hundred microseconds and readers sometimes hold a record
//! between journaling and releasing it, so kills and stops often land in
//! those windows.
//!
//! # What each process writes down
//!
//! Every writer *incarnation* (one process lifetime of a publisher or
//! producer) has a unique id and numbers its records 0, 1, 2, ... Its
//! payload is `[incarnation u64][seq u64][pattern][crc32]`, 20-64 bytes,
//! the length a hash of both. Readers check the CRC and length of every
//! record (a torn or foreign record makes the reader panic, which the test
//! sees as an unexpected exit).
//!
//! Journals are files in the base directory, appended with `O_APPEND`, one
//! `write` per entry. Entries are 8 or 32 bytes, so none straddles a page
//! and a SIGKILL cannot leave half an entry (tmpfs checks for a fatal
//! signal only between pages); 32-byte entries also carry a hash of
//! themselves, checked on reading.
//!
//! * A writer appends `seq` after each commit returns (`seq | RECLAIMED`
//!   when the commit reports that its claim was reclaimed while it was
//!   stalled). A writer killed between commit and append has committed one
//!   record more than its journal says; that is the only uncertainty.
//! * A reader appends `(log position, incarnation, seq)` for a record while
//!   it still holds it, and only then drops it (which stores its cursor).
//!   So a durable subscriber or SPSC consumer killed between the append and
//!   the drop gets that record again after its restart, and journals it
//!   twice. To place that duplicate exactly, a durable subscriber and the
//!   consumer share one journal across their incarnations and append a
//!   *restart marker* before attaching: a duplicate is allowed only as the
//!   first entry after a marker, equal to the last entry before it. A kill
//!   before the append loses nothing either: the record was never released,
//!   so the next incarnation reads it. Each anonymous subscriber
//!   incarnation has a journal of its own (it starts at the tail).
//!
//! At the end every writer is killed, the test process publishes one END
//! record on the topic and sends one on the ring, and every reader reads up
//! to END (which proves it has passed every earlier slot) and exits.
//!
//! # What the verifier checks
//!
//! * Witness: for every publisher incarnation, the seqs it received are
//!   exactly the journaled seqs that were not reclaimed, in order, plus
//!   possibly the next one (committed just before the kill); no record
//!   from an unknown incarnation.
//! * Durable subscribers: after removing the allowed duplicates, each
//!   journal is exactly the witness's list (positions, incarnations,
//!   seqs), END included: nothing lost, nothing extra, across every one of
//!   their deaths; log positions strictly increase otherwise.
//! * Anonymous subscribers: each incarnation's journal is one contiguous
//!   run of the witness's list (no gap from its first record to its last).
//! * SPSC: after removing the allowed duplicates, the consumer's journal
//!   has strictly increasing ring positions and holds, for each producer
//!   incarnation in order, exactly seqs `0..m`, with `m` the journaled
//!   count or one more; then END.
//! * Liveness: records keep flowing (the witness sees a new one at least
//!   every 20 s whatever was killed), and every reader reaches END.
//!
//! # Running it
//!
//! `cargo test --release --test chaos` runs the short version (400 kills).
//! `SHMBUS_CHAOS_KILLS=2000` sets the number of kills (the long version);
//! `SHMBUS_CHAOS_SEED=<n>` replays a schedule (the same targets, delays and
//! holds; process timing still varies). `chaos_with_stalls_loses_nothing` adds the
//! SIGSTOP/SIGCONT stalls (100 kills by default).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{child_command, child_role, die_with_parent, splitmix, SpawnOneAtATime, TempNs};
use shmbus::bus::{Bus, Claim, Policy, RecvError, StartAt, TopicConfig};
use shmbus::ring::broadcast::{ClaimError, Publisher, Subscriber};
use shmbus::ring::spsc::{self, Consumer, Producer, SpscConfig, WriteSlot};
use shmbus::segment::OpenOptions;
use shmbus::wait::WaitStrategy;

const TOPIC: &str = "chaos";
const RING: &str = "chaos_ring";
/// Argument handed to a child: `incarnation slot seed`.
const CHILD_ARG: &str = "SHMBUS_TEST_ARG";
/// Largest payload.
const MAX: usize = 64;
/// Shortest payload: incarnation, seq, crc.
const MIN_LEN: usize = 20;
/// The incarnation id of the END record.
const END: u64 = u64::MAX - 1;
/// Flag on a writer journal entry: the commit said its claim was reclaimed.
const RECLAIMED: u64 = 1 << 63;
/// A child gives up after this long whatever happens (the parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(1200);
/// The witness must see a new record at least this often.
const PROGRESS: Duration = Duration::from_secs(20);
/// How long readers may take to reach END once it is published.
const DRAIN: Duration = Duration::from_secs(60);

const PUBLISHERS: usize = 2;
const DURABLES: usize = 2;
const ANONYMOUS: usize = 1;

fn topic_config() -> TopicConfig {
    TopicConfig {
        slots: 64,
        max_payload: MAX as u32,
        policy: Policy::Backpressure,
        max_subscribers: 8,
        max_publishers: 4,
        reclaim_after: Duration::from_millis(50),
    }
}

fn ring_config() -> SpscConfig {
    SpscConfig::with_capacity(4096).with_wakeups()
}

/// How the readers in child processes wait: asleep on the futex (the SPSC
/// ring is made with wake-ups for it). A dead or stalled claim must still
/// be reclaimed within the claim timeout plus one wait round.
const READER_WAIT: WaitStrategy = WaitStrategy::BLOCKING;

// ---------------------------------------------------------------------------
// The library calls, one small wrapper each (their signatures are changing)
// ---------------------------------------------------------------------------

/// What became of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Committed {
    /// The record is in the log.
    Yes,
    /// The claim was reclaimed while its publisher was stalled: the record
    /// is not in the log, and the publisher was told.
    Reclaimed,
}

/// Claims `len` bytes on the topic; `None` if the log stayed full a while.
fn claim_topic(p: &mut Publisher, len: usize) -> Option<Claim<'_>> {
    match p.claim_timeout(len, WaitStrategy::BACKOFF, Duration::from_millis(200)) {
        Ok(claim) => Some(claim),
        Err(ClaimError::TimedOut) => None,
        Err(e) => panic!("claim on {TOPIC}: {e}"),
    }
}

/// Commits a topic claim: `Reclaimed` when the publisher was stalled past
/// the claim timeout and a waiter took the claim (the record is not in the
/// log, and the publisher knows).
fn commit_topic(claim: Claim<'_>) -> Committed {
    match claim.commit() {
        Ok(_) => Committed::Yes,
        Err(ClaimError::Reclaimed { .. }) => Committed::Reclaimed,
        Err(e) => panic!("commit on {TOPIC}: {e}"),
    }
}

/// The next record on the topic; `None` if none came for a while.
fn read_topic(sub: &mut Subscriber, wait: WaitStrategy) -> Option<shmbus::bus::Record<'_>> {
    let at = sub.position();
    match sub.read_timeout(wait, Duration::from_millis(100)) {
        Ok(rec) => Some(rec),
        Err(RecvError::TimedOut) => None,
        Err(e) => panic!("read on {TOPIC} at {at}: {e}"),
    }
}

/// Claims `len` bytes on the ring; `None` if it stayed full a while.
fn claim_ring(tx: &mut Producer, len: usize) -> Option<WriteSlot<'_>> {
    match tx.claim_timeout(len, WaitStrategy::BACKOFF, Duration::from_millis(200)) {
        Ok(slot) => Some(slot),
        Err(spsc::ClaimError::TimedOut) => None,
        Err(e) => panic!("claim on {RING}: {e}"),
    }
}

fn commit_ring(slot: WriteSlot<'_>) -> Committed {
    slot.commit();
    Committed::Yes
}

/// The next record on the ring; `None` if none came for a while.
fn read_ring(rx: &mut Consumer) -> Option<spsc::Record<'_>> {
    let at = rx.position();
    match rx.read_timeout(READER_WAIT, Duration::from_millis(100)) {
        Ok(rec) => Some(rec),
        Err(spsc::RecvError::TimedOut) => None,
        Err(e) => panic!("read on {RING} at {at}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

fn len_of(inc: u64, seq: u64) -> usize {
    MIN_LEN + (splitmix(seq ^ inc.rotate_left(29)) % (MAX - MIN_LEN + 1) as u64) as usize
}

fn fill(inc: u64, seq: u64, buf: &mut [u8]) {
    let body = buf.len() - 4;
    buf[..8].copy_from_slice(&inc.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    let mut x = splitmix(seq ^ inc.rotate_left(17));
    for chunk in buf[16..body].chunks_mut(8) {
        x = splitmix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let crc = crc32fast::hash(&buf[..body]);
    buf[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Checks a payload made by [`fill`]; returns `(incarnation, seq)`.
fn check(payload: &[u8], what: &str) -> (u64, u64) {
    assert!(
        payload.len() >= MIN_LEN,
        "{what}: record of {} bytes is too short",
        payload.len()
    );
    let body = payload.len() - 4;
    let stored = u32::from_le_bytes(payload[body..].try_into().expect("4 bytes"));
    let inc = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let seq = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    assert_eq!(
        crc32fast::hash(&payload[..body]),
        stored,
        "{what}: record (incarnation {inc}, seq {seq}) is torn"
    );
    assert_eq!(
        payload.len(),
        len_of(inc, seq),
        "{what}: record (incarnation {inc}, seq {seq}) has the wrong length"
    );
    (inc, seq)
}

// ---------------------------------------------------------------------------
// Journals
// ---------------------------------------------------------------------------

/// One journal entry of a reader: where it read which record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Log sequence (topic) or ring position before the read (SPSC).
    pos: u64,
    inc: u64,
    seq: u64,
}

const MARKER: u64 = u64::MAX;

impl Entry {
    fn marker(inc: u64) -> Entry {
        Entry {
            pos: MARKER,
            inc: MARKER,
            seq: inc,
        }
    }

    fn is_marker(&self) -> bool {
        self.pos == MARKER && self.inc == MARKER
    }

    fn hash(&self) -> u64 {
        splitmix(self.pos ^ splitmix(self.inc ^ splitmix(self.seq ^ 0xC4A0_5000)))
    }

    fn bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, w) in [self.pos, self.inc, self.seq, self.hash()]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// An append-only journal: one `write` per entry.
struct Journal(File);

impl Journal {
    fn open(path: &Path) -> Journal {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open journal {}: {e}", path.display()));
        Journal(file)
    }

    fn entry(&mut self, e: Entry) {
        self.0
            .write_all(&e.bytes())
            .expect("append a journal entry");
    }

    fn word(&mut self, w: u64) {
        self.0
            .write_all(&w.to_le_bytes())
            .expect("append a journal word");
    }
}

fn read_bytes(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read journal {}: {e}", path.display()),
    }
}

fn read_entries(path: &Path) -> Vec<Entry> {
    let bytes = read_bytes(path);
    assert!(
        bytes.len() % 32 == 0,
        "journal {} holds {} bytes, not whole entries",
        path.display(),
        bytes.len()
    );
    bytes
        .chunks_exact(32)
        .enumerate()
        .map(|(i, c)| {
            let w = |k: usize| u64::from_le_bytes(c[k * 8..k * 8 + 8].try_into().expect("8"));
            let e = Entry {
                pos: w(0),
                inc: w(1),
                seq: w(2),
            };
            assert_eq!(
                e.hash(),
                w(3),
                "journal {} entry {i} is damaged",
                path.display()
            );
            e
        })
        .collect()
}

fn read_words(path: &Path) -> Vec<u64> {
    let bytes = read_bytes(path);
    assert!(
        bytes.len() % 8 == 0,
        "journal {} holds {} bytes, not whole words",
        path.display(),
        bytes.len()
    );
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

fn journal_dir(base: &Path) -> PathBuf {
    base.join("journals")
}

fn writer_journal(base: &Path, inc: u64) -> PathBuf {
    journal_dir(base).join(format!("w-{inc}"))
}

fn durable_journal(base: &Path, slot: usize) -> PathBuf {
    journal_dir(base).join(format!("d-{slot}"))
}

fn anonymous_journal(base: &Path, inc: u64) -> PathBuf {
    journal_dir(base).join(format!("a-{inc}"))
}

fn consumer_journal(base: &Path) -> PathBuf {
    journal_dir(base).join("c")
}

fn durable_name(slot: usize) -> String {
    format!("d{slot}")
}

// ---------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Publisher,
    Durable,
    Anonymous,
    Producer,
    Consumer,
}

impl Role {
    const ALL: [Role; 5] = [
        Role::Publisher,
        Role::Durable,
        Role::Anonymous,
        Role::Producer,
        Role::Consumer,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Durable => "durable",
            Role::Anonymous => "anonymous",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }

    fn from_name(name: &str) -> Role {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("unknown child role {name:?}"))
    }

    fn is_writer(self) -> bool {
        matches!(self, Role::Publisher | Role::Producer)
    }
}

/// A child's private random stream (holds, not the kill schedule).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }

    /// A value in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One time in four, sleep 50-300 µs: widens the window a kill or stop
/// can land in (an open claim, a journaled but unreleased record).
fn maybe_hold(rng: &mut Rng) {
    if rng.below(4) == 0 {
        std::thread::sleep(Duration::from_micros(50 + rng.below(250)));
    }
}

/// Writers pace themselves: about 3,000 records a second each.
fn pace(seq: u64) {
    if seq % 4 == 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn run_child(role: &str, base: &Path) {
    die_with_parent();
    let arg = std::env::var(CHILD_ARG).expect("child argument");
    let mut f = arg
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    let (inc, slot, seed) = (
        f.next().expect("incarnation"),
        f.next().expect("slot") as usize,
        f.next().expect("seed"),
    );
    let mut rng = Rng(seed ^ inc.rotate_left(7));
    let started = Instant::now();
    let alive = || started.elapsed() < CHILD_LIFETIME;
    match Role::from_name(role) {
        Role::Publisher => {
            let bus = Bus::at(base, "t").expect("open bus");
            let topic = bus.topic(TOPIC, &topic_config()).expect("open topic");
            let mut p = topic.publisher().expect("publisher slot");
            let mut journal = Journal::open(&writer_journal(base, inc));
            let mut seq = 0;
            while alive() {
                let len = len_of(inc, seq);
                let Some(mut claim) = claim_topic(&mut p, len) else {
                    continue;
                };
                fill(inc, seq, &mut claim);
                maybe_hold(&mut rng);
                let flag = match commit_topic(claim) {
                    Committed::Yes => 0,
                    Committed::Reclaimed => RECLAIMED,
                };
                journal.word(seq | flag);
                seq += 1;
                pace(seq);
            }
        }
        Role::Producer => {
            let bus = Bus::at(base, "t").expect("open bus");
            let ring = bus.open_spsc(RING).expect("open channel");
            let mut tx = ring.producer().expect("attach producer");
            let mut journal = Journal::open(&writer_journal(base, inc));
            let mut seq = 0;
            while alive() {
                let len = len_of(inc, seq);
                let Some(mut slot) = claim_ring(&mut tx, len) else {
                    continue;
                };
                fill(inc, seq, &mut slot);
                maybe_hold(&mut rng);
                let flag = match commit_ring(slot) {
                    Committed::Yes => 0,
                    Committed::Reclaimed => RECLAIMED,
                };
                journal.word(seq | flag);
                seq += 1;
                pace(seq);
            }
        }
        Role::Durable | Role::Anonymous => {
            let durable = Role::from_name(role) == Role::Durable;
            let path = if durable {
                durable_journal(base, slot)
            } else {
                anonymous_journal(base, inc)
            };
            let mut journal = Journal::open(&path);
            if durable {
                // Before attaching: whatever follows may repeat the entry
                // before this marker, once.
                journal.entry(Entry::marker(inc));
            }
            let bus = Bus::at(base, "t").expect("open bus");
            let topic = bus.topic(TOPIC, &topic_config()).expect("open topic");
            let mut sub = if durable {
                topic.durable_subscriber(&durable_name(slot), StartAt::Oldest)
            } else {
                // Oldest, not Tail: a reader respawned just before END went
                // out could otherwise attach after it and wait forever.
                topic.subscriber(StartAt::Oldest)
            }
            .expect("subscribe");
            while alive() {
                let Some(rec) = read_topic(&mut sub, READER_WAIT) else {
                    continue;
                };
                let (i, s) = check(&rec, role);
                journal.entry(Entry {
                    pos: rec.sequence(),
                    inc: i,
                    seq: s,
                });
                maybe_hold(&mut rng);
                drop(rec);
                if i == END {
                    return;
                }
            }
        }
        Role::Consumer => {
            let mut journal = Journal::open(&consumer_journal(base));
            journal.entry(Entry::marker(inc));
            let bus = Bus::at(base, "t").expect("open bus");
            let ring = bus.open_spsc(RING).expect("open channel");
            let mut rx = ring.consumer().expect("attach consumer");
            while alive() {
                let pos = rx.position();
                let Some(rec) = read_ring(&mut rx) else {
                    continue;
                };
                let (i, s) = check(&rec, role);
                journal.entry(Entry {
                    pos,
                    inc: i,
                    seq: s,
                });
                maybe_hold(&mut rng);
                drop(rec);
                if i == END {
                    return;
                }
            }
        }
    }
    panic!("{role} {inc} still running after {CHILD_LIFETIME:?}");
}

// ---------------------------------------------------------------------------
// The crew of child processes
// ---------------------------------------------------------------------------

struct Kid {
    role: Role,
    slot: usize,
    inc: u64,
    child: Child,
}

impl Kid {
    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn describe(&self) -> String {
        format!(
            "{} {} (incarnation {}, pid {})",
            self.role.name(),
            self.slot,
            self.inc,
            self.child.id()
        )
    }
}

fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill(2) on a child we spawned and have not reaped yet, so the
    // pid cannot have been reused.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Every child process of one run. Killed and reaped on drop.
struct Crew {
    test: &'static str,
    base: PathBuf,
    seed: u64,
    kids: Vec<Kid>,
    next_inc: u64,
    /// Every incarnation ever started: (role, slot, id).
    history: Vec<(Role, usize, u64)>,
    kills: HashMap<Role, u64>,
}

impl Crew {
    fn start(&mut self, role: Role, slot: usize) -> Kid {
        let inc = self.next_inc;
        self.next_inc += 1;
        let child = child_command(self.test, role.name(), &self.base)
            .env(CHILD_ARG, format!("{inc} {slot} {}", self.seed))
            .stdout(Stdio::null())
            .spawn_one_at_a_time();
        self.history.push((role, slot, inc));
        Kid {
            role,
            slot,
            inc,
            child,
        }
    }

    fn spawn(&mut self, role: Role, slot: usize) {
        let kid = self.start(role, slot);
        self.kids.push(kid);
    }

    /// SIGKILLs kid `i`, reaps it, and starts its replacement (unless `last`).
    fn kill(&mut self, i: usize, replace: bool) {
        let kid = &mut self.kids[i];
        signal(kid.pid(), libc::SIGKILL);
        let status = kid.child.wait().expect("reap a killed child");
        assert!(
            status_is_kill(status) || status.success(),
            "{} died by itself: {status}",
            kid.describe()
        );
        *self.kills.entry(kid.role).or_default() += 1;
        if replace {
            let (role, slot) = (kid.role, kid.slot);
            self.kids[i] = self.start(role, slot);
        } else {
            self.kids.remove(i);
        }
    }

    /// Panics if any child has exited without being killed.
    fn check_alive(&mut self) {
        for kid in &mut self.kids {
            if let Some(status) = kid.child.try_wait().expect("poll a child") {
                panic!(
                    "{} exited on its own: {status} (its panic message, if any, is above)",
                    kid.describe()
                );
            }
        }
    }

    fn total_kills(&self) -> u64 {
        self.kills.values().sum()
    }
}

fn status_is_kill(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

impl Drop for Crew {
    fn drop(&mut self) {
        for kid in &mut self.kids {
            if let Ok(None) = kid.child.try_wait() {
                // SAFETY: as in `signal`: an unreaped child of ours.
                unsafe {
                    libc::kill(kid.pid(), libc::SIGCONT);
                    libc::kill(kid.pid(), libc::SIGKILL);
                }
                let _ = kid.child.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The witness: an anonymous subscriber in this process, never killed
// ---------------------------------------------------------------------------

struct Witness {
    handle: Option<JoinHandle<Vec<Entry>>>,
    seen: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Witness {
    fn start(mut sub: Subscriber) -> Witness {
        let seen = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut entries = Vec::new();
            while !st.load(Ordering::Relaxed) {
                let Some(rec) = read_topic(&mut sub, WaitStrategy::Yield) else {
                    continue;
                };
                let (inc, seq) = check(&rec, "witness");
                entries.push(Entry {
                    pos: rec.sequence(),
                    inc,
                    seq,
                });
                drop(rec);
                s.store(entries.len() as u64, Ordering::Relaxed);
                if inc == END {
                    break;
                }
            }
            entries
        });
        Witness {
            handle: Some(handle),
            seen,
            stop,
        }
    }

    fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    fn check_running(&self) {
        if let Some(h) = &self.handle {
            assert!(!h.is_finished(), "the witness stopped early (see above)");
        }
    }

    fn finish(mut self, within: Duration) -> Vec<Entry> {
        let handle = self.handle.take().expect("joined once");
        let deadline = Instant::now() + within;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the witness did not reach END within {within:?} ({} records)",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.join().expect("the witness panicked (see above)")
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

fn run(test: &'static str, stalls: bool) {
    if let Some((role, base)) = child_role() {
        run_child(&role, &base);
        return;
    }
    // Stalls sleep up to 200 ms each: fewer kills keep that run short too.
    let kills = env_u64("SHMBUS_CHAOS_KILLS").unwrap_or(if stalls { 100 } else { 400 });
    let seed = env_u64("SHMBUS_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!(
        "{test}: {kills} kills{}, seed {seed} (SHMBUS_CHAOS_SEED={seed} replays its schedule)",
        if stalls { " with stalls" } else { "" }
    );
    let t = TempNs::new("chaos");
    std::fs::create_dir(journal_dir(&t.base)).expect("create the journal directory");

    let bus = Bus::at(&t.base, "t").expect("open bus");
    let topic = bus.topic(TOPIC, &topic_config()).expect("create topic");
    // The durable subscribers exist from position 0 on, before anything is
    // published: every incarnation resumes from their stored cursors.
    for slot in 0..DURABLES {
        drop(
            topic
                .durable_subscriber(&durable_name(slot), StartAt::Oldest)
                .expect("register a durable subscriber"),
        );
    }
    let witness = Witness::start(topic.subscriber(StartAt::Tail).expect("witness"));
    let ring = bus.spsc(RING, &ring_config()).expect("create ring");

    let mut crew = Crew {
        test,
        base: t.base.clone(),
        seed,
        kids: Vec::new(),
        next_inc: 1,
        history: Vec::new(),
        kills: HashMap::new(),
    };
    for slot in 0..PUBLISHERS {
        crew.spawn(Role::Publisher, slot);
    }
    for slot in 0..DURABLES {
        crew.spawn(Role::Durable, slot);
    }
    for slot in 0..ANONYMOUS {
        crew.spawn(Role::Anonymous, slot);
    }
    crew.spawn(Role::Producer, 0);
    crew.spawn(Role::Consumer, 0);

    let started = Instant::now();
    let mut rng = Rng(seed);
    let (mut stall_count, mut last_seen, mut last_progress) = (0u64, 0u64, Instant::now());
    while crew.total_kills() < kills {
        std::thread::sleep(Duration::from_millis(2 + rng.below(48)));
        crew.check_alive();
        witness.check_running();
        let seen = witness.seen();
        if seen != last_seen {
            (last_seen, last_progress) = (seen, Instant::now());
        }
        assert!(
            last_progress.elapsed() < PROGRESS,
            "no record reached the witness for {PROGRESS:?} after {seen} records and {} kills",
            crew.total_kills()
        );
        let i = rng.below(crew.kids.len() as u64) as usize;
        if stalls && rng.below(3) == 0 {
            let pid = crew.kids[i].pid();
            signal(pid, libc::SIGSTOP);
            std::thread::sleep(Duration::from_millis(rng.below(201)));
            signal(pid, libc::SIGCONT);
            stall_count += 1;
        } else {
            crew.kill(i, true);
        }
    }
    let chaos_time = started.elapsed();

    // Drain: writers die one last time, END goes out on both, and every
    // reader must get to it.
    while let Some(i) = crew.kids.iter().position(|k| k.role.is_writer()) {
        crew.kill(i, false);
    }
    let mut p = topic.publisher().expect("END publisher");
    let len = len_of(END, 0);
    let mut claim = p
        .claim_timeout(len, WaitStrategy::BACKOFF, DRAIN)
        .expect("room for END");
    fill(END, 0, &mut claim);
    assert_eq!(commit_topic(claim), Committed::Yes, "END committed");
    drop(p);
    let mut tx = ring.producer().expect("END producer");
    let mut slot = tx
        .claim_timeout(len, WaitStrategy::BACKOFF, DRAIN)
        .expect("room for END");
    fill(END, 0, &mut slot);
    commit_ring(slot);
    drop(tx);

    let deadline = Instant::now() + DRAIN;
    for kid in &mut crew.kids {
        let status = loop {
            if let Some(status) = kid.child.try_wait().expect("poll a reader") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not reach END within {DRAIN:?}",
                kid.describe()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{} failed: {status}", kid.describe());
    }
    crew.kids.clear();
    let witnessed = witness.finish(DRAIN);

    let report = verify(&t.base, &crew.history, &witnessed);
    let counters = shmbus::inspect::inspect_topic(&t.ns, TOPIC, &OpenOptions::default())
        .expect("inspect the topic");
    let kills: Vec<String> = Role::ALL
        .iter()
        .map(|r| format!("{} {}", r.name(), crew.kills.get(r).copied().unwrap_or(0)))
        .collect();
    eprintln!(
        "{test}: {} kills ({}), {stall_count} stalls in {chaos_time:.1?}; {report}; \
         the log reclaimed {} dead claims and reaped {} subscribers and {} publishers",
        crew.total_kills(),
        kills.join(", "),
        counters.reclaimed_claims,
        counters.reaped_subscribers,
        counters.reaped_publishers,
    );
}

// ---------------------------------------------------------------------------
// The verifier
// ---------------------------------------------------------------------------

/// Removes the duplicates a restart may cause from a journal shared by the
/// incarnations of one reader, checking that those are the only ones:
/// positions strictly increase, except that the first entry after a restart
/// marker may repeat the last entry before it. Returns the entries and the
/// number of duplicates.
fn dedup_restarts(journal: &[Entry], what: &str) -> (Vec<Entry>, u64) {
    let mut out: Vec<Entry> = Vec::with_capacity(journal.len());
    let (mut after_restart, mut dups) = (false, 0);
    for (i, e) in journal.iter().enumerate() {
        if e.is_marker() {
            after_restart = true;
            continue;
        }
        let last = out.last().copied();
        if after_restart && last == Some(*e) {
            dups += 1;
        } else if let Some(last) = last {
            assert!(
                e.pos > last.pos,
                "{what}: journal entry {i} {e:?} follows {last:?}{}",
                if last == *e {
                    " (a duplicate not at a restart)"
                } else {
                    " (out of order)"
                }
            );
            out.push(*e);
        } else {
            out.push(*e);
        }
        after_restart = false;
    }
    (out, dups)
}

/// The first place two lists differ, for messages.
fn first_difference(got: &[Entry], want: &[Entry]) -> String {
    let i = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "{} entries against {}; first difference at {i}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        got.get(i),
        want.get(i)
    )
}

/// Seqs a reader got from writer `inc`, checked against its journal: the
/// journaled seqs not reclaimed, in order, and possibly the next one.
fn check_writer(base: &Path, inc: u64, got: &[u64], what: &str) -> (u64, u64) {
    let words = read_words(&writer_journal(base, inc));
    for (i, w) in words.iter().enumerate() {
        assert_eq!(
            w & !RECLAIMED,
            i as u64,
            "{what}: writer {inc}'s journal is not 0, 1, 2, ... at {i}"
        );
    }
    let kept: Vec<u64> = words
        .iter()
        .filter(|w| *w & RECLAIMED == 0)
        .copied()
        .collect();
    let n = words.len() as u64;
    let exact = got == kept.as_slice();
    let plus_one =
        got.len() == kept.len() + 1 && got[..kept.len()] == kept[..] && got[kept.len()] == n;
    if !(exact || plus_one) {
        let i = got
            .iter()
            .zip(&kept)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(kept.len()));
        panic!(
            "{what}: writer {inc} committed {} records ({} reclaimed) but the reader got {}; \
             its record {i} is seq {:?} where the writer's journal says {:?}",
            kept.len(),
            words.len() - kept.len(),
            got.len(),
            got.get(i),
            kept.get(i),
        );
    }
    (got.len() as u64, n - kept.len() as u64)
}

fn verify(base: &Path, history: &[(Role, usize, u64)], witness: &[Entry]) -> String {
    // Witness: log order, END last, every publisher incarnation accounted.
    assert_eq!(
        witness.last().map(|e| e.inc),
        Some(END),
        "the witness ends with END"
    );
    for pair in witness.windows(2) {
        assert!(pair[0].pos < pair[1].pos, "witness out of order: {pair:?}");
    }
    let mut by_inc: HashMap<u64, Vec<u64>> = HashMap::new();
    for e in &witness[..witness.len() - 1] {
        by_inc.entry(e.inc).or_default().push(e.seq);
    }
    let (mut topic_records, mut reclaimed) = (0, 0);
    for &(_, _, inc) in history.iter().filter(|h| h.0 == Role::Publisher) {
        let got = by_inc.remove(&inc).unwrap_or_default();
        let (n, r) = check_writer(base, inc, &got, "witness");
        topic_records += n;
        reclaimed += r;
    }
    assert!(
        by_inc.is_empty(),
        "the witness got records of unknown incarnations {:?}",
        by_inc.keys().collect::<Vec<_>>()
    );

    // Durable subscribers: the witness's list exactly, but for restarts.
    let mut durable = Vec::new();
    for slot in 0..DURABLES {
        let what = format!("durable subscriber {slot}");
        let journal = read_entries(&durable_journal(base, slot));
        let restarts = journal.iter().filter(|e| e.is_marker()).count();
        let (got, dups) = dedup_restarts(&journal, &what);
        assert!(
            got == witness,
            "{what} (after {restarts} starts) lost or gained records: {}",
            first_difference(&got, witness)
        );
        durable.push(format!("{restarts} starts, {dups} redelivered"));
    }

    // Anonymous subscribers: contiguous runs of the witness's list.
    let mut anonymous = 0;
    for &(_, _, inc) in history.iter().filter(|h| h.0 == Role::Anonymous) {
        let got = read_entries(&anonymous_journal(base, inc));
        let Some(first) = got.first() else {
            continue;
        };
        let at = witness
            .binary_search_by_key(&first.pos, |e| e.pos)
            .unwrap_or_else(|_| panic!("anonymous {inc}: {first:?} is not in the log"));
        let want = &witness[at..(at + got.len()).min(witness.len())];
        assert!(
            got == want,
            "anonymous subscriber {inc} has a gap: {}",
            first_difference(&got, want)
        );
        anonymous += got.len();
    }

    // SPSC: per producer incarnation, in order, 0..m; then END.
    let journal = read_entries(&consumer_journal(base));
    let consumer_starts = journal.iter().filter(|e| e.is_marker()).count();
    let (got, consumer_dups) = dedup_restarts(&journal, "consumer");
    assert_eq!(
        got.last().map(|e| e.inc),
        Some(END),
        "the consumer ends with END"
    );
    let body = &got[..got.len() - 1];
    let mut groups: Vec<(u64, Vec<u64>)> = Vec::new();
    for e in body {
        match groups.last_mut() {
            Some((inc, seqs)) if *inc == e.inc => seqs.push(e.seq),
            _ => {
                if let Some((prev, _)) = groups.last() {
                    assert!(
                        e.inc > *prev,
                        "consumer: records of producer {} after producer {prev}",
                        e.inc
                    );
                }
                groups.push((e.inc, vec![e.seq]));
            }
        }
    }
    let mut groups: HashMap<u64, Vec<u64>> = groups.into_iter().collect();
    let mut ring_records = 0;
    for &(_, _, inc) in history.iter().filter(|h| h.0 == Role::Producer) {
        let seqs = groups.remove(&inc).unwrap_or_default();
        ring_records += check_writer(base, inc, &seqs, "consumer").0;
    }
    assert!(
        groups.is_empty(),
        "the consumer got records of unknown incarnations {:?}",
        groups.keys().collect::<Vec<_>>()
    );

    format!(
        "topic: {topic_records} records, {reclaimed} reclaimed commits; durable: {}; \
         anonymous: {anonymous} records checked; ring: {ring_records} records, consumer \
         {consumer_starts} starts, {consumer_dups} redelivered",
        durable.join(" / ")
    )
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// SIGKILLs only. `SHMBUS_CHAOS_KILLS` (default 400) kills.
#[test]
fn chaos_kills_lose_and_duplicate_nothing() {
    run("chaos_kills_lose_and_duplicate_nothing", false);
}

/// SIGKILLs and SIGSTOP/SIGCONT stalls longer than the claim timeout.
/// `SHMBUS_CHAOS_KILLS` (default 100) kills, and about half as many stalls.
///
/// Before stalled claims were fenced, this failed on every run: a
/// publisher stalled past the claim timeout overwrote, on resuming, a later
/// record that reused its slot, and its commit still returned success.
#[test]
fn chaos_with_stalls_loses_nothing() {
    run("chaos_with_stalls_loses_nothing", true);
}
