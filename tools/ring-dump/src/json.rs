//! The JSON documents `--json` prints: one serializable struct per
//! document and per part of one, mirroring the inspection snapshots
//! (`shmbus::inspect`) field by field under the names ring-dump has always
//! printed. Numbers are integers except the occupancy percentage; the
//! layout hash and a queue slot's stamp are hex strings; an absent value
//! is `null`.

use serde::Serialize;

use shmbus::inspect::{
    participant_state_name, policy_name, BroadcastRecord, CounterValues, InFlightRecord,
    InFlightState, PublisherInfo, QueueConsumerInfo, QueueProducerInfo, QueueRecord, QueueSnapshot,
    RoleInfo, SpscRecord, SpscSnapshot, SubscriberInfo, TopicSnapshot, V2Summary,
};
use shmbus::record::ParseError;
use shmbus::Namespace;

use crate::bridge::BridgeView;
use crate::participant::{cpus, Backlog, Liveness};
use crate::render::QueueReport;
use crate::{LogWalkEnd, QueueWalkEnd, Row, WalkEnd};

/// `value` as one line of JSON with its newline.
fn document(value: &impl Serialize) -> String {
    // The documents are plain structs of strings, numbers, booleans and
    // vectors (no map with non-string keys, no failing `Serialize`), which
    // serde_json always writes.
    let mut line = serde_json::to_string(value)
        .unwrap_or_else(|e| unreachable!("a ring-dump JSON document failed to serialize: {e}"));
    line.push('\n');
    line
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_string(hash: u64) -> String {
    format!("{hash:#018x}")
}

// ---------------------------------------------------------------------------
// SPSC channels
// ---------------------------------------------------------------------------

/// A participant's counters (`CounterValues`): what it did since it
/// attached (a resumed durable subscriber: since it was first made).
/// `last_active_ns` is `CLOCK_MONOTONIC` ns (read from the coarse clock,
/// within a timer tick), a lower bound of its last activity.
#[derive(Serialize)]
struct Counts {
    records: u64,
    bytes: u64,
    full: u64,
    full_ns: u64,
    sleeps: u64,
    wakes: u64,
    lapped: u64,
    missed: u64,
    reclaims: u64,
    lost_claims: u64,
    skips: u64,
    redelivered: u64,
    acked: u64,
    last_active_ns: u64,
}

impl From<&CounterValues> for Counts {
    fn from(c: &CounterValues) -> Self {
        Counts {
            records: c.records,
            bytes: c.bytes,
            full: c.full,
            full_ns: c.full_ns,
            sleeps: c.sleeps,
            wakes: c.wakes,
            lapped: c.lapped,
            missed: c.missed,
            reclaims: c.reclaims,
            lost_claims: c.lost_claims,
            skips: c.skips,
            redelivered: c.redelivered,
            acked: c.acked,
            last_active_ns: c.last_active_ns,
        }
    }
}

/// An SPSC channel's producer or consumer.
/// `cpus` is omitted unless the role is attached and this host shows its
/// pid's CPUs.
#[derive(Serialize)]
struct Role {
    attached: bool,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    counters: Counts,
}

impl From<&RoleInfo> for Role {
    fn from(r: &RoleInfo) -> Self {
        Role {
            attached: r.attached,
            pid: r.pid,
            cpus: cpus(r.pid, r.attached),
            counters: Counts::from(&r.counters),
        }
    }
}

/// Records waiting for a consumer and their payload bytes (`Backlog`).
#[derive(Serialize)]
struct Lag {
    records: u64,
    bytes: u64,
}

impl From<Backlog> for Lag {
    fn from(b: Backlog) -> Self {
        Lag {
            records: b.records,
            bytes: b.bytes,
        }
    }
}

/// An SPSC channel's snapshot (`SpscSnapshot`).
#[derive(Serialize)]
pub(crate) struct SpscFields {
    name: String,
    kind: &'static str,
    segment: String,
    path: String,
    entry: usize,
    epoch: u32,
    wakeups: bool,
    layout_version: u32,
    layout_hash: String,
    segment_size: u64,
    creator_pid: u32,
    created_realtime_ns: u64,
    poisoned: bool,
    capacity: u64,
    max_payload: u32,
    head: u64,
    tail: u64,
    used_bytes: u64,
    free_bytes: u64,
    /// Rounded to three decimals.
    occupancy_percent: f64,
    consistent: bool,
    producer: Role,
    consumer: Role,
}

impl From<&SpscSnapshot> for SpscFields {
    fn from(s: &SpscSnapshot) -> Self {
        SpscFields {
            name: s.name.clone(),
            kind: "spsc",
            segment: s.channel.segment.clone(),
            path: s.path.to_string_lossy().into_owned(),
            entry: s.channel.entry,
            epoch: s.channel.epoch,
            wakeups: s.wakeups,
            layout_version: s.layout_version,
            layout_hash: hash_string(s.layout_hash),
            segment_size: s.segment_size,
            creator_pid: s.creator_pid,
            created_realtime_ns: s.created_realtime_ns,
            poisoned: s.poisoned,
            capacity: s.capacity,
            max_payload: s.max_payload,
            head: s.head,
            tail: s.tail,
            used_bytes: s.used_bytes,
            free_bytes: s.free_bytes(),
            occupancy_percent: (s.occupancy_percent() * 1000.0).round() / 1000.0,
            consistent: s.consistent,
            producer: (&s.producer).into(),
            consumer: (&s.consumer).into(),
        }
    }
}

/// One record of an SPSC channel (`SpscRecord`), its payload in hex.
#[derive(Serialize)]
struct SpscRecordJson {
    position: u64,
    #[serde(rename = "type")]
    record_type: u16,
    flags: u16,
    len: u32,
    hex: String,
    truncated: bool,
}

impl From<&SpscRecord> for SpscRecordJson {
    fn from(r: &SpscRecord) -> Self {
        SpscRecordJson {
            position: r.position,
            record_type: r.record_type,
            flags: r.flags,
            len: r.len,
            hex: hex_string(&r.payload),
            truncated: r.is_truncated(),
        }
    }
}

/// How an SPSC channel's record walk ended.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum SpscWalk<'a> {
    Complete,
    Limit {
        next_position: u64,
        remaining_bytes: u64,
    },
    Overtaken {
        reason: &'a str,
    },
    Corrupt {
        reason: &'a str,
    },
}

