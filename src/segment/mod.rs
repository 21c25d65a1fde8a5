//! Memory-mapped segments in a namespace directory.
//!
//! A **namespace** is a directory, by default `/dev/shm/shmbus-<uid>/<namespace>/`
//! (one base per effective uid, so two users on a host never share or collide;
//! the base can be moved with the `SHMBUS_DIR` environment variable or
//! [`Namespace::at`]). A **segment** is one file in it, mapped shared by every
//! process that uses it.
//!
//! The base directory is checked before anything is created in it: it must
//! not be a symbolic link, must belong to this user or root, and must not be
//! writable by group or others unless it is sticky (as `/dev/shm` and `/tmp`
//! are); every directory above it is held to the same rule. Otherwise
//! another user could rename the namespace away and put their own in its
//! place ([`SegmentError::UnsafeBaseDir`]). Missing directories are created
//! `0700`.
//!
//! Creating a segment:
//!
//! 1. the namespace directory is created `0700` (and refused if it is a
//!    symlink, owned by another user or writable by group or others);
//! 2. the file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to the
//!    directory's descriptor, then set to `0600` whatever the umask;
//! 3. its full size is reserved with `posix_fallocate`, so a full tmpfs fails
//!    here with [`SegmentError::NoSpace`] instead of raising SIGBUS later;
//! 4. the header and the structure behind it are initialised;
//! 5. the magic/version word is published last with a `Release` store.
//!
//! Opening waits a bounded time for a segment still being initialised, then
//! validates, before touching anything else: regular file, no symlink, owner,
//! mode, size against `fstat`, magic, layout version, layout hash and kind.
//! Each failure is its own [`SegmentError`] variant.
//!
//! # Faults after mapping
//!
//! A mapped segment can become unusable whatever its bytes say
//! ([`SegmentFault`]):
//!
//! * **removed**: [`Segment::remove`] sets the header's `removed` flag before
//!   it unlinks the file, and a file unlinked by hand has `st_nlink == 0`;
//! * **truncated**: another process shortened the file. Touching a lost page
//!   would raise SIGBUS and kill the process; the handler in [`sigbus`]
//!   (installed by default, see there to turn it off) maps zero pages over
//!   the mapping instead and records the truncation;
//! * **poisoned**: a process found the segment corrupt.
//!
//! [`Segment::fault`] reads the cheap signs (no system call);
//! [`Segment::fault_slow`] adds one `fstat`. Rings call them from their slow
//! paths (full, empty, waiting) and then return `Unusable(fault)`.
//!
//! [`sigbus`]: set_sigbus_handler

mod error;
pub(crate) mod lock;
mod name;
mod sigbus;

pub use error::{BaseDirProblem, SegmentError};
pub use name::{validate_name, validate_segment_name, MAX_NAME_LEN, MAX_SEGMENT_NAME_LEN};
pub use sigbus::{
    set_sigbus_handler, sigbus_handler_installed, MAX_GUARDED_MAPPINGS, NO_SIGBUS_HANDLER_ENV,
};

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::layout::{
    magic_word, SegmentFault, SegmentHeader, SegmentKind, CACHE_LINE, LAYOUT_VERSION, REMOVED,
    SEGMENT_MAGIC, STATE_POISONED,
};
use crate::sync::{fence, AtomicU32, Ordering};
use sigbus::Guard;

/// Directory that holds the per-user default bases.
pub const DEFAULT_BASE_PARENT: &str = "/dev/shm";

/// File-name prefix of the default base: the default base of the user with
/// effective uid `U` is `/dev/shm/shmbus-U` (see [`Namespace::default_base_dir`]).
pub const DEFAULT_BASE_PREFIX: &str = "shmbus-";

/// Name of the namespace the examples and tools use when given none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Environment variable that overrides the default base directory
/// ([`Namespace::default_base_dir`]).
pub const BASE_DIR_ENV: &str = "SHMBUS_DIR";

/// How long [`Segment::open`] waits, by default, for a segment whose creator
/// has not finished initialising it.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// A namespace directory holding segments, opened by descriptor.
///
/// Every file operation happens relative to the directory's descriptor, so
/// renaming or replacing the path after opening cannot redirect them.
///
/// # Examples
///
/// ```
/// use shmbus::Namespace;
///
/// # let tmp = std::env::temp_dir().join(format!("shmbus-doc-{}-{}", std::process::id(), line!()));
/// // Namespace::open("desk") is $SHMBUS_DIR/desk, or /dev/shm/shmbus-<uid>/desk.
/// let ns = Namespace::at(&tmp, "desk")?;
/// assert_eq!(ns.name(), "desk");
/// assert!(ns.path().ends_with("desk"));
/// # drop(ns);
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Namespace {
    name: String,
    path: PathBuf,
    dir: OwnedFd,
}

impl Namespace {
    /// Opens (creating it if needed) the namespace `name` under the base
    /// directory: `$SHMBUS_DIR` if set, else `/dev/shm/shmbus-<uid>`.
    ///
    /// # Errors
    ///
    /// An invalid name, an unsafe base directory
    /// ([`SegmentError::UnsafeBaseDir`]), a directory that cannot be
    /// created, or a namespace directory that is a symlink, belongs to
    /// another user or is writable by group or others.
    pub fn open(name: &str) -> Result<Self, SegmentError> {
        Self::at(Self::base_dir(), name)
    }

