//! The bus and the rings in it: open a namespace, create or open topics,
//! channels and queues by name, remove them.

use std::ffi::c_char;
use std::time::Duration;

use shmbus::{Bus, Channel, Policy, Queue, QueueConfig, SpscConfig, Topic, TopicConfig};

use crate::error::{guard, guard_void, shmbus_status, Failure};
use crate::handle::{free, hand_out, handle_ref, text};

/// A bus: a namespace directory and its directory of rings. Open with
/// `shmbus_bus_open` or `shmbus_bus_open_at`, free with `shmbus_bus_free`.
pub struct shmbus_bus(pub(crate) Bus);

/// A topic (a broadcast log): any number of publishers and subscribers.
pub struct shmbus_topic(pub(crate) Topic);

/// An SPSC channel: one producer, one consumer.
pub struct shmbus_channel(pub(crate) Channel);

/// A work queue: many producers, many consumers, each record to one
/// consumer.
pub struct shmbus_queue(pub(crate) Queue);

/// What a topic does when its slowest subscriber is a whole log behind.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_policy {
    /// Publishers wait: no subscriber ever misses a record.
    Backpressure = 0,
    /// Publishers overwrite: a lapped subscriber is told how many it missed.
    Overwrite = 1,
}

/// A topic's configuration (Rust's `TopicConfig`). Start from
/// `shmbus_topic_config_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_topic_config {
    /// Record slots: a power of two.
    pub slots: u32,
    /// Largest payload of one record, 1..=1 MiB.
    pub max_payload: u32,
    /// A `shmbus_policy` value.
    pub policy: u32,
    /// Subscriber slots, 1..=4096.
    pub max_subscribers: u32,
    /// Publisher slots, 1..=1024.
    pub max_publishers: u32,
    /// How long a claim may stay uncommitted before a waiter reclaims it.
    pub reclaim_after_ns: u64,
}

/// A channel's configuration (Rust's `SpscConfig`). Start from
/// `shmbus_spsc_config_with_capacity()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_spsc_config {
    /// Bytes in the ring: a power of two.
    pub capacity: u64,
    /// Largest payload of one record; 0 for the most the capacity allows.
    pub max_payload: u32,
    /// Whether a consumer may wait with `SHMBUS_WAIT_KIND_BLOCKING` (costs the
    /// producer a fence per record).
    pub wakeups: bool,
}

/// A work queue's configuration (Rust's `QueueConfig`). Start from
/// `shmbus_queue_config_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_queue_config {
    /// Record slots: a power of two, at least 2.
    pub slots: u32,
    /// Largest payload of one record, 1..=1 MiB.
    pub max_payload: u32,
    /// Producer slots, 1..=64.
    pub max_producers: u32,
    /// Consumer slots, 1..=64.
    pub max_consumers: u32,
    /// How long a claim may stay uncommitted before a consumer reclaims it.
    pub reclaim_after_ns: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn invalid(message: &'static std::ffi::CStr) -> Failure {
    Failure::fixed(shmbus_status::InvalidArgument, message)
}

impl shmbus_topic_config {
    fn to_rust(self) -> Result<TopicConfig, Failure> {
        let policy = match self.policy {
            p if p == shmbus_policy::Backpressure as u32 => Policy::Backpressure,
            p if p == shmbus_policy::Overwrite as u32 => Policy::Overwrite,
            _ => return Err(invalid(c"unknown shmbus_policy value")),
        };
        Ok(TopicConfig {
            slots: self.slots,
            max_payload: self.max_payload,
            policy,
            max_subscribers: self.max_subscribers,
            max_publishers: self.max_publishers,
            reclaim_after: Duration::from_nanos(self.reclaim_after_ns),
        })
    }
}

impl shmbus_spsc_config {
    fn to_rust(self) -> Result<SpscConfig, Failure> {
        let capacity = usize::try_from(self.capacity)
            .map_err(|_| invalid(c"channel capacity does not fit this address space"))?;
        Ok(SpscConfig {
            capacity,
            max_payload: (self.max_payload != 0).then_some(self.max_payload),
            wakeups: self.wakeups,
        })
    }
}

