//! The public API: a bus is a namespace with its topic directory; a topic is
//! a broadcast log found by name; publishers and subscribers attach to it.
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
//! feed.publish_blocking(1, b"BTC 42000.5", WaitStrategy::BusySpin)?;
//!
//! let rec = strategy.read_blocking(WaitStrategy::BLOCKING)?;
//! assert_eq!(&rec[..], b"BTC 42000.5");
//! # drop(rec); drop(strategy); drop(feed); drop(md); drop(bus);
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::ptr::NonNull;
use std::path::Path;
use std::sync::Arc;

use crate::directory::{Directory, DirectoryError, TopicRecord};
use crate::layout::{
    broadcast_offsets, BroadcastControl, PublisherSlot, SegmentKind, SubscriberSlot,
    BROADCAST_CONTROL_OFFSET, BROADCAST_SUBSCRIBERS_OFFSET, CACHE_LINE, SLOT_HEADER_LEN,
};
use crate::record;
use crate::ring::broadcast::{
    BroadcastView, ClaimError, Liveness, Publisher, RegisterError, Subscriber, ViewParts,
};
use crate::ring::region::NO_TRACKING;
use crate::segment::{Namespace, OpenOptions, Segment, SegmentError};
use crate::wait::WaitStrategy;

pub use crate::ring::broadcast::{
    BroadcastConfig as TopicConfig, Claim, Policy, Record, RecvError, StartAt,
};

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
    /// Publishing failed.
    Claim(ClaimError),
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Directory(e) => e.fmt(f),
            BusError::Segment(e) => e.fmt(f),
            BusError::Register(e) => e.fmt(f),
            BusError::Route(e) => write!(f, "cannot route message: {e}"),
            BusError::Claim(e) => e.fmt(f),
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
impl From<ClaimError> for BusError {
    fn from(e: ClaimError) -> Self {
        BusError::Claim(e)
    }
}

/// A namespace and its topic directory.
pub struct Bus {
    ns: Arc<Namespace>,
    directory: Directory,
}

impl Bus {
    /// Opens the bus of `namespace` under `$SHMBUS_DIR` or `/dev/shm/shmbus-<uid>`,
    /// creating the namespace and its directory if needed.
    ///
    /// # Errors
    ///
    /// The namespace or directory cannot be created, opened or validated.
    pub fn open(namespace: &str) -> Result<Bus, BusError> {
        Self::with_namespace(Namespace::open(namespace)?)
    }

    /// Opens the bus of `namespace` under `base`.
    ///
    /// # Errors
    ///
    /// As [`Bus::open`].
    pub fn at(base: impl AsRef<Path>, namespace: &str) -> Result<Bus, BusError> {
        Self::with_namespace(Namespace::at(base, namespace)?)
    }