    /// Opens (creating it if needed) the namespace `name` under `base`.
    ///
    /// `base` (created `0700` with its missing parents if it does not exist)
    /// must not be a symlink, must belong to this user or root and must not
    /// be writable by group or others unless sticky; so must every directory
    /// above it.
    ///
    /// # Errors
    ///
    /// As [`Namespace::open`].
    pub fn at(base: impl AsRef<Path>, name: &str) -> Result<Self, SegmentError> {
        validate_name(name)?;
        let base = base.as_ref();
        create_missing_dirs(base)?;
        let base_dir = open_base_dir(base)?;
        let path = base.join(name);
        let dir = open_namespace_dir(&base_dir, name, &path)?;
        let meta = fstat(dir.as_fd()).map_err(|e| SegmentError::io("fstat", &path, e))?;
        check_owner_and_mode(&path, &meta)?;
        Ok(Namespace {
            name: name.to_owned(),
            path,
            dir,
        })
    }

    /// Removes the namespace's directory on disk if it is empty, then the
    /// default base directory (`/dev/shm/shmbus-<uid>`) if this namespace
    /// was in it and it is empty too (a base named by `$SHMBUS_DIR` or
    /// given to [`Namespace::at`] is the caller's, and stays). Best effort:
    /// a directory that is not empty, or that another process is filling
    /// again, stays as it is. Returns whether the namespace's went.
    pub fn remove_if_empty(&self) -> bool {
        if std::fs::remove_dir(&self.path).is_err() {
            return false;
        }
        let base = Self::default_base_dir();
        if self.path.parent() == Some(base.as_path()) {
            let _ = std::fs::remove_dir(&base);
        }
        true
    }

    /// The base directory [`Namespace::open`] uses now: `$SHMBUS_DIR` if
    /// set and not empty, else [`Namespace::default_base_dir`].
    pub fn base_dir() -> PathBuf {
        std::env::var_os(BASE_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(Self::default_base_dir)
    }

    /// This user's default base directory, `/dev/shm/shmbus-<euid>`: one per
    /// user, so two users on a host never share a base.
    pub fn default_base_dir() -> PathBuf {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        Path::new(DEFAULT_BASE_PARENT).join(format!("{DEFAULT_BASE_PREFIX}{uid}"))
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File names of the segments of `kind` in this namespace, without
    /// suffix, sorted. Entries whose name is not a valid segment name are
    /// skipped.
    ///
    /// # Errors
    ///
    /// The directory cannot be read.
    pub fn list(&self, kind: SegmentKind) -> Result<Vec<String>, SegmentError> {
        let suffix = format!(".{}", kind.name());
        let mut names = Vec::new();
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| SegmentError::io("read_dir", &self.path, e))?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if let Some(stem) = file_name.strip_suffix(&suffix) {
                if validate_segment_name(stem).is_ok() {
                    names.push(stem.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every segment file in this namespace, of every kind: (name without
    /// suffix, kind), sorted. Files that are not named as a segment (no
    /// known suffix, or an invalid name) are skipped.
    ///
    /// # Errors
    ///
    /// The directory cannot be read.
    pub fn segments(&self) -> Result<Vec<(String, SegmentKind)>, SegmentError> {
        const KINDS: [SegmentKind; 4] = [
            SegmentKind::Spsc,
            SegmentKind::Broadcast,
            SegmentKind::Directory,
            SegmentKind::Queue,
        ];
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| SegmentError::io("read_dir", &self.path, e))?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some((stem, suffix)) = file_name.rsplit_once('.') else {
                continue;
            };
            let Some(kind) = KINDS.into_iter().find(|k| k.name() == suffix) else {
                continue;
            };
            if validate_segment_name(stem).is_ok() {
                found.push((stem.to_owned(), kind));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then((a.1 as u32).cmp(&(b.1 as u32))));
        Ok(found)
    }

    /// Opens the file of segment `name` of `kind` (without mapping or
    /// validating it), with its metadata, refusing a
    /// link, a file that is not regular, or one another user owns or may
    /// write.
    fn open_file(
        &self,
        name: &str,
        kind: SegmentKind,
        write: bool,
    ) -> Result<(File, std::fs::Metadata), SegmentError> {
        let file_name = Self::file_name(name, kind)?;
        let path = self.display_path(name, kind);
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        // SAFETY: `file_name` is NUL-terminated and `self.dir` is an open directory.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                file_name.as_ptr(),
                access | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ENOENT) => SegmentError::NotFound { path },
                Some(libc::ELOOP) => SegmentError::Symlink { path },
                _ => SegmentError::io("open", &path, err),
            });
        }
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let meta = file
            .metadata()
            .map_err(|e| SegmentError::io("fstat", &path, e))?;
        if !meta.file_type().is_file() {
            return Err(SegmentError::NotRegularFile { path });
        }
        check_owner_and_mode(&path, &meta)?;
        Ok((file, meta))
    }

    /// The liveness locks some process holds on segment `name` of `kind`
    /// (see [`Segment::held_lock_slots`]); empty if no live process holds
    /// any. The segment is neither mapped nor validated, so this works on
    /// any file a crash left, whatever its bytes.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`], a link or a file that is not this
    /// user's, or a lock query that failed.
    pub fn held_lock_slots(&self, name: &str, kind: SegmentKind) -> Result<Vec<u64>, SegmentError> {
        let (file, _) = self.open_file(name, kind, false)?;
        lock::held_slots(file.as_fd())
            .map_err(|e| SegmentError::io("lock query", &self.display_path(name, kind), e))
    }

    /// Locks segment `name` of `kind` for removal, if no live process
    /// holds any liveness lock on it: a write lock on the whole file,
    /// which fails if any lock is held and, while it is held, makes every
    /// attach fail (nobody can take a liveness lock). `None`, changing
    /// nothing, if a lock was held. [`RemovalLock::remove`] then removes it;
    /// dropping the lock leaves it as it was.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`] if it is gone, a link or a file that is
    /// not this user's, or an I/O error.
    pub fn lock_for_removal(
        &self,
        name: &str,
        kind: SegmentKind,
    ) -> Result<Option<RemovalLock>, SegmentError> {
        let (file, _) = self.open_file(name, kind, true)?;
        let path = self.display_path(name, kind);
        if !lock::try_lock_whole(file.as_fd()).map_err(|e| SegmentError::io("lock", &path, e))? {
            return Ok(None);
        }
        Ok(Some(RemovalLock {
            file,
            name: name.to_owned(),
            kind,
        }))
    }

    /// Removes segment `name` of `kind` (as [`Segment::remove`]) only if
    /// no live process holds any liveness lock on it, and so that none can
    /// take one while it is removed (see [`Namespace::lock_for_removal`]).
    /// Returns false, changing nothing, if a lock was held.
    ///
    /// # Errors
    ///
    /// As [`Namespace::lock_for_removal`] and [`Segment::remove`].
    pub fn remove_if_unheld(&self, name: &str, kind: SegmentKind) -> Result<bool, SegmentError> {
        match self.lock_for_removal(name, kind)? {
            Some(lock) => lock.remove(self).map(|()| true),
            None => Ok(false),
        }
    }

    fn file_name(name: &str, kind: SegmentKind) -> Result<CString, SegmentError> {
        validate_segment_name(name)?;
        // Valid names contain no NUL, so this cannot fail; map it anyway.
        CString::new(format!("{name}.{}", kind.name())).map_err(|_| SegmentError::InvalidName {
            name: name.escape_debug().to_string(),
            reason: "contains a NUL byte",
        })
    }

    fn display_path(&self, name: &str, kind: SegmentKind) -> PathBuf {
        self.path.join(format!("{name}.{}", kind.name()))
    }
}

/// Options for [`Segment::open`].
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// How long to wait for a creator to publish the header.
    pub init_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }
}

