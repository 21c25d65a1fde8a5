use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::*;
use crate::layout::queue_stamp;
use crate::sync::Ordering;
use crate::wait::WaitStrategy;

fn config(slots: u32) -> QueueConfig {
    QueueConfig {
        slots,
        max_payload: 32,
        max_producers: 4,
        max_consumers: 4,
        reclaim_after: Duration::from_millis(50),
    }
}

const STRATEGIES: [WaitStrategy; 4] = [
    WaitStrategy::BusySpin,
    WaitStrategy::Yield,
    WaitStrategy::BACKOFF,
    WaitStrategy::BLOCKING,
];

#[test]
fn records_go_out_in_order_once_each_and_a_full_queue_refuses() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut a = q.consumer().expect("consumer");
    let mut b = q.consumer().expect("consumer");
    for i in 0..4u8 {
        assert_eq!(p.try_send(u16::from(i), &[i; 3]), Ok(u64::from(i)));
    }
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    let r0 = a.try_take().expect("record 0");
    assert_eq!(
        (r0.sequence(), r0.record_type(), &r0[..]),
        (0, 0, &[0u8; 3][..])
    );
    // Taken but not acknowledged: its slot is not free yet.
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    let mut buf = [0u8; 8];
    assert_eq!(b.try_recv(&mut buf), Ok((1, 3)), "b gets record 1, not 0");
    r0.ack().expect("ack");
    assert_eq!(p.try_send(4, b"four"), Ok(4), "record 0's slot is free");
    assert_eq!(p.try_send(5, b"five"), Ok(5), "record 1's slot is free");
    let mut seen = Vec::new();
    while let Ok((t, n)) = a.try_recv(&mut buf) {
        seen.push((t, buf[..n].to_vec()));
    }
    assert_eq!(
        seen,
        vec![
            (2, vec![2; 3]),
            (3, vec![3; 3]),
            (4, b"four".to_vec()),
            (5, b"five".to_vec())
        ]
    );
    assert_eq!(b.try_take().err(), Some(RecvError::Empty));
    assert_eq!((a.taken(), a.acked(), b.taken()), (5, 5, 1));
}

#[test]
fn a_record_too_long_for_the_buffer_stays_for_a_consumer_with_room() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut small = q.consumer().expect("consumer");
    let mut big = q.consumer().expect("consumer");
    p.try_send(1, &[7; 20]).expect("room");
    let mut buf = [0u8; 8];
    assert_eq!(
        small.try_recv(&mut buf),
        Err(RecvError::BufferTooSmall { needed: 20 })
    );
    let mut buf = [0u8; 32];
    assert_eq!(big.try_recv(&mut buf), Ok((1, 20)));
    assert_eq!(big.redelivered(), 0, "it was never taken before");
    assert_eq!(
        p.try_claim(33).err(),
        Some(ClaimError::TooLarge { len: 33, max: 32 })
    );
}

