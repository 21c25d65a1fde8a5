//! The Python classes of a bus and its rings: `Bus` (a namespace and its
//! directory), `Topic`, `Channel` (SPSC) and `Queue` (work queue), which
//! attach the handles that write and read.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmbus::{BusError, Policy, QueueConfig, SpscConfig, StartAt, TopicConfig};

use crate::endpoints::{
    timeout, Consumer, Producer, Publisher, QueueConsumer, QueueProducer, Subscriber,
};
use crate::errors::{bus_error, Closed};
use crate::lender::SameThread;

fn policy(name: Option<&str>, default: Policy) -> PyResult<Policy> {
    match name {
        None => Ok(default),
        Some("backpressure") => Ok(Policy::Backpressure),
        Some("overwrite") => Ok(Policy::Overwrite),
        Some(other) => Err(PyValueError::new_err(format!(
            "policy {other:?} is neither 'backpressure' nor 'overwrite'"
        ))),
    }
}

fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Backpressure => "backpressure",
        Policy::Overwrite => "overwrite",
    }
}

fn start_at(name: &str) -> PyResult<StartAt> {
    match name {
        "tail" => Ok(StartAt::Tail),
        "oldest" => Ok(StartAt::Oldest),
        other => Err(PyValueError::new_err(format!(
            "start {other:?} is neither 'tail' nor 'oldest'"
        ))),
    }
}

/// A duration in seconds, for a configuration (`None`: `default`).
fn seconds(value: Option<f64>, default: Duration) -> PyResult<Duration> {
    match value {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| PyValueError::new_err(format!("{s} is not a number of seconds"))),
    }
}

/// Runs a blocking bus call with the GIL released.
fn detached<T>(py: Python<'_>, call: impl FnOnce() -> Result<T, BusError>) -> PyResult<T> {
    let call = SameThread(call);
    py.allow_threads(move || SameThread(call.into_inner()()))
        .into_inner()
        .map_err(bus_error)
}

/// A namespace (a directory under `/dev/shm/shmbus-<uid>`, or `base`, or
/// `$SHMBUS_DIR`) and its directory of rings: topics, SPSC channels and
/// work queues, each found or created by name.
///
/// `Bus("prod")` opens (or creates) namespace `prod`; `Bus("t", base=dir)`
/// puts it under `dir`. As a context manager it is closed at the end of
/// the block: the last bus of a namespace whose rings were all removed
/// removes the namespace.
#[pyclass(unsendable, module = "shmbus._shmbus")]
pub struct Bus {
    inner: Option<shmbus::Bus>,
}

impl Bus {
    fn bus(&self) -> PyResult<&shmbus::Bus> {
        self.inner
            .as_ref()
            .ok_or_else(|| Closed::new_err("bus is closed"))
    }
}

#[pymethods]
impl Bus {
    #[new]
    #[pyo3(signature = (namespace = shmbus::segment::DEFAULT_NAMESPACE, base = None))]
    fn new(namespace: &str, base: Option<PathBuf>) -> PyResult<Self> {
        let bus = match base {
            Some(base) => shmbus::Bus::at(base, namespace),
            None => shmbus::Bus::open(namespace),
        }
        .map_err(bus_error)?;
        Ok(Bus { inner: Some(bus) })
    }

    /// The namespace's name.
    #[getter]
    fn namespace(&self) -> PyResult<String> {
        Ok(self.bus()?.namespace().name().to_owned())
    }

