//! The topic directory: one segment per namespace mapping topic names to
//! broadcast logs.
//!
//! The directory is a fixed table of [`TopicEntry`](crate::layout::TopicEntry)s
//! (see [`crate::layout`]), found by hashing the name and probing linearly.
//! Creating or opening a topic is lock-free and race-safe:
//!
//! * an entry goes `FREE → CREATING → READY` by compare-and-swap on its
//!   state word (epoch in the high half), so of many processes creating the
//!   same new topic exactly one wins; the others wait (bounded) for `READY`
//!   and open what it made;
//! * the creator holds the liveness lock of (entry, epoch) while
//!   `CREATING`. If it dies half-way, the next process to find the entry,
//!   creator or opener, sees the lock free and frees the entry at once: a
//!   creator then claims it at a newer epoch and creates the topic itself,
//!   an opener reports [`DirectoryError::NotFound`] without waiting;
//! * a creator that is alive but stalled (stopped, descheduled) keeps its
//!   lock: an opener waits for it up to the create wait ([`CREATE_WAIT`]
//!   unless set with [`Directory::with_create_wait`]) and then fails with
//!   [`DirectoryError::CreateTimedOut`]; a creator waits as long and then
//!   takes the entry over. The stalled creator, when it resumes, changes
//!   nothing (every write it makes is a compare-and-swap against its own
//!   epoch) and fails with [`DirectoryError::CreateTakenOver`];
//! * the ring file of entry `i` at epoch `e` is `topic-<i>-<e>.bcast`: the
//!   topic name never reaches the file system;
//! * opening with a configuration that differs from the existing topic's is
//!   a [`DirectoryError::ConfigMismatch`] naming both;
//! * every entry is validated when read (state, epoch tags, name, kind,
//!   configuration). A corrupt entry on a name's probe chain is a
//!   [`DirectoryError::Corrupt`] naming the entry and what is wrong, never
//!   skipped: skipping it could create a second topic of the same name.
//!
//! Entries are never deleted (a namespace is removed as a whole), so a
//! probe sequence never has holes and a name is in at most one entry; a
//! hole (a free entry in front of the name's entry) is reported corrupt.

pub mod table;

pub use table::{heap, HeapDirectory, TopicRecord};

/// One entry of a directory that is not free, as inspection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryEntry {
    /// A valid topic.
    Ready(TopicRecord),
    /// A process is creating a topic in this entry (its name is not known
    /// until it is ready).
    Creating {
        /// Entry index.
        entry: usize,
        /// Epoch of the creation.
        epoch: u32,
        /// Whether the creator still holds the entry's liveness lock. A dead
        /// creator's entry is freed by the next process that opens or
        /// creates a topic whose probe chain passes it.
        creator_alive: bool,
    },
    /// The entry's bytes are inconsistent.
    Corrupt {
        /// Entry index.
        entry: usize,
        /// What is wrong.
        reason: String,
    },
}

impl DirectoryEntry {
    /// The entry's index.
    pub fn entry(&self) -> usize {
        match self {
            DirectoryEntry::Ready(r) => r.entry,
            DirectoryEntry::Creating { entry, .. } | DirectoryEntry::Corrupt { entry, .. } => {
                *entry
            }
        }
    }
}

#[cfg(not(shmbus_loom))]
pub use mapped::*;

#[cfg(not(shmbus_loom))]
mod mapped {
    use std::time::Duration;

    use super::table::{self, topic_segment, EntryStore, Paused, Slot, TableError, TopicRecord};
    use super::DirectoryEntry;
    use crate::layout::{
        lock_slot, DirectoryControl, SegmentKind, TopicEntry, DIRECTORY_CONTROL_OFFSET,
        DIRECTORY_ENTRIES_OFFSET,
    };
    use crate::ring::broadcast::BroadcastConfig;
    use crate::ring::ConfigError;
    use crate::segment::{
        validate_name, LockHandle, Namespace, OpenOptions, Segment, SegmentError,
    };

