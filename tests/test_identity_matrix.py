"""Same weights, same digest: however the model was built, in whichever format, under Keras 3 and Keras 2.

The matrix: three constructions (Sequential, functional with a shared layer, subclassed; each with
BatchNormalization's non-trainable statistics) trained here, then digested as the trained object in
memory, rebuilt in code + ``load_weights`` (.weights.h5), loaded from .keras, .h5 and an exported
SavedModel: one digest per construction. The Keras 2 column rebuilds each architecture in Keras 2
code in the TensorFlow 2.15 environment (``tests/identity_models.py``), sets the same weights,
saves it as Keras 2 does, and must give the same digests; it also reads the Keras 3 SavedModel.
One ULP in one weight, trainable or not, changes the digest.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from identity_models import CONSTRUCTIONS, batch, build
from test_cross_version import _old_env_vars, old_python  # noqa: F401 (a fixture, shared)

import envprint

K3_FORMATS = ("memory", "code+load_weights", "keras", "h5", "savedmodel")


@pytest.fixture(scope="module")
def trained(keras, flavor, tmp_path_factory) -> dict[str, tuple[Any, Path]]:
    """Each construction trained for two epochs (BatchNorm statistics moved), with a folder to save it in."""
    if flavor != "keras3":
        pytest.skip(f"the matrix trains under Keras 3; this session runs {flavor} (the Keras 2 column covers Keras 2)")
    out = {}
    for construction in CONSTRUCTIONS:
        model = build(keras, construction)
        x = batch(construction)
        y = np.random.default_rng(3).standard_normal(
            (16, model.outputs[0].shape[-1] if construction != "subclassed" else 2)
        )
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y.astype(np.float32), epochs=2, batch_size=8, shuffle=False, verbose=0)
        out[construction] = (model, tmp_path_factory.mktemp(construction))
    return out


def _k3_digests(keras, model: Any, construction: str, folder: Path) -> dict[str, str]:
    from envprint._tf.identity import keras_weights_digest, model_identity
    from envprint._tf.loading import load_model

    def from_file(path: Path) -> str:
        if construction == "subclassed" and path.suffix == ".keras":
            # envprint's loader wants a model with inputs; the weights are the point here.
            return keras_weights_digest(keras.models.load_model(path, compile=False))
        return model_identity(load_model(path))["weights_digest"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HDF5 is legacy
        model.save_weights(folder / "m.weights.h5")
        rebuilt = build(keras, construction)
        rebuilt.load_weights(folder / "m.weights.h5")
        model.save(folder / "m.keras")
        model.export(str(folder / "saved_model"), verbose=False)
        digests = {
            "memory": keras_weights_digest(model),
            "code+load_weights": keras_weights_digest(rebuilt),
            "keras": from_file(folder / "m.keras"),
        }
        if construction != "subclassed":  # Keras 3 cannot load a subclassed model back from .h5
            model.save(folder / "m.h5")
            digests["h5"] = from_file(folder / "m.h5")
    digests["savedmodel"] = from_file(folder / "saved_model")
    return digests


@pytest.fixture(scope="module")
def k3_matrix(keras, trained) -> dict[str, dict[str, str]]:
    return {c: _k3_digests(keras, model, c, folder) for c, (model, folder) in trained.items()}


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_one_digest_whatever_the_construction_and_format(k3_matrix, construction: str) -> None:
    digests = k3_matrix[construction]
    assert list(digests) == [f for f in K3_FORMATS if not (construction == "subclassed" and f == "h5")]
    assert len(set(digests.values())) == 1, json.dumps(digests, indent=2)


def test_different_models_have_different_digests(k3_matrix) -> None:
    assert len({d["memory"] for d in k3_matrix.values()}) == len(CONSTRUCTIONS)


@pytest.mark.parametrize("which", ["kernel", "moving_variance"])
def test_one_ulp_in_one_weight_changes_the_digest(keras, trained, which: str) -> None:
    from envprint._tf.identity import keras_weights_digest

    model, _ = trained["sequential"]
    before = keras_weights_digest(model)
    weight = next(w for w in model.weights if w.path.endswith(which))  # trainable, then non-trainable
    original = weight.numpy()
    nudged = original.copy()
    nudged.flat[0] = np.nextafter(nudged.flat[0], np.float32(np.inf))
    try:
        weight.assign(nudged)
        assert keras_weights_digest(model) != before
    finally:
        weight.assign(original)
    assert keras_weights_digest(model) == before


def test_a_model_trained_here_verifies_against_the_record_of_its_keras_file(keras, trained) -> None:
    # The README's serving pattern: m.fit(); m.save("m.keras"); envprint save; envprint.verify(m, ...).
    model, folder = trained["sequential"]
    path = folder / "served.keras"
    model.save(path)
    envprint.save(path)
    report = envprint.verify(model, fingerprint=folder / "served.keras.envprint")
    assert report.identity.weights == "same", report.to_text()
    assert report.verdict == "identical", report.to_text()
    # A server that builds the architecture in code and loads the weights is the same model too.
    server = build(keras, "sequential")
    model.save_weights(folder / "served.weights.h5")
    server.load_weights(folder / "served.weights.h5")
    report = envprint.verify(server, fingerprint=folder / "served.keras.envprint")
    assert (report.identity.weights, report.verdict) == ("same", "identical"), report.to_text()


@pytest.mark.subprocess
def test_keras2_gives_the_same_digests(old_python, trained, k3_matrix, tmp_path: Path) -> None:  # noqa: F811
    for construction, (model, folder) in trained.items():
        np.savez(tmp_path / f"{construction}.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        (tmp_path / f"{construction}_k3_export").symlink_to(folder / "saved_model", target_is_directory=True)
    script = Path(__file__).with_name("identity_models.py")
    env = _old_env_vars()
    env["PYTHONPATH"] += f":{script.parent}"
    done = subprocess.run(
        [old_python, str(script), str(tmp_path)], env=env, text=True, capture_output=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    k2 = json.loads(done.stdout.strip().splitlines()[-1])
    for construction in CONSTRUCTIONS:
        expected = k3_matrix[construction]["memory"]
        assert {fmt: d == expected for fmt, d in k2[construction].items()} == {fmt: True for fmt in k2[construction]}, (
            construction
        )
    assert set(k2["sequential"]) == {
        "memory",
        "code+load_weights",
        "keras",
        "h5",
        "savedmodel",
        "savedmodel from Keras 3",
    }
    assert set(k2["subclassed"]) == {"memory", "code+load_weights", "savedmodel", "savedmodel from Keras 3"}
