//! TLV framing (standard and extended forms) and the registry of type numbers.

use super::header::RelayDomain;

/// Length of a standard TLV header: type, length.
pub const STANDARD_HEADER_LEN: usize = 2;

/// Length of an extended TLV header: marker, reserved, type, length (u16 LE).
pub const EXTENDED_HEADER_LEN: usize = 5;

/// First byte of an extended TLV item; never a real type.
pub const EXTENDED_MARKER: u8 = 255;

/// Largest payload of a standard TLV item.
pub const MAX_STANDARD_PAYLOAD: usize = u8::MAX as usize;

/// Largest payload of an extended TLV item.
pub const MAX_EXTENDED_PAYLOAD: usize = u16::MAX as usize;

/// How a TLV item is framed on the wire.
///
/// ```text
/// standard:  +------+-----+-------------+
///            | type | len | len bytes   |          len: u8, type != 255
///            +------+-----+-------------+
/// extended:  +------+-----+------+----------+-------------+
///            | 0xFF |  0  | type | len (LE) | len bytes   |   len: u16
///            +------+-----+------+----------+-------------+
/// ```
///
/// # Examples
///
/// ```
/// use shmbus::record::Form;
///
/// assert_eq!(Form::for_len(255), Some(Form::Standard));
/// assert_eq!(Form::for_len(256), Some(Form::Extended));
/// assert_eq!(Form::for_len(70_000), None);
/// assert_eq!(Form::Extended.header_len(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    /// 2-byte header, payload up to 255 bytes.
    Standard,
    /// 5-byte header, payload up to 65535 bytes.
    Extended,
}

impl Form {
    /// The form the builder chooses for a payload of `len` bytes: standard up
    /// to 255, extended up to 65535, `None` beyond.
    #[inline]
    pub const fn for_len(len: usize) -> Option<Form> {
        if len <= MAX_STANDARD_PAYLOAD {
            Some(Form::Standard)
        } else if len <= MAX_EXTENDED_PAYLOAD {
            Some(Form::Extended)
        } else {
            None
        }
    }

    /// Length of this form's TLV header.
    #[inline]
    pub const fn header_len(self) -> usize {
        match self {
            Form::Standard => STANDARD_HEADER_LEN,
            Form::Extended => EXTENDED_HEADER_LEN,
        }
    }

    /// Largest payload this form can describe.
    #[inline]
    pub const fn max_payload(self) -> usize {
        match self {
            Form::Standard => MAX_STANDARD_PAYLOAD,
            Form::Extended => MAX_EXTENDED_PAYLOAD,
        }
    }
}

/// The payload-size rule the registry declares for a type.
///
/// # Examples
///
/// ```
/// use shmbus::record::{SizeConstraint, TlvType};
///
/// assert_eq!(TlvType::Trade.size(), SizeConstraint::Fixed(40));
/// assert_eq!(TlvType::PoolSwap.size(), SizeConstraint::Bounded { min: 60, max: 200 });
/// assert!(TlvType::PoolSwap.size().admits(208) == false);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeConstraint {
    /// Exactly this many bytes. Enforced by parser and builder.
    Fixed(u16),
    /// Between `min` and `max` bytes inclusive. Informational only: real
    /// producers exceed some maxima, so neither the parser nor the builder
    /// enforces it.
    Bounded {
        /// Smallest declared size.
        min: u16,
        /// Largest declared size.
        max: u16,
    },
    /// Any size.
    Variable,
}

impl SizeConstraint {
    /// Whether a payload of `len` bytes satisfies the declared rule.
    pub const fn admits(self, len: usize) -> bool {
        match self {
            SizeConstraint::Fixed(n) => len == n as usize,
            SizeConstraint::Bounded { min, max } => len >= min as usize && len <= max as usize,
            SizeConstraint::Variable => true,
        }
    }
}

