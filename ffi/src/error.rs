//! Status codes, the thread-local error message, and the guard every
//! `extern "C"` body runs in: a Rust panic is caught there and becomes
//! [`shmbus_status::Panic`], never an unwind into C.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use shmbus::record::{BuildError, ParseError};
use shmbus::{BusError, ClaimError, RecvError};

/// What a call did. Every function that can fail returns one; on a
/// failure, `shmbus_last_error_message()` says why (`SHMBUS_STATUS_EMPTY`
/// and `SHMBUS_STATUS_FULL` keep no message: the status says it all).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmbus_status {
    /// Done.
    Ok = 0,
    /// A `try_` read, receive or take found nothing new.
    Empty = 1,
    /// A `try_` claim or send found no room (the slowest reader holds it).
    Full = 2,
    /// A `_timeout` call gave up.
    TimedOut = 3,
    /// An overwrite topic's publishers overwrote records before this
    /// subscriber read them; the subscriber continues at the oldest intact
    /// one (`shmbus_subscriber_missed` counts every record lost).
    Lapped = 4,
    /// The wait strategy was `SHMBUS_WAIT_KIND_BLOCKING` where nothing wakes the
    /// waiter (any claim or send; a channel made without wake-ups).
    CannotSleep = 5,
    /// The record can never fit: longer than the ring's largest payload.
    TooLarge = 6,
    /// A copying receive's buffer is shorter than the record; the record is
    /// not consumed and its length is in the output's `len`.
    BufferTooSmall = 7,
    /// A commit came too late: the claim stayed open past the ring's
    /// reclaim timeout and a waiter reclaimed it. Nothing was delivered.
    Reclaimed = 8,
    /// The handle holds a claim or a record already: commit, abort,
    /// release or ack it first.
    Busy = 9,
    /// A commit, abort, release, ack or give-back with nothing held.
    NotHeld = 10,
    /// A required pointer argument was NULL.
    NullArgument = 11,
    /// An argument is out of range: a name that is not UTF-8, an unknown
    /// enum value, a configuration the ring refuses.
    InvalidArgument = 12,
    /// The named ring (or namespace) does not exist.
    NotFound = 13,
    /// Creating or opening failed (the message says why: the ring exists
    /// with another configuration, no free subscriber slot, a durable
    /// subscriber in use, permissions, ...).
    OpenFailed = 14,
    /// Shared memory holds values no build of shmbus writes.
    Corrupt = 15,
    /// The ring's segment was removed, truncated or poisoned: re-open it
    /// by name.
    Unusable = 16,
    /// A Protocol V2 message failed to parse.
    ParseFailed = 17,
    /// A Protocol V2 message could not be built (buffer too small, wrong
    /// payload size for a fixed-size type, ...).
    BuildFailed = 18,
    /// A TLV item is not of the requested type or length.
    WrongType = 19,
    /// A bug inside shmbus panicked; the panic was caught at the boundary.
    /// Free the handle the call was made on.
    Panic = 20,
}

/// The message kept for `shmbus_last_error_message`.
enum Message {
    /// A fixed text: most failures cost no allocation.
    Fixed(&'static CStr),
    /// A formatted one.
    Owned(CString),
}

thread_local! {
    static LAST_ERROR: RefCell<Message> = const { RefCell::new(Message::Fixed(c"no error")) };
}

/// Keeps `message` as this thread's last error message.
fn keep(message: Message) {
    // `with` fails only while this thread's locals are being destroyed:
    // the message is then lost, the status still says what happened.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
}

/// Why a call failed: the status it returns.
///
/// Making a `Failure` keeps its message for the thread at once (in cold,
/// out-of-line code), so that a body's `Result<(), Failure>` is one
/// status in a register and its success path never touches the
/// thread-local. `Empty` and `Full`, the outcomes a polling loop meets on
/// every turn, keep no message at all ([`Failure::quiet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) struct Failure(shmbus_status);

impl Failure {
    /// A failure with a fixed message.
    #[cold]
    #[inline(never)]
    pub(crate) fn fixed(status: shmbus_status, message: &'static CStr) -> Failure {
        keep(Message::Fixed(message));
        Failure(status)
    }

    /// A failure with a formatted message.
    #[cold]
    #[inline(never)]
    pub(crate) fn new(status: shmbus_status, message: impl std::fmt::Display) -> Failure {
        let text = message.to_string().replace('\0', "\\0");
        // No NUL is left in `text`, so this cannot fail.
        let message = CString::new(text)
            .map(Message::Owned)
            .unwrap_or(Message::Fixed(c"error message unavailable"));
        keep(message);
        Failure(status)
    }

    /// `Empty` or `Full`: what a `try_` call finds when there is nothing
    /// to do yet. The status says it all; the last message stays as it is.
    #[inline(always)]
    pub(crate) const fn quiet(status: shmbus_status) -> Failure {
        Failure(status)
    }

    /// The status the call returns.
    #[inline(always)]
    pub(crate) const fn status(self) -> shmbus_status {
        self.0
    }

