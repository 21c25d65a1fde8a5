//! A log's lifecycle beyond its handles: dropping a detached durable
//! subscriber (whose place would otherwise gate `Backpressure` publishers
//! until it returns), and naming the subscriber that holds a publisher
//! back.
//!
//! Dropping follows the registration protocol: the dropper takes the
//! slot's liveness lock first, as [`Subscriber::register`] does, and only
//! then changes the slot. Of a durable subscriber resuming and a dropper
//! racing for the same name, whichever takes the lock first wins; the
//! other finds it held and is refused (`DurableInUse` for the resumer,
//! [`DropDurableError::InUse`] for the dropper). A reaper only ever frees
//! or detaches a `LIVE` or `CLAIMING` slot whose lock is free, by a
//! compare-and-swap of the state word that the generation bump below makes
//! fail.

use super::{BroadcastView, Policy, Publisher};
use crate::layout::{lock_slot, participant, SubscriberSlot, MAX_SEQUENCE, NAME_LEN};
use crate::sync::{yield_now, Ordering};

/// Why a durable subscriber could not be dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropDurableError {
    /// A live process holds the durable subscriber: it is attached, or
    /// resuming its place right now.
    InUse {
        /// The name.
        name: String,
        /// Pid its holder wrote, for humans only (pids are reused).
        pid: u32,
    },
    /// No subscriber of the topic has that durable name.
    NotFound {
        /// The name.
        name: String,
    },
    /// The durable name is empty or longer than 64 bytes.
    BadName,
    /// The slot holding the name has a state no build writes.
    Corrupt {
        /// The slot at fault.
        slot: usize,
    },
}

impl std::fmt::Display for DropDurableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropDurableError::InUse { name, pid } => write!(
                f,
                "durable subscriber \"{name}\" is attached in a live process (pid {pid}): stop it first, then drop it"
            ),
            DropDurableError::NotFound { name } => {
                write!(f, "the topic has no durable subscriber \"{name}\"")
            }
            DropDurableError::BadName => write!(f, "a durable subscriber name must be 1-64 bytes"),
            DropDurableError::Corrupt { slot } => write!(
                f,
                "subscriber slot {slot} of the topic is corrupt: its state is a value no build writes (remove the topic and create it again)"
            ),
        }
    }
}

impl std::error::Error for DropDurableError {}

/// How many times a dropper looks again at a durable subscriber's lock
/// held while its slot says `DETACHED`: held that way, it is a registration
/// passing over the slot (which lets go at once) or a resumption (which
/// marks the slot `LIVE` at once, unless its process is stopped).
const LOCK_LOOKS: u32 = 100;

/// Takes subscriber slot `i`'s liveness lock for a dropper; false if a
/// live process keeps it.
fn lock_for_drop(ring: &BroadcastView, i: usize, s: &SubscriberSlot) -> bool {
    for _ in 0..LOCK_LOOKS {
        if ring.liveness.try_lock(lock_slot::subscriber(i)) {
            return true;
        }
        // SYNC POINT: Acquire, as the hint load in `drop_durable` (only to
        // decide whether to look again).
        if participant::state(s.state.load(Ordering::Acquire)) != participant::DETACHED {
            return false;
        }
        yield_now();
        #[cfg(not(shmbus_loom))]
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
    false
}

/// Frees the detached durable subscriber `name` of `ring`: its slot becomes
/// `FREE` at the next generation and its name is cleared, so that it gates
/// no publisher from then on (a publisher blocked on it finds the slot free
/// at its next look: `gate_allows` rescans once the slowest subscriber it
/// remembers is no longer gating). `pause` runs once the slot's lock is
/// held, before anything changes (tests stall a dropper there).
///
/// A durable subscriber whose process died while attached (its slot still
/// `LIVE` or `CLAIMING`, its lock free) is dropped as a detached one would
/// be: nothing alive holds it.
pub(crate) fn drop_durable(
    ring: &BroadcastView,
    name: &str,
    pause: &dyn Fn(),
) -> Result<(), DropDurableError> {
    let n = name.as_bytes();
    if n.is_empty() || n.len() > NAME_LEN {
        return Err(DropDurableError::BadName);
    }
    for i in 0..ring.max_subscribers {
        let s = ring.subscriber(i);
        // SYNC POINT: pairs with the update that published the slot's
        // name (the SeqCst store of LIVE in `Subscriber::register`, the
        // Release store of DETACHED in `Subscriber::drop`, a reaper's
        // AcqRel CAS). Without the lock this is a hint, checked again
        // below once the lock is held.
        let state = participant::state(s.state.load(Ordering::Acquire));
        if state == participant::FREE || !s.name_matches(n) {
            continue;
        }
        if !lock_for_drop(ring, i, s) {
            return Err(DropDurableError::InUse {
                name: name.to_owned(),
                pid: s.pid.load(Ordering::Relaxed),
            });
        }
        pause();
        // SYNC POINT: as the load above, now holding the lock: no
        // registration changes the slot meanwhile.
        let word = s.state.load(Ordering::Acquire);
        let state = participant::state(word);
        if state == participant::FREE || !s.name_matches(n) {
            // Dropped (or taken) by someone else between our two looks.
            ring.liveness.unlock(lock_slot::subscriber(i));
            continue;
        }
        if !participant::is_known(state) {
            ring.liveness.unlock(lock_slot::subscriber(i));
            return Err(DropDurableError::Corrupt { slot: i });
        }
        free_slot(s, word);
        s.set_name(&[]);
        ring.forget_sleeper(s);
        ring.liveness.unlock(lock_slot::subscriber(i));
        return Ok(());
    }
    Err(DropDurableError::NotFound {
        name: name.to_owned(),
    })
}

/// Moves subscriber slot `s` (whose lock the caller holds; its state word
/// was `word`) to `FREE` at the next generation, whatever a reaper did
/// meanwhile.
fn free_slot(s: &SubscriberSlot, mut word: u32) {
    loop {
        // SYNC POINT: AcqRel on the state word, as `take_slot` in
        // `Subscriber::register`. Release pairs with the SeqCst state loads
        // in `scan_gate` and the Acquire load of the slowest subscriber's
        // state in `Publisher::gate_allows` (a publisher that sees FREE
        // passes the slot by; nothing it reads from the slot is needed
        // after that) and with the next registration's Acquire in
        // `take_slot`. Acquire orders us after the update we replace. The
        // generation bump makes a reaper's CAS of an older word fail.
        match s.state.compare_exchange_weak(
            word,
            participant::next_generation(word, participant::FREE),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => word = now,
        }
    }
}

/// The subscriber that holds a `Backpressure` publisher back: the slowest
/// of those that gate it, when it is a whole log behind (see
/// [`Publisher::holding_back`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatingSubscriber {
    /// Its subscriber slot.
    pub slot: usize,
    /// Its durable name, `None` for an anonymous subscriber.
    pub name: Option<String>,
    /// Pid its last holder wrote, for humans only (pids are reused).
    pub pid: u32,
    /// The next sequence it will read: the log cannot take a record past
    /// `cursor + slots` until it moves.
    pub cursor: u64,
    /// The log's tail when it was looked at: the next sequence to claim.
    pub tail: u64,
    /// A live process holds its liveness lock. `false` for a detached
    /// durable subscriber (it gates until it resumes or is dropped with
    /// [`Topic::drop_durable`](crate::bus::Topic::drop_durable)), or an
    /// anonymous one whose process died (a blocked publisher frees it
    /// within a few milliseconds).
    pub alive: bool,
}

