"""What the first layer to depart says about the cause (``verify --locate``): the 'preprocessing' cause,
and the evidence a located layer adds to the causes scored from the fingerprints.

- the first layer to depart is one whose own weights changed: the weights (``model_changed``), 1.0;
- it is a Keras preprocessing layer: the input as the model sees it changed, not the numerics
  after it (``preprocessing``, 0.9; the numerics causes halved);
- it runs an op oneDNN replaces (a convolution, a depthwise convolution, a matrix product, ...)
  and oneDNN's state differs: strong evidence for ``onednn`` (at least 0.95).

Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from collections.abc import Callable

from envprint.causes.base import NOT_A_SETTING, Cause, Family
from envprint.models import Explanation, LayerLocation

# The ops oneDNN has kernels for, which TF_ENABLE_ONEDNN_OPTS swaps for Eigen's (the names _tf.layers reports).
ONEDNN_OPS = frozenset({
    "Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3DBackpropInputV2", "MatMul",
    "BatchMatMulV2", "BatchMatMulV3", "Einsum", "FusedBatchNormV3", "AvgPool", "MaxPool",
})  # fmt: skip
ONEDNN_AT_LEAST = 0.95
PREPROCESSING_SCORE = 0.9
NUMERICS = ("onednn", "determinism_settings", "cpu_isa", "threads", "tensorflow_version", "keras_version",
            "numpy_version", "other_package", "cuda_stack", "device", "unknown")  # fmt: skip

# fmt: off
FAMILY = Family(
    causes={
        "preprocessing": Cause(
            "the input as the model's preprocessing layers make it", "semantic",
            "the located first layer, not a fingerprint difference (verify --locate)",
            ("the first layer to depart prepares the input: compare the preprocessing layer's configuration, "
             "vocabulary or statistics and the Keras version that runs it, before looking at numerics",),
            "known only once the layers are compared, not predicted from fingerprints", NOT_A_SETTING),
    },
)
# fmt: on

Make = Callable[[str, float, str], Explanation]


def where(location: LayerLocation) -> str:
    """The first layer to depart, as a reasoning names it: 'name (Class, op Op)'."""
    assert location.first is not None
    step = location.steps[location.first]
    op = location.ops.get(step.name)
    return f"{step.name} ({step.class_name}{f', op {op}' if op else ''})"


def _note(x: Explanation, words: str, score: float | None = None) -> Explanation:
    update: dict[str, object] = {"reasoning": f"{x.reasoning}; {words}"}
    if score is not None:
        update["score"] = round(min(max(score, 0.0), 1.0), 3)
    return x.model_copy(update=update)


def with_layers(found: dict[str, Explanation], location: LayerLocation | None, make: Make) -> None:
    """Add what the first layer to depart says to ``found`` (cause -> explanation), in place."""
    if location is None or location.first is None:
        return
    step, named = location.steps[location.first], where(location)
    if step.weights_changed:
        words = f"the first layer to depart, {named}, is one whose weights changed"
        x = found.get("model_changed")
        found["model_changed"] = _note(x, words, 1.0) if x else make("model_changed", 1.0, words)
    elif step.preprocessing:
        for cause in NUMERICS:
            if cause in found:
                found[cause] = _note(found[cause], f"but the first layer to depart is {named}, before any numerics",
                                     found[cause].score * 0.5)  # fmt: skip
        words = f"the first layer to depart is {named}, a preprocessing layer: the input as the model sees it changed"
        found["preprocessing"] = make("preprocessing", PREPROCESSING_SCORE, words)
    elif location.ops.get(step.name) in ONEDNN_OPS and "onednn" in found:
        x = found["onednn"]
        words = "that layer runs an op oneDNN replaces"
        found["onednn"] = _note(x, words, max(x.score, ONEDNN_AT_LEAST))
