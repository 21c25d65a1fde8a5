//! `ring-dump tail NAME [--follow]`: the last records of a topic, an SPSC
//! channel or a work queue, decoded as Protocol V2 (header, TLV items and
//! the typed fields of Trade, Quote, OrderBook, GasPrice and
//! ArbitrageSignal; hex for anything else), oldest first; with `--follow`,
//! then every record as it arrives until SIGINT or SIGTERM.
//!
//! The reading is [`shmbus::inspect::Follower`]'s: a read-only mapping
//! and a position kept in this process, so following never registers,
//! never gates a publisher, never takes a queue's record. Records the ring
//! reused before they were read are reported as one "missed" line (or
//! JSON object) per gap. With `--json`, one JSON object per line: one per
//! record (`"event": "record"`) and one per gap (`"event": "missed"`).
//!
//! The stop flag for SIGINT and SIGTERM, which `record` and `replay` use
//! too, lives here.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};
use shmbus::inspect::{Followed, FollowedRecord, Follower, MissCause, Missed};
use shmbus::record::{
    venue, ArbitrageSignalTlv, Fixed8, GasPriceTlv, Instrument, MessageView, OrderBookTlv,
    OrderLevel, ParseOptions, QuoteTlv, RelayDomain, Side, SizePolicy, SourceType, Tlv, TlvType,
    TradeTlv, Verify,
};
use shmbus::segment::OpenOptions;
use shmbus::{Namespace, RingKind};

use crate::render::{hex_dump, utc_timestamp};
use crate::{find_ring, Args, Failure, Output};

// ---------------------------------------------------------------------------
// Stopping on SIGINT / SIGTERM
// ---------------------------------------------------------------------------

/// Set by the SIGINT / SIGTERM handler.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set the stop flag instead of killing the
/// process, so that a following command ends cleanly (exit 0, output
/// flushed, a recording complete).
pub(crate) fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid starting value; the handler only stores to an
        // atomic (async-signal-safe); SA_RESTART restarts the writes a signal interrupts.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether SIGINT or SIGTERM arrived since [`stop_on_signals`].
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// How a follower waits while its ring has nothing new: a few short
/// sleeps first, then sleeps of at most a millisecond (the resolution of
/// a recording's receive times).
pub(crate) struct Idle {
    rounds: u32,
}

impl Idle {
    pub(crate) fn new() -> Self {
        Idle { rounds: 0 }
    }

    /// Something arrived: the next waits start short again.
    pub(crate) fn reset(&mut self) {
        self.rounds = 0;
    }

    pub(crate) fn wait(&mut self) {
        self.rounds = self.rounds.saturating_add(1);
        let micros = if self.rounds < 64 { 50 } else { 1000 };
        std::thread::sleep(Duration::from_micros(micros));
    }
}

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

/// The noun of a ring kind in the header line.
fn kind_noun(kind: RingKind) -> &'static str {
    match kind {
        RingKind::Broadcast => "topic",
        RingKind::Spsc => "channel",
        RingKind::Queue => "queue",
        _ => "ring",
    }
}

