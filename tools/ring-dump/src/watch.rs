//! `ring-dump watch [NAME]`: every ring of the namespace (or NAME),
//! refreshed every `--interval`, with rates computed from the counters
//! each participant keeps: records/s and MB/s of every publisher,
//! subscriber, producer and consumer (and SPSC end), the lag of every
//! consumer, the slowest consumer of each ring, and the consumers that
//! hold writers back.
//!
//! A refresh compares two looks at a ring ([`Sample`]s): a participant's
//! rate is the growth of its `records` and `bytes` counters over the time
//! between them ([`compare`]). A participant seen only once (it attached
//! meanwhile), or whose counters went down (its slot was taken by
//! another), has no rate yet.
//!
//! * **Slowest**: of a topic or an SPSC channel, the consumer with the
//!   largest lag (ties: the lower rate); of a work queue, whose consumers
//!   share one backlog, the live consumer taking the fewest records/s
//!   while records wait. A ring whose consumers are all caught up has none.
//! * **Gating**: a consumer holding writers back. Of a `Backpressure`
//!   topic: the subscribers at the lowest cursor (where the gate rests)
//!   when publishers found the log full since the last refresh (the growth
//!   of their `full` counters) or the log is full now. Of a work queue
//!   that is full now or was found full: the consumer holding its oldest
//!   record, or, if that record waits untaken, every live consumer (all
//!   are behind). Of an SPSC channel: its consumer, likewise. An
//!   `Overwrite` topic gates nobody.
//!
//! On a terminal the view is drawn in the alternate screen (ratatui over
//! crossterm); `q`, Esc or Ctrl-C quits, and the terminal is restored on
//! the way out, also after a panic or a SIGTERM, SIGINT or SIGHUP. When
//! stdout is not a terminal, each refresh is printed as a block of plain
//! lines; with `--json`, as one JSON document per line.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use shmbus::directory::RingRecord;
use shmbus::inspect::{
    policy_name, InFlightState, InspectError, QueueInspector, QueueSnapshot, SpscInspector,
    SpscSnapshot, TopicInspector, TopicSnapshot,
};
use shmbus::ring::broadcast::Policy;
use shmbus::segment::OpenOptions;
use shmbus::{Namespace, RingKind};

use crate::bridge::{self, BridgeRates, BridgeSample};
use crate::participant::{queue_backlog, spsc_backlog, Backlog, Liveness};
use crate::{Args, Failure, Output, EXIT_NOT_FOUND, EXIT_UNUSABLE};

/// The longest `--interval` taken.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// The shortest `--interval` taken.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Smallest SPSC frame (an 8-byte header and up to 8 payload bytes): a
/// ring with less free space is full.
const SPSC_MIN_FRAME: u64 = 16;
/// How often a terminal view looks for a key or a signal.
const POLL: Duration = Duration::from_millis(50);

/// `--interval SECS`: seconds, fractions allowed.
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !secs.is_finite() {
        return Err(format!("'{s}' is not a number of seconds"));
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is negative"))?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(format!(
            "the interval must be between {} and {} seconds",
            MIN_INTERVAL.as_secs_f64(),
            MAX_INTERVAL.as_secs_f64()
        ));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------
// Samples, deltas, rates and marks: plain functions over plain data
// ---------------------------------------------------------------------------

/// What a participant does on its ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// A topic's publisher.
    Publisher,
    /// A topic's subscriber.
    Subscriber,
    /// A work queue's or an SPSC channel's producer.
    Producer,
    /// A work queue's or an SPSC channel's consumer.
    Consumer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }

    /// Whether it reads (a consumer of the ring's records).
    fn reads(self) -> bool {
        matches!(self, Role::Subscriber | Role::Consumer)
    }
}

/// A participant of a ring at one look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) role: Role,
    /// Its slot (0 for an SPSC end).
    pub(crate) slot: usize,
    pub(crate) pid: u32,
    /// A durable subscriber's name.
    pub(crate) name: Option<String>,
    pub(crate) liveness: Liveness,
    /// Its `records` counter: published, read or taken.
    pub(crate) records: u64,
    /// Its `bytes` counter.
    pub(crate) bytes: u64,
    /// Its `full` counter: claims that found the ring full (writers).
    pub(crate) full: u64,
    /// Where a topic's subscriber reads next.
    pub(crate) cursor: Option<u64>,
    /// Records it has not read (a topic's subscriber, an SPSC consumer).
    pub(crate) lag: Option<u64>,
    /// Their payload bytes.
    pub(crate) lag_bytes: Option<u64>,
    /// Records a queue consumer took and has not acknowledged.
    pub(crate) holding: Option<usize>,
}

impl Peer {
    /// A peer of `role` in `slot` with counters `records`, `bytes` and
    /// `full` and nothing else known.
    pub(crate) fn new(role: Role, slot: usize, pid: u32, liveness: Liveness) -> Self {
        Peer {
            role,
            slot,
            pid,
            name: None,
            liveness,
            records: 0,
            bytes: 0,
            full: 0,
            cursor: None,
            lag: None,
            lag_bytes: None,
            holding: None,
        }
    }

    /// Whether `other` is the same participant looked at again.
    fn same_as(&self, other: &Peer) -> bool {
        (self.role, self.slot, self.pid, &self.name)
            == (other.role, other.slot, other.pid, &other.name)
    }
}

/// The kind of a ring, with what decides who gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A topic: `Backpressure` gates publishers, `Overwrite` nobody.
    Topic { policy: Policy, slots: u32 },
    /// An SPSC channel of `capacity` bytes.
    Spsc { capacity: u64 },
    /// A work queue of `slots` slots.
    Queue { slots: u32 },
}

impl Shape {
    fn kind(self) -> &'static str {
        match self {
            Shape::Topic { .. } => "topic",
            Shape::Spsc { .. } => "spsc",
            Shape::Queue { .. } => "queue",
        }
    }
}

