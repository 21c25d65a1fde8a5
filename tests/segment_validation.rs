//! Opening refuses every kind of bad segment with its own error, and never
//! spins forever or follows a link. The segments are SPSC channels' ring
//! files, named by the directory; a test that damages one or puts
//! something else in its place takes the path from the channel.

mod common;

use std::fs::{self, OpenOptions as FsOpen};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::TempNs;
use shmbus::directory::DirectoryError;
use shmbus::layout::LAYOUT_VERSION;
use shmbus::ring::spsc::SpscConfig;
use shmbus::segment::{BaseDirProblem, OpenOptions};
use shmbus::{Bus, BusError, Channel, Namespace, SegmentError};

const SHORT: OpenOptions = OpenOptions {
    init_timeout: Duration::from_millis(100),
};

/// The bus of `t`, opening segments with [`SHORT`].
fn bus(t: &TempNs) -> Bus {
    Bus::at_with(&t.base, t.ns.name(), SHORT).expect("bus")
}

/// The channel `name` of 4096 bytes, created.
fn ring(t: &TempNs, name: &str) -> Channel {
    bus(t)
        .spsc(name, &SpscConfig::with_capacity(4096))
        .expect("create ring")
}

fn poke(ch: &Channel, offset: u64, bytes: &[u8]) {
    let f = FsOpen::new()
        .write(true)
        .open(ch.path())
        .expect("open for poking");
    f.write_all_at(bytes, offset).expect("poke");
}

/// Replaces the ring file of `ch` with what `make` creates at its path.
fn replace_file(ch: &Channel, make: impl FnOnce(&std::path::Path)) {
    fs::remove_file(ch.path()).expect("remove the ring file");
    make(&ch.path());
}

/// The segment error a new consumer of `ch` gets.
fn open_err(ch: &Channel) -> SegmentError {
    match ch.consumer() {
        Ok(_) => panic!("{}: a bad segment was accepted", ch.name()),
        Err(BusError::Segment(e)) => {
            // Every error reads as one lowercase sentence naming the file.
            let msg = e.to_string();
            assert!(!msg.ends_with('.') && !msg.contains('\n'), "{msg}");
            e
        }
        Err(e) => panic!("{}: not a segment error: {e}", ch.name()),
    }
}

/// The segment error behind a bus error.
fn segment_err(e: BusError) -> SegmentError {
    match e {
        BusError::Segment(e) | BusError::Directory(DirectoryError::Segment(e)) => e,
        other => panic!("not a segment error: {other}"),
    }
}

