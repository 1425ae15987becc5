"""The record's probes fitted to the model verify loaded, and what it answered judged against the reference.

Owns: the probes keyed by this model's input names and cast to its dtypes (``fit_probes``: a single
input by position whatever its name, casts by ``probes.CAST_RULE``), its outputs keyed by the
reference's names (``fit_outputs``), and the judgements of what came out: each output against its
reference under the tolerance, with a second prediction when the model may be random at inference
(``compare_with_reference``), the outputs against the model's compute precision (``precision_of``),
and the layers compared with a record's trace (``locate_layers``). ``Fed`` is what was fed and what
came out. Holds no TensorFlow code: the model is predicted through ``_tf.loading``'s LoadedModel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from envprint.check import compare, histogram
from envprint.check.options import VerifyOptions
from envprint.models import Fingerprint, LayerLocation, OutputComparison, PrecisionCheck, Tolerance


def fit_probes(
    probes: dict[str, np.ndarray], loaded: Any, where: str, by_position: dict[str, str], casts: dict[str, str]
) -> dict[str, np.ndarray] | None:
    """The probes keyed by this model's input names and cast to its dtypes, or None when they cannot be matched.

    A single input is matched by position whatever its name: formats rename inputs (a SavedModel
    or .tflite of the same weights), and there is only one way to feed one array. Casts follow the
    rule save applied (``probes.CAST_RULE``): a value that would change is a FingerprintError.
    """
    from envprint.record.probes import cast_to_inputs

    names = [s.name for s in loaded.inputs]
    if set(probes) == set(names):
        fitted = probes
    elif len(probes) == 1 and len(names) == 1:
        ((recorded, arr),) = probes.items()
        by_position[recorded] = names[0]
        fitted = {names[0]: arr}
    else:
        return None
    return cast_to_inputs(fitted, loaded.inputs, where, casts)


def fit_outputs(
    reference: Mapping[str, np.ndarray], obtained: dict[str, np.ndarray], by_position: dict[str, str]
) -> dict[str, np.ndarray]:
    """A single output is compared with the single reference output whatever its name (formats rename it)."""
    if set(obtained) != set(reference) and len(obtained) == len(reference) == 1:
        ((name, arr),) = obtained.items()
        (recorded,) = reference
        by_position[recorded] = name
        return {recorded: arr}
    return obtained


def may_be_random(saved: Fingerprint) -> bool:
    stochastic = saved.model is not None and bool(saved.model.stochastic_layers)
    return stochastic or saved.self_check is None or not saved.self_check.deterministic


@dataclass
class Fed:
    """The probes as fed to the model, and what came out (None when another model could not take them)."""

    feed: dict[str, np.ndarray] | None = None
    obtained: dict[str, np.ndarray] | None = None
    inputs_by_position: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs_by_position: dict[str, str] = dataclasses.field(default_factory=dict)
    casts: dict[str, str] = dataclasses.field(default_factory=dict)


def compare_with_reference(saved: Fingerprint, model: Any, fed: Fed, reference: dict[str, np.ndarray],
                           options: VerifyOptions) -> tuple[list[OutputComparison], list[str]]:  # fmt: skip
    """Each output against its reference under the tolerance, and the outputs a second prediction changed."""
    if fed.obtained is None:
        return [], []
    obtained = fed.obtained
    policy = options.tolerance or saved.tolerance or Tolerance()
    outputs = histogram.with_histograms(compare.compare_outputs(reference, obtained, policy), reference, obtained)
    # A second prediction can only disagree if something random runs at inference; a model that
    # was deterministic at save and has no random layers is not predicted twice.
    if not (options.check_stochastic and may_be_random(saved)):
        return outputs, []
    again = fit_outputs(reference, model.predict(fed.feed), {})
    return outputs, sorted(
        k for k in obtained if k not in again or not compare.bit_identical({k: obtained[k]}, {k: again[k]})
    )


def precision_of(saved: Fingerprint, outputs: list[OutputComparison], options: VerifyOptions) -> PrecisionCheck:
    """What the outputs did against the model's compute precision, and the tolerances tighter than it holds."""
    from envprint.causes.precision import precision_check

    return precision_check(outputs, saved, exact=(options.tolerance or saved.tolerance or Tolerance()).exact)


def locate_layers(saved: Fingerprint, samples: np.ndarray | None, model: Any, fed: Fed,
                  options: VerifyOptions) -> LayerLocation | None:  # fmt: skip
    """verify --locate, and any verify of a record with layers whose outputs differ: the layers compared.

    None when nothing was asked and the record has no trace: the report then says nothing of layers.
    """
    from envprint.check import locate

    budget = locate.budget(saved, options.tolerance)
    if saved.layer_trace is None or samples is None:
        return locate.not_traced("not_recorded", budget) if options.locate else None
    if fed.feed is None:
        return locate.not_traced("no_probes", budget)
    if model.keras_model is None:
        return locate.not_traced("not_keras", budget)
    return locate.locate(saved.layer_trace, samples, locate.record_trace(model, fed.feed), budget)
