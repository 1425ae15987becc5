"""Probe inputs: the rules they keep, and loading the user's.

Owns: ``TensorSpecInfo`` (a model input or output as plain values), ``load_probes`` (the user's
``.npy``/``.npz``, checked against the model's inputs) and ``is_float`` (the one floating-dtype
test, shared with ``check.compare``). Reading and writing the files without pickle is ``npz``'s.
NumPy only: no TensorFlow or Keras (``_tf.loading`` and ``probe_kinds``, which generates
probes, import this module, never the other way round).

Rules that every function here keeps:
- ``allow_pickle=False`` on every load; dimension 0 is the batch, the others must be known.
- a probe array is cast to the model's dtype only when the cast cannot surprise (rule
  ``CAST_RULE``, the same at save and at verify, and the casts made are recorded): float ->
  float (round to nearest, identical on every IEEE host), integer -> integer or -> float when
  every value survives the round trip (int64 ids for an int32 input); nothing else.
- probes that tell no model from another are refused (``uninformative``: all NaN or infinite);
  an integer input an Embedding reads must hold indices in its vocabulary (``check_int_ranges``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from envprint.errors import FingerprintError
from envprint.record.npz import CORRUPT, open_arrays, read_array, short

CAST_RULE = "value-preserving-v1"  # see the module docstring; recorded with the probes
STRING_DTYPE = "string"  # tf.string has no NumPy dtype name of its own


@dataclass(frozen=True)
class TensorSpecInfo:
    """One model input or output: its name, shape (None = dynamic) and NumPy dtype name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


class SpecLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Sequence[int | None]: ...
    @property
    def dtype(self) -> str: ...


# ---------------------------------------------------------------------------------- dtypes


def is_float(dt: np.dtype) -> bool:
    """A floating dtype, ml_dtypes' too: their bfloat16 and float8 types have kind "V", like raw bytes."""
    return dt.kind == "f" or (dt.kind == "V" and dt.names is None and dt.name.startswith(("bfloat", "float")))


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name, including ml_dtypes' bfloat16 and float8 types."""
    try:
        return np.dtype(name)
    except TypeError:
        pass
    try:
        import ml_dtypes  # TensorFlow's own dependency; registers bfloat16 and friends

        return np.dtype(getattr(ml_dtypes, name))
    except (ImportError, AttributeError, TypeError):
        raise FingerprintError(f"dtype {name!r} is not a NumPy dtype; install ml_dtypes or pass --probes") from None


def _is_int(dt: np.dtype) -> bool:
    return dt.kind in "iu"


def _describe_shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


# ---------------------------------------------------------------------------------- load


def _safe_cast(arr: np.ndarray, spec: SpecLike, where: str, casts: dict[str, str] | None = None) -> np.ndarray:
    """``arr`` as the input's dtype, or FingerprintError when the cast could change values (``CAST_RULE``).

    Each cast made goes into ``casts`` as ``{input: "int64 -> int32"}``.
    """
    out = _cast(arr, spec, where)
    if casts is not None and out.dtype != arr.dtype:
        casts[spec.name] = f"{arr.dtype} -> {out.dtype}"
    return out


def cast_to_inputs(
    arrays: Mapping[str, np.ndarray], inputs: Sequence[SpecLike], where: str, casts: dict[str, str] | None = None
) -> dict[str, np.ndarray]:
    """``arrays`` (keyed by input name) cast to each input's dtype by the rule ``load_probes`` applies.

    Verify feeds the recorded probes through this, so a model whose input became int64 (or a
    SavedModel of the same weights that declares it so) gets the same values, and a cast that
    would change a value is refused the same way as at save.
    """
    specs = {s.name: s for s in inputs}
    return {k: _safe_cast(v, specs[k], f"{where}[{k!r}]", casts) if k in specs else v for k, v in arrays.items()}


