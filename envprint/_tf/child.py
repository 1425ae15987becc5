"""The child process's side of ``verify --investigate``: apply one setting, load, predict, report.

Owns: ``_child_main``, the entry point that ``envprint.check.investigate`` runs through
``python -c`` (its ``_BOOT`` names this module), and ``_child_run``: apply the spec's runtime
settings (``envprint._tf.settings``: thread pools, determinism, TF32, XLA, grappler, dtype policy,
seed) before the model loads, predict the probes, and write the outputs (``.npz``) and the facts the process ended up
with (JSON) where the spec says. The environment variables were set by the parent.

TensorFlow and Keras are imported inside functions only, through ``envprint._tf`` (ruff
TID253). Must not import ``investigate``, ``restore`` or ``capturer`` (nothing above ``_tf`` but
``probes`` and ``errors``): the spec arrives as plain JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from envprint.errors import EnvprintError


def _child_main(spec_path: str) -> int:
    """Entry point of a child: apply the runtime settings, load, predict, write outputs and facts."""
    try:
        _child_run(json.loads(Path(spec_path).read_text(encoding="utf-8")))
    except EnvprintError as exc:
        sys.stderr.write(f"envprint: error: {exc}\n")
        return int(exc.exit_code)
    return 0


def _child_run(spec: dict[str, Any]) -> None:
    from envprint import formats

    backend, _ = formats.selected_backend()
    if backend == formats.DEFAULT_BACKEND:
        facts = _run_on_tensorflow(spec)
    else:  # Keras on JAX, OpenVINO, ...: TensorFlow's settings and facts do not apply, and it may be absent
        _predict(spec, lambda: _seed_keras(spec["runtime"]))
        facts = {"keras_backend": backend}
    Path(spec["facts"]).write_text(json.dumps(facts), encoding="utf-8")


def _seed_keras(runtime: dict[str, Any]) -> None:
    if "seed" in runtime:
        import keras  # the backend-neutral Keras 3: its seeding needs no TensorFlow

        keras.utils.set_random_seed(runtime["seed"])


def _predict(spec: dict[str, Any], before_load: Any) -> None:
    """Apply the settings (``before_load``), load the model, predict each run's probes and write its outputs."""
    from envprint._tf import loading
    from envprint.record.npz import load_arrays, save_arrays

    before_load()
    loaded = loading.load_model(
        spec["model"],
        fmt=spec["format"],
        signature=spec["signature"],
        custom_objects=loading.parse_custom_objects(spec["custom_objects"]),
        safe_mode=spec["safe_mode"],
    )
    probes = load_arrays(spec["probes"])
    for name, batch_size in spec["runs"].items():
        save_arrays(Path(spec["out_dir"]) / f"{name}.npz", loaded.predict(probes, batch_size=batch_size))


def _run_on_tensorflow(spec: dict[str, Any]) -> dict[str, Any]:
    from envprint import _tf, formats
    from envprint._tf import runtime, settings

    tf = _tf.import_tensorflow()
    _predict(spec, lambda: settings.apply(tf, spec["runtime"]))
    info = runtime.tensorflow_info(tf, {})
    intra, inter = runtime.thread_settings(tf)
    # What the restore steps expect a child to report (causes.registry.FACTS, by family).
    return {
        "onednn": info.onednn.enabled,
        "op_determinism": info.op_determinism,
        "tensor_float_32": info.tensor_float_32,
        "jit": info.jit,
        "dtype_policy": info.dtype_policy,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "intra": intra,
        "inter": inter,
        "keras_backend": formats.DEFAULT_BACKEND,
    }
