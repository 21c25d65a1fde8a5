//! Work-queue cases of the mapped-bytes harness ([`Fuzzer::run_queue`]).
//!
//! A case creates work queue [`QUEUE`] behind a directory, and a second
//! queue of the same configuration on the heap (`ring::queue::heap`, which
//! no hostile byte reaches), and decodes its input into steps run in one
//! thread by several producers and consumers of either: claims committed,
//! aborted (dropped) or left hanging (forgotten), across other steps;
//! sends, timed claims; takes acknowledged, given back, dropped or left
//! held across other steps; copies into small buffers; timed takes;
//! registrations, clean leaves, deaths (`crash_for_test`: the liveness
//! lock and the handle's mapping go, the slot and what it holds stay);
//! reaps; the directory's queue calls; removing, re-creating, unlinking and
//! truncating the ring file; and mutations of the mapped queue through a
//! second writable mapping: random bytes anywhere, and interesting values
//! in the control block, the consumer and producer slots, the record
//! stamps and header words, and payloads.
//!
//! Every call must return a value or a typed error (no panic, no
//! out-of-bounds slice, no hang: every call is a `try_` form or has a
//! timeout of at most half a millisecond). While a queue's bytes have not
//! been mutated (always, for the heap queue), a model runs the protocol at
//! record level and predicts each call: the sequence a claim gets or
//! `Full` (only when the slot it needs still holds an unreleased record of
//! the previous lap), the record a take gets (given-back records first,
//! then the head's, in sequence order; `Empty` only when nothing committed
//! waits before an unfinished claim), its type and bytes, its redelivered
//! flag (set exactly when it was taken before), `BufferTooSmall`, a
//! reclaimed claim's failing commit, the slot a registration takes, and
//! the queue's counters and every handle's own.
//!
//! Two things depend on the clock, and the model learns them from the
//! queue instead of predicting them: how many stalled claims a consumer
//! reclaimed in a call (the `reclaimed_claims` counter; the model then
//! checks that they were the oldest unfinished claims at the head and
//! that their commits fail), and whether a waiting participant reaped a
//! dead consumer (its slot's state word; the model then checks that all
//! its records came back flagged, and counted).

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use shmbus::bus::{Queue, QueueConfig, QueueConsumer, QueueProducer};
use shmbus::layout::{
    participant, queue_stamp, QueueConsumerSlot, QueueControl, QueueProducerSlot,
    QUEUE_CONTROL_OFFSET,
};
use shmbus::ring::queue::{self, ClaimError, HeapQueue, QueueCounters, RecvError};

/// Name of the work queue in every queue case.
pub const QUEUE: &str = "work";
/// Most producers, and most consumers, held at once (all queues).
const MAX_HANDLES: usize = 5;

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// One sequence of a queue, as the model knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rec {
    /// Claimed by producer `by` (a harness id), not finished;
    /// `reclaimed` once a consumer turned it into a skip and passed it.
    Open { by: u64, reclaimed: bool },
    /// Committed and waiting; `taken_before` if it was given back.
    Committed {
        record_type: u16,
        bytes: Vec<u8>,
        taken_before: bool,
    },
    /// Taken by consumer `by` (a harness id), not acknowledged.
    Held {
        by: u64,
        record_type: u16,
        bytes: Vec<u8>,
        redelivered: bool,
    },
    /// Aborted, or given up by a producer; `passed` once a consumer freed
    /// its slot.
    Skipped { passed: bool },
    /// Taken and acknowledged.
    Acked,
}

/// What a take gets, by the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Take {
    Record { seq: u64, redelivered: bool },
    TooSmall { needed: usize },
    Empty,
}

/// A queue at record level, trusted until its bytes are mutated.
#[derive(Clone, Debug)]
struct Model {
    trusted: bool,
    slots: u64,
    /// Next sequence to claim.
    tail: u64,
    /// Where the consumers' walk stands: every sequence below it was taken
    /// or passed.
    head: u64,
    /// Every sequence claimed so far.
    recs: BTreeMap<u64, Rec>,
    /// Records given back and not taken again.
    given_back: BTreeSet<u64>,
    /// Per slot: its last claim was reclaimed or given up (the stamp's
    /// suspect flag).
    suspect: Vec<bool>,
    /// The claim each live producer announces (its `claimed` word), by
    /// harness id.
    announced: BTreeMap<u64, u64>,
    /// Redelivered, reclaimed and reaped counts (tail and head are above).
    counters: QueueCounters,
}

impl Model {
    fn new(slots: u64) -> Model {
        Model {
            trusted: true,
            slots,
            tail: 0,
            head: 0,
            recs: BTreeMap::new(),
            given_back: BTreeSet::new(),
            suspect: vec![false; slots as usize],
            announced: BTreeMap::new(),
            counters: QueueCounters::default(),
        }
    }

    fn index(&self, seq: u64) -> usize {
        (seq & (self.slots - 1)) as usize
    }

    /// Whether `seq`'s slot is free for the next lap.
    fn released(&self, seq: u64) -> bool {
        matches!(
            self.recs.get(&seq),
            None | Some(Rec::Acked)
                | Some(Rec::Skipped { passed: true })
                | Some(Rec::Open {
                    reclaimed: true,
                    ..
                })
        )
    }

    /// `Producer::reserve` for producer `me`: the sequence it claims, or
    /// `None` for `Full`. Sequences whose slot an earlier lap's reclaimed
    /// claimer may still be writing (a live producer other than `me`
    /// announces it) are given up as skips on the way.
    fn reserve(&mut self, me: u64) -> Option<u64> {
        let mut gave_up = false;
        loop {
            let t = self.tail;
            if t >= self.slots && !self.released(t - self.slots) {
                if gave_up {
                    // The give-up cleared `claimed`.
                    self.announced.remove(&me);
                }
                return None;
            }
            let i = self.index(t);
            let inside = self.suspect[i]
                && self
                    .announced
                    .iter()
                    .any(|(&p, &c)| p != me && self.index(c) == i && c < t);
            self.tail = t + 1;
            if inside {
                self.recs.insert(t, Rec::Skipped { passed: false });
                gave_up = true;
                continue;
            }
            self.suspect[i] = false;
            self.recs.insert(
                t,
                Rec::Open {
                    by: me,
                    reclaimed: false,
                },
            );
            self.announced.insert(me, t);
            return Some(t);
        }
    }

    /// A consumer's take (`Consumer::take_next`) with room for `limit`
    /// bytes, during which up to `reclaims` stalled claims are reclaimed
    /// (the count goes down by those it reclaimed): passes skips, reclaims,
    /// moves the head; the record is not marked held.
    fn walk(&mut self, limit: usize, reclaims: &mut u64) -> Result<Take, String> {
        if let Some(&g) = self.given_back.iter().next() {
            let Some(Rec::Committed { bytes, .. }) = self.recs.get(&g) else {
                return Err(format!("given-back record {g} is {:?}", self.recs.get(&g)));
            };
            if bytes.len() > limit {
                return Ok(Take::TooSmall {
                    needed: bytes.len(),
                });
            }
            return Ok(Take::Record {
                seq: g,
                redelivered: true,
            });
        }
        let mut s = self.head;
        let take = loop {
            let i = self.index(s);
            match self.recs.get_mut(&s) {
                None => break Take::Empty,
                Some(
                    Rec::Acked
                    | Rec::Held { .. }
                    | Rec::Skipped { passed: true }
                    | Rec::Open {
                        reclaimed: true, ..
                    },
                ) => {}
                Some(Rec::Skipped { passed }) => *passed = true,
                Some(Rec::Committed {
                    bytes,
                    taken_before,
                    ..
                }) => {
                    if *taken_before {
                        return Err(format!("given-back record {s} at the head"));
                    }
                    if bytes.len() > limit {
                        break Take::TooSmall {
                            needed: bytes.len(),
                        };
                    }
                    break Take::Record {
                        seq: s,
                        redelivered: false,
                    };
                }
                Some(Rec::Open { reclaimed, .. }) => {
                    if *reclaims == 0 {
                        break Take::Empty;
                    }
                    *reclaims -= 1;
                    *reclaimed = true;
                    self.suspect[i] = true;
                    self.counters.reclaimed_claims += 1;
                }
            }
            s += 1;
        };
        self.head = match take {
            Take::Record { seq, .. } => seq + 1,
            _ => s,
        };
        Ok(take)
    }

