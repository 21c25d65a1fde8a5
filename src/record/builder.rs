//! The builder: writes one message straight into a caller's buffer.

use core::ops::Range;

use zerocopy::little_endian::{U32, U64};
use zerocopy::IntoBytes;

use super::error::BuildError;
use super::header::{
    message_checksum, MessageHeader, RelayDomain, SourceType, CHECKSUM_OFFSET, HEADER_LEN, MAGIC,
    PROTOCOL_VERSION,
};
use super::payloads::TlvPayload;
use super::tlv::{fixed_size, Form, SizePolicy, EXTENDED_MARKER, MAX_EXTENDED_PAYLOAD};

/// Whether [`MessageBuilder::finish`] computes the CRC-32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Compute it over the finished message and store it.
    Compute,
    /// Store 0, meaning "not computed" (the hot path; readers use
    /// [`Verify::Off`](crate::record::Verify::Off) or
    /// [`Verify::ZeroMeansUnchecked`](crate::record::Verify::ZeroMeansUnchecked)).
    Zero,
}

/// Writes a Protocol V2 message into a caller's buffer: no allocation, no
/// panic, no copy beyond the bytes of the message itself.
///
/// Calls chain by value. The first problem (buffer too small, payload too
/// large, wrong size for a fixed-size type, type 255) is remembered, every
/// later call does nothing, and [`finish`](Self::finish) reports it. TLV
/// items are written where they go as they are added; `finish` writes the
/// header, `payload_size` and, if asked, the checksum.
///
/// Defaults: version 1, flags 0, sequence 0, timestamp 0. The builder never
/// reads a clock: a producer that wants wall-clock time passes it.
///
/// # Examples
///
/// ```
/// use shmbus::record::{
///     venue, Checksum, Fixed8, Instrument, MessageBuilder, MessageView, ParseOptions, RelayDomain,
///     Side, SourceType, TradeTlv,
/// };
///
/// let btc = Instrument::coin(venue::BINANCE, "BTC").expect("ticker");
/// let trade = TradeTlv::new(btc, Fixed8::from_raw(6_512_345_678_900), Fixed8::from_raw(12_500_000), Side::Buy, 1_700_000_000_122_456_789);
///
/// let mut buf = [0u8; 128];
/// let len = MessageBuilder::new(&mut buf, RelayDomain::MarketData, SourceType::BinanceCollector)
///     .timestamp_ns(1_700_000_000_123_456_789)
///     .typed(&trade)
///     .finish(Checksum::Compute)?;
///
/// let golden = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/protocol_v2/md_trade.bin"))?;
/// assert_eq!(&buf[..len], &golden[..]);
/// assert!(MessageView::parse(&buf[..len], ParseOptions::default()).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageBuilder<'a> {
    buf: &'a mut [u8],
    header: MessageHeader,
    /// Message length so far; `HEADER_LEN <= pos <= buf.len()` unless `error` is set.
    pos: usize,
    next_form: Option<Form>,
    sizes: SizePolicy,
    error: Option<BuildError>,
}

impl<'a> MessageBuilder<'a> {
    /// Starts a message in `buf` for a relay domain and a source.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{Checksum, MessageBuilder, RelayDomain, SourceType};
    ///
    /// let mut buf = [0xAAu8; 32];
    /// let len = MessageBuilder::new(&mut buf, RelayDomain::System, SourceType::Dashboard)
    ///     .finish(Checksum::Zero)?;
    /// assert_eq!(len, 32);
    /// assert_eq!(&buf[..8], &[0xEF, 0xBE, 0xAD, 0xDE, 4, 1, 60, 0]);
    /// # Ok::<(), shmbus::record::BuildError>(())
    /// ```
    #[inline]
    pub fn new(buf: &'a mut [u8], domain: RelayDomain, source: SourceType) -> Self {
        Self::new_raw(buf, domain as u8, source as u8)
    }

    /// Starts a message with raw domain and source bytes, including values
    /// the format does not list (for relaying and tests).
    #[inline]
    pub fn new_raw(buf: &'a mut [u8], domain: u8, source: u8) -> Self {
        let available = buf.len();
        let error = (available < HEADER_LEN).then_some(BuildError::BufferTooSmall {
            needed: HEADER_LEN,
            available,
        });
        MessageBuilder {
            buf,
            header: MessageHeader {
                magic: U32::new(MAGIC),
                relay_domain: domain,
                version: PROTOCOL_VERSION,
                source,
                flags: 0,
                sequence: U64::ZERO,
                timestamp: U64::ZERO,
                payload_size: U32::ZERO,
                checksum: U32::ZERO,
            },
            pos: HEADER_LEN,
            next_form: None,
            sizes: SizePolicy::Registry,
            error,
        }
    }

