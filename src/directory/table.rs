//! The directory's create-or-open algorithm over a table of entries.
//!
//! It knows nothing of files: an [`EntryStore`] provides the entry locks
//! and creates the log of a new topic. The mapped directory runs it over a
//! segment; loom models run it over the heap (see [`heap`]).

use crate::layout::{entry, TopicEntry};
use crate::ring::broadcast::{name_word, BroadcastConfig, Policy};
use crate::sync::{fence, monotonic_ns, yield_now, AtomicU32, AtomicU64, Ordering};

/// Topic kind stored in an entry: a broadcast log.
pub(crate) const KIND_BROADCAST: u32 = 1;

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
    /// Takes entry `i`'s lock; false if someone else holds it.
    fn try_lock(&self, i: usize) -> Result<bool, Self::Error>;
    /// Releases entry `i`'s lock.
    fn unlock(&self, i: usize);
    /// Whether someone other than this store holds entry `i`'s lock.
    fn held_elsewhere(&self, i: usize) -> Result<bool, Self::Error>;
    /// Creates the log of entry `i` at `epoch`.
    fn create_log(&self, i: usize, epoch: u32, config: &BroadcastConfig)
        -> Result<(), Self::Error>;
    /// Removes a half-made log left by a creator that died.
    fn remove_log(&self, i: usize, epoch: u32);
}

/// Why the table could not give a topic.
#[derive(Debug)]
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) enum TableError<E> {
    Store(E),
    Mismatch { existing: BroadcastConfig },
    Full,
    NotFound,
    TimedOut,
    Corrupt { entry: usize, reason: String },
}

/// Segment name of the log of entry `i` at `epoch`.
pub(crate) fn topic_segment(i: usize, epoch: u32) -> String {
    format!("topic-{i}-{epoch}")
}

/// Loads an entry's state word: a Relaxed load and an Acquire fence (only
/// Relaxed loads are promised to work on the read-only mapping inspection
/// uses).
fn load_state(e: &TopicEntry) -> u64 {
    let word = e.state.load(Ordering::Relaxed);
    // SYNC POINT: with the load above, pairs with the creator's Release
    // store of READY in `create_at`: name and config are visible after it.
    fence(Ordering::Acquire);
    word
}

fn split(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

fn join(epoch: u32, state: u32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(state)
}

fn start(name: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n as u64) as usize
}

impl TopicEntry {
    /// A free entry.
    pub(crate) fn new() -> Self {
        TopicEntry {
            state: AtomicU64::new(0),
            name_len: AtomicU32::new(0),
            kind: AtomicU32::new(0),
            policy: AtomicU32::new(0),
            max_payload: AtomicU32::new(0),
            slots: AtomicU64::new(0),
            max_subscribers: AtomicU32::new(0),
            max_publishers: AtomicU32::new(0),
            creator_pid: AtomicU32::new(0),
            claim_timeout_ms: AtomicU32::new(0),
            name: core::array::from_fn(|_| AtomicU64::new(0)),
            pad: [0; 2 * crate::layout::CACHE_LINE - 112],
        }
    }

    fn name_is(&self, name: &[u8]) -> bool {
        self.name_len.load(Ordering::Relaxed) as usize == name.len()
            && (0..8).all(|w| self.name[w].load(Ordering::Relaxed) == name_word(name, w))
    }
}

/// Creates topic `name` or opens it if it exists with the same
/// configuration; `wait_ns` bounds the wait for another creator.
pub(crate) fn create_or_open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    config: &BroadcastConfig,
    wait_ns: u64,
) -> Result<(TopicRecord, bool), TableError<S::Error>> {
    let first = start(name, entries.len());
    for probe in 0..entries.len() {
        let i = (first + probe) % entries.len();
        if let Some((record, created)) =
            claim_or_match(entries, store, i, name, Some(config), wait_ns)?
        {
            if !created && record.config != *config {
                return Err(TableError::Mismatch {
                    existing: record.config,
                });
            }
            return Ok((record, created));
        }
    }
    Err(TableError::Full)
}