    /// One consumer call that took `take` after `reclaims` reclaims, the
    /// dead consumers `reaped` being reaped during the call: before the
    /// take, after it, or (a timed call) between a look that found nothing
    /// and the one that took. Returns the model after the call.
    fn call(
        &self,
        limit: usize,
        reclaims: u64,
        reaped: &[u64],
        got: &Got,
    ) -> Result<(Model, Take), String> {
        let reap = |m: &mut Model| {
            for &d in reaped {
                m.reap(d);
            }
        };
        let done = |m: Model, take: Take, left: u64| -> Result<(Model, Take), String> {
            if left > 0 {
                return Err(format!(
                    "{left} more claims reclaimed than were unfinished at the head (the model took {take:?})"
                ));
            }
            agrees(&m, take, got)?;
            Ok((m, take))
        };
        // Reaped before the take.
        let mut m = self.clone();
        reap(&mut m);
        let mut left = reclaims;
        let take = m.walk(limit, &mut left)?;
        let first = match done(m, take, left) {
            Ok(v) => return Ok(v),
            Err(e) if reaped.is_empty() => return Err(e),
            Err(e) => e,
        };
        // Reaped after it.
        let mut m = self.clone();
        let mut left = reclaims;
        let take = m.walk(limit, &mut left)?;
        reap(&mut m);
        let second = match done(m.clone(), take, left) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        // Reaped between a look that found nothing and the next.
        if take == Take::Empty {
            let take = m.walk(limit, &mut left)?;
            if let Ok(v) = done(m, take, left) {
                return Ok(v);
            }
        }
        Err(format!("{first} (or, reaped after the take: {second})"))
    }

    /// Record `seq` is now held by consumer `by`.
    fn hold(&mut self, seq: u64, by: u64) {
        if let Some(Rec::Committed {
            record_type,
            bytes,
            taken_before,
        }) = self.recs.get(&seq).cloned()
        {
            self.given_back.remove(&seq);
            self.recs.insert(
                seq,
                Rec::Held {
                    by,
                    record_type,
                    bytes,
                    redelivered: taken_before,
                },
            );
        }
    }

    /// Gives back record `seq`, held (as `Taken::give_back` does).
    fn give_back(&mut self, seq: u64) {
        if let Some(Rec::Held {
            record_type, bytes, ..
        }) = self.recs.get(&seq).cloned()
        {
            self.recs.insert(
                seq,
                Rec::Committed {
                    record_type,
                    bytes,
                    taken_before: true,
                },
            );
            self.given_back.insert(seq);
            self.counters.redelivered += 1;
        }
    }

    /// Gives back every record consumer `by` holds; returns how many.
    fn give_back_all(&mut self, by: u64) -> u64 {
        let held: Vec<u64> = self
            .recs
            .iter()
            .filter(|(_, r)| matches!(r, Rec::Held { by: b, .. } if *b == by))
            .map(|(s, _)| *s)
            .collect();
        for &s in &held {
            self.give_back(s);
        }
        held.len() as u64
    }

    /// A dead consumer's slot is freed: its records go back.
    fn reap(&mut self, by: u64) {
        self.give_back_all(by);
        self.counters.reaped_consumers += 1;
    }
}

// ---------------------------------------------------------------------------
// Queues and handles
// ---------------------------------------------------------------------------

/// Who holds a participant slot, by the liveness locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Free,
    /// A handle (by harness id) holds its lock.
    Live(u64),
    /// Its handle died (`crash_for_test`): the lock is free, the slot
    /// still marked in use.
    Dead(u64),
}

/// Where a queue's memory lies.
enum Backing {
    /// A ring file named by the directory, and the harness's own writable
    /// mapping of it.
    Mapped {
        queue: Box<Queue>,
        file: String,
        map: Option<RawMap>,
    },
    /// `shmbus::ring::queue::heap`: beyond the reach of hostile bytes.
    Heap(HeapQueue),
}

/// One queue instance (a removed queue and the one made after it are two).
struct Inst {
    backing: Backing,
    config: QueueConfig,
    model: Model,
    consumers: Vec<Part>,
    producers: Vec<Part>,
}

impl Inst {
    fn new(backing: Backing, config: QueueConfig) -> Inst {
        Inst {
            backing,
            config,
            model: Model::new(u64::from(config.slots)),
            consumers: vec![Part::Free; config.max_consumers as usize],
            producers: vec![Part::Free; config.max_producers as usize],
        }
    }

    fn map(&self) -> Option<&RawMap> {
        match &self.backing {
            Backing::Mapped { map, .. } => map.as_ref(),
            Backing::Heap(_) => None,
        }
    }

    fn file(&self) -> Option<&str> {
        match &self.backing {
            Backing::Mapped { file, .. } => Some(file),
            Backing::Heap(_) => None,
        }
    }

    fn is_heap(&self) -> bool {
        matches!(self.backing, Backing::Heap(_))
    }

    /// The queue's counters, read from its memory (`None` if the harness
    /// has no mapping of it).
    fn counters(&self) -> Option<QueueCounters> {
        match &self.backing {
            Backing::Heap(h) => Some(h.counters()),
            Backing::Mapped { map, .. } => {
                let m = map.as_ref()?;
                let at = |(f, w): (usize, usize)| m.read_n(QUEUE_CONTROL_OFFSET + f, w);
                Some(QueueCounters {
                    tail: at(field!(QueueControl, tail)),
                    head: at(field!(QueueControl, head)),
                    redelivered: at(field!(QueueControl, redelivered)),
                    reclaimed_claims: at(field!(QueueControl, reclaimed_claims)),
                    reaped_consumers: at(field!(QueueControl, reaped_consumers)),
                    reaped_producers: at(field!(QueueControl, reaped_producers)),
                })
            }
        }
    }

    /// The participant state of consumer slot `i`, from the queue's memory.
    fn consumer_state(&self, i: usize) -> Option<u32> {
        match &self.backing {
            Backing::Heap(h) => Some(h.consumer_state_for_test(i)),
            Backing::Mapped { map, .. } => {
                let m = map.as_ref()?;
                let (f, w) = field!(QueueConsumerSlot, state);
                let off = self.config.geometry().reader_offset(i) + f;
                Some(participant::state(m.read_n(off, w) as u32))
            }
        }
    }

    fn producer(&self) -> Result<QueueProducer, String> {
        match &self.backing {
            Backing::Heap(h) => h.producer().map_err(|e| e.to_string()),
            Backing::Mapped { queue, .. } => queue.producer().map_err(|e| e.to_string()),
        }
    }

    fn consumer(&self) -> Result<QueueConsumer, String> {
        match &self.backing {
            Backing::Heap(h) => h.consumer().map_err(|e| e.to_string()),
            Backing::Mapped { queue, .. } => queue.consumer().map_err(|e| e.to_string()),
        }
    }
}

/// A producer's own figures, as the model expects them.
#[derive(Clone, Copy, Debug, Default)]
struct ProdCounts {
    committed: u64,
    reclaimed: u64,
}

/// A consumer's own figures, as the model expects them.
#[derive(Clone, Copy, Debug, Default)]
struct ConsCounts {
    taken: u64,
    acked: u64,
    redelivered: u64,
}

struct QProd {
    id: u64,
    inst: usize,
    p: QueueProducer,
    counts: ProdCounts,
}

struct QCons {
    id: u64,
    inst: usize,
    c: QueueConsumer,
    counts: ConsCounts,
}

/// A handle place: empty, lent out to a running step, or holding a handle.
enum Hold<T> {
    Empty,
    Busy,
    Here(T),
}

