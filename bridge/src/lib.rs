//! Bridges chosen shmbus topics between hosts over Zenoh.
//!
//! A bridge runs beside the processes of one namespace. For each local
//! topic its allow list names it runs an *exporter*: a subscriber on the
//! topic that sends every record to the Zenoh key
//! `shmbus/<namespace>/<topic>`, and a liveliness token that announces the
//! topic with its configuration. For each topic another bridge announces
//! (and the allow list names) it runs an *importer*: it creates the topic
//! locally with the announced configuration, subscribes to the key and
//! publishes what arrives.
//!
//! * [`wire`]: the bytes of one forwarded record (origin, sequence, type).
//! * the per-topic counters file, gaps included, is
//!   [`shmbus::bridge_counters`]: its layout is the core's, so that
//!   `ring-dump` reads it without depending on this crate.
//! * [`config`]: the TOML file and its Zenoh session configuration.
//! * [`bridge`]: the exporters, importers and discovery.
//! * [`glob`]: the allow list's patterns.

pub mod bridge;
pub mod config;
pub mod glob;
pub mod wire;

pub use bridge::{Bridge, BridgeError};
pub use config::Config;
