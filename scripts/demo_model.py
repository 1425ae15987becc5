#!/usr/bin/env python
"""Train a small image classifier for the demo and save it as .keras and as a SavedModel export.

    python scripts/demo_model.py OUT_DIR

A MobileNetV2 (alpha 0.35, 64x64 inputs, 5 classes, no pretrained weights: nothing is
downloaded): real convolutions, batch norm and depthwise kernels, so that oneDNN and batch-size
choices show up in its outputs as they do in production. It learns a synthetic task it can
actually solve (each class is a bright patch in its own place on noise), so its outputs depend on
its input and the report's top-1 agreement means something: trained on labels it could not
learn, with batch norm's moving statistics barely moved, it gave one 5-vector for every input.
It trains in well under a minute on two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

CLASSES = 5
# Where each class's bright 16x16 patch sits: four corners and the centre.
CORNERS = [(0, 0), (0, 48), (48, 0), (48, 48), (24, 24)]


def images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n labelled images: noise, plus the label's patch."""
    y = rng.integers(0, CLASSES, n)
    x = 0.5 * rng.standard_normal((n, 64, 64, 3))
    for i, label in enumerate(y):
        r, c = CORNERS[label]
        x[i, r : r + 16, c : c + 16, :] += 2.0
    return x.astype("float32"), y


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    import envprint

    envprint.seed_everything(7)  # seeds random, NumPy and TensorFlow; the seed is recorded by save
    import keras

    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    x, y = images(rng, 320)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    # 50 steps barely move batch norm's moving statistics (momentum 0.999): at inference the model
    # would still answer one 5-vector for every input. Set them to the training set's, in one pass.
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momentum = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, m in zip(norms, momentum, strict=True):
        layer.momentum = m
    samples, labels = images(rng, 16)
    scores = model.predict(samples, verbose=0)
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    distinct = len(np.unique(scores, axis=0))
    if distinct < 2:
        sys.exit("demo: the classifier gives one output for every sample; its top-1 agreement would mean nothing")
    model.save(out / "classifier.keras")
    model.export(out / "classifier_export", verbose=False)
    np.save(out / "samples.npy", samples)
    # The same model trained one step further: what a mixed-up deployment ships by mistake.
    model.fit(x[:16], y[:16], epochs=1, batch_size=16, verbose=0)
    model.save(out / "classifier_retrained.keras")
    print(
        f"saved {out / 'classifier.keras'}, {out / 'classifier_export'}/ (SavedModel), "
        f"{out / 'classifier_retrained.keras'} and {out / 'samples.npy'}; on the 16 samples: "
        f"top-1 accuracy {accuracy:.0%}, {distinct} distinct outputs"
    )


if __name__ == "__main__":
    main()
