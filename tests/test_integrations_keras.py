"""envprint.keras.FingerprintCallback: the model and its record saved together by ``fit``, verifiable elsewhere.

Real training on a tiny seeded model; the record is verified in a fresh process (the deployment
host's view), here under this session's Keras and under TensorFlow 2.15's Keras 2 (the old
environment of tests/test_cross_version.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_cross_version import _old_env_vars, old_python  # noqa: F401 (a fixture, used by name)

import envprint
from envprint.record.store import read_fingerprint

TRAIN = textwrap.dedent(
    """
    import numpy as np
    from envprint._tf import import_keras
    from envprint.keras import FingerprintCallback

    keras = import_keras()


    def tiny_model():
        inp = keras.Input((4,), name="features")
        x = keras.layers.Dense(8, activation="relu", name="hidden",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=1))(inp)
        out = keras.layers.Dense(1, name="score", kernel_initializer=keras.initializers.GlorotUniform(seed=2))(x)
        model = keras.Model(inp, out)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        return model


    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")).astype("float32")
    """
)


def _train(code: str, folder: Path, python: str = sys.executable, env: dict[str, str] | None = None):
    done = subprocess.run(
        [python, "-c", TRAIN + textwrap.dedent(code)],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def trainer(keras):
    """The training code above, run in this process: (model factory, x, y)."""
    namespace: dict = {}
    exec(compile(TRAIN, "TRAIN", "exec"), namespace)
    return namespace["tiny_model"], namespace["x"], namespace["y"]


def test_fit_saves_keras_h5_and_export_with_records_that_verify_in_a_fresh_process(trainer, tmp_path):
    from envprint.keras import FingerprintCallback

    tiny_model, x, y = trainer
    model = tiny_model()
    targets = {"keras": tmp_path / "model.keras", "h5": tmp_path / "model.h5", "savedmodel": tmp_path / "export"}
    callbacks = [FingerprintCallback(path, seed=1234) for path in targets.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras 3 calls HDF5 legacy
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)

    # Each target holds the trained model and its record, and nothing of the staging is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "export",
        "model.h5",
        "model.h5.envprint",
        "model.keras",
        "model.keras.envprint",
    ]
    for fmt, callback in zip(targets, callbacks, strict=True):
        (result,) = callback.results
        fp = read_fingerprint(result.sidecar / "fingerprint.json")
        assert fp.model.format == fmt
        assert fp.seeds.declared == 1234
        assert result.sidecar == envprint.record.sidecar.default_sidecar(targets[fmt])
    assert (targets["savedmodel"] / "assets.extra" / "envprint" / "fingerprint.json").is_file()

    # The trained weights are what was saved: verify the model still in memory against the .keras record.
    assert envprint.verify(model, fingerprint=targets["keras"].with_name("model.keras.envprint")).verdict == "identical"

    code = "import json, sys, envprint\nprint(json.dumps({p: envprint.verify(p).verdict for p in sys.argv[1:]}))\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, targets.values())], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {str(p): "identical" for p in targets.values()}


def test_save_best_only_records_each_improvement_like_model_checkpoint(trainer, tmp_path):
    from envprint.keras import FingerprintCallback

    tiny_model, x, y = trainer
    callback = FingerprintCallback(
        tmp_path / "best-{epoch:02d}.keras", save_best_only=True, monitor="loss", num_probes=2
    )
    history = tiny_model().fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[callback])

    losses, best, improved = history.history["loss"], np.inf, []
    for epoch, loss in enumerate(losses, 1):
        if loss < best:
            best, improved = loss, [*improved, epoch]
    assert [r.sidecar.name for r in callback.results] == [f"best-{e:02d}.keras.envprint" for e in improved]
    assert callback.best == min(losses)
    for result in callback.results:
        assert envprint.verify(result.sidecar.with_name(result.sidecar.name.removesuffix(".envprint"))).passed


def test_a_second_fit_replaces_the_model_and_its_record_together(trainer, tmp_path):
    from envprint.keras import FingerprintCallback

    tiny_model, x, y = trainer
    model = tiny_model()
    path = tmp_path / "model.keras"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[FingerprintCallback(path, num_probes=2)])
    first = read_fingerprint(path.with_name("model.keras.envprint") / "fingerprint.json")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[FingerprintCallback(path, num_probes=2)])
    second = read_fingerprint(path.with_name("model.keras.envprint") / "fingerprint.json")
    assert first.model.weights_digest != second.model.weights_digest  # trained further: new weights, new record
    assert envprint.verify(path).verdict == "identical"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "model.keras.envprint"]


def test_probes_given_as_arrays_are_the_record_s_probes(trainer, tmp_path):
    from envprint.keras import FingerprintCallback

    tiny_model, x, y = trainer
    callback = FingerprintCallback(tmp_path / "model.keras", probes={"features": x[:5]})
    tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    fp = callback.results[0].fingerprint
    assert fp.probes.source == "file" and fp.probes.num_probes == 5
    with np.load(callback.results[0].sidecar / "probes.npz") as saved:
        np.testing.assert_array_equal(saved["features"], x[:5])


def test_a_monitor_missing_from_the_logs_warns_and_saves_nothing(trainer, tmp_path):
    from envprint.keras import FingerprintCallback

    tiny_model, x, y = trainer
    callback = FingerprintCallback(tmp_path / "model.keras", save_best_only=True)  # val_loss: no validation data
    with pytest.warns(UserWarning, match="'val_loss' is not in the logs \\(loss\\); nothing saved"):
        tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert callback.results == [] and list(tmp_path.iterdir()) == []


def test_the_callback_subclasses_the_callback_class_of_this_host_s_keras(keras):
    from envprint.keras import FingerprintCallback

    assert issubclass(FingerprintCallback, keras.callbacks.Callback)


@pytest.mark.subprocess
def test_keras_2_on_tensorflow_2_15_fits_saves_and_verifies_every_format(old_python, tmp_path):  # noqa: F811
    train = """
        import json, warnings
        targets = {"keras": "model.keras", "h5": "model.h5", "savedmodel": "export"}
        callbacks = [FingerprintCallback(path, seed=7) for path in targets.values()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiny_model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        print(json.dumps({"flavor": keras.__version__, "base": FingerprintCallback.__mro__[1].__module__}))
    """
    done = _train(train, tmp_path, python=old_python, env=_old_env_vars())
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["flavor"].startswith("2.15"), facts
    assert facts["base"].startswith("keras"), facts  # Keras 2's own Callback (tf.keras is keras 2.15 there)

    verify = "import json, sys, envprint\nprint(json.dumps({p: envprint.verify(p).verdict for p in sys.argv[1:]}))\n"
    paths = ["model.keras", "model.h5", "export"]
    again = subprocess.run(
        [old_python, "-c", verify, *paths],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_old_env_vars(),
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1]) == dict.fromkeys(paths, "identical")
    fp = json.loads((tmp_path / "model.keras.envprint" / "fingerprint.json").read_text())
    assert fp["tensorflow"]["keras_flavor"] == "keras2" and fp["seeds"]["declared"] == 7


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_inside_an_mlflow_run_the_model_and_record_are_logged_and_verify_from_the_run(trainer, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="the MLflow logging needs the envprint[mlflow] extra")
    pytest.importorskip("sqlalchemy", reason="MLflow's sqlite store needs sqlalchemy (and alembic)")
    import envprint.mlflow
    from envprint.keras import FingerprintCallback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("callback", artifact_location=(tmp_path / "artifacts").as_uri())
        tiny_model, x, y = trainer
        outside = FingerprintCallback(tmp_path / "outside.keras", num_probes=2)
        tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[outside])
        assert outside.logged == []  # no active run: nothing logged, nothing asked
        with mlflow.start_run(experiment_id=experiment) as run:
            callback = FingerprintCallback(tmp_path / "model.keras", num_probes=2)
            tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
        (logged,) = callback.logged
        assert logged.run_id == run.info.run_id
        artifacts = mlflow.tracking.MlflowClient().list_artifacts(run.info.run_id, "envprint")
        assert [a.path for a in artifacts] == [
            "envprint/fingerprint.json",
            "envprint/probes.npz",
            "envprint/reference.npz",
        ]
        assert envprint.mlflow.verify(logged.model_uri).verdict == "identical"
    finally:
        mlflow.set_tracking_uri(None)