macro_rules! tlv_types {
    ($($(#[$doc:meta])* $name:ident = $num:literal : $size:expr,)*) => {
        /// Every TLV type number the format names, with its registry entry.
        ///
        /// Numbers missing here (0, 33-39, 50-59, 73-79, 91-99, 109,
        /// 113-199, 205-254) are unknown: the parser hands them through as
        /// opaque items with any length. 255 is the extended-form marker.
        ///
        /// | range   | relay domain ([`TlvType::relay_domain`]) |
        /// |---------|---------------------------------|
        /// | 1-19    | market data |
        /// | 20-39   | signal |
        /// | 40-59   | execution |
        /// | 60-79   | signal (portfolio and risk analytics) |
        /// | 80-99   | system (compliance) |
        /// | 100-119 | system |
        /// | 200-254 | vendor, no domain |
        ///
        /// # Examples
        ///
        /// ```
        /// use shmbus::record::{RelayDomain, SizeConstraint, TlvType};
        ///
        /// let t = TlvType::from_u8(2).expect("registered");
        /// assert_eq!(t, TlvType::Quote);
        /// assert_eq!(t.name(), "Quote");
        /// assert_eq!(t.size(), SizeConstraint::Fixed(52));
        /// assert_eq!(t.relay_domain(), Some(RelayDomain::MarketData));
        /// assert_eq!(TlvType::from_u8(150), None);
        /// assert_eq!(u8::from(TlvType::Heartbeat), 100);
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum TlvType {
            $($(#[$doc])* $name = $num,)*
        }

        impl TlvType {
            /// Every registered type, in numeric order.
            pub const ALL: &'static [TlvType] = &[$(TlvType::$name,)*];

            /// Looks a number up in the registry.
            #[inline]
            pub const fn from_u8(raw: u8) -> Option<TlvType> {
                match raw {
                    $($num => Some(TlvType::$name),)*
                    _ => None,
                }
            }

            /// The type's name as the format spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(TlvType::$name => stringify!($name),)*
                }
            }

            /// The payload-size rule of the registry.
            pub const fn size(self) -> SizeConstraint {
                match self {
                    $(TlvType::$name => $size,)*
                }
            }
        }
    };
}

use SizeConstraint::{Bounded as B, Fixed as F, Variable as V};

/// Shorthand for a bounded constraint in the table below.
const fn b(min: u16, max: u16) -> SizeConstraint {
    B { min, max }
}

tlv_types! {
    /// A trade print ([`TradeTlv`](crate::record::TradeTlv)).
    Trade = 1: F(40),
    /// Best bid and offer ([`QuoteTlv`](crate::record::QuoteTlv)).
    Quote = 2: F(52),
    /// Order-book snapshot ([`OrderBookTlv`](crate::record::OrderBookTlv)).
    OrderBook = 3: V,
    /// Instrument metadata.
    InstrumentMeta = 4: V,
    /// Level-2 snapshot.
    L2Snapshot = 5: V,
    /// Level-2 delta.
    L2Delta = 6: V,
    /// Level-2 reset.
    L2Reset = 7: V,
    /// Price update.
    PriceUpdate = 8: V,
    /// Volume update.
    VolumeUpdate = 9: V,
    /// Pool liquidity.
    PoolLiquidity = 10: b(20, 300),
    /// Pool swap.
    PoolSwap = 11: b(60, 200),
    /// Pool mint.
    PoolMint = 12: b(50, 180),
    /// Pool burn.
    PoolBurn = 13: b(50, 180),
    /// Pool tick crossing.
    PoolTick = 14: b(30, 120),
    /// Pool state.
    PoolState = 15: b(60, 200),
    /// Pool sync.
    PoolSync = 16: b(40, 150),
    /// Quote update.
    QuoteUpdate = 17: F(52),
    /// Gas price ([`GasPriceTlv`](crate::record::GasPriceTlv)).
    GasPrice = 18: F(32),
    /// State invalidation reason.
    StateInvalidationReason = 19: F(1),
    /// Signal identity ([`SignalIdentityTlv`](crate::record::SignalIdentityTlv)).
    SignalIdentity = 20: F(16),
    /// Asset correlation.
    AssetCorrelation = 21: F(24),
    /// Signal economics ([`EconomicsTlv`](crate::record::EconomicsTlv)).
    Economics = 22: F(32),
    /// Execution addresses.
    ExecutionAddresses = 23: F(84),
    /// Venue metadata.
    VenueMetadata = 24: F(12),
    /// State reference.
    StateReference = 25: F(24),
    /// Execution control.
    ExecutionControl = 26: F(16),
    /// Pool addresses.
    PoolAddresses = 27: F(44),
    /// MEV bundle.
    MEVBundle = 28: F(40),
    /// Tertiary venue.
    TertiaryVenue = 29: F(24),
    /// Risk parameters.
    RiskParameters = 30: b(24, 512),
    /// Performance metrics.
    PerformanceMetrics = 31: b(32, 1024),
    /// Arbitrage signal ([`ArbitrageSignalTlv`](crate::record::ArbitrageSignalTlv); see the module docs on its size).
    ArbitrageSignal = 32: F(168),
    /// Order request ([`OrderRequestTlv`](crate::record::OrderRequestTlv)).
    OrderRequest = 40: F(32),
    /// Order status.
    OrderStatus = 41: F(24),
    /// Fill ([`FillTlv`](crate::record::FillTlv)).
    Fill = 42: F(32),
    /// Order cancel ([`OrderCancelTlv`](crate::record::OrderCancelTlv)).
    OrderCancel = 43: F(16),
    /// Order modify.
    OrderModify = 44: F(24),
    /// Execution report.
    ExecutionReport = 45: F(48),
    /// Portfolio.
    Portfolio = 46: b(32, 2048),
    /// Position.
    Position = 47: b(24, 512),
    /// Balance.
    Balance = 48: b(16, 256),
    /// Trade confirmation.
    TradeConfirmation = 49: b(32, 256),
    /// Risk decision.
    RiskDecision = 60: F(32),
    /// Position update.
    PositionUpdate = 61: b(40, 512),
    /// Risk alert.
    RiskAlert = 62: b(24, 256),
    /// Collateral update.
    CollateralUpdate = 63: F(48),
    /// Exposure report.
    ExposureReport = 64: b(32, 1024),
    /// Portfolio event.
    PortfolioEvent = 65: b(32, 512),
    /// Risk threshold.
    RiskThreshold = 66: F(40),
    /// Flash-loan result.
    FlashLoanResult = 67: b(48, 256),
    /// Post-trade analytics.
    PostTradeAnalytics = 68: b(64, 512),
    /// Position query.
    PositionQuery = 69: F(32),
    /// Risk metrics.
    RiskMetrics = 70: b(48, 1024),
    /// Circuit breaker.
    CircuitBreaker = 71: F(24),
    /// Strategy registration.
    StrategyRegistration = 72: b(32, 256),
    /// Compliance check.
    ComplianceCheck = 80: b(32, 512),
    /// Audit trail.
    AuditTrail = 81: b(48, 2048),
    /// Regulatory report.
    RegulatoryReport = 82: b(64, 4096),
    /// Trade breakdown.
    TradeBreakdown = 83: b(48, 1024),
    /// Settlement instruction.
    SettlementInstruction = 84: b(40, 512),
    /// Clearing report.
    ClearingReport = 85: b(32, 512),
    /// Margin call.
    MarginCall = 86: F(48),
    /// Custody event.
    CustodyEvent = 87: b(40, 256),
    /// Venue connectivity.
    VenueConnectivity = 88: F(32),
    /// Cross-venue spread.
    CrossVenueSpread = 89: F(40),
    /// Arbitrage execution.
    ArbitrageExecution = 90: b(48, 256),
    /// Heartbeat ([`HeartbeatTlv`](crate::record::HeartbeatTlv)).
    Heartbeat = 100: F(16),
    /// Snapshot.
    Snapshot = 101: b(32, 1024),
    /// Error report.
    Error = 102: b(16, 512),
    /// Configuration update.
    ConfigUpdate = 103: b(20, 2048),
    /// Service discovery.
    ServiceDiscovery = 104: b(24, 512),
    /// Resource usage.
    ResourceUsage = 105: F(64),
    /// State invalidation.
    StateInvalidation = 106: b(16, 512),
    /// System health.
    SystemHealth = 107: F(48),
    /// Trace context.
    TraceContext = 108: b(32, 256),
    /// Recovery request.
    RecoveryRequest = 110: F(24),
    /// Recovery response.
    RecoveryResponse = 111: b(20, 1024),
    /// Sequence sync.
    SequenceSync = 112: b(16, 256),
    /// Vendor: pool info. No size rule.
    PoolInfo = 200: V,
    /// Vendor: pool cache header. No size rule.
    PoolCacheHeader = 201: V,
    /// Vendor: proprietary data. No size rule.
    ProprietaryData = 202: V,
    /// Vendor: custom metrics. No size rule.
    CustomMetrics = 203: V,
    /// Vendor: experimental signal. No size rule.
    ExperimentalSignal = 204: V,
}

impl TlvType {
    /// The type number.
    #[inline]
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The relay domain this type's number range is routed to; `None` for
    /// vendor types. See [`type_domain`] for any number.
    #[inline]
    pub const fn relay_domain(self) -> Option<RelayDomain> {
        type_domain(self as u8)
    }

    /// Whether the number is in the vendor range 200-254.
    #[inline]
    pub const fn is_vendor(self) -> bool {
        matches!(self as u8, 200..=254)
    }
}

impl From<TlvType> for u8 {
    #[inline]
    fn from(t: TlvType) -> u8 {
        t as u8
    }
}

impl TryFrom<u8> for TlvType {
    type Error = u8;

    /// Looks a number up in the registry, giving it back if unknown.
    fn try_from(raw: u8) -> Result<Self, u8> {
        TlvType::from_u8(raw).ok_or(raw)
    }
}

/// The relay domain a TLV type number's range belongs to (1-19 market
/// data, 20-39 and 60-79 signal, 40-59 execution, 80-119 system), or `None`
/// for 0, 120-255.
///
/// The codec never enforces this pairing: a message of any domain may
/// carry any type. It is a hint for producers choosing a domain.
///
/// # Examples
///
/// ```
/// use shmbus::record::{type_domain, RelayDomain};
///
/// assert_eq!(type_domain(1), Some(RelayDomain::MarketData));
/// assert_eq!(type_domain(65), Some(RelayDomain::Signal));
/// assert_eq!(type_domain(150), None);
/// ```
#[inline]
pub const fn type_domain(tlv_type: u8) -> Option<RelayDomain> {
    match tlv_type {
        1..=19 => Some(RelayDomain::MarketData),
        20..=39 | 60..=79 => Some(RelayDomain::Signal),
        40..=59 => Some(RelayDomain::Execution),
        80..=119 => Some(RelayDomain::System),
        _ => None,
    }
}

/// Registry fixed size of every number, 0 where the type is not fixed-size.
/// One load on the parse path instead of a match.
static FIXED_SIZES: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        if let Some(t) = TlvType::from_u8(i as u8) {
            if let SizeConstraint::Fixed(n) = t.size() {
                table[i] = n;
            }
        }
        i += 1;
    }
    table
};

