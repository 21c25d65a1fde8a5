//! Typed TLV payloads: zero-copy structs with the exact wire layout, and
//! readable accessors for their fields.
//!
//! Every struct here is `#[repr(C)]` over little-endian byte-array integer
//! types, so it has alignment 1, no padding the compiler adds, and can be
//! viewed in place inside any message (see [`Tlv::view`](crate::record::Tlv::view))
//! or written in place by the builder
//! ([`MessageBuilder::typed_in_place`](crate::record::MessageBuilder::typed_in_place)).
//! Public fields are the raw wire fields; methods give typed values.

use core::fmt;

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::tlv::TlvType;

/// A struct that is the payload of one TLV type.
///
/// # Examples
///
/// ```
/// use shmbus::record::{TlvPayload, TlvType, TradeTlv};
///
/// assert_eq!(TradeTlv::TLV_TYPE, TlvType::Trade);
/// assert!(TradeTlv::view(&[0u8; 40]).is_some());
/// assert!(TradeTlv::view(&[0u8; 39]).is_none());
/// ```
pub trait TlvPayload: FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Sized {
    /// The type number this struct is carried under.
    const TLV_TYPE: TlvType;

    /// Length of a message carrying exactly one of these (header, the
    /// smallest TLV header that fits, payload): what to claim for it, as in
    /// `publisher.try_claim(TradeTlv::MESSAGE_LEN)`.
    const MESSAGE_LEN: usize = crate::record::HEADER_LEN
        + if core::mem::size_of::<Self>() <= crate::record::MAX_STANDARD_PAYLOAD {
            crate::record::STANDARD_HEADER_LEN
        } else {
            crate::record::EXTENDED_HEADER_LEN
        }
        + core::mem::size_of::<Self>();

    /// Views a payload as this struct, in place; `None` if the length is not
    /// one this struct is read from (by default exactly its size).
    #[inline]
    fn view(payload: &[u8]) -> Option<&Self> {
        Self::ref_from_bytes(payload).ok()
    }
}

/// A fixed-point number with 8 decimals: the raw `i64` is the value times
/// 100 000 000. Prices, sizes and USD amounts use it.
///
/// # Examples
///
/// ```
/// use shmbus::record::Fixed8;
///
/// let p = Fixed8::from_raw(6_512_345_678_900);
/// assert_eq!(p.to_string(), "65123.45678900");
/// assert_eq!(p.to_f64(), 65123.456789);
/// assert_eq!(Fixed8::from_f64(0.125), Some(Fixed8::from_raw(12_500_000)));
/// assert_eq!(Fixed8::from_raw(-150_000_000).to_string(), "-1.50000000");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed8(i64);

impl Fixed8 {
    /// Raw units per 1.0.
    pub const SCALE: i64 = 100_000_000;
    /// Zero.
    pub const ZERO: Fixed8 = Fixed8(0);

    /// Wraps a raw value (the value times 10^8).
    #[inline]
    pub const fn from_raw(raw: i64) -> Self {
        Fixed8(raw)
    }

    /// The raw value (the value times 10^8).
    #[inline]
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// The nearest `f64`, for display and analytics (not for arithmetic that
    /// must be exact).
    #[inline]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Rounds an `f64` to 8 decimals; `None` if it is not finite or out of range.
    #[inline]
    pub fn from_f64(value: f64) -> Option<Self> {
        let scaled = (value * Self::SCALE as f64).round();
        // i64::MAX as f64 rounds up to 2^63, which is itself out of range.
        if scaled.is_finite() && scaled >= i64::MIN as f64 && scaled < i64::MAX as f64 {
            Some(Fixed8(scaled as i64))
        } else {
            None
        }
    }
}

impl fmt::Display for Fixed8 {
    /// Exact decimal rendering with all 8 decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = Self::SCALE as u64;
        write!(f, "{sign}{}.{:08}", abs / scale, abs % scale)
    }
}

/// The side of a trade, byte 36 of [`TradeTlv`].
///
/// The reference struct documents 0 = buy and 1 = sell, and that is what
/// its producers write; one consumer (a dashboard converter) reads 1 as buy
/// and 2 as sell instead. shmbus follows the struct: see the module docs.
///
/// # Examples
///
/// ```
/// use shmbus::record::Side;
///
/// assert_eq!(Side::try_from(1), Ok(Side::Sell));
/// assert_eq!(Side::try_from(2), Err(2));
/// assert_eq!(Side::Buy as u8, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    /// Buyer-initiated (byte 0).
    Buy = 0,
    /// Seller-initiated (byte 1).
    Sell = 1,
}