/// Writes `text` and flushes; false once stdout is closed
/// (`ring-dump tail ... | head`), which ends the command quietly.
fn emit(out: &mut impl Write, text: &str) -> bool {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// `ring-dump tail NAME [--follow]`.
pub(crate) fn run(
    args: &Args,
    ns: &Namespace,
    name: &str,
    follow: bool,
) -> Result<Output, Failure> {
    let opts = OpenOptions::default();
    let record = find_ring(ns, name, &opts)?;
    let mut follower = Follower::open(ns, record, &opts)?;
    follower.rewind(args.records)?;
    if follow {
        stop_on_signals();
    }
    let end = follower.end()?;
    let mut out = io::stdout();
    if !args.json {
        let header = format!(
            "{} {}/{}: last {} record{}, oldest first{}\n",
            kind_noun(follower.kind()),
            ns.name(),
            name,
            args.records,
            if args.records == 1 { "" } else { "s" },
            if follow {
                ", then new ones as they arrive (Ctrl-C stops)"
            } else {
                ""
            }
        );
        if !emit(&mut out, &header) {
            return Ok(quiet());
        }
    }
    let mut idle = Idle::new();
    loop {
        if follow && stop_requested() {
            break;
        }
        if !follow && follower.position() >= end {
            break;
        }
        match follower.poll() {
            Ok(Some(event)) => {
                idle.reset();
                let text = render_event(args, &follower, &event);
                if !emit(&mut out, &text) {
                    break;
                }
            }
            Ok(None) => idle.wait(),
            Err(e) => {
                return Ok(Output {
                    stdout: String::new(),
                    failure: Some(Failure::from(e)),
                })
            }
        }
    }
    Ok(quiet())
}

/// Nothing more to print, no failure.
fn quiet() -> Output {
    Output {
        stdout: String::new(),
        failure: None,
    }
}

/// The first fields of every JSON line: what it is and which ring.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    event: &'static str,
    kind: &'static str,
    name: &'a str,
    #[serde(flatten)]
    rest: T,
}

/// A gap as JSON: positions `from .. to`, how many records (`null` for a
/// channel, whose positions count bytes) or bytes (channels only), why.
#[derive(Serialize)]
struct MissedJson {
    from: u64,
    to: u64,
    records: Option<u64>,
    bytes: Option<u64>,
    cause: &'static str,
}

/// One event as text, or as one JSON line.
pub(crate) fn render_event(args: &Args, follower: &Follower, event: &Followed) -> String {
    let bytes = follower.positions_are_bytes();
    let kind = follower.kind().name();
    let name = follower.record().name.as_str();
    match (event, args.json) {
        (Followed::Record(r), false) => record_text(r, bytes, follower.kind(), args.hex_bytes),
        (Followed::Record(r), true) => line(&Line {
            event: "record",
            kind,
            name,
            rest: record_json(r, args.hex_bytes),
        }),
        (Followed::Missed(m), false) => missed_text(m),
        (Followed::Missed(m), true) => line(&Line {
            event: "missed",
            kind,
            name,
            rest: MissedJson {
                from: m.from,
                to: m.to,
                records: m.records,
                bytes: bytes.then(|| m.to - m.from),
                cause: m.cause.name(),
            },
        }),
    }
}

/// `value` as one line of JSON with its newline.
fn line(value: &impl Serialize) -> String {
    // Structs of strings, numbers and JSON values, which serde_json always
    // writes.
    let mut s = serde_json::to_string(value)
        .unwrap_or_else(|e| unreachable!("a ring-dump JSON line failed to serialize: {e}"));
    s.push('\n');
    s
}

/// The line of a gap.
pub(crate) fn missed_text(m: &Missed) -> String {
    let why = match m.cause {
        MissCause::Overwritten => "overwritten by publishers before they were read",
        MissCause::Consumed => "consumed before they were read",
        MissCause::Reclaimed => "its claim was reclaimed: never published",
        MissCause::Abandoned => "its claim was never resolved: passed over",
    };
    match m.records {
        Some(n) => format!(
            "missed {n} record{} (seq {}..{}): {why}\n",
            if n == 1 { "" } else { "s" },
            m.from,
            m.to
        ),
        None => format!(
            "missed {} bytes of records (position {}..{}): {why}\n",
            m.to - m.from,
            m.from,
            m.to
        ),
    }
}

