//! Loom models of the broadcast log (`shmbus::ring::broadcast`), its futex
//! wake-up and the directory's create-or-open and remove races: the production
//! code over heap memory, with two record slots so every model wraps.
//!
//! What loom checks here: stamps, header words, cursors and the tail are
//! loom atomics, so the publish/commit protocol, gating, lap accounting and
//! the seqlock re-check of the header are fully modelled. Payload bytes
//! are modelled too: under `Backpressure` every payload access is checked
//! for causality (see `AccessTracker`); under `Overwrite`, where readers
//! copy a slot while a publisher may rewrite it, the payload words are loom
//! atomics (see `RacyBytes`), and every record a subscriber is handed is
//! checked word for word against what its publisher wrote, so a torn copy
//! that the seqlock let through fails the model.
//!
//! Run: `RUSTFLAGS="--cfg shmbus_loom" cargo test -p loom-tests --release`.
#![cfg(shmbus_loom)]

use std::time::Duration;

use loom::thread;
use shmbus::directory::{self, RingConfig, RingKind};
use shmbus::ring::broadcast::{
    self, BroadcastConfig, ClaimError, Policy, Publisher, RecvError, StartAt, Subscriber,
};
use shmbus::ring::spsc::SpscConfig;
use shmbus::wait::WaitStrategy;

