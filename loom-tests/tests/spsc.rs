//! Loom models of the SPSC ring: the production code of
//! `shmbus::ring::spsc`, running over heap memory with a 64-byte region so
//! that every model wraps, fills up and empties within a few records.
//!
//! Every data byte the ring hands out is tracked by loom (see
//! `shmbus::sync::AccessTracker`), so a missing happens-before edge between
//! a write and a read is a reported causality violation, not a silent pass.
//!
//! Run: `RUSTFLAGS="--cfg shmbus_loom" cargo test -p loom-tests --release`.
#![cfg(shmbus_loom)]

use loom::thread;
use shmbus::ring::spsc::{self, ClaimError, Consumer, Producer, RecvError, SpscConfig};

/// Payload of record `seq`: `len` bytes, each `seq * 31 + i`.
fn payload(seq: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seq.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn ring() -> (Producer, Consumer) {
    // 64 bytes: max payload 16 (a 24-byte frame and its 8-byte sentinel
    // are half the region).
    spsc::heap(SpscConfig::with_capacity(64)).expect("valid config")
}

fn send_spinning(tx: &mut Producer, seq: u8, len: usize) {
    loop {
        match tx.try_send(u16::from(seq), &payload(seq, len)) {
            Ok(()) => return,
            Err(ClaimError::Full) => thread::yield_now(),
            Err(e) => panic!("unexpected claim error {e:?}"),
        }
    }
}

/// Reads one record, checking type, length and every byte.
fn expect_record(rx: &mut Consumer, seq: u8, len: usize) {
    loop {
        match rx.try_read() {
            Ok(rec) => {
                assert_eq!(rec.record_type(), u16::from(seq), "records out of order");
                assert_eq!(
                    &rec[..],
                    &payload(seq, len)[..],
                    "torn or wrong record {seq}"
                );
                return;
            }
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("unexpected read error {e:?}"),
        }
    }
}

/// Three 16-byte records (24-byte frames) through a 64-byte ring: the third
/// cannot fit before the end and must follow a padding record at index 48.
#[test]
fn wrap_with_padding_record() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        let producer = thread::spawn(move || {
            for seq in 0..3 {
                send_spinning(&mut tx, seq, 16);
            }
        });
        for seq in 0..3 {
            expect_record(&mut rx, seq, 16);
        }
        producer.join().expect("producer");
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    });
}

/// A full ring holds the producer back until the consumer frees space.
///
/// Three 8-byte records (16-byte frames) fill the 64-byte ring: a fourth
/// at 48 would end, with its sentinel, at 72, past head + capacity. The
/// producer fills it before the consumer starts, so it must find it `Full`;
/// then it sends two more while the consumer reads. Record 3 needs record 0
/// released (its sentinel lands on record 0's header), record 4 record 1
/// (it overwrites record 0, its sentinel record 1's header): a producer
/// that does not wait for the consumer's release corrupts a record still
/// to be read, or writes bytes the consumer reads without a happens-before
/// edge (a causality violation). Nothing is lost, duplicated or reordered.
#[test]
fn full_ring_backpressure() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        for seq in 0..3 {
            tx.try_send(u16::from(seq), &payload(seq, 8))
                .expect("room for three records");
        }
        assert_eq!(
            tx.try_send(3, &payload(3, 8)).err(),
            Some(ClaimError::Full),
            "three 16-byte frames and a sentinel fill 64 bytes"
        );
        let consumer = thread::spawn(move || {
            for seq in 0..5 {
                expect_record(&mut rx, seq, 8);
            }
            assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
        });
        send_spinning(&mut tx, 3, 8);
        send_spinning(&mut tx, 4, 8);
        consumer.join().expect("consumer");
    });
}

/// An aborted claim (written, then dropped) is never seen; the next record
/// reuses its space.
#[test]
fn aborted_claim_is_invisible() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        let producer = thread::spawn(move || {
            let mut slot = tx.try_claim(8).expect("empty ring has room");
            slot.copy_from_slice(&[0xAB; 8]);
            slot.abort();
            send_spinning(&mut tx, 1, 8);
            send_spinning(&mut tx, 2, 8);
        });
        expect_record(&mut rx, 1, 8);
        expect_record(&mut rx, 2, 8);
        producer.join().expect("producer");
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    });
}

/// Batches: the producer stages two records and publishes them with one
/// store, then a third that wraps; the consumer defers its releases and
/// returns the space with one store. The consumer sees all or none of a
/// batch's records, and all of them in order.
#[test]
fn batch_publish_and_release() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        let producer = thread::spawn(move || {
            for seq in 0..2u8 {
                let mut slot = tx.try_claim(8).expect("empty ring has room");
                slot.copy_from_slice(&payload(seq, 8));
                slot.set_record_type(u16::from(seq));
                slot.stage();
            }
            tx.flush();
            send_spinning(&mut tx, 2, 16);
        });
        let mut next = 0u8;
        while next < 3 {
            let mut seen = Vec::new();
            let n = rx
                .read_batch(8, |ty, p| seen.push((ty, p.to_vec())))
                .expect("no corruption");
            // The staged pair is published by one store: never half of it.
            assert!(next != 0 || n != 1, "saw 1 record of a 2-record batch");
            for (ty, p) in seen {
                let len = if next < 2 { 8 } else { 16 };
                assert_eq!((ty, p), (u16::from(next), payload(next, len)));
                next += 1;
            }
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().expect("producer");
    });
}

/// Deferred releases: the space of records read with `defer_release`
/// returns to the producer only with `Consumer::release`, and then all of
/// it with one store.
#[test]
fn deferred_release() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        let producer = thread::spawn(move || {
            for seq in 0..3 {
                send_spinning(&mut tx, seq, 16);
            }
        });
        for seq in 0..2u8 {
            loop {
                match rx.try_read() {
                    Ok(rec) => {
                        assert_eq!(&rec[..], &payload(seq, 16)[..]);
                        rec.defer_release();
                        break;
                    }
                    Err(RecvError::Empty) => thread::yield_now(),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
        // The producer cannot have sent the third record: nothing was released.
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
        rx.release();
        expect_record(&mut rx, 2, 16);
        producer.join().expect("producer");
    });
}

/// An empty ring says Empty, and a record published concurrently is either
/// not yet visible or visible complete.
#[test]
fn empty_then_one_record() {
    loom::model(|| {
        let (mut tx, mut rx) = ring();
        let producer = thread::spawn(move || send_spinning(&mut tx, 7, 16));
        let seen_early = match rx.try_read() {
            Ok(rec) => {
                assert_eq!(&rec[..], &payload(7, 16)[..]);
                true
            }
            Err(RecvError::Empty) => false,
            Err(e) => panic!("unexpected {e:?}"),
        };
        producer.join().expect("producer");
        if !seen_early {
            expect_record(&mut rx, 7, 16);
        }
        assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    });
}

/// A consumer of a ring with wake-ups that sleeps on the futex is always
/// woken by the producer's publish: no lost wake-up (loom reports a
/// deadlock otherwise).
#[test]
fn blocking_consumer_is_always_woken() {
    loom::model(|| {
        let config = SpscConfig::with_capacity(64).with_wakeups();
        let (mut tx, mut rx) = spsc::heap(config).expect("valid config");
        let producer = thread::spawn(move || send_spinning(&mut tx, 5, 8));
        let rec = rx
            .read_blocking(shmbus::wait::WaitStrategy::Blocking {
                spins: 0,
                yields: 0,
            })
            .expect("a record");
        assert_eq!(&rec[..], &payload(5, 8)[..]);
        drop(rec);
        producer.join().expect("producer");
    });
}
