//! The borrowing parser: validates a message in place and walks its TLVs.

use zerocopy::FromBytes;

use super::error::{ParseError, ParseErrorKind};
use super::header::{
    message_checksum, MessageHeader, CHECKSUM_OFFSET, HEADER_LEN, MAGIC, PAYLOAD_SIZE_OFFSET,
};
use super::payloads::TlvPayload;
use super::tlv::{Form, SizePolicy, EXTENDED_HEADER_LEN, EXTENDED_MARKER, STANDARD_HEADER_LEN};

/// Whether and how the parser checks the header's CRC-32.
///
/// # Examples
///
/// ```
/// use shmbus::record::{MessageView, ParseErrorKind, ParseOptions, Verify};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/checksum_zero_hotpath.bin"
/// ))?;
/// // A hot-path producer left the checksum 0.
/// let strict = MessageView::parse(&bytes, ParseOptions::new(Verify::Strict));
/// assert!(matches!(strict.unwrap_err().kind, ParseErrorKind::ChecksumMismatch { stored: 0, .. }));
/// assert!(MessageView::parse(&bytes, ParseOptions::new(Verify::ZeroMeansUnchecked)).is_ok());
/// assert!(MessageView::parse(&bytes, ParseOptions::new(Verify::Off)).is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Do not compute the CRC (hot path inside one host).
    Off,
    /// The stored value must equal the CRC, whatever it is (the reference
    /// parser's rule).
    #[default]
    Strict,
    /// A stored 0 means "not computed" and is accepted; any other value must
    /// equal the CRC.
    ZeroMeansUnchecked,
}

/// What the parser checks beyond the framing it always checks.
///
/// The default is the reference parser's strictness plus the
/// `payload_size` check: [`Verify::Strict`] and [`SizePolicy::Registry`].
///
/// # Examples
///
/// ```
/// use shmbus::record::{ParseOptions, SizePolicy, Verify};
///
/// let hot = ParseOptions::new(Verify::Off);
/// let legacy = ParseOptions::default().with_size_policy(SizePolicy::LegacyStructs);
/// assert_eq!(legacy.verify, Verify::Strict);
/// assert_eq!(hot.sizes, SizePolicy::Registry);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    /// Checksum verification.
    pub verify: Verify,
    /// Accepted lengths of fixed-size types.
    pub sizes: SizePolicy,
}

impl ParseOptions {
    /// Options with the given checksum rule and the registry size policy.
    #[inline]
    pub const fn new(verify: Verify) -> Self {
        ParseOptions {
            verify,
            sizes: SizePolicy::Registry,
        }
    }

    /// The same options with another size policy.
    #[inline]
    pub const fn with_size_policy(self, sizes: SizePolicy) -> Self {
        ParseOptions { sizes, ..self }
    }
}

/// One TLV item, borrowed from the message.
///
/// # Examples
///
/// ```
/// use shmbus::record::{Form, MessageView, ParseOptions};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/ext_tlv_len256.bin"
/// ))?;
/// let msg = MessageView::parse(&bytes, ParseOptions::default())?;
/// let tlv = msg.tlvs().next().expect("one item");
/// assert_eq!((tlv.tlv_type, tlv.form, tlv.offset), (203, Form::Extended, 32));
/// assert_eq!(tlv.payload.len(), 256);
/// assert_eq!(tlv.payload_offset(), 37);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The type number (the inner type for extended items).
    pub tlv_type: u8,
    /// How the item was framed.
    pub form: Form,
    /// Message offset of the item's first header byte.
    pub offset: usize,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Message offset of the first payload byte.
    #[inline]
    pub fn payload_offset(&self) -> usize {
        self.offset + self.form.header_len()
    }

    /// Message offset just past the item.
    #[inline]
    pub fn end(&self) -> usize {
        self.payload_offset() + self.payload.len()
    }

    /// Views the payload as a typed struct, in place.
    ///
    /// Returns `None` if the type number is not `T`'s or the payload length
    /// is not one `T` can be read from (see [`TlvPayload::view`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{MessageView, ParseOptions, QuoteTlv, Side, TradeTlv};
    ///
    /// let bytes = std::fs::read(concat!(
    ///     env!("CARGO_MANIFEST_DIR"),
    ///     "/tests/vectors/protocol_v2/md_trade.bin"
    /// ))?;
    /// let msg = MessageView::parse(&bytes, ParseOptions::default())?;
    /// let tlv = msg.tlvs().next().expect("one item");
    /// let trade = tlv.view::<TradeTlv>().expect("a trade");
    /// assert_eq!(trade.price().to_string(), "65123.45678900");
    /// assert_eq!(trade.side(), Some(Side::Buy));
    /// assert!(tlv.view::<QuoteTlv>().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn view<T: TlvPayload>(&self) -> Option<&'a T> {
        if self.tlv_type == T::TLV_TYPE.number() {
            T::view(self.payload)
        } else {
            None
        }
    }
}

