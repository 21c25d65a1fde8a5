//! `include/shmbus.h` is what cbindgen makes of this crate now: the header
//! is generated in memory and compared with the committed file. Run with
//! `SHMBUS_BLESS_HEADER=1` to write it instead.

use std::path::PathBuf;

#[test]
fn header_matches_the_crate() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("read ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let committed_path = crate_dir.join("../include/shmbus.h");
    if std::env::var_os("SHMBUS_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, &generated).expect("write include/shmbus.h");
        return;
    }
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/shmbus.h is stale (or missing): regenerate it with\n\
         \n    SHMBUS_BLESS_HEADER=1 cargo test -p shmbus-ffi --test header\n\
         \nand commit it"
    );
}