    /// Segment name of a namespace's directory (file `directory.dir`).
    pub const DIRECTORY_SEGMENT: &str = "directory";
    /// Entries in a new directory.
    pub const DEFAULT_DIRECTORY_ENTRIES: u32 = 256;
    /// Most entries a directory may have (keeps lock slots in range; see
    /// [`layout::lock_slot`](crate::layout::lock_slot)).
    pub const MAX_DIRECTORY_ENTRIES: u32 = crate::layout::MAX_DIRECTORY_ENTRIES;
    /// How long an opener waits for another live process to finish
    /// creating a topic, and a creator before it takes such a stalled
    /// creator's entry over.
    pub const CREATE_WAIT: Duration = Duration::from_secs(10);

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
        /// Another live process has been creating the topic for longer than
        /// the create wait.
        CreateTimedOut {
            /// The topic.
            topic: String,
            /// How long this call waited.
            waited: Duration,
        },
        /// This process stalled while creating the topic, past another
        /// process's create wait, and that process took the directory entry
        /// over: nothing this call made was published.
        CreateTakenOver {
            /// The topic.
            topic: String,
        },
        /// The configuration asked for is invalid.
        InvalidConfig(ConfigError),
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
            DirectoryError::CreateTimedOut { topic, waited } => write!(
                f,
                "topic \"{topic}\" is still being created by another live process after {waited:?} (try again: the next process that creates the topic takes a stalled creator over)"
            ),
            DirectoryError::CreateTakenOver { topic } => write!(
                f,
                "topic \"{topic}\" was not created: this process stalled while creating it and another process took its directory entry over (create or open the topic again)"
            ),
            DirectoryError::InvalidConfig(e) => write!(f, "invalid topic configuration: {e}"),
            DirectoryError::Corrupt { entry, reason } => write!(
                f,
                "topic directory entry {entry} is corrupt: {reason} (see it with ring-dump topics; removing the namespace starts it afresh)"
            ),
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

    /// A configuration in messages: durations as `{:?}`, so two different
    /// values never print the same.
    fn describe(c: &BroadcastConfig) -> String {
        format!(
            "{{slots {}, max payload {}, {:?}, {} subscribers, {} publishers, claim timeout {:?}}}",
            c.slots, c.max_payload, c.policy, c.max_subscribers, c.max_publishers, c.reclaim_after
        )
    }

