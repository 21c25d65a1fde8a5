use std::time::{Duration, Instant};

use super::publisher::Lost;
use super::*;
use crate::layout::{pack_record_header, participant, MAX_SEQUENCE};
use crate::sync::Ordering;
use crate::wait::WaitStrategy;

fn config(slots: u32, policy: Policy) -> BroadcastConfig {
    BroadcastConfig {
        slots,
        max_payload: 32,
        policy,
        max_subscribers: 4,
        max_publishers: 4,
        reclaim_after: Duration::from_millis(50),
    }
}

#[test]
fn every_subscriber_sees_every_record_in_order() {
    let log = heap(config(8, Policy::Backpressure)).expect("config");
    let mut a = log.subscriber(StartAt::Tail).expect("sub");
    let mut b = log.subscriber(StartAt::Tail).expect("sub");
    let mut p = log.publisher().expect("pub");
    for i in 0..8u8 {
        p.try_send(u16::from(i), &[i; 5]).expect("room");
    }
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    for sub in [&mut a, &mut b] {
        for i in 0..8u8 {
            let r = sub.try_read().expect("record");
            assert_eq!((r.record_type(), &r[..]), (u16::from(i), &[i; 5][..]));
        }
        assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
    }
    p.try_send(9, b"after").expect("room after both read");
}

#[test]
fn the_slowest_subscriber_gates_and_a_dropped_one_stops_gating() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut fast = log.subscriber(StartAt::Tail).expect("sub");
    let slow = log.subscriber(StartAt::Tail).expect("sub");
    let mut p = log.publisher().expect("pub");
    for i in 0..4u8 {
        p.try_send(0, &[i]).expect("room");
        drop(fast.try_read().expect("record"));
    }
    assert_eq!(
        p.try_claim(1).err(),
        Some(ClaimError::Full),
        "slow subscriber gates"
    );
    drop(slow);
    p.try_send(0, b"x").expect("no more gating");
}

#[test]
fn overwrite_reports_exact_misses_and_resumes_at_the_oldest() {
    let log = heap(config(4, Policy::Overwrite)).expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    let mut p = log.publisher().expect("pub");
    for i in 0..10u8 {
        p.try_send(0, &[i]).expect("never full");
    }
    assert_eq!(sub.try_read().err(), Some(RecvError::Lapped { missed: 6 }));
    let mut buf = [0u8; 32];
    for i in 6..10u8 {
        assert_eq!(sub.try_recv(&mut buf).expect("record"), (0, 1));
        assert_eq!(buf[0], i);
    }
    assert_eq!(sub.missed(), 6);
}

#[test]
fn an_aborted_claim_becomes_a_skip_record() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    let mut p = log.publisher().expect("pub");
    drop(p.try_claim(4).expect("room"));
    p.try_send(1, b"kept").expect("room");
    assert_eq!(&sub.try_read().expect("record")[..], b"kept");
}

#[test]
fn a_stalled_claim_is_reclaimed_after_the_timeout() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    let mut p1 = log.publisher().expect("pub");
    let mut p2 = log.publisher().expect("pub");
    let stuck = p1.try_claim(4).expect("room");
    p2.try_send(2, b"next").expect("room");
    let t = Instant::now();
    let rec = sub
        .read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5))
        .expect("reclaimed, then the next record");
    assert_eq!(&rec[..], b"next");
    assert!(t.elapsed() >= Duration::from_millis(50));
    core::mem::forget(stuck);
}

