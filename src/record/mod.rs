//! Protocol V2 records: the TLV message format that existing trading
//! services speak, built and parsed in place with no allocation.
//!
//! | module part | what it holds |
//! |---|---|
//! | [`MessageHeader`], [`RelayDomain`], [`SourceType`] | the 32-byte header as a zero-copy struct |
//! | [`MessageBuilder`] | writes a message into a caller's buffer (later: a claimed ring slot) |
//! | [`MessageView`], [`Tlv`], [`TlvWalker`] | validates a borrowed message and walks its items |
//! | [`TradeTlv`], [`QuoteTlv`], [`OrderBookTlv`], ... | typed payloads, viewed and written in place |
//! | [`TlvType`], [`SizeConstraint`] | the registry of type numbers |
//! | [`route`], [`DomainTopic`] | which topic a message is published on |
//!
//! # The format
//!
//! A message is a fixed 32-byte header and then a region of TLV items that
//! runs to the end of the message. Multi-byte integers are little-endian;
//! nothing is aligned, and nothing pads the header, the items, or the
//! space between them.
//!
//! The header (see [`MessageHeader`] for the byte diagram) opens with the
//! magic number `0xDEADBEEF`, then four single bytes: the relay domain
//! (1 market data, 2 signal, 3 execution, 4 system), the protocol version
//! (1), the id of the sending service and a flags byte with no defined
//! bits. A per-source sequence number and a nanosecond timestamp follow as
//! 64-bit words, then `payload_size`, the length of the TLV region, and
//! the checksum.
//!
//! The checksum is the ordinary CRC-32 (ISO-HDLC, as zlib computes it) of
//! the message with the four checksum bytes cut out: header bytes 0..28,
//! then everything from byte 32 on. Producers on the hot path store 0
//! instead ([`message_checksum`] computes it).
//!
//! Each TLV item is a type byte, a length and that many payload bytes.
//! Payloads up to 255 bytes use the standard form, a 2-byte header
//! `[type, len]`; larger ones (up to 65535) use the extended form, a 5-byte
//! header `[255, 0, type, len as u16 LE]`. A first byte of 255 therefore
//! always announces the extended form, and 255 is never a type. The items
//! must fill the region exactly; there is no count and no terminator.
//! Types are numbered by domain ([`TlvType`] lists them with their size
//! rules); unknown numbers, including the vendor range 200-254, are
//! carried as opaque items.
//!
//! # Where shmbus departs from the reference implementation
//!
//! The reference code that existing services run has known defects. Each
//! is decided here once; the golden-vector test
//! (`tests/protocol_v2_vectors.rs`) states every verdict that differs.
//!
//! * **Misaligned buffers.** The reference views the header as an
//!   8-byte-aligned struct and fails with "message too small" on any
//!   buffer that does not start on an 8-byte boundary. Every shmbus type
//!   here has alignment 1, so messages parse at any address: records in a
//!   ring are packed and cannot promise alignment.
//! * **`payload_size` is never checked** by the reference parser, which
//!   walks whatever follows the header, while other reference code slices
//!   `msg[32..32 + payload_size]` and would panic. shmbus requires
//!   `payload_size == len - 32` ([`ParseErrorKind::PayloadSizeMismatch`]),
//!   checked before the checksum, so a truncated message is reported as
//!   truncated rather than as corrupted. Stricter than the reference.
//! * **Checksum 0.** The reference parser always verifies the CRC, so it
//!   rejects every message of the reference hot path, which stores 0;
//!   another reference validator skips the check when the stored value is
//!   0. shmbus makes it a parser option, [`Verify`]: `Strict` (the
//!   default, the reference parser's rule), `ZeroMeansUnchecked` (the
//!   validator's rule) or `Off` (the in-host hot path, where corruption is
//!   not the threat and the CRC would cost more than the rest of the parse).
//!   The builder computes the CRC on request ([`Checksum::Compute`]) or
//!   stores 0 ([`Checksum::Zero`]). A third reference variant, a CRC of
//!   the payload alone, is not supported.
//! * **Quote: 52 or 56 bytes; ArbitrageSignal: 168 or 170.** The registry
//!   says Quote (and QuoteUpdate) are 52 bytes and ArbitrageSignal 168, but
//!   the reference structs are 56 and 170, and its hot path sends the
//!   struct sizes, which its own parser then rejects. shmbus takes the
//!   registry as canonical: by default ([`SizePolicy::Registry`]) parser
//!   and builder accept only 52 and 168, like the reference parser.
//!   [`SizePolicy::LegacyStructs`] additionally accepts 56 and 170, for
//!   traffic from reference producers. [`QuoteTlv`] is the 52 meaningful
//!   bytes and reads either length; [`ArbitrageSignalTlv`] is the 170-byte
//!   struct (no 168-byte layout exists), so it travels only under the
//!   legacy policy. Bounded size ranges are informational and never
//!   enforced: reference producers exceed some of them.
//! * **Fixed sizes in extended form, and inner type 255.** The reference
//!   checks fixed sizes only on standard items, and accepts an extended
//!   item whose inner type is 255. shmbus checks fixed sizes in both forms
//!   and rejects inner type 255 ([`ParseErrorKind::InvalidExtendedTlv`]).
//!   It does accept an extended item of 255 bytes or fewer, which its
//!   builder never writes unless asked with [`MessageBuilder::form`]. With
//!   these rules, every message shmbus accepts can be rebuilt byte for byte
//!   from what the parser reports; the property tests check it.
//! * **Padding.** The reference leaves four bytes of the order book
//!   (payload offsets 36..40) uninitialised. shmbus writes every padding
//!   byte as zero and never reads one.
//! * **Domain and source numbers.** One reference file numbers the relay
//!   domains from 0 and renumbers sources; the wire, the relays and the
//!   vectors use 1-based domains and the source table of [`SourceType`],
//!   and so does shmbus. Unknown domain, source, version and flag values
//!   are accepted and readable raw, as in the reference.
//! * **Domain of a type.** Numbers 60-79 are routed to the signal domain
//!   by the registry but allowed in execution messages by a validator.
//!   shmbus never ties types to domains: [`type_domain`] follows the
//!   registry as a hint, and any message may carry any type.
//! * **Trade side.** The reference struct says 0 = buy, 1 = sell, and its
//!   producers write that; one consumer reads 1 = buy, 2 = sell. shmbus
//!   follows the struct ([`Side`]); other bytes read as `None` and stay
//!   available raw.
//! * **Timestamp 0.** The reference builder replaces a zero timestamp with
//!   the current time, and its hot path stamps the clock and a process-wide
//!   sequence. shmbus writes exactly what the caller sets (default 0 for
//!   both) and never reads a clock: output is a function of input, which is
//!   what makes byte-exact tests and replay possible.
//! * **Oversized payloads.** The reference builder truncates the 16-bit
//!   length of a payload over 65535 bytes; shmbus refuses it
//!   ([`BuildError::PayloadTooLarge`]).
//! * **Older header layouts** (before the present one, which put
//!   `payload_size` at offset 8) are not supported; such a message almost
//!   always fails the `payload_size` check.
//!
//! # Example
//!
//! ```
//! use shmbus::record::{
//!     route, venue, Checksum, Fixed8, Instrument, MessageBuilder, MessageView, ParseOptions,
//!     RelayDomain, Side, SourceType, DomainTopic, TradeTlv, Verify,
//! };
//!
//! let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
//! let mut slot = [0u8; 256];
//! let len = MessageBuilder::new(&mut slot, RelayDomain::MarketData, SourceType::BinanceCollector)
//!     .sequence(7)
//!     .timestamp_ns(1_700_000_000_123_456_789)
//!     .typed_in_place(|t: &mut TradeTlv| {
//!         t.set_instrument(btc);
//!         t.set_price(Fixed8::from_raw(6_512_345_678_900));
//!         t.set_volume(Fixed8::from_raw(12_500_000));
//!         t.set_side(Side::Sell);
//!     })
//!     .finish(Checksum::Zero)?;
//!
//! let msg = &slot[..len];
//! assert_eq!(route(msg)?, DomainTopic::MarketData);
//! let view = MessageView::parse(msg, ParseOptions::new(Verify::Off))?;
//! let trade = view.first::<TradeTlv>().expect("a trade");
//! assert_eq!(trade.instrument().ticker().as_deref(), Some("BTC"));
//! assert_eq!(trade.side(), Some(Side::Sell));
//! assert_eq!(trade.price().to_f64(), 65_123.456789);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod error;
mod header;
mod parser;
mod payloads;
mod route;
mod summary;
mod tlv;

