//! Protocol V2: build a message into any buffer (a claimed slot included),
//! parse one, walk its TLV items, and read or write the typed payloads as C
//! structs of the exact wire layout.
//!
//! The C structs are packed (alignment 1, no padding) with native integer
//! fields: on a little-endian host, which this crate requires, their bytes
//! are the wire bytes, so a payload pointer inside a message may be read as
//! one in place, and the copy functions are one `memcpy` each.

use std::ffi::CStr;

use shmbus::record::{
    ArbitrageSignalTlv, Checksum, Form, GasPriceTlv, MessageBuilder, MessageView, OrderBookTlv,
    ParseOptions, QuoteTlv, SizePolicy, TlvPayload, TlvWalker, TradeTlv, Verify,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{guard, guard_void, shmbus_status, Failure};
use crate::handle::{buffer, bytes, free, hand_out, handle, handle_ref, put};

#[cfg(not(target_endian = "little"))]
compile_error!("the C payload structs use native integers and assume a little-endian host");

/// Length of a message header.
pub const SHMBUS_V2_HEADER_LEN: usize = 32;
/// Length of a message carrying one trade: what to claim for it.
pub const SHMBUS_V2_TRADE_MESSAGE_LEN: usize = 74;
/// Length of a message carrying one quote.
pub const SHMBUS_V2_QUOTE_MESSAGE_LEN: usize = 86;
/// Length of a message carrying one order book (an extended TLV).
pub const SHMBUS_V2_ORDER_BOOK_MESSAGE_LEN: usize = 2493;
/// Length of a message carrying one gas price.
pub const SHMBUS_V2_GAS_PRICE_MESSAGE_LEN: usize = 66;
/// Levels per side of an order book.
pub const SHMBUS_V2_MAX_BOOK_LEVELS: usize = 50;

const _: () = {
    assert!(SHMBUS_V2_HEADER_LEN == shmbus::record::HEADER_LEN);
    assert!(SHMBUS_V2_TRADE_MESSAGE_LEN == TradeTlv::MESSAGE_LEN);
    assert!(SHMBUS_V2_QUOTE_MESSAGE_LEN == QuoteTlv::MESSAGE_LEN);
    assert!(SHMBUS_V2_ORDER_BOOK_MESSAGE_LEN == OrderBookTlv::MESSAGE_LEN);
    assert!(SHMBUS_V2_GAS_PRICE_MESSAGE_LEN == GasPriceTlv::MESSAGE_LEN);
    assert!(SHMBUS_V2_MAX_BOOK_LEVELS == shmbus::record::MAX_BOOK_LEVELS);
};

/// Relay domains (header byte 4).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_relay_domain {
    /// Trades, quotes, books, pool events.
    MarketData = 1,
    /// Strategy signals.
    Signal = 2,
    /// Orders, fills and execution reports.
    Execution = 3,
    /// Heartbeats, health and control.
    System = 4,
}

/// The TLV type numbers of the typed payloads below (every other number is
/// carried as raw bytes with `shmbus_v2_builder_tlv`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_tlv_type {
    /// `shmbus_v2_trade`, 40 bytes.
    Trade = 1,
    /// `shmbus_v2_quote`, 52 bytes.
    Quote = 2,
    /// `shmbus_v2_order_book`, 2456 bytes.
    OrderBook = 3,
    /// `shmbus_v2_gas_price`, 32 bytes.
    GasPrice = 18,
    /// `shmbus_v2_arbitrage_signal`, 170 bytes (travels only under
    /// `SHMBUS_V2_SIZE_POLICY_LEGACY_STRUCTS`).
    ArbitrageSignal = 32,
    /// Heartbeat, 16 opaque bytes.
    Heartbeat = 100,
}

/// Whether the parser verifies the CRC-32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_verify {
    /// Do not compute it (the in-host hot path).
    Off = 0,
    /// The stored value must equal the CRC.
    Strict = 1,
    /// A stored 0 means "not computed"; any other value must equal the CRC.
    ZeroMeansUnchecked = 2,
}

/// Which lengths fixed-size types may have.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_size_policy {
    /// The registry's sizes only (Quote 52, ArbitrageSignal 168).
    Registry = 0,
    /// Also the reference structs' sizes (Quote 56, ArbitrageSignal 170).
    LegacyStructs = 1,
}

/// Whether the builder computes the CRC-32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_checksum {
    /// Compute it and store it.
    Compute = 0,
    /// Store 0 (the hot path).
    Zero = 1,
}

