"""``save --layers`` and ``verify --locate``: the layer trace written into a record, and compared against it.

Owns: the trace as the record holds it (``LayerTrace`` in fingerprint.json, its samples in
``layers.npz``, digested like the probes so that a signature covers them), reading it back, and
the comparison that names the first layer whose output departs (topological order), the first
over its budget, and where each branch departs first. Bounded: a layer costs at most
``SAMPLE_SIZE`` float32 samples and one line of fingerprint.json, whatever its size or the
probe count. Holds no TensorFlow code (``envprint._tf.layers`` computes the trace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint.check import compare
from envprint.errors import FingerprintError
from envprint.models import ArrayFile, Fingerprint, LayerLocation, LayerStep, LayerTrace, Tolerance, TracedLayer
from envprint.record import digests, sidecar

SAMPLES = "samples"


def record_trace(loaded: Any, inputs: Mapping[str, np.ndarray]) -> Any:
    """The model's layers traced on the probes (``_tf.layers.Trace``); raises ModelError if it cannot be."""
    from envprint._tf.layers import trace_layers

    return trace_layers(loaded, inputs)


def write_trace(directory: Path, trace: Any) -> LayerTrace:
    """Write the samples of ``trace`` into ``directory``/layers.npz and return what fingerprint.json holds."""
    from envprint._tf.layers import SAMPLE_SIZE
    from envprint.record.npz import save_arrays

    path = directory / sidecar.LAYERS_FILE
    samples = trace.sample_array(SAMPLE_SIZE)
    save_arrays(path, {SAMPLES: samples})
    arrays = ArrayFile(
        file=sidecar.LAYERS_FILE, sha256=digests.sha256_file(path), arrays={SAMPLES: list(samples.shape)}
    )
    return LayerTrace(sample_size=SAMPLE_SIZE, arrays=arrays, layers=[TracedLayer(**entry) for entry in trace.layers])


def read_samples(fp: Fingerprint, fp_path: Path, reader: sidecar.RecordReader) -> tuple[np.ndarray | None, bool]:
    """The recorded samples (None without a trace), and whether layers.npz differs from its recorded sha256."""
    from envprint.record.npz import load_arrays

    if fp.layer_trace is None:
        return None, False
    record = fp.layer_trace.arrays
    path = fp_path.parent / record.file
    data = reader.read(record.file) if sidecar.plain_file_name(record.file) else None
    if data is None:
        raise FingerprintError(f"{path}: missing from the sidecar; copy the whole {fp_path.parent.name}/ directory")
    loaded = load_arrays(path, data)
    shape = [len(fp.layer_trace.layers), fp.layer_trace.sample_size]
    if SAMPLES not in loaded or list(loaded[SAMPLES].shape) != shape:
        raise FingerprintError(
            f"{path}: the layer samples do not match {fp_path.name} (expected {SAMPLES} {tuple(shape)}); "
            f"copy the whole {fp_path.parent.name}/ directory again or re-save the record with --layers"
        )
    return loaded[SAMPLES], hashlib.sha256(data).hexdigest() != record.sha256


def budget(saved: Fingerprint, tolerance: Tolerance | None) -> float:
    """A layer's budget, relative to its recorded scale: the tolerance's rtol (float32's default without one)."""
    policy = tolerance or saved.tolerance or Tolerance()
    if policy.exact:
        return 0.0
    return policy.rtol if policy.rtol is not None else compare.default_tolerance("float32")[0]


def not_traced(reason: str, budget_rtol: float) -> LayerLocation:
    return LayerLocation(status="not_traced", not_traced=reason, budget_rtol=budget_rtol)


def locate(saved: LayerTrace, samples: np.ndarray, trace: Any, budget_rtol: float) -> LayerLocation:
    """Compare this host's ``trace`` (``_tf.layers.Trace``) with the record's, layer by layer."""
    from envprint._tf.layers import layer_op

    now = {entry["name"]: (entry, trace.samples[i]) for i, entry in enumerate(trace.layers)}
    if [layer.name for layer in saved.layers] != [entry["name"] for entry in trace.layers]:
        return not_traced("layers_changed", budget_rtol)
    steps = [_step(i, layer, samples[i], *now[layer.name], budget_rtol) for i, layer in enumerate(saved.layers)]
    departed = {s.index for s in steps if not s.identical}
    origins = [s.index for s in steps if not s.identical and not (set(_inbound(saved, s.index)) & departed)]
    first = min(departed, default=None)
    over = [s.index for s in steps if s.over_budget]
    named = sorted({*origins, *([first] if first is not None else [])})
    ops = {saved.layers[i].name: op for i in named if (op := layer_op(trace, saved.layers[i].name)) is not None}
    return LayerLocation(
        status="located" if departed else "no_departure",
        budget_rtol=budget_rtol,
        first=first,
        first_over_budget=over[0] if over else None,
        origins=origins,
        ops=ops,
        departed=len(departed),
        steps=steps,
    )


def _inbound(saved: LayerTrace, i: int) -> list[int]:
    """The layers feeding layer ``i``; without a graph (a subclassed model), the layer called before it."""
    inbound = saved.layers[i].inbound
    return inbound if inbound is not None else ([i - 1] if i else [])


def _step(i: int, layer: TracedLayer, expected: np.ndarray, entry: dict[str, Any], obtained: np.ndarray,
          budget_rtol: float) -> LayerStep:  # fmt: skip
    identical = entry["digest"] == layer.digest
    max_abs = rel = None
    if not identical and obtained.size and obtained.size <= expected.size:
        with np.errstate(invalid="ignore"):
            diff = np.abs(obtained.astype(np.float64) - expected[: obtained.size].astype(np.float64))
        finite = diff[np.isfinite(diff)]
        max_abs = float(finite.max()) if finite.size else None
        if max_abs is not None:
            rel = max_abs / layer.scale if layer.scale else max_abs
    return LayerStep(
        index=i,
        name=layer.name,
        class_name=layer.class_name,
        identical=identical,
        max_abs=max_abs,
        rel_error=rel,
        # Not bit-identical and: not numeric, above the budget, or any difference under an exact budget.
        over_budget=not identical and (rel is None or rel > budget_rtol or budget_rtol == 0),
        weights_changed=entry.get("weights_digest") != layer.weights_digest,
        preprocessing=layer.preprocessing,
    )
