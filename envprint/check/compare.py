"""Compare the outputs a model gives now (*obtained*) with the saved reference (*expected*).

Owns: ULP distance, the element-wise comparison that turns two arrays into an
``OutputComparison`` (``render`` words it); the default tolerances are ``check.tolerance``'s.
Pure: NumPy (and ml_dtypes when importable, for bfloat16) in, models out. Must not import
TensorFlow, Keras or any envprint module but ``models``, ``errors``, ``check.tolerance`` and
``record.probes`` (for ``is_float``, the one floating-dtype test, which the probes' cast rule shares).

Semantics, as numpy.testing.assert_allclose and pytest-regressions have them:
- keys, then dtype, then shape, then values; a new, missing, retyped or reshaped output is a
  mismatch with a ``problem``, never an exception;
- an element is within tolerance iff |obtained - expected| <= atol + rtol * |expected|; an
  infinity matches only the same infinity; NaN matches NaN in the same place whatever its sign
  bit or payload (x86 and ARM make different default NaNs), NaN in one place only does not;
- identical means every element bit-identical (NaN aside, as above): -0.0 vs 0.0 is a
  difference (``n_differ``) but 0 apart in value and in ULP, so it is within any tolerance but
  an exact one; exact (and rtol == atol == 0) puts every bit difference out of tolerance;
- statistics cover pairs where both values are finite; relative error skips expected == 0
  (an epsilon would invent huge ratios), so ``max_rel`` is None when no such pair differs.
Arrays are scanned in chunks of ``_CHUNK`` elements: peak extra memory is a few float64
chunks, whatever the output size (plus one copy of an input that is not C-contiguous).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envprint.check.tolerance import (  # noqa: F401  (DEFAULT_TOLERANCES and default_tolerance: re-exported)
    DEFAULT_TOLERANCES,
    default_tolerance,
    effective_tolerance,
    output_scale,
)
from envprint.models import NONFINITE, OutputComparison, Tolerance, WorstElement
from envprint.record.probes import is_float

try:  # registers bfloat16 with NumPy; without it no bfloat16 array can exist anyway
    import ml_dtypes  # noqa: F401
except ImportError:  # pragma: no cover
    pass

_ULP_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
_INTS = {2: np.int16, 4: np.int32, 8: np.int64}
_UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_CHUNK = 1 << 18


def _native(x: np.ndarray) -> np.ndarray:
    return np.require(x, dtype=x.dtype.newbyteorder("="), requirements="C")


def _ordered(x: np.ndarray) -> np.ndarray:
    """Map float bit patterns to int64 that sort as the floats do: -0.0 and +0.0 both map to 0."""
    signed = _INTS[x.dtype.itemsize]
    i = _native(x).view(signed).astype(np.int64)
    # A negative float is sign bit + magnitude m; as a signed int that is MIN + m. Map it to -m.
    return np.where(i < 0, np.iinfo(signed).min - i, i)


def ulp_distance(expected: np.ndarray, obtained: np.ndarray) -> np.ndarray:
    """Units in the last place between two float arrays of one dtype, as int64 (NaN: caller's job)."""
    e, o = np.asarray(expected), np.asarray(obtained)
    if e.dtype != o.dtype or e.dtype.name not in _ULP_DTYPES:
        raise TypeError(f"ulp_distance: need two arrays of one of {sorted(_ULP_DTYPES)}, got {e.dtype} and {o.dtype}")
    a, b = _ordered(e), _ordered(o)
    # float64 from -max to +max is more than int64 holds: subtract in uint64, where larger - smaller
    # cannot wrap (the true distance is below 2**64), then saturate at int64's max.
    d = np.maximum(a, b).view(np.uint64) - np.minimum(a, b).view(np.uint64)
    return np.minimum(d, np.uint64(np.iinfo(np.int64).max)).astype(np.int64)


def _bits_differ(e: np.ndarray, o: np.ndarray) -> np.ndarray:
    size = e.dtype.itemsize
    if size in _UINTS:
        return e.view(_UINTS[size]) != o.view(_UINTS[size])
    return (e.view(np.uint8).reshape(-1, size) != o.view(np.uint8).reshape(-1, size)).any(axis=1)


@dataclass
class _Scan:
    n_differ: int = 0
    n_oot: int = 0
    n_finite: int = 0
    sum_abs: float = 0.0
    max_abs: float | None = None
    max_rel: float | None = None
    max_ulp: int | None = None
    nonfinite: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NONFINITE, 0))
    rtol_needed: float | None = 0.0  # None: no rtol passes (a difference where expected is 0, or non-finite)
    atol_needed: float | None = 0.0  # None: no atol passes (non-finite values differ)
    worst: list[tuple[float, int]] = field(default_factory=list)  # (priority, flat index)


