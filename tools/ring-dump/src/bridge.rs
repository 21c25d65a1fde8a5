//! The Zenoh bridge's counters of a topic (`<topic>.bridge`, read through
//! `shmbus::bridge_counters`) as `show`, `list` and `watch` print them.
//!
//! A topic that was never bridged has no counters file and shows nothing
//! more than before; one whose file cannot be read shows why (and
//! `show` still exits 0: the topic itself is fine).

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;
use shmbus::bridge_counters::{self, BridgeCountersSnapshot};
use shmbus::Namespace;

use crate::watch::per_second;

/// A topic's bridge counters: none (never bridged), or read, or why not.
pub(crate) type BridgeView = Option<Result<BridgeCountersSnapshot, String>>;

/// Reads the bridge counters of `topic` in `ns`.
pub(crate) fn read(ns: &Namespace, topic: &str) -> BridgeView {
    bridge_counters::read(ns, topic)
        .map_err(|e| e.to_string())
        .transpose()
}

/// `running`, when a bridge holds the counters now, else `stopped`.
fn state(s: &BridgeCountersSnapshot) -> &'static str {
    if s.bridged {
        "running"
    } else {
        "stopped"
    }
}

/// The `bridge` lines of `show` (nothing for a topic never bridged).
pub(crate) fn show_text(o: &mut String, view: &BridgeView) {
    match view {
        None => {}
        Some(Err(reason)) => {
            let _ = writeln!(o, "bridge       unreadable: {reason}");
        }
        Some(Ok(s)) => {
            let _ = writeln!(
                o,
                "bridge       {} ({}pid {}), counters in {}.{}",
                state(s),
                if s.bridged { "" } else { "last " },
                s.pid,
                s.topic,
                bridge_counters::FILE_SUFFIX
            );
            let _ = writeln!(
                o,
                "  export     {} records ({} bytes), export missed {}, echo skipped {}",
                s.exported, s.exported_bytes, s.export_missed, s.echo_skipped
            );
            let _ = writeln!(
                o,
                "  import     {} records ({} bytes), gaps {}, rejected {}",
                s.imported, s.imported_bytes, s.gaps, s.rejected
            );
            for p in &s.origins {
                let _ = writeln!(
                    o,
                    "  origin     {:016x} last sequence {}",
                    p.origin, p.last_seq
                );
            }
        }
    }
}

/// The `bridge=` cell `list` appends to a topic's details, if bridged.
pub(crate) fn list_cell(view: &BridgeView) -> Option<String> {
    Some(match view.as_ref()? {
        Ok(s) => format!(" bridge={} gaps={}", state(s), s.gaps),
        Err(_) => " bridge=unreadable".to_owned(),
    })
}

#[derive(Serialize)]
struct OriginJson {
    /// 16 hex digits, as the bridge logs it.
    origin: String,
    last_seq: u64,
}

#[derive(Serialize)]
struct CountersJson {
    running: bool,
    pid: u64,
    exported: u64,
    exported_bytes: u64,
    export_missed: u64,
    echo_skipped: u64,
    imported: u64,
    imported_bytes: u64,
    gaps: u64,
    rejected: u64,
    origins: Vec<OriginJson>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: &'a str,
}

/// The `bridge` member of `show --json` and `list --json`: the counters,
/// `{"error": ...}`, or null for a topic never bridged.
pub(crate) fn json(view: &BridgeView) -> serde_json::Value {
    let value = match view {
        None => return serde_json::Value::Null,
        Some(Err(error)) => serde_json::to_value(ErrorJson { error }),
        Some(Ok(s)) => serde_json::to_value(CountersJson {
            running: s.bridged,
            pid: s.pid,
            exported: s.exported,
            exported_bytes: s.exported_bytes,
            export_missed: s.export_missed,
            echo_skipped: s.echo_skipped,
            imported: s.imported,
            imported_bytes: s.imported_bytes,
            gaps: s.gaps,
            rejected: s.rejected,
            origins: s
                .origins
                .iter()
                .map(|p| OriginJson {
                    origin: format!("{:016x}", p.origin),
                    last_seq: p.last_seq,
                })
                .collect(),
        }),
    };
    // Structs of strings and integers always serialize.
    value.unwrap_or(serde_json::Value::Null)
}

/// A bridged topic's counters at one look of `watch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BridgeSample {
    pub(crate) running: bool,
    pub(crate) exported: u64,
    pub(crate) imported: u64,
    pub(crate) gaps: u64,
    pub(crate) export_missed: u64,
}

impl BridgeSample {
    /// The sample of readable counters.
    pub(crate) fn of(view: &BridgeView) -> Option<BridgeSample> {
        let s = view.as_ref()?.as_ref().ok()?;
        Some(BridgeSample {
            running: s.bridged,
            exported: s.exported,
            imported: s.imported,
            gaps: s.gaps,
            export_missed: s.export_missed,
        })
    }
}

/// A bridged topic compared with its previous look: rates, and the gaps
/// and export misses counted meanwhile (`None` on a first look, or when a
/// counter went down: the file was started afresh).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct BridgeRates {
    pub(crate) exported_per_s: f64,
    pub(crate) imported_per_s: f64,
    pub(crate) new_gaps: u64,
    pub(crate) new_export_missed: u64,
}

/// The growth of `now` since `prev`, over `elapsed`.
pub(crate) fn rates(
    prev: Option<&BridgeSample>,
    now: &BridgeSample,
    elapsed: Duration,
) -> Option<BridgeRates> {
    let prev = prev?;
    Some(BridgeRates {
        exported_per_s: per_second(now.exported.checked_sub(prev.exported)?, elapsed),
        imported_per_s: per_second(now.imported.checked_sub(prev.imported)?, elapsed),
        new_gaps: now.gaps.checked_sub(prev.gaps)?,
        new_export_missed: now.export_missed.checked_sub(prev.export_missed)?,
    })
}

/// The `bridge` line of a topic in `watch`.
pub(crate) fn watch_text(now: &BridgeSample, rates: Option<&BridgeRates>) -> String {
    let state = if now.running { "running" } else { "stopped" };
    match rates {
        Some(r) => format!(
            "  bridge {state}: exported {:.1}/s, imported {:.1}/s, gaps {} (+{}), export missed {} (+{})",
            r.exported_per_s, r.imported_per_s, now.gaps, r.new_gaps, now.export_missed, r.new_export_missed
        ),
        None => format!(
            "  bridge {state}: exported -/s, imported -/s, gaps {}, export missed {}",
            now.gaps, now.export_missed
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_rates_are_counter_growth_and_a_reset_has_none() {
        let before = BridgeSample {
            running: true,
            exported: 100,
            imported: 10,
            gaps: 2,
            export_missed: 0,
        };
        let after = BridgeSample {
            exported: 300,
            imported: 15,
            gaps: 5,
            export_missed: 1,
            ..before
        };
        let r = rates(Some(&before), &after, Duration::from_secs(2)).expect("rates");
        assert_eq!(
            r,
            BridgeRates {
                exported_per_s: 100.0,
                imported_per_s: 2.5,
                new_gaps: 3,
                new_export_missed: 1
            }
        );
        assert_eq!(
            watch_text(&after, Some(&r)),
            "  bridge running: exported 100.0/s, imported 2.5/s, gaps 5 (+3), export missed 1 (+1)"
        );
        assert_eq!(rates(Some(&after), &before, Duration::from_secs(1)), None);
        assert_eq!(rates(None, &after, Duration::from_secs(1)), None);
    }
}
