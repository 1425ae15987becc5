"""envprint.mlflow against MLflow's own embedded store: a sqlite tracking URI in a temp dir, no server.

log_record puts a saved model's record into a run (artifacts under envprint/, facts as tags);
``envprint verify runs:/...`` and ``models:/...`` download the model and the record and verify them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from docpages import block
from envhelpers import invoke, run_shell

import envprint
import envprint.mlflow

MLFLOW_PAGE = "docs/how-to/mlflow.md"  # its examples are run here

mlflow = pytest.importorskip("mlflow", reason="the MLflow tests need the envprint[mlflow] extra")
pytest.importorskip("sqlalchemy", reason="MLflow's sqlite store needs sqlalchemy (and alembic)")
# MLflow's own store trips a SQLAlchemy deprecation of its own making: not envprint's to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A fresh sqlite tracking and registry store with a file artifact root, for this module's runs."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves this machine
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("envprint-tests", artifact_location=(root / "artifacts").as_uri())
    yield experiment
    mlflow.set_tracking_uri(None)
    patch.undo()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, mlp):
    """A copy of the MLP's .keras file with its envprint record beside it."""
    model = tmp_path_factory.mktemp("recorded") / "model.keras"
    shutil.copy2(mlp["keras"], model)
    envprint.save(model, num_probes=4)
    return model


@pytest.fixture(scope="module")
def logged(tracking, recorded):
    with mlflow.start_run(experiment_id=tracking):
        return envprint.mlflow.log_record(recorded, registered_model_name="envprint-mlp")


def test_log_record_logs_the_model_and_record_as_artifacts_and_tags_the_facts(logged, recorded):
    fp = envprint.read_fingerprint(f"{recorded}.envprint/fingerprint.json")
    client = mlflow.tracking.MlflowClient()
    assert logged.model_uri == f"runs:/{logged.run_id}/model"
    assert logged.record_uri == f"runs:/{logged.run_id}/envprint"
    assert logged.model_version == "1"
    assert [a.path for a in client.list_artifacts(logged.run_id, "model")] == ["model/model.keras"]
    assert [a.path for a in client.list_artifacts(logged.run_id, "envprint")] == [
        "envprint/fingerprint.json",
        "envprint/probes.npz",
        "envprint/reference.npz",
    ]
    tags = client.get_run(logged.run_id).data.tags
    assert tags["envprint.weights_digest"] == fp.model.weights_digest
    assert tags["envprint.tensorflow_version"] == fp.tensorflow.version
    assert tags["envprint.keras_version"] == fp.tensorflow.keras_version
    assert tags["envprint.model_format"] == "keras"
    assert tags["envprint.num_probes"] == "4"
    assert tags["envprint.signed"] == "false"
    assert {k: v for k, v in tags.items() if k.startswith("envprint.")} == logged.tags


def test_verify_runs_uri_downloads_the_model_and_its_record(logged):
    r = invoke("verify", logged.model_uri)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    assert f"  model:       {logged.model_uri}\n" in r.stdout
    assert f"  fingerprint: {logged.record_uri}\n" in r.stdout


def test_verify_runs_uri_of_the_model_file_itself(logged):
    r = invoke("verify", f"{logged.model_uri}/model.keras", "--json")
    assert r.exit_code == 0, r.output
    assert '"verdict": "identical"' in r.stdout


def test_verify_models_uri_by_version_and_by_alias(logged):
    mlflow.tracking.MlflowClient().set_registered_model_alias("envprint-mlp", "production", logged.model_version)
    for uri in ("models:/envprint-mlp/1", "models:/envprint-mlp@production"):
        r = invoke("verify", uri)
        assert r.exit_code == 0, (uri, r.output)
        assert f"  model:       {uri}\n" in r.stdout


def test_library_verify_of_a_runs_uri_names_the_uri_in_the_report(logged):
    report = envprint.mlflow.verify(logged.model_uri)
    assert (report.verdict, report.model, report.fingerprint) == ("identical", logged.model_uri, logged.record_uri)


