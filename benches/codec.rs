//! Protocol V2 codec throughput, in messages per second (elem/s).
//!
//! Builds and parses the two golden messages of the test vectors: a Trade
//! (74 bytes) and an order book (2493 bytes, extended form), each with the
//! checksum off (builder stores 0, parser `Verify::Off`) and on (builder
//! computes the CRC-32, parser `Verify::Strict`). A parse includes reading
//! one typed field, so the payload is really reached.
//!
//! The reference codec builds about 1.0 M and parses about 1.6 M messages/s.
//!
//! Run: `cargo bench --bench codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shmbus::record::{
    venue, Checksum, Fixed8, Instrument, MessageBuilder, MessageView, OrderBookTlv, OrderLevel,
    ParseOptions, RelayDomain, Side, SourceType, TradeTlv, Verify,
};
use zerocopy::FromZeros;

const T0: u64 = 1_700_000_000_123_456_789;

fn btc() -> Instrument {
    Instrument::coin(venue::BINANCE, "BTC").unwrap_or_default()
}

fn trade() -> TradeTlv {
    TradeTlv::new(
        btc(),
        Fixed8::from_raw(6_512_345_678_900),
        Fixed8::from_raw(12_500_000),
        Side::Buy,
        T0 - 1_000_000,
    )
}

fn book() -> OrderBookTlv {
    let mut book = OrderBookTlv::new_zeroed();
    book.set_instrument(btc());
    book.snapshot_timestamp_ns.set(T0 - 3_000_000);
    book.sequence.set(987_654);
    book.precision_factor.set(100_000_000);
    for i in 0..10i64 {
        let _ = book.bids.push(OrderLevel::new(
            Fixed8::from_raw(6_512_400_000_000 - i * 100_000_000),
            Fixed8::from_raw(10_000_000 * (i + 1)),
            1 + i as u32,
        ));
        let _ = book.asks.push(OrderLevel::new(
            Fixed8::from_raw(6_512_500_000_000 + i * 100_000_000),
            Fixed8::from_raw(40_000_000 + i),
            2 + i as u32,
        ));
    }
    book
}

const MODES: [(&str, Checksum, Verify); 2] = [
    ("checksum_off", Checksum::Zero, Verify::Off),
    ("checksum_on", Checksum::Compute, Verify::Strict),
];

fn trade_message(checksum: Checksum) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let len = MessageBuilder::new(
        &mut buf,
        RelayDomain::MarketData,
        SourceType::BinanceCollector,
    )
    .timestamp_ns(T0)
    .typed(&trade())
    .finish(checksum)
    .unwrap_or_default();
    buf.truncate(len);
    buf
}

fn book_message(book: &OrderBookTlv, checksum: Checksum) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let len = MessageBuilder::new(
        &mut buf,
        RelayDomain::MarketData,
        SourceType::BinanceCollector,
    )
    .sequence(3)
    .timestamp_ns(T0)
    .typed(book)
    .finish(checksum)
    .unwrap_or_default();
    buf.truncate(len);
    buf
}

fn bench_trade(c: &mut Criterion) {
    let mut g = c.benchmark_group("trade_74B");
    g.throughput(Throughput::Elements(1));
    let trade = trade();
    for (name, checksum, verify) in MODES {
        let mut buf = [0u8; 128];
        let mut seq = 0u64;
        g.bench_function(format!("build/{name}"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let len = MessageBuilder::new(
                    &mut buf,
                    RelayDomain::MarketData,
                    SourceType::BinanceCollector,
                )
                .sequence(black_box(seq))
                .timestamp_ns(black_box(T0))
                .typed(black_box(&trade))
                .finish(checksum);
                black_box(len)
            })
        });
        let msg = trade_message(checksum);
        assert_eq!(msg.len(), 74);
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| {
                let view = MessageView::parse(black_box(&msg), ParseOptions::new(verify));
                black_box(
                    view.ok()
                        .and_then(|v| v.first::<TradeTlv>())
                        .map(|t| t.price()),
                )
            })
        });
    }
    g.finish();
}

fn bench_book(c: &mut Criterion) {
    let mut g = c.benchmark_group("orderbook_2493B");
    g.throughput(Throughput::Elements(1));
    let book = book();
    for (name, checksum, verify) in MODES {
        let mut buf = vec![0u8; 4096];
        g.bench_function(format!("build/{name}"), |b| {
            b.iter(|| {
                let len = MessageBuilder::new(
                    &mut buf,
                    RelayDomain::MarketData,
                    SourceType::BinanceCollector,
                )
                .sequence(3)
                .timestamp_ns(black_box(T0))
                .typed(black_box(&book))
                .finish(checksum);
                black_box(len)
            })
        });
        let msg = book_message(&book, checksum);
        assert_eq!(msg.len(), 2493);
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| {
                let view = MessageView::parse(black_box(&msg), ParseOptions::new(verify));
                black_box(
                    view.ok()
                        .and_then(|v| v.first::<OrderBookTlv>())
                        .and_then(|b| b.bids().first().map(OrderLevel::price)),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_trade, bench_book);
criterion_main!(benches);
