"""Models for the weights-digest matrix, built the same way under Keras 3 and Keras 2 (TensorFlow 2.15).

Not a test module: ``tests/test_identity_matrix.py`` builds and trains them here, and the Keras 2
half runs ``python tests/identity_models.py WORKDIR`` in the TensorFlow 2.15 environment, which
rebuilds each architecture in Keras 2 code, sets the weights trained under Keras 3, saves it in
every format Keras 2 writes, and prints the weights digest of each as JSON. Keras comes in as an
argument: importing this module imports no TensorFlow.

Every architecture holds non-trainable weights (BatchNormalization's moving statistics); the
functional one applies one Dense layer to two inputs (a shared layer: its weights count once).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

CONSTRUCTIONS = ("sequential", "functional_shared", "subclassed")

_REGISTERED: dict[int, Any] = {}


def subclassed_class(keras: Any) -> Any:
    """The subclassed model class for this Keras, registered once (so .keras and .h5 can rebuild it)."""
    if id(keras) in _REGISTERED:
        return _REGISTERED[id(keras)]

    register = getattr(getattr(keras, "saving", None), "register_keras_serializable", None)
    register = register or keras.utils.register_keras_serializable

    @register(package="envprint_identity")
    class Scorer(keras.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(6, activation="relu")
            self.norm = keras.layers.BatchNormalization()
            self.score = keras.layers.Dense(2)

        def call(self, x: Any, training: Any = None) -> Any:
            return self.score(self.norm(self.hidden(x), training=training))

    _REGISTERED[id(keras)] = Scorer
    return Scorer


def build(keras: Any, construction: str) -> Any:
    """A fresh, built model of ``construction``, with Keras' own initial weights (layers auto-named)."""
    if construction == "sequential":
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(6, activation="relu"), keras.layers.BatchNormalization(),
             keras.layers.Dense(3)]
        )  # fmt: skip
    if construction == "functional_shared":
        a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
        shared = keras.layers.Dense(5, activation="tanh")
        joined = keras.layers.Concatenate()([shared(a), shared(b)])
        out = keras.layers.Dense(2)(keras.layers.BatchNormalization()(joined))
        return keras.Model([a, b], out)
    model = subclassed_class(keras)()
    model(np.zeros((1, 4), np.float32))  # a subclassed model has weights once it is called
    return model


def batch(construction: str, n: int = 16) -> Any:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return [x, rng.standard_normal((n, 4)).astype(np.float32)] if construction == "functional_shared" else x


def keras2_digests(workdir: Path) -> dict[str, dict[str, str]]:
    """Under Keras 2: each construction rebuilt in code with the Keras 3 weights, saved and reloaded."""
    import warnings

    import tensorflow as tf

    from envprint._tf import import_keras
    from envprint._tf.identity import keras_weights_digest, model_identity
    from envprint._tf.loading import load_model

    keras = import_keras()
    warnings.simplefilter("ignore")
    out: dict[str, dict[str, str]] = {}
    for construction in CONSTRUCTIONS:
        with np.load(workdir / f"{construction}.npz") as f:
            weights = [f[f"w{i}"] for i in range(len(f.files))]
        model = build(keras, construction)
        model.set_weights(weights)
        folder = workdir / f"k2_{construction}"
        folder.mkdir(exist_ok=True)
        digests = {"memory": keras_weights_digest(model)}
        model.save_weights(str(folder / "w.h5"))
        rebuilt = build(keras, construction)
        rebuilt.load_weights(str(folder / "w.h5"))
        digests["code+load_weights"] = keras_weights_digest(rebuilt)
        if construction != "subclassed":  # Keras 2 saves a subclassed model as a SavedModel only
            for fmt, name in (("keras", "m.keras"), ("h5", "m.h5")):
                model.save(str(folder / name))
                digests[fmt] = model_identity(load_model(folder / name))["weights_digest"]
        tf.saved_model.save(model, str(folder / "saved_model"))
        digests["savedmodel"] = model_identity(load_model(folder / "saved_model"))["weights_digest"]
        digests["savedmodel from Keras 3"] = model_identity(load_model(workdir / f"{construction}_k3_export"))[
            "weights_digest"
        ]
        out[construction] = digests
    return out


if __name__ == "__main__":
    print(json.dumps(keras2_digests(Path(sys.argv[1]))))
