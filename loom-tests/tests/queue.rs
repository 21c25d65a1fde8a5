//! Loom models of the work queue (`shmbus::ring::queue`): the production
//! code over heap memory, with two or four record slots, and records sent
//! through first where needed, so that every model wraps.
//!
//! What loom checks here: stamps, header words, the tail, the head, the
//! participant slots and the liveness locks are loom atomics, so claiming,
//! committing, taking, acknowledging, giving back and reclaiming are fully
//! modelled; every payload access is checked for causality (see
//! `AccessTracker`), so two participants inside one slot at once fail the
//! model, and every record delivered is checked byte for byte.
//!
//! Run: `RUSTFLAGS="--cfg shmbus_loom" cargo test -p loom-tests --release --test queue`
//! (two preemptions: about six minutes on two cores, four of them the
//! two-producer two-consumer model's and one the dying consumer's;
//! `LOOM_QUEUE_PREEMPTIONS=1` for a quick pass of about 15 seconds, and
//! `LOOM_QUEUE_SECOND_TAKES=2` for the two-producer two-consumer model's
//! second consumer taking twice, a search several times longer).
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

/// Sends `count` records of producer `p` in batches: a batch claim (one
/// move of the tail for as many free slots as there are), each record
/// staged, one flush.
fn produce_batches(mut producer: Producer, p: u8, count: u8) {
    let mut n = 0;
    while n < count {
        let claimed = match producer.try_claim_batch(usize::from(count - n)) {
            Ok(claimed) => claimed,
            Err(ClaimError::Full) => {
                thread::yield_now();
                continue;
            }
            Err(e) => panic!("batch claim failed: {e:?}"),
        };
        for _ in 0..claimed {
            let (ty, payload) = record(p, n);
            let mut claim = producer
                .try_claim(payload.len())
                .expect("a claimed sequence");
            claim.copy_from_slice(&payload);
            claim.set_record_type(ty);
            match claim.stage() {
                Ok(_) => n += 1,
                // Reclaimed: nothing was delivered; sent again next batch.
                Err(ClaimError::Reclaimed { .. }) => {}
                Err(e) => panic!("stage failed: {e:?}"),
            }
        }
        producer.flush();
    }
}

/// As [`consume`], with batch takes of up to `max` records.
fn consume_batches(
    mut c: Consumer,
    max: usize,
    done: Arc<AtomicUsize>,
    total: usize,
) -> Vec<(u16, bool)> {
    let mut got = Vec::new();
    while done.load(Ordering::SeqCst) < total {
        let n = c
            .take_batch(max, |rec| {
                let ty = rec.record_type();
                let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                assert_eq!(&rec[..], &record(p, n).1[..], "torn or mismatched record");
                got.push((ty, rec.redelivered()));
            })
            .unwrap_or_else(|e| panic!("batch take failed: {e:?}"));
        if n == 0 {
            thread::yield_now();
        }
        done.fetch_add(n, Ordering::SeqCst);
    }
    got
}

/// The types of `got`, sorted.
fn types(got: &[(u16, bool)]) -> Vec<u16> {
    let mut types: Vec<u16> = got.iter().map(|(t, _)| *t).collect();
    types.sort_unstable();
    types
}

/// Loom with a branch budget that fits the spin-and-yield loops of four
/// threads. The queue's models are the largest of the suite, so they run
/// with `LOOM_QUEUE_PREEMPTIONS` preemptions (default 2, as SPEC asks),
/// not the suite's `LOOM_MAX_PREEMPTIONS`: at 2 the two-producer
/// two-consumer model alone takes about four minutes on two cores, at 3
/// far longer.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    builder.preemption_bound = Some(env_count("LOOM_QUEUE_PREEMPTIONS", 2));
    builder.check(f);
}