/// How a TLV item was framed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_v2_form {
    /// `[type, len]`, payloads up to 255 bytes.
    Standard = 0,
    /// `[255, 0, type, len as u16 LE]`, payloads up to 65535 bytes.
    Extended = 1,
}

fn invalid(message: &'static CStr) -> Failure {
    Failure::fixed(shmbus_status::InvalidArgument, message)
}

fn size_policy(raw: u32) -> Result<SizePolicy, Failure> {
    match raw {
        r if r == shmbus_v2_size_policy::Registry as u32 => Ok(SizePolicy::Registry),
        r if r == shmbus_v2_size_policy::LegacyStructs as u32 => Ok(SizePolicy::LegacyStructs),
        _ => Err(invalid(c"unknown shmbus_v2_size_policy value")),
    }
}

/// A trade (TLV type 1), 40 bytes: Rust's `TradeTlv`.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_trade {
    /// Instrument asset id.
    pub asset_id: u64,
    /// Price, 8 decimals.
    pub price: i64,
    /// Volume, 8 decimals.
    pub volume: i64,
    /// Exchange execution time, ns since the Unix epoch.
    pub execution_timestamp_ns: u64,
    /// Venue id.
    pub venue_id: u16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
    /// 1 buy, 2 sell.
    pub side: u8,
    /// Zero.
    pub padding: [u8; 3],
}

/// A quote (TLV type 2), 52 bytes: Rust's `QuoteTlv`.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_quote {
    /// Instrument asset id.
    pub asset_id: u64,
    /// Best bid price, 8 decimals.
    pub bid_price: i64,
    /// Size at the best bid, 8 decimals.
    pub bid_size: i64,
    /// Best ask price, 8 decimals.
    pub ask_price: i64,
    /// Size at the best ask, 8 decimals.
    pub ask_size: i64,
    /// Quote time, ns since the Unix epoch.
    pub quote_timestamp_ns: u64,
    /// Venue id.
    pub venue_id: u16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
}

/// One price level of an order book, 24 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_order_level {
    /// Price, 8 decimals.
    pub price: i64,
    /// Size, 8 decimals.
    pub size: i64,
    /// Orders at the level.
    pub order_count: u32,
    /// Zero.
    pub reserved: u32,
}

/// One side of an order book: `count` levels in use of 50, 1208 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_order_levels {
    /// Levels in use.
    pub count: u16,
    /// Zero.
    pub padding: [u8; 6],
    /// The levels, best first.
    pub levels: [shmbus_v2_order_level; SHMBUS_V2_MAX_BOOK_LEVELS],
}

/// An order book snapshot (TLV type 3, extended form), 2456 bytes: Rust's
/// `OrderBookTlv`.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_order_book {
    /// Snapshot time, ns since the Unix epoch.
    pub snapshot_timestamp_ns: u64,
    /// Book sequence number.
    pub sequence: u64,
    /// Scale of prices and sizes.
    pub precision_factor: i64,
    /// Instrument asset id.
    pub asset_id: u64,
    /// Venue id.
    pub venue_id: u16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
    /// Zero.
    pub padding: [u8; 4],
    /// Bids.
    pub bids: shmbus_v2_order_levels,
    /// Asks.
    pub asks: shmbus_v2_order_levels,
}

/// A gas price (TLV type 18), 32 bytes: Rust's `GasPriceTlv`.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_gas_price {
    /// Block number.
    pub block_number: u64,
    /// Time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// Gas price in gwei.
    pub gas_price_gwei: u32,
    /// Base fee in gwei.
    pub base_fee_gwei: u32,
    /// Priority fee in gwei.
    pub priority_fee_gwei: u32,
    /// Venue id.
    pub venue: u16,
    /// Zero.
    pub reserved: u16,
}

