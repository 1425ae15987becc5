"""save --variants: predict the probes again, on the saving machine, under the settings a fleet will have.

Owns: the plan (which children to run: oneDNN flipped, oneDNN capped at each instruction set
below this CPU's, one thread, the JAX backend; each child also predicts the probes one per call),
running the children in parallel up to the cores this process may use, and the ``Variants``
record (each variant's digest and error against the reference, the classes of bit-identical
variants, the cost). The children are ``verify --investigate``'s (``investigate.Runner`` and
``envprint._tf.child``): one TensorFlow import per child serves both of its runs.

Holds no TensorFlow code; the parent imports none for this. Must not be imported by
``investigate`` or ``verifier``.
"""

from __future__ import annotations

import importlib.util
import os
import string
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envprint.causes.onednn import VARIABLE as ONEDNN_VARIABLE
from envprint.causes.onednn import flag
from envprint.causes.restore import Restore
from envprint.causes.variants import ISA_LADDER, highest_isa
from envprint.check import compare
from envprint.check.investigate import Runner
from envprint.errors import UsageError
from envprint.models import Fingerprint, OutputComparison, Tolerance, Variant, VariantClass, Variants, VariantSettings

# isa: each cap as oneDNN runs here; isa_onednn: each cap with oneDNN on, where it is off here.
KINDS = ("onednn", "isa", "isa_onednn", "threads", "batch", "jax")
ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
CHILD_TIMEOUT_S = 300.0


def cpu_isa(fp: Fingerprint) -> str | None:
    """This CPU's highest instruction set in oneDNN's names, from the recorded flags (None: unknown or not x86)."""
    return highest_isa(fp.cpu.flags)


def kinds_of(variants: bool | Sequence[str]) -> tuple[str, ...]:
    """The kinds of variant asked for: all (True) or the ones named, each known."""
    if variants is True:
        return KINDS
    if not variants:
        return ()
    unknown = sorted(set(variants) - set(KINDS))
    if unknown:
        raise UsageError(f"variants={unknown}: unknown kind; choose from {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in variants)


@dataclass(frozen=True)
class _Child:
    """One child process: its settings, the environment it starts with, the calls before the load."""

    settings: VariantSettings
    env: dict[str, str | None] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)


def _child(env: dict[str, str], expect: dict[str, Any] | None = None, **settings: Any) -> _Child:
    return _Child(VariantSettings(env=env, **settings), dict(env), dict(settings.pop("runtime", {})), expect or {})


def plan(fp: Fingerprint, kinds: Sequence[str], *, keras_file: bool, jax: bool) -> list[_Child]:
    """The children to run, simplest first: a fresh process with nothing changed, then one per setting.

    oneDNN is flipped from its state here; each instruction-set cap below this CPU's is tried as
    oneDNN runs here ('isa') and, when that is off, with it on too ('isa_onednn', with 'isa'): a cap
    that changed nothing leaves its variant in the reference's class, a fact worth recording. JAX
    only for a Keras 3 file with jax installed.
    """
    onednn_here = bool(fp.tensorflow and fp.tensorflow.onednn.enabled)
    children = [_Child(VariantSettings())]
    if "onednn" in kinds:
        env = {ONEDNN_VARIABLE: flag(not onednn_here)}
        children.append(_child(env, {"onednn": not onednn_here}, onednn=not onednn_here))
    if "isa" in kinds:
        top = cpu_isa(fp)
        names = [name for name, _ in ISA_LADDER]
        below = names[: names.index(top)] if top in names else []
        for cap in reversed(below):
            children.append(_child({ISA_VARIABLE: cap}, max_cpu_isa=cap))
            if not onednn_here and "isa_onednn" in kinds:
                env = {ISA_VARIABLE: cap, ONEDNN_VARIABLE: flag(True)}
                children.append(_child(env, {"onednn": True}, onednn=True, max_cpu_isa=cap))
    if "threads" in kinds:
        children.append(_Child(VariantSettings(threads=1), runtime={"intra": 1, "inter": 1}))
    if "jax" in kinds and keras_file and jax:
        children.append(_child({"KERAS_BACKEND": "jax"}, keras_backend="jax"))
    return children