/// One memory-mapped segment file, validated.
///
/// The mapping stays valid as long as this value lives; every pointer handed
/// out by [`Segment::base`] is tied to it. If the file is truncated under it,
/// the mapping reads as zeros from then on (see [`Segment::fault`]).
#[derive(Debug)]
pub struct Segment {
    /// The mapping's entry in the SIGBUS registry. Declared first so that it
    /// is dropped first: the entry is freed before `map` unmaps the range.
    guard: Option<Guard>,
    map: MmapRaw,
    file: File,
    path: PathBuf,
    kind: SegmentKind,
    writable: bool,
    /// Faults found by [`Segment::fault_slow`] ([`LATCHED_REMOVED`],
    /// [`LATCHED_TRUNCATED`]), kept so that [`Segment::fault`] reports them
    /// from then on. Process-local.
    latched: AtomicU32,
}

/// [`Segment::latched`] bit: `fstat` saw the file unlinked.
const LATCHED_REMOVED: u32 = 1;
/// [`Segment::latched`] bit: `fstat` saw the file shorter than the mapping.
const LATCHED_TRUNCATED: u32 = 2;

/// Registers `map` with the SIGBUS guard (a no-op when the handler is off).
fn guard_mapping(
    map: &MmapRaw,
    writable: bool,
    path: &Path,
) -> Result<Option<Guard>, SegmentError> {
    Guard::register(map.as_ptr(), map.len(), writable).map_err(|_| SegmentError::TooManySegments {
        path: path.to_owned(),
        limit: MAX_GUARDED_MAPPINGS,
    })
}

