//! `ring-dump`: inspection of live shmbus channels, topics and work
//! queues, and the few commands that clean up after crashes.
//!
//! The inspection commands (`list`, `show`, `spsc`, `topic`, `queue`,
//! `watch`) open segments with `Segment::open_read_only` (a `PROT_READ`
//! mapping, no lock taken, nothing written), so they are safe to run
//! against a production host. `clean`, `drop-durable`, `remove` and
//! `remove-namespace` write only when given `--yes` (without it they say
//! what they would do); they change the namespace through the library,
//! which never touches what a live process holds (`clean`,
//! `drop-durable`, `remove-namespace`) or tells the live peers (`remove`).
//! Every ring is found through the namespace's directory. `list` (the
//! default) shows every entry of the directory with its kind; `show NAME`
//! shows one ring whatever its kind, as `spsc NAME`, `topic NAME` or
//! `queue NAME` do for their kind: for an SPSC channel the header,
//! positions, occupancy, which roles are attached (proved by their liveness
//! locks) and its records in hex; for a topic the configuration, positions,
//! counters, every publisher and subscriber with its lag and liveness, and
//! the last records decoded as Protocol V2 (or in hex); for a work queue the
//! configuration, positions, depth, counters, every producer (with its
//! claim) and consumer (with the records it holds) and its liveness, every
//! record slot in flight (being written, waiting, taken by a live or a dead
//! consumer, skipped), and the waiting records decoded as Protocol V2 (or
//! in hex). Text, or one JSON document (`--json`). `show` also gives every
//! participant's liveness (alive, dead, detached durable), the CPUs a live
//! one may run on, and each consumer's lag in records and payload bytes.
//! `watch` refreshes rates and marks the slowest and the gating consumers
//! (see `watch.rs`). `tail NAME` prints the last records of a ring of any
//! kind decoded, and with `--follow` every new one, as a read-only follower
//! (`tail.rs`); `record` writes a topic's records to a file and `replay`
//! publishes them back (`recording.rs`).
//!
//! Exit codes: 0 ok; 1 namespace, directory, channel, topic or queue not
//! found; 2 corrupt or unusable (a `list` that shows a corrupt entry or an
//! unusable ring included) and usage errors, with exactly one line
//! `ring-dump: <reason>` on stderr.

mod bridge;
mod clean;
mod json;
mod lifecycle;
mod participant;
mod recording;
mod render;
mod tail;
mod watch;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgAction, Parser, Subcommand};
use shmbus::directory::{Directory, DirectoryEntry, DirectoryError, RingRecord};
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

