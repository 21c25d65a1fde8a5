//! The exception hierarchy, and how every Rust error maps onto it.
//!
//! `shmbus.Error` is the base of all; each subclass is one thing a caller
//! may handle: a full ring, an empty one, a timeout, a lap, corruption, a
//! ring that is gone, a refused configuration. The message is the Rust
//! error's own text.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use shmbus::directory::DirectoryError;
use shmbus::segment::SegmentError;
use shmbus::{BusError, ClaimError, RecvError, RegisterError};

pyo3::create_exception!(shmbus, Error, PyException, "Base of every shmbus error.");
pyo3::create_exception!(
    shmbus,
    Full,
    Error,
    "No room in the ring now (the slowest reader has not released the space)."
);
pyo3::create_exception!(
    shmbus,
    Empty,
    Error,
    "No record to pass over now (Subscriber.skip); the try_ reads answer None for an empty ring instead."
);
pyo3::create_exception!(shmbus, Timeout, Error, "A timed call gave up.");
pyo3::create_exception!(
    shmbus,
    TooLarge,
    Error,
    "A record longer than the ring's maximum payload (or than the buffer it is copied into)."
);
pyo3::create_exception!(
    shmbus,
    CannotSleep,
    Error,
    "The 'blocking' wait cannot sleep here: nothing wakes this waiter; wait with 'backoff'."
);
pyo3::create_exception!(
    shmbus,
    Reclaimed,
    Error,
    "A claim stayed uncommitted past the ring's reclaim_after and was reclaimed: not delivered."
);
pyo3::create_exception!(
    shmbus,
    Lapped,
    Error,
    "Overwrite topics: publishers overwrote records before this subscriber read them (`missed`)."
);
pyo3::create_exception!(
    shmbus,
    Corrupt,
    Error,
    "Shared memory holds a value no build writes (a buggy or dying peer)."
);
pyo3::create_exception!(
    shmbus,
    Closed,
    Error,
    "The ring was removed, truncated or poisoned, or the handle was closed."
);
pyo3::create_exception!(
    shmbus,
    ConfigError,
    Error,
    "A configuration refused: out of range, or not the one the ring of that name has."
);
pyo3::create_exception!(
    shmbus,
    NotFound,
    Error,
    "No ring of that name (or of that kind)."
);
pyo3::create_exception!(
    shmbus,
    InUse,
    Error,
    "Taken: every participant slot, a live durable name, or a handle already holding a claim or a record."
);
pyo3::create_exception!(
    shmbus,
    ParseError,
    Error,
    "Bytes that are not a well-formed Protocol V2 message, or a message that cannot be built."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("Full", py.get_type::<Full>())?;
    m.add("Empty", py.get_type::<Empty>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    m.add("TooLarge", py.get_type::<TooLarge>())?;
    m.add("CannotSleep", py.get_type::<CannotSleep>())?;
    m.add("Reclaimed", py.get_type::<Reclaimed>())?;
    m.add("Lapped", py.get_type::<Lapped>())?;
    m.add("Corrupt", py.get_type::<Corrupt>())?;
    m.add("Closed", py.get_type::<Closed>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("InUse", py.get_type::<InUse>())?;
    m.add("ParseError", py.get_type::<ParseError>())?;
    Ok(())
}

/// A claim or send that failed.
pub fn claim_error(e: ClaimError) -> PyErr {
    let text = e.to_string();
    match e {
        ClaimError::Full => Full::new_err(text),
        ClaimError::TooLarge { .. } => TooLarge::new_err(text),
        ClaimError::TimedOut => Timeout::new_err(text),
        ClaimError::CannotSleep => CannotSleep::new_err(text),
        ClaimError::Reclaimed { sequence } => {
            with_attr(Reclaimed::new_err(text), "sequence", sequence)
        }
        ClaimError::Corrupt(_) => Corrupt::new_err(text),
        ClaimError::Unusable(_) => Closed::new_err(text),
    }
}

/// A read, receive or take that returned no record.
pub fn recv_error(e: RecvError) -> PyErr {
    let text = e.to_string();
    match e {
        RecvError::Empty => Empty::new_err(text),
        RecvError::Lapped { missed } => with_attr(Lapped::new_err(text), "missed", missed),
        RecvError::TimedOut => Timeout::new_err(text),
        RecvError::CannotSleep => CannotSleep::new_err(text),
        RecvError::BufferTooSmall { needed } => {
            with_attr(TooLarge::new_err(text), "needed", needed)
        }
        RecvError::Corrupt(_) => Corrupt::new_err(text),
        RecvError::Unusable(_) => Closed::new_err(text),
    }
}

/// A bus, directory or registration error.
pub fn bus_error(e: BusError) -> PyErr {
    let text = e.to_string();
    match e {
        BusError::Directory(d) => match d {
            DirectoryError::Segment(s) => segment_error(s, text),
            DirectoryError::ConfigMismatch { .. }
            | DirectoryError::KindMismatch { .. }
            | DirectoryError::InvalidConfig(_) => ConfigError::new_err(text),
            DirectoryError::NotFound { .. } => NotFound::new_err(text),
            DirectoryError::CreateTimedOut { .. } => Timeout::new_err(text),
            DirectoryError::Full { .. } | DirectoryError::NamespaceInUse { .. } => {
                InUse::new_err(text)
            }
            DirectoryError::Corrupt { .. } => Corrupt::new_err(text),
            _ => Error::new_err(text),
        },
        BusError::Segment(s) => segment_error(s, text),
        BusError::Register(r) => match r {
            RegisterError::Corrupt { .. } => Corrupt::new_err(text),
            RegisterError::BadDurableName => ConfigError::new_err(text),
            _ => InUse::new_err(text),
        },
        BusError::Route(_) => ParseError::new_err(text),
        BusError::Claim(c) => claim_error(c),
        BusError::DropDurable(_) => InUse::new_err(text),
        _ => Error::new_err(text),
    }
}

/// A segment error, with the text of the error that carried it.
fn segment_error(e: SegmentError, text: String) -> PyErr {
    match e {
        SegmentError::InvalidName { .. } | SegmentError::InvalidConfig { .. } => {
            ConfigError::new_err(text)
        }
        SegmentError::NotFound { .. } => NotFound::new_err(text),
        SegmentError::AlreadyAttached { .. } => InUse::new_err(text),
        SegmentError::Removed { .. }
        | SegmentError::Truncated { .. }
        | SegmentError::Poisoned { .. } => Closed::new_err(text),
        SegmentError::Corrupt { .. } => Corrupt::new_err(text),
        _ => Error::new_err(text),
    }
}

/// A configuration refused before any ring is touched.
pub fn config_error(e: shmbus::ConfigError) -> PyErr {
    ConfigError::new_err(e.to_string())
}

/// `err` with `name = value` set on its exception object, for callers that
/// want the number without parsing the message.
fn with_attr(err: PyErr, name: &str, value: impl for<'py> IntoPyObject<'py>) -> PyErr {
    Python::with_gil(|py| {
        // An attribute that cannot be set leaves the message, which says it too.
        let _ = err.value(py).setattr(name, value);
    });
    err
}