#[test]
fn a_dropped_or_given_back_record_is_redelivered_to_another_consumer() {
    let q = heap(config(8)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut a = q.consumer().expect("consumer");
    let mut b = q.consumer().expect("consumer");
    p.try_send(1, b"order-1").expect("room");
    p.try_send(2, b"order-2").expect("room");
    {
        let r = a.try_take().expect("record");
        assert!(!r.redelivered());
        // Dropped without ack: given back (a handler that fails loses nothing).
    }
    a.try_take()
        .expect("record 1")
        .give_back()
        .expect("give back");
    let mut got = Vec::new();
    let mut buf = [0u8; 32];
    while let Ok(r) = b.try_take() {
        got.push((r.sequence(), r.redelivered()));
        r.ack().expect("ack");
    }
    assert_eq!(got, vec![(0, true), (1, false)]);
    assert_eq!(b.redelivered(), 1);
    assert_eq!(q.counters().redelivered, 2, "both give-backs counted");
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
}

/// A consumer killed holding records loses none and blocks nothing: a
/// reap gives them back, flagged, to a live consumer; the dead slot is
/// freed for a newcomer.
#[test]
fn a_dead_consumers_records_are_given_back() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut doomed = q.consumer().expect("consumer");
    let mut live = q.consumer().expect("consumer");
    for i in 0..4u8 {
        p.try_send(0, &[i]).expect("room");
    }
    let slot = doomed.slot_for_test();
    // Take two and die holding them (leaks the borrows, as a kill does).
    std::mem::forget(doomed.try_take().expect("take"));
    std::mem::forget(doomed.try_take().expect("take"));
    doomed.crash_for_test();
    let mut buf = [0u8; 8];
    assert_eq!(live.try_recv(&mut buf), Ok((0, 1)), "record 2");
    assert_eq!(live.try_recv(&mut buf), Ok((0, 1)), "record 3");
    assert_eq!(live.try_take().err(), Some(RecvError::Empty));
    assert_eq!(
        p.try_claim(1).err(),
        Some(ClaimError::Full),
        "0 and 1 are held"
    );
    assert_eq!(q.reap_for_test(), 1);
    assert_eq!(
        q.consumer_state_for_test(slot),
        crate::layout::participant::FREE
    );
    let mut again = Vec::new();
    while let Ok(r) = live.try_take() {
        again.push((r.sequence(), r.redelivered(), r[0]));
        r.ack().expect("ack");
    }
    again.sort_unstable();
    assert_eq!(again, vec![(0, true, 0), (1, true, 1)]);
    let n = q.counters();
    assert_eq!(
        (n.redelivered, n.reclaimed_claims, n.reaped_consumers),
        (2, 0, 1)
    );
    assert!(p.try_send(0, b"x").is_ok(), "their slots are free again");
}

/// Without any explicit reap: a consumer waiting on an empty queue, with
/// every strategy, finds a dead consumer's record within a reap period.
#[test]
fn a_waiting_consumer_finds_a_dead_consumers_record_with_every_strategy() {
    for wait in STRATEGIES {
        let q = heap(config(4)).expect("config");
        let mut p = q.producer().expect("producer");
        let mut doomed = q.consumer().expect("consumer");
        let mut live = q.consumer().expect("consumer");
        p.try_send(9, b"held").expect("room");
        std::mem::forget(doomed.try_take().expect("take"));
        doomed.crash_for_test();
        let t = Instant::now();
        let r = live
            .take_timeout(wait, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        assert!(r.redelivered() && &r[..] == b"held", "{wait:?}");
        r.ack().expect("ack");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{wait:?}: {:?}",
            t.elapsed()
        );
    }
}

/// A producer that dies (or stalls) between claim and commit holds the
/// consumers up for `reclaim_after`, then its claim is one counted skip
/// and the queue flows; with every strategy.
#[test]
fn a_dead_claim_is_reclaimed_as_one_skip_with_every_strategy() {
    for wait in STRATEGIES {
        let q = heap(config(4)).expect("config");
        let mut doomed = q.producer().expect("producer");
        let mut p = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        std::mem::forget(doomed.try_claim(4).expect("claim"));
        doomed.crash_for_test();
        p.try_send(1, b"after").expect("room");
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let got = c.recv_timeout(&mut buf, wait, Duration::from_secs(5));
        let took = t.elapsed();
        assert_eq!(got, Ok((1, 5)), "{wait:?}");
        assert!(
            took >= Duration::from_millis(50),
            "{wait:?} reclaimed early: {took:?}"
        );
        // reclaim_after plus one wait round (a sleep is at most 20 ms),
        // with room for a loaded machine; not 64 rounds of sleeps.
        assert!(
            took < Duration::from_millis(300),
            "{wait:?} reclaimed late: {took:?}"
        );
        assert_eq!(
            q.counters().reclaimed_claims,
            1,
            "{wait:?}: one reclaimed claim"
        );
    }
}

