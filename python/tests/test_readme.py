"""The README's Python snippets, run as programs: each in its own process
with a private base directory ($SHMBUS_DIR), which must be empty after."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import base_root

README = Path(__file__).resolve().parents[2] / "README.md"
SNIPPETS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def test_the_readme_has_python_snippets():
    assert SNIPPETS


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.splitlines()[0][:40])
def test_readme_snippet_runs_and_leaves_nothing(snippet, base):
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [sys.executable, "-c", snippet],
            env=dict(os.environ, SHMBUS_DIR=base),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert os.listdir(base) == [], "the snippet left files behind"
