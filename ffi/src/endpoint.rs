//! The verbs every ring kind shares, written once: writers claim, commit,
//! abort and send; readers read, release and receive. Each ring kind's
//! handle type implements [`Writer`] or [`Reader`] by calling its Rust
//! methods; the `extern "C"` functions are one-line calls of the bodies
//! here.

use shmbus::{ClaimError, RecvError};

use crate::error::Failure;
use crate::handle::{buffer, bytes, put, Lending, Lends, Patience};

/// A claimed slot: write up to `capacity` bytes at `data`, then commit or
/// abort it.
///
/// `data` points into the ring (or, on an overwrite topic, into the
/// publisher's staging buffer). It is valid until the commit, the abort or
/// the free of the handle that claimed it, whichever comes first, and only
/// the claiming thread may write it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_claim {
    /// The slot's bytes (their content before you write is unspecified).
    pub data: *mut u8,
    /// Exactly the length claimed: the record is this long.
    pub capacity: usize,
    /// The record's sequence number (topics and queues; 0 on a channel).
    pub sequence: u64,
}

/// A record read in place (a subscriber's or channel consumer's read, a
/// queue consumer's take).
///
/// `data` is valid until the release (ack or give-back for a queue) or the
/// free of the handle that read it, whichever comes first; the same handle
/// returns `SHMBUS_STATUS_BUSY` for another read until then. Never write
/// through it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmbus_record {
    /// The payload bytes.
    pub data: *const u8,
    /// The payload length.
    pub len: usize,
    /// The record's sequence number (topics and queues; 0 on a channel).
    pub sequence: u64,
    /// The record type the writer set.
    pub record_type: u16,
    /// Queues only: a consumer took this record before and died holding it
    /// (or gave it back), so it may have been handled already.
    pub redelivered: bool,
}

/// What a copying receive copied.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmbus_received {
    /// Bytes copied; on `SHMBUS_STATUS_BUFFER_TOO_SMALL`, the record's
    /// length (the record stays unread).
    pub len: usize,
    /// The record type the writer set.
    pub record_type: u16,
}

/// A handle that writes records: a topic publisher, a channel producer, a
/// queue producer.
pub(crate) trait Writer: Lends + 'static {
    /// Claims `len` bytes, waiting as `patience` says.
    fn claim(&mut self, len: usize, patience: Patience) -> Result<Self::Loan<'_>, ClaimError>;
    /// Where the claim's bytes are.
    fn view(claim: &mut Self::Loan<'_>) -> shmbus_claim;
    /// Publishes the claim; its sequence (0 where the kind has none).
    fn commit(claim: Self::Loan<'_>, record_type: u16) -> Result<u64, ClaimError>;
    /// Copies `payload` into a new record and publishes it.
    fn send(
        &mut self,
        record_type: u16,
        payload: &[u8],
        patience: Patience,
    ) -> Result<u64, ClaimError>;
}

/// A handle that reads records: a topic subscriber, a channel consumer, a
/// queue consumer.
pub(crate) trait Reader: Lends + 'static {
    /// Borrows the next record, waiting as `patience` says.
    fn read(&mut self, patience: Patience) -> Result<Self::Loan<'_>, RecvError>;
    /// Where the record's bytes are, and what it is.
    fn view(record: &Self::Loan<'_>) -> shmbus_record;
    /// Copies the next record into `buf`.
    fn recv(&mut self, buf: &mut [u8], patience: Patience) -> Result<(u16, usize), RecvError>;
}

/// Claims a slot and describes it in `*out`.
///
/// # Safety
///
/// `out` is NULL or valid for a write.
#[inline(always)]
pub(crate) unsafe fn claim<W: Writer>(
    writer: &mut Lending<W>,
    len: usize,
    patience: Patience,
    out: *mut shmbus_claim,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(c"the output claim pointer is NULL"));
    }
    // One closure per patience, so that the `try_` functions' has one
    // caller and is inlined into it.
    let view = match patience {
        // SAFETY: the closure keeps the owner only in the claim it returns.
        Patience::Try => unsafe { writer.lend(|w| w.claim(len, Patience::Try), W::view) },
        // SAFETY: as above.
        wait => unsafe { writer.lend(|w| w.claim(len, wait), W::view) },
    }?;
    // SAFETY: `out` is not NULL and valid by the caller's promise.
    unsafe { put(out, view, c"the output claim pointer is NULL") }
}

