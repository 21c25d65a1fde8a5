//! Protocol V2 between C and Rust, byte for byte: messages built by the
//! Rust builder (every typed payload, both TLV forms, with and without a
//! CRC) and the project's golden vectors are parsed by the C API
//! (`tests/c/v2_roundtrip.c`), which prints what it decodes and builds
//! each message again with the C builder. The C program's lines must be
//! the Rust parser's, field for field, and its messages the inputs, byte
//! for byte; the Rust parser reads what C built.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{compile, run_ok, source, Lang, TempDir};
use shmbus::record::{
    venue, ArbitrageSignalTlv, Checksum, Fixed8, Form, GasPriceTlv, HeartbeatTlv, Instrument,
    MessageBuilder, MessageView, OrderBookTlv, OrderLevel, ParseOptions, QuoteTlv, RelayDomain,
    Side, SizePolicy, SourceType, TradeTlv, Verify,
};
use zerocopy::FromZeros;

const OPTIONS: ParseOptions =
    ParseOptions::new(Verify::ZeroMeansUnchecked).with_size_policy(SizePolicy::LegacyStructs);

/// Messages made with the Rust builder, by file name.
fn rust_built() -> Vec<(&'static str, Vec<u8>)> {
    let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
    let eth = Instrument::coin(venue::KRAKEN, "ETH").expect("ticker");
    let trade = TradeTlv::new(
        btc,
        Fixed8::from_raw(6_512_345_678_900),
        Fixed8::from_raw(12_500_000),
        Side::Sell,
        1_700_000_000_122_456_789,
    );
    let quote = QuoteTlv::new(
        eth,
        Fixed8::from_raw(350_025_000_000),
        Fixed8::from_raw(150_000_000),
        Fixed8::from_raw(350_050_000_000),
        Fixed8::from_raw(75_000_000),
        1_700_000_000_121_456_789,
    );
    let mut gas = GasPriceTlv::new_zeroed();
    gas.block_number.set(19_000_001);
    gas.timestamp_ns.set(1_700_000_000_000_000_007);
    gas.gas_price_gwei.set(31);
    gas.base_fee_gwei.set(29);
    gas.priority_fee_gwei.set(2);
    gas.venue.set(venue::POLYGON);
    let mut arb = ArbitrageSignalTlv::new_zeroed();
    arb.strategy_id.set(21);
    arb.signal_id.set(77);
    arb.chain_id.set(137);
    arb.spread_bps.set(150);
    arb.net_profit_usd_q8.set(1_050_000_000);
    arb.timestamp_ns.set(1_700_000_000_116_456_789);
    let vendor: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let heartbeat = HeartbeatTlv::new([9; 16]);

    let build = |domain, source, f: &dyn Fn(MessageBuilder<'_>) -> MessageBuilder<'_>, crc| {
        let mut buf = vec![0u8; 8192];
        let b = MessageBuilder::new(&mut buf, domain, source)
            .sequence(42)
            .timestamp_ns(1_700_000_000_123_456_789);
        let len = f(b).finish(crc).expect("build");
        buf.truncate(len);
        buf
    };
    use RelayDomain::{MarketData, Signal, System};
    use SourceType::{ArbitrageStrategy, BinanceCollector, Dashboard, KrakenCollector};
    vec![
        (
            "rs_trade.bin",
            build(
                MarketData,
                BinanceCollector,
                &|b| b.typed(&trade),
                Checksum::Compute,
            ),
        ),
        (
            "rs_quote_zero_crc.bin",
            build(
                MarketData,
                KrakenCollector,
                &|b| b.typed(&quote),
                Checksum::Zero,
            ),
        ),
        (
            "rs_trade_quote_gas.bin",
            build(
                MarketData,
                BinanceCollector,
                &|b| b.typed(&trade).typed(&quote).typed(&gas),
                Checksum::Compute,
            ),
        ),
        (
            "rs_book.bin",
            build(
                MarketData,
                BinanceCollector,
                &|b| {
                    b.typed_in_place(|book: &mut OrderBookTlv| {
                        book.set_instrument(btc);
                        book.precision_factor.set(100_000_000);
                        book.sequence.set(9);
                        for i in 0..3 {
                            let level = OrderLevel::new(
                                Fixed8::from_raw(100 - i),
                                Fixed8::from_raw(5 + i),
                                1 + i as u32,
                            );
                            book.bids.push(level).expect("room");
                        }
                        book.asks
                            .push(OrderLevel::new(
                                Fixed8::from_raw(101),
                                Fixed8::from_raw(4),
                                2,
                            ))
                            .expect("room");
                    })
                },
                Checksum::Compute,
            ),
        ),
        (
            "rs_arb_legacy.bin",
            build(
                Signal,
                ArbitrageStrategy,
                &|b| b.size_policy(SizePolicy::LegacyStructs).typed(&arb),
                Checksum::Compute,
            ),
        ),
        (
            "rs_vendor_and_heartbeat.bin",
            build(
                System,
                Dashboard,
                &|b| {
                    b.tlv(250u8, &vendor)
                        .typed(&heartbeat)
                        .form(Form::Extended)
                        .tlv(201u8, &[1, 2, 3])
                },
                Checksum::Zero,
            ),
        ),
        (
            "rs_empty.bin",
            build(System, Dashboard, &|b| b, Checksum::Compute),
        ),
    ]
}

/// What `v2_roundtrip.c` prints for a message, from the Rust parser.
fn expected_lines(name: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    let Ok(msg) = MessageView::parse(bytes, OPTIONS) else {
        writeln!(out, "{name} reject").expect("a String takes any write");
        return out;
    };
    let h = msg.header();
    writeln!(
        out,
        "{name} header {} {} {} {} {} {} {} {}",
        h.relay_domain,
        h.version,
        h.source,
        h.flags,
        h.sequence(),
        h.timestamp_ns(),
        h.payload_size(),
        h.checksum()
    )
    .expect("a String takes any write");
    for t in msg.tlvs() {
        let form = u8::from(t.form == Form::Extended);
        writeln!(
            out,
            "{name} tlv {} {form} {} {}",
            t.tlv_type,
            t.offset,
            t.payload.len()
        )
        .expect("a String takes any write");
        if let Some(x) = t.view::<TradeTlv>() {
            writeln!(
                out,
                "{name} trade {} {} {} {} {} {} {}",
                x.asset_id.get(),
                x.price.get(),
                x.volume.get(),
                x.execution_timestamp_ns.get(),
                x.venue_id.get(),
                x.asset_type,
                x.side
            )
            .expect("a String takes any write");
        } else if let Some(x) = t.view::<QuoteTlv>() {
            writeln!(
                out,
                "{name} quote {} {} {} {} {} {} {}",
                x.asset_id.get(),
                x.bid_price.get(),
                x.bid_size.get(),
                x.ask_price.get(),
                x.ask_size.get(),
                x.quote_timestamp_ns.get(),
                x.venue_id.get()
            )
            .expect("a String takes any write");
        } else if let Some(x) = t.view::<GasPriceTlv>() {
            writeln!(
                out,
                "{name} gas {} {} {} {} {} {}",
                x.block_number.get(),
                x.timestamp_ns.get(),
                x.gas_price_gwei.get(),
                x.base_fee_gwei.get(),
                x.priority_fee_gwei.get(),
                x.venue.get()
            )
            .expect("a String takes any write");
        } else if let Some(x) = t.view::<ArbitrageSignalTlv>() {
            writeln!(
                out,
                "{name} arb {} {} {} {} {} {}",
                x.strategy_id.get(),
                x.signal_id.get(),
                x.chain_id.get(),
                x.spread_bps.get(),
                x.net_profit_usd_q8.get(),
                x.timestamp_ns.get()
            )
            .expect("a String takes any write");
        } else if let Some(x) = t.view::<OrderBookTlv>() {
            write!(
                out,
                "{name} book {} {} {} {} {} {} {}",
                x.snapshot_timestamp_ns.get(),
                x.sequence.get(),
                x.precision_factor.get(),
                x.asset_id.get(),
                x.venue_id.get(),
                x.bids.count.get(),
                x.asks.count.get()
            )
            .expect("a String takes any write");
            match x.bids().first() {
                Some(l) => writeln!(
                    out,
                    " {} {} {}",
                    l.price.get(),
                    l.size.get(),
                    l.order_count.get()
                )
                .expect("a String takes any write"),
                None => writeln!(out, " -").expect("a String takes any write"),
            }
        }
    }
    out
}

fn golden_vectors() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/protocol_v2");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the golden vectors")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(
        files.len() > 20,
        "golden vectors missing in {}",
        dir.display()
    );
    files
}

