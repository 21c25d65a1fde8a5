//! SPSC channels across real processes: a child producer streams records of
//! 8..1024 bytes to a consumer in the parent, which checks order, length and
//! a CRC-32 of each; and a producer killed mid-record is replaced without
//! loss.
//!
//! `SHMBUS_XPROC_RECORDS` overrides the record count (default 10 million).

mod common;

use std::time::Duration;

use common::{child_role, spawn_child, splitmix, TempNs};
use shmbus::ring::spsc::{Consumer, Producer, RecvError, SpscConfig};
use shmbus::wait::WaitStrategy;
use shmbus::{Bus, BusError, Channel, SegmentError};

const RING: &str = "xproc";

/// The channel [`RING`] as a child process opens it: by name, through the
/// directory of the parent's namespace.
fn child_channel(base: &std::path::Path) -> Channel {
    Bus::at(base, "t")
        .expect("bus")
        .open_spsc(RING)
        .expect("open the channel")
}

fn record_count() -> u64 {
    std::env::var("SHMBUS_XPROC_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// Payload length of record `seq`: 8..=1024, spread by a hash.
fn len_of(seq: u64) -> usize {
    8 + (splitmix(seq) % 1017) as usize
}

/// Fills `buf` as record `seq`: sequence number, a seq-derived pattern, and
/// (when there is room) a CRC-32 of everything before it in the last 4 bytes.
fn fill(seq: u64, buf: &mut [u8]) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    let body = buf.len().saturating_sub(4).max(8);
    let mut x = splitmix(seq ^ 0xA5A5);
    for chunk in buf[8..body].chunks_mut(8) {
        x = splitmix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    if buf.len() >= 12 {
        let crc = crc32fast::hash(&buf[..body]);
        buf[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn check(seq: u64, payload: &[u8]) {
    assert_eq!(
        payload.len(),
        len_of(seq),
        "record {seq} has the wrong length"
    );
    let got = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    assert_eq!(got, seq, "records out of order or lost/duplicated");
    if payload.len() >= 12 {
        let body = payload.len() - 4;
        let stored = u32::from_le_bytes(payload[body..].try_into().expect("4 bytes"));
        assert_eq!(
            crc32fast::hash(&payload[..body]),
            stored,
            "record {seq} is corrupt"
        );
    }
}

fn produce(tx: &mut Producer, from: u64, to: u64) {
    for seq in from..to {
        let len = len_of(seq);
        let mut slot = tx
            .claim_timeout(len, WaitStrategy::BACKOFF, Duration::from_secs(60))
            .expect("consumer keeps up");
        fill(seq, &mut slot);
        slot.set_record_type((seq % 65_536) as u16);
        slot.commit();
    }
}

fn consume(rx: &mut Consumer, from: u64, to: u64) {
    for seq in from..to {
        let rec = rx
            .read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("waiting for record {seq}: {e}"));
        assert_eq!(rec.record_type(), (seq % 65_536) as u16);
        check(seq, &rec);
    }
}

#[test]
fn ten_million_records_from_a_child_producer() {
    if let Some((role, base)) = child_role() {
        if role == "producer" {
            let mut tx = child_channel(&base).producer().expect("attach producer");
            produce(&mut tx, 0, record_count());
        }
        return;
    }
    let t = TempNs::new("xproc");
    let ring = t
        .bus()
        .spsc(RING, &SpscConfig::with_capacity(1 << 20))
        .expect("create ring");
    let mut rx = ring.consumer().expect("attach consumer");
    let mut child = spawn_child(
        "ten_million_records_from_a_child_producer",
        "producer",
        &t.base,
    );
    let n = record_count();
    consume(&mut rx, 0, n);
    assert!(
        child.wait().expect("wait child").success(),
        "producer process failed"
    );
    assert_eq!(
        rx.try_read().err(),
        Some(RecvError::Empty),
        "more records than sent"
    );
}

/// A producer process dies by SIGKILL between claim and commit. The consumer
/// gets every committed record, never the half-written one; the dead
/// producer's role is free at once (the kernel dropped its lock), and a new
/// producer resumes where it stopped.
#[test]
fn producer_killed_mid_record_is_replaced_without_loss() {
    const COMMITTED: u64 = 1000;
    if let Some((role, base)) = child_role() {
        if role == "dying-producer" {
            let mut tx = child_channel(&base).producer().expect("attach producer");
            produce(&mut tx, 0, COMMITTED);
            let mut slot = tx.try_claim(64).expect("room");
            slot.fill(0xEE);
            // SAFETY: kill(2) on our own pid with a valid signal.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL is not catchable");
        }
        return;
    }
    let t = TempNs::new("kill");
    let ring = t
        .bus()
        .spsc(RING, &SpscConfig::with_capacity(1 << 20))
        .expect("create ring");
    let mut rx = ring.consumer().expect("attach consumer");
    let mut child = spawn_child(
        "producer_killed_mid_record_is_replaced_without_loss",
        "dying-producer",
        &t.base,
    );
    consume(&mut rx, 0, COMMITTED);
    let status = child.wait().expect("wait child");
    assert!(!status.success(), "child should have died by SIGKILL");
    assert_eq!(rx.producer_alive(), Some(false));
    assert_eq!(
        rx.try_read().err(),
        Some(RecvError::Empty),
        "half-written record leaked"
    );

    let mut tx = ring.producer().expect("role is free after the death");
    assert_eq!(rx.producer_alive(), Some(true));
    produce(&mut tx, COMMITTED, COMMITTED + 500);
    consume(&mut rx, COMMITTED, COMMITTED + 500);
}

/// While a consumer process is alive, a second consumer is refused with a
/// clear error; once it exits, the role can be taken.
#[test]
fn second_consumer_is_refused_while_the_first_lives() {
    if let Some((role, base)) = child_role() {
        if role == "holding-consumer" {
            let mut rx = child_channel(&base).consumer().expect("attach consumer");
            // Hold the role until the parent sends the go-ahead record.
            let rec = rx
                .read_timeout(WaitStrategy::BACKOFF, Duration::from_secs(30))
                .expect("go-ahead");
            assert_eq!(&rec[..], b"bye");
        }
        return;
    }
    let t = TempNs::new("excl");
    let ring = t
        .bus()
        .spsc(RING, &SpscConfig::with_capacity(4096))
        .expect("create ring");
    let mut tx = ring.producer().expect("attach producer");
    let mut child = spawn_child(
        "second_consumer_is_refused_while_the_first_lives",
        "holding-consumer",
        &t.base,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tx.consumer_alive() != Some(true) {
        assert!(std::time::Instant::now() < deadline, "child never attached");
        std::thread::sleep(Duration::from_millis(5));
    }
    match ring.consumer() {
        Err(BusError::Segment(SegmentError::AlreadyAttached { role, .. })) => {
            assert_eq!(role, "consumer")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second consumer attached while the first is alive"),
    }
    tx.try_send(0, b"bye").expect("room");
    assert!(child.wait().expect("wait child").success());
    assert_eq!(tx.consumer_alive(), Some(false));
    ring.consumer().expect("role is free after exit");
}

/// A consumer sleeping on the futex of a ring with wake-ups gets every
/// record of a child producer that publishes in bursts with pauses, and the
/// producer's futex word moved (it did wake the sleeper).
#[test]
fn blocking_consumer_sleeps_between_bursts_and_misses_nothing() {
    const BURSTS: u64 = 20;
    const PER_BURST: u64 = 500;
    if let Some((role, base)) = child_role() {
        if role == "bursty-producer" {
            let mut tx = child_channel(&base).producer().expect("attach producer");
            for b in 0..BURSTS {
                produce(&mut tx, b * PER_BURST, (b + 1) * PER_BURST);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        return;
    }
    let t = TempNs::new("blocking");
    let config = SpscConfig::with_capacity(1 << 16).with_wakeups();
    let ring = t.bus().spsc(RING, &config).expect("create ring");
    let mut rx = ring.consumer().expect("attach consumer");
    let mut child = spawn_child(
        "blocking_consumer_sleeps_between_bursts_and_misses_nothing",
        "bursty-producer",
        &t.base,
    );
    for seq in 0..BURSTS * PER_BURST {
        let rec = rx
            .read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("waiting for record {seq}: {e}"));
        check(seq, &rec);
    }
    assert!(child.wait().expect("wait child").success());
    // The word at offset 128 + 24 is the ring's futex word: bumped only when
    // the producer found the consumer asleep.
    let mut word = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(ring.path()).expect("open"),
        &mut word,
        128 + 24,
    )
    .expect("read");
    assert!(u32::from_ne_bytes(word) > 0, "the consumer never slept");
}