/// A ring at one look: what rates and marks are computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) shape: Shape,
    /// A topic's or a queue's tail, an SPSC channel's producer position.
    pub(crate) tail: u64,
    /// A writer would find the ring full now.
    pub(crate) full_now: bool,
    /// Records waiting for any consumer of a work queue.
    pub(crate) waiting: Option<Backlog>,
    /// The consumer slot holding a work queue's oldest record in flight.
    pub(crate) oldest_holder: Option<usize>,
    /// An SPSC channel's bytes in use.
    pub(crate) used_bytes: Option<u64>,
    pub(crate) peers: Vec<Peer>,
    /// A bridged topic's Zenoh bridge counters.
    pub(crate) bridge: Option<BridgeSample>,
}

/// Counter growth of one participant between two looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) full: u64,
}

/// The growth of `now`'s counters since `prev`, if `prev` is the same
/// participant and no counter went down (a counter that did belongs to
/// another participant that took the slot).
pub(crate) fn delta(prev: &Peer, now: &Peer) -> Option<Delta> {
    if !prev.same_as(now) {
        return None;
    }
    Some(Delta {
        records: now.records.checked_sub(prev.records)?,
        bytes: now.bytes.checked_sub(prev.bytes)?,
        full: now.full.checked_sub(prev.full)?,
    })
}

/// `count` per second over `elapsed` (0 for no time).
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// One participant's rates between two looks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) records_per_s: f64,
    /// Megabytes (10^6 bytes) per second.
    pub(crate) mb_per_s: f64,
    /// Claims that found the ring full meanwhile.
    pub(crate) full: u64,
}

/// A ring compared with its previous look: every participant's rates
/// (`None` for one seen once), the slowest consumer and the gating ones.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RingView {
    pub(crate) sample: Sample,
    /// Per participant of `sample.peers`, in order.
    pub(crate) rates: Vec<Option<Rates>>,
    /// Claims of the writers that found the ring full since the last look
    /// (`None` on a first look).
    pub(crate) writers_full: Option<u64>,
    /// Index in `sample.peers` of the slowest consumer.
    pub(crate) slowest: Option<usize>,
    /// Indices in `sample.peers` of the consumers holding writers back.
    pub(crate) gating: Vec<usize>,
    /// A bridged topic's bridge rates (`None` on a first look).
    pub(crate) bridge_rates: Option<BridgeRates>,
}

/// Compares `now` with `prev` (the same ring, `elapsed` earlier; `None` on
/// a first look): rates, the slowest consumer and the gating ones.
pub(crate) fn compare(prev: Option<&Sample>, now: Sample, elapsed: Duration) -> RingView {
    let rates: Vec<Option<Rates>> = now
        .peers
        .iter()
        .map(|p| {
            let before = prev?.peers.iter().find(|q| q.same_as(p))?;
            let d = delta(before, p)?;
            Some(Rates {
                records_per_s: per_second(d.records, elapsed),
                mb_per_s: per_second(d.bytes, elapsed) / 1e6,
                full: d.full,
            })
        })
        .collect();
    let writers_full = prev.map(|_| {
        now.peers
            .iter()
            .zip(&rates)
            .filter(|(p, _)| !p.role.reads())
            .map(|(_, r)| r.map_or(0, |r| r.full))
            .sum()
    });
    let slowest = slowest(&now, &rates);
    let gating = gating(&now, writers_full.unwrap_or(0));
    let bridge_rates = now
        .bridge
        .as_ref()
        .and_then(|b| bridge::rates(prev.and_then(|p| p.bridge.as_ref()), b, elapsed));
    RingView {
        sample: now,
        rates,
        writers_full,
        slowest,
        gating,
        bridge_rates,
    }
}

/// The slowest consumer of `sample` (see the module docs), as an index in
/// its peers.
pub(crate) fn slowest(sample: &Sample, rates: &[Option<Rates>]) -> Option<usize> {
    let rate = |i: usize| rates.get(i).copied().flatten().map(|r| r.records_per_s);
    let readers = sample
        .peers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.role.reads());
    match sample.shape {
        Shape::Queue { .. } => {
            if sample.waiting.is_none_or(|w| w.records == 0) {
                return None;
            }
            // The live consumer taking the fewest records/s.
            readers
                .filter(|(i, p)| p.liveness == Liveness::Alive && rate(*i).is_some())
                .min_by(|(i, p), (j, q)| {
                    let (a, b) = (rate(*i).unwrap_or(0.0), rate(*j).unwrap_or(0.0));
                    a.total_cmp(&b).then(p.slot.cmp(&q.slot))
                })
                .map(|(i, _)| i)
        }
        Shape::Topic { .. } | Shape::Spsc { .. } => readers
            .filter(|(_, p)| p.lag.unwrap_or(0) > 0)
            // The largest lag; then the lower rate; then the lower slot.
            .max_by(|(i, p), (j, q)| {
                let (a, b) = (rate(*i).unwrap_or(0.0), rate(*j).unwrap_or(0.0));
                p.lag
                    .cmp(&q.lag)
                    .then(b.total_cmp(&a))
                    .then(q.slot.cmp(&p.slot))
            })
            .map(|(i, _)| i),
    }
}

/// The consumers of `sample` holding writers back (see the module docs),
/// as indices in its peers; `writers_full` is how many claims of its
/// writers found it full since the last look.
pub(crate) fn gating(sample: &Sample, writers_full: u64) -> Vec<usize> {
    if writers_full == 0 && !sample.full_now {
        return Vec::new();
    }
    let readers = || {
        sample
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role.reads())
    };
    match sample.shape {
        Shape::Topic {
            policy: Policy::Overwrite,
            ..
        } => Vec::new(),
        Shape::Topic { .. } => {
            let Some(gate) = readers().filter_map(|(_, p)| p.cursor).min() else {
                return Vec::new();
            };
            readers()
                .filter(|(_, p)| p.cursor == Some(gate))
                .map(|(i, _)| i)
                .collect()
        }
        Shape::Queue { .. } => match sample.oldest_holder {
            Some(slot) => readers()
                .filter(|(_, p)| p.slot == slot)
                .map(|(i, _)| i)
                .collect(),
            None => readers()
                .filter(|(_, p)| p.liveness == Liveness::Alive)
                .map(|(i, _)| i)
                .collect(),
        },
        Shape::Spsc { .. } => readers().map(|(i, _)| i).collect(),
    }
}