/// A record as text: its position line, then its Protocol V2 decoding or
/// its first `hex_bytes` bytes in hex.
fn record_text(r: &FollowedRecord, bytes: bool, kind: RingKind, hex_bytes: usize) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{} {}  type {}",
        if bytes { "position" } else { "seq" },
        r.position,
        r.record_type
    );
    if kind == RingKind::Spsc {
        let _ = write!(o, "  flags {:#06x}", r.flags);
    }
    let _ = write!(o, "  len {}", r.payload.len());
    if r.redelivered {
        o.push_str("  redelivered");
    }
    o.push('\n');
    match parse_v2(&r.payload) {
        Ok(msg) => v2_text(&mut o, &msg, hex_bytes),
        Err(e) => {
            let _ = writeln!(o, "    not Protocol V2 ({e}); hex:");
            hex_limited(&mut o, &r.payload, hex_bytes);
        }
    }
    o
}

fn hex_limited(o: &mut String, bytes: &[u8], hex_bytes: usize) {
    hex_dump(o, &bytes[..bytes.len().min(hex_bytes)]);
    if bytes.len() > hex_bytes {
        let _ = writeln!(
            o,
            "    ... {} more bytes (raise --hex-bytes)",
            bytes.len() - hex_bytes
        );
    }
}

/// A record as a JSON object: position, type, flags, length, and the
/// Protocol V2 decoding (`v2`, `null` if none, with why in `v2_error` and
/// the first `hex_bytes` bytes in `hex`).
fn record_json(r: &FollowedRecord, hex_bytes: usize) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("position".into(), r.position.into());
    v.insert("type".into(), r.record_type.into());
    v.insert("flags".into(), r.flags.into());
    v.insert("len".into(), r.payload.len().into());
    v.insert("redelivered".into(), r.redelivered.into());
    match parse_v2(&r.payload) {
        Ok(msg) => {
            v.insert("v2".into(), v2_json(&msg, hex_bytes));
        }
        Err(e) => {
            v.insert("v2".into(), Value::Null);
            v.insert("v2_error".into(), e.to_string().into());
            let shown = &r.payload[..r.payload.len().min(hex_bytes)];
            v.insert("hex".into(), hex_string(shown).into());
            v.insert("truncated".into(), (shown.len() < r.payload.len()).into());
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Protocol V2, decoded down to the typed fields
// ---------------------------------------------------------------------------

/// Parses a payload as one Protocol V2 message. The checksum is not
/// verified (hot-path producers store 0), and the legacy struct sizes are
/// accepted (56-byte Quotes, 170-byte ArbitrageSignals), as reference
/// producers send them.
fn parse_v2(payload: &[u8]) -> Result<MessageView<'_>, shmbus::record::ParseError> {
    MessageView::parse(
        payload,
        ParseOptions::new(Verify::Off).with_size_policy(SizePolicy::LegacyStructs),
    )
}

/// A typed field's value.
enum Field {
    Int(i128),
    Text(String),
    /// A fixed-point amount with 8 decimals: exact, as a string in JSON.
    Amount(Fixed8),
    /// Nanoseconds since the Unix epoch: a number in JSON, a date in text.
    Time(u64),
    /// Bytes (addresses): hex in both.
    Bytes(Vec<u8>),
    /// Book levels: an array of objects in JSON, a count and the best in
    /// text.
    Levels(Vec<OrderLevel>),
}

impl Field {
    fn json(&self) -> Value {
        match self {
            // Every integer field fits an i64 or a u64.
            Field::Int(n) => match (i64::try_from(*n), u64::try_from(*n)) {
                (Ok(i), _) => i.into(),
                (_, Ok(u)) => u.into(),
                _ => n.to_string().into(),
            },
            Field::Text(s) => s.clone().into(),
            Field::Amount(a) => a.to_string().into(),
            Field::Time(ns) => (*ns).into(),
            Field::Bytes(b) => hex_string(b).into(),
            Field::Levels(levels) => levels
                .iter()
                .map(|l| {
                    json!({
                        "price": l.price().to_string(),
                        "size": l.size().to_string(),
                        "orders": l.order_count(),
                    })
                })
                .collect(),
        }
    }

    fn text(&self) -> String {
        match self {
            Field::Int(n) => n.to_string(),
            Field::Text(s) => s.clone(),
            Field::Amount(a) => a.to_string(),
            Field::Time(ns) => utc_timestamp(*ns),
            Field::Bytes(b) => format!("0x{}", hex_string(b)),
            Field::Levels(levels) => match levels.first() {
                Some(best) => format!("{} (best {} x {})", levels.len(), best.price(), best.size()),
                None => "0".to_owned(),
            },
        }
    }
}

type Fields = Vec<(&'static str, Field)>;

fn int(n: impl Into<i128>) -> Field {
    Field::Int(n.into())
}

fn venue_name(id: u16) -> Option<&'static str> {
    match id {
        venue::BINANCE => Some("Binance"),
        venue::KRAKEN => Some("Kraken"),
        venue::COINBASE => Some("Coinbase"),
        venue::POLYGON => Some("Polygon"),
        _ => None,
    }
}

fn venue_field(id: u16) -> Field {
    match venue_name(id) {
        Some(name) => Field::Text(format!("{name} ({id})")),
        None => int(id),
    }
}

fn instrument_fields(f: &mut Fields, i: Instrument) {
    f.push((
        "instrument",
        match i.ticker() {
            Some(t) => Field::Text(t.to_string()),
            None => Field::Text(format!("{:#018x}", i.asset_id)),
        },
    ));
    f.push(("asset_id", int(i.asset_id)));
    f.push(("venue", venue_field(i.venue_id)));
    f.push(("asset_type", int(i.asset_type)));
}

/// The typed fields of the payload types ring-dump knows; `None` for
/// others (shown in hex).
fn typed_fields(tlv: &Tlv<'_>) -> Option<Fields> {
    let mut f: Fields = Vec::new();
    if let Some(t) = tlv.view::<TradeTlv>() {
        instrument_fields(&mut f, t.instrument());
        f.push(("price", Field::Amount(t.price())));
        f.push(("volume", Field::Amount(t.volume())));
        f.push((
            "side",
            match t.side() {
                Some(Side::Buy) => Field::Text("buy".into()),
                Some(Side::Sell) => Field::Text("sell".into()),
                None => int(t.side),
            },
        ));
        f.push(("executed", Field::Time(t.execution_timestamp_ns())));
    } else if let Some(q) = tlv.view::<QuoteTlv>() {
        instrument_fields(&mut f, q.instrument());
        f.push(("bid_price", Field::Amount(q.bid_price())));
        f.push(("bid_size", Field::Amount(q.bid_size())));
        f.push(("ask_price", Field::Amount(q.ask_price())));
        f.push(("ask_size", Field::Amount(q.ask_size())));
        f.push(("quoted", Field::Time(q.quote_timestamp_ns())));
    } else if let Some(b) = tlv.view::<OrderBookTlv>() {
        instrument_fields(&mut f, b.instrument());
        f.push(("snapshot", Field::Time(b.snapshot_timestamp_ns())));
        f.push(("sequence", int(b.sequence())));
        f.push(("precision_factor", int(b.precision_factor())));
        f.push(("bids", Field::Levels(b.bids().to_vec())));
        f.push(("asks", Field::Levels(b.asks().to_vec())));
    } else if let Some(g) = tlv.view::<GasPriceTlv>() {
        f.push(("network", venue_field(g.venue.get())));
        f.push(("block", int(g.block_number())));
        f.push(("gas_price_gwei", int(g.gas_price_gwei())));
        f.push(("base_fee_gwei", int(g.base_fee_gwei.get())));
        f.push(("priority_fee_gwei", int(g.priority_fee_gwei.get())));
        f.push(("observed", Field::Time(g.timestamp_ns.get())));
    } else if let Some(a) = tlv.view::<ArbitrageSignalTlv>() {
        f.push(("strategy_id", int(a.strategy_id.get())));
        f.push(("signal_id", int(a.signal_id.get())));
        f.push(("chain_id", int(a.chain_id.get())));
        f.push(("source_pool", Field::Bytes(a.source_pool.to_vec())));
        f.push(("target_pool", Field::Bytes(a.target_pool.to_vec())));
        f.push(("source_venue", venue_field(a.source_venue.get())));
        f.push(("target_venue", venue_field(a.target_venue.get())));
        f.push(("token_in", Field::Bytes(a.token_in.to_vec())));
        f.push(("token_out", Field::Bytes(a.token_out.to_vec())));
        f.push((
            "expected_profit_usd",
            Field::Amount(a.expected_profit_usd()),
        ));
        f.push((
            "required_capital_usd",
            Field::Amount(a.required_capital_usd()),
        ));
        f.push(("spread_bps", int(a.spread_bps.get())));
        let usd = |raw: i64| Field::Amount(Fixed8::from_raw(raw));
        f.push(("dex_fees_usd", usd(a.dex_fees_usd_q8.get())));
        f.push(("gas_cost_usd", usd(a.gas_cost_usd_q8.get())));
        f.push(("slippage_usd", usd(a.slippage_usd_q8.get())));
        f.push(("net_profit_usd", Field::Amount(a.net_profit_usd())));
        f.push((
            "slippage_tolerance_bps",
            int(a.slippage_tolerance_bps.get()),
        ));
        f.push(("max_gas_price_gwei", int(a.max_gas_price_gwei.get())));
        f.push(("valid_until", int(a.valid_until.get())));
        f.push(("priority", int(a.priority.get())));
        f.push(("signalled", Field::Time(a.timestamp_ns.get())));
    } else {
        return None;
    }
    Some(f)
}

fn tlv_name(tlv_type: u8) -> Option<&'static str> {
    TlvType::from_u8(tlv_type).map(TlvType::name)
}

