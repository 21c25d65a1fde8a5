//! The topic directory: one segment per namespace mapping topic names to
//! broadcast logs.
//!
//! The directory is a fixed table of [`TopicEntry`]s (see
//! [`crate::layout`]), found by hashing the name and probing linearly.
//! Creating or opening a topic is lock-free and race-safe:
//!
//! * an entry goes `FREE → CREATING → READY` by compare-and-swap on its
//!   state word (epoch in the high half), so of many processes creating the
//!   same new topic exactly one wins; the others wait (bounded) for `READY`
//!   and open what it made;
//! * the creator holds the entry's liveness lock while `CREATING`: if it
//!   dies half-way, the next process to find the entry sees the lock free,
//!   bumps the epoch and creates the topic itself;
//! * the ring file of entry `i` at epoch `e` is `topic-<i>-<e>.bcast`: the
//!   topic name never reaches the file system;
//! * opening with a configuration that differs from the existing topic's is
//!   a [`DirectoryError::ConfigMismatch`] naming both.
//!
//! Entries are never deleted (a namespace is removed as a whole), so a
//! probe sequence never has holes and a name is in at most one entry.

use std::time::{Duration, Instant};

use crate::layout::{
    entry, DirectoryControl, SegmentKind, TopicEntry, DIRECTORY_CONTROL_OFFSET,
    DIRECTORY_ENTRIES_OFFSET,
};
use crate::ring::broadcast::{name_word, BroadcastConfig, Policy};
use crate::segment::{validate_name, LockHandle, Namespace, OpenOptions, Segment, SegmentError};
use crate::sync::Ordering;

/// Segment name of a namespace's directory (file `directory.dir`).
pub const DIRECTORY_SEGMENT: &str = "directory";
/// Entries in a new directory.
pub const DEFAULT_DIRECTORY_ENTRIES: u32 = 256;
/// How long an opener waits for another process to finish creating a topic.
pub const CREATE_WAIT: Duration = Duration::from_secs(10);

/// Topic kind stored in an entry: a broadcast log.
const KIND_BROADCAST: u32 = 1;

/// Liveness-lock slot of directory entry `i`.
const fn entry_lock(i: usize) -> u64 {
    10_000 + i as u64
}

/// Why a topic could not be created or opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A segment could not be created, opened or validated.
    Segment(SegmentError),
    /// The topic exists with another configuration.
    ConfigMismatch {
        /// The topic.
        topic: String,
        /// Its configuration.
        existing: BroadcastConfig,
        /// What the caller asked for.
        requested: BroadcastConfig,
    },
    /// Every entry is taken.
    Full {
        /// Entries in the directory.
        entries: u32,
    },
    /// No topic of that name.
    NotFound {
        /// The topic.
        topic: String,
    },
    /// Another process has been creating the topic for too long.
    CreateTimedOut {
        /// The topic.
        topic: String,
    },
    /// The configuration asked for is invalid.
    InvalidConfig {
        /// Why.
        reason: String,
    },
    /// An entry's content is inconsistent.
    Corrupt {
        /// Which entry.
        entry: usize,
        /// What is wrong.
        reason: String,
    },
}

impl From<SegmentError> for DirectoryError {
    fn from(e: SegmentError) -> Self {
        DirectoryError::Segment(e)
    }
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::Segment(e) => e.fmt(f),
            DirectoryError::ConfigMismatch {
                topic,
                existing,
                requested,
            } => write!(
                f,
                "topic \"{topic}\" exists with {} but was opened with {} (open it with the same configuration, or use another name)",
                describe(existing),
                describe(requested)
            ),
            DirectoryError::Full { entries } => {
                write!(f, "the topic directory is full ({entries} topics)")
            }
            DirectoryError::NotFound { topic } => write!(f, "no topic \"{topic}\" in this namespace"),
            DirectoryError::CreateTimedOut { topic } => write!(
                f,
                "topic \"{topic}\" is still being created by another live process after {CREATE_WAIT:?}"
            ),
            DirectoryError::InvalidConfig { reason } => write!(f, "invalid topic configuration: {reason}"),
            DirectoryError::Corrupt { entry, reason } => {
                write!(f, "topic directory entry {entry} is corrupt: {reason}")
            }
        }
    }
}