impl TryFrom<u8> for Side {
    type Error = u8;

    /// Decodes a side byte, giving it back if it is neither 0 nor 1.
    fn try_from(raw: u8) -> Result<Self, u8> {
        match raw {
            0 => Ok(Side::Buy),
            1 => Ok(Side::Sell),
            other => Err(other),
        }
    }
}

/// Venue ids used in instruments and by [`GasPriceTlv`].
pub mod venue {
    /// Binance.
    pub const BINANCE: u16 = 100;
    /// Kraken.
    pub const KRAKEN: u16 = 101;
    /// Coinbase.
    pub const COINBASE: u16 = 102;
    /// Polygon, as a network id in [`GasPriceTlv`](super::GasPriceTlv).
    pub const POLYGON: u16 = 137;
}

/// Asset type of a coin (a ticker packed in the asset id).
pub const ASSET_TYPE_COIN: u8 = 51;

/// An instrument as the payloads describe it: asset id, asset type, a
/// reserved byte, and the venue. A plain value used to fill payloads.
///
/// # Examples
///
/// ```
/// use shmbus::record::{venue, Instrument};
///
/// let btc = Instrument::coin(venue::BINANCE, "BTC").expect("short ascii ticker");
/// assert_eq!(btc.asset_id, 0x4254_4300_0000_0000);
/// assert_eq!(btc.ticker().as_deref(), Some("BTC"));
/// assert!(Instrument::coin(venue::BINANCE, "TOOLONGXX").is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instrument {
    /// Asset id; for coins, the ticker's ASCII bytes packed big-endian.
    pub asset_id: u64,
    /// Venue id (see [`venue`]).
    pub venue_id: u16,
    /// Asset type ([`ASSET_TYPE_COIN`] for coins).
    pub asset_type: u8,
    /// Reserved byte of the instrument id, 0.
    pub reserved: u8,
}

impl Instrument {
    /// A coin on a venue, from its ticker (1 to 8 ASCII alphanumerics).
    pub fn coin(venue_id: u16, ticker: &str) -> Option<Self> {
        Some(Instrument {
            asset_id: ticker_asset_id(ticker)?,
            venue_id,
            asset_type: ASSET_TYPE_COIN,
            reserved: 0,
        })
    }

    /// The ticker packed in the asset id, if it holds one.
    pub fn ticker(&self) -> Option<Ticker> {
        Ticker::from_asset_id(self.asset_id)
    }
}

/// Packs a ticker (1 to 8 ASCII alphanumerics) into an asset id: its bytes
/// big-endian, zero-padded on the right.
///
/// # Examples
///
/// ```
/// use shmbus::record::ticker_asset_id;
///
/// assert_eq!(ticker_asset_id("BTC"), Some(4_779_518_771_825_999_872));
/// assert_eq!(ticker_asset_id(""), None);
/// assert_eq!(ticker_asset_id("BT C"), None);
/// ```
pub fn ticker_asset_id(ticker: &str) -> Option<u64> {
    let bytes = ticker.as_bytes();
    if bytes.is_empty() || bytes.len() > 8 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut packed = [0u8; 8];
    packed.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(u64::from_be_bytes(packed))
}

/// A ticker unpacked from an asset id, held inline (no allocation).
///
/// # Examples
///
/// ```
/// use shmbus::record::Ticker;
///
/// let t = Ticker::from_asset_id(0x4554_4800_0000_0000).expect("ETH");
/// assert_eq!(t.as_str(), "ETH");
/// assert_eq!(t.to_string(), "ETH");
/// assert!(Ticker::from_asset_id(0x0000_0000_0000_0001).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticker {
    bytes: [u8; 8],
    len: u8,
}

impl Ticker {
    /// Unpacks an asset id made by [`ticker_asset_id`]; `None` if it is not
    /// 1 to 8 ASCII alphanumerics followed only by zero bytes.
    pub fn from_asset_id(asset_id: u64) -> Option<Self> {
        let bytes = asset_id.to_be_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(8);
        let (text, pad) = bytes.split_at(len);
        if len == 0 || !text.iter().all(u8::is_ascii_alphanumeric) || pad.iter().any(|&b| b != 0) {
            return None;
        }
        Some(Ticker {
            bytes,
            len: len as u8,
        })
    }

