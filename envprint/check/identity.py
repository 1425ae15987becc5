"""Whether the model verify loaded is the model its record describes: weights digest, inputs,
outputs, parameter count and layer classes, compared where both sides could read them.

Owns ``identity_check`` (the report's IdentityCheck) and ``model_differences``; holds no
TensorFlow code (``_tf.identity`` reads the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envprint import formats
from envprint.models import IdentityCheck, ModelDifference, ModelIdentity


def _spec_text(spec: Any) -> str:
    shape = ", ".join("None" if d is None else str(d) for d in spec.shape)
    return f"{spec.name} ({shape}{',' if len(spec.shape) == 1 else ''}) {spec.dtype}"


def _same_interface(saved: list[Any], now: list[Any]) -> bool:
    """Same number of tensors with the same shapes and dtypes, in order; names and the batch dimension aside
    (formats rename tensors, and a converter may fix the batch at 1)."""
    return len(saved) == len(now) and all(
        list(a.shape)[1:] == list(b.shape)[1:] and len(a.shape) == len(b.shape) and a.dtype == b.dtype
        for a, b in zip(saved, now, strict=True)
    )


def model_differences(
    saved: ModelIdentity, loaded: Any, ident: Mapping[str, Any]
) -> tuple[list[ModelDifference], bool]:
    """What differs between the fingerprinted model and ``loaded``, and whether that makes it another model.

    Names of inputs and outputs are listed when they differ but prove nothing on their own (a
    SavedModel or .tflite renames them); a different number, shape or dtype of inputs or outputs,
    parameter count or set of layer classes does. Each is compared only where both sides could read it.
    """
    out: list[ModelDifference] = []
    other = False
    if saved.format != loaded.format:  # the same model may be saved in several formats: not another model
        out.append(ModelDifference(field="format", saved=saved.format, current=loaded.format))
    for field, recorded, now in (("inputs", saved.inputs, loaded.inputs), ("outputs", saved.outputs, loaded.outputs)):
        a, b = [_spec_text(x) for x in recorded], [_spec_text(x) for x in now]
        if a != b:
            out.append(ModelDifference(field=field, saved=a, current=b))
            other = other or not _same_interface(recorded, now)
    count = ident.get("parameter_count")
    comparable = formats.get(saved.format).counts_parameters and formats.get(loaded.format).counts_parameters
    if comparable and None not in (saved.parameter_count, count):
        if saved.parameter_count != count:
            out.append(ModelDifference(field="parameter_count", saved=saved.parameter_count, current=count))
            other = True
    classes = ident.get("layer_classes")
    if saved.layer_classes and classes and sorted(saved.layer_classes) != sorted(classes):
        out.append(ModelDifference(field="layer_classes", saved=sorted(saved.layer_classes), current=sorted(classes)))
        other = True
    return out, other


def _weights_verdict(saved: ModelIdentity, ident: Mapping[str, Any], legacy: list[str]) -> str:
    """'same', 'changed' or 'unknown': the record's weights digest against this model's.

    A record written by envprint 0.1.0 (scheme ``named-v1``, weight names included) is checked
    against this model's weights hashed the old way, under each naming 0.1.0 may have used.
    """
    scheme = saved.weights_digest_scheme
    if saved.weights_digest is None or ident.get("weights_digest") is None:
        return "unknown"
    if scheme == ident.get("weights_digest_scheme"):
        return "same" if ident["weights_digest"] == saved.weights_digest else "changed"
    if legacy:
        return "same" if saved.weights_digest in legacy else "changed"
    return "unknown"


def identity_check(
    saved: ModelIdentity,
    model: Any,
    model_path: Path | None,
    file_changes: tuple[list[str], list[str], list[str]],
    sidecar_changed: list[str],
) -> IdentityCheck:
    """Whether this is the model that was saved, settled before any probe is fed: another model is
    "model changed", whatever its inputs are called. Byte-identical files hold identical weights: the
    weights digest is needed only when the files changed (rewritten, or another model) or the model
    came from memory."""
    from envprint._tf.identity import legacy_weights_digests, model_identity

    files_changed, files_missing, files_added = file_changes
    differences: list[ModelDifference] = []
    ident: dict[str, Any] = {}
    if model_path is not None and not (files_changed or files_missing or files_added):
        weights = "same" if saved.weights_digest is not None else "unknown"
    else:
        ident = model_identity(model)
        legacy = legacy_weights_digests(model, saved.weights_digest_scheme)
        weights = _weights_verdict(saved, ident, legacy)
        differences, other_model = model_differences(saved, model, ident)
        if weights == "unknown" and other_model:
            weights = "changed"
    return IdentityCheck(
        weights=weights,
        differences=differences,
        model_name=model_path.name if model_path is not None else None,
        weights_digest_scheme_saved=saved.weights_digest_scheme,
        weights_digest_scheme_now=ident.get("weights_digest_scheme", saved.weights_digest_scheme),
        files_changed=files_changed,
        files_missing=files_missing,
        files_added=files_added,
        sidecar_files_changed=sidecar_changed,
    )