def _top(current: float | int | None, values: np.ndarray) -> Any:
    if values.size == 0:
        return current
    m = values.max().item()
    return m if current is None else max(current, m)


def _scan_chunk(s: _Scan, e: np.ndarray, o: np.ndarray, start: int, rtol: float, atol: float, max_worst: int) -> None:
    if e.dtype.kind in "OSUV" and not is_float(e.dtype):  # strings, objects, records: equality only
        oot = differ = np.asarray(e != o, dtype=bool)
        priority = np.zeros(e.size)
    else:
        work = np.complex128 if e.dtype.kind == "c" else np.float64
        x, y = e.astype(work), o.astype(work)
        nan_x, nan_y = np.isnan(x), np.isnan(y)
        differ = _bits_differ(e, o) & ~(nan_x & nan_y)
        finite = np.isfinite(x) & np.isfinite(y)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(y - x)
            # inf <= atol + rtol * inf would hold: a non-finite pair is close only when equal.
            close = (x == y) | (nan_x & nan_y) | (finite & (diff <= atol + rtol * np.abs(x)))
        oot = differ if rtol == 0 and atol == 0 else ~close
        neq = (x != y) & ~(nan_x & nan_y)  # complex inf+nanj is NaN too: the same NaN in both is no change
        s.nonfinite["nan_appeared"] += int(np.count_nonzero(nan_y & ~nan_x))
        s.nonfinite["nan_vanished"] += int(np.count_nonzero(nan_x & ~nan_y))
        s.nonfinite["inf_appeared"] += int(np.count_nonzero(np.isinf(y) & neq))
        s.nonfinite["inf_vanished"] += int(np.count_nonzero(np.isinf(x) & neq))
        d, ax = diff[finite], np.abs(x[finite])
        # The tolerance that would have passed: rtol with this atol, atol with rtol 0. A non-finite
        # value that differs passes under none; with rtol, neither does a difference where expected == 0.
        if np.any(~close & ~finite):
            s.rtol_needed = s.atol_needed = None
        if s.atol_needed is not None:
            s.atol_needed = _top(s.atol_needed, d)
        excess = d - atol
        over = excess > 0
        if s.rtol_needed is not None and over.any():
            s.rtol_needed = None if np.any(over & (ax == 0)) else _top(s.rtol_needed, excess[over] / ax[over])
        s.n_finite += d.size
        s.sum_abs += float(d.sum())
        s.max_abs = _top(s.max_abs, d)
        s.max_rel = _top(s.max_rel, d[ax > 0] / ax[ax > 0])
        if e.dtype.name in _ULP_DTYPES:
            s.max_ulp = _top(s.max_ulp, ulp_distance(e[finite], o[finite]))
        priority = np.where(finite, diff, np.inf)  # NaN and Inf mismatches first
    s.n_differ += int(np.count_nonzero(differ))
    s.n_oot += int(np.count_nonzero(oot))
    idx = np.flatnonzero(oot)
    if idx.size and max_worst > 0:
        p = priority[idx]
        keep = np.argsort(-p, kind="stable")[:max_worst]
        s.worst += zip(p[keep].tolist(), (idx[keep] + start).tolist(), strict=True)
        s.worst = sorted(s.worst, key=lambda t: (-t[0], t[1]))[:max_worst]


def _same_bytes(e: np.ndarray, o: np.ndarray) -> bool:
    """Whether two 1-D C-contiguous arrays of one dtype hold the same bytes, chunk by chunk.

    Object arrays hold pointers, not values: they never take this path.
    """
    if e.dtype != o.dtype or e.dtype.kind == "O":
        return False
    return not any(_bits_differ(e[i : i + _CHUNK], o[i : i + _CHUNK]).any() for i in range(0, e.size, _CHUNK))


