"""The Keras backend cause: the same Keras file run by another backend (TensorFlow, JAX, OpenVINO, PyTorch).

Owns: the keras_backend entry, the saved backend to put back (``saved_backend``: the recorded
``keras.backend``, or for a record written before it existed the backend TensorFlow recorded),
written once and used by the remedy and by ``verify --investigate``'s child (run with
``VARIABLE`` set to it; the child reports ``keras_backend`` and must report the saved one, or the
run is untestable); OpenVINO's CPU inference precision (``FULL_PRECISION``): measured, JAX stays
within 1.3e-6 relative of TensorFlow, OpenVINO within 1.3e-2 where its CPU plugin computes in bf16.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envprint.causes.base import (
    Cause,
    DiffEntry,
    Family,
    Fingerprint,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    label,
    matches,
    untestable,
)

VARIABLE = "KERAS_BACKEND"
PRECISION = "keras.openvino.inference_precision"
FULL_PRECISION = "f32"  # OpenVINO's name for float32 compute: anything else (bf16, f16) rounds every op


# What only a process that runs TensorFlow records: with Keras moved off TensorFlow on one side,
# these are present on that side only because TensorFlow ran there, and the backend says it all.
TENSORFLOW_RUNTIME = (
    "tensorflow", "tensorflow.*", "devices.physical*", "threads.tf_*", "devices.loaded_libraries.tensorflow_framework",
    "packages.tensorflow_distribution", "packages.key.tensorflow*",
)  # fmt: skip


def _backend_of(leaves: Mapping[str, Any]) -> Any:
    return leaves.get("keras.backend") or leaves.get("tensorflow.keras_backend")


def off_tensorflow(la: Mapping[str, Any], lb: Mapping[str, Any]) -> bool:
    """The two sides ran Keras on different backends, one of them not TensorFlow (leaves of two fingerprints)."""
    a, b = _backend_of(la), _backend_of(lb)
    return a is not None and b is not None and a != b


def tensorflow_runtime(path: str) -> bool:
    """A fact only a process running TensorFlow records (see TENSORFLOW_RUNTIME)."""
    return matches(path, TENSORFLOW_RUNTIME)


def saved_backend(fp: Fingerprint) -> str | None:
    """The backend the saved host ran Keras on: recorded, else TensorFlow's own record of it, else unknown."""
    if fp.keras is not None and fp.keras.backend is not None:
        return fp.keras.backend
    return fp.tensorflow.keras_backend if fp.tensorflow is not None else None


def _low_precision(c: Scoring, e: DiffEntry) -> bool:
    """This host's OpenVINO computes below float32 (bf16/f16), and the saved host did not."""
    return e.path == PRECISION and e.b not in (None, FULL_PRECISION) and e.a in (None, FULL_PRECISION)


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    want = saved_backend(c.saved)
    here = c.now("keras.backend", want)
    if want is None:
        return "run Keras on the saved host's backend (it was not recorded; envprint diff lists the rest)"
    if here == want:
        return f"Keras already runs on {want} here: the backend's own stack differs (envprint diff lists it)"
    return f"export {VARIABLE}={want} before Keras is imported (the saved host ran Keras on {want}, this one on {here})"


def _precision(c: Scoring, entries: list[DiffEntry]) -> str:
    """OpenVINO's second remedy, only where it computes below float32 here."""
    now = c.now(PRECISION, None)
    if now in (None, FULL_PRECISION):
        return ""
    return (
        f"or, to stay on OpenVINO, compile in float32: its CPU plugin computes in {now} here "
        f"(openvino.compile_model(model, 'CPU', {{'INFERENCE_PRECISION_HINT': '{FULL_PRECISION}'}}))"
    )


def _restore(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    want = saved_backend(c.saved)
    if want is None:
        return untestable(c, entries, "the saved host's Keras backend is unknown")
    env: dict[str, str | None] = {VARIABLE: want}
    return [Restore("keras_backend", label(env), env, expect={"keras_backend": want}, fields=field_paths(entries))]


# fmt: off
FAMILY = Family(
    causes={
        "keras_backend": Cause(
            "Keras backend", "reduction_order", (0.9, 0.8, 0.1, 0.05, 0.05),
            ("{keras_backend}", "{openvino_precision}"),
            (Rule(PRECISION, "low_precision", 0.8, "OpenVINO computes float32 models in {b} on this CPU: expect "
                  "relative errors near 2^-8 (measured: 6e-4 to 1.3e-2 on 15 Keras Applications)",
                  predicts="precision"),
             Rule("keras.backend", "any", 0.7, "saved with Keras on {a}, this host runs it on {b}: other kernels, "
                  "expect float noise (measured against TensorFlow: JAX within 1.3e-6 relative on 15 Keras "
                  "Applications)"),
             Rule("*", "any", 0.3, "{path} {a} -> {b}: the Keras backend's stack changed: expect ULP-level noise")),
            "keras_backend",
            paths=("keras.*", f"env.variables.{VARIABLE}", "tensorflow.keras_backend"),
            effective=("keras.backend",),
            follows=(f"env.variables.{VARIABLE}", "tensorflow.keras_backend", "keras.backend_source"),
            # A record written before envprint recorded the backend: the section itself is no difference.
            # Keras sets TF_FORCE_GPU_ALLOW_GROWTH=true itself when it runs on another backend (GPU memory only).
            listed=("keras", "env.variables.TF_FORCE_GPU_ALLOW_GROWTH")),
    },
    values={"keras_backend": _remedy, "openvino_precision": _precision},
    when={"low_precision": _low_precision},
    restorers={"keras_backend": _restore},
    facts=("keras_backend",),
)
# fmt: on