fn config(policy: Policy, slots: u32) -> BroadcastConfig {
    BroadcastConfig {
        slots,
        max_payload: 16,
        policy,
        max_subscribers: 2,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

/// Record `n` of publisher `p`: type `p * 16 + n`, payload of two words,
/// both naming `p` and `n`, so a copy mixing two records' words shows.
fn record(p: u8, n: u8) -> (u16, [u8; 16]) {
    let w = [p, n, p ^ n, 0xA5, p, n, 0x5A, p ^ n];
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&w);
    payload[8..].copy_from_slice(&w.map(|b| !b));
    (u16::from(p) * 16 + u16::from(n), payload)
}

fn publish_all(mut publisher: Publisher, p: u8, count: u8) {
    for n in 0..count {
        let (ty, payload) = record(p, n);
        loop {
            match publisher.try_send(ty, &payload) {
                Ok(_) => break,
                Err(ClaimError::Full) => thread::yield_now(),
                Err(e) => panic!("claim failed: {e:?}"),
            }
        }
    }
}

/// Loom with a branch budget that fits the spin-and-yield loops of four
/// threads; `LOOM_MAX_PREEMPTIONS` (default 2) bounds the preemptions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Receives until `total` records are accounted for (read + missed);
/// checks each publisher's records arrive in order and each payload matches
/// its type. Returns (read, missed).
fn drain(sub: &mut Subscriber, total: u64) -> (u64, u64) {
    let (mut read, mut missed) = (0u64, 0u64);
    let mut next = [0u8; 2];
    let mut buf = [0u8; 16];
    while read + missed < total {
        match sub.try_recv(&mut buf) {
            Ok((ty, len)) => {
                assert_eq!(len, 16);
                let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                assert!(p < 2 && n < 8, "record type {ty} was never published");
                assert_eq!(buf, record(p, n).1, "torn or mismatched record");
                assert!(n >= next[p as usize], "publisher {p} out of order");
                next[p as usize] = n + 1;
                read += 1;
            }
            Err(RecvError::Empty) => thread::yield_now(),
            Err(RecvError::Lapped { missed: m }) => missed += m,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    (read, missed)
}

/// Polls two subscribers in turn until each has accounted for `total`
/// records, the first copying (`try_recv`), the second borrowing
/// (`try_read_with`); checks order and every payload word. Returns their
/// (read, missed).
fn drain_both(a: &mut Subscriber, b: &mut Subscriber, total: u64) -> [(u64, u64); 2] {
    let mut done = [(0u64, 0u64); 2];
    let mut next = [[0u8; 2]; 2];
    let mut buf = [0u8; 16];
    while done.iter().any(|(r, m)| r + m < total) {
        let mut progressed = false;
        for (k, sub) in [&mut *a, &mut *b].into_iter().enumerate() {
            if done[k].0 + done[k].1 == total {
                continue;
            }
            let got = if k == 0 {
                sub.try_recv(&mut buf).map(|(ty, _)| ty)
            } else {
                sub.try_read_with(|ty, bytes| {
                    buf.copy_from_slice(bytes);
                    ty
                })
            };
            match got {
                Ok(ty) => {
                    let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                    assert!(p < 2 && n < 8, "record type {ty} was never published");
                    assert_eq!(buf, record(p, n).1, "torn or mismatched record");
                    assert!(n >= next[k][p as usize], "publisher {p} out of order");
                    next[k][p as usize] = n + 1;
                    done[k].0 += 1;
                    progressed = true;
                }
                Err(RecvError::Empty) => {}
                Err(RecvError::Lapped { missed }) => {
                    done[k].1 += missed;
                    progressed = true;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        if !progressed {
            thread::yield_now();
        }
    }
    done
}

/// Backpressure, 2 publishers (one record each), 2 subscribers, 1 slot:
/// every subscriber gets both records exactly once; the second publisher is
/// held back until both subscribers read the first, never overwrites.
#[test]
fn backpressure_two_publishers_two_subscribers() {
    model(|| {
        let log = broadcast::heap(config(Policy::Backpressure, 1)).expect("config");
        let mut a = log.subscriber(StartAt::Tail).expect("sub");
        let mut b = log.subscriber(StartAt::Tail).expect("sub");
        let p0 = log.publisher().expect("pub");
        let p1 = log.publisher().expect("pub");
        let t0 = thread::spawn(move || publish_all(p0, 0, 1));
        let t1 = thread::spawn(move || publish_all(p1, 1, 1));
        assert_eq!(drain_both(&mut a, &mut b, 2), [(2, 0), (2, 0)]);
        t0.join().expect("pub 0");
        t1.join().expect("pub 1");
    });
}

/// Overwrite, 2 publishers (one record each), 2 subscribers, 2 slots:
/// publishers race for the tail without waiting for subscribers; each
/// subscriber accounts for both records, in per-publisher order. (Laps are
/// modelled in `overwrite_lap_is_counted_exactly`: with one slot this model
/// does not finish in CI time.)
#[test]
fn overwrite_two_publishers_two_subscribers_with_laps() {
    model(|| {
        let log = broadcast::heap(config(Policy::Overwrite, 2)).expect("config");
        let mut a = log.subscriber(StartAt::Tail).expect("sub");
        let mut b = log.subscriber(StartAt::Tail).expect("sub");
        let p0 = log.publisher().expect("pub");
        let p1 = log.publisher().expect("pub");
        let t0 = thread::spawn(move || publish_all(p0, 0, 1));
        let t1 = thread::spawn(move || publish_all(p1, 1, 1));
        let [(ra, ma), (rb, mb)] = drain_both(&mut a, &mut b, 2);
        assert_eq!((ra + ma, rb + mb), (2, 2));
        t0.join().expect("pub 0");
        t1.join().expect("pub 1");
    });
}

/// Overwrite, 2 publishers (one record each), 2 subscribers, one slot: the
/// second record overwrites the first in the only slot, so a subscriber can
/// be lapped while both publishers race. Each subscriber accounts for both
/// records exactly (received + missed = 2), in per-publisher order, and
/// every payload word it is handed is its publisher's, by copy and by
/// borrow alike. Fails with the publisher's seqlock fence (after marking a
/// slot "writing") or the subscriber's (before re-checking the stamp) taken
/// out, or with either read skipping the stamp re-check.
/// Explored with at most one preemption: with two, this model does not
/// finish in CI time.
#[test]
fn overwrite_lap_with_two_publishers_two_subscribers() {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    builder.preemption_bound = Some(1);
    builder.check(|| {
        let log = broadcast::heap(config(Policy::Overwrite, 1)).expect("config");
        let mut a = log.subscriber(StartAt::Tail).expect("sub");
        let mut b = log.subscriber(StartAt::Tail).expect("sub");
        let p0 = log.publisher().expect("pub");
        let p1 = log.publisher().expect("pub");
        let t0 = thread::spawn(move || publish_all(p0, 0, 1));
        let t1 = thread::spawn(move || publish_all(p1, 1, 1));
        let [(ra, ma), (rb, mb)] = drain_both(&mut a, &mut b, 2);
        assert_eq!((ra + ma, rb + mb), (2, 2));
        t0.join().expect("pub 0");
        t1.join().expect("pub 1");
    });
}

/// One publisher laps a subscriber that reads concurrently: the lap is
/// reported with the exact count and the subscriber resumes intact, every
/// payload word checked. Fails with either seqlock fence taken out or with
/// `try_recv` skipping the stamp re-check.
#[test]
fn overwrite_lap_is_counted_exactly() {
    model(|| {
        let log = broadcast::heap(config(Policy::Overwrite, 2)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let p = log.publisher().expect("pub");
        let t = thread::spawn(move || publish_all(p, 0, 4));
        let (read, missed) = drain(&mut sub, 4);
        assert_eq!(read + missed, 4);
        t.join().expect("pub");
    });
}

/// A subscriber that goes to sleep on the futex is always woken by a
/// publish: no lost wake-up (loom reports a deadlock otherwise).
#[test]
fn futex_sleep_never_misses_a_publish() {
    model(|| {
        let log = broadcast::heap(config(Policy::Backpressure, 2)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let p = log.publisher().expect("pub");
        let t = thread::spawn(move || publish_all(p, 0, 1));
        let rec = sub
            .read_blocking(WaitStrategy::Blocking {
                spins: 0,
                yields: 0,
            })
            .expect("a record");
        assert_eq!(&rec[..], &record(0, 0).1[..]);
        drop(rec);
        t.join().expect("pub");
    });
}

/// As `futex_sleep_never_misses_a_publish`, with an exclusive publisher
/// (one publisher slot: claims and commits by plain store, no fence before
/// entering its slot, and between its commit and its look at the sleeper
/// count only `light_barrier`, whose heavy side the sleeper runs). Fails
/// with the fence of `light_barrier` taken out, or with the fence of
/// `heavy_barrier` taken out of the sleeper's path.
#[test]
fn futex_sleep_never_misses_an_exclusive_publish() {
    model(|| {
        let log = broadcast::heap(BroadcastConfig {
            max_publishers: 1,
            ..config(Policy::Backpressure, 2)
        })
        .expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let p = log.publisher().expect("pub");
        assert!(log.publisher().is_err(), "one publisher slot");
        let t = thread::spawn(move || publish_all(p, 0, 2));
        for n in 0..2 {
            let rec = sub
                .read_blocking(WaitStrategy::Blocking {
                    spins: 0,
                    yields: 0,
                })
                .expect("a record");
            assert_eq!(&rec[..], &record(0, n).1[..]);
        }
        t.join().expect("pub");
    });
}

/// An exclusive publisher of a `Backpressure` log (one publisher slot,
/// claims and commits by plain store) holds a claim while a waiter whose
/// claim timeout passed tries to reclaim it, then commits and goes on
/// publishing through a two-slot log gated by a subscriber. The waiter
/// leaves a live sole publisher's claim alone, so the commit always lands
/// and the subscriber reads every record, intact and in order, missing
/// none. Fails with `BroadcastView::may_reclaim` answering yes regardless
/// (the reclaim then lands under the plain-store commit).
#[test]
fn a_live_exclusive_publishers_claim_is_left_to_its_commit() {
    model(|| {
        let (log, sub) = sole_stalling_log();
        // This thread is the publisher: it holds seq 0 from the start.
        let mut p = log.publisher().expect("pub");
        let mut claim = p.try_claim(16).expect("room");
        assert_eq!(claim.sequence(), 0);
        let waiter = {
            let log = log.clone();
            thread::spawn(move || log.reclaim_for_test(0))
        };
        let reader = spawn_counting_reader(sub, 3);
        let (ty, payload) = record(0, 0);
        claim.copy_from_slice(&payload);
        claim.set_record_type(ty);
        assert_eq!(claim.commit(), Ok(0));
        send_numbered(&mut p, 1..3);
        let (read, missed) = reader.join().expect("reader");
        // The waiter saw the commit (resolved) or left the claim alone.
        waiter.join().expect("waiter");
        assert_eq!(read, vec![0, 1, 2]);
        assert_eq!(missed, 0);
    });
}

/// The exclusive publisher of a `Backpressure` log dies holding a claim
/// (seq 0). A waiter whose claim timeout passed and a successor publisher,
/// which reclaims its dead predecessor's claim as it registers, race to
/// reclaim it; the successor then publishes two records through the
/// two-slot log. The subscriber accounts for every sequence exactly once:
/// seq 0 missed, the successor's records read intact and in order. Fails
/// (the subscriber waits forever) with the successor's reclaim taken out of
/// `Publisher::register`, when the successor registers before the waiter
/// looks (a waiter leaves the claim alone while the slot is held): a side
/// that waits [`STUCK`] rounds fails the model rather than spin forever.
#[test]
fn a_dead_exclusive_publishers_claim_is_reclaimed_once() {
    model(|| {
        let (log, sub) = sole_stalling_log();
        let mut dead = log.publisher().expect("pub");
        let claim = dead.try_claim(16).expect("room");
        assert_eq!(claim.sequence(), 0);
        // Dies holding the claim: no commit, no skip, the lock goes.
        core::mem::forget(claim);
        dead.crash_for_test();
        let waiter = {
            let log = log.clone();
            thread::spawn(move || {
                log.reclaim_for_test(0);
            })
        };
        let reader = spawn_counting_reader(sub, 3);
        let mut p = log.publisher().expect("the dead publisher's slot");
        send_numbered(&mut p, 1..3);
        waiter.join().expect("waiter");
        let (read, missed) = reader.join().expect("reader");
        assert_eq!(read, vec![1, 2]);
        assert_eq!(missed, 1);
    });
}

/// Two threads create-or-open the same topic at once (and a third name
/// hashing anywhere): exactly one creates it, both get the same record,
/// one log is made for it.
#[test]
fn directory_create_or_open_race() {
    model(|| {
        let dir = std::sync::Arc::new(directory::heap(4));
        let cfg = RingConfig::Broadcast(config(Policy::Backpressure, 2));
        let spawn = |dir: std::sync::Arc<directory::HeapDirectory>| {
            thread::spawn(move || {
                dir.create_or_open("market_data", &cfg)
                    .expect("create or open")
            })
        };
        let ta = spawn(dir.clone());
        let c = dir
            .create_or_open("market_data", &cfg)
            .expect("create or open");
        let a = ta.join().expect("a");
        assert!(a.1 ^ c.1, "exactly one creator");
        assert_eq!(a.0, c.0);
        assert_eq!(dir.rings_created(), 1);
        assert_eq!(dir.list().len(), 1);
    });
}

/// A channel is removed while another thread creates it: the creator either
/// opens the old ring (before the removal) or makes a new one in the same
/// entry at the next epoch (after it), never a second entry.
#[test]
fn directory_remove_and_create_race() {
    model(|| {
        let dir = std::sync::Arc::new(directory::heap(4));
        let cfg = RingConfig::Spsc(SpscConfig::with_capacity(64));
        let (old, _) = dir.create_or_open("orders", &cfg).expect("create");
        let remover = {
            let dir = dir.clone();
            thread::spawn(move || dir.remove("orders", RingKind::Spsc).expect("remove"))
        };
        let (mine, created) = dir.create_or_open("orders", &cfg).expect("create or open");
        assert_eq!(remover.join().expect("remover"), old);
        assert_eq!(mine.entry, old.entry);
        if created {
            assert_eq!(mine.epoch, old.epoch + 1);
            assert_eq!(dir.list(), vec![mine]);
        } else {
            assert_eq!(mine, old);
            assert!(dir.list().is_empty());
        }
        assert_eq!(dir.rings_created(), 1 + u32::from(created));
    });
}

/// Two threads create a removed channel again at once: exactly one makes
/// the new ring, in the removed channel's entry, and both get it.
#[test]
fn directory_create_again_race() {
    model(|| {
        let dir = std::sync::Arc::new(directory::heap(4));
        let cfg = RingConfig::Spsc(SpscConfig::with_capacity(64));
        let (old, _) = dir.create_or_open("orders", &cfg).expect("create");
        dir.remove("orders", RingKind::Spsc).expect("remove");
        let other = {
            let dir = dir.clone();
            thread::spawn(move || dir.create_or_open("orders", &cfg).expect("create or open"))
        };
        let mine = dir.create_or_open("orders", &cfg).expect("create or open");
        let theirs = other.join().expect("other");
        assert!(mine.1 ^ theirs.1, "exactly one creator");
        assert_eq!(mine.0, theirs.0);
        assert_eq!(mine.0.entry, old.entry);
        assert!(mine.0.epoch > old.epoch);
        assert_eq!(dir.rings_created(), 2);
        assert_eq!(dir.list(), vec![mine.0]);
    });
}

/// A log whose claims time out almost at once (the loom clock moves 1 µs
/// per reading), so stalls are reclaimed within a model.
/// A two-slot `Backpressure` log for one publisher whose claims time out
/// at once (`stalling_config`), shared with a waiter thread, and its
/// subscriber.
fn sole_stalling_log() -> (std::sync::Arc<broadcast::HeapLog>, Subscriber) {
    let log = std::sync::Arc::new(
        broadcast::heap(BroadcastConfig {
            max_publishers: 1,
            ..stalling_config(Policy::Backpressure, 2)
        })
        .expect("config"),
    );
    let sub = log.subscriber(StartAt::Tail).expect("sub");
    (log, sub)
}

/// Spawns a subscriber that copies records out until `total` sequences
/// are accounted for (read or missed), checking each intact; it fails the
/// model after finding nothing [`STUCK`] times. Returns the numbers of the
/// records it read, in order, and how many it missed.
fn spawn_counting_reader(
    mut sub: Subscriber,
    total: u64,
) -> loom::thread::JoinHandle<(Vec<u8>, u64)> {
    thread::spawn(move || {
        let mut buf = [0u8; 16];
        let mut read = Vec::new();
        let mut empty = 0;
        while read.len() as u64 + sub.missed() < total {
            match sub.try_recv(&mut buf) {
                Ok((ty, _)) => {
                    let n = (ty % 16) as u8;
                    assert_eq!(buf, record(0, n).1, "torn or mismatched record");
                    read.push(n);
                }
                Err(RecvError::Empty) => {
                    empty += 1;
                    assert!(empty < STUCK, "a sequence is never passed");
                    thread::yield_now();
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        (read, sub.missed())
    })
}

/// Sends publisher 0's records `ns` with `try_send`, checking each gets
/// its number as its sequence, yielding while the log is full (the model
/// fails after [`STUCK`] refusals in a row).
fn send_numbered(p: &mut Publisher, ns: std::ops::Range<u8>) {
    for n in ns {
        let (ty, payload) = record(0, n);
        let mut full = 0;
        loop {
            match p.try_send(ty, &payload) {
                Ok(seq) => {
                    assert_eq!(seq, u64::from(n));
                    break;
                }
                Err(ClaimError::Full) => {
                    full += 1;
                    assert!(full < STUCK, "the log stays full");
                    thread::yield_now();
                }
                Err(e) => panic!("claim failed: {e:?}"),
            }
        }
    }
}

/// Rounds a model's thread may wait for another before the model fails as
/// stuck: far more than any interleaving that makes progress needs.
const STUCK: u32 = 1_000;

fn stalling_config(policy: Policy, slots: u32) -> BroadcastConfig {
    BroadcastConfig {
        reclaim_after: Duration::from_nanos(1),
        ..config(policy, slots)
    }
}

/// A publisher stalls holding seq 0 while a waiter (a thread standing for
/// a subscriber whose claim timeout passed) reclaims it and a second
/// publisher laps the two-slot log. The stalled commit either lands before
/// the reclaim or fails with `Reclaimed`; the slot it held is never
/// rewritten while the stalled claimer may still write there (the access
/// tracker sees every payload write up to the commit, so a second writer
/// in the slot is a causality error); what the log holds at the end is
/// intact and the second publisher's. No subscriber gates the publishers,
/// so the second one meets the stalled claim a lap later whatever the
/// interleaving. Fails with a commit that stores its stamp instead of
/// compare-and-swapping it.
#[test]
fn stalled_claim_is_reclaimed_and_its_late_commit_fails() {
    model(|| {
        let log = std::sync::Arc::new(
            broadcast::heap(stalling_config(Policy::Backpressure, 2)).expect("config"),
        );
        // This thread is the stalled publisher: it holds seq 0 from the start.
        let mut slow = log.publisher().expect("pub");
        let mut fast = log.publisher().expect("pub");
        let mut claim = slow.try_claim(16).expect("room");
        assert_eq!(claim.sequence(), 0);
        let waiter = {
            let log = log.clone();
            thread::spawn(move || log.reclaim_for_test(0))
        };
        let lapping = thread::spawn(move || {
            for n in 0..2 {
                let (ty, payload) = record(1, n);
                fast.try_send(ty, &payload).expect("no subscriber gates");
            }
        });
        let (ty, payload) = record(0, 0);
        claim.copy_from_slice(&payload);
        claim.set_record_type(ty);
        let result = claim.commit();
        waiter.join().expect("waiter");
        lapping.join().expect("fast");
        assert!(
            matches!(result, Ok(0) | Err(ClaimError::Reclaimed { sequence: 0 })),
            "{result:?}"
        );
        // The log keeps its last two sequences: the fast publisher's last
        // record, intact, and before it either its first or a skip.
        let mut sub = log.subscriber(StartAt::Oldest).expect("sub");
        let mut buf = [0u8; 16];
        let mut seen = Vec::new();
        loop {
            match sub.try_recv(&mut buf) {
                Ok((ty, _)) => {
                    let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                    assert_eq!(buf, record(p, n).1, "torn or mismatched record");
                    seen.push((p, n));
                }
                Err(RecvError::Empty) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(seen.last(), Some(&(1, 1)), "the last record is intact");
    });
}

/// A publisher's claim (the compare-and-swap of the tail, then its look at
/// the slot) races a waiter reclaiming that sequence and a second publisher
/// lapping the two-slot log. Whether or not the claimer sees the reclaim
/// before it writes, the lapping publisher, which claimed after it through
/// the tail, sees its announcement and gives the slot up as a skip rather
/// than write there too. So the slot never has two writers at once (the
/// access tracker sees every payload write up to the commit), and what the
/// log holds at the end is intact. Fails (a causality error) with the
/// announcement (`claimed`) stored after the compare-and-swap of the tail
/// instead of before it.
#[test]
fn a_claim_racing_its_reclaim_and_a_lapping_publisher_has_one_writer() {
    model(|| {
        let log = std::sync::Arc::new(
            broadcast::heap(stalling_config(Policy::Backpressure, 2)).expect("config"),
        );
        let mut claimer = log.publisher().expect("pub");
        let mut lapping = log.publisher().expect("pub");
        let waiter = {
            let log = log.clone();
            thread::spawn(move || {
                log.reclaim_for_test(0);
            })
        };
        let lapper = thread::spawn(move || {
            (0..2)
                .map(|n| {
                    let (ty, payload) = record(1, n);
                    lapping.try_send(ty, &payload)
                })
                .collect::<Vec<_>>()
        });
        let (ty, payload) = record(0, 0);
        let result = claimer.try_send(ty, &payload);
        waiter.join().expect("waiter");
        let lapped = lapper.join().expect("lapper");
        // No subscriber gates, so no send finds the log full. With a 1 ns
        // claim timeout any claim may be reclaimed by whoever waits on it
        // (and its late commit fails); nothing else goes wrong.
        for r in lapped.iter().chain([&result]) {
            assert!(
                matches!(r, Ok(_) | Err(ClaimError::Reclaimed { .. })),
                "{r:?}"
            );
        }
        let mut sub = log.subscriber(StartAt::Oldest).expect("sub");
        let mut buf = [0u8; 16];
        loop {
            match sub.try_recv(&mut buf) {
                Ok((ty, _)) => {
                    let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                    assert_eq!(buf, record(p, n).1, "torn or mismatched record");
                }
                Err(RecvError::Empty) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    });
}

/// A publisher dies holding an uncommitted claim while the only subscriber
/// sleeps on the futex: nobody will wake it for that claim, so it must
/// sleep no longer than the claim has left, reclaim it, and read the next
/// record (loom reports a deadlock if it sleeps past it).
#[test]
fn a_sleeping_subscriber_reclaims_a_dead_claim() {
    model(|| {
        let log = broadcast::heap(stalling_config(Policy::Backpressure, 2)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut dead = log.publisher().expect("pub");
        std::mem::forget(dead.try_claim(8).expect("room"));
        dead.crash_for_test();
        let p = log.publisher().expect("pub");
        let t = thread::spawn(move || publish_all(p, 1, 1));
        let rec = sub
            .read_blocking(WaitStrategy::Blocking {
                spins: 0,
                yields: 0,
            })
            .expect("a record");
        assert_eq!((rec.sequence(), &rec[..]), (1, &record(1, 0).1[..]));
        drop(rec);
        assert_eq!(sub.missed(), 1);
        t.join().expect("pub");
    });
}

/// The dead-subscriber reaper races a new registration into the slot the
/// dead one held: it may free the dead registration, never the live one.
#[test]
fn reaping_races_a_registration() {
    model(|| {
        let log = std::sync::Arc::new(
            broadcast::heap(BroadcastConfig {
                max_subscribers: 1,
                ..config(Policy::Backpressure, 2)
            })
            .expect("config"),
        );
        log.subscriber(StartAt::Tail).expect("sub").crash_for_test();
        let reaper = {
            let log = log.clone();
            thread::spawn(move || log.reap_for_test())
        };
        let fresh = log
            .subscriber(StartAt::Tail)
            .expect("the dead slot is taken over");
        let reaped = reaper.join().expect("reaper");
        assert!(reaped <= 1);
        assert_eq!(
            log.subscriber_state_for_test(fresh.slot_for_test()),
            shmbus::layout::participant::LIVE,
            "the live subscriber's slot was freed"
        );
        drop(fresh);
    });
}
