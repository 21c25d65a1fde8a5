//! Text renderings of snapshots and records, for every ring kind (the JSON
//! documents are in `json.rs`).

use std::fmt::Write;

use shmbus::inspect::{
    participant_state_name, policy_name, BroadcastRecord, CounterValues, InFlightRecord,
    InFlightState, PublisherInfo, QueueConsumerInfo, QueueProducerInfo, QueueRecord, QueueSnapshot,
    RoleInfo, SpscRecord, SpscSnapshot, SubscriberInfo, TopicSnapshot, V2Summary,
};
use shmbus::record::ParseError;
use shmbus::Namespace;

use crate::bridge::BridgeView;
use crate::participant::{cpus, Backlog, Liveness};
use crate::{LogWalkEnd, QueueWalkEnd, Row, WalkEnd};

/// What `ring-dump queue NAME` shows.
pub(crate) struct QueueReport<'a> {
    pub(crate) ns: &'a Namespace,
    pub(crate) snapshot: &'a QueueSnapshot,
    /// The waiting records copied, oldest first.
    pub(crate) records: &'a [QueueRecord],
    pub(crate) end: &'a QueueWalkEnd,
    /// Waiting records taken and acknowledged before the walk copied them.
    pub(crate) gone: u64,
    /// Records in flight listed in the text form (`--records`).
    pub(crate) max_in_flight: usize,
    /// Payload bytes shown in hex (`--hex-bytes`).
    pub(crate) hex_bytes: usize,
    /// The records waiting and their payload bytes, `None` if unknown.
    pub(crate) backlog: Option<Backlog>,
}

/// Payload bytes per line of a hex dump.
const HEX_LINE: usize = 16;

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

