"""The cross-version guarantee: saved under the newest TensorFlow (Keras 3), verified under TensorFlow 2.15 (Keras 2).

One small MLP is built and saved here, in this session's TensorFlow, as .keras, .h5, SavedModel
(Keras 3 ``model.export()``) and .tflite, and ``envprint.save`` records each. Then the old
environment, a separate Python named by ENVPRINT_OLD_TF_PYTHON (``scripts/old_tf_env.sh`` makes
it; ``scripts/test.sh`` sets it), runs ``envprint verify`` on each: a fresh process with another
TensorFlow is the point, so nothing here can be done in-process.

What TensorFlow 2.15 can load, it verifies (exit 0) and the report's environment diff names the
TensorFlow, Keras and NumPy versions. What it cannot is a file written by Keras 3 itself: .keras,
and .h5 too, whose model_config Keras 3 writes in its own dialect (InputLayer ``batch_shape``,
``DTypePolicy`` objects, ``quantization_config``) that Keras 2 refuses. For those, verify exits 4
(a model problem: could not verify, never 1) with one line that names the file and says what to use.

The old environment runs *this* checkout's envprint (PYTHONPATH), whatever its venv has installed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from envhelpers import Done, ci_requested, run_two_at_a_time

import envprint
from envprint.record import sidecar

pytestmark = [pytest.mark.subprocess, pytest.mark.keras3]

OLD_PYTHON_VAR = "ENVPRINT_OLD_TF_PYTHON"
REPO_ROOT = Path(envprint.__file__).resolve().parent.parent
VERIFIED = ("savedmodel", "tflite")  # formats TensorFlow 2.15 loads when Keras 3 wrote them
# What TensorFlow 2.15 measures on this MLP's probes. The SavedModel's graph runs bit for bit as
# under the newest TensorFlow where both use oneDNN (an AVX-512 Xeon), and within tolerance where
# both run Eigen's kernels (an AVX2-only AMD EPYC, oneDNN off by default: 19 of 24 elements off by
# up to 64 ULP); the .tflite file runs other TFLite kernels (XNNPACK), a few ULP, within tolerance.
VERDICT = {"savedmodel": ("identical", "within_tolerance"), "tflite": ("within_tolerance",)}
KERAS3_ONLY = ("keras", "h5")  # formats only Keras 3 reads back
TIMEOUT = 300  # seconds for one old-env command: importing TensorFlow 2.15 takes ~4 s on 2 cores


def _old_env_vars() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "TF_USE_LEGACY_KERAS")}
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's envprint, not whatever the old venv installed
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _run_all(python: str, commands: dict[str, list[str]], cwd: Path) -> dict[str, Done]:
    """Run each command under the old Python, two at a time (this is a 2-core CI machine)."""
    argvs = {key: [python, *args] for key, args in commands.items()}
    return run_two_at_a_time(argvs, _old_env_vars(), cwd, TIMEOUT)


@pytest.fixture(scope="session")
def old_python() -> str:
    """The old environment's Python. Outside CI it may be missing (a skip that says how to make it);
    in CI (CI=true) these tests must run, so a missing one, or ENVPRINT_SKIP_OLD_TF=1, fails them."""
    python = os.environ.get(OLD_PYTHON_VAR)
    make = f"run scripts/test.sh, or export {OLD_PYTHON_VAR}=$(scripts/old_tf_env.sh)"
    if os.environ.get("ENVPRINT_SKIP_OLD_TF") == "1":
        why = "ENVPRINT_SKIP_OLD_TF=1: the cross-version tests are skipped on purpose"
        if ci_requested():
            pytest.fail(f"{why}, but CI must run them: unset ENVPRINT_SKIP_OLD_TF in CI")
        pytest.skip(why)
    if not python:
        why = f"{OLD_PYTHON_VAR} is not set: no TensorFlow 2.15 environment to verify in; {make}"
        if ci_requested():
            pytest.fail(f"{why} (CI must run the cross-version tests)")
        pytest.skip(why)
    if not Path(python).is_file():
        pytest.fail(f"{OLD_PYTHON_VAR}={python}: no such file; rerun scripts/old_tf_env.sh")
    return python


@pytest.fixture(scope="session")
def old_versions(old_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """TensorFlow, Keras and NumPy in the old environment, read from package metadata (no TensorFlow import)."""
    code = (
        "import importlib.metadata as m, json, envprint\n"
        "def v(name):\n"
        "    try: return m.version(name)\n"
        "    except m.PackageNotFoundError: return None\n"
        "tf = v('tensorflow-cpu') or v('tensorflow')\n"
        "print(json.dumps({'tensorflow': tf, 'keras': v('keras'), 'numpy': v('numpy'), 'envprint': envprint.__file__}))\n"
    )
    done = _run_all(old_python, {"v": ["-c", code]}, tmp_path_factory.mktemp("old_versions"))["v"]
    assert done.returncode == 0, done
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def newest(old_python, tf, keras, flavor, save, tmp_path_factory) -> tuple[dict[str, Path], dict[str, str]]:
    """The MLP saved in all four formats by this session's Keras 3, each with its envprint record.

    Asks for ``old_python`` first: without an old environment the module skips before paying for TensorFlow.
    The module is marked keras3: it saves under the newest TensorFlow's Keras 3.
    """
    import numpy as np

    def init(seed: int) -> dict[str, Any]:  # seeded initializers: the global random state stays as it was
        return {
            "kernel_initializer": keras.initializers.GlorotUniform(seed=seed),
            "bias_initializer": keras.initializers.RandomNormal(seed=seed + 1000),
        }

    inp = keras.Input((4,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden", **init(11))(inp)
    x = keras.layers.Dense(8, activation="tanh", name="squash", **init(12))(x)
    out = keras.layers.Dense(3, name="logits", **init(13))(x)
    model = keras.Model(inp, out, name="cross_version_mlp")
    files = save(model, tmp_path_factory.mktemp("cross_version"), ("keras", "h5", "savedmodel", "tflite"))
    for path in files.values():
        envprint.save(path)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    return files, versions


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="session")
def old_runs(old_python, newest) -> tuple[dict[str, Done], dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """``envprint verify --json`` of each format, and a read of each record, in the old environment, run once."""
    files, _ = newest
    folder = next(iter(files.values())).parent
    before = _listing(folder)
    commands = {fmt: ["-m", "envprint", "verify", str(path), "--json"] for fmt, path in files.items()}
    code = (
        "import json, sys, envprint\n"
        "from envprint.record.store import canonical_json\n"
        "print(json.dumps({p: json.loads(canonical_json(envprint.read_fingerprint(p))) for p in sys.argv[1:]}))\n"
    )
    records = [str(sidecar.default_sidecar(p) / sidecar.FINGERPRINT_FILE) for p in files.values()]
    commands["read"] = ["-c", code, *records]
    runs = _run_all(old_python, commands, folder)
    return runs, before, _listing(folder)


def _entry(report: dict[str, Any], path: str) -> dict[str, Any] | None:
    return next((e for e in report["environment"]["entries"] if e["path"] == path), None)


def test_old_env_is_tensorflow_215_with_keras2_and_numpy1(old_versions):
    assert old_versions["tensorflow"] is not None and old_versions["tensorflow"].startswith("2.15."), old_versions
    assert old_versions["keras"] is not None and old_versions["keras"].startswith("2.15."), old_versions
    assert int(old_versions["numpy"].split(".")[0]) == 1, old_versions
    assert Path(old_versions["envprint"]).resolve().parent.parent == REPO_ROOT, (
        f"the old environment ran envprint from {old_versions['envprint']}, not this checkout ({REPO_ROOT})"
    )


def test_fingerprints_written_by_newest_tensorflow_read_unchanged_in_old_env(newest, old_runs):
    files, _ = newest
    runs, _, _ = old_runs
    done = runs["read"]
    assert done.returncode == 0, done
    read = json.loads(done.stdout)
    assert len(read) == len(files)
    for path, record in read.items():
        assert record == json.loads(Path(path).read_text(encoding="utf-8")), f"{path} changed when read by the old env"


@pytest.mark.parametrize("fmt", VERIFIED)
def test_verify_in_tf215_passes_for_a_format_it_can_load(fmt, old_runs):
    runs, _, _ = old_runs
    done = runs[fmt]
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr, done
    report = json.loads(done.stdout)
    assert report["verdict"] in VERDICT[fmt], done
    assert report["identity"]["weights"] == "same", done
    [output] = report["outputs"]
    assert output["n_out_of_tolerance"] == 0, output
    if report["verdict"] == "identical":
        assert (output["n_differ"], output["max_ulp"]) == (0, 0), output
    else:  # ULP-level: the bound leaves room for another x86-64 CPU's kernels, not for a real change
        assert output["n_differ"] > 0 and 0 < output["max_ulp"] <= 256, output


@pytest.mark.parametrize("fmt", VERIFIED)
def test_verify_in_tf215_reports_tensorflow_keras_and_numpy_changes(fmt, newest, old_versions, old_runs):
    _, new = newest
    runs, _, _ = old_runs
    report = json.loads(runs[fmt].stdout)
    expected = {
        "tensorflow.version": ("tensorflow_version", new["tensorflow"], old_versions["tensorflow"]),
        "tensorflow.keras_version": ("keras_version", new["keras"], old_versions["keras"]),
        "tensorflow.keras_flavor": ("keras_version", "keras3", "keras2"),
        "packages.key.numpy": ("numpy_version", new["numpy"], old_versions["numpy"]),
    }
    for path, (topic, a, b) in expected.items():
        entry = _entry(report, path)
        if a == b:  # e.g. the same NumPy on both sides: nothing to report
            assert entry is None, entry
            continue
        assert entry is not None, (
            f"no {path} in the environment diff: {[e['path'] for e in report['environment']['entries']]}"
        )
        assert (entry["status"], entry["topic"], entry["numerics"], entry["a"], entry["b"]) == (
            "changed",
            topic,
            True,
            a,
            b,
        ), entry


@pytest.mark.parametrize("fmt", KERAS3_ONLY)
def test_verify_in_tf215_of_a_keras3_file_exits_4_with_one_line(fmt, newest, old_versions, old_runs):
    files, new = newest
    runs, _, _ = old_runs
    done = runs[fmt]
    assert done.returncode == 4, done
    message = (
        f"{files[fmt]}: saved by Keras {new['keras']}, which this host's Keras "
        f"{old_versions['keras']} cannot read; load it where Keras 3 is installed, "
        "or export a SavedModel with model.export()"
    )
    assert done.stderr.splitlines() == [f"envprint: error: {message}"], done
    assert json.loads(done.stdout)["error"] == {"exit_code": 4, "kind": "model", "message": message}, done  # --json


def test_verify_in_old_env_writes_nothing(old_runs):
    _, before, after = old_runs
    assert after == before


@pytest.mark.parametrize("fmt", VERIFIED)
def test_verify_in_tf215_blames_the_framework_versions_only_when_outputs_moved(fmt, old_runs):
    runs, _, _ = old_runs
    report = json.loads(runs[fmt].stdout)
    causes = [x["cause"] for x in report["explanations"]]
    assert report["verdict"] in VERDICT[fmt], runs[fmt]
    if report["verdict"] == "identical":
        # Bit-identical outputs: the version differences did not touch the probes; nothing is blamed.
        assert causes == [], causes
    elif fmt == "savedmodel":
        assert causes[0] == "tensorflow_version", causes
    else:
        assert causes[0] == "tensorflow_version", causes
        # Beside TensorFlow 2.15 (numpy<2, protobuf<5, ml-dtypes~=0.3.1), TensorFlow 2.21's NumPy, ml-dtypes or
        # protobuf are never pinned alone: the remedy installs the saved stack together.
        remedies = {x["cause"]: x["remedy"] for x in report["explanations"]}
        for cause in ("numpy_version", "other_package"):
            assert re.search(r"'(numpy|ml-dtypes|protobuf|h5py)==", remedies[cause]) is None, remedies[cause]
            assert "install the saved stack together: envprint env-export" in remedies[cause], remedies[cause]


@pytest.fixture(scope="session")
def old_preflights(old_python, newest) -> dict[str, Done]:
    """``envprint verify --preflight --json`` in the old environment, of the SavedModel and the .keras record."""
    files, _ = newest
    commands = {
        fmt: ["-m", "envprint", "verify", str(files[fmt]), "--preflight", "--json"] for fmt in ("savedmodel", "keras")
    }
    return _run_all(old_python, commands, files["keras"].parent)


def test_preflight_in_tf215_expects_a_savedmodel_to_load_and_a_keras3_file_not_to(newest, old_versions, old_preflights):
    _, new = newest
    expected = {fmt: json.loads(done.stdout) for fmt, done in old_preflights.items()}
    keras = {fmt: next(x for x in r["expectations"] if x["cause"] == "keras_version") for fmt, r in expected.items()}
    assert "cannot load" not in keras["savedmodel"]["reasoning"], keras["savedmodel"]
    assert keras["savedmodel"]["score"] < 0.5
    assert keras["keras"]["reasoning"].startswith(
        f"Keras 3 -> Keras 2 ({new['keras']} -> {old_versions['keras']}): a Keras 3 .keras file cannot load here"
    )
    assert old_preflights["keras"].returncode == 1, old_preflights["keras"]
    # The SavedModel runs bit-identically under TensorFlow 2.15: a minor TensorFlow change predicts ULP noise at
    # most, within tolerance, so preflight passes.
    assert old_preflights["savedmodel"].returncode == 0, old_preflights["savedmodel"]
    tf = next(x for x in expected["savedmodel"]["expectations"] if x["cause"] == "tensorflow_version")
    assert tf["predicts"] == "noise", tf
    # A remedy never installs Keras 3 beside TensorFlow 2.15: it installs the saved stack.
    assert keras["keras"]["remedy"].startswith("Keras 3 needs TensorFlow 2.16 or newer and this host has 2.15")
    # NumPy 1.26's OpenBLAS (libopenblas64_p-r0-<hash>.<version>.so) is recognised, and never a cause.
    entries = expected["savedmodel"]["entries"]
    openblas = next((e for e in entries if e["path"] == "devices.loaded_libraries.openblas"), None)
    assert openblas is None or (openblas["b"] is not None and not openblas["numerics"]), openblas
    assert "threads" not in [x["cause"] for x in expected["savedmodel"]["expectations"]]
