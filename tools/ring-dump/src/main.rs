//! `ring-dump`: read-only inspection of live shmbus channels, topics and
//! work queues.
//!
//! Opens segments with `Segment::open_read_only` (a `PROT_READ` mapping, no
//! lock taken, nothing written), so it is safe to run against a production
//! host. Every ring is found through the namespace's directory. `list`
//! shows every entry of the directory with its kind; for an SPSC channel
//! it prints the header, positions, occupancy, which roles are attached
//! (proved by their liveness locks) and its records in hex; for a topic
//! the configuration, positions, counters, every publisher and subscriber
//! with its lag and liveness, and the last records decoded as Protocol V2
//! (or in hex); for a work queue the configuration, positions, depth,
//! counters, every producer (with its claim) and consumer (with the records
//! it holds) and its liveness, every record slot in flight (being written,
//! waiting, taken by a live or a dead consumer, skipped), and the waiting
//! records decoded as Protocol V2 (or in hex). Text, or one JSON document.
//!
//! Exit codes: 0 ok; 1 namespace, directory, channel, topic or queue not
//! found; 2 corrupt or unusable (and usage errors), with exactly one line
//! `ring-dump: <reason>` on stderr.

mod json;
mod render;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use shmbus::directory::{DirectoryEntry, DirectoryError};
use shmbus::inspect::{
    BroadcastRecord, InspectError, QueueInspector, QueueRecord, QueueSnapshot, SpscInspector,
    SpscRecord, SpscSnapshot, TopicInspector, TopicSnapshot,
};
use shmbus::segment::{validate_name, OpenOptions, SegmentError, DEFAULT_NAMESPACE};
use shmbus::Namespace;
use shmbus::RingKind;

/// Exit code: everything asked for was shown.
const EXIT_OK: u8 = 0;
/// Exit code: the namespace, directory, channel, topic or queue does not
/// exist.
const EXIT_NOT_FOUND: u8 = 1;
/// Exit code: corrupt or unusable segment, or a bad command line.
const EXIT_UNUSABLE: u8 = 2;

const DEFAULT_RECORDS: usize = 16;
const DEFAULT_HEX_BYTES: usize = 64;

const HELP: &str = "\
ring-dump: read-only inspection of live shmbus channels, topics and work queues

USAGE:
    ring-dump [OPTIONS] list
    ring-dump [OPTIONS] spsc NAME
    ring-dump [OPTIONS] topic NAME
    ring-dump [OPTIONS] queue NAME

COMMANDS:
    list          every entry of the namespace's directory, one line each with its
                  kind: topics (policy, slots, max payload, tail, live publishers and
                  subscribers, largest lag), SPSC channels (capacity, bytes used, who
                  is attached), work queues (slots, max payload, depth, live producers
                  and consumers, records in flight, redelivered), then removed entries,
                  entries being created and corrupt entries (with what is wrong);
                  `topics` is another name for it
    spsc NAME     one SPSC channel: header, positions, occupancy, producer and
                  consumer (attached = holds its liveness lock, so is alive), then its
                  records from the consumer position on, in hex
    topic NAME    one topic: configuration, tail and gate, counters, every publisher
                  and subscriber (state, durable name, pid, cursor, lag, missed,
                  heartbeat age, alive = holds its liveness lock), then its last
                  records, newest first, decoded as Protocol V2 (hex otherwise)
    queue NAME    one work queue: configuration, head and tail, depth (records
                  waiting), counters (redelivered, reclaimed claims, reaped consumers
                  and producers), every producer (state, pid, committed, the claim it
                  holds) and consumer (state, pid, taken, acked, records it holds),
                  alive = holds its liveness lock; every record slot in flight (writing
                  by producer N, committed (redelivered), taken by consumer N (alive or
                  dead), skipped (suspect)); then the waiting records, oldest first,
                  decoded as Protocol V2 (hex otherwise); --records limits both lists

