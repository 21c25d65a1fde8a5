//! The 32-byte message header, its typed fields and the checksum.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Length of the message header in bytes.
pub const HEADER_LEN: usize = 32;

/// The value of the header's `magic` field (`EF BE AD DE` on the wire).
pub const MAGIC: u32 = 0xDEAD_BEEF;

/// The protocol version the builder writes by default.
pub const PROTOCOL_VERSION: u8 = 1;

/// Message offset of the `payload_size` field.
pub const PAYLOAD_SIZE_OFFSET: usize = 24;

/// Message offset of the `checksum` field.
pub const CHECKSUM_OFFSET: usize = 28;

/// The Protocol V2 message header, exactly as it lies on the wire.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+  0
/// |                  magic = 0xDEADBEEF (u32 LE)                  |
/// +---------------+---------------+---------------+---------------+  4
/// | relay_domain  |    version    |    source     |     flags     |
/// +---------------+---------------+---------------+---------------+  8
/// |                       sequence (u64 LE)                       |
/// |                                                               |
/// +---------------------------------------------------------------+ 16
/// |               timestamp, ns since epoch (u64 LE)              |
/// |                                                               |
/// +---------------------------------------------------------------+ 24
/// |         payload_size: bytes of TLVs that follow (u32 LE)      |
/// +---------------------------------------------------------------+ 28
/// |                 checksum, CRC-32 (u32 LE)                     |
/// +---------------------------------------------------------------+ 32
/// ```
///
/// Every field is a byte array underneath, so the struct has alignment 1
/// and can be viewed in place at any address: unlike the reference, a
/// header that does not start on an 8-byte boundary is read normally.
///
/// # Examples
///
/// ```
/// use shmbus::record::{MessageHeader, RelayDomain};
/// use zerocopy::FromBytes;
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/md_trade.bin"
/// ))?;
/// let (header, _tlvs) = MessageHeader::ref_from_prefix(&bytes[..]).expect("32 bytes");
/// assert_eq!(header.relay_domain(), Some(RelayDomain::MarketData));
/// assert_eq!(header.payload_size(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MessageHeader {
    /// Always [`MAGIC`].
    pub magic: U32,
    /// Raw relay domain; see [`MessageHeader::relay_domain`].
    pub relay_domain: u8,
    /// Protocol version; [`PROTOCOL_VERSION`] today. Not checked by the parser.
    pub version: u8,
    /// Raw source id; see [`MessageHeader::source`].
    pub source: u8,
    /// Flag bits. The format defines none; they are carried through as is.
    pub flags: u8,
    /// Per-source sequence number.
    pub sequence: U64,
    /// Nanoseconds since the Unix epoch, as the producer wrote it.
    pub timestamp: U64,
    /// Length of the TLV region following the header.
    pub payload_size: U32,
    /// CRC-32 of the message without these four bytes, or 0 if not computed.
    pub checksum: U32,
}

const _: () = assert!(core::mem::size_of::<MessageHeader>() == HEADER_LEN);
const _: () = assert!(core::mem::offset_of!(MessageHeader, relay_domain) == 4);
const _: () = assert!(core::mem::offset_of!(MessageHeader, flags) == 7);
const _: () = assert!(core::mem::offset_of!(MessageHeader, sequence) == 8);
const _: () = assert!(core::mem::offset_of!(MessageHeader, timestamp) == 16);
const _: () = assert!(core::mem::offset_of!(MessageHeader, payload_size) == PAYLOAD_SIZE_OFFSET);
const _: () = assert!(core::mem::offset_of!(MessageHeader, checksum) == CHECKSUM_OFFSET);

impl MessageHeader {
    /// The `magic` field as a number.
    #[inline]
    pub fn magic(&self) -> u32 {
        self.magic.get()
    }

    /// The relay domain, or `None` if the byte is not one of 1..=4 (the raw
    /// byte is the public field `relay_domain`).
    #[inline]
    pub fn relay_domain(&self) -> Option<RelayDomain> {
        RelayDomain::from_u8(self.relay_domain)
    }

    /// The sending service, or `None` for an id the format does not list
    /// (the raw byte is the public field `source`).
    #[inline]
    pub fn source(&self) -> Option<SourceType> {
        SourceType::from_u8(self.source)
    }

    /// The sequence number.
    #[inline]
    pub fn sequence(&self) -> u64 {
        self.sequence.get()
    }

    /// The timestamp in nanoseconds since the Unix epoch.
    #[inline]
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp.get()
    }

    /// The declared length of the TLV region.
    #[inline]
    pub fn payload_size(&self) -> u32 {
        self.payload_size.get()
    }

    /// The stored checksum (0 when the producer did not compute one).
    #[inline]
    pub fn checksum(&self) -> u32 {
        self.checksum.get()
    }
}

/// The relay a message travels through, byte 4 of the header.
///
/// The format numbers them from 1; 0 and 5..=255 are not domains. (One
/// reference file numbers them from 0; the wire and every relay use these
/// values, see the module docs.)
///
/// # Examples
///
/// ```
/// use shmbus::record::RelayDomain;
///
/// assert_eq!(RelayDomain::try_from(3), Ok(RelayDomain::Execution));
/// assert_eq!(RelayDomain::try_from(0), Err(0));
/// assert_eq!(RelayDomain::Signal as u8, 2);
/// assert_eq!(RelayDomain::Signal.topic(), "signals");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RelayDomain {
    /// Trades, quotes, books, pool events.
    MarketData = 1,
    /// Strategy signals.
    Signal = 2,
    /// Orders, fills and execution reports.
    Execution = 3,
    /// Heartbeats, health and control.
    System = 4,
}