/// Opens existing topic `name`.
#[cfg_attr(shmbus_loom, allow(dead_code))]
pub(crate) fn open<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    name: &str,
    wait_ns: u64,
) -> Result<TopicRecord, TableError<S::Error>> {
    let first = start(name, entries.len());
    for probe in 0..entries.len() {
        let i = (first + probe) % entries.len();
        // SYNC POINT: pairs with the creator's Release store of READY.
        let (_, state) = split(load_state(&entries[i]));
        if state == entry::FREE {
            break;
        }
        if let Some((record, _)) = claim_or_match(entries, store, i, name, None, wait_ns)? {
            return Ok(record);
        }
    }
    Err(TableError::NotFound)
}

/// Every ready topic.
pub(crate) fn list(entries: &[TopicEntry]) -> Vec<TopicRecord> {
    (0..entries.len())
        .filter_map(|i| {
            // SYNC POINT: pairs with the creator's Release store of READY.
            let (epoch, state) = split(load_state(&entries[i]));
            (state == entry::READY)
                .then(|| read_entry(entries, i, epoch))
                .flatten()
        })
        .collect()
}

/// Looks at entry `i` for topic `name`: returns it if the entry holds it
/// (waiting while another process creates it), creates it there if the
/// entry is free and `create` is given, or returns `None` if the entry
/// belongs to another topic.
fn claim_or_match<S: EntryStore>(
    entries: &[TopicEntry],
    store: &S,
    i: usize,
    name: &str,
    create: Option<&BroadcastConfig>,
    wait_ns: u64,
) -> Result<Option<(TopicRecord, bool)>, TableError<S::Error>> {
    let e = &entries[i];
    let started = monotonic_ns();
    loop {
        // SYNC POINT: pairs with the creator's Release store of READY in
        // `create_at`: name and config are visible once READY is seen.
        let word = load_state(e);
        let (epoch, state) = split(word);
        match state {
            entry::READY => {
                if !e.name_is(name.as_bytes()) {
                    return Ok(None);
                }
                let record = read_entry(entries, i, epoch).ok_or_else(|| TableError::Corrupt {
                    entry: i,
                    reason: "unreadable configuration".to_owned(),
                })?;
                return Ok(Some((record, false)));
            }
            entry::FREE => {
                let Some(config) = create else {
                    return Ok(None);
                };
                if store.try_lock(i).map_err(TableError::Store)? {
                    let won = e
                        .state
                        .compare_exchange(
                            word,
                            join(epoch + 1, entry::CREATING),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok();
                    if won {
                        let result = create_at(e, store, i, epoch + 1, name, config);
                        store.unlock(i);
                        return result.map(|r| Some((r, true)));
                    }
                    store.unlock(i);
                }
            }
            entry::CREATING => {
                // A creator that died leaves its lock free: undo its claim.
                if create.is_some()
                    && !store.held_elsewhere(i).map_err(TableError::Store)?
                    && store.try_lock(i).map_err(TableError::Store)?
                {
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
                    store.unlock(i);
                    continue;
                }
            }
            _ => {
                return Err(TableError::Corrupt {
                    entry: i,
                    reason: format!("unknown state {state}"),
                })
            }
        }
        if monotonic_ns().saturating_sub(started) > wait_ns {
            return Err(TableError::TimedOut);
        }
        yield_now();
    }
}

/// Writes entry `i` for `name`, creates its log, then publishes READY.
fn create_at<S: EntryStore>(
    e: &TopicEntry,
    store: &S,
    i: usize,
    epoch: u32,
    name: &str,
    config: &BroadcastConfig,
) -> Result<TopicRecord, TableError<S::Error>> {
    if let Err(err) = store.create_log(i, epoch, config) {
        // Give the entry back (the epoch stays bumped: the file name is spent).
        e.state.store(join(epoch, entry::FREE), Ordering::Release);
        return Err(TableError::Store(err));
    }
    let name_bytes = name.as_bytes();
    for w in 0..8 {
        e.name[w].store(name_word(name_bytes, w), Ordering::Relaxed);
    }
    e.name_len.store(name_bytes.len() as u32, Ordering::Relaxed);
    e.kind.store(KIND_BROADCAST, Ordering::Relaxed);
    e.policy.store(config.policy.to_raw(), Ordering::Relaxed);
    e.max_payload.store(config.max_payload, Ordering::Relaxed);
    e.slots.store(u64::from(config.slots), Ordering::Relaxed);
    e.max_subscribers
        .store(config.max_subscribers, Ordering::Relaxed);
    e.max_publishers
        .store(config.max_publishers, Ordering::Relaxed);
    e.claim_timeout_ms.store(
        config.claim_timeout.as_millis().min(u128::from(u32::MAX)) as u32,
        Ordering::Relaxed,
    );
    e.creator_pid.store(std::process::id(), Ordering::Relaxed);
    // SYNC POINT: publishes the entry; pairs with the Acquire loads of the
    // state in `claim_or_match`, `open` and `list`.
    e.state.store(join(epoch, entry::READY), Ordering::Release);
    Ok(TopicRecord {
        name: name.to_owned(),
        config: *config,
        segment: topic_segment(i, epoch),
        entry: i,
        creator_pid: std::process::id(),
    })
}

/// Reads a READY entry (hostile bytes: anything invalid gives `None`).
fn read_entry(entries: &[TopicEntry], i: usize, epoch: u32) -> Option<TopicRecord> {
    let e = &entries[i];
    let len = e.name_len.load(Ordering::Relaxed) as usize;
    if len == 0 || len > 64 || e.kind.load(Ordering::Relaxed) != KIND_BROADCAST {
        return None;
    }
    let mut bytes = [0u8; 64];
    for w in 0..8 {
        bytes[w * 8..w * 8 + 8].copy_from_slice(&e.name[w].load(Ordering::Relaxed).to_le_bytes());
    }
    let name = std::str::from_utf8(&bytes[..len]).ok()?.to_owned();
    let config = BroadcastConfig {
        slots: u32::try_from(e.slots.load(Ordering::Relaxed)).ok()?,
        max_payload: e.max_payload.load(Ordering::Relaxed),
        policy: Policy::from_raw(e.policy.load(Ordering::Relaxed))?,
        max_subscribers: e.max_subscribers.load(Ordering::Relaxed),
        max_publishers: e.max_publishers.load(Ordering::Relaxed),
        claim_timeout: std::time::Duration::from_millis(u64::from(
            e.claim_timeout_ms.load(Ordering::Relaxed),
        )),
    };
    config.validate().ok()?;
    Some(TopicRecord {
        name,
        config,
        segment: topic_segment(i, epoch),
        entry: i,
        creator_pid: e.creator_pid.load(Ordering::Relaxed),
    })
}

/// An in-process directory table (loom models and tests): the same
/// create-or-open code over heap entries, counting the logs it creates.
pub struct HeapDirectory {
    entries: Box<[TopicEntry]>,
    store: HeapStore,
}

struct HeapStore {
    locks: crate::sync::HeapLocks,
    logs_created: AtomicU32,
}

impl EntryStore for HeapStore {
    type Error = core::convert::Infallible;
    fn try_lock(&self, i: usize) -> Result<bool, Self::Error> {
        Ok(self.locks.try_lock(i))
    }
    fn unlock(&self, i: usize) {
        self.locks.unlock(i);
    }
    fn held_elsewhere(&self, i: usize) -> Result<bool, Self::Error> {
        Ok(self.locks.is_held(i))
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
            locks: crate::sync::HeapLocks::new(entries.max(1)),
            logs_created: AtomicU32::new(0),
        },
    }
}

impl HeapDirectory {
    /// Creates or opens `name`; `Ok((record, created))`, or the reason as text.
    ///
    /// # Errors
    ///
    /// Mismatching configuration, full table.
    pub fn create_or_open(
        &self,
        name: &str,
        config: &BroadcastConfig,
    ) -> Result<(TopicRecord, bool), String> {
        create_or_open(&self.entries, &self.store, name, config, u64::MAX)
            .map_err(|e| format!("{e:?}"))
    }

    /// How many logs the table created.
    pub fn logs_created(&self) -> u32 {
        self.store.logs_created.load(Ordering::Relaxed)
    }

    /// Every ready topic.
    pub fn list(&self) -> Vec<TopicRecord> {
        list(&self.entries)
    }
}