pub(crate) fn spsc_text(
    ns: &Namespace,
    s: &SpscSnapshot,
    records: &[SpscRecord],
    end: &WalkEnd,
    backlog: Option<Backlog>,
) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail; the results are ignored throughout.
    let _ = writeln!(
        o,
        "channel    {}/{} (spsc ring {}, directory entry {})",
        ns.name(),
        s.name,
        s.channel.segment,
        s.channel.entry
    );
    let _ = writeln!(o, "path       {}", s.path.display());
    let _ = writeln!(
        o,
        "layout     version {}, hash {:#018x}",
        s.layout_version, s.layout_hash
    );
    let _ = writeln!(
        o,
        "segment    {} bytes, created {} by pid {}",
        s.segment_size,
        utc_timestamp(s.created_realtime_ns),
        s.creator_pid
    );
    let _ = writeln!(
        o,
        "state      {}",
        if s.poisoned { "poisoned" } else { "healthy" }
    );
    let _ = writeln!(
        o,
        "capacity   {} bytes, max payload {} bytes, wake-ups {}",
        s.capacity,
        s.max_payload,
        if s.wakeups { "on" } else { "off" }
    );
    let _ = writeln!(
        o,
        "positions  head {}, tail {}{}",
        s.head,
        s.tail,
        if s.consistent {
            ""
        } else {
            " (sampled while the consumer moved)"
        }
    );
    let _ = writeln!(
        o,
        "occupancy  {} of {} bytes used ({:.1}%), {} free",
        s.used_bytes,
        s.capacity,
        s.occupancy_percent(),
        s.free_bytes()
    );
    let _ = writeln!(o, "lag        {}", backlog_text(backlog));
    let _ = writeln!(o, "producer   {}", role_text(&s.producer));
    let _ = writeln!(o, "consumer   {}", role_text(&s.consumer));
    let _ = writeln!(
        o,
        "counters   producer: {}",
        counters_text(&s.producer.counters)
    );
    let _ = writeln!(
        o,
        "           consumer: {}",
        counters_text(&s.consumer.counters)
    );
    let _ = writeln!(o, "records    {} shown", records.len());
    for r in records {
        let _ = writeln!(
            o,
            "  position {}  type {}  flags {:#06x}  len {}",
            r.position, r.record_type, r.flags, r.len
        );
        hex_dump(&mut o, &r.payload);
        if r.is_truncated() {
            let _ = writeln!(
                o,
                "    ... {} more bytes (raise --hex-bytes)",
                u64::from(r.len) - r.payload.len() as u64
            );
        }
    }
    match end {
        WalkEnd::Complete => {}
        WalkEnd::Limit {
            position,
            remaining,
        } => {
            let _ = writeln!(
                o,
                "  ... {remaining} more published bytes from position {position} (raise --records)"
            );
        }
        WalkEnd::Overtaken { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
        WalkEnd::Corrupt { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
    }
    o
}

/// A participant's counters on one line: records and bytes always, the
/// rest only where not zero.
fn counters_text(c: &CounterValues) -> String {
    let mut o = format!("records {}  bytes {}", c.records, c.bytes);
    let mut more = |name: &str, v: u64| {
        if v != 0 {
            let _ = write!(o, "  {name} {v}");
        }
    };
    more("full", c.full);
    more("sleeps", c.sleeps);
    more("wakes", c.wakes);
    more("lapped", c.lapped);
    more("missed", c.missed);
    more("reclaims", c.reclaims);
    more("lost-claims", c.lost_claims);
    more("skips", c.skips);
    more("redelivered", c.redelivered);
    more("acked", c.acked);
    if c.full_ns != 0 {
        let _ = write!(o, "  waited-for-space {}", duration_text(c.full_ns));
    }
    o
}

fn role_text(r: &RoleInfo) -> String {
    match (r.attached, r.pid) {
        (true, 0) => "attached".to_owned(),
        (true, pid) => format!("attached (pid {pid}){}", cpus_text(pid, true)),
        (false, 0) => "not attached".to_owned(),
        (false, pid) => format!("not attached (pid {pid} left without detaching)"),
    }
}

/// `  cpus LIST` for a live pid whose CPUs this host shows, else nothing.
fn cpus_text(pid: u32, alive: bool) -> String {
    cpus(pid, alive).map_or_else(String::new, |c| format!("  cpus {c}"))
}

/// A consumer's backlog: records and their payload bytes.
fn backlog_text(backlog: Option<Backlog>) -> String {
    match backlog {
        Some(b) => format!(
            "{} record{} waiting, {} payload bytes",
            b.records,
            if b.records == 1 { "" } else { "s" },
            b.bytes
        ),
        None => "unknown (the consumer moved past every walk; look again)".to_owned(),
    }
}

pub(crate) fn hex_dump(o: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        let _ = writeln!(o, "    (no payload bytes)");
        return;
    }
    for (line, chunk) in bytes.chunks(HEX_LINE).enumerate() {
        let mut hex = String::with_capacity(HEX_LINE * 3);
        for (i, b) in chunk.iter().enumerate() {
            if i > 0 {
                hex.push(' ');
            }
            let _ = write!(hex, "{b:02x}");
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(
            o,
            "    {:04x}  {hex:<width$}  |{ascii}|",
            line * HEX_LINE,
            width = HEX_LINE * 3 - 1
        );
    }
}

pub(crate) fn topic_text(
    ns: &Namespace,
    s: &TopicSnapshot,
    records: &[BroadcastRecord],
    end: &LogWalkEnd,
    hex_bytes: usize,
    lag_bytes: &[u64],
    bridge: &BridgeView,
) -> String {
    let mut o = String::new();
    let t = &s.topic;
    let c = &s.config;
    let _ = writeln!(
        o,
        "topic        {}/{} (broadcast log {}, directory entry {})",
        ns.name(),
        t.name,
        t.segment,
        t.entry
    );
    let _ = writeln!(o, "path         {}", s.path.display());
    let _ = writeln!(
        o,
        "layout       version {}, hash {:#018x}",
        s.layout_version, s.layout_hash
    );
    let _ = writeln!(
        o,
        "segment      {} bytes, created {} by pid {}",
        s.segment_size,
        utc_timestamp(s.created_realtime_ns),
        t.creator_pid
    );
    let _ = writeln!(
        o,
        "state        {}",
        if s.poisoned { "poisoned" } else { "healthy" }
    );
    let _ = writeln!(
        o,
        "config       {} slots of {} bytes, max payload {} bytes, {}, claim timeout {}",
        c.slots,
        s.slot_stride,
        c.max_payload,
        policy_name(c.policy),
        duration_text(s.reclaim_after_ns)
    );
    let _ = writeln!(
        o,
        "             {} subscriber slots, {} publisher slots",
        c.max_subscribers, c.max_publishers
    );
    let _ = writeln!(
        o,
        "positions    tail {}, gate {}, oldest held {}",
        s.tail,
        s.gate,
        s.oldest()
    );
    let _ = writeln!(
        o,
        "waiting      {} sleeping subscriber{}, {} registrations so far",
        s.sleepers,
        if s.sleepers == 1 { "" } else { "s" },
        s.registrations
    );
    let _ = writeln!(
        o,
        "counters     reclaimed claims {}, reaped subscribers {}, reaped publishers {}",
        s.reclaimed_claims, s.reaped_subscribers, s.reaped_publishers
    );
    crate::bridge::show_text(&mut o, bridge);
    let _ = writeln!(
        o,
        "publishers   {} in use, {} alive",
        s.publishers.len(),
        s.publishers_alive()
    );
    for p in &s.publishers {
        let _ = writeln!(o, "  {}", publisher_text(p));
    }
    let _ = writeln!(
        o,
        "subscribers  {} in use, {} alive",
        s.subscribers.len(),
        s.subscribers_alive()
    );
    for (i, sub) in s.subscribers.iter().enumerate() {
        let _ = writeln!(o, "  {}", subscriber_text(sub, lag_bytes.get(i).copied()));
    }
    let _ = writeln!(o, "records      {} shown, newest first", records.len());
    for r in records {
        let len = r.payload.len();
        let _ = writeln!(
            o,
            "  seq {}  type {}  flags {:#06x}  len {}",
            r.sequence, r.record_type, r.flags, len
        );
        payload_text(&mut o, &r.payload, r.decode_v2(), hex_bytes);
    }
    match end {
        LogWalkEnd::Complete => {}
        LogWalkEnd::Limit { below, remaining } => {
            let _ = writeln!(
                o,
                "  ... up to {remaining} older records below sequence {below} (raise --records)"
            );
        }
        LogWalkEnd::Overwritten { reason } | LogWalkEnd::Corrupt { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
    }
    o
}

/// A record's payload decoded as Protocol V2, or its first `hex_bytes`
/// bytes in hex.
fn payload_text(
    o: &mut String,
    payload: &[u8],
    decoded: Result<V2Summary, ParseError>,
    hex_bytes: usize,
) {
    match decoded {
        Ok(v2) => v2_text(o, &v2),
        Err(e) => {
            let len = payload.len();
            let _ = writeln!(o, "    not Protocol V2 ({e}); hex:");
            hex_dump(o, &payload[..len.min(hex_bytes)]);
            if len > hex_bytes {
                let _ = writeln!(
                    o,
                    "    ... {} more bytes (raise --hex-bytes)",
                    len - hex_bytes
                );
            }
        }
    }
}

pub(crate) fn queue_text(q: &QueueReport<'_>) -> String {
    let mut o = String::new();
    let s = q.snapshot;
    let r = &s.queue;
    let c = &s.config;
    let _ = writeln!(
        o,
        "queue        {}/{} (work queue {}, directory entry {})",
        q.ns.name(),
        r.name,
        r.segment,
        r.entry
    );
    let _ = writeln!(o, "path         {}", s.path.display());
    let _ = writeln!(
        o,
        "layout       version {}, hash {:#018x}",
        s.layout_version, s.layout_hash
    );
    let _ = writeln!(
        o,
        "segment      {} bytes, created {} by pid {}",
        s.segment_size,
        utc_timestamp(s.created_realtime_ns),
        r.creator_pid
    );
    let _ = writeln!(
        o,
        "state        {}",
        if s.poisoned { "poisoned" } else { "healthy" }
    );
    let _ = writeln!(
        o,
        "config       {} slots of {} bytes, max payload {} bytes, reclaim after {}",
        c.slots,
        s.slot_stride,
        c.max_payload,
        duration_text(s.reclaim_after_ns)
    );
    let _ = writeln!(
        o,
        "             {} producer slots, {} consumer slots",
        c.max_producers, c.max_consumers
    );
    let _ = writeln!(
        o,
        "positions    head {}, tail {}, oldest in flight {}",
        s.head,
        s.tail,
        s.oldest()
    );
    let _ = writeln!(
        o,
        "depth        {} waiting ({} redelivered), {} taken ({} by dead consumers), {} in flight",
        s.depth,
        s.redelivered_waiting(),
        s.taken(),
        s.taken_by_dead(),
        s.in_flight.len()
    );
    let _ = writeln!(
        o,
        "waiting      {} sleeping consumer{}",
        s.sleepers,
        if s.sleepers == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "lag          {} (for any consumer)",
        backlog_text(q.backlog)
    );
    let _ = writeln!(
        o,
        "counters     redelivered {}, reclaimed claims {}, reaped consumers {}, reaped producers {}",
        s.redelivered, s.reclaimed_claims, s.reaped_consumers, s.reaped_producers
    );
    let _ = writeln!(
        o,
        "producers    {} in use, {} alive",
        s.producers.len(),
        s.producers_alive()
    );
    for p in &s.producers {
        let _ = writeln!(o, "  {}", queue_producer_text(p));
    }
    let _ = writeln!(
        o,
        "consumers    {} in use, {} alive",
        s.consumers.len(),
        s.consumers_alive()
    );
    for c in &s.consumers {
        let _ = writeln!(o, "  {}", queue_consumer_text(c));
    }
    let _ = writeln!(o, "in flight    {} record slots", s.in_flight.len());
    for f in s.in_flight.iter().take(q.max_in_flight) {
        let _ = writeln!(o, "  {}", in_flight_text(f));
    }
    if s.in_flight.len() > q.max_in_flight {
        let _ = writeln!(
            o,
            "  ... {} more in flight (raise --records)",
            s.in_flight.len() - q.max_in_flight
        );
    }
    let _ = writeln!(
        o,
        "records      {} waiting shown, oldest first",
        q.records.len()
    );
    for r in q.records {
        let _ = writeln!(
            o,
            "  seq {}  type {}  len {}{}",
            r.sequence,
            r.record_type,
            r.len,
            if r.redelivered { "  redelivered" } else { "" }
        );
        payload_text(&mut o, &r.payload, r.decode_v2(), q.hex_bytes);
    }
    match q.end {
        QueueWalkEnd::Complete => {}
        QueueWalkEnd::Limit { not_shown } => {
            let _ = writeln!(
                o,
                "  ... {not_shown} more waiting record{} (raise --records)",
                if *not_shown == 1 { "" } else { "s" }
            );
        }
        QueueWalkEnd::Corrupt { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
    }
    if q.gone > 0 {
        let _ = writeln!(
            o,
            "  {} waiting record{} taken and acknowledged before {} copied",
            q.gone,
            if q.gone == 1 { " was" } else { "s were" },
            if q.gone == 1 { "it was" } else { "they were" }
        );
    }
    o
}

/// `alive` or `dead`, and the CPUs of a live one.
fn alive_text(alive: bool, pid: u32) -> String {
    format!("{}{}", Liveness::of(alive).name(), cpus_text(pid, alive))
}

fn queue_producer_text(p: &QueueProducerInfo) -> String {
    let claim = p
        .claimed
        .map_or_else(|| "no claim".to_owned(), |seq| format!("claim {seq}"));
    format!(
        "slot {:<4}  {:<8}  pid {:<8}  committed {}  reclaimed {}  {claim}  {}",
        p.slot,
        participant_state_name(p.state),
        p.pid,
        p.committed,
        p.reclaimed,
        alive_text(p.alive, p.pid)
    ) + "\n      counters: "
        + &counters_text(&p.counters)
}

fn queue_consumer_text(c: &QueueConsumerInfo) -> String {
    format!(
        "slot {:<4}  {:<8}  pid {:<8}  taken {}  acked {}  redelivered {}  holding {}{}  {}",
        c.slot,
        participant_state_name(c.state),
        c.pid,
        c.taken,
        c.acked,
        c.redelivered,
        c.holding,
        if c.sleeping { "  sleeping" } else { "" },
        alive_text(c.alive, c.pid)
    ) + "\n      counters: "
        + &counters_text(&c.counters)
}

fn in_flight_text(f: &InFlightRecord) -> String {
    let what = match f.state {
        InFlightState::Claimed { producer: Some(p) } => {
            format!("claimed by producer {p}, not marked yet")
        }
        InFlightState::Claimed { producer: None } => {
            "claimed, not marked yet (no producer announces it)".to_owned()
        }
        InFlightState::Writing {
            producer,
            producer_alive,
        } => format!(
            "writing by producer {producer} ({})",
            Liveness::of(producer_alive).name()
        ),
        InFlightState::Committed { redelivered } => format!(
            "committed{}",
            if redelivered { ", redelivered" } else { "" }
        ),
        InFlightState::Taken {
            consumer,
            consumer_alive,
            redelivered,
        } => format!(
            "taken by consumer {consumer} ({}){}",
            if consumer_alive {
                "alive"
            } else {
                "dead: it will be given back"
            },
            if redelivered { ", redelivered" } else { "" }
        ),
        InFlightState::Skipped { suspect } => format!(
            "skipped{}",
            if suspect {
                " (suspect: its claim was reclaimed)"
            } else {
                ""
            }
        ),
    };
    format!("seq {:<8}  slot {:<6}  {what}", f.sequence, f.slot)
}

fn publisher_text(p: &PublisherInfo) -> String {
    format!(
        "slot {:<4}  {:<8}  pid {:<8}  published {:<10}  {}",
        p.slot,
        participant_state_name(p.state),
        p.pid,
        p.published,
        alive_text(p.alive, p.pid)
    ) + "\n      counters: "
        + &counters_text(&p.counters)
}

fn subscriber_text(s: &SubscriberInfo, lag_bytes: Option<u64>) -> String {
    let name = match &s.name {
        Some(n) => format!("durable \"{}\"", n.escape_debug()),
        None => "anonymous".to_owned(),
    };
    let heartbeat = match s.heartbeat_age_ns {
        Some(age) => format!("heartbeat {} ago", duration_text(age)),
        None => "no heartbeat".to_owned(),
    };
    let lag_bytes = lag_bytes.map_or_else(String::new, |b| format!(" ({b} bytes)"));
    format!(
        "slot {:<4}  {:<8}  {name}  pid {}  cursor {}  lag {}{lag_bytes}  missed {}  {heartbeat}  {}{}",
        s.slot,
        participant_state_name(s.state),
        s.pid,
        s.cursor,
        s.lag,
        s.missed,
        Liveness::of_subscriber(s).name(),
        cpus_text(s.pid, s.alive)
    ) + "\n      counters: "
        + &counters_text(&s.counters)
}

fn v2_text(o: &mut String, v: &V2Summary) {
    let domain = match v.domain_name() {
        Some(n) => format!("{n} ({})", v.relay_domain),
        None => format!("domain {}", v.relay_domain),
    };
    let source = match v.source_name() {
        Some(n) => format!("{n} ({})", v.source),
        None => format!("source {}", v.source),
    };
    let _ = writeln!(
        o,
        "    Protocol V2 {domain} from {source}, v{}, flags {:#04x}, seq {}, time {}, checksum {:#010x}",
        v.version,
        v.flags,
        v.sequence,
        utc_timestamp(v.timestamp_ns),
        v.checksum
    );
    if v.tlvs.is_empty() {
        let _ = writeln!(o, "    (no TLV items)");
    }
    for t in &v.tlvs {
        let _ = writeln!(
            o,
            "    TLV type {:<3}  len {}{}",
            t.tlv_type,
            t.len,
            if t.extended { "  (extended)" } else { "" }
        );
    }
}

/// Nanoseconds as a short human duration (`850ns`, `12.5ms`, `3.2s`, `2h5m`).
fn duration_text(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        1_000_000_000..=3_599_999_999_999 => format!("{:.1}s", ns as f64 / 1e9),
        _ => {
            let minutes = ns / 60_000_000_000;
            format!("{}h{}m", minutes / 60, minutes % 60)
        }
    }
}

pub(crate) fn list_text(ns: &Namespace, rows: &[Row]) -> String {
    let mut o = String::new();
    let count = |f: fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let topics = count(|r| matches!(r, Row::Topic { .. }));
    let channels = count(|r| matches!(r, Row::Channel { .. }));
    let queues = count(|r| matches!(r, Row::Queue { .. }));
    let others = count(|r| matches!(r, Row::OtherKind { .. }));
    let removed = count(|r| matches!(r, Row::Removed { .. }));
    let creating = count(|r| matches!(r, Row::Creating { .. }));
    let corrupt = count(|r| matches!(r, Row::Corrupt { .. }));
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut summary = vec![
        plural(topics, "topic", "topics"),
        plural(channels, "spsc channel", "spsc channels"),
        plural(queues, "queue", "queues"),
    ];
    if others > 0 {
        summary.push(plural(
            others,
            "ring of another kind",
            "rings of other kinds",
        ));
    }
    if removed > 0 {
        summary.push(format!("{removed} removed"));
    }
    if creating > 0 {
        summary.push(format!("{creating} being created"));
    }
    if corrupt > 0 {
        summary.push(plural(corrupt, "corrupt entry", "corrupt entries"));
    }
    let _ = writeln!(
        o,
        "namespace {} ({}): {}",
        ns.name(),
        ns.path().display(),
        summary.join(", ")
    );
    if rows.is_empty() {
        return o;
    }
    let label = |row: &Row| match row {
        Row::Topic { name, .. }
        | Row::Channel { name, .. }
        | Row::Queue { name, .. }
        | Row::OtherKind { name, .. }
        | Row::Removed { name, .. }
        | Row::Creating {
            name: Some(name), ..
        } => name.clone(),
        Row::Creating { entry, .. } | Row::Corrupt { entry, .. } => format!("<entry {entry}>"),
    };
    let width = rows
        .iter()
        .map(|r| label(r).len())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(o, "{:<width$}  {:<7}  DETAILS", "NAME", "KIND");
    for row in rows {
        let name = label(row);
        let (kind, details) = match row {
            Row::Topic {
                result: Ok(s),
                bridge,
                ..
            } => {
                let c = &s.config;
                (
                    "topic",
                    format!(
                        "policy={} slots={} max_payload={} tail={} publishers={} subscribers={} max_lag={}{}",
                        policy_name(c.policy),
                        c.slots,
                        c.max_payload,
                        s.tail,
                        s.publishers_alive(),
                        s.subscribers_alive(),
                        s.max_lag()
                            .map_or_else(|| "-".to_owned(), |l| l.to_string()),
                        crate::bridge::list_cell(bridge).unwrap_or_default()
                    ),
                )
            }
            Row::Channel { result: Ok(s), .. } => (
                "spsc",
                format!(
                    "capacity={} used={} used%={:.1} producer={} consumer={}",
                    s.capacity,
                    s.used_bytes,
                    s.occupancy_percent(),
                    role_cell(&s.producer),
                    role_cell(&s.consumer)
                ),
            ),
            Row::Queue { result: Ok(s), .. } => (
                "queue",
                format!(
                    "slots={} max_payload={} depth={} producers={} consumers={} in_flight={} redelivered={}",
                    s.config.slots,
                    s.config.max_payload,
                    s.depth,
                    s.producers_alive(),
                    s.consumers_alive(),
                    s.in_flight.len(),
                    s.redelivered
                ),
            ),
            Row::Topic { result: Err(f), .. }
            | Row::Channel { result: Err(f), .. }
            | Row::Queue { result: Err(f), .. } => (
                row.kind(),
                format!("unusable: {}", f.reason.replace(['\n', '\r'], " ")),
            ),
            Row::OtherKind { kind, .. } => {
                (kind.as_str(), "not shown by this ring-dump".to_owned())
            }
            Row::Creating {
                epoch,
                creator_alive,
                ..
            } => (
                "-",
                format!(
                    "being created (epoch {epoch}, {})",
                    if *creator_alive {
                        "creator alive"
                    } else {
                        "creator died; the next open or create gives the entry back"
                    }
                ),
            ),
            Row::Removed { epoch, .. } => (
                "-",
                format!("removed (epoch {epoch}; creating it again makes a new ring)"),
            ),
            Row::Corrupt { reason, .. } => (
                "-",
                format!("corrupt: {}", reason.replace(['\n', '\r'], " ")),
            ),
        };
        let _ = writeln!(o, "{name:<width$}  {kind:<7}  {details}");
    }
    o
}

fn role_cell(r: &RoleInfo) -> String {
    match (r.attached, r.pid) {
        (true, 0) => "attached".to_owned(),
        (true, pid) => format!("pid:{pid}"),
        (false, _) => "-".to_owned(),
    }
}

/// `CLOCK_REALTIME` nanoseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn utc_timestamp(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let millis = (ns % 1_000_000_000) / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            utc_timestamp(1_709_210_096_789_000_000),
            "2024-02-29T12:34:56.789Z"
        );
    }

    #[test]
    fn durations_are_short_and_human() {
        assert_eq!(duration_text(850), "850ns");
        assert_eq!(duration_text(12_500_000), "12.5ms");
        assert_eq!(duration_text(2_000_000_000), "2.0s");
        assert_eq!(duration_text(7_500 * 1_000_000_000), "2h5m");
    }

    #[test]
    fn hex_dump_lines_show_offset_hex_and_ascii() {
        let mut o = String::new();
        hex_dump(&mut o, b"\xde\xad\xbe\xefHi");
        assert!(o.starts_with("    0000  de ad be ef 48 69"), "{o}");
        assert!(o.trim_end().ends_with("|....Hi|"), "{o}");
    }
}
