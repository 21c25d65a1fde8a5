//! # shmbus-ffi
//!
//! The C API of shmbus. `include/shmbus.h` is generated from this crate by
//! cbindgen (the `header` test regenerates it in memory and fails if the
//! committed file differs); `include/shmbus.hpp` is a C++17 layer over it.
//!
//! | module       | what it holds |
//! |--------------|---------------|
//! | `error`      | status codes, the thread-local error message, the panic guard every function runs in |
//! | `handle`     | handles that own a ring endpoint and the claim or record it lent out; argument checks; wait strategies |
//! | `endpoint`   | the verbs every ring kind shares (claim, commit, abort, send; read, release, receive), written once |
//! | `bus`        | the bus, topics, channels and queues: open, create, free, remove |
//! | `topic`      | publishers and subscribers (durable ones too) |
//! | `channel`    | SPSC producers and consumers |
//! | `queue`      | work-queue producers and consumers (take, ack, give back) |
//! | `v2`         | Protocol V2: the builder, the parser, the TLV walk, the typed payloads as packed C structs |
//!
//! Every exported function runs inside `std::panic::catch_unwind`: a panic
//! becomes `SHMBUS_STATUS_PANIC`, never an unwind into C.

#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

mod bus;
mod channel;
mod endpoint;
mod error;
mod handle;
mod queue;
mod topic;
mod v2;

pub use bus::*;
pub use channel::*;
pub use endpoint::{shmbus_claim, shmbus_received, shmbus_record};
pub use error::{shmbus_last_error_message, shmbus_status, shmbus_status_name};
pub use handle::{
    shmbus_wait, shmbus_wait_blocking, shmbus_wait_busy_spin, shmbus_wait_default,
    shmbus_wait_kind, shmbus_wait_yield,
};
pub use queue::*;
pub use topic::*;
pub use v2::*;

// The threading rules the header states, checked: endpoints (publishers,
// subscribers, producers, consumers) and what they lend may move between
// threads; buses, topics, channels and queues may also be shared.
const _: () = {
    const fn movable<T: Send>() {}
    const fn shareable<T: Send + Sync>() {}
    shareable::<shmbus::Bus>();
    shareable::<shmbus::Topic>();
    shareable::<shmbus::Channel>();
    shareable::<shmbus::Queue>();
    movable::<shmbus::Publisher>();
    movable::<shmbus::Claim<'static>>();
    movable::<shmbus::Subscriber>();
    movable::<shmbus::Record<'static>>();
    movable::<shmbus::Producer>();
    movable::<shmbus::WriteSlot<'static>>();
    movable::<shmbus::Consumer>();
    movable::<shmbus::SpscRecord<'static>>();
    movable::<shmbus::QueueProducer>();
    movable::<shmbus::QueueClaim<'static>>();
    movable::<shmbus::QueueConsumer>();
    movable::<shmbus::Taken<'static>>();
};