/// The manual after the generated usage, commands and options.
const MANUAL: &str = "\
WHAT EACH COMMAND SHOWS:
    list          every entry of the namespace's directory, one line each with its
                  kind: topics (policy, slots, max payload, tail, live publishers and
                  subscribers, largest lag), SPSC channels (capacity, bytes used, who
                  is attached), work queues (slots, max payload, depth, live producers
                  and consumers, records in flight, redelivered), then removed entries,
                  entries being created, corrupt entries and unusable rings (with what
                  is wrong); a topic a Zenoh bridge bridges ends with
                  `bridge=running|stopped gaps=N`; the command run when none is given;
                  `topics` is another name for it
    show NAME     the ring NAME, whatever its kind, as `spsc NAME`, `topic NAME` or
                  `queue NAME` shows it (a name is one ring of one kind in a
                  namespace's directory, so there is never more than one to show)
    spsc NAME     one SPSC channel: header, positions, occupancy, producer and
                  consumer (attached = holds its liveness lock, so is alive), then its
                  records from the consumer position on, in hex
    topic NAME    one topic: configuration, tail and gate, counters, every publisher
                  and subscriber (state, durable name, pid, cursor, lag, missed,
                  heartbeat age, alive = holds its liveness lock), the Zenoh bridge's
                  counters of a bridged topic (<topic>.bridge: exported, imported,
                  gaps, export missed, echo skipped, rejected, the last sequence of
                  each origin), then its last records, newest first, decoded as
                  Protocol V2 (hex otherwise)
    queue NAME    one work queue: configuration, head and tail, depth (records
                  waiting), counters (redelivered, reclaimed claims, reaped consumers
                  and producers), every producer (state, pid, committed, the claim it
                  holds) and consumer (state, pid, taken, acked, records it holds),
                  alive = holds its liveness lock; every record slot in flight (writing
                  by producer N, committed (redelivered), taken by consumer N (alive or
                  dead), skipped (suspect)); then the waiting records, oldest first,
                  decoded as Protocol V2 (hex otherwise); --records limits both lists
    watch [NAME]  every ring (or NAME) refreshed every --interval SECS (default 1): records/s
                  and MB/s of every publisher, subscriber, producer and consumer (and SPSC
                  end) from the growth of its counters, each consumer's lag in records and
                  payload bytes, `<- slowest` on the slowest consumer of each ring (largest
                  lag; of a queue, the live consumer taking the fewest records/s while
                  records wait) and `<- gating` on consumers holding writers back (of a
                  backpressure topic, the lowest cursor when publishers found the log full
                  since the last refresh or it is full now; of a full queue, the holder of
                  its oldest record, else every live consumer); on a terminal a full-screen
                  view (q, Esc or Ctrl-C quits), else a block of plain lines per refresh;
                  a bridged topic adds its bridge's export and import rates and the
                  gaps and export misses counted since the last refresh;
                  --json: one JSON document per line; --count N stops after N refreshes

    tail NAME     the last --records records of a topic, channel or queue, oldest first,
                  decoded as Protocol V2 with the typed fields of Trade, Quote,
                  OrderBook, GasPrice and ArbitrageSignal (hex otherwise); --follow:
                  then every new record until SIGINT or SIGTERM (exit 0), without
                  registering (it never gates a publisher nor takes a record); records
                  the ring reused before they were read are one \"missed\" line; --json:
                  one JSON object per line, per record and per gap
    record NAME FILE
                  follow topic NAME as tail --follow does and write each record with its
                  receive time to the new file FILE, until --duration SECS, --count N or
                  SIGINT; the file format (versioned) is in the README
    replay FILE NAME
                  publish a recording on topic NAME (created with the recorded
                  configuration if missing) at the recorded pace, --speed X times it, or
                  --max-speed; on a Backpressure topic it waits for space


IN EVERY VIEW OF A PARTICIPANT:
    liveness      alive (it holds its liveness lock), dead, or detached durable (a
                  durable subscriber whose process left: it keeps its place)
    cpus          the CPUs a live participant's process may run on (Cpus_allowed_list
                  of /proc/PID/status), omitted when it is not alive on this host
    lag           records not read yet and their payload bytes, summed from the record
                  headers (records differ in size); for a topic, only records the log
                  still holds; a queue's backlog is shared by its consumers

