//! Memory-mapped segments in a namespace directory.
//!
//! A **namespace** is a directory, by default `/dev/shm/shmbus/<namespace>/`
//! (the base `/dev/shm/shmbus` can be moved with the `SHMBUS_DIR` environment
//! variable or [`Namespace::at`]). A **segment** is one file in it, mapped
//! shared by every process that uses it.
//!
//! Creating a segment:
//!
//! 1. the directory is created `0700` (and refused if it is a symlink, owned
//!    by another user or writable by group or others);
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

mod error;
mod lock;
mod name;

pub use error::SegmentError;
pub use name::{validate_name, MAX_NAME_LEN};

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::layout::{
    magic_word, SegmentHeader, SegmentKind, CACHE_LINE, LAYOUT_VERSION, SEGMENT_MAGIC,
    STATE_POISONED,
};
use crate::sync::{fence, Ordering};

/// Base directory used when neither `SHMBUS_DIR` nor [`Namespace::at`] says
/// otherwise.
pub const DEFAULT_BASE_DIR: &str = "/dev/shm/shmbus";

/// Name of the namespace the examples and tools use when given none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Environment variable that overrides [`DEFAULT_BASE_DIR`].
pub const BASE_DIR_ENV: &str = "SHMBUS_DIR";

/// How long [`Segment::open`] waits, by default, for a segment whose creator
/// has not finished initialising it.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// A namespace directory holding segments, opened by descriptor.
///
/// Every file operation happens relative to the directory's descriptor, so
/// renaming or replacing the path after opening cannot redirect them.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    path: PathBuf,
    dir: OwnedFd,
}

impl Namespace {
    /// Opens (creating it if needed) the namespace `name` under the base
    /// directory: `$SHMBUS_DIR` if set, else `/dev/shm/shmbus`.
    ///
    /// # Errors
    ///
    /// An invalid name, a directory that cannot be created, or one that is a
    /// symlink, belongs to another user or is writable by group or others.
    pub fn open(name: &str) -> Result<Self, SegmentError> {
        Self::at(Self::base_dir(), name)
    }

    /// Opens (creating it if needed) the namespace `name` under `base`.
    ///
    /// # Errors
    ///
    /// As [`Namespace::open`].
    pub fn at(base: impl AsRef<Path>, name: &str) -> Result<Self, SegmentError> {
        validate_name(name)?;
        let base = base.as_ref();
        create_private_dir(base, true)?;
        let path = base.join(name);
        create_private_dir(&path, false)?;
        let dir = open_dir_nofollow(&path)?;
        let meta = fstat(dir.as_fd()).map_err(|e| SegmentError::io("fstat", &path, e))?;
        check_owner_and_mode(&path, &meta)?;
        Ok(Namespace {
            name: name.to_owned(),
            path,
            dir,
        })
    }

    /// The base directory [`Namespace::open`] uses now.
    pub fn base_dir() -> PathBuf {
        std::env::var_os(BASE_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BASE_DIR))
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
                if validate_name(stem).is_ok() {
                    names.push(stem.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn file_name(name: &str, kind: SegmentKind) -> Result<CString, SegmentError> {
        validate_name(name)?;
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
/// out by [`Segment::base`] is tied to it.
#[derive(Debug)]
pub struct Segment {
    map: MmapRaw,
    file: File,
    path: PathBuf,
    kind: SegmentKind,
    writable: bool,
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
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is `size >= 128` bytes, page-aligned and zero-filled
        // by fallocate; no other process reads these fields before the magic is
        // published, and no reference to the header exists yet.
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
            map,
            file,
            path,
            kind,
            writable: true,
        })
    }

    /// Opens and validates the segment `name` of `kind` for reading and
    /// writing.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`], [`SegmentError::Symlink`], ownership and
    /// mode errors, [`SegmentError::TooSmall`] or
    /// [`SegmentError::NotInitialised`] after `opts.init_timeout`, and every
    /// header mismatch.
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
        let file_name = Namespace::file_name(name, kind)?;
        let path = ns.display_path(name, kind);
        let access = if writable {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        // SAFETY: `file_name` is NUL-terminated and `ns.dir` is an open directory.
        let fd = unsafe {
            libc::openat(
                ns.dir.as_raw_fd(),
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

        // Bounded wait for the creator: first for the size, then for the magic.
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
            if started.elapsed() >= opts.init_timeout {
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
        let segment = Segment {
            map,
            file,
            path,
            kind,
            writable,
        };
        segment.validate_header(size)?;
        Ok(segment)
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

    /// Removes the segment file `name` of `kind`. Processes that have it
    /// mapped keep their mapping; new opens fail with `NotFound`.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotFound`] or an I/O error.
    pub fn remove(ns: &Namespace, name: &str, kind: SegmentKind) -> Result<(), SegmentError> {
        let file_name = Namespace::file_name(name, kind)?;
        let path = ns.display_path(name, kind);
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

/// Creates `path` with mode 0700 if it does not exist (with `parents`, its
/// missing ancestors too). An existing directory is left exactly as it is;
/// the namespace directory itself is checked by the caller.
fn create_private_dir(path: &Path, parents: bool) -> Result<(), SegmentError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    if parents {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(parent)
                .map_err(|e| SegmentError::io("mkdir", parent, e))?;
        }
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        // We made it: the umask may have cleared bits of 0700; set them exactly.
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| SegmentError::io("chmod", path, e)),
        // Another process made it first.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SegmentError::io("mkdir", path, e)),
    }
}

fn open_dir_nofollow(path: &Path) -> Result<OwnedFd, SegmentError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| SegmentError::InvalidName {
            name: path.display().to_string(),
            reason: "contains a NUL byte",
        })?;
    // O_NOFOLLOW|O_DIRECTORY on a link fails with ENOTDIR or ELOOP depending
    // on the kernel; look first so the error says what is wrong.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(SegmentError::Symlink {
            path: path.to_owned(),
        });
    }
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
            Some(libc::ELOOP) => SegmentError::Symlink {
                path: path.to_owned(),
            },
            Some(libc::ENOTDIR) => SegmentError::NotRegularFile {
                path: path.to_owned(),
            },
            _ => SegmentError::io("open directory", path, err),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
