"""Fixtures of the Python bindings' tests: every test gets a namespace in
a fresh base directory, removed with everything in it at the end of the
test whether it passes or fails; nothing is left in /dev/shm."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import shmbus

REPO = Path(__file__).resolve().parents[2]


def base_root() -> str:
    """Where base directories go: $SHMBUS_DIR (the test command's private
    directory), else /dev/shm, else the temp dir."""
    for candidate in (os.environ.get("SHMBUS_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate):
            return candidate
    return tempfile.gettempdir()


@pytest.fixture(scope="session", autouse=True)
def sweep_stale_bases():
    """Removes the base directories of test processes that no longer exist
    (killed before their teardown ran): `shmbus-test-py-<pid>-…`."""
    root = base_root()
    for name in os.listdir(root):
        if not name.startswith("shmbus-test-py-"):
            continue
        pid = name[len("shmbus-test-py-"):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


@pytest.fixture
def base():
    """A fresh base directory, removed at the end of the test."""
    path = tempfile.mkdtemp(prefix=f"shmbus-test-py-{os.getpid()}-", dir=base_root())
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bus(base):
    """Namespace `t` under `base`."""
    with shmbus.Bus("t", base=base) as b:
        yield b


@pytest.fixture(scope="session")
def feed_bin():
    """The Rust market-data feed (examples/market_data_feed.rs): the path
    the test command built, else built here."""
    path = os.environ.get("SHMBUS_FEED_BIN")
    if not path:
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "-p", "shmbus-examples",
             "--example", "market_data_feed"],
            cwd=REPO,
            check=True,
        )
        path = str(REPO / "target" / "release" / "examples" / "market_data_feed")
    assert os.access(path, os.X_OK), f"no feed binary at {path}"
    return path
