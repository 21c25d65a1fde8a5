//! Fuzz harness over the mapped bytes of every segment kind: an SPSC ring,
//! broadcast logs (one `Backpressure`, one `Overwrite`) and the topic
//! directory.
//!
//! An input is decoded into a sequence of steps run in one thread:
//! producer / publisher operations (claim and commit, claim and abort,
//! claim left hanging, send, publish), consumer / subscriber operations
//! (try, copy, short timed reads), registrations (anonymous and durable
//! subscribers, publishers, reattaching the SPSC ends), directory
//! operations (create and open topics, list), read-only inspection, and
//! mutations of the live segments through a second writable mapping of
//! their files: random bytes anywhere, and interesting values written to
//! the fields the library reads (positions, record headers, stamps,
//! participant slots, directory entries). Claims can stay open across
//! other steps, mutations included.
//!
//! Every call must return (a value or an error, which one does not matter
//! once bytes were mutated); a panic or an out-of-bounds slice is a
//! failure. While a ring's bytes have not been mutated, the harness also
//! checks what it reads against a model of what was committed: every
//! record read is one that was committed, with its bytes, and no committed
//! record is passed over without a `Lapped` error.
//!
//! Work queues have cases of their own ([`Fuzzer::run_queue`], in
//! `queue.rs` next to this file): several producers and consumers of a
//! mapped queue and of a heap one, the mapped one mutated between their
//! calls, a model of the queue checking every call while its bytes are
//! untouched.
//!
//! Included by `tests/mapped_fuzz.rs` (the CI smoke tests, a deterministic
//! seed) and by `fuzz/fuzz_targets/mapped.rs` and `mapped_queue.rs`
//! (libFuzzer), with `#[path = ...] mod harness;`. Only the public API
//! (and the `*_for_test` hooks) is used. Calls whose signatures are about
//! to change are in [`api`].

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions as FileOptions;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shmbus::bus::{Bus, BusError, Channel, Policy, StartAt, Topic, TopicConfig};
use shmbus::inspect;
use shmbus::layout::{
    pack_record_header, stamp_committed, BroadcastControl, DirectoryControl, PublisherSlot,
    RecordSlotHeader, SegmentHeader, SpscControl, SubscriberSlot, TopicEntry,
    BROADCAST_CONTROL_OFFSET, BROADCAST_SUBSCRIBERS_OFFSET, DIRECTORY_CONTROL_OFFSET,
    DIRECTORY_ENTRIES_OFFSET, FLAG_COMMITTED, FLAG_PADDING, SPSC_CONTROL_OFFSET, SPSC_DATA_OFFSET,
};

/// The broadcast skip-record flag of layout version 2 as first written (an
/// unknown flag for layouts that mark skips in the stamp instead).
const FLAG_SKIP: u16 = 2;

/// Offset and width of a field of a shared structure, taken from the
/// library's own `#[repr(C)]` definitions so that the targeted mutations
/// follow the layout wherever it moves.
macro_rules! field {
    ($t:ty, $f:ident) => {
        (core::mem::offset_of!($t, $f), field_size(|x: &$t| &x.$f))
    };
    ($t:ty, $f:ident . $g:ident) => {
        (
            core::mem::offset_of!($t, $f) + core::mem::offset_of!(shmbus::layout::Counters, $g),
            field_size(|x: &$t| &x.$f.$g),
        )
    };
}

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}
use shmbus::ring::broadcast::{self, Publisher, Subscriber};
use shmbus::ring::spsc::{self, Consumer, Producer, SpscConfig};
use shmbus::segment::OpenOptions;
use shmbus::wait::WaitStrategy;
use shmbus::Namespace;

/// Whether `SHMBUS_FUZZ_TRACE` asks for every step and mutation on stderr.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SHMBUS_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

macro_rules! oracle {
    ($($arg:tt)*) => {
        panic!("mapped fuzz oracle: {}", format!($($arg)*))
    };
}

/// A defect this harness found in the library (see the `found_*` tests in
/// `tests/mapped_fuzz.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A broadcast log's `reclaim_after_ns` is not checked on open: a
    /// hostile value makes a publisher's claim under `Overwrite` spin for
    /// it (years) waiting for a stale previous lap.
    LogClaimTimeout,
    /// Issue 7, item 6: positions near `u64::MAX` (SPSC head and tail, log
    /// tail, gate and cursors) and a directory epoch of `u32::MAX` overflow
    /// in debug builds.
    PositionOverflow,
    /// Issue 7, item 7: an entry left `CREATING` by a creator that is gone
    /// makes `open_topic` wait the whole create timeout (10 s).
    DeadCreatorWait,
    /// Issue 7, item 4: a segment file truncated under its mappings kills
    /// the process with SIGBUS at the next access to the lost pages. The
    /// harness truncates files only once this is fixed.
    TruncationSigbus,
}

/// Findings whose fix has not landed yet: the harness steers clear of each
/// (see `Case::sanitize`) so that fuzzing goes on finding others. Remove an
/// entry when its fix lands; `SHMBUS_FUZZ_AVOID=none` ignores this list.
pub const OPEN_FINDINGS: &[Finding] = &[];

/// The findings to steer clear of in this process: [`OPEN_FINDINGS`], less
/// those named in `SHMBUS_FUZZ_ALLOW` (comma-separated, as spelled in
/// [`Finding`]), or none with `SHMBUS_FUZZ_AVOID=none`.
fn avoided(f: Finding) -> bool {
    static ALLOWED: std::sync::OnceLock<(bool, String)> = std::sync::OnceLock::new();
    let (none, allow) = ALLOWED.get_or_init(|| {
        (
            std::env::var("SHMBUS_FUZZ_AVOID").is_ok_and(|v| v == "none"),
            std::env::var("SHMBUS_FUZZ_ALLOW").unwrap_or_default(),
        )
    });
    let name = format!("{f:?}");
    !*none && OPEN_FINDINGS.contains(&f) && !allow.split(',').any(|a| a.trim() == name)
}

/// Most steps decoded from one input.
pub const MAX_STEPS: usize = 192;
/// Most publishers and subscribers held at once.
const MAX_PUBLISHERS: usize = 3;
const MAX_SUBSCRIBERS: usize = 4;
/// Name of the SPSC ring in every case.
const RING: &str = "ring";
/// Topic names: the first two are created with `Backpressure` and
/// `Overwrite`; the third is only created by a step.
const TOPICS: [&str; 3] = ["alpha", "omega", "gamma"];
/// Durable subscriber names.
const DURABLE: [&str; 2] = ["d0", "d1"];

/// The calls whose signatures are changing in issue 7 (new error variants,
/// `Claim::commit` returning a `Result`): adapt them here.
pub mod api {
    use shmbus::bus::Claim;
    use shmbus::ring::spsc::WriteSlot;

    /// What `Claim::commit` returns: the sequence, or (once a late commit
    /// of a reclaimed claim can fail) a `Result` of it.
    pub trait Committed {
        /// The sequence if the record was published.
        fn published(self) -> Option<u64>;
    }

    impl Committed for u64 {
        fn published(self) -> Option<u64> {
            Some(self)
        }
    }

    impl<E> Committed for Result<u64, E> {
        fn published(self) -> Option<u64> {
            self.ok()
        }
    }

    /// Commits a topic claim; `Some(seq)` if the record was published.
    pub fn topic_commit(claim: Claim<'_>) -> Option<u64> {
        claim.commit().published()
    }

    /// Commits an SPSC slot.
    pub fn spsc_commit(slot: WriteSlot<'_>) {
        slot.commit();
    }
}

// ---------------------------------------------------------------------------
// Input decoding
// ---------------------------------------------------------------------------

/// Reads numbers from the fuzz input; zeros once it is exhausted.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    /// A number below `n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            self.u8() as usize % n
        } else {
            self.u32() as usize % n
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// An interesting value near `cur`, `scale` being the ring's size in its
    /// own unit (bytes or slots).
    fn value(&mut self, cur: u64, scale: u64) -> u64 {
        let small = u64::from(self.u8() % 17);
        match self.below(18) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => u64::from(u32::MAX),
            4 => cur.wrapping_add(small),
            5 => cur.wrapping_sub(small),
            6 => cur.wrapping_add(scale),
            7 => cur.wrapping_sub(scale),
            8 => 1 << 63,
            9 => i64::MAX as u64,
            10 => cur.wrapping_add(scale.wrapping_mul(2)),
            11 => u64::MAX - small,
            12 => self.u64(),
            13 => cur ^ (1 << (self.u8() % 64)),
            14 => small,
            15 => (1 << 32) + small,
            16 => cur.wrapping_add(8 * small),
            _ => 1 << 62,
        }
    }

    /// A record header word (SPSC frame or broadcast slot word).
    fn header_word(&mut self, max_len: u64) -> u64 {
        let len = match self.below(7) {
            0 => 0,
            1 => max_len,
            2 => max_len + 1,
            3 => u64::from(u32::MAX),
            4 => max_len / 2,
            5 => u64::from(self.u8()),
            _ => u64::from(self.u32()),
        } as u32;
        let flags = match self.below(8) {
            0 => 0,
            1 => FLAG_COMMITTED,
            2 => FLAG_PADDING | FLAG_COMMITTED,
            3 => FLAG_PADDING,
            4 => FLAG_SKIP,
            5 => 0xFFFF,
            6 => FLAG_SKIP | FLAG_COMMITTED,
            _ => self.u16(),
        };
        pack_record_header(len, self.u16(), flags)
    }
}

