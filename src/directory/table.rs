//! The directory's create-or-open algorithm over a table of entries.
//!
//! It knows nothing of files: an `EntryStore` provides the entry locks
//! and creates (and removes) the ring file of an entry. The mapped
//! directory runs it over a segment; loom models run it over the heap (see
//! [`heap`]).
//!
//! Every entry is hostile input: `classify` is the one routine that reads
//! an entry and decides what it holds (free, being created, a valid ring,
//! a removed ring's name, or corrupt and why), used by create-or-open,
//! open, remove, listing and the inspector alike.
//!
//! Probing is linear from the name's hash. A name's probe chain ends at
//! the first free entry (an entry that held a ring never becomes free
//! again, and nobody skips an entry being created whose name is not known
//! yet), so:
//!
//! * a name is in at most one entry, for good: a removed ring's entry keeps
//!   its name, and only a creator of that name claims it again;
//! * a corrupt entry on the chain stops the operation with
//!   `TableError::Corrupt`: it might be this very ring, and skipping it
//!   would create a second one;
//! * before a free entry is claimed, the rest of the chain is checked for an
//!   entry holding the same name (a free entry in front of it means the
//!   table was overwritten), again a corrupt error rather than a duplicate.

use std::time::Duration;

use super::kind::{ConfigWords, RingConfig, RingKind, CONFIG_WORDS, CONFIG_WORD_NAMES};
use crate::layout::{entry, name_word, unpack_name_word, TopicEntry, NAME_LEN, TOPIC_NAME_WIDTH};
use crate::ring::ConfigError;
use crate::sync::{
    fence, monotonic_ns, yield_now, AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering,
};

/// Longest name an entry holds, in bytes.
const MAX_NAME: usize = NAME_LEN;

/// A ring as the directory records it: a broadcast topic or an SPSC
/// channel, by its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingRecord {
    /// The ring's name.
    pub name: String,
    /// Its kind and configuration.
    pub config: RingConfig,
    /// Segment name of its ring file (`topic-<entry>-<epoch>.<name>`,
    /// `spsc-…`, `queue-…`: see [`RingKind::segment_name`]), by which every
    /// handle finds it.
    pub segment: String,
    /// Entry index.
    pub entry: usize,
    /// Epoch of the creation that made it: a ring removed and created
    /// again under the same name has a newer one (and another file).
    pub epoch: u32,
    /// Pid of the process that created it (informational).
    pub creator_pid: u32,
}

impl RingRecord {
    /// The ring's kind.
    pub fn kind(&self) -> RingKind {
        self.config.kind()
    }
}

/// Locks and ring files behind a table.
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
    /// Creates the ring file of ring `name` in entry `i` at `epoch` for
    /// `config`.
    fn create_ring(
        &self,
        i: usize,
        epoch: u32,
        name: &str,
        config: &RingConfig,
    ) -> Result<(), Self::Error>;
    /// Removes the ring file of entry `i` at `epoch`, of whatever kind and
    /// name, if there is one, so that handles attached to it learn it is
    /// gone: a removed ring's, or a half-made one left by a creator that
    /// died or stalled (whose entry may not hold its name yet).
    fn remove_ring(&self, i: usize, epoch: u32);
    /// Called right after this store's caller claimed entry `i` at `epoch`
    /// (state `CREATING` or `RECREATING`, lock held), before anything
    /// else: a test hook.
    fn claimed(&self, _i: usize, _epoch: u32) {}
}