/// Finding 1 of the hardening issue, step by step: a publisher stalled
/// past the claim timeout, whose claim was reclaimed, commits late. The
/// commit fails, the slot its claim held is not reused while it is
/// inside, and the later record that used to be destroyed is delivered.
#[test]
fn a_late_commit_of_a_reclaimed_claim_fails_and_destroys_nothing() {
    for policy in [Policy::Backpressure, Policy::Overwrite] {
        let log = heap(config(4, policy)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut slow = log.publisher().expect("pub");
        let mut fast = log.publisher().expect("pub");
        let mut stalled = slow.try_claim(8).expect("room");
        assert_eq!(stalled.sequence(), 0);
        assert_eq!(fast.try_send(1, b"one"), Ok(1));
        let rec = sub
            .read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5))
            .expect("seq 0 reclaimed, then seq 1");
        assert_eq!((rec.sequence(), &rec[..]), (1, &b"one"[..]));
        drop(rec);
        assert_eq!(
            sub.missed(),
            1,
            "{policy:?}: the reclaimed record is counted"
        );
        // Seq 4 would reuse slot 0 while `slow` may still write there:
        // the publisher gives it up (a skip) and takes seq 5.
        assert_eq!(fast.try_send(2, b"two"), Ok(2));
        assert_eq!(fast.try_send(3, b"three"), Ok(3));
        for r in 2..4 {
            assert_eq!(sub.try_read().expect("record").sequence(), r);
        }
        assert_eq!(fast.try_send(4, b"four"), Ok(5), "{policy:?}");
        stalled.copy_from_slice(b"STALLED!");
        assert_eq!(stalled.commit(), Err(ClaimError::Reclaimed { sequence: 0 }));
        assert_eq!(slow.reclaimed(), 1);
        let rec = sub
            .try_read()
            .expect("the record after the stall is intact");
        assert_eq!((rec.sequence(), &rec[..]), (5, &b"four"[..]), "{policy:?}");
        drop(rec);
        assert_eq!(sub.try_read().err(), Some(RecvError::Empty));
        assert_eq!(sub.missed(), 1);
        // Once `slow` is out, slot 0 is used again.
        assert_eq!(fast.try_send(6, b"six"), Ok(6));
        assert_eq!(fast.try_send(7, b"seven"), Ok(7));
        assert_eq!(fast.try_send(8, b"eight"), Ok(8));
        for r in 6..9 {
            assert_eq!(sub.try_read().expect("record").sequence(), r);
        }
    }
}

/// A claim reclaimed before its publisher wrote anything is retried on
/// a new sequence, transparently.
#[test]
fn a_claim_reclaimed_before_it_was_entered_moves_to_the_next_sequence() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut p = log.publisher().expect("pub");
    // Reserve seq 0 by hand (as a publisher stalled right after its
    // tail claim would) and reclaim it.
    let seq = p.reserve().expect("room");
    assert!(p.ring.reclaim(seq));
    // Entering it, the publisher finds it reclaimed and withdraws the
    // claim it had announced.
    assert!(matches!(p.enter(seq), Err(Lost::Reclaimed)));
    assert_eq!(p.ring.publisher(p.slot).claimed.load(Ordering::Relaxed), 0);
    let claim = p.try_claim(1).expect("room");
    assert_eq!(claim.sequence(), 1);
    drop(claim);
    assert_eq!(p.reclaimed(), 0);
}

/// Finding 2: a dead publisher's claim is reclaimed within the claim
/// timeout plus one wait round, whatever the strategy (a `BLOCKING`
/// reader used to take 100 s, a `BACKOFF` one 2 s).
#[test]
fn reclaim_takes_the_claim_timeout_whatever_the_wait_strategy() {
    let timeout = Duration::from_millis(100);
    for wait in [
        WaitStrategy::BusySpin,
        WaitStrategy::Yield,
        WaitStrategy::BACKOFF,
        WaitStrategy::BLOCKING,
    ] {
        let log = heap(BroadcastConfig {
            reclaim_after: timeout,
            ..config(8, Policy::Backpressure)
        })
        .expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut dead = log.publisher().expect("pub");
        core::mem::forget(dead.try_claim(4).expect("room"));
        dead.crash_for_test();
        let mut p = log.publisher().expect("pub");
        p.try_send(1, b"next").expect("room");
        let t = Instant::now();
        let rec = sub
            .read_timeout(wait, Duration::from_secs(30))
            .expect("reclaimed, then the next record");
        let took = t.elapsed();
        assert_eq!(&rec[..], b"next");
        assert!(took >= timeout, "{wait:?}: {took:?}");
        // One wait round is at most 20 ms of futex sleep; the rest is
        // slack for a loaded machine.
        assert!(took < Duration::from_millis(1500), "{wait:?} took {took:?}");
    }
}