/// The registry's fixed payload size of a type number, if it has one.
///
/// # Examples
///
/// ```
/// use shmbus::record::fixed_size;
///
/// assert_eq!(fixed_size(1), Some(40));
/// assert_eq!(fixed_size(3), None); // OrderBook is variable
/// assert_eq!(fixed_size(250), None); // unknown
/// ```
#[inline]
pub fn fixed_size(tlv_type: u8) -> Option<u16> {
    match FIXED_SIZES[tlv_type as usize] {
        0 => None,
        n => Some(n),
    }
}

/// Which payload sizes the parser and builder accept for fixed-size types.
///
/// # Examples
///
/// ```
/// use shmbus::record::SizePolicy;
///
/// assert!(SizePolicy::Registry.accepts(2, 52));
/// assert!(!SizePolicy::Registry.accepts(2, 56));
/// assert!(SizePolicy::LegacyStructs.accepts(2, 56));
/// assert!(SizePolicy::LegacyStructs.accepts(32, 170));
/// assert!(SizePolicy::Registry.accepts(250, 7)); // unknown: any length
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SizePolicy {
    /// A fixed-size type must have exactly its registry size (what the
    /// reference parser does).
    #[default]
    Registry,
    /// Also accept the in-memory struct sizes the reference hot path sends
    /// instead: 56 for Quote (2) and QuoteUpdate (17), 170 for
    /// ArbitrageSignal (32).
    LegacyStructs,
}

