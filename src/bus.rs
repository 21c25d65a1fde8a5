//! The public API: a bus is a namespace with its directory; every ring in
//! it is found by name through the directory, which chooses its file. A
//! topic is a broadcast log that publishers and subscribers attach to
//! ([`Bus::topic`]); a channel is an SPSC ring with one producer and one
//! consumer ([`Bus::spsc`]). A name is one ring of one kind.
//!
//! ```
//! use shmbus::bus::{Bus, StartAt, TopicConfig};
//! use shmbus::wait::WaitStrategy;
//! # let tmp = std::env::temp_dir().join(format!("shmbus-doc-bus-{}", std::process::id()));
//! let bus = Bus::at(&tmp, "doc")?;               // or Bus::open("prod")
//! let md = bus.topic("market_data", &TopicConfig::default())?;
//!
//! let mut strategy = md.subscriber(StartAt::Tail)?;
//! let mut feed = md.publisher()?;
//! feed.send_blocking(1, b"BTC 42000.5", WaitStrategy::BusySpin)?;
//!
//! let rec = strategy.read_blocking(WaitStrategy::BLOCKING)?;
//! assert_eq!(&rec[..], b"BTC 42000.5");
//! # drop(rec); drop(strategy); drop(feed); drop(md); drop(bus);
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use crate::directory::{Directory, DirectoryError, RingConfig, RingKind, RingRecord};
use crate::record;
use crate::ring::broadcast::shm::open_log;
use crate::ring::broadcast::BroadcastView;
use crate::ring::spsc;
use crate::segment::{Namespace, OpenOptions, SegmentError};
use crate::wait::WaitStrategy;

pub use crate::ring::broadcast::{
    BroadcastConfig as TopicConfig, Claim, DropDurableError, GatingSubscriber, Policy, Publisher,
    Record, RegisterError, StartAt, Subscriber,
};
pub use crate::ring::queue::{
    Claim as QueueClaim, Consumer as QueueConsumer, Producer as QueueProducer, QueueConfig, Taken,
};
pub use crate::ring::spsc::{Consumer, Producer, Record as SpscRecord, SpscConfig, WriteSlot};
pub use crate::ring::{ClaimError, RecvError};

/// Why a bus operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BusError {
    /// Creating or opening a topic failed.
    Directory(DirectoryError),
    /// A segment could not be opened or is invalid.
    Segment(SegmentError),
    /// No publisher or subscriber slot could be had.
    Register(RegisterError),
    /// A message's relay domain could not be read.
    Route(record::RouteError),
    /// Sending on a ring (a topic, a work queue or an SPSC channel) failed.
    Claim(ClaimError),
    /// A durable subscriber could not be dropped.
    DropDurable(DropDurableError),
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Directory(e) => e.fmt(f),
            BusError::Segment(e) => e.fmt(f),
            BusError::Register(e) => e.fmt(f),
            BusError::Route(e) => write!(f, "cannot route message: {e}"),
            BusError::Claim(e) => e.fmt(f),
            BusError::DropDurable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BusError::Directory(e) => Some(e),
            BusError::Segment(e) => Some(e),
            BusError::Register(e) => Some(e),
            BusError::Claim(e) => Some(e),
            BusError::DropDurable(e) => Some(e),
            BusError::Route(_) => None,
        }
    }
}

impl From<DirectoryError> for BusError {
    fn from(e: DirectoryError) -> Self {
        BusError::Directory(e)
    }
}
impl From<SegmentError> for BusError {
    fn from(e: SegmentError) -> Self {
        BusError::Segment(e)
    }
}
impl From<RegisterError> for BusError {
    fn from(e: RegisterError) -> Self {
        BusError::Register(e)
    }
}
impl From<DropDurableError> for BusError {
    fn from(e: DropDurableError) -> Self {
        BusError::DropDurable(e)
    }
}
impl From<ClaimError> for BusError {
    fn from(e: ClaimError) -> Self {
        BusError::Claim(e)
    }
}

/// A namespace and its directory of topics and channels.
///
/// # Examples
///
/// ```
/// use shmbus::{Bus, SpscConfig, TopicConfig};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;                  // Bus::open("desk") in production
/// let quotes = bus.topic("quotes", &TopicConfig::default())?;
/// assert!(quotes.was_created());
/// let again = bus.open_topic("quotes")?;              // by name alone
/// assert_eq!(again.config(), quotes.config());
/// assert_eq!(bus.topics().len(), 1);
/// let fills = bus.spsc("fills", &SpscConfig::with_capacity(1 << 16))?;
/// assert_eq!(bus.rings().len(), 2);                   // one topic, one channel
/// # drop((quotes, again, fills, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bus {
    ns: Arc<Namespace>,
    directory: Directory,
    open: OpenOptions,
    /// Set by [`Bus::remove_namespace`]: the namespace is gone, and a new
    /// one of the name is another's to remove.
    removed: crate::sync::AtomicU32,
}

impl Drop for Bus {
    /// Removes the namespace's directory if this bus was its last user and
    /// every ring in it was removed (see [`Directory::remove_if_unused`]):
    /// a program that removes what it made leaves nothing behind.
    fn drop(&mut self) {
        if self.removed.load(crate::sync::Ordering::Relaxed) == 0 {
            let _ = self.directory.remove_if_unused(&self.ns);
        }
    }
}