/// A burst of dead claims costs one claim timeout, not one per claim.
#[test]
fn a_burst_of_dead_claims_is_reclaimed_in_one_timeout() {
    let timeout = Duration::from_millis(100);
    let log = heap(BroadcastConfig {
        reclaim_after: timeout,
        max_publishers: 8,
        ..config(8, Policy::Backpressure)
    })
    .expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    for _ in 0..5 {
        let mut dead = log.publisher().expect("pub");
        core::mem::forget(dead.try_claim(4).expect("room"));
        dead.crash_for_test();
    }
    let mut p = log.publisher().expect("pub");
    p.try_send(1, b"next").expect("room");
    let t = Instant::now();
    let rec = sub
        .read_timeout(WaitStrategy::BLOCKING, Duration::from_secs(30))
        .expect("record");
    assert_eq!(rec.sequence(), 5);
    drop(rec);
    assert!(t.elapsed() < 3 * timeout, "took {:?}", t.elapsed());
    assert_eq!(sub.missed(), 5);
}

/// Finding 3: the reaper's check of a slot's lock and its swap of the
/// state word race with a registration in between. The swap must fail.
#[test]
fn a_reaper_cannot_free_a_slot_registered_after_its_look() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let dead = log.subscriber(StartAt::Tail).expect("sub");
    let slot = dead.slot;
    dead.crash_for_test();
    // The reaper's look: a LIVE word whose lock is free.
    let view = log.view();
    let s = view.subscriber(slot);
    // SYNC POINT: as the reaper's Acquire load of the state word in
    // `reap_dead_subscribers`.
    let seen = s.state.load(Ordering::Acquire);
    assert_eq!(participant::state(seen), participant::LIVE);
    assert!(!view
        .liveness
        .held_by_other(crate::layout::lock_slot::subscriber(slot)));
    // A new subscriber takes the slot between the look and the swap.
    let fresh = log.subscriber(StartAt::Tail).expect("sub");
    assert_eq!(fresh.slot, slot);
    // SYNC POINT: the reaper's AcqRel compare-and-swap, with its orderings;
    // it fails because `take_slot` bumped the generation.
    let swapped = s.state.compare_exchange(
        seen,
        participant::with_state(seen, participant::FREE),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
    assert!(swapped.is_err(), "the generation changed");
    assert_eq!(log.reap_for_test(), 0);
    assert_eq!(log.subscriber_state_for_test(slot), participant::LIVE);
}