impl<'a> From<&'a WalkEnd> for SpscWalk<'a> {
    fn from(end: &'a WalkEnd) -> Self {
        match end {
            WalkEnd::Complete => SpscWalk::Complete,
            WalkEnd::Limit {
                position,
                remaining,
            } => SpscWalk::Limit {
                next_position: *position,
                remaining_bytes: *remaining,
            },
            WalkEnd::Overtaken { reason } => SpscWalk::Overtaken { reason },
            WalkEnd::Corrupt { reason } => SpscWalk::Corrupt { reason },
        }
    }
}

/// `ring-dump spsc NAME --json`; `lag` is the consumer's backlog, `null`
/// if the consumer moved past every walk.
#[derive(Serialize)]
struct SpscDocument<'a> {
    namespace: &'a str,
    #[serde(flatten)]
    snapshot: SpscFields,
    lag: Option<Lag>,
    records: Vec<SpscRecordJson>,
    walk: SpscWalk<'a>,
}

pub(crate) fn spsc(
    ns: &Namespace,
    s: &SpscSnapshot,
    records: &[SpscRecord],
    end: &WalkEnd,
    backlog: Option<Backlog>,
) -> String {
    document(&SpscDocument {
        namespace: ns.name(),
        snapshot: s.into(),
        lag: backlog.map(Lag::from),
        records: records.iter().map(Into::into).collect(),
        walk: end.into(),
    })
}

// ---------------------------------------------------------------------------
// Payloads (topics and queues)
// ---------------------------------------------------------------------------

/// One TLV item of a Protocol V2 message.
#[derive(Serialize)]
struct Tlv {
    #[serde(rename = "type")]
    tlv_type: u8,
    len: usize,
    extended: bool,
}

/// A Protocol V2 message's header and TLV items (`V2Summary`).
#[derive(Serialize)]
struct V2 {
    relay_domain: u8,
    domain: Option<&'static str>,
    version: u8,
    source: u8,
    source_name: Option<&'static str>,
    flags: u8,
    sequence: u64,
    timestamp_ns: u64,
    checksum: u32,
    tlvs: Vec<Tlv>,
}