pub use builder::{Checksum, MessageBuilder};
pub use error::{BuildError, ParseError, ParseErrorKind, RouteError};
pub use header::{
    message_checksum, MessageHeader, RelayDomain, SourceType, CHECKSUM_OFFSET, HEADER_LEN, MAGIC,
    PAYLOAD_SIZE_OFFSET, PROTOCOL_VERSION,
};
pub use parser::{parse_header, MessageView, ParseOptions, Tlv, TlvWalker, Tlvs, Verify};
pub use payloads::{
    ticker_asset_id, venue, ArbitrageSignalTlv, BookFull, EconomicsTlv, FillTlv, Fixed8,
    GasPriceTlv, HeartbeatTlv, Instrument, OrderBookTlv, OrderCancelTlv, OrderLevel, OrderLevels,
    OrderRequestTlv, QuoteTlv, Side, SignalIdentityTlv, Ticker, TlvPayload, TradeTlv,
    ASSET_TYPE_COIN, MAX_BOOK_LEVELS,
};
pub use route::{route, DomainTopic};
pub use summary::{decode_v2, TlvSummary, V2Summary};
pub use tlv::{
    fixed_size, type_domain, Form, SizeConstraint, SizePolicy, TlvType, EXTENDED_HEADER_LEN,
    EXTENDED_MARKER, MAX_EXTENDED_PAYLOAD, MAX_STANDARD_PAYLOAD, STANDARD_HEADER_LEN,
};