/// An arbitrage signal (TLV type 32), the reference's 170-byte struct:
/// Rust's `ArbitrageSignalTlv`.
#[repr(C, packed)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct shmbus_v2_arbitrage_signal {
    /// Strategy id.
    pub strategy_id: u16,
    /// Signal id.
    pub signal_id: u64,
    /// Chain id (137 = Polygon).
    pub chain_id: u32,
    /// Pool bought from.
    pub source_pool: [u8; 20],
    /// Pool sold to.
    pub target_pool: [u8; 20],
    /// Venue of the source pool.
    pub source_venue: u16,
    /// Venue of the target pool.
    pub target_venue: u16,
    /// Token paid in.
    pub token_in: [u8; 20],
    /// Token received.
    pub token_out: [u8; 20],
    /// Expected profit, USD with 8 decimals.
    pub expected_profit_usd_q8: i64,
    /// Capital required, USD with 8 decimals.
    pub required_capital_usd_q8: i64,
    /// Spread in basis points.
    pub spread_bps: u16,
    /// DEX fees, USD with 8 decimals.
    pub dex_fees_usd_q8: i64,
    /// Gas cost, USD with 8 decimals.
    pub gas_cost_usd_q8: i64,
    /// Slippage, USD with 8 decimals.
    pub slippage_usd_q8: i64,
    /// Net profit, USD with 8 decimals.
    pub net_profit_usd_q8: i64,
    /// Slippage tolerance in basis points.
    pub slippage_tolerance_bps: u16,
    /// Highest acceptable gas price in gwei.
    pub max_gas_price_gwei: u32,
    /// Expiry, Unix seconds.
    pub valid_until: u32,
    /// Priority.
    pub priority: u16,
    /// Zero.
    pub reserved: [u8; 2],
    /// Signal time, ns since the Unix epoch.
    pub timestamp_ns: u64,
}

/// A C payload struct and the Rust payload type with the same bytes.
pub(crate) trait Wire: FromBytes + IntoBytes + Immutable + Copy {
    /// The Rust type.
    type Payload: TlvPayload;
}

/// Pins a C struct to its Rust twin: same size, and the named fields at
/// the same offsets.
macro_rules! wire {
    ($c:ty => $rust:ty: $($field:ident),*) => {
        impl Wire for $c {
            type Payload = $rust;
        }
        const _: () = {
            use core::mem::{offset_of, size_of};
            assert!(size_of::<$c>() == size_of::<$rust>());
            $(assert!(offset_of!($c, $field) == offset_of!($rust, $field));)*
        };
    };
}

wire!(shmbus_v2_trade => TradeTlv: asset_id, price, volume, execution_timestamp_ns, venue_id,
    asset_type, reserved, side, padding);
wire!(shmbus_v2_quote => QuoteTlv: asset_id, bid_price, bid_size, ask_price, ask_size,
    quote_timestamp_ns, venue_id, asset_type, reserved);
wire!(shmbus_v2_order_book => OrderBookTlv: snapshot_timestamp_ns, sequence, precision_factor,
    asset_id, venue_id, asset_type, reserved, padding, bids, asks);
wire!(shmbus_v2_gas_price => GasPriceTlv: block_number, timestamp_ns, gas_price_gwei,
    base_fee_gwei, priority_fee_gwei, venue, reserved);
wire!(shmbus_v2_arbitrage_signal => ArbitrageSignalTlv: strategy_id, signal_id, chain_id,
    source_pool, target_pool, source_venue, target_venue, token_in, token_out,
    expected_profit_usd_q8, required_capital_usd_q8, spread_bps, dex_fees_usd_q8, gas_cost_usd_q8,
    slippage_usd_q8, net_profit_usd_q8, slippage_tolerance_bps, max_gas_price_gwei, valid_until,
    priority, reserved, timestamp_ns);

const _: () = {
    use core::mem::{offset_of, size_of};
    use shmbus::record::{OrderLevel, OrderLevels};
    assert!(size_of::<shmbus_v2_order_level>() == size_of::<OrderLevel>());
    assert!(offset_of!(shmbus_v2_order_level, order_count) == offset_of!(OrderLevel, order_count));
    assert!(size_of::<shmbus_v2_order_levels>() == size_of::<OrderLevels>());
    assert!(offset_of!(shmbus_v2_order_levels, levels) == offset_of!(OrderLevels, levels));
};

/// A parsed, validated message. `data` is the caller's bytes (the parse
/// copies nothing): valid as long as they are.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_v2_message {
    /// The message bytes.
    pub data: *const u8,
    /// The message length.
    pub len: usize,
    /// Relay domain (a `shmbus_v2_relay_domain` value, or another byte).
    pub relay_domain: u8,
    /// Protocol version.
    pub version: u8,
    /// Source service id.
    pub source: u8,
    /// Header flags.
    pub flags: u8,
    /// Per-source sequence number.
    pub sequence: u64,
    /// Timestamp, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// Length of the TLV region.
    pub payload_size: u32,
    /// Stored CRC-32 (0: not computed).
    pub checksum: u32,
}