/// Why the table could not give a ring: what the mapped directory turns
/// into a [`DirectoryError`](super::DirectoryError), and what a
/// [`HeapDirectory`] returns as it is.
#[derive(Debug, PartialEq)]
pub enum TableError<E> {
    /// The entry store (ring files and liveness locks) failed.
    Store(E),
    /// The name is taken by a ring of another kind or configuration.
    Mismatch {
        /// The configuration the name has.
        existing: RingConfig,
    },
    /// Every entry is taken.
    Full,
    /// No ring of that name.
    NotFound,
    /// Another live process has held the entry in `CREATING` (or
    /// `RECREATING`) for longer than the wait (or the entry kept changing
    /// for twice as long).
    TimedOut,
    /// This caller stalled while creating the ring and another process
    /// took the entry over; nothing it made was published.
    TakenOver,
    /// The configuration asked for is refused.
    InvalidConfig(ConfigError),
    /// An entry holds a value no build writes.
    Corrupt {
        /// The entry.
        entry: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// What one entry holds, read and validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Unused.
    Free { epoch: u32 },
    /// A process is creating a ring here (whose name is not known yet).
    Creating { epoch: u32 },
    /// A valid ring.
    Ready(RingRecord),
    /// The ring `name` was removed; only a creator of `name` claims the
    /// entry again.
    Removed { epoch: u32, name: String },
    /// A process is creating the removed ring `name` again here.
    Recreating { epoch: u32, name: String },
    /// Nothing valid: why.
    Corrupt(String),
}

impl Slot {
    /// The name the entry holds, whatever state its ring is in.
    fn name(&self) -> Option<&str> {
        match self {
            Slot::Ready(r) => Some(&r.name),
            Slot::Removed { name, .. } | Slot::Recreating { name, .. } => Some(name),
            Slot::Free { .. } | Slot::Creating { .. } | Slot::Corrupt(_) => None,
        }
    }
}

/// How an entry is claimed for a creation: a free entry gets a name, a
/// removed one keeps its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Creation {
    /// `FREE -> CREATING`, given back as `FREE`; writes the name.
    New,
    /// `REMOVED -> RECREATING`, given back as `REMOVED`; the name words
    /// stay as they are.
    Again,
}

impl Creation {
    /// The state the entry is in while it is being created.
    fn creating(self) -> u32 {
        match self {
            Creation::New => entry::CREATING,
            Creation::Again => entry::RECREATING,
        }
    }

    /// The state a failed, dead or stalled creation leaves it in.
    fn given_back(self) -> u32 {
        match self {
            Creation::New => entry::FREE,
            Creation::Again => entry::REMOVED,
        }
    }
}

/// Loads an entry's state word: a Relaxed load and an Acquire fence (only
/// Relaxed loads are promised to work on the read-only mapping inspection
/// uses).
fn load_state(e: &TopicEntry) -> u64 {
    let word = e.state.load(Ordering::Relaxed);
    // SYNC POINT: with the load above, pairs with the creator's Release
    // compare-and-swap to READY in `create_at` (the field words are visible
    // after it) and with the AcqRel compare-and-swaps that remove a ring
    // (`remove`) or give an entry back.
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
            reclaim_after_ns_lo: AtomicU64::new(0),
            reclaim_after_ns_hi: AtomicU64::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            pad: [0; 2 * crate::layout::CACHE_LINE - 216],
        }
    }

    /// The configuration words, in [`ConfigWords`] order.
    fn config_words(&self) -> [&AtomicU64; CONFIG_WORDS] {
        [
            &self.policy,
            &self.max_payload,
            &self.slots,
            &self.max_subscribers,
            &self.max_publishers,
            &self.reclaim_after_ns_lo,
            &self.reclaim_after_ns_hi,
        ]
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
            entry::CREATING | entry::READY | entry::REMOVED | entry::RECREATING if epoch == 0 => {
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
            entry::REMOVED => match read_name(e, epoch) {
                Ok(name) => Slot::Removed { epoch, name },
                Err(reason) => Slot::Corrupt(reason),
            },
            entry::RECREATING => match read_name(e, epoch) {
                Ok(name) => Slot::Recreating { epoch, name },
                Err(reason) => Slot::Corrupt(reason),
            },
            other => {
                return (
                    word,
                    Slot::Corrupt(format!("unknown state {other} (epoch {epoch})")),
                )
            }
        };
        // Words were read after the state; a state that moved meanwhile
        // (a ring removed, a creation finished, or the entry overwritten)
        // may not go with them: read again.
        // SYNC POINT: pairs with the same writes as the first load.
        if matches!(state, entry::FREE | entry::CREATING) || load_state(e) == word {
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
        entry::REMOVED => "REMOVED",
        entry::RECREATING => "RECREATING",
        _ => "unknown",
    }
}

