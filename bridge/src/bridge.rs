//! The running bridge: one exporter thread per local topic it sends, one
//! importer thread per remote topic it receives, and a coordinating loop
//! that finds both.
//!
//! Keys (see the crate docs for the whole protocol):
//!
//! * data: `shmbus/<namespace>/<topic>`, one [`wire`](crate::wire) message
//!   per record;
//! * discovery: a liveliness token per exported topic,
//!   `shmbus/<namespace>/<topic>/@export/<origin>/<policy>/<slots>/<max_payload>/<max_subscribers>/<max_publishers>/<reclaim_after_ms>`,
//!   so that the token itself (what a liveliness query or subscriber
//!   receives) carries the topic's configuration.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmbus::bridge_counters::{BridgeCounters, Counter};
use shmbus::{Bus, ClaimError, Policy, RecvError, StartAt, TopicConfig, WaitStrategy};
use zenoh::handlers::FifoChannelHandler;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Locality, Sample, SampleKind};
use zenoh::{Session, Wait};

use crate::config::{Config, DEFAULT_LEASE_MS, DEFAULT_RECONNECT_HOLD_MS};
use crate::glob;
use crate::wire::Header;

/// How often the coordinator looks for new local topics, and how long a
/// thread waits before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(100);
/// Received messages a topic's importer may hold before Zenoh's receive
/// path waits for it (back-pressure towards the sender).
const IMPORT_QUEUE: usize = 4096;

/// Why a bridge could not start.
#[derive(Debug)]
pub struct BridgeError(pub String);

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BridgeError {}

fn err(context: &str, e: impl std::fmt::Display) -> BridgeError {
    BridgeError(format!("{context}: {e}"))
}

/// The log sequences of the records this bridge's importer published on a
/// topic, which its exporter must not send back. Both sides walk the log
/// in order, so a queue suffices: the exporter drops entries below the
/// record it reads.
#[derive(Default)]
struct Imported(Mutex<VecDeque<u64>>);

impl Imported {
    fn push(&self, seq: u64) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back(seq);
        }
    }

    /// Whether the record at log sequence `seq` was published by this
    /// bridge's importer.
    fn take(&self, seq: u64) -> bool {
        let Ok(mut q) = self.0.lock() else {
            return false;
        };
        while let Some(&front) = q.front() {
            if front < seq {
                q.pop_front();
            } else {
                if front == seq {
                    q.pop_front();
                    return true;
                }
                return false;
            }
        }
        false
    }
}

/// How often a held exporter looks whether an importer came back.
const HOLD_POLL: Duration = Duration::from_millis(1);

/// What an exporter does before reading its next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Read and send it.
    Send,
    /// Wait: the last remote importer went away less than the hold ago.
    Wait,
    /// Read and send it: no importer came back within the hold (said once
    /// per loss).
    GaveUp,
}

/// Whether a remote subscriber matches an exporter's Zenoh publisher, as
/// its matching listener last said, and how many times it said so.
#[derive(Default)]
struct Matching {
    matched: AtomicBool,
    reports: AtomicU64,
}

impl Matching {
    /// Called by the matching listener (a Zenoh thread).
    fn report(&self, matched: bool) {
        self.matched.store(matched, Ordering::Relaxed);
        // SYNC POINT: pairs with the Acquire load in `Matching::look`, so
        // that a reader that sees this report sees its `matched` too.
        self.reports.fetch_add(1, Ordering::Release);
    }

    /// (matched, reports so far).
    fn look(&self) -> (bool, u64) {
        // SYNC POINT: pairs with the Release increment in `Matching::report`.
        let reports = self.reports.load(Ordering::Acquire);
        (self.matched.load(Ordering::Relaxed), reports)
    }
}