OPTIONS:
    --dir BASE          base directory [default: $SHMBUS_DIR, else /dev/shm/shmbus-<uid>]
    -n, --namespace NS  namespace under BASE [default: default]
    --json              print one JSON object on stdout instead of text
    --records N         show at most N records [default: 16; 0 shows none]
    --hex-bytes N       show the first N payload bytes of each record in hex
                        [default: 64]
    -h, --help          print this help
    -V, --version       print the version

ring-dump never creates, locks or writes anything: segments are mapped read-only.

EXIT CODES:
    0  ok (a record walk overtaken by a live consumer, or a topic walk overwritten by
       a live publisher, is reported on stdout, still 0)
    1  namespace, directory, channel, topic or queue not found
    2  corrupt or unusable (bad magic, version, layout or size, poisoned, corrupt
       positions, stamps or records, a corrupt directory entry listed by `list` or on
       the probe chain of `spsc NAME`, `topic NAME` or `queue NAME`, wrong owner or
       mode, I/O error), or a bad command line; the reason is one line on stderr:
       `ring-dump: <reason>`

EXAMPLES:
    ring-dump list
    ring-dump --namespace prod spsc execution_reports
    ring-dump --json -n prod spsc execution_reports | jq .used_bytes
    ring-dump --records 4 --hex-bytes 32 spsc orders
    SHMBUS_DIR=/tmp/shmbus ring-dump --json list
    ring-dump -n prod topic market_data
    ring-dump --records 5 topic market_data
    ring-dump --json -n prod topic market_data | jq '.subscribers[] | {name, lag, alive}'
    ring-dump -n prod queue execution
    ring-dump --json -n prod queue execution | jq '.in_flight[] | select(.state == \"taken\")'
";

/// A reason to stop, with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    reason: String,
}

impl Failure {
    fn usage(reason: impl Into<String>) -> Self {
        Failure {
            code: EXIT_UNUSABLE,
            reason: format!("{} (see ring-dump --help)", reason.into()),
        }
    }
}

/// The one place that decides which exit code a segment error gets.
fn segment_exit_code(e: &SegmentError) -> u8 {
    match e {
        SegmentError::NotFound { .. } => EXIT_NOT_FOUND,
        SegmentError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            EXIT_NOT_FOUND
        }
        // Bad magic, version, layout, size or kind; poisoned; corrupt control
        // block; not initialised; symlink, owner or mode refused; invalid
        // name; I/O errors: the segment cannot be used as it is.
        _ => EXIT_UNUSABLE,
    }
}

fn inspect_exit_code(e: &InspectError) -> u8 {
    match e {
        InspectError::Segment(e) => segment_exit_code(e),
        InspectError::Directory(DirectoryError::Segment(e)) => segment_exit_code(e),
        InspectError::NoDirectory { .. } | InspectError::NotFound { .. } => EXIT_NOT_FOUND,
        _ => EXIT_UNUSABLE,
    }
}

impl From<SegmentError> for Failure {
    fn from(e: SegmentError) -> Self {
        Failure {
            code: segment_exit_code(&e),
            reason: e.to_string(),
        }
    }
}

