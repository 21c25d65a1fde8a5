//! Loom models of the work queue (`shmbus::ring::queue`): the production
//! code over heap memory, with two record slots so every model wraps.
//!
//! What loom checks here: stamps, header words, the tail, the head, the
//! participant slots and the liveness locks are loom atomics, so claiming,
//! committing, taking, acknowledging, giving back and reclaiming are fully
//! modelled; every payload access is checked for causality (see
//! `AccessTracker`), so two participants inside one slot at once fail the
//! model, and every record delivered is checked byte for byte.
//!
//! Run: `RUSTFLAGS="--cfg shmbus_loom" cargo test -p loom-tests --release --test queue`
//! (`LOOM_QUEUE_PREEMPTIONS=2` for a deeper, much longer search).
#![cfg(shmbus_loom)]

use std::sync::Arc;
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use shmbus::ring::queue::{self, ClaimError, Consumer, Producer, QueueConfig, RecvError};
use shmbus::wait::WaitStrategy;

fn config(slots: u32) -> QueueConfig {
    QueueConfig {
        slots,
        max_payload: 8,
        max_producers: 2,
        max_consumers: 3,
        reclaim_after: Duration::from_secs(1),
    }
}

/// Record `n` of producer `p`: type `p * 16 + n`, a payload naming both.
fn record(p: u8, n: u8) -> (u16, [u8; 8]) {
    (
        u16::from(p) * 16 + u16::from(n),
        [p, n, p ^ n, 0xA5, !p, !n, 0x5A, p],
    )
}

fn produce(mut producer: Producer, p: u8, count: u8) {
    for n in 0..count {
        let (ty, payload) = record(p, n);
        loop {
            match producer.try_send(ty, &payload) {
                Ok(_) => break,
                Err(ClaimError::Full) => thread::yield_now(),
                // A consumer reclaimed the claim (a model's reclaim_after
                // is tiny): nothing was delivered, so send it again.
                Err(ClaimError::Reclaimed { .. }) => {}
                Err(e) => panic!("claim failed: {e:?}"),
            }
        }
    }
}

/// Takes and acknowledges records until `done` counts `total` of them
/// (shared by every consumer); returns (type, redelivered) of each, after
/// checking its payload.
fn consume(mut c: Consumer, done: Arc<AtomicUsize>, total: usize) -> Vec<(u16, bool)> {
    let mut got = Vec::new();
    while done.load(Ordering::SeqCst) < total {
        match c.try_take() {
            Ok(rec) => {
                let ty = rec.record_type();
                let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                assert_eq!(&rec[..], &record(p, n).1[..], "torn or mismatched record");
                got.push((ty, rec.redelivered()));
                rec.ack().expect("ack");
                done.fetch_add(1, Ordering::SeqCst);
            }
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("take failed: {e:?}"),
        }
    }
    got
}

/// Loom with a branch budget that fits the spin-and-yield loops of four
/// threads. The queue's models are the largest of the suite, so they run
/// with `LOOM_QUEUE_PREEMPTIONS` preemptions (default 1), not the suite's
/// `LOOM_MAX_PREEMPTIONS`: at 2 they take minutes each on two cores.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    let bound = std::env::var("LOOM_QUEUE_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    builder.preemption_bound = Some(bound);
    builder.check(f);
}

/// Two producers and two consumers on two slots, one record each, after
/// a record that went through already: the second record wraps into slot
/// 0 at the next lap. Each record is delivered exactly once, intact.
#[test]
fn two_producers_two_consumers_with_a_wrap() {
    model(|| {
        let q = queue::heap(config(2)).expect("config");
        let done = Arc::new(AtomicUsize::new(0));
        let mut p0 = q.producer().expect("producer");
        let p1 = q.producer().expect("producer");
        let mut c0 = q.consumer().expect("consumer");
        let c1 = q.consumer().expect("consumer");
        // Sequence 0 goes through first: the two records below are 1 and
        // 2, and 2 is slot 0's second lap.
        p0.try_send(0, &[0; 8]).expect("room");
        c0.try_take().expect("record 0").ack().expect("ack");
        let t0 = thread::spawn(move || produce(p0, 0, 1));
        let t1 = thread::spawn(move || produce(p1, 1, 1));
        // The second consumer makes one attempt (a spinning one would only
        // multiply the schedules); the first drains the rest.
        let d = done.clone();
        let t2 = thread::spawn(move || {
            let mut c1 = c1;
            let mut got = Vec::new();
            if let Ok(rec) = c1.try_take() {
                let ty = rec.record_type();
                let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                assert_eq!(&rec[..], &record(p, n).1[..], "torn or mismatched record");
                got.push((ty, rec.redelivered()));
                rec.ack().expect("ack");
                d.fetch_add(1, Ordering::SeqCst);
            }
            got
        });
        let mut got = consume(c0, done, 2);
        t0.join().expect("p0");
        t1.join().expect("p1");
        got.extend(t2.join().expect("c1"));
        let mut types: Vec<u16> = got.iter().map(|(t, _)| *t).collect();
        types.sort_unstable();
        assert_eq!(types, vec![0, 16], "each record exactly once");
        assert!(got.iter().all(|(_, redelivered)| !redelivered));
    });
}

