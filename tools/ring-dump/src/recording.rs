//! `ring-dump record NAME FILE` and `ring-dump replay FILE NAME`: a
//! topic's records written to a file with the time each one was received,
//! and published back to a topic at the pace they came.
//!
//! `record` follows the topic exactly as `tail --follow` does (read-only:
//! it never registers, never gates a publisher) from the moment it starts,
//! until `--duration` has passed, `--count` records were written, or
//! SIGINT / SIGTERM. Records the follower missed are written as gaps.
//! The file is created new (an existing file is refused).
//!
//! `replay` opens the topic through the bus API; if it does not exist it
//! is created with the configuration the recording stores (that of the
//! recorded topic). It publishes every record, with its record type and
//! payload as recorded, at the recorded pace (each record at its receive
//! time, divided by `--speed`), or as fast as it can (`--max-speed`). On
//! a `Backpressure` topic it waits for space rather than drop; on an
//! `Overwrite` topic it never waits. Gaps in the recording are skipped
//! (and counted in the summary). Replay is the one ring-dump command that
//! writes to shared memory: it is a publisher of the topic like any other.
//!
//! # The recording file, version 1
//!
//! All integers little-endian. A 64-byte header, the topic's name, then
//! entries to the end of the file, each a 24-byte entry header and its
//! bytes:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------------------------------------------------------+
//! |                  magic "SHMBREC\0" (8 bytes)                  |  0
//! |                                                               |
//! +-------------------------------+-------------------------------+
//! |        version (u16) = 1      |   entries_offset (u16) = 64+L |  8
//! +-------------------------------+-------------------------------+
//! |                  flags (u32) = 0 (none defined)               | 12
//! +---------------------------------------------------------------+
//! |     started_realtime_ns (u64): CLOCK_REALTIME at the start    | 16
//! |                                                               |
//! +---------------------------------------------------------------+
//! |                  slots (u32)       (topic configuration)      | 24
//! +---------------------------------------------------------------+
//! |                  max_payload (u32)                            | 28
//! +---------------------------------------------------------------+
//! |                  policy (u32): 0 backpressure, 1 overwrite    | 32
//! +---------------------------------------------------------------+
//! |                  max_subscribers (u32)                        | 36
//! +---------------------------------------------------------------+
//! |                  max_publishers (u32)                         | 40
//! +---------------------------------------------------------------+
//! |                  reclaim_after_ms (u32)                       | 44
//! +-------------------------------+-------------------------------+
//! |      name_len L (u16)         |       reserved, zero          | 48
//! +-------------------------------+                               +
//! |                  reserved, zero (14 bytes in all)             |
//! +---------------------------------------------------------------+
//! |                  topic name, L bytes of UTF-8                 | 64
//! +---------------------------------------------------------------+
//!
//! entry, at entries_offset and after each entry:
//! +---------------------------------------------------------------+
//! |  time_ns (u64): CLOCK_MONOTONIC receive time, ns since the    |  0
//! |  first entry was received (0 for the first)                   |
//! +---------------------------------------------------------------+
//! |  sequence (u64): the record's sequence in the recorded topic  |  8
//! |  (gap: the first sequence missed)                             |
//! +-------------------------------+---------------+---------------+
//! |  record_type (u16) (gap: 0)   | kind (u8)     | reserved (u8) | 16
//! |                               | 0 rec, 1 gap  | zero          |
//! +-------------------------------+---------------+---------------+
//! |  len (u32): bytes that follow (gap: 8)                        | 20
//! +---------------------------------------------------------------+
//! |  payload, len bytes (gap: records missed, u64)                | 24
//! +---------------------------------------------------------------+
//! ```
//!
//! A reader refuses another magic or version (exit 2, one line); a file
//! that ends inside an entry is refused as truncated.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use shmbus::bus::{Bus, BusError, Policy, TopicConfig};
use shmbus::directory::DirectoryError;
use shmbus::inspect::{Followed, Follower, TopicInspector};
use shmbus::segment::OpenOptions;
use shmbus::{Namespace, WaitStrategy};

