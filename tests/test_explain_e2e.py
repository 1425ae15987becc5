"""verify ranks the true cause first, for each cause this machine can produce on a real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import envprint


def saved_copy(src: Path, folder: Path) -> Path:
    model = folder / src.name
    shutil.copy2(src, model)
    envprint.save(model)
    return model


def first_cause(report: envprint.Report) -> str:
    assert report.explanations, report.notes
    return report.explanations[0].cause


def test_tampered_weight_ranks_model_changed_first(mlp, mlp_one_weight_changed, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    shutil.copy2(mlp_one_weight_changed["keras"], model)
    report = envprint.verify(model)
    assert report.verdict == "mismatch"
    assert first_cause(report) == "model_changed"
    assert "envprint save" in report.explanations[0].remedy


def test_resaved_identical_weights_blame_nothing_but_the_rewrite(mlp, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    model.unlink()
    mlp.model.save(model)
    report = envprint.verify(model)
    assert report.verdict == "identical"
    causes = [x.cause for x in report.explanations]
    assert "model_changed" not in causes
    assert report.identity.files_changed == ["."]  # the archive records when it was saved: new bytes
    assert causes[0] == "model_file_rewritten"


def test_edited_probes_rank_probes_changed_first(mlp, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    probes = model.with_name(model.name + ".envprint") / "probes.npz"
    with np.load(probes, allow_pickle=False) as data:
        arrays = {k: data[k] + 1.0 for k in data.files}
    np.savez(probes, **arrays)
    assert first_cause(envprint.verify(model)) == "probes_changed"


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
