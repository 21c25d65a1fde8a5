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

pub mod table;

pub use table::{heap, HeapDirectory, TopicRecord};

#[cfg(not(shmbus_loom))]
pub use mapped::*;

#[cfg(not(shmbus_loom))]
mod mapped {
    use std::time::Duration;

    use super::table::{self, topic_segment, EntryStore, TableError, TopicRecord};
    use crate::layout::{
        DirectoryControl, SegmentKind, TopicEntry, DIRECTORY_CONTROL_OFFSET,
        DIRECTORY_ENTRIES_OFFSET,
    };
    use crate::ring::broadcast::BroadcastConfig;
    use crate::segment::{
        validate_name, LockHandle, Namespace, OpenOptions, Segment, SegmentError,
    };

    /// Segment name of a namespace's directory (file `directory.dir`).
    pub const DIRECTORY_SEGMENT: &str = "directory";
    /// Entries in a new directory.
    pub const DEFAULT_DIRECTORY_ENTRIES: u32 = 256;
    /// How long an opener waits for another process to finish creating a topic.
    pub const CREATE_WAIT: Duration = Duration::from_secs(10);

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

    /// The entry locks (a private open file description) and the namespace in
    /// which new logs are created.
    struct MappedStore<'a> {
        ns: &'a Namespace,
        locks: LockHandle,
    }

    impl EntryStore for MappedStore<'_> {
        type Error = DirectoryError;
        fn try_lock(&self, i: usize) -> Result<bool, DirectoryError> {
            Ok(self.locks.try_lock(entry_lock(i))?)
        }
        fn unlock(&self, i: usize) {
            let _ = self.locks.unlock(entry_lock(i));
        }
        fn held_elsewhere(&self, i: usize) -> Result<bool, DirectoryError> {
            Ok(self.locks.is_held(entry_lock(i))?)
        }
        fn create_log(
            &self,
            i: usize,
            epoch: u32,
            config: &BroadcastConfig,
        ) -> Result<(), DirectoryError> {
            crate::bus::create_log(self.ns, &topic_segment(i, epoch), config)
        }
        fn remove_log(&self, i: usize, epoch: u32) {
            let _ = Segment::remove(self.ns, &topic_segment(i, epoch), SegmentKind::Broadcast);
        }
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
            let size =
                DIRECTORY_ENTRIES_OFFSET + entries as usize * core::mem::size_of::<TopicEntry>();
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
            // DIRECTORY_CONTROL_OFFSET (its size was checked against the header).
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
            let ms = config.claim_timeout.as_millis();
            if ms == 0 || ms > u128::from(u32::MAX) {
                return Err(DirectoryError::InvalidConfig {
                    reason: "claim timeout must be 1 ms to 49 days".to_owned(),
                });
            }
            let store = self.store(ns)?;
            table::create_or_open(
                self.entries(),
                &store,
                name,
                config,
                CREATE_WAIT.as_nanos() as u64,
            )
            .map_err(|e| self.error(e, name, config))
        }

        /// Opens existing topic `name`.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::NotFound`], or the topic stays being created past
        /// [`CREATE_WAIT`].
        pub fn open(&self, ns: &Namespace, name: &str) -> Result<TopicRecord, DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            table::open(self.entries(), &store, name, CREATE_WAIT.as_nanos() as u64)
                .map_err(|e| self.error(e, name, &BroadcastConfig::default()))
        }

        /// Every ready topic.
        pub fn list(&self) -> Vec<TopicRecord> {
            table::list(self.entries())
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
                TableError::TimedOut => DirectoryError::CreateTimedOut { topic },
                TableError::Corrupt { entry, reason } => DirectoryError::Corrupt { entry, reason },
            }
        }
    }
}
