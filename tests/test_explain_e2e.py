"""verify ranks the true cause first, for each cause this machine can produce on a real model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke

import envprint
from envprint.record.store import canonical_json


def saved_copy(src: Path, folder: Path) -> Path:
    model = folder / src.name
    shutil.copy2(src, model)
    envprint.save(model)
    return model


def first_cause(report: envprint.Report) -> str:
    assert report.explanations, str(report)
    return report.explanations[0].cause


def test_tampered_weight_ranks_model_changed_first(mlp, mlp_one_weight_changed, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    shutil.copy2(mlp_one_weight_changed["keras"], model)
    report = envprint.verify(model)
    assert report.verdict == "mismatch"
    assert first_cause(report) == "model_changed"
    assert "envprint save" in report.explanations[0].remedy


def test_resaved_identical_weights_blame_nothing_the_rewrite_is_a_note(mlp, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    model.unlink()
    mlp.model.save(model)
    report = envprint.verify(model)
    assert report.verdict == "identical"
    assert report.identity.files_changed == ["."]  # the archive records when it was saved: new bytes
    # Bit-identical outputs blame nothing (README): the rewrite is said in the identity lines, not as a cause.
    assert report.explanations == []
    text = report.to_text()
    assert "Likely causes" not in text
    assert "  weights:     same as saved (the files were rewritten, the weights are identical)\n" in text
    assert f"  files changed: {model.name}\n" in text


def test_edited_probes_rank_probes_changed_first(mlp, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    probes = model.with_name(model.name + ".envprint") / "probes.npz"
    with np.load(probes, allow_pickle=False) as data:
        arrays = {k: data[k] + 1.0 for k in data.files}
    np.savez(probes, **arrays)
    report = envprint.verify(model)
    assert first_cause(report) == "probes_changed"
    assert report.explanations[0].reasoning == (
        "probes.npz no longer matches the sha256 in fingerprint.json: the probes were edited after save"
    )


def test_random_layer_at_inference_ranks_stochastic_inference_first(dropout_left_active, tmp_path):
    model = saved_copy(dropout_left_active, tmp_path)
    report = envprint.verify(model)
    assert report.verdict == "mismatch"
    assert first_cause(report) == "stochastic_inference"
    assert "training=False" in report.explanations[0].remedy


@pytest.mark.keras3  # the global-policy rebuild below uses the Keras 3 API
def test_serving_code_under_another_dtype_policy_ranks_dtype_policy_first(keras, tmp_path):
    init = {"kernel_initializer": keras.initializers.GlorotUniform(seed=3)}

    def build():
        inp = keras.Input((16,), name="x")
        h = keras.layers.Dense(64, activation="relu", name="h", **init)(inp)
        return keras.Model(inp, keras.layers.Dense(10, name="logits", **init)(h))

    path = tmp_path / "model.keras"
    build().save(path)
    envprint.save(path)
    # Serving code that rebuilds the model under mixed precision and loads the saved weights.
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        served = build()
        served.set_weights(keras.models.load_model(path, compile=False).get_weights())
        report = envprint.verify(served, fingerprint=path.with_name("model.keras.envprint"))
    finally:
        keras.config.set_dtype_policy("float32")
    assert report.verdict == "mismatch"
    assert first_cause(report) == "dtype_policy"
    assert "float32" in report.explanations[0].remedy


# --------------------------------------------------------------------------- same host, any seed


def test_same_host_with_a_declared_seed_shows_no_environment_difference(mlp, tmp_path):
    model = tmp_path / mlp["keras"].name
    shutil.copy2(mlp["keras"], model)
    envprint.save(model, seed=7)
    report = envprint.verify(model)
    assert report.verdict == "identical"
    assert report.environment.entries == [], [(e.path, e.a, e.b) for e in report.environment.entries]
    assert report.explanations == []
    assert report.seed_applied is None  # a deterministic model: the seed does not matter
    r = invoke("diff", str(model) + ".envprint/fingerprint.json", "--current")
    assert r.exit_code == 0, r.output


def test_verify_applies_the_records_seed_to_a_model_random_at_inference(dropout_left_active, keras, flavor, tmp_path):
    if flavor != "keras3":
        pytest.skip("Keras 3 creates a random layer's seed generator when the model loads, from the global seed")
    model = tmp_path / dropout_left_active.name
    shutil.copy2(dropout_left_active, model)
    envprint.save(model, seed=7)
    report = envprint.verify(model)
    assert report.seed_applied == 7
    assert [o.status for o in report.outputs] == ["identical"], [o.max_abs for o in report.outputs]
    assert report.verdict == "mismatch"  # still random between two calls, and verify says so
    assert report.explanations[0].cause == "stochastic_inference"
    assert "seed" not in [x.cause for x in report.explanations]


# --------------------------------------------------------------------------- library and command line agree


def test_preflight_in_the_library_is_the_command_lines(mlp, tmp_path, monkeypatch):
    model = tmp_path / mlp["keras"].name
    shutil.copy2(mlp["keras"], model)
    envprint.save(model)
    # This host now runs with a variable the saved host did not have: a note, not a gate.
    monkeypatch.setenv("TF_ENVPRINT_EXAMPLE", "1")
    library = envprint.preflight(model)
    r = invoke("verify", model, "--preflight", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(canonical_json(library))
    assert [(x.cause, x.score) for x in library.expectations] == [("environment", 0.2)]
    assert not library.expects_change


@pytest.mark.subprocess
def test_preflight_passes_where_onednn_off_only_adds_ulp_noise(mlp, tmp_path):
    """TF_ENABLE_ONEDNN_OPTS=0 against a record saved with oneDNN on: ULP noise, within tolerance (the README's table)."""
    model = tmp_path / mlp["keras"].name
    shutil.copy2(mlp["keras"], model)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    run = [sys.executable, "-m", "envprint"]
    saved = subprocess.run(
        [*run, "save", str(model)],
        env={**env, "TF_ENABLE_ONEDNN_OPTS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert saved.returncode == 0, saved.stderr
    off = {**env, "TF_ENABLE_ONEDNN_OPTS": "0"}
    done = subprocess.run(
        [*run, "verify", str(model), "--preflight"], env=off, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "onednn (likelihood 0.70, ULP-level noise, within tolerance): saved with oneDNN on, this host has it off"
        in done.stdout
    )
    verified = subprocess.run([*run, "verify", str(model)], env=off, capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout  # the real verify agrees: within tolerance (or bit-identical)


def test_a_cache_location_and_gpu_only_variables_are_listed_not_expected_on_a_cpu_host(mlp, tmp_path, monkeypatch):
    """KERAS_HOME never changes numerics; CUDA_VISIBLE_DEVICES=-1 and NVIDIA_TF32_OVERRIDE=0 change nothing without a GPU."""
    from envprint.causes.gpu import has_gpu

    for name in ("KERAS_HOME", "CUDA_VISIBLE_DEVICES", "NVIDIA_TF32_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    model = tmp_path / mlp["keras"].name
    shutil.copy2(mlp["keras"], model)
    envprint.save(model)
    record = envprint.read_fingerprint(str(model) + ".envprint/fingerprint.json")
    if has_gpu(record) is not False:
        pytest.skip("this host has a GPU (or none could be told): there CUDA_VISIBLE_DEVICES=-1 moves the model")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    report = envprint.preflight(model)
    assert report.expectations == [], [(x.cause, x.score) for x in report.expectations]
    listed = {e.path: e.numerics for e in report.entries}
    expected = {
        "devices.cuda_visible_devices": False,
        "env.variables.CUDA_VISIBLE_DEVICES": False,
        "env.variables.KERAS_HOME": False,
        "env.variables.NVIDIA_TF32_OVERRIDE": False,
    }
    if record.keras is not None and record.keras.backend_source == "keras.json":
        # KERAS_HOME moves keras.json away: which file named the backend changed (a fact), the backend did not
        expected["keras.backend_source"] = False
    assert listed == expected
    r = invoke("verify", str(model), "--preflight")
    assert r.exit_code == 0, r.output