use crate::tail::{missed_text, stop_on_signals, stop_requested, Idle};
use crate::{Args, Failure, Output, EXIT_NOT_FOUND, EXIT_UNUSABLE};

/// The file's first 8 bytes.
pub(crate) const MAGIC: [u8; 8] = *b"SHMBREC\0";
/// The format version this build writes and reads.
pub(crate) const VERSION: u16 = 1;
/// Bytes of the fixed header, before the topic name.
pub(crate) const HEADER_LEN: usize = 64;
/// Bytes of an entry's header.
pub(crate) const ENTRY_HEADER_LEN: usize = 24;
/// Entry kind: a record.
const KIND_RECORD: u8 = 0;
/// Entry kind: records the recorder missed.
const KIND_GAP: u8 = 1;
/// Largest payload an entry may carry: a topic's largest `max_payload`.
const MAX_ENTRY_LEN: u32 = 1 << 20;

/// What a recording says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// `CLOCK_REALTIME` ns since the Unix epoch when recording started.
    pub(crate) started_realtime_ns: u64,
    /// The recorded topic's configuration.
    pub(crate) config: TopicConfig,
    /// The recorded topic's name.
    pub(crate) name: String,
}

/// One entry of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A record as received.
    Record {
        time_ns: u64,
        sequence: u64,
        record_type: u16,
        payload: Vec<u8>,
    },
    /// Records the recorder missed, from sequence `from` on.
    Gap {
        time_ns: u64,
        from: u64,
        missed: u64,
    },
}

/// Why a recording cannot be read.
#[derive(Debug)]
pub(crate) enum FormatError {
    Io(io::Error),
    BadMagic,
    Version(u16),
    Corrupt(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Io(e) => write!(f, "cannot read: {e}"),
            FormatError::BadMagic => {
                f.write_str("not a ring-dump recording (its first bytes are not \"SHMBREC\\0\")")
            }
            FormatError::Version(v) => write!(
                f,
                "a recording of format version {v}, but this ring-dump reads version {VERSION} (use the ring-dump that made it)"
            ),
            FormatError::Corrupt(why) => write!(f, "corrupt recording: {why}"),
        }
    }
}

impl From<io::Error> for FormatError {
    fn from(e: io::Error) -> Self {
        FormatError::Io(e)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Writes a recording.
pub(crate) struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Writes the header of a recording of `header.name`.
    pub(crate) fn new(mut out: W, header: &Header) -> io::Result<Self> {
        let name = header.name.as_bytes();
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "topic name too long"))?;
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        // The header and name fit a u16: names are short (validated).
        let offset = (HEADER_LEN + name.len()) as u16;
        h[10..12].copy_from_slice(&offset.to_le_bytes());
        h[16..24].copy_from_slice(&header.started_realtime_ns.to_le_bytes());
        let c = &header.config;
        h[24..28].copy_from_slice(&c.slots.to_le_bytes());
        h[28..32].copy_from_slice(&c.max_payload.to_le_bytes());
        h[32..36].copy_from_slice(&c.policy.to_raw().to_le_bytes());
        h[36..40].copy_from_slice(&c.max_subscribers.to_le_bytes());
        h[40..44].copy_from_slice(&c.max_publishers.to_le_bytes());
        let reclaim_ms = u32::try_from(c.reclaim_after.as_millis().max(1)).unwrap_or(u32::MAX);
        h[44..48].copy_from_slice(&reclaim_ms.to_le_bytes());
        h[48..50].copy_from_slice(&name_len.to_le_bytes());
        out.write_all(&h)?;
        out.write_all(name)?;
        Ok(Writer { out })
    }

    /// Appends one entry.
    pub(crate) fn write(&mut self, entry: &Entry) -> io::Result<()> {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        let (time_ns, sequence, record_type, kind, bytes): (u64, u64, u16, u8, Vec<u8>) =
            match entry {
                Entry::Record {
                    time_ns,
                    sequence,
                    record_type,
                    payload,
                } => (
                    *time_ns,
                    *sequence,
                    *record_type,
                    KIND_RECORD,
                    payload.clone(),
                ),
                Entry::Gap {
                    time_ns,
                    from,
                    missed,
                } => (*time_ns, *from, 0, KIND_GAP, missed.to_le_bytes().to_vec()),
            };
        h[0..8].copy_from_slice(&time_ns.to_le_bytes());
        h[8..16].copy_from_slice(&sequence.to_le_bytes());
        h[16..18].copy_from_slice(&record_type.to_le_bytes());
        h[18] = kind;
        // Payloads are at most a topic's max_payload, 1 MiB.
        h[20..24].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&bytes)
    }

    /// Flushes and hands back the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a recording, entry by entry.