/// A validated message: the header and the TLV region, borrowed.
///
/// Built only by [`MessageView::parse`], so every TLV item in it is known to
/// be well framed and of an acceptable size.
///
/// # Examples
///
/// ```
/// use shmbus::record::{MessageView, ParseOptions, RelayDomain, TlvType, TradeTlv, Verify};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/md_trade_and_quote.bin"
/// ))?;
/// let msg = MessageView::parse(&bytes, ParseOptions::new(Verify::Strict))?;
/// assert_eq!(msg.header().relay_domain(), Some(RelayDomain::MarketData));
/// assert_eq!(msg.header().sequence(), 2);
/// let types: Vec<u8> = msg.tlvs().map(|t| t.tlv_type).collect();
/// assert_eq!(types, [1, 2]);
/// let trade: &TradeTlv = msg.first::<TradeTlv>().expect("has a trade");
/// assert_eq!(trade.volume().raw(), 12_500_000);
/// assert_eq!(msg.find(TlvType::Quote).map(|t| t.offset), Some(74));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    header: &'a MessageHeader,
    bytes: &'a [u8],
}

impl<'a> MessageView<'a> {
    /// Validates `bytes` as one whole message and borrows it.
    ///
    /// Checks, in order: the length covers a header; the magic; that
    /// `payload_size` equals the bytes after the header; the checksum (per
    /// `opts.verify`); then every TLV item: header and payload inside the
    /// region, extended reserved byte 0 and inner type not 255, fixed-size
    /// types of an accepted length (`opts.sizes`). Domain, version, source
    /// and flags are not checked. The buffer may have any alignment.
    ///
    /// Work is linear in the message length; nothing is copied or allocated.
    ///
    /// # Errors
    ///
    /// The first failed check, as a [`ParseError`] carrying the message
    /// offset of the field or item concerned.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{MessageView, ParseErrorKind, ParseOptions};
    ///
    /// let bytes = std::fs::read(concat!(
    ///     env!("CARGO_MANIFEST_DIR"),
    ///     "/tests/vectors/protocol_v2/truncated_tlv.bin"
    /// ))?;
    /// let err = MessageView::parse(&bytes, ParseOptions::default()).expect_err("rejected");
    /// assert_eq!(err.kind, ParseErrorKind::TruncatedTlv { needed: 42, available: 22 });
    /// assert_eq!(err.offset, 32);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn parse(bytes: &'a [u8], opts: ParseOptions) -> Result<Self, ParseError> {
        let header = parse_header(bytes)?;
        let declared = header.payload_size();
        let actual = bytes.len() - HEADER_LEN;
        if declared as u64 != actual as u64 {
            return Err(ParseError::new(
                ParseErrorKind::PayloadSizeMismatch { declared, actual },
                PAYLOAD_SIZE_OFFSET,
            ));
        }
        let stored = header.checksum();
        let check = match opts.verify {
            Verify::Off => false,
            Verify::Strict => true,
            Verify::ZeroMeansUnchecked => stored != 0,
        };
        if check {
            let computed = message_checksum(bytes);
            if computed != stored {
                return Err(ParseError::new(
                    ParseErrorKind::ChecksumMismatch { stored, computed },
                    CHECKSUM_OFFSET,
                ));
            }
        }
        let mut walk = TlvWalker::new(bytes, opts.sizes);
        while let Some(item) = walk.next_item() {
            item?;
        }
        Ok(MessageView { header, bytes })
    }

    /// The header, viewed in place.
    #[inline]
    pub fn header(&self) -> &'a MessageHeader {
        self.header
    }

    /// The whole message.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The TLV region (everything after the header).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// The TLV items in wire order.
    #[inline]
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs {
            walker: TlvWalker::trusted(self.bytes),
        }
    }

    /// The first item of a type, if any (later ones of the same type are
    /// reachable through [`tlvs`](Self::tlvs)).
    #[inline]
    pub fn find(&self, tlv_type: impl Into<u8>) -> Option<Tlv<'a>> {
        let t = tlv_type.into();
        self.tlvs().find(|tlv| tlv.tlv_type == t)
    }

    /// The first item of `T`'s type viewed as `T`, if any.
    #[inline]
    pub fn first<T: TlvPayload>(&self) -> Option<&'a T> {
        self.find(T::TLV_TYPE).and_then(|tlv| tlv.view::<T>())
    }
}

