//! Text and JSON renderings of snapshots and records.
//!
//! JSON is written by hand (the tool has no dependencies besides shmbus):
//! strings are escaped per RFC 8259, numbers are integers except the
//! occupancy percentage, and the layout hash is a hex string.

use std::fmt::Write;

use shmbus::inspect::{RoleInfo, SpscRecord, SpscSnapshot};
use shmbus::Namespace;

use crate::{Failure, WalkEnd};

/// Payload bytes per line of a hex dump.
const HEX_LINE: usize = 16;

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

pub(crate) fn spsc_text(
    ns: &Namespace,
    s: &SpscSnapshot,
    records: &[SpscRecord],
    end: &WalkEnd,
) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail; the results are ignored throughout.
    let _ = writeln!(o, "ring       {}/{} (spsc)", ns.name(), s.name);
    let _ = writeln!(o, "path       {}", s.path.display());
    let _ = writeln!(
        o,
        "layout     version {}, hash {:#018x}",
        s.layout_version, s.layout_hash
    );
    let _ = writeln!(
        o,
        "segment    {} bytes, created {} by pid {}",
        s.segment_size,
        utc_timestamp(s.created_realtime_ns),
        s.creator_pid
    );
    let _ = writeln!(
        o,
        "state      {}",
        if s.poisoned { "poisoned" } else { "healthy" }
    );
    let _ = writeln!(
        o,
        "capacity   {} bytes, max payload {} bytes",
        s.capacity, s.max_payload
    );
    let _ = writeln!(
        o,
        "positions  head {}, tail {}{}",
        s.head,
        s.tail,
        if s.consistent {
            ""
        } else {
            " (sampled while the consumer moved)"
        }
    );
    let _ = writeln!(
        o,
        "occupancy  {} of {} bytes used ({:.1}%), {} free",
        s.used_bytes,
        s.capacity,
        s.occupancy_percent(),
        s.free_bytes()
    );
    let _ = writeln!(o, "producer   {}", role_text(&s.producer));
    let _ = writeln!(o, "consumer   {}", role_text(&s.consumer));
    let _ = writeln!(o, "records    {} shown", records.len());
    for r in records {
        let _ = writeln!(
            o,
            "  position {}  type {}  flags {:#06x}  len {}",
            r.position, r.record_type, r.flags, r.len
        );
        hex_dump(&mut o, &r.payload);
        if r.is_truncated() {
            let _ = writeln!(
                o,
                "    ... {} more bytes (raise --hex-bytes)",
                u64::from(r.len) - r.payload.len() as u64
            );
        }
    }
    match end {
        WalkEnd::Complete => {}
        WalkEnd::Limit {
            position,
            remaining,
        } => {
            let _ = writeln!(
                o,
                "  ... {remaining} more published bytes from position {position} (raise --records)"
            );
        }
        WalkEnd::Overtaken { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
        WalkEnd::Corrupt { reason } => {
            let _ = writeln!(o, "  walk stopped: {reason}");
        }
    }
    o
}

fn role_text(r: &RoleInfo) -> String {
    match (r.attached, r.pid) {
        (true, 0) => "attached".to_owned(),
        (true, pid) => format!("attached (pid {pid})"),
        (false, 0) => "not attached".to_owned(),
        (false, pid) => format!("not attached (pid {pid} left without detaching)"),
    }
}

fn hex_dump(o: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        let _ = writeln!(o, "    (no payload bytes)");
        return;
    }
    for (line, chunk) in bytes.chunks(HEX_LINE).enumerate() {
        let mut hex = String::with_capacity(HEX_LINE * 3);
        for (i, b) in chunk.iter().enumerate() {
            if i > 0 {
                hex.push(' ');
            }
            let _ = write!(hex, "{b:02x}");
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(
            o,
            "    {:04x}  {hex:<width$}  |{ascii}|",
            line * HEX_LINE,
            width = HEX_LINE * 3 - 1
        );
    }
}

pub(crate) fn list_text(
    ns: &Namespace,
    rings: &[(String, Result<SpscSnapshot, Failure>)],
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "namespace {} ({}): {} spsc ring{}",
        ns.name(),
        ns.path().display(),
        rings.len(),
        if rings.len() == 1 { "" } else { "s" }
    );
    if rings.is_empty() {
        return o;
    }
    let width = rings.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(4);
    let header = format!(
        "{:<width$}  {:>12}  {:>12}  {:>6}  {:<14}  {}",
        "NAME", "CAPACITY", "USED", "USED%", "PRODUCER", "CONSUMER"
    );
    let _ = writeln!(o, "{header}");
    for (name, result) in rings {
        match result {
            Ok(s) => {
                let _ = writeln!(
                    o,
                    "{:<width$}  {:>12}  {:>12}  {:>5.1}%  {:<14}  {}",
                    name,
                    s.capacity,
                    s.used_bytes,
                    s.occupancy_percent(),
                    role_cell(&s.producer),
                    role_cell(&s.consumer)
                );
            }
            Err(f) => {
                let _ = writeln!(
                    o,
                    "{:<width$}  unusable: {}",
                    name,
                    f.reason.replace(['\n', '\r'], " ")
                );
            }
        }
    }
    o
}