/// One TLV item, borrowed from the message.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_v2_tlv {
    /// The type number (the inner type of an extended item).
    pub tlv_type: u8,
    /// A `shmbus_v2_form` value.
    pub form: u32,
    /// Message offset of the item's first header byte.
    pub offset: usize,
    /// The payload, inside the message.
    pub payload: *const u8,
    /// The payload length.
    pub payload_len: usize,
}

/// The walk over a message's TLV items: set by `shmbus_v2_message_tlvs`,
/// advanced by `shmbus_v2_tlv_next`. Plain data, no resources.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_v2_tlv_iter {
    /// The message bytes.
    pub data: *const u8,
    /// The message length.
    pub len: usize,
    /// Message offset of the next item.
    pub pos: usize,
}

/// Parses and validates the `len` bytes at `data` as one message (the
/// header, `payload_size`, every TLV's framing and, per `sizes` (a
/// `shmbus_v2_size_policy`), the sizes of fixed-size types; the CRC as
/// `verify` (a `shmbus_v2_verify`) says) and describes it in `*out`.
/// `SHMBUS_STATUS_PARSE_FAILED` with the reason and offset in the message.
///
/// # Safety
///
/// `data` points to `len` readable bytes that live while `*out` is used;
/// `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_parse(
    data: *const u8,
    len: usize,
    verify: u32,
    sizes: u32,
    out: *mut shmbus_v2_message,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let msg = unsafe { bytes(data, len) }?;
        let verify = match verify {
            v if v == shmbus_v2_verify::Off as u32 => Verify::Off,
            v if v == shmbus_v2_verify::Strict as u32 => Verify::Strict,
            v if v == shmbus_v2_verify::ZeroMeansUnchecked as u32 => Verify::ZeroMeansUnchecked,
            _ => return Err(invalid(c"unknown shmbus_v2_verify value")),
        };
        let opts = ParseOptions::new(verify).with_size_policy(size_policy(sizes)?);
        let view = MessageView::parse(msg, opts)?;
        let h = view.header();
        let message = shmbus_v2_message {
            data: msg.as_ptr(),
            len: msg.len(),
            relay_domain: h.relay_domain,
            version: h.version,
            source: h.source,
            flags: h.flags,
            sequence: h.sequence(),
            timestamp_ns: h.timestamp_ns(),
            payload_size: h.payload_size(),
            checksum: h.checksum(),
        };
        // SAFETY: the caller's promise.
        unsafe { put(out, message, c"the output message pointer is NULL") }
    })
}

/// Starts a walk over the TLV items of a parsed message.
///
/// # Safety
///
/// `message` was filled by `shmbus_v2_parse` and its bytes are alive;
/// `iter` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_message_tlvs(
    message: *const shmbus_v2_message,
    iter: *mut shmbus_v2_tlv_iter,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { handle_ref(message, c"the message pointer is NULL") }?;
        let start = shmbus_v2_tlv_iter {
            data: m.data,
            len: m.len,
            pos: SHMBUS_V2_HEADER_LEN.min(m.len),
        };
        // SAFETY: the caller's promise.
        unsafe { put(iter, start, c"the output iterator pointer is NULL") }
    })
}

/// The next TLV item into `*out`: `SHMBUS_STATUS_OK`, or
/// `SHMBUS_STATUS_EMPTY` past the last one (`SHMBUS_STATUS_PARSE_FAILED` on
/// bytes that were not parsed first). `out->payload` points into the
/// message.
///
/// # Safety
///
/// `iter` was set by `shmbus_v2_message_tlvs` and the message's bytes are
/// alive; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_next(
    iter: *mut shmbus_v2_tlv_iter,
    out: *mut shmbus_v2_tlv,
) -> shmbus_status {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null(c"the output item pointer is NULL"));
        }
        // SAFETY: the caller's promise.
        let it = unsafe { handle(iter, c"the iterator pointer is NULL") }?;
        // SAFETY: the caller's promise: `data` holds `len` bytes.
        let msg = unsafe { bytes(it.data, it.len) }?;
        if it.pos < SHMBUS_V2_HEADER_LEN || it.pos > msg.len() {
            return Err(invalid(c"the iterator's position is outside the message"));
        }
        // A walker starts one header length into the slice it is given:
        // give it the message from `pos - 32` on, and shift its offsets.
        let base = it.pos - SHMBUS_V2_HEADER_LEN;
        let item = match TlvWalker::new(&msg[base..], SizePolicy::LegacyStructs).next() {
            None => return Err(Failure::quiet(shmbus_status::Empty)),
            Some(item) => item?,
        };
        let tlv = shmbus_v2_tlv {
            tlv_type: item.tlv_type,
            form: match item.form {
                Form::Standard => shmbus_v2_form::Standard as u32,
                Form::Extended => shmbus_v2_form::Extended as u32,
            },
            offset: base + item.offset,
            payload: item.payload.as_ptr(),
            payload_len: item.payload.len(),
        };
        it.pos = base + item.end();
        // SAFETY: not NULL, valid by the caller's promise.
        unsafe { put(out, tlv, c"the output item pointer is NULL") }
    })
}