// ---------------------------------------------------------------------------
// Samples from the inspector's snapshots
// ---------------------------------------------------------------------------

/// A topic's snapshot as a sample; `lag_bytes` per subscriber, in order.
pub(crate) fn topic_sample(s: &TopicSnapshot, lag_bytes: &[u64]) -> Sample {
    let mut peers = Vec::new();
    for p in &s.publishers {
        let mut peer = Peer::new(Role::Publisher, p.slot, p.pid, Liveness::of(p.alive));
        (peer.records, peer.bytes, peer.full) =
            (p.counters.records, p.counters.bytes, p.counters.full);
        peers.push(peer);
    }
    for (i, sub) in s.subscribers.iter().enumerate() {
        let mut peer = Peer::new(
            Role::Subscriber,
            sub.slot,
            sub.pid,
            Liveness::of_subscriber(sub),
        );
        peer.name = sub.name.clone();
        (peer.records, peer.bytes) = (sub.counters.records, sub.counters.bytes);
        peer.cursor = Some(sub.cursor);
        peer.lag = Some(sub.lag);
        peer.lag_bytes = lag_bytes.get(i).copied();
        peers.push(peer);
    }
    let slots = s.config.slots;
    let lowest = s.subscribers.iter().map(|sub| sub.cursor).min();
    Sample {
        bridge: None,
        name: s.topic.name.clone(),
        shape: Shape::Topic {
            policy: s.config.policy,
            slots,
        },
        tail: s.tail,
        full_now: s.config.policy == Policy::Backpressure
            && lowest.is_some_and(|c| s.tail.saturating_sub(c) >= u64::from(slots)),
        waiting: None,
        oldest_holder: None,
        used_bytes: None,
        peers,
    }
}

/// An SPSC channel's snapshot as a sample, with its consumer's backlog.
pub(crate) fn spsc_sample(s: &SpscSnapshot, backlog: Option<Backlog>) -> Sample {
    let mut peers = Vec::new();
    for (role, info) in [(Role::Producer, &s.producer), (Role::Consumer, &s.consumer)] {
        // An end nobody took, or left cleanly, is no participant.
        if !info.attached && info.pid == 0 {
            continue;
        }
        let mut peer = Peer::new(role, 0, info.pid, Liveness::of(info.attached));
        (peer.records, peer.bytes, peer.full) = (
            info.counters.records,
            info.counters.bytes,
            info.counters.full,
        );
        if role == Role::Consumer {
            peer.lag = backlog.map(|b| b.records);
            peer.lag_bytes = backlog.map(|b| b.bytes);
        }
        peers.push(peer);
    }
    Sample {
        bridge: None,
        name: s.name.clone(),
        shape: Shape::Spsc {
            capacity: s.capacity,
        },
        tail: s.tail,
        full_now: s.free_bytes() < SPSC_MIN_FRAME,
        waiting: None,
        oldest_holder: None,
        used_bytes: Some(s.used_bytes),
        peers,
    }
}

/// A work queue's snapshot as a sample, with the records waiting.
pub(crate) fn queue_sample(s: &QueueSnapshot, waiting: Option<Backlog>) -> Sample {
    let mut peers = Vec::new();
    for p in &s.producers {
        let mut peer = Peer::new(Role::Producer, p.slot, p.pid, Liveness::of(p.alive));
        (peer.records, peer.bytes, peer.full) =
            (p.counters.records, p.counters.bytes, p.counters.full);
        peers.push(peer);
    }
    for c in &s.consumers {
        let mut peer = Peer::new(Role::Consumer, c.slot, c.pid, Liveness::of(c.alive));
        (peer.records, peer.bytes) = (c.counters.records, c.counters.bytes);
        peer.holding = Some(c.holding);
        peers.push(peer);
    }
    let slots = s.config.slots;
    Sample {
        bridge: None,
        name: s.queue.name.clone(),
        shape: Shape::Queue { slots },
        tail: s.tail,
        full_now: s.in_flight.len() as u64 >= u64::from(slots),
        waiting: waiting.or(Some(Backlog {
            records: s.depth,
            bytes: 0,
        })),
        oldest_holder: s.in_flight.first().and_then(|r| match r.state {
            InFlightState::Taken { consumer, .. } => Some(consumer),
            _ => None,
        }),
        used_bytes: None,
        peers,
    }
}

// ---------------------------------------------------------------------------
// Looking at the rings
// ---------------------------------------------------------------------------

/// A ring opened read-only.
enum Inspector {
    Topic(TopicInspector),
    Spsc(SpscInspector),
    Queue(QueueInspector),
}

impl Inspector {
    fn open(ns: &Namespace, record: RingRecord, opts: &OpenOptions) -> Result<Self, Failure> {
        Ok(match record.kind() {
            RingKind::Broadcast => Inspector::Topic(TopicInspector::open_topic(ns, record, opts)?),
            RingKind::Spsc => Inspector::Spsc(SpscInspector::open_channel(ns, record, opts)?),
            RingKind::Queue => Inspector::Queue(QueueInspector::open_queue(ns, record, opts)?),
            other => {
                return Err(Failure {
                    code: EXIT_UNUSABLE,
                    reason: format!(
                        "a ring of kind {}, which ring-dump does not watch",
                        other.name()
                    ),
                })
            }
        })
    }