impl shmbus_queue_config {
    fn to_rust(self) -> QueueConfig {
        QueueConfig {
            slots: self.slots,
            max_payload: self.max_payload,
            max_producers: self.max_producers,
            max_consumers: self.max_consumers,
            reclaim_after: Duration::from_nanos(self.reclaim_after_ns),
        }
    }
}

/// The default topic configuration: 4096 slots of 240 bytes, back-pressure,
/// 64 subscribers, 16 publishers, claims reclaimed after 2 s.
#[no_mangle]
pub extern "C" fn shmbus_topic_config_default() -> shmbus_topic_config {
    let d = TopicConfig::default();
    shmbus_topic_config {
        slots: d.slots,
        max_payload: d.max_payload,
        policy: match d.policy {
            Policy::Backpressure => shmbus_policy::Backpressure as u32,
            Policy::Overwrite => shmbus_policy::Overwrite as u32,
        },
        max_subscribers: d.max_subscribers,
        max_publishers: d.max_publishers,
        reclaim_after_ns: nanos(d.reclaim_after),
    }
}

/// A channel of `capacity` bytes, the largest payload it allows and no
/// wake-ups.
#[no_mangle]
pub extern "C" fn shmbus_spsc_config_with_capacity(capacity: u64) -> shmbus_spsc_config {
    shmbus_spsc_config {
        capacity,
        max_payload: 0,
        wakeups: false,
    }
}

/// The default queue configuration: 4096 slots of 240 bytes, 16 producers,
/// 16 consumers, claims reclaimed after 2 s.
#[no_mangle]
pub extern "C" fn shmbus_queue_config_default() -> shmbus_queue_config {
    let d = QueueConfig::default();
    shmbus_queue_config {
        slots: d.slots,
        max_payload: d.max_payload,
        max_producers: d.max_producers,
        max_consumers: d.max_consumers,
        reclaim_after_ns: nanos(d.reclaim_after),
    }
}

/// Opens the bus of `ns` under `$SHMBUS_DIR`, or `/dev/shm/shmbus-<uid>`.
///
/// # Safety
///
/// `ns` is a NUL-terminated string; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open(
    ns: *const c_char,
    out: *mut *mut shmbus_bus,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let ns = unsafe { text(ns) }?;
        let bus = Bus::open(ns)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_bus(bus)) }
    })
}

/// Opens the bus of `ns` under the base directory `base` (created 0700 if
/// need be).
///
/// # Safety
///
/// `base` and `ns` are NUL-terminated strings; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open_at(
    base: *const c_char,
    ns: *const c_char,
    out: *mut *mut shmbus_bus,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (base, ns) = unsafe { (text(base)?, text(ns)?) };
        let bus = Bus::at(base, ns)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_bus(bus)) }
    })
}

/// Frees a bus handle (NULL is a no-op). Rings opened from it stay usable.
/// If it was the namespace's last user and every ring in it was removed,
/// the namespace directory is removed too.
///
/// # Safety
///
/// `bus` came from `shmbus_bus_open*` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_free(bus: *mut shmbus_bus) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(bus) })
}

/// Creates the topic `name` with `config`, or opens it if it exists with
/// the same configuration.
///
/// # Safety
///
/// `bus` is a live bus handle, `name` a NUL-terminated string, `config`
/// valid for a read, `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_topic(
    bus: *const shmbus_bus,
    name: *const c_char,
    config: *const shmbus_topic_config,
    out: *mut *mut shmbus_topic,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name, config) = unsafe {
            (
                handle_ref(bus, c"the bus handle is NULL")?,
                text(name)?,
                handle_ref(config, c"the topic config is NULL")?,
            )
        };
        let topic = bus.0.topic(name, &config.to_rust()?)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_topic(topic)) }
    })
}

/// Opens the existing topic `name` with the configuration it was made
/// with, waiting up to `timeout_ns` for it to be created (0: not at all).
///
/// # Safety
///
/// As `shmbus_bus_topic`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open_topic(
    bus: *const shmbus_bus,
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut shmbus_topic,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name) = unsafe { (handle_ref(bus, c"the bus handle is NULL")?, text(name)?) };
        let topic = match timeout_ns {
            0 => bus.0.open_topic(name)?,
            t => bus.0.open_topic_timeout(name, Duration::from_nanos(t))?,
        };
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_topic(topic)) }
    })
}

