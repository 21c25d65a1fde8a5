//! Liveness tokens: open-file-description (OFD) byte-range locks.
//!
//! A process proves it is attached to a role (the producer of a ring, say)
//! by holding a write lock on one byte of the segment file. The lock belongs
//! to the open file description, so the kernel drops it when the last
//! descriptor closes, including when the process dies by SIGKILL. Unlike
//! `kill(pid, 0)`, a reused pid cannot fake it; unlike classic POSIX locks, two
//! descriptors in the same process do conflict, so a second attach from the
//! same process is refused too.
//!
//! The locked bytes are abstract slots (they may lie past the end of the
//! file); they never touch the mapped data.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

fn flock_for(slot: u64, kind: libc::c_short) -> io::Result<libc::flock> {
    let start = libc::off_t::try_from(slot)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock slot out of range"))?;
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    fl.l_pid = 0; // required by F_OFD_*
    Ok(fl)
}

/// Tries to take the write lock on `slot` without blocking.
///
/// Returns `Ok(false)` when another open file description holds it.
pub(crate) fn try_lock(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
    set_lock(fd, &flock_for(slot, libc::F_WRLCK as libc::c_short)?)
}

/// Sets the write lock `fl` without blocking: `Ok(false)` when another
/// open file description holds a lock in its range.
fn set_lock(fd: BorrowedFd<'_>, fl: &libc::flock) -> io::Result<bool> {
    // SAFETY: `fd` is a live descriptor and `fl` a valid flock for F_OFD_SETLK.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Tries to take a read (shared) lock on `slot` without blocking: any
/// number of open file descriptions may hold one at once, none while
/// another holds the write lock. On a description that holds the write
/// lock, turns it into a read lock.
///
/// Returns `Ok(false)` when another open file description holds the write
/// lock.
pub(crate) fn try_read_lock(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
    let fl = flock_for(slot, libc::F_RDLCK as libc::c_short)?;
    // SAFETY: `fd` is a live descriptor and `fl` a valid flock for F_OFD_SETLK.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Releases the lock on `slot` held through `fd` (a no-op if not held).
pub(crate) fn unlock(fd: BorrowedFd<'_>, slot: u64) -> io::Result<()> {
    let fl = flock_for(slot, libc::F_UNLCK as libc::c_short)?;
    // SAFETY: `fd` is a live descriptor and `fl` a valid flock for F_OFD_SETLK.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether some open file description other than `fd`'s holds `slot`.
///
/// Works on a read-only descriptor, so inspection never takes a lock.
pub(crate) fn is_held(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
    let mut fl = flock_for(slot, libc::F_WRLCK as libc::c_short)?;
    // SAFETY: `fd` is a live descriptor; F_OFD_GETLK writes back into `fl`.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// The first lock (`(start, len)`, `len == 0` meaning to the end of all
/// offsets) that some open file description other than `fd`'s holds in
/// `[start, start + len)` (`len == 0`: from `start` on), if any.
fn first_held(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let mut fl = flock_for(start, libc::F_WRLCK as libc::c_short)?;
    fl.l_len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock range out of range"))?;
    // SAFETY: `fd` is a live descriptor; F_OFD_GETLK writes back into `fl`.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some((fl.l_start.max(0) as u64, fl.l_len.max(0) as u64)))
}

/// Every slot some open file description other than `fd`'s holds a lock
/// on (read or write), sorted; a lock over a range counts as its first
/// slot and its last. The kernel answers one conflicting lock per query,
/// not necessarily the lowest, so the range is split around each answer
/// (two queries per lock found, plus one).
pub(crate) fn held_slots(fd: BorrowedFd<'_>) -> io::Result<Vec<u64>> {
    /// Offsets past this are no slot (an `off_t` is signed).
    const END: u64 = i64::MAX as u64;
    let mut held = Vec::new();
    let mut ranges = vec![(0u64, END)];
    while let Some((start, end)) = ranges.pop() {
        if start >= end {
            continue;
        }
        let Some((at, len)) = first_held(fd, start, end - start)? else {
            continue;
        };
        let at = at.clamp(start, end - 1);
        let last = if len == 0 {
            end - 1
        } else {
            at.saturating_add(len - 1).min(end - 1)
        };
        held.push(at);
        if last != at {
            held.push(last);
        }
        ranges.push((start, at));
        ranges.push((last + 1, end));
    }
    held.sort_unstable();
    held.dedup();
    Ok(held)
}

/// Takes a write lock on every offset of the file through `fd`, without
/// blocking: `Ok(false)` if another open file description holds any lock
/// on it. While it is held, no other description can take any liveness
/// lock of the file (nobody can attach).
pub(crate) fn try_lock_whole(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut fl = flock_for(0, libc::F_WRLCK as libc::c_short)?;
    fl.l_len = 0;
    set_lock(fd, &fl)
}