// ---------------------------------------------------------------------------
// Raw writable mappings of segment files
// ---------------------------------------------------------------------------

/// A second, writable mapping of a segment file: the "hostile peer".
struct RawMap {
    ptr: *mut u8,
    len: usize,
    /// Bytes still backed by the file (less than `len` once the harness
    /// truncated it: touching the rest would raise SIGBUS here).
    live: core::cell::Cell<usize>,
}

impl RawMap {
    fn open(path: &Path) -> Option<RawMap> {
        let file = FileOptions::new().read(true).write(true).open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh shared mapping of an open file of `len` bytes; the
        // descriptor may close afterwards, the mapping stays.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(RawMap {
            ptr: ptr as *mut u8,
            len,
            live: core::cell::Cell::new(len),
        })
    }

    fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }

    fn read_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn read(&self, off: usize, out: &mut [u8]) {
        if !matches!(off.checked_add(out.len()), Some(end) if end <= self.live.get()) {
            return;
        }
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `off + i < live <= len`: inside the mapping and the file.
            *b = unsafe { core::ptr::read_volatile(self.ptr.add(off + i)) };
        }
    }

    /// Writes `bytes` at `off` (nothing if it does not fit). The magic word
    /// never becomes 0: that means "creator still initialising", which
    /// openers wait for by design (2 s), not hostile content to survive.
    fn write(&self, off: usize, bytes: &[u8]) {
        trace!("  write {bytes:02x?} at {off} (of {})", self.len);
        if !matches!(off.checked_add(bytes.len()), Some(end) if end <= self.live.get()) {
            return;
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `off + i < live <= len`: inside the mapping and the
            // file. Single-threaded: the library runs only between our calls.
            unsafe { core::ptr::write_volatile(self.ptr.add(off + i), *b) };
        }
        if off < 8 && self.live.get() >= 8 && self.read_u64(0) == 0 {
            // SAFETY: byte 0 is inside the mapping and the file (`live >= 8`).
            unsafe { core::ptr::write_volatile(self.ptr, 1) };
        }
    }

    fn write_u64(&self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes());
    }

    fn write_u32(&self, off: usize, v: u32) {
        self.write(off, &v.to_le_bytes());
    }

    /// Reads a field of `width` bytes (at most 8) as a number.
    fn read_n(&self, off: usize, width: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b[..width.min(8)]);
        u64::from_le_bytes(b)
    }

    /// Writes the low `width` bytes (at most 8) of `v`.
    fn write_n(&self, off: usize, width: usize, v: u64) {
        self.write(off, &v.to_le_bytes()[..width.min(8)]);
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `open`, unmapped once.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Writes `bytes` at `off` of the segment file at `path` through a mapping
/// of its own, as a hostile peer would (for reproducers). False if the file
/// cannot be mapped or is too short.
pub fn poke(path: &Path, off: usize, bytes: &[u8]) -> bool {
    match RawMap::open(path) {
        Some(m) if off + bytes.len() <= m.len => {
            m.write(off, bytes);
            true
        }
        _ => false,
    }
}

/// Address ranges of this case's segment files as the library mapped them,
/// read from `/proc/self/maps`: every slice the library hands out must lie
/// inside one of them, within the file's length.
#[derive(Default)]
struct Mappings {
    ranges: Vec<(usize, usize)>,
    /// Set once a case truncates a file: the library's SIGBUS handler then
    /// replaces whole mappings with anonymous pages, which no longer name
    /// their file, so a slice is only checked to lie in mapped memory.
    truncated: bool,
    /// Every mapping of the process (kept only once `truncated`).
    any: Vec<(usize, usize)>,
}

impl Mappings {
    fn refresh(&mut self, dir: &Path, sizes: &BTreeMap<String, usize>) {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            self.ranges.clear();
            return;
        };
        // A range known before stays while something is still mapped at its
        // start: the library's SIGBUS handler replaces a truncated
        // segment's pages with anonymous ones (no file name any more) at the
        // same addresses.
        let starts: Vec<usize> = maps
            .lines()
            .filter_map(|l| l.split_once('-'))
            .filter_map(|(start, _)| usize::from_str_radix(start, 16).ok())
            .collect();
        self.ranges.retain(|(s, _)| starts.contains(s));
        self.any.clear();
        if self.truncated {
            for line in maps.lines() {
                let Some((range, _)) = line.split_once(' ') else {
                    continue;
                };
                let Some((a, b)) = range.split_once('-') else {
                    continue;
                };
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    self.any.push((a, b));
                }
            }
        }
        let dir = dir.to_string_lossy();
        for line in maps.lines() {
            let Some(at) = line.find(dir.as_ref()) else {
                continue;
            };
            let path = line[at..].trim_end_matches(" (deleted)");
            let Some(file) = path.rsplit('/').next() else {
                continue;
            };
            let Some(&known) = sizes.get(file) else {
                continue;
            };
            // A file removed and made again under the same name (a new
            // directory reuses entry numbers) may be larger than when the
            // harness first mapped it.
            let now = std::fs::metadata(Path::new(dir.as_ref()).join(file))
                .map_or(0, |m| m.len() as usize);
            let size = known.max(now);
            let Some((range, _)) = line.split_once(' ') else {
                continue;
            };
            let Some((start, _)) = range.split_once('-') else {
                continue;
            };
            if let Ok(start) = usize::from_str_radix(start, 16) {
                // The file seen there now says how long the range is (an
                // address may have held another file before).
                self.ranges.retain(|&(s, _)| s != start);
                self.ranges.push((start, start + size));
            }
        }
    }

    fn contains(&self, ptr: *const u8, len: usize) -> bool {
        if len == 0 {
            // An empty slice may point anywhere (even be dangling).
            return true;
        }
        let p = ptr as usize;
        let inside =
            |&(s, e): &(usize, usize)| p >= s && p.checked_add(len).is_some_and(|end| end <= e);
        self.ranges.iter().any(inside) || self.any.iter().any(inside)
    }
}

/// Fails the case if the slice the library handed out (`ptr`, `len`) is
/// not inside one of its mappings of this case's files: checked before a
/// byte of it is read, so an out-of-bounds record is reported rather than
/// read.
fn check_bounds(
    mappings: &mut Mappings,
    dir: &Path,
    sizes: &BTreeMap<String, usize>,
    what: &str,
    ptr: *const u8,
    len: usize,
) {
    if !mappings.contains(ptr, len) {
        mappings.refresh(dir, sizes);
        if !mappings.contains(ptr, len) {
            oracle!("{what} of {len} bytes at {ptr:p} lies outside its segment");
        }
    }
}

/// What a borrowed topic record comes to, its bounds checked if it lies in
/// the segment (`in_place`, Backpressure; under Overwrite it is a validated
/// copy in the subscriber's own buffer).
fn borrowed(
    rec: shmbus::bus::Record<'_>,
    in_place: bool,
    mappings: &mut Mappings,
    dir: &Path,
    sizes: &BTreeMap<String, usize>,
) -> ReadRecord {
    if in_place {
        check_bounds(
            mappings,
            dir,
            sizes,
            "topic record",
            rec.as_ptr(),
            rec.len(),
        );
    }
    (
        rec.sequence(),
        in_place.then_some(rec.as_ptr()),
        rec.to_vec(),
        rec.record_type(),
        rec.is_intact(),
    )
}

// ---------------------------------------------------------------------------
// Models of what was committed (trusted until the ring's bytes are mutated)
// ---------------------------------------------------------------------------

#[derive(Default)]
struct SpscModel {
    /// Published and not yet read: (type, payload).
    visible: VecDeque<(u16, Vec<u8>)>,
    /// Staged by the producer, visible at its next publish.
    staged: Vec<(u16, Vec<u8>)>,
    trusted: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Seq {
    Committed(u16, Vec<u8>),
    /// Aborted, or claimed and never finished (may be reclaimed as a skip).
    NotCommitted,
}

struct LogModel {
    seqs: BTreeMap<u64, Seq>,
    policy: Policy,
    trusted: bool,
}

/// One SPSC ring instance (a removed ring and its successor are two).
struct Ring {
    file: String,
    map: Option<RawMap>,
    model: SpscModel,
    capacity: u64,
    max_payload: u32,
}

/// One broadcast log file.
struct Log {
    file: String,
    map: Option<RawMap>,
    model: LogModel,
    config: TopicConfig,
}

// ---------------------------------------------------------------------------
// A case
// ---------------------------------------------------------------------------

/// Counts of what a run did, for reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Cases run.
    pub cases: u64,
    /// Steps run.
    pub steps: u64,
    /// Mutations written.
    pub mutations: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Records read and checked against a model.
    pub checked_reads: u64,
}

