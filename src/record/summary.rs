//! A summary of one Protocol V2 message: its header fields and the list
//! of its TLV items, as tools show them.

use super::{Form, MessageView, ParseError, ParseOptions, RelayDomain, SourceType, Verify};

/// The header and item list of a Protocol V2 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Summary {
    /// Relay domain byte (1 market data, 2 signals, 3 execution, 4 system).
    pub relay_domain: u8,
    /// Protocol version byte.
    pub version: u8,
    /// Source service byte.
    pub source: u8,
    /// Header flags byte.
    pub flags: u8,
    /// The sender's sequence number.
    pub sequence: u64,
    /// The sender's timestamp, nanoseconds.
    pub timestamp_ns: u64,
    /// Stored CRC-32 (not verified: 0 on hot paths that skip it).
    pub checksum: u32,
    /// Every TLV item in wire order.
    pub tlvs: Vec<TlvSummary>,
}

impl V2Summary {
    /// The relay domain's name, if the byte is one of the four.
    pub fn domain_name(&self) -> Option<&'static str> {
        RelayDomain::from_u8(self.relay_domain).map(RelayDomain::name)
    }

    /// The source service's name, if the byte is a listed one.
    pub fn source_name(&self) -> Option<&'static str> {
        SourceType::from_u8(self.source).map(SourceType::name)
    }
}

/// One TLV item of a [`V2Summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvSummary {
    /// Its type number.
    pub tlv_type: u8,
    /// Framed with the 5-byte extended header.
    pub extended: bool,
    /// Payload length in bytes.
    pub len: usize,
}

/// Parses `bytes` as one whole Protocol V2 message, without verifying the
/// checksum (hot-path producers leave it 0), and summarises it.
///
/// # Errors
///
/// The first framing check that fails, as the parser reports it.
pub fn decode_v2(bytes: &[u8]) -> Result<V2Summary, ParseError> {
    let msg = MessageView::parse(bytes, ParseOptions::new(Verify::Off))?;
    let h = msg.header();
    Ok(V2Summary {
        relay_domain: h.relay_domain,
        version: h.version,
        source: h.source,
        flags: h.flags,
        sequence: h.sequence(),
        timestamp_ns: h.timestamp_ns(),
        checksum: h.checksum(),
        tlvs: msg
            .tlvs()
            .map(|t| TlvSummary {
                tlv_type: t.tlv_type,
                extended: t.form == Form::Extended,
                len: t.payload.len(),
            })
            .collect(),
    })
}