/// Creates the SPSC channel `name` with `config`, or opens it if it exists
/// with the same configuration.
///
/// # Safety
///
/// As `shmbus_bus_topic`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_spsc(
    bus: *const shmbus_bus,
    name: *const c_char,
    config: *const shmbus_spsc_config,
    out: *mut *mut shmbus_channel,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name, config) = unsafe {
            (
                handle_ref(bus, c"the bus handle is NULL")?,
                text(name)?,
                handle_ref(config, c"the channel config is NULL")?,
            )
        };
        let channel = bus.0.spsc(name, &config.to_rust()?)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_channel(channel)) }
    })
}

/// Opens the existing SPSC channel `name`, waiting up to `timeout_ns` for
/// it to be created (0: not at all).
///
/// # Safety
///
/// As `shmbus_bus_topic`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open_spsc(
    bus: *const shmbus_bus,
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut shmbus_channel,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name) = unsafe { (handle_ref(bus, c"the bus handle is NULL")?, text(name)?) };
        let channel = match timeout_ns {
            0 => bus.0.open_spsc(name)?,
            t => bus.0.open_spsc_timeout(name, Duration::from_nanos(t))?,
        };
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_channel(channel)) }
    })
}

/// Creates the work queue `name` with `config`, or opens it if it exists
/// with the same configuration.
///
/// # Safety
///
/// As `shmbus_bus_topic`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_queue(
    bus: *const shmbus_bus,
    name: *const c_char,
    config: *const shmbus_queue_config,
    out: *mut *mut shmbus_queue,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name, config) = unsafe {
            (
                handle_ref(bus, c"the bus handle is NULL")?,
                text(name)?,
                handle_ref(config, c"the queue config is NULL")?,
            )
        };
        let queue = bus.0.queue(name, &config.to_rust())?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_queue(queue)) }
    })
}

/// Opens the existing work queue `name`, waiting up to `timeout_ns` for it
/// to be created (0: not at all).
///
/// # Safety
///
/// As `shmbus_bus_topic`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open_queue(
    bus: *const shmbus_bus,
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut shmbus_queue,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (bus, name) = unsafe { (handle_ref(bus, c"the bus handle is NULL")?, text(name)?) };
        let queue = match timeout_ns {
            0 => bus.0.open_queue(name)?,
            t => bus.0.open_queue_timeout(name, Duration::from_nanos(t))?,
        };
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_queue(queue)) }
    })
}

/// Frees a topic handle (NULL is a no-op). Its publishers and subscribers
/// stay usable.
///
/// # Safety
///
/// `topic` came from `shmbus_bus_topic` or `shmbus_bus_open_topic` and is
/// not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_free(topic: *mut shmbus_topic) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(topic) })
}

/// Frees a channel handle (NULL is a no-op). Its producer and consumer stay
/// usable.
///
/// # Safety
///
/// As `shmbus_topic_free`, for a channel.
#[no_mangle]
pub unsafe extern "C" fn shmbus_channel_free(channel: *mut shmbus_channel) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(channel) })
}

/// Frees a queue handle (NULL is a no-op). Its producers and consumers stay
/// usable.
///
/// # Safety
///
/// As `shmbus_topic_free`, for a queue.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_free(queue: *mut shmbus_queue) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(queue) })
}

/// Removes the topic from the namespace: its file and directory entry go;
/// handles still open on it see `SHMBUS_STATUS_UNUSABLE`.
///
/// # Safety
///
/// `topic` is a live topic handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_remove(topic: *const shmbus_topic) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let ring = unsafe { handle_ref(topic, c"the topic handle is NULL") }?;
        Ok(ring.0.remove()?)
    })
}

/// Removes the channel from the namespace (as `shmbus_topic_remove`).
///
/// # Safety
///
/// `channel` is a live channel handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_channel_remove(channel: *const shmbus_channel) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let ring = unsafe { handle_ref(channel, c"the channel handle is NULL") }?;
        Ok(ring.0.remove()?)
    })
}

/// Removes the queue from the namespace (as `shmbus_topic_remove`).
///
/// # Safety
///
/// `queue` is a live queue handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_remove(queue: *const shmbus_queue) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let ring = unsafe { handle_ref(queue, c"the queue handle is NULL") }?;
        Ok(ring.0.remove()?)
    })
}