/// A fuzzing process: one base directory for all its cases, each case a
/// namespace in it, removed after the case. The base directory itself
/// belongs to the caller (the smoke test's `TempNs`, the fuzz target's
/// per-process directory), who removes it.
pub struct Fuzzer {
    base: PathBuf,
    next: u64,
    /// What every case so far did.
    pub stats: Stats,
}

impl Fuzzer {
    /// A fuzzer whose cases live under `base`.
    pub fn new(base: &Path) -> Fuzzer {
        Fuzzer {
            base: base.to_owned(),
            next: 0,
            stats: Stats::default(),
        }
    }

    /// Runs one input. Panics (with the oracle's reason) on a failure.
    pub fn run(&mut self, data: &[u8]) {
        self.run_case(|base, ns_name| {
            let mut case = Case::new(base, ns_name, data)?;
            case.run();
            Some(case.stats)
        });
    }

    /// Runs one input as a work-queue case (see [`queue`]). Panics (with
    /// the oracle's reason) on a failure.
    pub fn run_queue(&mut self, data: &[u8]) {
        self.run_case(|base, ns_name| {
            let mut case = queue::QueueCase::new(base, ns_name, data)?;
            case.run();
            Some(case.stats)
        });
    }

    /// Runs one case in a fresh namespace under the base directory, and
    /// removes the namespace after it.
    fn run_case(&mut self, case: impl FnOnce(&Path, &str) -> Option<Stats>) {
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        let ns_name = format!("c{n}");
        let ns_path = self.base.join(&ns_name);
        let _ = std::fs::remove_dir_all(&ns_path);
        if let Some(stats) = case(&self.base, &ns_name) {
            self.stats.cases += 1;
            self.stats.steps += stats.steps;
            self.stats.mutations += stats.mutations;
            self.stats.errors += stats.errors;
            self.stats.checked_reads += stats.checked_reads;
        }
        let _ = std::fs::remove_dir_all(&ns_path);
    }
}

struct Pub {
    log: usize,
    p: Publisher,
}

struct Sub {
    log: usize,
    s: Subscriber,
    /// Where the subscriber should be: just past the last record it
    /// returned, or where a lap or an error left it.
    next: u64,
}

/// A record as a topic read returned it: (sequence, where it lay if read in
/// place, bytes, record type, whether its slot still held it).
type ReadRecord = (u64, Option<*const u8>, Vec<u8>, u16, bool);

/// What one subscriber call gave.
enum Got {
    Record {
        seq: u64,
        ptr: Option<*const u8>,
        payload: Vec<u8>,
        record_type: u16,
        intact: bool,
    },
    Lapped {
        missed: u64,
    },
    Nothing,
}

struct Case<'a> {
    input: Input<'a>,
    ns: Namespace,
    bus: Bus,
    /// Bus handles opened later (a second view of the same directory).
    extra_bus: Option<Bus>,
    dir_map: Option<RawMap>,
    dir_file: String,
    spsc_config: SpscConfig,
    rings: Vec<Ring>,
    producer: Option<(usize, Producer)>,
    consumer: Option<(usize, Consumer)>,
    topic_config: TopicConfig,
    topics: Vec<Topic>,
    logs: Vec<Log>,
    pubs: Vec<Option<Pub>>,
    subs: Vec<Sub>,
    mappings: Mappings,
    sizes: BTreeMap<String, usize>,
    stats: Stats,
    tag: u8,
    /// Steps run before mutations start.
    quiet: u64,
    open: OpenOptions,
}

/// What a nested step may not touch (the handle holding an open claim).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Busy {
    None,
    Producer,
    Publisher,
}

impl<'a> Case<'a> {
    fn new(base: &Path, ns_name: &str, data: &'a [u8]) -> Option<Case<'a>> {
        let mut input = Input { data, pos: 0 };
        let capacity = 256usize << input.below(5); // 256 ..= 4096
        let spsc_config = SpscConfig {
            capacity,
            max_payload: if input.bool() {
                None
            } else {
                Some(8 + input.below(120) as u32)
            },
            wakeups: input.bool(),
        };
        let topic_config = TopicConfig {
            slots: 4 << input.below(3), // 4, 8, 16
            max_payload: 8 + input.below(57) as u32,
            policy: Policy::Backpressure,
            max_subscribers: 1 + input.below(4) as u32,
            max_publishers: 1 + input.below(3) as u32,
            // The shortest the directory stores: a claim left hanging costs
            // its lap's next claimer this long.
            reclaim_after: Duration::from_millis(1),
        };
        trace!("case: {spsc_config:?} {topic_config:?}");
        // Steps before the first mutation: some cases never mutate, and
        // check the library against the models alone.
        let quiet = [0, 16, 64, MAX_STEPS][input.below(4)] as u64;
        let ns = Namespace::at(base, ns_name).ok()?;
        // A mutated header may read as "not yet initialised": wait for a
        // creator 1 ms, not the default 2 s.
        let open = OpenOptions {
            init_timeout: Duration::from_millis(1),
        };
        let bus = Bus::at_with(base, ns_name, open).ok()?;
        let mut case = Case {
            input,
            ns,
            bus,
            extra_bus: None,
            dir_map: None,
            dir_file: "directory.dir".to_owned(),
            spsc_config,
            rings: Vec::new(),
            producer: None,
            consumer: None,
            topic_config,
            topics: Vec::new(),
            logs: Vec::new(),
            pubs: Vec::new(),
            subs: Vec::new(),
            mappings: Mappings::default(),
            sizes: BTreeMap::new(),
            stats: Stats::default(),
            tag: 0,
            quiet,
            open,
        };
        case.dir_map = case.map_file("directory.dir");
        case.create_ring();
        for (i, policy) in [Policy::Backpressure, Policy::Overwrite]
            .into_iter()
            .enumerate()
        {
            let config = TopicConfig {
                policy,
                ..topic_config
            };
            if let Ok(t) = case.bus.topic(TOPICS[i], &config) {
                case.add_topic(t);
            }
        }
        let channel = case.bus.open_spsc(RING).ok();
        case.producer = channel
            .as_ref()
            .and_then(|c| c.producer().ok())
            .map(|p| (case.rings.len() - 1, p));
        case.consumer = channel
            .as_ref()
            .and_then(|c| c.consumer().ok())
            .map(|c| (case.rings.len() - 1, c));
        Some(case)
    }

    fn map_file(&mut self, file: &str) -> Option<RawMap> {
        let map = RawMap::open(&self.ns.path().join(file))?;
        let size = self.sizes.entry(file.to_owned()).or_insert(0);
        *size = (*size).max(map.len);
        Some(map)
    }

    fn refresh_mappings(&mut self) {
        self.mappings.refresh(self.ns.path(), &self.sizes);
    }

    /// Creates the channel [`RING`] (a new ring file, if it was removed);
    /// a call that opens the existing one adds no ring.
    fn create_ring(&mut self) {
        let created = self.bus.spsc(RING, &self.spsc_config);
        let Some(channel) = self.err(created) else {
            return;
        };
        if !channel.was_created() {
            return;
        }
        let file = format!("{}.spsc", channel.record().segment);
        let map = self.map_file(&file);
        let (capacity, max_payload) = self.spsc_config.validate().unwrap_or((256, 0));
        self.rings.push(Ring {
            file,
            map,
            model: SpscModel {
                trusted: true,
                ..SpscModel::default()
            },
            capacity,
            max_payload,
        });
    }

    /// Registers a topic handle; its log gets a model and a raw mapping the
    /// first time its file is seen.
    fn add_topic(&mut self, t: Topic) {
        let file = format!("{}.bcast", t.record().segment);
        trace!("  topic {} in {file}: {:?}", t.name(), t.config().policy);
        if !self.logs.iter().any(|l| l.file == file) {
            let map = self.map_file(&file);
            let config = *t.config();
            self.logs.push(Log {
                file,
                map,
                model: LogModel {
                    seqs: BTreeMap::new(),
                    policy: config.policy,
                    trusted: true,
                },
                config,
            });
        }
        if self.topics.len() < 6 {
            self.topics.push(t);
        }
    }

    fn log_of(&self, t: &Topic) -> Option<usize> {
        let file = format!("{}.bcast", t.record().segment);
        self.logs.iter().position(|l| l.file == file)
    }

    fn payload(&mut self, len: usize) -> Vec<u8> {
        self.tag = self.tag.wrapping_add(1);
        let tag = self.tag;
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    fn wait(&mut self) -> WaitStrategy {
        match self.input.below(4) {
            0 => WaitStrategy::BusySpin,
            1 => WaitStrategy::Yield,
            2 => WaitStrategy::BACKOFF,
            _ => WaitStrategy::BLOCKING,
        }
    }

    /// A timeout for a timed call: mostly none at all (the call then looks
    /// once or twice), else up to about half a millisecond.
    fn short_timeout(&mut self) -> Duration {
        let b = self.input.u8();
        if b < 192 {
            Duration::ZERO
        } else {
            Duration::from_micros(u64::from(b - 191) * 8)
        }
    }

    fn err<T, E>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(_) => {
                self.stats.errors += 1;
                None
            }
        }
    }

