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
/// use shmbus::record::{RelayDomain, Topic};
///
/// assert_eq!(Topic::from(RelayDomain::Execution), Topic::Execution);
/// assert_eq!(Topic::Signals.name(), "signals");
/// assert_eq!(Topic::MarketData.domain(), RelayDomain::MarketData);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `market_data`: trades, quotes, books, pool events (broadcast).
    MarketData,
    /// `signals`: strategy signals (broadcast).
    Signals,
    /// `execution`: orders and reports (work queue / SPSC).
    Execution,
    /// `system`: heartbeats, health, control.
    System,
}

impl Topic {
    /// Every topic, in relay-domain order.
    pub const ALL: [Topic; 4] = [
        Topic::MarketData,
        Topic::Signals,
        Topic::Execution,
        Topic::System,
    ];

    /// The topic's name on the bus.
    #[inline]
    pub const fn name(self) -> &'static str {
        match self {
            Topic::MarketData => "market_data",
            Topic::Signals => "signals",
            Topic::Execution => "execution",
            Topic::System => "system",
        }
    }

    /// The relay domain whose messages go to this topic.
    #[inline]
    pub const fn domain(self) -> RelayDomain {
        match self {
            Topic::MarketData => RelayDomain::MarketData,
            Topic::Signals => RelayDomain::Signal,
            Topic::Execution => RelayDomain::Execution,
            Topic::System => RelayDomain::System,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<RelayDomain> for Topic {
    #[inline]
    fn from(domain: RelayDomain) -> Topic {
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
    pub const fn topic_of(self) -> Topic {
        match self {
            RelayDomain::MarketData => Topic::MarketData,
            RelayDomain::Signal => Topic::Signals,
            RelayDomain::Execution => Topic::Execution,
            RelayDomain::System => Topic::System,
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
/// use shmbus::record::{route, Topic};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/exec_order_request.bin"
/// ))?;
/// assert_eq!(route(&bytes)?, Topic::Execution);
/// assert_eq!(route(&bytes)?.name(), "execution");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn route(msg: &[u8]) -> Result<Topic, RouteError> {
    let header = parse_header(msg)?;
    RelayDomain::from_u8(header.relay_domain)
        .map(Topic::from)
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
            assert_eq!(Topic::from(d).domain(), d);
        }
        let names: Vec<_> = Topic::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["market_data", "signals", "execution", "system"]);
    }

    #[test]
    fn short_input_is_a_header_error() {
        assert!(matches!(route(&[0xEF, 0xBE]), Err(RouteError::Header(_))));
    }
}
