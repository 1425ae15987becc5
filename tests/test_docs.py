"""The documentation is the user's door: every code block in README.md and docs/**/*.md runs as written.

Each block that a shell or Python could run is run by a test: the unmarked shell blocks here, each
page's lines in order on a real saved model; a block marked ``<!-- run-by: tests/test_x.py -->``
by that test (which names the page); a block marked ``<!-- not-run: why -->`` by none, and says why.
The generated reference pages are checked against the code they come from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from docpages import ROOT, block, blocks, pages
from envhelpers import run_python

from envprint.record.store import read_fingerprint

RUNNABLE = {"python", "py", "bash", "sh", "shell", "console"}
# Shell lines that run elsewhere: the repository's own scripts (CI runs scripts/test.sh itself; the
# demo trains for minutes, and its steps are envprint save and verify, run here).
RUN_ELSEWHERE = {
    "./scripts/test.sh": "CI's own command (.ci/run)",
    "./scripts/demo.sh": "trains a classifier for minutes; its steps are envprint save/verify, tested here",
}
# The Python blocks this file runs, by page and heading (each marked run-by: tests/test_docs.py).
SERVING = ("README.md", "Quick start")
GETTING_STARTED = ("docs/getting-started.md", "Your own model")
LOGGING = ("docs/how-to/serving.md", "Serving start-up")
LIBRARY = ("docs/reference/library.md", "Library")


def runnable_blocks():
    return [b for page in pages() for b in blocks(page) if b.lang in RUNNABLE]


def test_every_runnable_block_is_run_by_a_test():
    for b in runnable_blocks():
        where = f"{b.page}:{b.line}"
        if b.marker and b.marker[0] == "not-run":
            assert len(b.marker[1]) > 10, f"{where}: say why the block cannot run"
        elif b.marker:
            test = ROOT / b.marker[1]
            assert test.is_file(), f"{where}: run-by {b.marker[1]}, which does not exist"
            assert b.page in test.read_text(encoding="utf-8"), f"{where}: {b.marker[1]} never names {b.page}"
        else:
            assert b.lang in ("bash", "sh"), f"{where}: a {b.lang} block needs a run-by or not-run marker"
            unknown = [line for line in shell_lines(b.code) if not line.startswith("envprint ")]
            assert set(unknown) <= set(RUN_ELSEWHERE), (
                f"{where}: shell lines this test cannot run: {unknown}; make them envprint commands, "
                "or mark the block run-by the test that runs it"
            )
    not_run = [b for b in runnable_blocks() if b.marker and b.marker[0] == "not-run"]
    assert len(not_run) <= 3, f"not-run is for the rare block that cannot run: {[(b.page, b.line) for b in not_run]}"


def shell_lines(code: str) -> list[str]:
    return [c for c in (line.split("#", 1)[0].strip() for line in code.splitlines()) if c]


def unmarked_shell_pages() -> dict[str, list[str]]:
    """{page: its unmarked shell blocks' command lines, in order}, for the pages that have any."""
    found: dict[str, list[str]] = {}
    for b in runnable_blocks():
        if b.marker is None and b.lang in ("bash", "sh"):
            found.setdefault(b.page, []).extend(shell_lines(b.code))
    return found


def test_the_quick_start_shows_save_and_verify():
    lines = unmarked_shell_pages()["README.md"]
    assert "envprint save model.keras --probes samples.npz --seed 1234" in lines
    assert "envprint verify model.keras" in lines


@pytest.mark.subprocess
@pytest.mark.parametrize("page", sorted(unmarked_shell_pages()))
def test_shell_examples_run(page, mlp_recorded, tmp_path):
    """Each page's lines, in order, in a folder holding model.keras and samples.npz (the files the
    examples name), and the model's record unless the page's first command saves it."""
    lines = [line for line in unmarked_shell_pages()[page] if line not in RUN_ELSEWHERE]
    shutil.copy2(mlp_recorded, tmp_path / "model.keras")
    if not lines[0].startswith("envprint save model.keras"):
        shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), tmp_path / "model.keras.envprint")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(2).standard_normal((5, 4)).astype("float32"))
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    for line in lines:
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (
            f"{page}: $ {line}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    if page == "README.md":  # "writes model.keras.envprint/", with the probes and seed it was given
        record = read_fingerprint(tmp_path / "model.keras.envprint" / "fingerprint.json")
        assert (record.probes.source, record.probes.file, record.seeds.declared) == ("file", "samples.npz", 1234)


def test_python_examples_run(mlp, keras, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(1).standard_normal((4, 4)).astype("float32"))
    exec(compile(block(*LIBRARY, "python"), "docs/reference/library.md", "exec"), {})  # saves, then verifies
    exec(compile(block(*GETTING_STARTED, "python"), "docs/getting-started.md", "exec"), {})  # saves again (force)
    model = keras.models.load_model("model.keras", compile=False)
    exec(compile(block(*SERVING, "python"), "README.md (serving)", "exec"), {"model": model})
    with caplog.at_level("INFO", logger="envprint"):
        exec(compile(block(*LOGGING, "python logging"), "docs/how-to/serving.md (logging)", "exec"), {"model": model})
    logged = caplog.records[-1].getMessage()
    assert logged.startswith("envprint verify: PASSED (bit-identical)\n  model:       <in-memory")
    # Copied as is into a fresh Python (no logging set up by pytest), the snippet logs the report.
    code = f"import os\nos.chdir({str(tmp_path)!r})\nmodel = 'model.keras'\n" + block(*LOGGING, "python logging")
    done = run_python(code, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "INFO:envprint:envprint verify: PASSED (bit-identical)\n  model:       model.keras\n" in done.stderr


def test_the_generated_reference_pages_are_current():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