    /// The ticker text.
    pub fn as_str(&self) -> &str {
        let text = self.bytes.get(..self.len as usize).unwrap_or_default();
        // Only ASCII alphanumerics are ever stored, so this cannot fail.
        core::str::from_utf8(text).unwrap_or_default()
    }
}

impl core::ops::Deref for Ticker {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trade print, TLV type 1, 40 bytes.
///
/// ```text
///  0        8        16       24                   32     34   35   36   37      40
/// +--------+--------+--------+--------------------+------+----+----+----+-------+
/// |asset_id| price  | volume | execution_ts_ns    |venue |type|rsvd|side|padding|
/// +--------+--------+--------+--------------------+------+----+----+----+-------+
/// ```
///
/// # Examples
///
/// ```
/// use shmbus::record::{venue, Fixed8, Instrument, Side, TradeTlv};
///
/// let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
/// let t = TradeTlv::new(btc, Fixed8::from_raw(6_512_345_678_900), Fixed8::from_raw(12_500_000), Side::Buy, 1_700_000_000_122_456_789);
/// assert_eq!(t.instrument(), btc);
/// assert_eq!(t.side(), Some(Side::Buy));
/// assert_eq!(t.volume().to_f64(), 0.125);
/// assert_eq!(zerocopy::IntoBytes::as_bytes(&t).len(), 40);
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct TradeTlv {
    /// Instrument asset id.
    pub asset_id: U64,
    /// Price, 8 decimals.
    pub price: I64,
    /// Volume, 8 decimals.
    pub volume: I64,
    /// Exchange execution time, ns since the Unix epoch.
    pub execution_timestamp_ns: U64,
    /// Venue id.
    pub venue_id: U16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
    /// Raw side byte; see [`TradeTlv::side`].
    pub side: u8,
    /// Zero.
    pub padding: [u8; 3],
}

impl TlvPayload for TradeTlv {
    const TLV_TYPE: TlvType = TlvType::Trade;
}

/// `instrument()` and `set_instrument()` for payloads that carry the four
/// instrument fields (`asset_id`, `venue_id`, `asset_type`, `reserved`).
macro_rules! instrument_accessors {
    ($($payload:ty),*) => {$(
        impl $payload {
            /// The instrument.
            #[inline]
            pub fn instrument(&self) -> Instrument {
                Instrument {
                    asset_id: self.asset_id.get(),
                    venue_id: self.venue_id.get(),
                    asset_type: self.asset_type,
                    reserved: self.reserved,
                }
            }

            /// Sets the instrument fields.
            #[inline]
            pub fn set_instrument(&mut self, instrument: Instrument) {
                self.asset_id.set(instrument.asset_id);
                self.venue_id.set(instrument.venue_id);
                self.asset_type = instrument.asset_type;
                self.reserved = instrument.reserved;
            }
        }
    )*};
}

instrument_accessors!(TradeTlv, QuoteTlv, OrderBookTlv);

impl TradeTlv {
    /// A trade with zero padding.
    #[inline]
    pub fn new(
        instrument: Instrument,
        price: Fixed8,
        volume: Fixed8,
        side: Side,
        execution_timestamp_ns: u64,
    ) -> Self {
        TradeTlv {
            asset_id: U64::new(instrument.asset_id),
            price: I64::new(price.raw()),
            volume: I64::new(volume.raw()),
            execution_timestamp_ns: U64::new(execution_timestamp_ns),
            venue_id: U16::new(instrument.venue_id),
            asset_type: instrument.asset_type,
            reserved: instrument.reserved,
            side: side as u8,
            padding: [0; 3],
        }
    }

    /// The price.
    #[inline]
    pub fn price(&self) -> Fixed8 {
        Fixed8(self.price.get())
    }

    /// Sets the price.
    #[inline]
    pub fn set_price(&mut self, price: Fixed8) {
        self.price.set(price.raw());
    }

    /// The volume.
    #[inline]
    pub fn volume(&self) -> Fixed8 {
        Fixed8(self.volume.get())
    }

    /// Sets the volume.
    #[inline]
    pub fn set_volume(&mut self, volume: Fixed8) {
        self.volume.set(volume.raw());
    }