    /// Sets the sequence number (default 0).
    #[inline]
    #[must_use]
    pub fn sequence(mut self, sequence: u64) -> Self {
        self.header.sequence.set(sequence);
        self
    }

    /// Sets the timestamp, ns since the Unix epoch (default 0; never
    /// replaced by the current time).
    #[inline]
    #[must_use]
    pub fn timestamp_ns(mut self, timestamp_ns: u64) -> Self {
        self.header.timestamp.set(timestamp_ns);
        self
    }

    /// Sets the flags byte (default 0; the format defines no bits).
    #[inline]
    #[must_use]
    pub fn flags(mut self, flags: u8) -> Self {
        self.header.flags = flags;
        self
    }

    /// Sets the version byte (default [`PROTOCOL_VERSION`]).
    #[inline]
    #[must_use]
    pub fn version(mut self, version: u8) -> Self {
        self.header.version = version;
        self
    }

    /// Which payload lengths fixed-size types may have (default
    /// [`SizePolicy::Registry`]; [`SizePolicy::LegacyStructs`] lets a
    /// 56-byte Quote or a 170-byte ArbitrageSignal through).
    #[inline]
    #[must_use]
    pub fn size_policy(mut self, sizes: SizePolicy) -> Self {
        self.sizes = sizes;
        self
    }