fn v2_text(o: &mut String, msg: &MessageView<'_>, hex_bytes: usize) {
    let h = msg.header();
    let domain = match RelayDomain::from_u8(h.relay_domain) {
        Some(d) => format!("{} ({})", d.name(), h.relay_domain),
        None => format!("domain {}", h.relay_domain),
    };
    let source = match SourceType::from_u8(h.source) {
        Some(s) => format!("{} ({})", s.name(), h.source),
        None => format!("source {}", h.source),
    };
    let _ = writeln!(
        o,
        "    Protocol V2 {domain} from {source}, v{}, flags {:#04x}, seq {}, time {}, checksum {:#010x}",
        h.version,
        h.flags,
        h.sequence(),
        utc_timestamp(h.timestamp_ns()),
        h.checksum()
    );
    let mut any = false;
    for tlv in msg.tlvs() {
        any = true;
        let name = tlv_name(tlv.tlv_type).unwrap_or("unknown");
        let _ = write!(
            o,
            "    TLV {} {name}  len {}{}",
            tlv.tlv_type,
            tlv.payload.len(),
            if tlv.form == shmbus::record::Form::Extended {
                "  (extended)"
            } else {
                ""
            }
        );
        match typed_fields(&tlv) {
            Some(fields) => {
                for (k, v) in &fields {
                    let _ = write!(o, "  {k} {}", v.text());
                }
                o.push('\n');
            }
            None => {
                o.push('\n');
                hex_limited(o, tlv.payload, hex_bytes);
            }
        }
    }
    if !any {
        let _ = writeln!(o, "    (no TLV items)");
    }
}

