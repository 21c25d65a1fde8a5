//! The README's C++ code blocks (```cpp), each compiled with g++ against
//! the static library and run, in a private base directory
//! (`SHMBUS_DIR`), which is removed afterwards.

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile, run_ok, Lang, TempDir, TempNs};

/// The bodies of the README's ```cpp blocks.
fn cpp_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == "```cpp" => current = Some(String::new()),
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn readme_cpp_blocks_compile_and_run() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("read README.md");
    let blocks = cpp_blocks(&readme);
    assert!(!blocks.is_empty(), "the README has no ```cpp block");
    let sources = TempDir::new("readme-cpp");
    for (i, block) in blocks.iter().enumerate() {
        let src = sources.0.join(format!("readme_{i}.cpp"));
        std::fs::write(&src, block).expect("write the snippet");
        let exe = compile(&format!("readme_{i}"), Lang::Cpp, &[src], &[]);
        let ns = TempNs::new("ffi-readme");
        let output = run_ok(Command::new(exe).env("SHMBUS_DIR", &ns.base));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("trade at 6500050000000, side 1"),
            "output:\n{stdout}"
        );
    }
}
