//! Typed errors of the codec: [`ParseError`] (with the byte offset where the
//! message went wrong), [`BuildError`] and [`RouteError`].

use core::fmt;

/// Why a message was rejected by the parser, with the message offset of the
/// structure that failed.
///
/// Offsets are counted from the first byte of the message:
///
/// | kind | offset |
/// |---|---|
/// | [`MessageTooSmall`](ParseErrorKind::MessageTooSmall) | 0 |
/// | [`InvalidMagic`](ParseErrorKind::InvalidMagic) | 0 (the `magic` field) |
/// | [`PayloadSizeMismatch`](ParseErrorKind::PayloadSizeMismatch) | 24 (the `payload_size` field) |
/// | [`ChecksumMismatch`](ParseErrorKind::ChecksumMismatch) | 28 (the `checksum` field) |
/// | [`TruncatedTlv`](ParseErrorKind::TruncatedTlv) | first byte of the TLV item |
/// | [`InvalidExtendedTlv`](ParseErrorKind::InvalidExtendedTlv) | the offending byte of the extended header |
/// | [`FixedSizeMismatch`](ParseErrorKind::FixedSizeMismatch) | first byte of the TLV item |
///
/// # Examples
///
/// ```
/// use shmbus::record::{MessageView, ParseErrorKind, ParseOptions};
///
/// let err = MessageView::parse(&[0u8; 10], ParseOptions::default()).unwrap_err();
/// assert_eq!(err.kind, ParseErrorKind::MessageTooSmall { needed: 32, available: 10 });
/// assert_eq!(err.offset, 0);
/// assert_eq!(err.to_string(), "message too small: need 32 bytes, got 10 (at byte 0)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Message offset of the field or TLV item that failed (see the table above).
    pub offset: usize,
}

impl ParseError {
    #[inline]
    pub(crate) const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        ParseError { kind, offset }
    }
}

