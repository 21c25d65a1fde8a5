//! The Rust side of the Python bench (`python/bench/bench.py`): the same
//! loop as the Python one, publishing a record and reading it back on one
//! thread, run on the Python objects' own handles so that both sides use
//! the same rings in the same process.

use std::hint::black_box;
use std::time::Instant;

use pyo3::prelude::*;

use crate::endpoints::{Publisher, Subscriber};
use crate::errors::{claim_error, recv_error};

/// Publishes `count` records of `payload` through `publisher` and reads
/// each back through `subscriber` (a zero-copy borrow, one byte touched,
/// then released); returns the nanoseconds the loop took.
#[pyfunction]
pub fn _bench_rust_loop(
    publisher: &Bound<'_, Publisher>,
    subscriber: &Bound<'_, Subscriber>,
    payload: &[u8],
    count: u64,
) -> PyResult<u64> {
    let mut publisher = publisher.get().state()?;
    let mut subscriber = subscriber.get().state()?;
    let publisher = publisher.inner.handle()?;
    let subscriber = subscriber.inner.handle()?;
    let start = Instant::now();
    for _ in 0..count {
        publisher.try_send(0, payload).map_err(claim_error)?;
        let record = subscriber.try_read().map_err(recv_error)?;
        black_box(record.first().copied());
        drop(record);
    }
    Ok(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
}