/// Reads the name of an entry at `epoch` that has held a ring: its length
/// and name words all carry the one epoch `n <= epoch` of the entry's
/// first creation.
fn read_name(e: &TopicEntry, epoch: u32) -> Result<String, String> {
    let (tag, len) = split(e.name_len.load(Ordering::Relaxed));
    if tag == 0 || tag > epoch {
        return Err(format!(
            "its name was written at epoch {tag} but the entry is at epoch {epoch}"
        ));
    }
    if len == 0 || len as usize > MAX_NAME {
        return Err(format!("name length {len} is outside 1..={MAX_NAME}"));
    }
    let len = len as usize;
    let mut bytes = [0u8; MAX_NAME];
    for (w, word) in e.name.iter().enumerate() {
        let (word_tag, value) = split(word.load(Ordering::Relaxed));
        if word_tag != tag {
            return Err(format!(
                "its name words were written at epochs {tag} and {word_tag}"
            ));
        }
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
        .map_err(|err| format!("its name is not a valid ring name: {err}"))?;
    Ok(name)
}

/// Reads the fields of an entry whose state is `READY(epoch)`; every word
/// but the name's must carry `epoch`, and every value must be valid.
fn read_ready(e: &TopicEntry, i: usize, epoch: u32) -> Result<RingRecord, String> {
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
    let name = read_name(e, epoch)?;
    let kind = field("kind", &e.kind)?;
    let mut words: ConfigWords = [0; CONFIG_WORDS];
    for ((value, word), what) in words
        .iter_mut()
        .zip(e.config_words())
        .zip(CONFIG_WORD_NAMES)
    {
        *value = field(what, word)?;
    }
    let config = RingConfig::decode(kind, words)?;
    Ok(RingRecord {
        segment: config.kind().segment_name(i, epoch, &name),
        name,
        config,
        entry: i,
        epoch,
        creator_pid: field("creator pid", &e.creator_pid)?,
    })
}

/// Creates ring `name` or opens it if it exists with the same kind and
/// configuration; `wait_ns` bounds the wait for another live creator,
/// after which its entry is taken over.
pub(crate) fn create_or_open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    config: &RingConfig,
    wait_ns: u64,
) -> Result<(RingRecord, bool), TableError<S::Error>> {
    config.encode().map_err(TableError::InvalidConfig)?;
    find(entries, store, name, Some(config), wait_ns)
}

/// Opens existing ring `name`. A creator found dead is cleaned up (its
/// entry given back); a live one is waited for up to `wait_ns`.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    wait_ns: u64,
) -> Result<RingRecord, TableError<S::Error>> {
    find(entries, store, name, None, wait_ns).map(|(record, _)| record)
}