def uninformative(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """The names of float arrays that hold no finite value (all NaN or infinite): they verify nothing.

    A model fed only NaN answers NaN on any host and for any weights, so verify would pass
    forever; an output that is all NaN or infinite compares equal whatever the weights.
    """
    bad = []
    for name, arr in arrays.items():
        a = np.asarray(arr)
        if a.size and is_float(a.dtype) and not np.isfinite(a.astype(np.float64)).any():
            bad.append(name)
    return sorted(bad)


def check_int_ranges(arrays: Mapping[str, np.ndarray], ranges: Mapping[str, tuple[int, int]], where: str) -> None:
    """FingerprintError naming the input, the index and the vocabulary when an Embedding index is out of range."""
    for name, (low, high) in ranges.items():
        arr = arrays.get(name)
        if arr is None or not _is_int(np.asarray(arr).dtype) or not np.asarray(arr).size:
            continue
        a = np.asarray(arr)
        outside = np.argwhere((a < low) | (a >= high))
        if len(outside):
            index = tuple(int(i) for i in outside[0])
            raise FingerprintError(
                f"{where}: input {name!r} holds index {int(a[index])} at {list(index)}, outside the vocabulary of the "
                f"Embedding that reads it (input_dim {high}: indices {low} to {high - 1}); "
                f"{len(outside)} of {a.size} values are outside; fix the probes"
            )


def _cast(arr: np.ndarray, spec: SpecLike, where: str) -> np.ndarray:
    if spec.dtype == STRING_DTYPE:
        if arr.dtype.kind in "SU":
            return arr
        raise FingerprintError(
            f"{where}: the model input is a string but the array is {arr.dtype}; save bytes or str arrays"
        )
    want = numpy_dtype(spec.dtype)
    have = arr.dtype
    if have == want:
        return arr
    fix = f"save it as {spec.dtype}: np.savez(path, {spec.name}=arr.astype('{spec.dtype}'))"
    if is_float(have) and is_float(want):
        return arr.astype(want)
    if _is_int(have) and (_is_int(want) or is_float(want)):
        out = arr.astype(want)
        with np.errstate(invalid="ignore", over="ignore"):
            back = out.astype(have)
        if np.array_equal(back, arr) and (not is_float(want) or np.isfinite(out).all()):
            return out
        raise FingerprintError(f"{where}: {have} values do not all fit {spec.dtype} exactly; {fix}")
    raise FingerprintError(
        f"{where}: the array is {have} but the model input is {spec.dtype}; a cast would change values; {fix}"
    )


def _check_shape(arr: np.ndarray, spec: SpecLike, where: str) -> None:
    shape = tuple(spec.shape)
    ok = arr.ndim == len(shape) and all(d is None or d == a for d, a in zip(shape[1:], arr.shape[1:], strict=True))
    if not ok or (shape and arr.shape[0] < 1):
        raise FingerprintError(
            f"{where}: shape {arr.shape} does not fit the model input's {_describe_shape(shape)} "
            "(dimension 0 is the batch, the others must match); fix the array's shape"
        )


def _npz_keys(p: Path, loaded: Any, names: list[str], notes: list[str]) -> dict[str, str]:
    """The key of the array for each input name: its own name, or the only array of a single-input model."""
    try:
        keys = list(loaded.files)
    except CORRUPT as exc:
        raise FingerprintError(f"{p}: truncated or corrupt ({short(exc)}); re-create it with np.savez") from None
    keyed = {n: n for n in names}
    if len(names) == 1 and len(keys) == 1 and keys != names:
        # One array for one input: nothing to match, whatever np.savez called it ('arr_0').
        keyed = {names[0]: keys[0]}
        notes.append(f"{p}: took the array {keys[0]!r} for the model's only input {names[0]!r}")
    missing = [n for n in names if keyed[n] not in keys]
    extra = [k for k in keys if k not in keyed.values()]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(n) for n in missing))
        if extra:
            parts.append("unexpected " + ", ".join(repr(k) for k in extra))
        raise FingerprintError(
            f"{p}: {'; '.join(parts)}; its keys must be exactly the model's input names: {', '.join(names)}"
        )
    return keyed


def _check_batches(p: Path, out: Mapping[str, np.ndarray]) -> None:
    """FingerprintError when the inputs' arrays do not all hold the same number of probes."""
    batches = {n: a.shape[0] for n, a in out.items() if a.ndim}
    if len(set(batches.values())) > 1:
        raise FingerprintError(
            f"{p}: inputs disagree on the batch size ("
            + ", ".join(f"{n}: {b}" for n, b in batches.items())
            + "); give every input the same number of probes"
        )


def load_probes(
    path: str | os.PathLike[str],
    inputs: Sequence[SpecLike],
    *,
    notes: list[str] | None = None,
    casts: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """The user's probes, checked against the model's inputs and cast as the module rules allow.

    ``.npy`` holds the one input of a single-input model; ``.npz`` holds one array per input,
    keyed by input name, and nothing else; for a single-input model an ``.npz`` holding one
    array is taken whatever its key (and ``notes`` says which). All inputs must share the batch
    size. Each cast made goes into ``casts`` as ``{input: "int64 -> int32"}``.
    """
    notes = notes if notes is not None else []
    p = Path(path)
    names = [s.name for s in inputs]
    if p.suffix.lower() not in (".npy", ".npz"):
        raise FingerprintError(f"{p}: probes must be a .npy (one input) or .npz (keyed by input name) file")
    if p.suffix.lower() == ".npy" and len(inputs) != 1:
        raise FingerprintError(
            f"{p}: a .npy holds one array but the model has {len(inputs)} inputs ({', '.join(names)}); "
            "pass an .npz keyed by input name: np.savez(path, " + ", ".join(f"{n}=..." for n in names) + ")"
        )
    loaded = open_arrays(p)
    out: dict[str, np.ndarray] = {}
    if isinstance(loaded, np.ndarray):  # .npy (or an .npz-named .npy: np.load reads the magic, not the name)
        if len(inputs) != 1:
            raise FingerprintError(
                f"{p}: holds one array but the model has {len(inputs)} inputs; pass an .npz keyed by input name"
            )
        spec = inputs[0]
        arr = read_array(loaded, "", str(p), p)
        _check_shape(arr, spec, f"{p}")
        out[spec.name] = _safe_cast(arr, spec, f"{p}", casts)
    else:
        with loaded:
            keyed = _npz_keys(p, loaded, names, notes)
            for spec in inputs:
                where = f"{p}[{keyed[spec.name]!r}]"
                arr = read_array(loaded, keyed[spec.name], where, p)
                _check_shape(arr, spec, where)
                out[spec.name] = _safe_cast(arr, spec, where, casts)
    _check_batches(p, out)
    return out
