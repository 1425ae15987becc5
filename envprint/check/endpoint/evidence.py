"""The numbers behind ``transport_precision``: is the error that of a decimal printer, or of a widening?

A JSON printer that keeps k significant digits turns each value x into round_k(x): the obtained
value is then *exactly* the reference rounded to k digits (and parsed back into the dtype), for
every element. Arithmetic noise (another TensorFlow build, another summation order) moves values
by a few units in the last place, which almost never lands on round_k(x) for a k below the
dtype's round-trip digits (9 for float32, 17 for float64). ``rounded_digits`` looks for the
smallest such k; ``widened`` for float64 answers that hold exactly float32 values.
"""

from __future__ import annotations

import numpy as np

# Digits that round-trip each float dtype: rounding to these or more is no loss.
ROUND_TRIP = {"float16": 5, "float32": 9, "float64": 17}
MIN_DIFFERING = 3  # fewer differing elements are no pattern
SAMPLE = 4096  # elements examined, strided
AGREE = 0.99  # share of the sampled elements that must equal the rounded reference


def _round(values: np.ndarray, digits: int) -> np.ndarray:
    """Each value rounded to ``digits`` significant decimal digits (as ``f"{v:.{digits - 1}e}"`` would print it).

    Vectorised in float64: off from the decimal by at most an ulp of a double, which the cast back to
    float32 or float16 absorbs (and the agreement threshold the rare float64 tie).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
        scale = np.power(10.0, digits - 1 - np.where(np.isfinite(exponent), exponent, 0))
        return np.where(values == 0, 0.0, np.round(values * scale) / scale)


def rounded_digits(expected: np.ndarray, obtained: np.ndarray) -> int | None:
    """The smallest k below the dtype's round-trip digits with obtained == round_k(expected), else None."""
    if expected.shape != obtained.shape or expected.dtype.kind != "f" or obtained.dtype.kind != "f":
        return None
    e = expected.astype(np.float64).ravel()
    o = obtained.astype(np.float64).ravel()
    finite = np.isfinite(e) & np.isfinite(o)
    e, o = e[finite], o[finite]
    if np.count_nonzero(e != o) < MIN_DIFFERING:
        return None
    step = max(1, e.size // SAMPLE)
    e, o = e[::step], o[::step]
    limit = ROUND_TRIP.get(obtained.dtype.name, 17)
    for k in range(1, limit):
        back = _round(e, k).astype(obtained.dtype).astype(np.float64)
        if np.count_nonzero(back == o) >= AGREE * e.size:
            return k
    return None


def widened(expected: np.ndarray, obtained: np.ndarray) -> bool:
    """float64 obtained for a float32 reference, every finite value exactly a float32 (widened in transit)."""
    if expected.dtype != np.float32 or obtained.dtype != np.float64 or expected.shape != obtained.shape:
        return False
    o = obtained[np.isfinite(obtained)]
    return bool(o.size) and bool(np.all(o.astype(np.float32).astype(np.float64) == o))


def transport_evidence(
    reference: dict[str, np.ndarray], obtained: dict[str, np.ndarray]
) -> tuple[dict[str, int], list[str]]:
    """({output: k} for outputs rounded to k significant digits, [outputs widened to float64])."""
    digits, wide = {}, []
    for name, expected in reference.items():
        got = obtained.get(name)
        if got is None:
            continue
        if widened(expected, got):
            wide.append(name)
            got = got.astype(np.float32)
        k = rounded_digits(expected, got)
        if k is not None:
            digits[name] = k
    return digits, sorted(wide)