    /// The namespace's directory on disk.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.bus()?.namespace().path().to_path_buf())
    }

    /// Creates topic `name`, or opens it if it exists with the same
    /// configuration (`ConfigError` otherwise). Unset settings take the
    /// Rust defaults: 65536 slots... see `TopicConfig`.
    #[pyo3(signature = (name, *, slots = None, max_payload = None, policy = None,
                        max_subscribers = None, max_publishers = None, reclaim_after = None))]
    #[allow(clippy::too_many_arguments)]
    fn topic(
        &self,
        name: &str,
        slots: Option<u32>,
        max_payload: Option<u32>,
        policy: Option<&str>,
        max_subscribers: Option<u32>,
        max_publishers: Option<u32>,
        reclaim_after: Option<f64>,
    ) -> PyResult<Topic> {
        let d = TopicConfig::default();
        let config = TopicConfig {
            slots: slots.unwrap_or(d.slots),
            max_payload: max_payload.unwrap_or(d.max_payload),
            policy: self::policy(policy, d.policy)?,
            max_subscribers: max_subscribers.unwrap_or(d.max_subscribers),
            max_publishers: max_publishers.unwrap_or(d.max_publishers),
            reclaim_after: seconds(reclaim_after, d.reclaim_after)?,
        };
        let inner = self.bus()?.topic(name, &config).map_err(bus_error)?;
        Ok(Topic { inner })
    }

    /// Opens topic `name` whatever its configuration; with `timeout`,
    /// waits that many seconds for it to be created (GIL released).
    #[pyo3(signature = (name, timeout = None))]
    fn open_topic(&self, py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Topic> {
        let bus = self.bus()?;
        let inner = match self::timeout(timeout)? {
            None => bus.open_topic(name).map_err(bus_error)?,
            Some(t) => detached(py, || bus.open_topic_timeout(name, t))?,
        };
        Ok(Topic { inner })
    }

    /// Creates SPSC channel `name` of `capacity` bytes (a power of two),
    /// or opens it if it exists with the same configuration. `wakeups`
    /// lets its consumer sleep (`wait="blocking"`) at a small cost to the
    /// producer.
    #[pyo3(signature = (name, capacity, *, max_payload = None, wakeups = false))]
    fn spsc(
        &self,
        name: &str,
        capacity: usize,
        max_payload: Option<u32>,
        wakeups: bool,
    ) -> PyResult<Channel> {
        let config = SpscConfig {
            capacity,
            max_payload,
            wakeups,
        };
        let inner = self.bus()?.spsc(name, &config).map_err(bus_error)?;
        Ok(Channel { inner })
    }

    /// Opens SPSC channel `name` whatever its configuration; with
    /// `timeout`, waits that many seconds for it to be created.
    #[pyo3(signature = (name, timeout = None))]
    fn open_spsc(&self, py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Channel> {
        let bus = self.bus()?;
        let inner = match self::timeout(timeout)? {
            None => bus.open_spsc(name).map_err(bus_error)?,
            Some(t) => detached(py, || bus.open_spsc_timeout(name, t))?,
        };
        Ok(Channel { inner })
    }

    /// Creates work queue `name`, or opens it if it exists with the same
    /// configuration. Unset settings take the Rust defaults.
    #[pyo3(signature = (name, *, slots = None, max_payload = None, max_producers = None,
                        max_consumers = None, reclaim_after = None))]
    fn queue(
        &self,
        name: &str,
        slots: Option<u32>,
        max_payload: Option<u32>,
        max_producers: Option<u32>,
        max_consumers: Option<u32>,
        reclaim_after: Option<f64>,
    ) -> PyResult<Queue> {
        let d = QueueConfig::default();
        let config = QueueConfig {
            slots: slots.unwrap_or(d.slots),
            max_payload: max_payload.unwrap_or(d.max_payload),
            max_producers: max_producers.unwrap_or(d.max_producers),
            max_consumers: max_consumers.unwrap_or(d.max_consumers),
            reclaim_after: seconds(reclaim_after, d.reclaim_after)?,
        };
        let inner = self.bus()?.queue(name, &config).map_err(bus_error)?;
        Ok(Queue { inner })
    }

    /// Opens work queue `name` whatever its configuration; with `timeout`,
    /// waits that many seconds for it to be created.
    #[pyo3(signature = (name, timeout = None))]
    fn open_queue(&self, py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Queue> {
        let bus = self.bus()?;
        let inner = match self::timeout(timeout)? {
            None => bus.open_queue(name).map_err(bus_error)?,
            Some(t) => detached(py, || bus.open_queue_timeout(name, t))?,
        };
        Ok(Queue { inner })
    }

    /// Removes topic `name` (its live handles find it removed).
    fn remove_topic(&self, name: &str) -> PyResult<()> {
        self.bus()?.remove_topic(name).map_err(bus_error)
    }

    /// Removes SPSC channel `name`.
    fn remove_spsc(&self, name: &str) -> PyResult<()> {
        self.bus()?.remove_spsc(name).map_err(bus_error)
    }

    /// Removes work queue `name`.
    fn remove_queue(&self, name: &str) -> PyResult<()> {
        self.bus()?.remove_queue(name).map_err(bus_error)
    }

    /// Drops the detached durable subscriber `subscriber` of `topic`.
    fn drop_durable(&self, topic: &str, subscriber: &str) -> PyResult<()> {
        self.bus()?
            .drop_durable(topic, subscriber)
            .map_err(bus_error)
    }

    /// Removes the whole namespace (`InUse` while a live process holds
    /// any of it).
    fn remove_namespace(&self) -> PyResult<()> {
        self.bus()?.remove_namespace().map_err(bus_error)
    }

    /// Every ring in the directory as `(name, kind)`, kind one of
    /// `"topic"`, `"spsc"`, `"queue"`.
    fn rings(&self) -> PyResult<Vec<(String, String)>> {
        Ok(self
            .bus()?
            .rings()
            .into_iter()
            .map(|r| (r.name.clone(), r.kind().to_string()))
            .collect())
    }

    /// Closes the bus (its rings' handles stay usable).
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _tb = None))]

    fn __exit__(
        &mut self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Some(bus) => format!("<shmbus.Bus {}>", bus.namespace().path().display()),
            None => "<shmbus.Bus closed>".to_owned(),
        }
    }
}

/// A broadcast log: publishers append, every subscriber reads every
/// record at its own pace.
#[pyclass(unsendable, module = "shmbus._shmbus")]
pub struct Topic {
    inner: shmbus::Topic,
}