#[test]
fn messages_cross_between_c_and_rust_byte_for_byte() {
    let exe = compile("v2_roundtrip", Lang::C, &[source("v2_roundtrip.c")], &[]);
    let inputs = TempDir::new("v2-in");
    let outputs = TempDir::new("v2-out");
    let mut files = Vec::new();
    for (name, bytes) in rust_built() {
        let path = inputs.0.join(name);
        std::fs::write(&path, bytes).expect("write a message");
        files.push(path);
    }
    files.extend(golden_vectors());

    let output = run_ok(Command::new(&exe).arg(&outputs.0).args(&files));
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let mut expected = String::new();
    let mut accepted = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a file name");
        let bytes = std::fs::read(path).expect("read a message");
        expected.push_str(&expected_lines(name, &bytes));
        if MessageView::parse(&bytes, OPTIONS).is_ok() {
            accepted += 1;
            let built = std::fs::read(outputs.0.join(name)).expect("the C program wrote it");
            assert!(
                built == bytes,
                "{name}: the C builder's bytes differ from the input"
            );
            MessageView::parse(&built, OPTIONS).expect("Rust parses what C built");
        }
    }
    assert!(accepted >= 15, "only {accepted} messages accepted");
    assert!(
        expected.contains(" trade ") && expected.contains(" book ") && expected.contains(" arb ")
    );
    for (c, rust) in printed.lines().zip(expected.lines()) {
        assert_eq!(c, rust, "the C decode differs from the Rust one");
    }
    assert_eq!(printed.lines().count(), expected.lines().count());
}
