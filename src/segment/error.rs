//! Errors from creating and opening segments.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layout::SegmentKind;

/// Why a namespace or segment could not be created or opened.
///
/// Each variant names the file and says what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SegmentError {
    /// A namespace or segment name breaks the naming rule.
    InvalidName {
        /// The offending name, escaped for printing.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Creation found the file already there.
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// No such segment.
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The path is a symbolic link; shmbus never follows one.
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The path is not a regular file (or, for a namespace, not a directory).
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The file or directory belongs to another user.
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// The file or directory is writable by group or others.
    InsecureMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file system cannot hold the segment (full tmpfs, quota).
    NoSpace {
        /// The file.
        path: PathBuf,
        /// Bytes asked for.
        size: u64,
    },
    /// The file is shorter than a segment header, even after waiting.
    TooSmall {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The least a segment can be.
        minimum: u64,
    },
    /// The creator never published the header within the wait.
    NotInitialised {
        /// The file.
        path: PathBuf,
        /// How long the opener waited.
        waited: Duration,
    },
    /// The first word is not the shmbus magic.
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The word found.
        found: u32,
    },
    /// Created by another layout version.
    VersionMismatch {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// Same version, but the structures differ (another build, pointer width
    /// or byte order).
    LayoutMismatch {
        /// The file.
        path: PathBuf,
        /// Hash in the file.
        found: u64,
        /// Hash of this build.
        expected: u64,
    },
    /// The header's declared size differs from the file's size.
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Size in the header.
        declared: u64,
        /// Size reported by `fstat`.
        actual: u64,
    },
    /// The segment holds another kind of structure.
    WrongKind {
        /// The file.
        path: PathBuf,
        /// Kind in the header.
        found: u32,
        /// Kind asked for.
        expected: SegmentKind,
    },
    /// A reader found the segment corrupt and marked it unusable.
    Poisoned {
        /// The file.
        path: PathBuf,
    },
    /// The structure behind the header is inconsistent.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configuration asked for cannot be built.
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// The role (producer, consumer) is held by a live process.
    AlreadyAttached {
        /// The file.
        path: PathBuf,
        /// The role asked for.
        role: &'static str,
    },
    /// The segment was removed (flagged by [`Segment::remove`] or unlinked)
    /// while it was being opened.
    ///
    /// [`Segment::remove`]: super::Segment::remove
    Removed {
        /// The file.
        path: PathBuf,
    },
    /// The segment file was shortened under the mapping while it was being
    /// opened.
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The base directory, or a directory above it, would let another user
    /// move or replace this user's namespaces.
    UnsafeBaseDir {
        /// The base directory asked for.
        base: PathBuf,
        /// The directory at fault: `base` itself or one of its ancestors.
        dir: PathBuf,
        /// What is wrong with it.
        problem: BaseDirProblem,
    },
    /// This process already has the most segment mappings the SIGBUS guard
    /// tracks ([`MAX_GUARDED_MAPPINGS`](super::MAX_GUARDED_MAPPINGS)).
    TooManySegments {
        /// The file that could not be mapped.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// An operating-system call failed.
    Io {
        /// What shmbus was doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What makes a base directory unsafe (see [`SegmentError::UnsafeBaseDir`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseDirProblem {
    /// It is a symbolic link: whoever owns the link's directory could point
    /// it elsewhere.
    Symlink,
    /// It is not a directory.
    NotDirectory,
    /// It belongs to a user other than this process's and root.
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// Group or others may write it and it is not sticky, so they may rename
    /// or delete what is in it.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl std::fmt::Display for BaseDirProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseDirProblem::Symlink => write!(f, "is a symbolic link"),
            BaseDirProblem::NotDirectory => write!(f, "is not a directory"),
            BaseDirProblem::Owner { owner, expected } => write!(
                f,
                "belongs to uid {owner}, neither this process's uid {expected} nor root"
            ),
            BaseDirProblem::Writable { mode } => write!(
                f,
                "is writable by other users and not sticky (mode {mode:04o})"
            ),
        }
    }
}