impl From<&V2Summary> for V2 {
    fn from(v: &V2Summary) -> Self {
        V2 {
            relay_domain: v.relay_domain,
            domain: v.domain_name(),
            version: v.version,
            source: v.source,
            source_name: v.source_name(),
            flags: v.flags,
            sequence: v.sequence,
            timestamp_ns: v.timestamp_ns,
            checksum: v.checksum,
            tlvs: v
                .tlvs
                .iter()
                .map(|t| Tlv {
                    tlv_type: t.tlv_type,
                    len: t.len,
                    extended: t.extended,
                })
                .collect(),
        }
    }
}

/// A whole payload: its first `--hex-bytes` bytes in hex, and its Protocol
/// V2 decoding (`null` if it is none, with why in `v2_error`).
#[derive(Serialize)]
struct Payload {
    hex: String,
    truncated: bool,
    v2: Option<V2>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v2_error: Option<String>,
}

impl Payload {
    fn new(payload: &[u8], decoded: Result<V2Summary, ParseError>, hex_bytes: usize) -> Self {
        let shown = &payload[..payload.len().min(hex_bytes)];
        let (v2, v2_error) = match decoded {
            Ok(v) => (Some(V2::from(&v)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Payload {
            hex: hex_string(shown),
            truncated: shown.len() < payload.len(),
            v2,
            v2_error,
        }
    }
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

/// A topic's publisher (`PublisherInfo`); `liveness` is `alive` or
/// `dead`, `cpus` is omitted unless it is alive and this host shows its
/// pid's CPUs.
#[derive(Serialize)]
struct Publisher {
    slot: usize,
    state: &'static str,
    pid: u32,
    published: u64,
    alive: bool,
    liveness: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    counters: Counts,
}

impl From<&PublisherInfo> for Publisher {
    fn from(p: &PublisherInfo) -> Self {
        Publisher {
            slot: p.slot,
            state: participant_state_name(p.state),
            pid: p.pid,
            published: p.published,
            alive: p.alive,
            liveness: Liveness::of(p.alive).json_name(),
            cpus: cpus(p.pid, p.alive),
            counters: Counts::from(&p.counters),
        }
    }
}

/// A topic's subscriber (`SubscriberInfo`); `name` is `null` and `durable`
/// false for an anonymous one. `liveness` is `alive`, `dead` or
/// `detached_durable`; `lag_bytes` the payload bytes of the records it has
/// not read that the log still holds (only in `show` and `topic`); `cpus`
/// as a publisher's.
#[derive(Serialize)]
struct Subscriber {
    slot: usize,
    state: &'static str,
    name: Option<String>,
    durable: bool,
    pid: u32,
    cursor: u64,
    lag: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lag_bytes: Option<u64>,
    missed: u64,
    heartbeat_age_ns: Option<u64>,
    alive: bool,
    liveness: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    counters: Counts,
}

impl From<&SubscriberInfo> for Subscriber {
    fn from(s: &SubscriberInfo) -> Self {
        Subscriber {
            slot: s.slot,
            state: participant_state_name(s.state),
            name: s.name.clone(),
            durable: s.name.is_some(),
            pid: s.pid,
            cursor: s.cursor,
            lag: s.lag,
            lag_bytes: None,
            missed: s.missed,
            heartbeat_age_ns: s.heartbeat_age_ns,
            alive: s.alive,
            liveness: Liveness::of_subscriber(s).json_name(),
            cpus: cpus(s.pid, s.alive),
            counters: Counts::from(&s.counters),
        }
    }
}

#[derive(Serialize)]
struct TopicCounters {
    reclaimed_claims: u64,
    reaped_subscribers: u64,
    reaped_publishers: u64,
}

/// A topic's snapshot (`TopicSnapshot`).
#[derive(Serialize)]
pub(crate) struct TopicFields {
    name: String,
    kind: &'static str,
    segment: String,
    path: String,
    entry: usize,
    epoch: u32,
    creator_pid: u32,
    layout_version: u32,
    layout_hash: String,
    segment_size: u64,
    created_realtime_ns: u64,
    poisoned: bool,
    policy: &'static str,
    slots: u32,
    slot_stride: u32,
    max_payload: u32,
    max_subscribers: u32,
    max_publishers: u32,
    reclaim_after_ns: u64,
    tail: u64,
    gate: u64,
    oldest: u64,
    registrations: u64,
    sleepers: u32,
    counters: TopicCounters,
    publishers_alive: usize,
    subscribers_alive: usize,
    max_lag: Option<u64>,
    publishers: Vec<Publisher>,
    subscribers: Vec<Subscriber>,
}

impl From<&TopicSnapshot> for TopicFields {
    fn from(s: &TopicSnapshot) -> Self {
        let t = &s.topic;
        let c = &s.config;
        TopicFields {
            name: t.name.clone(),
            kind: "topic",
            segment: t.segment.clone(),
            path: s.path.to_string_lossy().into_owned(),
            entry: t.entry,
            epoch: t.epoch,
            creator_pid: t.creator_pid,
            layout_version: s.layout_version,
            layout_hash: hash_string(s.layout_hash),
            segment_size: s.segment_size,
            created_realtime_ns: s.created_realtime_ns,
            poisoned: s.poisoned,
            policy: policy_name(c.policy),
            slots: c.slots,
            slot_stride: s.slot_stride,
            max_payload: c.max_payload,
            max_subscribers: c.max_subscribers,
            max_publishers: c.max_publishers,
            reclaim_after_ns: s.reclaim_after_ns,
            tail: s.tail,
            gate: s.gate,
            oldest: s.oldest(),
            registrations: s.registrations,
            sleepers: s.sleepers,
            counters: TopicCounters {
                reclaimed_claims: s.reclaimed_claims,
                reaped_subscribers: s.reaped_subscribers,
                reaped_publishers: s.reaped_publishers,
            },
            publishers_alive: s.publishers_alive(),
            subscribers_alive: s.subscribers_alive(),
            max_lag: s.max_lag(),
            publishers: s.publishers.iter().map(Into::into).collect(),
            subscribers: s.subscribers.iter().map(Into::into).collect(),
        }
    }
}

/// One record of a topic's log (`BroadcastRecord`).
#[derive(Serialize)]
struct TopicRecord {
    sequence: u64,
    #[serde(rename = "type")]
    record_type: u16,
    flags: u16,
    len: usize,
    #[serde(flatten)]
    payload: Payload,
}

/// How a topic's record walk ended.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum TopicWalk<'a> {
    Complete,
    Limit {
        below_sequence: u64,
        remaining_sequences: u64,
    },
    Overwritten {
        reason: &'a str,
    },
    Corrupt {
        reason: &'a str,
    },
}

impl<'a> From<&'a LogWalkEnd> for TopicWalk<'a> {
    fn from(end: &'a LogWalkEnd) -> Self {
        match end {
            LogWalkEnd::Complete => TopicWalk::Complete,
            LogWalkEnd::Limit { below, remaining } => TopicWalk::Limit {
                below_sequence: *below,
                remaining_sequences: *remaining,
            },
            LogWalkEnd::Overwritten { reason } => TopicWalk::Overwritten { reason },
            LogWalkEnd::Corrupt { reason } => TopicWalk::Corrupt { reason },
        }
    }
}

/// `ring-dump topic NAME --json`.
#[derive(Serialize)]
struct TopicDocument<'a> {
    namespace: &'a str,
    #[serde(flatten)]
    snapshot: TopicFields,
    records: Vec<TopicRecord>,
    walk: TopicWalk<'a>,
    /// The Zenoh bridge's counters, null if the topic was never bridged.
    bridge: serde_json::Value,
}

pub(crate) fn topic(
    ns: &Namespace,
    s: &TopicSnapshot,
    records: &[BroadcastRecord],
    end: &LogWalkEnd,
    hex_bytes: usize,
    lag_bytes: &[u64],
    bridge: &BridgeView,
) -> String {
    let mut snapshot = TopicFields::from(s);
    for (sub, bytes) in snapshot.subscribers.iter_mut().zip(lag_bytes) {
        sub.lag_bytes = Some(*bytes);
    }
    document(&TopicDocument {
        namespace: ns.name(),
        snapshot,
        records: records
            .iter()
            .map(|r| TopicRecord {
                sequence: r.sequence,
                record_type: r.record_type,
                flags: r.flags,
                len: r.payload.len(),
                payload: Payload::new(&r.payload, r.decode_v2(), hex_bytes),
            })
            .collect(),
        walk: end.into(),
        bridge: crate::bridge::json(bridge),
    })
}

// ---------------------------------------------------------------------------
// Work queues
// ---------------------------------------------------------------------------

/// A work queue's producer (`QueueProducerInfo`); `claimed` is the
/// sequence of the claim it holds, `null` for none.
#[derive(Serialize)]
struct Producer {
    slot: usize,
    state: &'static str,
    pid: u32,
    committed: u64,
    claimed: Option<u64>,
    reclaimed: u64,
    alive: bool,
    liveness: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    counters: Counts,
}

impl From<&QueueProducerInfo> for Producer {
    fn from(p: &QueueProducerInfo) -> Self {
        Producer {
            slot: p.slot,
            state: participant_state_name(p.state),
            pid: p.pid,
            committed: p.committed,
            claimed: p.claimed,
            reclaimed: p.reclaimed,
            alive: p.alive,
            liveness: Liveness::of(p.alive).json_name(),
            cpus: cpus(p.pid, p.alive),
            counters: Counts::from(&p.counters),
        }
    }
}

/// A work queue's consumer (`QueueConsumerInfo`).
#[derive(Serialize)]
struct Consumer {
    slot: usize,
    state: &'static str,
    pid: u32,
    taken: u64,
    acked: u64,
    redelivered: u64,
    sleeping: bool,
    holding: usize,
    alive: bool,
    liveness: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    counters: Counts,
}

impl From<&QueueConsumerInfo> for Consumer {
    fn from(c: &QueueConsumerInfo) -> Self {
        Consumer {
            slot: c.slot,
            state: participant_state_name(c.state),
            pid: c.pid,
            taken: c.taken,
            acked: c.acked,
            redelivered: c.redelivered,
            sleeping: c.sleeping,
            holding: c.holding,
            alive: c.alive,
            liveness: Liveness::of(c.alive).json_name(),
            cpus: cpus(c.pid, c.alive),
            counters: Counts::from(&c.counters),
        }
    }
}

/// What a record slot in flight holds (`InFlightState`), as `state` and
/// the fields of that state.
#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum InFlightStateJson {
    Claimed {
        producer: Option<usize>,
    },
    Writing {
        producer: usize,
        producer_alive: bool,
    },
    Committed {
        redelivered: bool,
    },
    Taken {
        consumer: usize,
        consumer_alive: bool,
        redelivered: bool,
    },
    Skipped {
        suspect: bool,
    },
}

