//! Fuzzes the Protocol V2 parser with hostile bytes.
//!
//! Every option set is tried. Nothing may panic; an accepted message must
//! walk to the end of its TLV region and rebuild to the same bytes (bar the
//! checksum when it was not verified).
//!
//! Run: `cargo fuzz run parse` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shmbus::record::{
    route, Checksum, MessageBuilder, MessageView, ParseOptions, SizePolicy, TlvWalker, Verify,
};

fuzz_target!(|data: &[u8]| {
    let _ = route(data);
    for sizes in [SizePolicy::Registry, SizePolicy::LegacyStructs] {
        // The lazy walker never panics either, and stops after an error.
        let mut errors = 0;
        for item in TlvWalker::new(data, sizes) {
            if item.is_err() {
                errors += 1;
            }
        }
        assert!(errors <= 1);

        for verify in [Verify::Off, Verify::Strict, Verify::ZeroMeansUnchecked] {
            let Ok(view) =
                MessageView::parse(data, ParseOptions::new(verify).with_size_policy(sizes))
            else {
                continue;
            };
            let h = view.header();
            let mut buf = vec![0u8; data.len()];
            let mut b = MessageBuilder::new_raw(&mut buf, h.relay_domain, h.source)
                .version(h.version)
                .flags(h.flags)
                .sequence(h.sequence())
                .timestamp_ns(h.timestamp_ns())
                .size_policy(sizes);
            let mut end = 32;
            for tlv in view.tlvs() {
                assert_eq!(tlv.offset, end);
                end = tlv.end();
                b = b.form(tlv.form).tlv(tlv.tlv_type, tlv.payload);
            }
            assert_eq!(end, data.len());
            let len = b
                .finish(Checksum::Compute)
                .expect("accepted messages rebuild");
            assert_eq!(len, data.len());
            assert_eq!(&buf[..28], &data[..28]);
            assert_eq!(&buf[32..], &data[32..]);
            if verify == Verify::Strict {
                assert_eq!(&buf[..], data);
            }
        }
    }
});