/// The kinds of [`ParseError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The buffer is shorter than the 32-byte header.
    MessageTooSmall {
        /// Bytes required (32).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The first four bytes are not `0xDEADBEEF` (little-endian).
    InvalidMagic {
        /// The value found.
        found: u32,
    },
    /// `payload_size` differs from the number of bytes after the header.
    PayloadSizeMismatch {
        /// The header's `payload_size`.
        declared: u32,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// The stored CRC-32 differs from the one computed over the message.
    ChecksumMismatch {
        /// The header's `checksum`.
        stored: u32,
        /// The CRC-32 of the message (header bytes 28..32 skipped).
        computed: u32,
    },
    /// A TLV header or payload runs past the end of the TLV region.
    TruncatedTlv {
        /// Bytes the item needs from its first byte (header plus payload).
        needed: usize,
        /// Bytes left in the region from the item's first byte.
        available: usize,
    },
    /// An extended TLV header is malformed: its reserved byte is not 0, or
    /// its inner type is the marker 255.
    InvalidExtendedTlv {
        /// The offending byte's value.
        found: u8,
    },
    /// A TLV of a type the registry declares fixed-size has another length.
    FixedSizeMismatch {
        /// The TLV type number.
        tlv_type: u8,
        /// The registry size.
        expected: u16,
        /// The payload length found.
        actual: u16,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::MessageTooSmall { needed, available } => {
                write!(f, "message too small: need {needed} bytes, got {available}")?
            }
            ParseErrorKind::InvalidMagic { found } => write!(
                f,
                "invalid magic 0x{found:08x}, expected 0xdeadbeef (not a protocol v2 message)"
            )?,
            ParseErrorKind::PayloadSizeMismatch { declared, actual } => write!(
                f,
                "payload_size declares {declared} bytes but {actual} follow the header (truncated or padded message)"
            )?,
            ParseErrorKind::ChecksumMismatch { stored: 0, computed } => write!(
                f,
                "checksum mismatch: stored 0 (built with Checksum::Zero, no checksum: parse with Verify::ZeroMeansUnchecked or Verify::Off), computed 0x{computed:08x}"
            )?,
            ParseErrorKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored 0x{stored:08x}, computed 0x{computed:08x} (a corrupted message)"
            )?,
            ParseErrorKind::TruncatedTlv { needed, available } => write!(
                f,
                "truncated tlv: item needs {needed} bytes, {available} left in the payload"
            )?,
            ParseErrorKind::InvalidExtendedTlv { found } => write!(
                f,
                "invalid extended tlv header: byte 0x{found:02x} where 0 (reserved) or a real type was expected"
            )?,
            ParseErrorKind::FixedSizeMismatch {
                tlv_type,
                expected,
                actual,
            } => write!(
                f,
                "tlv type {tlv_type} has fixed size {expected} but carries {actual} bytes"
            )?,
        }
        write!(f, " (at byte {})", self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Why [`MessageBuilder::finish`](crate::record::MessageBuilder::finish)
/// refused to produce a message.
///
/// The builder records the first error and ignores every later call, so a
/// chain of calls needs a single check at the end.
///
/// # Examples
///
/// ```
/// use shmbus::record::{BuildError, Checksum, MessageBuilder, RelayDomain, SourceType};
///
/// let mut buf = [0u8; 40];
/// let err = MessageBuilder::new(&mut buf, RelayDomain::System, SourceType::Dashboard)
///     .tlv(100u8, &[0u8; 16])
///     .finish(Checksum::Zero)
///     .unwrap_err();
/// assert_eq!(err, BuildError::BufferTooSmall { needed: 50, available: 40 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The caller's buffer cannot hold the message.
    BufferTooSmall {
        /// Bytes the message needs so far.
        needed: usize,
        /// Length of the caller's buffer.
        available: usize,
    },
    /// A payload is longer than its TLV form can describe (255 bytes in
    /// standard form, 65535 in extended form), or the TLV region would
    /// exceed `u32::MAX` bytes.
    PayloadTooLarge {
        /// The TLV type number.
        tlv_type: u8,
        /// The payload length asked for.
        len: usize,
        /// The largest length the chosen form allows.
        max: usize,
    },
    /// Type 255 is the extended-form marker and never a real type.
    ReservedTlvType,
    /// A fixed-size registry type was given a payload of another length.
    FixedSizeMismatch {
        /// The TLV type number.
        tlv_type: u8,
        /// The registry size.
        expected: u16,
        /// The payload length given.
        actual: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::BufferTooSmall { needed, available } => write!(
                f,
                "buffer too small: message needs {needed} bytes, buffer holds {available}"
            ),
            BuildError::PayloadTooLarge { tlv_type, len, max } => write!(
                f,
                "tlv type {tlv_type} payload of {len} bytes exceeds the {max}-byte limit of its form"
            ),
            BuildError::ReservedTlvType => {
                write!(f, "tlv type 255 is the extended-form marker, not a type")
            }
            BuildError::FixedSizeMismatch {
                tlv_type,
                expected,
                actual,
            } => write!(
                f,
                "tlv type {tlv_type} has fixed size {expected}, got a {actual}-byte payload"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why [`route`](crate::record::route) could not name a topic for a message.
///
/// # Examples
///
/// ```
/// use shmbus::record::{route, RouteError};
///
/// let mut msg = [0u8; 32];
/// msg[..4].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
/// msg[4] = 9;
/// assert_eq!(route(&msg), Err(RouteError::UnknownDomain { domain: 9 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The bytes are not a Protocol V2 header (too short or wrong magic).
    Header(ParseError),
    /// The `relay_domain` byte is none of 1..=4.
    UnknownDomain {
        /// The byte found at offset 4.
        domain: u8,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Header(e) => write!(f, "cannot route: {e}"),
            RouteError::UnknownDomain { domain } => write!(
                f,
                "cannot route: relay domain {domain} is not one of 1 (market data), 2 (signal), 3 (execution), 4 (system)"
            ),
        }
    }
}

impl std::error::Error for RouteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouteError::Header(e) => Some(e),
            RouteError::UnknownDomain { .. } => None,
        }
    }
}

impl From<ParseError> for RouteError {
    fn from(e: ParseError) -> Self {
        RouteError::Header(e)
    }
}