    fn with_namespace(ns: Namespace) -> Result<Bus, BusError> {
        let directory = Directory::open_or_create(&ns)?;
        Ok(Bus {
            ns: Arc::new(ns),
            directory,
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Creates topic `name` with `config`, or opens it if it exists with the
    /// same configuration. Many processes may race to do this; exactly one
    /// creates it.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::ConfigMismatch`] naming both configurations, a full
    /// directory, an invalid name or configuration.
    pub fn topic(&self, name: &str, config: &TopicConfig) -> Result<Topic, BusError> {
        let (record, created) = self.directory.create_or_open(&self.ns, name, config)?;
        Ok(Topic {
            ns: self.ns.clone(),
            directory: self.directory.segment_handle(),
            record,
            created,
        })
    }

    /// Opens existing topic `name`, whatever its configuration.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::NotFound`].
    pub fn open_topic(&self, name: &str) -> Result<Topic, BusError> {
        let record = self.directory.open(&self.ns, name)?;
        Ok(Topic {
            ns: self.ns.clone(),
            directory: self.directory.segment_handle(),
            record,
            created: false,
        })
    }

    /// Every topic in the namespace.
    pub fn topics(&self) -> Vec<TopicRecord> {
        self.directory.list()
    }

    /// A router that publishes Protocol V2 messages on the topic their
    /// relay domain names, creating those topics with `config` if needed.
    pub fn router(&self, config: TopicConfig) -> Router<'_> {
        Router {
            bus: self,
            config,
            publishers: Default::default(),
        }
    }
}

/// A topic: a named broadcast log.
pub struct Topic {
    ns: Arc<Namespace>,
    /// The directory that named it: removing it detaches the topic too.
    directory: Arc<Segment>,
    record: TopicRecord,
    created: bool,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Its configuration.
    pub fn config(&self) -> &TopicConfig {
        &self.record.config
    }

    /// Whether this handle's [`Bus::topic`] call created it.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The directory's record of it.
    pub fn record(&self) -> &TopicRecord {
        &self.record
    }

    fn view(&self) -> Result<BroadcastView, BusError> {
        let segment = Segment::open(
            &self.ns,
            &self.record.segment,
            SegmentKind::Broadcast,
            &OpenOptions::default(),
        )?;
        map_log(segment, self.directory.clone(), &self.record.config)
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
}

/// Publishes Protocol V2 messages on the topic named by their relay domain
/// (`market_data`, `signals`, `execution`, `system`).
pub struct Router<'a> {
    bus: &'a Bus,
    config: TopicConfig,
    publishers: [Option<Publisher>; 4],
}

impl Router<'_> {
    /// Routes `message` by its relay domain and publishes it, waiting with
    /// `wait` if the topic is full. The record type is the domain number.
    /// Returns the topic it went to.
    ///
    /// # Errors
    ///
    /// [`BusError::Route`] if the message is too short or its domain is not
    /// one of the four; topic and publisher errors.
    pub fn publish(
        &mut self,
        message: &[u8],
        wait: WaitStrategy,
    ) -> Result<record::Topic, BusError> {
        let topic = record::route(message).map_err(BusError::Route)?;
        let i = record::Topic::ALL
            .iter()
            .position(|t| *t == topic)
            .unwrap_or(0);
        if self.publishers[i].is_none() {
            let t = self.bus.topic(topic.name(), &self.config)?;
            self.publishers[i] = Some(t.publisher()?);
        }
        if let Some(p) = self.publishers[i].as_mut() {
            p.publish_blocking(u16::from(topic.domain() as u8), message, wait)?;
        }
        Ok(topic)
    }
}

/// Creates the broadcast log segment `name` for `config`.
pub(crate) fn create_log(
    ns: &Namespace,
    name: &str,
    config: &TopicConfig,
) -> Result<(), DirectoryError> {
    let stride = config.slot_stride();
    let (_, _, size) = broadcast_offsets(
        config.max_subscribers as usize,
        config.max_publishers as usize,
        config.slots as usize,
        stride,
    );
    Segment::create(ns, name, SegmentKind::Broadcast, size, |after_header, _| {
        let control = after_header as *mut BroadcastControl;
        // SAFETY: the control block lies right after the header in a fresh
        // mapping of `size` bytes nobody else can use yet; the slot arrays
        // that follow are valid all-zero (FREE, never used).
        unsafe { control.write(BroadcastControl::new(config)) };
    })?;
    Ok(())
}

/// Where the parts of a validated broadcast segment lie.
pub(crate) struct LogLayout {
    /// Record slots.
    pub(crate) slots: u64,
    /// Bytes per record slot.
    pub(crate) stride: usize,
    /// Largest payload.
    pub(crate) max_payload: u32,
    /// Claim timeout the creator stored.
    pub(crate) claim_timeout_ns: u64,
    /// Offset of the publisher slots.
    pub(crate) publishers: usize,
    /// Offset of the record slots.
    pub(crate) records: usize,
}

/// Checks a mapped broadcast log against the directory's configuration
/// (hostile input: every field is read once and compared; the directory's
/// configuration passed `validate`, so offsets computed from it cannot
/// overflow).
pub(crate) fn check_log(
    segment: &Segment,
    config: &TopicConfig,
) -> Result<LogLayout, SegmentError> {
    let corrupt = |reason: String| SegmentError::Corrupt {
        path: segment.path().to_owned(),
        reason,
    };
    if segment.len() < BROADCAST_SUBSCRIBERS_OFFSET {
        return Err(corrupt(format!(
            "{} bytes cannot hold a broadcast control block",
            segment.len()
        )));
    }
    // SAFETY: the segment holds at least the control block (checked above),
    // 128-aligned in a page-aligned mapping; its immutable fields are read
    // once into locals below.
    let ctl =
        unsafe { &*(segment.base().add(BROADCAST_CONTROL_OFFSET) as *const BroadcastControl) };
    let stride = config.slot_stride();
    let disagree = [
        ("slots", ctl.slots, u64::from(config.slots)),
        ("slot stride", u64::from(ctl.slot_stride), stride as u64),
        (
            "max payload",
            u64::from(ctl.max_payload),
            u64::from(config.max_payload),
        ),
        (
            "policy",
            u64::from(ctl.policy),
            u64::from(config.policy.to_raw()),
        ),
        (
            "max subscribers",
            u64::from(ctl.max_subscribers),
            u64::from(config.max_subscribers),
        ),
        (
            "max publishers",
            u64::from(ctl.max_publishers),
            u64::from(config.max_publishers),
        ),
        (
            "claim timeout (ns)",
            ctl.claim_timeout_ns,
            config.claim_timeout.as_nanos().min(u128::from(u64::MAX)) as u64,
        ),
    ]
    .into_iter()
    .find(|(_, found, expected)| found != expected);
    if let Some((field, found, expected)) = disagree {
        return Err(corrupt(format!(
            "its control block says {field} {found} but the topic directory says {expected}"
        )));
    }
    let (publishers, records, size) = broadcast_offsets(
        config.max_subscribers as usize,
        config.max_publishers as usize,
        config.slots as usize,
        stride,
    );
    if segment.len() != size {
        return Err(corrupt(format!(
            "{} bytes, but its configuration needs {size}",
            segment.len()
        )));
    }
    debug_assert!(publishers % CACHE_LINE == 0 && records % CACHE_LINE == 0);
    Ok(LogLayout {
        slots: u64::from(config.slots),
        stride,
        max_payload: config.max_payload,
        claim_timeout_ns: ctl.claim_timeout_ns,
        publishers,
        records,
    })
}

/// Validates a mapped log against the directory's configuration and builds
/// the view the ring code runs on.
fn map_log(
    segment: Segment,
    directory: Arc<Segment>,
    config: &TopicConfig,
) -> Result<BroadcastView, BusError> {
    let LogLayout {
        stride,
        claim_timeout_ns,
        publishers,
        records,
        ..
    } = check_log(&segment, config)?;
    let base = segment.base();
    let config = TopicConfig {
        claim_timeout: std::time::Duration::from_nanos(claim_timeout_ns),
        ..*config
    };
    // SAFETY: the offsets come from `broadcast_offsets` for a segment whose
    // size was just checked to match; every part is 64-byte aligned (the
    // mapping is page-aligned and strides are multiples of 64), and the
    // segment moves into `liveness`, which the view keeps.
    let parts = unsafe {
        ViewParts {
            control: NonNull::new_unchecked(
                base.add(BROADCAST_CONTROL_OFFSET) as *mut BroadcastControl
            ),
            subscribers: NonNull::new_unchecked(
                base.add(BROADCAST_SUBSCRIBERS_OFFSET) as *mut SubscriberSlot
            ),
            publishers: NonNull::new_unchecked(base.add(publishers) as *mut PublisherSlot),
            headers: base.add(records),
            header_stride: stride,
            payloads: base.add(records + SLOT_HEADER_LEN),
            payload_stride: stride,
            tracker: &NO_TRACKING,
            config,
            liveness: Liveness::Mapped {
                log: segment,
                directory,
            },
        }
    };
    // SAFETY: see above.
    Ok(unsafe { BroadcastView::new(parts) })
}