#[test]
fn zero_byte_file_times_out_as_too_small() {
    let t = TempNs::new("zero");
    let z = ring(&t, "z");
    replace_file(&z, |path| {
        let f = fs::File::create(path).expect("create");
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .expect("chmod");
    });
    let started = Instant::now();
    let e = open_err(&z);
    assert!(matches!(e, SegmentError::TooSmall { size: 0, .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited too long"
    );
}

#[test]
fn never_initialised_segment_times_out() {
    let t = TempNs::new("uninit");
    let u = ring(&t, "u");
    // The open waits `init_timeout` (100 ms) from the file's creation (its
    // mtime, which the kernel stamps from a clock with a few milliseconds'
    // granularity), so the wait is timed from just before it too.
    let started = Instant::now();
    replace_file(&u, |path| {
        let f = fs::File::create(path).expect("create");
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .expect("chmod");
        f.set_len(4096 + 768).expect("size it like a ring");
    });
    let e = open_err(&u);
    assert!(matches!(e, SegmentError::NotInitialised { .. }), "{e}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[test]
fn file_shorter_than_its_header_says() {
    let t = TempNs::new("short");
    let s = ring(&t, "s");
    fs::OpenOptions::new()
        .write(true)
        .open(s.path())
        .expect("open")
        .set_len(1024)
        .expect("truncate");
    let e = open_err(&s);
    assert!(
        matches!(
            e,
            SegmentError::SizeMismatch {
                declared: 4864,
                actual: 1024,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn wrong_magic() {
    let t = TempNs::new("magic");
    let m = ring(&t, "m");
    poke(&m, 0, b"JUNK");
    assert!(matches!(open_err(&m), SegmentError::BadMagic { .. }));
}

#[test]
fn another_layout_version() {
    let t = TempNs::new("version");
    let v = ring(&t, "v");
    poke(&v, 4, &99u32.to_ne_bytes());
    let e = open_err(&v);
    assert!(
        matches!(
            e,
            SegmentError::VersionMismatch {
                found: 99,
                expected: LAYOUT_VERSION,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn another_layout_hash() {
    let t = TempNs::new("hash");
    let h = ring(&t, "h");
    poke(&h, 8, &0x1234_5678u64.to_ne_bytes());
    assert!(matches!(
        open_err(&h),
        SegmentError::LayoutMismatch {
            found: 0x1234_5678,
            ..
        }
    ));
}

#[test]
fn control_block_with_impossible_capacity() {
    let t = TempNs::new("cap");
    let c = ring(&t, "c");
    poke(&c, 128, &3000u64.to_ne_bytes());
    assert!(matches!(open_err(&c), SegmentError::Corrupt { .. }));
}

#[test]
fn control_block_that_disagrees_with_the_directory() {
    let t = TempNs::new("disagree");
    let c = ring(&t, "c");
    // A valid control block, but not the channel's: a smaller max payload
    // (at 128 + 8; the directory says 2032), then wake-ups (flags at
    // 128 + 12; the directory says off).
    poke(&c, 136, &1000u32.to_ne_bytes());
    match open_err(&c) {
        SegmentError::Corrupt { reason, .. } => assert!(
            reason.contains("max payload 1000 but the directory says 2032"),
            "{reason}"
        ),
        other => panic!("expected Corrupt, got {other}"),
    }
    poke(&c, 136, &2032u32.to_ne_bytes());
    poke(&c, 140, &1u32.to_ne_bytes());
    match open_err(&c) {
        SegmentError::Corrupt { reason, .. } => assert!(
            reason.contains("wake-ups 1 but the directory says 0"),
            "{reason}"
        ),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn symlink_in_place_of_the_file() {
    let t = TempNs::new("link");
    let real = ring(&t, "real");
    let l = ring(&t, "l");
    replace_file(&l, |path| {
        std::os::unix::fs::symlink(real.path(), path).expect("symlink")
    });
    assert!(matches!(open_err(&l), SegmentError::Symlink { .. }));
    // Creating over a link must not follow it either: put one where the
    // next creation of "l" makes its file (entry and epoch: the removed
    // ring's epoch plus one).
    let bus = bus(&t);
    l.remove().expect("remove");
    let record = l.record();
    let next = t.file(
        &format!("spsc-{}-{}.l", record.entry, record.epoch + 1),
        "spsc",
    );
    std::os::unix::fs::symlink(real.path(), &next).expect("symlink");
    let e = segment_err(
        bus.spsc("l", &SpscConfig::with_capacity(4096))
            .err()
            .expect("exists"),
    );
    assert!(matches!(e, SegmentError::AlreadyExists { .. }), "{e}");
    assert!(fs::symlink_metadata(&next)
        .expect("still the link")
        .is_symlink());
}

#[test]
fn file_writable_by_others() {
    let t = TempNs::new("mode");
    let w = ring(&t, "w");
    fs::set_permissions(w.path(), fs::Permissions::from_mode(0o666)).expect("chmod");
    assert!(matches!(
        open_err(&w),
        SegmentError::InsecureMode { mode: 0o666, .. }
    ));
}

#[test]
fn file_owned_by_another_uid() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    let t = TempNs::new("owner");
    let o = ring(&t, "o");
    std::os::unix::fs::chown(o.path(), Some(65534), Some(65534)).expect("chown");
    assert!(matches!(
        open_err(&o),
        SegmentError::WrongOwner { owner: 65534, .. }
    ));
}

#[test]
fn missing_segment_is_not_found() {
    let t = TempNs::new("missing");
    let nope = ring(&t, "nope");
    fs::remove_file(nope.path()).expect("rm");
    assert!(matches!(open_err(&nope), SegmentError::NotFound { .. }));
}

#[test]
fn invalid_names_never_reach_the_file_system() {
    let t = TempNs::new("names");
    let long = "x".repeat(65);
    let bus = bus(&t);
    for bad in ["../x", "a/b", "", "a\0b", long.as_str(), ".hidden", ".."] {
        let e = segment_err(
            bus.spsc(bad, &SpscConfig::with_capacity(4096))
                .err()
                .expect(bad),
        );
        assert!(
            matches!(e, SegmentError::InvalidName { .. }),
            "{bad:?}: {e}"
        );
        let e = segment_err(bus.open_spsc(bad).err().expect("refused"));
        assert!(
            matches!(e, SegmentError::InvalidName { .. }),
            "{bad:?}: {e}"
        );
        assert!(matches!(
            Namespace::at(&t.base, bad),
            Err(SegmentError::InvalidName { .. })
        ));
    }
    // Nothing was created but the directory, and nothing outside the
    // namespace directory.
    let files: Vec<_> = fs::read_dir(t.ns.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(files, ["directory.dir"]);
    assert!(!t.base.join("x.spsc").exists());
}

#[test]
fn files_and_directories_are_private_whatever_the_umask() {
    let t = TempNs::new("perm");
    // SAFETY: umask(2) only swaps the process's mask.
    let old = unsafe { libc::umask(0o000) };
    let p = ring(&t, "p");
    let ns2 = Namespace::at(&t.base, "second").expect("namespace");
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let mode = |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&p.path()), 0o600);
    assert_eq!(mode(&t.file("directory", "dir")), 0o600);
    assert_eq!(mode(t.ns.path()), 0o700);
    assert_eq!(mode(ns2.path()), 0o700);
}

#[test]
fn namespace_directory_that_is_a_symlink_or_shared_is_refused() {
    let t = TempNs::new("nsdir");
    let target = t.base.join("elsewhere");
    fs::create_dir(&target).expect("mkdir");
    std::os::unix::fs::symlink(&target, t.base.join("linked")).expect("symlink");
    assert!(matches!(
        Namespace::at(&t.base, "linked"),
        Err(SegmentError::Symlink { .. })
    ));
    fs::create_dir(t.base.join("open")).expect("mkdir");
    fs::set_permissions(t.base.join("open"), fs::Permissions::from_mode(0o777)).expect("chmod");
    assert!(matches!(
        Namespace::at(&t.base, "open"),
        Err(SegmentError::InsecureMode { .. })
    ));
}

#[test]
fn creating_more_than_the_file_system_holds_fails_now_not_later() {
    let t = TempNs::new("nospace");
    // 1 TiB: more than any tmpfs on these machines can reserve.
    let bus = bus(&t);
    let e = segment_err(
        bus.spsc("huge", &SpscConfig::with_capacity(1 << 40))
            .err()
            .expect("no space"),
    );
    assert!(matches!(e, SegmentError::NoSpace { .. }), "{e}");
    let files: Vec<_> = fs::read_dir(t.ns.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        files,
        ["directory.dir"],
        "a failed create left its file behind"
    );
    // The entry was given back: a ring that fits is made under the name.
    let huge = bus
        .spsc("huge", &SpscConfig::with_capacity(4096))
        .expect("create what fits");
    assert!(huge.was_created());
}

#[test]
fn creating_twice_opens_the_first_ring_and_never_makes_another() {
    let t = TempNs::new("twice");
    let d = ring(&t, "d");
    assert!(d.was_created());
    d.producer()
        .expect("producer")
        .try_send(1, b"kept")
        .expect("send");
    let again = ring(&t, "d");
    assert!(!again.was_created());
    assert_eq!(again.path(), d.path());
    assert_eq!(
        &again
            .consumer()
            .expect("consumer")
            .try_read()
            .expect("read")[..],
        b"kept"
    );
}

#[test]
fn one_producer_per_ring_even_within_a_process() {
    let t = TempNs::new("one");
    let r = ring(&t, "r");
    let first = r.producer().expect("first producer");
    let e = segment_err(r.producer().err().expect("second refused"));
    assert!(
        matches!(
            e,
            SegmentError::AlreadyAttached {
                role: "producer",
                ..
            }
        ),
        "{e}"
    );
    // Through another handle on the same channel too.
    let e = segment_err(
        bus(&t)
            .open_spsc("r")
            .expect("open")
            .producer()
            .err()
            .expect("refused"),
    );
    assert!(matches!(e, SegmentError::AlreadyAttached { .. }), "{e}");
    drop(first);
    r.producer().expect("free again after drop");
}

#[test]
fn shmbus_dir_overrides_the_base_directory() {
    let t = TempNs::new("envdir");
    // Only this test reads SHMBUS_DIR in this binary.
    std::env::set_var("SHMBUS_DIR", &t.base);
    let ns = Namespace::open("from-env").expect("namespace");
    std::env::remove_var("SHMBUS_DIR");
    assert_eq!(ns.path(), t.base.join("from-env"));
}

// ---------------------------------------------------------------------------
// The base directory
// ---------------------------------------------------------------------------

fn unsafe_base(base: &std::path::Path) -> (std::path::PathBuf, BaseDirProblem, String) {
    match Namespace::at(base, "ns") {
        Ok(_) => panic!("{} was accepted as a base", base.display()),
        Err(e @ SegmentError::UnsafeBaseDir { .. }) => {
            let msg = e.to_string();
            assert!(!msg.ends_with('.') && !msg.contains('\n'), "{msg}");
            assert!(msg.contains("set SHMBUS_DIR"), "{msg}");
            let SegmentError::UnsafeBaseDir { dir, problem, .. } = e else {
                unreachable!()
            };
            (dir, problem, msg)
        }
        Err(e) => panic!("{}: wrong error {e:?}", base.display()),
    }
}

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown (the tests run as root)");
}

#[test]
fn base_directory_that_is_a_symlink_is_refused() {
    let t = TempNs::new("base-link");
    let real = t.base.join("real");
    fs::create_dir(&real).expect("mkdir");
    let link = t.base.join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let (dir, problem, _) = unsafe_base(&link);
    assert_eq!((dir, problem), (link, BaseDirProblem::Symlink));
    // Nothing was created through the link.
    assert_eq!(fs::read_dir(&real).expect("read dir").count(), 0);
}

#[test]
fn base_directory_owned_by_another_user_is_refused() {
    let t = TempNs::new("base-owner");
    for mode in [0o777, 0o700, 0o1777] {
        let base = t.base.join(format!("theirs-{mode:o}"));
        fs::create_dir(&base).expect("mkdir");
        fs::set_permissions(&base, fs::Permissions::from_mode(mode)).expect("chmod");
        chown(&base, 65534);
        let (dir, problem, msg) = unsafe_base(&base);
        assert_eq!(dir, base);
        assert!(
            matches!(problem, BaseDirProblem::Owner { owner: 65534, .. }),
            "{problem:?}"
        );
        assert!(msg.contains("uid 65534"), "{msg}");
        assert!(!base.join("ns").exists(), "a namespace was made in it");
    }
}

#[test]
fn base_directory_writable_by_others_and_not_sticky_is_refused() {
    let t = TempNs::new("base-open");
    for mode in [0o777, 0o770, 0o722] {
        let base = t.base.join(format!("open-{mode:o}"));
        fs::create_dir(&base).expect("mkdir");
        fs::set_permissions(&base, fs::Permissions::from_mode(mode)).expect("chmod");
        let (dir, problem, msg) = unsafe_base(&base);
        assert_eq!(
            (dir, problem),
            (base.clone(), BaseDirProblem::Writable { mode })
        );
        assert!(
            msg.contains("writable by other users and not sticky"),
            "{msg}"
        );
    }
}

#[test]
fn base_directory_under_an_unsafe_parent_is_refused() {
    let t = TempNs::new("base-parent");
    let parent = t.base.join("shared");
    fs::create_dir(&parent).expect("mkdir");
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).expect("chmod");
    // Both for a base that exists (0700, ours) and one that would be made.
    let existing = parent.join("mine");
    fs::create_dir(&existing).expect("mkdir");
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o700)).expect("chmod");
    for base in [existing, parent.join("new").join("deeper")] {
        let (dir, problem, msg) = unsafe_base(&base);
        assert_eq!(dir, parent, "{msg}");
        assert_eq!(problem, BaseDirProblem::Writable { mode: 0o777 });
        assert!(msg.contains("lies under"), "{msg}");
    }
    assert!(
        !parent.join("new").exists(),
        "created under an unsafe parent"
    );
}

#[test]
fn base_reached_through_another_users_symlink_is_refused() {
    let t = TempNs::new("base-theirlink");
    let real = t.base.join("real");
    fs::create_dir(&real).expect("mkdir");
    let link = t.base.join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let c = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: lchown(2) on a NUL-terminated path we just made; changes the link itself.
    let rc = unsafe { libc::lchown(c.as_ptr(), 65534, 65534) };
    assert_eq!(rc, 0);
    let (dir, problem, _) = unsafe_base(&link.join("base"));
    assert_eq!(dir, link);
    assert!(
        matches!(problem, BaseDirProblem::Owner { owner: 65534, .. }),
        "{problem:?}"
    );
    assert!(!real.join("base").exists(), "created through their link");
}

#[test]
fn sticky_root_owned_base_directory_is_accepted() {
    let t = TempNs::new("base-sticky");
    let base = t.base.join("sticky");
    fs::create_dir(&base).expect("mkdir");
    fs::set_permissions(&base, fs::Permissions::from_mode(0o1777)).expect("chmod");
    chown(&base, 0);
    let ns = Namespace::at(&base, "ns").expect("a sticky root-owned base is fine");
    assert_eq!(ns.path(), base.join("ns"));
    let mode = fs::metadata(ns.path()).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
    // Missing bases and parents are made 0700.
    let fresh = t.base.join("a").join("b");
    Namespace::at(&fresh, "ns").expect("fresh base");
    for d in [t.base.join("a"), fresh] {
        assert_eq!(
            fs::metadata(&d).expect("stat").permissions().mode() & 0o7777,
            0o700
        );
    }
}

#[test]
fn base_that_is_a_file_is_refused() {
    let t = TempNs::new("base-file");
    let file = t.base.join("file");
    fs::write(&file, b"x").expect("write");
    let (dir, problem, _) = unsafe_base(&file);
    assert_eq!((dir, problem), (file, BaseDirProblem::NotDirectory));
}

#[test]
fn default_base_directory_is_per_user() {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        Namespace::default_base_dir(),
        std::path::PathBuf::from(format!("/dev/shm/shmbus-{uid}"))
    );
}

#[test]
fn header_flags_mean_nothing_in_a_header_that_does_not_validate() {
    let t = TempNs::new("junkflags");
    let j = ring(&t, "j");
    // Bad magic, and junk where the `removed` flag lives (offset 36).
    poke(&j, 0, b"JUNK");
    poke(&j, 36, &0xdead_beef_u32.to_ne_bytes());
    let e = open_err(&j);
    assert!(matches!(e, SegmentError::BadMagic { .. }), "{e}");
}

#[test]
fn segment_flagged_removed_is_not_opened() {
    let t = TempNs::new("flagged");
    let f = ring(&t, "f");
    // What `Segment::remove` does just before it unlinks.
    poke(&f, 36, &1u32.to_ne_bytes());
    let e = open_err(&f);
    assert!(matches!(e, SegmentError::Removed { .. }), "{e}");
}