    /// The side, or `None` for a byte other than 0 or 1.
    #[inline]
    pub fn side(&self) -> Option<Side> {
        Side::try_from(self.side).ok()
    }

    /// Sets the side.
    #[inline]
    pub fn set_side(&mut self, side: Side) {
        self.side = side as u8;
    }

    /// The exchange execution time, ns since the Unix epoch.
    #[inline]
    pub fn execution_timestamp_ns(&self) -> u64 {
        self.execution_timestamp_ns.get()
    }
}

/// Best bid and offer, TLV type 2, 52 bytes on the wire.
///
/// The reference struct is 56 bytes (4 bytes of trailing padding) while its
/// registry says 52. shmbus's struct is the 52 wire bytes; [`view`](TlvPayload::view)
/// also reads the first 52 bytes of a 56-byte payload, which the parser
/// lets through only with [`SizePolicy::LegacyStructs`](crate::record::SizePolicy::LegacyStructs).
///
/// ```text
///  0        8         16        24        32        40             48    50   51  52
/// +--------+---------+---------+---------+---------+--------------+-----+----+----+
/// |asset_id|bid_price|bid_size |ask_price|ask_size |quote_ts_ns   |venue|type|rsvd|
/// +--------+---------+---------+---------+---------+--------------+-----+----+----+
/// ```
///
/// # Examples
///
/// ```
/// use shmbus::record::{venue, Fixed8, Instrument, QuoteTlv, TlvPayload};
///
/// let eth = Instrument::coin(venue::KRAKEN, "ETH").expect("ticker");
/// let q = QuoteTlv::new(eth, Fixed8::from_raw(350_025_000_000), Fixed8::from_raw(150_000_000),
///                       Fixed8::from_raw(350_050_000_000), Fixed8::from_raw(75_000_000), 1);
/// assert_eq!(q.spread(), Fixed8::from_raw(25_000_000));
/// let mut wire56 = [0u8; 56];
/// wire56[..52].copy_from_slice(zerocopy::IntoBytes::as_bytes(&q));
/// assert_eq!(QuoteTlv::view(&wire56), Some(&q));
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct QuoteTlv {
    /// Instrument asset id.
    pub asset_id: U64,
    /// Best bid price, 8 decimals.
    pub bid_price: I64,
    /// Size at the best bid, 8 decimals.
    pub bid_size: I64,
    /// Best ask price, 8 decimals.
    pub ask_price: I64,
    /// Size at the best ask, 8 decimals.
    pub ask_size: I64,
    /// Quote time, ns since the Unix epoch.
    pub quote_timestamp_ns: U64,
    /// Venue id.
    pub venue_id: U16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
}

impl TlvPayload for QuoteTlv {
    const TLV_TYPE: TlvType = TlvType::Quote;

    /// Reads a 52-byte payload, or the first 52 bytes of the reference's
    /// 56-byte struct.
    #[inline]
    fn view(payload: &[u8]) -> Option<&Self> {
        match payload.len() {
            52 | 56 => Self::ref_from_prefix(payload).ok().map(|(q, _)| q),
            _ => None,
        }
    }
}

impl QuoteTlv {
    /// A quote.
    #[inline]
    pub fn new(
        instrument: Instrument,
        bid_price: Fixed8,
        bid_size: Fixed8,
        ask_price: Fixed8,
        ask_size: Fixed8,
        quote_timestamp_ns: u64,
    ) -> Self {
        QuoteTlv {
            asset_id: U64::new(instrument.asset_id),
            bid_price: I64::new(bid_price.raw()),
            bid_size: I64::new(bid_size.raw()),
            ask_price: I64::new(ask_price.raw()),
            ask_size: I64::new(ask_size.raw()),
            quote_timestamp_ns: U64::new(quote_timestamp_ns),
            venue_id: U16::new(instrument.venue_id),
            asset_type: instrument.asset_type,
            reserved: instrument.reserved,
        }
    }

    /// Best bid price.
    #[inline]
    pub fn bid_price(&self) -> Fixed8 {
        Fixed8(self.bid_price.get())
    }

    /// Size at the best bid.
    #[inline]
    pub fn bid_size(&self) -> Fixed8 {
        Fixed8(self.bid_size.get())
    }

    /// Best ask price.
    #[inline]
    pub fn ask_price(&self) -> Fixed8 {
        Fixed8(self.ask_price.get())
    }