impl Segment {
    /// Creates the segment `name` of `kind` with `size` bytes, runs `init` on
    /// its bytes after the header (`size - 128` of them, zeroed), then
    /// publishes it.
    ///
    /// # Errors
    ///
    /// [`SegmentError::AlreadyExists`] if the file exists (whatever it is),
    /// [`SegmentError::NoSpace`] if the file system cannot hold `size`
    /// bytes, or an I/O error. On error nothing is left behind.
    pub fn create(
        ns: &Namespace,
        name: &str,
        kind: SegmentKind,
        size: usize,
        init: impl FnOnce(*mut u8, usize),
    ) -> Result<Segment, SegmentError> {
        let file_name = Namespace::file_name(name, kind)?;
        let path = ns.display_path(name, kind);
        if size < CACHE_LINE {
            return Err(SegmentError::InvalidConfig {
                reason: format!("segment size {size} is smaller than its {CACHE_LINE}-byte header"),
            });
        }
        // SAFETY: `file_name` is NUL-terminated and `ns.dir` is an open directory.
        let fd = unsafe {
            libc::openat(
                ns.dir.as_raw_fd(),
                file_name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) => SegmentError::AlreadyExists { path },
                _ => SegmentError::io("create", &path, err),
            });
        }
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let unlink_on_error = |e: SegmentError| {
            // SAFETY: as above; removing the file we created and failed to finish.
            unsafe { libc::unlinkat(ns.dir.as_raw_fd(), file_name.as_ptr(), 0) };
            e
        };
        // The umask may have cleared bits of 0600; set them exactly.
        // SAFETY: `file` is an open descriptor.
        if unsafe { libc::fchmod(file.as_raw_fd(), 0o600) } != 0 {
            return Err(unlink_on_error(SegmentError::io(
                "fchmod",
                &path,
                io::Error::last_os_error(),
            )));
        }
        let len = libc::off_t::try_from(size).map_err(|_| {
            unlink_on_error(SegmentError::InvalidConfig {
                reason: format!("segment size {size} does not fit in off_t"),
            })
        })?;
        // SAFETY: `file` is an open, writable descriptor.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if rc != 0 {
            let err = io::Error::from_raw_os_error(rc);
            return Err(unlink_on_error(match rc {
                libc::ENOSPC | libc::EFBIG => SegmentError::NoSpace {
                    path: path.clone(),
                    size: size as u64,
                },
                _ => SegmentError::io("posix_fallocate", &path, err),
            }));
        }
        let map = MmapOptions::new()
            .len(size)
            .populate()
            .map_raw(&file)
            .map_err(|e| unlink_on_error(SegmentError::io("mmap", &path, e)))?;
        // Guarded before the first access: a truncation from now on cannot
        // kill this process.
        let guard = guard_mapping(&map, true, &path).map_err(unlink_on_error)?;
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is `size >= 128` bytes, page-aligned and zeroed by fallocate; no
        // other process reads the header before its magic is published; nothing references it yet.
        unsafe {
            let h = base as *mut SegmentHeader;
            (*h).layout_hash = kind.layout_hash();
            (*h).segment_size = size as u64;
            (*h).kind = kind as u32;
            (*h).creator_pid = std::process::id();
            (*h).created_realtime_ns = realtime_ns();
        }
        // SAFETY: the bytes after the header belong to the segment's structure
        // and are not yet visible to any other process.
        init(unsafe { base.add(CACHE_LINE) }, size - CACHE_LINE);
        // SAFETY: the mapping holds a header at offset 0 and outlives `header`.
        let header = unsafe { &*(base as *const SegmentHeader) };
        // SYNC POINT: publishes every byte written above; pairs with the
        // Acquire load of `magic_version` in `Segment::open`.
        header
            .magic_version
            .store(magic_word(LAYOUT_VERSION), Ordering::Release);
        Ok(Segment {
            guard,
            map,
            file,
            path,
            kind,
            writable: true,
            latched: AtomicU32::new(0),
        })
    }

    /// Opens and validates the segment `name` of `kind` for reading and
    /// writing.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`], [`SegmentError::Symlink`], ownership and
    /// mode errors, [`SegmentError::TooSmall`] or
    /// [`SegmentError::NotInitialised`] after `opts.init_timeout`, every
    /// header mismatch, and [`SegmentError::Removed`] or
    /// [`SegmentError::Truncated`] if that happened during the open.
    pub fn open(
        ns: &Namespace,
        name: &str,
        kind: SegmentKind,
        opts: &OpenOptions,
    ) -> Result<Segment, SegmentError> {
        Self::open_inner(ns, name, kind, opts, true)
    }

    /// Opens and validates a segment read-only, for inspection. The mapping
    /// is `PROT_READ`: this handle cannot disturb a live system.
    ///
    /// # Errors
    ///
    /// As [`Segment::open`].
    pub fn open_read_only(
        ns: &Namespace,
        name: &str,
        kind: SegmentKind,
        opts: &OpenOptions,
    ) -> Result<Segment, SegmentError> {
        Self::open_inner(ns, name, kind, opts, false)
    }

    fn open_inner(
        ns: &Namespace,
        name: &str,
        kind: SegmentKind,
        opts: &OpenOptions,
        writable: bool,
    ) -> Result<Segment, SegmentError> {
        let path = ns.display_path(name, kind);
        let (file, meta) = ns.open_file(name, kind, writable)?;

        // Bounded wait for the creator: first for the size, then for the
        // magic. A creator publishes within moments of making the file (its
        // change time), so a file older than the wait is not being created
        // any more: look once and answer (a zeroed or emptied segment).
        let age = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|now| {
                let changed = Duration::new(
                    u64::try_from(meta.ctime()).ok()?,
                    u32::try_from(meta.ctime_nsec()).ok()?,
                );
                now.checked_sub(changed)
            })
            .unwrap_or(Duration::ZERO);
        let patience = opts.init_timeout.saturating_sub(age);
        let started = Instant::now();
        let size = loop {
            let size = file
                .metadata()
                .map_err(|e| SegmentError::io("fstat", &path, e))?
                .len();
            if size >= CACHE_LINE as u64 {
                let mut word = [0u8; 8];
                file.read_exact_at(&mut word, 0)
                    .map_err(|e| SegmentError::io("read", &path, e))?;
                if u64::from_ne_bytes(word) != 0 {
                    break size;
                }
            }
            if started.elapsed() >= patience {
                return Err(if size < CACHE_LINE as u64 {
                    SegmentError::TooSmall {
                        path,
                        size,
                        minimum: CACHE_LINE as u64,
                    }
                } else {
                    SegmentError::NotInitialised {
                        path,
                        waited: started.elapsed(),
                    }
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let len = usize::try_from(size).map_err(|_| SegmentError::SizeMismatch {
            path: path.clone(),
            declared: size,
            actual: size,
        })?;
        let mut options = MmapOptions::new();
        options.len(len);
        let map = if writable {
            options.populate().map_raw(&file)
        } else {
            options.map_raw_read_only(&file)
        }
        .map_err(|e| SegmentError::io("mmap", &path, e))?;
        let guard = guard_mapping(&map, writable, &path)?;
        let segment = Segment {
            guard,
            map,
            file,
            path,
            kind,
            writable,
            latched: AtomicU32::new(0),
        };
        let validated = segment.validate_header(size);
        // A truncation during validation makes the header read as zeros:
        // say what happened rather than "bad magic". The header's own
        // flags mean something only once it validated.
        let from_file = segment.fault_from_file();
        if from_file == Some(SegmentFault::Truncated)
            || segment.guard.as_ref().is_some_and(Guard::truncated)
        {
            return Err(SegmentError::Truncated { path: segment.path });
        }
        validated?;
        match from_file.or_else(|| segment.fault()) {
            Some(SegmentFault::Truncated) => Err(SegmentError::Truncated { path: segment.path }),
            Some(SegmentFault::Removed) => Err(SegmentError::Removed { path: segment.path }),
            Some(SegmentFault::Poisoned) => Err(SegmentError::Poisoned { path: segment.path }),
            None => Ok(segment),
        }
    }

    fn validate_header(&self, file_size: u64) -> Result<(), SegmentError> {
        let h = self.header();
        // A Relaxed load and an Acquire fence rather than an Acquire load:
        // only Relaxed loads are promised to work on a read-only mapping.
        let word = h.magic_version.load(Ordering::Relaxed);
        // SYNC POINT: with the load above, pairs with the Release store in
        // `Segment::create`; every header and control field the creator
        // wrote is visible after this.
        fence(Ordering::Acquire);
        let path = || self.path.clone();
        let magic = word as u32;
        let version = (word >> 32) as u32;
        if magic != SEGMENT_MAGIC {
            return Err(SegmentError::BadMagic {
                path: path(),
                found: magic,
            });
        }
        if version != LAYOUT_VERSION {
            return Err(SegmentError::VersionMismatch {
                path: path(),
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let kind = h.kind;
        if kind != self.kind as u32 {
            return Err(SegmentError::WrongKind {
                path: path(),
                found: kind,
                expected: self.kind,
            });
        }
        let hash = h.layout_hash;
        if hash != self.kind.layout_hash() {
            return Err(SegmentError::LayoutMismatch {
                path: path(),
                found: hash,
                expected: self.kind.layout_hash(),
            });
        }
        let declared = h.segment_size;
        if declared != file_size {
            return Err(SegmentError::SizeMismatch {
                path: path(),
                declared,
                actual: file_size,
            });
        }
        if h.state.load(Ordering::Relaxed) == STATE_POISONED {
            return Err(SegmentError::Poisoned { path: path() });
        }
        Ok(())
    }

    /// Removes the segment file `name` of `kind`.
    ///
    /// First, if the file is a segment of `kind` of this layout version that
    /// this user owns, its header's `removed` flag is set, so processes that
    /// have it mapped see [`SegmentFault::Removed`] from [`Segment::fault`]
    /// at once; then the file is unlinked, so new opens fail with
    /// `NotFound`. A file that cannot be flagged (another layout version, a
    /// corrupt header) is still unlinked; mapped peers then notice through
    /// `st_nlink == 0` in [`Segment::fault_slow`]. Their mappings stay valid.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`] or an I/O error.
    pub fn remove(ns: &Namespace, name: &str, kind: SegmentKind) -> Result<(), SegmentError> {
        let file_name = Namespace::file_name(name, kind)?;
        let path = ns.display_path(name, kind);
        Self::flag_removed(ns, &file_name, kind, &path);
        // SAFETY: `file_name` is NUL-terminated and `ns.dir` is an open directory.
        if unsafe { libc::unlinkat(ns.dir.as_raw_fd(), file_name.as_ptr(), 0) } != 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ENOENT) => SegmentError::NotFound { path },
                _ => SegmentError::io("unlink", &path, err),
            });
        }
        Ok(())
    }

    /// Sets the `removed` flag of the file `file_name` if it is a segment
    /// of `kind` of this layout version owned by this user. Best effort: any
    /// failure leaves the flag unset (peers then rely on `st_nlink`).
    fn flag_removed(ns: &Namespace, file_name: &CString, kind: SegmentKind, path: &Path) {
        // SAFETY: `file_name` is NUL-terminated and `ns.dir` is an open directory.
        let fd = unsafe {
            libc::openat(
                ns.dir.as_raw_fd(),
                file_name.as_ptr(),
                libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file()
            || meta.len() < CACHE_LINE as u64
            || check_owner_and_mode(path, &meta).is_err()
        {
            return;
        }
        // Only the header is mapped; it lies inside the file (checked above),
        // and the guard covers a truncation racing with this.
        let Ok(map) = MmapOptions::new().len(CACHE_LINE).map_raw(&file) else {
            return;
        };
        let Ok(guard) = guard_mapping(&map, true, path) else {
            return;
        };
        let segment = Segment {
            guard,
            map,
            file,
            path: path.to_owned(),
            kind,
            writable: true,
            latched: AtomicU32::new(0),
        };
        let h = segment.header();
        if h.magic_version.load(Ordering::Relaxed) == magic_word(LAYOUT_VERSION)
            && h.kind == kind as u32
        {
            segment.mark_removed();
        }
    }

    /// Sets the header's `removed` flag: every process that has the segment
    /// mapped sees [`SegmentFault::Removed`] from then on. No-op on a
    /// read-only handle. [`Segment::remove`] calls it before unlinking.
    pub(crate) fn mark_removed(&self) {
        if self.writable {
            // SYNC POINT: pairs with the Acquire fence after the load of
            // `removed` in `Segment::fault`: whatever the remover wrote into
            // the segment before (a ring's wake-up word) is visible to a
            // peer that sees the flag.
            self.header().removed.store(REMOVED, Ordering::Release);
        }
    }

    /// Why the segment can no longer be used, from the signs that cost no
    /// system call: the SIGBUS guard's truncated mark for this mapping, the
    /// header's `removed` flag, its poisoned state, and what an earlier
    /// [`Segment::fault_slow`] found. `None` if none says so.
    pub fn fault(&self) -> Option<SegmentFault> {
        let latched = self.latched.load(Ordering::Relaxed);
        if latched & LATCHED_TRUNCATED != 0 || self.guard.as_ref().is_some_and(Guard::truncated) {
            return Some(SegmentFault::Truncated);
        }
        if latched & LATCHED_REMOVED != 0 {
            return Some(SegmentFault::Removed);
        }
        let h = self.header();
        // Relaxed loads then a fence: they work on a read-only mapping too.
        if h.removed.load(Ordering::Relaxed) != 0 {
            // SYNC POINT: pairs with the Release store in
            // `Segment::mark_removed`.
            fence(Ordering::Acquire);
            return Some(SegmentFault::Removed);
        }
        if h.state.load(Ordering::Relaxed) == STATE_POISONED {
            return Some(SegmentFault::Poisoned);
        }
        None
    }

    /// [`Segment::fault`], then one `fstat` of the file: a link count of 0
    /// means it was unlinked ([`SegmentFault::Removed`]), a size smaller than
    /// the mapping that it was truncated ([`SegmentFault::Truncated`]), even
    /// if no access has touched a lost page yet. What it finds is kept, and
    /// reported by [`Segment::fault`] from then on.
    pub fn fault_slow(&self) -> Option<SegmentFault> {
        self.fault().or_else(|| self.fault_from_file())
    }

    /// The `fstat` part of [`Segment::fault_slow`], latching what it finds.
    fn fault_from_file(&self) -> Option<SegmentFault> {
        let meta = self.file.metadata().ok()?;
        let (bit, fault) = if meta.nlink() == 0 {
            (LATCHED_REMOVED, SegmentFault::Removed)
        } else if meta.len() < self.map.len() as u64 {
            (LATCHED_TRUNCATED, SegmentFault::Truncated)
        } else {
            return None;
        };
        self.latched.fetch_or(bit, Ordering::Relaxed);
        Some(fault)
    }

    /// The validated header.
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: the mapping is at least 128 bytes (checked on open/create),
        // page-aligned, and lives as long as `self`.
        unsafe { &*(self.map.as_ptr() as *const SegmentHeader) }
    }

    /// Start of the mapping. Writable only if the segment was opened so.
    pub fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Size of the mapping in bytes (equal to the header's declared size).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: a segment holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The segment's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the segment holds.
    pub fn kind(&self) -> SegmentKind {
        self.kind
    }

    /// Whether this handle mapped the segment writable.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Marks the segment poisoned: later opens fail with
    /// [`SegmentError::Poisoned`]. No-op on a read-only handle.
    pub fn poison(&self) {
        if self.writable {
            self.header().state.store(STATE_POISONED, Ordering::Relaxed);
        }
    }

    /// Takes the liveness lock `slot` through this handle's descriptor.
    /// `Ok(false)` if another open of the file holds it.
    pub(crate) fn try_lock(&self, slot: u64) -> Result<bool, SegmentError> {
        lock::try_lock(self.file.as_fd(), slot).map_err(|e| SegmentError::io("lock", &self.path, e))
    }

    /// Takes a read (shared) lock on `slot` through this handle's
    /// descriptor, or turns this handle's write lock on it back into one.
    /// `Ok(false)` if another open of the file holds the write lock.
    pub(crate) fn try_read_lock(&self, slot: u64) -> Result<bool, SegmentError> {
        lock::try_read_lock(self.file.as_fd(), slot)
            .map_err(|e| SegmentError::io("lock", &self.path, e))
    }

    /// Releases the liveness lock `slot` if this handle holds it.
    pub(crate) fn unlock(&self, slot: u64) -> Result<(), SegmentError> {
        lock::unlock(self.file.as_fd(), slot).map_err(|e| SegmentError::io("unlock", &self.path, e))
    }

    /// A separate open file description of this segment, for liveness locks
    /// that must not be shared with this handle's (OFD locks are per open
    /// file description, so two threads using one handle would otherwise
    /// see each other's locks as their own).
    ///
    /// # Errors
    ///
    /// The file cannot be reopened, or it is no longer the same file.
    pub fn lock_handle(&self) -> Result<LockHandle, SegmentError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(self.writable)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| SegmentError::io("reopen", &self.path, e))?;
        let (a, b) = (
            self.file
                .metadata()
                .map_err(|e| SegmentError::io("fstat", &self.path, e))?,
            file.metadata()
                .map_err(|e| SegmentError::io("fstat", &self.path, e))?,
        );
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return Err(SegmentError::Corrupt {
                path: self.path.clone(),
                reason: "the file was replaced while open".to_owned(),
            });
        }
        Ok(LockHandle {
            file,
            path: self.path.clone(),
        })
    }

    /// Every liveness lock slot that another open of the file holds (read
    /// or write), sorted: which participants are alive, in one pass. This
    /// handle's own locks are not counted.
    ///
    /// # Errors
    ///
    /// A lock query failed.
    pub fn held_lock_slots(&self) -> Result<Vec<u64>, SegmentError> {
        lock::held_slots(self.file.as_fd())
            .map_err(|e| SegmentError::io("lock query", &self.path, e))
    }

    /// Whether another open of the file holds liveness lock `slot`, that is,
    /// whether the process that took it is still alive and attached.
    ///
    /// # Errors
    ///
    /// The lock query failed.
    pub fn is_lock_held(&self, slot: u64) -> Result<bool, SegmentError> {
        lock::is_held(self.file.as_fd(), slot)
            .map_err(|e| SegmentError::io("lock query", &self.path, e))
    }
}