def _scan_identical(e: np.ndarray) -> _Scan:
    """What the full scan finds when obtained is expected byte for byte, in one pass instead of ~20.

    The usual verify on an unchanged host: a 10^7-element float32 output then costs one byte
    comparison and one isfinite pass. Every statistic of a pair with itself is 0 where the full
    scan has a value and None where it has none; ``test_compare`` pins this against _scan_chunk.
    """
    s = _Scan()
    if e.dtype.kind in "OSUV" and not is_float(e.dtype):  # equality only: no statistics
        return s
    nonzero = False
    for i in range(0, e.size, _CHUNK):
        chunk = e[i : i + _CHUNK]
        x = chunk if chunk.dtype.kind in "fc" else chunk.astype(np.float64)  # bool, int, bfloat16
        finite = np.isfinite(x)
        s.n_finite += int(np.count_nonzero(finite))
        nonzero = nonzero or bool(np.count_nonzero(finite & (x != 0)))
    if s.n_finite:
        s.max_abs = 0.0
        s.max_ulp = 0 if e.dtype.name in _ULP_DTYPES else None
    s.max_rel = 0.0 if nonzero else None
    return s


def _scan(e: np.ndarray, o: np.ndarray, rtol: float, atol: float, max_worst: int) -> _Scan:
    s = _Scan()
    for start in range(0, e.size, _CHUNK):
        _scan_chunk(s, e[start : start + _CHUNK], o[start : start + _CHUNK], start, rtol, atol, max_worst)
    return s


def _worst_element(e: np.ndarray, o: np.ndarray, flat: int, shape: tuple[int, ...]) -> WorstElement:
    index = [int(i) for i in np.unravel_index(flat, shape)]
    if is_float(e.dtype):
        # Each float at its own dtype's shortest round-trip text: float32 0.24133582, not float64's
        # 0.24133582413196564, which is more digits than the value has.
        ev, ov = e[flat], o[flat]
        difference = e.dtype.type(float(ov) - float(ev))
        return WorstElement(
            index=index, obtained=_shortest(ov), expected=_shortest(ev), difference=_shortest(difference)
        )
    # Python scalars, so repr gives 'True', and integers stay exact.
    py = {"b": bool, "i": int, "u": int, "c": complex}.get(e.dtype.kind)
    if py is None:  # strings, objects, records
        ev, ov, difference = (v.item() if isinstance(v, np.generic) else v for v in (e[flat], o[flat], "!="))
    else:
        ev, ov = py(e[flat]), py(o[flat])
        difference = repr(int(ov) - int(ev) if py is bool else ov - ev)
    return WorstElement(index=index, obtained=repr(ov), expected=repr(ev), difference=difference)


def _shortest(value: np.generic) -> str:
    """The fewest digits that read back as the same ``value`` of its own dtype ('nan', 'inf', '-0.0' too)."""
    if value.dtype.kind == "f":  # NumPy's own float16/32/64 print their shortest round trip
        return str(value)
    x = float(value)  # ml_dtypes (bfloat16, float8) print a fixed 6 digits: find the shortest ourselves
    if not np.isfinite(x):
        return str(x)
    for digits in range(1, 18):
        text = f"{x:.{digits}g}"
        if value.dtype.type(float(text)) == value:
            break
    return text if any(c in text for c in ".en") else text + ".0"


def _absent(name: str, new: bool) -> str:
    """The problem of an output one side lacks: new (not in the reference), or missing from the model now."""
    if new:
        return f"new output {name!r} (not in the reference)"
    return f"output {name!r} missing (the model no longer produces it)"


def _incomparable(e: np.ndarray, o: np.ndarray) -> str | None:
    """Why two outputs cannot be compared element by element (dtype or shape changed); None when they can."""
    problems = []
    if e.dtype.newbyteorder("=") != o.dtype.newbyteorder("="):
        problems.append(f"dtype changed: {e.dtype.name} -> {o.dtype.name}")
    if e.shape != o.shape:
        problems.append(f"shape changed: {e.shape} -> {o.shape}")
    return "; ".join(problems) if problems else None


def _class_agreement(e: np.ndarray, o: np.ndarray) -> tuple[float | None, float | None]:
    """Top-1 and top-5 agreement of a float (probes, classes) output; None where they say nothing."""
    top1 = top5 = None
    if is_float(e.dtype) and e.ndim == 2 and e.shape[0] > 0 and e.shape[1] >= 2:
        top1 = float(np.mean(np.argmax(e, axis=1) == np.argmax(o, axis=1)))
        if e.shape[1] > 5:  # with five classes or fewer every probe's top five agree
            top5 = _topk_agreement(e, o, 5)
    return top1, top5