    /// Size at the best ask.
    #[inline]
    pub fn ask_size(&self) -> Fixed8 {
        Fixed8(self.ask_size.get())
    }

    /// Ask minus bid (wrapping on absurd inputs rather than panicking).
    #[inline]
    pub fn spread(&self) -> Fixed8 {
        Fixed8(self.ask_price.get().wrapping_sub(self.bid_price.get()))
    }

    /// Quote time, ns since the Unix epoch.
    #[inline]
    pub fn quote_timestamp_ns(&self) -> u64 {
        self.quote_timestamp_ns.get()
    }
}

/// One price level of an order book, 24 bytes.
///
/// # Examples
///
/// ```
/// use shmbus::record::{Fixed8, OrderLevel};
///
/// let l = OrderLevel::new(Fixed8::from_raw(100), Fixed8::from_raw(5), 2);
/// assert_eq!((l.price().raw(), l.size().raw(), l.order_count()), (100, 5, 2));
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct OrderLevel {
    /// Price, 8 decimals (or the book's precision factor).
    pub price: I64,
    /// Size, 8 decimals.
    pub size: I64,
    /// Number of orders at this level (0 if the venue does not say).
    pub order_count: U32,
    /// Zero.
    pub reserved: U32,
}

impl OrderLevel {
    /// A level with reserved 0.
    #[inline]
    pub fn new(price: Fixed8, size: Fixed8, order_count: u32) -> Self {
        OrderLevel {
            price: I64::new(price.raw()),
            size: I64::new(size.raw()),
            order_count: U32::new(order_count),
            reserved: U32::ZERO,
        }
    }

    /// The price.
    #[inline]
    pub fn price(&self) -> Fixed8 {
        Fixed8(self.price.get())
    }

    /// The size.
    #[inline]
    pub fn size(&self) -> Fixed8 {
        Fixed8(self.size.get())
    }

    /// The number of orders.
    #[inline]
    pub fn order_count(&self) -> u32 {
        self.order_count.get()
    }
}

/// Number of level slots on each side of an [`OrderBookTlv`].
pub const MAX_BOOK_LEVELS: usize = 50;

/// One side of an order book: a count and 50 level slots, 1208 bytes.
/// Slots at and past `count` are zero when shmbus writes them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct OrderLevels {
    /// Number of levels in use, 0..=50 (a larger wire value reads as 50).
    pub count: U16,
    /// Zero.
    pub padding: [u8; 6],
    /// The level slots.
    pub levels: [OrderLevel; MAX_BOOK_LEVELS],
}

/// The side of a book is full (50 levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookFull;

impl fmt::Display for BookFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order book side already holds {MAX_BOOK_LEVELS} levels")
    }
}

impl std::error::Error for BookFull {}

impl OrderLevels {
    /// The levels in use (at most 50, whatever the wire count says).
    #[inline]
    pub fn as_slice(&self) -> &[OrderLevel] {
        let n = (self.count.get() as usize).min(MAX_BOOK_LEVELS);
        self.levels.get(..n).unwrap_or_default()
    }

    /// Appends a level after the ones in use.
    ///
    /// # Errors
    ///
    /// [`BookFull`] when 50 levels are in use.
    #[inline]
    pub fn push(&mut self, level: OrderLevel) -> Result<(), BookFull> {
        let n = self.count.get() as usize;
        let slot = self.levels.get_mut(n).ok_or(BookFull)?;
        *slot = level;
        self.count.set(n as u16 + 1);
        Ok(())
    }
}

