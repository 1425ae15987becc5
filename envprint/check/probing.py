"""save's probes: the model loaded, its probes made or read, predicted, refused when they say nothing, and self-checked.

Owns: the probes and their recipe (``probe_inputs``: the user's file, checked and cast by
``probes.CAST_RULE``, or generated from the model's inputs), the refusal of probes or reference
outputs that hold no finite value (unless ``allow_nonfinite``), the warning when every probe gives
the same outputs, and the self-check (``self_check``: the probes predicted again as a deployment
host might, the noise floor recorded). ``load_and_probe`` runs them in save's order, the declared
seed applied before the load as verify does. Holds no TensorFlow code: the model is loaded and
predicted through ``_tf.loading``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint.check import compare
from envprint.errors import FingerprintError, ModelError, UsageError
from envprint.models import ProbeRecipe, SelfCheck, TensorSpec


def self_check(loaded: Any, probes: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> SelfCheck:
    """Predict the probes again in the ways a deployment host might, and record the noise floor."""
    again = loaded.predict(probes)
    one_by_one = loaded.predict(probes, batch_size=1)
    called = loaded.call(probes) if loaded.keras_model is not None else None
    deterministic = compare.bit_identical(reference, again)
    warnings = []
    if not deterministic:
        warnings.append(
            "outputs changed between two identical predictions: a random layer is active at inference "
            "(dropout or noise called with training=True, or an unseeded random op); verify cannot tell "
            "drift from noise until it is fixed"
        )
    return SelfCheck(
        repeat_max_abs=compare.max_abs_difference(reference, again),
        batch1_max_abs=compare.max_abs_difference(reference, one_by_one),
        call_max_abs=compare.max_abs_difference(reference, called) if called is not None else None,
        deterministic=deterministic,
        warnings=warnings,
    )


def probe_inputs(
    loaded: Any,
    probes_path: Path | None,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    notes: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], ProbeRecipe]:
    """The probes and their recipe: the user's file (checked, cast by ``probes.CAST_RULE``), or generated.

    What was taken from the file or cast is appended to ``notes``.
    """
    from envprint._tf.identity import integer_input_ranges
    from envprint._tf.input_kinds import input_hints
    from envprint.record import probe_kinds
    from envprint.record import probes as probe_mod

    if probes_path is not None:
        casts: dict[str, str] = {}
        arrays = probe_mod.load_probes(Path(probes_path), loaded.inputs, notes=notes, casts=casts)
        probe_mod.check_int_ranges(arrays, integer_input_ranges(loaded), str(probes_path))
        n = len(next(iter(arrays.values()))) if arrays else 0
        recipe = ProbeRecipe(
            source="file",
            num_probes=n,
            file=Path(probes_path).name,
            inputs=[TensorSpec(name=k, shape=list(v.shape), dtype=v.dtype.name) for k, v in arrays.items()],
            cast_rule=probe_mod.CAST_RULE,
            casts=casts,
        )
        return arrays, recipe
    shapes = dict(input_shapes or {})
    if "" in shapes:  # --input-shape D1,D2 without a name: the model's only input
        if len(loaded.inputs) != 1:
            names = ", ".join(s.name for s in loaded.inputs)
            raise UsageError(f"--input-shape needs NAME=D1,D2 for a model with several inputs ({names})")
        shapes[loaded.inputs[0].name] = shapes.pop("")
    arrays, raw = probe_kinds.generate_probes(
        loaded.inputs, num_probes=num_probes, seed=seed, input_shapes=shapes, hints=input_hints(loaded)
    )
    recipe = ProbeRecipe(
        source="generated",
        num_probes=num_probes,
        seed=seed,
        distribution=raw.get("distribution"),
        inputs=[TensorSpec(name=k, shape=list(v.shape), dtype=v.dtype.name) for k, v in arrays.items()],
        cast_rule=probe_mod.CAST_RULE,
    )
    return arrays, recipe


def _refuse_uninformative(
    model_path: Path,
    probes_path: Path | None,
    inputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray] | None,
    allow: bool,
) -> list[str]:
    """Refuse probes (``reference`` None) or reference outputs that hold no finite value; warnings if ``allow``."""
    from envprint.record.probes import uninformative

    bad = uninformative(inputs if reference is None else reference)
    if not bad:
        return []
    from envprint.render.words import nonfinite_words

    probes = reference is None
    error: type[FingerprintError] | type[ModelError] = FingerprintError if probes else ModelError
    text = nonfinite_words(str(probes_path or "generated probes") if probes else str(model_path), bad, probes=probes)
    if not allow:
        raise error(f"{text}; pass --allow-nonfinite (allow_nonfinite=True) to record them anyway")
    return [f"{text} (recorded anyway: --allow-nonfinite)"]


def _same_for_every_probe(reference: Mapping[str, np.ndarray]) -> list[str]:
    """A warning when every probe gave the same outputs: the record then tells little drift apart."""
    arrays = [np.asarray(a) for a in reference.values()]
    n = arrays[0].shape[0] if arrays and arrays[0].ndim else 0
    if n < 2 or not all(a.ndim and a.shape[0] == n and bool((a == a[:1]).all()) for a in arrays):
        return []
    from envprint.render.words import same_for_every_probe_words

    return [same_for_every_probe_words(n)]


def load_and_probe(
    model_path: Path,
    probes: str | Path | None,
    num_probes: int,
    probe_seed: int,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    fmt: str | None,
    signature: str | None,
    custom_objects: Mapping[str, Any] | None,
    safe_mode: bool,
    seed: int | None,
    strict: bool,
    allow_nonfinite: bool,
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray], ProbeRecipe, SelfCheck, list[str]]:
    """Load the model (its declared seed applied first), make and predict the probes, and self-check them."""
    from envprint._keras import set_random_seed
    from envprint._tf import loading
    from envprint.check.capture import declared_seed

    declared = seed if seed is not None else declared_seed()[0]
    if declared is not None:  # before the load, where Keras seeds random layers: verify does the same
        set_random_seed(declared)
    loaded = loading.load_model(
        model_path, fmt=fmt, custom_objects=dict(custom_objects or {}), safe_mode=safe_mode, signature=signature
    )
    notes: list[str] = []
    probes_path = Path(probes) if probes else None
    inputs, recipe = probe_inputs(loaded, probes_path, num_probes, probe_seed, input_shapes, notes)
    notes += _refuse_uninformative(model_path, probes_path, inputs, None, allow_nonfinite)
    reference = loaded.predict(inputs)
    notes += _refuse_uninformative(model_path, probes_path, inputs, reference, allow_nonfinite)
    notes += _same_for_every_probe(reference)
    check = self_check(loaded, inputs, reference)
    if strict and not check.deterministic:
        raise ModelError(f"{model_path}: {check.warnings[0]} (--strict)")
    return loaded, inputs, reference, recipe, check, notes
