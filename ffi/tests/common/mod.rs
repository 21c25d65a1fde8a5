//! What the tests and the bench of the C API share: the library cargo
//! built (found next to the running test binary), compiling C and C++
//! programs against it with the system gcc and g++, and the temporary
//! namespace of the core crate's tests.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../tests/common/temp_ns.rs"]
mod temp_ns;
pub use temp_ns::TempNs;

/// What a Rust staticlib needs from the system on Linux
/// (`rustc --print native-static-libs`).
pub const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The cargo output directory of this build (`target/<profile>`): the test
/// or bench binary runs from its `deps/` folder.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("binary folder");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile folder")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// `libshmbus_ffi.a` as cargo built it for this test run: a test build
/// leaves it in `deps/` (only `cargo build` copies it up a level).
pub fn staticlib() -> PathBuf {
    let dir = profile_dir();
    let candidates = [
        dir.join("deps/libshmbus_ffi.a"),
        dir.join("libshmbus_ffi.a"),
    ];
    candidates
        .iter()
        .find(|lib| lib.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "libshmbus_ffi.a is in neither {} nor {}: cargo test -p shmbus-ffi builds it",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// The repository's `include/` directory.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include")
}

/// A C or C++ source of `ffi/tests/c`.
pub fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// The language of a program to compile.
#[derive(Clone, Copy, Debug)]
pub enum Lang {
    /// C11 with gcc.
    C,
    /// C++17 with g++.
    Cpp,
}

/// The static library as it is shipped: built by a nested cargo with the
/// `release-lto` profile, as the README's build command does (cargo drops
/// `lto` from a build that also makes this crate's rlib, so the library a
/// test build leaves is not link-time optimised). The first build of the
/// profile takes a minute; later ones are incremental.
pub fn release_lto_staticlib() -> PathBuf {
    let target = profile_dir()
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["rustc", "--quiet", "--profile", "release-lto", "-p"])
        .args(["shmbus-ffi", "--lib", "--crate-type", "staticlib"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo to build the release-lto static library");
    assert!(
        status.success(),
        "cargo failed to build the release-lto static library"
    );
    let lib = target.join("release-lto/libshmbus_ffi.a");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// Compiles `sources` into the executable `name` (in `target/<profile>/
/// ffi-programs/`) against the static library, with `flags` added. Panics
/// with the compiler's output if it fails, and with what to install if the
/// compiler is missing.
pub fn compile(name: &str, lang: Lang, sources: &[PathBuf], flags: &[&str]) -> PathBuf {
    compile_against(&staticlib(), name, lang, sources, flags)
}

/// As [`compile`], against the static library `lib`.
pub fn compile_against(
    lib: &Path,
    name: &str,
    lang: Lang,
    sources: &[PathBuf],
    flags: &[&str],
) -> PathBuf {
    let (compiler, std) = match lang {
        Lang::C => ("gcc", "-std=c11"),
        Lang::Cpp => ("g++", "-std=c++17"),
    };
    let out_dir = profile_dir().join("ffi-programs");
    std::fs::create_dir_all(&out_dir).expect("create the programs folder");
    let exe = out_dir.join(name);
    let mut cmd = Command::new(compiler);
    cmd.args([std, "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir())
        .arg("-I")
        .arg(source(""))
        .args(flags)
        .args(sources)
        .arg("-o")
        .arg(&exe)
        .arg(lib)
        .args(NATIVE_LIBS);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{compiler} not found: the C and C++ tests of shmbus-ffi need the system gcc and g++ \
             (Debian: apt-get install gcc g++)"
        ),
        Err(e) => panic!("cannot run {compiler}: {e}"),
    };
    assert!(
        output.status.success(),
        "{compiler} failed to build {name}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Runs a finished program and returns its output; panics with both
/// streams if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("run the program");
    assert!(
        output.status.success(),
        "{cmd:?} failed with {}:\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh directory under the system temp dir, removed with everything in
/// it on drop (whether the test passes or fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `shmbus-ffi-<tag>-<pid>-<n>` under the temp dir.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmbus-ffi-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
