"""Each layer's output of a Keras model on the probes, reduced as it is computed (``save --layers``, ``--locate``).

Owns: the trace (one eager call of the model, every probe as one batch, with each layer's ``call``
wrapped for the duration so that its output is digested, scaled and sampled the moment it exists
and then dropped: memory stays what the model's own eager call needs, however many layers), the
graph of which layer feeds which (Keras' nodes; none for a subclassed model), and the TensorFlow
op behind a layer. Eager, not ``predict``: a graph fuses a convolution with its batch norm and
activation, so the layers' own outputs exist only eagerly; save and verify both trace this way.
Only ``envprint._tf`` imports TensorFlow or Keras; returns plain data and NumPy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envprint._tf import import_keras, import_tensorflow
from envprint.errors import ModelError, one_line

SAMPLE_SIZE = 32  # elements kept per layer: 128 bytes of samples, whatever the layer's size
DIGEST_HEX = 16  # 64 bits of sha256: enough to tell two outputs apart, a third of the record's bytes
# Ops that say what a layer computes, most telling first; the first one a layer's graph holds is its op.
TELLING_OPS = (
    "DepthwiseConv2dNative", "Conv2D", "Conv3D", "Conv2DBackpropInput", "Conv3DBackpropInputV2", "MatMul",
    "BatchMatMulV3", "BatchMatMulV2", "Einsum", "FusedBatchNormV3", "AvgPool", "MaxPool", "Softmax", "Relu6",
    "Relu", "Sigmoid", "Tanh", "Mean", "Sum", "Rsqrt", "ResizeBilinear", "ResizeNearestNeighbor", "Cast",
)  # fmt: skip
_PLUMBING = frozenset({"Placeholder", "ReadVariableOp", "Identity", "Const", "NoOp", "Shape", "StridedSlice", "Pack"})


@dataclass
class Trace:
    """What one traced call gave: a dict per layer (``models.TracedLayer``'s fields) and the samples."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    objects: dict[str, Any] = field(default_factory=dict)  # name -> the layer, for ``layer_op``
    input_specs: dict[str, Any] = field(default_factory=dict)  # name -> its inputs' TensorSpecs (nested)

    def sample_array(self, size: int) -> np.ndarray:
        out = np.full((len(self.samples), size), np.nan, dtype=np.float32)
        for i, s in enumerate(self.samples):
            out[i, : s.size] = s
        return out


def _digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:DIGEST_HEX]


def _reduce(arrays: list[np.ndarray], size: int) -> tuple[float | None, np.ndarray]:
    """(largest finite |value|, an evenly strided sample of ``size`` elements) over numeric outputs."""
    numeric = [a.ravel() for a in arrays if a.dtype.kind in "fiub" and a.size]
    if not numeric:
        return None, np.zeros(0, np.float32)
    flat = np.concatenate(numeric) if len(numeric) > 1 else numeric[0]
    values = flat.astype(np.float64)
    finite = values[np.isfinite(values)]
    scale = float(np.max(np.abs(finite))) if finite.size else None
    index = np.unique(np.linspace(0, flat.size - 1, num=min(size, flat.size)).astype(np.int64))
    return scale, values[index].astype(np.float32)


def _weights_digest(layer: Any) -> str | None:
    weights = [np.asarray(w.numpy() if hasattr(w, "numpy") else w) for w in getattr(layer, "weights", [])]
    return _digest(weights) if weights else None


def _graph(model: Any) -> dict[str, list[str]] | None:
    """Layer name -> the names of the layers feeding it (its first call), or None without a graph."""
    try:
        return {
            layer.name: [p.operation.name for p in layer._inbound_nodes[0].parent_nodes]
            for layer in model.layers
            if layer._inbound_nodes
        }
    except (AttributeError, IndexError):  # a subclassed model, or a Keras without nodes
        return None


def _specs(value: Any, tf: Any) -> Any:
    return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype) if hasattr(t, "dtype") else t, value)


def trace_layers(loaded: Any, feed: Mapping[str, np.ndarray], size: int = SAMPLE_SIZE) -> Trace:
    """Call the Keras model once on ``feed`` (every probe, one batch) and reduce each layer's output."""
    tf, keras = import_tensorflow(), import_keras()
    model = loaded.keras_model
    if model is None:
        raise ModelError(f"{loaded.path}: not a Keras model: its layers cannot be traced")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    trace, calls = Trace(), dict[str, int]()

    def wrap(layer: Any, call: Any) -> Any:
        preprocessing = ".preprocessing." in type(layer).__module__

        def traced(*args: Any, **kwargs: Any) -> Any:
            out = call(*args, **kwargs)
            n = calls[layer.name] = calls.get(layer.name, 0) + 1
            name = layer.name if n == 1 else f"{layer.name}#{n}"
            arrays = [np.asarray(t) for t in tf.nest.flatten(out) if hasattr(t, "shape")]
            scale, sample = _reduce(arrays, size)
            trace.layers.append({"name": name, "class_name": type(layer).__name__, "digest": _digest(arrays),
                                 "scale": scale, "preprocessing": preprocessing})  # fmt: skip
            trace.samples.append(sample)
            trace.objects[name] = layer
            trace.input_specs[name] = _specs(args[0] if args else None, tf)
            return out

        return traced

    for layer in layers:
        layer.call = wrap(layer, layer.call)  # an instance attribute: the class's call is untouched
    try:
        model(loaded.feed(dict(feed)), training=False)
    except Exception as exc:  # any layer's own error: one line, the model named
        raise ModelError(f"{loaded.path}: tracing its layers failed: {one_line(exc)}") from None
    finally:
        for layer in layers:
            del layer.call  # the class's call again: the model is left as it was found
    _link(trace, _graph(model))
    for entry in trace.layers:
        entry["weights_digest"] = _weights_digest(trace.objects[entry["name"]])
    return trace


def _link(trace: Trace, graph: dict[str, list[str]] | None) -> None:
    """Each entry's ``inbound``: indices of the layers feeding it (by the graph), None without one."""
    index = {entry["name"]: i for i, entry in enumerate(trace.layers)}
    for entry in trace.layers:
        parents = None if graph is None else graph.get(entry["name"].split("#")[0])
        entry["inbound"] = None if parents is None else sorted(index[p] for p in parents if p in index)


def layer_op(trace: Trace, name: str) -> str | None:
    """The op behind a traced layer: the most telling op of its graph, traced on its inputs' specs."""
    tf = import_tensorflow()
    layer, specs = trace.objects.get(name), trace.input_specs.get(name)
    if layer is None or specs is None:
        return None
    try:
        graph = tf.function(lambda x: layer(x, training=False)).get_concrete_function(specs).graph
    except Exception:  # a layer that takes other dtypes or arguments: no op named
        return None
    found = [op.type for op in graph.get_operations()]
    return next((op for op in TELLING_OPS if op in found), next((o for o in found if o not in _PLUMBING), None))
