//! The directory's create-or-open algorithm over a table of entries.
//!
//! It knows nothing of files: an `EntryStore` provides the entry locks
//! and creates the log of a new topic. The mapped directory runs it over a
//! segment; loom models run it over the heap (see [`heap`]).
//!
//! Every entry is hostile input: `classify` is the one routine that reads
//! an entry and decides what it holds (free, being created, a valid topic,
//! or corrupt and why), used by create-or-open, open, listing and the
//! inspector alike.
//!
//! Probing is linear from the name's hash. A name's probe chain ends at
//! the first free entry (entries are never deleted, and nobody skips an
//! entry being created), so:
//!
//! * a corrupt entry on the chain stops the operation with
//!   `TableError::Corrupt`: it might be this very topic, and skipping it
//!   would create a second one;
//! * before a free entry is claimed, the rest of the chain is checked for a
//!   ready entry of the same name (a free entry in front of it means the
//!   table was overwritten), again a corrupt error rather than a duplicate.

use std::time::Duration;

use crate::layout::{
    entry, name_word, unpack_name_word, TopicEntry, NAME_LEN, TOPIC_KIND_BROADCAST,
    TOPIC_NAME_WIDTH,
};
use crate::ring::broadcast::{BroadcastConfig, Policy};
use crate::ring::ConfigError;
use crate::sync::{fence, monotonic_ns, yield_now, AtomicU32, AtomicU64, Ordering};

/// Longest topic name an entry holds, in bytes.
const MAX_NAME: usize = NAME_LEN;

/// A topic as the directory records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    /// The topic's name.
    pub name: String,
    /// Its configuration.
    pub config: BroadcastConfig,
    /// Segment name of its broadcast log (`topic-<entry>-<epoch>`).
    pub segment: String,
    /// Entry index.
    pub entry: usize,
    /// Pid of the process that created it (informational).
    pub creator_pid: u32,
}

/// Locks and log creation behind a table.
pub(crate) trait EntryStore {
    /// Error of the store's operations.
    type Error;
    /// Takes the lock of entry `i` at `epoch`; false if someone else holds it.
    fn try_lock(&self, i: usize, epoch: u32) -> Result<bool, Self::Error>;
    /// Releases the lock of entry `i` at `epoch`.
    fn unlock(&self, i: usize, epoch: u32);
    /// Whether someone other than this store holds the lock of entry `i`
    /// at `epoch` (the creator of that epoch is alive).
    fn held_elsewhere(&self, i: usize, epoch: u32) -> Result<bool, Self::Error>;
    /// Creates the log of entry `i` at `epoch`.
    fn create_log(&self, i: usize, epoch: u32, config: &BroadcastConfig)
        -> Result<(), Self::Error>;
    /// Removes a half-made log left by a creator that died or stalled.
    fn remove_log(&self, i: usize, epoch: u32);
    /// Called right after this store's caller claimed entry `i` at `epoch`
    /// (state `CREATING`, lock held), before anything else: a test hook.
    fn claimed(&self, _i: usize, _epoch: u32) {}
}

/// Why the table could not give a topic.
#[derive(Debug)]
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) enum TableError<E> {
    Store(E),
    Mismatch {
        existing: BroadcastConfig,
    },
    Full,
    NotFound,
    /// Another live process has held the entry in `CREATING` for longer
    /// than the wait (or the entry kept changing for twice as long).
    TimedOut,
    /// This caller stalled while creating the topic and another process
    /// took the entry over; nothing it made was published.
    TakenOver,
    InvalidConfig(ConfigError),
    Corrupt {
        entry: usize,
        reason: String,
    },
}

/// Segment name of the log of entry `i` at `epoch`.
pub(crate) fn topic_segment(i: usize, epoch: u32) -> String {
    format!("topic-{i}-{epoch}")
}

/// What one entry holds, read and validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Unused.
    Free { epoch: u32 },
    /// A process is creating a topic here (whose name is not known yet).
    Creating { epoch: u32 },
    /// A valid topic.
    Ready(TopicRecord),
    /// Nothing valid: why.
    Corrupt(String),
}

/// Loads an entry's state word: a Relaxed load and an Acquire fence (only
/// Relaxed loads are promised to work on the read-only mapping inspection
/// uses).
fn load_state(e: &TopicEntry) -> u64 {
    let word = e.state.load(Ordering::Relaxed);
    // SYNC POINT: with the load above, pairs with the creator's Release
    // compare-and-swap to READY in `create_at`: the field words are
    // visible after it.
    fence(Ordering::Acquire);
    word
}