    fn sample(&self) -> Result<Sample, InspectError> {
        Ok(match self {
            Inspector::Topic(log) => {
                let s = log.snapshot()?;
                topic_sample(&s, &log.lag_bytes(&s))
            }
            Inspector::Spsc(ring) => {
                let s = ring.snapshot()?;
                spsc_sample(&s, spsc_backlog(ring, &s))
            }
            Inspector::Queue(queue) => {
                let s = queue.snapshot()?;
                queue_sample(&s, queue_backlog(queue, &s))
            }
        })
    }
}

/// What one refresh found of one ring.
enum Look {
    Ready(Box<RingView>),
    /// It cannot be read: why.
    Unusable {
        name: String,
        reason: String,
    },
    /// NAME is no longer in the directory.
    Gone {
        name: String,
    },
}

/// One refresh: every ring looked at.
struct Refresh {
    /// 1 for the first refresh with rates, 0 for the look they start from.
    number: u64,
    /// Time since the previous refresh.
    elapsed: Duration,
    looks: Vec<Look>,
}

/// The rings being watched and their previous looks.
struct Watcher<'a> {
    ns: &'a Namespace,
    name: Option<&'a str>,
    opts: OpenOptions,
    /// By segment name: the ring opened, its last sample and when.
    rings: HashMap<String, (Inspector, Option<(Instant, Sample)>)>,
    last: Instant,
    number: u64,
}

impl<'a> Watcher<'a> {
    fn new(ns: &'a Namespace, name: Option<&'a str>) -> Self {
        Watcher {
            ns,
            name,
            opts: OpenOptions::default(),
            rings: HashMap::new(),
            last: Instant::now(),
            number: 0,
        }
    }

    /// The rings to look at now.
    fn records(&self) -> Result<Vec<RingRecord>, Failure> {
        match self.name {
            Some(name) => Ok(vec![crate::find_ring(self.ns, name, &self.opts)?]),
            None => Ok(shmbus::inspect::list_rings(self.ns, &self.opts)?),
        }
    }

    /// Looks at every ring; the first call's failure (no directory, no
    /// ring NAME) ends the watch, a later one is shown.
    fn refresh(&mut self) -> Result<Refresh, Failure> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last);
        self.last = now;
        let records = match self.records() {
            Ok(records) => records,
            Err(f) if self.number == 0 => return Err(f),
            Err(f) => {
                self.rings.clear();
                let name = self.name.unwrap_or("the directory").to_owned();
                let look = if f.code == EXIT_NOT_FOUND {
                    Look::Gone { name }
                } else {
                    Look::Unusable {
                        name,
                        reason: f.reason,
                    }
                };
                self.number += 1;
                return Ok(Refresh {
                    number: self.number - 1,
                    elapsed,
                    looks: vec![look],
                });
            }
        };
        // Rings no longer listed are forgotten.
        self.rings
            .retain(|segment, _| records.iter().any(|r| &r.segment == segment));
        let mut looks = Vec::new();
        for record in records {
            let name = record.name.clone();
            let segment = record.segment.clone();
            if !self.rings.contains_key(&segment) {
                match Inspector::open(self.ns, record, &self.opts) {
                    Ok(inspector) => {
                        self.rings.insert(segment.clone(), (inspector, None));
                    }
                    Err(f) => {
                        looks.push(Look::Unusable {
                            name,
                            reason: f.reason,
                        });
                        continue;
                    }
                }
            }
            let Some((inspector, previous)) = self.rings.get_mut(&segment) else {
                continue;
            };
            match inspector.sample() {
                Ok(mut sample) => {
                    if matches!(sample.shape, Shape::Topic { .. }) {
                        sample.bridge = BridgeSample::of(&bridge::read(self.ns, &name));
                    }
                    let at = Instant::now();
                    let view = match previous.as_ref() {
                        Some((then, prev)) => {
                            compare(Some(prev), sample.clone(), at.duration_since(*then))
                        }
                        None => compare(None, sample.clone(), Duration::ZERO),
                    };
                    *previous = Some((at, sample));
                    looks.push(Look::Ready(Box::new(view)));
                }
                Err(e) => looks.push(Look::Unusable {
                    name,
                    reason: e.to_string(),
                }),
            }
        }
        self.number += 1;
        Ok(Refresh {
            number: self.number - 1,
            elapsed,
            looks,
        })
    }
}

// ---------------------------------------------------------------------------
// What a refresh shows
// ---------------------------------------------------------------------------

/// How a line of the view is set off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tone {
    Title,
    Ring,
    Header,
    Plain,
    Slowest,
    Gating,
    Problem,
}

/// A line of the view.
struct Line {
    tone: Tone,
    text: String,
}

fn line(tone: Tone, text: String) -> Line {
    Line { tone, text }
}