def test_verify_a_changed_model_logged_with_the_old_record_exits_1(
    tracking, recorded, mlp_one_weight_changed, tmp_path
):
    # The run holds another model than the one its record describes: what a mixed-up upload looks like.
    with mlflow.start_run(experiment_id=tracking) as run:
        logged = envprint.mlflow.log_record(recorded, log_model=False)
        mlflow.log_artifact(str(mlp_one_weight_changed["keras"]), "model")
    r = invoke("verify", f"runs:/{run.info.run_id}/model")
    assert r.exit_code == 1, r.output
    assert "weights:     CHANGED: this is not the model that was saved" in r.stdout
    assert logged.model_uri is None


def test_an_error_from_a_downloaded_model_names_its_uri_not_a_deleted_temporary_path(tracking, recorded, tmp_path):
    broken = tmp_path / "model.keras"
    broken.write_bytes(b"not a zip file")
    with mlflow.start_run(experiment_id=tracking) as run:
        envprint.mlflow.log_record(recorded, log_model=False)
        mlflow.log_artifact(str(broken), "model")
    uri = f"runs:/{run.info.run_id}/model"
    r = invoke("verify", uri)
    assert r.exit_code == 4, r.output
    assert r.stderr.startswith(f"envprint: error: {uri}: "), r.stderr
    assert "envprint-mlflow-" not in r.stderr


def test_verify_a_run_without_a_record_exits_3(tracking, recorded):
    with mlflow.start_run(experiment_id=tracking) as run:
        mlflow.log_artifact(str(recorded), "model")
    r = invoke("verify", f"runs:/{run.info.run_id}/model")
    assert r.exit_code == 3, r.output
    assert r.stderr.startswith(f"envprint: error: runs:/{run.info.run_id}/envprint: no envprint record in the run (")
    assert r.stderr.endswith("); log one with envprint.mlflow.log_record(MODEL)\n")


def test_verify_an_unknown_run_or_version_exits_4(tracking):
    r = invoke("verify", "runs:/0123456789abcdef/model")
    assert r.exit_code == 4, r.output
    assert r.stderr.startswith("envprint: error: runs:/0123456789abcdef/model: cannot download the model from MLflow (")
    # The store asked, and how to ask another: a run logged elsewhere is the usual reason.
    assert r.stderr.endswith(
        f"); tracking store: {mlflow.get_tracking_uri()}; if the run was logged elsewhere, point MLFLOW_TRACKING_URI "
        "at the store that logged it (export MLFLOW_TRACKING_URI=http://HOST:5000, sqlite:////path/to/mlflow.db or "
        "file:///path/to/mlruns)\n"
    )
    assert "\n" not in r.stderr.rstrip("\n")
    r = invoke("verify", "models:/no-such-model/3")
    assert r.exit_code == 4, r.output
    assert r.stderr.startswith("envprint: error: models:/no-such-model/3: cannot download the model from MLflow (")


def test_log_record_outside_a_run_is_a_usage_error(tracking, recorded):
    assert mlflow.active_run() is None
    with pytest.raises(envprint.UsageError) as info:
        envprint.mlflow.log_record(recorded)
    assert str(info.value) == (
        "log_record: no active MLflow run; call it inside 'with mlflow.start_run():' or pass run_id"
    )


def test_log_record_of_a_model_without_a_record_is_a_fingerprint_error(tracking, mlp, tmp_path):
    bare = tmp_path / "bare.keras"
    shutil.copy2(mlp["keras"], bare)
    with mlflow.start_run(experiment_id=tracking), pytest.raises(envprint.FingerprintError) as info:
        envprint.mlflow.log_record(bare)
    assert info.value.exit_code == 3
    assert str(info.value) == (
        f"{bare}.envprint/fingerprint.json: no fingerprint beside the model; "
        f"run 'envprint save {bare}' on the training host, or pass --fingerprint PATH"
    )


@pytest.mark.subprocess
def test_verify_runs_uri_without_mlflow_exits_5_with_the_pip_line():
    code = (
        "import sys; sys.modules['mlflow'] = None; from envprint.cli.app import main; sys.argv[0] = 'envprint'; main()"
    )
    r = subprocess.run([sys.executable, "-c", code, "verify", "runs:/abc/model"], capture_output=True, text=True)
    assert r.returncode == 5, r.stderr
    assert r.stderr == (
        "envprint: error: MLflow support needs mlflow, which is not installed; install it: pip install 'envprint[mlflow]'\n"
    )