    /// Forces the form of the next TLV item only. Without it the builder
    /// uses the standard form up to 255 bytes and the extended form above.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{Checksum, Form, MessageBuilder, RelayDomain, SourceType};
    ///
    /// let mut buf = [0u8; 64];
    /// let len = MessageBuilder::new(&mut buf, RelayDomain::MarketData, SourceType::BinanceCollector)
    ///     .form(Form::Extended)
    ///     .tlv(202u8, &[7, 7])
    ///     .finish(Checksum::Zero)?;
    /// assert_eq!(&buf[32..len], &[255, 0, 202, 2, 0, 7, 7]);
    /// # Ok::<(), shmbus::record::BuildError>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn form(mut self, form: Form) -> Self {
        self.next_form = Some(form);
        self
    }

    /// Appends a TLV item with a copy of `payload`.
    ///
    /// `tlv_type` may be a [`TlvType`](crate::record::TlvType) or any raw
    /// number but 255.
    #[inline]
    #[must_use]
    pub fn tlv(mut self, tlv_type: impl Into<u8>, payload: &[u8]) -> Self {
        if let Some(dst) = self.reserve(tlv_type.into(), payload.len()) {
            dst.copy_from_slice(payload);
        }
        self
    }

    /// Appends a TLV item of `len` bytes that `write` fills in place. The
    /// slice handed to `write` is zeroed first and is exactly `len` long;
    /// `write` is not called if the item cannot be added.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{Checksum, MessageBuilder, RelayDomain, SourceType, TlvType};
    ///
    /// let mut buf = [0u8; 64];
    /// let len = MessageBuilder::new(&mut buf, RelayDomain::System, SourceType::Dashboard)
    ///     .tlv_with(TlvType::Heartbeat, 16, |dst| dst[..8].copy_from_slice(&42u64.to_le_bytes()))
    ///     .finish(Checksum::Zero)?;
    /// assert_eq!(len, 50);
    /// assert_eq!(&buf[32..36], &[100, 16, 42, 0]);
    /// # Ok::<(), shmbus::record::BuildError>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn tlv_with(
        mut self,
        tlv_type: impl Into<u8>,
        len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Self {
        if let Some(dst) = self.reserve(tlv_type.into(), len) {
            dst.fill(0);
            write(dst);
        }
        self
    }

    /// Appends a typed payload under its own type number.
    #[inline]
    #[must_use]
    pub fn typed<T: TlvPayload>(self, payload: &T) -> Self {
        self.tlv(T::TLV_TYPE, payload.as_bytes())
    }

    /// Appends a typed payload that `write` fills in place, starting from
    /// all zeroes: the way to put a 2.4 KB order book in a ring slot
    /// without building it elsewhere first.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::record::{
    ///     venue, Checksum, Fixed8, Instrument, MessageBuilder, MessageView, OrderBookTlv, OrderLevel,
    ///     ParseOptions, RelayDomain, SourceType,
    /// };
    ///
    /// let mut buf = vec![0u8; 4096];
    /// let len = MessageBuilder::new(&mut buf, RelayDomain::MarketData, SourceType::BinanceCollector)
    ///     .typed_in_place(|book: &mut OrderBookTlv| {
    ///         book.set_instrument(Instrument::coin(venue::BINANCE, "BTC").expect("ticker"));
    ///         book.precision_factor.set(100_000_000);
    ///         let _ = book.bids.push(OrderLevel::new(Fixed8::from_raw(100), Fixed8::from_raw(1), 1));
    ///     })
    ///     .finish(Checksum::Compute)?;
    /// assert_eq!(len, 32 + 5 + 2456);
    /// let msg = MessageView::parse(&buf[..len], ParseOptions::default())?;
    /// assert_eq!(msg.first::<OrderBookTlv>().map(|b| b.bids().len()), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn typed_in_place<T: TlvPayload>(mut self, write: impl FnOnce(&mut T)) -> Self {
        if let Some(dst) = self.reserve(T::TLV_TYPE.number(), core::mem::size_of::<T>()) {
            dst.fill(0);
            // `T` is `Unaligned` and `dst` is exactly its size, so this
            // cannot fail; if it somehow did, the zeroed payload stays.
            if let Ok(payload) = T::mut_from_bytes(dst) {
                write(payload);
            }
        }
        self
    }

    /// Bytes written so far, header included.
    #[inline]
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether no TLV item has been added yet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == HEADER_LEN
    }

    /// Writes the header and returns the message length: the message is
    /// `buf[..len]`.
    ///
    /// # Errors
    ///
    /// The first [`BuildError`] met while building. The buffer's content is
    /// then unspecified.
    #[inline]
    pub fn finish(self, checksum: Checksum) -> Result<usize, BuildError> {
        let MessageBuilder {
            buf,
            mut header,
            pos,
            error,
            ..
        } = self;
        if let Some(e) = error {
            return Err(e);
        }
        // pos - HEADER_LEN fits in u32: reserve() keeps it so.
        header.payload_size.set((pos - HEADER_LEN) as u32);
        let available = buf.len();
        let Some(msg) = buf.get_mut(..pos) else {
            return Err(BuildError::BufferTooSmall {
                needed: pos,
                available,
            });
        };
        if let Some((head, _)) = msg.split_first_chunk_mut::<HEADER_LEN>() {
            head.copy_from_slice(header.as_bytes());
        }
        if checksum == Checksum::Compute {
            let crc = message_checksum(msg);
            if let Some(field) = msg.get_mut(CHECKSUM_OFFSET..HEADER_LEN) {
                field.copy_from_slice(&crc.to_le_bytes());
            }
        }
        Ok(pos)
    }

    /// Reserves room for one item, writes its TLV header and returns its
    /// payload bytes; on failure records the error and returns `None`.
    #[inline(always)]
    fn reserve(&mut self, tlv_type: u8, len: usize) -> Option<&mut [u8]> {
        if self.error.is_some() {
            return None;
        }
        let forced = self.next_form.take();
        match self.place(tlv_type, len, forced) {
            Ok(range) => self.buf.get_mut(range),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    #[inline(always)]
    fn place(
        &mut self,
        tlv_type: u8,
        len: usize,
        forced: Option<Form>,
    ) -> Result<Range<usize>, BuildError> {
        if tlv_type == EXTENDED_MARKER {
            return Err(BuildError::ReservedTlvType);
        }
        if !self.sizes.accepts(tlv_type, len) {
            return Err(BuildError::FixedSizeMismatch {
                tlv_type,
                expected: fixed_size(tlv_type).unwrap_or_default(),
                actual: len,
            });
        }
        let form = match forced.or(Form::for_len(len)) {
            Some(form) if len <= form.max_payload() => form,
            other => {
                return Err(BuildError::PayloadTooLarge {
                    tlv_type,
                    len,
                    max: other.map_or(MAX_EXTENDED_PAYLOAD, Form::max_payload),
                })
            }
        };
        // len <= 65535 and pos <= buf.len() <= isize::MAX: no overflow.
        let start = self.pos;
        let payload_start = start + form.header_len();
        let end = payload_start + len;
        if end - HEADER_LEN > u32::MAX as usize {
            return Err(BuildError::PayloadTooLarge {
                tlv_type,
                len,
                max: (u32::MAX as usize).saturating_sub(payload_start - HEADER_LEN),
            });
        }
        let available = self.buf.len();
        let Some(item) = self.buf.get_mut(start..end) else {
            return Err(BuildError::BufferTooSmall {
                needed: end,
                available,
            });
        };
        match form {
            Form::Standard => {
                if let Some((head, _)) = item.split_first_chunk_mut::<2>() {
                    *head = [tlv_type, len as u8];
                }
            }
            Form::Extended => {
                if let Some((head, _)) = item.split_first_chunk_mut::<5>() {
                    let [lo, hi] = (len as u16).to_le_bytes();
                    *head = [EXTENDED_MARKER, 0, tlv_type, lo, hi];
                }
            }
        }
        self.pos = end;
        Ok(payload_start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{MessageView, ParseOptions, TlvType, Verify};

    fn builder(buf: &mut [u8]) -> MessageBuilder<'_> {
        MessageBuilder::new(buf, RelayDomain::MarketData, SourceType::BinanceCollector)
    }

    #[test]
    fn first_error_sticks() {
        let mut buf = [0u8; 64];
        let err = builder(&mut buf)
            .tlv(255u8, &[])
            .tlv(1u8, &[0; 39])
            .finish(Checksum::Zero)
            .expect_err("rejected");
        assert_eq!(err, BuildError::ReservedTlvType);
    }

    #[test]
    fn fixed_sizes_are_enforced_unless_legacy() {
        let mut buf = [0u8; 128];
        let err = builder(&mut buf)
            .tlv(TlvType::Quote, &[0; 56])
            .finish(Checksum::Zero);
        assert_eq!(
            err,
            Err(BuildError::FixedSizeMismatch {
                tlv_type: 2,
                expected: 52,
                actual: 56
            })
        );
        let len = builder(&mut buf)
            .size_policy(SizePolicy::LegacyStructs)
            .tlv(TlvType::Quote, &[0; 56])
            .finish(Checksum::Compute)
            .expect("legacy quote");
        assert_eq!(len, 32 + 2 + 56);
    }

    #[test]
    fn forced_standard_form_cannot_hold_256_bytes() {
        let mut buf = [0u8; 512];
        let err = builder(&mut buf)
            .form(Form::Standard)
            .tlv(202u8, &[0; 256])
            .finish(Checksum::Zero);
        assert_eq!(
            err,
            Err(BuildError::PayloadTooLarge {
                tlv_type: 202,
                len: 256,
                max: 255
            })
        );
    }

    #[test]
    fn oversized_payload_is_refused_not_truncated() {
        let mut buf = vec![0u8; 70_000];
        let err = builder(&mut buf)
            .tlv(202u8, &[0; 65_536])
            .finish(Checksum::Zero);
        assert_eq!(
            err,
            Err(BuildError::PayloadTooLarge {
                tlv_type: 202,
                len: 65_536,
                max: 65_535
            })
        );
        let len = builder(&mut buf)
            .tlv(202u8, &[1; 65_535])
            .finish(Checksum::Compute)
            .expect("fits");
        assert_eq!(len, 32 + 5 + 65_535);
        assert!(MessageView::parse(&buf[..len], ParseOptions::new(Verify::Strict)).is_ok());
    }

    #[test]
    fn small_buffers_report_needed_length() {
        let mut tiny = [0u8; 31];
        assert_eq!(
            builder(&mut tiny).finish(Checksum::Zero),
            Err(BuildError::BufferTooSmall {
                needed: 32,
                available: 31
            })
        );
        let mut buf = [0u8; 73];
        assert_eq!(
            builder(&mut buf).tlv(1u8, &[0; 40]).finish(Checksum::Zero),
            Err(BuildError::BufferTooSmall {
                needed: 74,
                available: 73
            })
        );
    }

    #[test]
    fn form_override_applies_to_one_item() {
        let mut buf = [0u8; 64];
        let len = builder(&mut buf)
            .form(Form::Extended)
            .tlv(202u8, &[1])
            .tlv(202u8, &[2])
            .finish(Checksum::Zero)
            .expect("fits");
        assert_eq!(&buf[32..len], &[255, 0, 202, 1, 0, 1, 202, 1, 2]);
    }
}