fn v2_json(msg: &MessageView<'_>, hex_bytes: usize) -> Value {
    let h = msg.header();
    let tlvs: Vec<Value> = msg
        .tlvs()
        .map(|tlv| {
            let mut t = Map::new();
            t.insert("type".into(), tlv.tlv_type.into());
            t.insert("name".into(), tlv_name(tlv.tlv_type).into());
            t.insert("len".into(), tlv.payload.len().into());
            t.insert(
                "extended".into(),
                (tlv.form == shmbus::record::Form::Extended).into(),
            );
            match typed_fields(&tlv) {
                Some(fields) => {
                    let obj: Map<String, Value> = fields
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.json()))
                        .collect();
                    t.insert("fields".into(), Value::Object(obj));
                }
                None => {
                    let shown = &tlv.payload[..tlv.payload.len().min(hex_bytes)];
                    t.insert("fields".into(), Value::Null);
                    t.insert("hex".into(), hex_string(shown).into());
                    t.insert("truncated".into(), (shown.len() < tlv.payload.len()).into());
                }
            }
            Value::Object(t)
        })
        .collect();
    json!({
        "relay_domain": h.relay_domain,
        "domain": RelayDomain::from_u8(h.relay_domain).map(RelayDomain::name),
        "version": h.version,
        "source": h.source,
        "source_name": SourceType::from_u8(h.source).map(SourceType::name),
        "flags": h.flags,
        "sequence": h.sequence(),
        "timestamp_ns": h.timestamp_ns(),
        "checksum": h.checksum(),
        "tlvs": tlvs,
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmbus::record::{Checksum, MessageBuilder};

    fn trade_message() -> Vec<u8> {
        let mut buf = [0u8; 128];
        let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
        let len = MessageBuilder::new(
            &mut buf,
            RelayDomain::MarketData,
            SourceType::BinanceCollector,
        )
        .sequence(9)
        .typed(&TradeTlv::new(
            btc,
            Fixed8::from_raw(6_500_012_345_678),
            Fixed8::from_raw(12_500_000),
            Side::Sell,
            0,
        ))
        .finish(Checksum::Zero)
        .expect("fits");
        buf[..len].to_vec()
    }

    #[test]
    fn a_trade_shows_its_typed_fields_in_text_and_json() {
        let r = FollowedRecord {
            position: 4,
            record_type: 1,
            flags: 0,
            redelivered: false,
            payload: trade_message(),
        };
        let text = record_text(&r, false, RingKind::Broadcast, 64);
        assert!(text.starts_with("seq 4  type 1  len 74\n"), "{text}");
        for part in [
            "TLV 1 Trade  len 40",
            "instrument BTC",
            "venue Binance (100)",
            "price 65000.12345678",
            "volume 0.12500000",
            "side sell",
        ] {
            assert!(text.contains(part), "no {part:?} in {text}");
        }
        let j = Value::Object(record_json(&r, 64));
        let fields = &j["v2"]["tlvs"][0]["fields"];
        assert_eq!(fields["price"], "65000.12345678");
        assert_eq!(fields["side"], "sell");
        assert_eq!(fields["instrument"], "BTC");
        assert_eq!(j["v2"]["sequence"], 9);
    }

    #[test]
    fn bytes_that_are_not_protocol_v2_are_hex() {
        let r = FollowedRecord {
            position: 16,
            record_type: 7,
            flags: 0x8000,
            redelivered: false,
            payload: vec![0xde, 0xad, 0xbe, 0xef],
        };
        let text = record_text(&r, true, RingKind::Spsc, 64);
        assert!(
            text.starts_with("position 16  type 7  flags 0x8000  len 4\n"),
            "{text}"
        );
        assert!(text.contains("not Protocol V2"), "{text}");
        assert!(text.contains("de ad be ef"), "{text}");
        let j = Value::Object(record_json(&r, 2));
        assert_eq!(j["v2"], Value::Null);
        assert_eq!(j["hex"], "dead");
        assert_eq!(j["truncated"], true);
    }

    #[test]
    fn gaps_say_how_many_and_why() {
        let m = Missed {
            from: 3,
            to: 10,
            records: Some(7),
            cause: MissCause::Overwritten,
        };
        assert_eq!(
            missed_text(&m),
            "missed 7 records (seq 3..10): overwritten by publishers before they were read\n"
        );
        let m = Missed {
            from: 16,
            to: 48,
            records: None,
            cause: MissCause::Consumed,
        };
        assert!(missed_text(&m).starts_with("missed 32 bytes of records (position 16..48)"));
    }
}