/// Bytes as a short human size (`812 B`, `14.2 kB`, `3.1 MB`).
fn size_text(bytes: u64) -> String {
    match bytes {
        0..=9_999 => format!("{bytes} B"),
        10_000..=9_999_999 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// A ring's header line.
fn ring_text(v: &RingView) -> String {
    let s = &v.sample;
    let mut o = match s.shape {
        Shape::Topic { policy, slots } => format!(
            "topic {}  {}, {slots} slots, tail {}",
            s.name,
            policy_name(policy),
            s.tail
        ),
        Shape::Spsc { capacity } => format!(
            "spsc {}  {} of {capacity} bytes used",
            s.name,
            s.used_bytes.unwrap_or(0)
        ),
        Shape::Queue { slots } => {
            let w = s.waiting.unwrap_or_default();
            format!(
                "queue {}  {slots} slots, tail {}, {} waiting ({})",
                s.name,
                s.tail,
                w.records,
                size_text(w.bytes)
            )
        }
    };
    if s.full_now {
        o.push_str(", FULL now");
    }
    if let Some(n) = v.writers_full.filter(|n| *n > 0) {
        o.push_str(&format!(", found full {n} times since the last refresh"));
    }
    o
}

const HEADER: &str = "  ROLE        SLOT  PID       LIVENESS          RECORDS/S       MB/S  LAG";

/// A participant's row; its tone says whether it is marked.
fn peer_line(v: &RingView, i: usize) -> Line {
    let p = &v.sample.peers[i];
    let (rps, mbps) = match v.rates.get(i).copied().flatten() {
        Some(r) => (
            format!("{:.1}", r.records_per_s),
            format!("{:.2}", r.mb_per_s),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    };
    let lag = match (p.lag, p.lag_bytes, p.holding) {
        (Some(l), Some(b), _) => format!("{l} ({})", size_text(b)),
        (Some(l), None, _) => l.to_string(),
        (None, _, Some(h)) => format!("holding {h}"),
        (None, _, None) if p.role.reads() => "?".to_owned(),
        _ => "-".to_owned(),
    };
    let mut marks = Vec::new();
    if v.slowest == Some(i) {
        marks.push("<- slowest".to_owned());
    }
    if v.gating.contains(&i) {
        marks.push(match v.sample.shape {
            Shape::Topic { .. } => "<- gating publishers".to_owned(),
            _ => "<- gating producers".to_owned(),
        });
    }
    let mut tail: Vec<String> = p.name.iter().map(|n| format!("durable \"{n}\"")).collect();
    tail.extend(marks);
    let text = format!(
        "  {:<10}  {:<4}  {:<8}  {:<16}  {:>9}  {:>9}  {:<14}  {}",
        p.role.name(),
        p.slot,
        p.pid,
        p.liveness.name(),
        rps,
        mbps,
        lag,
        tail.join("  ")
    );
    let tone = if v.gating.contains(&i) {
        Tone::Gating
    } else if v.slowest == Some(i) {
        Tone::Slowest
    } else {
        Tone::Plain
    };
    line(tone, text.trim_end().to_owned())
}

/// The lines of a refresh.
fn lines(ns: &Namespace, interval: Duration, r: &Refresh) -> Vec<Line> {
    let mut o = vec![line(
        Tone::Title,
        format!(
            "ring-dump watch {}: refresh {} every {:.1}s ({:.2}s since the last), {} ring{}",
            ns.name(),
            r.number,
            interval.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            r.looks.len(),
            if r.looks.len() == 1 { "" } else { "s" }
        ),
    )];
    for look in &r.looks {
        match look {
            Look::Ready(v) => {
                o.push(line(Tone::Ring, ring_text(v)));
                o.push(line(Tone::Header, HEADER.to_owned()));
                if v.sample.peers.is_empty() {
                    o.push(line(Tone::Plain, "  (nobody attached)".to_owned()));
                }
                for i in 0..v.sample.peers.len() {
                    o.push(peer_line(v, i));
                }
                if let Some(b) = &v.sample.bridge {
                    o.push(line(
                        Tone::Plain,
                        bridge::watch_text(b, v.bridge_rates.as_ref()),
                    ));
                }
            }
            Look::Unusable { name, reason } => o.push(line(
                Tone::Problem,
                format!("{name}: unusable: {}", reason.replace(['\n', '\r'], " ")),
            )),
            Look::Gone { name } => o.push(line(
                Tone::Problem,
                format!("{name}: gone (no such ring in the directory now)"),
            )),
        }
    }
    o
}

/// The plain text of a refresh, ending with a blank line.
fn plain_text(ns: &Namespace, interval: Duration, r: &Refresh) -> String {
    let mut o = String::new();
    for l in lines(ns, interval, r) {
        o.push_str(&l.text);
        o.push('\n');
    }
    o.push('\n');
    o
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct PeerJson<'a> {
    role: &'static str,
    slot: usize,
    pid: u32,
    name: Option<&'a str>,
    liveness: &'static str,
    records: u64,
    bytes: u64,
    records_per_s: Option<f64>,
    mb_per_s: Option<f64>,
    full: Option<u64>,
    lag: Option<u64>,
    lag_bytes: Option<u64>,
    holding: Option<usize>,
    slowest: bool,
    gating: bool,
}

#[derive(Serialize)]
struct LagJson {
    records: u64,
    bytes: u64,
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum RingJson<'a> {
    Ready {
        name: &'a str,
        kind: &'static str,
        policy: Option<&'static str>,
        tail: u64,
        full_now: bool,
        writers_full: Option<u64>,
        waiting: Option<LagJson>,
        participants: Vec<PeerJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bridge: Option<BridgeJson>,
    },
    Unusable {
        name: &'a str,
        error: &'a str,
    },
    Gone {
        name: &'a str,
    },
}

/// A bridged topic's bridge counters and rates in `watch --json`.
#[derive(Serialize)]
struct BridgeJson {
    running: bool,
    exported: u64,
    imported: u64,
    gaps: u64,
    export_missed: u64,
    /// Rates and growth since the last refresh; absent on a first look.
    #[serde(flatten)]
    rates: Option<BridgeRates>,
}

#[derive(Serialize)]
struct RefreshJson<'a> {
    namespace: &'a str,
    refresh: u64,
    interval_s: f64,
    elapsed_s: f64,
    rings: Vec<RingJson<'a>>,
}

fn ring_json(look: &Look) -> RingJson<'_> {
    match look {
        Look::Ready(v) => {
            let s = &v.sample;
            RingJson::Ready {
                name: &s.name,
                kind: s.shape.kind(),
                policy: match s.shape {
                    Shape::Topic { policy, .. } => Some(policy_name(policy)),
                    _ => None,
                },
                tail: s.tail,
                full_now: s.full_now,
                writers_full: v.writers_full,
                waiting: s.waiting.map(|w| LagJson {
                    records: w.records,
                    bytes: w.bytes,
                }),
                participants: s
                    .peers
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let r = v.rates.get(i).copied().flatten();
                        PeerJson {
                            role: p.role.name(),
                            slot: p.slot,
                            pid: p.pid,
                            name: p.name.as_deref(),
                            liveness: p.liveness.json_name(),
                            records: p.records,
                            bytes: p.bytes,
                            records_per_s: r.map(|r| r.records_per_s),
                            mb_per_s: r.map(|r| r.mb_per_s),
                            full: r.map(|r| r.full),
                            lag: p.lag,
                            lag_bytes: p.lag_bytes,
                            holding: p.holding,
                            slowest: v.slowest == Some(i),
                            gating: v.gating.contains(&i),
                        }
                    })
                    .collect(),
                bridge: s.bridge.map(|b| BridgeJson {
                    running: b.running,
                    exported: b.exported,
                    imported: b.imported,
                    gaps: b.gaps,
                    export_missed: b.export_missed,
                    rates: v.bridge_rates,
                }),
            }
        }
        Look::Unusable { name, reason } => RingJson::Unusable {
            name,
            error: reason,
        },
        Look::Gone { name } => RingJson::Gone { name },
    }
}

