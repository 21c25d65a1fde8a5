//! Property tests of the Protocol V2 codec.
//!
//! * Hostile bytes (random, random after a plausible header, mutated valid
//!   messages) never panic, are walked in linear time, and whatever is
//!   accepted can be rebuilt byte for byte from what the parser reports.
//! * Generated valid messages survive build -> parse -> build unchanged.

use proptest::prelude::*;
use shmbus::record::{
    Checksum, Form, MessageBuilder, MessageView, ParseErrorKind, ParseOptions, SizeConstraint,
    SizePolicy, TlvType, Verify,
};

const ALL_OPTIONS: [ParseOptions; 6] = [
    ParseOptions::new(Verify::Off),
    ParseOptions::new(Verify::Strict),
    ParseOptions::new(Verify::ZeroMeansUnchecked),
    ParseOptions::new(Verify::Off).with_size_policy(SizePolicy::LegacyStructs),
    ParseOptions::new(Verify::Strict).with_size_policy(SizePolicy::LegacyStructs),
    ParseOptions::new(Verify::ZeroMeansUnchecked).with_size_policy(SizePolicy::LegacyStructs),
];

/// Rebuilds a parsed message from its header fields and items, keeping
/// each item's form, and returns the bytes.
fn rebuild(view: &MessageView<'_>, sizes: SizePolicy, checksum: Checksum) -> Vec<u8> {
    let h = view.header();
    let mut buf = vec![0u8; view.as_bytes().len()];
    let mut b = MessageBuilder::new_raw(&mut buf, h.relay_domain, h.source)
        .version(h.version)
        .flags(h.flags)
        .sequence(h.sequence())
        .timestamp_ns(h.timestamp_ns())
        .size_policy(sizes);
    for tlv in view.tlvs() {
        b = b.form(tlv.form).tlv(tlv.tlv_type, tlv.payload);
    }
    let len = b
        .finish(checksum)
        .expect("what was accepted can be rebuilt");
    buf.truncate(len);
    buf
}

/// Parses under every option set; checks the invariants that hold for any
/// input.
fn check_hostile(bytes: &[u8]) {
    for opts in ALL_OPTIONS {
        match MessageView::parse(bytes, opts) {
            Ok(view) => {
                let region = bytes.len() - 32;
                let mut items = 0usize;
                let mut covered = 0usize;
                let mut next = 32usize;
                for tlv in view.tlvs() {
                    assert_eq!(tlv.offset, next, "items are contiguous");
                    next = tlv.end();
                    covered += tlv.form.header_len() + tlv.payload.len();
                    items += 1;
                }
                assert_eq!(covered, region, "items fill the region exactly");
                assert!(items <= region / 2, "at most one item per two bytes");
                assert_eq!(view.header().payload_size() as usize, region);

                let rebuilt = rebuild(&view, opts.sizes, Checksum::Compute);
                assert_eq!(rebuilt.len(), bytes.len());
                // Everything but the checksum is reproduced; the checksum
                // too when it was verified.
                assert_eq!(&rebuilt[..28], &bytes[..28]);
                assert_eq!(&rebuilt[32..], &bytes[32..]);
                if opts.verify == Verify::Strict {
                    assert_eq!(rebuilt, bytes);
                }
            }
            Err(e) => {
                assert!(e.offset <= bytes.len(), "error offset inside the message");
                // Header errors come before any item error.
                if bytes.len() < 32 {
                    assert!(matches!(e.kind, ParseErrorKind::MessageTooSmall { .. }));
                }
                assert!(!e.to_string().is_empty());
            }
        }
    }
    let _ = shmbus::record::route(bytes);
}

/// A header that passes the magic and payload_size checks, for `region`
/// bytes of TLVs.
fn plausible_header(region: usize, head: [u8; 20]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(32 + region);
    msg.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    msg.extend_from_slice(&head);
    msg.extend_from_slice(&(region as u32).to_le_bytes());
    msg.extend_from_slice(&[0; 4]);
    msg
}

#[derive(Clone, Debug)]
struct Item {
    tlv_type: u8,
    payload: Vec<u8>,
    forced: Option<Form>,
}

#[derive(Clone, Debug)]
struct Spec {
    domain: u8,
    source: u8,
    version: u8,
    flags: u8,
    sequence: u64,
    timestamp: u64,
    items: Vec<Item>,
    checksum: Checksum,
}

