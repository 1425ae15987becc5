"""Measure how far a change of kernels moves models that compute in float32, float16 and bfloat16.

The numbers behind ``causes/precision.py`` (the magnitude classes and the default tolerance per
compute precision) and docs/concepts/tolerance-and-precision.md. Three small models (an MLP, a CNN,
an attention block) under each Keras dtype policy, the last layer float32, saved once; then, each in
a fresh process: TensorFlow as saved, a batch of 1 instead of 8, XLA (jit_compile=True), and the
JAX backend (no float16 x float16 -> float32 dot on JAX's CPU: skipped). Prints a Markdown table of
max |obtained - expected| / max |expected| as a power of two.

    python scripts/precision_noise.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
MODELS = ("mlp", "cnn", "attn")


def build(folder: Path) -> None:
    import keras

    for policy in POLICIES:
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        inp = keras.Input((64,))
        x = keras.layers.Dense(256, activation="gelu")(keras.layers.Dense(256, activation="relu")(inp))
        models = {"mlp": (inp, x)}
        inp = keras.Input((32, 32, 3))
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, activation="relu")(inp))
        models["cnn"] = (inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(32, 3, activation="relu")(x)))
        inp = keras.Input((16, 32))
        x = keras.layers.LayerNormalization()(inp)
        models["attn"] = (inp, keras.layers.GlobalAveragePooling1D()(keras.layers.MultiHeadAttention(4, 8)(x, x)))
        for name, (i, h) in models.items():
            keras.Model(i, keras.layers.Dense(10, dtype="float32")(h)).save(folder / f"{policy}_{name}.keras")


def run(folder: Path, out: Path) -> None:
    import keras

    results = {}
    for policy in POLICIES:
        if keras.backend.backend() == "jax" and policy == "mixed_float16":
            continue
        for name in MODELS:
            path = folder / f"{policy}_{name}.keras"
            m = keras.models.load_model(path)
            x = np.random.default_rng(1).standard_normal((8, *m.input_shape[1:])).astype("float32")
            results[f"{policy}_{name}"] = np.asarray(m.predict(x, verbose=0))
            if keras.backend.backend() == "tensorflow":
                results[f"batch1_{policy}_{name}"] = np.concatenate([np.asarray(m(x[i : i + 1])) for i in range(8)])
                xla = keras.models.load_model(path)
                xla.compile(jit_compile=True)
                results[f"xla_{policy}_{name}"] = np.asarray(xla.predict(x, verbose=0))
    np.savez(out, **results)


def _scaled(e: np.ndarray, o: np.ndarray) -> str:
    e, o = e.astype(np.float64), o.astype(np.float64)
    err = float(np.abs(o - e).max() / np.abs(e).max())
    return "0" if err == 0 else f"2^{np.log2(err):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="precision-noise-"))
    folder.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, __file__, "--out", str(folder)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for step, backend in (("build", "tensorflow"), ("tf", "tensorflow"), ("jax", "jax")):
        subprocess.run([*me[:2], step, *me[2:]], env={**env, "KERAS_BACKEND": backend}, check=True)
    tf, jax = np.load(folder / "tf.npz"), np.load(folder / "jax.npz")
    print("| dtype policy | model | batch 8 -> 1 | XLA | JAX backend | the float32 model run at this policy |")
    print("|---|---|---|---|---|---|")
    for policy in POLICIES:
        for name in MODELS:
            key = f"{policy}_{name}"
            cells = [_scaled(tf[key], tf[f"batch1_{key}"]), _scaled(tf[key], tf[f"xla_{key}"])]
            cells.append(_scaled(tf[key], jax[key]) if key in jax else "(no float16 dot on CPU)")
            cells.append("-" if policy == "float32" else _scaled(tf[f"float32_{name}"], tf[key]))
            print(f"| {policy} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("build", "tf", "jax"):
        step, folder = sys.argv[1], Path(sys.argv[3])
        build(folder) if step == "build" else run(folder, folder / f"{step}.npz")
    else:
        main()