/// (high 32 bits, low 32 bits): (epoch, state) of a state word, (epoch,
/// value) of a field word.
fn split(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

fn join(epoch: u32, low: u32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(low)
}

fn start(name: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

/// Writes `value` into field word `word` for the creation at `epoch`,
/// unless a newer epoch's creation already wrote it. Returns false in that
/// case: this creator has been superseded. A compare-and-swap, so a stalled
/// creator's late write can never land over a newer creator's.
fn store_tagged(word: &AtomicU64, epoch: u32, value: u32) -> bool {
    let new = join(epoch, value);
    let mut current = word.load(Ordering::Relaxed);
    loop {
        if split(current).0 > epoch {
            return false;
        }
        match word.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
}

impl TopicEntry {
    /// A free entry.
    pub(crate) fn new() -> Self {
        TopicEntry {
            state: AtomicU64::new(0),
            name_len: AtomicU64::new(0),
            kind: AtomicU64::new(0),
            policy: AtomicU64::new(0),
            max_payload: AtomicU64::new(0),
            slots: AtomicU64::new(0),
            max_subscribers: AtomicU64::new(0),
            max_publishers: AtomicU64::new(0),
            creator_pid: AtomicU64::new(0),
            claim_timeout_ns_lo: AtomicU64::new(0),
            claim_timeout_ns_hi: AtomicU64::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            pad: [0; 2 * crate::layout::CACHE_LINE - 216],
        }
    }
}

/// Reads and validates entry `i`: returns the state word it saw and what
/// the entry holds. Never panics, whatever the bytes.
pub(crate) fn classify(entries: &[TopicEntry], i: usize) -> (u64, Slot) {
    let Some(e) = entries.get(i) else {
        return (0, Slot::Corrupt(format!("entry {i} is outside the table")));
    };
    let mut word = 0;
    for _ in 0..4 {
        word = load_state(e);
        let (epoch, state) = split(word);
        let slot = match state {
            entry::FREE => Slot::Free { epoch },
            entry::CREATING | entry::READY if epoch == 0 => {
                return (
                    word,
                    Slot::Corrupt(format!(
                        "state {} at epoch 0, which no creator claims",
                        state_name(state)
                    )),
                )
            }
            entry::CREATING => Slot::Creating { epoch },
            entry::READY => match read_ready(e, i, epoch) {
                Ok(record) => Slot::Ready(record),
                Err(reason) => Slot::Corrupt(reason),
            },
            other => {
                return (
                    word,
                    Slot::Corrupt(format!("unknown state {other} (epoch {epoch})")),
                )
            }
        };
        // The fields of a READY entry were read after its state; READY is
        // final, so a state that moved meanwhile was overwritten: read again.
        // SYNC POINT: pairs with the creator's Release compare-and-swap to
        // READY, like the first load.
        if state != entry::READY || load_state(e) == word {
            return (word, slot);
        }
    }
    (
        word,
        Slot::Corrupt("its state word keeps changing while it is read".to_owned()),
    )
}

fn state_name(state: u32) -> &'static str {
    match state {
        entry::FREE => "FREE",
        entry::CREATING => "CREATING",
        entry::READY => "READY",
        _ => "unknown",
    }
}

/// Reads the fields of an entry whose state is `READY(epoch)`; every word
/// must carry `epoch` and every value must be valid.
fn read_ready(e: &TopicEntry, i: usize, epoch: u32) -> Result<TopicRecord, String> {
    let field = |what: &str, word: &AtomicU64| -> Result<u32, String> {
        let (tag, value) = split(word.load(Ordering::Relaxed));
        if tag == epoch {
            Ok(value)
        } else {
            Err(format!(
                "its {what} was written at epoch {tag} but the entry is ready at epoch {epoch}"
            ))
        }
    };
    let len = field("name length", &e.name_len)?;
    if len == 0 || len as usize > MAX_NAME {
        return Err(format!("name length {len} is outside 1..={MAX_NAME}"));
    }
    let len = len as usize;
    let kind = field("kind", &e.kind)?;
    if kind != TOPIC_KIND_BROADCAST {
        return Err(format!("unknown topic kind {kind}"));
    }
    let mut bytes = [0u8; MAX_NAME];
    for (w, word) in e.name.iter().enumerate() {
        let value = field("name", word)?;
        unpack_name_word(&mut bytes, w, TOPIC_NAME_WIDTH, u64::from(value));
    }
    if bytes[len..].iter().any(|&b| b != 0) {
        return Err(format!("name bytes past its length {len} are not zero"));
    }
    let name = std::str::from_utf8(&bytes[..len])
        .map_err(|_| format!("its name \"{}\" is not UTF-8", bytes[..len].escape_ascii()))?
        .to_owned();
    #[cfg(not(shmbus_loom))]
    crate::segment::validate_name(&name)
        .map_err(|err| format!("its name is not a valid topic name: {err}"))?;
    let policy = field("policy", &e.policy)?;
    let policy = Policy::from_raw(policy).ok_or_else(|| format!("unknown policy {policy}"))?;
    let ns_lo = field("claim timeout", &e.claim_timeout_ns_lo)?;
    let ns_hi = field("claim timeout", &e.claim_timeout_ns_hi)?;
    let config = BroadcastConfig {
        slots: field("slot count", &e.slots)?,
        max_payload: field("max payload", &e.max_payload)?,
        policy,
        max_subscribers: field("max subscribers", &e.max_subscribers)?,
        max_publishers: field("max publishers", &e.max_publishers)?,
        reclaim_after: Duration::from_nanos((u64::from(ns_hi) << 32) | u64::from(ns_lo)),
    };
    config
        .validate()
        .map_err(|reason| format!("its configuration is invalid: {reason}"))?;
    Ok(TopicRecord {
        name,
        config,
        segment: topic_segment(i, epoch),
        entry: i,
        creator_pid: field("creator pid", &e.creator_pid)?,
    })
}

/// The claim timeout of `config` in nanoseconds, if it can be stored.
fn claim_timeout_ns(config: &BroadcastConfig) -> Result<u64, ConfigError> {
    match u64::try_from(config.reclaim_after.as_nanos()) {
        Ok(ns) if ns > 0 => Ok(ns),
        _ => Err(ConfigError::new(
            "reclaim_after",
            config.reclaim_after,
            "positive and below 2^64 ns",
        )),
    }
}

/// Creates topic `name` or opens it if it exists with the same
/// configuration; `wait_ns` bounds the wait for another live creator, after
/// which its entry is taken over.
pub(crate) fn create_or_open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    config: &BroadcastConfig,
    wait_ns: u64,
) -> Result<(TopicRecord, bool), TableError<S::Error>> {
    config.validate().map_err(TableError::InvalidConfig)?;
    claim_timeout_ns(config).map_err(TableError::InvalidConfig)?;
    find(entries, store, name, Some(config), wait_ns)
}

/// Opens existing topic `name`. A creator found dead is cleaned up (its
/// entry freed); a live one is waited for up to `wait_ns`.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    wait_ns: u64,
) -> Result<TopicRecord, TableError<S::Error>> {
    find(entries, store, name, None, wait_ns).map(|(record, _)| record)
}