/// Finding 6: hostile positions are typed errors, never an overflow
/// panic (debug builds) or a wait that never ends.
#[test]
fn hostile_tails_are_corrupt_and_a_corrupt_record_can_be_skipped() {
    for policy in [Policy::Backpressure, Policy::Overwrite] {
        for tail in [u64::MAX, MAX_SEQUENCE + 1, 1 << 63] {
            let log = heap(config(4, policy)).expect("config");
            let mut sub = log.subscriber(StartAt::Tail).expect("sub");
            let mut p = log.publisher().expect("pub");
            log.mem.control.tail.store(tail, Ordering::Relaxed);
            assert!(
                matches!(p.try_claim(1).err(), Some(ClaimError::Corrupt(_))),
                "{policy:?} tail {tail}"
            );
            if policy == Policy::Overwrite && tail == u64::MAX {
                // The claim's `fetch_add` wrapped the tail to 0: the log
                // reads as empty again and goes on from there.
                assert_eq!(p.try_send(1, b"again"), Ok(0));
                assert_eq!(&sub.try_read().expect("record")[..], b"again");
                continue;
            }
            let got = sub.read_timeout(WaitStrategy::BusySpin, Duration::from_secs(5));
            assert!(
                matches!(got.err(), Some(RecvError::Corrupt(_))),
                "{policy:?}"
            );
            assert!(log.subscriber(StartAt::Oldest).is_err());
        }
    }
    // A record with garbage flags stops the subscriber until it skips.
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    let mut p = log.publisher().expect("pub");
    p.try_send(1, b"bad").expect("room");
    p.try_send(2, b"good").expect("room");
    log.mem.headers[0]
        .word
        .store(pack_record_header(3, 1, 0x40), Ordering::Relaxed);
    for _ in 0..3 {
        assert!(matches!(sub.try_read().err(), Some(RecvError::Corrupt(_))));
    }
    assert_eq!(sub.skip(), Ok(0));
    assert_eq!(&sub.try_read().expect("next")[..], b"good");
    assert_eq!(sub.missed(), 1);
    assert_eq!(sub.skip(), Err(RecvError::Empty));
}

#[test]
fn oldest_start_sees_retained_records() {
    let log = heap(config(4, Policy::Overwrite)).expect("config");
    let mut p = log.publisher().expect("pub");
    for i in 0..6u8 {
        p.try_send(0, &[i]).expect("never full");
    }
    let mut sub = log.subscriber(StartAt::Oldest).expect("sub");
    assert_eq!(sub.try_read().expect("oldest")[0], 2);
}

/// Nothing wakes a publisher waiting for space, so a `Blocking` claim or
/// send says so at once, on a full log or not, and publishes nothing.
#[test]
fn a_blocking_publisher_wait_says_it_cannot_sleep() {
    for policy in [Policy::Backpressure, Policy::Overwrite] {
        let log = heap(config(8, policy)).expect("config");
        let mut sub = log.subscriber(StartAt::Tail).expect("sub");
        let mut p = log.publisher().expect("pub");
        let blocking = WaitStrategy::BLOCKING;
        assert_eq!(
            p.claim_blocking(4, blocking).err(),
            Some(ClaimError::CannotSleep)
        );
        assert_eq!(
            p.claim_timeout(4, blocking, Duration::from_millis(1)).err(),
            Some(ClaimError::CannotSleep)
        );
        assert_eq!(
            p.send_blocking(1, b"x", blocking),
            Err(ClaimError::CannotSleep)
        );
        assert_eq!(sub.try_read().err(), Some(RecvError::Empty), "{policy:?}");
        assert_eq!(p.send_blocking(1, b"y", WaitStrategy::BACKOFF), Ok(0));
        // Subscribers can sleep: a publisher wakes them.
        let r = sub
            .read_timeout(blocking, Duration::from_secs(5))
            .expect("record");
        assert_eq!(&r[..], b"y");
    }
}

/// A durable subscriber resuming its place keeps gating publishers, and a
/// reaper leaves its slot alone, at every point of the resumption: paused
/// right after it took its slot (where a process may be stopped or
/// killed), a full log stays full, the reaper frees nothing, and it then
/// reads every record it had not read.
#[test]
fn a_resuming_durable_subscriber_gates_and_keeps_its_place_throughout() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut p = log.publisher().expect("pub");
    let risk = log
        .durable_subscriber("risk", StartAt::Tail)
        .expect("durable");
    let slot = risk.slot;
    drop(risk);
    for i in 0..4u8 {
        p.try_send(u16::from(i), &[i; 3]).expect("room");
    }
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    let p = std::cell::RefCell::new(p);
    let paused = std::cell::Cell::new(false);
    let mut risk = log
        .durable_subscriber_paused("risk", StartAt::Tail, &|| {
            paused.set(true);
            assert_eq!(
                p.borrow_mut().try_claim(1).err(),
                Some(ClaimError::Full),
                "the resuming subscriber's place gates publishers"
            );
            assert_eq!(log.reap_for_test(), 0, "a reaper leaves it alone");
            assert_eq!(log.subscriber_state_for_test(slot), participant::DETACHED);
        })
        .expect("resume");
    assert!(paused.get(), "the pause ran");
    assert_eq!(risk.slot, slot);
    for i in 0..4u8 {
        let r = risk.try_read().expect("every record it had not read");
        assert_eq!((r.record_type(), &r[..]), (u16::from(i), &[i; 3][..]));
    }
}

