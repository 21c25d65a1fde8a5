//! Loom models of shmbus's lock-free algorithms live in `tests/`; build them
//! with `RUSTFLAGS="--cfg shmbus_loom"`. Without that cfg they compile to
//! nothing.
