"""The corpus: models nobody here wrote, saved with envprint and verified in fresh processes under changed settings.

Builds each entry of ``CORPUS`` (Keras Applications architectures, ``weights=None``, seeded, at
small input sizes), saves it with ``envprint.save`` (envprint's own probes), then verifies every
model in one fresh process per setting of ``SETTINGS``: this host as saved, oneDNN flipped
(TF_ENABLE_ONEDNN_OPTS the other way from the saved host's state), and Keras on JAX and on
OpenVINO (KERAS_BACKEND). Prints a Markdown table: the verdict, max ULP and max relative error
per model and setting, and the cause envprint ranked first.

    python scripts/corpus.py --folder corpus-models  # the whole corpus; a rerun reuses the models
    python scripts/corpus.py --only MobileNetV2 --settings jax
    python scripts/corpus.py --out docs/reference/corpus-table.md

One list of entries: an entry names a ``kind`` (a builder in ``BUILDERS``) and its arguments, so
models of other input kinds (int8 TFLite, text, dict inputs) join as new kinds and entries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # a key of BUILDERS
    input_shape: tuple[int, ...] = (32, 32, 3)  # the smallest each architecture accepts, or 32x32
    options: dict[str, Any] = field(default_factory=dict)


def _application(entry: Entry, folder: Path, seed: int) -> Path:
    """A keras.applications architecture, untrained (weights=None), seeded, 10 classes, saved as .keras."""
    import keras

    keras.utils.set_random_seed(seed)
    build = getattr(keras.applications, entry.name)
    model = build(weights=None, input_shape=entry.input_shape, classes=10, **entry.options)
    path = folder / f"{entry.name}.keras"
    model.save(path)
    return path


def _int8_tflite(entry: Entry, folder: Path, seed: int) -> Path:
    """A small CNN converted to a full-integer quantized TFLite model (int8 input and output)."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    image = keras.Input(entry.input_shape, name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(image)
    keras.Model(image, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(h))).export(
        str(folder / "int8_float"), verbose=False
    )
    samples = np.random.default_rng(seed).standard_normal((16, 1, *entry.input_shape)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "int8_float"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = folder / f"{entry.name}.tflite"
    path.write_bytes(converter.convert())
    return path


def _text(entry: Entry, folder: Path, seed: int) -> Path:
    """A string input through TextVectorization (its vocabulary given in code), an Embedding and Dense layers."""
    import keras

    keras.utils.set_random_seed(seed)
    text = keras.Input((1,), dtype="string", name="text")
    words = keras.layers.TextVectorization(output_sequence_length=8, vocabulary=["the", "cat", "sat", "on", "a", "mat"])
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(8, 16)(words(text)))
    path = folder / f"{entry.name}.keras"
    keras.Model(text, keras.layers.Dense(4)(keras.layers.Dense(32, activation="relu")(x))).save(path)
    return path


def _lookups(entry: Entry, folder: Path, seed: int) -> Path:
    """A dict of named inputs: StringLookup, IntegerLookup, a boolean and a float input, joined."""
    import keras

    keras.utils.set_random_seed(seed)
    word = keras.Input((1,), dtype="string", name="word")
    code = keras.Input((1,), dtype="int64", name="code")
    flag = keras.Input((1,), dtype="bool", name="flag")
    num = keras.Input((3,), name="num")
    parts = [
        keras.layers.StringLookup(vocabulary=["red", "green", "blue"], output_mode="one_hot")(word),
        keras.layers.IntegerLookup(vocabulary=[10, 20, 30], output_mode="one_hot")(code),
        keras.ops.cast(flag, "float32"),
        num,
    ]
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(p) for p in parts])
    path = folder / f"{entry.name}.keras"
    inputs = {"word": word, "code": code, "flag": flag, "num": num}
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(16, activation="relu")(joined))).save(path)
    return path


BUILDERS: dict[str, Callable[[Entry, Path, int], Path]] = {
    "application": _application,
    "int8_tflite": _int8_tflite,
    "text": _text,
    "lookups": _lookups,
}

# fmt: off
CORPUS: tuple[Entry, ...] = (
    Entry("MobileNet", "application", options={"alpha": 0.25}),
    Entry("MobileNetV2", "application", options={"alpha": 0.35}),
    Entry("MobileNetV3Small", "application", options={"include_preprocessing": False}),
    Entry("EfficientNetB0", "application"),
    Entry("EfficientNetV2B0", "application"),
    Entry("ResNet50", "application"),
    Entry("ResNet50V2", "application"),
    Entry("DenseNet121", "application"),
    Entry("VGG16", "application"),
    Entry("ConvNeXtTiny", "application"),
    Entry("MobileNetV3Large", "application", options={"include_preprocessing": False}),
    Entry("NASNetMobile", "application"),
    Entry("Xception", "application", (71, 71, 3)),
    Entry("InceptionV3", "application", (75, 75, 3)),
    Entry("InceptionResNetV2", "application", (75, 75, 3)),
    # One model of each input kind envprint makes probes for from what the model says (docs: concepts/probes.md).
    Entry("int8_tflite_cnn", "int8_tflite", (16, 16, 3)),
    Entry("text_vectorization", "text"),
    Entry("dict_lookups_bool", "lookups"),
)
# fmt: on
# What CI runs (tests/test_corpus.py): small, and one of each family of kernels (depthwise, SE blocks).
CI_SUBSET = ("MobileNetV2", "MobileNetV3Small")


