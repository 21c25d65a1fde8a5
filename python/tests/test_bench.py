"""The bench's smoke run: it runs, prints every loop, leaves nothing; and
each loop alone, as a profiler runs it."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench.py"


def test_bench_smoke_run(base):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--cpu", "-1"],
        env={"SHMBUS_DIR": base, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for loop in ("python view", "python recv", "rust"):
        assert loop in done.stdout
    assert "ratio to rust" in done.stdout


def test_bench_profile_runs_each_loop_alone(base):
    for loop in ("python view", "python read", "python recv", "python empty poll", "rust"):
        done = subprocess.run(
            [sys.executable, str(BENCH), "--profile", loop, "--records", "100"],
            env={"SHMBUS_DIR": base, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (loop, done.stderr)
        assert done.stdout == ""