/// Copies a TLV item's payload into the C struct `W`.
///
/// # Safety
///
/// `tlv` was filled by `shmbus_v2_tlv_next` and the message is alive; `out`
/// is valid for a write.
unsafe fn read_typed<W: Wire>(tlv: *const shmbus_v2_tlv, out: *mut W) -> Result<(), Failure> {
    // SAFETY: the caller's promise.
    let tlv = unsafe { handle_ref(tlv, c"the item pointer is NULL") }?;
    // SAFETY: the caller's promise: the payload lies inside the message.
    let payload = unsafe { bytes(tlv.payload, tlv.payload_len) }?;
    let wrong = || {
        Failure::fixed(
            shmbus_status::WrongType,
            c"the TLV item is not of the requested type, or not of a length it is read from",
        )
    };
    if tlv.tlv_type != W::Payload::TLV_TYPE.number() {
        return Err(wrong());
    }
    let view = W::Payload::view(payload).ok_or_else(wrong)?;
    let value = W::read_from_bytes(view.as_bytes()).map_err(|_| wrong())?;
    // SAFETY: the caller's promise.
    unsafe { put(out, value, c"the output pointer is NULL") }
}

/// Copies a trade item's payload into `*out`; `SHMBUS_STATUS_WRONG_TYPE`
/// if the item is not a 40-byte trade.
///
/// # Safety
///
/// `tlv` was filled by `shmbus_v2_tlv_next` and the message is alive; `out`
/// is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_trade(
    tlv: *const shmbus_v2_tlv,
    out: *mut shmbus_v2_trade,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { read_typed(tlv, out) })
}

/// Copies a quote item's payload (52 bytes, or the first 52 of a legacy
/// 56-byte one) into `*out`.
///
/// # Safety
///
/// As `shmbus_v2_tlv_trade`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_quote(
    tlv: *const shmbus_v2_tlv,
    out: *mut shmbus_v2_quote,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { read_typed(tlv, out) })
}

/// Copies an order book item's payload into `*out`.
///
/// # Safety
///
/// As `shmbus_v2_tlv_trade`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_order_book(
    tlv: *const shmbus_v2_tlv,
    out: *mut shmbus_v2_order_book,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { read_typed(tlv, out) })
}

/// Copies a gas price item's payload into `*out`.
///
/// # Safety
///
/// As `shmbus_v2_tlv_trade`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_gas_price(
    tlv: *const shmbus_v2_tlv,
    out: *mut shmbus_v2_gas_price,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { read_typed(tlv, out) })
}

/// Copies an arbitrage signal item's payload into `*out`.
///
/// # Safety
///
/// As `shmbus_v2_tlv_trade`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_tlv_arbitrage_signal(
    tlv: *const shmbus_v2_tlv,
    out: *mut shmbus_v2_arbitrage_signal,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { read_typed(tlv, out) })
}

/// Bytes a TLV item with a `payload_len`-byte payload takes (its header
/// included), or 0 if no TLV can carry that much. A message is
/// `SHMBUS_V2_HEADER_LEN` plus its items: what to claim for it.
#[no_mangle]
pub extern "C" fn shmbus_v2_tlv_len(payload_len: usize) -> usize {
    Form::for_len(payload_len).map_or(0, |form| form.header_len() + payload_len)
}

