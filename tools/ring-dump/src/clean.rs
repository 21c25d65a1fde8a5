//! `ring-dump clean [--yes] [--durable] [--all-namespaces]`: what no live
//! process holds in a namespace (left by crashes), found by
//! [`shmbus::clean::scan`], one line each with why; removed by
//! [`shmbus::clean::clean`] only with `--yes`. The scan maps nothing
//! writable and takes no lock; the removal looks at each object again
//! right before removing it, so what a process attached to since the scan
//! stays.

use serde::Serialize;
use shmbus::clean::{self, CleanOptions, CleanReport, Stale, StaleObject, StaleScan};
use shmbus::inspect::InspectError;

use crate::{open_namespace, Args, Failure, Output};

/// What becomes of one stale object.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    /// A dry run would remove it.
    WouldRemove,
    /// A dry run would leave it: why.
    WouldKeep(String),
    Removed,
    /// `--yes` left it: why.
    Kept(String),
}

impl Action {
    fn word(&self) -> &'static str {
        match self {
            Action::WouldRemove => "would remove",
            Action::WouldKeep(_) => "would keep",
            Action::Removed => "removed",
            Action::Kept(_) => "kept",
        }
    }

    fn json_word(&self) -> &'static str {
        match self {
            Action::WouldRemove => "would_remove",
            Action::WouldKeep(_) => "would_keep",
            Action::Removed => "removed",
            Action::Kept(_) => "kept",
        }
    }

    fn why(&self) -> Option<&str> {
        match self {
            Action::WouldKeep(why) | Action::Kept(why) => Some(why),
            _ => None,
        }
    }
}

const DURABLE_KEPT: &str =
    "it keeps detached durable subscribers' places (add --durable to remove it)";

/// What a dry run would do with each object of `scan`.
fn planned(scan: &StaleScan, durable: bool) -> Vec<(StaleObject, Action)> {
    let keeps_places = !durable
        && scan
            .objects
            .iter()
            .any(|o| matches!(o.stale, Stale::DurablePlaces(_)));
    scan.objects
        .iter()
        .map(|o| {
            let action = match &o.stale {
                Stale::DurablePlaces(_) if !durable => Action::WouldKeep(DURABLE_KEPT.to_owned()),
                Stale::Directory if keeps_places => Action::WouldKeep(
                    "it names a topic that stays (add --durable to remove it too)".to_owned(),
                ),
                _ => Action::WouldRemove,
            };
            (o.clone(), action)
        })
        .collect()
}

/// What `--yes` did with each object of `scan`, in the scan's order.
fn done(scan: &StaleScan, report: &CleanReport) -> Vec<(StaleObject, Action)> {
    scan.objects
        .iter()
        .map(|o| {
            let action = if report.removed.contains(o) {
                Action::Removed
            } else {
                match report.kept.iter().find(|(k, _)| k == o) {
                    Some((_, why)) => Action::Kept(why.clone()),
                    None => Action::Kept("not looked at".to_owned()),
                }
            };
            (o.clone(), action)
        })
        .collect()
}

/// One namespace cleaned (or looked at).
struct Cleaned {
    scan: StaleScan,
    actions: Vec<(StaleObject, Action)>,
}

fn failure(e: shmbus::directory::DirectoryError) -> Failure {
    Failure::from(InspectError::Directory(e))
}

/// `ring-dump clean`.
pub(crate) fn run(
    args: &Args,
    yes: bool,
    durable: bool,
    all_namespaces: bool,
) -> Result<Output, Failure> {
    let names = if all_namespaces {
        clean::namespaces(&args.base)?
    } else {
        vec![args.namespace.clone()]
    };
    let mut cleaned = Vec::new();
    for name in &names {
        let ns = match open_namespace(&args.base, name) {
            Ok(ns) => ns,
            // Listed a moment ago, gone now: nothing left to clean.
            Err(f) if all_namespaces && f.code == crate::EXIT_NOT_FOUND => continue,
            Err(f) => return Err(f),
        };
        let scan = clean::scan(&ns).map_err(failure)?;
        let actions = if yes {
            let report = clean::clean(&ns, &scan, &CleanOptions { durable }).map_err(failure)?;
            done(&scan, &report)
        } else {
            planned(&scan, durable)
        };
        cleaned.push(Cleaned { scan, actions });
    }
    let stdout = if args.json {
        json(&cleaned, !yes)
    } else {
        text(&cleaned, !yes, all_namespaces)
    };
    Ok(Output {
        stdout,
        failure: None,
    })
}