/// A record slot in flight (`InFlightRecord`), its stamp in hex.
#[derive(Serialize)]
struct InFlight {
    sequence: u64,
    slot: usize,
    stamp: String,
    #[serde(flatten)]
    state: InFlightStateJson,
}

impl From<&InFlightRecord> for InFlight {
    fn from(f: &InFlightRecord) -> Self {
        let state = match f.state {
            InFlightState::Claimed { producer } => InFlightStateJson::Claimed { producer },
            InFlightState::Writing {
                producer,
                producer_alive,
            } => InFlightStateJson::Writing {
                producer,
                producer_alive,
            },
            InFlightState::Committed { redelivered } => {
                InFlightStateJson::Committed { redelivered }
            }
            InFlightState::Taken {
                consumer,
                consumer_alive,
                redelivered,
            } => InFlightStateJson::Taken {
                consumer,
                consumer_alive,
                redelivered,
            },
            InFlightState::Skipped { suspect } => InFlightStateJson::Skipped { suspect },
        };
        InFlight {
            sequence: f.sequence,
            slot: f.slot,
            stamp: hash_string(f.stamp),
            state,
        }
    }
}

#[derive(Serialize)]
struct QueueCounters {
    redelivered: u64,
    reclaimed_claims: u64,
    reaped_consumers: u64,
    reaped_producers: u64,
}

