//! The directory: one segment per namespace mapping names to rings of
//! every kind (broadcast topics, SPSC channels and work queues), each with
//! its typed configuration ([`RingConfig`]).
//!
//! The directory is a fixed table of [`TopicEntry`](crate::layout::TopicEntry)s
//! (see [`crate::layout`]), found by hashing the name and probing linearly.
//! A name is one ring of one kind: creating or opening it as another kind
//! is a [`DirectoryError::KindMismatch`], with another configuration a
//! [`DirectoryError::ConfigMismatch`], each naming what the caller asked
//! for and what the directory holds. Creating or opening a ring is
//! lock-free and race-safe, whatever its kind:
//!
//! * an entry goes `FREE → CREATING → READY` by compare-and-swap on its
//!   state word (epoch in the high half), so of many processes creating the
//!   same new ring exactly one wins; the others wait (bounded) for `READY`
//!   and open what it made;
//! * the creator holds the liveness lock of (entry, epoch) while
//!   `CREATING`. If it dies half-way, the next process to find the entry,
//!   creator or opener, sees the lock free and gives the entry back at
//!   once: a creator then claims it at a newer epoch and creates the ring
//!   itself, an opener reports [`DirectoryError::NotFound`] without
//!   waiting;
//! * a creator that is alive but stalled (stopped, descheduled) keeps its
//!   lock: an opener waits for it up to the create wait ([`CREATE_WAIT`]
//!   unless set with [`Directory::with_create_wait`]) and then fails with
//!   [`DirectoryError::CreateTimedOut`]; a creator waits as long and then
//!   takes the entry over. The stalled creator, when it resumes, changes
//!   nothing (every write it makes is a compare-and-swap against its own
//!   epoch) and fails with [`DirectoryError::CreateTakenOver`];
//! * the ring file of ring `name` in entry `i` at epoch `e` is named after
//!   them ([`RingKind::segment_name`]: `topic-<i>-<e>.<name>.bcast`,
//!   `spsc-<i>-<e>.<name>.spsc`, `queue-<i>-<e>.<name>.queue`): entry and
//!   epoch make it unique, the name (validated before anything is made:
//!   never a path) tells an operator which ring it is. Handles find the
//!   file through the directory's record of the ring
//!   ([`RingRecord::segment`]), never by a name of their own making;
//! * removing a ring ([`Directory::remove`]) moves its entry `READY →
//!   REMOVED`, keeping the name, then removes its file. The next creator of
//!   that name claims the entry again (`REMOVED → RECREATING → READY`, the
//!   same protocol at a newer epoch), so the new ring gets a new file; if
//!   it dies or stalls the entry goes back to `REMOVED`. A removed name
//!   keeps its entry for good: names are for long-lived rings, and a
//!   namespace that keeps making new names and removing them fills its
//!   directory ([`DirectoryError::Full`] after
//!   [`DEFAULT_DIRECTORY_ENTRIES`] names); reuse names, or remove the
//!   namespace as a whole;
//! * every entry is validated when read (state, epoch tags, name, kind,
//!   configuration). A corrupt entry on a name's probe chain is a
//!   [`DirectoryError::Corrupt`] naming the entry and what is wrong, never
//!   skipped: skipping it could create a second ring of the same name.
//!
//! An entry that held a ring never becomes free again (a namespace is
//! removed as a whole), so a probe sequence never has holes and a name is
//! in at most one entry; a hole (a free entry in front of the name's entry)
//! is reported corrupt.
//!
//! Adding a kind of ring means a [`RingKind`] and a [`RingConfig`] variant
//! with their encoding (`kind.rs`), and its ring file's creation and removal
//! in this module's store.

mod kind;
#[cfg(not(shmbus_loom))]
mod namespace;
pub mod table;

pub use kind::{RingConfig, RingKind, MAX_RING_SEGMENT_NAME};
#[cfg(not(shmbus_loom))]
pub use namespace::{describe_lock, HeldSegment};
pub use table::{heap, HeapDirectory, HeapTableError, RingRecord, TableError};