impl std::error::Error for DirectoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DirectoryError::Segment(e) => Some(e),
            _ => None,
        }
    }
}

fn describe(c: &BroadcastConfig) -> String {
    format!(
        "{{slots {}, max payload {}, {:?}, {} subscribers, {} publishers, claim timeout {} ms}}",
        c.slots,
        c.max_payload,
        c.policy,
        c.max_subscribers,
        c.max_publishers,
        c.claim_timeout.as_millis()
    )
}

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

/// A namespace's topic directory, mapped.
pub struct Directory {
    segment: Segment,
    entries: usize,
}

impl Directory {
    /// Opens the namespace's directory, creating it if it does not exist.
    ///
    /// # Errors
    ///
    /// The directory segment cannot be created, opened or validated.
    pub fn open_or_create(ns: &Namespace) -> Result<Directory, DirectoryError> {
        let entries = DEFAULT_DIRECTORY_ENTRIES;
        let size = DIRECTORY_ENTRIES_OFFSET + entries as usize * core::mem::size_of::<TopicEntry>();
        loop {
            match Segment::open(
                ns,
                DIRECTORY_SEGMENT,
                SegmentKind::Directory,
                &OpenOptions::default(),
            ) {
                Ok(segment) => return Self::validated(segment),
                Err(SegmentError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let init = |after_header: *mut u8, _len: usize| {
                // SAFETY: the control block lies right after the header of a
                // fresh zeroed mapping nobody else can use yet; zero is a
                // valid FREE entry, so only the count needs writing.
                unsafe { (*(after_header as *mut DirectoryControl)).entries = entries };
            };
            match Segment::create(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, size, init) {
                Ok(segment) => return Self::validated(segment),
                // Lost the race to create it: open what the winner made.
                Err(SegmentError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Opens an existing directory read-only (for inspection).
    ///
    /// # Errors
    ///
    /// The directory segment is missing or invalid.
    pub fn open_read_only(ns: &Namespace) -> Result<Directory, DirectoryError> {
        let segment = Segment::open_read_only(
            ns,
            DIRECTORY_SEGMENT,
            SegmentKind::Directory,
            &OpenOptions::default(),
        )?;
        Self::validated(segment)
    }

    fn validated(segment: Segment) -> Result<Directory, DirectoryError> {
        // SAFETY: a validated directory segment holds its control block at
        // DIRECTORY_CONTROL_OFFSET (the segment is at least that long: its
        // size was checked against the header on open).
        let entries = unsafe {
            (*(segment.base().add(DIRECTORY_CONTROL_OFFSET) as *const DirectoryControl)).entries
        };
        let needed = DIRECTORY_ENTRIES_OFFSET as u64
            + u64::from(entries) * core::mem::size_of::<TopicEntry>() as u64;
        if entries == 0 || segment.len() as u64 != needed {
            return Err(SegmentError::Corrupt {
                path: segment.path().to_owned(),
                reason: format!(
                    "{entries} entries do not fit a {}-byte directory",
                    segment.len()
                ),
            }
            .into());
        }
        Ok(Directory {
            segment,
            entries: entries as usize,
        })
    }

    fn entry(&self, i: usize) -> &TopicEntry {
        debug_assert!(i < self.entries);
        // SAFETY: `i < entries`, and `validated` checked the segment holds
        // that many entries after DIRECTORY_ENTRIES_OFFSET.
        unsafe {
            &*(self
                .segment
                .base()
                .add(DIRECTORY_ENTRIES_OFFSET + i * core::mem::size_of::<TopicEntry>())
                as *const TopicEntry)
        }
    }

    fn start(&self, name: &str) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % self.entries as u64) as usize
    }

    /// Creates topic `name` with `config`, or opens it if it exists with the
    /// same configuration. Returns the topic and whether this call created it.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::ConfigMismatch`], [`DirectoryError::Full`],
    /// [`DirectoryError::CreateTimedOut`], an invalid name or config, or a
    /// segment error creating the log.
    pub fn create_or_open(
        &self,
        ns: &Namespace,
        name: &str,
        config: &BroadcastConfig,
    ) -> Result<(TopicRecord, bool), DirectoryError> {
        validate_name(name)?;
        config
            .validate()
            .map_err(|reason| DirectoryError::InvalidConfig { reason })?;
        if config.claim_timeout.as_millis() > u128::from(u32::MAX)
            || config.claim_timeout.as_millis() == 0
        {
            return Err(DirectoryError::InvalidConfig {
                reason: "claim timeout must be 1 ms to 49 days".to_owned(),
            });
        }
        let locks = self.segment.lock_handle()?;
        let first = self.start(name);
        for probe in 0..self.entries {
            let i = (first + probe) % self.entries;
            match self.claim_or_match(ns, &locks, i, name, Some(config))? {
                Some(found) => {
                    let (record, created) = found;
                    if !created && record.config != *config {
                        return Err(DirectoryError::ConfigMismatch {
                            topic: name.to_owned(),
                            existing: record.config,
                            requested: *config,
                        });
                    }
                    return Ok((record, created));
                }
                None => continue,
            }
        }
        Err(DirectoryError::Full {
            entries: self.entries as u32,
        })
    }

    /// Opens existing topic `name`.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], or the topic stays being created past
    /// [`CREATE_WAIT`].
    pub fn open(&self, ns: &Namespace, name: &str) -> Result<TopicRecord, DirectoryError> {
        validate_name(name)?;
        let locks = self.segment.lock_handle()?;
        let first = self.start(name);
        for probe in 0..self.entries {
            let i = (first + probe) % self.entries;
            let (_, state) = split(self.entry(i).state.load(Ordering::Acquire));
            if state == entry::FREE {
                break;
            }
            if let Some((record, _)) = self.claim_or_match(ns, &locks, i, name, None)? {
                return Ok(record);
            }
        }
        Err(DirectoryError::NotFound {
            topic: name.to_owned(),
        })
    }

    /// Every ready topic.
    pub fn list(&self) -> Vec<TopicRecord> {
        (0..self.entries)
            .filter_map(|i| {
                let (epoch, state) = split(self.entry(i).state.load(Ordering::Acquire));
                (state == entry::READY)
                    .then(|| self.read_entry(i, epoch))
                    .flatten()
            })
            .collect()
    }

    /// Looks at entry `i` for topic `name`: returns it if the entry holds
    /// it (waiting while another process creates it), creates it there if
    /// the entry is free and `create` is given, or returns `None` if the
    /// entry belongs to another topic.
    fn claim_or_match(
        &self,
        ns: &Namespace,
        locks: &LockHandle,
        i: usize,
        name: &str,
        create: Option<&BroadcastConfig>,
    ) -> Result<Option<(TopicRecord, bool)>, DirectoryError> {
        let e = self.entry(i);
        let started = Instant::now();
        loop {
            // SYNC POINT: pairs with the creator's Release store of READY in
            // `create_at`: name and config are visible once READY is seen.
            let word = e.state.load(Ordering::Acquire);
            let (epoch, state) = split(word);
            match state {
                entry::READY => {
                    if !self.name_is(i, name) {
                        return Ok(None);
                    }
                    let record =
                        self.read_entry(i, epoch)
                            .ok_or_else(|| DirectoryError::Corrupt {
                                entry: i,
                                reason: "unreadable configuration".to_owned(),
                            })?;
                    return Ok(Some((record, false)));
                }
                entry::FREE => {
                    let Some(config) = create else {
                        return Ok(None);
                    };
                    if locks.try_lock(entry_lock(i))? {
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
                            let result = self.create_at(ns, i, epoch + 1, name, config);
                            let _ = locks.unlock(entry_lock(i));
                            return result.map(|r| Some((r, true)));
                        }
                        let _ = locks.unlock(entry_lock(i));
                    }
                }
                entry::CREATING => {
                    // A creator that died leaves its lock free: take over.
                    if create.is_some()
                        && !locks.is_held(entry_lock(i))?
                        && locks.try_lock(entry_lock(i))?
                    {
                        let still = e.state.load(Ordering::Acquire) == word;
                        if still
                            && e.state
                                .compare_exchange(
                                    word,
                                    join(epoch, entry::FREE),
                                    Ordering::AcqRel,
                                    Ordering::Relaxed,
                                )
                                .is_ok()
                        {
                            let stale = topic_segment(i, epoch);
                            let _ = Segment::remove(ns, &stale, SegmentKind::Broadcast);
                        }
                        let _ = locks.unlock(entry_lock(i));
                        continue;
                    }
                }
                _ => {
                    return Err(DirectoryError::Corrupt {
                        entry: i,
                        reason: format!("unknown state {state}"),
                    })
                }
            }
            if started.elapsed() > CREATE_WAIT {
                return Err(DirectoryError::CreateTimedOut {
                    topic: name.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Writes entry `i` for `name`, creates its log, then publishes READY.
    fn create_at(
        &self,
        ns: &Namespace,
        i: usize,
        epoch: u32,
        name: &str,
        config: &BroadcastConfig,
    ) -> Result<TopicRecord, DirectoryError> {
        let e = self.entry(i);
        let segment = topic_segment(i, epoch);
        let created = crate::bus::create_log(ns, &segment, config);
        if let Err(err) = created {
            // Give the entry back (epoch stays bumped: the file name is spent).
            e.state.store(join(epoch, entry::FREE), Ordering::Release);
            return Err(err);
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
        e.claim_timeout_ms
            .store(config.claim_timeout.as_millis() as u32, Ordering::Relaxed);
        e.creator_pid.store(std::process::id(), Ordering::Relaxed);
        // SYNC POINT: publishes the entry; pairs with the Acquire loads of the
        // state in `claim_or_match` and `list`.
        e.state.store(join(epoch, entry::READY), Ordering::Release);
        Ok(TopicRecord {
            name: name.to_owned(),
            config: *config,
            segment,
            entry: i,
            creator_pid: std::process::id(),
        })
    }

    fn name_is(&self, i: usize, name: &str) -> bool {
        let e = self.entry(i);
        let n = name.as_bytes();
        e.name_len.load(Ordering::Relaxed) as usize == n.len()
            && (0..8).all(|w| e.name[w].load(Ordering::Relaxed) == name_word(n, w))
    }

    /// Reads a READY entry (hostile bytes: anything invalid gives `None`).
    fn read_entry(&self, i: usize, epoch: u32) -> Option<TopicRecord> {
        let e = self.entry(i);
        let len = e.name_len.load(Ordering::Relaxed) as usize;
        if len == 0 || len > 64 || e.kind.load(Ordering::Relaxed) != KIND_BROADCAST {
            return None;
        }
        let mut bytes = [0u8; 64];
        for w in 0..8 {
            bytes[w * 8..w * 8 + 8]
                .copy_from_slice(&e.name[w].load(Ordering::Relaxed).to_le_bytes());
        }
        let name = std::str::from_utf8(&bytes[..len]).ok()?.to_owned();
        let config = BroadcastConfig {
            slots: u32::try_from(e.slots.load(Ordering::Relaxed)).ok()?,
            max_payload: e.max_payload.load(Ordering::Relaxed),
            policy: Policy::from_raw(e.policy.load(Ordering::Relaxed))?,
            max_subscribers: e.max_subscribers.load(Ordering::Relaxed),
            max_publishers: e.max_publishers.load(Ordering::Relaxed),
            claim_timeout: Duration::from_millis(u64::from(
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
}

/// Segment name of the log of entry `i` at `epoch`.
fn topic_segment(i: usize, epoch: u32) -> String {
    format!("topic-{i}-{epoch}")
}

fn split(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

fn join(epoch: u32, state: u32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(state)
}
