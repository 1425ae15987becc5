"""The README's Integrations section: every example in it runs as written, on a real small model.

The section's Python examples are fenced ```py (tests/test_readme.py runs the ```python ones
elsewhere in the README); its shell examples run in bash with this venv's envprint on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import junitparser
import numpy as np
import pytest
from test_integrations_pytest import envprint_imported  # noqa: F401 (an autouse fixture: pytester runs in process)

import envprint

pytest_plugins = ["pytester"]
README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("\n## Integrations\n")
    return text[start : text.index("\n## ", start + 1)]


def blocks(lang: str) -> dict[str, str]:
    """{subsection title: its first ```lang block} (indented blocks, in a list item, are dedented)."""
    found = {}
    for part in re.split(r"\n### ", section())[1:]:
        title = part.splitlines()[0]
        match = re.search(rf"^( *)```{lang}\n(.*?)^\1```", part, flags=re.DOTALL | re.MULTILINE)
        if match:
            indent = len(match.group(1))
            found[title] = "\n".join(line[indent:] for line in match.group(2).splitlines()) + "\n"
    return found


def run_bash(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_each_integration_has_its_example():
    assert list(blocks("py")) == [
        "Training: a Keras callback",
        "Tests: the pytest plugin",
        "CI panels: JUnit XML",
        "Kubernetes",
    ]
    assert list(blocks("bash")) == ["CI panels: JUnit XML", "Serving: TF Serving warm-up"]


def test_the_keras_callback_example(keras, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(2, name="score")(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    y = np.zeros((32, 2), "float32")
    exec(
        compile(blocks("py")["Training: a Keras callback"], "README.md (keras)", "exec"),
        {"model": model, "x": x, "y": y},
    )
    assert envprint.verify("model.keras").verdict == "identical"
    assert envprint.read_fingerprint("model.keras.envprint/fingerprint.json").probes.num_probes == 16


def test_the_pytest_example(pytester: pytest.Pytester, mlp, mlp_recorded):
    tests = pytester.path / "tests"
    (tests / "models" / "a").mkdir(parents=True)
    shutil.copy2(mlp["keras"], tests / "model.keras")
    np.savez(tests / "samples.npz", features=np.ones((3, 4), "float32"))
    shutil.copy2(mlp_recorded, tests / "models" / "a" / "model.keras")
    shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), tests / "models" / "a" / "model.keras.envprint")
    (tests / "test_model.py").write_text(blocks("py")["Tests: the pytest plugin"])
    # From the project's root: tests/model.keras had no record (written now, the test fails once).
    pytester.runpytest("-p", "no:cacheprovider", "tests").assert_outcomes(passed=1, failed=1)
    assert envprint.read_fingerprint(tests / "model.keras.envprint" / "fingerprint.json").probes.num_probes == 3
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tests)  # cd tests && pytest: the same files
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


@pytest.mark.subprocess
def test_the_junit_and_tf_serving_examples(mlp, tmp_path, monkeypatch):
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    envprint.save(tmp_path / "model.keras")
    shutil.copytree(mlp["savedmodel"], tmp_path / "export")
    for title, code in blocks("bash").items():
        done = run_bash(code, tmp_path)
        assert done.returncode == 0, f"{title}:\n{done.stdout}{done.stderr}"
    assert [s.tests for s in junitparser.JUnitXml.fromfile(str(tmp_path / "results.xml"))] == [3]
    assert (tmp_path / "export" / "assets.extra" / "tf_serving_warmup_requests").is_file()

    monkeypatch.chdir(tmp_path)
    exec(compile(blocks("py")["CI panels: JUnit XML"], "README.md (junit)", "exec"), {})
    assert [s.name for s in junitparser.JUnitXml.fromfile("all-models.xml")] == ["envprint verify model.keras"]


def test_the_readiness_example(mlp, keras, tmp_path, monkeypatch, capsys):
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    envprint.save(tmp_path / "model.keras")
    monkeypatch.setenv("ENVPRINT_FINGERPRINT", str(tmp_path / "model.keras.envprint"))
    model = keras.models.load_model(tmp_path / "model.keras", compile=False)
    namespace = {"model": model, "warmup_batch": np.zeros((2, 4), "float32")}
    exec(compile(blocks("py")["Kubernetes"], "README.md (readiness)", "exec"), namespace)
    assert namespace["ready"] is True
    assert capsys.readouterr().out == "identical\n"
