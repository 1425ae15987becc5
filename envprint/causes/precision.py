"""Precisions a model computes in: each one's rounding unit, the tolerance that holds its own noise, and
the class of what the outputs did.

Owns: ``UNITS`` (the rounding unit of each magnitude class), ``UPPER`` (the largest change each
class holds), ``PRECISION_TOLERANCES`` (the default tolerance a record follows
for a model that computes below float32, and where each number came from), and ``precision_check``
(the report's ``precision``: the magnitude class, in codes and numbers; render/ words it), and the
``precision_tolerance`` remedy part the reordering causes (oneDNN, XLA and determinism) end with.
The README's 'tolerance and precision' page (docs/concepts/tolerance-and-precision.md) is this table.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from envprint.causes.base import DiffEntry, Family, Scoring
from envprint.models import ComputeDtype, ComputePrecision, Fingerprint, Magnitude, OutputComparison, PrecisionCheck

# fmt: off
# Magnitude classes, least first, with their unit: what one rounding step is worth at that
# precision, as a fraction of the output's scale (its largest |expected|). float32's unit
# roundoff is 2^-24; TF32 and float16 keep 10 mantissa bits (2^-11); bfloat16 keeps 7 (2^-8).
# An integer output moves in whole quantization steps (unit 1).
MAGNITUDES: tuple[Magnitude, ...] = ("identical", "float32_noise", "half", "bfloat16", "quantization_step", "beyond")
UNITS: dict[Magnitude, float] = {"float32_noise": 2.0**-24, "half": 2.0**-11, "bfloat16": 2.0**-8,
                                 "quantization_step": 1.0}
# The largest max |obtained - expected| / scale each class holds: a change is classed with the
# precision whose rounding unit it is nearest to. Measured here (x86-64 AVX2, TF 2.21, Keras 3;
# an MLP, a small CNN and an attention block; docs/concepts/tolerance-and-precision.md):
# float32 reduction-order noise (batch 8 -> 1, XLA, the JAX backend) reached 2^-20.7; a float16
# model's (batch, XLA) 2^-11.3; a bfloat16 model's (XLA, the JAX backend) 2^-7.0. Running a
# float32 model in float16 moved it 2^-10.5 .. 2^-11.3, in bfloat16 2^-6.7 .. 2^-8.8
# (python scripts/precision_noise.py).
UPPER: dict[Magnitude, float] = {"float32_noise": 2.0**-14, "half": 2.0**-9, "bfloat16": 2.0**-3,
                                 "quantization_step": 1.0}
# The magnitude class a compute precision's own rounding noise falls in.
CLASS_OF: dict[ComputeDtype, Magnitude] = {"float64": "float32_noise", "float32": "float32_noise",
                                           "tf32": "half", "float16": "half", "bfloat16": "bfloat16",
                                           "int8": "quantization_step", "int16": "quantization_step"}
# (rtol, atol as a fraction of the output's scale) by compute precision: the default tolerance a
# record saved from such a model follows (docs/concepts/tolerance-and-precision.md, how each was
# measured). bfloat16: 2^-5, four times the largest bfloat16 noise measured (2^-7.0); float16:
# about 2^-9, five times float16's (2^-11.3). TF32 is derived, not measured (no GPU here): it keeps
# float16's 10 mantissa bits in matmuls and convolutions. float32 and float64 have none here: the output dtype's own default applies
# (check.tolerance.DEFAULT_TOLERANCES). Integer kernels with integer outputs compare in steps.
PRECISION_TOLERANCES: dict[ComputeDtype, tuple[float, float]] = {
    "tf32": (2e-3, 2e-3),
    "float16": (2e-3, 2e-3),
    "bfloat16": (3.2e-2, 3.2e-2),
}
# fmt: on


def tf32_applies(host: Fingerprint) -> bool:
    """TensorFlow runs float32 matmuls and convolutions in TF32: allowed, on a GPU of compute capability 8.0+."""
    if host.tensorflow is None or not host.tensorflow.tensor_float_32:
        return False
    for d in host.devices.physical or []:
        major = (d.compute_capability or "").partition(".")[0]
        if d.device_type == "GPU" and major.isdigit() and int(major) >= 8:
            return True
    return False


def with_runtime(cp: ComputePrecision | None, host: Fingerprint) -> ComputePrecision | None:
    """The model's compute precision as ``host`` runs it: a float32 model computes in TF32 where that applies."""
    if cp is None or cp.compute != "float32" or not tf32_applies(host):
        return cp
    return cp.model_copy(update={"compute": "tf32", "source": "tensorflow_tf32"})