    /// The entry locks (a private open file description) and the namespace in
    /// which new logs are created.
    struct MappedStore<'a> {
        ns: &'a Namespace,
        locks: LockHandle,
    }

    impl EntryStore for MappedStore<'_> {
        type Error = DirectoryError;
        fn try_lock(&self, i: usize, epoch: u32) -> Result<bool, DirectoryError> {
            Ok(self.locks.try_lock(lock_slot::entry(i, epoch))?)
        }
        fn unlock(&self, i: usize, epoch: u32) {
            let _ = self.locks.unlock(lock_slot::entry(i, epoch));
        }
        fn held_elsewhere(&self, i: usize, epoch: u32) -> Result<bool, DirectoryError> {
            Ok(self.locks.is_held(lock_slot::entry(i, epoch))?)
        }
        fn create_log(
            &self,
            i: usize,
            epoch: u32,
            config: &BroadcastConfig,
        ) -> Result<(), DirectoryError> {
            Ok(crate::ring::broadcast::shm::create_log(
                self.ns,
                &topic_segment(i, epoch),
                config,
            )?)
        }
        fn remove_log(&self, i: usize, epoch: u32) {
            let _ = Segment::remove(self.ns, &topic_segment(i, epoch), SegmentKind::Broadcast);
        }
    }

    /// A namespace's topic directory, mapped.
    pub struct Directory {
        segment: std::sync::Arc<Segment>,
        entries: usize,
        create_wait: Duration,
    }

    impl Directory {
        /// A shared handle on the directory's segment, which rings opened
        /// through it watch: a directory removed (or truncated) under them
        /// makes them unusable, as their own segment would.
        pub(crate) fn segment_handle(&self) -> std::sync::Arc<Segment> {
            self.segment.clone()
        }

        /// Opens the namespace's directory, creating it if it does not exist.
        ///
        /// # Errors
        ///
        /// The directory segment cannot be created, opened or validated.
        pub fn open_or_create(ns: &Namespace) -> Result<Directory, DirectoryError> {
            Self::open_or_create_with(ns, &OpenOptions::default())
        }

        /// As [`Directory::open_or_create`], opening an existing directory
        /// with `opts`.
        ///
        /// # Errors
        ///
        /// As [`Directory::open_or_create`].
        pub fn open_or_create_with(
            ns: &Namespace,
            opts: &OpenOptions,
        ) -> Result<Directory, DirectoryError> {
            let entries = DEFAULT_DIRECTORY_ENTRIES;
            let size =
                DIRECTORY_ENTRIES_OFFSET + entries as usize * core::mem::size_of::<TopicEntry>();
            loop {
                match Segment::open(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, opts) {
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

        /// Opens an existing directory read-only (for inspection), with `opts`.
        ///
        /// # Errors
        ///
        /// The directory segment is missing or invalid.
        pub fn open_read_only(
            ns: &Namespace,
            opts: &OpenOptions,
        ) -> Result<Directory, DirectoryError> {
            let segment =
                Segment::open_read_only(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, opts)?;
            Self::validated(segment)
        }

        fn validated(segment: Segment) -> Result<Directory, DirectoryError> {
            // SAFETY: a validated directory segment holds its control block at
            // DIRECTORY_CONTROL_OFFSET (its size was checked against the header).
            let entries = unsafe {
                (*(segment.base().add(DIRECTORY_CONTROL_OFFSET) as *const DirectoryControl)).entries
            };
            let needed = DIRECTORY_ENTRIES_OFFSET as u64
                + u64::from(entries) * core::mem::size_of::<TopicEntry>() as u64;
            if entries == 0 || entries > MAX_DIRECTORY_ENTRIES || segment.len() as u64 != needed {
                return Err(SegmentError::Corrupt {
                    path: segment.path().to_owned(),
                    reason: format!(
                        "{entries} entries do not fit a {}-byte directory of at most {MAX_DIRECTORY_ENTRIES} entries",
                        segment.len()
                    ),
                }
                .into());
            }
            Ok(Directory {
                segment: std::sync::Arc::new(segment),
                entries: entries as usize,
                create_wait: CREATE_WAIT,
            })
        }

        /// Sets how long [`Directory::open`] waits for another live process
        /// to finish creating a topic, and [`Directory::create_or_open`]
        /// before it takes such a stalled creator's entry over (default
        /// [`CREATE_WAIT`]).
        pub fn with_create_wait(mut self, wait: Duration) -> Directory {
            self.create_wait = wait;
            self
        }

        fn wait_ns(&self) -> u64 {
            u64::try_from(self.create_wait.as_nanos()).unwrap_or(u64::MAX)
        }

        fn entries(&self) -> &[TopicEntry] {
            // SAFETY: `validated` checked the segment holds `entries` entries at
            // DIRECTORY_ENTRIES_OFFSET (128-aligned in a page-aligned mapping).
            unsafe {
                core::slice::from_raw_parts(
                    self.segment.base().add(DIRECTORY_ENTRIES_OFFSET) as *const TopicEntry,
                    self.entries,
                )
            }
        }

        fn store<'a>(&self, ns: &'a Namespace) -> Result<MappedStore<'a>, DirectoryError> {
            Ok(MappedStore {
                ns,
                locks: self.segment.lock_handle()?,
            })
        }

        /// Creates topic `name` with `config`, or opens it if it exists with
        /// the same configuration. Returns the topic and whether this call
        /// created it.
        ///
        /// A creator that died half-way through creating a topic on the
        /// name's probe chain is taken over at once; one that is alive but
        /// has been creating for longer than the create wait is taken over
        /// then.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::ConfigMismatch`], [`DirectoryError::Full`],
        /// [`DirectoryError::Corrupt`] for a corrupt entry on the name's
        /// probe chain, [`DirectoryError::CreateTakenOver`] if this call
        /// stalled and was taken over, [`DirectoryError::CreateTimedOut`] if
        /// the entry kept changing, an invalid name or config, or a segment
        /// error creating the log.
        pub fn create_or_open(
            &self,
            ns: &Namespace,
            name: &str,
            config: &BroadcastConfig,
        ) -> Result<(TopicRecord, bool), DirectoryError> {
            self.create_or_open_paused(ns, name, config, &|_, _| {})
        }

        /// As [`Directory::create_or_open`], calling `pause(entry, epoch)`
        /// right after this call claims an entry, while it holds the entry
        /// in `CREATING` (tests stall or kill a creator there).
        ///
        /// # Errors
        ///
        /// As [`Directory::create_or_open`].
        #[doc(hidden)]
        pub fn create_or_open_paused(
            &self,
            ns: &Namespace,
            name: &str,
            config: &BroadcastConfig,
            pause: &dyn Fn(usize, u32),
        ) -> Result<(TopicRecord, bool), DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            let store = Paused {
                inner: &store,
                pause,
            };
            table::create_or_open(self.entries(), &store, name, config, self.wait_ns())
                .map_err(|e| self.error(e, name, config))
        }

        /// Opens existing topic `name`. A creator found dead on the name's
        /// probe chain is cleaned up at once (the answer is then
        /// [`DirectoryError::NotFound`] unless the topic is further on); a
        /// live one is waited for up to the create wait.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::NotFound`], [`DirectoryError::Corrupt`] for a
        /// corrupt entry on the name's probe chain, or
        /// [`DirectoryError::CreateTimedOut`] if a live process stays
        /// creating a topic there past the create wait.
        pub fn open(&self, ns: &Namespace, name: &str) -> Result<TopicRecord, DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            table::open(self.entries(), &store, name, self.wait_ns())
                .map_err(|e| self.error(e, name, &BroadcastConfig::default()))
        }

        /// Finds ready topic `name` without changing or waiting for anything
        /// (works on a read-only directory): `None` if there is none.
        ///
        /// # Errors
        ///
        /// An invalid name, or [`DirectoryError::Corrupt`] for a corrupt
        /// entry on the name's probe chain.
        pub fn lookup(&self, name: &str) -> Result<Option<TopicRecord>, DirectoryError> {
            validate_name(name)?;
            table::lookup(self.entries(), name)
                .map_err(|(entry, reason)| DirectoryError::Corrupt { entry, reason })
        }

        /// Every ready topic, in table order (corrupt entries and duplicates
        /// left out; [`Directory::scan`] shows them).
        pub fn list(&self) -> Vec<TopicRecord> {
            table::list(self.entries())
        }

        /// Every entry that is not free, in table order: ready topics, topics
        /// being created (and whether their creator is alive), and corrupt
        /// entries with the reason. Changes nothing.
        ///
        /// # Errors
        ///
        /// A liveness lock cannot be queried.
        pub fn scan(&self) -> Result<Vec<DirectoryEntry>, DirectoryError> {
            table::scan(self.entries())
                .into_iter()
                .filter_map(|(entry, slot)| match slot {
                    Slot::Ready(record) => Some(Ok(DirectoryEntry::Ready(record))),
                    Slot::Creating { epoch } => Some(
                        self.segment
                            .is_lock_held(lock_slot::entry(entry, epoch))
                            .map(|creator_alive| DirectoryEntry::Creating {
                                entry,
                                epoch,
                                creator_alive,
                            })
                            .map_err(DirectoryError::from),
                    ),
                    Slot::Corrupt(reason) => Some(Ok(DirectoryEntry::Corrupt { entry, reason })),
                    Slot::Free { .. } => None,
                })
                .collect()
        }

        fn error(
            &self,
            e: TableError<DirectoryError>,
            name: &str,
            requested: &BroadcastConfig,
        ) -> DirectoryError {
            let topic = name.to_owned();
            match e {
                TableError::Store(e) => e,
                TableError::Mismatch { existing } => DirectoryError::ConfigMismatch {
                    topic,
                    existing,
                    requested: *requested,
                },
                TableError::Full => DirectoryError::Full {
                    entries: self.entries as u32,
                },
                TableError::NotFound => DirectoryError::NotFound { topic },
                TableError::TimedOut => DirectoryError::CreateTimedOut {
                    topic,
                    waited: self.create_wait,
                },
                TableError::TakenOver => DirectoryError::CreateTakenOver { topic },
                TableError::InvalidConfig(e) => DirectoryError::InvalidConfig(e),
                TableError::Corrupt { entry, reason } => DirectoryError::Corrupt { entry, reason },
            }
        }
    }
}