fn text(cleaned: &[Cleaned], dry_run: bool, all_namespaces: bool) -> String {
    let mut o = String::new();
    if all_namespaces && cleaned.is_empty() {
        o.push_str("no namespace\n");
    }
    let mut would = 0;
    for c in cleaned {
        let s = &c.scan;
        o.push_str(&format!(
            "namespace {} ({}): {} stale, {} held by live processes (left alone)\n",
            s.namespace,
            s.path.display(),
            s.objects.len(),
            s.live.len()
        ));
        if let Some(problem) = &s.directory_problem {
            o.push_str(&format!(
                "  its directory cannot be read ({}): its ring files count as named by nobody, and it stays\n",
                problem.replace(['\n', '\r'], " ")
            ));
        }
        for (object, action) in &c.actions {
            if *action == Action::WouldRemove {
                would += 1;
            }
            o.push_str(&format!("  {:<12}  {object}", action.word()));
            if let Some(why) = action.why() {
                o.push_str(&format!(": {why}"));
            }
            o.push('\n');
        }
    }
    if dry_run {
        o.push_str(&format!(
            "dry run: nothing was removed{}\n",
            if would > 0 {
                "; run again with --yes to remove what is marked \"would remove\""
            } else {
                ""
            }
        ));
    }
    o
}

/// One stale object in `--json`.
#[derive(Serialize)]
struct ObjectJson<'a> {
    /// `orphan`, `idle`, `durable_places` or `directory`.
    stale: &'static str,
    file: Option<&'a str>,
    ring: Option<&'a str>,
    kind: Option<&'static str>,
    /// Detached durable subscribers whose places the topic keeps.
    durable: Vec<&'a str>,
    why: String,
    /// `would_remove`, `would_keep`, `removed` or `kept`.
    action: &'static str,
    kept_because: Option<&'a str>,
}

#[derive(Serialize)]
struct NamespaceJson<'a> {
    namespace: &'a str,
    path: String,
    directory_problem: Option<&'a str>,
    live: &'a [String],
    objects: Vec<ObjectJson<'a>>,
}

#[derive(Serialize)]
struct CleanJson<'a> {
    dry_run: bool,
    namespaces: Vec<NamespaceJson<'a>>,
}

fn stale_name(s: &Stale) -> &'static str {
    match s {
        Stale::Orphan => "orphan",
        Stale::Idle => "idle",
        Stale::DurablePlaces(_) => "durable_places",
        Stale::Directory => "directory",
        Stale::BridgeCounters => "bridge_counters",
        // A newer library may find more kinds of stale object.
        _ => "other",
    }
}

fn json(cleaned: &[Cleaned], dry_run: bool) -> String {
    let doc = CleanJson {
        dry_run,
        namespaces: cleaned
            .iter()
            .map(|c| NamespaceJson {
                namespace: &c.scan.namespace,
                path: c.scan.path.to_string_lossy().into_owned(),
                directory_problem: c.scan.directory_problem.as_deref(),
                live: &c.scan.live,
                objects: c
                    .actions
                    .iter()
                    .map(|(o, a)| ObjectJson {
                        stale: stale_name(&o.stale),
                        file: o.file.as_deref(),
                        ring: o.ring.as_ref().map(|r| r.name.as_str()),
                        kind: o.ring.as_ref().map(|r| r.kind().name()),
                        durable: match &o.stale {
                            Stale::DurablePlaces(names) => {
                                names.iter().map(String::as_str).collect()
                            }
                            _ => Vec::new(),
                        },
                        why: o.to_string(),
                        action: a.json_word(),
                        kept_because: a.why(),
                    })
                    .collect(),
            })
            .collect(),
    };
    // Plain structs of strings, booleans and vectors: serde_json always
    // writes them.
    let mut line = serde_json::to_string(&doc)
        .unwrap_or_else(|e| unreachable!("a clean document failed to serialize: {e}"));
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(stale: Stale) -> StaleObject {
        StaleObject {
            stale,
            file: Some("x.bcast".to_owned()),
            ring: None,
        }
    }

    #[test]
    fn a_dry_run_keeps_durable_places_unless_asked_and_their_directory_with_them() {
        let scan = StaleScan {
            namespace: "desk".to_owned(),
            path: "/tmp/desk".into(),
            objects: vec![
                object(Stale::Orphan),
                object(Stale::DurablePlaces(vec!["s1".to_owned()])),
                object(Stale::Directory),
            ],
            live: Vec::new(),
            directory_problem: None,
        };
        let words = |durable| -> Vec<&'static str> {
            planned(&scan, durable)
                .iter()
                .map(|(_, a)| a.word())
                .collect()
        };
        assert_eq!(words(false), ["would remove", "would keep", "would keep"]);
        assert_eq!(words(true), ["would remove"; 3]);
    }
}