impl GatingSubscriber {
    /// Records published that it has not read.
    pub fn behind(&self) -> u64 {
        self.tail.saturating_sub(self.cursor)
    }

    /// Whether it is a durable subscriber that no live process holds: it
    /// keeps its place, and holds publishers back, until it resumes or is
    /// dropped.
    pub fn is_detached_durable(&self) -> bool {
        self.name.is_some() && !self.alive
    }
}

impl std::fmt::Display for GatingSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "durable subscriber \"{name}\"")?,
            None => f.write_str("anonymous subscriber")?,
        }
        let how = match (self.alive, self.name.is_some()) {
            (true, _) => "live",
            (false, true) => "detached",
            (false, false) => "dead",
        };
        write!(
            f,
            " (slot {}, pid {}, {how}) at record {}, {} behind",
            self.slot,
            self.pid,
            self.cursor,
            self.behind()
        )
    }
}

impl Publisher {
    /// The subscriber holding this publisher back, if the log is full: the
    /// slowest subscriber that gates it (live, or a detached durable one),
    /// when it is a whole log behind the tail. `None` under `Overwrite`
    /// (publishers never wait), or when there is room.
    ///
    /// For a publisher whose claims time out or return
    /// [`ClaimError::Full`](crate::ring::ClaimError::Full), to say who it
    /// waits for. It reads every subscriber slot and asks the kernel about
    /// one lock: not for the hot path.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::{Bus, ClaimError, StartAt, TopicConfig};
    ///
    /// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
    /// let bus = Bus::at(&tmp, "desk")?;
    /// let topic = bus.topic("ticks", &TopicConfig { slots: 16, ..TopicConfig::default() })?;
    /// drop(topic.durable_subscriber("audit", StartAt::Tail)?); // leaves, keeps its place
    /// let mut publisher = topic.publisher()?;
    /// while publisher.try_send(1, b"tick").is_ok() {}
    /// let who = publisher.holding_back().expect("the log is full");
    /// assert_eq!(who.name.as_deref(), Some("audit"));
    /// assert!(who.is_detached_durable());
    /// topic.drop_durable("audit")?;                             // let it go
    /// assert_eq!(publisher.holding_back(), None);
    /// publisher.try_send(1, b"tick")?;
    /// # drop((publisher, topic, bus));
    /// # std::fs::remove_dir_all(&tmp).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn holding_back(&self) -> Option<GatingSubscriber> {
        if self.ring.policy != Policy::Backpressure {
            return None;
        }
        // SYNC POINT: Acquire pairs with the publishers' AcqRel updates of
        // `tail` (a report: nothing is claimed from it).
        let tail = self.ring.control().tail.load(Ordering::Acquire);
        if tail > MAX_SEQUENCE {
            return None;
        }
        let (cursor, slot) = self.ring.scan_gate(tail);
        let slot = slot?;
        if cursor.saturating_add(self.ring.slots) > tail {
            return None;
        }
        let s = self.ring.subscriber(slot);
        Some(GatingSubscriber {
            slot,
            name: s.durable_name_len().and_then(|_| s.name()),
            pid: s.pid.load(Ordering::Relaxed),
            cursor,
            tail,
            alive: self
                .ring
                .liveness
                .held_by_other(lock_slot::subscriber(slot)),
        })
    }
}