impl RelayDomain {
    /// Every domain, in wire order.
    pub const ALL: [RelayDomain; 4] = [
        RelayDomain::MarketData,
        RelayDomain::Signal,
        RelayDomain::Execution,
        RelayDomain::System,
    ];

    /// Decodes a domain byte; `None` for anything but 1..=4.
    #[inline]
    pub const fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(RelayDomain::MarketData),
            2 => Some(RelayDomain::Signal),
            3 => Some(RelayDomain::Execution),
            4 => Some(RelayDomain::System),
            _ => None,
        }
    }

    /// The name the format uses (`"MarketData"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            RelayDomain::MarketData => "MarketData",
            RelayDomain::Signal => "Signal",
            RelayDomain::Execution => "Execution",
            RelayDomain::System => "System",
        }
    }
}

impl TryFrom<u8> for RelayDomain {
    type Error = u8;

    /// Decodes a domain byte, giving the byte back if it is not a domain.
    fn try_from(raw: u8) -> Result<Self, u8> {
        RelayDomain::from_u8(raw).ok_or(raw)
    }
}

impl From<RelayDomain> for u8 {
    fn from(d: RelayDomain) -> u8 {
        d as u8
    }
}

macro_rules! source_types {
    ($($(#[$doc:meta])* $name:ident = $num:literal,)*) => {
        /// The service that sent a message, byte 6 of the header.
        ///
        /// The parser accepts any byte; ids not listed here are available
        /// through the raw field [`MessageHeader::source`](MessageHeader#structfield.source).
        ///
        /// # Examples
        ///
        /// ```
        /// use shmbus::record::SourceType;
        ///
        /// assert_eq!(SourceType::try_from(42), Ok(SourceType::ExecutionEngine));
        /// assert_eq!(SourceType::try_from(6), Err(6));
        /// assert_eq!(SourceType::KrakenCollector.name(), "KrakenCollector");
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum SourceType {
            $($(#[$doc])* $name = $num,)*
        }

        impl SourceType {
            /// Decodes a source byte; `None` for ids the format does not list.
            #[inline]
            pub const fn from_u8(raw: u8) -> Option<Self> {
                match raw {
                    $($num => Some(SourceType::$name),)*
                    _ => None,
                }
            }

            /// The service's name as the format spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(SourceType::$name => stringify!($name),)*
                }
            }
        }
    };
}

source_types! {
    /// Binance market-data collector.
    BinanceCollector = 1,
    /// Kraken market-data collector.
    KrakenCollector = 2,
    /// Coinbase market-data collector.
    CoinbaseCollector = 3,
    /// Polygon (chain) collector.
    PolygonCollector = 4,
    /// Gemini market-data collector.
    GeminiCollector = 5,
    /// Arbitrage strategy.
    ArbitrageStrategy = 20,
    /// Market-making strategy.
    MarketMaker = 21,
    /// Trend-following strategy.
    TrendFollower = 22,
    /// Kraken signal strategy.
    KrakenSignalStrategy = 23,
    /// Portfolio manager.
    PortfolioManager = 40,
    /// Risk manager.
    RiskManager = 41,
    /// Execution engine.
    ExecutionEngine = 42,
    /// Dashboard.
    Dashboard = 60,
    /// Metrics collector.
    MetricsCollector = 61,
    /// State manager.
    StateManager = 62,
    /// Market-data relay.
    MarketDataRelay = 80,
    /// Signal relay.
    SignalRelay = 81,
    /// Execution relay.
    ExecutionRelay = 82,
}

impl TryFrom<u8> for SourceType {
    type Error = u8;

    /// Decodes a source byte, giving the byte back if it is not listed.
    fn try_from(raw: u8) -> Result<Self, u8> {
        SourceType::from_u8(raw).ok_or(raw)
    }
}

impl From<SourceType> for u8 {
    fn from(s: SourceType) -> u8 {
        s as u8
    }
}

/// Computes the Protocol V2 checksum of a whole message.
///
/// CRC-32/ISO-HDLC (the zlib / PNG CRC) over bytes `0..28` followed by
/// bytes `32..`: the checksum field itself is skipped, not zeroed. A buffer
/// shorter than the header is hashed as far as it goes.
///
/// # Examples
///
/// ```
/// use shmbus::record::message_checksum;
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/md_trade.bin"
/// ))?;
/// assert_eq!(message_checksum(&bytes), 0xD947_5D7A);
/// assert_eq!(&bytes[28..32], &0xD947_5D7Au32.to_le_bytes());
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub fn message_checksum(msg: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let (head, rest) = msg.split_at(msg.len().min(CHECKSUM_OFFSET));
    hasher.update(head);
    if let Some(tail) = rest.get(HEADER_LEN - CHECKSUM_OFFSET..) {
        hasher.update(tail);
    }
    hasher.finalize()
}