COMMANDS THAT CHANGE THINGS (each only with --yes; without it, what would be done, exit 0):
    clean                  what no live process holds (files no directory entry names,
                           rings nobody is attached to, a directory no bus uses, a Zenoh
                           bridge's counters of a topic that is gone), one line each with why; --durable also topics keeping detached durable
                           subscribers' places; --all-namespaces every namespace under BASE;
                           each object is looked at again right before it is removed
    drop-durable TOPIC NAME
                           drop a detached durable subscriber (it stops holding publishers
                           back); refused, exit 2, while a live process holds it
    remove NAME            remove a ring of any kind through the directory; its live peers
                           find it removed at their next call
    remove-namespace       remove the namespace and everything in it (Zenoh bridge counters
                           too); refused, exit 2, listing who holds what, while any process
                           holds any of it (a running bridge included)

Options go before or after the command. With --json every command prints one
JSON document on stdout (nothing when it fails before it has anything to show),
`watch` one per refresh, and tail, record and replay one JSON object per line.
The inspection commands (list, show, spsc, topic, queue, watch, tail, record)
never create, lock or write anything in the namespace: segments are mapped
read-only. clean, drop-durable, remove and remove-namespace write only when given
--yes; replay publishes, as any publisher does.

EXIT CODES:
    0  ok (a record walk overtaken by a live consumer, or a topic walk overwritten
       while a publisher is alive, is reported on stdout, still 0)
    1  namespace, directory, channel, topic, queue or recording file not found (a
       durable subscriber, for drop-durable)
    2  a change refused because a live process holds what it would touch
       (drop-durable, remove-namespace); corrupt or unusable (bad magic, version, layout or size, poisoned, corrupt
       positions, stamps or records, a record slot of a topic overwritten while no
       publisher is alive, a corrupt directory entry on the probe chain of NAME,
       wrong owner or mode, I/O error, a recording of another format), `list` showing a corrupt directory entry or
       an unusable ring (after the whole listing), or a bad command line; the reason
       is one line on stderr: `ring-dump: <reason>`

EXAMPLES:
    ring-dump
    ring-dump -n prod list
    ring-dump -n prod show execution_reports
    ring-dump --json -n prod show execution_reports | jq .used_bytes
    ring-dump --records 4 --hex-bytes 32 spsc orders
    SHMBUS_DIR=/tmp/shmbus ring-dump --json list | jq '.entries[] | select(.status != \"ready\")'
    ring-dump -n prod topic market_data
    ring-dump --records 5 show market_data
    ring-dump --json -n prod topic market_data | jq '.subscribers[] | {name, lag, alive}'
    ring-dump -n prod queue execution
    ring-dump --json -n prod show execution | jq '.in_flight[] | select(.state == \"taken\")'
    ring-dump -n prod watch
    ring-dump -n prod watch market_data --interval 0.5
    ring-dump -n prod watch --count 10 > rates.txt
    ring-dump --json -n prod watch --count 60 | jq -c '.rings[].participants[] | select(.slowest)'
    ring-dump -n prod clean
    ring-dump clean --all-namespaces --yes
    ring-dump -n prod drop-durable market_data audit --yes
    ring-dump -n prod remove old_signals --yes
    ring-dump -n scratch remove-namespace --yes
    ring-dump -n prod tail market_data --records 5
    ring-dump -n prod tail execution --follow
    ring-dump --json -n prod tail market_data --follow | jq -c 'select(.event == \"missed\")'
    ring-dump -n prod record market_data md.rec --duration 60
    ring-dump -n prod replay md.rec market_data_replay --speed 2
";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ring-dump",
    version,
    about = "ring-dump: inspection of live shmbus channels, topics and work queues (read-only), and cleaning up after crashes (only with --yes)",
    after_help = MANUAL,
    disable_help_flag = true,
    disable_version_flag = true,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// The base directory (`$SHMBUS_DIR`, else `/dev/shm/shmbus-<uid>`,
    /// when not given).
    #[arg(
        long,
        value_name = "BASE",
        global = true,
        help = "base directory [default: $SHMBUS_DIR, else /dev/shm/shmbus-<uid>]"
    )]
    dir: Option<PathBuf>,
    /// namespace under BASE
    #[arg(short = 'n', long, value_name = "NS", global = true, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
    /// show at most N records (0 shows none)
    #[arg(long, value_name = "N", global = true, default_value_t = DEFAULT_RECORDS)]
    records: usize,
    /// show the first N payload bytes of each record in hex
    #[arg(long, value_name = "N", global = true, default_value_t = DEFAULT_HEX_BYTES)]
    hex_bytes: usize,
    /// print this help
    #[arg(short = 'h', long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    /// print the version
    #[arg(short = 'V', long, action = ArgAction::Version, global = true)]
    version: Option<bool>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum Command {
    /// every entry of the namespace's directory, with its kind (the default)
    #[command(visible_alias = "topics")]
    List,
    /// one channel, topic or queue, whatever its kind
    Show {
        /// the ring's name in the directory
        name: String,
    },
    /// one SPSC channel
    Spsc {
        /// the channel's name in the directory
        name: String,
    },
    /// one topic
    Topic {
        /// the topic's name in the directory
        name: String,
    },
    /// one work queue
    Queue {
        /// the queue's name in the directory
        name: String,
    },
    /// rates, lag, the slowest and the gating consumers, refreshed
    Watch {
        /// only this ring (every ring of the namespace when not given)
        name: Option<String>,
        /// seconds between refreshes
        #[arg(long, value_name = "SECS", default_value = "1", value_parser = watch::parse_interval)]
        interval: std::time::Duration,
        /// stop after N refreshes
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// what no live process holds (left by crashes); removed only with --yes
    Clean {
        /// remove them (without it, only say what would be removed)
        #[arg(long)]
        yes: bool,
        /// also topics that keep detached durable subscribers' places
        #[arg(long)]
        durable: bool,
        /// every namespace under BASE, not only -n NS
        #[arg(long)]
        all_namespaces: bool,
    },
    /// drop a detached durable subscriber of a topic; only with --yes
    DropDurable {
        /// the topic
        topic: String,
        /// the durable subscriber's name
        name: String,
        /// drop it (without it, only say what would be done)
        #[arg(long)]
        yes: bool,
    },
    /// remove a ring of any kind; its live peers find it removed; only with --yes
    Remove {
        /// the ring's name in the directory
        name: String,
        /// remove it (without it, only say what would be done)
        #[arg(long)]
        yes: bool,
    },
    /// remove the whole namespace, refused while anything is held; only with --yes
    RemoveNamespace {
        /// remove it (without it, only say what would be done)
        #[arg(long)]
        yes: bool,
    },
    /// the last --records records of a ring decoded, oldest first
    Tail {
        /// the ring's name in the directory (a topic, channel or queue)
        name: String,
        /// then print new records as they arrive, until SIGINT or SIGTERM
        #[arg(long)]
        follow: bool,
    },
    /// follow a topic and write its records, with their receive times, to FILE
    Record {
        /// the topic's name in the directory
        name: String,
        /// the recording to create (an existing file is refused)
        file: PathBuf,
        /// stop after SECS seconds
        #[arg(long, value_name = "SECS", value_parser = recording::parse_secs, conflicts_with = "count")]
        duration: Option<std::time::Duration>,
        /// stop after N records
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// publish a recording's records to a topic, at the recorded pace
    Replay {
        /// the recording
        file: PathBuf,
        /// the topic (created with the recorded configuration if missing)
        name: String,
        /// X times the recorded pace
        #[arg(long, value_name = "X", value_parser = recording::parse_speed, conflicts_with = "max_speed")]
        speed: Option<recording::Speed>,
        /// as fast as possible
        #[arg(long)]
        max_speed: bool,
    },
}

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

/// What a valid command line asks for.
#[derive(Debug)]
struct Args {
    base: PathBuf,
    namespace: String,
    json: bool,
    records: usize,
    hex_bytes: usize,
    command: Command,
}

/// What the command line says to do.
#[derive(Debug)]
enum Parsed {
    /// Inspect something.
    Run(Args),
    /// Print this (`--help`, `--version`) and exit 0.
    Print(String),
}

/// Parses the arguments after the program name.
fn parse_args<I, T>(args: I) -> Result<Parsed, Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let program = std::iter::once(OsString::from("ring-dump"));
    let cli = match Cli::try_parse_from(program.chain(args.into_iter().map(Into::into))) {
        Ok(cli) => cli,
        // `--help` and `--version` come back as errors of their own kinds:
        // what they print goes to stdout. The version is the tool's, also
        // after a command (clap would name the command).
        Err(e) if e.kind() == ErrorKind::DisplayHelp => return Ok(Parsed::Print(e.to_string())),
        Err(e) if e.kind() == ErrorKind::DisplayVersion => {
            return Ok(Parsed::Print(format!(
                "ring-dump {}\n",
                env!("CARGO_PKG_VERSION")
            )))
        }
        Err(e) => return Err(usage_error(&e)),
    };
    Ok(Parsed::Run(Args {
        base: cli.dir.unwrap_or_else(Namespace::base_dir),
        namespace: cli.namespace,
        json: cli.json,
        records: cli.records,
        hex_bytes: cli.hex_bytes,
        command: cli.command.unwrap_or(Command::List),
    }))
}

/// A clap error as one line: its first paragraph (the usage and tips that
/// follow it are for `--help` to show), without clap's `error: ` prefix.
fn usage_error(e: &clap::Error) -> Failure {
    let message = e.to_string();
    let first = message.split("\n\n").next().unwrap_or_default();
    let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    Failure::usage(if line.is_empty() {
        "bad command line"
    } else {
        line
    })
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
        /// The Zenoh bridge's counters of the topic, if it was bridged.
        bridge: bridge::BridgeView,
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
    /// The kind of ring of a ring's row.
    fn ring_kind(&self) -> Option<RingKind> {
        match self {
            Row::Topic { .. } => Some(RingKind::Broadcast),
            Row::Channel { .. } => Some(RingKind::Spsc),
            Row::Queue { .. } => Some(RingKind::Queue),
            _ => None,
        }
    }

    /// The kind column of the row: `topic`, `spsc`, `queue`, or `-`.
    pub(crate) fn kind(&self) -> &'static str {
        self.ring_kind().map_or("-", RingKind::name)
    }

    /// Why the row makes `list` exit 2: a corrupt directory entry, or a
    /// ring that cannot be shown because it is corrupt or unusable.
    fn problem(&self) -> Option<String> {
        match self {
            Row::Corrupt { entry, reason } => Some(
                DirectoryError::Corrupt {
                    entry: *entry,
                    reason: reason.clone(),
                }
                .to_string(),
            ),
            Row::Topic {
                name,
                result: Err(f),
                ..
            }
            | Row::Channel {
                name,
                result: Err(f),
            }
            | Row::Queue {
                name,
                result: Err(f),
            } if f.code == EXIT_UNUSABLE => Some(format!(
                "{} {name} is unusable: {}",
                self.ring_kind().map_or("ring", RingKind::noun),
                f.reason
            )),
            _ => None,
        }
    }
}