    fn run(&mut self) {
        while !self.input.done() && (self.stats.steps as usize) < MAX_STEPS {
            self.step(Busy::None);
        }
    }

    fn step(&mut self, busy: Busy) {
        self.stats.steps += 1;
        let mut op = self.input.u8();
        if op % 32 >= 24 && self.stats.steps <= self.quiet {
            op %= 24;
        }
        trace!(
            "step {}: op {}{}",
            self.stats.steps,
            op % 32,
            if busy == Busy::None { "" } else { " (nested)" }
        );
        match op % 32 {
            0..=2 if busy != Busy::Producer => self.spsc_claim(),
            3 if busy != Busy::Producer => self.spsc_send(),
            4 if busy != Busy::Producer => self.spsc_publish(),
            5 | 6 => self.spsc_read(),
            7 => self.spsc_read_timeout(),
            8 => self.spsc_batch(),
            9 => self.spsc_attach(busy),
            10 => self.spsc_inspect(),
            11..=13 if busy != Busy::Publisher => self.topic_claim(),
            14 if busy != Busy::Publisher => self.topic_publish(),
            15 if busy != Busy::Publisher => self.topic_reclaim_after(),
            16 | 17 => self.topic_read(),
            18 => self.topic_recv(),
            19 => self.topic_read_timeout(),
            20 => self.register(busy),
            21 => self.directory_op(),
            22 => self.topic_inspect(),
            23 if busy == Busy::None => self.file_op(),
            24..=27 => self.mutate_targeted(),
            28 | 29 => self.mutate_random(),
            _ => self.mutate_targeted(),
        }
    }

    // -- SPSC ---------------------------------------------------------------

    fn spsc_claim(&mut self) {
        let Some((gen, mut producer)) = self.producer.take() else {
            return;
        };
        let max = self.rings.get(gen).map_or(0, |r| r.max_payload) as usize;
        let len = self.input.below(max + 3);
        let record_type = self.input.u16();
        let end = self.input.below(8);
        let nested = self.input.below(4);
        let bytes = self.payload(len);
        match producer.try_claim(len) {
            Ok(mut slot) => {
                if slot.len() != len {
                    oracle!("spsc claim of {len} bytes gave {}", slot.len());
                }
                if !self.mappings.contains(slot.as_ptr(), len) {
                    self.refresh_mappings();
                    if !self.mappings.contains(slot.as_ptr(), len) {
                        oracle!("spsc write slot of {len} bytes lies outside the segment");
                    }
                }
                slot.copy_from_slice(&bytes);
                slot.set_record_type(record_type);
                for _ in 0..nested {
                    self.step(Busy::Producer);
                }
                let model = self.rings.get_mut(gen).map(|r| &mut r.model);
                match end {
                    0..=4 => {
                        api::spsc_commit(slot);
                        if let Some(m) = model {
                            m.visible.extend(m.staged.drain(..));
                            m.visible.push_back((record_type, bytes));
                        }
                    }
                    5 => {
                        slot.stage();
                        if let Some(m) = model {
                            m.staged.push((record_type, bytes));
                        }
                    }
                    // Aborted, or left by a producer that died: either way
                    // nothing was written but the payload.
                    _ => slot.abort(),
                }
            }
            Err(_) => self.stats.errors += 1,
        }
        self.producer = Some((gen, producer));
    }

    fn spsc_send(&mut self) {
        let Some((gen, mut producer)) = self.producer.take() else {
            return;
        };
        let max = self.rings.get(gen).map_or(0, |r| r.max_payload) as usize;
        let len = self.input.below(max + 3);
        let record_type = self.input.u16();
        let bytes = self.payload(len);
        let timed = self.input.below(4) == 0;
        let wait = self.wait();
        let timeout = self.short_timeout();
        let blocking = matches!(wait, WaitStrategy::Blocking { .. });
        let sent = if timed {
            // A timed claim publishes what was staged before it waits; one
            // that cannot sleep returns before it looks at the ring.
            match producer.claim_timeout(len, wait, timeout) {
                Ok(_) if blocking => oracle!("a Blocking spsc claim returned a slot"),
                Err(e) if blocking != (e == spsc::ClaimError::CannotSleep) => {
                    oracle!("spsc claim with {wait:?} returned {e:?}")
                }
                Err(spsc::ClaimError::CannotSleep) => false,
                Ok(mut slot) => {
                    slot.copy_from_slice(&bytes);
                    slot.set_record_type(record_type);
                    api::spsc_commit(slot);
                    true
                }
                Err(_) => {
                    if let Some(r) = self.rings.get_mut(gen) {
                        let m = &mut r.model;
                        m.visible.extend(m.staged.drain(..));
                    }
                    false
                }
            }
        } else {
            producer.try_send(record_type, &bytes).is_ok()
        };
        if sent {
            if let Some(r) = self.rings.get_mut(gen) {
                let m = &mut r.model;
                m.visible.extend(m.staged.drain(..));
                m.visible.push_back((record_type, bytes));
            }
        } else {
            self.stats.errors += 1;
        }
        self.producer = Some((gen, producer));
    }

    fn spsc_publish(&mut self) {
        if let Some((gen, producer)) = self.producer.as_mut() {
            producer.flush();
            let _ = producer.position();
            let _ = producer.consumer_alive();
            if let Some(r) = self.rings.get_mut(*gen) {
                let m = &mut r.model;
                m.visible.extend(m.staged.drain(..));
            }
        }
    }

    /// Checks a record the consumer read against the ring's model.
    fn spsc_check(&mut self, gen: usize, ptr: *const u8, payload: &[u8], record_type: u16) {
        self.stats.checked_reads += 1;
        let Some(ring) = self.rings.get(gen) else {
            return;
        };
        // A mutated control block may declare another maximum, which the
        // library accepts up to half the ring.
        let bound = if ring.model.trusted {
            ring.max_payload as u64
        } else {
            ring.capacity / 2
        };
        if payload.len() as u64 > bound {
            oracle!(
                "spsc record of {} bytes exceeds max payload {bound}",
                payload.len()
            );
        }
        if !self.mappings.contains(ptr, payload.len()) {
            self.refresh_mappings();
            if !self.mappings.contains(ptr, payload.len()) {
                oracle!(
                    "spsc record of {} bytes lies outside the segment",
                    payload.len()
                );
            }
        }
        let Some(ring) = self.rings.get_mut(gen) else {
            return;
        };
        if !ring.model.trusted {
            return;
        }
        match ring.model.visible.pop_front() {
            Some((t, bytes)) => {
                if t != record_type || bytes != payload {
                    oracle!(
                        "spsc read type {record_type} {payload:?}, expected type {t} {bytes:?}"
                    );
                }
            }
            None => oracle!(
                "spsc read a record (type {record_type}, {} bytes) nobody published",
                payload.len()
            ),
        }
    }

    fn spsc_empty(&self, gen: usize) {
        if let Some(r) = self.rings.get(gen) {
            if r.model.trusted && !r.model.visible.is_empty() {
                oracle!(
                    "spsc read says empty with {} published records unread",
                    r.model.visible.len()
                );
            }
        }
    }

    fn spsc_read(&mut self) {
        let Some((gen, mut consumer)) = self.consumer.take() else {
            return;
        };
        let how = self.input.below(3);
        match consumer.try_read() {
            Ok(rec) => {
                let ptr = rec.as_ptr();
                check_bounds(
                    &mut self.mappings,
                    self.ns.path(),
                    &self.sizes,
                    "spsc record",
                    ptr,
                    rec.len(),
                );
                let payload = rec.to_vec();
                let t = rec.record_type();
                if how == 0 {
                    rec.defer_release();
                } else {
                    drop(rec);
                }
                self.spsc_check(gen, ptr, &payload, t);
            }
            Err(e) => {
                self.stats.errors += 1;
                if e == shmbus::ring::spsc::RecvError::Empty {
                    self.spsc_empty(gen);
                }
            }
        }
        if how == 2 {
            consumer.release();
        }
        let _ = consumer.pending_bytes();
        let _ = consumer.position();
        self.consumer = Some((gen, consumer));
    }

