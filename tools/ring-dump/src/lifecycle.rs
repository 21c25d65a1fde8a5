//! The commands that change a namespace, each only with `--yes` (without
//! it they say what would be done, change nothing and exit 0):
//!
//! * `drop-durable TOPIC NAME`: drops a detached durable subscriber
//!   ([`Bus::drop_durable`]), so that it no longer keeps its place nor
//!   holds `Backpressure` publishers back; refused (exit 2) while a live
//!   process holds it;
//! * `remove NAME`: removes a ring of any kind through the directory
//!   ([`Bus::remove_topic`], [`Bus::remove_queue`], [`Bus::remove_spsc`]);
//!   its live peers find it removed at their next call;
//! * `remove-namespace`: removes the whole namespace
//!   ([`Bus::remove_namespace`]); refused (exit 2), listing who holds
//!   what, while any process holds any of it.
//!
//! What is shown beforehand is read read-only, as every inspection
//! command reads; the change itself is the library's, which checks again.

use shmbus::bridge_counters;
use shmbus::directory::{describe_lock, DirectoryError};
use shmbus::inspect::{QueueInspector, SpscInspector, TopicInspector};
use shmbus::segment::OpenOptions;
use shmbus::{Bus, BusError, DropDurableError, Namespace, RingKind};

use crate::participant::Liveness;
use crate::{find_ring, Args, Failure, Output, EXIT_NOT_FOUND, EXIT_UNUSABLE};

/// The last line of a dry run.
fn dry_run_line(what: &str) -> String {
    format!("nothing was changed; run again with --yes to {what}\n")
}

/// The exit code and line of a failed change.
fn bus_failure(e: BusError) -> Failure {
    let code = match &e {
        BusError::Directory(DirectoryError::NotFound { .. })
        | BusError::DropDurable(DropDurableError::NotFound { .. }) => EXIT_NOT_FOUND,
        BusError::Directory(DirectoryError::Segment(e)) | BusError::Segment(e) => {
            crate::segment_exit_code(e)
        }
        _ => EXIT_UNUSABLE,
    };
    Failure {
        code,
        reason: e.to_string(),
    }
}

/// The bus of the namespace, to change it through.
fn bus(args: &Args) -> Result<Bus, Failure> {
    Bus::at(&args.base, &args.namespace).map_err(bus_failure)
}

fn printed(stdout: String) -> Result<Output, Failure> {
    Ok(Output {
        stdout,
        failure: None,
    })
}

/// `ring-dump drop-durable TOPIC NAME [--yes]`.
pub(crate) fn drop_durable(
    args: &Args,
    ns: &Namespace,
    topic: &str,
    name: &str,
    yes: bool,
) -> Result<Output, Failure> {
    let log = TopicInspector::open(ns, topic, &OpenOptions::default())?;
    let snapshot = log.snapshot()?;
    let Some(sub) = snapshot
        .subscribers
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
    else {
        return Err(Failure {
            code: EXIT_NOT_FOUND,
            reason: format!("topic \"{topic}\" has no durable subscriber \"{name}\""),
        });
    };
    if sub.alive {
        return Err(Failure {
            code: EXIT_UNUSABLE,
            reason: format!(
                "durable subscriber \"{name}\" of topic \"{topic}\" is held by a live process (pid {}): stop it first; nothing was dropped",
                sub.pid
            ),
        });
    }
    let what = format!(
        "durable subscriber \"{name}\" of topic \"{topic}\" (slot {}, {}, pid {} left it at cursor {}, {} records behind)",
        sub.slot,
        Liveness::of_subscriber(sub).name(),
        sub.pid,
        sub.cursor,
        sub.lag
    );
    if !yes {
        return printed(format!(
            "would drop {what}: it would no longer keep its place nor hold publishers back\n{}",
            dry_run_line("drop it")
        ));
    }
    bus(args)?.drop_durable(topic, name).map_err(bus_failure)?;
    printed(format!("dropped {what}\n"))
}

/// How many live processes are attached to ring `record` of `ns`, or why
/// that cannot be told.
fn live_peers(ns: &Namespace, record: &shmbus::RingRecord) -> Result<usize, String> {
    let opts = OpenOptions::default();
    let count = match record.kind() {
        RingKind::Broadcast => {
            let s = TopicInspector::open_topic(ns, record.clone(), &opts)
                .and_then(|t| t.snapshot())
                .map_err(|e| e.to_string())?;
            s.publishers_alive() + s.subscribers_alive()
        }
        RingKind::Spsc => {
            let s = SpscInspector::open_channel(ns, record.clone(), &opts)
                .and_then(|c| c.snapshot())
                .map_err(|e| e.to_string())?;
            usize::from(s.producer.attached) + usize::from(s.consumer.attached)
        }
        RingKind::Queue => {
            let s = QueueInspector::open_queue(ns, record.clone(), &opts)
                .and_then(|q| q.snapshot())
                .map_err(|e| e.to_string())?;
            s.producers_alive() + s.consumers_alive()
        }
        other => return Err(format!("a ring of kind {}", other.name())),
    };
    Ok(count)
}