/// Backpressure, two publishers, one slot: publisher `a` reads the tail as
/// 1 and is preempted before it looks at the gate; meanwhile `b` publishes
/// sequences 1 and 2 and the subscriber reads both, so the gate is 2, past
/// the tail `a` read. That is `a`'s old look, not a corrupt log: its claim
/// goes on (the compare-and-swap of 1 fails, the next look is afresh). It
/// was reported as `Corrupt` ("consumer position 2 out of range").
#[test]
fn a_publisher_whose_look_at_the_tail_is_old_goes_on() {
    let log = heap(BroadcastConfig {
        max_publishers: 2,
        ..config(1, Policy::Backpressure)
    })
    .expect("config");
    let mut sub = log.subscriber(StartAt::Tail).expect("sub");
    let mut a = log.publisher().expect("pub");
    let mut b = log.publisher().expect("pub");
    let mut buf = [0u8; 32];
    a.try_send(10, &[10]).expect("room");
    assert_eq!(sub.try_recv(&mut buf), Ok((10, 1)));
    // `a` has read the tail: 1. Then `b` and the subscriber go on.
    let old_look = log.view().control().tail.load(Ordering::Acquire);
    assert_eq!(old_look, 1);
    for ty in [20, 21] {
        b.try_send(ty, &[1]).expect("room after the read");
        assert_eq!(sub.try_recv(&mut buf), Ok((ty, 1)));
    }
    assert_eq!(log.view().control().gate.load(Ordering::Acquire), 2);
    assert_eq!(a.gate_allows(old_look), Ok(true), "an old look is no fault");
    // And `a` carries on from the tail as it is now.
    assert_eq!(a.try_send(11, &[11]), Ok(3));
    assert_eq!(b.try_claim(1).err(), Some(ClaimError::Full));
    assert_eq!(sub.try_recv(&mut buf), Ok((11, 1)));
}

/// A detached durable subscriber gates a `Backpressure` publisher until it
/// is dropped; the publisher names it while it waits, and after the drop
/// goes on at its next claim (its cached slowest subscriber no longer
/// gates). A drop of an attached one is refused, of an unknown one is
/// not found.
#[test]
fn dropping_a_detached_durable_subscriber_lets_the_publisher_go_on() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let mut p = log.publisher().expect("pub");
    let s1 = log.durable_subscriber("s1", StartAt::Tail).expect("s1");
    let slot = s1.slot;
    assert_eq!(
        log.drop_durable("s1"),
        Err(DropDurableError::InUse {
            name: "s1".to_owned(),
            pid: std::process::id()
        })
    );
    drop(s1);
    for i in 0..4u8 {
        p.try_send(1, &[i]).expect("room");
    }
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    let who = p.holding_back().expect("held back");
    assert_eq!(
        (
            who.slot,
            who.name.as_deref(),
            who.cursor,
            who.tail,
            who.alive
        ),
        (slot, Some("s1"), 0, 4, false)
    );
    assert!(who.is_detached_durable());
    assert_eq!(who.behind(), 4);
    assert!(
        who.to_string().contains("durable subscriber \"s1\""),
        "{who}"
    );
    // Still full: the drop is what lets it go.
    assert_eq!(p.try_claim(1).err(), Some(ClaimError::Full));
    log.drop_durable("s1").expect("drop");
    assert_eq!(log.subscriber_state_for_test(slot), participant::FREE);
    assert_eq!(p.holding_back(), None);
    p.try_send(1, b"on").expect("the gate moved");
    assert_eq!(
        log.drop_durable("s1"),
        Err(DropDurableError::NotFound {
            name: "s1".to_owned()
        })
    );
    assert_eq!(log.drop_durable(""), Err(DropDurableError::BadName));
    // The name starts afresh: at the tail, not at its old place.
    let s1 = log.durable_subscriber("s1", StartAt::Tail).expect("again");
    assert_eq!(s1.position(), 5);
}