@pytest.mark.subprocess
def test_the_docs_mlflow_example_runs(tracking, mlp, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", tracking)
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(2).standard_normal((4, 4)).astype("float32"))
    exec(compile(block(MLFLOW_PAGE, "MLflow", "python mlflow"), MLFLOW_PAGE, "exec"), {})
    model_uri = capsys.readouterr().out.strip()
    assert model_uri.startswith("runs:/") and model_uri.endswith("/model")
    run_id = model_uri.split("/")[1]
    script = block(MLFLOW_PAGE, "MLflow", "bash").replace("<run_id>", run_id)
    r = run_shell(script, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("envprint verify: PASSED (bit-identical)\n") == 2
    assert f"  model:       {model_uri}\n" in r.stdout and "  model:       models:/fraud-detector/1\n" in r.stdout


def test_library_verify_and_preflight_take_an_mlflow_uri_and_name_it(logged):
    report = envprint.verify(logged.model_uri)
    assert (report.verdict, report.model, report.fingerprint) == ("identical", logged.model_uri, logged.record_uri)
    assert envprint.preflight(logged.model_uri).a == logged.record_uri


def test_preflight_of_an_mlflow_uri_names_the_record_by_its_uri_not_a_deleted_temporary_path(logged):
    r = invoke("verify", logged.model_uri, "--preflight", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["a"] == logged.record_uri
    r = invoke("verify", logged.model_uri, "--preflight")
    assert r.exit_code == 0, r.output
    assert "envprint-mlflow-" not in r.stdout and logged.record_uri in r.stdout


@pytest.mark.subprocess
def test_verify_a_runs_uri_with_no_tracking_store_set_creates_nothing_and_says_how_to_set_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    r = subprocess.run(
        [sys.executable, "-m", "envprint", "verify", "runs:/0123456789abcdef/model"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 4, r.stderr
    assert r.stderr == (
        "envprint: error: runs:/0123456789abcdef/model: no MLflow tracking store is set (MLFLOW_TRACKING_URI is "
        f"unset), and MLflow's default sqlite:///{tmp_path.resolve()}/mlflow.db does not exist; point "
        "MLFLOW_TRACKING_URI at the store that logged it (export MLFLOW_TRACKING_URI=http://HOST:5000, "
        "sqlite:////path/to/mlflow.db or file:///path/to/mlruns)\n"
    )
    assert list(tmp_path.iterdir()) == []  # no ./mlflow.db, no ./mlruns


def test_a_logged_savedmodel_verifies_from_its_run(tracking, mlp, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(mlp["savedmodel"], export)
    envprint.save(export, num_probes=4)  # the record goes inside, under assets.extra/envprint/
    with mlflow.start_run(experiment_id=tracking):
        logged = envprint.mlflow.log_record(export)
    assert logged.tags["envprint.model_format"] == "savedmodel"
    r = invoke("verify", logged.model_uri)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    assert "files added" not in r.stdout, r.stdout  # the record inside the export is not taken for model files
    assert f"  fingerprint: {logged.model_uri}/assets.extra/envprint\n" in r.stdout


def test_logging_again_under_a_registered_name_adds_a_version(logged, tracking, recorded):
    with mlflow.start_run(experiment_id=tracking):
        again = envprint.mlflow.log_record(recorded, registered_model_name="envprint-mlp")
    assert (logged.model_version, again.model_version) == ("1", "2")
    version = mlflow.tracking.MlflowClient().get_model_version("envprint-mlp", "2")
    assert (version.run_id, version.source) == (again.run_id, again.model_uri)
    assert version.tags["envprint.weights_digest"] == logged.tags["envprint.weights_digest"]


# --------------------------------------------------------------------------- a model MLflow's keras flavour logged


@pytest.fixture(scope="module")
def keras_flavour(tracking, mlp):
    """The MLP logged by mlflow.keras.log_model (its MLmodel, data/model.keras), with the record beside it."""
    pytest.importorskip("pandas", reason="MLflow's keras flavour (mlflow.keras, mlflow.pyfunc) needs pandas")
    import mlflow.keras

    with mlflow.start_run(experiment_id=tracking) as run:
        info = mlflow.keras.log_model(mlp.model, name="model")
        logged = envprint.mlflow.log_record(info, save_options={"num_probes": 4})
    return run.info.run_id, info, logged


@pytest.mark.keras3  # MLflow's keras flavour is Keras 3's (import keras)
def test_log_record_puts_the_record_beside_the_keras_flavours_artifacts(keras_flavour):
    from mlflow.artifacts import download_artifacts

    run_id, info, logged = keras_flavour
    assert (logged.run_id, logged.model_uri) == (run_id, info.model_uri)
    assert logged.record_uri == f"models:/{info.model_id}/envprint"
    local = download_artifacts(artifact_uri=info.model_uri)
    assert sorted(p.name for p in (Path(local) / "envprint").iterdir()) == [
        "fingerprint.json",
        "probes.npz",
        "reference.npz",
    ]
    assert envprint.read_fingerprint(Path(local) / "envprint" / "fingerprint.json").probes.num_probes == 4
    assert mlflow.tracking.MlflowClient().get_run(run_id).data.tags["envprint.model_format"] == "keras"
    assert mlflow.get_logged_model(info.model_id).tags["envprint.model_format"] == "keras"
    # MLflow's own loaders still load it: the record sits beside the flavour, not in its way.
    x = np.ones((2, 4), "float32")
    expected = mlflow.keras.load_model(info.model_uri).predict(x, verbose=0)
    assert expected.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(mlflow.pyfunc.load_model(info.model_uri).predict(x)), expected)


@pytest.mark.keras3  # MLflow's keras flavour is Keras 3's (import keras)
def test_verify_finds_the_record_beside_a_flavours_model(keras_flavour):
    _, info, logged = keras_flavour
    r = invoke("verify", info.model_uri)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    assert f"  model:       {info.model_uri}\n" in r.stdout
    assert f"  fingerprint: {info.model_uri}/envprint\n" in r.stdout


@pytest.mark.keras3  # MLflow's keras flavour is Keras 3's (import keras)
def test_the_autolog_callback_logs_the_fitted_model_with_its_flavour_and_record(tracking, keras):
    pytest.importorskip("pandas", reason="MLflow's keras flavour (mlflow.keras, mlflow.pyfunc) needs pandas")
    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(2, name="score")(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    callback = envprint.mlflow.autolog_callback(registered_model_name="envprint-fitted", probes=x[:8])
    with mlflow.start_run(experiment_id=tracking):
        model.fit(x, np.zeros((32, 2), "float32"), epochs=1, verbose=0, callbacks=[callback])
    logged = callback.logged
    assert logged.tags["envprint.num_probes"] == "8"
    np.testing.assert_array_equal(
        np.asarray(mlflow.pyfunc.load_model("models:/envprint-fitted/1").predict(x[:3])),
        model.predict(x[:3], verbose=0),
    )
    r = invoke("verify", "models:/envprint-fitted/1")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    assert "  fingerprint: models:/envprint-fitted/1/envprint\n" in r.stdout


@pytest.mark.keras3  # MLflow's keras flavour is Keras 3's (import keras)
def test_the_docs_flavour_example_runs(tracking, keras, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas", reason="MLflow's keras flavour (mlflow.keras, mlflow.pyfunc) needs pandas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", tracking)
    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(2, name="score")(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    np.savez(tmp_path / "samples.npz", features=x[:4])
    namespace = {"model": model, "x": x, "y": np.zeros((32, 2), "float32")}
    exec(compile(block(MLFLOW_PAGE, "MLflow", "python mlflow-flavour"), MLFLOW_PAGE, "exec"), namespace)
    model_uri = capsys.readouterr().out.strip()
    assert model_uri.startswith("models:/m-")
    r = invoke("verify", model_uri)
    assert r.exit_code == 0, r.output
    assert f"  fingerprint: {model_uri}/envprint\n" in r.stdout


@pytest.mark.keras3  # MLflow's keras flavour is Keras 3's (import keras)
def test_a_keras_model_the_tensorflow_flavour_logged_gets_its_record_and_verifies(tracking, mlp):
    pytest.importorskip("pandas", reason="MLflow's tensorflow flavour (mlflow.pyfunc) needs pandas")
    import mlflow.tensorflow

    with mlflow.start_run(experiment_id=tracking):
        info = mlflow.tensorflow.log_model(mlp.model, name="tf-model")
        logged = envprint.mlflow.log_record(info, save_options={"num_probes": 3})
    assert logged.tags["envprint.model_format"] == "keras"
    r = invoke("verify", info.model_uri)
    assert r.exit_code == 0, r.output
    assert f"  fingerprint: {info.model_uri}/envprint\n" in r.stdout
