"""The CI skip guard of tests/conftest.py, run on a one-test suite in a fresh pytest process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ALLOWED = "on this CPU oneDNN on and off give the same bits: nothing to investigate"  # in skip_allowlist.txt


def run_suite(folder: Path, reason: str, ci: str) -> subprocess.CompletedProcess:
    for name in ("conftest.py", "envhelpers.py", "jsoncheck.py", "skip_allowlist.txt"):
        shutil.copy2(TESTS / name, folder / name)
    (folder / "test_one.py").write_text(f"import pytest\n\n\ndef test_one():\n    pytest.skip({reason!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("reason", "ci", "exit_code"),
    [
        ("GPU not available", "true", 1),  # CI: a skip nobody allowed fails the run
        ("GPU not available", "", 0),  # a developer's machine: a skip is a skip
        (ALLOWED, "true", 0),  # CI: an allowed skip passes
    ],
)
def test_ci_fails_a_run_with_a_skip_not_on_the_allowlist(tmp_path, reason, ci, exit_code):
    done = run_suite(tmp_path, reason, ci)
    assert done.returncode == exit_code, done.stdout + done.stderr
    listed = "SKIPPED test_one.py::test_one: GPU not available" in done.stdout.splitlines()
    assert listed == (exit_code == 1), done.stdout