pub(crate) struct Reader<R: Read> {
    input: R,
    offset: u64,
}

/// Reads exactly `buf.len()` bytes, or reports how many it got before the
/// end of the input.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header: magic, version, configuration, name.
    pub(crate) fn new(mut input: R) -> Result<(Header, Self), FormatError> {
        let mut h = [0u8; HEADER_LEN];
        let got = read_full(&mut input, &mut h)?;
        if got < MAGIC.len() || h[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u16_at(&h, 8);
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        if got < HEADER_LEN {
            return Err(FormatError::Corrupt(format!(
                "the header ends after {got} of {HEADER_LEN} bytes"
            )));
        }
        let name_len = usize::from(u16_at(&h, 48));
        let offset = usize::from(u16_at(&h, 10));
        if offset != HEADER_LEN + name_len {
            return Err(FormatError::Corrupt(format!(
                "entries at offset {offset}, but a header of {HEADER_LEN} bytes and a name of {name_len} end at {}",
                HEADER_LEN + name_len
            )));
        }
        let policy = Policy::from_raw(u32_at(&h, 32)).ok_or_else(|| {
            FormatError::Corrupt(format!("unknown topic policy {}", u32_at(&h, 32)))
        })?;
        let config = TopicConfig {
            slots: u32_at(&h, 24),
            max_payload: u32_at(&h, 28),
            policy,
            max_subscribers: u32_at(&h, 36),
            max_publishers: u32_at(&h, 40),
            reclaim_after: Duration::from_millis(u64::from(u32_at(&h, 44))),
        };
        config
            .validate()
            .map_err(|e| FormatError::Corrupt(format!("its topic configuration: {e}")))?;
        let mut name = vec![0u8; name_len];
        if read_full(&mut input, &mut name)? < name_len {
            return Err(FormatError::Corrupt("the topic name is cut short".into()));
        }
        let name = String::from_utf8(name)
            .map_err(|_| FormatError::Corrupt("the topic name is not UTF-8".into()))?;
        let header = Header {
            started_realtime_ns: u64_at(&h, 16),
            config,
            name,
        };
        Ok((
            header,
            Reader {
                input,
                offset: offset as u64,
            },
        ))
    }

    /// The next entry, `None` at the end of the file.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, FormatError> {
        let at = self.offset;
        let mut h = [0u8; ENTRY_HEADER_LEN];
        match read_full(&mut self.input, &mut h)? {
            0 => return Ok(None),
            ENTRY_HEADER_LEN => {}
            n => {
                return Err(FormatError::Corrupt(format!(
                    "truncated: the entry at offset {at} ends after {n} of its {ENTRY_HEADER_LEN} header bytes"
                )))
            }
        }
        let len = u32_at(&h, 20);
        let kind = h[18];
        if len > MAX_ENTRY_LEN {
            return Err(FormatError::Corrupt(format!(
                "the entry at offset {at} claims {len} bytes (at most {MAX_ENTRY_LEN})"
            )));
        }
        if kind == KIND_GAP && len != 8 {
            return Err(FormatError::Corrupt(format!(
                "the gap at offset {at} has {len} bytes instead of 8"
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        let got = read_full(&mut self.input, &mut bytes)?;
        if got < bytes.len() {
            return Err(FormatError::Corrupt(format!(
                "truncated: the entry at offset {at} ends after {got} of its {len} bytes"
            )));
        }
        self.offset += (ENTRY_HEADER_LEN + bytes.len()) as u64;
        let time_ns = u64_at(&h, 0);
        let sequence = u64_at(&h, 8);
        match kind {
            KIND_RECORD => Ok(Some(Entry::Record {
                time_ns,
                sequence,
                record_type: u16_at(&h, 16),
                payload: bytes,
            })),
            KIND_GAP => Ok(Some(Entry::Gap {
                time_ns,
                from: sequence,
                missed: u64_at(&bytes, 0),
            })),
            other => Err(FormatError::Corrupt(format!(
                "the entry at offset {at} is of unknown kind {other}"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------
// Command-line values
// ---------------------------------------------------------------------------

/// A replay speed: a positive multiple of the recorded pace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Speed(pub(crate) f64);

impl PartialEq for Speed {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Speed {}

/// `--speed X`: a finite number above 0.
pub(crate) fn parse_speed(s: &str) -> Result<Speed, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed(x)),
        _ => Err(format!("'{s}' is not a speed (a number above 0, e.g. 2.0)")),
    }
}

/// `--duration SECS`: a finite number of seconds above 0.
pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => {
            Duration::try_from_secs_f64(x).map_err(|_| format!("'{s}' seconds is too long"))
        }
        _ => Err(format!("'{s}' is not a number of seconds above 0")),
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

// ---------------------------------------------------------------------------
// record
// ---------------------------------------------------------------------------

fn file_failure(file: &Path, what: &str, e: io::Error) -> Failure {
    Failure {
        code: if e.kind() == io::ErrorKind::NotFound {
            EXIT_NOT_FOUND
        } else {
            EXIT_UNUSABLE
        },
        reason: format!("cannot {what} {}: {e}", file.display()),
    }
}

/// `ring-dump record NAME FILE [--duration SECS | --count N]`.
pub(crate) fn record(
    args: &Args,
    ns: &Namespace,
    name: &str,
    file: &Path,
    duration: Option<Duration>,
    count: Option<u64>,
) -> Result<Output, Failure> {
    let opts = OpenOptions::default();
    let log = TopicInspector::open(ns, name, &opts)?;
    let config = *log.config();
    let mut follower = Follower::topic(log)?;
    let out = File::options()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Failure {
                code: EXIT_UNUSABLE,
                reason: format!(
                    "{} exists (ring-dump record never overwrites a file: remove it or choose another name)",
                    file.display()
                ),
            },
            _ => file_failure(file, "create", e),
        })?;
    let started_realtime_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let header = Header {
        started_realtime_ns,
        config,
        name: name.to_owned(),
    };
    let mut writer =
        Writer::new(BufWriter::new(out), &header).map_err(|e| file_failure(file, "write", e))?;
    stop_on_signals();
    let mut stdout = io::stdout();
    let start_line = if args.json {
        json!({
            "event": "recording",
            "kind": "topic",
            "name": name,
            "file": file.display().to_string(),
            "from": follower.position(),
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "recording topic {}/{name} into {} from seq {} (Ctrl-C stops)\n",
            ns.name(),
            file.display(),
            follower.position()
        )
    };
    let _ = stdout
        .write_all(start_line.as_bytes())
        .and_then(|()| stdout.flush());

    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let (mut records, mut missed, mut last_ns) = (0u64, 0u64, 0u64);
    let mut idle = Idle::new();
    let mut failure = None;
    while !stop_requested()
        && count.is_none_or(|n| records < n)
        && duration.is_none_or(|d| started.elapsed() < d)
    {
        let event = match follower.poll() {
            Ok(Some(event)) => event,
            Ok(None) => {
                idle.wait();
                continue;
            }
            Err(e) => {
                failure = Some(Failure::from(e));
                break;
            }
        };
        idle.reset();
        let now = Instant::now();
        let time_ns = first.map_or(0, |f| {
            u64::try_from(now.duration_since(f).as_nanos()).unwrap_or(u64::MAX)
        });
        first.get_or_insert(now);
        last_ns = time_ns;
        let entry = match event {
            Followed::Record(r) => {
                records += 1;
                Entry::Record {
                    time_ns,
                    sequence: r.position,
                    record_type: r.record_type,
                    payload: r.payload,
                }
            }
            Followed::Missed(m) => {
                let n = m.records.unwrap_or(0);
                missed += n;
                if !args.json {
                    let _ = stdout.write_all(missed_text(&m).as_bytes());
                }
                Entry::Gap {
                    time_ns,
                    from: m.from,
                    missed: n,
                }
            }
        };
        if let Err(e) = writer.write(&entry) {
            return Err(file_failure(file, "write", e));
        }
    }
    writer
        .finish()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .map_err(|e| file_failure(file, "write", e))?;
    let stdout = if args.json {
        json!({
            "event": "recorded",
            "kind": "topic",
            "name": name,
            "file": file.display().to_string(),
            "records": records,
            "missed": missed,
            "span_ns": last_ns,
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "recorded {records} record{} ({missed} missed) over {:.3}s into {}\n",
            if records == 1 { "" } else { "s" },
            secs(last_ns),
            file.display()
        )
    };
    Ok(Output { stdout, failure })
}

// ---------------------------------------------------------------------------
// replay
// ---------------------------------------------------------------------------

fn bus_failure(e: BusError) -> Failure {
    Failure {
        code: match &e {
            BusError::Directory(DirectoryError::NotFound { .. }) => EXIT_NOT_FOUND,
            _ => EXIT_UNUSABLE,
        },
        reason: e.to_string(),
    }
}

/// How `replay` publishes on a full `Backpressure` topic: spin a little,
/// yield, then sleep up to a millisecond at a time until there is space.
const REPLAY_WAIT: WaitStrategy = WaitStrategy::Backoff {
    spins: 64,
    yields: 64,
    max_sleep: Duration::from_millis(1),
};

/// `ring-dump replay FILE NAME [--speed X | --max-speed]`.
pub(crate) fn replay(
    args: &Args,
    file: &Path,
    name: &str,
    speed: Option<Speed>,
    max_speed: bool,
) -> Result<Output, Failure> {
    let input = File::open(file).map_err(|e| file_failure(file, "open", e))?;
    let unreadable = |e: FormatError| Failure {
        code: EXIT_UNUSABLE,
        reason: format!("{}: {e}", file.display()),
    };
    let (header, mut reader) = Reader::new(BufReader::new(input)).map_err(unreadable)?;
    shmbus::segment::validate_name(&args.namespace)?;
    shmbus::segment::validate_name(name)?;
    let bus = Bus::at(&args.base, &args.namespace).map_err(bus_failure)?;
    // An existing topic whatever its configuration; else the recorded one.
    let topic = match bus.open_topic(name) {
        Ok(topic) => topic,
        Err(BusError::Directory(DirectoryError::NotFound { .. })) => {
            bus.topic(name, &header.config).map_err(bus_failure)?
        }
        Err(e) => return Err(bus_failure(e)),
    };
    let policy = topic.config().policy;
    let max_payload = topic.config().max_payload;
    let mut publisher = topic.publisher().map_err(bus_failure)?;
    stop_on_signals();
    let speed = speed.map_or(1.0, |s| s.0);
    let started = Instant::now();
    let (mut records, mut gaps, mut last_ns) = (0u64, 0u64, 0u64);
    let mut failure = None;
    while !stop_requested() {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => {
                failure = Some(unreadable(e));
                break;
            }
        };
        let (time_ns, record_type, payload) = match entry {
            Entry::Record {
                time_ns,
                record_type,
                payload,
                ..
            } => (time_ns, record_type, payload),
            Entry::Gap { .. } => {
                gaps += 1;
                continue;
            }
        };
        if payload.len() > max_payload as usize {
            failure = Some(Failure {
                code: EXIT_UNUSABLE,
                reason: format!(
                    "record {records} of {} is {} bytes, more than the {max_payload} bytes topic {name} takes",
                    file.display(),
                    payload.len()
                ),
            });
            break;
        }
        if !max_speed {
            let due = Duration::from_secs_f64(secs(time_ns) / speed);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let sent = match policy {
            Policy::Backpressure => publisher.send_blocking(record_type, &payload, REPLAY_WAIT),
            Policy::Overwrite => publisher.try_send(record_type, &payload),
        };
        if let Err(e) = sent {
            failure = Some(Failure {
                code: EXIT_UNUSABLE,
                reason: format!("cannot publish on topic {name}: {e}"),
            });
            break;
        }
        records += 1;
        last_ns = time_ns;
    }
    let took = started.elapsed();
    let stdout = if args.json {
        json!({
            "event": "replayed",
            "kind": "topic",
            "name": name,
            "file": file.display().to_string(),
            "records": records,
            "gaps_skipped": gaps,
            "recorded_span_ns": last_ns,
            "took_ns": u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            "speed": if max_speed { None } else { Some(speed) },
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "replayed {records} record{} of {} into topic {}/{name} in {:.3}s (recorded over {:.3}s, {}){}\n",
            if records == 1 { "" } else { "s" },
            file.display(),
            args.namespace,
            took.as_secs_f64(),
            secs(last_ns),
            if max_speed {
                "as fast as possible".to_owned()
            } else {
                format!("speed {speed}")
            },
            if gaps > 0 {
                format!("; {gaps} gaps in the recording skipped")
            } else {
                String::new()
            }
        )
    };
    Ok(Output { stdout, failure })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            started_realtime_ns: 1_700_000_000_000_000_000,
            config: TopicConfig {
                slots: 64,
                max_payload: 128,
                policy: Policy::Overwrite,
                max_subscribers: 4,
                max_publishers: 2,
                reclaim_after: Duration::from_millis(1500),
            },
            name: "market_data".into(),
        }
    }

    fn written(entries: &[Entry]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header()).expect("header");
        for e in entries {
            w.write(e).expect("entry");
        }
        w.finish().expect("flush")
    }

    #[test]
    fn entries_read_back_as_written() {
        let entries = [
            Entry::Record {
                time_ns: 0,
                sequence: 7,
                record_type: 1,
                payload: b"abc".to_vec(),
            },
            Entry::Gap {
                time_ns: 5,
                from: 8,
                missed: 3,
            },
            Entry::Record {
                time_ns: 1_000_000,
                sequence: 11,
                record_type: 2,
                payload: Vec::new(),
            },
        ];
        let bytes = written(&entries);
        assert_eq!(&bytes[..8], b"SHMBREC\0");
        assert_eq!(u16_at(&bytes, 8), VERSION);
        assert_eq!(usize::from(u16_at(&bytes, 10)), HEADER_LEN + 11);
        let (h, mut r) = Reader::new(&bytes[..]).expect("header");
        assert_eq!(h, header());
        for e in &entries {
            assert_eq!(r.next_entry().expect("entry").as_ref(), Some(e));
        }
        assert_eq!(r.next_entry().expect("end"), None);
    }

    #[test]
    fn other_magic_version_or_a_cut_entry_are_refused() {
        let good = written(&[Entry::Record {
            time_ns: 0,
            sequence: 0,
            record_type: 1,
            payload: vec![1; 10],
        }]);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(Reader::new(&bad[..]), Err(FormatError::BadMagic)));
        let mut bad = good.clone();
        bad[8..10].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(
            Reader::new(&bad[..]),
            Err(FormatError::Version(2))
        ));
        let cut = &good[..good.len() - 1];
        let (_, mut r) = Reader::new(cut).expect("header");
        assert!(matches!(r.next_entry(), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn speeds_and_durations_are_positive_numbers() {
        assert_eq!(parse_speed("2").map(|s| s.0), Ok(2.0));
        for bad in ["0", "-1", "nan", "inf", "fast"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
    }
}