    /// A NULL where a pointer was required.
    #[cold]
    #[inline(never)]
    pub(crate) fn null(what: &'static CStr) -> Failure {
        Failure::fixed(shmbus_status::NullArgument, what)
    }

    /// A call that needs the handle free of claims and records.
    #[cold]
    #[inline(never)]
    pub(crate) fn busy() -> Failure {
        Failure::fixed(
            shmbus_status::Busy,
            c"the handle holds a claim or a record: commit, abort, release or ack it first",
        )
    }

    /// A call that needs a claim or a record held.
    #[cold]
    #[inline(never)]
    pub(crate) fn not_held() -> Failure {
        Failure::fixed(
            shmbus_status::NotHeld,
            c"the handle holds no claim or record (claim, read or take one first)",
        )
    }

    /// Every `ClaimError` but `Full`.
    #[cold]
    #[inline(never)]
    fn claim_error(e: ClaimError) -> Failure {
        let status = match e {
            ClaimError::Full => return Failure::quiet(shmbus_status::Full),
            ClaimError::TimedOut => {
                return Failure::fixed(shmbus_status::TimedOut, c"timed out waiting for room")
            }
            ClaimError::TooLarge { .. } => shmbus_status::TooLarge,
            ClaimError::CannotSleep => shmbus_status::CannotSleep,
            ClaimError::Reclaimed { .. } => shmbus_status::Reclaimed,
            ClaimError::Corrupt(_) => shmbus_status::Corrupt,
            ClaimError::Unusable(_) => shmbus_status::Unusable,
        };
        Failure::new(status, e)
    }

    /// Every `RecvError` but `Empty`.
    #[cold]
    #[inline(never)]
    fn recv_error(e: RecvError) -> Failure {
        let status = match e {
            RecvError::Empty => return Failure::quiet(shmbus_status::Empty),
            RecvError::TimedOut => {
                return Failure::fixed(shmbus_status::TimedOut, c"timed out waiting for a record")
            }
            RecvError::Lapped { .. } => shmbus_status::Lapped,
            RecvError::CannotSleep => shmbus_status::CannotSleep,
            RecvError::BufferTooSmall { .. } => shmbus_status::BufferTooSmall,
            RecvError::Corrupt(_) => shmbus_status::Corrupt,
            RecvError::Unusable(_) => shmbus_status::Unusable,
        };
        Failure::new(status, e)
    }
}

impl From<ClaimError> for Failure {
    #[inline(always)]
    fn from(e: ClaimError) -> Failure {
        match e {
            ClaimError::Full => Failure::quiet(shmbus_status::Full),
            e => Failure::claim_error(e),
        }
    }
}

impl From<RecvError> for Failure {
    #[inline(always)]
    fn from(e: RecvError) -> Failure {
        match e {
            RecvError::Empty => Failure::quiet(shmbus_status::Empty),
            e => Failure::recv_error(e),
        }
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Failure {
        use shmbus::directory::DirectoryError;
        use shmbus::SegmentError;
        let status = match &e {
            BusError::Claim(c) => return Failure::from(*c),
            BusError::Directory(DirectoryError::NotFound { .. })
            | BusError::Segment(SegmentError::NotFound { .. })
            | BusError::Directory(DirectoryError::Segment(SegmentError::NotFound { .. })) => {
                shmbus_status::NotFound
            }
            _ => shmbus_status::OpenFailed,
        };
        Failure::new(status, e)
    }
}

impl From<ParseError> for Failure {
    fn from(e: ParseError) -> Failure {
        Failure::new(shmbus_status::ParseFailed, e)
    }
}

impl From<BuildError> for Failure {
    fn from(e: BuildError) -> Failure {
        Failure::new(shmbus_status::BuildFailed, e)
    }
}

/// Runs an `extern "C"` body: its result becomes a status (and, on failure,
/// this thread's error message); a panic is caught and becomes
/// [`shmbus_status::Panic`].
#[inline(always)]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> shmbus_status {
    // The handles a body touches are left as the panic found them; the
    // status tells the caller to free them, which never reads their state
    // beyond running the Rust drops.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => shmbus_status::Ok,
        Ok(Err(failure)) => failure.status(),
        Err(payload) => panicked(payload),
    }
}

/// What a caught panic becomes: `SHMBUS_STATUS_PANIC` and its message.
#[cold]
#[inline(never)]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> shmbus_status {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Failure::new(shmbus_status::Panic, format!("panic inside shmbus: {what}")).status()
}

/// Runs a body that returns nothing (the `_free` functions): a panic is
/// caught and only noted in this thread's error message.
pub(crate) fn guard_void(body: impl FnOnce()) {
    let _ = guard(|| {
        body();
        Ok(())
    });
}