/// One entry of a directory that is not free, as inspection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryEntry {
    /// A valid ring.
    Ready(RingRecord),
    /// A process is creating a ring in this entry.
    Creating {
        /// Entry index.
        entry: usize,
        /// Epoch of the creation.
        epoch: u32,
        /// Whether the creator still holds the entry's liveness lock. A dead
        /// creator's entry is given back by the next process that opens or
        /// creates a ring whose probe chain passes it.
        creator_alive: bool,
        /// The name, when a removed ring is being created again (the name
        /// of a new one is not known until it is ready).
        name: Option<String>,
    },
    /// The ring `name` was removed; creating `name` again makes a new one
    /// in this entry.
    Removed {
        /// Entry index.
        entry: usize,
        /// Epoch of the ring removed, or of the last creation given back.
        epoch: u32,
        /// The name the entry keeps.
        name: String,
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
            DirectoryEntry::Creating { entry, .. }
            | DirectoryEntry::Removed { entry, .. }
            | DirectoryEntry::Corrupt { entry, .. } => *entry,
        }
    }

    /// The name the entry holds, if it is known.
    pub fn name(&self) -> Option<&str> {
        match self {
            DirectoryEntry::Ready(r) => Some(&r.name),
            DirectoryEntry::Removed { name, .. } => Some(name),
            DirectoryEntry::Creating { name, .. } => name.as_deref(),
            DirectoryEntry::Corrupt { .. } => None,
        }
    }
}

#[cfg(not(shmbus_loom))]
pub use mapped::*;

#[cfg(not(shmbus_loom))]
mod mapped {
    use std::time::Duration;

    use super::table::{self, EntryStore, Paused, Slot, TableError};
    use super::{DirectoryEntry, HeldSegment, RingConfig, RingKind, RingRecord};
    use crate::layout::{
        lock_slot, DirectoryControl, SegmentFault, SegmentKind, TopicEntry,
        DIRECTORY_CONTROL_OFFSET, DIRECTORY_ENTRIES_OFFSET,
    };
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
    /// creating a ring, and a creator before it takes such a stalled
    /// creator's entry over.
    pub const CREATE_WAIT: Duration = Duration::from_secs(10);

