"""The default tolerance: per output dtype, and measured against the output's own scale.

Owns: ``DEFAULT_TOLERANCES`` (rtol and atol scale by dtype), ``default_tolerance`` and
``output_scale`` (an output's largest finite |value|, which the absolute term is relative to),
``effective_tolerance`` (what one output is compared under). The rows of precisions below
float32 are ``causes.precision``'s.
Pure: NumPy in, numbers out. Must not import TensorFlow, Keras or any envprint module but
``models``, ``causes.precision`` and ``record.probes`` (``is_float``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envprint.causes.precision import PRECISION_TOLERANCES
from envprint.models import ComputeDtype, Tolerance
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