/// Commits the claim held; writes its sequence to `*sequence` if not NULL.
///
/// # Safety
///
/// `sequence` is NULL or valid for a write.
#[inline(always)]
pub(crate) unsafe fn commit<W: Writer>(
    writer: &mut Lending<W>,
    record_type: u16,
    sequence: *mut u64,
) -> Result<(), Failure> {
    let seq = W::commit(writer.take_loan()?, record_type)?;
    if !sequence.is_null() {
        // SAFETY: not NULL, valid by the caller's promise.
        unsafe { sequence.write(seq) };
    }
    Ok(())
}

/// Aborts the claim held: readers never see it.
#[inline(always)]
pub(crate) fn abort<W: Writer>(writer: &mut Lending<W>) -> Result<(), Failure> {
    drop(writer.take_loan()?);
    Ok(())
}

/// Copies `len` bytes at `data` into a new record and publishes it.
///
/// # Safety
///
/// As [`bytes`]; `sequence` as in [`commit`].
#[inline(always)]
pub(crate) unsafe fn send<W: Writer>(
    writer: &mut Lending<W>,
    record_type: u16,
    data: *const u8,
    len: usize,
    patience: Patience,
    sequence: *mut u64,
) -> Result<(), Failure> {
    // SAFETY: the caller's promise.
    let payload = unsafe { bytes(data, len) }?;
    let seq = writer.owner()?.send(record_type, payload, patience)?;
    if !sequence.is_null() {
        // SAFETY: not NULL, valid by the caller's promise.
        unsafe { sequence.write(seq) };
    }
    Ok(())
}

/// Reads the next record in place and describes it in `*out`.
///
/// # Safety
///
/// `out` is NULL or valid for a write.
#[inline(always)]
pub(crate) unsafe fn read<R: Reader>(
    reader: &mut Lending<R>,
    patience: Patience,
    out: *mut shmbus_record,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(c"the output record pointer is NULL"));
    }
    // One closure per patience, as in [`claim`].
    let view = match patience {
        // SAFETY: the closure keeps the owner only in the record it returns.
        Patience::Try => unsafe { reader.lend(|r| r.read(Patience::Try), |r| R::view(r)) },
        // SAFETY: as above.
        wait => unsafe { reader.lend(|r| r.read(wait), |r| R::view(r)) },
    }?;
    // SAFETY: `out` is not NULL and valid by the caller's promise.
    unsafe { put(out, view, c"the output record pointer is NULL") }
}

/// Releases the record held (a queue's: gives it back, unacknowledged).
#[inline(always)]
pub(crate) fn release<R: Reader>(reader: &mut Lending<R>) -> Result<(), Failure> {
    drop(reader.take_loan()?);
    Ok(())
}

/// Copies the next record into `buf[..capacity]`.
///
/// # Safety
///
/// As [`buffer`]; `out` is NULL or valid for a write.
#[inline(always)]
pub(crate) unsafe fn recv<R: Reader>(
    reader: &mut Lending<R>,
    buf: *mut u8,
    capacity: usize,
    patience: Patience,
    out: *mut shmbus_received,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(c"the output pointer is NULL"));
    }
    // SAFETY: the caller's promise.
    let buf = unsafe { buffer(buf, capacity) }?;
    let (received, result) = match reader.owner()?.recv(buf, patience) {
        Ok((record_type, len)) => (shmbus_received { len, record_type }, Ok(())),
        Err(e @ RecvError::BufferTooSmall { needed }) => (
            shmbus_received {
                len: needed,
                record_type: 0,
            },
            Err(Failure::from(e)),
        ),
        Err(e) => (shmbus_received::default(), Err(Failure::from(e))),
    };
    // SAFETY: `out` is not NULL and valid by the caller's promise.
    unsafe { put(out, received, c"the output pointer is NULL") }?;
    result
}