def compare_output(
    name: str,
    expected: np.ndarray | None,
    obtained: np.ndarray | None,
    tolerance: Tolerance,
    max_worst: int = 5,
    *,
    scan_all: bool = False,
) -> OutputComparison:
    """Compare one output; a missing, new, retyped or reshaped output is a mismatch with a ``problem``.

    ``scan_all`` scans every element even when obtained is expected byte for byte (by default
    that case takes a shortcut). It is a seam for tests and tools that check the shortcut
    reports exactly what the full scan reports; the result is the same, only slower.
    """
    info: dict[str, Any] = {"name": name}
    for side, a in (("expected", expected), ("obtained", obtained)):
        if a is not None:
            info.update({f"{side}_dtype": np.asarray(a).dtype.name, f"{side}_shape": list(np.shape(a))})
    if expected is None or obtained is None:
        return OutputComparison(status="mismatch", problem=_absent(name, expected is None), **info)
    e, o = np.asarray(expected), np.asarray(obtained)
    problem = _incomparable(e, o)
    if problem is not None:
        return OutputComparison(status="mismatch", problem=problem, **info)

    scale = output_scale(e)
    info["scale"] = scale if is_float(e.dtype) else None
    rtol, atol = effective_tolerance(e.dtype, tolerance, scale)

    ef, of = _native(e).reshape(-1), _native(o).reshape(-1)
    s = _scan_identical(ef) if not scan_all and _same_bytes(ef, of) else _scan(ef, of, rtol, atol, max_worst)

    top1, top5 = _class_agreement(e, o)
    floating = is_float(e.dtype) or e.dtype.kind == "c"
    status = "identical" if s.n_differ == 0 else "within_tolerance" if s.n_oot == 0 else "mismatch"
    return OutputComparison(
        status=status,
        size=int(e.size),
        n_differ=s.n_differ,
        n_out_of_tolerance=s.n_oot,
        fraction_out_of_tolerance=s.n_oot / e.size if e.size else 0.0,
        max_abs=s.max_abs,
        max_rel=s.max_rel,
        max_ulp=s.max_ulp,
        mean_abs=s.sum_abs / s.n_finite if s.n_finite else None,
        top1_agreement=top1,
        top5_agreement=top5,
        rtol_needed=_needed(s.rtol_needed) if floating else None,
        atol_needed=_needed(s.atol_needed) if floating else None,
        atol=atol,
        rtol=rtol,
        worst=[_worst_element(ef, of, flat, e.shape) for _, flat in s.worst],
        **s.nonfinite,
        **info,
    )


def _topk_agreement(e: np.ndarray, o: np.ndarray, k: int) -> float:
    """Share of rows whose k highest-scoring classes are the same set (order within them ignored)."""
    top_e = np.sort(np.argpartition(-e.astype(np.float64), k - 1, axis=1)[:, :k], axis=1)
    top_o = np.sort(np.argpartition(-o.astype(np.float64), k - 1, axis=1)[:, :k], axis=1)
    return float(np.mean(np.all(top_e == top_o, axis=1)))


def _needed(value: float | None) -> float | None:
    # One step up: atol + rtol * |expected| is rounded, and the value must pass, not sit on the edge.
    return None if value is None else float(np.nextafter(value, np.inf)) if value > 0 else 0.0


def max_abs_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per output: the largest |a - b| (NaN matching NaN; inf when shapes or non-float values differ)."""
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
    """Same output names, dtypes, shapes and bytes."""
    return a.keys() == b.keys() and all(
        np.asarray(a[k]).dtype == np.asarray(b[k]).dtype
        and np.asarray(a[k]).shape == np.asarray(b[k]).shape
        and np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes()
        for k in a
    )


def compare_outputs(
    expected: dict[str, np.ndarray], obtained: dict[str, np.ndarray], tolerance: Tolerance
) -> list[OutputComparison]:
    """Compare every output either side has, sorted by name."""
    names = sorted(expected.keys() | obtained.keys())
    return [compare_output(n, expected.get(n), obtained.get(n), tolerance) for n in names]
