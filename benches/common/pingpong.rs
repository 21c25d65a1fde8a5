//! What the two ping-pong latency benches (`spsc_latency`, threads in one
//! process, and `pingpong`, two processes) share: the two sides' traits,
//! the record, and the shmbus SPSC ring's pinger and echoer.

use shmbus::ring::spsc::{ClaimError, Consumer, Producer, RecvError};

use super::{expect_seq, seq_of, spin, stamp};

/// Payload bytes of every record.
pub const RECORD: usize = 64;

/// The record the pinger sends before it is stamped with a sequence number.
pub const TEMPLATE: [u8; RECORD] = [0xA5; RECORD];

/// The pinging side of a ping-pong.
pub trait Pinger {
    /// Sends record `seq` and waits until it comes back, checking it.
    fn round_trip(&mut self, seq: u64);
}

/// The echoing side of a ping-pong.
pub trait Echoer {
    /// Waits for one record, sends it back and returns its sequence number.
    fn echo(&mut self) -> u64;
}

/// Claims a [`RECORD`]-byte record on `tx`, spinning while the ring is
/// full, fills it with `fill` and commits it.
#[inline(always)]
pub fn spsc_send(tx: &mut Producer, fill: impl FnOnce(&mut [u8])) {
    loop {
        match tx.try_claim(RECORD) {
            Ok(mut slot) => {
                fill(&mut slot);
                slot.set_record_type(1);
                slot.commit();
                return;
            }
            Err(ClaimError::Full) => spin(),
            Err(e) => panic!("shmbus spsc claim failed: {e}"),
        }
    }
}

/// The pinger over two SPSC rings: sends on `tx`, waits on `rx`
/// (zero-copy claim/commit and read/release, busy-spinning).
pub struct SpscPinger {
    /// The ping ring's producer.
    pub tx: Producer,
    /// The pong ring's consumer.
    pub rx: Consumer,
}

/// The echoer over the same two rings.
pub struct SpscEchoer {
    /// The ping ring's consumer.
    pub rx: Consumer,
    /// The pong ring's producer.
    pub tx: Producer,
}

impl Pinger for SpscPinger {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        spsc_send(&mut self.tx, |p| {
            p.copy_from_slice(&TEMPLATE);
            stamp(p, seq);
        });
        loop {
            match self.rx.try_read() {
                Ok(rec) => {
                    expect_seq("shmbus spsc", &rec, seq);
                    return;
                }
                Err(RecvError::Empty) => spin(),
                Err(e) => panic!("shmbus spsc read failed: {e}"),
            }
        }
    }
}

impl Echoer for SpscEchoer {
    #[inline]
    fn echo(&mut self) -> u64 {
        loop {
            match self.rx.try_read() {
                Ok(rec) => {
                    spsc_send(&mut self.tx, |p| p.copy_from_slice(&rec));
                    // Dropping `rec` now returns its space, after the echo left.
                    return seq_of(&rec);
                }
                Err(RecvError::Empty) => spin(),
                Err(e) => panic!("shmbus spsc read failed: {e}"),
            }
        }
    }
}
