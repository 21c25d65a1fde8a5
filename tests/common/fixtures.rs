//! Channels, topics and queues with known contents, and a way to corrupt
//! their files: what the inspector's tests (`tests/inspect.rs`) and
//! ring-dump's (`tools/ring-dump/tests/cli.rs`, which includes this file by
//! path) look at.

// Each includer uses a different subset.
#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use shmbus::bus::{Bus, Channel, Policy, QueueConfig, SpscConfig, TopicConfig};
use shmbus::record::{
    venue, Checksum, Fixed8, Instrument, MessageBuilder, RelayDomain, Side, SourceType, TradeTlv,
};

/// A channel `name` of 4096 bytes holding three known records, the first
/// of which has been consumed: head 16, records at 16 and 32, tail 56.
pub fn ring_with_records(bus: &Bus, name: &str) -> Channel {
    let channel = bus
        .spsc(name, &SpscConfig::with_capacity(4096))
        .expect("create");
    let mut tx = channel.producer().expect("producer");
    tx.try_send(1, b"skip").expect("send"); // frame 16 at 0
    tx.try_send(7, &[0xde, 0xad, 0xbe, 0xef]).expect("send"); // frame 16 at 16
    tx.try_send(42, b"BUY 100 @ 42.5").expect("send"); // frame 24 at 32
    let mut rx = channel.consumer().expect("consumer");
    assert_eq!(&rx.try_read().expect("first")[..], b"skip");
    channel
}

/// Writes `bytes` at `offset` of the segment file `path`.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open ring file for writing");
    f.write_all_at(bytes, offset).expect("write");
}

/// A topic of `slots` slots of at most 128 payload bytes, for 4 subscribers
/// and 2 publishers, claims reclaimed after a second.
pub fn topic_config(policy: Policy, slots: u32) -> TopicConfig {
    TopicConfig {
        slots,
        max_payload: 128,
        policy,
        max_subscribers: 4,
        max_publishers: 2,
        reclaim_after: Duration::from_secs(1),
    }
}

/// A work queue of `slots` slots of at most 128 payload bytes, for 3
/// producers and 3 consumers, claims reclaimed after `reclaim_after`.
pub fn queue_config(slots: u32, reclaim_after: Duration) -> QueueConfig {
    QueueConfig {
        slots,
        max_payload: 128,
        max_producers: 3,
        max_consumers: 3,
        reclaim_after,
    }
}

/// Protocol V2 market-data message carrying one trade, sender sequence `seq`.
pub fn trade(seq: u64) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
    let len = MessageBuilder::new(
        &mut buf,
        RelayDomain::MarketData,
        SourceType::BinanceCollector,
    )
    .sequence(seq)
    .timestamp_ns(1_700_000_000_000_000_000 + seq)
    .typed(&TradeTlv::new(
        btc,
        Fixed8::from_raw(6_500_000_000_000 + seq as i64),
        Fixed8::from_raw(12_500_000),
        Side::Buy,
        seq,
    ))
    .finish(Checksum::Compute)
    .expect("message fits");
    buf[..len].to_vec()
}