/// The exporter's wait for a lost importer (`reconnect_hold_ms`): once a
/// remote subscriber matched its Zenoh publisher, a loss of every match
/// (the importer's bridge restarted, its session dropped) makes it wait up
/// to `hold` before it reads on, so that a `Backpressure` topic holds its
/// publishers back instead of sending records to nobody. Before the first
/// match (no importer yet) and after `hold`, it sends on.
///
/// A look more than `stall` (Zenoh's lease) after the previous one means
/// this process was stopped or starved that long (or its last `put` was
/// blocked that long): the peers have dropped its session, whatever the
/// matching status (not updated yet) says. It then waits, up to `hold`,
/// for a new report that says matched, so that it does not send into the
/// dropped session.
struct ReconnectHold {
    matching: Arc<Matching>,
    hold: Duration,
    stall: Duration,
    ever_matched: bool,
    last_look: Option<Instant>,
    lost_at: Option<Instant>,
    /// After a stall: the reports seen then; a later one must say matched.
    stalled_at_report: Option<u64>,
    gave_up: bool,
}

impl ReconnectHold {
    fn new(matching: Arc<Matching>, hold: Duration, stall: Duration) -> Self {
        ReconnectHold {
            matching,
            hold,
            stall,
            ever_matched: false,
            last_look: None,
            lost_at: None,
            stalled_at_report: None,
            gave_up: false,
        }
    }

    /// What to do at `now`.
    fn state(&mut self, now: Instant) -> Hold {
        let (matched, reports) = self.matching.look();
        let stalled = self
            .last_look
            .is_some_and(|last| now.saturating_duration_since(last) > self.stall);
        self.last_look = Some(now);
        if self.hold.is_zero() {
            return Hold::Send;
        }
        if stalled && self.ever_matched {
            self.stalled_at_report = Some(reports);
            self.lost_at = Some(now);
            self.gave_up = false;
        }
        let fresh = self.stalled_at_report.is_none_or(|seen| reports > seen);
        if matched && fresh {
            self.ever_matched = true;
            self.lost_at = None;
            self.stalled_at_report = None;
            self.gave_up = false;
            return Hold::Send;
        }
        if !self.ever_matched || self.gave_up {
            return Hold::Send;
        }
        let lost_at = *self.lost_at.get_or_insert(now);
        if now.saturating_duration_since(lost_at) < self.hold {
            return Hold::Wait;
        }
        self.gave_up = true;
        self.stalled_at_report = None;
        Hold::GaveUp
    }
}

/// Per-topic state shared by its exporter and importer.
struct TopicLink {
    stats: Arc<BridgeCounters>,
    imported: Arc<Imported>,
}

/// The discovery key of an exported topic.
fn token_key(ns: &str, topic: &str, origin: u64, c: &TopicConfig) -> String {
    let policy = match c.policy {
        Policy::Backpressure => "backpressure",
        Policy::Overwrite => "overwrite",
    };
    format!(
        "shmbus/{ns}/{topic}/@export/{origin:016x}/{policy}/{}/{}/{}/{}/{}",
        c.slots,
        c.max_payload,
        c.max_subscribers,
        c.max_publishers,
        c.reclaim_after.as_millis()
    )
}

/// Reads a discovery key back: topic, origin, configuration.
pub fn parse_token_key(ns: &str, key: &str) -> Option<(String, u64, TopicConfig)> {
    let rest = key
        .strip_prefix("shmbus/")?
        .strip_prefix(ns)?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [topic, "@export", origin, policy, slots, payload, subs, pubs, reclaim] = parts[..] else {
        return None;
    };
    let policy = match policy {
        "backpressure" => Policy::Backpressure,
        "overwrite" => Policy::Overwrite,
        _ => return None,
    };
    let config = TopicConfig {
        slots: slots.parse().ok()?,
        max_payload: payload.parse().ok()?,
        policy,
        max_subscribers: subs.parse().ok()?,
        max_publishers: pubs.parse().ok()?,
        reclaim_after: Duration::from_millis(reclaim.parse().ok()?),
    };
    config.validate().ok()?;
    Some((
        topic.to_owned(),
        u64::from_str_radix(origin, 16).ok()?,
        config,
    ))
}

