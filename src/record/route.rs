//! Routing: which shmbus topic a message belongs on, from its relay domain.

use core::fmt;

use super::error::RouteError;
use super::header::RelayDomain;
use super::parser::parse_header;

/// The four topics Protocol V2 traffic is published on, one per relay domain.
///
/// # Examples
///
/// ```
/// use shmbus::record::{RelayDomain, DomainTopic};
///
/// assert_eq!(DomainTopic::from(RelayDomain::Execution), DomainTopic::Execution);
/// assert_eq!(DomainTopic::Signals.name(), "signals");
/// assert_eq!(DomainTopic::MarketData.domain(), RelayDomain::MarketData);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainTopic {
    /// `market_data`: trades, quotes, books, pool events (broadcast).
    MarketData,
    /// `signals`: strategy signals (broadcast).
    Signals,
    /// `execution`: orders and reports (work queue / SPSC).
    Execution,
    /// `system`: heartbeats, health, control.
    System,
}

impl DomainTopic {
    /// Every topic, in relay-domain order.
    pub const ALL: [DomainTopic; 4] = [
        DomainTopic::MarketData,
        DomainTopic::Signals,
        DomainTopic::Execution,
        DomainTopic::System,
    ];

    /// The topic's name on the bus.
    #[inline]
    pub const fn name(self) -> &'static str {
        match self {
            DomainTopic::MarketData => "market_data",
            DomainTopic::Signals => "signals",
            DomainTopic::Execution => "execution",
            DomainTopic::System => "system",
        }
    }

    /// The relay domain whose messages go to this topic.
    #[inline]
    pub const fn domain(self) -> RelayDomain {
        match self {
            DomainTopic::MarketData => RelayDomain::MarketData,
            DomainTopic::Signals => RelayDomain::Signal,
            DomainTopic::Execution => RelayDomain::Execution,
            DomainTopic::System => RelayDomain::System,
        }
    }
}

impl fmt::Display for DomainTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<RelayDomain> for DomainTopic {
    #[inline]
    fn from(domain: RelayDomain) -> DomainTopic {
        domain.topic_of()
    }
}

impl RelayDomain {
    /// The name of the topic this domain's messages are published on:
    /// `"market_data"`, `"signals"`, `"execution"` or `"system"`.
    #[inline]
    pub const fn topic(self) -> &'static str {
        self.topic_of().name()
    }

    /// The topic this domain's messages are published on.
    #[inline]
    pub const fn topic_of(self) -> DomainTopic {
        match self {
            RelayDomain::MarketData => DomainTopic::MarketData,
            RelayDomain::Signal => DomainTopic::Signals,
            RelayDomain::Execution => DomainTopic::Execution,
            RelayDomain::System => DomainTopic::System,
        }
    }
}

/// The topic a message belongs on, read from its header's relay domain.
///
/// Only the header's length and magic are checked (not `payload_size`, the
/// checksum or the TLVs): routing must stay cheap, and the subscriber
/// parses fully.
///
/// # Errors
///
/// [`RouteError::Header`] if the bytes are not a Protocol V2 header,
/// [`RouteError::UnknownDomain`] if the domain byte is not 1..=4.
///
/// # Examples
///
/// ```
/// use shmbus::record::{route, DomainTopic};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/exec_order_request.bin"
/// ))?;
/// assert_eq!(route(&bytes)?, DomainTopic::Execution);
/// assert_eq!(route(&bytes)?.name(), "execution");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn route(msg: &[u8]) -> Result<DomainTopic, RouteError> {
    let header = parse_header(msg)?;
    RelayDomain::from_u8(header.relay_domain)
        .map(DomainTopic::from)
        .ok_or(RouteError::UnknownDomain {
            domain: header.relay_domain,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_domains_are_inverse() {
        for d in RelayDomain::ALL {
            assert_eq!(DomainTopic::from(d).domain(), d);
        }
        let names: Vec<_> = DomainTopic::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["market_data", "signals", "execution", "system"]);
    }

    #[test]
    fn short_input_is_a_header_error() {
        assert!(matches!(route(&[0xEF, 0xBE]), Err(RouteError::Header(_))));
    }
}
