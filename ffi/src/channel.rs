//! SPSC channels: one producer, one consumer.

use shmbus::{ClaimError, Consumer, Producer, RecvError, SpscRecord, WriteSlot};

use crate::bus::shmbus_channel;
use crate::endpoint::{self, shmbus_claim, shmbus_received, shmbus_record, Reader, Writer};
use crate::error::{guard, guard_void, shmbus_status, Failure};
use crate::handle::{free, hand_out, handle, handle_ref, shmbus_wait, Lending, Lends, Patience};

/// A channel's producer. Claims and sends; holds at most one claim at a
/// time.
pub struct shmbus_producer(Lending<Producer>);

/// A channel's consumer. Reads and receives; holds at most one record at a
/// time.
pub struct shmbus_consumer(Lending<Consumer>);

impl Lends for Producer {
    type Loan<'a> = WriteSlot<'a>;
    const DESCRIBE_BEFORE_KEEPING: bool = true;
}

impl Writer for Producer {
    #[inline(always)]
    fn claim(&mut self, len: usize, patience: Patience) -> Result<WriteSlot<'_>, ClaimError> {
        match patience {
            Patience::Try => self.try_claim(len),
            Patience::Wait(wait, timeout) => self.claim_timeout(len, wait, timeout),
        }
    }

    #[inline(always)]
    fn view(slot: &mut WriteSlot<'_>) -> shmbus_claim {
        let bytes: &mut [u8] = slot;
        shmbus_claim {
            data: bytes.as_mut_ptr(),
            capacity: bytes.len(),
            sequence: 0,
        }
    }

    #[inline(always)]
    fn commit(mut slot: WriteSlot<'_>, record_type: u16) -> Result<u64, ClaimError> {
        slot.set_record_type(record_type);
        slot.commit();
        Ok(0)
    }

    #[inline(always)]
    fn send(
        &mut self,
        record_type: u16,
        payload: &[u8],
        patience: Patience,
    ) -> Result<u64, ClaimError> {
        match patience {
            Patience::Try => self.try_send(record_type, payload),
            Patience::Wait(wait, timeout) => self.send_timeout(record_type, payload, wait, timeout),
        }
        .map(|()| 0)
    }
}

impl Lends for Consumer {
    type Loan<'a> = SpscRecord<'a>;
    const DESCRIBE_BEFORE_KEEPING: bool = true;
}

impl Reader for Consumer {
    #[inline(always)]
    fn read(&mut self, patience: Patience) -> Result<SpscRecord<'_>, RecvError> {
        match patience {
            Patience::Try => self.try_read(),
            Patience::Wait(wait, timeout) => self.read_timeout(wait, timeout),
        }
    }

    #[inline(always)]
    fn view(record: &SpscRecord<'_>) -> shmbus_record {
        shmbus_record {
            data: record.as_ptr(),
            len: record.len(),
            sequence: 0,
            record_type: record.record_type(),
            redelivered: false,
        }
    }

    #[inline(always)]
    fn recv(&mut self, buf: &mut [u8], patience: Patience) -> Result<(u16, usize), RecvError> {
        match patience {
            Patience::Try => self.try_recv(buf),
            Patience::Wait(wait, timeout) => self.recv_timeout(buf, wait, timeout),
        }
    }
}

const NULL_CHANNEL: &std::ffi::CStr = c"the channel handle is NULL";

/// # Safety
///
/// `p` is NULL or a live producer handle used by no other thread.
#[inline(always)]
unsafe fn producer_of<'a>(p: *mut shmbus_producer) -> Result<&'a mut Lending<Producer>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(p, c"the producer handle is NULL") }?.0)
}

/// # Safety
///
/// `c` is NULL or a live consumer handle used by no other thread.
#[inline(always)]
unsafe fn consumer_of<'a>(c: *mut shmbus_consumer) -> Result<&'a mut Lending<Consumer>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(c, c"the consumer handle is NULL") }?.0)
}

/// Attaches the channel's producer (one at a time: `SHMBUS_STATUS_OPEN_FAILED`
/// while another lives).
///
/// # Safety
///
/// `channel` is a live channel handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_channel_producer(
    channel: *const shmbus_channel,
    out: *mut *mut shmbus_producer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let producer = unsafe { handle_ref(channel, NULL_CHANNEL) }?.0.producer()?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_producer(Lending::new(producer))) }
    })
}

/// Attaches the channel's consumer (one at a time).
///
/// # Safety
///
/// `channel` is a live channel handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_channel_consumer(
    channel: *const shmbus_channel,
    out: *mut *mut shmbus_consumer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let consumer = unsafe { handle_ref(channel, NULL_CHANNEL) }?.0.consumer()?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_consumer(Lending::new(consumer))) }
    })
}

/// Detaches and frees a producer (NULL is a no-op); a claim still held is
/// aborted.
///
/// # Safety
///
/// `producer` came from `shmbus_channel_producer` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_free(producer: *mut shmbus_producer) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(producer) })
}

/// Detaches and frees a consumer (NULL is a no-op); a record still held is
/// released.
///
/// # Safety
///
/// `consumer` came from `shmbus_channel_consumer` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_free(consumer: *mut shmbus_consumer) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(consumer) })
}

