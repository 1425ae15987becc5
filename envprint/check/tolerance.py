"""Tolerances: the default one (per output dtype, against the output's own scale, following the
model's compute precision) and those derived from measured drift (``save --tolerance-from``, a
verify report's; ``save --tolerance-from-variants``, the variants' drift through ``tolerance_for``).

Owns: ``DEFAULT_TOLERANCES`` (rtol and atol scale by dtype), ``default_tolerance`` and
``output_scale`` (an output's largest finite |value|, which the absolute term is relative to),
``effective_tolerance`` (what one output is compared under), and the rule that turns a measured
drift into a record's tolerance (margin x the largest relative error, never stricter than the
per-dtype defaults) with the refusals of a mismatch that is not drift. The rows of precisions below
float32 are ``causes.precision``'s.
Pure: NumPy in, numbers out. Must not import TensorFlow, Keras or any envprint module but
``models``, ``errors``, ``causes.precision`` and ``record.probes`` (``is_float``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envprint.causes.precision import PRECISION_TOLERANCES
from envprint.errors import UsageError
from envprint.models import ComputeDtype, OutputComparison, Report, Tolerance
from envprint.record.probes import is_float

_CHUNK = 1 << 18

# (rtol, atol scale) by dtype name. An element passes when
#     |obtained - expected| <= atol + rtol * |expected|,   atol = (atol scale) * max|expected|
# (numpy.testing.assert_allclose's rule). The absolute term is relative to the output's own
# scale, so the default does not depend on the output's units: a fixed atol of 1e-5 (torch's
# float32 default) passed a bfloat16-precision rerun of a small-logit MobileNetV2.
# float16/bfloat16/float64 rtol follow torch.testing.assert_close. float32's rtol is measured
# here (scripts/perturbations.py, 2-core x86-64, TF 2.21): harmless reduction-order changes
# reach max rel 4.6e-05 (oneDNN off), 7.5e-06 (batch 32 -> 1) and 8.1e-05 (XLA); torch's 1.3e-6
# would fail all three, while a float32 -> mixed_bfloat16 rerun (max rel 4.6e-02 .. 2.8e-01) must
# and does fail at 1e-4. A changed weight is caught by the weights digest, not by tolerance.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-7, 1e-9),
    "complex64": (1e-4, 1e-5),
    "complex128": (1e-7, 1e-9),
}


def default_tolerance(dtype: Any, scale: float = 1.0, precision: ComputeDtype | None = None) -> tuple[float, float]:
    """(rtol, atol) for a dtype and an output whose largest finite |value| is ``scale``.

    The table above; every other dtype (integers, bool, float8, ...) is exact. A floating output
    of a model that computes in ``precision`` (bfloat16, float16, TF32) gets that precision's row
    of ``causes.precision.PRECISION_TOLERANCES`` where it is looser: a float32 output computed in
    bfloat16 carries bfloat16's rounding.
    """
    name = np.dtype(dtype).name
    rtol, atol_scale = DEFAULT_TOLERANCES.get(name, (0.0, 0.0))
    floor = PRECISION_TOLERANCES.get(precision) if precision is not None else None
    if floor is not None and name in DEFAULT_TOLERANCES:
        rtol, atol_scale = max(rtol, floor[0]), max(atol_scale, floor[1])
    return rtol, atol_scale * scale


def effective_tolerance(dtype: Any, tolerance: Tolerance, scale: float) -> tuple[float, float]:
    """The (rtol, atol) an output is compared under: exact, or the given values over the defaults."""
    if tolerance.exact:
        return 0.0, 0.0
    rtol, atol = default_tolerance(dtype, scale if tolerance.atol is None else 1.0, tolerance.precision)
    return (rtol if tolerance.rtol is None else tolerance.rtol, atol if tolerance.atol is None else tolerance.atol)


def output_scale(e: np.ndarray) -> float:
    """Largest finite |value| of a floating array (chunked: no full-size temporaries), 1.0 if none."""
    if not is_float(e.dtype) and e.dtype.kind != "c":
        return 1.0
    flat, best = e.reshape(-1), 0.0
    for start in range(0, flat.size, _CHUNK):
        chunk = np.abs(flat[start : start + _CHUNK].astype(np.complex128 if e.dtype.kind == "c" else np.float64))
        finite = chunk[np.isfinite(chunk)]
        if finite.size:
            best = max(best, float(finite.max()))
    return best or 1.0


def tolerance_from_report(report: Report, margin: float, source: str) -> Tolerance:
    """The tolerance a record should hold after ``report`` measured this host's drift: margin x the drift.

    The drift of an output is the largest relative error it measured (``max_rel``, or the
    ``rtol_needed`` if larger): rtol = ``margin`` x the largest drift of any output, so each
    element that differed (with a nonzero expected value) passes by rtol alone, whatever atol
    covered in the report. A derived rtol is never stricter than a plain save: when it is at most
    every output's per-dtype default, the record keeps the defaults (rtol None); when it is above
    some, it is raised to the largest default. atol stays the per-dtype default (it covers the
    elements whose expected value is 0). A report whose mismatch is not drift (other weights, an
    edited record, randomness at inference, an output missing or reshaped, NaN where there was a
    number) says so instead: no tolerance should hide those.
    """
    if not margin >= 1:
        raise UsageError(f"--margin must be a number >= 1 (a factor on the measured drift), got {margin}")
    where = f"--tolerance-from {source}"
    ident = report.identity
    if ident.weights == "changed" or ident.sidecar_files_changed or report.random_at_inference:
        raise UsageError(
            f"{where}: that report's mismatch is not numeric drift (other weights, an edited record or randomness "
            "at inference); fix that first, a tolerance would only hide it"
        )
    return tolerance_for(report.outputs, margin, where, source)


def tolerance_for(outputs: list[OutputComparison], margin: float, where: str, source: str) -> Tolerance:
    """rtol = ``margin`` x the largest drift of ``outputs``, never stricter than their per-dtype defaults."""
    drift, defaults = 0.0, []
    for o in outputs:
        if o.status != "identical" and (o.problem or o.rtol_needed is None):
            why = (
                o.problem or "NaN or Inf appeared or vanished, a change where the reference is 0, or a non-float output"
            )
            raise UsageError(f"{where}: output {o.name!r} passes under no rtol ({why}); choose --rtol/--atol yourself")
        drift = max(drift, o.max_rel or 0.0, o.rtol_needed or 0.0)
        if o.expected_dtype:
            defaults.append(default_tolerance(o.expected_dtype)[0])
    needed = float(margin * drift)
    rtol: float | None
    if needed <= min(defaults, default=0.0):
        rtol = None  # the per-dtype defaults already pass margin x the drift
    else:
        rtol = max(needed, *defaults)
    return Tolerance(rtol=rtol, margin=margin, derived_from=source)