/// What one step of a probe found.
enum Probe {
    /// The topic (and whether this call created it).
    Topic(TopicRecord, bool),
    /// Another topic: go on probing.
    Other,
    /// A free entry ends the chain: the topic does not exist.
    End,
}

fn find<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    create: Option<&BroadcastConfig>,
    wait_ns: u64,
) -> Result<(TopicRecord, bool), TableError<S::Error>> {
    let n = entries.len();
    let first = start(name, n);
    for probe in 0..n {
        let i = (first + probe) % n;
        match settle(entries, store, first, probe, name, create, wait_ns)? {
            Probe::Topic(record, created) => {
                if let Some(config) = create {
                    if !created && record.config != *config {
                        return Err(TableError::Mismatch {
                            existing: record.config,
                        });
                    }
                }
                debug_assert_eq!(record.entry, i);
                return Ok((record, created));
            }
            Probe::Other => {}
            Probe::End => return Err(TableError::NotFound),
        }
    }
    Err(if create.is_some() {
        TableError::Full
    } else {
        TableError::NotFound
    })
}

/// Looks at probe `probe` of `name`'s chain (entry `first + probe`) until
/// it says something: the topic (creating it there if the entry is free and
/// `create` is given), another topic, or the end of the chain. Waits while
/// a live process creates a topic there; frees the entry of a creator that
/// died, or (when creating) of one that stalled past `wait_ns`.
fn settle<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    first: usize,
    probe: usize,
    name: &str,
    create: Option<&BroadcastConfig>,
    wait_ns: u64,
) -> Result<Probe, TableError<S::Error>> {
    let n = entries.len();
    let i = (first + probe) % n;
    let e = &entries[i];
    let started = monotonic_ns();
    // The word last seen, and since when: a creator is stalled when its
    // CREATING word stays the same for longer than the wait.
    let mut seen = None;
    let mut since = started;
    loop {
        let (word, slot) = classify(entries, i);
        if seen != Some(word) {
            seen = Some(word);
            since = monotonic_ns();
        }
        match slot {
            Slot::Corrupt(reason) => return Err(TableError::Corrupt { entry: i, reason }),
            Slot::Ready(record) if record.name == name => return Ok(Probe::Topic(record, false)),
            Slot::Ready(_) => return Ok(Probe::Other),
            Slot::Free { epoch } => {
                if let Some(j) = later_copy(entries, first, probe, name) {
                    return Err(TableError::Corrupt {
                        entry: i,
                        reason: format!(
                            "it is free, but topic \"{name}\" is at entry {j} further along its probe chain (the directory was overwritten)"
                        ),
                    });
                }
                let Some(config) = create else {
                    return Ok(Probe::End);
                };
                if let Some(epoch) = claim(e, store, i, word, epoch)? {
                    store.claimed(i, epoch);
                    let result = create_at(e, store, i, epoch, name, config);
                    store.unlock(i, epoch);
                    return result.map(|record| Probe::Topic(record, true));
                }
            }
            Slot::Creating { epoch } => {
                let alive = store.held_elsewhere(i, epoch).map_err(TableError::Store)?;
                let stalled = create.is_some() && monotonic_ns().saturating_sub(since) > wait_ns;
                if !alive || stalled {
                    // Free the entry; the creator's late writes cannot land
                    // (they are compare-and-swaps against its own epoch).
                    // SYNC POINT: AcqRel, as every state CAS. Release pairs
                    // with the Acquire half of the next claimer's CAS in
                    // `claim` (and the fence in `load_state`), so the next
                    // creation is ordered after this free; Acquire pairs with
                    // the AcqRel claim in `claim` of the creator we free.
                    // No field word relies on it: field writes are CASes
                    // against their own epoch.
                    if e.state
                        .compare_exchange(
                            word,
                            join(epoch, entry::FREE),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        store.remove_log(i, epoch);
                    }
                    continue;
                }
            }
        }
        let now = monotonic_ns();
        if now.saturating_sub(since) > wait_ns
            || now.saturating_sub(started) > wait_ns.saturating_mul(2)
        {
            return Err(TableError::TimedOut);
        }
        yield_now();
    }
}