/// A producer that stalls past `reclaim_after` and then resumes: its
/// commit fails (nothing of it reaches anyone), and the producer that
/// reuses its slot while it still holds the claim gives that sequence up
/// instead of writing under it.
#[test]
fn a_stalled_claim_resumes_into_reclaimed_and_its_slot_is_not_reused_under_it() {
    let q = heap(config(2)).expect("config");
    let mut stalled = q.producer().expect("producer");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    let mut claim = stalled.try_claim(4).expect("claim 0");
    claim.copy_from_slice(b"late");
    // The consumer waits past reclaim_after and passes sequence 0.
    assert_eq!(
        c.take_timeout(WaitStrategy::BusySpin, Duration::from_millis(120))
            .err(),
        Some(RecvError::TimedOut)
    );
    assert_eq!(q.counters().reclaimed_claims, 1);
    p.try_send(1, b"one").expect("room"); // sequence 1, slot 1
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok((1, 3)));
    // Sequence 2 is slot 0 again, whose claimer is still inside: given up.
    p.try_send(2, b"two").expect("room");
    assert_eq!(c.try_recv(&mut buf), Ok((2, 3)));
    assert_eq!(
        c.ring.header(3).stamp.load(Ordering::Relaxed) & queue_stamp::STATE_MASK,
        queue_stamp::FREE,
        "nothing is left in slot 1"
    );
    // The stalled producer resumes: its commit fails, and says which.
    assert_eq!(claim.commit(), Err(ClaimError::Reclaimed { sequence: 0 }));
    assert_eq!(stalled.reclaimed(), 1);
    // Its claim is over: the slot is used normally again.
    p.try_send(3, b"three").expect("room");
    p.try_send(4, b"four").expect("room");
    let mut seqs = Vec::new();
    while let Ok(r) = c.try_take() {
        seqs.push((r.record_type(), r[..].to_vec()));
        r.ack().expect("ack");
    }
    assert_eq!(seqs, vec![(3, b"three".to_vec()), (4, b"four".to_vec())]);
}

#[test]
fn a_blocking_producer_wait_says_it_cannot_sleep() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    assert_eq!(
        p.claim_blocking(1, WaitStrategy::BLOCKING).err(),
        Some(ClaimError::CannotSleep)
    );
    assert_eq!(
        p.send_timeout(1, b"x", WaitStrategy::BLOCKING, Duration::from_millis(1)),
        Err(ClaimError::CannotSleep)
    );
    assert_eq!(p.send_blocking(1, b"y", WaitStrategy::BACKOFF), Ok(0));
}

/// Consumers asleep on the futex are woken by a commit from another
/// thread (no lost wake-up), and a full queue's producer waits for an
/// acknowledgement.
#[test]
fn sleeping_consumers_wake_and_a_full_producer_waits() {
    let q = std::sync::Arc::new(heap(config(2)).expect("config"));
    let mut c = q.consumer().expect("consumer");
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut p = q.producer().expect("producer");
            for i in 0..200u32 {
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                p.send_blocking(0, &i.to_le_bytes(), WaitStrategy::BACKOFF)
                    .expect("send");
            }
        })
    };
    let mut buf = [0u8; 4];
    for i in 0..200u32 {
        let (_, n) = c
            .recv_timeout(&mut buf, WaitStrategy::BLOCKING, Duration::from_secs(10))
            .expect("record");
        assert_eq!(u32::from_le_bytes(buf[..n].try_into().expect("4 bytes")), i);
    }
    producer.join().expect("producer");
}

