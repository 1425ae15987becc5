"""envprint save --tf-serving-warmup: TF Serving's warm-up file from the probes, read back as TF Serving would.

The file is read with TensorFlow's TFRecord reader and parsed with the official
tensorflow_serving protos (tensorflow-serving-api, installed by scripts/_venv.sh without its
dependencies: it requires the `tensorflow` distribution, a second TensorFlow beside tensorflow-cpu).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke

import envprint
from envprint.errors import ExitCode
from envprint.integrations.tfserving import save_with_warmup

WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"


@pytest.fixture(scope="module")
def prediction_log():
    try:
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"tensorflow-serving-api is not importable ({exc}); scripts/_venv.sh installs it")
        pytest.skip(f"tensorflow-serving-api is not importable ({exc}); run scripts/_venv.sh")
    return prediction_log_pb2.PredictionLog


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_warmup_requests_are_the_probes_on_the_serving_signature(mlp, tf, prediction_log, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(mlp["savedmodel"], export)
    r = invoke("save", export, "--num-probes", "5", "--tf-serving-warmup")
    assert r.exit_code == ExitCode.OK, r.output + r.stderr

    logs = [prediction_log.FromString(raw.numpy()) for raw in tf.data.TFRecordDataset(str(export / WARMUP))]
    with np.load(export / "assets.extra" / "envprint" / "probes.npz") as saved:
        probes = {k: saved[k] for k in saved.files}
    assert len(logs) == 5 == len(probes["features"])
    for i, log in enumerate(logs):
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert sorted(request.inputs) == ["features"]
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["features"]), probes["features"][i : i + 1])

    # The warm-up file is part of the export the record describes: verify passes, naming no file.
    report = envprint.verify(export)
    assert report.verdict == "identical"
    assert not (report.identity.files_added or report.identity.files_changed or report.identity.files_missing)


def test_the_warmup_replays_through_the_signature_to_the_reference(mlp, tf, prediction_log, tmp_path):
    """What TF Serving does with each record: run the signature on its inputs; it gives the recorded reference."""
    export = tmp_path / "export"
    shutil.copytree(mlp["savedmodel"], export)
    save_with_warmup(export, num_probes=3)
    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    with np.load(export / "assets.extra" / "envprint" / "reference.npz") as saved:
        reference = {k: saved[k] for k in saved.files}
    for i, raw in enumerate(tf.data.TFRecordDataset(str(export / WARMUP))):
        request = prediction_log.FromString(raw.numpy()).predict_log.request
        out = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        for name, value in out.items():
            np.testing.assert_allclose(value.numpy(), reference[name][i : i + 1], rtol=1e-6)


def test_warmup_needs_a_savedmodel_and_says_so_before_loading(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    r = invoke("save", model, "--tf-serving-warmup")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == (
        f"envprint: error: {model}: --tf-serving-warmup writes into a SavedModel directory (model.export(...)); "
        "pass the export directory, or drop --tf-serving-warmup\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_failed_save_leaves_the_export_as_it_was(mlp, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(mlp["savedmodel"], export)
    before = tree(export)
    r = invoke("save", export, "--num-probes", "1001", "--tf-serving-warmup")
    assert r.exit_code == ExitCode.USAGE
    assert "TF Serving reads at most 1000 warm-up requests; pass --num-probes 1000 or fewer" in r.stderr
    assert tree(export) == before
    assert not (export / "assets.extra").exists()


def test_the_warmup_file_is_readable_by_a_server_running_as_another_user(mlp, tmp_path):
    """Under umask 022 the warm-up file is 0644 like the record beside it, not mkstemp's 0600."""
    export = tmp_path / "export"
    shutil.copytree(mlp["savedmodel"], export)
    previous = os.umask(0o022)
    try:
        r = invoke("save", export, "--num-probes", "2", "--tf-serving-warmup")
    finally:
        os.umask(previous)
    assert r.exit_code == ExitCode.OK, r.output + r.stderr
    assert oct((export / WARMUP).stat().st_mode & 0o777) == oct(0o644)
    assert oct((export / "assets.extra" / "envprint" / "probes.npz").stat().st_mode & 0o777) == oct(0o644)
