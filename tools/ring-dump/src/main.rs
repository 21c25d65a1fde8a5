//! ring-dump (in progress).
fn main() {}