/// What a consumer call returned, for the model.
#[derive(Debug)]
enum Got {
    Record {
        seq: Option<u64>,
        redelivered: Option<bool>,
        record_type: u16,
        bytes: Vec<u8>,
    },
    TooSmall {
        needed: usize,
    },
    Empty,
    Failed(RecvError),
}

/// How a take ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ack,
    GiveBack,
    Drop,
    /// Left held (`mem::forget` of the `Taken`): its consumer gives it
    /// back when it leaves, or a reaper when it dies.
    Forget,
}

// ---------------------------------------------------------------------------
// A case
// ---------------------------------------------------------------------------

pub(super) struct QueueCase<'a> {
    input: Input<'a>,
    ns: Namespace,
    bus: Bus,
    dir_map: Option<RawMap>,
    /// Set once the directory's bytes were mutated: a queue made after
    /// that is not modelled (its handles watch the directory too).
    dir_mutated: bool,
    config: QueueConfig,
    insts: Vec<Inst>,
    prods: Vec<Hold<QProd>>,
    cons: Vec<Hold<QCons>>,
    next_id: u64,
    mappings: Mappings,
    sizes: BTreeMap<String, usize>,
    pub(super) stats: Stats,
    tag: u8,
    quiet: u64,
}

impl<'a> QueueCase<'a> {
    pub(super) fn new(base: &Path, ns_name: &str, data: &'a [u8]) -> Option<QueueCase<'a>> {
        let mut input = Input { data, pos: 0 };
        let config = QueueConfig {
            slots: 2 << input.below(4), // 2 ..= 16
            max_payload: 1 + input.below(64) as u32,
            max_producers: 1 + input.below(4) as u32,
            max_consumers: 1 + input.below(4) as u32,
            // From "reclaimed at the second look" to "never in a case".
            reclaim_after: [
                Duration::from_nanos(1),
                Duration::from_micros(50),
                Duration::from_millis(1),
                Duration::from_secs(1),
            ][input.below(4)],
        };
        trace!("queue case: {config:?}");
        let quiet = [0, 16, 64, MAX_STEPS][input.below(4)] as u64;
        let ns = Namespace::at(base, ns_name).ok()?;
        let open = OpenOptions {
            init_timeout: Duration::from_millis(1),
        };
        let bus = Bus::at_with(base, ns_name, open).ok()?;
        let mut case = QueueCase {
            input,
            ns,
            bus,
            dir_map: None,
            dir_mutated: false,
            config,
            insts: Vec::new(),
            prods: (0..MAX_HANDLES).map(|_| Hold::Empty).collect(),
            cons: (0..MAX_HANDLES).map(|_| Hold::Empty).collect(),
            next_id: 0,
            mappings: Mappings::default(),
            sizes: BTreeMap::new(),
            stats: Stats::default(),
            tag: 0,
            quiet,
        };
        case.dir_map = case.map_file("directory.dir");
        let heap = queue::heap(config).ok()?;
        case.insts.push(Inst::new(Backing::Heap(heap), config));
        case.create_queue();
        // Two producers and two consumers of the mapped queue, one of each
        // of the heap queue.
        let mapped = case.insts.len() - 1;
        for inst in [mapped, mapped, 0] {
            case.register_producer(inst);
            case.register_consumer(inst);
        }
        Some(case)
    }

    fn map_file(&mut self, file: &str) -> Option<RawMap> {
        let map = RawMap::open(&self.ns.path().join(file))?;
        let size = self.sizes.entry(file.to_owned()).or_insert(0);
        *size = (*size).max(map.len);
        Some(map)
    }

    fn refresh_mappings(&mut self) {
        self.mappings.refresh(self.ns.path(), &self.sizes);
    }

    fn err<T, E>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(_) => {
                self.stats.errors += 1;
                None
            }
        }
    }

    fn payload(&mut self, len: usize) -> Vec<u8> {
        self.tag = self.tag.wrapping_add(1);
        let tag = self.tag;
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    fn wait(&mut self) -> WaitStrategy {
        match self.input.below(4) {
            0 => WaitStrategy::BusySpin,
            1 => WaitStrategy::Yield,
            2 => WaitStrategy::BACKOFF,
            _ => WaitStrategy::BLOCKING,
        }
    }

    /// No time at all (the call looks once), or up to 128 us: long enough
    /// for a consumer's many looks to reclaim a stalled claim.
    fn short_timeout(&mut self) -> Duration {
        let b = self.input.u8();
        if b < 128 {
            Duration::ZERO
        } else {
            Duration::from_micros(u64::from(b % 16 + 1) * 8)
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The newest mapped queue, if any.
    fn newest_mapped(&self) -> Option<usize> {
        self.insts.iter().rposition(|i| !i.is_heap())
    }

    /// A queue to register on: mostly the newest mapped one.
    fn pick_inst(&mut self) -> usize {
        let newest = self.newest_mapped();
        match (self.input.below(8), newest) {
            (0 | 1, _) | (_, None) => 0,
            (2, _) => self.input.below(self.insts.len()),
            (_, Some(n)) => n,
        }
    }

    pub(super) fn run(&mut self) {
        while !self.input.done() && (self.stats.steps as usize) < MAX_STEPS {
            self.step(false);
        }
    }

    fn step(&mut self, nested: bool) {
        self.stats.steps += 1;
        let mut op = self.input.u8();
        if op % 32 >= 24 && self.stats.steps <= self.quiet {
            op %= 24;
        }
        trace!(
            "queue step {}: op {}{}",
            self.stats.steps,
            op % 32,
            if nested { " (nested)" } else { "" }
        );
        match op % 32 {
            0..=3 | 20 => self.claim(),
            4 | 5 | 22 => self.send(),
            6 => self.claim_timeout(),
            7..=9 | 18 | 19 | 23 => self.take(),
            10 | 11 | 21 => self.recv(),
            12 => self.take_timeout(),
            13 => self.register(),
            14 => self.crash(),
            15 => self.reap(),
            16 => self.directory_op(),
            17 if !nested => self.file_op(),
            17 => self.reap(),
            24..=27 | 30 | 31 => self.mutate_targeted(),
            _ => self.mutate_random(),
        }
        self.sync_reaps();
        self.check_counters();
    }

    // -- Handles --------------------------------------------------------------

    fn pick(&mut self, producers: bool) -> Option<usize> {
        let here: Vec<usize> = if producers {
            (0..self.prods.len())
                .filter(|&k| matches!(self.prods[k], Hold::Here(_)))
                .collect()
        } else {
            (0..self.cons.len())
                .filter(|&k| matches!(self.cons[k], Hold::Here(_)))
                .collect()
        };
        if here.is_empty() {
            return None;
        }
        Some(here[self.input.below(here.len())])
    }

    fn lend_prod(&mut self) -> Option<(usize, QProd)> {
        let k = self.pick(true)?;
        match core::mem::replace(&mut self.prods[k], Hold::Busy) {
            Hold::Here(h) => Some((k, h)),
            other => {
                self.prods[k] = other;
                None
            }
        }
    }

    fn lend_cons(&mut self) -> Option<(usize, QCons)> {
        let k = self.pick(false)?;
        match core::mem::replace(&mut self.cons[k], Hold::Busy) {
            Hold::Here(h) => Some((k, h)),
            other => {
                self.cons[k] = other;
                None
            }
        }
    }

    fn trusted(&self, inst: usize) -> bool {
        self.insts.get(inst).is_some_and(|i| i.model.trusted)
    }

    fn untrust(&mut self, inst: usize) {
        if let Some(i) = self.insts.get_mut(inst) {
            i.model.trusted = false;
        }
    }

    /// Registers a producer on `inst`; it takes the lowest slot no live
    /// handle holds (a dead producer's slot counts as taken over).
    fn register_producer(&mut self, inst: usize) {
        let Some(k) = self.prods.iter().position(|h| matches!(h, Hold::Empty)) else {
            return;
        };
        let Some(q) = self.insts.get(inst) else {
            return;
        };
        let expect = q.producers.iter().position(|p| !matches!(p, Part::Live(_)));
        let r = q.producer();
        let trusted = q.model.trusted;
        match r {
            Ok(p) => {
                let Some(slot) = expect else {
                    oracle!("a producer registered with every producer slot live");
                };
                let id = self.new_id();
                let q = &mut self.insts[inst];
                if matches!(q.producers[slot], Part::Dead(_)) && q.model.trusted {
                    q.model.counters.reaped_producers += 1;
                }
                q.producers[slot] = Part::Live(id);
                trace!("  producer {id} on queue {inst} (slot {slot})");
                self.prods[k] = Hold::Here(QProd {
                    id,
                    inst,
                    p,
                    counts: ProdCounts::default(),
                });
            }
            Err(e) => {
                self.stats.errors += 1;
                if trusted && expect.is_some() {
                    oracle!("producer registration failed with a slot free: {e}");
                }
            }
        }
    }

    /// Registers a consumer on `inst`: it takes the lowest slot no live
    /// handle holds, giving back first what a dead owner held there.
    fn register_consumer(&mut self, inst: usize) {
        let Some(k) = self.cons.iter().position(|h| matches!(h, Hold::Empty)) else {
            return;
        };
        let Some(q) = self.insts.get(inst) else {
            return;
        };
        let expect = q.consumers.iter().position(|p| !matches!(p, Part::Live(_)));
        let r = q.consumer();
        let trusted = q.model.trusted;
        match r {
            Ok(c) => {
                let Some(slot) = expect else {
                    oracle!("a consumer registered with every consumer slot live");
                };
                if c.slot_for_test() != slot {
                    oracle!(
                        "consumer registered in slot {} but slot {slot} was the first free",
                        c.slot_for_test()
                    );
                }
                let id = self.new_id();
                let q = &mut self.insts[inst];
                if let Part::Dead(dead) = q.consumers[slot] {
                    if q.model.trusted {
                        q.model.reap(dead);
                    }
                }
                q.consumers[slot] = Part::Live(id);
                trace!("  consumer {id} on queue {inst} (slot {slot})");
                self.cons[k] = Hold::Here(QCons {
                    id,
                    inst,
                    c,
                    counts: ConsCounts::default(),
                });
            }
            Err(e) => {
                self.stats.errors += 1;
                if trusted && expect.is_some() {
                    oracle!("consumer registration failed with a slot free: {e}");
                }
            }
        }
    }

    fn set_producer_part(&mut self, inst: usize, id: u64, part: Part) {
        if let Some(q) = self.insts.get_mut(inst) {
            for p in q.producers.iter_mut() {
                if *p == Part::Live(id) {
                    *p = part;
                }
            }
            q.model.announced.remove(&id);
        }
    }

    fn set_consumer_part(&mut self, inst: usize, id: u64, part: Part) {
        if let Some(q) = self.insts.get_mut(inst) {
            for p in q.consumers.iter_mut() {
                if *p == Part::Live(id) {
                    *p = part;
                }
            }
        }
    }

    fn register(&mut self) {
        let producer = self.input.bool();
        let inst = self.pick_inst();
        let full = if producer {
            !self.prods.iter().any(|h| matches!(h, Hold::Empty))
        } else {
            !self.cons.iter().any(|h| matches!(h, Hold::Empty))
        };
        if !full && self.input.below(3) != 0 {
            if producer {
                self.register_producer(inst);
            } else {
                self.register_consumer(inst);
            }
            return;
        }
        // A handle leaves cleanly.
        if producer {
            if let Some((k, h)) = self.lend_prod() {
                self.check_producer(&h);
                drop(h.p);
                self.prods[k] = Hold::Empty;
                self.set_producer_part(h.inst, h.id, Part::Free);
            }
        } else if let Some((k, h)) = self.lend_cons() {
            self.check_consumer(&h);
            drop(h.c);
            self.cons[k] = Hold::Empty;
            self.set_consumer_part(h.inst, h.id, Part::Free);
            if let Some(q) = self.insts.get_mut(h.inst) {
                if q.model.trusted {
                    q.model.give_back_all(h.id);
                }
            }
        }
    }

    /// A handle dies: its lock and mapping go, its slot (and any claim or
    /// record it left) stays.
    fn crash(&mut self) {
        if self.input.bool() {
            if let Some((k, h)) = self.lend_prod() {
                trace!("  producer {} dies", h.id);
                h.p.crash_for_test();
                self.prods[k] = Hold::Empty;
                self.set_producer_part(h.inst, h.id, Part::Dead(h.id));
            }
        } else if let Some((k, h)) = self.lend_cons() {
            trace!("  consumer {} dies", h.id);
            h.c.crash_for_test();
            self.cons[k] = Hold::Empty;
            self.set_consumer_part(h.inst, h.id, Part::Dead(h.id));
        }
    }

    /// Notes the dead consumers a waiting participant reaped (their slot
    /// reads free now) in the models of trusted queues.
    fn sync_reaps(&mut self) {
        for q in self.insts.iter_mut() {
            for slot in 0..q.consumers.len() {
                let Part::Dead(dead) = q.consumers[slot] else {
                    continue;
                };
                if q.consumer_state(slot) == Some(participant::FREE) {
                    q.consumers[slot] = Part::Free;
                    if q.model.trusted {
                        q.model.reap(dead);
                    }
                }
            }
        }
    }

    /// Reaps dead consumers: by hand on the heap queue; on a mapped one,
    /// reads the counters through a handle.
    fn reap(&mut self) {
        let inst = self.pick_inst();
        let Some(q) = self.insts.get_mut(inst) else {
            return;
        };
        if let Backing::Heap(h) = &q.backing {
            let dead: Vec<(usize, u64)> = q
                .consumers
                .iter()
                .enumerate()
                .filter_map(|(i, p)| match p {
                    Part::Dead(id) => Some((i, *id)),
                    _ => None,
                })
                .collect();
            let n = h.reap_for_test();
            if n != dead.len() as u64 {
                oracle!("reap freed {n} slots with {} dead consumers", dead.len());
            }
            for (slot, id) in dead {
                q.consumers[slot] = Part::Free;
                q.model.reap(id);
            }
            return;
        }
        // Through a handle's view of the counters.
        let via = self.prods.iter().find_map(|h| match h {
            Hold::Here(p) if p.inst == inst => Some(p.p.counters()),
            _ => None,
        });
        let via = via.or_else(|| {
            self.cons.iter().find_map(|h| match h {
                Hold::Here(c) if c.inst == inst => Some(c.c.counters()),
                _ => None,
            })
        });
        if let Some(c) = via {
            self.compare_counters(inst, c, "a handle's counters()");
        }
    }

    // -- Producers ------------------------------------------------------------

    /// What the model says `reserve` gives producer `id` of `inst` (and
    /// applies it), if the queue is trusted.
    fn predict_reserve(&mut self, inst: usize, id: u64) -> Option<Option<u64>> {
        let q = self.insts.get_mut(inst)?;
        q.model.trusted.then(|| q.model.reserve(id))
    }

    /// Checks a claim's outcome against the prediction; `Err(Full)` must
    /// match a predicted `None`.
    fn claim_outcome(
        &mut self,
        inst: usize,
        predicted: Option<Option<u64>>,
        got: Result<u64, ClaimError>,
    ) {
        if !self.trusted(inst) {
            return;
        }
        let Some(predicted) = predicted else {
            return;
        };
        match (predicted, got) {
            (Some(s), Ok(seq)) if s == seq => {}
            (None, Err(ClaimError::Full)) => {}
            (p, g) => oracle!(
                "queue {inst}: claim returned {g:?}, the model says {}",
                match p {
                    Some(s) => format!("sequence {s}"),
                    None => "Full".to_owned(),
                }
            ),
        }
    }

    fn check_len(&self, inst: usize, len: usize, got: &Result<u64, ClaimError>) {
        let max = self.insts[inst].config.max_payload;
        let too_large = matches!(got, Err(ClaimError::TooLarge { .. }));
        if too_large != (len > max as usize) {
            oracle!("claim of {len} bytes (max {max}) returned {got:?}");
        }
        if let Err(ClaimError::TooLarge { len: l, max: m }) = got {
            if (*l, *m) != (len, max) {
                oracle!("TooLarge {{ {l}, {m} }} for {len} bytes, max {max}");
            }
        }
    }

    fn claim_bounds(&mut self, inst: usize, ptr: *const u8, len: usize) {
        if self.insts[inst].is_heap() {
            return;
        }
        check_bounds(
            &mut self.mappings,
            self.ns.path(),
            &self.sizes,
            "queue claim",
            ptr,
            len,
        );
    }

    fn claim(&mut self) {
        let Some((k, mut h)) = self.lend_prod() else {
            return;
        };
        let inst = h.inst;
        let max = self.insts[inst].config.max_payload as usize;
        let len = self.input.below(max + 3);
        let record_type = self.input.u16();
        let end = self.input.below(8);
        let nested = self.input.below(4);
        let cut = self.input.below(len + 1);
        let bytes = self.payload(len);
        let predicted = if len <= max {
            self.predict_reserve(inst, h.id)
        } else {
            None
        };
        match h.p.try_claim(len) {
            Ok(mut claim) => {
                let seq = claim.sequence();
                self.check_len(inst, len, &Ok(seq));
                if claim.len() != len {
                    oracle!("queue claim of {len} bytes gave {}", claim.len());
                }
                self.claim_bounds(inst, claim.as_ptr(), len);
                self.claim_outcome(inst, predicted, Ok(seq));
                claim.copy_from_slice(&bytes);
                claim.set_record_type(record_type);
                for _ in 0..nested {
                    self.step(true);
                }
                match end {
                    0..=3 | 7 => {
                        let bytes = if end == 7 {
                            claim.truncate(cut);
                            bytes[..cut].to_vec()
                        } else {
                            bytes
                        };
                        let r = claim.commit();
                        self.committed(inst, h.id, &mut h.counts, seq, r, (record_type, bytes));
                    }
                    4 | 5 => {
                        drop(claim);
                        self.aborted(inst, h.id, seq);
                    }
                    // Left unfinished, as by a producer that stalled.
                    _ => core::mem::forget(claim),
                }
            }
            Err(e) => {
                self.stats.errors += 1;
                let got = Err(e);
                self.check_len(inst, len, &got);
                self.claim_outcome(inst, predicted, got);
            }
        }
        self.check_producer(&h);
        self.prods[k] = Hold::Here(h);
    }

    /// A claim's commit returned `r`: the model says whether it was
    /// reclaimed meanwhile.
    fn committed(
        &mut self,
        inst: usize,
        id: u64,
        counts: &mut ProdCounts,
        seq: u64,
        r: Result<u64, ClaimError>,
        (record_type, bytes): (u16, Vec<u8>),
    ) {
        let Some(q) = self.insts.get_mut(inst) else {
            return;
        };
        if !q.model.trusted {
            return;
        }
        let m = &mut q.model;
        m.announced.remove(&id);
        match (m.recs.get(&seq), r) {
            (
                Some(Rec::Open {
                    by,
                    reclaimed: false,
                }),
                Ok(s),
            ) if *by == id && s == seq => {
                m.recs.insert(
                    seq,
                    Rec::Committed {
                        record_type,
                        bytes,
                        taken_before: false,
                    },
                );
                counts.committed += 1;
            }
            (
                Some(Rec::Open {
                    by,
                    reclaimed: true,
                }),
                Err(ClaimError::Reclaimed { sequence }),
            ) if *by == id && sequence == seq => {
                m.recs.insert(seq, Rec::Skipped { passed: true });
                counts.reclaimed += 1;
            }
            (rec, r) => {
                oracle!("queue {inst}: commit of {seq} returned {r:?}, the model has {rec:?}")
            }
        }
    }

    fn aborted(&mut self, inst: usize, id: u64, seq: u64) {
        let Some(q) = self.insts.get_mut(inst) else {
            return;
        };
        if !q.model.trusted {
            return;
        }
        let m = &mut q.model;
        m.announced.remove(&id);
        if let Some(Rec::Open {
            reclaimed: false, ..
        }) = m.recs.get(&seq)
        {
            m.recs.insert(seq, Rec::Skipped { passed: false });
        }
    }

    fn send(&mut self) {
        let Some((k, mut h)) = self.lend_prod() else {
            return;
        };
        let inst = h.inst;
        let max = self.insts[inst].config.max_payload as usize;
        let len = self.input.below(max + 2);
        let record_type = self.input.u16();
        let bytes = self.payload(len);
        let predicted = if len <= max {
            self.predict_reserve(inst, h.id)
        } else {
            None
        };
        let r = h.p.try_send(record_type, &bytes);
        if r.is_err() {
            self.stats.errors += 1;
        }
        self.check_len(inst, len, &r);
        if len <= max {
            self.claim_outcome(inst, predicted, r);
            if let Ok(seq) = r {
                self.committed(
                    inst,
                    h.id,
                    &mut h.counts,
                    seq,
                    Ok(seq),
                    (record_type, bytes),
                );
            }
        }
        self.check_producer(&h);
        self.prods[k] = Hold::Here(h);
    }

    fn claim_timeout(&mut self) {
        let Some((k, mut h)) = self.lend_prod() else {
            return;
        };
        let inst = h.inst;
        let max = self.insts[inst].config.max_payload as usize;
        let len = self.input.below(max + 1);
        let record_type = self.input.u16();
        let wait = self.wait();
        let timeout = self.short_timeout();
        let send = self.input.bool();
        let bytes = self.payload(len);
        let blocking = matches!(wait, WaitStrategy::Blocking { .. });
        // A Blocking claim returns before it looks at the queue.
        let predicted = if blocking {
            None
        } else {
            self.predict_reserve(inst, h.id)
        };
        let r = if send {
            h.p.send_timeout(record_type, &bytes, wait, timeout)
        } else {
            match h.p.claim_timeout(len, wait, timeout) {
                Ok(mut claim) => {
                    let seq = claim.sequence();
                    self.claim_bounds(inst, claim.as_ptr(), len);
                    claim.copy_from_slice(&bytes);
                    claim.set_record_type(record_type);
                    claim.commit().inspect(|&s| {
                        if s != seq {
                            oracle!("commit of claim {seq} returned {s}");
                        }
                    })
                }
                Err(e) => Err(e),
            }
        };
        if blocking != (r == Err(ClaimError::CannotSleep)) {
            oracle!("queue claim with {wait:?} returned {r:?}");
        }
        if r.is_err() {
            self.stats.errors += 1;
        }
        if !blocking {
            // Waiting on a full queue times out: the consumers cannot run.
            let r = match r {
                Err(ClaimError::TimedOut) => Err(ClaimError::Full),
                other => other,
            };
            self.claim_outcome(inst, predicted, r);
            if let Ok(seq) = r {
                self.committed(
                    inst,
                    h.id,
                    &mut h.counts,
                    seq,
                    Ok(seq),
                    (record_type, bytes),
                );
            }
        }
        self.check_producer(&h);
        self.prods[k] = Hold::Here(h);
    }

    // -- Consumers ------------------------------------------------------------

    /// Checks what a consumer call returned against the model and applies
    /// it: `limit` is the room the call had, `acked` whether it also
    /// acknowledged the record (`try_recv`).
    fn took(
        &mut self,
        inst: usize,
        cid: u64,
        counts: &mut ConsCounts,
        limit: usize,
        got: &Got,
        acked: bool,
    ) {
        self.stats.checked_reads += u64::from(matches!(got, Got::Record { .. }));
        // Reaps a waiting consumer made during the call.
        let mut reaped = Vec::new();
        if let Some(q) = self.insts.get_mut(inst) {
            for slot in 0..q.consumers.len() {
                if let Part::Dead(dead) = q.consumers[slot] {
                    if q.consumer_state(slot) == Some(participant::FREE) {
                        q.consumers[slot] = Part::Free;
                        reaped.push(dead);
                    }
                }
            }
        }
        let Some(q) = self.insts.get_mut(inst) else {
            return;
        };
        if !q.model.trusted {
            return;
        }
        let Some(now) = q.counters() else {
            return;
        };
        let Some(reclaims) = now
            .reclaimed_claims
            .checked_sub(q.model.counters.reclaimed_claims)
        else {
            oracle!(
                "queue {inst}: reclaimed_claims went down from {} to {}",
                q.model.counters.reclaimed_claims,
                now.reclaimed_claims
            );
        };
        let (mut m, take) = match q.model.call(limit, reclaims, &reaped, got) {
            Ok(v) => v,
            Err(e) => oracle!("queue {inst}: consumer {cid} got {got:?}: {e}"),
        };
        if let Take::Record { seq, redelivered } = take {
            m.hold(seq, cid);
            counts.taken += 1;
            counts.redelivered += u64::from(redelivered);
            if acked {
                m.recs.insert(seq, Rec::Acked);
                counts.acked += 1;
            }
        }
        q.model = m;
    }

    /// A held record's end: acknowledged, given back (or dropped), or left.
    fn finished(
        &mut self,
        inst: usize,
        cid: u64,
        counts: &mut ConsCounts,
        seq: u64,
        end: End,
        r: Result<(), RecvError>,
    ) {
        let Some(q) = self.insts.get_mut(inst) else {
            return;
        };
        if !q.model.trusted {
            return;
        }
        let m = &mut q.model;
        if end == End::Forget {
            return;
        }
        match m.recs.get(&seq) {
            Some(Rec::Held { by, .. }) if *by == cid => {}
            other => {
                oracle!("queue {inst}: consumer {cid} finished {seq}, the model has {other:?}")
            }
        }
        if r.is_err() {
            oracle!("queue {inst}: {end:?} of {seq} by consumer {cid} returned {r:?}");
        }
        counts.acked += 1;
        if end == End::Ack {
            m.recs.insert(seq, Rec::Acked);
        } else {
            m.give_back(seq);
        }
    }

    fn record_bounds(&mut self, inst: usize, ptr: *const u8, len: usize) {
        let max = self.insts[inst].config.max_payload as usize;
        if len > max {
            oracle!("queue record of {len} bytes exceeds max payload {max}");
        }
        if self.insts[inst].is_heap() {
            return;
        }
        if !self.mappings.contains(ptr, len) {
            self.refresh_mappings();
            if !self.mappings.contains(ptr, len) {
                oracle!("queue record of {len} bytes lies outside its segment");
            }
        }
    }

    fn end(&mut self) -> End {
        match self.input.below(8) {
            0..=3 => End::Ack,
            4 => End::GiveBack,
            5 => End::Drop,
            _ => End::Forget,
        }
    }

    fn take(&mut self) {
        let Some((k, h)) = self.lend_cons() else {
            return;
        };
        let QCons {
            id,
            inst,
            mut c,
            mut counts,
        } = h;
        let end = self.end();
        let nested = self.input.below(4);
        match c.try_take() {
            Ok(rec) => {
                self.record_bounds(inst, rec.as_ptr(), rec.len());
                let seq = rec.sequence();
                let got = Got::Record {
                    seq: Some(seq),
                    redelivered: Some(rec.redelivered()),
                    record_type: rec.record_type(),
                    bytes: rec.to_vec(),
                };
                self.took(inst, id, &mut counts, usize::MAX, &got, false);
                for _ in 0..nested {
                    self.step(true);
                }
                let r = match end {
                    End::Ack => rec.ack(),
                    End::GiveBack => rec.give_back(),
                    End::Drop => {
                        drop(rec);
                        Ok(())
                    }
                    End::Forget => {
                        core::mem::forget(rec);
                        Ok(())
                    }
                };
                if r.is_err() {
                    self.stats.errors += 1;
                }
                self.finished(inst, id, &mut counts, seq, end, r);
            }
            Err(e) => {
                self.stats.errors += 1;
                let got = match e {
                    RecvError::Empty => Got::Empty,
                    e => Got::Failed(e),
                };
                self.took(inst, id, &mut counts, usize::MAX, &got, false);
            }
        }
        let h = QCons {
            id,
            inst,
            c,
            counts,
        };
        self.check_consumer(&h);
        self.cons[k] = Hold::Here(h);
    }

    fn recv_buffer(&mut self, inst: usize) -> Vec<u8> {
        let max = self.insts[inst].config.max_payload as usize;
        let size = if self.input.below(4) == 0 {
            self.input.below(max + 1)
        } else {
            max + self.input.below(8)
        };
        vec![0u8; size]
    }

    /// What a copying call returned, for the model.
    fn recv_got(&mut self, inst: usize, buf: &[u8], r: Result<(u16, usize), RecvError>) -> Got {
        match r {
            Ok((record_type, len)) => {
                if len > buf.len() {
                    oracle!(
                        "try_recv returned {len} bytes into a {}-byte buffer",
                        buf.len()
                    );
                }
                let max = self.insts[inst].config.max_payload as usize;
                if len > max {
                    oracle!("queue record of {len} bytes exceeds max payload {max}");
                }
                Got::Record {
                    seq: None,
                    redelivered: None,
                    record_type,
                    bytes: buf[..len].to_vec(),
                }
            }
            Err(e) => {
                self.stats.errors += 1;
                match e {
                    RecvError::Empty | RecvError::TimedOut => Got::Empty,
                    RecvError::BufferTooSmall { needed } => {
                        let max = self.insts[inst].config.max_payload as usize;
                        if needed <= buf.len() || needed > max {
                            oracle!(
                                "BufferTooSmall {{ needed: {needed} }} for a {}-byte buffer (max payload {max})",
                                buf.len()
                            );
                        }
                        Got::TooSmall { needed }
                    }
                    e => Got::Failed(e),
                }
            }
        }
    }

    fn recv(&mut self) {
        let Some((k, mut h)) = self.lend_cons() else {
            return;
        };
        let inst = h.inst;
        let mut buf = self.recv_buffer(inst);
        let r = h.c.try_recv(&mut buf);
        let got = self.recv_got(inst, &buf, r);
        self.took(inst, h.id, &mut h.counts, buf.len(), &got, true);
        self.check_consumer(&h);
        self.cons[k] = Hold::Here(h);
    }

    fn take_timeout(&mut self) {
        let Some((k, h)) = self.lend_cons() else {
            return;
        };
        let QCons {
            id,
            inst,
            mut c,
            mut counts,
        } = h;
        let wait = self.wait();
        let timeout = self.short_timeout();
        if self.input.bool() {
            let mut buf = self.recv_buffer(inst);
            let r = c.recv_timeout(&mut buf, wait, timeout);
            let got = self.recv_got(inst, &buf, r);
            self.took(inst, id, &mut counts, buf.len(), &got, true);
        } else {
            let end = self.end();
            match c.take_timeout(wait, timeout) {
                Ok(rec) => {
                    self.record_bounds(inst, rec.as_ptr(), rec.len());
                    let seq = rec.sequence();
                    let got = Got::Record {
                        seq: Some(seq),
                        redelivered: Some(rec.redelivered()),
                        record_type: rec.record_type(),
                        bytes: rec.to_vec(),
                    };
                    self.took(inst, id, &mut counts, usize::MAX, &got, false);
                    let r = match end {
                        End::Ack => rec.ack(),
                        End::GiveBack => rec.give_back(),
                        End::Drop => {
                            drop(rec);
                            Ok(())
                        }
                        End::Forget => {
                            core::mem::forget(rec);
                            Ok(())
                        }
                    };
                    self.finished(inst, id, &mut counts, seq, end, r);
                }
                Err(e) => {
                    self.stats.errors += 1;
                    let got = match e {
                        RecvError::TimedOut => Got::Empty,
                        e => Got::Failed(e),
                    };
                    self.took(inst, id, &mut counts, usize::MAX, &got, false);
                }
            }
        }
        let h = QCons {
            id,
            inst,
            c,
            counts,
        };
        self.check_consumer(&h);
        self.cons[k] = Hold::Here(h);
    }

    // -- Counters ---------------------------------------------------------------

    fn compare_counters(&self, inst: usize, got: QueueCounters, what: &str) {
        let Some(q) = self.insts.get(inst) else {
            return;
        };
        if !q.model.trusted {
            return;
        }
        let m = &q.model;
        let want = QueueCounters {
            tail: m.tail,
            head: m.head,
            ..m.counters
        };
        if got != want {
            oracle!("queue {inst}: {what} {got:?}, the model has {want:?}");
        }
    }

    /// The counters of every trusted queue agree with its model.
    fn check_counters(&self) {
        for (i, q) in self.insts.iter().enumerate() {
            if let Some(c) = q.counters() {
                self.compare_counters(i, c, "counters");
            }
        }
    }

    fn check_producer(&self, h: &QProd) {
        if !self.trusted(h.inst) {
            return;
        }
        let got = (h.p.committed(), h.p.reclaimed());
        let want = (h.counts.committed, h.counts.reclaimed);
        if got != want {
            oracle!(
                "producer {}: committed/reclaimed {got:?}, the model has {want:?}",
                h.id
            );
        }
    }

    fn check_consumer(&self, h: &QCons) {
        if !self.trusted(h.inst) {
            return;
        }
        let got = (h.c.taken(), h.c.acked(), h.c.redelivered());
        let want = (h.counts.taken, h.counts.acked, h.counts.redelivered);
        if got != want {
            oracle!(
                "consumer {}: taken/acked/redelivered {got:?}, the model has {want:?}",
                h.id
            );
        }
    }

    // -- The directory and the file ----------------------------------------------

    /// Creates [`QUEUE`] (a new instance if it was removed), or opens it.
    fn create_queue(&mut self) {
        let r = self.bus.queue(QUEUE, &self.config);
        if let Some(q) = self.err(r) {
            self.add_queue(q);
        }
    }

    fn add_queue(&mut self, q: Queue) {
        let Some(file) = q
            .path()
            .file_name()
            .and_then(|f| f.to_str())
            .map(str::to_owned)
        else {
            return;
        };
        if let Some(inst) = self
            .insts
            .iter_mut()
            .find(|i| i.file() == Some(file.as_str()))
        {
            if let Backing::Mapped { queue, .. } = &mut inst.backing {
                **queue = q;
            }
            return;
        }
        let config = *q.config();
        let map = self.map_file(&file);
        trace!("  queue {} in {file}", self.insts.len());
        let mut inst = Inst::new(
            Backing::Mapped {
                queue: Box::new(q),
                file,
                map,
            },
            config,
        );
        // Without a mapping the model could not read the counters.
        inst.model.trusted = inst.map().is_some() && !self.dir_mutated;
        self.insts.push(inst);
    }

    fn directory_op(&mut self) {
        match self.input.below(5) {
            0 => self.create_queue(),
            1 => {
                let r = self.bus.open_queue(QUEUE);
                if let Some(q) = self.err(r) {
                    self.add_queue(q);
                }
            }
            2 => {
                // Another configuration: refused while a queue of another
                // one exists.
                let mut other = self.config;
                match self.input.below(3) {
                    0 => other.slots *= 2,
                    1 => other.max_payload += 1,
                    _ => other.reclaim_after += Duration::from_nanos(1),
                }
                let r = self.bus.queue(QUEUE, &other);
                if let Some(q) = self.err(r) {
                    if q.config() != &other && !self.dir_mutated {
                        oracle!(
                            "Bus::queue with {other:?} opened a queue of {:?}",
                            q.config()
                        );
                    }
                    self.add_queue(q);
                }
            }
            3 => {
                let r = inspect::list_rings(&self.ns, &OpenOptions::default());
                self.err(r);
            }
            _ => {
                let r = self.bus.open_queue_timeout(QUEUE, Duration::ZERO);
                self.err(r);
            }
        }
    }

    /// Removes the queue, re-creates it, unlinks or truncates its file.
    fn file_op(&mut self) {
        let Some(inst) = self.newest_mapped() else {
            self.create_queue();
            return;
        };
        match self.input.below(6) {
            0 | 1 => {
                // Handles learn of it at their next slow check: the model
                // stops here.
                let r = self.bus.remove_queue(QUEUE);
                if self.err(r).is_some() {
                    self.untrust(inst);
                }
            }
            2 => self.create_queue(),
            3 => {
                let Some(file) = self.insts[inst].file().map(str::to_owned) else {
                    return;
                };
                let _ = std::fs::remove_file(self.ns.path().join(&file));
                self.untrust(inst);
                if let Backing::Mapped { file, .. } = &mut self.insts[inst].backing {
                    file.push_str("#removed");
                }
            }
            _ => {
                if avoided(Finding::TruncationSigbus) {
                    return;
                }
                let Some(file) = self.insts[inst].file().map(str::to_owned) else {
                    return;
                };
                if file.contains('#') {
                    return;
                }
                let len = self.sizes.get(&file).copied().unwrap_or(0);
                let to = [0, 128, 4096, len / 2, len.saturating_sub(1)][self.input.below(5)];
                let Ok(f) = FileOptions::new()
                    .write(true)
                    .open(self.ns.path().join(&file))
                else {
                    return;
                };
                self.mappings.truncated = true;
                if f.set_len(to as u64).is_err() {
                    return;
                }
                trace!("  truncated {file} to {to}");
                if let Some(m) = self.insts[inst].map() {
                    m.live.set(m.live.get().min(to));
                }
                self.untrust(inst);
            }
        }
    }

    // -- Mutations ----------------------------------------------------------------

    /// A mapped queue to mutate: mostly the newest.
    fn pick_mapped(&mut self) -> Option<usize> {
        let mapped: Vec<usize> = (0..self.insts.len())
            .filter(|&i| self.insts[i].map().is_some())
            .collect();
        if mapped.is_empty() {
            return None;
        }
        Some(if self.input.below(4) == 0 {
            mapped[self.input.below(mapped.len())]
        } else {
            mapped[mapped.len() - 1]
        })
    }

    fn mutate_random(&mut self) {
        self.stats.mutations += 1;
        let n = self.input.below(8) + 1;
        let mut bytes = [0u8; 8];
        for b in bytes.iter_mut().take(n) {
            *b = self.input.u8();
        }
        let off = self.input.u32() as usize;
        if self.input.below(8) == 0 {
            // The queue's directory entry (the start of the directory).
            if let Some(m) = &self.dir_map {
                let span = m.len.min(dir_entry(4));
                m.write(off % span, &bytes[..n]);
            }
            self.dir_mutated = true;
            for i in 0..self.insts.len() {
                if !self.insts[i].is_heap() {
                    self.untrust(i);
                }
            }
            return;
        }
        let Some(inst) = self.pick_mapped() else {
            return;
        };
        if let Some(m) = self.insts[inst].map() {
            m.write(off % m.len, &bytes[..n]);
        }
        self.untrust(inst);
    }

    fn mutate_targeted(&mut self) {
        self.stats.mutations += 1;
        let Some(inst) = self.pick_mapped() else {
            return;
        };
        self.untrust(inst);
        let c = self.insts[inst].config;
        let slots = u64::from(c.slots);
        let geometry = c.geometry();
        let ctl = |(f, w): (usize, usize)| (QUEUE_CONTROL_OFFSET + f, w);
        let tail_at = ctl(field!(QueueControl, tail));
        let head_at = ctl(field!(QueueControl, head));
        let Some(m) = self.insts[inst].map() else {
            return;
        };
        let tail = m.read_n(tail_at.0, tail_at.1);
        let head = m.read_n(head_at.0, head_at.1);
        let field = self.input.below(20);
        let (at, scale) = match field {
            0 | 1 => (tail_at, slots),
            2 | 3 => (head_at, slots),
            4 => {
                let f = [
                    field!(QueueControl, wake_seq),
                    field!(QueueControl, sleepers),
                    field!(QueueControl, redelivery_hint),
                    field!(QueueControl, redelivered),
                    field!(QueueControl, reclaimed_claims),
                    field!(QueueControl, reaped_consumers),
                    field!(QueueControl, reaped_producers),
                ][self.input.below(7)];
                (ctl(f), 1)
            }
            5 => {
                // An immutable field (checked when a handle opens it).
                let f = [
                    field!(QueueControl, slots),
                    field!(QueueControl, slot_stride),
                    field!(QueueControl, max_payload),
                    field!(QueueControl, max_producers),
                    field!(QueueControl, max_consumers),
                    field!(QueueControl, reclaim_after_ns),
                ][self.input.below(6)];
                (ctl(f), 1_000)
            }
            // Segment state: 1 is poisoned.
            6 => (field!(SegmentHeader, state), 1),
            7 | 8 => {
                let i = self.input.below(c.max_consumers as usize);
                let base = geometry.reader_offset(i);
                let (f, w) = match self.input.below(6) {
                    0 | 1 => field!(QueueConsumerSlot, state),
                    2 => field!(QueueConsumerSlot, counters.records),
                    3 => field!(QueueConsumerSlot, counters.acked),
                    4 => field!(QueueConsumerSlot, counters.redelivered),
                    _ => field!(QueueConsumerSlot, sleeping),
                };
                if f == 0 {
                    let v = self.participant_word(m.read_u32(base));
                    if let Some(m) = self.insts[inst].map() {
                        m.write_u32(base, v);
                    }
                    return;
                }
                ((base + f, w), 1)
            }
            9 | 10 => {
                let j = self.input.below(c.max_producers as usize);
                let base = geometry.writer_offset(j);
                let (f, w) = match self.input.below(5) {
                    0 => field!(QueueProducerSlot, state),
                    1 => field!(QueueProducerSlot, counters.records),
                    2 => field!(QueueProducerSlot, counters.lost_claims),
                    _ => field!(QueueProducerSlot, claimed),
                };
                if f == 0 {
                    let v = self.participant_word(m.read_u32(base));
                    if let Some(m) = self.insts[inst].map() {
                        m.write_u32(base, v);
                    }
                    return;
                }
                if f == field!(QueueProducerSlot, claimed).0 && self.input.bool() {
                    // A claim announced near the tail (seq + 1).
                    let back = self.input.below(2 * slots as usize + 1) as u64;
                    let v = tail.wrapping_add(slots).wrapping_sub(back);
                    if let Some(m) = self.insts[inst].map() {
                        m.write_u64(base + f, v);
                    }
                    return;
                }
                ((base + f, w), slots)
            }
            11..=15 => {
                // A stamp near the head or the tail.
                let seq = self.near(head, tail, slots);
                let off = geometry.slot_offset(seq) + field!(RecordSlotHeader, stamp).0;
                let stamp = self.stamp(seq, slots, c.max_consumers.max(c.max_producers));
                if let Some(m) = self.insts[inst].map() {
                    trace!("  stamp of {seq} at {off}: {stamp:#x}");
                    m.write_u64(off, stamp);
                }
                return;
            }
            16 | 17 => {
                let seq = self.near(head, tail, slots);
                let (f, w) = field!(RecordSlotHeader, word);
                let off = geometry.slot_offset(seq) + f;
                let word = self.input.header_word(u64::from(c.max_payload));
                let word = if self.input.bool() {
                    // Flags clear: only the length (or type) is off.
                    word & !(0xFFFF << 48)
                } else {
                    word
                };
                if let Some(m) = self.insts[inst].map() {
                    m.write_n(off, w, word);
                }
                return;
            }
            _ => {
                // Payload bytes of a record near the head.
                let seq = self.near(head, tail, slots);
                let off = geometry.payload_offset(seq) + self.input.below(c.max_payload as usize);
                let b = self.input.u8();
                if let Some(m) = self.insts[inst].map() {
                    m.write(off, &[b]);
                }
                return;
            }
        };
        let Some(m) = self.insts[inst].map() else {
            return;
        };
        let cur = m.read_n(at.0, at.1);
        let v = self.input.value(cur, scale);
        trace!(
            "  queue {inst} field {field} at {}: {cur:#x} -> {v:#x}",
            at.0
        );
        if let Some(m) = self.insts[inst].map() {
            m.write_n(at.0, at.1, v);
        }
    }

    /// A sequence at or near the head or the tail.
    fn near(&mut self, head: u64, tail: u64, slots: u64) -> u64 {
        let from = if self.input.bool() { head } else { tail };
        let d = self.input.below(2 * slots as usize + 1) as u64;
        from.wrapping_add(d).wrapping_sub(slots)
    }

    /// A stamp for `seq`'s slot: mostly one the protocol writes, at a lap
    /// near `seq`'s, else anything (unknown states and bits included).
    fn stamp(&mut self, seq: u64, slots: u64, owners: u32) -> u64 {
        let lap = seq / slots;
        let lap = match self.input.below(8) {
            0..=3 => lap,
            4 => lap.wrapping_add(1),
            5 => lap.wrapping_sub(1),
            6 => lap.wrapping_add(1 << (self.input.u8() % 48)),
            _ => self.input.u64(),
        };
        let owner = if self.input.below(4) == 0 {
            u32::from(self.input.u8())
        } else {
            self.input.below(owners as usize + 1) as u32
        };
        // States 5 to 7 are unknown.
        let state = [0, 1, 2, 3, 4, 2, 3, 4, 5, 7][self.input.below(10)];
        let flags = [0, queue_stamp::REDELIVERED, queue_stamp::SUSPECT][self.input.below(3)];
        let unknown_bit = if self.input.below(8) == 0 {
            1 << (5 + self.input.below(3))
        } else {
            0
        };
        match self.input.below(16) {
            0 => self.input.u64(),
            _ => queue_stamp::pack(lap, owner, state, flags) | unknown_bit,
        }
    }

    /// A participant state word: a known state at the same or the next
    /// generation, or anything.
    fn participant_word(&mut self, cur: u32) -> u32 {
        let state = [
            participant::FREE,
            participant::CLAIMING,
            participant::LIVE,
            participant::DETACHED,
            0xFF,
        ][self.input.below(5)];
        match self.input.below(4) {
            0 => participant::with_state(cur, state),
            1 => participant::next_generation(cur, state),
            2 => self.input.u32(),
            _ => state,
        }
    }
}

/// Whether what a call returned is what the model took.
fn agrees(m: &Model, take: Take, got: &Got) -> Result<(), String> {
    match (take, got) {
        (Take::Empty, Got::Empty) => Ok(()),
        (Take::TooSmall { needed }, Got::TooSmall { needed: n }) if needed == *n => Ok(()),
        (
            Take::Record { seq, redelivered },
            Got::Record {
                seq: s,
                redelivered: r,
                record_type,
                bytes,
            },
        ) => {
            if s.is_some_and(|s| s != seq) {
                return Err(format!("the model takes record {seq}"));
            }
            if r.is_some_and(|r| r != redelivered) {
                return Err(format!("record {seq} is redelivered: {redelivered}"));
            }
            match m.recs.get(&seq) {
                Some(Rec::Committed {
                    record_type: t,
                    bytes: b,
                    ..
                }) if t == record_type && b == bytes => Ok(()),
                other => Err(format!("record {seq} was {other:?}")),
            }
        }
        (take, _) => Err(format!("the model says {take:?}")),
    }
}

impl Drop for QueueCase<'_> {
    fn drop(&mut self) {
        // Handles first (they unlock and store into their mappings), then
        // the queues and the raw mappings.
        self.cons.clear();
        self.prods.clear();
        self.insts.clear();
    }
}
