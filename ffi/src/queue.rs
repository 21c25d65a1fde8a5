//! Work queues: many producers, many consumers, each record taken by one
//! consumer and acknowledged.

use shmbus::{ClaimError, QueueClaim, QueueConsumer, QueueProducer, RecvError, Taken};

use crate::bus::shmbus_queue;
use crate::endpoint::{self, shmbus_claim, shmbus_received, shmbus_record, Reader, Writer};
use crate::error::{guard, guard_void, shmbus_status, Failure};
use crate::handle::{free, hand_out, handle, handle_ref, shmbus_wait, Lending, Lends, Patience};

/// A work queue's producer. Claims and sends; holds at most one claim at a
/// time.
pub struct shmbus_queue_producer(Lending<QueueProducer>);

/// A work queue's consumer. Takes and acknowledges (or receives copies);
/// holds at most one taken record at a time.
pub struct shmbus_queue_consumer(Lending<QueueConsumer>);

impl Lends for QueueProducer {
    type Loan<'a> = QueueClaim<'a>;
}

impl Writer for QueueProducer {
    #[inline(always)]
    fn claim(&mut self, len: usize, patience: Patience) -> Result<QueueClaim<'_>, ClaimError> {
        match patience {
            Patience::Try => self.try_claim(len),
            Patience::Wait(wait, timeout) => self.claim_timeout(len, wait, timeout),
        }
    }

    #[inline(always)]
    fn view(claim: &mut QueueClaim<'_>) -> shmbus_claim {
        let sequence = claim.sequence();
        let bytes: &mut [u8] = claim;
        shmbus_claim {
            data: bytes.as_mut_ptr(),
            capacity: bytes.len(),
            sequence,
        }
    }

    #[inline(always)]
    fn commit(mut claim: QueueClaim<'_>, record_type: u16) -> Result<u64, ClaimError> {
        claim.set_record_type(record_type);
        claim.commit()
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
    }
}

impl Lends for QueueConsumer {
    type Loan<'a> = Taken<'a>;
}

impl Reader for QueueConsumer {
    #[inline(always)]
    fn read(&mut self, patience: Patience) -> Result<Taken<'_>, RecvError> {
        match patience {
            Patience::Try => self.try_take(),
            Patience::Wait(wait, timeout) => self.take_timeout(wait, timeout),
        }
    }

    #[inline(always)]
    fn view(taken: &Taken<'_>) -> shmbus_record {
        shmbus_record {
            data: taken.as_ptr(),
            len: taken.len(),
            sequence: taken.sequence(),
            record_type: taken.record_type(),
            redelivered: taken.redelivered(),
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

const NULL_QUEUE: &std::ffi::CStr = c"the queue handle is NULL";

/// # Safety
///
/// `p` is NULL or a live queue producer handle used by no other thread.
#[inline(always)]
unsafe fn producer_of<'a>(
    p: *mut shmbus_queue_producer,
) -> Result<&'a mut Lending<QueueProducer>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(p, c"the queue producer handle is NULL") }?.0)
}

/// # Safety
///
/// `c` is NULL or a live queue consumer handle used by no other thread.
#[inline(always)]
unsafe fn consumer_of<'a>(
    c: *mut shmbus_queue_consumer,
) -> Result<&'a mut Lending<QueueConsumer>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(c, c"the queue consumer handle is NULL") }?.0)
}

/// Attaches a producer to the queue.
///
/// # Safety
///
/// `queue` is a live queue handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_new(
    queue: *const shmbus_queue,
    out: *mut *mut shmbus_queue_producer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let producer = unsafe { handle_ref(queue, NULL_QUEUE) }?.0.producer()?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_queue_producer(Lending::new(producer))) }
    })
}

/// Attaches a consumer to the queue.
///
/// # Safety
///
/// `queue` is a live queue handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_new(
    queue: *const shmbus_queue,
    out: *mut *mut shmbus_queue_consumer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let consumer = unsafe { handle_ref(queue, NULL_QUEUE) }?.0.consumer()?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_queue_consumer(Lending::new(consumer))) }
    })
}