/// A work queue's snapshot (`QueueSnapshot`).
#[derive(Serialize)]
pub(crate) struct QueueFields {
    name: String,
    kind: &'static str,
    segment: String,
    path: String,
    entry: usize,
    epoch: u32,
    creator_pid: u32,
    layout_version: u32,
    layout_hash: String,
    segment_size: u64,
    created_realtime_ns: u64,
    poisoned: bool,
    slots: u32,
    slot_stride: u32,
    max_payload: u32,
    max_producers: u32,
    max_consumers: u32,
    reclaim_after_ns: u64,
    head: u64,
    tail: u64,
    oldest: u64,
    depth: u64,
    redelivered_waiting: usize,
    taken: usize,
    taken_by_dead: usize,
    in_flight_count: usize,
    sleepers: u32,
    counters: QueueCounters,
    producers_alive: usize,
    consumers_alive: usize,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
    in_flight: Vec<InFlight>,
}

impl From<&QueueSnapshot> for QueueFields {
    fn from(s: &QueueSnapshot) -> Self {
        let r = &s.queue;
        let c = &s.config;
        QueueFields {
            name: r.name.clone(),
            kind: "queue",
            segment: r.segment.clone(),
            path: s.path.to_string_lossy().into_owned(),
            entry: r.entry,
            epoch: r.epoch,
            creator_pid: r.creator_pid,
            layout_version: s.layout_version,
            layout_hash: hash_string(s.layout_hash),
            segment_size: s.segment_size,
            created_realtime_ns: s.created_realtime_ns,
            poisoned: s.poisoned,
            slots: c.slots,
            slot_stride: s.slot_stride,
            max_payload: c.max_payload,
            max_producers: c.max_producers,
            max_consumers: c.max_consumers,
            reclaim_after_ns: s.reclaim_after_ns,
            head: s.head,
            tail: s.tail,
            oldest: s.oldest(),
            depth: s.depth,
            redelivered_waiting: s.redelivered_waiting(),
            taken: s.taken(),
            taken_by_dead: s.taken_by_dead(),
            in_flight_count: s.in_flight.len(),
            sleepers: s.sleepers,
            counters: QueueCounters {
                redelivered: s.redelivered,
                reclaimed_claims: s.reclaimed_claims,
                reaped_consumers: s.reaped_consumers,
                reaped_producers: s.reaped_producers,
            },
            producers_alive: s.producers_alive(),
            consumers_alive: s.consumers_alive(),
            producers: s.producers.iter().map(Into::into).collect(),
            consumers: s.consumers.iter().map(Into::into).collect(),
            in_flight: s.in_flight.iter().map(Into::into).collect(),
        }
    }
}