/// An order-book snapshot, TLV type 3, 2456 bytes (so always extended form).
///
/// ```text
///  0              8          16                24        32    34   35   36      40
/// +--------------+----------+-----------------+---------+-----+----+----+-------+
/// |snapshot_ts_ns| sequence | precision_factor|asset_id |venue|type|rsvd|padding|
/// +--------------+----------+-----------------+---------+-----+----+----+-------+
///  40                                  1248                                 2456
/// +-----------------------------------+--------------------------------------+
/// | bids: count, 6 zero, 50 x level   | asks: count, 6 zero, 50 x level      |
/// +-----------------------------------+--------------------------------------+
/// ```
///
/// Bids are best (highest) first, asks best (lowest) first.
///
/// # Examples
///
/// ```
/// use shmbus::record::{venue, Fixed8, Instrument, OrderBookTlv, OrderLevel};
/// use zerocopy::FromZeros;
///
/// let mut book = OrderBookTlv::new_zeroed();
/// book.set_instrument(Instrument::coin(venue::BINANCE, "BTC").expect("ticker"));
/// book.bids.push(OrderLevel::new(Fixed8::from_raw(6_512_400_000_000), Fixed8::from_raw(10_000_000), 1))?;
/// assert_eq!(book.bids().len(), 1);
/// assert!(book.asks().is_empty());
/// # Ok::<(), shmbus::record::BookFull>(())
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct OrderBookTlv {
    /// Snapshot time, ns since the Unix epoch.
    pub snapshot_timestamp_ns: U64,
    /// Venue sequence number, for gap detection.
    pub sequence: U64,
    /// Raw units per 1.0 of prices (10^8 for 8-decimal venues).
    pub precision_factor: I64,
    /// Instrument asset id.
    pub asset_id: U64,
    /// Venue id.
    pub venue_id: U16,
    /// Instrument asset type.
    pub asset_type: u8,
    /// Instrument reserved byte.
    pub reserved: u8,
    /// Padding: zero when shmbus writes it, ignored when read (the
    /// reference leaves it uninitialised).
    pub padding: [u8; 4],
    /// Bid side.
    pub bids: OrderLevels,
    /// Ask side.
    pub asks: OrderLevels,
}

impl TlvPayload for OrderBookTlv {
    const TLV_TYPE: TlvType = TlvType::OrderBook;
}

impl OrderBookTlv {
    /// Bid levels in use, best first.
    #[inline]
    pub fn bids(&self) -> &[OrderLevel] {
        self.bids.as_slice()
    }

    /// Ask levels in use, best first.
    #[inline]
    pub fn asks(&self) -> &[OrderLevel] {
        self.asks.as_slice()
    }

    /// Snapshot time, ns since the Unix epoch.
    #[inline]
    pub fn snapshot_timestamp_ns(&self) -> u64 {
        self.snapshot_timestamp_ns.get()
    }

    /// Venue sequence number.
    #[inline]
    pub fn sequence(&self) -> u64 {
        self.sequence.get()
    }

    /// Raw price units per 1.0.
    #[inline]
    pub fn precision_factor(&self) -> i64 {
        self.precision_factor.get()
    }
}

/// Gas price of a chain, TLV type 18, 32 bytes.
///
/// # Examples
///
/// ```
/// use shmbus::record::{venue, GasPriceTlv};
///
/// let g = GasPriceTlv::new(venue::POLYGON, 50_000_000, 30, 2, 1_700_000_000_000_000_000);
/// assert_eq!(g.gas_price_gwei(), 32);
/// assert_eq!(GasPriceTlv::new(venue::POLYGON, 1, u32::MAX, 5, 0).gas_price_gwei(), u32::MAX);
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GasPriceTlv {
    /// Block number.
    pub block_number: U64,
    /// Observation time, ns since the Unix epoch.
    pub timestamp_ns: U64,
    /// Base plus priority fee, saturating, in gwei.
    pub gas_price_gwei: U32,
    /// Base fee in gwei.
    pub base_fee_gwei: U32,
    /// Priority fee in gwei.
    pub priority_fee_gwei: U32,
    /// Network id (see [`venue::POLYGON`]).
    pub venue: U16,
    /// Zero.
    pub reserved: U16,
}

impl TlvPayload for GasPriceTlv {
    const TLV_TYPE: TlvType = TlvType::GasPrice;
}

impl GasPriceTlv {
    /// A gas price; the total is base plus priority, saturating.
    #[inline]
    pub fn new(
        network: u16,
        block_number: u64,
        base_fee_gwei: u32,
        priority_fee_gwei: u32,
        timestamp_ns: u64,
    ) -> Self {
        GasPriceTlv {
            block_number: U64::new(block_number),
            timestamp_ns: U64::new(timestamp_ns),
            gas_price_gwei: U32::new(base_fee_gwei.saturating_add(priority_fee_gwei)),
            base_fee_gwei: U32::new(base_fee_gwei),
            priority_fee_gwei: U32::new(priority_fee_gwei),
            venue: U16::new(network),
            reserved: U16::ZERO,
        }
    }

    /// Total gas price in gwei.
    #[inline]
    pub fn gas_price_gwei(&self) -> u32 {
        self.gas_price_gwei.get()
    }

