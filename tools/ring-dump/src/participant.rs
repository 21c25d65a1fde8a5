//! What ring-dump says of a participant besides its counters: whether it
//! lives, and the CPUs its process may run on.

use shmbus::inspect::{QueueInspector, QueueSnapshot, SpscInspector, SpscSnapshot, SubscriberInfo};
use shmbus::layout::participant;

/// Whether a participant's process lives, from its liveness lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// A live process holds its liveness lock.
    Alive,
    /// Nobody holds its lock: its process died (or, for a role of an SPSC
    /// channel, left without detaching).
    Dead,
    /// A durable subscriber whose process left: it keeps its place (and,
    /// under `Backpressure`, holds publishers back) until it resumes or is
    /// dropped.
    DetachedDurable,
}

impl Liveness {
    /// A publisher, producer or consumer: alive or dead.
    pub(crate) fn of(alive: bool) -> Self {
        if alive {
            Liveness::Alive
        } else {
            Liveness::Dead
        }
    }

    /// A topic's subscriber: a durable one that left is detached, not dead.
    pub(crate) fn of_subscriber(s: &SubscriberInfo) -> Self {
        if s.alive {
            Liveness::Alive
        } else if s.name.is_some() && s.state == participant::DETACHED {
            Liveness::DetachedDurable
        } else {
            Liveness::Dead
        }
    }

    /// `alive`, `dead` or `detached durable`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::DetachedDurable => "detached durable",
        }
    }

    /// As [`Liveness::name`], one word: `detached_durable`.
    pub(crate) fn json_name(self) -> &'static str {
        match self {
            Liveness::DetachedDurable => "detached_durable",
            other => other.name(),
        }
    }
}

/// The CPUs process `pid` may run on (`Cpus_allowed_list` of
/// `/proc/PID/status`, as `0-3,6`), if it is `alive` (its liveness lock is
/// held) and this host's `/proc` shows it; `None` otherwise. A pid is
/// only read for a participant proven alive: a dead one's pid may belong
/// to another process by now.
pub(crate) fn cpus(pid: u32, alive: bool) -> Option<String> {
    if !alive || pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    cpus_allowed_list(&status)
}

/// The `Cpus_allowed_list` value of a `/proc/PID/status` text.
fn cpus_allowed_list(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Records waiting for a consumer, and their payload bytes: the lengths
/// in their record headers, summed (frame headers and padding not
/// included; records are not all the same size, so this is not records ×
/// a size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

/// Walks of a live SPSC ring tried before its backlog is called unknown:
/// a walk starts where the consumer reads, so a busy consumer can pass it.
const BACKLOG_ATTEMPTS: usize = 3;

/// The records of SPSC channel `ring` its consumer has not released, from
/// `snapshot` on (a fresh snapshot for each retry). `None` if the consumer
/// passed every walk, or a record is corrupt.
pub(crate) fn spsc_backlog(ring: &SpscInspector, snapshot: &SpscSnapshot) -> Option<Backlog> {
    let mut snapshot = snapshot.clone();
    for attempt in 0..BACKLOG_ATTEMPTS {
        if attempt > 0 {
            snapshot = ring.snapshot().ok()?;
        }
        // Headers only: no payload byte is copied.
        let backlog =
            ring.records(&snapshot, usize::MAX, 0)
                .try_fold(Backlog::default(), |b, r| {
                    r.map(|r| Backlog {
                        records: b.records + 1,
                        bytes: b.bytes + u64::from(r.len),
                    })
                });
        match backlog {
            Ok(b) => return Some(b),
            Err(shmbus::inspect::InspectError::Overtaken { .. }) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The records of work queue `queue` waiting to be taken at `snapshot`.
/// `None` if a record is corrupt.
pub(crate) fn queue_backlog(queue: &QueueInspector, snapshot: &QueueSnapshot) -> Option<Backlog> {
    // Headers only: no payload byte is copied. A record taken meanwhile is
    // passed over by the walk.
    queue
        .records(snapshot, usize::MAX, 0)
        .try_fold(Backlog::default(), |b, r| {
            r.map(|r| Backlog {
                records: b.records + 1,
                bytes: b.bytes + u64::from(r.len),
            })
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_come_from_the_allowed_list_line() {
        let status =
            "Name:\tfeed\nCpus_allowed:\t0f\nCpus_allowed_list:\t0-3,6\nMems_allowed:\t1\n";
        assert_eq!(cpus_allowed_list(status).as_deref(), Some("0-3,6"));
        assert_eq!(cpus_allowed_list("Name:\tfeed\n"), None);
        assert_eq!(cpus_allowed_list("Cpus_allowed_list:\t\n"), None);
    }

    #[test]
    fn cpus_are_read_only_for_a_live_pid() {
        let me = std::process::id();
        assert!(cpus(me, true).is_some(), "this process is alive");
        assert_eq!(cpus(me, false), None, "not proven alive: not read");
        assert_eq!(cpus(0, true), None);
    }
}