/// The message of the latest call that failed on this thread.
///
/// Never NULL; a NUL-terminated UTF-8 string owned by the library. It is
/// valid until the next call into shmbus that fails on the same thread (a
/// successful call, and one that returns `SHMBUS_STATUS_EMPTY` or
/// `SHMBUS_STATUS_FULL`, leaves it as it is); copy it to keep it longer.
/// Each thread has its own: another thread's failures never change it.
#[no_mangle]
pub extern "C" fn shmbus_last_error_message() -> *const c_char {
    // `with` fails only while this thread's locals are being destroyed.
    LAST_ERROR
        .try_with(|last| match &*last.borrow() {
            Message::Fixed(text) => text.as_ptr(),
            // The CString stays in the thread-local until the next failure
            // replaces it: the pointer lives as long as documented.
            Message::Owned(text) => text.as_ptr(),
        })
        .unwrap_or(c"thread is exiting".as_ptr())
}

/// A short, static name of a status (`"SHMBUS_STATUS_EMPTY"`, ...), valid
/// for the life of the program; `"SHMBUS_STATUS_UNKNOWN"` for values this
/// build does not define.
#[no_mangle]
pub extern "C" fn shmbus_status_name(status: i32) -> *const c_char {
    let name: &'static CStr = match status {
        0 => c"SHMBUS_STATUS_OK",
        1 => c"SHMBUS_STATUS_EMPTY",
        2 => c"SHMBUS_STATUS_FULL",
        3 => c"SHMBUS_STATUS_TIMED_OUT",
        4 => c"SHMBUS_STATUS_LAPPED",
        5 => c"SHMBUS_STATUS_CANNOT_SLEEP",
        6 => c"SHMBUS_STATUS_TOO_LARGE",
        7 => c"SHMBUS_STATUS_BUFFER_TOO_SMALL",
        8 => c"SHMBUS_STATUS_RECLAIMED",
        9 => c"SHMBUS_STATUS_BUSY",
        10 => c"SHMBUS_STATUS_NOT_HELD",
        11 => c"SHMBUS_STATUS_NULL_ARGUMENT",
        12 => c"SHMBUS_STATUS_INVALID_ARGUMENT",
        13 => c"SHMBUS_STATUS_NOT_FOUND",
        14 => c"SHMBUS_STATUS_OPEN_FAILED",
        15 => c"SHMBUS_STATUS_CORRUPT",
        16 => c"SHMBUS_STATUS_UNUSABLE",
        17 => c"SHMBUS_STATUS_PARSE_FAILED",
        18 => c"SHMBUS_STATUS_BUILD_FAILED",
        19 => c"SHMBUS_STATUS_WRONG_TYPE",
        20 => c"SHMBUS_STATUS_PANIC",
        _ => c"SHMBUS_STATUS_UNKNOWN",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_message() -> String {
        // SAFETY: the function returns a NUL-terminated string that lives
        // until the next failing call on this thread; it is copied at once.
        unsafe { CStr::from_ptr(shmbus_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom {}", 42));
        assert_eq!(status, shmbus_status::Panic);
        assert_eq!(last_message(), "panic inside shmbus: boom 42");
        let status = guard(|| std::panic::panic_any(7u8));
        assert_eq!(status, shmbus_status::Panic);
        assert_eq!(last_message(), "panic inside shmbus: unknown panic");
    }

    #[test]
    fn a_success_leaves_the_message_and_threads_have_their_own() {
        let status = guard(|| Err(RecvError::TimedOut.into()));
        assert_eq!(status, shmbus_status::TimedOut);
        assert_eq!(guard(|| Ok(())), shmbus_status::Ok);
        assert_eq!(last_message(), "timed out waiting for a record");
        std::thread::spawn(|| {
            assert_eq!(last_message(), "no error");
            let status = guard(|| Err(Failure::new(shmbus_status::Corrupt, "bad\0byte")));
            assert_eq!(status, shmbus_status::Corrupt);
            assert_eq!(last_message(), "bad\\0byte");
        })
        .join()
        .expect("thread");
        assert_eq!(last_message(), "timed out waiting for a record");
    }

    #[test]
    fn empty_and_full_keep_no_message() {
        let status = guard(|| Err(Failure::new(shmbus_status::Corrupt, "before")));
        assert_eq!(status, shmbus_status::Corrupt);
        assert_eq!(guard(|| Err(RecvError::Empty.into())), shmbus_status::Empty);
        assert_eq!(guard(|| Err(ClaimError::Full.into())), shmbus_status::Full);
        assert_eq!(last_message(), "before");
        let status = guard(|| Err(ClaimError::CannotSleep.into()));
        assert_eq!(status, shmbus_status::CannotSleep);
        assert_ne!(last_message(), "before");
    }

    #[test]
    fn every_status_has_its_name() {
        for (status, name) in [
            (shmbus_status::Ok, "SHMBUS_STATUS_OK"),
            (
                shmbus_status::BufferTooSmall,
                "SHMBUS_STATUS_BUFFER_TOO_SMALL",
            ),
            (shmbus_status::Panic, "SHMBUS_STATUS_PANIC"),
        ] {
            // SAFETY: a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(shmbus_status_name(status as i32)) };
            assert_eq!(got.to_str(), Ok(name));
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(shmbus_status_name(99)) };
        assert_eq!(unknown.to_str(), Ok("SHMBUS_STATUS_UNKNOWN"));
    }
}