/// `ring-dump remove NAME [--yes]`.
pub(crate) fn remove(
    args: &Args,
    ns: &Namespace,
    name: &str,
    yes: bool,
) -> Result<Output, Failure> {
    let record = find_ring(ns, name, &OpenOptions::default())?;
    let kind = record.kind();
    let peers = match live_peers(ns, &record) {
        Ok(0) => "nobody is attached to it".to_owned(),
        Ok(1) => "1 live participant will find it removed at its next call".to_owned(),
        Ok(n) => format!("{n} live participants will find it removed at their next call"),
        Err(why) => format!("its ring cannot be read ({why})"),
    };
    let what = format!("{} \"{name}\" ({})", kind.noun(), record.segment);
    if !yes {
        return printed(format!(
            "would remove {what}: {peers}\n{}",
            dry_run_line("remove it")
        ));
    }
    let bus = bus(args)?;
    match kind {
        RingKind::Broadcast => bus.remove_topic(name),
        RingKind::Spsc => bus.remove_spsc(name),
        RingKind::Queue => bus.remove_queue(name),
        other => {
            return Err(Failure {
                code: EXIT_UNUSABLE,
                reason: format!(
                    "\"{name}\" is a ring of kind {}, which this ring-dump does not remove",
                    other.name()
                ),
            })
        }
    }
    .map_err(bus_failure)?;
    printed(format!("removed {what}: {peers}\n"))
}

/// Every segment of `ns` a live process holds, as `file: holders`.
fn holders(ns: &Namespace) -> Result<Vec<String>, Failure> {
    let mut held = Vec::new();
    for (segment, kind) in ns.segments()? {
        let slots = match ns.held_lock_slots(&segment, kind) {
            Ok(slots) => slots,
            Err(shmbus::SegmentError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if slots.is_empty() {
            continue;
        }
        let who: Vec<String> = slots.iter().map(|&s| describe_lock(kind, s)).collect();
        let ring = RingKind::parse_segment_name(&segment)
            .map(|(k, _, _, n)| format!("{} \"{n}\" ", k.noun()))
            .unwrap_or_default();
        held.push(format!(
            "{ring}({segment}.{}): {}",
            kind.name(),
            who.join(", ")
        ));
    }
    for (topic, counters) in bridge_counters::read_all(ns).map_err(bridge_failure)? {
        if let Some(c) = counters.ok().filter(|c| c.bridged) {
            held.push(format!(
                "bridge counters of topic \"{topic}\" ({topic}.{}): the Zenoh bridge (pid {})",
                bridge_counters::FILE_SUFFIX,
                c.pid
            ));
        }
    }
    Ok(held)
}

fn bridge_failure(e: bridge_counters::BridgeCountersError) -> Failure {
    Failure {
        code: EXIT_UNUSABLE,
        reason: e.to_string(),
    }
}

/// `ring-dump remove-namespace [--yes]`.
pub(crate) fn remove_namespace(args: &Args, ns: &Namespace, yes: bool) -> Result<Output, Failure> {
    let held = holders(ns)?;
    if !held.is_empty() {
        return Err(Failure {
            code: EXIT_UNUSABLE,
            reason: format!(
                "namespace \"{}\" is in use, nothing was removed: {} (stop those processes, or drop their handles, then remove it)",
                ns.name(),
                held.join("; ")
            ),
        });
    }
    let files = ns.segments()?.len();
    let counters = bridge_counters::topics(ns).map_err(bridge_failure)?.len();
    let what = format!(
        "namespace \"{}\" ({}, {files} segment file{}{})",
        ns.name(),
        ns.path().display(),
        if files == 1 { "" } else { "s" },
        match counters {
            0 => String::new(),
            1 => ", 1 bridge counters file".to_owned(),
            n => format!(", {n} bridge counters files"),
        }
    );
    if !yes {
        return printed(format!(
            "would remove {what}: nothing holds it\n{}",
            dry_run_line("remove it")
        ));
    }
    // The library looks again, under its locks: a process that attached
    // since is named in its refusal.
    bus(args)?.remove_namespace().map_err(bus_failure)?;
    printed(format!("removed {what}\n"))
}