/// A segment locked whole for its removal (see
/// [`Namespace::lock_for_removal`]): no process can attach to it while this
/// lives.
#[derive(Debug)]
pub struct RemovalLock {
    file: File,
    name: String,
    kind: SegmentKind,
}

impl RemovalLock {
    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the segment (as [`Segment::remove`]: flagged removed, then
    /// unlinked), then lets the lock go.
    ///
    /// # Errors
    ///
    /// As [`Segment::remove`].
    pub fn remove(self, ns: &Namespace) -> Result<(), SegmentError> {
        let removed = Segment::remove(ns, &self.name, self.kind);
        // Held until the file is unlinked: whoever opens it meanwhile can
        // take no lock, and whoever opens it after finds nothing.
        drop(self.file);
        removed
    }
}

/// An open file description of a segment used only for liveness locks.
#[derive(Debug)]
pub struct LockHandle {
    file: File,
    path: PathBuf,
}

impl LockHandle {
    /// Takes lock `slot`; `Ok(false)` if another open file description has it.
    pub(crate) fn try_lock(&self, slot: u64) -> Result<bool, SegmentError> {
        lock::try_lock(self.file.as_fd(), slot).map_err(|e| SegmentError::io("lock", &self.path, e))
    }

    /// Releases lock `slot`.
    pub(crate) fn unlock(&self, slot: u64) -> Result<(), SegmentError> {
        lock::unlock(self.file.as_fd(), slot).map_err(|e| SegmentError::io("unlock", &self.path, e))
    }

