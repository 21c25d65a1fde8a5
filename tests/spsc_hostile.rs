//! Hostile bytes: positions and record headers in shared memory overwritten
//! by a buggy or malicious peer give typed errors, never a panic, an
//! out-of-bounds read or a hang.
//!
//! Offsets used below (see `shmbus::layout`): capacity at 128, tail at 256,
//! head at 384, data region at 512. The consumer follows the record headers
//! (the commit markers); the producer position is informational.

mod common;

use std::fs::OpenOptions as FsOpen;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{splitmix, TempNs};
use shmbus::layout::{pack_record_header, FLAG_COMMITTED, FLAG_PADDING, SPSC_DATA_OFFSET};
use shmbus::ring::spsc::{ClaimError, RecvError, SpscConfig};
use shmbus::ring::CorruptionKind;
use shmbus::{BusError, Channel, SegmentError};

const CAP: u64 = 4096;
const TAIL: u64 = 256;
const HEAD: u64 = 384;
const DATA: u64 = SPSC_DATA_OFFSET as u64;

struct Fixture {
    ch: Channel,
    file: std::fs::File,
    _t: TempNs,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        let t = TempNs::new(tag);
        let ch = t
            .bus()
            .spsc("h", &SpscConfig::with_capacity(CAP as usize))
            .expect("create");
        let file = FsOpen::new()
            .read(true)
            .write(true)
            .open(ch.path())
            .expect("open file");
        Fixture { ch, file, _t: t }
    }
    fn poke_u64(&self, offset: u64, v: u64) {
        self.file
            .write_all_at(&v.to_ne_bytes(), offset)
            .expect("poke");
    }
}