/// Checks that `bytes` starts with a Protocol V2 header (length and magic
/// only) and views it in place. Cheap enough for routing.
///
/// # Errors
///
/// [`ParseErrorKind::MessageTooSmall`] or [`ParseErrorKind::InvalidMagic`].
///
/// # Examples
///
/// ```
/// use shmbus::record::{parse_header, ParseErrorKind};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/bad_magic.bin"
/// ))?;
/// let err = parse_header(&bytes).expect_err("rejected");
/// assert_eq!(err.kind, ParseErrorKind::InvalidMagic { found: 0xCAFE_BABE });
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub fn parse_header(bytes: &[u8]) -> Result<&MessageHeader, ParseError> {
    let Ok((header, _)) = MessageHeader::ref_from_prefix(bytes) else {
        return Err(ParseError::new(
            ParseErrorKind::MessageTooSmall {
                needed: HEADER_LEN,
                available: bytes.len(),
            },
            0,
        ));
    };
    let magic = header.magic();
    if magic != MAGIC {
        return Err(ParseError::new(
            ParseErrorKind::InvalidMagic { found: magic },
            0,
        ));
    }
    Ok(header)
}

/// Iterator over the items of a [`MessageView`]; infallible because the
/// view was validated.
#[derive(Clone, Debug)]
pub struct Tlvs<'a> {
    walker: TlvWalker<'a>,
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    #[inline]
    fn next(&mut self) -> Option<Tlv<'a>> {
        // A validated view never yields an error; stop rather than panic if
        // that invariant were ever broken.
        self.walker.next_item().and_then(Result::ok)
    }
}

impl core::iter::FusedIterator for Tlvs<'_> {}

/// A checking walk over the TLV region of a message, for callers that want
/// to process items lazily without validating the whole message first.
///
/// It checks framing and fixed sizes as it goes (not the header, which
/// [`parse_header`] checks). After the first error it yields nothing more.
///
/// # Examples
///
/// ```
/// use shmbus::record::{ParseErrorKind, SizePolicy, TlvWalker};
///
/// let bytes = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/vectors/protocol_v2/trailing_byte.bin"
/// ))?;
/// let mut walk = TlvWalker::new(&bytes, SizePolicy::Registry);
/// let first = walk.next().expect("trade").expect("well formed");
/// assert_eq!(first.tlv_type, 1);
/// let err = walk.next().expect("dangling byte").expect_err("rejected");
/// assert_eq!(err.kind, ParseErrorKind::TruncatedTlv { needed: 2, available: 1 });
/// assert_eq!(err.offset, 74);
/// assert!(walk.next().is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlvWalker<'a> {
    msg: &'a [u8],
    pos: usize,
    sizes: SizePolicy,
    /// Set for the walk of an already validated view: sizes were checked.
    trusted: bool,
}

impl<'a> TlvWalker<'a> {
    /// Walks the items of `msg[32..]` (message offsets are reported
    /// relative to `msg`). A `msg` shorter than a header has no items.
    #[inline]
    pub fn new(msg: &'a [u8], sizes: SizePolicy) -> Self {
        TlvWalker {
            msg,
            pos: HEADER_LEN.min(msg.len()),
            sizes,
            trusted: false,
        }
    }

    #[inline]
    fn trusted(msg: &'a [u8]) -> Self {
        TlvWalker {
            trusted: true,
            ..Self::new(msg, SizePolicy::LegacyStructs)
        }
    }