/// Detaches and frees a queue producer (NULL is a no-op); a claim still
/// held is aborted.
///
/// # Safety
///
/// `producer` came from `shmbus_queue_producer_new` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_free(producer: *mut shmbus_queue_producer) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(producer) })
}

/// Detaches and frees a queue consumer (NULL is a no-op); a record still
/// taken is given back to the queue, unacknowledged.
///
/// # Safety
///
/// `consumer` came from `shmbus_queue_consumer_new` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_free(consumer: *mut shmbus_queue_consumer) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(consumer) })
}

/// Claims a record of exactly `len` bytes without waiting: write it at
/// `out->data`, then `shmbus_queue_producer_commit` or `shmbus_queue_producer_abort`.
/// `SHMBUS_STATUS_FULL` if there is no room, `SHMBUS_STATUS_BUSY` if a
/// claim is held already.
///
/// # Safety
///
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_try_claim(
    producer: *mut shmbus_queue_producer,
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

/// As `shmbus_queue_producer_try_claim`, waiting with `wait` while there is no room
/// (never `SHMBUS_WAIT_KIND_BLOCKING`: nothing wakes a writer).
///
/// # Safety
///
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_claim_blocking(
    producer: *mut shmbus_queue_producer,
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

/// As `shmbus_queue_producer_claim_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_claim_timeout(
    producer: *mut shmbus_queue_producer,
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
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_try_send(
    producer: *mut shmbus_queue_producer,
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

/// As `shmbus_queue_producer_try_send`, waiting with `wait` while there is no room.
///
/// # Safety
///
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_send_blocking(
    producer: *mut shmbus_queue_producer,
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

/// As `shmbus_queue_producer_send_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `producer` is a live queue producer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_send_timeout(
    producer: *mut shmbus_queue_producer,
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
/// `producer` is a live queue producer handle; `sequence` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_commit(
    producer: *mut shmbus_queue_producer,
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
/// `producer` is a live queue producer handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_producer_abort(
    producer: *mut shmbus_queue_producer,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| endpoint::abort(unsafe { producer_of(producer) }?))
}

/// Takes the next record in place without waiting. `out->data` is
/// valid until `shmbus_queue_consumer_ack` or
/// `shmbus_queue_consumer_give_back` (or the free of the handle); another
/// take before that returns `SHMBUS_STATUS_BUSY`. `SHMBUS_STATUS_EMPTY`
/// if nothing is new.
/// `out->redelivered` says another consumer took it before and died (or
/// gave it back): it may have been handled already.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_try_take(
    consumer: *mut shmbus_queue_consumer,
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

/// As `shmbus_queue_consumer_try_take`, waiting with `wait`.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_take_blocking(
    consumer: *mut shmbus_queue_consumer,
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

/// As `shmbus_queue_consumer_take_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_take_timeout(
    consumer: *mut shmbus_queue_consumer,
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
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_try_recv(
    consumer: *mut shmbus_queue_consumer,
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

/// As `shmbus_queue_consumer_try_recv`, waiting with `wait`.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_recv_blocking(
    consumer: *mut shmbus_queue_consumer,
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

/// As `shmbus_queue_consumer_recv_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle; pointer arguments are NULL
/// only where allowed, and valid for the lengths given.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_recv_timeout(
    consumer: *mut shmbus_queue_consumer,
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

/// Acknowledges the record taken: it is done and its slot free. Its pointer
/// is invalid afterwards, whatever the status. `SHMBUS_STATUS_NOT_HELD`
/// with no record.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_ack(
    consumer: *mut shmbus_queue_consumer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let taken = unsafe { consumer_of(consumer) }?.take_loan()?;
        Ok(taken.ack()?)
    })
}

/// Gives the record taken back to the queue, for any consumer to take
/// again (flagged redelivered). Its pointer is invalid afterwards.
/// `SHMBUS_STATUS_NOT_HELD` with no record.
///
/// # Safety
///
/// `consumer` is a live queue consumer handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_queue_consumer_give_back(
    consumer: *mut shmbus_queue_consumer,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let taken = unsafe { consumer_of(consumer) }?.take_loan()?;
        Ok(taken.give_back()?)
    })
}