def _onednn_flipped(saved_onednn: bool | None) -> dict[str, str]:
    return {"TF_ENABLE_ONEDNN_OPTS": "0" if saved_onednn else "1"}


# Setting -> the environment of its fresh process (a callable of the saved host's oneDNN state).
SETTINGS: dict[str, Callable[[bool | None], dict[str, str]]] = {
    "same host": lambda onednn: {},
    "oneDNN flipped": _onednn_flipped,
    "jax": lambda onednn: {"KERAS_BACKEND": "jax"},
    "openvino": lambda onednn: {"KERAS_BACKEND": "openvino"},
}

_VERIFY = """
import json, sys
import envprint
for path in sys.argv[1:]:
    try:
        r = envprint.verify(path)
    except envprint.EnvprintError as exc:  # refused here, in one line: a row of its own
        print("ROW " + json.dumps({"path": path, "verdict": "refused", "exit": int(exc.exit_code),
              "message": str(exc), "max_ulp": None, "max_rel": None, "cause": None}))
        continue
    ulps = [o.max_ulp for o in r.outputs if o.max_ulp is not None]
    rels = [o.max_rel for o in r.outputs if o.max_rel is not None]
    print("ROW " + json.dumps({"path": path, "verdict": r.verdict, "max_ulp": max(ulps, default=0),
          "max_rel": max(rels, default=0.0), "cause": r.explanations[0].cause if r.explanations else None}))
fp = envprint.capture()
print("HOST " + json.dumps({"keras_backend": fp.keras.backend if fp.keras else None,
      "openvino_precision": fp.keras.openvino.inference_precision if fp.keras and fp.keras.openvino else None}))
"""


def build_and_save(entries: Iterable[Entry], folder: Path, seed: int = 0) -> dict[str, Path]:
    """Each entry built and saved with envprint (its own probes), in this process: {name: model path}."""
    import envprint

    paths = {}
    for entry in entries:
        done = next(folder.glob(f"{entry.name}.*.envprint/fingerprint.json"), None)
        if done is not None:  # kept from an earlier run into the same --folder
            paths[entry.name] = done.parent.parent / done.parent.name.removesuffix(".envprint")
            continue
        path = BUILDERS[entry.kind](entry, folder, seed)
        envprint.save(path)
        paths[entry.name] = path
    return paths


def verify_in_fresh_process(paths: dict[str, Path], env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    """Verify every model in one fresh interpreter with ``env`` added: {name: row}, and the host's backend facts."""
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", _VERIFY, *map(str, paths.values())], capture_output=True,
                          text=True, env=environ, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"verify with {env} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    by_path = {str(p): name for name, p in paths.items()}
    rows: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("ROW "):
            row = json.loads(line[4:])
            rows[by_path[row["path"]]] = row
        elif line.startswith("HOST "):
            rows["_host"] = json.loads(line[5:])
    return rows


def run(entries: Iterable[Entry], settings: Iterable[str], folder: Path) -> dict[str, dict[str, Any]]:
    """{setting: {name: row}} for every entry under every setting."""
    from envprint.record.store import read_fingerprint

    paths = build_and_save(entries, folder)
    first = next(iter(paths.values()))
    saved = read_fingerprint(first.parent / f"{first.name}.envprint" / "fingerprint.json")
    onednn = saved.tensorflow.onednn.enabled if saved.tensorflow else None
    return {s: verify_in_fresh_process(paths, SETTINGS[s](onednn)) for s in settings}


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    if row["verdict"] == "refused":
        return f"refused (exit {row['exit']})"
    verdict = {"identical": "identical", "within_tolerance": "within tol.", "mismatch": "**MISMATCH**"}[row["verdict"]]
    if row["verdict"] == "identical":
        return verdict
    return f"{verdict}: {row['max_ulp']} ULP, rel {row['max_rel']:.1e}"


def table(results: dict[str, dict[str, Any]], names: list[str]) -> str:
    """The Markdown table: one row per model, one column per setting."""
    settings = list(results)
    lines = ["| model | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_cell(results[s].get(name)) for s in settings) + " |")
    causes = {s: sorted({r["cause"] for n, r in results[s].items() if n != "_host" and r["cause"]}) for s in settings}
    lines.append("| cause ranked first | " + " | ".join(", ".join(causes[s]) or "none" for s in settings) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="entry names (default: the whole corpus)")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--folder", type=Path, help="build and keep the models here (a rerun reuses them)")
    args = parser.parse_args(argv)
    entries = [e for e in CORPUS if not args.only or e.name in args.only]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envprint-corpus-") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = run(entries, args.settings, folder)
    text = table(results, [e.name for e in entries])
    hosts = {s: r.get("_host") for s, r in results.items()}
    text += f"\n{len(entries)} models, {time.perf_counter() - start:.0f} s; backends as verified: {json.dumps(hosts)}\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
