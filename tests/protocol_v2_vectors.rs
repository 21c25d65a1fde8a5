//! Golden vectors: the Protocol V2 messages in `tests/vectors/protocol_v2/`,
//! produced by the reference implementation, with their decoded fields and
//! the reference's verdicts in `vectors.json`.
//!
//! Every valid message must parse to exactly the recorded header and TLVs
//! and be rebuilt from those fields byte for byte. Every invalid message
//! must be rejected with the error kind listed in [`expected_rejection`];
//! where that differs from the reference verdict, the entry says why and
//! cites FORMAT.md. Expected values come from `vectors.json` (or, in the
//! rejection table, from the vector descriptions there), never from the
//! code under test.

use std::path::PathBuf;

use serde_json::Value;
use shmbus::record::{
    route, ArbitrageSignalTlv, Checksum, DomainTopic, Fixed8, Form, Instrument, MessageBuilder,
    MessageView, OrderBookTlv, OrderLevel, ParseError, ParseErrorKind, ParseOptions, QuoteTlv,
    RelayDomain, Side, SizeConstraint, SizePolicy, SourceType, TlvPayload, TlvType, TradeTlv,
    Verify,
};
use zerocopy::{FromBytes, IntoBytes};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/protocol_v2")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("vectors.json")).expect("vectors.json readable");
    serde_json::from_str(&text).expect("vectors.json is json")
}

fn vectors(m: &Value) -> &Vec<Value> {
    m["vectors"].as_array().expect("vectors array")
}