/// A consumer dies between take and ack while a live consumer drains and
/// a newcomer registers: the dead one's record is given back (by the reap
/// or by the registration that takes its slot) and delivered again flagged
/// redelivered; nothing is lost, and nothing else is delivered twice.
#[test]
fn a_consumer_dying_between_take_and_ack_is_redelivered() {
    model(|| {
        let q = Arc::new(queue::heap(config(2)).expect("config"));
        let mut p = q.producer().expect("producer");
        for n in 0..2 {
            let (ty, payload) = record(0, n);
            p.try_send(ty, &payload).expect("room");
        }
        let mut doomed = q.consumer().expect("consumer");
        let live = q.consumer().expect("consumer");
        let held = {
            let rec = doomed.try_take().expect("a record");
            let ty = rec.record_type();
            std::mem::forget(rec);
            ty
        };
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let drain = thread::spawn(move || consume(live, d, 2));
        doomed.crash_for_test();
        let q2 = q.clone();
        let newcomer = thread::spawn(move || {
            let c = q2.consumer().expect("a slot");
            drop(c);
        });
        q.reap_for_test();
        newcomer.join().expect("newcomer");
        let got = drain.join().expect("drain");
        let mut types: Vec<u16> = got.iter().map(|(t, _)| *t).collect();
        types.sort_unstable();
        assert_eq!(types, vec![0, 1], "both records acknowledged, once each");
        assert!(
            got.contains(&(held, true)),
            "the held record comes back flagged: {got:?}"
        );
        assert!(
            got.iter().all(|&(t, r)| r == (t == held)),
            "only the held record is flagged: {got:?}"
        );
    });
}

/// A consumer asleep on the futex is always woken by a commit (loom
/// reports a deadlock otherwise). Fails with the producer's SeqCst fence in
/// `wake_sleepers` taken out.
#[test]
fn a_sleeping_consumer_is_always_woken() {
    model(|| {
        let q = queue::heap(config(2)).expect("config");
        let p = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        let t = thread::spawn(move || produce(p, 0, 1));
        let rec = c
            .take_blocking(WaitStrategy::Blocking { spins: 0 })
            .expect("a record");
        assert_eq!(&rec[..], &record(0, 0).1[..]);
        rec.ack().expect("ack");
        t.join().expect("producer");
    });
}

/// A producer stalls holding sequence 0 while a consumer, whose
/// `reclaim_after` passes, reclaims it, and a second producer laps the
/// two-slot queue. The stalled commit either lands first or fails with
/// `Reclaimed`; the slot it held is never written by the second producer
/// while the stalled one may still write there (the access tracker sees
/// every payload write up to the commit); every record delivered is
/// intact. (With the suspect check, `owner_inside`, left out, this model
/// still passes at one preemption: the schedule that catches it needs more.)
#[test]
fn a_stalled_claim_is_reclaimed_and_its_slot_not_reused_under_it() {
    model(|| {
        let q = queue::heap(QueueConfig {
            reclaim_after: Duration::from_nanos(1),
            ..config(2)
        })
        .expect("config");
        let mut slow = q.producer().expect("producer");
        let fast = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        let mut claim = slow.try_claim(8).expect("room");
        assert_eq!(claim.sequence(), 0);
        let lapping = thread::spawn(move || produce(fast, 1, 2));
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            while got.iter().filter(|&&ty| ty / 16 == 1).count() < 2 {
                match c.try_take() {
                    Ok(rec) => {
                        let ty = rec.record_type();
                        let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                        assert_eq!(&rec[..], &record(p, n).1[..], "torn or mismatched");
                        got.push(ty);
                        rec.ack().expect("ack");
                    }
                    Err(RecvError::Empty) => thread::yield_now(),
                    Err(e) => panic!("take failed: {e:?}"),
                }
            }
            got
        });
        let (ty, payload) = record(0, 0);
        claim.copy_from_slice(&payload);
        claim.set_record_type(ty);
        let result = claim.commit();
        lapping.join().expect("fast");
        let got = consumer.join().expect("consumer");
        match result {
            Ok(0) => assert!(got.contains(&0), "a committed record is delivered: {got:?}"),
            Err(ClaimError::Reclaimed { sequence: 0 }) => assert!(!got.contains(&0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            got.iter()
                .filter(|&&t| t / 16 == 1)
                .copied()
                .collect::<Vec<_>>(),
            vec![16, 17],
            "the fast producer's records, in order"
        );
    });
}
