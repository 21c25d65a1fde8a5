//! Runnable programs that use shmbus; see the `[[example]]` entries in this
//! package's `Cargo.toml`, run with `cargo run --release --example NAME`.