    fn spsc_read_timeout(&mut self) {
        let Some((gen, mut consumer)) = self.consumer.take() else {
            return;
        };
        let wait = self.wait();
        let timeout = self.short_timeout();
        // Only a ring with wake-ups lets a Blocking read sleep; the others
        // say so before they look at the ring.
        let cannot_sleep = matches!(wait, WaitStrategy::Blocking { .. }) && !consumer.can_sleep();
        match consumer.read_timeout(wait, timeout) {
            Ok(_) if cannot_sleep => oracle!("a Blocking read without wake-ups returned a record"),
            Err(e) if cannot_sleep != (e == spsc::RecvError::CannotSleep) => {
                oracle!("spsc read with {wait:?} returned {e:?}")
            }
            Ok(rec) => {
                let ptr = rec.as_ptr();
                check_bounds(
                    &mut self.mappings,
                    self.ns.path(),
                    &self.sizes,
                    "spsc record",
                    ptr,
                    rec.len(),
                );
                let payload = rec.to_vec();
                let t = rec.record_type();
                drop(rec);
                self.spsc_check(gen, ptr, &payload, t);
            }
            Err(_) => self.stats.errors += 1,
        }
        self.consumer = Some((gen, consumer));
    }

    fn spsc_batch(&mut self) {
        let Some((gen, mut consumer)) = self.consumer.take() else {
            return;
        };
        let max = self.input.below(8);
        let mut got = Vec::new();
        let (mappings, dir, sizes) = (&mut self.mappings, self.ns.path(), &self.sizes);
        let r = consumer.read_batch(max, |t, p| {
            check_bounds(
                mappings,
                dir,
                sizes,
                "spsc batch record",
                p.as_ptr(),
                p.len(),
            );
            got.push((t, p.as_ptr(), p.to_vec()))
        });
        if r.is_err() {
            self.stats.errors += 1;
        }
        for (t, ptr, p) in got {
            self.spsc_check(gen, ptr, &p, t);
        }
        self.consumer = Some((gen, consumer));
    }

    /// Opens the channel [`RING`] by name and attaches to it with `role`.
    fn attach<T>(&mut self, role: impl FnOnce(&Channel) -> Result<T, BusError>) -> Option<T> {
        let attached = self.bus.open_spsc(RING).and_then(|c| role(&c));
        self.err(attached)
    }

    fn spsc_attach(&mut self, busy: Busy) {
        let newest = self.rings.len().wrapping_sub(1);
        if self.input.bool() {
            if busy == Busy::Producer {
                return;
            }
            if let Some((gen, p)) = self.producer.take() {
                drop(p);
                if let Some(r) = self.rings.get_mut(gen) {
                    let m = &mut r.model;
                    m.visible.extend(m.staged.drain(..));
                }
            } else if let Some(p) = self.attach(|c| c.producer()) {
                self.producer = Some((newest, p));
            }
        } else if let Some((_, c)) = self.consumer.take() {
            drop(c);
        } else if let Some(c) = self.attach(|c| c.consumer()) {
            self.consumer = Some((newest, c));
        }
    }

    /// Removes or re-creates the ring, unlinks a log or the directory by
    /// hand, or truncates a segment file.
    fn file_op(&mut self) {
        match self.input.below(6) {
            0 => {
                let _ = self.bus.remove_spsc(RING);
            }
            1 => self.create_ring(),
            2 => {
                let Some(file) = self.pick_file() else {
                    return;
                };
                if file.ends_with(".spsc") {
                    return;
                }
                let _ = std::fs::remove_file(self.ns.path().join(&file));
                // A file made later under this name is another log.
                let n = self.logs.len();
                for l in self.logs.iter_mut().filter(|l| l.file == file) {
                    l.file = format!("{file}#removed{n}");
                }
            }
            _ => {
                if avoided(Finding::TruncationSigbus) {
                    return;
                }
                let Some(file) = self.pick_file() else {
                    return;
                };
                let path = self.ns.path().join(&file);
                let len = self.sizes.get(&file).copied().unwrap_or(0);
                let to = [0, 128, 4096, len / 2, len.saturating_sub(1)][self.input.below(5)];
                let Ok(f) = FileOptions::new().write(true).open(&path) else {
                    return;
                };
                // Truncated pages are replaced by anonymous ones.
                self.mappings.truncated = true;
                if f.set_len(to as u64).is_err() {
                    return;
                }
                trace!("  truncated {file} to {to}");
                self.truncated(&file, to);
            }
        }
    }

    /// One of this case's segment files, by name.
    fn pick_file(&mut self) -> Option<String> {
        let mut files: Vec<String> = self.logs.iter().map(|l| l.file.clone()).collect();
        files.retain(|f| !f.contains('#'));
        files.push(self.dir_file.clone());
        if let Some(r) = self.rings.last() {
            files.push(r.file.clone());
        }
        Some(files[self.input.below(files.len())].clone())
    }

    /// Notes that `file` now has `to` bytes: the harness's own mapping must
    /// not touch the rest, and its model no longer holds.
    fn truncated(&mut self, file: &str, to: usize) {
        let shrink = |m: &Option<RawMap>| {
            if let Some(m) = m {
                m.live.set(m.live.get().min(to));
            }
        };
        if file == self.dir_file {
            shrink(&self.dir_map);
        }
        for l in self.logs.iter_mut().filter(|l| l.file == file) {
            shrink(&l.map);
            l.model.trusted = false;
        }
        if let Some(r) = self.rings.last_mut().filter(|r| r.file == file) {
            shrink(&r.map);
            r.model.trusted = false;
        }
    }

    fn spsc_inspect(&mut self) {
        let max_records = self.input.below(8);
        let max_copy = self.input.below(64);
        if self.input.bool() {
            let r = inspect::inspect_spsc(&self.ns, RING, &self.open);
            self.err(r);
        } else {
            let r = inspect::spsc_records(&self.ns, RING, &self.open, max_records, max_copy);
            if let Some((_, records)) = self.err(r) {
                for rec in records {
                    if rec.payload.len() > max_copy {
                        oracle!(
                            "inspector copied {} bytes with max_copy {max_copy}",
                            rec.payload.len()
                        );
                    }
                }
            }
        }
        let _ = inspect::list_directory(&self.ns, &self.open);
    }

    // -- Broadcast ----------------------------------------------------------

