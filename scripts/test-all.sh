#!/usr/bin/env bash
# The whole test suite: unit, integration (cross-process included), doc
# tests, bench smoke runs, then the loom models of every lock-free algorithm.
#
#   scripts/test-all.sh
#
# Knobs: LOOM_MAX_PREEMPTIONS (default 3), SHMBUS_XPROC_RECORDS (default
# 10000000 records in the cross-process SPSC test).
set -euo pipefail
cd "$(dirname "$0")/.."

# Code that uses the default base directory (the README's snippets, run
# as doc tests) works in a private one, removed at exit.
SHMBUS_DIR="$(mktemp -d "${TMPDIR:-/dev/shm}/shmbus-tests-XXXXXX")"
export SHMBUS_DIR
trap 'rm -rf "$SHMBUS_DIR"' EXIT

echo "== workspace tests (release) =="
cargo test --workspace --release

echo "== loom models (RUSTFLAGS=--cfg shmbus_loom) =="
# A separate target directory keeps the loom build from invalidating the
# normal one (RUSTFLAGS changes every crate's fingerprint).
RUSTFLAGS="--cfg shmbus_loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
    cargo test -p loom-tests --release --target-dir target/loom
scripts/test-python.sh