/// Removes ring `name` of `kind` (only its creation at `epoch`, if given):
/// its entry becomes `REMOVED`, keeping the name, then its ring file is
/// removed. Returns the record of the ring removed.
///
/// Removing changes no other entry and waits for nothing: a ring being
/// created is not ready, so it is not found.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn remove<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    kind: RingKind,
    epoch: Option<u32>,
) -> Result<RingRecord, TableError<S::Error>> {
    let record = lookup(entries, name)
        .map_err(|(entry, reason)| TableError::Corrupt { entry, reason })?
        .ok_or(TableError::NotFound)?;
    if record.kind() != kind {
        return Err(TableError::Mismatch {
            existing: record.config,
        });
    }
    if epoch.is_some_and(|e| e != record.epoch) {
        return Err(TableError::NotFound);
    }
    let e = &entries[record.entry];
    // SYNC POINT: AcqRel, as every state CAS. Release pairs with the
    // Acquire half of the CAS in `claim` of the next creator of the name
    // (and the fence in `load_state`); Acquire pairs with the creator's
    // Release publish in `create_at`. Only one remover wins.
    let removed = e.state.compare_exchange(
        join(record.epoch, entry::READY),
        join(record.epoch, entry::REMOVED),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
    if removed.is_err() {
        // Removed meanwhile by another process (or overwritten).
        return Err(TableError::NotFound);
    }
    store.remove_ring(record.entry, record.epoch);
    Ok(record)
}

/// What one step of a probe found.
enum Probe {
    /// The ring (and whether this call created it).
    Found(RingRecord, bool),
    /// Another name's entry: go on probing.
    Other,
    /// The chain ends here without a ready ring of that name: a free entry,
    /// or the name's own entry, removed.
    End,
}

fn find<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    create: Option<&RingConfig>,
    wait_ns: u64,
) -> Result<(RingRecord, bool), TableError<S::Error>> {
    let n = entries.len();
    let first = start(name, n);
    for probe in 0..n {
        let i = (first + probe) % n;
        match settle(entries, store, first, probe, name, create, wait_ns)? {
            Probe::Found(record, created) => {
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
/// it says something: the ring (creating it there if the entry is free, or
/// is `name`'s and removed, and `create` is given), another name's entry,
/// or the end of the chain. Waits while a live process creates a ring
/// there; gives back the entry of a creator that died, or (when creating)
/// of one that stalled past `wait_ns`.
fn settle<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    first: usize,
    probe: usize,
    name: &str,
    create: Option<&RingConfig>,
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
    // The removed epoch whose ring file this call has removed already.
    let mut cleaned = None;
    loop {
        let (word, slot) = classify(entries, i);
        if seen != Some(word) {
            seen = Some(word);
            since = monotonic_ns();
        }
        // Entries of other names are passed; an entry being created whose
        // name is not known yet is waited for below.
        if slot.name().is_some_and(|held| held != name) {
            return Ok(Probe::Other);
        }
        // The creation this call waits for, if any.
        let creator = match slot {
            Slot::Corrupt(reason) => return Err(TableError::Corrupt { entry: i, reason }),
            Slot::Ready(record) => return Ok(Probe::Found(record, false)),
            Slot::Free { epoch } => {
                if let Some(j) = later_copy(entries, first, probe, name) {
                    return Err(TableError::Corrupt {
                        entry: i,
                        reason: format!(
                            "it is free, but \"{name}\" is at entry {j} further along its probe chain (the directory was overwritten)"
                        ),
                    });
                }
                let Some(config) = create else {
                    return Ok(Probe::End);
                };
                if let Some(next) = claim(e, store, i, word, epoch, Creation::New)? {
                    return created(e, store, i, next, name, config, Creation::New);
                }
                None
            }
            Slot::Removed { epoch, .. } => {
                let Some(config) = create else {
                    return Ok(Probe::End);
                };
                // The removed ring's file, if its remover did not get to
                // it: epoch `epoch` of this entry is over for good.
                if cleaned != Some(epoch) {
                    store.remove_ring(i, epoch);
                    cleaned = Some(epoch);
                }
                if let Some(next) = claim(e, store, i, word, epoch, Creation::Again)? {
                    return created(e, store, i, next, name, config, Creation::Again);
                }
                None
            }
            Slot::Creating { epoch } => Some((epoch, Creation::New)),
            Slot::Recreating { epoch, .. } => Some((epoch, Creation::Again)),
        };
        // One reading of the clock decides both a take-over and a time-out,
        // so a caller that waited out a live creator takes it over rather
        // than timing out between two readings.
        let now = monotonic_ns();
        if let Some((creator_epoch, how)) = creator {
            let alive = store
                .held_elsewhere(i, creator_epoch)
                .map_err(TableError::Store)?;
            let stalled = create.is_some() && now.saturating_sub(since) > wait_ns;
            if !alive || stalled {
                // Give the entry back; the creator's late writes cannot land
                // (they are compare-and-swaps against its own epoch).
                // SYNC POINT: AcqRel, as every state CAS. Release pairs with
                // the Acquire half of the next claimer's CAS in `claim` (and
                // the fence in `load_state`), so the next creation is ordered
                // after this; Acquire pairs with the AcqRel claim in `claim`
                // of the creator given back. No field word relies on it:
                // field writes are CASes against their own epoch.
                if e.state
                    .compare_exchange(
                        word,
                        join(creator_epoch, how.given_back()),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    store.remove_ring(i, creator_epoch);
                }
                continue;
            }
        }
        if now.saturating_sub(since) > wait_ns
            || now.saturating_sub(started) > wait_ns.saturating_mul(2)
        {
            return Err(TableError::TimedOut);
        }
        yield_now();
    }
}

/// Runs the creation this caller claimed (entry `i` at `epoch`, lock held)
/// and releases the lock.
fn created<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    epoch: u32,
    name: &str,
    config: &RingConfig,
    how: Creation,
) -> Result<Probe, TableError<S::Error>> {
    store.claimed(i, epoch);
    let result = create_at(e, store, i, epoch, name, config, how);
    store.unlock(i, epoch);
    result.map(|record| Probe::Found(record, true))
}

/// The entry after probe `probe` of `name`'s chain that holds `name` (a
/// ready, removed or re-created ring), if any: there must be none past a
/// free entry.
fn later_copy(entries: &[TopicEntry], first: usize, probe: usize, name: &str) -> Option<usize> {
    let n = entries.len();
    (probe + 1..n)
        .map(|p| (first + p) % n)
        .find(|&j| classify(entries, j).1.name() == Some(name))
}

/// Claims entry `i` (state word `word`, epoch `epoch`: free, or removed
/// for `Creation::Again`) for a creation: takes the lock of the next
/// epoch and moves the state to `CREATING` (`RECREATING`) at it. If that
/// epoch's lock is taken (a contender is half-way through its own claim,
/// perhaps stalled there), tries the one after. Returns the epoch claimed,
/// or `None` if the entry changed or both locks are taken.
fn claim<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    word: u64,
    epoch: u32,
    how: Creation,
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
        // SYNC POINT: pairs with the compare-and-swap that freed or removed
        // the entry (a give-back in `settle` or `give_back`, or `remove`),
        // so this creation is ordered after the previous one.
        let won = e
            .state
            .compare_exchange(
                word,
                join(next, how.creating()),
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

/// Gives a claimed entry back (`CREATING(epoch) -> FREE(epoch)`,
/// `RECREATING(epoch) -> REMOVED(epoch)`) if it is still ours.
fn give_back(e: &TopicEntry, epoch: u32, how: Creation) {
    // SYNC POINT: pairs with the AcqRel claim in `claim` of the next creator.
    let _ = e.state.compare_exchange(
        join(epoch, how.creating()),
        join(epoch, how.given_back()),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// Creates the ring file of entry `i` at `epoch`, writes the entry's fields
/// (the name too for a new entry), then publishes `READY`. Every write is
/// conditional on the epoch, so a creator whose entry was taken over
/// meanwhile changes nothing and fails with [`TableError::TakenOver`].
fn create_at<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    epoch: u32,
    name: &str,
    config: &RingConfig,
    how: Creation,
) -> Result<RingRecord, TableError<S::Error>> {
    let (kind, words) = config.encode().map_err(TableError::InvalidConfig)?;
    if let Err(err) = store.create_ring(i, epoch, name, config) {
        // The epoch stays spent: its file name may exist.
        give_back(e, epoch, how);
        return Err(TableError::Store(err));
    }
    let bytes = name.as_bytes();
    let pid = std::process::id();
    let settings = [(&e.kind, kind), (&e.creator_pid, pid)]
        .into_iter()
        .chain(e.config_words().into_iter().zip(words));
    let name_len = [(&e.name_len, bytes.len() as u32)];
    let names = e
        .name
        .iter()
        .enumerate()
        .map(|(w, word)| (word, name_word(bytes, w, TOPIC_NAME_WIDTH) as u32));
    let naming = (how == Creation::New)
        .then(|| name_len.into_iter().chain(names))
        .into_iter()
        .flatten();
    for (word, value) in naming.chain(settings) {
        if !store_tagged(word, epoch, value) {
            return Err(lost(e, store, i, epoch, how));
        }
    }
    // SYNC POINT: publishes the entry; pairs with the Acquire fence in
    // `load_state` (every reader's `classify`).
    let published = e.state.compare_exchange(
        join(epoch, how.creating()),
        join(epoch, entry::READY),
        Ordering::Release,
        Ordering::Relaxed,
    );
    if published.is_err() {
        return Err(lost(e, store, i, epoch, how));
    }
    Ok(RingRecord {
        name: name.to_owned(),
        config: *config,
        segment: config.kind().segment_name(i, epoch, name),
        entry: i,
        epoch,
        creator_pid: pid,
    })
}

/// A creation at `epoch` could not finish because the entry moved under
/// it: taken over (given back, or claimed at a newer epoch) or overwritten.
fn lost<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    epoch: u32,
    how: Creation,
) -> TableError<S::Error> {
    store.remove_ring(i, epoch);
    let word = load_state(e);
    let (now, state) = split(word);
    if now > epoch || word == join(epoch, how.given_back()) {
        return TableError::TakenOver;
    }
    give_back(e, epoch, how);
    TableError::Corrupt {
        entry: i,
        reason: if word == join(epoch, how.creating()) {
            format!("a field word carries an epoch newer than {epoch} while this process was creating the ring there")
        } else {
            format!(
                "its state became {} at epoch {now} while this process was creating the ring there at epoch {epoch}",
                state
            )
        },
    }
}

/// Every entry that is not free, in table order. An entry holding a name
/// that an entry earlier on that name's probe chain holds already is
/// reported corrupt (a duplicate).
pub(crate) fn scan(entries: &[TopicEntry]) -> Vec<(usize, Slot)> {
    let n = entries.len();
    let mut found: Vec<(usize, Slot)> = (0..n)
        .map(|i| (i, classify(entries, i).1))
        .filter(|(_, slot)| !matches!(slot, Slot::Free { .. }))
        .collect();
    let distance = |i: usize, name: &str| (i + n - start(name, n)) % n;
    let duplicates: Vec<(usize, String)> = found
        .iter()
        .filter_map(|(i, slot)| {
            let name = slot.name()?;
            found
                .iter()
                .filter(|(j, other)| {
                    other.name() == Some(name) && distance(*j, name) < distance(*i, name)
                })
                .min_by_key(|(j, _)| distance(*j, name))
                .map(|(j, _)| {
                    (
                        *i,
                        format!("it holds \"{name}\" again, which entry {j} holds already"),
                    )
                })
        })
        .collect();
    for (i, reason) in duplicates {
        if let Some(slot) = found.iter_mut().find(|(j, _)| *j == i) {
            slot.1 = Slot::Corrupt(reason);
        }
    }
    found
}

/// Every ready ring (duplicates and corrupt entries left out).
pub(crate) fn list(entries: &[TopicEntry]) -> Vec<RingRecord> {
    scan(entries)
        .into_iter()
        .filter_map(|(_, slot)| match slot {
            Slot::Ready(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Finds ready ring `name` without changing anything (inspection): an
/// entry being created is passed over, a corrupt one on the chain is an
/// error, `name`'s entry removed or being created again means none.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn lookup(
    entries: &[TopicEntry],
    name: &str,
) -> Result<Option<RingRecord>, (usize, String)> {
    let n = entries.len();
    let first = start(name, n);
    for probe in 0..n {
        let i = (first + probe) % n;
        let slot = classify(entries, i).1;
        if slot.name().is_some_and(|held| held != name) {
            continue;
        }
        match slot {
            Slot::Corrupt(reason) => return Err((i, reason)),
            Slot::Ready(record) => return Ok(Some(record)),
            Slot::Removed { .. } | Slot::Recreating { .. } => return Ok(None),
            Slot::Creating { .. } => {}
            Slot::Free { .. } => {
                return match later_copy(entries, first, probe, name) {
                    Some(j) => Err((
                        i,
                        format!(
                            "it is free, but \"{name}\" is at entry {j} further along its probe chain (the directory was overwritten)"
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
    fn create_ring(
        &self,
        i: usize,
        epoch: u32,
        name: &str,
        config: &RingConfig,
    ) -> Result<(), Self::Error> {
        self.inner.create_ring(i, epoch, name, config)
    }
    fn remove_ring(&self, i: usize, epoch: u32) {
        self.inner.remove_ring(i, epoch)
    }
    fn claimed(&self, i: usize, epoch: u32) {
        (self.pause)(i, epoch)
    }
}

/// Why a [`HeapDirectory`] call failed (its store cannot fail).
pub type HeapTableError = TableError<core::convert::Infallible>;

/// An in-process directory table (loom models and tests): the same
/// create-or-open code over heap entries, counting the rings it creates
/// and removes.
pub struct HeapDirectory {
    entries: Box<[TopicEntry]>,
    store: HeapStore,
}

/// Heap stand-in for the per-(entry, epoch) liveness locks.
struct HeapStore {
    held: Mutex<Vec<(usize, u32)>>,
    rings_created: AtomicU32,
}

impl HeapStore {
    fn held(&self) -> MutexGuard<'_, Vec<(usize, u32)>> {
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
    fn create_ring(
        &self,
        _i: usize,
        _epoch: u32,
        _name: &str,
        _config: &RingConfig,
    ) -> Result<(), Self::Error> {
        self.rings_created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn remove_ring(&self, _i: usize, _epoch: u32) {}
}

/// A heap directory of `entries` entries.
pub fn heap(entries: usize) -> HeapDirectory {
    HeapDirectory {
        entries: (0..entries.max(1)).map(|_| TopicEntry::new()).collect(),
        store: HeapStore {
            held: Mutex::new(Vec::new()),
            rings_created: AtomicU32::new(0),
        },
    }
}

impl HeapDirectory {
    /// Creates or opens `name`; `Ok((record, created))`.
    ///
    /// # Errors
    ///
    /// Mismatching kind or configuration, full table, corrupt entry.
    pub fn create_or_open(
        &self,
        name: &str,
        config: &RingConfig,
    ) -> Result<(RingRecord, bool), HeapTableError> {
        create_or_open(&self.entries, &self.store, name, config, u64::MAX)
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
        config: &RingConfig,
        wait: Duration,
        pause: &dyn Fn(usize, u32),
    ) -> Result<(RingRecord, bool), HeapTableError> {
        let store = Paused {
            inner: &self.store,
            pause,
        };
        let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        create_or_open(&self.entries, &store, name, config, wait_ns)
    }

    /// Opens existing `name`, waiting at most `wait` for a creator.
    ///
    /// # Errors
    ///
    /// Not found, timed out, corrupt entry.
    pub fn open(&self, name: &str, wait: Duration) -> Result<RingRecord, HeapTableError> {
        let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        open(&self.entries, &self.store, name, wait_ns)
    }

    /// Removes ring `name` of `kind`.
    ///
    /// # Errors
    ///
    /// Not found, another kind, corrupt entry.
    pub fn remove(&self, name: &str, kind: RingKind) -> Result<RingRecord, HeapTableError> {
        remove(&self.entries, &self.store, name, kind, None)
    }

    /// How many ring files the table created.
    pub fn rings_created(&self) -> u32 {
        self.store.rings_created.load(Ordering::Relaxed)
    }

    /// Every ready ring.
    pub fn list(&self) -> Vec<RingRecord> {
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
    use crate::ring::broadcast::BroadcastConfig;
    use crate::ring::spsc::SpscConfig;

    fn config(slots: u32) -> RingConfig {
        RingConfig::Broadcast(BroadcastConfig {
            slots,
            ..BroadcastConfig::default()
        })
    }

    fn spsc(capacity: usize) -> RingConfig {
        RingConfig::Spsc(SpscConfig::with_capacity(capacity))
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
        assert_eq!(opened, Err(TableError::TimedOut));
        let (record, created) = dir
            .create_or_open_paused("alpha", &config(16), Duration::from_millis(20), &|_, _| {})
            .expect("take over");
        assert!(created);
        assert_eq!(record.entry, entry);
        assert_eq!(record.segment, format!("topic-{entry}-2.alpha"));
        go_tx.send(()).expect("resume");
        let late = stalled.join().expect("stalled creator");
        assert_eq!(late, Err(TableError::TakenOver));
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

    #[test]
    fn a_name_is_one_kind_at_a_time() {
        let dir = heap(8);
        let (channel, created) = dir.create_or_open("orders", &spsc(4096)).expect("create");
        assert!(created);
        assert_eq!(channel.segment, format!("spsc-{}-1.orders", channel.entry));
        let err = dir.create_or_open("orders", &config(16)).expect_err("kind");
        assert!(matches!(err, TableError::Mismatch { .. }), "{err:?}");
        let err = dir
            .create_or_open("orders", &spsc(8192))
            .expect_err("config");
        assert!(matches!(err, TableError::Mismatch { .. }), "{err:?}");
        assert_eq!(
            dir.create_or_open("orders", &spsc(4096)),
            Ok((channel, false))
        );
        assert_eq!(dir.rings_created(), 1);
    }

    /// A removed ring keeps its entry and name; creating the name again
    /// claims that entry at a newer epoch (a new file), of any kind, while
    /// other names pass it by.
    #[test]
    fn a_removed_ring_is_made_afresh_in_its_own_entry() {
        let dir = heap(8);
        let (first, _) = dir.create_or_open("orders", &spsc(4096)).expect("create");
        let err = dir.remove("orders", RingKind::Broadcast).expect_err("kind");
        assert!(matches!(err, TableError::Mismatch { .. }), "{err:?}");
        assert_eq!(dir.remove("orders", RingKind::Spsc), Ok(first.clone()));
        assert_eq!(
            dir.remove("orders", RingKind::Spsc),
            Err(TableError::NotFound)
        );
        assert_eq!(
            dir.open("orders", Duration::ZERO),
            Err(TableError::NotFound)
        );
        assert!(dir.list().is_empty());
        let (_, slot) = classify(&dir.entries, first.entry);
        assert_eq!(
            slot,
            Slot::Removed {
                epoch: first.epoch,
                name: "orders".to_owned()
            }
        );

        let (again, created) = dir.create_or_open("orders", &config(16)).expect("again");
        assert!(created);
        assert_eq!(again.entry, first.entry);
        assert_eq!(again.epoch, first.epoch + 1);
        assert_eq!(again.segment, format!("topic-{}-2.orders", first.entry));
        assert_eq!(dir.open("orders", Duration::ZERO), Ok(again.clone()));
        assert_eq!(dir.rings_created(), 2);
        assert_eq!(dir.list(), vec![again]);
    }

    /// A creation of a removed name that is given back (its creator
    /// died) leaves the entry removed, name intact, never free.
    #[test]
    fn a_failed_creation_again_leaves_the_entry_removed() {
        let dir = heap(8);
        let (first, _) = dir.create_or_open("orders", &spsc(4096)).expect("create");
        dir.remove("orders", RingKind::Spsc).expect("remove");
        // Claim it again, then let the claim go as a dead creator's would.
        let e = &dir.entries[first.entry];
        let word = e.state.load(Ordering::Relaxed);
        assert_eq!(
            claim(
                e,
                &dir.store,
                first.entry,
                word,
                first.epoch,
                Creation::Again
            )
            .ok(),
            Some(Some(first.epoch + 1))
        );
        dir.store.unlock(first.entry, first.epoch + 1);
        let (record, created) = dir.create_or_open("orders", &spsc(4096)).expect("create");
        assert!(created);
        assert_eq!((record.entry, record.epoch), (first.entry, first.epoch + 2));
    }
}