    fn pick_pub(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.pubs.len())
            .filter(|&i| self.pubs[i].is_some())
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[self.input.below(live.len())])
    }

    fn pick_sub(&mut self) -> Option<usize> {
        if self.subs.is_empty() {
            return None;
        }
        Some(self.input.below(self.subs.len()))
    }

    fn topic_claim(&mut self) {
        let Some(i) = self.pick_pub() else {
            return;
        };
        let Some(Pub {
            log,
            p: mut publisher,
        }) = self.pubs[i].take()
        else {
            return;
        };
        let max = publisher.max_payload() as usize;
        let len = self.input.below(max + 3);
        let record_type = self.input.u16();
        let end = self.input.below(16);
        let nested = self.input.below(4);
        let bytes = self.payload(len);
        let in_place = publisher.policy() == Policy::Backpressure;
        match publisher.try_claim(len) {
            Ok(mut claim) => {
                let seq = claim.sequence();
                if claim.len() != len {
                    oracle!("topic claim of {len} bytes gave {}", claim.len());
                }
                // Under Overwrite a claim is written in the publisher's own
                // staging buffer, copied into the slot by the commit.
                if in_place && !self.mappings.contains(claim.as_ptr(), len) {
                    self.refresh_mappings();
                    if !self.mappings.contains(claim.as_ptr(), len) {
                        oracle!("topic claim of {len} bytes lies outside the segment");
                    }
                }
                self.claimed(log, seq);
                claim.copy_from_slice(&bytes);
                claim.set_record_type(record_type);
                for _ in 0..nested {
                    self.step(Busy::Publisher);
                }
                match end {
                    0..=12 => {
                        if let Some(s) = api::topic_commit(claim) {
                            if s != seq {
                                oracle!("commit of claim {seq} returned {s}");
                            }
                            self.committed(log, seq, record_type, bytes);
                        }
                    }
                    13 | 14 => drop(claim),
                    // Left hanging, as by a publisher that stalled or died.
                    _ => core::mem::forget(claim),
                }
            }
            Err(_) => self.stats.errors += 1,
        }
        let _ = publisher.published();
        self.pubs[i] = Some(Pub { log, p: publisher });
    }

    fn claimed(&mut self, log: usize, seq: u64) {
        if let Some(l) = self.logs.get_mut(log) {
            if l.model.trusted && l.model.seqs.insert(seq, Seq::NotCommitted).is_some() {
                oracle!("sequence {seq} claimed twice");
            }
        }
    }

    fn committed(&mut self, log: usize, seq: u64, record_type: u16, bytes: Vec<u8>) {
        if let Some(l) = self.logs.get_mut(log) {
            if l.model.trusted {
                l.model.seqs.insert(seq, Seq::Committed(record_type, bytes));
            }
        }
    }

    fn topic_publish(&mut self) {
        let Some(i) = self.pick_pub() else {
            return;
        };
        let Some(Pub {
            log,
            p: mut publisher,
        }) = self.pubs[i].take()
        else {
            return;
        };
        let max = publisher.max_payload() as usize;
        let len = self.input.below(max + 3);
        let record_type = self.input.u16();
        let bytes = self.payload(len);
        match publisher.try_send(record_type, &bytes) {
            Ok(seq) => {
                self.claimed(log, seq);
                self.committed(log, seq, record_type, bytes);
            }
            Err(_) => self.stats.errors += 1,
        }
        self.pubs[i] = Some(Pub { log, p: publisher });
    }

    fn topic_reclaim_after(&mut self) {
        let Some(i) = self.pick_pub() else {
            return;
        };
        let Some(Pub {
            log,
            p: mut publisher,
        }) = self.pubs[i].take()
        else {
            return;
        };
        let max = publisher.max_payload() as usize;
        let len = self.input.below(max + 1);
        let wait = self.wait();
        let timeout = self.short_timeout();
        let bytes = self.payload(len);
        let blocking = matches!(wait, WaitStrategy::Blocking { .. });
        match publisher.claim_timeout(len, wait, timeout) {
            Ok(_) if blocking => oracle!("a Blocking topic claim returned a claim"),
            Err(e) if blocking != (e == broadcast::ClaimError::CannotSleep) => {
                oracle!("topic claim with {wait:?} returned {e:?}")
            }
            Ok(mut claim) => {
                let seq = claim.sequence();
                self.claimed(log, seq);
                claim.copy_from_slice(&bytes);
                if let Some(s) = api::topic_commit(claim) {
                    if s != seq {
                        oracle!("commit of claim {seq} returned {s}");
                    }
                    self.committed(log, seq, 0, bytes);
                }
            }
            Err(_) => self.stats.errors += 1,
        }
        self.pubs[i] = Some(Pub { log, p: publisher });
    }

    /// Checks what subscriber `k` got from one call against the log's model.
    ///
    /// The harness keeps the position each subscriber should be at
    /// (`Sub::next`): the position may only move past records that were
    /// never committed (skips), past records it returned, or past records a
    /// `Lapped` error counted. Anything else is a silent loss.
    fn topic_outcome(&mut self, k: usize, got: Got) {
        let Some(sub) = self.subs.get(k) else {
            return;
        };
        let (log, next, position, missed_total) =
            (sub.log, sub.next, sub.s.position(), sub.s.missed());
        let Some(l) = self.logs.get(log) else {
            return;
        };
        let max_payload = l.config.max_payload as usize;
        if let Got::Record {
            ptr, ref payload, ..
        } = got
        {
            self.stats.checked_reads += 1;
            if payload.len() > max_payload {
                oracle!(
                    "topic record of {} bytes exceeds max payload {max_payload}",
                    payload.len()
                );
            }
            if let Some(ptr) = ptr {
                if !self.mappings.contains(ptr, payload.len()) {
                    self.refresh_mappings();
                    if !self.mappings.contains(ptr, payload.len()) {
                        oracle!(
                            "topic record of {} bytes lies outside the segment",
                            payload.len()
                        );
                    }
                }
            }
        }
        let new_next = match got {
            Got::Record { seq, .. } => seq.wrapping_add(1),
            _ => position,
        };
        if let Some(sub) = self.subs.get_mut(k) {
            sub.next = new_next;
        }
        let Some(l) = self.logs.get(log) else {
            return;
        };
        if !l.model.trusted {
            return;
        }
        let policy = l.model.policy;
        let committed_in = |from: u64, to: u64| -> Vec<u64> {
            if from >= to {
                return Vec::new();
            }
            l.model
                .seqs
                .range(from..to)
                .filter(|(_, s)| matches!(s, Seq::Committed(..)))
                .map(|(seq, _)| *seq)
                .collect()
        };
        match got {
            Got::Record {
                seq,
                ref payload,
                record_type,
                intact,
                ..
            } => {
                if !intact {
                    oracle!("record {seq} torn with no writer running");
                }
                if seq < next {
                    oracle!("subscriber at {next} read older record {seq}");
                }
                match l.model.seqs.get(&seq) {
                    Some(Seq::Committed(t, bytes)) => {
                        if *t != record_type || bytes.as_slice() != payload.as_slice() {
                            oracle!(
                                "record {seq} read as type {record_type} {payload:?}, committed as type {t} {bytes:?}"
                            );
                        }
                    }
                    other => oracle!(
                        "subscriber read record {seq} (type {record_type}, {} bytes) that was {other:?}",
                        payload.len()
                    ),
                }
                let lost = committed_in(next, seq);
                if !lost.is_empty() {
                    oracle!(
                        "subscriber at {next} read {seq}: committed records {lost:?} passed over silently ({policy:?})"
                    );
                }
            }
            Got::Lapped { missed } => {
                if policy == Policy::Backpressure {
                    oracle!("a Backpressure subscriber was lapped ({missed} missed)");
                }
                let lost = committed_in(next, position);
                if lost.len() as u64 > missed {
                    oracle!(
                        "lapped from {next} to {position} over committed {lost:?} but told {missed} missed"
                    );
                }
            }
            Got::Nothing => {
                let lost = committed_in(next, position);
                if !lost.is_empty() {
                    oracle!(
                        "subscriber moved from {next} to {position} with no record or lap, over committed {lost:?}"
                    );
                }
            }
        }
        if policy == Policy::Backpressure && missed_total != 0 {
            // Under Backpressure the only records a subscriber misses are
            // claims never committed that a waiter reclaimed (their
            // publisher stalled past the claim timeout): at most every
            // unfinished claim it has passed.
            let unfinished = l
                .model
                .seqs
                .range(..position)
                .filter(|(_, s)| matches!(s, Seq::NotCommitted))
                .count() as u64;
            if missed_total > unfinished {
                oracle!(
                    "a Backpressure subscriber counts {missed_total} missed, more than the {unfinished} unfinished claims it passed"
                );
            }
        }
    }

    /// What a borrowed record or an error comes to, for `topic_outcome`.
    fn got(&mut self, r: Result<ReadRecord, shmbus::bus::RecvError>) -> Got {
        match r {
            Ok((seq, ptr, payload, record_type, intact)) => Got::Record {
                seq,
                ptr,
                payload,
                record_type,
                intact,
            },
            Err(shmbus::bus::RecvError::Lapped { missed }) => {
                self.stats.errors += 1;
                Got::Lapped { missed }
            }
            Err(_) => {
                self.stats.errors += 1;
                Got::Nothing
            }
        }
    }

    fn topic_read(&mut self) {
        let Some(k) = self.pick_sub() else {
            return;
        };
        let how = self.input.below(3);
        let sub = &mut self.subs[k].s;
        let (mappings, dir, sizes) = (&mut self.mappings, self.ns.path(), &self.sizes);
        let in_place = sub.policy() == Policy::Backpressure;
        let r = sub
            .try_read()
            .map(|rec| borrowed(rec, in_place, mappings, dir, sizes));
        if how == 0 {
            sub.release();
        }
        let got = self.got(r);
        self.topic_outcome(k, got);
    }

    fn topic_recv(&mut self) {
        let Some(k) = self.pick_sub() else {
            return;
        };
        let size = self.input.below(80);
        let timed = self.input.below(4) == 0;
        let wait = self.wait();
        let timeout = self.short_timeout();
        let mut buf = vec![0u8; size];
        let sub = &mut self.subs[k].s;
        let r = if timed {
            sub.recv_timeout(&mut buf, wait, timeout)
        } else {
            sub.try_recv(&mut buf)
        };
        let after = sub.position();
        let got = match r {
            Ok((record_type, len)) => {
                if len > buf.len() {
                    oracle!("try_recv returned {len} bytes into a {size}-byte buffer");
                }
                // try_recv moves the cursor just past the record it copied.
                Got::Record {
                    seq: after.wrapping_sub(1),
                    ptr: None,
                    payload: buf[..len].to_vec(),
                    record_type,
                    intact: true,
                }
            }
            Err(e) => self.got(Err(e)),
        };
        self.topic_outcome(k, got);
    }

    fn topic_read_timeout(&mut self) {
        let Some(k) = self.pick_sub() else {
            return;
        };
        let wait = self.wait();
        let timeout = self.short_timeout();
        let sub = &mut self.subs[k].s;
        let (mappings, dir, sizes) = (&mut self.mappings, self.ns.path(), &self.sizes);
        let in_place = sub.policy() == Policy::Backpressure;
        let r = sub
            .read_timeout(wait, timeout)
            .map(|rec| borrowed(rec, in_place, mappings, dir, sizes));
        let got = self.got(r);
        self.topic_outcome(k, got);
    }

    fn register(&mut self, busy: Busy) {
        if self.topics.is_empty() {
            return;
        }
        let t = self.input.below(self.topics.len());
        match self.input.below(6) {
            0 | 1 => {
                let live = self.pubs.iter().filter(|p| p.is_some()).count();
                if live >= MAX_PUBLISHERS {
                    if busy == Busy::Publisher {
                        return;
                    }
                    // Drop one to make room.
                    if let Some(i) = self.pick_pub() {
                        self.pubs[i] = None;
                    }
                    return;
                }
                let Some(log) = self.log_of(&self.topics[t]) else {
                    return;
                };
                let r = self.topics[t].publisher();
                if let Some(p) = self.err(r) {
                    self.pubs.push(Some(Pub { log, p }));
                }
            }
            2..=4 => {
                if self.subs.len() >= MAX_SUBSCRIBERS {
                    let k = self.input.below(self.subs.len());
                    self.subs.swap_remove(k);
                    return;
                }
                let Some(log) = self.log_of(&self.topics[t]) else {
                    return;
                };
                let start = if self.input.bool() {
                    StartAt::Tail
                } else {
                    StartAt::Oldest
                };
                let r = match self.input.below(3) {
                    0 => {
                        let name = DURABLE[self.input.below(DURABLE.len())];
                        self.topics[t].durable_subscriber(name, start)
                    }
                    _ => self.topics[t].subscriber(start),
                };
                if let Some(s) = self.err(r) {
                    let next = s.position();
                    self.subs.push(Sub { log, s, next });
                }
            }
            _ => {
                if !self.subs.is_empty() {
                    let k = self.input.below(self.subs.len());
                    self.subs.swap_remove(k);
                }
            }
        }
    }

    fn directory_op(&mut self) {
        let name = TOPICS[self.input.below(TOPICS.len())];
        match self.input.below(5) {
            0 | 1 => {
                let policy = if self.input.bool() {
                    Policy::Backpressure
                } else {
                    Policy::Overwrite
                };
                let mut config = TopicConfig {
                    policy,
                    ..self.topic_config
                };
                if self.input.below(4) == 0 {
                    config.slots *= 2;
                }
                let r = self.bus.topic(name, &config);
                if let Some(t) = self.err(r) {
                    self.add_topic(t);
                }
            }
            2 => {
                let r = self.bus.open_topic(name);
                if let Some(t) = self.err(r) {
                    self.add_topic(t);
                }
            }
            3 => {
                let _ = self.bus.topics();
            }
            _ => {
                if self.extra_bus.is_none() {
                    let base = self.ns.path().parent().map(Path::to_path_buf);
                    if let Some(base) = base {
                        self.extra_bus = self.err(Bus::at_with(base, self.ns.name(), self.open));
                    }
                } else if let Some(b) = &self.extra_bus {
                    let r = b.open_topic(name);
                    if let Some(t) = self.err(r) {
                        self.add_topic(t);
                    }
                }
            }
        }
    }

    fn topic_inspect(&mut self) {
        let name = TOPICS[self.input.below(TOPICS.len())];
        let max = self.input.below(8);
        match self.input.below(3) {
            0 => {
                let r = inspect::list_topics(&self.ns, &self.open);
                self.err(r);
            }
            1 => {
                let r = inspect::inspect_topic(&self.ns, name, &self.open);
                self.err(r);
            }
            _ => {
                let r = inspect::topic_records(&self.ns, name, &self.open, max);
                if let Some((_, records)) = self.err(r) {
                    if records.len() > max {
                        oracle!("inspector returned {} records, asked {max}", records.len());
                    }
                }
            }
        }
    }

    // -- Mutations ------------------------------------------------------------

    /// An interesting value near `cur` (see [`Input::value`]).
    fn value(&mut self, cur: u64, scale: u64) -> u64 {
        self.input.value(cur, scale)
    }

    /// A record header word (see [`Input::header_word`]).
    fn header_word(&mut self, max_len: u64) -> u64 {
        self.input.header_word(max_len)
    }

    fn untrust_ring(&mut self, gen: usize) {
        if let Some(r) = self.rings.get_mut(gen) {
            r.model.trusted = false;
        }
    }

    fn untrust_log(&mut self, log: usize) {
        if let Some(l) = self.logs.get_mut(log) {
            l.model.trusted = false;
        }
    }

    /// Undoes the mutations that would only rediscover an open finding.
    fn sanitize(&mut self) {
        if avoided(Finding::LogClaimTimeout) {
            for l in &self.logs {
                if let Some(m) = &l.map {
                    let ns = l.config.reclaim_after.as_nanos() as u64;
                    let (f, w) = field!(BroadcastControl, reclaim_after_ns);
                    let off = BROADCAST_CONTROL_OFFSET + f;
                    if m.read_n(off, w) != ns {
                        m.write_n(off, w, ns);
                    }
                }
            }
        }
        if avoided(Finding::PositionOverflow) {
            let clamp = |m: &RawMap, (off, w): (usize, usize)| {
                let v = m.read_n(off, w);
                if v >= 1 << 62 {
                    m.write_n(off, w, v & ((1 << 62) - 1));
                }
            };
            let at = |base: usize, (f, w): (usize, usize)| (base + f, w);
            for r in &self.rings {
                if let Some(m) = &r.map {
                    clamp(m, at(SPSC_CONTROL_OFFSET, field!(SpscControl, tail)));
                    clamp(m, at(SPSC_CONTROL_OFFSET, field!(SpscControl, head)));
                }
            }
            for l in &self.logs {
                if let Some(m) = &l.map {
                    clamp(
                        m,
                        at(BROADCAST_CONTROL_OFFSET, field!(BroadcastControl, tail)),
                    );
                    clamp(
                        m,
                        at(BROADCAST_CONTROL_OFFSET, field!(BroadcastControl, gate)),
                    );
                    for i in 0..l.config.max_subscribers as usize {
                        let slot = BROADCAST_SUBSCRIBERS_OFFSET + i * size_of::<SubscriberSlot>();
                        clamp(m, at(slot, field!(SubscriberSlot, cursor)));
                    }
                }
            }
            if let Some(m) = &self.dir_map {
                for e in 0..dir_entries(m) {
                    // The epoch: the high half of the entry's state word.
                    let off = dir_entry(e) + 4;
                    let epoch = m.read_u32(off);
                    if epoch >= 1 << 31 {
                        m.write_u32(off, epoch & ((1 << 31) - 1));
                    }
                }
            }
        }
        if avoided(Finding::DeadCreatorWait) {
            if let Some(m) = &self.dir_map {
                for e in 0..dir_entries(m) {
                    // Entry state (low half of the state word): CREATING
                    // becomes READY.
                    if m.read_u32(dir_entry(e)) == 1 {
                        m.write_u32(dir_entry(e), 2);
                    }
                }
            }
        }
    }

    fn mutate_random(&mut self) {
        self.mutate_random_raw();
        self.sanitize();
    }

    fn mutate_random_raw(&mut self) {
        self.stats.mutations += 1;
        let n = self.input.below(8) + 1;
        let mut bytes = [0u8; 8];
        for b in bytes.iter_mut().take(n) {
            *b = self.input.u8();
        }
        let target = self.input.below(3);
        let off = self.input.u32() as usize;
        match target {
            0 => {
                if self.rings.is_empty() {
                    return;
                }
                let gen = self.input.below(self.rings.len());
                if let Some(m) = &self.rings[gen].map {
                    m.write(off % m.len, &bytes[..n]);
                }
                self.untrust_ring(gen);
            }
            1 => {
                if self.logs.is_empty() {
                    return;
                }
                let log = self.input.below(self.logs.len());
                if let Some(m) = &self.logs[log].map {
                    m.write(off % m.len, &bytes[..n]);
                }
                self.untrust_log(log);
            }
            _ => {
                if let Some(m) = &self.dir_map {
                    // Most of a directory is free entries; aim at the used start.
                    let span = m.len.min(dir_entry(16));
                    m.write(off % span, &bytes[..n]);
                }
            }
        }
    }

    fn mutate_targeted(&mut self) {
        self.stats.mutations += 1;
        match self.input.below(8) {
            0..=2 => self.mutate_spsc(),
            3..=6 => self.mutate_log(),
            _ => self.mutate_directory(),
        }
        self.sanitize();
    }

    fn mutate_spsc(&mut self) {
        if self.rings.is_empty() {
            return;
        }
        let gen = if self.input.below(4) == 0 {
            self.input.below(self.rings.len())
        } else {
            self.rings.len() - 1
        };
        let cap = self.rings[gen].capacity;
        let maxp = u64::from(self.rings[gen].max_payload);
        let field = self.input.below(12);
        let ctl = |(f, w): (usize, usize)| (SPSC_CONTROL_OFFSET + f, w);
        let tail_at = ctl(field!(SpscControl, tail));
        let head_at = ctl(field!(SpscControl, head));
        let Some(m) = self.rings[gen].map.as_ref() else {
            return;
        };
        let tail = m.read_n(tail_at.0, tail_at.1);
        let head = m.read_n(head_at.0, head_at.1);
        let mask = cap.wrapping_sub(1);
        // ((offset, width), scale)
        let (at, scale) = match field {
            0 => (tail_at, cap),
            1 => (head_at, cap),
            2 => (ctl(field!(SpscControl, capacity)), cap),
            3 => (ctl(field!(SpscControl, max_payload)), cap),
            4 => (ctl(field!(SpscControl, flags)), 1),
            5 => (ctl(field!(SpscControl, wake_seq)), 1),
            6 => (ctl(field!(SpscControl, sleepers)), 1),
            // Segment state: 1 is poisoned.
            7 => (field!(SegmentHeader, state), 1),
            _ => {
                // A record header at or near the head or the tail.
                let pos = if field & 1 == 0 { head } else { tail };
                let delta = 8 * u64::from(self.input.u8() % 16);
                let idx = pos.wrapping_add(delta) & mask & !7;
                let word = self.header_word(maxp);
                let Some(m) = self.rings[gen].map.as_ref() else {
                    return;
                };
                m.write_u64(SPSC_DATA_OFFSET + idx as usize, word);
                self.untrust_ring(gen);
                return;
            }
        };
        let cur = m.read_n(at.0, at.1);
        let v = self.value(cur, scale);
        if let Some(m) = self.rings[gen].map.as_ref() {
            m.write_n(at.0, at.1, v);
        }
        self.untrust_ring(gen);
    }

    fn mutate_log(&mut self) {
        if self.logs.is_empty() {
            return;
        }
        let log = self.input.below(self.logs.len());
        let c = self.logs[log].config;
        let slots = u64::from(c.slots);
        let stride = c.slot_stride();
        let geometry = c.geometry();
        let (pubs_off, recs_off) = (geometry.writers_offset(), geometry.records_offset());
        let ctl = |(f, w): (usize, usize)| (BROADCAST_CONTROL_OFFSET + f, w);
        let tail_at = ctl(field!(BroadcastControl, tail));
        let Some(m) = self.logs[log].map.as_ref() else {
            return;
        };
        let tail = m.read_n(tail_at.0, tail_at.1);
        let field = self.input.below(16);
        let (at, scale) = match field {
            0 | 1 => (tail_at, slots),
            2 => (ctl(field!(BroadcastControl, gate)), slots),
            3 => (ctl(field!(BroadcastControl, registrations)), 1),
            4 => (ctl(field!(BroadcastControl, wake_seq)), 1),
            5 => (ctl(field!(BroadcastControl, sleepers)), 1),
            6 => {
                // An immutable control field (checked only on open).
                let f = [
                    field!(BroadcastControl, slots),
                    field!(BroadcastControl, slot_stride),
                    field!(BroadcastControl, max_payload),
                    field!(BroadcastControl, policy),
                    field!(BroadcastControl, max_subscribers),
                    field!(BroadcastControl, max_publishers),
                    field!(BroadcastControl, reclaim_after_ns),
                ][self.input.below(7)];
                (ctl(f), 1_000_000)
            }
            7 | 8 => {
                // A subscriber slot field.
                let i = self.input.below(c.max_subscribers as usize);
                let base = BROADCAST_SUBSCRIBERS_OFFSET + i * size_of::<SubscriberSlot>();
                let (f, w) = match self.input.below(6) {
                    0 => field!(SubscriberSlot, state),
                    1 | 2 => field!(SubscriberSlot, cursor),
                    3 => field!(SubscriberSlot, name_len),
                    4 => field!(SubscriberSlot, sleeping),
                    _ => field!(SubscriberSlot, counters.missed),
                };
                ((base + f, w), if f == 0 { 1 } else { slots })
            }
            9 => {
                let j = self.input.below(c.max_publishers as usize);
                let base = pubs_off + j * size_of::<PublisherSlot>();
                let (f, w) = if self.input.bool() {
                    field!(PublisherSlot, state)
                } else {
                    field!(PublisherSlot, counters.records)
                };
                ((base + f, w), 1)
            }
            // Segment state: 1 is poisoned.
            10 => (field!(SegmentHeader, state), 1),
            _ => {
                // A record slot near the tail: its stamp or its word.
                let back = u64::from(self.input.u8() % 20);
                let seq = tail.wrapping_sub(back).wrapping_add(2);
                let slot = (seq & (slots - 1)) as usize;
                let base = recs_off + slot * stride;
                if field & 1 == 0 {
                    let (f, w) = field!(RecordSlotHeader, stamp);
                    // A stamp of a nearby sequence, in any state, or a value.
                    let near = self.value(seq, slots) & ((1 << 60) - 1);
                    let stamp = match self.input.below(6) {
                        0..=3 => stamp_committed(near) | self.input.below(4) as u64,
                        4 => stamp_committed(near.wrapping_add(1)),
                        _ => self.value(stamp_committed(seq & ((1 << 60) - 1)), 4),
                    };
                    if let Some(m) = self.logs[log].map.as_ref() {
                        m.write_n(base + f, w, stamp);
                    }
                } else {
                    let (f, w) = field!(RecordSlotHeader, word);
                    let word = self.header_word(u64::from(c.max_payload));
                    if let Some(m) = self.logs[log].map.as_ref() {
                        m.write_n(base + f, w, word);
                    }
                }
                self.untrust_log(log);
                return;
            }
        };
        let cur = m.read_n(at.0, at.1);
        let v = self.value(cur, scale);
        trace!("  log {log} field {field} at {}: {cur:#x} -> {v:#x}", at.0);
        if let Some(m) = self.logs[log].map.as_ref() {
            m.write_n(at.0, at.1, v);
        }
        self.untrust_log(log);
    }

    fn mutate_directory(&mut self) {
        let Some(m) = self.dir_map.as_ref() else {
            return;
        };
        let entries = dir_entries(m);
        if entries == 0 {
            return;
        }
        // Prefer an entry in use.
        let used: Vec<usize> = (0..entries)
            .filter(|&e| m.read_u64(dir_entry(e)) != 0)
            .collect();
        let e = if !used.is_empty() && self.input.below(4) != 0 {
            used[self.input.below(used.len())]
        } else {
            self.input.below(entries)
        };
        let base = dir_entry(e);
        let field = self.input.below(12);
        let rel = |(f, w): (usize, usize)| (base + f, w);
        let (off, w) = match field {
            0 => rel(field!(TopicEntry, state)),
            1 => {
                // Entry state only (low half): FREE, CREATING, READY or other.
                let v = [0u32, 1, 2, 3, u32::MAX][self.input.below(5)];
                if let Some(m) = self.dir_map.as_ref() {
                    m.write_u32(base, v);
                }
                return;
            }
            2 => rel(field!(TopicEntry, name_len)),
            3 => rel(field!(TopicEntry, kind)),
            4 => rel(field!(TopicEntry, policy)),
            5 => rel(field!(TopicEntry, max_payload)),
            6 => rel(field!(TopicEntry, slots)),
            7 => rel(field!(TopicEntry, max_subscribers)),
            8 => rel(field!(TopicEntry, max_publishers)),
            9 => {
                // The claim timeout: the words between the creator pid and
                // the name, whatever they are called.
                let (pid, pid_w) = field!(TopicEntry, creator_pid);
                let (name, _) = field!(TopicEntry, name);
                let start = pid + pid_w;
                let at = start + 4 * self.input.below((name.saturating_sub(start) / 4).max(1));
                (base + at, 4)
            }
            10 => {
                // A name byte: another valid letter, a bad one, or non-UTF-8.
                let (name, len) = field!(TopicEntry, name);
                let at = base + name + self.input.below(len.max(1));
                let b = [b'a', b'z', b'/', 0, 0xFF, 0xC3][self.input.below(6)];
                if let Some(m) = self.dir_map.as_ref() {
                    m.write(at, &[b]);
                }
                return;
            }
            _ => {
                // The entry count.
                let (f, w) = field!(DirectoryControl, entries);
                (DIRECTORY_CONTROL_OFFSET + f, w)
            }
        };
        let scale = if field == 0 { 1 << 32 } else { 64 };
        let cur = m.read_n(off, w);
        let v = self.value(cur, scale);
        if let Some(m) = self.dir_map.as_ref() {
            m.write_n(off, w, v);
        }
    }
}

/// Offset of directory entry `e`.
fn dir_entry(e: usize) -> usize {
    DIRECTORY_ENTRIES_OFFSET + e * size_of::<TopicEntry>()
}

/// Entries a directory mapping holds.
fn dir_entries(m: &RawMap) -> usize {
    m.len.saturating_sub(DIRECTORY_ENTRIES_OFFSET) / size_of::<TopicEntry>()
}

impl Drop for Case<'_> {
    fn drop(&mut self) {
        // Handles first (they unlock and store into their mappings), then
        // the raw mappings, then the files (removed by the caller).
        self.subs.clear();
        self.pubs.clear();
        self.producer = None;
        self.consumer = None;
        self.topics.clear();
    }
}

#[path = "queue.rs"]
mod queue;