fn item() -> impl Strategy<Value = Item> {
    (any::<u8>(), 0usize..700, any::<u8>(), 0u8..4).prop_map(|(t, len, fill, form)| {
        let tlv_type = if t == 255 { 254 } else { t };
        let len = match TlvType::from_u8(tlv_type).map(TlvType::size) {
            Some(SizeConstraint::Fixed(n)) => n as usize,
            _ => len,
        };
        let forced = match form {
            0 => Some(Form::Extended),
            1 if len <= 255 => Some(Form::Standard),
            _ => None,
        };
        let payload = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        Item {
            tlv_type,
            payload,
            forced,
        }
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
        (any::<u64>(), any::<u64>()),
        prop::collection::vec(item(), 0..6),
        any::<bool>(),
    )
        .prop_map(
            |((domain, source, version, flags), (sequence, timestamp), items, crc)| Spec {
                domain,
                source,
                version,
                flags,
                sequence,
                timestamp,
                items,
                checksum: if crc {
                    Checksum::Compute
                } else {
                    Checksum::Zero
                },
            },
        )
}

fn build(spec: &Spec) -> Vec<u8> {
    let mut buf = vec![0u8; 32 + spec.items.len() * (5 + 700)];
    let mut b = MessageBuilder::new_raw(&mut buf, spec.domain, spec.source)
        .version(spec.version)
        .flags(spec.flags)
        .sequence(spec.sequence)
        .timestamp_ns(spec.timestamp);
    for it in &spec.items {
        if let Some(f) = it.forced {
            b = b.form(f);
        }
        b = b.tlv(it.tlv_type, &it.payload);
    }
    let len = b.finish(spec.checksum).expect("generated message fits");
    buf.truncate(len);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_hostile(&bytes);
    }

    #[test]
    fn random_tlv_regions_never_panic(
        head in any::<[u8; 20]>(),
        region in prop::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(255u8), 2 => Just(0u8), 1 => 1u8..8],
            0..400,
        ),
    ) {
        let mut msg = plausible_header(region.len(), head);
        msg.extend_from_slice(&region);
        check_hostile(&msg);
    }

    #[test]
    fn build_then_parse_is_the_identity(spec in spec()) {
        let bytes = build(&spec);
        let expected_len: usize = 32 + spec
            .items
            .iter()
            .map(|it| {
                let form = it.forced.unwrap_or(if it.payload.len() <= 255 { Form::Standard } else { Form::Extended });
                form.header_len() + it.payload.len()
            })
            .sum::<usize>();
        prop_assert_eq!(bytes.len(), expected_len);

        let verify = match spec.checksum {
            Checksum::Compute => Verify::Strict,
            Checksum::Zero => Verify::ZeroMeansUnchecked,
        };
        let view = MessageView::parse(&bytes, ParseOptions::new(verify)).expect("built messages parse");
        let h = view.header();
        prop_assert_eq!(
            (h.relay_domain, h.source, h.version, h.flags, h.sequence(), h.timestamp_ns()),
            (spec.domain, spec.source, spec.version, spec.flags, spec.sequence, spec.timestamp)
        );
        prop_assert_eq!(h.payload_size() as usize, bytes.len() - 32);
        if spec.checksum == Checksum::Zero {
            prop_assert_eq!(h.checksum(), 0);
        }
        let items: Vec<_> = view.tlvs().collect();
        prop_assert_eq!(items.len(), spec.items.len());
        for (got, want) in items.iter().zip(&spec.items) {
            prop_assert_eq!(got.tlv_type, want.tlv_type);
            prop_assert_eq!(got.payload, &want.payload[..]);
            if let Some(f) = want.forced {
                prop_assert_eq!(got.form, f);
            }
        }
        let checksum = spec.checksum;
        prop_assert_eq!(rebuild(&view, SizePolicy::Registry, checksum), bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        spec in spec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        mode in 0u8..3,
    ) {
        let mut bytes = build(&spec);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        match mode {
            0 => {}
            1 => bytes.truncate(cut.index(bytes.len() + 1)),
            _ => {
                // Keep payload_size consistent so the TLV walk is reached.
                let region = bytes.len() - 32;
                let keep = cut.index(region + 1);
                bytes.truncate(32 + keep);
                bytes[24..28].copy_from_slice(&(keep as u32).to_le_bytes());
            }
        }
        check_hostile(&bytes);
    }
}

#[test]
fn worst_case_region_is_walked_in_linear_time() {
    // 64 KiB of empty standard items: the most items a region can hold.
    let region = 1 << 16;
    let mut msg = plausible_header(region, [0; 20]);
    msg.resize(32 + region, 0);
    let start = std::time::Instant::now();
    let view =
        MessageView::parse(&msg, ParseOptions::new(Verify::Strict)).map(|v| v.tlvs().count());
    // Strict: the zero checksum is wrong, so no items; then without it.
    assert!(view.is_err());
    let count = MessageView::parse(&msg, ParseOptions::new(Verify::Off))
        .expect("all empty unknown items")
        .tlvs()
        .count();
    assert_eq!(count, region / 2);
    // Generous: even an unoptimised build walks 32768 items in far less.
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}
