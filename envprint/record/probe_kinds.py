"""Generated probes: values for each model input from a seed, and the recipe that regenerates them.

Owns: ``generate_probes`` (one stream per input, keyed by its name) and ``probes_from_recipe``.
NumPy only: must not import TensorFlow or Keras. The rules every probe keeps (the cast rule, the
batch dimension, the refusals) are in ``envprint.record.probes``, which this module reads and which
must not import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from envprint.errors import FingerprintError
from envprint.record.probes import (
    STRING_DTYPE,
    SpecLike,
    TensorSpecInfo,
    _describe_shape,
    _is_int,
    is_float,
    numpy_dtype,
)

RECIPE_VERSION = 1
FLOAT_DISTRIBUTION = "standard_normal"
INTEGER_DISTRIBUTION = "uniform_integers"


def _stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator per input, keyed by the input's name.

    Keying by name (not by position) means adding, removing or renaming one input leaves every
    other input's probes unchanged: ``default_rng([seed, key])`` feeds both words into a
    SeedSequence. The key is the first 4 bytes of SHA-256(name), little-endian.
    """
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, key])


def _sample_shape(spec: SpecLike, num_probes: int, input_shapes: Mapping[str, Sequence[int]] | None) -> tuple[int, ...]:
    shape = tuple(spec.shape)
    if not shape:
        raise FingerprintError(
            f"input {spec.name!r} is a scalar (shape ()), with no batch dimension to fill; pass --probes FILE.npz"
        )
    rest = shape[1:]
    given = (input_shapes or {}).get(spec.name)
    hint = f"--input-shape {spec.name}=" + ",".join(f"D{i}" for i in range(1, len(rest) + 1))
    if given is not None:
        given = tuple(int(d) for d in given)
        fits = len(given) == len(rest) and all(
            g > 0 and (d is None or d == g) for g, d in zip(given, rest, strict=True)
        )
        if not fits:
            raise FingerprintError(
                f"--input-shape {spec.name}={','.join(map(str, given))} does not fit the input's shape "
                f"{_describe_shape(shape)}; give one sample's shape without the batch dimension: {hint}"
            )
        rest = given
    elif any(d is None for d in rest):
        raise FingerprintError(
            f"input {spec.name!r} has shape {_describe_shape(shape)}: a dimension other than the batch is "
            f"dynamic; pass {hint} (one sample's shape, without the batch dimension) or --probes FILE.npz"
        )
    return (num_probes, *rest)  # type: ignore[arg-type]  # no None left in rest: refused above


def _one_input(
    spec: SpecLike,
    *,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, Sequence[int]] | None,
    int_ranges: Mapping[str, tuple[int, int]] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    dt = None if spec.dtype == STRING_DTYPE else numpy_dtype(spec.dtype)
    int_range = (int_ranges or {}).get(spec.name)
    if dt is None or dt.kind in "bOSUc" or not (is_float(dt) or _is_int(dt)):
        raise FingerprintError(
            f"input {spec.name!r} is {spec.dtype}: envprint cannot invent meaningful values of this type; "
            "pass --probes FILE.npz with real examples"
        )
    if _is_int(dt) and int_range is None:
        raise FingerprintError(
            f"input {spec.name!r} is {spec.dtype} and no vocabulary size was found for it (no Embedding reads "
            "it directly); pass --probes FILE.npz with valid ids"
        )
    shape = _sample_shape(spec, num_probes, input_shapes)
    rng = _stream(seed, spec.name)
    entry: dict[str, Any] = {"shape": list(shape), "dtype": spec.dtype}
    if int_range is not None:
        low, high = int(int_range[0]), int(int_range[1])
        if not low < high:
            raise FingerprintError(f"input {spec.name!r}: integer range [{low}, {high}) is empty; check the range")
        if _is_int(dt) and (low < np.iinfo(dt).min or high - 1 > np.iinfo(dt).max):
            raise FingerprintError(
                f"input {spec.name!r}: integer range [{low}, {high}) does not fit {spec.dtype}; pass --probes FILE.npz"
            )
        values = rng.integers(low, high, size=shape, dtype=np.int64).astype(dt)
        entry.update(distribution=INTEGER_DISTRIBUTION, low=low, high=high)
    else:
        # Drawn in float64 then rounded once, so a float16 and a float32 input see the same draws.
        values = rng.standard_normal(size=shape, dtype=np.float64).astype(dt)
        entry.update(distribution=FLOAT_DISTRIBUTION)
    return values, entry


def generate_probes(
    inputs: Iterable[SpecLike],
    *,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    int_ranges: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Probes for each input, and the recipe that regenerates them exactly.

    Floats: ``standard_normal`` drawn in float64, cast to the input's dtype. Inputs named in
    ``int_ranges``: uniform integers in ``[low, high)`` (an Embedding's ``[0, input_dim)``), cast
    to the input's dtype, float inputs included. Other integer, bool and string inputs need the
    user's probes. Each input has its own stream keyed by its name (see ``_stream``).
    """
    if num_probes < 1:
        raise FingerprintError(f"num_probes must be at least 1, got {num_probes}; pass --num-probes N")
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, dict[str, Any]] = {}
    for spec in sorted(inputs, key=lambda s: s.name):
        arrays[spec.name], entries[spec.name] = _one_input(
            spec, num_probes=num_probes, seed=seed, input_shapes=input_shapes, int_ranges=int_ranges
        )
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "generator": "numpy.random.default_rng([seed, int.from_bytes(sha256(name)[:4], 'little')])",
        "seed": int(seed),
        "num_probes": int(num_probes),
        "numpy_version": np.__version__,
        "inputs": entries,
    }
    return arrays, recipe


def probes_from_recipe(recipe: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Regenerate the probes a ``generate_probes`` recipe describes, bit for bit."""
    if recipe.get("recipe_version") != RECIPE_VERSION:
        raise FingerprintError(
            f"probe recipe version {recipe.get('recipe_version')!r} is not one this envprint reads "
            f"({RECIPE_VERSION}); upgrade envprint"
        )
    specs = []
    ranges: dict[str, tuple[int, int]] = {}
    for name, entry in recipe["inputs"].items():
        specs.append(TensorSpecInfo(name, (None, *entry["shape"][1:]), entry["dtype"]))
        if entry["distribution"] == INTEGER_DISTRIBUTION:
            ranges[name] = (entry["low"], entry["high"])
    arrays, _ = generate_probes(specs, num_probes=recipe["num_probes"], seed=recipe["seed"], int_ranges=ranges)
    return arrays