    /// Block number.
    #[inline]
    pub fn block_number(&self) -> u64 {
        self.block_number.get()
    }
}

/// An arbitrage opportunity, TLV type 32: the reference's packed 170-byte
/// struct.
///
/// The registry says 168 bytes, so neither the reference parser nor
/// shmbus's default policy accepts this payload: it travels only with
/// [`SizePolicy::LegacyStructs`](crate::record::SizePolicy::LegacyStructs)
/// on both the builder and the parser (see the module docs). USD amounts
/// (`*_usd_q8`) have 8 decimals.
///
/// # Examples
///
/// ```
/// use shmbus::record::ArbitrageSignalTlv;
/// use zerocopy::FromZeros;
///
/// let mut s = ArbitrageSignalTlv::new_zeroed();
/// s.net_profit_usd_q8.set(1_050_000_000);
/// assert_eq!(s.net_profit_usd().to_string(), "10.50000000");
/// assert_eq!(zerocopy::IntoBytes::as_bytes(&s).len(), 170);
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ArbitrageSignalTlv {
    /// Strategy id.
    pub strategy_id: U16,
    /// Signal id.
    pub signal_id: U64,
    /// Chain id (137 = Polygon).
    pub chain_id: U32,
    /// Pool bought from.
    pub source_pool: [u8; 20],
    /// Pool sold to.
    pub target_pool: [u8; 20],
    /// Venue of the source pool.
    pub source_venue: U16,
    /// Venue of the target pool.
    pub target_venue: U16,
    /// Token paid in.
    pub token_in: [u8; 20],
    /// Token received.
    pub token_out: [u8; 20],
    /// Expected profit, USD with 8 decimals.
    pub expected_profit_usd_q8: I64,
    /// Capital required, USD with 8 decimals.
    pub required_capital_usd_q8: I64,
    /// Spread in basis points.
    pub spread_bps: U16,
    /// DEX fees, USD with 8 decimals.
    pub dex_fees_usd_q8: I64,
    /// Gas cost, USD with 8 decimals.
    pub gas_cost_usd_q8: I64,
    /// Slippage, USD with 8 decimals.
    pub slippage_usd_q8: I64,
    /// Net profit, USD with 8 decimals.
    pub net_profit_usd_q8: I64,
    /// Slippage tolerance in basis points.
    pub slippage_tolerance_bps: U16,
    /// Highest acceptable gas price in gwei.
    pub max_gas_price_gwei: U32,
    /// Expiry, Unix seconds.
    pub valid_until: U32,
    /// Priority.
    pub priority: U16,
    /// Zero.
    pub reserved: [u8; 2],
    /// Signal time, ns since the Unix epoch.
    pub timestamp_ns: U64,
}

impl TlvPayload for ArbitrageSignalTlv {
    const TLV_TYPE: TlvType = TlvType::ArbitrageSignal;
}

impl ArbitrageSignalTlv {
    /// Expected profit in USD.
    #[inline]
    pub fn expected_profit_usd(&self) -> Fixed8 {
        Fixed8(self.expected_profit_usd_q8.get())
    }

    /// Net profit in USD.
    #[inline]
    pub fn net_profit_usd(&self) -> Fixed8 {
        Fixed8(self.net_profit_usd_q8.get())
    }

    /// Capital required in USD.
    #[inline]
    pub fn required_capital_usd(&self) -> Fixed8 {
        Fixed8(self.required_capital_usd_q8.get())
    }
}