/// The CRC-32 of a message as the format defines it (header bytes 0..28,
/// then everything from byte 32 on); 0 for fewer than 32 bytes or a NULL
/// `data`.
///
/// # Safety
///
/// `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_message_checksum(data: *const u8, len: usize) -> u32 {
    let mut crc = 0;
    guard_void(|| {
        // SAFETY: the caller's promise.
        if let Ok(msg) = unsafe { bytes(data, len) } {
            if msg.len() >= SHMBUS_V2_HEADER_LEN {
                crc = shmbus::record::message_checksum(msg);
            }
        }
    });
    crc
}

/// A message builder: reusable, one message at a time, allocation-free
/// after `shmbus_v2_builder_new`. Begin a message in a buffer (a claimed
/// slot, say), add items, finish it. Errors (buffer too small, a
/// fixed-size type of the wrong size, ...) are remembered and reported by
/// `shmbus_v2_builder_finish`, as in Rust.
///
/// The buffer given to `shmbus_v2_builder_begin` is written until
/// `shmbus_v2_builder_finish`, the next begin, or the free of the builder;
/// it must stay valid and untouched until then.
pub struct shmbus_v2_builder {
    /// The message being built; its buffer is the caller's.
    message: Option<MessageBuilder<'static>>,
}

/// Makes a builder.
///
/// # Safety
///
/// `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_new(out: *mut *mut shmbus_v2_builder) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { hand_out(out, shmbus_v2_builder { message: None }) })
}

/// Frees a builder (NULL is a no-op).
///
/// # Safety
///
/// `builder` came from `shmbus_v2_builder_new` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_free(builder: *mut shmbus_v2_builder) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(builder) })
}

/// Begins a message of relay domain `domain` from source `source` in
/// `buf[..capacity]` (version 1, flags, sequence and timestamp 0). A
/// message begun before and not finished is dropped.
///
/// # Safety
///
/// `builder` is a live builder; `buf` points to `capacity` writable bytes
/// that stay valid and untouched until the message is finished or dropped.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_begin(
    builder: *mut shmbus_v2_builder,
    buf: *mut u8,
    capacity: usize,
    domain: u8,
    source: u8,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { handle(builder, c"the builder handle is NULL") }?;
        b.message = None;
        // SAFETY: the caller's promise: the buffer lives, and nothing else
        // touches it, until the message is finished or dropped, and the
        // builder drops it then.
        let buf: &'static mut [u8] = unsafe { buffer(buf, capacity) }?;
        b.message = Some(MessageBuilder::new_raw(buf, domain, source));
        Ok(())
    })
}

/// Applies one step to the message being built.
///
/// # Safety
///
/// `builder` is NULL or a live builder.
unsafe fn step(
    builder: *mut shmbus_v2_builder,
    f: impl FnOnce(MessageBuilder<'static>) -> MessageBuilder<'static>,
) -> Result<(), Failure> {
    // SAFETY: the caller's promise.
    let b = unsafe { handle(builder, c"the builder handle is NULL") }?;
    let message = b.message.take().ok_or_else(not_begun)?;
    b.message = Some(f(message));
    Ok(())
}

fn not_begun() -> Failure {
    Failure::fixed(
        shmbus_status::NotHeld,
        c"no message begun: call shmbus_v2_builder_begin first",
    )
}

/// Sets the message's sequence number.
///
/// # Safety
///
/// `builder` is a live builder.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_sequence(
    builder: *mut shmbus_v2_builder,
    sequence: u64,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { step(builder, |m| m.sequence(sequence)) })
}

/// Sets the message's timestamp, ns since the Unix epoch (never read from
/// a clock by the builder).
///
/// # Safety
///
/// `builder` is a live builder.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_timestamp_ns(
    builder: *mut shmbus_v2_builder,
    timestamp_ns: u64,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { step(builder, |m| m.timestamp_ns(timestamp_ns)) })
}

/// Sets the header's flags byte.
///
/// # Safety
///
/// `builder` is a live builder.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_flags(
    builder: *mut shmbus_v2_builder,
    flags: u8,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { step(builder, |m| m.flags(flags)) })
}

/// Sets the form of the next TLV item only (a `shmbus_v2_form`; by
/// default the smallest that fits).
///
/// # Safety
///
/// `builder` is a live builder.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_form(
    builder: *mut shmbus_v2_builder,
    form: u32,
) -> shmbus_status {
    guard(|| {
        let form = match form {
            f if f == shmbus_v2_form::Standard as u32 => Form::Standard,
            f if f == shmbus_v2_form::Extended as u32 => Form::Extended,
            _ => return Err(invalid(c"unknown shmbus_v2_form value")),
        };
        // SAFETY: the caller's promise.
        unsafe { step(builder, |m| m.form(form)) }
    })
}

