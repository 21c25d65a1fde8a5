//! Topics: publishers and subscribers, durable subscribers included.

use std::ffi::c_char;

use shmbus::{Claim, ClaimError, Publisher, Record, RecvError, StartAt, Subscriber};

use crate::bus::shmbus_topic;
use crate::endpoint::{self, shmbus_claim, shmbus_received, shmbus_record, Reader, Writer};
use crate::error::{guard, guard_void, shmbus_status, Failure};
use crate::handle::{
    free, hand_out, handle, handle_ref, put, shmbus_wait, text, Lending, Lends, Patience,
};

/// A topic publisher. Claims and sends; holds at most one claim at a time.
pub struct shmbus_publisher(Lending<Publisher>);

/// A topic subscriber (durable or not). Reads and receives; holds at most
/// one record at a time.
pub struct shmbus_subscriber(Lending<Subscriber>);

/// Where a new subscriber starts reading.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_start_at {
    /// At the next record published after it subscribes.
    Tail = 0,
    /// At the oldest record it can safely be handed.
    Oldest = 1,
}

fn start_at(raw: u32) -> Result<StartAt, Failure> {
    match raw {
        r if r == shmbus_start_at::Tail as u32 => Ok(StartAt::Tail),
        r if r == shmbus_start_at::Oldest as u32 => Ok(StartAt::Oldest),
        _ => Err(Failure::fixed(
            shmbus_status::InvalidArgument,
            c"unknown shmbus_start_at value",
        )),
    }
}

impl Lends for Publisher {
    type Loan<'a> = Claim<'a>;
}

impl Writer for Publisher {
    #[inline(always)]
    fn claim(&mut self, len: usize, patience: Patience) -> Result<Claim<'_>, ClaimError> {
        match patience {
            Patience::Try => self.try_claim(len),
            Patience::Wait(wait, timeout) => self.claim_timeout(len, wait, timeout),
        }
    }

    #[inline(always)]
    fn view(claim: &mut Claim<'_>) -> shmbus_claim {
        let sequence = claim.sequence();
        let bytes: &mut [u8] = claim;
        shmbus_claim {
            data: bytes.as_mut_ptr(),
            capacity: bytes.len(),
            sequence,
        }
    }

    #[inline(always)]
    fn commit(mut claim: Claim<'_>, record_type: u16) -> Result<u64, ClaimError> {
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

impl Lends for Subscriber {
    type Loan<'a> = Record<'a>;
}

impl Reader for Subscriber {
    #[inline(always)]
    fn read(&mut self, patience: Patience) -> Result<Record<'_>, RecvError> {
        match patience {
            Patience::Try => self.try_read(),
            Patience::Wait(wait, timeout) => self.read_timeout(wait, timeout),
        }
    }

    #[inline(always)]
    fn view(record: &Record<'_>) -> shmbus_record {
        shmbus_record {
            data: record.as_ptr(),
            len: record.len(),
            sequence: record.sequence(),
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

const NULL_TOPIC: &std::ffi::CStr = c"the topic handle is NULL";
const NULL_PUBLISHER: &std::ffi::CStr = c"the publisher handle is NULL";
const NULL_SUBSCRIBER: &std::ffi::CStr = c"the subscriber handle is NULL";

/// # Safety
///
/// `p` is NULL or a live publisher handle used by no other thread.
#[inline(always)]
unsafe fn publisher_of<'a>(
    p: *mut shmbus_publisher,
) -> Result<&'a mut Lending<Publisher>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(p, NULL_PUBLISHER) }?.0)
}

/// # Safety
///
/// `s` is NULL or a live subscriber handle used by no other thread.
#[inline(always)]
unsafe fn subscriber_of<'a>(
    s: *mut shmbus_subscriber,
) -> Result<&'a mut Lending<Subscriber>, Failure> {
    // SAFETY: the caller's promise.
    Ok(&mut unsafe { handle(s, NULL_SUBSCRIBER) }?.0)
}

