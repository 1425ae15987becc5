"""Tiny models with records for the sweep, fleet and aggregate tests (built in the tests, seeded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import envprint


def tiny(keras: Any, seed: int, *extra: Any) -> Any:
    """features (None, 4) -> Dense(3) [-> extra layers]: seeded weights, loads in milliseconds."""
    inp = keras.Input((4,), name="features")
    x = keras.layers.Dense(
        3,
        name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.RandomNormal(seed=seed + 1000),
    )(inp)
    for layer in extra:
        x = layer(x)
    return keras.Model(inp, x)


def depthwise(keras: Any) -> Any:
    """Conv2D -> DepthwiseConv2D -> BatchNorm -> 1x1 Conv2D -> pool -> Dense: on this CPU (AVX2,
    TensorFlow 2.21) oneDNN on and off give different bits for it (the MLP and a plain CNN do not)."""
    g = keras.initializers.GlorotUniform
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=g(seed=1))(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depthwise_initializer=g(seed=2))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(16, 1, kernel_initializer=g(seed=3))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, name="logits", kernel_initializer=g(seed=4))(x))


def saved(model: Any, path: Path, **save_options: Any) -> Path:
    """``model`` saved as .keras at ``path`` with its envprint record beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    envprint.save(path, **save_options)
    return path