/// One waiting record of a work queue (`QueueRecord`).
#[derive(Serialize)]
struct QueueRecordJson {
    sequence: u64,
    #[serde(rename = "type")]
    record_type: u16,
    len: u32,
    redelivered: bool,
    #[serde(flatten)]
    payload: Payload,
}

impl QueueRecordJson {
    fn new(r: &QueueRecord, hex_bytes: usize) -> Self {
        QueueRecordJson {
            sequence: r.sequence,
            record_type: r.record_type,
            len: r.len,
            redelivered: r.redelivered,
            payload: Payload::new(&r.payload, r.decode_v2(), hex_bytes),
        }
    }
}

/// How the walk over a queue's waiting records ended.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum QueueWalkStatus<'a> {
    Complete,
    Limit { not_shown: usize },
    Corrupt { reason: &'a str },
}

/// The walk's end, and how many waiting records were taken and
/// acknowledged before they were copied.
#[derive(Serialize)]
struct QueueWalk<'a> {
    #[serde(flatten)]
    status: QueueWalkStatus<'a>,
    gone: u64,
}

impl<'a> QueueWalk<'a> {
    fn new(end: &'a QueueWalkEnd, gone: u64) -> Self {
        let status = match end {
            QueueWalkEnd::Complete => QueueWalkStatus::Complete,
            QueueWalkEnd::Limit { not_shown } => QueueWalkStatus::Limit {
                not_shown: *not_shown,
            },
            QueueWalkEnd::Corrupt { reason } => QueueWalkStatus::Corrupt { reason },
        };
        QueueWalk { status, gone }
    }
}

/// `ring-dump queue NAME --json`; `lag` is the records waiting for any
/// consumer and their payload bytes, `null` if a record is corrupt.
#[derive(Serialize)]
struct QueueDocument<'a> {
    namespace: &'a str,
    #[serde(flatten)]
    snapshot: QueueFields,
    lag: Option<Lag>,
    records: Vec<QueueRecordJson>,
    walk: QueueWalk<'a>,
}

pub(crate) fn queue(q: &QueueReport<'_>) -> String {
    document(&QueueDocument {
        namespace: q.ns.name(),
        snapshot: q.snapshot.into(),
        lag: q.backlog.map(Lag::from),
        records: q
            .records
            .iter()
            .map(|r| QueueRecordJson::new(r, q.hex_bytes))
            .collect(),
        walk: QueueWalk::new(q.end, q.gone),
    })
}

// ---------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------