/// Attaches a publisher to the topic.
///
/// # Safety
///
/// `topic` is a live topic handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_publisher(
    topic: *const shmbus_topic,
    out: *mut *mut shmbus_publisher,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let publisher = unsafe { handle_ref(topic, NULL_TOPIC) }?.0.publisher()?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_publisher(Lending::new(publisher))) }
    })
}

/// Attaches a subscriber starting at `start_at` (a `shmbus_start_at`).
///
/// # Safety
///
/// `topic` is a live topic handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_subscriber(
    topic: *const shmbus_topic,
    start: u32,
    out: *mut *mut shmbus_subscriber,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let topic = unsafe { handle_ref(topic, NULL_TOPIC) }?;
        let subscriber = topic.0.subscriber(start_at(start)?)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_subscriber(Lending::new(subscriber))) }
    })
}

/// Attaches the durable subscriber `name`: the first time it starts at
/// `start_at`; after that (a restart, a crash) it resumes where it left
/// off, and under back-pressure publishers wait for it while it is away.
/// One process at a time: `SHMBUS_STATUS_OPEN_FAILED` while another holds
/// it.
///
/// # Safety
///
/// `topic` is a live topic handle; `name` a NUL-terminated string; `out`
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_durable_subscriber(
    topic: *const shmbus_topic,
    name: *const c_char,
    start: u32,
    out: *mut *mut shmbus_subscriber,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (topic, name) = unsafe { (handle_ref(topic, NULL_TOPIC)?, text(name)?) };
        let subscriber = topic.0.durable_subscriber(name, start_at(start)?)?;
        // SAFETY: the caller's promise.
        unsafe { hand_out(out, shmbus_subscriber(Lending::new(subscriber))) }
    })
}

/// Drops the durable subscriber `name` (not attached anywhere): publishers
/// stop waiting for it and its place is forgotten.
///
/// # Safety
///
/// `topic` is a live topic handle; `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_drop_durable(
    topic: *const shmbus_topic,
    name: *const c_char,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let (topic, name) = unsafe { (handle_ref(topic, NULL_TOPIC)?, text(name)?) };
        Ok(topic.0.drop_durable(name)?)
    })
}

/// Detaches and frees a publisher (NULL is a no-op); a claim still held is
/// aborted.
///
/// # Safety
///
/// `publisher` came from `shmbus_topic_publisher` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_free(publisher: *mut shmbus_publisher) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(publisher) })
}

/// Detaches and frees a subscriber (NULL is a no-op); a record still held
/// is released. A durable subscriber keeps its place for the next attach.
///
/// # Safety
///
/// `subscriber` came from `shmbus_topic_subscriber` or
/// `shmbus_topic_durable_subscriber` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_free(subscriber: *mut shmbus_subscriber) {
    // SAFETY: the caller's promise.
    guard_void(|| unsafe { free(subscriber) })
}

/// Claims a record of exactly `len` bytes without waiting: write it at
/// `out->data`, then `shmbus_publisher_commit` or `shmbus_publisher_abort`.
/// `SHMBUS_STATUS_FULL` (back-pressure) if the slowest subscriber holds the
/// slot, `SHMBUS_STATUS_BUSY` if a claim is held already.
///
/// # Safety
///
/// `publisher` is a live publisher handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_try_claim(
    publisher: *mut shmbus_publisher,
    len: usize,
    out: *mut shmbus_claim,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { endpoint::claim(publisher_of(publisher)?, len, Patience::Try, out) })
}

/// As `shmbus_publisher_try_claim`, waiting with `wait` while the log is
/// full (never `SHMBUS_WAIT_KIND_BLOCKING`: nothing wakes a publisher).
///
/// # Safety
///
/// As `shmbus_publisher_try_claim`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_claim_blocking(
    publisher: *mut shmbus_publisher,
    len: usize,
    wait: shmbus_wait,
    out: *mut shmbus_claim,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::claim(publisher_of(publisher)?, len, patience, out) }
    })
}