    /// Whether another open file description holds lock `slot`.
    pub(crate) fn is_held(&self, slot: u64) -> Result<bool, SegmentError> {
        lock::is_held(self.file.as_fd(), slot)
            .map_err(|e| SegmentError::io("lock query", &self.path, e))
    }
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn fstat(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<std::fs::Metadata> {
    let dup = fd.try_clone_to_owned()?;
    File::from(dup).metadata()
}

fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SegmentError> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(SegmentError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            expected: me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(SegmentError::InsecureMode {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Creates `path` and its missing ancestors, each `0700` whatever the umask,
/// after checking that the deepest existing ancestor and every directory
/// above it are safe (nothing is ever created where another user could move
/// it). Existing directories are left exactly as they are; [`open_base_dir`]
/// checks the result.
fn create_missing_dirs(path: &Path) -> Result<(), SegmentError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut missing = Vec::new();
    let mut existing = Path::new(".");
    for dir in path.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(dir).is_ok() {
            existing = dir;
            break;
        }
        missing.push(dir);
    }
    if missing.is_empty() {
        return Ok(());
    }
    check_ancestors(path, existing)?;
    for dir in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            // We made it: the umask may have cleared bits of 0700; set them exactly.
            Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| SegmentError::io("chmod", dir, e))?,
            // Another process made it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(SegmentError::io("mkdir", dir, e)),
        }
    }
    Ok(())
}

/// Whether another user could rename or replace entries of the directory
/// `dir` (stat'ed as `meta`): it must belong to this user or root, and not
/// be writable by group or others unless sticky.
fn check_base_component(
    base: &Path,
    dir: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), SegmentError> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let fail = |problem| SegmentError::UnsafeBaseDir {
        base: base.to_owned(),
        dir: dir.to_owned(),
        problem,
    };
    if !meta.is_dir() {
        return Err(fail(BaseDirProblem::NotDirectory));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(fail(BaseDirProblem::Owner {
            owner: meta.uid(),
            expected: me,
        }));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(fail(BaseDirProblem::Writable { mode }));
    }
    Ok(())
}