/// Claims a record of exactly `len` bytes without waiting: write it at
/// `out->data`, then `shmbus_producer_commit` or `shmbus_producer_abort`.
/// `SHMBUS_STATUS_FULL` if there is no room, `SHMBUS_STATUS_BUSY` if a
/// claim is held already.
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_try_claim(
    producer: *mut shmbus_producer,
    len: usize,
    out: *mut shmbus_claim,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::Try;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::claim(p, len, patience, out) }
    })
}

/// As `shmbus_producer_try_claim`, waiting with `wait` while there is no room
/// (never `SHMBUS_WAIT_KIND_BLOCKING`: nothing wakes a writer).
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_claim_blocking(
    producer: *mut shmbus_producer,
    len: usize,
    wait: shmbus_wait,
    out: *mut shmbus_claim,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::claim(p, len, patience, out) }
    })
}

/// As `shmbus_producer_claim_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_claim_timeout(
    producer: *mut shmbus_producer,
    len: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_claim,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::claim(p, len, patience, out) }
    })
}

/// Copies `len` bytes at `data` into a new record of type `record_type`
/// and publishes it without waiting; its sequence (0 on a channel) goes
/// to `*sequence` unless NULL.
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_try_send(
    producer: *mut shmbus_producer,
    record_type: u16,
    data: *const u8,
    len: usize,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::Try;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::send(p, record_type, data, len, patience, sequence) }
    })
}

/// As `shmbus_producer_try_send`, waiting with `wait` while there is no room.
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_send_blocking(
    producer: *mut shmbus_producer,
    record_type: u16,
    data: *const u8,
    len: usize,
    wait: shmbus_wait,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::send(p, record_type, data, len, patience, sequence) }
    })
}

/// As `shmbus_producer_send_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `producer` is a live producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_send_timeout(
    producer: *mut shmbus_producer,
    record_type: u16,
    data: *const u8,
    len: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { producer_of(producer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::send(p, record_type, data, len, patience, sequence) }
    })
}

/// Publishes the claim held as a record of type `record_type`; its
/// sequence (0 on a channel) goes to `*sequence` unless NULL. The claim's
/// pointer is invalid afterwards, whatever the status.
/// `SHMBUS_STATUS_RECLAIMED` if the claim was held past the ring's reclaim
/// timeout (nothing delivered), `SHMBUS_STATUS_NOT_HELD` with no claim.
///
/// # Safety
///
/// `producer` is a live producer handle; `sequence` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_commit(
    producer: *mut shmbus_producer,
    record_type: u16,
    sequence: *mut u64,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { endpoint::commit(producer_of(producer)?, record_type, sequence) })
}

/// Aborts the claim held: readers never see it. `SHMBUS_STATUS_NOT_HELD`
/// with no claim.
///
/// # Safety
///
/// `producer` is a live producer handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_producer_abort(producer: *mut shmbus_producer) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| endpoint::abort(unsafe { producer_of(producer) }?))
}

/// Reads the next record in place without waiting. `out->data` is
/// valid until `shmbus_consumer_release` (or the free of the handle); another
/// read before that returns `SHMBUS_STATUS_BUSY`. `SHMBUS_STATUS_EMPTY`
/// if nothing is new.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_try_read(
    consumer: *mut shmbus_consumer,
    out: *mut shmbus_record,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::Try;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::read(p, patience, out) }
    })
}

/// As `shmbus_consumer_try_read`, waiting with `wait`.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_read_blocking(
    consumer: *mut shmbus_consumer,
    wait: shmbus_wait,
    out: *mut shmbus_record,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::read(p, patience, out) }
    })
}

/// As `shmbus_consumer_read_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_read_timeout(
    consumer: *mut shmbus_consumer,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_record,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::read(p, patience, out) }
    })
}

/// Copies the next record into `buf` (`capacity` bytes) without waiting.
/// `SHMBUS_STATUS_BUFFER_TOO_SMALL` leaves the record unread and puts its
/// length in `out->len`.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_try_recv(
    consumer: *mut shmbus_consumer,
    buf: *mut u8,
    capacity: usize,
    out: *mut shmbus_received,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::Try;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::recv(p, buf, capacity, patience, out) }
    })
}

/// As `shmbus_consumer_try_recv`, waiting with `wait`.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_recv_blocking(
    consumer: *mut shmbus_consumer,
    buf: *mut u8,
    capacity: usize,
    wait: shmbus_wait,
    out: *mut shmbus_received,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::recv(p, buf, capacity, patience, out) }
    })
}

/// As `shmbus_consumer_recv_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `consumer` is a live consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_recv_timeout(
    consumer: *mut shmbus_consumer,
    buf: *mut u8,
    capacity: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_received,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        let p = {
            // SAFETY: the caller's promise.
            unsafe { consumer_of(consumer) }?
        };
        // SAFETY: the caller's promise.
        unsafe { endpoint::recv(p, buf, capacity, patience, out) }
    })
}

/// Releases the record held: its space goes back to the producer and its
/// pointer is invalid. `SHMBUS_STATUS_NOT_HELD` with no record.
///
/// # Safety
///
/// `consumer` is a live consumer handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_consumer_release(consumer: *mut shmbus_consumer) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| endpoint::release(unsafe { consumer_of(consumer) }?))
}