impl From<InspectError> for Failure {
    fn from(e: InspectError) -> Self {
        Failure {
            code: inspect_exit_code(&e),
            reason: e.to_string(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    List,
    Spsc(String),
    Topic(String),
    Queue(String),
    Help,
    Version,
}

#[derive(Debug)]
struct Args {
    base: PathBuf,
    namespace: String,
    json: bool,
    records: usize,
    hex_bytes: usize,
    command: Command,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, Failure> {
    let mut base = None;
    let mut namespace = None;
    let mut json = false;
    let mut records = DEFAULT_RECORDS;
    let mut hex_bytes = DEFAULT_HEX_BYTES;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, Failure> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(Failure::usage(format!("{name} needs a value"))),
            }
        };
        let number = |name: &str, v: String| -> Result<usize, Failure> {
            v.parse()
                .map_err(|_| Failure::usage(format!("{name} takes a number, not \"{v}\"")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(args_for(Command::Help)),
            "-V" | "--version" => return Ok(args_for(Command::Version)),
            "--json" => json = true,
            "--dir" => base = Some(PathBuf::from(value("--dir")?)),
            "-n" | "--namespace" => namespace = Some(value("--namespace")?),
            "--records" => records = number("--records", value("--records")?)?,
            "--hex-bytes" => hex_bytes = number("--hex-bytes", value("--hex-bytes")?)?,
            "--" => {
                positional.extend(args.by_ref());
                break;
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(Failure::usage(format!("unknown option {f}")))
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let command = match positional.next().as_deref() {
        Some("list" | "topics") => Command::List,
        Some("spsc") => match positional.next() {
            Some(name) => Command::Spsc(name),
            None => return Err(Failure::usage("spsc needs a ring NAME")),
        },
        Some("topic") => match positional.next() {
            Some(name) => Command::Topic(name),
            None => return Err(Failure::usage("topic needs a topic NAME")),
        },
        Some("queue") => match positional.next() {
            Some(name) => Command::Queue(name),
            None => return Err(Failure::usage("queue needs a queue NAME")),
        },
        Some("help") => Command::Help,
        Some(other) => return Err(Failure::usage(format!("unknown command \"{other}\""))),
        None => {
            return Err(Failure::usage(
                "no command given: use list, spsc NAME, topic NAME or queue NAME",
            ))
        }
    };
    if let Some(extra) = positional.next() {
        return Err(Failure::usage(format!("unexpected argument \"{extra}\"")));
    }
    Ok(Args {
        base: base.unwrap_or_else(Namespace::base_dir),
        namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        json,
        records,
        hex_bytes,
        command,
    })
}

fn args_for(command: Command) -> Args {
    Args {
        base: PathBuf::new(),
        namespace: String::new(),
        json: false,
        records: 0,
        hex_bytes: 0,
        command,
    }
}

/// Opens the namespace without creating anything: `Namespace::at` creates a
/// missing directory, so its existence is checked first.
fn open_namespace(base: &Path, name: &str) -> Result<Namespace, Failure> {
    validate_name(name)?;
    let dir = base.join(name);
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => Ok(Namespace::at(base, name)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failure {
            code: EXIT_NOT_FOUND,
            reason: format!(
                "namespace {name} not found (no directory {})",
                dir.display()
            ),
        }),
        Err(e) => Err(Failure {
            code: EXIT_UNUSABLE,
            reason: format!("cannot stat namespace directory {}: {e}", dir.display()),
        }),
    }
}

/// How a record walk ended, for the report.
#[derive(Debug)]
pub(crate) enum WalkEnd {
    /// Every published record was shown.
    Complete,
    /// `--records` was reached; `remaining` bytes after `position` not shown.
    Limit { position: u64, remaining: u64 },
    /// A live consumer passed the walk; the reason says where.
    Overtaken { reason: String },
    /// A record is corrupt; the reason says which.
    Corrupt { reason: String },
}

/// How a topic's record walk ended, for the report.
#[derive(Debug)]
pub(crate) enum LogWalkEnd {
    /// Every record the log still holds was shown.
    Complete,
    /// `--records` was reached; `remaining` older sequences below `below`
    /// may still be in the log.
    Limit { below: u64, remaining: u64 },
    /// A live publisher reused the slot being read; the reason says which.
    Overwritten { reason: String },
    /// A record is corrupt; the reason says which.
    Corrupt { reason: String },
}

/// How a queue's walk over its waiting records ended, for the report.
#[derive(Debug)]
pub(crate) enum QueueWalkEnd {
    /// Every waiting record was looked at.
    Complete,
    /// `--records` was reached; `not_shown` waiting records were not.
    Limit { not_shown: usize },
    /// A record is corrupt; the reason says which.
    Corrupt { reason: String },
}

/// One row of `ring-dump list`: a directory entry that is not free.
#[derive(Debug)]
pub(crate) enum Row {
    /// A ready topic: its snapshot, or why its log is unusable.
    Topic {
        name: String,
        result: Result<Box<TopicSnapshot>, Failure>,
    },
    /// A ready SPSC channel: its snapshot, or why its ring is unusable.
    Channel {
        name: String,
        result: Result<Box<SpscSnapshot>, Failure>,
    },
    /// A ready work queue: its snapshot, or why its ring is unusable.
    Queue {
        name: String,
        result: Result<Box<QueueSnapshot>, Failure>,
    },
    /// A ring of a kind this ring-dump does not show.
    OtherKind { name: String, kind: String },
    /// An entry a process is creating a ring in (its name is known when a
    /// removed ring is made again).
    Creating {
        entry: usize,
        epoch: u32,
        creator_alive: bool,
        name: Option<String>,
    },
    /// A removed ring's entry, kept for its name.
    Removed {
        entry: usize,
        epoch: u32,
        name: String,
    },
    /// A corrupt directory entry.
    Corrupt { entry: usize, reason: String },
}

impl Row {
    /// The kind column of the row: `topic`, `spsc`, `queue`, or `-`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Row::Topic { .. } => RingKind::Broadcast.name(),
            Row::Channel { .. } => RingKind::Spsc.name(),
            Row::Queue { .. } => RingKind::Queue.name(),
            _ => "-",
        }
    }
}

/// The failure `ring-dump list` ends with when it listed corrupt entries:
/// the first one's reason, and how many more there are.
fn corrupt_rows_failure(rows: &[Row]) -> Option<Failure> {
    let mut corrupt = rows.iter().filter_map(|row| match row {
        Row::Corrupt { entry, reason } => Some((*entry, reason)),
        _ => None,
    });
    let (entry, reason) = corrupt.next()?;
    let more = corrupt.count();
    let first = DirectoryError::Corrupt {
        entry,
        reason: reason.clone(),
    };
    Some(Failure {
        code: EXIT_UNUSABLE,
        reason: match more {
            0 => first.to_string(),
            1 => format!("{first}; 1 more entry is corrupt"),
            n => format!("{first}; {n} more entries are corrupt"),
        },
    })
}

/// The row of one directory entry, with a snapshot of its ring if ready.
fn row(ns: &Namespace, entry: DirectoryEntry, opts: &OpenOptions) -> Row {
    match entry {
        DirectoryEntry::Ready(record) => {
            let name = record.name.clone();
            match record.kind() {
                RingKind::Broadcast => Row::Topic {
                    name,
                    result: TopicInspector::open_topic(ns, record, opts)
                        .and_then(|log| log.snapshot())
                        .map(Box::new)
                        .map_err(Failure::from),
                },
                RingKind::Spsc => Row::Channel {
                    name,
                    result: SpscInspector::open_channel(ns, record, opts)
                        .and_then(|ring| ring.snapshot())
                        .map(Box::new)
                        .map_err(Failure::from),
                },
                RingKind::Queue => Row::Queue {
                    name,
                    result: QueueInspector::open_queue(ns, record, opts)
                        .and_then(|queue| queue.snapshot())
                        .map(Box::new)
                        .map_err(Failure::from),
                },
                // A newer library may know more kinds of ring.
                other => Row::OtherKind {
                    name,
                    kind: other.name().to_owned(),
                },
            }
        }
        DirectoryEntry::Creating {
            entry,
            epoch,
            creator_alive,
            name,
        } => Row::Creating {
            entry,
            epoch,
            creator_alive,
            name,
        },
        DirectoryEntry::Removed { entry, epoch, name } => Row::Removed { entry, epoch, name },
        DirectoryEntry::Corrupt { entry, reason } => Row::Corrupt { entry, reason },
        // A newer library may know more kinds of entry.
        other => Row::Corrupt {
            entry: other.entry(),
            reason: "an entry this ring-dump does not understand".to_owned(),
        },
    }
}

/// What the tool prints and the exit code it ends with.
struct Output {
    stdout: String,
    failure: Option<Failure>,
}

fn run(args: &Args) -> Result<Output, Failure> {
    let opts = OpenOptions::default();
    match &args.command {
        Command::Help => Ok(Output {
            stdout: HELP.to_owned(),
            failure: None,
        }),
        Command::Version => Ok(Output {
            stdout: format!("ring-dump {}\n", env!("CARGO_PKG_VERSION")),
            failure: None,
        }),
        Command::List => {
            let ns = open_namespace(&args.base, &args.namespace)?;
            let entries = shmbus::inspect::list_directory(&ns, &opts)?;
            let rows: Vec<Row> = entries
                .into_iter()
                .map(|entry| row(&ns, entry, &opts))
                .collect();
            let stdout = if args.json {
                json::list(&ns, &rows)
            } else {
                render::list_text(&ns, &rows)
            };
            Ok(Output {
                stdout,
                failure: corrupt_rows_failure(&rows),
            })
        }
        Command::Spsc(name) => {
            let ns = open_namespace(&args.base, &args.namespace)?;
            let ring = SpscInspector::open(&ns, name, &opts)?;
            let snapshot = ring.snapshot()?;
            let mut records: Vec<SpscRecord> = Vec::new();
            let mut walk = ring.records(&snapshot, args.records, args.hex_bytes);
            let mut end = WalkEnd::Complete;
            let mut failure = None;
            for record in walk.by_ref() {
                match record {
                    Ok(r) => records.push(r),
                    Err(e @ InspectError::Overtaken { .. }) => {
                        end = WalkEnd::Overtaken {
                            reason: e.to_string(),
                        };
                    }
                    Err(e) => {
                        end = WalkEnd::Corrupt {
                            reason: e.to_string(),
                        };
                        failure = Some(Failure::from(e));
                    }
                }
            }
            if matches!(end, WalkEnd::Complete) && walk.remaining_bytes() > 0 {
                end = WalkEnd::Limit {
                    position: walk.position(),
                    remaining: walk.remaining_bytes(),
                };
            }
            let stdout = if args.json {
                json::spsc(&ns, &snapshot, &records, &end)
            } else {
                render::spsc_text(&ns, &snapshot, &records, &end)
            };
            Ok(Output { stdout, failure })
        }
        Command::Topic(name) => {
            let ns = open_namespace(&args.base, &args.namespace)?;
            let log = TopicInspector::open(&ns, name, &opts)?;
            let snapshot = log.snapshot()?;
            let mut records: Vec<BroadcastRecord> = Vec::new();
            let mut walk = log.records(&snapshot, args.records);
            let mut end = LogWalkEnd::Complete;
            let mut failure = None;
            for record in walk.by_ref() {
                match record {
                    Ok(r) => records.push(r),
                    Err(e @ InspectError::Overwritten { .. }) => {
                        end = LogWalkEnd::Overwritten {
                            reason: e.to_string(),
                        };
                    }
                    Err(e) => {
                        end = LogWalkEnd::Corrupt {
                            reason: e.to_string(),
                        };
                        failure = Some(Failure::from(e));
                    }
                }
            }
            if matches!(end, LogWalkEnd::Complete) && walk.remaining_sequences() > 0 {
                end = LogWalkEnd::Limit {
                    below: walk.position(),
                    remaining: walk.remaining_sequences(),
                };
            }
            let stdout = if args.json {
                json::topic(&ns, &snapshot, &records, &end, args.hex_bytes)
            } else {
                render::topic_text(&ns, &snapshot, &records, &end, args.hex_bytes)
            };
            Ok(Output { stdout, failure })
        }
        Command::Queue(name) => {
            let ns = open_namespace(&args.base, &args.namespace)?;
            let queue = QueueInspector::open(&ns, name, &opts)?;
            let snapshot = queue.snapshot()?;
            let mut records: Vec<QueueRecord> = Vec::new();
            // Whole records, so that they decode; --hex-bytes limits the dump.
            let mut walk = queue.records(&snapshot, args.records, usize::MAX);
            let mut end = QueueWalkEnd::Complete;
            let mut failure = None;
            for record in walk.by_ref() {
                match record {
                    Ok(r) => records.push(r),
                    Err(e) => {
                        end = QueueWalkEnd::Corrupt {
                            reason: e.to_string(),
                        };
                        failure = Some(Failure::from(e));
                    }
                }
            }
            if matches!(end, QueueWalkEnd::Complete) && walk.not_shown() > 0 {
                end = QueueWalkEnd::Limit {
                    not_shown: walk.not_shown(),
                };
            }
            let report = render::QueueReport {
                ns: &ns,
                snapshot: &snapshot,
                records: &records,
                end: &end,
                gone: walk.gone(),
                max_in_flight: args.records,
                hex_bytes: args.hex_bytes,
            };
            let stdout = if args.json {
                json::queue(&report)
            } else {
                render::queue_text(&report)
            };
            Ok(Output { stdout, failure })
        }
    }
}

/// Writes `text` to stdout; a closed pipe (`ring-dump ... | head`) is not
/// an error worth reporting.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Reports a failure as exactly one line on stderr and returns its code.
fn fail(f: Failure) -> ExitCode {
    let one_line = f.reason.replace(['\n', '\r'], " ");
    let _ = writeln!(io::stderr().lock(), "ring-dump: {one_line}");
    ExitCode::from(f.code)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(f) => return fail(f),
    };
    match run(&args) {
        Ok(out) => {
            write_stdout(&out.stdout);
            match out.failure {
                Some(f) => fail(f),
                None => ExitCode::from(EXIT_OK),
            }
        }
        Err(f) => fail(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, Failure> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse(&["--json", "spsc", "orders", "--records=3", "-n", "prod"]).expect("valid");
        assert_eq!(a.command, Command::Spsc("orders".into()));
        assert!(a.json);
        assert_eq!((a.records, a.namespace.as_str()), (3, "prod"));
        assert_eq!(a.hex_bytes, DEFAULT_HEX_BYTES);
        let a = parse(&["topic", "market_data", "--json", "--records", "2"]).expect("valid");
        assert_eq!(a.command, Command::Topic("market_data".into()));
        assert!(a.json);
        assert_eq!(a.records, 2);
        let a = parse(&["queue", "execution", "--records", "4"]).expect("valid");
        assert_eq!(a.command, Command::Queue("execution".into()));
        assert_eq!(a.records, 4);
        let a = parse(&["topics"]).expect("valid");
        assert_eq!(a.command, Command::List, "topics is another name for list");
        let a = parse(&["--dir", "/tmp/x", "list"]).expect("valid");
        assert_eq!(
            (a.command, a.base),
            (Command::List, PathBuf::from("/tmp/x"))
        );
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [
            &[][..],
            &["spsc"],
            &["topic"],
            &["queue"],
            &["queue", "a", "b"],
            &["topics", "extra"],
            &["frobnicate"],
            &["--records", "many", "list"],
            &["--bogus", "list"],
            &["list", "extra"],
            &["--dir"],
        ] {
            let f = parse(bad).expect_err("must be refused");
            assert_eq!(f.code, EXIT_UNUSABLE, "{bad:?}");
        }
    }

    #[test]
    fn not_found_is_1_and_the_rest_is_2() {
        let nf = SegmentError::NotFound { path: "/x".into() };
        assert_eq!(segment_exit_code(&nf), EXIT_NOT_FOUND);
        let p = SegmentError::Poisoned { path: "/x".into() };
        assert_eq!(segment_exit_code(&p), EXIT_UNUSABLE);
        let io = SegmentError::Io {
            op: "open",
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(segment_exit_code(&io), EXIT_UNUSABLE);
        let no_dir = InspectError::NoDirectory { path: "/x".into() };
        assert_eq!(inspect_exit_code(&no_dir), EXIT_NOT_FOUND);
        let no_topic = InspectError::NotFound {
            namespace: "prod".into(),
            name: "md".into(),
            kind: RingKind::Broadcast,
            found: Some(RingKind::Spsc),
        };
        assert_eq!(inspect_exit_code(&no_topic), EXIT_NOT_FOUND);
        let missing_dir =
            InspectError::Directory(DirectoryError::Segment(SegmentError::NotFound {
                path: "/x".into(),
            }));
        assert_eq!(inspect_exit_code(&missing_dir), EXIT_NOT_FOUND);
        let bad_dir = InspectError::Directory(DirectoryError::Corrupt {
            entry: 3,
            reason: "bad".into(),
        });
        assert_eq!(inspect_exit_code(&bad_dir), EXIT_UNUSABLE);
    }
}