/// As `shmbus_publisher_claim_blocking`, giving up after `timeout_ns`
/// (`SHMBUS_STATUS_TIMED_OUT`).
///
/// # Safety
///
/// As `shmbus_publisher_try_claim`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_claim_timeout(
    publisher: *mut shmbus_publisher,
    len: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_claim,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::claim(publisher_of(publisher)?, len, patience, out) }
    })
}

/// Publishes the claim held, as a record of type `record_type`; writes its
/// sequence number to `*sequence` unless NULL. The claim's pointer is
/// invalid afterwards, whatever the status. `SHMBUS_STATUS_RECLAIMED` if
/// the claim was held past the topic's reclaim timeout (nothing delivered),
/// `SHMBUS_STATUS_NOT_HELD` with no claim.
///
/// # Safety
///
/// `publisher` is a live publisher handle; `sequence` is NULL or valid for
/// a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_commit(
    publisher: *mut shmbus_publisher,
    record_type: u16,
    sequence: *mut u64,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { endpoint::commit(publisher_of(publisher)?, record_type, sequence) })
}

/// Aborts the claim held: subscribers skip it. `SHMBUS_STATUS_NOT_HELD`
/// with no claim.
///
/// # Safety
///
/// `publisher` is a live publisher handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_abort(publisher: *mut shmbus_publisher) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| endpoint::abort(unsafe { publisher_of(publisher) }?))
}

/// Copies `len` bytes at `data` into a new record of type `record_type`
/// and publishes it, without waiting; its sequence goes to `*sequence`
/// unless NULL.
///
/// # Safety
///
/// `publisher` is a live publisher handle; `data` points to `len` readable
/// bytes (or `len` is 0); `sequence` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_try_send(
    publisher: *mut shmbus_publisher,
    record_type: u16,
    data: *const u8,
    len: usize,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        unsafe {
            endpoint::send(
                publisher_of(publisher)?,
                record_type,
                data,
                len,
                Patience::Try,
                sequence,
            )
        }
    })
}

/// As `shmbus_publisher_try_send`, waiting with `wait` while the log is
/// full.
///
/// # Safety
///
/// As `shmbus_publisher_try_send`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_send_blocking(
    publisher: *mut shmbus_publisher,
    record_type: u16,
    data: *const u8,
    len: usize,
    wait: shmbus_wait,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        // SAFETY: the caller's promise.
        unsafe {
            endpoint::send(
                publisher_of(publisher)?,
                record_type,
                data,
                len,
                patience,
                sequence,
            )
        }
    })
}

/// As `shmbus_publisher_send_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// As `shmbus_publisher_try_send`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_send_timeout(
    publisher: *mut shmbus_publisher,
    record_type: u16,
    data: *const u8,
    len: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        // SAFETY: the caller's promise.
        unsafe {
            endpoint::send(
                publisher_of(publisher)?,
                record_type,
                data,
                len,
                patience,
                sequence,
            )
        }
    })
}

/// Reads the next record in place without waiting. `out->data` is valid
/// until `shmbus_subscriber_release` (or the free of the subscriber); a
/// second read before that returns `SHMBUS_STATUS_BUSY`.
/// `SHMBUS_STATUS_EMPTY` if nothing is new, `SHMBUS_STATUS_LAPPED`
/// (overwrite topics) if records were lost: the next read continues at the
/// oldest intact one.
///
/// # Safety
///
/// `subscriber` is a live subscriber handle; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_try_read(
    subscriber: *mut shmbus_subscriber,
    out: *mut shmbus_record,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { endpoint::read(subscriber_of(subscriber)?, Patience::Try, out) })
}

/// As `shmbus_subscriber_try_read`, waiting with `wait` (any strategy,
/// `SHMBUS_WAIT_KIND_BLOCKING` included).
///
/// # Safety
///
/// As `shmbus_subscriber_try_read`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_read_blocking(
    subscriber: *mut shmbus_subscriber,
    wait: shmbus_wait,
    out: *mut shmbus_record,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::read(subscriber_of(subscriber)?, patience, out) }
    })
}

