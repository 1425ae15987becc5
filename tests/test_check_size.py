"""scripts/check_size.py: the size limits fail, name each offender as file:line, and take a reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_size.py"


def run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "pkg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def module(tmp_path: Path, header: str = "", lines: int = 401) -> Path:
    path = tmp_path / "pkg" / "big.py"
    path.parent.mkdir(exist_ok=True)
    head = f'"""A big module."""\n{header}'
    path.write_text(head + "X = 1\n" * (lines - head.count("\n")))
    return path


def function(tmp_path: Path, def_line: str = "def long():", lines: int = 61) -> Path:
    path = tmp_path / "pkg" / "funcs.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text("import os\n\n\nclass Box:\n    " + def_line + "\n" + "        x = 1\n" * (lines - 1))
    return path


def test_a_module_over_400_lines_fails_with_its_file_and_line(tmp_path):
    module(tmp_path)
    result = run(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "pkg/big.py:1: module has 401 lines (limit 400): split it, or say why it must stay whole with "
        "'# size: <reason>'",
        "size: 1 problem(s); limits: 400 lines a module, 60 a function",
    ]


def test_a_module_of_400_lines_passes(tmp_path):
    module(tmp_path, lines=400)
    result = run(tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        "size: within limits (0 marked '# size:')\n",
    )


def test_a_module_that_says_why_it_stays_whole_passes(tmp_path):
    module(tmp_path, header="# size: one table of every TensorFlow release, read top to bottom\n")
    result = run(tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        "size: within limits (1 marked '# size:')\n",
    )


def test_a_function_over_60_lines_fails_at_its_def_line_by_its_qualified_name(tmp_path):
    function(tmp_path)
    result = run(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "pkg/funcs.py:5: function Box.long has 61 lines (limit 60): split it, or say why it must stay whole with "
        "'# size: <reason>'"
    )


def test_a_function_marked_on_its_def_line_passes_and_a_marker_without_a_reason_does_not(tmp_path):
    function(tmp_path, def_line="def long():  # size: one state machine, each branch a state")
    assert run(tmp_path).returncode == 0
    function(tmp_path, def_line="def long():  # size:")
    result = run(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "pkg/funcs.py:5: function Box.long has 61 lines (limit 60): its '# size:' marker gives no reason; "
        "say why it must stay whole"
    )
