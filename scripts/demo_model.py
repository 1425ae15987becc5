#!/usr/bin/env python
"""Train a small image classifier for the demo and save it as .keras and as a SavedModel export.

    python scripts/demo_model.py OUT_DIR

A MobileNetV2 (alpha 0.35, 64x64 inputs, 5 classes, no pretrained weights: nothing is
downloaded) trained for one epoch on synthetic data: real convolutions, batch norm and depthwise
kernels, so that oneDNN and batch-size choices show up in its outputs as they do in production.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    import envprint

    envprint.seed_everything(7)  # seeds random, NumPy and TensorFlow; the seed is recorded by save
    import keras

    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 64, 64, 3)).astype("float32")
    y = rng.integers(0, 5, 64)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(out / "classifier.keras")
    model.export(out / "classifier_export", verbose=False)
    np.save(out / "samples.npy", rng.standard_normal((16, 64, 64, 3)).astype("float32"))
    # The same model trained one step further: what a mixed-up deployment ships by mistake.
    model.fit(x[:16], y[:16], epochs=1, batch_size=16, verbose=0)
    model.save(out / "classifier_retrained.keras")
    print(f"saved {out / 'classifier.keras'}, {out / 'classifier_export'}/ (SavedModel), "
          f"{out / 'classifier_retrained.keras'} and {out / 'samples.npy'}")


if __name__ == "__main__":
    main()