/// Checks `dir` and every directory above it, along its canonical path,
/// with [`check_base_component`] (for the base `base`); and that no
/// symlink on the path as written belongs to another user (who could point
/// it elsewhere after the check).
fn check_ancestors(base: &Path, dir: &Path) -> Result<(), SegmentError> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for link in dir.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        let Ok(meta) = std::fs::symlink_metadata(link) else {
            continue;
        };
        if meta.file_type().is_symlink() && meta.uid() != me && meta.uid() != 0 {
            return Err(SegmentError::UnsafeBaseDir {
                base: base.to_owned(),
                dir: link.to_owned(),
                problem: BaseDirProblem::Owner {
                    owner: meta.uid(),
                    expected: me,
                },
            });
        }
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| SegmentError::io("resolve", dir, e))?;
    for dir in dir.ancestors() {
        let meta = std::fs::metadata(dir).map_err(|e| SegmentError::io("stat", dir, e))?;
        check_base_component(base, dir, &meta)?;
    }
    Ok(())
}

/// Opens the base directory after checking it and every directory above it
/// (see [`check_base_component`]). The base itself must not be a symlink;
/// its ancestors are checked along their canonical path, so a symlink above
/// it (such as `/var/run`) is judged by the directories it leads through.
/// Once checked, none of them can be changed by another user, so the
/// descriptor returned stays the base that was checked.
fn open_base_dir(base: &Path) -> Result<OwnedFd, SegmentError> {
    let unsafe_base = |problem| SegmentError::UnsafeBaseDir {
        base: base.to_owned(),
        dir: base.to_owned(),
        problem,
    };
    let meta = std::fs::symlink_metadata(base).map_err(|e| SegmentError::io("stat", base, e))?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_base(BaseDirProblem::Symlink));
    }
    let parent = match base.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    check_ancestors(base, parent)?;
    let c_path = path_cstring(base)?;
    // SAFETY: `c_path` is NUL-terminated.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            // Replaced by a link or a file since the lstat above.
            Some(libc::ELOOP) => unsafe_base(BaseDirProblem::Symlink),
            Some(libc::ENOTDIR) => unsafe_base(BaseDirProblem::NotDirectory),
            _ => SegmentError::io("open directory", base, err),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // The check that counts is on what was opened.
    let meta = fstat(fd.as_fd()).map_err(|e| SegmentError::io("fstat", base, e))?;
    check_base_component(base, base, &meta)?;
    Ok(fd)
}

