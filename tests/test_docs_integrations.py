"""The integrations' how-to pages: every example in them runs as written, on a real small model.

The pages: docs/how-to/keras-callback.md, docs/how-to/pytest.md, docs/how-to/ci-gate.md,
docs/how-to/serving.md (TF Serving's warm-up) and docs/how-to/kubernetes.md; each block they mark
``run-by: tests/test_docs_integrations.py`` is run here (tests/docpages.py reads them). Shell
examples run in bash with this venv's envprint on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import junitparser
import numpy as np
import pytest
from docpages import blocks
from test_integrations_pytest import envprint_imported  # noqa: F401 (an autouse fixture: pytester runs in process)

import envprint

pytest_plugins = ["pytester"]
PAGES = {  # the heading each example is under -> its page
    "Training: a Keras callback": "docs/how-to/keras-callback.md",
    "Tests: the pytest plugin": "docs/how-to/pytest.md",
    "CI panels: JUnit XML": "docs/how-to/ci-gate.md",
    "TF Serving warm-up": "docs/how-to/serving.md",
    "Kubernetes": "docs/how-to/kubernetes.md",
}
ME = "tests/test_docs_integrations.py"


def examples(lang: str) -> dict[str, str]:
    """{heading: its block in ``lang``} of the blocks the pages mark as run here."""
    return {
        b.heading: b.code
        for page in PAGES.values()
        for b in blocks(page)
        if b.lang == lang and b.marker == ("run-by", ME) and PAGES.get(b.heading) == page
    }


def run_bash(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_each_integration_has_its_example():
    assert sorted(examples("py")) == sorted(
        ["Training: a Keras callback", "Tests: the pytest plugin", "CI panels: JUnit XML", "Kubernetes"]
    )
    assert sorted(examples("bash")) == ["CI panels: JUnit XML", "TF Serving warm-up"]


def test_the_keras_callback_example(keras, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(2, name="score")(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    y = np.zeros((32, 2), "float32")
    exec(
        compile(examples("py")["Training: a Keras callback"], "docs/how-to/keras-callback.md", "exec"),
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
    (tests / "test_model.py").write_text(examples("py")["Tests: the pytest plugin"])
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
    for title, code in examples("bash").items():
        done = run_bash(code, tmp_path)
        assert done.returncode == 0, f"{title}:\n{done.stdout}{done.stderr}"
    assert [s.tests for s in junitparser.JUnitXml.fromfile(str(tmp_path / "results.xml"))] == [3]
    assert (tmp_path / "export" / "assets.extra" / "tf_serving_warmup_requests").is_file()

    monkeypatch.chdir(tmp_path)
    exec(compile(examples("py")["CI panels: JUnit XML"], "docs/how-to/ci-gate.md", "exec"), {})
    assert [s.name for s in junitparser.JUnitXml.fromfile("all-models.xml")] == ["envprint verify model.keras"]


def test_the_readiness_example(mlp, keras, tmp_path, monkeypatch, capsys):
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    envprint.save(tmp_path / "model.keras")
    monkeypatch.setenv("ENVPRINT_FINGERPRINT", str(tmp_path / "model.keras.envprint"))
    model = keras.models.load_model(tmp_path / "model.keras", compile=False)
    namespace = {"model": model, "warmup_batch": np.zeros((2, 4), "float32")}
    exec(compile(examples("py")["Kubernetes"], "docs/how-to/kubernetes.md", "exec"), namespace)
    assert namespace["ready"] is True
    assert capsys.readouterr().out == "identical\n"