/// As `shmbus_subscriber_read_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// As `shmbus_subscriber_try_read`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_read_timeout(
    subscriber: *mut shmbus_subscriber,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_record,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::read(subscriber_of(subscriber)?, patience, out) }
    })
}

/// Releases the record held: the cursor moves past it and its pointer is
/// invalid. `SHMBUS_STATUS_NOT_HELD` with no record.
///
/// # Safety
///
/// `subscriber` is a live subscriber handle.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_release(
    subscriber: *mut shmbus_subscriber,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| endpoint::release(unsafe { subscriber_of(subscriber) }?))
}

/// Copies the next record into `buf` (`capacity` bytes) without waiting.
/// `SHMBUS_STATUS_BUFFER_TOO_SMALL` leaves the record unread and puts its
/// length in `out->len`.
///
/// # Safety
///
/// `subscriber` is a live subscriber handle; `buf` points to `capacity`
/// writable bytes (or `capacity` is 0); `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_try_recv(
    subscriber: *mut shmbus_subscriber,
    buf: *mut u8,
    capacity: usize,
    out: *mut shmbus_received,
) -> shmbus_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe {
        endpoint::recv(
            subscriber_of(subscriber)?,
            buf,
            capacity,
            Patience::Try,
            out,
        )
    })
}

/// As `shmbus_subscriber_try_recv`, waiting with `wait`.
///
/// # Safety
///
/// As `shmbus_subscriber_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_recv_blocking(
    subscriber: *mut shmbus_subscriber,
    buf: *mut u8,
    capacity: usize,
    wait: shmbus_wait,
    out: *mut shmbus_received,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::blocking(wait)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::recv(subscriber_of(subscriber)?, buf, capacity, patience, out) }
    })
}

/// As `shmbus_subscriber_recv_blocking`, giving up after `timeout_ns`.
///
/// # Safety
///
/// As `shmbus_subscriber_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_recv_timeout(
    subscriber: *mut shmbus_subscriber,
    buf: *mut u8,
    capacity: usize,
    wait: shmbus_wait,
    timeout_ns: u64,
    out: *mut shmbus_received,
) -> shmbus_status {
    guard(|| {
        let patience = Patience::timeout(wait, timeout_ns)?;
        // SAFETY: the caller's promise.
        unsafe { endpoint::recv(subscriber_of(subscriber)?, buf, capacity, patience, out) }
    })
}

/// Records this subscriber lost to overwriting publishers so far (0 under
/// back-pressure). `SHMBUS_STATUS_BUSY` while a record is held.
///
/// # Safety
///
/// `subscriber` is a live subscriber handle; `missed` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_missed(
    subscriber: *mut shmbus_subscriber,
    missed: *mut u64,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let count = unsafe { subscriber_of(subscriber) }?.owner()?.missed();
        // SAFETY: the caller's promise.
        unsafe { put(missed, count, c"the output pointer is NULL") }
    })
}

/// Passes over the next record without reading it (counted as missed):
/// the way past a record that reads `SHMBUS_STATUS_CORRUPT`. Its sequence
/// goes to `*sequence` unless NULL. `SHMBUS_STATUS_EMPTY` if nothing was
/// claimed at the cursor yet, `SHMBUS_STATUS_BUSY` while a record is held.
///
/// # Safety
///
/// `subscriber` is a live subscriber handle; `sequence` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_skip(
    subscriber: *mut shmbus_subscriber,
    sequence: *mut u64,
) -> shmbus_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let seq = unsafe { subscriber_of(subscriber) }?.owner()?.skip()?;
        if !sequence.is_null() {
            // SAFETY: not NULL, valid by the caller's promise.
            unsafe { sequence.write(seq) };
        }
        Ok(())
    })
}
