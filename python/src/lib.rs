//! Python bindings for shmbus: the extension module `shmbus._shmbus`,
//! which the pure-Python package `shmbus` re-exports with its type stubs.
//!
//! | module        | what it holds |
//! |---------------|---------------|
//! | [`errors`]    | the exception hierarchy and the mapping of every Rust error onto it |
//! | [`lender`]    | handles that lend a claim or a record to Python, one shape for every ring kind, waits with the GIL released |
//! | [`lease`]     | `Claim` and `Record`: leased bytes exported as memoryviews, released with the lease |
//! | [`endpoints`] | the writing and reading handles of topics, channels and work queues |
//! | [`handles`]   | `Bus`, `Topic`, `Channel`, `Queue` |
//! | [`v2`]        | Protocol V2 parse and build |
//! | [`mod@bench`] | the Rust loop the Python bench compares against |
//!
//! Every object is used from the thread that made it (another thread gets
//! an error, never a data race): the classes of the hot path (writers,
//! readers, claims, records) keep their state in a
//! [`Confined`](lender::Confined), the others are pyo3 `unsendable`.

#![deny(unsafe_op_in_unsafe_fn)]

use pyo3::prelude::*;

pub mod bench;
pub mod endpoints;
pub mod errors;
pub mod handles;
pub mod lease;
pub mod lender;
pub mod v2;

/// The extension module.
#[pymodule]
fn _shmbus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<handles::Bus>()?;
    m.add_class::<handles::Topic>()?;
    m.add_class::<handles::Channel>()?;
    m.add_class::<handles::Queue>()?;
    m.add_class::<endpoints::Publisher>()?;
    m.add_class::<endpoints::Subscriber>()?;
    m.add_class::<endpoints::Producer>()?;
    m.add_class::<endpoints::Consumer>()?;
    m.add_class::<endpoints::QueueProducer>()?;
    m.add_class::<endpoints::QueueConsumer>()?;
    m.add_class::<lease::Claim>()?;
    m.add_class::<lease::Record>()?;
    m.add_class::<v2::Message>()?;
    m.add_class::<v2::Tlv>()?;
    m.add_function(wrap_pyfunction!(v2::parse, m)?)?;
    m.add_function(wrap_pyfunction!(v2::build, m)?)?;
    m.add_function(wrap_pyfunction!(v2::trade_tlv, m)?)?;
    m.add_function(wrap_pyfunction!(v2::quote_tlv, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_bench_rust_loop, m)?)?;
    m.add("WAIT_SLICE", lender::WAIT_SLICE.as_secs_f64())?;
    Ok(())
}