impl SegmentError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        SegmentError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use SegmentError::*;
        match self {
            InvalidName { name, reason } => write!(
                f,
                "invalid name \"{name}\": it {reason} (use 1-64 characters of A-Z a-z 0-9 . _ - not starting with a dot)"
            ),
            AlreadyExists { path } => write!(
                f,
                "{} already exists (open it instead, or remove it if it is stale)",
                path.display()
            ),
            NotFound { path } => write!(f, "{} does not exist (create it first)", path.display()),
            Symlink { path } => write!(
                f,
                "{} is a symbolic link, which shmbus refuses to follow (remove it)",
                path.display()
            ),
            NotRegularFile { path } => {
                write!(f, "{} is not a regular file or directory of the expected type", path.display())
            }
            WrongOwner { path, owner, expected } => write!(
                f,
                "{} belongs to uid {owner}, not to this process's uid {expected} (refusing to share memory with another user)",
                path.display()
            ),
            InsecureMode { path, mode } => write!(
                f,
                "{} has mode {mode:04o}, writable by group or others (expected 0600 for files, 0700 for directories)",
                path.display()
            ),
            NoSpace { path, size } => write!(
                f,
                "no space to reserve {size} bytes for {} (the shared-memory file system is full; free space or shrink the ring)",
                path.display()
            ),
            TooSmall { path, size, minimum } => write!(
                f,
                "{} is {size} bytes, smaller than a {minimum}-byte segment header (a creator died before sizing it? remove it)",
                path.display()
            ),
            NotInitialised { path, waited } => write!(
                f,
                "{} was never initialised: its header was still unpublished after {waited:?} (its creator probably died; remove it)",
                path.display()
            ),
            BadMagic { path, found } => write!(
                f,
                "{} is not a shmbus segment (first word {found:#010x}, expected \"SHMB\")",
                path.display()
            ),
            VersionMismatch { path, found, expected } => write!(
                f,
                "{} was created by layout version {found} but this build reads version {expected} (remove it or upgrade the other side)",
                path.display()
            ),
            LayoutMismatch { path, found, expected } => write!(
                f,
                "{} has layout hash {found:#018x} but this build expects {expected:#018x} (built with another shmbus version, pointer width or byte order)",
                path.display()
            ),
            SizeMismatch { path, declared, actual } => write!(
                f,
                "{} declares {declared} bytes but the file has {actual} (truncated or overwritten; remove it)",
                path.display()
            ),
            WrongKind { path, found, expected } => write!(
                f,
                "{} holds segment kind {found}, not a {} segment",
                path.display(),
                expected.name()
            ),
            Poisoned { path } => write!(
                f,
                "{} was marked poisoned after corruption was found (remove and recreate it)",
                path.display()
            ),
            Corrupt { path, reason } => write!(f, "{} is corrupt: {reason}", path.display()),
            InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            AlreadyAttached { path, role } => write!(
                f,
                "{} already has a live {role} (a ring takes exactly one; stop the other process first)",
                path.display()
            ),
            Removed { path } => write!(
                f,
                "{} was removed while it was being opened (create it again, or open the live one)",
                path.display()
            ),
            Truncated { path } => write!(
                f,
                "{} was truncated by another process while it was being opened (remove it and create it again)",
                path.display()
            ),
            UnsafeBaseDir { base, dir, problem } => {
                if base == dir {
                    write!(f, "base directory {} {problem}", base.display())?;
                } else {
                    write!(
                        f,
                        "base directory {} lies under {}, which {problem}",
                        base.display(),
                        dir.display()
                    )?;
                }
                write!(f, " (use a private directory, or set SHMBUS_DIR)")
            }
            TooManySegments { path, limit } => write!(
                f,
                "cannot map {}: this process already maps {limit} segments, the most the SIGBUS guard tracks (drop unused handles)",
                path.display()
            ),
            Io { op, path, source } => write!(f, "{op} {} failed: {source}", path.display()),
        }
    }
}

impl std::error::Error for SegmentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SegmentError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