/// Creates (`0700`) if needed and opens the namespace directory `name`
/// relative to the base's descriptor, never following a symlink.
fn open_namespace_dir(base: &OwnedFd, name: &str, path: &Path) -> Result<OwnedFd, SegmentError> {
    // Valid names contain no NUL.
    let c_name = CString::new(name).map_err(|_| SegmentError::InvalidName {
        name: name.escape_debug().to_string(),
        reason: "contains a NUL byte",
    })?;
    // SAFETY: `c_name` is NUL-terminated and `base` an open directory.
    let created = unsafe { libc::mkdirat(base.as_raw_fd(), c_name.as_ptr(), 0o700) } == 0;
    if !created {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(SegmentError::io("mkdir", path, err));
        }
    }
    // SAFETY: as above.
    let fd = unsafe {
        libc::openat(
            base.as_raw_fd(),
            c_name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        // O_NOFOLLOW|O_DIRECTORY on a link fails with ENOTDIR or ELOOP
        // depending on the kernel; look so the error says what is wrong.
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        return Err(match err.raw_os_error() {
            _ if is_link => SegmentError::Symlink {
                path: path.to_owned(),
            },
            Some(libc::ELOOP) => SegmentError::Symlink {
                path: path.to_owned(),
            },
            Some(libc::ENOTDIR) => SegmentError::NotRegularFile {
                path: path.to_owned(),
            },
            _ => SegmentError::io("open directory", path, err),
        });
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if created {
        // The umask may have cleared bits of 0700; set them exactly.
        // SAFETY: `fd` is an open directory.
        if unsafe { libc::fchmod(fd.as_raw_fd(), 0o700) } != 0 {
            return Err(SegmentError::io("chmod", path, io::Error::last_os_error()));
        }
    }
    Ok(fd)
}

fn path_cstring(path: &Path) -> Result<CString, SegmentError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SegmentError::InvalidName {
        name: path.display().to_string(),
        reason: "contains a NUL byte",
    })
}