    #[inline]
    fn fail(&mut self, kind: ParseErrorKind, offset: usize) -> Option<Result<Tlv<'a>, ParseError>> {
        self.pos = self.msg.len();
        Some(Err(ParseError::new(kind, offset)))
    }

    #[inline(always)]
    fn next_item(&mut self) -> Option<Result<Tlv<'a>, ParseError>> {
        let start = self.pos;
        let rest = self.msg.get(start..)?;
        let available = rest.len();
        let (tlv_type, form, len, hdr) = match *rest {
            [] => return None,
            [EXTENDED_MARKER, reserved, tlv_type, lo, hi, ..] => {
                if reserved != 0 {
                    return self.fail(
                        ParseErrorKind::InvalidExtendedTlv { found: reserved },
                        start + 1,
                    );
                }
                if tlv_type == EXTENDED_MARKER {
                    return self.fail(
                        ParseErrorKind::InvalidExtendedTlv { found: tlv_type },
                        start + 2,
                    );
                }
                (
                    tlv_type,
                    Form::Extended,
                    u16::from_le_bytes([lo, hi]) as usize,
                    EXTENDED_HEADER_LEN,
                )
            }
            [EXTENDED_MARKER, ..] => {
                return self.fail(
                    ParseErrorKind::TruncatedTlv {
                        needed: EXTENDED_HEADER_LEN,
                        available,
                    },
                    start,
                )
            }
            [tlv_type, len, ..] => (tlv_type, Form::Standard, len as usize, STANDARD_HEADER_LEN),
            [_] => {
                return self.fail(
                    ParseErrorKind::TruncatedTlv {
                        needed: STANDARD_HEADER_LEN,
                        available,
                    },
                    start,
                )
            }
        };
        let needed = hdr + len;
        let Some(payload) = rest.get(hdr..needed) else {
            return self.fail(ParseErrorKind::TruncatedTlv { needed, available }, start);
        };
        if !self.trusted && !self.sizes.accepts(tlv_type, len) {
            let expected = super::tlv::fixed_size(tlv_type).unwrap_or_default();
            return self.fail(
                ParseErrorKind::FixedSizeMismatch {
                    tlv_type,
                    expected,
                    actual: len as u16,
                },
                start,
            );
        }
        self.pos = start + needed;
        Some(Ok(Tlv {
            tlv_type,
            form,
            offset: start,
            payload,
        }))
    }
}

impl<'a> Iterator for TlvWalker<'a> {
    type Item = Result<Tlv<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }
}

impl core::iter::FusedIterator for TlvWalker<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&MAGIC.to_le_bytes());
        v.extend_from_slice(&[1, 1, 1, 0]);
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_message_built_without_a_checksum_is_refused_by_default_with_what_to_pass() {
        // Checksum field (bytes 28..32) zero: what `Checksum::Zero` writes.
        let msg = header(&[]);
        let err = MessageView::parse(&msg, ParseOptions::default()).expect_err("strict");
        let text = err.to_string();
        assert!(text.contains("Verify::ZeroMeansUnchecked"), "{text}");
        assert!(MessageView::parse(&msg, ParseOptions::new(Verify::ZeroMeansUnchecked)).is_ok());
    }

    #[test]
    fn extended_inner_type_255_is_rejected() {
        let msg = header(&[255, 0, 255, 1, 0, 9]);
        let err = MessageView::parse(&msg, ParseOptions::new(Verify::Off)).expect_err("rejected");
        assert_eq!(err.kind, ParseErrorKind::InvalidExtendedTlv { found: 255 });
        assert_eq!(err.offset, 34);
    }

    #[test]
    fn extended_short_payload_is_accepted_and_reported_extended() {
        let msg = header(&[255, 0, 7, 3, 0, 1, 2, 3]);
        let view = MessageView::parse(&msg, ParseOptions::new(Verify::Off)).expect("valid");
        let items: Vec<_> = view.tlvs().collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].form, Form::Extended);
        assert_eq!(items[0].payload, &[1, 2, 3]);
    }

    #[test]
    fn fixed_size_is_checked_in_extended_form_too() {
        let mut payload = vec![255, 0, 1, 39, 0];
        payload.extend_from_slice(&[0; 39]);
        let msg = header(&payload);
        let err = MessageView::parse(&msg, ParseOptions::new(Verify::Off)).expect_err("rejected");
        assert_eq!(
            err.kind,
            ParseErrorKind::FixedSizeMismatch {
                tlv_type: 1,
                expected: 40,
                actual: 39
            }
        );
    }

    #[test]
    fn type_zero_is_an_unknown_standard_item() {
        let msg = header(&[0, 0, 0, 1, 5]);
        let view = MessageView::parse(&msg, ParseOptions::new(Verify::Off)).expect("valid");
        let items: Vec<_> = view.tlvs().map(|t| (t.tlv_type, t.payload.len())).collect();
        assert_eq!(items, [(0, 0), (0, 1)]);
    }

    #[test]
    fn payload_size_larger_than_u32_range_is_a_mismatch_not_a_wrap() {
        let mut msg = header(&[]);
        msg[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = MessageView::parse(&msg, ParseOptions::new(Verify::Off)).expect_err("rejected");
        assert_eq!(
            err.kind,
            ParseErrorKind::PayloadSizeMismatch {
                declared: u32::MAX,
                actual: 0
            }
        );
        assert_eq!(err.offset, 24);
    }

    #[test]
    fn walker_on_short_buffer_yields_nothing() {
        assert_eq!(TlvWalker::new(&[1, 2, 3], SizePolicy::Registry).count(), 0);
    }
}
