"""save(): record a model's identity, probes, reference predictions and environment beside it.

Owns: the order of the save — refuse to overwrite before any work, load, probe, self-check,
capture, then publish the whole record at once (``store.publish_directory``). Composes
``_tf.loading``, ``probes``, ``digests``, ``capture`` and ``store``; holds no TensorFlow code.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import digests, store
from .errors import FingerprintError, ModelError, UsageError
from .models import (
    ArrayFile,
    Fingerprint,
    ModelIdentity,
    ProbeRecipe,
    SelfCheck,
    TensorSpec,
    Tolerance,
)

DEFAULT_NUM_PROBES = 8
DEFAULT_PROBE_SEED = 0


@dataclass
class SaveResult:
    sidecar: Path
    fingerprint: Fingerprint
    warnings: list[str] = field(default_factory=list)


def _max_abs(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            out[name] = float("inf")
            continue
        if x.dtype.kind not in "fc":
            out[name] = 0.0 if np.array_equal(x, y) else float("inf")
            continue
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        both_nan = np.isnan(x) & np.isnan(y)
        diff[both_nan] = 0.0
        out[name] = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
    return out


def bit_identical(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        np.asarray(a[k]).dtype == np.asarray(b[k]).dtype
        and np.asarray(a[k]).shape == np.asarray(b[k]).shape
        and np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes()
        for k in a
    )


def self_check(loaded: Any, probes: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> SelfCheck:
    """Predict the probes again in the ways a deployment host might, and record the noise floor."""
    again = loaded.predict(probes)
    one_by_one = loaded.predict(probes, batch_size=1)
    called = loaded.call(probes) if loaded.keras_model is not None else None
    deterministic = bit_identical(reference, again)
    warnings = []
    if not deterministic:
        warnings.append(
            "outputs changed between two identical predictions: a random layer is active at inference "
            "(dropout or noise called with training=True, or an unseeded random op); verify cannot tell "
            "drift from noise until it is fixed"
        )
    return SelfCheck(
        repeat_max_abs=_max_abs(reference, again),
        batch1_max_abs=_max_abs(reference, one_by_one),
        call_max_abs=_max_abs(reference, called) if called is not None else None,
        deterministic=deterministic,
        warnings=warnings,
    )


def _specs(items: Sequence[Mapping[str, Any]]) -> list[TensorSpec]:
    return [TensorSpec(name=i["name"], shape=list(i["shape"]), dtype=i["dtype"]) for i in items]


def identity_record(ident: Mapping[str, Any], model_path: Path, files: dict[str, str]) -> ModelIdentity:
    stochastic = [f"{s['name']} ({s['class_name']})" for s in ident.get("stochastic_layers") or []]
    return ModelIdentity(
        format=ident["format"],
        name=model_path.name,
        files=files,
        weights_digest=ident.get("weights_digest"),
        weights_digest_scheme=ident.get("weights_digest_scheme"),
        saved_model_fingerprint=ident.get("saved_model_fingerprint"),
        signature=ident.get("signature"),
        inputs=_specs(ident["inputs"]),
        outputs=_specs(ident["outputs"]),
        parameter_count=ident.get("parameter_count"),
        layer_classes=ident.get("layer_classes") or [],
        stochastic_layers=stochastic,
        dtype_policy=ident.get("dtype_policy"),
        unavailable=dict(ident.get("unavailable") or {}),
    )


def _array_file(directory: Path, name: str, arrays: Mapping[str, np.ndarray]) -> ArrayFile:
    from .probes import save_arrays

    path = directory / name
    save_arrays(path, dict(arrays))
    return ArrayFile(file=name, sha256=digests.sha256_file(path), arrays={k: list(v.shape) for k, v in arrays.items()})


def probe_inputs(
    loaded: Any,
    probes_path: Path | None,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
) -> tuple[dict[str, np.ndarray], ProbeRecipe]:
    from . import probes as probe_mod
    from ._tf import loading

    if probes_path is not None:
        arrays = probe_mod.load_probes(Path(probes_path), loaded.inputs)
        n = len(next(iter(arrays.values()))) if arrays else 0
        recipe = ProbeRecipe(
            source="file",
            num_probes=n,
            file=Path(probes_path).name,
            inputs=[TensorSpec(name=k, shape=list(v.shape), dtype=v.dtype.name) for k, v in arrays.items()],
        )
        return arrays, recipe
    shapes = dict(input_shapes or {})
    if "" in shapes:  # --input-shape D1,D2 without a name: the model's only input
        if len(loaded.inputs) != 1:
            names = ", ".join(s.name for s in loaded.inputs)
            raise UsageError(f"--input-shape needs NAME=D1,D2 for a model with several inputs ({names})")
        shapes[loaded.inputs[0].name] = shapes.pop("")
    arrays, raw = probe_mod.generate_probes(
        loaded.inputs,
        num_probes=num_probes,
        seed=seed,
        input_shapes=shapes,
        int_ranges=loading.integer_input_ranges(loaded),
    )
    recipe = ProbeRecipe(
        source="generated",
        num_probes=num_probes,
        seed=seed,
        distribution=raw.get("distribution"),
        inputs=[TensorSpec(name=k, shape=list(v.shape), dtype=v.dtype.name) for k, v in arrays.items()],
    )
    return arrays, recipe


def save(
    model: str | Path,
    *,
    out: str | Path | None = None,
    probes: str | Path | None = None,
    num_probes: int = DEFAULT_NUM_PROBES,
    probe_seed: int = DEFAULT_PROBE_SEED,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    seed: int | None = None,
    tolerance: Tolerance | None = None,
    force: bool = False,
    strict: bool = False,
) -> SaveResult:
    """Write the record of ``model`` into its sidecar (or ``out``) and return where it went.

    Raises FingerprintError when a record exists and ``force`` is False (before any work),
    ModelError when the model cannot be loaded or predict, or when ``strict`` and the model's
    outputs change between identical calls.
    """
    from ._tf import loading
    from .capture import capture

    model_path = Path(model)
    target = Path(out) if out is not None else store.default_sidecar(model_path)
    if target.exists() and not force:
        raise FingerprintError(f"{target}: a fingerprint already exists; pass --force to replace it")
    if num_probes < 1:
        raise ModelError(f"--num-probes must be at least 1, got {num_probes}")

    loaded = loading.load_model(
        model_path, fmt=fmt, custom_objects=dict(custom_objects or {}), safe_mode=safe_mode, signature=signature
    )
    inputs, recipe = probe_inputs(loaded, Path(probes) if probes else None, num_probes, probe_seed, input_shapes)
    reference = loaded.predict(inputs)
    check = self_check(loaded, inputs, reference)
    if strict and not check.deterministic:
        raise ModelError(f"{model_path}: {check.warnings[0]} (--strict)")

    files = digests.tree_digests(model_path, exclude=store.sidecar_exclusions(model_path, target))
    identity = identity_record(loading.model_identity(loaded), model_path, files)
    warnings = list(check.warnings)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = store.make_staging_dir(target)
    try:
        probe_file = _array_file(staging, store.PROBES_FILE, inputs)
        reference_file = _array_file(staging, store.REFERENCE_FILE, reference)
        fp = capture(seed=seed).model_copy(
            update={
                "model": identity,
                "probes": recipe,
                "probe_arrays": probe_file,
                "reference_arrays": reference_file,
                "self_check": check,
                "tolerance": tolerance or Tolerance(),
            }
        )
        fp = Fingerprint.model_validate(fp.model_dump())  # model_copy does not validate
        store.write_fingerprint(staging / store.FINGERPRINT_FILE, fp)
        store.publish_directory(staging, target, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SaveResult(sidecar=target, fingerprint=fp, warnings=warnings)