/// The failure `ring-dump list` ends with when it listed corrupt entries
/// or unusable rings: the first one's reason, and how many more there are.
fn list_failure(rows: &[Row]) -> Option<Failure> {
    let mut problems = rows.iter().filter_map(Row::problem);
    let first = problems.next()?;
    Some(Failure {
        code: EXIT_UNUSABLE,
        reason: match problems.count() {
            0 => first,
            1 => format!("{first}; 1 more entry is corrupt or unusable"),
            n => format!("{first}; {n} more entries are corrupt or unusable"),
        },
    })
}

/// The directory of `ns`, opened read-only; a missing one is
/// [`InspectError::NoDirectory`], as the inspector reports it.
fn open_directory(ns: &Namespace, opts: &OpenOptions) -> Result<Directory, Failure> {
    Directory::open_read_only(ns, opts).map_err(|e| {
        Failure::from(match e {
            DirectoryError::Segment(SegmentError::NotFound { path }) => {
                InspectError::NoDirectory { path }
            }
            e => InspectError::Directory(e),
        })
    })
}

/// Why the ring of `record` cannot be shown. A ring file that is missing
/// although the directory still has `record` ready is unusable (exit 2),
/// not a ring removed while ring-dump was looking (exit 1).
fn ring_failure(
    e: InspectError,
    ns: &Namespace,
    record: &RingRecord,
    opts: &OpenOptions,
) -> Failure {
    let mut failure = Failure::from(e);
    if failure.code == EXIT_NOT_FOUND {
        let still_ready = open_directory(ns, opts)
            .ok()
            .and_then(|dir| dir.lookup(&record.name).ok().flatten())
            .is_some_and(|now| now.segment == record.segment);
        if still_ready {
            failure = Failure {
                code: EXIT_UNUSABLE,
                reason: format!(
                    "{} (its directory entry {} says it is ready)",
                    failure.reason, record.entry
                ),
            };
        }
    }
    failure
}

