#!/usr/bin/env python
"""Measure what each environment perturbation this CPU can produce does to real models' outputs.

For each model (a small MLP, a small CNN, MobileNetV2 with weights=None at 96x96) the reference
is predicted in a fresh process with TensorFlow's defaults; then each perturbation predicts the
same probes in its own fresh process, and the table reports how many outputs changed, the max
ULP distance and the max relative difference. The numbers back envprint's default float32
tolerance and the ranking rules of its explanations.

    python scripts/perturbations.py [--out bench-results/perturbations.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from envprint.check import compare
from envprint.models import Tolerance

PERTURBATIONS: dict[str, dict] = {
    "baseline again (fresh process)": {},
    "intra-op threads 2 -> 1": {"env": {"TF_NUM_INTRAOP_THREADS": "1"}},
    "inter-op threads 2 -> 1": {"env": {"TF_NUM_INTEROP_THREADS": "1"}},
    "oneDNN on -> off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    "op determinism on": {"determinism": True},
    "batch size 32 -> 1": {"batch_size": 1},
    "XLA jit (jit_compile=True)": {"jit": True},
    "dtype policy float32 -> mixed_bfloat16": {"policy": "mixed_bfloat16"},
    "(model change) one weight x (1 + 1e-3)": {"tamper": 1e-3},
}

BUILD = r"""
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
out = sys.argv[1]
L = keras.layers
mlp = keras.Sequential([keras.Input((64,)), L.Dense(256, activation="relu"), L.Dense(256, activation="relu"), L.Dense(10)])
cnn = keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
                        L.Conv2D(64, 3, activation="relu"), L.GlobalAveragePooling2D(), L.Dense(10)])
mnv2 = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=10, classifier_activation=None)
for name, m in (("mlp", mlp), ("cnn", cnn), ("mobilenetv2", mnv2)):
    m.save(f"{out}/{name}.keras")
    rng = np.random.default_rng(0)
    np.save(f"{out}/{name}.probes.npy", rng.standard_normal((32,) + m.input_shape[1:]).astype("float32"))
"""

PREDICT = r"""
import json, sys, numpy as np
cfg = json.loads(sys.argv[3])
import tensorflow as tf, keras
if cfg.get("determinism"):
    tf.config.experimental.enable_op_determinism()
model = keras.saving.load_model(sys.argv[1], compile=False)
if cfg.get("policy"):
    # Serving code that rebuilds the model under another global policy and loads the weights:
    # the saved per-layer dtype is dropped so that the global policy applies.
    def strip(c):
        if isinstance(c, dict):
            return {k: strip(v) for k, v in c.items() if k != "dtype"}
        return [strip(v) for v in c] if isinstance(c, list) else c
    keras.config.set_dtype_policy(cfg["policy"])
    clone = model.__class__.from_config(strip(model.get_config()))
    clone.set_weights(model.get_weights())
    model = clone
if cfg.get("tamper"):
    w = model.weights[0]
    v = w.numpy()
    v.flat[0] = v.flat[0] * (1 + cfg["tamper"])
    w.assign(v)
x = np.load(sys.argv[2], allow_pickle=False)
if cfg.get("jit"):
    fn = tf.function(lambda t: model(t, training=False), jit_compile=True)
    y = np.asarray(fn(tf.constant(x)))
else:
    y = model.predict(x, batch_size=cfg.get("batch_size", 32), verbose=0)
np.save(sys.argv[4], np.asarray(y, dtype=np.float32), allow_pickle=False)
"""


def ulp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def ordered(x: np.ndarray) -> np.ndarray:
        i = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(b))


def run(code: str, *args: str, env: dict | None = None) -> None:
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS"):
        if env is None or name not in env:
            environ.pop(name, None)
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=environ, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-results/perturbations.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run(BUILD, tmp)
        for model in ("mlp", "cnn", "mobilenetv2"):
            m, x = f"{tmp}/{model}.keras", f"{tmp}/{model}.probes.npy"
            run(PREDICT, m, x, "{}", f"{tmp}/{model}.ref.npy")
            ref = np.load(f"{tmp}/{model}.ref.npy")
            for label, cfg in PERTURBATIONS.items():
                out = f"{tmp}/{model}.out.npy"
                run(PREDICT, m, x, json.dumps({k: v for k, v in cfg.items() if k != "env"}), out, env=cfg.get("env"))
                y = np.load(out)
                d = ulp(ref, y)
                rel = np.abs(y.astype(np.float64) - ref) / np.maximum(np.abs(ref.astype(np.float64)), 1e-30)
                rows.append(
                    {
                        "model": model,
                        "perturbation": label,
                        "elements": int(ref.size),
                        "changed": int((d > 0).sum()),
                        "max_ulp": int(d.max()),
                        "median_ulp_of_changed": float(np.median(d[d > 0])) if (d > 0).any() else 0.0,
                        "max_rel": float(rel.max()),
                        "max_abs": float(np.abs(y - ref).max()),
                        "top1_agree": float((y.argmax(1) == ref.argmax(1)).mean()),
                    }
                )
                r = rows[-1]
                c = compare.compare_output("y", ref, y, Tolerance())
                r["default_tolerance"] = c.status
                print(
                    f"{model:12s} {label:42s} changed {r['changed']:4d}/{r['elements']}  max {r['max_ulp']:>9d} ULP  "
                    f"max rel {r['max_rel']:.1e}  top1 {r['top1_agree']:.2f}  {r['default_tolerance']}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "\n| model | perturbation | elements changed | max ULP | max rel | top-1 agreement | verdict at default tolerance |\n|---|---|---:|---:|---:|---:|---|"
    )
    for r in rows:
        print(
            f"| {r['model']} | {r['perturbation']} | {r['changed']} / {r['elements']} | {r['max_ulp']} | "
            f"{r['max_rel']:.1e} | {r['top1_agree']:.0%} | {r['default_tolerance']} |"
        )


if __name__ == "__main__":
    main()