def name_of(s: VariantSettings) -> str:
    """A variant's stable id from its settings: 'default', 'onednn_on', 'onednn_on+isa_avx+batch1', ..."""
    parts = []
    if s.onednn is not None:
        parts.append(f"onednn_{'on' if s.onednn else 'off'}")
    if s.max_cpu_isa:
        parts.append(f"isa_{s.max_cpu_isa.lower()}")
    if s.threads is not None:
        parts.append(f"threads_{s.threads}")
    if s.keras_backend:
        parts.append(f"backend_{s.keras_backend}")
    if s.batch_size is not None:
        parts.append(f"batch{s.batch_size}")
    return "+".join(parts) or "default"


def _parallel() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass
class _Done:
    child: _Child
    arrays: dict[str, dict[str, np.ndarray]] | None
    error: str | None
    untestable: bool
    seconds: float


def _run_one(workdir: Path, base: dict[str, Any], child: _Child, batch: bool, timeout_s: float) -> _Done:
    runner = Runner(workdir, base, timeout_s)  # one working directory per child: they run at once
    runs: dict[str, int | None] = {"full": None, "batch1": 1} if batch else {"full": None}
    got = runner.run(Restore("variant", name_of(child.settings), child.env, child.runtime), runs)
    if got.arrays is None:
        return _Done(child, None, got.failure, False, got.seconds)
    ignored = [f"{k} is {got.facts.get(k)!r}, not {v!r}" for k, v in child.expect.items() if got.facts.get(k) != v]
    if ignored:
        return _Done(child, None, f"the setting did not take here: {', '.join(ignored)}", True, got.seconds)
    return _Done(child, got.arrays, None, False, got.seconds)


def _variant(settings: VariantSettings, done: _Done, arrays: Mapping[str, np.ndarray] | None,
             reference: Mapping[str, np.ndarray], reference_digest: str) -> Variant:  # fmt: skip
    from envprint.check.verifier import outputs_digest

    name, seconds = name_of(settings), round(done.seconds, 2)
    if arrays is None:
        status = "untestable" if done.untestable else "failed"
        return Variant(name=name, settings=settings, status=status, error=done.error, seconds=seconds)
    outs = compare.compare_outputs(dict(reference), dict(arrays), Tolerance())
    top = lambda xs: max((x for x in xs if x is not None), default=None)  # noqa: E731
    digest = outputs_digest(arrays)
    return Variant(
        name=name,
        settings=settings,
        status="recorded",
        outputs_digest=digest,
        identical_to_reference=digest == reference_digest,
        max_ulp=top(o.max_ulp for o in outs),
        max_rel=top(o.max_rel for o in outs),
        max_abs=top(o.max_abs for o in outs),
        seconds=seconds,
    )


def classes(variants: list[Variant], reference_digest: str) -> tuple[list[Variant], list[VariantClass]]:
    """Variants with their class, and the classes: the reference's first ('A'), then largest first."""
    groups: dict[str, list[str]] = {}
    for v in variants:
        if v.outputs_digest is not None:
            groups.setdefault(v.outputs_digest, []).append(v.name)
    order = sorted(groups, key=lambda d: (d != reference_digest, -len(groups[d])))
    names = dict(zip(order, _class_names(len(order)), strict=True))
    found = [VariantClass(name=names[d], outputs_digest=d, variants=groups[d], reference=d == reference_digest)
             for d in order]  # fmt: skip
    named = [v.model_copy(update={"equivalence_class": names.get(v.outputs_digest or "")}) for v in variants]
    return named, found


def _class_names(n: int) -> list[str]:
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"{letters[i // 26 - 1]}{letters[i % 26]}" for i in range(n)]