/// A live anonymous subscriber that is a log behind is named too; under
/// `Overwrite`, or with room, nobody holds a publisher back.
#[test]
fn a_publisher_names_the_live_subscriber_it_waits_for() {
    let log = heap(config(2, Policy::Backpressure)).expect("config");
    let mut p = log.publisher().expect("pub");
    let mut fast = log.subscriber(StartAt::Tail).expect("sub");
    let slow = log.subscriber(StartAt::Tail).expect("sub");
    assert_eq!(p.holding_back(), None, "room");
    for i in 0..2u8 {
        p.try_send(1, &[i]).expect("room");
        fast.try_read().expect("read");
    }
    let who = p.holding_back().expect("full");
    assert_eq!(
        (who.slot, who.name.as_deref(), who.alive),
        (slow.slot, None, true)
    );
    assert!(who.to_string().starts_with("anonymous subscriber"), "{who}");

    let log = heap(config(2, Policy::Overwrite)).expect("config");
    let mut p = log.publisher().expect("pub");
    let _sub = log.subscriber(StartAt::Tail).expect("sub");
    for i in 0..4u8 {
        p.try_send(1, &[i]).expect("never full");
    }
    assert_eq!(p.holding_back(), None);
}

/// A resumption and a drop of the same durable name racing: each paused
/// at its racy point (its slot's lock taken, the slot not yet changed),
/// the other side is refused, so exactly one wins.
#[test]
fn a_resume_and_a_drop_racing_have_exactly_one_winner() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    drop(log.durable_subscriber("s1", StartAt::Tail).expect("s1"));

    // The resumption holds the lock: the drop is refused, the resumption
    // wins.
    let refused = std::cell::Cell::new(None);
    let s1 = log
        .durable_subscriber_paused("s1", StartAt::Tail, &|| {
            refused.set(Some(log.drop_durable("s1")));
        })
        .expect("resumption wins");
    assert!(
        matches!(refused.take(), Some(Err(DropDurableError::InUse { .. }))),
        "the drop must lose"
    );
    let slot = s1.slot;
    assert_eq!(log.subscriber_state_for_test(slot), participant::LIVE);
    drop(s1);

    // The drop holds the lock: the resumption is refused, the drop wins.
    let refused = std::cell::Cell::new(None);
    log.drop_durable_paused("s1", &|| {
        refused.set(Some(
            log.durable_subscriber("s1", StartAt::Tail).map(|s| s.slot),
        ));
    })
    .expect("drop wins");
    assert_eq!(
        refused.take(),
        Some(Err(RegisterError::DurableInUse {
            name: "s1".to_owned()
        }))
    );
    assert_eq!(log.subscriber_state_for_test(slot), participant::FREE);
}

/// A durable subscriber whose process died attached (its slot still
/// `LIVE`, its lock gone, no reaper yet) is dropped like a detached one.
#[test]
fn a_dead_durable_subscriber_not_yet_reaped_can_be_dropped() {
    let log = heap(config(4, Policy::Backpressure)).expect("config");
    let s1 = log.durable_subscriber("s1", StartAt::Tail).expect("s1");
    let slot = s1.slot;
    s1.crash_for_test();
    assert_eq!(log.subscriber_state_for_test(slot), participant::LIVE);
    log.drop_durable("s1").expect("drop");
    assert_eq!(log.subscriber_state_for_test(slot), participant::FREE);
    assert_eq!(log.reap_for_test(), 0);
}