/// Whether `e` says a directory on disk vanished between two steps of
/// opening a namespace (its last user removed it meanwhile).
fn vanished(e: &SegmentError) -> bool {
    match e {
        SegmentError::NotFound { .. } => true,
        SegmentError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

impl Bus {
    /// Opens the bus of `namespace` under `$SHMBUS_DIR` or `/dev/shm/shmbus-<uid>`,
    /// creating the namespace and its directory if needed.
    ///
    /// # Errors
    ///
    /// The namespace or directory cannot be created, opened or validated.
    pub fn open(namespace: &str) -> Result<Bus, BusError> {
        Self::connect(|| Namespace::open(namespace), OpenOptions::default())
    }

    /// Opens the bus of `namespace` under `base`.
    ///
    /// # Errors
    ///
    /// As [`Bus::open`].
    pub fn at(base: impl AsRef<Path>, namespace: &str) -> Result<Bus, BusError> {
        let base = base.as_ref();
        Self::connect(|| Namespace::at(base, namespace), OpenOptions::default())
    }

    /// As [`Bus::at`], opening the directory and every topic's log with
    /// `open` (for example a shorter wait for a creator that has not
    /// published a segment's header yet).
    ///
    /// # Errors
    ///
    /// As [`Bus::open`].
    pub fn at_with(
        base: impl AsRef<Path>,
        namespace: &str,
        open: OpenOptions,
    ) -> Result<Bus, BusError> {
        let base = base.as_ref();
        Self::connect(|| Namespace::at(base, namespace), open)
    }

    /// Opens the namespace `namespace()` makes and its directory. The last
    /// bus of a namespace left empty removes it on its way out (see
    /// [`Directory::remove_if_unused`]); one opened while that happens
    /// finds a directory on disk gone between two steps, and starts again.
    fn connect(
        namespace: impl Fn() -> Result<Namespace, SegmentError>,
        open: OpenOptions,
    ) -> Result<Bus, BusError> {
        let mut attempts = 0;
        loop {
            let result = namespace()
                .map_err(DirectoryError::from)
                .and_then(|ns| Ok((Directory::open_or_create_with(&ns, &open)?, ns)));
            match result {
                Ok((directory, ns)) => {
                    return Ok(Bus {
                        ns: Arc::new(ns),
                        directory,
                        open,
                        removed: crate::sync::AtomicU32::new(0),
                    })
                }
                Err(DirectoryError::Segment(e)) if attempts < 100 && vanished(&e) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Removes the namespace as a whole: every ring's segment (of every
    /// kind, removed rings' leftovers too), its directory, then the
    /// namespace's directory on disk if nothing else is in it. Only if no
    /// live process holds any of them: no other bus has the namespace open
    /// (another bus of this process counts too), no producer, consumer,
    /// publisher or subscriber is attached to any ring (this process's
    /// included: drop them first), and no ring is being created. Detached
    /// durable subscribers' places go with their topics.
    ///
    /// Nobody can open the namespace while it is removed (a bus opened
    /// meanwhile waits, then makes a new one). This bus and its handles are
    /// unusable after it: attaching fails, and handles already attached
    /// elsewhere cannot exist (they would have held it).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::{Bus, BusError, StartAt, TopicConfig};
    /// use shmbus::directory::DirectoryError;
    ///
    /// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
    /// let bus = Bus::at(&tmp, "desk")?;
    /// let md = bus.topic("market_data", &TopicConfig::default())?;
    /// let sub = md.subscriber(StartAt::Tail)?;
    /// match bus.remove_namespace() {
    ///     Err(BusError::Directory(DirectoryError::NamespaceInUse { held, .. })) => {
    ///         assert_eq!(held[0].holders, ["subscriber slot 0"]);
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// drop(sub);
    /// bus.remove_namespace()?;
    /// assert!(!tmp.join("desk").exists());
    /// # drop((md, bus));
    /// # std::fs::remove_dir_all(&tmp).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NamespaceInUse`] listing every segment held and by
    /// whom, with nothing removed; a lock that cannot be queried, or a file
    /// that cannot be removed.
    pub fn remove_namespace(&self) -> Result<(), BusError> {
        self.directory.remove_namespace(&self.ns)?;
        self.removed.store(1, crate::sync::Ordering::Relaxed);
        Ok(())
    }

    /// Creates topic `name` with `config`, or opens it if it exists with the
    /// same configuration. Many processes may race to do this; exactly one
    /// creates it.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::ConfigMismatch`] naming both configurations,
    /// [`DirectoryError::KindMismatch`] if the name is an SPSC channel, a
    /// full directory, an invalid name or configuration.
    pub fn topic(&self, name: &str, config: &TopicConfig) -> Result<Topic, BusError> {
        let (record, created) =
            self.directory
                .create_or_open(&self.ns, name, &RingConfig::Broadcast(*config))?;
        Ok(self.topic_handle(record, created))
    }

    /// Opens existing topic `name`, whatever its configuration.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is an SPSC channel.
    pub fn open_topic(&self, name: &str) -> Result<Topic, BusError> {
        let record = self
            .directory
            .open_as(&self.ns, name, Some(RingKind::Broadcast))?;
        Ok(self.topic_handle(record, false))
    }

    /// Opens topic `name`, whatever its configuration, waiting up to
    /// `timeout` for some process to create it: for a subscriber started
    /// before its feed, which does not know the topic's configuration.
    /// It looks every millisecond (a topic is found as soon as its creator
    /// has published it in the directory).
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] once `timeout` has passed with no such
    /// topic; the errors of [`Bus::open_topic`] other than `NotFound` at
    /// once.
    pub fn open_topic_timeout(&self, name: &str, timeout: Duration) -> Result<Topic, BusError> {
        retry_not_found(timeout, || self.open_topic(name))
    }

    fn topic_handle(&self, record: RingRecord, created: bool) -> Topic {
        // The directory gave a ring of the kind asked for.
        let config = record.config.broadcast().copied().unwrap_or_default();
        Topic {
            ns: self.ns.clone(),
            directory: self.directory.clone(),
            record,
            config,
            created,
            open: self.open,
        }
    }

    /// Creates SPSC channel `name` with `config`, or opens it if it exists
    /// with the same configuration (equal as written). Many processes may
    /// race to do this; exactly one creates it. The channel's ring file is
    /// named by the directory: its entry and epoch, then `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::{Bus, SpscConfig};
    ///
    /// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
    /// let bus = Bus::at(&tmp, "desk")?;
    /// let orders = bus.spsc("orders", &SpscConfig::with_capacity(1 << 16))?;
    /// let mut tx = orders.producer()?;                   // one producer at a time
    /// let mut rx = bus.open_spsc("orders")?.consumer()?; // and one consumer
    /// tx.try_send(1, b"BUY 100 @ 42")?;
    /// assert_eq!(&rx.try_read()?[..], b"BUY 100 @ 42");
    /// # drop((tx, rx));
    /// orders.remove()?;                                   // the next create makes a new ring
    /// # drop((orders, bus));
    /// # std::fs::remove_dir_all(&tmp).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`DirectoryError::ConfigMismatch`] naming both configurations,
    /// [`DirectoryError::KindMismatch`] if the name is a topic, a full
    /// directory, an invalid name or configuration, a segment error
    /// creating the ring (no space, for one).
    pub fn spsc(&self, name: &str, config: &SpscConfig) -> Result<Channel, BusError> {
        let (record, created) =
            self.directory
                .create_or_open(&self.ns, name, &RingConfig::Spsc(*config))?;
        Ok(self.channel_handle(record, created))
    }

    /// Opens existing SPSC channel `name`, whatever its configuration.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is a topic.
    pub fn open_spsc(&self, name: &str) -> Result<Channel, BusError> {
        let record = self
            .directory
            .open_as(&self.ns, name, Some(RingKind::Spsc))?;
        Ok(self.channel_handle(record, false))
    }

    /// Opens SPSC channel `name`, whatever its configuration, waiting up to
    /// `timeout` for some process to create it (looking every
    /// millisecond): for a consumer started before its producer.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] once `timeout` has passed with no such
    /// channel; the errors of [`Bus::open_spsc`] other than `NotFound` at
    /// once.
    pub fn open_spsc_timeout(&self, name: &str, timeout: Duration) -> Result<Channel, BusError> {
        retry_not_found(timeout, || self.open_spsc(name))
    }

    /// Removes SPSC channel `name`, whichever process created it (see
    /// [`Channel::remove`]).
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is a topic.
    pub fn remove_spsc(&self, name: &str) -> Result<(), BusError> {
        self.directory
            .remove(&self.ns, name, RingKind::Spsc, None)?;
        Ok(())
    }

    /// Creates work queue `name` with `config`, or opens it if it exists
    /// with the same configuration. Many processes may race to do this;
    /// exactly one creates it. Each record sent to a work queue goes to
    /// exactly one of its consumers (see [`crate::ring::queue`] for what
    /// is guaranteed when a consumer dies).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::{Bus, QueueConfig, WaitStrategy};
    ///
    /// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
    /// let bus = Bus::at(&tmp, "desk")?;
    /// let execution = bus.queue("execution", &QueueConfig::default())?;
    /// let mut strategy = execution.producer()?;
    /// let mut gateway = bus.open_queue("execution")?.consumer()?;
    /// strategy.send_blocking(1, b"BUY 100 @ 42", WaitStrategy::BACKOFF)?;
    /// let order = gateway.take_blocking(WaitStrategy::BLOCKING)?; // in place
    /// assert_eq!(&order[..], b"BUY 100 @ 42");
    /// order.ack()?;                                                // done: its slot is free
    /// # drop((strategy, gateway));
    /// # execution.remove()?;
    /// # drop((execution, bus));
    /// # std::fs::remove_dir_all(&tmp).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`DirectoryError::ConfigMismatch`] naming both configurations,
    /// [`DirectoryError::KindMismatch`] if the name is another kind of
    /// ring, a full directory, an invalid name or configuration, a segment
    /// error creating the ring (no space, for one).
    pub fn queue(&self, name: &str, config: &QueueConfig) -> Result<Queue, BusError> {
        let (record, created) =
            self.directory
                .create_or_open(&self.ns, name, &RingConfig::Queue(*config))?;
        Ok(self.queue_handle(record, created))
    }

    /// Opens existing work queue `name`, whatever its configuration.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is another kind of ring.
    pub fn open_queue(&self, name: &str) -> Result<Queue, BusError> {
        let record = self
            .directory
            .open_as(&self.ns, name, Some(RingKind::Queue))?;
        Ok(self.queue_handle(record, false))
    }

    /// Opens work queue `name`, whatever its configuration, waiting up to
    /// `timeout` for some process to create it (looking every
    /// millisecond): for a consumer started before its producers.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] once `timeout` has passed with no such
    /// queue; the errors of [`Bus::open_queue`] other than `NotFound` at
    /// once.
    pub fn open_queue_timeout(&self, name: &str, timeout: Duration) -> Result<Queue, BusError> {
        retry_not_found(timeout, || self.open_queue(name))
    }

    /// Drops the durable subscriber `subscriber` of topic `topic` (see
    /// [`Topic::drop_durable`]).
    ///
    /// # Errors
    ///
    /// As [`Bus::open_topic`] and [`Topic::drop_durable`].
    pub fn drop_durable(&self, topic: &str, subscriber: &str) -> Result<(), BusError> {
        self.open_topic(topic)?.drop_durable(subscriber)
    }

    /// Removes topic `name`, whichever process created it (see
    /// [`Topic::remove`]).
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is another kind of ring.
    pub fn remove_topic(&self, name: &str) -> Result<(), BusError> {
        self.directory
            .remove(&self.ns, name, RingKind::Broadcast, None)?;
        Ok(())
    }

    /// Removes work queue `name`, whichever process created it (see
    /// [`Queue::remove`]).
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`], [`DirectoryError::KindMismatch`] if
    /// the name is another kind of ring.
    pub fn remove_queue(&self, name: &str) -> Result<(), BusError> {
        self.directory
            .remove(&self.ns, name, RingKind::Queue, None)?;
        Ok(())
    }

    fn queue_handle(&self, record: RingRecord, created: bool) -> Queue {
        // The directory gave a ring of the kind asked for.
        let config = record.config.queue().copied().unwrap_or_default();
        Queue {
            ns: self.ns.clone(),
            directory: self.directory.clone(),
            record,
            config,
            created,
            open: self.open,
        }
    }

    fn channel_handle(&self, record: RingRecord, created: bool) -> Channel {
        // The directory gave a ring of the kind asked for.
        let config = record
            .config
            .spsc()
            .copied()
            .unwrap_or(SpscConfig::with_capacity(0));
        Channel {
            ns: self.ns.clone(),
            directory: self.directory.clone(),
            record,
            config,
            created,
            open: self.open,
        }
    }

    /// Every topic in the namespace.
    pub fn topics(&self) -> Vec<RingRecord> {
        self.rings_of(RingKind::Broadcast)
    }

    /// Every SPSC channel in the namespace.
    pub fn channels(&self) -> Vec<RingRecord> {
        self.rings_of(RingKind::Spsc)
    }

    /// Every ring in the namespace, of every kind, in directory order.
    pub fn rings(&self) -> Vec<RingRecord> {
        self.directory.list()
    }

    fn rings_of(&self, kind: RingKind) -> Vec<RingRecord> {
        let mut rings = self.directory.list();
        rings.retain(|r| r.kind() == kind);
        rings
    }

    /// A router that sends Protocol V2 messages to the ring their relay
    /// domain names, creating (or opening) each ring with the
    /// configuration `config` gives its domain, at its first message. By
    /// default ([`RouterConfig::default`]) orders (`execution`) go to a
    /// work queue and the other domains to broadcast topics.
    pub fn router(&self, config: RouterConfig) -> Router<'_> {
        Router {
            bus: self,
            config,
            senders: Default::default(),
        }
    }
}

/// A topic: a named broadcast log.
///
/// # Examples
///
/// ```
/// use shmbus::{Bus, StartAt, TopicConfig};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let fills = bus.topic("fills", &TopicConfig::default())?;
/// let mut publisher = fills.publisher()?;               // any number of these
/// let mut live = fills.subscriber(StartAt::Tail)?;       // each with its own cursor
/// let mut audit = fills.durable_subscriber("audit", StartAt::Oldest)?; // keeps its place
/// publisher.try_send(1, b"fill 1")?;
/// assert_eq!(&live.try_read()?[..], b"fill 1");
/// assert_eq!(&audit.try_read()?[..], b"fill 1");
/// # drop((publisher, live, audit, fills, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Topic {
    ns: Arc<Namespace>,
    /// The directory that named it, through which it is removed; every
    /// handle watches its segment (removing it detaches the topic too).
    directory: Directory,
    record: RingRecord,
    /// The record's configuration.
    config: TopicConfig,
    created: bool,
    /// How its log is opened.
    open: OpenOptions,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Its configuration.
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// Whether this handle's [`Bus::topic`] call created it.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The directory's record of it.
    pub fn record(&self) -> &RingRecord {
        &self.record
    }

    /// Its log's file, named by the directory
    /// (`topic-<entry>-<epoch>.<name>.bcast`).
    pub fn path(&self) -> PathBuf {
        segment_path(&self.ns, &self.record)
    }

    fn view(&self) -> Result<BroadcastView, BusError> {
        Ok(open_log(
            &self.ns,
            &self.record.segment,
            self.directory.segment_handle(),
            &self.config,
            &self.open,
        )?)
    }

    /// Attaches a publisher.
    ///
    /// # Errors
    ///
    /// The log cannot be opened, or every publisher slot is held by a live
    /// process.
    pub fn publisher(&self) -> Result<Publisher, BusError> {
        Ok(Publisher::register(self.view()?)?)
    }

    /// Attaches an anonymous subscriber starting at `start`.
    ///
    /// # Errors
    ///
    /// The log cannot be opened, or every subscriber slot is held.
    pub fn subscriber(&self, start: StartAt) -> Result<Subscriber, BusError> {
        Ok(Subscriber::register(self.view()?, None, start)?)
    }

    /// Attaches the durable subscriber `name`: if it was attached before
    /// (and left or died), it resumes exactly where it stopped; otherwise it
    /// starts at `start`. While detached it keeps its place, and under
    /// `Backpressure` keeps gating publishers.
    ///
    /// # Errors
    ///
    /// [`RegisterError::DurableInUse`] if a live process holds the name.
    pub fn durable_subscriber(&self, name: &str, start: StartAt) -> Result<Subscriber, BusError> {
        Ok(Subscriber::register(self.view()?, Some(name), start)?)
    }

    /// Drops the durable subscriber `name`, which no live process holds:
    /// its slot is freed and its place forgotten, so that it no longer
    /// gates `Backpressure` publishers. A publisher blocked on it goes on
    /// at its next look at the log (a blocking claim looks again at every
    /// round of its wait). A later [`Topic::durable_subscriber`] of the name
    /// starts afresh, at its `start`.
    ///
    /// It takes the slot's liveness lock first, as a resuming subscriber
    /// does, so a resumption and a drop of the same name never both
    /// succeed: whichever takes the lock first wins, the other is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::{Bus, BusError, DropDurableError, StartAt, TopicConfig};
    ///
    /// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
    /// let bus = Bus::at(&tmp, "desk")?;
    /// let md = bus.topic("market_data", &TopicConfig::default())?;
    /// let s1 = md.durable_subscriber("s1", StartAt::Tail)?;
    /// assert!(matches!(md.drop_durable("s1"),               // attached: refused
    ///     Err(BusError::DropDurable(DropDurableError::InUse { .. }))));
    /// drop(s1);                                               // detached: keeps its place
    /// md.drop_durable("s1")?;                                 // gone: gates nothing
    /// assert!(matches!(md.drop_durable("s1"),
    ///     Err(BusError::DropDurable(DropDurableError::NotFound { .. }))));
    /// # drop((md, bus));
    /// # std::fs::remove_dir_all(&tmp).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`DropDurableError::InUse`] if a live process holds the name
    /// (attached, or resuming it now), [`DropDurableError::NotFound`] if
    /// no subscriber has it, [`DropDurableError::BadName`]; the log cannot
    /// be opened (the topic was removed, for one).
    pub fn drop_durable(&self, name: &str) -> Result<(), BusError> {
        self.drop_durable_paused(name, &|| {})
    }

    /// Test hook: as [`Topic::drop_durable`], calling `pause` once the
    /// slot's liveness lock is held, before the slot changes.
    #[doc(hidden)]
    pub fn drop_durable_paused(&self, name: &str, pause: &dyn Fn()) -> Result<(), BusError> {
        Ok(crate::ring::broadcast::drop_durable(
            &self.view()?,
            name,
            pause,
        )?)
    }

    /// Test hook: as [`Topic::durable_subscriber`], calling `pause` when a
    /// resuming durable subscriber has taken its slot and not yet marked it
    /// live.
    #[doc(hidden)]
    pub fn durable_subscriber_paused(
        &self,
        name: &str,
        start: StartAt,
        pause: &dyn Fn(),
    ) -> Result<Subscriber, BusError> {
        Ok(Subscriber::register_paused(
            self.view()?,
            Some(name),
            start,
            pause,
        )?)
    }

    /// Removes the topic: its directory entry is marked removed (so that
    /// the next [`Bus::topic`] of the name makes a new log, in a new file)
    /// and its log file is removed. Attached publishers and subscribers
    /// keep a valid mapping and learn of the removal (`Unusable(Removed)`)
    /// at their next look at the segment; durable subscribers' places go
    /// with it. Attaching through this handle fails from then on.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] if the topic this handle opened is gone
    /// already (removed by another process, perhaps made again).
    pub fn remove(&self) -> Result<(), BusError> {
        remove_ring(&self.directory, &self.ns, &self.record)
    }
}

/// An SPSC channel: a named ring with one producer and one consumer at a
/// time, across processes (each role is proved by an OFD lock the kernel
/// drops when its holder dies, so a replacement attaches at once and
/// resumes from the positions in shared memory).
///
/// # Examples
///
/// ```
/// use shmbus::{Bus, SpscConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let fills = bus.spsc("fills", &SpscConfig::with_capacity(1 << 16).with_wakeups())?;
/// assert!(fills.was_created());
/// let mut tx = fills.producer()?;
/// assert!(fills.producer().is_err());                  // a second producer is refused
/// let mut slot = tx.try_claim(8)?;                      // claim, write in place, commit
/// slot.copy_from_slice(&42u64.to_le_bytes());
/// slot.commit();
/// let mut rx = fills.consumer()?;
/// let rec = rx.read_blocking(WaitStrategy::BLOCKING)?; // sleeps on a futex: with_wakeups
/// assert_eq!(rec[..], 42u64.to_le_bytes());
/// # drop(rec);
/// # drop((tx, rx));
/// # fills.remove()?;
/// # drop((fills, bus));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Channel {
    ns: Arc<Namespace>,
    /// The directory that named it, through which it is removed.
    directory: Directory,
    record: RingRecord,
    /// The record's configuration.
    config: SpscConfig,
    created: bool,
    /// How its ring is opened.
    open: OpenOptions,
}

impl Channel {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Its configuration.
    pub fn config(&self) -> &SpscConfig {
        &self.config
    }

    /// Whether this handle's [`Bus::spsc`] call created it.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The directory's record of it.
    pub fn record(&self) -> &RingRecord {
        &self.record
    }

    /// Its ring's file, named by the directory
    /// (`spsc-<entry>-<epoch>.<name>.spsc`).
    pub fn path(&self) -> PathBuf {
        segment_path(&self.ns, &self.record)
    }

    /// Attaches as the channel's producer.
    ///
    /// # Errors
    ///
    /// [`SegmentError::AlreadyAttached`] if a live producer holds the
    /// channel; the ring cannot be opened (removed: `NotFound`), or its
    /// control block is inconsistent or disagrees with the directory
    /// ([`SegmentError::Corrupt`]).
    pub fn producer(&self) -> Result<Producer, BusError> {
        Ok(spsc::shm::attach_producer(
            &self.ns,
            &self.record.segment,
            &self.config,
            &self.open,
        )?)
    }

    /// Attaches as the channel's consumer.
    ///
    /// # Errors
    ///
    /// As [`Channel::producer`], for the consumer role.
    pub fn consumer(&self) -> Result<Consumer, BusError> {
        Ok(spsc::shm::attach_consumer(
            &self.ns,
            &self.record.segment,
            &self.config,
            &self.open,
        )?)
    }

    /// Removes the channel: its directory entry is marked removed (so that
    /// the next [`Bus::spsc`] of the name makes a new ring, in a new file)
    /// and its ring file is removed. The entry stays taken by the name (see
    /// [`crate::directory`]): remove channels whose names come back.
    ///
    /// Attached producers and consumers keep a valid mapping, but learn of
    /// the removal: the ring's `removed` flag is set first, a consumer
    /// asleep on its futex is woken, then the file is unlinked. Each handle
    /// then returns `Unusable(Removed)` at its next `Full`, `Empty` or wait
    /// round (see [`crate::ring::spsc`] for exactly what that guarantees).
    /// Attaching through this handle fails from then on.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] if the channel this handle opened is
    /// gone already (removed by another process, perhaps made again).
    pub fn remove(&self) -> Result<(), BusError> {
        remove_ring(&self.directory, &self.ns, &self.record)
    }
}

/// A work queue: many producers, many consumers, and each record goes to
/// exactly one consumer; a consumer that dies holding records has them
/// redelivered to another (see [`crate::ring::queue`]).
///
/// See [`Bus::queue`] for an example.
pub struct Queue {
    ns: Arc<Namespace>,
    /// The directory that named it, through which it is removed; every
    /// handle watches its segment (a queue whose directory is removed is
    /// unusable).
    directory: Directory,
    record: RingRecord,
    /// The record's configuration.
    config: QueueConfig,
    created: bool,
    /// How its ring is opened.
    open: OpenOptions,
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Its configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Whether this handle's [`Bus::queue`] call created it.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The directory's record of it.
    pub fn record(&self) -> &RingRecord {
        &self.record
    }

    /// Its ring's file, named by the directory
    /// (`queue-<entry>-<epoch>.<name>.queue`).
    pub fn path(&self) -> PathBuf {
        segment_path(&self.ns, &self.record)
    }

    fn view(&self) -> Result<crate::ring::queue::QueueView, BusError> {
        Ok(crate::ring::queue::shm::open_queue(
            &self.ns,
            &self.record.segment,
            Some(self.directory.segment_handle()),
            &self.config,
            &self.open,
        )?)
    }

    /// Attaches a producer.
    ///
    /// # Errors
    ///
    /// The ring cannot be opened or disagrees with the directory, or every
    /// producer slot is held by a live process.
    pub fn producer(&self) -> Result<QueueProducer, BusError> {
        Ok(QueueProducer::register(self.view()?)?)
    }

    /// Attaches a consumer. If the slot it takes belonged to a consumer
    /// that died, that consumer's records are given back first.
    ///
    /// # Errors
    ///
    /// As [`Queue::producer`], for the consumer role.
    pub fn consumer(&self) -> Result<QueueConsumer, BusError> {
        Ok(QueueConsumer::register(self.view()?)?)
    }

    /// Removes the queue: its directory entry is marked removed (so that
    /// the next [`Bus::queue`] of the name makes a new ring, in a new file)
    /// and its ring file is removed. Attached handles keep a valid mapping
    /// and learn of the removal (`Unusable(Removed)`) at their next look at
    /// the segment.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`] if the queue this handle opened is gone
    /// already.
    pub fn remove(&self) -> Result<(), BusError> {
        remove_ring(&self.directory, &self.ns, &self.record)
    }
}

/// The file of `record`'s ring in `ns`./// The file of `record`'s ring in `ns`.
/// Removes the ring `record` names (that epoch of it only: a ring of the
/// name made again since is another ring), for the handles' `remove`.
fn remove_ring(directory: &Directory, ns: &Namespace, record: &RingRecord) -> Result<(), BusError> {
    directory.remove(ns, &record.name, record.kind(), Some(record.epoch))?;
    Ok(())
}

fn segment_path(ns: &Namespace, record: &RingRecord) -> PathBuf {
    ns.path().join(format!(
        "{}.{}",
        record.segment,
        record.kind().segment_kind().name()
    ))
}

/// Calls `open` until it finds what it opens or fails otherwise than
/// `NotFound`, every millisecond for up to `timeout`.
fn retry_not_found<T>(
    timeout: Duration,
    open: impl Fn() -> Result<T, BusError>,
) -> Result<T, BusError> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match open() {
            Err(BusError::Directory(DirectoryError::NotFound { .. }))
                if deadline.map_or(true, |d| Instant::now() < d) =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// Which ring each relay domain's messages go to: its kind and
/// configuration, under the domain's name (`market_data`, `signals`,
/// `execution`, `system`).
///
/// The default is the relay's own: `execution` is a work queue (each order
/// is handled by exactly one gateway, see [`crate::ring::queue`]) and the
/// others are broadcast topics (every subscriber sees every message). Any
/// domain can be routed to any kind with [`RouterConfig::route`].
///
/// # Examples
///
/// ```
/// use shmbus::record::DomainTopic;
/// use shmbus::{QueueConfig, RingConfig, RouterConfig, TopicConfig};
///
/// let config = RouterConfig::new(TopicConfig::default(), QueueConfig::default())
///     .route(DomainTopic::System, QueueConfig { slots: 64, ..QueueConfig::default() });
/// assert!(matches!(config.ring(DomainTopic::Execution), RingConfig::Queue(_)));
/// assert!(matches!(config.ring(DomainTopic::MarketData), RingConfig::Broadcast(_)));
/// assert!(matches!(config.ring(DomainTopic::System), RingConfig::Queue(q) if q.slots == 64));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Indexed as [`record::DomainTopic::ALL`].
    rings: [RingConfig; 4],
}

impl RouterConfig {
    /// `execution` a work queue of `queue`, every other domain a topic of
    /// `topic`.
    pub fn new(topic: TopicConfig, queue: QueueConfig) -> RouterConfig {
        let rings = record::DomainTopic::ALL.map(|domain| match domain {
            record::DomainTopic::Execution => RingConfig::Queue(queue),
            _ => RingConfig::Broadcast(topic),
        });
        RouterConfig { rings }
    }

    /// This configuration with `domain`'s messages going to a ring of
    /// `ring`'s kind and configuration.
    #[must_use]
    pub fn route(mut self, domain: record::DomainTopic, ring: impl Into<RingConfig>) -> Self {
        self.rings[domain_index(domain)] = ring.into();
        self
    }

    /// The ring `domain`'s messages go to.
    pub fn ring(&self, domain: record::DomainTopic) -> &RingConfig {
        &self.rings[domain_index(domain)]
    }
}

impl Default for RouterConfig {
    /// `execution` a work queue, the other domains topics, each with its
    /// kind's default configuration.
    fn default() -> Self {
        RouterConfig::new(TopicConfig::default(), QueueConfig::default())
    }
}

/// The position of `domain` in [`record::DomainTopic::ALL`].
fn domain_index(domain: record::DomainTopic) -> usize {
    match domain {
        record::DomainTopic::MarketData => 0,
        record::DomainTopic::Signals => 1,
        record::DomainTopic::Execution => 2,
        record::DomainTopic::System => 3,
    }
}

/// Sends Protocol V2 messages to the ring named by their relay domain
/// (`market_data`, `signals`, `execution`, `system`), of the kind its
/// [`RouterConfig`] gives.
///
/// # Examples
///
/// ```
/// use shmbus::record::{Checksum, MessageBuilder, RelayDomain, SourceType};
/// use shmbus::{Bus, QueueConfig, RouterConfig, StartAt, TopicConfig, WaitStrategy};
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// let bus = Bus::at(&tmp, "desk")?;
/// let signals = bus.topic("signals", &TopicConfig::default())?;
/// let mut sub = signals.subscriber(StartAt::Tail)?;
/// let orders = bus.queue("execution", &QueueConfig::default())?;
/// let mut gateway = orders.consumer()?;
/// let mut router = bus.router(RouterConfig::default());
///
/// let mut buf = [0u8; 64];
/// let len = MessageBuilder::new(&mut buf, RelayDomain::Signal, SourceType::BinanceCollector)
///     .finish(Checksum::Zero)?;
/// router.send_blocking(&buf[..len], WaitStrategy::BusySpin)?;    // to the "signals" topic
/// assert_eq!(&sub.try_read()?[..], &buf[..len]);
///
/// let len = MessageBuilder::new(&mut buf, RelayDomain::Execution, SourceType::ExecutionEngine)
///     .finish(Checksum::Zero)?;
/// router.send_blocking(&buf[..len], WaitStrategy::BusySpin)?;    // to the "execution" queue
/// let order = gateway.try_take()?;
/// assert_eq!(&order[..], &buf[..len]);
/// order.ack()?;
/// # drop((router, sub, signals, gateway, orders));
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Router<'a> {
    bus: &'a Bus,
    config: RouterConfig,
    /// Indexed as [`record::DomainTopic::ALL`], attached at the domain's
    /// first message.
    senders: [Option<Sender>; 4],
}

/// A router's handle on one domain's ring.
enum Sender {
    Topic(Publisher),
    Queue(QueueProducer),
    Channel(Producer),
}

impl Router<'_> {
    /// Routes `message` by its relay domain and sends it on that domain's
    /// ring without waiting. The record type is the domain number. Returns
    /// the domain it went to.
    ///
    /// # Errors
    ///
    /// [`BusError::Claim`] with [`ClaimError::Full`] if the ring has no room
    /// now, or as [`Router::send_timeout`].
    pub fn try_send(&mut self, message: &[u8]) -> Result<record::DomainTopic, BusError> {
        self.route_and_send(message, |sender, record_type| match sender {
            Sender::Topic(p) => p.try_send(record_type, message).map(drop),
            Sender::Queue(p) => p.try_send(record_type, message).map(drop),
            Sender::Channel(p) => p.try_send(record_type, message),
        })
    }

    /// As [`Router::try_send`], waiting with `wait` while the ring is full.
    ///
    /// # Errors
    ///
    /// As [`Router::send_timeout`], never `TimedOut`.
    pub fn send_blocking(
        &mut self,
        message: &[u8],
        wait: WaitStrategy,
    ) -> Result<record::DomainTopic, BusError> {
        self.send_timeout(message, wait, Duration::MAX)
    }

    /// As [`Router::try_send`], waiting with `wait` up to `timeout` while
    /// the ring is full.
    ///
    /// # Errors
    ///
    /// [`BusError::Route`] if the message is too short or its domain is not
    /// one of the four; the ring cannot be created or opened (a ring of the
    /// name of another kind is [`DirectoryError::KindMismatch`], of
    /// another configuration [`DirectoryError::ConfigMismatch`], each
    /// naming both); a producer cannot attach (an SPSC channel's producer
    /// is already attached); sending failed ([`BusError::Claim`]:
    /// `TimedOut`, or `CannotSleep` for `WaitStrategy::Blocking`, which
    /// cannot sleep waiting for room).
    pub fn send_timeout(
        &mut self,
        message: &[u8],
        wait: WaitStrategy,
        timeout: Duration,
    ) -> Result<record::DomainTopic, BusError> {
        self.route_and_send(message, |sender, record_type| match sender {
            Sender::Topic(p) => p
                .send_timeout(record_type, message, wait, timeout)
                .map(drop),
            Sender::Queue(p) => p
                .send_timeout(record_type, message, wait, timeout)
                .map(drop),
            Sender::Channel(p) => p.send_timeout(record_type, message, wait, timeout),
        })
    }

    /// Routes `message`, attaches a sender to its domain's ring the first
    /// time, and sends with `send`.
    fn route_and_send(
        &mut self,
        message: &[u8],
        send: impl FnOnce(&mut Sender, u16) -> Result<(), ClaimError>,
    ) -> Result<record::DomainTopic, BusError> {
        let domain = record::route(message).map_err(BusError::Route)?;
        let i = domain_index(domain);
        let record_type = u16::from(domain.domain() as u8);
        let sender = match &mut self.senders[i] {
            Some(sender) => sender,
            slot => slot.insert(attach(self.bus, domain.name(), self.config.ring(domain))?),
        };
        send(sender, record_type)?;
        Ok(domain)
    }
}

/// Creates or opens ring `name` of `config` and attaches a sender to it.
fn attach(bus: &Bus, name: &str, config: &RingConfig) -> Result<Sender, BusError> {
    Ok(match config {
        RingConfig::Broadcast(c) => Sender::Topic(bus.topic(name, c)?.publisher()?),
        RingConfig::Queue(c) => Sender::Queue(bus.queue(name, c)?.producer()?),
        RingConfig::Spsc(c) => Sender::Channel(bus.spsc(name, c)?.producer()?),
    })
}
