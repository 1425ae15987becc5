"""Generated probes: values for each model input from a seed, and the recipe that regenerates them.

Owns: ``generate_probes`` (one stream per input, keyed by its name) and ``probes_from_recipe``.
NumPy only: must not import TensorFlow or Keras. The rules every probe keeps (the cast rule, the
batch dimension, the refusals) are in ``envprint.record.probes``, which this module reads and which
must not import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class InputHint:
    """What the model itself says an input's values mean, read from the layer that reads it or its quantization.

    ``kind``: ``ids`` (integers in ``[low, high)``: an Embedding's or CategoryEncoding's size),
    ``tokens`` (one of ``tokens`` per element: StringLookup's or IntegerLookup's vocabulary),
    ``text`` (1 to ``high`` words of ``tokens`` joined by spaces: TextVectorization's vocabulary),
    ``hashed`` (any value: Hashing), ``quantized`` (a quantized integer input: its whole integer
    range, which dequantizes into the range calibrated at conversion), or ``opaque`` (nothing says:
    ``source`` names why, e.g. ``sparse``, ``ragged`` or the class of the layer that reads it).
    ``source`` names where the hint came from (a layer class, ``quantization``).
    """

    kind: str
    source: str
    low: int = 0
    high: int = 0
    tokens: tuple[str | int, ...] = ()
    scale: float | None = None
    zero_point: int | None = None


IDS, TOKENS, TEXT, HASHED, QUANTIZED, OPAQUE = "ids", "tokens", "text", "hashed", "quantized", "opaque"
BOOL_DISTRIBUTION = "uniform_bool"
_HASHED_SPAN = 1 << 16  # Hashing takes any value: 0 .. 65535 (at most the dtype's maximum), or 'token<n>'


def _refuse(spec: SpecLike, hint: InputHint | None) -> FingerprintError:
    """The one-line refusal for an input whose values nothing in the model explains."""
    fix = "pass --probes FILE.npz with real examples (np.savez(path, NAME=array), one array per input)"
    if hint is not None and hint.kind == OPAQUE and hint.source in ("sparse", "ragged"):
        why = f"is a {hint.source} tensor, which a .npz of dense arrays cannot hold; envprint cannot make its probes"
        return FingerprintError(f"input {spec.name!r} {why}; verify it with a dense-input export of the model")
    if hint is not None and hint.kind == OPAQUE:
        why = f"is read by {hint.source}, which does not say which values it takes"
    elif spec.dtype == STRING_DTYPE:
        why = "no TextVectorization, StringLookup or Hashing layer reads it"
    else:
        why = "no Embedding, lookup, Hashing or CategoryEncoding layer reads it and it is not quantized"
    return FingerprintError(f"input {spec.name!r} is {spec.dtype} and {why}; {fix}")


def _hinted(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype | None, hint: InputHint) -> np.ndarray:
    """Values of one input drawn as its hint says; strings as fixed-width unicode (no pickle needed)."""
    if hint.kind == TOKENS:
        values = np.asarray(hint.tokens)[rng.integers(0, len(hint.tokens), size=shape)]
    elif hint.kind == TEXT:
        words = np.asarray(hint.tokens, dtype=str)
        lengths = rng.integers(1, max(hint.high, 1) + 1, size=shape)
        values = np.array([" ".join(words[rng.integers(0, len(words), size=k)]) for k in lengths.reshape(-1)])
        values = values.reshape(shape)
    elif hint.kind == HASHED:
        span = _HASHED_SPAN if dt is None or not _is_int(dt) else min(_HASHED_SPAN, int(np.iinfo(dt).max) + 1)
        drawn = rng.integers(0, span, size=shape)
        values = np.char.add("token", drawn.astype(str)) if dt is None else drawn
    else:  # IDS, QUANTIZED: [low, high)
        values = rng.integers(hint.low, hint.high, size=shape, dtype=np.int64)
    return values if dt is None else values.astype(dt)


def _one_input(
    spec: SpecLike,
    *,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, Sequence[int]] | None,
    hint: InputHint | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    dt = None if spec.dtype == STRING_DTYPE else numpy_dtype(spec.dtype)
    usable = hint if hint is not None and hint.kind != OPAQUE else None
    if hint is not None and hint.kind == OPAQUE and hint.source in ("sparse", "ragged"):
        raise _refuse(spec, hint)
    if dt is None and (usable is None or usable.kind not in (TOKENS, TEXT, HASHED)):
        raise _refuse(spec, hint)
    if dt is not None and (dt.kind in "OSUc" or not (is_float(dt) or _is_int(dt) or dt.kind == "b")):
        raise FingerprintError(
            f"input {spec.name!r} is {spec.dtype}: envprint cannot invent meaningful values of this type; "
            "pass --probes FILE.npz with real examples"
        )
    if dt is not None and _is_int(dt) and usable is None:
        raise _refuse(spec, hint)
    shape = _sample_shape(spec, num_probes, input_shapes)
    rng = _stream(seed, spec.name)
    entry: dict[str, Any] = {"shape": list(shape), "dtype": spec.dtype}
    if dt is not None and dt.kind == "b":
        values = rng.integers(0, 2, size=shape).astype(bool)
        entry.update(distribution=BOOL_DISTRIBUTION)
    elif usable is not None and usable.kind in (IDS, QUANTIZED):
        low, high = int(usable.low), int(usable.high)
        if not low < high:
            raise FingerprintError(f"input {spec.name!r}: integer range [{low}, {high}) is empty; check the range")
        if dt is not None and _is_int(dt) and (low < np.iinfo(dt).min or high - 1 > np.iinfo(dt).max):
            raise FingerprintError(
                f"input {spec.name!r}: integer range [{low}, {high}) does not fit {spec.dtype}; pass --probes FILE.npz"
            )
        values = _hinted(rng, shape, dt, usable)
        entry.update(distribution=INTEGER_DISTRIBUTION, low=low, high=high)
    elif usable is not None:
        values = _hinted(rng, shape, dt, usable)
        entry.update(distribution=usable.kind, tokens=list(usable.tokens), high=usable.high)
    else:
        # Drawn in float64 then rounded once, so a float16 and a float32 input see the same draws.
        values = rng.standard_normal(size=shape, dtype=np.float64).astype(dt)
        entry.update(distribution=FLOAT_DISTRIBUTION)
    if hint is not None:
        entry.update(kind=hint.kind, source=hint.source)
    return values, entry


def generate_probes(
    inputs: Iterable[SpecLike],
    *,
    num_probes: int,
    seed: int,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    int_ranges: Mapping[str, tuple[int, int]] | None = None,
    hints: Mapping[str, InputHint] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Probes for each input, and the recipe that regenerates them exactly.

    Floats: ``standard_normal`` drawn in float64, cast to the input's dtype. Inputs named in
    ``int_ranges``: uniform integers in ``[low, high)`` (an Embedding's ``[0, input_dim)``), cast
    to the input's dtype, float inputs included. Booleans: uniform. Inputs named in ``hints``:
    drawn as their ``InputHint`` says (vocabulary tokens, words, quantized ranges); other
    integer and string inputs need the user's probes. Each input has its own stream keyed by
    its name (see ``_stream``).
    """
    known = {n: InputHint(IDS, "range", low=lo, high=hi) for n, (lo, hi) in (int_ranges or {}).items()}
    known.update(hints or {})
    if num_probes < 1:
        raise FingerprintError(f"num_probes must be at least 1, got {num_probes}; pass --num-probes N")
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, dict[str, Any]] = {}
    for spec in sorted(inputs, key=lambda s: s.name):
        arrays[spec.name], entries[spec.name] = _one_input(
            spec, num_probes=num_probes, seed=seed, input_shapes=input_shapes, hint=known.get(spec.name)
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
    hints: dict[str, InputHint] = {}
    for name, entry in recipe["inputs"].items():
        specs.append(TensorSpecInfo(name, (None, *entry["shape"][1:]), entry["dtype"]))
        if entry["distribution"] == INTEGER_DISTRIBUTION:
            hints[name] = InputHint(entry.get("kind", IDS), entry.get("source", "range"), entry["low"], entry["high"])
        elif entry["distribution"] in (TOKENS, TEXT, HASHED):
            kind, tokens = entry["distribution"], tuple(entry["tokens"])
            hints[name] = InputHint(kind, entry["source"], high=entry["high"], tokens=tokens)
    arrays, _ = generate_probes(specs, num_probes=recipe["num_probes"], seed=recipe["seed"], hints=hints)
    return arrays
