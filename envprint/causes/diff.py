"""Diff two fingerprints: pure data in, a FingerprintDiff out.

Owns: flattening a fingerprint into dotted leaf paths and comparing them. What kind of difference
each path is (its topic, a cause id) and whether it can change numerics comes from the cause
registry (``causes.topic_of``); differences are listed in the registry's order. A setting only
GPU kernels read (``causes.gpu.GPU_ONLY``) is listed, not counted, where neither host has a GPU.
Must not import TensorFlow: ``envprint diff A B`` runs on any host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase, translate
from typing import Any

from envprint.causes import backend
from envprint.causes.gpu import GPU_ONLY, neither_has_gpu
from envprint.causes.registry import ORDER, REGISTRY, topic_of
from envprint.models import DiffEntry, Fingerprint, FingerprintDiff, Leaf

# Never compared: when the record was made, the minor schema it was written in (a fact about the
# file, not the host), and the reasons a fact was unavailable (the fact's own value, None, already
# shows in the diff).
IGNORED = ("created_at", "schema_minor", "*.unavailable.*", "unavailable.*", "*.unavailable", "unavailable")
# One expression for all of them: every leaf of both records is tested (about 500 each).
_IGNORED = re.compile("|".join(translate(p) for p in IGNORED))


def _summary(value: Any) -> Leaf:
    """A one-value stand-in for a whole section present on one side only."""
    if isinstance(value, dict):
        return value.get("version") or value.get("name") or "present"
    return f"{len(value)} items"


def _list_key(item: dict, index: int) -> str:
    name = item.get("name")
    if isinstance(name, str):
        return name.removeprefix("/physical_device:")
    return str(item.get("index", index))


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, leaf) for every leaf. Lists of records are keyed by name or index."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from flatten(item, f"{path}[{_list_key(item, i)}]")
    else:
        yield path, value


def _comparable(fp: Fingerprint) -> dict:
    data = fp.model_dump(mode="json")
    # One value per library family: versions (or file names) rather than install paths, which
    # differ between two virtual environments that load the very same library.
    libs = data["devices"].get("loaded_libraries")
    if libs is not None:
        families: dict[str, list[str]] = {}
        for lib in libs:
            families.setdefault(lib["name"], []).append(lib["version"] or lib["path"].rsplit("/", 1)[-1])
        data["devices"]["loaded_libraries"] = {k: ", ".join(sorted(v)) for k, v in families.items()}
    # A key package is compared once, under packages.key; not again under packages.installed.
    for name in data["packages"]["key"]:
        data["packages"]["installed"].pop(name, None)
    return data


def _leaves(data: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, leaf in flatten(data):
        if _IGNORED.match(path):
            continue
        out[path] = leaf
    return out


def _collapse_missing(a: dict, b: dict) -> tuple[dict, dict]:
    """When a whole section is None on one side, compare it as one entry, not one per field."""
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            a[key], b[key] = _collapse_missing(dict(va), dict(vb))
        elif (va is None) != (vb is None) and isinstance(va or vb, (dict, list)) and (va or vb):
            a[key] = None if va is None else _summary(va)
            b[key] = None if vb is None else _summary(vb)
    return a, b


# Sections that `envprint save` adds. Compared only when both sides are records of a model:
# a host captured now has none of them, and that is not a difference.
MODEL_SECTIONS = (
    "model", "probes", "probe_arrays", "reference_arrays", "self_check", "tolerance", "variants", "layer_trace",
)  # fmt: skip
# Fields that describe how a record's reference was produced, not the host: a declared seed.
# Compared between two model records only, like MODEL_SECTIONS.
MODEL_FIELDS = (("seeds", "declared"), ("seeds", "source"))


def _settled(la: dict[str, Any], lb: dict[str, Any]) -> set[str]:
    """Causes whose effective state is known and the same on both sides: their other differences changed nothing."""
    return {
        cause
        for cause, c in REGISTRY.items()
        if c.effective and all(la.get(p) is not None and la.get(p) == lb.get(p) for p in c.effective)
    }


def _follower(path: str, topic: str, la: dict[str, Any], lb: dict[str, Any]) -> bool:
    """A path that only asks for its cause's effective state, which both sides recorded: listed, not counted."""
    c = REGISTRY.get(topic)
    return (
        c is not None
        and any(fnmatchcase(path, p) for p in c.follows)
        and all(la.get(p) is not None and lb.get(p) is not None for p in c.effective)
    )


def diff_fingerprints(a: Fingerprint, b: Fingerprint, label_a: str = "a", label_b: str = "b") -> FingerprintDiff:
    ca, cb = _comparable(a), _comparable(b)
    if ca.get("model") is None or cb.get("model") is None:
        for section in MODEL_SECTIONS:
            ca.pop(section, None)
            cb.pop(section, None)
        for section, key in MODEL_FIELDS:
            ca.get(section, {}).pop(key, None)
            cb.get(section, {}).pop(key, None)
    da, db = _collapse_missing(ca, cb)
    la, lb = _leaves(da), _leaves(db)
    settled = _settled(la, lb)
    moved = backend.off_tensorflow(la, lb)
    no_gpu = neither_has_gpu(a, b)
    entries = []
    for path in sorted(set(la) | set(lb)):
        va, vb = la.get(path), lb.get(path)
        if va == vb or (va in (None, {}, []) and vb in (None, {}, [])):
            continue
        status = "only_in_b" if va in (None, {}, []) else "only_in_a" if vb in (None, {}, []) else "changed"
        topic, numerics = topic_of(path)
        if moved and status != "changed" and backend.tensorflow_runtime(path):
            topic, numerics = "keras_backend", False  # TensorFlow ran on one side only: the backend counts, once
        numerics = numerics and topic not in settled and not _follower(path, topic, la, lb)
        # One rule for diff, verify, preflight and fleet: a GPU-only setting, no GPU on either side.
        numerics = numerics and not (no_gpu and any(fnmatchcase(path, p) for p in GPU_ONLY))
        entries.append(
            DiffEntry(
                path=path,
                section=path.split(".")[0].split("[")[0],
                status=status,
                a=_leaf(va),
                b=_leaf(vb),
                topic=topic,
                numerics=numerics,
            )
        )
    entries.sort(key=lambda e: (not e.numerics, ORDER[e.topic], e.path))
    return FingerprintDiff(a=label_a, b=label_b, identical=not entries, entries=entries, passed=not entries)


def _leaf(value: Any) -> Leaf:
    if value in ({}, []):
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return value
