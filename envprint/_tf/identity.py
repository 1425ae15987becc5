"""Say which model a loaded model is, independent of its file's bytes: weights digest, layers, signature.

Owns: ``model_identity`` (weights digest and counts, layer classes, stochastic layers, dtype
policy, compute precision, SavedModel fingerprint), the weights-digest schemes and their hashing (``_digest``, one
weight at a time and in place; ``keras_weights_digest`` for any Keras object;
``legacy_weights_digests`` to check envprint 0.1.0's records), and ``integer_input_ranges`` (the vocabulary of each input an
Embedding reads). TensorFlow and Keras are imported inside functions only, through
``envprint._tf`` (ruff TID253). Reads models through ``loading``; neither ``loading`` nor
``keras_checks`` may import this module, so the dependencies point one way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from envprint import formats
from envprint._tf import import_tensorflow
from envprint._tf.common import _one_line
from envprint._tf.loading import KerasModel, LoadedModel, keras_weights
from envprint._tf.precision import compute_precision

# Layers whose output is random in training mode (or always, when a custom call forces it).
STOCHASTIC_CLASSES = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "AlphaDropout",
        "GaussianNoise",
        "GaussianDropout",
        "RandAugment",
        "AugMix",
        "MixUp",
        "CutMix",
    }
)

# The weights digest of .keras, .h5, SavedModel and in-memory Keras models: each weight's dtype,
# shape and bytes, as a set (sorted by their own digests), without names. Names are not stable:
# Keras 3 calls one kernel 'sequential/dense/kernel' in a Sequential built in code or read from
# .h5 and 'dense/kernel' read from .keras; auto-generated layer names ('dense_3') depend on what
# the process built before; Keras 2, Keras 3 and SavedModel order the weights differently. The
# price: two equal-shaped weights swapped between layers keep the digest (the probes see it).
WEIGHTS_SCHEME = formats.TENSORS
# envprint 0.1.0's scheme, kept to check the records it wrote: name, dtype, shape, bytes, by name.
WEIGHTS_SCHEME_NAMED = "named-v1"
WEIGHTS_SCHEME_TFLITE = formats.TFLITE_CONSTANTS  # dtype, shape, bytes of constant tensors, sorted by content
_UNNAMED = (WEIGHTS_SCHEME, WEIGHTS_SCHEME_TFLITE)


def _keras_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)  # recursive, sub-layers of custom layers too
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_keras_layers(layer))
    return out


def _class_names(obj: Any) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def _is_stochastic(layer: Any) -> bool:
    names = _class_names(layer)
    return any(n in STOCHASTIC_CLASSES or n.startswith("Random") for n in names[:-1])  # [:-1]: not 'object'


def _fed_by(layer: Any) -> list[Any]:
    """The Keras tensors that feed ``layer`` in any call of the graph."""
    fed: list[Any] = []
    for node in getattr(layer, "_inbound_nodes", []) or []:
        tensors = getattr(node, "input_tensors", None)
        if tensors is None:
            continue
        fed.extend(tensors if isinstance(tensors, (list, tuple)) else [tensors])
    return fed


def integer_input_ranges(loaded: LoadedModel) -> dict[str, tuple[int, int]]:
    """Input name -> ``(0, input_dim)`` for each input that an Embedding reads directly.

    Only Keras formats carry the layer graph; an input that reaches its Embedding through
    other layers (a Reshape, a Lambda, a nested model) is not found and needs ``--probes``.
    An input read by several Embeddings gets the smallest vocabulary.
    """
    model = loaded.keras_model
    if model is None or not isinstance(loaded, KerasModel):
        return {}
    ranges: dict[str, tuple[int, int]] = {}
    embeddings = [layer for layer in _keras_layers(model) if "Embedding" in _class_names(layer)]
    for spec, tensor in zip(loaded.inputs, loaded._input_tensors, strict=True):
        dims = [int(e.input_dim) for e in embeddings if any(t is tensor for t in _fed_by(e))]
        if dims:
            ranges[spec.name] = (0, min(dims))
    return ranges


def _leaf_digest(name: str, arr: np.ndarray) -> str:
    """SHA-256 of one weight: name, dtype, shape, then its little-endian C-order bytes.

    The bytes are hashed in place, through a uint8 view, not copied out with ``tobytes()``:
    a 1 GB model would otherwise need a second gigabyte. The view works for every dtype a
    C-contiguous array can hold, bfloat16 and the other ml_dtypes included, whose buffer
    format ``memoryview`` refuses. The header is unchanged from the first release, quirks
    included (``ascontiguousarray`` gives a 0-d weight the shape ``1``): saved records carry
    these digests.
    """
    a = np.ascontiguousarray(arr)  # no copy when the weight is already C-ordered
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    leaf = hashlib.sha256(f"{name}\0{a.dtype.name}\0{','.join(map(str, a.shape))}\0".encode())
    # An object array holds pointers that no view may reinterpret; hash them as before.
    leaf.update(a.tobytes() if a.dtype.hasobject else a.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # ndarray is a buffer
    return leaf.hexdigest()


def _digest_leaves(leaves: Iterable[tuple[str, str]], scheme: str) -> str:
    """SHA-256 over (name, leaf digest) pairs: named weights (``named-v1``) in name order (a stable
    sort, so equal names keep the model's order); unnamed ones (``tensors-v2``, TFLite constants)
    in order of their own digests, so that neither names nor order count."""
    ordered = sorted(leaves, key=(lambda nl: nl[1]) if scheme in _UNNAMED else (lambda nl: nl[0]))
    h = hashlib.sha256(f"envprint-weights-{scheme}\n".encode())
    for name, leaf in ordered:
        h.update(f"{name}\0{leaf}\n".encode())
    return h.hexdigest()


def _digest(weights: Iterable[tuple[str, np.ndarray]], scheme: str) -> tuple[str, int, int]:
    """(digest, weight count, parameter count), hashing each weight as it is read.

    Only the leaf digests are kept, so peak memory is one weight (zero for a CPU variable
    NumPy can view), not a copy of the whole model. ``tensors-v2`` ignores the names given.
    """
    leaves = []
    count = 0
    for name, arr in weights:
        name = "" if scheme == WEIGHTS_SCHEME else name  # TFLite constants come unnamed already
        leaves.append((name, _leaf_digest(name, arr)))
        count += int(arr.size)
    return _digest_leaves(leaves, scheme), len(leaves), count


def weights_digest(weights: Iterable[tuple[str, np.ndarray]], scheme: str) -> tuple[str, int, int]:
    """(digest, weight count, parameter count) of named arrays under ``scheme`` (``tensors-v2``,
    ``named-v1``, ``tflite-constants-v1``): what a record stores. A seam for tests and tools that
    check digests against known values or compute what an older envprint recorded."""
    return _digest(weights, scheme)


def keras_weights_digest(model: Any) -> str:
    """The weights digest (``tensors-v2``) of a Keras model object, however it was built: Sequential,
    functional or subclassed, in code, from any file, trained in this process. Equal to the
    ``weights_digest`` that ``model_identity`` records for a file holding the same weights."""
    return _digest(keras_weights(model), WEIGHTS_SCHEME)[0]


def _named_v1_variants(names: list[str], model_name: str | None) -> list[list[str]]:
    """The weight names a 0.1.0 record may have hashed for these weights.

    0.1.0 hashed Keras 3 weight paths, which carry the model's name or not depending on how the
    model was built ('sequential/dense/kernel' in code and from .h5, 'dense/kernel' from .keras):
    the names as read, without the model-name prefix, and with it.
    """
    variants = [names]
    if model_name:
        prefix = f"{model_name}/"
        variants.append([n.removeprefix(prefix) for n in names])
        variants.append([n if n.startswith(prefix) else prefix + n for n in names])
    unique: list[list[str]] = []
    for v in variants:
        if v not in unique:
            unique.append(v)
    return unique


def legacy_weights_digests(loaded: LoadedModel, scheme: str | None) -> list[str]:
    """Digests of ``loaded``'s weights under an old scheme, to check a record that used it.

    For ``named-v1`` (envprint 0.1.0), one digest per naming the record may have used (see
    ``_named_v1_variants``): any of them equal to the record's means the same weights. Other
    schemes have no legacy form: an empty list.
    """
    if scheme != WEIGHTS_SCHEME_NAMED:
        return []
    names = [name for name, _ in loaded._weights()]  # views, not copies: cheap
    variants = _named_v1_variants(names, getattr(loaded.keras_model, "name", None))
    return [
        _digest(((name, arr) for name, (_, arr) in zip(variant, loaded._weights(), strict=True)), scheme)[0]
        for variant in variants
    ]


_FINGERPRINT_FIELDS = (
    "saved_model_checksum",
    "graph_def_program_hash",
    "signature_def_hash",
    "saved_object_graph_hash",
    "checkpoint_hash",
)


def _saved_model_fingerprint(path: Path) -> tuple[dict[str, int] | None, str | None]:
    tf = import_tensorflow()
    read = getattr(getattr(tf.saved_model, "experimental", None), "read_fingerprint", None)
    if read is None:
        return None, f"tf.saved_model.experimental.read_fingerprint is not in TensorFlow {tf.__version__}"
    try:
        fp = read(str(path))
    except Exception as exc:  # fingerprint.pb is missing from SavedModels written before TF 2.12
        return None, f"{type(exc).__name__}: {_one_line(exc)}"
    out = {f: int(getattr(fp, f)) for f in _FINGERPRINT_FIELDS if getattr(fp, f, None) is not None}
    producer = getattr(getattr(fp, "version", None), "producer", None)
    if producer is not None:
        out["producer"] = int(producer)
    return out, None


def model_identity(loaded: LoadedModel) -> dict[str, Any]:
    """What the model is, independent of the file's bytes: weights digest, layers, signature.

    A field that cannot be read for this format is None, with the reason in ``unavailable``.
    ``weights_digest`` is equal across .keras, .h5, SavedModel and in-memory copies of the same
    weights however the model was built (scheme ``tensors-v2``); TFLite constants are transposed and fused by the converter, so a
    .tflite digest (scheme ``tflite-constants-v1``) compares only with other .tflite files.
    """
    unavailable: dict[str, str] = {}
    scheme = formats.get(loaded.format).digest_scheme
    digest: str | None = None
    weights_count: int | None = None
    parameter_count: int | None = None
    try:
        digest, weights_count, parameter_count = _digest(loaded._weights(), scheme)
    except Exception as exc:
        unavailable["weights_digest"] = f"{type(exc).__name__}: {_one_line(exc)}"
    ident: dict[str, Any] = {
        "format": loaded.format,
        "runtime": loaded.runtime,
        "signature": loaded.signature,
        "weights_digest": digest,
        "weights_digest_scheme": scheme,
        "weights_count": weights_count,
        "parameter_count": parameter_count,
        "layer_classes": None,
        "stochastic_layers": None,
        "dtype_policy": None,
        "saved_model_fingerprint": None,
        "inputs": [s.as_dict() for s in loaded.inputs],
        "outputs": [s.as_dict() for s in loaded.outputs],
        "unavailable": unavailable,
    }
    model = loaded.keras_model
    layers = _keras_layers(model) if model is not None else None
    ident["compute_precision"], reason = compute_precision(loaded, layers)
    if reason:
        unavailable["compute_precision"] = reason
    if model is not None and layers is not None:
        ident["layer_classes"] = sorted({type(layer).__name__ for layer in layers})
        ident["stochastic_layers"] = sorted(
            ({"name": layer.name, "class_name": type(layer).__name__} for layer in layers if _is_stochastic(layer)),
            key=lambda d: (d["name"], d["class_name"]),
        )
        policy = getattr(model, "dtype_policy", None)
        ident["dtype_policy"] = getattr(policy, "name", None) if policy is not None else None
        if ident["dtype_policy"] is None:
            unavailable["dtype_policy"] = "the model has no readable dtype_policy"
    else:
        why = f"a {formats.get(loaded.format).label} carries no Keras layer graph"
        unavailable.update(layer_classes=why, stochastic_layers=why, dtype_policy=why)
    if loaded.format == "savedmodel":
        ident["saved_model_fingerprint"], reason = _saved_model_fingerprint(loaded.path)
        if reason:
            unavailable["saved_model_fingerprint"] = reason
    else:
        unavailable["saved_model_fingerprint"] = "not a SavedModel"
    flavor = getattr(loaded, "flavor", None)  # a Keras model's (KerasModel.flavor): which Keras runs it
    ident["keras_flavor"] = flavor() if model is not None and flavor is not None else None
    return ident