/// A random origin: this run's identity on the wire.
fn new_origin() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        if f.read_exact(&mut b).is_ok() && b != [0; 8] {
            return u64::from_le_bytes(b);
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// A bridge between one local namespace and Zenoh.
pub struct Bridge {
    cfg: Config,
    ns: String,
    bus: Bus,
    session: Session,
    origin: u64,
    stop: Arc<AtomicBool>,
    links: HashMap<String, TopicLink>,
    exporting: HashSet<String>,
    importing: HashSet<String>,
    threads: Vec<JoinHandle<()>>,
    discovery: zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>,
}

impl Bridge {
    /// Opens the namespace and the Zenoh session, and starts discovery.
    ///
    /// # Errors
    ///
    /// No namespace configured, the bus or the session cannot be opened.
    pub fn start(cfg: Config) -> Result<Bridge, BridgeError> {
        let ns = cfg.namespace.clone().ok_or_else(|| {
            BridgeError("no namespace (give --namespace or `namespace` in the config file)".into())
        })?;
        let bus = match &cfg.dir {
            Some(dir) => Bus::at(dir, &ns),
            None => Bus::open(&ns),
        }
        .map_err(|e| err("open the bus", e))?;
        let zcfg = cfg.zenoh().map_err(BridgeError)?;
        let session = zenoh::open(zcfg)
            .wait()
            .map_err(|e| err("open the zenoh session", e))?;
        let discovery = session
            .liveliness()
            .declare_subscriber(format!("shmbus/{ns}/*/@export/**"))
            .history(true)
            .with(zenoh::handlers::FifoChannel::new(1024))
            .wait()
            .map_err(|e| err("subscribe to exported topics", e))?;
        Ok(Bridge {
            cfg,
            ns,
            bus,
            session,
            origin: new_origin(),
            stop: Arc::new(AtomicBool::new(false)),
            links: HashMap::new(),
            exporting: HashSet::new(),
            importing: HashSet::new(),
            threads: Vec::new(),
            discovery,
        })
    }

    /// This run's origin (the identity its records carry).
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Runs until `stop` is set, then shuts down: threads joined, tokens
    /// and subscriptions undeclared, the session closed.
    ///
    /// # Errors
    ///
    /// A topic that cannot be bridged is reported on stderr and skipped;
    /// errors are returned only from closing the session.
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), BridgeError> {
        while !stop.load(Ordering::Relaxed) {
            self.scan_local();
            self.scan_remote();
            std::thread::sleep(POLL);
        }
        self.shutdown()
    }

    fn link(&mut self, topic: &str) -> Option<(Arc<BridgeCounters>, Arc<Imported>)> {
        if !self.links.contains_key(topic) {
            match BridgeCounters::open_locked(self.bus.namespace(), topic) {
                Ok(stats) => {
                    self.links.insert(
                        topic.to_owned(),
                        TopicLink {
                            stats: Arc::new(stats),
                            imported: Arc::default(),
                        },
                    );
                }
                Err(e) => {
                    eprintln!("shmbus-bridge: not bridging {topic:?}: {e}");
                    return None;
                }
            }
        }
        let l = &self.links[topic];
        Some((l.stats.clone(), l.imported.clone()))
    }

    /// Starts an exporter for every allowed local topic without one.
    fn scan_local(&mut self) {
        for rec in self.bus.topics() {
            let name = rec.name.clone();
            if self.exporting.contains(&name) || !glob::any(&self.cfg.allow, &name) {
                continue;
            }
            self.exporting.insert(name.clone());
            let Some((stats, imported)) = self.link(&name) else {
                continue;
            };
            match self.start_exporter(&name, stats, imported) {
                Ok(handle) => self.threads.push(handle),
                Err(e) => eprintln!("shmbus-bridge: not exporting {name:?}: {e}"),
            }
        }
    }

    /// Starts an importer for every allowed remote topic announced.
    fn scan_remote(&mut self) {
        while let Ok(Some(sample)) = self.discovery.try_recv() {
            if sample.kind() != SampleKind::Put {
                continue;
            }
            let Some((topic, origin, config)) =
                parse_token_key(&self.ns, sample.key_expr().as_str())
            else {
                continue;
            };
            if origin == self.origin
                || self.importing.contains(&topic)
                || !glob::any(&self.cfg.allow, &topic)
            {
                continue;
            }
            self.importing.insert(topic.clone());
            let Some((stats, imported)) = self.link(&topic) else {
                continue;
            };
            match self.start_importer(&topic, &config, stats, imported) {
                Ok(handle) => self.threads.push(handle),
                Err(e) => eprintln!("shmbus-bridge: not importing {topic:?}: {e}"),
            }
        }
    }

    fn start_exporter(
        &self,
        name: &str,
        stats: Arc<BridgeCounters>,
        imported: Arc<Imported>,
    ) -> Result<JoinHandle<()>, BridgeError> {
        let topic = self.bus.open_topic(name).map_err(|e| err("open", e))?;
        let config = *topic.config();
        let mut sub = topic
            .subscriber(StartAt::Tail)
            .map_err(|e| err("subscribe", e))?;
        // Backpressure: never drop; a slow network slows the exporter,
        // whose cursor then holds back the local publishers. Overwrite:
        // never wait; what Zenoh drops shows as gaps at the importer.
        let congestion = match config.policy {
            Policy::Backpressure => CongestionControl::Block,
            Policy::Overwrite => CongestionControl::Drop,
        };
        let publisher = self
            .session
            .declare_publisher(format!("shmbus/{}/{name}", self.ns))
            .congestion_control(congestion)
            .express(glob::any(&self.cfg.express, name))
            // Never to this bridge's own importer: its matching status
            // then says whether a remote importer is there.
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(|e| err("declare the zenoh publisher", e))?;
        let matching = Arc::new(Matching::default());
        let listener = {
            let matching = matching.clone();
            publisher
                .matching_listener()
                .callback(move |m| matching.report(m.matching()))
                .wait()
                .map_err(|e| err("listen for importers", e))?
        };
        if publisher
            .matching_status()
            .wait()
            .is_ok_and(|m| m.matching())
        {
            matching.report(true);
        }
        let hold = match config.policy {
            Policy::Backpressure => Duration::from_millis(
                self.cfg
                    .reconnect_hold_ms
                    .unwrap_or(DEFAULT_RECONNECT_HOLD_MS),
            ),
            Policy::Overwrite => Duration::ZERO,
        };
        let lease = Duration::from_millis(self.cfg.lease_ms.unwrap_or(DEFAULT_LEASE_MS));
        let mut hold = ReconnectHold::new(matching, hold, lease);
        let token = self
            .session
            .liveliness()
            .declare_token(token_key(&self.ns, name, self.origin, &config))
            .wait()
            .map_err(|e| err("declare the liveliness token", e))?;
        let stop = self.stop.clone();
        let origin = self.origin;
        let name = name.to_owned();
        let spawn = std::thread::Builder::new().name(format!("export {name}"));
        spawn
            .spawn(move || {
                let _token = token;
                let _listener = listener;
                let mut wait = WaitStrategy::BLOCKING;
                let mut seq = 0u64;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match hold.state(Instant::now()) {
                        Hold::Send => {}
                        Hold::Wait => {
                            std::thread::sleep(HOLD_POLL);
                            continue;
                        }
                        Hold::GaveUp => eprintln!(
                            "shmbus-bridge: no importer of {name:?} came back within {:?}: \
                             sending on (records nobody receives are counted as gaps \
                             by the importer that comes back)",
                            hold.hold
                        ),
                    }
                    let bytes = match sub.read_timeout(wait, POLL) {
                        Ok(rec) => {
                            if imported.take(rec.sequence()) {
                                stats.add(Counter::EchoSkipped, 1);
                                continue;
                            }
                            seq += 1;
                            let h = Header {
                                record_type: rec.record_type(),
                                origin,
                                seq,
                            };
                            h.encode(&rec, &mut buf);
                            rec.len() as u64
                        }
                        Err(RecvError::Empty | RecvError::TimedOut) => continue,
                        Err(RecvError::CannotSleep) => {
                            wait = WaitStrategy::BACKOFF;
                            continue;
                        }
                        Err(RecvError::Lapped { missed }) => {
                            stats.add(Counter::ExportMissed, missed);
                            continue;
                        }
                        Err(e) => {
                            eprintln!("shmbus-bridge: stopped exporting {name:?}: {e}");
                            return;
                        }
                    };
                    if let Err(e) = publisher.put(std::mem::take(&mut buf)).wait() {
                        eprintln!("shmbus-bridge: sending {name:?}: {e}");
                        continue;
                    }
                    stats.add(Counter::Exported, 1);
                    stats.add(Counter::ExportedBytes, bytes);
                }
            })
            .map_err(|e| err("spawn", e))
    }

    fn start_importer(
        &self,
        name: &str,
        config: &TopicConfig,
        stats: Arc<BridgeCounters>,
        imported: Arc<Imported>,
    ) -> Result<JoinHandle<()>, BridgeError> {
        let topic = self
            .bus
            .topic(name, config)
            .map_err(|e| err("create the local topic", e))?;
        let mut publisher = topic.publisher().map_err(|e| err("publish", e))?;
        let subscriber = self
            .session
            .declare_subscriber(format!("shmbus/{}/{name}", self.ns))
            .allowed_origin(Locality::Remote)
            .with(zenoh::handlers::FifoChannel::new(IMPORT_QUEUE))
            .wait()
            .map_err(|e| err("declare the zenoh subscriber", e))?;
        let stop = self.stop.clone();
        let own_origin = self.origin;
        let name = name.to_owned();
        let max_payload = config.max_payload as usize;
        // Where each origin's stream stands; seeded with what the last run
        // of this bridge imported (the counters file remembers the last
        // few origins), so that a restart counts what it missed.
        let mut last: HashMap<u64, u64> = stats
            .origins()
            .into_iter()
            .map(|p| (p.origin, p.last_seq))
            .collect();
        let spawn = std::thread::Builder::new().name(format!("import {name}"));
        spawn
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sample = match subscriber.recv_timeout(POLL) {
                        Ok(Some(s)) => s,
                        Ok(None) => continue,
                        Err(_) => return,
                    };
                    let bytes = sample.payload().to_bytes();
                    let Some((h, payload)) = Header::decode(&bytes) else {
                        stats.add(Counter::Rejected, 1);
                        continue;
                    };
                    if h.origin == own_origin || payload.len() > max_payload {
                        stats.add(Counter::Rejected, 1);
                        continue;
                    }
                    let prev = last.get(&h.origin).copied();
                    if let Some(prev) = prev {
                        if h.seq <= prev {
                            // Only a replay could do this: not delivered twice.
                            stats.add(Counter::Rejected, 1);
                            continue;
                        }
                        stats.add(Counter::Gaps, h.seq - prev - 1);
                    }
                    // Publish, waiting for room (Backpressure) but looking
                    // at the stop flag now and then.
                    loop {
                        match publisher.claim_timeout(payload.len(), WaitStrategy::BACKOFF, POLL) {
                            Ok(mut claim) => {
                                // Recorded before the commit makes the record
                                // visible to this bridge's exporter.
                                imported.push(claim.sequence());
                                claim.copy_from_slice(payload);
                                claim.set_record_type(h.record_type);
                                match claim.commit() {
                                    Ok(_) => {
                                        stats.add(Counter::Imported, 1);
                                        stats.add(Counter::ImportedBytes, payload.len() as u64);
                                        break;
                                    }
                                    // This bridge stalled (stopped, descheduled)
                                    // past the topic's claim timeout and a reader
                                    // gave the slot up: the record reached nobody,
                                    // so it is published again.
                                    Err(ClaimError::Reclaimed { .. }) => continue,
                                    Err(e) => {
                                        eprintln!("shmbus-bridge: stopped importing {name:?}: {e}");
                                        return;
                                    }
                                }
                            }
                            Err(ClaimError::TimedOut | ClaimError::Full) => {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                            }
                            Err(e) => {
                                eprintln!("shmbus-bridge: stopped importing {name:?}: {e}");
                                return;
                            }
                        }
                    }
                    last.insert(h.origin, h.seq);
                    stats.set_last_seq(h.origin, h.seq);
                }
            })
            .map_err(|e| err("spawn", e))
    }

    fn shutdown(mut self) -> Result<(), BridgeError> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(self.discovery);
        self.session
            .close()
            .wait()
            .map_err(|e| err("close the zenoh session", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_key_round_trips_the_config() {
        let c = TopicConfig {
            slots: 1024,
            max_payload: 100,
            policy: Policy::Overwrite,
            max_subscribers: 8,
            max_publishers: 2,
            reclaim_after: Duration::from_millis(1500),
        };
        let key = token_key("prod", "md.eu", 0xABC, &c);
        assert_eq!(
            key,
            "shmbus/prod/md.eu/@export/0000000000000abc/overwrite/1024/100/8/2/1500"
        );
        assert_eq!(
            parse_token_key("prod", &key),
            Some(("md.eu".into(), 0xABC, c))
        );
        assert_eq!(parse_token_key("other", &key), None);
        let bad = key.replace("/1024/", "/1000/");
        assert_eq!(
            parse_token_key("prod", &bad),
            None,
            "slots not a power of two"
        );
    }

    #[test]
    fn a_lost_importer_is_waited_for_up_to_the_hold_once_per_loss() {
        let m = Arc::new(Matching::default());
        let stall = Duration::from_secs(100);
        let mut hold = ReconnectHold::new(m.clone(), Duration::from_secs(5), stall);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(hold.state(at(0)), Hold::Send, "no importer yet: send on");
        m.report(true);
        assert_eq!(hold.state(at(0)), Hold::Send);
        m.report(false);
        assert_eq!(hold.state(at(1)), Hold::Wait);
        assert_eq!(hold.state(at(5)), Hold::Wait);
        assert_eq!(hold.state(at(6)), Hold::GaveUp);
        assert_eq!(hold.state(at(7)), Hold::Send);
        // Back, then lost again: a new hold.
        m.report(true);
        assert_eq!(hold.state(at(8)), Hold::Send);
        m.report(false);
        assert_eq!(hold.state(at(9)), Hold::Wait);
        m.report(true);
        assert_eq!(hold.state(at(10)), Hold::Send, "back within the hold");
        let mut never = ReconnectHold::new(m.clone(), Duration::ZERO, stall);
        assert_eq!(never.state(at(0)), Hold::Send);
        m.report(false);
        assert_eq!(never.state(at(1)), Hold::Send, "a zero hold never waits");
    }

    #[test]
    fn after_a_stall_past_the_lease_a_new_match_is_waited_for() {
        let m = Arc::new(Matching::default());
        let mut hold =
            ReconnectHold::new(m.clone(), Duration::from_secs(5), Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        m.report(true);
        assert_eq!(hold.state(at(0)), Hold::Send);
        assert_eq!(hold.state(at(900)), Hold::Send, "within the lease");
        // Stopped for 3 s: "matched" is stale until a new report.
        assert_eq!(hold.state(at(3900)), Hold::Wait);
        m.report(false);
        assert_eq!(hold.state(at(3901)), Hold::Wait);
        m.report(true);
        assert_eq!(hold.state(at(3902)), Hold::Send, "matched again");
        // Stalled again, and no report comes: sent on after the hold.
        assert_eq!(hold.state(at(6000)), Hold::Wait);
        for ms in (6500..11000).step_by(500) {
            assert_eq!(hold.state(at(ms)), Hold::Wait, "at {ms} ms");
        }
        assert_eq!(hold.state(at(11000)), Hold::GaveUp);
        assert_eq!(hold.state(at(11001)), Hold::Send);
    }

    #[test]
    fn imported_sequences_are_recognised_in_order() {
        let i = Imported::default();
        i.push(3);
        i.push(7);
        assert!(!i.take(1));
        assert!(i.take(3));
        assert!(!i.take(5));
        assert!(i.take(7));
        assert!(!i.take(7));
    }
}