fn json_text(ns: &Namespace, interval: Duration, r: &Refresh) -> String {
    let doc = RefreshJson {
        namespace: ns.name(),
        refresh: r.number,
        interval_s: interval.as_secs_f64(),
        elapsed_s: r.elapsed.as_secs_f64(),
        rings: r.looks.iter().map(ring_json).collect(),
    };
    // Plain structs of strings, numbers and options: serde_json always
    // writes them (a NaN rate cannot occur: rates divide by a positive
    // time).
    let mut text = serde_json::to_string(&doc)
        .unwrap_or_else(|e| unreachable!("a watch document failed to serialize: {e}"));
    text.push('\n');
    text
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// `ring-dump watch [NAME] [--interval SECS] [--count N]`.
pub(crate) fn run(
    args: &Args,
    ns: &Namespace,
    name: Option<&str>,
    interval: Duration,
    count: Option<u64>,
) -> Result<Output, Failure> {
    let mut watcher = Watcher::new(ns, name);
    // The look the first rates start from; a missing directory or ring
    // ends the watch here, with its exit code.
    let first = watcher.refresh()?;
    if !args.json && io::stdout().is_terminal() {
        return screen::run(ns, interval, count, &mut watcher, first);
    }
    let mut out = io::stdout().lock();
    let mut shown = 0;
    while count.is_none_or(|n| shown < n) {
        std::thread::sleep(interval);
        let refresh = watcher.refresh()?;
        let text = if args.json {
            json_text(ns, interval, &refresh)
        } else {
            plain_text(ns, interval, &refresh)
        };
        // A closed pipe (`ring-dump watch | head`) ends the watch quietly.
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
        shown += 1;
    }
    Ok(Output {
        stdout: String::new(),
        failure: None,
    })
}

/// The terminal view.
mod screen {
    use super::*;
    use ratatui::backend::CrosstermBackend;
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::crossterm::terminal::{
        disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
    };
    use ratatui::crossterm::{cursor, execute};
    use ratatui::style::{Modifier, Style};
    use ratatui::text::{Line as TuiLine, Span};
    use ratatui::widgets::Paragraph;
    use ratatui::Terminal;

    /// Leaves the alternate screen and raw mode (as often as called).
    fn restore() {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    }

    /// Restores the terminal when dropped: on every way out of the view.
    struct Restore;

    impl Drop for Restore {
        fn drop(&mut self) {
            restore();
        }
    }

    fn failure(e: io::Error) -> Failure {
        Failure {
            code: EXIT_UNUSABLE,
            reason: format!("terminal: {e}"),
        }
    }

    fn style(tone: Tone) -> Style {
        match tone {
            Tone::Title => Style::default().add_modifier(Modifier::REVERSED),
            Tone::Ring => Style::default().add_modifier(Modifier::BOLD),
            Tone::Header => Style::default().add_modifier(Modifier::UNDERLINED),
            Tone::Plain => Style::default(),
            Tone::Slowest => Style::default().add_modifier(Modifier::BOLD),
            Tone::Gating | Tone::Problem => Style::default()
                .add_modifier(Modifier::BOLD)
                .fg(ratatui::style::Color::Red),
        }
    }

    /// What standard input has for the view.
    enum Input {
        /// Bytes to read (a key, or an end of file).
        Ready,
        /// Nothing within the wait.
        Idle,
        /// The terminal hung up or the descriptor is no longer valid.
        Gone,
    }

    /// Waits at most `wait` for standard input.
    fn input_ready(wait: Duration) -> Input {
        let mut fd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fd` is one valid pollfd, and its count is 1.
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        if n < 0 {
            // EINTR (a signal, looked at by the caller): as if idle.
            return Input::Idle;
        }
        if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            Input::Gone
        } else if fd.revents & libc::POLLIN != 0 {
            Input::Ready
        } else {
            Input::Idle
        }
    }

    /// Whether a key asks to quit: `q`, Esc or Ctrl-C.
    fn quits(code: KeyCode, modifiers: KeyModifiers) -> bool {
        matches!(code, KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc)
            || (code == KeyCode::Char('c') && modifiers.contains(KeyModifiers::CONTROL))
    }

    pub(super) fn run(
        ns: &Namespace,
        interval: Duration,
        count: Option<u64>,
        watcher: &mut Watcher<'_>,
        first: Refresh,
    ) -> Result<Output, Failure> {
        // A signal that would end the process sets this instead, so the
        // terminal is restored before it ends.
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(failure)?;
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode().map_err(failure)?;
        let _restore = Restore;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide).map_err(failure)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout())).map_err(failure)?;

        let mut refresh = first;
        let mut shown = 0;
        loop {
            let mut view: Vec<TuiLine<'_>> = lines(ns, interval, &refresh)
                .into_iter()
                .map(|l| TuiLine::from(Span::styled(l.text, style(l.tone))))
                .collect();
            view.push(TuiLine::from(""));
            view.push(TuiLine::from(if refresh.number == 0 {
                "rates from the next refresh on; q, Esc or Ctrl-C quits"
            } else {
                "q, Esc or Ctrl-C quits"
            }));
            terminal
                .draw(|f| f.render_widget(Paragraph::new(view), f.area()))
                .map_err(failure)?;
            if count.is_some_and(|n| shown >= n) {
                break;
            }
            let next = Instant::now() + interval;
            let mut quit = false;
            while !quit && Instant::now() < next {
                if stop.load(Ordering::Relaxed) {
                    quit = true;
                    break;
                }
                let wait = next.saturating_duration_since(Instant::now()).min(POLL);
                match input_ready(wait) {
                    // The terminal hung up (its window or multiplexer went):
                    // nobody is watching, and nothing can be restored.
                    Input::Gone => {
                        return Ok(Output {
                            stdout: String::new(),
                            failure: None,
                        })
                    }
                    Input::Idle => {}
                    // Only now ask crossterm, without waiting: its own wait
                    // reads an input that is at end of file again and again.
                    Input::Ready => {
                        if event::poll(Duration::ZERO).map_err(failure)? {
                            if let Event::Key(k) = event::read().map_err(failure)? {
                                quit =
                                    k.kind != KeyEventKind::Release && quits(k.code, k.modifiers);
                            }
                        } else {
                            // Readable but no event: input at end of file
                            // (not a terminal any more). Keys cannot come;
                            // refresh on, until a signal stops us.
                            std::thread::sleep(wait);
                        }
                    }
                }
            }
            if quit {
                break;
            }
            refresh = watcher.refresh()?;
            shown += 1;
        }
        Ok(Output {
            stdout: String::new(),
            failure: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(role: Role, slot: usize, records: u64, bytes: u64) -> Peer {
        let mut p = Peer::new(role, slot, 100, Liveness::Alive);
        (p.records, p.bytes) = (records, bytes);
        p
    }

    fn subscriber(slot: usize, records: u64, cursor: u64, tail: u64) -> Peer {
        let mut p = peer(Role::Subscriber, slot, records, records * 10);
        p.cursor = Some(cursor);
        p.lag = Some(tail - cursor);
        p
    }

    fn topic(policy: Policy, slots: u32, tail: u64, peers: Vec<Peer>) -> Sample {
        let lowest = peers.iter().filter_map(|p| p.cursor).min();
        Sample {
            bridge: None,
            name: "md".to_owned(),
            shape: Shape::Topic { policy, slots },
            tail,
            full_now: policy == Policy::Backpressure
                && lowest.is_some_and(|c| tail - c >= u64::from(slots)),
            waiting: None,
            oldest_holder: None,
            used_bytes: None,
            peers,
        }
    }

    #[test]
    fn intervals_are_seconds_within_bounds() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "abc", "NaN", "inf", "0.001", "99999"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deltas_need_the_same_participant_and_growing_counters() {
        let before = peer(Role::Publisher, 0, 100, 1_000);
        let mut after = peer(Role::Publisher, 0, 150, 1_600);
        after.full = 3;
        assert_eq!(
            delta(&before, &after),
            Some(Delta {
                records: 50,
                bytes: 600,
                full: 3
            })
        );
        // Another process in the slot, or counters that went down: no delta.
        let mut other = after.clone();
        other.pid = 200;
        assert_eq!(delta(&before, &other), None);
        assert_eq!(delta(&after, &before), None);
        let sub = peer(Role::Subscriber, 0, 150, 1_600);
        assert_eq!(delta(&before, &sub), None, "another role");
    }

    #[test]
    fn rates_are_counter_growth_over_the_time_between_looks() {
        assert_eq!(per_second(500, Duration::from_millis(500)), 1000.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        let prev = topic(
            Policy::Backpressure,
            1024,
            1000,
            vec![
                peer(Role::Publisher, 0, 1000, 1_000_000),
                subscriber(0, 1000, 1000, 1000),
            ],
        );
        let now = topic(
            Policy::Backpressure,
            1024,
            3000,
            vec![
                peer(Role::Publisher, 0, 3000, 3_000_000),
                subscriber(0, 2500, 2500, 3000),
                // Attached since the last look: no rate yet.
                subscriber(1, 10, 2990, 3000),
            ],
        );
        let v = compare(Some(&prev), now, Duration::from_secs(2));
        let r = v.rates[0].expect("publisher rate");
        assert_eq!((r.records_per_s, r.mb_per_s), (1000.0, 1.0));
        let r = v.rates[1].expect("subscriber rate");
        assert_eq!((r.records_per_s, r.mb_per_s), (750.0, 0.0075));
        assert_eq!(v.rates[2], None);
        assert_eq!(v.writers_full, Some(0));
        // A first look has no rates at all.
        let first = compare(None, prev, Duration::ZERO);
        assert!(first.rates.iter().all(Option::is_none));
        assert_eq!(first.writers_full, None);
    }

    #[test]
    fn the_slowest_topic_subscriber_has_the_largest_lag() {
        let s = topic(
            Policy::Overwrite,
            1024,
            500,
            vec![
                peer(Role::Publisher, 0, 500, 5000),
                subscriber(0, 490, 490, 500),
                subscriber(1, 100, 100, 500),
                subscriber(2, 500, 500, 500),
            ],
        );
        assert_eq!(slowest(&s, &[None; 4]), Some(2), "subscriber slot 1");
        // Equal lags: the lower rate is the slower.
        let s = topic(
            Policy::Overwrite,
            1024,
            500,
            vec![subscriber(0, 400, 400, 500), subscriber(1, 400, 400, 500)],
        );
        let rate = |r: f64| {
            Some(Rates {
                records_per_s: r,
                ..Rates::default()
            })
        };
        assert_eq!(slowest(&s, &[rate(50.0), rate(10.0)]), Some(1));
        assert_eq!(slowest(&s, &[rate(10.0), rate(50.0)]), Some(0));
        // Everybody caught up: nobody is slowest.
        let s = topic(
            Policy::Overwrite,
            1024,
            500,
            vec![subscriber(0, 500, 500, 500)],
        );
        assert_eq!(slowest(&s, &[None]), None);
    }

    #[test]
    fn backpressure_gating_is_the_lowest_cursor_when_publishers_found_the_log_full() {
        let peers = vec![
            peer(Role::Publisher, 0, 100, 1000),
            subscriber(0, 100, 100, 100),
            subscriber(1, 40, 40, 100),
        ];
        // Not full now, and publishers did not find it full: nobody gates.
        let s = topic(Policy::Backpressure, 64, 100, peers.clone());
        assert!(!s.full_now);
        assert_eq!(gating(&s, 0), Vec::<usize>::new());
        // Publishers found it full since the last look: the lowest cursor.
        assert_eq!(gating(&s, 3), vec![2]);
        // Full now (tail - lowest cursor = slots): the same, with no count.
        let s = topic(Policy::Backpressure, 60, 100, peers.clone());
        assert!(s.full_now);
        assert_eq!(gating(&s, 0), vec![2]);
        // Through `compare`: the publishers' `full` growth is what counts.
        let mut prev = topic(Policy::Backpressure, 64, 100, peers.clone());
        prev.peers[0].full = 5;
        let mut now = topic(Policy::Backpressure, 64, 100, peers.clone());
        now.peers[0].full = 9;
        let v = compare(Some(&prev), now, Duration::from_secs(1));
        assert_eq!((v.writers_full, v.gating.clone()), (Some(4), vec![2]));
        assert_eq!(v.slowest, Some(2));
        // An overwrite topic gates nobody, full or not.
        let s = topic(Policy::Overwrite, 60, 100, peers);
        assert_eq!(gating(&s, 7), Vec::<usize>::new());
    }

    fn queue(waiting: u64, full_now: bool, oldest_holder: Option<usize>) -> Sample {
        let mut c0 = peer(Role::Consumer, 0, 10, 100);
        c0.holding = Some(1);
        let mut c1 = peer(Role::Consumer, 1, 10, 100);
        c1.holding = Some(0);
        let mut dead = peer(Role::Consumer, 2, 10, 100);
        dead.liveness = Liveness::Dead;
        Sample {
            bridge: None,
            name: "execution".to_owned(),
            shape: Shape::Queue { slots: 8 },
            tail: 30,
            full_now,
            waiting: Some(Backlog {
                records: waiting,
                bytes: waiting * 74,
            }),
            oldest_holder,
            used_bytes: None,
            peers: vec![peer(Role::Producer, 0, 30, 300), c0, c1, dead],
        }
    }

    #[test]
    fn a_full_queue_is_gated_by_the_holder_of_its_oldest_record_or_every_live_consumer() {
        assert_eq!(gating(&queue(2, false, None), 0), Vec::<usize>::new());
        assert_eq!(gating(&queue(2, true, Some(0)), 0), vec![1]);
        assert_eq!(gating(&queue(8, false, None), 2), vec![1, 2], "live ones");
    }

    #[test]
    fn the_slowest_queue_consumer_takes_the_fewest_records_while_records_wait() {
        let prev = queue(2, false, None);
        let mut now = queue(2, false, None);
        now.peers[1].records = 40; // consumer 0: 30 in a second
        now.peers[2].records = 15; // consumer 1: 5 in a second
        now.peers[3].records = 10; // dead: not a candidate
        let v = compare(Some(&prev), now.clone(), Duration::from_secs(1));
        assert_eq!(v.slowest, Some(2));
        // Nothing waiting: nobody is slow.
        now.waiting = Some(Backlog::default());
        assert_eq!(
            compare(Some(&prev), now, Duration::from_secs(1)).slowest,
            None
        );
    }

    #[test]
    fn an_spsc_consumer_with_a_backlog_is_slowest_and_gates_a_full_ring() {
        let mut consumer = peer(Role::Consumer, 0, 5, 50);
        consumer.lag = Some(12);
        let s = Sample {
            bridge: None,
            name: "fills".to_owned(),
            shape: Shape::Spsc { capacity: 4096 },
            tail: 4096,
            full_now: true,
            waiting: None,
            oldest_holder: None,
            used_bytes: Some(4090),
            peers: vec![peer(Role::Producer, 0, 17, 170), consumer],
        };
        assert_eq!(slowest(&s, &[None, None]), Some(1));
        assert_eq!(gating(&s, 0), vec![1]);
    }

    #[test]
    fn plain_lines_show_rates_and_marks() {
        let prev = topic(
            Policy::Backpressure,
            64,
            100,
            vec![
                peer(Role::Publisher, 0, 100, 1000),
                subscriber(0, 100, 100, 100),
            ],
        );
        let mut slow = subscriber(1, 30, 30, 100);
        slow.lag_bytes = Some(700);
        let now = topic(
            Policy::Backpressure,
            64,
            100,
            vec![
                peer(Role::Publisher, 0, 200, 2000),
                subscriber(0, 200, 100, 100),
                slow,
            ],
        );
        let v = compare(Some(&prev), now, Duration::from_secs(1));
        let ns = Namespace::at(std::env::temp_dir().join("ring-dump-watch-unit"), "desk")
            .expect("namespace");
        let r = Refresh {
            number: 1,
            elapsed: Duration::from_secs(1),
            looks: vec![Look::Ready(Box::new(v))],
        };
        let text = plain_text(&ns, Duration::from_secs(1), &r);
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join("ring-dump-watch-unit"));
        assert!(
            text.contains("topic md  backpressure, 64 slots, tail 100, FULL now"),
            "{text}"
        );
        let publisher = text
            .lines()
            .find(|l| l.contains("publisher"))
            .expect("publisher");
        assert!(
            publisher.contains("100.0") && publisher.contains("0.00"),
            "{publisher}"
        );
        let slowest = text
            .lines()
            .find(|l| l.contains("<- slowest"))
            .expect("slowest");
        assert!(slowest.contains("70 (700 B)"), "{slowest}");
        assert!(slowest.contains("<- gating publishers"), "{slowest}");
        assert!(!text.contains('\x1b'), "no escape codes");
    }
}