/// Sets which sizes fixed-size types may have (a `shmbus_v2_size_policy`;
/// the registry's by default).
///
/// # Safety
///
/// `builder` is a live builder.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_size_policy(
    builder: *mut shmbus_v2_builder,
    sizes: u32,
) -> shmbus_status {
    guard(|| {
        let sizes = size_policy(sizes)?;
        // SAFETY: the caller's promise.
        unsafe { step(builder, |m| m.size_policy(sizes)) }
    })
}

/// Appends a TLV item of type `tlv_type` (any number but 255) with a copy
/// of `len` bytes at `data`; the smallest form that fits.
///
/// # Safety
///
/// `builder` is a live builder; `data` points to `len` readable bytes (or
/// `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_tlv(
    builder: *mut shmbus_v2_builder,
    tlv_type: u8,
    data: *const u8,
    len: usize,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let payload = unsafe { bytes(data, len) }?;
        // SAFETY: the caller's promise.
        unsafe { step(builder, |m| m.tlv(tlv_type, payload)) }
    })
}

/// Appends a typed payload from its C struct.
///
/// # Safety
///
/// `builder` is NULL or a live builder; `value` is NULL or valid for a read.
unsafe fn add_typed<W: Wire>(
    builder: *mut shmbus_v2_builder,
    value: *const W,
) -> Result<(), Failure> {
    // SAFETY: the caller's promise.
    let value = *unsafe { handle_ref(value, c"the payload pointer is NULL") }?;
    // SAFETY: the caller's promise.
    unsafe { step(builder, |m| m.tlv(W::Payload::TLV_TYPE, value.as_bytes())) }
}

/// Appends a trade.
///
/// # Safety
///
/// `builder` is a live builder; `trade` is valid for a read.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_trade(
    builder: *mut shmbus_v2_builder,
    trade: *const shmbus_v2_trade,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { add_typed(builder, trade) })
}

/// Appends a quote (52 bytes).
///
/// # Safety
///
/// `builder` is a live builder; `quote` is valid for a read.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_quote(
    builder: *mut shmbus_v2_builder,
    quote: *const shmbus_v2_quote,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { add_typed(builder, quote) })
}

/// Appends an order book (extended form).
///
/// # Safety
///
/// `builder` is a live builder; `book` is valid for a read.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_order_book(
    builder: *mut shmbus_v2_builder,
    book: *const shmbus_v2_order_book,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { add_typed(builder, book) })
}

/// Appends a gas price.
///
/// # Safety
///
/// `builder` is a live builder; `gas` is valid for a read.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_gas_price(
    builder: *mut shmbus_v2_builder,
    gas: *const shmbus_v2_gas_price,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { add_typed(builder, gas) })
}

/// Appends an arbitrage signal (170 bytes: set
/// `SHMBUS_V2_SIZE_POLICY_LEGACY_STRUCTS` first, as in Rust).
///
/// # Safety
///
/// `builder` is a live builder; `signal` is valid for a read.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_arbitrage_signal(
    builder: *mut shmbus_v2_builder,
    signal: *const shmbus_v2_arbitrage_signal,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { add_typed(builder, signal) })
}

/// Writes the header (and the CRC if `checksum` is
/// `SHMBUS_V2_CHECKSUM_COMPUTE`) and puts the message length in `*len`:
/// the message is `buf[..*len]`. The first error met while building is
/// returned instead (`SHMBUS_STATUS_BUILD_FAILED`). Either way the builder
/// is free for the next `shmbus_v2_builder_begin`.
///
/// # Safety
///
/// `builder` is a live builder; `len` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_v2_builder_finish(
    builder: *mut shmbus_v2_builder,
    checksum: u32,
    len: *mut usize,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { handle(builder, c"the builder handle is NULL") }?;
        let message = b.message.take().ok_or_else(not_begun)?;
        let checksum = match checksum {
            c if c == shmbus_v2_checksum::Compute as u32 => Checksum::Compute,
            c if c == shmbus_v2_checksum::Zero as u32 => Checksum::Zero,
            _ => return Err(invalid(c"unknown shmbus_v2_checksum value")),
        };
        let written = message.finish(checksum)?;
        // SAFETY: the caller's promise.
        unsafe { put(len, written, c"the output length pointer is NULL") }
    })
}