def default_precision(cp: ComputePrecision | None) -> ComputeDtype | None:
    """The precision a record's default tolerance follows: the model's, where it has a table row."""
    return cp.compute if cp is not None and cp.compute in PRECISION_TOLERANCES else None


def compute_of(fp: Fingerprint | None) -> ComputeDtype | None:
    """The compute precision the record holds, or None (not recorded, or read nowhere)."""
    cp = fp.model.compute_precision if fp is not None and fp.model is not None else None
    return cp.compute if cp is not None else None


def _error(o: OutputComparison) -> float | None:
    """max |obtained - expected| over the output's scale (a float output), or in steps (an integer one)."""
    if o.max_abs is None:
        return None
    if o.scale is not None:
        return o.max_abs / o.scale if o.scale > 0 else o.max_abs
    return o.max_abs


def magnitude(outputs: list[OutputComparison]) -> tuple[Magnitude, float | None]:
    """The smallest class that holds every output's change, and the largest error that set it."""
    if all(o.n_differ == 0 and not o.problem for o in outputs):
        return "identical", 0.0
    worst: Magnitude = "identical"
    largest: float | None = None
    for o in outputs:
        err = _error(o)
        nonfinite = o.nan_appeared + o.nan_vanished + o.inf_appeared + o.inf_vanished
        if o.problem or nonfinite or (o.n_differ and err is None):
            return "beyond", largest
        if not o.n_differ or err is None:
            continue
        largest = err if largest is None else max(largest, err)
        integer = (o.expected_dtype or "").startswith(("int", "uint"))
        classes: tuple[Magnitude, ...] = (
            ("float32_noise", "half", "bfloat16") if o.scale is not None else ("quantization_step",) if integer else ()
        )
        kind: Magnitude = next((k for k in classes if err <= UPPER[k]), "beyond")
        worst = max(worst, kind, key=MAGNITUDES.index)
    return worst, largest


def _tighter(outputs: list[OutputComparison], compute: ComputeDtype | None, exact: bool) -> list[str]:
    """Outputs whose tolerance is below what ``compute`` can hold (an exact verify asked for bits: not listed)."""
    floor = PRECISION_TOLERANCES.get(compute) if compute else None
    if floor is None or exact:
        return []
    rtol, atol_scale = floor
    slack = 1 - 1e-9  # a tolerance equal to the floor, after float rounding, is not tighter
    return [
        o.name
        for o in outputs
        if o.scale is not None
        and o.rtol is not None
        and o.atol is not None
        and (o.rtol < rtol * slack or o.atol < atol_scale * o.scale * slack)
    ]


def precision_check(outputs: list[OutputComparison], saved: Fingerprint, exact: bool = False) -> PrecisionCheck:
    """What the outputs did against the model's compute precision, and the tolerances it cannot hold."""
    compute = compute_of(saved)
    kind, error = magnitude(outputs)
    unit = UNITS.get(kind)
    own = CLASS_OF.get(compute) if compute else None
    floor = PRECISION_TOLERANCES.get(compute) if compute else None
    return PrecisionCheck(
        compute=compute,
        magnitude=kind,
        error=error,
        unit=unit,
        units=None if unit is None or error is None else error / unit,
        within_compute=own is not None
        and kind not in ("identical", "beyond")
        and MAGNITUDES.index(kind) <= MAGNITUDES.index(own),
        floor_rtol=floor[0] if floor else None,
        floor_atol_scale=floor[1] if floor else None,
        tighter=_tighter(outputs, compute, exact),
    )


def _tolerance_remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    """For rounding noise at a model's own precision below float32: the tolerance that holds it."""
    compute = compute_of(c.saved)
    row = PRECISION_TOLERANCES.get(compute) if compute is not None else None
    tol = c.saved.tolerance
    follows = tol is not None and tol.precision == compute and tol.rtol is None and tol.atol is None
    if row is None or c.observed != "reduction_order" or follows:
        return ""
    return (
        f"or accept {compute}'s own rounding with a tolerance that fits {compute} (rtol {row[0]:g}, atol {row[1]:g} "
        "x the output's largest |value|): envprint save --force records it as the default"
    )


# A family with no cause of its own: the remedy part that causes reordering a model's kernels share.
FAMILY = Family(causes={}, values={"precision_tolerance": _tolerance_remedy})