impl SizePolicy {
    /// Whether a payload of `len` bytes is acceptable for `tlv_type`.
    #[inline]
    pub fn accepts(self, tlv_type: u8, len: usize) -> bool {
        let expected = FIXED_SIZES[tlv_type as usize] as usize;
        expected == 0
            || expected == len
            || (self == SizePolicy::LegacyStructs && legacy_size(tlv_type) == Some(len))
    }
}

/// The struct size the reference hot path emits for a fixed-size type whose
/// registry size disagrees with its struct.
#[inline]
const fn legacy_size(tlv_type: u8) -> Option<usize> {
    match tlv_type {
        2 | 17 => Some(56),
        32 => Some(170),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_numbers_round_trip_and_sorted() {
        let mut last = 0u8;
        for &t in TlvType::ALL {
            assert_eq!(TlvType::from_u8(t.number()), Some(t));
            assert!(t.number() > last, "{} out of order", t.name());
            last = t.number();
        }
        // FORMAT.md section 6: 1-32, 40-49, 60-72, 80-90, 100-108, 110-112, 200-204.
        let expected: usize = [32, 10, 13, 11, 9, 3, 5].iter().sum();
        assert_eq!(TlvType::ALL.len(), expected);
        for n in [
            33u8, 39, 50, 59, 73, 79, 91, 99, 109, 113, 119, 120, 199, 205, 254,
        ] {
            assert_eq!(TlvType::from_u8(n), None, "{n} is unassigned");
        }
        assert_eq!(TlvType::from_u8(0), None);
        assert_eq!(TlvType::from_u8(255), None);
    }

    #[test]
    fn fixed_table_matches_constraints() {
        for n in 0..=255u8 {
            let expected = match TlvType::from_u8(n).map(TlvType::size) {
                Some(SizeConstraint::Fixed(s)) => Some(s),
                _ => None,
            };
            assert_eq!(fixed_size(n), expected, "type {n}");
        }
        assert_eq!(fixed_size(19), Some(1));
        assert_eq!(fixed_size(32), Some(168));
    }

    #[test]
    fn vendor_types_have_no_domain() {
        assert_eq!(TlvType::ProprietaryData.relay_domain(), None);
        assert!(TlvType::ProprietaryData.is_vendor());
        assert_eq!(
            TlvType::RiskDecision.relay_domain(),
            Some(RelayDomain::Signal)
        );
        assert_eq!(
            TlvType::MarginCall.relay_domain(),
            Some(RelayDomain::System)
        );
    }

    #[test]
    fn legacy_policy_only_widens_the_three_mismatched_types() {
        for n in 0..=255u8 {
            for len in [0usize, 1, 16, 40, 52, 56, 168, 170] {
                let reg = SizePolicy::Registry.accepts(n, len);
                let leg = SizePolicy::LegacyStructs.accepts(n, len);
                if reg {
                    assert!(leg);
                } else if leg {
                    assert!(matches!((n, len), (2 | 17, 56) | (32, 170)), "{n} {len}");
                }
            }
        }
    }
}