macro_rules! opaque_payloads {
    ($($(#[$doc:meta])* $name:ident : $tlv:ident, $len:literal;)*) => {$(
        $(#[$doc])*
        ///
        /// The reference defines only the registry size of this type, no
        /// field layout, so shmbus carries it as opaque bytes of exactly
        /// that size.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
        #[repr(C)]
        pub struct $name {
            /// The payload bytes.
            pub bytes: [u8; $len],
        }

        impl TlvPayload for $name {
            const TLV_TYPE: TlvType = TlvType::$tlv;
        }

        impl $name {
            /// Wraps payload bytes.
            #[inline]
            pub const fn new(bytes: [u8; $len]) -> Self {
                $name { bytes }
            }
        }
    )*};
}

opaque_payloads! {
    /// Signal identity, TLV type 20, 16 bytes.
    SignalIdentityTlv: SignalIdentity, 16;
    /// Signal economics, TLV type 22, 32 bytes.
    EconomicsTlv: Economics, 32;
    /// Order request, TLV type 40, 32 bytes.
    OrderRequestTlv: OrderRequest, 32;
    /// Fill, TLV type 42, 32 bytes.
    FillTlv: Fill, 32;
    /// Order cancel, TLV type 43, 16 bytes.
    OrderCancelTlv: OrderCancel, 16;
    /// Heartbeat, TLV type 100, 16 bytes.
    HeartbeatTlv: Heartbeat, 16;
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<TradeTlv>() == 40);
    assert!(offset_of!(TradeTlv, side) == 36);
    assert!(size_of::<QuoteTlv>() == 52);
    assert!(offset_of!(QuoteTlv, venue_id) == 48);
    assert!(size_of::<OrderLevel>() == 24);
    assert!(size_of::<OrderLevels>() == 1208);
    assert!(size_of::<OrderBookTlv>() == 2456);
    assert!(offset_of!(OrderBookTlv, bids) == 40);
    assert!(offset_of!(OrderBookTlv, asks) == 1248);
    assert!(size_of::<GasPriceTlv>() == 32);
    assert!(offset_of!(GasPriceTlv, venue) == 28);
    assert!(size_of::<ArbitrageSignalTlv>() == 170);
    assert!(offset_of!(ArbitrageSignalTlv, spread_bps) == 114);
    assert!(offset_of!(ArbitrageSignalTlv, timestamp_ns) == 162);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_len_is_what_a_message_of_one_payload_takes() {
        use crate::record::{Checksum, MessageBuilder, RelayDomain, SourceType};
        // FORMAT.md: a 32-byte header, a 2-byte TLV header, a 40-byte Trade.
        assert_eq!(TradeTlv::MESSAGE_LEN, 74);
        let mut buf = [0u8; 512];
        let len = MessageBuilder::new(
            &mut buf,
            RelayDomain::MarketData,
            SourceType::BinanceCollector,
        )
        .typed_in_place(|_: &mut TradeTlv| {})
        .finish(Checksum::Zero)
        .expect("fits");
        assert_eq!(len, TradeTlv::MESSAGE_LEN);
    }

    #[test]
    fn opaque_sizes_match_registry() {
        use crate::record::tlv::fixed_size;
        fn check<T: TlvPayload>() {
            assert_eq!(
                fixed_size(T::TLV_TYPE.number()).map(usize::from),
                Some(core::mem::size_of::<T>()),
                "{}",
                T::TLV_TYPE.name()
            );
        }
        check::<TradeTlv>();
        check::<QuoteTlv>();
        check::<GasPriceTlv>();
        check::<SignalIdentityTlv>();
        check::<EconomicsTlv>();
        check::<OrderRequestTlv>();
        check::<FillTlv>();
        check::<OrderCancelTlv>();
        check::<HeartbeatTlv>();
    }

    #[test]
    fn fixed8_display_extremes() {
        assert_eq!(
            Fixed8::from_raw(i64::MIN).to_string(),
            "-92233720368.54775808"
        );
        assert_eq!(Fixed8::from_raw(1).to_string(), "0.00000001");
        assert_eq!(Fixed8::from_f64(f64::NAN), None);
        assert_eq!(Fixed8::from_f64(1e12), None);
    }

    #[test]
    fn book_side_clamps_hostile_count() {
        use zerocopy::FromZeros;
        let mut side = OrderLevels::new_zeroed();
        side.count.set(u16::MAX);
        assert_eq!(side.as_slice().len(), MAX_BOOK_LEVELS);
        assert_eq!(side.push(OrderLevel::new_zeroed()), Err(BookFull));
        side.count.set(0);
        for _ in 0..MAX_BOOK_LEVELS {
            assert_eq!(side.push(OrderLevel::new_zeroed()), Ok(()));
        }
        assert_eq!(side.push(OrderLevel::new_zeroed()), Err(BookFull));
    }

    #[test]
    fn ticker_rejects_garbage_after_padding() {
        assert!(Ticker::from_asset_id(u64::from_be_bytes(*b"BT\0C\0\0\0\0")).is_none());
        assert_eq!(
            Ticker::from_asset_id(u64::from_be_bytes(*b"ABCDEFGH")).map(|t| t.to_string()),
            Some("ABCDEFGH".to_string())
        );
    }
}