fn role_cell(r: &RoleInfo) -> String {
    match (r.attached, r.pid) {
        (true, 0) => "attached".to_owned(),
        (true, pid) => format!("pid {pid}"),
        (false, _) => "-".to_owned(),
    }
}

/// `CLOCK_REALTIME` nanoseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc_timestamp(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let millis = (ns % 1_000_000_000) / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_path(p: &std::path::Path) -> String {
    json_str(&p.to_string_lossy())
}

fn role_json(r: &RoleInfo) -> String {
    format!("{{\"attached\":{},\"pid\":{}}}", r.attached, r.pid)
}

/// The snapshot's fields, without the enclosing braces.
fn snapshot_fields(s: &SpscSnapshot) -> String {
    format!(
        concat!(
            "\"name\":{},\"kind\":\"spsc\",\"path\":{},\"layout_version\":{},",
            "\"layout_hash\":\"{:#018x}\",\"segment_size\":{},\"creator_pid\":{},",
            "\"created_realtime_ns\":{},\"poisoned\":{},\"capacity\":{},",
            "\"max_payload\":{},\"head\":{},\"tail\":{},\"used_bytes\":{},",
            "\"free_bytes\":{},\"occupancy_percent\":{:.3},\"consistent\":{},",
            "\"producer\":{},\"consumer\":{}"
        ),
        json_str(&s.name),
        json_path(&s.path),
        s.layout_version,
        s.layout_hash,
        s.segment_size,
        s.creator_pid,
        s.created_realtime_ns,
        s.poisoned,
        s.capacity,
        s.max_payload,
        s.head,
        s.tail,
        s.used_bytes,
        s.free_bytes(),
        s.occupancy_percent(),
        s.consistent,
        role_json(&s.producer),
        role_json(&s.consumer),
    )
}

fn record_json(r: &SpscRecord) -> String {
    let mut hex = String::with_capacity(r.payload.len() * 2);
    for b in &r.payload {
        let _ = write!(hex, "{b:02x}");
    }
    format!(
        "{{\"position\":{},\"type\":{},\"flags\":{},\"len\":{},\"hex\":\"{hex}\",\"truncated\":{}}}",
        r.position,
        r.record_type,
        r.flags,
        r.len,
        r.is_truncated()
    )
}

fn walk_json(end: &WalkEnd) -> String {
    match end {
        WalkEnd::Complete => "{\"status\":\"complete\"}".to_owned(),
        WalkEnd::Limit {
            position,
            remaining,
        } => format!(
            "{{\"status\":\"limit\",\"next_position\":{position},\"remaining_bytes\":{remaining}}}"
        ),
        WalkEnd::Overtaken { reason } => {
            format!(
                "{{\"status\":\"overtaken\",\"reason\":{}}}",
                json_str(reason)
            )
        }
        WalkEnd::Corrupt { reason } => {
            format!("{{\"status\":\"corrupt\",\"reason\":{}}}", json_str(reason))
        }
    }
}

pub(crate) fn spsc_json(
    ns: &Namespace,
    s: &SpscSnapshot,
    records: &[SpscRecord],
    end: &WalkEnd,
) -> String {
    let records: Vec<String> = records.iter().map(record_json).collect();
    format!(
        "{{\"namespace\":{},{},\"records\":[{}],\"walk\":{}}}\n",
        json_str(ns.name()),
        snapshot_fields(s),
        records.join(","),
        walk_json(end)
    )
}

pub(crate) fn list_json(
    ns: &Namespace,
    rings: &[(String, Result<SpscSnapshot, Failure>)],
) -> String {
    let items: Vec<String> = rings
        .iter()
        .map(|(name, result)| match result {
            Ok(s) => format!("{{{}}}", snapshot_fields(s)),
            Err(f) => format!(
                "{{\"name\":{},\"kind\":\"spsc\",\"error\":{},\"exit_code\":{}}}",
                json_str(name),
                json_str(&f.reason),
                f.code
            ),
        })
        .collect();
    format!(
        "{{\"namespace\":{},\"path\":{},\"rings\":[{}]}}\n",
        json_str(ns.name()),
        json_path(ns.path()),
        items.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            utc_timestamp(1_709_210_096_789_000_000),
            "2024-02-29T12:34:56.789Z"
        );
    }

    #[test]
    fn hex_dump_lines_show_offset_hex_and_ascii() {
        let mut o = String::new();
        hex_dump(&mut o, b"\xde\xad\xbe\xefHi");
        assert!(o.starts_with("    0000  de ad be ef 48 69"), "{o}");
        assert!(o.trim_end().ends_with("|....Hi|"), "{o}");
    }
}