/// A count from the environment, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
        // The second consumer makes `LOOM_QUEUE_SECOND_TAKES` attempts
        // (default 1: a second one makes the search three times longer at
        // one preemption, about 50 s, and too long for the default run at
        // two); the first drains the rest.
        let attempts = env_count("LOOM_QUEUE_SECOND_TAKES", 1);
        let d = done.clone();
        let t2 = thread::spawn(move || {
            let mut c1 = c1;
            let mut got = Vec::new();
            for _ in 0..attempts {
                if let Ok(rec) = c1.try_take() {
                    let ty = rec.record_type();
                    let (p, n) = ((ty / 16) as u8, (ty % 16) as u8);
                    assert_eq!(&rec[..], &record(p, n).1[..], "torn or mismatched record");
                    got.push((ty, rec.redelivered()));
                    rec.ack().expect("ack");
                    d.fetch_add(1, Ordering::SeqCst);
                }
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

/// A consumer dies in the middle of a batch while a live consumer drains
/// and a newcomer registers, all at once: the dying one takes a run of up
/// to two records, acknowledges the first and dies holding the other
/// (its liveness lock dropped). The held record is given back (by the
/// reap or by the registration that takes its slot) and delivered again
/// flagged redelivered; nothing is lost, and nothing else is delivered
/// twice.
#[test]
fn a_consumer_dying_between_take_and_ack_is_redelivered() {
    model(|| {
        let q = Arc::new(queue::heap(config(2)).expect("config"));
        let mut p = q.producer().expect("producer");
        for n in 0..2 {
            let (ty, payload) = record(0, n);
            p.try_send(ty, &payload).expect("room");
        }
        let doomed = q.consumer().expect("consumer");
        let live = q.consumer().expect("consumer");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let dying = thread::spawn(move || {
            let taken = doomed.crash_mid_batch_for_test(2, 1);
            if !taken.is_empty() {
                d.fetch_add(1, Ordering::SeqCst);
            }
            taken
        });
        let d = done.clone();
        let drain = thread::spawn(move || consume(live, d, 2));
        let q2 = q.clone();
        let newcomer = thread::spawn(move || {
            let c = q2.consumer().expect("a slot");
            drop(c);
        });
        let taken = dying.join().expect("dying");
        q.reap_for_test();
        newcomer.join().expect("newcomer");
        let got = drain.join().expect("drain");
        // Sequence n carries record n.
        let mut types: Vec<u16> = got.iter().map(|(t, _)| *t).collect();
        types.extend(taken.first().map(|&seq| seq as u16));
        types.sort_unstable();
        assert_eq!(types, vec![0, 1], "both records acknowledged, once each");
        let held: Vec<u16> = taken.iter().skip(1).map(|&seq| seq as u16).collect();
        assert!(
            got.iter().all(|&(t, r)| r == held.contains(&t)),
            "exactly the held records come back flagged: {got:?}, held {held:?}"
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
            .take_blocking(WaitStrategy::Blocking {
                spins: 0,
                yields: 0,
            })
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

/// A producer claims two sequences with one move of the tail, stages its
/// records and flushes, while another producer claims one; the consumer
/// takes in batches (a run, one move of the head). Three records went
/// through first, so a batch of the four-slot queue wraps into slot 0's
/// next lap, and the batch races the single claim for the tail. Each
/// record is delivered exactly once, intact, each producer's in order.
#[test]
fn batch_claims_beside_a_single_claim_deliver_each_record_once() {
    model(|| {
        let q = queue::heap(config(4)).expect("config");
        let done = Arc::new(AtomicUsize::new(0));
        let mut p0 = q.producer().expect("producer");
        let p1 = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        for _ in 0..3 {
            p0.try_send(0, &[0; 8]).expect("room");
            c.try_take().expect("a record").ack().expect("ack");
        }
        let t0 = thread::spawn(move || produce_batches(p0, 0, 2));
        let t1 = thread::spawn(move || produce(p1, 1, 1));
        let got = consume_batches(c, 2, done, 3);
        t0.join().expect("p0");
        t1.join().expect("p1");
        assert_eq!(types(&got), vec![0, 1, 16], "each record exactly once");
        let mine: Vec<u16> = got
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| t / 16 == 0)
            .collect();
        assert_eq!(mine, vec![0, 1], "a producer's records in order");
        assert!(got.iter().all(|(_, redelivered)| !redelivered));
    });
}

/// Two consumers take runs of records at once (each run taken before it
/// is handled, the head moved once per run; a consumer that finds the
/// head stale passes records the other took): each record is delivered
/// exactly once. The second consumer makes one batch take (a spinning one
/// would only multiply the schedules); the first drains the rest.
#[test]
fn runs_taken_by_two_consumers_deliver_each_record_once() {
    model(|| {
        let q = queue::heap(config(4)).expect("config");
        let mut p = q.producer().expect("producer");
        for n in 0..3 {
            let (ty, payload) = record(0, n);
            p.try_send(ty, &payload).expect("room");
        }
        let done = Arc::new(AtomicUsize::new(0));
        let c0 = q.consumer().expect("consumer");
        let mut c1 = q.consumer().expect("consumer");
        let d = done.clone();
        let t1 = thread::spawn(move || {
            let mut got = Vec::new();
            let n = c1
                .take_batch(2, |rec| {
                    let ty = rec.record_type();
                    assert_eq!(&rec[..], &record(0, ty as u8).1[..], "torn record");
                    got.push((ty, rec.redelivered()));
                })
                .expect("batch take");
            d.fetch_add(n, Ordering::SeqCst);
            got
        });
        let mut got = consume_batches(c0, 2, done, 3);
        got.extend(t1.join().expect("c1"));
        assert_eq!(types(&got), vec![0, 1, 2], "each record exactly once");
        assert!(got.iter().all(|(_, redelivered)| !redelivered));
    });
}

/// A consumer asleep on the futex is always woken by a flush after a
/// staged record (committed without the wake-up check): loom reports a
/// deadlock otherwise.
#[test]
fn a_sleeping_consumer_is_woken_by_a_flush() {
    model(|| {
        let q = queue::heap(config(2)).expect("config");
        let mut p = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        let t = thread::spawn(move || {
            assert_eq!(p.try_claim_batch(1), Ok(1));
            let (ty, payload) = record(0, 0);
            let mut claim = p.try_claim(payload.len()).expect("claimed");
            claim.copy_from_slice(&payload);
            claim.set_record_type(ty);
            claim.stage().expect("staged");
            p.flush();
        });
        let rec = c
            .take_blocking(WaitStrategy::Blocking {
                spins: 0,
                yields: 0,
            })
            .expect("a record");
        assert_eq!(&rec[..], &record(0, 0).1[..]);
        rec.ack().expect("ack");
        t.join().expect("producer");
    });
}