/// What an entry of `list` holds besides its `status`.
#[derive(Serialize)]
#[serde(untagged)]
enum EntryBody<'a> {
    Topic(Box<TopicFields>),
    Spsc(Box<SpscFields>),
    Queue(Box<QueueFields>),
    /// A ring that cannot be shown: why, and the exit code `show` would
    /// end with.
    Unusable {
        name: &'a str,
        kind: &'static str,
        error: &'a str,
        exit_code: u8,
    },
    /// A ready ring of a kind this ring-dump does not know.
    OtherKind {
        name: &'a str,
        kind: &'a str,
    },
    Creating {
        name: Option<&'a str>,
        kind: Option<&'static str>,
        entry: usize,
        epoch: u32,
        creator_alive: bool,
    },
    Removed {
        name: &'a str,
        kind: Option<&'static str>,
        entry: usize,
        epoch: u32,
    },
    Corrupt {
        name: Option<&'a str>,
        kind: Option<&'static str>,
        entry: usize,
        error: &'a str,
        exit_code: u8,
    },
}

/// One entry of `list`: `ready`, `unusable`, `creating`, `removed` or
/// `corrupt`, then its fields.
#[derive(Serialize)]
struct Entry<'a> {
    status: &'static str,
    #[serde(flatten)]
    body: EntryBody<'a>,
    /// A bridged topic's Zenoh bridge counters.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    bridge: serde_json::Value,
}

impl<'a> From<&'a Row> for Entry<'a> {
    fn from(row: &'a Row) -> Self {
        let (status, body) = match row {
            Row::Topic { result: Ok(s), .. } => {
                ("ready", EntryBody::Topic(Box::new((&**s).into())))
            }
            Row::Channel { result: Ok(s), .. } => {
                ("ready", EntryBody::Spsc(Box::new((&**s).into())))
            }
            Row::Queue { result: Ok(s), .. } => {
                ("ready", EntryBody::Queue(Box::new((&**s).into())))
            }
            Row::Topic {
                name,
                result: Err(f),
                ..
            }
            | Row::Channel {
                name,
                result: Err(f),
            }
            | Row::Queue {
                name,
                result: Err(f),
            } => (
                "unusable",
                EntryBody::Unusable {
                    name,
                    kind: row.kind(),
                    error: &f.reason,
                    exit_code: f.code,
                },
            ),
            Row::OtherKind { name, kind } => ("ready", EntryBody::OtherKind { name, kind }),
            Row::Creating {
                entry,
                epoch,
                creator_alive,
                name,
            } => (
                "creating",
                EntryBody::Creating {
                    name: name.as_deref(),
                    kind: None,
                    entry: *entry,
                    epoch: *epoch,
                    creator_alive: *creator_alive,
                },
            ),
            Row::Removed { entry, epoch, name } => (
                "removed",
                EntryBody::Removed {
                    name,
                    kind: None,
                    entry: *entry,
                    epoch: *epoch,
                },
            ),
            Row::Corrupt { entry, reason } => (
                "corrupt",
                EntryBody::Corrupt {
                    name: None,
                    kind: None,
                    entry: *entry,
                    error: reason,
                    exit_code: crate::EXIT_UNUSABLE,
                },
            ),
        };
        let bridge = match row {
            Row::Topic { bridge, .. } => crate::bridge::json(bridge),
            _ => serde_json::Value::Null,
        };
        Entry {
            status,
            body,
            bridge,
        }
    }
}

/// `ring-dump list --json`.
#[derive(Serialize)]
struct ListDocument<'a> {
    namespace: &'a str,
    path: String,
    entries: Vec<Entry<'a>>,
}

pub(crate) fn list(ns: &Namespace, rows: &[Row]) -> String {
    document(&ListDocument {
        namespace: ns.name(),
        path: ns.path().to_string_lossy().into_owned(),
        entries: rows.iter().map(Into::into).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_show_hex_and_why_they_are_not_protocol_v2() {
        let bytes = b"\x01\x02\x03";
        let p = Payload::new(bytes, shmbus::inspect::decode_v2(bytes), 2);
        let v = serde_json::to_value(&p).expect("serializes");
        assert_eq!(v["hex"], "0102");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["v2"], serde_json::Value::Null);
        assert!(v["v2_error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }

    #[test]
    fn walk_ends_are_tagged_by_status() {
        let end = LogWalkEnd::Limit {
            below: 7,
            remaining: 3,
        };
        let v = serde_json::to_value(TopicWalk::from(&end)).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"status": "limit", "below_sequence": 7, "remaining_sequences": 3})
        );
        let end = QueueWalkEnd::Corrupt {
            reason: "bad".into(),
        };
        let v = serde_json::to_value(QueueWalk::new(&end, 2)).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"status": "corrupt", "reason": "bad", "gone": 2})
        );
    }
}
