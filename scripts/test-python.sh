#!/usr/bin/env bash
# The Python bindings' tests (python/): a virtualenv under
# target/python-venv with maturin and pytest from PyPI, the extension
# built into it (`maturin develop --release`), then pytest on
# python/tests (publish/subscribe across a Rust publisher process and
# Python, the work queue, memoryview lifetimes, errors, Protocol V2
# golden vectors, the README's Python snippet, the bench's smoke run).
#
#   scripts/test-python.sh [pytest arguments]
#
# Idempotent: the venv is reused, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# Private base directory for everything the tests and the README snippet
# open (the same rule as scripts/test-all.sh), removed at exit.
SHMBUS_DIR="$(mktemp -d "${TMPDIR:-/dev/shm}/shmbus-python-XXXXXX")"
export SHMBUS_DIR
trap 'rm -rf "$SHMBUS_DIR"' EXIT

venv="$root/target/python-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin==1.9.6" "pytest==8.3.5"

echo "== python: maturin develop --release (python/) =="
# The extension and its Rust publisher build in python/target, apart from
# the workspace's target directory.
(cd python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    maturin develop --release --quiet)

echo "== python: Rust publisher for the cross-process test =="
cargo build --release --quiet -p shmbus-examples --example market_data_feed
export SHMBUS_FEED_BIN="$root/target/release/examples/market_data_feed"

echo "== python: pytest python/tests =="
"$venv/bin/python" -m pytest -q python/tests "$@"