/// The row of one directory entry, with a snapshot of its ring if ready.
fn row(ns: &Namespace, entry: DirectoryEntry, opts: &OpenOptions) -> Row {
    match entry {
        DirectoryEntry::Ready(record) => {
            let name = record.name.clone();
            let fail = |e| ring_failure(e, ns, &record, opts);
            match record.kind() {
                RingKind::Broadcast => Row::Topic {
                    bridge: bridge::read(ns, &name),
                    name,
                    result: TopicInspector::open_topic(ns, record.clone(), opts)
                        .and_then(|log| log.snapshot())
                        .map(Box::new)
                        .map_err(fail),
                },
                RingKind::Spsc => Row::Channel {
                    name,
                    result: SpscInspector::open_channel(ns, record.clone(), opts)
                        .and_then(|ring| ring.snapshot())
                        .map(Box::new)
                        .map_err(fail),
                },
                RingKind::Queue => Row::Queue {
                    name,
                    result: QueueInspector::open_queue(ns, record.clone(), opts)
                        .and_then(|queue| queue.snapshot())
                        .map(Box::new)
                        .map_err(fail),
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

/// The ready ring `name` of any kind in the directory of `ns`.
fn find_ring(ns: &Namespace, name: &str, opts: &OpenOptions) -> Result<RingRecord, Failure> {
    validate_name(name)?;
    let dir = open_directory(ns, opts)?;
    match dir
        .lookup(name)
        .map_err(|e| Failure::from(InspectError::Directory(e)))?
    {
        Some(record) => Ok(record),
        None => Err(Failure {
            code: EXIT_NOT_FOUND,
            reason: format!(
                "no SPSC channel, topic or work queue \"{name}\" in namespace {}",
                ns.name()
            ),
        }),
    }
}

fn run(args: &Args) -> Result<Output, Failure> {
    // Replay publishes: it opens (and may create) the namespace itself.
    if let Command::Replay {
        file,
        name,
        speed,
        max_speed,
    } = &args.command
    {
        return recording::replay(args, file, name, *speed, *max_speed);
    }
    let opts = OpenOptions::default();
    if let Command::Clean {
        yes,
        durable,
        all_namespaces,
    } = args.command
    {
        return clean::run(args, yes, durable, all_namespaces);
    }
    let ns = open_namespace(&args.base, &args.namespace)?;
    match &args.command {
        Command::List => list(args, &ns, &opts),
        Command::Show { name } => {
            let record = find_ring(&ns, name, &opts)?;
            match record.kind() {
                RingKind::Spsc => spsc(args, &ns, SpscInspector::open_channel(&ns, record, &opts)?),
                RingKind::Broadcast => {
                    topic(args, &ns, TopicInspector::open_topic(&ns, record, &opts)?)
                }
                RingKind::Queue => {
                    queue(args, &ns, QueueInspector::open_queue(&ns, record, &opts)?)
                }
                // A newer library may know more kinds of ring.
                other => Err(Failure {
                    code: EXIT_UNUSABLE,
                    reason: format!(
                        "\"{name}\" is a ring of kind {}, which this ring-dump does not show",
                        other.name()
                    ),
                }),
            }
        }
        Command::Spsc { name } => spsc(args, &ns, SpscInspector::open(&ns, name, &opts)?),
        Command::Topic { name } => topic(args, &ns, TopicInspector::open(&ns, name, &opts)?),
        Command::Queue { name } => queue(args, &ns, QueueInspector::open(&ns, name, &opts)?),
        Command::Watch {
            name,
            interval,
            count,
        } => watch::run(args, &ns, name.as_deref(), *interval, *count),
        // Run above, before the namespace is opened.
        Command::Clean { .. } => unreachable!("clean runs before the namespace is opened"),
        Command::DropDurable { topic, name, yes } => {
            lifecycle::drop_durable(args, &ns, topic, name, *yes)
        }
        Command::Remove { name, yes } => lifecycle::remove(args, &ns, name, *yes),
        Command::RemoveNamespace { yes } => lifecycle::remove_namespace(args, &ns, *yes),
        Command::Tail { name, follow } => tail::run(args, &ns, name, *follow),
        Command::Record {
            name,
            file,
            duration,
            count,
        } => recording::record(args, &ns, name, file, *duration, *count),
        Command::Replay { .. } => unreachable!("replay is run above"),
    }
}

/// `list`: every entry of the directory, then a failure naming the first
/// corrupt entry or unusable ring, if any.
fn list(args: &Args, ns: &Namespace, opts: &OpenOptions) -> Result<Output, Failure> {
    let entries = shmbus::inspect::list_directory(ns, opts)?;
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|entry| row(ns, entry, opts))
        .collect();
    let stdout = if args.json {
        json::list(ns, &rows)
    } else {
        render::list_text(ns, &rows)
    };
    Ok(Output {
        stdout,
        failure: list_failure(&rows),
    })
}

/// `spsc NAME`, or `show NAME` of an SPSC channel.
fn spsc(args: &Args, ns: &Namespace, ring: SpscInspector) -> Result<Output, Failure> {
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
    let backlog = participant::spsc_backlog(&ring, &snapshot);
    let stdout = if args.json {
        json::spsc(ns, &snapshot, &records, &end, backlog)
    } else {
        render::spsc_text(ns, &snapshot, &records, &end, backlog)
    };
    Ok(Output { stdout, failure })
}

/// Whether a publisher could have overwritten the slot a walk found not
/// holding its record: one was alive at the snapshot, or one attached or
/// moved the tail since. If none could, the slot is corrupt.
fn publisher_could_write(log: &TopicInspector, snapshot: &TopicSnapshot) -> bool {
    if snapshot.publishers_alive() > 0 {
        return true;
    }
    match log.snapshot() {
        Ok(now) => now.publishers_alive() > 0 || now.tail != snapshot.tail,
        // Liveness is unknown: do not call the log corrupt.
        Err(_) => true,
    }
}

/// `topic NAME`, or `show NAME` of a topic.
fn topic(args: &Args, ns: &Namespace, log: TopicInspector) -> Result<Output, Failure> {
    let snapshot = log.snapshot()?;
    let mut records: Vec<BroadcastRecord> = Vec::new();
    let mut walk = log.records(&snapshot, args.records);
    let mut end = LogWalkEnd::Complete;
    let mut failure = None;
    for record in walk.by_ref() {
        match record {
            Ok(r) => records.push(r),
            Err(e @ InspectError::Overwritten { .. }) if publisher_could_write(&log, &snapshot) => {
                end = LogWalkEnd::Overwritten {
                    reason: e.to_string(),
                };
            }
            // With no publisher alive nothing writes the log: a slot that
            // does not hold the record the tail says it holds is corrupt.
            Err(InspectError::Overwritten { path, sequence }) => {
                let reason = format!(
                    "{} is corrupt: the slot of record {sequence} does not hold it, and no publisher is alive that could have overwritten it",
                    path.display()
                );
                end = LogWalkEnd::Corrupt {
                    reason: reason.clone(),
                };
                failure = Some(Failure {
                    code: EXIT_UNUSABLE,
                    reason,
                });
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
    let lag_bytes = log.lag_bytes(&snapshot);
    let bridge = bridge::read(ns, &snapshot.topic.name);
    let stdout = if args.json {
        json::topic(
            ns,
            &snapshot,
            &records,
            &end,
            args.hex_bytes,
            &lag_bytes,
            &bridge,
        )
    } else {
        render::topic_text(
            ns,
            &snapshot,
            &records,
            &end,
            args.hex_bytes,
            &lag_bytes,
            &bridge,
        )
    };
    Ok(Output { stdout, failure })
}

/// `queue NAME`, or `show NAME` of a work queue.
fn queue(args: &Args, ns: &Namespace, queue: QueueInspector) -> Result<Output, Failure> {
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
        ns,
        snapshot: &snapshot,
        records: &records,
        end: &end,
        gone: walk.gone(),
        max_in_flight: args.records,
        hex_bytes: args.hex_bytes,
        backlog: participant::queue_backlog(&queue, &snapshot),
    };
    let stdout = if args.json {
        json::queue(&report)
    } else {
        render::queue_text(&report)
    };
    Ok(Output { stdout, failure })
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
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Print(text)) => {
            write_stdout(&text);
            return ExitCode::from(EXIT_OK);
        }
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
        match parse_args(args)? {
            Parsed::Run(args) => Ok(args),
            Parsed::Print(text) => panic!("{args:?} printed {text:?} instead of running"),
        }
    }

    fn name(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse(&["--json", "spsc", "orders", "--records=3", "-n", "prod"]).expect("valid");
        assert_eq!(
            a.command,
            Command::Spsc {
                name: name("orders")
            }
        );
        assert!(a.json);
        assert_eq!((a.records, a.namespace.as_str()), (3, "prod"));
        assert_eq!(a.hex_bytes, DEFAULT_HEX_BYTES);
        let a = parse(&["topic", "market_data", "--json", "--records", "2"]).expect("valid");
        assert_eq!(
            a.command,
            Command::Topic {
                name: name("market_data")
            }
        );
        assert!(a.json);
        assert_eq!(a.records, 2);
        let a = parse(&["queue", "execution", "--records", "4"]).expect("valid");
        assert_eq!(
            a.command,
            Command::Queue {
                name: name("execution")
            }
        );
        assert_eq!(a.records, 4);
        let a = parse(&["show", "fills", "--hex-bytes=8"]).expect("valid");
        assert_eq!(
            a.command,
            Command::Show {
                name: name("fills")
            }
        );
        assert_eq!(a.hex_bytes, 8);
        let a = parse(&["topics"]).expect("valid");
        assert_eq!(a.command, Command::List, "topics is another name for list");
        let a = parse(&["--dir", "/tmp/x", "list"]).expect("valid");
        assert_eq!(
            (a.command, a.base),
            (Command::List, PathBuf::from("/tmp/x"))
        );
    }

    #[test]
    fn no_command_is_list_with_the_defaults() {
        let a = parse(&[]).expect("valid");
        assert_eq!(a.command, Command::List);
        assert_eq!(a.namespace, DEFAULT_NAMESPACE);
        assert_eq!(
            (a.records, a.hex_bytes),
            (DEFAULT_RECORDS, DEFAULT_HEX_BYTES)
        );
        assert!(!a.json);
        let a = parse(&["-n", "prod", "--json"]).expect("valid");
        assert_eq!(
            (a.command, a.namespace.as_str(), a.json),
            (Command::List, "prod", true)
        );
    }

    #[test]
    fn help_and_version_are_printed() {
        for args in [&["--help"][..], &["-h"], &["help"], &["show", "--help"]] {
            match parse_args(args) {
                Ok(Parsed::Print(text)) => assert!(text.contains("Usage:"), "{args:?}: {text}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        match parse_args(["--help"]) {
            Ok(Parsed::Print(text)) => {
                for section in [
                    "show",
                    "EXIT CODES",
                    "EXAMPLES",
                    "--hex-bytes",
                    "tail NAME",
                    "replay FILE NAME",
                ] {
                    assert!(text.contains(section), "no {section} in {text}");
                }
            }
            other => panic!("{other:?}"),
        }
        for args in [&["-V"][..], &["--version"], &["show", "x", "-V"]] {
            match parse_args(args) {
                Ok(Parsed::Print(text)) => {
                    assert_eq!(text, format!("ring-dump {}\n", env!("CARGO_PKG_VERSION")));
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_command_lines_are_one_line_usage_errors() {
        for bad in [
            &["spsc"][..],
            &["topic"],
            &["queue"],
            &["show"],
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
            assert_eq!(f.reason.lines().count(), 1, "{bad:?}: {:?}", f.reason);
            assert!(!f.reason.starts_with("error"), "{bad:?}: {:?}", f.reason);
            assert!(
                f.reason.ends_with("(see ring-dump --help)"),
                "{:?}",
                f.reason
            );
        }
        let f = parse(&["--records", "many", "list"]).expect_err("refused");
        assert!(f.reason.contains("'many'"), "{}", f.reason);
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