def record_variants(  # size: the children's spec, their parallel run and the record, in that order
    model_path: Path,
    fp: Fingerprint,
    probes: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    *,
    kinds: Sequence[str] = KINDS,
    fmt: str,
    signature: str | None,
    safe_mode: bool,
    custom_objects_specs: Sequence[str] = (),
    timeout_s: float = CHILD_TIMEOUT_S,
    progress: Callable[[str], None] | None = None,
) -> tuple[Variants, dict[str, np.ndarray]]:
    """Run the variants' children and return their record, and their outputs as 'VARIANT/OUTPUT' arrays."""
    from envprint.check.verifier import outputs_digest
    from envprint.record.npz import save_arrays

    jax = importlib.util.find_spec("jax") is not None
    keras_file = fmt == "keras" and bool(fp.tensorflow and fp.tensorflow.keras_flavor == "keras3")
    children = plan(fp, kinds, keras_file=keras_file, jax=jax)
    batch = "batch" in kinds
    parallel = min(_parallel(), len(children))
    reference_digest = outputs_digest(reference)
    say = progress or (lambda _message: None)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="envprint-variants-") as tmp:
        probes_file = Path(tmp) / "probes.npz"
        base: dict[str, Any] = {
            "model": str(model_path.resolve()),
            "format": fmt,
            "signature": signature,
            "safe_mode": safe_mode,
            "custom_objects": list(custom_objects_specs),
            "probes": str(probes_file),
        }
        save_arrays(probes_file, dict(probes))
        say(f"variants: {len(children)} child processes, {parallel} at once")
        dirs = [Path(tmp) / f"child{i}" for i in range(len(children))]
        for directory in dirs:
            directory.mkdir()
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="envprint-variant")
        try:
            pairs = zip(dirs, children, strict=True)
            done = list(pool.map(lambda dc: _run_one(dc[0], base, dc[1], batch, timeout_s), pairs))
        finally:  # Ctrl-C: no child starts after it; the running ones end within their timeout
            pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.monotonic() - start
    variants, kept = [], {}
    for d in done:
        runs = [("full", d.child.settings)]
        if batch:
            runs.append(("batch1", d.child.settings.model_copy(update={"batch_size": 1})))
        for run, settings in runs:
            arrays = None if d.arrays is None else d.arrays[run]
            v = _variant(settings, d, arrays, reference, reference_digest)
            variants.append(v)
            kept.update({f"{v.name}/{k}": a for k, a in (arrays or {}).items()})
    named, found = classes(variants, reference_digest)
    record = Variants(
        reference_digest=reference_digest,
        cpu_isa=cpu_isa(fp),
        onednn_default=fp.tensorflow.onednn.enabled if fp.tensorflow else None,
        variants=named,
        classes=found,
        seconds=round(seconds, 2),
        parallel=parallel,
    )
    return record, kept


def tolerance_from_variants(variants: Variants, margin: float, dtypes: list[str]) -> Tolerance:
    """The tolerance that passes every variant recorded, with ``margin``: as ``save --tolerance-from`` over
    each variant's largest relative error. A variant that did not run is no drift and counts for nothing."""
    from envprint.check.tolerance import tolerance_for

    if not margin >= 1:
        raise UsageError(f"--margin must be a number >= 1 (a factor on the measured drift), got {margin}")
    recorded = [v for v in variants.variants if v.status == "recorded"]
    if not recorded:
        raise UsageError("--tolerance-from-variants: no variant could be recorded; choose --rtol/--atol yourself")
    # One row per variant and output dtype: the per-dtype defaults are the floor, as for a report.
    drift = [OutputComparison(name=v.name, status="within_tolerance", expected_dtype=dtype, max_rel=v.max_rel,
                              rtol_needed=v.max_rel or 0.0) for v in recorded for dtype in dtypes]  # fmt: skip
    return tolerance_for(drift, margin, "--tolerance-from-variants", "variants")