#[pymethods]
impl Topic {
    /// The topic's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Whether this call created it.
    #[getter]
    fn was_created(&self) -> bool {
        self.inner.was_created()
    }

    /// Its ring file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// Its configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let d = PyDict::new(py);
        d.set_item("slots", c.slots)?;
        d.set_item("max_payload", c.max_payload)?;
        d.set_item("policy", policy_name(c.policy))?;
        d.set_item("max_subscribers", c.max_subscribers)?;
        d.set_item("max_publishers", c.max_publishers)?;
        d.set_item("reclaim_after", c.reclaim_after.as_secs_f64())?;
        Ok(d)
    }

    /// Attaches a publisher (`InUse` when every publisher slot is taken).
    fn publisher(&self) -> PyResult<Publisher> {
        Ok(Publisher::new(self.inner.publisher().map_err(bus_error)?))
    }

    /// Attaches a subscriber starting at `"tail"` (the next record
    /// published) or `"oldest"`.
    #[pyo3(signature = (start = "tail"))]
    fn subscriber(&self, start: &str) -> PyResult<Subscriber> {
        let sub = self.inner.subscriber(start_at(start)?).map_err(bus_error)?;
        Ok(Subscriber::new(sub))
    }

    /// Attaches durable subscriber `name`: it resumes where a previous
    /// holder of the name stopped (`start` applies to a new name).
    #[pyo3(signature = (name, start = "tail"))]
    fn durable_subscriber(&self, name: &str, start: &str) -> PyResult<Subscriber> {
        let sub = self
            .inner
            .durable_subscriber(name, start_at(start)?)
            .map_err(bus_error)?;
        Ok(Subscriber::new(sub))
    }

    /// Drops detached durable subscriber `name`.
    fn drop_durable(&self, name: &str) -> PyResult<()> {
        self.inner.drop_durable(name).map_err(bus_error)
    }

    /// Removes the topic (its live handles find it removed).
    fn remove(&self) -> PyResult<()> {
        self.inner.remove().map_err(bus_error)
    }

    fn __repr__(&self) -> String {
        format!("<shmbus.Topic {:?}>", self.inner.name())
    }
}

/// An SPSC channel: one producer, one consumer, variable-length records.
#[pyclass(unsendable, module = "shmbus._shmbus")]
pub struct Channel {
    inner: shmbus::Channel,
}

#[pymethods]
impl Channel {
    /// The channel's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Whether this call created it.
    #[getter]
    fn was_created(&self) -> bool {
        self.inner.was_created()
    }

    /// Its ring file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// Its configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let d = PyDict::new(py);
        d.set_item("capacity", c.capacity)?;
        d.set_item("max_payload", c.max_payload)?;
        d.set_item("wakeups", c.wakeups)?;
        Ok(d)
    }

    /// Attaches the producer (`InUse` while another lives).
    fn producer(&self) -> PyResult<Producer> {
        Ok(Producer::new(self.inner.producer().map_err(bus_error)?))
    }

    /// Attaches the consumer (`InUse` while another lives).
    fn consumer(&self) -> PyResult<Consumer> {
        Ok(Consumer::new(self.inner.consumer().map_err(bus_error)?))
    }

    /// Removes the channel.
    fn remove(&self) -> PyResult<()> {
        self.inner.remove().map_err(bus_error)
    }

    fn __repr__(&self) -> String {
        format!("<shmbus.Channel {:?}>", self.inner.name())
    }
}

/// A work queue: many producers, many consumers, each record to one
/// consumer, acknowledged once handled.
#[pyclass(unsendable, module = "shmbus._shmbus")]
pub struct Queue {
    inner: shmbus::Queue,
}

#[pymethods]
impl Queue {
    /// The queue's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Whether this call created it.
    #[getter]
    fn was_created(&self) -> bool {
        self.inner.was_created()
    }

    /// Its ring file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// Its configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let d = PyDict::new(py);
        d.set_item("slots", c.slots)?;
        d.set_item("max_payload", c.max_payload)?;
        d.set_item("max_producers", c.max_producers)?;
        d.set_item("max_consumers", c.max_consumers)?;
        d.set_item("reclaim_after", c.reclaim_after.as_secs_f64())?;
        Ok(d)
    }

    /// Attaches a producer.
    fn producer(&self) -> PyResult<QueueProducer> {
        Ok(QueueProducer::new(
            self.inner.producer().map_err(bus_error)?,
        ))
    }

    /// Attaches a consumer.
    fn consumer(&self) -> PyResult<QueueConsumer> {
        Ok(QueueConsumer::new(
            self.inner.consumer().map_err(bus_error)?,
        ))
    }

    /// Removes the queue.
    fn remove(&self) -> PyResult<()> {
        self.inner.remove().map_err(bus_error)
    }

    fn __repr__(&self) -> String {
        format!("<shmbus.Queue {:?}>", self.inner.name())
    }
}