fn corrupt_kind(e: RecvError) -> CorruptionKind {
    match e {
        RecvError::Corrupt(c) => c.kind,
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn misaligned_consumer_position_is_refused_on_attach() {
    let f = Fixture::new("misaligned");
    f.poke_u64(HEAD, 13);
    for e in [f.ch.consumer().err(), f.ch.producer().err()] {
        match e {
            Some(BusError::Segment(SegmentError::Corrupt { reason, .. })) => {
                assert!(reason.contains("13"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

/// A consumer position near the end of the `u64` range (aligned) is
/// refused on attach by both ends: claiming from it would overflow (a
/// debug build panicked "attempt to add with overflow" in the producer's
/// reserve, found by the mapped-bytes fuzz target).
#[test]
fn consumer_position_past_the_largest_is_refused_on_attach() {
    let f = Fixture::new("huge");
    for head in [u64::MAX - 7, 1 << 63] {
        f.poke_u64(HEAD, head);
        for e in [f.ch.consumer().err(), f.ch.producer().err()] {
            match e {
                Some(BusError::Segment(SegmentError::Corrupt { reason, .. })) => {
                    assert!(reason.contains(&head.to_string()), "{reason}")
                }
                other => panic!("head {head}: expected Corrupt, got {other:?}"),
            }
        }
    }
    // Just below the bound still works.
    f.poke_u64(HEAD, (1 << 63) - 4096);
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    for i in 0..100u64 {
        tx.try_send(1, &i.to_le_bytes()).expect("room");
        assert_eq!(&rx.try_read().expect("record")[..], &i.to_le_bytes());
    }
}

/// The producer position in the control block is informational: garbage
/// there neither misleads the consumer (it follows the headers) nor a new
/// producer (it rebuilds the position from the committed headers).
#[test]
fn garbage_producer_position_misleads_nobody() {
    let f = Fixture::new("tail");
    let mut tx = f.ch.producer().expect("producer");
    tx.try_send(0, &[0; 8]).expect("send"); // frame 16 at 0
    drop(tx);
    let mut rx = f.ch.consumer().expect("consumer");
    for (round, garbage) in [13, CAP * 5, u64::MAX].into_iter().enumerate() {
        let round = round as u8;
        f.poke_u64(TAIL, garbage);
        let mut tx = f.ch.producer().expect("producer rebuilds its position");
        assert_eq!(
            tx.position(),
            16 * (u64::from(round) + 1),
            "rebuilt from the headers"
        );
        tx.try_send(0, &[round + 1; 8]).expect("send");
        drop(tx);
        f.poke_u64(TAIL, garbage);
        let rec = rx.try_read().expect("the consumer follows the headers");
        assert_eq!(&rec[..], &[round; 8]);
    }
}

#[test]
fn record_length_beyond_the_maximum() {
    let f = Fixture::new("len");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    tx.try_send(1, &[7; 8]).expect("send");
    f.poke_u64(DATA, pack_record_header(u32::MAX, 1, FLAG_COMMITTED));
    let e = rx.try_read().err().expect("error");
    assert_eq!(
        corrupt_kind(e),
        CorruptionKind::LengthTooLarge { len: u32::MAX }
    );
}

#[test]
fn record_running_past_the_end_of_the_region() {
    let f = Fixture::new("oob");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    // Frames of 1024, 1024, 1024 and 1008 bytes: the next header is at 4080,
    // 16 bytes before the end of the 4096-byte region.
    for len in [1016, 1016, 1016, 1000] {
        tx.try_send(1, &vec![0; len]).expect("send");
        drop(rx.try_read().expect("record"));
    }
    f.poke_u64(DATA + 4080, pack_record_header(32, 1, FLAG_COMMITTED));
    let e = rx.try_read().err().expect("error");
    assert_eq!(
        corrupt_kind(e),
        CorruptionKind::RecordOutOfBounds { len: 32 }
    );
}

#[test]
fn header_without_the_committed_mark() {
    let f = Fixture::new("uncommitted");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    tx.try_send(1, &[7; 8]).expect("send");
    f.poke_u64(DATA, pack_record_header(8, 1, 0));
    let e = rx.try_read().err().expect("error");
    assert_eq!(corrupt_kind(e), CorruptionKind::UnknownFlags { flags: 0 });
}

#[test]
fn unknown_record_flags() {
    let f = Fixture::new("flags");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    tx.try_send(1, &[7; 8]).expect("send");
    f.poke_u64(DATA, pack_record_header(8, 1, 0x4000 | FLAG_COMMITTED));
    let e = rx.try_read().err().expect("error");
    assert_eq!(
        corrupt_kind(e),
        CorruptionKind::UnknownFlags { flags: 0xC000 }
    );
}

#[test]
fn padding_that_does_not_reach_the_end() {
    let f = Fixture::new("pad");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    tx.try_send(1, &[7; 8]).expect("send");
    f.poke_u64(
        DATA,
        pack_record_header(0, 0, FLAG_PADDING | FLAG_COMMITTED),
    );
    let e = rx.try_read().err().expect("error");
    assert_eq!(corrupt_kind(e), CorruptionKind::BadPadding { len: 0 });
}

#[test]
fn consumer_position_out_of_range_stops_the_producer() {
    let f = Fixture::new("head");
    let mut tx = f.ch.producer().expect("producer");
    let max = tx.max_payload() as usize;
    tx.try_send(1, &vec![0; max]).expect("first half");
    tx.try_send(1, &vec![0; max]).expect("second half");
    f.poke_u64(HEAD, 1 << 40);
    match tx.try_claim(8) {
        Err(ClaimError::Corrupt(c)) => {
            assert_eq!(c.kind, CorruptionKind::HeadOutOfRange { head: 1 << 40 })
        }
        Err(e) => panic!("expected corruption, got {e:?}"),
        Ok(_) => panic!("claimed space past a corrupt consumer position"),
    }
}

/// A vandal thread overwrites random words of the control block and data
/// region with random bytes while a producer and a consumer run. Every call
/// must return (no hang), every error must be a typed one, and every record
/// handed out must lie within the ring's limits.
#[test]
fn random_overwrites_while_running_give_typed_errors_only() {
    let f = Fixture::new("vandal");
    let mut tx = f.ch.producer().expect("producer");
    let mut rx = f.ch.consumer().expect("consumer");
    let max = tx.max_payload() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_millis(1500);

    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut sent, mut corrupt, mut seq) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let len = (splitmix(seq) % 200) as usize;
                match tx.try_claim(len) {
                    Ok(mut slot) => {
                        slot.fill(seq as u8);
                        slot.commit();
                        sent += 1;
                    }
                    Err(ClaimError::Full) => std::thread::yield_now(),
                    Err(ClaimError::Corrupt(_)) => corrupt += 1,
                    Err(e) => panic!("untyped failure {e:?}"),
                }
            }
            (sent, corrupt)
        })
    };
    let vandal = {
        let stop = stop.clone();
        let writes = writes.clone();
        let file = f.file.try_clone().expect("dup file");
        std::thread::spawn(move || {
            let mut x = 42u64;
            while !stop.load(Ordering::Relaxed) {
                x = splitmix(x);
                // Either a cursor line or any word of the data region.
                let offset = match x % 4 {
                    0 => TAIL,
                    1 => HEAD,
                    _ => DATA + (splitmix(x) % CAP) / 8 * 8,
                };
                let value = match (x >> 8) % 3 {
                    0 => splitmix(x ^ 1),             // anything
                    1 => splitmix(x ^ 2) % (4 * CAP), // plausible position
                    _ => pack_record_header((x >> 20) as u32 % 300, 0, (x >> 40) as u16 % 4),
                };
                file.write_all_at(&value.to_ne_bytes(), offset)
                    .expect("vandalise");
                writes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };

    let started = Instant::now();
    let (mut read, mut corrupt, mut calls) = (0u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    while started.elapsed() < run_for {
        let t0 = Instant::now();
        match rx.try_read() {
            Ok(rec) => {
                assert!(rec.len() <= max, "record of {} bytes handed out", rec.len());
                // Touch every byte: an out-of-bounds slice would fault here.
                let _sum: u64 = rec.iter().map(|&b| u64::from(b)).sum();
                read += 1;
            }
            Err(RecvError::Empty) => std::thread::yield_now(),
            Err(RecvError::Corrupt(_)) => corrupt += 1,
            Err(e) => panic!("untyped failure {e:?}"),
        }
        slowest = slowest.max(t0.elapsed());
        calls += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, producer_corrupt) = producer.join().expect("producer must not panic");
    vandal.join().expect("vandal");
    eprintln!(
        "calls {calls}, read {read}, consumer corruptions {corrupt}, sent {sent}, producer corruptions {producer_corrupt}, vandal writes {}, slowest call {slowest:?}",
        writes.load(Ordering::Relaxed)
    );
    assert!(
        writes.load(Ordering::Relaxed) > 100,
        "the vandal barely ran"
    );
    assert!(
        corrupt + producer_corrupt > 0,
        "no corruption was ever detected"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a single call took {slowest:?}"
    );
}