fn bytes_of(v: &Value) -> Vec<u8> {
    let file = v["file"].as_str().expect("file name");
    std::fs::read(dir().join(file)).expect("vector file readable")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is an unsigned integer"))
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The first error the reference reported (header checks run first), or
/// "Ok" if it accepted the message.
fn reference_verdict(v: &Value) -> String {
    let rv = &v["reference_verdict"];
    if let Some(e) = rv["parse_header"]["Err"].as_str() {
        return e.to_string();
    }
    if let Some(e) = rv["parse_tlv_extensions"]["Err"].as_str() {
        return e.to_string();
    }
    "Ok".to_string()
}

/// shmbus's name for each reference error kind (the reference calls a
/// fixed-size violation `PayloadSizeMismatch`).
fn same_kind(reference: &str, ours: &ParseErrorKind) -> bool {
    matches!(
        (reference, ours),
        ("MessageTooSmall", ParseErrorKind::MessageTooSmall { .. })
            | ("InvalidMagic", ParseErrorKind::InvalidMagic { .. })
            | ("ChecksumMismatch", ParseErrorKind::ChecksumMismatch { .. })
            | ("TruncatedTLV", ParseErrorKind::TruncatedTlv { .. })
            | (
                "InvalidExtendedTLV",
                ParseErrorKind::InvalidExtendedTlv { .. }
            )
            | (
                "PayloadSizeMismatch",
                ParseErrorKind::FixedSizeMismatch { .. }
            )
    )
}

struct Rejection {
    error: ParseError,
    /// `None`: same verdict as the reference. `Some(why)`: shmbus differs.
    differs: Option<&'static str>,
}

/// What shmbus says about each invalid vector under the default options
/// (`Verify::Strict`, `SizePolicy::Registry`). Numbers are the ones the
/// vector descriptions in vectors.json state.
fn expected_rejection(v: &Value) -> Rejection {
    let h = &v["header"];
    let same = |kind, offset| Rejection {
        error: ParseError { kind, offset },
        differs: None,
    };
    match s(v, "name") {
        "bad_magic" => same(ParseErrorKind::InvalidMagic { found: 0xCAFE_BABE }, 0),
        "truncated_header" => same(
            ParseErrorKind::MessageTooSmall {
                needed: 32,
                available: 20,
            },
            0,
        ),
        "payload_size_too_large" => Rejection {
            error: ParseError {
                kind: ParseErrorKind::PayloadSizeMismatch {
                    declared: 58,
                    actual: 42,
                },
                offset: 24,
            },
            differs: Some(
                "the reference never compares payload_size with the buffer and accepts this \
                 (FORMAT.md 8 and 9.2); shmbus requires payload_size == len - 32",
            ),
        },
        "message_truncated" => Rejection {
            error: ParseError {
                kind: ParseErrorKind::PayloadSizeMismatch {
                    declared: 42,
                    actual: 34,
                },
                offset: 24,
            },
            differs: Some(
                "both reject; the reference only notices through the checksum (ChecksumMismatch) \
                 because it ignores payload_size (FORMAT.md 9.2); shmbus checks payload_size first",
            ),
        },
        "truncated_tlv" => same(
            ParseErrorKind::TruncatedTlv {
                needed: 42,
                available: 22,
            },
            32,
        ),
        "extended_reserved_nonzero" => same(ParseErrorKind::InvalidExtendedTlv { found: 1 }, 33),
        "checksum_mismatch" | "checksum_zero_hotpath" => same(
            ParseErrorKind::ChecksumMismatch {
                stored: u(h, "checksum") as u32,
                computed: u(h, "checksum_computed") as u32,
            },
            28,
        ),
        "fixed_size_mismatch_trade39" => same(
            ParseErrorKind::FixedSizeMismatch {
                tlv_type: 1,
                expected: 40,
                actual: 39,
            },
            32,
        ),
        "quote_struct56" => same(
            ParseErrorKind::FixedSizeMismatch {
                tlv_type: 2,
                expected: 52,
                actual: 56,
            },
            32,
        ),
        "arbitrage_signal_170" => same(
            ParseErrorKind::FixedSizeMismatch {
                tlv_type: 32,
                expected: 168,
                actual: 170,
            },
            32,
        ),
        "trailing_byte" => same(
            ParseErrorKind::TruncatedTlv {
                needed: 2,
                available: 1,
            },
            74,
        ),
        "extended_header_truncated" => same(
            ParseErrorKind::TruncatedTlv {
                needed: 5,
                available: 3,
            },
            74,
        ),
        other => panic!("invalid vector {other} has no expected verdict: add one"),
    }
}

#[test]
fn files_and_manifest_agree() {
    let m = manifest();
    let mut listed: Vec<String> = vectors(&m)
        .iter()
        .map(|v| s(v, "file").to_string())
        .collect();
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .expect("vector dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    assert_eq!(listed.len(), 27);
    for v in vectors(&m) {
        let bytes = bytes_of(v);
        assert_eq!(bytes, unhex(s(v, "hex")), "{}", s(v, "name"));
        assert_eq!(bytes.len() as u64, u(v, "length"));
    }
}

#[test]
fn valid_vectors_parse_to_the_recorded_fields() {
    let m = manifest();
    let mut count = 0;
    for v in vectors(&m).iter().filter(|v| v["valid"] == true) {
        count += 1;
        let name = s(v, "name");
        let bytes = bytes_of(v);
        let msg = MessageView::parse(&bytes, ParseOptions::new(Verify::Strict))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let h = &v["header"];
        let hdr = msg.header();
        assert_eq!(u64::from(hdr.magic()), u(h, "magic"), "{name}");
        assert_eq!(u64::from(hdr.relay_domain), u(h, "relay_domain"), "{name}");
        assert_eq!(
            hdr.relay_domain().map(RelayDomain::name),
            Some(s(h, "relay_domain_name")),
            "{name}"
        );
        assert_eq!(u64::from(hdr.version), u(h, "version"), "{name}");
        assert_eq!(u64::from(hdr.source), u(h, "source"), "{name}");
        assert_eq!(
            hdr.source().map(SourceType::name),
            Some(s(h, "source_name")),
            "{name}"
        );
        assert_eq!(u64::from(hdr.flags), u(h, "flags"), "{name}");
        assert_eq!(hdr.sequence(), u(h, "sequence"), "{name}");
        assert_eq!(hdr.timestamp_ns(), u(h, "timestamp"), "{name}");
        assert_eq!(
            u64::from(hdr.payload_size()),
            u(h, "payload_size"),
            "{name}"
        );
        assert_eq!(u64::from(hdr.checksum()), u(h, "checksum"), "{name}");
        assert_eq!(
            u64::from(shmbus::record::message_checksum(&bytes)),
            u(h, "checksum_computed"),
            "{name}"
        );

        let expected = v["tlvs"].as_array().expect("tlvs");
        let got: Vec<_> = msg.tlvs().collect();
        assert_eq!(got.len(), expected.len(), "{name}: item count");
        assert_eq!(
            got.len() as u64,
            u(&v["reference_verdict"]["parse_tlv_extensions"], "Ok"),
            "{name}"
        );
        for (tlv, e) in got.iter().zip(expected) {
            assert_eq!(u64::from(tlv.tlv_type), u(e, "type"), "{name}");
            let form = match s(e, "format") {
                "standard" => Form::Standard,
                "extended" => Form::Extended,
                other => panic!("unknown form {other}"),
            };
            assert_eq!(tlv.form, form, "{name}");
            assert_eq!(tlv.offset as u64, u(e, "tlv_offset"), "{name}");
            assert_eq!(tlv.form.header_len() as u64, u(e, "header_size"), "{name}");
            assert_eq!(
                tlv.payload_offset() as u64,
                u(e, "payload_offset"),
                "{name}"
            );
            assert_eq!(tlv.payload.len() as u64, u(e, "length"), "{name}");
            assert_eq!(tlv.payload, &unhex(s(e, "payload_hex"))[..], "{name}");
            check_registry_entry(name, tlv.tlv_type, e);
        }
    }
    assert_eq!(count, 14);
}

/// The registry agrees with the constraint the reference recorded. Vendor
/// numbers 200-204 are named in shmbus's table (FORMAT.md 6 lists them)
/// but, as in the reference, carry no size rule.
fn check_registry_entry(name: &str, tlv_type: u8, e: &Value) {
    let ours = TlvType::from_u8(tlv_type);
    match e["registry_size_constraint"].as_str() {
        Some(constraint) => {
            let t = ours.unwrap_or_else(|| panic!("{name}: type {tlv_type} should be registered"));
            assert_eq!(t.name(), s(e, "type_name"), "{name}");
            let rendered = match t.size() {
                SizeConstraint::Fixed(n) => format!("Fixed({n})"),
                SizeConstraint::Variable => "Variable".to_string(),
                SizeConstraint::Bounded { min, max } => format!("Bounded({min}..{max})"),
            };
            assert_eq!(rendered, constraint, "{name}");
        }
        None => {
            assert_eq!(shmbus::record::fixed_size(tlv_type), None, "{name}");
            if s(e, "type_name").contains("vendor") {
                assert!((200..=254).contains(&tlv_type), "{name}");
                assert!(ours.map_or(true, TlvType::is_vendor), "{name}");
            } else {
                assert_eq!(ours, None, "{name}");
            }
        }
    }
}

/// Builds a message from the fields vectors.json records for it.
fn rebuild(v: &Value, force_forms: bool, buf: &mut [u8]) -> usize {
    let h = &v["header"];
    let mut b = MessageBuilder::new_raw(buf, u(h, "relay_domain") as u8, u(h, "source") as u8)
        .version(u(h, "version") as u8)
        .flags(u(h, "flags") as u8)
        .sequence(u(h, "sequence"))
        .timestamp_ns(u(h, "timestamp"));
    for e in v["tlvs"].as_array().expect("tlvs") {
        if force_forms {
            b = b.form(if s(e, "format") == "extended" {
                Form::Extended
            } else {
                Form::Standard
            });
        }
        b = b.tlv(u(e, "type") as u8, &unhex(s(e, "payload_hex")));
    }
    b.finish(Checksum::Compute)
        .unwrap_or_else(|e| panic!("{}: {e}", s(v, "name")))
}

#[test]
fn valid_vectors_rebuild_byte_for_byte() {
    let m = manifest();
    for v in vectors(&m).iter().filter(|v| v["valid"] == true) {
        let bytes = bytes_of(v);
        for force in [false, true] {
            let mut buf = vec![0u8; 4096];
            let len = rebuild(v, force, &mut buf);
            assert_eq!(
                &buf[..len],
                &bytes[..],
                "{} (forms forced: {force})",
                s(v, "name")
            );
        }
        // Exactly the right buffer is enough; one byte less is not.
        let mut exact = vec![0u8; bytes.len()];
        assert_eq!(rebuild(v, false, &mut exact), bytes.len());
    }
}

#[test]
fn invalid_vectors_are_rejected_with_the_expected_kind() {
    let m = manifest();
    let mut differing = Vec::new();
    for v in vectors(&m).iter().filter(|v| v["valid"] == false) {
        let name = s(v, "name");
        let expected = expected_rejection(v);
        let err = MessageView::parse(&bytes_of(v), ParseOptions::default())
            .map(|_| ())
            .expect_err(name);
        assert_eq!(err, expected.error, "{name}: {err}");
        let reference = reference_verdict(v);
        match expected.differs {
            None => assert!(
                same_kind(&reference, &err.kind),
                "{name}: table says same as reference, but reference said {reference}"
            ),
            Some(why) => {
                assert!(
                    !same_kind(&reference, &err.kind),
                    "{name}: marked as differing but agrees"
                );
                differing.push((name, reference, why));
            }
        }
    }
    // Exactly these two verdicts differ from the reference (FORMAT.md 9.2).
    let names: Vec<_> = differing.iter().map(|d| d.0).collect();
    assert_eq!(names, ["payload_size_too_large", "message_truncated"]);
    assert_eq!(differing[0].1, "Ok");
    assert_eq!(differing[1].1, "ChecksumMismatch");
}

#[test]
fn checksum_zero_is_accepted_only_when_asked() {
    // FORMAT.md 9.4: the reference parser rejects a 0 checksum, a reference
    // validator skips it. shmbus: Strict rejects, the other modes accept.
    let m = manifest();
    let v = vectors(&m)
        .iter()
        .find(|v| v["name"] == "checksum_zero_hotpath")
        .expect("vector");
    assert_eq!(u(&v["header"], "checksum"), 0);
    let bytes = bytes_of(v);
    for verify in [Verify::ZeroMeansUnchecked, Verify::Off] {
        let msg = MessageView::parse(&bytes, ParseOptions::new(verify)).expect("accepted");
        assert_eq!(msg.tlvs().count(), 1);
    }
    // A wrong nonzero checksum is caught by ZeroMeansUnchecked, not by Off.
    let bad = bytes_of(
        vectors(&m)
            .iter()
            .find(|v| v["name"] == "checksum_mismatch")
            .expect("vector"),
    );
    assert!(MessageView::parse(&bad, ParseOptions::new(Verify::ZeroMeansUnchecked)).is_err());
    assert!(MessageView::parse(&bad, ParseOptions::new(Verify::Off)).is_ok());
}

#[test]
fn legacy_struct_sizes_are_accepted_when_asked() {
    // FORMAT.md 9.3: the reference hot path sends 56-byte Quotes and
    // 170-byte ArbitrageSignals that its parser rejects.
    let m = manifest();
    let legacy = ParseOptions::default().with_size_policy(SizePolicy::LegacyStructs);
    for name in ["quote_struct56", "arbitrage_signal_170"] {
        let v = vectors(&m)
            .iter()
            .find(|v| v["name"] == name)
            .expect("vector");
        let bytes = bytes_of(v);
        let msg = MessageView::parse(&bytes, legacy).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tlv = msg.tlvs().next().expect("one item");
        let e = &v["tlvs"][0];
        assert_eq!(tlv.payload, &unhex(s(e, "payload_hex"))[..]);
        match name {
            "quote_struct56" => {
                let q = tlv.view::<QuoteTlv>().expect("quote reads 52 of 56 bytes");
                check_fields(name, &e["decoded"], |f| quote_field(q, f));
            }
            _ => {
                let a = tlv.view::<ArbitrageSignalTlv>().expect("170-byte signal");
                check_fields(name, &e["decoded"], |f| arbitrage_field(a, f));
                // And it can be built again, under the same policy only.
                let h = &v["header"];
                let mut buf = [0u8; 256];
                let len = MessageBuilder::new(
                    &mut buf,
                    RelayDomain::Signal,
                    SourceType::ArbitrageStrategy,
                )
                .sequence(u(h, "sequence"))
                .timestamp_ns(u(h, "timestamp"))
                .size_policy(SizePolicy::LegacyStructs)
                .typed(a)
                .finish(Checksum::Compute)
                .expect("legacy build");
                assert_eq!(&buf[..len], &bytes[..]);
                let refused = MessageBuilder::new(
                    &mut buf,
                    RelayDomain::Signal,
                    SourceType::ArbitrageStrategy,
                )
                .typed(a)
                .finish(Checksum::Compute);
                assert!(refused.is_err());
            }
        }
    }
}

#[test]
fn misaligned_buffers_parse_like_aligned_ones() {
    // FORMAT.md 2: the reference fails every message whose buffer is not
    // 8-aligned ("MessageTooSmall"); shmbus reads at any address.
    let m = manifest();
    for v in vectors(&m) {
        let name = s(v, "name");
        let bytes = bytes_of(v);
        if bytes.len() >= 32 {
            assert_eq!(
                v["reference_verdict"]["parse_header_on_misaligned_copy"]["Err"].as_str(),
                Some("MessageTooSmall"),
                "{name}"
            );
        }
        let aligned = MessageView::parse(&bytes, ParseOptions::default()).map(|m| m.tlvs().count());
        let mut storage = vec![0u64; bytes.len() / 8 + 2];
        let raw = storage.as_mut_bytes();
        for shift in 1..8 {
            raw[shift..shift + bytes.len()].copy_from_slice(&bytes);
            let shifted = &raw[shift..shift + bytes.len()];
            let got =
                MessageView::parse(shifted, ParseOptions::default()).map(|m| m.tlvs().count());
            assert_eq!(got, aligned, "{name} at +{shift}");
        }
    }
}

#[test]
fn valid_vectors_route_to_their_domain_topic() {
    let m = manifest();
    for v in vectors(&m).iter().filter(|v| v["valid"] == true) {
        let expected = match s(&v["header"], "relay_domain_name") {
            "MarketData" => DomainTopic::MarketData,
            "Signal" => DomainTopic::Signals,
            "Execution" => DomainTopic::Execution,
            "System" => DomainTopic::System,
            other => panic!("domain {other}"),
        };
        assert_eq!(route(&bytes_of(v)), Ok(expected), "{}", s(v, "name"));
    }
}

// ---- typed payloads -------------------------------------------------------

/// Compares every field the vector decodes with the typed accessor's value.
fn check_fields(name: &str, decoded: &Value, get: impl Fn(&str) -> Option<Value>) {
    let fields = decoded["fields"].as_array().expect("fields");
    assert!(!fields.is_empty());
    for f in fields {
        let field = s(f, "name");
        let Some(ours) = get(field) else {
            panic!("{name}: field {field} has no accessor");
        };
        let theirs = &f["value"];
        assert_eq!(&ours, theirs, "{name}.{field}");
    }
}

fn n(x: impl Into<i128>) -> Option<Value> {
    let x: i128 = x.into();
    Some(if x < 0 {
        Value::from(x as i64)
    } else {
        Value::from(x as u64)
    })
}

fn hex(b: &[u8]) -> Option<Value> {
    Some(Value::from(
        b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
    ))
}

fn trade_field(t: &TradeTlv, f: &str) -> Option<Value> {
    let i = t.instrument();
    match f {
        "asset_id" => n(i.asset_id),
        "price" => n(t.price().raw()),
        "volume" => n(t.volume().raw()),
        "execution_timestamp_ns" => n(t.execution_timestamp_ns()),
        "venue_id" => n(i.venue_id),
        "asset_type" => n(i.asset_type),
        "reserved" => n(i.reserved),
        "side" => t.side().and_then(|side| n(side as u8)),
        "_padding" => hex(&t.padding),
        _ => None,
    }
}

fn quote_field(q: &QuoteTlv, f: &str) -> Option<Value> {
    let i = q.instrument();
    match f {
        "asset_id" => n(i.asset_id),
        "bid_price" => n(q.bid_price().raw()),
        "bid_size" => n(q.bid_size().raw()),
        "ask_price" => n(q.ask_price().raw()),
        "ask_size" => n(q.ask_size().raw()),
        "quote_timestamp_ns" => n(q.quote_timestamp_ns()),
        "venue_id" => n(i.venue_id),
        "asset_type" => n(i.asset_type),
        "reserved" => n(i.reserved),
        // The trailing struct padding is not part of shmbus's 52-byte Quote.
        "_padding" => Some(Value::from("00000000")),
        _ => None,
    }
}

fn book_field(b: &OrderBookTlv, f: &str) -> Option<Value> {
    let i = b.instrument();
    match f {
        "snapshot_timestamp_ns" => n(b.snapshot_timestamp_ns()),
        "sequence" => n(b.sequence()),
        "precision_factor" => n(b.precision_factor()),
        "asset_id" => n(i.asset_id),
        "venue_id" => n(i.venue_id),
        "asset_type" => n(i.asset_type),
        "reserved" => n(i.reserved),
        "(implicit repr(C) padding)" => hex(&b.padding),
        _ => None,
    }
}

fn arbitrage_field(a: &ArbitrageSignalTlv, f: &str) -> Option<Value> {
    match f {
        "strategy_id" => n(a.strategy_id.get()),
        "signal_id" => n(a.signal_id.get()),
        "chain_id" => n(a.chain_id.get()),
        "source_pool" => hex(&a.source_pool),
        "target_pool" => hex(&a.target_pool),
        "source_venue" => n(a.source_venue.get()),
        "target_venue" => n(a.target_venue.get()),
        "token_in" => hex(&a.token_in),
        "token_out" => hex(&a.token_out),
        "expected_profit_usd_q8" => n(a.expected_profit_usd().raw()),
        "required_capital_usd_q8" => n(a.required_capital_usd().raw()),
        "spread_bps" => n(a.spread_bps.get()),
        "dex_fees_usd_q8" => n(a.dex_fees_usd_q8.get()),
        "gas_cost_usd_q8" => n(a.gas_cost_usd_q8.get()),
        "slippage_usd_q8" => n(a.slippage_usd_q8.get()),
        "net_profit_usd_q8" => n(a.net_profit_usd().raw()),
        "slippage_tolerance_bps" => n(a.slippage_tolerance_bps.get()),
        "max_gas_price_gwei" => n(a.max_gas_price_gwei.get()),
        "valid_until" => n(a.valid_until.get()),
        "priority" => n(a.priority.get()),
        "reserved" => hex(&a.reserved),
        "timestamp_ns" => n(a.timestamp_ns.get()),
        _ => None,
    }
}

fn field_value<'a>(decoded: &'a Value, name: &str) -> &'a Value {
    decoded["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == name)
        .map(|f| &f["value"])
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn fv_u(decoded: &Value, name: &str) -> u64 {
    field_value(decoded, name).as_u64().expect("unsigned")
}

fn fv_i(decoded: &Value, name: &str) -> i64 {
    field_value(decoded, name).as_i64().expect("signed")
}

fn instrument(decoded: &Value) -> Instrument {
    Instrument {
        asset_id: fv_u(decoded, "asset_id"),
        venue_id: fv_u(decoded, "venue_id") as u16,
        asset_type: fv_u(decoded, "asset_type") as u8,
        reserved: fv_u(decoded, "reserved") as u8,
    }
}

fn levels(side: &Value) -> Vec<OrderLevel> {
    side["levels_in_use"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            let get = |k: &str| {
                l["fields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .find(|f| f["name"] == k)
                    .map(|f| f["value"].as_i64().expect("int"))
                    .expect("field")
            };
            let level = OrderLevel::new(
                Fixed8::from_raw(get("price")),
                Fixed8::from_raw(get("size")),
                get("order_count") as u32,
            );
            assert_eq!(get("reserved"), 0);
            level
        })
        .collect()
}

#[test]
fn typed_payloads_read_and_write_the_recorded_fields() {
    let m = manifest();
    let mut seen = [0usize; 3];
    for v in vectors(&m).iter().filter(|v| v["valid"] == true) {
        let name = s(v, "name");
        let bytes = bytes_of(v);
        let msg = MessageView::parse(&bytes, ParseOptions::default()).expect("valid");
        for (tlv, e) in msg.tlvs().zip(v["tlvs"].as_array().expect("tlvs")) {
            let decoded = &e["decoded"];
            let Some(kind) = decoded["struct"].as_str() else {
                continue;
            };
            match kind {
                "TradeTLV" => {
                    seen[0] += 1;
                    let t = tlv.view::<TradeTlv>().expect("trade view");
                    check_fields(name, decoded, |f| trade_field(t, f));
                    let side = Side::try_from(fv_u(decoded, "side") as u8).expect("side");
                    let built = TradeTlv::new(
                        instrument(decoded),
                        Fixed8::from_raw(fv_i(decoded, "price")),
                        Fixed8::from_raw(fv_i(decoded, "volume")),
                        side,
                        fv_u(decoded, "execution_timestamp_ns"),
                    );
                    assert_eq!(built.as_bytes(), tlv.payload, "{name}");
                    assert_eq!(msg.first::<TradeTlv>(), Some(t));
                }
                "QuoteTLV" => {
                    seen[1] += 1;
                    let q = tlv.view::<QuoteTlv>().expect("quote view");
                    check_fields(name, decoded, |f| quote_field(q, f));
                    let built = QuoteTlv::new(
                        instrument(decoded),
                        Fixed8::from_raw(fv_i(decoded, "bid_price")),
                        Fixed8::from_raw(fv_i(decoded, "bid_size")),
                        Fixed8::from_raw(fv_i(decoded, "ask_price")),
                        Fixed8::from_raw(fv_i(decoded, "ask_size")),
                        fv_u(decoded, "quote_timestamp_ns"),
                    );
                    assert_eq!(built.as_bytes(), tlv.payload, "{name}");
                    assert_eq!(decoded["struct_size"].as_u64(), Some(56));
                }
                "OrderBookTLV" => {
                    seen[2] += 1;
                    let b = tlv.view::<OrderBookTlv>().expect("book view");
                    check_fields(name, decoded, |f| book_field(b, f));
                    let bids = levels(&decoded["bids"]);
                    let asks = levels(&decoded["asks"]);
                    assert_eq!(b.bids(), &bids[..]);
                    assert_eq!(b.asks(), &asks[..]);
                    assert_eq!(
                        b.bids.count.get() as u64,
                        u(&decoded["bids"]["count"], "value")
                    );
                    // Build the same book in place, from the recorded fields.
                    let h = &v["header"];
                    let mut buf = vec![0xA5u8; 4096];
                    let len = MessageBuilder::new(
                        &mut buf,
                        RelayDomain::MarketData,
                        SourceType::BinanceCollector,
                    )
                    .sequence(u(h, "sequence"))
                    .timestamp_ns(u(h, "timestamp"))
                    .typed_in_place(|book: &mut OrderBookTlv| {
                        book.snapshot_timestamp_ns
                            .set(fv_u(decoded, "snapshot_timestamp_ns"));
                        book.sequence.set(fv_u(decoded, "sequence"));
                        book.precision_factor.set(fv_i(decoded, "precision_factor"));
                        book.set_instrument(instrument(decoded));
                        for l in &bids {
                            book.bids.push(*l).expect("room");
                        }
                        for l in &asks {
                            book.asks.push(*l).expect("room");
                        }
                    })
                    .finish(Checksum::Compute)
                    .expect("book fits");
                    assert_eq!(&buf[..len], &bytes[..], "{name}");
                    // And from a copied value, through `typed`.
                    let copy = OrderBookTlv::read_from_bytes(tlv.payload).expect("2456 bytes");
                    assert_eq!(&copy, b);
                    let len = MessageBuilder::new(
                        &mut buf,
                        RelayDomain::MarketData,
                        SourceType::BinanceCollector,
                    )
                    .sequence(u(h, "sequence"))
                    .timestamp_ns(u(h, "timestamp"))
                    .typed(&copy)
                    .finish(Checksum::Compute)
                    .expect("book fits");
                    assert_eq!(&buf[..len], &bytes[..], "{name}");
                }
                other => panic!("{name}: unexpected struct {other}"),
            }
        }
    }
    // Trades in 4 valid vectors, quotes in 2, one book (counted in vectors.json).
    assert_eq!(seen, [4, 2, 1]);
}

#[test]
fn opaque_payload_types_match_the_registry_sizes_the_vectors_use() {
    let m = manifest();
    for (vector, payload_type, size) in [
        (
            "signal_identity_economics",
            TlvType::SignalIdentity,
            16usize,
        ),
        ("signal_identity_economics", TlvType::Economics, 32),
        ("exec_order_request", TlvType::OrderRequest, 32),
        ("system_heartbeat", TlvType::Heartbeat, 16),
    ] {
        let v = vectors(&m)
            .iter()
            .find(|v| v["name"] == vector)
            .expect("vector");
        let e = v["tlvs"]
            .as_array()
            .expect("tlvs")
            .iter()
            .find(|e| u(e, "type") == u64::from(payload_type.number()))
            .expect("item of that type");
        assert_eq!(u(e, "length") as usize, size);
        assert_eq!(s(e, "registry_size_constraint"), format!("Fixed({size})"));
        let bytes = bytes_of(v);
        let msg = MessageView::parse(&bytes, ParseOptions::default()).expect("valid");
        let tlv = msg.find(payload_type).expect("present");
        let ok = match payload_type {
            TlvType::SignalIdentity => view_len::<shmbus::record::SignalIdentityTlv>(&tlv),
            TlvType::Economics => view_len::<shmbus::record::EconomicsTlv>(&tlv),
            TlvType::OrderRequest => view_len::<shmbus::record::OrderRequestTlv>(&tlv),
            TlvType::Heartbeat => view_len::<shmbus::record::HeartbeatTlv>(&tlv),
            _ => None,
        };
        assert_eq!(ok, Some(size), "{vector}");
    }
}

fn view_len<T: TlvPayload>(tlv: &shmbus::record::Tlv<'_>) -> Option<usize> {
    tlv.view::<T>().map(|t| t.as_bytes().len())
}

#[test]
fn non_canonical_framing_follows_the_documented_rules() {
    // FORMAT.md 9.9: the reference accepts extended items of <= 255 bytes,
    // extended items of fixed-size types with any length, and inner type
    // 255. shmbus accepts the first (and rebuilds it with a forced form) and
    // rejects the other two. Built from md_trade's recorded payload.
    let m = manifest();
    let v = vectors(&m)
        .iter()
        .find(|v| v["name"] == "md_trade")
        .expect("vector");
    let golden = bytes_of(v);
    let payload = unhex(s(&v["tlvs"][0], "payload_hex"));
    let with_item = |item: &[u8]| {
        let mut msg = golden[..32].to_vec();
        msg[24..28].copy_from_slice(&(item.len() as u32).to_le_bytes());
        msg.extend_from_slice(item);
        msg
    };
    let opts = ParseOptions::new(Verify::Off);

    let mut extended = vec![255, 0, 1, 40, 0];
    extended.extend_from_slice(&payload);
    let msg = with_item(&extended);
    let view = MessageView::parse(&msg, opts).expect("extended trade of 40 bytes is accepted");
    let tlv = view.tlvs().next().expect("one item");
    assert_eq!(
        (tlv.tlv_type, tlv.form, tlv.payload),
        (1, Form::Extended, &payload[..])
    );
    let h = &v["header"];
    let mut buf = [0u8; 128];
    let len = MessageBuilder::new(
        &mut buf,
        RelayDomain::MarketData,
        SourceType::BinanceCollector,
    )
    .timestamp_ns(u(h, "timestamp"))
    .form(Form::Extended)
    .tlv(TlvType::Trade, &payload)
    .finish(Checksum::Zero)
    .expect("fits");
    assert_eq!(&buf[..28], &msg[..28]);
    assert_eq!(&buf[32..len], &msg[32..]);

    let mut short = vec![255, 0, 1, 39, 0];
    short.extend_from_slice(&payload[..39]);
    let err = MessageView::parse(&with_item(&short), opts)
        .map(|_| ())
        .expect_err("stricter");
    assert_eq!(
        err.kind,
        ParseErrorKind::FixedSizeMismatch {
            tlv_type: 1,
            expected: 40,
            actual: 39
        }
    );

    let err = MessageView::parse(&with_item(&[255, 0, 255, 1, 0, 7]), opts)
        .map(|_| ())
        .expect_err("stricter");
    assert_eq!(
        (err.kind, err.offset),
        (ParseErrorKind::InvalidExtendedTlv { found: 255 }, 34)
    );
}