/// The entry after probe `probe` of `name`'s chain that holds a ready
/// topic `name`, if any (there must be none past a free entry).
fn later_copy(entries: &[TopicEntry], first: usize, probe: usize, name: &str) -> Option<usize> {
    let n = entries.len();
    (probe + 1..n)
        .map(|p| (first + p) % n)
        .find(|&j| matches!(classify(entries, j).1, Slot::Ready(ref r) if r.name == name))
}

/// Claims free entry `i` (state word `word`, epoch `epoch`) for a new
/// topic: takes the lock of the next epoch and moves the state to
/// `CREATING` at it. If that epoch's lock is taken (a contender is half-way
/// through its own claim, perhaps stalled there), tries the one after.
/// Returns the epoch claimed, or `None` if the entry changed or both locks
/// are taken.
fn claim<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    word: u64,
    epoch: u32,
) -> Result<Option<u32>, TableError<S::Error>> {
    for step in 1..=2 {
        let Some(next) = epoch.checked_add(step) else {
            return Err(TableError::Corrupt {
                entry: i,
                reason: format!("its epoch {epoch} cannot advance (the directory was overwritten)"),
            });
        };
        if !store.try_lock(i, next).map_err(TableError::Store)? {
            continue;
        }
        // SYNC POINT: pairs with the compare-and-swap that freed the entry
        // (a revert in `settle` or `give_back`), so this creation is ordered
        // after the previous creator's.
        let won = e
            .state
            .compare_exchange(
                word,
                join(next, entry::CREATING),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if won {
            return Ok(Some(next));
        }
        store.unlock(i, next);
        return Ok(None);
    }
    Ok(None)
}

/// Gives a claimed entry back (`CREATING(epoch) -> FREE(epoch)`) if it is
/// still ours.
fn give_back(e: &TopicEntry, epoch: u32) {
    // SYNC POINT: pairs with the AcqRel claim in `claim` of the next creator.
    let _ = e.state.compare_exchange(
        join(epoch, entry::CREATING),
        join(epoch, entry::FREE),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// Creates the log of entry `i` at `epoch`, writes the entry's fields, then
/// publishes `READY`. Every write is conditional on the epoch, so a creator
/// whose entry was taken over meanwhile changes nothing and fails with
/// [`TableError::TakenOver`].
fn create_at<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    epoch: u32,
    name: &str,
    config: &BroadcastConfig,
) -> Result<TopicRecord, TableError<S::Error>> {
    let ns = claim_timeout_ns(config).map_err(TableError::InvalidConfig)?;
    if let Err(err) = store.create_log(i, epoch, config) {
        // The epoch stays spent: its file name may exist.
        give_back(e, epoch);
        return Err(TableError::Store(err));
    }
    let bytes = name.as_bytes();
    let pid = std::process::id();
    let fields = [
        (&e.name_len, bytes.len() as u32),
        (&e.kind, TOPIC_KIND_BROADCAST),
        (&e.policy, config.policy.to_raw()),
        (&e.max_payload, config.max_payload),
        (&e.slots, config.slots),
        (&e.max_subscribers, config.max_subscribers),
        (&e.max_publishers, config.max_publishers),
        (&e.creator_pid, pid),
        (&e.claim_timeout_ns_lo, ns as u32),
        (&e.claim_timeout_ns_hi, (ns >> 32) as u32),
    ];
    let names = e
        .name
        .iter()
        .enumerate()
        .map(|(w, word)| (word, name_word(bytes, w, TOPIC_NAME_WIDTH) as u32));
    for (word, value) in fields.into_iter().chain(names) {
        if !store_tagged(word, epoch, value) {
            return Err(lost(e, store, i, epoch));
        }
    }
    // SYNC POINT: publishes the entry; pairs with the Acquire fence in
    // `load_state` (every reader's `classify`).
    let published = e.state.compare_exchange(
        join(epoch, entry::CREATING),
        join(epoch, entry::READY),
        Ordering::Release,
        Ordering::Relaxed,
    );
    if published.is_err() {
        return Err(lost(e, store, i, epoch));
    }
    Ok(TopicRecord {
        name: name.to_owned(),
        config: *config,
        segment: topic_segment(i, epoch),
        entry: i,
        creator_pid: pid,
    })
}

/// A creation at `epoch` could not finish because the entry moved under
/// it: taken over (freed, or claimed at a newer epoch) or overwritten.
fn lost<S: EntryStore>(e: &TopicEntry, store: &S, i: usize, epoch: u32) -> TableError<S::Error> {
    store.remove_log(i, epoch);
    let word = load_state(e);
    let (now, state) = split(word);
    if now > epoch || word == join(epoch, entry::FREE) {
        return TableError::TakenOver;
    }
    give_back(e, epoch);
    TableError::Corrupt {
        entry: i,
        reason: if word == join(epoch, entry::CREATING) {
            format!("a field word carries an epoch newer than {epoch} while this process was creating the topic there")
        } else {
            format!(
                "its state became {} at epoch {now} while this process was creating the topic there at epoch {epoch}",
                state
            )
        },
    }
}

/// Every entry that is not free, in table order. A ready entry whose name
/// an entry earlier on that name's probe chain already holds is reported
/// corrupt (a duplicate).
pub(crate) fn scan(entries: &[TopicEntry]) -> Vec<(usize, Slot)> {
    let n = entries.len();
    let mut found: Vec<(usize, Slot)> = (0..n)
        .map(|i| (i, classify(entries, i).1))
        .filter(|(_, slot)| !matches!(slot, Slot::Free { .. }))
        .collect();
    let distance = |r: &TopicRecord| (r.entry + n - start(&r.name, n)) % n;
    let duplicates: Vec<(usize, String)> = found
        .iter()
        .filter_map(|(i, slot)| match slot {
            Slot::Ready(r) => found
                .iter()
                .filter_map(|(_, other)| match other {
                    Slot::Ready(o) if o.name == r.name && distance(o) < distance(r) => Some(o),
                    _ => None,
                })
                .min_by_key(|o| distance(o))
                .map(|o| {
                    (
                        *i,
                        format!(
                            "it holds topic \"{}\" again, which entry {} holds already",
                            r.name, o.entry
                        ),
                    )
                }),
            _ => None,
        })
        .collect();
    for (i, reason) in duplicates {
        if let Some(slot) = found.iter_mut().find(|(j, _)| *j == i) {
            slot.1 = Slot::Corrupt(reason);
        }
    }
    found
}

/// Every ready topic (duplicates and corrupt entries left out).
pub(crate) fn list(entries: &[TopicEntry]) -> Vec<TopicRecord> {
    scan(entries)
        .into_iter()
        .filter_map(|(_, slot)| match slot {
            Slot::Ready(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Finds ready topic `name` without changing anything (inspection): an
/// entry being created is passed over, a corrupt one on the chain is an
/// error.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn lookup(
    entries: &[TopicEntry],
    name: &str,
) -> Result<Option<TopicRecord>, (usize, String)> {
    let n = entries.len();
    let first = start(name, n);
    for probe in 0..n {
        let i = (first + probe) % n;
        match classify(entries, i).1 {
            Slot::Corrupt(reason) => return Err((i, reason)),
            Slot::Ready(record) if record.name == name => return Ok(Some(record)),
            Slot::Ready(_) | Slot::Creating { .. } => {}
            Slot::Free { .. } => {
                return match later_copy(entries, first, probe, name) {
                    Some(j) => Err((
                        i,
                        format!(
                            "it is free, but topic \"{name}\" is at entry {j} further along its probe chain (the directory was overwritten)"
                        ),
                    )),
                    None => Ok(None),
                };
            }
        }
    }
    Ok(None)
}

/// A store that calls `pause` when its caller has claimed an entry (tests
/// stall a creator there).
pub(crate) struct Paused<'a, S> {
    pub(crate) inner: &'a S,
    pub(crate) pause: &'a dyn Fn(usize, u32),
}

impl<S: EntryStore> EntryStore for Paused<'_, S> {
    type Error = S::Error;
    fn try_lock(&self, i: usize, epoch: u32) -> Result<bool, Self::Error> {
        self.inner.try_lock(i, epoch)
    }
    fn unlock(&self, i: usize, epoch: u32) {
        self.inner.unlock(i, epoch)
    }
    fn held_elsewhere(&self, i: usize, epoch: u32) -> Result<bool, Self::Error> {
        self.inner.held_elsewhere(i, epoch)
    }
    fn create_log(
        &self,
        i: usize,
        epoch: u32,
        config: &BroadcastConfig,
    ) -> Result<(), Self::Error> {
        self.inner.create_log(i, epoch, config)
    }
    fn remove_log(&self, i: usize, epoch: u32) {
        self.inner.remove_log(i, epoch)
    }
    fn claimed(&self, i: usize, epoch: u32) {
        (self.pause)(i, epoch)
    }
}

/// An in-process directory table (loom models and tests): the same
/// create-or-open code over heap entries, counting the logs it creates.
pub struct HeapDirectory {
    entries: Box<[TopicEntry]>,
    store: HeapStore,
}

/// Heap stand-in for the per-(entry, epoch) liveness locks.
struct HeapStore {
    held: std::sync::Mutex<Vec<(usize, u32)>>,
    logs_created: AtomicU32,
}

impl HeapStore {
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<(usize, u32)>> {
        // A panic while holding this plain list cannot leave it half-changed.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EntryStore for HeapStore {
    type Error = core::convert::Infallible;
    fn try_lock(&self, i: usize, epoch: u32) -> Result<bool, Self::Error> {
        let mut held = self.held();
        if held.contains(&(i, epoch)) {
            return Ok(false);
        }
        held.push((i, epoch));
        Ok(true)
    }
    fn unlock(&self, i: usize, epoch: u32) {
        self.held().retain(|&k| k != (i, epoch));
    }
    fn held_elsewhere(&self, i: usize, epoch: u32) -> Result<bool, Self::Error> {
        Ok(self.held().contains(&(i, epoch)))
    }
    fn create_log(
        &self,
        _i: usize,
        _epoch: u32,
        _config: &BroadcastConfig,
    ) -> Result<(), Self::Error> {
        self.logs_created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn remove_log(&self, _i: usize, _epoch: u32) {}
}

/// A heap directory of `entries` entries.
pub fn heap(entries: usize) -> HeapDirectory {
    HeapDirectory {
        entries: (0..entries.max(1)).map(|_| TopicEntry::new()).collect(),
        store: HeapStore {
            held: std::sync::Mutex::new(Vec::new()),
            logs_created: AtomicU32::new(0),
        },
    }
}

impl HeapDirectory {
    /// Creates or opens `name`; `Ok((record, created))`, or the reason as text.
    ///
    /// # Errors
    ///
    /// Mismatching configuration, full table, corrupt entry.
    pub fn create_or_open(
        &self,
        name: &str,
        config: &BroadcastConfig,
    ) -> Result<(TopicRecord, bool), String> {
        create_or_open(&self.entries, &self.store, name, config, u64::MAX)
            .map_err(|e| format!("{e:?}"))
    }

    /// As [`HeapDirectory::create_or_open`], waiting at most `wait` for
    /// another creator, and calling `pause(entry, epoch)` right after this
    /// call claims an entry (tests stall a creator there).
    ///
    /// # Errors
    ///
    /// As [`HeapDirectory::create_or_open`], and `TakenOver` when the pause
    /// outlasted another caller's wait.
    #[doc(hidden)]
    pub fn create_or_open_paused(
        &self,
        name: &str,
        config: &BroadcastConfig,
        wait: Duration,
        pause: &dyn Fn(usize, u32),
    ) -> Result<(TopicRecord, bool), String> {
        let store = Paused {
            inner: &self.store,
            pause,
        };
        let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        create_or_open(&self.entries, &store, name, config, wait_ns).map_err(|e| format!("{e:?}"))
    }

    /// Opens existing `name`, waiting at most `wait` for a creator.
    ///
    /// # Errors
    ///
    /// Not found, timed out, corrupt entry.
    pub fn open(&self, name: &str, wait: Duration) -> Result<TopicRecord, String> {
        let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        open(&self.entries, &self.store, name, wait_ns).map_err(|e| format!("{e:?}"))
    }

    /// How many logs the table created.
    pub fn logs_created(&self) -> u32 {
        self.store.logs_created.load(Ordering::Relaxed)
    }

    /// Every ready topic.
    pub fn list(&self) -> Vec<TopicRecord> {
        list(&self.entries)
    }

    /// Entry `i`, for tests that write hostile values into it.
    #[doc(hidden)]
    pub fn entry(&self, i: usize) -> Option<&TopicEntry> {
        self.entries.get(i)
    }
}

#[cfg(all(test, not(shmbus_loom)))]
mod tests {
    use super::*;

    fn config(slots: u32) -> BroadcastConfig {
        BroadcastConfig {
            slots,
            ..BroadcastConfig::default()
        }
    }

    /// A creator paused after its claim is taken over by a second creator
    /// once the wait passes; when it resumes, none of its writes land.
    #[test]
    fn a_stalled_creator_is_taken_over_and_fails_when_it_resumes() {
        let dir = std::sync::Arc::new(heap(8));
        let (claimed_tx, claimed_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let stalled = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                dir.create_or_open_paused("alpha", &config(32), Duration::MAX, &|i, epoch| {
                    let _ = claimed_tx.send((i, epoch));
                    let _ = go_rx.recv();
                })
            })
        };
        let (entry, epoch) = claimed_rx.recv().expect("claimed");
        assert_eq!(epoch, 1);
        // An opener waits for the live creator, then gives up.
        let opened = dir.open("alpha", Duration::from_millis(20));
        assert!(opened.is_err_and(|e| e.contains("TimedOut")));
        let (record, created) = dir
            .create_or_open_paused("alpha", &config(16), Duration::from_millis(20), &|_, _| {})
            .expect("take over");
        assert!(created);
        assert_eq!(record.entry, entry);
        assert_eq!(record.segment, topic_segment(entry, 2));
        go_tx.send(()).expect("resume");
        let late = stalled.join().expect("stalled creator");
        assert!(late.is_err_and(|e| e.contains("TakenOver")));
        assert_eq!(dir.list(), vec![record]);
    }

    #[test]
    fn field_words_of_a_newer_epoch_are_never_overwritten() {
        let word = AtomicU64::new(join(3, 7));
        assert!(!store_tagged(&word, 2, 9));
        assert_eq!(word.load(Ordering::Relaxed), join(3, 7));
        assert!(store_tagged(&word, 4, 9));
        assert_eq!(word.load(Ordering::Relaxed), join(4, 9));
    }
}
