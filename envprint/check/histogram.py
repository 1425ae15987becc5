"""The distribution of one output's per-element error, compact enough to keep in a report.

Owns: ``error_histogram(expected, obtained)`` -> ``ErrorHistogram`` (ULP and relative error in
fixed bins, plus a small strided sample of (expected, obtained) pairs), so that a saved JSON report
can be drawn later (``envprint report REPORT.json --html``) without the arrays it came from.
Pure: NumPy in, a model out. Must not import TensorFlow, Keras, or any plotting library.

The summary statistics (max ULP, max rel) stay in ``compare``; this only bins what it scans:
finite pairs of a floating dtype that has a ULP (float16, bfloat16, float32, float64), and counts
an integer output's largest difference in steps.
"""

from __future__ import annotations

import numpy as np

from envprint.check.compare import ulp_distance
from envprint.models import ErrorHistogram, OutputComparison

_ULP_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
_INTEGER_DTYPES = frozenset(f"{u}int{n}" for u in ("", "u") for n in (8, 16, 32, 64))
_CHUNK = 1 << 18
# ULP bins double: [0, 1) (bit-identical), [1, 2), [2, 4), ... [2**62, 2**63), where every distance
# (int64, saturated at 2**63 - 1) falls; a report keeps them up to the last bin that is not empty.
# Fixed edges let each chunk be counted on its own: no array of the whole output's distances.
_ULP_EDGES = np.array([0] + [2**k for k in range(64)], dtype=np.uint64)
# Relative error bins: four per decade from 1e-12 to 1e+3; smaller non-zero errors land in the first bin,
# larger in the last (a float32 ULP is ~1e-7 relative, so 1e-12 is below anything float32 can show).
_REL_EDGES = [10.0 ** (k / 4) for k in range(-48, 13)]
SAMPLE_SIZE = 256


def error_histogram(
    expected: np.ndarray, obtained: np.ndarray, sample_size: int = SAMPLE_SIZE
) -> ErrorHistogram | None:
    """The error distribution of one output, or None where it has none (not a float with a ULP, shapes differ)."""
    e, o = np.asarray(expected).reshape(-1), np.asarray(obtained).reshape(-1)
    if e.dtype != o.dtype or e.dtype.name not in _ULP_DTYPES or e.shape != o.shape:
        return None
    ulp_counts = np.zeros(len(_ULP_EDGES) - 1, dtype=np.int64)
    rel_counts = np.zeros(len(_REL_EDGES) - 1, dtype=np.int64)
    rel_zero = rel_skipped = 0
    for start in range(0, e.size, _CHUNK):
        ec, oc = e[start : start + _CHUNK], o[start : start + _CHUNK]
        x, y = ec.astype(np.float64), oc.astype(np.float64)
        finite = np.isfinite(x) & np.isfinite(y)
        ulp = ulp_distance(ec[finite], oc[finite]).astype(np.uint64)
        ulp_counts += np.bincount(np.searchsorted(_ULP_EDGES, ulp, side="right") - 1, minlength=len(ulp_counts))
        x, y = x[finite], y[finite]
        nonzero = x != 0
        rel_skipped += int(np.count_nonzero(~finite)) + int(np.count_nonzero(~nonzero))
        rel = np.abs(y[nonzero] - x[nonzero]) / np.abs(x[nonzero])
        rel_zero += int(np.count_nonzero(rel == 0))
        clipped = np.clip(rel[rel > 0], _REL_EDGES[0], _REL_EDGES[-1])
        rel_counts += np.histogram(clipped, bins=_REL_EDGES)[0]
    # Bin i holds edges[i] <= d < edges[i + 1]; kept up to the last bin that is not empty.
    last = int(np.flatnonzero(ulp_counts)[-1]) if ulp_counts.any() else 0

    # A strided sample for the scatter plot: evenly spread over the output, finite pairs only.
    idx: np.ndarray | list[int] = (
        np.unique(np.linspace(0, e.size - 1, min(sample_size, e.size)).astype(np.int64)) if e.size else []
    )
    se, so = e[idx].astype(np.float64), o[idx].astype(np.float64)
    keep = np.isfinite(se) & np.isfinite(so)
    return ErrorHistogram(
        ulp_edges=[int(e) for e in _ULP_EDGES[: last + 2]],
        ulp_counts=ulp_counts[: last + 1].tolist(),
        rel_edges=_REL_EDGES,
        rel_counts=rel_counts.tolist(),
        rel_zero=rel_zero,
        rel_skipped=rel_skipped,
        sample_expected=se[keep].tolist(),
        sample_obtained=so[keep].tolist(),
    )


def with_histograms(
    outputs: list[OutputComparison], expected: dict[str, np.ndarray], obtained: dict[str, np.ndarray]
) -> list[OutputComparison]:
    """``outputs`` with the error distribution of each floating output that differs element-wise.

    An integer output (a quantized TFLite model's int8 or uint8) has no ULP: its largest difference
    is counted in integer steps instead (``max_steps``; one step is one quantization step).
    """
    out = []
    for c in outputs:
        if c.problem is None and c.max_abs is not None and c.expected_dtype in _INTEGER_DTYPES:
            c = c.model_copy(update={"max_steps": int(c.max_abs)})
        hist = None
        # A bit-identical output has no error to draw: skip the ~20 passes over it (verify's common case).
        if c.status != "identical" and c.problem is None and c.name in expected and c.name in obtained:
            hist = error_histogram(expected[c.name], obtained[c.name])
        out.append(c.model_copy(update={"error_histogram": hist}) if hist is not None else c)
    return out
