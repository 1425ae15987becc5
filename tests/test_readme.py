"""The README is the user's door: its Python and shell examples run as written, on a real saved model."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import run_python

from envprint.record.store import read_fingerprint

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_examples_run(mlp, keras, tmp_path, monkeypatch, caplog):
    blocks = python_blocks()
    assert len(blocks) == 3, "the README shows a serving example, a library example and logging a report"
    monkeypatch.chdir(tmp_path)
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(1).standard_normal((4, 4)).astype("float32"))
    library, serving = blocks[1], blocks[0]
    exec(compile(library, "README.md (library)", "exec"), {})  # saves the record, then verifies
    model = keras.models.load_model("model.keras", compile=False)
    exec(compile(serving, "README.md (serving)", "exec"), {"model": model})
    with caplog.at_level("INFO", logger="envprint"):
        exec(compile(blocks[2], "README.md (logging)", "exec"), {"model": model})
    logged = caplog.records[-1].getMessage()
    assert logged.startswith("envprint verify: PASSED (bit-identical)\n  model:       <in-memory")
    # Copied as is into a fresh Python (no logging set up by pytest), the snippet logs the report.
    done = run_python(f"import os\nos.chdir({str(tmp_path)!r})\nmodel = 'model.keras'\n" + blocks[2], timeout=300)
    assert done.returncode == 0, done.stderr
    assert "INFO:envprint:envprint verify: PASSED (bit-identical)\n  model:       model.keras\n" in done.stderr


# The README's shell blocks: every line either runs here as written (an envprint command, in a
# folder holding the files its examples name), or runs elsewhere, named below: the repository's
# own scripts (CI runs scripts/test.sh itself; the demo trains for minutes, and its steps are
# envprint save and verify), and whole sections whose blocks need more than a model file and
# have their own test.
RUN_ELSEWHERE = {
    "./scripts/test.sh": "CI's own command (.ci/run)",
    "./scripts/demo.sh": "trains a classifier for minutes; its steps are envprint save/verify, tested here",
}
SECTIONS_RUN_BY = {  # README section -> the test file that runs its shell block
    "HTML report": "tests/test_html_report.py",
    "MLflow": "tests/test_mlflow.py",
    "Integrations": "tests/test_integrations_readme.py",
    "Endpoints": "tests/test_endpoint_tfserving.py",
}


def shell_lines() -> list[str]:
    """Each command line of the README's ```bash blocks, comments stripped, but for SECTIONS_RUN_BY's."""
    lines = []
    for section in README.read_text().split("\n## "):
        title = section.split("\n", 1)[0].strip()
        blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
        if title in SECTIONS_RUN_BY and blocks:
            assert (README.parent / SECTIONS_RUN_BY[title]).is_file(), f"{SECTIONS_RUN_BY[title]} runs '## {title}'"
            continue
        for block in blocks:
            for line in block.splitlines():
                command = line.split("#", 1)[0].strip()
                if command:
                    lines.append(command)
    return lines


def test_readme_shell_lines_are_all_known():
    lines = shell_lines()
    assert "envprint verify model.keras" in lines, "the README's quick start shows save and verify"
    unknown = [line for line in lines if not line.startswith("envprint ") and line not in RUN_ELSEWHERE]
    assert unknown == [], "README shell lines this test cannot run: make them envprint commands, or list them above"


@pytest.mark.subprocess
def test_readme_shell_examples_run(mlp, tmp_path):
    # The files the examples name, made real: a Keras model and real-looking samples for its input.
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(2).standard_normal((5, 4)).astype("float32"))
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    for line in shell_lines():
        if line in RUN_ELSEWHERE:
            continue
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"$ {line}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    record = read_fingerprint(tmp_path / "model.keras.envprint" / "fingerprint.json")  # "writes model.keras.envprint/"
    assert (record.probes.source, record.probes.file, record.seeds.declared) == ("file", "samples.npz", 1234)