    /// Why a ring could not be created, opened or removed.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum DirectoryError {
        /// A segment could not be created, opened or validated.
        Segment(SegmentError),
        /// The name is a ring of the kind asked for, with another
        /// configuration.
        ConfigMismatch {
            /// The ring's name.
            name: String,
            /// Its configuration.
            existing: RingConfig,
            /// What the caller asked for.
            requested: RingConfig,
        },
        /// The name is a ring of another kind than the one asked for.
        KindMismatch {
            /// The ring's name.
            name: String,
            /// Its kind and configuration.
            existing: RingConfig,
            /// The kind the caller asked for.
            requested: RingKind,
            /// The configuration the caller asked for, when it gave one
            /// (boxed: it keeps the error small).
            requested_config: Option<Box<RingConfig>>,
        },
        /// Every entry is taken.
        Full {
            /// Entries in the directory.
            entries: u32,
        },
        /// No ring of that name (of that kind, when one was asked for).
        NotFound {
            /// The name.
            name: String,
            /// The kind asked for, if any.
            kind: Option<RingKind>,
        },
        /// Another live process has been creating the ring for longer than
        /// the create wait.
        CreateTimedOut {
            /// The name.
            name: String,
            /// How long this call waited.
            waited: Duration,
        },
        /// This process stalled while creating the ring, past another
        /// process's create wait, and that process took the directory entry
        /// over: nothing this call made was published.
        CreateTakenOver {
            /// The name.
            name: String,
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
        /// The namespace was not removed: live processes hold some of its
        /// segments (nothing was removed).
        NamespaceInUse {
            /// The namespace.
            namespace: String,
            /// Every segment held, and by whom.
            held: Vec<HeldSegment>,
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
                    name,
                    existing,
                    requested,
                } => write!(
                    f,
                    "{} \"{name}\" exists with {existing} but was opened with {requested} (open it with the same configuration, or use another name)",
                    existing.kind().noun(),
                ),
                DirectoryError::KindMismatch {
                    name,
                    existing,
                    requested,
                    requested_config,
                } => {
                    write!(
                        f,
                        "\"{name}\" is {} with {existing} but was opened as {}",
                        existing.kind().a_noun(),
                        requested.a_noun()
                    )?;
                    if let Some(config) = requested_config {
                        write!(f, " with {config}")?;
                    }
                    write!(
                        f,
                        " (open it as {}, or use another name)",
                        existing.kind().a_noun()
                    )
                }
                DirectoryError::Full { entries } => {
                    write!(f, "the directory is full ({entries} entries)")
                }
                DirectoryError::NotFound { name, kind } => match kind {
                    Some(kind) => write!(f, "no {} \"{name}\" in this namespace", kind.noun()),
                    None => write!(f, "nothing named \"{name}\" in this namespace"),
                },
                DirectoryError::CreateTimedOut { name, waited } => write!(
                    f,
                    "\"{name}\" is still being created by another live process after {waited:?} (try again: the next process that creates it takes a stalled creator over)"
                ),
                DirectoryError::CreateTakenOver { name } => write!(
                    f,
                    "\"{name}\" was not created: this process stalled while creating it and another process took its directory entry over (create or open it again)"
                ),
                DirectoryError::InvalidConfig(e) => write!(f, "invalid configuration: {e}"),
                DirectoryError::Corrupt { entry, reason } => write!(
                    f,
                    "directory entry {entry} is corrupt: {reason} (see it with ring-dump list; removing the namespace starts it afresh)"
                ),
                DirectoryError::NamespaceInUse { namespace, held } => {
                    write!(f, "namespace \"{namespace}\" is in use, nothing was removed: ")?;
                    for (i, segment) in held.iter().enumerate() {
                        if i > 0 {
                            f.write_str("; ")?;
                        }
                        write!(f, "{segment}")?;
                    }
                    f.write_str(" (stop those processes, or drop their handles, then remove it)")
                }
            }
        }
    }

    impl std::error::Error for DirectoryError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                DirectoryError::Segment(e) => Some(e),
                DirectoryError::InvalidConfig(e) => Some(e),
                _ => None,
            }
        }
    }

    /// What a call asked the directory for: what its errors name.
    #[derive(Clone, Copy)]
    enum Asked<'a> {
        /// A ring of this configuration (create or open).
        Config(&'a RingConfig),
        /// A ring of this kind.
        Kind(RingKind),
        /// Any ring.
        Any,
    }

    impl Asked<'_> {
        fn kind(self) -> Option<RingKind> {
            match self {
                Asked::Config(c) => Some(c.kind()),
                Asked::Kind(k) => Some(k),
                Asked::Any => None,
            }
        }
    }

    /// The entry locks (a private open file description) and the namespace in
    /// which ring files are created.
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
        fn create_ring(
            &self,
            i: usize,
            epoch: u32,
            name: &str,
            config: &RingConfig,
        ) -> Result<(), DirectoryError> {
            let segment = config.kind().segment_name(i, epoch, name);
            match config {
                RingConfig::Broadcast(c) => {
                    crate::ring::broadcast::shm::create_log(self.ns, &segment, c)?
                }
                RingConfig::Spsc(c) => crate::ring::spsc::shm::create_ring(self.ns, &segment, c)?,
                RingConfig::Queue(c) => {
                    crate::ring::queue::shm::create_queue(self.ns, &segment, c)?
                }
            }
            Ok(())
        }
        fn remove_ring(&self, i: usize, epoch: u32) {
            remove_ring_files(self.ns, i, epoch);
        }
    }

    /// Removes every ring file of entry `i` at `epoch` in `ns`, whatever its
    /// kind and name: a half-made entry's kind and name words cannot be
    /// trusted (nor known, before its creator wrote them), and at most one
    /// such file exists. Best effort: a file that cannot be listed or
    /// removed stays (a stale scan of the namespace finds it).
    pub(crate) fn remove_ring_files(ns: &Namespace, i: usize, epoch: u32) {
        let Ok(segments) = ns.segments() else {
            return;
        };
        for (segment, kind) in segments {
            let Some((ring, entry, at, _)) = RingKind::parse_segment_name(&segment) else {
                continue;
            };
            if (entry, at) != (i, epoch) || ring.segment_kind() != kind {
                continue;
            }
            let _ = remove_segment(ns, &segment, ring);
        }
    }

    /// Removes the ring file `segment` of a ring of `kind`: its header is
    /// flagged removed first (an SPSC channel's sleeping consumer is woken
    /// too), so that attached handles learn of it, then it is unlinked.
    pub(crate) fn remove_segment(
        ns: &Namespace,
        segment: &str,
        kind: RingKind,
    ) -> Result<(), SegmentError> {
        match kind {
            RingKind::Broadcast => Segment::remove(ns, segment, SegmentKind::Broadcast),
            RingKind::Spsc => crate::ring::spsc::shm::remove_ring(ns, segment),
            RingKind::Queue => Segment::remove(ns, segment, SegmentKind::Queue),
        }
    }

    /// A namespace's directory, mapped. Clones share the mapping.
    #[derive(Clone)]
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
            // A directory being removed (see `Directory::remove_if_unused`)
            // is waited out this long (its remover may be stopped half-way)
            // before the removal is reported; one already flagged removed,
            // whose remover unlinks it next, a second at most.
            let started = std::time::Instant::now();
            let removal_wait = started + CREATE_WAIT;
            let unlink_wait = started + Duration::from_secs(1);
            loop {
                match Segment::open(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, opts) {
                    Ok(segment) => match Self::join(segment, removal_wait)? {
                        Some(directory) => return Ok(directory),
                        None => continue,
                    },
                    Err(SegmentError::NotFound { .. }) => {}
                    Err(SegmentError::Removed { .. })
                        if std::time::Instant::now() < unlink_wait =>
                    {
                        // Flagged, about to be unlinked: then make a new one.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
                let init = |after_header: *mut u8, _len: usize| {
                    // SAFETY: the control block follows the header of a fresh zeroed mapping
                    // nobody else can use yet; zero is a valid FREE entry: only the count is set.
                    unsafe { (*(after_header as *mut DirectoryControl)).entries = entries };
                };
                match Segment::create(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, size, init) {
                    Ok(segment) => match Self::join(segment, removal_wait)? {
                        Some(directory) => return Ok(directory),
                        None => continue,
                    },
                    // Lost the race to create it: open what the winner made.
                    Err(SegmentError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }

        /// Opens the namespace's directory if it exists (never creating
        /// one) and becomes one of its users, as
        /// [`Directory::open_or_create_with`] does. `None` if there is none,
        /// or it was removed meanwhile.
        ///
        /// # Errors
        ///
        /// The directory segment is invalid, or its remover holds it past
        /// the create wait.
        pub fn open_existing(
            ns: &Namespace,
            opts: &OpenOptions,
        ) -> Result<Option<Directory>, DirectoryError> {
            let removal_wait = std::time::Instant::now() + CREATE_WAIT;
            loop {
                match Segment::open(ns, DIRECTORY_SEGMENT, SegmentKind::Directory, opts) {
                    Ok(segment) => {
                        if let Some(directory) = Self::join(segment, removal_wait)? {
                            return Ok(Some(directory));
                        }
                    }
                    Err(SegmentError::NotFound { .. } | SegmentError::Removed { .. }) => {
                        return Ok(None)
                    }
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

        /// Becomes one of the directory's users (its read lock on
        /// [`lock_slot::DIRECTORY_USERS`]), so that no other process removes
        /// it while this one uses it. `None` if it is being removed or was
        /// removed since it was opened: open (or create) it again. A
        /// remover that holds it past `removal_wait` (it was stopped
        /// half-way) is reported as the removal.
        fn join(
            segment: Segment,
            removal_wait: std::time::Instant,
        ) -> Result<Option<Directory>, DirectoryError> {
            let directory = Self::validated(segment)?;
            if !directory
                .segment
                .try_read_lock(lock_slot::DIRECTORY_USERS)?
            {
                // Its remover holds the write lock, for as long as an unlink.
                if std::time::Instant::now() >= removal_wait {
                    return Err(SegmentError::Removed {
                        path: directory.segment.path().to_owned(),
                    }
                    .into());
                }
                std::thread::sleep(Duration::from_millis(1));
                return Ok(None);
            }
            // Unlinked between our open and our lock: it is gone for good.
            if directory
                .segment
                .fault_slow()
                .is_some_and(|f| f == SegmentFault::Removed)
            {
                return Ok(None);
            }
            Ok(Some(directory))
        }

        /// Removes the namespace's directory, and the namespace's directory
        /// on disk if that is then empty, when nothing is left in it: no
        /// ring is ready or being created by a live process (every entry
        /// is free, removed, or a dead creator's), and no other process (nor
        /// another handle of this one) has the directory open for use.
        /// What removed rings and dead creators left behind goes with it.
        /// Returns whether it removed it; this handle is unusable after.
        ///
        /// [`Bus`](crate::Bus) calls it when it is dropped, so that a
        /// program that removes every ring it made leaves nothing behind.
        /// A process that opens the namespace meanwhile waits for the
        /// removal and makes a new directory.
        ///
        /// # Errors
        ///
        /// A lock cannot be taken or queried, or the file cannot be
        /// unlinked.
        pub fn remove_if_unused(&self, ns: &Namespace) -> Result<bool, DirectoryError> {
            if !self.segment.is_writable() {
                return Ok(false);
            }
            // Our read lock turns into the write lock only if no other open
            // file description holds a read lock: then no process can start
            // using the directory until we let go.
            if !self.segment.try_lock(lock_slot::DIRECTORY_USERS)? {
                return Ok(false);
            }
            let entries = self.scan();
            let leftovers = entries.as_ref().ok().and_then(|entries| {
                entries
                    .iter()
                    .map(|entry| match entry {
                        DirectoryEntry::Removed { entry, epoch, .. }
                        | DirectoryEntry::Creating {
                            entry,
                            epoch,
                            creator_alive: false,
                            ..
                        } => Some((*entry, *epoch)),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
            });
            let Some(leftovers) = leftovers else {
                // Still in use (or unreadable): a user again.
                self.segment.try_read_lock(lock_slot::DIRECTORY_USERS)?;
                entries?;
                return Ok(false);
            };
            let store = self.store(ns)?;
            for (entry, epoch) in leftovers {
                store.remove_ring(entry, epoch);
            }
            Segment::remove(ns, DIRECTORY_SEGMENT, SegmentKind::Directory)?;
            ns.remove_if_empty();
            Ok(true)
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
        /// to finish creating a ring, and [`Directory::create_or_open`]
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

        /// Creates ring `name` with `config` (which says its kind), or opens
        /// it if it exists with the same kind and configuration. Returns the
        /// ring and whether this call created it.
        ///
        /// A creator that died half-way through creating a ring on the
        /// name's probe chain is taken over at once; one that is alive but
        /// has been creating for longer than the create wait is taken over
        /// then.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::KindMismatch`], [`DirectoryError::ConfigMismatch`],
        /// [`DirectoryError::Full`], [`DirectoryError::Corrupt`] for a
        /// corrupt entry on the name's probe chain,
        /// [`DirectoryError::CreateTakenOver`] if this call stalled and was
        /// taken over, [`DirectoryError::CreateTimedOut`] if the entry kept
        /// changing, an invalid name or config, or a segment error creating
        /// the ring file.
        pub fn create_or_open(
            &self,
            ns: &Namespace,
            name: &str,
            config: &RingConfig,
        ) -> Result<(RingRecord, bool), DirectoryError> {
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
            config: &RingConfig,
            pause: &dyn Fn(usize, u32),
        ) -> Result<(RingRecord, bool), DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            let store = Paused {
                inner: &store,
                pause,
            };
            table::create_or_open(self.entries(), &store, name, config, self.wait_ns())
                .map_err(|e| self.error(e, name, Asked::Config(config)))
        }

        /// Opens existing ring `name`, of any kind. A creator found dead on
        /// the name's probe chain is cleaned up at once (the answer is then
        /// [`DirectoryError::NotFound`] unless the ring is further on); a
        /// live one is waited for up to the create wait.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::NotFound`], [`DirectoryError::Corrupt`] for a
        /// corrupt entry on the name's probe chain, or
        /// [`DirectoryError::CreateTimedOut`] if a live process stays
        /// creating a ring there past the create wait.
        pub fn open(&self, ns: &Namespace, name: &str) -> Result<RingRecord, DirectoryError> {
            self.open_as(ns, name, None)
        }

        /// As [`Directory::open`], for a ring of `kind` if given.
        ///
        /// # Errors
        ///
        /// As [`Directory::open`], and [`DirectoryError::KindMismatch`] if
        /// the name is a ring of another kind.
        pub fn open_as(
            &self,
            ns: &Namespace,
            name: &str,
            kind: Option<RingKind>,
        ) -> Result<RingRecord, DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            let asked = kind.map_or(Asked::Any, Asked::Kind);
            let record = table::open(self.entries(), &store, name, self.wait_ns())
                .map_err(|e| self.error(e, name, asked))?;
            match kind {
                Some(kind) if record.kind() != kind => Err(self.error(
                    TableError::Mismatch {
                        existing: record.config,
                    },
                    name,
                    asked,
                )),
                _ => Ok(record),
            }
        }

        /// Removes ring `name` of `kind`; only its creation at `epoch`, if
        /// given (a handle's own ring, not one made again since). Its entry
        /// keeps the name, so creating the name again makes a new ring with
        /// a new file; its file is removed so that its attached handles
        /// learn of it (for an SPSC channel:
        /// [`Unusable(Removed)`](crate::ring::spsc::RecvError::Unusable) at
        /// their next full, empty or wait round, a sleeping consumer being
        /// woken). Returns the record of the ring removed.
        ///
        /// # Errors
        ///
        /// [`DirectoryError::NotFound`] if there is no such ring (or it was
        /// removed already), [`DirectoryError::KindMismatch`],
        /// [`DirectoryError::Corrupt`] for a corrupt entry on the name's
        /// probe chain, an invalid name.
        pub fn remove(
            &self,
            ns: &Namespace,
            name: &str,
            kind: RingKind,
            epoch: Option<u32>,
        ) -> Result<RingRecord, DirectoryError> {
            validate_name(name)?;
            let store = self.store(ns)?;
            table::remove(self.entries(), &store, name, kind, epoch)
                .map_err(|e| self.error(e, name, Asked::Kind(kind)))
        }

        /// Finds ready ring `name` without changing or waiting for anything
        /// (works on a read-only directory): `None` if there is none.
        ///
        /// # Errors
        ///
        /// An invalid name, or [`DirectoryError::Corrupt`] for a corrupt
        /// entry on the name's probe chain.
        pub fn lookup(&self, name: &str) -> Result<Option<RingRecord>, DirectoryError> {
            validate_name(name)?;
            table::lookup(self.entries(), name)
                .map_err(|(entry, reason)| DirectoryError::Corrupt { entry, reason })
        }

        /// Every ready ring, in table order (corrupt entries and duplicates
        /// left out; [`Directory::scan`] shows them).
        pub fn list(&self) -> Vec<RingRecord> {
            table::list(self.entries())
        }

        /// Every entry that is not free, in table order: ready rings, rings
        /// being created (and whether their creator is alive), removed ones,
        /// and corrupt entries with the reason. Changes nothing.
        ///
        /// # Errors
        ///
        /// A liveness lock cannot be queried.
        pub fn scan(&self) -> Result<Vec<DirectoryEntry>, DirectoryError> {
            let creating = |entry: usize, epoch: u32, name: Option<String>| {
                self.segment
                    .is_lock_held(lock_slot::entry(entry, epoch))
                    .map(|creator_alive| DirectoryEntry::Creating {
                        entry,
                        epoch,
                        creator_alive,
                        name,
                    })
                    .map_err(DirectoryError::from)
            };
            table::scan(self.entries())
                .into_iter()
                .filter_map(|(entry, slot)| match slot {
                    Slot::Ready(record) => Some(Ok(DirectoryEntry::Ready(record))),
                    Slot::Creating { epoch } => Some(creating(entry, epoch, None)),
                    Slot::Recreating { epoch, name } => Some(creating(entry, epoch, Some(name))),
                    Slot::Removed { epoch, name } => {
                        Some(Ok(DirectoryEntry::Removed { entry, epoch, name }))
                    }
                    Slot::Corrupt(reason) => Some(Ok(DirectoryEntry::Corrupt { entry, reason })),
                    Slot::Free { .. } => None,
                })
                .collect()
        }

        fn error(&self, e: TableError<DirectoryError>, name: &str, asked: Asked) -> DirectoryError {
            let name = name.to_owned();
            match e {
                TableError::Store(e) => e,
                TableError::Mismatch { existing } => match asked {
                    Asked::Config(requested) if requested.kind() == existing.kind() => {
                        DirectoryError::ConfigMismatch {
                            name,
                            existing,
                            requested: *requested,
                        }
                    }
                    _ => DirectoryError::KindMismatch {
                        name,
                        existing,
                        requested: asked.kind().unwrap_or(existing.kind()),
                        requested_config: match asked {
                            Asked::Config(c) => Some(Box::new(*c)),
                            _ => None,
                        },
                    },
                },
                TableError::Full => DirectoryError::Full {
                    entries: self.entries as u32,
                },
                TableError::NotFound => DirectoryError::NotFound {
                    name,
                    kind: asked.kind(),
                },
                TableError::TimedOut => DirectoryError::CreateTimedOut {
                    name,
                    waited: self.create_wait,
                },
                TableError::TakenOver => DirectoryError::CreateTakenOver { name },
                TableError::InvalidConfig(e) => DirectoryError::InvalidConfig(e),
                TableError::Corrupt { entry, reason } => DirectoryError::Corrupt { entry, reason },
            }
        }
    }
}