/// 4 producer threads and 4 consumer threads: every record is delivered
/// exactly once, each producer's records in order to any one consumer.
#[test]
fn many_producers_and_consumers_deliver_each_record_once() {
    const PER_PRODUCER: u32 = 50_000;
    let q = std::sync::Arc::new(
        heap(QueueConfig {
            slots: 64,
            ..config(64)
        })
        .expect("config"),
    );
    let producers: Vec<_> = (0..4u32)
        .map(|id| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut p = q.producer().expect("producer");
                for n in 0..PER_PRODUCER {
                    let mut rec = [0u8; 8];
                    rec[..4].copy_from_slice(&id.to_le_bytes());
                    rec[4..].copy_from_slice(&n.to_le_bytes());
                    p.send_blocking(id as u16, &rec, WaitStrategy::Yield)
                        .expect("send");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut c = q.consumer().expect("consumer");
                let mut got = Vec::new();
                let mut last = [None::<u32>; 4];
                let mut buf = [0u8; 8];
                loop {
                    match c.recv_timeout(&mut buf, WaitStrategy::Yield, Duration::from_millis(500))
                    {
                        Ok((t, 8)) => {
                            let id = u32::from_le_bytes(buf[..4].try_into().expect("4"));
                            let n = u32::from_le_bytes(buf[4..].try_into().expect("4"));
                            assert_eq!(u32::from(t), id);
                            let prev = last[id as usize].replace(n);
                            assert!(
                                prev.is_none_or(|p| p < n),
                                "out of order: {prev:?} then {n}"
                            );
                            got.push((id, n));
                        }
                        Ok(other) => panic!("record of {other:?}"),
                        Err(RecvError::TimedOut) => return got,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    let mut all = HashSet::new();
    for c in consumers {
        for rec in c.join().expect("consumer") {
            assert!(all.insert(rec), "{rec:?} delivered twice");
        }
    }
    assert_eq!(all.len(), 4 * PER_PRODUCER as usize);
}

/// Hostile bytes: stamps no build writes, and a header word with an
/// impossible length, are typed errors, never a panic or a hang.
#[test]
fn corrupt_stamps_and_words_are_typed_errors() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    // A third handle's view writes the queue's memory as a stray process would.
    let spy = q.consumer().expect("consumer");
    let stamp = |seq: u64| &spy.ring.header(seq).stamp;
    // An unknown state at the head.
    stamp(0).store(0x7, Ordering::Relaxed);
    assert!(matches!(c.try_take().err(), Some(RecvError::Corrupt(_))));
    assert!(matches!(p.try_claim(1).err(), Some(ClaimError::Corrupt(_))));
    // A lap far behind the tail's.
    stamp(0).store(
        queue_stamp::pack(queue_stamp::LAP_MASK - 5, 0, queue_stamp::FREE, 0),
        Ordering::Relaxed,
    );
    assert!(matches!(c.try_take().err(), Some(RecvError::Corrupt(_))));
    assert!(matches!(p.try_claim(1).err(), Some(ClaimError::Corrupt(_))));
    // A committed record claiming more than the maximum payload: reported
    // with its sequence, and passed (the queue goes on).
    stamp(0).store(0, Ordering::Relaxed);
    p.try_send(1, b"ok").expect("room");
    spy.ring.header(0).word.store(
        crate::layout::pack_record_header(1000, 1, 0),
        Ordering::Relaxed,
    );
    match c.try_take().err() {
        Some(RecvError::Corrupt(k)) => assert_eq!(k.position, 0),
        other => panic!("{other:?}"),
    }
    p.try_send(2, b"next").expect("room");
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok((2, 4)));
}

/// Hostile bytes: a head far behind the laps the slots hold, the tail
/// past it. The take once walked the head a sequence at a time toward the
/// slots' lap (2^47 laps at worst: a hang; here 2^20, after which it said
/// `Empty`); a slot two laps or more ahead of a head nobody moved is a
/// corrupt stamp, reported at once.
#[test]
fn a_head_laps_behind_the_slots_is_corrupt_not_walked() {
    let q = heap(config(2)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    let mut buf = [0u8; 8];
    for _ in 0..2 {
        p.try_send(1, b"x").expect("room");
        c.try_recv(&mut buf).expect("record");
    }
    // Both slots are free at lap 1; the head goes back 2^20 laps.
    let head = (1u64 << 48).wrapping_sub(1 << 20) & queue_stamp::LAP_MASK;
    let head = head * 2;
    let ctl = c.ring.control();
    ctl.head.store(head, Ordering::Relaxed);
    ctl.tail
        .store(crate::layout::MAX_SEQUENCE, Ordering::Relaxed);
    match c.try_take().err() {
        Some(RecvError::Corrupt(k)) => {
            assert_eq!(k.position, head);
            assert!(matches!(
                k.kind,
                crate::ring::CorruptionKind::BadStamp { .. }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.counters().head, head, "the head was not walked");
}

/// Takes every record there is, acknowledging each: (sequence, type,
/// redelivered, payload).
fn drain(c: &mut Consumer) -> Vec<(u64, u16, bool, Vec<u8>)> {
    let mut got = Vec::new();
    while let Ok(r) = c.try_take() {
        got.push((r.sequence(), r.record_type(), r.redelivered(), r.to_vec()));
        r.ack().expect("ack");
    }
    got
}

/// A batch claim moves the tail once for several sequences, which the
/// producer's next claims use in order while other producers claim after
/// them; it claims only as many slots as are free, and nothing when the
/// queue is full.
#[test]
fn a_batch_claims_consecutive_sequences_with_one_move_of_the_tail() {
    let q = heap(config(8)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut other = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    assert_eq!(p.try_claim_batch(5), Ok(5));
    assert_eq!(q.counters().tail, 5, "one move for five");
    assert_eq!(p.try_claim_batch(3), Ok(5), "the batch is not used up yet");
    assert_eq!(other.try_send(9, b"other"), Ok(5), "after the batch");
    for i in 0..5u8 {
        let mut claim = p.try_claim(2).expect("from the batch");
        assert_eq!(claim.sequence(), u64::from(i));
        claim.copy_from_slice(&[i; 2]);
        claim.set_record_type(u16::from(i));
        assert_eq!(claim.stage(), Ok(u64::from(i)));
    }
    assert_eq!(q.counters().tail, 6, "claims from the batch leave the tail");
    p.flush();
    let got = drain(&mut c);
    let seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (0..6).collect::<Vec<_>>(), "in sequence order");
    assert_eq!(got[3], (3, 3, false, vec![3; 2]));
    assert_eq!(got[5], (5, 9, false, b"other".to_vec()));
    // All acknowledged: fill six slots, and a batch of eight gets the two
    // left.
    for _ in 0..6 {
        other.try_send(0, b"x").expect("room");
    }
    assert_eq!(p.try_claim_batch(8), Ok(2));
    assert_eq!(p.try_send(1, b"a"), Ok(12));
    assert_eq!(p.try_send(1, b"b"), Ok(13));
    assert_eq!(p.try_claim_batch(8), Err(ClaimError::Full));
    assert_eq!(p.try_claim_batch(0), Ok(0));
    assert_eq!(drain(&mut c).len(), 8);
    assert_eq!(q.counters().reclaimed_claims, 0);
}

/// Sequences a batch claimed and never used become skips at the flush
/// (or when the producer is dropped): consumers pass them at once, with
/// nothing reclaimed and nothing lost, and their slots are used again.
#[test]
fn a_flush_gives_up_unused_batch_sequences_as_skips() {
    let q = heap(config(4)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    assert_eq!(p.try_claim_batch(4), Ok(4));
    p.try_send(1, b"one").expect("from the batch");
    p.flush();
    let t = Instant::now();
    let mut buf = [0u8; 8];
    assert_eq!(
        c.recv_timeout(&mut buf, WaitStrategy::BusySpin, Duration::from_secs(5)),
        Ok((1, 3))
    );
    assert_eq!(
        c.try_take().err(),
        Some(RecvError::Empty),
        "three skips passed"
    );
    assert!(t.elapsed() < Duration::from_millis(50), "nothing reclaimed");
    assert_eq!(p.try_send(2, b"two"), Ok(4), "after the skips");
    // Dropped with a batch open: the same.
    let mut p2 = q.producer().expect("producer");
    assert_eq!(p2.try_claim_batch(2), Ok(2));
    drop(p2);
    assert_eq!(p.try_send(3, b"three"), Ok(7));
    let got: Vec<(u64, u16)> = drain(&mut c).iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(got, vec![(4, 2), (7, 3)]);
    assert_eq!(q.counters().reclaimed_claims, 0);
    // Every slot is free again.
    assert_eq!(p.try_claim_batch(4), Ok(4));
}

/// A producer that dies in the middle of a batch: what it committed or
/// staged is delivered; each sequence it had not committed (one being
/// written, one never used) is a counted skip, reclaimed after
/// `reclaim_after`, and the queue flows; with every strategy.
#[test]
fn a_producer_dying_mid_batch_leaves_counted_skips_reclaimed_together() {
    for wait in STRATEGIES {
        let q = heap(config(8)).expect("config");
        let mut doomed = q.producer().expect("producer");
        let mut p = q.producer().expect("producer");
        let mut c = q.consumer().expect("consumer");
        assert_eq!(doomed.try_claim_batch(4), Ok(4));
        doomed.try_send(0, b"committed").expect("seq 0");
        let mut claim = doomed.try_claim(6).expect("seq 1");
        claim.copy_from_slice(b"staged");
        claim.stage().expect("staged");
        std::mem::forget(doomed.try_claim(4).expect("seq 2"));
        // Sequence 3 claimed, never used; the producer dies unflushed.
        doomed.crash_for_test();
        assert_eq!(p.try_send(1, b"after"), Ok(4));
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        let t = Instant::now();
        for _ in 0..3 {
            let (ty, n) = c
                .recv_timeout(&mut buf, wait, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{wait:?}: {e}"));
            got.push((ty, buf[..n].to_vec()));
        }
        let took = t.elapsed();
        assert_eq!(
            got,
            vec![
                (0, b"committed".to_vec()),
                (0, b"staged".to_vec()),
                (1, b"after".to_vec())
            ],
            "{wait:?}"
        );
        assert!(took >= Duration::from_millis(50), "{wait:?}: {took:?}");
        assert!(took < Duration::from_secs(1), "{wait:?}: {took:?}");
        assert_eq!(q.counters().reclaimed_claims, 2, "{wait:?}");
    }
}

/// A producer that stalls past `reclaim_after` with a batch claimed and
/// unused: the consumers reclaim its sequences (counted) and go on; when
/// it resumes, its next claim finds them lost and claims afresh, so what
/// it sends is delivered once and nothing is written under anyone.
#[test]
fn a_stalled_batch_resumes_with_fresh_claims() {
    let q = heap(config(4)).expect("config");
    let mut stalled = q.producer().expect("producer");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    assert_eq!(stalled.try_claim_batch(2), Ok(2));
    assert_eq!(
        c.take_timeout(WaitStrategy::BusySpin, Duration::from_millis(120))
            .err(),
        Some(RecvError::TimedOut)
    );
    assert_eq!(q.counters().reclaimed_claims, 2);
    assert_eq!(p.try_send(1, b"one"), Ok(2));
    assert_eq!(stalled.try_send(2, b"two"), Ok(3), "a fresh claim");
    assert_eq!(stalled.reclaimed(), 0, "no claim of it was reclaimed");
    let got: Vec<(u64, u16)> = drain(&mut c).iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(got, vec![(2, 1), (3, 2)]);
}

/// Consumers asleep on the futex take staged records once the producer
/// flushes (and never miss one: the flush's wake-up).
#[test]
fn sleeping_consumers_take_staged_records_after_the_flush() {
    let q = std::sync::Arc::new(heap(config(8)).expect("config"));
    let mut c = q.consumer().expect("consumer");
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut p = q.producer().expect("producer");
            let mut sent = 0u32;
            while sent < 400 {
                if sent % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let n = match p.try_claim_batch(4) {
                    Ok(n) => n,
                    Err(ClaimError::Full) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                };
                for _ in 0..n {
                    let mut claim = p.try_claim(4).expect("claimed");
                    claim.copy_from_slice(&sent.to_le_bytes());
                    claim.stage().expect("staged");
                    sent += 1;
                }
                p.flush();
            }
        })
    };
    let mut buf = [0u8; 4];
    for i in 0..400u32 {
        let (_, n) = c
            .recv_timeout(&mut buf, WaitStrategy::BLOCKING, Duration::from_secs(10))
            .expect("record");
        assert_eq!(u32::from_le_bytes(buf[..n].try_into().expect("4 bytes")), i);
    }
    producer.join().expect("producer");
}

/// A batch take takes a run of records before handling the first, moves
/// the head once for the run, and acknowledges each record as it is
/// handled; a larger batch goes on in runs.
#[test]
fn a_batch_take_takes_a_run_and_acknowledges_each_record() {
    let q = heap(QueueConfig {
        slots: 64,
        ..config(64)
    })
    .expect("config");
    let mut p = q.producer().expect("producer");
    let mut a = q.consumer().expect("consumer");
    let mut b = q.consumer().expect("consumer");
    for i in 0..50u8 {
        p.try_send(u16::from(i), &[i]).expect("room");
    }
    let mut seen = Vec::new();
    let n = a
        .take_batch(4, |r| {
            if seen.is_empty() {
                // The whole run is taken already: another consumer gets
                // the record after it.
                let mut buf = [0u8; 4];
                assert_eq!(b.try_recv(&mut buf), Ok((4, 1)));
            }
            seen.push((r.sequence(), r.record_type(), r[0], r.redelivered()));
        })
        .expect("batch");
    assert_eq!(n, 4);
    assert_eq!(
        seen,
        (0..4)
            .map(|i| (i, i as u16, i as u8, false))
            .collect::<Vec<_>>()
    );
    assert_eq!(q.counters().head, 5);
    assert_eq!((a.taken(), a.acked()), (4, 4));
    // Two runs (32 + 13) and the rest of the queue.
    let mut seqs = Vec::new();
    assert_eq!(a.take_batch(100, |r| seqs.push(r.sequence())), Ok(45));
    assert_eq!(seqs, (5..50).collect::<Vec<_>>());
    assert_eq!(a.take_batch(100, |_| panic!("nothing left")), Ok(0));
    assert_eq!(q.counters().head, 50);
    // Every slot is free again.
    for _ in 0..64 {
        p.try_send(0, b"x").expect("room");
    }
}

/// A batch take starts with records given back (they jump the line), and
/// a handler that panics gives back its record and the rest of the run,
/// flagged, for the next take.
#[test]
fn a_batch_take_takes_given_back_records_first_and_a_panic_gives_the_run_back() {
    let q = heap(config(8)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut a = q.consumer().expect("consumer");
    let mut b = q.consumer().expect("consumer");
    for i in 0..5u8 {
        p.try_send(0, &[i]).expect("room");
    }
    a.try_take().expect("0").give_back().expect("give back");
    let mut seen = Vec::new();
    assert_eq!(
        b.take_batch(3, |r| seen.push((r.sequence(), r.redelivered()))),
        Ok(3)
    );
    assert_eq!(seen, vec![(0, true), (1, false), (2, false)]);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.take_batch(8, |r| {
            if r.sequence() == 3 {
                panic!("handler failed");
            }
        })
    }));
    assert!(panicked.is_err());
    let again: Vec<(u64, bool)> = drain(&mut a).iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(again, vec![(3, true), (4, true)]);
    assert_eq!(q.counters().redelivered, 3);
}

/// A consumer killed in the middle of a batch: the records it handled
/// are acknowledged, the ones it held are given back by a reap and
/// delivered again, flagged; none is lost.
#[test]
fn a_consumer_killed_mid_batch_has_its_held_records_redelivered() {
    let q = heap(config(8)).expect("config");
    let mut p = q.producer().expect("producer");
    let doomed = q.consumer().expect("consumer");
    let mut live = q.consumer().expect("consumer");
    for i in 0..6u8 {
        p.try_send(0, &[i]).expect("room");
    }
    assert_eq!(doomed.crash_mid_batch_for_test(4, 1), vec![0, 1, 2, 3]);
    // The head is past the run: the live consumer goes on after it ...
    let got: Vec<(u64, bool)> = drain(&mut live).iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(got, vec![(4, false), (5, false)]);
    // ... and gets the held records once a reap gives them back.
    assert_eq!(q.reap_for_test(), 1);
    let got: Vec<(u64, bool)> = drain(&mut live).iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(got, vec![(1, true), (2, true), (3, true)]);
    assert_eq!(q.counters().redelivered, 3);
}

/// A corrupt record in the middle of a run ends the batch after the
/// records before it are handled; it is reported with its sequence, and
/// the queue goes on after it.
#[test]
fn a_corrupt_record_in_a_run_is_reported_after_the_records_before_it() {
    let q = heap(config(8)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut c = q.consumer().expect("consumer");
    let spy = q.consumer().expect("consumer");
    for i in 0..4u8 {
        p.try_send(0, &[i]).expect("room");
    }
    spy.ring.header(2).word.store(
        crate::layout::pack_record_header(1000, 1, 0),
        Ordering::Relaxed,
    );
    let mut seen = Vec::new();
    match c.take_batch(8, |r| seen.push(r.sequence())) {
        Err(RecvError::Corrupt(k)) => assert_eq!(k.position, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen, vec![0, 1]);
    assert_eq!(c.take_batch(8, |r| seen.push(r.sequence())), Ok(1));
    assert_eq!(seen, vec![0, 1, 3]);
}

#[test]
fn invalid_configs_are_refused() {
    let setting = |c: QueueConfig| c.validate().map_err(|e| e.setting);
    assert_eq!(setting(config(3)), Err("slots"));
    assert_eq!(setting(config(1)), Err("slots"));
    assert_eq!(
        setting(QueueConfig {
            max_payload: 0,
            ..config(4)
        }),
        Err("max_payload")
    );
    assert_eq!(
        setting(QueueConfig {
            max_consumers: 65,
            ..config(4)
        }),
        Err("max_consumers")
    );
    assert_eq!(
        setting(QueueConfig {
            max_producers: 0,
            ..config(4)
        }),
        Err("max_producers")
    );
    assert_eq!(
        setting(QueueConfig {
            reclaim_after: Duration::ZERO,
            ..config(4)
        }),
        Err("reclaim_after")
    );
    assert_eq!(setting(config(4)), Ok(()));
}

/// A consumer looks at the slot of head 0 (a lap behind: nothing yet) and
/// is preempted; meanwhile a producer fills a lap and more and another
/// consumer takes what it needs to, so the tail is 3, past 0 + 2 slots.
/// When the first consumer's tail check comes, its look at the slot is old,
/// not the queue corrupt: it looks again and goes on. It was reported as
/// `Corrupt` (tail too far ahead).
#[test]
fn a_consumer_whose_look_at_the_slot_is_old_goes_on() {
    let q = heap(config(2)).expect("config");
    let mut p = q.producer().expect("producer");
    let mut a = q.consumer().expect("consumer");
    let mut b = q.consumer().expect("consumer");
    // `a` has looked at the slot of 0: a lap behind.
    let mut buf = [0u8; 8];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for i in 0..2u8 {
        assert_eq!(p.try_send(u16::from(i), &[i]), Ok(u64::from(i)));
    }
    assert_eq!(b.try_recv(&mut buf), Ok((0, 1)));
    assert_eq!(p.try_send(2, &[2]), Ok(2));
    // The check of the tail comes now, on `a`'s old look.
    a.look_closely_next();
    assert_eq!(a.nothing_yet(0), Ok(()), "an old look is no fault");
    assert_eq!(a.try_recv(&mut buf), Ok((1, 1)));
    assert_eq!(b.try_recv(&mut buf), Ok((2, 1)));
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
}
