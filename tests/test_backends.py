"""Keras backends: a .keras saved under TensorFlow, verified by Keras on JAX and OpenVINO where TensorFlow cannot load.

"Without TensorFlow" is made honest by running each check in a fresh interpreter whose import
system refuses ``tensorflow`` (``NO_TENSORFLOW`` below: a meta-path finder that records each
attempt and raises ImportError), in this venv rather than a second one without TensorFlow: that
venv would cost CI a minute of installs for the same proof. Each child also reports whether
``tensorflow`` reached ``sys.modules`` and whether anything asked for it. PyTorch is not
installed here: the torch backend is recorded where present and not tested.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from envhelpers import run_python

pytestmark = [pytest.mark.subprocess, pytest.mark.keras3]

NO_TENSORFLOW = textwrap.dedent(
    """
    import sys

    class NoTensorFlow:
        asked = []

        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith(("tensorflow.", "tf_keras")):
                NoTensorFlow.asked.append(name)
                raise ImportError(f"No module named {name!r} (this interpreter has no TensorFlow)")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    """
)


def run_without_tensorflow(code: str, backend: str, timeout: float = 240) -> dict:
    """Run ``code`` (which sets ``out``) on Keras ``backend`` with TensorFlow unimportable; ``out`` and TF's traces."""
    tail = textwrap.dedent(
        """
        import json
        out["tensorflow_in_sys_modules"] = "tensorflow" in sys.modules
        out["tensorflow_asked_by"] = sorted(set(NoTensorFlow.asked))
        print("RESULT " + json.dumps(out))
        """
    )
    done = run_python(NO_TENSORFLOW + textwrap.dedent(code) + tail, env={"KERAS_BACKEND": backend}, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def saved_under_tensorflow(mlp, tmp_path_factory) -> Path:
    """The conftest MLP as .keras and SavedModel, each recorded by envprint under TensorFlow."""
    import envprint

    folder = tmp_path_factory.mktemp("backends")
    shutil.copy(mlp["keras"], folder / "mlp.keras")
    shutil.copytree(mlp["savedmodel"], folder / "mlp_savedmodel")
    envprint.save(folder / "mlp.keras")
    envprint.save(folder / "mlp_savedmodel")
    return folder


def test_jax_verifies_a_tensorflow_record_without_tensorflow_and_saves_and_verifies_its_own(saved_under_tensorflow):
    folder = saved_under_tensorflow
    out = run_without_tensorflow(
        f"""
        import shutil
        from pathlib import Path
        import envprint
        from envprint.errors import EnvprintError

        folder = Path({str(folder)!r})
        out = {{}}
        report = envprint.verify(folder / "mlp.keras")
        out["verdict"] = report.verdict
        out["causes"] = [e.cause for e in report.explanations]
        out["counted"] = [e.path for e in report.environment.entries if e.numerics]
        out["asked_by_verify"] = sorted(set(NoTensorFlow.asked))
        try:
            envprint.verify(folder / "mlp_savedmodel")
        except EnvprintError as exc:
            out["savedmodel"] = [int(exc.exit_code), str(exc)]
        own = folder / "jax"
        own.mkdir()
        shutil.copy(folder / "mlp.keras", own / "mlp.keras")
        envprint.save(own / "mlp.keras")
        again = envprint.verify(own / "mlp.keras")
        out["own"] = [again.verdict, again.environment.identical]
        fp = envprint.capture()
        out["keras"] = fp.keras.model_dump(mode="json")
        """,
        "jax",
    )
    assert out["tensorflow_in_sys_modules"] is False
    assert out["asked_by_verify"] == [], "envprint or Keras on JAX asked for TensorFlow"
    assert out["tensorflow_asked_by"] == ["tensorflow"], "only the SavedModel, which needs it, asked"
    assert out["verdict"] in ("identical", "within_tolerance"), out
    assert "keras.backend" in out["counted"]
    assert not [p for p in out["counted"] if p.startswith(("tensorflow", "threads.tf_", "devices.physical"))], out
    if out["verdict"] == "within_tolerance":
        assert out["causes"][0] == "keras_backend", out
    code, message = out["savedmodel"]
    assert code == 5
    assert "mlp_savedmodel: a SavedModel needs TensorFlow, which is not importable here (the Keras backend 'jax', " in (
        message
    )
    assert "loads a .keras file and an .h5/.hdf5 file); install it: pip install 'envprint[tensorflow-cpu]'" in message
    assert out["own"] == ["identical", True]
    keras = out["keras"]
    assert (keras["backend"], keras["backend_source"]) == ("jax", "KERAS_BACKEND")
    assert keras["jax"]["default_backend"] == "cpu" and keras["jax"]["version"] and keras["jax"]["jaxlib_version"]


def test_openvino_verifies_from_the_command_line_and_records_its_inference_precision(saved_under_tensorflow):
    folder = saved_under_tensorflow
    out = run_without_tensorflow(
        f"""
        import contextlib, io, runpy
        out = {{}}
        stdout = io.StringIO()
        sys.argv = ["envprint", "verify", {str(folder / "mlp.keras")!r}, "--json"]
        with contextlib.redirect_stdout(stdout):
            try:
                runpy.run_module("envprint", run_name="__main__")
            except SystemExit as exc:
                out["exit"] = exc.code
        out["report"] = json.loads(stdout.getvalue())
        import envprint
        out["keras"] = envprint.capture().keras.model_dump(mode="json")
        """.replace("import contextlib", "import json, contextlib"),
        "openvino",
    )
    assert out["tensorflow_in_sys_modules"] is False
    assert out["exit"] == 0, out["report"]
    report = out["report"]
    assert report["verdict"] in ("identical", "within_tolerance")
    changed = {e["path"]: (e["a"], e["b"]) for e in report["environment"]["entries"] if e["numerics"]}
    assert changed["keras.backend"] == ("tensorflow", "openvino")
    # As OpenVINO's runtime reports it, never assumed: f32 on this AVX2 CPU, bf16 on one with AVX512_BF16.
    precision = out["keras"]["openvino"]["inference_precision"]
    assert precision in ("f32", "bf16", "f16"), out["keras"]
    assert changed["keras.openvino.inference_precision"] == (None, precision)


def test_the_keras_backends_page_example_runs_as_written(tmp_path):
    """docs/how-to/keras-backends.md: train-side save under TensorFlow, then verify under JAX and OpenVINO."""
    import os
    import subprocess
    import sys

    from docpages import block

    code = block("docs/how-to/keras-backends.md", "Save under TensorFlow, verify under JAX and OpenVINO", "bash")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout
